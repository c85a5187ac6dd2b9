/* Plain math on float arrays: <op>_forward / <op>_backward pairs used by the model.
 *
 * Conventions (all ops):
 * - Forward outputs are written with `=`. Gradients accumulate with `+=`, so callers zero
 *   gradient buffers before a backward pass and branches that share an input simply add; two
 *   input gradients are written with `=` instead, since their only caller would otherwise zero
 *   the buffer first: lnl_matmul_backward's dinp and lnl_gelu_backward's (issue 16: five zeroing
 *   passes per block). A NULL gradient pointer means "not needed".
 * - Row-major; N is the number of rows (B*T tokens unless said otherwise).
 * - Each op has one plain reference version (kernels_ref.c, double accumulation where it
 *   matters) and may have faster ones; the public names below call the version of the backend
 *   in use (the kernel table, next), the cpu backend's unless LNLAB_KERNELS says otherwise.
 */
#ifndef LNL_KERNELS_H
#define LNL_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* The normalization kinds: LayerNorm and RMSNorm normalize each row by its statistics
 * (lnl_norm_*); Dynamic Tanh and Dynamic erf are elementwise maps with learned scalars
 * (lnl_dyn_norm_*), no statistics. */
typedef enum { LNL_NORM_LAYERNORM = 0, LNL_NORM_RMSNORM = 1, LNL_NORM_DYT = 2, LNL_NORM_DERF = 3 } LnlNormKind;
/* 1 for the elementwise kinds (DyT, Derf), which the lnl_dyn_norm_* ops compute. */
static inline int lnl_norm_is_dynamic(LnlNormKind kind) { return kind == LNL_NORM_DYT || kind == LNL_NORM_DERF; }

/* ---- the kernel table: the one dispatch point between the model and the math ----
 * Every op of this file is a field of LnlKernelOps with the same signature, and its public name
 * (lnl_matmul_forward, ...) is an inline wrapper that calls that field of the backend in use:
 * one indirect call per op call (ops work on whole tensors), and callers never name a backend.
 *   lnl_kernels_ref_ops (kernels_ref.c): the plain reference versions, which define each op.
 *   lnl_kernels_cpu_ops (kernels.c): OpenMP + OpenBLAS versions, pointing at the reference where
 *     nothing faster is worth having. The default.
 * LNLAB_KERNELS=ref in the environment runs a whole program on the reference (for debugging: does
 * the reference give that result too?); LNLAB_KERNELS=cpu or unset, the default; any other value
 * is an error at startup. tests/unit/test_kernels.c runs every op of every backend listed in
 * lnl_kernels_backends against the reference.
 *
 * What a new backend (a GPU) must provide:
 * - one `const LnlKernelOps` with a name and every field set: no NULL (test_kernels checks it);
 *   an op it does not accelerate points at the reference's lnl_ref_* function (kernels_internal.h);
 * - each op's contract as written below: outputs with `=`, gradients with `+=` (but the two
 *   written ones above), a NULL gradient
 *   skipped, the in-place and aliasing cases each op allows, attention's zeros above the diagonal,
 *   the same floats from lnl_xent_* as from lnl_softmax_xent_*, and results within
 *   test_kernels' tolerances of the reference; the same bits from the same inputs, every time
 *   (resume is tested bit for bit; the cpu backend's bits also do not depend on the thread count,
 *   tests/cli/test_threads.sh);
 * - its entry in lnl_kernels_backends (dispatch.c), which makes LNLAB_KERNELS=<name> and the
 *   tests reach it, and its sources in mk/build.mk (which reports what it found and builds without);
 * - outside this table: every pointer here is host memory, which the model allocates (one
 *   allocation per role, src/model/model.c); a backend that keeps tensors on the device also needs
 *   those allocations and the copies at the edges (batches in; losses, diagnostics and checkpoints
 *   out). The run-time setup further below (threads, BLAS, subnormals, bf16) is the cpu backend's,
 *   and the tangent kernels of jvp.h (diagnostics only) have one CPU version each.
 * A new op: a field here and its documented wrapper below; lnl_ref_<op> in kernels_ref.c (declared
 * in kernels_internal.h) and in lnl_kernels_ref_ops; a faster version or the reference in every
 * other backend's table; its tests in test_kernels.c, which then run it on every backend. */
