/* Shared by the fuzz targets. Each fuzz/fuzz_<reader>.c defines LLVMFuzzerTestOneInput for one
 * reader, and is built two ways: with libFuzzer (`make fuzz`: clang, -fsanitize=fuzzer,address,
 * undefined) and with fuzz/replay_main.c in the normal build (and under `make sanitize`), where
 * tests/cli/test_fuzz_regressions.sh feeds it the committed seed corpus and every crash input ever
 * found (fuzz/corpus/<reader>/, fuzz/regressions/<reader>/). A target returns for any input; it
 * aborts, which both builds report as a failure, when a reader fails without a message or an
 * invariant of an accepted input breaks. The readers take paths, so inputs go through a file in a
 * scratch directory of this process. */
#ifndef LNL_FUZZ_COMMON_H
#define LNL_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The scratch directory: one per process, removed at exit (a harness may keep process state;
 * the library may not). */
static char fuzz_dir_path[64];
static char fuzz_files[8][160];
static int fuzz_nfiles;

static inline void fuzz_cleanup(void) {
    for (int i = 0; i < fuzz_nfiles; i++) unlink(fuzz_files[i]);
    if (fuzz_dir_path[0]) rmdir(fuzz_dir_path);
}

static inline const char *fuzz_dir(void) {
    if (!fuzz_dir_path[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%.40s/lnlab-fuzz.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(fuzz_dir_path)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fuzz_cleanup);
    }
    return fuzz_dir_path;
}

/* Writes data to <scratch>/name (replacing it) and returns the path. */
static inline const char *fuzz_file(const char *name, const void *data, size_t n) {
    static char path[160];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    int known = 0;
    for (int i = 0; i < fuzz_nfiles; i++) known |= strcmp(fuzz_files[i], path) == 0;
    if (!known && fuzz_nfiles < 8) snprintf(fuzz_files[fuzz_nfiles++], sizeof fuzz_files[0], "%s", path);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror("fuzz: writing the input file");
        abort();
    }
    return path;
}

/* A reader's verdict: success, or a failure with a message. */
static inline void fuzz_check(int r, const LnlErr *e, const char *what) {
    if (r != 0 && (r != -1 || e->msg[0] == 0)) {
        fprintf(stderr, "fuzz: %s returned %d without an error message\n", what, r);
        abort();
    }
}

/* An invariant of an accepted input. */
#define FUZZ_ASSERT(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz: %s:%d: invariant '%s' broken: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
