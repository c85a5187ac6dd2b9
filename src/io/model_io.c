/* Model files: safetensors (HF GPT-2 names), llm.c v3, and lnlab's llm.c extension. */
#include "model_io.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/crc32.h"
#include "hfconfig.h"
#include "llmc.h"
#include "safetensors.h"

void lnl_view_to_file(const LnlTensorView *v, const float *mem, float *file) {
    if (!v->hf_transpose) {
        memcpy(file, mem, v->numel * sizeof(float));
        return;
    }
    int R = v->shape[0], Cc = v->shape[1]; /* mem (R, Cc) -> file (Cc, R) */
    for (int i = 0; i < R; i++)
        for (int j = 0; j < Cc; j++) file[(size_t)j * R + i] = mem[(size_t)i * Cc + j];
}

void lnl_view_from_file(const LnlTensorView *v, const float *file, float *mem) {
    if (!v->hf_transpose) {
        memcpy(mem, file, v->numel * sizeof(float));
        return;
    }
    int R = v->shape[0], Cc = v->shape[1];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < Cc; j++) mem[(size_t)i * Cc + j] = file[(size_t)j * R + i];
}

static void file_shape(const LnlTensorView *v, int64_t shape[2], int *ndim) {
    *ndim = v->ndim;
    if (v->ndim == 1) {
        shape[0] = v->shape[0];
    } else if (v->hf_transpose) {
        shape[0] = v->shape[1];
        shape[1] = v->shape[0];
    } else {
        shape[0] = v->shape[0];
        shape[1] = v->shape[1];
    }
}

int lnl_config_is_plain_gpt2(const LnlConfig *c) {
    LnlConfig ref = *c;
    LnlErr e;
    if (lnl_config_preset(&ref, "pre", &e)) return 0;
    if (c->norm != LNL_NORM_LAYERNORM || c->norm_gain != LNL_GAIN_PLAIN || c->embed_norm || c->embed_scale ||
        c->embed_scale_learned || c->dt != 1.0f || !c->final_norm || c->attn_softcap != 0.0f ||
        c->logit_softcap != 0.0f)
        return 0;
    if (fabsf(c->eps - 1e-5f) > 1e-9f) return 0;
    return memcmp(ref.sub, c->sub, sizeof(LnlSubSpec) * 2 * (size_t)c->n_layer) == 0;
}

/* ---------------------------------------------------------------- safetensors */

int lnl_model_save_safetensors(const LnlModel *m, const char *path, const char *extra_key, const char *extra_val,
                               LnlErr *e) {
    LnlStWriter w;
    lnl_stw_init(&w);
    for (int i = 0; i < m->nviews; i++) {
        const LnlTensorView *v = &m->views[i];
        int64_t shape[2];
        int ndim;
        file_shape(v, shape, &ndim);
        const float *src = m->params_mem + v->offset;
        if (v->hf_transpose) {
            float *t = lnl_malloc(v->numel * sizeof(float));
            lnl_view_to_file(v, src, t);
            lnl_stw_add(&w, v->name, LNL_ST_F32, ndim, shape, t, 1);
        } else {
            lnl_stw_add(&w, v->name, LNL_ST_F32, ndim, shape, src, 0);
        }
    }
    char *cfg = lnl_config_to_json(&m->cfg);
    char crc[16];
    snprintf(crc, sizeof crc, "%08x", (unsigned)lnl_crc32(0, cfg, strlen(cfg)));
    lnl_stw_meta(&w, "format", "pt");
    lnl_stw_meta(&w, LNL_META_CONFIG, cfg);
    lnl_stw_meta(&w, LNL_META_CONFIG_CRC, crc);
    if (extra_key && extra_val) lnl_stw_meta(&w, extra_key, extra_val);
    if (m->run_id[0]) lnl_stw_meta(&w, LNL_META_RUN_ID, m->run_id);
    free(cfg);
    int r = lnl_stw_write(&w, path, e);
    lnl_stw_free(&w);
    return r;
}

