/* Planning a study's runs: the order they run in, where each lives (OUT/runs/<id>/), what an
 * earlier invocation left of it, the command line of each child (prepare, train, resume, probe)
 * and the threads each gets. It starts nothing (children.h does). */
#ifndef LNL_STUDY_PLAN_H
#define LNL_STUDY_PLAN_H

#include "config.h"
#include "results.h"

/* A child's argument list: v[0..n) and a NULL after them. */
typedef struct {
    char *v[80];
    int n;
} LnlArgv;
void lnl_argv_add(LnlArgv *a, const char *fmt, ...) LNL_PRINTF(2, 3);
void lnl_argv_free(LnlArgv *a);

/* OUT/runs/<id> and a file in it (caller frees). */
char *lnl_study_run_dir(const char *out, const LnlStudyRun *r);
char *lnl_study_run_file(const char *out, const LnlStudyRun *r, const char *name);

/* A run's work for the ETA: steps x (depth + 1) x width^2. */
double lnl_study_run_units(const LnlStudyConfig *c, const LnlStudyRun *r);

/* The runs of runs[0..nruns) that have no record in res, in execution order, into order (room for
 * nruns): seed by seed (a stopped study holds whole comparisons), the costliest first within a seed
 * (fewer idle jobs at the end); with nshards > 1 only those at positions shard, shard + nshards, ...
 * Returns how many; *reused counts the runs with a record. */
int lnl_study_plan_order(const LnlStudyConfig *c, const LnlStudyRun *runs, int nruns, const LnlStudyResults *res,
                         int shard, int nshards, int *order, int *reused);

/* Runs at a time and threads per run: the config's, or the CPUs available (or $OMP_NUM_THREADS)
 * divided by the jobs. The threads depend on the asked jobs, not on how many runs are left, so a
 * resumed study computes exactly what an uninterrupted one would. */
void lnl_study_plan_threads(const LnlStudyConfig *c, int *jobs, int *threads);

/* Refuses (exit 2's error) a record of one of runs in res made under settings other than the
 * run's (lnl_study_run_settings_json: the study's, with the run's precision). */
int lnl_study_plan_check_settings(const char *out, const LnlStudyConfig *c, const LnlStudyRun *runs, int nruns,
                                  const LnlStudyResults *res, LnlErr *e);

/* What to do with a run that has no record, from what its directory holds. */
typedef enum {
    LNL_RUN_FRESH,    /* nothing usable: (re)start it from scratch */
    LNL_RUN_PROBE,    /* its training finished under the same settings: probe it */
    LNL_RUN_DIVERGED, /* it diverged under the same settings: write its record */
    LNL_RUN_RESUME    /* it has a checkpoint made under the same settings: lnlab train --resume */
} LnlRunState;
#define LNL_STUDY_RUN_SETTINGS "study-settings.json" /* the settings a run directory was started with */
LnlRunState lnl_study_run_state(const char *dir, const char *settings_json, const LnlStudyConfig *c);

/* The children's command lines (argv[0] "lnlab"). */
void lnl_study_prepare_argv(LnlArgv *a, const LnlStudyConfig *c);
void lnl_study_train_argv(LnlArgv *a, const LnlStudyConfig *c, const LnlStudyRun *r, const char *dir);
void lnl_study_resume_argv(LnlArgv *a, const LnlStudyConfig *c, const char *dir);
void lnl_study_probe_argv(LnlArgv *a, const LnlStudyConfig *c, const char *model, const char *val_data, int with_sens);

#endif
