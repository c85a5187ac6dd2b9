/* `lnlab plot RUN` (runplot.h): the run's state from result.json and its lock, its records from
 * log.jsonl (logread.h), the figures (gnuplot.h, heatmap.h) and the page (the study's document
 * model, doc.h). */
#include "runplot.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../common/version.h"
#include "../diag/metrics.h"
#include "../study/doc.h"
#include "../train/run_result.h"
#include "../train/runlog.h"
#include "gnuplot.h"
#include "heatmap.h"
#include "logread.h"

#define LINE_W 1000
#define LINE_H 450
#define LOCK_FILE ".lock" /* the trainer's lock on its run directory (lnl_dir_lock) */

/* A JSON file of the run, or NULL when it does not exist; anything else that keeps it from being
 * read is an error. */
static int read_json(const char *run, const char *name, cJSON **out, LnlErr *e) {
    *out = NULL;
    char *path = lnl_path_join(run, name), *text = NULL;
    struct stat st;
    int rc = 0;
    if (stat(path, &st) != 0 && errno == ENOENT) goto done;
    if (lnl_read_file(path, &text, NULL, e)) {
        rc = -1;
        goto done;
    }
    *out = cJSON_Parse(text);
    if (!cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        rc = lnl_err(e, "%s: not a JSON object", path);
    }
done:
    free(text);
    free(path);
    return rc;
}

static double jnum(const cJSON *o, const char *k) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(it) ? it->valuedouble : NAN;
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* A number for the page: %.4g, or "n/a" when not finite. */
typedef struct {
    char s[32];
} Num;
static Num num(double v) {
    Num n;
    if (isfinite(v)) snprintf(n.s, sizeof n.s, "%.4g", v);
    else snprintf(n.s, sizeof n.s, "n/a");
    return n;
}

/* The last finite value of v[0..n-1] and its index (-1: none). */
static int last_finite(const double *v, int n) {
    for (int i = n - 1; i >= 0; i--)
        if (isfinite(v[i])) return i;
    return -1;
}

static int any_positive(const double *v, int n) {
    for (int i = 0; i < n; i++)
        if (isfinite(v[i]) && v[i] > 0) return 1;
    return 0;
}

/* Widens [*lo, *hi] to the positive finite values of v[0..n-1]. */
static void positive_range(const double *v, int n, double *lo, double *hi) {
    for (int i = 0; i < n; i++)
        if (isfinite(v[i]) && v[i] > 0) *lo = fmin(*lo, v[i]), *hi = fmax(*hi, v[i]);
}

/* The run's state: result.json when it ended, else whether a process holds its lock. */
static void run_status(const char *run, const cJSON *res, const LnlLogRecords *g, long long planned,
                       LnlRunPlotInfo *info, int *running) {
    long long last = g->n ? (long long)g->step[g->n - 1] : 0;
    *running = 0;
    if (res) {
        const char *st = jstr(res, "status"), *err = jstr(res, "error"), *why = jstr(res, "stop_reason"),
                   *cause = jstr(res, "cause");
        /* version 1 files have no status: finished or diverged */
        if (!st) st = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "diverged")) ? LNL_RESULT_DIVERGED
                                                                                      : LNL_RESULT_FINISHED;
        snprintf(info->status, sizeof info->status, "%s", st);
        double steps = jnum(res, "steps");
        long long s = isfinite(steps) ? (long long)steps : last;
        if (!strcmp(st, LNL_RESULT_DIVERGED))
            snprintf(info->detail, sizeof info->detail, "diverged at step %s: %s",
                     num(jnum(res, "diverged_step")).s, cause ? cause : "cause not recorded");
        else if (!strcmp(st, LNL_RESULT_FAILED))
            snprintf(info->detail, sizeof info->detail, "failed after %lld steps: %s", s, err ? err : "no error recorded");
        else if (!strcmp(st, LNL_RESULT_STOPPED))
            snprintf(info->detail, sizeof info->detail,
                     "stopped after %lld of %lld steps (%s); lnlab train --resume %s continues it", s, planned,
                     why ? why : "reason not recorded", run);
        else snprintf(info->detail, sizeof info->detail, "%s: %lld of %lld steps", st, s, planned);
        return;
    }
    long pid = 0;
    int held = lnl_dir_lock_held(run, LOCK_FILE, &pid);
    if (held > 0) {
        *running = 1;
        snprintf(info->status, sizeof info->status, "running");
        snprintf(info->detail, sizeof info->detail,
                 "running (PID %ld holds the run's lock): %lld of %lld steps so far; run lnlab plot again to refresh",
                 pid, last, planned);
    } else if (g->diverged_at_step >= 0) {
        snprintf(info->status, sizeof info->status, "%s", LNL_RESULT_DIVERGED);
        snprintf(info->detail, sizeof info->detail, "diverged at step %lld: %s (the run wrote no result.json)",
                 g->diverged_at_step, g->cause);
    } else {
        snprintf(info->status, sizeof info->status, "%s", LNL_RESULT_STOPPED);
        snprintf(info->detail, sizeof info->detail,
                 "stopped after %lld of %lld steps: no result.json and no process holds the run's lock%s (killed or "
                 "crashed); lnlab train --resume %s continues it from its newest checkpoint, if it has one",
                 last, planned, held < 0 ? " as far as can be told" : "", run);
    }
}

