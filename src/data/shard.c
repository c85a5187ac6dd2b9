/* Token shard reader/writer (llm.c format, nanoGPT raw uint16 read) and the text cut rule for
 * chunked tokenization. Layouts and rules are documented in shard.h. */
#include "shard.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int host_is_le(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

static int32_t rd_i32(const uint8_t *p) {
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return (int32_t)u;
}

static void wr_i32(uint8_t *p, int32_t v) {
    uint32_t u = (uint32_t)v;
    p[0] = (uint8_t)u;
    p[1] = (uint8_t)(u >> 8);
    p[2] = (uint8_t)(u >> 16);
    p[3] = (uint8_t)(u >> 24);
}

const char *lnl_shard_format_name(LnlShardFormat f) {
    switch (f) {
    case LNL_SHARD_LLMC: return "llm.c";
    case LNL_SHARD_NANOGPT: return "nanoGPT";
    case LNL_SHARD_AUTO: return "auto";
    }
    return "?";
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Checks an llm.c header (hdr: the first min(size, 1024) bytes) against the file size. */
static int check_llmc(const char *path, const uint8_t *hdr, uint64_t size, uint64_t *ntok, LnlErr *e) {
    if (size < LNL_SHARD_HEADER_BYTES)
        return lnl_err(e, "%s: truncated header: file has %llu bytes, an llm.c shard header is %d", path,
                       (unsigned long long)size, LNL_SHARD_HEADER_BYTES);
    int32_t magic = rd_i32(hdr + 4 * LNL_SHARD_HDR_MAGIC);
    int32_t version = rd_i32(hdr + 4 * LNL_SHARD_HDR_VERSION);
    int32_t n = rd_i32(hdr + 4 * LNL_SHARD_HDR_NTOK);
    if (magic != LNL_SHARD_MAGIC)
        return lnl_err(e, "%s: header magic: expected %d (llm.c token shard), found %d", path, LNL_SHARD_MAGIC,
                       (int)magic);
    if (version != LNL_SHARD_VERSION)
        return lnl_err(e, "%s: header version: expected %d, found %d", path, LNL_SHARD_VERSION, (int)version);
    if (n < 0) return lnl_err(e, "%s: header ntok: expected >= 0, found %d", path, (int)n);
    uint64_t want = LNL_SHARD_HEADER_BYTES + 2 * (uint64_t)n;
    if (size < want)
        return lnl_err(e, "%s: truncated: header ntok %d needs %llu bytes (1024 + 2*ntok), file has %llu", path,
                       (int)n, (unsigned long long)want, (unsigned long long)size);
    if (size > want)
        return lnl_err(e, "%s: trailing bytes: header ntok %d needs %llu bytes (1024 + 2*ntok), file has %llu",
                       path, (int)n, (unsigned long long)want, (unsigned long long)size);
    *ntok = (uint64_t)n;
    return 0;
}

/* Decides the format and the token count from the file's size and first bytes. */
static int detect(const char *path, FILE *f, uint64_t size, LnlShardFormat want, LnlShardFormat *found,
                  uint64_t *ntok, LnlErr *e) {
    uint8_t hdr[LNL_SHARD_HEADER_BYTES];
    size_t nhdr = want == LNL_SHARD_NANOGPT ? 0 : size < sizeof hdr ? (size_t)size : sizeof hdr;
    if (lnl_fread_exact(f, hdr, nhdr, path, e)) return -1;
    int has_magic = nhdr >= 4 && rd_i32(hdr) == LNL_SHARD_MAGIC;
    if (want == LNL_SHARD_LLMC || (want == LNL_SHARD_AUTO && has_magic)) {
        if (nhdr < 4)
            return lnl_err(e, "%s: truncated header: file has %llu bytes, an llm.c shard header is %d", path,
                           (unsigned long long)size, LNL_SHARD_HEADER_BYTES);
        *found = LNL_SHARD_LLMC;
        return check_llmc(path, hdr, size, ntok, e);
    }
    if (want == LNL_SHARD_AUTO && !ends_with(path, ".bin")) {
        if (nhdr >= 4)
            return lnl_err(e, "%s: not a token shard: magic %d is not llm.c's %d, and only names ending in .bin "
                              "are read as nanoGPT uint16 files",
                           path, (int)rd_i32(hdr), LNL_SHARD_MAGIC);
        return lnl_err(e, "%s: not a token shard: %llu bytes, no llm.c header, and only names ending in .bin are "
                          "read as nanoGPT uint16 files",
                       path, (unsigned long long)size);
    }
    if (size % 2)
        return lnl_err(e, "%s: size: expected an even number of bytes for a nanoGPT uint16 file%s, found %llu",
                       path, want == LNL_SHARD_AUTO ? " (no llm.c magic)" : "", (unsigned long long)size);
    *found = LNL_SHARD_NANOGPT;
    *ntok = size / 2;
    return 0;
}

int lnl_shard_probe(const char *path, LnlShardFormat want, LnlShardFormat *found, uint64_t *ntok, LnlErr *e) {
    uint64_t size;
    if (lnl_file_size(path, &size, e)) return -1;
    FILE *f = fopen(path, "rb");
    if (!f) return lnl_err(e, "%s: %s", path, strerror(errno));
    LnlShardFormat fmt = LNL_SHARD_AUTO;
    uint64_t n = 0;
    int r = detect(path, f, size, want, &fmt, &n, e);
    fclose(f);
    if (r) return -1;
    if (found) *found = fmt;
    if (ntok) *ntok = n;
    return 0;
}

static int check_vocab(const LnlShard *s, int vocab, LnlErr *e) {
    if (vocab <= 0) return 0;
    const uint16_t *t = s->tokens;
    uint64_t n = s->ntok;
    /* a max reduction vectorizes; the position is only looked for when a bad token exists */
    uint16_t mx = 0;
    for (uint64_t i = 0; i < n; i++) mx = t[i] > mx ? t[i] : mx;
    if (mx < (uint32_t)vocab) return 0;
    uint64_t base = s->format == LNL_SHARD_LLMC ? LNL_SHARD_HEADER_BYTES : 0;
    for (uint64_t i = 0; i < n; i++)
        if (t[i] >= (uint32_t)vocab)
            return lnl_err(e, "%s: token %u at index %llu (byte offset %llu) is outside the vocabulary (size %d)",
                           s->path, (unsigned)t[i], (unsigned long long)i, (unsigned long long)(base + 2 * i), vocab);
    return 0;
}

static int shard_load(LnlShard *s, const char *path, LnlShardFormat want, int vocab, int use_map, LnlErr *e) {
    memset(s, 0, sizeof *s);
    uint64_t size;
    if (lnl_file_size(path, &size, e)) return -1;
    FILE *f = fopen(path, "rb");
    if (!f) return lnl_err(e, "%s: %s", path, strerror(errno));
    if (detect(path, f, size, want, &s->format, &s->ntok, e)) {
        fclose(f);
        return -1;
    }
    s->path = lnl_strdup(path);
    uint64_t off = s->format == LNL_SHARD_LLMC ? LNL_SHARD_HEADER_BYTES : 0;
    if (size > (uint64_t)SIZE_MAX) {
        fclose(f);
        lnl_shard_close(s);
        return lnl_err(e, "%s: %llu bytes do not fit in this machine's address space", path,
                       (unsigned long long)size);
    }
    if (use_map && host_is_le() && s->ntok > 0) {
        void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fileno(f), 0);
        if (m != MAP_FAILED) {
            s->map = m;
            s->map_len = (size_t)size;
            s->tokens = (const uint16_t *)((const uint8_t *)m + off);
        }
    }
    if (!s->map) {
        s->owned = lnl_malloc((size_t)s->ntok * 2);
        int bad = fseek(f, (long)off, SEEK_SET) != 0
                      ? lnl_err(e, "%s: cannot seek to offset %llu", path, (unsigned long long)off)
                      : lnl_fread_exact(f, s->owned, (size_t)s->ntok * 2, path, e);
        if (bad) {
            fclose(f);
            lnl_shard_close(s);
            return -1;
        }
        if (!host_is_le()) {
            const uint8_t *b = (const uint8_t *)s->owned;
            for (uint64_t i = 0; i < s->ntok; i++) s->owned[i] = (uint16_t)(b[2 * i] | b[2 * i + 1] << 8);
        }
        s->tokens = s->owned;
    }
    fclose(f);
    if (check_vocab(s, vocab, e)) {
        lnl_shard_close(s);
        return -1;
    }
    return 0;
}