typedef struct LnlKernelOps {
    const char *name; /* "ref", "cpu": what LNLAB_KERNELS names */
    void (*matmul_forward)(float *out, const float *inp, const float *weight, const float *bias, int N, int IC,
                           int OC);
    void (*matmul_backward)(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *weight, int N, int IC, int OC);
    void (*norm_forward)(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                         const float *bias, int N, int C, int G, int rep, LnlNormKind kind, float eps, float scale);
    void (*norm_backward)(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, const float *mean, const float *rstd, int N, int C, int G, int rep,
                          LnlNormKind kind, float scale);
    void (*dyn_norm_forward)(float *out, const float *inp, const float *weight, const float *bias, const float *alpha,
                             const float *shift, int N, int C, int G, int rep, LnlNormKind kind, float scale);
    void (*dyn_norm_backward)(float *dinp, float *dweight, float *dbias, float *dalpha, float *dshift, const float *dout,
                              const float *inp, const float *weight, const float *alpha, const float *shift, int N,
                              int C, int G, int rep, LnlNormKind kind, float scale);
    void (*attention_forward)(float *out, float *att, float *rowmax, const float *qkv, int B, int T, int C, int NH,
                              float softcap);
    void (*attention_backward)(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att, int B,
                               int T, int C, int NH, float softcap);
    void (*attention_decode)(float *out, float *scores, const float *q, const float *kcache, const float *vcache,
                             int npos, int C, int NH, float softcap);
    void (*gelu_forward)(float *out, const float *inp, size_t n);
    void (*gelu_backward)(float *dinp, const float *inp, const float *dout, size_t n);
    void (*embed_forward)(float *out, const int32_t *tok, const float *wte, const float *wpe, int B, int T, int C,
                          float scale);
    void (*embed_backward)(float *dwte, float *dwpe, const float *dout, const int32_t *tok, int B, int T, int C,
                           float scale);
    void (*softmax_xent_forward)(float *losses, float *probs, const float *logits, const int32_t *targets, int N,
                                 int V);
    void (*softmax_xent_backward)(float *dlogits, const float *probs, const int32_t *targets, const float *dloss,
                                  int N, int V);
    void (*xent_forward)(float *losses, float *rmax, float *inv_z, const float *logits, const int32_t *targets, int N,
                         int V);
    void (*xent_backward_inplace)(float *logits, const float *rmax, const float *inv_z, const int32_t *targets,
                                  const float *dloss, const float *dlogz, float softcap, int N, int V);
    void (*softcap_forward)(float *out, const float *inp, size_t n, float cap);
    void (*adamw_update)(float *param, const float *grad, float gscale, float *m, float *v, size_t n, float lr,
                         float beta1, float beta2, float eps, float weight_decay, int t);
    void (*zero)(float *x, size_t n);
    void (*axpby)(float *out, float a, const float *x, float b, const float *y, size_t n);
    void (*axpy)(float *out, float a, const float *x, size_t n);
    void (*chanscale_forward)(float *out, const float *x, const float *s, int N, int C);
    void (*chanscale_backward)(float *dx, float *ds, const float *dout, const float *x, const float *s, int N, int C);
    double (*sumsq)(const float *x, size_t n);
} LnlKernelOps;

extern const LnlKernelOps lnl_kernels_ref_ops;
extern const LnlKernelOps lnl_kernels_cpu_ops;
/* Every backend built in, the reference first, NULL-terminated. */
extern const LnlKernelOps *const lnl_kernels_backends[];
/* The backend in use (process-wide configuration like the thread count: &lnl_kernels_cpu_ops from
 * the start, changed only by lnl_kernels_use*, before kernels run, never while they run). Read by
 * the wrappers below; do not assign it. */
