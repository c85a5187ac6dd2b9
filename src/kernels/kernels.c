/* The cpu backend (lnl_kernels_cpu_ops, at the end; the default): the fast version of each op
 * (OpenBLAS sgemm or a blocked C matmul, OpenMP over independent rows / heads, loops written to
 * vectorize without fast-math), or the reference where nothing faster is worth having. Tested
 * against kernels_ref.c.
 *
 * Threading: every parallel split writes disjoint memory and the reductions do not depend on
 * the number of threads, so results are the same bits on 1 or many threads. Products are cut into
 * row or column slices whose elements each sum over the same k in the same order; that OpenBLAS
 * gives the same bits for a slice as for the whole product is measured, not promised, and
 * tests/cli/test_threads.sh checks whole runs on every `make test`. No op keeps
 * state between calls or allocates; scratch lives in fixed-size stack arrays, the largest
 * 64 KiB per thread (attention, built-in matmul). */
#include <assert.h>
#include <math.h>
#include <stdlib.h>

#include "kernels_internal.h"

#if defined(_OPENMP)
#include <omp.h>
#endif
#ifdef LNL_HAVE_BLAS
#include <cblas.h>
#endif

static inline int imin(int a, int b) { return a < b ? a : b; }

/* ---- small vector helpers ---- */

/* a . b accumulated in double */
static inline double dot_d(const float *a, const float *b, int n) {
    lnl_d8 acc = {0};
    int i = 0;
    for (; i + LNL_LANES <= n; i += LNL_LANES) acc += LNL_D8_LOAD(a + i) * LNL_D8_LOAD(b + i);
    double s = 0.0;
    for (; i < n; i++) s += (double)a[i] * b[i];
    return lnl_d8_add_lanes(s, &acc);
}

static inline void axpy_f(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] = LNL_FMA(a, x[i], y[i]);
}

static inline float max_f(const float *x, int n) {
    float m[LNL_LANES];
    for (int k = 0; k < LNL_LANES; k++) m[k] = -INFINITY;
    int i = 0;
    for (; i + LNL_LANES <= n; i += LNL_LANES)
        for (int k = 0; k < LNL_LANES; k++) m[k] = x[i + k] > m[k] ? x[i + k] : m[k];
    float r = -INFINITY;
    for (; i < n; i++) r = x[i] > r ? x[i] : r;
    for (int k = 0; k < LNL_LANES; k++) r = m[k] > r ? m[k] : r;
    return r;
}

/* ---- register-tiled "axpy form" product, shared by the built-in matmul and attention ----
 * out[r, j] += alpha * sum_k c(r, k) * y[k, j], with y contiguous along j: the loop vectorizes
 * across j and keeps an MM_MR x MM_JB tile of out in registers, and c is read through two
 * strides so that a matrix or its transpose is used in place. Edge rows reuse the last valid
 * row and drop the duplicate result, so one kernel serves every shape. */
#if defined(__AVX512F__)
#define MM_L 16
#else
#define MM_L 8
#endif
#define MM_MR 4
#define MM_JB (4 * MM_L)

