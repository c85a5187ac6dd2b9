/* Causal attention of one (batch, head) pair for short sequences and narrow heads, the shapes a
 * study trains (T 64-128, head size 16-32): there a BLAS call spends most of its time outside its
 * micro-kernel (packing, edge tiles, call overhead), and rows of 1..T keys leave the vector loops
 * of a row-at-a-time softmax mostly in their scalar tails. Here every loop runs over whole blocks
 * of 16 keys with the keys past the diagonal masked, and every product keeps a 4-row tile in
 * AVX-512 registers over a head size that is a compile-time constant (one instance per size).
 * The backward forms dk and dv from each query tile while its rows are at hand, into sums for
 * the pair that stay in L1 (reading the T x T gradient down its columns afterwards measured
 * 15-50% slower than the sgemm form at head sizes 32 and 64).
 *
 * The formulas, and what is saved, are those of kernels.c's attention (kernels.h): att holds the
 * probabilities (exact zeros above the diagonal), rowmax the row's largest scaled score, datt the
 * gradient of the scaled scores. The exponential is lnl_expf_approx's, operation for operation
 * (the same floats); the scores and products sum over the head and keys in another order than
 * BLAS does, so those differ from the other path in the last bits. Products over a key range
 * that passes the diagonal multiply the masked entries' exact zeros. Each pair's numbers depend
 * on nothing but the pair, so results do not depend on the thread count. */
#include "kernels_internal.h"

#ifdef LNL_HAVE_ATT_SMALL
#include <immintrin.h>

#define AS_V 16 /* floats per vector: keys per block */
#define AS_R 4  /* query (or key) rows per register tile */
#define AS_MAX_HS 64

#define AS_INLINE static inline __attribute__((always_inline))

static inline int as_imin(int a, int b) { return a < b ? a : b; }
static inline int as_round(int n) { return (n + AS_V - 1) / AS_V * AS_V; }

int lnl_att_small_fits(int T, int hs, float softcap) {
    return softcap == 0.0f && T >= 1 && T <= LNL_ATT_SMALL_T && (hs == 16 || hs == 32 || hs == AS_MAX_HS);
}

/* lnl_expf_approx on 16 lanes, the same operations in the same order (its LNL_FMA steps as fused
 * multiply-adds: an AVX-512 build has FP_FAST_FMAF) */
static inline __m512 as_exp(__m512 x) {
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 xc = _mm512_min_ps(_mm512_set1_ps(88.0f), x); /* x > 88 ? 88 : x (NaN stays) */
    xc = _mm512_max_ps(_mm512_set1_ps(-87.0f), xc);      /* xc < -87 ? -87 : xc */
    __m512 t = _mm512_fmadd_ps(xc, _mm512_set1_ps(1.44269504088896341f), magic);
    __m512 n = _mm512_sub_ps(t, magic);
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693359375f), xc);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    static const float c[7] = {1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f, 0.5f, 1.0f, 1.0f};
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    for (int k = 0; k < 7; k++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c[k]));
    __m512i sb = _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_castps_si512(magic));
    sb = _mm512_slli_epi32(_mm512_add_epi32(sb, _mm512_set1_epi32(127)), 23);
    __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_LT_OQ);
    return _mm512_maskz_mul_ps((__mmask16)~under, p, _mm512_castsi512_ps(sb));
}

