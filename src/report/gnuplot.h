/* Figures drawn by gnuplot, shared by the study's plots and `lnlab plot`: each figure is one
 * script in DIR/data/ (with its data files, so it can be redrawn by hand) run once for a PNG and
 * once for an SVG into temporary names, both renamed into DIR/ only when both were written. It
 * knows nothing of what is drawn. */
#ifndef LNL_REPORT_GNUPLOT_H
#define LNL_REPORT_GNUPLOT_H

#include "../common/util.h"

typedef struct {
    char base[160];  /* file name without extension: DIR/<base>.png and .svg */
    char title[256];
    char section[32]; /* the caller's grouping ("loss", "heatmap", ...) */
    int ok;           /* both files were written */
    char why[256];    /* gnuplot's complaint when not ok */
} LnlFigure;

typedef struct {
    LnlFigure *p;
    int n;
    char why_none[512]; /* set when gnuplot could not be used at all */
} LnlFigures;

typedef struct {
    const char *gnuplot;  /* the command */
    const char *term_png; /* "pngcairo", or "png" for a gnuplot built without cairo */
    const char *made_by;  /* "lnlab study": named in each script's first line */
    char *dir, *data_dir; /* DIR and DIR/data (owned) */
    LnlFigures *figs;     /* where new figures are listed */
    int usable;           /* gnuplot runs; when 0, figs->why_none says why */
} LnlPlotter;

/* Creates DIR and DIR/data and checks that gnuplot runs (if not: usable 0 and why_none set,
 * which is not an error). With clear, the PNG and SVG files of an earlier drawing in DIR go first.
 * Returns -1 only when the directories cannot be made. */
int lnl_plotter_open(LnlPlotter *x, const char *dir, const char *gnuplot, const char *made_by, int clear,
                     LnlFigures *figs, LnlErr *e);
void lnl_plotter_close(LnlPlotter *x);

/* The i-th colour of the line palette (cycles after LNL_PLOT_NCOLORS). */
#define LNL_PLOT_NCOLORS 10
const char *lnl_plot_color(int i);
/* The sequential palette of heatmaps, as a gnuplot `set palette` command with its newline. */
extern const char *const lnl_plot_heat_palette;

/* Appends s to b as a gnuplot string in double quotes (backslashes and quotes escaped, line
 * breaks as \n), for titles and labels made of names that may hold any character. */
void lnl_plot_str(LnlBuf *b, const char *s);

/* A logarithmic axis over [lo, hi] (positive) that shows its values: "set AXISrange" a little
 * wider than the values, and "set AXIStics" at 1, 2 and 5 (or, over less than a decade, at more
 * steps) times powers of ten, where gnuplot would put none or one between decades. axis: "y",
 * "cb". */
void lnl_plot_log_axis(LnlBuf *b, const char *axis, double lo, double hi);

/* Appends " v" to a data file's line, or " NaN" (gnuplot's missing value) when v is not finite. */
void lnl_plot_num(LnlBuf *b, double v);

/* The window of a loss curve's smoothing: (n / 25) | 1 steps from 50 steps on, else 1 (none). */
int lnl_plot_smooth_window(long long n);
/* Centred mean of the finite values within w/2 entries of each of v[0..n-1] (w odd) into out; NAN
 * where v is not finite. */
void lnl_plot_smooth(const double *v, long long n, int w, double *out);

/* Writes the data file DIR/data/<name> atomically. */
int lnl_plot_data(LnlPlotter *x, const char *name, const LnlBuf *b, LnlErr *e);
/* Lists a new figure (not drawn yet). The pointer is valid until the next lnl_plot_new. */
LnlFigure *lnl_plot_new(LnlPlotter *x, const char *section, const char *base, const char *title);
/* Writes data/<base>.gp drawing body (gnuplot commands; data files as 'data/NAME') at w x h
 * pixels, as PNG and as SVG, and runs it in DIR. p->ok says whether both files were written,
 * p->why what gnuplot said if not. Returns -1 only when the script cannot be written. */
int lnl_plot_draw(LnlPlotter *x, LnlFigure *p, const char *body, int w, int h, LnlErr *e);

void lnl_figures_free(LnlFigures *f);

#endif
