/* The study's plots: data files and one gnuplot script per figure in OUT/plots/data/, each run
 * by gnuplot into a temporary name and renamed into OUT/plots/ once both PNG and SVG exist. */
#include "plots.h"

#include "../report/heatmap.h"
#include "../train/train.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../diag/metrics.h"

#define FIG_W 1000
#define FIG_H 560
#define PANEL_H 420

/* A setup that several presets and seeds share: the grid's variant (its options), dt, depth (or
 * named size), precision, lr; one loss figure each. Runs of another variant (other steps, say) or
 * precision are another setup, not more seeds. */
typedef struct {
    LnlStudyRun run; /* the first run of the setup: the setting (lnl_study_same_setting) and lr */
    char key[2 * LNL_STUDY_ID_MAX], label[2 * LNL_STUDY_ID_MAX + 64];
} Setup;

static int same_setup(const Setup *c, const LnlStudyRun *r) {
    return lnl_study_same_setting(&c->run, r) && c->run.lr == r->lr;
}

/* The key of a setup's loss figure: variant and precision (lnl_study_setting_tag), dt, shape, lr. */
static void setup_key(const LnlStudyRun *r, char *key, size_t n) {
    char tag[LNL_STUDY_ID_MAX];
    lnl_study_setting_tag(r, tag, sizeof tag);
    const char *sep = tag[0] ? "-" : "";
    if (r->size[0]) snprintf(key, n, "%s%sdt%g-%s-lr%g", tag, sep, r->dt, r->size, r->lr);
    else snprintf(key, n, "%s%sdt%g-L%d-lr%g", tag, sep, r->dt, r->depth, r->lr);
}

static int setup_index(Setup *setups, int *n, const LnlStudyRun *r) {
    for (int i = 0; i < *n; i++)
        if (same_setup(&setups[i], r)) return i;
    Setup *c = &setups[(*n)++];
    memset(c, 0, sizeof *c);
    c->run = *r;
    setup_key(r, c->key, sizeof c->key);
    char tag[LNL_STUDY_ID_MAX];
    lnl_study_setting_tag(r, tag, sizeof tag);
    const char *sep = tag[0] ? ", " : "";
    if (r->size[0])
        snprintf(c->label, sizeof c->label, "dt %g, %s (L %d), lr %g%s%s", r->dt, r->size, r->depth, r->lr, sep, tag);
    else snprintf(c->label, sizeof c->label, "dt %g, L %d, lr %g%s%s", r->dt, r->depth, r->lr, sep, tag);
    return *n - 1;
}

void lnl_study_loss_figure(const LnlStudyRun *r, char *base, size_t n) {
    char key[2 * LNL_STUDY_ID_MAX];
    setup_key(r, key, sizeof key);
    snprintf(base, n, "loss_%s", key);
}

/* The key of a setting's loss-against-lr figure: options and precision, dt and depth. */
static void lr_key(const LnlStudyRun *r, char *key, size_t n) {
    char tag[LNL_STUDY_ID_MAX];
    lnl_study_setting_tag(r, tag, sizeof tag);
    snprintf(key, n, "%s%sdt%g-L%d", tag, tag[0] ? "-" : "", r->dt, r->depth);
}

void lnl_study_lr_figure(const LnlStudyRun *r, char *base, size_t n) {
    char key[160];
    lr_key(r, key, sizeof key);
    snprintf(base, n, "lr_%s", key);
}

void lnl_study_hidden_figure(const char *preset, char *base, size_t n) { snprintf(base, n, "hidden_%s", preset); }

typedef struct {
    const char *out; /* the study directory */
    LnlPlotter pl;   /* its plots/ */
} Ctx;

static LnlStudyPlot *new_plot(Ctx *x, const char *section, const char *base, const char *title) {
    return lnl_plot_new(&x->pl, section, base, title);
}

static int draw(Ctx *x, LnlStudyPlot *p, const char *body, int w, int h, LnlErr *e) {
    return lnl_plot_draw(&x->pl, p, body, w, h, e);
}

/* ---- data ---- */

static int has_positive(const double *v, int n) {
    for (int i = 0; i < n; i++)
        if (isfinite(v[i]) && v[i] > 0) return 1;
    return 0;
}

/* The data columns of the layer data files: the metrics of the by-layer figures (metrics.h,
 * LNL_LMF_BYLAYER) in the probe's key order; gnuplot's column 2 + c is metric by_metric(2 + c). */
static int by_metrics(int *ids) { return lnl_layer_metrics_select(LNL_LMF_BYLAYER, 1, ids); }

static int by_metric(int col) {
    int ids[LNL_LM_COUNT], n = by_metrics(ids);
    assert(col >= 2 && col < 2 + n);
    return ids[col - 2];
}

/* Whether column col holds a block metric: layers 1..L, nothing at the embedding. */
static int col_blocks(int col) { return lnl_layer_metrics[by_metric(col)].rows == LNL_ROWS_BLOCK; }

/* Medians over the runs of a setup, per layer, for the columns of a layers data file. */
typedef struct {
    int L1;                     /* entries 0..L */
    int nc;                     /* columns (by_metrics) */
    double *col[LNL_LM_COUNT];  /* (L1) each */
} LayerMed;

