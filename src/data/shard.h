/* Token shards: llm.c's .bin format (read and written) and nanoGPT's headerless uint16 .bin
 * (read only). Also the text cut rule that lets a corpus be tokenized chunk by chunk.
 * Not a data loader (see loader.h) and not a tokenizer (see tokenizer.h). */
#ifndef LNL_SHARD_H
#define LNL_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "../common/util.h"

/* llm.c token shard (dev/data/data_common.py:write_datafile, llmc/dataloader.h), all
 * integers little-endian:
 *
 *   offset 0     int32 header[256]              1024 bytes
 *                  [0] magic    20240520
 *                  [1] version  1
 *                  [2] ntok     number of tokens that follow, 0 <= ntok < 2^31
 *                  [3..255]     0
 *   offset 1024  uint16 tokens[ntok]
 *
 * The file size must be exactly 1024 + 2*ntok: shorter is a truncated file, longer has
 * trailing bytes; both are errors.
 *
 * nanoGPT's .bin (data/<name>/prepare.py) is the bare uint16 token array, no header: any
 * file of even size, ntok = size / 2.
 *
 * Auto-detection (LNL_SHARD_AUTO): if the file is at least 4 bytes long and its first int32
 * is 20240520, it is an llm.c shard and must be a valid one (a bad version or size is an
 * error, never a fallback); otherwise, if its name ends in ".bin" and its size is even, it is
 * a nanoGPT uint16 file; otherwise it is an error. A nanoGPT file whose first two tokens are
 * 55432, 308 reads as the llm.c magic: force LNL_SHARD_NANOGPT for such a file. */
#define LNL_SHARD_MAGIC 20240520
#define LNL_SHARD_VERSION 1
#define LNL_SHARD_HEADER_INTS 256
#define LNL_SHARD_HEADER_BYTES (LNL_SHARD_HEADER_INTS * 4)
#define LNL_SHARD_HDR_MAGIC 0   /* header slot of each field */
#define LNL_SHARD_HDR_VERSION 1
#define LNL_SHARD_HDR_NTOK 2
#define LNL_SHARD_MAX_TOKEN 65535      /* tokens are uint16 */
#define LNL_SHARD_MAX_NTOK 2147483647u /* ntok is an int32 */

typedef enum {
    LNL_SHARD_AUTO = 0, /* detect as described above */
    LNL_SHARD_LLMC,     /* llm.c header + uint16 */
    LNL_SHARD_NANOGPT   /* headerless uint16 */
} LnlShardFormat;

/* Name of a format for messages: "llm.c", "nanoGPT", "auto". */
const char *lnl_shard_format_name(LnlShardFormat f);

/* An open shard. tokens points into a read-only mapping of the file, or into a heap copy
 * (lnl_shard_read, an empty file, or a big-endian host). */
typedef struct {
    const uint16_t *tokens; /* (ntok) in host byte order */
    uint64_t ntok;
    LnlShardFormat format;  /* what the file is: LNL_SHARD_LLMC or LNL_SHARD_NANOGPT */
    char *path;
    void *map;              /* mmap of the whole file, or NULL */
    size_t map_len;
    uint16_t *owned;        /* (ntok) heap copy, or NULL */
} LnlShard;

/* Checks the header and the size against the file without reading the tokens. */
int lnl_shard_probe(const char *path, LnlShardFormat want, LnlShardFormat *found, uint64_t *ntok, LnlErr *e);
/* Opens a shard by mapping it (read-only). If vocab > 0, every token must be < vocab (one
 * pass over the file); vocab <= 0 skips that check. */
int lnl_shard_open(LnlShard *s, const char *path, LnlShardFormat want, int vocab, LnlErr *e);
/* Same checks, but reads the whole file into memory instead of mapping it. */
int lnl_shard_read(LnlShard *s, const char *path, LnlShardFormat want, int vocab, LnlErr *e);
void lnl_shard_close(LnlShard *s);

/* Streaming llm.c shard writer. Tokens go to a temporary file next to path (lnl_atomic_*);
 * finish writes the final ntok into the header, fsyncs and renames onto path. Memory stays
 * constant whatever the number of tokens. Every error message names path. */
typedef struct {
    LnlAtomicFile af;
    uint64_t ntok; /* tokens appended so far */
} LnlShardWriter;

int lnl_shard_writer_open(LnlShardWriter *w, const char *path, LnlErr *e);
/* Appends n tokens; each must be in [0, 65535], and the total must stay < 2^31. */
int lnl_shard_writer_append(LnlShardWriter *w, const int32_t *ids, size_t n, LnlErr *e);
/* Moves tokens [keep, ntok) to the end of tail and truncates w to its first keep tokens.
 * Used to split one token stream into train and val without holding it in memory. */
int lnl_shard_writer_move_tail(LnlShardWriter *w, uint64_t keep, LnlShardWriter *tail, LnlErr *e);
/* Writes the header with the final count and renames the file into place. w is closed
 * whether it succeeds or not. */
int lnl_shard_writer_finish(LnlShardWriter *w, LnlErr *e);
/* Removes the temporary file; nothing appears under path. Safe on a finished writer. */
void lnl_shard_writer_abort(LnlShardWriter *w);
/* Writes n tokens as one llm.c shard (open + append + finish). */
int lnl_shard_write(const char *path, const int32_t *ids, size_t n, LnlErr *e);

/* Chunked tokenization. Returns the largest p in [1, n-2] where text may be cut into
 * text[0,p) and text[p,n) such that GPT-2's pre-tokenization regex
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * gives the same pre-tokens for the two parts as for the whole (so BPE gives the same ids),
 * or 0 if there is no such point. The rule: text[p] is one of ' ', '\t', '\r', '\n',
 * text[p+1] is printable ASCII other than space (0x21..0x7e), and text[p-1] is ASCII.
 * Why it holds: a pre-token never extends a whitespace run rightwards past its last
 * whitespace character except into that character alone, so the cut falls on a pre-token
 * boundary; the run before p, now at the end of the first part, is still matched whole by
 * \s+(?!\S); and ASCII neighbours mean no UTF-8 sequence is split. tests/unit/test_shard.c
 * checks it against the regex itself. */
size_t lnl_text_cut(const uint8_t *text, size_t n);

#endif