/* ---- figures ---- */

typedef struct {
    LnlPlotter *pl;
    const LnlLogRecords *g;
    const char *name; /* the run, in titles */
    double unigram, clip;
    int window; /* of the smoothed loss; 1: none */
} Fig;

static int line_figure(Fig *f, const char *base, const char *title, const char *body, LnlErr *e) {
    LnlBuf b = {0};
    lnl_buf_printf(&b, "set title ");
    char t[600];
    snprintf(t, sizeof t, "%s: %s", title, f->name);
    lnl_plot_str(&b, t);
    /* the legend in a margin of its own under the x label (gnuplot's "outside bottom" key shares
     * the label's row) */
    lnl_buf_printf(&b, "\nset xlabel 'optimizer step'\nset grid\nset bmargin 6\n"
                       "set key at screen 0.5, screen 0.04 center center horizontal\n");
    /* the steps of the records and the step that diverged, whose loss is not finite */
    const LnlLogRecords *g = f->g;
    double x0 = g->n ? g->step[0] : 0, x1 = g->n ? g->step[g->n - 1] : 1;
    if (g->nval) x0 = fmin(x0, g->vstep[0]), x1 = fmax(x1, g->vstep[g->nval - 1]);
    if (g->diverged_at_step >= 0) x1 = fmax(x1, (double)g->diverged_at_step);
    if (x1 <= x0) x1 = x0 + 1;
    if (g->diverged_at_step >= 0) x1 += fmax(1, (x1 - x0) * 0.04); /* its mark off the frame */
    lnl_buf_printf(&b, "set xrange [%.9g:%.9g]\n", x0, x1);
    if (x1 - x0 <= 12) lnl_buf_printf(&b, "set xtics 1\n");
    if (f->g->diverged_at_step >= 0)
        lnl_buf_printf(&b, "set arrow from %lld, graph 0 to %lld, graph 1 nohead dt 2 lw 1.5 lc rgb '#d62728'\n"
                           "set label 'diverged' at %lld, graph 1 right offset -0.5,-1 tc rgb '#d62728'\n",
                       f->g->diverged_at_step, f->g->diverged_at_step, f->g->diverged_at_step);
    lnl_buf_append(&b, body, strlen(body));
    int r = lnl_plot_draw(f->pl, lnl_plot_new(f->pl, "run", base, title), b.data, LINE_W, LINE_H, e);
    lnl_buf_free(&b);
    return r;
}

