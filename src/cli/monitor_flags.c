/* Flags of the training monitor (monitor_flags.h). */
#include "monitor_flags.h"

#include <string.h>

void lnl_monitor_flags_init(LnlMonitorFlags *f, LnlFlag *flags) {
    LnlMonitorOpts d;
    lnl_monitor_opts_default(&d);
    f->every = d.every;
    f->window = d.window;
    f->skip_z = d.skip_z;
    f->diverge_loss = d.diverge_loss;
    LnlFlag t[LNL_MONITOR_NFLAGS] = {
        {"--diag-every", LNL_FLAG_INT, &f->every,
         "write a per-layer diagnostics record to log.jsonl every K steps (0 = off)", 0, 1LL << 40, NULL, 0},
        {"--zscore-window", LNL_FLAG_INT, &f->window, "steps in the running window of the loss/grad-norm z-scores",
         2, 1 << 20, NULL, 0},
        {"--skip-spikes", LNL_FLAG_FLOAT, &f->skip_z,
         "skip the update of a step whose loss or grad-norm z-score exceeds Z (0 = off)", 0, 1e9, NULL, 0},
        {"--diverge-loss", LNL_FLAG_FLOAT, &f->diverge_loss,
         "stop as diverged (exit 3) when the loss exceeds its running minimum by more than X nats (0 = off; "
         "NaN/Inf always stop)", 0, 1e9, NULL, 0},
    };
    memcpy(flags, t, sizeof t);
}

LnlMonitorOpts lnl_monitor_flags_opts(const LnlMonitorFlags *f) {
    LnlMonitorOpts o = {(long)f->every, (int)f->window, f->skip_z, f->diverge_loss};
    return o;
}

void lnl_monitor_opts_to_json(const LnlMonitorOpts *o, cJSON *hp) {
    cJSON_AddNumberToObject(hp, "diag_every", (double)o->every);
    cJSON_AddNumberToObject(hp, "zscore_window", o->window);
    cJSON_AddNumberToObject(hp, "skip_spikes", o->skip_z);
    cJSON_AddNumberToObject(hp, "diverge_loss", o->diverge_loss);
}