extern const LnlKernelOps *lnl_kernels_active;
/* The backend called name in lnl_kernels_backends, or NULL. */
const LnlKernelOps *lnl_kernels_find(const char *name);
/* Every lnl_<op> call from now on runs ops's version. */
void lnl_kernels_use(const LnlKernelOps *ops);
/* Uses the backend LNLAB_KERNELS names (unset or empty: cpu). Returns 0, or -1 after one line
 * on stderr, the backend in use unchanged, when it names none. main() calls it at startup. */
int lnl_kernels_use_env(void);

/* ---- matmul: out = inp @ weight^T + bias (PyTorch Linear layout) ---- */
static inline void lnl_matmul_forward(float *out,          /* (N, OC) */
                                      const float *inp,    /* (N, IC) */
                                      const float *weight, /* (OC, IC) */
                                      const float *bias,   /* (OC) or NULL */
                                      int N, int IC, int OC) {
    lnl_kernels_active->matmul_forward(out, inp, weight, bias, N, IC, OC);
}
static inline void lnl_matmul_backward(float *dinp,          /* (N, IC) = dout @ weight (written), or NULL */
                                       float *dweight,       /* (OC, IC) += dout^T @ inp, or NULL */
                                       float *dbias,         /* (OC) += column sums of dout, or NULL */
                                       const float *dout,    /* (N, OC) */
                                       const float *inp,     /* (N, IC) */
                                       const float *weight,  /* (OC, IC) */
                                       int N, int IC, int OC) {
    lnl_kernels_active->matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, IC, OC);
}

/* ---- normalization over the last dim C, times a constant scale ----
 * LayerNorm: out = scale * ((x - mean) * rstd * w + b), rstd = 1/sqrt(var + eps), var biased.
 * RMSNorm:   out = scale * (x * rstd * w),              rstd = 1/sqrt(mean(x^2) + eps).
 * Weights come in G sets: row r uses weight/bias row (r / rep) % G, which lets one call
 * normalize per-head q, k and v with their own gains (G = 3, rep = heads). For one set use
 * G = 1, rep = 1. weight may be NULL (gain 1, no parameter) and bias NULL (no bias; always
 * NULL for RMSNorm). mean is written for LayerNorm only and may be NULL for RMSNorm. */
static inline void lnl_norm_forward(float *out,          /* (N, C) */
                                    float *mean,         /* (N) saved, LayerNorm only */
                                    float *rstd,         /* (N) saved */
                                    const float *inp,    /* (N, C) */
                                    const float *weight, /* (G, C) or NULL */
                                    const float *bias,   /* (G, C) or NULL */
                                    int N, int C, int G, int rep, LnlNormKind kind, float eps, float scale) {
    lnl_kernels_active->norm_forward(out, mean, rstd, inp, weight, bias, N, C, G, rep, kind, eps, scale);
}
static inline void lnl_norm_backward(float *dinp,          /* (N, C) += */
                                     float *dweight,       /* (G, C) += or NULL */
                                     float *dbias,         /* (G, C) += or NULL */
                                     const float *dout,    /* (N, C) */
                                     const float *inp,     /* (N, C) */
                                     const float *weight,  /* (G, C) or NULL */
                                     const float *mean,    /* (N) LayerNorm only */
                                     const float *rstd,    /* (N) */
                                     int N, int C, int G, int rep, LnlNormKind kind, float scale) {
    lnl_kernels_active->norm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C, G, rep, kind,
                                      scale);
}

/* ---- elementwise "norms" with learned scalars, no statistics ----
 * Dynamic Tanh (Zhu et al. 2025): out = scale * (w * tanh(a x) + b).
 * Dynamic erf (Chen et al. 2025):   out = scale * (w * erf(a x + s) + b).
 * a = alpha[g] and s = shift[g] are scalars of weight set g = (r / rep) % G (as lnl_norm_*'s
 * groups); shift is NULL for DyT (s = 0), weight NULL means gain 1, bias NULL no bias. The
 * backward accumulates dalpha (G) and dshift (G) as well (NULL: not needed). */
