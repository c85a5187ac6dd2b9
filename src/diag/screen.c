/* The stability screen (screen.h): the spec's rules, the bound they give, and the measurements
 * under scaled weights and inputs, through the model's own forward, backward, block recompute
 * and the exact power iteration of sensitivity.h. No hand-written model math here. */
#include "screen.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/kernels.h"
#include "sensitivity.h"
#include "stats.h"

static const double weight_scales[LNL_SCREEN_NS] = LNL_SCREEN_WEIGHT_SCALES;
static const double input_scales[LNL_SCREEN_NA] = LNL_SCREEN_INPUT_SCALES;

const char *lnl_update_kind_name(LnlUpdateKind k) {
    switch (k) {
    case LNL_UPDATE_NORMALIZED: return "normalized";
    case LNL_UPDATE_RENORMALIZED: return "renormalized";
    case LNL_UPDATE_UNNORMALIZED: return "unnormalized";
    }
    return "?";
}

const char *lnl_bound_kind_name(LnlBoundKind k) {
    switch (k) {
    case LNL_BOUND_BOUNDED: return "bounded";
    case LNL_BOUND_LINEAR: return "linear";
    case LNL_BOUND_NONE: return "none";
    case LNL_BOUND_NOT_COVERED: return "not covered";
    }
    return "?";
}

const char *lnl_screen_trend_name(int v) { return v > 0 ? "grows" : v < 0 ? "shrinks" : "invariant"; }

/* ---- 1. the spec's rules (docs/SCREEN.md, "Rules") ---- */

static LnlUpdateKind update_kind(const LnlSubSpec *q) {
    if (q->post_norm) return LNL_UPDATE_RENORMALIZED;
    /* a gate is a learned scalar: the update scales with it like with a weight */
    if (q->out_norm && !q->gate) return LNL_UPDATE_NORMALIZED;
    return LNL_UPDATE_UNNORMALIZED;
}

/* The stream after this sub-layer no longer depends on the stream before it in magnitude:
 * a post-norm, or a residual that carries the pre-norm's output (res_from_normed with pre_norm). */
static int resets(const LnlSubSpec *q) { return q->post_norm || (q->res_from_normed && q->pre_norm); }

void lnl_screen_spec(const LnlConfig *c, LnlScreenSpec *s) {
    const int L = c->n_layer;
    memset(s, 0, sizeof *s);
    s->nsub = 2 * L;
    s->kind = lnl_calloc((size_t)s->nsub, 1);
    static const char *const sub_name[2] = {"attn", "mlp"};
    int first_unnorm = -1, first_skip = -1, layers_without_reset = 0;
    for (int l = 0; l < L; l++) {
        int reset = 0;
        for (int k = 0; k < 2; k++) {
            const LnlSubSpec *q = &c->sub[l][k];
            LnlUpdateKind kind = update_kind(q);
            s->kind[2 * l + k] = (uint8_t)kind;
            s->count[kind]++;
            if (kind == LNL_UPDATE_UNNORMALIZED && first_unnorm < 0) first_unnorm = 2 * l + k;
            /* a skip other than 1 without a post-norm multiplies the stream in every layer */
            if (!q->post_norm && (q->skip_learned || q->skip_scale != 1.0f) && first_skip < 0) first_skip = 2 * l + k;
            reset |= resets(q);
        }
        layers_without_reset += !reset;
    }
    if (first_unnorm >= 0) {
        const LnlSubSpec *q = &c->sub[first_unnorm / 2][first_unnorm % 2];
        s->bound = LNL_BOUND_NONE;
        snprintf(s->why, sizeof s->why, "layer %d %s adds an unnormalized update (%s)", first_unnorm / 2 + 1,
                 sub_name[first_unnorm % 2],
                 q->gate && q->out_norm ? "an out-norm scaled by a learned gate"
                 : q->branch_norm       ? "BranchNorm's branch is normalized only while its strength is 1"
                 : q->pre_norm          ? "F(N(h)): the norm bounds F's input, not its output"
                                        : "F(h) without any norm on it");
        snprintf(s->dt_effect, sizeof s->dt_effect, "dt scales the update, and with it the growth; no dt gives a "
                                                    "bound independent of the weights");
    } else if (first_skip >= 0) {
        s->bound = LNL_BOUND_NOT_COVERED;
        snprintf(s->why, sizeof s->why,
                 "layer %d %s multiplies the stream by a skip other than 1 without a post-norm (not covered)",
                 first_skip / 2 + 1, sub_name[first_skip % 2]);
        snprintf(s->dt_effect, sizeof s->dt_effect, "not covered");
    } else if (layers_without_reset == 0) {
        s->bound = LNL_BOUND_BOUNDED;
        snprintf(s->why, sizeof s->why, "every layer passes the stream through a norm (post-norm or a residual from "
                                        "the pre-norm): its magnitude is the norm's, whatever the depth");
        snprintf(s->dt_effect, sizeof s->dt_effect,
                 "the bound is the norm's gain whatever dt; dt < 1 shrinks the branch's share inside the norm");
    } else {
        s->bound = LNL_BOUND_LINEAR;
        snprintf(s->why, sizeof s->why,
                 "every update is normalized; %d of %d layers add to the stream without resetting it: magnitude at "
                 "most linear in depth, variance at most quadratic",
                 layers_without_reset, L);
        snprintf(s->dt_effect, sizeof s->dt_effect, "the slope of the bound is proportional to dt");
    }
}

