/* Safetensors reader/writer and Hugging Face config.json: round trips, dtype conversion, and an
 * error (with a message naming the file and the field) for every malformed input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "io/hfconfig.h"
#include "io/safetensors.h"

static char tmpdir[256];

static char *tmp(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

/* A safetensors file with a given header length field, header text and data section. */
static void write_st_raw(const char *path, uint64_t hlen, const char *json, const void *data, size_t ndata) {
    size_t nj = strlen(json);
    uint8_t *buf = malloc(8 + nj + ndata + 1);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(hlen >> (8 * i));
    memcpy(buf + 8, json, nj);
    if (ndata) memcpy(buf + 8 + nj, data, ndata);
    write_bytes(path, buf, 8 + nj + ndata);
    free(buf);
}

static void write_st(const char *path, const char *json, size_t ndata) {
    uint8_t zeros[64] = {0};
    write_st_raw(path, strlen(json), json, zeros, ndata);
}

/* Opening must fail, the message must name the file and contain `want`. */
static void expect_open_error(const char *path, const char *want) {
    LnlSafetensors st;
    LnlErr e = {""};
    int r = lnl_st_open(&st, path, &e);
    CHECK(r == -1, "%s: expected an error containing '%s'", path, want);
    if (r == 0) {
        lnl_st_close(&st);
        return;
    }
    CHECK(strstr(e.msg, path) != NULL, "message does not name the file: %s", e.msg);
    CHECK(strstr(e.msg, want) != NULL, "message '%s' lacks '%s'", e.msg, want);
    CHECK(strchr(e.msg, '\n') == NULL, "message is not one line: %s", e.msg);
    CHECK(st.map == NULL && st.tensors == NULL, "state not cleared after an error");
}

static void test_dtypes(void) {
    for (int d = 0; d < LNL_ST_N_DTYPES; d++) {
        CHECK(lnl_st_dtype_name(d) != NULL, "dtype %d has no name", d);
        CHECK(lnl_st_dtype_parse(lnl_st_dtype_name(d)) == d, "dtype %d does not parse back", d);
        CHECK(lnl_st_dtype_size(d) >= 1 && lnl_st_dtype_size(d) <= 8, "dtype %d size", d);
    }
    CHECK(lnl_st_dtype_size(LNL_ST_BF16) == 2 && lnl_st_dtype_size(LNL_ST_F64) == 8, "sizes");
    CHECK(lnl_st_dtype_parse("f32") == -1 && lnl_st_dtype_parse("") == -1, "parse is exact");
    CHECK(lnl_st_dtype_name(-1) == NULL && lnl_st_dtype_name(LNL_ST_N_DTYPES) == NULL, "out of range");
}

