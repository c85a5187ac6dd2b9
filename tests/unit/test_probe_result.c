/* The probe as a structure (src/diag/probe.h): lnl_probe_run against the steps it stands for
 * (forward, backward, lnl_probe_collect, lnl_block_sensitivity, lnl_growth), the JSON round trip
 * run -> to_json -> from_json -> the same structure (to the JSON's precision) and the same text,
 * and from_json's errors, each naming the field. */
#include "harness.h"

#include <cjson/cJSON.h>
#include <float.h>

#include "common/perturb.h"
#include "diag/probe.h"
#include "diag/sensitivity.h"
#include "model/model.h"

enum { B = 2, T = 5, SENS_ITERS = 4, SENS_SEED = 7 };

static int make_model(LnlModel *m, const char *preset) {
    LnlConfig *c = malloc(sizeof *c);
    lnl_config_default(c);
    c->n_layer = 3;
    c->n_head = 2;
    c->n_embd = 8;
    c->n_positions = 6;
    c->vocab_size = 11;
    c->init_std = 0.3f;
    LnlErr e;
    int r = lnl_config_preset(c, preset, &e);
    CHECK(r == 0, "preset %s: %s", preset, e.msg);
    if (r == 0) {
        r = lnl_model_create(m, c, &e);
        CHECK(r == 0, "%s: %s", preset, e.msg);
    }
    free(c);
    if (r) return -1;
    lnl_model_init_weights(m, 3);
    lnl_test_perturb(m, 4);
    return 0;
}

/* A batch as the loader makes it: tg is in shifted by one. */
static void make_batch(int32_t *in, int32_t *tg, int vocab) {
    int32_t tok[B * T + 1];
    LnlRng rng;
    lnl_rng_seed(&rng, 9);
    for (int i = 0; i <= B * T; i++) tok[i] = (int32_t)lnl_rng_below(&rng, (uint64_t)vocab);
    for (int i = 0; i < B * T; i++) in[i] = tok[i], tg[i] = tok[i + 1];
}

/* Equal up to what the JSON keeps, or both NAN (a figure the JSON writes as null). cJSON prints 15
 * significant digits when they read back within DBL_EPSILON (relative) of the value, else 17. */
static int same(double a, double b) {
    return fabs(a - b) <= DBL_EPSILON * fmax(fabs(a), fabs(b)) || (isnan(a) && isnan(b));
}

static int same_fit(const LnlFit *a, const LnlFit *b) {
    return a->ok == b->ok && same(a->a, b->a) && same(a->b, b->b) && same(a->c, b->c) && same(a->r2, b->r2) &&
           same(a->rss, b->rss) && same(a->r2_log, b->r2_log);
}

static int same_growth_fit(const LnlGrowthFit *a, const LnlGrowthFit *b) {
    return same_fit(&a->linear, &b->linear) && same_fit(&a->quadratic, &b->quadratic) &&
           same_fit(&a->exponential, &b->exponential) && a->better_exp == b->better_exp;
}

