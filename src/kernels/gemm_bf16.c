/* bf16 matrix products for the optional bf16 mode (lnl_kernels_set_bf16): C = op(A) op(B) with
 * both inputs rounded to bfloat16 (round to nearest even) and the products accumulated in fp32
 * by AVX512-BF16's VDPBF16PS, two k at a time. Single-threaded; kernels.c gives each OpenMP
 * thread its own slice and its own workspace. Built only where the compiler targets AVX512-BF16
 * (-march=native on such a CPU); elsewhere lnl_bf16_available() is 0 and nothing here runs.
 *
 * Blocking as in BLIS: a KC x NC block of op(B) packed once per (jc, pc), an MC x KC block of
 * op(A) per (jc, pc, ic), then an MR x NR micro-kernel over packed panels. Packed layout: pairs
 * (x[k], x[k+1]) as one 32-bit word, bf16 of the even k in the low half, which is the order
 * VDPBF16PS multiplies them in; padding rows, columns and the odd k are zero. */
#include "kernels_internal.h"

#include <assert.h>

#if defined(__AVX512BF16__) && defined(__AVX512F__)
#include <immintrin.h>
#define HAVE_BF16 1
#else
#define HAVE_BF16 0
#endif

#define BR_MR 8
#define BR_NR 48 /* three 16-lane vectors */
#define BR_KC 384
#define BR_MC 96
#define BR_NC 2016
#define BR_KP (BR_KC / 2)

size_t lnl_bf16_ws_words(void) { return (size_t)BR_MC * BR_KP + (size_t)BR_KP * BR_NC; }

int lnl_bf16_available(void) {
#if HAVE_BF16
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

/* fp32 -> bf16 bits, round to nearest even (NaN payloads are not preserved). */
static inline uint32_t bf16_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return u >> 16;
}

float lnl_bf16_round(float f) {
    uint32_t u = bf16_bits(f) << 16;
    float r;
    memcpy(&r, &u, 4);
    return r;
}

#if HAVE_BF16
static inline __mmask16 lane_mask(int n) { return n >= 16 ? (__mmask16)0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

/* 16 pair words (lo[j], hi[j]) for lanes j in m; hi NULL means zeros (the odd k at the end). */
static inline __m512i pair_rows(const float *lo, const float *hi, __mmask16 m) {
    __m512i l = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, lo)));
    if (!hi) return l;
    __m512i h = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, hi)));
    return _mm512_or_si512(l, _mm512_slli_epi32(h, 16));
}

/* dst[p * ld + r] = pair p of row r (rows x + r * ldx, r < nrows; zero rows beyond), p < (kc + 1) / 2:
 * eight runs along k interleaved by an 8 x 8 transpose of pair words, eight pairs at a time. The
 * same span of the npre rows after these eight is prefetched: packs read their rows once, from
 * memory, in runs too short for the hardware prefetcher to get ahead. */
static void pack_rows8(uint32_t *dst, size_t ld, const float *x, size_t ldx, int nrows, int kc, int npre) {
    int kp = (kc + 1) / 2;
    for (int p0 = 0; p0 < kp; p0 += 8) {
        __mmask16 m = lane_mask(kc - 2 * p0);
        __m256i r[8], t[8], u[8];
        for (int j = 0; j < npre; j++) __builtin_prefetch(x + (size_t)(8 + j) * ldx + 2 * p0, 0, 3);
        for (int j = 0; j < 8; j++) {
            __m512 v = _mm512_maskz_loadu_ps(j < nrows ? m : 0, x + (size_t)(j < nrows ? j : 0) * ldx + 2 * p0);
            r[j] = (__m256i)_mm512_cvtneps_pbh(v);
        }
        for (int j = 0; j < 8; j += 2) {
            t[j] = _mm256_unpacklo_epi32(r[j], r[j + 1]);
            t[j + 1] = _mm256_unpackhi_epi32(r[j], r[j + 1]);
        }
        for (int j = 0; j < 8; j += 4) {
            u[j] = _mm256_unpacklo_epi64(t[j], t[j + 2]);
            u[j + 1] = _mm256_unpackhi_epi64(t[j], t[j + 2]);
            u[j + 2] = _mm256_unpacklo_epi64(t[j + 1], t[j + 3]);
            u[j + 3] = _mm256_unpackhi_epi64(t[j + 1], t[j + 3]);
        }
        int np = kp - p0 < 8 ? kp - p0 : 8;
        uint32_t *d = dst + (size_t)p0 * ld;
        for (int q = 0; q < 4; q++) { /* pairs q and q + 4: u[q] holds rows 0-3, u[q + 4] rows 4-7 */
            if (q < np)
                _mm256_storeu_si256((__m256i *)(d + (size_t)q * ld), _mm256_permute2x128_si256(u[q], u[q + 4], 0x20));
            if (q + 4 < np)
                _mm256_storeu_si256((__m256i *)(d + (size_t)(q + 4) * ld),
                                    _mm256_permute2x128_si256(u[q], u[q + 4], 0x31));
        }
    }
}

