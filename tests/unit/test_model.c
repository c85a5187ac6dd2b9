/* Model tests: the parameter table, presets, and a finite-difference check of the whole
 * model's backward for every preset and both norm kinds (independent of the PyTorch check). */
#include "harness.h"

#include <unistd.h>

#include "common/perturb.h"
#include "io/model_io.h"
#include "model/model.h"

/* The impossible allocation of test_errors_not_exits must come back NULL under ASan too. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static const char *presets[] = {"post", "pre", "peri", "b2t", "mix", "lns", "hybrid", "hybrid*",
                                "deepnorm", "admin", "branchnorm", "rezero", "olmo2", "gemma2"};
#define NPRESETS (int)(sizeof presets / sizeof presets[0])

static void small_config(LnlConfig *c, const char *preset, LnlNormKind kind, float dt) {
    lnl_config_default(c);
    c->n_layer = 4;
    c->n_head = 2;
    c->n_embd = 8;
    c->n_positions = 6;
    c->init_std = 0.3f; /* activations of order 1, so finite differences stay in the linear range */
    c->vocab_size = 13;
    c->norm = kind;
    c->dt = dt;
    LnlErr e;
    int r = lnl_config_preset(c, preset, &e);
    CHECK(r == 0, "preset %s: %s", preset, e.msg);
}

static void make_batch(int32_t *in, int32_t *tg, int n, int V, uint64_t seed) {
    LnlRng r;
    lnl_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        in[i] = (int32_t)lnl_rng_below(&r, (uint64_t)V);
        tg[i] = (int32_t)lnl_rng_below(&r, (uint64_t)V);
    }
}

/* The training objective of one forward: the mean cross-entropy plus the z-loss term. */
static double objective(LnlModel *m, const int32_t *in, const int32_t *tg, int B, int T) {
    double ce = lnl_model_forward(m, in, tg, B, T);
    return ce + m->z_loss;
}

/* Central differences in float32 on a few entries of every tensor of a model of config c, whose
 * training objective has the z-loss coefficient z_loss (0: the cross-entropy alone). */
static void fd_check_objective(const LnlConfig *cfg, const char *what, float z_loss) {
    LnlConfig c = *cfg;
    const char *preset = what;
    LnlNormKind kind = c.norm;
    float dt = c.dt;
    LnlModel m;
    LnlErr e;
    CHECK(lnl_model_create(&m, &c, &e) == 0, "%s", e.msg);
    lnl_model_init_weights(&m, 7);
    lnl_test_perturb(&m, 11);
    const int B = 2, T = 5;
    CHECK(lnl_model_alloc_acts(&m, B, T, &e) == 0, "%s", e.msg);
    m.branch_lambda = 0.6f;
    m.z_loss_coef = z_loss;
    int32_t in[10], tg[10];
    make_batch(in, tg, B * T, c.vocab_size, 3);
    tg[3] = -1; /* an ignored position */
    lnl_model_zero_grad(&m);
    lnl_model_forward(&m, in, tg, B, T);
    lnl_model_backward(&m);
    LnlRng r;
    lnl_rng_seed(&r, 5);
    const float h = 2e-3f;
    double worst = 0;
    const char *worst_name = "";
    int checked = 0;
    for (int i = 0; i < m.nviews; i++) {
        const LnlTensorView *v = &m.views[i];
        for (int t = 0; t < 3; t++) {
            size_t k = v->offset + lnl_rng_below(&r, v->numel);
            float save = m.params_mem[k];
            m.params_mem[k] = save + h;
            double lp = objective(&m, in, tg, B, T);
            m.params_mem[k] = save - h;
            double lm = objective(&m, in, tg, B, T);
            m.params_mem[k] = save;
            double fd = (lp - lm) / (2.0 * h);
            double an = m.grads_mem[k];
            double err = fabs(fd - an) / (2e-3 + 2e-2 * fabs(fd));
            if (err > worst) {
                worst = err;
                worst_name = v->name;
            }
            CHECK(err <= 1.0, "%s/%s dt %g z-loss %g: %s[%zu] analytic %.6g vs finite difference %.6g", preset,
                  lnl_norm_name(kind), dt, (double)z_loss, v->name, k - v->offset, an,
                  fd);
            checked++;
        }
    }
    (void)worst_name;
    CHECK(checked > 0, "no tensors checked");
    lnl_model_free(&m);
}

static void fd_check_config(const LnlConfig *cfg, const char *what) { fd_check_objective(cfg, what, 0.0f); }

static void fd_check(const char *preset, LnlNormKind kind, float dt, int embed_extras) {
    LnlConfig c;
    small_config(&c, preset, kind, dt);
    if (embed_extras) {
        c.embed_norm = 1;
        c.embed_scale = 1;
    }
    fd_check_config(&c, preset);
}

static void test_fd_all_presets(void) {
    for (int i = 0; i < NPRESETS; i++) {
        fd_check(presets[i], LNL_NORM_LAYERNORM, 1.0f, 0);
        fd_check(presets[i], LNL_NORM_RMSNORM, 0.1f, 0);
    }
    fd_check("pre", LNL_NORM_LAYERNORM, 0.5f, 1);
    fd_check("peri", LNL_NORM_RMSNORM, 1.0f, 1);
    /* the elementwise norms (their a and s learned) and the one-plus gain, in every placement that
     * can have them (BranchNorm's N0 needs a normalizing kind), and the learned embedding scale */
    for (int i = 0; i < NPRESETS; i++) {
        if (!strcmp(presets[i], "branchnorm")) continue;
        fd_check(presets[i], LNL_NORM_DYT, 1.0f, 0);
        fd_check(presets[i], LNL_NORM_DERF, 0.5f, 0);
    }
    const LnlNormKind kinds[] = {LNL_NORM_LAYERNORM, LNL_NORM_RMSNORM, LNL_NORM_DYT, LNL_NORM_DERF};
    for (int k = 0; k < 4; k++) {
        LnlConfig c1;
        small_config(&c1, "peri", kinds[k], 1.0f);
        c1.norm_gain = LNL_GAIN_ONE_PLUS;
        c1.embed_norm = 1;
        fd_check_config(&c1, "peri+one-plus+embed-norm");
        small_config(&c1, "peri", kinds[k], 1.0f);
        c1.embed_norm = 1;
        c1.embed_scale_learned = 1;
        fd_check_config(&c1, "peri+embed-norm+embed-scale-learned");
        small_config(&c1, "pre", kinds[k], 0.5f);
        c1.embed_scale_learned = 1;
        fd_check_config(&c1, "pre+embed-scale-learned");
        small_config(&c1, "hybrid", kinds[k], 0.7f);
        c1.norm_gain = LNL_GAIN_ONE_PLUS;
        fd_check_config(&c1, "hybrid+one-plus");
    }
    /* a residual step per sub-layer (attn.dt, mlp.dt), with a gate that reads both */
    LnlConfig c;
    LnlErr e;
    small_config(&c, "rezero", LNL_NORM_LAYERNORM, 1.0f);
    CHECK(lnl_config_override(&c, "attn.dt=0.5,mlp.dt=2@2-3,pre_norm=1", &e) == 0, "%s", e.msg);
    fd_check_config(&c, "rezero+subdt");
}