/* Every field of two probes; names the first that differs (NULL: none). */
static const char *probe_diff(const LnlProbeResult *a, const LnlProbeResult *b) {
    if (!same(a->loss, b->loss)) return "loss";
    if (strcmp(a->placement, b->placement)) return "placement";
    if (strcmp(a->run_id, b->run_id)) return "run_id";
    if (strcmp(a->norm, b->norm)) return "norm";
    if (!same(a->dt, b->dt)) return "dt";
    if (a->batch != b->batch || a->seq != b->seq) return "batch/seq";
    if (a->fig.n != b->fig.n) return "number of layers";
    if (!same(a->fig.logits.logit_max, b->fig.logits.logit_max)) return "logit_max";
    if (!same(a->fig.logits.log_z_mean, b->fig.logits.log_z_mean)) return "log_z_mean";
    for (int l = 0; l < a->fig.n; l++) {
        if (!same(a->fig.hidden[l].mean_abs, b->fig.hidden[l].mean_abs)) return "hidden_mean_abs";
        if (!same(a->fig.hidden[l].var_entry, b->fig.hidden[l].var_entry)) return "hidden_var";
        if (!same(a->fig.hidden[l].var_data, b->fig.hidden[l].var_data)) return "hidden_var_data";
        if (!same(a->fig.grad_norm[l], b->fig.grad_norm[l])) return "grad_norm";
        if (!same(a->fig.attn_logit_max[l], b->fig.attn_logit_max[l])) return "attn_logit_max";
        if (!same(a->dx_norm[l], b->dx_norm[l])) return "dx_norm";
    }
    if (!a->sigma != !b->sigma) return "sensitivity measured or not";
    if (a->sigma) {
        if (a->sens_iters != b->sens_iters) return "sensitivity_iters";
        for (int l = 0; l < a->fig.n; l++)
            if (!same(a->sigma[l], b->sigma[l]) || !same(a->rel_change[l], b->rel_change[l])) return "sensitivity";
    }
    if (a->growth.n != b->growth.n || a->growth.within_bound != b->growth.within_bound) return "growth";
    if (!same_growth_fit(&a->growth.magnitude, &b->growth.magnitude)) return "growth.hidden_mean_abs";
    if (!same_growth_fit(&a->growth.variance, &b->growth.variance)) return "growth.hidden_var";
    return NULL;
}

/* The run against the steps it stands for, done here by hand on a second copy of the model. */
static void test_run_matches_steps(void) {
    const char *presets[] = {"pre", "post", "peri"};
    for (int k = 0; k < 3; k++) {
        LnlModel m, h;
        if (make_model(&m, presets[k]) || make_model(&h, presets[k])) return;
        int32_t in[B * T], tg[B * T];
        make_batch(in, tg, m.cfg.vocab_size);
        LnlProbeOptions o = {1, SENS_ITERS, SENS_SEED};
        LnlProbeResult r;
        LnlErr e;
        int rc = lnl_probe_run(&r, &m, in, tg, B, T, &o, &e);
        CHECK(rc == 0, "%s: %s", presets[k], e.msg);
        if (rc) return;
        CHECK(m.diag_forward == 0, "%s: the run left diag_forward set", presets[k]);

        CHECK(lnl_model_alloc_acts(&h, B, T, &e) == 0, "%s", e.msg);
        h.diag_forward = 1;
        lnl_model_forward(&h, in, tg, B, T);
        lnl_model_zero_grad(&h);
        lnl_model_backward(&h);
        LnlProbe p;
        lnl_probe_collect(&h, &p);
        const int L = h.cfg.n_layer;
        CHECK(r.fig.n == L + 1 && r.batch == B && r.seq == T, "%s: n %d batch %d seq %d", presets[k], r.fig.n,
              r.batch, r.seq);
        CHECK(r.loss == h.loss && !strcmp(r.placement, presets[k]) && r.dt == h.cfg.dt && !strcmp(r.norm, "layernorm"),
              "%s: loss %g placement %s dt %g norm %s", presets[k], r.loss, r.placement, r.dt, r.norm);
        CHECK(same(r.fig.logits.logit_max, p.logits.logit_max), "%s: logit_max", presets[k]);
        double mag[L + 1], var[L + 1];
        for (int l = 0; l <= L; l++) {
            CHECK(r.fig.hidden[l].mean_abs == p.hidden[l].mean_abs &&
                      r.fig.hidden[l].var_entry == p.hidden[l].var_entry &&
                      r.fig.hidden[l].var_data == p.hidden[l].var_data && r.fig.grad_norm[l] == p.grad_norm[l] &&
                      same(r.fig.attn_logit_max[l], p.attn_logit_max[l]) && r.dx_norm[l] == h.dx_norm[l],
                  "%s: layer %d figures differ from the steps by hand", presets[k], l);
            mag[l] = p.hidden[l].mean_abs;
            var[l] = p.hidden[l].var_entry;
        }
        CHECK(isnan(r.sigma[0]) && isnan(r.fig.attn_logit_max[0]), "%s: entry 0 has no block", presets[k]);
        LnlSensWork w;
        lnl_sens_work_init(&w, &h);
        for (int l = 1; l <= L; l++) {
            LnlSensResult s = lnl_block_sensitivity(&h, &w, l - 1, SENS_ITERS, SENS_SEED);
            CHECK(r.sigma[l] == s.sigma && r.rel_change[l] == s.rel_change && s.sigma > 0,
                  "%s: block %d sensitivity %g, by hand %g", presets[k], l, r.sigma[l], s.sigma);
        }
        lnl_sens_work_free(&w);
        LnlGrowth g = lnl_growth(mag, var, L + 1);
        CHECK(g.n == r.growth.n && g.within_bound == r.growth.within_bound &&
                  g.magnitude.better_exp == r.growth.magnitude.better_exp &&
                  g.magnitude.linear.b == r.growth.magnitude.linear.b &&
                  g.magnitude.exponential.b == r.growth.magnitude.exponential.b &&
                  g.variance.quadratic.c == r.growth.variance.quadratic.c &&
                  g.variance.exponential.r2 == r.growth.variance.exponential.r2,
              "%s: growth fits differ from lnl_growth", presets[k]);
        CHECK(isnan(r.growth.magnitude.linear.rss), "%s: rss is not reported, so it should be NAN", presets[k]);
        lnl_probe_free(&p);
        lnl_probe_result_free(&r);
        lnl_model_free(&m);
        lnl_model_free(&h);
    }
}

