/* llm.c fp32 model file reader/writer; layout in llmc.h and docs/FORMATS.md. */
#include "llmc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "llm.c files are little-endian; this reader assumes a little-endian host"
#endif

#define LLMC_SHARD_MAGIC 20240520 /* llm.c token shard: named in the error for a common mix-up */

static const char *const tensor_names[LNL_LLMC_NUM_TENSORS] = {
    "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"};

const char *lnl_llmc_tensor_name(int i) {
    return i >= 0 && i < LNL_LLMC_NUM_TENSORS ? tensor_names[i] : NULL;
}

int lnl_llmc_padded_vocab(int vocab_size) {
    int64_t vp = ((int64_t)vocab_size + LNL_LLMC_VOCAB_ALIGN - 1) / LNL_LLMC_VOCAB_ALIGN * LNL_LLMC_VOCAB_ALIGN;
    return vp > INT32_MAX ? 0 : (int)vp; /* 0 fails lnl_llmc_check_header */
}

static int mul3(uint64_t a, uint64_t b, uint64_t c, uint64_t *out) {
    if ((a && b > UINT64_MAX / a) || (a * b != 0 && c > UINT64_MAX / (a * b))) return -1;
    *out = a * b * c;
    return 0;
}

/* Element counts with wte given `wte_rows` rows; -1 if any count or the total overflows. */
static int counts(const LnlLlmcHeader *h, uint64_t wte_rows, uint64_t out[LNL_LLMC_NUM_TENSORS], uint64_t *total) {
    uint64_t T = (uint64_t)h->max_seq_len, L = (uint64_t)h->num_layers, C = (uint64_t)h->channels;
    const uint64_t dims[LNL_LLMC_NUM_TENSORS][3] = {
        {wte_rows, C, 1}, {T, C, 1},     {L, C, 1},     {L, C, 1},  {L, 3 * C, C},  {L, 3 * C, 1},
        {L, C, C},        {L, C, 1},     {L, C, 1},     {L, C, 1},  {L, 4 * C, C},  {L, 4 * C, 1},
        {L, C, 4 * C},    {L, C, 1},     {C, 1, 1},     {C, 1, 1}};
    uint64_t sum = 0;
    for (int i = 0; i < LNL_LLMC_NUM_TENSORS; i++) {
        if (mul3(dims[i][0], dims[i][1], dims[i][2], &out[i])) return -1;
        if (out[i] > UINT64_MAX - sum) return -1;
        sum += out[i];
    }
    *total = sum;
    return 0;
}

int lnl_llmc_check_header(const LnlLlmcHeader *h, const char *path, LnlErr *e) {
    const struct {
        const char *name;
        int v;
    } f[] = {{"max_seq_len", h->max_seq_len}, {"vocab_size", h->vocab_size},   {"num_layers", h->num_layers},
             {"num_heads", h->num_heads},     {"channels", h->channels},       {"padded_vocab_size", h->padded_vocab_size}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v <= 0) return lnl_err(e, "%s: header field %s is %d, expected > 0", path, f[i].name, f[i].v);
    if (h->channels % h->num_heads != 0)
        return lnl_err(e, "%s: header field channels (%d) is not a multiple of num_heads (%d)", path, h->channels,
                       h->num_heads);
    if (h->padded_vocab_size < h->vocab_size)
        return lnl_err(e, "%s: header field padded_vocab_size (%d) is less than vocab_size (%d)", path,
                       h->padded_vocab_size, h->vocab_size);
    uint64_t c[LNL_LLMC_NUM_TENSORS], total;
    if (counts(h, (uint64_t)h->padded_vocab_size, c, &total) || total > (UINT64_MAX - LNL_LLMC_HEADER_BYTES) / 4 ||
        total > SIZE_MAX / 4)
        return lnl_err(e, "%s: header sizes (maxT %d, V %d, L %d, C %d) give more parameters than fit in 64 bits",
                       path, h->max_seq_len, h->vocab_size, h->num_layers, h->channels);
    return 0;
}

