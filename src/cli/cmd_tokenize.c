/* lnlab tokenize: prints the token ids of a file (or stdin) on one line, separated by single
 * spaces. Empty input prints an empty line. */
#include <stdlib.h>
#include <string.h>

#include "../data/tokenizer.h"
#include "flags.h"

int cmd_tokenize(int argc, char **argv) {
    const char *kind = "gpt2";
    char *default_vocab = lnl_tok_default_vocab_dir();
    const char *vocab = default_vocab;
    LnlFlag flags[] = {
        {.name = "--tokenizer", .type = LNL_FLAG_STR, .dest = &kind, .lo = 1, .hi = 0, .choices = "gpt2|byte",
         .help = "GPT-2 byte-level BPE, or bytes (ids 0..255, end-of-text 256)"},
        {.name = "--vocab", .type = LNL_FLAG_STR, .dest = &vocab, .lo = 1, .hi = 0, .help = LNL_TOK_VOCAB_HELP},
    };
    const char *pos[1];
    int npos;
    lnl_flags_parse_or_exit("tokenize", "[flags] [FILE]    (no FILE or -: read stdin)", flags, 2, argc, argv, pos,
                            1, &npos);
    LnlErr e;
    LnlTokenizer *t;
    if (lnl_tok_open(&t, kind, vocab, &e)) lnl_die(1, "%s", e.msg);
    LnlBuf in = {0};
    if (lnl_read_input(npos ? pos[0] : NULL, &in, &e)) lnl_die(1, "%s", e.msg);
    LnlIds ids = {0};
    if (lnl_tok_encode(t, (const uint8_t *)in.data, in.len, &ids, &e)) lnl_die(1, "%s", e.msg);

    /* Written in blocks; an id is at most 10 digits and a separator. */
    char out[1 << 16];
    size_t o = 0;
    int bad = 0;
    for (size_t i = 0; i < ids.n; i++) {
        char tmp[12];
        int k = 0;
        uint32_t v = (uint32_t)ids.ids[i];
        do tmp[k++] = (char)('0' + v % 10); while ((v /= 10) > 0);
        if (i) out[o++] = ' ';
        while (k) out[o++] = tmp[--k];
        if (o > sizeof out - 16) {
            bad |= fwrite(out, 1, o, stdout) != o;
            o = 0;
        }
    }
    out[o++] = '\n';
    bad |= fwrite(out, 1, o, stdout) != o;
    if (bad || fflush(stdout) != 0) lnl_die(1, "tokenize: error writing stdout");
    lnl_ids_free(&ids);
    lnl_buf_free(&in);
    lnl_tok_free(t);
    free(default_vocab);
    return 0;
}
