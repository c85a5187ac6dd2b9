/* Tokenizer tests: parity with the reference JavaScript encoder on committed fixtures, the
 * byte -> unicode table, round trips on random bytes (invalid UTF-8 included), the byte
 * tokenizer, and the errors for bad vocabularies. Run from the repository root; the
 * vocabulary comes from $LNLAB_VOCAB, else vocab/gpt2 (scripts/setup installs it). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/tokenizer.h"
#include "harness.h"

#define FIX "tests/fixtures/tokenizer/"

static const char *vocab_dir(void) {
    const char *v = getenv("LNLAB_VOCAB");
    return v && *v ? v : "vocab/gpt2";
}

static LnlTokenizer *open_or_fail(const char *kind, const char *dir) {
    LnlTokenizer *t = NULL;
    LnlErr e;
    if (lnl_tok_open(&t, kind, dir, &e)) {
        CHECK(0, "lnl_tok_open(%s): %s", kind, e.msg);
        return NULL;
    }
    return t;
}

static char *slurp(const char *path, size_t *len) {
    char *s = NULL;
    size_t n = 0;
    LnlErr e;
    if (lnl_read_file(path, &s, &n, &e)) {
        CHECK(0, "%s", e.msg);
        return NULL;
    }
    if (len) *len = n;
    return s;
}

static void spit(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        CHECK(0, "cannot write %s", path);
        return;
    }
    fputs(s, f);
    fclose(f);
}

static void parse_ids(const char *s, LnlIds *out) {
    char *end;
    while (*s) {
        long v = strtol(s, &end, 10);
        if (end == s) break;
        lnl_ids_push(out, (int32_t)v);
        s = end;
    }
}

/* Returns 1 if ids equal want; else reports where they first differ. */
static int same_ids(const char *what, const LnlIds *got, const LnlIds *want) {
    size_t i = 0;
    while (i < got->n && i < want->n && got->ids[i] == want->ids[i]) i++;
    if (i == got->n && i == want->n) return 1;
    CHECK(0, "%s: ids differ at %zu (got %zu ids, want %zu): got %d, want %d", what, i, got->n, want->n,
          i < got->n ? got->ids[i] : -1, i < want->n ? want->ids[i] : -1);
    return 0;
}

static int roundtrips(LnlTokenizer *t, const uint8_t *s, size_t n, const LnlIds *ids) {
    LnlBuf back = {0};
    LnlErr e;
    int ok = lnl_tok_decode(t, ids->ids, ids->n, &back, &e) == 0 && back.len == n &&
             (n == 0 || memcmp(back.data, s, n) == 0);
    lnl_buf_free(&back);
    return ok;
}

static void test_bytes_to_unicode(void) {
    uint32_t cp[256];
    lnl_gpt2_bytes_to_unicode(cp);
    CHECK(cp['A'] == 'A' && cp['!'] == '!' && cp['~'] == '~', "printable ASCII maps to itself");
    CHECK(cp[' '] == 0x120, "space -> U+%04X, want U+0120 (G-dot)", (unsigned)cp[' ']);
    CHECK(cp['\n'] == 0x10A, "newline -> U+%04X, want U+010A", (unsigned)cp['\n']);
    CHECK(cp[0] == 0x100 && cp[0xAD] == 0x143, "0x00 -> U+%04X, 0xAD -> U+%04X", (unsigned)cp[0], (unsigned)cp[0xAD]);
    char *s = slurp(FIX "bytes_to_unicode.txt", NULL);
    if (!s) return;
    int n = 0;
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        unsigned b, c;
        if (line[0] == '#') continue;
        if (sscanf(line, "%u %u", &b, &c) != 2 || b > 255) {
            CHECK(0, "bad fixture line '%s'", line);
            break;
        }
        CHECK(cp[b] == c, "byte %u -> U+%04X, reference U+%04X", b, (unsigned)cp[b], c);
        n++;
    }
    CHECK(n == 256, "fixture has %d bytes", n);
    free(s);
}

