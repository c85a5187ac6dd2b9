/* One sub-layer of the block (spec.h): its weights' view, then forward, backward and tangent side
 * by side, each following the equations of spec.h in the same order:
 *   u = N_pre(h) * in_scale;  f = F(u) (q, k, v norms and the score cap inside);  f = N_out(f);
 *   f = BranchNorm(f);
 *   r = skip * res + dt * g * f [+ x];  h' = N_post(r). */
#include "block.h"

#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "../kernels/jvp.h"
#include "../kernels/kernels.h"

/* ---------------------------------------------------------------- the view */

/* Where each role sits in a sub-layer, read from the tensor table's `place` column. */
typedef struct {
    int sub;     /* LNL_ATTN, LNL_MLP, LNL_SUB_BOTH, or -1 for roles outside the blocks */
    size_t slot; /* offsetof(LnlSubView, field) */
} RolePlace;

#define LNL_SUB(s, field) {(s), offsetof(LnlSubView, field)}
#define LNL_GLOBAL {-1, 0}
static const RolePlace role_place[LNL_NUM_ROLES] = {
#define X(f, n, pl, r, cc, i, d, t, p, place) place,
    LNL_PARAMS(X)
#undef X
};
#undef LNL_SUB
#undef LNL_GLOBAL

LnlSubView lnl_sub_view(const LnlModel *m, const LnlParams *P, int l, int sidx) {
    LnlSubView v;
    memset(&v, 0, sizeof v);
    float *const *base = (float *const *)P;
    for (int role = 0; role < LNL_NUM_ROLES; role++) {
        const RolePlace *rp = &role_place[role];
        if (rp->sub != sidx && rp->sub != LNL_SUB_BOTH) continue;
        *(float **)((char *)&v + rp->slot) = lnl_model_slice(m, base[role], role, l);
    }
    if (!m->cfg.sub[l][sidx].bias) v.in_b = v.proj_b = NULL;
    return v;
}

/* ---------------------------------------------------------------- norms */

/* The gain the kernel multiplies by: w, or 1 + w (into the model's scratch) for the one-plus gain. */
static const float *gain_of(const LnlModel *m, const float *w, size_t n) {
    if (!w || m->cfg.norm_gain != LNL_GAIN_ONE_PLUS) return w;
    for (size_t i = 0; i < n; i++) m->gain_eff[i] = 1.0f + w[i];
    return m->gain_eff;
}

void lnl_site_norm_forward(const LnlModel *m, float *out, float *mean, float *rstd, const float *x, LnlNormW p, int N,
                           int C, int G, int rep, float scale) {
    const LnlConfig *c = &m->cfg;
    const float *w = gain_of(m, p.w, (size_t)G * (size_t)C);
    if (lnl_norm_is_dynamic(c->norm)) lnl_dyn_norm_forward(out, x, w, p.b, p.a, p.s, N, C, G, rep, c->norm, scale);
    else lnl_norm_forward(out, mean, rstd, x, w, p.b, N, C, G, rep, c->norm, c->eps, scale);
}

void lnl_site_norm_backward(const LnlModel *m, float *dx, LnlNormG g, const float *dout, const float *x, LnlNormW p,
                            const float *mean, const float *rstd, int N, int C, int G, int rep, float scale) {
    const LnlConfig *c = &m->cfg;
    const float *w = gain_of(m, p.w, (size_t)G * (size_t)C);
    if (lnl_norm_is_dynamic(c->norm))
        lnl_dyn_norm_backward(dx, g.w, g.b, g.a, g.s, dout, x, w, p.a, p.s, N, C, G, rep, c->norm, scale);
    else lnl_norm_backward(dx, g.w, g.b, dout, x, w, mean, rstd, N, C, G, rep, c->norm, scale);
}

void lnl_site_norm_tangent(const LnlModel *m, float *dout, const float *dx, const float *x, LnlNormW p,
                           const float *mean, const float *rstd, int N, int C, int G, int rep, float scale) {
    const LnlConfig *c = &m->cfg;
    const float *w = gain_of(m, p.w, (size_t)G * (size_t)C);
    if (lnl_norm_is_dynamic(c->norm)) lnl_dyn_norm_jvp(dout, dx, x, w, p.a, p.s, N, C, G, rep, c->norm, scale);
    else lnl_norm_jvp(dout, dx, x, w, mean, rstd, N, C, G, rep, c->norm, scale);
}

