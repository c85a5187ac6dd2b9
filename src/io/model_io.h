/* Model files: safetensors with Hugging Face GPT-2 names (docs/FORMATS.md), llm.c's model file
 * (version 3, for plain Pre-LN + LayerNorm) and lnlab's extension of it for every other
 * placement. Loading resolves the config (file metadata, else config.json beside the file, else
 * the tensor shapes), then lets the caller override it, then builds and fills the model. */
#ifndef LNL_MODEL_IO_H
#define LNL_MODEL_IO_H

#include "../model/model.h"

/* lnlab's extension of llm.c's model file: same magic and header, this version number,
 * header int [8] = byte length of the config JSON that follows the header (padded with spaces
 * to a multiple of 4), then every tensor view in table order, fp32, in-memory layout. */
#define LNL_LLMC_VERSION_LNLAB 1003
#define LNL_LLMC_H_CONFIG_BYTES 8

#define LNL_META_CONFIG "lnlab.config"
/* The CRC-32 (src/common/crc32.h) of the LNL_META_CONFIG string's bytes, 8 lowercase hex digits,
 * written beside it by lnl_model_save_safetensors. A file that has it must have a config that
 * matches it; files without it (older lnlab, Hugging Face) load unchecked. */
#define LNL_META_CONFIG_CRC "lnlab.config.crc32"
/* Metadata key of the id of the training run that wrote the file (train.h); absent in other files. */
#define LNL_META_RUN_ID "lnlab.run_id"

/* Called with the resolved config before the model is built; may change it (CLI overrides). */
typedef int (*LnlConfigHook)(LnlConfig *c, void *ctx, LnlErr *e);

/* Loads a model file (format by content). The model is created inside. */
int lnl_model_load(LnlModel *m, const char *path, LnlConfigHook hook, void *ctx, LnlErr *e);
/* Saves by extension: ".safetensors" or ".bin" (llm.c v3 when the config is plain Pre-LN with
 * LayerNorm, else the lnlab extension). Atomic. extra_key/extra_val add one metadata entry to
 * safetensors (may be NULL). */
int lnl_model_save(const LnlModel *m, const char *path, LnlErr *e);
int lnl_model_save_safetensors(const LnlModel *m, const char *path, const char *extra_key, const char *extra_val,
                               LnlErr *e);
/* Whether a config is exactly GPT-2's Pre-LN with LayerNorm, no logit softcap (what llm.c's file can hold). */
int lnl_config_is_plain_gpt2(const LnlConfig *c);

/* Writes/reads a tensor in file layout: hf_transpose views are (in, out) in files. */
void lnl_view_to_file(const LnlTensorView *v, const float *mem, float *file);
void lnl_view_from_file(const LnlTensorView *v, const float *file, float *mem);

#endif
