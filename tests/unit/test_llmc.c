/* llm.c model file: write/read round trip of a tiny model, vocab padding written as zeros and
 * dropped on read, and an error for every malformed header or size. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "io/llmc.h"

static char tmpdir[256];

static char *tmp(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* maxT 8, V 10, L 2, NH 2, C 4 */
static LnlLlmcHeader tiny(int vp) {
    LnlLlmcHeader h = {.max_seq_len = 8, .vocab_size = 10, .num_layers = 2, .num_heads = 2, .channels = 4,
                       .padded_vocab_size = vp};
    return h;
}

typedef struct {
    float *t[LNL_LLMC_NUM_TENSORS];
    size_t n[LNL_LLMC_NUM_TENSORS];
} Params;

/* Distinct values per tensor and element, so a shifted or swapped tensor is caught. */
static void params_init(Params *p, const LnlLlmcHeader *h, int fill) {
    lnl_llmc_tensor_sizes(h, p->n);
    for (int i = 0; i < LNL_LLMC_NUM_TENSORS; i++) {
        p->t[i] = malloc((p->n[i] ? p->n[i] : 1) * sizeof(float));
        for (size_t k = 0; k < p->n[i]; k++) p->t[i][k] = fill ? (float)(i + 1) + 0.001f * (float)k : -1.0f;
    }
}

static void params_free(Params *p) {
    for (int i = 0; i < LNL_LLMC_NUM_TENSORS; i++) free(p->t[i]);
}

static void write_tiny(const char *path, int vp) {
    LnlLlmcHeader h = tiny(vp);
    Params p;
    params_init(&p, &h, 1);
    LnlErr e = {""};
    int r = lnl_llmc_write(path, &h, (const float *const *)p.t, &e);
    CHECK(r == 0, "write %s: %s", path, e.msg);
    params_free(&p);
}

static void patch_i32(const char *path, long off, int32_t v) {
    FILE *f = fopen(path, "r+b");
    if (!f) return;
    fseek(f, off, SEEK_SET);
    fwrite(&v, 4, 1, f);
    fclose(f);
}

static void append_bytes(const char *path, size_t n) {
    FILE *f = fopen(path, "ab");
    if (!f) return;
    for (size_t i = 0; i < n; i++) fputc(0, f);
    fclose(f);
}

static void expect_header_error(const char *path, const char *want) {
    LnlLlmcHeader h;
    LnlErr e = {""};
    int r = lnl_llmc_read_header(path, &h, &e);
    CHECK(r == -1 && strstr(e.msg, path) && strstr(e.msg, want) && !strchr(e.msg, '\n'), "'%s' lacks '%s'", e.msg,
          want);
}

static void test_names_and_sizes(void) {
    CHECK(strcmp(lnl_llmc_tensor_name(0), "wte") == 0 && strcmp(lnl_llmc_tensor_name(4), "qkvw") == 0 &&
              strcmp(lnl_llmc_tensor_name(15), "lnfb") == 0 && lnl_llmc_tensor_name(16) == NULL,
          "names");
    CHECK(lnl_llmc_padded_vocab(50257) == 50304 && lnl_llmc_padded_vocab(128) == 128 &&
              lnl_llmc_padded_vocab(10) == 128 && lnl_llmc_padded_vocab(129) == 256,
          "padding");
    LnlLlmcHeader h = tiny(128);
    size_t s[LNL_LLMC_NUM_TENSORS];
    lnl_llmc_tensor_sizes(&h, s);
    const size_t want[LNL_LLMC_NUM_TENSORS] = {10 * 4, 8 * 4, 2 * 4,  2 * 4,  2 * 12 * 4, 2 * 12, 2 * 4 * 4, 2 * 4,
                                               2 * 4,  2 * 4, 2 * 16 * 4, 2 * 16, 2 * 4 * 16, 2 * 4, 4, 4};
    size_t sum = 0;
    for (int i = 0; i < LNL_LLMC_NUM_TENSORS; i++) {
        CHECK(s[i] == want[i], "%s: %zu, want %zu", lnl_llmc_tensor_name(i), s[i], want[i]);
        sum += want[i];
    }
    CHECK(lnl_llmc_file_params(&h) == sum + (128 - 10) * 4, "file params %llu",
          (unsigned long long)lnl_llmc_file_params(&h));
    /* GPT-2 124M: the count in llm.c's log */
    LnlLlmcHeader g = {1024, 50257, 12, 12, 768, 50304};
    CHECK(lnl_llmc_file_params(&g) == 124475904ULL, "gpt2 params %llu", (unsigned long long)lnl_llmc_file_params(&g));
}