/* A sub-layer's norm at a site, from its view (W) or its gradients' view (G). */
#define NORM_W(V, site) ((LnlNormW){V.site##_w, V.site##_b, V.site##_a, V.site##_s})
#define NORM_G(V, site) ((LnlNormG){V.site##_w, V.site##_b, V.site##_a, V.site##_s})

/* The branch value f that enters the residual sum (after any out-norm and BranchNorm). */
const float *lnl_sub_branch_out(const LnlSubActs *s) {
    if (s->branch_mix) return s->branch_mix;
    if (s->fo) return s->fo;
    return s->fproj;
}

/* The input of BranchNorm (F's output after any out-norm). */
static const float *branch_in(const LnlSubActs *s) { return s->fo ? s->fo : s->fproj; }

/* dst row r = the first n floats of src row r, for N rows of strides ldd and lds. */
static void copy_cols(float *dst, size_t ldd, const float *src, size_t lds, int N, size_t n) {
    for (int r = 0; r < N; r++) memcpy(dst + (size_t)r * ldd, src + (size_t)r * lds, n * sizeof(float));
}

/* qk_norm's norm call on the (N, 2C) q|k buffer (q and k are the first 2C columns of qkv,
 * gathered): full, 2N rows of C (q_n, k_n, ...), gain set 0 for q and 1 for k; per head, 2N*NH
 * rows of HS, NH q heads then NH k heads per token. */
typedef struct {
    int rows, width, rep;
} QkRows;
static QkRows qk_rows(int kind, int N, int C, int NH) {
    if (kind == LNL_QK_NORM_FULL) return (QkRows){2 * N, C, 1};
    return (QkRows){2 * N * NH, C / NH, NH};
}

/* ---------------------------------------------------------------- forward */

/* The decode mode's attention step: caches k, v of each stream's T new rows at pos..pos+T-1,
 * then attends from each over that stream's positions 0..its own (the kernel of a single step,
 * so a prefill's attention is the token-by-token one). */
static void attend_cached(LnlModel *m, int l, const float *qkv /* (B*T, 3C) */, float *out /* (B*T, C) */, int B,
                          int T, int pos) {
    const float softcap = m->cfg.attn_softcap;
    LnlDecode *d = &m->dec;
    const size_t C = (size_t)m->cfg.n_embd;
    for (int b = 0; b < B; b++) {
        const size_t at = ((size_t)l * (size_t)d->B + (size_t)b) * (size_t)d->T * C;
        float *kc = d->kcache + at, *vc = d->vcache + at;
        const float *rows = qkv + (size_t)b * (size_t)T * 3 * C;
        for (int t = 0; t < T; t++) {
            memcpy(kc + (size_t)(pos + t) * C, rows + (size_t)t * 3 * C + C, C * sizeof(float));
            memcpy(vc + (size_t)(pos + t) * C, rows + (size_t)t * 3 * C + 2 * C, C * sizeof(float));
        }
        for (int t = 0; t < T; t++)
            lnl_attention_decode(out + ((size_t)b * (size_t)T + (size_t)t) * C, d->scores, rows + (size_t)t * 3 * C,
                                 kc, vc, pos + t + 1, (int)C, m->cfg.n_head, softcap);
    }
}

/* The largest of x[0..n), or NaN if any is NaN (a diagnostic must not hide a NaN). */
static float max_nan(const float *x, size_t n) {
    float mx = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (x[i] > mx || isnan(x[i])) mx = x[i];
    return mx;
}

