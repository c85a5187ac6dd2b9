/* The subnormal mode (lnl_kernels_set_denormals, docs/PERFORMANCE.md "Subnormal numbers"): FTZ and
 * DAZ in every OpenMP thread, set through lnl_kernels_set_threads with LNLAB_DENORMALS=flush (IEEE
 * otherwise), and what it does to products. Not a speed test. */
#include <stdint.h>

#include "../../src/kernels/kernels.h"
#include "harness.h"

#if defined(_OPENMP)
#include <omp.h>
#endif

#if defined(__x86_64__) && defined(__SSE__)
#define HAVE_MODE 1
#else
#define HAVE_MODE 0
#endif

#define NT 3 /* more threads than the test machine may have cores: a pool of its own */

/* Threads of a region of n that flush, and threads that ran it. */
static void count_flushed(int n, int *flushed, int *ran) {
    int f = 0, r = 0;
#if defined(_OPENMP)
#pragma omp parallel num_threads(n) reduction(+ : f, r)
#else
    (void)n;
#endif
    {
        f += lnl_kernels_denormals_flushed();
        r += 1;
    }
    *flushed = f;
    *ran = r;
}

static int expected_threads(int n) {
#if defined(_OPENMP)
    return n;
#else
    (void)n;
    return 1;
#endif
}

static void test_every_thread(void) {
    int f, r;
    /* a pool made while IEEE mode was on: lnl_kernels_set_denormals must reach threads that exist */
    lnl_kernels_set_denormals(0);
    count_flushed(NT, &f, &r);
    CHECK(f == 0 && r == expected_threads(NT), "IEEE mode: %d of %d threads flush", f, r);
    lnl_kernels_set_denormals(1);
    count_flushed(NT, &f, &r);
    CHECK(f == r && r == expected_threads(NT), "after set_denormals(1): %d of %d threads flush", f, r);
    /* threads made later (a larger team) come from this thread and inherit its mode */
    count_flushed(NT + 2, &f, &r);
    CHECK(f == r && r == expected_threads(NT + 2), "a larger team: %d of %d threads flush", f, r);
    lnl_kernels_set_denormals(0);
    count_flushed(NT + 2, &f, &r);
    CHECK(f == 0, "after set_denormals(0): %d of %d threads still flush", f, r);
}

/* lnl_kernels_set_threads (what main() calls) flushes with LNLAB_DENORMALS=flush, and keeps (or
 * restores) IEEE mode by default and with LNLAB_DENORMALS=keep. */
static void test_set_threads_env(void) {
    int f, r;
    setenv("LNLAB_DENORMALS", "flush", 1);
    lnl_kernels_set_threads(NT);
    count_flushed(NT, &f, &r);
    CHECK(f == r && r == expected_threads(NT), "LNLAB_DENORMALS=flush: %d of %d threads flush", f, r);
    CHECK(lnl_kernels_denormals_flushed(), "LNLAB_DENORMALS=flush: the calling thread does not flush");
    unsetenv("LNLAB_DENORMALS");
    lnl_kernels_set_threads(NT);
    count_flushed(NT, &f, &r);
    CHECK(f == 0 && r == expected_threads(NT), "default: %d of %d threads flush", f, r);
    setenv("LNLAB_DENORMALS", "flush", 1);
    lnl_kernels_set_threads(NT);
    setenv("LNLAB_DENORMALS", "keep", 1);
    lnl_kernels_set_threads(NT);
    count_flushed(NT, &f, &r);
    CHECK(f == 0, "LNLAB_DENORMALS=keep: %d of %d threads flush", f, r);
    unsetenv("LNLAB_DENORMALS");
}

/* A product whose exact value is subnormal gives 0 (FTZ); a subnormal input reads as 0 (DAZ);
 * in IEEE mode both keep the subnormal. Volatile: computed at run time, in the current mode. */
static void test_products(void) {
    volatile float tiny = 1e-20f, sub = 1e-39f, one = 1.0f;
    lnl_kernels_set_denormals(1);
    float p = tiny * tiny, q = sub * one, s = sub + sub;
    CHECK(p == 0.0f, "FTZ: 1e-20f * 1e-20f = %g, expected 0", (double)p);
    CHECK(q == 0.0f, "DAZ: 1e-39f * 1 = %g, expected 0", (double)q);
    CHECK(s == 0.0f, "DAZ: 1e-39f + 1e-39f = %g, expected 0", (double)s);
    lnl_kernels_set_denormals(0);
    p = tiny * tiny;
    q = sub * one;
    CHECK(fpclassify(p) == FP_SUBNORMAL, "IEEE: 1e-20f * 1e-20f = %g, expected a subnormal", (double)p);
    CHECK(q == sub, "IEEE: 1e-39f * 1 = %g, expected 1e-39", (double)q);
}

/* The fast matmul, threaded (BLAS inside the OpenMP threads), under the mode: subnormal inputs give
 * zeros when flushed, the IEEE result otherwise. */
static void test_matmul(void) {
    enum { N = 64, IC = 32, OC = 48 };
    static float inp[N * IC], w[OC * IC], out[N * OC];
    for (int i = 0; i < N * IC; i++) inp[i] = 1e-39f;
    for (int i = 0; i < OC * IC; i++) w[i] = 1.0f;
    for (int mode = 1; mode >= 0; mode--) {
        setenv("LNLAB_DENORMALS", mode ? "flush" : "keep", 1);
        lnl_kernels_set_threads(2);
        lnl_matmul_forward(out, inp, w, NULL, N, IC, OC);
        int zeros = 0;
        for (int i = 0; i < N * OC; i++) zeros += out[i] == 0.0f;
        if (mode) CHECK(zeros == N * OC, "flushed: %d of %d outputs are 0 (out[0] = %g)", zeros, N * OC, (double)out[0]);
        else CHECK(zeros == 0 && out[0] > 0.0f, "IEEE: %d of %d outputs are 0 (out[0] = %g)", zeros, N * OC, (double)out[0]);
    }
    unsetenv("LNLAB_DENORMALS");
}

int main(void) {
    if (!HAVE_MODE) {
        printf("skip test_denormals: no FTZ/DAZ mode on this architecture\n");
        return lnl_kernels_set_denormals(1) == -1 ? 0 : 1;
    }
    RUN_TEST(test_every_thread);
    RUN_TEST(test_set_threads_env);
    RUN_TEST(test_products);
    RUN_TEST(test_matmul);
    TEST_MAIN_END();
}
