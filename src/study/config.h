/* The study's configuration: shared run settings plus grids of presets x dt x depth (or named
 * size) x learning rate x precision x seed, with model and training options per grid and per preset entry,
 * read from a JSON file, the built-in studies, and flags, and expanded into the list of runs.
 * It runs nothing (study.h does). */
#ifndef LNL_STUDY_CONFIG_H
#define LNL_STUDY_CONFIG_H

#include <stddef.h>

#include "../common/util.h"
#include "../train/settings.h"

#define LNL_STUDY_MAX_VALUES 64 /* values per axis */
#define LNL_STUDY_MAX_GRIDS 16
#define LNL_STUDY_ID_MAX 128

/* The axes of a grid, in the order their values vary in the run list (seed fastest). A grid
 * without precisions runs at the shared setting `precision` (its default). */
enum { LNL_AX_PRESET, LNL_AX_DT, LNL_AX_DEPTH, LNL_AX_SIZE, LNL_AX_LR, LNL_AX_PRECISION, LNL_AX_SEED, LNL_NAXES };
#define LNL_STUDY_FP32 "fp32" /* the precision whose runs' ids and command lines do not name it */

/* The options a grid, or one preset entry of a grid, may set for its runs over the shared
 * settings of the same name (the option table, lnl_study_options, in config.c). */
enum {
    LNL_OPT_INIT_STD, LNL_OPT_RESID_SCALE_INIT, LNL_OPT_BIAS, LNL_OPT_EMBED_NORM, LNL_OPT_EMBED_SCALE, /* model */
    LNL_OPT_STEPS, LNL_OPT_WARMUP, LNL_OPT_SCHEDULE, LNL_OPT_MIN_LR_FRAC, LNL_OPT_WEIGHT_DECAY,         /* training */
    LNL_OPT_GRAD_CLIP, LNL_STUDY_NOPTS
};
#define LNL_STUDY_OPT_MAX 32 /* characters of an option's value as text */
typedef struct {
    char *v[LNL_STUDY_NOPTS]; /* canonical text ("on", "off", "preset", "1/sqrt(C)", "%.17g"), NULL: not set; owned */
} LnlStudyOptions;

typedef struct {
    int n; /* 0: not given (falls back to the config's top-level axis, then the default) */
    double num[LNL_STUDY_MAX_VALUES];  /* numeric axes */
    char *str[LNL_STUDY_MAX_VALUES];   /* string axes (owned) */
    LnlStudyOptions *opt[LNL_STUDY_MAX_VALUES]; /* presets: the entry's own options, or NULL (owned) */
} LnlStudyAxis;

typedef struct {
    char *name; /* owned */
    LnlStudyAxis ax[LNL_NAXES];
    LnlStudyOptions opt; /* for every run of the grid; a preset entry's own options win */
} LnlStudyGrid;

/* Shared settings. Every field is described once in the field table of config.c (a training
 * setting's key, type, range, choices and default in its row of train/settings.h), which drives
 * the JSON reader and writer, the flags of `lnlab study` and the resume check. */
typedef struct {
    char *data, *corpus, *tokenizer, *norm, *sensitivity, *gnuplot; /* owned */
    char *init_std, *resid_scale_init, *bias, *embed_norm, *embed_scale;       /* owned; "preset": the preset's */
    long long dim, heads, seq, vocab, probe_batch, jobs, threads, keep_checkpoints, diag_every;
    double diverge_loss, skip_spikes, spike_nats;
    /* training settings (train/settings.h), each of its row's type; a run gets them as train's flags */
    long long batch, total_batch, steps, warmup, eval_every, eval_batches, checkpoint_every;
    double min_lr_frac, beta1, beta2, adam_eps, weight_decay, grad_clip, z_loss;
    char *schedule; /* owned */
    char *precision; /* owned; the precision of the runs of a grid without the precisions axis */
    int ngrids;
    LnlStudyGrid grids[LNL_STUDY_MAX_GRIDS];
} LnlStudyConfig;

/* One run of the study: a point of a grid, with the model shape it resolves to. */
typedef struct {
    char id[LNL_STUDY_ID_MAX]; /* directory name under OUT/runs/, unique in the study */
    int order;                 /* position in the run list (the order of tables and results.jsonl) */
    const char *grid;          /* name of the first grid that produced it */
    char preset[32];
    char variant[LNL_STUDY_ID_MAX]; /* the options its grid and preset entry set, as in the id ("" if none) */
    char opt[LNL_STUDY_NOPTS][LNL_STUDY_OPT_MAX]; /* those options' values ("" where not set) */
    char size[32]; /* "" unless the grid has sizes */
    char precision[8]; /* "fp32" or "bf16": the matrix products' arithmetic ("" reads as fp32) */
    double dt, lr;
    long long seed;
    int depth, dim, heads;
} LnlStudyRun;

/* Built-in studies: "default" (the comparison `lnlab study` runs with no arguments, about 12
 * minutes on 2 cores), "thorough" (longer runs, about 2 hours) and "paper" (the source paper's
 * setup, for large machines). */
#define LNL_STUDY_BUILTINS "default|thorough|paper"
int lnl_study_config_builtin(LnlStudyConfig *c, const char *name, LnlErr *e);

/* Reads a JSON config file over the defaults of every field (not over a built-in study's grids).
 * Errors name the file and the field. */
int lnl_study_config_load(LnlStudyConfig *c, const char *path, LnlErr *e);
/* Same, from text; `what` names the source in messages. */
int lnl_study_config_parse(LnlStudyConfig *c, const char *json, const char *what, LnlErr *e);