/* rows r < mr, columns j < MM_JB */
static void mm_axpy_tile(float *out, size_t ldo, const float *coef, size_t csr, size_t csk, const float *y,
                         size_t ldy, int K, int mr, float alpha) {
    float acc[MM_MR][MM_JB];
    memset(acc, 0, sizeof acc);
    size_t ro[MM_MR];
    for (int r = 0; r < MM_MR; r++) ro[r] = (size_t)imin(r, mr - 1) * csr;
    for (int k = 0; k < K; k++) {
        const float *yk = y + (size_t)k * ldy;
        const float *ck = coef + (size_t)k * csk;
        for (int r = 0; r < MM_MR; r++) {
            float cr = ck[ro[r]];
            for (int j = 0; j < MM_JB; j++) acc[r][j] = LNL_FMA(cr, yk[j], acc[r][j]);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < MM_JB; j++) out[(size_t)r * ldo + j] += alpha * acc[r][j];
}

/* rows [r0, r1), columns [0, J): full tiles, then a plain tail */
static void mm_axpy_block(float *out, size_t ldo, int r0, int r1, int J, const float *coef, size_t csr, size_t csk,
                          const float *y, size_t ldy, int K, float alpha) {
    for (int r = r0; r < r1; r += MM_MR) {
        int mr = imin(MM_MR, r1 - r);
        const float *cf = coef + (size_t)r * csr;
        float *o = out + (size_t)r * ldo;
        int j = 0;
        for (; j + MM_JB <= J; j += MM_JB) mm_axpy_tile(o + j, ldo, cf, csr, csk, y + j, ldy, K, mr, alpha);
        if (j < J)
            for (int rr = 0; rr < mr; rr++)
                for (int k = 0; k < K; k++)
                    axpy_f(o + (size_t)rr * ldo + j, alpha * cf[(size_t)rr * csr + (size_t)k * csk],
                           y + (size_t)k * ldy + j, J - j);
    }
}

/* Bounds [lo, hi) of part p of nparts over n, on multiples of align: a thread's own share of
 * rows or columns (products, bias sums). */
static void part_bounds(int n, int align, int p, int nparts, int *lo, int *hi) {
    long units = (n + align - 1) / align;
    long u0 = units * p / nparts, u1 = units * (p + 1) / nparts;
    *lo = (int)(u0 * align < n ? u0 * align : n);
    *hi = (int)(u1 * align < n ? u1 * align : n);
}

/* ---- matmul ---- */

#ifndef LNL_HAVE_BLAS
/* Built-in matmul on the tiles above. dinp and dweight read dout (or its transpose) in place;
 * the forward packs a MM_KB x MM_CB block of weight^T into a stack buffer (64 KiB) because
 * weight is stored along k. Cache blocks: MM_RB rows x MM_JC columns over MM_KB-long slices. */
#define MM_KB 256
#define MM_RB 64
#define MM_CB 64
#define MM_JC 256

static void matmul_forward_blocked(float *out, const float *inp, const float *weight, const float *bias, int N,
                                   int IC, int OC) {
    int nrb = (N + MM_RB - 1) / MM_RB, ncb = (OC + MM_CB - 1) / MM_CB;
    /* column blocks outer: consecutive tasks of a thread reuse the same weight block */
    LNL_OMP(parallel for collapse(2) schedule(static) if(parallel: (size_t)N * IC * OC > LNL_PAR_MIN_MACS))
    for (int cb = 0; cb < ncb; cb++)
        for (int rb = 0; rb < nrb; rb++) {
            float wt[MM_KB * MM_CB]; /* weight^T block: wt[k * nc + j] = weight[c0 + j, k0 + k] */
            int r0 = rb * MM_RB, r1 = imin(N, r0 + MM_RB), c0 = cb * MM_CB, nc = imin(MM_CB, OC - c0);
            for (int r = r0; r < r1; r++)
                for (int j = 0; j < nc; j++) out[(size_t)r * OC + c0 + j] = bias ? bias[c0 + j] : 0.0f;
            for (int k0 = 0; k0 < IC; k0 += MM_KB) {
                int kn = imin(MM_KB, IC - k0);
                for (int j = 0; j < nc; j++)
                    for (int k = 0; k < kn; k++) wt[k * nc + j] = weight[(size_t)(c0 + j) * IC + k0 + k];
                mm_axpy_block(out + c0, (size_t)OC, r0, r1, nc, inp + k0, (size_t)IC, 1, wt, (size_t)nc, kn, 1.0f);
            }
        }
}

/* out (R, J) += Coef (R, K) @ Y (K, J), Coef read through strides (dout or its transpose in
 * place). Threads own disjoint blocks of output rows. */
static void mm_axpy_driver(float *out, int R, int J, int K, const float *coef, size_t csr, size_t csk,
                           const float *y, size_t ldy) {
    int nrb = (R + MM_RB - 1) / MM_RB;
    LNL_OMP(parallel for schedule(static) if(parallel: (size_t)R * J * K > LNL_PAR_MIN_MACS))
    for (int rb = 0; rb < nrb; rb++) {
        int r0 = rb * MM_RB, r1 = imin(R, r0 + MM_RB);
        for (int k0 = 0; k0 < K; k0 += MM_KB) {
            int kn = imin(MM_KB, K - k0);
            for (int j0 = 0; j0 < J; j0 += MM_JC)
                mm_axpy_block(out + j0, (size_t)J, r0, r1, imin(MM_JC, J - j0), coef + (size_t)k0 * csk, csr, csk,
                              y + (size_t)k0 * ldy + j0, ldy, kn, 1.0f);
        }
    }
}
#endif

#ifdef LNL_HAVE_BLAS
/* One pool of threads: with more than one OpenMP thread and OpenBLAS set to one thread
 * (lnl_kernels_set_threads), a product is cut into one contiguous slice per OpenMP thread and
 * each thread calls a single-threaded sgemm on its slice. OpenBLAS's own threads would otherwise
 * compete for the cores with OpenMP threads that spin after every parallel region. The slice is
 * taken along the larger of M and N: a slice of rows re-reads all of op(B), a slice of columns all
 * of op(A), so cutting the larger side duplicates the smaller operand. Slice bounds fall on
 * multiples of GEMM_ALIGN so that every slice runs full micro-kernel tiles. */
#define GEMM_ALIGN 64

static int blas_is_serial(void) { return openblas_get_num_threads() == 1; }

/* C (M, N) = op(A) op(B) + (bias rows if bias, else beta C); op = transpose where ta / tb. In the
 * bf16 mode the product is gemm_bf16.c's, with the workspace of OpenMP thread `thread`; where
 * `small` (fp32 and lnl_gemm_small_fits of the whole product, decided once in gemm() so that every
 * slice and thread count takes the same path), gemm_small.c's. */
static void gemm_slice(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                       float beta, float *C, int ldc, const float *bias, int thread, int small) {
    if (M <= 0 || N <= 0) return;
    if (small) {
        lnl_gemm_small(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
        return;
    }
    if (bias) {
        for (int r = 0; r < M; r++) memcpy(C + (size_t)r * ldc, bias, (size_t)N * sizeof(float));
        beta = 1.0f;
    }
    if (K <= 0) { /* BLAS rejects K = 0 (lda < 1): the product is zero */
        if (!bias && beta != 1.0f)
            for (int r = 0; r < M; r++)
                for (int j = 0; j < N; j++) C[(size_t)r * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)r * ldc + j];
        return;
    }
    uint32_t *ws = lnl_kernels_bf16_ws(thread);
    if (ws) {
        lnl_gemm_bf16(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, ws);
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, lda,
                B, ldb, beta, C, ldc);
}

/* Part p of nparts of the product (see gemm). */
static void gemm_piece(int p, int nparts, int ta, int tb, int M, int N, int K, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc, const float *bias, int small) {
    int lo, hi;
    if (M >= N) {
        part_bounds(M, GEMM_ALIGN, p, nparts, &lo, &hi);
        gemm_slice(ta, tb, hi - lo, N, K, ta ? A + lo : A + (size_t)lo * lda, lda, B, ldb, beta, C + (size_t)lo * ldc,
                   ldc, bias, p, small);
    } else {
        part_bounds(N, GEMM_ALIGN, p, nparts, &lo, &hi);
        gemm_slice(ta, tb, M, hi - lo, K, A, lda, tb ? B + (size_t)lo * ldb : B + lo, ldb, beta, C + lo, ldc,
                   bias ? bias + lo : NULL, p, small);
    }
}

static void gemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc, const float *bias) {
    int nt = lnl_kernels_threads();
    const int small = !lnl_kernels_bf16() && lnl_gemm_small_fits(ta, tb, M, N, K, bias ? 1.0f : beta);
    if (nt <= 1 || (!blas_is_serial() && !lnl_kernels_bf16())) {
        gemm_slice(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, bias, 0, small);
        return;
    }
    LNL_OMP(parallel num_threads(nt) if(parallel: (size_t)M * N * K > LNL_PAR_MIN_MACS))
    {
        int p = 0, np = 1;
#if defined(_OPENMP)
        p = omp_get_thread_num();
        np = omp_get_num_threads();
#endif
        gemm_piece(p, np, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, bias, small);
    }
}
#endif

