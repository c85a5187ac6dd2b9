/* Fuzz target: the GPT-2 vocabulary reader (encoder.json + vocab.bpe, src/data/tokenizer.h) and
 * BPE over what it accepts. Input: u32 little-endian length L, then L bytes of encoder.json, then
 * vocab.bpe (the rest). Accepted vocabularies encode a fixed text and the input itself; decoding
 * the ids must give the bytes back. */
#include "data/tokenizer.h"
#include "fuzz_common.h"

static void check_roundtrip(LnlTokenizer *t, const uint8_t *s, size_t n) {
    LnlIds ids = {0};
    LnlErr e = {""};
    int r = lnl_tok_encode(t, s, n, &ids, &e);
    fuzz_check(r, &e, "lnl_tok_encode");
    if (r == 0) {
        LnlBuf out = {0};
        r = lnl_tok_decode(t, ids.ids, ids.n, &out, &e);
        FUZZ_ASSERT(r == 0, "decoding encoded ids: %s", e.msg);
        FUZZ_ASSERT(out.len == n && (n == 0 || memcmp(out.data, s, n) == 0), "decode(encode(x)) != x");
        lnl_buf_free(&out);
    }
    lnl_ids_free(&ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    uint32_t L = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
    if (L > size - 4) L = (uint32_t)(size - 4);
    fuzz_file("encoder.json", data + 4, L);
    fuzz_file("vocab.bpe", data + 4 + L, size - 4 - L);
    LnlTokenizer *t;
    LnlErr e = {""};
    int r = lnl_tok_open(&t, "gpt2", fuzz_dir(), &e);
    fuzz_check(r, &e, "lnl_tok_open");
    if (r) return 0;
    static const char text[] = "Hello world, it's 2024!\n\n  \t mixed   spaces 'll 've \xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80 x";
    check_roundtrip(t, (const uint8_t *)text, sizeof text - 1);
    check_roundtrip(t, data + 4 + L, size - 4 - L);
    int32_t bad = lnl_tok_vocab_size(t);
    LnlBuf out = {0};
    e.msg[0] = 0;
    fuzz_check(lnl_tok_decode(t, &bad, 1, &out, &e), &e, "decoding an id outside the vocabulary");
    lnl_buf_free(&out);
    lnl_tok_free(t);
    return 0;
}
