/* The training loop: batches from a loader, gradient accumulation, clipping + AdamW, the LR
 * schedule, periodic evaluation and checkpoints, RUN/log.jsonl and a live progress line. */
#ifndef LNL_TRAIN_H
#define LNL_TRAIN_H

#include "../model/model.h"
#include "optim.h"
#include "schedule.h"

typedef struct {
    const char *data; /* prepared directory (train/val splits) or one shard (no eval) */
    const char *out;  /* run directory */
    int B, T;
    long steps;
    long grad_accum; /* micro-batches per optimizer step */
    LnlSchedule sched;
    LnlAdamW adam;
    uint64_t seed;
    long eval_every;   /* 0 = only at the end */
    long eval_batches; /* batches of the val split per evaluation; 0 = all */
    long checkpoint_every; /* 0 = none */
    int quiet;
    const char *hparams_json; /* the training settings, stored in RUN/config.json */
} LnlTrainOpts;

typedef struct {
    long steps_done;
    float final_loss;
    double final_val_loss; /* NAN if there was no evaluation */
    double tokens_per_s;   /* median over the run */
    int diverged;
    long diverged_step;
    char cause[128];
} LnlTrainResult;

/* Exit code of a run that stopped because the loss or gradients became non-finite. */
#define LNL_EXIT_DIVERGED 3

/* Trains m (already initialized or loaded). Returns 0 on success or divergence (see res),
 * -1 on an error. */
int lnl_train(LnlModel *m, const LnlTrainOpts *o, LnlTrainResult *res, LnlErr *e);

#endif