void lnl_sub_forward(LnlModel *m, const LnlPass *P, int l, int sidx) {
    const LnlConfig *c = &m->cfg;
    const LnlSubSpec *q = &c->sub[l][sidx];
    const int B = P->B, T = P->T;
    const int k = 2 * l + sidx, C = c->n_embd, NH = c->n_head, HS = C / NH, N = B * T;
    const size_t n = (size_t)N * C;
    const LnlNormKind kind = c->norm;
    LnlSubActs *s = &P->sub[k];
    const LnlSubView W = lnl_sub_view(m, &m->p, l, sidx);
    const float *h = P->stream[k];

    /* u = N_pre(h) * in_scale */
    const float *u = h;
    if (q->pre_norm) {
        lnl_site_norm_forward(m, s->u, s->u_mean, s->u_rstd, h, NORM_W(W, pre), N, C, 1, 1, q->in_scale);
        u = s->u;
    }

    /* f = F(u) */
    if (sidx == LNL_ATTN) {
        lnl_matmul_forward(s->qkv, u, W.in_w, W.in_b, N, C, 3 * C);
        const float *qkv = s->qkv;
        if (q->qkv_norm) {
            lnl_site_norm_forward(m, s->qkvn, s->qkvn_mean, s->qkvn_rstd, s->qkv, NORM_W(W, qkvn), N * 3 * NH, HS, 3,
                                  NH, 1.0f);
            qkv = s->qkvn;
        } else if (q->qk_norm) {
            const QkRows g = qk_rows(q->qk_norm, N, C, NH);
            copy_cols(s->qk, 2 * (size_t)C, s->qkv, 3 * (size_t)C, N, 2 * (size_t)C);
            lnl_site_norm_forward(m, s->qkn, s->qkvn_mean, s->qkvn_rstd, s->qk, NORM_W(W, qkn), g.rows, g.width, 2,
                                  g.rep, 1.0f);
            copy_cols(s->qkvn, 3 * (size_t)C, s->qkn, 2 * (size_t)C, N, 2 * (size_t)C);
            copy_cols(s->qkvn + 2 * C, 3 * (size_t)C, s->qkv + 2 * C, 3 * (size_t)C, N, (size_t)C); /* v as it is */
            qkv = s->qkvn;
        }
        if (P->pos < 0) {
            float *rowmax = m->diag_forward ? m->att_rowmax : NULL;
            lnl_attention_forward(s->atty, s->att, rowmax, qkv, B, T, C, NH, c->attn_softcap);
            m->attn_logit_max[l] = rowmax ? max_nan(rowmax, (size_t)N * NH) : NAN;
        } else {
            attend_cached(m, l, qkv, s->atty, B, T, P->pos);
        }
        lnl_matmul_forward(s->fproj, s->atty, W.proj_w, W.proj_b, N, C, C);
    } else {
        lnl_matmul_forward(s->fch, u, W.in_w, W.in_b, N, C, 4 * C);
        lnl_gelu_forward(s->fch_gelu, s->fch, n * 4);
        lnl_matmul_forward(s->fproj, s->fch_gelu, W.proj_w, W.proj_b, N, 4 * C, C);
    }

    /* f = N_out(f); f = (1 - lambda) f + lambda N0(f) */
    if (q->out_norm)
        lnl_site_norm_forward(m, s->fo, s->fo_mean, s->fo_rstd, s->fproj, NORM_W(W, out), N, C, 1, 1, 1.0f);
    if (q->branch_norm) {
        const float *fin = branch_in(s);
        lnl_norm_forward(s->branch_n0, s->branch_n0_mean, s->branch_n0_rstd, fin, NULL, NULL, N, C, 1, 1, kind,
                         c->eps, 1.0f);
        lnl_axpby(s->branch_mix, 1.0f - m->branch_lambda, fin, m->branch_lambda, s->branch_n0, n);
    }
    const float *f = lnl_sub_branch_out(s);
    if (P->vars) {
        /* biased variance over all entries of the branch output, for Admin's profiling */
        double sum = 0, sq = 0;
        for (size_t i = 0; i < n; i++) {
            sum += f[i];
            sq += (double)f[i] * f[i];
        }
        double mean = sum / (double)n;
        P->vars[k] = (float)(sq / (double)n - mean * mean);
    }

    /* r = skip * res + dt * g * f [+ x] */
    const float *res = q->res_from_normed ? u : h;
    float *out = q->post_norm ? s->r : P->stream[k + 1];
    const float step = q->dt * (q->gate ? W.gate[0] : 1.0f);
    if (q->skip_learned) {
        lnl_chanscale_forward(out, res, W.skip, N, C);
        if (q->skip_scale != 1.0f) lnl_axpby(out, q->skip_scale, out, 0.0f, out, n);
        lnl_axpy(out, step, f, n);
    } else {
        lnl_axpby(out, q->skip_scale, res, step, f, n); /* one pass; the same floats as two */
    }
    if (q->b2t) lnl_axpy(out, 1.0f, P->stream[2 * l], n);

    /* h' = N_post(r) */
    if (q->post_norm)
        lnl_site_norm_forward(m, P->stream[k + 1], s->post_mean, s->post_rstd, s->r, NORM_W(W, post), N, C, 1, 1, 1.0f);
}

