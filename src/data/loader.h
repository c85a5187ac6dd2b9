/* Training data loader: batches of B*T+1 consecutive tokens from a shard or a prepared
 * directory, in llm.c's order, with a position that can be saved and restored for resume.
 * Sequential only: no shuffling. Data-parallel processes split each batch by rows
 * (lnl_loader_split). */
#ifndef LNL_LOADER_H
#define LNL_LOADER_H

#include <stdint.h>

#include "../common/util.h"
#include "shard.h"

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
 * Split (data parallelism): after lnl_loader_split(l, nproc, rank) the batches above are
 * nproc*B rows (everything above with B replaced by nproc*B), and this loader delivers rows
 * [rank*B, rank*B + B) of each; nproc loaders with ranks 0..nproc-1 together see exactly the
 * batches of one loader with B' = nproc*B. */
typedef struct {
    int B, T;           /* rows delivered per batch (this process's share) and row length */
    int nproc, rank;    /* a batch is nproc*B rows, of which this loader reads rows rank*B.. */
    int nshards;
    LnlShard *shards;   /* (nshards) mapped */
    uint64_t *start;    /* (nshards) offset of each shard's first token in the concatenation */
    uint64_t total;     /* tokens in all shards */
    uint64_t pos;       /* offset of the next batch; read it to save, lnl_loader_seek to restore */
} LnlLoader;

/* path: file or directory; split: "train", "val", or NULL (then path must be a file). If
 * vocab > 0 every token is checked to be < vocab when opening. */
int lnl_loader_open(LnlLoader *l, const char *path, const char *split, int B, int T, int vocab, LnlErr *e);
/* Fills inputs (B, T) and targets (B, T) with the next batch (tokens widened to int32) and
 * advances pos. Either pointer may be NULL. */
void lnl_loader_next(LnlLoader *l, int32_t *inputs, int32_t *targets);
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
/* Batches in one pass over all shards, before reading wraps to the first. */
uint64_t lnl_loader_num_batches(const LnlLoader *l);
void lnl_loader_free(LnlLoader *l);

#endif
