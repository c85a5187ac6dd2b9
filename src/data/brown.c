/* The Brown corpus: its file list and split (cats.txt), and tagged text back to plain text.
 * The rules are in brown.h and docs/DATA.md. */
#include "brown.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SETUP_HINT "run scripts/setup to fetch the Brown corpus, or point --corpora / " LNL_CORPORA_ENV \
                   " at the directory holding brown/"

char *lnl_corpora_default_dir(void) {
    const char *env = getenv(LNL_CORPORA_ENV);
    if (env && *env) return lnl_strdup(env);
    char *exe = lnl_exe_dir();
    char *dir = lnl_path_join(exe, LNL_CORPORA_DEFAULT);
    free(exe);
    return dir;
}

void lnl_brown_free(LnlBrown *b) {
    free(b->dir);
    free(b->files);
    free(b->genres);
    memset(b, 0, sizeof *b);
}

static int is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* Copies the next field of [*s, end) (a run of name characters after blanks) into out. */
static int next_field(const char **s, const char *end, char out[LNL_BROWN_NAME_MAX + 1]) {
    const char *p = *s;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    const char *q = p;
    while (q < end && is_name_char(*q)) q++;
    size_t n = (size_t)(q - p);
    if (n == 0 || n > LNL_BROWN_NAME_MAX) return -1;
    memcpy(out, p, n);
    out[n] = 0;
    *s = q;
    return 0;
}

static int parse_list(LnlBrown *b, const char *path, const char *text, size_t n, LnlErr *e) {
    const char *s = text, *end = text + n;
    int cap = 0, gcap = 0;
    for (size_t line = 1; s < end; line++) {
        const char *eol = memchr(s, '\n', (size_t)(end - s));
        if (!eol) eol = end;
        const char *t = eol;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t' || t[-1] == '\r')) t--;
        if (t > s) {
            LnlBrownFile f = {0};
            char genre[LNL_BROWN_NAME_MAX + 1];
            const char *p = s;
            if (next_field(&p, t, f.name) || next_field(&p, t, genre) || p != t) {
                int shown = t - s > 60 ? 60 : (int)(t - s);
                return lnl_err(e, "%s: line %zu: expected \"FILE GENRE\" (names of letters, digits, _ and -, at most "
                                  "%d characters), found '%.*s'",
                               path, line, LNL_BROWN_NAME_MAX, shown, s);
            }
            int g = 0;
            while (g < b->ngenres && strcmp(b->genres[g], genre) != 0) g++;
            if (g == b->ngenres) {
                if (b->ngenres == gcap) {
                    gcap = gcap ? 2 * gcap : 16;
                    b->genres = lnl_realloc(b->genres, (size_t)gcap * sizeof *b->genres);
                }
                memcpy(b->genres[b->ngenres++], genre, sizeof genre);
            }
            for (int i = 0; i < b->nfiles; i++)
                if (strcmp(b->files[i].name, f.name) == 0)
                    return lnl_err(e, "%s: line %zu: file %s is listed twice", path, line, f.name);
            f.genre = g;
            if (b->nfiles == cap) {
                cap = cap ? 2 * cap : 512;
                b->files = lnl_realloc(b->files, (size_t)cap * sizeof *b->files);
            }
            b->files[b->nfiles++] = f;
        }
        s = eol + 1;
    }
    if (b->nfiles == 0) return lnl_err(e, "%s: lists no files; " SETUP_HINT, path);
    return 0;
}

/* Marks the last k of each genre's n files as val (see brown.h). */
static int split(LnlBrown *b, double frac, const char *path, LnlErr *e) {
    for (int g = 0; g < b->ngenres; g++) {
        int n = 0;
        for (int i = 0; i < b->nfiles; i++) n += b->files[i].genre == g;
        if (n < 2)
            return lnl_err(e, "%s: genre %s has %d file; each genre needs 2 to be in both train and val", path,
                           b->genres[g], n);
        int k = (int)floor(frac * n + 0.5);
        if (k < 1) k = 1;
        if (k > n - 1) k = n - 1;
        for (int i = b->nfiles - 1; i >= 0 && k > 0; i--)
            if (b->files[i].genre == g) {
                b->files[i].val = 1;
                b->nval++;
                k--;
            }
    }
    return 0;
}

int lnl_brown_open(LnlBrown *b, const char *corpora_dir, double val_fraction, LnlErr *e) {
    memset(b, 0, sizeof *b);
    b->dir = lnl_path_join(corpora_dir, LNL_BROWN_SUBDIR);
    char *list = lnl_path_join(b->dir, LNL_BROWN_LIST);
    char *text = NULL;
    size_t n = 0;
    struct stat st;
    int r = 0;
    if (stat(b->dir, &st) != 0 || !S_ISDIR(st.st_mode))
        r = lnl_err(e, "--corpus brown: %s is missing; " SETUP_HINT, b->dir);
    else if (stat(list, &st) != 0)
        r = lnl_err(e, "--corpus brown: %s is missing; " SETUP_HINT, list);
    else if (lnl_read_file(list, &text, &n, e))
        r = -1;
    if (r == 0) r = parse_list(b, list, text, n, e);
    if (r == 0) r = split(b, val_fraction, list, e);
    for (int i = 0; r == 0 && i < b->nfiles; i++) {
        char *p = lnl_path_join(b->dir, b->files[i].name);
        if (stat(p, &st) != 0 || access(p, R_OK) != 0)
            r = lnl_err(e, "--corpus brown: %s (listed in %s) cannot be read: %s; " SETUP_HINT, p, LNL_BROWN_LIST,
                        strerror(errno));
        else if (!S_ISREG(st.st_mode))
            r = lnl_err(e, "--corpus brown: %s (listed in %s) is not a regular file", p, LNL_BROWN_LIST);
        free(p);
    }
    free(text);
    free(list);
    if (r) lnl_brown_free(b);
    return r;
}

