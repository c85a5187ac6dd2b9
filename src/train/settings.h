/* The training settings of `lnlab train` (batch, steps, learning-rate schedule, AdamW, seeds, data
 * order, evaluation, checkpoints), each written once, as one row below. From the rows come the
 * struct LnlTrainSettings and its defaults, train's flags (src/cli/train_resume.h), the entries of
 * RUN/config.json's "train" object and their replay on --resume, and the study config's fields for
 * the same settings (src/study/config.c). Not the flags that are not training settings in this
 * sense: paths (--data, --out, --init-from), one invocation's console (--quiet, --sample-every,
 * --sample-tokens), how the arithmetic is spread (--zero, --adapt-threads), --overwrite (all in
 * cmd_train.c), the model's (model_flags.h, --seq included), the monitor's (monitor_flags.h) and
 * resume's own (train_resume.h). */
#ifndef LNL_TRAIN_SETTINGS_H
#define LNL_TRAIN_SETTINGS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "../common/util.h"
#include "../data/loader.h"

/* A row: X(field, flag, type, lo, hi, default, choices, help).
 *   field    the C member of LnlTrainSettings and the JSON key in RUN/config.json's "train" object
 *            and in a study config; flag is "--" + field with '-' for '_' (--resume's replay
 *            finds the key from the flag by that rule; tests/unit/test_settings.c checks it)
 *   type     INT (long long), FLOAT (double) or STR (const char *)
 *   lo, hi   inclusive range of numbers (STR: 1, 0, no range)
 *   choices  "a|b|c" for STR, else NULL
 * The order of LNL_TRAIN_SETTINGS is the order of the flags in `lnlab train --help` and of the
 * entries in config.json. A study field names its row (LNL_TRAIN_SETTING) and keeps its own place
 * in the study's table, since the study's order is that of its config files. */
#define LNL_TS_batch(X) X(batch, "--batch", INT, 1, 1 << 20, 8, NULL, "sequences per micro-batch B (per process under mpirun)")
#define LNL_TS_total_batch(X)                                                                                       \
    X(total_batch, "--total-batch", INT, 0, 1LL << 40, 0, NULL,                                                     \
      "tokens per optimizer step, all processes (multiple of processes*B*T; 0 = processes*B*T)")
#define LNL_TS_steps(X) X(steps, "--steps", INT, 1, 1LL << 40, 100, NULL, "optimizer steps")
#define LNL_TS_lr(X) X(lr, "--lr", FLOAT, 0, 10, 6e-4, NULL, "peak learning rate")
#define LNL_TS_min_lr_frac(X) \
    X(min_lr_frac, "--min-lr-frac", FLOAT, 0, 1, 0.1, NULL, "final learning rate as a fraction of --lr")
#define LNL_TS_warmup(X) X(warmup, "--warmup", INT, 0, 1LL << 40, 0, NULL, "linear warmup steps")
#define LNL_TS_schedule(X) \
    X(schedule, "--schedule", STR, 1, 0, "cosine", "cosine|linear|constant", "decay after warmup")
#define LNL_TS_beta1(X) X(beta1, "--beta1", FLOAT, 0, 0.999999, 0.9, NULL, "AdamW beta1")
#define LNL_TS_beta2(X) X(beta2, "--beta2", FLOAT, 0, 0.999999, 0.95, NULL, "AdamW beta2")
#define LNL_TS_adam_eps(X) X(adam_eps, "--adam-eps", FLOAT, 0, 1, 1e-8, NULL, "AdamW epsilon")
#define LNL_TS_weight_decay(X) \
    X(weight_decay, "--weight-decay", FLOAT, 0, 10, 0.1, NULL, "decoupled weight decay (matrices and embeddings only)")
#define LNL_TS_grad_clip(X) X(grad_clip, "--grad-clip", FLOAT, 0, 1e9, 1.0, NULL, "max global gradient norm (0 = off)")
#define LNL_TS_z_loss(X)                                                                                  \
    X(z_loss, "--z-loss", FLOAT, 0, 1, 0, NULL,                                                            \
      "z-loss coefficient: the objective adds COEF * mean (log Z)^2 of the softmax normalizer Z (PaLM: 1e-4; " \
      "0 = off); the log's loss stays the cross-entropy, step records add z_loss")
#define LNL_TS_precision(X)                                                                              \
    X(precision, "--precision", STR, 1, 0, "fp32", "fp32|bf16",                                            \
      "the matrix products' arithmetic: fp32, or bf16 products with fp32 accumulation and fp32 master "   \
      "weights (AVX512-BF16; without the flag, what LNLAB_BF16 says)")
