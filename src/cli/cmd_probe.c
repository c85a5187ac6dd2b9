/* lnlab probe: one forward with targets and one backward of a model on the first batch of a
 * shard, then the per-layer hidden-state, attention-logit and gradient figures and the output-logit
 * figures of src/diag/stats.h (no update_rms: the probe takes no optimizer step), each block's
 * local sensitivity if asked (src/diag/sensitivity.h) and the growth fits in depth
 * (src/diag/growth.h), as a table or as the JSON object DESIGN.md fixes. It trains nothing and
 * writes no file. */
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../data/loader.h"
#include "../diag/growth.h"
#include "../diag/sensitivity.h"
#include "../diag/stats.h"
#include "../io/model_io.h"
#include "model_flags.h"

#define PROBE_DEFAULT_BATCH 4
#define PROBE_MAX_BATCH 65536
#define PROBE_DEFAULT_SENS_ITERS 20

/* The loader reads the first batch from the first shard holding B*T+1 tokens (loader.h). */
static const LnlShard *first_batch_shard(const LnlLoader *l) {
    uint64_t need = (uint64_t)l->B * (uint64_t)l->T + 1;
    for (int i = 0; i < l->nshards; i++)
        if (l->shards[i].ntok >= need) return &l->shards[i];
    return &l->shards[0];
}

/* Only the batch's tokens are checked against the vocabulary, so a probe of a large training
 * split does not read the whole split. Token k of the batch: inputs[k] for k < B*T, then the last
 * target. */
static int check_batch_vocab(const LnlLoader *l, const int32_t *in, const int32_t *tg, int vocab, LnlErr *e) {
    size_t bt = (size_t)l->B * (size_t)l->T;
    for (size_t k = 0; k <= bt; k++) {
        int32_t t = k < bt ? in[k] : tg[bt - 1];
        if (t >= vocab)
            return lnl_err(e, "%s: token %d at index %zu is outside the model's vocabulary (size %d)",
                           first_batch_shard(l)->path, (int)t, k, vocab);
    }
    return 0;
}

static const char *norm_name(const LnlConfig *c) {
    return c->norm == LNL_NORM_RMSNORM ? "rmsnorm" : "layernorm";
}

/* Per-layer sensitivity: sigma[l] for l = 1..L (block l), NULL when not asked. */
typedef struct {
    int iters;
    double *sigma, *rel_change; /* (L + 1); entry 0 unused */
} Sens;

static void add_fit(cJSON *o, const char *name, const LnlFit *f, const char *ka, const char *kb, const char *kc) {
    if (!f->ok) {
        cJSON_AddNullToObject(o, name);
        return;
    }
    cJSON *x = cJSON_AddObjectToObject(o, name);
    cJSON_AddNumberToObject(x, ka, f->a);
    cJSON_AddNumberToObject(x, kb, f->b);
    if (kc) cJSON_AddNumberToObject(x, kc, f->c);
    cJSON_AddNumberToObject(x, "r2", f->r2);
    if (!strcmp(name, "exponential")) cJSON_AddNumberToObject(x, "r2_log", f->r2_log);
}

static void add_growth_fit(cJSON *o, const char *name, const LnlGrowthFit *g, int variance) {
    cJSON *x = cJSON_AddObjectToObject(o, name);
    add_fit(x, "linear", &g->linear, "intercept", "slope", NULL);
    add_fit(x, "quadratic", &g->quadratic, "a", "b", "c");
    add_fit(x, "exponential", &g->exponential, "scale", "rate", NULL);
    cJSON_AddStringToObject(x, "better", g->better_exp ? "exponential" : variance ? "quadratic" : "linear");
}

