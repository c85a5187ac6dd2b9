/* The study report. The content is built once as a list of blocks (headings, paragraphs,
 * tables, figures) and rendered twice, as Markdown (summary.md) and as HTML (report.html). The
 * findings are computed from the records: medians over seeds, counts, and factors between
 * them; no sentence states a result that the numbers beside it do not show. */
#include "report.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "plots.h"

/* ---- the document ---- */

typedef enum { B_H1, B_H2, B_H3, B_P, B_TABLE, B_FIG, B_PRE } BlockKind;

typedef struct {
    BlockKind kind;
    char *text;   /* heading, paragraph, preformatted text; figure title */
    int ncols, nrows; /* table: header + nrows rows */
    char **cells; /* ((nrows + 1) * ncols) */
    char base[160]; /* figure: plots/<base>.png|svg */
} Block;

typedef struct {
    Block *b;
    int n;
} Doc;

/* Blocks are referred to by index, never by pointer: every add() may move the whole list, so a
 * pointer kept across an append (a table filled row by row between verdicts) would dangle. */
static int add(Doc *d, BlockKind k) {
    d->b = lnl_realloc(d->b, sizeof *d->b * (size_t)(d->n + 1));
    Block *b = &d->b[d->n];
    memset(b, 0, sizeof *b);
    b->kind = k;
    return d->n++;
}

static char *vfmt(const char *fmt, va_list ap) {
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    char *s = lnl_malloc((size_t)(n > 0 ? n : 0) + 1);
    vsnprintf(s, (size_t)(n > 0 ? n : 0) + 1, fmt, ap);
    return s;
}

static void text(Doc *d, BlockKind k, const char *fmt, ...) LNL_PRINTF(3, 4);
static void text(Doc *d, BlockKind k, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *t = vfmt(fmt, ap);
    int bi = add(d, k); /* before d->b is read: add() may move it */
    d->b[bi].text = t;
    va_end(ap);
}

/* Returns the table's index in d->b; pass it to row(). */
static int table(Doc *d, int ncols, const char *const *head) {
    int ti = add(d, B_TABLE);
    Block *b = &d->b[ti];
    b->ncols = ncols;
    b->cells = lnl_malloc(sizeof(char *) * (size_t)ncols);
    for (int i = 0; i < ncols; i++) b->cells[i] = lnl_strdup(head[i]);
    return ti;
}

/* Appends a row to the table at index ti; cells are given as ncols strings. */
static void row(Doc *d, int ti, ...) {
    Block *t = &d->b[ti];
    t->cells = lnl_realloc(t->cells, sizeof(char *) * (size_t)((t->nrows + 2) * t->ncols));
    va_list ap;
    va_start(ap, ti);
    for (int i = 0; i < t->ncols; i++) t->cells[(t->nrows + 1) * t->ncols + i] = lnl_strdup(va_arg(ap, const char *));
    va_end(ap);
    t->nrows++;
}

static void doc_free(Doc *d) {
    for (int i = 0; i < d->n; i++) {
        Block *b = &d->b[i];
        free(b->text);
        if (b->kind == B_TABLE)
            for (int k = 0; k < (b->nrows + 1) * b->ncols; k++) free(b->cells[k]);
        free(b->cells);
    }
    free(d->b);
}

/* Markdown */
static void md_escape(LnlBuf *o, const char *s, int in_table) {
    for (; *s; s++) {
        if (in_table && *s == '|') lnl_buf_append(o, "\\|", 2);
        else if (*s == '\n' && in_table) lnl_buf_append(o, " ", 1);
        else lnl_buf_append(o, s, 1);
    }
}

static void render_md(const Doc *d, const LnlStudyPlots *pl, LnlBuf *o) {
    for (int i = 0; i < d->n; i++) {
        const Block *b = &d->b[i];
        switch (b->kind) {
        case B_H1: lnl_buf_printf(o, "# %s\n\n", b->text); break;
        case B_H2: lnl_buf_printf(o, "## %s\n\n", b->text); break;
        case B_H3: lnl_buf_printf(o, "### %s\n\n", b->text); break;
        case B_P: lnl_buf_printf(o, "%s\n\n", b->text); break;
        case B_PRE: lnl_buf_printf(o, "```\n%s\n```\n\n", b->text); break;
        case B_TABLE:
            for (int r = 0; r <= b->nrows; r++) {
                lnl_buf_append(o, "|", 1);
                for (int c = 0; c < b->ncols; c++) {
                    lnl_buf_append(o, " ", 1);
                    md_escape(o, b->cells[r * b->ncols + c], 1);
                    lnl_buf_append(o, " |", 2);
                }
                lnl_buf_append(o, "\n", 1);
                if (r == 0) {
                    lnl_buf_append(o, "|", 1);
                    for (int c = 0; c < b->ncols; c++) lnl_buf_append(o, "---|", 4);
                    lnl_buf_append(o, "\n", 1);
                }
            }
            lnl_buf_append(o, "\n", 1);
            break;
        case B_FIG:
            lnl_buf_printf(o, "![%s](plots/%s.png)\n\n%s ([PNG](plots/%s.png), [SVG](plots/%s.svg))\n\n", b->text, b->base,
                           b->text, b->base, b->base);
            break;
        }
    }
    (void)pl;
}

/* HTML */
static void html_escape(LnlBuf *o, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': lnl_buf_append(o, "&amp;", 5); break;
        case '<': lnl_buf_append(o, "&lt;", 4); break;
        case '>': lnl_buf_append(o, "&gt;", 4); break;
        case '"': lnl_buf_append(o, "&quot;", 6); break;
        default: lnl_buf_append(o, s, 1);
        }
    }
}