static void cpu_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int IC,
                               int OC) {
    if (N <= 0 || OC <= 0) return;
#ifdef LNL_HAVE_BLAS
    gemm(0, 1, N, OC, IC, inp, IC > 0 ? IC : 1, weight, IC > 0 ? IC : 1, 0.0f, out, OC, bias);
#else
    matmul_forward_blocked(out, inp, weight, bias, N, IC, OC);
#endif
}

/* dbias[o] += sum_n dout[n, o] over columns [c0, c1), double accumulation per column. */
static void colsum_cols(float *dbias, const float *dout, int N, int OC, int c0, int c1) {
    enum { CB = 256 };
    for (int cb = c0; cb < c1; cb += CB) {
        int nc = imin(CB, c1 - cb);
        double acc[CB];
        for (int j = 0; j < nc; j++) acc[j] = 0.0;
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * OC + cb;
            for (int j = 0; j < nc; j++) acc[j] += d[j];
        }
        for (int j = 0; j < nc; j++) dbias[cb + j] += (float)acc[j];
    }
}

/* dbias += column sums of dout: each thread owns an equal share of the columns, on multiples of
 * 16 (blocks of 256 columns split C = 384 two to one). */
static void colsum_acc(float *dbias, const float *dout, int N, int OC) {
    LNL_OMP(parallel if(parallel: (size_t)N * OC > LNL_PAR_MIN_ELEMS))
    {
        int p = 0, np = 1;
#if defined(_OPENMP)
        p = omp_get_thread_num();
        np = omp_get_num_threads();
#endif
        int lo, hi;
        part_bounds(OC, 16, p, np, &lo, &hi);
        colsum_cols(dbias, dout, N, OC, lo, hi);
    }
}

static void cpu_zero(float *x, size_t n);

static void cpu_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                const float *weight, int N, int IC, int OC) {
    if (N <= 0) return;
    if (OC <= 0) { /* dinp = an empty sum */
        if (dinp && IC > 0) cpu_zero(dinp, (size_t)N * IC);
        return;
    }
#ifdef LNL_HAVE_BLAS
    if (dinp && IC > 0) gemm(0, 0, N, IC, OC, dout, OC, weight, IC, 0.0f, dinp, IC, NULL);
    if (dweight && IC > 0) gemm(1, 0, OC, IC, N, dout, OC, inp, IC, 1.0f, dweight, IC, NULL);
#else
    if (dinp && IC > 0) {
        cpu_zero(dinp, (size_t)N * IC);
        mm_axpy_driver(dinp, N, IC, OC, dout, (size_t)OC, 1, weight, (size_t)IC);
    }
    if (dweight && IC > 0) mm_axpy_driver(dweight, OC, IC, N, dout, 1, (size_t)OC, inp, (size_t)IC);
#endif
    if (dbias) colsum_acc(dbias, dout, N, OC);
}

/* ---- normalization: rows in parallel for out/dinp, column blocks in parallel for the
 * parameter gradients; the math is the shared row code of kernels_internal.h ---- */

static void cpu_norm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                             const float *bias, int N, int C, int G, int rep, LnlNormKind kind, float eps,
                             float scale) {
    assert(G >= 1 && rep >= 1 && (kind == LNL_NORM_RMSNORM || mean));
    LNL_OMP(parallel for schedule(static) if(parallel: (size_t)N * C > LNL_PAR_MIN_ELEMS))
    for (int r = 0; r < N; r++) {
        const float *x = inp + (size_t)r * C;
        size_t goff = (size_t)lnl_norm_group(r, G, rep) * C;
        float mu, rs;
        lnl_norm_row_stats(x, C, kind, eps, &mu, &rs);
        if (kind == LNL_NORM_LAYERNORM) mean[r] = mu;
        rstd[r] = rs;
        lnl_norm_row_forward(out + (size_t)r * C, x, weight ? weight + goff : NULL, bias ? bias + goff : NULL, C,
                             mu, rs, scale);
    }
}

static void cpu_norm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *weight, const float *mean, const float *rstd, int N, int C, int G, int rep,
                              LnlNormKind kind, float scale) {
    assert(G >= 1 && rep >= 1 && (kind == LNL_NORM_RMSNORM || mean));
    if (dinp) {
        LNL_OMP(parallel for schedule(static) if(parallel: (size_t)N * C > LNL_PAR_MIN_ELEMS))
        for (int r = 0; r < N; r++) {
            size_t goff = (size_t)lnl_norm_group(r, G, rep) * C;
            float mu = kind == LNL_NORM_LAYERNORM ? mean[r] : 0.0f;
            lnl_norm_row_backward(dinp + (size_t)r * C, dout + (size_t)r * C, inp + (size_t)r * C,
                                  weight ? weight + goff : NULL, C, kind, mu, rstd[r], scale);
        }
    }
    if (dweight || dbias) {
        /* narrow column blocks so that even C = 64 (per-head norms) splits among threads */
        enum { CB = 16 };
        int ncb = (C + CB - 1) / CB;
        LNL_OMP(parallel for schedule(static) if(parallel: (size_t)N * C > LNL_PAR_MIN_ELEMS))
        for (int cb = 0; cb < ncb; cb++)
            lnl_norm_param_grad_cols(dweight, dbias, dout, inp, mean, rstd, N, C, G, rep, kind, scale, cb * CB,
                                     imin(C, cb * CB + CB));
    }
}

