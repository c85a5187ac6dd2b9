/* Kernel tests: every op of every backend in kernels.h's table (lnl_kernels_backends) against
 * the reference backend; every backward of every backend against central differences of an
 * independent double-precision forward written here from the formulas in kernels.h; +=
 * accumulation; a hand-computed AdamW step; attention masking; the tables themselves (no op
 * missing) and the dispatch of the public lnl_<op> names (lnl_kernels_use, LNLAB_KERNELS). */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kernels/kernels.h"
#include "kernels/kernels_internal.h"

/* ---- helpers ---- */

static uint64_t rng_state = 0x853c49e6748fea9bULL;
static double urand(void) { /* uniform [0, 1), splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}
static float *frand(size_t n, float lo, float hi) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (float)(lo + (hi - lo) * urand());
    return p;
}
static float *fzeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }
static float *fcopy(const float *x, size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    memcpy(p, x, n * sizeof *p);
    return p;
}
static double *dcopy(const float *x, size_t n) {
    double *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = x[i];
    return p;
}
static double *dalloc(size_t n) { return calloc(n ? n : 1, sizeof(double)); }

/* got vs want elementwise: |got - want| <= atol + rtol*|want|, both finite. Prints the worst
 * element (by err/tol) and the worst relative error; returns 1 if all pass. */
static int close_arrays(const char *what, const float *got, const double *want, size_t n, double atol, double rtol,
                        int quiet) {
    double worst = 0.0, worst_rel = 0.0;
    size_t wi = 0;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        double err = fabs(g - w), tol = atol + rtol * fabs(w);
        double r = err == 0.0 ? 0.0 : err / tol; /* tol 0 asks for bit equality */
        if (!isfinite(g) || !isfinite(w)) r = INFINITY;
        if (r > worst || (i == 0 && r >= worst)) worst = r, wi = i;
        if (fabs(w) > 1e-3 && err / fabs(w) > worst_rel) worst_rel = err / fabs(w);
        if (!(r <= 1.0)) ok = 0;
    }
    if (!quiet)
        printf("#   %-42s n=%-6zu worst err/tol %.3g (i=%zu got %.9g want %.9g), max rel err %.2g\n", what, n, worst,
               wi, n ? got[wi] : 0.0, n ? want[wi] : 0.0, worst_rel);
    return ok;
}

static double maxabs_d(const double *x, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

/* Fast (or reference) result vs reference result, both float. */
static void check_vs_ref(const char *what, const float *got, const float *ref, size_t n, double atol, double rtol) {
    double *w = dcopy(ref, n);
    CHECK(close_arrays(what, got, w, n, atol, rtol, 0), "%s differs from the reference", what);
    free(w);
}

/* Analytic gradient g vs finite differences d of the double forward. Tolerance atol =
 * GRAD_ATOL * max|d| (float round-off on cancelling sums) plus GRAD_RTOL * |d|. The same
 * comparison must reject g scaled by 1.01, so the tolerance is tight enough to catch a wrong
 * formula. */
#define GRAD_RTOL 1e-4
#define GRAD_ATOL 1e-5
static void check_grad(const char *what, const float *g, const double *d, size_t n) {
    double atol = GRAD_ATOL * maxabs_d(d, n) + 1e-12;
    CHECK(close_arrays(what, g, d, n, atol, GRAD_RTOL, 0), "%s: analytic gradient disagrees with finite differences",
          what);
    CHECK(maxabs_d(d, n) > 0.0, "%s: finite-difference gradient is identically zero", what);
    float *bad = fcopy(g, n);
    for (size_t i = 0; i < n; i++) bad[i] *= 1.01f;
    CHECK(!close_arrays(what, bad, d, n, atol, GRAD_RTOL, 1), "%s: check cannot tell a 1%% error", what);
    free(bad);
}

/* A gradient computed into a buffer that already held g0 must equal g0 + g. */
static void check_accum(const char *what, const float *after, const float *g0, const float *g, size_t n) {
    double *w = dalloc(n);
    for (size_t i = 0; i < n; i++) w[i] = (double)g0[i] + g[i];
    CHECK(close_arrays(what, after, w, n, 1e-6, 1e-5, 1), "%s: gradient does not accumulate with +=", what);
    free(w);
}

/* A gradient the kernel writes (not adds): computed into a buffer of garbage, NaN included, it
 * must be the same floats as computed into zeros. */
static void check_written(const char *what, const float *after, const float *g, size_t n) {
    CHECK(memcmp(after, g, n * sizeof(float)) == 0, "%s: the buffer's old contents leak into a written gradient",
          what);
}
static float *garbage(size_t n) {
    float *a = frand(n, -1, 1);
    a[0] = NAN;
    a[n - 1] = INFINITY;
    return a;
}

/* Central difference of the double expression EXPR with respect to every element of ARR. */
#define FD_H 1e-4
#define FD(grad, arr, n, expr)                                  \
    for (size_t i_ = 0; i_ < (size_t)(n); i_++) {               \
        double s_ = (arr)[i_];                                  \
        (arr)[i_] = s_ + FD_H;                                  \
        double lp_ = (expr);                                    \
        (arr)[i_] = s_ - FD_H;                                  \
        double lm_ = (expr);                                    \
        (arr)[i_] = s_;                                         \
        (grad)[i_] = (lp_ - lm_) / (2 * FD_H);                  \
    }

static double dot_out_R(const double *out, const double *R, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += out[i] * R[i];
    return s;
}

/* A test body runs over every backend built in, the reference included: compared with itself it
 * must give the same floats from the same inputs and write every output element. */
#define REF (&lnl_kernels_ref_ops)
#define FOR_BACKENDS(ops) \
    for (const LnlKernelOps *const *ops##_p = lnl_kernels_backends, *ops; (ops = *ops##_p) != NULL; ops##_p++)

/* ---- independent double-precision forwards (from the formulas in kernels.h) ---- */

static void d_matmul(double *out, const double *x, const double *w, const double *b, int N, int IC, int OC) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = b ? b[o] : 0.0;
            for (int i = 0; i < IC; i++) s += x[n * IC + i] * w[o * IC + i];
            out[n * OC + o] = s;
        }
}

static void d_norm(double *out, const double *x, const double *w, const double *b, int N, int C, int G, int rep,
                   LnlNormKind kind, double eps, double scale) {
    for (int r = 0; r < N; r++) {
        const double *xr = x + r * C;
        int g = (r / rep) % G;
        double mu = 0.0, var = 0.0;
        if (kind == LNL_NORM_LAYERNORM) {
            for (int c = 0; c < C; c++) mu += xr[c];
            mu /= C;
        }
        for (int c = 0; c < C; c++) var += (xr[c] - mu) * (xr[c] - mu);
        var /= C;
        double rs = 1.0 / sqrt(var + eps);
        for (int c = 0; c < C; c++) {
            double y = (xr[c] - mu) * rs * (w ? w[g * C + c] : 1.0) + (b ? b[g * C + c] : 0.0);
            out[r * C + c] = scale * y;
        }
    }
}

/* cap > 0: scores capped as cap * tanh(score / cap) (Gemma 2's attention-logit softcap). */
static void d_attention(double *out, const double *qkv, int B, int T, int C, int NH, double cap) {
    int hs = C / NH;
    double *s = dalloc((size_t)T);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const double *q = qkv + (size_t)(b * T + t) * 3 * C + h * hs;
                double mx = -INFINITY, z = 0.0;
                for (int t2 = 0; t2 <= t; t2++) {
                    const double *k = qkv + (size_t)(b * T + t2) * 3 * C + C + h * hs;
                    double d = 0.0;
                    for (int i = 0; i < hs; i++) d += q[i] * k[i];
                    s[t2] = d / sqrt((double)hs);
                    if (cap > 0) s[t2] = cap * tanh(s[t2] / cap);
                    mx = s[t2] > mx ? s[t2] : mx;
                }
                for (int t2 = 0; t2 <= t; t2++) z += (s[t2] = exp(s[t2] - mx));
                for (int i = 0; i < hs; i++) {
                    double o = 0.0;
                    for (int t2 = 0; t2 <= t; t2++) o += s[t2] / z * qkv[(size_t)(b * T + t2) * 3 * C + 2 * C + h * hs + i];
                    out[(size_t)(b * T + t) * C + h * hs + i] = o;
                }
            }
    free(s);
}

static double d_gelu(double x) {
    const double pi = 3.14159265358979323846;
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / pi) * (x + 0.044715 * x * x * x)));
}
static double d_gelu_L(const double *x, const float *R, size_t n) {
    double L = 0.0;
    for (size_t j = 0; j < n; j++) L += d_gelu(x[j]) * R[j];
    return L;
}

static double d_xent_loss(const double *logits, const int32_t *tg, const double *R, int N, int V) {
    double L = 0.0;
    for (int r = 0; r < N; r++) {
        if (tg[r] < 0) continue;
        const double *x = logits + r * V;
        double mx = -INFINITY, z = 0.0;
        for (int v = 0; v < V; v++) mx = x[v] > mx ? x[v] : mx;
        for (int v = 0; v < V; v++) z += exp(x[v] - mx);
        L += R[r] * (log(z) + mx - x[tg[r]]);
    }
    return L;
}

/* ---- matmul ---- */

/* Threading modes of the cpu backend (lnl_kernels_set_threads): one thread; two OpenMP threads
 * each running a single-threaded BLAS on a slice of rows or columns; BLAS's own threads. Every
 * mode must match the reference. The reference has one form: it runs in the first mode only. */
static const char *thread_mode_name[3] = {"1 thread", "2 threads, one pool", "2 threads, BLAS's own"};
static void set_thread_mode(int mode) {
    if (mode == 2) setenv("LNLAB_BLAS_THREADS", "own", 1);
    else unsetenv("LNLAB_BLAS_THREADS");
    lnl_kernels_set_threads(mode == 0 ? 1 : 2);
}
static int thread_modes(const LnlKernelOps *ops) { return ops == REF ? 1 : 3; }