void lnl_model_block_forward(LnlModel *m, int l) {
    assert(l >= 0 && l < m->cfg.n_layer && m->acts_mem);
    const LnlPass P = {m->stream, m->sub, m->B, m->T, -1, NULL};
    lnl_sub_forward(m, &P, l, LNL_ATTN);
    lnl_sub_forward(m, &P, l, LNL_MLP);
}

/* ---------------------------------------------------------------- backward */

static void zero(float *p, size_t n) { lnl_zero(p, n); }

/* dres += dLoss/d res through r = skip * res + ...: the scalar skip, and the learned per-channel
 * one (whose gradient it adds to gskip). */
static void residual_backward(LnlModel *m, const LnlSubSpec *q, const LnlSubView *W, float *gskip, float *dres,
                              const float *res, const float *dr, int N, int C) {
    const size_t n = (size_t)N * C;
    if (q->skip_learned) {
        lnl_axpby(m->d_tmp, q->skip_scale, dr, 0.0f, dr, n);
        lnl_chanscale_backward(dres, gskip, m->d_tmp, res, W->skip, N, C);
    } else {
        lnl_axpy(dres, q->skip_scale, dr, n);
    }
}

void lnl_sub_backward(LnlModel *m, int l, int sidx, const float *dout, float *din, float *dblock, int param_grads) {
    const LnlConfig *c = &m->cfg;
    const LnlSubSpec *q = &c->sub[l][sidx];
    const int B = m->B, T = m->T, k = 2 * l + sidx, C = c->n_embd, NH = c->n_head, HS = C / NH, N = B * T;
    const size_t n = (size_t)N * C;
    const LnlNormKind kind = c->norm;
    LnlSubActs *s = &m->sub[k];
    const LnlSubView W = lnl_sub_view(m, &m->p, l, sidx);
    LnlSubView G; /* NULL gradient pointers without param_grads: the kernels skip them */
    if (param_grads) G = lnl_sub_view(m, &m->g, l, sidx);
    else memset(&G, 0, sizeof G);
    const float *h = m->stream[k];
    const float *u = q->pre_norm ? s->u : h;

    /* h' = N_post(r) */
    const float *dr = dout;
    if (q->post_norm) {
        zero(m->d_r, n);
        lnl_site_norm_backward(m, m->d_r, NORM_G(G, post), dout, s->r, NORM_W(W, post), s->post_mean, s->post_rstd, N,
                               C, 1, 1, 1.0f);
        dr = m->d_r;
    }

    /* r = skip * res + dt * g * f [+ x]; d_u collects everything that flows into u: F's input
     * gradient (the last product below writes it) and then, from the normed stream, the skip's */
    if (q->b2t) lnl_axpy(dblock, 1.0f, dr, n);
    if (!q->res_from_normed) residual_backward(m, q, &W, G.skip, din, h, dr, N, C);
    const float *f = lnl_sub_branch_out(s);
    float g = q->gate ? W.gate[0] : 1.0f;
    if (q->gate && G.gate) {
        double dot = 0;
        for (size_t i = 0; i < n; i++) dot += (double)dr[i] * f[i];
        G.gate[0] += (float)(q->dt * dot);
    }
    float *df = m->d_f;
    lnl_axpby(df, q->dt * g, dr, 0.0f, dr, n);

    /* f = (1 - lambda) f + lambda N0(f); f = N_out(f) */
    if (q->branch_norm) {
        const float *fin = branch_in(s);
        zero(m->d_fin, n);
        lnl_axpy(m->d_fin, 1.0f - m->branch_lambda, df, n);
        lnl_norm_backward(m->d_fin, NULL, NULL, df, fin, NULL, s->branch_n0_mean, s->branch_n0_rstd, N, C, 1, 1, kind,
                          m->branch_lambda);
        memcpy(df, m->d_fin, n * sizeof(float));
    }
    if (q->out_norm) {
        zero(m->d_fin, n);
        lnl_site_norm_backward(m, m->d_fin, NORM_G(G, out), df, s->fproj, NORM_W(W, out), s->fo_mean, s->fo_rstd, N, C,
                               1, 1, 1.0f);
        memcpy(df, m->d_fin, n * sizeof(float));
    }

    /* f = F(u) */
    if (sidx == LNL_ATTN) {
        lnl_matmul_backward(m->d_atty, G.proj_w, G.proj_b, df, s->atty, W.proj_w, N, C, C);
        const int normed = q->qkv_norm || q->qk_norm;
        const float *qkv = normed ? s->qkvn : s->qkv;
        float *dq = normed ? m->d_qkvn : m->d_qkv;
        zero(dq, n * 3);
        lnl_attention_backward(dq, m->d_att, m->d_atty, qkv, s->att, B, T, C, NH, c->attn_softcap);
        if (q->qkv_norm) {
            zero(m->d_qkv, n * 3);
            lnl_site_norm_backward(m, m->d_qkv, NORM_G(G, qkvn), m->d_qkvn, s->qkv, NORM_W(W, qkvn), s->qkvn_mean,
                                   s->qkvn_rstd, N * 3 * NH, HS, 3, NH, 1.0f);
        } else if (q->qk_norm) {
            /* the two halves of d_fch2 (the MLP's, free here): dLoss/d normalized q|k, dLoss/d q|k (N, 2C) */
            const QkRows g = qk_rows(q->qk_norm, N, C, NH);
            float *dqkn = m->d_fch2, *dqk = m->d_fch2 + 2 * n;
            copy_cols(dqkn, 2 * (size_t)C, m->d_qkvn, 3 * (size_t)C, N, 2 * (size_t)C);
            zero(dqk, 2 * n);
            lnl_site_norm_backward(m, dqk, NORM_G(G, qkn), dqkn, s->qk, NORM_W(W, qkn), s->qkvn_mean, s->qkvn_rstd,
                                   g.rows, g.width, 2, g.rep, 1.0f);
            copy_cols(m->d_qkv, 3 * (size_t)C, dqk, 2 * (size_t)C, N, 2 * (size_t)C);
            copy_cols(m->d_qkv + 2 * C, 3 * (size_t)C, m->d_qkvn + 2 * C, 3 * (size_t)C, N, (size_t)C);
        }
        lnl_matmul_backward(m->d_u, G.in_w, G.in_b, m->d_qkv, u, W.in_w, N, C, 3 * C);
    } else {
        lnl_matmul_backward(m->d_fch2, G.proj_w, G.proj_b, df, s->fch_gelu, W.proj_w, N, 4 * C, C);
        lnl_gelu_backward(m->d_fch2, s->fch, m->d_fch2, n * 4); /* in place */
        lnl_matmul_backward(m->d_u, G.in_w, G.in_b, m->d_fch2, u, W.in_w, N, C, 4 * C);
    }
    if (q->res_from_normed) residual_backward(m, q, &W, G.skip, m->d_u, u, dr, N, C);

    /* u = N_pre(h) * in_scale */
    if (q->pre_norm)
        lnl_site_norm_backward(m, din, NORM_G(G, pre), m->d_u, h, NORM_W(W, pre), s->u_mean, s->u_rstd, N, C, 1, 1,
                               q->in_scale);
    else
        lnl_axpy(din, 1.0f, m->d_u, n);
}

