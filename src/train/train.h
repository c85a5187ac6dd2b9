/* The training loop: batches from a loader (sampled or in order), gradient accumulation,
 * clipping + AdamW, the LR schedule, periodic evaluation and checkpoints, RUN/log.jsonl, a
 * live progress line and samples of the model on the console. */
#ifndef LNL_TRAIN_H
#define LNL_TRAIN_H

#include "../diag/monitor.h"
#include "../dist/dist.h"
#include "../data/tokenizer.h"
#include "../model/model.h"
#include "checkpoint.h"
#include "optim.h"
#include "schedule.h"

/* The console's samples (LnlTrainOpts.sample_every): softmax temperature and top-k, as numbers
 * and as the text of lnlab train's --help. nanoGPT's sample.py suggests 0.8 for a readable
 * sample; its top-k of 200 is for GPT-2's 50257 tokens, 40 keeps a byte model's 257 from its tail. */
#define LNL_TRAIN_SAMPLE_TEMPERATURE 0.8
#define LNL_TRAIN_SAMPLE_TOP_K 40
#define LNL_TRAIN_SAMPLE_SETTINGS_(t, k) "temperature " #t ", top-k " #k
#define LNL_TRAIN_SAMPLE_SETTINGS_X(t, k) LNL_TRAIN_SAMPLE_SETTINGS_(t, k)
#define LNL_TRAIN_SAMPLE_SETTINGS LNL_TRAIN_SAMPLE_SETTINGS_X(LNL_TRAIN_SAMPLE_TEMPERATURE, LNL_TRAIN_SAMPLE_TOP_K)

typedef struct {
    const char *data; /* prepared directory (train/val splits) or one shard (no eval) */
    const char *out;  /* run directory */
    int B, T;
    long steps;
    long grad_accum; /* micro-batches per optimizer step */
    LnlSchedule sched;
    LnlAdamW adam;
    float z_loss;      /* z-loss coefficient (LnlModel.z_loss_coef; 0 = off): step records get z_loss */
    uint64_t seed;
    LnlDataOrder data_order; /* training batches: sampled (random) or llm.c's order (loader.h) */
    uint64_t data_seed;      /* random order: the batches' seed, independent of seed */
    long eval_every;   /* 0 = only at the end */
    long eval_batches; /* batches of the val split per evaluation; 0 = all */
    long checkpoint_every; /* 0 = none */
    int quiet;
    double peak_flops; /* this process's peak FLOP/s (peak.h), the MFU's denominator; 0: no MFU shown */
    long sample_every; /* rank 0 prints a sample of the model to stderr every K steps (0 = never) */
    int sample_tokens; /* tokens per sample; 1 + sample_tokens <= the model's n_positions */
    const LnlTokenizer *sample_tok; /* decodes the samples (needed when sample_every > 0) */
    int adapt_threads; /* follow the machine's load with the thread count (lnl_kernels_adapt) */
    LnlMonitorOpts monitor;   /* diagnostics records, spike skipping, divergence threshold */
    const char *hparams_json; /* the training settings, stored in RUN/config.json */
    long keep_checkpoints;         /* keep the newest K complete checkpoints; 0 = all */
    long stop_after;               /* stop as on SIGTERM after this step; 0 = never */
    const LnlTrainState *resume;   /* continue from this state (checkpoint.h); NULL = a fresh run */
    LnlDist *dist;                 /* MPI ranks, B rows each of every batch (dist.h); NULL = one process */
    const char *run_id;            /* the run's id: new for a fresh run (lnl_train_new_run_id), from
                                      RUN/config.json when resumed ("" for runs of older lnlab) */
    int overwrite;                 /* a fresh run may replace a run already in `out` (deleting it) */
    const char *command;           /* the command line, for result.json's provenance (NULL: none) */
} LnlTrainOpts;

typedef struct {
    long steps_done;
    float final_loss;
    double final_val_loss; /* NAN if there was no evaluation */
    double tokens_per_s;   /* median over the run */
    int diverged;
    long diverged_step;
    char cause[128];
    int stopped;     /* stopped early by SIGINT/SIGTERM or stop_after, after saving a checkpoint */
    int stop_signal; /* the signal (0 for stop_after) */
    int failed;      /* stopped by an error the run cannot go on after (a record not written) */
    char error[1024]; /* that error, as lnl_train's e has it */
    long skipped_steps;    /* updates skipped as spikes (LnlMonitorOpts.skip_z) */
    double min_loss;       /* running minimum of the training loss */
    double unigram_val_loss; /* val loss of the train split's token frequencies (lnl_unigram_loss); NAN: no val */
} LnlTrainResult;

/* A run trained when its final val loss is at least this many nats below the unigram loss of its
 * data: a model that stopped at the token frequencies (collapsed) sits at the unigram loss. */
#define LNL_TRAINED_MARGIN 0.3
/* 1: trained, 0: did not (diverged, or val loss not that far below the unigram loss), -1: unknown
 * (no val split or no final evaluation). */
int lnl_trained(int diverged, double final_val_loss, double unigram_val_loss);

/* Exit code of a run that stopped as diverged: non-finite loss or gradients, or a loss above the
 * divergence threshold (LnlMonitorOpts.diverge_loss). Errors exit 1, usage errors 2. */
#define LNL_EXIT_DIVERGED 3

/* Trains m (already initialized or loaded). Returns 0 when the run finished, diverged or stopped
 * early (see res; each writes RUN/result.json, run_result.h), -1 on an error. */
int lnl_train(LnlModel *m, const LnlTrainOpts *o, LnlTrainResult *res, LnlErr *e);
/* A new random run id (LNL_RUN_ID_LEN hex digits) into id (room for LNL_RUN_ID_LEN + 1). */
#define LNL_RUN_ID_LEN 16
/* RUN/.lock: held by the process training into RUN (lnl_dir_lock). */
#define LNL_RUN_LOCK ".lock"
int lnl_train_new_run_id(char *id, LnlErr *e);

#endif
