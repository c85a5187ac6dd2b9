/* lnlab screen: the stability screen of a placement before training it (src/diag/screen.h,
 * docs/SCREEN.md): the spec's verdict and the measured forward and backward figures behind it, at
 * dt 1 and the chosen dt, for one placement, a trained model, or several presets side by side;
 * with --study, the study's measured counterpart of each verdict. It trains nothing and writes
 * no file. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../diag/screen.h"
#include "../study/results.h"
#include "model_flags.h"

#define SCREEN_DEFAULT_BATCH 2
#define SCREEN_DEFAULT_SEQ 32
#define SCREEN_DEFAULT_ITERS 10
#define SCREEN_MAX_PRESETS 32

static const double weight_scales[LNL_SCREEN_NS] = LNL_SCREEN_WEIGHT_SCALES;
static const double input_scales[LNL_SCREEN_NA] = LNL_SCREEN_INPUT_SCALES;

/* ---- the study's counterparts (--study DIR) ---- */

/* The study's figures for one placement at one dt: its runs of that preset and dt, at the
 * screen's depth when the study has any there, else at every depth. */
typedef struct {
    int nruns, depth_matched;
    int ntrained, nknown;            /* runs that trained, runs whose outcome is known */
    int nprobed, nexp;               /* runs with a final probe; of them, exponential growth fits better */
    double lr_lo, lr_hi;             /* the learning rates at the ends of the sweep (NAN: one lr) */
    double growth_ratio;             /* median last_hidden at lr_hi over that at lr_lo */
    double grad_ratio;               /* median final grad_ratio */
    double lr_sens;                  /* median over seeds of the LR sensitivity (docs/STUDY.md) */
    double lr_sens_all;              /* the same, median over every preset of the study at this dt and depth */
} StudySide;

typedef struct {
    int n;
    LnlStudyResult *rs;
} Study;

static void study_load(Study *s, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/results.jsonl", dir);
    FILE *f = fopen(path, "rb");
    if (!f) lnl_die(1, "--study: %s: cannot open (not a study directory?)", path);
    fclose(f);
    LnlStudyResults res;
    LnlErr e;
    if (lnl_study_results_load(&res, path, &e)) lnl_die(1, "--study: %s", e.msg);
    s->n = res.n;
    s->rs = lnl_calloc((size_t)(res.n ? res.n : 1), sizeof *s->rs);
    for (int i = 0; i < res.n; i++) {
        char what[4200];
        snprintf(what, sizeof what, "%s line %d", path, i + 1);
        if (lnl_study_result_from_json(&s->rs[i], res.lines[i], what, &e)) lnl_die(1, "--study: %s", e.msg);
    }
    lnl_study_results_free(&res);
}

static void study_free(Study *s) {
    for (int i = 0; i < s->n; i++) lnl_study_result_free(&s->rs[i]);
    free(s->rs);
}

static int same_dt(double a, double b) { return fabs(a - b) <= 1e-6 * fmax(1.0, fabs(b)); }

/* Runs of one seed's sweep: the same options (variant) and precision. */
static int same_kind(const LnlStudyRun *a, const LnlStudyRun *b) {
    return !strcmp(a->variant, b->variant) && !strcmp(lnl_study_run_precision(a), lnl_study_run_precision(b));
}

/* LR sensitivity of one preset at (dt, depth) per seed (lnl_study_lr_sensitivity over the seed's
 * runs, one per learning rate), median over seeds; NAN without a seed at 2+ lrs. */