static void base64(LnlBuf *o, const unsigned char *p, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        char q[4] = {tab[v >> 18 & 63], tab[v >> 12 & 63], i + 1 < n ? tab[v >> 6 & 63] : '=', i + 2 < n ? tab[v & 63] : '='};
        lnl_buf_append(o, q, 4);
    }
}

static const char *CSS =
    "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
    "th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}"
    "th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}"
    "figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #eee}"
    "pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:85%}"
    ".note{color:#a33}";

static void render_html(const Doc *d, const char *plots_dir, LnlBuf *o) {
    lnl_buf_printf(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>");
    for (int i = 0; i < d->n; i++)
        if (d->b[i].kind == B_H1) {
            html_escape(o, d->b[i].text);
            break;
        }
    lnl_buf_printf(o, "</title>\n<style>%s</style></head><body>\n", CSS);
    for (int i = 0; i < d->n; i++) {
        const Block *b = &d->b[i];
        switch (b->kind) {
        case B_H1:
        case B_H2:
        case B_H3: {
            int lv = b->kind == B_H1 ? 1 : b->kind == B_H2 ? 2 : 3;
            lnl_buf_printf(o, "<h%d>", lv);
            html_escape(o, b->text);
            lnl_buf_printf(o, "</h%d>\n", lv);
            break;
        }
        case B_P:
            lnl_buf_printf(o, "<p>");
            html_escape(o, b->text);
            lnl_buf_printf(o, "</p>\n");
            break;
        case B_PRE:
            lnl_buf_printf(o, "<pre>");
            html_escape(o, b->text);
            lnl_buf_printf(o, "</pre>\n");
            break;
        case B_TABLE:
            lnl_buf_printf(o, "<table>\n");
            for (int r = 0; r <= b->nrows; r++) {
                lnl_buf_printf(o, "<tr>");
                for (int c = 0; c < b->ncols; c++) {
                    lnl_buf_printf(o, r ? "<td>" : "<th>");
                    html_escape(o, b->cells[r * b->ncols + c]);
                    lnl_buf_printf(o, r ? "</td>" : "</th>");
                }
                lnl_buf_printf(o, "</tr>\n");
            }
            lnl_buf_printf(o, "</table>\n");
            break;
        case B_FIG: {
            /* the SVG goes inline as a data URI: the page needs no other file */
            char name[200];
            snprintf(name, sizeof name, "%s.svg", b->base);
            char *path = lnl_path_join(plots_dir, name), *svg = NULL;
            size_t len = 0;
            lnl_buf_printf(o, "<figure>");
            if (lnl_read_file(path, &svg, &len, NULL) == 0) {
                lnl_buf_printf(o, "<img alt=\"");
                html_escape(o, b->text);
                lnl_buf_printf(o, "\" src=\"data:image/svg+xml;base64,");
                base64(o, (const unsigned char *)svg, len);
                lnl_buf_printf(o, "\">");
            }
            free(svg);
            free(path);
            lnl_buf_printf(o, "<figcaption>");
            html_escape(o, b->text);
            lnl_buf_printf(o, " (<a href=\"plots/%s.png\">PNG</a>, <a href=\"plots/%s.svg\">SVG</a>)</figcaption></figure>\n",
                           b->base, b->base);
            break;
        }
        }
    }
    lnl_buf_printf(o, "</body></html>\n");
}

/* ---- numbers ---- */

/* Formats v with 4 significant digits, or "n/a"; returns one of a ring of buffers, so a few
 * can appear in one printf. */
static const char *g4(double v) {
    static char ring[48][40];
    static int k;
    char *b = ring[k++ % 48];
    if (!isfinite(v)) snprintf(b, 40, "n/a");
    else snprintf(b, 40, "%.4g", v);
    return b;
}

static const char *pname(const char *preset) {
    if (!strcmp(preset, "pre")) return "Pre-LN";
    if (!strcmp(preset, "peri")) return "Peri-LN";
    if (!strcmp(preset, "post")) return "Post-LN";
    if (!strcmp(preset, "b2t")) return "B2T";
    return preset;
}

typedef struct {
    const LnlStudyResult *rs;
    const int *have;
    int n;
    double spike_nats; /* a loss rise above this counts as a spike */
} Rep;

enum { M_HIDDEN, M_VAL, M_GRAD_RATIO, M_SENS };

typedef struct {
    int runs, finite, diverged, spiked;
    double med;
} Agg;

#define ANY_DT NAN
#define ANY_LR NAN

static int match(const LnlStudyResult *r, const char *preset, double dt, int depth, const char *size, double lr) {
    const LnlStudyRun *u = &r->run;
    return !strcmp(u->preset, preset) && (isnan(dt) || u->dt == dt) && (depth < 0 || (u->depth == depth && !strcmp(u->size, size))) &&
           (isnan(lr) || u->lr == lr);
}

static double metric(const LnlStudyResult *r, int m) {
    switch (m) {
    case M_HIDDEN: return r->last_hidden;
    case M_VAL: return r->final_val_loss;
    case M_GRAD_RATIO: return r->grad_ratio;
    default: return r->median_sensitivity;
    }
}

static Agg agg(const Rep *R, const char *preset, double dt, int depth, const char *size, double lr, int m) {
    Agg a = {0, 0, 0, 0, NAN};
    double *v = lnl_malloc(sizeof(double) * (size_t)(R->n ? R->n : 1));
    for (int i = 0; i < R->n; i++) {
        if (!R->have[i] || !match(&R->rs[i], preset, dt, depth, size, lr)) continue;
        a.runs++;
        a.diverged += R->rs[i].diverged_at_step >= 0;
        a.spiked += R->rs[i].diverged_at_step >= 0 || R->rs[i].max_rise > R->spike_nats;
        double x = metric(&R->rs[i], m);
        if (isfinite(x)) v[a.finite++] = x;
    }
    a.med = lnl_study_median(v, a.finite);
    free(v);
    return a;
}

/* "3.2x" */
static const char *factor(double a, double b) {
    static char ring[16][40];
    static int k;
    char *s = ring[k++ % 16];
    if (!(isfinite(a) && isfinite(b)) || a <= 0 || b <= 0) snprintf(s, 40, "n/a");
    else snprintf(s, 40, "%.3gx", a >= b ? a / b : b / a);
    return s;
}

/* "Pre-LN's (1.2) is 3.2x Peri-LN's (0.4)" style comparison of two medians. */
static void compare(char *buf, size_t n, const char *what, const char *a_name, double a, const char *b_name, double b) {
    if (!(isfinite(a) && isfinite(b))) snprintf(buf, n, "%s: not comparable (%s %s, %s %s)", what, a_name, g4(a), b_name, g4(b));
    else if (a == b) snprintf(buf, n, "%s is the same for %s and %s (%s)", what, a_name, b_name, g4(a));
    else if (a > b) snprintf(buf, n, "%s's %s (%s) is %s %s's (%s)", a_name, what, g4(a), factor(a, b), b_name, g4(b));
    else snprintf(buf, n, "%s's %s (%s) is %s %s's (%s)", b_name, what, g4(b), factor(b, a), a_name, g4(a));
}

/* Distinct values, in ascending order. */
static int distinct_lrs(const Rep *R, const char *p1, const char *p2, double dt, double *out) {
    int n = 0;
    for (int i = 0; i < R->n; i++) {
        if (!R->have[i]) continue;
        const LnlStudyRun *u = &R->rs[i].run;
        if ((strcmp(u->preset, p1) && strcmp(u->preset, p2)) || (!isnan(dt) && u->dt != dt)) continue;
        int seen = 0;
        for (int k = 0; k < n && !seen; k++) seen = out[k] == u->lr;
        if (!seen) out[n++] = u->lr;
    }
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++)
            if (out[b] < out[a]) {
                double t = out[a];
                out[a] = out[b];
                out[b] = t;
            }
    return n;
}