static void test_corpus_parity(void) {
    LnlTokenizer *t = open_or_fail("gpt2", vocab_dir());
    if (!t) return;
    size_t n;
    char *text = slurp(FIX "corpus.txt", &n), *want_s = slurp(FIX "corpus.ids", NULL);
    if (text && want_s) {
        LnlIds got = {0}, want = {0};
        LnlErr e;
        parse_ids(want_s, &want);
        CHECK(lnl_tok_encode(t, (const uint8_t *)text, n, &got, &e) == 0, "%s", e.msg);
        same_ids("corpus.txt", &got, &want);
        CHECK(roundtrips(t, (const uint8_t *)text, n, &got), "corpus.txt does not round-trip");
        /* A warm cache gives the same ids. */
        got.n = 0;
        CHECK(lnl_tok_encode(t, (const uint8_t *)text, n, &got, &e) == 0, "%s", e.msg);
        same_ids("corpus.txt, second pass", &got, &want);
        lnl_ids_free(&got);
        lnl_ids_free(&want);
    }
    free(text);
    free(want_s);
    lnl_tok_free(t);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Undoes the fixture's escapes (\\ \t \n \r \xHH) in place; returns the length, or -1. */
static long unescape(char *s) {
    char *o = s, *p = s;
    while (*p) {
        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }
        p++;
        switch (*p) {
        case '\\': *o++ = '\\'; p++; break;
        case 't': *o++ = '\t'; p++; break;
        case 'n': *o++ = '\n'; p++; break;
        case 'r': *o++ = '\r'; p++; break;
        case 'x':
            if (hexval(p[1]) < 0 || hexval(p[2]) < 0) return -1;
            *o++ = (char)(hexval(p[1]) * 16 + hexval(p[2]));
            p += 3;
            break;
        default: return -1;
        }
    }
    return o - s;
}

static void test_cases_parity(void) {
    LnlTokenizer *t = open_or_fail("gpt2", vocab_dir());
    if (!t) return;
    char *s = slurp(FIX "cases.tsv", NULL);
    int ncases = 0, nbad = 0;
    for (char *line = s ? strtok(s, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char *tab1 = strchr(line, '\t'), *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
        if (!tab2) {
            CHECK(0, "malformed line '%.40s'", line);
            break;
        }
        *tab1 = *tab2 = 0;
        long n = unescape(tab1 + 1);
        if (n < 0) {
            CHECK(0, "case %s: bad escape", line);
            break;
        }
        LnlIds got = {0}, want = {0};
        LnlErr e;
        parse_ids(tab2 + 1, &want);
        CHECK(lnl_tok_encode(t, (const uint8_t *)tab1 + 1, (size_t)n, &got, &e) == 0, "%s", e.msg);
        if (!same_ids(line, &got, &want)) nbad++;
        if (!roundtrips(t, (const uint8_t *)tab1 + 1, (size_t)n, &got)) {
            CHECK(0, "case %s does not round-trip", line);
            nbad++;
        }
        lnl_ids_free(&got);
        lnl_ids_free(&want);
        ncases++;
        if (nbad > 5) break;
    }
    CHECK(ncases > 300, "only %d cases in cases.tsv", ncases);
    free(s);
    lnl_tok_free(t);
}

/* ---- temp-dir vocabularies -------------------------------------------------------------- */

static char tmpdir[512];

static void make_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/lnl_tok_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "cannot create a temporary directory under %s\n", base ? base : "/tmp");
        exit(1);
    }
}