#define LNL_TS_seed(X) X(seed, "--seed", INT, 0, 1LL << 62, 1337, NULL, "seed for the init")
#define LNL_TS_data_order(X)                                                                                     \
    X(data_order, "--data-order", STR, 1, 0, "random", LNL_DATA_ORDERS,                                          \
      "training batches: rows of T+1 tokens at random offsets drawn from (--data-seed, step, micro-batch), as " \
      "nanoGPT, or consecutive batches in llm.c's order")
#define LNL_TS_data_seed(X)                                                                              \
    X(data_seed, "--data-seed", INT, 0, (double)LNL_DATA_SEED_MAX, LNL_DATA_SEED_DEFAULT, NULL,          \
      "seed of the random batches, independent of --seed: runs with the same data seed see the same batches")
#define LNL_TS_eval_every(X) \
    X(eval_every, "--eval-every", INT, 0, 1LL << 40, 0, NULL, "evaluate on the val split every K steps (0 = at the end only)")
#define LNL_TS_eval_batches(X) \
    X(eval_batches, "--eval-batches", INT, 0, 1LL << 40, 20, NULL, "val batches per evaluation (0 = the whole split)")
#define LNL_TS_checkpoint_every(X)                                                        \
    X(checkpoint_every, "--checkpoint-every", INT, 0, 1LL << 40, 0, NULL,                 \
      "write RUN/checkpoints/model_STEP.safetensors every K steps (0 = off)")

#define LNL_TRAIN_SETTINGS(X)                                                                                     \
    LNL_TS_batch(X) LNL_TS_total_batch(X) LNL_TS_steps(X) LNL_TS_lr(X) LNL_TS_min_lr_frac(X) LNL_TS_warmup(X)     \
    LNL_TS_schedule(X) LNL_TS_beta1(X) LNL_TS_beta2(X) LNL_TS_adam_eps(X) LNL_TS_weight_decay(X)                  \
    LNL_TS_grad_clip(X) LNL_TS_z_loss(X) LNL_TS_precision(X) LNL_TS_seed(X) LNL_TS_data_order(X) LNL_TS_data_seed(X) LNL_TS_eval_every(X)              \
    LNL_TS_eval_batches(X) LNL_TS_checkpoint_every(X)

/* One column of the row of setting `name`, a constant expression: LNL_TRAIN_SETTING(steps, HI).
 * KEY is the field as a string; TYPE the type's token (INT, FLOAT, STR). */
#define LNL_TRAIN_SETTING(name, COLUMN) LNL_TS_##name(LNL_TS_COL_##COLUMN)
#define LNL_TS_COL_KEY(field, flag, type, lo, hi, def, choices, help) #field
#define LNL_TS_COL_FLAG(field, flag, type, lo, hi, def, choices, help) flag
#define LNL_TS_COL_TYPE(field, flag, type, lo, hi, def, choices, help) type
#define LNL_TS_COL_LO(field, flag, type, lo, hi, def, choices, help) lo
#define LNL_TS_COL_HI(field, flag, type, lo, hi, def, choices, help) hi
#define LNL_TS_COL_CHOICES(field, flag, type, lo, hi, def, choices, help) choices

#define LNL_TS_CTYPE_INT long long
#define LNL_TS_CTYPE_FLOAT double
#define LNL_TS_CTYPE_STR const char *

typedef struct {
#define LNL_TS_MEMBER(field, flag, type, lo, hi, def, choices, help) LNL_TS_CTYPE_##type field;
    LNL_TRAIN_SETTINGS(LNL_TS_MEMBER)
#undef LNL_TS_MEMBER
} LnlTrainSettings;

/* Each setting's index in lnl_train_settings: LNL_TS_ID_steps, ... */
enum {
#define LNL_TS_ID(field, flag, type, lo, hi, def, choices, help) LNL_TS_ID_##field,
    LNL_TRAIN_SETTINGS(LNL_TS_ID)
#undef LNL_TS_ID
    LNL_TRAIN_NSETTINGS
};

typedef enum { LNL_TS_INT, LNL_TS_FLOAT, LNL_TS_STR } LnlTrainSettingType;

/* A row as data, for the code that walks every setting. */
typedef struct {
    const char *key, *flag;
    LnlTrainSettingType type;
    size_t off; /* of the member in LnlTrainSettings */
    double lo, hi;
    const char *choices, *help;
} LnlTrainSetting;
extern const LnlTrainSetting lnl_train_settings[LNL_TRAIN_NSETTINGS];

/* The setting whose key is `key`, or NULL. */
const LnlTrainSetting *lnl_train_setting_find(const char *key);
/* Every setting at its default. */
void lnl_train_settings_default(LnlTrainSettings *s);
/* Adds every setting to RUN/config.json's "train" object under its key, in table order. */
void lnl_train_settings_to_json(const LnlTrainSettings *s, cJSON *train);
/* The checks that take two settings together (warmup < steps); messages name the flags. */
int lnl_train_settings_check(const LnlTrainSettings *s, LnlErr *e);

#endif
