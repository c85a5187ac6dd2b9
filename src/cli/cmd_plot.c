/* lnlab plot RUN: the figures of one training run into RUN/plots/ and its page RUN/report.html
 * (src/report/runplot.h), for a finished, stopped, diverged or running run. It reads the run's
 * files and writes only those two; it never takes the run's lock. */
#include <stdio.h>

#include "../report/runplot.h"
#include "flags.h"

int cmd_plot(int argc, char **argv) {
    const char *gnuplot = "gnuplot";
    int quiet = 0;
    LnlFlag flags[] = {
        {"--gnuplot", LNL_FLAG_STR, &gnuplot, "the gnuplot command that draws the figures", 1, 0, NULL, 0},
        {"--quiet", LNL_FLAG_BOOL, &quiet, "print nothing on success", 1, 0, NULL, 0},
    };
    const char *pos[1];
    int npos = 0;
    lnl_flags_parse_or_exit("plot",
                            "RUN [--gnuplot CMD] [--quiet]\n"
                            "       figures of a training run directory into RUN/plots/ and RUN/report.html",
                            flags, (int)(sizeof flags / sizeof flags[0]), argc, argv, pos, 1, &npos);
    if (npos != 1) lnl_die(2, "plot: give one run directory (lnlab plot RUN)");
    LnlErr e;
    LnlRunPlotInfo info;
    if (lnl_run_plot(pos[0], gnuplot, &info, &e)) lnl_die(1, "%s", e.msg);
    if (!quiet) {
        if (info.torn_line)
            printf("plot: line %lld of %s/log.jsonl is still being written; skipped\n", info.torn_line, pos[0]);
        if (info.why_none[0]) printf("plot: no figures: %s\n", info.why_none);
        printf("plot: %s/%s: %s; %d figures (PNG and SVG) in %s/%s/%s\n", pos[0], LNL_RUN_REPORT_FILE, info.status,
               info.drawn, pos[0], LNL_RUN_PLOTS_DIR, info.failed ? "; some failed (the page says why)" : "");
    }
    if (fflush(stdout) != 0 || ferror(stdout)) lnl_die(1, "plot: error writing stdout");
    return 0;
}