/* Packs rows (columns where ta) [i0, i0 + mc) of op(A) and prefetches the next mc of them, up to M. */
static void pack_a(uint32_t *ap, int ta, const float *A, int lda, int M, int i0, int mc, int k0, int kc) {
    int kp = (kc + 1) / 2, npre = M - i0 - mc < mc ? M - i0 - mc : mc;
    if (ta) { /* op(A) columns along memory: rows k and k + 1 give the pairs of 16 columns at once, and the
               * whole strip of mc columns is read before the next row pair (longer runs, fewer pages) */
        for (int p = 0; p < kp; p++) {
            const float *lo = A + (size_t)(k0 + 2 * p) * lda + i0, *hi = 2 * p + 1 < kc ? lo + lda : NULL;
            for (int i = 0; i < npre; i += 16) {
                __builtin_prefetch(lo + mc + i, 0, 2);
                if (hi) __builtin_prefetch(hi + mc + i, 0, 2);
            }
            for (int i = 0; i < mc; i += 16) {
                __m512i v = pair_rows(lo + i, hi ? hi + i : NULL, lane_mask(mc - i));
                uint32_t *d = ap + (size_t)i * kp + (size_t)p * BR_MR;
                _mm256_storeu_si256((__m256i *)d, _mm512_castsi512_si256(v));
                if (i + 8 < mc) _mm256_storeu_si256((__m256i *)(d + (size_t)8 * kp), _mm512_extracti64x4_epi64(v, 1));
            }
        }
        return;
    }
    for (int ir = 0; ir < mc; ir += BR_MR) { /* rows along k */
        int left = M - i0 - ir - BR_MR;
        pack_rows8(ap + (size_t)ir * kp, BR_MR, A + (size_t)(i0 + ir) * lda + k0, (size_t)lda, mc - ir, kc,
                   left < 0 ? 0 : left < BR_MR ? left : BR_MR);
    }
}

static void pack_b(uint32_t *bp, int tb, const float *B, int ldb, int N, int k0, int kc, int j0, int nc) {
    int kp = (kc + 1) / 2;
    for (int jr = 0; jr < nc; jr += BR_NR) {
        uint32_t *dst = bp + (size_t)jr * kp;
        int nr = nc - jr < BR_NR ? nc - jr : BR_NR;
        if (!tb) { /* op(B) rows along memory: rows k and k + 1 give 16 pairs at once */
            for (int p = 0; p < kp; p++) {
                const float *lo = B + (size_t)(k0 + 2 * p) * ldb + j0 + jr;
                const float *hi = 2 * p + 1 < kc ? lo + ldb : NULL;
                for (int v = 0; v < BR_NR / 16; v++)
                    _mm512_storeu_si512(dst + (size_t)p * BR_NR + 16 * v,
                                        pair_rows(lo + 16 * v, hi ? hi + 16 * v : NULL, lane_mask(nr - 16 * v)));
            }
        } else { /* columns along k, eight at a time */
            for (int j = 0; j < BR_NR; j += 8) {
                int left = N - j0 - jr - j - 8;
                pack_rows8(dst + j, BR_NR, B + (size_t)(j0 + jr + j) * ldb + k0, (size_t)ldb, nr - j, kc,
                           left < 0 ? 0 : left < 8 ? left : 8);
            }
        }
    }
}

/* Rows of a block of op(A) in memory, span floats each from x: a micro-kernel prefetches them over its
 * k loop, a line or two every 8 k-pairs, so that the next pack reads cache and the memory traffic
 * overlaps the products. Used where ta only: dwte's pack reads 384 rows 200 KB apart, 384 bytes of
 * each, and this measured 0.82-0.98x its time; dx's pack (ta = 0, 1.5 KB runs the hardware prefetcher
 * follows) measured 1.15-1.25x slower with it. */
typedef struct {
    const float *x; /* first row */
    size_t ld;
    int rows, span, lines; /* lines: 64-byte lines a row spans, with one for misalignment */
} PrefetchShare;

/* Share t of nt of op(A)'s block (i0, mc, k0, kc). */
static PrefetchShare prefetch_share(int ta, const float *A, int lda, int i0, int mc, int k0, int kc, int t, int nt) {
    int rows = ta ? kc : mc, span = ta ? mc : kc, r0 = rows * t / nt, r1 = rows * (t + 1) / nt;
    const float *x = ta ? A + (size_t)(k0 + r0) * lda + i0 : A + (size_t)(i0 + r0) * lda + k0;
    return (PrefetchShare){x, (size_t)lda, r1 - r0, span, (span + 15) / 16 + 1};
}