static inline void lnl_dyn_norm_forward(float *out,          /* (N, C) */
                                        const float *inp,    /* (N, C) */
                                        const float *weight, /* (G, C) or NULL */
                                        const float *bias,   /* (G, C) or NULL */
                                        const float *alpha,  /* (G) */
                                        const float *shift,  /* (G) Derf, or NULL */
                                        int N, int C, int G, int rep, LnlNormKind kind, float scale) {
    lnl_kernels_active->dyn_norm_forward(out, inp, weight, bias, alpha, shift, N, C, G, rep, kind, scale);
}
static inline void lnl_dyn_norm_backward(float *dinp,         /* (N, C) += or NULL */
                                         float *dweight,      /* (G, C) += or NULL */
                                         float *dbias,        /* (G, C) += or NULL */
                                         float *dalpha,       /* (G) += or NULL */
                                         float *dshift,       /* (G) += or NULL */
                                         const float *dout,   /* (N, C) */
                                         const float *inp,    /* (N, C) */
                                         const float *weight, /* (G, C) or NULL */
                                         const float *alpha,  /* (G) */
                                         const float *shift,  /* (G) or NULL */
                                         int N, int C, int G, int rep, LnlNormKind kind, float scale) {
    lnl_kernels_active->dyn_norm_backward(dinp, dweight, dbias, dalpha, dshift, dout, inp, weight, alpha, shift, N, C,
                                          G, rep, kind, scale);
}

/* ---- causal multi-head self-attention on a packed qkv buffer ----
 * qkv rows are [q (C) | k (C) | v (C)], head h owns columns h*hs .. h*hs+hs-1 of each, hs = C/NH.
 * Scores z = q_t . k_t2 / sqrt(hs), capped as s = softcap * tanh(z / softcap) when softcap > 0
 * (Gemma 2's attention-logit softcap; softcap 0: s = z, no cost), then masked and normalized:
 * att[b,h,t,t2] = softmax_t2<=t (s); out[b,t,h*hs+i] = sum_t2 att * v.
 * att is saved for the backward pass; entries with t2 > t are written as 0.
 * rowmax, if not NULL, receives each row's largest logit max_t2<=t z, before the cap (a
 * diagnostic: the softmax finds that maximum anyway, so it costs one store per row; the capped
 * maximum is softcap * tanh(rowmax / softcap), while the raw one keeps growing past the cap). */
static inline void lnl_attention_forward(float *out,       /* (B, T, C) */
                                         float *att,       /* (B, NH, T, T) saved */
                                         float *rowmax,    /* (B, NH, T) or NULL */
                                         const float *qkv, /* (B, T, 3C) */
                                         int B, int T, int C, int NH, float softcap) {
    lnl_kernels_active->attention_forward(out, att, rowmax, qkv, B, T, C, NH, softcap);
}
/* The backward recomputes z where softcap > 0 (for ds/dz = 1 - tanh^2(z / softcap)); the same
 * softcap as the forward. */
static inline void lnl_attention_backward(float *dqkv,       /* (B, T, 3C) += */
                                          float *datt,       /* (B, NH, T, T) scratch, overwritten */
                                          const float *dout, /* (B, T, C) */
                                          const float *qkv,  /* (B, T, 3C) */
                                          const float *att,  /* (B, NH, T, T) */
                                          int B, int T, int C, int NH, float softcap) {
    lnl_kernels_active->attention_backward(dqkv, datt, dout, qkv, att, B, T, C, NH, softcap);
}

/* ---- GELU, tanh approximation (GPT-2): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) ---- */
static inline void lnl_gelu_forward(float *out, const float *inp, size_t n) {
    lnl_kernels_active->gelu_forward(out, inp, n);
}
/* dinp = gelu'(inp) * dout, written; dinp may be dout itself */
static inline void lnl_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    lnl_kernels_active->gelu_backward(dinp, inp, dout, n);
}

/* ---- token + position embedding: out[b,t] = scale * (wte[tok[b,t]] + wpe[t]) ---- */
static inline void lnl_embed_forward(float *out,         /* (B, T, C) */
                                     const int32_t *tok, /* (B, T) */
                                     const float *wte,   /* (V, C) */
                                     const float *wpe,   /* (maxT, C) */
                                     int B, int T, int C, float scale) {
    lnl_kernels_active->embed_forward(out, tok, wte, wpe, B, T, C, scale);
}
static inline void lnl_embed_backward(float *dwte,        /* (V, C) += */
                                      float *dwpe,        /* (maxT, C) += */
                                      const float *dout,  /* (B, T, C) */
                                      const int32_t *tok, /* (B, T) */
                                      int B, int T, int C, float scale) {
    lnl_kernels_active->embed_backward(dwte, dwpe, dout, tok, B, T, C, scale);
}