static void layer_medians(const LnlStudyResult *rs, const int *idx, int k, LayerMed *m) {
    memset(m, 0, sizeof *m);
    int L1 = 0, ids[LNL_LM_COUNT];
    for (int j = 0; j < k; j++)
        if (rs[idx[j]].nlayers > L1) L1 = rs[idx[j]].nlayers;
    m->L1 = L1;
    m->nc = by_metrics(ids);
    double *tmp = lnl_malloc(sizeof(double) * (size_t)(k ? k : 1));
    for (int c = 0; c < m->nc; c++) {
        m->col[c] = lnl_malloc(sizeof(double) * (size_t)(L1 ? L1 : 1));
        for (int l = 0; l < L1; l++) {
            int n = 0;
            for (int j = 0; j < k; j++) {
                const LnlStudyResult *r = &rs[idx[j]];
                if (l >= r->nlayers) continue;
                tmp[n++] = lnl_study_layer_value(&r->layers[l], ids[c]);
            }
            m->col[c][l] = lnl_study_median(tmp, n);
        }
    }
    free(tmp);
}

static void layer_medians_free(LayerMed *m) {
    for (int c = 0; c < m->nc; c++) free(m->col[c]);
}

static int write_layers(Ctx *x, const char *name, const LayerMed *m, LnlErr *e) {
    LnlBuf b = {0};
    lnl_buf_printf(&b, "# layer");
    for (int c = 0; c < m->nc; c++) lnl_buf_printf(&b, " %s", lnl_layer_metrics[by_metric(2 + c)].key);
    lnl_buf_printf(&b, " (medians over seeds)\n");
    for (int l = 0; l < m->L1; l++) {
        lnl_buf_printf(&b, "%d", l);
        for (int c = 0; c < m->nc; c++) {
            double v = m->col[c][l];
            if (col_blocks(2 + c) && l == 0) v = NAN; /* the embedding has no block gradient or sensitivity */
            lnl_plot_num(&b, v);
        }
        lnl_buf_printf(&b, "\n");
    }
    int r = lnl_plot_data(&x->pl, name, &b, e);
    lnl_buf_free(&b);
    return r;
}

/* ---- figures ---- */

/* One preset's curves at one setting, over its seeds: per step the median and range of the
 * seeds' training loss (a seed that diverged counts up to its last finite step), smoothed by a
 * centred mean over `win` steps, and the same for the val loss at each evaluation. */
typedef struct {
    int nseeds, ndiverged;
    long long nsteps;                  /* steps 1..nsteps */
    double *med, *lo, *hi;             /* (nsteps + 1), NAN where no seed has a finite value */
    double *smed, *slo, *shi;          /* smoothed */
    long long nval;                    /* evaluation steps, ascending */
    double *vstep, *vmed, *vlo, *vhi;  /* (nval) */
    int win_note;                      /* the smoothing window, steps */
} SeedCurves;

static void seed_curves_free(SeedCurves *sc) {
    free(sc->med), free(sc->lo), free(sc->hi), free(sc->smed), free(sc->slo), free(sc->shi);
    free(sc->vstep), free(sc->vmed), free(sc->vlo), free(sc->vhi);
    memset(sc, 0, sizeof *sc);
}

/* median, min and max of the finite v[0..n-1] (reordered); NAN if none */
static void med_range(double *v, int n, double *med, double *lo, double *hi) {
    *lo = *hi = NAN;
    *med = lnl_study_median(v, n); /* keeps the finite values first, sorted */
    for (int i = 0; i < n && isfinite(v[i]); i++) {
        if (!(*lo <= v[i])) *lo = v[i];
        if (!(*hi >= v[i])) *hi = v[i];
    }
}

/* The curves of preset at the setup from the runs' logs; nseeds = 0 when there are none. */
static void seed_curves(Ctx *x, const LnlStudyResult *rs, const int *have, int n, const Setup *setup,
                        const char *preset, SeedCurves *sc) {
    memset(sc, 0, sizeof *sc);
    LnlStudyCurve *cs = lnl_calloc((size_t)n + 1, sizeof *cs);
    int nc = 0;
    for (int i = 0; i < n; i++) {
        if (!have[i] || strcmp(rs[i].run.preset, preset) || !same_setup(setup, &rs[i].run)) continue;
        char *runs = lnl_path_join(x->out, "runs");
        char *rd = lnl_path_join(runs, rs[i].run.id), *lp = lnl_path_join(rd, "log.jsonl");
        if (lnl_study_curve_read(&cs[nc], lp, 0, NULL) == 0) {
            sc->ndiverged += cs[nc].diverged_at_step >= 0;
            for (int k = 0; k < cs[nc].n; k++)
                if (cs[nc].step[k] > sc->nsteps) sc->nsteps = (long long)cs[nc].step[k];
            nc++;
        }
        free(runs), free(rd), free(lp);
    }
    sc->nseeds = nc;
    if (nc == 0 || sc->nsteps < 1) {
        for (int c = 0; c < nc; c++) lnl_study_curve_free(&cs[c]);
        free(cs);
        sc->nseeds = 0;
        return;
    }
    size_t m = (size_t)sc->nsteps + 1;
    double *all = lnl_malloc(m * (size_t)nc * sizeof(double)), *v = lnl_malloc((size_t)nc * sizeof(double));
    for (size_t k = 0; k < m * (size_t)nc; k++) all[k] = NAN;
    for (int c = 0; c < nc; c++)
        for (int k = 0; k < cs[c].n; k++) {
            long long st = (long long)cs[c].step[k];
            if (st >= 1 && st <= sc->nsteps) all[(size_t)st * (size_t)nc + (size_t)c] = cs[c].loss[k];
        }
    sc->med = lnl_malloc(m * sizeof(double)), sc->lo = lnl_malloc(m * sizeof(double));
    sc->hi = lnl_malloc(m * sizeof(double));
    sc->med[0] = sc->lo[0] = sc->hi[0] = NAN;
    for (size_t st = 1; st < m; st++) {
        for (int c = 0; c < nc; c++) v[c] = all[st * (size_t)nc + (size_t)c];
        med_range(v, nc, &sc->med[st], &sc->lo[st], &sc->hi[st]);
    }
    int win = lnl_plot_smooth_window(sc->nsteps);
    sc->smed = lnl_malloc(m * sizeof(double)), sc->slo = lnl_malloc(m * sizeof(double));
    sc->shi = lnl_malloc(m * sizeof(double));
    /* entries 1..nsteps (entry 0, step 0, is never filled) */
    lnl_plot_smooth(sc->med + 1, sc->nsteps, win, sc->smed + 1);
    lnl_plot_smooth(sc->lo + 1, sc->nsteps, win, sc->slo + 1);
    lnl_plot_smooth(sc->hi + 1, sc->nsteps, win, sc->shi + 1);
    /* evaluations: the union of the seeds' evaluation steps */
    long long nv = 0;
    double *vs = lnl_malloc(sizeof(double) * (size_t)(1 + nc * 64));
    size_t cap = (size_t)(1 + nc * 64);
    for (int c = 0; c < nc; c++)
        for (int k = 0; k < cs[c].nval; k++) {
            int seen = 0;
            for (long long j = 0; j < nv && !seen; j++) seen = vs[j] == cs[c].vstep[k];
            if (seen) continue;
            if ((size_t)nv == cap) vs = lnl_realloc(vs, (cap *= 2) * sizeof(double));
            vs[nv++] = cs[c].vstep[k];
        }
    qsort(vs, (size_t)nv, sizeof(double), lnl_cmp_double);
    sc->nval = nv, sc->vstep = vs;
    sc->vmed = lnl_malloc(sizeof(double) * (size_t)(nv + 1)), sc->vlo = lnl_malloc(sizeof(double) * (size_t)(nv + 1));
    sc->vhi = lnl_malloc(sizeof(double) * (size_t)(nv + 1));
    for (long long j = 0; j < nv; j++) {
        for (int c = 0; c < nc; c++) {
            v[c] = NAN;
            for (int k = 0; k < cs[c].nval; k++)
                if (cs[c].vstep[k] == vs[j]) v[c] = cs[c].val[k];
        }
        med_range(v, nc, &sc->vmed[j], &sc->vlo[j], &sc->vhi[j]);
    }
    sc->win_note = win;
    for (int c = 0; c < nc; c++) lnl_study_curve_free(&cs[c]);
    free(cs), free(all), free(v);
}

