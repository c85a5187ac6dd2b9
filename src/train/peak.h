/* The machine's peak FLOP/s as lnlab's own matrix product reaches it: a timed SGEMM, the
 * denominator of lnlab bench's "% peak" and of lnlab train's MFU. A measurement of this process
 * at its thread count, not a figure from a CPU table. */
#ifndef LNL_PEAK_H
#define LNL_PEAK_H

/* The size and repeats of lnlab train's measurement at its start: three products of 2.1 GFLOP
 * and 12 MB of fresh memory, 0.1-0.2 s on two busy cores and less on more, so that a run hardly
 * waits for it; 1024 is large enough for the product's full speed on a few cores. */
#define LNL_PEAK_TRAIN_N 1024
#define LNL_PEAK_TRAIN_REPS 2

/* Best GFLOP/s of an n x n x n SGEMM (C = A B^T, the forward's layout), fp32, over `reps` timed
 * runs after one untimed warm-up run, at the current thread count. Through lnlab's product (the
 * cpu backend's lnl_matmul_forward, whatever LNLAB_KERNELS selects: OpenBLAS, or the built-in
 * kernel, inside lnlab's threads), or with own_blas_threads through OpenBLAS's own threads (0 in a
 * build without OpenBLAS; the caller sets OpenBLAS's thread count). The bf16 mode (kernels.h) is
 * off during the measurement and restored after it. Requires n >= 1 and reps >= 1. */
double lnl_sgemm_gflops(int n, int reps, int own_blas_threads);

#endif