/* ---- fused softmax + cross-entropy over the vocabulary ----
 * Forward: probs = softmax(logits) per row; losses[i] = -log probs[i, targets[i]].
 * probs may alias logits (computed in place). A target < 0 is ignored: loss 0, no gradient.
 * Backward: dlogits[i] += (probs[i] - onehot(targets[i])) * dloss[i]. */
static inline void lnl_softmax_xent_forward(float *losses,        /* (N) */
                                            float *probs,         /* (N, V) */
                                            const float *logits,  /* (N, V) */
                                            const int32_t *targets, /* (N) */
                                            int N, int V) {
    lnl_kernels_active->softmax_xent_forward(losses, probs, logits, targets, N, V);
}
static inline void lnl_softmax_xent_backward(float *dlogits,       /* (N, V) += */
                                             const float *probs,   /* (N, V) */
                                             const int32_t *targets, /* (N) */
                                             const float *dloss,   /* (N) */
                                             int N, int V) {
    lnl_kernels_active->softmax_xent_backward(dlogits, probs, targets, dloss, N, V);
}

/* ---- cross-entropy over the vocabulary on one (N, V) buffer (what the model runs) ----
 * Forward: per row i, rmax[i] = max_v logits[i, v], inv_z[i] = 1 / sum_v exp(logits[i, v] - rmax[i])
 * and losses[i] = -log softmax(logits[i])[targets[i]] (0 if targets[i] < 0); logits are read only.
 * log Z of row i (Z = sum_v exp logits[i, v], the softmax's normalizer) is lnl_xent_log_z(rmax[i],
 * inv_z[i]).
 * Backward, in place: the buffer holding the logits is overwritten (=, the one gradient not
 * accumulated with +=) with
 *     g[i, v] = (p[i, v] - [v == targets[i]]) * dloss[i] + p[i, v] * dlogz[i],
 *     p[i, v] = exp(logits[i, v] - rmax[i]) inv_z[i],
 * zero for ignored rows: dloss is dLoss/d losses[i] and dlogz (NULL: all 0) dLoss/d log Z of row i
 * beyond the cross-entropy's own (the z-loss's 2 coef log Z / count, src/model/model.c). With
 * softcap S > 0 the buffer holds the capped logits c = S tanh(z / S) (lnl_softcap_forward, in
 * place) and the result is the gradient of their input z: g[i, v] * (1 - (c[i, v] / S)^2), read
 * from c before it is overwritten. So no second (N, V) buffer and no probabilities are kept.
 * With dlogz NULL and softcap 0 the gradient is the same floats lnl_softmax_xent_backward gives
 * (a fast backend's promise: the reference rounds the gradient once, from double). */
static inline void lnl_xent_forward(float *losses,          /* (N) */
                                    float *rmax,            /* (N) saved */
                                    float *inv_z,           /* (N) saved */
                                    const float *logits,    /* (N, V) */
                                    const int32_t *targets, /* (N) */
                                    int N, int V) {
    lnl_kernels_active->xent_forward(losses, rmax, inv_z, logits, targets, N, V);
}
static inline void lnl_xent_backward_inplace(float *logits,          /* (N, V) in: logits; out: dlogits */
                                             const float *rmax,      /* (N) */
                                             const float *inv_z,     /* (N) */
                                             const int32_t *targets, /* (N) */
                                             const float *dloss,     /* (N) */
                                             const float *dlogz,     /* (N) or NULL */
                                             float softcap,          /* S of the capped logits; 0: none */
                                             int N, int V) {
    lnl_kernels_active->xent_backward_inplace(logits, rmax, inv_z, targets, dloss, dlogz, softcap, N, V);
}
/* log Z = log sum_v exp logits[i, v] = rmax - log(inv_z) of one row, from lnl_xent_forward's saved
 * values (the z-loss and the probe's log_z_mean read it). */