/* The attention softcap and the QK-norms (per head, over C), alone and together, both norm
 * kinds; the cap (1) low enough that the scores bend. */
static void test_fd_attn_softcap_qk_norm(void) {
    const struct {
        const char *preset, *what;
        LnlNormKind kind;
        float cap;
        int qk;
    } cases[] = {
        {"pre", "pre+softcap", LNL_NORM_LAYERNORM, 1.0f, LNL_QK_NORM_OFF},
        {"pre", "pre+qk head", LNL_NORM_LAYERNORM, 0.0f, LNL_QK_NORM_HEAD},
        {"pre", "pre+qk head", LNL_NORM_RMSNORM, 0.0f, LNL_QK_NORM_HEAD},
        {"pre", "pre+qk full", LNL_NORM_LAYERNORM, 0.0f, LNL_QK_NORM_FULL},
        {"pre", "pre+qk full", LNL_NORM_RMSNORM, 0.0f, LNL_QK_NORM_FULL},
        {"peri", "peri+softcap+qk full", LNL_NORM_RMSNORM, 1.0f, LNL_QK_NORM_FULL},
        {"peri", "peri+softcap+qk head", LNL_NORM_LAYERNORM, 1.0f, LNL_QK_NORM_HEAD},
        {"hybrid", "hybrid+softcap", LNL_NORM_LAYERNORM, 1.0f, LNL_QK_NORM_OFF},
        {"post", "post+softcap+qk full", LNL_NORM_LAYERNORM, 1.0f, LNL_QK_NORM_FULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        LnlConfig c;
        small_config(&c, cases[i].preset, cases[i].kind, 1.0f);
        c.attn_softcap = cases[i].cap;
        lnl_config_set_qk_norm(&c, cases[i].qk);
        fd_check_config(&c, cases[i].what);
    }
}

/* The gradients of a model of config c and z-loss coefficient z (perturbed init, the batch of
 * fd_check_objective) into g (num_alloc floats); the objective's value into *obj. */
static void grads_of(const LnlConfig *c, float z, float *g, double *obj) {
    LnlModel m;
    LnlErr e;
    CHECK(lnl_model_create(&m, c, &e) == 0, "%s", e.msg);
    lnl_model_init_weights(&m, 7);
    lnl_test_perturb(&m, 11);
    CHECK(lnl_model_alloc_acts(&m, 2, 5, &e) == 0, "%s", e.msg);
    m.z_loss_coef = z;
    int32_t in[10], tg[10];
    make_batch(in, tg, 10, c->vocab_size, 3);
    tg[3] = -1;
    lnl_model_zero_grad(&m);
    *obj = objective(&m, in, tg, 2, 5);
    lnl_model_backward(&m);
    memcpy(g, m.grads_mem, m.num_alloc * sizeof(float));
    lnl_model_free(&m);
}

/* The largest |a - b| / (2e-3 + 2e-2 |b|) over n gradients: above 1, fd_check's tolerance tells
 * them apart. */
static double grad_gap(const float *a, const float *b, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / (2e-3 + 2e-2 * fabs((double)b[i]));
        if (d > w) w = d;
    }
    return w;
}

/* The final logit softcap and the z-loss, by finite differences of the whole model, with checks
 * that each changes the gradients by more than the finite-difference tolerance (so a backward
 * that left one out would fail), and the forward's figures: logits = S tanh(z / S) of the
 * uncapped model's, z_loss = coef * mean over counted tokens of (log Z)^2, the cross-entropy
 * unchanged by the z-loss. */
static void test_softcap_and_zloss(void) {
    LnlConfig c;
    LnlErr e;
    const float S = 1.5f, Z = 0.05f;
    small_config(&c, "pre", LNL_NORM_LAYERNORM, 1.0f);
    c.logit_softcap = S;
    fd_check_objective(&c, "pre+softcap", 0.0f);
    fd_check_objective(&c, "pre+softcap+zloss", Z);
    small_config(&c, "post", LNL_NORM_RMSNORM, 0.5f);
    c.logit_softcap = 2.0f;
    fd_check_objective(&c, "post+softcap", 0.0f);
    small_config(&c, "peri", LNL_NORM_RMSNORM, 1.0f);
    fd_check_objective(&c, "peri+zloss", Z);
    small_config(&c, "hybrid", LNL_NORM_LAYERNORM, 0.1f);
    fd_check_objective(&c, "hybrid+zloss", 0.2f);

    /* each feature moves the gradients beyond the finite differences' tolerance */
    small_config(&c, "pre", LNL_NORM_LAYERNORM, 1.0f);
    LnlModel m;
    CHECK(lnl_model_create(&m, &c, &e) == 0, "%s", e.msg);
    const size_t n = m.num_alloc;
    lnl_model_free(&m);
    float *g0 = malloc(n * sizeof *g0), *g1 = malloc(n * sizeof *g1);
    double o0, o1;
    grads_of(&c, 0.0f, g0, &o0);
    grads_of(&c, Z, g1, &o1);
    CHECK(grad_gap(g1, g0, n) > 5.0, "the z-loss %g hardly changes the gradients (gap %.3g)", (double)Z,
          grad_gap(g1, g0, n));
    CHECK(o1 > o0, "the z-loss term is not in the objective: %g vs %g", o1, o0);
    c.logit_softcap = S;
    grads_of(&c, 0.0f, g1, &o1);
    CHECK(grad_gap(g1, g0, n) > 5.0, "the softcap %g hardly changes the gradients (gap %.3g)", (double)S,
          grad_gap(g1, g0, n));
    free(g0);
    free(g1);

    /* the forward's figures */
    small_config(&c, "pre", LNL_NORM_LAYERNORM, 1.0f);
    LnlModel a, b;
    CHECK(lnl_model_create(&a, &c, &e) == 0, "%s", e.msg);
    c.logit_softcap = S;
    CHECK(lnl_model_create(&b, &c, &e) == 0, "%s", e.msg);
    lnl_model_init_weights(&a, 7);
    lnl_model_init_weights(&b, 7);
    lnl_test_perturb(&a, 11);
    lnl_test_perturb(&b, 11);
    CHECK(lnl_model_alloc_acts(&a, 2, 5, &e) == 0 && lnl_model_alloc_acts(&b, 2, 5, &e) == 0, "%s", e.msg);
    int32_t in[10], tg[10];
    make_batch(in, tg, 10, c.vocab_size, 3);
    tg[3] = -1;
    const float ce = lnl_model_forward(&a, in, tg, 2, 5);
    CHECK(a.z_loss == 0.0f, "z_loss %g with the z-loss off", (double)a.z_loss);
    a.z_loss_coef = Z;
    const float ce_z = lnl_model_forward(&a, in, tg, 2, 5);
    CHECK(ce_z == ce, "the z-loss changed the returned cross-entropy: %.9g vs %.9g", (double)ce_z, (double)ce);
    CHECK(a.loss == ce, "m->loss %.9g is not the cross-entropy %.9g", (double)a.loss, (double)ce);
    const int V = c.vocab_size;
    double zsum = 0, worst = 0, big = 0;
    int count = 0;
    lnl_model_forward(&b, in, NULL, 2, 5);
    for (int r = 0; r < 10; r++) {
        double mx = -INFINITY, sum = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, a.logits[r * V + v]);
        for (int v = 0; v < V; v++) sum += exp(a.logits[r * V + v] - mx);
        const double lz = mx + log(sum);
        if (tg[r] >= 0) zsum += lz * lz, count++;
        for (int v = 0; v < V; v++) {
            const double want = S * tanh(a.logits[r * V + v] / S);
            worst = fmax(worst, fabs(b.logits[r * V + v] - want) / (1e-6 + 1e-6 * fabs(want)));
            big = fmax(big, fabs(b.logits[r * V + v]));
        }
    }
    const double zl = Z * zsum / count;
    CHECK(fabs(a.z_loss - zl) <= 1e-6 * zl, "z_loss %.9g, by hand %.9g", (double)a.z_loss, zl);
    CHECK(worst <= 1.0, "capped logits differ from S tanh(z / S) by %.3g tolerances", worst);
    CHECK(big > 0.5 * S && big <= S, "the capped logits reach %g of the cap %g", big, (double)S);
    lnl_model_free(&a);
    lnl_model_free(&b);
}