static void print_json(const LnlModel *m, const LnlProbe *p, const LnlGrowth *g, const Sens *sens) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "loss", m->loss);
    cJSON_AddStringToObject(o, "placement", m->cfg.preset);
    if (m->run_id[0]) cJSON_AddStringToObject(o, "run_id", m->run_id);
    else cJSON_AddNullToObject(o, "run_id");
    cJSON_AddStringToObject(o, "norm", norm_name(&m->cfg));
    cJSON_AddNumberToObject(o, "dt", m->cfg.dt);
    cJSON_AddNumberToObject(o, "batch", m->B);
    cJSON_AddNumberToObject(o, "seq", m->T);
    cJSON_AddNumberToObject(o, "logit_max", p->logits.logit_max);
    cJSON_AddNumberToObject(o, "log_z_mean", p->logits.log_z_mean);
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    for (int l = 0; l < p->n; l++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "layer", l);
        cJSON_AddNumberToObject(x, "hidden_mean_abs", p->hidden[l].mean_abs);
        cJSON_AddNumberToObject(x, "hidden_var", p->hidden[l].var_entry);
        cJSON_AddNumberToObject(x, "hidden_var_data", p->hidden[l].var_data);
        cJSON_AddNumberToObject(x, "grad_norm", p->grad_norm[l]);
        if (sens->sigma && l > 0) cJSON_AddNumberToObject(x, "sensitivity", sens->sigma[l]);
        else cJSON_AddNullToObject(x, "sensitivity");
        cJSON_AddNumberToObject(x, "dx_norm", m->dx_norm[l]);
        if (sens->sigma && l > 0) cJSON_AddNumberToObject(x, "sensitivity_rel_change", sens->rel_change[l]);
        if (l > 0) cJSON_AddNumberToObject(x, "attn_logit_max", p->attn_logit_max[l]);
        else cJSON_AddNullToObject(x, "attn_logit_max");
        cJSON_AddItemToArray(layers, x);
    }
    if (sens->sigma) cJSON_AddNumberToObject(o, "sensitivity_iters", sens->iters);
    else cJSON_AddNullToObject(o, "sensitivity_iters");
    cJSON *gr = cJSON_AddObjectToObject(o, "growth");
    cJSON_AddNumberToObject(gr, "points", g->n);
    add_growth_fit(gr, "hidden_mean_abs", &g->magnitude, 0);
    add_growth_fit(gr, "hidden_var", &g->variance, 1);
    cJSON_AddBoolToObject(gr, "within_peri_bound", g->within_bound);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (printf("%s\n", s) < 0 || fflush(stdout) != 0) lnl_die(1, "probe: error writing stdout");
    free(s);
}

static void print_fit(const char *what, const LnlFit *f) {
    if (f->ok) printf("R^2 %.4f", f->r2);
    else printf("(%s fit undefined)", what);
}

static void print_growth(const LnlGrowth *g) {
    const LnlGrowthFit *a = &g->magnitude, *v = &g->variance;
    printf("growth: hidden_mean_abs linear slope %.4g/layer ", a->linear.b);
    print_fit("linear", &a->linear);
    printf(", exponential rate %.4g/layer ", a->exponential.b);
    print_fit("exponential", &a->exponential);
    printf(": %s fits better\n", a->better_exp ? "exponential" : "linear");
    printf("        hidden_var quadratic %.4g + %.4g l + %.4g l^2 ", v->quadratic.a, v->quadratic.b, v->quadratic.c);
    print_fit("quadratic", &v->quadratic);
    printf(", exponential rate %.4g/layer ", v->exponential.b);
    print_fit("exponential", &v->exponential);
    printf(": %s fits better\n", v->better_exp ? "exponential" : "quadratic");
    printf("        Peri-LN bound (magnitude at most linear in depth, variance at most quadratic): %s\n",
           g->within_bound ? "same shape" : "grows faster than the bound's shape");
}

static void print_table(const LnlModel *m, const LnlProbe *p, const LnlGrowth *g, const Sens *sens) {
    printf("loss %.6f  placement %s  norm %s  dt %g  batch %d  seq %d  logit_max %.6g  log_z_mean %.6g\n", m->loss,
           m->cfg.preset, norm_name(&m->cfg), m->cfg.dt, m->B, m->T, p->logits.logit_max, p->logits.log_z_mean);
    printf("%5s %15s %15s %15s %15s %15s %15s %11s\n", "layer", "hidden_mean_abs", "hidden_var", "hidden_var_data",
           "grad_norm", "dx_norm", "attn_logit_max", "sensitivity");
    for (int l = 0; l < p->n; l++) {
        char sb[32] = "-", ab[32] = "-";
        if (sens->sigma && l > 0) snprintf(sb, sizeof sb, "%.6g", sens->sigma[l]);
        if (l > 0) snprintf(ab, sizeof ab, "%.6g", p->attn_logit_max[l]);
        printf("%5d %15.6g %15.6g %15.6g %15.6g %15.6g %15s %11s\n", l, p->hidden[l].mean_abs, p->hidden[l].var_entry,
               p->hidden[l].var_data, p->grad_norm[l], m->dx_norm[l], ab, sb);
    }
    if (sens->sigma)
        printf("sensitivity: spectral norm of d x_l / d x_{l-1} over the batch, %d power iterations\n", sens->iters);
    print_growth(g);
    if (fflush(stdout) != 0) lnl_die(1, "probe: error writing stdout");
}

