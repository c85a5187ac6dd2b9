/* The probe of a model on one batch, and its JSON object both ways (probe.h). */
#include "probe.h"

#include <assert.h>
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "sensitivity.h"

/* The three shapes of a growth fit, with their JSON keys for the parameters a, b (and c). */
enum { FIT_LINEAR, FIT_QUADRATIC, FIT_EXPONENTIAL, FIT_NKINDS };
static const struct {
    const char *name, *ka, *kb, *kc; /* kc NULL: no third parameter */
} fit_keys[FIT_NKINDS] = {
    {"linear", "intercept", "slope", NULL},
    {"quadratic", "a", "b", "c"},
    {"exponential", "scale", "rate", NULL},
};

static LnlFit *growth_fit_part(LnlGrowthFit *g, int kind) {
    return kind == FIT_LINEAR ? &g->linear : kind == FIT_QUADRATIC ? &g->quadratic : &g->exponential;
}

/* The bounded shape a figure's "better" names when the exponential does not fit better. */
static const char *bounded_name(int variance) {
    return variance ? "quadratic" : "linear";
}

static void drop_rss(LnlGrowth *g) {
    for (int k = 0; k < FIT_NKINDS; k++) {
        growth_fit_part(&g->magnitude, k)->rss = NAN;
        growth_fit_part(&g->variance, k)->rss = NAN;
    }
}

/* Where r keeps per-layer metric id (metrics.h) of entry l: NULL for a metric it does not keep,
 * or one not measured (sensitivity without --sensitivity). */
static double *probe_slot(const LnlProbeResult *r, int id, int l) {
    switch (id) {
    case LNL_LM_HIDDEN_MEAN_ABS: return &r->fig.hidden[l].mean_abs;
    case LNL_LM_HIDDEN_VAR: return &r->fig.hidden[l].var_entry;
    case LNL_LM_HIDDEN_VAR_DATA: return &r->fig.hidden[l].var_data;
    case LNL_LM_GRAD_NORM: return &r->fig.grad_norm[l];
    case LNL_LM_DX_NORM: return &r->dx_norm[l];
    case LNL_LM_ATTN_LOGIT_MAX: return &r->fig.attn_logit_max[l];
    case LNL_LM_SENSITIVITY: return r->sigma ? &r->sigma[l] : NULL;
    case LNL_LM_SENSITIVITY_REL_CHANGE: return r->rel_change ? &r->rel_change[l] : NULL;
    default: return NULL;
    }
}

double lnl_probe_result_value(const LnlProbeResult *r, int metric, int l) {
    const double *v = l >= 0 && l < r->fig.n ? probe_slot(r, metric, l) : NULL;
    return v ? *v : NAN;
}

/* ---- the run ---- */

int lnl_probe_check_tokens(const LnlModel *m, const int32_t *in, const int32_t *tg, int B, int T, LnlErr *e) {
    const size_t bt = (size_t)B * (size_t)T;
    const int vocab = m->cfg.vocab_size;
    for (size_t k = 0; k < 2 * bt; k++) {
        int32_t t = k < bt ? in[k] : tg[k - bt];
        if (t < 0 || t >= vocab)
            return lnl_err(e, "token %d at index %zu is outside the model's vocabulary (size %d)", (int)t,
                           k < bt ? k : k - bt + 1, vocab);
    }
    return 0;
}

