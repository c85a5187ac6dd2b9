/* lnlab probe: one forward with targets and one backward of a model on the first batch of a
 * shard, then the per-layer hidden-state and gradient figures of src/diag/stats.h, as a table or
 * as the JSON object DESIGN.md fixes. It trains nothing and writes no file. */
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../data/loader.h"
#include "../diag/stats.h"
#include "../io/model_io.h"
#include "model_flags.h"

#define PROBE_DEFAULT_BATCH 4
#define PROBE_MAX_BATCH 65536

typedef struct {
    const LnlModelFlags *mf;
    const LnlFlag *flags;
    int failed; /* the error is about a flag, not about the model file */
} OverrideCtx;

/* Model flags given on the command line win over the file's config. */
static int override_hook(LnlConfig *c, void *ctx, LnlErr *e) {
    OverrideCtx *o = ctx;
    o->failed = lnl_model_flags_override(o->mf, o->flags, c, e) != 0;
    return o->failed ? -1 : 0;
}

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

static void print_json(const LnlModel *m, const LnlProbe *p) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "loss", m->loss);
    cJSON_AddStringToObject(o, "placement", m->cfg.preset);
    cJSON_AddStringToObject(o, "norm", norm_name(&m->cfg));
    cJSON_AddNumberToObject(o, "dt", m->cfg.dt);
    cJSON_AddNumberToObject(o, "batch", m->B);
    cJSON_AddNumberToObject(o, "seq", m->T);
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    for (int l = 0; l < p->n; l++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "layer", l);
        cJSON_AddNumberToObject(x, "hidden_mean_abs", p->hidden[l].mean_abs);
        cJSON_AddNumberToObject(x, "hidden_var", p->hidden[l].var_entry);
        cJSON_AddNumberToObject(x, "hidden_var_data", p->hidden[l].var_data);
        cJSON_AddNumberToObject(x, "grad_norm", p->grad_norm[l]);
        cJSON_AddNullToObject(x, "sensitivity");
        cJSON_AddNumberToObject(x, "dx_norm", m->dx_norm[l]);
        cJSON_AddItemToArray(layers, x);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (printf("%s\n", s) < 0 || fflush(stdout) != 0) lnl_die(1, "probe: error writing stdout");
    free(s);
}

static void print_table(const LnlModel *m, const LnlProbe *p) {
    printf("loss %.6f  placement %s  norm %s  dt %g  batch %d  seq %d\n", m->loss, m->cfg.preset,
           norm_name(&m->cfg), m->cfg.dt, m->B, m->T);
    printf("%5s %15s %15s %15s %15s %15s %11s\n", "layer", "hidden_mean_abs", "hidden_var", "hidden_var_data",
           "grad_norm", "dx_norm", "sensitivity");
    for (int l = 0; l < p->n; l++)
        printf("%5d %15.6g %15.6g %15.6g %15.6g %15.6g %11s\n", l, p->hidden[l].mean_abs, p->hidden[l].var_entry,
               p->hidden[l].var_data, p->grad_norm[l], m->dx_norm[l], "-");
    if (fflush(stdout) != 0) lnl_die(1, "probe: error writing stdout");
}

int cmd_probe(int argc, char **argv) {
    LnlModelFlags mf;
    const char *model = NULL, *data = NULL;
    long long batch = PROBE_DEFAULT_BATCH;
    int json = 0, sensitivity = 0;
    enum { NOWN = 5, NFLAGS = NOWN + LNL_MODEL_NFLAGS };
    LnlFlag flags[NFLAGS] = {
        {"--model", LNL_FLAG_STR, &model, "model file: .safetensors or llm.c .bin (required)", 1, 0, NULL, 0},
        {"--data", LNL_FLAG_STR, &data, "token shard, or a prepared directory (its train split) (required)", 1, 0,
         NULL, 0},
        {"--batch", LNL_FLAG_INT, &batch, "batch size B; the batch is the first B*T+1 tokens", 1, PROBE_MAX_BATCH,
         NULL, 0},
        {"--json", LNL_FLAG_BOOL, &json, "print one JSON object instead of a table", 1, 0, NULL, 0},
        {"--sensitivity", LNL_FLAG_BOOL, &sensitivity, "estimate each block's local sensitivity (not available yet)",
         1, 0, NULL, 0},
    };
    lnl_model_flags_init(&mf, flags + NOWN);
    lnl_model_flags_for_loaded_model(flags + NOWN);
    /* --seq is the probe's T here; the loaded model's n_positions is never changed by a flag. */
    LnlFlag *seq = lnl_flags_find(flags, NFLAGS, "--seq");
    mf.seq = 0;
    seq->lo = 0;
    seq->help = "sequence length T; 0: the model's n_positions";
    int npos;
    lnl_flags_parse_or_exit("probe",
                            "--model M --data SHARD|DIR [--batch B] [--seq T] [--json]\n"
                            "       [model flags: override the file's config]",
                            flags, NFLAGS, argc, argv, NULL, 0, &npos);
    if (sensitivity)
        lnl_die(2, "probe: --sensitivity is not available yet (local sensitivity by power iteration is a later "
                   "feature); run without it");
    if (!model) lnl_die(2, "probe: --model M is required");
    if (!data) lnl_die(2, "probe: --data SHARD|DIR is required");

    LnlErr e;
    LnlModel m;
    OverrideCtx ctx = {&mf, flags + NOWN, 0};
    if (lnl_model_load(&m, model, override_hook, &ctx, &e)) {
        if (ctx.failed) lnl_die(2, "%s", e.msg);
        lnl_die(1, "--model: %s", e.msg);
    }
    const int npos_model = m.cfg.n_positions;
    if (mf.seq > npos_model)
        lnl_die(2, "--seq: %lld is longer than the model's n_positions %d", mf.seq, npos_model);
    const int B = (int)batch, T = mf.seq > 0 ? (int)mf.seq : npos_model;
    if ((long long)B * T > INT_MAX)
        lnl_die(2, "--batch/--seq: B*T = %lld tokens is too many for one batch", (long long)B * T);

    LnlLoader ld;
    if (lnl_loader_open(&ld, data, "train", B, T, 0, &e)) lnl_die(1, "--data: %s", e.msg);
    int32_t *in = lnl_malloc((size_t)B * T * sizeof(int32_t)), *tg = lnl_malloc((size_t)B * T * sizeof(int32_t));
    lnl_loader_next(&ld, in, tg);
    if (check_batch_vocab(&ld, in, tg, m.cfg.vocab_size, &e)) lnl_die(1, "--data: %s", e.msg);
    lnl_loader_free(&ld);

    if (lnl_model_alloc_acts(&m, B, T, &e)) lnl_die(2, "%s", e.msg);
    lnl_model_forward(&m, in, tg, B, T);
    lnl_model_zero_grad(&m);
    lnl_model_backward(&m);
    LnlProbe p;
    lnl_probe_collect(&m, &p);
    if (json) print_json(&m, &p);
    else print_table(&m, &p);

    lnl_probe_free(&p);
    free(in);
    free(tg);
    lnl_model_free(&m);
    return 0;
}
