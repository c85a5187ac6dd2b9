/* RUN/log.jsonl as the training loop writes it: the records of a step are built in memory and
 * written with one checked write, so the file only ever holds whole records (a write that fails
 * half-way is cut back off), and a failure is reported instead of leaving a hole. Resuming cuts
 * the log back to a checkpoint's step, repairing nothing but a torn last line. Not the record
 * formats (docs/USAGE.md, "log.jsonl"), which the loop and the monitor write.
 *
 * Fault injection for the tests: with LNLAB_FAULT_LOG_FULL=N[:K] in the environment, a write that
 * would take the log past N bytes stores what fits and then fails with ENOSPC, like a file system
 * that fills up; after K such failures (default: never) writes succeed again (the disk was freed). */
#ifndef LNL_RUNLOG_H
#define LNL_RUNLOG_H

#include <stdio.h>
#include <sys/types.h>

#include "../common/util.h"

#define LNL_LOG_FILE "log.jsonl"
#define LNL_FAULT_LOG_ENV "LNLAB_FAULT_LOG_FULL"

typedef struct {
    char *path;    /* NULL: records are built and dropped (an MPI rank other than 0) */
    int fd;        /* -1 when path is NULL */
    off_t good;    /* bytes on disk, all whole records */
    FILE *rec;     /* the pending records (open_memstream over buf/len) */
    char *buf;
    size_t len;
    /* fault injection (see above); fault_at < 0: off */
    long long fault_at, fault_left;
} LnlRunLog;

/* A new, empty log at path (an existing file is replaced). */
int lnl_runlog_create(LnlRunLog *l, const char *path, LnlErr *e);
/* A log whose records are dropped, for processes that do not write the run's files. */
int lnl_runlog_discard(LnlRunLog *l, LnlErr *e);
/* Opens the log of a run resumed after `step` (the newest checkpoint's step), for appending:
 *   - records of steps up to `step` are kept and must be there: the log must hold the training
 *     record of `step` (a checkpoint is only written after its records are on disk);
 *   - records past `step` are dropped (the resumed run writes them again), and a note on msgs
 *     (if not NULL) says how many;
 *   - a last line cut short (no newline, or not JSON) after the records of `step` is removed,
 *     with a note; any other line that is not a JSON object is an error naming the line.
 * A missing log is an error. Nothing is changed on an error. */
int lnl_runlog_resume(LnlRunLog *l, const char *path, long step, FILE *msgs, LnlErr *e);
/* Where the records of the current step are printed (one JSON object per line). */
FILE *lnl_runlog_records(LnlRunLog *l);
/* Writes the pending records. On a failure the file is cut back to its last whole record, the
 * records stay pending (a later flush tries them again), and e says "PATH: write failed: why". */
int lnl_runlog_flush(LnlRunLog *l, LnlErr *e);
/* lnl_runlog_flush, then fsync: the records are durable (before a checkpoint of their step). */
int lnl_runlog_sync(LnlRunLog *l, LnlErr *e);
/* Closes the file (pending records are dropped: flush or sync first). */
void lnl_runlog_close(LnlRunLog *l);

#endif