int lnl_shard_open(LnlShard *s, const char *path, LnlShardFormat want, int vocab, LnlErr *e) {
    return shard_load(s, path, want, vocab, 1, e);
}

int lnl_shard_read(LnlShard *s, const char *path, LnlShardFormat want, int vocab, LnlErr *e) {
    return shard_load(s, path, want, vocab, 0, e);
}

void lnl_shard_close(LnlShard *s) {
    if (s->map) munmap(s->map, s->map_len);
    free(s->owned);
    free(s->path);
    memset(s, 0, sizeof *s);
}

/* ---- writer ---- */

static int write_header(FILE *f, const char *path, uint64_t ntok, LnlErr *e) {
    uint8_t hdr[LNL_SHARD_HEADER_BYTES];
    memset(hdr, 0, sizeof hdr);
    wr_i32(hdr + 4 * LNL_SHARD_HDR_MAGIC, LNL_SHARD_MAGIC);
    wr_i32(hdr + 4 * LNL_SHARD_HDR_VERSION, LNL_SHARD_VERSION);
    wr_i32(hdr + 4 * LNL_SHARD_HDR_NTOK, (int32_t)ntok);
    if (fseek(f, 0, SEEK_SET) != 0) return lnl_err(e, "%s: cannot seek: %s", path, strerror(errno));
    return lnl_fwrite_exact(f, hdr, sizeof hdr, path, e);
}

