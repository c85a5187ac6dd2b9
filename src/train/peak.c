/* The SGEMM peak measurement (peak.h). */
#include "peak.h"

#include <assert.h>
#include <stdlib.h>

#include "../common/util.h"
#include "../kernels/kernels.h"

#ifdef LNL_HAVE_BLAS
#include <cblas.h>
#endif

double lnl_sgemm_gflops(int n, int reps, int own_blas_threads) {
    assert(n >= 1 && reps >= 1);
#ifndef LNL_HAVE_BLAS
    if (own_blas_threads) return 0;
#endif
    const size_t nn = (size_t)n * (size_t)n;
    float *a = lnl_malloc(nn * sizeof(float)), *b = lnl_malloc(nn * sizeof(float)), *c = lnl_malloc(nn * sizeof(float));
    for (size_t i = 0; i < nn; i++) {
        a[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
        b[i] = (float)((i * 40503u) % 1000) * 1e-3f - 0.5f;
    }
    const int bf16 = lnl_kernels_bf16(); /* the peak is fp32 SGEMM's, in either mode */
    if (bf16) lnl_kernels_set_bf16(0);
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = lnl_now();
#ifdef LNL_HAVE_BLAS
        if (own_blas_threads)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        else
#endif
            lnl_kernels_cpu_ops.matmul_forward(c, a, b, NULL, n, n, n); /* the CPU's, whatever LNLAB_KERNELS says */
        double t = lnl_now() - t0;
        if (r > 0 && t < best) best = t; /* run 0 warms caches, pages and threads */
    }
    if (bf16) lnl_kernels_set_bf16(1);
    free(a);
    free(b);
    free(c);
    return 2.0 * (double)n * (double)n * (double)n / best / 1e9;
}
