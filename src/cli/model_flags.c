/* Model-describing flags shared by train, probe, eval, sample and the test tools. */
#include "model_flags.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../data/dataset.h"

enum { F_SIZE, F_PRESET, F_NORM, F_DT, F_LAYERS, F_HEADS, F_DIM, F_SEQ, F_VOCAB, F_EMBED_NORM, F_EMBED_SCALE,
       F_SPEC, F_MIX, F_BN_STEPS, F_INIT_STD, F_RESID_SCALE, F_BIAS, F_EPS, F_NORM_GAIN, F_ALPHA_ATTN, F_ALPHA_MLP,
       F_ALPHA_FINAL, F_EMBED_SCALE_LEARNED, F_ATTN_SOFTCAP, F_QK_NORM, F_LOGIT_SOFTCAP };

void lnl_model_flags_init(LnlModelFlags *mf, LnlFlag *f) {
    memset(mf, 0, sizeof *mf);
    mf->size = NULL;
    mf->preset = "pre";
    mf->norm = "layernorm";
    mf->spec = NULL;
    mf->layers = 6;
    mf->heads = 6;
    mf->dim = 384;
    mf->seq = 256;
    mf->vocab = 50257;
    mf->branchnorm_steps = 1000;
    mf->dt = 1.0;
    mf->mix_ratio = 0.25;
    mf->init_std = mf->resid_scale_init = mf->bias = NULL;
    mf->eps = 1e-5;
    mf->norm_gain = "plain";
    float alpha[3];
    lnl_norm_alpha_default(LNL_NORM_DYT, alpha);
    mf->alpha[LNL_ALPHA_ATTN] = alpha[LNL_ALPHA_ATTN];
    mf->alpha[LNL_ALPHA_MLP] = alpha[LNL_ALPHA_MLP];
    mf->alpha[LNL_ALPHA_FINAL] = alpha[LNL_ALPHA_FINAL];
    mf->attn_softcap = 0.0;
    mf->qk_norm = NULL;
    mf->logit_softcap = 0;
    LnlFlag t[LNL_MODEL_NFLAGS] = {
        [F_SIZE] = {"--model-size", LNL_FLAG_STR, &mf->size, "named size; sets layers/heads/dim", 1, 0, LNL_SIZES, 0},
        [F_PRESET] = {"--preset", LNL_FLAG_STR, &mf->preset, "normalization placement preset", 1, 0, LNL_PRESETS, 0},
        [F_NORM] = {"--norm", LNL_FLAG_STR, &mf->norm, "normalization kind: LayerNorm, RMSNorm, Dynamic Tanh, Dynamic erf, docs/PLACEMENTS.md (default: layernorm; olmo2, gemma2: rmsnorm)", 1, 0, LNL_NORMS, 0},
        [F_NORM_GAIN] = {"--norm-gain", LNL_FLAG_STR, &mf->norm_gain, "every norm's gain: w, or 1 + w with w initialized to 0 (default: plain; gemma2: one-plus)", 1, 0, LNL_NORM_GAINS, 0},
        [F_ALPHA_ATTN] = {"--norm-alpha-attn", LNL_FLAG_FLOAT, &mf->alpha[LNL_ALPHA_ATTN], "dyt/derf: initial a of the attention sub-layer's norms (default: 0.8 for dyt, LLaMA-DyT; 1 for derf, its nanoGPT patch)", -100, 100, NULL, 0},
        [F_ALPHA_MLP] = {"--norm-alpha-mlp", LNL_FLAG_FLOAT, &mf->alpha[LNL_ALPHA_MLP], "dyt/derf: initial a of the MLP sub-layer's norms (default: 0.2 for dyt, 1 for derf)", -100, 100, NULL, 0},
        [F_ALPHA_FINAL] = {"--norm-alpha-final", LNL_FLAG_FLOAT, &mf->alpha[LNL_ALPHA_FINAL], "dyt/derf: initial a of ln_f and ln_e (default: 0.2 for dyt, 1 for derf)", -100, 100, NULL, 0},
        [F_EMBED_SCALE_LEARNED] = {"--embed-scale-learned", LNL_FLAG_BOOL, &mf->embed_scale_learned, "multiply the embedding by a learned scalar embed_scale, initialized to sqrt(C) (the DyT and Derf language models)", 1, 0, NULL, 0},
        [F_DT] = {"--dt", LNL_FLAG_FLOAT, &mf->dt, "residual step: x + dt * branch", 0, 100, NULL, 0},
        [F_LAYERS] = {"--layers", LNL_FLAG_INT, &mf->layers, "number of blocks L", 1, LNL_MAX_LAYERS, NULL, 0},
        [F_HEADS] = {"--heads", LNL_FLAG_INT, &mf->heads, "attention heads (divides --dim)", 1, 4096, NULL, 0},
        [F_DIM] = {"--dim", LNL_FLAG_INT, &mf->dim, "model width C", 1, 65536, NULL, 0},
        [F_SEQ] = {"--seq", LNL_FLAG_INT, &mf->seq, "sequence length T (and the model's n_positions when created)", 1, 1 << 20, NULL, 0},
        [F_VOCAB] = {"--vocab", LNL_FLAG_INT, &mf->vocab, "vocabulary size V", 2, 1 << 24, NULL, 0},
        [F_EMBED_NORM] = {"--embed-norm", LNL_FLAG_BOOL, &mf->embed_norm, "normalize right after the embedding; --embed-norm=false turns a preset's off (default: the preset's)", 1, 0, NULL, 0},
        [F_EMBED_SCALE] = {"--embed-scale", LNL_FLAG_BOOL, &mf->embed_scale, "multiply the embedding by sqrt(C); --embed-scale=false turns a preset's off (default: the preset's)", 1, 0, NULL, 0},
        [F_SPEC] = {"--spec", LNL_FLAG_STR, &mf->spec, "spec overrides KEY=VALUE[,...], KEY=[attn.|mlp.]field[@A-B] (docs/PLACEMENTS.md)", 1, 0, NULL, 0},
        [F_MIX] = {"--mix-ratio", LNL_FLAG_FLOAT, &mf->mix_ratio, "Mix-LN: share of layers that are Post-LN", 0, 1, NULL, 0},
        [F_BN_STEPS] = {"--branchnorm-steps", LNL_FLAG_INT, &mf->branchnorm_steps, "BranchNorm: steps over which the branch norm anneals 1 -> 0", 1, 1000000000, NULL, 0},
        [F_INIT_STD] = {"--init-std", LNL_FLAG_STR, &mf->init_std, "std of the normal init of matrices and embeddings: a number in (0, 10], or 1/sqrt(C) (default: the preset's)", 1, 0, NULL, 0},
        [F_RESID_SCALE] = {"--resid-scale-init", LNL_FLAG_STR, &mf->resid_scale_init, "GPT-2's extra 1/sqrt(2L) on the init std of the residual output projections (default: the preset's)", 1, 0, "on|off", 0},
        [F_BIAS] = {"--bias", LNL_FLAG_STR, &mf->bias, "biases of the attention and MLP linear layers (default: the preset's)", 1, 0, "on|off", 0},
        [F_EPS] = {"--eps", LNL_FLAG_FLOAT, &mf->eps, "normalization epsilon (default: 1e-5; olmo2, gemma2: 1e-6)", 1e-12, 1, NULL, 0},
        [F_ATTN_SOFTCAP] = {"--attn-softcap", LNL_FLAG_FLOAT, &mf->attn_softcap, "attention-logit softcap S: scores S tanh(scores / S) before the softmax; 0: off (default: 0; gemma2: 50)", 0, 1e6, NULL, 0},
        [F_QK_NORM] = {"--qk-norm", LNL_FLAG_STR, &mf->qk_norm, "norms on q and k after c_attn, per head or over all C channels, kind --norm (default: the preset's, off)", 1, 0, LNL_QK_NORM_NAMES, 0},
        [F_LOGIT_SOFTCAP] = {"--logit-softcap", LNL_FLAG_FLOAT, &mf->logit_softcap, "final logit softcap S: the LM head's logits become S tanh(z/S) in training and decoding; 0: off (default: 0; gemma2: 30)", 0, LNL_LOGIT_SOFTCAP_MAX, NULL, 0},
    };
    memcpy(f, t, sizeof t);
}

