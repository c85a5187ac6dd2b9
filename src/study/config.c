/* Study configuration: the field table, the built-in studies, the JSON reader/writer with
 * one-line errors naming the source and the field, and the expansion into runs. */
#include "config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../model/spec.h"
#include "../train/settings.h"

#define PRECISIONS LNL_TRAIN_SETTING(precision, CHOICES) /* "fp32|bf16" */

#define OFF(f) offsetof(LnlStudyConfig, f)
#define BIG 1099511627776.0 /* 2^40 */
#define SWITCH "preset|on|off" /* a model setting a preset has a default for */
#define PRESET_VALUE "preset"

static int check_init_std(const char *v, const char *what, LnlErr *e) {
    if (strcmp(v, PRESET_VALUE) == 0) return 0;
    LnlStdRule rule;
    float std;
    LnlErr why;
    if (lnl_parse_init_std(v, &rule, &std, what, &why))
        return lnl_err(e, "%s: expected a number in (0, 10], %s or %s, got '%s'", what, LNL_STD_INV_SQRT_C_NAME,
                       PRESET_VALUE, v);
    return 0;
}

/* A training setting as a study field: key, type, range and choices from its row in
 * train/settings.h, its default lnlab train's unless config_defaults sets the study's; here only
 * whether it decides a run's numbers (shared) and its help in the study's words. */
#define SF_TYPE(t) SF_TYPE_(t)
#define SF_TYPE_(t) LNL_SF_##t
#define TRAIN_FIELD(name, shared, help)                                                                          \
    {LNL_TRAIN_SETTING(name, KEY), SF_TYPE(LNL_TRAIN_SETTING(name, TYPE)), OFF(name), LNL_TRAIN_SETTING(name, LO), \
     LNL_TRAIN_SETTING(name, HI), LNL_TRAIN_SETTING(name, CHOICES), shared, help, NULL}

const LnlStudyField lnl_study_fields[] = {
    {"data", LNL_SF_STR, OFF(data), 0, 0, NULL, 1, "prepared data directory (lnlab prepare), or one token shard", NULL},
    {"corpus", LNL_SF_STR, OFF(corpus), 0, 0, "kjv|brown|none", 0,
     "corpus that `lnlab prepare` writes into data when data does not exist yet", NULL},
    {"tokenizer", LNL_SF_STR, OFF(tokenizer), 0, 0, "byte|gpt2", 0, "tokenizer for preparing the corpus", NULL},
    {"vocab", LNL_SF_INT, OFF(vocab), 0, 16777216, NULL, 1, "vocabulary size (0: the data's meta.json)", NULL},
    {"dim", LNL_SF_INT, OFF(dim), 1, 65536, NULL, 1, "model width C (a named size overrides it)", NULL},
    {"heads", LNL_SF_INT, OFF(heads), 1, 4096, NULL, 1, "attention heads (a named size overrides it)", NULL},
    {"seq", LNL_SF_INT, OFF(seq), 1, 1048576, NULL, 1, "sequence length T", NULL},
    {"norm", LNL_SF_STR, OFF(norm), 0, 0, LNL_NORMS, 1, "normalization kind", NULL},
    {"init_std", LNL_SF_STR, OFF(init_std), 0, 0, NULL, 1,
     "std of the normal init of matrices and embeddings: a number, 1/sqrt(C), or preset (the preset's)", check_init_std},
    {"resid_scale_init", LNL_SF_STR, OFF(resid_scale_init), 0, 0, SWITCH, 1,
     "GPT-2's 1/sqrt(2L) on the init of the residual output projections (preset: the preset's)", NULL},
    {"bias", LNL_SF_STR, OFF(bias), 0, 0, SWITCH, 1, "linear biases in attention and MLP (preset: the preset's)", NULL},
    {"embed_norm", LNL_SF_STR, OFF(embed_norm), 0, 0, SWITCH, 1,
     "normalization right after the embedding (preset: the preset's)", NULL},
    {"embed_scale", LNL_SF_STR, OFF(embed_scale), 0, 0, SWITCH, 1,
     "embedding times sqrt(C) (preset: the preset's)", NULL},
    TRAIN_FIELD(batch, 1, "sequences per micro-batch B"),
    TRAIN_FIELD(total_batch, 1, "tokens per optimizer step (0: B*T)"),
    TRAIN_FIELD(steps, 1, "optimizer steps per run"),
    TRAIN_FIELD(warmup, 1, "linear warmup steps"),
    TRAIN_FIELD(schedule, 1, "learning-rate decay"),
    TRAIN_FIELD(min_lr_frac, 1, "final learning rate as a fraction of lr"),
    TRAIN_FIELD(beta1, 1, "AdamW beta1"),
    TRAIN_FIELD(beta2, 1, "AdamW beta2"),
    TRAIN_FIELD(adam_eps, 1, "AdamW epsilon"),
    TRAIN_FIELD(weight_decay, 1, "decoupled weight decay"),
    TRAIN_FIELD(grad_clip, 1, "max global gradient norm (0: off)"),
    TRAIN_FIELD(z_loss, 1, "z-loss coefficient on the output logits (0: off)"),
    TRAIN_FIELD(precision, 1,
                "the matrix products' arithmetic (lnlab train --precision) of the runs of a grid without precisions"),
    {"diverge_loss", LNL_SF_FLOAT, OFF(diverge_loss), 0, 1e9, NULL, 1,
     "a run diverged when its loss exceeds its running minimum by this many nats (0: only NaN/Inf)", NULL},
    {"skip_spikes", LNL_SF_FLOAT, OFF(skip_spikes), 0, 1e9, NULL, 1,
     "skip updates whose loss or grad-norm z-score exceeds this (0: off)", NULL},
    {"spike_nats", LNL_SF_FLOAT, OFF(spike_nats), 0, 1e9, NULL, 0,
     "the report counts a loss spike when the loss rises this many nats above its running minimum", NULL},
    {"diag_every", LNL_SF_INT, OFF(diag_every), 0, BIG, NULL, 1,
     "a per-layer diagnostics record every K steps (train --diag-every; 0: none)", NULL},
    TRAIN_FIELD(eval_every, 1, "evaluate every K steps (0: at the end only)"),
    TRAIN_FIELD(eval_batches, 1, "val batches per evaluation (0: all)"),
    {"probe_batch", LNL_SF_INT, OFF(probe_batch), 1, 65536, NULL, 1, "batch of the final probe (first B*T+1 val tokens)", NULL},
    {"sensitivity", LNL_SF_STR, OFF(sensitivity), 0, 0, "auto|on|off", 0,
     "probe --sensitivity: auto uses it where lnlab probe has it", NULL},
    TRAIN_FIELD(checkpoint_every, 0, "checkpoint every K steps, so an interrupted run resumes (0: it restarts)"),
    {"keep_checkpoints", LNL_SF_INT, OFF(keep_checkpoints), 0, BIG, NULL, 0,
     "checkpoints kept per run (0: all)", NULL},
    {"jobs", LNL_SF_INT, OFF(jobs), 0, 1024, NULL, 0, "runs at a time (0: one per CPU)", NULL},
    {"threads", LNL_SF_INT, OFF(threads), 0, 1024, NULL, 0,
     "OpenMP/BLAS threads per run (0: CPUs / jobs); the numbers are the same on any count", NULL},
    {"gnuplot", LNL_SF_STR, OFF(gnuplot), 0, 0, NULL, 0, "gnuplot command for the plots", NULL},
};
const int lnl_study_nfields = (int)(sizeof lnl_study_fields / sizeof lnl_study_fields[0]);

