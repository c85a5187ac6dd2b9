/* Layer x step heatmaps (heatmap.h): each cell a gnuplot boxxyerror coloured by the palette, so
 * that diag records at uneven steps (the step that diverged) keep their own widths. */
#include "heatmap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../diag/metrics.h"

void lnl_heatmap_title(int metric, const char *tail, char *buf, size_t n) {
    const LnlLayerMetric *m = &lnl_layer_metrics[metric];
    snprintf(buf, n, "%s%s (%s) by layer and step%s", m->name, m->rows == LNL_ROWS_BLOCK ? " of each block" : "", m->key,
             tail);
}

/* pixels: one panel (with its axes' labels), the title above them, the colour bar's column */
#define PANEL_W 440
#define PANEL_W1 820 /* a figure of one panel */
#define PANEL_H 320
#define TOP_H 56
#define CB_W 130
/* pixels inside a panel around its plot area: left (y labels), right, top (title), bottom (x labels) */
#define IN_L 72
#define IN_R 14
#define IN_T 34
#define IN_B 56

/* The left and right edges of the cell of record i at steps s[0..n-1]: half-way to its neighbours. */
static void cell_edges(const double *s, int n, int i, double *lo, double *hi) {
    double left = i > 0 ? s[i] - s[i - 1] : n > 1 ? s[1] - s[0] : s[0] > 1 ? s[0] : 1;
    double right = i < n - 1 ? s[i + 1] - s[i] : left;
    if (i == 0 && n > 1) left = right;
    if (i == n - 1 && n > 1) right = s[i] - s[i - 1];
    *lo = s[i] - left / 2;
    *hi = s[i] + right / 2;
}

/* The classes of cells: coloured by the palette, off the logarithmic scale (0 or below, as
 * update_rms of a skipped step), without a finite value. */
enum { CELL_VALUE, CELL_LOW, CELL_NONE, NCLASS };
static const char *const class_name[NCLASS] = {"", "low", "none"};
static const char *const class_colour[NCLASS] = {"", "#f4c7c3", "#9e9e9e"};