static double lr_sensitivity(const Study *st, const char *preset, double dt, int depth) {
    double *v = lnl_malloc(sizeof(double) * (size_t)(st->n + 1)), *loss = lnl_malloc(sizeof(double) * (size_t)(st->n + 1));
    int nv = 0;
    for (int i = 0; i < st->n; i++) {
        const LnlStudyResult *a = &st->rs[i];
        if (strcmp(a->run.preset, preset) || !same_dt(a->run.dt, dt) || a->run.depth != depth) continue;
        /* the seed's first record counts it once */
        int first = 1;
        for (int j = 0; j < i && first; j++) {
            const LnlStudyResult *b = &st->rs[j];
            first = !(!strcmp(b->run.preset, preset) && same_dt(b->run.dt, dt) && b->run.depth == depth &&
                      b->run.seed == a->run.seed && same_kind(&a->run, &b->run));
        }
        if (!first) continue;
        int k = 0;
        for (int j = 0; j < st->n; j++) {
            const LnlStudyResult *b = &st->rs[j];
            if (!strcmp(b->run.preset, preset) && same_dt(b->run.dt, dt) && b->run.depth == depth &&
                b->run.seed == a->run.seed && same_kind(&a->run, &b->run))
                loss[k++] = lnl_study_sweep_loss(b);
        }
        double x = lnl_study_lr_sensitivity(loss, k);
        if (isfinite(x)) v[nv++] = x;
    }
    double med = lnl_study_median(v, nv);
    free(v);
    free(loss);
    return med;
}

static void study_side(const Study *st, const char *preset, double dt, int L, StudySide *o) {
    memset(o, 0, sizeof *o);
    o->lr_lo = o->lr_hi = o->growth_ratio = o->grad_ratio = o->lr_sens = o->lr_sens_all = NAN;
    int any_at_L = 0;
    for (int i = 0; i < st->n; i++)
        any_at_L |= !strcmp(st->rs[i].run.preset, preset) && same_dt(st->rs[i].run.dt, dt) && st->rs[i].run.depth == L;
    o->depth_matched = any_at_L;
    double *gr = lnl_malloc(sizeof(double) * (size_t)(st->n + 1));
    int ngr = 0, depth = -1;
    for (int i = 0; i < st->n; i++) {
        const LnlStudyResult *r = &st->rs[i];
        if (strcmp(r->run.preset, preset) || !same_dt(r->run.dt, dt) || (any_at_L && r->run.depth != L)) continue;
        o->nruns++;
        if (depth < 0) depth = r->run.depth;
        if (r->trained >= 0) o->nknown++, o->ntrained += r->trained == 1;
        if (r->nlayers > 0) {
            o->nprobed++;
            o->nexp += r->growth.magnitude.better_exp != 0;
            if (isfinite(r->grad_ratio)) gr[ngr++] = r->grad_ratio;
            if (!(o->lr_lo <= r->run.lr)) o->lr_lo = r->run.lr;
            if (!(o->lr_hi >= r->run.lr)) o->lr_hi = r->run.lr;
        }
    }
    o->grad_ratio = lnl_study_median(gr, ngr);
    /* growth under the sweep: last_hidden at the largest lr over the smallest (medians over runs) */
    if (o->nprobed && o->lr_hi > o->lr_lo) {
        double *lo = lnl_malloc(sizeof(double) * (size_t)st->n), *hi = lnl_malloc(sizeof(double) * (size_t)st->n);
        int nlo = 0, nhi = 0;
        for (int i = 0; i < st->n; i++) {
            const LnlStudyResult *r = &st->rs[i];
            if (strcmp(r->run.preset, preset) || !same_dt(r->run.dt, dt) || (any_at_L && r->run.depth != L) ||
                r->nlayers == 0)
                continue;
            if (r->run.lr == o->lr_lo) lo[nlo++] = r->last_hidden;
            if (r->run.lr == o->lr_hi) hi[nhi++] = r->last_hidden;
        }
        double a = lnl_study_median(hi, nhi), b = lnl_study_median(lo, nlo);
        o->growth_ratio = b > 0 ? a / b : NAN;
        free(lo);
        free(hi);
    }
    free(gr);
    if (depth >= 0) {
        o->lr_sens = lr_sensitivity(st, preset, dt, depth);
        /* every preset of the study at this dt and depth, for "more or less sensitive than the others" */
        double *all = lnl_malloc(sizeof(double) * (size_t)(st->n + 1));
        int na = 0;
        for (int i = 0; i < st->n; i++) {
            const LnlStudyResult *r = &st->rs[i];
            int seen = 0;
            for (int j = 0; j < i && !seen; j++) seen = !strcmp(st->rs[j].run.preset, r->run.preset);
            if (seen || !same_dt(r->run.dt, dt) || r->run.depth != depth) continue;
            double x = lr_sensitivity(st, r->run.preset, dt, depth);
            if (isfinite(x)) all[na++] = x;
        }
        o->lr_sens_all = lnl_study_median(all, na);
        free(all);
    }
}

