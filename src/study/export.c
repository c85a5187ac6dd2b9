/* The study's tidy export (export.h): OUT/runs.csv, one row per run with its settings and figures,
 * and OUT/metrics.csv, one row per (run, step, layer, metric, value) from the runs' logs and
 * final probes. Columns: docs/STUDY.md, "Tidy export". */
#include "export.h"

#include "../report/logread.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A number and the comma after it; not finite: an empty cell. */
static void num(LnlBuf *b, double v) {
    if (isfinite(v)) lnl_buf_printf(b, "%.9g", v);
    lnl_buf_append(b, ",", 1);
}

/* A step and the comma after it; negative (none): an empty cell. */
static void step_cell(LnlBuf *b, long long s) {
    if (s >= 0) lnl_buf_printf(b, "%lld", s);
    lnl_buf_append(b, ",", 1);
}

/* A CSV field: quoted when it holds a comma, quote or line break. */
static void field(LnlBuf *b, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) {
        lnl_buf_append(b, s, strlen(s));
        return;
    }
    lnl_buf_append(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"') lnl_buf_append(b, "\"", 1);
        lnl_buf_append(b, s, 1);
    }
    lnl_buf_append(b, "\"", 1);
}

static void runs_csv(LnlBuf *b, const LnlStudyResult *rs, const int *have, int n) {
    lnl_buf_printf(b, "run,grid,preset,variant,precision,dt,depth,size,dim,heads,lr,seed,steps_done,trained,final_val_loss,"
                      "final_train_loss,unigram_val_loss,trained_at_step,init_loss,diverged_at_step,spikes,"
                      "max_loss_rise,max_loss_rise_step,last_hidden_mean_abs,block1_hidden_mean_abs,growth_better,"
                      "grad_ratio,min_grad_ratio,min_grad_ratio_step,median_sensitivity,tokens_per_s\n");
    for (int i = 0; i < n; i++) {
        if (!have[i]) continue;
        const LnlStudyResult *r = &rs[i];
        const LnlStudyRun *u = &r->run;
        field(b, u->id);
        lnl_buf_append(b, ",", 1);
        field(b, r->grid);
        lnl_buf_append(b, ",", 1);
        field(b, u->preset);
        lnl_buf_append(b, ",", 1);
        field(b, u->variant);
        lnl_buf_append(b, ",", 1);
        field(b, lnl_study_run_precision(u));
        lnl_buf_printf(b, ",%.9g,%d,", u->dt, u->depth);
        field(b, u->size);
        lnl_buf_printf(b, ",%d,%d,%.9g,%lld,%lld,%s,", u->dim, u->heads, u->lr, u->seed, r->steps_done,
                       r->trained == 1 ? "true" : r->trained == 0 ? "false" : "");
        num(b, r->final_val_loss);
        num(b, r->final_train_loss);
        num(b, r->unigram);
        step_cell(b, r->gate_step);
        num(b, r->init_loss);
        step_cell(b, r->diverged_at_step);
        lnl_buf_printf(b, "%d,", r->spikes);
        num(b, r->max_rise);
        step_cell(b, r->max_rise_step);
        num(b, r->last_hidden);
        num(b, r->nlayers > 1 ? r->layers[1].mean_abs : NAN);
        lnl_buf_printf(b, "%s,", r->nlayers ? lnl_study_growth_better(&r->growth.magnitude, 0) : "");
        num(b, r->grad_ratio);
        num(b, r->min_grad_ratio);
        step_cell(b, r->min_grad_ratio_step);
        num(b, r->median_sensitivity);
        num(b, r->tokens_per_s);
        b->len--; /* the last cell's comma ends the line instead */
        lnl_buf_append(b, "\n", 1);
    }
}

static void metric_row(LnlBuf *b, const char *run, long long step, int layer, const char *source, const char *metric,
                       double v) {
    if (!isfinite(v)) return; /* null in the record: not measured */
    field(b, run);
    lnl_buf_printf(b, ",%lld,", step);
    if (layer >= 0) lnl_buf_printf(b, "%d", layer);
    lnl_buf_printf(b, ",%s,%s,%.9g\n", source, metric, v);
}