void lnl_model_block_vjp(LnlModel *m, int l, const float *dout, float *din) {
    const size_t n = (size_t)m->B * (size_t)m->T * (size_t)m->cfg.n_embd;
    float *dmid = m->d_stream[0]; /* dLoss/d stream[2l+1] */
    assert(dout != dmid && din != dmid && l >= 0 && l < m->cfg.n_layer);
    zero(dmid, n);
    zero(din, n);
    lnl_sub_backward(m, l, LNL_MLP, dout, dmid, din, 0); /* b2t: the block input is stream[2l] */
    lnl_sub_backward(m, l, LNL_ATTN, dmid, din, NULL, 0);
}

/* ---------------------------------------------------------------- tangent */

size_t lnl_block_tangent_floats(size_t n) { return 6 * n + 2 * 3 * n + 2 * 4 * n; }

void lnl_block_tangent_place(LnlBlockTangent *w, float *mem, size_t n) {
    float **one[] = {&w->t_mid, &w->t_u, &w->t_f, &w->t_f2, &w->t_r, &w->t_atty};
    for (size_t i = 0; i < sizeof one / sizeof one[0]; i++, mem += n) *one[i] = mem;
    w->t_qkv = mem, mem += 3 * n;
    w->t_qkvn = mem, mem += 3 * n;
    w->t_fch = mem, mem += 4 * n;
    w->t_gelu = mem;
}

/* Tangent of sub-layer k = 2l + sidx: dh is the tangent of its input stream[k], dx that of the
 * block input (for b2t); writes the tangent of stream[k+1] into out. Biases have no tangent. */
