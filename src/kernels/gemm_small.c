/* fp32 products at the study's shapes, without packing (kernels.c's gemm_slice calls these where
 * lnl_gemm_small_fits says so). At widths 64-128 a BLAS call spends a fifth to a third of its
 * time packing its operands into panels (OpenBLAS's *copy routines); here the weight side is
 * small enough to stay in L1 as it is, and the activation side is read in place:
 *   forward      C (M, N) = A (M, K) . B (N, K)^T   B (the weight) transposed in 32-column panels
 *   input grad   C (M, N) = A (M, K) . B (K, N)     B read in place
 *   weight grad  C (M, N) += A (K, M)^T . B (K, N)  both read in place, k in blocks of GS_KC
 * with an 8 x 32 tile of C in 16 AVX-512 registers. Each element of C is its start (0, the bias,
 * or C) plus its K products added in order of k by fused multiply-adds, whatever the tile, slice
 * or thread count. */
#include "kernels_internal.h"

#include <assert.h>

#define GS_MR 8
#define GS_NR 32
#define GS_KC 256 /* k block of the weight gradient: its B block stays in L2 */
/* At most this many elements in the weight (the two sides other than the tokens): 64 KB, about L1.
 * s64's products (64 x 64 to 64 x 256) run 1.1-1.25x OpenBLAS's speed here; at s128's larger
 * ones (128 x 384, 128 x 512) the backward products measured up to 9% slower than OpenBLAS, whose
 * blocking keeps its panel of the weight in L1 where a tile here streams the whole weight. */
#define GS_MAX_SMALL 16384

int lnl_gemm_small_fits(int ta, int tb, int M, int N, int K, float beta) {
#if defined(__AVX512F__)
    if (M < 1 || N < 1 || K < 1 || N % GS_NR || (beta != 0.0f && beta != 1.0f)) return 0;
    if (!ta) return (size_t)K * N <= GS_MAX_SMALL; /* forward (tb) and input gradient */
    if (!tb) return (size_t)M * N <= GS_MAX_SMALL; /* weight gradient */
    return 0;
#else
    (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)beta;
    return 0;
#endif
}

#if defined(__AVX512F__)
#include <immintrin.h>

#define GS_INLINE static inline __attribute__((always_inline))

/* C rows r < mr (mr <= GS_MR), columns 0..31: start + sum_{k < K} A(r, k) B[k][0..32), where
 * A(r, k) = A[r + k * lda] if at (A stored transposed) else A[r * lda + k]; start: bias (if bias),
 * else C (if load), else 0. */
GS_INLINE void gs_tile(int K, const float *A, size_t lda, const int at, const float *B, size_t ldb, float *C,
                       size_t ldc, const float *bias, int load, const int mr) {
    __m512 c0[GS_MR], c1[GS_MR];
    for (int r = 0; r < mr; r++) {
        if (bias) {
            c0[r] = _mm512_loadu_ps(bias);
            c1[r] = _mm512_loadu_ps(bias + 16);
        } else if (load) {
            c0[r] = _mm512_loadu_ps(C + (size_t)r * ldc);
            c1[r] = _mm512_loadu_ps(C + (size_t)r * ldc + 16);
        } else {
            c0[r] = c1[r] = _mm512_setzero_ps();
        }
    }
    for (int k = 0; k < K; k++) {
        const __m512 b0 = _mm512_loadu_ps(B + (size_t)k * ldb), b1 = _mm512_loadu_ps(B + (size_t)k * ldb + 16);
        for (int r = 0; r < mr; r++) {
            const __m512 a = _mm512_set1_ps(at ? A[(size_t)k * lda + r] : A[(size_t)r * lda + k]);
            c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
        }
    }
    for (int r = 0; r < mr; r++) {
        _mm512_storeu_ps(C + (size_t)r * ldc, c0[r]);
        _mm512_storeu_ps(C + (size_t)r * ldc + 16, c1[r]);
    }
}

/* Rows [0, M) of one 32-column panel: whole 8-row tiles, then the rest. */
GS_INLINE void gs_panel(int M, int K, const float *A, size_t lda, const int at, const float *B, size_t ldb, float *C,
                        size_t ldc, const float *bias, int load) {
    int m0 = 0;
    for (; m0 + GS_MR <= M; m0 += GS_MR)
        gs_tile(K, at ? A + m0 : A + (size_t)m0 * lda, lda, at, B, ldb, C + (size_t)m0 * ldc, ldc, bias, load, GS_MR);
    const int mr = M - m0;
    if (mr > 0) gs_tile(K, at ? A + m0 : A + (size_t)m0 * lda, lda, at, B, ldb, C + (size_t)m0 * ldc, ldc, bias, load, mr);
}

void lnl_gemm_small(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                    float *C, int ldc, const float *bias) {
    assert(lnl_gemm_small_fits(ta, tb, M, N, K, beta));
    const int load = beta != 0.0f;
    if (!ta && tb) { /* forward: B^T one panel of 32 columns at a time */
        float bt[GS_MAX_SMALL]; /* K x GS_NR <= K x N <= GS_MAX_SMALL */
        for (int n0 = 0; n0 < N; n0 += GS_NR) {
            for (int j = 0; j < GS_NR; j++)
                for (int k = 0; k < K; k++) bt[(size_t)k * GS_NR + j] = B[(size_t)(n0 + j) * ldb + k];
            gs_panel(M, K, A, (size_t)lda, 0, bt, GS_NR, C + n0, (size_t)ldc, bias ? bias + n0 : NULL, load);
        }
    } else if (!ta) { /* input gradient */
        for (int n0 = 0; n0 < N; n0 += GS_NR)
            gs_panel(M, K, A, (size_t)lda, 0, B + n0, (size_t)ldb, C + n0, (size_t)ldc, bias ? bias + n0 : NULL, load);
    } else { /* weight gradient: k in blocks, each after the first adding to C */
        for (int k0 = 0; k0 < K; k0 += GS_KC) {
            const int kc = K - k0 < GS_KC ? K - k0 : GS_KC;
            for (int n0 = 0; n0 < N; n0 += GS_NR)
                gs_panel(M, kc, A + (size_t)k0 * lda, (size_t)lda, 1, B + (size_t)k0 * ldb + n0, (size_t)ldb, C + n0,
                         (size_t)ldc, k0 == 0 && bias ? bias + n0 : NULL, k0 > 0 || load);
        }
    }
}

#else
void lnl_gemm_small(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                    float *C, int ldc, const float *bias) {
    (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)A, (void)lda, (void)B, (void)ldb, (void)beta, (void)C;
    (void)ldc, (void)bias;
    assert(!"small products need AVX-512");
}
#endif
