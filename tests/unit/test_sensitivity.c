/* Local sensitivity (src/diag/sensitivity.h) and the tangent kernels (src/kernels/jvp.h):
 * - each tangent kernel against central differences of its forward kernel;
 * - the block tangent J v against central differences of the real block forward, and the block
 *   VJP against the tangent (u . J v == J^T u . v), for every preset and both norm kinds;
 * - the power-iteration estimate against the largest singular value of the dense Jacobian of a
 *   tiny model (N*C = 2*3*8 = 48), built column by column (tangents, cross-checked by finite
 *   differences) and decomposed by Jacobi rotations in double;
 * - that estimating touches no parameter gradient and no saved activation. */
#include "harness.h"

#include "common/perturb.h"
#include "diag/sensitivity.h"
#include "kernels/jvp.h"
#include "model/model.h"

static const char *presets[] = {"post", "pre",      "peri",  "b2t",        "mix",   "lns", "hybrid",
                                "hybrid*", "deepnorm", "admin", "branchnorm", "rezero", "olmo2", "gemma2"};
#define NPRESETS ((int)(sizeof presets / sizeof presets[0]))

static void fill_normal(float *x, size_t n, double sd, uint64_t seed) {
    LnlRng r;
    lnl_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = (float)(sd * lnl_rng_normal(&r));
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* ||a - b|| / ||b|| */
static double rel_diff(const float *a, const float *b, size_t n) {
    double d = 0, nb = 0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        nb += (double)b[i] * b[i];
    }
    return sqrt(d / (nb > 0 ? nb : 1e-300));
}

/* ---------------------------------------------------------------- kernels */

/* fd = (f(x + e v) - f(x - e v)) / 2e for an op given as a closure over x. */
typedef void (*OpFn)(float *out, const float *x, void *ctx);

static void central_fd(OpFn f, void *ctx, const float *x, const float *v, size_t nin, size_t nout, double eps,
                       float *fd) {
    float *xp = calloc(nin, sizeof(float)), *yp = calloc(nout, sizeof(float)), *ym = calloc(nout, sizeof(float));
    for (size_t i = 0; i < nin; i++) xp[i] = x[i] + (float)eps * v[i];
    f(yp, xp, ctx);
    for (size_t i = 0; i < nin; i++) xp[i] = x[i] - (float)eps * v[i];
    f(ym, xp, ctx);
    for (size_t i = 0; i < nout; i++) fd[i] = (float)(((double)yp[i] - ym[i]) / (2 * eps));
    free(xp);
    free(yp);
    free(ym);
}

typedef struct {
    int N, C, G, rep;
    LnlNormKind kind;
    const float *w, *b;
    float scale;
} NormCtx;

static void norm_op(float *out, const float *x, void *ctx) {
    NormCtx *c = ctx;
    float mean[64], rstd[64];
    lnl_norm_forward(out, mean, rstd, x, c->w, c->b, c->N, c->C, c->G, c->rep, c->kind, 1e-5f, c->scale);
}

typedef struct {
    int N, C, G, rep;
    LnlNormKind kind;
    const float *w, *b, *a, *s;
    float scale;
} DynCtx;

static void dyn_op(float *out, const float *x, void *ctx) {
    DynCtx *c = ctx;
    lnl_dyn_norm_forward(out, x, c->w, c->b, c->a, c->s, c->N, c->C, c->G, c->rep, c->kind, c->scale);
}

typedef struct {
    int B, T, C, NH;
    float *att;
    float cap;
} AttCtx;

static void att_op(float *out, const float *x, void *ctx) {
    AttCtx *c = ctx;
    lnl_attention_forward(out, c->att, NULL, x, c->B, c->T, c->C, c->NH, c->cap);
}

static void gelu_op(float *out, const float *x, void *ctx) { lnl_gelu_forward(out, x, (size_t)(*(int *)ctx)); }

