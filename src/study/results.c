/* Results records of study runs, and OUT/results.jsonl as a set of them. */
#include "results.h"

#include "../common/version.h"
#include "../diag/metrics.h"
#include "../diag/probe.h"
#include "../train/run_result.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- JSON helpers: NAN <-> null ---- */

static void add_num(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

static double get_num(const cJSON *o, const char *k) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(it) ? it->valuedouble : NAN;
}

static const char *get_str(const cJSON *o, const char *k) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

double lnl_study_median(double *v, int n) {
    int k = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) v[k++] = v[i];
    if (k == 0) return NAN;
    qsort(v, (size_t)k, sizeof *v, lnl_cmp_double);
    return k % 2 ? v[k / 2] : 0.5 * (v[k / 2 - 1] + v[k / 2]);
}

double lnl_study_sweep_loss(const LnlStudyResult *r) {
    double init = r->init_loss;
    return r->diverged_at_step >= 0 || !isfinite(r->final_val_loss) ? init : fmin(r->final_val_loss, init);
}

double lnl_study_lr_sensitivity(const double *loss, int n) {
    if (n < 2) return NAN;
    double best = INFINITY, sum = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(loss[i])) return NAN;
        best = fmin(best, loss[i]);
    }
    for (int i = 0; i < n; i++) sum += loss[i] - best;
    return sum / n;
}

int lnl_study_same_setting(const LnlStudyRun *a, const LnlStudyRun *b) {
    return !strcmp(a->variant, b->variant) && a->dt == b->dt && a->depth == b->depth && !strcmp(a->size, b->size) &&
           !strcmp(lnl_study_run_precision(a), lnl_study_run_precision(b));
}

void lnl_study_setting_tag(const LnlStudyRun *r, char *buf, size_t n) {
    const char *prec = lnl_study_run_precision(r);
    if (!strcmp(prec, LNL_STUDY_FP32)) snprintf(buf, n, "%s", r->variant);
    else snprintf(buf, n, "%s%s%s", r->variant, r->variant[0] ? "+" : "", prec);
}

int lnl_study_lr_sensitivities(const LnlStudyResult *rs, const int *have, int n, const LnlStudyRun *u0,
                               const char *preset, const double *lrs, int nl, double *out, int *any_trained) {
    double *loss = lnl_malloc(sizeof(double) * (size_t)(nl + 1));
    int k = 0;
    if (any_trained) *any_trained = 0;
    for (int i = 0; i < n; i++) {
        const LnlStudyRun *u = &rs[i].run;
        if (!have[i] || strcmp(u->preset, preset) || !lnl_study_same_setting(u, u0) || u->lr != lrs[0]) continue;
        int l = 0;
        for (; l < nl; l++) { /* the seed's first run at lrs[l] */
            int j = 0;
            for (; j < n; j++) {
                const LnlStudyRun *w = &rs[j].run;
                if (have[j] && !strcmp(w->preset, preset) && lnl_study_same_setting(w, u0) && w->lr == lrs[l] &&
                    w->seed == u->seed)
                    break;
            }
            if (j == n) break;
            if (any_trained && rs[j].trained == 1) *any_trained = 1;
            loss[l] = lnl_study_sweep_loss(&rs[j]);
        }
        double x = l == nl ? lnl_study_lr_sensitivity(loss, nl) : NAN;
        if (isfinite(x)) out[k++] = x;
    }
    free(loss);
    return k;
}

const char *lnl_study_growth_better(const LnlGrowthFit *f, int variance) {
    const LnlFit *bounded = variance ? &f->quadratic : &f->linear;
    if (!bounded->ok && !f->exponential.ok) return "none";
    if (f->better_exp) return "exponential";
    return bounded->ok ? (variance ? "quadratic" : "linear") : "none";
}

/* ---- per-layer metrics ---- */

/* Where a layer keeps study metric id (metrics.h, LNL_LMF_STUDY); NULL for any other. */
static double *layer_slot(LnlStudyLayer *y, int id) {
    switch (id) {
    case LNL_LM_HIDDEN_MEAN_ABS: return &y->mean_abs;
    case LNL_LM_HIDDEN_VAR: return &y->var;
    case LNL_LM_HIDDEN_VAR_DATA: return &y->var_data;
    case LNL_LM_GRAD_NORM: return &y->grad_norm;
    case LNL_LM_SENSITIVITY: return &y->sensitivity;
    case LNL_LM_DX_NORM: return &y->dx_norm;
    default: return NULL;
    }
}

