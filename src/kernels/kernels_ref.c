/* Reference kernels: plain loops, double accumulation where sums are long. They define what
 * each op computes, and their table lnl_kernels_ref_ops (at the end) is the reference backend
 * (LNLAB_KERNELS=ref); every other backend is tested against it. Not tuned. */
#include <assert.h>
#include <math.h>

#include "kernels_internal.h"

/* ---- matmul ---- */

void lnl_ref_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int IC,
                            int OC) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * IC;
        for (int o = 0; o < OC; o++) {
            const float *w = weight + (size_t)o * IC;
            double s = bias ? (double)bias[o] : 0.0;
            for (int i = 0; i < IC; i++) s += (double)x[i] * w[i];
            out[(size_t)n * OC + o] = (float)s;
        }
    }
}

void lnl_ref_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                             const float *weight, int N, int IC, int OC) {
    if (dinp)
        for (int n = 0; n < N; n++)
            for (int i = 0; i < IC; i++) {
                double s = 0.0;
                for (int o = 0; o < OC; o++) s += (double)dout[(size_t)n * OC + o] * weight[(size_t)o * IC + i];
                dinp[(size_t)n * IC + i] = (float)s;
            }
    if (dweight)
        for (int o = 0; o < OC; o++)
            for (int i = 0; i < IC; i++) {
                double s = 0.0;
                for (int n = 0; n < N; n++) s += (double)dout[(size_t)n * OC + o] * inp[(size_t)n * IC + i];
                dweight[(size_t)o * IC + i] += (float)s;
            }
    if (dbias)
        for (int o = 0; o < OC; o++) {
            double s = 0.0;
            for (int n = 0; n < N; n++) s += dout[(size_t)n * OC + o];
            dbias[o] += (float)s;
        }
}

/* ---- normalization (row math shared with the fast version, kernels_internal.h) ---- */

void lnl_ref_norm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                          const float *bias, int N, int C, int G, int rep, LnlNormKind kind, float eps,
                          float scale) {
    assert(G >= 1 && rep >= 1 && (kind == LNL_NORM_RMSNORM || mean));
    for (int r = 0; r < N; r++) {
        const float *x = inp + (size_t)r * C;
        size_t goff = (size_t)lnl_norm_group(r, G, rep) * C;
        float mu, rs;
        lnl_norm_row_stats(x, C, kind, eps, &mu, &rs);
        if (kind == LNL_NORM_LAYERNORM) mean[r] = mu;
        rstd[r] = rs;
        lnl_norm_row_forward(out + (size_t)r * C, x, weight ? weight + goff : NULL, bias ? bias + goff : NULL, C,
                             mu, rs, scale);
    }
}

void lnl_ref_norm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                           const float *weight, const float *mean, const float *rstd, int N, int C, int G, int rep,
                           LnlNormKind kind, float scale) {
    assert(G >= 1 && rep >= 1 && (kind == LNL_NORM_RMSNORM || mean));
    if (dinp)
        for (int r = 0; r < N; r++) {
            size_t goff = (size_t)lnl_norm_group(r, G, rep) * C;
            float mu = kind == LNL_NORM_LAYERNORM ? mean[r] : 0.0f;
            lnl_norm_row_backward(dinp + (size_t)r * C, dout + (size_t)r * C, inp + (size_t)r * C,
                                  weight ? weight + goff : NULL, C, kind, mu, rstd[r], scale);
        }
    if (dweight || dbias)
        for (int c0 = 0; c0 < C; c0 += LNL_NORM_COLS) {
            int c1 = c0 + LNL_NORM_COLS < C ? c0 + LNL_NORM_COLS : C;
            lnl_norm_param_grad_cols(dweight, dbias, dout, inp, mean, rstd, N, C, G, rep, kind, scale, c0, c1);
        }
}

/* ---- elementwise (dynamic) norms: DyT, Derf ---- */

void lnl_ref_dyn_norm_forward(float *out, const float *inp, const float *weight, const float *bias, const float *alpha,
                              const float *shift, int N, int C, int G, int rep, LnlNormKind kind, float scale) {
    assert(G >= 1 && rep >= 1 && lnl_norm_is_dynamic(kind) && alpha);
    for (int r = 0; r < N; r++) lnl_dyn_norm_row(out, inp, weight, bias, alpha, shift, r, C, G, rep, kind, scale);
}

