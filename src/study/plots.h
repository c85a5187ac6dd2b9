/* The study's plots, drawn by gnuplot as PNG and SVG into OUT/plots/: loss curves (train and
 * val against step, one figure per setting with every preset and seed), hidden_mean_abs and both
 * variances against layer (one figure of three panels per preset, like Figure 1 of Kan et al.),
 * gradient norm against layer, local sensitivity against layer when measured, and layer x step
 * heatmaps of the diag records, a panel per preset at one setting (src/report/heatmap.h). The data
 * files and gnuplot scripts stay in OUT/plots/data/ so a figure can be redrawn by hand. */
#ifndef LNL_STUDY_PLOTS_H
#define LNL_STUDY_PLOTS_H

#include "../report/gnuplot.h"
#include "config.h"
#include "results.h"

typedef LnlFigure LnlStudyPlot;   /* section: "lr", "loss", "hidden", "grad", "sensitivity", "heatmap" */
typedef LnlFigures LnlStudyPlots;

/* rs[i] is valid where have[i]. gnuplot is the command to run. Never fails for want of
 * gnuplot: the reason lands in why_none / p[i].why. Returns -1 only on I/O errors. */
int lnl_study_plots_make(const char *out, const char *gnuplot, const LnlStudyResult *rs, const int *have, int n,
                         LnlStudyPlots *pl, LnlErr *e);
void lnl_study_plots_free(LnlStudyPlots *pl);

/* The base names (OUT/plots/<base>.png) of the figures a run is drawn in: its setting's loss
 * curves at its learning rate, its setting's val loss against learning rate (drawn when the
 * setting has 3 or more), and its preset's hidden-state figure; for the findings to show beside
 * each claim. */
void lnl_study_loss_figure(const LnlStudyRun *r, char *base, size_t n);
void lnl_study_lr_figure(const LnlStudyRun *r, char *base, size_t n);
void lnl_study_hidden_figure(const char *preset, char *base, size_t n);

#endif