static void test_matmul_vs_ref(void) {
    /* rows >= columns and the reverse, sizes that are not multiples of the slice alignment, and
     * the LM head's shape of a small vocabulary */
    const int shapes[][3] = {{37, 24, 50},   {131, 300, 67}, {1, 5, 3},       {64, 64, 64},  {5, 1, 130},
                             {3, 0, 4},      {300, 70, 150}, {70, 40, 260},   {200, 48, 1003},
                             /* gemm_small.c's, with a partial tile of rows */
                             {37, 64, 96},   {203, 32, 320}, {1029, 64, 192}, {70, 256, 64}};
    FOR_BACKENDS(ops)
    for (int mode = 0; mode < thread_modes(ops); mode++)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        set_thread_mode(mode);
        int N = shapes[s][0], IC = shapes[s][1], OC = shapes[s][2];
        char name[96];
        double atol = 2e-6 * sqrt((double)IC > N ? IC : N), rtol = 1e-5;
        float *x = frand((size_t)N * IC, -1, 1), *w = frand((size_t)OC * IC, -1, 1), *b = frand(OC, -1, 1);
        float *dout = frand((size_t)N * OC, -1, 1);
        float *o1 = fzeros((size_t)N * OC), *o2 = fzeros((size_t)N * OC);
        for (int withb = 0; withb < 2; withb++) {
            ops->matmul_forward(o1, x, w, withb ? b : NULL, N, IC, OC);
            REF->matmul_forward(o2, x, w, withb ? b : NULL, N, IC, OC);
            snprintf(name, sizeof name, "matmul fwd %dx%dx%d%s [%s, %s]", N, IC, OC, withb ? " +bias" : "",
                     ops->name, thread_mode_name[mode]);
            check_vs_ref(name, o1, o2, (size_t)N * OC, atol, rtol);
        }
        /* backward into buffers that already hold values: dweight and dbias add (+=), dinp is
         * written (=) */
        float *g0x = frand((size_t)N * IC, -1, 1), *g0w = frand((size_t)OC * IC, -1, 1), *g0b = frand(OC, -1, 1);
        float *dx1 = fcopy(g0x, (size_t)N * IC), *dw1 = fcopy(g0w, (size_t)OC * IC), *db1 = fcopy(g0b, OC);
        float *dx2 = fcopy(g0x, (size_t)N * IC), *dw2 = fcopy(g0w, (size_t)OC * IC), *db2 = fcopy(g0b, OC);
        ops->matmul_backward(dx1, dw1, db1, dout, x, w, N, IC, OC);
        REF->matmul_backward(dx2, dw2, db2, dout, x, w, N, IC, OC);
        snprintf(name, sizeof name, "matmul dinp %dx%dx%d [%s, %s]", N, IC, OC, ops->name, thread_mode_name[mode]);
        check_vs_ref(name, dx1, dx2, (size_t)N * IC, 2e-6 * sqrt((double)OC), rtol);
        snprintf(name, sizeof name, "matmul dweight %dx%dx%d [%s, %s]", N, IC, OC, ops->name, thread_mode_name[mode]);
        check_vs_ref(name, dw1, dw2, (size_t)OC * IC, 2e-6 * sqrt((double)N), rtol);
        snprintf(name, sizeof name, "matmul dbias %dx%dx%d [%s, %s]", N, IC, OC, ops->name, thread_mode_name[mode]);
        check_vs_ref(name, db1, db2, OC, 2e-6 * sqrt((double)N), rtol);
        /* NULL gradients are skipped */
        ops->matmul_backward(NULL, NULL, db1, dout, x, w, N, IC, OC);
        ops->matmul_backward(dx1, NULL, NULL, dout, x, w, N, IC, OC);
        free(x), free(w), free(b), free(dout), free(o1), free(o2), free(g0x), free(g0w), free(g0b);
        free(dx1), free(dw1), free(db1), free(dx2), free(dw2), free(db2);
    }
    set_thread_mode(0);
}

/* The products without packing (gemm_small.c) at the shapes they take: the same bits on one
 * thread and on two (each element is its start plus its products in order of k, whatever the
 * slice). Only where the build has them (AVX-512). Elsewhere OpenBLAS runs these shapes, and in
 * this binary, which does not re-execute with OPENBLAS_CORETYPE=SkylakeX as lnlab does, it may
 * run its Haswell kernels, which give different bits for different slices of a product (seen on
 * AMD Zen 5 in the ASan build: the forward of 1029 x 64 x 192; the SkylakeX kernels do not). */
static void test_matmul_small_threads(void) {
#if !defined(__AVX512F__)
    printf("# gemm_small is not built without AVX-512\n");
#else
    const int shapes[][3] = {{37, 64, 96}, {1029, 64, 192}, {70, 256, 64}, {16, 128, 128}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int N = shapes[s][0], IC = shapes[s][1], OC = shapes[s][2];
        CHECK(lnl_gemm_small_fits(0, 1, N, OC, IC, 0.0f) && lnl_gemm_small_fits(0, 0, N, IC, OC, 0.0f) &&
                  lnl_gemm_small_fits(1, 0, OC, IC, N, 1.0f),
              "matmul %dx%dx%d: not a gemm_small shape", N, IC, OC);
        float *x = frand((size_t)N * IC, -1, 1), *w = frand((size_t)OC * IC, -1, 1), *b = frand(OC, -1, 1);
        float *dout = frand((size_t)N * OC, -1, 1), *out[2], *dx[2], *dw[2], *db[2];
        for (int mode = 0; mode < 2; mode++) {
            set_thread_mode(mode);
            out[mode] = fzeros((size_t)N * OC), dx[mode] = fzeros((size_t)N * IC);
            dw[mode] = fzeros((size_t)OC * IC), db[mode] = fzeros(OC);
            lnl_kernels_cpu_ops.matmul_forward(out[mode], x, w, b, N, IC, OC);
            lnl_kernels_cpu_ops.matmul_backward(dx[mode], dw[mode], db[mode], dout, x, w, N, IC, OC);
        }
        CHECK(memcmp(out[0], out[1], (size_t)N * OC * sizeof(float)) == 0 &&
                  memcmp(dx[0], dx[1], (size_t)N * IC * sizeof(float)) == 0 &&
                  memcmp(dw[0], dw[1], (size_t)OC * IC * sizeof(float)) == 0,
              "matmul %dx%dx%d: one thread and two give different bits", N, IC, OC);
        free(x), free(w), free(b), free(dout);
        for (int mode = 0; mode < 2; mode++) free(out[mode]), free(dx[mode]), free(dw[mode]), free(db[mode]);
    }
    set_thread_mode(0);
#endif
}

/* bf16 mode (the cpu backend's): every product equals the double product of the bf16-rounded
 * inputs up to fp32 accumulation (the tolerance of the fp32 products), on one and two threads, all
 * three layouts. */
static void test_matmul_bf16(void) {
    if (lnl_kernels_set_bf16(1)) {
        printf("# bf16 products not available on this CPU/build\n");
        return;
    }
    /* {771, 50, 130}: dweight (ta) over three k blocks, the last odd, and two row blocks of op(A) */
    const int shapes[][3] = {{37, 24, 50}, {131, 300, 67}, {1, 5, 3}, {200, 777, 130}, {70, 40, 2100}, {5, 1, 9},
                             {771, 50, 130}};
    for (int mode = 0; mode < 2; mode++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            set_thread_mode(mode);
            CHECK(lnl_kernels_set_bf16(1) == 0 && lnl_kernels_bf16(), "bf16 mode did not stay on");
            int N = shapes[s][0], IC = shapes[s][1], OC = shapes[s][2];
            float *x = frand((size_t)N * IC, -1, 1), *w = frand((size_t)OC * IC, -1, 1), *b = frand(OC, -1, 1);
            float *dout = frand((size_t)N * OC, -1, 1);
            float *xr = fcopy(x, (size_t)N * IC), *wr = fcopy(w, (size_t)OC * IC), *dr = fcopy(dout, (size_t)N * OC);
            for (size_t i = 0; i < (size_t)N * IC; i++) xr[i] = lnl_bf16_round(x[i]);
            for (size_t i = 0; i < (size_t)OC * IC; i++) wr[i] = lnl_bf16_round(w[i]);
            for (size_t i = 0; i < (size_t)N * OC; i++) dr[i] = lnl_bf16_round(dout[i]);
            float *o1 = fzeros((size_t)N * OC), *o2 = fzeros((size_t)N * OC);
            lnl_kernels_cpu_ops.matmul_forward(o1, x, w, b, N, IC, OC);
            REF->matmul_forward(o2, xr, wr, b, N, IC, OC);
            char name[96];
            snprintf(name, sizeof name, "bf16 matmul fwd %dx%dx%d [%s]", N, IC, OC, thread_mode_name[mode]);
            check_vs_ref(name, o1, o2, (size_t)N * OC, 2e-6 * sqrt((double)IC), 1e-5);
            float *dx1 = frand((size_t)N * IC, -1, 1), *dw1 = frand((size_t)OC * IC, -1, 1);
            float *dx2 = fcopy(dx1, (size_t)N * IC), *dw2 = fcopy(dw1, (size_t)OC * IC);
            lnl_kernels_cpu_ops.matmul_backward(dx1, dw1, NULL, dout, x, w, N, IC, OC);
            REF->matmul_backward(dx2, dw2, NULL, dr, xr, wr, N, IC, OC);
            snprintf(name, sizeof name, "bf16 matmul dinp %dx%dx%d [%s]", N, IC, OC, thread_mode_name[mode]);
            check_vs_ref(name, dx1, dx2, (size_t)N * IC, 2e-6 * sqrt((double)OC), 1e-5);
            snprintf(name, sizeof name, "bf16 matmul dweight %dx%dx%d [%s]", N, IC, OC, thread_mode_name[mode]);
            check_vs_ref(name, dw1, dw2, (size_t)OC * IC, 2e-6 * sqrt((double)N), 1e-5);
            free(x), free(w), free(b), free(dout), free(xr), free(wr), free(dr), free(o1), free(o2);
            free(dx1), free(dw1), free(dx2), free(dw2);
        }
    lnl_kernels_set_bf16(0);
    set_thread_mode(0);
    CHECK(!lnl_kernels_bf16(), "bf16 mode did not turn off");
}

static void test_matmul_grad(void) {
    const int N = 9, IC = 11, OC = 13;
    float *x = frand(N * IC, -1, 1), *w = frand(OC * IC, -1, 1), *b = frand(OC, -1, 1), *R = frand(N * OC, -1, 1);
    double *xd = dcopy(x, N * IC), *wd = dcopy(w, OC * IC), *bd = dcopy(b, OC), *Rd = dcopy(R, N * OC);
    double *od = dalloc(N * OC), *gx = dalloc(N * IC), *gw = dalloc(OC * IC), *gb = dalloc(OC);
#define L_MM (d_matmul(od, xd, wd, bd, N, IC, OC), dot_out_R(od, Rd, N * OC))
    FD(gx, xd, N * IC, L_MM);
    FD(gw, wd, OC * IC, L_MM);
    FD(gb, bd, OC, L_MM);
#undef L_MM
    d_matmul(od, xd, wd, bd, N, IC, OC);
    FOR_BACKENDS(ops) {
        char name[64];
        float *out = fzeros(N * OC), *dx = fzeros(N * IC), *dw = fzeros(OC * IC), *db = fzeros(OC);
        ops->matmul_forward(out, x, w, b, N, IC, OC);
        snprintf(name, sizeof name, "matmul fwd vs double [%s]", ops->name);
        CHECK(close_arrays(name, out, od, N * OC, 1e-5, 1e-5, 0), "%s", name);
        ops->matmul_backward(dx, dw, db, R, x, w, N, IC, OC);
        snprintf(name, sizeof name, "matmul dinp [%s]", ops->name);
        check_grad(name, dx, gx, N * IC);
        snprintf(name, sizeof name, "matmul dweight [%s]", ops->name);
        check_grad(name, dw, gw, OC * IC);
        snprintf(name, sizeof name, "matmul dbias [%s]", ops->name);
        check_grad(name, db, gb, OC);
        float *ax = garbage(N * IC), *aw = frand(OC * IC, -1, 1), *ab = frand(OC, -1, 1);
        float *ax0 = fcopy(ax, N * IC), *aw0 = fcopy(aw, OC * IC), *ab0 = fcopy(ab, OC);
        ops->matmul_backward(ax, aw, ab, R, x, w, N, IC, OC);
        check_written("matmul dinp", ax, dx, N * IC);
        check_accum("matmul dweight", aw, aw0, dw, OC * IC);
        check_accum("matmul dbias", ab, ab0, db, OC);
        free(out), free(dx), free(dw), free(db), free(ax), free(aw), free(ab), free(ax0), free(aw0), free(ab0);
    }
    free(x), free(w), free(b), free(R), free(xd), free(wd), free(bd), free(Rd), free(od), free(gx), free(gw), free(gb);
}

