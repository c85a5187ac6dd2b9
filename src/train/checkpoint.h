/* Checkpoints of a training run and the training state saved beside them, so that
 * `lnlab train --resume RUN` continues bit for bit (docs/FORMATS.md, "Checkpoints and the
 * training state"). Not the training loop (train.h) and not the model file format (model_io.h).
 *
 *   RUN/checkpoints/model_SSSSSSSS.safetensors  the model after step S (metadata lnlab.step = S)
 *   RUN/checkpoints/state_SSSSSSSS.safetensors  everything else the loop needs after step S
 *
 * S is the number of optimizer steps done, 8 digits. Both files are written atomically and carry
 * per-tensor checksums (safetensors.h, LNL_ST_CRC_KEY); the model is written first, so a
 * checkpoint is complete when its state file exists. The state file is a safetensors file with
 * __metadata__ {"format": LNL_STATE_FORMAT, "version": "3", "step": "S", "run_id": ID (the run's id,
 * RUN/config.json), "data.crc32": X (8 hex digits: lnl_train_data_crc32 of the train and val
 * splits), "data.order": "random" or "sequential" (lnl_data_order_name), "data.seed": D (decimal:
 * the data seed, which random order's batches are a function of)} and the tensors
 *
 *   adam.m, adam.v   F32 (n)   AdamW moments, laid out like the model's parameter allocation
 *   adam.step        I64 ()    AdamW updates applied (its bias correction)
 *   train.step       I64 ()    optimizer steps done (the schedule position: step S+1 is next)
 *   train.shape      I64 (3)   B, T, micro-batches per step (checked against the run's settings)
 *   train.step_ms    F64 (S)   wall milliseconds of each step so far (the run's median tokens/s)
 *   data.pos         U64 ()    train loader position: token offset of the next batch (sequential
 *                              order; in random order the position is not used and stays 0)
 *   data.tokens      U64 ()    tokens in the train split (a changed data set is refused)
 *   rng.state        U64 (4)   the training loop's xoshiro256** state (src/common/rng.h)
 *   extra.NAME       F64 (k)   running statistics registered by the loop (LnlStateExtra)
 *
 * Reading refuses another format, a newer version, a missing or misshapen tensor, and (through
 * the safetensors reader) any checksum mismatch. */
#ifndef LNL_CHECKPOINT_H
#define LNL_CHECKPOINT_H

#include <stdio.h>

#include "../common/rng.h"
#include "../data/loader.h"
#include "../io/model_io.h"
#include "optim.h"
#include "runlog.h"

#define LNL_CKPT_DIR "checkpoints"
#define LNL_STATE_FORMAT "lnlab.train_state"
/* 2 added the metadata "run_id" (the run the checkpoint belongs to) and "data.crc32" (the data's
 * content); 3 added "data.order" and "data.seed" (a file without them was written by a run in
 * sequential order, the only one before 3). All are optional when reading. */
#define LNL_STATE_VERSION 3
#define LNL_STATE_MAX_EXTRA 16
/* Room for a run id (LNL_RUN_ID_LEN hex digits in runs made now) and its NUL. */
#define LNL_RUN_ID_MAX 40
/* Metadata key of the step in checkpoint model files. */
#define LNL_CKPT_STEP_KEY "lnlab.step"

/* A running statistic of the loop that later steps or log records depend on (a moving average
 * of the loss, a spike counter, ...). Anything of that kind that is not registered here makes a
 * resumed run differ from an uninterrupted one. */
typedef struct {
    const char *name; /* saved as "extra.NAME" */
    double *data;     /* (n) */
    size_t n;
} LnlStateExtra;

/* The loop's own variables that the state file holds: lnl_ckpt_save reads through these
 * pointers, lnl_state_apply writes through them. */
typedef struct {
    long step;          /* optimizer steps done */
    LnlOptState *opt;
    LnlLoader *train;
    LnlRng *rng;
    double *step_ms;    /* (step) when saving; room for every step of the run when applying */
    long max_steps;     /* capacity of step_ms */
    int B, T;
    long grad_accum;
    const char *run_id; /* the run's id ("" or NULL: none) */
    uint32_t data_crc;  /* the data's checksum (checked on apply when the file has one) */
    LnlDataOrder data_order; /* the run's data order and seed (must equal the saved ones on apply; */
    uint64_t data_seed;      /* the seed only matters in random order) */
    LnlStateExtra extra[LNL_STATE_MAX_EXTRA];
    int nextra;
} LnlStateRefs;

/* Adds a running statistic to refs (asserts on overflow of LNL_STATE_MAX_EXTRA). */
void lnl_state_extra(LnlStateRefs *refs, const char *name, double *data, size_t n);

/* A state file read into memory. */
typedef struct {
    long step, adam_step;
    size_t n;               /* floats in each moment */
    float *adam_m, *adam_v; /* (n) */
    int B, T;
    long grad_accum;
    double *step_ms;        /* (step) */
    uint64_t data_pos, data_tokens;
    char run_id[LNL_RUN_ID_MAX]; /* "" in files of lnlab before state version 2 */
    int have_data_crc;
    uint32_t data_crc;
    LnlDataOrder data_order; /* sequential in files before version 3 */
    int have_data_seed;
    uint64_t data_seed;
    LnlRng rng;
    int nextra;
    char *extra_name[LNL_STATE_MAX_EXTRA];
    double *extra[LNL_STATE_MAX_EXTRA];
    size_t extra_n[LNL_STATE_MAX_EXTRA];
} LnlTrainState;

int lnl_state_write(const char *path, const LnlStateRefs *s, LnlErr *e);
int lnl_state_read(const char *path, LnlTrainState *st, LnlErr *e);
void lnl_state_free(LnlTrainState *st);
/* Copies a state into the loop's variables: moments (sizes must match), loader position (the
 * split must have as many tokens as when saved), RNG, step times, and every registered extra
 * (each must be in the file with its size). B, T, micro-batches and the data order must equal
 * the run's, and in random order the data seed too. */
int lnl_state_apply(const LnlTrainState *st, const LnlStateRefs *to, LnlErr *e);

/* "RUN/checkpoints/<kind>_SSSSSSSS.safetensors", kind "model" or "state". Caller frees. */
char *lnl_ckpt_path(const char *run, const char *kind, long step);

/* Writes checkpoint s->step: makes the log durable (lnl_runlog_sync, so it holds every record
 * up to this step; log may be NULL), writes the model, then the state. Then, if keep > 0, removes all but the
 * newest keep complete checkpoints (and any incomplete one older than those). On an error the
 * earlier checkpoints are untouched and the partial files are removed. */
int lnl_ckpt_save(const char *run, const LnlModel *m, const LnlStateRefs *s, LnlRunLog *log, long keep, LnlErr *e);

/* Steps that have a checkpoint model file in RUN/checkpoints, newest first. */
int lnl_ckpt_list(const char *run, long **steps, int *n, LnlErr *e);

/* Loads the newest usable checkpoint of RUN into m and st: the model (checksums verified; hook as
 * for lnl_model_load) and its state, which must agree on the step and the parameter count. A
 * checkpoint that fails is reported on msgs (if not NULL) and the previous one is tried. Fails
 * when none is usable. Leftover temporary files in RUN/checkpoints are removed first. */
int lnl_ckpt_load_latest(const char *run, LnlModel *m, LnlConfigHook hook, void *ctx, LnlTrainState *st, FILE *msgs,
                         LnlErr *e);

#endif