static inline double lnl_xent_log_z(float rmax, float inv_z) { return (double)rmax - log((double)inv_z); }

/* ---- logit softcap (Gemma 2): out = cap * tanh(inp / cap), cap > 0; out may alias inp ----
 * Its backward is folded into lnl_xent_backward_inplace (softcap), which reads the capped values. */
static inline void lnl_softcap_forward(float *out, const float *inp, size_t n, float cap) {
    lnl_kernels_active->softcap_forward(out, inp, n, cap);
}

/* ---- AdamW, decoupled weight decay, bias-corrected; t is the 1-based step ----
 * g = gscale * grad (rounded to float, as scaling grad in place first would round it: gradient
 * clipping in the same pass; 1 for none; grad itself is not changed);
 * m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr * ( (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps) + wd * p ). */
static inline void lnl_adamw_update(float *param, const float *grad, float gscale, float *m, float *v, size_t n,
                                    float lr, float beta1, float beta2, float eps, float weight_decay, int t) {
    lnl_kernels_active->adamw_update(param, grad, gscale, m, v, n, lr, beta1, beta2, eps, weight_decay, t);
}

/* ---- elementwise helpers ---- */
/* x = 0 (split among threads: gradients of a large model are hundreds of MB) */
static inline void lnl_zero(float *x, size_t n) {
    lnl_kernels_active->zero(x, n);
}
/* out = a * x + b * y (out may alias x or y). */
static inline void lnl_axpby(float *out, float a, const float *x, float b, const float *y, size_t n) {
    lnl_kernels_active->axpby(out, a, x, b, y, n);
}
/* out += a * x */
static inline void lnl_axpy(float *out, float a, const float *x, size_t n) {
    lnl_kernels_active->axpy(out, a, x, n);
}
/* out[r, c] = s[c] * x[r, c] (per-channel scale, N rows of C). ds (C) += sum_r dout*x if given. */
static inline void lnl_chanscale_forward(float *out, const float *x, const float *s, int N, int C) {
    lnl_kernels_active->chanscale_forward(out, x, s, N, C);
}
static inline void lnl_chanscale_backward(float *dx, float *ds, const float *dout, const float *x, const float *s,
                                          int N, int C) {
    lnl_kernels_active->chanscale_backward(dx, ds, dout, x, s, N, C);
}
/* Sum of squares with double accumulation. */
static inline double lnl_sumsq(const float *x, size_t n) {
    return lnl_kernels_active->sumsq(x, n);
}

/* ---- run-time setup (runtime.c): process-wide, made once by main() before any kernel runs ---- */
/* OpenBLAS picks its kernels when the library loads, from OPENBLAS_CORETYPE or its own CPU
 * detection; Debian's 0.3.21 detects AVX-512 CPUs it does not know (AMD Zen 4/5) as Haswell (AVX2),
 * half the SGEMM speed. On a CPU with AVX-512 (F, BW, VL, DQ), if OPENBLAS_CORETYPE is unset or
 * names another core than SkylakeX/CooperLake/SapphireRapids, this sets OPENBLAS_CORETYPE=SkylakeX
 * and re-executes the program (/proc/self/exe, same argv) once, so the library loads again with
 * the AVX-512 kernels. LNLAB_BLAS_CORETYPE=keep leaves the environment alone; LNLAB_BLAS_CORETYPE=X
 * asks for core type X instead. Returns (without re-executing) when there is nothing to do or on
 * a second call in the re-executed process. Call first thing in main(). */
void lnl_kernels_blas_reexec(char **argv);
/* OPENBLAS_CORETYPE as it was before lnl_kernels_blas_reexec changed it (NULL if unset). */
const char *lnl_kernels_blas_env_orig(void);
/* Threads for the kernels: n > 0 sets OpenMP's team size (else OMP_NUM_THREADS or all cores), and
 * OpenBLAS is set to one thread so that products run inside lnlab's OpenMP threads, one slice each
 * (LNLAB_BLAS_THREADS=own keeps OpenBLAS's own threads instead). It then sets the subnormal mode
 * below in every thread: IEEE (kept), or flushed with LNLAB_DENORMALS=flush. */
