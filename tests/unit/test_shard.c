/* Tests of the token shard reader/writer, the data loader, and the text cut rule for chunked
 * tokenization (checked against GPT-2's pre-tokenization regex run through PCRE2). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/loader.h"
#include "data/shard.h"
#include "harness.h"

static char tmpdir[256];

static char *tpath(const char *name) {
    return lnl_path_join(tmpdir, name);
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        printf("FAIL setup: cannot write %s\n", path);
        exit(1);
    }
    fwrite(p, 1, n, f);
    fclose(f);
}

static uint8_t *read_bytes(const char *path, size_t *n) {
    char *buf;
    LnlErr e;
    if (lnl_read_file(path, &buf, n, &e)) return NULL;
    return (uint8_t *)buf;
}

static int32_t rd32(const uint8_t *p) {
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Writes tokens as an llm.c shard through the public writer, in uneven chunks. */
static int write_shard(const char *path, const int32_t *ids, size_t n) {
    LnlShardWriter w;
    LnlErr e;
    if (lnl_shard_writer_open(&w, path, &e)) return -1;
    size_t i = 0, step = 1;
    while (i < n) {
        size_t k = step < n - i ? step : n - i;
        if (lnl_shard_writer_append(&w, ids + i, k, &e)) {
            lnl_shard_writer_abort(&w);
            return -1;
        }
        i += k;
        step = step * 3 + 1;
    }
    return lnl_shard_writer_finish(&w, &e);
}

static int32_t *seq(size_t n, int mod) {
    int32_t *v = lnl_malloc(n * sizeof(int32_t) + 1);
    for (size_t i = 0; i < n; i++) v[i] = (int32_t)((i * 7919u + 13u) % (unsigned)mod);
    return v;
}

static void test_round_trip(void) {
    size_t sizes[] = {0, 1, 2, 1000, 300001};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        int32_t *ids = seq(n, 65536);
        if (n > 0) ids[n - 1] = 65535;
        char *p = tpath("rt.bin");
        CHECK(write_shard(p, ids, n) == 0, "write n=%zu", n);
        for (int mode = 0; mode < 2; mode++) {
            LnlShard sh;
            LnlErr e;
            int r = mode ? lnl_shard_read(&sh, p, LNL_SHARD_AUTO, 0, &e) : lnl_shard_open(&sh, p, LNL_SHARD_AUTO, 0, &e);
            CHECK(r == 0, "open n=%zu mode %d: %s", n, mode, e.msg);
            if (r) continue;
            CHECK(sh.ntok == n, "ntok %llu vs %zu", (unsigned long long)sh.ntok, n);
            CHECK(sh.format == LNL_SHARD_LLMC, "format %d", (int)sh.format);
            size_t bad = n;
            for (size_t i = 0; i < n && bad == n; i++)
                if (sh.tokens[i] != (uint16_t)ids[i]) bad = i;
            CHECK(bad == n, "n=%zu mode %d: token %zu differs", n, mode, bad);
            lnl_shard_close(&sh);
        }
        uint64_t ntok;
        LnlShardFormat f;
        LnlErr e;
        CHECK(lnl_shard_probe(p, LNL_SHARD_LLMC, &f, &ntok, &e) == 0 && ntok == n, "probe n=%zu", n);
        free(p);
        free(ids);
    }
}

static void test_header_fields(void) {
    int32_t ids[5] = {0, 1, 256, 50256, 65535};
    char *p = tpath("hdr.bin");
    LnlErr e;
    CHECK(lnl_shard_write(p, ids, 5, &e) == 0, "%s", e.msg);
    size_t n;
    uint8_t *b = read_bytes(p, &n);
    CHECK(b && n == 1024 + 10, "size %zu", n);
    if (b && n == 1034) {
        CHECK(rd32(b) == 20240520, "magic %d", rd32(b));
        CHECK(rd32(b + 4) == 1, "version %d", rd32(b + 4));
        CHECK(rd32(b + 8) == 5, "ntok %d", rd32(b + 8));
        int zero = 1;
        for (int i = 12; i < 1024; i++) zero &= b[i] == 0;
        CHECK(zero, "header slots 3..255 are not zero");
        CHECK(b[1024] == 0 && b[1025] == 0 && b[1026] == 1 && b[1027] == 0, "little-endian tokens");
        CHECK(b[1028] == 0 && b[1029] == 1 && b[1032] == 0xff && b[1033] == 0xff, "little-endian tokens");
    }
    free(b);
    /* no temporary file is left next to the output */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", tmpdir);
    CHECK(system(cmd) != 0, "a temporary file was left in %s", tmpdir);
    free(p);
}

