/* The findings (findings.h): a table of claims, each evaluated by its rule over the records. */
#include "findings.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../train/train.h"

LnlNum lnl_num(double v) {
    LnlNum n;
    if (!isfinite(v)) snprintf(n.s, sizeof n.s, "n/a");
    else snprintf(n.s, sizeof n.s, "%.4g", v);
    return n;
}
#define NUM(x) (lnl_num(x).s)

/* ---- the records, by setting ---- */

typedef struct {
    const LnlStudyResult *rs;
    const int *have;
    int n;
} Recs;

/* What two presets are compared under: the same options (variant), dt, shape and precision, as
 * lnl_study_same_setting decides (runs of two precisions are two settings, never seeds of one).
 * A setting is one of its runs standing for it: its preset, lr and seed mean nothing here. */
typedef LnlStudyRun Setting;

static int in_setting(const LnlStudyResult *r, const Setting *s) { return lnl_study_same_setting(&r->run, s); }

static int is(const Recs *R, int i, const char *preset, const Setting *s) {
    return R->have[i] && !strcmp(R->rs[i].run.preset, preset) && in_setting(&R->rs[i], s);
}

static int cmp_setting(const void *a, const void *b) {
    const Setting *x = a, *y = b;
    int c = strcmp(x->variant, y->variant);
    if (c) return c;
    const char *xp = lnl_study_run_precision(x), *yp = lnl_study_run_precision(y);
    int xf = !strcmp(xp, LNL_STUDY_FP32), yf = !strcmp(yp, LNL_STUDY_FP32);
    if (xf != yf) return yf - xf; /* fp32 first */
    if ((c = strcmp(xp, yp))) return c;
    if (x->dt != y->dt) return x->dt > y->dt ? -1 : 1; /* dt 1 first */
    return x->depth - y->depth;
}

/* The settings in which every preset of ps (np of them) has runs, in a stable order. */
static int settings_with(const Recs *R, const char *const *ps, int np, Setting *out) {
    int n = 0;
    for (int i = 0; i < R->n; i++) {
        if (!R->have[i]) continue;
        const LnlStudyRun *u = &R->rs[i].run;
        int seen = 0;
        for (int k = 0; k < n && !seen; k++) seen = lnl_study_same_setting(&out[k], u);
        if (seen) continue;
        int all = 1;
        for (int p = 0; p < np && all; p++) {
            int found = 0;
            for (int j = 0; j < R->n && !found; j++) found = is(R, j, ps[p], u);
            all = found;
        }
        if (all) out[n++] = *u;
    }
    qsort(out, (size_t)n, sizeof *out, cmp_setting);
    return n;
}

/* The learning rates at which preset p has runs in setting s, ascending. */
static int lrs_of(const Recs *R, const char *p, const Setting *s, double *out) {
    int n = 0;
    for (int i = 0; i < R->n; i++) {
        if (!is(R, i, p, s)) continue;
        int seen = 0;
        for (int k = 0; k < n && !seen; k++) seen = out[k] == R->rs[i].run.lr;
        if (!seen) out[n++] = R->rs[i].run.lr;
    }
    qsort(out, (size_t)n, sizeof *out, lnl_cmp_double);
    return n;
}

/* The learning rates both a and b have in s. */
static int common_lrs(const Recs *R, const char *a, const char *b, const Setting *s, double *out) {
    double *x = lnl_malloc(sizeof(double) * (size_t)(R->n + 1)), *y = lnl_malloc(sizeof(double) * (size_t)(R->n + 1));
    int nx = lrs_of(R, a, s, x), ny = lrs_of(R, b, s, y), n = 0;
    for (int i = 0; i < nx; i++)
        for (int j = 0; j < ny; j++)
            if (x[i] == y[j]) out[n++] = x[i];
    free(x);
    free(y);
    return n;
}

/* The run of preset p in s at lr with seed, or -1. */
static int find_run(const Recs *R, const char *p, const Setting *s, double lr, long long seed) {
    for (int i = 0; i < R->n; i++)
        if (is(R, i, p, s) && R->rs[i].run.lr == lr && R->rs[i].run.seed == seed) return i;
    return -1;
}

static int trained(const LnlStudyResult *r) { return r->trained == 1; }

/* ---- spreads over seeds ---- */

/* Median, range and count of the finite values of v (reordered). */
typedef struct {
    int n;
    double med, lo, hi;
} Spread;

static Spread spread_of(double *v, int n) {
    Spread s = {0, NAN, NAN, NAN};
    for (int i = 0; i < n; i++) s.n += isfinite(v[i]) != 0;
    s.med = lnl_study_median(v, n); /* moves the finite values, sorted, to the front */
    if (s.n) s.lo = v[0], s.hi = v[s.n - 1];
    return s;
}

/* "2.34 [2.31-2.40] (3 seeds)" */
typedef struct {
    char s[128];
} Txt;
static Txt spread_txt(Spread s) {
    Txt t;
    if (!s.n) snprintf(t.s, sizeof t.s, "n/a");
    else if (s.n == 1) snprintf(t.s, sizeof t.s, "%s (1 seed)", NUM(s.med));
    else snprintf(t.s, sizeof t.s, "%s [%s-%s] (%d seeds)", NUM(s.med), NUM(s.lo), NUM(s.hi), s.n);
    return t;
}
#define SPR(x) (spread_txt(x).s)

/* A per-run figure a claim compares, and its name in the tables' heads. */
typedef struct {
    double (*of)(const LnlStudyResult *r);
    const char *name;
} Metric;
static double val_loss(const LnlStudyResult *r) { return r->final_val_loss; }
static double last_hidden(const LnlStudyResult *r) { return r->last_hidden; }
static double min_ratio(const LnlStudyResult *r) { return r->min_grad_ratio; }
static double max_rise(const LnlStudyResult *r) { return r->max_rise; }
static const Metric M_VAL = {val_loss, "val loss"};
static const Metric M_LAST_HIDDEN = {last_hidden, "last-layer hidden_mean_abs"};
static const Metric M_MIN_RATIO = {min_ratio, "min grad ratio"};
static const Metric M_RISE = {max_rise, "largest loss rise"};

/* The metric over the runs of preset p in s at lr, the trained ones only or all; *runs and
 * *ntrained count the runs. */