/* The config in the metadata against its checksum, when the file has one. The safetensors reader
 * checks the tensors (LNL_ST_CRC_KEY); this checks the config that says what they mean. */
static int check_config_crc(const LnlSafetensors *st, const char *path, LnlErr *e) {
    const char *want_hex = lnl_st_meta(st, LNL_META_CONFIG_CRC), *cfg = lnl_st_meta(st, LNL_META_CONFIG);
    if (!want_hex) return 0;
    uint32_t want;
    if (!cfg)
        return lnl_err(e, "%s: __metadata__ has %s but no %s (edited?)", path, LNL_META_CONFIG_CRC, LNL_META_CONFIG);
    if (lnl_crc32_parse_hex(want_hex, &want))
        return lnl_err(e, "%s: __metadata__['%s'] is not 8 hex digits (edited?)", path, LNL_META_CONFIG_CRC);
    uint32_t got = lnl_crc32(0, cfg, strlen(cfg));
    if (got != want)
        return lnl_err(e, "%s: the model config in __metadata__ does not match its checksum (edited?): %s has %08x, "
                          "the config gives %08x",
                       path, LNL_META_CONFIG_CRC, (unsigned)want, (unsigned)got);
    return 0;
}

/* Tensors a Hugging Face GPT-2 file may hold that lnlab does not need. */
static int ignorable(const char *name) {
    const char *n = strncmp(name, "transformer.", 12) == 0 ? name + 12 : name;
    if (strcmp(n, "lm_head.weight") == 0) return 1; /* tied to wte */
    size_t len = strlen(n);
    const char *sfx[] = {".attn.bias", ".attn.masked_bias"}; /* causal-mask buffers */
    for (int i = 0; i < 2; i++) {
        size_t sl = strlen(sfx[i]);
        if (len > sl && strcmp(n + len - sl, sfx[i]) == 0 && strncmp(n, "h.", 2) == 0) return 1;
    }
    return 0;
}

/* Config from a safetensors file without lnlab metadata: config.json beside it, else shapes. */
static int config_from_hf(LnlConfig *c, const LnlSafetensors *st, const char *path, LnlErr *e) {
    lnl_config_default(c);
    char *cj = lnl_hfconfig_beside(path);
    if (cj) {
        LnlHfConfig hf;
        int r = lnl_hfconfig_read(cj, &hf, e);
        free(cj);
        if (r) return -1;
        if (hf.n_inner != 4 * hf.n_embd)
            return lnl_err(e, "%s: config.json n_inner %d is not 4 * n_embd; lnlab models use 4C", path, hf.n_inner);
        c->n_layer = hf.n_layer;
        c->n_head = hf.n_head;
        c->n_embd = hf.n_embd;
        c->n_positions = hf.n_positions;
        c->vocab_size = hf.vocab_size;
        c->eps = (float)hf.layer_norm_epsilon;
    } else {
        const LnlStTensor *wte = lnl_st_find_prefixed(st, "transformer.", "wte.weight");
        const LnlStTensor *wpe = lnl_st_find_prefixed(st, "transformer.", "wpe.weight");
        if (!wte || !wpe || wte->ndim != 2 || wpe->ndim != 2)
            return lnl_err(e, "%s: no lnlab config in the metadata, no config.json beside it, and no 2-D "
                              "wte.weight/wpe.weight to infer the sizes from", path);
        c->vocab_size = (int)wte->shape[0];
        c->n_embd = (int)wte->shape[1];
        c->n_positions = (int)wpe->shape[0];
        int L = 0;
        char nm[64];
        for (;;) {
            snprintf(nm, sizeof nm, "h.%d.ln_1.weight", L);
            if (!lnl_st_find_prefixed(st, "transformer.", nm)) break;
            L++;
        }
        if (L < 1) return lnl_err(e, "%s: cannot infer the number of layers (no h.0.ln_1.weight)", path);
        c->n_layer = L;
        c->n_head = c->n_embd % 64 == 0 ? c->n_embd / 64 : 1; /* GPT-2's head size; --heads overrides */
    }
    return lnl_config_preset(c, "pre", e);
}