/* Writes a valid 4-token shard, lets edit() damage it, and checks that opening fails with a
 * message containing want (and naming the file). */
static void expect_bad(const char *name, LnlShardFormat fmt, void (*edit)(uint8_t *, size_t *), const char *want) {
    uint8_t b[1024 + 8 + 16];
    memset(b, 0, sizeof b);
    size_t n = 1024 + 8;
    b[0] = 0x88, b[1] = 0xd8, b[2] = 0x34, b[3] = 0x01; /* 20240520 */
    b[4] = 1;
    b[8] = 4;
    for (int i = 0; i < 8; i++) b[1024 + i] = (uint8_t)i;
    edit(b, &n);
    char *p = tpath(name);
    write_bytes(p, b, n);
    LnlShard sh;
    LnlErr e;
    e.msg[0] = 0;
    int r = lnl_shard_open(&sh, p, fmt, 0, &e);
    CHECK(r != 0, "%s: opened a damaged shard", name);
    if (r == 0) lnl_shard_close(&sh);
    CHECK(strstr(e.msg, want) != NULL, "%s: message '%s' lacks '%s'", name, e.msg, want);
    CHECK(strstr(e.msg, name) != NULL, "%s: message '%s' does not name the file", name, e.msg);
    CHECK(strchr(e.msg, '\n') == NULL, "%s: message is not one line", name);
    free(p);
}

static void ed_truncate(uint8_t *b, size_t *n) {
    (void)b;
    *n -= 1;
}
static void ed_trailing(uint8_t *b, size_t *n) {
    (void)b;
    *n += 2;
}
static void ed_magic(uint8_t *b, size_t *n) {
    (void)n;
    b[0] = 0x49;
}
static void ed_version(uint8_t *b, size_t *n) {
    (void)n;
    b[4] = 2;
}
static void ed_negative(uint8_t *b, size_t *n) {
    (void)n;
    b[8] = 0xff, b[9] = 0xff, b[10] = 0xff, b[11] = 0xff;
}
static void ed_short_header(uint8_t *b, size_t *n) {
    (void)b;
    *n = 600;
}
static void ed_none(uint8_t *b, size_t *n) {
    (void)b;
    (void)n;
}

static void test_bad_files(void) {
    expect_bad("truncated.bin", LNL_SHARD_AUTO, ed_truncate, "truncated: header ntok 4 needs 1032 bytes");
    expect_bad("trailing.bin", LNL_SHARD_AUTO, ed_trailing, "trailing bytes: header ntok 4 needs 1032 bytes");
    expect_bad("magic.bin", LNL_SHARD_LLMC, ed_magic, "header magic: expected 20240520");
    expect_bad("magic.dat", LNL_SHARD_AUTO, ed_magic, "not a token shard");
    expect_bad("version.bin", LNL_SHARD_AUTO, ed_version, "header version: expected 1, found 2");
    expect_bad("negative.bin", LNL_SHARD_AUTO, ed_negative, "header ntok: expected >= 0, found -1");
    expect_bad("short.bin", LNL_SHARD_AUTO, ed_short_header, "truncated header");
    expect_bad("odd.bin", LNL_SHARD_NANOGPT, ed_truncate, "even number of bytes");
    /* a valid shard checked against a vocabulary too small for its tokens */
    char *p = tpath("vocab.bin");
    int32_t ids[3] = {1, 300, 2};
    LnlErr e;
    CHECK(lnl_shard_write(p, ids, 3, &e) == 0, "%s", e.msg);
    LnlShard sh;
    CHECK(lnl_shard_open(&sh, p, LNL_SHARD_AUTO, 257, &e) != 0, "token 300 passed vocab 257");
    CHECK(strstr(e.msg, "token 300 at index 1 (byte offset 1026)") && strstr(e.msg, "257"), "message: %s", e.msg);
    CHECK(lnl_shard_open(&sh, p, LNL_SHARD_AUTO, 301, &e) == 0, "vocab 301: %s", e.msg);
    lnl_shard_close(&sh);
    free(p);
    (void)ed_none;
}