double lnl_study_layer_value(const LnlStudyLayer *y, int metric) {
    const double *v = layer_slot((LnlStudyLayer *)y, metric);
    return v ? *v : NAN;
}

/* ---- log.jsonl ---- */

/* The layer-1 / layer-L ratio of a diag record's per-layer gradient norms (layers 1..L). */
static double diag_grad_ratio(const cJSON *diag) {
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(diag, "grad_norm");
    int n = cJSON_IsArray(g) ? cJSON_GetArraySize(g) : 0;
    if (n < 2) return NAN;
    const cJSON *a = cJSON_GetArrayItem(g, 0), *b = cJSON_GetArrayItem(g, n - 1);
    if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b) || !(b->valuedouble > 0)) return NAN;
    return a->valuedouble / b->valuedouble;
}

int lnl_study_curve_read(LnlStudyCurve *c, const char *log_path, double spike_nats, LnlErr *e) {
    memset(c, 0, sizeof *c);
    c->diverged_at_step = -1;
    c->median_tps = NAN;
    c->max_rise = NAN;
    c->max_rise_step = -1;
    /* a line cut short by a kill is skipped: the run is redone anyway */
    LnlLogRecords *g = &c->log;
    if (lnl_log_read(g, log_path, LNL_LOG_SKIP_BAD, e)) return -1;
    c->n = g->n, c->step = g->step, c->loss = g->loss;
    c->nval = g->nval, c->vstep = g->vstep, c->val = g->val;
    c->ndiag = g->ndiag, c->dstep = g->dstep;
    c->diverged_at_step = g->diverged_at_step;
    snprintf(c->cause, sizeof c->cause, "%s", g->cause);
    c->dratio = lnl_malloc(sizeof(double) * (size_t)(g->ndiag ? g->ndiag : 1));
    for (int i = 0; i < g->ndiag; i++) c->dratio[i] = diag_grad_ratio(g->diag[i]);
    double run_min = INFINITY;
    int in_spike = 0;
    for (int i = 0; i < g->n; i++) {
        double loss = g->loss[i];
        if (!isfinite(loss)) continue;
        if (isfinite(run_min) && (!isfinite(c->max_rise) || loss - run_min > c->max_rise)) {
            c->max_rise = loss - run_min;
            c->max_rise_step = (long long)g->step[i];
        }
        if (isfinite(run_min) && spike_nats > 0) {
            if (!in_spike && loss - run_min > spike_nats) in_spike = 1, c->spikes++;
            else if (in_spike && loss - run_min <= 0.5 * spike_nats) in_spike = 0;
        }
        if (loss < run_min) run_min = loss;
    }
    double *tps = lnl_malloc(sizeof(double) * (size_t)(g->n ? g->n : 1));
    memcpy(tps, g->tokens_per_s, sizeof(double) * (size_t)g->n);
    c->median_tps = lnl_study_median(tps, g->n);
    free(tps);
    return 0;
}

void lnl_study_curve_free(LnlStudyCurve *c) {
    lnl_log_free(&c->log);
    free(c->dratio);
    memset(c, 0, sizeof *c);
}

/* ---- records ---- */

static void init_result(LnlStudyResult *r) {
    memset(r, 0, sizeof *r);
    r->final_val_loss = r->final_train_loss = NAN;
    r->diverged_at_step = -1;
    r->max_rise = NAN;
    r->max_rise_step = -1;
    r->last_hidden = r->grad_ratio = r->median_sensitivity = r->tokens_per_s = r->wall_s = NAN;
    r->spike_nats = r->init_loss = r->unigram = r->min_grad_ratio = NAN;
    r->trained = -1;
    r->gate_step = r->min_grad_ratio_step = -1;
}

/* The unigram val loss lnlab train wrote into RUNDIR/result.json (NAN: none; older runs). */
static double read_unigram(const char *rundir) {
    char *p = lnl_path_join(rundir, LNL_RESULT_FILE), *text = NULL;
    double u = NAN;
    if (lnl_read_file(p, &text, NULL, NULL) == 0) {
        cJSON *o = cJSON_Parse(text);
        u = get_num(o, "unigram_val_loss");
        cJSON_Delete(o);
    }
    free(text);
    free(p);
    return u;
}

/* The growth fits of a record read back: a record keeps only some of them (lnl_study_result_to_json),
 * so they are fitted again from its layers, as lnlab probe fits them. */