const LnlStudyAxisDef lnl_study_axes[LNL_NAXES] = {
    [LNL_AX_PRESET] = {"presets", 0, 0, 0, 0, "placement presets (" LNL_PRESETS ")"},
    [LNL_AX_DT] = {"dts", 1, 0, 0, 100, "residual steps dt"},
    [LNL_AX_DEPTH] = {"depths", 1, 1, 1, LNL_MAX_LAYERS, "numbers of layers L"},
    [LNL_AX_SIZE] = {"sizes", 0, 0, 0, 0, "named sizes (" LNL_SIZES "), instead of depths"},
    [LNL_AX_LR] = {"lrs", 1, 0, 1e-12, 10, "peak learning rates"},
    [LNL_AX_PRECISION] = {"precisions", 0, 0, 0, 0,
                          "the matrix products' arithmetic (" PRECISIONS
                          "; bf16 needs AVX512-BF16, its run ids end in -bf16)"},
    [LNL_AX_SEED] = {"seeds", 1, 1, 0, 9007199254740992.0, "init seeds"},
};

static char **str_at(LnlStudyConfig *c, const LnlStudyField *f) { return (char **)((char *)c + f->off); }
static long long *int_at(LnlStudyConfig *c, const LnlStudyField *f) { return (long long *)((char *)c + f->off); }
static double *dbl_at(LnlStudyConfig *c, const LnlStudyField *f) { return (double *)((char *)c + f->off); }
static const char *cstr_at(const LnlStudyConfig *c, const LnlStudyField *f) {
    return *(char *const *)((const char *)c + f->off);
}

static void set_str(char **dst, const char *v) {
    free(*dst);
    *dst = lnl_strdup(v);
}

/* The field defaults: the settings of the default study (a config file starts from these). */
static void config_defaults(LnlStudyConfig *c) {
    memset(c, 0, sizeof *c);
    LnlTrainSettings train; /* lnlab train's defaults, for the training settings the study keeps */
    lnl_train_settings_default(&train);
    for (int i = 0; i < lnl_study_nfields; i++) {
        const LnlStudyField *f = &lnl_study_fields[i];
        const LnlTrainSetting *d = lnl_train_setting_find(f->key);
        if (!d) continue;
        const char *def = (const char *)&train + d->off;
        switch (f->type) {
        case LNL_SF_STR: *str_at(c, f) = lnl_strdup(*(const char *const *)def); break;
        case LNL_SF_INT: *int_at(c, f) = *(const long long *)def; break;
        case LNL_SF_FLOAT: *dbl_at(c, f) = *(const double *)def; break;
        }
    }
    c->data = lnl_strdup("data/kjv-byte");
    c->corpus = lnl_strdup("kjv");
    c->tokenizer = lnl_strdup("byte");
    c->norm = lnl_strdup("layernorm");
    c->sensitivity = lnl_strdup("auto");
    c->gnuplot = lnl_strdup("gnuplot");
    c->init_std = lnl_strdup(PRESET_VALUE);
    c->resid_scale_init = lnl_strdup(PRESET_VALUE);
    c->bias = lnl_strdup(PRESET_VALUE);
    c->embed_norm = lnl_strdup(PRESET_VALUE);
    c->embed_scale = lnl_strdup(PRESET_VALUE);
    c->vocab = 0;
    c->dim = 64;
    c->heads = 4;
    c->seq = 64;
    c->batch = 16; /* the study's own choices for the training settings */
    c->steps = 400;
    c->warmup = 40;
    c->eval_every = 100;
    c->eval_batches = 16;
    c->checkpoint_every = 50;
    c->diverge_loss = 0;
    c->skip_spikes = 0;
    c->spike_nats = 1.5;
    c->keep_checkpoints = 1;
    c->diag_every = 50;
    c->probe_batch = 8;
    c->jobs = 0;
    c->threads = 0;
}

/* ---- options (per grid, per preset entry) ---- */

/* Each option's value is checked and printed as the shared setting of the same key is. */
const LnlStudyOptionDef lnl_study_options[LNL_STUDY_NOPTS] = {
    [LNL_OPT_INIT_STD] = {"init_std", "--init-std", "std", 0},
    [LNL_OPT_RESID_SCALE_INIT] = {"resid_scale_init", "--resid-scale-init", "rs", 0},
    [LNL_OPT_BIAS] = {"bias", "--bias", "bias", 0},
    [LNL_OPT_EMBED_NORM] = {"embed_norm", "--embed-norm", "en", 1},
    [LNL_OPT_EMBED_SCALE] = {"embed_scale", "--embed-scale", "es", 1},
#define TRAIN_OPTION(name, code) {LNL_TRAIN_SETTING(name, KEY), LNL_TRAIN_SETTING(name, FLAG), code, 0}
    [LNL_OPT_STEPS] = TRAIN_OPTION(steps, "steps"),
    [LNL_OPT_WARMUP] = TRAIN_OPTION(warmup, "wu"),
    [LNL_OPT_SCHEDULE] = TRAIN_OPTION(schedule, "sched"),
    [LNL_OPT_MIN_LR_FRAC] = TRAIN_OPTION(min_lr_frac, "minlr"),
    [LNL_OPT_WEIGHT_DECAY] = TRAIN_OPTION(weight_decay, "wd"),
    [LNL_OPT_GRAD_CLIP] = TRAIN_OPTION(grad_clip, "clip"),
#undef TRAIN_OPTION
};

static const LnlStudyField *find_field(const char *key) {
    for (int i = 0; i < lnl_study_nfields; i++)
        if (strcmp(key, lnl_study_fields[i].key) == 0) return &lnl_study_fields[i];
    return NULL;
}

static int option_index(const char *key) {
    for (int i = 0; i < LNL_STUDY_NOPTS; i++)
        if (strcmp(key, lnl_study_options[i].key) == 0) return i;
    return -1;
}

static int is_switch(const LnlStudyField *f) { return f->choices && strcmp(f->choices, SWITCH) == 0; }

static void opts_clear(LnlStudyOptions *o) {
    for (int i = 0; i < LNL_STUDY_NOPTS; i++) free(o->v[i]);
    memset(o, 0, sizeof *o);
}

static void opts_copy(LnlStudyOptions *dst, const LnlStudyOptions *src) {
    opts_clear(dst);
    for (int i = 0; i < LNL_STUDY_NOPTS; i++) dst->v[i] = src->v[i] ? lnl_strdup(src->v[i]) : NULL;
}

static void axis_clear(LnlStudyAxis *a) {
    for (int i = 0; i < a->n; i++) {
        free(a->str[i]);
        if (a->opt[i]) opts_clear(a->opt[i]);
        free(a->opt[i]);
    }
    memset(a, 0, sizeof *a);
}