/* ---- normalization ---- */

typedef struct {
    LnlNormKind kind;
    int has_w, has_b, G, rep;
    float scale;
} NormCase;

static const NormCase norm_cases[] = {
    {LNL_NORM_LAYERNORM, 1, 1, 1, 1, 1.0f}, {LNL_NORM_LAYERNORM, 1, 0, 1, 1, 0.7f},
    {LNL_NORM_LAYERNORM, 0, 1, 1, 1, 1.0f}, {LNL_NORM_LAYERNORM, 0, 0, 1, 1, 1.5f},
    {LNL_NORM_LAYERNORM, 1, 1, 3, 2, 1.3f}, {LNL_NORM_RMSNORM, 1, 0, 1, 1, 1.0f},
    {LNL_NORM_RMSNORM, 0, 0, 1, 1, 0.5f},   {LNL_NORM_RMSNORM, 1, 0, 3, 2, 2.0f},
};

static void norm_name(char *buf, size_t n, const char *what, const NormCase *nc, const char *backend) {
    snprintf(buf, n, "%s %s%s%s G%d rep%d s%.1f [%s]", what, nc->kind == LNL_NORM_LAYERNORM ? "LN" : "RMS",
             nc->has_w ? " w" : "", nc->has_b ? " b" : "", nc->G, nc->rep, nc->scale, backend);
}

static void test_norm_vs_ref(void) {
    const int sizes[][2] = {{37, 24}, {29, 130}, {3, 5}};
    FOR_BACKENDS(ops)
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (size_t ci = 0; ci < sizeof norm_cases / sizeof norm_cases[0]; ci++) {
            const NormCase *nc = &norm_cases[ci];
            int N = sizes[s][0], C = sizes[s][1], G = nc->G;
            size_t NC = (size_t)N * C;
            float *x = frand(NC, -2, 3), *w = frand((size_t)G * C, 0.5, 1.5), *b = frand((size_t)G * C, -1, 1);
            float *dout = frand(NC, -1, 1);
            const float *W = nc->has_w ? w : NULL, *Bb = nc->has_b ? b : NULL;
            float *o1 = fzeros(NC), *o2 = fzeros(NC), *m1 = fzeros(N), *m2 = fzeros(N), *r1 = fzeros(N),
                  *r2 = fzeros(N);
            ops->norm_forward(o1, m1, r1, x, W, Bb, N, C, G, nc->rep, nc->kind, 1e-5f, nc->scale);
            REF->norm_forward(o2, m2, r2, x, W, Bb, N, C, G, nc->rep, nc->kind, 1e-5f, nc->scale);
            char name[128];
            norm_name(name, sizeof name, "norm fwd", nc, ops->name);
            check_vs_ref(name, o1, o2, NC, 1e-6, 1e-6);
            check_vs_ref("norm rstd", r1, r2, N, 0, 1e-7);
            float *dx1 = frand(NC, -1, 1), *dw1 = frand((size_t)G * C, -1, 1), *db1 = frand((size_t)G * C, -1, 1);
            float *dx2 = fcopy(dx1, NC), *dw2 = fcopy(dw1, (size_t)G * C), *db2 = fcopy(db1, (size_t)G * C);
            ops->norm_backward(dx1, nc->has_w ? dw1 : NULL, nc->has_b ? db1 : NULL, dout, x, W, m1, r1, N, C, G,
                               nc->rep, nc->kind, nc->scale);
            REF->norm_backward(dx2, nc->has_w ? dw2 : NULL, nc->has_b ? db2 : NULL, dout, x, W, m2, r2, N, C, G,
                               nc->rep, nc->kind, nc->scale);
            norm_name(name, sizeof name, "norm dinp", nc, ops->name);
            check_vs_ref(name, dx1, dx2, NC, 1e-6, 1e-5);
            norm_name(name, sizeof name, "norm dweight", nc, ops->name);
            check_vs_ref(name, dw1, dw2, (size_t)G * C, 1e-6, 1e-5);
            norm_name(name, sizeof name, "norm dbias", nc, ops->name);
            check_vs_ref(name, db1, db2, (size_t)G * C, 1e-6, 1e-5);
            free(x), free(w), free(b), free(dout), free(o1), free(o2), free(m1), free(m2), free(r1), free(r2);
            free(dx1), free(dw1), free(db1), free(dx2), free(dw2), free(db2);
        }
}

static void test_norm_grad(void) {
    const int N = 13, C = 12;
    const float eps = 1e-5f;
    for (size_t ci = 0; ci < sizeof norm_cases / sizeof norm_cases[0]; ci++) {
        const NormCase *nc = &norm_cases[ci];
        int G = nc->G, rep = nc->rep;
        size_t NC = (size_t)N * C, GC = (size_t)G * C;
        float *x = frand(NC, -1.5, 2.5), *w = frand(GC, 0.5, 1.5), *b = frand(GC, -1, 1), *R = frand(NC, -1, 1);
        const float *W = nc->has_w ? w : NULL, *Bb = nc->has_b ? b : NULL;
        double *xd = dcopy(x, NC), *wd = dcopy(w, GC), *bd = dcopy(b, GC), *Rd = dcopy(R, NC), *od = dalloc(NC);
        double *gx = dalloc(NC), *gw = dalloc(GC), *gb = dalloc(GC);
        const double *Wd = nc->has_w ? wd : NULL, *Bd = nc->has_b ? bd : NULL;
#define L_N (d_norm(od, xd, Wd, Bd, N, C, G, rep, nc->kind, eps, nc->scale), dot_out_R(od, Rd, NC))
        FD(gx, xd, NC, L_N);
        FD(gw, wd, GC, L_N);
        FD(gb, bd, GC, L_N);
#undef L_N
        d_norm(od, xd, Wd, Bd, N, C, G, rep, nc->kind, eps, nc->scale);
        FOR_BACKENDS(ops) {
            char name[128];
            float *out = fzeros(NC), *mean = fzeros(N), *rstd = fzeros(N);
            float *dx = fzeros(NC), *dw = fzeros(GC), *db = fzeros(GC);
            /* RMSNorm may pass mean = NULL */
            float *meanp = nc->kind == LNL_NORM_RMSNORM ? NULL : mean;
            ops->norm_forward(out, meanp, rstd, x, W, Bb, N, C, G, rep, nc->kind, eps, nc->scale);
            norm_name(name, sizeof name, "norm fwd vs double", nc, ops->name);
            CHECK(close_arrays(name, out, od, NC, 1e-6, 1e-5, 0), "%s", name);
            void (*bwd)(float *, float *, float *, const float *, const float *, const float *, const float *,
                        const float *, int, int, int, int, LnlNormKind, float) =
                ops->norm_backward;
            bwd(dx, nc->has_w ? dw : NULL, nc->has_b ? db : NULL, R, x, W, meanp, rstd, N, C, G, rep, nc->kind,
                nc->scale);
            norm_name(name, sizeof name, "norm dinp", nc, ops->name);
            check_grad(name, dx, gx, NC);
            if (nc->has_w) {
                norm_name(name, sizeof name, "norm dweight", nc, ops->name);
                check_grad(name, dw, gw, GC);
            }
            if (nc->has_b) {
                norm_name(name, sizeof name, "norm dbias", nc, ops->name);
                check_grad(name, db, gb, GC);
            }
            float *ax = frand(NC, -1, 1), *aw = frand(GC, -1, 1), *ab = frand(GC, -1, 1);
            float *ax0 = fcopy(ax, NC), *aw0 = fcopy(aw, GC), *ab0 = fcopy(ab, GC);
            bwd(ax, nc->has_w ? aw : NULL, nc->has_b ? ab : NULL, R, x, W, meanp, rstd, N, C, G, rep, nc->kind,
                nc->scale);
            check_accum("norm dinp", ax, ax0, dx, NC);
            if (nc->has_w) check_accum("norm dweight", aw, aw0, dw, GC);
            if (nc->has_b) check_accum("norm dbias", ab, ab0, db, GC);
            free(out), free(mean), free(rstd), free(dx), free(dw), free(db);
            free(ax), free(aw), free(ab), free(ax0), free(aw0), free(ab0);
        }
        free(x), free(w), free(b), free(R), free(xd), free(wd), free(bd), free(Rd), free(od);
        free(gx), free(gw), free(gb);
    }
}

/* ---- elementwise (dynamic) norms: DyT, Derf ---- */

/* Independent double forward from kernels.h's formulas. */
static void d_dyn_norm(double *out, const double *x, const double *w, const double *b, const double *alpha,
                       const double *shift, int N, int C, int G, int rep, LnlNormKind kind, double scale) {
    for (int r = 0; r < N; r++) {
        int g = (r / rep) % G;
        for (int i = 0; i < C; i++) {
            double z = alpha[g] * x[(size_t)r * C + i] + (shift ? shift[g] : 0.0);
            double phi = kind == LNL_NORM_DERF ? erf(z) : tanh(z);
            out[(size_t)r * C + i] = scale * ((w ? w[(size_t)g * C + i] : 1.0) * phi + (b ? b[(size_t)g * C + i] : 0.0));
        }
    }
}