/* run -> to_json -> from_json: the same structure, and it writes the same text again. */
static void test_round_trip(void) {
    const char *presets[] = {"pre", "post", "peri", "b2t", "hybrid", "rezero"};
    for (int k = 0; k < 6; k++)
        for (int sens = 0; sens <= 1; sens++) {
            LnlModel m;
            if (make_model(&m, presets[k])) return;
            if (k % 2) snprintf(m.run_id, sizeof m.run_id, "run%d", k);
            int32_t in[B * T], tg[B * T];
            make_batch(in, tg, m.cfg.vocab_size);
            LnlProbeOptions o = {sens, SENS_ITERS, SENS_SEED};
            LnlProbeResult r, back;
            LnlErr e;
            if (lnl_probe_run(&r, &m, in, tg, B, T, &o, &e)) {
                CHECK(0, "%s: %s", presets[k], e.msg);
                lnl_model_free(&m);
                continue;
            }
            char *text = lnl_probe_result_to_json(&r);
            int rc = lnl_probe_result_from_json(&back, text, "probe", &e);
            CHECK(rc == 0, "%s (sensitivity %d): %s", presets[k], sens, e.msg);
            if (rc == 0) {
                const char *d = probe_diff(&r, &back);
                CHECK(d == NULL, "%s (sensitivity %d): %s differs after the round trip", presets[k], sens, d);
                char *again = lnl_probe_result_to_json(&back);
                CHECK(!strcmp(text, again), "%s (sensitivity %d): the text differs:\n%s\n%s", presets[k], sens, text,
                      again);
                free(again);
                lnl_probe_result_free(&back);
            }
            free(text);
            lnl_probe_result_free(&r);
            lnl_model_free(&m);
        }
}

/* A probe's JSON with sensitivity, for the error cases (caller frees). */
static char *probe_text(void) {
    LnlModel m;
    if (make_model(&m, "peri")) return NULL;
    int32_t in[B * T], tg[B * T];
    make_batch(in, tg, m.cfg.vocab_size);
    LnlProbeOptions o = {1, SENS_ITERS, SENS_SEED};
    LnlProbeResult r;
    LnlErr e;
    int rc = lnl_probe_run(&r, &m, in, tg, B, T, &o, &e);
    CHECK(rc == 0, "%s", e.msg);
    lnl_model_free(&m);
    if (rc) return NULL;
    char *text = lnl_probe_result_to_json(&r);
    lnl_probe_result_free(&r);
    return text;
}

/* The object a dotted path names inside j ("growth.hidden_var", "layers.2"), or j for "". */
static cJSON *at(cJSON *j, const char *path) {
    char buf[96];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k && j; k = strtok_r(NULL, ".", &save))
        j = cJSON_IsArray(j) ? cJSON_GetArrayItem(j, atoi(k)) : cJSON_GetObjectItemCaseSensitive(j, k);
    return j;
}