/* Refuses, before anything is allocated, a config that needs far more parameters than the file
 * holds values: a damaged or hostile config cannot make the loader allocate more than a small
 * multiple of the file's size. (A config that needs a few more is left to the tensor-by-tensor
 * check, whose message names the missing tensor.) */
static int too_few_params(const LnlConfig *c, const LnlSafetensors *st, const char *path, LnlErr *e) {
    LnlModelMemory mm;
    if (lnl_model_memory(c, 1, 1, &mm, e)) return -1;
    uint64_t have = 0;
    for (int i = 0; i < st->n; i++) have += st->tensors[i].numel;
    if (mm.num_params > 4 * have + ((uint64_t)1 << 20))
        return lnl_err(e, "%s: the config (L %d, C %d, V %d, T %d, preset %s) needs %llu parameters, the file holds "
                          "%llu values",
                       path, c->n_layer, c->n_embd, c->vocab_size, c->n_positions, c->preset,
                       (unsigned long long)mm.num_params, (unsigned long long)have);
    return 0;
}

static int load_safetensors(LnlModel *m, const char *path, LnlConfigHook hook, void *ctx, LnlErr *e) {
    LnlSafetensors st;
    if (lnl_st_open(&st, path, e)) return -1;
    LnlConfig *c = lnl_malloc(sizeof *c);
    int r = -1;
    const char *meta = lnl_st_meta(&st, LNL_META_CONFIG);
    if (check_config_crc(&st, path, e)) goto done;
    if (meta) {
        if (lnl_config_from_json(c, meta, path, e)) goto done;
    } else if (config_from_hf(c, &st, path, e)) {
        goto done;
    }
    if (hook && hook(c, ctx, e)) goto done;
    if (too_few_params(c, &st, path, e)) goto done;
    if (lnl_model_create(m, c, e)) goto done;
    const char *run_id = lnl_st_meta(&st, LNL_META_RUN_ID);
    if (run_id) snprintf(m->run_id, sizeof m->run_id, "%s", run_id);
    const char *prefix = meta ? NULL : "transformer.";
    char *used = lnl_calloc((size_t)st.n, 1);
    float *tmp = NULL;
    size_t tmp_n = 0;
    for (int i = 0; i < m->nviews; i++) {
        const LnlTensorView *v = &m->views[i];
        const LnlStTensor *t = lnl_st_find_prefixed(&st, prefix, v->name);
        if (!t) {
            lnl_err(e, "%s: tensor '%s' missing (the config, preset %s, needs it)", path, v->name, c->preset);
            goto fail;
        }
        int64_t shape[2];
        int ndim;
        file_shape(v, shape, &ndim);
        int okshape = t->ndim == ndim;
        for (int d = 0; okshape && d < ndim; d++) okshape = t->shape[d] == shape[d];
        if (!okshape) {
            if (ndim == 1)
                lnl_err(e, "%s: tensor '%s' has the wrong shape (expected [%lld])", path, v->name, (long long)shape[0]);
            else
                lnl_err(e, "%s: tensor '%s' has the wrong shape (expected [%lld, %lld])", path, v->name,
                        (long long)shape[0], (long long)shape[1]);
            goto fail;
        }
        if (tmp_n < v->numel) {
            free(tmp);
            tmp = lnl_malloc(v->numel * sizeof(float));
            tmp_n = v->numel;
        }
        if (lnl_st_tensor_f32(&st, t, tmp, v->numel, e)) goto fail;
        for (size_t k = 0; k < v->numel; k++) {
            if (!isfinite(tmp[k])) {
                lnl_err(e, "%s: tensor '%s' holds a non-finite value at index %zu", path, v->name, k);
                goto fail;
            }
        }
        lnl_view_from_file(v, tmp, m->params_mem + v->offset);
        used[t - st.tensors] = 1;
    }
    for (int i = 0; i < st.n; i++) {
        if (!used[i] && !ignorable(st.tensors[i].name)) {
            lnl_err(e, "%s: unexpected tensor '%s' (not part of the config, preset %s)", path, st.tensors[i].name,
                    c->preset);
            goto fail;
        }
    }
    r = 0;
fail:
    free(tmp);
    free(used);
    if (r) lnl_model_free(m);
done:
    free(c);
    lnl_st_close(&st);
    return r;
}

