/* The study's plots, drawn by gnuplot as PNG and SVG into OUT/plots/: loss curves (train and
 * val against step, one figure per setting with every preset and seed), hidden_mean_abs and both
 * variances against layer (one figure of three panels per preset, like Figure 1 of Kan et al.),
 * gradient norm against layer, and local sensitivity against layer when measured. The data
 * files and gnuplot scripts stay in OUT/plots/data/ so a figure can be redrawn by hand. */
#ifndef LNL_STUDY_PLOTS_H
#define LNL_STUDY_PLOTS_H

#include "config.h"
#include "results.h"

typedef struct {
    char base[160];  /* file name without extension: OUT/plots/<base>.png and .svg */
    char title[256];
    char section[32]; /* "lr", "loss", "hidden", "grad", "sensitivity" */
    int ok;           /* both files were written */
    char why[256];    /* gnuplot's complaint when not ok */
} LnlStudyPlot;

typedef struct {
    LnlStudyPlot *p;
    int n;
    char why_none[512]; /* set when gnuplot could not be used at all */
} LnlStudyPlots;

/* rs[i] is valid where have[i]. gnuplot is the command to run. Never fails for want of
 * gnuplot: the reason lands in why_none / p[i].why. Returns -1 only on I/O errors. */
int lnl_study_plots_make(const char *out, const char *gnuplot, const LnlStudyResult *rs, const int *have, int n,
                         LnlStudyPlots *pl, LnlErr *e);
void lnl_study_plots_free(LnlStudyPlots *pl);

#endif