/* C tile (mr x nr) = (first ? beta C : C) + A panel . B panel over kp pairs. */
static void micro_kernel(int kp, const uint32_t *a, const uint32_t *b, float *c, int ldc, int mr, int nr, int first,
                         float beta, const PrefetchShare *pf) {
    /* The tile's lines are fetched for writing while the k loop runs: C is often far from L1 (the LM head's
     * logits are 400 MB), and the stores at the end would otherwise wait for them. */
    for (int r = 0; r < mr; r++) {
        const float *cp = c + (size_t)r * ldc;
        for (int j = 0; j < nr; j += 16) __builtin_prefetch(cp + j, 1, 3);
        __builtin_prefetch(cp + nr - 1, 1, 3);
    }
    __m512 acc[BR_MR][3];
    for (int r = 0; r < BR_MR; r++) acc[r][0] = acc[r][1] = acc[r][2] = _mm512_setzero_ps();
    int pl = 0, pn = pf->rows * pf->lines, per = (pn + (kp + 7) / 8 - 1) / ((kp + 7) / 8);
    for (int p = 0; p < kp; p++) {
        if (!(p & 7))
            for (int q = 0; q < per && pl < pn; q++, pl++) {
                const float *row = pf->x + (size_t)(pl / pf->lines) * pf->ld;
                int off = 16 * (pl % pf->lines);
                __builtin_prefetch(row + (off < pf->span ? off : pf->span - 1), 0, 2);
            }
        const uint32_t *bb = b + (size_t)p * BR_NR;
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(bb), b1 = (__m512bh)_mm512_loadu_si512(bb + 16);
        __m512bh b2 = (__m512bh)_mm512_loadu_si512(bb + 32);
        const uint32_t *aa = a + (size_t)p * BR_MR;
        for (int r = 0; r < BR_MR; r++) {
            __m512bh ar = (__m512bh)_mm512_set1_epi32((int)aa[r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], ar, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], ar, b1);
            acc[r][2] = _mm512_dpbf16_ps(acc[r][2], ar, b2);
        }
    }
    __mmask16 m[3] = {lane_mask(nr), lane_mask(nr - 16), lane_mask(nr - 32)};
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < 3; v++) {
            if (!m[v]) continue;
            float *cp = c + (size_t)r * ldc + 16 * v;
            __m512 x = acc[r][v];
            if (!first || beta != 0.0f) {
                __m512 old = _mm512_maskz_loadu_ps(m[v], cp);
                x = first && beta != 1.0f ? _mm512_fmadd_ps(_mm512_set1_ps(beta), old, x) : _mm512_add_ps(old, x);
            }
            _mm512_mask_storeu_ps(cp, m[v], x);
        }
}
#endif

void lnl_gemm_bf16(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                   float *C, int ldc, uint32_t *ws) {
#if HAVE_BF16
    if (M <= 0 || N <= 0) return;
    assert(K > 0);
    uint32_t *ap = ws, *bp = ws + (size_t)BR_MC * BR_KP;
    for (int jc = 0; jc < N; jc += BR_NC) {
        int nc = N - jc < BR_NC ? N - jc : BR_NC;
        for (int pc = 0; pc < K; pc += BR_KC) {
            int kc = K - pc < BR_KC ? K - pc : BR_KC, kp = (kc + 1) / 2;
            pack_b(bp, tb, B, ldb, N, pc, kc, jc, nc);
            for (int ic = 0; ic < M; ic += BR_MC) {
                int mc = M - ic < BR_MC ? M - ic : BR_MC;
                pack_a(ap, ta, A, lda, M, ic, mc, pc, kc);
                /* the block of op(A) packed next: the next ic, else the first of the next pc or jc */
                int ni = ic + mc < M ? ic + mc : 0, nk = ni ? pc : pc + kc < K ? pc + kc : 0;
                int nmc = M - ni < BR_MC ? M - ni : BR_MC, nkc = K - nk < BR_KC ? K - nk : BR_KC;
                int last = !ni && !nk && jc + nc >= N, t = 0;
                int nt = (nc + BR_NR - 1) / BR_NR * ((mc + BR_MR - 1) / BR_MR);
                for (int jr = 0; jr < nc; jr += BR_NR)
                    for (int ir = 0; ir < mc; ir += BR_MR) {
                        PrefetchShare pf = {A, 0, 0, 1, 1};
                        if (ta && !last) pf = prefetch_share(ta, A, lda, ni, nmc, nk, nkc, t, nt);
                        t++;
                        micro_kernel(kp, ap + (size_t)ir * kp, bp + (size_t)jr * kp,
                                     C + (size_t)(ic + ir) * ldc + jc + jr, ldc, mc - ir < BR_MR ? mc - ir : BR_MR,
                                     nc - jr < BR_NR ? nc - jr : BR_NR, pc == 0, beta, &pf);
                    }
            }
        }
    }
#else
    (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)A, (void)lda, (void)B, (void)ldb, (void)beta, (void)C;
    (void)ldc, (void)ws;
    assert(!"bf16 products are not built in");
#endif
}