/* The residual step: dt alone sets the model's and every sub-layer's; attn.dt / mlp.dt some
 * sub-layers'; older configs without a sub-layer dt read as the model's. */
static void test_sub_dt(void) {
    LnlConfig c, d;
    LnlErr e;
    small_config(&c, "pre", LNL_NORM_LAYERNORM, 0.3f);
    CHECK(c.dt == 0.3f && c.sub[0][0].dt == 0.3f && c.sub[3][1].dt == 0.3f, "the preset did not take the dt");
    CHECK(lnl_config_override(&c, "dt=0.7,mlp.dt=0.2@3,attn.dt=1.5@1-2", &e) == 0, "%s", e.msg);
    CHECK(c.dt == 0.7f && c.sub[2][1].dt == 0.2f && c.sub[2][0].dt == 0.7f && c.sub[0][0].dt == 1.5f &&
              c.sub[1][0].dt == 1.5f && c.sub[1][1].dt == 0.7f && c.sub[3][0].dt == 0.7f,
          "dt overrides applied wrongly");
    CHECK(lnl_config_override(&c, "mlp.dt=-1", &e) != 0, "a negative dt accepted");
    char *js = lnl_config_to_json(&c);
    CHECK(lnl_config_from_json(&d, js, "test", &e) == 0 && memcmp(&c.sub, &d.sub, sizeof c.sub) == 0 && d.dt == c.dt,
          "sub-layer dt lost in JSON: %s", e.msg);
    LnlConfig was = c;
    lnl_config_set_dt(&c, 0.1f);
    CHECK(c.dt == 0.1f && c.sub[2][1].dt == 0.1f && c.sub[0][0].dt == 0.1f, "lnl_config_set_dt missed a sub-layer");
    char *diff = lnl_config_diff(&was, &c);
    CHECK(diff && !strcmp(diff, "dt 0.7 -> 0.1, attn.dt / mlp.dt of some sub-layers changed"), "diff: %s",
          diff ? diff : "(none)");
    free(diff);
    LnlConfig follows = c;
    lnl_config_set_dt(&follows, 0.4f);
    diff = lnl_config_diff(&c, &follows);
    CHECK(diff && !strcmp(diff, "dt 0.1 -> 0.4"), "a dt every sub-layer follows: %s", diff ? diff : "(none)");
    free(diff);
    /* a file from before the field: every sub-layer takes the model's dt */
    LnlBuf old = {0};
    const char *layers = strstr(js, "\"layers\"");
    for (const char *q = js; *q; q++) {
        if (layers && q > layers && !strncmp(q, ",\"dt\":", 6)) { /* drop ,"dt":NUMBER inside "layers" */
            q = strpbrk(q + 6, ",}") - 1;
            continue;
        }
        lnl_buf_append(&old, q, 1);
    }
    lnl_buf_append(&old, "", 1);
    CHECK(layers && strstr(old.data, "\"dt\":0.699") && !strstr(strstr(old.data, "\"layers\""), "\"dt\""),
          "old form: %s", old.data);
    CHECK(lnl_config_from_json(&d, old.data, "old", &e) == 0, "%s", e.msg);
    int all_model_dt = 1;
    for (int l = 0; l < d.n_layer; l++)
        for (int s = 0; s < 2; s++) all_model_dt &= d.sub[l][s].dt == 0.7f;
    CHECK(all_model_dt && d.dt == 0.7f, "an old file's sub-layers did not take the model's dt: %s", old.data);
    free(old.data);
    free(js);
}

/* The finite-difference check must catch a wrong gradient. */
static void test_fd_detects_error(void) {
    LnlConfig c;
    small_config(&c, "peri", LNL_NORM_LAYERNORM, 1.0f);
    LnlModel m;
    LnlErr e;
    CHECK(lnl_model_create(&m, &c, &e) == 0, "%s", e.msg);
    lnl_model_init_weights(&m, 1);
    lnl_test_perturb(&m, 2);
    CHECK(lnl_model_alloc_acts(&m, 1, 4, &e) == 0, "%s", e.msg);
    int32_t in[4] = {1, 2, 3, 4}, tg[4] = {2, 3, 4, 5};
    lnl_model_zero_grad(&m);
    lnl_model_forward(&m, in, tg, 1, 4);
    lnl_model_backward(&m);
    /* the entry with the largest gradient; a 5% error there must be caught */
    size_t k = 0;
    for (size_t i = 0; i < m.num_alloc; i++)
        if (fabsf(m.grads_mem[i]) > fabsf(m.grads_mem[k])) k = i;
    float h = 2e-3f, save = m.params_mem[k];
    m.params_mem[k] = save + h;
    double lp = lnl_model_forward(&m, in, tg, 1, 4);
    m.params_mem[k] = save - h;
    double lm = lnl_model_forward(&m, in, tg, 1, 4);
    m.params_mem[k] = save;
    double fd = (lp - lm) / (2.0 * h), right = m.grads_mem[k], wrong = right * 1.05;
    CHECK(fabs(fd - right) / (2e-3 + 2e-2 * fabs(fd)) <= 1.0, "true gradient rejected: %g vs %g", right, fd);
    CHECK(fabs(fd - wrong) / (2e-3 + 2e-2 * fabs(fd)) > 1.0, "a 5%% error would pass: fd %g", fd);
    lnl_model_free(&m);
}

