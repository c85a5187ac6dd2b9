/* Each fast kernel alone at the shapes of one training step of the benchmark models (tiny:
 * B 8, T 256, C 384, 6 heads; gpt2: B 4, T 256, C 768, 12 heads; V 50257; and the study's
 * shapes s64: B 16, T 64, C 64, 4 heads; s128: B 16, T 128, C 128, 4 heads; V 257), at the current
 * thread count (OMP_NUM_THREADS). Prints wall milliseconds per call (best of a few) and, for the
 * products, GFLOP/s: where a step's time goes outside the whole-model figures of `lnlab bench`.
 *
 *   build/bench/bench_kernels [tiny|gpt2|s64|s128 ...]     (default: tiny gpt2) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "kernels/kernels.h"

static float *frand(size_t n, float scale) {
    float *p = lnl_malloc(n * sizeof(float));
    uint64_t s = 0x9e3779b97f4a7c15ull ^ n;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = scale * ((float)(s >> 40) * (1.0f / 16777216.0f) - 0.5f);
    }
    return p;
}

/* Process CPU seconds: on a machine shared with other work, the CPU time of a one-thread run
 * still tells what the kernel costs (LNLAB_BENCH_CPU=1 reports it instead of wall time). */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double (*clock_fn)(void) = lnl_now;

/* best of at least 3 runs and of as many more as fit in 0.2 s: a fast kernel's best is then
 * stable to a few percent on a busy machine */
#define TIME(label, flop, stmt)                                                                          \
    do {                                                                                                 \
        double best_ = 1e30, spent_ = 0;                                                                 \
        for (int r_ = 0; r_ < 3 || (spent_ < 0.2 && r_ < 1000); r_++) {                                  \
            double t0_ = clock_fn();                                                                      \
            stmt;                                                                                        \
            double t_ = clock_fn() - t0_;                                                                 \
            spent_ += t_;                                                                                \
            if (t_ < best_) best_ = t_;                                                                  \
        }                                                                                                \
        if ((flop) > 0)                                                                                  \
            printf("  %-34s %9.3f ms  %7.1f GFLOP/s\n", label, best_ * 1e3, (double)(flop) / best_ / 1e9); \
        else                                                                                             \
            printf("  %-34s %9.3f ms\n", label, best_ * 1e3);                                           \
        total += best_;                                                                                  \
    } while (0)