/* The diag record's figures: arrays of L + 1 entries are layers 0..L (the stream), arrays of L
 * are blocks 1..L, numbers are the model's. */
static void diag_rows(LnlBuf *b, const char *run, long long step, const cJSON *diag) {
    const cJSON *nl = cJSON_GetObjectItemCaseSensitive(diag, "layers");
    int L = cJSON_IsNumber(nl) ? (int)nl->valuedouble : -1;
    for (const cJSON *it = diag->child; it; it = it->next) {
        if (!strcmp(it->string, "layers")) continue;
        if (cJSON_IsNumber(it)) metric_row(b, run, step, -1, "diag", it->string, it->valuedouble);
        if (!cJSON_IsArray(it)) continue;
        int n = cJSON_GetArraySize(it), first = n == L + 1 ? 0 : 1;
        for (int k = 0; k < n; k++) {
            const cJSON *x = cJSON_GetArrayItem(it, k);
            if (cJSON_IsNumber(x)) metric_row(b, run, step, first + k, "diag", it->string, x->valuedouble);
        }
    }
}

static int metrics_csv(LnlBuf *b, const char *out, const LnlStudyResult *rs, const int *have, int n) {
    lnl_buf_printf(b, "run,step,layer,source,metric,value\n");
    for (int i = 0; i < n; i++) {
        if (!have[i]) continue;
        const LnlStudyResult *r = &rs[i];
        char rel[300];
        snprintf(rel, sizeof rel, "runs/%s/log.jsonl", r->run.id);
        char *path = lnl_path_join(out, rel);
        LnlLogRecords g;
        if (lnl_log_read(&g, path, LNL_LOG_SKIP_BAD, NULL) == 0) { /* a record without its run directory: no curve */
            for (int k = 0; k < g.n; k++) {
                long long step = (long long)g.step[k];
                metric_row(b, r->run.id, step, -1, "train", "train_loss", g.loss[k]);
                metric_row(b, r->run.id, step, -1, "train", "lr", g.lr[k]);
                metric_row(b, r->run.id, step, -1, "train", "grad_norm", g.grad_norm[k]);
            }
            for (int k = 0; k < g.nval; k++)
                metric_row(b, r->run.id, (long long)g.vstep[k], -1, "eval", "val_loss", g.val[k]);
            for (int k = 0; k < g.ndiag; k++) diag_rows(b, r->run.id, (long long)g.dstep[k], g.diag[k]);
            lnl_log_free(&g);
        }
        free(path);
        for (int l = 0; l < r->nlayers; l++) {
            const LnlStudyLayer *y = &r->layers[l];
            const struct {
                const char *k;
                double v;
            } f[] = {{"hidden_mean_abs", y->mean_abs}, {"hidden_var", y->var},       {"hidden_var_data", y->var_data},
                     {"grad_norm", y->grad_norm},      {"sensitivity", y->sensitivity}, {"dx_norm", y->dx_norm}};
            for (size_t k = 0; k < sizeof f / sizeof f[0]; k++)
                metric_row(b, r->run.id, r->steps_done, l, "probe", f[k].k, f[k].v);
        }
    }
    return 0;
}

int lnl_study_export(const char *out, const LnlStudyResult *rs, const int *have, int n, LnlErr *e) {
    LnlBuf a = {0}, m = {0};
    runs_csv(&a, rs, have, n);
    metrics_csv(&m, out, rs, have, n);
    char *pa = lnl_path_join(out, "runs.csv"), *pm = lnl_path_join(out, "metrics.csv");
    int rc = lnl_write_file_atomic(pa, a.data, a.len, e) || lnl_write_file_atomic(pm, m.data, m.len, e) ? -1 : 0;
    free(pa);
    free(pm);
    lnl_buf_free(&a);
    lnl_buf_free(&m);
    return rc;
}
