/* Local sensitivity of a block: the spectral norm of J_l = d x_l / d x_{l-1}, the Jacobian of the
 * residual stream leaving block l with respect to the stream entering it, over the whole batch of
 * the model's last forward ((B*T*C) x (B*T*C); tokens mix through attention). Estimated by power
 * iteration on J^T J with exact products: J v by forward-mode tangents through the block
 * (lnl_block_jvp: block.c's tangent pass, beside the forward and backward it differentiates), J^T u by the block's backward
 * without parameter gradients (lnl_model_block_vjp). Not finite differences.
 *
 * The b2t path counts: its added input is the block input x_{l-1} itself, so J includes it.
 * Nothing here changes the model's parameters, parameter gradients or saved activations (the
 * backward scratch buffers d_* are reused). */
#ifndef LNL_SENSITIVITY_H
#define LNL_SENSITIVITY_H

#include <stdint.h>

#include "../model/block.h"
#include "../model/model.h"

/* Scratch for tangents and power-iteration vectors, sized for the model's current B x T.
 * Explicit init/free; reallocate after lnl_model_alloc_acts changes B or T. */
typedef struct {
    size_t n;                   /* B*T*C */
    float *mem;                 /* one allocation for everything below */
    float *v, *jv, *jtjv;       /* (N, C) power iteration */
    LnlBlockTangent t;          /* the tangent pass's buffers (block.h) */
} LnlSensWork;

void lnl_sens_work_init(LnlSensWork *w, const LnlModel *m);
void lnl_sens_work_free(LnlSensWork *w);

/* Tangent of block l (0-based) at the last forward's activations: out = J_l v, (N, C) each.
 * v and out must be distinct from the work buffers above (w->v, w->jv, w->jtjv are fine). */
void lnl_block_jvp(const LnlModel *m, LnlSensWork *w, int l, const float *v, float *out);

typedef struct {
    double sigma;      /* ||J v|| for the final unit vector v: a lower bound of sigma_max */
    double rel_change; /* |sigma - previous iteration's estimate| / sigma: convergence hint */
} LnlSensResult;

/* Power iteration for block l: v0 = seeded standard normal (seed and l pick the stream),
 * normalized; `iters` times v <- J^T J v / ||J^T J v||; sigma = ||J v||. Costs iters + 1 tangent
 * passes and iters backward passes of one block. A zero J gives sigma 0. */
LnlSensResult lnl_block_sensitivity(LnlModel *m, LnlSensWork *w, int l, int iters, uint64_t seed);

#endif
