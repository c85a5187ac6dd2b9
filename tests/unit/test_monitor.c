/* The training monitor (src/diag/monitor.h) against direct computations: z-scores against the
 * mean and std of the last W values, step classification (NaN/Inf, loss threshold, spikes and
 * their exclusion from the window), the diagnostics record's figures (branch outputs recovered
 * from the residual identity x' = x + dt f, per-layer gradient norms, update-to-weight ratios and
 * update RMS, attention-logit maxima from the saved q and k, output-logit figures from the
 * logits), and the decision state's pack/unpack. */
#include "harness.h"

#include <cjson/cJSON.h>

#include "common/perturb.h"
#include "diag/monitor.h"
#include "diag/stats.h"
#include "model/model.h"
#include "train/optim.h"

static LnlModel tiny_model(const char *preset, float dt) {
    LnlModel m;
    LnlConfig *c = malloc(sizeof *c);
    lnl_config_default(c);
    c->n_layer = 3, c->n_head = 2, c->n_embd = 8, c->n_positions = 6, c->vocab_size = 11, c->init_std = 0.3f;
    LnlErr e;
    CHECK(lnl_config_preset(c, preset, &e) == 0, "%s", e.msg);
    lnl_config_set_dt(c, dt);
    CHECK(lnl_model_create(&m, c, &e) == 0, "%s", e.msg);
    free(c);
    lnl_model_init_weights(&m, 5);
    lnl_test_perturb(&m, 6);
    CHECK(lnl_model_alloc_acts(&m, 2, 5, &e) == 0, "%s", e.msg);
    return m;
}

static void test_window_z(void) {
    const int W = 5;
    double buf[5];
    LnlWindow w = {buf, W, 0, 0};
    double xs[12] = {1, 3, 2, 7, 4, 9, 0.5, 2, 2, 6, 1, 8};
    for (int i = 0; i < 12; i++) {
        double z = lnl_window_z(&w, xs[i]);
        if (i < W) CHECK(isnan(z), "z before the window is full: %g at %d", z, i);
        else {
            double mean = 0, var = 0;
            for (int j = i - W; j < i; j++) mean += xs[j];
            mean /= W;
            for (int j = i - W; j < i; j++) var += (xs[j] - mean) * (xs[j] - mean);
            CHECK_CLOSE(z, (xs[i] - mean) / sqrt(var / W), 1e-12, 1e-12);
        }
        lnl_window_push(&w, xs[i]);
    }
    double cbuf[2] = {0};
    LnlWindow c = {cbuf, 2, 0, 0};
    lnl_window_push(&c, 3);
    lnl_window_push(&c, 3);
    CHECK(lnl_window_z(&c, 3) == 0 && lnl_window_z(&c, 4) == INFINITY, "constant window");
}