static void test_nanogpt(void) {
    /* headerless uint16, little-endian */
    uint8_t raw[6] = {1, 0, 0x34, 0x12, 0xff, 0xff};
    char *p = tpath("nano.bin");
    write_bytes(p, raw, sizeof raw);
    LnlShard sh;
    LnlErr e;
    CHECK(lnl_shard_open(&sh, p, LNL_SHARD_AUTO, 0, &e) == 0, "%s", e.msg);
    CHECK(sh.format == LNL_SHARD_NANOGPT && sh.ntok == 3, "format %d ntok %llu", (int)sh.format,
          (unsigned long long)sh.ntok);
    if (sh.ntok == 3) CHECK(sh.tokens[0] == 1 && sh.tokens[1] == 0x1234 && sh.tokens[2] == 0xffff, "tokens");
    lnl_shard_close(&sh);
    /* forcing llm.c on a headerless file fails; an empty raw file has 0 tokens */
    CHECK(lnl_shard_open(&sh, p, LNL_SHARD_LLMC, 0, &e) != 0, "llm.c forced on raw data");
    char *q = tpath("empty.bin");
    write_bytes(q, raw, 0);
    CHECK(lnl_shard_open(&sh, q, LNL_SHARD_AUTO, 0, &e) == 0 && sh.ntok == 0, "empty raw file: %s", e.msg);
    lnl_shard_close(&sh);
    /* an llm.c shard forced as raw is read as raw (header included) */
    int32_t ids[2] = {5, 6};
    CHECK(lnl_shard_write(q, ids, 2, &e) == 0, "%s", e.msg);
    CHECK(lnl_shard_open(&sh, q, LNL_SHARD_NANOGPT, 0, &e) == 0 && sh.ntok == 514, "forced raw");
    lnl_shard_close(&sh);
    /* the auto rule: a damaged magic in a .bin of even size is a raw file, by design */
    uint8_t b[1024 + 4] = {0x89, 0xd8, 0x34, 0x01, 1, 0, 0, 0, 2};
    write_bytes(q, b, sizeof b);
    CHECK(lnl_shard_open(&sh, q, LNL_SHARD_AUTO, 0, &e) == 0 && sh.format == LNL_SHARD_NANOGPT, "auto rule");
    lnl_shard_close(&sh);
    free(p);
    free(q);
}

static void test_writer_errors(void) {
    char *p = tpath("big.bin");
    LnlShardWriter w;
    LnlErr e;
    int32_t ids[3] = {1, 65536, 2};
    CHECK(lnl_shard_writer_open(&w, p, &e) == 0, "%s", e.msg);
    CHECK(lnl_shard_writer_append(&w, ids, 3, &e) != 0, "token 65536 accepted");
    CHECK(strstr(e.msg, "token 65536 at index 1") && strstr(e.msg, p), "message: %s", e.msg);
    int32_t neg = -1;
    CHECK(lnl_shard_writer_append(&w, &neg, 1, &e) != 0, "token -1 accepted");
    lnl_shard_writer_abort(&w);
    CHECK(!file_exists(p), "aborted writer left %s", p);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", tmpdir);
    CHECK(system(cmd) != 0, "aborted writer left a temporary file");
    /* output in a directory that does not exist */
    char *q = tpath("nodir/x.bin");
    CHECK(lnl_shard_writer_open(&w, q, &e) != 0 && strstr(e.msg, "nodir"), "message: %s", e.msg);
    free(p);
    free(q);
}

