/* Training monitor (monitor.h): step classification, z-score windows, diagnostics records. */
#include "monitor.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "stats.h"

void lnl_monitor_opts_default(LnlMonitorOpts *o) {
    o->every = LNL_DIAG_EVERY_DEFAULT;
    o->window = LNL_ZSCORE_WINDOW_DEFAULT;
    o->skip_z = 0.0;
    o->diverge_loss = 0.0;
}

double lnl_window_z(const LnlWindow *w, double x) {
    if (w->n < w->cap) return NAN;
    double sum = 0, sq = 0;
    for (int i = 0; i < w->n; i++) sum += w->v[i];
    double mean = sum / w->n;
    for (int i = 0; i < w->n; i++) sq += (w->v[i] - mean) * (w->v[i] - mean);
    double sd = sqrt(sq / w->n);
    if (sd > 0) return (x - mean) / sd;
    return x == mean ? 0.0 : (x > mean ? INFINITY : -INFINITY);
}

void lnl_window_push(LnlWindow *w, double x) {
    w->v[w->head] = x;
    w->head = (w->head + 1) % w->cap;
    if (w->n < w->cap) w->n++;
}

void lnl_monitor_init(LnlMonitor *mon, const LnlModel *m, const LnlMonitorOpts *o) {
    memset(mon, 0, sizeof *mon);
    mon->o = *o;
    if (mon->o.window < 2) mon->o.window = 2;
    mon->loss_w = (LnlWindow){lnl_calloc((size_t)mon->o.window, sizeof(double)), mon->o.window, 0, 0};
    mon->gnorm_w = (LnlWindow){lnl_calloc((size_t)mon->o.window, sizeof(double)), mon->o.window, 0, 0};
    mon->min_loss = INFINITY;
    mon->loss_z = mon->gnorm_z = NAN;
    mon->L = m->cfg.n_layer;
    if (o->every > 0) {
        mon->before = lnl_malloc(m->num_alloc * sizeof(float));
        mon->grad_norm = lnl_calloc((size_t)mon->L + 1, sizeof(double));
        mon->update_ratio = lnl_calloc((size_t)mon->L + 1, sizeof(double));
        mon->update_rms = lnl_calloc((size_t)mon->L + 1, sizeof(double));
    }
}

void lnl_monitor_free(LnlMonitor *mon) {
    free(mon->loss_w.v);
    free(mon->gnorm_w.v);
    free(mon->before);
    free(mon->grad_norm);
    free(mon->update_ratio);
    free(mon->update_rms);
    memset(mon, 0, sizeof *mon);
}

static const char *nonfinite_name(double x) { return isnan(x) ? "NaN" : "infinite"; }

LnlStepAction lnl_monitor_check(LnlMonitor *mon, double loss, double grad_norm, char *cause, size_t n) {
    mon->loss_z = lnl_window_z(&mon->loss_w, loss);
    mon->gnorm_z = lnl_window_z(&mon->gnorm_w, grad_norm);
    LnlStepAction act = LNL_STEP_UPDATE;
    if (!isfinite(loss) || !isfinite(grad_norm)) {
        snprintf(cause, n, "%s is %s", !isfinite(loss) ? "loss" : "gradient norm",
                 nonfinite_name(!isfinite(loss) ? loss : grad_norm));
        act = LNL_STEP_DIVERGED;
    } else if (mon->o.diverge_loss > 0 && loss > mon->min_loss + mon->o.diverge_loss) {
        snprintf(cause, n, "loss %.4f exceeds its running minimum %.4f by more than %g", loss, mon->min_loss,
                 mon->o.diverge_loss);
        act = LNL_STEP_DIVERGED;
    } else if (mon->o.skip_z > 0 && (mon->loss_z > mon->o.skip_z || mon->gnorm_z > mon->o.skip_z)) {
        mon->skipped++;
        act = LNL_STEP_SKIP;
    } else {
        lnl_window_push(&mon->loss_w, loss);
        lnl_window_push(&mon->gnorm_w, grad_norm);
    }
    if (isfinite(loss) && loss < mon->min_loss) mon->min_loss = loss;
    mon->last = act;
    return act;
}

int lnl_monitor_due_forward(const LnlMonitor *mon, long step) {
    return mon->o.every > 0 && step % mon->o.every == 0;
}

int lnl_monitor_due(const LnlMonitor *mon, long step) {
    return lnl_monitor_due_forward(mon, step) || (mon->o.every > 0 && mon->last == LNL_STEP_DIVERGED);
}

/* Group of a tensor view: 0 for tensors outside the blocks, l + 1 for block l (0-based). */
static int group_of(const LnlTensorView *v) { return v->layer + 1; }

