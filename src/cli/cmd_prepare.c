/* lnlab prepare: tokenize input files (or a built-in corpus: the King James Bible, the Brown
 * corpus) into DIR/train.bin, DIR/val.bin (llm.c token shards) and DIR/meta.json. Streams the input
 * in chunks, so memory does not grow with the corpus. The rules (EOT placement, split, corpus
 * text) are in docs/DATA.md. */
#include <assert.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../data/brown.h"
#include "../data/dataset.h"
#include "../data/shard.h"
#include "../data/tokenizer.h"
#include "flags.h"

#define CHUNK_BYTES (1u << 20)
#define PROGRESS_MIN_BYTES (16ull << 20)
/* The document cut is used when it puts val within this fraction of its target size. */
#define SPLIT_DOC_TOLERANCE 0.25
#define KJV_RANGE "Gen1:1-Rev22:21"
#define KJV_BOOKS 66

typedef struct {
    const char *name; /* path, or the corpus name */
    uint64_t bytes;
} Source;

typedef struct {
    LnlTokenizer *tok;
    int chunk_any;          /* the byte tokenizer can be cut anywhere */
    int32_t eot;
    LnlShardWriter all;     /* the whole token stream; becomes train.bin */
    LnlBuf pending;         /* text of the current document not yet tokenized */
    size_t next_try;        /* pending length at which to look for a cut again */
    LnlIds ids;
    uint64_t *doc_start;    /* (ndocs) token index of each document's EOT */
    size_t ndocs, cap_docs;
    size_t val_first_doc;   /* > 0: a corpus with its own split; val starts at this document */
    uint64_t bytes_done, bytes_total; /* bytes_total: known sizes only, for progress */
    double t0, last_report;
    int progress;
} Prep;

static int encode_flush(Prep *p, size_t n, LnlErr *e) {
    p->ids.n = 0;
    if (lnl_tok_encode(p->tok, (const uint8_t *)p->pending.data, n, &p->ids, e)) return -1;
    if (lnl_shard_writer_append(&p->all, p->ids.ids, p->ids.n, e)) return -1;
    memmove(p->pending.data, p->pending.data + n, p->pending.len - n);
    p->pending.len -= n;
    return 0;
}

static void report(Prep *p, int last) {
    if (!p->progress) return;
    double now = lnl_now();
    if (!last && now - p->last_report < 1.0) return;
    p->last_report = now;
    double mb = (double)p->bytes_done / 1e6, dt = now - p->t0;
    fprintf(stderr, "prepare: %.1f / %.1f MB, %.1f MB/s%s", mb, (double)p->bytes_total / 1e6, dt > 0 ? mb / dt : 0.0,
            last ? "\n" : (isatty(2) ? "\r" : "\n"));
    fflush(stderr);
}

static int doc_begin(Prep *p, LnlErr *e) {
    if (p->ndocs == p->cap_docs) {
        p->cap_docs = p->cap_docs ? 2 * p->cap_docs : 64;
        p->doc_start = lnl_realloc(p->doc_start, p->cap_docs * sizeof(uint64_t));
    }
    p->doc_start[p->ndocs++] = p->all.ntok;
    p->pending.len = 0;
    p->next_try = CHUNK_BYTES;
    return lnl_shard_writer_append(&p->all, &p->eot, 1, e);
}

/* Buffers text; tokenizes the buffered text up to the last safe cut once a chunk is full. */
static int doc_feed(Prep *p, const void *text, size_t n, LnlErr *e) {
    lnl_buf_append(&p->pending, text, n);
    p->bytes_done += n;
    if (p->pending.len < p->next_try) return 0;
    size_t cut = p->chunk_any ? p->pending.len : lnl_text_cut((const uint8_t *)p->pending.data, p->pending.len);
    if (cut == 0) {
        /* no safe point yet (one huge line): let the chunk grow */
        p->next_try = 2 * p->pending.len;
        return 0;
    }
    p->next_try = CHUNK_BYTES;
    if (encode_flush(p, cut, e)) return -1;
    report(p, 0);
    return 0;
}

static int doc_end(Prep *p, LnlErr *e) {
    return p->pending.len ? encode_flush(p, p->pending.len, e) : 0;
}