/* ---- one placement's screen ---- */

typedef struct {
    char name[64];
    LnlConfig cfg;
    LnlScreenSpec spec;
    LnlScreenMeasured meas;
    int have_study;
    StudySide study[2]; /* per dt column */
} Screen;

static int predicted_stable(const Screen *s, const LnlScreenRun *r) {
    return (s->spec.bound == LNL_BOUND_BOUNDED || s->spec.bound == LNL_BOUND_LINEAR) && r->fwd_verdict <= 0 &&
           !r->vanishing;
}

/* The four agreements of --study, each -1 when the study cannot tell. */
typedef struct {
    int growth, lr_sens, grad, trained;
} Agree;

static Agree agreements(const Screen *s, const LnlScreenRun *r, const StudySide *o) {
    Agree a = {-1, -1, -1, -1};
    if (isfinite(o->growth_ratio)) a.growth = (r->fwd_verdict > 0) == (o->growth_ratio > LNL_SCREEN_FWD_GROW);
    if (isfinite(o->lr_sens) && isfinite(o->lr_sens_all))
        a.lr_sens = (r->sens_s_verdict > 0) == (o->lr_sens > o->lr_sens_all);
    if (isfinite(o->grad_ratio)) a.grad = r->vanishing == (o->grad_ratio < LNL_SCREEN_VANISH);
    if (o->nknown) a.trained = predicted_stable(s, r) == (o->ntrained == o->nknown);
    return a;
}

static const char *agree_name(int a) { return a < 0 ? "cannot tell" : a ? "agrees" : "disagrees"; }

static cJSON *num_or_null(double x) { return isfinite(x) ? cJSON_CreateNumber(x) : cJSON_CreateNull(); }

