/* The list of per-layer metrics (src/diag/metrics.h) against the records that carry them: the
 * list is well formed, a real training step's diag record has exactly its DIAG arrays (in its
 * order, of its lengths), lnlab probe's layer objects exactly its PROBE keys (in POS order, with
 * and without --sensitivity), a study record's layers exactly its STUDY keys, and docs/FORMATS.md
 * lists every key. A metric written somewhere but missing from the list fails here. */
#include "harness.h"

#include <cjson/cJSON.h>
#include <ctype.h>

#include "common/perturb.h"
#include "diag/metrics.h"
#include "diag/monitor.h"
#include "diag/probe.h"
#include "model/model.h"
#include "study/results.h"

enum { B = 2, T = 5 };

static LnlModel tiny_model(const char *preset) {
    LnlModel m;
    LnlConfig *c = malloc(sizeof *c);
    lnl_config_default(c);
    c->n_layer = 3, c->n_head = 2, c->n_embd = 8, c->n_positions = 6, c->vocab_size = 11, c->init_std = 0.3f;
    LnlErr e;
    CHECK(lnl_config_preset(c, preset, &e) == 0, "%s", e.msg);
    CHECK(lnl_model_create(&m, c, &e) == 0, "%s", e.msg);
    free(c);
    lnl_model_init_weights(&m, 5);
    lnl_test_perturb(&m, 6);
    CHECK(lnl_model_alloc_acts(&m, B, T, &e) == 0, "%s", e.msg);
    return m;
}

static void batch(int32_t *in, int32_t *tg) {
    for (int i = 0; i < B * T; i++) in[i] = (int32_t)((i * 7 + 3) % 11), tg[i] = (int32_t)((i * 5 + 1) % 11);
}

static void test_list(void) {
    int npos = 0;
    for (int i = 0; i < LNL_LM_COUNT; i++) {
        const LnlLayerMetric *m = &lnl_layer_metrics[i];
        CHECK(m->key && m->key[0] && lnl_layer_metric_find(m->key) == i, "%d: key missing or not unique", i);
        for (const char *p = m->key; p && *p; p++) CHECK(islower((unsigned char)*p) || *p == '_', "key %s", m->key);
        CHECK(m->rows == LNL_ROWS_STREAM || m->rows == LNL_ROWS_BLOCK, "%s: rows", m->key);
        CHECK(m->log == 0 || m->log == 1, "%s: log", m->key);
        CHECK(m->name && m->unit && m->def && m->def[0], "%s: name, unit and definition", m->key);
        CHECK(m->flags & (LNL_LMF_DIAG | LNL_LMF_PROBE), "%s: in no record lnlab writes", m->key);
        CHECK((m->pos >= 0) == !!(m->flags & LNL_LMF_PROBE), "%s: POS set exactly for probe metrics", m->key);
        CHECK(!(m->flags & LNL_LMF_STUDY) || (m->flags & LNL_LMF_PROBE), "%s: the study takes it from the probe", m->key);
        CHECK(!(m->flags & LNL_LMF_HEATMAP) || (m->flags & LNL_LMF_DIAG), "%s: a heatmap draws diag records", m->key);
        CHECK(!(m->flags & LNL_LMF_BYLAYER) || ((m->flags & LNL_LMF_STUDY) && m->label && m->axis),
              "%s: a by-layer figure draws study records, with a label and an axis", m->key);
        CHECK(!(m->flags & LNL_LMF_OMIT) || (m->flags & LNL_LMF_ASKED), "%s: OMIT without ASKED", m->key);
        CHECK(!(m->flags & LNL_LMF_EMBED_ZERO) || m->rows == LNL_ROWS_BLOCK, "%s: EMBED_ZERO on a stream", m->key);
        npos += m->pos >= 0;
    }
    int ids[LNL_LM_COUNT];
    CHECK(lnl_layer_metrics_select(LNL_LMF_PROBE, 1, ids) == npos, "select");
    for (int k = 0; k < npos; k++) CHECK(lnl_layer_metrics[ids[k]].pos == k, "POS is 0..%d without gaps", npos - 1);
    CHECK(lnl_layer_metric_find("no_such_metric") == -1, "find");
}

/* The keys of a JSON object other than those in skip (NULL-terminated), in order. */
static int keys_of(const cJSON *o, const char *const *skip, const char **out) {
    int n = 0;
    for (const cJSON *it = o ? o->child : NULL; it; it = it->next) {
        int s = 0;
        for (int k = 0; skip[k]; k++) s |= !strcmp(skip[k], it->string);
        if (!s) out[n++] = it->string;
    }
    return n;
}