static void test_move_tail(void) {
    size_t n = 100000;
    int32_t *ids = seq(n, 50257);
    char *a = tpath("head.bin"), *b = tpath("tail.bin");
    LnlShardWriter w, t;
    LnlErr e;
    CHECK(lnl_shard_writer_open(&w, a, &e) == 0 && lnl_shard_writer_open(&t, b, &e) == 0, "%s", e.msg);
    CHECK(lnl_shard_writer_append(&w, ids, n, &e) == 0, "%s", e.msg);
    CHECK(lnl_shard_writer_move_tail(&w, 71234, &t, &e) == 0, "%s", e.msg);
    CHECK(w.ntok == 71234 && t.ntok == n - 71234, "counts %llu %llu", (unsigned long long)w.ntok,
          (unsigned long long)t.ntok);
    CHECK(lnl_shard_writer_finish(&w, &e) == 0 && lnl_shard_writer_finish(&t, &e) == 0, "%s", e.msg);
    LnlShard sa, sb;
    CHECK(lnl_shard_open(&sa, a, LNL_SHARD_LLMC, 50257, &e) == 0, "%s", e.msg);
    CHECK(lnl_shard_open(&sb, b, LNL_SHARD_LLMC, 50257, &e) == 0, "%s", e.msg);
    size_t bad = n;
    for (size_t i = 0; i < n && bad == n; i++) {
        uint16_t got = i < sa.ntok ? sa.tokens[i] : sb.tokens[i - sa.ntok];
        if (got != ids[i]) bad = i;
    }
    CHECK(sa.ntok + sb.ntok == n && bad == n, "split stream differs at %zu", bad);
    lnl_shard_close(&sa);
    lnl_shard_close(&sb);
    free(a);
    free(b);
    free(ids);
}

/* ---- loader ---- */

static void check_batch(const int32_t *x, const int32_t *y, const int32_t *ids, uint64_t start, int B, int T,
                        const char *what) {
    int bad = -1;
    for (int b = 0; b < B && bad < 0; b++)
        for (int t = 0; t < T && bad < 0; t++) {
            uint64_t k = start + (uint64_t)b * T + t; /* llm.c: row b = tokens [start + b*T, +T] */
            if (x[b * T + t] != ids[k] || y[b * T + t] != ids[k + 1]) bad = b * T + t;
        }
    CHECK(bad < 0, "%s: batch starting at %llu differs at element %d", what, (unsigned long long)start, bad);
}

static void test_loader_file(void) {
    int B = 3, T = 5, n = 100; /* 15 tokens a batch: batches start at 0,15,...,75 (75+16 <= 100), then wrap */
    int32_t *ids = seq((size_t)n, 257);
    char *p = tpath("load.bin");
    LnlErr e;
    CHECK(lnl_shard_write(p, ids, (size_t)n, &e) == 0, "%s", e.msg);
    LnlLoader l;
    CHECK(lnl_loader_open(&l, p, NULL, B, T, 257, &e) == 0, "%s", e.msg);
    CHECK(lnl_loader_num_batches(&l) == 6, "num_batches %llu", (unsigned long long)lnl_loader_num_batches(&l));
    int32_t x[15], y[15];
    for (int k = 0; k < 14; k++) {
        lnl_loader_next(&l, x, y);
        check_batch(x, y, ids, (uint64_t)(k % 6) * 15, B, T, "file");
    }
    lnl_loader_free(&l);
    free(p);
    free(ids);
}