static void refit_growth(LnlStudyResult *r) {
    const int n = r->nlayers;
    double *m = lnl_malloc(sizeof(double) * (size_t)n), *v = lnl_malloc(sizeof(double) * (size_t)n);
    for (int l = 0; l < n; l++) {
        m[l] = r->layers[l].mean_abs;
        v[l] = r->layers[l].var;
    }
    r->growth = lnl_growth(m, v, n);
    free(m);
    free(v);
}

/* The derived figures of a record that has its layers (growth aside). */
static void derive(LnlStudyResult *r) {
    int L = r->nlayers - 1;
    if (L < 1) return;
    r->last_hidden = r->layers[L].mean_abs;
    double top = r->layers[L].grad_norm;
    r->grad_ratio = top > 0 ? r->layers[1].grad_norm / top : NAN;
    double *s = lnl_malloc(sizeof(double) * (size_t)L);
    for (int l = 1; l <= L; l++) s[l - 1] = r->layers[l].sensitivity;
    r->median_sensitivity = lnl_study_median(s, L);
    free(s);
}

/* The layers and growth fits of the probe's output, RUNDIR/probe.json. */
static int take_probe(LnlStudyResult *r, const char *rundir, const char *probe_json, LnlErr *e) {
    char *what = lnl_path_join(rundir, "probe.json");
    LnlProbeResult p;
    int rc = lnl_probe_result_from_json(&p, probe_json, what, e);
    free(what);
    if (rc) return -1;
    const int n = p.fig.n;
    r->layers = lnl_calloc((size_t)n, sizeof *r->layers);
    r->nlayers = n;
    int ids[LNL_LM_COUNT];
    const int nk = lnl_layer_metrics_select(LNL_LMF_STUDY, 0, ids);
    for (int l = 0; l < n; l++)
        for (int k = 0; k < nk; k++) *layer_slot(&r->layers[l], ids[k]) = lnl_probe_result_value(&p, ids[k], l);
    r->growth = p.growth;
    lnl_probe_result_free(&p);
    derive(r);
    return 0;
}

static void add_fit(cJSON *o, const char *k, const LnlFit *f, int exponential) {
    if (!f->ok) {
        cJSON_AddNullToObject(o, k);
        return;
    }
    cJSON *x = cJSON_AddObjectToObject(o, k);
    add_num(x, exponential ? "scale" : "intercept", f->a);
    add_num(x, exponential ? "rate" : "slope", f->b);
    add_num(x, "r2", f->r2);
}

static int parse_layers(LnlStudyResult *r, const cJSON *layers, const char *what, LnlErr *e) {
    if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) < 2)
        return lnl_err(e, "%s: 'layers' is not a list of at least 2 entries", what);
    int n = cJSON_GetArraySize(layers), ids[LNL_LM_COUNT];
    const int nk = lnl_layer_metrics_select(LNL_LMF_STUDY, 0, ids);
    r->layers = lnl_calloc((size_t)n, sizeof *r->layers);
    r->nlayers = n;
    for (int l = 0; l < n; l++) {
        const cJSON *x = cJSON_GetArrayItem(layers, l);
        if (!cJSON_IsObject(x)) return lnl_err(e, "%s: layers[%d] is not an object", what, l);
        for (int k = 0; k < nk; k++) *layer_slot(&r->layers[l], ids[k]) = get_num(x, lnl_layer_metrics[ids[k]].key);
    }
    return 0;
}

int lnl_study_result_build(LnlStudyResult *r, const LnlStudyRun *run, const char *rundir, const char *probe_json,
                           double spike_nats, LnlErr *e) {
    init_result(r);
    r->run = *run;
    snprintf(r->grid, sizeof r->grid, "%s", run->grid ? run->grid : "");
    r->run.grid = r->grid;
    char *log = lnl_path_join(rundir, "log.jsonl");
    LnlStudyCurve c;
    int rc = lnl_study_curve_read(&c, log, spike_nats, e);
    free(log);
    if (rc) return -1;
    r->spikes = c.spikes;
    r->spike_nats = spike_nats;
    r->init_loss = c.n ? c.loss[0] : NAN;
    r->unigram = read_unigram(rundir);
    r->ndiag = c.ndiag;
    for (int i = 0; i < c.ndiag; i++)
        if (isfinite(c.dratio[i]) && !(c.dratio[i] >= r->min_grad_ratio)) {
            r->min_grad_ratio = c.dratio[i];
            r->min_grad_ratio_step = (long long)c.dstep[i];
        }
    for (int i = 0; i < c.nval && isfinite(r->unigram) && r->gate_step < 0; i++)
        if (c.val[i] <= r->unigram - LNL_TRAINED_MARGIN) r->gate_step = (long long)c.vstep[i];
    r->steps_done = c.n ? (long long)c.step[c.n - 1] : 0;
    r->final_train_loss = c.n ? c.loss[c.n - 1] : NAN;
    r->diverged_at_step = c.diverged_at_step;
    snprintf(r->cause, sizeof r->cause, "%s", c.cause);
    if (c.diverged_at_step < 0 && c.nval && c.vstep[c.nval - 1] == (double)r->steps_done)
        r->final_val_loss = c.val[c.nval - 1];
    r->trained = lnl_trained(r->diverged_at_step >= 0, r->final_val_loss, r->unigram);
    r->tokens_per_s = c.median_tps;
    r->max_rise = c.max_rise;
    r->max_rise_step = c.max_rise_step;
    lnl_study_curve_free(&c);
    return probe_json ? take_probe(r, rundir, probe_json, e) : 0;
}

