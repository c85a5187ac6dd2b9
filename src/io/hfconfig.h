/* Hugging Face GPT-2 config.json: the sizes of a model file that carries no lnlab metadata.
 * Reads only the GPT-2 keys (model_type "gpt2"); other architectures are rejected. */
#ifndef LNL_HFCONFIG_H
#define LNL_HFCONFIG_H

#include "../common/util.h"

#define LNL_HFCONFIG_NAME "config.json"
#define LNL_HFCONFIG_DEFAULT_EPS 1e-5 /* GPT2Config's layer_norm_epsilon */

typedef struct {
    int n_layer;               /* "n_layer" */
    int n_head;                /* "n_head"; divides n_embd */
    int n_embd;                /* "n_embd" */
    int n_positions;           /* "n_positions", else the older "n_ctx" */
    int vocab_size;            /* "vocab_size" */
    int n_inner;               /* "n_inner"; 4 * n_embd when absent or null */
    double layer_norm_epsilon; /* "layer_norm_epsilon"; LNL_HFCONFIG_DEFAULT_EPS when absent */
} LnlHfConfig;

/* Reads and range-checks config.json; errors name the file and the field. A field that would make
 * the model compute something lnlab does not (an activation other than GELU's tanh approximation,
 * scale_attn_weights false, scale_attn_by_inverse_layer_idx, reorder_and_upcast_attn or
 * add_cross_attention true, tie_word_embeddings false, pruned heads) is an error naming the field
 * and its value; other unknown keys (dropout rates, token ids, ...) are ignored. */
int lnl_hfconfig_read(const char *path, LnlHfConfig *out, LnlErr *e);
/* The path of config.json in the directory of model_path if that file exists, else NULL.
 * Caller frees. */
char *lnl_hfconfig_beside(const char *model_path);

#endif