static Spread cell_of(const Recs *R, const char *p, const Setting *s, double lr, const Metric *m, int trained_only,
                      int *runs, int *ntrained) {
    double *v = lnl_malloc(sizeof(double) * (size_t)(R->n + 1));
    int k = 0, nr = 0, nt = 0;
    for (int i = 0; i < R->n; i++) {
        if (!is(R, i, p, s) || R->rs[i].run.lr != lr) continue;
        nr++;
        nt += trained(&R->rs[i]);
        if (!trained_only || trained(&R->rs[i])) v[k++] = m->of(&R->rs[i]);
    }
    Spread sp = spread_of(v, k);
    free(v);
    if (runs) *runs = nr;
    if (ntrained) *ntrained = nt;
    return sp;
}

static Spread cell(const Recs *R, const char *p, const Setting *s, double lr, const Metric *m, int *runs,
                   int *ntrained) {
    return cell_of(R, p, s, lr, m, 1, runs, ntrained);
}

/* ---- verdicts ---- */

/* V_UNTESTABLE: a setting whose seeds cannot tell (fewer than 2 on a side); it is "inconclusive"
 * where it is shown, but it does not count against the settings that can tell. */
typedef enum { V_SHOWS, V_NOT, V_INCONCLUSIVE, V_UNTESTABLE } Verdict;
static const char *vname(Verdict v) { return v == V_SHOWS ? "shows" : v == V_NOT ? "does not show" : "inconclusive"; }

/* Lower is better: does b beat a? Fewer than 2 seeds on a side leave the spread unknown; a
 * difference within the larger of the two ranges is a tie. */
static Verdict lower_wins(Spread a, Spread b, char *why, size_t n) {
    if (!a.n || !b.n) {
        snprintf(why, n, "no trained runs to compare");
        return V_INCONCLUSIVE;
    }
    if (a.n < 2 || b.n < 2) {
        snprintf(why, n, "%d and %d seeds: the spread over seeds is unknown", a.n, b.n);
        return V_UNTESTABLE;
    }
    double spread = fmax(a.hi - a.lo, b.hi - b.lo), d = a.med - b.med;
    if (fabs(d) <= spread) {
        snprintf(why, n, "a tie: the difference %s is within the seeds' spread %s", NUM(fabs(d)), NUM(spread));
        return V_NOT;
    }
    snprintf(why, n, "difference %s, larger than the seeds' spread %s", NUM(fabs(d)), NUM(spread));
    return d > 0 ? V_SHOWS : V_NOT;
}

/* The verdicts of a claim's settings, combined: a claim shows (or does not show) when more than
 * half of the settings that can tell say so and none says the opposite; settings whose seeds
 * cannot tell are left out (and named). */
typedef struct {
    int n[4];
    LnlBuf parts; /* "dt 1, L8: shows (...); ..." */
} Tally;

static void tally(Tally *t, Verdict v, const char *where, const char *why) {
    t->n[v]++;
    lnl_buf_printf(&t->parts, "%s%s: %s (%s)", t->parts.len ? "; " : "", where, vname(v), why);
}

static Verdict tally_verdict(const Tally *t) {
    int testable = t->n[V_SHOWS] + t->n[V_NOT] + t->n[V_INCONCLUSIVE];
    if (2 * t->n[V_SHOWS] > testable && !t->n[V_NOT]) return V_SHOWS;
    if (2 * t->n[V_NOT] > testable && !t->n[V_SHOWS]) return V_NOT;
    return V_INCONCLUSIVE;
}

/* Room for setting_name: dt, shape, the variant (an id part) and the precision. */
#define SETTING_NAME_MAX (LNL_STUDY_ID_MAX + 128)

static void setting_name(const Setting *s, char *b, size_t n) {
    char shape[48];
    if (s->size[0]) snprintf(shape, sizeof shape, "%s", s->size);
    else snprintf(shape, sizeof shape, "L%d", s->depth);
    const char *prec = lnl_study_run_precision(s);
    int fp32 = !strcmp(prec, LNL_STUDY_FP32);
    snprintf(b, n, "dt %g, %s%s%s%s%s", s->dt, shape, s->variant[0] ? ", " : "", s->variant, fp32 ? "" : ", ",
             fp32 ? "" : prec);
}

/* ---- the claims ---- */

/* The comparisons a claim can make. a is the preset the claim is about (it grows, fails, or is
 * beaten), b the one it is compared with; the thresholds are the claim's (Claim). */
typedef enum {
    R_GROWTH_LR,    /* a's metric grows from the smallest to the largest lr by a larger factor than b's:
                       shows at >= shows x b's factor with disjoint ranges, not at <= not_ x */
    R_LINEAR_BOUND, /* a's hidden states fit a linear (variance: quadratic) profile in depth: shows when
                       the fraction of a's runs within it is >= shows, not when < not_ */
    R_EXP_DEPTH,    /* a's hidden states grow exponentially with depth (runs of depth >= min_depth):
                       shows when the fraction whose exponential fit is better is > shows */
    R_LR_SENS,      /* b is less sensitive to the lr than a (Wortsman et al. 2023): lower wins */
    R_SPIKES,       /* b spikes and diverges less than a in the upper half of the lr range */
    R_BEST_LOSS,    /* b's metric at its best lr is lower than a's at its best: lower wins */
    R_DT_HIDDEN,    /* dt < 1 shrinks a's and b's metric: shows at a factor >= shows, not at <= not_ */
    R_DT_LOSS,      /* dt < 1 lowers a's and b's best metric: lower wins */
    R_DEEP_TRAINS,  /* at the largest depth a fails to train and b trains: shows when b trained in every
                       run and a in at most the fraction shows */
    R_GRAD_RATIO    /* a's metric (the layer-1 / layer-L gradient ratio) vanishes, b's does not: shows at
                       <= 1/shows of b's with disjoint ranges, not within a factor not_ */
} Rule;

/* A claim of the literature as data. text is a template: {A} and {B} become the presets' names. */
typedef struct {
    const char *id, *text;
    Rule rule;
    const char *a, *b;     /* presets (b NULL: the claim is about a alone) */
    const Metric *metric;  /* the per-run figure compared (NULL: the rule's own) */
    double shows, not_;    /* thresholds, as the rule reads them (Rule) */
    int min_n;             /* fewest learning rates per setting (or runs in all) the rule needs */
    int min_depth;         /* shallowest run the rule counts */
} Claim;