/* ---------------------------------------------------------------- llm.c files */

/* The roles of llm.c's 16 tensors, in file order. */
static const int llmc_roles[LNL_LLMC_NUM_TENSORS] = {
    LNL_ROLE_wte,  LNL_ROLE_wpe,  LNL_ROLE_ln1w, LNL_ROLE_ln1b,    LNL_ROLE_qkvw,    LNL_ROLE_qkvb, LNL_ROLE_attprojw, LNL_ROLE_attprojb,
    LNL_ROLE_ln2w, LNL_ROLE_ln2b, LNL_ROLE_fcw,  LNL_ROLE_fcb,     LNL_ROLE_fcprojw, LNL_ROLE_fcprojb, LNL_ROLE_lnfw, LNL_ROLE_lnfb};

static void llmc_role_ptrs(const LnlModel *m, float *ptrs[LNL_LLMC_NUM_TENSORS]) {
    float *const *roles = (float *const *)&m->p;
    for (int i = 0; i < LNL_LLMC_NUM_TENSORS; i++) ptrs[i] = roles[llmc_roles[i]];
}

static int read_header_ints(const char *path, int32_t h[LNL_LLMC_HEADER_INTS], uint64_t *size, LnlErr *e) {
    if (lnl_file_size(path, size, e)) return -1;
    if (*size < LNL_LLMC_HEADER_BYTES)
        return lnl_err(e, "%s: truncated: %llu bytes, shorter than the %d-byte header", path,
                       (unsigned long long)*size, LNL_LLMC_HEADER_BYTES);
    FILE *f = fopen(path, "rb");
    if (!f) return lnl_err(e, "%s: cannot open", path);
    int r = lnl_fread_exact(f, h, LNL_LLMC_HEADER_BYTES, path, e);
    fclose(f);
    return r;
}

/* A model file holds finite parameters only, whatever its format (as the safetensors reader). */
static int check_finite(const LnlModel *m, const char *path, LnlErr *e) {
    for (int i = 0; i < m->nviews; i++) {
        const LnlTensorView *v = &m->views[i];
        const float *p = m->params_mem + v->offset;
        for (size_t k = 0; k < v->numel; k++)
            if (!isfinite(p[k])) return lnl_err(e, "%s: tensor '%s' holds a non-finite value at index %zu", path, v->name, k);
    }
    return 0;
}

