/* Tokenizers: GPT-2 byte-level BPE (encoder.json + vocab.bpe, or HF vocab.json + merges.txt)
 * and a byte tokenizer (ids 0..255 are bytes, 256 is end-of-text). Not thread-safe: the BPE
 * keeps a cache of pre-token encodings. */
#ifndef LNL_TOKENIZER_H
#define LNL_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "../common/util.h"

#define LNL_GPT2_VOCAB 50257
#define LNL_GPT2_EOT 50256
#define LNL_BYTE_VOCAB 257
#define LNL_BYTE_EOT 256

typedef struct LnlTokenizer LnlTokenizer;

/* Growable list of token ids. */
typedef struct {
    int32_t *ids;
    size_t n, cap;
} LnlIds;
void lnl_ids_push(LnlIds *l, int32_t id);
void lnl_ids_free(LnlIds *l);

/* kind is "gpt2" or "byte". vocab_dir may be NULL: then $LNLAB_VOCAB, else
 * <directory of the lnlab executable>/vocab/gpt2. A missing vocabulary says how to get it. */
int lnl_tok_open(LnlTokenizer **out, const char *kind, const char *vocab_dir, LnlErr *e);
void lnl_tok_free(LnlTokenizer *t);
const char *lnl_tok_kind(const LnlTokenizer *t); /* "gpt2" or "byte" */
/* The tokenizer whose vocabulary is exactly vocab_size tokens: "byte" for LNL_BYTE_VOCAB, "gpt2"
 * for LNL_GPT2_VOCAB, else NULL. How a model file (which records only its vocabulary size) names
 * its tokenizer. */
const char *lnl_tok_kind_for_vocab(int vocab_size);
int lnl_tok_vocab_size(const LnlTokenizer *t);
int lnl_tok_eot(const LnlTokenizer *t);

/* Appends the ids of n bytes of text (any bytes; see docs/TOKENIZER.md for invalid UTF-8). */
int lnl_tok_encode(LnlTokenizer *t, const uint8_t *text, size_t n, LnlIds *out, LnlErr *e);
/* Appends the bytes of ids to out; an id outside the vocabulary is an error. End-of-text
 * decodes to the text "<|endoftext|>" (as the reference encoder does), for both kinds. */
int lnl_tok_decode(const LnlTokenizer *t, const int32_t *ids, size_t n, LnlBuf *out, LnlErr *e);

/* Reads all of path, or of stdin when path is NULL or "-", into out. Errors name the path. */
int lnl_read_input(const char *path, LnlBuf *out, LnlErr *e);
/* The vocabulary directory used when vocab_dir is NULL (caller frees). */
char *lnl_tok_default_vocab_dir(void);
/* The --vocab flag's help, for every command that opens a GPT-2 tokenizer. */
#define LNL_TOK_VOCAB_HELP                                                                                   \
    "GPT-2 vocabulary directory: encoder.json + vocab.bpe, or vocab.json + merges.txt; the default is "      \
    "$LNLAB_VOCAB, else vocab/gpt2 beside the lnlab executable"
/* GPT-2's byte -> unicode table: the code point that stands for each byte in vocabulary files. */
void lnl_gpt2_bytes_to_unicode(uint32_t cp[256]);

#endif
