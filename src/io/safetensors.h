/* Safetensors files: a strictly validating reader (the file is mmap'ed read-only) and an atomic
 * writer. Generic: it knows nothing about models; tensor names are the model code's business.
 *
 * Layout (docs/FORMATS.md, "safetensors"):
 *   u64 little-endian N | N bytes of UTF-8 JSON, may end in spaces | data section
 *   JSON: {"NAME": {"dtype": "F32", "shape": [d0, ...], "data_offsets": [begin, end]}, ...,
 *          "__metadata__": {"KEY": "string value", ...}}   (the metadata object is optional)
 *   begin/end are byte offsets relative to the start of the data section.
 * The reader accepts only what the reference implementation (huggingface/safetensors) accepts:
 * N <= LNL_ST_MAX_HEADER, the JSON starts with '{', every byte of the data section belongs to
 * exactly one tensor (no overlaps, no holes, nothing after the last tensor), duplicate names are
 * rejected, metadata values are strings. Host must be little-endian (checked at compile time). */
#ifndef LNL_SAFETENSORS_H
#define LNL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../common/util.h"

#define LNL_ST_MAX_HEADER 100000000ULL /* bytes of JSON, as in huggingface/safetensors */
#define LNL_ST_MAX_DIMS 8
#define LNL_ST_METADATA_KEY "__metadata__"
/* Metadata key of the per-tensor checksums: a JSON object string mapping every tensor name to
 * the CRC-32 (src/common/crc32.h) of its data bytes as 8 lowercase hex digits, e.g.
 * {"wte.weight":"1c291ca3",...}. Written by lnl_stw_write; verified by lnl_st_open when present
 * (files without it, e.g. from Hugging Face, load unchecked). */
#define LNL_ST_CRC_KEY "lnlab.crc32"

/* Element types, named as in the file. Append-only: the values may be stored by callers. */
typedef enum {
    LNL_ST_F32 = 0,
    LNL_ST_F16,
    LNL_ST_BF16,
    LNL_ST_F64,
    LNL_ST_I64,
    LNL_ST_I32,
    LNL_ST_I16,
    LNL_ST_I8,
    LNL_ST_U8,
    LNL_ST_U16,
    LNL_ST_U32,
    LNL_ST_U64,
    LNL_ST_BOOL,
    LNL_ST_F8_E4M3,
    LNL_ST_F8_E5M2,
    LNL_ST_N_DTYPES
} LnlStDtype;

/* "F32", ... or NULL for an out-of-range value. */
const char *lnl_st_dtype_name(int dtype);
/* Bytes per element, 0 for an out-of-range value. */
size_t lnl_st_dtype_size(int dtype);
/* The dtype for a name as written in the file, or -1. */
int lnl_st_dtype_parse(const char *name);

typedef struct {
    char *name;
    int dtype;                       /* LnlStDtype */
    int ndim;                        /* 0 for a scalar */
    int64_t shape[LNL_ST_MAX_DIMS];  /* (ndim) */
    uint64_t numel;                  /* product of shape; 1 for a scalar, 0 if any dim is 0 */
    uint64_t begin, end;             /* byte offsets relative to the data section */
} LnlStTensor;

typedef struct {
    char *path;
    const uint8_t *map;   /* the whole file, read-only; NULL once closed */
    size_t map_len;       /* file size in bytes */
    uint64_t data_start;  /* 8 + N: file offset of the data section */
    LnlStTensor *tensors; /* (n) in header order */
    int n;
    char **meta_keys, **meta_vals; /* (n_meta) in header order */
    int n_meta;
    int *by_name; /* (n) indices into tensors, sorted by name, for lookup */
} LnlSafetensors;

/* Maps and validates a file, including the LNL_ST_CRC_KEY checksums when the file has them
 * (every tensor must be listed and match). On error nothing needs closing. */
int lnl_st_open(LnlSafetensors *st, const char *path, LnlErr *e);
void lnl_st_close(LnlSafetensors *st);

/* The tensor with exactly this name, or NULL. */
const LnlStTensor *lnl_st_find(const LnlSafetensors *st, const char *name);
/* For Hugging Face files whose keys may carry a model prefix ("transformer."): the tensor named
 * `name`, else the one named prefix + name, else NULL. prefix may be NULL. */
const LnlStTensor *lnl_st_find_prefixed(const LnlSafetensors *st, const char *prefix, const char *name);
/* The metadata value for key, or NULL. */
const char *lnl_st_meta(const LnlSafetensors *st, const char *key);
/* Raw bytes of a tensor (end - begin of them) inside the mapping, little-endian, no alignment
 * guarantee beyond what the file gives; valid until lnl_st_close. */
const void *lnl_st_data(const LnlSafetensors *st, const LnlStTensor *t);

/* Converts a F32/F16/BF16/F64 tensor to float. The element count must equal n_expected
 * (shape is not compared: callers check it when it matters). */
int lnl_st_tensor_f32(const LnlSafetensors *st, const LnlStTensor *t, float *out, size_t n_expected, LnlErr *e);
/* Same, by name; a missing tensor is an error naming the file and the tensor. */
int lnl_st_read_f32(const LnlSafetensors *st, const char *name, float *out, size_t n_expected, LnlErr *e);
/* Converts an integer tensor (I8/U8/I16/U16/I32/U32/I64/U64/BOOL) to int32; values outside the
 * int32 range are an error. */
int lnl_st_read_i32(const LnlSafetensors *st, const char *name, int32_t *out, size_t n_expected, LnlErr *e);

/* Writer. Tensors are listed in the header in the order added. In the data section they are
 * laid out in that order, stably grouped by element size (8, 4, 2, 1 bytes): with the header
 * padded to a multiple of 8 every tensor starts aligned to its element size and the section
 * has no holes, as the format requires. The data pointers must stay valid until
 * lnl_stw_write; with take_ownership the writer free()s them in lnl_stw_free. */
typedef struct {
    char *name;
    int dtype;
    int ndim;
    int64_t shape[LNL_ST_MAX_DIMS];
    uint64_t nbytes;
    const void *data;
    int owned;
} LnlStwTensor;

typedef struct {
    LnlStwTensor *t; /* (n) */
    int n, cap;
    char **meta_keys, **meta_vals; /* (n_meta) */
    int n_meta, cap_meta;
    char err[512]; /* first error found by lnl_stw_add, reported by lnl_stw_write */
    int no_checksums; /* 0 (default): write LNL_ST_CRC_KEY; 1: leave it out */
} LnlStWriter;

void lnl_stw_init(LnlStWriter *w);
/* Adds a tensor. A bad argument (unknown dtype, ndim outside 0..8, negative dim, empty,
 * reserved or duplicate name, NULL data for a non-empty tensor) is remembered and makes
 * lnl_stw_write fail with a message naming the tensor. */
void lnl_stw_add(LnlStWriter *w, const char *name, int dtype, int ndim, const int64_t *shape, const void *data,
                 int take_ownership);
/* Sets a metadata entry; a key set twice keeps the last value. */
void lnl_stw_meta(LnlStWriter *w, const char *key, const char *value);
/* Writes the file atomically (temp file, fsync, rename), with the per-tensor checksums in
 * LNL_ST_CRC_KEY unless no_checksums is set (a caller's own entry under that key is replaced). */
int lnl_stw_write(const LnlStWriter *w, const char *path, LnlErr *e);
void lnl_stw_free(LnlStWriter *w);

#endif