static cJSON *screen_json(const Screen *s, const LnlScreenOpts *o) {
    const int L = s->cfg.n_layer;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "placement", s->name);
    cJSON_AddStringToObject(j, "preset", s->cfg.preset);
    cJSON_AddStringToObject(j, "norm", lnl_norm_name(s->cfg.norm));
    cJSON_AddNumberToObject(j, "layers", L);
    cJSON_AddNumberToObject(j, "dim", s->cfg.n_embd);
    cJSON_AddNumberToObject(j, "heads", s->cfg.n_head);
    cJSON_AddNumberToObject(j, "dt", s->cfg.dt);
    cJSON_AddNumberToObject(j, "batch", o->B);
    cJSON_AddNumberToObject(j, "seq", o->T);
    cJSON_AddNumberToObject(j, "sensitivity_iters", o->sens_iters);
    cJSON *sp = cJSON_AddObjectToObject(j, "spec");
    cJSON *cnt = cJSON_AddObjectToObject(sp, "updates");
    for (int k = 0; k < 3; k++) cJSON_AddNumberToObject(cnt, lnl_update_kind_name((LnlUpdateKind)k), s->spec.count[k]);
    cJSON *subs = cJSON_AddArrayToObject(sp, "sublayers");
    for (int k = 0; k < s->spec.nsub; k++) cJSON_AddItemToArray(subs, cJSON_CreateString(lnl_update_kind_name((LnlUpdateKind)s->spec.kind[k])));
    cJSON_AddStringToObject(sp, "stream", lnl_bound_kind_name(s->spec.bound));
    cJSON_AddStringToObject(sp, "why", s->spec.why);
    cJSON_AddStringToObject(sp, "dt_effect", s->spec.dt_effect);
    cJSON *runs = cJSON_AddArrayToObject(j, "runs");
    for (int d = 0; d < s->meas.ndt; d++) {
        const LnlScreenRun *r = &s->meas.run[d];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "dt", r->dt);
        cJSON *fw = cJSON_AddArrayToObject(x, "forward");
        for (int si = 0; si < LNL_SCREEN_NS; si++) {
            cJSON *f = cJSON_CreateObject();
            cJSON_AddNumberToObject(f, "s", weight_scales[si]);
            cJSON_AddNumberToObject(f, "last_hidden_mean_abs", r->mean_abs[si][L]);
            cJSON *ma = cJSON_AddArrayToObject(f, "hidden_mean_abs"), *bd = cJSON_AddArrayToObject(f, "bound");
            for (int l = 0; l <= L; l++) {
                cJSON_AddItemToArray(ma, cJSON_CreateNumber(r->mean_abs[si][l]));
                cJSON_AddItemToArray(bd, num_or_null(r->bound[si][l]));
            }
            cJSON_AddBoolToObject(f, "within_bound", r->within_bound[si]);
            const LnlGrowthFit *g = &r->growth[si].magnitude;
            cJSON_AddStringToObject(f, "growth_better", lnl_study_growth_better(g, 0));
            cJSON_AddItemToObject(f, "growth_slope", num_or_null(g->linear.ok ? g->linear.b : NAN));
            cJSON_AddItemToObject(f, "growth_rate", num_or_null(g->exponential.ok ? g->exponential.b : NAN));
            cJSON_AddItemToArray(fw, f);
        }
        cJSON_AddItemToObject(x, "forward_ratio", num_or_null(r->fwd_ratio));
        cJSON_AddStringToObject(x, "forward_verdict", lnl_screen_trend_name(r->fwd_verdict));
        cJSON *bl = cJSON_AddArrayToObject(x, "sensitivity");
        for (int i = 0; i < r->nblocks; i++) {
            cJSON *b = cJSON_CreateObject();
            cJSON_AddNumberToObject(b, "block", r->block[i]);
            cJSON *ba = cJSON_AddArrayToObject(b, "by_input_scale"), *bs = cJSON_AddArrayToObject(b, "by_weight_scale");
            for (int ai = 0; ai < LNL_SCREEN_NA; ai++) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddNumberToObject(e, "a", input_scales[ai]);
                cJSON_AddItemToObject(e, "sigma", num_or_null(r->sigma_a[i][ai]));
                cJSON_AddItemToArray(ba, e);
            }
            for (int si = 0; si < LNL_SCREEN_NS; si++) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddNumberToObject(e, "s", weight_scales[si]);
                cJSON_AddItemToObject(e, "sigma", num_or_null(r->sigma_s[i][si]));
                cJSON_AddItemToArray(bs, e);
            }
            cJSON_AddItemToArray(bl, b);
        }
        cJSON_AddItemToObject(x, "sensitivity_input_ratio", num_or_null(r->sens_a_ratio));
        cJSON_AddStringToObject(x, "sensitivity_input_verdict", lnl_screen_trend_name(r->sens_a_verdict));
        cJSON_AddItemToObject(x, "sensitivity_weight_ratio", num_or_null(r->sens_s_ratio));
        cJSON_AddStringToObject(x, "sensitivity_weight_verdict", lnl_screen_trend_name(r->sens_s_verdict));
        cJSON_AddItemToObject(x, "loss", num_or_null(r->loss));
        cJSON_AddItemToObject(x, "grad_ratio", num_or_null(r->grad_ratio));
        cJSON_AddItemToObject(x, "dx_ratio", num_or_null(r->dx_ratio));
        cJSON *gs = cJSON_AddArrayToObject(x, "grad_ratio_by_weight_scale");
        for (int si = 0; si < LNL_SCREEN_NS; si++) cJSON_AddItemToArray(gs, num_or_null(r->grad_ratio_s[si]));
        cJSON_AddBoolToObject(x, "vanishing", r->vanishing);
        if (s->have_study) {
            const StudySide *st = &s->study[d];
            Agree a = agreements(s, r, st);
            cJSON *y = cJSON_AddObjectToObject(x, "study");
            cJSON_AddNumberToObject(y, "runs", st->nruns);
            cJSON_AddBoolToObject(y, "depth_matched", st->depth_matched);
            cJSON_AddNumberToObject(y, "trained", st->ntrained);
            cJSON_AddNumberToObject(y, "outcome_known", st->nknown);
            cJSON_AddNumberToObject(y, "exponential_growth_runs", st->nexp);
            cJSON_AddNumberToObject(y, "probed_runs", st->nprobed);
            cJSON_AddItemToObject(y, "growth_ratio", num_or_null(st->growth_ratio));
            cJSON_AddItemToObject(y, "lr_low", num_or_null(st->lr_lo));
            cJSON_AddItemToObject(y, "lr_high", num_or_null(st->lr_hi));
            cJSON_AddItemToObject(y, "grad_ratio", num_or_null(st->grad_ratio));
            cJSON_AddItemToObject(y, "lr_sensitivity", num_or_null(st->lr_sens));
            cJSON_AddItemToObject(y, "lr_sensitivity_all_presets", num_or_null(st->lr_sens_all));
            cJSON_AddStringToObject(y, "growth_agrees", agree_name(a.growth));
            cJSON_AddStringToObject(y, "lr_sensitivity_agrees", agree_name(a.lr_sens));
            cJSON_AddStringToObject(y, "grad_agrees", agree_name(a.grad));
            cJSON_AddStringToObject(y, "trained_agrees", agree_name(a.trained));
        }
        cJSON_AddItemToArray(runs, x);
    }
    return j;
}

