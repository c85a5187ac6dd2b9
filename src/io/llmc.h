/* llm.c's GPT-2 model file (train_gpt2.py write_model / train_gpt2.c gpt2_build_from_checkpoint),
 * fp32 only. Reads and writes the 16 parameter tensors; mapping them onto a model is src/model's.
 *
 * Layout, all little-endian:
 *   int32 header[256]  [0] magic 20240326, [1] version (3 = fp32; 5 = bf16, rejected),
 *                      [2] max_seq_len maxT, [3] vocab_size V, [4] num_layers L,
 *                      [5] num_heads NH, [6] channels C, [7] padded_vocab_size Vp; [8..255] 0
 *   float32 params, the 16 tensors below concatenated, each (L, ...) tensor layer 0 first.
 *   Matrices are in PyTorch Linear layout (out, in); qkvw rows are [q; k; v].
 *   File size = 1024 + 4 * (number of params with wte padded to Vp rows).
 *
 *    #  name      shape in the file   shape in memory (lnl_llmc_read_params / lnl_llmc_write)
 *    0  wte       (Vp, C)             (V, C)   rows V..Vp-1 are zero padding, dropped on read
 *    1  wpe       (maxT, C)
 *    2  ln1w      (L, C)
 *    3  ln1b      (L, C)
 *    4  qkvw      (L, 3C, C)
 *    5  qkvb      (L, 3C)
 *    6  attprojw  (L, C, C)
 *    7  attprojb  (L, C)
 *    8  ln2w      (L, C)
 *    9  ln2b      (L, C)
 *   10  fcw       (L, 4C, C)
 *   11  fcb       (L, 4C)
 *   12  fcprojw   (L, C, 4C)
 *   13  fcprojb   (L, C)
 *   14  lnfw      (C)
 *   15  lnfb      (C)
 * The LM head is tied to wte: there is no separate tensor. */
#ifndef LNL_LLMC_H
#define LNL_LLMC_H

#include <stddef.h>
#include <stdint.h>

#include "../common/util.h"

#define LNL_LLMC_MAGIC 20240326
#define LNL_LLMC_VERSION_FP32 3
#define LNL_LLMC_VERSION_BF16 5   /* recognised, rejected */
#define LNL_LLMC_HEADER_INTS 256
#define LNL_LLMC_HEADER_BYTES (4 * LNL_LLMC_HEADER_INTS)
#define LNL_LLMC_NUM_TENSORS 16
#define LNL_LLMC_VOCAB_ALIGN 128  /* llm.c pads V up to a multiple of this */

/* Header slots. */
enum {
    LNL_LLMC_H_MAGIC = 0,
    LNL_LLMC_H_VERSION = 1,
    LNL_LLMC_H_MAX_SEQ_LEN = 2,
    LNL_LLMC_H_VOCAB = 3,
    LNL_LLMC_H_LAYERS = 4,
    LNL_LLMC_H_HEADS = 5,
    LNL_LLMC_H_CHANNELS = 6,
    LNL_LLMC_H_PADDED_VOCAB = 7
};

/* Tensor indices, in file order. */
enum {
    LNL_LLMC_WTE = 0, LNL_LLMC_WPE, LNL_LLMC_LN1W, LNL_LLMC_LN1B, LNL_LLMC_QKVW, LNL_LLMC_QKVB,
    LNL_LLMC_ATTPROJW, LNL_LLMC_ATTPROJB, LNL_LLMC_LN2W, LNL_LLMC_LN2B, LNL_LLMC_FCW, LNL_LLMC_FCB,
    LNL_LLMC_FCPROJW, LNL_LLMC_FCPROJB, LNL_LLMC_LNFW, LNL_LLMC_LNFB
};

typedef struct {
    int max_seq_len;       /* maxT */
    int vocab_size;        /* V */
    int num_layers;        /* L */
    int num_heads;         /* NH; divides C */
    int channels;          /* C */
    int padded_vocab_size; /* Vp >= V; 0 in a header given to lnl_llmc_write means "round V up to 128" */
} LnlLlmcHeader;

/* "wte", "wpe", ... for tensor i in 0..15, NULL otherwise. */
const char *lnl_llmc_tensor_name(int i);
/* V rounded up to a multiple of LNL_LLMC_VOCAB_ALIGN (0 if that exceeds INT32_MAX). */
int lnl_llmc_padded_vocab(int vocab_size);
/* Checks sizes (all positive, C % NH == 0, Vp >= V, total size fits in 64 bits). */
int lnl_llmc_check_header(const LnlLlmcHeader *h, const char *path, LnlErr *e);
/* Element counts of the 16 tensors as the caller holds them: wte is V * C (padding dropped). */
void lnl_llmc_tensor_sizes(const LnlLlmcHeader *h, size_t sizes[LNL_LLMC_NUM_TENSORS]);
/* Number of floats in the file (wte padded to Vp rows). */
uint64_t lnl_llmc_file_params(const LnlLlmcHeader *h);

/* Reads and validates the header: magic, version 3, sizes, and the exact file size. */
int lnl_llmc_read_header(const char *path, LnlLlmcHeader *h, LnlErr *e);
/* Reads the 16 tensors into dst[i] (lnl_llmc_tensor_sizes(h)[i] floats each); a NULL dst[i]
 * skips that tensor. h must be what lnl_llmc_read_header returned for this file; the header is
 * read and checked again. */
int lnl_llmc_read_params(const char *path, const LnlLlmcHeader *h, float *const dst[LNL_LLMC_NUM_TENSORS],
                         LnlErr *e);
/* Writes a version 3 file atomically from src[i] (lnl_llmc_tensor_sizes(h)[i] floats each;
 * wte has V rows and is padded with zero rows to Vp). */
int lnl_llmc_write(const char *path, const LnlLlmcHeader *h, const float *const src[LNL_LLMC_NUM_TENSORS],
                   LnlErr *e);

#endif