int lnl_heatmap_draw(LnlPlotter *x, const char *section, const char *base, const char *title,
                     int metric, const LnlHeatPanel *p, int n, LnlErr *e) {
    const LnlLayerMetric *m = &lnl_layer_metrics[metric];
    LnlLogMatrix *mx = lnl_calloc((size_t)(n ? n : 1), sizeof *mx);
    int(*count)[NCLASS] = lnl_calloc((size_t)(n ? n : 1), sizeof *count);
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY, vmin = INFINITY, vmax = -INFINITY;
    double lmin = INFINITY, lmax = -INFINITY; /* over the values that are not positive */
    int any = 0, rc = 0;
    for (int i = 0; i < n; i++) {
        lnl_log_matrix(p[i].log, m->key, &mx[i]);
        const LnlLogMatrix *a = &mx[i];
        if (!a->rows || !a->cols) continue;
        any = 1;
        double lo, hi;
        cell_edges(p[i].log->dstep, a->rows, 0, &lo, &hi);
        xmin = fmin(xmin, lo);
        cell_edges(p[i].log->dstep, a->rows, a->rows - 1, &lo, &hi);
        xmax = fmax(xmax, hi);
        ymin = fmin(ymin, a->first_layer - 0.5);
        ymax = fmax(ymax, a->first_layer + a->cols - 0.5);
        for (int k = 0; k < a->rows * a->cols; k++) {
            double v = a->v[k];
            if (isfinite(v) && (v > 0 || !m->log)) vmin = fmin(vmin, v), vmax = fmax(vmax, v);
            else if (isfinite(v)) lmin = fmin(lmin, v), lmax = fmax(lmax, v);
        }
    }
    if (!any) goto done;
    /* a magnitude: a logarithmic scale over its positive values, the rest marked; a linear one
     * where nothing is positive */
    int logscale = m->log && isfinite(vmin);
    if (!isfinite(vmin)) vmin = isfinite(lmin) ? lmin : 0, vmax = isfinite(lmax) ? lmax : 1;
    if (vmax <= vmin) {
        /* one value everywhere: a range around it */
        if (logscale) vmin /= 1.5, vmax *= 1.5;
        else vmin -= fmax(fabs(vmin) * 0.1, 1e-12), vmax += fmax(fabs(vmax) * 0.1, 1e-12);
    }

    /* data: per panel, a file for each class of cells it has */
    for (int i = 0; i < n && !rc; i++) {
        const LnlLogMatrix *a = &mx[i];
        LnlBuf d[NCLASS] = {{0}};
        for (int r = 0; r < a->rows; r++) {
            double lo, hi;
            cell_edges(p[i].log->dstep, a->rows, r, &lo, &hi);
            for (int c = 0; c < a->cols; c++) {
                double v = a->v[r * a->cols + c], y = a->first_layer + c;
                int k = !isfinite(v) ? CELL_NONE : (logscale && v <= 0) ? CELL_LOW : CELL_VALUE;
                count[i][k]++;
                /* each cell reaches a little into its right and upper neighbours, which are drawn
                 * after it: no hairline of background shows between cells that antialiasing
                 * would leave */
                lnl_buf_printf(&d[k], "%.9g %g %.9g %.9g %g %g", p[i].log->dstep[r], y, lo, hi + (hi - lo) * 0.02,
                               y - 0.5, y + 0.52);
                if (k == CELL_VALUE) lnl_buf_printf(&d[k], " %.9g", v);
                lnl_buf_printf(&d[k], "\n");
            }
        }
        for (int k = 0; k < NCLASS; k++) {
            char name[220];
            snprintf(name, sizeof name, "%s.%d%s%s.dat", base, i, k ? "." : "", class_name[k]);
            if (!rc && count[i][k]) rc = lnl_plot_data(x, name, &d[k], e);
            lnl_buf_free(&d[k]);
        }
    }
    if (rc) goto done;

    int cols = n <= 3 ? n : n == 4 ? 2 : 3, rows = (n + cols - 1) / cols, pw = n == 1 ? PANEL_W1 : PANEL_W;
    int W = cols * pw + CB_W, H = TOP_H + rows * PANEL_H, cb_panel = -1, lows = 0, nones = 0;
    for (int i = 0; i < n; i++) {
        if (count[i][CELL_VALUE]) cb_panel = i;
        lows += count[i][CELL_LOW];
        nones += count[i][CELL_NONE];
    }
    int L = (int)lround(ymax - ymin), most = 0;
    for (int i = 0; i < n; i++)
        if (mx[i].cols && mx[i].rows > mx[most].rows) most = i;
    LnlBuf b = {0};
    {
        char t[700];
        snprintf(t, sizeof t, "%s\n%s%s%s%s", title,
                 cb_panel < 0 ? "no finite value" : logscale ? "logarithmic colour scale" : "linear colour scale",
                 n > 1 && cb_panel >= 0 ? ", shared by the panels" : "", lows ? "; pink: 0 or below (off the scale)" : "",
                 nones ? "; grey: not finite (null in the log)" : "");
        lnl_buf_printf(&b, "set multiplot title ");
        lnl_plot_str(&b, t);
        lnl_buf_printf(&b, "\n");
    }
    lnl_buf_append(&b, lnl_plot_heat_palette, strlen(lnl_plot_heat_palette));
    lnl_buf_printf(&b, "set style fill solid 1.0 noborder\nunset key\nset tics out nomirror\n");
    if (logscale) {
        lnl_buf_printf(&b, "set logscale cb\nset format cb '%%.2g'\n");
        lnl_plot_log_axis(&b, "cb", vmin, vmax);
    } else {
        lnl_buf_printf(&b, "set cbrange [%.9g:%.9g]\n", vmin, vmax);
    }
    lnl_buf_printf(&b, "set cblabel ");
    lnl_plot_str(&b, m->unit);
    lnl_buf_printf(&b, " offset 1,0\n");
    lnl_buf_printf(&b, "set xrange [%.9g:%.9g]\nset yrange [%g:%g]\nset xlabel 'optimizer step'\n", xmin, xmax, ymin,
                   ymax);
    lnl_buf_printf(&b, "set ylabel '%s'\nset ytics %s\n", ymin < 0 ? "layer (0 = embedding)" : "block",
                   L <= 16 ? "1" : "autofreq");
    if (mx[most].rows <= 12) {
        /* few records: a tic at each, not at steps between them */
        lnl_buf_printf(&b, "set xtics (");
        for (int r = 0; r < mx[most].rows; r++) lnl_buf_printf(&b, "%s%.9g", r ? ", " : "", p[most].log->dstep[r]);
        lnl_buf_printf(&b, ")\n");
    }
    for (int i = 0; i < n; i++) {
        int r = i / cols, c = i % cols;
        double left = (double)(c * pw + IN_L) / W, right = (double)((c + 1) * pw - IN_R) / W;
        double top = 1 - (double)(TOP_H + r * PANEL_H + IN_T) / H, bottom = 1 - (double)(TOP_H + (r + 1) * PANEL_H - IN_B) / H;
        lnl_buf_printf(&b, "set lmargin at screen %.5f\nset rmargin at screen %.5f\nset tmargin at screen %.5f\n"
                           "set bmargin at screen %.5f\n", left, right, top, bottom);
        lnl_buf_printf(&b, "set title ");
        lnl_plot_str(&b, p[i].label);
        lnl_buf_printf(&b, "\n");
        if (i == cb_panel) {
            /* one colour bar for every panel, right of them, as tall as all rows */
            double cx = (double)(cols * pw + 14) / W, cw = 18.0 / W;
            double ctop = 1 - (double)(TOP_H + IN_T) / H, cbot = 1 - (double)(TOP_H + rows * PANEL_H - IN_B) / H;
            lnl_buf_printf(&b, "set colorbox user origin screen %.5f, screen %.5f size screen %.5f, screen %.5f\n", cx,
                           cbot, cw, ctop - cbot);
        } else {
            lnl_buf_printf(&b, "unset colorbox\n");
        }
        int items = 0;
        for (int k = 0; k < NCLASS; k++) {
            if (!count[i][k]) continue;
            lnl_buf_printf(&b, "%s'data/%s.%d%s%s.dat' using 1:2:3:4:5:6%s with boxxyerror ", items++ ? ", \\\n     " : "plot ",
                           base, i, k ? "." : "", class_name[k], k == CELL_VALUE ? ":7" : "");
            if (k == CELL_VALUE) lnl_buf_printf(&b, "fc palette notitle");
            else lnl_buf_printf(&b, "fc rgb '%s' notitle", class_colour[k]);
        }
        if (!items)
            lnl_buf_printf(&b, "set label 1 'no diag records (--diag-every)' at graph 0.5,0.5 center\n"
                               "plot -1e300 notitle\nunset label 1");
        lnl_buf_printf(&b, "\n");
    }
    lnl_buf_printf(&b, "unset multiplot\n");
    rc = lnl_plot_draw(x, lnl_plot_new(x, section, base, title), b.data, W, H, e);
    lnl_buf_free(&b);
done:
    for (int i = 0; i < n; i++) free(mx[i].v);
    free(mx);
    free(count);
    return rc;
}
