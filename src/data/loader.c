/* Batch loader over token shards, in order or sampled (order, position and sampling rules in
 * loader.h). */
#include "loader.h"

#include "../common/crc32.h"
#include "../common/rng.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset.h"

const char *lnl_data_order_name(LnlDataOrder o) { return o == LNL_ORDER_RANDOM ? "random" : "sequential"; }

int lnl_data_order_parse(const char *name, LnlDataOrder *o) {
    if (strcmp(name, "random") == 0) *o = LNL_ORDER_RANDOM;
    else if (strcmp(name, "sequential") == 0) *o = LNL_ORDER_SEQUENTIAL;
    else return -1;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_list(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* The shard paths of one split of a directory, in reading order. */
static int list_split(const char *dir, const char *split, char ***out, int *nout, LnlErr *e) {
    char name[256];
    snprintf(name, sizeof name, "%s.bin", split);
    char *single = lnl_path_join(dir, name);
    struct stat st;
    int have_single = stat(single, &st) == 0;

    char pat1[256], pat2[256];
    snprintf(pat1, sizeof pat1, "*_%s_*.bin", split);
    snprintf(pat2, sizeof pat2, "*_%s.bin", split);
    DIR *d = opendir(dir);
    if (!d) {
        free(single);
        return lnl_err(e, "%s: cannot open directory: %s", dir, strerror(errno));
    }
    char **v = NULL;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (fnmatch(pat1, de->d_name, 0) != 0 && fnmatch(pat2, de->d_name, 0) != 0) continue;
        v = lnl_realloc(v, sizeof(char *) * (size_t)(n + 1));
        v[n++] = lnl_path_join(dir, de->d_name);
    }
    closedir(d);
    if (have_single && n > 0) {
        int r = lnl_err(e, "%s: both %s and %d %s shard(s) like %s; give the file to use", dir, name, n, pat1,
                        strrchr(v[0], '/') ? strrchr(v[0], '/') + 1 : v[0]);
        free(single);
        free_list(v, n);
        return r;
    }
    if (have_single) {
        *out = lnl_malloc(sizeof(char *));
        (*out)[0] = single;
        *nout = 1;
        return 0;
    }
    free(single);
    if (n == 0) return lnl_err(e, "%s: no %s split: found neither %s nor %s / %s shards", dir, split, name, pat1, pat2);
    qsort(v, (size_t)n, sizeof(char *), cmp_str);
    *out = v;
    *nout = n;
    return 0;
}

/* The shard holding offset pos (the last shard for pos == total). */
static int shard_at(const LnlLoader *l, uint64_t pos) {
    int i = 0;
    while (i + 1 < l->nshards && pos >= l->start[i + 1]) i++;
    return i;
}

int lnl_loader_open(LnlLoader *l, const char *path, const char *split, int B, int T, int vocab, LnlErr *e) {
    memset(l, 0, sizeof *l);
    if (B <= 0 || T <= 0) return lnl_err(e, "%s: batch size B=%d and sequence length T=%d must be positive", path, B, T);
    struct stat st;
    if (stat(path, &st) != 0) return lnl_err(e, "%s: %s", path, strerror(errno));
    LnlDataMeta meta; /* a meta.json beside the tokens must be readable, even if unused here */
    if (lnl_data_meta_read(path, &meta, e)) return -1;
    lnl_data_meta_free(&meta);
    char **paths = NULL;
    int n = 0;
    if (S_ISDIR(st.st_mode)) {
        if (!split) return lnl_err(e, "%s: is a directory; a split (train or val) is needed to read it", path);
        if (strcmp(split, "train") != 0 && strcmp(split, "val") != 0)
            return lnl_err(e, "%s: split must be train or val, got '%s'", path, split);
        if (list_split(path, split, &paths, &n, e)) return -1;
    } else {
        paths = lnl_malloc(sizeof(char *));
        paths[0] = lnl_strdup(path);
        n = 1;
    }
    l->B = B;
    l->T = T;
    l->nproc = 1;
    l->shards = lnl_calloc((size_t)n, sizeof(LnlShard));
    l->start = lnl_calloc((size_t)n, sizeof(uint64_t));
    l->ustart = lnl_calloc((size_t)n, sizeof(uint64_t));
    for (int i = 0; i < n; i++) {
        if (lnl_shard_open(&l->shards[i], paths[i], LNL_SHARD_AUTO, vocab, e)) {
            free_list(paths, n);
            lnl_loader_free(l);
            return -1;
        }
        l->nshards = i + 1;
        l->start[i] = l->total;
        l->total += l->shards[i].ntok;
        l->ustart[i] = l->usable;
        if (l->shards[i].ntok > (uint64_t)T) l->usable += l->shards[i].ntok - (uint64_t)T;
    }
    free_list(paths, n);

    uint64_t need = (uint64_t)B * (uint64_t)T + 1;
    int best = 0;
    for (int i = 1; i < l->nshards; i++)
        if (l->shards[i].ntok > l->shards[best].ntok) best = i;
    if (l->shards[best].ntok < need) {
        int r;
        if (l->nshards == 1)
            r = lnl_err(e, "%s: too few tokens: a batch needs B*T+1 = %llu (B=%d, T=%d), found %llu", l->shards[0].path,
                        (unsigned long long)need, B, T, (unsigned long long)l->shards[0].ntok);
        else
            r = lnl_err(e, "%s: too few tokens: a batch needs B*T+1 = %llu (B=%d, T=%d), the largest of %d %s shards (%s) has %llu",
                        path, (unsigned long long)need, B, T, l->nshards, split, l->shards[best].path,
                        (unsigned long long)l->shards[best].ntok);
        lnl_loader_free(l);
        return r;
    }
    return 0;
}

void lnl_loader_next(LnlLoader *l, int32_t *inputs, int32_t *targets) {
    uint64_t bt = (uint64_t)l->nproc * (uint64_t)l->B * (uint64_t)l->T;
    uint64_t mine = (uint64_t)l->B * (uint64_t)l->T, first = (uint64_t)l->rank * mine;
    uint64_t pos = l->pos >= l->total ? 0 : l->pos;
    int i = shard_at(l, pos);
    uint64_t off = pos - l->start[i];
    /* open guarantees one shard has B*T+1 tokens, so this loop ends */
    while (off + bt + 1 > l->shards[i].ntok) {
        i = (i + 1) % l->nshards;
        off = 0;
    }
    const uint16_t *t = l->shards[i].tokens + off + first;
    if (inputs)
        for (uint64_t k = 0; k < mine; k++) inputs[k] = t[k];
    if (targets)
        for (uint64_t k = 0; k < mine; k++) targets[k] = t[k + 1];
    l->pos = l->start[i] + off + bt;
}

/* splitmix64's output from state x: a bijective mix of 64 bits. */
static uint64_t hash64(uint64_t x) { return lnl_splitmix64(&x); }

/* Shard and offset within it of the first token of global row `row` (loader.h, Random order). */
static int sample_row(const LnlLoader *l, uint64_t seed, uint64_t step, uint64_t micro, uint64_t row, uint64_t *off) {
    LnlRng r;
    lnl_rng_seed(&r, hash64(hash64(hash64(hash64(seed) ^ step) ^ micro) ^ row));
    /* open guarantees a shard of B*T+1 >= T+1 tokens, so usable > 0 */
    uint64_t u = lnl_rng_below(&r, l->usable);
    /* the last shard whose first starting offset is <= u: one with none shares the next one's
     * ustart and is passed over */
    int lo = 0, hi = l->nshards - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (l->ustart[mid] <= u) lo = mid;
        else hi = mid - 1;
    }
    *off = u - l->ustart[lo];
    return lo;
}