static int load_llmc_ext(LnlModel *m, const char *path, const int32_t *h, uint64_t size, LnlConfigHook hook,
                         void *ctx, LnlErr *e) {
    int32_t cfg_bytes = h[LNL_LLMC_H_CONFIG_BYTES];
    if (cfg_bytes <= 0 || cfg_bytes % 4)
        return lnl_err(e, "%s: header field config_bytes = %d is invalid (a positive multiple of 4)", path, cfg_bytes);
    if ((uint64_t)cfg_bytes > size - LNL_LLMC_HEADER_BYTES)
        return lnl_err(e, "%s: truncated: the header announces %d bytes of config, the file has %llu bytes", path,
                       cfg_bytes, (unsigned long long)size);
    char *js = lnl_malloc((size_t)cfg_bytes + 1);
    FILE *f = fopen(path, "rb");
    if (!f) {
        free(js);
        return lnl_err(e, "%s: cannot open", path);
    }
    int r = -1;
    LnlConfig *c = lnl_malloc(sizeof *c);
    fseek(f, LNL_LLMC_HEADER_BYTES, SEEK_SET);
    if (lnl_fread_exact(f, js, (size_t)cfg_bytes, path, e)) goto done;
    js[cfg_bytes] = 0;
    if (lnl_config_from_json(c, js, path, e)) goto done;
    if (c->n_layer != h[LNL_LLMC_H_LAYERS] || c->n_embd != h[LNL_LLMC_H_CHANNELS] ||
        c->vocab_size != h[LNL_LLMC_H_VOCAB] || c->n_head != h[LNL_LLMC_H_HEADS] ||
        c->n_positions != h[LNL_LLMC_H_MAX_SEQ_LEN]) {
        lnl_err(e, "%s: header sizes disagree with the embedded config", path);
        goto done;
    }
    if (hook && hook(c, ctx, e)) goto done;
    LnlModelMemory mm; /* the size check comes before any allocation */
    if (lnl_model_memory(c, 1, 1, &mm, e)) goto done;
    uint64_t want = LNL_LLMC_HEADER_BYTES + (uint64_t)cfg_bytes + 4 * mm.num_params;
    if (size != want) {
        lnl_err(e, "%s: size %llu bytes, expected %llu for this config (%s)", path, (unsigned long long)size,
                (unsigned long long)want, size < want ? "truncated" : "trailing bytes");
        goto done;
    }
    if (lnl_model_create(m, c, e)) goto done;
    for (int i = 0; i < m->nviews; i++) {
        const LnlTensorView *v = &m->views[i];
        if (lnl_fread_exact(f, m->params_mem + v->offset, v->numel * sizeof(float), path, e)) {
            lnl_model_free(m);
            goto done;
        }
    }
    if (check_finite(m, path, e)) {
        lnl_model_free(m);
        goto done;
    }
    r = 0;
done:
    free(c);
    free(js);
    fclose(f);
    return r;
}

static int load_llmc(LnlModel *m, const char *path, LnlConfigHook hook, void *ctx, LnlErr *e) {
    int32_t h[LNL_LLMC_HEADER_INTS];
    uint64_t size;
    if (read_header_ints(path, h, &size, e)) return -1;
    if (h[LNL_LLMC_H_VERSION] == LNL_LLMC_VERSION_LNLAB) return load_llmc_ext(m, path, h, size, hook, ctx, e);
    LnlLlmcHeader hd;
    if (lnl_llmc_read_header(path, &hd, e)) return -1;
    LnlConfig *c = lnl_malloc(sizeof *c);
    lnl_config_default(c);
    c->n_layer = hd.num_layers;
    c->n_head = hd.num_heads;
    c->n_embd = hd.channels;
    c->n_positions = hd.max_seq_len;
    c->vocab_size = hd.vocab_size;
    int r = -1;
    if (lnl_config_preset(c, "pre", e)) goto done;
    if (hook && hook(c, ctx, e)) goto done;
    if (lnl_model_create(m, c, e)) goto done;
    /* overrides may change dt or eps, but not which tensors exist */
    float *dst[LNL_LLMC_NUM_TENSORS];
    llmc_role_ptrs(m, dst);
    for (int i = 0; i < LNL_LLMC_NUM_TENSORS; i++) {
        if (!dst[i]) {
            lnl_err(e, "%s: an llm.c model file holds Pre-LN GPT-2 with LayerNorm; preset %s lacks its tensor %s",
                    path, c->preset, lnl_llmc_tensor_name(i));
            lnl_model_free(m);
            goto done;
        }
    }
    int extra = 0;
    for (int i = 0; i < m->nviews; i++) {
        int in_llmc = 0;
        for (int j = 0; j < LNL_LLMC_NUM_TENSORS; j++) in_llmc |= m->views[i].role == llmc_roles[j];
        extra |= !in_llmc;
    }
    if (extra) {
        lnl_err(e, "%s: an llm.c model file holds Pre-LN GPT-2 with LayerNorm only; preset %s needs more tensors",
                path, c->preset);
        lnl_model_free(m);
        goto done;
    }
    if (lnl_llmc_read_params(path, &hd, dst, e) || check_finite(m, path, e)) {
        lnl_model_free(m);
        goto done;
    }
    r = 0;
done:
    free(c);
    return r;
}

