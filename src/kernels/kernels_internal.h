/* Math shared by the reference kernels (kernels_ref.c) and the fast ones (kernels.c), plus the
 * reference versions by name, for backend tables that point at them. Private to src/kernels/ and
 * its tests. */
#ifndef LNL_KERNELS_INTERNAL_H
#define LNL_KERNELS_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"

/* OpenMP directives that vanish (without an unknown-pragma warning) when built without it. */
#define LNL_STR_(...) #__VA_ARGS__
#if defined(_OPENMP)
#define LNL_OMP(...) _Pragma(LNL_STR_(omp __VA_ARGS__))
#else
#define LNL_OMP(...)
#endif

/* Work (elements, or multiply-adds for products) below which a kernel runs on one thread: a
 * parallel region costs microseconds when the cores are free and far more when another process
 * holds one, so tiny models and decode steps must not pay it on every op. Results do not depend
 * on the choice, as they do not depend on the thread count (kernels.c). */
#define LNL_PAR_MIN_ELEMS ((size_t)1 << 15)
#define LNL_PAR_MIN_MACS ((size_t)1 << 21)

/* a * b + c, fused where the target has a fast fmaf */
#ifdef FP_FAST_FMAF
#define LNL_FMA(a, b, c) fmaf((a), (b), (c))
#else
#define LNL_FMA(a, b, c) ((a) * (b) + (c))
#endif

/* exp(x) for the fast softmax, attention and GELU (kernels.c, attention_small.c), written so
 * loops over it vectorize (libm's expf does not without fast-math). Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, then a
 * degree-7 Taylor polynomial (truncation < 1e-8 relative; Horner steps as fused multiply-adds
 * where the target has them) and 2^n built from bits: ~2 ulp.
 * Domain: x > 88 is treated as 88 (exp(88) ~ 1.65e38, no inf), x < -87 gives 0; NaN stays NaN.
 * The integer n is read from the bits of the rounded float, so no float->int conversion can
 * overflow. */
static inline float lnl_expf_approx(float x) {
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer in the mantissa */
    float xc = x > 88.0f ? 88.0f : x;
    xc = xc < -87.0f ? -87.0f : xc;
    float t = LNL_FMA(xc, 1.44269504088896341f, magic);
    float n = t - magic;
    float r = LNL_FMA(n, -0.693359375f, xc); /* ln2 = 0.693359375 - 2.12194440e-4, first part exact */
    r = LNL_FMA(n, 2.12194440e-4f, r);
    float p = 1.0f / 5040.0f;
    p = LNL_FMA(p, r, 1.0f / 720.0f);
    p = LNL_FMA(p, r, 1.0f / 120.0f);
    p = LNL_FMA(p, r, 1.0f / 24.0f);
    p = LNL_FMA(p, r, 1.0f / 6.0f);
    p = LNL_FMA(p, r, 0.5f);
    p = LNL_FMA(p, r, 1.0f);
    p = LNL_FMA(p, r, 1.0f);
    uint32_t tb, mb, sb;
    float s;
    memcpy(&tb, &t, 4);
    memcpy(&mb, &magic, 4);
    sb = (tb - mb + 127u) << 23;
    memcpy(&s, &sb, 4);
    return x < -87.0f ? 0.0f : p * s;
}

/* ---- attention of one (batch, head) pair for short sequences and narrow heads (attention_small.c)
 * Q, K, V: rows of the pair's head at stride 3C; O and dout rows at stride C; A, D: T x T. The
 * forward writes O, A and (if R) R; the backward adds into dQ, dK, dV and writes D, as kernels.h's
 * attention does. Only where lnl_att_small_fits: a build with AVX-512, no softcap,
 * T <= LNL_ATT_SMALL_T, head size 16, 32 or 64. */
#define LNL_ATT_SMALL_T 128
int lnl_att_small_fits(int T, int hs, float softcap);
#if defined(__AVX512F__)
#define LNL_HAVE_ATT_SMALL 1
void lnl_att_small_forward(float *O, float *A, float *R, const float *Q, const float *K, const float *V, int T, int hs,
                           int C, float sc);
