/* Fuzz target: what `lnlab train --resume RUN` reads besides checkpoints: RUN/config.json (the
 * training flags come back from its "train" object, src/cli/train_resume.h) and RUN/log.jsonl
 * (cut after the resumed step, src/train/runlog.h). The first input byte picks which. */
#include "cli/train_resume.h"
#include "fuzz_common.h"
#include "train/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    LnlErr e = {""};
    if (data[0] & 1) {
        const char *path = fuzz_file("log.jsonl", data + 1, size - 1);
        LnlRunLog l;
        int r = lnl_runlog_resume(&l, path, (long)(data[0] >> 1), NULL, &e);
        fuzz_check(r, &e, "lnl_runlog_resume");
        if (r == 0) lnl_runlog_close(&l);
        return 0;
    }
    fuzz_file("config.json", data + 1, size - 1);
    long long steps = 100, batch = 8, seq = 64, keep = 0, layers = 2;
    double lr = 6e-4;
    const char *sched = "cosine", *datap = NULL, *resume = NULL;
    int quiet = 0, flag = 0;
    LnlFlag flags[] = {
        {"--seq", LNL_FLAG_INT, &seq, "model flag", 1, 1 << 24, NULL, 0},
        {"--layers", LNL_FLAG_INT, &layers, "model flag", 1, 1024, NULL, 0},
        {"--data", LNL_FLAG_STR, &datap, "data", 1, 0, NULL, 0},
        {"--steps", LNL_FLAG_INT, &steps, "steps", 1, 1LL << 40, NULL, 0},
        {"--batch", LNL_FLAG_INT, &batch, "batch", 1, 1 << 20, NULL, 0},
        {"--lr", LNL_FLAG_FLOAT, &lr, "lr", 0, 10, NULL, 0},
        {"--schedule", LNL_FLAG_STR, &sched, "schedule", 1, 0, "cosine|linear|constant", 0},
        {"--embed-norm", LNL_FLAG_BOOL, &flag, "bool", 1, 0, NULL, 0},
        {"--quiet", LNL_FLAG_BOOL, &quiet, "quiet", 1, 0, NULL, 0},
        {"--resume", LNL_FLAG_STR, &resume, "resume", 1, 0, NULL, 0},
        {"--keep-checkpoints", LNL_FLAG_INT, &keep, "keep", 0, 1LL << 40, NULL, 0},
    };
    cJSON *root = NULL;
    int r = lnl_resume_flags(fuzz_dir(), flags, (int)(sizeof flags / sizeof flags[0]), 2, &root, &e);
    fuzz_check(r, &e, "lnl_resume_flags");
    if (r == 0) {
        FUZZ_ASSERT(steps >= 1 && batch >= 1 && seq >= 1 && lr >= 0 && lr <= 10, "restored values in range");
        FUZZ_ASSERT(strcmp(sched, "cosine") == 0 || strcmp(sched, "linear") == 0 || strcmp(sched, "constant") == 0,
                    "restored choice");
    }
    cJSON_Delete(root);
    return 0;
}
