/* gnuplot figures (gnuplot.h): scripts and data under DIR/data/, PNG and SVG renamed into DIR/. */
#include "gnuplot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
_Static_assert(sizeof palette / sizeof palette[0] == LNL_PLOT_NCOLORS, "LNL_PLOT_NCOLORS is the palette's size");

const char *lnl_plot_color(int i) { return palette[(i % LNL_PLOT_NCOLORS + LNL_PLOT_NCOLORS) % LNL_PLOT_NCOLORS]; }

/* viridis at five stops: ordered in lightness, readable in grey and by the colour-blind */
const char *const lnl_plot_heat_palette =
    "set palette defined (0 '#440154', 0.25 '#3b528b', 0.5 '#21918c', 0.75 '#5ec962', 1 '#fde725')\n";

/* Runs gnuplot inside dir on `-e eval` (if not NULL), then on script (if not NULL), its output
 * into log (NULL: nowhere); returns its exit status (127: could not run it). */
static int run_gnuplot(const char *gnuplot, const char *dir, const char *eval, const char *script, const char *log) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return 127;
    if (pid == 0) {
        if (chdir(dir) != 0) _exit(127);
        int in = open("/dev/null", O_RDONLY), out = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0666);
        if (in < 0 || out < 0) _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        const char *argv[6];
        int k = 0;
        argv[k++] = gnuplot;
        if (eval) argv[k++] = "-e", argv[k++] = eval;
        if (script) argv[k++] = script;
        argv[k] = NULL;
        execvp(gnuplot, (char *const *)argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return 127;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The first line of gnuplot's log that says what went wrong. */
static void gnuplot_complaint(const char *path, char *buf, size_t n) {
    char *text = NULL;
    snprintf(buf, n, "gnuplot failed");
    if (lnl_read_file(path, &text, NULL, NULL)) return;
    char *save = NULL, *pick = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (strstr(l, "rror") || strstr(l, "undefined") || strstr(l, "annot")) {
            pick = l;
            break;
        }
    if (pick) snprintf(buf, n, "gnuplot: %s", pick);
    free(text);
}

/* Old figures go, so that a report shows exactly the figures of its drawing. */
static void clear_figures(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len > 4 && (!strcmp(de->d_name + len - 4, ".png") || !strcmp(de->d_name + len - 4, ".svg"))) {
            char *p = lnl_path_join(dir, de->d_name);
            unlink(p);
            free(p);
        }
    }
    closedir(d);
}

int lnl_plotter_open(LnlPlotter *x, const char *dir, const char *gnuplot, const char *made_by, int clear,
                     LnlFigures *figs, LnlErr *e) {
    memset(x, 0, sizeof *x);
    memset(figs, 0, sizeof *figs);
    x->gnuplot = gnuplot;
    x->made_by = made_by;
    x->term_png = "pngcairo";
    x->figs = figs;
    x->dir = lnl_strdup(dir);
    x->data_dir = lnl_path_join(dir, "data");
    if (lnl_mkdir_p(x->data_dir, e)) return -1;
    if (clear) clear_figures(x->dir);
    int st = run_gnuplot(gnuplot, x->dir, "set terminal pngcairo", NULL, NULL);
    if (st == 127) {
        snprintf(figs->why_none, sizeof figs->why_none,
                 "gnuplot ('%s') could not be run; install gnuplot-nox (scripts/setup does) and run %s again to draw "
                 "them", gnuplot, made_by);
        return 0;
    }
    if (st != 0) x->term_png = "png"; /* a gnuplot built without cairo */
    x->usable = 1;
    return 0;
}

void lnl_plotter_close(LnlPlotter *x) {
    free(x->dir);
    free(x->data_dir);
    x->dir = x->data_dir = NULL;
}

void lnl_plot_str(LnlBuf *b, const char *s) {
    lnl_buf_append(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '\n') lnl_buf_append(b, "\\n", 2);
        else if (*s == '"' || *s == '\\') lnl_buf_printf(b, "\\%c", *s);
        else if ((unsigned char)*s >= 0x20) lnl_buf_append(b, s, 1);
    }
    lnl_buf_append(b, "\"", 1);
}

void lnl_plot_log_axis(LnlBuf *b, const char *axis, double lo, double hi) {
    if (!(lo > 0) || !(hi >= lo) || !isfinite(hi)) return;
    if (hi / lo < 1.02) lo /= 1.1, hi *= 1.1; /* one value: a range around it */
    double pad = pow(hi / lo, 0.04);
    lo /= pad, hi *= pad;
    lnl_buf_printf(b, "set %srange [%.9g:%.9g]\n", axis, lo, hi);
    if (hi / lo > 1e3) return; /* gnuplot's decades say enough */
    static const double fine[] = {1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9}, coarse[] = {1, 2, 5};
    for (int pass = 0; pass < 2; pass++) {
        const double *m = pass ? coarse : fine;
        int nm = pass ? 3 : 11, k = 0;
        for (double dec = pow(10, floor(log10(lo))); dec <= hi; dec *= 10)
            for (int j = 0; j < nm; j++) k += dec * m[j] >= lo && dec * m[j] <= hi;
        if (k > 9 && !pass) continue; /* too many: the coarse set */
        lnl_buf_printf(b, "set %stics (", axis);
        k = 0;
        for (double dec = pow(10, floor(log10(lo))); dec <= hi; dec *= 10)
            for (int j = 0; j < nm; j++)
                if (dec * m[j] >= lo && dec * m[j] <= hi) lnl_buf_printf(b, "%s%.3g", k++ ? ", " : "", dec * m[j]);
        lnl_buf_printf(b, ")\n");
        return;
    }
}