static void test_jvp_kernels_fd(void) {
    /* norm: 3 weight groups of per-head rows (the qkv_norm shape), both kinds */
    for (int kind = 0; kind < 2; kind++) {
        enum { N = 12, C = 6 };
        float x[N * C], v[N * C], w[3 * C], b[3 * C], y[N * C], mean[N], rstd[N], jv[N * C], fd[N * C];
        fill_normal(x, N * C, 1.0, 1);
        for (int i = 0; i < N * C; i++) x[i] += (float)(i % C) * 0.3f;
        fill_normal(v, N * C, 1.0, 2);
        fill_normal(w, 3 * C, 0.5, 3);
        fill_normal(b, 3 * C, 0.5, 4);
        NormCtx nc = {N, C, 3, 2, (LnlNormKind)kind, w, kind == LNL_NORM_LAYERNORM ? b : NULL, 0.7f};
        lnl_norm_forward(y, mean, rstd, x, w, nc.b, N, C, 3, 2, nc.kind, 1e-5f, 0.7f);
        lnl_norm_jvp(jv, v, x, w, mean, rstd, N, C, 3, 2, nc.kind, 0.7f);
        central_fd(norm_op, &nc, x, v, N * C, N * C, 1e-3, fd);
        double e = rel_diff(fd, jv, N * C);
        CHECK(e < 2e-3, "norm kind %d: ||fd - jvp|| / ||jvp|| = %g", kind, e);
    }
    /* the elementwise norms, with their scalars a (and s), 3 weight groups */
    for (int kind = LNL_NORM_DYT; kind <= LNL_NORM_DERF; kind++) {
        enum { N = 12, C = 6 };
        float x[N * C], v[N * C], w[3 * C], b[3 * C], y[N * C], jv[N * C], fd[N * C];
        const float a[3] = {0.8f, 0.3f, 1.2f}, s[3] = {0.1f, -0.4f, 0.2f};
        fill_normal(x, N * C, 1.5, 11);
        fill_normal(v, N * C, 1.0, 12);
        fill_normal(w, 3 * C, 0.5, 13);
        fill_normal(b, 3 * C, 0.5, 14);
        DynCtx dc = {N, C, 3, 2, (LnlNormKind)kind, w, b, a, kind == LNL_NORM_DERF ? s : NULL, 0.7f};
        dyn_op(y, x, &dc);
        lnl_dyn_norm_jvp(jv, v, x, w, a, dc.s, N, C, 3, 2, dc.kind, 0.7f);
        central_fd(dyn_op, &dc, x, v, N * C, N * C, 1e-3, fd);
        double e = rel_diff(fd, jv, N * C);
        CHECK(e < 2e-3, "%s: ||fd - jvp|| / ||jvp|| = %g", lnl_norm_name((LnlNormKind)kind), e);
    }
    for (int ci = 0; ci < 2; ci++) { /* without and with a softcap that bends these scores */
        enum { B = 2, T = 5, C = 8, NH = 2 };
        const float cap = ci ? 0.8f : 0.0f;
        float qkv[B * T * 3 * C], v[B * T * 3 * C], att[B * NH * T * T], y[B * T * C], jv[B * T * C], fd[B * T * C];
        fill_normal(qkv, sizeof qkv / sizeof(float), 1.0, 5);
        fill_normal(v, sizeof v / sizeof(float), 1.0, 6);
        lnl_attention_forward(y, att, NULL, qkv, B, T, C, NH, cap);
        lnl_attention_jvp(jv, v, qkv, att, B, T, C, NH, cap);
        float att2[B * NH * T * T];
        AttCtx ac = {B, T, C, NH, att2, cap};
        central_fd(att_op, &ac, qkv, v, B * T * 3 * C, B * T * C, 1e-3, fd);
        double e = rel_diff(fd, jv, B * T * C);
        CHECK(e < 2e-3, "attention cap %g: ||fd - jvp|| / ||jvp|| = %g", (double)cap, e);
    }
    {
        enum { n = 50 };
        float x[n], v[n], jv[n], fd[n];
        int nn = n;
        fill_normal(x, n, 2.0, 7);
        fill_normal(v, n, 1.0, 8);
        lnl_gelu_jvp(jv, x, v, n);
        central_fd(gelu_op, &nn, x, v, n, n, 1e-3, fd);
        double e = rel_diff(fd, jv, n);
        CHECK(e < 2e-3, "gelu: ||fd - jvp|| / ||jvp|| = %g", e);
    }
}

/* ---------------------------------------------------------------- models */

/* A small model of `preset` after one forward with targets (and a backward, so gradients are
 * nonzero), parameters moved off their trivial init so every path of the block acts; with an
 * attention softcap and every layer's qk_norm (LnlQkNorm) as given. */