static void test_loader_exact_fit(void) {
    /* B*T+1 tokens exactly: one batch, then it wraps to the same batch */
    int B = 2, T = 4;
    int32_t *ids = seq(9, 257);
    char *p = tpath("fit.bin");
    LnlErr e;
    CHECK(lnl_shard_write(p, ids, 9, &e) == 0, "%s", e.msg);
    LnlLoader l;
    CHECK(lnl_loader_open(&l, p, NULL, B, T, 0, &e) == 0, "%s", e.msg);
    CHECK(lnl_loader_num_batches(&l) == 1, "num_batches");
    int32_t x[8], y[8];
    for (int k = 0; k < 3; k++) {
        lnl_loader_next(&l, x, y);
        check_batch(x, y, ids, 0, B, T, "exact fit");
    }
    lnl_loader_free(&l);
    /* one token fewer is an error that says what is needed and what was found */
    CHECK(lnl_shard_write(p, ids, 8, &e) == 0, "%s", e.msg);
    CHECK(lnl_loader_open(&l, p, NULL, B, T, 0, &e) != 0, "8 tokens accepted for B*T+1 = 9");
    CHECK(strstr(e.msg, "B*T+1 = 9") && strstr(e.msg, "found 8") && strstr(e.msg, "fit.bin"), "message: %s", e.msg);
    /* vocabulary check through the loader */
    CHECK(lnl_shard_write(p, ids, 9, &e) == 0, "%s", e.msg);
    CHECK(lnl_loader_open(&l, p, NULL, B, T, 10, &e) != 0 && strstr(e.msg, "outside the vocabulary"), "vocab: %s",
          e.msg);
    free(p);
    free(ids);
}

static void test_loader_resume(void) {
    int B = 2, T = 8, n = 1000;
    int32_t *ids = seq((size_t)n, 50257);
    char *p = tpath("resume.bin");
    LnlErr e;
    CHECK(lnl_shard_write(p, ids, (size_t)n, &e) == 0, "%s", e.msg);
    LnlLoader a, b;
    CHECK(lnl_loader_open(&a, p, NULL, B, T, 50257, &e) == 0, "%s", e.msg);
    int32_t xa[16], ya[16], xb[16], yb[16];
    for (int k = 0; k < 70; k++) lnl_loader_next(&a, xa, ya); /* 62 batches a pass: this wraps */
    uint64_t saved = a.pos;
    CHECK(lnl_loader_open(&b, p, NULL, B, T, 50257, &e) == 0, "%s", e.msg);
    CHECK(lnl_loader_seek(&b, saved, &e) == 0, "%s", e.msg);
    int same = 1;
    for (int k = 0; k < 100; k++) {
        lnl_loader_next(&a, xa, ya);
        lnl_loader_next(&b, xb, yb);
        same &= memcmp(xa, xb, sizeof xa) == 0 && memcmp(ya, yb, sizeof ya) == 0;
    }
    CHECK(same, "resumed loader diverged");
    CHECK(a.pos == b.pos, "positions %llu %llu", (unsigned long long)a.pos, (unsigned long long)b.pos);
    /* a deterministic start: seek to an arbitrary token offset */
    CHECK(lnl_loader_seek(&b, 5, &e) == 0, "%s", e.msg);
    lnl_loader_next(&b, xb, yb);
    check_batch(xb, yb, ids, 5, B, T, "seek 5");
    lnl_loader_reset(&b);
    lnl_loader_next(&b, xb, yb);
    check_batch(xb, yb, ids, 0, B, T, "reset");
    CHECK(lnl_loader_seek(&b, 1001, &e) != 0, "seek past the end accepted");
    lnl_loader_free(&a);
    lnl_loader_free(&b);
    free(p);
    free(ids);
}

