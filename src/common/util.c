/* Shared helpers: error reporting, checked allocation and I/O, atomic output, number parsing. */
#define _POSIX_C_SOURCE 200809L
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

/* The infix of an atomic write's temporary file: "<path>.tmp.<pid>" (lnl_atomic_open). */
#define ATOMIC_TMP ".tmp."

int lnl_err(LnlErr *e, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* One fprintf, so that stderr (unbuffered) gets the line in one write and the lines of several
 * processes sharing it (MPI ranks) do not interleave. */
static void print_error(const char *fmt, va_list ap) {
    char *msg = NULL;
    fflush(stdout);
    if (vasprintf(&msg, fmt, ap) < 0) {
        fputs("lnlab: error: (no memory for the message)\n", stderr);
        return;
    }
    fprintf(stderr, "lnlab: error: %s\n", msg);
    free(msg);
}

void lnl_print_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_error(fmt, ap);
    va_end(ap);
}

void lnl_die(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_error(fmt, ap);
    va_end(ap);
    exit(code);
}

static void oom(size_t n, const char *file, int line) {
    fprintf(stderr, "lnlab: error: out of memory allocating %zu bytes at %s:%d\n", n, file, line);
    exit(1);
}

void *lnl_malloc_at(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    if (!p) oom(n, file, line);
    return p;
}

void *lnl_calloc_at(size_t n, size_t size, const char *file, int line) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) oom(n * size, file, line);
    return p;
}

void *lnl_realloc_at(void *p, size_t n, const char *file, int line) {
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n, file, line);
    return q;
}

int lnl_in_choices(const char *v, const char *choices) {
    size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0) return 1;
        if (!bar) break;
        p = bar + 1;
    }
    return 0;
}

char *lnl_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = lnl_malloc(n);
    memcpy(p, s, n);
    return p;
}

