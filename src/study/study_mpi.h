/* lnlab study --mpi: the runs of one study spread over the processes of an MPI job (typically
 * one per host, each running its runs N at a time as usual), their records gathered into one
 * OUT/results.jsonl and one report by rank 0. Not a scheduler: the runs are dealt out round
 * robin in the study's execution order, once. */
#ifndef LNL_STUDY_MPI_H
#define LNL_STUDY_MPI_H

#include "../dist/dist.h"
#include "study.h"

/* Rank 0 merges records left by an interrupted earlier job (OUT/results.shard*.jsonl) and
 * prepares the data; then every rank runs its shard (LnlStudyOpts.shard/nshards); then rank 0
 * merges the shards' records and writes the report (the final pass of lnl_study_run, which
 * finds every run finished, or retries the failed ones). On one process this is lnl_study_run.
 * Returns the exit code as lnl_study_run does; sum is complete on rank 0. */
int lnl_study_run_mpi(const LnlStudyConfig *c, const LnlStudyOpts *o, LnlDist *d, LnlStudySummary *sum, LnlErr *e);

#endif