typedef struct {
    int depth;
    char size[32];
} Shape;

/* Shapes at which both presets have a run with the given dt and lr, by depth. */
static int common_shapes(const Rep *R, const char *p1, const char *p2, double dt, double lr, Shape *out) {
    int n = 0;
    for (int i = 0; i < R->n; i++) {
        if (!R->have[i] || !match(&R->rs[i], p1, dt, -1, "", lr)) continue;
        const LnlStudyRun *u = &R->rs[i].run;
        int seen = 0;
        for (int k = 0; k < n && !seen; k++) seen = out[k].depth == u->depth && !strcmp(out[k].size, u->size);
        if (seen) continue;
        int other = 0;
        for (int j = 0; j < R->n && !other; j++)
            other = R->have[j] && match(&R->rs[j], p2, dt, u->depth, u->size, lr);
        if (!other) continue;
        out[n].depth = u->depth;
        snprintf(out[n].size, sizeof out[n].size, "%s", u->size);
        n++;
    }
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++)
            if (out[b].depth < out[a].depth) {
                Shape t = out[a];
                out[a] = out[b];
                out[b] = t;
            }
    return n;
}

static const char *shape_label(const Shape *s) {
    static char ring[8][48];
    static int k;
    char *b = ring[k++ % 8];
    if (s->size[0]) snprintf(b, 48, "%s (L %d)", s->size, s->depth);
    else snprintf(b, 48, "%d", s->depth);
    return b;
}

static void verdict(Doc *d, LnlBuf *v, const char *fmt, ...) LNL_PRINTF(3, 4);
static void verdict(Doc *d, LnlBuf *v, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = vfmt(fmt, ap);
    va_end(ap);
    int bi = add(d, B_P);
    d->b[bi].text = lnl_strdup(s);
    lnl_buf_printf(v, "%s\n", s);
    free(s);
}

/* Growth fits across layers: how many runs of a preset (at dt, lr) fit better as exponential. */
static void fit_counts(const Rep *R, const char *preset, double dt, double lr, int *exp_n, int *all_n) {
    *exp_n = *all_n = 0;
    for (int i = 0; i < R->n; i++) {
        if (!R->have[i] || !R->rs[i].nlayers || !match(&R->rs[i], preset, dt, -1, "", lr)) continue;
        const LnlGrowthFit *g = &R->rs[i].growth.magnitude;
        if (!g->linear.ok || !g->exponential.ok) continue;
        (*all_n)++;
        *exp_n += g->better_exp;
    }
}