static void test_dyn_norm_grad(void) {
    const int N = 11, C = 9;
    const struct {
        LnlNormKind kind;
        int has_w, has_b, G, rep;
        float scale;
    } cases[] = {{LNL_NORM_DYT, 1, 1, 1, 1, 1.0f}, {LNL_NORM_DYT, 0, 0, 1, 1, 0.6f}, {LNL_NORM_DYT, 1, 1, 3, 2, 1.3f},
                 {LNL_NORM_DERF, 1, 1, 1, 1, 1.0f}, {LNL_NORM_DERF, 1, 0, 3, 2, 0.8f}, {LNL_NORM_DERF, 0, 1, 1, 1, 2.0f}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const LnlNormKind kind = cases[ci].kind;
        const int G = cases[ci].G, rep = cases[ci].rep, derf = kind == LNL_NORM_DERF;
        const float sc = cases[ci].scale;
        size_t NC = (size_t)N * C, GC = (size_t)G * C;
        float *x = frand(NC, -2.5, 2.5), *w = frand(GC, 0.5, 1.5), *b = frand(GC, -1, 1), *R = frand(NC, -1, 1);
        float *al = frand((size_t)G, 0.3f, 1.2f), *sh = frand((size_t)G, -0.5f, 0.5f);
        const float *W = cases[ci].has_w ? w : NULL, *Bb = cases[ci].has_b ? b : NULL, *S = derf ? sh : NULL;
        double *xd = dcopy(x, NC), *wd = dcopy(w, GC), *bd = dcopy(b, GC), *Rd = dcopy(R, NC), *od = dalloc(NC);
        double *ad = dcopy(al, (size_t)G), *sd = dcopy(sh, (size_t)G);
        double *gx = dalloc(NC), *gw = dalloc(GC), *gb = dalloc(GC), *ga = dalloc((size_t)G), *gs = dalloc((size_t)G);
        const double *Wd = W ? wd : NULL, *Bd = Bb ? bd : NULL, *Sd = S ? sd : NULL;
#define L_N (d_dyn_norm(od, xd, Wd, Bd, ad, Sd, N, C, G, rep, kind, sc), dot_out_R(od, Rd, NC))
        FD(gx, xd, NC, L_N);
        FD(gw, wd, GC, L_N);
        FD(gb, bd, GC, L_N);
        FD(ga, ad, (size_t)G, L_N);
        FD(gs, sd, (size_t)G, L_N);
#undef L_N
        d_dyn_norm(od, xd, Wd, Bd, ad, Sd, N, C, G, rep, kind, sc);
        char name[128];
        FOR_BACKENDS(ops) {
            float *out = fzeros(NC), *dx = fzeros(NC), *dw = fzeros(GC), *db = fzeros(GC);
            float *da = fzeros((size_t)G), *ds = fzeros((size_t)G);
            ops->dyn_norm_forward(out, x, W, Bb, al, S, N, C, G, rep, kind, sc);
            snprintf(name, sizeof name, "%s case %zu fwd vs double [%s]", derf ? "derf" : "dyt", ci, ops->name);
            CHECK(close_arrays(name, out, od, NC, 1e-6, 1e-5, 0), "%s", name);
            ops->dyn_norm_backward(dx, W ? dw : NULL, Bb ? db : NULL, da, S ? ds : NULL, R, x, W, al, S, N, C, G, rep,
                                   kind, sc);
            snprintf(name, sizeof name, "%s case %zu dinp [%s]", derf ? "derf" : "dyt", ci, ops->name);
            check_grad(name, dx, gx, NC);
            if (W) check_grad("dyn norm dweight", dw, gw, GC);
            if (Bb) check_grad("dyn norm dbias", db, gb, GC);
            check_grad("dyn norm dalpha", da, ga, (size_t)G);
            if (S) check_grad("dyn norm dshift", ds, gs, (size_t)G);
            /* += accumulation of every gradient */
            float *ax = frand(NC, -1, 1), *aa = frand((size_t)G, -1, 1), *as = frand((size_t)G, -1, 1);
            float *ax0 = fcopy(ax, NC), *aa0 = fcopy(aa, (size_t)G), *as0 = fcopy(as, (size_t)G);
            ops->dyn_norm_backward(ax, NULL, NULL, aa, S ? as : NULL, R, x, W, al, S, N, C, G, rep, kind, sc);
            check_accum("dyn norm dinp", ax, ax0, dx, NC);
            check_accum("dyn norm dalpha", aa, aa0, da, (size_t)G);
            if (S) check_accum("dyn norm dshift", as, as0, ds, (size_t)G);
            free(out), free(dx), free(dw), free(db), free(da), free(ds);
            free(ax), free(aa), free(as), free(ax0), free(aa0), free(as0);
        }
        free(x), free(w), free(b), free(R), free(al), free(sh), free(xd), free(wd), free(bd), free(Rd), free(od);
        free(ad), free(sd), free(gx), free(gw), free(gb), free(ga), free(gs);
    }
}

/* ---- attention ---- */

/* The cpu backend's attention has two forms: sgemm calls per (batch, head) when BLAS runs one
 * thread per call (thread modes 0 and 1), the register-tiled form otherwise (mode 2, and builds
 * without BLAS). Every attention test runs in every mode. */
static void test_attention_vs_ref(void) {
    /* T = 150 spans three key blocks of either fast form (and a partial fourth); head size 320
     * exceeds the tiled form's 256-wide slices of the transposed key block. Head sizes 16, 32 and
     * 64 at T <= 128 (without a cap) take attention_small.c's form where the build has AVX-512:
     * T 37 and 100 end inside a 16-key block, 128 fills its largest. */
    const int shapes[][4] = {{2, 13, 24, 3}, {1, 37, 128, 2}, {3, 1, 8, 1},    {2, 20, 30, 5},  {1, 150, 128, 2},
                             {2, 9, 640, 2}, {2, 200, 96, 3}, {2, 64, 64, 4}, {1, 100, 128, 4}, {1, 128, 64, 1},
                             {2, 128, 64, 4}, {1, 3, 48, 3}};
    const float caps[] = {0.0f, 1.5f}; /* off, and a softcap that bends most of these scores */
    FOR_BACKENDS(ops)
    for (int mode = 0; mode < thread_modes(ops); mode++)
    for (size_t ci = 0; ci < sizeof caps / sizeof caps[0]; ci++)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        set_thread_mode(mode);
        const float cap = caps[ci];
        int B = shapes[s][0], T = shapes[s][1], C = shapes[s][2], NH = shapes[s][3];
        size_t nq = (size_t)B * T * 3 * C, no = (size_t)B * T * C, na = (size_t)B * NH * T * T;
        float *qkv = frand(nq, -2, 2), *dout = frand(no, -1, 1);
        float *o1 = fzeros(no), *o2 = fzeros(no), *a1 = frand(na, 5, 6), *a2 = frand(na, 5, 6);
        size_t nr = (size_t)B * NH * T;
        float *r1 = frand(nr, 5, 6), *r2 = frand(nr, 5, 6);
        ops->attention_forward(o1, a1, r1, qkv, B, T, C, NH, cap);
        REF->attention_forward(o2, a2, r2, qkv, B, T, C, NH, cap);
        char name[112], mn[48];
        snprintf(mn, sizeof mn, "%s, cap %g", thread_mode_name[mode], (double)cap);
        snprintf(name, sizeof name, "attn out B%d T%d C%d NH%d [%s, %s]", B, T, C, NH, ops->name, mn);
        double atol = 5e-7 * sqrt((double)T + C / NH); /* float sums over T keys and the head */
        check_vs_ref(name, o1, o2, no, atol, 1e-5);
        snprintf(name, sizeof name, "attn att B%d T%d C%d NH%d [%s, %s]", B, T, C, NH, ops->name, mn);
        check_vs_ref(name, a1, a2, na, 1e-7, 1e-5);
        snprintf(name, sizeof name, "attn rowmax B%d T%d C%d NH%d [%s, %s]", B, T, C, NH, ops->name, mn);
        check_vs_ref(name, r1, r2, nr, 5e-7 * sqrt((double)C / NH), 1e-5); /* a float dot over the head */
        if (cap > 0 && nr >= 50) { /* rowmax is the logit before the cap, which exceeds it here */
            float mx = 0.0f;
            for (size_t i = 0; i < nr; i++) mx = r2[i] > mx ? r2[i] : mx;
            CHECK(mx > cap, "%s: the largest rowmax %g is not above the cap: capped?", name, (double)mx);
        }
        /* without rowmax the other outputs are the same floats */
        float *o3 = fzeros(no), *a3 = frand(na, 5, 6);
        ops->attention_forward(o3, a3, NULL, qkv, B, T, C, NH, cap);
        CHECK(memcmp(o3, o1, no * sizeof(float)) == 0 && memcmp(a3, a1, na * sizeof(float)) == 0,
              "attn B%d T%d C%d NH%d [%s, %s]: rowmax changes out or att", B, T, C, NH, ops->name, mn);
        free(r1), free(r2), free(o3), free(a3);
        float *d1 = frand(nq, -1, 1), *d2 = fcopy(d1, nq), *da1 = frand(na, 5, 6), *da2 = frand(na, 5, 6);
        ops->attention_backward(d1, da1, dout, qkv, a1, B, T, C, NH, cap);
        REF->attention_backward(d2, da2, dout, qkv, a2, B, T, C, NH, cap);
        snprintf(name, sizeof name, "attn dqkv B%d T%d C%d NH%d [%s, %s]", B, T, C, NH, ops->name, mn);
        check_vs_ref(name, d1, d2, nq, atol, 1e-5);
        snprintf(name, sizeof name, "attn datt scratch B%d T%d C%d NH%d [%s, %s]", B, T, C, NH, ops->name, mn);
        check_vs_ref(name, da1, da2, na, atol, 1e-4);
        free(qkv), free(dout), free(o1), free(o2), free(a1), free(a2), free(d1), free(d2), free(da1), free(da2);
    }
}

static void test_attention_mask_rows(void) {
    const int B = 2, T = 13, C = 24, NH = 3;
    size_t na = (size_t)B * NH * T * T;
    float *qkv = frand((size_t)B * T * 3 * C, -3, 3), *out = fzeros((size_t)B * T * C);
    FOR_BACKENDS(ops)
    for (int mode = 0; mode < thread_modes(ops); mode++) {
        set_thread_mode(mode);
        float *att = frand(na, 1, 2); /* garbage that must be overwritten */
        ops->attention_forward(out, att, NULL, qkv, B, T, C, NH, 0.0f);
        int masked_ok = 1;
        double worst = 0.0;
        for (int bh = 0; bh < B * NH; bh++)
            for (int t = 0; t < T; t++) {
                const float *a = att + ((size_t)bh * T + t) * T;
                double s = 0.0;
                for (int t2 = 0; t2 < T; t2++) {
                    if (t2 > t && a[t2] != 0.0f) masked_ok = 0;
                    if (t2 <= t) s += a[t2];
                    if (t2 <= t && !(a[t2] >= 0.0f)) masked_ok = 0;
                }
                worst = fabs(s - 1.0) > worst ? fabs(s - 1.0) : worst;
            }
        CHECK(masked_ok, "[%s, %s] att above the diagonal is not exactly 0 (or a weight is negative)",
              ops->name, thread_mode_name[mode]);
        CHECK(worst < 1e-6, "[%s, %s] att rows sum to 1 +- %g", ops->name, thread_mode_name[mode], worst);
        printf("#   attention [%s, %s]: masked entries 0, max |row sum - 1| = %.2g\n", ops->name,
               thread_mode_name[mode], worst);
        free(att);
    }
    free(qkv), free(out);
}

