/* ZeRO-1's sharded AdamW step (zero.h) over dist's shard collectives. */
#include "zero.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int lnl_zero_init(LnlZero *z, LnlDist *d, LnlOptState *o, const LnlModel *m, LnlErr *e) {
    memset(z, 0, sizeof *z);
    if (m->num_alloc > LNL_DIST_MAX_COUNT)
        return lnl_err(e, "--zero: %zu floats of parameters exceed MPI's int offsets (%d)", m->num_alloc,
                       LNL_DIST_MAX_COUNT);
    z->dist = d;
    lnl_dist_shard(d, lnl_dist_rank(d), m->num_alloc, &z->lo, &z->hi);
    const size_t k = z->hi - z->lo;
    z->m = lnl_calloc(k ? k : 1, sizeof(float));
    z->v = lnl_calloc(k ? k : 1, sizeof(float));
    memcpy(z->m, o->m + z->lo, k * sizeof(float));
    memcpy(z->v, o->v + z->lo, k * sizeof(float));
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
    return 0;
}

void lnl_zero_free(LnlZero *z) {
    free(z->m);
    free(z->v);
    memset(z, 0, sizeof *z);
}

double lnl_zero_step(LnlZero *z, LnlOptState *o, LnlModel *m, const LnlAdamW *h, float lr, double norm) {
    lnl_opt_step_range(o, m, h, lr, norm, z->lo, z->hi, z->m, z->v);
    if (isfinite(norm)) lnl_dist_allgather_shards(z->dist, m->params_mem, m->num_alloc);
    return norm;
}

void lnl_zero_gather(LnlZero *z, LnlOptState *o) {
    if (!lnl_zero_on(z)) return;
    if (lnl_dist_is_root(z->dist)) {
        o->m = lnl_malloc(o->n * sizeof(float));
        o->v = lnl_malloc(o->n * sizeof(float));
    }
    lnl_dist_gather_shards(z->dist, z->m, o->m, o->n);
    lnl_dist_gather_shards(z->dist, z->v, o->v, o->n);
}

void lnl_zero_release(LnlZero *z, LnlOptState *o) {
    if (!lnl_zero_on(z)) return;
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}