static void print_json(cJSON *o) {
    char *t = cJSON_PrintUnformatted(o);
    if (printf("%s\n", t) < 0 || fflush(stdout) != 0) lnl_die(1, "screen: error writing stdout");
    free(t);
}

static const char *fmt(char *b, size_t n, double x) {
    if (isfinite(x)) snprintf(b, n, "%.4g", x);
    else snprintf(b, n, "%s", isnan(x) ? "n/a" : "inf");
    return b;
}
#define F(x) fmt((char[32]){0}, 32, (x))

static void print_screen(const Screen *s, const LnlScreenOpts *o) {
    const int L = s->cfg.n_layer, nd = s->meas.ndt;
    const LnlScreenRun *R = s->meas.run;
    printf("screen %s: preset %s  norm %s  L %d  C %d  H %d  dt %g  batch %d x %d  power iterations %d\n", s->name,
           s->cfg.preset, lnl_norm_name(s->cfg.norm), L, s->cfg.n_embd, s->cfg.n_head, s->cfg.dt, o->B, o->T, o->sens_iters);
    printf("\n1. forward, from the spec (no computation)\n");
    printf("   updates: %d normalized, %d renormalized (post-norm), %d unnormalized, of %d sub-layers\n",
           s->spec.count[0], s->spec.count[1], s->spec.count[2], s->spec.nsub);
    printf("   stream:  %s -- %s\n", lnl_bound_kind_name(s->spec.bound), s->spec.why);
    printf("   dt:      %s\n", s->spec.dt_effect);
    printf("\n2. forward, measured: block weight matrices times s; last layer's hidden_mean_abs, growth over layers\n");
    printf("   %4s", "s");
    for (int d = 0; d < nd; d++) {
        char h[32];
        snprintf(h, sizeof h, "dt %g", R[d].dt);
        printf("  %12s %9s %11s %9s", h, "bound", "better fit", "within");
    }
    printf("\n");
    for (int si = 0; si < LNL_SCREEN_NS; si++) {
        printf("   %4g", weight_scales[si]);
        for (int d = 0; d < nd; d++)
            printf("  %12s %9s %11s %9s", F(R[d].mean_abs[si][L]), F(R[d].bound[si][L]),
                   lnl_study_growth_better(&R[d].growth[si].magnitude, 0), R[d].within_bound[si] ? "yes" : "NO");
        printf("\n");
    }
    for (int d = 0; d < nd; d++)
        printf("   dt %g: x16 weights -> x%s last layer: %s with the weights\n", R[d].dt, F(R[d].fwd_ratio),
               lnl_screen_trend_name(R[d].fwd_verdict));
    printf("\n3. backward, measured: sigma = spectral norm of block l's Jacobian (blocks");
    for (int i = 0; i < R[0].nblocks; i++) printf(" %d", R[0].block[i]);
    printf(")\n");
    for (int d = 0; d < nd; d++) {
        for (int i = 0; i < R[d].nblocks; i++) {
            printf("   dt %g block %d  input x a:", R[d].dt, R[d].block[i]);
            for (int ai = 0; ai < LNL_SCREEN_NA; ai++) printf("  a=%g %s", input_scales[ai], F(R[d].sigma_a[i][ai]));
            printf("\n   %*s weights x s:", (int)snprintf(NULL, 0, "dt %g block %d", R[d].dt, R[d].block[i]), "");
            for (int si = 0; si < LNL_SCREEN_NS; si++) printf("  s=%g %s", weight_scales[si], F(R[d].sigma_s[i][si]));
            printf("\n");
        }
        printf("   dt %g: sensitivity %s with the activations (x%s at a=64), %s with the weights (x%s at s=16)\n",
               R[d].dt, lnl_screen_trend_name(R[d].sens_a_verdict), F(R[d].sens_a_ratio),
               lnl_screen_trend_name(R[d].sens_s_verdict), F(R[d].sens_s_ratio));
        printf("   dt %g: gradient ratio block 1 / block %d at init %s (stream gradients %s): %s; at weights x s:", R[d].dt,
               L, F(R[d].grad_ratio), F(R[d].dx_ratio), R[d].vanishing ? "vanishing" : "not vanishing");
        for (int si = 1; si < LNL_SCREEN_NS; si++) printf(" s=%g %s", weight_scales[si], F(R[d].grad_ratio_s[si]));
        printf("\n");
    }
    printf("\n4. dt: ");
    if (nd == 1) printf("the chosen dt is 1; give --dt to see another beside it\n");
    else
        printf("last layer at s=16: %s at dt %g, %s at dt 1 (%s); bound at s=1: %s against %s\n",
               F(R[1].mean_abs[LNL_SCREEN_NS - 1][L]), R[1].dt, F(R[0].mean_abs[LNL_SCREEN_NS - 1][L]),
               R[1].mean_abs[LNL_SCREEN_NS - 1][L] <= R[0].mean_abs[LNL_SCREEN_NS - 1][L] ? "tighter" : "not tighter",
               F(R[1].bound[0][L]), F(R[0].bound[0][L]));
    if (s->have_study) {
        printf("\n5. the study's counterparts (placement %s)\n", s->cfg.preset);
        for (int d = 0; d < nd; d++) {
            const StudySide *st = &s->study[d];
            Agree a = agreements(s, &R[d], st);
            printf("   dt %g: %d runs%s\n", R[d].dt, st->nruns,
                   st->nruns && !st->depth_matched ? " (none at this depth: every depth)" : "");
            if (!st->nruns) continue;
            printf("     growth: last layer x%s from lr %s to %s; exponential fit in %d of %d probed runs -- screen "
                   "%s: %s\n",
                   F(st->growth_ratio), F(st->lr_lo), F(st->lr_hi), st->nexp, st->nprobed,
                   lnl_screen_trend_name(R[d].fwd_verdict), agree_name(a.growth));
            printf("     LR sensitivity %s (all presets' median %s) -- screen sensitivity %s with the weights: %s\n",
                   F(st->lr_sens), F(st->lr_sens_all), lnl_screen_trend_name(R[d].sens_s_verdict),
                   agree_name(a.lr_sens));
            printf("     gradient ratio after training %s -- screen %s: %s\n", F(st->grad_ratio),
                   R[d].vanishing ? "vanishing" : "not vanishing", agree_name(a.grad));
            printf("     trained %d of %d -- screen %s: %s\n", st->ntrained, st->nknown,
                   predicted_stable(s, &R[d]) ? "stable" : "at risk", agree_name(a.trained));
        }
    }
}

