/* Fuzz target: command-line flags and numbers (src/cli/flags.h, lnl_parse_int/double). The
 * input, split at NUL bytes, is the argument list. */
#include "cli/flags.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = 0;
    char *argv[33];
    int argc = 0;
    argv[argc++] = "fuzz";
    for (size_t i = 0; i <= size && argc < 32;) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    long long steps = 100, any = 0;
    double lr = 6e-4, x = 0;
    const char *sched = "cosine", *path = NULL;
    int quiet = 0;
    LnlStrList list = {NULL, 0};
    LnlFlag flags[] = {
        {"--steps", LNL_FLAG_INT, &steps, "steps", 1, 1LL << 40, NULL, 0},
        {"--any", LNL_FLAG_INT, &any, "any integer", 1, 0, NULL, 0},
        {"--lr", LNL_FLAG_FLOAT, &lr, "learning rate", 0, 10, NULL, 0},
        {"--x", LNL_FLAG_FLOAT, &x, "any number", 1, 0, NULL, 0},
        {"--schedule", LNL_FLAG_STR, &sched, "schedule", 1, 0, "cosine|linear|constant", 0},
        {"--path", LNL_FLAG_STR, &path, "a path", 1, 0, NULL, 0},
        {"--quiet", LNL_FLAG_BOOL, &quiet, "quiet", 1, 0, NULL, 0},
        {"--input", LNL_FLAG_LIST, &list, "files", 1, 0, NULL, 0},
    };
    const char *pos[2];
    int npos;
    LnlErr e = {""};
    int r = lnl_flags_parse("fuzz", NULL, flags, (int)(sizeof flags / sizeof flags[0]), argc, argv, pos, 2, &npos, &e);
    FUZZ_ASSERT(r == LNL_FLAGS_OK || r == LNL_FLAGS_HELP || (r == LNL_FLAGS_ERROR && e.msg[0]), "flag parse result %d", r);
    if (r == LNL_FLAGS_OK) {
        FUZZ_ASSERT(steps >= 1 && steps <= 1LL << 40 && lr >= 0 && lr <= 10, "range");
        FUZZ_ASSERT(strcmp(sched, "cosine") == 0 || strcmp(sched, "linear") == 0 || strcmp(sched, "constant") == 0,
                    "choices");
    }
    free(list.items);
    for (int i = 1; i < argc; i++) {
        long long v;
        double d;
        e.msg[0] = 0;
        fuzz_check(lnl_parse_int(argv[i], -5, 1LL << 40, &v, "int", &e), &e, "lnl_parse_int");
        e.msg[0] = 0;
        fuzz_check(lnl_parse_double(argv[i], -1e300, 1e300, &d, "double", &e), &e, "lnl_parse_double");
    }
    free(buf);
    return 0;
}