void lnl_att_small_backward(float *dQ, float *dK, float *dV, float *D, const float *dO, const float *Q, const float *K,
                            const float *V, const float *A, int T, int hs, int C, float sc);
#endif

/* ---- fp32 products without packing at the study's shapes (gemm_small.c) ----
 * C (M, N) = op(A) op(B), started from the bias rows (bias), C (beta 1) or 0 (beta 0), for the
 * three layouts the model's products use: (ta, tb) = (0, 1) forward, (0, 0) input gradient,
 * (1, 0) weight gradient. Only where lnl_gemm_small_fits (an AVX-512 build; N a multiple of 32;
 * the weight, the two sides other than the tokens, at most 16384 elements). */
int lnl_gemm_small_fits(int ta, int tb, int M, int N, int K, float beta);
void lnl_gemm_small(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                    float *C, int ldc, const float *bias);

/* ---- GELU, tanh approximation: gelu(x) = 0.5 x (1 + tanh(K (x + A x^3))) ---- */
#define LNL_GELU_K 0.7978845608028654 /* sqrt(2/pi) */
#define LNL_GELU_A 0.044715

/* ---- softcap (Gemma 2): the attention's, on the scaled score z = q . k / sqrt(hs), and the final
 * logits' (the reference's lnl_ref_softcap_forward) ----
 * s = cap * tanh(z / cap) for cap > 0 (cap 0: no cap, s = z); ds/dz = 1 - tanh^2(z / cap). Both
 * are increasing in z, so a row's largest capped score is the cap of its largest raw one. */
static inline double lnl_softcap(double z, double cap) { return cap > 0 ? cap * tanh(z / cap) : z; }
static inline double lnl_softcap_grad(double z, double cap) {
    if (!(cap > 0)) return 1.0;
    double t = tanh(z / cap);
    return 1.0 - t * t;
}

/* ---- sums in double over 8 independent lanes ----
 * Lane k adds elements k, k + 8, k + 16, ...; then the tail (n mod 8 elements) is summed, and the
 * lanes are added to it in order. Fixed lanes let the sums vectorize without reassociating, so
 * every version and thread count gives the same bits. The lanes are one vector of the compiler's
 * vector extension (lnl_d8): GCC 12 does not vectorize them written as eight scalars, and a
 * vector's lane does the same operations in the same order as the scalar it replaces. */
#define LNL_LANES 8
typedef double lnl_d8 __attribute__((vector_size(LNL_LANES * sizeof(double))));
typedef float lnl_f8u __attribute__((vector_size(LNL_LANES * sizeof(float)), aligned(4), may_alias));

/* x[0..8) as doubles (a macro: a function passing these vectors by value changes the calling
 * convention between builds with and without AVX-512) */
#define LNL_D8_LOAD(x) __builtin_convertvector(*(const lnl_f8u *)(const void *)(x), lnl_d8)

/* s + lane 0 + lane 1 + ... + lane 7, in that order */
static inline double lnl_d8_add_lanes(double s, const lnl_d8 *acc) {
    for (int k = 0; k < LNL_LANES; k++) s += (*acc)[k];
    return s;
}

/* ---- normalization: per-row statistics and gradients, used by both versions ----
 * Statistics are accumulated in double (the lanes above) and stored as float; the output and the
 * backward pass use the stored float values so that the saved (mean, rstd) describe exactly what
 * was computed. */

static inline double lnl_sum_d(const float *x, int n) {
    lnl_d8 acc = {0};
    int i = 0;
    for (; i + LNL_LANES <= n; i += LNL_LANES) acc += LNL_D8_LOAD(x + i);
    double s = 0.0;
    for (; i < n; i++) s += (double)x[i];
    return lnl_d8_add_lanes(s, &acc);
}