void lnl_screen_spec_free(LnlScreenSpec *s) {
    free(s->kind);
    memset(s, 0, sizeof *s);
}

/* Bound on mean |N(x)| over a norm's C outputs: max|gain| + max|bias| (mean |x_hat| <= 1; DyT's
 * tanh and Derf's erf lie in [-1, 1] too; the one-plus gain counts as 1 + w). A
 * role that is absent (NULL slice) contributes 0 for the bias; a missing gain means a
 * parameter-free norm (gain 1). */
static double norm_out_bound(const LnlModel *m, float *gain_base, int gain_role, float *bias_base, int bias_role,
                             int l) {
    const int C = m->cfg.n_embd;
    const float *g = lnl_model_slice(m, gain_base, gain_role, l);
    const float *b = lnl_model_slice(m, bias_base, bias_role, l);
    const double one_plus = m->cfg.norm_gain == LNL_GAIN_ONE_PLUS ? 1.0 : 0.0; /* the gain is 1 + w */
    double gm = g ? 0 : 1, bm = 0;
    for (int i = 0; g && i < C; i++) gm = fmax(gm, fabs(one_plus + g[i]));
    for (int i = 0; b && i < C; i++) bm = fmax(bm, fabs(b[i]));
    return gm + bm;
}

static double max_abs(const float *x, int n) {
    double v = 0;
    for (int i = 0; x && i < n; i++) v = fmax(v, fabs(x[i]));
    return x ? v : 1.0;
}

void lnl_screen_bound(const LnlModel *m, double x0, double *B) {
    const LnlConfig *c = &m->cfg;
    const LnlParams *P = &m->p;
    const int L = c->n_layer, C = c->n_embd;
    const double lam = m->branch_lambda;
    double x = x0;
    B[0] = x0;
    for (int l = 0; l < L; l++) {
        double h = x;
        for (int k = 0; k < 2; k++) {
            const LnlSubSpec *q = &c->sub[l][k];
            const int A = k == LNL_ATTN;
#define NB(w, b) norm_out_bound(m, P->w, LNL_ROLE_##w, P->b, LNL_ROLE_##b, l)
            if (q->post_norm) {
                h = A ? NB(ln1pw, ln1pb) : NB(ln2pw, ln2pb);
                continue;
            }
            double res = q->res_from_normed && q->pre_norm ? q->in_scale * (A ? NB(ln1w, ln1b) : NB(ln2w, ln2b)) : h;
            double skip = fabs(q->skip_scale) *
                          (q->skip_learned ? max_abs(lnl_model_slice(m, A ? P->askip : P->mskip,
                                                                     A ? LNL_ROLE_askip : LNL_ROLE_mskip, l), C)
                                           : 1.0);
            double upd = INFINITY;
            if (q->out_norm) {
                double f = A ? NB(ln1ow, ln1ob) : NB(ln2ow, ln2ob);
                if (q->branch_norm) f = fabs(1.0 - lam) * f + fabs(lam); /* N0 has no parameters: bound 1 */
                double g = q->gate ? fabs(lnl_model_slice(m, P->gate, LNL_ROLE_gate, l)[0]) : 1.0;
                upd = fabs(q->dt) * g * f;
            }
#undef NB
            h = skip * res + upd + (q->b2t ? x : 0.0);
        }
        x = h;
        B[l + 1] = x;
    }
}

/* ---- 2-4. measurements ---- */

int32_t lnl_screen_token(long i, int V) {
    uint32_t h = (uint32_t)((uint64_t)i * 2654435761u);
    return (int32_t)(h % (uint32_t)V);
}