static void test_loader_dir(void) {
    /* llm.c-style shards: sorted by name, too-small shards skipped, val kept apart */
    char *d = tpath("shards");
    mkdir(d, 0777);
    int B = 1, T = 10;
    int32_t *s0 = seq(35, 257), *s1 = seq(5, 257), *s2 = seq(25, 257);
    for (int i = 0; i < 25; i++) s2[i] = 200 + i % 50;
    char *p0 = lnl_path_join(d, "data_train_000000.bin"), *p1 = lnl_path_join(d, "data_train_000001.bin"),
         *p2 = lnl_path_join(d, "data_train_000002.bin"), *pv = lnl_path_join(d, "data_val_000000.bin");
    LnlErr e;
    /* written out of order, so the order comes from sorting */
    CHECK(lnl_shard_write(p2, s2, 25, &e) == 0 && lnl_shard_write(p0, s0, 35, &e) == 0 &&
              lnl_shard_write(p1, s1, 5, &e) == 0 && lnl_shard_write(pv, s1, 5, &e) == 0,
          "%s", e.msg);
    LnlLoader l;
    CHECK(lnl_loader_open(&l, d, "train", B, T, 257, &e) == 0, "%s", e.msg);
    CHECK(l.nshards == 3 && l.total == 65, "nshards %d total %llu", l.nshards, (unsigned long long)l.total);
    /* shard 0: batches at 0, 10, 20 (30+11 > 35); shard 1 too small; shard 2: 0, 10 */
    CHECK(lnl_loader_num_batches(&l) == 5, "num_batches %llu", (unsigned long long)lnl_loader_num_batches(&l));
    int32_t x[10], y[10];
    const int32_t *want[] = {s0, s0, s0, s2, s2, s0};
    uint64_t off[] = {0, 10, 20, 0, 10, 0};
    for (int k = 0; k < 6; k++) {
        lnl_loader_next(&l, x, y);
        check_batch(x, y, want[k], off[k], B, T, "dir");
    }
    lnl_loader_free(&l);
    CHECK(lnl_loader_open(&l, d, "val", B, T, 257, &e) != 0 && strstr(e.msg, "B*T+1 = 11"), "val: %s", e.msg);
    CHECK(lnl_loader_open(&l, d, NULL, B, T, 257, &e) != 0 && strstr(e.msg, "split"), "no split: %s", e.msg);
    /* a directory with both train.bin and shards is ambiguous */
    char *pt = lnl_path_join(d, "train.bin");
    CHECK(lnl_shard_write(pt, s0, 35, &e) == 0, "%s", e.msg);
    CHECK(lnl_loader_open(&l, d, "train", B, T, 257, &e) != 0 && strstr(e.msg, "both"), "ambiguous: %s", e.msg);
    free(pt);
    free(p0);
    free(p1);
    free(p2);
    free(pv);
    free(s0);
    free(s1);
    free(s2);

    /* a prepared directory: train.bin (llm.c) and val.bin (nanoGPT raw) */
    char *d2 = tpath("prepared");
    mkdir(d2, 0777);
    int32_t *ids = seq(40, 257);
    char *tr = lnl_path_join(d2, "train.bin"), *va = lnl_path_join(d2, "val.bin");
    CHECK(lnl_shard_write(tr, ids, 40, &e) == 0, "%s", e.msg);
    uint8_t raw[24];
    for (int i = 0; i < 12; i++) raw[2 * i] = (uint8_t)ids[i + 3], raw[2 * i + 1] = (uint8_t)(ids[i + 3] >> 8);
    write_bytes(va, raw, sizeof raw);
    CHECK(lnl_loader_open(&l, d2, "val", B, T, 257, &e) == 0, "%s", e.msg);
    lnl_loader_next(&l, x, y);
    check_batch(x, y, ids + 3, 0, B, T, "raw val");
    lnl_loader_free(&l);
    CHECK(lnl_loader_open(&l, d2, "train", 2, 5, 257, &e) == 0, "%s", e.msg);
    lnl_loader_next(&l, x, y);
    lnl_loader_next(&l, x, y);
    check_batch(x, y, ids, 10, 2, 5, "train");
    lnl_loader_free(&l);
    char *d3 = tpath("emptydir");
    mkdir(d3, 0777);
    CHECK(lnl_loader_open(&l, d3, "train", B, T, 257, &e) != 0 && strstr(e.msg, "no train split"), "empty: %s",
          e.msg);
    free(d3);
    free(tr);
    free(va);
    free(ids);
    free(d2);
    free(d);
}

/* ---- chunked tokenization: the cut rule against GPT-2's pre-tokenizer regex ---- */

/* meta.json (dataset.h): absent is fine; present must be well formed; it is found beside a
 * shard too; a model with another vocabulary is refused naming both files. */
