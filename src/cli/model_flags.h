/* The flags that describe a model (sizes, placement, norm, dt, logit softcap, spec overrides), shared by every
 * command that builds a model or overrides a loaded model's config. */
#ifndef LNL_MODEL_FLAGS_H
#define LNL_MODEL_FLAGS_H

#include "../io/model_io.h"
#include "../model/model.h"
#include "../model/spec.h"
#include "flags.h"

typedef struct {
    const char *size, *preset, *norm, *spec;
    const char *init_std;         /* a number or "1/sqrt(C)"; NULL: the preset's */
    const char *resid_scale_init; /* "on" | "off"; NULL: the preset's */
    const char *bias;             /* "on" | "off"; NULL: the preset's */
    const char *qk_norm;          /* LNL_QK_NORM_NAMES; NULL: the preset's (off) */
    long long layers, heads, dim, seq, vocab, branchnorm_steps;
    double dt, mix_ratio, eps, attn_softcap, logit_softcap;
    int embed_norm, embed_scale;  /* read only when their flag is given: else the preset's */
    const char *norm_gain;        /* LNL_NORM_GAINS */
    double alpha[3];              /* DyT / Derf's initial a by position (LNL_ALPHA_*); read when given */
    int embed_scale_learned;
} LnlModelFlags;

#define LNL_MODEL_NFLAGS 26
/* Sets the defaults and writes the flag table entries into flags[0 .. LNL_MODEL_NFLAGS-1]. */
void lnl_model_flags_init(LnlModelFlags *mf, LnlFlag *flags);
/* For commands that load a model: the flags' help says they default to the file's values. */
void lnl_model_flags_for_loaded_model(LnlFlag *flags);
/* For commands that run a loaded model on data (eval, probe): as lnl_model_flags_for_loaded_model,
 * and --seq becomes the run's T (default 0: the model's n_positions, see
 * lnl_model_flags_seq_or_exit); the loaded model's n_positions is never changed by a flag. */
void lnl_model_flags_for_evaluation(LnlModelFlags *mf, LnlFlag *flags);
/* Builds a config from scratch: size, then explicit sizes, norm, preset (with its defaults for
 * the init, the biases and the embedding), then dt and the flags that change those defaults,
 * then --spec. */
int lnl_model_flags_config(const LnlModelFlags *mf, const LnlFlag *flags, LnlConfig *c, LnlErr *e);
/* Applies only the flags given on the command line to a config loaded from a file. A new preset
 * or size re-derives the placement spec; the file's biases, embedding norm and scale and init
 * rules stay unless their own flags are given (they decide which tensors the file must hold);
 * --spec is applied last. */
int lnl_model_flags_override(const LnlModelFlags *mf, const LnlFlag *flags, LnlConfig *c, LnlErr *e);

/* Every command that loads a model goes through here: loads path with hook (the command-line
 * overrides, see lnl_model_flags_override) changing its config. Then, if data is not NULL, the
 * model must fit it: a vocabulary other than the one data's meta.json gives is refused
 * (lnl_data_check_vocab); that returns -2 with the message "--data: ..." and no model, other
 * failures -1. On success, when the model built computes something other than what the file
 * says (lnl_config_diff), one line goes to stderr, whatever --quiet says:
 *   lnlab: note: PATH: the command line overrides the file's config: preset post -> b2t, dt 1 -> 0.1 */
int lnl_model_flags_load(LnlModel *m, const char *path, const char *data, LnlConfigHook hook, void *ctx, LnlErr *e);
/* For commands that load a model: lnl_model_flags_load with the model flags given on the
 * command line overriding its config. Exits 2 when a flag is the problem, 1 when the file or the
 * data is. */
void lnl_model_flags_load_or_exit(LnlModel *m, const char *path, const char *data, const LnlModelFlags *mf,
                                  const LnlFlag *flags);
/* The sequence length T for a loaded model: --seq if given (at most n_positions), else the
 * model's n_positions; B*T must fit one batch. Exits 2 otherwise. */
int lnl_model_flags_seq_or_exit(const LnlModel *m, const LnlModelFlags *mf, long long batch);

#endif
