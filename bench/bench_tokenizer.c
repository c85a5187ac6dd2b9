/* Tokenizer throughput in MB/s on English text: GPT-2 encode with a cold and a warm pre-token
 * cache, GPT-2 decode, and the byte tokenizer. Text: FILE if given, else the King James Bible
 * from Debian's bible-kjv (`bible Genesis1:1-Revelation22:21`), else the tokenizer fixture
 * corpus repeated to 4 MB. Vocabulary: --vocab DIR, else $LNLAB_VOCAB, else vocab/gpt2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer.h"

static const char *KJV_CMD = "bible Genesis1:1-Revelation22:21 2>/dev/null";
static const char *FALLBACK = "tests/fixtures/tokenizer/corpus.txt";

static void load_text(const char *path, LnlBuf *text, const char **source) {
    LnlErr e;
    if (path) {
        if (lnl_read_input(path, text, &e)) lnl_die(1, "%s", e.msg);
        *source = path;
        return;
    }
    FILE *p = popen(KJV_CMD, "r");
    if (p) {
        char buf[1 << 16];
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, p)) > 0) lnl_buf_append(text, buf, got);
        pclose(p);
    }
    if (text->len > (1u << 20)) {
        *source = "KJV Bible (bible-kjv)";
        return;
    }
    text->len = 0;
    LnlBuf one = {0};
    if (lnl_read_input(FALLBACK, &one, &e)) lnl_die(1, "no text: bible-kjv is not installed and %s", e.msg);
    while (text->len < (4u << 20)) lnl_buf_append(text, one.data, one.len);
    lnl_buf_free(&one);
    *source = "tokenizer fixture corpus, repeated";
}

int main(int argc, char **argv) {
    const char *path = NULL, *vocab = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--vocab") == 0 && i + 1 < argc) vocab = argv[++i];
        else path = argv[i];
    }
    if (!vocab) vocab = getenv("LNLAB_VOCAB") && *getenv("LNLAB_VOCAB") ? getenv("LNLAB_VOCAB") : "vocab/gpt2";
    LnlBuf text = {0};
    const char *source;
    load_text(path, &text, &source);
    double mb = (double)text.len / 1e6;
    printf("bench_tokenizer: %.2f MB of %s\n", mb, source);

    LnlErr e;
    LnlTokenizer *t;
    double t0 = lnl_now();
    if (lnl_tok_open(&t, "gpt2", vocab, &e)) lnl_die(1, "%s", e.msg);
    printf("  gpt2 load vocabulary      %8.1f ms\n", (lnl_now() - t0) * 1e3);
    LnlIds ids = {0};
    for (int pass = 0; pass < 3; pass++) {
        ids.n = 0;
        t0 = lnl_now();
        if (lnl_tok_encode(t, (const uint8_t *)text.data, text.len, &ids, &e)) lnl_die(1, "%s", e.msg);
        double s = lnl_now() - t0;
        printf("  gpt2 encode (%s cache)  %8.2f MB/s  (%zu tokens, %.3f s)\n", pass ? "warm" : "cold", mb / s, ids.n,
               s);
    }
    LnlBuf back = {0};
    t0 = lnl_now();
    if (lnl_tok_decode(t, ids.ids, ids.n, &back, &e)) lnl_die(1, "%s", e.msg);
    double s = lnl_now() - t0;
    printf("  gpt2 decode               %8.2f MB/s\n", mb / s);
    if (back.len != text.len || memcmp(back.data, text.data, text.len) != 0) lnl_die(1, "round trip failed");
    lnl_tok_free(t);

    if (lnl_tok_open(&t, "byte", NULL, &e)) lnl_die(1, "%s", e.msg);
    ids.n = 0;
    t0 = lnl_now();
    if (lnl_tok_encode(t, (const uint8_t *)text.data, text.len, &ids, &e)) lnl_die(1, "%s", e.msg);
    s = lnl_now() - t0;
    printf("  byte encode               %8.2f MB/s\n", mb / s);
    lnl_tok_free(t);
    lnl_ids_free(&ids);
    lnl_buf_free(&back);
    lnl_buf_free(&text);
    return 0;
}