void lnl_model_flags_for_loaded_model(LnlFlag *flags) {
    static char help[LNL_MODEL_NFLAGS][200];
    for (int i = 0; i < LNL_MODEL_NFLAGS; i++) {
        const char *own = strstr(flags[i].help, " (default: "); /* a new model's default, not a file's */
        int len = own ? (int)(own - flags[i].help) : (int)strlen(flags[i].help);
        snprintf(help[i], sizeof help[i], "%.*s (default: the model file's)", len, flags[i].help);
        flags[i].help = help[i];
    }
}

/* What a loaded model's file decides beyond its placement: which tensors exist (biases, ln_e),
 * the embedding scale, and the init rules it was made with. */
typedef struct {
    uint8_t embed_norm, embed_scale, std_rule, resid_scale;
    float std;
    int bias;    /* lnl_config_bias */
    int qk_norm; /* lnl_config_qk_norm */
} FileExtras;

static FileExtras file_extras(const LnlConfig *c) {
    FileExtras x = {c->embed_norm, c->embed_scale, c->init_std_rule, c->init_resid_scale, c->init_std,
                    lnl_config_bias(c), lnl_config_qk_norm(c)};
    return x;
}

static void restore_extras(LnlConfig *c, const FileExtras *x, const LnlFlag *f) {
    if (!f[F_EMBED_NORM].seen) c->embed_norm = x->embed_norm;
    if (!f[F_EMBED_SCALE].seen) c->embed_scale = x->embed_scale;
    if (!f[F_INIT_STD].seen) {
        c->init_std_rule = x->std_rule;
        c->init_std = x->std;
    }
    if (!f[F_RESID_SCALE].seen) c->init_resid_scale = x->resid_scale;
    if (!f[F_BIAS].seen && x->bias >= 0) lnl_config_set_bias(c, x->bias);
    if (!f[F_QK_NORM].seen && x->qk_norm >= 0) lnl_config_set_qk_norm(c, x->qk_norm);
}