static void test_dataset_meta(void) {
    char *dir = tpath("meta"), *meta = tpath("meta/meta.json"), *shard = tpath("meta/val.bin");
    mkdir(dir, 0777);
    int32_t ids[4] = {1, 2, 3, 4};
    CHECK(write_shard(shard, ids, 4) == 0, "shard");
    LnlDataMeta m;
    LnlErr e = {""};
    CHECK(lnl_data_meta_read(dir, &m, &e) == 0 && !m.present, "no meta.json: %s", e.msg);
    char *nowhere = tpath("nowhere");
    CHECK(lnl_data_meta_read(nowhere, &m, &e) == 0 && !m.present, "no data: %s", e.msg);
    free(nowhere);
    const char *good = "{\"format\": \"lnlab prepared dataset\", \"format_version\": 1, \"tokenizer\": \"byte\","
                       " \"vocab_size\": 257, \"unknown_key\": [1]}";
    write_bytes(meta, good, strlen(good));
    for (int k = 0; k < 2; k++) {
        CHECK(lnl_data_meta_read(k ? shard : dir, &m, &e) == 0 && m.present && m.vocab_size == 257 &&
                  strcmp(m.tokenizer, "byte") == 0 && strcmp(m.path, meta) == 0,
              "%s: %s", k ? "beside a shard" : "directory", e.msg);
        lnl_data_meta_free(&m);
    }
    CHECK(lnl_data_check_vocab(shard, "m.safetensors", 257, &e) == 0, "same vocabulary: %s", e.msg);
    char want[700];
    snprintf(want, sizeof want, "model m.safetensors has vocab 50257 (gpt2) but data %s says byte, 257", meta);
    CHECK(lnl_data_check_vocab(dir, "m.safetensors", 50257, &e) == -1 && strcmp(e.msg, want) == 0, "mismatch: %s",
          e.msg);
    snprintf(want, sizeof want, "model m.safetensors has vocab 300 but data %s says byte, 257", meta);
    CHECK(lnl_data_check_vocab(dir, "m.safetensors", 300, &e) == -1 && strcmp(e.msg, want) == 0, "mismatch: %s",
          e.msg);
    static const struct {
        const char *json, *want;
    } bad[] = {
        {"{\"vocab_size\": \"abc\",", "not valid JSON"},
        {"[257]", "not a JSON object"},
        {"{\"tokenizer\": \"byte\"}", "missing field 'vocab_size'"},
        {"{\"vocab_size\": \"abc\"}", "field 'vocab_size' is \"abc\", expected an integer in [2, 16777216]"},
        {"{\"vocab_size\": 1.5}", "field 'vocab_size' is 1.5"},
        {"{\"vocab_size\": 257, \"tokenizer\": 7}", "field 'tokenizer' is 7"},
        {"{\"vocab_size\": 300, \"tokenizer\": \"byte\"}", "tokenizer \"byte\" has 257 tokens, but vocab_size is 300"},
        {"{\"vocab_size\": 257, \"format_version\": 2}", "format_version 2 is newer than this lnlab understands (1)"},
        {"{\"vocab_size\": 257, \"format\": \"other\"}", "field 'format' is \"other\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_bytes(meta, bad[i].json, strlen(bad[i].json));
        e.msg[0] = 0;
        CHECK(lnl_data_meta_read(dir, &m, &e) == -1 && strncmp(e.msg, meta, strlen(meta)) == 0 &&
                  strstr(e.msg, bad[i].want),
              "'%s': '%s' lacks '%s'", bad[i].json, e.msg, bad[i].want);
        LnlLoader l; /* the loader refuses it too, even for a shard given as a file */
        CHECK(lnl_loader_open(&l, shard, NULL, 1, 2, 0, &e) == -1 && strstr(e.msg, bad[i].want), "loader: %s", e.msg);
    }
    unlink(meta);
    unlink(shard);
    rmdir(dir);
    free(dir);
    free(meta);
    free(shard);
}

static const char *GPT2_PAT =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* Appends the end offsets (relative to base) of the pre-tokens of s[0, n) to ends. */
static size_t pretokenize(pcre2_code *re, const uint8_t *s, size_t n, size_t base, size_t *ends, size_t nends) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    size_t at = 0;
    while (at < n) {
        int rc = pcre2_match(re, s, n, at, 0, md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] == at) break;
        ends[nends++] = base + ov[1];
        at = ov[1];
    }
    pcre2_match_data_free(md);
    return nends;
}

