/* Model tests: the parameter table, presets, and a finite-difference check of the whole
 * model's backward for every preset and both norm kinds (independent of the PyTorch check). */
#include "harness.h"

#include "common/perturb.h"
#include "model/model.h"

static const char *presets[] = {"post", "pre", "peri", "b2t", "mix", "lns", "hybrid", "hybrid*",
                                "deepnorm", "admin", "branchnorm", "rezero"};
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

/* Central differences in float32 on a few entries of every tensor. */
static void fd_check(const char *preset, LnlNormKind kind, float dt, int embed_extras) {
    LnlConfig c;
    small_config(&c, preset, kind, dt);
    if (embed_extras) {
        c.embed_norm = 1;
        c.embed_scale = 1;
    }
    LnlModel m;
    LnlErr e;
    CHECK(lnl_model_create(&m, &c, &e) == 0, "%s", e.msg);
    lnl_model_init_weights(&m, 7);
    lnl_test_perturb(&m, 11);
    const int B = 2, T = 5;
    CHECK(lnl_model_alloc_acts(&m, B, T, &e) == 0, "%s", e.msg);
    m.branch_lambda = 0.6f;
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
            double lp = lnl_model_forward(&m, in, tg, B, T);
            m.params_mem[k] = save - h;
            double lm = lnl_model_forward(&m, in, tg, B, T);
            m.params_mem[k] = save;
            double fd = (lp - lm) / (2.0 * h);
            double an = m.grads_mem[k];
            double err = fabs(fd - an) / (2e-3 + 2e-2 * fabs(fd));
            if (err > worst) {
                worst = err;
                worst_name = v->name;
            }
            CHECK(err <= 1.0, "%s/%s dt %g: %s[%zu] analytic %.6g vs finite difference %.6g", preset,
                  kind == LNL_NORM_RMSNORM ? "rmsnorm" : "layernorm", dt, v->name, k - v->offset, an, fd);
            checked++;
        }
    }
    (void)worst_name;
    CHECK(checked > 0, "no tensors checked");
    lnl_model_free(&m);
}

static void test_fd_all_presets(void) {
    for (int i = 0; i < NPRESETS; i++) {
        fd_check(presets[i], LNL_NORM_LAYERNORM, 1.0f, 0);
        fd_check(presets[i], LNL_NORM_RMSNORM, 0.1f, 0);
    }
    fd_check("pre", LNL_NORM_LAYERNORM, 0.5f, 1);
    fd_check("peri", LNL_NORM_RMSNORM, 1.0f, 1);
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
}

int main(void) {
    RUN_TEST(test_tensor_table);
    RUN_TEST(test_init_rules);
    RUN_TEST(test_overrides);
    RUN_TEST(test_config_json);
    RUN_TEST(test_fd_detects_error);
    RUN_TEST(test_fd_all_presets);
    TEST_MAIN_END();
}