static void test_check(void) {
    LnlModel m = tiny_model("pre", 1.0f);
    LnlMonitorOpts o;
    lnl_monitor_opts_default(&o);
    o.window = 4;
    o.skip_z = 3.0;
    o.diverge_loss = 2.0;
    LnlMonitor mon;
    lnl_monitor_init(&mon, &m, &o);
    char cause[128];
    double loss[] = {5.0, 4.9, 5.1, 4.8, 5.0};
    for (int i = 0; i < 5; i++)
        CHECK(lnl_monitor_check(&mon, loss[i], 1.0 + 0.1 * (i % 2), cause, sizeof cause) == LNL_STEP_UPDATE,
              "step %d not applied", i);
    /* a loss spike (z far above 3, below the divergence threshold): skipped, counted */
    CHECK(lnl_monitor_check(&mon, 6.5, 1.05, cause, sizeof cause) == LNL_STEP_SKIP, "spike applied");
    CHECK(mon.skipped == 1 && mon.loss_z > 3, "skipped %ld, z %g", mon.skipped, mon.loss_z);
    char f[128];
    lnl_monitor_step_fields(&mon, f, sizeof f);
    CHECK(strstr(f, "\"skipped\": true") != NULL, "fields %s", f);
    /* the spike did not enter the window: the window is still {4.9, 5.1, 4.8, 5.0} */
    double z = 0;
    {
        double w[4] = {4.9, 5.1, 4.8, 5.0}, mean = 4.95, var = 0;
        for (int i = 0; i < 4; i++) var += (w[i] - mean) * (w[i] - mean);
        z = (5.0 - mean) / sqrt(var / 4);
    }
    CHECK(lnl_monitor_check(&mon, 5.0, 1.0, cause, sizeof cause) == LNL_STEP_UPDATE, "normal step skipped");
    CHECK_CLOSE(mon.loss_z, z, 1e-12, 1e-9);
    lnl_monitor_step_fields(&mon, f, sizeof f);
    CHECK(strstr(f, "skipped") == NULL, "fields %s", f);
    /* a grad-norm spike alone is skipped too */
    CHECK(lnl_monitor_check(&mon, 5.0, 50.0, cause, sizeof cause) == LNL_STEP_SKIP && mon.skipped == 2, "grad spike");
    /* loss above min (4.8) + 2: diverged */
    CHECK(lnl_monitor_check(&mon, 6.9, 1.0, cause, sizeof cause) == LNL_STEP_DIVERGED, "6.9 > 4.8 + 2 went on");
    CHECK(strstr(cause, "exceeds its running minimum 4.8000") != NULL, "cause '%s'", cause);
    CHECK(lnl_monitor_check(&mon, NAN, 1.0, cause, sizeof cause) == LNL_STEP_DIVERGED && !strcmp(cause, "loss is NaN"),
          "cause '%s'", cause);
    CHECK(lnl_monitor_check(&mon, 5.0, INFINITY, cause, sizeof cause) == LNL_STEP_DIVERGED &&
              !strcmp(cause, "gradient norm is infinite"),
          "cause '%s'", cause);
    CHECK(lnl_monitor_due(&mon, 7), "a diverged step gets a record");
    CHECK_CLOSE(mon.min_loss, 4.8, 0, 0);
    lnl_monitor_free(&mon);
    /* defaults: no skipping, no threshold */
    lnl_monitor_opts_default(&o);
    o.window = 2;
    lnl_monitor_init(&mon, &m, &o);
    for (int i = 0; i < 4; i++) lnl_monitor_check(&mon, 1.0 + 0.01 * i, 1.0, cause, sizeof cause);
    CHECK(lnl_monitor_check(&mon, 1000.0, 1e6, cause, sizeof cause) == LNL_STEP_UPDATE, "defaults acted");
    CHECK(lnl_monitor_due(&mon, 10) && !lnl_monitor_due(&mon, 11), "every 10");
    lnl_monitor_free(&mon);
    lnl_model_free(&m);
}

static double arr_at(const cJSON *d, const char *key, int i) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(d, key);
    const cJSON *x = cJSON_GetArrayItem(a, i);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

/* Block l's largest attention logit, q . k / sqrt(hs) over b, h and t2 <= t, from the q and k the
 * attention saw (after any qkv_norm), in double. */
static double naive_attn_max(const LnlModel *m, int l) {
    const LnlSubActs *s = &m->sub[2 * l];
    const float *qkv = s->qkvn ? s->qkvn : s->qkv;
    const int B = m->B, T = m->T, C = m->cfg.n_embd, NH = m->cfg.n_head, hs = C / NH;
    double mx = -INFINITY;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++)
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *q = qkv + ((size_t)b * T + t) * 3 * C + h * hs;
                    const float *k = qkv + ((size_t)b * T + t2) * 3 * C + C + h * hs;
                    double d = 0;
                    for (int i = 0; i < hs; i++) d += (double)q[i] * k[i];
                    d /= sqrt((double)hs);
                    if (d > mx) mx = d;
                }
    return mx;
}