/* lanes j0 + i <= t */
static inline __mmask16 as_causal(int j0, int t) {
    const int n = t + 1 - j0;
    return n >= AS_V ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* the 16 floats as doubles, added lane by lane into z0 (low 8) and z1 (high 8) */
static inline void as_acc_d(__m512d *z0, __m512d *z1, __m512 v) {
    *z0 = _mm512_add_pd(*z0, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    *z1 = _mm512_add_pd(*z1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}

/* xt[i * tp + j] = X[j, i] for j < T (row j at X + j * ldx), 0 for T <= j < tp */
AS_INLINE void as_transpose(float *xt, const float *X, size_t ldx, int T, int tp, const int hs) {
    for (int j = 0; j < T; j++)
        for (int i = 0; i < hs; i++) xt[(size_t)i * tp + j] = X[(size_t)j * ldx + i];
    for (int i = 0; i < hs; i++)
        for (int j = T; j < tp; j++) xt[(size_t)i * tp + j] = 0.0f;
}

/* S[r][j] = row_{t0 + r} . xt[., j] for j in [j0, j0 + nb * AS_V) and r < AS_R (past row nr - 1,
 * that row again: its result is not used); nb blocks at once, so that 4 nb independent sums hide
 * the latency of the multiply-adds */
AS_INLINE void as_dots_nb(float *const S[AS_R], const float *const q[AS_R], const float *xt, int tp, int j0,
                          const int nb, const int hs) {
    __m512 acc[AS_R][4];
    for (int r = 0; r < AS_R; r++)
        for (int b = 0; b < nb; b++) acc[r][b] = _mm512_setzero_ps();
    for (int i = 0; i < hs; i++) {
        __m512 x[4];
        for (int b = 0; b < nb; b++) x[b] = _mm512_loadu_ps(xt + (size_t)i * tp + j0 + b * AS_V);
        for (int r = 0; r < AS_R; r++) {
            const __m512 qi = _mm512_set1_ps(q[r][i]);
            for (int b = 0; b < nb; b++) acc[r][b] = _mm512_fmadd_ps(qi, x[b], acc[r][b]);
        }
    }
    for (int r = 0; r < AS_R; r++)
        for (int b = 0; b < nb; b++) _mm512_storeu_ps(S[r] + j0 + b * AS_V, acc[r][b]);
}

/* S[r][j] for j < L (a multiple of AS_V) */
AS_INLINE void as_dots(float *const S[AS_R], const float *rows, size_t ldr, int t0, int nr,
                       const float *xt, int tp, int L, const int hs) {
    const float *q[AS_R];
    for (int r = 0; r < AS_R; r++) q[r] = rows + (size_t)(t0 + as_imin(r, nr - 1)) * ldr;
    int j0 = 0;
    for (; j0 + 4 * AS_V <= L; j0 += 4 * AS_V) as_dots_nb(S, q, xt, tp, j0, 4, hs);
    if (j0 + 2 * AS_V <= L) as_dots_nb(S, q, xt, tp, j0, 2, hs), j0 += 2 * AS_V;
    if (j0 < L) as_dots_nb(S, q, xt, tp, j0, 1, hs);
}

/* out row r (r < nr, at out + r * ldo) = [out row r +] alpha * sum_{k < K} coef[r][k] * Y[k, .]
 * over hs columns (rows past nr - 1 read row nr - 1). A narrow head sums even and odd k apart
 * (then adds the two), so that enough independent sums hide the latency of the multiply-adds. */
AS_INLINE void as_rows(float *out, size_t ldo, int nr, float *const coef[AS_R], const float *Y, size_t ldy,
                       int K, float alpha, int accumulate, const int hs) {
    enum { HV = AS_MAX_HS / AS_V };
    const int hv = hs / AS_V, np = hv < HV ? 2 : 1;
    __m512 acc[2][AS_R][HV];
    for (int p = 0; p < np; p++)
        for (int r = 0; r < AS_R; r++)
            for (int v = 0; v < hv; v++) acc[p][r][v] = _mm512_setzero_ps();
    const float *cf[AS_R];
    for (int r = 0; r < AS_R; r++) cf[r] = coef[as_imin(r, nr - 1)];
    int k = 0;
    for (; k + np <= K; k += np)
        for (int p = 0; p < np; p++) {
            __m512 y[HV];
            for (int v = 0; v < hv; v++) y[v] = _mm512_loadu_ps(Y + (size_t)(k + p) * ldy + v * AS_V);
            for (int r = 0; r < AS_R; r++) {
                const __m512 c = _mm512_set1_ps(cf[r][k + p]);
                for (int v = 0; v < hv; v++) acc[p][r][v] = _mm512_fmadd_ps(c, y[v], acc[p][r][v]);
            }
        }
    for (; k < K; k++) {
        __m512 y[HV];
        for (int v = 0; v < hv; v++) y[v] = _mm512_loadu_ps(Y + (size_t)k * ldy + v * AS_V);
        for (int r = 0; r < AS_R; r++) {
            const __m512 c = _mm512_set1_ps(cf[r][k]);
            for (int v = 0; v < hv; v++) acc[0][r][v] = _mm512_fmadd_ps(c, y[v], acc[0][r][v]);
        }
    }
    const __m512 a = _mm512_set1_ps(alpha);
    for (int r = 0; r < AS_R; r++) {
        if (r >= nr) break;
        float *o = out + (size_t)r * ldo;
        for (int v = 0; v < hv; v++) {
            __m512 x = np == 2 ? _mm512_add_ps(acc[0][r][v], acc[1][r][v]) : acc[0][r][v];
            x = _mm512_mul_ps(a, x);
            if (accumulate) x = _mm512_add_ps(_mm512_loadu_ps(o + v * AS_V), x);
            _mm512_storeu_ps(o + v * AS_V, x);
        }
    }
}

/* Row t of the causal softmax over s[0..L) in place (keys past t: exact zeros); returns sc times
 * the largest score at or before t. */
static float as_softmax_row(float *s, int t, int L, float sc) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    for (int j0 = 0; j0 < L; j0 += AS_V) m = _mm512_mask_max_ps(m, as_causal(j0, t), m, _mm512_loadu_ps(s + j0));
    const float mx = _mm512_reduce_max_ps(m);
    const __m512 vmx = _mm512_set1_ps(mx), vsc = _mm512_set1_ps(sc);
    __m512d z0 = _mm512_setzero_pd(), z1 = _mm512_setzero_pd();
    for (int j0 = 0; j0 < L; j0 += AS_V) {
        __m512 e = as_exp(_mm512_mul_ps(vsc, _mm512_sub_ps(_mm512_loadu_ps(s + j0), vmx)));
        e = _mm512_maskz_mov_ps(as_causal(j0, t), e);
        _mm512_storeu_ps(s + j0, e);
        as_acc_d(&z0, &z1, e);
    }
    const __m512 iz = _mm512_set1_ps((float)(1.0 / _mm512_reduce_add_pd(_mm512_add_pd(z0, z1))));
    for (int j0 = 0; j0 < L; j0 += AS_V) _mm512_storeu_ps(s + j0, _mm512_mul_ps(_mm512_loadu_ps(s + j0), iz));
    return sc * mx;
}

/* Row t of the softmax backward over d[0..L) in place: d = a (d - a . d) at or before t, 0 after
 * (a: the probabilities, 0 past t) */
static void as_softmax_grad_row(float *d, const float *a, int t, int L) {
    __m512d z0 = _mm512_setzero_pd(), z1 = _mm512_setzero_pd();
    for (int j0 = 0; j0 < L; j0 += AS_V) {
        const __m512 av = _mm512_loadu_ps(a + j0), dv = _mm512_loadu_ps(d + j0);
        z0 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(av)),
                             _mm512_cvtps_pd(_mm512_castps512_ps256(dv)), z0);
        z1 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(av), 1))),
                             _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(dv), 1))), z1);
    }
    const __m512 s = _mm512_set1_ps((float)_mm512_reduce_add_pd(_mm512_add_pd(z0, z1)));
    for (int j0 = 0; j0 < L; j0 += AS_V) {
        const __m512 av = _mm512_loadu_ps(a + j0), dv = _mm512_loadu_ps(d + j0);
        _mm512_storeu_ps(d + j0, _mm512_maskz_mul_ps(as_causal(j0, t), av, _mm512_sub_ps(dv, s)));
    }
}