int lnl_probe_run(LnlProbeResult *r, LnlModel *m, const int32_t *in, const int32_t *tg, int B, int T,
                  const LnlProbeOptions *o, LnlErr *e) {
    memset(r, 0, sizeof *r);
    if (lnl_probe_check_tokens(m, in, tg, B, T, e)) return -1;
    if (lnl_model_alloc_acts(m, B, T, e)) return -1;
    const int diag_forward = m->diag_forward;
    m->diag_forward = 1;
    lnl_model_forward(m, in, tg, B, T);
    m->diag_forward = diag_forward;
    lnl_model_zero_grad(m);
    lnl_model_backward(m);

    const int L = m->cfg.n_layer;
    r->loss = m->loss;
    snprintf(r->placement, sizeof r->placement, "%s", m->cfg.preset);
    snprintf(r->run_id, sizeof r->run_id, "%s", m->run_id);
    snprintf(r->norm, sizeof r->norm, "%s", lnl_norm_name(m->cfg.norm));
    r->dt = m->cfg.dt;
    r->batch = m->B;
    r->seq = m->T;
    lnl_probe_collect(m, &r->fig);
    r->dx_norm = lnl_malloc(sizeof(double) * (size_t)r->fig.n);
    memcpy(r->dx_norm, m->dx_norm, sizeof(double) * (size_t)r->fig.n);
    if (o->sensitivity) {
        /* after the figures above: only the backward scratch is reused, gradients stay */
        r->sens_iters = o->sens_iters;
        r->sigma = lnl_malloc(sizeof(double) * (size_t)(L + 1));
        r->rel_change = lnl_malloc(sizeof(double) * (size_t)(L + 1));
        r->sigma[0] = r->rel_change[0] = NAN;
        LnlSensWork w;
        lnl_sens_work_init(&w, m);
        for (int l = 1; l <= L; l++) {
            LnlSensResult s = lnl_block_sensitivity(m, &w, l - 1, o->sens_iters, o->sens_seed);
            r->sigma[l] = s.sigma;
            r->rel_change[l] = s.rel_change;
        }
        lnl_sens_work_free(&w);
    }
    const int n = r->fig.n;
    double *mag = lnl_malloc(sizeof(double) * (size_t)n), *var = lnl_malloc(sizeof(double) * (size_t)n);
    for (int l = 0; l < n; l++) {
        mag[l] = r->fig.hidden[l].mean_abs;
        var[l] = r->fig.hidden[l].var_entry;
    }
    r->growth = lnl_growth(mag, var, n);
    drop_rss(&r->growth);
    free(mag);
    free(var);
    return 0;
}

void lnl_probe_result_free(LnlProbeResult *r) {
    lnl_probe_free(&r->fig);
    free(r->dx_norm);
    free(r->sigma);
    free(r->rel_change);
    r->dx_norm = r->sigma = r->rel_change = NULL;
    r->fig.n = 0;
}

/* ---- to JSON ---- */

static void add_fit(cJSON *o, int kind, const LnlFit *f) {
    const char *name = fit_keys[kind].name;
    if (!f->ok) {
        cJSON_AddNullToObject(o, name);
        return;
    }
    cJSON *x = cJSON_AddObjectToObject(o, name);
    cJSON_AddNumberToObject(x, fit_keys[kind].ka, f->a);
    cJSON_AddNumberToObject(x, fit_keys[kind].kb, f->b);
    if (fit_keys[kind].kc) cJSON_AddNumberToObject(x, fit_keys[kind].kc, f->c);
    cJSON_AddNumberToObject(x, "r2", f->r2);
    if (kind == FIT_EXPONENTIAL) cJSON_AddNumberToObject(x, "r2_log", f->r2_log);
}

static void add_growth_fit(cJSON *o, const char *name, const LnlGrowthFit *g, int variance) {
    cJSON *x = cJSON_AddObjectToObject(o, name);
    add_fit(x, FIT_LINEAR, &g->linear);
    add_fit(x, FIT_QUADRATIC, &g->quadratic);
    add_fit(x, FIT_EXPONENTIAL, &g->exponential);
    cJSON_AddStringToObject(x, "better", g->better_exp ? "exponential" : bounded_name(variance));
}