/* ---- elementwise (dynamic) norms, DyT and Derf: rows in parallel for out/dinp; the parameter
 * gradients by column blocks in parallel, each block summing its rows in order, and the scalars
 * a and s from per-block partial sums added in block order: the same bits on any thread count ---- */

static void cpu_dyn_norm_forward(float *out, const float *inp, const float *weight, const float *bias,
                                 const float *alpha, const float *shift, int N, int C, int G, int rep, LnlNormKind kind,
                                 float scale) {
    assert(G >= 1 && rep >= 1 && lnl_norm_is_dynamic(kind) && alpha);
    LNL_OMP(parallel for schedule(static) if(parallel: (size_t)N * C > LNL_PAR_MIN_ELEMS))
    for (int r = 0; r < N; r++) lnl_dyn_norm_row(out, inp, weight, bias, alpha, shift, r, C, G, rep, kind, scale);
}

static void cpu_dyn_norm_backward(float *dinp, float *dweight, float *dbias, float *dalpha, float *dshift,
                                  const float *dout, const float *inp, const float *weight, const float *alpha,
                                  const float *shift, int N, int C, int G, int rep, LnlNormKind kind, float scale) {
    assert(G >= 1 && rep >= 1 && lnl_norm_is_dynamic(kind) && alpha);
    enum { CB = 16, MAXG = 4 }; /* column block; weight sets (the q/k/v norms have 3) */
    if (dinp) {
        LNL_OMP(parallel for schedule(static) if(parallel: (size_t)N * C > LNL_PAR_MIN_ELEMS))
        for (int r = 0; r < N; r++) {
            const int g = lnl_norm_group(r, G, rep);
            const double a = alpha[g], s = shift ? shift[g] : 0.0;
            const float *x = inp + (size_t)r * C, *d = dout + (size_t)r * C;
            const float *w = weight ? weight + (size_t)g * C : NULL;
            float *dx = dinp + (size_t)r * C;
            for (int i = 0; i < C; i++)
                dx[i] += (float)((double)scale * d[i] * (w ? w[i] : 1.0) * lnl_dyn_dphi(kind, a * x[i] + s) * a);
        }
    }
    if (!dweight && !dbias && !dalpha && !dshift) return;
    const int ncb = (C + CB - 1) / CB;
    double *part = G <= MAXG ? malloc((size_t)ncb * (size_t)G * 2 * sizeof(double)) : NULL;
    if (!part) { /* the reference's serial sums need no scratch */
        lnl_ref_dyn_norm_backward(NULL, dweight, dbias, dalpha, dshift, dout, inp, weight, alpha, shift, N, C, G, rep,
                                  kind, scale);
        return;
    }
    LNL_OMP(parallel for schedule(static) if(parallel: (size_t)N * C > LNL_PAR_MIN_ELEMS))
    for (int cb = 0; cb < ncb; cb++) {
        const int c0 = cb * CB, c1 = imin(C, c0 + CB);
        double dw[MAXG][CB] = {{0}}, db[MAXG][CB] = {{0}}, da[MAXG] = {0}, ds[MAXG] = {0};
        for (int r = 0; r < N; r++) {
            const int g = lnl_norm_group(r, G, rep);
            const double a = alpha[g], s = shift ? shift[g] : 0.0;
            const float *w = weight ? weight + (size_t)g * C : NULL;
            for (int i = c0; i < c1; i++) {
                const size_t k = (size_t)r * C + (size_t)i;
                const double z = a * inp[k] + s, d = (double)scale * dout[k];
                const double dz = d * (w ? w[i] : 1.0) * lnl_dyn_dphi(kind, z);
                dw[g][i - c0] += d * lnl_dyn_phi(kind, z);
                db[g][i - c0] += d;
                da[g] += dz * inp[k];
                ds[g] += dz;
            }
        }
        for (int g = 0; g < G; g++) {
            for (int i = c0; i < c1; i++) {
                if (dweight) dweight[(size_t)g * C + (size_t)i] += (float)dw[g][i - c0];
                if (dbias) dbias[(size_t)g * C + (size_t)i] += (float)db[g][i - c0];
            }
            part[((size_t)cb * (size_t)G + (size_t)g) * 2] = da[g];
            part[((size_t)cb * (size_t)G + (size_t)g) * 2 + 1] = ds[g];
        }
    }
    for (int g = 0; g < G; g++) {
        double da = 0.0, ds = 0.0;
        for (int cb = 0; cb < ncb; cb++) {
            da += part[((size_t)cb * (size_t)G + (size_t)g) * 2];
            ds += part[((size_t)cb * (size_t)G + (size_t)g) * 2 + 1];
        }
        if (dalpha) dalpha[g] += (float)da;
        if (dshift) dshift[g] += (float)ds;
    }
    free(part);
}

/* ---- attention: one (batch, head) pair per task ----
 * Scores (and, backward, dout . v) are formed in tiles of MM_MR queries x ATT_KB keys against
 * a transposed copy of the key block in a stack buffer of ATT_KB x ATT_HC floats (64 KiB;
 * wider heads go in slices), for key blocks at or below the diagonal only. The products with
 * att or dscore (out, dq, dk, dv) are tiles of MM_MR rows x head size. Diagonal tiles also
 * form a few scores above the diagonal, which the mask then overwrites with zeros, and the
 * products run over those zero weights, which adds exact zeros for finite inputs. The saved
 * att row doubles as the score buffer and datt as the backward's, so nothing is allocated. */
#define ATT_KB 64
#define ATT_HC 256