void lnl_ref_dyn_norm_backward(float *dinp, float *dweight, float *dbias, float *dalpha, float *dshift,
                               const float *dout, const float *inp, const float *weight, const float *alpha,
                               const float *shift, int N, int C, int G, int rep, LnlNormKind kind, float scale) {
    assert(G >= 1 && rep >= 1 && lnl_norm_is_dynamic(kind) && alpha);
    /* parameter gradients in double, one set at a time, in row order: the same bits every run */
    for (int g = 0; g < G; g++) {
        const double a = alpha[g], s = shift ? shift[g] : 0.0;
        const float *w = weight ? weight + (size_t)g * C : NULL;
        double da = 0.0, ds = 0.0;
        for (int i = 0; i < C; i++) {
            double dw = 0.0, db = 0.0;
            for (int r = 0; r < N; r++) {
                if (lnl_norm_group(r, G, rep) != g) continue;
                const size_t k = (size_t)r * C + (size_t)i;
                const double z = a * inp[k] + s, d = (double)scale * dout[k];
                const double dz = d * (w ? w[i] : 1.0) * lnl_dyn_dphi(kind, z);
                dw += d * lnl_dyn_phi(kind, z);
                db += d;
                da += dz * inp[k];
                ds += dz;
                if (dinp) dinp[k] += (float)(dz * a);
            }
            if (dweight) dweight[(size_t)g * C + (size_t)i] += (float)dw;
            if (dbias) dbias[(size_t)g * C + (size_t)i] += (float)db;
        }
        if (dalpha) dalpha[g] += (float)da;
        if (dshift) dshift[g] += (float)ds;
    }
}

/* ---- attention ---- */

void lnl_ref_attention_forward(float *out, float *att, float *rowmax, const float *qkv, int B, int T, int C, int NH,
                               float softcap) {
    int hs = C / NH;
    size_t C3 = 3 * (size_t)C;
    double sc = 1.0 / sqrt((double)hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const float *q = qkv + ((size_t)b * T + t) * C3 + (size_t)h * hs;
                float *a = att + (((size_t)b * NH + h) * T + t) * T;
                double mx = -INFINITY;
                double s[T > 0 ? T : 1];
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *k = qkv + ((size_t)b * T + t2) * C3 + C + (size_t)h * hs;
                    double d = 0.0;
                    for (int i = 0; i < hs; i++) d += (double)q[i] * k[i];
                    s[t2] = d * sc;
                    if (s[t2] > mx) mx = s[t2];
                }
                if (rowmax) rowmax[((size_t)b * NH + h) * T + t] = (float)mx; /* before the cap */
                if (softcap > 0) {
                    for (int t2 = 0; t2 <= t; t2++) s[t2] = lnl_softcap(s[t2], softcap);
                    mx = lnl_softcap(mx, softcap);
                }
                double z = 0.0;
                for (int t2 = 0; t2 <= t; t2++) {
                    s[t2] = exp(s[t2] - mx);
                    z += s[t2];
                }
                for (int t2 = 0; t2 < T; t2++) a[t2] = t2 <= t ? (float)(s[t2] / z) : 0.0f;
                float *o = out + ((size_t)b * T + t) * C + (size_t)h * hs;
                for (int i = 0; i < hs; i++) {
                    double acc = 0.0;
                    for (int t2 = 0; t2 <= t; t2++)
                        acc += (double)a[t2] * qkv[((size_t)b * T + t2) * C3 + 2 * (size_t)C + (size_t)h * hs + i];
                    o[i] = (float)acc;
                }
            }
}

/* On return datt holds the gradient with respect to the scaled scores z before any cap (zero
 * above the diagonal); callers treat it as scratch. */
void lnl_ref_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att,
                                int B, int T, int C, int NH, float softcap) {
    int hs = C / NH;
    size_t C3 = 3 * (size_t)C;
    double sc = 1.0 / sqrt((double)hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *A = att + ((size_t)b * NH + h) * T * T;
            float *D = datt + ((size_t)b * NH + h) * T * T;
#define Q(t) (qkv + ((size_t)b * T + (t)) * C3 + (size_t)h * hs)
#define K(t) (Q(t) + C)
#define V(t) (Q(t) + 2 * (size_t)C)
#define DQ(t) (dqkv + ((size_t)b * T + (t)) * C3 + (size_t)h * hs)
#define DO(t) (dout + ((size_t)b * T + (t)) * C + (size_t)h * hs)
            /* dscore[t, t2] = att * (datt - sum_t3 att * datt), datt[t, t2] = dout_t . v_t2 */
            for (int t = 0; t < T; t++) {
                double da[T > 0 ? T : 1];
                double dot = 0.0;
                for (int t2 = 0; t2 <= t; t2++) {
                    double d = 0.0;
                    for (int i = 0; i < hs; i++) d += (double)DO(t)[i] * V(t2)[i];
                    da[t2] = d;
                    dot += (double)A[(size_t)t * T + t2] * d;
                }
                for (int t2 = 0; t2 <= t; t2++) {
                    double g = 1.0; /* ds/dz of the cap, at z recomputed */
                    if (softcap > 0) {
                        double z = 0.0;
                        for (int i = 0; i < hs; i++) z += (double)Q(t)[i] * K(t2)[i];
                        g = lnl_softcap_grad(z * sc, softcap);
                    }
                    D[(size_t)t * T + t2] = (float)(A[(size_t)t * T + t2] * (da[t2] - dot) * g);
                }
                for (int t2 = t + 1; t2 < T; t2++) D[(size_t)t * T + t2] = 0.0f;
            }
            for (int t = 0; t < T; t++)
                for (int i = 0; i < hs; i++) {
                    double dq = 0.0, dk = 0.0, dv = 0.0;
                    for (int t2 = 0; t2 <= t; t2++) dq += (double)D[(size_t)t * T + t2] * K(t2)[i];
                    for (int t1 = t; t1 < T; t1++) {
                        dk += (double)D[(size_t)t1 * T + t] * Q(t1)[i];
                        dv += (double)A[(size_t)t1 * T + t] * DO(t1)[i];
                    }
                    DQ(t)[i] += (float)(dq * sc);
                    DQ(t)[C + i] += (float)(dk * sc);
                    DQ(t)[2 * C + i] += (float)dv;
                }
#undef Q
#undef K
#undef V
#undef DQ
#undef DO
        }
}

