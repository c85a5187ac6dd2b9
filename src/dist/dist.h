/* Data parallelism: the processes of one MPI job (ranks) each train on their rows of every
 * batch and keep identical models by averaging gradients (MPI_Allreduce). Built over MPI when
 * mk/build.mk finds it (LNL_HAVE_MPI) and used only when an MPI launcher started the process;
 * otherwise this is the single-process case, rank 0 of 1, where every collective is the
 * identity. Not a transport: all communication is MPI's. Launching and scaling: docs/DISTRIBUTED.md.
 *
 * A NULL LnlDist * is accepted everywhere and means rank 0 of 1, so library callers that know
 * nothing of MPI (tests, lnlab study) pass NULL.
 *
 * What the ranks agree on, and how:
 *   data:   rank r of n reads rows [r*B, r*B + B) of each global batch of n*B rows
 *           (lnl_loader_split), so step k sees the batch one process with batch n*B sees;
 *   init:   the same seed gives the same weights, and rank 0's parameters are broadcast anyway
 *           (lnl_dist_sync_params), which also covers --init-from and Admin's profiling pass;
 *   grads:  averaged over ranks after the micro-batches of a step (lnl_dist_reduce_grads);
 *   update: every rank runs the same AdamW step on the same gradients; with ZeRO-1 each rank
 *           updates its share of the parameters with its share of the moments and the shares
 *           are gathered (lnl_dist_zero_step);
 *   output: rank 0 writes files and prints; losses are averaged over ranks first; whether it
 *           could set up RUN/ and write each checkpoint, the model and result.json reaches every
 *           rank (lnl_dist_root_rc). */
#ifndef LNL_DIST_H
#define LNL_DIST_H

#include <stddef.h>

#include "../common/util.h"
#include "../data/loader.h"
#include "../model/model.h"
#include "../train/optim.h"

/* Floats per MPI_Allreduce call on the gradients: bounds MPI's internal buffers and keeps every
 * count within an int. */
#define LNL_DIST_BUCKET_FLOATS ((size_t)1 << 22)

typedef struct {
    int rank, size;
    int mpi;              /* this process called MPI_Init; lnl_dist_free finalizes */
    /* ZeRO-1 (lnl_dist_zero_init): this rank owns parameters [lo, hi) of the allocation */
    int zero;
    size_t lo, hi;
    int *counts, *displs; /* (size) every rank's share, in floats */
    float *zm, *zv;       /* (hi - lo) this rank's AdamW moments */
    int failed_together;  /* lnl_dist_root_rc reported a failure: every rank is stopping on it */
    /* measurements */
    double comm_s;        /* wall seconds in the per-step communication (gradients, ZeRO's gather) */
} LnlDist;

/* Built with MPI? */
int lnl_dist_have_mpi(void);
/* Processes the launcher says this job has (OMPI_COMM_WORLD_SIZE, PMI_SIZE, or 1 for a PMIx
 * launch without a size), or 0 if no MPI launcher started this process. */
int lnl_dist_launched(void);
/* Joins the MPI job if an MPI launcher started this process (MPI_Init; plain runs never touch
 * MPI), else rank 0 of 1. Fails if a launcher asks for several processes but lnlab was built
 * without MPI (they would all train alone and write the same files). */
int lnl_dist_init(LnlDist *d, LnlErr *e);
void lnl_dist_free(LnlDist *d);
/* Removes the launcher's variables that lnl_dist_launched reads from this process's
 * environment, so that child processes (lnlab study's runs) start as plain processes; call it
 * after lnl_dist_init. */
void lnl_dist_hide_launcher(void);

static inline int lnl_dist_rank(const LnlDist *d) { return d ? d->rank : 0; }
static inline int lnl_dist_size(const LnlDist *d) { return d ? d->size : 1; }
static inline int lnl_dist_is_root(const LnlDist *d) { return lnl_dist_rank(d) == 0; }

/* Mean of x over ranks (every rank gets it). */
double lnl_dist_mean(LnlDist *d, double x);
/* Largest x over ranks: an error code or a flag one rank raised reaches all of them. */
long lnl_dist_max(LnlDist *d, long x);
/* Sum of x over ranks. */
long lnl_dist_sum(LnlDist *d, long x);
/* Waits for every rank. */
void lnl_dist_barrier(LnlDist *d);
/* rc as rank 0 passed it, on every rank. For what rank 0 alone does (writing files): every rank
 * calls it right after, before the next collective, so that a failure on rank 0 stops them all
 * instead of leaving the others waiting in that collective for a rank that has quit. A failure
 * sets d->failed_together. */
int lnl_dist_root_rc(LnlDist *d, int rc);

/* Rank 0's parameters to every rank. */
void lnl_dist_sync_params(LnlDist *d, LnlModel *m);
/* Sum of the gradients over ranks divided by the number of ranks, in buckets of
 * LNL_DIST_BUCKET_FLOATS, in place on m->grads_mem. */
void lnl_dist_reduce_grads(LnlDist *d, LnlModel *m);
/* Checks that every rank holds bit-identical parameters (a 64-bit hash compared over ranks). */
int lnl_dist_check_params(LnlDist *d, const LnlModel *m, LnlErr *e);

/* Admin's profiling pass on the first global batch (n*B rows, gathered from the ranks' loaders)
 * so that its omegas equal a single process's; then rewinds the loader. Reallocates the model's
 * activations for n*B rows for that one forward and back to B x T. */
int lnl_dist_admin_profile(LnlDist *d, LnlModel *m, LnlLoader *train, int B, int T, LnlErr *e);

/* ZeRO-1: shards the AdamW moments over ranks: each rank keeps 2/n floats per parameter
 * instead of 2, in d->zm, d->zv; parameters [lo, hi) of the allocation belong to this rank.
 * Takes this rank's share of o->m, o->v (zeros for a fresh run, the saved moments after a
 * resume), then frees them (o->m = o->v = NULL; o->n and o->step stay). */
int lnl_dist_zero_init(LnlDist *d, LnlOptState *o, const LnlModel *m, LnlErr *e);
/* lnl_opt_step_norm with sharded moments: the gradients must be reduced (lnl_dist_reduce_grads)
 * and norm must be their global norm. Clips, updates this rank's share of the parameters with
 * o->step + 1, then gathers every share (MPI_Allgatherv). Non-finite norm: nothing changes.
 * Returns norm. */
double lnl_dist_zero_step(LnlDist *d, LnlOptState *o, LnlModel *m, const LnlAdamW *h, float lr, double norm);
/* Around a checkpoint (a collective: every rank calls both): gathers every share into full
 * moments o->m, o->v on rank 0, as a single process has them; release frees them again. Both
 * do nothing without ZeRO. */
void lnl_dist_zero_gather(LnlDist *d, LnlOptState *o);
void lnl_dist_zero_release(LnlDist *d, LnlOptState *o);

#endif
