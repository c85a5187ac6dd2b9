/* Data parallelism over MPI (dist.h). Without LNL_HAVE_MPI, or in a process no MPI launcher
 * started, size is 1 and every collective below returns before its MPI part. */
#include "dist.h"

#include <assert.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

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
    d->counts = lnl_calloc((size_t)d->size, sizeof(int));
    d->displs = lnl_calloc((size_t)d->size, sizeof(int));
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

_Static_assert(LNL_DIST_MAX_COUNT == INT_MAX, "LNL_DIST_MAX_COUNT is MPI's int count");

void lnl_dist_bcast_floats(LnlDist *d, float *x, size_t n) {
    if (lnl_dist_size(d) == 1) return;
#ifdef LNL_HAVE_MPI
    for (size_t o = 0; o < n; o += LNL_DIST_BUCKET_FLOATS) {
        size_t k = n - o < LNL_DIST_BUCKET_FLOATS ? n - o : LNL_DIST_BUCKET_FLOATS;
        MPI_Bcast(x + o, (int)k, MPI_FLOAT, 0, MPI_COMM_WORLD);
    }
#else
    (void)x;
    (void)n;
#endif
}

void lnl_dist_allreduce_mean_floats(LnlDist *d, float *x, size_t n) {
    if (lnl_dist_size(d) == 1) return;
#ifdef LNL_HAVE_MPI
    double t0 = lnl_now();
    const float s = 1.0f / (float)d->size;
    for (size_t o = 0; o < n; o += LNL_DIST_BUCKET_FLOATS) {
        size_t k = n - o < LNL_DIST_BUCKET_FLOATS ? n - o : LNL_DIST_BUCKET_FLOATS;
        MPI_Allreduce(MPI_IN_PLACE, x + o, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
    for (size_t i = 0; i < n; i++) x[i] *= s;
    d->comm_s += lnl_now() - t0;
#else
    (void)x;
    (void)n;
#endif
}

void lnl_dist_allgather_i32(LnlDist *d, int32_t *x, size_t each) {
    if (lnl_dist_size(d) == 1) return;
    assert(each <= LNL_DIST_MAX_COUNT);
#ifdef LNL_HAVE_MPI
    MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x, (int)each, MPI_INT32_T, MPI_COMM_WORLD);
#else
    (void)x;
#endif
}

/* A 64-bit hash of the bits of x: any differing bit changes it (with overwhelming odds). */
static uint64_t floats_hash(const float *x, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    const uint32_t *w = (const uint32_t *)(const void *)x;
    for (size_t i = 0; i < n; i++) {
        h ^= w[i];
        h *= 0x100000001b3ULL;
        h ^= h >> 29;
    }
    return h;
}

int lnl_dist_check_same_floats(LnlDist *d, const float *x, size_t n, const char *what, LnlErr *e) {
    if (lnl_dist_size(d) == 1) return 0;
#ifdef LNL_HAVE_MPI
    uint64_t h = floats_hash(x, n), lo = h, hi = h;
    MPI_Allreduce(&h, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&h, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    if (lo != hi)
        return lnl_err(e, "ranks hold different %s (rank %d hash %016llx, range %016llx..%016llx)", what, d->rank,
                       (unsigned long long)h, (unsigned long long)lo, (unsigned long long)hi);
    return 0;
#else
    (void)x;
    (void)n;
    (void)what;
    (void)e;
    (void)floats_hash;
    return 0;
#endif
}

/* ---------------------------------------------------------------- shards */

void lnl_dist_shard(const LnlDist *d, int r, size_t n, size_t *lo, size_t *hi) {
    const size_t size = (size_t)lnl_dist_size(d);
    const size_t share = (n + size - 1) / size;
    *lo = (size_t)r * share < n ? (size_t)r * share : n;
    *hi = *lo + share < n ? *lo + share : n;
}

#ifdef LNL_HAVE_MPI
/* Every rank's shard of n elements as MPI's counts and offsets, in d->counts, d->displs. */
static void shard_layout(LnlDist *d, size_t n) {
    assert(n <= LNL_DIST_MAX_COUNT);
    for (int r = 0; r < d->size; r++) {
        size_t lo, hi;
        lnl_dist_shard(d, r, n, &lo, &hi);
        d->counts[r] = (int)(hi - lo);
        d->displs[r] = (int)lo;
    }
}
#endif

void lnl_dist_allgather_shards(LnlDist *d, float *x, size_t n) {
    if (lnl_dist_size(d) == 1) return;
#ifdef LNL_HAVE_MPI
    double t0 = lnl_now();
    shard_layout(d, n);
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x, d->counts, d->displs, MPI_FLOAT, MPI_COMM_WORLD);
    d->comm_s += lnl_now() - t0;
#else
    (void)x;
    (void)n;
#endif
}

void lnl_dist_gather_shards(LnlDist *d, const float *mine, float *x, size_t n) {
    size_t lo, hi;
    lnl_dist_shard(d, lnl_dist_rank(d), n, &lo, &hi);
    if (lnl_dist_size(d) == 1) {
        memcpy(x + lo, mine, (hi - lo) * sizeof(float));
        return;
    }
#ifdef LNL_HAVE_MPI
    shard_layout(d, n);
    MPI_Gatherv(mine, (int)(hi - lo), MPI_FLOAT, x, d->counts, d->displs, MPI_FLOAT, 0, MPI_COMM_WORLD);
#endif
}