/* sum (x - c)^2 in double */
static inline double lnl_sumsq_shift_d(const float *x, double c, int n) {
    lnl_d8 acc = {0};
    int i = 0;
    for (; i + LNL_LANES <= n; i += LNL_LANES) {
        lnl_d8 d = LNL_D8_LOAD(x + i) - c;
        acc += d * d;
    }
    double s = 0.0;
    for (; i < n; i++) {
        double d = (double)x[i] - c;
        s += d * d;
    }
    return lnl_d8_add_lanes(s, &acc);
}

/* Mean (0 for RMSNorm) and rstd of one row of C values. LayerNorm uses the biased variance
 * around the mean (two passes, no E[x^2]-mean^2 cancellation); RMSNorm the mean square. */
static inline void lnl_norm_row_stats(const float *x, int C, LnlNormKind kind, float eps, float *mean,
                                      float *rstd) {
    double mu = kind == LNL_NORM_LAYERNORM ? lnl_sum_d(x, C) / C : 0.0;
    double var = lnl_sumsq_shift_d(x, mu, C) / C;
    *mean = (float)mu;
    *rstd = (float)(1.0 / sqrt(var + (double)eps));
}

/* out = scale * ((x - mean) * rstd * w + b); w, b may be NULL (gain 1, bias 0). */
static inline void lnl_norm_row_forward(float *out, const float *x, const float *w, const float *b, int C, float mean,
                                        float rstd, float scale) {
    for (int i = 0; i < C; i++) {
        float y = (x[i] - mean) * rstd;
        if (w) y *= w[i];
        if (b) y += b[i];
        out[i] = scale * y;
    }
}

/* dinp += rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = scale * dout * w and
 * xhat = (x - mean) * rstd; the mean(g) term exists for LayerNorm only (RMSNorm has no
 * centering). Exact derivative of lnl_norm_row_forward for fixed w, b. */
static inline void lnl_norm_row_backward(float *dinp, const float *dout, const float *x, const float *w, int C,
                                         LnlNormKind kind, float mean, float rstd, float scale) {
    lnl_d8 sg = {0}, sgx = {0};
    int i = 0;
    for (; i + LNL_LANES <= C; i += LNL_LANES) {
        lnl_d8 g = (double)scale * LNL_D8_LOAD(dout + i);
        if (w) g = g * LNL_D8_LOAD(w + i); /* without w the scalar form multiplies by 1: exact */
        lnl_d8 xh = (LNL_D8_LOAD(x + i) - (double)mean) * (double)rstd;
        sg += g;
        sgx += g * xh;
    }
    double sum_g = 0.0, sum_gx = 0.0;
    for (; i < C; i++) {
        double g = (double)scale * dout[i] * (w ? w[i] : 1.0f);
        double xh = ((double)x[i] - mean) * rstd;
        sum_g += g;
        sum_gx += g * xh;
    }
    sum_g = lnl_d8_add_lanes(sum_g, &sg);
    sum_gx = lnl_d8_add_lanes(sum_gx, &sgx);
    float mg = kind == LNL_NORM_LAYERNORM ? (float)(sum_g / C) : 0.0f;
    float mgx = (float)(sum_gx / C);
    for (i = 0; i < C; i++) {
        float g = scale * dout[i] * (w ? w[i] : 1.0f);
        float xh = (x[i] - mean) * rstd;
        dinp[i] += rstd * (g - mg - xh * mgx);
    }
}

/* Weight group of row r: rows come in runs of `rep` that cycle through the G weight sets. */
static inline int lnl_norm_group(int r, int G, int rep) { return (r / rep) % G; }

/* Columns [c0, c1) (c1 - c0 <= LNL_NORM_COLS) of dweight/dbias, all groups, double
 * accumulation over the rows of each group:
 *   dweight[g, c] += sum_r scale * dout[r, c] * xhat[r, c],  dbias[g, c] += sum_r scale * dout[r, c].
 * Disjoint column ranges touch disjoint memory, which is how the fast version splits the work
 * among threads without private copies, and the result does not depend on the thread count. */