static void print_compare(Screen *ss, int n) {
    printf("%-12s %-5s %-26s %-11s %9s %-9s %9s %-9s %9s %-9s %9s %-13s\n", "placement", "dt", "updates n/r/u",
           "stream", "fwd x16", "", "sens(a)", "", "sens(s)", "", "grad 1/L", "");
    for (int i = 0; i < n; i++) {
        const Screen *s = &ss[i];
        for (int d = 0; d < s->meas.ndt; d++) {
            const LnlScreenRun *r = &s->meas.run[d];
            char upd[32];
            snprintf(upd, sizeof upd, "%d/%d/%d", s->spec.count[0], s->spec.count[1], s->spec.count[2]);
            printf("%-12s %-5g %-26s %-11s %9s %-9s %9s %-9s %9s %-9s %9s %-13s\n", d ? "" : s->name, r->dt, upd,
                   lnl_bound_kind_name(s->spec.bound), F(r->fwd_ratio), lnl_screen_trend_name(r->fwd_verdict),
                   F(r->sens_a_ratio), lnl_screen_trend_name(r->sens_a_verdict), F(r->sens_s_ratio),
                   lnl_screen_trend_name(r->sens_s_verdict), F(r->grad_ratio),
                   r->vanishing ? "vanishing" : "not vanishing");
        }
    }
    printf("updates n/r/u: normalized / renormalized / unnormalized sub-layers; fwd x16: last layer's hidden_mean_abs "
           "at weights x16 over x1; sens(a), sens(s): largest block sensitivity at input x64, weights x16, over x1; "
           "grad 1/L: block 1's over block L's gradient norm at init\n");
}