static double num_at(const cJSON *d, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(d, key);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

/* The diagnostics record of the monitor's last step, parsed. */
static cJSON *record_of(const LnlMonitor *mon, const LnlModel *m, double gn) {
    FILE *f = tmpfile();
    lnl_monitor_write_diag(mon, m, 1, gn, f);
    long len = ftell(f);
    rewind(f);
    char *text = calloc((size_t)len + 1, 1);
    CHECK(fread(text, 1, (size_t)len, f) == (size_t)len, "read back");
    fclose(f);
    CHECK(len > 0 && text[len - 1] == '\n' && strchr(text, '\n') == text + len - 1, "one line");
    cJSON *j = cJSON_Parse(text);
    CHECK(j != NULL, "not JSON: %s", text);
    free(text);
    return j;
}

/* One training step with a diagnostics record, every figure recomputed from the model. Numbers
 * in the record have 7 significant digits. */
static void check_record(const char *preset, float dt) {
    LnlModel m = tiny_model(preset, dt);
    const int L = m.cfg.n_layer, C = m.cfg.n_embd, N = m.B * m.T;
    const size_t n = (size_t)N * C;
    int32_t in[10], tg[10];
    LnlRng r;
    lnl_rng_seed(&r, 3);
    for (int i = 0; i < N; i++) in[i] = (int32_t)lnl_rng_below(&r, 11), tg[i] = (int32_t)lnl_rng_below(&r, 11);
    lnl_model_zero_grad(&m);
    m.diag_forward = 1;
    float loss = lnl_model_forward(&m, in, tg, m.B, m.T);
    const int V = m.cfg.vocab_size;
    double zmax = -INFINITY, lzsum = 0; /* the output-logit figures, from the logits before backward */
    for (int i = 0; i < N; i++) {
        const float *z = m.logits + (size_t)i * V;
        double mx = -INFINITY, se = 0;
        for (int v = 0; v < V; v++) mx = z[v] > mx ? z[v] : mx;
        for (int v = 0; v < V; v++) se += exp((double)z[v] - mx);
        zmax = mx > zmax ? mx : zmax;
        lzsum += mx + log(se);
    }
    lnl_model_backward(&m);
    LnlMonitorOpts o;
    lnl_monitor_opts_default(&o);
    o.every = 1;
    LnlMonitor mon;
    lnl_monitor_init(&mon, &m, &o);
    double gn = lnl_model_grad_norm(&m);
    char cause[128];
    CHECK(lnl_monitor_check(&mon, loss, gn, cause, sizeof cause) == LNL_STEP_UPDATE, "step");
    CHECK(lnl_monitor_due(&mon, 1), "not due");
    /* direct figures before the update */
    double *gl = calloc((size_t)L + 1, sizeof(double)), *w0 = calloc((size_t)L + 1, sizeof(double));
    float *p0 = malloc(m.num_alloc * sizeof(float));
    memcpy(p0, m.params_mem, m.num_alloc * sizeof(float));
    for (int i = 0; i < m.nviews; i++) {
        const LnlTensorView *v = &m.views[i];
        for (size_t k = 0; k < v->numel; k++) {
            gl[v->layer + 1] += (double)m.grads_mem[v->offset + k] * m.grads_mem[v->offset + k];
            w0[v->layer + 1] += (double)p0[v->offset + k] * p0[v->offset + k];
        }
    }
    double *glm = calloc((size_t)L, sizeof(double)); /* before the optimizer clips the gradients */
    for (int l = 0; l < L; l++) glm[l] = lnl_model_layer_grad_norm(&m, l);
    lnl_monitor_pre_update(&mon, &m);
    LnlOptState opt;
    lnl_opt_init(&opt, &m);
    LnlAdamW h = {0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    lnl_opt_step_norm(&opt, &m, &h, 1e-2f, gn);
    lnl_monitor_post_update(&mon, &m);
    cJSON *j = record_of(&mon, &m, gn);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "diag");
    CHECK(cJSON_GetObjectItemCaseSensitive(j, "step")->valueint == 1, "step");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "hidden_mean_abs")) == L + 1 &&
              cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "mlp_var_data")) == L &&
              cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "update_ratio")) == L &&
              cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "update_rms")) == L &&
              cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "attn_logit_max")) == L,
          "array lengths");
    const double rt = 2e-6;
    for (int l = 0; l <= L; l++) {
        LnlHiddenStats s = lnl_hidden_stats(m.stream[2 * l], N, C);
        CHECK_CLOSE(arr_at(d, "hidden_mean_abs", l), s.mean_abs, 0, rt);
        CHECK_CLOSE(arr_at(d, "hidden_var", l), s.var_entry, 0, rt);
        CHECK_CLOSE(arr_at(d, "hidden_var_data", l), s.var_data, 0, rt);
        CHECK_CLOSE(arr_at(d, "dx_norm", l), m.dx_norm[l], 0, rt);
    }
    /* without post-norm, skips or gates, stream[k+1] = stream[k] + dt f: the branch output is
     * (stream[k+1] - stream[k]) / dt, whatever norms sit inside the branch */
    float *fk = malloc(n * sizeof(float));
    static const char *keys[2][3] = {{"attn_mean_abs", "attn_var", "attn_var_data"},
                                     {"mlp_mean_abs", "mlp_var", "mlp_var_data"}};
    for (int k = 0; k < 2 * L; k++) {
        for (size_t i = 0; i < n; i++) fk[i] = (m.stream[k + 1][i] - m.stream[k][i]) / dt;
        LnlHiddenStats s = lnl_hidden_stats(fk, N, C);
        CHECK_CLOSE(arr_at(d, keys[k % 2][0], k / 2), s.mean_abs, 1e-6, 1e-4);
        CHECK_CLOSE(arr_at(d, keys[k % 2][1], k / 2), s.var_entry, 1e-6, 1e-4);
        CHECK_CLOSE(arr_at(d, keys[k % 2][2], k / 2), s.var_data, 1e-6, 1e-4);
    }
    /* gradient norms per block and of the rest; update ratios from the parameters themselves */
    double tot = gl[0];
    for (int l = 1; l <= L; l++) {
        CHECK_CLOSE(arr_at(d, "grad_norm", l - 1), sqrt(gl[l]), 0, rt);
        CHECK_CLOSE(arr_at(d, "grad_norm", l - 1), glm[l - 1], 0, rt);
        tot += gl[l];
    }
    CHECK_CLOSE(cJSON_GetObjectItemCaseSensitive(d, "embed_grad_norm")->valuedouble, sqrt(gl[0]), 0, rt);
    CHECK_CLOSE(cJSON_GetObjectItemCaseSensitive(d, "global_grad_norm")->valuedouble, sqrt(tot), 0, rt);
    double *du = calloc((size_t)L + 1, sizeof(double)), *cnt = calloc((size_t)L + 1, sizeof(double));
    for (int i = 0; i < m.nviews; i++) {
        const LnlTensorView *v = &m.views[i];
        cnt[v->layer + 1] += (double)v->numel;
        for (size_t k = 0; k < v->numel; k++) {
            double dd = (double)m.params_mem[v->offset + k] - p0[v->offset + k];
            du[v->layer + 1] += dd * dd;
        }
    }
    for (int l = 1; l <= L; l++) {
        double want = sqrt(du[l] / w0[l]);
        CHECK(want > 1e-4, "layer %d barely moved: %g", l, want);
        CHECK_CLOSE(arr_at(d, "update_ratio", l - 1), want, 0, 1e-5);
        CHECK_CLOSE(arr_at(d, "update_rms", l - 1), sqrt(du[l] / cnt[l]), 0, 1e-5);
    }
    CHECK_CLOSE(cJSON_GetObjectItemCaseSensitive(d, "embed_update_ratio")->valuedouble, sqrt(du[0] / w0[0]), 0, 1e-5);
    CHECK_CLOSE(num_at(d, "embed_update_rms"), sqrt(du[0] / cnt[0]), 0, 1e-5);
    /* the early-warning logit figures of the forward */
    for (int l = 0; l < L; l++) CHECK_CLOSE(arr_at(d, "attn_logit_max", l), naive_attn_max(&m, l), 1e-6, 1e-5);
    CHECK_CLOSE(num_at(d, "logit_max"), zmax, 0, 2e-6);
    CHECK_CLOSE(num_at(d, "log_z_mean"), lzsum / N, 1e-6, 2e-6);
    cJSON_Delete(j);
    /* a forward without diag_forward records no attention maxima: null, the rest as before */
    m.diag_forward = 0;
    lnl_model_forward(&m, in, tg, m.B, m.T);
    j = record_of(&mon, &m, gn);
    d = cJSON_GetObjectItemCaseSensitive(j, "diag");
    const cJSON *am = cJSON_GetObjectItemCaseSensitive(d, "attn_logit_max");
    CHECK(cJSON_GetArraySize(am) == L, "attn_logit_max length");
    for (int l = 0; l < L; l++) CHECK(cJSON_IsNull(cJSON_GetArrayItem(am, l)), "attn_logit_max[%d] not null", l);
    CHECK(isfinite(num_at(d, "logit_max")) && isfinite(num_at(d, "log_z_mean")), "logit figures missing");
    cJSON_Delete(j);
    free(cnt);
    free(fk);
    free(gl);
    free(glm);
    free(w0);
    free(du);
    free(p0);
    lnl_opt_free(&opt);
    lnl_monitor_free(&mon);
    lnl_model_free(&m);
}