static int make_model_attn(LnlModel *m, const char *preset, LnlNormKind kind, int B, int T, int C, int L, float softcap,
                           int qk_norm) {
    LnlConfig *c = malloc(sizeof *c);
    lnl_config_default(c);
    c->n_layer = L;
    c->n_head = 2;
    c->n_embd = C;
    c->n_positions = 8;
    c->vocab_size = 13;
    c->init_std = 0.3f;
    lnl_config_set_norm(c, kind); /* DyT and Derf: their sources' a */
    LnlErr e;
    int r = lnl_config_preset(c, preset, &e);
    if (kind == LNL_NORM_DERF) c->norm_gain = LNL_GAIN_ONE_PLUS; /* the tangent through the gain 1 + w */
    if (kind == LNL_NORM_RMSNORM) { /* the residual step scales the branch's tangent too; one per sub-layer */
        lnl_config_set_dt(c, 0.7f);
        for (int l = 0; l < L; l++) c->sub[l][LNL_MLP].dt = 0.4f;
    }
    CHECK(r == 0, "preset %s: %s", preset, e.msg);
    c->attn_softcap = softcap;
    lnl_config_set_qk_norm(c, qk_norm);
    if (!r) r = lnl_model_create(m, c, &e);
    free(c);
    CHECK(r == 0, "%s: %s", preset, e.msg);
    if (r) return -1;
    lnl_model_init_weights(m, 11);
    lnl_test_perturb(m, 12);
    m->branch_lambda = 0.4f; /* BranchNorm half way: both of its terms act */
    CHECK(lnl_model_alloc_acts(m, B, T, &e) == 0, "%s", e.msg);
    int32_t in[64], tg[64];
    LnlRng rng;
    lnl_rng_seed(&rng, 13);
    for (int i = 0; i < B * T; i++) {
        in[i] = (int32_t)lnl_rng_below(&rng, 13);
        tg[i] = (int32_t)lnl_rng_below(&rng, 13);
    }
    lnl_model_zero_grad(m);
    lnl_model_forward(m, in, tg, B, T);
    lnl_model_backward(m);
    return 0;
}

static int make_model(LnlModel *m, const char *preset, LnlNormKind kind, int B, int T, int C, int L) {
    return make_model_attn(m, preset, kind, B, T, C, L, 0.0f, LNL_QK_NORM_OFF);
}

/* Central difference of block l's output along v, through lnl_model_block_forward; the block's
 * activations are restored afterwards. */
static void block_fd(LnlModel *m, int l, const float *v, double eps, float *fd) {
    const size_t n = (size_t)m->B * m->T * m->cfg.n_embd;
    float *x0 = malloc(n * sizeof(float)), *yp = malloc(n * sizeof(float));
    memcpy(x0, m->stream[2 * l], n * sizeof(float));
    for (size_t i = 0; i < n; i++) m->stream[2 * l][i] = x0[i] + (float)eps * v[i];
    lnl_model_block_forward(m, l);
    memcpy(yp, m->stream[2 * l + 2], n * sizeof(float));
    for (size_t i = 0; i < n; i++) m->stream[2 * l][i] = x0[i] - (float)eps * v[i];
    lnl_model_block_forward(m, l);
    for (size_t i = 0; i < n; i++) fd[i] = (float)(((double)yp[i] - m->stream[2 * l + 2][i]) / (2 * eps));
    memcpy(m->stream[2 * l], x0, n * sizeof(float));
    lnl_model_block_forward(m, l);
    free(x0);
    free(yp);
}

/* Every block's tangent of model m against central differences, and its VJP against the tangent. */
static void check_block_jvp_vjp(LnlModel *m, const char *what) {
    const int L = m->cfg.n_layer;
    const size_t n = (size_t)m->B * m->T * m->cfg.n_embd;
    float *v = malloc(n * sizeof(float)), *u = malloc(n * sizeof(float)), *jv = malloc(n * sizeof(float)),
          *jtu = malloc(n * sizeof(float)), *fd = malloc(n * sizeof(float));
    LnlSensWork w;
    lnl_sens_work_init(&w, m);
    for (int l = 0; l < L; l++) {
        fill_normal(v, n, 1.0, 100 + (uint64_t)l);
        fill_normal(u, n, 1.0, 200 + (uint64_t)l);
        lnl_block_jvp(m, &w, l, v, jv);
        block_fd(m, l, v, 1e-3, fd);
        double e = rel_diff(fd, jv, n);
        CHECK(e < 2e-3, "%s layer %d: ||fd - Jv|| / ||Jv|| = %g", what, l, e);
        lnl_model_block_vjp(m, l, u, jtu);
        double a = dot(u, jv, n), b = dot(jtu, v, n);
        double scale = sqrt(dot(u, u, n) * dot(jv, jv, n)) + 1e-30;
        CHECK(fabs(a - b) <= 1e-5 * scale, "%s layer %d: u.Jv = %.9g, JTu.v = %.9g", what, l, a, b);
    }
    lnl_sens_work_free(&w);
    free(v);
    free(u);
    free(jv);
    free(jtu);
    free(fd);
}

