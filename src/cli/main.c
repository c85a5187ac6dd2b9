/* lnlab: dispatch `lnlab <command> [flags]` to src/cli/cmd_<command>.c. */
#include <stdio.h>
#include <string.h>

#include "../common/version.h"

#include "../kernels/kernels.h"

#define LNL_COMMAND(name, summary) int cmd_##name(int argc, char **argv);
#include "commands.h"
#undef LNL_COMMAND

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} Command;

static const Command commands[] = {
#define LNL_COMMAND(name, summary) {#name, cmd_##name, summary},
#include "commands.h"
#undef LNL_COMMAND
};

static void usage(FILE *out) {
    fprintf(out, "lnlab: train and measure GPT-2-style Transformers under different normalization placements\n\n");
    fprintf(out, "usage: lnlab <command> [flags]    (lnlab <command> --help for its flags)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    /* before anything else: may re-execute with AVX-512 BLAS kernels (docs/PERFORMANCE.md) */
    lnl_kernels_blas_reexec(argv);
    if (lnl_kernels_use_env()) return 2; /* LNLAB_KERNELS: which kernel backend (kernels.h) */
    lnl_kernels_set_threads(0);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        char line[160];
        lnl_version_line(line, sizeof line);
        int w = printf("%s\nbuilt with: %s%s\ncompiler: %s\n", line, lnl_build_options,
                       lnl_version_bf16() ? " bf16(AVX512-BF16)" : " (no bf16 on this CPU or build)", lnl_build_flags);
        if (w < 0 || fflush(stdout) != 0) {
            fprintf(stderr, "lnlab: error writing stdout\n");
            return 1;
        }
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "lnlab: error: unknown command '%s' (see lnlab --help)\n", argv[1]);
    return 2;
}