static void test_roundtrip(void) {
    const char *path = tmp("rt.safetensors");
    float f32[6] = {1.5f, -2.25f, 3.0f, 0.0f, -0.0f, 1e-30f};
    /* 1, -2, 65504 (max), 2^-24 (smallest subnormal), 0.5, +inf, 2^-14 (smallest normal), -0 */
    uint16_t f16[8] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x3800, 0x7c00, 0x0400, 0x8000};
    float f16_want[8] = {1.0f, -2.0f, 65504.0f, 5.9604644775390625e-8f, 0.5f, INFINITY, 6.103515625e-5f, -0.0f};
    /* 1, -3, 3.140625, a subnormal, ~1e38 */
    uint16_t bf16[5] = {0x3f80, 0xc040, 0x4049, 0x0001, 0x7e96};
    double f64[2] = {0.1, -1e300};
    int32_t i32[5] = {0, -1, 2147483647, -2147483647 - 1, 42};
    int64_t i64[2] = {-5, 1234567};
    uint8_t u8[3] = {0, 7, 255};
    float scalar = 3.5f;
    int64_t s23[2] = {2, 3}, s8[1] = {8}, s5[1] = {5}, s2[1] = {2}, s3[1] = {3}, s04[2] = {0, 4};

    LnlStWriter w;
    lnl_stw_init(&w);
    lnl_stw_add(&w, "a.f32", LNL_ST_F32, 2, s23, f32, 0);
    lnl_stw_add(&w, "b.u8", LNL_ST_U8, 1, s3, u8, 0); /* odd byte count before wider types */
    lnl_stw_add(&w, "c.f16", LNL_ST_F16, 1, s8, f16, 0);
    lnl_stw_add(&w, "d.bf16", LNL_ST_BF16, 1, s5, bf16, 0);
    lnl_stw_add(&w, "e.f64", LNL_ST_F64, 1, s2, f64, 0);
    lnl_stw_add(&w, "f.i32", LNL_ST_I32, 1, s5, i32, 0);
    lnl_stw_add(&w, "g.i64", LNL_ST_I64, 1, s2, i64, 0);
    lnl_stw_add(&w, "h.empty", LNL_ST_F32, 2, s04, NULL, 0);
    lnl_stw_add(&w, "i.scalar", LNL_ST_F32, 0, NULL, &scalar, 0);
    float *owned = malloc(2 * sizeof(float));
    owned[0] = 7.0f, owned[1] = 8.0f;
    lnl_stw_add(&w, "j.owned \"q\"\n", LNL_ST_F32, 1, s2, owned, 1);
    lnl_stw_meta(&w, "format", "pt");
    lnl_stw_meta(&w, "lnlab.config", "{\"a\": [1, 2], \"s\": \"x\\\\y\"}\n\ttab \xc3\xa9");
    lnl_stw_meta(&w, "format", "pt2"); /* set twice: last wins */
    LnlErr e = {""};
    int r = lnl_stw_write(&w, path, &e);
    CHECK(r == 0, "write: %s", e.msg);
    lnl_stw_free(&w);

    LnlSafetensors st;
    r = lnl_st_open(&st, path, &e);
    CHECK(r == 0, "open: %s", e.msg);
    if (r) return;
    CHECK(st.n == 10, "n = %d", st.n);
    CHECK(st.data_start % 8 == 0, "data section starts at %llu", (unsigned long long)st.data_start);
    const char *names[10] = {"a.f32", "b.u8", "c.f16", "d.bf16", "e.f64", "f.i32", "g.i64", "h.empty", "i.scalar",
                             "j.owned \"q\"\n"};
    for (int i = 0; i < 10 && i < st.n; i++) {
        const LnlStTensor *t = &st.tensors[i];
        CHECK(strcmp(t->name, names[i]) == 0, "tensor %d is '%s', expected '%s' (order added)", i, t->name, names[i]);
        CHECK(t->begin % lnl_st_dtype_size(t->dtype) == 0, "'%s' at %llu is not aligned", t->name,
              (unsigned long long)t->begin);
        CHECK(lnl_st_find(&st, names[i]) == t, "find '%s'", names[i]);
    }
    CHECK(lnl_st_find(&st, "nope") == NULL, "find missing");
    CHECK(lnl_st_meta(&st, "format") && strcmp(lnl_st_meta(&st, "format"), "pt2") == 0, "meta format");
    CHECK(lnl_st_meta(&st, "lnlab.config") &&
              strcmp(lnl_st_meta(&st, "lnlab.config"), "{\"a\": [1, 2], \"s\": \"x\\\\y\"}\n\ttab \xc3\xa9") == 0,
          "meta with escapes: %s", lnl_st_meta(&st, "lnlab.config") ? lnl_st_meta(&st, "lnlab.config") : "(null)");
    CHECK(st.n_meta == 3 && lnl_st_meta(&st, LNL_ST_CRC_KEY) && lnl_st_meta(&st, "nope") == NULL,
          "meta count %d (format, lnlab.config, the checksums)", st.n_meta);

    const LnlStTensor *t = lnl_st_find(&st, "a.f32");
    CHECK(t && t->dtype == LNL_ST_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->numel == 6,
          "a.f32 header");
    CHECK(t && memcmp(lnl_st_data(&st, t), f32, sizeof f32) == 0, "a.f32 raw bytes");
    float out[8];
    CHECK(lnl_st_read_f32(&st, "a.f32", out, 6, &e) == 0 && memcmp(out, f32, sizeof f32) == 0, "a.f32: %s", e.msg);

    CHECK(lnl_st_read_f32(&st, "c.f16", out, 8, &e) == 0, "f16: %s", e.msg);
    for (int i = 0; i < 8; i++) {
        CHECK(out[i] == f16_want[i] || (isinf(out[i]) && isinf(f16_want[i])), "f16[%d] = %g, want %g", i, out[i],
              f16_want[i]);
        CHECK(signbit(out[i]) == signbit(f16_want[i]), "f16[%d] sign", i);
    }

    CHECK(lnl_st_read_f32(&st, "d.bf16", out, 5, &e) == 0, "bf16: %s", e.msg);
    CHECK(out[0] == 1.0f && out[1] == -3.0f && out[2] == 3.140625f, "bf16 = %g %g %g", out[0], out[1], out[2]);
    CHECK(out[3] == ldexpf(1.0f, -133), "bf16 subnormal = %g", out[3]);
    CHECK(out[4] == ldexpf(1.171875f, 126), "bf16 large = %g", out[4]); /* 0x7e96: 2^126 * (1 + 22/128) */

    CHECK(lnl_st_read_f32(&st, "e.f64", out, 2, &e) == 0, "f64: %s", e.msg);
    CHECK(out[0] == (float)0.1 && isinf(out[1]) && out[1] < 0, "f64 = %g %g", out[0], out[1]);

    int32_t iout[5];
    CHECK(lnl_st_read_i32(&st, "f.i32", iout, 5, &e) == 0 && memcmp(iout, i32, sizeof i32) == 0, "i32: %s", e.msg);
    t = lnl_st_find(&st, "f.i32");
    CHECK(t && memcmp(lnl_st_data(&st, t), i32, sizeof i32) == 0, "i32 raw");
    CHECK(lnl_st_read_i32(&st, "g.i64", iout, 2, &e) == 0 && iout[0] == -5 && iout[1] == 1234567, "i64: %s", e.msg);
    CHECK(lnl_st_read_i32(&st, "b.u8", iout, 3, &e) == 0 && iout[2] == 255, "u8: %s", e.msg);

    t = lnl_st_find(&st, "h.empty");
    CHECK(t && t->numel == 0 && t->begin == t->end && t->ndim == 2 && t->shape[0] == 0, "empty tensor");
    CHECK(lnl_st_read_f32(&st, "h.empty", out, 0, &e) == 0, "empty read: %s", e.msg);
    t = lnl_st_find(&st, "i.scalar");
    CHECK(t && t->ndim == 0 && t->numel == 1, "scalar");
    CHECK(lnl_st_read_f32(&st, "i.scalar", out, 1, &e) == 0 && out[0] == 3.5f, "scalar read: %s", e.msg);
    CHECK(lnl_st_read_f32(&st, "j.owned \"q\"\n", out, 2, &e) == 0 && out[0] == 7.0f && out[1] == 8.0f, "owned");

    /* read errors name the file and the tensor */
    r = lnl_st_read_f32(&st, "a.f32", out, 5, &e);
    CHECK(r == -1 && strstr(e.msg, path) && strstr(e.msg, "'a.f32'") && strstr(e.msg, "expected 5 elements, found 6"),
          "count mismatch: %s", e.msg);
    r = lnl_st_read_f32(&st, "zz", out, 1, &e);
    CHECK(r == -1 && strstr(e.msg, "'zz' not found"), "missing: %s", e.msg);
    r = lnl_st_read_f32(&st, "f.i32", out, 5, &e);
    CHECK(r == -1 && strstr(e.msg, "I32 cannot be read as float"), "i32 as float: %s", e.msg);
    r = lnl_st_read_i32(&st, "a.f32", iout, 6, &e);
    CHECK(r == -1 && strstr(e.msg, "F32 cannot be read as int32"), "f32 as int: %s", e.msg);
    /* the data section holds exactly the tensors' bytes, no holes */
    uint64_t ndata = sizeof f32 + sizeof u8 + sizeof f16 + sizeof bf16 + sizeof f64 + sizeof i32 + sizeof i64 + 4 + 8;
    CHECK(st.map_len == st.data_start + ndata, "file %zu bytes, data section at %llu, data %llu", st.map_len,
          (unsigned long long)st.data_start, (unsigned long long)ndata);
    lnl_st_close(&st);
    CHECK(st.map == NULL && st.n == 0, "close clears");
}

