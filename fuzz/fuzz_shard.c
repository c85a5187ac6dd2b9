/* Fuzz target: token shards (src/data/shard.h; llm.c format and nanoGPT's uint16 .bin, format
 * detection) and the batch loader over one (src/data/loader.h). The first input byte picks the
 * forced format, the file name and the vocabulary check. */
#include "data/loader.h"
#include "data/shard.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const LnlShardFormat want = (LnlShardFormat)(data[0] % 3);
    const char *name = data[0] & 4 ? "in.tokens" : "in.bin";
    const int vocab = data[0] & 8 ? 300 : 0;
    const char *path = fuzz_file(name, data + 1, size - 1);
    LnlShard s;
    LnlErr e = {""};
    int r = lnl_shard_open(&s, path, want, vocab, &e);
    fuzz_check(r, &e, "lnl_shard_open");
    if (r == 0) {
        for (uint64_t i = 0; i < s.ntok; i++) FUZZ_ASSERT(vocab == 0 || s.tokens[i] < vocab, "token check");
        lnl_shard_close(&s);
    }
    LnlShardFormat found;
    uint64_t ntok;
    e.msg[0] = 0;
    int r2 = lnl_shard_probe(path, want, &found, &ntok, &e);
    fuzz_check(r2, &e, "lnl_shard_probe");
    FUZZ_ASSERT(r != 0 || r2 == 0, "open accepted what probe refused");
    FUZZ_ASSERT(vocab > 0 || (r2 == 0) == (r == 0), "probe and open disagree");
    e.msg[0] = 0;
    r = lnl_shard_read(&s, path, want, vocab, &e);
    fuzz_check(r, &e, "lnl_shard_read");
    if (r == 0) lnl_shard_close(&s);
    LnlLoader l;
    e.msg[0] = 0;
    const int B = 1 + (data[0] >> 4 & 1), T = 1 + (data[0] >> 5);
    r = lnl_loader_open(&l, path, NULL, B, T, vocab, &e);
    fuzz_check(r, &e, "lnl_loader_open");
    if (r == 0) {
        int32_t in[16], tg[16];
        for (int k = 0; k < 5; k++) lnl_loader_next(&l, in, tg);
        e.msg[0] = 0;
        fuzz_check(lnl_loader_seek(&l, l.total + 1, &e), &e, "lnl_loader_seek past the end");
        lnl_loader_free(&l);
    }
    return 0;
}
