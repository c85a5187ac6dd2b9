/* Global-norm clipping and AdamW over the model's tensor views. */
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/kernels.h"

void lnl_opt_init(LnlOptState *o, const LnlModel *model) {
    o->n = model->num_alloc;
    o->m = lnl_calloc(o->n, sizeof(float));
    o->v = lnl_calloc(o->n, sizeof(float));
    o->step = 0;
}

void lnl_opt_free(LnlOptState *o) {
    free(o->m);
    free(o->v);
    memset(o, 0, sizeof *o);
}

double lnl_opt_step(LnlOptState *o, LnlModel *model, const LnlAdamW *h, float lr) {
    return lnl_opt_step_norm(o, model, h, lr, lnl_model_grad_norm(model));
}

double lnl_opt_step_norm(LnlOptState *o, LnlModel *model, const LnlAdamW *h, float lr, double norm) {
    if (!isfinite(norm)) return norm;
    /* clipping scales the gradient inside the update's pass; the stored gradients stay as
     * they were (nothing reads them after the step) */
    const float s = h->grad_clip > 0 && norm > h->grad_clip ? (float)(h->grad_clip / norm) : 1.0f;
    o->step++;
    for (int i = 0; i < model->nviews; i++) {
        const LnlTensorView *v = &model->views[i];
        lnl_adamw_update(model->params_mem + v->offset, model->grads_mem + v->offset, s, o->m + v->offset,
                         o->v + v->offset, v->numel, lr, h->beta1, h->beta2, h->eps, v->decay ? h->weight_decay : 0.0f,
                         (int)o->step);
    }
    return norm;
}