void lnl_llmc_tensor_sizes(const LnlLlmcHeader *h, size_t sizes[LNL_LLMC_NUM_TENSORS]) {
    uint64_t c[LNL_LLMC_NUM_TENSORS], total;
    if (counts(h, (uint64_t)h->vocab_size, c, &total)) memset(c, 0, sizeof c);
    for (int i = 0; i < LNL_LLMC_NUM_TENSORS; i++) sizes[i] = (size_t)c[i];
}

uint64_t lnl_llmc_file_params(const LnlLlmcHeader *h) {
    uint64_t c[LNL_LLMC_NUM_TENSORS], total;
    if (counts(h, (uint64_t)h->padded_vocab_size, c, &total)) return 0;
    return total;
}

static int32_t get_i32(const uint8_t *p) {
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

/* Header from an open file positioned at 0, checked against the file size. */
static int read_header_f(FILE *f, const char *path, LnlLlmcHeader *h, LnlErr *e) {
    uint64_t size;
    if (lnl_file_size(path, &size, e)) return -1;
    if (size < LNL_LLMC_HEADER_BYTES)
        return lnl_err(e, "%s: truncated header: file is %llu bytes, the llm.c header alone is %d", path,
                       (unsigned long long)size, LNL_LLMC_HEADER_BYTES);
    uint8_t raw[LNL_LLMC_HEADER_BYTES];
    if (lnl_fread_exact(f, raw, sizeof raw, path, e)) return -1;
    int32_t hd[LNL_LLMC_HEADER_INTS];
    for (int i = 0; i < LNL_LLMC_HEADER_INTS; i++) hd[i] = get_i32(raw + 4 * i);
    if (hd[LNL_LLMC_H_MAGIC] != LNL_LLMC_MAGIC)
        return lnl_err(e, "%s: bad magic at offset 0: expected %d (llm.c model file), found %d%s", path,
                       LNL_LLMC_MAGIC, hd[LNL_LLMC_H_MAGIC],
                       hd[LNL_LLMC_H_MAGIC] == LLMC_SHARD_MAGIC ? " (an llm.c token shard, not a model)" : "");
    int v = hd[LNL_LLMC_H_VERSION];
    if (v == LNL_LLMC_VERSION_BF16)
        return lnl_err(e, "%s: version 5 (bf16 parameters) is not supported; only version %d (fp32) can be read", path,
                       LNL_LLMC_VERSION_FP32);
    if (v != LNL_LLMC_VERSION_FP32)
        return lnl_err(e, "%s: unsupported version %d at offset 4: expected %d (fp32)%s", path, v,
                       LNL_LLMC_VERSION_FP32, v == 1 || v == 2 ? " (an old file from before vocab padding)" : "");
    h->max_seq_len = hd[LNL_LLMC_H_MAX_SEQ_LEN];
    h->vocab_size = hd[LNL_LLMC_H_VOCAB];
    h->num_layers = hd[LNL_LLMC_H_LAYERS];
    h->num_heads = hd[LNL_LLMC_H_HEADS];
    h->channels = hd[LNL_LLMC_H_CHANNELS];
    h->padded_vocab_size = hd[LNL_LLMC_H_PADDED_VOCAB];
    if (lnl_llmc_check_header(h, path, e)) return -1;
    uint64_t want = LNL_LLMC_HEADER_BYTES + 4 * lnl_llmc_file_params(h);
    if (size < want)
        return lnl_err(e, "%s: truncated: header (maxT %d, V %d, Vp %d, L %d, C %d) needs %llu bytes, file has %llu",
                       path, h->max_seq_len, h->vocab_size, h->padded_vocab_size, h->num_layers, h->channels,
                       (unsigned long long)want, (unsigned long long)size);
    if (size > want)
        return lnl_err(e, "%s: %llu trailing bytes: header (maxT %d, V %d, Vp %d, L %d, C %d) needs %llu bytes, file has %llu",
                       path, (unsigned long long)(size - want), h->max_seq_len, h->vocab_size, h->padded_vocab_size,
                       h->num_layers, h->channels, (unsigned long long)want, (unsigned long long)size);
    return 0;
}

int lnl_llmc_read_header(const char *path, LnlLlmcHeader *h, LnlErr *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return lnl_err(e, "%s: %s", path, strerror(errno));
    int r = read_header_f(f, path, h, e);
    fclose(f);
    return r;
}

int lnl_llmc_read_params(const char *path, const LnlLlmcHeader *h, float *const dst[LNL_LLMC_NUM_TENSORS],
                         LnlErr *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return lnl_err(e, "%s: %s", path, strerror(errno));
    LnlLlmcHeader fh;
    int r = read_header_f(f, path, &fh, e);
    if (!r && memcmp(&fh, h, sizeof fh) != 0)
        r = lnl_err(e, "%s: header (maxT %d, V %d, Vp %d, L %d, NH %d, C %d) differs from the one given", path,
                    fh.max_seq_len, fh.vocab_size, fh.padded_vocab_size, fh.num_layers, fh.num_heads, fh.channels);
    size_t sizes[LNL_LLMC_NUM_TENSORS];
    lnl_llmc_tensor_sizes(&fh, sizes);
    uint64_t pad = (uint64_t)(fh.padded_vocab_size - fh.vocab_size) * (uint64_t)fh.channels * 4;
    for (int i = 0; i < LNL_LLMC_NUM_TENSORS && !r; i++) {
        uint64_t skip = (uint64_t)sizes[i] * 4;
        if (dst[i]) {
            r = lnl_fread_exact(f, dst[i], sizes[i] * 4, path, e);
            skip = 0;
        }
        if (i == LNL_LLMC_WTE) skip += pad;
        if (!r && skip && fseeko(f, (off_t)skip, SEEK_CUR) != 0)
            r = lnl_err(e, "%s: cannot seek past tensor %s: %s", path, tensor_names[i], strerror(errno));
    }
    fclose(f);
    return r;
}

int lnl_llmc_write(const char *path, const LnlLlmcHeader *h, const float *const src[LNL_LLMC_NUM_TENSORS],
                   LnlErr *e) {
    LnlLlmcHeader fh = *h;
    if (fh.padded_vocab_size == 0 && fh.vocab_size > 0) fh.padded_vocab_size = lnl_llmc_padded_vocab(fh.vocab_size);
    if (lnl_llmc_check_header(&fh, path, e)) return -1;
    for (int i = 0; i < LNL_LLMC_NUM_TENSORS; i++)
        if (!src[i]) return lnl_err(e, "%s: tensor %s: no data given", path, tensor_names[i]);
    int32_t hd[LNL_LLMC_HEADER_INTS] = {0};
    hd[LNL_LLMC_H_MAGIC] = LNL_LLMC_MAGIC;
    hd[LNL_LLMC_H_VERSION] = LNL_LLMC_VERSION_FP32;
    hd[LNL_LLMC_H_MAX_SEQ_LEN] = fh.max_seq_len;
    hd[LNL_LLMC_H_VOCAB] = fh.vocab_size;
    hd[LNL_LLMC_H_LAYERS] = fh.num_layers;
    hd[LNL_LLMC_H_HEADS] = fh.num_heads;
    hd[LNL_LLMC_H_CHANNELS] = fh.channels;
    hd[LNL_LLMC_H_PADDED_VOCAB] = fh.padded_vocab_size;
    size_t sizes[LNL_LLMC_NUM_TENSORS];
    lnl_llmc_tensor_sizes(&fh, sizes);
    LnlAtomicFile af;
    if (lnl_atomic_open(&af, path, e)) return -1;
    int r = lnl_fwrite_exact(af.f, hd, sizeof hd, af.tmp, e);
    for (int i = 0; i < LNL_LLMC_NUM_TENSORS && !r; i++) {
        r = lnl_fwrite_exact(af.f, src[i], sizes[i] * 4, af.tmp, e);
        if (i == LNL_LLMC_WTE && !r) {
            /* zero rows V..Vp-1, one row at a time so no Vp*C buffer is needed */
            float *zero = lnl_calloc((size_t)fh.channels, sizeof(float));
            for (int row = fh.vocab_size; row < fh.padded_vocab_size && !r; row++)
                r = lnl_fwrite_exact(af.f, zero, (size_t)fh.channels * 4, af.tmp, e);
            free(zero);
        }
    }
    if (r) {
        lnl_atomic_abort(&af);
        return -1;
    }
    return lnl_atomic_commit(&af, e);
}