/* S[t, k0 + j] = rows_t . keys_{k0 + j} for t in [k0, T), j < kn (S has row length T). */
static void att_block_dots(float *S, int T, int k0, int kn, const float *rows, size_t ldr, const float *keys,
                           size_t ldk, int hs, float *kt) {
    for (int t = k0; t < T; t++) memset(S + (size_t)t * T + k0, 0, (size_t)kn * sizeof(float));
    for (int i0 = 0; i0 < hs; i0 += ATT_HC) {
        int ic = imin(ATT_HC, hs - i0);
        for (int j = 0; j < kn; j++) {
            const float *kr = keys + (size_t)(k0 + j) * ldk + i0;
            for (int i = 0; i < ic; i++) kt[i * kn + j] = kr[i];
        }
        mm_axpy_block(S + k0, (size_t)T, k0, T, kn, rows + i0, ldr, 1, kt, (size_t)kn, ic, 1.0f);
    }
}

/* Row t of the causal softmax in place: a[t2] = softmax(s)[t2] over t2 <= t, zero after, with
 * s = sc * a, capped (lnl_softcap) if cap > 0. Returns the row's largest logit before the cap,
 * sc * max a[t2] over t2 <= t (sc > 0). */
static float att_softmax_row(float *a, int t, int T, float sc, float cap) {
    float mx = max_f(a, t + 1);
    if (cap > 0) {
        const float smx = (float)lnl_softcap((double)sc * mx, cap); /* the cap is increasing */
        for (int t2 = 0; t2 <= t; t2++) a[t2] = lnl_expf_approx((float)lnl_softcap((double)sc * a[t2], cap) - smx);
    } else {
        for (int t2 = 0; t2 <= t; t2++) a[t2] = lnl_expf_approx(sc * (a[t2] - mx));
    }
    float iz = (float)(1.0 / lnl_sum_d(a, t + 1));
    for (int t2 = 0; t2 <= t; t2++) a[t2] *= iz;
    for (int t2 = t + 1; t2 < T; t2++) a[t2] = 0.0f;
    return sc * mx;
}

/* Row t of the softmax backward in place: d[t2] = a[t2] (d[t2] - a . d) over t2 <= t, zero after. */
static void att_softmax_grad_row(float *d, const float *a, int t, int T) {
    float s = (float)dot_d(a, d, t + 1);
    for (int t2 = 0; t2 <= t; t2++) d[t2] = a[t2] * (d[t2] - s);
    for (int t2 = t + 1; t2 < T; t2++) d[t2] = 0.0f;
}

/* With a softcap, row t of dscore from the capped score back to the raw one: d[t2] *= ds/dz at
 * z = sc * q . k_t2, recomputed (the forward keeps only att). keys: row t2 at keys + t2 * ldk. */
static void att_cap_grad_row(float *d, const float *q, const float *keys, size_t ldk, int hs, int t, float sc,
                             float cap) {
    for (int t2 = 0; t2 <= t; t2++)
        d[t2] *= (float)lnl_softcap_grad((double)sc * dot_d(q, keys + (size_t)t2 * ldk, hs), cap);
}

#ifdef LNL_HAVE_BLAS
/* Attention of one (batch, head) pair on single-threaded sgemm calls, in blocks of ATT_QB
 * queries against only the keys at or before the block's last query: about (T + ATT_QB) / 2T
 * of the full T x T products. Used when OpenBLAS runs one thread per call (the OpenMP loop over
 * pairs supplies the parallelism); the scores above the diagonal inside a diagonal block are
 * formed and then masked, and the products run over those zero weights (exact zeros). */
#define ATT_QB 64

static void att_pair_forward_blas(float *O, float *A, float *R, const float *Q, const float *K, const float *V, int T,
                                  int hs, int C, float sc, float cap) {
    const int C3 = 3 * C;
    for (int i0 = 0; i0 < T; i0 += ATT_QB) {
        int m = imin(ATT_QB, T - i0), nk = i0 + m;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nk, hs, 1.0f, Q + (size_t)i0 * C3, C3, K, C3, 0.0f,
                    A + (size_t)i0 * T, T);
        for (int t = i0; t < i0 + m; t++) {
            float mx = att_softmax_row(A + (size_t)t * T, t, T, sc, cap);
            if (R) R[t] = mx;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hs, nk, 1.0f, A + (size_t)i0 * T, T, V, C3, 0.0f,
                    O + (size_t)i0 * C, C);
    }
}

static void att_pair_backward_blas(float *dQ, float *dK, float *dV, float *D, const float *dO, const float *Q,
                                   const float *K, const float *V, const float *A, int T, int hs, int C, float sc,
                                   float cap) {
    const int C3 = 3 * C;
    for (int i0 = 0; i0 < T; i0 += ATT_QB) {
        int m = imin(ATT_QB, T - i0), nk = i0 + m;
        /* D = dout . v, then the softmax backward, then dq += sc * dscore . k */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nk, hs, 1.0f, dO + (size_t)i0 * C, C, V, C3, 0.0f,
                    D + (size_t)i0 * T, T);
        for (int t = i0; t < i0 + m; t++) {
            att_softmax_grad_row(D + (size_t)t * T, A + (size_t)t * T, t, T);
            if (cap > 0) att_cap_grad_row(D + (size_t)t * T, Q + (size_t)t * C3, K, (size_t)C3, hs, t, sc, cap);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hs, nk, sc, D + (size_t)i0 * T, T, K, C3, 1.0f,
                    dQ + (size_t)i0 * C3, C3);
    }
    /* key block j0: dk += sc * dscore[t >= j0, block]^T q_t;  dv += att[t >= j0, block]^T dout_t */
    for (int j0 = 0; j0 < T; j0 += ATT_QB) {
        int m = imin(ATT_QB, T - j0);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, hs, T - j0, sc, D + (size_t)j0 * T + j0, T,
                    Q + (size_t)j0 * C3, C3, 1.0f, dK + (size_t)j0 * C3, C3);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, hs, T - j0, 1.0f, A + (size_t)j0 * T + j0, T,
                    dO + (size_t)j0 * C, C, 1.0f, dV + (size_t)j0 * C3, C3);
    }
}
#endif

