/* The prepared dataset directory's description, DIR/meta.json (written by `lnlab prepare`,
 * layout in docs/FORMATS.md): its one reader, and the check that a model and the data it is run
 * on share a vocabulary. Not the loader (loader.h) and not the shard format (shard.h). */
#ifndef LNL_DATASET_H
#define LNL_DATASET_H

#include "../common/util.h"

/* Version of the prepared dataset directory (DIR/train.bin, DIR/val.bin, DIR/meta.json); it only
 * grows. A meta.json of a newer version is refused. */
#define LNL_DATASET_FORMAT_VERSION 1
#define LNL_DATASET_FORMAT "lnlab prepared dataset" /* meta.json's "format" */
#define LNL_DATASET_META "meta.json"
#define LNL_DATASET_MAX_VOCAB (1 << 24)

typedef struct {
    int present;       /* 0: there is no meta.json (llm.c or nanoGPT data): nothing is known */
    char *path;        /* the meta.json read, or NULL */
    char tokenizer[32]; /* "gpt2", "byte", ...; "" when the file does not say */
    int vocab_size;    /* in [2, LNL_DATASET_MAX_VOCAB] */
} LnlDataMeta;

/* Reads the meta.json that describes data: DIR/meta.json for a directory, the meta.json in the
 * same directory for a shard file. None there (or no data at all: the loader reports that) is
 * not an error: m->present is 0. One that is there must be readable and well formed: a JSON
 * object, "format" (if given) LNL_DATASET_FORMAT, "format_version" (if given) at most
 * LNL_DATASET_FORMAT_VERSION, "vocab_size" an integer in [2, 2^24], "tokenizer" (if given) a
 * string, and 257 tokens for "byte"; else an error naming the file and the field. */
int lnl_data_meta_read(const char *data, LnlDataMeta *m, LnlErr *e);
void lnl_data_meta_free(LnlDataMeta *m);

/* Refuses to run a model with vocab_size tokens on data whose meta.json gives another vocabulary
 * ("model M has vocab 50257 (gpt2) but data D/meta.json says byte, 257"); model names the model
 * file. Data without meta.json passes (its tokens are still checked against the vocabulary where
 * they are read). */
int lnl_data_check_vocab(const char *data, const char *model, int vocab_size, LnlErr *e);

#endif