static void test_text_cut(void) {
    int errc;
    PCRE2_SIZE erroff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)GPT2_PAT, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &errc,
                                   &erroff, NULL);
    CHECK(re != NULL, "regex does not compile");
    if (!re) return;
    /* pieces chosen to exercise the regex: runs of spaces, CRLF, tabs, Unicode letters, digits
     * and spaces (U+00A0, U+2028), contractions, punctuation */
    const char *pieces[] = {"a",  "Zq", "\xc3\xa9t\xc3\xa9", "\xe4\xb8\xad", "12", "\xd9\xa3", " ",  "  ",
                            "\n", "\r\n", "\t", "\xc2\xa0", "\xe2\x80\xa8", "'", "'s", "'ll",
                            ".",  ",\"",  "!?", "\xe2\x80\x94", "\n\n", " \n", "x'", "9."};
    int npieces = (int)(sizeof pieces / sizeof pieces[0]);
    /* the harness has teeth: cutting "a  \nb" after the newline changes the pre-tokens */
    {
        const uint8_t *s = (const uint8_t *)"a  \nb";
        size_t w[16], c[16];
        size_t nw = pretokenize(re, s, 5, 0, w, 0);
        size_t nc = pretokenize(re, s, 4, 0, c, 0);
        nc = pretokenize(re, s + 4, 1, 4, c, nc);
        CHECK(nw != nc || memcmp(w, c, nw * sizeof *w) != 0, "naive cut gave equal pre-tokens");
        CHECK(lnl_text_cut(s, 5) == 3, "cut of 'a  \\nb' is %zu, expected 3", lnl_text_cut(s, 5));
    }
    uint64_t rng = 12345;
    int cuts = 0, failures = 0;
    size_t *whole = lnl_malloc(4096 * sizeof(size_t)), *parts = lnl_malloc(4096 * sizeof(size_t));
    for (int trial = 0; trial < 3000 && failures < 3; trial++) {
        uint8_t s[1024];
        size_t n = 0;
        int len = 1 + (int)(rng % 60);
        for (int i = 0; i < len; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            const char *pc = pieces[(rng >> 33) % (uint64_t)npieces];
            size_t k = strlen(pc);
            memcpy(s + n, pc, k);
            n += k;
        }
        size_t nw = pretokenize(re, s, n, 0, whole, 0);
        /* cut every prefix length, as a chunker would, and also chain cuts across the text */
        for (size_t m = 0; m <= n; m++) {
            size_t p = lnl_text_cut(s, m);
            if (p == 0) continue;
            CHECK(p >= 1 && p + 2 <= m, "cut %zu outside [1, %zu]", p, m - 2);
            cuts++;
            size_t np = pretokenize(re, s, p, 0, parts, 0);
            np = pretokenize(re, s + p, n - p, p, parts, np);
            if (np != nw || memcmp(parts, whole, nw * sizeof *whole) != 0) {
                CHECK(0, "cut at %zu of a %zu-byte text changes the pre-tokens", p, n);
                failures++;
                break;
            }
        }
    }
    CHECK(cuts > 10000, "only %d cuts exercised", cuts);
    CHECK(lnl_text_cut((const uint8_t *)"abc", 3) == 0 && lnl_text_cut((const uint8_t *)"", 0) == 0, "no cut point");
    CHECK(lnl_text_cut((const uint8_t *)"ab\n\n", 4) == 0, "a cut needs a printable byte after it");
    free(whole);
    free(parts);
    pcre2_code_free(re);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lnl_test_shard_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        printf("FAIL setup: mkdtemp\n");
        return 1;
    }
    RUN_TEST(test_round_trip);
    RUN_TEST(test_header_fields);
    RUN_TEST(test_bad_files);
    RUN_TEST(test_nanogpt);
    RUN_TEST(test_writer_errors);
    RUN_TEST(test_move_tail);
    RUN_TEST(test_loader_file);
    RUN_TEST(test_loader_exact_fit);
    RUN_TEST(test_loader_resume);
    RUN_TEST(test_loader_dir);
    RUN_TEST(test_dataset_meta);
    RUN_TEST(test_text_cut);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", tmpdir);
    TEST_MAIN_END();
}
