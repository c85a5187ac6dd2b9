/* The study's tidy export for pandas and friends: OUT/runs.csv (one row per run: settings and
 * figures) and OUT/metrics.csv (one row per run, step, layer, source, metric, value: the training
 * and eval curves, every diag record's per-layer figures, and the final probe's). Written
 * atomically with the report. Columns: docs/STUDY.md, "Tidy export". */
#ifndef LNL_STUDY_EXPORT_H
#define LNL_STUDY_EXPORT_H

#include "results.h"

/* rs[i] is valid where have[i]; each run's log is read from OUT/runs/<id>/log.jsonl where it exists. */
int lnl_study_export(const char *out, const LnlStudyResult *rs, const int *have, int n, LnlErr *e);

#endif