int lnl_shard_writer_open(LnlShardWriter *w, const char *path, LnlErr *e) {
    memset(w, 0, sizeof *w);
    if (lnl_atomic_open(&w->af, path, e)) return -1;
    /* a placeholder; finish rewrites it with the real count */
    if (write_header(w->af.f, path, 0, e)) {
        lnl_atomic_abort(&w->af);
        return -1;
    }
    return 0;
}

int lnl_shard_writer_append(LnlShardWriter *w, const int32_t *ids, size_t n, LnlErr *e) {
    if ((uint64_t)n > LNL_SHARD_MAX_NTOK - w->ntok)
        return lnl_err(e, "%s: too many tokens: an llm.c shard holds at most %u (ntok is an int32)", w->af.path,
                       LNL_SHARD_MAX_NTOK);
    uint8_t buf[8192];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id > LNL_SHARD_MAX_TOKEN)
            return lnl_err(e, "%s: token %d at index %llu does not fit in uint16 (must be 0..%d)", w->af.path,
                           (int)id, (unsigned long long)(w->ntok + i), LNL_SHARD_MAX_TOKEN);
        buf[k++] = (uint8_t)id;
        buf[k++] = (uint8_t)(id >> 8);
        if (k == sizeof buf) {
            if (lnl_fwrite_exact(w->af.f, buf, k, w->af.path, e)) return -1;
            k = 0;
        }
    }
    if (lnl_fwrite_exact(w->af.f, buf, k, w->af.path, e)) return -1;
    w->ntok += n;
    return 0;
}

int lnl_shard_writer_move_tail(LnlShardWriter *w, uint64_t keep, LnlShardWriter *tail, LnlErr *e) {
    if (keep > w->ntok)
        return lnl_err(e, "%s: cannot keep %llu tokens, only %llu written", w->af.path, (unsigned long long)keep,
                       (unsigned long long)w->ntok);
    uint64_t move = w->ntok - keep;
    if (move > LNL_SHARD_MAX_NTOK - tail->ntok)
        return lnl_err(e, "%s: too many tokens: an llm.c shard holds at most %u", tail->af.path,
                       LNL_SHARD_MAX_NTOK);
    if (fflush(w->af.f) != 0) return lnl_err(e, "%s: write failed: %s", w->af.path, strerror(errno));
    FILE *in = fopen(w->af.tmp, "rb");
    if (!in) return lnl_err(e, "%s: cannot reopen: %s", w->af.tmp, strerror(errno));
    off_t from = (off_t)(LNL_SHARD_HEADER_BYTES + 2 * keep);
    if (fseeko(in, from, SEEK_SET) != 0) {
        fclose(in);
        return lnl_err(e, "%s: cannot seek to offset %lld: %s", w->af.tmp, (long long)from, strerror(errno));
    }
    uint8_t buf[1 << 16];
    uint64_t left = 2 * move;
    while (left > 0) {
        size_t k = left < sizeof buf ? (size_t)left : sizeof buf;
        if (lnl_fread_exact(in, buf, k, w->af.tmp, e) || lnl_fwrite_exact(tail->af.f, buf, k, tail->af.path, e)) {
            fclose(in);
            return -1;
        }
        left -= k;
    }
    fclose(in);
    tail->ntok += move;
    if (ftruncate(w->af.fd, from) != 0 || fseeko(w->af.f, from, SEEK_SET) != 0)
        return lnl_err(e, "%s: cannot truncate to %lld bytes: %s", w->af.tmp, (long long)from, strerror(errno));
    w->ntok = keep;
    return 0;
}

int lnl_shard_writer_finish(LnlShardWriter *w, LnlErr *e) {
    if (!w->af.f) return lnl_err(e, "shard writer: internal: finish on a closed writer");
    if (write_header(w->af.f, w->af.path, w->ntok, e)) {
        lnl_atomic_abort(&w->af);
        return -1;
    }
    return lnl_atomic_commit(&w->af, e);
}

void lnl_shard_writer_abort(LnlShardWriter *w) {
    if (w->af.f || w->af.tmp) lnl_atomic_abort(&w->af);
}

int lnl_shard_write(const char *path, const int32_t *ids, size_t n, LnlErr *e) {
    LnlShardWriter w;
    if (lnl_shard_writer_open(&w, path, e)) return -1;
    if (lnl_shard_writer_append(&w, ids, n, e)) {
        lnl_shard_writer_abort(&w);
        return -1;
    }
    return lnl_shard_writer_finish(&w, e);
}

/* ---- chunked tokenization ---- */

size_t lnl_text_cut(const uint8_t *text, size_t n) {
    for (size_t p = n >= 2 ? n - 2 : 0; p >= 1; p--) {
        uint8_t c = text[p], next = text[p + 1];
        if ((c == ' ' || c == '\t' || c == '\r' || c == '\n') && next >= 0x21 && next <= 0x7e && text[p - 1] < 0x80)
            return p;
    }
    return 0;
}