/* The norm kind, gain, eps, DyT / Derf's a and the softcaps: every one given on the command line,
 * and with only_seen 0 the defaults of the others too. */
static int norm_flags(const LnlModelFlags *mf, const LnlFlag *f, LnlConfig *c, int only_seen, LnlErr *e) {
#define GIVEN(i) (!only_seen || f[i].seen)
    if (GIVEN(F_EPS)) c->eps = (float)mf->eps;
    if (GIVEN(F_NORM)) {
        LnlNormKind kind;
        if (lnl_norm_parse(mf->norm, &kind)) return lnl_err(e, "--norm: unknown kind '%s' (one of %s)", mf->norm, LNL_NORMS);
        lnl_config_set_norm(c, kind);
    }
    if (GIVEN(F_NORM_GAIN)) {
        LnlNormGain gain;
        if (lnl_norm_gain_parse(mf->norm_gain, &gain))
            return lnl_err(e, "--norm-gain: unknown gain '%s' (one of %s)", mf->norm_gain, LNL_NORM_GAINS);
        c->norm_gain = (uint8_t)gain;
    }
    for (int i = 0; i < 3; i++)
        if (f[F_ALPHA_ATTN + i].seen) c->norm_alpha[i] = (float)mf->alpha[i];
    if (GIVEN(F_ATTN_SOFTCAP)) c->attn_softcap = (float)mf->attn_softcap;
    if (GIVEN(F_LOGIT_SOFTCAP)) c->logit_softcap = (float)mf->logit_softcap;
    return 0;
#undef GIVEN
}

static int apply(const LnlModelFlags *mf, const LnlFlag *f, LnlConfig *c, int only_seen, LnlErr *e) {
#define GIVEN(i) (!only_seen || f[i].seen)
    int respec = !only_seen || f[F_PRESET].seen || f[F_LAYERS].seen || f[F_SIZE].seen || f[F_MIX].seen;
    const FileExtras file = file_extras(c);
    char preset[32];
    snprintf(preset, sizeof preset, "%s", only_seen && !f[F_PRESET].seen ? c->preset : mf->preset);
    if (mf->size && GIVEN(F_SIZE) && lnl_config_size(c, mf->size, e)) return -1;
    if (GIVEN(F_LAYERS) && (!mf->size || f[F_LAYERS].seen)) c->n_layer = (int)mf->layers;
    if (GIVEN(F_HEADS) && (!mf->size || f[F_HEADS].seen)) c->n_head = (int)mf->heads;
    if (GIVEN(F_DIM) && (!mf->size || f[F_DIM].seen)) c->n_embd = (int)mf->dim;
    if (!only_seen) {
        c->n_positions = (int)mf->seq;
    }
    if (GIVEN(F_VOCAB)) c->vocab_size = (int)mf->vocab;
    if (GIVEN(F_MIX)) c->mix_ratio = (float)mf->mix_ratio;
    if (GIVEN(F_BN_STEPS)) c->branchnorm_steps = (int)mf->branchnorm_steps;
    if (GIVEN(F_EMBED_SCALE_LEARNED)) c->embed_scale_learned = (uint8_t)mf->embed_scale_learned;
    if (norm_flags(mf, f, c, only_seen, e)) return -1;
    if (respec) {
        if (strcmp(preset, "custom") == 0)
            return lnl_err(e, "--preset: the loaded model has a custom spec; give --preset to re-derive it");
        if (lnl_config_preset(c, preset, e)) return -1;
        if (only_seen) restore_extras(c, &file, f);
        /* a model family's preset (olmo2, gemma2) sets its norm kind, gain, eps and softcaps:
         * the flags given on the command line win over it */
        if (norm_flags(mf, f, c, 1, e)) return -1;
    }
    if (GIVEN(F_DT)) lnl_config_set_dt(c, (float)mf->dt);
    /* the preset's defaults stand unless these flags are given, for a new model too */
    if (f[F_EMBED_NORM].seen) c->embed_norm = (uint8_t)mf->embed_norm;
    if (f[F_EMBED_SCALE].seen) c->embed_scale = (uint8_t)mf->embed_scale;
    if (f[F_INIT_STD].seen) {
        LnlStdRule rule;
        float std = c->init_std;
        if (lnl_parse_init_std(mf->init_std, &rule, &std, "--init-std", e)) return -1;
        c->init_std_rule = (uint8_t)rule;
        c->init_std = std;
    }
    if (f[F_RESID_SCALE].seen) c->init_resid_scale = (uint8_t)(strcmp(mf->resid_scale_init, "on") == 0);
    if (f[F_BIAS].seen) lnl_config_set_bias(c, strcmp(mf->bias, "on") == 0);
    if (f[F_QK_NORM].seen)
        lnl_config_set_qk_norm(c, !strcmp(mf->qk_norm, "full") ? LNL_QK_NORM_FULL
                                  : !strcmp(mf->qk_norm, "head") ? LNL_QK_NORM_HEAD : LNL_QK_NORM_OFF);
    if (mf->spec && lnl_config_override(c, mf->spec, e)) return -1;
    return lnl_config_validate(c, e);
#undef GIVEN
}