/* from_json of j must fail with a message containing want. */
static void expect_error(cJSON *j, const char *want, const char *why) {
    char *text = cJSON_PrintUnformatted(j);
    LnlProbeResult r;
    LnlErr e;
    int rc = lnl_probe_result_from_json(&r, text, "probe.json", &e);
    CHECK(rc != 0, "%s: read without an error", why);
    if (rc != 0) CHECK(strstr(e.msg, want) != NULL, "%s: message '%s' lacks '%s'", why, e.msg, want);
    else lnl_probe_result_free(&r);
    free(text);
}

static void test_from_json_missing_fields(void) {
    static const struct {
        const char *parent, *key, *want;
    } cases[] = {
        {"", "loss", "missing field 'loss'"},
        {"", "placement", "missing field 'placement'"},
        {"", "run_id", "missing field 'run_id'"},
        {"", "batch", "missing field 'batch'"},
        {"", "log_z_mean", "missing field 'log_z_mean'"},
        {"", "layers", "missing field 'layers'"},
        {"", "sensitivity_iters", "missing field 'sensitivity_iters'"},
        {"", "growth", "missing field 'growth'"},
        {"layers.2", "grad_norm", "missing field 'layers[2].grad_norm'"},
        {"layers.0", "attn_logit_max", "missing field 'layers[0].attn_logit_max'"},
        {"layers.3", "sensitivity_rel_change", "missing field 'layers[3].sensitivity_rel_change'"},
        {"growth", "points", "missing field 'growth.points'"},
        {"growth", "within_peri_bound", "missing field 'growth.within_peri_bound'"},
        {"growth.hidden_var", "quadratic", "missing field 'growth.hidden_var.quadratic'"},
        {"growth.hidden_mean_abs.exponential", "r2_log", "missing field 'growth.hidden_mean_abs.exponential.r2_log'"},
        {"growth.hidden_var.quadratic", "c", "missing field 'growth.hidden_var.quadratic.c'"},
        {"growth.hidden_mean_abs", "better", "missing field 'growth.hidden_mean_abs.better'"},
    };
    char *text = probe_text();
    if (!text) return;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *j = cJSON_Parse(text);
        cJSON *parent = at(j, cases[i].parent);
        CHECK(cJSON_GetObjectItemCaseSensitive(parent, cases[i].key) != NULL, "%s.%s is not in the probe's JSON",
              cases[i].parent, cases[i].key);
        cJSON_DeleteItemFromObjectCaseSensitive(parent, cases[i].key);
        expect_error(j, cases[i].want, cases[i].want);
        cJSON_Delete(j);
    }
    free(text);
}

static void test_from_json_bad_fields(void) {
    char *text = probe_text();
    if (!text) return;
    cJSON *j;
#define BAD(parent, key, item, want)                                      \
    do {                                                                  \
        j = cJSON_Parse(text);                                            \
        cJSON_ReplaceItemInObjectCaseSensitive(at(j, parent), key, item); \
        expect_error(j, want, parent "." key);                            \
        cJSON_Delete(j);                                                  \
    } while (0)
    BAD("", "loss", cJSON_CreateString("4.5"), "field 'loss' is not a number or null");
    BAD("", "batch", cJSON_CreateNumber(2.5), "field 'batch' is not an integer");
    BAD("", "seq", cJSON_CreateNull(), "field 'seq' is not an integer");
    BAD("", "placement", cJSON_CreateNumber(1), "field 'placement' is not a string");
    BAD("", "layers", cJSON_CreateArray(), "field 'layers' is not a list of at least 2 entries");
    BAD("layers.1", "layer", cJSON_CreateNumber(2), "field 'layers[1].layer' is 2, expected 1");
    BAD("layers.0", "sensitivity", cJSON_CreateNumber(1), "field 'layers[0].sensitivity' is a number");
    BAD("growth", "points", cJSON_CreateNumber(9), "field 'growth.points' is 9");
    BAD("growth", "within_peri_bound", cJSON_CreateNumber(1), "field 'growth.within_peri_bound' is not true or false");
    BAD("growth.hidden_var", "better", cJSON_CreateString("linear"), "field 'growth.hidden_var.better' is \"linear\"");
    BAD("growth.hidden_mean_abs", "linear", cJSON_CreateArray(),
        "field 'growth.hidden_mean_abs.linear' is not an object");
#undef BAD
    /* without sensitivity_iters, a block's sensitivity must be null */
    j = cJSON_Parse(text);
    cJSON_ReplaceItemInObjectCaseSensitive(j, "sensitivity_iters", cJSON_CreateNull());
    expect_error(j, "field 'layers[1].sensitivity' is a number, but sensitivity_iters is null", "sensitivity_iters");
    cJSON_Delete(j);
    free(text);
    LnlProbeResult r;
    LnlErr e;
    CHECK(lnl_probe_result_from_json(&r, "[1, 2]", "probe.json", &e) != 0 &&
              strstr(e.msg, "probe.json: not a JSON object"),
          "a list: %s", e.msg);
    CHECK(lnl_probe_result_from_json(&r, "{\"loss\": ", "probe.json", &e) != 0, "cut short");
}