/* row t of a T x T matrix from the first L entries of s (0 from L on); s may be that row itself */
static void as_store_row(float *dst, const float *s, int L, int T) {
    const int n = as_imin(L, T);
    if (dst != s) memcpy(dst, s, (size_t)n * sizeof(float));
    for (int j = n; j < T; j++) dst[j] = 0.0f;
}

/* The rows of a tile: where T is a multiple of AS_V (every tile then has AS_R rows and L <= T),
 * rows t0.. of the T x T matrix M themselves, so that nothing is copied; otherwise the local
 * rows loc, whose L entries may run past T. */
static inline void as_tile_rows(float *rows[AS_R], float loc[AS_R][LNL_ATT_SMALL_T], float *M, int T, int t0) {
    for (int r = 0; r < AS_R; r++) rows[r] = T % AS_V == 0 ? M + (size_t)(t0 + r) * T : loc[r];
}

AS_INLINE void as_forward(float *O, float *A, float *R, const float *Q, const float *K, const float *V, int T, int C,
                          float sc, const int hs) {
    const size_t C3 = 3 * (size_t)C;
    const int tp = as_round(T);
    float kt[AS_MAX_HS * LNL_ATT_SMALL_T];
    float Sl[AS_R][LNL_ATT_SMALL_T], *S[AS_R];
    as_transpose(kt, K, C3, T, tp, hs);
    for (int t0 = 0; t0 < T; t0 += AS_R) {
        const int nr = as_imin(AS_R, T - t0), L = as_round(t0 + nr);
        as_tile_rows(S, Sl, A, T, t0);
        as_dots(S, Q, C3, t0, nr, kt, tp, L, hs);
        for (int r = 0; r < nr; r++) {
            const float mx = as_softmax_row(S[r], t0 + r, L, sc);
            if (R) R[t0 + r] = mx;
            as_store_row(A + (size_t)(t0 + r) * T, S[r], L, T);
        }
        as_rows(O + (size_t)t0 * C, (size_t)C, nr, S, V, C3, as_imin(L, T), 1.0f, 0, hs);
    }
}