uint64_t lnl_loader_sample_offset(const LnlLoader *l, uint64_t seed, uint64_t step, uint64_t micro, uint64_t row) {
    uint64_t off;
    int i = sample_row(l, seed, step, micro, row, &off);
    return l->start[i] + off;
}

void lnl_loader_sample(const LnlLoader *l, uint64_t seed, uint64_t step, uint64_t micro, int32_t *inputs,
                       int32_t *targets) {
    const size_t T = (size_t)l->T;
    for (int b = 0; b < l->B; b++) {
        uint64_t off, g = (uint64_t)l->rank * (uint64_t)l->B + (uint64_t)b;
        int i = sample_row(l, seed, step, micro, g, &off);
        const uint16_t *t = l->shards[i].tokens + off;
        if (inputs)
            for (size_t k = 0; k < T; k++) inputs[(size_t)b * T + k] = t[k];
        if (targets)
            for (size_t k = 0; k < T; k++) targets[(size_t)b * T + k] = t[k + 1];
    }
}

void lnl_loader_reset(LnlLoader *l) {
    l->pos = 0;
}

int lnl_loader_seek(LnlLoader *l, uint64_t pos, LnlErr *e) {
    if (pos > l->total)
        return lnl_err(e, "%s: data position %llu is past the end of the data (%llu tokens)",
                       l->nshards ? l->shards[0].path : "loader", (unsigned long long)pos,
                       (unsigned long long)l->total);
    l->pos = pos;
    return 0;
}