static int run_figures(Fig *f, LnlErr *e) {
    const LnlLogRecords *g = f->g;
    /* the step records in one file, the evaluations in another */
    LnlBuf s = {0}, v = {0}, body = {0};
    double *sm = lnl_malloc(sizeof(double) * (size_t)(g->n ? g->n : 1));
    lnl_plot_smooth(g->loss, g->n, f->window, sm);
    int skipped = 0;
    lnl_buf_printf(&s, "# step loss loss_smoothed lr grad_norm tokens_per_s skipped\n");
    for (int i = 0; i < g->n; i++) {
        lnl_buf_printf(&s, "%.0f", g->step[i]);
        lnl_plot_num(&s, g->loss[i]);
        lnl_plot_num(&s, sm[i]);
        lnl_plot_num(&s, g->lr[i]);
        lnl_plot_num(&s, g->grad_norm[i]);
        lnl_plot_num(&s, g->tokens_per_s[i]);
        lnl_buf_printf(&s, " %d\n", g->skipped[i]);
        skipped += g->skipped[i];
    }
    lnl_buf_printf(&v, "# step val_loss\n");
    for (int i = 0; i < g->nval; i++) {
        lnl_buf_printf(&v, "%.0f", g->vstep[i]);
        lnl_plot_num(&v, g->val[i]);
        lnl_buf_printf(&v, "\n");
    }
    int rc = lnl_plot_data(f->pl, "steps.dat", &s, e) || lnl_plot_data(f->pl, "val.dat", &v, e) ? -1 : 0;
    int has_loss = any_positive(g->loss, g->n), has_val = any_positive(g->val, g->nval);
    if (!rc && (has_loss || has_val)) {
        /* a log axis: the first steps and a blow-up do not flatten the rest */
        double lo = INFINITY, hi = -INFINITY;
        positive_range(g->loss, g->n, &lo, &hi);
        positive_range(g->val, g->nval, &lo, &hi);
        if (isfinite(f->unigram) && f->unigram > 0) positive_range(&f->unigram, 1, &lo, &hi);
        lnl_buf_printf(&body, "set logscale y\nset ylabel 'loss (nats per token, log scale)'\n");
        lnl_plot_log_axis(&body, "y", lo, hi);
        lnl_buf_printf(&body, "plot ");
        int items = 0;
        if (has_loss) {
            if (f->window > 1)
                lnl_buf_printf(&body, "'data/steps.dat' using 1:2 with lines lw 1 lc rgb '#a6c8e6' title 'train', "
                                      "'' using 1:3 with lines lw 2 lc rgb '#1f77b4' title 'train, mean of %d steps'",
                               f->window);
            else lnl_buf_printf(&body, "'data/steps.dat' using 1:2 with lines lw 2 lc rgb '#1f77b4' title 'train'");
            items++;
        }
        if (has_val)
            lnl_buf_printf(&body, "%s'data/val.dat' using 1:2 with linespoints lw 1.5 pt 7 ps 0.9 lc rgb '#d62728' "
                                  "title 'val'", items++ ? ", " : "");
        if (isfinite(f->unigram) && f->unigram > 0)
            lnl_buf_printf(&body, ", %.9g with lines dt 3 lw 1.5 lc rgb '#555555' title 'unigram loss %.3g'", f->unigram,
                           f->unigram);
        lnl_buf_printf(&body, "\n");
        rc = line_figure(f, "loss", "Loss", body.data, e);
    }
    if (!rc && last_finite(g->lr, g->n) >= 0) {
        lnl_buf_free(&body);
        lnl_buf_printf(&body, "set ylabel 'learning rate'\nset format y '%%.1e'\nunset key\n"
                              "plot 'data/steps.dat' using 1:4 with lines lw 2 lc rgb '#2ca02c' notitle\n");
        rc = line_figure(f, "lr", "Learning rate", body.data, e);
    }
    if (!rc && any_positive(g->grad_norm, g->n)) {
        lnl_buf_free(&body);
        double lo = INFINITY, hi = -INFINITY;
        positive_range(g->grad_norm, g->n, &lo, &hi);
        if (isfinite(f->clip) && f->clip > 0) positive_range(&f->clip, 1, &lo, &hi);
        lnl_buf_printf(&body, "set logscale y\nset ylabel 'global gradient norm before clipping (log scale)'\n");
        lnl_plot_log_axis(&body, "y", lo, hi);
        lnl_buf_printf(&body, "plot 'data/steps.dat' using 1:5 with lines lw 1.5 lc rgb '#9467bd' title 'grad norm'");
        if (isfinite(f->clip) && f->clip > 0)
            lnl_buf_printf(&body, ", %.9g with lines dt 2 lw 1.5 lc rgb '#555555' title 'clip at %g'", f->clip, f->clip);
        if (skipped)
            lnl_buf_printf(&body, ", 'data/steps.dat' using 1:($7 > 0 ? $5 : NaN) with points pt 6 ps 1.2 "
                                  "lc rgb '#d62728' title 'skipped as a spike'");
        lnl_buf_printf(&body, "\n");
        rc = line_figure(f, "grad_norm", "Gradient norm", body.data, e);
    }
    if (!rc && any_positive(g->tokens_per_s, g->n)) {
        double *t = lnl_malloc(sizeof(double) * (size_t)g->n);
        memcpy(t, g->tokens_per_s, sizeof(double) * (size_t)g->n);
        int k = 0;
        for (int i = 0; i < g->n; i++)
            if (isfinite(t[i])) t[k++] = t[i];
        qsort(t, (size_t)k, sizeof *t, lnl_cmp_double);
        double med = k % 2 ? t[k / 2] : 0.5 * (t[k / 2 - 1] + t[k / 2]);
        free(t);
        lnl_buf_free(&body);
        lnl_buf_printf(&body, "set ylabel 'tokens per second'\nset yrange [0:*]\n"
                              "plot 'data/steps.dat' using 1:6 with lines lw 1 lc rgb '#ff7f0e' title 'tokens/s', "
                              "%.9g with lines dt 2 lw 1.5 lc rgb '#555555' title 'median %.0f'\n", med, med);
        rc = line_figure(f, "tokens_per_s", "Throughput", body.data, e);
    }
    int heat[LNL_LM_COUNT];
    const int nheat = lnl_layer_metrics_select(LNL_LMF_HEATMAP, 0, heat);
    for (int k = 0; k < nheat && !rc && g->ndiag; k++) {
        char base[160], title[300];
        snprintf(base, sizeof base, "heatmap_%s", lnl_layer_metrics[heat[k]].key);
        lnl_heatmap_title(heat[k], "", title, sizeof title);
        char label[300];
        if (g->diverged_at_step >= 0) snprintf(label, sizeof label, "%s (diverged at step %lld)", f->name, g->diverged_at_step);
        else snprintf(label, sizeof label, "%s", f->name);
        LnlHeatPanel p = {label, g};
        rc = lnl_heatmap_draw(f->pl, "heatmap", base, title, heat[k], &p, 1, e);
    }
    free(sm);
    lnl_buf_free(&s);
    lnl_buf_free(&v);
    lnl_buf_free(&body);
    return rc;
}

