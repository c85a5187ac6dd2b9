/* Probe figures (src/diag/stats.h) against direct computations: the three hidden-state
 * statistics by a naive two-pass loop, entry 0 from the embedding tables themselves, and each
 * block's grad_norm from the per-layer slices of the gradient roles (not the tensor views). */
#include "harness.h"

#include "common/perturb.h"
#include "diag/stats.h"
#include "model/model.h"

/* Two passes, double accumulation, biased variances: DESIGN.md's definitions as written. */
static LnlHiddenStats naive_stats(const float *x, int N, int C) {
    LnlHiddenStats s = {0, 0, 0};
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) s.mean_abs += fabs((double)x[(size_t)n * C + c]);
    s.mean_abs /= (double)N * C;
    for (int n = 0; n < N; n++) {
        double mean = 0, var = 0;
        for (int c = 0; c < C; c++) mean += x[(size_t)n * C + c];
        mean /= C;
        for (int c = 0; c < C; c++) {
            double d = x[(size_t)n * C + c] - mean;
            var += d * d;
        }
        s.var_entry += var / C;
    }
    s.var_entry /= N;
    for (int c = 0; c < C; c++) {
        double mean = 0, var = 0;
        for (int n = 0; n < N; n++) mean += x[(size_t)n * C + c];
        mean /= N;
        for (int n = 0; n < N; n++) {
            double d = x[(size_t)n * C + c] - mean;
            var += d * d;
        }
        s.var_data += var / N;
    }
    s.var_data /= C;
    return s;
}

#define CHECK_STATS(got, want, rtol)                                 \
    do {                                                             \
        CHECK_CLOSE((got).mean_abs, (want).mean_abs, 1e-12, rtol);   \
        CHECK_CLOSE((got).var_entry, (want).var_entry, 1e-12, rtol); \
        CHECK_CLOSE((got).var_data, (want).var_data, 1e-12, rtol);   \
    } while (0)

/* Channels with their own offset and scale, tokens with their own shift, so that the two
 * variances differ and neither is the variance of all entries. */
static void test_hidden_stats_random(void) {
    const int N = 37, C = 23;
    float *x = malloc(sizeof(float) * N * C);
    LnlRng r;
    lnl_rng_seed(&r, 42);
    for (int n = 0; n < N; n++) {
        double shift = 3.0 * (lnl_rng_uniform(&r) - 0.5);
        for (int c = 0; c < C; c++) {
            double u = lnl_rng_uniform(&r) - 0.5;
            x[(size_t)n * C + c] = (float)(shift + (c % 5 - 2) * 1.5 + (0.1 + 0.2 * (c % 7)) * u);
        }
    }
    LnlHiddenStats got = lnl_hidden_stats(x, N, C), want = naive_stats(x, N, C);
    CHECK_STATS(got, want, 1e-9);
    CHECK(fabs(got.var_entry - got.var_data) > 0.1, "test data should separate the variances: %g vs %g",
          got.var_entry, got.var_data);
    free(x);
}

/* x[n][c] = c: every channel is constant over tokens (var_data 0); every token holds 0..C-1
 * (var_entry (C^2 - 1) / 12); mean |x| = (C - 1) / 2. */
static void test_hidden_stats_exact(void) {
    const int N = 5, C = 8;
    float x[5 * 8];
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) x[n * C + c] = (float)c;
    LnlHiddenStats s = lnl_hidden_stats(x, N, C);
    CHECK_CLOSE(s.mean_abs, (C - 1) / 2.0, 1e-12, 0);
    CHECK_CLOSE(s.var_entry, (C * C - 1) / 12.0, 1e-12, 0);
    CHECK_CLOSE(s.var_data, 0.0, 1e-12, 0);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) x[n * C + c] = -(float)n;
    s = lnl_hidden_stats(x, N, C);
    CHECK_CLOSE(s.mean_abs, (N - 1) / 2.0, 1e-12, 0);
    CHECK_CLOSE(s.var_entry, 0.0, 1e-12, 0);
    CHECK_CLOSE(s.var_data, (N * N - 1) / 12.0, 1e-12, 0);
}

static void small_config(LnlConfig *c, const char *preset, int embed_norm) {
    lnl_config_default(c);
    c->n_layer = 3;
    c->n_head = 2;
    c->n_embd = 8;
    c->n_positions = 6;
    c->vocab_size = 11;
    c->init_std = 0.3f;
    LnlErr e;
    int r = lnl_config_preset(c, preset, &e);
    CHECK(r == 0, "preset %s: %s", preset, e.msg);
    c->embed_norm = (uint8_t)embed_norm;
    c->embed_scale = 0; /* entry 0 is checked against wte + wpe (post, b2t and admin scale it by default) */
}

