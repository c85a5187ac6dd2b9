/* The view of one training run (`lnlab plot RUN`): its loss (train and val), learning rate,
 * gradient norm, tokens/s and per-layer heatmaps as PNG and SVG in RUN/plots/, and RUN/report.html
 * (one self-contained page: the run's status, settings, provenance and figures). It only reads
 * the run's files and never takes its lock, so it works on a run in progress; everything it
 * writes goes through a temporary name and a rename. Not the run's numbers (the trainer's). */
#ifndef LNL_REPORT_RUNPLOT_H
#define LNL_REPORT_RUNPLOT_H

#include "../common/util.h"

#define LNL_RUN_REPORT_FILE "report.html"
#define LNL_RUN_PLOTS_DIR "plots"

typedef struct {
    char status[16];      /* running, stopped, finished, diverged, failed */
    char detail[512];     /* one sentence about it */
    long long steps;      /* step records read */
    long long torn_line;  /* a running run's last line being written, skipped; 0: none */
    int drawn, failed;    /* figures drawn, figures gnuplot failed on */
    char why_none[512];   /* why there are no figures at all, or "" */
} LnlRunPlotInfo;

/* Draws the figures and writes the report of the run directory run with the gnuplot command.
 * Errors (no such directory, no log, a line of the log that is not a record, a torn last line
 * of a run that is not running, an unreadable result.json or config.json) name the file and
 * line. gnuplot missing or failing is not an error: the report says why figures are missing. */
int lnl_run_plot(const char *run, const char *gnuplot, LnlRunPlotInfo *info, LnlErr *e);

#endif