/* Loss against step, one figure per setting: per preset the median over seeds of the training
 * loss, smoothed (bold, the preset's colour and dash pattern), raw (faint), the seeds' range as a
 * band, and the val loss's median as markers with the range as bars. The data's unigram loss and
 * the trained gate are drawn, and the axis is cut 1.5 nats above the unigram loss, so that the
 * first steps and spikes do not squeeze the curves that matter. */
static int loss_figures(Ctx *x, const LnlStudyResult *rs, const int *have, int n, Setup *setups, int nsetups,
                        char presets[][32], int npresets, LnlErr *e) {
    static const int dashes[] = {1, 2, 4, 5, 3, 6};
    static const int points[] = {7, 5, 9, 11, 13, 15};
    for (int si = 0; si < nsetups; si++) {
        LnlBuf body = {0};
        double uni = NAN;
        for (int i = 0; i < n && !isfinite(uni); i++)
            if (have[i] && same_setup(&setups[si], &rs[i].run)) uni = rs[i].unigram;
        int items = 0, win = 1, maxseeds = 0;
        LnlBuf plot = {0};
        for (int pi = 0; pi < npresets; pi++) {
            SeedCurves sc;
            seed_curves(x, rs, have, n, &setups[si], presets[pi], &sc);
            if (sc.nseeds == 0) continue;
            win = sc.win_note;
            if (sc.nseeds > maxseeds) maxseeds = sc.nseeds;
            LnlBuf d = {0};
            for (long long st = 1; st <= sc.nsteps; st++) {
                lnl_buf_printf(&d, "%lld", st);
                lnl_plot_num(&d, sc.med[st]), lnl_plot_num(&d, sc.lo[st]), lnl_plot_num(&d, sc.hi[st]);
                lnl_plot_num(&d, sc.smed[st]), lnl_plot_num(&d, sc.slo[st]), lnl_plot_num(&d, sc.shi[st]);
                lnl_buf_printf(&d, "\n");
            }
            LnlBuf dv = {0};
            for (long long j = 0; j < sc.nval; j++) {
                lnl_buf_printf(&dv, "%.0f", sc.vstep[j]);
                lnl_plot_num(&dv, sc.vmed[j]), lnl_plot_num(&dv, sc.vlo[j]), lnl_plot_num(&dv, sc.vhi[j]);
                lnl_buf_printf(&dv, "\n");
            }
            char name[220], vname[220];
            snprintf(name, sizeof name, "loss_%s.%s.dat", setups[si].key, presets[pi]);
            snprintf(vname, sizeof vname, "loss_%s.%s.val.dat", setups[si].key, presets[pi]);
            int r = lnl_plot_data(&x->pl, name, &d, e) || (sc.nval && lnl_plot_data(&x->pl, vname, &dv, e));
            lnl_buf_free(&d);
            lnl_buf_free(&dv);
            if (r) {
                seed_curves_free(&sc);
                lnl_buf_free(&plot);
                lnl_buf_free(&body);
                return -1;
            }
            const char *col = lnl_plot_color(pi);
            char label[96];
            snprintf(label, sizeof label, "%s (%d seed%s%s", presets[pi], sc.nseeds, sc.nseeds == 1 ? "" : "s",
                     sc.ndiverged ? ", " : ")");
            if (sc.ndiverged)
                snprintf(label + strlen(label), sizeof label - strlen(label), "%d diverged)", sc.ndiverged);
            const char *sep = items ? ", \\\n     " : "";
            if (sc.nseeds > 1)
                lnl_buf_printf(&plot, "%s'data/%s' using 1:6:7 with filledcurves fc rgb '%s' fs transparent solid 0.18 "
                                      "noborder notitle",
                               sep, name, col), sep = ", \\\n     ";
            /* the raw median faint: the colour at 65% transparency (gnuplot's #AARRGGBB) */
            lnl_buf_printf(&plot, "%s'data/%s' using 1:2 with lines lc rgb '#a6%s' lw 0.8 dt 1 notitle", sep, name,
                           col[0] == '#' ? col + 1 : col);
            lnl_buf_printf(&plot, ", \\\n     'data/%s' using 1:5 with lines lc rgb '%s' lw 2.5 dt %d title '%s train'",
                           name, col, dashes[pi % 6], label);
            if (sc.nval)
                lnl_buf_printf(&plot, ", \\\n     'data/%s' using 1:2:3:4 with yerrorbars lc rgb '%s' pt %d ps 1.1 lw 1.2 "
                                      "title '%s val'",
                               vname, col, points[pi % 6], presets[pi]);
            items++;
            seed_curves_free(&sc);
        }
        if (items) {
            lnl_buf_printf(&body, "set title 'Loss against step: %s (median over seeds, band: their range%s)'\n",
                           setups[si].label, isfinite(uni) ? "; axis cut above" : "");
            lnl_buf_printf(&body, "set xlabel 'optimizer step'\nset ylabel 'loss (nats per token)'\nset grid\n"
                                  "set key outside right top\n");
            if (isfinite(uni)) lnl_buf_printf(&body, "set yrange [*:%.9g]\n", uni + 1.5);
            lnl_buf_printf(&body, "plot ");
            if (isfinite(uni))
                lnl_buf_printf(&body, "%.9g with lines lc rgb '#777777' dt 3 lw 1.5 title 'unigram loss %.3g', \\\n     "
                                      "%.9g with lines lc rgb '#bbbbbb' dt 4 lw 1.5 title 'trained below %.3g', \\\n     ",
                               uni, uni, uni - LNL_TRAINED_MARGIN, uni - LNL_TRAINED_MARGIN);
            lnl_buf_append(&body, plot.data, plot.len);
            lnl_buf_printf(&body, "\n");
            char base[160], title[256];
            snprintf(base, sizeof base, "loss_%s", setups[si].key);
            snprintf(title, sizeof title, "Loss curves, %s: median over seeds (up to %d), band: range%s", setups[si].label,
                     maxseeds, win > 1 ? "; bold: smoothed" : "");
            if (win > 1)
                snprintf(title + strlen(title), sizeof title - strlen(title), " (centred mean of %d steps), faint: raw",
                         win);
            lnl_buf_append(&body, "", 1);
            int r = draw(x, new_plot(x, "loss", base, title), body.data, FIG_W, FIG_H, e);
            if (r) {
                lnl_buf_free(&plot);
                lnl_buf_free(&body);
                return -1;
            }
        }
        lnl_buf_free(&plot);
        lnl_buf_free(&body);
    }
    return 0;
}