static void axis_copy(LnlStudyAxis *dst, const LnlStudyAxis *src) {
    axis_clear(dst);
    dst->n = src->n;
    for (int i = 0; i < src->n; i++) {
        dst->num[i] = src->num[i];
        dst->str[i] = src->str[i] ? lnl_strdup(src->str[i]) : NULL;
        if (src->opt[i]) {
            dst->opt[i] = lnl_calloc(1, sizeof *dst->opt[i]);
            opts_copy(dst->opt[i], src->opt[i]);
        }
    }
}

/* Adds one textual value to an axis after checking it; `what` names it. */
static int axis_add(LnlStudyAxis *a, int ax, const char *v, const char *what, LnlErr *e) {
    const LnlStudyAxisDef *d = &lnl_study_axes[ax];
    if (a->n >= LNL_STUDY_MAX_VALUES) return lnl_err(e, "%s: at most %d values", what, LNL_STUDY_MAX_VALUES);
    if (d->numeric) {
        double x;
        if (d->integer) {
            long long i;
            if (lnl_parse_int(v, (long long)d->lo, (long long)d->hi, &i, what, e)) return -1;
            x = (double)i;
        } else if (lnl_parse_double(v, d->lo, d->hi, &x, what, e)) {
            return -1;
        }
        if (ax == LNL_AX_DT && x <= 0) return lnl_err(e, "%s: dt must be positive, got %s", what, v);
        a->num[a->n++] = x;
        return 0;
    }
    const char *choices = ax == LNL_AX_PRESET ? LNL_PRESETS : ax == LNL_AX_PRECISION ? PRECISIONS : LNL_SIZES;
    if (!lnl_in_choices(v, choices))
        return lnl_err(e, "%s: '%s' is not %s (%s)", what, v,
                       ax == LNL_AX_PRESET ? "a preset" : ax == LNL_AX_PRECISION ? "a precision" : "a named size", choices);
    if (ax == LNL_AX_PRESET && strcmp(v, "sandwich") == 0) v = "peri"; /* one spec, one name */
    a->str[a->n++] = lnl_strdup(v);
    return 0;
}

/* Splits items on commas into axis a (values checked; `what` names them). */
static int axis_fill(LnlStudyAxis *a, int ax, const char *const *items, int n, const char *what, LnlErr *e) {
    LnlStudyAxis tmp;
    memset(&tmp, 0, sizeof tmp);
    for (int i = 0; i < n; i++) {
        char *s = lnl_strdup(items[i]), *save = NULL;
        int any = 0;
        for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ') tok++;
            if (!*tok) continue;
            any = 1;
            if (axis_add(&tmp, ax, tok, what, e)) {
                free(s);
                axis_clear(&tmp);
                return -1;
            }
        }
        free(s);
        if (!any) {
            axis_clear(&tmp);
            return lnl_err(e, "%s: empty list", what);
        }
    }
    axis_clear(a);
    *a = tmp;
    return 0;
}

static void grid_set(LnlStudyGrid *g, const char *name, const char *presets, const char *dts, const char *depths,
                     const char *lrs, const char *seeds) {
    const char *v[LNL_NAXES] = {[LNL_AX_PRESET] = presets, [LNL_AX_DT] = dts, [LNL_AX_DEPTH] = depths,
                                [LNL_AX_LR] = lrs, [LNL_AX_SEED] = seeds};
    g->name = lnl_strdup(name);
    for (int ax = 0; ax < LNL_NAXES; ax++) {
        if (!v[ax]) continue;
        LnlErr e;
        if (axis_fill(&g->ax[ax], ax, &v[ax], 1, "built-in study", &e)) {
            fprintf(stderr, "lnlab: internal: %s\n", e.msg);
            abort();
        }
    }
}

/* The default comparison (docs/STUDY.md says why each grid is there; the design follows the
 * science audit's "default study"). Seeds, learning rates and depths were fixed before any of its
 * runs was looked at. */
static const char *STUDY_DEFAULT =
    "{\"grids\": ["
    " {\"name\": \"lr-sweep\", \"presets\": [\"pre\", \"peri\"], \"dts\": [1], \"depths\": [8],"
    "  \"lrs\": [1e-3, 3e-3, 1e-2, 3e-2, 1e-1], \"seeds\": [1, 2]},"
    " {\"name\": \"lr-sweep-dt\", \"presets\": [\"pre\", \"peri\"], \"dts\": [0.1], \"depths\": [8],"
    "  \"lrs\": [1e-3, 3e-3, 1e-2, 3e-2, 1e-1], \"seeds\": [1]},"
    " {\"name\": \"depth\", \"presets\": [\"pre\", \"peri\"], \"dts\": [1], \"depths\": [4, 8, 16],"
    "  \"lrs\": [1e-2], \"seeds\": [1]},"
    " {\"name\": \"deep-post\", \"presets\": [\"post\", \"b2t\", \"pre\"], \"dts\": [1], \"depths\": [6, 18],"
    "  \"lrs\": [1e-3], \"seeds\": [1, 2], \"steps\": 600, \"warmup\": 60}]}";

/* The longer study (the audit's section 3.3, about 2 hours on 2 cores): 1000- and 2000-step
 * runs at depth 12, depth up to 32, deep post-norm models up to 24 layers under both inits. */
static const char *STUDY_THOROUGH =
    "{\"steps\": 1000, \"warmup\": 100, \"eval_every\": 250,"
    " \"grids\": ["
    " {\"name\": \"lr-sweep\", \"presets\": [\"pre\", \"peri\"], \"dts\": [1, 0.1], \"depths\": [12],"
    "  \"lrs\": [3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1], \"seeds\": [1]},"
    " {\"name\": \"lr-sweep-peri-noen\", \"presets\": [{\"preset\": \"peri\", \"embed_norm\": false}],"
    "  \"dts\": [1], \"depths\": [12], \"lrs\": [3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1], \"seeds\": [1]},"
    " {\"name\": \"long\", \"presets\": [\"pre\", \"peri\"], \"dts\": [1, 0.1], \"depths\": [12],"
    "  \"lrs\": [1e-3, 3e-3], \"seeds\": [1, 2], \"steps\": 2000, \"warmup\": 200},"
    " {\"name\": \"depth\", \"presets\": [\"pre\", \"peri\"], \"dts\": [1], \"depths\": [4, 8, 16, 32],"
    "  \"lrs\": [3e-3, 3e-2], \"seeds\": [1]},"
    " {\"name\": \"deep-post\", \"presets\": [\"post\", \"b2t\", \"pre\"], \"dts\": [1],"
    "  \"depths\": [6, 12, 18, 24], \"lrs\": [1e-3], \"seeds\": [1, 2]},"
    " {\"name\": \"deep-post-gpt2-init\", \"dts\": [1], \"depths\": [6, 18], \"lrs\": [3e-4, 1e-3],"
    "  \"seeds\": [1], \"init_std\": 0.02, \"resid_scale_init\": true, \"embed_scale\": false,"
    "  \"presets\": [\"post\", \"b2t\"]}]}";

