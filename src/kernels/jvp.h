/* Forward-mode (tangent, "JVP") versions of the ops in kernels.h: given the forward's input and
 * saved values and a tangent dx of the input, each computes the tangent of the output,
 * dy = (dy/dx) dx, exactly (not by finite differences). Parameters are held fixed: they get no
 * tangent. Used by the local-sensitivity estimate (src/diag/sensitivity.h).
 *
 * Conventions: outputs are written with `=` (unlike backward, nothing accumulates); shapes as
 * in kernels.h; the tangent of an op whose Jacobian is symmetric up to a diagonal (norm, GELU)
 * is computed through the same row math as its backward, so the two cannot drift apart.
 * Linear ops with a kernels.h forward (matmul without bias, chanscale, axpby) are their own
 * tangent: call the forward on the tangent.
 */
#ifndef LNL_JVP_H
#define LNL_JVP_H

#include <stddef.h>

#include "kernels.h"

/* dout = dinp @ weight^T (the bias has no tangent). */
void lnl_matmul_jvp(float *dout,         /* (N, OC) */
                    const float *dinp,   /* (N, IC) */
                    const float *weight, /* (OC, IC) */
                    int N, int IC, int OC);

/* Tangent of lnl_norm_forward at inp with the saved mean (LayerNorm) and rstd, same G/rep weight
 * groups and scale: dout = scale * w * rstd * (dx - mean(dx) - xhat * mean(xhat * dx)), without
 * the mean(dx) term for RMSNorm; xhat = (x - mean) * rstd. weight may be NULL (gain 1). */
void lnl_norm_jvp(float *dout,         /* (N, C) */
                  const float *dinp,   /* (N, C) */
                  const float *inp,    /* (N, C) the forward's input */
                  const float *weight, /* (G, C) or NULL */
                  const float *mean,   /* (N) LayerNorm only */
                  const float *rstd,   /* (N) */
                  int N, int C, int G, int rep, LnlNormKind kind, float scale);

/* Tangent of lnl_dyn_norm_forward in its input: dout = scale * w * phi'(a x + s) * a * dinp. */
void lnl_dyn_norm_jvp(float *dout, const float *dinp, const float *inp, const float *weight, const float *alpha,
                      const float *shift, int N, int C, int G, int rep, LnlNormKind kind, float scale);

/* Tangent of lnl_attention_forward at qkv with its saved probabilities att and the same softcap:
 * with Z = q k^T / sqrt(hs) (causal) and S = softcap * tanh(Z / softcap) (S = Z for softcap 0),
 * dS = (1 - tanh^2(Z / softcap)) * (dq k^T + q dk^T) / sqrt(hs),
 * dA = A * (dS - rowsum(A * dS)), dout = dA v + A dv, per head. */
void lnl_attention_jvp(float *dout,       /* (B, T, C) */
                       const float *dqkv, /* (B, T, 3C) */
                       const float *qkv,  /* (B, T, 3C) */
                       const float *att,  /* (B, NH, T, T) */
                       int B, int T, int C, int NH, float softcap);

/* dout = gelu'(inp) * dinp (elementwise). */
void lnl_gelu_jvp(float *dout, const float *inp, const float *dinp, size_t n);

#endif