/* The block weight matrices the scale s multiplies, with a saved copy to scale from. */
static const int matrix_roles[] = {LNL_ROLE_qkvw, LNL_ROLE_attprojw, LNL_ROLE_fcw, LNL_ROLE_fcprojw};
#define NMAT (int)(sizeof matrix_roles / sizeof matrix_roles[0])

static float **role_ptr(LnlModel *m, int role) {
    switch (role) {
    case LNL_ROLE_qkvw: return &m->p.qkvw;
    case LNL_ROLE_attprojw: return &m->p.attprojw;
    case LNL_ROLE_fcw: return &m->p.fcw;
    default: return &m->p.fcprojw;
    }
}

typedef struct {
    float *saved[NMAT];
    float *mem;
} Saved;

static void save_matrices(LnlModel *m, Saved *s) {
    size_t tot = 0;
    for (int i = 0; i < NMAT; i++) tot += m->role_size[matrix_roles[i]];
    s->mem = lnl_malloc((tot ? tot : 1) * sizeof(float));
    float *p = s->mem;
    for (int i = 0; i < NMAT; i++) {
        size_t n = m->role_size[matrix_roles[i]];
        s->saved[i] = p;
        if (n) memcpy(p, *role_ptr(m, matrix_roles[i]), n * sizeof(float));
        p += n;
    }
}

static void set_scale(LnlModel *m, const Saved *s, double scale) {
    for (int i = 0; i < NMAT; i++) {
        size_t n = m->role_size[matrix_roles[i]];
        if (n) lnl_axpby(*role_ptr(m, matrix_roles[i]), (float)scale, s->saved[i], 0.0f, s->saved[i], n);
    }
}

static double ratio_of(double a, double b) { return b > 0 ? a / b : (a > 0 ? INFINITY : 1.0); }

static int trend(double r, double grow) { return r > grow ? 1 : r < 1.0 / grow ? -1 : 0; }

/* sigma of block b (1-based) with its input set to scale * x_in. */
static double block_sigma(LnlModel *m, LnlSensWork *w, int b, const float *x_in, double scale, const LnlScreenOpts *o) {
    const size_t n = (size_t)m->B * m->T * m->cfg.n_embd;
    lnl_axpby(m->stream[2 * (b - 1)], (float)scale, x_in, 0.0f, x_in, n);
    lnl_model_block_forward(m, b - 1);
    return lnl_block_sensitivity(m, w, b - 1, o->sens_iters, o->sens_seed).sigma;
}

static double max_over_blocks(const LnlScreenRun *r, const double *col, int stride) {
    double v = 0;
    for (int i = 0; i < r->nblocks; i++) v = fmax(v, col[i * stride]);
    return v;
}