int lnl_model_flags_config(const LnlModelFlags *mf, const LnlFlag *flags, LnlConfig *c, LnlErr *e) {
    lnl_config_default(c);
    return apply(mf, flags, c, 0, e);
}

int lnl_model_flags_override(const LnlModelFlags *mf, const LnlFlag *flags, LnlConfig *c, LnlErr *e) {
    return apply(mf, flags, c, 1, e);
}

typedef struct {
    const LnlModelFlags *mf;
    const LnlFlag *flags;
    int failed; /* the error is about a flag, not about the model file */
} OverrideCtx;

static int override_hook(LnlConfig *c, void *ctx, LnlErr *e) {
    OverrideCtx *o = ctx;
    o->failed = lnl_model_flags_override(o->mf, o->flags, c, e) != 0;
    return o->failed ? -1 : 0;
}

/* Runs the caller's hook and keeps what it changed, for the note. */
typedef struct {
    LnlConfigHook hook;
    void *ctx;
    char *diff; /* lnl_config_diff of the file's config and the hook's result, or NULL */
} NoteCtx;

static int noting_hook(LnlConfig *c, void *ctx, LnlErr *e) {
    NoteCtx *n = ctx;
    LnlConfig *file = lnl_malloc(sizeof *file);
    *file = *c;
    int r = n->hook(c, n->ctx, e);
    if (!r) n->diff = lnl_config_diff(file, c);
    free(file);
    return r;
}

int lnl_model_flags_load(LnlModel *m, const char *path, const char *data, LnlConfigHook hook, void *ctx, LnlErr *e) {
    NoteCtx n = {hook, ctx, NULL};
    if (lnl_model_load(m, path, hook ? noting_hook : NULL, &n, e)) {
        free(n.diff);
        return -1;
    }
    LnlErr de;
    if (data && lnl_data_check_vocab(data, path, m->cfg.vocab_size, &de)) {
        free(n.diff);
        lnl_model_free(m);
        lnl_err(e, "--data: %s", de.msg);
        return -2;
    }
    if (n.diff) fprintf(stderr, "lnlab: note: %s: the command line overrides the file's config: %s\n", path, n.diff);
    free(n.diff);
    return 0;
}

void lnl_model_flags_load_or_exit(LnlModel *m, const char *path, const char *data, const LnlModelFlags *mf,
                                  const LnlFlag *flags) {
    LnlErr e;
    OverrideCtx ctx = {mf, flags, 0};
    int r = lnl_model_flags_load(m, path, data, override_hook, &ctx, &e);
    if (r == -2) lnl_die(1, "%s", e.msg);
    if (r) {
        if (ctx.failed) lnl_die(2, "%s", e.msg);
        lnl_die(1, "--model: %s", e.msg);
    }
}

void lnl_model_flags_for_evaluation(LnlModelFlags *mf, LnlFlag *flags) {
    lnl_model_flags_for_loaded_model(flags);
    LnlFlag *seq = lnl_flags_find(flags, LNL_MODEL_NFLAGS, "--seq");
    mf->seq = 0;
    seq->lo = 0;
    seq->help = "sequence length T; 0: the model's n_positions";
}

int lnl_model_flags_seq_or_exit(const LnlModel *m, const LnlModelFlags *mf, long long batch) {
    const int npos = m->cfg.n_positions;
    if (mf->seq > npos) lnl_die(2, "--seq: %lld is longer than the model's n_positions %d", mf->seq, npos);
    const int T = mf->seq > 0 ? (int)mf->seq : npos;
    if (batch * T > INT_MAX)
        lnl_die(2, "--batch/--seq: B*T = %lld tokens is too many for one batch", batch * T);
    return T;
}