/* A training step's diag record: every array is a DIAG metric of the list, in the list's order,
 * of its length; every DIAG metric is there; the rest are the record's scalars. */
static void test_diag_record(void) {
    LnlModel m = tiny_model("peri");
    const int L = m.cfg.n_layer;
    int32_t in[B * T], tg[B * T];
    batch(in, tg);
    LnlMonitorOpts o;
    lnl_monitor_opts_default(&o);
    o.every = 1;
    LnlMonitor mon;
    lnl_monitor_init(&mon, &m, &o);
    m.diag_forward = lnl_monitor_due_forward(&mon, 1);
    lnl_model_zero_grad(&m);
    float loss = lnl_model_forward(&m, in, tg, B, T);
    lnl_model_backward(&m);
    double gn = lnl_model_grad_norm(&m);
    char cause[128];
    CHECK(lnl_monitor_check(&mon, loss, gn, cause, sizeof cause) == LNL_STEP_UPDATE, "step");
    lnl_monitor_pre_update(&mon, &m);
    lnl_monitor_post_update(&mon, &m);
    FILE *f = tmpfile();
    lnl_monitor_write_diag(&mon, &m, 1, gn, f);
    long len = ftell(f);
    rewind(f);
    char *text = calloc((size_t)len + 1, 1);
    CHECK(fread(text, 1, (size_t)len, f) == (size_t)len, "read back");
    fclose(f);
    cJSON *j = cJSON_Parse(text);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "diag");
    CHECK(cJSON_IsObject(d), "no diag object: %s", text);
    static const char *const scalars[] = {"layers", "embed_grad_norm", "embed_update_ratio", "embed_update_rms",
                                          "global_grad_norm", "logit_max", "log_z_mean", NULL};
    const char *keys[64];
    int n = keys_of(d, scalars, keys), want[LNL_LM_COUNT];
    int nw = lnl_layer_metrics_select(LNL_LMF_DIAG, 0, want);
    CHECK(n == nw, "the record has %d per-layer arrays, the list %d DIAG metrics", n, nw);
    for (int k = 0; k < n && k < nw; k++) {
        CHECK(!strcmp(keys[k], lnl_layer_metrics[want[k]].key), "array %d is %s, the list says %s", k, keys[k],
              lnl_layer_metrics[want[k]].key);
        int id = lnl_layer_metric_find(keys[k]);
        CHECK(id >= 0, "%s: a diag array not in metrics.h", keys[k]);
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(d, keys[k]);
        CHECK(cJSON_IsArray(a) && id >= 0 && cJSON_GetArraySize(a) == lnl_layer_metric_len(id, L),
              "%s: %d entries", keys[k], cJSON_GetArraySize(a));
        for (const cJSON *x = cJSON_IsArray(a) ? a->child : NULL; x; x = x->next)
            CHECK(cJSON_IsNumber(x), "%s: an entry that is not a number", keys[k]);
    }
    cJSON_Delete(j);
    free(text);
    lnl_monitor_free(&mon);
    lnl_model_free(&m);
}

/* The probe's layer objects: "layer", then the PROBE metrics in POS order, OMIT ones only where
 * measured; block metrics null at entry 0 but grad_norm (0). */
static void check_probe(int sensitivity) {
    LnlModel m = tiny_model("pre");
    int32_t in[B * T], tg[B * T];
    batch(in, tg);
    LnlProbeOptions o = {sensitivity, 3, 1};
    LnlProbeResult r;
    LnlErr e;
    CHECK(lnl_probe_run(&r, &m, in, tg, B, T, &o, &e) == 0, "%s", e.msg);
    char *s = lnl_probe_result_to_json(&r);
    cJSON *j = cJSON_Parse(s);
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(j, "layers");
    CHECK(cJSON_GetArraySize(layers) == m.cfg.n_layer + 1, "layers");
    int ids[LNL_LM_COUNT], nk = lnl_layer_metrics_select(LNL_LMF_PROBE, 1, ids);
    static const char *const none[] = {NULL};
    int l = 0;
    for (const cJSON *x = layers ? layers->child : NULL; x; x = x->next, l++) {
        const char *keys[64];
        int n = keys_of(x, none, keys), k = 0;
        CHECK(n > 0 && !strcmp(keys[0], "layer"), "layers[%d] does not start with layer", l);
        for (int i = 0; i < nk; i++) {
            const LnlLayerMetric *mt = &lnl_layer_metrics[ids[i]];
            if ((mt->flags & LNL_LMF_OMIT) && !(sensitivity && l > 0)) continue;
            k++;
            CHECK(k < n && !strcmp(keys[k], mt->key), "layers[%d]: key %d is %s, the list says %s", l, k,
                  k < n ? keys[k] : "(none)", mt->key);
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(x, mt->key);
            int null_here = (mt->rows == LNL_ROWS_BLOCK && l == 0 && !(mt->flags & LNL_LMF_EMBED_ZERO)) ||
                            ((mt->flags & LNL_LMF_ASKED) && !sensitivity);
            CHECK(null_here ? cJSON_IsNull(v) : cJSON_IsNumber(v), "layers[%d].%s: %s", l, mt->key,
                  null_here ? "not null" : "not a number");
        }
        CHECK(n == k + 1, "layers[%d] has %d keys, the list %d", l, n, k + 1);
    }
    cJSON_Delete(j);
    free(s);
    lnl_probe_result_free(&r);
    lnl_model_free(&m);
}