/* The key side of one query tile, into local sums: for keys j < K,
 * gk[j] += sum_r d[r][j] q_r and gv[j] += sum_r a[r][j] o_r over the tile's rows r < nr (q_r, o_r:
 * rows t0 + r of Q and dout). Rows past nr add nothing. */
AS_INLINE void as_key_side(float *gk, float *gv, float *const d[AS_R], const float *const a[AS_R],
                           const float *Q, size_t ldq, const float *dO, size_t ldo, int t0, int nr, int K,
                           const int hs) {
    enum { HV = AS_MAX_HS / AS_V };
    const int hv = hs / AS_V;
    __m512 q[AS_R][HV], o[AS_R][HV];
    for (int r = 0; r < AS_R; r++)
        for (int v = 0; v < hv; v++) {
            q[r][v] = r < nr ? _mm512_loadu_ps(Q + (size_t)(t0 + r) * ldq + v * AS_V) : _mm512_setzero_ps();
            o[r][v] = r < nr ? _mm512_loadu_ps(dO + (size_t)(t0 + r) * ldo + v * AS_V) : _mm512_setzero_ps();
        }
    for (int j = 0; j < K; j++) {
        float *k = gk + (size_t)j * hs, *w = gv + (size_t)j * hs;
        for (int v = 0; v < hv; v++) {
            __m512 ks = _mm512_loadu_ps(k + v * AS_V), vs = _mm512_loadu_ps(w + v * AS_V);
            for (int r = 0; r < AS_R; r++) {
                ks = _mm512_fmadd_ps(_mm512_set1_ps(d[r][j]), q[r][v], ks);
                vs = _mm512_fmadd_ps(_mm512_set1_ps(a[r][j]), o[r][v], vs);
            }
            _mm512_storeu_ps(k + v * AS_V, ks);
            _mm512_storeu_ps(w + v * AS_V, vs);
        }
    }
}