static const Claim claims[] = {
    {"a1", "{A}'s hidden states grow with training intensity (the learning rate) by a larger factor than {B}'s",
     R_GROWTH_LR, "pre", "peri", &M_LAST_HIDDEN, 2, 1, 2, 0},
    {"a1", "{A}'s hidden states are bounded by a linear profile in depth (magnitude linear, variance quadratic)",
     R_LINEAR_BOUND, "peri", "pre", NULL, 0.8, 0.5, 3, 1},
    {"a1", "{A}'s hidden states grow exponentially with depth", R_EXP_DEPTH, "pre", NULL, NULL, 0.5, 0, 3, 8},
    {"a2", "{B} is less sensitive to the learning rate than {A}", R_LR_SENS, "pre", "peri", NULL, 0, 0, 3, 0},
    {"a2", "{B} spikes and diverges less than {A} at high learning rates", R_SPIKES, "pre", "peri", &M_RISE, 0, 0, 2,
     0},
    {"a3", "{B} reaches a lower val loss than {A}, each at its best learning rate", R_BEST_LOSS, "pre", "peri", &M_VAL, 0,
     0, 0, 0},
    {"a4", "A residual step dt < 1 shrinks the hidden states", R_DT_HIDDEN, "pre", "peri", &M_LAST_HIDDEN, 2, 1, 0, 0},
    {"a4", "A residual step dt < 1 lowers the best val loss", R_DT_LOSS, "pre", "peri", &M_VAL, 0, 0, 0, 0},
    {"b", "Deep {A} fails to train where {B} trains", R_DEEP_TRAINS, "post", "b2t", &M_VAL, 0.5, 0, 0, 0},
    {"b", "Deep {A}'s gradient vanishes toward layer 1 during training; {B}'s does not", R_GRAD_RATIO, "post", "b2t",
     &M_MIN_RATIO, 100, 10, 0, 0},
    {"b", "{B} reaches a lower val loss than {A} at the same depth, each at its best learning rate", R_BEST_LOSS, "pre",
     "b2t", &M_VAL, 0, 0, 0, 0},
};