static void remove_tmpdir(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

/* Creates dir/<name> (a fresh subdirectory) and returns its path in a static buffer. */
static const char *subdir(const char *name) {
    static char p[600];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    LnlErr e;
    if (lnl_mkdir_p(p, &e)) CHECK(0, "%s", e.msg);
    return p;
}

static void put(const char *dir, const char *file, const char *content) {
    char *p = lnl_path_join(dir, file);
    spit(p, content);
    free(p);
}

/* A tiny but complete vocabulary: the 256 byte tokens, the given merges, and end-of-text. */
static char *tiny_encoder(const char *extra_tokens[], int nextra) {
    uint32_t cp[256];
    lnl_gpt2_bytes_to_unicode(cp);
    LnlBuf b = {0};
    lnl_buf_printf(&b, "{");
    for (int i = 0; i < 256; i++) {
        char ch[4] = {0};
        if (cp[i] < 0x80) ch[0] = (char)cp[i];
        else ch[0] = (char)(0xC0 | (cp[i] >> 6)), ch[1] = (char)(0x80 | (cp[i] & 0x3F));
        const char *esc = (ch[0] == '"' || ch[0] == '\\') ? "\\" : "";
        lnl_buf_printf(&b, "\"%s%s\": %d, ", esc, ch, i);
    }
    for (int i = 0; i < nextra; i++) lnl_buf_printf(&b, "\"%s\": %d, ", extra_tokens[i], 256 + i);
    lnl_buf_printf(&b, "\"<|endoftext|>\": %d}", 256 + nextra);
    return b.data;
}

static void expect_open_error(const char *dir, const char *want1, const char *want2) {
    LnlTokenizer *t = NULL;
    LnlErr e = {{0}};
    int rc = lnl_tok_open(&t, "gpt2", dir, &e);
    CHECK(rc == -1 && t == NULL, "opening %s succeeded, expected an error with '%s'", dir, want1);
    CHECK(strstr(e.msg, want1) != NULL, "error '%s' lacks '%s'", e.msg, want1);
    if (want2) CHECK(strstr(e.msg, want2) != NULL, "error '%s' lacks '%s'", e.msg, want2);
    CHECK(strchr(e.msg, '\n') == NULL, "error '%s' is not one line", e.msg);
    lnl_tok_free(t);
}

static void test_tiny_vocab(void) {
    const char *extra[] = {"ab", "abc", "\xC4\xA0" "abc"}; /* "Ġabc" */
    char *enc = tiny_encoder(extra, 3);
    const char *d = subdir("tiny");
    put(d, "encoder.json", enc);
    put(d, "vocab.bpe", "#version: 0.2\nab c\na b\n\xC4\xA0 abc\n");
    free(enc);
    LnlTokenizer *t = open_or_fail("gpt2", d);
    if (!t) return;
    CHECK(lnl_tok_vocab_size(t) == 260 && lnl_tok_eot(t) == 259, "vocab %d eot %d", lnl_tok_vocab_size(t),
          lnl_tok_eot(t));
    LnlIds ids = {0};
    LnlErr e;
    /* "abc abcab": a b -> ab (rank 1) enables ab c (rank 0); then Ġ abc (rank 2). */
    CHECK(lnl_tok_encode(t, (const uint8_t *)"abc abcab", 9, &ids, &e) == 0, "%s", e.msg);
    CHECK(ids.n == 3 && ids.ids[0] == 257 && ids.ids[1] == 258 && ids.ids[2] == 256, "got %zu ids: %d %d %d",
          ids.n, ids.n > 0 ? ids.ids[0] : -1, ids.n > 1 ? ids.ids[1] : -1, ids.n > 2 ? ids.ids[2] : -1);
    lnl_ids_free(&ids);
    lnl_tok_free(t);
}

static void test_hf_file_names(void) {
    const char *d = subdir("hf");
    char *enc_src = lnl_path_join(vocab_dir(), "encoder.json"), *bpe_src = lnl_path_join(vocab_dir(), "vocab.bpe");
    char *enc_dst = lnl_path_join(d, "vocab.json"), *bpe_dst = lnl_path_join(d, "merges.txt");
    char *abs_enc = realpath(enc_src, NULL), *abs_bpe = realpath(bpe_src, NULL);
    CHECK(abs_enc && abs_bpe, "no vocabulary in %s (run scripts/setup)", vocab_dir());
    if (abs_enc && abs_bpe) {
        CHECK(symlink(abs_enc, enc_dst) == 0 && symlink(abs_bpe, bpe_dst) == 0, "symlink failed");
        LnlTokenizer *a = open_or_fail("gpt2", d), *b = open_or_fail("gpt2", vocab_dir());
        if (a && b) {
            const char *text = "Hugging Face names: vocab.json + merges.txt, same ids. \xF0\x9F\x99\x82";
            LnlIds x = {0}, y = {0};
            LnlErr e;
            CHECK(lnl_tok_encode(a, (const uint8_t *)text, strlen(text), &x, &e) == 0, "%s", e.msg);
            CHECK(lnl_tok_encode(b, (const uint8_t *)text, strlen(text), &y, &e) == 0, "%s", e.msg);
            same_ids("vocab.json vs encoder.json", &x, &y);
            lnl_ids_free(&x);
            lnl_ids_free(&y);
        }
        lnl_tok_free(a);
        lnl_tok_free(b);
    }
    free(abs_enc);
    free(abs_bpe);
    free(enc_src);
    free(bpe_src);
    free(enc_dst);
    free(bpe_dst);
}

static void test_vocab_errors(void) {
    const char *extra[] = {"ab"};
    char *enc = tiny_encoder(extra, 1);
    const char *good_bpe = "#version: 0.2\na b\n";

    char missing[600];
    snprintf(missing, sizeof missing, "%s/does-not-exist", tmpdir);
    expect_open_error(missing, "does-not-exist", "scripts/setup");
    expect_open_error(subdir("empty"), "no GPT-2 vocabulary", "scripts/setup");

    const char *d = subdir("no_bpe");
    put(d, "encoder.json", enc);
    expect_open_error(d, "vocab.bpe is missing", "scripts/setup");

    d = subdir("truncated_json");
    put(d, "vocab.bpe", good_bpe);
    LnlBuf b = {0};
    lnl_buf_printf(&b, "%.*s", (int)strlen(enc) / 2, enc);
    put(d, "encoder.json", b.data);
    lnl_buf_free(&b);
    expect_open_error(d, "encoder.json: invalid JSON", NULL);

    d = subdir("trailing_json");
    put(d, "vocab.bpe", good_bpe);
    lnl_buf_printf(&b, "%s}", enc);
    put(d, "encoder.json", b.data);
    lnl_buf_free(&b);
    expect_open_error(d, "encoder.json: invalid JSON", NULL);

    d = subdir("json_array");
    put(d, "vocab.bpe", good_bpe);
    put(d, "encoder.json", "[1, 2, 3]");
    expect_open_error(d, "encoder.json: expected a JSON object", NULL);

    d = subdir("json_dup_id");
    put(d, "vocab.bpe", good_bpe);
    lnl_buf_printf(&b, "%.*s, \"zz\": 5}", (int)strlen(enc) - 1, enc);
    put(d, "encoder.json", b.data);
    lnl_buf_free(&b);
    expect_open_error(d, "encoder.json: id 5 is given to two tokens", NULL);

    d = subdir("json_id_range");
    put(d, "vocab.bpe", good_bpe);
    lnl_buf_printf(&b, "%.*s, \"zz\": 999}", (int)strlen(enc) - 1, enc);
    put(d, "encoder.json", b.data);
    lnl_buf_free(&b);
    expect_open_error(d, "encoder.json: id 999 of token 'zz' is out of range", NULL);

    d = subdir("json_dup_token");
    put(d, "vocab.bpe", good_bpe);
    lnl_buf_printf(&b, "%.*s, \"ab\": 258}", (int)strlen(enc) - 1, enc);
    put(d, "encoder.json", b.data);
    lnl_buf_free(&b);
    expect_open_error(d, "encoder.json: token 'ab' appears twice", NULL);

    d = subdir("json_string_id");
    put(d, "vocab.bpe", good_bpe);
    lnl_buf_printf(&b, "%.*s, \"zz\": \"258\"}", (int)strlen(enc) - 1, enc);
    put(d, "encoder.json", b.data);
    lnl_buf_free(&b);
    expect_open_error(d, "encoder.json: the id of token 'zz' is not an integer", NULL);

    d = subdir("bpe_bad_line");
    put(d, "encoder.json", enc);
    put(d, "vocab.bpe", "#version: 0.2\na b\nab\n");
    expect_open_error(d, "vocab.bpe: line 3: expected two tokens", NULL);

    d = subdir("bpe_unknown_token");
    put(d, "encoder.json", enc);
    put(d, "vocab.bpe", "#version: 0.2\na b\nab zzz\n");
    expect_open_error(d, "vocab.bpe: line 3: token 'zzz' is not in encoder.json", NULL);

    d = subdir("bpe_unknown_result");
    put(d, "encoder.json", enc);
    put(d, "vocab.bpe", "#version: 0.2\na b\nab c\n");
    expect_open_error(d, "vocab.bpe: line 3: merged token 'abc' is not in encoder.json", NULL);

    d = subdir("bpe_repeat");
    put(d, "encoder.json", enc);
    put(d, "vocab.bpe", "#version: 0.2\na b\na b\n");
    expect_open_error(d, "vocab.bpe: line 3: merge 'a b' repeats", NULL);

    d = subdir("bpe_empty");
    put(d, "encoder.json", enc);
    put(d, "vocab.bpe", "");
    expect_open_error(d, "vocab.bpe: no merges", NULL);

    d = subdir("bpe_blank_inside");
    put(d, "encoder.json", enc);
    put(d, "vocab.bpe", "#version: 0.2\n\na b\n");
    expect_open_error(d, "vocab.bpe: line 2: empty line", NULL);

    d = subdir("json_no_byte");
    put(d, "vocab.bpe", good_bpe);
    put(d, "encoder.json", "{\"a\": 0, \"b\": 1}");
    expect_open_error(d, "encoder.json: only 2 tokens", NULL);
    free(enc);

    LnlTokenizer *t = NULL;
    LnlErr e;
    CHECK(lnl_tok_open(&t, "wordpiece", NULL, &e) == -1 && strstr(e.msg, "unknown tokenizer"), "kind check");
}

/* Random byte strings built from pieces that cross every regex alternative, with invalid
 * UTF-8 mixed in: every one must decode back to exactly its bytes. */
static void test_roundtrip_random(void) {
    LnlTokenizer *t = open_or_fail("gpt2", vocab_dir());
    if (!t) return;
    static const char *pieces[] = {"a", "Zq", " the", "'s", "'ll", "'", " ", "   ", "\t", "\n", "\r\n", "0", "123",
                                   "\xC3\xA9", "\xE6\x97\xA5", "\xF0\x9F\x99\x82", "\xC2\xA0", "\xEF\xBB\xBF",
                                   "\xC2\x85", "!", "...", "<|endoftext|>", "\xCC\x81",
                                   /* invalid UTF-8 */
                                   "\x80", "\xFF", "\xC3", "\xE2\x82", "\xED\xA0\x80", "\xF0\x9F\x99", "\xC0\xAF",
                                   "\xF8\x88\x80\x80\x80"};
    const int npieces = (int)(sizeof pieces / sizeof pieces[0]);
    uint64_t state = 0x9E3779B97F4A7C15ull;
    LnlBuf s = {0};
    LnlIds ids = {0};
    LnlErr e;
    int failures = 0;
    for (int iter = 0; iter < 4000 && failures < 3; iter++) {
        s.len = 0;
        ids.n = 0;
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        int n = 1 + (int)((state >> 33) % 24);
        for (int k = 0; k < n; k++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t r = (uint32_t)(state >> 33);
            if (r % 5 == 0) { /* a raw random byte */
                uint8_t byte = (uint8_t)(r >> 8);
                lnl_buf_append(&s, &byte, 1);
            } else {
                const char *p = pieces[(r >> 3) % (uint32_t)npieces];
                lnl_buf_append(&s, p, strlen(p));
            }
        }
        if (lnl_tok_encode(t, (const uint8_t *)s.data, s.len, &ids, &e)) {
            CHECK(0, "iteration %d: %s", iter, e.msg);
            failures++;
            continue;
        }
        for (size_t i = 0; i < ids.n; i++)
            if (ids.ids[i] < 0 || ids.ids[i] >= LNL_GPT2_EOT) {
                CHECK(0, "iteration %d: id %d out of range", iter, ids.ids[i]);
                failures++;
                break;
            }
        if (!roundtrips(t, (const uint8_t *)s.data, s.len, &ids)) {
            CHECK(0, "iteration %d: %zu bytes do not round-trip", iter, s.len);
            failures++;
        }
    }
    lnl_buf_free(&s);
    lnl_ids_free(&ids);
    lnl_tok_free(t);
}

/* Long runs become one pre-token each: BPE must stay exact on them (their speed, n log n, is
 * the benchmark's business: tests do not time anything). */
static void test_long_runs(void) {
    LnlTokenizer *t = open_or_fail("gpt2", vocab_dir());
    if (!t) return;
    const size_t n = 1 << 20;
    uint8_t *s = lnl_malloc(n);
    static const char fills[] = {' ', 'a', '7', '!', '\n', '\x80'};
    LnlIds ids = {0};
    LnlErr e;
    for (size_t f = 0; f < sizeof fills; f++) {
        memset(s, fills[f], n);
        ids.n = 0;
        CHECK(lnl_tok_encode(t, s, n, &ids, &e) == 0, "%s", e.msg);
        CHECK(ids.n > 0 && ids.n <= n, "1 MiB of 0x%02X gave %zu ids", (unsigned)(uint8_t)fills[f], ids.n);
        CHECK(roundtrips(t, s, n, &ids), "1 MiB of 0x%02X does not round-trip", (unsigned)(uint8_t)fills[f]);
    }
    lnl_ids_free(&ids);
    free(s);
    lnl_tok_free(t);
}

static void test_eot_and_decode_errors(void) {
    LnlTokenizer *t = open_or_fail("gpt2", vocab_dir());
    if (!t) return;
    CHECK(lnl_tok_eot(t) == LNL_GPT2_EOT && lnl_tok_vocab_size(t) == LNL_GPT2_VOCAB, "eot %d vocab %d",
          lnl_tok_eot(t), lnl_tok_vocab_size(t));
    CHECK(strcmp(lnl_tok_kind(t), "gpt2") == 0, "kind");
    int32_t ids[] = {15496, LNL_GPT2_EOT};
    LnlBuf b = {0};
    LnlErr e;
    CHECK(lnl_tok_decode(t, ids, 2, &b, &e) == 0 && b.len == 18 && memcmp(b.data, "Hello<|endoftext|>", 18) == 0,
          "decode of Hello + EOT");
    lnl_buf_free(&b);
    int32_t bad[] = {1, LNL_GPT2_VOCAB};
    CHECK(lnl_tok_decode(t, bad, 2, &b, &e) == -1 && strstr(e.msg, "token 2: id 50257 is out of range"), "got '%s'",
          e.msg);
    int32_t neg[] = {-1};
    CHECK(lnl_tok_decode(t, neg, 1, &b, &e) == -1, "negative id accepted");
    lnl_buf_free(&b);
    lnl_tok_free(t);
}

static void test_byte_tokenizer(void) {
    LnlTokenizer *t = open_or_fail("byte", NULL);
    if (!t) return;
    CHECK(lnl_tok_vocab_size(t) == LNL_BYTE_VOCAB && lnl_tok_eot(t) == LNL_BYTE_EOT, "sizes");
    CHECK(strcmp(lnl_tok_kind(t), "byte") == 0, "kind");
    uint8_t all[256];
    for (int i = 0; i < 256; i++) all[i] = (uint8_t)(255 - i);
    LnlIds ids = {0};
    LnlErr e;
    CHECK(lnl_tok_encode(t, all, 256, &ids, &e) == 0 && ids.n == 256, "encode");
    for (int i = 0; i < 256 && ids.n == 256; i++) CHECK(ids.ids[i] == 255 - i, "id %d", i);
    CHECK(roundtrips(t, all, 256, &ids), "round trip");
    LnlBuf b = {0};
    int32_t eot[] = {'x', LNL_BYTE_EOT};
    CHECK(lnl_tok_decode(t, eot, 2, &b, &e) == 0 && b.len == 14 && memcmp(b.data, "x<|endoftext|>", 14) == 0,
          "eot decode");
    int32_t bad[] = {LNL_BYTE_VOCAB};
    CHECK(lnl_tok_decode(t, bad, 1, &b, &e) == -1 && strstr(e.msg, "out of range [0, 256]"), "got '%s'", e.msg);
    lnl_buf_free(&b);
    lnl_ids_free(&ids);
    lnl_tok_free(t);
}

int main(void) {
    make_tmpdir();
    RUN_TEST(test_bytes_to_unicode);
    RUN_TEST(test_corpus_parity);
    RUN_TEST(test_cases_parity);
    RUN_TEST(test_tiny_vocab);
    RUN_TEST(test_hf_file_names);
    RUN_TEST(test_vocab_errors);
    RUN_TEST(test_roundtrip_random);
    RUN_TEST(test_long_runs);
    RUN_TEST(test_eot_and_decode_errors);
    RUN_TEST(test_byte_tokenizer);
    remove_tmpdir();
    TEST_MAIN_END();
}