/* ---- the page ---- */

static void settings_table(LnlDoc *d, const cJSON *cfg) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(cfg, "model"), *t = cJSON_GetObjectItemCaseSensitive(cfg, "train");
    static const char *head[] = {"setting", "value"};
    int ti = lnl_doc_table(d, 2, head);
    /* the settings a reader of the figures asks for first; config.json has them all */
    static const struct {
        int train;
        const char *key, *label;
    } rows[] = {{0, "preset", "placement (preset)"}, {0, "n_layer", "layers"}, {0, "n_embd", "width"},
                {0, "n_head", "heads"},               {0, "n_positions", "context"}, {0, "vocab_size", "vocabulary"},
                {0, "norm", "normalization"},         {0, "dt", "dt (residual branch factor)"},
                {1, "params", "parameters"},          {1, "data", "data"},
                {1, "batch", "batch (sequences)"},    {1, "seq", "sequence length"},
                {1, "total_batch", "tokens per step"}, {1, "steps", "steps"},
                {1, "lr", "peak learning rate"},       {1, "min_lr", "final learning rate"},
                {1, "warmup", "warmup steps"},         {1, "schedule", "schedule"},
                {1, "weight_decay", "weight decay"},   {1, "grad_clip", "gradient clip"},
                {1, "seed", "seed"},                   {1, "diag_every", "diag record every"},
                {1, "eval_every", "evaluation every"}, {1, "processes", "processes"}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(rows[i].train ? t : m, rows[i].key);
        char v[300];
        if (cJSON_IsString(it)) snprintf(v, sizeof v, "%s", it->valuestring);
        else if (cJSON_IsNumber(it)) snprintf(v, sizeof v, "%.10g", it->valuedouble);
        else if (cJSON_IsBool(it)) snprintf(v, sizeof v, "%s", cJSON_IsTrue(it) ? "true" : "false");
        else continue;
        lnl_doc_row(d, ti, rows[i].label, v);
    }
}