static int feed_file(Prep *p, const char *path, uint64_t *bytes, LnlErr *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return lnl_err(e, "--input: %s: %s", path, strerror(errno));
    char *buf = lnl_malloc(CHUNK_BYTES);
    int r = doc_begin(p, e);
    *bytes = 0;
    while (r == 0) {
        size_t got = fread(buf, 1, CHUNK_BYTES, f);
        if (got == 0) {
            if (ferror(f)) r = lnl_err(e, "--input: %s: read error at offset %llu: %s", path,
                                       (unsigned long long)*bytes, strerror(errno));
            break;
        }
        *bytes += got;
        r = doc_feed(p, buf, got, e);
    }
    if (r == 0) r = doc_end(p, e);
    free(buf);
    fclose(f);
    return r;
}

/* Finds an executable in $PATH. */
static int in_path(const char *prog) {
    const char *path = getenv("PATH");
    if (!path) return 0;
    char *dirs = lnl_strdup(path);
    int found = 0;
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        char *full = lnl_path_join(*d ? d : ".", prog);
        found = access(full, X_OK) == 0;
        free(full);
    }
    free(dirs);
    return found;
}

/* The King James Bible from Debian's bible-kjv: `bible -f` prints one verse per line as
 * "<book abbreviation><chapter>:<verse> <text>"; each book becomes one document made of its
 * verse texts, one per line, without the references. */