/* Loss against learning rate: for every setting (options, dt, shape) with at least 3 learning
 * rates, each preset's final val loss, the median over seeds with the seeds' range as an error
 * bar; a run that did not train is an open marker (a diverged one sits at its loss at init), and
 * the data's unigram loss is drawn. The LR sweep's figure. */
static int lr_figures(Ctx *x, const LnlStudyResult *rs, const int *have, int n, char presets[][32], int npresets,
                      LnlErr *e) {
    int *done = lnl_calloc((size_t)(n ? n : 1), sizeof(int));
    double *lrs = lnl_malloc(sizeof(double) * (size_t)(n + 1)), *v = lnl_malloc(sizeof(double) * (size_t)(n + 1));
    int rc = 0;
    for (int i0 = 0; i0 < n && !rc; i0++) {
        if (!have[i0] || done[i0]) continue;
        const LnlStudyRun *u0 = &rs[i0].run;
        /* the setting of run i0: every run with its options, dt and shape */
        int nl = 0;
        double uni = NAN;
        for (int i = 0; i < n; i++) {
            const LnlStudyRun *u = &rs[i].run;
            if (!have[i] || !lnl_study_same_setting(u, u0)) continue;
            done[i] = 1;
            if (!isfinite(uni)) uni = rs[i].unigram;
            int seen = 0;
            for (int k = 0; k < nl && !seen; k++) seen = lrs[k] == u->lr;
            if (!seen) lrs[nl++] = u->lr;
        }
        if (nl < 3) continue;
        qsort(lrs, (size_t)nl, sizeof *lrs, lnl_cmp_double);
        char key[160], label[200], tag[LNL_STUDY_ID_MAX];
        lr_key(u0, key, sizeof key);
        lnl_study_setting_tag(u0, tag, sizeof tag);
        snprintf(label, sizeof label, "dt %g, L %d%s%s", u0->dt, u0->depth, tag[0] ? ", " : "", tag);
        LnlBuf body = {0};
        lnl_buf_printf(&body, "set title 'Final val loss against learning rate: %s (median over seeds, bars: range; "
                              "open: did not train)'\n", label);
        lnl_buf_printf(&body, "set logscale x\nset xlabel 'peak learning rate'\nset ylabel 'final val loss (nats per "
                              "token)'\nset grid\nset key outside right top\nset xrange [%.9g:%.9g]\nplot ",
                       lrs[0] / 1.6, lrs[nl - 1] * 1.6);
        int items = 0;
        if (isfinite(uni)) {
            lnl_buf_printf(&body, "%.9g with lines lc rgb '#777777' dt 3 lw 1.5 title 'unigram loss %.3g'", uni, uni);
            items++;
        }
        for (int pi = 0; pi < npresets && !rc; pi++) {
            LnlBuf med = {0}, bad = {0};
            int nmed = 0, nbad = 0;
            /* the LR sensitivity of each seed with a run at every lr, median */
            double *sens = lnl_malloc(sizeof(double) * (size_t)(n + 1));
            int nsens = lnl_study_lr_sensitivities(rs, have, n, u0, presets[pi], lrs, nl, sens, NULL);
            char sens_txt[64] = "";
            if (nsens) snprintf(sens_txt, sizeof sens_txt, " (LR sensitivity %.3g, %d seed%s)", lnl_study_median(sens, nsens),
                                nsens, nsens == 1 ? "" : "s");
            free(sens);
            for (int l = 0; l < nl; l++) {
                int k = 0;
                for (int i = 0; i < n; i++) {
                    const LnlStudyResult *r = &rs[i];
                    const LnlStudyRun *u = &r->run;
                    if (!have[i] || strcmp(u->preset, presets[pi]) || !lnl_study_same_setting(u, u0) || u->lr != lrs[l])
                        continue;
                    if (r->trained == 1) v[k++] = r->final_val_loss;
                    else {
                        double y = r->diverged_at_step >= 0 || !isfinite(r->final_val_loss) ? r->init_loss
                                                                                              : r->final_val_loss;
                        if (isfinite(y)) lnl_buf_printf(&bad, "%.9g %.9g\n", lrs[l], y), nbad++;
                    }
                }
                if (!k) continue;
                double m = lnl_study_median(v, k); /* sorts v: its range is v[0] .. v[k - 1] */
                lnl_buf_printf(&med, "%.9g %.9g %.9g %.9g\n", lrs[l], m, v[0], v[k - 1]);
                nmed++;
            }
            const char *col = lnl_plot_color(pi);
            for (int kind = 0; kind < 2 && !rc; kind++) {
                LnlBuf *d = kind ? &bad : &med;
                if (!(kind ? nbad : nmed)) continue;
                char name[240];
                snprintf(name, sizeof name, "lr_%s.%s.%s.dat", key, presets[pi], kind ? "untrained" : "trained");
                rc = lnl_plot_data(&x->pl, name, d, e);
                if (kind)
                    lnl_buf_printf(&body, "%s'data/%s' using 1:2 with points pt 6 ps 1.6 lc rgb '%s' title '%s: did not "
                                          "train'",
                                   items ? ", \\\n     " : "", name, col, presets[pi]);
                else
                    lnl_buf_printf(&body, "%s'data/%s' using 1:2:3:4 with yerrorlines lw 2 pt 7 ps 1 lc rgb '%s' "
                                          "dt %d title '%s%s'",
                                   items ? ", \\\n     " : "", name, col, 1 + pi % 4, presets[pi], sens_txt);
                items++;
            }
            lnl_buf_free(&med);
            lnl_buf_free(&bad);
        }
        lnl_buf_printf(&body, "\n");
        if (!rc && items > (isfinite(uni) ? 1 : 0)) {
            char base[200], title[256];
            snprintf(base, sizeof base, "lr_%s", key);
            snprintf(title, sizeof title, "Final val loss against learning rate, %s", label);
            lnl_buf_append(&body, "", 1);
            rc = draw(x, new_plot(x, "lr", base, title), body.data, FIG_W, FIG_H, e);
        }
        lnl_buf_free(&body);
    }
    free(done);
    free(lrs);
    free(v);
    return rc;
}

