/* Run-time setup of the fast kernels: how many threads they use, and which of OpenBLAS's kernels
 * get loaded. Process-wide settings made once at startup by main(), not state of any op. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <math.h>
#include <unistd.h>

#include "../common/load.h"
#include "../common/util.h"

#include "kernels_internal.h"

#if defined(_OPENMP)
#include <omp.h>
#endif
#ifdef LNL_HAVE_BLAS
#include <cblas.h>
#endif
#if defined(__x86_64__) && defined(__SSE__)
#include <xmmintrin.h>
#define MXCSR_FLUSH 0x8040u /* FTZ (bit 15) | DAZ (bit 6) */
#endif

int lnl_kernels_bf16(void);
int lnl_kernels_set_bf16(int on);

int lnl_kernels_threads(void) {
#if defined(_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* Sets (flush) or clears the calling thread's FTZ and DAZ bits; nothing where there are none. */
static void set_flush_here(int flush) {
#ifdef MXCSR_FLUSH
    unsigned csr = _mm_getcsr();
    _mm_setcsr(flush ? csr | MXCSR_FLUSH : csr & ~MXCSR_FLUSH);
#else
    (void)flush;
#endif
}

int lnl_kernels_set_denormals(int flush) {
#ifdef MXCSR_FLUSH
    set_flush_here(flush);
#if defined(_OPENMP)
    /* the pool's threads exist already (or are made later by this thread, and inherit its mode):
     * one region with the whole team sets each */
#pragma omp parallel num_threads(lnl_kernels_threads())
    set_flush_here(flush);
#endif
    return 0;
#else
    return flush ? -1 : 0;
#endif
}

int lnl_kernels_denormals_flushed(void) {
#ifdef MXCSR_FLUSH
    return (_mm_getcsr() & MXCSR_FLUSH) == MXCSR_FLUSH;
#else
    return 0;
#endif
}

/* n threads for the kernels: OpenMP's team size, and OpenBLAS's own threads with
 * LNLAB_BLAS_THREADS=own, else one (one pool: BLAS runs inside lnlab's OpenMP threads, kernels.c) */
static void use_threads(int n) {
#if defined(_OPENMP)
    omp_set_num_threads(n);
#else
    (void)n;
#endif
#ifdef LNL_HAVE_BLAS
    const char *own = getenv("LNLAB_BLAS_THREADS");
    openblas_set_num_threads(own && strcmp(own, "own") == 0 ? n : 1);
#endif
}

void lnl_kernels_set_threads(int n) {
    use_threads(n > 0 ? n : lnl_kernels_threads());
    /* after the count, so that the region below starts (and sets) every thread of the pool */
    const char *dn = getenv("LNLAB_DENORMALS");
    int flush = dn && strcmp(dn, "flush") == 0;
    if (dn && !flush && strcmp(dn, "keep") != 0)
        fprintf(stderr, "lnlab: warning: LNLAB_DENORMALS='%s' is neither 'flush' nor 'keep'; keeping subnormals\n", dn);
    lnl_kernels_set_denormals(flush);
    /* the bf16 mode keeps one workspace per thread: follow the new count */
    const char *bf = getenv("LNLAB_BF16");
    if (lnl_kernels_bf16() || (bf && strcmp(bf, "1") == 0))
        if (lnl_kernels_set_bf16(1))
            fprintf(stderr, "lnlab: warning: LNLAB_BF16=1, but this CPU or build has no AVX512-BF16; products stay fp32\n");
}

/* ---- the adaptive thread count (kernels.h) ---- */

#define ADAPT_INTERVAL_S 0.5 /* seconds between two measurements of the load */
#define ADAPT_AGREE 2        /* measurements in a row that must ask for the same count */

static struct {
    int on, max, cur, want, agree;
    double t, busy, own; /* the last measurement: wall clock, all processes' and our CPU seconds */
} adapt;

void lnl_kernels_adapt_begin(int on) {
    int ncpu;
    adapt.max = adapt.cur = lnl_kernels_threads();
    adapt.want = adapt.agree = 0;
    adapt.t = 0;
    adapt.on = on && adapt.max > 1 && lnl_load_busy_seconds(1, &ncpu) >= 0;
}

int lnl_kernels_adapt(void) {
    if (!adapt.on) return lnl_kernels_threads();
    double now = lnl_now();
    if (adapt.t > 0 && now - adapt.t < ADAPT_INTERVAL_S) return adapt.cur;
    int ncpu;
    double busy = lnl_load_busy_seconds(1, &ncpu), own = lnl_load_own_seconds();
    if (busy < 0) return adapt.cur;
    if (adapt.t > 0) {
        /* cores the other processes used meanwhile; our own threads' time (spinning included) is
         * taken out */
        double others = ((busy - adapt.busy) - (own - adapt.own)) / (now - adapt.t);
        if (others < 0) others = 0;
        int n = (int)floor((double)ncpu - others + 0.5);
        if (n > adapt.max) n = adapt.max;
        if (n < 1) n = 1;
        if (n == adapt.cur) {
            adapt.agree = 0;
        } else {
            adapt.agree = n == adapt.want ? adapt.agree + 1 : 1;
            adapt.want = n;
            if (adapt.agree >= ADAPT_AGREE) {
                adapt.cur = n;
                adapt.agree = 0;
                use_threads(n);
            }
        }
    }
    adapt.t = now;
    adapt.busy = busy;
    adapt.own = own;
    return adapt.cur;
}

void lnl_kernels_adapt_end(void) {
    if (adapt.on && adapt.cur != adapt.max) use_threads(adapt.max);
    adapt.on = 0;
    adapt.cur = adapt.max;
}

/* The bf16 mode's per-thread workspaces: process-wide configuration made at startup, like the
 * thread count, not state of any op. */
static uint32_t *bf16_ws;
static int bf16_nthreads;

int lnl_kernels_set_bf16(int on) {
    free(bf16_ws);
    bf16_ws = NULL;
    bf16_nthreads = 0;
    if (!on) return 0;
    if (!lnl_bf16_available()) return -1;
    int nt = lnl_kernels_threads();
    bf16_ws = malloc((size_t)nt * lnl_bf16_ws_words() * sizeof(uint32_t));
    if (!bf16_ws) return -1;
    bf16_nthreads = nt;
    return 0;
}

int lnl_kernels_bf16(void) { return bf16_nthreads > 0; }

uint32_t *lnl_kernels_bf16_ws(int thread) {
    return thread >= 0 && thread < bf16_nthreads ? bf16_ws + (size_t)thread * lnl_bf16_ws_words() : NULL;
}

const char *lnl_kernels_blas_name(void) {
#ifdef LNL_HAVE_BLAS
    static char name[160];
    const char *cfg = openblas_get_config(), *core = openblas_get_corename();
    snprintf(name, sizeof name, "%s, core %s, %s%s", cfg ? cfg : "OpenBLAS", core ? core : "?",
             openblas_get_num_threads() == 1 ? "threads from lnlab's OpenMP pool" : "OpenBLAS's own threads",
             lnl_kernels_bf16() ? "; bf16 products (AVX512-BF16)" : "");
    return name;
#else
    return lnl_kernels_bf16() ? "bf16 products (AVX512-BF16), built-in fp32 matmul otherwise" : "built-in matmul (no BLAS)";
#endif
}

/* Core types at least as strong as SkylakeX for SGEMM; any other value is replaced. */
static int strong_core(const char *c) {
    static const char *const strong[] = {"SkylakeX", "CooperLake", "SapphireRapids"};
    for (size_t i = 0; i < sizeof strong / sizeof strong[0]; i++)
        if (strcasecmp(c, strong[i]) == 0) return 1;
    return 0;
}

#define REEXEC_MARK "LNLAB_BLAS_REEXEC" /* set in the re-executed process: the original value, or "" */

void lnl_kernels_blas_reexec(char **argv) {
#if defined(LNL_HAVE_BLAS) && defined(__x86_64__)
    if (getenv(REEXEC_MARK)) return; /* already done once: never loop */
    const char *want = getenv("LNLAB_BLAS_CORETYPE");
    if (want && strcasecmp(want, "keep") == 0) return;
    const char *cur = getenv("OPENBLAS_CORETYPE");
    if (!want || !*want) {
        __builtin_cpu_init();
        if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
              __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")))
            return;
        if (cur && strong_core(cur)) return;
        want = "SkylakeX";
    } else if (cur && strcasecmp(cur, want) == 0) {
        return;
    }
    if (setenv(REEXEC_MARK, cur ? cur : "", 1) || setenv("OPENBLAS_CORETYPE", want, 1)) return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): carry on with the kernels already loaded, and leave the
     * environment as it was for any child */
    if (cur) setenv("OPENBLAS_CORETYPE", cur, 1);
    else unsetenv("OPENBLAS_CORETYPE");
    unsetenv(REEXEC_MARK);
#else
    (void)argv;
#endif
}

const char *lnl_kernels_blas_env_orig(void) {
    const char *orig = getenv(REEXEC_MARK);
    if (!orig) return getenv("OPENBLAS_CORETYPE");
    return *orig ? orig : NULL;
}
