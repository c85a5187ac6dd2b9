/* RUN/log.jsonl: whole records, checked writes, and the cut back to a checkpoint (runlog.h). */
#include "runlog.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int records_open(LnlRunLog *l, LnlErr *e) {
    l->buf = NULL;
    l->len = 0;
    l->rec = open_memstream(&l->buf, &l->len);
    if (!l->rec) return lnl_err(e, "log records: cannot allocate their buffer: %s", strerror(errno));
    return 0;
}

static int records_reset(LnlRunLog *l, LnlErr *e) {
    fclose(l->rec);
    free(l->buf);
    return records_open(l, e);
}

static int fault_init(LnlRunLog *l, LnlErr *e) {
    l->fault_at = -1;
    l->fault_left = -1;
    const char *v = getenv(LNL_FAULT_LOG_ENV);
    if (!v || !*v) return 0;
    char *end;
    errno = 0;
    long long at = strtoll(v, &end, 10), left = -1;
    if (*end == ':') left = strtoll(end + 1, &end, 10);
    if (errno || *end || at < 0 || (left < 0 && left != -1))
        return lnl_err(e, "%s: expected N or N:K (bytes, failures), got '%s'", LNL_FAULT_LOG_ENV, v);
    l->fault_at = at;
    l->fault_left = left;
    return 0;
}

static int open_fd(LnlRunLog *l, const char *path, int trunc, LnlErr *e) {
    l->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (trunc ? O_TRUNC : 0), 0666);
    if (l->fd < 0) return lnl_err(e, "%s: cannot open the log: %s", path, strerror(errno));
    l->path = lnl_strdup(path);
    if (fault_init(l, e) || records_open(l, e)) {
        lnl_runlog_close(l);
        return -1;
    }
    return 0;
}

int lnl_runlog_create(LnlRunLog *l, const char *path, LnlErr *e) {
    memset(l, 0, sizeof *l);
    l->fd = -1;
    return open_fd(l, path, 1, e);
}

int lnl_runlog_discard(LnlRunLog *l, LnlErr *e) {
    memset(l, 0, sizeof *l);
    l->fd = -1;
    l->fault_at = -1;
    return records_open(l, e);
}

FILE *lnl_runlog_records(LnlRunLog *l) { return l->rec; }

/* One record's line (NUL-terminated by the caller): 1 for a JSON object with a numeric "step". */
static int parse_record(const char *line, double *step, int *training) {
    cJSON *o = cJSON_Parse(line);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "step");
    int ok = cJSON_IsObject(o) && cJSON_IsNumber(s);
    if (ok) {
        *step = s->valuedouble;
        *training = cJSON_GetObjectItemCaseSensitive(o, "loss") != NULL;
    }
    cJSON_Delete(o);
    return ok;
}

int lnl_runlog_resume(LnlRunLog *l, const char *path, long step, FILE *msgs, LnlErr *e) {
    memset(l, 0, sizeof *l);
    l->fd = -1;
    if (access(path, F_OK) != 0)
        return lnl_err(e, "%s: missing: it held the run's records up to step %ld, the newest checkpoint's, and a "
                          "resumed run would lose them",
                       path, step);
    char *text;
    size_t len;
    if (lnl_read_file(path, &text, &len, e)) return -1;
    size_t keep = 0, pos = 0;
    long line = 0, dropped = 0, torn = 0;
    double last_kept = -1;
    int have_step = 0;
    while (pos < len) {
        line++;
        char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        int last = end + 1 >= len;
        if (nl) *nl = 0;
        double s = 0;
        int training = 0;
        /* a line without its newline was cut short even where it parses */
        if (!nl || !parse_record(text + pos, &s, &training)) {
            if (last && (have_step || dropped)) {
                torn = line;
                break;
            }
            char head[48];
            snprintf(head, sizeof head, "%.40s%s", text + pos, end - pos > 40 ? "..." : "");
            free(text);
            if (last)
                return lnl_err(e, "%s: line %ld, the last, is not a whole record ('%s') and comes before the records "
                                  "of step %ld, the newest checkpoint's: records are missing",
                               path, line, head, step);
            return lnl_err(e, "%s: line %ld is not a JSON record ('%s'); the log is damaged before its end and resume "
                              "does not cut it there: repair or remove that line, then resume again",
                           path, line, head);
        }
        if (s > (double)step) {
            dropped++;
        } else if (dropped) {
            free(text);
            return lnl_err(e, "%s: line %ld (step %g) comes after a record of a later step: the log mixes runs or was "
                              "edited",
                           path, line, s);
        } else {
            keep = end + 1;
            last_kept = s;
            if (s == (double)step && training) have_step = 1;
        }
        pos = end + 1;
    }
    free(text);
    if (!have_step)
        return lnl_err(e, "%s: has no training record of step %ld, the newest checkpoint's (the last kept record is of "
                          "step %g): records are missing",
                       path, step, last_kept);
    if (truncate(path, (off_t)keep) != 0)
        return lnl_err(e, "%s: cannot cut the log at byte %zu: %s", path, keep, strerror(errno));
    if (msgs && dropped)
        fprintf(msgs, "lnlab train: %s: dropped %ld record%s past step %ld (the resumed run writes them again)\n", path,
                dropped, dropped == 1 ? "" : "s", step);
    if (msgs && torn) fprintf(msgs, "lnlab train: %s: removed line %ld, a last line cut short\n", path, torn);
    if (open_fd(l, path, 0, e)) return -1;
    l->good = (off_t)keep;
    return 0;
}

/* write(2) until done, with the injected fault of runlog.h. */
static int put(LnlRunLog *l, const char *p, size_t n) {
    long long at = (long long)l->good;
    while (n > 0) {
        size_t want = n;
        int inject = 0;
        if (l->fault_at >= 0 && l->fault_left != 0 && at + (long long)n > l->fault_at) {
            want = at < l->fault_at ? (size_t)(l->fault_at - at) : 0;
            inject = 1;
        }
        if (want > 0) {
            ssize_t w = write(l->fd, p, want);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) return -1;
            p += w;
            n -= (size_t)w;
            at += w;
            if ((size_t)w < want) continue;
        }
        if (inject) {
            if (l->fault_left > 0) l->fault_left--;
            errno = ENOSPC;
            return -1;
        }
    }
    return 0;
}

int lnl_runlog_flush(LnlRunLog *l, LnlErr *e) {
    if (fflush(l->rec) != 0) return lnl_err(e, "log records: cannot build them in memory: %s", strerror(errno));
    if (!l->path) return records_reset(l, e);
    if (l->len == 0) return 0;
    if (put(l, l->buf, l->len) != 0) {
        int err = errno;
        /* no torn record stays behind: the next flush (or a resume) starts from whole records */
        if (ftruncate(l->fd, l->good) != 0)
            return lnl_err(e, "%s: write failed: %s (and cutting the partial record off failed: %s)", l->path,
                           strerror(err), strerror(errno));
        return lnl_err(e, "%s: write failed: %s", l->path, strerror(err));
    }
    l->good += (off_t)l->len;
    return records_reset(l, e);
}

int lnl_runlog_sync(LnlRunLog *l, LnlErr *e) {
    if (lnl_runlog_flush(l, e)) return -1;
    if (l->path && fsync(l->fd) != 0) return lnl_err(e, "%s: write failed (fsync): %s", l->path, strerror(errno));
    return 0;
}

void lnl_runlog_close(LnlRunLog *l) {
    if (l->rec) fclose(l->rec);
    free(l->buf);
    if (l->fd >= 0) close(l->fd);
    free(l->path);
    memset(l, 0, sizeof *l);
    l->fd = -1;
}