static void test_diag_record(void) {
    check_record("pre", 1.0f);
    check_record("peri", 0.5f);
    check_record("lns", 0.1f);
}

/* A monitor restored from packed state decides like the one that was packed. */
static void test_state_roundtrip(void) {
    LnlModel m = tiny_model("pre", 1.0f);
    LnlMonitorOpts o;
    lnl_monitor_opts_default(&o);
    o.window = 5;
    o.skip_z = 1.0;
    LnlMonitor a, b;
    lnl_monitor_init(&a, &m, &o);
    lnl_monitor_init(&b, &m, &o);
    LnlRng r;
    lnl_rng_seed(&r, 4);
    char cause[128];
    for (int i = 0; i < 9; i++) lnl_monitor_check(&a, 3 + lnl_rng_uniform(&r), 1 + lnl_rng_uniform(&r), cause, 128);
    size_t cnt = lnl_monitor_state_count(&a);
    double *st = malloc(cnt * sizeof(double));
    lnl_monitor_state_pack(&a, st);
    CHECK(lnl_monitor_state_unpack(&b, st, cnt) == 0, "unpack");
    CHECK(lnl_monitor_state_unpack(&b, st, cnt - 1) == -1, "wrong size accepted");
    for (int i = 0; i < 20; i++) {
        double x = 3 + lnl_rng_uniform(&r), g = 1 + lnl_rng_uniform(&r);
        LnlStepAction ra = lnl_monitor_check(&a, x, g, cause, 128), rb = lnl_monitor_check(&b, x, g, cause, 128);
        CHECK(ra == rb && a.loss_z == b.loss_z && a.gnorm_z == b.gnorm_z, "step %d differs", i);
    }
    CHECK(a.skipped == b.skipped && a.skipped > 0, "skipped %ld vs %ld", a.skipped, b.skipped);
    free(st);
    lnl_monitor_free(&a);
    lnl_monitor_free(&b);
    lnl_model_free(&m);
}

int main(void) {
    RUN_TEST(test_window_z);
    RUN_TEST(test_check);
    RUN_TEST(test_diag_record);
    RUN_TEST(test_state_roundtrip);
    TEST_MAIN_END();
}