char *lnl_study_result_to_json(const LnlStudyResult *r, const char *settings_json, const char *command) {
    const LnlStudyRun *u = &r->run;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", u->id);
    cJSON_AddStringToObject(o, "grid", r->grid);
    cJSON_AddStringToObject(o, "preset", u->preset);
    cJSON_AddStringToObject(o, "variant", u->variant);
    cJSON_AddStringToObject(o, "precision", lnl_study_run_precision(u));
    cJSON_AddNumberToObject(o, "dt", u->dt);
    cJSON_AddNumberToObject(o, "depth", u->depth);
    if (u->size[0]) cJSON_AddStringToObject(o, "size", u->size);
    else cJSON_AddNullToObject(o, "size");
    cJSON_AddNumberToObject(o, "dim", u->dim);
    cJSON_AddNumberToObject(o, "heads", u->heads);
    cJSON_AddNumberToObject(o, "lr", u->lr);
    cJSON_AddNumberToObject(o, "seed", (double)u->seed);
    cJSON *settings = settings_json ? cJSON_Parse(settings_json) : NULL;
    cJSON_AddItemToObject(o, "settings", settings ? settings : cJSON_CreateObject());
    cJSON_AddNumberToObject(o, "threads", r->threads);
    cJSON_AddNumberToObject(o, "steps_done", (double)r->steps_done);
    add_num(o, "final_val_loss", r->final_val_loss);
    add_num(o, "final_train_loss", r->final_train_loss);
    if (r->diverged_at_step >= 0) {
        cJSON_AddNumberToObject(o, "diverged_at_step", (double)r->diverged_at_step);
        cJSON_AddStringToObject(o, "diverge_cause", r->cause);
    } else {
        cJSON_AddNullToObject(o, "diverged_at_step");
        cJSON_AddNullToObject(o, "diverge_cause");
    }
    add_num(o, "max_loss_rise", r->max_rise);
    if (r->max_rise_step >= 0) cJSON_AddNumberToObject(o, "max_loss_rise_step", (double)r->max_rise_step);
    else cJSON_AddNullToObject(o, "max_loss_rise_step");
    if (r->spike_nats > 0) cJSON_AddNumberToObject(o, "spikes", r->spikes);
    else cJSON_AddNullToObject(o, "spikes");
    add_num(o, "spike_nats", r->spike_nats);
    add_num(o, "init_loss", r->init_loss);
    add_num(o, "unigram_val_loss", r->unigram);
    if (r->trained < 0) cJSON_AddNullToObject(o, "trained");
    else cJSON_AddBoolToObject(o, "trained", r->trained);
    if (r->gate_step >= 0) cJSON_AddNumberToObject(o, "trained_at_step", (double)r->gate_step);
    else cJSON_AddNullToObject(o, "trained_at_step");
    add_num(o, "min_grad_ratio", r->min_grad_ratio);
    if (r->min_grad_ratio_step >= 0) cJSON_AddNumberToObject(o, "min_grad_ratio_step", (double)r->min_grad_ratio_step);
    else cJSON_AddNullToObject(o, "min_grad_ratio_step");
    cJSON_AddNumberToObject(o, "diag_records", r->ndiag);
    add_num(o, "last_hidden_mean_abs", r->last_hidden);
    if (r->nlayers) {
        /* lnlab probe's "growth" fits (src/diag/probe.h), over entries 0..L */
        cJSON *g = cJSON_AddObjectToObject(o, "growth");
        const LnlGrowthFit *mg = &r->growth.magnitude;
        cJSON_AddStringToObject(g, "better", lnl_study_growth_better(mg, 0));
        add_num(g, "slope", mg->linear.ok ? mg->linear.b : NAN);
        add_num(g, "rate", mg->exponential.ok ? mg->exponential.b : NAN);
        add_fit(g, "linear", &mg->linear, 0);
        add_fit(g, "exponential", &mg->exponential, 1);
        cJSON_AddStringToObject(g, "hidden_var_better", lnl_study_growth_better(&r->growth.variance, 1));
        cJSON_AddBoolToObject(g, "within_peri_bound", r->growth.within_bound);
    } else {
        cJSON_AddNullToObject(o, "growth");
    }
    add_num(o, "grad_ratio", r->grad_ratio);
    add_num(o, "median_sensitivity", r->median_sensitivity);
    add_num(o, "tokens_per_s", r->tokens_per_s);
    add_num(o, "wall_s", r->wall_s);
    if (r->nlayers) {
        cJSON *ls = cJSON_AddArrayToObject(o, "layers");
        int ids[LNL_LM_COUNT];
        const int nk = lnl_layer_metrics_select(LNL_LMF_STUDY, 1, ids); /* the probe's key order */
        for (int l = 0; l < r->nlayers; l++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddNumberToObject(x, "layer", l);
            for (int k = 0; k < nk; k++)
                add_num(x, lnl_layer_metrics[ids[k]].key, lnl_study_layer_value(&r->layers[l], ids[k]));
            cJSON_AddItemToArray(ls, x);
        }
    } else {
        cJSON_AddNullToObject(o, "layers");
    }
    if (command) lnl_provenance_add(o, command, r->threads);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

int lnl_study_result_from_json(LnlStudyResult *r, const char *line, const char *what, LnlErr *e) {
    init_result(r);
    cJSON *o = cJSON_Parse(line);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return lnl_err(e, "%s: not a JSON object", what);
    }
    int rc = -1;
    LnlStudyRun *u = &r->run;
    const char *id = get_str(o, "id"), *preset = get_str(o, "preset"), *grid = get_str(o, "grid"),
               *size = get_str(o, "size");
    if (!id || !preset || !isfinite(get_num(o, "dt")) || !isfinite(get_num(o, "lr")) || !isfinite(get_num(o, "depth"))) {
        lnl_err(e, "%s: a record needs id, preset, dt, depth and lr", what);
        goto done;
    }
    snprintf(u->id, sizeof u->id, "%s", id);
    snprintf(u->preset, sizeof u->preset, "%s", preset);
    /* the options' codes; records of older studies have them only in the id (preset+variant-dt...) */
    const char *variant = get_str(o, "variant");
    size_t pl = strlen(preset);
    if (variant) snprintf(u->variant, sizeof u->variant, "%s", variant);
    else if (!strncmp(id, preset, pl) && id[pl] == '+') {
        const char *end = strstr(id + pl, "-dt");
        int len = end ? (int)(end - id - pl - 1) : 0;
        snprintf(u->variant, sizeof u->variant, "%.*s", len, id + pl + 1);
    }
    snprintf(u->size, sizeof u->size, "%s", size ? size : "");
    /* records made before precision was an axis have it in their settings, or (older) nowhere: fp32 */
    const char *prec = get_str(o, "precision");
    if (!prec) prec = get_str(cJSON_GetObjectItemCaseSensitive(o, "settings"), "precision");
    snprintf(u->precision, sizeof u->precision, "%s", prec ? prec : LNL_STUDY_FP32);
    snprintf(r->grid, sizeof r->grid, "%s", grid ? grid : "");
    u->grid = r->grid;
    u->dt = get_num(o, "dt");
    u->lr = get_num(o, "lr");
    u->depth = (int)get_num(o, "depth");
    u->dim = isfinite(get_num(o, "dim")) ? (int)get_num(o, "dim") : 0;
    u->heads = isfinite(get_num(o, "heads")) ? (int)get_num(o, "heads") : 0;
    u->seed = isfinite(get_num(o, "seed")) ? (long long)get_num(o, "seed") : 0;
    r->threads = isfinite(get_num(o, "threads")) ? (int)get_num(o, "threads") : 0;
    r->steps_done = isfinite(get_num(o, "steps_done")) ? (long long)get_num(o, "steps_done") : 0;
    r->final_val_loss = get_num(o, "final_val_loss");
    r->final_train_loss = get_num(o, "final_train_loss");
    double d = get_num(o, "diverged_at_step");
    r->diverged_at_step = isfinite(d) ? (long long)d : -1;
    const char *cause = get_str(o, "diverge_cause");
    snprintf(r->cause, sizeof r->cause, "%s", cause ? cause : "");
    r->tokens_per_s = get_num(o, "tokens_per_s");
    r->wall_s = get_num(o, "wall_s");
    r->max_rise = get_num(o, "max_loss_rise");
    double rs = get_num(o, "max_loss_rise_step");
    r->max_rise_step = isfinite(rs) ? (long long)rs : -1;
    double sp = get_num(o, "spikes");
    r->spikes = isfinite(sp) ? (int)sp : 0;
    r->spike_nats = get_num(o, "spike_nats");
    r->init_loss = get_num(o, "init_loss");
    r->unigram = get_num(o, "unigram_val_loss");
    r->trained = lnl_trained(r->diverged_at_step >= 0, r->final_val_loss, r->unigram); /* recomputed, not trusted */
    double gs = get_num(o, "trained_at_step");
    r->gate_step = isfinite(gs) ? (long long)gs : -1;
    r->min_grad_ratio = get_num(o, "min_grad_ratio");
    double ms = get_num(o, "min_grad_ratio_step");
    r->min_grad_ratio_step = isfinite(ms) ? (long long)ms : -1;
    double nd = get_num(o, "diag_records");
    r->ndiag = isfinite(nd) ? (int)nd : 0;
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(o, "layers");
    if (layers && !cJSON_IsNull(layers)) {
        if (parse_layers(r, layers, what, e)) goto done;
        /* the figures follow from the layers, so they are recomputed, not trusted */
        refit_growth(r);
        derive(r);
    }
    rc = 0;
done:
    cJSON_Delete(o);
    return rc;
}

