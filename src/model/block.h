/* The block equations of spec.h, written once: the forward, the backward and the tangent
 * (forward-mode, for the sensitivity) of one sub-layer, side by side in block.c, all three reading
 * the sub-layer's weights through one view (LnlSubView, filled from the tensor table LNL_PARAMS)
 * and its saved activations (LnlSubActs). model.c runs them for training and decoding,
 * diag/sensitivity.c for the Jacobian of a block. A new step of the block equations is written
 * here three times, next to each other, and nowhere else. */
#ifndef LNL_BLOCK_H
#define LNL_BLOCK_H

#include "model.h"

/* Layer l's (0-based) view of sub-layer sidx (LNL_ATTN or LNL_MLP) into P (m->p for weights,
 * m->g for their gradients). F's biases are NULL in a sub-layer without biases (the role may
 * still exist for other layers), so the kernels add none and accumulate no gradient. */
LnlSubView lnl_sub_view(const LnlModel *m, const LnlParams *P, int l, int sidx);

/* One normalization's weights and their gradients: gain w (or the w of 1 + w), bias b, DyT's and
 * Derf's scalar a, Derf's scalar s; NULL where the kind or the site has none. */
typedef struct {
    const float *w, *b, *a, *s;
} LnlNormW;
typedef struct {
    float *w, *b, *a, *s;
} LnlNormG;

/* A norm of the model (config's kind and gain) at one site, G weight sets of C each, as
 * lnl_norm_* (LayerNorm, RMSNorm: mean and rstd saved) or lnl_dyn_norm_* (DyT, Derf: mean and
 * rstd unused) computes it; the one-plus gain passes 1 + w to the kernel and its gradient is w's.
 * The backward accumulates dx and the gradients g (NULL fields skipped); the tangent writes
 * dout. Used for every norm of the block and for ln_e and ln_f. */
void lnl_site_norm_forward(const LnlModel *m, float *out, float *mean, float *rstd, const float *x, LnlNormW p, int N,
                           int C, int G, int rep, float scale);
void lnl_site_norm_backward(const LnlModel *m, float *dx, LnlNormG g, const float *dout, const float *x, LnlNormW p,
                            const float *mean, const float *rstd, int N, int C, int G, int rep, float scale);
void lnl_site_norm_tangent(const LnlModel *m, float *dout, const float *dx, const float *x, LnlNormW p,
                           const float *mean, const float *rstd, int N, int C, int G, int rep, float scale);

/* One pass through the blocks: where its activations live and how attention sees the past. */
typedef struct {
    float **stream;  /* (2L+1) pointers to (B*T, C) */
    LnlSubActs *sub; /* (2L) */
    int B, T;        /* B sequences of T rows */
    int pos;         /* -1: causal attention over the pass's own T rows (training forward). >= 0:
                      * decode, row b*T + t is position pos + t of stream b, attending over its cache */
    float *vars;     /* (2L) Admin's profiling: variance of each branch output, or NULL */
} LnlPass;

/* Forward of sub-layer k = 2l + sidx: reads P->stream[k] (and P->stream[2l] for b2t), writes the
 * sub-layer's activations and P->stream[k+1]. */
void lnl_sub_forward(LnlModel *m, const LnlPass *P, int l, int sidx);

/* Backward of sub-layer k at the training activations (m->sub, m->stream): dout = dLoss/d
 * stream[k+1]; accumulates dLoss/d stream[k] into din and, for b2t, dLoss/d (block input) into
 * dblock. Parameter gradients accumulate into m->g only if param_grads (a vector-Jacobian product
 * alone leaves them untouched). Uses the backward scratch m->d_*. */
void lnl_sub_backward(LnlModel *m, int l, int sidx, const float *dout, float *din, float *dblock, int param_grads);

/* Buffers of the tangent pass through one block, for a batch of N = B*T rows. */
typedef struct {
    float *t_mid;                  /* (N, C) tangent of the stream between the two sub-layers */
    float *t_u, *t_f, *t_f2, *t_r; /* (N, C) */
    float *t_qkv, *t_qkvn;         /* (N, 3C) */
    float *t_atty;                 /* (N, C) */
    float *t_fch, *t_gelu;         /* (N, 4C) */
} LnlBlockTangent;
/* Floats the buffers need for n = N*C (the caller allocates them), and placing them in mem. */
size_t lnl_block_tangent_floats(size_t n);
void lnl_block_tangent_place(LnlBlockTangent *w, float *mem, size_t n);

/* Tangent of block l (0-based) at the last forward's activations: out = (d stream[2l+2] /
 * d stream[2l]) v, (N, C) each, the b2t path included. v and out must be distinct from w's
 * buffers. */
void lnl_block_tangent(const LnlModel *m, const LnlBlockTangent *w, int l, const float *v, float *out);

#endif
