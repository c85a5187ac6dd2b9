/* ZeRO-1: the AdamW moments sharded over the ranks of an MPI job (dist.h). Each rank keeps 2/n
 * floats of moments per parameter instead of 2, updates its shard of the parameters with them and
 * gathers the others' shards; the result is lnl_opt_step_norm's, bit for bit. Not the data
 * parallelism itself (gradients are averaged by the training loop) and no transport (dist.h). */
#ifndef LNL_ZERO_H
#define LNL_ZERO_H

#include "../dist/dist.h"
#include "../model/model.h"
#include "optim.h"

typedef struct {
    LnlDist *dist; /* the ranks the moments are sharded over (NULL: one process) */
    size_t lo, hi; /* this rank's shard of the parameter allocation (lnl_dist_shard) */
    float *m, *v;  /* (hi - lo) this rank's AdamW moments; NULL until lnl_zero_init */
} LnlZero;

/* Shards o's moments over d's ranks: takes this rank's shard of o->m, o->v (zeros for a fresh run,
 * the saved moments after a resume), then frees them (o->m = o->v = NULL; o->n and o->step stay). */
int lnl_zero_init(LnlZero *z, LnlDist *d, LnlOptState *o, const LnlModel *m, LnlErr *e);
void lnl_zero_free(LnlZero *z);
/* Initialized: the moments are sharded. */
static inline int lnl_zero_on(const LnlZero *z) { return z && z->m; }
/* lnl_opt_step_norm with sharded moments: the gradients must be averaged over the ranks and norm
 * must be their global norm. Clips, updates this rank's shard of the parameters with o->step + 1,
 * then gathers every shard (lnl_dist_allgather_shards). Non-finite norm: nothing changes.
 * Returns norm. */
double lnl_zero_step(LnlZero *z, LnlOptState *o, LnlModel *m, const LnlAdamW *h, float lr, double norm);
/* Around a checkpoint (a collective: every rank calls both): gathers every shard into full
 * moments o->m, o->v on rank 0, as a single process has them; release frees them again. Both
 * do nothing unless lnl_zero_on(z). */
void lnl_zero_gather(LnlZero *z, LnlOptState *o);
void lnl_zero_release(LnlZero *z, LnlOptState *o);

#endif
