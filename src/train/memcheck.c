/* Memory estimate for training and the available-memory probe (see memcheck.h). */
#include "memcheck.h"

#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

int lnl_train_memory(const LnlConfig *c, int B, int T, LnlTrainMemory *out, LnlErr *e) {
    memset(out, 0, sizeof *out);
    if (lnl_model_memory(c, B, T, &out->model, e)) return -1;
    out->adam = 2 * out->model.num_alloc * sizeof(float);
    out->total = out->model.params + out->model.grads + out->model.acts + out->model.scratch + out->adam;
    return 0;
}

/* The first number in a small text file (a cgroup limit), or -1; "max" reads as no limit. */
static int read_u64_file(const char *path, uint64_t *out) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char buf[64] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    if (strncmp(buf, "max", 3) == 0) return -1;
    char *end;
    unsigned long long v = strtoull(buf, &end, 10);
    if (end == buf) return -1;
    *out = v;
    return 0;
}

static uint64_t meminfo_available(int *ok) {
    *ok = 0;
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    uint64_t v = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
            v = (uint64_t)kb * 1024;
            *ok = 1;
            break;
        }
    }
    fclose(f);
    return v;
}

/* This process's cgroup path for the v1 "memory" controller (v1 = 1) or the v2 hierarchy, from
 * /proc/self/cgroup ("ID:memory:/PATH" or "0::/PATH"); "" when not found. */
static void cgroup_path(int v1, char *out, size_t n) {
    out[0] = 0;
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b) continue;
        *b = 0;
        int match = v1 ? strcmp(a + 1, "memory") == 0 : (a[1] == 0 && strncmp(line, "0:", 2) == 0);
        if (!match) continue;
        b[1 + strcspn(b + 1, "\n")] = 0;
        snprintf(out, n, "%s", strcmp(b + 1, "/") == 0 ? "" : b + 1);
        break;
    }
    fclose(f);
}

/* limit - usage of this process's cgroup (v2, then v1), or -1 without a limit. */
static int cgroup_available(uint64_t *avail, char *source, size_t source_len) {
    static const char *const files[2][3] = {{"/sys/fs/cgroup", "memory.max", "memory.current"},
                                            {"/sys/fs/cgroup/memory", "memory.limit_in_bytes",
                                             "memory.usage_in_bytes"}};
    for (int v1 = 0; v1 < 2; v1++) {
        char cg[400], lim_path[600], use_path[600];
        cgroup_path(v1, cg, sizeof cg);
        uint64_t lim, used;
        snprintf(lim_path, sizeof lim_path, "%s%s/%s", files[v1][0], cg, files[v1][1]);
        snprintf(use_path, sizeof use_path, "%s%s/%s", files[v1][0], cg, files[v1][2]);
        if (read_u64_file(lim_path, &lim) || read_u64_file(use_path, &used)) continue;
        if (lim >= (1ULL << 62)) continue; /* v1's "no limit" is a huge number */
        *avail = lim > used ? lim - used : 0;
        snprintf(source, source_len, "the cgroup limit in %s minus usage", lim_path);
        return 0;
    }
    return -1;
}

uint64_t lnl_mem_available(int *known, char *source, size_t source_len) {
    const char *env = getenv(LNL_MEM_ENV);
    snprintf(source, source_len, "%s", LNL_MEM_ENV);
    if (env && *env) {
        long long v;
        *known = strcmp(env, "off") != 0 && lnl_parse_int(env, 1, INT64_MAX, &v, LNL_MEM_ENV, NULL) == 0;
        return *known ? (uint64_t)v : 0; /* "0", "off" or not a number: no check */
    }
    int ok;
    uint64_t best = meminfo_available(&ok);
    *known = ok;
    snprintf(source, source_len, "MemAvailable in /proc/meminfo");
    uint64_t cg;
    char cg_src[700];
    if (cgroup_available(&cg, cg_src, sizeof cg_src) == 0 && (!ok || cg < best)) {
        best = cg;
        *known = 1;
        snprintf(source, source_len, "%s", cg_src);
    }
    return best;
}

static double gib(uint64_t b) { return (double)b / (1024.0 * 1024.0 * 1024.0); }

int lnl_mem_check(const LnlConfig *c, int B, int T, LnlErr *e) {
    /* a batch shape the model cannot take is the caller's error to report, in its own words */
    if (B < 1 || T < 1 || T > c->n_positions) return 0;
    LnlTrainMemory tm;
    if (lnl_train_memory(c, B, T, &tm, e)) return -1;
    int known;
    char src[160];
    uint64_t avail = lnl_mem_available(&known, src, sizeof src);
    if (!known || tm.total <= avail) return 0;
    return lnl_err(e,
                   "not enough memory: training this model on %d x %d batches needs %.3f GiB (parameters %.3f, "
                   "gradients %.3f, AdamW moments %.3f, activations %.3f, backward scratch %.3f GiB), but %.3f GiB "
                   "are available (%s); use a smaller --batch, --seq or model",
                   B, T, gib(tm.total), gib(tm.model.params), gib(tm.model.grads), gib(tm.adam), gib(tm.model.acts),
                   gib(tm.model.scratch), gib(avail), src);
}
