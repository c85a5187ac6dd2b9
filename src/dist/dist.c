/* Data parallelism over MPI (dist.h). Without LNL_HAVE_MPI, or in a process no MPI launcher
 * started, size is 1 and every collective below returns before its MPI part. */
#include "dist.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/kernels.h"

#ifdef LNL_HAVE_MPI
#include <mpi.h>
#endif

int lnl_dist_have_mpi(void) {
#ifdef LNL_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

static int env_int(const char *name) {
    const char *s = getenv(name);
    if (!s || !*s) return -1;
    char *end;
    long v = strtol(s, &end, 10);
    return *end || v < 0 || v > INT_MAX ? -1 : (int)v;
}

/* OpenMPI's mpirun sets OMPI_COMM_WORLD_SIZE; MPICH's Hydra and srun --mpi=pmi2 set PMI_SIZE;
 * srun --mpi=pmix sets PMIX_RANK (the size then comes from SLURM). */
int lnl_dist_launched(void) {
    int n = env_int("OMPI_COMM_WORLD_SIZE");
    if (n > 0) return n;
    n = env_int("PMI_SIZE");
    if (n > 0) return n;
    if (getenv("PMIX_RANK") || getenv("PMI_RANK")) {
        n = env_int("SLURM_STEP_NUM_TASKS");
        if (n <= 0) n = env_int("SLURM_NTASKS");
        if (n <= 0) n = env_int("PMIX_RANK") > 0 || env_int("PMI_RANK") > 0 ? 2 : 1;
        return n;
    }
    return 0;
}

int lnl_dist_init(LnlDist *d, LnlErr *e) {
    memset(d, 0, sizeof *d);
    d->size = 1;
    int launched = lnl_dist_launched();
    if (!launched) return 0;
#ifdef LNL_HAVE_MPI
    int provided = 0;
    /* OpenMP threads compute; only the main thread calls MPI */
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return lnl_err(e, "MPI_Init_thread failed (launched by an MPI launcher as one of %d processes)", launched);
    d->mpi = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    return 0;
#else
    if (launched > 1)
        return lnl_err(e, "started by an MPI launcher as one of %d processes, but this lnlab was built without MPI "
                          "(install libopenmpi-dev and rebuild: make); each process would train alone",
                       launched);
    return 0;
#endif
}

void lnl_dist_free(LnlDist *d) {
    free(d->counts);
    free(d->displs);
    free(d->zm);
    free(d->zv);
#ifdef LNL_HAVE_MPI
    if (d->mpi) MPI_Finalize();
#endif
    memset(d, 0, sizeof *d);
    d->size = 1;
}

void lnl_dist_hide_launcher(void) {
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
}

double lnl_dist_mean(LnlDist *d, double x) {
    if (lnl_dist_size(d) == 1) return x;
#ifdef LNL_HAVE_MPI
    double s = 0;
    MPI_Allreduce(&x, &s, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    x = s / (double)d->size;
#endif
    return x;
}

/* x reduced over all ranks with MPI_MAX (max != 0) or MPI_SUM. */
static long allreduce_long(LnlDist *d, long x, int max) {
    if (lnl_dist_size(d) == 1) return x;
#ifdef LNL_HAVE_MPI
    long r = x;
    MPI_Allreduce(&x, &r, 1, MPI_LONG, max ? MPI_MAX : MPI_SUM, MPI_COMM_WORLD);
    x = r;
#else
    (void)max;
#endif
    return x;
}

long lnl_dist_max(LnlDist *d, long x) { return allreduce_long(d, x, 1); }

long lnl_dist_sum(LnlDist *d, long x) { return allreduce_long(d, x, 0); }

void lnl_dist_barrier(LnlDist *d) {
    if (lnl_dist_size(d) == 1) return;
#ifdef LNL_HAVE_MPI
    MPI_Barrier(MPI_COMM_WORLD);
#endif
}

int lnl_dist_root_rc(LnlDist *d, int rc) {
    if (lnl_dist_size(d) == 1) return rc;
#ifdef LNL_HAVE_MPI
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
#endif
    if (rc) d->failed_together = 1;
    return rc;
}

#ifdef LNL_HAVE_MPI
/* MPI counts are ints: long arrays go in pieces of at most LNL_DIST_BUCKET_FLOATS. */
static void bcast_floats(float *x, size_t n) {
    for (size_t o = 0; o < n; o += LNL_DIST_BUCKET_FLOATS) {
        size_t k = n - o < LNL_DIST_BUCKET_FLOATS ? n - o : LNL_DIST_BUCKET_FLOATS;
        MPI_Bcast(x + o, (int)k, MPI_FLOAT, 0, MPI_COMM_WORLD);
    }
}
#endif

void lnl_dist_sync_params(LnlDist *d, LnlModel *m) {
    if (lnl_dist_size(d) == 1) return;
#ifdef LNL_HAVE_MPI
    bcast_floats(m->params_mem, m->num_alloc);
#else
    (void)m;
#endif
}

void lnl_dist_reduce_grads(LnlDist *d, LnlModel *m) {
    if (lnl_dist_size(d) == 1) return;
#ifdef LNL_HAVE_MPI
    double t0 = lnl_now();
    const float s = 1.0f / (float)d->size;
    float *g = m->grads_mem;
    for (size_t o = 0; o < m->num_alloc; o += LNL_DIST_BUCKET_FLOATS) {
        size_t k = m->num_alloc - o < LNL_DIST_BUCKET_FLOATS ? m->num_alloc - o : LNL_DIST_BUCKET_FLOATS;
        MPI_Allreduce(MPI_IN_PLACE, g + o, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
    for (size_t i = 0; i < m->num_alloc; i++) g[i] *= s;
    d->comm_s += lnl_now() - t0;
#else
    (void)m;
#endif
}

/* A 64-bit hash of the parameter bits: any differing bit changes it (with overwhelming odds). */
static uint64_t params_hash(const LnlModel *m) {
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    const uint32_t *w = (const uint32_t *)(const void *)m->params_mem;
    for (size_t i = 0; i < m->num_alloc; i++) {
        h ^= w[i];
        h *= 0x100000001b3ULL;
        h ^= h >> 29;
    }
    return h;
}

int lnl_dist_check_params(LnlDist *d, const LnlModel *m, LnlErr *e) {
    if (lnl_dist_size(d) == 1) return 0;
#ifdef LNL_HAVE_MPI
    uint64_t h = params_hash(m), lo = h, hi = h;
    MPI_Allreduce(&h, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&h, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    if (lo != hi)
        return lnl_err(e, "ranks hold different parameters after training (rank %d hash %016llx, range %016llx..%016llx)",
                       d->rank, (unsigned long long)h, (unsigned long long)lo, (unsigned long long)hi);
    return 0;
#else
    (void)m;
    (void)e;
    (void)params_hash;
    return 0;
#endif
}

int lnl_dist_admin_profile(LnlDist *d, LnlModel *m, LnlLoader *train, int B, int T, LnlErr *e) {
    if (!m->cfg.admin_profile) return 0;
    const int n = lnl_dist_size(d);
    const size_t N = (size_t)B * (size_t)T;
    int32_t *in = lnl_malloc(N * (size_t)n * sizeof(int32_t));
    lnl_loader_next(train, in + (size_t)lnl_dist_rank(d) * N, NULL);
    int r = 0;
    if (n == 1) {
        lnl_model_admin_profile(m, in, B, T);
    } else {
#ifdef LNL_HAVE_MPI
        if (N > INT_MAX) {
            free(in);
            return lnl_err(e, "Admin profiling: a batch of B*T = %zu tokens is too large for one MPI call", N);
        }
        /* rows in rank order are the global batch */
        MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, in, (int)N, MPI_INT32_T, MPI_COMM_WORLD);
        r = lnl_model_alloc_acts(m, n * B, T, e);
        if (r == 0) lnl_model_admin_profile(m, in, n * B, T);
        if (r == 0) r = lnl_model_alloc_acts(m, B, T, e);
#else
        (void)e;
#endif
    }
    lnl_loader_reset(train);
    free(in);
    return r;
}

/* ---------------------------------------------------------------- ZeRO-1 */

int lnl_dist_zero_init(LnlDist *d, LnlOptState *o, const LnlModel *m, LnlErr *e) {
    const int n = d->size;
    if (m->num_alloc > INT_MAX)
        return lnl_err(e, "--zero: %zu floats of parameters exceed MPI's int offsets (%d)", m->num_alloc, INT_MAX);
    const size_t share = (m->num_alloc + (size_t)n - 1) / (size_t)n;
    d->counts = lnl_calloc((size_t)n, sizeof(int));
    d->displs = lnl_calloc((size_t)n, sizeof(int));
    for (int r = 0; r < n; r++) {
        size_t lo = (size_t)r * share < m->num_alloc ? (size_t)r * share : m->num_alloc;
        size_t hi = lo + share < m->num_alloc ? lo + share : m->num_alloc;
        d->counts[r] = (int)(hi - lo);
        d->displs[r] = (int)lo;
        if (r == d->rank) {
            d->lo = lo;
            d->hi = hi;
        }
    }
    size_t k = d->hi - d->lo;
    d->zm = lnl_calloc(k ? k : 1, sizeof(float));
    d->zv = lnl_calloc(k ? k : 1, sizeof(float));
    memcpy(d->zm, o->m + d->lo, k * sizeof(float));
    memcpy(d->zv, o->v + d->lo, k * sizeof(float));
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
    d->zero = 1;
    return 0;
}

double lnl_dist_zero_step(LnlDist *d, LnlOptState *o, LnlModel *m, const LnlAdamW *h, float lr, double norm) {
    if (!isfinite(norm)) return norm;
    const float s = h->grad_clip > 0 && norm > h->grad_clip ? (float)(h->grad_clip / norm) : 1.0f;
    o->step++;
    for (int i = 0; i < m->nviews; i++) {
        const LnlTensorView *v = &m->views[i];
        size_t a = v->offset > d->lo ? v->offset : d->lo;
        size_t b = v->offset + v->numel < d->hi ? v->offset + v->numel : d->hi;
        if (a >= b) continue;
        /* the same operations, in the same order, as lnl_opt_step_norm on these elements */
        lnl_adamw_update(m->params_mem + a, m->grads_mem + a, s, d->zm + (a - d->lo), d->zv + (a - d->lo), b - a, lr, h->beta1, h->beta2,
                         h->eps, v->decay ? h->weight_decay : 0.0f, (int)o->step);
    }
#ifdef LNL_HAVE_MPI
    if (d->size > 1) {
        double t0 = lnl_now();
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, m->params_mem, d->counts, d->displs, MPI_FLOAT,
                       MPI_COMM_WORLD);
        d->comm_s += lnl_now() - t0;
    }
#endif
    return norm;
}

void lnl_dist_zero_gather(LnlDist *d, LnlOptState *o) {
    if (!d || !d->zero) return;
    const size_t k = d->hi - d->lo;
    if (d->rank == 0) {
        o->m = lnl_malloc(o->n * sizeof(float));
        o->v = lnl_malloc(o->n * sizeof(float));
    }
    if (d->size == 1) {
        memcpy(o->m, d->zm, k * sizeof(float));
        memcpy(o->v, d->zv, k * sizeof(float));
        return;
    }
#ifdef LNL_HAVE_MPI
    MPI_Gatherv(d->zm, (int)k, MPI_FLOAT, o->m, d->counts, d->displs, MPI_FLOAT, 0, MPI_COMM_WORLD);
    MPI_Gatherv(d->zv, (int)k, MPI_FLOAT, o->v, d->counts, d->displs, MPI_FLOAT, 0, MPI_COMM_WORLD);
#endif
}

void lnl_dist_zero_release(LnlDist *d, LnlOptState *o) {
    if (!d || !d->zero) return;
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}
