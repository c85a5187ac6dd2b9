/* RUN/result.json: the outcome of every training run, finished or diverged, in one small JSON
 * object written atomically at the end of the run (format: docs/USAGE.md, "result.json"). */
#ifndef LNL_RESULT_H
#define LNL_RESULT_H

#include "train.h"

int lnl_train_write_result(const char *out_dir, const LnlTrainOpts *o, const LnlTrainResult *res, LnlErr *e);

#endif