static void sub_tangent(const LnlModel *m, const LnlBlockTangent *w, int l, int sidx, const float *dh,
                        const float *dx, float *out) {
    const LnlConfig *c = &m->cfg;
    const LnlSubSpec *q = &c->sub[l][sidx];
    const int k = 2 * l + sidx, C = c->n_embd, NH = c->n_head, HS = C / NH, B = m->B, T = m->T, N = B * T;
    const size_t n = (size_t)N * C;
    const LnlNormKind kind = c->norm;
    const LnlSubActs *s = &m->sub[k];
    const LnlSubView W = lnl_sub_view(m, &m->p, l, sidx);
    const float *h = m->stream[k];

    /* u = N_pre(h) * in_scale */
    const float *du = dh;
    if (q->pre_norm) {
        lnl_site_norm_tangent(m, w->t_u, dh, h, NORM_W(W, pre), s->u_mean, s->u_rstd, N, C, 1, 1, q->in_scale);
        du = w->t_u;
    }

    /* f = F(u) */
    if (sidx == LNL_ATTN) {
        lnl_matmul_jvp(w->t_qkv, du, W.in_w, N, C, 3 * C);
        const float *dqkv = w->t_qkv, *qkv = s->qkv;
        if (q->qkv_norm) {
            lnl_site_norm_tangent(m, w->t_qkvn, w->t_qkv, s->qkv, NORM_W(W, qkvn), s->qkvn_mean, s->qkvn_rstd,
                                  N * 3 * NH, HS, 3, NH, 1.0f);
            dqkv = w->t_qkvn;
            qkv = s->qkvn;
        } else if (q->qk_norm) {
            /* the two halves of t_fch (the MLP's, free here): tangents of q|k and of its norm (N, 2C) */
            const QkRows g = qk_rows(q->qk_norm, N, C, NH);
            float *tqk = w->t_fch, *tqkn = w->t_fch + 2 * n;
            copy_cols(tqk, 2 * (size_t)C, w->t_qkv, 3 * (size_t)C, N, 2 * (size_t)C);
            lnl_site_norm_tangent(m, tqkn, tqk, s->qk, NORM_W(W, qkn), s->qkvn_mean, s->qkvn_rstd, g.rows, g.width, 2,
                                  g.rep, 1.0f);
            copy_cols(w->t_qkvn, 3 * (size_t)C, tqkn, 2 * (size_t)C, N, 2 * (size_t)C);
            copy_cols(w->t_qkvn + 2 * C, 3 * (size_t)C, w->t_qkv + 2 * C, 3 * (size_t)C, N, (size_t)C);
            dqkv = w->t_qkvn;
            qkv = s->qkvn;
        }
        lnl_attention_jvp(w->t_atty, dqkv, qkv, s->att, B, T, C, NH, c->attn_softcap);
        lnl_matmul_jvp(w->t_f, w->t_atty, W.proj_w, N, C, C);
    } else {
        lnl_matmul_jvp(w->t_fch, du, W.in_w, N, C, 4 * C);
        lnl_gelu_jvp(w->t_gelu, s->fch, w->t_fch, n * 4);
        lnl_matmul_jvp(w->t_f, w->t_gelu, W.proj_w, N, 4 * C, C);
    }

    /* f = N_out(f); f = (1 - lambda) f + lambda N0(f) */
    float *df = w->t_f, *df2 = w->t_f2;
    if (q->out_norm) {
        lnl_site_norm_tangent(m, df2, df, s->fproj, NORM_W(W, out), s->fo_mean, s->fo_rstd, N, C, 1, 1, 1.0f);
        float *t = df;
        df = df2;
        df2 = t;
    }
    if (q->branch_norm) {
        lnl_norm_jvp(df2, df, branch_in(s), NULL, s->branch_n0_mean, s->branch_n0_rstd, N, C, 1, 1, kind, 1.0f);
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
    lnl_axpy(dr, q->dt * (q->gate ? W.gate[0] : 1.0f), df, n);
    if (q->b2t) lnl_axpy(dr, 1.0f, dx, n);

    /* h' = N_post(r) */
    if (q->post_norm)
        lnl_site_norm_tangent(m, out, dr, s->r, NORM_W(W, post), s->post_mean, s->post_rstd, N, C, 1, 1, 1.0f);
}

void lnl_block_tangent(const LnlModel *m, const LnlBlockTangent *w, int l, const float *v, float *out) {
    sub_tangent(m, w, l, LNL_ATTN, v, v, w->t_mid);
    sub_tangent(m, w, l, LNL_MLP, w->t_mid, v, out);
}