void lnl_kernels_set_threads(int n);
/* Subnormal floats (|x| < 1.18e-38): flush = 1 sets x86-64's FTZ and DAZ bits (MXCSR) in the
 * calling thread and in every thread of the OpenMP pool (one parallel region; threads OpenMP
 * makes later are made by this thread and inherit its mode), so subnormal results become 0 and
 * subnormal inputs read as 0; flush = 0 restores IEEE gradual underflow. OpenBLAS's own threads
 * (LNLAB_BLAS_THREADS=own) are not reached. Returns 0, or -1 for flush = 1 where there is no such
 * mode (not x86-64). Off by default: it bought no speed on the machine measured and changes when a
 * blown-up run turns non-finite (docs/PERFORMANCE.md, "Subnormal numbers"). */
int lnl_kernels_set_denormals(int flush);
/* 1 if the calling thread flushes subnormals (FTZ and DAZ both set). */
int lnl_kernels_denormals_flushed(void);
int lnl_kernels_threads(void);
/* The thread count that follows the machine's load. Every op gives the same bits on any number of
 * threads (kernels.c; tests/cli/test_threads.sh checks whole runs), so a run may use fewer threads
 * when other processes take its CPUs, and more again when they leave, without changing a number.
 * OpenMP threads that wait for a partner descheduled by another busy process cost a scheduler time
 * slice per parallel region (2.5-40x slower); one thread fewer costs nothing of the kind.
 * lnl_kernels_adapt_begin(on) records the thread count set now as the most to use (on = 0, or one
 * thread, or no /proc/stat: adaptation stays off); lnl_kernels_adapt(), called between training
 * steps, measures the other processes' CPU use on this process's CPUs every half second (from
 * /proc/stat, less this process's own CPU time) and, when two measurements in a row agree, uses
 * the CPUs they leave free (rounded, at least 1, at most the recorded count). It returns the
 * thread count in use. lnl_kernels_adapt_end() restores the recorded count. docs/PERFORMANCE.md,
 * "Waiting threads", has the measurements behind it. */
void lnl_kernels_adapt_begin(int on);
int lnl_kernels_adapt(void);
void lnl_kernels_adapt_end(void);
/* bf16 mode (off by default; LNLAB_BF16=1 in the environment turns it on at startup): every
 * lnl_matmul_* product rounds its two inputs to bfloat16 and accumulates in fp32 (AVX512-BF16),
 * about twice the fp32 rate; parameters, gradients, optimizer state, attention, norms and the loss
 * stay fp32 (fp32 master weights). Needs a CPU and a build with AVX512-BF16. Returns 0, or -1 if
 * not available (the mode then stays off). Allocates one workspace per thread; call it after
 * lnl_kernels_set_threads, and lnl_kernels_set_bf16(0) frees them. */
int lnl_kernels_set_bf16(int on);
int lnl_kernels_bf16(void);
/* The BLAS in use, its kernels and threading, for reports. */
const char *lnl_kernels_blas_name(void);

/* ---- decoding (generation); forward only, one plain version so far (attention_decode.c) ---- */

/* Attention of one new position over the npos cached positions 0..npos-1 (the new one
 * included, stored last): out[h*hs+i] = sum_t softmax_t(s_t) v_t,h[i], s_t the score
 * q_h . k_t,h / sqrt(hs) capped as in lnl_attention_forward. Equals row npos-1 of
 * lnl_attention_forward on the same q, k, v and softcap. */
static inline void lnl_attention_decode(float *out,          /* (C) */
                                        float *scores,       /* (npos) scratch, overwritten */
                                        const float *q,      /* (C) the new position's query, heads packed as in qkv */
                                        const float *kcache, /* (npos, C) */
                                        const float *vcache, /* (npos, C) */
                                        int npos, int C, int NH, float softcap) {
    lnl_kernels_active->attention_decode(out, scores, q, kcache, vcache, npos, C, NH, softcap);
}

#endif