int cmd_probe(int argc, char **argv) {
    LnlModelFlags mf;
    const char *model = NULL, *data = NULL;
    long long batch = PROBE_DEFAULT_BATCH;
    long long sens_iters = PROBE_DEFAULT_SENS_ITERS, sens_seed = 1;
    int json = 0, sensitivity = 0;
    enum { NOWN = 7, NFLAGS = NOWN + LNL_MODEL_NFLAGS };
    LnlFlag flags[NFLAGS] = {
        {"--model", LNL_FLAG_STR, &model, "model file: .safetensors or llm.c .bin (required)", 1, 0, NULL, 0},
        {"--data", LNL_FLAG_STR, &data, "token shard, or a prepared directory (its train split) (required)", 1, 0,
         NULL, 0},
        {"--batch", LNL_FLAG_INT, &batch, "batch size B; the batch is the first B*T+1 tokens", 1, PROBE_MAX_BATCH,
         NULL, 0},
        {"--json", LNL_FLAG_BOOL, &json, "print one JSON object instead of a table", 1, 0, NULL, 0},
        {"--sensitivity", LNL_FLAG_BOOL, &sensitivity,
         "estimate each block's local sensitivity: the spectral norm of d x_l / d x_{l-1} by power iteration", 1, 0,
         NULL, 0},
        {"--sensitivity-iters", LNL_FLAG_INT, &sens_iters, "power iterations on J^T J per block (with --sensitivity)",
         0, 100000, NULL, 0},
        {"--sensitivity-seed", LNL_FLAG_INT, &sens_seed, "seed of the power iteration's random start", 0, 1LL << 62,
         NULL, 0},
    };
    lnl_model_flags_init(&mf, flags + NOWN);
    lnl_model_flags_for_evaluation(&mf, flags + NOWN);
    int npos;
    lnl_flags_parse_or_exit("probe",
                            "--model M --data SHARD|DIR [--batch B] [--seq T] [--json] [--sensitivity]\n"
                            "       [model flags: override the file's config]",
                            flags, NFLAGS, argc, argv, NULL, 0, &npos);
    if (!model) lnl_die(2, "probe: --model M is required");
    if (!data) lnl_die(2, "probe: --data SHARD|DIR is required");

    LnlErr e;
    LnlModel m;
    lnl_model_flags_load_or_exit(&m, model, data, &mf, flags + NOWN);
    const int B = (int)batch, T = lnl_model_flags_seq_or_exit(&m, &mf, batch);

    LnlLoader ld;
    if (lnl_loader_open(&ld, data, "train", B, T, 0, &e)) lnl_die(1, "--data: %s", e.msg);
    int32_t *in = lnl_malloc((size_t)B * T * sizeof(int32_t)), *tg = lnl_malloc((size_t)B * T * sizeof(int32_t));
    lnl_loader_next(&ld, in, tg);
    if (check_batch_vocab(&ld, in, tg, m.cfg.vocab_size, &e)) lnl_die(1, "--data: %s", e.msg);
    lnl_loader_free(&ld);

    if (lnl_model_alloc_acts(&m, B, T, &e)) lnl_die(2, "%s", e.msg);
    m.diag_forward = 1;
    lnl_model_forward(&m, in, tg, B, T);
    lnl_model_zero_grad(&m);
    lnl_model_backward(&m);
    LnlProbe p;
    lnl_probe_collect(&m, &p);
    Sens sens = {(int)sens_iters, NULL, NULL};
    if (sensitivity) {
        /* after the figures above: only the backward scratch is reused, gradients stay */
        const int L = m.cfg.n_layer;
        sens.sigma = lnl_calloc((size_t)L + 1, sizeof(double));
        sens.rel_change = lnl_calloc((size_t)L + 1, sizeof(double));
        LnlSensWork w;
        lnl_sens_work_init(&w, &m);
        for (int l = 1; l <= L; l++) {
            LnlSensResult r = lnl_block_sensitivity(&m, &w, l - 1, sens.iters, (uint64_t)sens_seed);
            sens.sigma[l] = r.sigma;
            sens.rel_change[l] = r.rel_change;
        }
        lnl_sens_work_free(&w);
    }
    double *mag = lnl_malloc(sizeof(double) * (size_t)p.n), *var = lnl_malloc(sizeof(double) * (size_t)p.n);
    for (int l = 0; l < p.n; l++) {
        mag[l] = p.hidden[l].mean_abs;
        var[l] = p.hidden[l].var_entry;
    }
    LnlGrowth g = lnl_growth(mag, var, p.n);
    if (json) print_json(&m, &p, &g, &sens);
    else print_table(&m, &p, &g, &sens);

    free(mag);
    free(var);
    free(sens.sigma);
    free(sens.rel_change);
    lnl_probe_free(&p);
    free(in);
    free(tg);
    lnl_model_free(&m);
    return 0;
}