/* Tensor table: names, presence per preset, GPT-2 parameter count. */
static void test_tensor_table(void) {
    LnlConfig c;
    lnl_config_default(&c); /* GPT-2 124M */
    LnlModel m;
    LnlErr e;
    CHECK(lnl_model_create(&m, &c, &e) == 0, "%s", e.msg);
    CHECK(m.num_params == 124439808, "gpt2 params %zu, expected 124439808", m.num_params);
    CHECK(lnl_model_find(&m, "h.11.attn.c_attn.weight") != NULL, "c_attn missing");
    CHECK(lnl_model_find(&m, "ln_f.bias") != NULL, "ln_f missing");
    CHECK(lnl_model_find(&m, "h.0.ln_1_post.weight") == NULL, "post norm present in pre");
    lnl_model_free(&m);

    small_config(&c, "mix", LNL_NORM_RMSNORM, 1.0f); /* 4 layers: layer 1 post, 2..4 pre */
    CHECK(lnl_model_create(&m, &c, &e) == 0, "%s", e.msg);
    CHECK(lnl_model_find(&m, "h.0.ln_1_post.weight") != NULL, "mix layer 1 not post");
    CHECK(lnl_model_find(&m, "h.0.ln_1.weight") == NULL, "mix layer 1 has pre norm");
    CHECK(lnl_model_find(&m, "h.1.ln_1.weight") != NULL, "mix layer 2 not pre");
    CHECK(lnl_model_find(&m, "h.1.ln_1.bias") == NULL, "rmsnorm has a bias");
    lnl_model_free(&m);

    small_config(&c, "hybrid", LNL_NORM_LAYERNORM, 1.0f);
    CHECK(lnl_model_create(&m, &c, &e) == 0, "%s", e.msg);
    const LnlTensorView *q = lnl_model_find(&m, "h.2.attn.k_norm.bias");
    CHECK(q && q->numel == 4, "k_norm.bias missing or wrong size");
    lnl_model_free(&m);

    /* QK-norm: q and k gains (HS) per head or (C) full, under the same names; no v_norm */
    for (int kind = LNL_QK_NORM_HEAD; kind <= LNL_QK_NORM_FULL; kind++) {
        small_config(&c, "pre", LNL_NORM_LAYERNORM, 1.0f);
        lnl_config_set_qk_norm(&c, kind);
        CHECK(lnl_model_create(&m, &c, &e) == 0, "%s", e.msg);
        const size_t want = kind == LNL_QK_NORM_FULL ? 8 : 4;
        const char *names[] = {"h.3.attn.q_norm.weight", "h.3.attn.k_norm.weight", "h.0.attn.q_norm.bias",
                               "h.0.attn.k_norm.bias"};
        for (int i = 0; i < 4; i++) {
            q = lnl_model_find(&m, names[i]);
            CHECK(q && q->numel == want && q->ndim == 1 && !q->decay, "qk_norm %d: %s missing or not (%zu)", kind,
                  names[i], want);
        }
        CHECK(!lnl_model_find(&m, "h.0.attn.v_norm.weight"), "qk_norm %d has a v norm", kind);
        lnl_model_free(&m);
    }
}

/* Init rules: ReZero gates 0, DeepNorm beta, LNS in_scale, Admin profiling. */
static void test_init_rules(void) {
    LnlConfig c;
    LnlModel m;
    LnlErr e;
    small_config(&c, "rezero", LNL_NORM_LAYERNORM, 1.0f);
    CHECK(lnl_model_create(&m, &c, &e) == 0, "%s", e.msg);
    lnl_model_init_weights(&m, 1);
    const LnlTensorView *g = lnl_model_find(&m, "h.3.gate");
    CHECK(g && m.params_mem[g->offset] == 0.0f, "rezero gate not 0");
    CHECK(lnl_model_find(&m, "ln_f.weight") == NULL, "rezero has a final norm");
    lnl_model_free(&m);

    small_config(&c, "deepnorm", LNL_NORM_LAYERNORM, 1.0f);
    CHECK_CLOSE(c.sub[2][1].skip_scale, pow(8.0, 0.25), 1e-6, 1e-6);
    CHECK_CLOSE(c.init_beta, pow(32.0, -0.25), 1e-6, 1e-6);

    small_config(&c, "lns", LNL_NORM_RMSNORM, 1.0f);
    CHECK_CLOSE(c.sub[3][0].in_scale, 0.5, 1e-7, 0);
    CHECK(c.init_resid_scale == 0, "lns uses scaled init");

    small_config(&c, "admin", LNL_NORM_LAYERNORM, 1.0f);
    CHECK(lnl_model_create(&m, &c, &e) == 0, "%s", e.msg);
    lnl_model_init_weights(&m, 3);
    CHECK(lnl_model_alloc_acts(&m, 2, 5, &e) == 0, "%s", e.msg);
    int32_t in[10];
    for (int i = 0; i < 10; i++) in[i] = i % 13;
    lnl_model_admin_profile(&m, in, 2, 5);
    const LnlTensorView *a0 = lnl_model_find(&m, "h.0.attn_skip"), *a1 = lnl_model_find(&m, "h.0.mlp_skip"),
                        *a3 = lnl_model_find(&m, "h.3.mlp_skip");
    CHECK(a0 && a1 && a3, "omega tensors missing");
    if (a0 && a1 && a3) {
        CHECK(m.params_mem[a0->offset] == 1.0f, "first omega %g, expected 1", m.params_mem[a0->offset]);
        CHECK(m.params_mem[a1->offset] > 1.0f, "second omega %g not > 1", m.params_mem[a1->offset]);
        CHECK(m.params_mem[a3->offset] > m.params_mem[a1->offset], "omegas do not grow with depth");
    }
    lnl_model_free(&m);
}

/* The preset table: each preset's init std, 1/sqrt(2L) scaling, linear biases, embedding norm
 * and scale, as docs/PLACEMENTS.md (section 4) lists them with their sources. */