/* 1. Pre-LN vs Peri-LN: last-layer hidden_mean_abs as depth grows (dt 1). */
static void finding_depth(Doc *d, const Rep *R, LnlBuf *v) {
    text(d, B_H3, "1. Pre-LN vs Peri-LN: last-layer hidden_mean_abs as depth grows (dt 1)");
    double lrs[LNL_STUDY_MAX_VALUES * LNL_STUDY_MAX_GRIDS];
    int nl = distinct_lrs(R, "pre", "peri", 1.0, lrs);
    static const char *head[] = {"lr", "depth", "Pre-LN (median)", "seeds", "Peri-LN (median)", "seeds", "larger",
                                 "factor"};
    int t = -1;
    Shape *sh = lnl_malloc(sizeof *sh * (size_t)(R->n ? R->n : 1));
    for (int li = 0; li < nl; li++) {
        int ns = common_shapes(R, "pre", "peri", 1.0, lrs[li], sh);
        if (!ns) continue;
        if (t < 0) t = table(d, 8, head);
        for (int k = 0; k < ns; k++) {
            Agg a = agg(R, "pre", 1.0, sh[k].depth, sh[k].size, lrs[li], M_HIDDEN);
            Agg b = agg(R, "peri", 1.0, sh[k].depth, sh[k].size, lrs[li], M_HIDDEN);
            char na[16], nb[16];
            snprintf(na, sizeof na, "%d/%d", a.finite, a.runs);
            snprintf(nb, sizeof nb, "%d/%d", b.finite, b.runs);
            const char *larger = !(isfinite(a.med) && isfinite(b.med)) ? "n/a" : a.med > b.med ? "Pre-LN" : a.med < b.med ? "Peri-LN" : "equal";
            row(d, t, g4(lrs[li]), shape_label(&sh[k]), g4(a.med), na, g4(b.med), nb, larger, factor(a.med, b.med));
        }
    }
    if (t < 0) {
        verdict(d, v, "1. Not measured: the study has no Pre-LN and Peri-LN runs at dt 1 with the same depth and learning "
                      "rate.");
        free(sh);
        return;
    }
    text(d, B_P, "Medians over seeds of the last layer's hidden_mean_abs (mean |x| of the residual stream leaving "
                 "block L, before the final norm); 'seeds' counts runs with a final model / runs (a diverged run "
                 "has no final model to probe).");
    for (int li = 0; li < nl; li++) {
        int ns = common_shapes(R, "pre", "peri", 1.0, lrs[li], sh);
        if (!ns) continue;
        /* depths where both presets have a measured median, and the others with their counts */
        Shape *ok = lnl_malloc(sizeof *ok * (size_t)ns);
        int nok = 0;
        LnlBuf missing = {0};
        for (int k = 0; k < ns; k++) {
            Agg a = agg(R, "pre", 1.0, sh[k].depth, sh[k].size, lrs[li], M_HIDDEN);
            Agg b = agg(R, "peri", 1.0, sh[k].depth, sh[k].size, lrs[li], M_HIDDEN);
            if (isfinite(a.med) && isfinite(b.med)) ok[nok++] = sh[k];
            else
                lnl_buf_printf(&missing, " At depth %s no comparison: Pre-LN diverged in %d of %d runs, Peri-LN in %d of %d.",
                               shape_label(&sh[k]), a.diverged, a.runs, b.diverged, b.runs);
        }
        lnl_buf_append(&missing, "", 1);
        int fe_pre, fa_pre, fe_peri, fa_peri;
        fit_counts(R, "pre", 1.0, lrs[li], &fe_pre, &fa_pre);
        fit_counts(R, "peri", 1.0, lrs[li], &fe_peri, &fa_peri);
        char fits[300] = "";
        if (fa_pre + fa_peri)
            snprintf(fits, sizeof fits,
                     " Across layers within a run, an exponential fits hidden_mean_abs better than a line in %d of %d "
                     "Pre-LN runs and %d of %d Peri-LN runs.",
                     fe_pre, fa_pre, fe_peri, fa_peri);
        if (nok == 0) {
            verdict(d, v, "1. At lr %s no depth has a final model of both presets.%s", g4(lrs[li]), missing.data);
        } else if (nok == 1) {
            char cmp[400];
            Agg a = agg(R, "pre", 1.0, ok[0].depth, ok[0].size, lrs[li], M_HIDDEN);
            Agg b = agg(R, "peri", 1.0, ok[0].depth, ok[0].size, lrs[li], M_HIDDEN);
            compare(cmp, sizeof cmp, "last-layer hidden_mean_abs", "Pre-LN", a.med, "Peri-LN", b.med);
            verdict(d, v, "1. At lr %s and depth %s (the only depth measured for both): %s.%s%s Growth with depth is not "
                          "measured at this learning rate.",
                    g4(lrs[li]), shape_label(&ok[0]), cmp, fits, missing.data);
        } else {
            Agg a0 = agg(R, "pre", 1.0, ok[0].depth, ok[0].size, lrs[li], M_HIDDEN);
            Agg b0 = agg(R, "peri", 1.0, ok[0].depth, ok[0].size, lrs[li], M_HIDDEN);
            Agg a1 = agg(R, "pre", 1.0, ok[nok - 1].depth, ok[nok - 1].size, lrs[li], M_HIDDEN);
            Agg b1 = agg(R, "peri", 1.0, ok[nok - 1].depth, ok[nok - 1].size, lrs[li], M_HIDDEN);
            char cmp[400];
            compare(cmp, sizeof cmp, "last-layer hidden_mean_abs", "Pre-LN", a1.med, "Peri-LN", b1.med);
            double gp = a1.med / a0.med, gq = b1.med / b0.med;
            int shows = a1.med > b1.med && gp > gq;
            verdict(d, v,
                    "1. At lr %s, from depth %s to %s Pre-LN's last-layer hidden_mean_abs grew %sx (%s to %s) and "
                    "Peri-LN's %sx (%s to %s); at depth %s, %s.%s%s The claim that Pre-LN's hidden states outgrow "
                    "Peri-LN's with depth %s at this size (it needs Pre-LN larger at the deepest depth measured, %s, and "
                    "growing faster, %s).",
                    g4(lrs[li]), shape_label(&ok[0]), shape_label(&ok[nok - 1]), g4(gp), g4(a0.med), g4(a1.med), g4(gq),
                    g4(b0.med), g4(b1.med), shape_label(&ok[nok - 1]), cmp, fits, missing.data,
                    shows ? "shows" : "does not show", a1.med > b1.med ? "yes" : "no", gp > gq ? "yes" : "no");
        }
        lnl_buf_free(&missing);
        free(ok);
    }
    free(sh);
}