/* One panel: the given column of every setup's layer data that has a positive value. */
/* The positive finite range of column col over k layer medians (blocks only for a block metric). */
static void col_range(const LayerMed *meds, int k, int col, double *lo, double *hi) {
    for (int j = 0; j < k; j++) {
        const double *v = meds[j].col[col - 2];
        for (int l = col_blocks(col) ? 1 : 0; l < meds[j].L1; l++)
            if (isfinite(v[l]) && v[l] > 0) {
                if (!(*lo <= v[l])) *lo = v[l];
                if (!(*hi >= v[l])) *hi = v[l];
            }
    }
}

/* One panel of a layer figure: column col of k settings' medians against layer, on a log axis
 * from ylo to yhi (shared by the figure's panels and, for one figure kind, by every preset), with
 * the legend in a margin under the plot (keyrows rows; every panel gets the same margin so that
 * the frames align), block 1 marked for the per-block columns, and, with fit, each setting's least
 * squares line a + b l through its medians (the linear bound Peri-LN's theory gives) dashed. */
static void panel(LnlBuf *b, const char *title, const char *ylabel, int col, char names[][200], LayerMed *meds,
                  char labels[][128], int k, int key, double ylo, double yhi, int keyrows, int fit) {
    const int blocks = col_blocks(col);
    int maxn = 0;
    for (int j = 0; j < k; j++)
        if (meds[j].L1 > maxn) maxn = meds[j].L1;
    lnl_buf_printf(b, "set title '%s'\nset logscale y\nset xlabel '%s'\nset ylabel '%s'\nset grid\nset xtics %s\n",
                   title, blocks ? "block" : "layer (0 = embedding output)", ylabel, maxn <= 17 ? "1" : "autofreq");
    lnl_buf_printf(b, "set bmargin %d\n", 4 + keyrows);
    lnl_buf_printf(b, "set ytics autofreq\n"); /* not the previous panel's */
    if (isfinite(ylo) && isfinite(yhi) && yhi > 0) lnl_plot_log_axis(b, "y", ylo, yhi);
    else lnl_buf_printf(b, "set autoscale y\nset ytics autofreq\n");
    if (blocks) lnl_buf_printf(b, "set xrange [0.5:%.1f]\n", maxn - 0.5); /* blocks 1..L, block 1 off the frame */
    else lnl_buf_printf(b, "set xrange [*:*]\n");
    if (key) lnl_buf_printf(b, "set key outside below left Left reverse font ',8' spacing 0.9 maxrows %d\n", keyrows);
    else lnl_buf_printf(b, "unset key\n");
    if (blocks)
        lnl_buf_printf(b, "set arrow 1 from 1, graph 0 to 1, graph 1 nohead lc rgb '#999999' dt 2 lw 1.5\n"
                          "set label 1 'block 1' at 1, graph 0.96 offset 0.5,0 font ',8' tc rgb '#666666'\n");
    int items = 0;
    LnlBuf fits = {0};
    for (int j = 0; j < k; j++) {
        const double *v = meds[j].col[col - 2];
        int n = meds[j].L1;
        /* layer 0 of gradient and sensitivity is not a block */
        if (blocks && n > 0) {
            v++;
            n--;
        }
        if (!has_positive(v, n)) continue;
        lnl_buf_printf(b, "%s'data/%s' using 1:%d with linespoints lw 1.5 pt 7 ps 0.5 lc rgb '%s' dt %d title '%s'",
                       items ? ", \\\n     " : "plot ", names[j], col, lnl_plot_color(j), 1 + (j / LNL_PLOT_NCOLORS) % 5, labels[j]);
        items++;
        if (fit) { /* least squares a + b l over the finite entries */
            double sx = 0, sy = 0, sxx = 0, sxy = 0;
            int m = 0;
            for (int l = 0; l < n; l++)
                if (isfinite(v[l])) sx += l, sy += v[l], sxx += (double)l * l, sxy += l * v[l], m++;
            double den = m * sxx - sx * sx;
            if (m >= 2 && den != 0) {
                double bb = (m * sxy - sx * sy) / den, aa = (sy - bb * sx) / m;
                lnl_buf_printf(&fits, ", \\\n     [0:%d] (%.9g + %.9g * x) > 0 ? %.9g + %.9g * x : 1/0 with lines lc rgb '%s' "
                                      "dt 2 lw 1 notitle",
                               n - 1, aa, bb, aa, bb, lnl_plot_color(j));
            }
        }
    }
    if (items && fits.len) {
        lnl_buf_append(b, fits.data, fits.len);
        /* one legend entry for the fits */
        lnl_buf_printf(b, ", \\\n     1/0 with lines lc rgb '#555555' dt 2 lw 1 title 'linear fit a + b l (dashed)'");
    }
    lnl_buf_free(&fits);
    if (!items)
        lnl_buf_printf(b, "unset logscale y\nset yrange [0:1]\nset label 2 'no finite values' at graph 0.5,0.5 center\n"
                          "plot -1 notitle\nunset label 2\nset autoscale y");
    lnl_buf_printf(b, "\nunset arrow 1\nunset label 1\n");
}

