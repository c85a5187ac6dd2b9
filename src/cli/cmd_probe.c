/* lnlab probe: loads a model and the first batch of a shard, runs the probe of src/diag/probe.h
 * on them (one forward with targets and one backward: the per-layer hidden-state, attention-logit
 * and gradient figures, the output-logit figures, each block's local sensitivity if asked, the
 * growth fits in depth; no update_rms, the probe takes no optimizer step) and prints it as a table
 * or as the JSON object DESIGN.md fixes. It trains nothing and writes no file. */
#include <stdlib.h>

#include "../data/loader.h"
#include "../diag/probe.h"
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

static void print_table(const LnlProbeResult *r) {
    const LnlProbe *p = &r->fig;
    printf("loss %.6f  placement %s  norm %s  dt %g  batch %d  seq %d  logit_max %.6g  log_z_mean %.6g\n", r->loss,
           r->placement, r->norm, r->dt, r->batch, r->seq, p->logits.logit_max, p->logits.log_z_mean);
    printf("%5s %15s %15s %15s %15s %15s %15s %11s\n", "layer", "hidden_mean_abs", "hidden_var", "hidden_var_data",
           "grad_norm", "dx_norm", "attn_logit_max", "sensitivity");
    for (int l = 0; l < p->n; l++) {
        char sb[32] = "-", ab[32] = "-";
        if (r->sigma && l > 0) snprintf(sb, sizeof sb, "%.6g", r->sigma[l]);
        if (l > 0) snprintf(ab, sizeof ab, "%.6g", p->attn_logit_max[l]);
        printf("%5d %15.6g %15.6g %15.6g %15.6g %15.6g %15s %11s\n", l, p->hidden[l].mean_abs, p->hidden[l].var_entry,
               p->hidden[l].var_data, p->grad_norm[l], r->dx_norm[l], ab, sb);
    }
    if (r->sigma)
        printf("sensitivity: spectral norm of d x_l / d x_{l-1} over the batch, %d power iterations\n", r->sens_iters);
    print_growth(&r->growth);
    if (fflush(stdout) != 0) lnl_die(1, "probe: error writing stdout");
}

static void print_json(const LnlProbeResult *r) {
    char *s = lnl_probe_result_to_json(r);
    if (printf("%s\n", s) < 0 || fflush(stdout) != 0) lnl_die(1, "probe: error writing stdout");
    free(s);
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
    /* only the batch's tokens are checked, so a probe of a large training split does not read the
     * whole split; the message names the shard they came from */
    if (lnl_probe_check_tokens(&m, in, tg, B, T, &e)) lnl_die(1, "--data: %s: %s", first_batch_shard(&ld)->path, e.msg);
    lnl_loader_free(&ld);

    LnlProbeOptions o = {sensitivity, (int)sens_iters, (uint64_t)sens_seed};
    LnlProbeResult r;
    if (lnl_probe_run(&r, &m, in, tg, B, T, &o, &e)) lnl_die(2, "%s", e.msg);
    if (json) print_json(&r);
    else print_table(&r);

    lnl_probe_result_free(&r);
    free(in);
    free(tg);
    lnl_model_free(&m);
    return 0;
}