void lnl_study_result_free(LnlStudyResult *r) {
    free(r->layers);
    r->layers = NULL;
    r->nlayers = 0;
}

/* ---- results.jsonl ---- */

int lnl_study_results_load(LnlStudyResults *s, const char *path, LnlErr *e) {
    memset(s, 0, sizeof *s);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return 0;
        return lnl_err(e, "%s: cannot open: %s", path, strerror(errno));
    }
    fclose(f);
    char *text = NULL;
    if (lnl_read_file(path, &text, NULL, e)) return -1;
    int lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        cJSON *o = cJSON_Parse(line);
        const char *id = o ? get_str(o, "id") : NULL;
        if (!id) {
            cJSON_Delete(o);
            free(text);
            lnl_study_results_free(s);
            return lnl_err(e, "%s: line %d is not a results record (move the file away to start over)", path, lineno);
        }
        lnl_study_results_put(s, id, line);
        cJSON_Delete(o);
    }
    free(text);
    return 0;
}

int lnl_study_results_find(const LnlStudyResults *s, const char *id) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->ids[i], id) == 0) return i;
    return -1;
}

void lnl_study_results_put(LnlStudyResults *s, const char *id, const char *line) {
    int i = lnl_study_results_find(s, id);
    if (i >= 0) {
        free(s->lines[i]);
        s->lines[i] = lnl_strdup(line);
        return;
    }
    s->ids = lnl_realloc(s->ids, sizeof(char *) * (size_t)(s->n + 1));
    s->lines = lnl_realloc(s->lines, sizeof(char *) * (size_t)(s->n + 1));
    s->ids[s->n] = lnl_strdup(id);
    s->lines[s->n] = lnl_strdup(line);
    s->n++;
}

int lnl_study_results_save(const LnlStudyResults *s, const char *path, const LnlStudyRun *runs, int nruns,
                           LnlErr *e) {
    LnlBuf b = {0};
    char *used = lnl_calloc((size_t)(s->n ? s->n : 1), 1);
    for (int k = 0; k < nruns; k++) {
        int i = lnl_study_results_find(s, runs[k].id);
        if (i < 0) continue;
        used[i] = 1;
        lnl_buf_printf(&b, "%s\n", s->lines[i]);
    }
    for (int i = 0; i < s->n; i++)
        if (!used[i]) lnl_buf_printf(&b, "%s\n", s->lines[i]);
    free(used);
    int r = lnl_write_file_atomic(path, b.data ? b.data : "", b.len, e);
    lnl_buf_free(&b);
    return r;
}

void lnl_study_results_free(LnlStudyResults *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->ids[i]);
        free(s->lines[i]);
    }
    free(s->ids);
    free(s->lines);
    memset(s, 0, sizeof *s);
}