/* Sums of squares on one thread, in independent double lanes so the loop vectorizes: one pass
 * over the parameters is a few milliseconds, and a loaded machine cannot stall it the way it
 * stalls a parallel region per tensor. */
#define MON_LANES 8
static double sumsq_seq(const float *x, size_t n) {
    double acc[MON_LANES] = {0};
    size_t i = 0;
    for (; i + MON_LANES <= n; i += MON_LANES)
        for (int k = 0; k < MON_LANES; k++) acc[k] += (double)x[i + k] * x[i + k];
    double s = 0;
    for (; i < n; i++) s += (double)x[i] * x[i];
    for (int k = 0; k < MON_LANES; k++) s += acc[k];
    return s;
}

/* sum (a - b)^2 and sum b^2 */
static void diffsq_seq(const float *a, const float *b, size_t n, double *d2, double *b2) {
    double ad[MON_LANES] = {0}, ab[MON_LANES] = {0};
    size_t i = 0;
    for (; i + MON_LANES <= n; i += MON_LANES)
        for (int k = 0; k < MON_LANES; k++) {
            double d = (double)a[i + k] - b[i + k];
            ad[k] += d * d;
            ab[k] += (double)b[i + k] * b[i + k];
        }
    double sd = 0, sb = 0;
    for (; i < n; i++) {
        double d = (double)a[i] - b[i];
        sd += d * d;
        sb += (double)b[i] * b[i];
    }
    for (int k = 0; k < MON_LANES; k++) sd += ad[k], sb += ab[k];
    *d2 += sd;
    *b2 += sb;
}

void lnl_monitor_pre_update(LnlMonitor *mon, const LnlModel *m) {
    for (int l = 0; l <= mon->L; l++) mon->grad_norm[l] = 0;
    for (int i = 0; i < m->nviews; i++) {
        const LnlTensorView *v = &m->views[i];
        mon->grad_norm[group_of(v)] += sumsq_seq(m->grads_mem + v->offset, v->numel);
    }
    for (int l = 0; l <= mon->L; l++) mon->grad_norm[l] = sqrt(mon->grad_norm[l]);
    memcpy(mon->before, m->params_mem, m->num_alloc * sizeof(float));
}

void lnl_monitor_post_update(LnlMonitor *mon, const LnlModel *m) {
    const int G = mon->L + 1;
    double *du = lnl_calloc((size_t)G, sizeof(double)), *w = lnl_calloc((size_t)G, sizeof(double));
    double *cnt = lnl_calloc((size_t)G, sizeof(double));
    for (int i = 0; i < m->nviews; i++) {
        const LnlTensorView *v = &m->views[i];
        diffsq_seq(m->params_mem + v->offset, mon->before + v->offset, v->numel, &du[group_of(v)], &w[group_of(v)]);
        cnt[group_of(v)] += (double)v->numel;
    }
    for (int g = 0; g < G; g++) {
        mon->update_ratio[g] = w[g] > 0 ? sqrt(du[g] / w[g]) : NAN;
        mon->update_rms[g] = cnt[g] > 0 ? sqrt(du[g] / cnt[g]) : NAN;
    }
    free(du);
    free(w);
    free(cnt);
}

/* A number, or null if it is not finite (JSON has no NaN). */
static void put_num(FILE *f, double x) {
    if (isfinite(x)) fprintf(f, "%.6e", x);
    else fputs("null", f);
}

static void put_arr(FILE *f, const char *key, const double *x, int n) {
    fprintf(f, ", \"%s\": [", key);
    for (int i = 0; i < n; i++) {
        if (i) fputs(", ", f);
        put_num(f, x[i]);
    }
    fputc(']', f);
}

void lnl_monitor_step_fields(const LnlMonitor *mon, char *buf, size_t n) {
    char lz[32], gz[32];
    lnl_json_num(lz, sizeof lz, "%.4f", mon->loss_z);
    lnl_json_num(gz, sizeof gz, "%.4f", mon->gnorm_z);
    snprintf(buf, n, ", \"loss_z\": %s, \"grad_norm_z\": %s%s", lz, gz,
             mon->last == LNL_STEP_SKIP ? ", \"skipped\": true" : "");
}

