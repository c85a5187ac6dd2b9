/* Which lnlab this is: the version, the commit it was built from and the build's options, for
 * `lnlab --version` and the provenance of every run and study record. The commit and options
 * come from a source the build generates (mk/build.mk, BUILD_DIR/gen/version.c). */
#ifndef LNL_VERSION_H
#define LNL_VERSION_H

#include <stddef.h>

#define LNL_VERSION "0.3.0"

extern const char *const lnl_build_commit;  /* "1a2b3c4d5e6f", with "-dirty" for uncommitted changes; "unknown" */
extern const char *const lnl_build_options; /* what the build found: "PCRE2 cJSON OpenBLAS OpenMP MPI nvcc" */
extern const char *const lnl_build_flags;   /* the compiler and its optimization flags */

/* "lnlab 0.3.0 (commit 1a2b3c4d5e6f)" into buf. */
void lnl_version_line(char *buf, size_t n);
/* Whether this build and CPU run bf16 matrix products (AVX512-BF16). */
int lnl_version_bf16(void);

/* The command line of an lnlab command given its argv (argv[0] the command's name, "train"):
 * "lnlab train ...", words joined by spaces, single-quoted where a shell would need it (caller
 * frees). */
char *lnl_command_line(int argc, char **argv);
/* The CPU's model name (/proc/cpuinfo), or "unknown". */
void lnl_cpu_name(char *buf, size_t n);

/* Adds to the JSON object o (a cJSON *) the key "provenance": {"lnlab", "commit", "build",
 * "date" (UTC, ISO 8601), "cpu", "cpus" (online), "threads", "command"} (docs/USAGE.md). */
void lnl_provenance_add(void *o, const char *command, int threads);

#endif
