/* The flags that describe a model (sizes, placement, norm, dt, spec overrides), shared by every
 * command that builds a model or overrides a loaded model's config. */
#ifndef LNL_MODEL_FLAGS_H
#define LNL_MODEL_FLAGS_H

#include "../model/spec.h"
#include "flags.h"

typedef struct {
    const char *size, *preset, *norm, *spec;
    long long layers, heads, dim, seq, vocab, branchnorm_steps;
    double dt, mix_ratio, init_std, eps;
    int embed_norm, embed_scale;
} LnlModelFlags;

#define LNL_MODEL_NFLAGS 16
/* Sets the defaults and writes the flag table entries into flags[0 .. LNL_MODEL_NFLAGS-1]. */
void lnl_model_flags_init(LnlModelFlags *mf, LnlFlag *flags);
/* For commands that load a model: the flags' help says they default to the file's values. */
void lnl_model_flags_for_loaded_model(LnlFlag *flags);
/* Builds a config from scratch: size, then explicit sizes, preset, norm, dt, extras, --spec. */
int lnl_model_flags_config(const LnlModelFlags *mf, const LnlFlag *flags, LnlConfig *c, LnlErr *e);
/* Applies only the flags given on the command line to a config loaded from a file. A new preset
 * or size re-derives the spec; --spec is applied last. */
int lnl_model_flags_override(const LnlModelFlags *mf, const LnlFlag *flags, LnlConfig *c, LnlErr *e);

#endif