static void test_block_jvp_fd_and_vjp_all_presets(void) {
    const int B = 2, T = 4, C = 8, L = 3;
    for (int p = 0; p < NPRESETS; p++)
        for (int kind = 0; kind < 4; kind++) { /* LayerNorm, RMSNorm, DyT, Derf */
            if (lnl_norm_is_dynamic((LnlNormKind)kind) && !strcmp(presets[p], "branchnorm")) continue;
            LnlModel m;
            if (make_model(&m, presets[p], (LnlNormKind)kind, B, T, C, L)) continue;
            char what[64];
            snprintf(what, sizeof what, "%s/%s", presets[p], lnl_norm_name((LnlNormKind)kind));
            check_block_jvp_vjp(&m, what);
            lnl_model_free(&m);
        }
}

/* The attention softcap and the QK-norms (per head, over C) in the tangent, alone and together,
 * under every norm kind; the cap low enough to bend the scores. */
static void test_block_jvp_attn_softcap_qk_norm(void) {
    const struct {
        const char *preset;
        float cap;
        int qk;
    } cases[] = {{"pre", 0.5f, LNL_QK_NORM_OFF},  {"pre", 0.0f, LNL_QK_NORM_HEAD}, {"pre", 0.0f, LNL_QK_NORM_FULL},
                 {"peri", 0.5f, LNL_QK_NORM_HEAD}, {"peri", 0.5f, LNL_QK_NORM_FULL}, {"post", 0.5f, LNL_QK_NORM_FULL}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int kind = 0; kind < 4; kind++) { /* every norm kind: the q/k norms take it too */
            LnlModel m;
            if (make_model_attn(&m, cases[i].preset, (LnlNormKind)kind, 2, 4, 8, 3, cases[i].cap, cases[i].qk))
                continue;
            char what[80];
            snprintf(what, sizeof what, "%s/%s softcap %g qk_norm %d", cases[i].preset, lnl_norm_name((LnlNormKind)kind),
                     (double)cases[i].cap, cases[i].qk);
            check_block_jvp_vjp(&m, what);
            lnl_model_free(&m);
        }
}

/* Eigenvalues of the symmetric n x n matrix a (destroyed) by cyclic Jacobi rotations. */
static void jacobi_eigen(double *a, int n, double *eig) {
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0;
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++) off += a[i * n + j] * a[i * n + j];
        if (off < 1e-30) break;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                double apq = a[p * n + q];
                if (fabs(apq) < 1e-300) continue;
                double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
                double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
                double cs = 1 / sqrt(t * t + 1), sn = t * cs;
                for (int k = 0; k < n; k++) {
                    double akp = a[k * n + p], akq = a[k * n + q];
                    a[k * n + p] = cs * akp - sn * akq;
                    a[k * n + q] = sn * akp + cs * akq;
                }
                for (int k = 0; k < n; k++) {
                    double apk = a[p * n + k], aqk = a[q * n + k];
                    a[p * n + k] = cs * apk - sn * aqk;
                    a[q * n + k] = sn * apk + cs * aqk;
                }
            }
    }
    for (int i = 0; i < n; i++) eig[i] = a[i * n + i];
}

