/* Cost of the training diagnostics (src/diag/monitor.h) against a training step, on one config:
 * each repetition times one step (forward, backward, grad norm, monitor check, AdamW) and,
 * separately, the extra work of a diagnostics step (per-group gradient norms and parameter copy
 * before the update, update ratios and RMS after it, the per-layer record written to /dev/null),
 * and a forward with and without recording the attention-logit maxima (LnlModel.diag_forward, on
 * in a diagnostics step's forward). Medians of interleaved repetitions, so a loaded machine slows
 * both alike. Prints the overhead at --diag-every K as diag / (K * step).
 *
 * usage: bench_diag [L C H T B V K REPS]   (default 12 256 8 256 8 257 10 7) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag/monitor.h"
#include "model/model.h"
#include "train/optim.h"

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *x, int n) {
    qsort(x, (size_t)n, sizeof(double), cmp_d);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

int main(int argc, char **argv) {
    int a[8] = {12, 256, 8, 256, 8, 257, 10, 7};
    for (int i = 1; i < argc && i <= 8; i++) a[i - 1] = atoi(argv[i]);
    const int L = a[0], C = a[1], H = a[2], T = a[3], B = a[4], V = a[5], K = a[6], R = a[7] > 0 ? a[7] : 1;
    LnlConfig *c = lnl_malloc(sizeof *c);
    lnl_config_default(c);
    c->n_layer = L, c->n_embd = C, c->n_head = H, c->n_positions = T, c->vocab_size = V;
    LnlErr e;
    if (lnl_config_preset(c, "pre", &e)) lnl_die(2, "%s", e.msg);
    LnlModel m;
    if (lnl_model_create(&m, c, &e) || lnl_model_alloc_acts(&m, B, T, &e)) lnl_die(2, "%s", e.msg);
    free(c);
    lnl_model_init_weights(&m, 1);
    int32_t *in = lnl_malloc(sizeof(int32_t) * (size_t)B * T), *tg = lnl_malloc(sizeof(int32_t) * (size_t)B * T);
    LnlRng rng;
    lnl_rng_seed(&rng, 2);
    for (int i = 0; i < B * T; i++) in[i] = (int32_t)lnl_rng_below(&rng, (uint64_t)V), tg[i] = (int32_t)lnl_rng_below(&rng, (uint64_t)V);
    LnlOptState opt;
    lnl_opt_init(&opt, &m);
    LnlAdamW h = {0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    LnlMonitorOpts mo;
    lnl_monitor_opts_default(&mo);
    mo.every = 1;
    LnlMonitor mon;
    lnl_monitor_init(&mon, &m, &mo);
    FILE *devnull = fopen("/dev/null", "w");
    if (!devnull) lnl_die(1, "/dev/null: cannot open");
    double *ts = lnl_calloc((size_t)R, sizeof(double)), *td = lnl_calloc((size_t)R, sizeof(double));
    for (int r = -1; r < R; r++) { /* r = -1 warms up */
        double t0 = lnl_now();
        m.diag_forward = 1;
        lnl_model_zero_grad(&m);
        float loss = lnl_model_forward(&m, in, tg, B, T);
        lnl_model_backward(&m);
        double gn = lnl_model_grad_norm(&m);
        char cause[128];
        lnl_monitor_check(&mon, loss, gn, cause, sizeof cause);
        double t1 = lnl_now();
        lnl_monitor_pre_update(&mon, &m);
        double t2 = lnl_now();
        lnl_opt_step_norm(&opt, &m, &h, 1e-4f, gn);
        double t3 = lnl_now();
        lnl_monitor_post_update(&mon, &m);
        lnl_monitor_write_diag(&mon, &m, r + 2, gn, devnull);
        double t4 = lnl_now();
        if (r >= 0) {
            ts[r] = (t1 - t0) + (t3 - t2);
            td[r] = (t2 - t1) + (t4 - t3);
        }
    }
    double *f0 = lnl_calloc((size_t)R, sizeof(double)), *f1 = lnl_calloc((size_t)R, sizeof(double));
    for (int r = -1; r < R; r++)
        for (int on = 0; on < 2; on++) {
            m.diag_forward = on;
            double t0 = lnl_now();
            lnl_model_forward(&m, in, tg, B, T);
            if (r >= 0) (on ? f1 : f0)[r] = lnl_now() - t0;
        }
    double fwd0 = median(f0, R), fwd1 = median(f1, R);
    double step = median(ts, R), diag = median(td, R);
    printf("config: preset pre, L %d, C %d, heads %d, T %d, B %d, V %d, %zu params\n", L, C, H, T, B, V, m.num_params);
    printf("step %.1f ms (median of %d), diagnostics %.2f ms per record: overhead at --diag-every %d = %.2f%%\n",
           step * 1e3, R, diag * 1e3, K, 100.0 * diag / (K * step));
    printf("forward %.2f ms, recording the attention-logit maxima %.2f ms (%+.2f%%; in the step above)\n", fwd0 * 1e3,
           fwd1 * 1e3, 100.0 * (fwd1 - fwd0) / fwd0);
    fclose(devnull);
    free(ts);
    free(td);
    free(f0);
    free(f1);
    free(in);
    free(tg);
    lnl_monitor_free(&mon);
    lnl_opt_free(&opt);
    lnl_model_free(&m);
    return 0;
}