static void test_nan_conversion(void) {
    const char *path = tmp("nan.safetensors");
    uint16_t h[2] = {0x7e00, 0xfc00}, b[2] = {0x7fc0, 0xff80}; /* nan, -inf in F16 and BF16 */
    int64_t s2[1] = {2};
    LnlStWriter w;
    lnl_stw_init(&w);
    lnl_stw_add(&w, "h", LNL_ST_F16, 1, s2, h, 0);
    lnl_stw_add(&w, "b", LNL_ST_BF16, 1, s2, b, 0);
    LnlErr e = {""};
    CHECK(lnl_stw_write(&w, path, &e) == 0, "%s", e.msg);
    lnl_stw_free(&w);
    LnlSafetensors st;
    if (lnl_st_open(&st, path, &e)) {
        CHECK(0, "%s", e.msg);
        return;
    }
    float o[2];
    CHECK(lnl_st_read_f32(&st, "h", o, 2, &e) == 0 && isnan(o[0]) && isinf(o[1]) && o[1] < 0, "f16 %g %g", o[0], o[1]);
    CHECK(lnl_st_read_f32(&st, "b", o, 2, &e) == 0 && isnan(o[0]) && isinf(o[1]) && o[1] < 0, "bf16 %g %g", o[0],
          o[1]);
    lnl_st_close(&st);
}

