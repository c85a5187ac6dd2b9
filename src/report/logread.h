/* Reading a run's log.jsonl (the records of docs/USAGE.md, "log.jsonl records") into arrays: the
 * one reader of the study's curves, its tidy export, the heatmaps and `lnlab plot`. It writes
 * nothing; the writer is src/train/runlog.h. */
#ifndef LNL_REPORT_LOGREAD_H
#define LNL_REPORT_LOGREAD_H

#include "../common/util.h"

/* How lines that are not JSON objects are treated. */
enum {
    /* Strict: a last line cut short (no newline, or not a JSON object) is skipped and reported in
     * torn_line, as a log being written looks between two writes; any other such line is an
     * error naming the file and line. */
    LNL_LOG_STRICT = 0,
    /* Every line that is not a JSON object is skipped and counted in bad_lines. */
    LNL_LOG_SKIP_BAD = 1
};

typedef struct {
    /* step records, in log order (null in the log: NAN; grad_norm -1 for "not finite": NAN) */
    int n;
    double *step, *loss, *lr, *grad_norm, *tokens_per_s, *ms; /* (n) */
    unsigned char *skipped;                                    /* (n) 1: skipped as a spike */
    /* evaluation records */
    int nval;
    double *vstep, *val; /* (nval) */
    /* diagnostics records: the "diag" objects (cJSON *, owned), in log order */
    int ndiag;
    double *dstep; /* (ndiag) */
    void **diag;   /* (ndiag) */
    long long diverged_at_step; /* the divergence record's step; -1: none */
    char cause[128];
    long long lines;     /* lines read */
    long long torn_line; /* 1-based line number of a skipped torn last line; 0: none */
    long long bad_lines; /* lines skipped under LNL_LOG_SKIP_BAD */
} LnlLogRecords;

/* Reads path. A missing or unreadable file is an error naming it. A number printf wrote as nan or
 * inf (not JSON) reads as null. */
int lnl_log_read(LnlLogRecords *g, const char *path, int mode, LnlErr *e);
void lnl_log_free(LnlLogRecords *g);

/* A per-layer figure of the diag records as a matrix: v[i * cols + j] is record i's entry j,
 * the layer first_layer + j (arrays of L + 1 entries are layers 0..L, arrays of L blocks 1..L);
 * NAN where the record has null or no such entry. rows = g->ndiag. */
typedef struct {
    int rows, cols, first_layer;
    double *v; /* (rows * cols) */
} LnlLogMatrix;
/* Fills m with the figure named key (a per-layer metric of src/diag/metrics.h with LNL_LMF_DIAG:
 * hidden_mean_abs, grad_norm, ...); cols = 0 when no record has it. Caller frees m->v. */
void lnl_log_matrix(const LnlLogRecords *g, const char *key, LnlLogMatrix *m);

#endif
