/* The study's report: OUT/summary.md (the runs table and the findings, computed from the
 * numbers), OUT/report.html (the same on one self-contained page, with the plots inline) and
 * OUT/plots/ (plots.h). Every file is written atomically. */
#ifndef LNL_STUDY_REPORT_H
#define LNL_STUDY_REPORT_H

#include "config.h"
#include "results.h"

typedef struct {
    int failed;                /* runs that ended with an error in this invocation */
    const char *first_failure; /* "id: message" of the first */
    const char *command;       /* the study's command line (provenance), or NULL */
    int jobs, threads;         /* runs at a time, threads per run */
    char *verdicts;            /* out: the findings' conclusions, one per line (caller frees) */
    int plots_drawn;           /* out: plot files written */
    char plots_why[512];       /* out: why there are no plots, or "" */
} LnlStudyReportInfo;

/* Writes the report of the given runs (those with a record in res). */
int lnl_study_report(const LnlStudyConfig *c, const char *out, const LnlStudyRun *runs, int nruns,
                     const LnlStudyResults *res, LnlStudyReportInfo *info, LnlErr *e);

#endif