static const char *pname(const char *preset) {
    static const char *names[][2] = {{"pre", "Pre-LN"}, {"peri", "Peri-LN"}, {"post", "Post-LN"}, {"b2t", "B2T"},
                                     {"mix", "Mix-LN"}, {"hybrid", "HybridNorm"}, {"lns", "LN-Scaling"},
                                     {"deepnorm", "DeepNorm"}, {"admin", "Admin"}, {"rezero", "ReZero"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(preset, names[i][0])) return names[i][1];
    return preset;
}

/* A template with {A} and {B} (the claim's presets' names), {shows}, {not} (its thresholds, %g),
 * {min_depth}, {spike_nats} and {margin} (LNL_TRAINED_MARGIN) filled in, into o (NUL-terminated). */
static void fill(LnlBuf *o, const char *tmpl, const Claim *c, double spike_nats) {
    o->len = 0;
    for (const char *p = tmpl; *p;) {
        const char *q = *p == '{' ? strchr(p, '}') : NULL;
        if (!q) {
            lnl_buf_append(o, p++, 1);
            continue;
        }
        size_t n = (size_t)(q - p + 1);
        if (!strncmp(p, "{A}", n)) lnl_buf_printf(o, "%s", pname(c->a));
        else if (!strncmp(p, "{B}", n)) lnl_buf_printf(o, "%s", c->b ? pname(c->b) : "");
        else if (!strncmp(p, "{shows}", n)) lnl_buf_printf(o, "%g", c->shows);
        else if (!strncmp(p, "{not}", n)) lnl_buf_printf(o, "%g", c->not_);
        else if (!strncmp(p, "{min_depth}", n)) lnl_buf_printf(o, "%d", c->min_depth);
        else if (!strncmp(p, "{spike_nats}", n)) lnl_buf_printf(o, "%g", spike_nats);
        else if (!strncmp(p, "{margin}", n)) lnl_buf_printf(o, "%g", LNL_TRAINED_MARGIN);
        else abort(); /* programmer error: a placeholder this function does not know */
        p = q + 1;
    }
    lnl_buf_append(o, "", 1);
    o->len--;
}

/* What a comparison sees: the records, the claim, and the settings in which all its presets have runs. */
typedef struct {
    const Recs *R;
    const Claim *c;
    const Setting *st;
    int ns;
} Ctx;

/* Column heads "<A's name> <what>" and "<B's name> <what>". */
typedef struct {
    char a[96], b[96];
} Heads;
static Heads heads(const Claim *c, const char *what) {
    Heads h;
    snprintf(h.a, sizeof h.a, "%s %s", pname(c->a), what);
    snprintf(h.b, sizeof h.b, "%s %s", c->b ? pname(c->b) : "", what);
    return h;
}

/* Per seed: metric m at lr hi over m at lr lo, both runs trained. */
static Spread lr_factor(const Recs *R, const char *p, const Setting *s, const Metric *m, double lo, double hi) {
    double *v = lnl_malloc(sizeof(double) * (size_t)(R->n + 1));
    int k = 0;
    for (int i = 0; i < R->n; i++) {
        if (!is(R, i, p, s) || R->rs[i].run.lr != hi || !trained(&R->rs[i])) continue;
        int j = find_run(R, p, s, lo, R->rs[i].run.seed);
        if (j >= 0 && trained(&R->rs[j]) && m->of(&R->rs[j]) > 0) v[k++] = m->of(&R->rs[i]) / m->of(&R->rs[j]);
    }
    Spread sp = spread_of(v, k);
    free(v);
    return sp;
}

/* Each comparison adds its table to d and a verdict per setting to t; it returns whether the
 * rule's paragraph follows (not when it measured nothing at all, for the deep claims). */

static int rule_growth_lr(LnlDoc *d, const Ctx *x, Tally *t) {
    const Recs *R = x->R;
    const Claim *c = x->c;
    char at_top[96];
    snprintf(at_top, sizeof at_top, "%s at the top lr", c->metric->name);
    Heads f = heads(c, "growth factor"), h = heads(c, at_top);
    const char *h2[] = {"setting", "lr range (both trained)", f.a, f.b, h.a, h.b, "verdict"};
    int ti = lnl_doc_table(d, 7, h2);
    double *lrs = lnl_malloc(sizeof(double) * (size_t)(R->n + 1));
    for (int k = 0; k < x->ns; k++) {
        const Setting *s = &x->st[k];
        int nl = common_lrs(R, c->a, c->b, s, lrs), m = 0;
        for (int i = 0; i < nl; i++) { /* keep the lrs where both presets trained */
            int ta = 0, tb = 0;
            cell(R, c->a, s, lrs[i], c->metric, NULL, &ta);
            cell(R, c->b, s, lrs[i], c->metric, NULL, &tb);
            if (ta && tb) lrs[m++] = lrs[i];
        }
        if (m < c->min_n) continue;
        char where[SETTING_NAME_MAX], why[1024], range[64];
        setting_name(s, where, sizeof where);
        snprintf(range, sizeof range, "%s to %s", NUM(lrs[0]), NUM(lrs[m - 1]));
        Spread a = lr_factor(R, c->a, s, c->metric, lrs[0], lrs[m - 1]);
        Spread b = lr_factor(R, c->b, s, c->metric, lrs[0], lrs[m - 1]);
        Spread xa = cell(R, c->a, s, lrs[m - 1], c->metric, NULL, NULL);
        Spread xb = cell(R, c->b, s, lrs[m - 1], c->metric, NULL, NULL);
        Verdict v;
        if (!a.n || !b.n) {
            v = V_INCONCLUSIVE;
            snprintf(why, sizeof why, "no seed trained at both ends of the range");
        } else if (a.med >= c->shows * b.med && a.lo > b.hi) {
            v = V_SHOWS;
            snprintf(why, sizeof why, "%s grows %sx over lr %s, %s %sx", pname(c->a), NUM(a.med), range, pname(c->b),
                     NUM(b.med));
        } else if (a.med <= c->not_ * b.med) {
            v = V_NOT;
            snprintf(why, sizeof why, "%s grows %sx, %s %sx", pname(c->a), NUM(a.med), pname(c->b), NUM(b.med));
        } else {
            v = V_INCONCLUSIVE;
            snprintf(why, sizeof why, "%s grows %sx, %s %sx: less than twice, or the seeds' ranges overlap",
                     pname(c->a), NUM(a.med), pname(c->b), NUM(b.med));
        }
        lnl_doc_row(d, ti, where, range, SPR(a), SPR(b), SPR(xa), SPR(xb), vname(v));
        tally(t, v, where, why);
    }
    free(lrs);
    return 1;
}

/* Runs of preset p (any setting) that trained and were probed; how many fit the linear bound and
 * how many fit exponential growth better. */
static void fit_counts(const Recs *R, const char *p, int min_depth, int *n, int *bound, int *expo, Spread *block1) {
    *n = *bound = *expo = 0;
    double *v = lnl_malloc(sizeof(double) * (size_t)(R->n + 1));
    int k = 0;
    for (int i = 0; i < R->n; i++) {
        const LnlStudyResult *r = &R->rs[i];
        if (!R->have[i] || strcmp(r->run.preset, p) || !trained(r) || r->nlayers < 3 || r->run.depth < min_depth)
            continue;
        (*n)++;
        *bound += r->growth.within_bound;
        *expo += r->growth.magnitude.better_exp;
        int L = r->nlayers - 1;
        if (r->layers[L].mean_abs > 0) v[k++] = r->layers[1].mean_abs / r->layers[L].mean_abs;
    }
    if (block1) *block1 = spread_of(v, k);
    free(v);
}

static int rule_linear_bound(LnlDoc *d, const Ctx *x, Tally *t) {
    const Claim *c = x->c;
    const char *head[] = {"preset", "trained runs probed", "within the linear bound", "exponential fits better"};
    int ti = lnl_doc_table(d, 4, head);
    const char *ps[2] = {c->a, c->b};
    int n = 0, bound = 0;
    for (int p = 0; p < 2 && ps[p]; p++) {
        int pn, pb, pe;
        fit_counts(x->R, ps[p], c->min_depth, &pn, &pb, &pe, NULL);
        char a[16], b[16], e[16];
        snprintf(a, sizeof a, "%d", pn);
        snprintf(b, sizeof b, "%d", pb);
        snprintf(e, sizeof e, "%d", pe);
        lnl_doc_row(d, ti, pname(ps[p]), a, b, e);
        if (!p) n = pn, bound = pb;
    }
    char why[1024];
    Verdict v;
    if (n < c->min_n) {
        v = V_INCONCLUSIVE;
        snprintf(why, sizeof why, "%d trained runs with a probe: fewer than %d", n, c->min_n);
    } else {
        double frac = (double)bound / n;
        v = frac >= c->shows ? V_SHOWS : frac < c->not_ ? V_NOT : V_INCONCLUSIVE;
        snprintf(why, sizeof why, "%d of %d trained %s runs within the bound", bound, n, pname(c->a));
    }
    tally(t, v, "all settings", why);
    return 1;
}

static int rule_exp_depth(LnlDoc *d, const Ctx *x, Tally *t) {
    const Claim *c = x->c;
    int n, bound, expo;
    Spread b1;
    fit_counts(x->R, c->a, c->min_depth, &n, &bound, &expo, &b1);
    char runs[64];
    snprintf(runs, sizeof runs, "trained runs of depth >= %d", c->min_depth);
    const char *head[] = {"preset", runs, "exponential fits better", "within the linear bound",
                          "layer-1 / last-layer hidden_mean_abs"};
    int ti = lnl_doc_table(d, 5, head);
    char a[16], b[16], e[16];
    snprintf(a, sizeof a, "%d", n);
    snprintf(e, sizeof e, "%d", expo);
    snprintf(b, sizeof b, "%d", bound);
    lnl_doc_row(d, ti, pname(c->a), a, e, b, SPR(b1));
    char why[1024];
    Verdict v;
    if (n < c->min_n) {
        v = V_INCONCLUSIVE;
        snprintf(why, sizeof why, "%d trained runs of depth >= %d: fewer than %d", n, c->min_depth, c->min_n);
    } else {
        v = (double)expo / n > c->shows ? V_SHOWS : V_NOT;
        snprintf(why, sizeof why, "the exponential fits better in %d of %d runs; block 1 holds %s of the last layer's "
                                  "magnitude (median)",
                 expo, n, NUM(b1.med));
    }
    tally(t, v, "all settings", why);
    return 1;
}

/* LR sensitivity of preset p in s over lrs, per seed (lnl_study_lr_sensitivities). */
static Spread lr_sensitivity(const Recs *R, const char *p, const Setting *s, const double *lrs, int nl, int *any_trained) {
    *any_trained = 0;
    int i0 = 0;
    while (i0 < R->n && !is(R, i0, p, s)) i0++;
    if (i0 == R->n) return spread_of(NULL, 0);
    double *v = lnl_malloc(sizeof(double) * (size_t)(R->n + 1));
    int k = lnl_study_lr_sensitivities(R->rs, R->have, R->n, &R->rs[i0].run, p, lrs, nl, v, any_trained);
    Spread sp = spread_of(v, k);
    free(v);
    return sp;
}

static int rule_lr_sens(LnlDoc *d, const Ctx *x, Tally *t) {
    const Recs *R = x->R;
    const Claim *c = x->c;
    Heads h = heads(c, "LR sensitivity");
    const char *head[] = {"setting", "learning rates", h.a, h.b, "verdict"};
    int ti = lnl_doc_table(d, 5, head);
    double *lrs = lnl_malloc(sizeof(double) * (size_t)(R->n + 1));
    for (int k = 0; k < x->ns; k++) {
        const Setting *s = &x->st[k];
        int nl = common_lrs(R, c->a, c->b, s, lrs);
        if (nl < c->min_n) continue;
        char where[SETTING_NAME_MAX], why[1024], range[96];
        setting_name(s, where, sizeof where);
        snprintf(range, sizeof range, "%d, %s to %s", nl, NUM(lrs[0]), NUM(lrs[nl - 1]));
        int ta, tb;
        Spread a = lr_sensitivity(R, c->a, s, lrs, nl, &ta), b = lr_sensitivity(R, c->b, s, lrs, nl, &tb);
        Verdict v;
        if (!ta || !tb) {
            v = V_INCONCLUSIVE;
            snprintf(why, sizeof why, "%s did not train at any learning rate", !ta ? pname(c->a) : pname(c->b));
        } else {
            char w[512];
            v = lower_wins(a, b, w, sizeof w);
            snprintf(why, sizeof why, "%s %s, %s %s: %s", pname(c->a), NUM(a.med), pname(c->b), NUM(b.med), w);
        }
        lnl_doc_row(d, ti, where, range, SPR(a), SPR(b), vname(v));
        tally(t, v, where, why);
    }
    free(lrs);
    return 1;
}

static int rule_spikes(LnlDoc *d, const Ctx *x, Tally *t) {
    const Recs *R = x->R;
    const Claim *c = x->c;
    Heads h = heads(c, "spiked or diverged"), r = heads(c, c->metric->name);
    const char *head[] = {"setting", "learning rates", h.a, h.b, r.a, r.b, "verdict"};
    int ti = lnl_doc_table(d, 7, head);
    double *lrs = lnl_malloc(sizeof(double) * (size_t)(R->n + 1)), *va = lnl_malloc(sizeof(double) * (size_t)(R->n + 1)),
           *vb = lnl_malloc(sizeof(double) * (size_t)(R->n + 1));
    for (int k = 0; k < x->ns; k++) {
        const Setting *s = &x->st[k];
        int nl = common_lrs(R, c->a, c->b, s, lrs);
        if (nl < c->min_n) continue;
        int from = nl / 2; /* the upper half of the range */
        int cnt[2] = {0, 0}, runs[2] = {0, 0}, nv[2] = {0, 0};
        for (int i = 0; i < R->n; i++)
            for (int p = 0; p < 2; p++) {
                if (!is(R, i, p ? c->b : c->a, s) || R->rs[i].run.lr < lrs[from]) continue;
                const LnlStudyResult *rr = &R->rs[i];
                runs[p]++;
                cnt[p] += rr->diverged_at_step >= 0 || rr->spikes > 0;
                (p ? vb : va)[nv[p]++] = rr->diverged_at_step >= 0 ? INFINITY : c->metric->of(rr);
            }
        /* a diverged run's rise counts as the largest */
        Spread a = spread_of(va, nv[0]), b = spread_of(vb, nv[1]);
        char where[SETTING_NAME_MAX], why[1024], range[64], ca[32], cb[32];
        setting_name(s, where, sizeof where);
        snprintf(range, sizeof range, "%s to %s", NUM(lrs[from]), NUM(lrs[nl - 1]));
        snprintf(ca, sizeof ca, "%d of %d", cnt[0], runs[0]);
        snprintf(cb, sizeof cb, "%d of %d", cnt[1], runs[1]);
        Verdict v;
        if (cnt[1] < cnt[0] && b.med < a.med) v = V_SHOWS;
        else if (!cnt[0] && !cnt[1]) v = V_NOT;
        else if (cnt[1] >= cnt[0] && b.med >= a.med) v = V_NOT;
        else v = V_INCONCLUSIVE;
        snprintf(why, sizeof why, "spiked or diverged: %s %s, %s %s; median largest rise %s and %s nats", pname(c->a), ca,
                 pname(c->b), cb, NUM(a.med), NUM(b.med));
        lnl_doc_row(d, ti, where, range, ca, cb, SPR(a), SPR(b), vname(v));
        tally(t, v, where, why);
    }
    free(lrs);
    free(va);
    free(vb);
    return 1;
}

/* The best lr of preset p in s (lowest median of m over its trained seeds) and that cell. */
static Spread best_cell(const Recs *R, const char *p, const Setting *s, const Metric *m, double *best_lr) {
    double *lrs = lnl_malloc(sizeof(double) * (size_t)(R->n + 1));
    int nl = lrs_of(R, p, s, lrs);
    Spread best = {0, NAN, NAN, NAN};
    *best_lr = NAN;
    for (int i = 0; i < nl; i++) {
        int runs, nt;
        Spread x = cell(R, p, s, lrs[i], m, &runs, &nt);
        if (nt < runs || !x.n) continue; /* a learning rate at which some seed did not train is not a best */
        if (!best.n || x.med < best.med) best = x, *best_lr = lrs[i];
    }
    free(lrs);
    return best;
}

static int rule_best_loss(LnlDoc *d, const Ctx *x, Tally *t) {
    const Recs *R = x->R;
    const Claim *c = x->c;
    char best[96];
    snprintf(best, sizeof best, "best %s (lr)", c->metric->name);
    Heads h = heads(c, best);
    const char *head[] = {"setting", h.a, h.b, "verdict"};
    int ti = lnl_doc_table(d, 4, head);
    for (int k = 0; k < x->ns; k++) {
        const Setting *s = &x->st[k];
        double la, lb;
        Spread a = best_cell(R, c->a, s, c->metric, &la), b = best_cell(R, c->b, s, c->metric, &lb);
        char where[SETTING_NAME_MAX], why[1024], w[512], ca[192], cb[192];
        setting_name(s, where, sizeof where);
        snprintf(ca, sizeof ca, "%s (lr %s)", SPR(a), NUM(la));
        snprintf(cb, sizeof cb, "%s (lr %s)", SPR(b), NUM(lb));
        Verdict v;
        if (!a.n || !b.n) {
            v = V_INCONCLUSIVE;
            if (a.n || b.n)
                snprintf(why, sizeof why, "%s did not train in every seed at any learning rate: no verdict",
                         !a.n ? pname(c->a) : pname(c->b));
            else
                snprintf(why, sizeof why, "neither preset trained in every seed at any learning rate: no verdict");
        } else {
            v = lower_wins(a, b, w, sizeof w);
            snprintf(why, sizeof why, "%s %s, %s %s: %s", pname(c->a), ca, pname(c->b), cb, w);
        }
        lnl_doc_row(d, ti, where, ca, cb, vname(v));
        tally(t, v, where, why);
    }
    return 1;
}

/* Each preset's settings with dt < 1 against their dt-1 counterparts (same variant and shape):
 * the best metric (loss) or the metric's ratio dt 1 / dt < 1, median over learning rates. */
static void rule_dt(LnlDoc *d, const Ctx *x, int loss, Tally *t) {
    const Recs *R = x->R;
    const Claim *c = x->c;
    char best1[96], best2[96];
    snprintf(best1, sizeof best1, "best %s at dt 1 (lr)", c->metric->name);
    snprintf(best2, sizeof best2, "best %s at dt < 1 (lr)", c->metric->name);
    const char *head[] = {"preset", "setting (dt < 1)", loss ? best1 : "learning rates (both trained)",
                          loss ? best2 : "hidden_mean_abs dt 1 / dt < 1 (median over lrs)", "verdict"};
    int ti = lnl_doc_table(d, 5, head);
    Setting *st = lnl_malloc(sizeof *st * (size_t)(R->n + 1));
    double *lrs = lnl_malloc(sizeof(double) * (size_t)(R->n + 1)), *ratios = lnl_malloc(sizeof(double) * (size_t)(R->n + 1));
    const char *ps[2] = {c->a, c->b};
    for (int p = 0; p < 2; p++) {
        int ns = settings_with(R, &ps[p], 1, st);
        for (int k = 0; k < ns; k++) {
            if (st[k].dt >= 1) continue;
            Setting one = st[k];
            one.dt = 1;
            int has_one = 0;
            for (int i = 0; i < R->n && !has_one; i++) has_one = is(R, i, ps[p], &one);
            if (!has_one) continue;
            char where[SETTING_NAME_MAX], why[1024], w[512], cx[192], cy[192];
            setting_name(&st[k], where, sizeof where);
            Verdict v;
            if (loss) {
                double l1, l2;
                Spread a = best_cell(R, ps[p], &one, c->metric, &l1), b = best_cell(R, ps[p], &st[k], c->metric, &l2);
                snprintf(cx, sizeof cx, "%s (lr %s)", SPR(a), NUM(l1));
                snprintf(cy, sizeof cy, "%s (lr %s)", SPR(b), NUM(l2));
                v = lower_wins(a, b, w, sizeof w);
                snprintf(why, sizeof why, "%s: dt 1 %s, dt %g %s: %s", pname(ps[p]), cx, st[k].dt, cy, w);
            } else {
                int nl = lrs_of(R, ps[p], &st[k], lrs), m = 0;
                for (int l = 0; l < nl; l++) {
                    Spread a = cell(R, ps[p], &one, lrs[l], c->metric, NULL, NULL);
                    Spread b = cell(R, ps[p], &st[k], lrs[l], c->metric, NULL, NULL);
                    if (a.n && b.n && b.med > 0) ratios[m++] = a.med / b.med;
                }
                Spread r = spread_of(ratios, m);
                snprintf(cx, sizeof cx, "%d", m);
                snprintf(cy, sizeof cy, "%s [%s-%s]", NUM(r.med), NUM(r.lo), NUM(r.hi));
                v = !m ? V_INCONCLUSIVE : r.med >= c->shows ? V_SHOWS : r.med <= c->not_ ? V_NOT : V_INCONCLUSIVE;
                snprintf(why, sizeof why, "%s: dt 1 over dt %g, median over %d learning rates %s", pname(ps[p]), st[k].dt,
                         m, NUM(r.med));
            }
            lnl_doc_row(d, ti, pname(ps[p]), where, cx, cy, vname(v));
            tally(t, v, where, why);
        }
    }
    free(st);
    free(lrs);
    free(ratios);
}
static int rule_dt_hidden(LnlDoc *d, const Ctx *x, Tally *t) { return rule_dt(d, x, 0, t), 1; }
static int rule_dt_loss(LnlDoc *d, const Ctx *x, Tally *t) { return rule_dt(d, x, 1, t), 1; }

/* The deepest setting (and its largest lr) decides; the shallower ones are the control. Every
 * run's metric counts for the ratio, trained or not: the vanishing gradient is why a run does
 * not train. */
static int rule_deep(LnlDoc *d, const Ctx *x, int ratio, Tally *t) {
    const Recs *R = x->R;
    const Claim *c = x->c;
    Heads h = heads(c, ratio ? c->metric->name : "trained"), vl = heads(c, M_VAL.name);
    const char *head[] = {"setting", "lr", h.a, h.b, vl.a, vl.b};
    int ti = lnl_doc_table(d, 6, head);
    double *lrs = lnl_malloc(sizeof(double) * (size_t)(R->n + 1));
    int deep = -1;
    double deep_lr = NAN;
    for (int k = 0; k < x->ns; k++) {
        const Setting *s = &x->st[k];
        int nl = common_lrs(R, c->a, c->b, s, lrs);
        for (int l = 0; l < nl; l++) {
            int ra, ta, rb, tb;
            Spread xa = cell(R, c->a, s, lrs[l], &M_VAL, &ra, &ta), xb = cell(R, c->b, s, lrs[l], &M_VAL, &rb, &tb);
            char where[SETTING_NAME_MAX], ca[128], cb[128];
            setting_name(s, where, sizeof where);
            if (ratio) {
                snprintf(ca, sizeof ca, "%s", SPR(cell_of(R, c->a, s, lrs[l], c->metric, 0, NULL, NULL)));
                snprintf(cb, sizeof cb, "%s", SPR(cell_of(R, c->b, s, lrs[l], c->metric, 0, NULL, NULL)));
            } else {
                snprintf(ca, sizeof ca, "%d of %d", ta, ra);
                snprintf(cb, sizeof cb, "%d of %d", tb, rb);
            }
            lnl_doc_row(d, ti, where, NUM(lrs[l]), ca, cb, SPR(xa), SPR(xb));
            if (deep < 0 || s->depth > x->st[deep].depth || (s->depth == x->st[deep].depth && lrs[l] > deep_lr))
                deep = k, deep_lr = lrs[l];
        }
    }
    free(lrs);
    if (deep < 0) return 0;
    const Setting *s = &x->st[deep];
    char where[SETTING_NAME_MAX], why[1024];
    setting_name(s, where, sizeof where);
    snprintf(where + strlen(where), sizeof where - strlen(where), ", lr %s", NUM(deep_lr));
    int ra, ta, rb, tb;
    cell(R, c->a, s, deep_lr, &M_VAL, &ra, &ta);
    cell(R, c->b, s, deep_lr, &M_VAL, &rb, &tb);
    Verdict v;
    if (!ta && !tb) {
        v = V_INCONCLUSIVE;
        snprintf(why, sizeof why, "%s and %s did not train at depth %d: no verdict", pname(c->a), pname(c->b), s->depth);
    } else if (tb < rb) {
        v = V_INCONCLUSIVE;
        snprintf(why, sizeof why, "%s trained in only %d of %d runs at depth %d: no verdict", pname(c->b), tb, rb,
                 s->depth);
    } else if (!ratio) {
        v = ta <= c->shows * ra ? V_SHOWS : V_NOT;
        snprintf(why, sizeof why, "at depth %d %s trained in %d of %d runs, %s in %d of %d", s->depth, pname(c->a), ta, ra,
                 pname(c->b), tb, rb);
    } else {
        Spread sa = cell_of(R, c->a, s, deep_lr, c->metric, 0, NULL, NULL);
        Spread sb = cell_of(R, c->b, s, deep_lr, c->metric, 0, NULL, NULL);
        if (!sa.n || !sb.n) v = V_INCONCLUSIVE;
        else if (sa.med * c->shows <= sb.med && sa.hi < sb.lo) v = V_SHOWS;
        else if (sa.med * c->not_ >= sb.med) v = V_NOT;
        else v = V_INCONCLUSIVE;
        snprintf(why, sizeof why, "smallest layer-1 / layer-%d gradient ratio during training: %s %s, %s %s%s", s->depth,
                 pname(c->a), SPR(sa), pname(c->b), SPR(sb), !sa.n || !sb.n ? " (no diag records)" : "");
    }
    tally(t, v, where, why);
    return 1;
}
static int rule_deep_trains(LnlDoc *d, const Ctx *x, Tally *t) { return rule_deep(d, x, 0, t); }
static int rule_grad_ratio(LnlDoc *d, const Ctx *x, Tally *t) { return rule_deep(d, x, 1, t); }

/* ---- the figures a claim's numbers come from ---- */

typedef enum {
    FIG_HIDDEN, /* the hidden-state figure of each of its presets */
    FIG_LR,     /* each setting's loss-against-lr figure */
    FIG_LOSS,   /* each setting's loss curves, at its largest lr */
    FIG_GRAD    /* the gradient figures */
} Figs;

#define CLAIM_MAX_FIGS 6

/* Adds base to figs (at most CLAIM_MAX_FIGS, no repeats) when pl drew it. */
static void want_fig(char figs[][160], int *nf, const LnlStudyPlots *pl, const char *base) {
    if (!pl || *nf >= CLAIM_MAX_FIGS) return;
    for (int i = 0; i < *nf; i++)
        if (!strcmp(figs[i], base)) return;
    for (int i = 0; i < pl->n; i++)
        if (pl->p[i].ok && !strcmp(pl->p[i].base, base)) {
            snprintf(figs[(*nf)++], 160, "%s", base);
            return;
        }
}

static void claim_figures(LnlDoc *d, const Ctx *x, Figs kind, const LnlStudyPlots *pl) {
    const Recs *R = x->R;
    char figs[CLAIM_MAX_FIGS][160], base[160];
    int nf = 0;
    const char *ps[2] = {x->c->a, x->c->b};
    int np = x->c->b ? 2 : 1;
    switch (kind) {
    case FIG_HIDDEN:
        for (int p = 0; p < np; p++) {
            lnl_study_hidden_figure(ps[p], base, sizeof base);
            want_fig(figs, &nf, pl, base);
        }
        break;
    case FIG_LR:
    case FIG_LOSS:
        for (int k = 0; k < x->ns; k++) {
            int last = -1; /* the setting's run with the largest lr (loss curves) or any (lr figure) */
            for (int i = 0; i < R->n; i++)
                if (is(R, i, ps[np - 1], &x->st[k]) && (last < 0 || R->rs[i].run.lr > R->rs[last].run.lr)) last = i;
            if (last < 0) continue;
            if (kind == FIG_LOSS) lnl_study_loss_figure(&R->rs[last].run, base, sizeof base);
            else lnl_study_lr_figure(&R->rs[last].run, base, sizeof base);
            want_fig(figs, &nf, pl, base);
        }
        break;
    case FIG_GRAD:
        want_fig(figs, &nf, pl, "heatmap_grad_norm");
        want_fig(figs, &nf, pl, "grad_norm");
        break;
    }
    for (int i = 0; i < nf; i++)
        for (int j = 0; j < pl->n; j++)
            if (!strcmp(pl->p[j].base, figs[i])) {
                int bi = lnl_doc_add(d, B_FIG);
                d->b[bi].text = lnl_strdup(pl->p[j].title);
                snprintf(d->b[bi].base, sizeof d->b[bi].base, "%.159s", figs[i]);
                break;
            }
}

/* ---- the comparisons, by rule ---- */

/* Each rule: the function that measures it, the figures its numbers come from, and its
 * paragraph (a template for fill()). */
typedef struct {
    int (*eval)(LnlDoc *d, const Ctx *x, Tally *t);
    Figs figs;
    const char *about;
} RuleDef;

static const RuleDef rules[] = {
    [R_GROWTH_LR] = {rule_growth_lr, FIG_HIDDEN,
                     "Growth factor: last-layer hidden_mean_abs (final probe) at the largest learning rate over that "
                     "at the smallest, per seed, over the rates at which both presets trained. The claim shows where "
                     "{A}'s median factor is at least twice {B}'s and the seeds' ranges do not overlap."},
    [R_LINEAR_BOUND] = {rule_linear_bound, FIG_HIDDEN,
                        "Within the linear bound: hidden_mean_abs against entry l = 0..L fits a line and hidden_var a "
                        "quadratic, and neither fits an exponential better (lnlab probe's fits, src/diag/growth.h). "
                        "Shows when at least 4 in 5 of {A}'s trained runs are within it, does not show below 1 in 2."},
    [R_EXP_DEPTH] = {rule_exp_depth, FIG_HIDDEN,
                     "Shows when the exponential fit of hidden_mean_abs against layer beats the linear one in more "
                     "than half of the trained runs of depth {min_depth} or more. The last column tells where the "
                     "growth sits: near 1, block 1 already has the last layer's magnitude (growth in the first block, "
                     "not along the depth)."},
    [R_LR_SENS] = {rule_lr_sens, FIG_LR,
                   "LR sensitivity (Wortsman et al. 2023): over the learning rates of the sweep, the mean of "
                   "min(final val loss, loss at init) minus the best final val loss, per seed; a diverged run counts "
                   "at its loss at init (its first training loss). Lower is flatter. A difference within the larger "
                   "of the two presets' ranges over seeds is a tie."},
    [R_SPIKES] = {rule_spikes, FIG_LOSS,
                  "The upper half of each setting's learning rates. A spike: the training loss rose more than "
                  "{spike_nats} nats above its running minimum (spike_nats; one spike lasts until the loss is back "
                  "within half that). Largest loss rise: the largest rise above the running minimum, in nats (all "
                  "runs, trained or not; a diverged run counts as the largest). Shows when {B} has fewer runs that "
                  "spiked or diverged and a smaller median rise; neither spiking is \"does not show\"."},
    [R_BEST_LOSS] = {rule_best_loss, FIG_LR,
                     "Best val loss: the final val loss at the learning rate with the lowest median over seeds, "
                     "among the rates at which every seed trained. A difference within the larger of the two "
                     "ranges over seeds is a tie (does not show)."},
    [R_DT_HIDDEN] = {rule_dt_hidden, FIG_HIDDEN,
                     "Last-layer hidden_mean_abs at dt 1 over that at dt < 1, at each learning rate where both "
                     "trained (medians over seeds), then the median over learning rates. Shows when it is at "
                     "least 2 (dt shrinks the stream at least twofold), does not show at 1 or below."},
    [R_DT_LOSS] = {rule_dt_loss, FIG_LR,
                   "Each preset's best val loss at dt < 1 against the same setting at dt 1 (best as in a3). "
                   "A difference within the seeds' spread is a tie."},
    [R_DEEP_TRAINS] = {rule_deep_trains, FIG_LOSS,
                       "Trained: final val loss at least {margin} nats below the data's unigram loss (the loss of "
                       "predicting every token by its frequency in the training split, where a collapsed model "
                       "sits). The deepest setting decides: shows when {B} trained in every run and {A} in at most "
                       "half; no verdict when {B} did not train. Shallower settings are the control."},
    [R_GRAD_RATIO] = {rule_grad_ratio, FIG_GRAD,
                      "Min grad ratio: the smallest, over the run's diag records (every diag_every steps), of "
                      "block 1's gradient norm over block L's; every run counts, trained or not (the vanishing "
                      "gradient is the mechanism of not training), but a verdict needs {B} to have trained. Shows "
                      "when {A}'s median is at least {shows}x smaller and the ranges do not overlap; does not show "
                      "within {not}x. The deepest setting decides; shallower ones are the control."},
};

/* ---- the section ---- */

/* One claim: its heading, its verdict (filled in once the comparison has run), the comparison's
 * table, the rule and the figures; the verdict's reasons go to *why (caller frees). */
static Verdict claim_eval(LnlDoc *body, const Recs *R, const Claim *cl, const char *text, Setting *st,
                          const LnlStudyPlots *pl, double spike_nats, char **why) {
    const RuleDef *rd = &rules[cl->rule];
    lnl_doc_text(body, B_H3, "(%s) %s", cl->id, text);
    int vi = lnl_doc_add(body, B_P);
    Tally t = {{0, 0, 0, 0}, {0}};
    const char *ps[2] = {cl->a, cl->b};
    Ctx x = {R, cl, st, settings_with(R, ps, cl->b ? 2 : 1, st)};
    if (rd->eval(body, &x, &t)) {
        LnlBuf about = {0};
        fill(&about, rd->about, cl, spike_nats);
        lnl_doc_text(body, B_P, "%s", about.data);
        lnl_buf_free(&about);
    }
    claim_figures(body, &x, rd->figs, pl);
    Verdict v = tally_verdict(&t);
    if (!t.parts.len) lnl_buf_printf(&t.parts, "the study has no runs this claim can be measured on");
    lnl_buf_append(&t.parts, "", 1);
    *why = t.parts.data;
    LnlBuf vt = {0};
    lnl_buf_printf(&vt, "Verdict: %s: %s.", vname(v), *why);
    lnl_buf_append(&vt, "", 1);
    body->b[vi].text = vt.data;
    return v;
}

void lnl_study_findings(LnlDoc *top, LnlDoc *out, const LnlStudyConfig *c, const LnlStudyResult *rs, const int *have,
                        int n, const LnlStudyPlots *pl, LnlBuf *verdicts) {
    Recs R = {rs, have, n};
    const int nc = (int)(sizeof claims / sizeof claims[0]);
    Verdict *v = lnl_malloc(sizeof(Verdict) * (size_t)nc);
    LnlBuf *text = lnl_calloc((size_t)nc, sizeof *text);
    Setting *st = lnl_malloc(sizeof *st * (size_t)(n + 1));
    LnlDoc body = {0};
    for (int k = 0; k < nc; k++) {
        char *why;
        fill(&text[k], claims[k].text, &claims[k], c->spike_nats);
        v[k] = claim_eval(&body, &R, &claims[k], text[k].data, st, pl, c->spike_nats, &why);
        lnl_buf_printf(verdicts, "(%s) %s: %s: %s.\n", claims[k].id, text[k].data, vname(v[k]), why);
        free(why);
    }
    const char *head[] = {"id", "claim", "verdict"};
    int ti = lnl_doc_table(top, 3, head);
    for (int k = 0; k < nc; k++) lnl_doc_row(top, ti, claims[k].id, text[k].data, vname(v[k]));
    /* the claims' blocks move over */
    for (int i = 0; i < body.n; i++) {
        int bi = lnl_doc_add(out, body.b[i].kind);
        out->b[bi] = body.b[i];
    }
    free(body.b);
    for (int k = 0; k < nc; k++) lnl_buf_free(&text[k]);
    free(text);
    free(v);
    free(st);
}
