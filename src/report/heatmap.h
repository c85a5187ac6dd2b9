/* Layer x step heatmaps of the diag records of runs' logs (--diag-every): one figure per figure
 * of the record, one panel per run, on one shared colour scale. Used by the study's plots and by
 * `lnlab plot`. */
#ifndef LNL_REPORT_HEATMAP_H
#define LNL_REPORT_HEATMAP_H

#include <stddef.h>

#include "gnuplot.h"
#include "logread.h"

/* The figures of the diag record that have a heatmap are the per-layer metrics with
 * LNL_LMF_HEATMAP (src/diag/metrics.h): their key, colour-bar label (UNIT) and scale (LOG: a
 * magnitude on a logarithmic colour scale, else a linear one for values of either sign). */

/* A heatmap's title: "NAME (KEY) by layer and step" and tail, with " of each block" after NAME for
 * a block metric. */
void lnl_heatmap_title(int metric, const char *tail, char *buf, size_t n);

typedef struct {
    const char *label;          /* the panel's title */
    const LnlLogRecords *log;   /* its run's records */
} LnlHeatPanel;

/* Draws per-layer metric `metric` (metrics.h) of every panel's run as the figure base (listed under section, titled title):
 * layer on y, step on x, each diag record a column of cells reaching half-way to its
 * neighbours; one colour scale for all panels: for a magnitude logarithmic over the positive
 * values (cells of 0 or below pink; linear when no value is positive), else linear; cells
 * without a finite value grey. Panels whose runs have no such record say so. Draws nothing
 * (and returns 0) when no panel has a record. Returns -1 only on I/O errors. */
int lnl_heatmap_draw(LnlPlotter *x, const char *section, const char *base, const char *title,
                     int metric, const LnlHeatPanel *p, int n, LnlErr *e);

#endif