static void test_preset_defaults(void) {
    static const struct {
        const char *preset;
        int xavier; /* init std 1/sqrt(C); else the configured std (GPT-2's 0.02) */
        int resid_scale, bias, embed_norm, embed_scale;
    } want[] = {
        {"post", 1, 0, 1, 0, 1},       {"b2t", 1, 0, 1, 0, 1},        {"pre", 0, 1, 1, 0, 0},
        {"peri", 0, 0, 1, 1, 0},       {"sandwich", 0, 0, 1, 1, 0},   {"mix", 0, 0, 0, 0, 0},
        {"lns", 0, 0, 0, 0, 0},        {"hybrid", 0, 1, 0, 0, 0},     {"hybrid*", 0, 1, 0, 0, 0},
        {"deepnorm", 1, 0, 1, 0, 0},   {"admin", 1, 0, 1, 0, 1},      {"branchnorm", 0, 1, 1, 0, 0},
        {"rezero", 0, 1, 1, 0, 0},     {"olmo2", 0, 0, 0, 0, 0},      {"gemma2", 0, 0, 0, 0, 1},
    };
    CHECK(sizeof want / sizeof want[0] == NPRESETS + 1, "every preset (and the sandwich alias) listed");
    /* the model families' presets also set their sources' norm kind, gain, eps, softcaps and q/k
     * norms (docs/PLACEMENTS.md, olmo2 and gemma2); the others leave them as they were */
    {
        LnlConfig c;
        LnlErr e;
        lnl_config_default(&c);
        c.n_layer = 3;
        lnl_config_set_norm(&c, LNL_NORM_DYT);
        CHECK(lnl_config_preset(&c, "olmo2", &e) == 0, "%s", e.msg);
        CHECK(c.norm == LNL_NORM_RMSNORM && c.norm_gain == LNL_GAIN_PLAIN && c.eps == 1e-6f && c.attn_softcap == 0 &&
                  c.logit_softcap == 0 && lnl_config_qk_norm(&c) == LNL_QK_NORM_FULL && !c.sub[1][0].pre_norm &&
                  c.sub[1][0].out_norm && c.sub[2][1].out_norm && !c.sub[2][1].post_norm && c.final_norm,
              "olmo2's defaults");
        CHECK(lnl_config_preset(&c, "gemma2", &e) == 0, "%s", e.msg);
        CHECK(c.norm == LNL_NORM_RMSNORM && c.norm_gain == LNL_GAIN_ONE_PLUS && c.eps == 1e-6f && c.attn_softcap == 50 &&
                  c.logit_softcap == 30 && lnl_config_qk_norm(&c) == LNL_QK_NORM_OFF && c.sub[0][0].pre_norm &&
                  c.sub[0][0].out_norm && c.embed_scale && c.final_norm,
              "gemma2's defaults");
        lnl_config_set_norm(&c, LNL_NORM_DERF);
        c.eps = 1e-3f;
        CHECK(lnl_config_preset(&c, "peri", &e) == 0 && c.norm == LNL_NORM_DERF && c.eps == 1e-3f &&
                  c.norm_gain == LNL_GAIN_ONE_PLUS && c.attn_softcap == 50,
              "a placement preset changed the norm kind, eps, gain or softcap");
    }
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        LnlConfig c;
        LnlErr e;
        lnl_config_default(&c);
        c.n_layer = 3;
        c.n_embd = 16;
        c.n_head = 2;
        CHECK(c.init_std == 0.02f, "lnl_config_default's std is GPT-2's 0.02");
        CHECK(lnl_config_preset(&c, want[i].preset, &e) == 0, "%s", e.msg);
        const char *p = want[i].preset;
        CHECK(lnl_config_init_std(&c) == (want[i].xavier ? 0.25f : 0.02f), "%s: init std %g", p,
              (double)lnl_config_init_std(&c));
        CHECK(c.init_std_rule == (want[i].xavier ? LNL_STD_INV_SQRT_C : LNL_STD_FIXED), "%s: std rule", p);
        CHECK(c.init_resid_scale == want[i].resid_scale, "%s: resid_scale %d", p, c.init_resid_scale);
        CHECK(lnl_config_bias(&c) == want[i].bias, "%s: bias %d", p, lnl_config_bias(&c));
        CHECK(c.embed_norm == want[i].embed_norm, "%s: embed_norm %d", p, c.embed_norm);
        CHECK(c.embed_scale == want[i].embed_scale, "%s: embed_scale %d", p, c.embed_scale);
        LnlPresetDefaults d;
        CHECK(lnl_preset_defaults(p, &d, &e) == 0, "%s", e.msg);
        CHECK(d.init_std_rule == c.init_std_rule && d.init_resid_scale == c.init_resid_scale && d.bias == want[i].bias &&
                  d.embed_norm == c.embed_norm && d.embed_scale == c.embed_scale && d.final_norm == c.final_norm,
              "%s: lnl_preset_defaults disagrees with lnl_config_preset", p);
        /* the rule follows the width; a fixed std stays what the caller set */
        c.n_embd = 64;
        CHECK(!want[i].xavier || lnl_config_init_std(&c) == 0.125f, "%s: 1/sqrt(64)", p);
        lnl_config_default(&c);
        c.init_std = 0.3f;
        CHECK(lnl_config_preset(&c, p, &e) == 0 && c.init_std == 0.3f, "%s: preset changed a fixed std", p);
    }
    LnlPresetDefaults d;
    LnlErr e;
    CHECK(lnl_preset_defaults("sideways", &d, &e) != 0 && strstr(e.msg, "sideways"), "unknown preset accepted");
    /* a model records the std its rule gave */
    LnlConfig c;
    small_config(&c, "post", LNL_NORM_LAYERNORM, 1.0f);
    LnlModel m;
    CHECK(lnl_model_create(&m, &c, &e) == 0, "%s", e.msg);
    CHECK(m.cfg.init_std == 1.0f / sqrtf(8.0f), "model's init_std %g", (double)m.cfg.init_std);
    lnl_model_init_weights(&m, 2);
    const LnlTensorView *w = lnl_model_find(&m, "h.1.mlp.c_proj.weight");
    double ss = 0;
    for (size_t k = 0; k < w->numel; k++) ss += (double)m.params_mem[w->offset + k] * m.params_mem[w->offset + k];
    double sd = sqrt(ss / (double)w->numel);
    CHECK(sd > 0.8 / sqrt(8.0) && sd < 1.2 / sqrt(8.0), "post c_proj std %g, expected about 1/sqrt(8) (no 1/sqrt(2L))", sd);
    lnl_model_free(&m);
}

