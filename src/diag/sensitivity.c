/* Local sensitivity by power iteration with exact JVP / VJP through one block (sensitivity.h).
 * The tangent pass mirrors the block equations of spec.h step by step; test_sensitivity.c checks
 * it against central differences of the real forward for every preset, and against the backward
 * by u . (J v) == (J^T u) . v. */
#include "sensitivity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/jvp.h"
#include "../kernels/kernels.h"

void lnl_sens_work_init(LnlSensWork *w, const LnlModel *m) {
    const size_t n = (size_t)m->B * (size_t)m->T * (size_t)m->cfg.n_embd;
    memset(w, 0, sizeof *w);
    w->n = n;
    /* 9 buffers of n, two of 3n, two of 4n */
    w->mem = lnl_calloc(9 * n + 6 * n + 8 * n, sizeof(float));
    float *p = w->mem;
    float **one[] = {&w->v, &w->jv, &w->jtjv, &w->t_mid, &w->t_u, &w->t_f, &w->t_f2, &w->t_r, &w->t_atty};
    for (size_t i = 0; i < sizeof one / sizeof one[0]; i++, p += n) *one[i] = p;
    w->t_qkv = p, p += 3 * n;
    w->t_qkvn = p, p += 3 * n;
    w->t_fch = p, p += 4 * n;
    w->t_gelu = p;
}

void lnl_sens_work_free(LnlSensWork *w) {
    free(w->mem);
    memset(w, 0, sizeof *w);
}

/* The weights one sub-layer's tangent needs (biases have none). */
typedef struct {
    const float *prew, *outw, *postw, *skip, *gate;
    const float *qkvw, *qkvnw, *projw, *fcw;
} SubW;

static SubW sub_weights(const LnlModel *m, int l, int sidx) {
    const LnlParams *P = &m->p;
#define SL(f) lnl_model_slice(m, P->f, LNL_ROLE_##f, l)
    SubW s;
    s.gate = SL(gate);
    if (sidx == LNL_ATTN) {
        s.prew = SL(ln1w), s.outw = SL(ln1ow), s.postw = SL(ln1pw), s.skip = SL(askip);
        s.qkvw = SL(qkvw), s.qkvnw = SL(qkvnw), s.projw = SL(attprojw), s.fcw = NULL;
    } else {
        s.prew = SL(ln2w), s.outw = SL(ln2ow), s.postw = SL(ln2pw), s.skip = SL(mskip);
        s.qkvw = NULL, s.qkvnw = NULL, s.projw = SL(fcprojw), s.fcw = SL(fcw);
    }
#undef SL
    return s;
}

/* Tangent of sub-layer k = 2l + sidx: dh is the tangent of its input stream[k], dx that of the
 * block input (for b2t); writes the tangent of stream[k+1] into out. */