void lnl_monitor_write_diag(const LnlMonitor *mon, const LnlModel *m, long step, double grad_norm, FILE *log) {
    const int L = m->cfg.n_layer, N = m->B * m->T, C = m->cfg.n_embd;
    /* (L+1) stream figures, then (L) per sub-layer branch figures */
    double *buf = lnl_calloc((size_t)(9 * (L + 1)), sizeof(double));
    double *smean = buf, *svar = smean + L + 1, *svard = svar + L + 1;
    double *bstat[2][3];
    for (int s = 0; s < 2; s++)
        for (int j = 0; j < 3; j++) bstat[s][j] = svard + L + 1 + (size_t)(s * 3 + j) * (L + 1);
    for (int l = 0; l <= L; l++) {
        LnlHiddenStats h = lnl_hidden_stats(m->stream[2 * l], N, C);
        smean[l] = h.mean_abs, svar[l] = h.var_entry, svard[l] = h.var_data;
    }
    for (int l = 0; l < L; l++)
        for (int s = 0; s < 2; s++) {
            LnlHiddenStats h = lnl_hidden_stats(lnl_sub_branch_out(&m->sub[2 * l + s]), N, C);
            bstat[s][0][l] = h.mean_abs, bstat[s][1][l] = h.var_entry, bstat[s][2][l] = h.var_data;
        }
    double *amax = lnl_malloc((size_t)L * sizeof(double));
    for (int l = 0; l < L; l++) amax[l] = m->attn_logit_max[l];
    LnlLogitStats z = lnl_logit_stats(m);
    /* each per-layer array of the record (metrics.h), written in the list's order */
    const double *val[LNL_LM_COUNT] = {0};
    val[LNL_LM_HIDDEN_MEAN_ABS] = smean;
    val[LNL_LM_HIDDEN_VAR] = svar;
    val[LNL_LM_HIDDEN_VAR_DATA] = svard;
    val[LNL_LM_DX_NORM] = m->dx_norm;
    static const int branch_id[2][3] = {{LNL_LM_ATTN_MEAN_ABS, LNL_LM_ATTN_VAR, LNL_LM_ATTN_VAR_DATA},
                                        {LNL_LM_MLP_MEAN_ABS, LNL_LM_MLP_VAR, LNL_LM_MLP_VAR_DATA}};
    for (int s = 0; s < 2; s++)
        for (int j = 0; j < 3; j++) val[branch_id[s][j]] = bstat[s][j];
    val[LNL_LM_GRAD_NORM] = mon->grad_norm + 1;
    val[LNL_LM_UPDATE_RATIO] = mon->update_ratio + 1;
    val[LNL_LM_UPDATE_RMS] = mon->update_rms + 1;
    val[LNL_LM_ATTN_LOGIT_MAX] = amax;
    fprintf(log, "{\"step\": %ld, \"diag\": {\"layers\": %d", step, L);
    for (int id = 0; id < LNL_LM_COUNT; id++) {
        if (!(lnl_layer_metrics[id].flags & LNL_LMF_DIAG)) continue;
        assert(val[id] && "a diag metric of metrics.h without its value here");
        put_arr(log, lnl_layer_metrics[id].key, val[id], lnl_layer_metric_len(id, L));
    }
    fputs(", \"embed_grad_norm\": ", log);
    put_num(log, mon->grad_norm[0]);
    fputs(", \"embed_update_ratio\": ", log);
    put_num(log, mon->update_ratio[0]);
    fputs(", \"embed_update_rms\": ", log);
    put_num(log, mon->update_rms[0]);
    fputs(", \"global_grad_norm\": ", log);
    put_num(log, grad_norm);
    fputs(", \"logit_max\": ", log);
    put_num(log, z.logit_max);
    fputs(", \"log_z_mean\": ", log);
    put_num(log, z.log_z_mean);
    fputs("}}\n", log);
    free(amax);
    free(buf);
}

size_t lnl_monitor_state_count(const LnlMonitor *mon) { return 2 + 2 * (2 + (size_t)mon->o.window); }

static double *pack_window(const LnlWindow *w, double *p) {
    *p++ = w->n;
    *p++ = w->head;
    memcpy(p, w->v, (size_t)w->cap * sizeof(double));
    return p + w->cap;
}

static const double *unpack_window(LnlWindow *w, const double *p) {
    w->n = (int)p[0];
    w->head = (int)p[1];
    memcpy(w->v, p + 2, (size_t)w->cap * sizeof(double));
    return p + 2 + w->cap;
}

void lnl_monitor_state_pack(const LnlMonitor *mon, double *out) {
    out[0] = mon->min_loss;
    out[1] = (double)mon->skipped;
    double *p = pack_window(&mon->loss_w, out + 2);
    pack_window(&mon->gnorm_w, p);
}

int lnl_monitor_state_unpack(LnlMonitor *mon, const double *in, size_t count) {
    if (count != lnl_monitor_state_count(mon)) return -1;
    for (int k = 0; k < 2; k++) {
        double n = in[2 + (size_t)k * (2 + mon->o.window)], head = in[3 + (size_t)k * (2 + mon->o.window)];
        if (!(n >= 0 && n <= mon->o.window && head >= 0 && head < mon->o.window)) return -1;
    }
    mon->min_loss = in[0];
    mon->skipped = (long)in[1];
    const double *p = unpack_window(&mon->loss_w, in + 2);
    unpack_window(&mon->gnorm_w, p);
    return 0;
}