static void test_attention_grad(void) {
    /* shape {B, T, C, NH, softcap x 10}: the capped ones with scores up to a few times the cap */
    const int shapes[][5] = {{2, 5, 12, 3, 0}, {1, 6, 32, 2, 0}, {1, 70, 8, 2, 0}, {2, 5, 12, 3, 10},
                             {1, 9, 32, 2, 7}, {1, 70, 8, 2, 15}, {1, 21, 32, 1, 0}, {1, 19, 64, 4, 0}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int B = shapes[s][0], T = shapes[s][1], C = shapes[s][2], NH = shapes[s][3];
        const float cap = (float)shapes[s][4] / 10.0f;
        size_t nq = (size_t)B * T * 3 * C, no = (size_t)B * T * C, na = (size_t)B * NH * T * T;
        float *qkv = frand(nq, -1.5, 1.5), *R = frand(no, -1, 1);
        double *qd = dcopy(qkv, nq), *Rd = dcopy(R, no), *od = dalloc(no), *g = dalloc(nq);
        FD(g, qd, nq, (d_attention(od, qd, B, T, C, NH, cap), dot_out_R(od, Rd, no)));
        d_attention(od, qd, B, T, C, NH, cap);
        FOR_BACKENDS(ops)
        for (int mode = 0; mode < thread_modes(ops); mode++) {
            set_thread_mode(mode);
            char name[128];
            float *out = fzeros(no), *att = fzeros(na), *datt = fzeros(na), *dq = fzeros(nq);
            ops->attention_forward(out, att, NULL, qkv, B, T, C, NH, cap);
            snprintf(name, sizeof name, "attn fwd vs double B%d T%d C%d NH%d cap %g [%s, %s]", B, T, C, NH,
                     (double)cap, ops->name, thread_mode_name[mode]);
            CHECK(close_arrays(name, out, od, no, 1e-6, 1e-5, 0), "%s", name);
            ops->attention_backward(dq, datt, R, qkv, att, B, T, C, NH, cap);
            snprintf(name, sizeof name, "attn dqkv B%d T%d C%d NH%d cap %g [%s, %s]", B, T, C, NH, (double)cap,
                     ops->name, thread_mode_name[mode]);
            check_grad(name, dq, g, nq);
            float *a = frand(nq, -1, 1), *a0 = fcopy(a, nq);
            ops->attention_backward(a, datt, R, qkv, att, B, T, C, NH, cap);
            check_accum("attn dqkv", a, a0, dq, nq);
            free(out), free(att), free(datt), free(dq), free(a), free(a0);
        }
        free(qkv), free(R), free(qd), free(Rd), free(od), free(g);
    }
}

/* ---- GELU ---- */

static void test_gelu(void) {
    const size_t n = 1001;
    float *x = frand(n, -6, 6);
    x[0] = 0.0f, x[1] = -30.0f, x[2] = 30.0f, x[3] = 1e-6f, x[4] = -1e-6f, x[5] = -9.5f;
    float *o1 = fzeros(n), *o2 = fzeros(n), *dout = frand(n, -1, 1);
    FOR_BACKENDS(ops) {
        char name[64];
        ops->gelu_forward(o1, x, n);
        REF->gelu_forward(o2, x, n);
        snprintf(name, sizeof name, "gelu fwd [%s vs ref]", ops->name);
        check_vs_ref(name, o1, o2, n, 1e-7, 1e-6);
        float *d1 = frand(n, -1, 1), *d2 = fcopy(d1, n);
        ops->gelu_backward(d1, x, dout, n);
        REF->gelu_backward(d2, x, dout, n);
        snprintf(name, sizeof name, "gelu bwd [%s vs ref]", ops->name);
        check_vs_ref(name, d1, d2, n, 1e-6, 1e-5);
        free(d1), free(d2);
    }

    const size_t m = 64;
    float *y = frand(m, -4, 4), *R = frand(m, -1, 1);
    double *yd = dcopy(y, m), *g = dalloc(m), *od = dalloc(m);
    FD(g, yd, m, d_gelu_L(yd, R, m));
    for (size_t j = 0; j < m; j++) od[j] = d_gelu(yd[j]);
    FOR_BACKENDS(ops) {
        char name[64];
        float *out = fzeros(m), *dy = fzeros(m);
        ops->gelu_forward(out, y, m);
        snprintf(name, sizeof name, "gelu fwd vs double [%s]", ops->name);
        CHECK(close_arrays(name, out, od, m, 1e-7, 1e-6, 0), "%s", name);
        void (*bwd)(float *, const float *, const float *, size_t) =
            ops->gelu_backward;
        bwd(dy, y, R, m);
        snprintf(name, sizeof name, "gelu dinp [%s]", ops->name);
        check_grad(name, dy, g, m);
        float *a = garbage(m), *r = fcopy(R, m);
        bwd(a, y, R, m);
        check_written("gelu dinp", a, dy, m);
        bwd(r, y, r, m); /* in place: dinp is dout */
        check_written("gelu dinp in place", r, dy, m);
        free(out), free(dy), free(a), free(r);
    }
    free(x), free(o1), free(o2), free(dout), free(y), free(R), free(yd), free(g), free(od);
}

/* ---- embedding ---- */

static double d_embed_L(const double *wte, const double *wpe, const int32_t *tok, const double *R, int B, int T,
                        int C, double scale) {
    double L = 0.0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++)
                L += scale * (wte[tok[b * T + t] * C + c] + wpe[t * C + c]) * R[(b * T + t) * C + c];
    return L;
}

static void test_embed(void) {
    const int B = 2, T = 5, C = 7, V = 6, maxT = 8;
    const float scale = 1.7f;
    const int32_t tok[10] = {3, 0, 3, 5, 1, 3, 3, 2, 0, 5}; /* repeats must add up */
    float *wte = frand(V * C, -1, 1), *wpe = frand(maxT * C, -1, 1), *R = frand(B * T * C, -1, 1);
    double *wted = dcopy(wte, V * C), *wped = dcopy(wpe, maxT * C), *Rd = dcopy(R, B * T * C);
    double *gte = dalloc(V * C), *gpe = dalloc(maxT * C);
    FD(gte, wted, V * C, d_embed_L(wted, wped, tok, Rd, B, T, C, scale));
    FD(gpe, wped, maxT * C, d_embed_L(wted, wped, tok, Rd, B, T, C, scale));
    float *o1 = fzeros(B * T * C), *o2 = fzeros(B * T * C);
    FOR_BACKENDS(ops) {
        char name[64];
        ops->embed_forward(o1, tok, wte, wpe, B, T, C, scale);
        REF->embed_forward(o2, tok, wte, wpe, B, T, C, scale);
        snprintf(name, sizeof name, "embed fwd [%s vs ref]", ops->name);
        check_vs_ref(name, o1, o2, B * T * C, 0, 0);
        CHECK_CLOSE(o1[(1 * T + 2) * C + 4], scale * (wte[tok[1 * T + 2] * C + 4] + wpe[2 * C + 4]), 1e-6, 1e-6);
        void (*bwd)(float *, float *, const float *, const int32_t *, int, int, int, float) =
            ops->embed_backward;
        float *dte = fzeros(V * C), *dpe = fzeros(maxT * C);
        bwd(dte, dpe, R, tok, B, T, C, scale);
        snprintf(name, sizeof name, "embed dwte [%s]", ops->name);
        check_grad(name, dte, gte, V * C);
        snprintf(name, sizeof name, "embed dwpe [%s]", ops->name);
        check_grad(name, dpe, gpe, maxT * C);
        float *a = frand(V * C, -1, 1), *a0 = fcopy(a, V * C), *p = frand(maxT * C, -1, 1), *p0 = fcopy(p, maxT * C);
        bwd(a, p, R, tok, B, T, C, scale);
        check_accum("embed dwte", a, a0, dte, V * C);
        check_accum("embed dwpe", p, p0, dpe, maxT * C);
        bwd(NULL, p, R, tok, B, T, C, scale);
        free(dte), free(dpe), free(a), free(a0), free(p), free(p0);
    }
    free(wte), free(wpe), free(R), free(wted), free(wped), free(Rd), free(gte), free(gpe), free(o1), free(o2);
}

/* ---- softmax + cross-entropy ---- */

static void test_softmax_xent_vs_ref(void) {
    const int N = 9, V = 101;
    int32_t tg[9] = {0, 100, 5, -1, 50, 7, 7, -100, 33};
    FOR_BACKENDS(ops) {
        char name[64];
        {   /* GPT-2 vocabulary length rows */
            const int n = 3, v = 50257;
            int32_t t3[3] = {50256, 0, 12345};
            float *x = frand((size_t)n * v, -8, 8), *p1 = fzeros((size_t)n * v), *p2 = fzeros((size_t)n * v);
            float *l1 = fzeros(n), *l2 = fzeros(n);
            ops->softmax_xent_forward(l1, p1, x, t3, n, v);
            REF->softmax_xent_forward(l2, p2, x, t3, n, v);
            snprintf(name, sizeof name, "xent probs V=50257 [%s vs ref]", ops->name);
            check_vs_ref(name, p1, p2, (size_t)n * v, 1e-12, 1e-6);
            snprintf(name, sizeof name, "xent losses V=50257 [%s vs ref]", ops->name);
            check_vs_ref(name, l1, l2, n, 1e-6, 1e-6);
            free(x), free(p1), free(p2), free(l1), free(l2);
        }
        for (int shift = 0; shift < 2; shift++) {
            /* shift: large logits (stability) with a wide spread, so some exp underflow */
            float *x = frand((size_t)N * V, shift ? 900 : -4, shift ? 1000 : 4);
            float *p1 = fzeros((size_t)N * V), *p2 = fzeros((size_t)N * V), *l1 = fzeros(N), *l2 = fzeros(N);
            ops->softmax_xent_forward(l1, p1, x, tg, N, V);
            REF->softmax_xent_forward(l2, p2, x, tg, N, V);
            snprintf(name, sizeof name, "xent probs%s [%s vs ref]", shift ? ", logits ~1e3" : "", ops->name);
            check_vs_ref(name, p1, p2, (size_t)N * V, 1e-12, 1e-6);
            snprintf(name, sizeof name, "xent losses%s [%s vs ref]", shift ? ", logits ~1e3" : "", ops->name);
            check_vs_ref(name, l1, l2, N, 1e-6, 1e-6);
            CHECK(l1[3] == 0.0f && l1[7] == 0.0f, "[%s] ignored targets must give loss 0", ops->name);
            /* in place: probs aliasing logits */
            float *xa = fcopy(x, (size_t)N * V), *la = fzeros(N);
            ops->softmax_xent_forward(la, xa, xa, tg, N, V);
            snprintf(name, sizeof name, "xent in place probs [%s]", ops->name);
            check_vs_ref(name, xa, p1, (size_t)N * V, 0, 0);
            snprintf(name, sizeof name, "xent in place losses [%s]", ops->name);
            check_vs_ref(name, la, l1, N, 0, 0);
            float *dl = frand(N, 0.1, 1), *d1 = frand((size_t)N * V, -1, 1), *d2 = fcopy(d1, (size_t)N * V);
            ops->softmax_xent_backward(d1, p1, tg, dl, N, V);
            REF->softmax_xent_backward(d2, p2, tg, dl, N, V);
            snprintf(name, sizeof name, "xent dlogits [%s vs ref]", ops->name);
            check_vs_ref(name, d1, d2, (size_t)N * V, 1e-6, 1e-5);
            free(x), free(p1), free(p2), free(l1), free(l2), free(xa), free(la);
            free(dl), free(d1), free(d2);
        }
    }
}