int lnl_study_config_builtin(LnlStudyConfig *c, const char *name, LnlErr *e) {
    if (strcmp(name, "default") == 0) return lnl_study_config_parse(c, STUDY_DEFAULT, "built-in study 'default'", e);
    if (strcmp(name, "thorough") == 0) return lnl_study_config_parse(c, STUDY_THOROUGH, "built-in study 'thorough'", e);
    config_defaults(c);
    if (strcmp(name, "paper") == 0) {
        /* The source paper's setup (docs/STUDY.md): GPT-2 124M / Large / XL, AdamW (0.9, 0.95),
         * weight decay 0.1, lr 6e-4 cosine to 6e-5, warmup 2000, clip 1.0, T 1024. The token
         * budget (0.5M tokens per step, 18865 steps = 10B tokens) is lnlab's choice. */
        set_str(&c->data, "data/fineweb10B-gpt2");
        set_str(&c->corpus, "none");
        set_str(&c->tokenizer, "gpt2");
        c->dim = 768;
        c->heads = 12;
        c->seq = 1024;
        c->batch = 8;
        c->total_batch = 524288;
        c->steps = 18865;
        c->warmup = 2000;
        c->min_lr_frac = 0.1;
        c->eval_every = 250;
        c->eval_batches = 20;
        c->checkpoint_every = 1000;
        c->probe_batch = 8;
        c->jobs = 1;
        c->ngrids = 1;
        grid_set(&c->grids[0], "paper", "post,pre,peri", "1,0.1", NULL, "6e-4", "1");
        const char *sizes[1] = {"gpt2,gpt2-large,gpt2-xl"};
        return lnl_study_axis_set_all(c, LNL_AX_SIZE, sizes, 1, "builtin", e);
    }
    lnl_study_config_free(c);
    return lnl_err(e, "--preset-study: '%s' is not one of %s", name, LNL_STUDY_BUILTINS);
}

static int check_str(const LnlStudyField *f, const char *v, const char *what, LnlErr *e) {
    if (f->type != LNL_SF_STR) return lnl_err(e, "%s: expected a number", what);
    if (!*v) return lnl_err(e, "%s: empty value", what);
    if (f->choices && !lnl_in_choices(v, f->choices)) return lnl_err(e, "%s: '%s' is not one of %s", what, v, f->choices);
    return f->check ? f->check(v, what, e) : 0;
}

static int check_num(const LnlStudyField *f, double v, const char *what, LnlErr *e) {
    if (f->type == LNL_SF_STR) return lnl_err(e, "%s: expected a string", what);
    if (!isfinite(v) || v < f->lo || v > f->hi) {
        if (f->type == LNL_SF_INT)
            return lnl_err(e, "%s: expected an integer in [%.0f, %.0f], got %.17g", what, f->lo, f->hi, v);
        return lnl_err(e, "%s: expected a number in [%g, %g], got %.17g", what, f->lo, f->hi, v);
    }
    if (f->type == LNL_SF_INT && v != floor(v)) return lnl_err(e, "%s: expected an integer, got %.17g", what, v);
    return 0;
}

int lnl_study_field_set_str(LnlStudyConfig *c, const LnlStudyField *f, const char *v, const char *what, LnlErr *e) {
    if (check_str(f, v, what, e)) return -1;
    set_str(str_at(c, f), v);
    return 0;
}

int lnl_study_field_set_num(LnlStudyConfig *c, const LnlStudyField *f, double v, const char *what, LnlErr *e) {
    if (check_num(f, v, what, e)) return -1;
    if (f->type == LNL_SF_INT) *int_at(c, f) = (long long)v;
    else *dbl_at(c, f) = v;
    return 0;
}

/* A JSON value of field f as its canonical text (the form option values and string fields are
 * kept in): a switch takes true/false or "on"/"off"/"preset", init_std a number or a string,
 * numeric fields numbers ("%.17g"). Checked as the field's own values are. */
static int field_text(const LnlStudyField *f, const cJSON *it, char *out, size_t n, const char *where, LnlErr *e) {
    if (f->type != LNL_SF_STR) {
        if (!cJSON_IsNumber(it)) return lnl_err(e, "%s: expected a number", where);
        if (check_num(f, it->valuedouble, where, e)) return -1;
        snprintf(out, n, "%.17g", it->valuedouble);
        return 0;
    }
    if (is_switch(f) && cJSON_IsBool(it)) {
        snprintf(out, n, "%s", cJSON_IsTrue(it) ? "on" : "off");
        return 0;
    }
    if (f->check && cJSON_IsNumber(it)) snprintf(out, n, "%.17g", it->valuedouble);
    else if (cJSON_IsString(it)) snprintf(out, n, "%s", it->valuestring);
    else return lnl_err(e, "%s: expected %s", where, is_switch(f) ? "true, false or \"preset\"" : f->check ? "a number or a string" : "a string");
    return check_str(f, out, where, e);
}

/* The JSON form of a value in canonical text: switches on/off as booleans, numbers as numbers. */
static cJSON *text_json(const LnlStudyField *f, const char *v) {
    char *end;
    if (is_switch(f) && (!strcmp(v, "on") || !strcmp(v, "off"))) return cJSON_CreateBool(strcmp(v, "on") == 0);
    if (f->type != LNL_SF_STR || f->check) {
        double x = strtod(v, &end);
        if (*v && !*end) return cJSON_CreateNumber(x);
    }
    return cJSON_CreateString(v);
}

/* Reads the option `key` (JSON value it) into o; `where` names it. */
static int read_option(const cJSON *it, LnlStudyOptions *o, int i, const char *where, LnlErr *e) {
    char text[LNL_STUDY_OPT_MAX];
    if (field_text(find_field(lnl_study_options[i].key), it, text, sizeof text, where, e)) return -1;
    free(o->v[i]);
    o->v[i] = lnl_strdup(text);
    return 0;
}

static void options_json(cJSON *obj, const LnlStudyOptions *o) {
    for (int i = 0; i < LNL_STUDY_NOPTS; i++)
        if (o->v[i]) cJSON_AddItemToObject(obj, lnl_study_options[i].key, text_json(find_field(lnl_study_options[i].key), o->v[i]));
}

/* The option names, for messages. */
static const char *option_names(void) {
    static char buf[256];
    if (!buf[0]) {
        size_t k = 0;
        for (int i = 0; i < LNL_STUDY_NOPTS; i++)
            k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? ", " : "", lnl_study_options[i].key);
    }
    return buf;
}

/* A run's value of option i: its own, else the shared setting (as text). */
static const char *run_option(const LnlStudyConfig *c, const LnlStudyRun *r, int i, char *buf, size_t n) {
    if (r && r->opt[i][0]) return r->opt[i];
    const LnlStudyField *f = find_field(lnl_study_options[i].key);
    switch (f->type) {
    case LNL_SF_STR: return cstr_at(c, f);
    case LNL_SF_INT: snprintf(buf, n, "%lld", *(const long long *)((const char *)c + f->off)); return buf;
    case LNL_SF_FLOAT: snprintf(buf, n, "%.17g", *(const double *)((const char *)c + f->off)); return buf;
    }
    return "";
}

