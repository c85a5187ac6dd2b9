/* The training-monitor flags of `lnlab train` (src/diag/monitor.h): diagnostics records, z-score
 * window, spike skipping, divergence threshold. Kept apart from cmd_train.c's own table. */
#ifndef LNL_MONITOR_FLAGS_H
#define LNL_MONITOR_FLAGS_H

#include <cjson/cJSON.h>

#include "../diag/monitor.h"
#include "flags.h"

typedef struct {
    long long every, window;
    double skip_z, diverge_loss;
} LnlMonitorFlags;

#define LNL_MONITOR_NFLAGS 4
/* Sets the defaults and writes the flag table entries into flags[0 .. LNL_MONITOR_NFLAGS-1]. */
void lnl_monitor_flags_init(LnlMonitorFlags *f, LnlFlag *flags);
LnlMonitorOpts lnl_monitor_flags_opts(const LnlMonitorFlags *f);
/* Adds the settings to the training settings stored in RUN/config.json. */
void lnl_monitor_opts_to_json(const LnlMonitorOpts *o, cJSON *hp);

#endif
