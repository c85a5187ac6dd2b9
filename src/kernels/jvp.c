/* Tangent (forward-mode) kernels: see jvp.h. One plain version each, OpenMP over independent
 * rows or (batch, head) pairs; inner sums in double. Checked against central differences of the
 * forward kernels in tests/unit/test_sensitivity.c. */
#include "jvp.h"

#include "kernels_internal.h"

void lnl_matmul_jvp(float *dout, const float *dinp, const float *weight, int N, int IC, int OC) {
    lnl_matmul_forward(dout, dinp, weight, NULL, N, IC, OC);
}

void lnl_norm_jvp(float *dout, const float *dinp, const float *inp, const float *weight, const float *mean,
                  const float *rstd, int N, int C, int G, int rep, LnlNormKind kind, float scale) {
    /* The normalization's Jacobian at fixed gain is diag(scale * w) P with P symmetric, and the
     * backward row applies P to its input: P dx is the backward of dx with gain 1, scale 1. */
    LNL_OMP(parallel for schedule(static))
    for (int r = 0; r < N; r++) {
        float *o = dout + (size_t)r * C;
        const float *w = weight ? weight + (size_t)lnl_norm_group(r, G, rep) * C : NULL;
        memset(o, 0, (size_t)C * sizeof(float));
        lnl_norm_row_backward(o, dinp + (size_t)r * C, inp + (size_t)r * C, NULL, C, kind,
                              kind == LNL_NORM_LAYERNORM ? mean[r] : 0.0f, rstd[r], 1.0f);
        for (int i = 0; i < C; i++) o[i] *= scale * (w ? w[i] : 1.0f);
    }
}

void lnl_dyn_norm_jvp(float *dout, const float *dinp, const float *inp, const float *weight, const float *alpha,
                      const float *shift, int N, int C, int G, int rep, LnlNormKind kind, float scale) {
    LNL_OMP(parallel for schedule(static))
    for (int r = 0; r < N; r++) {
        const int g = lnl_norm_group(r, G, rep);
        const double a = alpha[g], s = shift ? shift[g] : 0.0;
        const float *w = weight ? weight + (size_t)g * C : NULL;
        for (int i = 0; i < C; i++) {
            const size_t k = (size_t)r * C + (size_t)i;
            dout[k] = (float)((double)scale * (w ? w[i] : 1.0) * lnl_dyn_dphi(kind, a * inp[k] + s) * a * dinp[k]);
        }
    }
}

void lnl_attention_jvp(float *dout, const float *dqkv, const float *qkv, const float *att, int B, int T, int C,
                       int NH, float softcap) {
    const int hs = C / NH;
    const size_t C3 = 3 * (size_t)C;
    const double sc = 1.0 / sqrt((double)hs);
    LNL_OMP(parallel for schedule(dynamic))
    for (int bh = 0; bh < B * NH; bh++) {
        const int b = bh / NH, h = bh % NH;
        double da[T > 0 ? T : 1], acc[hs > 0 ? hs : 1];
        for (int t = 0; t < T; t++) {
            const float *q = qkv + ((size_t)b * T + t) * C3 + (size_t)h * hs;
            const float *dq = dqkv + ((size_t)b * T + t) * C3 + (size_t)h * hs;
            const float *a = att + (((size_t)b * NH + h) * T + t) * T;
            double mean_ds = 0.0; /* sum_t2 A[t, t2] dS[t, t2] */
            for (int t2 = 0; t2 <= t; t2++) {
                const float *k = qkv + ((size_t)b * T + t2) * C3 + C + (size_t)h * hs;
                const float *dk = dqkv + ((size_t)b * T + t2) * C3 + C + (size_t)h * hs;
                double d = 0.0, z = 0.0;
                for (int i = 0; i < hs; i++) d += (double)dq[i] * k[i] + (double)q[i] * dk[i];
                if (softcap > 0)
                    for (int i = 0; i < hs; i++) z += (double)q[i] * k[i];
                da[t2] = d * sc * lnl_softcap_grad(z * sc, softcap);
                mean_ds += (double)a[t2] * da[t2];
            }
            for (int t2 = 0; t2 <= t; t2++) da[t2] = (double)a[t2] * (da[t2] - mean_ds);
            /* rows of v and dv are contiguous: accumulate whole rows */
            for (int i = 0; i < hs; i++) acc[i] = 0.0;
            for (int t2 = 0; t2 <= t; t2++) {
                const size_t vo = ((size_t)b * T + t2) * C3 + 2 * (size_t)C + (size_t)h * hs;
                const float *v = qkv + vo, *dv = dqkv + vo;
                const double w1 = da[t2], w2 = a[t2];
                for (int i = 0; i < hs; i++) acc[i] += w1 * v[i] + w2 * dv[i];
            }
            float *o = dout + ((size_t)b * T + t) * C + (size_t)h * hs;
            for (int i = 0; i < hs; i++) o[i] = (float)acc[i];
        }
    }
}

void lnl_gelu_jvp(float *dout, const float *inp, const float *dinp, size_t n) {
    /* diagonal Jacobian: the backward applied to dinp */
    memset(dout, 0, n * sizeof(float));
    lnl_gelu_backward(dout, inp, dinp, n);
}