/* Builds, runs forward + backward on a random batch; returns the tokens it used. */
static int run_model(LnlModel *m, const char *preset, int embed_norm, int perturb, int32_t *in, int B, int T) {
    LnlConfig *c = malloc(sizeof *c);
    small_config(c, preset, embed_norm);
    LnlErr e;
    int r = lnl_model_create(m, c, &e);
    free(c);
    CHECK(r == 0, "%s: %s", preset, e.msg);
    if (r) return -1;
    lnl_model_init_weights(m, 3);
    if (perturb) lnl_test_perturb(m, 4);
    CHECK(lnl_model_alloc_acts(m, B, T, &e) == 0, "%s", e.msg);
    int32_t tg[64];
    LnlRng rng;
    lnl_rng_seed(&rng, 9);
    for (int i = 0; i < B * T; i++) {
        in[i] = (int32_t)lnl_rng_below(&rng, (uint64_t)m->cfg.vocab_size);
        tg[i] = (int32_t)lnl_rng_below(&rng, (uint64_t)m->cfg.vocab_size);
    }
    lnl_model_zero_grad(m);
    lnl_model_forward(m, in, tg, B, T);
    lnl_model_backward(m);
    return 0;
}

static double sumsq(const float *g, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return s;
}

/* Squared gradient norm of block l (0-based) from the role slices: role r holds (L, per) floats. */
static double layer_sumsq_by_roles(const LnlModel *m, int l) {
    const int L = m->cfg.n_layer;
    double s = 0;
#define X(f, n, pl, r, cc, i, d, t, p, place) \
    if (pl && m->g.f) s += sumsq(m->g.f + (size_t)l * (m->role_size[LNL_ROLE_##f] / L), m->role_size[LNL_ROLE_##f] / L);
    LNL_PARAMS(X)
#undef X
    return s;
}

static double global_sumsq_by_roles(const LnlModel *m) {
    double s = 0;
#define X(f, n, pl, r, cc, i, d, t, p, place) \
    if (!pl && m->g.f) s += sumsq(m->g.f, m->role_size[LNL_ROLE_##f]);
    LNL_PARAMS(X)
#undef X
    return s;
}

static const char *presets[] = {"post", "pre", "peri", "b2t", "mix", "lns", "hybrid", "admin", "rezero"};

static void test_probe_collect(void) {
    const int B = 2, T = 5;
    for (size_t k = 0; k < sizeof presets / sizeof presets[0]; k++) {
        const char *preset = presets[k];
        LnlModel m;
        int32_t in[64];
        if (run_model(&m, preset, 0, 1, in, B, T)) continue;
        const int L = m.cfg.n_layer, C = m.cfg.n_embd, N = B * T;
        LnlProbe p;
        lnl_probe_collect(&m, &p);
        CHECK(p.n == L + 1, "%s: %d entries for %d layers", preset, p.n, L);

        /* entry 0: wte[token] + wpe[position], from the parameters */
        float *emb = malloc(sizeof(float) * N * C);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
                for (int c = 0; c < C; c++)
                    emb[(size_t)(b * T + t) * C + c] =
                        m.p.wte[(size_t)in[b * T + t] * C + c] + m.p.wpe[(size_t)t * C + c];
        LnlHiddenStats want0 = naive_stats(emb, N, C);
        CHECK_STATS(p.hidden[0], want0, 1e-6);
        free(emb);
        CHECK(p.grad_norm[0] == 0.0, "%s: grad_norm[0] = %g", preset, p.grad_norm[0]);

        double total = global_sumsq_by_roles(&m);
        for (int l = 1; l <= L; l++) {
            LnlHiddenStats want = naive_stats(m.stream[2 * l], N, C);
            CHECK_STATS(p.hidden[l], want, 1e-9);
            double g2 = layer_sumsq_by_roles(&m, l - 1);
            CHECK_CLOSE(p.grad_norm[l], sqrt(g2), 1e-12, 1e-9);
            CHECK(p.grad_norm[l] > 0, "%s: layer %d has no gradient", preset, l);
            total += g2;
        }
        /* blocks plus global tensors are every parameter: nothing counted twice or missed */
        double gn = lnl_model_grad_norm(&m);
        CHECK_CLOSE(sqrt(total), gn, 1e-12, 1e-9);
        if (m.cfg.final_norm) {
            /* the last entry is the stream before ln_f, not after */
            LnlHiddenStats after = naive_stats(m.lnf, N, C);
            CHECK(fabs(after.var_entry - p.hidden[L].var_entry) > 1e-6, "%s: last entry looks like ln_f's output",
                  preset);
        }
        lnl_probe_free(&p);
        lnl_model_free(&m);
    }
}

/* With gains 1 and biases 0, a normalized stream has per-token variance 1 (up to eps): Post-LN's
 * entries 1..L, and entry 0 when the embedding is normalized (so entry 0 is after ln_e). */
static void test_probe_normalized_entries(void) {
    const int B = 2, T = 5;
    LnlModel m;
    int32_t in[64];
    if (run_model(&m, "post", 1, 0, in, B, T)) return;
    LnlProbe p;
    lnl_probe_collect(&m, &p);
    for (int l = 0; l < p.n; l++) CHECK_CLOSE(p.hidden[l].var_entry, 1.0, 1e-2, 0);
    lnl_probe_free(&p);
    lnl_model_free(&m);
}

int main(void) {
    RUN_TEST(test_hidden_stats_random);
    RUN_TEST(test_hidden_stats_exact);
    RUN_TEST(test_probe_collect);
    RUN_TEST(test_probe_normalized_entries);
    TEST_MAIN_END();
}
