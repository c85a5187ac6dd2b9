/* Runs a fuzz target without libFuzzer: every file named on the command line, or found directly
 * inside a directory named there, is passed to LLVMFuzzerTestOneInput once, in name order.
 * Prints "input PATH" before each (shown only when the test fails) and "ok NAME (N inputs)" at
 * the end; a reader that crashes ends the process, which the test runner counts as a failure. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
    char *buf;
    size_t n;
    LnlErr e;
    if (lnl_read_file(path, &buf, &n, &e)) {
        printf("FAIL replay: %s\n", e.msg);
        return -1;
    }
    printf("input %s\n", path);
    fflush(stdout);
    /* an exact-size copy, so that ASan sees a read past the input's end */
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(copy, n);
    free(copy);
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    int count = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) continue; /* a target may have no regressions yet */
        if (!S_ISDIR(st.st_mode)) {
            bad |= run_file(argv[i]);
            count++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d) continue;
        char **names = NULL;
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.') continue;
            names = realloc(names, sizeof(char *) * (size_t)(n + 1));
            names[n++] = lnl_path_join(argv[i], de->d_name);
        }
        closedir(d);
        if (n) qsort(names, (size_t)n, sizeof(char *), cmp_str);
        for (int k = 0; k < n; k++) {
            bad |= run_file(names[k]);
            count++;
            free(names[k]);
        }
        free(names);
    }
    if (bad) return 1;
    printf("ok %s (%d inputs)\n", name, count);
    return 0;
}