#define LNL_NORM_COLS 64
static inline void lnl_norm_param_grad_cols(float *dweight, float *dbias, const float *dout, const float *inp,
                                            const float *mean, const float *rstd, int N, int C, int G, int rep,
                                            LnlNormKind kind, float scale, int c0, int c1) {
    double aw[LNL_NORM_COLS], ab[LNL_NORM_COLS];
    int nc = c1 - c0;
    for (int g = 0; g < G; g++) {
        for (int j = 0; j < nc; j++) aw[j] = ab[j] = 0.0;
        /* rows of group g: r = (k*G + g)*rep + j, j < rep */
        for (int base = g * rep; base < N; base += G * rep) {
            int rend = base + rep < N ? base + rep : N;
            for (int r = base; r < rend; r++) {
                const float *dy = dout + (size_t)r * C + c0;
                const float *x = inp + (size_t)r * C + c0;
                double mu = kind == LNL_NORM_LAYERNORM ? mean[r] : 0.0;
                double rs = rstd[r];
                for (int j = 0; j < nc; j++) {
                    double d = (double)scale * dy[j];
                    aw[j] += d * (((double)x[j] - mu) * rs);
                    ab[j] += d;
                }
            }
        }
        if (dweight)
            for (int j = 0; j < nc; j++) dweight[(size_t)g * C + c0 + j] += (float)aw[j];
        if (dbias)
            for (int j = 0; j < nc; j++) dbias[(size_t)g * C + c0 + j] += (float)ab[j];
    }
}

/* ---- AdamW: one element; bias corrections computed once per call ---- */
typedef struct {
    float lr, beta1, beta2, eps, wd;
    float bc1, bc2; /* 1 - beta^t */
} LnlAdamCoef;

static inline LnlAdamCoef lnl_adam_coef(float lr, float beta1, float beta2, float eps, float wd, int t) {
    LnlAdamCoef c = {lr, beta1, beta2, eps, wd, 0.0f, 0.0f};
    c.bc1 = (float)(1.0 - pow((double)beta1, (double)t));
    c.bc2 = (float)(1.0 - pow((double)beta2, (double)t));
    return c;
}

static inline void lnl_adam_elem(float *p, float g, float *m, float *v, const LnlAdamCoef *c) {
    float mm = c->beta1 * *m + (1.0f - c->beta1) * g;
    float vv = c->beta2 * *v + (1.0f - c->beta2) * g * g;
    float mhat = mm / c->bc1;
    float vhat = vv / c->bc2;
    *m = mm;
    *v = vv;
    *p -= c->lr * (mhat / (sqrtf(vhat) + c->eps) + c->wd * *p);
}

/* ---- bf16 products (gemm_bf16.c, the optional bf16 mode) ----
 * C (M, N) = op(A) op(B) + (beta C on the first pass over K), op(A) = A (M, K) or, with ta, A
 * stored (K, M); op(B) = B (K, N) or, with tb, B stored (N, K); row-major; K > 0. Inputs are
 * rounded to bf16 (nearest even), products accumulated in fp32. ws: lnl_bf16_ws_words() words
 * owned by the calling thread. */
int lnl_bf16_available(void);
size_t lnl_bf16_ws_words(void);
void lnl_gemm_bf16(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                   float *C, int ldc, uint32_t *ws);
/* x rounded to the nearest bf16 (as the products see their inputs), for tests. */
float lnl_bf16_round(float x);
/* The calling OpenMP thread's workspace when the bf16 mode is on (runtime.c), else NULL. */
uint32_t *lnl_kernels_bf16_ws(int thread);

/* The reference version of every op of kernels.h (lnl_kernels_ref_ops holds them): same
 * signatures, lnl_ref_ prefix. A backend's table points here for an op it does not accelerate. */
void lnl_ref_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int IC,
                            int OC);
void lnl_ref_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                             const float *weight, int N, int IC, int OC);
void lnl_ref_dyn_norm_forward(float *out, const float *inp, const float *weight, const float *bias, const float *alpha,
                              const float *shift, int N, int C, int G, int rep, LnlNormKind kind, float scale);
void lnl_ref_dyn_norm_backward(float *dinp, float *dweight, float *dbias, float *dalpha, float *dshift,
                               const float *dout, const float *inp, const float *weight, const float *alpha,
                               const float *shift, int N, int C, int G, int rep, LnlNormKind kind, float scale);