static void bench_model(const char *name, int B, int T, int C, int NH, int V) {
    const int N = B * T;
    const size_t NC = (size_t)N * C;
    double total = 0;
    printf("%s: B %d, T %d, C %d, heads %d, V %d, %d threads (%s)\n", name, B, T, C, NH, V, lnl_kernels_threads(),
           lnl_kernels_blas_name());
    float *x = frand(4 * NC, 2), *w = frand((size_t)4 * C * C, 0.1f), *b = frand((size_t)4 * C, 0.1f);
    float *y = frand((size_t)N * 4 * C, 1), *dy = frand((size_t)N * 4 * C, 1), *dx = frand((size_t)N * 4 * C, 1);
    float *dw = frand((size_t)4 * C * C, 1), *db = frand((size_t)4 * C, 1);
    const int oc[4] = {3 * C, C, 4 * C, C}, ic[4] = {C, C, C, 4 * C};
    const char *mm[4] = {"qkv", "attn proj", "fc", "mlp proj"};
    for (int k = 0; k < 4; k++) {
        char lab[64];
        double f = 2.0 * N * ic[k] * oc[k];
        snprintf(lab, sizeof lab, "matmul fwd %s %dx%dx%d", mm[k], N, ic[k], oc[k]);
        TIME(lab, f, lnl_matmul_forward(y, x, w, b, N, ic[k], oc[k]));
        snprintf(lab, sizeof lab, "matmul bwd %s", mm[k]);
        TIME(lab, 2 * f, lnl_matmul_backward(dx, dw, db, dy, y, w, N, ic[k], oc[k]));
    }
    {
        float *qkv = frand(3 * NC, 2), *att = lnl_malloc((size_t)B * NH * T * T * sizeof(float));
        float *datt = lnl_malloc((size_t)B * NH * T * T * sizeof(float)), *dqkv = frand(3 * NC, 1);
        double f = 4.0 * B * C * (double)T * (T + 1) / 2.0;
        TIME("attention fwd", f, lnl_attention_forward(y, att, NULL, qkv, B, T, C, NH, 0.0f));
        TIME("attention bwd", 2 * f, lnl_attention_backward(dqkv, datt, dy, qkv, att, B, T, C, NH, 0.0f));
        free(qkv), free(att), free(datt), free(dqkv);
    }
    {
        float *mean = lnl_malloc((size_t)N * sizeof(float)), *rstd = lnl_malloc((size_t)N * sizeof(float));
        TIME("layernorm fwd", 0, lnl_norm_forward(y, mean, rstd, x, w, b, N, C, 1, 1, LNL_NORM_LAYERNORM, 1e-5f, 1.0f));
        TIME("layernorm bwd", 0, lnl_norm_backward(dx, dw, db, dy, x, w, mean, rstd, N, C, 1, 1, LNL_NORM_LAYERNORM, 1.0f));
        free(mean), free(rstd);
    }
    TIME("gelu fwd (N x 4C)", 0, lnl_gelu_forward(dx, y, (size_t)N * 4 * C));
    TIME("gelu bwd (N x 4C)", 0, lnl_gelu_backward(dx, y, dy, (size_t)N * 4 * C));
    TIME("residual axpy (N x C)", 0, lnl_axpy(dx, 0.5f, x, NC));
    {
        float *wte = frand((size_t)V * C, 0.1f), *lg = lnl_malloc((size_t)N * V * sizeof(float));
        float *dwte = frand((size_t)V * C, 0.1f), *loss = lnl_malloc((size_t)N * sizeof(float));
        float *mx = lnl_malloc((size_t)N * sizeof(float)), *iz = lnl_malloc((size_t)N * sizeof(float));
        float *dl = lnl_malloc((size_t)N * sizeof(float));
        int32_t *tg = lnl_malloc((size_t)N * sizeof(int32_t));
        for (int i = 0; i < N; i++) tg[i] = (int32_t)((i * 7919) % V), dl[i] = 1.0f / N;
        double f = 2.0 * N * C * (double)V;
        TIME("LM head fwd (N x V)", f, lnl_matmul_forward(lg, x, wte, NULL, N, C, V));
        TIME("cross-entropy fwd", 0, lnl_xent_forward(loss, mx, iz, lg, tg, N, V));
        double best = 1e30;
        for (int r = 0; r < 5; r++) { /* in place: new logits each time */
            lnl_matmul_forward(lg, x, wte, NULL, N, C, V);
            double t0 = clock_fn();
            lnl_xent_backward_inplace(lg, mx, iz, tg, dl, NULL, 0.0f, N, V);
            double t = clock_fn() - t0;
            if (t < best) best = t;
        }
        printf("  %-34s %9.3f ms\n", "cross-entropy bwd (in place)", best * 1e3);
        total += best;
        TIME("LM head bwd (dx, dwte)", 2 * f, lnl_matmul_backward(dx, dwte, NULL, lg, x, wte, N, C, V));
        free(wte), free(lg), free(dwte), free(loss), free(mx), free(iz), free(dl), free(tg);
    }
    {
        size_t P = (size_t)12 * C * C + (size_t)V * C;
        float *p = frand(P, 0.1f), *g = frand(P, 0.1f), *m1 = frand(P, 0.01f), *v1 = frand(P, 0.0f);
        for (size_t i = 0; i < P; i++) v1[i] = m1[i] * m1[i];
        TIME("AdamW (one layer + wte)", 0, lnl_adamw_update(p, g, 1.0f, m1, v1, P, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 3));
        free(p), free(g), free(m1), free(v1);
    }
    printf("  %-34s %9.2f ms (one of each above, not a step)\n\n", "sum", total * 1e3);
    free(x), free(w), free(b), free(y), free(dy), free(dx), free(dw), free(db);
}

int main(int argc, char **argv) {
    lnl_kernels_blas_reexec(argv);
    lnl_kernels_set_threads(0);
    if (getenv("LNLAB_BENCH_CPU") && strcmp(getenv("LNLAB_BENCH_CPU"), "1") == 0) clock_fn = cpu_now;
    int any = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "tiny") == 0) bench_model("tiny", 8, 256, 384, 6, 50257), any = 1;
        else if (strcmp(argv[i], "gpt2") == 0) bench_model("gpt2", 4, 256, 768, 12, 50257), any = 1;
        else if (strcmp(argv[i], "s64") == 0) bench_model("s64", 16, 64, 64, 4, 257), any = 1;
        else if (strcmp(argv[i], "s128") == 0) bench_model("s128", 16, 128, 128, 4, 257), any = 1;
        else lnl_die(2, "bench_kernels: unknown model '%s' (tiny, gpt2, s64, s128)", argv[i]);
    }
    if (!any) {
        bench_model("tiny", 8, 256, 384, 6, 50257);
        bench_model("gpt2", 4, 256, 768, 12, 50257);
    }
    return 0;
}
