/* The report's document (doc.h): blocks, and their Markdown and HTML renderings. */
#include "doc.h"

#include <stdlib.h>
#include <string.h>

/* Blocks are referred to by index, never by pointer: every lnl_doc_add() may move the whole list, so a
 * pointer kept across an append (a table filled row by row between verdicts) would dangle. */
int lnl_doc_add(LnlDoc *d, LnlBlockKind k) {
    d->b = lnl_realloc(d->b, sizeof *d->b * (size_t)(d->n + 1));
    LnlBlock *b = &d->b[d->n];
    memset(b, 0, sizeof *b);
    b->kind = k;
    return d->n++;
}

char *lnl_doc_vfmt(const char *fmt, va_list ap) {
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    char *s = lnl_malloc((size_t)(n > 0 ? n : 0) + 1);
    vsnprintf(s, (size_t)(n > 0 ? n : 0) + 1, fmt, ap);
    return s;
}

void lnl_doc_text(LnlDoc *d, LnlBlockKind k, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *t = lnl_doc_vfmt(fmt, ap);
    int bi = lnl_doc_add(d, k); /* before d->b is read: lnl_doc_add() may move it */
    d->b[bi].text = t;
    va_end(ap);
}

/* Returns the table's index in d->b; pass it to lnl_doc_row(). */
int lnl_doc_table(LnlDoc *d, int ncols, const char *const *head) {
    int ti = lnl_doc_add(d, B_TABLE);
    LnlBlock *b = &d->b[ti];
    b->ncols = ncols;
    b->cells = lnl_malloc(sizeof(char *) * (size_t)ncols);
    for (int i = 0; i < ncols; i++) b->cells[i] = lnl_strdup(head[i]);
    return ti;
}

/* Appends a row to the table at index ti; cells are given as ncols strings. */
void lnl_doc_row(LnlDoc *d, int ti, ...) {
    int ncols = d->b[ti].ncols;
    const char **cells = lnl_malloc(sizeof *cells * (size_t)ncols);
    va_list ap;
    va_start(ap, ti);
    for (int i = 0; i < ncols; i++) cells[i] = va_arg(ap, const char *);
    va_end(ap);
    lnl_doc_row_cells(d, ti, cells);
    free(cells);
}

void lnl_doc_row_cells(LnlDoc *d, int ti, const char *const *cells) {
    LnlBlock *t = &d->b[ti];
    t->cells = lnl_realloc(t->cells, sizeof(char *) * (size_t)((t->nrows + 2) * t->ncols));
    for (int i = 0; i < t->ncols; i++) t->cells[(t->nrows + 1) * t->ncols + i] = lnl_strdup(cells[i]);
    t->nrows++;
}

void lnl_doc_free(LnlDoc *d) {
    for (int i = 0; i < d->n; i++) {
        LnlBlock *b = &d->b[i];
        free(b->text);
        if (b->kind == B_TABLE)
            for (int k = 0; k < (b->nrows + 1) * b->ncols; k++) free(b->cells[k]);
        free(b->cells);
    }
    free(d->b);
}

void lnl_doc_anchor(const char *heading, char *out, size_t n) {
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)heading; *p && k + 1 < n; p++) {
        if (*p >= 'A' && *p <= 'Z') out[k++] = (char)(*p - 'A' + 'a');
        else if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_') out[k++] = (char)*p;
        else if (*p == ' ') out[k++] = '-';
    }
    if (n) out[k < n ? k : n - 1] = 0;
}

/* A table cell's look: numbers (and n/a) right-aligned, text left, the three verdict words in
 * their colours. */
static const char *cell_class(const char *s) {
    if (!strcmp(s, "shows")) return "v-shows";
    if (!strcmp(s, "does not show")) return "v-not";
    if (!strcmp(s, "inconclusive")) return "v-inc";
    if (!strcmp(s, "n/a") || !strcmp(s, "-")) return "num";
    const char *p = s + (*s == '-' || *s == '+');
    return (*p >= '0' && *p <= '9') || *p == '.' ? "num" : "txt";
}

/* Markdown */
static void md_escape(LnlBuf *o, const char *s, int in_table) {
    for (; *s; s++) {
        if (in_table && *s == '|') lnl_buf_append(o, "\\|", 2);
        else if (*s == '\n' && in_table) lnl_buf_append(o, " ", 1);
        else lnl_buf_append(o, s, 1);
    }
}