static int feed_kjv(Prep *p, uint64_t *bytes, LnlErr *e) {
    if (!in_path("bible"))
        return lnl_err(e, "--corpus kjv: the 'bible' program (Debian package bible-kjv) is not installed; "
                          "scripts/setup installs it");
    FILE *f = popen("bible -f " KJV_RANGE " </dev/null 2>/dev/null", "r");
    if (!f) return lnl_err(e, "--corpus kjv: cannot run bible: %s", strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    char book[32] = "";
    int r = 0, books = 0;
    uint64_t verses = 0;
    *bytes = 0;
    while (r == 0 && (len = getline(&line, &cap, f)) > 0) {
        char *sp = memchr(line, ' ', (size_t)len);
        char *colon = memchr(line, ':', sp ? (size_t)(sp - line) : 0);
        if (!sp || !colon) {
            r = lnl_err(e, "--corpus kjv: unexpected line %llu from 'bible -f': %.60s", (unsigned long long)verses + 1,
                        line);
            break;
        }
        char *q = colon;
        while (q > line && q[-1] >= '0' && q[-1] <= '9') q--;
        size_t blen = (size_t)(q - line);
        if (blen == 0 || blen >= sizeof book) {
            r = lnl_err(e, "--corpus kjv: no book name in line %llu from 'bible -f': %.60s",
                        (unsigned long long)verses + 1, line);
            break;
        }
        if (strlen(book) != blen || memcmp(book, line, blen) != 0) {
            if (books > 0 && (r = doc_end(p, e)) != 0) break;
            memcpy(book, line, blen);
            book[blen] = 0;
            books++;
            if ((r = doc_begin(p, e)) != 0) break;
        }
        size_t tlen = (size_t)len - (size_t)(sp + 1 - line);
        *bytes += tlen;
        verses++;
        r = doc_feed(p, sp + 1, tlen, e);
    }
    if (r == 0 && books > 0) r = doc_end(p, e);
    free(line);
    int st = pclose(f);
    if (r) return r;
    st = st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (st != 0 || books != KJV_BOOKS)
        return lnl_err(e, "--corpus kjv: 'bible -f %s' failed (exit status %d, %d books, %llu verses; expected %d "
                          "books); reinstall bible-kjv with scripts/setup",
                       KJV_RANGE, st, books, (unsigned long long)verses, KJV_BOOKS);
    return 0;
}

/* The Brown corpus (brown.h): one document per file, every genre's train files in corpus order,
 * then every genre's val files, so val is the tail of the stream as for any input. */
static int feed_brown(Prep *p, const LnlBrown *b, uint64_t *bytes, LnlErr *e) {
    LnlBuf text = {0};
    int r = 0;
    *bytes = 0;
    for (int val = 0; val <= 1 && r == 0; val++) {
        if (val) p->val_first_doc = p->ndocs;
        for (int i = 0; i < b->nfiles && r == 0; i++) {
            if (b->files[i].val != val) continue;
            char *path = lnl_path_join(b->dir, b->files[i].name);
            char *tagged = NULL;
            size_t n = 0;
            text.len = 0;
            r = lnl_read_file(path, &tagged, &n, e);
            if (r == 0) r = lnl_brown_text(path, tagged, n, &text, e);
            if (r == 0) r = doc_begin(p, e);
            if (r == 0) r = doc_feed(p, text.data, text.len, e);
            if (r == 0) r = doc_end(p, e);
            *bytes += text.len;
            free(tagged);
            free(path);
        }
    }
    lnl_buf_free(&text);
    return r;
}

/* Token index where val starts; sets *at_doc to whether it is a document boundary. */
static uint64_t choose_cut(const Prep *p, uint64_t ntok, double frac, int *at_doc) {
    double v = floor(frac * (double)ntok + 0.5);
    if (v < 1) v = 1;
    if (v > (double)(ntok - 1)) v = (double)(ntok - 1);
    uint64_t ideal = ntok - (uint64_t)v;
    uint64_t best = 0, bestd = UINT64_MAX;
    for (size_t i = 1; i < p->ndocs; i++) {
        uint64_t s = p->doc_start[i];
        uint64_t d = s > ideal ? s - ideal : ideal - s;
        if (s > 0 && s < ntok && d < bestd) {
            best = s;
            bestd = d;
        }
    }
    *at_doc = bestd != UINT64_MAX && (double)bestd <= SPLIT_DOC_TOLERANCE * v;
    return *at_doc ? best : ideal;
}

static int write_meta(const char *path, const Prep *p, const char *kind, const Source *src, int nsrc,
                      const char *corpus, const LnlBrown *brown, double frac, uint64_t cut, int at_doc, uint64_t ntok,
                      size_t val_doc, LnlErr *e) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "format", LNL_DATASET_FORMAT);
    cJSON_AddNumberToObject(m, "format_version", LNL_DATASET_FORMAT_VERSION);
    cJSON_AddStringToObject(m, "tokenizer", kind);
    cJSON_AddNumberToObject(m, "vocab_size", lnl_tok_vocab_size(p->tok));
    cJSON_AddNumberToObject(m, "eot", p->eot);
    cJSON_AddStringToObject(m, "eot_placement", "before each document");
    cJSON_AddNumberToObject(m, "documents", (double)p->ndocs);
    cJSON_AddNumberToObject(m, "val_fraction", frac);
    cJSON *tok = cJSON_AddObjectToObject(m, "tokens");
    cJSON_AddNumberToObject(tok, "train", (double)cut);
    cJSON_AddNumberToObject(tok, "val", (double)(ntok - cut));
    cJSON_AddNumberToObject(tok, "total", (double)ntok);
    cJSON *sp = cJSON_AddObjectToObject(m, "split");
    cJSON_AddStringToObject(sp, "cut", at_doc ? "document" : "token");
    cJSON_AddNumberToObject(sp, "val_first_document", (double)val_doc);
    cJSON_AddStringToObject(sp, "train_file", "train.bin");
    cJSON_AddStringToObject(sp, "val_file", "val.bin");
    if (corpus) cJSON_AddStringToObject(m, "corpus", corpus);
    cJSON *s = cJSON_AddArrayToObject(m, "sources");
    for (int i = 0; i < nsrc; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, corpus ? "name" : "path", src[i].name);
        if (corpus && brown->nfiles) {
            cJSON_AddStringToObject(o, "dir", brown->dir);
            cJSON_AddNumberToObject(o, "files", brown->nfiles);
            cJSON_AddNumberToObject(o, "genres", brown->ngenres);
            cJSON_AddNumberToObject(o, "val_files", brown->nval);
        } else if (corpus) {
            cJSON_AddStringToObject(o, "command", "bible -f " KJV_RANGE);
        }
        cJSON_AddNumberToObject(o, "bytes", (double)src[i].bytes);
        cJSON_AddItemToArray(s, o);
    }
    char *txt = cJSON_Print(m);
    cJSON_Delete(m);
    size_t n = strlen(txt);
    LnlBuf b = {0};
    lnl_buf_append(&b, txt, n);
    lnl_buf_append(&b, "\n", 1);
    free(txt);
    int r = lnl_write_file_atomic(path, b.data, b.len, e);
    lnl_buf_free(&b);
    return r;
}