/* 2. The residual step: each dt other than 1 against dt 1, per preset, depth and lr. */
static void finding_dt(Doc *d, const Rep *R, LnlBuf *v) {
    text(d, B_H3, "2. The residual step dt: last-layer hidden_mean_abs and val loss against dt 1");
    static const char *presets[] = {"pre", "peri"};
    static const char *head[] = {"preset", "depth", "lr", "dt", "hidden (dt)", "hidden (dt 1)", "ratio dt / dt 1",
                                 "val loss (dt)", "val loss (dt 1)"};
    int t = -1;
    int any = 0;
    for (int pi = 0; pi < 2; pi++) {
        /* distinct dt != 1 of this preset */
        double dts[LNL_STUDY_MAX_VALUES];
        int nd = 0;
        for (int i = 0; i < R->n; i++) {
            if (!R->have[i] || strcmp(R->rs[i].run.preset, presets[pi]) || R->rs[i].run.dt == 1.0) continue;
            int seen = 0;
            for (int k = 0; k < nd && !seen; k++) seen = dts[k] == R->rs[i].run.dt;
            if (!seen && nd < LNL_STUDY_MAX_VALUES) dts[nd++] = R->rs[i].run.dt;
        }
        for (int di = 0; di < nd; di++) {
            int cells = 0, smaller = 0, lower_val = 0, val_cells = 0;
            double lo = INFINITY, hi = -INFINITY;
            double ratios[256];
            int nr = 0;
            /* cells: (depth, size, lr) where both dt and dt 1 exist */
            for (int i = 0; i < R->n; i++) {
                if (!R->have[i] || !match(&R->rs[i], presets[pi], dts[di], -1, "", ANY_LR)) continue;
                const LnlStudyRun *u = &R->rs[i].run;
                int first = 1;
                for (int j = 0; j < i && first; j++)
                    first = !(R->have[j] && match(&R->rs[j], presets[pi], dts[di], u->depth, u->size, u->lr));
                if (!first) continue;
                Agg a = agg(R, presets[pi], dts[di], u->depth, u->size, u->lr, M_HIDDEN);
                Agg b = agg(R, presets[pi], 1.0, u->depth, u->size, u->lr, M_HIDDEN);
                if (b.runs == 0) continue;
                Agg va = agg(R, presets[pi], dts[di], u->depth, u->size, u->lr, M_VAL);
                Agg vb = agg(R, presets[pi], 1.0, u->depth, u->size, u->lr, M_VAL);
                if (t < 0) t = table(d, 9, head);
                Shape s = {u->depth, ""};
                snprintf(s.size, sizeof s.size, "%s", u->size);
                double ratio = a.med / b.med;
                row(d, t, pname(presets[pi]), shape_label(&s), g4(u->lr), g4(dts[di]), g4(a.med), g4(b.med), g4(ratio),
                    g4(va.med), g4(vb.med));
                if (isfinite(ratio)) {
                    cells++;
                    smaller += ratio < 1;
                    lo = fmin(lo, ratio);
                    hi = fmax(hi, ratio);
                    if (nr < 256) ratios[nr++] = ratio;
                }
                if (isfinite(va.med) && isfinite(vb.med)) {
                    val_cells++;
                    lower_val += va.med < vb.med;
                }
            }
            if (!cells) continue;
            any = 1;
            double med = lnl_study_median(ratios, nr);
            verdict(d, v,
                    "2. %s, dt %s against dt 1: the last-layer hidden_mean_abs is smaller in %d of %d settings "
                    "(ratio dt %s / dt 1 from %s to %s, median %s, i.e. %s); the final val loss is lower in %d of %d.",
                    pname(presets[pi]), g4(dts[di]), smaller, cells, g4(dts[di]), g4(lo), g4(hi), g4(med),
                    med < 1 ? "smaller" : med > 1 ? "larger" : "unchanged", lower_val, val_cells);
        }
    }
    if (!any)
        verdict(d, v, "2. Not measured: the study has no Pre-LN or Peri-LN setting run at both dt 1 and another dt.");
    else
        text(d, B_P, "Medians over seeds. A ratio below 1 means the smaller step gave smaller hidden states.");
}