static void measure_dt(LnlModel *m, const Saved *sv, const LnlScreenOpts *o, const int32_t *in, const int32_t *tg,
                       float *x_in, LnlSensWork *w, LnlScreenRun *r) {
    const int L = m->cfg.n_layer, C = m->cfg.n_embd, N = m->B * m->T;
    const size_t n = (size_t)N * C;
    r->nblocks = L > 1 ? 2 : 1;
    r->block[0] = 1;
    r->block[1] = L;
    for (int si = 0; si < LNL_SCREEN_NS; si++) {
        set_scale(m, sv, weight_scales[si]);
        double loss = lnl_model_forward(m, in, tg, m->B, m->T);
        lnl_model_zero_grad(m);
        lnl_model_backward(m);
        r->grad_ratio_s[si] = ratio_of(lnl_model_layer_grad_norm(m, 0), lnl_model_layer_grad_norm(m, L - 1));
        if (si == 0) {
            r->loss = loss;
            r->grad_ratio = r->grad_ratio_s[0];
            r->dx_ratio = ratio_of(m->dx_norm[1], m->dx_norm[L]);
        }
        double *mag = r->mean_abs[si] = lnl_malloc(sizeof(double) * (size_t)(L + 1));
        double *var = lnl_malloc(sizeof(double) * (size_t)(L + 1));
        for (int l = 0; l <= L; l++) {
            LnlHiddenStats h = lnl_hidden_stats(m->stream[2 * l], N, C);
            mag[l] = h.mean_abs;
            var[l] = h.var_entry;
        }
        r->growth[si] = lnl_growth(mag, var, L + 1);
        free(var);
        r->bound[si] = lnl_malloc(sizeof(double) * (size_t)(L + 1));
        lnl_screen_bound(m, mag[0], r->bound[si]);
        r->within_bound[si] = 1;
        for (int l = 0; l <= L; l++)
            if (!(mag[l] <= r->bound[si][l] * (1 + 1e-5))) r->within_bound[si] = 0;
        /* the probed blocks' inputs at s = 1 are the inputs of every sensitivity */
        if (si == 0)
            for (int i = 0; i < r->nblocks; i++) memcpy(x_in + i * n, m->stream[2 * (r->block[i] - 1)], n * sizeof(float));
        for (int i = 0; i < r->nblocks; i++) r->sigma_s[i][si] = block_sigma(m, w, r->block[i], x_in + i * n, 1.0, o);
    }
    set_scale(m, sv, 1.0);
    for (int ai = 0; ai < LNL_SCREEN_NA; ai++)
        for (int i = 0; i < r->nblocks; i++)
            r->sigma_a[i][ai] = input_scales[ai] == 1.0 ? r->sigma_s[i][0]
                                                         : block_sigma(m, w, r->block[i], x_in + i * n, input_scales[ai], o);
    r->fwd_ratio = ratio_of(r->mean_abs[LNL_SCREEN_NS - 1][L], r->mean_abs[0][L]);
    r->fwd_verdict = trend(r->fwd_ratio, LNL_SCREEN_FWD_GROW);
    r->sens_a_ratio = ratio_of(max_over_blocks(r, &r->sigma_a[0][LNL_SCREEN_NA - 1], LNL_SCREEN_NA),
                               max_over_blocks(r, &r->sigma_a[0][0], LNL_SCREEN_NA));
    r->sens_s_ratio = ratio_of(max_over_blocks(r, &r->sigma_s[0][LNL_SCREEN_NS - 1], LNL_SCREEN_NS),
                               max_over_blocks(r, &r->sigma_s[0][0], LNL_SCREEN_NS));
    r->sens_a_verdict = trend(r->sens_a_ratio, LNL_SCREEN_SENS_GROW);
    r->sens_s_verdict = trend(r->sens_s_ratio, LNL_SCREEN_SENS_GROW);
    r->vanishing = r->grad_ratio < LNL_SCREEN_VANISH;
}

int lnl_screen_measure(LnlModel *m, const LnlScreenOpts *o, LnlScreenMeasured *r, LnlErr *e) {
    memset(r, 0, sizeof *r);
    const int L = m->cfg.n_layer, V = m->cfg.vocab_size;
    if (o->T > m->cfg.n_positions)
        return lnl_err(e, "--seq: %d is longer than the model's n_positions %d", o->T, m->cfg.n_positions);
    if (lnl_model_alloc_acts(m, o->B, o->T, e)) return -1;
    const size_t bt = (size_t)o->B * o->T;
    int32_t *in = lnl_malloc(bt * sizeof(int32_t)), *tg = lnl_malloc(bt * sizeof(int32_t));
    /* row b = tokens [b T, b T + T] as in llm.c */
    for (size_t k = 0; k < bt; k++) {
        in[k] = lnl_screen_token((long)k, V);
        tg[k] = lnl_screen_token((long)k + 1, V);
    }
    const float dt = m->cfg.dt;
    const LnlConfig cfg = m->cfg; /* the run at dt 1 sets every sub-layer's dt; restored after */
    r->L = L;
    r->ndt = dt == 1.0f ? 1 : 2;
    Saved sv;
    save_matrices(m, &sv);
    LnlSensWork w;
    lnl_sens_work_init(&w, m);
    float *x_in = lnl_malloc(LNL_SCREEN_MAX_BLOCKS * w.n * sizeof(float));
    for (int d = 0; d < r->ndt; d++) {
        m->cfg = cfg;
        if (d == 0) lnl_config_set_dt(&m->cfg, 1.0f);
        r->run[d].dt = m->cfg.dt;
        measure_dt(m, &sv, o, in, tg, x_in, &w, &r->run[d]);
    }
    m->cfg = cfg;
    set_scale(m, &sv, 1.0);
    free(x_in);
    lnl_sens_work_free(&w);
    free(sv.mem);
    free(in);
    free(tg);
    return 0;
}

void lnl_screen_measured_free(LnlScreenMeasured *r) {
    for (int d = 0; d < 2; d++)
        for (int s = 0; s < LNL_SCREEN_NS; s++) {
            free(r->run[d].mean_abs[s]);
            free(r->run[d].bound[s]);
        }
    memset(r, 0, sizeof *r);
}