int lnl_study_train_args(const LnlStudyConfig *c, const LnlStudyRun *r, char words[][LNL_STUDY_ARG_MAX]) {
    int n = 0;
    for (int i = 0; i < LNL_STUDY_NOPTS; i++) {
        const LnlStudyOptionDef *d = &lnl_study_options[i];
        char buf[LNL_STUDY_OPT_MAX];
        const char *v = run_option(c, r, i, buf, sizeof buf);
        if (strcmp(v, PRESET_VALUE) == 0) continue; /* the preset's default: no flag */
        if (d->flag_bool) {
            snprintf(words[n++], LNL_STUDY_ARG_MAX, "%s=%s", d->flag, strcmp(v, "on") == 0 ? "true" : "false");
        } else {
            snprintf(words[n++], LNL_STUDY_ARG_MAX, "%s", d->flag);
            snprintf(words[n++], LNL_STUDY_ARG_MAX, "%s", v);
        }
    }
    return n;
}

/* The id code of option i's value v: "en" / "noen" / "enpreset", "std0.02", "std1_sqrtC", "steps400". */
static void option_code(int i, const char *v, char *out, size_t n) {
    const LnlStudyOptionDef *d = &lnl_study_options[i];
    const LnlStudyField *f = find_field(d->key);
    if (is_switch(f)) {
        if (!strcmp(v, "on")) snprintf(out, n, "%s", d->code);
        else if (!strcmp(v, "off")) snprintf(out, n, "no%s", d->code);
        else snprintf(out, n, "%s%s", d->code, v);
    } else if (!strcmp(v, LNL_STD_INV_SQRT_C_NAME)) {
        snprintf(out, n, "%s1_sqrtC", d->code);
    } else if (f->type != LNL_SF_STR || (f->check && strcmp(v, PRESET_VALUE))) {
        snprintf(out, n, "%s%g", d->code, strtod(v, NULL));
    } else {
        snprintf(out, n, "%s%s", d->code, v);
    }
}

int lnl_study_axis_set_all(LnlStudyConfig *c, int ax, const char *const *items, int n, const char *what, LnlErr *e) {
    for (int g = 0; g < c->ngrids; g++) {
        if (axis_fill(&c->grids[g].ax[ax], ax, items, n, what, e)) return -1;
        if (ax == LNL_AX_DEPTH) axis_clear(&c->grids[g].ax[LNL_AX_SIZE]);
        if (ax == LNL_AX_SIZE) axis_clear(&c->grids[g].ax[LNL_AX_DEPTH]);
    }
    return 0;
}

/* ---- JSON ---- */

/* Up to 24 characters of the text at a JSON syntax error, on one line. */
static void syntax_context(const char *at, char *buf, size_t n) {
    size_t k = 0;
    for (const char *p = at; *p && k + 1 < n && k < 24; p++)
        buf[k++] = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
    buf[k] = 0;
}

static size_t line_of(const char *text, const char *at) {
    size_t line = 1;
    for (const char *p = text; p < at && *p; p++) line += *p == '\n';
    return line;
}

/* A preset entry written as an object, {"preset": P, option: value, ...}, appended to the presets
 * axis a; `path` names it in messages ("grids[0].presets[1]"). */
static int read_entry(const cJSON *o, LnlStudyAxis *a, const char *what, const char *path, LnlErr *e) {
    char where[256];
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "preset");
    snprintf(where, sizeof where, "%s: field '%s.preset'", what, path);
    if (!p) return lnl_err(e, "%s: field '%s': a preset entry needs \"preset\"", what, path);
    if (!cJSON_IsString(p)) return lnl_err(e, "%s: expected a string", where);
    if (axis_add(a, LNL_AX_PRESET, p->valuestring, where, e)) return -1;
    LnlStudyOptions *opt = lnl_calloc(1, sizeof *opt);
    a->opt[a->n - 1] = opt; /* owned by the axis from here on */
    for (const cJSON *it = o->child; it; it = it->next) {
        if (strcmp(it->string, "preset") == 0) continue;
        snprintf(where, sizeof where, "%s: field '%s.%s'", what, path, it->string);
        int i = option_index(it->string);
        if (i < 0)
            return lnl_err(e, "%s: unknown field '%s.%s' (a preset entry has preset and the options %s)", what, path,
                           it->string, option_names());
        if (read_option(it, opt, i, where, e)) return -1;
    }
    return 0;
}

static int read_axis(const cJSON *v, LnlStudyAxis *a, int ax, const char *what, const char *field, LnlErr *e) {
    LnlStudyAxis tmp;
    memset(&tmp, 0, sizeof tmp);
    const cJSON *items = v;
    int single = !cJSON_IsArray(v);
    int n = single ? 1 : cJSON_GetArraySize(v);
    if (n == 0) return lnl_err(e, "%s: field '%s': empty list", what, field);
    for (int i = 0; i < n; i++) {
        const cJSON *it = single ? items : cJSON_GetArrayItem(v, i);
        char path[160], where[256], text[64];
        if (single) snprintf(path, sizeof path, "%s", field);
        else snprintf(path, sizeof path, "%s[%d]", field, i);
        snprintf(where, sizeof where, "%s: field '%s'", what, path);
        if (ax == LNL_AX_PRESET && cJSON_IsObject(it)) {
            if (read_entry(it, &tmp, what, path, e)) {
                axis_clear(&tmp);
                return -1;
            }
            continue;
        }
        if (lnl_study_axes[ax].numeric) {
            if (!cJSON_IsNumber(it)) {
                axis_clear(&tmp);
                return lnl_err(e, "%s: expected a number", where);
            }
            snprintf(text, sizeof text, "%.17g", it->valuedouble);
        } else {
            if (!cJSON_IsString(it)) {
                axis_clear(&tmp);
                return lnl_err(e, "%s: expected a string%s", where,
                               ax == LNL_AX_PRESET ? " or an object {\"preset\": ..., options...}" : "");
            }
            snprintf(text, sizeof text, "%s", it->valuestring);
        }
        if (axis_add(&tmp, ax, text, where, e)) {
            axis_clear(&tmp);
            return -1;
        }
    }
    axis_clear(a);
    *a = tmp;
    return 0;
}

static int axis_index(const char *key) {
    for (int ax = 0; ax < LNL_NAXES; ax++)
        if (strcmp(key, lnl_study_axes[ax].key) == 0) return ax;
    return -1;
}

static int read_grid(const cJSON *o, LnlStudyGrid *g, const char *what, const char *prefix, LnlErr *e) {
    if (!cJSON_IsObject(o)) return lnl_err(e, "%s: field '%s': expected an object", what, prefix);
    for (const cJSON *it = o->child; it; it = it->next) {
        char field[160];
        snprintf(field, sizeof field, "%s.%s", prefix, it->string);
        if (strcmp(it->string, "name") == 0) {
            if (!cJSON_IsString(it) || !*it->valuestring || strlen(it->valuestring) > 64)
                return lnl_err(e, "%s: field '%s': expected a string of 1 to 64 characters", what, field);
            set_str(&g->name, it->valuestring);
            continue;
        }
        int ax = axis_index(it->string), oi = option_index(it->string);
        if (oi >= 0) {
            char where[256];
            snprintf(where, sizeof where, "%s: field '%s'", what, field);
            if (read_option(it, &g->opt, oi, where, e)) return -1;
            continue;
        }
        if (ax < 0)
            return lnl_err(e, "%s: unknown field '%s' (a grid has name, the axes and the options %s)", what, field,
                           option_names());
        if (read_axis(it, &g->ax[ax], ax, what, field, e)) return -1;
    }
    if (g->ax[LNL_AX_DEPTH].n && g->ax[LNL_AX_SIZE].n)
        return lnl_err(e, "%s: field '%s': give depths or sizes, not both", what, prefix);
    return 0;
}