char *lnl_probe_result_to_json(const LnlProbeResult *r) {
    const LnlProbe *p = &r->fig;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "loss", r->loss);
    cJSON_AddStringToObject(o, "placement", r->placement);
    if (r->run_id[0]) cJSON_AddStringToObject(o, "run_id", r->run_id);
    else cJSON_AddNullToObject(o, "run_id");
    cJSON_AddStringToObject(o, "norm", r->norm);
    cJSON_AddNumberToObject(o, "dt", r->dt);
    cJSON_AddNumberToObject(o, "batch", r->batch);
    cJSON_AddNumberToObject(o, "seq", r->seq);
    cJSON_AddNumberToObject(o, "logit_max", p->logits.logit_max);
    cJSON_AddNumberToObject(o, "log_z_mean", p->logits.log_z_mean);
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    int ids[LNL_LM_COUNT];
    const int nk = lnl_layer_metrics_select(LNL_LMF_PROBE, 1, ids);
    for (int l = 0; l < p->n; l++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "layer", l);
        for (int k = 0; k < nk; k++) {
            const LnlLayerMetric *mt = &lnl_layer_metrics[ids[k]];
            const double *v = probe_slot(r, ids[k], l);
            /* entry 0 has no block: null (or 0 where the probe reports 0 there) */
            int none = !v || (mt->rows == LNL_ROWS_BLOCK && l == 0 && !(mt->flags & LNL_LMF_EMBED_ZERO));
            if (none && (mt->flags & LNL_LMF_OMIT)) continue;
            if (none) cJSON_AddNullToObject(x, mt->key);
            else cJSON_AddNumberToObject(x, mt->key, *v);
        }
        cJSON_AddItemToArray(layers, x);
    }
    if (r->sigma) cJSON_AddNumberToObject(o, "sensitivity_iters", r->sens_iters);
    else cJSON_AddNullToObject(o, "sensitivity_iters");
    cJSON *gr = cJSON_AddObjectToObject(o, "growth");
    cJSON_AddNumberToObject(gr, "points", r->growth.n);
    add_growth_fit(gr, "hidden_mean_abs", &r->growth.magnitude, 0);
    add_growth_fit(gr, "hidden_var", &r->growth.variance, 1);
    cJSON_AddBoolToObject(gr, "within_peri_bound", r->growth.within_bound);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* ---- from JSON ---- */

/* A reader: the source's name for messages, the error, and the JSON path of the object at hand
 * ("layers[2].", "growth.hidden_var.linear."), so that every message names the whole field. */
typedef struct {
    const char *what;
    LnlErr *e;
    char path[96];
} Rd;

static const cJSON *field(const Rd *rd, const cJSON *o, const char *k) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!it) lnl_err(rd->e, "%s: missing field '%s%s'", rd->what, rd->path, k);
    return it;
}

/* A figure: a number, or null for one that was not finite (NAN). */
static int get_num(const Rd *rd, const cJSON *o, const char *k, double *out) {
    const cJSON *it = field(rd, o, k);
    if (!it) return -1;
    if (cJSON_IsNull(it)) *out = NAN;
    else if (cJSON_IsNumber(it)) *out = it->valuedouble;
    else return lnl_err(rd->e, "%s: field '%s%s' is not a number or null", rd->what, rd->path, k);
    return 0;
}

static int get_int(const Rd *rd, const cJSON *o, const char *k, int lo, int hi, int *out) {
    const cJSON *it = field(rd, o, k);
    if (!it) return -1;
    double v = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    if (!(v >= lo && v <= hi && v == floor(v)))
        return lnl_err(rd->e, "%s: field '%s%s' is not an integer in [%d, %d]", rd->what, rd->path, k, lo, hi);
    *out = (int)v;
    return 0;
}

/* A string of at most cap - 1 bytes; null reads as "" where null_ok. */
static int get_str(const Rd *rd, const cJSON *o, const char *k, int null_ok, char *out, size_t cap) {
    const cJSON *it = field(rd, o, k);
    if (!it) return -1;
    if (null_ok && cJSON_IsNull(it)) {
        out[0] = 0;
        return 0;
    }
    if (!cJSON_IsString(it))
        return lnl_err(rd->e, "%s: field '%s%s' is not a string%s", rd->what, rd->path, k, null_ok ? " or null" : "");
    if (strlen(it->valuestring) >= cap)
        return lnl_err(rd->e, "%s: field '%s%s' is longer than %zu characters", rd->what, rd->path, k, cap - 1);
    memcpy(out, it->valuestring, strlen(it->valuestring) + 1);
    return 0;
}