int lnl_loader_split(LnlLoader *l, int nproc, int rank, LnlErr *e) {
    if (nproc < 1 || rank < 0 || rank >= nproc) return lnl_err(e, "internal: loader split %d of %d", rank, nproc);
    uint64_t need = (uint64_t)nproc * (uint64_t)l->B * (uint64_t)l->T + 1, most = 0;
    for (int i = 0; i < l->nshards; i++)
        if (l->shards[i].ntok > most) most = l->shards[i].ntok;
    if (most < need)
        return lnl_err(e, "%s: too few tokens: a batch of %d processes x B=%d rows x T=%d needs %llu, the largest shard has %llu",
                       l->shards[0].path, nproc, l->B, l->T, (unsigned long long)need, (unsigned long long)most);
    l->nproc = nproc;
    l->rank = rank;
    return 0;
}

uint64_t lnl_loader_num_batches(const LnlLoader *l) {
    uint64_t bt = (uint64_t)l->nproc * (uint64_t)l->B * (uint64_t)l->T, n = 0;
    for (int i = 0; i < l->nshards; i++)
        if (l->shards[i].ntok >= bt + 1) n += (l->shards[i].ntok - 1) / bt;
    return n;
}

uint32_t lnl_loader_crc32(const LnlLoader *l, uint32_t crc) {
    for (int i = 0; i < l->nshards; i++)
        crc = lnl_crc32(crc, l->shards[i].tokens, (size_t)l->shards[i].ntok * sizeof(uint16_t));
    return crc;
}

void lnl_loader_count(const LnlLoader *l, uint64_t *counts, int vocab) {
    for (int i = 0; i < l->nshards; i++) {
        const uint16_t *t = l->shards[i].tokens;
        for (uint64_t k = 0; k < (uint64_t)l->shards[i].ntok; k++)
            if (t[k] < vocab) counts[t[k]]++;
    }
}

double lnl_unigram_loss(const uint64_t *train_counts, const uint64_t *val_counts, int vocab) {
    /* add-1/2 smoothing: a token the training split never has still gets a finite loss */
    double ntrain = 0, nval = 0, sum = 0;
    for (int v = 0; v < vocab; v++) ntrain += (double)train_counts[v], nval += (double)val_counts[v];
    if (nval <= 0) return NAN;
    const double denom = ntrain + 0.5 * vocab;
    for (int v = 0; v < vocab; v++)
        if (val_counts[v]) sum -= (double)val_counts[v] * log(((double)train_counts[v] + 0.5) / denom);
    return sum / nval;
}

void lnl_loader_free(LnlLoader *l) {
    for (int i = 0; i < l->nshards; i++) lnl_shard_close(&l->shards[i]);
    free(l->shards);
    free(l->start);
    free(l->ustart);
    memset(l, 0, sizeof *l);
}