void lnl_plot_num(LnlBuf *b, double v) {
    if (isfinite(v)) lnl_buf_printf(b, " %.9g", v);
    else lnl_buf_printf(b, " NaN");
}

int lnl_plot_smooth_window(long long n) { return n >= 50 ? (int)(n / 25) | 1 : 1; }

void lnl_plot_smooth(const double *v, long long n, int w, double *out) {
    for (long long i = 0; i < n; i++) {
        double s = 0;
        int k = 0;
        for (long long j = i - w / 2; j <= i + w / 2; j++)
            if (j >= 0 && j < n && isfinite(v[j])) s += v[j], k++;
        out[i] = isfinite(v[i]) && k ? s / k : NAN;
    }
}

int lnl_plot_data(LnlPlotter *x, const char *name, const LnlBuf *b, LnlErr *e) {
    char *p = lnl_path_join(x->data_dir, name);
    int r = lnl_write_file_atomic(p, b->data ? b->data : "", b->len, e);
    free(p);
    return r;
}

LnlFigure *lnl_plot_new(LnlPlotter *x, const char *section, const char *base, const char *title) {
    LnlFigures *f = x->figs;
    f->p = lnl_realloc(f->p, sizeof *f->p * (size_t)(f->n + 1));
    LnlFigure *p = &f->p[f->n++];
    memset(p, 0, sizeof *p);
    snprintf(p->section, sizeof p->section, "%s", section);
    snprintf(p->base, sizeof p->base, "%s", base);
    snprintf(p->title, sizeof p->title, "%s", title);
    return p;
}

int lnl_plot_draw(LnlPlotter *x, LnlFigure *p, const char *body, int w, int h, LnlErr *e) {
    /* The script writes <out>.png and <out>.svg, out being its base name unless given: this run
     * gives a temporary one that carries the PID, so that two drawings of one directory at once
     * (`lnlab plot` run again while it draws) never write into each other's files, and a figure
     * appears under its name only whole. */
    LnlBuf s = {0};
    lnl_buf_printf(&s, "# %s: drawn by %s; run `gnuplot data/%s.gp` in the directory above this one to redraw\n",
                   p->title, x->made_by, p->base);
    lnl_buf_printf(&s, "if (!exists('out')) out = '%s'\n", p->base);
    lnl_buf_printf(&s, "set datafile missing 'NaN'\n");
    lnl_buf_printf(&s, "set terminal %s size %d,%d noenhanced font 'sans,10'\nset output out.'.png'\n", x->term_png, w,
                   h);
    lnl_buf_append(&s, body, strlen(body));
    lnl_buf_printf(&s, "unset output\nreset\nset datafile missing 'NaN'\n");
    lnl_buf_printf(&s, "set terminal svg size %d,%d dynamic noenhanced font 'sans,10' background 'white'\n", w, h);
    lnl_buf_printf(&s, "set output out.'.svg'\n");
    lnl_buf_append(&s, body, strlen(body));
    lnl_buf_printf(&s, "unset output\n");
    char name[200], script[200], logname[200], tmp[220], eval[260];
    snprintf(name, sizeof name, "%s.gp", p->base);
    snprintf(script, sizeof script, "data/%s.gp", p->base);
    snprintf(logname, sizeof logname, "data/%s.log", p->base);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p->base, (long)getpid());
    snprintf(eval, sizeof eval, "out = '%s'", tmp);
    int r = lnl_plot_data(x, name, &s, e);
    lnl_buf_free(&s);
    if (r) return -1;
    int st = run_gnuplot(x->gnuplot, x->dir, eval, script, logname);
    char *paths[4];
    const char *ext[4] = {".png", ".svg", ".png", ".svg"};
    for (int i = 0; i < 4; i++) {
        char f[240];
        snprintf(f, sizeof f, "%s%s", i < 2 ? tmp : p->base, ext[i]);
        paths[i] = lnl_path_join(x->dir, f);
    }
    uint64_t a = 0, b = 0;
    int made = st == 0 && lnl_file_size(paths[0], &a, NULL) == 0 && a > 0 && lnl_file_size(paths[1], &b, NULL) == 0 &&
               b > 0;
    if (made && rename(paths[0], paths[2]) == 0 && rename(paths[1], paths[3]) == 0) {
        p->ok = 1;
    } else {
        char *log = lnl_path_join(x->dir, logname);
        gnuplot_complaint(log, p->why, sizeof p->why);
        free(log);
        unlink(paths[0]);
        unlink(paths[1]);
    }
    for (int i = 0; i < 4; i++) free(paths[i]);
    return 0;
}

void lnl_figures_free(LnlFigures *f) {
    free(f->p);
    memset(f, 0, sizeof *f);
}
