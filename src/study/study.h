/* Running a study: each run is `lnlab train` then `lnlab probe --json` as child processes, N at
 * a time, into OUT/runs/<id>/; a run is finished once its record is in OUT/results.jsonl, so an
 * interrupted study continues where it stopped and never repeats a finished run. Then the
 * report (report.h). */
#ifndef LNL_STUDY_H
#define LNL_STUDY_H

#include "config.h"

typedef struct {
    const char *exe; /* the lnlab executable the runs use ("/proc/self/exe": this very binary) */
    const char *out; /* study directory */
    int quiet;       /* no live line */
    /* lnlab study --mpi (study_mpi.h) runs one shard per process: with nshards > 1 this process
     * trains only the pending runs at positions shard, shard + nshards, ... of the execution
     * order, saves its records to OUT/results.shard<shard>.jsonl, writes no report, and leaves
     * the cleanup of stale temporary files to the final pass. 0 or 1: the whole study. */
    int shard, nshards;
    const char *command; /* the study's command line, for the records' and the report's provenance */
} LnlStudyOpts;

typedef struct {
    int runs;      /* runs in the study's grids */
    int reused;    /* finished before this invocation */
    int trained;   /* finished now */
    int failed;    /* ended with an error (no record; retried next time) */
    double wall_s; /* this invocation, report included */
    int jobs, threads;
    char *verdicts;       /* the findings' conclusions, one per line (caller frees; NULL if no report) */
    int plots_drawn;      /* PNG + SVG files written */
    char plots_why[512];  /* why there are no plots, or "" */
} LnlStudySummary;

/* Exit codes besides 0 (every run has a record) and 1 (an error, or some runs failed). */
#define LNL_STUDY_EXIT_USAGE 2 /* bad settings, or OUT holds a study with other settings */

/* Runs what is missing and writes the report. Returns the process exit code: 0, 1, 2, or
 * 128 + signal after SIGINT/SIGTERM (children stopped, finished runs kept); e says why when
 * it is not 0. */
int lnl_study_run(const LnlStudyConfig *c, const LnlStudyOpts *o, LnlStudySummary *sum, LnlErr *e);
/* Prepares the study's data with `lnlab prepare` if it does not exist yet (what lnl_study_run
 * does first). */
int lnl_study_prepare_data(const LnlStudyConfig *c, const LnlStudyOpts *o, LnlErr *e);

#endif