static void sublayer_jvp(const LnlModel *m, LnlSensWork *w, int l, int sidx, const float *dh, const float *dx,
                         float *out) {
    const LnlConfig *c = &m->cfg;
    const LnlSubSpec *q = &c->sub[l][sidx];
    const int k = 2 * l + sidx, C = c->n_embd, NH = c->n_head, HS = C / NH, B = m->B, T = m->T, N = B * T;
    const size_t n = (size_t)N * C;
    const LnlNormKind kind = c->norm;
    const LnlSubActs *s = &m->sub[k];
    const SubW W = sub_weights(m, l, sidx);
    const float *h = m->stream[k];

    /* u = N_pre(h) * in_scale */
    const float *du = dh;
    if (q->pre_norm) {
        lnl_norm_jvp(w->t_u, dh, h, W.prew, s->u_mean, s->u_rstd, N, C, 1, 1, kind, q->in_scale);
        du = w->t_u;
    }

    /* f = F(u) */
    if (sidx == LNL_ATTN) {
        lnl_matmul_jvp(w->t_qkv, du, W.qkvw, N, C, 3 * C);
        const float *dqkv = w->t_qkv, *qkv = s->qkv;
        if (q->qkv_norm) {
            lnl_norm_jvp(w->t_qkvn, w->t_qkv, s->qkv, W.qkvnw, s->qkvn_mean, s->qkvn_rstd, N * 3 * NH, HS, 3, NH,
                         kind, 1.0f);
            dqkv = w->t_qkvn;
            qkv = s->qkvn;
        }
        lnl_attention_jvp(w->t_atty, dqkv, qkv, s->att, B, T, C, NH);
        lnl_matmul_jvp(w->t_f, w->t_atty, W.projw, N, C, C);
    } else {
        lnl_matmul_jvp(w->t_fch, du, W.fcw, N, C, 4 * C);
        lnl_gelu_jvp(w->t_gelu, s->fch, w->t_fch, n * 4);
        lnl_matmul_jvp(w->t_f, w->t_gelu, W.projw, N, 4 * C, C);
    }
    float *df = w->t_f, *df2 = w->t_f2;
    if (q->out_norm) {
        lnl_norm_jvp(df2, df, s->fproj, W.outw, s->fo_mean, s->fo_rstd, N, C, 1, 1, kind, 1.0f);
        float *t = df; df = df2; df2 = t;
    }
    if (q->branch_norm) {
        /* branch_mix = (1 - lambda) fin + lambda N0(fin), N0 without parameters */
        const float *fin = s->fo ? s->fo : s->fproj;
        lnl_norm_jvp(df2, df, fin, NULL, s->branch_n0_mean, s->branch_n0_rstd, N, C, 1, 1, kind, 1.0f);
        lnl_axpby(df, 1.0f - m->branch_lambda, df, m->branch_lambda, df2, n);
    }

    /* r = skip * res + dt * g * f [+ x] */
    const float *dres = q->res_from_normed ? du : dh;
    float *dr = q->post_norm ? w->t_r : out;
    if (q->skip_learned) {
        lnl_chanscale_forward(dr, dres, W.skip, N, C);
        if (q->skip_scale != 1.0f) lnl_axpby(dr, q->skip_scale, dr, 0.0f, dr, n);
    } else {
        lnl_axpby(dr, q->skip_scale, dres, 0.0f, dres, n);
    }
    lnl_axpy(dr, c->dt * (q->gate ? W.gate[0] : 1.0f), df, n);
    if (q->b2t) lnl_axpy(dr, 1.0f, dx, n);
    if (q->post_norm) lnl_norm_jvp(out, dr, s->r, W.postw, s->post_mean, s->post_rstd, N, C, 1, 1, kind, 1.0f);
}

void lnl_block_jvp(const LnlModel *m, LnlSensWork *w, int l, const float *v, float *out) {
    sublayer_jvp(m, w, l, LNL_ATTN, v, v, w->t_mid);
    sublayer_jvp(m, w, l, LNL_MLP, w->t_mid, v, out);
}

static double norm2(const float *x, size_t n) { return sqrt(lnl_sumsq(x, n)); }

static void scale_to_unit(float *x, size_t n, double nrm) {
    if (nrm > 0) lnl_axpby(x, (float)(1.0 / nrm), x, 0.0f, x, n);
}

LnlSensResult lnl_block_sensitivity(LnlModel *m, LnlSensWork *w, int l, int iters, uint64_t seed) {
    const size_t n = w->n;
    LnlRng rng;
    lnl_rng_seed(&rng, seed ^ (0x9E3779B97F4A7C15ULL * (uint64_t)(l + 1)));
    for (size_t i = 0; i < n; i++) w->v[i] = (float)lnl_rng_normal(&rng);
    scale_to_unit(w->v, n, norm2(w->v, n));
    LnlSensResult r = {0.0, 0.0};
    double prev = NAN;
    for (int it = 0; it <= iters; it++) {
        lnl_block_jvp(m, w, l, w->v, w->jv);
        r.sigma = norm2(w->jv, n);
        if (it == iters) break;
        prev = r.sigma;
        lnl_model_block_vjp(m, l, w->jv, w->jtjv);
        double z = norm2(w->jtjv, n);
        if (!(z > 0) || !isfinite(z)) break; /* J v = 0 (sigma 0) or a non-finite model */
        memcpy(w->v, w->jtjv, n * sizeof(float));
        scale_to_unit(w->v, n, z);
    }
    r.rel_change = r.sigma > 0 && isfinite(prev) ? fabs(r.sigma - prev) / r.sigma : 0.0;
    return r;
}
