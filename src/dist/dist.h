/* Data parallelism's communication: collectives on buffers (floats, doubles, longs, int32 rows)
 * among the processes of one MPI job (ranks). It knows nothing of models or optimizers: the
 * training loop (src/train/train.c) and ZeRO-1 (src/train/zero.h) say which buffers move. Built
 * over MPI when mk/build.mk finds it (LNL_HAVE_MPI) and used only when an MPI launcher started
 * the process; otherwise this is the single-process case, rank 0 of 1, where every collective is
 * the identity. Not a transport: all communication is MPI's. Launching and scaling:
 * docs/DISTRIBUTED.md.
 *
 * A NULL LnlDist * is accepted everywhere and means rank 0 of 1, so library callers that know
 * nothing of MPI (tests, lnlab study) pass NULL.
 *
 * What the ranks agree on, and how (the callers, in src/train/train.c):
 *   data:   rank r of n reads rows [r*B, r*B + B) of each global batch of n*B rows
 *           (lnl_loader_split), so step k sees the batch one process with batch n*B sees;
 *   init:   the same seed gives the same weights, and rank 0's parameters are broadcast anyway
 *           (lnl_dist_bcast_floats), which also covers --init-from and Admin's profiling pass
 *           (run on the global batch, gathered with lnl_dist_allgather_i32);
 *   grads:  averaged over ranks after the micro-batches of a step (lnl_dist_allreduce_mean_floats);
 *   update: every rank runs the same AdamW step on the same gradients; with ZeRO-1 each rank
 *           updates its shard of the parameters with its shard of the moments and the shards
 *           are gathered (lnl_dist_allgather_shards, from src/train/zero.c);
 *   output: rank 0 writes files and prints; losses are averaged over ranks first; whether it
 *           could set up RUN/ and write each checkpoint, the model and result.json reaches every
 *           rank (lnl_dist_root_rc); at the end the parameters are checked bit-identical on
 *           every rank (lnl_dist_check_same_floats). */
#ifndef LNL_DIST_H
#define LNL_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "../common/util.h"

/* Floats per MPI call of the float collectives on long buffers (lnl_dist_bcast_floats,
 * lnl_dist_allreduce_mean_floats): bounds MPI's internal buffers and keeps every count within an int. */
#define LNL_DIST_BUCKET_FLOATS ((size_t)1 << 22)
/* The most elements of one call that cannot be split into buckets (lnl_dist_allgather_i32's
 * block, the whole buffer of the shard collectives): MPI's counts and offsets are ints. */
#define LNL_DIST_MAX_COUNT 2147483647

typedef struct {
    int rank, size;
    int mpi;              /* this process called MPI_Init; lnl_dist_free finalizes */
    int zero;             /* the caller's request for ZeRO-1 (src/train/zero.h); nothing here reads it */
    int *counts, *displs; /* (size) scratch of the shard collectives, allocated by lnl_dist_init */
    int failed_together;  /* lnl_dist_root_rc reported a failure: every rank is stopping on it */
    /* measurements */
    double comm_s;        /* wall seconds in the per-step communication: lnl_dist_allreduce_mean_floats
                             (gradients) and lnl_dist_allgather_shards (ZeRO's parameters) */
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

/* Rank 0's x (n floats) to every rank, in pieces of LNL_DIST_BUCKET_FLOATS. */
void lnl_dist_bcast_floats(LnlDist *d, float *x, size_t n);
/* x (n floats) summed over ranks and divided by the number of ranks, in place on every rank, in
 * buckets of LNL_DIST_BUCKET_FLOATS. Counts in comm_s. */
void lnl_dist_allreduce_mean_floats(LnlDist *d, float *x, size_t n);
/* x holds size blocks of `each` values (each <= LNL_DIST_MAX_COUNT), one per rank in rank order;
 * every rank fills its own block and gets everyone's, in place. */
void lnl_dist_allgather_i32(LnlDist *d, int32_t *x, size_t each);
/* Checks that every rank holds bit-identical x (n floats; a 64-bit hash compared over ranks);
 * the error says "ranks hold different <what>". */
int lnl_dist_check_same_floats(LnlDist *d, const float *x, size_t n, const char *what, LnlErr *e);

/* Shards: a buffer of n elements split over the ranks in rank order, ceil(n/size) elements each
 * (the last shards shorter or empty). Rank r's shard is [*lo, *hi). */
void lnl_dist_shard(const LnlDist *d, int r, size_t n, size_t *lo, size_t *hi);
/* x (n floats, n <= LNL_DIST_MAX_COUNT) with this rank's shard filled in: every rank's shard to
 * every rank, in place. Counts in comm_s. */
void lnl_dist_allgather_shards(LnlDist *d, float *x, size_t n);
/* This rank's shard `mine` (its hi - lo floats) to rank 0's x (n floats); x is ignored on the
 * other ranks (NULL will do). */
void lnl_dist_gather_shards(LnlDist *d, const float *mine, float *x, size_t n);

#endif
