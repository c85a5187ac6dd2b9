/* The flags of `lnlab train` made from the training settings' table (train/settings.h), those that
 * concern checkpoints and resuming (--resume, --keep-checkpoints, --stop-after), and how a resumed
 * run gets its settings back: every training flag's value is
 * stored in RUN/config.json's "train" object under the flag's name without "--" and with '_'
 * for '-' (--total-batch -> "total_batch"), and --resume RUN sets each flag from there, so the
 * command then runs exactly as the first time. Not the checkpoint format (train/checkpoint.h). */
#ifndef LNL_TRAIN_RESUME_H
#define LNL_TRAIN_RESUME_H

#include <cjson/cJSON.h>

#include "../train/settings.h"
#include "flags.h"

typedef struct {
    const char *resume;    /* run directory to continue, or NULL */
    long long keep;        /* --keep-checkpoints: newest complete checkpoints kept (0 = all) */
    long long stop_after;  /* --stop-after: stop as on SIGTERM after this step (0 = never) */
} LnlResumeFlags;

/* Writes the flag of every training setting, in table order, into flags[0 .. LNL_TRAIN_NSETTINGS-1],
 * each setting its member of s; s holds the defaults (lnl_train_settings_default). */
void lnl_train_settings_flags(LnlTrainSettings *s, LnlFlag *flags);

#define LNL_RESUME_NFLAGS 3
/* Sets the defaults and writes the flag table entries into flags[0 .. LNL_RESUME_NFLAGS-1]. */
void lnl_resume_flags_init(LnlResumeFlags *rf, LnlFlag *flags);

/* Adds each flag's value to `train` under its JSON name unless the object has that key already.
 * flags[0 .. nmodel-1] are model flags (the model config is stored on its own): of those only
 * --seq is recorded. Flags that describe one invocation (--resume, --quiet, --stop-after, --out,
 * and the console's --sample-every and --sample-tokens) are not recorded. */
void lnl_resume_record_flags(cJSON *train, const LnlFlag *flags, int nflags, int nmodel);

/* For --resume RUN: fails (a usage error) if a flag other than those listed below was given. */
int lnl_resume_check_flags(const char *run, const LnlFlag *flags, int nflags, LnlErr *e);
/* For --resume RUN: reads RUN/config.json and sets every recorded flag from its "train" object,
 * through the flag parser (same types and ranges). Flags given on the command line (only those
 * lnl_resume_check_flags lets through: --quiet, --stop-after, --sample-every and --sample-tokens,
 * which do not change the run's arithmetic, and --keep-checkpoints and --checkpoint-every, which
 * change only what is kept on disk) override the stored values. `seen` keeps
 * meaning "given on the command line". *root receives the parsed file, which owns the restored
 * strings: cJSON_Delete it when the flags are no longer used. A finished run (RUN/model.safetensors
 * exists) is an error. */
int lnl_resume_flags(const char *run, LnlFlag *flags, int nflags, int nmodel, cJSON **root, LnlErr *e);

#endif