/* 3. Divergence counts of Pre-LN and Peri-LN by learning rate, the largest one in words. */
static void finding_divergence(Doc *d, const Rep *R, const LnlStudyConfig *c, LnlBuf *v) {
    text(d, B_H3, "3. Divergence of Pre-LN and Peri-LN across seeds, by learning rate");
    double lrs[LNL_STUDY_MAX_VALUES * LNL_STUDY_MAX_GRIDS];
    int nl = distinct_lrs(R, "pre", "peri", ANY_DT, lrs);
    double top = NAN;
    for (int li = 0; li < nl; li++) {
        Agg a = agg(R, "pre", ANY_DT, -1, "", lrs[li], M_VAL), b = agg(R, "peri", ANY_DT, -1, "", lrs[li], M_VAL);
        if (a.runs && b.runs) top = lrs[li];
    }
    if (isnan(top)) {
        verdict(d, v, "3. Not measured: no learning rate has both Pre-LN and Peri-LN runs.");
        return;
    }
    char spike_head[64];
    snprintf(spike_head, sizeof spike_head, "diverged or spiked (> %g nats)", R->spike_nats);
    const char *head[] = {"lr", "preset", "runs", "diverged", spike_head, "median final val loss",
                          "median last-layer hidden_mean_abs"};
    int t = table(d, 7, head);
    for (int li = 0; li < nl; li++)
        for (int p = 0; p < 2; p++) {
            const char *ps = p ? "peri" : "pre";
            Agg a = agg(R, ps, ANY_DT, -1, "", lrs[li], M_VAL), h = agg(R, ps, ANY_DT, -1, "", lrs[li], M_HIDDEN);
            if (!a.runs) continue;
            char runs[16], div[16], sp[16];
            snprintf(runs, sizeof runs, "%d", a.runs);
            snprintf(div, sizeof div, "%d", a.diverged);
            snprintf(sp, sizeof sp, "%d", a.spiked);
            row(d, t, g4(lrs[li]), pname(ps), runs, div, sp, g4(a.med), g4(h.med));
        }
    if (c->diverge_loss > 0)
        text(d, B_P, "Every depth and dt at that learning rate counts. A run diverged when lnlab train stopped it: a "
                     "non-finite loss or gradient norm, or a training loss more than %g nats above its running minimum "
                     "(diverge_loss). A run spiked when its training loss rose more than %g nats above the minimum of "
                     "the steps before (spike_nats; the run went on). Each run's log.jsonl has the curve.",
             c->diverge_loss, R->spike_nats);
    else
        text(d, B_P, "Every depth and dt at that learning rate counts. A run diverged when lnlab train stopped it: a "
                     "non-finite loss or gradient norm (diverge_loss is off, so a spike does not stop a run). A run "
                     "spiked when its training loss rose more than %g nats above the minimum of the steps before "
                     "(spike_nats; the run went on). Each run's log.jsonl has the curve.",
             R->spike_nats);
    for (int li = 0; li < nl; li++) {
        if (lrs[li] == top) continue;
        Agg x = agg(R, "pre", ANY_DT, -1, "", lrs[li], M_VAL), y = agg(R, "peri", ANY_DT, -1, "", lrs[li], M_VAL);
        if (!x.runs || !y.runs) continue;
        verdict(d, v, "3. At lr %s: Pre-LN diverged in %d of %d runs and diverged or spiked in %d; Peri-LN diverged in %d "
                      "of %d and diverged or spiked in %d.",
                g4(lrs[li]), x.diverged, x.runs, x.spiked, y.diverged, y.runs, y.spiked);
    }
    Agg a = agg(R, "pre", ANY_DT, -1, "", top, M_VAL), b = agg(R, "peri", ANY_DT, -1, "", top, M_VAL);
    Agg ha = agg(R, "pre", ANY_DT, -1, "", top, M_HIDDEN), hb = agg(R, "peri", ANY_DT, -1, "", top, M_HIDDEN);
    char cmp[400], vcmp[400];
    compare(cmp, sizeof cmp, "median last-layer hidden_mean_abs", "Pre-LN", ha.med, "Peri-LN", hb.med);
    snprintf(vcmp, sizeof vcmp, "median final val loss Pre-LN %s, Peri-LN %s", g4(a.med), g4(b.med));
    const char *what;
    if (a.diverged != b.diverged)
        what = a.diverged > b.diverged ? "Pre-LN diverged more often: the claim shows"
                                       : "Peri-LN diverged more often: the claim does not show";
    else if (a.spiked != b.spiked)
        what = a.spiked > b.spiked ? "as many divergences, but Pre-LN spiked more often: the claim shows as spikes"
                                   : "as many divergences, and Peri-LN spiked more often: the claim does not show";
    else
        what = "Pre-LN and Peri-LN diverged and spiked equally often: the claim does not show";
    verdict(d, v,
            "3. At the largest learning rate with both presets (%s), Pre-LN diverged in %d of %d runs and Peri-LN in %d "
            "of %d; counting loss spikes above %g nats too, Pre-LN %d of %d and Peri-LN %d of %d: %s. There, %s; %s.",
            g4(top), a.diverged, a.runs, b.diverged, b.runs, R->spike_nats, a.spiked, a.runs, b.spiked, b.runs, what, cmp,
            vcmp);
}

