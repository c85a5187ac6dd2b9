/* Running a study's runs as child processes: `lnlab train` then `lnlab probe --json` for each,
 * N at a time, resuming what an interrupted study left (plan.h decides what), one record per
 * finished run into the results file, a live line, and a clean stop on SIGINT/SIGTERM. It plans
 * nothing (plan.h) and writes no report (report.h). */
#ifndef LNL_STUDY_CHILDREN_H
#define LNL_STUDY_CHILDREN_H

#include "plan.h"
#include "study.h"

typedef struct {
    const LnlStudyConfig *c;
    const LnlStudyOpts *o;
    const LnlStudyRun *runs;
    int nruns;
    LnlStudyResults *res;     /* the records: each finished run's is added and res saved to results_path */
    const char *results_path;
    const char *val_data;     /* the probe's data */
    int jobs, threads;        /* runs at a time, threads per run */
    /* out */
    int done_now;             /* runs finished (with a record) */
    int failed;               /* runs that ended with an error (no record) */
    char first_failure[1024]; /* "id: message" of the first */
    int stopped;              /* the signal (SIGINT, SIGTERM) that stopped the runs, or 0 */
} LnlStudyChildren;

/* Runs runs[order[0..n)]; returns 0 (some may have failed, or a signal stopped them: see ch), or -1
 * on an error of the study itself (e). Running children are stopped (SIGTERM) and waited for
 * before it returns. */
int lnl_study_children_run(LnlStudyChildren *ch, const int *order, int n, LnlErr *e);

/* Runs exe with argv to the end, inheriting stdout and stderr (for prepare). Returns its exit
 * status, or -1. */
int lnl_study_child_wait(const char *exe, const LnlArgv *a, LnlErr *e);

#endif