int lnl_file_size(const char *path, uint64_t *size, LnlErr *e) {
    struct stat st;
    if (stat(path, &st) != 0) return lnl_err(e, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return lnl_err(e, "%s: not a regular file", path);
    *size = (uint64_t)st.st_size;
    return 0;
}

int lnl_read_file(const char *path, char **out, size_t *len, LnlErr *e) {
    uint64_t size;
    if (lnl_file_size(path, &size, e)) return -1;
    FILE *f = fopen(path, "rb");
    if (!f) return lnl_err(e, "%s: %s", path, strerror(errno));
    char *buf = lnl_malloc((size_t)size + 1);
    if (lnl_fread_exact(f, buf, (size_t)size, path, e)) {
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    buf[size] = 0;
    *out = buf;
    if (len) *len = (size_t)size;
    return 0;
}

int lnl_fread_exact(FILE *f, void *buf, size_t n, const char *path, LnlErr *e) {
    long off = ftell(f);
    size_t got = fread(buf, 1, n, f);
    if (got != n) {
        if (ferror(f)) return lnl_err(e, "%s: read error at offset %ld: %s", path, off, strerror(errno));
        return lnl_err(e, "%s: truncated: expected %zu bytes at offset %ld, found %zu", path, n, off, got);
    }
    return 0;
}

int lnl_fwrite_exact(FILE *f, const void *buf, size_t n, const char *path, LnlErr *e) {
    if (n && fwrite(buf, 1, n, f) != n) return lnl_err(e, "%s: write failed: %s", path, strerror(errno));
    return 0;
}

/* Fault injection (LNL_FAULT_ENV): bytes written to atomic files by this process so far. The one
 * piece of process-wide mutable state here; it exists only for tests that simulate a full disk. */
static uint64_t fault_written;

typedef struct {
    int fd;
    uint64_t limit;
} FaultCookie;

static ssize_t fault_write(void *c, const char *buf, size_t n) {
    FaultCookie *fc = c;
    if (fault_written >= fc->limit) {
        errno = ENOSPC;
        return -1;
    }
    /* a write that does not fit stores what still fits, then fails, like a file system that
     * fills up in the middle of a write */
    int full = n > fc->limit - fault_written;
    ssize_t w = write(fc->fd, buf, full ? (size_t)(fc->limit - fault_written) : n);
    if (w > 0) fault_written += (uint64_t)w;
    if (full && w >= 0) errno = ENOSPC;
    return w;
}

static ssize_t fault_read(void *c, char *buf, size_t n) {
    return read(((FaultCookie *)c)->fd, buf, n);
}

static int fault_seek(void *c, off64_t *off, int whence) {
    off_t r = lseek(((FaultCookie *)c)->fd, (off_t)*off, whence);
    if (r < 0) return -1;
    *off = (off64_t)r;
    return 0;
}

static int fault_close(void *c) {
    int r = close(((FaultCookie *)c)->fd);
    free(c);
    return r;
}

/* A stream on fd whose writes fail once the fault limit is reached, or NULL if none is asked for. */
static FILE *fault_stream(int fd) {
    const char *v = getenv(LNL_FAULT_ENV);
    long long limit;
    if (!v || !*v || lnl_parse_int(v, 0, INT64_MAX, &limit, LNL_FAULT_ENV, NULL)) return NULL;
    FaultCookie *fc = lnl_malloc(sizeof *fc);
    fc->fd = fd;
    fc->limit = (uint64_t)limit;
    cookie_io_functions_t io = {fault_read, fault_write, fault_seek, fault_close};
    FILE *f = fopencookie(fc, "w+", io);
    if (!f) free(fc);
    return f;
}

int lnl_atomic_open(LnlAtomicFile *af, const char *path, LnlErr *e) {
    size_t n = strlen(path) + 32;
    af->path = lnl_strdup(path);
    af->tmp = lnl_malloc(n);
    snprintf(af->tmp, n, "%s" ATOMIC_TMP "%ld", path, (long)getpid());
    af->fd = open(af->tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    af->f = af->fd < 0 ? NULL : fault_stream(af->fd);
    if (af->fd >= 0 && !af->f) af->f = fdopen(af->fd, "w+b");
    if (!af->f) {
        int err = errno;
        if (af->fd >= 0) {
            close(af->fd);
            unlink(af->tmp);
        }
        af->fd = -1;
        int r = lnl_err(e, "%s: cannot create: %s", af->tmp, strerror(err));
        free(af->path);
        free(af->tmp);
        af->path = af->tmp = NULL;
        return r;
    }
    return 0;
}

/* Makes a rename in path's directory durable. Best effort: some file systems refuse fsync on a
 * directory, and the data itself is already on disk. */
static void sync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? lnl_strdup(path) : lnl_strdup(".");
    if (slash) dir[slash == path ? 1 : slash - path] = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

int lnl_atomic_commit(LnlAtomicFile *af, LnlErr *e) {
    int bad = 0;
    char why[256] = "";
    if (fflush(af->f) != 0 || ferror(af->f)) {
        bad = 1;
        snprintf(why, sizeof why, "write failed: %s", strerror(errno));
    } else if (fsync(af->fd) != 0) {
        bad = 1;
        snprintf(why, sizeof why, "fsync failed: %s", strerror(errno));
    }
    if (fclose(af->f) != 0 && !bad) {
        bad = 1;
        snprintf(why, sizeof why, "close failed: %s", strerror(errno));
    }
    af->f = NULL;
    af->fd = -1;
    if (!bad && rename(af->tmp, af->path) != 0) {
        bad = 1;
        snprintf(why, sizeof why, "rename failed: %s", strerror(errno));
    }
    if (!bad) sync_parent_dir(af->path);
    int r = 0;
    if (bad) {
        unlink(af->tmp);
        r = lnl_err(e, "%s: %s", af->path, why);
    }
    free(af->path);
    free(af->tmp);
    af->path = af->tmp = NULL;
    return r;
}

void lnl_atomic_abort(LnlAtomicFile *af) {
    if (af->f) fclose(af->f);
    if (af->tmp) unlink(af->tmp);
    free(af->path);
    free(af->tmp);
    af->f = NULL;
    af->fd = -1;
    af->path = af->tmp = NULL;
}

int lnl_write_file_atomic(const char *path, const void *buf, size_t n, LnlErr *e) {
    LnlAtomicFile af;
    if (lnl_atomic_open(&af, path, e)) return -1;
    if (lnl_fwrite_exact(af.f, buf, n, af.tmp, e)) {
        lnl_atomic_abort(&af);
        return -1;
    }
    return lnl_atomic_commit(&af, e);
}

void lnl_atomic_remove_stale(const char *dir, int (*ours)(const char *name, void *ctx), void *ctx) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *t = strstr(de->d_name, ATOMIC_TMP);
        if (!t || t == de->d_name) continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(t - de->d_name), de->d_name);
        if (ours && !ours(name, ctx)) continue;
        char *p = lnl_path_join(dir, de->d_name);
        unlink(p);
        free(p);
    }
    closedir(d);
}