static void roundtrip(int vp_given, int vp_want) {
    const char *path = tmp("rt.bin");
    LnlLlmcHeader h = tiny(vp_given);
    Params src, dst;
    params_init(&src, &h, 1);
    LnlErr e = {""};
    int r = lnl_llmc_write(path, &h, (const float *const *)src.t, &e);
    CHECK(r == 0, "write: %s", e.msg);
    LnlLlmcHeader rh;
    r = lnl_llmc_read_header(path, &rh, &e);
    CHECK(r == 0, "read header: %s", e.msg);
    if (r) {
        params_free(&src);
        return;
    }
    CHECK(rh.max_seq_len == 8 && rh.vocab_size == 10 && rh.num_layers == 2 && rh.num_heads == 2 && rh.channels == 4 &&
              rh.padded_vocab_size == vp_want,
          "header %d %d %d %d %d %d", rh.max_seq_len, rh.vocab_size, rh.num_layers, rh.num_heads, rh.channels,
          rh.padded_vocab_size);
    uint64_t size = 0;
    lnl_file_size(path, &size, &e);
    CHECK(size == LNL_LLMC_HEADER_BYTES + 4 * lnl_llmc_file_params(&rh), "file size %llu", (unsigned long long)size);

    /* raw bytes: header slots, zero padding rows, lnfb last */
    char *raw;
    size_t n;
    if (lnl_read_file(path, &raw, &n, &e) == 0) {
        int32_t hd[LNL_LLMC_HEADER_INTS];
        memcpy(hd, raw, sizeof hd);
        CHECK(hd[0] == LNL_LLMC_MAGIC && hd[1] == 3 && hd[7] == vp_want, "raw header %d %d %d", hd[0], hd[1], hd[7]);
        int zero = 1;
        for (int i = 8; i < LNL_LLMC_HEADER_INTS; i++) zero &= hd[i] == 0;
        CHECK(zero, "header slots 8..255 are not zero");
        const float *wte = (const float *)(raw + LNL_LLMC_HEADER_BYTES);
        CHECK(memcmp(wte, src.t[0], 10 * 4 * sizeof(float)) == 0, "wte rows 0..V-1");
        zero = 1;
        for (int k = 10 * 4; k < vp_want * 4; k++) zero &= wte[k] == 0.0f;
        CHECK(zero, "padding rows V..Vp-1 are not zero");
        CHECK(memcmp(wte + vp_want * 4, src.t[1], src.n[1] * sizeof(float)) == 0, "wpe follows the padded wte");
        CHECK(memcmp(raw + n - 16, src.t[15], 16) == 0, "lnfb at the end");
        free(raw);
    }

    params_init(&dst, &rh, 0);
    r = lnl_llmc_read_params(path, &rh, dst.t, &e);
    CHECK(r == 0, "read params: %s", e.msg);
    for (int i = 0; i < LNL_LLMC_NUM_TENSORS; i++)
        CHECK(dst.n[i] == src.n[i] && memcmp(dst.t[i], src.t[i], src.n[i] * sizeof(float)) == 0, "tensor %s differs",
              lnl_llmc_tensor_name(i));

    /* NULL destinations skip tensors, including the padded wte */
    Params part;
    params_init(&part, &rh, 0);
    float *sel[LNL_LLMC_NUM_TENSORS] = {0};
    sel[LNL_LLMC_WPE] = part.t[LNL_LLMC_WPE];
    sel[LNL_LLMC_FCW] = part.t[LNL_LLMC_FCW];
    sel[LNL_LLMC_LNFB] = part.t[LNL_LLMC_LNFB];
    r = lnl_llmc_read_params(path, &rh, sel, &e);
    CHECK(r == 0, "partial read: %s", e.msg);
    for (int i = 0; i < LNL_LLMC_NUM_TENSORS; i++) {
        int want_read = i == LNL_LLMC_WPE || i == LNL_LLMC_FCW || i == LNL_LLMC_LNFB;
        CHECK((memcmp(part.t[i], src.t[i], src.n[i] * sizeof(float)) == 0) == want_read, "partial %s",
              lnl_llmc_tensor_name(i));
    }
    params_free(&part);
    params_free(&src);
    params_free(&dst);
}

static void test_roundtrip_auto_pad(void) { roundtrip(0, 128); }
static void test_roundtrip_no_pad(void) { roundtrip(10, 10); }
static void test_roundtrip_small_pad(void) { roundtrip(16, 16); }

