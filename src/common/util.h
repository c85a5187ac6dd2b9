/* Shared helpers: error reporting, checked allocation and I/O, atomic file output, number parsing.
 * Library code never exits on bad input: it fills an LnlErr and returns -1; the CLI prints it. */
#ifndef LNL_UTIL_H
#define LNL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#define LNL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LNL_PRINTF(a, b)
#endif

/* One error message, naming the file/flag and the problem. */
typedef struct {
    char msg[1024];
} LnlErr;

/* Formats the message into e (if e is non-NULL) and returns -1, so `return lnl_err(e, ...)` works. */
int lnl_err(LnlErr *e, const char *fmt, ...) LNL_PRINTF(2, 3);

/* Prints "lnlab: error: <fmt>" to stderr and exits with code. For the CLI layer only. */
void lnl_die(int code, const char *fmt, ...) LNL_PRINTF(2, 3);
/* The same message without exiting, for a caller that has to clean up before it exits. */
void lnl_print_error(const char *fmt, ...) LNL_PRINTF(1, 2);

/* Allocation that cannot fail silently: on failure prints size and call site, exits 1. */
#define lnl_malloc(n) lnl_malloc_at((n), __FILE__, __LINE__)
#define lnl_calloc(n, s) lnl_calloc_at((n), (s), __FILE__, __LINE__)
#define lnl_realloc(p, n) lnl_realloc_at((p), (n), __FILE__, __LINE__)
void *lnl_malloc_at(size_t n, const char *file, int line);
void *lnl_calloc_at(size_t n, size_t size, const char *file, int line);
void *lnl_realloc_at(void *p, size_t n, const char *file, int line);
char *lnl_strdup(const char *s);
/* 1 if v is one of the '|'-separated words of choices ("gpt2|byte"), else 0. */
int lnl_in_choices(const char *v, const char *choices);

/* Reads a whole file into a NUL-terminated buffer (caller frees). */
int lnl_read_file(const char *path, char **out, size_t *len, LnlErr *e);
/* Size of a regular file in bytes; -1 with an error if it cannot be stat'ed. */
int lnl_file_size(const char *path, uint64_t *size, LnlErr *e);
/* Exact reads/writes that report the file and offset on failure. */
int lnl_fread_exact(FILE *f, void *buf, size_t n, const char *path, LnlErr *e);
int lnl_fwrite_exact(FILE *f, const void *buf, size_t n, const char *path, LnlErr *e);

/* Atomic output: data goes to "<path>.tmp.<pid>", which is fsync'ed and renamed over path on
 * commit (then the directory is fsync'ed so the rename survives a crash), and removed on abort.
 * A half-written file never appears under the final name, and a failed write (full disk, I/O
 * error) leaves the previous file under that name untouched.
 *
 * Fault injection for tests (always compiled in, off unless the variable is set): with
 * LNLAB_FAULT_WRITE_AFTER_BYTES=N in the environment, writes to atomic files fail with ENOSPC
 * ("No space left on device") once this process has written N bytes to atomic files in all,
 * as if the disk filled up at that point. */
#define LNL_FAULT_ENV "LNLAB_FAULT_WRITE_AFTER_BYTES"
typedef struct {
    FILE *f;
    int fd; /* the file descriptor under f (use it instead of fileno(f)) */
    char *path;
    char *tmp;
} LnlAtomicFile;
int lnl_atomic_open(LnlAtomicFile *af, const char *path, LnlErr *e);
int lnl_atomic_commit(LnlAtomicFile *af, LnlErr *e);
void lnl_atomic_abort(LnlAtomicFile *af);
/* Writes a whole buffer atomically. */
int lnl_write_file_atomic(const char *path, const void *buf, size_t n, LnlErr *e);
/* Removes the "<NAME>.tmp.<pid>" files in dir that an atomic write left when its process was
 * killed, for each NAME that ours(NAME, ctx) accepts (ours NULL: every NAME). Only for a caller
 * that holds the directory (a lock): another process's write in progress looks the same. */
void lnl_atomic_remove_stale(const char *dir, int (*ours)(const char *name, void *ctx), void *ctx);

/* Creates a directory and its parents (like mkdir -p). */
int lnl_mkdir_p(const char *path, LnlErr *e);
/* Takes DIR/NAME (created if missing) as an exclusive lock held until *fd is closed (at exit at
 * the latest, so a killed holder leaves no stale lock): the directory belongs to this process.
 * The holder's PID is written into the file; when another process holds the lock, the error
 * names it: "DIR: another lnlab WHAT (PID N) is using this directory". The descriptor is not
 * inherited by children (O_CLOEXEC). */
int lnl_dir_lock(const char *dir, const char *name, const char *what, int *fd, LnlErr *e);
/* Whether a process holds the lock DIR/NAME of lnl_dir_lock, found without taking it (a reader
 * must never delay or fail the holder): 1 held (*pid the PID written in the file, 0 if none),
 * 0 not held or no such file, -1 unknown. Linux lists flock locks by device and inode in
 * /proc/locks; where that cannot be read, a live process with the file's PID counts as the holder. */
int lnl_dir_lock_held(const char *dir, const char *name, long *pid);
/* n random bytes from the kernel as 2n lowercase hex digits into out (room for 2n+1). Fails only
 * if the kernel has no randomness to give. */
int lnl_random_hex(char *out, size_t n, LnlErr *e);
/* Joins a directory and a name into a new string. */
char *lnl_path_join(const char *dir, const char *name);
/* path made absolute: a relative path is prefixed with the current directory (as getcwd reports
 * it; symbolic links in path are kept, "." and ".." too), so it names the same file from any
 * working directory; an absolute path is copied. *out is new (caller frees). Fails only if the
 * current directory cannot be found (it was removed). */
int lnl_path_absolute(const char *path, char **out, LnlErr *e);
/* Directory holding the running executable (from /proc/self/exe), or "." if unknown. */
char *lnl_exe_dir(void);
/* The running executable's path (readlink of /proc/self/exe, which valgrind reports as the program
 * it runs, not itself), or "/proc/self/exe" if it cannot be read. Caller frees. */
char *lnl_exe_path(void);

/* Strict number parsing: the whole string must be a finite number in range. `what` names the
 * flag or field for the message. */
int lnl_parse_int(const char *s, long long lo, long long hi, long long *out, const char *what, LnlErr *e);
int lnl_parse_double(const char *s, double lo, double hi, double *out, const char *what, LnlErr *e);

/* Monotonic wall clock in seconds. */
double lnl_now(void);
/* x printed with fmt (one double conversion) into b, or "null" when x is not finite: JSON has no
 * NaN or infinity. */
void lnl_json_num(char *b, size_t n, const char *fmt, double x);

/* Growable byte buffer. */
typedef struct {
    char *data;
    size_t len, cap;
} LnlBuf;
void lnl_buf_append(LnlBuf *b, const void *p, size_t n);
void lnl_buf_printf(LnlBuf *b, const char *fmt, ...) LNL_PRINTF(2, 3);
void lnl_buf_free(LnlBuf *b);

/* qsort comparator of doubles, ascending. */
int lnl_cmp_double(const void *a, const void *b);

#endif