/* Fills axes a grid left out: from the top level, then the defaults. */
static void grid_complete(LnlStudyGrid *g, const LnlStudyGrid *top) {
    static const char *defaults[LNL_NAXES] = {[LNL_AX_PRESET] = "pre,peri", [LNL_AX_DT] = "1",
                                              [LNL_AX_DEPTH] = "4", [LNL_AX_LR] = "3e-3", [LNL_AX_SEED] = "1"};
    int has_shape = g->ax[LNL_AX_DEPTH].n || g->ax[LNL_AX_SIZE].n;
    for (int ax = 0; ax < LNL_NAXES; ax++) {
        if (g->ax[ax].n) continue;
        if ((ax == LNL_AX_DEPTH || ax == LNL_AX_SIZE) && has_shape) continue;
        if (top->ax[ax].n) {
            axis_copy(&g->ax[ax], &top->ax[ax]);
            if (ax == LNL_AX_DEPTH || ax == LNL_AX_SIZE) has_shape = 1;
        }
    }
    for (int ax = 0; ax < LNL_NAXES; ax++) {
        if (g->ax[ax].n || !defaults[ax]) continue;
        if (ax == LNL_AX_DEPTH && g->ax[LNL_AX_SIZE].n) continue;
        LnlErr e;
        if (axis_fill(&g->ax[ax], ax, &defaults[ax], 1, "default", &e)) abort();
    }
}

int lnl_study_config_parse(LnlStudyConfig *c, const char *json, const char *what, LnlErr *e) {
    config_defaults(c);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, 1);
    if (!root) {
        const char *at = end ? end : cJSON_GetErrorPtr();
        if (!at) at = json;
        char ctx[32];
        syntax_context(at, ctx, sizeof ctx);
        lnl_study_config_free(c);
        return lnl_err(e, "%s: not valid JSON at line %zu, near '%s'", what, line_of(json, at), ctx);
    }
    int r = -1;
    LnlStudyGrid top;
    memset(&top, 0, sizeof top);
    const cJSON *grids = NULL;
    if (!cJSON_IsObject(root)) {
        lnl_err(e, "%s: expected a JSON object at the top level", what);
        goto done;
    }
    for (const cJSON *it = root->child; it; it = it->next) {
        const char *k = it->string;
        if (strcmp(k, "grids") == 0) {
            grids = it;
            continue;
        }
        if (axis_index(k) >= 0) {
            if (read_axis(it, &top.ax[axis_index(k)], axis_index(k), what, k, e)) goto done;
            continue;
        }
        const LnlStudyField *f = NULL;
        for (int i = 0; i < lnl_study_nfields; i++)
            if (strcmp(k, lnl_study_fields[i].key) == 0) f = &lnl_study_fields[i];
        if (!f) {
            lnl_err(e, "%s: unknown field '%s'", what, k);
            goto done;
        }
        char where[160];
        snprintf(where, sizeof where, "%s: field '%s'", what, k);
        if (f->type == LNL_SF_STR) {
            if (cJSON_IsNull(it) && f->choices && lnl_in_choices("none", f->choices)) {
                set_str(str_at(c, f), "none");
                continue;
            }
            char text[LNL_STUDY_OPT_MAX];
            if (is_switch(f) || f->check) { /* true/false, or a number, as well as a string */
                if (field_text(f, it, text, sizeof text, where, e)) goto done;
                set_str(str_at(c, f), text);
                continue;
            }
            if (!cJSON_IsString(it)) {
                lnl_err(e, "%s: expected a string", where);
                goto done;
            }
            if (lnl_study_field_set_str(c, f, it->valuestring, where, e)) goto done;
        } else {
            if (!cJSON_IsNumber(it)) {
                lnl_err(e, "%s: expected a number", where);
                goto done;
            }
            if (lnl_study_field_set_num(c, f, it->valuedouble, where, e)) goto done;
        }
    }
    if (top.ax[LNL_AX_DEPTH].n && top.ax[LNL_AX_SIZE].n) {
        lnl_err(e, "%s: give depths or sizes, not both", what);
        goto done;
    }
    if (grids) {
        if (!cJSON_IsArray(grids) || cJSON_GetArraySize(grids) == 0) {
            lnl_err(e, "%s: field 'grids': expected a non-empty list of grid objects", what);
            goto done;
        }
        int n = cJSON_GetArraySize(grids);
        if (n > LNL_STUDY_MAX_GRIDS) {
            lnl_err(e, "%s: field 'grids': at most %d grids", what, LNL_STUDY_MAX_GRIDS);
            goto done;
        }
        for (int i = 0; i < n; i++) {
            char prefix[32];
            snprintf(prefix, sizeof prefix, "grids[%d]", i);
            c->ngrids = i + 1;
            if (read_grid(cJSON_GetArrayItem(grids, i), &c->grids[i], what, prefix, e)) goto done;
            if (!c->grids[i].name) {
                char name[32];
                snprintf(name, sizeof name, "grid%d", i + 1);
                c->grids[i].name = lnl_strdup(name);
            }
        }
    } else {
        c->ngrids = 1;
        c->grids[0].name = lnl_strdup("grid");
    }
    for (int i = 0; i < c->ngrids; i++) grid_complete(&c->grids[i], &top);
    if (lnl_study_config_validate(c, what, e)) goto done;
    r = 0;
done:
    for (int ax = 0; ax < LNL_NAXES; ax++) axis_clear(&top.ax[ax]);
    cJSON_Delete(root);
    if (r) lnl_study_config_free(c);
    return r;
}

int lnl_study_config_load(LnlStudyConfig *c, const char *path, LnlErr *e) {
    char *text = NULL;
    if (lnl_read_file(path, &text, NULL, e)) {
        memset(c, 0, sizeof *c);
        return -1;
    }
    int r = lnl_study_config_parse(c, text, path, e);
    free(text);
    return r;
}

int lnl_study_config_validate(const LnlStudyConfig *c, const char *what, LnlErr *e) {
    if (c->warmup > 0 && c->warmup >= c->steps)
        return lnl_err(e, "%s: field 'warmup': %lld must be smaller than steps %lld", what, c->warmup, c->steps);
    int any_depth = 0;
    for (int g = 0; g < c->ngrids; g++) any_depth |= c->grids[g].ax[LNL_AX_DEPTH].n > 0;
    if (any_depth && c->dim % c->heads)
        return lnl_err(e, "%s: field 'heads': %lld does not divide dim %lld", what, c->heads, c->dim);
    long long bt = c->batch * c->seq;
    if (c->total_batch && c->total_batch % bt)
        return lnl_err(e, "%s: field 'total_batch': %lld is not a multiple of batch*seq = %lld", what, c->total_batch,
                       bt);
    if (c->ngrids < 1) return lnl_err(e, "%s: no grid", what);
    /* warmup < steps for the options of every grid and preset entry too */
    for (int g = 0; g < c->ngrids; g++) {
        const LnlStudyGrid *gr = &c->grids[g];
        for (int k = 0; k < gr->ax[LNL_AX_PRESET].n; k++) {
            const LnlStudyOptions *eo = gr->ax[LNL_AX_PRESET].opt[k];
            const char *st = eo && eo->v[LNL_OPT_STEPS] ? eo->v[LNL_OPT_STEPS] : gr->opt.v[LNL_OPT_STEPS];
            const char *wu = eo && eo->v[LNL_OPT_WARMUP] ? eo->v[LNL_OPT_WARMUP] : gr->opt.v[LNL_OPT_WARMUP];
            if (!st && !wu) continue;
            long long steps = st ? atoll(st) : c->steps, warmup = wu ? atoll(wu) : c->warmup;
            if (warmup > 0 && warmup >= steps)
                return lnl_err(e, "%s: grid '%s', preset %s: warmup %lld must be smaller than steps %lld", what,
                               gr->name, gr->ax[LNL_AX_PRESET].str[k], warmup, steps);
        }
    }
    return 0;
}