static int save_llmc(const LnlModel *m, const char *path, LnlErr *e) {
    const LnlConfig *c = &m->cfg;
    if (lnl_config_is_plain_gpt2(c)) {
        LnlLlmcHeader hd = {c->n_positions, c->vocab_size, c->n_layer, c->n_head, c->n_embd, 0};
        float *src[LNL_LLMC_NUM_TENSORS];
        llmc_role_ptrs(m, src);
        return lnl_llmc_write(path, &hd, (const float *const *)src, e);
    }
    char *js = lnl_config_to_json(c);
    size_t len = strlen(js), padded = (len + 3) & ~(size_t)3;
    int32_t h[LNL_LLMC_HEADER_INTS];
    memset(h, 0, sizeof h);
    h[LNL_LLMC_H_MAGIC] = LNL_LLMC_MAGIC;
    h[LNL_LLMC_H_VERSION] = LNL_LLMC_VERSION_LNLAB;
    h[LNL_LLMC_H_MAX_SEQ_LEN] = c->n_positions;
    h[LNL_LLMC_H_VOCAB] = c->vocab_size;
    h[LNL_LLMC_H_LAYERS] = c->n_layer;
    h[LNL_LLMC_H_HEADS] = c->n_head;
    h[LNL_LLMC_H_CHANNELS] = c->n_embd;
    h[LNL_LLMC_H_PADDED_VOCAB] = c->vocab_size;
    h[LNL_LLMC_H_CONFIG_BYTES] = (int32_t)padded;
    LnlAtomicFile af;
    if (lnl_atomic_open(&af, path, e)) {
        free(js);
        return -1;
    }
    int bad = lnl_fwrite_exact(af.f, h, sizeof h, af.tmp, e) || lnl_fwrite_exact(af.f, js, len, af.tmp, e) ||
              lnl_fwrite_exact(af.f, "   ", padded - len, af.tmp, e);
    for (int i = 0; !bad && i < m->nviews; i++)
        bad = lnl_fwrite_exact(af.f, m->params_mem + m->views[i].offset, m->views[i].numel * sizeof(float), af.tmp, e);
    free(js);
    if (bad) {
        lnl_atomic_abort(&af);
        return -1;
    }
    return lnl_atomic_commit(&af, e);
}

/* ---------------------------------------------------------------- dispatch */

static int ends_with(const char *s, const char *sfx) {
    size_t a = strlen(s), b = strlen(sfx);
    return a >= b && strcmp(s + a - b, sfx) == 0;
}

int lnl_model_load(LnlModel *m, const char *path, LnlConfigHook hook, void *ctx, LnlErr *e) {
    memset(m, 0, sizeof *m);
    uint64_t size;
    if (lnl_file_size(path, &size, e)) return -1;
    int32_t first = 0;
    if (size >= 4) {
        FILE *f = fopen(path, "rb");
        if (!f) return lnl_err(e, "%s: cannot open", path);
        size_t got = fread(&first, 4, 1, f);
        fclose(f);
        if (got != 1) return lnl_err(e, "%s: cannot read", path);
    }
    if (first == LNL_LLMC_MAGIC) return load_llmc(m, path, hook, ctx, e);
    if (ends_with(path, ".bin"))
        return lnl_err(e, "%s: not an llm.c model file (magic %d, expected %d)", path, first, LNL_LLMC_MAGIC);
    return load_safetensors(m, path, hook, ctx, e);
}

int lnl_model_save(const LnlModel *m, const char *path, LnlErr *e) {
    if (ends_with(path, ".bin")) return save_llmc(m, path, e);
    if (ends_with(path, ".safetensors")) return lnl_model_save_safetensors(m, path, NULL, NULL, e);
    return lnl_err(e, "%s: unknown model file extension (use .safetensors or .bin)", path);
}