static int layer_figures(Ctx *x, const LnlStudyResult *rs, const int *have, int n, Setup *setups, int nsetups,
                         char presets[][32], int npresets, LnlErr *e) {
    /* per preset: its setups' medians */
    int maxk = nsetups;
    char(*names)[200] = lnl_malloc(sizeof *names * (size_t)(maxk ? maxk : 1) * (size_t)(npresets ? npresets : 1));
    char(*labels)[128] = lnl_malloc(sizeof *labels * (size_t)(maxk ? maxk : 1) * (size_t)(npresets ? npresets : 1));
    LayerMed *meds = lnl_calloc((size_t)(maxk ? maxk : 1) * (size_t)(npresets ? npresets : 1), sizeof *meds);
    int *counts = lnl_calloc((size_t)(npresets ? npresets : 1), sizeof(int));
    int *idx = lnl_malloc(sizeof(int) * (size_t)(n ? n : 1));
    int ids[LNL_LM_COUNT], rc = -1;
    const int nc = by_metrics(ids);
    int measured[LNL_LM_COUNT] = {0}; /* per column: a run has a finite value at a block (ASKED metrics) */
    for (int pi = 0; pi < npresets; pi++) {
        for (int si = 0; si < nsetups; si++) {
            int k = 0;
            for (int i = 0; i < n; i++)
                if (have[i] && rs[i].nlayers && !strcmp(rs[i].run.preset, presets[pi]) && same_setup(&setups[si], &rs[i].run))
                    idx[k++] = i;
            if (!k) continue;
            int j = pi * maxk + counts[pi]++;
            layer_medians(rs, idx, k, &meds[j]);
            snprintf(names[j], sizeof names[j], "layers_%s_%s.dat", presets[pi], setups[si].key);
            snprintf(labels[j], sizeof labels[j], "%s", setups[si].label);
            for (int c = 0; c < nc; c++)
                for (int q = 0; q < k; q++)
                    for (int l = 1; l < rs[idx[q]].nlayers; l++)
                        measured[c] |= isfinite(lnl_study_layer_value(&rs[idx[q]].layers[l], ids[c]));
            if (write_layers(x, names[j], &meds[j], e)) goto done;
        }
    }
    /* every preset's figure of a kind shares its y-ranges, so placements compare by eye */
    double lo[LNL_LM_COUNT], hi[LNL_LM_COUNT];
    int maxcount = 0;
    for (int c = 0; c < nc; c++) lo[c] = hi[c] = NAN;
    for (int pi = 0; pi < npresets; pi++) {
        for (int c = 0; c < nc; c++) col_range(meds + pi * maxk, counts[pi], 2 + c, &lo[c], &hi[c]);
        if (counts[pi] > maxcount) maxcount = counts[pi];
    }
    const int keyrows = maxcount; /* one setting per legend row */
    /* per preset, one figure of the stream metrics, a panel each ... */
    int nstream = 0, done_keys = 0;
    for (int c = 0; c < nc; c++) nstream += lnl_layer_metrics[ids[c]].rows == LNL_ROWS_STREAM;
    char keys[256] = ""; /* "a, b and c" */
    for (int c = 0; c < nc; c++) {
        if (lnl_layer_metrics[ids[c]].rows != LNL_ROWS_STREAM) continue;
        size_t len = strlen(keys);
        snprintf(keys + len, sizeof keys - len, "%s%s", !done_keys ? "" : done_keys + 1 < nstream ? ", " : " and ",
                 lnl_layer_metrics[ids[c]].key);
        done_keys++;
    }
    for (int pi = 0; pi < npresets; pi++) {
        int j0 = pi * maxk, k = counts[pi];
        if (!k) continue;
        LnlBuf b = {0};
        lnl_buf_printf(&b, "set multiplot layout 1,%d title '%s: hidden states by layer (median over seeds; the same axes "
                           "for every preset)'\n", nstream, presets[pi]);
        int fit = !strcmp(presets[pi], "peri"), first = 1;
        for (int c = 0; c < nc; c++) {
            const LnlLayerMetric *mt = &lnl_layer_metrics[ids[c]];
            if (mt->rows != LNL_ROWS_STREAM) continue;
            char title[160];
            snprintf(title, sizeof title, "%s (%s)", mt->label, mt->key);
            /* the linear fit is Peri-LN's bound on the magnitude */
            panel(&b, title, mt->axis, 2 + c, names + j0, meds + j0, labels + j0, k, first, lo[c], hi[c], keyrows + fit,
                  fit && ids[c] == LNL_LM_HIDDEN_MEAN_ABS);
            first = 0;
        }
        lnl_buf_printf(&b, "unset multiplot\n");
        char base[160], title[400];
        lnl_study_hidden_figure(presets[pi], base, sizeof base);
        snprintf(title, sizeof title, "%s: %s by layer", presets[pi], keys);
        lnl_buf_append(&b, "", 1);
        int r = draw(x, new_plot(x, "hidden", base, title), b.data, nstream * 420, PANEL_H + 16 * (keyrows + fit), e);
        lnl_buf_free(&b);
        if (r) goto done;
    }
    /* ... and per block metric one figure, a panel per preset */
    for (int c = 0; c < nc; c++) {
        const LnlLayerMetric *mt = &lnl_layer_metrics[ids[c]];
        if (mt->rows != LNL_ROWS_BLOCK || ((mt->flags & LNL_LMF_ASKED) && !measured[c])) continue;
        int shown = 0;
        for (int pi = 0; pi < npresets; pi++) shown += counts[pi] > 0;
        if (!shown) break;
        int cols = shown < 3 ? shown : 3, rows = (shown + cols - 1) / cols;
        LnlBuf b = {0};
        lnl_buf_printf(&b, "set multiplot layout %d,%d title '%s by layer, layers 1..L (median over seeds)'\n", rows, cols,
                       mt->label);
        lnl_buf_printf(&b, "# the same y-range in every panel\n");
        for (int pi = 0; pi < npresets; pi++) {
            int j0 = pi * maxk, k = counts[pi];
            if (!k) continue;
            panel(&b, presets[pi], mt->axis, 2 + c, names + j0, meds + j0, labels + j0, k, 1, lo[c], hi[c], keyrows, 0);
        }
        lnl_buf_printf(&b, "unset multiplot\n");
        lnl_buf_append(&b, "", 1);
        char title[200];
        snprintf(title, sizeof title, "%s by layer", mt->name);
        title[0] = (char)toupper((unsigned char)title[0]);
        /* the report's sections (plots.h): "grad" for the gradient norm, else the key */
        const char *section = ids[c] == LNL_LM_GRAD_NORM ? "grad" : mt->key;
        int r = draw(x, new_plot(x, section, mt->key, title), b.data, cols * 420, rows * (PANEL_H + 16 * keyrows), e);
        lnl_buf_free(&b);
        if (r) goto done;
    }
    rc = 0;
done:
    for (int j = 0; j < maxk * npresets; j++) layer_medians_free(&meds[j]);
    free(meds);
    free(names);
    free(labels);
    free(counts);
    free(idx);
    return rc;
}

