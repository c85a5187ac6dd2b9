/* lnlab detokenize: reads whitespace-separated token ids from a file (or stdin) and writes their
 * bytes to stdout. Nothing is written unless every id is valid. */
#include <stdlib.h>
#include <string.h>

#include "../data/tokenizer.h"
#include "flags.h"

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* Parses the ids of text into out; errors name the input, the token's ordinal and byte offset. */
static int parse_ids(const char *name, const char *s, size_t n, int vocab, LnlIds *out, LnlErr *e) {
    size_t i = 0;
    while (i < n) {
        while (i < n && is_space(s[i])) i++;
        if (i == n) break;
        size_t start = i;
        while (i < n && !is_space(s[i])) i++;
        long long v = 0;
        int numeric = 1;
        for (size_t k = start; k < i; k++) {
            if (s[k] < '0' || s[k] > '9') numeric = 0;
            else if (v < vocab) v = v * 10 + (s[k] - '0');
        }
        if (!numeric || v >= vocab) {
            char shown[48];
            size_t len = i - start < 40 ? i - start : 40;
            for (size_t k = 0; k < len; k++) {
                unsigned char c = (unsigned char)s[start + k];
                shown[k] = (c < 0x20 || c == 0x7F) ? '?' : (char)c;
            }
            strcpy(shown + len, i - start > 40 ? "..." : "");
            if (!numeric)
                return lnl_err(e, "%s: token %zu (byte %zu): '%s' is not a token id", name, out->n + 1, start,
                               shown);
            return lnl_err(e, "%s: token %zu (byte %zu): id %s is out of range [0, %d]", name, out->n + 1, start,
                           shown, vocab - 1);
        }
        lnl_ids_push(out, (int32_t)v);
    }
    return 0;
}

int cmd_detokenize(int argc, char **argv) {
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
    lnl_flags_parse_or_exit("detokenize", "[flags] [FILE]    (no FILE or -: read stdin)", flags, 2, argc, argv,
                            pos, 1, &npos);
    const char *path = npos ? pos[0] : NULL;
    const char *name = path && strcmp(path, "-") != 0 ? path : "stdin";
    LnlErr e;
    LnlTokenizer *t;
    if (lnl_tok_open(&t, kind, vocab, &e)) lnl_die(1, "%s", e.msg);
    LnlBuf in = {0}, out = {0};
    if (lnl_read_input(path, &in, &e)) lnl_die(1, "%s", e.msg);
    LnlIds ids = {0};
    if (parse_ids(name, in.data ? in.data : "", in.len, lnl_tok_vocab_size(t), &ids, &e)) lnl_die(1, "%s", e.msg);
    if (lnl_tok_decode(t, ids.ids, ids.n, &out, &e)) lnl_die(1, "%s: %s", name, e.msg);
    if ((out.len && fwrite(out.data, 1, out.len, stdout) != out.len) || fflush(stdout) != 0)
        lnl_die(1, "detokenize: error writing stdout");
    lnl_buf_free(&out);
    lnl_ids_free(&ids);
    lnl_buf_free(&in);
    lnl_tok_free(t);
    free(default_vocab);
    return 0;
}
