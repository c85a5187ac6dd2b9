/* Training data loader over a shard or a prepared directory, in two orders: batches of B*T+1
 * consecutive tokens in llm.c's order, with a position that can be saved and restored for resume
 * (lnl_loader_next), or rows of T+1 tokens at seeded random offsets, a pure function of
 * (data seed, step, micro-batch, row) as nanoGPT draws them (lnl_loader_sample). Data-parallel
 * processes split each batch by rows (lnl_loader_split) in both orders. */
#ifndef LNL_LOADER_H
#define LNL_LOADER_H

#include <stdint.h>

#include "../common/util.h"
#include "shard.h"

/* The order of training batches (append only; files store the names). */
typedef enum {
    LNL_ORDER_SEQUENTIAL = 0, /* lnl_loader_next: llm.c's order */
    LNL_ORDER_RANDOM = 1,     /* lnl_loader_sample: seeded random offsets */
} LnlDataOrder;
#define LNL_DATA_ORDERS "random|sequential"
/* --data-seed's default: a fixed constant, not --seed, so that runs that differ in init or
 * placement see the same batches unless told otherwise. */
#define LNL_DATA_SEED_DEFAULT 0
/* Largest data seed: JSON (RUN/config.json) holds it as a double, exact up to 2^53. */
#define LNL_DATA_SEED_MAX (1LL << 53)
/* "random" / "sequential". */
const char *lnl_data_order_name(LnlDataOrder o);
/* Parses a name of LNL_DATA_ORDERS; -1 if it is none. */
int lnl_data_order_parse(const char *name, LnlDataOrder *o);

/* Sources, in the order their tokens are read:
 *   - a file: one shard (llm.c or nanoGPT .bin, auto-detected; see shard.h), whatever split;
 *   - a directory and split "train" or "val": DIR/<split>.bin if it exists, else every file
 *     named <prefix>_<split>_<suffix>.bin or <prefix>_<split>.bin (llm.c's shard names, e.g.
 *     fineweb_train_000001.bin, tiny_shakespeare_val.bin), sorted by name (strcmp); having
 *     both kinds is an error.
 *
 * Batches, exactly as llm.c's DataLoader: within a shard, batch k covers tokens
 * [k*B*T, k*B*T + B*T] (B*T+1 tokens); row b of inputs is tokens [k*B*T + b*T, +T) and row b
 * of targets the same shifted by one. When the next batch would run past the end of the
 * shard (start + B*T + 1 > ntok), reading moves to the start of the next shard, and after the
 * last shard back to the first. A shard with fewer than B*T+1 tokens is skipped; if no
 * shard has that many, opening fails.
 *
 * Position: pos is the token offset, in the concatenation of all shards, at which the next
 * batch starts (or would start before the skip to the next shard). Saving pos and seeking to
 * it later yields the same batches.
 *
 * Random order (lnl_loader_sample, nanoGPT's get_batch): every row of a batch is T+1
 * consecutive tokens of one shard starting at a random offset; the sequential position is
 * neither used nor moved. A shard with ntok >= T+1 tokens has ntok - T starting offsets
 * (0 .. ntok-T-1), a shorter one none; U is their total over all shards, and the starting
 * offsets are numbered 0..U-1 shard after shard (shards in the order above). Row g of the global
 * batch (g = 0 .. nproc*B-1) of micro-batch m of optimizer step s (s = steps done before it) with
 * data seed D starts at starting offset number
 *     u = lnl_rng_below(&r, U),  r = lnl_rng_seed(key) (src/common/rng.h),
 *     key = H(H(H(H(D) ^ s) ^ m) ^ g),  H(x) = splitmix64's output from state x
 *           (lnl_splitmix64(&x): z = x + 0x9E3779B97F4A7C15, then its two xor-shift-multiplies),
 * so a shard is picked with probability proportional to its number of starting offsets
 * (ntok - T) and the offset within it uniformly (up to the modulo's bias of U / 2^64). A batch
 * depends on nothing but (D, s, m, g): no stream to save, and a resumed run needs only the step.
 * Rows are drawn independently: two rows may overlap.
 *
 * Split (data parallelism): after lnl_loader_split(l, nproc, rank) the batches above are
 * nproc*B rows (everything above with B replaced by nproc*B), and this loader delivers rows
 * [rank*B, rank*B + B) of each; nproc loaders with ranks 0..nproc-1 together see exactly the
 * batches of one loader with B' = nproc*B, in either order. */