static void test_layout_exact(void) {
    const char *path = tmp("layout.safetensors");
    float x[2] = {1, 2};
    int64_t s2[1] = {2};
    LnlStWriter w;
    lnl_stw_init(&w);
    w.no_checksums = 1; /* the exact bytes of a plain file; checksums are tested in test_checkpoint */
    lnl_stw_add(&w, "x", LNL_ST_F32, 1, s2, x, 0);
    LnlErr e = {""};
    CHECK(lnl_stw_write(&w, path, &e) == 0, "%s", e.msg);
    lnl_stw_free(&w);
    char *buf;
    size_t n;
    CHECK(lnl_read_file(path, &buf, &n, &e) == 0, "%s", e.msg);
    if (n < 8) return;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | (uint8_t)buf[i];
    const char *want = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    CHECK(hlen % 8 == 0 && hlen >= strlen(want) && hlen < strlen(want) + 8, "header length %llu",
          (unsigned long long)hlen);
    CHECK(strncmp(buf + 8, want, strlen(want)) == 0, "header '%.*s'", (int)hlen, buf + 8);
    for (size_t i = 8 + strlen(want); i < 8 + hlen; i++) CHECK(buf[i] == ' ', "padding byte %zu is not a space", i);
    CHECK(n == 8 + hlen + 8 && memcmp(buf + 8 + hlen, x, 8) == 0, "file size %zu", n);
    free(buf);
    /* nothing else left in the directory by the atomic write */
    char tmpname[600];
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", path, (long)getpid());
    CHECK(access(tmpname, F_OK) != 0, "temp file left behind");
}

static void test_hf_prefix(void) {
    const char *path = tmp("hf.safetensors");
    write_st(path,
             "{\"__metadata__\":{\"format\":\"pt\"},"
             "\"transformer.wte.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"lm_head.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
             "\"wpe.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]}}   ",
             20);
    LnlSafetensors st;
    LnlErr e = {""};
    int r = lnl_st_open(&st, path, &e);
    CHECK(r == 0, "open: %s", e.msg);
    if (r) return;
    CHECK(lnl_st_find(&st, "wte.weight") == NULL, "plain lookup must not add a prefix");
    const LnlStTensor *t = lnl_st_find_prefixed(&st, "transformer.", "wte.weight");
    CHECK(t && strcmp(t->name, "transformer.wte.weight") == 0, "prefixed lookup");
    t = lnl_st_find_prefixed(&st, "transformer.", "wpe.weight");
    CHECK(t && strcmp(t->name, "wpe.weight") == 0, "unprefixed name found first");
    CHECK(lnl_st_find_prefixed(&st, NULL, "wte.weight") == NULL, "NULL prefix");
    CHECK(lnl_st_find_prefixed(&st, "transformer.", "ln_f.weight") == NULL, "missing");
    CHECK(lnl_st_meta(&st, "format") && strcmp(lnl_st_meta(&st, "format"), "pt") == 0, "meta");
    lnl_st_close(&st);
}

static void test_minimal_files(void) {
    LnlSafetensors st;
    LnlErr e = {""};
    const char *path = tmp("empty_header.safetensors");
    write_st(path, "{}      ", 0);
    CHECK(lnl_st_open(&st, path, &e) == 0 && st.n == 0 && st.n_meta == 0, "'{}': %s", e.msg);
    lnl_st_close(&st);
    path = tmp("meta_only.safetensors");
    write_st(path, "{\"__metadata__\":{}}", 0);
    CHECK(lnl_st_open(&st, path, &e) == 0 && st.n == 0, "metadata only: %s", e.msg);
    lnl_st_close(&st);
    /* an empty tensor may sit at the very end of the data section */
    path = tmp("empty_last.safetensors");
    write_st(path,
             "{\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[3,0],\"data_offsets\":[4,4]}}",
             4);
    CHECK(lnl_st_open(&st, path, &e) == 0 && st.n == 2, "empty last: %s", e.msg);
    lnl_st_close(&st);
    /* a writer with nothing in it makes a valid file */
    LnlStWriter w;
    lnl_stw_init(&w);
    path = tmp("nothing.safetensors");
    CHECK(lnl_stw_write(&w, path, &e) == 0, "%s", e.msg);
    lnl_stw_free(&w);
    CHECK(lnl_st_open(&st, path, &e) == 0 && st.n == 0, "empty writer: %s", e.msg);
    lnl_st_close(&st);
}