AS_INLINE void as_backward(float *dQ, float *dK, float *dV, float *D, const float *dO, const float *Q, const float *K,
                           const float *V, const float *A, int T, int C, float sc, const int hs) {
    const size_t C3 = 3 * (size_t)C;
    const int tp = as_round(T);
    float vt[AS_MAX_HS * LNL_ATT_SMALL_T];
    float gk[LNL_ATT_SMALL_T * AS_MAX_HS], gv[LNL_ATT_SMALL_T * AS_MAX_HS]; /* dk / sc and dv of the pair */
    float Dloc[AS_R][LNL_ATT_SMALL_T], Aloc[AS_R][LNL_ATT_SMALL_T], *Dl[AS_R], *Al[AS_R];
    as_transpose(vt, V, C3, T, tp, hs);
    memset(gk, 0, (size_t)T * hs * sizeof(float));
    memset(gv, 0, (size_t)T * hs * sizeof(float));
    /* query tiles: D = dout . v, the softmax backward, dq += sc * dscore . k, and the tile's part
     * of dk and dv while its rows are at hand */
    for (int t0 = 0; t0 < T; t0 += AS_R) {
        const int nr = as_imin(AS_R, T - t0), L = as_round(t0 + nr), Lc = as_imin(L, T);
        as_tile_rows(Dl, Dloc, D, T, t0);
        as_tile_rows(Al, Aloc, (float *)A, T, t0); /* only read */
        as_dots(Dl, dO, (size_t)C, t0, nr, vt, tp, L, hs);
        for (int r = 0; r < nr; r++) {
            if (Al[r] != A + (size_t)(t0 + r) * T) {
                memcpy(Al[r], A + (size_t)(t0 + r) * T, (size_t)Lc * sizeof(float));
                for (int j = Lc; j < L; j++) Al[r][j] = 0.0f;
            }
            as_softmax_grad_row(Dl[r], Al[r], t0 + r, L);
            as_store_row(D + (size_t)(t0 + r) * T, Dl[r], L, T);
        }
        as_rows(dQ + (size_t)t0 * C3, C3, nr, Dl, K, C3, Lc, sc, 1, hs);
        as_key_side(gk, gv, Dl, (const float *const *)Al, Q, C3, dO, (size_t)C, t0, nr, Lc, hs);
    }
    const __m512 vsc = _mm512_set1_ps(sc);
    for (int j = 0; j < T; j++)
        for (int v = 0; v < hs / AS_V; v++) {
            float *k = dK + (size_t)j * C3 + v * AS_V, *w = dV + (size_t)j * C3 + v * AS_V;
            _mm512_storeu_ps(k, _mm512_add_ps(_mm512_loadu_ps(k),
                                              _mm512_mul_ps(vsc, _mm512_loadu_ps(gk + (size_t)j * hs + v * AS_V))));
            _mm512_storeu_ps(w, _mm512_add_ps(_mm512_loadu_ps(w), _mm512_loadu_ps(gv + (size_t)j * hs + v * AS_V)));
        }
}

#define AS_SIZES(X) X(16) X(32) X(64)
#define AS_FNS(HS)                                                                                                     \
    static void as_forward_##HS(float *O, float *A, float *R, const float *Q, const float *K, const float *V, int T,   \
                                int C, float sc) {                                                                     \
        as_forward(O, A, R, Q, K, V, T, C, sc, HS);                                                                    \
    }                                                                                                                  \
    static void as_backward_##HS(float *dQ, float *dK, float *dV, float *D, const float *dO, const float *Q,           \
                                 const float *K, const float *V, const float *A, int T, int C, float sc) {             \
        as_backward(dQ, dK, dV, D, dO, Q, K, V, A, T, C, sc, HS);                                                      \
    }
AS_SIZES(AS_FNS)

void lnl_att_small_forward(float *O, float *A, float *R, const float *Q, const float *K, const float *V, int T, int hs,
                           int C, float sc) {
    switch (hs) {
#define AS_CASE(HS)                                                                                                    \
    case HS: as_forward_##HS(O, A, R, Q, K, V, T, C, sc); break;
        AS_SIZES(AS_CASE)
#undef AS_CASE
    default: break; /* lnl_att_small_fits said no */
    }
}

void lnl_att_small_backward(float *dQ, float *dK, float *dV, float *D, const float *dO, const float *Q, const float *K,
                            const float *V, const float *A, int T, int hs, int C, float sc) {
    switch (hs) {
#define AS_CASE(HS)                                                                                                    \
    case HS: as_backward_##HS(dQ, dK, dV, D, dO, Q, K, V, A, T, C, sc); break;
        AS_SIZES(AS_CASE)
#undef AS_CASE
    default: break;
    }
}

#else
/* Without AVX-512 the BLAS or register-tiled form runs every shape. */
int lnl_att_small_fits(int T, int hs, float softcap) {
    (void)T, (void)hs, (void)softcap;
    return 0;
}
#endif