/* An object field; sets rd's path to it (restore with the returned length). */
static const cJSON *enter(Rd *rd, const cJSON *o, const char *k, size_t *saved) {
    const cJSON *it = field(rd, o, k);
    if (!it) return NULL;
    if (!cJSON_IsObject(it)) {
        lnl_err(rd->e, "%s: field '%s%s' is not an object", rd->what, rd->path, k);
        return NULL;
    }
    *saved = strlen(rd->path);
    snprintf(rd->path + *saved, sizeof rd->path - *saved, "%s.", k);
    return it;
}

static int read_fit(Rd *rd, const cJSON *g, int kind, LnlFit *f) {
    const char *name = fit_keys[kind].name;
    memset(f, 0, sizeof *f);
    f->rss = NAN;
    const cJSON *it = field(rd, g, name);
    if (!it) return -1;
    if (cJSON_IsNull(it)) return 0;
    size_t saved;
    if (!(it = enter(rd, g, name, &saved))) return -1;
    int bad = get_num(rd, it, fit_keys[kind].ka, &f->a) || get_num(rd, it, fit_keys[kind].kb, &f->b) ||
              (fit_keys[kind].kc && get_num(rd, it, fit_keys[kind].kc, &f->c)) || get_num(rd, it, "r2", &f->r2) ||
              (kind == FIT_EXPONENTIAL && get_num(rd, it, "r2_log", &f->r2_log));
    rd->path[saved] = 0;
    f->ok = 1;
    return bad ? -1 : 0;
}

static int read_growth_fit(Rd *rd, const cJSON *gr, const char *name, int variance, LnlGrowthFit *g) {
    size_t saved;
    const cJSON *x = enter(rd, gr, name, &saved);
    if (!x) return -1;
    char better[16];
    int bad = read_fit(rd, x, FIT_LINEAR, &g->linear) || read_fit(rd, x, FIT_QUADRATIC, &g->quadratic) ||
              read_fit(rd, x, FIT_EXPONENTIAL, &g->exponential) || get_str(rd, x, "better", 0, better, sizeof better);
    if (!bad) {
        g->better_exp = !strcmp(better, "exponential");
        if (!g->better_exp && strcmp(better, bounded_name(variance)))
            bad = lnl_err(rd->e, "%s: field '%sbetter' is \"%s\", not \"exponential\" or \"%s\"", rd->what, rd->path,
                          better, bounded_name(variance));
    }
    rd->path[saved] = 0;
    return bad ? -1 : 0;
}

/* The metrics of a layer object (metrics.h), in key order: first every key that is always there,
 * then whether those measured only when asked hold numbers only where they were measured, then the
 * keys left out where not measured; a message names the first field that is wrong in that order. */
static int read_layer(Rd *rd, const cJSON *x, int l, LnlProbeResult *r) {
    size_t saved = strlen(rd->path);
    snprintf(rd->path + saved, sizeof rd->path - saved, "layers[%d].", l);
    int layer = -1, bad = 0;
    if (!cJSON_IsObject(x)) bad = lnl_err(rd->e, "%s: field 'layers[%d]' is not an object", rd->what, l);
    else if (get_int(rd, x, "layer", 0, INT_MAX, &layer)) bad = -1;
    else if (layer != l) bad = lnl_err(rd->e, "%s: field '%slayer' is %d, expected %d", rd->what, rd->path, layer, l);
    int ids[LNL_LM_COUNT];
    double asked[LNL_LM_COUNT];
    const int nk = lnl_layer_metrics_select(LNL_LMF_PROBE, 1, ids);
    for (int pass = 0; pass < 3 && !bad; pass++)
        for (int k = 0; k < nk && !bad; k++) {
            const int flags = lnl_layer_metrics[ids[k]].flags;
            const char *key = lnl_layer_metrics[ids[k]].key;
            double *v = probe_slot(r, ids[k], l);
            assert(v || (flags & LNL_LMF_ASKED)); /* probe_slot knows every probe metric */
            const int has = v && l > 0; /* a measured value belongs here */
            if (pass == 0 && !(flags & LNL_LMF_OMIT)) {
                bad = get_num(rd, x, key, (flags & LNL_LMF_ASKED) ? &asked[k] : v);
            } else if (pass == 1 && (flags & LNL_LMF_ASKED) && !(flags & LNL_LMF_OMIT)) {
                if (has) *v = asked[k];
                else if (!isnan(asked[k]))
                    bad = lnl_err(rd->e, "%s: field '%s%s' is a number, but %s", rd->what, rd->path, key,
                                  l == 0 ? "entry 0 has no block" : "sensitivity_iters is null");
            } else if (pass == 2 && (flags & LNL_LMF_OMIT) && has) {
                bad = get_num(rd, x, key, v);
            }
        }
    rd->path[saved] = 0;
    return bad ? -1 : 0;
}

