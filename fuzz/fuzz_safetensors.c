/* Fuzz target: the safetensors reader (src/io/safetensors.h): header length, JSON header,
 * offsets, metadata, the lnlab.crc32 checksums, and the dtype conversions. An accepted file must
 * survive a rewrite by the writer and read back with the same tensors. */
#include "fuzz_common.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("in.safetensors", data, size);
    LnlSafetensors st;
    LnlErr e = {""};
    int r = lnl_st_open(&st, path, &e);
    fuzz_check(r, &e, "lnl_st_open");
    if (r) return 0;
    LnlStWriter w;
    lnl_stw_init(&w);
    for (int i = 0; i < st.n; i++) {
        const LnlStTensor *t = &st.tensors[i];
        FUZZ_ASSERT(t->end - t->begin == t->numel * lnl_st_dtype_size(t->dtype), "tensor %s size", t->name);
        float *f = malloc((size_t)t->numel * sizeof(float) + 1);
        int32_t *q = malloc((size_t)t->numel * sizeof(int32_t) + 1);
        LnlErr e2 = {""};
        fuzz_check(lnl_st_tensor_f32(&st, t, f, (size_t)t->numel, &e2), &e2, "lnl_st_tensor_f32");
        e2.msg[0] = 0;
        fuzz_check(lnl_st_read_i32(&st, t->name, q, (size_t)t->numel, &e2), &e2, "lnl_st_read_i32");
        e2.msg[0] = 0;
        fuzz_check(lnl_st_read_f32(&st, t->name, f, (size_t)t->numel + 1, &e2), &e2, "lnl_st_read_f32 (wrong count)");
        FUZZ_ASSERT(lnl_st_find(&st, t->name) == t, "lookup of %s", t->name);
        free(f);
        free(q);
        int64_t shape[LNL_ST_MAX_DIMS];
        for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
        lnl_stw_add(&w, t->name, t->dtype, t->ndim, shape, lnl_st_data(&st, t), 0);
    }
    for (int i = 0; i < st.n_meta; i++) lnl_stw_meta(&w, st.meta_keys[i], st.meta_vals[i]);
    (void)lnl_st_find_prefixed(&st, "transformer.", "wte.weight");
    const char *out = fuzz_file("out.safetensors", "", 0);
    char out_path[200];
    snprintf(out_path, sizeof out_path, "%s", out);
    LnlErr we = {""};
    r = lnl_stw_write(&w, out_path, &we);
    FUZZ_ASSERT(r == 0, "rewriting an accepted file failed: %s", we.msg);
    lnl_stw_free(&w);
    LnlSafetensors st2;
    r = lnl_st_open(&st2, out_path, &we);
    FUZZ_ASSERT(r == 0, "the rewritten file does not read back: %s", we.msg);
    FUZZ_ASSERT(st2.n == st.n, "tensor count %d -> %d", st.n, st2.n);
    for (int i = 0; i < st.n; i++) {
        const LnlStTensor *a = &st.tensors[i], *b = lnl_st_find(&st2, a->name);
        FUZZ_ASSERT(b && b->dtype == a->dtype && b->numel == a->numel &&
                        memcmp(lnl_st_data(&st, a), lnl_st_data(&st2, b), (size_t)(a->end - a->begin)) == 0,
                    "tensor %s changed in the rewrite", a->name);
    }
    lnl_st_close(&st2);
    lnl_st_close(&st);
    return 0;
}