/* 4. Deep Post-LN vs B2T: gradient norm of layer 1 over layer L. */
static void finding_post_b2t(Doc *d, const Rep *R, LnlBuf *v) {
    text(d, B_H3, "4. Post-LN vs B2T: gradient reaching the lowest layer (grad_norm of layer 1 / layer L)");
    double lrs[LNL_STUDY_MAX_VALUES * LNL_STUDY_MAX_GRIDS];
    int nl = distinct_lrs(R, "post", "b2t", 1.0, lrs);
    static const char *head[] = {"lr", "depth", "Post-LN ratio (median)", "seeds", "B2T ratio (median)", "seeds",
                                 "B2T / Post-LN", "val loss Post-LN", "val loss B2T"};
    int t = -1;
    Shape *sh = lnl_malloc(sizeof *sh * (size_t)(R->n ? R->n : 1));
    Shape deep = {-1, ""};
    double deep_lr = NAN;
    for (int li = 0; li < nl; li++) {
        int ns = common_shapes(R, "post", "b2t", 1.0, lrs[li], sh);
        for (int k = 0; k < ns; k++) {
            if (t < 0) t = table(d, 9, head);
            Agg a = agg(R, "post", 1.0, sh[k].depth, sh[k].size, lrs[li], M_GRAD_RATIO);
            Agg b = agg(R, "b2t", 1.0, sh[k].depth, sh[k].size, lrs[li], M_GRAD_RATIO);
            Agg va = agg(R, "post", 1.0, sh[k].depth, sh[k].size, lrs[li], M_VAL);
            Agg vb = agg(R, "b2t", 1.0, sh[k].depth, sh[k].size, lrs[li], M_VAL);
            char na[16], nb[16];
            snprintf(na, sizeof na, "%d/%d", a.finite, a.runs);
            snprintf(nb, sizeof nb, "%d/%d", b.finite, b.runs);
            row(d, t, g4(lrs[li]), shape_label(&sh[k]), g4(a.med), na, g4(b.med), nb, g4(b.med / a.med), g4(va.med),
                g4(vb.med));
            if (sh[k].depth > deep.depth && isfinite(a.med) && isfinite(b.med)) {
                deep = sh[k];
                deep_lr = lrs[li];
            }
        }
    }
    free(sh);
    if (t < 0) {
        verdict(d, v, "4. Not measured: the study has no Post-LN and B2T runs at dt 1 with the same depth and learning "
                      "rate.");
        return;
    }
    text(d, B_P, "A ratio far below 1 means the gradient vanishes toward the lower layers. Medians over seeds; "
                 "'seeds' counts runs with a final model / runs.");
    if (deep.depth < 0) {
        verdict(d, v, "4. No depth has a final model of both Post-LN and B2T (the table gives the counts).");
        return;
    }
    Agg a = agg(R, "post", 1.0, deep.depth, deep.size, deep_lr, M_GRAD_RATIO);
    Agg b = agg(R, "b2t", 1.0, deep.depth, deep.size, deep_lr, M_GRAD_RATIO);
    Agg va = agg(R, "post", 1.0, deep.depth, deep.size, deep_lr, M_VAL);
    Agg vb = agg(R, "b2t", 1.0, deep.depth, deep.size, deep_lr, M_VAL);
    int shows = isfinite(a.med) && isfinite(b.med) && a.med < b.med;
    verdict(d, v,
            "4. At depth %s (lr %s), Post-LN's layer-1 gradient norm is %s times its layer-%d one and B2T's is %s times "
            "(B2T / Post-LN = %s): %s. Final val loss: Post-LN %s, B2T %s.",
            shape_label(&deep), g4(deep_lr), g4(a.med), deep.depth, g4(b.med), g4(b.med / a.med),
            shows ? "B2T's lowest layer gets relatively more gradient, as the claim says"
                  : "the claim that B2T relieves Post-LN's vanishing gradient does not show here",
            g4(va.med), g4(vb.med));
    Agg pre = agg(R, "pre", 1.0, deep.depth, deep.size, deep_lr, M_VAL), peri = agg(R, "peri", 1.0, deep.depth, deep.size, deep_lr, M_VAL);
    if (pre.finite || peri.finite)
        verdict(d, v, "4. For reference, at the same setting the final val loss of Pre-LN is %s and of Peri-LN %s "
                      "(medians; n/a where not run).",
                g4(pre.med), g4(peri.med));
}

/* ---- the report ---- */

static const char *fmt_depth(const LnlStudyRun *u) {
    static char ring[4][48];
    static int k;
    char *b = ring[k++ % 4];
    if (u->size[0]) snprintf(b, 48, "%s (%d)", u->size, u->depth);
    else snprintf(b, 48, "%d", u->depth);
    return b;
}

static void runs_table(Doc *d, const Rep *R) {
    static const char *head[] = {"preset", "dt", "depth", "lr", "seed", "final val loss", "diverged at step",
                                 "last-layer hidden_mean_abs", "growth fit",
                                 "grad norm ratio layer 1 / L", "median sensitivity", "tokens/s",
                                 "largest loss rise (nats, step)"};
    int t = table(d, 13, head);
    for (int i = 0; i < R->n; i++) {
        if (!R->have[i]) continue;
        const LnlStudyResult *r = &R->rs[i];
        char seed[32], div[32], fit[160], tps[32], rise[64];
        snprintf(seed, sizeof seed, "%lld", r->run.seed);
        if (r->diverged_at_step >= 0) snprintf(div, sizeof div, "%lld", r->diverged_at_step);
        else snprintf(div, sizeof div, "-");
        const LnlGrowthFit *g = &r->growth.magnitude;
        if (!r->nlayers) snprintf(fit, sizeof fit, "-");
        else
            snprintf(fit, sizeof fit, "%s (slope %s, rate %s per layer)", lnl_study_growth_better(g, 0),
                     g4(g->linear.ok ? g->linear.b : NAN), g4(g->exponential.ok ? g->exponential.b : NAN));
        snprintf(tps, sizeof tps, "%s", isfinite(r->tokens_per_s) ? "" : "n/a");
        if (isfinite(r->tokens_per_s)) snprintf(tps, sizeof tps, "%.0f", r->tokens_per_s);
        if (r->max_rise_step >= 0) snprintf(rise, sizeof rise, "%s (%lld)", g4(r->max_rise), r->max_rise_step);
        else snprintf(rise, sizeof rise, "n/a");
        row(d, t, r->run.preset, g4(r->run.dt), fmt_depth(&r->run), g4(r->run.lr), seed, g4(r->final_val_loss), div,
            g4(r->last_hidden), fit, g4(r->grad_ratio), g4(r->median_sensitivity), tps, rise);
    }
}

static int write_out(const char *out, const char *name, const LnlBuf *b, LnlErr *e) {
    char *p = lnl_path_join(out, name);
    int r = lnl_write_file_atomic(p, b->data ? b->data : "", b->len, e);
    free(p);
    return r;
}