static int read_result(Rd *rd, const cJSON *o, LnlProbeResult *r) {
    const cJSON *layers, *it;
    if (get_num(rd, o, "loss", &r->loss) || get_str(rd, o, "placement", 0, r->placement, sizeof r->placement) ||
        get_str(rd, o, "run_id", 1, r->run_id, sizeof r->run_id) ||
        get_str(rd, o, "norm", 0, r->norm, sizeof r->norm) || get_num(rd, o, "dt", &r->dt) ||
        get_int(rd, o, "batch", 1, INT_MAX, &r->batch) || get_int(rd, o, "seq", 1, INT_MAX, &r->seq) ||
        get_num(rd, o, "logit_max", &r->fig.logits.logit_max) ||
        get_num(rd, o, "log_z_mean", &r->fig.logits.log_z_mean) || !(layers = field(rd, o, "layers")) ||
        !(it = field(rd, o, "sensitivity_iters")))
        return -1;
    if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) < 2)
        return lnl_err(rd->e, "%s: field 'layers' is not a list of at least 2 entries", rd->what);
    const int n = cJSON_GetArraySize(layers);
    if (!cJSON_IsNull(it) && get_int(rd, o, "sensitivity_iters", 0, INT_MAX, &r->sens_iters)) return -1;
    LnlProbe *p = &r->fig;
    p->n = n;
    p->hidden = lnl_calloc((size_t)n, sizeof *p->hidden);
    p->grad_norm = lnl_calloc((size_t)n, sizeof(double));
    p->attn_logit_max = lnl_calloc((size_t)n, sizeof(double));
    r->dx_norm = lnl_calloc((size_t)n, sizeof(double));
    if (!cJSON_IsNull(it)) {
        r->sigma = lnl_calloc((size_t)n, sizeof(double));
        r->rel_change = lnl_calloc((size_t)n, sizeof(double));
        r->sigma[0] = r->rel_change[0] = NAN;
    }
    for (int l = 0; l < n; l++)
        if (read_layer(rd, cJSON_GetArrayItem(layers, l), l, r)) return -1;
    size_t saved;
    const cJSON *gr = enter(rd, o, "growth", &saved);
    if (!gr || get_int(rd, gr, "points", 0, INT_MAX, &r->growth.n)) return -1;
    if (r->growth.n != n)
        return lnl_err(rd->e, "%s: field 'growth.points' is %d, but there are %d layers", rd->what, r->growth.n, n);
    if (read_growth_fit(rd, gr, "hidden_mean_abs", 0, &r->growth.magnitude) ||
        read_growth_fit(rd, gr, "hidden_var", 1, &r->growth.variance) || !(it = field(rd, gr, "within_peri_bound")))
        return -1;
    if (!cJSON_IsBool(it))
        return lnl_err(rd->e, "%s: field 'growth.within_peri_bound' is not true or false", rd->what);
    r->growth.within_bound = cJSON_IsTrue(it);
    return 0;
}

int lnl_probe_result_from_json(LnlProbeResult *r, const char *text, const char *what, LnlErr *e) {
    memset(r, 0, sizeof *r);
    cJSON *o = cJSON_Parse(text);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return lnl_err(e, "%s: not a JSON object", what);
    }
    Rd rd = {what, e, ""};
    int rc = read_result(&rd, o, r);
    cJSON_Delete(o);
    if (rc) lnl_probe_result_free(r);
    return rc;
}