void lnl_doc_md(const LnlDoc *d, LnlBuf *o) {
    for (int i = 0; i < d->n; i++) {
        const LnlBlock *b = &d->b[i];
        switch (b->kind) {
        case B_TOC:
            for (int k = 0; k < d->n; k++) {
                const LnlBlock *h = &d->b[k];
                if (h->kind != B_H2 && h->kind != B_H3) continue;
                char a[256];
                lnl_doc_anchor(h->text, a, sizeof a);
                lnl_buf_printf(o, "%s- [", h->kind == B_H3 ? "  " : "");
                md_escape(o, h->text, 1);
                lnl_buf_printf(o, "](#%s)\n", a);
            }
            lnl_buf_printf(o, "\n");
            break;
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
    "th,td{border:1px solid #ccc;padding:3px 7px}th{background:#f2f2f2;text-align:left}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}td.txt{text-align:left}"
    "td.v-shows{background:#e3f4e1;color:#1d5e1a}td.v-not{background:#fbe5e1;color:#8a2a1b}"
    "td.v-inc{background:#efefef;color:#555}"
    "figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #eee}"
    "pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:85%}"
    ".note{color:#a33}nav ul{list-style:none;padding-left:0}nav li.sub{margin-left:1.5em}";

void lnl_doc_html(const LnlDoc *d, const char *plots_dir, LnlBuf *o) {
    lnl_buf_printf(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>");
    for (int i = 0; i < d->n; i++)
        if (d->b[i].kind == B_H1) {
            html_escape(o, d->b[i].text);
            break;
        }
    lnl_buf_printf(o, "</title>\n<style>%s</style></head><body>\n", CSS);
    for (int i = 0; i < d->n; i++) {
        const LnlBlock *b = &d->b[i];
        switch (b->kind) {
        case B_H1:
        case B_H2:
        case B_H3: {
            int lv = b->kind == B_H1 ? 1 : b->kind == B_H2 ? 2 : 3;
            char a[256];
            lnl_doc_anchor(b->text, a, sizeof a);
            lnl_buf_printf(o, "<h%d id=\"%s\">", lv, a);
            html_escape(o, b->text);
            lnl_buf_printf(o, "</h%d>\n", lv);
            break;
        }
        case B_TOC:
            lnl_buf_printf(o, "<nav><ul>\n");
            for (int k = 0; k < d->n; k++) {
                const LnlBlock *h = &d->b[k];
                if (h->kind != B_H2 && h->kind != B_H3) continue;
                char a[256];
                lnl_doc_anchor(h->text, a, sizeof a);
                lnl_buf_printf(o, "<li%s><a href=\"#%s\">", h->kind == B_H3 ? " class=\"sub\"" : "", a);
                html_escape(o, h->text);
                lnl_buf_printf(o, "</a></li>\n");
            }
            lnl_buf_printf(o, "</ul></nav>\n");
            break;
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
                    const char *cell = b->cells[r * b->ncols + c];
                    if (r) lnl_buf_printf(o, "<td class=\"%s\">", cell_class(cell));
                    else lnl_buf_printf(o, "<th>");
                    html_escape(o, cell);
                    lnl_buf_printf(o, r ? "</td>" : "</th>");
                }
                lnl_buf_printf(o, "</tr>\n");
            }
            lnl_buf_printf(o, "</table>\n");
            break;
        case B_FIG: {
            /* a figure shown earlier on the page (a claim's, again under Plots) is a link to it:
             * each SVG goes into the page once */
            int shown = 0;
            for (int k = 0; k < i && !shown; k++) shown = d->b[k].kind == B_FIG && !strcmp(d->b[k].base, b->base);
            if (shown) {
                lnl_buf_printf(o, "<p class=\"figref\">Figure: <a href=\"#fig-%s\">", b->base);
                html_escape(o, b->text);
                lnl_buf_printf(o, "</a> (shown above; <a href=\"plots/%s.png\">PNG</a>, <a href=\"plots/%s.svg\">SVG</a>)</p>\n",
                               b->base, b->base);
                break;
            }
            /* the SVG goes inline as a data URI: the page needs no other file */
            char name[200];
            snprintf(name, sizeof name, "%s.svg", b->base);
            char *path = lnl_path_join(plots_dir, name), *svg = NULL;
            size_t len = 0;
            lnl_buf_printf(o, "<figure id=\"fig-%s\">", b->base);
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

