/* Evaluation: the mean loss of a model over the batches of a loader (a forward with targets per
 * batch, no backward), shared by `lnlab eval` and the trainer's periodic validation. It reads no
 * files and checks no tokens: open the loader with the model's vocab so that it does. */
#ifndef LNL_EVAL_H
#define LNL_EVAL_H

#include <stdint.h>

#include "../data/loader.h"
#include "../model/model.h"

/* What one evaluation covered. */
typedef struct {
    double loss;      /* mean loss per target token over the batches; perplexity = exp(loss) */
    long batches;     /* batches evaluated */
    uint64_t tokens;  /* target tokens evaluated: batches * B * T */
} LnlEvalResult;

/* Rewinds the loader, then evaluates min(max_batches, lnl_loader_num_batches) batches, or all of
 * them for max_batches < 0 (one pass over the split, never wrapping). The model's activations
 * must be allocated for at least the loader's B x T. Every batch has B*T targets, so the mean of
 * the per-batch means is the per-token mean; it is accumulated in double. A non-finite batch
 * loss makes the result non-finite (the caller decides what that means). Leaves the loader
 * after the last batch read. Returns the loss; fills r when non-NULL. */
double lnl_eval_loss(LnlModel *m, LnlLoader *l, long max_batches, LnlEvalResult *r);

#endif