int lnl_mkdir_p(const char *path, LnlErr *e) {
    char *p = lnl_strdup(path);
    size_t n = strlen(p);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] == '/' || p[i] == 0) {
            char c = p[i];
            p[i] = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                int r = lnl_err(e, "%s: cannot create directory: %s", p, strerror(errno));
                free(p);
                return r;
            }
            p[i] = c;
        }
    }
    struct stat st;
    int ok = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    free(p);
    if (!ok) return lnl_err(e, "%s: not a directory", path);
    return 0;
}

int lnl_dir_lock(const char *dir, const char *name, const char *what, int *fd, LnlErr *e) {
    char *path = lnl_path_join(dir, name);
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (*fd < 0) {
        int r = lnl_err(e, "%s: cannot create the lock file: %s", path, strerror(errno));
        free(path);
        return r;
    }
    if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        char buf[32] = "";
        ssize_t n = pread(*fd, buf, sizeof buf - 1, 0);
        buf[n > 0 ? n : 0] = 0;
        long pid = strtol(buf, NULL, 10);
        close(*fd);
        *fd = -1;
        free(path);
        if (err != EWOULDBLOCK) return lnl_err(e, "%s/%s: cannot lock: %s", dir, name, strerror(err));
        if (pid > 0) return lnl_err(e, "%s: another lnlab %s (PID %ld) is using this directory", dir, what, pid);
        return lnl_err(e, "%s: another lnlab %s is using this directory", dir, what);
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    /* the PID is a courtesy for the message above; the lock itself is the flock */
    if (ftruncate(*fd, 0) != 0 || pwrite(*fd, pid, (size_t)n, 0) != n) {
        int r = lnl_err(e, "%s: cannot write the lock file: %s", path, strerror(errno));
        close(*fd);
        *fd = -1;
        free(path);
        return r;
    }
    free(path);
    return 0;
}

int lnl_dir_lock_held(const char *dir, const char *name, long *pid) {
    *pid = 0;
    char *path = lnl_path_join(dir, name);
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0) return errno == ENOENT ? 0 : -1;
    char buf[32] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    *pid = strtol(buf, NULL, 10);
    int ok = fstat(fd, &st) == 0;
    close(fd);
    if (!ok) return -1;
    FILE *f = fopen("/proc/locks", "r");
    if (!f) {
        if (*pid <= 0) return -1;
        return kill((pid_t)*pid, 0) == 0 || errno == EPERM;
    }
    /* "1: FLOCK  ADVISORY  WRITE 1896 fe:00:11206977 0 EOF": major:minor (hex) and inode */
    char line[256];
    int held = 0;
    while (!held && fgets(line, sizeof line, f)) {
        char kind[16];
        unsigned maj, min;
        unsigned long long ino;
        long holder;
        if (sscanf(line, "%*s %15s %*s %*s %ld %x:%x:%llu", kind, &holder, &maj, &min, &ino) == 5 &&
            !strcmp(kind, "FLOCK") && maj == major(st.st_dev) && min == minor(st.st_dev) && ino == (unsigned long long)st.st_ino)
            held = 1;
    }
    fclose(f);
    return held;
}