static void test_softmax_xent_grad(void) {
    const int N = 5, V = 23;
    const int32_t tg[5] = {3, -1, 22, 0, 3};
    float *x = frand((size_t)N * V, -3, 3), *R = frand(N, 0.2, 1.5);
    double *xd = dcopy(x, (size_t)N * V), *Rd = dcopy(R, N), *g = dalloc((size_t)N * V);
    FD(g, xd, (size_t)N * V, d_xent_loss(xd, tg, Rd, N, V));
    FOR_BACKENDS(ops) {
        char name[64];
        float *p = fzeros((size_t)N * V), *l = fzeros(N), *d = fzeros((size_t)N * V);
        ops->softmax_xent_forward(l, p, x, tg, N, V);
        double Lk = 0.0;
        for (int r = 0; r < N; r++) Lk += (double)l[r] * R[r];
        CHECK_CLOSE(Lk, d_xent_loss(xd, tg, Rd, N, V), 1e-6, 1e-6);
        void (*bwd)(float *, const float *, const int32_t *, const float *, int, int) =
            ops->softmax_xent_backward;
        bwd(d, p, tg, R, N, V);
        snprintf(name, sizeof name, "xent dlogits [%s]", ops->name);
        check_grad(name, d, g, (size_t)N * V);
        int ignored_zero = 1;
        for (int v = 0; v < V; v++) ignored_zero &= d[1 * V + v] == 0.0f;
        CHECK(ignored_zero, "[%s] ignored target row got a gradient", ops->name);
        float *a = frand((size_t)N * V, -1, 1), *a0 = fcopy(a, (size_t)N * V);
        bwd(a, p, tg, R, N, V);
        check_accum("xent dlogits", a, a0, d, (size_t)N * V);
        free(p), free(l), free(d), free(a), free(a0);
    }
    free(x), free(R), free(xd), free(Rd), free(g);
}

/* The one-buffer cross-entropy (lnl_xent_*): against its reference, against the probabilities
 * kept by lnl_softmax_xent_*, and its in-place gradient against finite differences. */
static void test_xent_inplace(void) {
    FOR_BACKENDS(ops)
    for (int big = 0; big < 2; big++)
        for (int shift = 0; shift < 2; shift++) {
            const int N = big ? 3 : 9, V = big ? 50257 : 101;
            int32_t tg[9] = {0, 100, 5, -1, 50, 7, 7, -100, 33};
            if (big) tg[0] = 50256, tg[1] = 0, tg[2] = 12345;
            size_t NV = (size_t)N * V;
            float *x = frand(NV, shift ? 900 : -8, shift ? 1000 : 8);
            float *l1 = fzeros(N), *l2 = fzeros(N), *l3 = fzeros(N), *p = fzeros(NV);
            float *mx1 = fzeros(N), *iz1 = fzeros(N), *mx2 = fzeros(N), *iz2 = fzeros(N);
            float *x1 = fcopy(x, NV), *x2 = fcopy(x, NV);
            ops->xent_forward(l1, mx1, iz1, x1, tg, N, V);
            REF->xent_forward(l2, mx2, iz2, x2, tg, N, V);
            ops->softmax_xent_forward(l3, p, x, tg, N, V);
            char name[96];
            const char *tail = shift ? " ~1e3" : "";
            snprintf(name, sizeof name, "xent1 logits untouched V=%d%s [%s]", V, tail, ops->name);
            check_vs_ref(name, x1, x, NV, 0, 0);
            snprintf(name, sizeof name, "xent1 losses V=%d%s [%s vs ref]", V, tail, ops->name);
            check_vs_ref(name, l1, l2, N, 1e-6, 1e-6);
            snprintf(name, sizeof name, "xent1 losses vs softmax_xent [%s]", ops->name);
            check_vs_ref(name, l1, l3, N, 0, 0);
            snprintf(name, sizeof name, "xent1 row max [%s vs ref]", ops->name);
            check_vs_ref(name, mx1, mx2, N, 0, 0);
            snprintf(name, sizeof name, "xent1 row 1/z [%s vs ref]", ops->name);
            check_vs_ref(name, iz1, iz2, N, 0, 1e-6);
            float *dl = frand(N, 0.1, 1), *dref = fzeros(NV);
            ops->softmax_xent_backward(dref, p, tg, dl, N, V);
            ops->xent_backward_inplace(x1, mx1, iz1, tg, dl, NULL, 0.0f, N, V);
            REF->xent_backward_inplace(x2, mx2, iz2, tg, dl, NULL, 0.0f, N, V);
            snprintf(name, sizeof name, "xent1 dlogits [%s vs ref] V=%d%s", ops->name, V, tail);
            check_vs_ref(name, x1, x2, NV, 1e-9, 1e-5);
            /* the floats of lnl_softmax_xent_*, a fast backend's promise (kernels.h); the reference
             * rounds the in-place gradient once, from double */
            snprintf(name, sizeof name, "xent1 dlogits [%s vs softmax_xent] V=%d%s", ops->name, V, tail);
            if (ops != REF) check_vs_ref(name, x1, dref, NV, 0, 0);
            int ignored_zero = 1;
            for (int r = 0; r < N; r++)
                for (int v = 0; v < V && tg[r] < 0; v++)
                    ignored_zero &= x1[(size_t)r * V + v] == 0.0f && x2[(size_t)r * V + v] == 0.0f;
            CHECK(ignored_zero, "[%s] ignored rows must get a zero gradient", ops->name);
            free(x), free(l1), free(l2), free(l3), free(p), free(mx1), free(iz1), free(mx2), free(iz2);
            free(x1), free(x2), free(dl), free(dref);
        }
    /* the gradient against finite differences of the double loss */
    const int N = 5, V = 23;
    const int32_t tg[5] = {3, -1, 22, 0, 3};
    float *x = frand((size_t)N * V, -3, 3), *R = frand(N, 0.2, 1.5);
    double *xd = dcopy(x, (size_t)N * V), *Rd = dcopy(R, N), *g = dalloc((size_t)N * V);
    FD(g, xd, (size_t)N * V, d_xent_loss(xd, tg, Rd, N, V));
    FOR_BACKENDS(ops) {
        char name[64];
        float *l = fzeros(N), *mx = fzeros(N), *iz = fzeros(N), *d = fcopy(x, (size_t)N * V);
        ops->xent_forward(l, mx, iz, d, tg, N, V);
        double Lk = 0.0;
        for (int r = 0; r < N; r++) Lk += (double)l[r] * R[r];
        CHECK_CLOSE(Lk, d_xent_loss(xd, tg, Rd, N, V), 1e-6, 1e-6);
        ops->xent_backward_inplace(d, mx, iz, tg, R, NULL, 0.0f, N, V);
        snprintf(name, sizeof name, "xent1 dlogits [%s]", ops->name);
        check_grad(name, d, g, (size_t)N * V);
        free(l), free(mx), free(iz), free(d);
    }
    free(x), free(R), free(xd), free(Rd), free(g);
}

/* sum_r R[r] (log Z_r - c[r, tg[r]]) + Zg[r] log Z_r, Z_r = sum_v exp c[r, v], c = S tanh(z / S) (z
 * itself for S = 0): the cross-entropy with the z-loss's extra dLoss/d log Z (Zg) and the softcap,
 * as lnl_xent_backward_inplace differentiates it (kernels.h). */
static double d_xent_capped_loss(const double *z, const int32_t *tg, const double *R, const double *Zg, double S,
                                 int N, int V) {
    double L = 0.0;
    double *c = dalloc((size_t)V);
    for (int r = 0; r < N; r++) {
        if (tg[r] < 0) continue;
        double mx = -INFINITY, sum = 0.0;
        for (int v = 0; v < V; v++) {
            c[v] = S > 0 ? S * tanh(z[r * V + v] / S) : z[r * V + v];
            mx = c[v] > mx ? c[v] : mx;
        }
        for (int v = 0; v < V; v++) sum += exp(c[v] - mx);
        const double lz = mx + log(sum);
        L += R[r] * (lz - c[tg[r]]) + Zg[r] * lz;
    }
    free(c);
    return L;
}

/* The logit softcap (lnl_softcap_forward) against the reference, in place and not; the in-place
 * cross-entropy's gradient with a z-loss term (dlogz) and through the softcap against the
 * reference and against finite differences of d_xent_capped_loss. */