static void test_malformed(void) {
    const char *p;
    p = tmp("m_empty");
    write_bytes(p, "", 0);
    expect_open_error(p, "too short for the 8-byte header length");
    p = tmp("m_short");
    write_bytes(p, "\x10\x00\x00", 3);
    expect_open_error(p, "too short");
    p = tmp("m_missing_file");
    expect_open_error(p, "No such file");
    p = tmp("m_hlen_past_end");
    write_st_raw(p, 100, "{}", NULL, 0);
    expect_open_error(p, "header length 100 at offset 0 is past the end of the file");
    p = tmp("m_hlen_huge");
    write_st_raw(p, 200000000ULL, "{}", NULL, 0);
    expect_open_error(p, "exceeds the limit");
    p = tmp("m_hlen_max");
    write_st_raw(p, UINT64_MAX, "{}", NULL, 0);
    expect_open_error(p, "exceeds the limit");
    p = tmp("m_bad_json");
    write_st(p, "{\"a\": {\"dtype\": ", 0);
    expect_open_error(p, "not valid JSON");
    p = tmp("m_json_garbage_after");
    write_st(p, "{} x", 0);
    expect_open_error(p, "not valid JSON");
    p = tmp("m_not_object");
    write_st(p, "[1, 2]", 0);
    expect_open_error(p, "does not start with '{'");
    p = tmp("m_zero_hlen");
    write_st(p, "", 0);
    expect_open_error(p, "does not start with '{'");
    p = tmp("m_nul");
    { /* write_st would stop at the NUL */
        uint8_t b[12] = {4, 0, 0, 0, 0, 0, 0, 0, '{', '}', 0, ' '};
        write_bytes(p, b, sizeof b);
    }
    expect_open_error(p, "NUL byte at offset 10");
    p = tmp("m_utf8");
    write_st(p, "{\"\xff\":{}}", 0);
    expect_open_error(p, "not valid UTF-8 at offset 10");
    p = tmp("m_unknown_dtype");
    write_st(p, "{\"w\":{\"dtype\":\"F12\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_open_error(p, "tensor 'w': unknown dtype 'F12'");
    p = tmp("m_dtype_not_string");
    write_st(p, "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_open_error(p, "tensor 'w': field 'dtype' is not a string");
    p = tmp("m_no_dtype");
    write_st(p, "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_open_error(p, "tensor 'w': missing field 'dtype'");
    p = tmp("m_no_shape");
    write_st(p, "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4);
    expect_open_error(p, "tensor 'w': missing field 'shape'");
    p = tmp("m_no_offsets");
    write_st(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4);
    expect_open_error(p, "tensor 'w': missing field 'data_offsets'");
    p = tmp("m_entry_not_object");
    write_st(p, "{\"w\":3}", 0);
    expect_open_error(p, "tensor 'w': header entry is not a JSON object");
    p = tmp("m_shape_negative");
    write_st(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4);
    expect_open_error(p, "tensor 'w': shape[0] is not a non-negative integer");
    p = tmp("m_shape_fraction");
    write_st(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2, 1.5],\"data_offsets\":[0,12]}}", 12);
    expect_open_error(p, "tensor 'w': shape[1] is not a non-negative integer");
    p = tmp("m_shape_string");
    write_st(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8);
    expect_open_error(p, "shape[0] is not a non-negative integer");
    p = tmp("m_shape_not_array");
    write_st(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8);
    expect_open_error(p, "field 'shape' is not an array");
    p = tmp("m_too_many_dims");
    write_st(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4);
    expect_open_error(p, "shape has 9 dimensions");
    p = tmp("m_shape_overflow");
    write_st(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}", 4);
    expect_open_error(p, "overflows 64 bits");
    p = tmp("m_overflow_before_zero"); /* as in the reference: the product overflows before the 0 */
    write_st(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,0],\"data_offsets\":[0,0]}}", 0);
    expect_open_error(p, "overflows 64 bits");
    p = tmp("m_bytes_overflow");
    write_st(p, "{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,1073741824],\"data_offsets\":[0,4]}}", 4);
    expect_open_error(p, "overflows 64 bits");
    p = tmp("m_shape_mismatch");
    write_st(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4);
    expect_open_error(p, "tensor 'w': F32 shape needs 8 bytes, data_offsets [0, 4] give 4");
    p = tmp("m_offsets_past_end");
    write_st(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4);
    expect_open_error(p, "tensor 'w': data_offsets [0, 8] past the end of the data section (4 bytes)");
    p = tmp("m_offsets_reversed");
    write_st(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4);
    expect_open_error(p, "end before begin");
    p = tmp("m_offsets_three");
    write_st(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8);
    expect_open_error(p, "data_offsets must be [begin, end]");
    p = tmp("m_offsets_negative");
    write_st(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4);
    expect_open_error(p, "data_offsets must be [begin, end]");
    p = tmp("m_overlap");
    write_st(p,
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
             12);
    expect_open_error(p, "tensors 'a' [0, 8] and 'b' [4, 12] overlap");
    p = tmp("m_same_range");
    write_st(p,
             "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"a\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
             8);
    expect_open_error(p, "overlap");
    p = tmp("m_hole");
    write_st(p,
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
             12);
    expect_open_error(p, "bytes [4, 8) of the data section belong to no tensor");
    p = tmp("m_trailing");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8);
    expect_open_error(p, "data section has 8 bytes but the tensors end at 4");
    p = tmp("m_duplicate");
    write_st(p,
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
             8);
    expect_open_error(p, "duplicate tensor name 'a'");
    p = tmp("m_meta_not_string");
    write_st(p, "{\"__metadata__\":{\"format\":\"pt\",\"n\":1}}", 0);
    expect_open_error(p, "__metadata__['n']: value is not a string");
    p = tmp("m_meta_null");
    write_st(p, "{\"__metadata__\":{\"k\":null}}", 0);
    expect_open_error(p, "__metadata__['k']: value is not a string");
    p = tmp("m_meta_not_object");
    write_st(p, "{\"__metadata__\":\"pt\"}", 0);
    expect_open_error(p, "__metadata__ is not a JSON object");
    p = tmp("m_meta_twice");
    write_st(p, "{\"__metadata__\":{},\"__metadata__\":{}}", 0);
    expect_open_error(p, "__metadata__ appears twice");
    p = tmp("m_meta_dup_key");
    write_st(p, "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0);
    expect_open_error(p, "duplicate key 'k'");
    p = tmp("m_dir");
    expect_open_error(tmpdir, "not a regular file");
}

static void test_writer_errors(void) {
    float x[2] = {1, 2};
    int64_t s2[1] = {2}, neg[1] = {-2};
    struct {
        const char *name;
        int dtype, ndim;
        const int64_t *shape;
        const void *data;
        const char *want;
    } cases[] = {
        {"x", LNL_ST_F32, 1, s2, x, "tensor 'x': added twice"},
        {"y", 99, 1, s2, x, "tensor 'y': unknown dtype"},
        {"y", LNL_ST_F32, 9, s2, x, "tensor 'y': ndim must be 0..8"},
        {"y", LNL_ST_F32, 1, neg, x, "tensor 'y': negative dimension"},
        {"y", LNL_ST_F32, 1, s2, NULL, "tensor 'y': NULL data"},
        {"", LNL_ST_F32, 1, s2, x, "empty name"},
        {"__metadata__", LNL_ST_F32, 1, s2, x, "reserved name"},
        {"\xc3", LNL_ST_F32, 1, s2, x, "not valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = tmp("werr.safetensors");
        unlink(path);
        LnlStWriter w;
        lnl_stw_init(&w);
        lnl_stw_add(&w, "x", LNL_ST_F32, 1, s2, x, 0);
        lnl_stw_add(&w, cases[i].name, cases[i].dtype, cases[i].ndim, cases[i].shape, cases[i].data, 0);
        lnl_stw_add(&w, "z", LNL_ST_F32, 1, s2, x, 0);
        LnlErr e = {""};
        int r = lnl_stw_write(&w, path, &e);
        CHECK(r == -1 && strstr(e.msg, cases[i].want) && strstr(e.msg, path), "case %zu: '%s' lacks '%s'", i, e.msg,
              cases[i].want);
        CHECK(access(path, F_OK) != 0, "case %zu: a file was written", i);
        lnl_stw_free(&w);
    }
    /* an owned buffer is freed even when the add is rejected (ASan checks for the leak) */
    LnlStWriter w;
    lnl_stw_init(&w);
    lnl_stw_add(&w, "o", 99, 1, s2, malloc(8), 1);
    lnl_stw_free(&w);
    /* metadata must be UTF-8 */
    lnl_stw_init(&w);
    lnl_stw_meta(&w, "k", "\xff");
    LnlErr e = {""};
    CHECK(lnl_stw_write(&w, tmp("wmeta.safetensors"), &e) == -1 && strstr(e.msg, "metadata 'k'"), "%s", e.msg);
    lnl_stw_free(&w);
    /* an unwritable directory */
    lnl_stw_init(&w);
    lnl_stw_add(&w, "x", LNL_ST_F32, 1, s2, x, 0);
    CHECK(lnl_stw_write(&w, tmp("no/such/dir.safetensors"), &e) == -1 && strstr(e.msg, "cannot create"), "%s",
          e.msg);
    lnl_stw_free(&w);
}

static void test_read_i32_range(void) {
    const char *path = tmp("i64.safetensors");
    int64_t v[2] = {1, (int64_t)1 << 40};
    int64_t s2[1] = {2};
    LnlStWriter w;
    lnl_stw_init(&w);
    lnl_stw_add(&w, "v", LNL_ST_I64, 1, s2, v, 0);
    LnlErr e = {""};
    CHECK(lnl_stw_write(&w, path, &e) == 0, "%s", e.msg);
    lnl_stw_free(&w);
    LnlSafetensors st;
    if (lnl_st_open(&st, path, &e)) {
        CHECK(0, "%s", e.msg);
        return;
    }
    int32_t out[2];
    CHECK(lnl_st_read_i32(&st, "v", out, 2, &e) == -1 && strstr(e.msg, "element 1 does not fit in int32"), "%s",
          e.msg);
    lnl_st_close(&st);
}

/* ---------------------------------------------------------------------------------------------
 * config.json */

static const char *HF_GPT2 =
    "{\"activation_function\": \"gelu_new\", \"architectures\": [\"GPT2LMHeadModel\"], \"attn_pdrop\": 0.1,"
    " \"bos_token_id\": 50256, \"embd_pdrop\": 0.1, \"eos_token_id\": 50256, \"initializer_range\": 0.02,"
    " \"layer_norm_epsilon\": 1e-05, \"model_type\": \"gpt2\", \"n_ctx\": 1024, \"n_embd\": 768, \"n_head\": 12,"
    " \"n_layer\": 12, \"n_positions\": 1024, \"resid_pdrop\": 0.1, \"n_inner\": null, \"vocab_size\": 50257}";

static void expect_cfg_error(const char *json, const char *want) {
    const char *path = tmp("config.json");
    write_bytes(path, json, strlen(json));
    LnlHfConfig c;
    LnlErr e = {""};
    int r = lnl_hfconfig_read(path, &c, &e);
    CHECK(r == -1 && strstr(e.msg, path) && strstr(e.msg, want), "'%s': '%s' lacks '%s'", json, e.msg, want);
}

static void test_hfconfig(void) {
    const char *path = tmp("config.json");
    write_bytes(path, HF_GPT2, strlen(HF_GPT2));
    LnlHfConfig c;
    LnlErr e = {""};
    CHECK(lnl_hfconfig_read(path, &c, &e) == 0, "gpt2: %s", e.msg);
    CHECK(c.n_layer == 12 && c.n_head == 12 && c.n_embd == 768 && c.n_positions == 1024 && c.vocab_size == 50257 &&
              c.n_inner == 3072 && c.layer_norm_epsilon == 1e-5,
          "gpt2 values %d %d %d %d %d %d %g", c.n_layer, c.n_head, c.n_embd, c.n_positions, c.vocab_size, c.n_inner,
          c.layer_norm_epsilon);

    const char *old = "{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_ctx\": 16, \"vocab_size\": 50, \"n_inner\": 20}";
    write_bytes(path, old, strlen(old));
    CHECK(lnl_hfconfig_read(path, &c, &e) == 0, "n_ctx only: %s", e.msg);
    CHECK(c.n_positions == 16 && c.layer_norm_epsilon == LNL_HFCONFIG_DEFAULT_EPS && c.n_inner == 20,
          "n_ctx %d eps %g n_inner %d", c.n_positions, c.layer_norm_epsilon, c.n_inner);

    LnlErr e2 = {""};
    CHECK(lnl_hfconfig_read(tmp("missing/config.json"), &c, &e2) == -1 && strstr(e2.msg, "missing/config.json") &&
              strstr(e2.msg, "No such file"),
          "missing file: %s", e2.msg);
    expect_cfg_error("{\"n_layer\": 2,", "not valid JSON");
    expect_cfg_error("[1]", "not a JSON object");
    expect_cfg_error("{\"n_head\": 2, \"n_embd\": 8, \"n_positions\": 16, \"vocab_size\": 50}",
                     "missing field 'n_layer'");
    expect_cfg_error("{\"n_layer\": 2, \"n_embd\": 8, \"n_positions\": 16, \"vocab_size\": 50}",
                     "missing field 'n_head'");
    expect_cfg_error("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"vocab_size\": 50}",
                     "missing field 'n_positions' (or 'n_ctx')");
    expect_cfg_error("{\"n_layer\": 2, \"n_head\": -2, \"n_embd\": 8, \"n_positions\": 16, \"vocab_size\": 50}",
                     "field 'n_head' is -2, expected 1..");
    expect_cfg_error("{\"n_layer\": 0, \"n_head\": 2, \"n_embd\": 8, \"n_positions\": 16, \"vocab_size\": 50}",
                     "field 'n_layer' is 0");
    expect_cfg_error("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8.5, \"n_positions\": 16, \"vocab_size\": 50}",
                     "field 'n_embd' is 8.5, expected an integer");
    expect_cfg_error("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_positions\": \"16\", \"vocab_size\": 50}",
                     "field 'n_positions' is not a number");
    expect_cfg_error("{\"n_layer\": 2, \"n_head\": 3, \"n_embd\": 8, \"n_positions\": 16, \"vocab_size\": 50}",
                     "'n_embd' (8) is not a multiple of 'n_head' (3)");
    expect_cfg_error("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_positions\": 16, \"vocab_size\": 1e12}",
                     "field 'vocab_size' is 1000000000000");
    expect_cfg_error("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_positions\": 16, \"vocab_size\": 50,"
                     " \"layer_norm_epsilon\": -1}",
                     "field 'layer_norm_epsilon' is -1");
    expect_cfg_error("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_positions\": 16, \"vocab_size\": 50,"
                     " \"n_inner\": 0}",
                     "field 'n_inner' is 0");
    expect_cfg_error("{\"model_type\": \"llama\", \"num_hidden_layers\": 2}", "'model_type' is \"llama\"");

    /* fields that change what the model computes are refused, naming the field and the value */
#define SIZES "\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_positions\": 16, \"vocab_size\": 50, "
    const char *fine = "{" SIZES "\"activation_function\": \"gelu_pytorch_tanh\", \"scale_attn_weights\": true,"
                       " \"scale_attn_by_inverse_layer_idx\": false, \"reorder_and_upcast_attn\": false,"
                       " \"add_cross_attention\": false, \"tie_word_embeddings\": true, \"pruned_heads\": {},"
                       " \"resid_pdrop\": 0.1, \"summary_type\": \"cls_index\"}";
    write_bytes(path, fine, strlen(fine));
    CHECK(lnl_hfconfig_read(path, &c, &e) == 0, "GPT-2's defaults spelled out: %s", e.msg);
    expect_cfg_error("{" SIZES "\"activation_function\": \"relu\"}", "field 'activation_function' is \"relu\"");
    expect_cfg_error("{" SIZES "\"activation_function\": \"gelu\"}", "field 'activation_function' is \"gelu\"");
    expect_cfg_error("{" SIZES "\"activation_function\": 3}", "field 'activation_function' is not a string");
    expect_cfg_error("{" SIZES "\"scale_attn_weights\": false}", "field 'scale_attn_weights' is false");
    expect_cfg_error("{" SIZES "\"scale_attn_weights\": \"yes\"}", "field 'scale_attn_weights' is not a boolean");
    expect_cfg_error("{" SIZES "\"scale_attn_by_inverse_layer_idx\": true}",
                     "field 'scale_attn_by_inverse_layer_idx' is true");
    expect_cfg_error("{" SIZES "\"reorder_and_upcast_attn\": true}", "field 'reorder_and_upcast_attn' is true");
    expect_cfg_error("{" SIZES "\"add_cross_attention\": true}", "field 'add_cross_attention' is true");
    expect_cfg_error("{" SIZES "\"tie_word_embeddings\": false}", "field 'tie_word_embeddings' is false");
    expect_cfg_error("{" SIZES "\"pruned_heads\": {\"0\": [1]}}", "field 'pruned_heads' is not empty");
#undef SIZES
}

static void test_hfconfig_beside(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/hfdir", tmpdir);
    mkdir(dir, 0777);
    char model[600], cfg[600];
    snprintf(model, sizeof model, "%s/model.safetensors", dir);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    unlink(cfg);
    char *p = lnl_hfconfig_beside(model);
    CHECK(p == NULL, "no config.json yet, got %s", p);
    free(p);
    write_bytes(cfg, "{}", 2);
    p = lnl_hfconfig_beside(model);
    CHECK(p && strcmp(p, cfg) == 0, "got %s, want %s", p ? p : "(null)", cfg);
    free(p);
    /* a bare file name looks in the current directory */
    char cwd[1024];
    if (!getcwd(cwd, sizeof cwd) || chdir(dir) != 0) {
        CHECK(0, "chdir");
        return;
    }
    p = lnl_hfconfig_beside("model.safetensors");
    CHECK(p && strcmp(p, "config.json") == 0, "bare name: %s", p ? p : "(null)");
    free(p);
    CHECK(chdir(cwd) == 0, "chdir back");
    unlink(cfg);
    rmdir(dir);
}

static void cleanup(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/lnl_test_st_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN_TEST(test_dtypes);
    RUN_TEST(test_roundtrip);
    RUN_TEST(test_nan_conversion);
    RUN_TEST(test_layout_exact);
    RUN_TEST(test_hf_prefix);
    RUN_TEST(test_minimal_files);
    RUN_TEST(test_malformed);
    RUN_TEST(test_writer_errors);
    RUN_TEST(test_read_i32_range);
    RUN_TEST(test_hfconfig);
    RUN_TEST(test_hfconfig_beside);
    cleanup();
    TEST_MAIN_END();
}