/* The layer x step heatmaps: one figure per metric with one panel per placement, at one setting
 * (options, dt, shape, lr) chosen by a rule: the setting with diag records for the most presets,
 * then the one where the most of those presets' runs trained, then the first in run order; each
 * preset's run there with the lowest seed. */
static int heatmap_figures(Ctx *x, const LnlStudyResult *rs, const int *have, int n, char presets[][32], int npresets,
                           LnlErr *e) {
    int best = -1, best_np = 0, best_nt = 0;
    int *pick = lnl_malloc(sizeof(int) * (size_t)(npresets ? npresets : 1));
    for (int i0 = 0; i0 < n; i0++) {
        if (!have[i0] || rs[i0].ndiag <= 0) continue;
        int np = 0, nt = 0;
        for (int pi = 0; pi < npresets; pi++) {
            int k = -1;
            for (int i = 0; i < n; i++) {
                const LnlStudyRun *u = &rs[i].run;
                if (!have[i] || rs[i].ndiag <= 0 || strcmp(u->preset, presets[pi]) || !lnl_study_same_setting(u, &rs[i0].run) ||
                    u->lr != rs[i0].run.lr)
                    continue;
                if (k < 0 || u->seed < rs[k].run.seed) k = i;
            }
            if (k < 0) continue;
            np++;
            nt += rs[k].trained == 1;
        }
        if (np > best_np || (np == best_np && nt > best_nt)) best = i0, best_np = np, best_nt = nt;
    }
    if (best < 0) {
        free(pick);
        return 0;
    }
    const LnlStudyRun *u0 = &rs[best].run;
    int np = 0;
    LnlBuf missing = {0};
    for (int pi = 0; pi < npresets; pi++) {
        int k = -1;
        for (int i = 0; i < n; i++) {
            const LnlStudyRun *u = &rs[i].run;
            if (!have[i] || rs[i].ndiag <= 0 || strcmp(u->preset, presets[pi]) || !lnl_study_same_setting(u, u0) || u->lr != u0->lr)
                continue;
            if (k < 0 || u->seed < rs[k].run.seed) k = i;
        }
        if (k >= 0) pick[np++] = k;
        else lnl_buf_printf(&missing, "%s%s", missing.len ? ", " : "", presets[pi]);
    }
    LnlLogRecords *logs = lnl_calloc((size_t)np, sizeof *logs);
    LnlHeatPanel *panels = lnl_calloc((size_t)np, sizeof *panels);
    char(*labels)[200] = lnl_malloc(sizeof *labels * (size_t)np);
    int rc = 0;
    for (int j = 0; j < np; j++) {
        const LnlStudyResult *r = &rs[pick[j]];
        char rel[300];
        snprintf(rel, sizeof rel, "runs/%s/log.jsonl", r->run.id);
        char *path = lnl_path_join(x->out, rel);
        if (lnl_log_read(&logs[j], path, LNL_LOG_SKIP_BAD, NULL)) memset(&logs[j], 0, sizeof logs[j]); /* run dir gone */
        free(path);
        char state[64] = "";
        if (r->diverged_at_step >= 0) snprintf(state, sizeof state, ", diverged at step %lld", r->diverged_at_step);
        else if (r->trained == 0) snprintf(state, sizeof state, ", did not train");
        snprintf(labels[j], sizeof labels[j], "%s (seed %lld%s)", r->run.preset, r->run.seed, state);
        panels[j] = (LnlHeatPanel){labels[j], &logs[j]};
    }
    char setting[300], tag[LNL_STUDY_ID_MAX];
    lnl_study_setting_tag(u0, tag, sizeof tag);
    if (u0->size[0])
        snprintf(setting, sizeof setting, "dt %g, %s (L %d), lr %g%s%s", u0->dt, u0->size, u0->depth, u0->lr,
                 tag[0] ? ", " : "", tag);
    else
        snprintf(setting, sizeof setting, "dt %g, L %d, lr %g%s%s", u0->dt, u0->depth, u0->lr, tag[0] ? ", " : "", tag);
    int heat[LNL_LM_COUNT];
    const int nheat = lnl_layer_metrics_select(LNL_LMF_HEATMAP, 0, heat);
    for (int k = 0; k < nheat && !rc; k++) {
        char base[160], title[400], tail[400];
        snprintf(base, sizeof base, "heatmap_%s", lnl_layer_metrics[heat[k]].key);
        snprintf(tail, sizeof tail, ": %s, each placement's lowest-seed run%s%s%s", setting,
                 missing.len ? " (not at this setting: " : "", missing.len ? missing.data : "", missing.len ? ")" : "");
        lnl_heatmap_title(heat[k], tail, title, sizeof title);
        rc = lnl_heatmap_draw(&x->pl, "heatmap", base, title, heat[k], panels, np, e);
    }
    for (int j = 0; j < np; j++) lnl_log_free(&logs[j]);
    free(logs);
    free(panels);
    free(labels);
    free(pick);
    lnl_buf_free(&missing);
    return rc;
}