static void test_probe_layers(void) {
    check_probe(1);
    check_probe(0);
}

/* A study record's layer objects: "layer", then the STUDY metrics in POS order, each read back
 * into its own field. */
static void test_study_layers(void) {
    LnlStudyResult *r = calloc(1, sizeof *r);
    r->diverged_at_step = r->max_rise_step = r->gate_step = r->min_grad_ratio_step = -1;
    r->trained = -1;
    r->nlayers = 3;
    r->layers = calloc(3, sizeof *r->layers);
    int ids[LNL_LM_COUNT], nk = lnl_layer_metrics_select(LNL_LMF_STUDY, 1, ids);
    double *slot[6] = {&r->layers[1].mean_abs, &r->layers[1].var, &r->layers[1].var_data,
                       &r->layers[1].grad_norm, &r->layers[1].sensitivity, &r->layers[1].dx_norm};
    for (int i = 0; i < 6; i++) *slot[i] = i + 1.5;
    char *s = lnl_study_result_to_json(r, NULL, NULL);
    cJSON *j = cJSON_Parse(s);
    const cJSON *x = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "layers"), 1);
    static const char *const none[] = {NULL};
    const char *keys[64];
    int n = keys_of(x, none, keys);
    CHECK(n == nk + 1 && !strcmp(keys[0], "layer"), "layers[1] has %d keys, the list %d", n, nk + 1);
    for (int k = 0; k < nk && k + 1 < n; k++) {
        CHECK(!strcmp(keys[k + 1], lnl_layer_metrics[ids[k]].key), "key %d is %s, the list says %s", k + 1, keys[k + 1],
              lnl_layer_metrics[ids[k]].key);
        CHECK(lnl_study_layer_value(&r->layers[1], ids[k]) ==
                  cJSON_GetObjectItemCaseSensitive(x, lnl_layer_metrics[ids[k]].key)->valuedouble,
              "%s: the field and the JSON differ", lnl_layer_metrics[ids[k]].key);
    }
    double sum = 0;
    for (int k = 0; k < nk; k++) sum += lnl_study_layer_value(&r->layers[1], ids[k]);
    CHECK(nk == 6 && sum == 6 * 1.5 + 15, "every field of LnlStudyLayer is a STUDY metric, once (sum %g)", sum);
    cJSON_Delete(j);
    free(s);
    free(r->layers);
    free(r);
}

/* docs/FORMATS.md's table of per-layer metrics names every key of the list, and no other. */
static void test_docs(void) {
    char *text = NULL;
    size_t len = 0;
    LnlErr e;
    int rc = lnl_read_file("docs/FORMATS.md", &text, &len, &e);
    CHECK(rc == 0, "%s (tests run from the repository root)", e.msg);
    if (rc) return;
    const char *sec = strstr(text, "## Per-layer metrics");
    CHECK(sec != NULL, "docs/FORMATS.md has no section 'Per-layer metrics'");
    if (!sec) goto done;
    const char *end = strstr(sec + 3, "\n## ");
    if (!end) end = text + len;
    for (int i = 0; i < LNL_LM_COUNT; i++) {
        char cell[80];
        snprintf(cell, sizeof cell, "| `%s` |", lnl_layer_metrics[i].key);
        const char *at = strstr(sec, cell);
        CHECK(at && at < end, "the table does not list %s", lnl_layer_metrics[i].key);
    }
    int rows = 0;
    for (const char *p = sec; (p = strstr(p, "\n| `")) && p < end; p++) rows++;
    CHECK(rows == LNL_LM_COUNT, "the table has %d rows, the list %d metrics", rows, LNL_LM_COUNT);
done:
    free(text);
}

int main(void) {
    RUN_TEST(test_list);
    RUN_TEST(test_diag_record);
    RUN_TEST(test_probe_layers);
    RUN_TEST(test_study_layers);
    RUN_TEST(test_docs);
    TEST_MAIN_END();
}