/* A fit the probe could not make is null in the JSON and ok = 0 when read back. */
static void test_from_json_null_fit(void) {
    char *orig = probe_text();
    if (!orig) return;
    cJSON *j = cJSON_Parse(orig);
    free(orig);
    cJSON_ReplaceItemInObjectCaseSensitive(at(j, "growth.hidden_var"), "exponential", cJSON_CreateNull());
    cJSON_ReplaceItemInObjectCaseSensitive(at(j, "growth.hidden_var"), "better", cJSON_CreateString("quadratic"));
    cJSON_ReplaceItemInObjectCaseSensitive(at(j, "layers.2"), "grad_norm", cJSON_CreateNull());
    char *text = cJSON_PrintUnformatted(j);
    LnlProbeResult r;
    LnlErr e;
    int rc = lnl_probe_result_from_json(&r, text, "probe.json", &e);
    CHECK(rc == 0, "%s", e.msg);
    if (rc == 0) {
        CHECK(!r.growth.variance.exponential.ok && !r.growth.variance.better_exp && r.growth.variance.quadratic.ok,
              "null fit read as ok %d", r.growth.variance.exponential.ok);
        CHECK(isnan(r.fig.grad_norm[2]), "null figure read as %g", r.fig.grad_norm[2]);
        char *again = lnl_probe_result_to_json(&r);
        CHECK(!strcmp(text, again), "the text differs:\n%s\n%s", text, again);
        free(again);
        lnl_probe_result_free(&r);
    }
    free(text);
    cJSON_Delete(j);
}

/* Tokens outside the vocabulary: an error naming the token and its index in the batch, nothing
 * to free. */
static void test_run_rejects_tokens(void) {
    LnlModel m;
    if (make_model(&m, "pre")) return;
    int32_t in[B * T], tg[B * T];
    make_batch(in, tg, m.cfg.vocab_size);
    LnlProbeOptions o = {0, SENS_ITERS, SENS_SEED};
    LnlProbeResult r;
    LnlErr e;
    tg[B * T - 1] = 300;
    CHECK(lnl_probe_run(&r, &m, in, tg, B, T, &o, &e) != 0 && strstr(e.msg, "token 300 at index 10 ") &&
              strstr(e.msg, "(size 11)"),
          "last target: %s", e.msg);
    CHECK(r.fig.hidden == NULL && r.dx_norm == NULL && r.sigma == NULL, "a failed run holds memory");
    tg[B * T - 1] = 1;
    in[3] = -1;
    CHECK(lnl_probe_run(&r, &m, in, tg, B, T, &o, &e) != 0 && strstr(e.msg, "token -1 at index 3 "), "input: %s",
          e.msg);
    lnl_model_free(&m);
}

int main(void) {
    RUN_TEST(test_run_matches_steps);
    RUN_TEST(test_round_trip);
    RUN_TEST(test_from_json_missing_fields);
    RUN_TEST(test_from_json_bad_fields);
    RUN_TEST(test_from_json_null_fit);
    RUN_TEST(test_run_rejects_tokens);
    TEST_MAIN_END();
}