/* The sgemm form when BLAS is serial per call; the register-tiled form otherwise (no BLAS, or
 * OpenBLAS's own threads, which would nest inside the loop over pairs). */
static int att_use_blas(void) {
#ifdef LNL_HAVE_BLAS
    return blas_is_serial();
#else
    return 0;
#endif
}

static void cpu_attention_forward(float *out, float *att, float *rowmax, const float *qkv, int B, int T, int C,
                                  int NH, float softcap) {
    int hs = C / NH;
    size_t C3 = 3 * (size_t)C;
    float sc = (float)(1.0 / sqrt((double)hs));
    const int use_blas = att_use_blas(), small = lnl_att_small_fits(T, hs, softcap);
    LNL_OMP(parallel for collapse(2) schedule(static) if(parallel: (size_t)B * NH * T * T * (C / NH) > LNL_PAR_MIN_MACS))
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            float kt[ATT_KB * ATT_HC];
            const float *Q = qkv + (size_t)b * T * C3 + (size_t)h * hs, *K = Q + C, *V = Q + 2 * (size_t)C;
            float *A = att + ((size_t)b * NH + h) * T * T;
            float *O = out + (size_t)b * T * C + (size_t)h * hs;
            float *R = rowmax ? rowmax + ((size_t)b * NH + h) * T : NULL;
            if (small) {
#ifdef LNL_HAVE_ATT_SMALL
                lnl_att_small_forward(O, A, R, Q, K, V, T, hs, C, sc);
                continue;
#endif
            }
#ifdef LNL_HAVE_BLAS
            if (use_blas) {
                att_pair_forward_blas(O, A, R, Q, K, V, T, hs, C, sc, softcap);
                continue;
            }
#endif
            for (int k0 = 0; k0 < T; k0 += ATT_KB) att_block_dots(A, T, k0, imin(ATT_KB, T - k0), Q, C3, K, C3, hs, kt);
            for (int t = 0; t < T; t++) {
                float mx = att_softmax_row(A + (size_t)t * T, t, T, sc, softcap);
                if (R) R[t] = mx;
            }
            for (int t0 = 0; t0 < T; t0 += MM_MR) {
                int mr = imin(MM_MR, T - t0);
                for (int r = 0; r < mr; r++) memset(O + (size_t)(t0 + r) * C, 0, (size_t)hs * sizeof(float));
                mm_axpy_block(O + (size_t)t0 * C, (size_t)C, 0, mr, hs, A + (size_t)t0 * T, (size_t)T, 1, V, C3,
                              t0 + mr, 1.0f);
            }
        }
}

/* As in the reference, datt ends up holding the gradient of the scaled scores before any cap. */
static void cpu_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att,
                                   int B, int T, int C, int NH, float softcap) {
    int hs = C / NH;
    size_t C3 = 3 * (size_t)C;
    float sc = (float)(1.0 / sqrt((double)hs));
    const int use_blas = att_use_blas(), small = lnl_att_small_fits(T, hs, softcap);
    LNL_OMP(parallel for collapse(2) schedule(static) if(parallel: (size_t)B * NH * T * T * (C / NH) > LNL_PAR_MIN_MACS))
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            float kt[ATT_KB * ATT_HC];
            const float *Q = qkv + (size_t)b * T * C3 + (size_t)h * hs, *K = Q + C, *V = Q + 2 * (size_t)C;
            float *dQ = dqkv + (size_t)b * T * C3 + (size_t)h * hs, *dK = dQ + C, *dV = dQ + 2 * (size_t)C;
            const float *dO = dout + (size_t)b * T * C + (size_t)h * hs;
            const float *A = att + ((size_t)b * NH + h) * T * T;
            float *D = datt + ((size_t)b * NH + h) * T * T;
            if (small) {
#ifdef LNL_HAVE_ATT_SMALL
                lnl_att_small_backward(dQ, dK, dV, D, dO, Q, K, V, A, T, hs, C, sc);
                continue;
#endif
            }
#ifdef LNL_HAVE_BLAS
            if (use_blas) {
                att_pair_backward_blas(dQ, dK, dV, D, dO, Q, K, V, A, T, hs, C, sc, softcap);
                continue;
            }
#endif
            /* D = dout . v, then the softmax backward: dscore = a * (D - sum_t2 a * D) */
            for (int k0 = 0; k0 < T; k0 += ATT_KB)
                att_block_dots(D, T, k0, imin(ATT_KB, T - k0), dO, (size_t)C, V, C3, hs, kt);
            for (int t = 0; t < T; t++) {
                att_softmax_grad_row(D + (size_t)t * T, A + (size_t)t * T, t, T);
                if (softcap > 0)
                    att_cap_grad_row(D + (size_t)t * T, Q + (size_t)t * C3, K, C3, hs, t, sc, softcap);
            }
            for (int t0 = 0; t0 < T; t0 += MM_MR) {
                int mr = imin(MM_MR, T - t0);
                /* dq_t += sc * sum_{t2 <= t} dscore[t, t2] k_t2 */
                mm_axpy_block(dQ + (size_t)t0 * C3, C3, 0, mr, hs, D + (size_t)t0 * T, (size_t)T, 1, K, C3, t0 + mr,
                              sc);
                /* dk_s += sc * sum_{t >= s} dscore[t, s] q_t;  dv_s += sum_{t >= s} att[t, s] dout_t */
                mm_axpy_block(dK + (size_t)t0 * C3, C3, 0, mr, hs, D + (size_t)t0 * T + t0, 1, (size_t)T,
                              Q + (size_t)t0 * C3, C3, T - t0, sc);
                mm_axpy_block(dV + (size_t)t0 * C3, C3, 0, mr, hs, A + (size_t)t0 * T + t0, 1, (size_t)T,
                              dO + (size_t)t0 * C, (size_t)C, T - t0, 1.0f);
            }
        }
}

/* ---- GELU, as x * sigmoid(2u) = 0.5 x (1 + tanh u), which needs only exp ---- */