/* The config as indented JSON that lnl_study_config_parse reads back (caller frees with free()). */
char *lnl_study_config_to_json(const LnlStudyConfig *c);
/* The settings that decide a run's numbers (not jobs, threads, gnuplot, ...), as compact JSON;
 * a finished run is reused only under the same settings. Caller frees. */
char *lnl_study_settings_json(const LnlStudyConfig *c);
/* The same for run r: its own precision as "precision" (the key in place, so that an fp32 run's
 * settings are the study's as they were before precision became an axis). Caller frees. */
char *lnl_study_run_settings_json(const LnlStudyConfig *c, const LnlStudyRun *r);
/* Run r's precision: "fp32" where it has none. */
const char *lnl_study_run_precision(const LnlStudyRun *r);

/* Checks the settings together (heads divide dim, warmup < steps, ...). */
int lnl_study_config_validate(const LnlStudyConfig *c, const char *what, LnlErr *e);
/* Checks that this machine can run every run: a bf16 run (the precision field, or the precisions
 * of a grid) needs have_bf16 (lnl_version_bf16(): a CPU and build with AVX512-BF16). The error
 * names the field. */
int lnl_study_config_check_host(const LnlStudyConfig *c, int have_bf16, const char *what, LnlErr *e);

/* Expands every grid into runs, in grid order, dropping repeats of an id. *runs is allocated. */
int lnl_study_expand(const LnlStudyConfig *c, LnlStudyRun **runs, int *nruns, LnlErr *e);

/* Keeps only the grids named in items (each may hold several names, comma separated), in their
 * order in the study; an unknown name is an error that lists the study's grids. */
int lnl_study_keep_grids(LnlStudyConfig *c, const char *const *items, int n, const char *what, LnlErr *e);
/* Keeps only the first grid, without its options, renamed: what the study becomes when flags give
 * every axis. */
void lnl_study_single_grid(LnlStudyConfig *c, const char *name);

void lnl_study_config_free(LnlStudyConfig *c);

/* The field table: every shared setting once (JSON key, type, place in the struct, range,
 * choices, help). The JSON reader and writer, the resume check and the flags of `lnlab study`
 * (src/cli/cmd_study.c: `--KEY` with '-' for '_') are all driven by it. */
typedef enum { LNL_SF_STR, LNL_SF_INT, LNL_SF_FLOAT } LnlStudyFieldType;
typedef struct {
    const char *key;
    LnlStudyFieldType type;
    size_t off;          /* offset of the char* / long long / double field in LnlStudyConfig */
    double lo, hi;       /* inclusive range of numbers */
    const char *choices; /* "a|b" for strings, or NULL */
    int shared;          /* decides a run's numbers: recorded per run, checked on resume */
    const char *help;
    int (*check)(const char *v, const char *what, LnlErr *e); /* more checks of a string, or NULL */
} LnlStudyField;
extern const LnlStudyField lnl_study_fields[];
extern const int lnl_study_nfields;

/* The axes: JSON key (also the flag name), numeric or not, range, help. */
typedef struct {
    const char *key;
    int numeric;
    int integer;
    double lo, hi;
    const char *help;
} LnlStudyAxisDef;
extern const LnlStudyAxisDef lnl_study_axes[LNL_NAXES];

/* Set one field from a flag (`what` names it in messages); values are checked as in a file. */
int lnl_study_field_set_str(LnlStudyConfig *c, const LnlStudyField *f, const char *v, const char *what, LnlErr *e);
int lnl_study_field_set_num(LnlStudyConfig *c, const LnlStudyField *f, double v, const char *what, LnlErr *e);
/* Sets axis ax of every grid to the values in items (each item may hold several, comma
 * separated). Depths clear sizes and sizes clear depths. */
int lnl_study_axis_set_all(LnlStudyConfig *c, int ax, const char *const *items, int n, const char *what, LnlErr *e);

/* The options: JSON key (that of the shared setting it overrides), the `lnlab train` flag, and
 * the code that names a value in run ids ("en" / "noen" / "enpreset" for embed_norm on / off /
 * preset, "std1_sqrtC", "steps400"). */
typedef struct {
    const char *key, *flag, *code;
    int flag_bool; /* the flag is a bool: --flag=true|false for on|off */
} LnlStudyOptionDef;
extern const LnlStudyOptionDef lnl_study_options[LNL_STUDY_NOPTS];

/* The `lnlab train` words for run r's options, in table order: each option's own value for the
 * run, else the shared setting; a model option left to the preset ("preset") gives none.
 * Writes up to 2 * LNL_STUDY_NOPTS words of at most LNL_STUDY_ARG_MAX characters; returns how many. */
#define LNL_STUDY_ARG_MAX 64
int lnl_study_train_args(const LnlStudyConfig *c, const LnlStudyRun *r, char words[][LNL_STUDY_ARG_MAX]);

/* A run id: preset[+variant]-dtD-LN|size-lrR-sS[-precision], with characters outside
 * [A-Za-z0-9.+-] replaced; variant joins the codes of the options the run's grid and preset entry
 * set (peri+en-dt1-L8-lr0.01-s1), and a precision other than fp32 ends it (pre-dt1-L8-lr0.01-s1-bf16),
 * so the ids of fp32 runs are those they had before precision was an axis. */
void lnl_study_run_id(const LnlStudyRun *r, char *buf, size_t n);

#endif