/* --init-std's values: a number in (0, 10] or the rule's name. */
static void test_parse_init_std(void) {
    LnlStdRule r;
    float std = -1;
    LnlErr e;
    CHECK(lnl_parse_init_std("0.05", &r, &std, "--init-std", &e) == 0 && r == LNL_STD_FIXED && std == 0.05f, "0.05");
    CHECK(lnl_parse_init_std("1/sqrt(C)", &r, &std, "--init-std", &e) == 0 && r == LNL_STD_INV_SQRT_C, "rule");
    const char *bad[] = {"0", "-1", "11", "", "1/sqrt(L)", "0.1x", "nan"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(lnl_parse_init_std(bad[i], &r, &std, "--init-std", &e) != 0 && strstr(e.msg, "--init-std") &&
                  !strchr(e.msg, '\n'),
              "accepted '%s'", bad[i]);
}

/* Without linear biases the tensors are absent, the forward adds none, and the gradient is
 * right; per-sub-layer biases (--spec) leave the other layers' tensors in place. */
/* The model library never exits the process: a backward without a forward and activations too
 * large to allocate come back as errors, and the model stays usable. */
static void test_errors_not_exits(void) {
    LnlConfig c;
    LnlErr e;
    small_config(&c, "pre", LNL_NORM_LAYERNORM, 1.0f);
    c.vocab_size = 50257;
    c.n_positions = 1024;
    LnlModel m;
    CHECK(lnl_model_create(&m, &c, &e) == 0, "%s", e.msg);
    CHECK(lnl_model_alloc_acts(&m, 2, 4, &e) == 0, "%s", e.msg);
    CHECK(lnl_model_backward(&m) == -1, "a backward without a forward did not report it");
    /* logits alone: 2^20 x 1024 rows x 50257 floats, about 200 PiB */
    int rc = lnl_model_alloc_acts(&m, 1 << 20, 1024, &e);
    CHECK(rc == -1 && strstr(e.msg, "cannot allocate") && strstr(e.msg, "activations"),
          "an impossible allocation gave rc %d, '%s'", rc, rc ? e.msg : "");
    CHECK(m.acts_mem == NULL && m.B == 0, "a failed allocation left activations behind");
    int32_t in[8] = {1, 2, 3, 4, 5, 6, 7, 8}, tg[8] = {2, 3, 4, 5, 6, 7, 8, 9};
    float loss = lnl_model_forward(&m, in, tg, 2, 4); /* allocates 2 x 4 again */
    CHECK(isfinite(loss) && loss > 0, "the model is not usable after a failed allocation: loss %g", loss);
    CHECK(lnl_model_backward(&m) == 0, "backward after a forward failed");
    CHECK(lnl_model_backward(&m) == -1, "a second backward without a forward did not report it");
    lnl_model_free(&m);
}

static void test_bias_off(void) {
    LnlConfig c;
    LnlErr e;
    small_config(&c, "pre", LNL_NORM_LAYERNORM, 1.0f);
    lnl_config_set_bias(&c, 0);
    CHECK(lnl_config_bias(&c) == 0, "bias still on");
    LnlModel m;
    CHECK(lnl_model_create(&m, &c, &e) == 0, "%s", e.msg);
    const char *gone[] = {"h.0.attn.c_attn.bias", "h.3.attn.c_proj.bias", "h.2.mlp.c_fc.bias", "h.1.mlp.c_proj.bias"};
    for (int i = 0; i < 4; i++) CHECK(lnl_model_find(&m, gone[i]) == NULL, "%s present with bias off", gone[i]);
    CHECK(m.p.qkvb == NULL && m.p.fcprojb == NULL, "bias roles allocated");
    CHECK(lnl_model_find(&m, "h.0.ln_1.bias") != NULL, "norm biases are not linear biases");
    /* GPT-2 has C*(3C + C + 4C + C) + ... bias floats per layer fewer: 3C + C + 4C + C = 9C */
    LnlConfig with = c;
    lnl_config_set_bias(&with, 1);
    LnlModel mb;
    CHECK(lnl_model_create(&mb, &with, &e) == 0, "%s", e.msg);
    CHECK(mb.num_params - m.num_params == (size_t)(4 * 9 * 8), "params %zu vs %zu", mb.num_params, m.num_params);
    lnl_model_free(&mb);
    lnl_model_free(&m);
    char *d = lnl_config_diff(&with, &c);
    CHECK(d && strcmp(d, "bias on -> off") == 0, "diff: %s", d ? d : "(none)");
    free(d);
    fd_check_config(&c, "pre, no bias");
    /* safetensors and .bin files hold the model without biases and load it back */
    CHECK(lnl_model_create(&m, &c, &e) == 0, "%s", e.msg);
    lnl_model_init_weights(&m, 6);
    lnl_test_perturb(&m, 7);
    CHECK(!lnl_config_is_plain_gpt2(&m.cfg), "a model without biases is not llm.c's GPT-2");
    char path[2][64];
    snprintf(path[0], sizeof path[0], "/tmp/lnlab_test_model_%d.safetensors", (int)getpid());
    snprintf(path[1], sizeof path[1], "/tmp/lnlab_test_model_%d.bin", (int)getpid());
    for (int k = 0; k < 2; k++) {
        LnlModel r;
        CHECK(lnl_model_save(&m, path[k], &e) == 0, "%s", e.msg);
        CHECK(lnl_model_load(&r, path[k], NULL, NULL, &e) == 0, "%s", e.msg);
        CHECK(r.nviews == m.nviews && r.num_params == m.num_params && lnl_config_bias(&r.cfg) == 0 &&
                  !memcmp(r.params_mem, m.params_mem, m.num_alloc * sizeof(float)),
              "%s: reloaded model differs", path[k]);
        lnl_model_free(&r);
        remove(path[k]);
    }
    lnl_model_free(&m);
    small_config(&c, "peri", LNL_NORM_RMSNORM, 0.5f);
    CHECK(lnl_config_override(&c, "attn.bias=0@2-3,mlp.bias@4=0", &e) == 0, "%s", e.msg);
    CHECK(lnl_config_bias(&c) == -1, "mixed biases");
    CHECK(lnl_model_create(&m, &c, &e) == 0, "%s", e.msg);
    CHECK(lnl_model_find(&m, "h.0.attn.c_attn.bias") && !lnl_model_find(&m, "h.1.attn.c_attn.bias") &&
              !lnl_model_find(&m, "h.2.attn.c_proj.bias") && lnl_model_find(&m, "h.3.attn.c_proj.bias") &&
              lnl_model_find(&m, "h.2.mlp.c_fc.bias") && !lnl_model_find(&m, "h.3.mlp.c_proj.bias"),
          "per-layer bias presence");
    lnl_model_free(&m);
    fd_check_config(&c, "peri, some biases");
    /* the slices of layers without biases stay zero while the others train */
    CHECK(lnl_model_create(&m, &c, &e) == 0, "%s", e.msg);
    lnl_model_init_weights(&m, 4);
    lnl_test_perturb(&m, 5);
    CHECK(lnl_model_alloc_acts(&m, 1, 4, &e) == 0, "%s", e.msg);
    int32_t in[4] = {1, 2, 3, 4}, tg[4] = {5, 6, 7, 8};
    lnl_model_zero_grad(&m);
    lnl_model_forward(&m, in, tg, 1, 4);
    lnl_model_backward(&m);
    const float *g1 = lnl_model_slice(&m, m.g.qkvb, LNL_ROLE_qkvb, 1), *g0 = lnl_model_slice(&m, m.g.qkvb, LNL_ROLE_qkvb, 0);
    double a1 = 0, a0 = 0;
    for (int k = 0; k < 3 * 8; k++) {
        a1 += fabsf(g1[k]);
        a0 += fabsf(g0[k]);
    }
    CHECK(a1 == 0 && a0 > 0, "gradient into an absent bias slice %g (present %g)", a1, a0);
    lnl_model_free(&m);
}

/* Spec overrides compose placements and reject nonsense. */
static void test_overrides(void) {
    LnlConfig c;
    LnlErr e;
    small_config(&c, "peri", LNL_NORM_LAYERNORM, 1.0f);
    CHECK(lnl_config_override(&c, "attn.post_norm=1@2-3,final_norm=0,mlp.in_scale=0.5", &e) == 0, "%s", e.msg);
    CHECK(c.sub[1][0].post_norm && c.sub[2][0].post_norm && !c.sub[0][0].post_norm && !c.sub[3][0].post_norm,
          "layer range not applied");
    CHECK(!c.sub[1][1].post_norm, "attn override touched mlp");
    CHECK(c.sub[0][1].in_scale == 0.5f && c.sub[0][0].in_scale == 1.0f, "mlp.in_scale wrong");
    CHECK(!c.final_norm && strcmp(c.preset, "custom") == 0, "top-level override or preset name wrong");
    CHECK(lnl_config_override(&c, "bogus=1", &e) != 0 && strstr(e.msg, "bogus"), "unknown field accepted");
    CHECK(lnl_config_override(&c, "pre_norm=1@0-2", &e) != 0, "layer 0 accepted");
    CHECK(lnl_config_override(&c, "mlp.out_norm@4-4=0", &e) == 0 && !c.sub[3][1].out_norm && c.sub[2][1].out_norm,
          "key@range form: %s", e.msg);
    CHECK(lnl_config_override(&c, "attn.b2t=1", &e) == 0 && lnl_config_validate(&c, &e) != 0, "attn b2t validated");
    /* qk_norm: by name; attention only; one kind per model; never with qkv_norm */
    small_config(&c, "pre", LNL_NORM_LAYERNORM, 1.0f);
    CHECK(lnl_config_override(&c, "attn.qk_norm=full@2-4", &e) == 0 && lnl_config_validate(&c, &e) == 0 &&
              c.sub[1][0].qk_norm == LNL_QK_NORM_FULL && !c.sub[0][0].qk_norm && lnl_config_qk_norm(&c) == -1 &&
              lnl_config_qk_norm_dim(&c) == 8,
          "attn.qk_norm=full@2-4: %s", e.msg);
    CHECK(lnl_config_override(&c, "attn.qk_norm=sideways", &e) != 0 && strstr(e.msg, "off|head|full"),
          "bad qk_norm accepted: %s", e.msg);
    CHECK(lnl_config_override(&c, "attn.qk_norm=head@1", &e) == 0 && lnl_config_validate(&c, &e) != 0 &&
              strstr(e.msg, "head and full"),
          "head and full in one model: %s", e.msg);
    small_config(&c, "pre", LNL_NORM_LAYERNORM, 1.0f);
    CHECK(lnl_config_override(&c, "mlp.qk_norm=head", &e) == 0 && lnl_config_validate(&c, &e) != 0 &&
              strstr(e.msg, "attn only"),
          "mlp qk_norm validated: %s", e.msg);
    small_config(&c, "hybrid", LNL_NORM_LAYERNORM, 1.0f);
    CHECK(lnl_config_override(&c, "attn.qk_norm=head@4", &e) == 0 && lnl_config_validate(&c, &e) != 0 &&
              strstr(e.msg, "qkv_norm (layer 1) and qk_norm (layer 4)"),
          "qkv_norm with qk_norm validated: %s", e.msg);
    small_config(&c, "pre", LNL_NORM_LAYERNORM, 1.0f);
    const float bad_caps[] = {-1.0f, NAN, INFINITY};
    for (int i = 0; i < 3; i++) {
        c.attn_softcap = bad_caps[i];
        CHECK(lnl_config_validate(&c, &e) != 0 && strstr(e.msg, "attn_softcap"), "attn_softcap %g validated",
              (double)bad_caps[i]);
    }
}

/* The JSON form round-trips every field. */
static void test_config_json(void) {
    LnlConfig c, d;
    LnlErr e;
    small_config(&c, "hybrid*", LNL_NORM_RMSNORM, 0.1f);
    c.embed_norm = 1;
    char *js = lnl_config_to_json(&c);
    CHECK(lnl_config_from_json(&d, js, "test", &e) == 0, "%s", e.msg);
    char *js2 = lnl_config_to_json(&d);
    CHECK(strcmp(js, js2) == 0, "round trip differs");
    CHECK(memcmp(&c.sub, &d.sub, sizeof c.sub) == 0, "spec differs");
    free(js);
    free(js2);
    CHECK(lnl_config_from_json(&d, "{\"format\":\"x\"}", "cfg.json", &e) != 0 && strstr(e.msg, "cfg.json"),
          "bad format accepted: %s", e.msg);
    CHECK(lnl_config_from_json(&d, "{nope", "cfg.json", &e) != 0, "invalid JSON accepted");
    /* the logit softcap: recorded, read back, named by the diff, validated; a file without it has none */
    small_config(&c, "pre", LNL_NORM_LAYERNORM, 1.0f);
    c.logit_softcap = 30.0f;
    js = lnl_config_to_json(&c);
    CHECK(strstr(js, "\"logit_softcap\":30") != NULL, "softcap not recorded: %s", js);
    CHECK(lnl_config_from_json(&d, js, "test", &e) == 0 && d.logit_softcap == 30.0f, "softcap lost: %s", e.msg);
    char *diff = lnl_config_diff(&d, &c);
    CHECK(diff == NULL, "equal configs differ: %s", diff ? diff : "");
    free(diff);
    d.logit_softcap = 0.0f;
    diff = lnl_config_diff(&d, &c);
    CHECK(diff && strstr(diff, "logit_softcap 0 -> 30"), "diff: %s", diff ? diff : "(none)");
    free(diff);
    LnlBuf nocap = {0};
    const char *at = strstr(js, ",\"logit_softcap\":30");
    lnl_buf_append(&nocap, js, (size_t)(at - js));
    lnl_buf_printf(&nocap, "%s", at + strlen(",\"logit_softcap\":30"));
    CHECK(lnl_config_from_json(&d, nocap.data, "old.json", &e) == 0 && d.logit_softcap == 0.0f,
          "a file without logit_softcap: %s", e.msg);
    lnl_buf_free(&nocap);
    free(js);
    const float bad_caps[] = {-1.0f, NAN, INFINITY, 2e6f};
    for (int i = 0; i < 4; i++) {
        c.logit_softcap = bad_caps[i];
        CHECK(lnl_config_validate(&c, &e) != 0 && strstr(e.msg, "logit_softcap"), "softcap %g accepted",
              (double)bad_caps[i]);
        js = lnl_config_to_json(&c);
        CHECK(lnl_config_from_json(&d, js, "bad.json", &e) != 0, "softcap %g read back", (double)bad_caps[i]);
        free(js);
    }
    /* the init rule and per-sub-layer biases are recorded; a file from before they were has
     * biases and a fixed std */
    small_config(&c, "post", LNL_NORM_LAYERNORM, 1.0f);
    CHECK(lnl_config_override(&c, "mlp.bias=0@2", &e) == 0, "%s", e.msg);
    js = lnl_config_to_json(&c);
    CHECK(strstr(js, "\"std_rule\":\"1/sqrt(C)\"") && strstr(js, "\"std\":0.35355"), "init record: %s", js);
    CHECK(lnl_config_from_json(&d, js, "test", &e) == 0, "%s", e.msg);
    CHECK(d.init_std_rule == LNL_STD_INV_SQRT_C && !d.sub[1][1].bias && d.sub[1][0].bias && d.sub[2][1].bias,
          "rule or biases lost");
    free(js);
    small_config(&c, "pre", LNL_NORM_LAYERNORM, 1.0f);
    js = lnl_config_to_json(&c);
    LnlBuf old = {0};
    for (const char *q = js; *q; q++) {
        if (!strncmp(q, ",\"bias\":true", 12)) q += 11;
        else if (!strncmp(q, "\"std_rule\":\"fixed\",", 19)) q += 18;
        else lnl_buf_append(&old, q, 1);
    }
    lnl_buf_append(&old, "", 1);
    CHECK(!strstr(old.data, "bias\"") && !strstr(old.data, "std_rule"), "old form: %s", old.data);
    CHECK(lnl_config_from_json(&d, old.data, "old.json", &e) == 0, "%s", e.msg);
    CHECK(lnl_config_bias(&d) == 1 && d.init_std_rule == LNL_STD_FIXED && d.init_std == 0.3f, "old file's defaults");
    lnl_buf_free(&old);
    free(js);
    /* the softcap and qk_norm are recorded, and read as off from files from before them */
    small_config(&c, "peri", LNL_NORM_RMSNORM, 1.0f);
    c.attn_softcap = 30.0f;
    lnl_config_set_qk_norm(&c, LNL_QK_NORM_FULL);
    js = lnl_config_to_json(&c);
    CHECK(strstr(js, "\"attn_softcap\":30") && strstr(js, "\"qk_norm\":\"full\""), "softcap / qk_norm record: %s", js);
    CHECK(lnl_config_from_json(&d, js, "test", &e) == 0, "%s", e.msg);
    CHECK(d.attn_softcap == 30.0f && lnl_config_qk_norm(&d) == LNL_QK_NORM_FULL && !d.sub[0][1].qk_norm,
          "softcap / qk_norm lost");
    free(js);
    small_config(&c, "pre", LNL_NORM_LAYERNORM, 1.0f);
    js = lnl_config_to_json(&c);
    LnlBuf old2 = {0};
    for (const char *q = js; *q; q++) {
        if (!strncmp(q, ",\"qk_norm\":\"off\"", 16)) q += 15;
        else if (!strncmp(q, "\"attn_softcap\":0,", 17)) q += 16;
        else if (!strncmp(q, "\"logit_softcap\":0,", 18)) q += 17;
        else lnl_buf_append(&old2, q, 1);
    }
    lnl_buf_append(&old2, "", 1);
    CHECK(!strstr(old2.data, "qk_norm") && !strstr(old2.data, "softcap"), "old form: %s", old2.data);
    CHECK(lnl_config_from_json(&d, old2.data, "old.json", &e) == 0, "%s", e.msg);
    CHECK(d.attn_softcap == 0.0f && lnl_config_qk_norm(&d) == LNL_QK_NORM_OFF, "old file: softcap / qk_norm not off");
    lnl_buf_free(&old2);
    free(js);
    /* the diff names the softcap */
    small_config(&c, "pre", LNL_NORM_LAYERNORM, 1.0f);
    d = c;
    d.attn_softcap = 50.0f;
    diff = lnl_config_diff(&c, &d);
    CHECK(diff && strstr(diff, "attn_softcap 0 -> 50"), "diff: %s", diff ? diff : "(none)");
    free(diff);
    CHECK(lnl_config_from_json(&d, "{\"format\":\"lnlab.config\",\"version\":1,\"n_layer\":1,\"n_head\":1,\"n_embd\":4,"
                                   "\"n_positions\":4,\"vocab_size\":5,\"norm\":\"layernorm\",\"eps\":1e-5,\"dt\":1,"
                                   "\"final_norm\":true,\"embed_norm\":false,\"embed_scale\":false,\"preset\":\"pre\","
                                   "\"init\":{\"std\":0.02,\"std_rule\":\"xavier\",\"resid_scale\":true,\"beta\":1,"
                                   "\"admin_profile\":false},\"branchnorm_steps\":1,\"mix_ratio\":0.25,\"layers\":[]}",
                                   "bad.json", &e) != 0 && strstr(e.msg, "init.std_rule"),
          "bad std_rule accepted: %s", e.msg);
}

int main(void) {
    RUN_TEST(test_tensor_table);
    RUN_TEST(test_init_rules);
    RUN_TEST(test_preset_defaults);
    RUN_TEST(test_parse_init_std);
    RUN_TEST(test_bias_off);
    RUN_TEST(test_errors_not_exits);
    RUN_TEST(test_sub_dt);
    RUN_TEST(test_overrides);
    RUN_TEST(test_config_json);
    RUN_TEST(test_fd_detects_error);
    RUN_TEST(test_fd_all_presets);
    RUN_TEST(test_fd_attn_softcap_qk_norm);
    RUN_TEST(test_softcap_and_zloss);
    TEST_MAIN_END();
}