static void provenance_table(LnlDoc *d, const cJSON *p) {
    static const char *head[] = {"", "value"};
    int ti = lnl_doc_table(d, 2, head);
    for (const cJSON *it = p->child; it; it = it->next) {
        char v[1200];
        if (cJSON_IsString(it)) snprintf(v, sizeof v, "%s", it->valuestring);
        else if (cJSON_IsNumber(it)) snprintf(v, sizeof v, "%.10g", it->valuedouble);
        else continue;
        lnl_doc_row(d, ti, it->string, v);
    }
}

int lnl_run_plot(const char *run, const char *gnuplot, LnlRunPlotInfo *info, LnlErr *e) {
    memset(info, 0, sizeof *info);
    struct stat st;
    if (stat(run, &st) != 0) return lnl_err(e, "%s: %s", run, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return lnl_err(e, "%s: not a directory (give a training run's directory)", run);
    char *log_path = lnl_path_join(run, LNL_LOG_FILE);
    cJSON *res = NULL, *cfg = NULL;
    LnlLogRecords g;
    memset(&g, 0, sizeof g);
    LnlFigures figs = {0};
    LnlPlotter pl = {0};
    LnlDoc d = {0};
    int rc = -1, running = 0;
    if (stat(log_path, &st) != 0) {
        lnl_err(e, "%s: %s (not a training run's directory?)", log_path, strerror(errno));
        goto done;
    }
    if (read_json(run, LNL_RESULT_FILE, &res, e) || read_json(run, "config.json", &cfg, e)) goto done;
    if (lnl_log_read(&g, log_path, LNL_LOG_STRICT, e)) goto done;
    const cJSON *tcfg = cJSON_GetObjectItemCaseSensitive(cfg, "train");
    double planned = res ? jnum(res, "steps_planned") : NAN;
    if (!isfinite(planned)) planned = jnum(tcfg, "steps");
    run_status(run, res, &g, isfinite(planned) ? (long long)planned : -1, info, &running);
    info->steps = g.n;
    if (g.torn_line) {
        if (!running) {
            lnl_err(e, "%s:%lld: the last line is cut short (not a whole JSON record) and no process is writing "
                       "the log", log_path, g.torn_line);
            goto done;
        }
        info->torn_line = g.torn_line;
    }

    /* the name of the run in titles: its directory's last component */
    char name[256];
    {
        size_t len = strlen(run);
        while (len > 1 && run[len - 1] == '/') len--;
        size_t b = len;
        while (b > 0 && run[b - 1] != '/') b--;
        snprintf(name, sizeof name, "%.*s", (int)(len - b), run + b);
    }
    char *plots_dir = lnl_path_join(run, LNL_RUN_PLOTS_DIR);
    int orc = lnl_plotter_open(&pl, plots_dir, gnuplot, "lnlab plot", 0, &figs, e);
    if (orc) {
        free(plots_dir);
        goto done;
    }
    if (pl.usable) {
        Fig f = {&pl, &g, name, res ? jnum(res, "unigram_val_loss") : NAN, jnum(tcfg, "grad_clip"), 1};
        f.window = lnl_plot_smooth_window(g.n);
        if (run_figures(&f, e)) {
            free(plots_dir);
            goto done;
        }
    } else {
        snprintf(info->why_none, sizeof info->why_none, "%s", figs.why_none);
    }

    /* the page */
    lnl_doc_text(&d, B_H1, "lnlab run %s", name);
    {
        char ver[160], date[32];
        lnl_version_line(ver, sizeof ver);
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", &tm);
        int li = last_finite(g.loss, g.n), vi = last_finite(g.val, g.nval);
        double uni = res ? jnum(res, "unigram_val_loss") : NAN;
        const cJSON *tr = res ? cJSON_GetObjectItemCaseSensitive(res, "trained") : NULL;
        lnl_doc_text(&d, B_P, "Status: %s.", info->detail);
        lnl_doc_text(&d, B_P,
                     "Last training loss %s (step %s), last val loss %s (step %s), unigram loss of the data %s%s. "
                     "Records: %d of steps, %d of evaluations, %d of diagnostics (%s).",
                     num(li >= 0 ? g.loss[li] : NAN).s, num(li >= 0 ? g.step[li] : NAN).s,
                     num(vi >= 0 ? g.val[vi] : NAN).s, num(vi >= 0 ? g.vstep[vi] : NAN).s, num(uni).s,
                     cJSON_IsBool(tr) ? (cJSON_IsTrue(tr) ? " (trained: yes)" : " (trained: no)") : "", g.n, g.nval,
                     g.ndiag, LNL_LOG_FILE);
        if (info->torn_line)
            lnl_doc_text(&d, B_P, "Line %lld of %s, the last, was still being written and is not shown.",
                         info->torn_line, LNL_LOG_FILE);
        lnl_doc_text(&d, B_P, "Page written %s by %s (lnlab plot; run it again to refresh).", date, ver);
    }
    lnl_doc_text(&d, B_H2, "Figures");
    if (!pl.usable) lnl_doc_text(&d, B_P, "No figures: %s.", figs.why_none);
    else if (!figs.n) lnl_doc_text(&d, B_P, "No figures: the log has no step records yet.");
    int heat_said = 0;
    for (int i = 0; i < figs.n; i++) {
        const LnlFigure *p = &figs.p[i];
        if (!strcmp(p->section, "heatmap") && !heat_said) {
            lnl_doc_text(&d, B_H2, "Per-layer heatmaps");
            lnl_doc_text(&d, B_P, "One column of cells per diag record (every diag_every steps, and the step that "
                                  "diverged), one row per layer; docs/USAGE.md, \"Training diagnostics\", defines each "
                                  "figure.");
            heat_said = 1;
        }
        if (p->ok) {
            int bi = lnl_doc_add(&d, B_FIG);
            d.b[bi].text = lnl_strdup(p->title);
            snprintf(d.b[bi].base, sizeof d.b[bi].base, "%s", p->base);
            info->drawn++;
        } else {
            lnl_doc_text(&d, B_P, "Figure '%s' failed: %s (script: %s/data/%s.gp).", p->title, p->why,
                         LNL_RUN_PLOTS_DIR, p->base);
            info->failed++;
        }
    }
    if (pl.usable && !g.ndiag && g.n)
        lnl_doc_text(&d, B_P, "No per-layer heatmaps: the log has no diag records (lnlab train --diag-every K writes "
                              "them).");
    lnl_doc_text(&d, B_H2, "Settings");
    if (cfg) {
        lnl_doc_text(&d, B_P, "From config.json (which has every setting):");
        settings_table(&d, cfg);
    } else {
        lnl_doc_text(&d, B_P, "No config.json in the run directory.");
    }
    lnl_doc_text(&d, B_H2, "Provenance");
    const cJSON *prov = res ? cJSON_GetObjectItemCaseSensitive(res, "provenance") : NULL;
    if (!cJSON_IsObject(prov)) prov = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "provenance") : NULL;
    if (cJSON_IsObject(prov)) {
        lnl_doc_text(&d, B_P, "The lnlab, machine and command that made the run (from %s):",
                     res && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(res, "provenance")) ? LNL_RESULT_FILE
                                                                                             : "config.json");
        provenance_table(&d, prov);
    } else {
        lnl_doc_text(&d, B_P, "Not recorded yet: a run writes its provenance into %s when it ends.", LNL_RESULT_FILE);
    }
    LnlBuf html = {0};
    lnl_doc_html(&d, plots_dir, &html);
    free(plots_dir);
    char *page = lnl_path_join(run, LNL_RUN_REPORT_FILE);
    rc = lnl_write_file_atomic(page, html.data, html.len, e);
    free(page);
    lnl_buf_free(&html);
done:
    if (pl.dir) snprintf(info->why_none, sizeof info->why_none, "%s", figs.why_none);
    lnl_plotter_close(&pl);
    lnl_figures_free(&figs);
    lnl_doc_free(&d);
    lnl_log_free(&g);
    cJSON_Delete(res);
    cJSON_Delete(cfg);
    free(log_path);
    return rc;
}