/* The elementwise map of a dynamic norm kind at z = a x + s, and its derivative. */
static inline double lnl_dyn_phi(LnlNormKind kind, double z) { return kind == LNL_NORM_DERF ? erf(z) : tanh(z); }
static inline double lnl_dyn_dphi(LnlNormKind kind, double z) {
    if (kind == LNL_NORM_DERF) return 1.1283791670955126 * exp(-z * z); /* 2 / sqrt(pi) */
    double t = tanh(z);
    return 1.0 - t * t;
}
/* Row r of a dynamic norm's forward, shared by both versions: out = scale (phi(a x + s) w + b)
 * with row r's weight set g (its a, s, w, b; w, b, shift may be NULL), in double. */
static inline void lnl_dyn_norm_row(float *out, const float *inp, const float *weight, const float *bias,
                                    const float *alpha, const float *shift, int r, int C, int G, int rep,
                                    LnlNormKind kind, float scale) {
    const int g = lnl_norm_group(r, G, rep);
    const double a = alpha[g], s = shift ? shift[g] : 0.0;
    const float *x = inp + (size_t)r * C, *w = weight ? weight + (size_t)g * C : NULL;
    const float *b = bias ? bias + (size_t)g * C : NULL;
    float *o = out + (size_t)r * C;
    for (int i = 0; i < C; i++)
        o[i] = (float)(scale * (lnl_dyn_phi(kind, a * x[i] + s) * (w ? w[i] : 1.0) + (b ? b[i] : 0.0)));
}
void lnl_ref_norm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                          const float *bias, int N, int C, int G, int rep, LnlNormKind kind, float eps,
                          float scale);
void lnl_ref_norm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                           const float *weight, const float *mean, const float *rstd, int N, int C, int G, int rep,
                           LnlNormKind kind, float scale);
void lnl_ref_attention_forward(float *out, float *att, float *rowmax, const float *qkv, int B, int T, int C, int NH,
                               float softcap);
void lnl_ref_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att,
                                int B, int T, int C, int NH, float softcap);
void lnl_ref_attention_decode(float *out, float *scores, const float *q, const float *kcache, const float *vcache,
                              int npos, int C, int NH, float softcap);
void lnl_ref_gelu_forward(float *out, const float *inp, size_t n);
void lnl_ref_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);
void lnl_ref_embed_forward(float *out, const int32_t *tok, const float *wte, const float *wpe, int B, int T, int C,
                           float scale);
void lnl_ref_embed_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tok, int B, int T, int C,
                            float scale);
void lnl_ref_softmax_xent_forward(float *losses, float *probs, const float *logits, const int32_t *targets, int N,
                                  int V);
void lnl_ref_softmax_xent_backward(float *dlogits, const float *probs, const int32_t *targets, const float *dloss,
                                   int N, int V);
void lnl_ref_xent_forward(float *losses, float *rmax, float *inv_z, const float *logits, const int32_t *targets, int N,
                          int V);
void lnl_ref_xent_backward_inplace(float *logits, const float *rmax, const float *inv_z, const int32_t *targets,
                                   const float *dloss, const float *dlogz, float softcap, int N, int V);
void lnl_ref_softcap_forward(float *out, const float *inp, size_t n, float cap);
void lnl_ref_adamw_update(float *param, const float *grad, float gscale, float *m, float *v, size_t n, float lr,
                          float beta1, float beta2, float eps, float weight_decay, int t);
void lnl_ref_zero(float *x, size_t n);
void lnl_ref_axpby(float *out, float a, const float *x, float b, const float *y, size_t n);
void lnl_ref_axpy(float *out, float a, const float *x, size_t n);
void lnl_ref_chanscale_forward(float *out, const float *x, const float *s, int N, int C);
void lnl_ref_chanscale_backward(float *dx, float *ds, const float *dout, const float *x, const float *s, int N,
                                int C);
double lnl_ref_sumsq(const float *x, size_t n);

#endif
