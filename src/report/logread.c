/* Reading log.jsonl (logread.h): one pass over the lines, each record sorted by its kind. */
#include "logread.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static double num(const cJSON *o, const char *k) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(it) ? it->valuedouble : NAN;
}

/* Appends v to an array of n entries that grows by doubling. */
static void push(double **a, int n, double v) {
    if ((n & (n - 1)) == 0) *a = lnl_realloc(*a, sizeof(double) * (size_t)(n ? 2 * n : 1));
    (*a)[n] = v;
}

static void add_step(LnlLogRecords *g, const cJSON *o, double step) {
    int n = g->n;
    push(&g->step, n, step);
    push(&g->loss, n, num(o, "loss"));
    push(&g->lr, n, num(o, "lr"));
    double gn = num(o, "grad_norm");
    push(&g->grad_norm, n, gn < 0 ? NAN : gn); /* -1: the norm was not finite */
    push(&g->tokens_per_s, n, num(o, "tokens_per_s"));
    push(&g->ms, n, num(o, "ms"));
    if ((n & (n - 1)) == 0) g->skipped = lnl_realloc(g->skipped, (size_t)(n ? 2 * n : 1));
    g->skipped[n] = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "skipped"));
    g->n++;
}

/* The line with printf's non-finite numbers (nan, -nan, inf, -inf), which are not JSON, as null:
 * what the log format asks for (a writer once printed a NaN loss with %f). NULL if it has none. */
static char *nonfinite_to_null(const char *line) {
    LnlBuf b = {0};
    int in_str = 0, changed = 0;
    for (const char *p = line; *p; p++) {
        if (in_str) {
            if (*p == '\\' && p[1]) lnl_buf_append(&b, p++, 1);
            else if (*p == '"') in_str = 0;
        } else if (*p == '"') {
            in_str = 1;
        } else {
            const char *q = p + (*p == '-' || *p == '+');
            size_t n = !strncasecmp(q, "nan", 3) ? 3 : !strncasecmp(q, "inf", 3) ? 3 : 0;
            if (n && !strncasecmp(q, "infinity", 8)) n = 8;
            if (n && !((q[n] >= 'a' && q[n] <= 'z') || (q[n] >= 'A' && q[n] <= 'Z'))) {
                lnl_buf_append(&b, "null", 4);
                p = q + n - 1;
                changed = 1;
                continue;
            }
        }
        lnl_buf_append(&b, p, 1);
    }
    if (!changed) {
        lnl_buf_free(&b);
        return NULL;
    }
    return b.data;
}

int lnl_log_read(LnlLogRecords *g, const char *path, int mode, LnlErr *e) {
    memset(g, 0, sizeof *g);
    g->diverged_at_step = -1;
    char *text = NULL;
    size_t len = 0;
    if (lnl_read_file(path, &text, &len, e)) return -1;
    char *p = text, *end = text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        int whole = nl != NULL;
        if (nl) *nl = 0;
        g->lines++;
        char *line = p;
        p = nl ? nl + 1 : end;
        if (!line[strspn(line, " \t\r")]) continue; /* blank */
        cJSON *o = whole ? cJSON_Parse(line) : NULL;
        if (!o && whole) {
            char *fixed = nonfinite_to_null(line);
            if (fixed) o = cJSON_Parse(fixed);
            free(fixed);
        }
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o);
            if (mode == LNL_LOG_SKIP_BAD) {
                g->bad_lines++;
                continue;
            }
            if (p >= end) { /* the last line: a record still being written, or cut by a kill */
                g->torn_line = g->lines;
                continue;
            }
            long long at = g->lines;
            lnl_err(e, "%s:%lld: not a JSON record (%.40s%s)", path, at, line, strlen(line) > 40 ? "..." : "");
            free(text);
            lnl_log_free(g);
            return -1;
        }
        double step = num(o, "step");
        cJSON *diag = cJSON_GetObjectItemCaseSensitive(o, "diag");
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "diverged"))) {
            g->diverged_at_step = isfinite(step) ? (long long)step : 0;
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "cause");
            snprintf(g->cause, sizeof g->cause, "%s", cJSON_IsString(c) ? c->valuestring : "");
        } else if (cJSON_IsObject(diag) && isfinite(step)) {
            if ((g->ndiag & (g->ndiag - 1)) == 0)
                g->diag = lnl_realloc(g->diag, sizeof *g->diag * (size_t)(g->ndiag ? 2 * g->ndiag : 1));
            push(&g->dstep, g->ndiag, step);
            g->diag[g->ndiag++] = cJSON_DetachItemViaPointer(o, diag);
        } else if (cJSON_GetObjectItemCaseSensitive(o, "val_loss") && isfinite(step)) {
            push(&g->vstep, g->nval, step);
            push(&g->val, g->nval, num(o, "val_loss"));
            g->nval++;
        } else if (cJSON_GetObjectItemCaseSensitive(o, "loss") && isfinite(step)) {
            add_step(g, o, step);
        }
        cJSON_Delete(o);
    }
    free(text);
    return 0;
}

void lnl_log_free(LnlLogRecords *g) {
    free(g->step);
    free(g->loss);
    free(g->lr);
    free(g->grad_norm);
    free(g->tokens_per_s);
    free(g->ms);
    free(g->skipped);
    free(g->vstep);
    free(g->val);
    free(g->dstep);
    for (int i = 0; i < g->ndiag; i++) cJSON_Delete(g->diag[i]);
    free(g->diag);
    memset(g, 0, sizeof *g);
    g->diverged_at_step = -1;
}

void lnl_log_matrix(const LnlLogRecords *g, const char *key, LnlLogMatrix *m) {
    memset(m, 0, sizeof *m);
    m->rows = g->ndiag;
    int L = 0;
    for (int i = 0; i < g->ndiag; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(g->diag[i], key);
        int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
        if (n > m->cols) m->cols = n;
        double l = num(g->diag[i], "layers");
        if (isfinite(l) && (int)l > L) L = (int)l;
    }
    m->first_layer = m->cols == L + 1 ? 0 : 1;
    size_t cells = (size_t)m->rows * (size_t)m->cols;
    m->v = lnl_malloc(sizeof(double) * (cells ? cells : 1));
    for (int i = 0; i < m->rows; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(g->diag[i], key);
        const cJSON *x = cJSON_IsArray(a) ? a->child : NULL;
        for (int j = 0; j < m->cols; j++, x = x ? x->next : NULL)
            m->v[i * m->cols + j] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
    }
}
