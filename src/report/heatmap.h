/* Layer x step heatmaps of the diag records of runs' logs (--diag-every): one figure per figure
 * of the record, one panel per run, on one shared colour scale. Used by the study's plots and by
 * `lnlab plot`. */
#ifndef LNL_REPORT_HEATMAP_H
#define LNL_REPORT_HEATMAP_H

#include "gnuplot.h"
#include "logread.h"

/* A figure of the diag record that has a heatmap: its key, what it is, its colour bar's label
 * with units, and whether it is a magnitude (drawn on a logarithmic colour scale) or may have
 * either sign (a linear one). */
typedef struct {
    const char *key, *what, *unit;
    int log;
} LnlHeatMetric;
#define LNL_HEAT_NMETRICS 4
/* hidden_mean_abs, grad_norm, update_rms, attn_logit_max */
extern const LnlHeatMetric lnl_heat_metrics[LNL_HEAT_NMETRICS];

typedef struct {
    const char *label;          /* the panel's title */
    const LnlLogRecords *log;   /* its run's records */
} LnlHeatPanel;

/* Draws metric m of every panel's run as the figure base (listed under section, titled title):
 * layer on y, step on x, each diag record a column of cells reaching half-way to its
 * neighbours; one colour scale for all panels: for a magnitude logarithmic over the positive
 * values (cells of 0 or below pink; linear when no value is positive), else linear; cells
 * without a finite value grey. Panels whose runs have no such record say so. Draws nothing
 * (and returns 0) when no panel has a record. Returns -1 only on I/O errors. */
int lnl_heatmap_draw(LnlPlotter *x, const char *section, const char *base, const char *title,
                     const LnlHeatMetric *m, const LnlHeatPanel *p, int n, LnlErr *e);

#endif