/* ---- GELU: the literal tanh formula in double ---- */

void lnl_ref_gelu_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double x = inp[i];
        out[i] = (float)(0.5 * x * (1.0 + tanh(LNL_GELU_K * (x + LNL_GELU_A * x * x * x))));
    }
}

void lnl_ref_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double x = inp[i];
        double th = tanh(LNL_GELU_K * (x + LNL_GELU_A * x * x * x));
        double du = LNL_GELU_K * (1.0 + 3.0 * LNL_GELU_A * x * x);
        double d = 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * du;
        dinp[i] = (float)(d * dout[i]);
    }
}

/* ---- embedding ---- */

void lnl_ref_embed_forward(float *out, const int32_t *tok, const float *wte, const float *wpe, int B, int T, int C,
                           float scale) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int32_t id = tok[(size_t)b * T + t];
            assert(id >= 0);
            const float *e = wte + (size_t)id * C;
            const float *p = wpe + (size_t)t * C;
            float *o = out + ((size_t)b * T + t) * C;
            for (int c = 0; c < C; c++) o[c] = scale * (e[c] + p[c]);
        }
}

void lnl_ref_embed_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tok, int B, int T, int C,
                            float scale) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *d = dout + ((size_t)b * T + t) * C;
            if (dwte) {
                int32_t id = tok[(size_t)b * T + t];
                assert(id >= 0);
                float *e = dwte + (size_t)id * C;
                for (int c = 0; c < C; c++) e[c] += scale * d[c];
            }
            if (dwpe) {
                float *p = dwpe + (size_t)t * C;
                for (int c = 0; c < C; c++) p[c] += scale * d[c];
            }
        }
}

/* ---- softmax + cross-entropy, in double with libm exp ---- */

void lnl_ref_softmax_xent_forward(float *losses, float *probs, const float *logits, const int32_t *targets, int N,
                                  int V) {
    for (int r = 0; r < N; r++) {
        const float *x = logits + (size_t)r * V;
        float *p = probs + (size_t)r * V;
        int32_t tg = targets[r];
        assert(tg < V);
        double mx = -INFINITY;
        for (int v = 0; v < V; v++)
            if (x[v] > mx) mx = x[v];
        double z = 0.0;
        for (int v = 0; v < V; v++) z += exp((double)x[v] - mx);
        /* read the target logit before p (which may alias x) overwrites it */
        losses[r] = tg >= 0 ? (float)(log(z) - ((double)x[tg] - mx)) : 0.0f;
        for (int v = 0; v < V; v++) p[v] = (float)(exp((double)x[v] - mx) / z);
    }
}

void lnl_ref_softmax_xent_backward(float *dlogits, const float *probs, const int32_t *targets, const float *dloss,
                                   int N, int V) {
    for (int r = 0; r < N; r++) {
        int32_t tg = targets[r];
        if (tg < 0) continue;
        const float *p = probs + (size_t)r * V;
        float *d = dlogits + (size_t)r * V;
        for (int v = 0; v < V; v++) d[v] += (p[v] - (v == tg ? 1.0f : 0.0f)) * dloss[r];
    }
}