int cmd_screen(int argc, char **argv) {
    LnlModelFlags mf;
    const char *model = NULL, *presets = NULL, *study = NULL;
    long long batch = SCREEN_DEFAULT_BATCH, iters = SCREEN_DEFAULT_ITERS, sens_seed = 1, seed = 1;
    int json = 0;
    enum { NOWN = 8, NFLAGS = NOWN + LNL_MODEL_NFLAGS };
    LnlFlag flags[NFLAGS] = {
        {"--model", LNL_FLAG_STR, &model, "screen this model file as it is (.safetensors or llm.c .bin)", 1, 0, NULL, 0},
        {"--presets", LNL_FLAG_STR, &presets, "comma-separated presets screened side by side (one table)", 1, 0, NULL, 0},
        {"--study", LNL_FLAG_STR, &study, "a study directory: set its measured counterparts beside each verdict", 1, 0,
         NULL, 0},
        {"--json", LNL_FLAG_BOOL, &json, "print one JSON object instead of a table", 1, 0, NULL, 0},
        {"--batch", LNL_FLAG_INT, &batch, "rows B of the screen's batch (--seq tokens each)", 1, 4096, NULL, 0},
        {"--sensitivity-iters", LNL_FLAG_INT, &iters, "power iterations per block sensitivity", 1, 100000, NULL, 0},
        {"--sensitivity-seed", LNL_FLAG_INT, &sens_seed, "seed of the power iteration's random start", 0, 1LL << 62,
         NULL, 0},
        {"--seed", LNL_FLAG_INT, &seed, "seed of a fresh model's init (not with --model)", 0, 1LL << 62, NULL, 0},
    };
    lnl_model_flags_init(&mf, flags + NOWN);
    mf.seq = SCREEN_DEFAULT_SEQ;
    LnlFlag *fseq = lnl_flags_find(flags + NOWN, LNL_MODEL_NFLAGS, "--seq");
    fseq->help = "tokens per row of the screen's batch (and a fresh model's n_positions; with --model, at most the "
                 "file's, default min(32, its n_positions))";
    int npos;
    lnl_flags_parse_or_exit("screen",
                            "[--preset P | --presets P1,P2,... | --model M] [--dt D] [--spec ...] [model flags]\n"
                            "       [--study DIR] [--json]",
                            flags, NFLAGS, argc, argv, NULL, 0, &npos);
    const LnlFlag *fpreset = lnl_flags_find(flags + NOWN, LNL_MODEL_NFLAGS, "--preset");
    if (model && presets) lnl_die(2, "screen: --presets and --model do not go together (screen one model at a time)");
    if (presets && fpreset->seen) lnl_die(2, "screen: give --preset or --presets, not both");
    if (model && lnl_flags_find(flags, NOWN, "--seed")->seen) lnl_die(2, "--seed: only for a fresh model, not with --model");

    const char *names[SCREEN_MAX_PRESETS];
    char *plist = NULL;
    int n = 1;
    names[0] = model ? model : mf.preset;
    if (presets) {
        plist = lnl_malloc(strlen(presets) + 1);
        memcpy(plist, presets, strlen(presets) + 1);
        n = 0;
        char *save = NULL;
        for (char *t = strtok_r(plist, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (n == SCREEN_MAX_PRESETS) lnl_die(2, "--presets: more than %d presets", SCREEN_MAX_PRESETS);
            if (!lnl_in_choices(t, LNL_PRESETS)) lnl_die(2, "--presets: unknown preset '%s' (one of %s)", t, LNL_PRESETS);
            names[n++] = t;
        }
        if (!n) lnl_die(2, "--presets: no preset given");
    }
    Study st = {0, NULL};
    if (study) study_load(&st, study);

    LnlScreenOpts o = {(int)batch, (int)mf.seq, (int)iters, (uint64_t)sens_seed};
    Screen *ss = lnl_calloc((size_t)n, sizeof *ss);
    cJSON *all = presets && json ? cJSON_CreateArray() : NULL;
    for (int i = 0; i < n; i++) {
        Screen *s = &ss[i];
        LnlErr e;
        LnlModel m;
        if (model) {
            lnl_model_flags_load_or_exit(&m, model, NULL, &mf, flags + NOWN);
            if (!fseq->seen) o.T = m.cfg.n_positions < SCREEN_DEFAULT_SEQ ? m.cfg.n_positions : SCREEN_DEFAULT_SEQ;
            else if (o.T > m.cfg.n_positions)
                lnl_die(2, "--seq: %d is longer than the model's n_positions %d", o.T, m.cfg.n_positions);
        } else {
            mf.preset = names[i];
            if (lnl_model_flags_config(&mf, flags + NOWN, &s->cfg, &e)) lnl_die(2, "%s", e.msg);
            if (lnl_model_create(&m, &s->cfg, &e)) lnl_die(2, "%s", e.msg);
            lnl_model_init_weights(&m, (uint64_t)seed);
        }
        if ((long long)o.B * o.T > (1LL << 26)) lnl_die(2, "--batch/--seq: B*T = %lld tokens is too many", (long long)o.B * o.T);
        s->cfg = m.cfg;
        snprintf(s->name, sizeof s->name, "%s", model ? m.cfg.preset : names[i]);
        if (!model && lnl_model_alloc_acts(&m, o.B, o.T, &e)) lnl_die(2, "%s", e.msg);
        if (!model && m.cfg.admin_profile) {
            /* as training would before its first step, on the screen's batch */
            int32_t *in = lnl_malloc(sizeof(int32_t) * (size_t)o.B * o.T);
            for (long k = 0; k < (long)o.B * o.T; k++) in[k] = lnl_screen_token(k, m.cfg.vocab_size);
            lnl_model_admin_profile(&m, in, o.B, o.T);
            free(in);
        }
        lnl_screen_spec(&m.cfg, &s->spec);
        if (lnl_screen_measure(&m, &o, &s->meas, &e)) lnl_die(2, "%s", e.msg);
        if (study) {
            s->have_study = 1;
            for (int d = 0; d < s->meas.ndt; d++) study_side(&st, m.cfg.preset, s->meas.run[d].dt, m.cfg.n_layer, &s->study[d]);
        }
        lnl_model_free(&m);
        if (json) {
            cJSON *j = screen_json(s, &o);
            if (all) cJSON_AddItemToArray(all, j);
            else {
                print_json(j);
                cJSON_Delete(j);
            }
        } else if (!presets) {
            print_screen(s, &o);
        }
    }
    if (all) {
        cJSON *top = cJSON_CreateObject();
        cJSON_AddItemToObject(top, "screens", all);
        print_json(top);
        cJSON_Delete(top);
    } else if (presets && !json) {
        print_compare(ss, n);
    }
    if (!json && fflush(stdout) != 0) lnl_die(1, "screen: error writing stdout");
    for (int i = 0; i < n; i++) {
        lnl_screen_spec_free(&ss[i].spec);
        lnl_screen_measured_free(&ss[i].meas);
    }
    free(ss);
    free(plist);
    study_free(&st);
    return 0;
}