static void test_sensitivity_dense(void) {
    const int B = 2, T = 3, C = 8, L = 2, n = B * T * C; /* 48 */
    const char *which[] = {"pre", "post", "peri", "b2t", "hybrid", "rezero"};
    float *e = calloc((size_t)n, sizeof(float)), *col = malloc(sizeof(float) * n), *fd = malloc(sizeof(float) * n);
    double *J = malloc(sizeof(double) * n * n), *JtJ = malloc(sizeof(double) * n * n), *eig = malloc(sizeof(double) * n);
    for (size_t p = 0; p < sizeof which / sizeof which[0]; p++) {
        LnlModel m;
        if (make_model(&m, which[p], LNL_NORM_LAYERNORM, B, T, C, L)) continue;
        LnlSensWork w;
        lnl_sens_work_init(&w, &m);
        for (int l = 0; l < L; l++) {
            double worst_fd = 0;
            for (int j = 0; j < n; j++) {
                memset(e, 0, sizeof(float) * n);
                e[j] = 1.0f;
                lnl_block_jvp(&m, &w, l, e, col);
                block_fd(&m, l, e, 1e-3, fd);
                double d = rel_diff(fd, col, (size_t)n);
                if (d > worst_fd) worst_fd = d;
                for (int i = 0; i < n; i++) J[i * n + j] = col[i];
            }
            CHECK(worst_fd < 5e-3, "%s layer %d: dense J columns differ from FD by %g", which[p], l, worst_fd);
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) {
                    double s = 0;
                    for (int k = 0; k < n; k++) s += J[k * n + i] * J[k * n + j];
                    JtJ[i * n + j] = s;
                }
            jacobi_eigen(JtJ, n, eig);
            double lmax = 0, l2 = 0;
            for (int i = 0; i < n; i++)
                if (eig[i] > lmax) {
                    l2 = lmax;
                    lmax = eig[i];
                } else if (eig[i] > l2) l2 = eig[i];
            double smax = sqrt(lmax);
            LnlSensResult r = lnl_block_sensitivity(&m, &w, l, 300, 7);
            /* power iteration from below: close to sigma_max and never above it (up to rounding) */
            CHECK(fabs(r.sigma - smax) <= 1e-3 * smax, "%s layer %d: power iteration %.7g, dense sigma_max %.7g "
                  "(second %.7g)", which[p], l, r.sigma, smax, sqrt(l2 > 0 ? l2 : 0));
            CHECK(r.sigma <= smax * (1 + 1e-5), "%s layer %d: estimate %.9g above sigma_max %.9g", which[p], l,
                  r.sigma, smax);
            CHECK(smax > 0.05, "%s layer %d: sigma_max %g too small to test anything", which[p], l, smax);
        }
        lnl_sens_work_free(&w);
        lnl_model_free(&m);
    }
    free(e);
    free(col);
    free(fd);
    free(J);
    free(JtJ);
    free(eig);
}

/* sigma of a block that is the identity plus nothing: ReZero with gate 0 has J = I exactly. */
static void test_sensitivity_identity(void) {
    LnlModel m;
    if (make_model(&m, "rezero", LNL_NORM_LAYERNORM, 2, 4, 8, 2)) return;
    for (int l = 0; l < m.cfg.n_layer; l++) lnl_model_slice(&m, m.p.gate, LNL_ROLE_gate, l)[0] = 0.0f;
    LnlSensWork w;
    lnl_sens_work_init(&w, &m);
    for (int l = 0; l < m.cfg.n_layer; l++) {
        LnlSensResult r = lnl_block_sensitivity(&m, &w, l, 5, 1);
        CHECK_CLOSE(r.sigma, 1.0, 1e-6, 0);
    }
    lnl_sens_work_free(&w);
    lnl_model_free(&m);
}

/* Estimating sigma leaves the gradients and every saved activation as they were, and is
 * repeatable for a seed. */
static void test_sensitivity_side_effects(void) {
    LnlModel m;
    if (make_model(&m, "b2t", LNL_NORM_LAYERNORM, 2, 4, 8, 3)) return;
    float *g0 = malloc(m.num_alloc * sizeof(float)), *a0 = malloc(m.acts_floats * sizeof(float));
    memcpy(g0, m.grads_mem, m.num_alloc * sizeof(float));
    memcpy(a0, m.acts_mem, m.acts_floats * sizeof(float));
    LnlSensWork w;
    lnl_sens_work_init(&w, &m);
    double s1[3], s2[3];
    for (int l = 0; l < 3; l++) s1[l] = lnl_block_sensitivity(&m, &w, l, 10, 5).sigma;
    for (int l = 0; l < 3; l++) s2[l] = lnl_block_sensitivity(&m, &w, l, 10, 5).sigma;
    CHECK(memcmp(g0, m.grads_mem, m.num_alloc * sizeof(float)) == 0, "parameter gradients changed");
    CHECK(memcmp(a0, m.acts_mem, m.acts_floats * sizeof(float)) == 0, "saved activations changed");
    for (int l = 0; l < 3; l++) CHECK(s1[l] == s2[l], "layer %d: %.9g then %.9g", l, s1[l], s2[l]);
    lnl_sens_work_free(&w);
    lnl_model_free(&m);
    free(g0);
    free(a0);
}

int main(void) {
    RUN_TEST(test_jvp_kernels_fd);
    RUN_TEST(test_block_jvp_fd_and_vjp_all_presets);
    RUN_TEST(test_block_jvp_attn_softcap_qk_norm);
    RUN_TEST(test_sensitivity_dense);
    RUN_TEST(test_sensitivity_identity);
    RUN_TEST(test_sensitivity_side_effects);
    TEST_MAIN_END();
}