static void test_bad_files(void) {
    const char *p;
    LnlLlmcHeader h;
    LnlErr e = {""};
    CHECK(lnl_llmc_read_header(tmp("missing.bin"), &h, &e) == -1 && strstr(e.msg, "No such file"), "%s", e.msg);

    p = tmp("short.bin");
    FILE *f = fopen(p, "wb");
    fwrite("abc", 1, 3, f);
    fclose(f);
    expect_header_error(p, "truncated header: file is 3 bytes");

    p = tmp("magic.bin");
    write_tiny(p, 0);
    patch_i32(p, 0, 12345);
    expect_header_error(p, "bad magic at offset 0: expected 20240326 (llm.c model file), found 12345");
    patch_i32(p, 0, 20240520);
    expect_header_error(p, "token shard");

    p = tmp("v5.bin");
    write_tiny(p, 0);
    patch_i32(p, 4, 5);
    expect_header_error(p, "version 5 (bf16 parameters) is not supported");
    patch_i32(p, 4, 7);
    expect_header_error(p, "unsupported version 7 at offset 4: expected 3");
    patch_i32(p, 4, 1);
    expect_header_error(p, "before vocab padding");

    p = tmp("trunc.bin");
    write_tiny(p, 0);
    CHECK(truncate(p, LNL_LLMC_HEADER_BYTES + 100) == 0, "truncate");
    expect_header_error(p, "truncated: header (maxT 8, V 10, Vp 128, L 2, C 4) needs");
    write_tiny(p, 0);
    uint64_t size;
    lnl_file_size(p, &size, &e);
    CHECK(truncate(p, (off_t)size - 4) == 0, "truncate");
    expect_header_error(p, "truncated");

    p = tmp("trail.bin");
    write_tiny(p, 0);
    append_bytes(p, 4);
    expect_header_error(p, "4 trailing bytes");

    struct {
        long off;
        int32_t v;
        const char *want;
    } bad[] = {
        {4 * LNL_LLMC_H_CHANNELS, 6, "channels (6) is not a multiple of num_heads (4)"},
        {4 * LNL_LLMC_H_PADDED_VOCAB, 9, "padded_vocab_size (9) is less than vocab_size (10)"},
        {4 * LNL_LLMC_H_LAYERS, 0, "num_layers is 0, expected > 0"},
        {4 * LNL_LLMC_H_MAX_SEQ_LEN, -8, "max_seq_len is -8"},
        {4 * LNL_LLMC_H_VOCAB, 0, "vocab_size is 0"},
        {4 * LNL_LLMC_H_HEADS, 0, "num_heads is 0"},
        {4 * LNL_LLMC_H_LAYERS, 3, "truncated"},
        {4 * LNL_LLMC_H_LAYERS, 1, "trailing bytes"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = tmp("sizes.bin");
        write_tiny(p, 0);
        if (bad[i].off == 4 * LNL_LLMC_H_CHANNELS) patch_i32(p, 4 * LNL_LLMC_H_HEADS, 4);
        patch_i32(p, bad[i].off, bad[i].v);
        expect_header_error(p, bad[i].want);
    }

    /* sizes whose parameter count overflows 64 bits */
    p = tmp("huge.bin");
    write_tiny(p, 0);
    patch_i32(p, 4 * LNL_LLMC_H_LAYERS, 2147483647);
    patch_i32(p, 4 * LNL_LLMC_H_CHANNELS, 2147483646);
    patch_i32(p, 4 * LNL_LLMC_H_HEADS, 2);
    expect_header_error(p, "more parameters than fit in 64 bits");
}

static void test_read_params_errors(void) {
    const char *p = tmp("rp.bin");
    write_tiny(p, 0);
    LnlLlmcHeader h = tiny(128), other = tiny(256);
    Params dst;
    params_init(&dst, &h, 0);
    LnlErr e = {""};
    int r = lnl_llmc_read_params(p, &other, dst.t, &e);
    CHECK(r == -1 && strstr(e.msg, "differs from the one given"), "%s", e.msg);
    patch_i32(p, 4, 5);
    r = lnl_llmc_read_params(p, &h, dst.t, &e);
    CHECK(r == -1 && strstr(e.msg, "version 5"), "%s", e.msg);
    params_free(&dst);
}

static void test_write_errors(void) {
    const char *p = tmp("w.bin");
    unlink(p);
    LnlLlmcHeader h = tiny(0);
    Params src;
    params_init(&src, &h, 1);
    LnlErr e = {""};
    h.num_heads = 3;
    int r = lnl_llmc_write(p, &h, (const float *const *)src.t, &e);
    CHECK(r == -1 && strstr(e.msg, "not a multiple of num_heads") && strstr(e.msg, p), "%s", e.msg);
    h = tiny(5);
    r = lnl_llmc_write(p, &h, (const float *const *)src.t, &e);
    CHECK(r == -1 && strstr(e.msg, "padded_vocab_size (5) is less than vocab_size (10)"), "%s", e.msg);
    h = tiny(0);
    const float *missing[LNL_LLMC_NUM_TENSORS];
    memcpy(missing, src.t, sizeof missing);
    missing[LNL_LLMC_QKVB] = NULL;
    r = lnl_llmc_write(p, &h, missing, &e);
    CHECK(r == -1 && strstr(e.msg, "tensor qkvb: no data"), "%s", e.msg);
    CHECK(access(p, F_OK) != 0, "a file was written");
    r = lnl_llmc_write(tmp("no/such/dir.bin"), &h, (const float *const *)src.t, &e);
    CHECK(r == -1 && strstr(e.msg, "cannot create"), "%s", e.msg);
    params_free(&src);
}

static void cleanup(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/lnl_test_llmc_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN_TEST(test_names_and_sizes);
    RUN_TEST(test_roundtrip_auto_pad);
    RUN_TEST(test_roundtrip_no_pad);
    RUN_TEST(test_roundtrip_small_pad);
    RUN_TEST(test_bad_files);
    RUN_TEST(test_read_params_errors);
    RUN_TEST(test_write_errors);
    cleanup();
    TEST_MAIN_END();
}