typedef struct {
    int B, T;           /* rows delivered per batch (this process's share) and row length */
    int nproc, rank;    /* a batch is nproc*B rows, of which this loader reads rows rank*B.. */
    int nshards;
    LnlShard *shards;   /* (nshards) mapped */
    uint64_t *start;    /* (nshards) offset of each shard's first token in the concatenation */
    uint64_t total;     /* tokens in all shards */
    uint64_t pos;       /* offset of the next batch; read it to save, lnl_loader_seek to restore */
    uint64_t *ustart;   /* (nshards) random order: number of the first starting offset of each shard */
    uint64_t usable;    /* random order: starting offsets in all shards (U above) */
} LnlLoader;

/* path: file or directory; split: "train", "val", or NULL (then path must be a file). If
 * vocab > 0 every token is checked to be < vocab when opening. */
int lnl_loader_open(LnlLoader *l, const char *path, const char *split, int B, int T, int vocab, LnlErr *e);
/* Fills inputs (B, T) and targets (B, T) with the next batch (tokens widened to int32) and
 * advances pos. Either pointer may be NULL. */
void lnl_loader_next(LnlLoader *l, int32_t *inputs, int32_t *targets);
/* Random order: fills inputs (B, T) and targets (B, T) with this loader's rows of micro-batch
 * `micro` of step `step` under data seed `seed` (see Random order above). Reads only; either
 * pointer may be NULL. */
void lnl_loader_sample(const LnlLoader *l, uint64_t seed, uint64_t step, uint64_t micro, int32_t *inputs,
                       int32_t *targets);
/* Random order: the offset, in the concatenation of all shards (as pos), of the first token of
 * global row `row` (0 .. nproc*B-1) of that micro-batch; inputs are the T tokens from there. */
uint64_t lnl_loader_sample_offset(const LnlLoader *l, uint64_t seed, uint64_t step, uint64_t micro, uint64_t row);
/* Back to the first batch (pos = 0). */
void lnl_loader_reset(LnlLoader *l);
/* Continues from a saved position; pos must be <= total. */
int lnl_loader_seek(LnlLoader *l, uint64_t pos, LnlErr *e);
/* Makes each batch nproc*B rows of which this loader reads its B (see Split above); pos keeps
 * its meaning. Fails if no shard holds one batch of nproc*B*T+1 tokens. */
int lnl_loader_split(LnlLoader *l, int nproc, int rank, LnlErr *e);
/* CRC-32 (src/common/crc32.h) of all shards' tokens in order, continuing crc: the data's content,
 * which a resumed run checks. Reads every token once. */
uint32_t lnl_loader_crc32(const LnlLoader *l, uint32_t crc);
/* Adds the number of times each token < vocab occurs in all shards to counts (vocab entries). */
void lnl_loader_count(const LnlLoader *l, uint64_t *counts, int vocab);
/* The unigram loss (nats per token): the cross-entropy of the val tokens (val_counts) under the
 * training split's token frequencies (train_counts), smoothed by adding 1/2 to every count. It is
 * the loss of a model that ignores the context, and where a model that stopped learning sits; NAN
 * if val_counts is all zero. */
double lnl_unigram_loss(const uint64_t *train_counts, const uint64_t *val_counts, int vocab);
/* Batches in one pass over all shards, before reading wraps to the first. */
uint64_t lnl_loader_num_batches(const LnlLoader *l);
void lnl_loader_free(LnlLoader *l);

#endif