int cmd_prepare(int argc, char **argv) {
    LnlStrList inputs = {0};
    const char *corpus = NULL, *kind = "gpt2", *vocab = NULL, *corpora = NULL, *out = NULL;
    double frac = 0.1;
    LnlFlag flags[] = {
        {.name = "--input", .type = LNL_FLAG_LIST, .dest = &inputs, .lo = 1, .hi = 0,
         .help = "input text files, one document each"},
        {.name = "--corpus", .type = LNL_FLAG_STR, .dest = &corpus, .lo = 1, .hi = 0, .choices = "kjv|brown",
         .help = "built-in corpus instead of --input (kjv: King James Bible, one document per book; brown: Brown "
                 "corpus, one document per file, val from every genre)"},
        {.name = "--tokenizer", .type = LNL_FLAG_STR, .dest = &kind, .lo = 1, .hi = 0, .choices = "gpt2|byte",
         .help = "GPT-2 byte-level BPE, or bytes (ids 0..255, end-of-text 256)"},
        {.name = "--vocab", .type = LNL_FLAG_STR, .dest = &vocab, .lo = 1, .hi = 0,
         .help = "GPT-2 vocabulary directory; none: $LNLAB_VOCAB, else vocab/gpt2 beside the lnlab executable"},
        {.name = "--corpora", .type = LNL_FLAG_STR, .dest = &corpora, .lo = 1, .hi = 0,
         .help = "directory holding the installed corpus brown/ (scripts/setup fetches it); none: $" LNL_CORPORA_ENV
                 ", else " LNL_CORPORA_DEFAULT " beside the lnlab executable"},
        {.name = "--val-fraction", .type = LNL_FLAG_FLOAT, .dest = &frac, .lo = 0, .hi = 1,
         .help = "fraction of the tokens, at the end of the stream, that go to val (brown: of each genre's files); "
                 "in (0, 1)"},
        {.name = "--out", .type = LNL_FLAG_STR, .dest = &out, .lo = 1, .hi = 0,
         .help = "output directory for train.bin, val.bin and meta.json (required)"},
    };

    int nflags = (int)(sizeof flags / sizeof flags[0]);
    const char *pos[1];
    int npos;
    lnl_flags_parse_or_exit("prepare", "(--input PATH... | --corpus kjv|brown) [--tokenizer gpt2|byte] --out DIR",
                            flags, nflags, argc, argv, pos, 0, &npos);
    if (!out) lnl_die(2, "prepare: --out DIR is required");
    if (inputs.n > 0 && corpus) lnl_die(2, "prepare: give --input or --corpus, not both");
    if (inputs.n == 0 && !corpus) lnl_die(2, "prepare: no inputs: give --input PATH... or --corpus kjv|brown");
    if (!(frac > 0 && frac < 1)) lnl_die(2, "--val-fraction: %g is out of range (0, 1), both ends excluded", frac);
    if (vocab && strcmp(kind, "gpt2") != 0) lnl_die(2, "--vocab: only used with --tokenizer gpt2");
    int is_brown = corpus && strcmp(corpus, "brown") == 0;
    if (corpora && !is_brown) lnl_die(2, "--corpora: only used with --corpus brown");

    /* Everything that can be checked before writing is checked first. */
    LnlErr e;
    Source *src = lnl_calloc(corpus ? 1 : (size_t)inputs.n, sizeof(Source));
    int nsrc = corpus ? 1 : inputs.n;
    uint64_t known = 0;
    for (int i = 0; i < inputs.n; i++) {
        const char *in = inputs.items[i];
        struct stat st;
        if (stat(in, &st) != 0) lnl_die(1, "--input: %s: %s", in, strerror(errno));
        if (S_ISDIR(st.st_mode)) lnl_die(1, "--input: %s: is a directory, expected a file", in);
        if (access(in, R_OK) != 0) lnl_die(1, "--input: %s: %s", in, strerror(errno));
        if (S_ISREG(st.st_mode)) known += (uint64_t)st.st_size;
        src[i].name = in;
    }
    if (corpus) src[0].name = corpus;
    int any_unknown = 0;
    for (int i = 0; i < inputs.n; i++) {
        struct stat st;
        if (stat(inputs.items[i], &st) == 0 && !S_ISREG(st.st_mode)) any_unknown = 1;
    }
    if (inputs.n > 0 && known == 0 && !any_unknown)
        lnl_die(1, "--input: the input is empty (0 bytes in %d file%s)", inputs.n, inputs.n == 1 ? "" : "s");
    LnlBrown brown;
    memset(&brown, 0, sizeof brown);
    if (is_brown) {
        char *dir = corpora ? lnl_strdup(corpora) : lnl_corpora_default_dir();
        if (lnl_brown_open(&brown, dir, frac, &e)) lnl_die(1, "%s", e.msg);
        free(dir);
    }

    Prep p;
    memset(&p, 0, sizeof p);
    if (lnl_tok_open(&p.tok, kind, vocab, &e)) lnl_die(1, "%s", e.msg);
    p.chunk_any = strcmp(kind, "byte") == 0;
    p.eot = lnl_tok_eot(p.tok);
    p.bytes_total = known;
    p.progress = known > PROGRESS_MIN_BYTES;
    p.t0 = p.last_report = lnl_now();

    struct stat ost;
    int made_dir = stat(out, &ost) != 0;
    if (!made_dir && !S_ISDIR(ost.st_mode)) lnl_die(1, "--out: %s: exists and is not a directory", out);
    if (lnl_mkdir_p(out, &e)) lnl_die(1, "--out: %s", e.msg);
    char *train_path = lnl_path_join(out, "train.bin");
    char *val_path = lnl_path_join(out, "val.bin");
    char *meta_path = lnl_path_join(out, LNL_DATASET_META);
    LnlShardWriter val;
    memset(&val, 0, sizeof val);
    int r = lnl_shard_writer_open(&p.all, train_path, &e);
    if (r == 0) r = lnl_shard_writer_open(&val, val_path, &e);
    for (int i = 0; r == 0 && i < inputs.n; i++) r = feed_file(&p, inputs.items[i], &src[i].bytes, &e);
    if (r == 0 && is_brown) r = feed_brown(&p, &brown, &src[0].bytes, &e);
    else if (r == 0 && corpus) r = feed_kjv(&p, &src[0].bytes, &e);
    report(&p, 1);

    uint64_t bytes = 0;
    for (int i = 0; i < nsrc; i++) bytes += src[i].bytes;
    uint64_t ntok = p.all.ntok, cut = 0;
    int at_doc = 0;
    size_t val_doc = 0;
    if (r == 0 && bytes == 0)
        r = lnl_err(&e, "--input: the input is empty (0 bytes in %d file%s)", nsrc, nsrc == 1 ? "" : "s");
    if (r == 0) {
        if (p.val_first_doc > 0) {
            assert(p.val_first_doc < p.ndocs); /* lnl_brown_open puts a file of each genre in val */
            cut = p.doc_start[p.val_first_doc];
            at_doc = 1;
        } else {
            cut = choose_cut(&p, ntok, frac, &at_doc);
        }
        while (val_doc < p.ndocs && p.doc_start[val_doc] < cut) val_doc++;
        if (!at_doc) val_doc--; /* val starts inside the document before */
        r = lnl_shard_writer_move_tail(&p.all, cut, &val, &e);
    }
    int val_done = 0;
    if (r == 0) r = lnl_shard_writer_finish(&val, &e);
    if (r == 0) {
        val_done = 1;
        r = lnl_shard_writer_finish(&p.all, &e);
    }
    if (r == 0) {
        r = write_meta(meta_path, &p, kind, src, nsrc, corpus, &brown, frac, cut, at_doc, ntok, val_doc, &e);
        if (r) unlink(train_path);
    }
    if (r) {
        lnl_shard_writer_abort(&p.all);
        lnl_shard_writer_abort(&val);
        if (val_done) unlink(val_path);
        if (made_dir) rmdir(out);
        lnl_die(1, "%s", e.msg);
    }
    printf("prepare: %s: %llu documents, %llu bytes -> train %llu tokens, val %llu tokens (%s tokenizer, cut at a %s)\n",
           out, (unsigned long long)p.ndocs, (unsigned long long)bytes, (unsigned long long)cut,
           (unsigned long long)(ntok - cut), kind, at_doc ? "document boundary" : "token");

    free(train_path);
    free(val_path);
    free(meta_path);
    free(src);
    free(inputs.items);
    lnl_brown_free(&brown);
    lnl_buf_free(&p.pending);
    lnl_ids_free(&p.ids);
    free(p.doc_start);
    lnl_tok_free(p.tok);
    return 0;
}