int lnl_study_plots_make(const char *out, const char *gnuplot, const LnlStudyResult *rs, const int *have, int n,
                         LnlStudyPlots *pl, LnlErr *e) {
    Ctx x = {.out = out};
    char *dir = lnl_path_join(out, "plots");
    int rc = lnl_plotter_open(&x.pl, dir, gnuplot, "lnlab study", 1, pl, e);
    free(dir);
    Setup *setups = lnl_malloc(sizeof *setups * (size_t)(n ? n : 1));
    char(*presets)[32] = lnl_malloc(sizeof *presets * (size_t)(n ? n : 1));
    int nsetups = 0, npresets = 0;
    if (rc || !x.pl.usable) goto done;
    rc = -1;
    for (int i = 0; i < n; i++) {
        if (!have[i]) continue;
        setup_index(setups, &nsetups, &rs[i].run);
        int found = 0;
        for (int p = 0; p < npresets && !found; p++) found = !strcmp(presets[p], rs[i].run.preset);
        if (!found) snprintf(presets[npresets++], 32, "%s", rs[i].run.preset);
    }
    if (lr_figures(&x, rs, have, n, presets, npresets, e)) goto done;
    if (loss_figures(&x, rs, have, n, setups, nsetups, presets, npresets, e)) goto done;
    if (layer_figures(&x, rs, have, n, setups, nsetups, presets, npresets, e)) goto done;
    if (heatmap_figures(&x, rs, have, n, presets, npresets, e)) goto done;
    rc = 0;
done:
    lnl_plotter_close(&x.pl);
    free(setups);
    free(presets);
    return rc;
}

void lnl_study_plots_free(LnlStudyPlots *pl) { lnl_figures_free(pl); }
