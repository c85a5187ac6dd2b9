/* RUN/result.json: how a training run ended (finished, diverged, or stopped early by a signal or
 * --stop-after, resumable), in one small JSON object written atomically when the run ends
 * (format: docs/USAGE.md, "result.json"). A run in progress has none. */
#ifndef LNL_RUN_RESULT_H
#define LNL_RUN_RESULT_H

#include "train.h"

#define LNL_RESULT_FILE "result.json"
#define LNL_RESULT_FORMAT "lnlab.result"
/* 2 added "status" and "stop_reason" (and files of stopped runs); version 1 files have neither and
 * describe finished or diverged runs only. 3 added status "failed" with "error", and "run_id";
 * "unigram_val_loss" and "trained" came later in version 3 (readers treat them as optional). */
#define LNL_RESULT_VERSION 3

/* Values of "status". */
#define LNL_RESULT_FINISHED "finished"
#define LNL_RESULT_DIVERGED "diverged"
#define LNL_RESULT_STOPPED "stopped"
#define LNL_RESULT_FAILED "failed"

int lnl_train_write_result(const char *out_dir, const LnlTrainOpts *o, const LnlTrainResult *res, LnlErr *e);
/* Removes RUN/result.json of an earlier run or invocation (a run starting or resuming has not
 * ended); a missing file is not an error. */
int lnl_train_remove_result(const char *out_dir, LnlErr *e);

#endif
