/* Test tool: builds a small model from flags, perturbs its parameters, and writes what the
 * PyTorch reference (tests/reference) recomputes independently: DIR/model.safetensors and
 * DIR/dump.safetensors (tokens, logits, loss, z-loss term, every gradient, probe figures, five AdamW
 * steps).
 * The dump format is described in tests/reference/README.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/flags.h"
#include "cli/model_flags.h"
#include "common/perturb.h"
#include "diag/stats.h"
#include "io/model_io.h"
#include "io/safetensors.h"
#include "train/optim.h"

#define ADAM_STEPS 5
#define BN_LAMBDA 0.5f

static void add_f32(LnlStWriter *w, const char *name, int ndim, const int64_t *shape, const float *src, size_t n) {
    float *copy = lnl_malloc(n * sizeof(float));
    memcpy(copy, src, n * sizeof(float));
    lnl_stw_add(w, name, LNL_ST_F32, ndim, shape, copy, 1);
}

static void add_params(LnlStWriter *w, const LnlModel *m, const float *mem, const char *prefix) {
    for (int i = 0; i < m->nviews; i++) {
        const LnlTensorView *v = &m->views[i];
        char name[128];
        snprintf(name, sizeof name, "%s%s", prefix, v->name);
        float *t = lnl_malloc(v->numel * sizeof(float));
        lnl_view_to_file(v, mem + v->offset, t);
        int64_t shape[2];
        if (v->ndim == 1) shape[0] = v->shape[0];
        else if (v->hf_transpose) {
            shape[0] = v->shape[1];
            shape[1] = v->shape[0];
        } else {
            shape[0] = v->shape[0];
            shape[1] = v->shape[1];
        }
        lnl_stw_add(w, name, LNL_ST_F32, v->ndim, shape, t, 1);
    }
}

int main(int argc, char **argv) {
    LnlModelFlags mf;
    const char *out = NULL;
    long long batch = 2, seed = 1;
    double z_loss = 0;
    LnlFlag flags[LNL_MODEL_NFLAGS + 4];
    lnl_model_flags_init(&mf, flags);
    flags[LNL_MODEL_NFLAGS] = (LnlFlag){"--out", LNL_FLAG_STR, &out, "output directory", 1, 0, NULL, 0};
    flags[LNL_MODEL_NFLAGS + 1] = (LnlFlag){"--batch", LNL_FLAG_INT, &batch, "batch size B", 1, 1024, NULL, 0};
    flags[LNL_MODEL_NFLAGS + 2] = (LnlFlag){"--seed", LNL_FLAG_INT, &seed, "seed", 0, 1LL << 62, NULL, 0};
    flags[LNL_MODEL_NFLAGS + 3] =
        (LnlFlag){"--z-loss", LNL_FLAG_FLOAT, &z_loss, "z-loss coefficient (as lnlab train's)", 0, 1, NULL, 0};
    int nf = LNL_MODEL_NFLAGS + 4, npos;
    lnl_flags_parse_or_exit("refdump", "[flags] --out DIR", flags, nf, argc, argv, NULL, 0, &npos);
    if (!out) lnl_die(2, "refdump: --out is required");
    LnlErr e;
    LnlConfig *c = lnl_malloc(sizeof *c);
    if (lnl_model_flags_config(&mf, flags, c, &e)) lnl_die(2, "%s", e.msg);
    LnlModel m;
    if (lnl_model_create(&m, c, &e)) lnl_die(1, "%s", e.msg);
    lnl_model_init_weights(&m, (uint64_t)seed);
    lnl_test_perturb(&m, (uint64_t)seed + 1);
    const int B = (int)batch, T = c->n_positions, N = B * T, V = c->vocab_size;
    if (lnl_model_alloc_acts(&m, B, T, &e)) lnl_die(1, "%s", e.msg);
    m.branch_lambda = BN_LAMBDA;
    m.z_loss_coef = (float)z_loss;
    if (lnl_mkdir_p(out, &e)) lnl_die(1, "%s", e.msg);

    char *path = lnl_path_join(out, "model.safetensors");
    if (lnl_model_save_safetensors(&m, path, NULL, NULL, &e)) lnl_die(1, "%s", e.msg);
    free(path);

    LnlRng rng;
    lnl_rng_seed(&rng, (uint64_t)seed + 2);
    int32_t *tok = lnl_malloc((size_t)B * (T + 1) * sizeof(int32_t));
    for (int i = 0; i < B * (T + 1); i++) tok[i] = (int32_t)lnl_rng_below(&rng, (uint64_t)V);
    int32_t *in = lnl_malloc((size_t)N * sizeof(int32_t)), *tg = lnl_malloc((size_t)N * sizeof(int32_t));
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            in[b * T + t] = tok[b * (T + 1) + t];
            tg[b * T + t] = tok[b * (T + 1) + t + 1];
        }

    LnlStWriter w;
    lnl_stw_init(&w);
    int64_t tshape[2] = {B, T + 1};
    lnl_stw_add(&w, "tokens", LNL_ST_I32, 2, tshape, tok, 1);
    lnl_model_forward(&m, in, NULL, B, T);
    int64_t lshape[3] = {B, T, V};
    add_f32(&w, "logits", 3, lshape, m.logits, (size_t)N * V);
    lnl_model_zero_grad(&m);
    m.diag_forward = 1; /* the attention-logit maxima of the probe */
    float loss = lnl_model_forward(&m, in, tg, B, T);
    lnl_model_backward(&m);
    int64_t one = 1;
    add_f32(&w, "loss", 1, &one, &loss, 1);
    add_f32(&w, "z_loss", 1, &one, &m.z_loss, 1);
    add_params(&w, &m, m.grads_mem, "grad.");
    LnlProbe p;
    lnl_probe_collect(&m, &p);
    float *col = lnl_malloc((size_t)p.n * sizeof(float));
    int64_t pn = p.n;
    const char *names[4] = {"probe.hidden_mean_abs", "probe.hidden_var", "probe.hidden_var_data", "probe.grad_norm"};
    for (int k = 0; k < 4; k++) {
        for (int l = 0; l < p.n; l++)
            col[l] = (float)(k == 0 ? p.hidden[l].mean_abs : k == 1 ? p.hidden[l].var_entry
                                                       : k == 2 ? p.hidden[l].var_data : p.grad_norm[l]);
        add_f32(&w, names[k], 1, &pn, col, (size_t)p.n);
    }
    int64_t nl = p.n - 1;
    for (int l = 1; l < p.n; l++) col[l - 1] = (float)p.attn_logit_max[l];
    add_f32(&w, "probe.attn_logit_max", 1, &nl, col, (size_t)nl);
    float lz[2] = {(float)p.logits.logit_max, (float)p.logits.log_z_mean};
    add_f32(&w, "probe.logit_max", 1, &one, lz, 1);
    add_f32(&w, "probe.log_z_mean", 1, &one, lz + 1, 1);
    free(col);
    lnl_probe_free(&p);

    LnlAdamW h = {0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    const float lr = 1e-3f;
    LnlOptState opt;
    lnl_opt_init(&opt, &m);
    float losses[ADAM_STEPS + 1];
    losses[0] = loss;
    for (int s = 1; s <= ADAM_STEPS; s++) {
        lnl_opt_step(&opt, &m, &h, lr);
        lnl_model_zero_grad(&m);
        losses[s] = lnl_model_forward(&m, in, tg, B, T);
        lnl_model_backward(&m);
    }
    int64_t ns = ADAM_STEPS + 1;
    add_f32(&w, "adamw.losses", 1, &ns, losses, ADAM_STEPS + 1);
    add_params(&w, &m, m.params_mem, "adamw.final.");

    LnlBuf meta = {0};
    lnl_buf_printf(&meta, "{\"branchnorm_lambda\": %.9g, \"z_loss\": %.9g, \"adamw\": {\"lr\": %.9g, "
                          "\"beta1\": %.9g, \"beta2\": %.9g, \"eps\": %.9g, \"weight_decay\": %.9g, "
                          "\"grad_clip\": %.9g}, \"decay\": [",
                   BN_LAMBDA, (double)m.z_loss_coef, lr, h.beta1, h.beta2, h.eps, h.weight_decay, h.grad_clip);
    int first = 1;
    for (int i = 0; i < m.nviews; i++) {
        if (!m.views[i].decay) continue;
        lnl_buf_printf(&meta, "%s\"%s\"", first ? "" : ", ", m.views[i].name);
        first = 0;
    }
    lnl_buf_printf(&meta, "]}");
    lnl_stw_meta(&w, "lnlab.refdump", meta.data);
    lnl_buf_free(&meta);
    path = lnl_path_join(out, "dump.safetensors");
    if (lnl_stw_write(&w, path, &e)) lnl_die(1, "%s", e.msg);
    free(path);
    lnl_stw_free(&w);
    lnl_opt_free(&opt);
    free(in);
    free(tg);
    lnl_model_free(&m);
    free(c);
    return 0;
}