static void cpu_gelu_forward(float *out, const float *inp, size_t n) {
    const float k = (float)LNL_GELU_K, a = (float)LNL_GELU_A;
    LNL_OMP(parallel for simd schedule(static) if(parallel: n > LNL_PAR_MIN_ELEMS))
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = k * (x + a * x * x * x);
        out[i] = x / (1.0f + lnl_expf_approx(-2.0f * u));
    }
}

static void cpu_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    const float k = (float)LNL_GELU_K, a = (float)LNL_GELU_A;
    LNL_OMP(parallel for simd schedule(static) if(parallel: n > LNL_PAR_MIN_ELEMS))
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = k * (x + a * x * x * x);
        float du = k * (1.0f + 3.0f * a * x * x);
        float e = lnl_expf_approx(-2.0f * u);
        float s = 1.0f / (1.0f + e), s1 = e * s; /* s1 = 1 - s without cancellation for large x */
        dinp[i] = (s + 2.0f * x * s * s1 * du) * dout[i];
    }
}

/* ---- softmax + cross-entropy: rows in parallel ---- */

static void cpu_softmax_xent_forward(float *losses, float *probs, const float *logits, const int32_t *targets, int N,
                                     int V) {
    LNL_OMP(parallel for schedule(static) if(parallel: (size_t)N * V > LNL_PAR_MIN_ELEMS))
    for (int r = 0; r < N; r++) {
        const float *x = logits + (size_t)r * V;
        float *p = probs + (size_t)r * V;
        int32_t tg = targets[r];
        assert(tg < V);
        float mx = max_f(x, V);
        float xt = tg >= 0 ? x[tg] : 0.0f; /* before p (may alias x) is written */
        for (int v = 0; v < V; v++) p[v] = lnl_expf_approx(x[v] - mx);
        double z = lnl_sum_d(p, V);
        float iz = (float)(1.0 / z);
        for (int v = 0; v < V; v++) p[v] *= iz;
        losses[r] = tg >= 0 ? (float)(log(z) - ((double)xt - mx)) : 0.0f;
    }
}

static void cpu_softmax_xent_backward(float *dlogits, const float *probs, const int32_t *targets, const float *dloss,
                                      int N, int V) {
    LNL_OMP(parallel for schedule(static) if(parallel: (size_t)N * V > LNL_PAR_MIN_ELEMS))
    for (int r = 0; r < N; r++) {
        int32_t tg = targets[r];
        if (tg < 0) continue;
        const float *p = probs + (size_t)r * V;
        float *d = dlogits + (size_t)r * V;
        float dl = dloss[r];
        for (int v = 0; v < V; v++) d[v] += p[v] * dl;
        d[tg] -= dl;
    }
}

/* ---- cross-entropy on one buffer: the forward reads each row twice (the max, then the sum of
 * exponentials, while the row is still in cache) and writes nothing of size V; the backward turns
 * the row into dlogits in place, recomputing the probabilities instead of storing them. ---- */

/* sum_v exp(x[v] - mx) in double, in exactly the order lnl_sum_d adds the stored exponentials of
 * lnl_softmax_xent_forward (8 lanes, then the tail, then the lanes), through a small buffer. */
static double sum_exp_shift_d(const float *x, float mx, int n) {
    enum { CH = 512 }; /* a multiple of LNL_LANES */
    float e[CH];
    double acc[LNL_LANES] = {0};
    int n8 = n - n % LNL_LANES;
    for (int i0 = 0; i0 < n8; i0 += CH) {
        int m = imin(CH, n8 - i0);
        for (int j = 0; j < m; j++) e[j] = lnl_expf_approx(x[i0 + j] - mx);
        for (int j = 0; j < m; j += LNL_LANES)
            for (int k = 0; k < LNL_LANES; k++) acc[k] += (double)e[j + k];
    }
    double s = 0.0;
    for (int i = n8; i < n; i++) s += (double)lnl_expf_approx(x[i] - mx);
    for (int k = 0; k < LNL_LANES; k++) s += acc[k];
    return s;
}

static void cpu_xent_forward(float *losses, float *rmax, float *inv_z, const float *logits, const int32_t *targets,
                             int N, int V) {
    LNL_OMP(parallel for schedule(static) if(parallel: (size_t)N * V > LNL_PAR_MIN_ELEMS))
    for (int r = 0; r < N; r++) {
        const float *x = logits + (size_t)r * V;
        int32_t tg = targets[r];
        assert(tg < V);
        float mx = max_f(x, V);
        double z = sum_exp_shift_d(x, mx, V);
        rmax[r] = mx;
        inv_z[r] = (float)(1.0 / z);
        losses[r] = tg >= 0 ? (float)(log(z) - ((double)x[tg] - mx)) : 0.0f;
    }
}

static void cpu_xent_backward_inplace(float *logits, const float *rmax, const float *inv_z, const int32_t *targets,
                                      const float *dloss, const float *dlogz, float softcap, int N, int V) {
    LNL_OMP(parallel for schedule(static) if(parallel: (size_t)N * V > LNL_PAR_MIN_ELEMS))
    for (int r = 0; r < N; r++) {
        float *x = logits + (size_t)r * V;
        int32_t tg = targets[r];
        if (tg < 0) {
            memset(x, 0, (size_t)V * sizeof(float));
            continue;
        }
        /* dp = dloss + dlogz is dloss itself without a z-loss: the floats of lnl_softmax_xent_backward */
        const float mx = rmax[r], iz = inv_z[r], dl = dloss[r], dp = dl + (dlogz ? dlogz[r] : 0.0f);
        const float ct = x[tg], pt = lnl_expf_approx(ct - mx) * iz;
        if (softcap > 0) {
            /* 1 - t^2 in double: near saturation (t -> 1) a float t's rounding would be a large part
             * of the small factor */
            const double inv_cap = 1.0 / softcap;
            for (int v = 0; v < V; v++) {
                const float c = x[v];
                const double t = c * inv_cap;
                x[v] = ((lnl_expf_approx(c - mx) * iz) * dp) * (float)((1.0 - t) * (1.0 + t));
            }
            const double t = ct * inv_cap;
            x[tg] = (pt * dp - dl) * (float)((1.0 - t) * (1.0 + t));
        } else {
            for (int v = 0; v < V; v++) x[v] = (lnl_expf_approx(x[v] - mx) * iz) * dp;
            x[tg] = pt * dp - dl; /* rounded as lnl_softmax_xent_backward rounds it */
        }
    }
}