int lnl_random_hex(char *out, size_t n, LnlErr *e) {
    unsigned char b[64];
    if (n > sizeof b) n = sizeof b;
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(b + got, n - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return lnl_err(e, "getrandom: %s", strerror(errno));
        got += (size_t)r;
    }
    for (size_t i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
    out[2 * n] = 0;
    return 0;
}

char *lnl_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = lnl_malloc(a + b + 2);
    memcpy(p, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

int lnl_path_absolute(const char *path, char **out, LnlErr *e) {
    *out = NULL;
    if (path[0] == '/' || path[0] == 0) { /* "" names no file from anywhere */
        *out = lnl_strdup(path);
        return 0;
    }
    size_t cap = 256;
    char *cwd = lnl_malloc(cap);
    while (!getcwd(cwd, cap)) {
        if (errno != ERANGE) {
            int r = lnl_err(e, "%s: cannot make the path absolute: the current directory is unknown: %s", path,
                            strerror(errno));
            free(cwd);
            return r;
        }
        cap *= 2;
        cwd = lnl_realloc(cwd, cap);
    }
    if (strcmp(path, ".") == 0) {
        *out = cwd;
        return 0;
    }
    *out = lnl_path_join(cwd, path);
    free(cwd);
    return 0;
}

char *lnl_exe_path(void) {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0 || n >= (ssize_t)sizeof buf - 1) return lnl_strdup("/proc/self/exe");
    buf[n] = 0;
    return lnl_strdup(buf);
}

char *lnl_exe_dir(void) {
    char *path = lnl_exe_path();
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    free(path);
    if (buf[0] != '/') return lnl_strdup(".");
    char *slash = strrchr(buf, '/');
    if (!slash) return lnl_strdup(".");
    if (slash == buf) slash[1] = 0;
    else *slash = 0;
    return lnl_strdup(buf);
}

int lnl_parse_int(const char *s, long long lo, long long hi, long long *out, const char *what, LnlErr *e) {
    if (!s || !*s) return lnl_err(e, "%s: expected an integer, got an empty value", what);
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end != 0) return lnl_err(e, "%s: expected an integer, got '%s'", what, s);
    if (errno == ERANGE || v < lo || v > hi)
        return lnl_err(e, "%s: %s is out of range [%lld, %lld]", what, s, lo, hi);
    *out = v;
    return 0;
}

int lnl_parse_double(const char *s, double lo, double hi, double *out, const char *what, LnlErr *e) {
    if (!s || !*s) return lnl_err(e, "%s: expected a number, got an empty value", what);
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (*end != 0) return lnl_err(e, "%s: expected a number, got '%s'", what, s);
    if (!isfinite(v)) return lnl_err(e, "%s: expected a finite number, got '%s'", what, s);
    if (v < lo || v > hi) return lnl_err(e, "%s: %s is out of range [%g, %g]", what, s, lo, hi);
    *out = v;
    return 0;
}

double lnl_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void lnl_buf_append(LnlBuf *b, const void *p, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        b->data = lnl_realloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

void lnl_buf_printf(LnlBuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        lnl_buf_append(b, tmp, (size_t)n);
        return;
    }
    char *big = lnl_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    lnl_buf_append(b, big, (size_t)n);
    free(big);
}

void lnl_buf_free(LnlBuf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int lnl_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void lnl_json_num(char *b, size_t n, const char *fmt, double x) {
    if (isfinite(x)) snprintf(b, n, fmt, x);
    else snprintf(b, n, "null");
}
