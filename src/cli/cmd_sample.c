/* lnlab sample: generates text from a model with the KV cache (model.c's decode mode): the
 * prompt in one prefill pass, then up to N sampled tokens one at a time, streamed to stdout;
 * timing on stderr. No sliding window: the prompt plus the generated tokens must fit in the
 * model's n_positions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../data/tokenizer.h"
#include "../io/model_io.h"
#include "../train/sample.h"
#include "flags.h"
#include "model_flags.h"

/* Model flags that make no sense when a model is loaded for sampling: --vocab is the tokenizer's
 * directory here (the vocabulary size comes from the file), and the file fixes n_positions. */
static int dropped_model_flag(const char *name) { return strcmp(name, "--vocab") == 0 || strcmp(name, "--seq") == 0; }

static void emit(const LnlTokenizer *t, const int32_t *ids, size_t n, LnlBuf *buf) {
    LnlErr e;
    buf->len = 0;
    if (lnl_tok_decode(t, ids, n, buf, &e)) lnl_die(1, "%s", e.msg);
    if (fwrite(buf->data, 1, buf->len, stdout) != buf->len || fflush(stdout) != 0)
        lnl_die(1, "sample: error writing stdout");
}

int cmd_sample(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *kind = NULL;
    char *default_vocab = lnl_tok_default_vocab_dir();
    const char *vocab = default_vocab;
    long long ntokens = 64, top_k = 0, seed = 1;
    double temperature = 1.0, branch_lambda = 0.0;
    int stop_at_eot = 0;
    LnlModelFlags mf;
    LnlFlag mflags[LNL_MODEL_NFLAGS];
    lnl_model_flags_init(&mf, mflags);
    lnl_model_flags_for_loaded_model(mflags);
    enum { NOWN = 10 };
    LnlFlag flags[NOWN + LNL_MODEL_NFLAGS] = {
        {"--model", LNL_FLAG_STR, &model_path, "model file (.safetensors or llm.c .bin); required", 1, 0, NULL, 0},
        {"--prompt", LNL_FLAG_STR, &prompt, "text to continue; none: start from the end-of-text token", 1, 0, NULL, 0},
        {"--tokens", LNL_FLAG_INT, &ntokens, "number of tokens to generate; prompt + tokens must fit n_positions", 0,
         1 << 30, NULL, 0},
        {"--temperature", LNL_FLAG_FLOAT, &temperature, "softmax temperature; 0 = greedy (argmax)", 0, 1e6, NULL, 0},
        {"--top-k", LNL_FLAG_INT, &top_k, "sample among the k most likely tokens; 0 = all", 0, 1 << 30, NULL, 0},
        {"--seed", LNL_FLAG_INT, &seed, "random seed of the sampler", 0, 9.2e18, NULL, 0},
        {"--stop-at-eot", LNL_FLAG_BOOL, &stop_at_eot, "stop early when end-of-text is sampled (not printed)", 1, 0,
         NULL, 0},
        {"--tokenizer", LNL_FLAG_STR, &kind,
         "GPT-2 byte-level BPE, or bytes (ids 0..255, end-of-text 256) (default: byte for a model with 257 tokens, "
         "else gpt2)",
         1, 0, "gpt2|byte", 0},
        {"--vocab", LNL_FLAG_STR, &vocab, LNL_TOK_VOCAB_HELP, 1, 0, NULL, 0},
        {"--branch-lambda", LNL_FLAG_FLOAT, &branch_lambda,
         "BranchNorm strength (only for branch_norm sub-layers; 0 = fully annealed, as after training)", 0, 1, NULL,
         0},
    };
    int nf = NOWN;
    for (int i = 0; i < LNL_MODEL_NFLAGS; i++)
        if (!dropped_model_flag(mflags[i].name)) flags[nf++] = mflags[i];
    int npos;
    lnl_flags_parse_or_exit("sample", "--model FILE [flags]    (model flags override the file's config)", flags, nf,
                            argc, argv, NULL, 0, &npos);
    for (int i = NOWN; i < nf; i++) lnl_flags_find(mflags, LNL_MODEL_NFLAGS, flags[i].name)->seen = flags[i].seen;
    if (!model_path) lnl_die(2, "sample: --model is required (see lnlab sample --help)");

    LnlErr e;
    LnlModel m;
    lnl_model_flags_load_or_exit(&m, model_path, NULL, &mf, mflags);
    const LnlConfig *c = &m.cfg;
    m.branch_lambda = (float)branch_lambda;
    if (!kind) kind = lnl_tok_kind_for_vocab(c->vocab_size) ? lnl_tok_kind_for_vocab(c->vocab_size) : "gpt2";
    LnlTokenizer *tok;
    if (lnl_tok_open(&tok, kind, vocab, &e)) lnl_die(1, "%s", e.msg);
    const int tv = lnl_tok_vocab_size(tok), eot = lnl_tok_eot(tok);
    if (tv > c->vocab_size)
        lnl_die(1, "sample: the %s tokenizer has %d tokens but the model %s has a vocabulary of %d", kind, tv,
                model_path, c->vocab_size);

    LnlIds ids = {0};
    if (prompt) {
        if (lnl_tok_encode(tok, (const uint8_t *)prompt, strlen(prompt), &ids, &e)) lnl_die(1, "%s", e.msg);
    }
    if (ids.n == 0) lnl_ids_push(&ids, eot);
    const long long total = (long long)ids.n + ntokens;
    if (total > c->n_positions)
        lnl_die(1, "sample: prompt (%zu tokens) + --tokens %lld = %lld exceeds the model's context of %d positions",
                ids.n, ntokens, total, c->n_positions);
    LnlSampler smp;
    if (lnl_sampler_init(&smp, tv, (float)temperature, (int)top_k, (uint64_t)seed, &e)) lnl_die(2, "%s", e.msg);
    /* activations for the whole prompt, so that it goes through the blocks in one pass */
    if (lnl_model_alloc_decode(&m, (int)total, (int)ids.n, &e)) lnl_die(1, "%s", e.msg);

    if (prompt && fputs(prompt, stdout) < 0) lnl_die(1, "sample: error writing stdout");
    fflush(stdout);
    LnlBuf text = {0};
    double t0 = lnl_now();
    int pos = 0;
    const float *logits = NULL;
    if (ntokens > 0) {
        logits = lnl_model_decode_prefill(&m, ids.ids, (int)ids.n, 0);
        pos = (int)ids.n;
    }
    double t1 = lnl_now();
    long long generated = 0;
    while (generated < ntokens) {
        for (int i = 0; i < tv; i++)
            if (!isfinite(logits[i]))
                lnl_die(1, "sample: the model produced a non-finite logit (id %d) at position %d", i, pos - 1);
        int32_t next = lnl_sampler_next(&smp, logits);
        generated++;
        if (stop_at_eot && next == eot) break;
        emit(tok, &next, 1, &text);
        if (generated < ntokens) logits = lnl_model_decode_step(&m, next, pos++);
    }
    double t2 = lnl_now();
    if (fputs("\n", stdout) < 0 || fflush(stdout) != 0) lnl_die(1, "sample: error writing stdout");
    double gen_s = t2 - t1;
    fprintf(stderr, "sample: prompt %zu tokens in %.3f s, generated %lld tokens in %.3f s (%.1f tokens/s)\n", ids.n,
            t1 - t0, generated, gen_s, gen_s > 0 ? (double)generated / gen_s : 0.0);

    lnl_buf_free(&text);
    lnl_sampler_free(&smp);
    lnl_ids_free(&ids);
    lnl_tok_free(tok);
    lnl_model_free(&m);
    free(default_vocab);
    return 0;
}