static void test_xent_zloss_softcap(void) {
    FOR_BACKENDS(ops)
    for (int big = 0; big < 2; big++) {
        const int N = big ? 3 : 9, V = big ? 50257 : 101;
        const size_t NV = (size_t)N * V;
        const float S = 3.0f;
        int32_t tg[9] = {0, 100, 5, -1, 50, 7, 7, -100, 33};
        if (big) tg[0] = 50256, tg[1] = 0, tg[2] = 12345;
        float *z = frand(NV, -12, 12), *c1 = fzeros(NV), *c2 = fzeros(NV), *ca = fcopy(z, NV);
        char name[96];
        ops->softcap_forward(c1, z, NV, S);
        REF->softcap_forward(c2, z, NV, S);
        ops->softcap_forward(ca, ca, NV, S);
        snprintf(name, sizeof name, "softcap V=%d [%s vs ref]", V, ops->name);
        check_vs_ref(name, c1, c2, NV, 1e-6, 1e-6);
        snprintf(name, sizeof name, "softcap in place V=%d [%s]", V, ops->name);
        check_vs_ref(name, ca, c1, NV, 0, 0);
        int bounded = 1;
        for (size_t i = 0; i < NV; i++) bounded &= fabsf(c1[i]) <= S;
        CHECK(bounded, "[%s] softcap output beyond +-S", ops->name);
        float *l = fzeros(N), *mx = fzeros(N), *iz = fzeros(N), *dl = frand(N, 0.1, 1), *dz = frand(N, -0.5, 0.5);
        ops->xent_forward(l, mx, iz, c1, tg, N, V);
        for (int withcap = 0; withcap < 2; withcap++) {
            float *g1 = fcopy(c1, NV), *g2 = fcopy(c1, NV);
            ops->xent_backward_inplace(g1, mx, iz, tg, dl, dz, withcap ? S : 0.0f, N, V);
            REF->xent_backward_inplace(g2, mx, iz, tg, dl, dz, withcap ? S : 0.0f, N, V);
            snprintf(name, sizeof name, "xent1 dlogits, dlogz%s V=%d [%s vs ref]", withcap ? ", softcap" : "", V,
                     ops->name);
            check_vs_ref(name, g1, g2, NV, 1e-9, 1e-5);
            int ignored_zero = 1;
            for (int r = 0; r < N; r++)
                for (int v = 0; v < V && tg[r] < 0; v++) ignored_zero &= g1[(size_t)r * V + v] == 0.0f;
            CHECK(ignored_zero, "[%s] ignored rows must get a zero gradient", ops->name);
            free(g1), free(g2);
        }
        free(z), free(c1), free(c2), free(ca), free(l), free(mx), free(iz), free(dl), free(dz);
    }
    /* finite differences: softcap 0 with dlogz, softcap without dlogz, both */
    const int N = 5, V = 23;
    const int32_t tg[5] = {3, -1, 22, 0, 3};
    const float S = 2.5f;
    float *z = frand((size_t)N * V, -4, 4), *R = frand(N, 0.2, 1.5), *Zg = frand(N, -0.6, 0.6);
    double *zd = dcopy(z, (size_t)N * V), *Rd = dcopy(R, N), *Zd = dcopy(Zg, N), *Z0 = dalloc(N);
    for (int mode = 0; mode < 3; mode++) {
        const float cap = mode == 0 ? 0.0f : S;
        const int with_dz = mode != 1;
        double *g = dalloc((size_t)N * V);
        FD(g, zd, (size_t)N * V, d_xent_capped_loss(zd, tg, Rd, with_dz ? Zd : Z0, cap, N, V));
        FOR_BACKENDS(ops) {
            char name[80];
            float *l = fzeros(N), *mx = fzeros(N), *iz = fzeros(N), *d = fcopy(z, (size_t)N * V);
            if (cap > 0) ops->softcap_forward(d, d, (size_t)N * V, cap);
            ops->xent_forward(l, mx, iz, d, tg, N, V);
            ops->xent_backward_inplace(d, mx, iz, tg, R, with_dz ? Zg : NULL, cap, N, V);
            snprintf(name, sizeof name, "xent1 dz%s%s [%s]", with_dz ? ", z-loss" : "", cap > 0 ? ", softcap" : "",
                     ops->name);
            check_grad(name, d, g, (size_t)N * V);
            free(l), free(mx), free(iz), free(d);
        }
        free(g);
    }
    free(z), free(R), free(Zg), free(zd), free(Rd), free(Zd), free(Z0);
}

/* ---- per-channel scale ---- */

static double d_chanscale_L(const double *x, const double *s, const float *R, int N, int C) {
    double L = 0.0;
    for (int i = 0; i < N * C; i++) L += s[i % C] * x[i] * R[i];
    return L;
}

static void test_chanscale(void) {
    const int N = 7, C = 9;
    float *x = frand(N * C, -1, 1), *s = frand(C, -2, 2), *R = frand(N * C, -1, 1);
    double *xd = dcopy(x, N * C), *sd = dcopy(s, C), *gx = dalloc(N * C), *gs = dalloc(C);
    FD(gx, xd, N * C, d_chanscale_L(xd, sd, R, N, C));
    FD(gs, sd, C, d_chanscale_L(xd, sd, R, N, C));
    float *o1 = fzeros(N * C), *o2 = fzeros(N * C);
    FOR_BACKENDS(ops) {
        char name[64];
        ops->chanscale_forward(o1, x, s, N, C);
        REF->chanscale_forward(o2, x, s, N, C);
        snprintf(name, sizeof name, "chanscale fwd [%s vs ref]", ops->name);
        check_vs_ref(name, o1, o2, N * C, 0, 0);
        CHECK(o1[3 * C + 4] == s[4] * x[3 * C + 4], "[%s] chanscale forward value", ops->name);
        void (*bwd)(float *, float *, const float *, const float *, const float *, int, int) =
            ops->chanscale_backward;
        float *dx = fzeros(N * C), *ds = fzeros(C);
        bwd(dx, ds, R, x, s, N, C);
        snprintf(name, sizeof name, "chanscale dx [%s]", ops->name);
        check_grad(name, dx, gx, N * C);
        snprintf(name, sizeof name, "chanscale ds [%s]", ops->name);
        check_grad(name, ds, gs, C);
        float *a = frand(N * C, -1, 1), *a0 = fcopy(a, N * C), *b = frand(C, -1, 1), *b0 = fcopy(b, C);
        bwd(a, b, R, x, s, N, C);
        check_accum("chanscale dx", a, a0, dx, N * C);
        check_accum("chanscale ds", b, b0, ds, C);
        free(dx), free(ds), free(a), free(a0), free(b), free(b0);
    }
    free(x), free(s), free(R), free(xd), free(sd), free(gx), free(gs), free(o1), free(o2);
}

/* ---- AdamW ---- */

static void test_adamw_hand(void) {
    /* lr 0.1, b1 0.9, b2 0.999, eps 1e-8, wd 0.1; p = 1, g = 0.5 then g = -0.25.
     * t=1: m = 0.05, v = 0.00025, mhat = 0.5, vhat = 0.25,
     *      p = 1 - 0.1*(0.5/(0.5+1e-8) + 0.1*1) = 0.890000002
     * t=2: m = 0.9*0.05 - 0.1*0.25 = 0.02, v = 0.999*0.00025 + 0.001*0.0625 = 0.00031225,
     *      mhat = 0.02/0.19 = 0.105263158, vhat = 0.00031225/0.001999 = 0.156203102,
     *      sqrt(vhat) = 0.395225382, p = 0.89 - 0.1*(0.266337 + 0.089) = 0.854466264
     * v is compared at rtol 5e-5 because 1 - 0.999f = 0.00099998713 in float; p is not
     * affected (the bias correction divides the same rounding out). */
    FOR_BACKENDS(ops) {
        void (*upd)(float *, const float *, float, float *, float *, size_t, float, float, float, float, float, int) =
            ops->adamw_update;
        float p = 1.0f, m = 0.0f, v = 0.0f, g = 0.5f;
        upd(&p, &g, 1.0f, &m, &v, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 0.1f, 1);
        CHECK_CLOSE(m, 0.05, 1e-9, 1e-6);
        CHECK_CLOSE(v, 0.00025, 0, 5e-5);
        CHECK_CLOSE(p, 0.890000002, 0, 2e-7);
        g = -0.25f;
        upd(&p, &g, 1.0f, &m, &v, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 0.1f, 2);
        CHECK_CLOSE(m, 0.02, 1e-9, 1e-6);
        CHECK_CLOSE(v, 0.00031225, 0, 5e-5);
        double mhat = 0.02 / 0.19, vhat = 0.00031225 / 0.001999;
        double want = 0.890000002 - 0.1 * (mhat / (sqrt(vhat) + 1e-8) + 0.1 * 0.890000002);
        CHECK_CLOSE(p, want, 0, 1e-6);
        CHECK_CLOSE(p, 0.854466264, 0, 1e-6);
        /* no decay: a zero gradient with zero moments leaves p unchanged */
        float q = 3.0f, mq = 0.0f, vq = 0.0f, gq = 0.0f;
        upd(&q, &gq, 1.0f, &mq, &vq, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 0.0f, 1);
        CHECK(q == 3.0f, "[%s] p changed without gradient or decay: %g", ops->name, q);
    }
    const size_t n = 1003;
    float *p0 = frand(n, -1, 1), *g = frand(n, -1, 1), *m0 = frand(n, -0.1, 0.1), *v0 = frand(n, 0, 0.01);
    float *p2 = fcopy(p0, n), *m2 = fcopy(m0, n), *v2 = fcopy(v0, n);
    REF->adamw_update(p2, g, 1.0f, m2, v2, n, 3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 7);
    /* a clipping factor applied inside the update gives, bit for bit, the update of the gradient
     * scaled in place first (here from the reference's state after step 7); the gradient itself is
     * left as it was */
    const float clip = 0.3718f;
    float *g0 = fcopy(g, n), *gs = fcopy(g, n), *pb = fcopy(p2, n), *mb = fcopy(m2, n), *vb = fcopy(v2, n);
    REF->axpby(gs, clip, gs, 0.0f, gs, n);
    REF->adamw_update(pb, gs, 1.0f, mb, vb, n, 3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 8);
    FOR_BACKENDS(ops) {
        char name[64];
        float *p1 = fcopy(p0, n), *m1 = fcopy(m0, n), *v1 = fcopy(v0, n);
        ops->adamw_update(p1, g, 1.0f, m1, v1, n, 3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 7);
        snprintf(name, sizeof name, "adamw param [%s vs ref]", ops->name);
        check_vs_ref(name, p1, p2, n, 0, 1e-7);
        snprintf(name, sizeof name, "adamw m [%s vs ref]", ops->name);
        check_vs_ref(name, m1, m2, n, 0, 1e-7);
        snprintf(name, sizeof name, "adamw v [%s vs ref]", ops->name);
        check_vs_ref(name, v1, v2, n, 0, 1e-7);
        float *pa = fcopy(p2, n), *ma = fcopy(m2, n), *va = fcopy(v2, n);
        ops->adamw_update(pa, g, clip, ma, va, n, 3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 8);
        snprintf(name, sizeof name, "adamw clipped in the pass [%s]", ops->name);
        check_vs_ref(name, pa, pb, n, 0, 0);
        check_vs_ref("adamw clipped m", ma, mb, n, 0, 0);
        check_vs_ref("adamw clipped v", va, vb, n, 0, 0);
        free(p1), free(m1), free(v1), free(pa), free(ma), free(va);
    }
    check_vs_ref("adamw leaves the gradient unscaled", g, g0, n, 0, 0);
    free(p0), free(g), free(m0), free(v0), free(p2), free(m2), free(v2);
    free(g0), free(gs), free(pb), free(mb), free(vb);
}

/* ---- elementwise helpers ---- */

