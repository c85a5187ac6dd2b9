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
    return lnl_opt_step_range(o, model, h, lr, norm, 0, model->num_alloc, o->m, o->v);
}

double lnl_opt_step_range(LnlOptState *o, LnlModel *model, const LnlAdamW *h, float lr, double norm, size_t lo,
                          size_t hi, float *m, float *v) {
    if (!isfinite(norm)) return norm;
    /* clipping scales the gradient inside the update's pass; the stored gradients stay as
     * they were (nothing reads them after the step) */
    const float s = h->grad_clip > 0 && norm > h->grad_clip ? (float)(h->grad_clip / norm) : 1.0f;
    o->step++;
    for (int i = 0; i < model->nviews; i++) {
        const LnlTensorView *t = &model->views[i];
        size_t a = t->offset > lo ? t->offset : lo;
        size_t b = t->offset + t->numel < hi ? t->offset + t->numel : hi;
        if (a >= b) continue;
        lnl_adamw_update(model->params_mem + a, model->grads_mem + a, s, m + (a - lo), v + (a - lo), b - a, lr,
                         h->beta1, h->beta2, h->eps, t->decay ? h->weight_decay : 0.0f, (int)o->step);
    }
    return norm;
}