/* ---- tagged text -> plain text -------------------------------------------------------------- */

typedef struct {
    LnlBuf *out;
    int open;   /* a paragraph has words */
    int glue;   /* no space before the next word */
    int squote; /* a ' quote is open in this paragraph */
} Para;

static int word_is(const char *w, size_t n, const char *s) { return strlen(s) == n && memcmp(w, s, n) == 0; }

static void para_word(Para *p, const char *w, size_t n) {
    int closing = 0, opening = 0;
    if (word_is(w, n, "``")) {
        w = "\"";
        n = 1;
        opening = 1;
    } else if (word_is(w, n, "''")) {
        w = "\"";
        n = 1;
        closing = 1;
    } else if (word_is(w, n, "'")) {
        closing = p->squote;
        opening = !p->squote;
        p->squote = !p->squote;
    }
    int before = closing || (n == 1 && strchr(",.;:?!)]", w[0]) != NULL);
    if (p->open && !p->glue && !before) lnl_buf_append(p->out, " ", 1);
    lnl_buf_append(p->out, w, n);
    p->open = 1;
    p->glue = opening || word_is(w, n, "(") || word_is(w, n, "[");
}

static void para_end(Para *p) {
    if (p->open) lnl_buf_append(p->out, "\n", 1);
    p->open = p->glue = p->squote = 0;
}

typedef struct {
    const char *tok; /* the whole WORD/TAG */
    size_t len, word; /* length of the token, and of its word (before the last '/') */
} Tok;

/* A headline token: its tag carries the -hl suffix ("nn-hl", "np-tl-hl"). */
static int is_headline(const Tok *t) {
    const char *tag = t->tok + t->word + 1, *end = t->tok + t->len;
    for (const char *c = tag; c + 3 <= end; c++)
        if (memcmp(c, "-hl", 3) == 0) return 1;
    return 0;
}

/* One sentence line: the fixes of brown.h, then its words into the paragraph (a heading into a
 * paragraph of its own). */
static void sentence(Para *p, const Tok *toks, size_t nt) {
    const Tok *z = &toks[nt - 1];
    if (nt >= 2 && toks[nt - 2].len == z->len && memcmp(toks[nt - 2].tok, z->tok, z->len) == 0 &&
        z->tok[z->word + 1] == '.')
        nt--;
    z = &toks[nt - 1];
    if (nt >= 2 && z->word == 1 && z->tok[0] == '.' && toks[nt - 2].word > 1 &&
        toks[nt - 2].tok[toks[nt - 2].word - 1] == '.')
        nt--;
    size_t hl = 0;
    for (size_t i = 0; i < nt; i++) hl += is_headline(&toks[i]);
    int heading = 2 * hl >= nt;
    if (heading) para_end(p);
    for (size_t i = 0; i < nt; i++) para_word(p, toks[i].tok, toks[i].word);
    if (heading) para_end(p);
}

int lnl_brown_text(const char *path, const char *text, size_t n, LnlBuf *out, LnlErr *e) {
    Para p = {.out = out};
    Tok *toks = NULL;
    size_t cap = 0;
    const char *s = text, *end = text + n;
    int r = 0;
    for (size_t line = 1; r == 0 && s < end; line++) {
        const char *eol = memchr(s, '\n', (size_t)(end - s));
        if (!eol) eol = end;
        size_t nt = 0;
        for (const char *q = s; q < eol;) {
            while (q < eol && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
            if (q == eol) break;
            const char *t = q;
            while (q < eol && *q != ' ' && *q != '\t' && *q != '\r') q++;
            const char *slash = NULL;
            for (const char *c = t; c < q; c++)
                if (*c == '/') slash = c;
            if (!slash || slash == t || slash + 1 == q) {
                int shown = q - t > 60 ? 60 : (int)(q - t);
                r = lnl_err(e, "%s: line %zu: token '%.*s' is not WORD/TAG", path, line, shown, t);
                break;
            }
            if (nt == cap) {
                cap = cap ? 2 * cap : 64;
                toks = lnl_realloc(toks, cap * sizeof *toks);
            }
            toks[nt++] = (Tok){t, (size_t)(q - t), (size_t)(slash - t)};
        }
        if (r) break;
        if (nt == 0)
            para_end(&p);
        else
            sentence(&p, toks, nt);
        s = eol + 1;
    }
    para_end(&p);
    free(toks);
    return r;
}
