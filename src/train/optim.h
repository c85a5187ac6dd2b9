/* The optimizer step: global-norm gradient clipping, then AdamW on every tensor view, with
 * weight decay only on the views flagged `decay` in the tensor table (matrices, embeddings). */
#ifndef LNL_OPTIM_H
#define LNL_OPTIM_H

#include "../model/model.h"

typedef struct {
    float beta1, beta2, eps, weight_decay;
    float grad_clip; /* max global grad norm; <= 0 disables clipping */
} LnlAdamW;

typedef struct {
    float *m, *v; /* (num_alloc) moments, laid out like the parameters */
    size_t n;
    long step; /* number of updates applied so far */
} LnlOptState;

void lnl_opt_init(LnlOptState *o, const LnlModel *model);
void lnl_opt_free(LnlOptState *o);
/* Clips and updates with learning rate lr; returns the gradient norm before clipping. If that
 * norm is not finite nothing is changed (the caller decides what a non-finite step means). */
double lnl_opt_step(LnlOptState *o, LnlModel *model, const LnlAdamW *h, float lr);
/* The same with the gradient norm already computed (lnl_model_grad_norm of the current grads). */
double lnl_opt_step_norm(LnlOptState *o, LnlModel *model, const LnlAdamW *h, float lr, double norm);
/* lnl_opt_step_norm on the parameters [lo, hi) of the allocation alone, with their moments in
 * m, v ((hi - lo) floats each, m[0] is parameter lo's; o->m, o->v are not read): each element
 * gets the same operations as in the whole step. ZeRO-1's update of its shard (zero.h). */
double lnl_opt_step_range(LnlOptState *o, LnlModel *model, const LnlAdamW *h, float lr, double norm, size_t lo,
                          size_t hi, float *m, float *v);

#endif
