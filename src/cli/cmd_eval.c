/* lnlab eval: validation loss and perplexity of a model file over the val split of a prepared
 * directory (or over a shard file as it is), through the trainer's own evaluation (train/eval.h).
 * Forward only; it changes no file. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>

#include "../io/model_io.h"
#include "../train/eval.h"
#include "model_flags.h"

#define EVAL_DEFAULT_BATCH 4
#define EVAL_MAX_BATCH 65536

int cmd_eval(int argc, char **argv) {
    LnlModelFlags mf;
    const char *model = NULL, *data = NULL;
    long long batch = EVAL_DEFAULT_BATCH, batches = -1;
    int json = 0;
    enum { NOWN = 5, NFLAGS = NOWN + LNL_MODEL_NFLAGS };
    LnlFlag flags[NFLAGS] = {
        {"--model", LNL_FLAG_STR, &model, "model file: .safetensors or llm.c .bin (required)", 1, 0, NULL, 0},
        {"--data", LNL_FLAG_STR, &data, "prepared directory (its val split) or a token shard used as is (required)",
         1, 0, NULL, 0},
        {"--batch", LNL_FLAG_INT, &batch, "batch size B", 1, EVAL_MAX_BATCH, NULL, 0},
        {"--batches", LNL_FLAG_INT, &batches, "evaluate at most this many batches; -1: every batch of the split", -1,
         1e15, NULL, 0},
        {"--json", LNL_FLAG_BOOL, &json, "print one JSON object instead of a line", 1, 0, NULL, 0},
    };
    lnl_model_flags_init(&mf, flags + NOWN);
    lnl_model_flags_for_evaluation(&mf, flags + NOWN);
    int npos;
    lnl_flags_parse_or_exit("eval",
                            "--model M --data DIR|SHARD [--batch B] [--seq T] [--batches K] [--json]\n"
                            "       [model flags: override the file's config]",
                            flags, NFLAGS, argc, argv, NULL, 0, &npos);
    if (!model) lnl_die(2, "eval: --model M is required");
    if (!data) lnl_die(2, "eval: --data DIR|SHARD is required");
    if (batches == 0) lnl_die(2, "--batches: 0 evaluates nothing; give a positive count or -1 for all");

    LnlErr e;
    LnlModel m;
    lnl_model_flags_load_or_exit(&m, model, data, &mf, flags + NOWN);
    const int B = (int)batch, T = lnl_model_flags_seq_or_exit(&m, &mf, batch);

    LnlLoader ld;
    if (lnl_loader_open(&ld, data, "val", B, T, m.cfg.vocab_size, &e)) lnl_die(1, "--data: %s", e.msg);
    if (lnl_model_alloc_acts(&m, B, T, &e)) lnl_die(2, "%s", e.msg);
    LnlEvalResult r;
    lnl_eval_loss(&m, &ld, batches < 0 ? -1 : (long)batches, &r);
    double ppl = exp(r.loss);

    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "val_loss", r.loss);
        cJSON_AddNumberToObject(o, "perplexity", ppl);
        cJSON_AddNumberToObject(o, "tokens", (double)r.tokens);
        cJSON_AddNumberToObject(o, "batches", (double)r.batches);
        cJSON_AddNumberToObject(o, "batch", B);
        cJSON_AddNumberToObject(o, "seq", T);
        cJSON_AddStringToObject(o, "placement", m.cfg.preset);
        if (m.run_id[0]) cJSON_AddStringToObject(o, "run_id", m.run_id);
        else cJSON_AddNullToObject(o, "run_id");
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        printf("%s\n", s);
        free(s);
    } else {
        printf("val_loss %.6f perplexity %.6g tokens %llu\n", r.loss, ppl, (unsigned long long)r.tokens);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) lnl_die(1, "eval: error writing stdout");
    lnl_loader_free(&ld);
    lnl_model_free(&m);
    return 0;
}
