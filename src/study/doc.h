/* The study report's document: a list of blocks (headings, paragraphs, tables, figures) built
 * once and rendered as Markdown and as one self-contained HTML page. It knows nothing of studies. */
#ifndef LNL_STUDY_DOC_H
#define LNL_STUDY_DOC_H

#include <stdarg.h>

#include "../common/util.h"

/* B_TOC: the contents, a linked list of every B_H2 and B_H3 of the document (no text). */
typedef enum { B_H1, B_H2, B_H3, B_P, B_TABLE, B_FIG, B_PRE, B_TOC } LnlBlockKind;

typedef struct {
    LnlBlockKind kind;
    char *text;   /* heading, paragraph, preformatted text; figure title */
    int ncols, nrows; /* table: header + nrows rows */
    char **cells; /* ((nrows + 1) * ncols) */
    char base[160]; /* figure: plots/<base>.png|svg */
} LnlBlock;

typedef struct {
    LnlBlock *b;
    int n;
} LnlDoc;

/* Appends a block of kind k; returns its index. Blocks are referred to by index, never by
 * pointer: every append may move the list. */
int lnl_doc_add(LnlDoc *d, LnlBlockKind k);
/* Appends a heading, paragraph or preformatted block with printf-style text. */
void lnl_doc_text(LnlDoc *d, LnlBlockKind k, const char *fmt, ...) LNL_PRINTF(3, 4);
/* Appends a table with the given header; returns its index for lnl_doc_row. */
int lnl_doc_table(LnlDoc *d, int ncols, const char *const *head);
/* Appends a row of ncols strings to the table at index ti. */
void lnl_doc_row(LnlDoc *d, int ti, ...);
/* The same from an array of ncols strings. */
void lnl_doc_row_cells(LnlDoc *d, int ti, const char *const *cells);
/* vprintf into a new string (caller frees). */
char *lnl_doc_vfmt(const char *fmt, va_list ap);
/* A heading's anchor as GitHub makes it for Markdown (lower case; letters, digits, '-' and '_'
 * kept, spaces to '-', everything else dropped), which the HTML uses as the heading's id. */
void lnl_doc_anchor(const char *heading, char *out, size_t n);
/* Markdown, with figures as plots/<base>.png links. */
void lnl_doc_md(const LnlDoc *d, LnlBuf *o);
/* HTML; each figure's SVG from plots_dir is inlined as a data URI. Table cells that are numbers
 * are right-aligned, and the verdict words "shows", "does not show", "inconclusive" coloured. */
void lnl_doc_html(const LnlDoc *d, const char *plots_dir, LnlBuf *o);
void lnl_doc_free(LnlDoc *d);

#endif