/* ---- logit softcap: libm's tanhf per element, the elements split among threads ---- */
static void cpu_softcap_forward(float *out, const float *inp, size_t n, float cap) {
    LNL_OMP(parallel for schedule(static) if(parallel: n > LNL_PAR_MIN_ELEMS))
    for (size_t i = 0; i < n; i++) out[i] = cap * tanhf(inp[i] / cap);
}

/* ---- AdamW and elementwise helpers: the element math is shared with the reference, the
 * loops are split among threads ---- */

/* Memory-bound; sqrtf's errno branch keeps GCC from vectorizing it unless the build adds
 * -fno-math-errno (which would change no result). */
static void cpu_adamw_update(float *param, const float *grad, float gscale, float *m, float *v, size_t n, float lr,
                             float beta1, float beta2, float eps, float weight_decay, int t) {
    LnlAdamCoef c = lnl_adam_coef(lr, beta1, beta2, eps, weight_decay, t);
    LNL_OMP(parallel for schedule(static) if(parallel: n > LNL_PAR_MIN_ELEMS))
    for (size_t i = 0; i < n; i++) lnl_adam_elem(&param[i], gscale * grad[i], &m[i], &v[i], &c);
}

static void cpu_zero(float *x, size_t n) {
    enum { CHUNK = 1 << 16 }; /* floats per task: 256 KiB */
    size_t nc = (n + CHUNK - 1) / CHUNK;
    LNL_OMP(parallel for schedule(static) if(parallel: n > 16 * (size_t)LNL_PAR_MIN_ELEMS))
    for (size_t c = 0; c < nc; c++) {
        size_t lo = c * CHUNK, len = n - lo < CHUNK ? n - lo : CHUNK;
        memset(x + lo, 0, len * sizeof(float));
    }
}

static void cpu_axpby(float *out, float a, const float *x, float b, const float *y, size_t n) {
    LNL_OMP(parallel for simd schedule(static) if(parallel: n > LNL_PAR_MIN_ELEMS))
    for (size_t i = 0; i < n; i++) out[i] = a * x[i] + b * y[i];
}

static void cpu_axpy(float *out, float a, const float *x, size_t n) {
    LNL_OMP(parallel for simd schedule(static) if(parallel: n > LNL_PAR_MIN_ELEMS))
    for (size_t i = 0; i < n; i++) out[i] += a * x[i];
}

/* Fixed split into SUMSQ_PARTS contiguous parts summed in order: the result does not depend
 * on the thread count. */
static double cpu_sumsq(const float *x, size_t n) {
    enum { SUMSQ_PARTS = 64 };
    double part[SUMSQ_PARTS];
    size_t len = (n + SUMSQ_PARTS - 1) / SUMSQ_PARTS;
    LNL_OMP(parallel for schedule(static) if(parallel: n > LNL_PAR_MIN_ELEMS))
    for (int p = 0; p < SUMSQ_PARTS; p++) {
        size_t i0 = (size_t)p * len < n ? (size_t)p * len : n;
        size_t i1 = i0 + len < n ? i0 + len : n;
        lnl_d8 acc = {0};
        size_t i = i0;
        for (; i + LNL_LANES <= i1; i += LNL_LANES) {
            const lnl_d8 v = LNL_D8_LOAD(x + i);
            acc += v * v;
        }
        double s = 0.0;
        for (; i < i1; i++) s += (double)x[i] * x[i];
        part[p] = lnl_d8_add_lanes(s, &acc);
    }
    double s = 0.0;
    for (int p = 0; p < SUMSQ_PARTS; p++) s += part[p];
    return s;
}

/* ---- the cpu backend (kernels.h lists what a table holds). The reference is what runs for the
 * embedding (memory-bound copies and a scatter-add), the per-channel scale and decode attention
 * (O(npos * C) per token): nothing faster is worth having there. ---- */

const LnlKernelOps lnl_kernels_cpu_ops = {
    .name = "cpu",
    .matmul_forward = cpu_matmul_forward,
    .matmul_backward = cpu_matmul_backward,
    .norm_forward = cpu_norm_forward,
    .norm_backward = cpu_norm_backward,
    .dyn_norm_forward = cpu_dyn_norm_forward,
    .dyn_norm_backward = cpu_dyn_norm_backward,
    .attention_forward = cpu_attention_forward,
    .attention_backward = cpu_attention_backward,
    .attention_decode = lnl_ref_attention_decode,
    .gelu_forward = cpu_gelu_forward,
    .gelu_backward = cpu_gelu_backward,
    .embed_forward = lnl_ref_embed_forward,
    .embed_backward = lnl_ref_embed_backward,
    .softmax_xent_forward = cpu_softmax_xent_forward,
    .softmax_xent_backward = cpu_softmax_xent_backward,
    .xent_forward = cpu_xent_forward,
    .xent_backward_inplace = cpu_xent_backward_inplace,
    .softcap_forward = cpu_softcap_forward,
    .adamw_update = cpu_adamw_update,
    .zero = cpu_zero,
    .axpby = cpu_axpby,
    .axpy = cpu_axpy,
    .chanscale_forward = lnl_ref_chanscale_forward,
    .chanscale_backward = lnl_ref_chanscale_backward,
    .sumsq = cpu_sumsq,
};
