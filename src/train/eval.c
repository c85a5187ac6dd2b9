/* Mean loss over a loader's batches (see eval.h). */
#include "eval.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>

double lnl_eval_loss(LnlModel *m, LnlLoader *l, long max_batches, LnlEvalResult *r) {
    const int B = l->B, T = l->T;
    assert(m->acts_mem && B <= m->B && T <= m->T);
    uint64_t avail = lnl_loader_num_batches(l);
    uint64_t nb = max_batches < 0 || (uint64_t)max_batches > avail ? avail : (uint64_t)max_batches;
    int32_t *in = lnl_malloc((size_t)B * T * sizeof(int32_t)), *tg = lnl_malloc((size_t)B * T * sizeof(int32_t));
    lnl_loader_reset(l);
    double sum = 0;
    for (uint64_t k = 0; k < nb; k++) {
        lnl_loader_next(l, in, tg);
        sum += lnl_model_forward(m, in, tg, B, T);
    }
    free(in);
    free(tg);
    double loss = nb ? sum / (double)nb : NAN;
    if (r) {
        r->loss = loss;
        r->batches = (long)nb;
        r->tokens = nb * (uint64_t)B * (uint64_t)T;
    }
    return loss;
}
