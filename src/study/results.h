/* One study run's results record (a line of OUT/results.jsonl): built from the run's
 * log.jsonl and probe.json, written as JSON and read back; and the results file as a set of
 * records keyed by run id. */
#ifndef LNL_STUDY_RESULTS_H
#define LNL_STUDY_RESULTS_H

#include "../diag/growth.h"
#include "../report/logread.h"
#include "config.h"

/* The per-layer figures of `lnlab probe --json` (docs/USAGE.md) a record keeps: the metrics with
 * LNL_LMF_STUDY (src/diag/metrics.h), one field each; NAN where probe printed null. */
typedef struct {
    double mean_abs, var, var_data, grad_norm, sensitivity, dx_norm;
} LnlStudyLayer;
/* Field of y for per-layer metric `metric` (metrics.h); NAN for a metric a record does not keep. */
double lnl_study_layer_value(const LnlStudyLayer *y, int metric);

typedef struct {
    LnlStudyRun run;
    char grid[72]; /* the run's grid name (run.grid points here after reading a record) */
    int threads;
    long long steps_done;
    double final_val_loss, final_train_loss; /* NAN: none */
    long long diverged_at_step;              /* -1: did not diverge */
    char cause[128];
    double max_rise;            /* largest rise of the training loss above its running minimum (nats) */
    long long max_rise_step;    /* the step of that rise (-1: none) */
    int spikes;                 /* loss spikes (LnlStudyCurve.spikes) at spike_nats */
    double spike_nats;
    double init_loss;           /* training loss of the first step (the model at init) */
    double unigram;             /* the data's unigram val loss (RUN/result.json); NAN: unknown */
    int trained;                /* lnl_trained(): 1 trained, 0 did not, -1 unknown */
    long long gate_step;        /* first evaluation with val loss below unigram - LNL_TRAINED_MARGIN (-1: none) */
    double min_grad_ratio;      /* smallest layer-1 / layer-L gradient norm ratio of the diag records */
    long long min_grad_ratio_step;
    int ndiag;                  /* diag records read */
    int nlayers;          /* entries 0..L; 0 without a probe (diverged run) */
    LnlStudyLayer *layers; /* (nlayers) */
    double last_hidden;   /* hidden_mean_abs of entry L */
    LnlGrowth growth;     /* hidden_mean_abs and hidden_var against entry l = 0..L: the probe's fits when built,
                           * fitted again from the layers when read back (a record keeps only some fits) */
    double grad_ratio;    /* grad_norm of layer 1 / grad_norm of layer L */
    double median_sensitivity; /* over layers 1..L; NAN when not measured */
    double tokens_per_s;  /* median over the run's steps */
    double wall_s;        /* train + probe */
} LnlStudyResult;

/* A run's loss curves from RUN/log.jsonl: its records (the arrays below point into them) and
 * figures computed from them. */
typedef struct {
    LnlLogRecords log;
    int n, nval;
    double *step, *loss;     /* (n) training records */
    double *vstep, *val;     /* (nval) evaluation records */
    double median_tps;
    double max_rise;            /* max over steps of loss - min(loss of the earlier steps) */
    long long max_rise_step;
    int spikes;                 /* times the loss rose more than spike_nats above its running minimum (one
                                   spike lasts until the loss is back within spike_nats / 2 of that minimum) */
    long long diverged_at_step; /* -1: none */
    char cause[128];
    /* diag records (--diag-every): the layer-1 / layer-L gradient norm ratio at each */
    int ndiag;
    double *dstep, *dratio; /* dratio owned */
} LnlStudyCurve;
int lnl_study_curve_read(LnlStudyCurve *c, const char *log_path, double spike_nats, LnlErr *e);
void lnl_study_curve_free(LnlStudyCurve *c);

/* Builds the record of a finished run from RUNDIR/log.jsonl, RUNDIR/result.json (the unigram
 * loss) and, if probe_json is non-NULL, the output of `lnlab probe --json`. */
int lnl_study_result_build(LnlStudyResult *r, const LnlStudyRun *run, const char *rundir, const char *probe_json,
                           double spike_nats, LnlErr *e);
/* One line of JSON (no newline); settings_json (lnl_study_run_settings_json) is embedded, and the
 * provenance (version.h) with command when it is not NULL. Caller frees. */
char *lnl_study_result_to_json(const LnlStudyResult *r, const char *settings_json, const char *command);
/* Reads a record back (`what` names the source in messages). */
int lnl_study_result_from_json(LnlStudyResult *r, const char *line, const char *what, LnlErr *e);
void lnl_study_result_free(LnlStudyResult *r);

/* Median of the finite values of v[0..n-1] (v is reordered); NAN if there are none. */
double lnl_study_median(double *v, int n);
/* LR sensitivity (Wortsman et al. 2023; docs/STUDY.md), in two steps that the findings and
 * `lnlab screen --study` share. The loss a run counts at in a learning-rate sweep:
 * min(final val loss, loss at init), and the loss at init for a run that diverged or has no
 * finite val loss. */
double lnl_study_sweep_loss(const LnlStudyResult *r);
/* One seed's sensitivity from its sweep losses loss[0..n-1] (one per learning rate): the mean of
 * loss - the smallest of them; NAN if one is not finite or n < 2. */
double lnl_study_lr_sensitivity(const double *loss, int n);
/* Whether two runs share a setting: the same options (variant), dt, shape (depth, named size) and
 * precision; preset, learning rate and seed aside. Runs of two settings are never seeds of one. */
int lnl_study_same_setting(const LnlStudyRun *a, const LnlStudyRun *b);
/* What tells r's setting apart beside dt and shape, for figure names and labels: its variant, and
 * its precision when not fp32 ("noen", "bf16", "noen+bf16"; "" for a plain fp32 run). */
void lnl_study_setting_tag(const LnlStudyRun *r, char *buf, size_t n);
/* The LR sensitivity of each seed of preset at run u0's setting that has a run (rs[i] with have[i])
 * at every one of lrs[0..nl), into out (room for n); returns how many seeds. With any_trained: set
 * to whether a run of those seeds trained, up to each seed's first missing learning rate. */
int lnl_study_lr_sensitivities(const LnlStudyResult *rs, const int *have, int n, const LnlStudyRun *u0,
                               const char *preset, const double *lrs, int nl, double *out, int *any_trained);
/* The better shape of a growth fit: "exponential", "linear" / "quadratic", or "none". */
const char *lnl_study_growth_better(const LnlGrowthFit *f, int variance);

/* OUT/results.jsonl: one record per finished run. */
typedef struct {
    int n;
    char **ids, **lines; /* owned */
} LnlStudyResults;
/* A missing file is an empty set; a line that is not a record is an error naming the line. */
int lnl_study_results_load(LnlStudyResults *s, const char *path, LnlErr *e);
int lnl_study_results_find(const LnlStudyResults *s, const char *id); /* index or -1 */
void lnl_study_results_put(LnlStudyResults *s, const char *id, const char *line);
/* Writes the records atomically: runs' records in run order, then any others as they were. */
int lnl_study_results_save(const LnlStudyResults *s, const char *path, const LnlStudyRun *runs, int nruns,
                           LnlErr *e);
void lnl_study_results_free(LnlStudyResults *s);

#endif