static void test_elementwise(void) {
    const size_t n = 1037;
    float *x = frand(n, -1, 1), *y = frand(n, -1, 1), *o1 = fzeros(n), *o2 = fzeros(n);
    REF->axpby(o2, 0.3f, x, -1.7f, y, n);
    FOR_BACKENDS(ops) {
        char name[64];
        ops->axpby(o1, 0.3f, x, -1.7f, y, n);
        snprintf(name, sizeof name, "axpby [%s vs ref]", ops->name);
        check_vs_ref(name, o1, o2, n, 0, 0);
        float *xa = fcopy(x, n);
        ops->axpby(xa, 0.3f, xa, -1.7f, y, n); /* out aliases x */
        snprintf(name, sizeof name, "axpby in place [%s vs ref]", ops->name);
        check_vs_ref(name, xa, o2, n, 0, 0);
        float *a1 = fcopy(y, n), *a2 = fcopy(y, n);
        ops->axpy(a1, 0.25f, x, n);
        REF->axpy(a2, 0.25f, x, n);
        snprintf(name, sizeof name, "axpy [%s vs ref]", ops->name);
        check_vs_ref(name, a1, a2, n, 0, 0);
        CHECK_CLOSE(a1[17], y[17] + 0.25 * x[17], 1e-7, 1e-6);
        double s1 = ops->sumsq(x, n), s2 = REF->sumsq(x, n);
        CHECK_CLOSE(s1, s2, 0, 1e-12);
        CHECK(ops->sumsq(x, 0) == 0.0 && ops->sumsq(x, 3) == REF->sumsq(x, 3), "[%s] sumsq of short arrays",
              ops->name);
        free(xa), free(a1), free(a2);
    }
    free(x), free(y), free(o1), free(o2);
}

/* x = 0 over every element asked for and none past it, on a length large enough for the cpu
 * backend to split among threads and no multiple of its chunks; n = 0 touches nothing. */
static void test_zero(void) {
    const size_t n = ((size_t)1 << 20) + 37;
    FOR_BACKENDS(ops) {
        set_thread_mode(1);
        float *z = frand(n + 1, 1, 2);
        ops->zero(z, n);
        ops->zero(z + n, 0);
        size_t bad = n;
        for (size_t i = 0; i < n && bad == n; i++)
            if (z[i] != 0.0f || signbit(z[i])) bad = i;
        CHECK(bad == n, "[%s] zero: element %zu is %g", ops->name, bad, bad < n ? z[bad] : 0.0);
        CHECK(z[n] >= 1.0f, "[%s] zero wrote past the end (or n = 0 wrote)", ops->name);
        free(z);
    }
    set_thread_mode(0);
}

/* ---- decode attention: one new position over a KV cache ---- */

static void test_attention_decode(void) {
    const int shapes[][4] = {{1, 24, 3, 0}, {13, 24, 3, 0}, {70, 128, 2, 0}, {150, 96, 4, 0},
                             {13, 24, 3, 2}, {70, 128, 2, 3}}; /* npos, C, NH, softcap */
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int npos = shapes[s][0], C = shapes[s][1], NH = shapes[s][2];
        const float cap = (float)shapes[s][3];
        float *q = frand(C, -2, 2), *kc = frand((size_t)npos * C, -2, 2), *vc = frand((size_t)npos * C, -2, 2);
        float *o2 = fzeros(C), *sc2 = fzeros(npos);
        REF->attention_decode(o2, sc2, q, kc, vc, npos, C, NH, cap);
        /* the reference's decode equals the last row of its full attention on the same keys */
        size_t nq = (size_t)npos * 3 * C, na = (size_t)NH * npos * npos;
        float *qkv = fzeros(nq), *full = fzeros((size_t)npos * C), *att = fzeros(na);
        for (int t = 0; t < npos; t++) {
            memcpy(qkv + (size_t)t * 3 * C, t == npos - 1 ? q : kc + (size_t)t * C, (size_t)C * sizeof(float));
            memcpy(qkv + (size_t)t * 3 * C + C, kc + (size_t)t * C, (size_t)C * sizeof(float));
            memcpy(qkv + (size_t)t * 3 * C + 2 * C, vc + (size_t)t * C, (size_t)C * sizeof(float));
        }
        REF->attention_forward(full, att, NULL, qkv, 1, npos, C, NH, cap);
        char name[96];
        snprintf(name, sizeof name, "attn decode npos%d C%d NH%d cap %g [ref vs its forward]", npos, C, NH,
                 (double)cap);
        check_vs_ref(name, o2, full + (size_t)(npos - 1) * C, C, 5e-7 * sqrt((double)npos + C / NH), 1e-5);
        free(qkv), free(full), free(att);
        FOR_BACKENDS(ops) {
            float *o1 = frand(C, 5, 6), *sc1 = frand(npos, 5, 6); /* garbage that must be overwritten */
            ops->attention_decode(o1, sc1, q, kc, vc, npos, C, NH, cap);
            snprintf(name, sizeof name, "attn decode npos%d C%d NH%d cap %g [%s vs ref]", npos, C, NH, (double)cap,
                     ops->name);
            check_vs_ref(name, o1, o2, C, 5e-7 * sqrt((double)npos + C / NH), 1e-5);
            free(o1), free(sc1);
        }
        free(q), free(kc), free(vc), free(o2), free(sc2);
    }
}

/* ---- the kernel table ---- */

/* Every backend has every op: a field that a table's designated initializer leaves out is NULL,
 * which the table's type cannot catch at compile time. The ops are the fields after `name`, all
 * function pointers. */
typedef void (*AnyFn)(void);
#define FIRST_OP offsetof(LnlKernelOps, matmul_forward)
_Static_assert((sizeof(LnlKernelOps) - FIRST_OP) % sizeof(AnyFn) == 0, "LnlKernelOps: name, then function pointers");
static void test_tables_complete(void) {
    const size_t nops = (sizeof(LnlKernelOps) - FIRST_OP) / sizeof(AnyFn);
    int nback = 0, has_ref = 0, has_cpu = 0;
    FOR_BACKENDS(ops) {
        nback++;
        has_ref |= ops == REF;
        has_cpu |= ops == &lnl_kernels_cpu_ops;
        CHECK(ops->name && ops->name[0], "backend %d has no name", nback);
        if (!ops->name) continue;
        CHECK(lnl_kernels_find(ops->name) == ops, "lnl_kernels_find(\"%s\") does not find it", ops->name);
        size_t missing = 0;
        for (size_t k = 0; k < nops; k++) {
            AnyFn f;
            memcpy(&f, (const unsigned char *)ops + FIRST_OP + k * sizeof f, sizeof f);
            if (!f) {
                CHECK(f, "backend %s: op %zu of LnlKernelOps (0 = matmul_forward) is NULL", ops->name, k);
                missing++;
            }
        }
        printf("#   backend %s: %zu of %zu ops set\n", ops->name, nops - missing, nops);
    }
    CHECK(has_ref && has_cpu && nback >= 2, "lnl_kernels_backends must list ref and cpu");
    CHECK(!lnl_kernels_find("gpu") && !lnl_kernels_find("") && !lnl_kernels_find("CPU"), "unknown names are found");
}

/* The public lnl_<op> names call the backend in use: cpu from the start, then whichever
 * lnl_kernels_use or LNLAB_KERNELS names. GELU tells backends apart: the cpu version's exponential
 * is not libm's, so some of its outputs differ from the reference's in the last bits. */
static void test_dispatch(void) {
    const LnlKernelOps *cpu = &lnl_kernels_cpu_ops;
    CHECK(lnl_kernels_active == cpu, "the backend in use at start is %s, not cpu", lnl_kernels_active->name);
    const size_t n = 4099;
    float *x = frand(n, -6, 6), *oc = fzeros(n), *orf = fzeros(n), *o = fzeros(n), *od = fzeros(n);
    cpu->gelu_forward(oc, x, n);
    REF->gelu_forward(orf, x, n);
    CHECK(memcmp(oc, orf, n * sizeof(float)) != 0, "cpu and ref GELU give the same bits: the test cannot tell them");
    FOR_BACKENDS(ops) {
        lnl_kernels_use(ops);
        CHECK(lnl_kernels_active == ops, "lnl_kernels_use(%s) did not take", ops->name);
        lnl_gelu_forward(o, x, n);
        ops->gelu_forward(od, x, n);
        CHECK(memcmp(o, od, n * sizeof(float)) == 0, "lnl_gelu_forward after lnl_kernels_use(%s) is not %s's",
              ops->name, ops->name);
    }
    lnl_kernels_use(REF);
    lnl_gelu_forward(o, x, n);
    CHECK(memcmp(o, orf, n * sizeof(float)) == 0, "lnl_gelu_forward does not give the reference's bits");
    lnl_kernels_use(cpu);
    lnl_gelu_forward(o, x, n);
    CHECK(memcmp(o, oc, n * sizeof(float)) == 0, "lnl_gelu_forward does not give the cpu backend's bits");

    /* LNLAB_KERNELS: a backend's name, or unset / empty for cpu; anything else fails and leaves
     * the backend in use as it was */
    const struct {
        const char *value;
        const LnlKernelOps *want;
    } good[] = {{"ref", REF}, {"cpu", cpu}, {"", cpu}, {NULL, cpu}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        lnl_kernels_use(good[i].want == REF ? cpu : REF);
        if (good[i].value) setenv("LNLAB_KERNELS", good[i].value, 1);
        else unsetenv("LNLAB_KERNELS");
        int rc = lnl_kernels_use_env();
        CHECK(rc == 0 && lnl_kernels_active == good[i].want, "LNLAB_KERNELS=%s: rc %d, backend %s, want %s",
              good[i].value ? good[i].value : "(unset)", rc, lnl_kernels_active->name, good[i].want->name);
    }
    const char *bad[] = {"gpu", "REF", "ref ", "cpu,ref"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lnl_kernels_use(REF);
        setenv("LNLAB_KERNELS", bad[i], 1);
        printf("# expect one error line for LNLAB_KERNELS=%s:\n", bad[i]);
        fflush(stdout);
        int rc = lnl_kernels_use_env();
        CHECK(rc == -1 && lnl_kernels_active == REF, "LNLAB_KERNELS=%s: rc %d, backend %s", bad[i], rc,
              lnl_kernels_active->name);
    }
    unsetenv("LNLAB_KERNELS");
    lnl_kernels_use(cpu);
    free(x), free(oc), free(orf), free(o), free(od);
}

int main(void) {
    RUN_TEST(test_dispatch); /* first: it checks the backend in use at start */
    RUN_TEST(test_tables_complete);
    RUN_TEST(test_matmul_vs_ref);
    RUN_TEST(test_matmul_small_threads);
    RUN_TEST(test_matmul_grad);
    RUN_TEST(test_matmul_bf16);
    RUN_TEST(test_norm_vs_ref);
    RUN_TEST(test_norm_grad);
    RUN_TEST(test_dyn_norm_grad);
    RUN_TEST(test_attention_vs_ref);
    RUN_TEST(test_attention_mask_rows);
    RUN_TEST(test_attention_grad);
    RUN_TEST(test_attention_decode);
    RUN_TEST(test_gelu);
    RUN_TEST(test_embed);
    RUN_TEST(test_softmax_xent_vs_ref);
    RUN_TEST(test_softmax_xent_grad);
    RUN_TEST(test_xent_inplace);
    RUN_TEST(test_xent_zloss_softcap);
    RUN_TEST(test_chanscale);
    RUN_TEST(test_adamw_hand);
    RUN_TEST(test_elementwise);
    RUN_TEST(test_zero);
    TEST_MAIN_END();
}