static cJSON *axis_json(const LnlStudyAxis *a, int ax) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < a->n; i++) {
        cJSON *it;
        if (a->opt[i]) { /* a preset entry with options of its own */
            it = cJSON_CreateObject();
            cJSON_AddStringToObject(it, "preset", a->str[i]);
            options_json(it, a->opt[i]);
        } else {
            it = lnl_study_axes[ax].numeric ? cJSON_CreateNumber(a->num[i]) : cJSON_CreateString(a->str[i]);
        }
        cJSON_AddItemToArray(arr, it);
    }
    return arr;
}

static cJSON *fields_json(const LnlStudyConfig *c, int shared_only) {
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < lnl_study_nfields; i++) {
        const LnlStudyField *f = &lnl_study_fields[i];
        if (shared_only && !f->shared) continue;
        switch (f->type) {
        case LNL_SF_STR:
            if (is_switch(f) || f->check) cJSON_AddItemToObject(o, f->key, text_json(f, cstr_at(c, f)));
            else cJSON_AddStringToObject(o, f->key, cstr_at(c, f));
            break;
        case LNL_SF_INT: cJSON_AddNumberToObject(o, f->key, (double)*int_at((LnlStudyConfig *)c, f)); break;
        case LNL_SF_FLOAT: cJSON_AddNumberToObject(o, f->key, *dbl_at((LnlStudyConfig *)c, f)); break;
        }
    }
    return o;
}

char *lnl_study_config_to_json(const LnlStudyConfig *c) {
    cJSON *o = fields_json(c, 0);
    cJSON *grids = cJSON_AddArrayToObject(o, "grids");
    for (int g = 0; g < c->ngrids; g++) {
        cJSON *go = cJSON_CreateObject();
        cJSON_AddStringToObject(go, "name", c->grids[g].name);
        for (int ax = 0; ax < LNL_NAXES; ax++)
            if (c->grids[g].ax[ax].n) cJSON_AddItemToObject(go, lnl_study_axes[ax].key, axis_json(&c->grids[g].ax[ax], ax));
        options_json(go, &c->grids[g].opt);
        cJSON_AddItemToArray(grids, go);
    }
    char *raw = cJSON_Print(o);
    cJSON_Delete(o);
    /* cJSON indents with tabs and writes "key":\tvalue; two spaces read better in docs and editors */
    LnlBuf b = {0};
    int line_start = 1;
    for (const char *p = raw; *p; p++) {
        if (*p == '\t' && line_start) lnl_buf_append(&b, "  ", 2);
        else if (*p == '\t') lnl_buf_append(&b, " ", 1);
        else lnl_buf_append(&b, p, 1);
        line_start = *p == '\n' || (line_start && *p == '\t');
    }
    lnl_buf_append(&b, "", 1);
    cJSON_free(raw);
    return b.data;
}

char *lnl_study_settings_json(const LnlStudyConfig *c) { return lnl_study_run_settings_json(c, NULL); }

const char *lnl_study_run_precision(const LnlStudyRun *r) { return r->precision[0] ? r->precision : LNL_STUDY_FP32; }