void lnl_ref_xent_forward(float *losses, float *rmax, float *inv_z, const float *logits, const int32_t *targets, int N,
                          int V) {
    for (int r = 0; r < N; r++) {
        const float *x = logits + (size_t)r * V;
        int32_t tg = targets[r];
        assert(tg < V);
        float mx = -INFINITY;
        for (int v = 0; v < V; v++)
            if (x[v] > mx) mx = x[v];
        double z = 0.0;
        for (int v = 0; v < V; v++) z += exp((double)x[v] - mx);
        rmax[r] = mx;
        inv_z[r] = (float)(1.0 / z);
        losses[r] = tg >= 0 ? (float)(log(z) - ((double)x[tg] - mx)) : 0.0f;
    }
}

void lnl_ref_xent_backward_inplace(float *logits, const float *rmax, const float *inv_z, const int32_t *targets,
                                   const float *dloss, const float *dlogz, float softcap, int N, int V) {
    for (int r = 0; r < N; r++) {
        float *x = logits + (size_t)r * V;
        int32_t tg = targets[r];
        for (int v = 0; v < V; v++) {
            double p = exp((double)x[v] - rmax[r]) * inv_z[r];
            double g = (p - (v == tg ? 1.0 : 0.0)) * dloss[r];
            if (dlogz) g += p * dlogz[r];
            if (softcap > 0) {
                double t = (double)x[v] / softcap;
                g *= 1.0 - t * t;
            }
            x[v] = tg < 0 ? 0.0f : (float)g;
        }
    }
}

void lnl_ref_softcap_forward(float *out, const float *inp, size_t n, float cap) {
    for (size_t i = 0; i < n; i++) out[i] = (float)lnl_softcap(inp[i], cap);
}

/* ---- AdamW and elementwise helpers ---- */

void lnl_ref_adamw_update(float *param, const float *grad, float gscale, float *m, float *v, size_t n, float lr,
                          float beta1, float beta2, float eps, float weight_decay, int t) {
    LnlAdamCoef c = lnl_adam_coef(lr, beta1, beta2, eps, weight_decay, t);
    for (size_t i = 0; i < n; i++) lnl_adam_elem(&param[i], gscale * grad[i], &m[i], &v[i], &c);
}

void lnl_ref_zero(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 0.0f;
}

void lnl_ref_axpby(float *out, float a, const float *x, float b, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a * x[i] + b * y[i];
}

void lnl_ref_axpy(float *out, float a, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] += a * x[i];
}

void lnl_ref_chanscale_forward(float *out, const float *x, const float *s, int N, int C) {
    for (int r = 0; r < N; r++)
        for (int c = 0; c < C; c++) out[(size_t)r * C + c] = s[c] * x[(size_t)r * C + c];
}

void lnl_ref_chanscale_backward(float *dx, float *ds, const float *dout, const float *x, const float *s, int N,
                                int C) {
    if (dx)
        for (int r = 0; r < N; r++)
            for (int c = 0; c < C; c++) dx[(size_t)r * C + c] += s[c] * dout[(size_t)r * C + c];
    if (ds)
        for (int c = 0; c < C; c++) {
            double acc = 0.0;
            for (int r = 0; r < N; r++) acc += (double)dout[(size_t)r * C + c] * x[(size_t)r * C + c];
            ds[c] += (float)acc;
        }
}

double lnl_ref_sumsq(const float *x, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

/* ---- the reference backend (kernels.h lists what a table holds) ---- */

const LnlKernelOps lnl_kernels_ref_ops = {
    .name = "ref",
    .matmul_forward = lnl_ref_matmul_forward,
    .matmul_backward = lnl_ref_matmul_backward,
    .norm_forward = lnl_ref_norm_forward,
    .norm_backward = lnl_ref_norm_backward,
    .dyn_norm_forward = lnl_ref_dyn_norm_forward,
    .dyn_norm_backward = lnl_ref_dyn_norm_backward,
    .attention_forward = lnl_ref_attention_forward,
    .attention_backward = lnl_ref_attention_backward,
    .attention_decode = lnl_ref_attention_decode,
    .gelu_forward = lnl_ref_gelu_forward,
    .gelu_backward = lnl_ref_gelu_backward,
    .embed_forward = lnl_ref_embed_forward,
    .embed_backward = lnl_ref_embed_backward,
    .softmax_xent_forward = lnl_ref_softmax_xent_forward,
    .softmax_xent_backward = lnl_ref_softmax_xent_backward,
    .xent_forward = lnl_ref_xent_forward,
    .xent_backward_inplace = lnl_ref_xent_backward_inplace,
    .softcap_forward = lnl_ref_softcap_forward,
    .adamw_update = lnl_ref_adamw_update,
    .zero = lnl_ref_zero,
    .axpby = lnl_ref_axpby,
    .axpy = lnl_ref_axpy,
    .chanscale_forward = lnl_ref_chanscale_forward,
    .chanscale_backward = lnl_ref_chanscale_backward,
    .sumsq = lnl_ref_sumsq,
};