int lnl_study_report(const LnlStudyConfig *c, const char *out, const LnlStudyRun *runs, int nruns,
                     const LnlStudyResults *res, LnlStudyReportInfo *info, LnlErr *e) {
    LnlStudyResult *rs = lnl_calloc((size_t)(nruns ? nruns : 1), sizeof *rs);
    int *have = lnl_calloc((size_t)(nruns ? nruns : 1), sizeof(int));
    int nhave = 0, ndiv = 0, nsens = 0, rc = -1;
    double train_s = 0;
    for (int k = 0; k < nruns; k++) {
        int i = lnl_study_results_find(res, runs[k].id);
        if (i < 0) continue;
        char what[200];
        snprintf(what, sizeof what, "results.jsonl record of %s", runs[k].id);
        if (lnl_study_result_from_json(&rs[k], res->lines[i], what, e)) goto done;
        have[k] = 1;
        nhave++;
        ndiv += rs[k].diverged_at_step >= 0;
        nsens += isfinite(rs[k].median_sensitivity);
        if (isfinite(rs[k].wall_s)) train_s += rs[k].wall_s;
    }
    Rep R = {rs, have, nruns, c->spike_nats};
    LnlStudyPlots pl;
    if (lnl_study_plots_make(out, c->gnuplot, rs, have, nruns, &pl, e)) goto done;

    Doc d = {0};
    LnlBuf verdicts = {0};
    text(&d, B_H1, "lnlab study");
    char dur[64];
    snprintf(dur, sizeof dur, "%.0f s", train_s);
    text(&d, B_P,
         "%d runs in this study's grids: %d finished (%d diverged), %d not finished%s. Data: %s. Model: width %lld, %lld "
         "heads, sequence %lld, %s (named sizes set their own width and heads). Training: %lld steps of batch %lld x %lld "
         "tokens%s, AdamW (%g, %g), weight decay %g, gradient clip %g, warmup %lld, %s decay to %g x lr; validation on "
         "%lld batches every %lld steps and at the end. Probe: lnlab probe on the first %lld x %lld + 1 tokens of the "
         "val split. Sum of the runs' wall times: %s.",
         nruns, nhave, ndiv, nruns - nhave, info->failed ? " (some failed in this invocation; run again to retry)" : "",
         c->data, c->dim, c->heads, c->seq, c->norm, c->steps, c->batch, c->seq,
         c->total_batch ? " (accumulated to total_batch)" : "", c->beta1, c->beta2, c->weight_decay, c->grad_clip,
         c->warmup, c->schedule, c->min_lr_frac, c->eval_batches, c->eval_every, c->probe_batch, c->seq, dur);
    if (info->failed) text(&d, B_P, "Failed in this invocation: %d run(s); first: %s.", info->failed, info->first_failure);
    if (!nsens)
        text(&d, B_P, "Local sensitivity was not measured (this lnlab's probe has no --sensitivity, or the study "
                      "set sensitivity off), so the sensitivity column is n/a and there is no sensitivity plot.");

    text(&d, B_H2, "Findings");
    text(&d, B_P, "Computed from the records below; each statement gives the numbers it rests on. Where a claim of the "
                  "literature does not show at this size, it says so.");
    finding_depth(&d, &R, &verdicts);
    finding_dt(&d, &R, &verdicts);
    finding_divergence(&d, &R, c, &verdicts);
    finding_post_b2t(&d, &R, &verdicts);

    text(&d, B_H2, "Runs");
    text(&d, B_P, "One row per finished run (results.jsonl has the same records with every layer's figures). Growth fit: "
                  "least-squares line a + b l (slope b) and exponential a r^l (rate r, a factor per layer) of "
                  "hidden_mean_abs against entry l = 0..L, as lnlab probe fits them; the better one has the higher R^2 "
                  "on the values themselves. Gradient-norm ratio: grad_norm of block 1 / grad_norm of block L. n/a: "
                  "not measured or not finite (a diverged run has no final model, so no probe).");
    runs_table(&d, &R);

    text(&d, B_H2, "Plots");
    if (pl.why_none[0]) {
        text(&d, B_P, "No plots: %s.", pl.why_none);
        snprintf(info->plots_why, sizeof info->plots_why, "%s", pl.why_none);
    } else {
        int drawn = 0;
        for (int i = 0; i < pl.n; i++) {
            if (pl.p[i].ok) {
                int bi = add(&d, B_FIG);
                Block *b = &d.b[bi];
                b->text = lnl_strdup(pl.p[i].title);
                snprintf(b->base, sizeof b->base, "%s", pl.p[i].base);
                drawn++;
            } else {
                text(&d, B_P, "Plot '%s' failed: %s (script: plots/data/%s.gp).", pl.p[i].title, pl.p[i].why, pl.p[i].base);
            }
        }
        if (!pl.n) text(&d, B_P, "No plots: no run has finished yet.");
        info->plots_drawn = 2 * drawn;
    }

    text(&d, B_H2, "Settings");
    text(&d, B_P, "The study's config (lnlab study --config accepts it):");
    char *cfg = lnl_study_config_to_json(c);
    text(&d, B_PRE, "%s", cfg);
    free(cfg);

    LnlBuf md = {0}, html = {0};
    render_md(&d, &pl, &md);
    char *plots_dir = lnl_path_join(out, "plots");
    render_html(&d, plots_dir, &html);
    free(plots_dir);
    rc = write_out(out, "summary.md", &md, e) || write_out(out, "report.html", &html, e) ? -1 : 0;
    lnl_buf_free(&md);
    lnl_buf_free(&html);
    doc_free(&d);
    lnl_study_plots_free(&pl);
    lnl_buf_append(&verdicts, "", 1);
    info->verdicts = verdicts.data;
done:
    for (int k = 0; k < nruns; k++) lnl_study_result_free(&rs[k]);
    free(rs);
    free(have);
    return rc;
}