char *lnl_study_run_settings_json(const LnlStudyConfig *c, const LnlStudyRun *r) {
    cJSON *o = fields_json(c, 1);
    if (r) cJSON_ReplaceItemInObjectCaseSensitive(o, "precision", cJSON_CreateString(lnl_study_run_precision(r)));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

void lnl_study_run_id(const LnlStudyRun *r, char *buf, size_t n) {
    char raw[2 * LNL_STUDY_ID_MAX];
    char shape[40];
    if (r->size[0]) snprintf(shape, sizeof shape, "%s", r->size);
    else snprintf(shape, sizeof shape, "L%d", r->depth);
    const char *prec = lnl_study_run_precision(r);
    int other = strcmp(prec, LNL_STUDY_FP32) != 0; /* fp32 runs keep the ids they had before the axis */
    snprintf(raw, sizeof raw, "%s%s%s-dt%g-%s-lr%g-s%lld%s%s", r->preset, r->variant[0] ? "+" : "", r->variant, r->dt,
             shape, r->lr, r->seed, other ? "-" : "", other ? prec : "");
    size_t k = 0;
    for (const char *p = raw; *p && k + 5 < n; p++) {
        char ch = *p;
        if (ch == '*') {
            memcpy(buf + k, "star", 4);
            k += 4;
        } else {
            int okc = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                      ch == '-' || ch == '+';
            buf[k++] = okc ? ch : '_';
        }
    }
    buf[k] = 0;
}

/* Fills r's options (the preset entry's, else the grid's) and the variant code they make. */
static int run_options(LnlStudyRun *r, const LnlStudyOptions *grid, const LnlStudyOptions *entry, const char *gname,
                       LnlErr *e) {
    size_t k = 0;
    r->variant[0] = 0;
    for (int i = 0; i < LNL_STUDY_NOPTS; i++) {
        const char *v = entry && entry->v[i] ? entry->v[i] : grid->v[i];
        r->opt[i][0] = 0;
        if (!v) continue;
        snprintf(r->opt[i], sizeof r->opt[i], "%s", v);
        char code[LNL_STUDY_OPT_MAX + 16];
        option_code(i, v, code, sizeof code);
        int w = snprintf(r->variant + k, sizeof r->variant - k, "%s%s", k ? "+" : "", code);
        if (w < 0 || (size_t)w >= sizeof r->variant - k)
            return lnl_err(e, "grid '%s', preset %s: the options make too long a run id (%s...)", gname, r->preset,
                           r->variant);
        k += (size_t)w;
    }
    return 0;
}

/* The indices of one point of a grid: a value of each axis (shape: a depth, or a size). */
typedef struct {
    int preset, dt, shape, lr, precision, seed;
} Point;

/* Fills run r at point p of grid gr: its values, the model shape they resolve to, and its id. */
static int make_run(const LnlStudyConfig *c, const LnlStudyGrid *gr, Point p, LnlConfig *mc, LnlStudyRun *r,
                    LnlErr *e) {
    const LnlStudyAxis *A = gr->ax;
    memset(r, 0, sizeof *r);
    r->grid = gr->name;
    snprintf(r->preset, sizeof r->preset, "%s", A[LNL_AX_PRESET].str[p.preset]);
    if (run_options(r, &gr->opt, A[LNL_AX_PRESET].opt[p.preset], gr->name, e)) return -1;
    r->dt = A[LNL_AX_DT].num[p.dt];
    r->lr = A[LNL_AX_LR].num[p.lr];
    r->seed = (long long)A[LNL_AX_SEED].num[p.seed];
    /* a grid without precisions: the shared setting */
    snprintf(r->precision, sizeof r->precision, "%s",
             A[LNL_AX_PRECISION].n ? A[LNL_AX_PRECISION].str[p.precision] : c->precision);
    if (A[LNL_AX_SIZE].n) {
        snprintf(r->size, sizeof r->size, "%s", A[LNL_AX_SIZE].str[p.shape]);
        lnl_config_default(mc);
        if (lnl_config_size(mc, r->size, e)) return -1;
        r->depth = mc->n_layer;
        r->dim = mc->n_embd;
        r->heads = mc->n_head;
    } else {
        r->depth = (int)A[LNL_AX_DEPTH].num[p.shape];
        r->dim = (int)c->dim;
        r->heads = (int)c->heads;
    }
    char full[2 * LNL_STUDY_ID_MAX];
    lnl_study_run_id(r, full, sizeof full);
    if (strlen(full) + 5 >= sizeof r->id)
        return lnl_err(e, "grid '%s': run id %s is too long (at most %d characters)", gr->name, full,
                       (int)sizeof r->id - 6);
    memcpy(r->id, full, strlen(full) + 1); /* fits: checked above */
    return 0;
}

/* Appends r to rs (n of cap) unless a run of its id is there. */
static void add_run(LnlStudyRun **rs, int *n, int *cap, LnlStudyRun *r) {
    for (int k = 0; k < *n; k++)
        if (strcmp((*rs)[k].id, r->id) == 0) return;
    if (*n == *cap) *rs = lnl_realloc(*rs, sizeof **rs * (size_t)(*cap *= 2));
    r->order = *n;
    (*rs)[(*n)++] = *r;
}

int lnl_study_expand(const LnlStudyConfig *c, LnlStudyRun **runs, int *nruns, LnlErr *e) {
    int cap = 16, n = 0, rc = 0;
    LnlStudyRun *rs = lnl_malloc(sizeof *rs * (size_t)cap);
    LnlConfig *mc = lnl_malloc(sizeof *mc);
    for (int g = 0; g < c->ngrids && !rc; g++) {
        const LnlStudyGrid *gr = &c->grids[g];
        const LnlStudyAxis *A = gr->ax;
        int nshape = A[LNL_AX_SIZE].n > 0 ? A[LNL_AX_SIZE].n : A[LNL_AX_DEPTH].n;
        int nprec = A[LNL_AX_PRECISION].n > 0 ? A[LNL_AX_PRECISION].n : 1;
        Point p;
        for (p.preset = 0; p.preset < A[LNL_AX_PRESET].n && !rc; p.preset++)
            for (p.dt = 0; p.dt < A[LNL_AX_DT].n && !rc; p.dt++)
                for (p.shape = 0; p.shape < nshape && !rc; p.shape++)
                    for (p.lr = 0; p.lr < A[LNL_AX_LR].n && !rc; p.lr++)
                        for (p.precision = 0; p.precision < nprec && !rc; p.precision++)
                            for (p.seed = 0; p.seed < A[LNL_AX_SEED].n && !rc; p.seed++) {
                                LnlStudyRun r;
                                rc = make_run(c, gr, p, mc, &r, e);
                                if (!rc) add_run(&rs, &n, &cap, &r);
                            }
    }
    free(mc);
    if (rc) {
        free(rs);
        return -1;
    }
    *runs = rs;
    *nruns = n;
    return 0;
}

/* The field a run's precision comes from, for messages: its grid's axis, else the shared setting. */
static void precision_field(const LnlStudyConfig *c, int g, char *buf, size_t n) {
    if (c->grids[g].ax[LNL_AX_PRECISION].n)
        snprintf(buf, n, "field 'precisions' (grid '%s')", c->grids[g].name);
    else snprintf(buf, n, "field 'precision'");
}

int lnl_study_config_check_host(const LnlStudyConfig *c, int have_bf16, const char *what, LnlErr *e) {
    if (have_bf16) return 0;
    for (int g = 0; g < c->ngrids; g++) {
        const LnlStudyAxis *a = &c->grids[g].ax[LNL_AX_PRECISION];
        int bf16 = 0;
        for (int i = 0; i < a->n; i++) bf16 |= strcmp(a->str[i], LNL_STUDY_FP32) != 0;
        if (!a->n) bf16 = strcmp(c->precision, LNL_STUDY_FP32) != 0;
        if (!bf16) continue;
        char field[128];
        precision_field(c, g, field, sizeof field);
        return lnl_err(e, "%s: %s: bf16 needs AVX512-BF16, which this CPU or build lacks (only fp32 runs here)", what,
                       field);
    }
    return 0;
}

/* Frees what a grid owns (its name, axes and options). */
static void grid_free(LnlStudyGrid *g) {
    free(g->name);
    g->name = NULL;
    for (int ax = 0; ax < LNL_NAXES; ax++) axis_clear(&g->ax[ax]);
    opts_clear(&g->opt);
}

int lnl_study_keep_grids(LnlStudyConfig *c, const char *const *items, int n, const char *what, LnlErr *e) {
    char want[LNL_STUDY_MAX_GRIDS] = {0};
    for (int i = 0; i < n; i++) {
        char *copy = lnl_strdup(items[i]), *save = NULL;
        for (char *name = strtok_r(copy, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
            int g = 0;
            while (g < c->ngrids && strcmp(c->grids[g].name, name)) g++;
            if (g == c->ngrids) {
                LnlBuf names = {0};
                for (int k = 0; k < c->ngrids; k++) lnl_buf_printf(&names, "%s%s", k ? ", " : "", c->grids[k].name);
                lnl_err(e, "%s: no grid '%s' in this study (its grids: %s)", what, name, names.data ? names.data : "none");
                lnl_buf_free(&names);
                free(copy);
                return -1;
            }
            want[g] = 1;
        }
        free(copy);
    }
    int k = 0;
    for (int g = 0; g < c->ngrids; g++) {
        if (want[g]) c->grids[k++] = c->grids[g];
        else grid_free(&c->grids[g]);
    }
    c->ngrids = k;
    return 0;
}

void lnl_study_single_grid(LnlStudyConfig *c, const char *name) {
    for (int g = 1; g < c->ngrids; g++) grid_free(&c->grids[g]);
    c->ngrids = c->ngrids > 0 ? 1 : 0;
    if (!c->ngrids) return;
    opts_clear(&c->grids[0].opt);
    free(c->grids[0].name);
    c->grids[0].name = lnl_strdup(name);
}

void lnl_study_config_free(LnlStudyConfig *c) {
    for (int i = 0; i < lnl_study_nfields; i++)
        if (lnl_study_fields[i].type == LNL_SF_STR) {
            free(*str_at(c, &lnl_study_fields[i]));
            *str_at(c, &lnl_study_fields[i]) = NULL;
        }
    for (int g = 0; g < c->ngrids; g++) grid_free(&c->grids[g]);
    c->ngrids = 0;
}
