/* Checkpoints and the training state file (layout in checkpoint.h and docs/FORMATS.md). */
#include "checkpoint.h"

#include <assert.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../io/safetensors.h"

#define CKPT_SUFFIX ".safetensors"

void lnl_state_extra(LnlStateRefs *refs, const char *name, double *data, size_t n) {
    assert(refs->nextra < LNL_STATE_MAX_EXTRA);
    refs->extra[refs->nextra++] = (LnlStateExtra){name, data, n};
}

char *lnl_ckpt_path(const char *run, const char *kind, long step) {
    char name[64];
    snprintf(name, sizeof name, "%s/%s_%08ld%s", LNL_CKPT_DIR, kind, step, CKPT_SUFFIX);
    return lnl_path_join(run, name);
}

/* ---------------------------------------------------------------- the state file */

int lnl_state_write(const char *path, const LnlStateRefs *s, LnlErr *e) {
    int64_t adam_step = s->opt->step, step = s->step;
    int64_t shape[3] = {s->B, s->T, s->grad_accum};
    uint64_t pos = s->train->pos, tokens = s->train->total;
    int64_t n_alloc = (int64_t)s->opt->n, three = 3, four = 4, nsteps = s->step;
    LnlStWriter w;
    lnl_stw_init(&w);
    lnl_stw_add(&w, "adam.m", LNL_ST_F32, 1, &n_alloc, s->opt->m, 0);
    lnl_stw_add(&w, "adam.v", LNL_ST_F32, 1, &n_alloc, s->opt->v, 0);
    lnl_stw_add(&w, "adam.step", LNL_ST_I64, 0, NULL, &adam_step, 0);
    lnl_stw_add(&w, "train.step", LNL_ST_I64, 0, NULL, &step, 0);
    lnl_stw_add(&w, "train.shape", LNL_ST_I64, 1, &three, shape, 0);
    lnl_stw_add(&w, "train.step_ms", LNL_ST_F64, 1, &nsteps, s->step_ms, 0);
    lnl_stw_add(&w, "data.pos", LNL_ST_U64, 0, NULL, &pos, 0);
    lnl_stw_add(&w, "data.tokens", LNL_ST_U64, 0, NULL, &tokens, 0);
    lnl_stw_add(&w, "rng.state", LNL_ST_U64, 1, &four, s->rng->s, 0);
    for (int i = 0; i < s->nextra; i++) {
        char name[96];
        int64_t n = (int64_t)s->extra[i].n;
        snprintf(name, sizeof name, "extra.%s", s->extra[i].name);
        lnl_stw_add(&w, name, LNL_ST_F64, 1, &n, s->extra[i].data, 0);
    }
    char ver[16], stepstr[32];
    snprintf(ver, sizeof ver, "%d", LNL_STATE_VERSION);
    snprintf(stepstr, sizeof stepstr, "%ld", s->step);
    lnl_stw_meta(&w, "format", LNL_STATE_FORMAT);
    lnl_stw_meta(&w, "version", ver);
    lnl_stw_meta(&w, "step", stepstr);
    char crc[16];
    snprintf(crc, sizeof crc, "%08x", (unsigned)s->data_crc);
    lnl_stw_meta(&w, "data.crc32", crc);
    char dseed[32];
    snprintf(dseed, sizeof dseed, "%llu", (unsigned long long)s->data_seed);
    lnl_stw_meta(&w, "data.order", lnl_data_order_name(s->data_order));
    lnl_stw_meta(&w, "data.seed", dseed);
    if (s->run_id && s->run_id[0]) lnl_stw_meta(&w, "run_id", s->run_id);
    int r = lnl_stw_write(&w, path, e);
    lnl_stw_free(&w);
    return r;
}

/* A tensor of exactly this dtype and element count, copied raw (little-endian host). */
static int get_raw(const LnlSafetensors *st, const char *name, int dtype, int ndim, uint64_t numel, void *out,
                   LnlErr *e) {
    const LnlStTensor *t = lnl_st_find(st, name);
    if (!t) return lnl_err(e, "%s: training state tensor '%s' is missing", st->path, name);
    if (t->dtype != dtype || t->ndim != ndim || t->numel != numel)
        return lnl_err(e, "%s: training state tensor '%s' is %s with %d dimensions and %llu elements, expected %s, %d, %llu",
                       st->path, name, lnl_st_dtype_name(t->dtype), t->ndim, (unsigned long long)t->numel,
                       lnl_st_dtype_name(dtype), ndim, (unsigned long long)numel);
    if (t->end > t->begin) memcpy(out, lnl_st_data(st, t), (size_t)(t->end - t->begin));
    return 0;
}

/* Element count of a 1-D tensor of this dtype, or -1. */
static int get_len(const LnlSafetensors *st, const char *name, int dtype, uint64_t max, uint64_t *n, LnlErr *e) {
    const LnlStTensor *t = lnl_st_find(st, name);
    if (!t) return lnl_err(e, "%s: training state tensor '%s' is missing", st->path, name);
    if (t->dtype != dtype || t->ndim != 1 || t->numel > max)
        return lnl_err(e, "%s: training state tensor '%s' must be 1-D %s with at most %llu elements", st->path, name,
                       lnl_st_dtype_name(dtype), (unsigned long long)max);
    *n = t->numel;
    return 0;
}

int lnl_state_read(const char *path, LnlTrainState *out, LnlErr *e) {
    memset(out, 0, sizeof *out);
    LnlSafetensors st;
    if (lnl_st_open(&st, path, e)) return -1;
    LnlTrainState s;
    memset(&s, 0, sizeof s);
    int r = -1;
    const char *fmt = lnl_st_meta(&st, "format"), *ver = lnl_st_meta(&st, "version");
    long long v;
    if (!fmt || strcmp(fmt, LNL_STATE_FORMAT) != 0) {
        lnl_err(e, "%s: not a training state file (metadata format is %s%s%s, expected \"%s\")", path,
                fmt ? "\"" : "", fmt ? fmt : "missing", fmt ? "\"" : "", LNL_STATE_FORMAT);
        goto done;
    }
    if (!ver || lnl_parse_int(ver, 1, 1 << 30, &v, "version", NULL)) {
        lnl_err(e, "%s: training state metadata 'version' is missing or not a positive integer", path);
        goto done;
    }
    if (v > LNL_STATE_VERSION) {
        lnl_err(e, "%s: training state version %lld is newer than this lnlab reads (%d)", path, v, LNL_STATE_VERSION);
        goto done;
    }
    int64_t i64, shape[3];
    uint64_t n = 0;
    if (get_raw(&st, "train.step", LNL_ST_I64, 0, 1, &i64, e)) goto done;
    if (i64 < 0 || i64 > (int64_t)1 << 40) {
        lnl_err(e, "%s: train.step %lld is out of range", path, (long long)i64);
        goto done;
    }
    s.step = (long)i64;
    if (get_raw(&st, "adam.step", LNL_ST_I64, 0, 1, &i64, e)) goto done;
    if (i64 < 0 || i64 > (int64_t)1 << 40) {
        lnl_err(e, "%s: adam.step %lld is out of range", path, (long long)i64);
        goto done;
    }
    s.adam_step = (long)i64;
    if (get_raw(&st, "train.shape", LNL_ST_I64, 1, 3, shape, e)) goto done;
    if (shape[0] < 1 || shape[0] > INT32_MAX || shape[1] < 1 || shape[1] > INT32_MAX || shape[2] < 1 ||
        shape[2] > (int64_t)1 << 40) {
        lnl_err(e, "%s: train.shape [%lld, %lld, %lld] is out of range", path, (long long)shape[0],
                (long long)shape[1], (long long)shape[2]);
        goto done;
    }
    s.B = (int)shape[0];
    s.T = (int)shape[1];
    s.grad_accum = (long)shape[2];
    if (get_len(&st, "adam.m", LNL_ST_F32, UINT64_MAX, &n, e)) goto done;
    s.n = (size_t)n;
    s.adam_m = lnl_malloc(s.n * sizeof(float));
    s.adam_v = lnl_malloc(s.n * sizeof(float));
    if (get_raw(&st, "adam.m", LNL_ST_F32, 1, n, s.adam_m, e) || get_raw(&st, "adam.v", LNL_ST_F32, 1, n, s.adam_v, e))
        goto done;
    /* sized from the tensor in the file (so by the file size), then checked against the step */
    if (get_len(&st, "train.step_ms", LNL_ST_F64, (uint64_t)s.step, &n, e)) goto done;
    s.step_ms = lnl_malloc(((size_t)n + 1) * sizeof(double));
    if (get_raw(&st, "train.step_ms", LNL_ST_F64, 1, (uint64_t)s.step, s.step_ms, e)) goto done;
    if (get_raw(&st, "data.pos", LNL_ST_U64, 0, 1, &s.data_pos, e) ||
        get_raw(&st, "data.tokens", LNL_ST_U64, 0, 1, &s.data_tokens, e) ||
        get_raw(&st, "rng.state", LNL_ST_U64, 1, 4, s.rng.s, e))
        goto done;
    const char *id = lnl_st_meta(&st, "run_id"), *crc = lnl_st_meta(&st, "data.crc32");
    if (id && (strlen(id) + 1 > sizeof s.run_id || !*id)) {
        lnl_err(e, "%s: metadata run_id is empty or longer than %zu characters", path, sizeof s.run_id - 1);
        goto done;
    }
    if (id) snprintf(s.run_id, sizeof s.run_id, "%s", id);
    if (crc) {
        char *end;
        unsigned long x = strtoul(crc, &end, 16);
        if (strlen(crc) != 8 || *end) {
            lnl_err(e, "%s: metadata data.crc32 '%s' is not 8 hex digits", path, crc);
            goto done;
        }
        s.have_data_crc = 1;
        s.data_crc = (uint32_t)x;
    }
    const char *order = lnl_st_meta(&st, "data.order"), *dseed = lnl_st_meta(&st, "data.seed");
    s.data_order = LNL_ORDER_SEQUENTIAL;
    if (order && lnl_data_order_parse(order, &s.data_order)) {
        lnl_err(e, "%s: metadata data.order '%s' is not one of %s", path, order, LNL_DATA_ORDERS);
        goto done;
    }
    if (dseed) {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(dseed, &end, 10);
        if (dseed[0] < '0' || dseed[0] > '9' || *end || errno) {
            lnl_err(e, "%s: metadata data.seed '%s' is not a decimal unsigned 64-bit integer", path, dseed);
            goto done;
        }
        s.have_data_seed = 1;
        s.data_seed = (uint64_t)x;
    }
    for (int i = 0; i < st.n; i++) {
        const char *name = st.tensors[i].name;
        if (strncmp(name, "extra.", 6) != 0) continue;
        if (s.nextra == LNL_STATE_MAX_EXTRA) {
            lnl_err(e, "%s: more than %d extra.* tensors", path, LNL_STATE_MAX_EXTRA);
            goto done;
        }
        if (get_len(&st, name, LNL_ST_F64, (uint64_t)1 << 32, &n, e)) goto done;
        int k = s.nextra++;
        s.extra_name[k] = lnl_strdup(name + 6);
        s.extra_n[k] = (size_t)n;
        s.extra[k] = lnl_malloc(((size_t)n + 1) * sizeof(double));
        if (get_raw(&st, name, LNL_ST_F64, 1, n, s.extra[k], e)) goto done;
    }
    r = 0;
done:
    lnl_st_close(&st);
    if (r) lnl_state_free(&s);
    else *out = s;
    return r;
}

void lnl_state_free(LnlTrainState *s) {
    free(s->adam_m);
    free(s->adam_v);
    free(s->step_ms);
    for (int i = 0; i < s->nextra; i++) {
        free(s->extra_name[i]);
        free(s->extra[i]);
    }
    memset(s, 0, sizeof *s);
}

int lnl_state_apply(const LnlTrainState *st, const LnlStateRefs *to, LnlErr *e) {
    if (st->n != to->opt->n)
        return lnl_err(e, "training state: AdamW moments have %zu floats, the model has %zu parameters", st->n,
                       to->opt->n);
    if (st->B != to->B || st->T != to->T || st->grad_accum != to->grad_accum)
        return lnl_err(e, "training state: saved with B %d, T %d, %ld micro-batches per step; the run has B %d, T %d, %ld",
                       st->B, st->T, st->grad_accum, to->B, to->T, to->grad_accum);
    if (st->step > to->max_steps)
        return lnl_err(e, "training state: step %ld is past the run's %ld steps", st->step, to->max_steps);
    if (st->data_tokens != to->train->total)
        return lnl_err(e, "training state: the train split had %llu tokens when saved and has %llu now (the data "
                          "changed; a resumed run would not match)",
                       (unsigned long long)st->data_tokens, (unsigned long long)to->train->total);
    if (st->have_data_crc && st->data_crc != to->data_crc)
        return lnl_err(e, "training state: the data's content changed since the checkpoint (CRC-32 of the train and val "
                          "splits %08x then, %08x now; same token count): a resumed run would not match",
                       (unsigned)st->data_crc, (unsigned)to->data_crc);
    if (st->run_id[0] && to->run_id && to->run_id[0] && strcmp(st->run_id, to->run_id) != 0)
        return lnl_err(e, "training state: the checkpoint belongs to run %s, this run is %s (RUN/config.json): "
                          "checkpoints of another run",
                       st->run_id, to->run_id);
    if (st->data_order != to->data_order)
        return lnl_err(e, "training state: saved by a run with data order %s, this run has %s: a resumed run would "
                          "not see the same batches",
                       lnl_data_order_name(st->data_order), lnl_data_order_name(to->data_order));
    if (to->data_order == LNL_ORDER_RANDOM && (!st->have_data_seed || st->data_seed != to->data_seed)) {
        char saved[32] = "none";
        if (st->have_data_seed) snprintf(saved, sizeof saved, "%llu", (unsigned long long)st->data_seed);
        return lnl_err(e, "training state: saved with data seed %s, this run has %llu: a resumed run would not see "
                          "the same batches",
                       saved, (unsigned long long)to->data_seed);
    }
    if (!st->run_id[0] != !(to->run_id && to->run_id[0]))
        return lnl_err(e, "training state: the checkpoint has %s run id and RUN/config.json has %s: checkpoints of "
                          "another run",
                       st->run_id[0] ? "a" : "no", to->run_id && to->run_id[0] ? "one" : "none");
    for (int i = 0; i < to->nextra; i++) {
        const LnlStateExtra *x = &to->extra[i];
        int k = 0;
        while (k < st->nextra && strcmp(st->extra_name[k], x->name) != 0) k++;
        if (k == st->nextra) return lnl_err(e, "training state: running statistic '%s' is missing", x->name);
        if (st->extra_n[k] != x->n)
            return lnl_err(e, "training state: running statistic '%s' has %zu values, expected %zu", x->name,
                           st->extra_n[k], x->n);
    }
    if (lnl_loader_seek(to->train, st->data_pos, e)) return -1;
    memcpy(to->opt->m, st->adam_m, st->n * sizeof(float));
    memcpy(to->opt->v, st->adam_v, st->n * sizeof(float));
    to->opt->step = st->adam_step;
    *to->rng = st->rng;
    if (st->step) memcpy(to->step_ms, st->step_ms, (size_t)st->step * sizeof(double));
    for (int i = 0; i < to->nextra; i++) {
        const LnlStateExtra *x = &to->extra[i];
        for (int k = 0; k < st->nextra; k++)
            if (strcmp(st->extra_name[k], x->name) == 0 && x->n) memcpy(x->data, st->extra[k], x->n * sizeof(double));
    }
    return 0;
}

/* ---------------------------------------------------------------- the checkpoint directory */

/* The step of a file named "<kind>_SSSSSSSS.safetensors", or -1. */
static long parse_name(const char *name, const char *kind) {
    size_t k = strlen(kind), n = strlen(name), sl = strlen(CKPT_SUFFIX);
    if (n != k + 1 + 8 + sl || strncmp(name, kind, k) != 0 || name[k] != '_' ||
        strcmp(name + n - sl, CKPT_SUFFIX) != 0)
        return -1;
    long step = 0;
    for (size_t i = k + 1; i < k + 9; i++) {
        if (name[i] < '0' || name[i] > '9') return -1;
        step = step * 10 + (name[i] - '0');
    }
    return step;
}

static int cmp_desc(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x < y) - (x > y);
}

/* Steps of files of one kind, newest first. A missing directory is an empty list. */
static int list_kind(const char *run, const char *kind, long **steps, int *n, LnlErr *e) {
    *steps = NULL;
    *n = 0;
    char *dir = lnl_path_join(run, LNL_CKPT_DIR);
    DIR *d = opendir(dir);
    if (!d) {
        int r = errno == ENOENT ? 0 : lnl_err(e, "%s: cannot list: %s", dir, strerror(errno));
        free(dir);
        return r;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        long s = parse_name(de->d_name, kind);
        if (s < 0) continue;
        *steps = lnl_realloc(*steps, sizeof(long) * (size_t)(*n + 1));
        (*steps)[(*n)++] = s;
    }
    closedir(d);
    free(dir);
    if (*n) qsort(*steps, (size_t)*n, sizeof(long), cmp_desc);
    return 0;
}

int lnl_ckpt_list(const char *run, long **steps, int *n, LnlErr *e) { return list_kind(run, "model", steps, n, e); }

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

/* Removes checkpoints beyond the newest `keep` complete ones (state first, so that a checkpoint
 * half removed is seen as incomplete). */
static void prune(const char *run, long keep) {
    long *steps;
    int n;
    if (keep <= 0 || lnl_ckpt_list(run, &steps, &n, NULL)) return;
    long complete = 0;
    for (int i = 0; i < n; i++) {
        char *sp = lnl_ckpt_path(run, "state", steps[i]), *mp = lnl_ckpt_path(run, "model", steps[i]);
        int is_complete = file_exists(sp);
        if (complete >= keep) {
            unlink(sp);
            unlink(mp);
        }
        complete += is_complete;
        free(sp);
        free(mp);
    }
    free(steps);
    /* state files whose model is gone (a crash between the two unlinks) */
    if (list_kind(run, "state", &steps, &n, NULL) == 0) {
        for (int i = 0; i < n; i++) {
            char *sp = lnl_ckpt_path(run, "state", steps[i]), *mp = lnl_ckpt_path(run, "model", steps[i]);
            if (!file_exists(mp)) unlink(sp);
            free(sp);
            free(mp);
        }
        free(steps);
    }
}

int lnl_ckpt_save(const char *run, const LnlModel *m, const LnlStateRefs *s, LnlRunLog *log, long keep, LnlErr *e) {
    char *dir = lnl_path_join(run, LNL_CKPT_DIR);
    int r = lnl_mkdir_p(dir, e);
    free(dir);
    if (r) return -1;
    if (log && lnl_runlog_sync(log, e)) {
        LnlErr why = *e;
        return lnl_err(e, "checkpoint at step %ld not saved (earlier checkpoints are intact): %s", s->step, why.msg);
    }
    char *mp = lnl_ckpt_path(run, "model", s->step), *sp = lnl_ckpt_path(run, "state", s->step);
    char stepstr[32];
    snprintf(stepstr, sizeof stepstr, "%ld", s->step);
    /* a stale state file of this step would make a half-written checkpoint look complete */
    unlink(sp);
    r = lnl_model_save_safetensors(m, mp, LNL_CKPT_STEP_KEY, stepstr, e);
    if (!r) r = lnl_state_write(sp, s, e);
    if (r) {
        unlink(mp); /* incomplete: resume would skip it anyway */
        if (e) {
            LnlErr why = *e;
            lnl_err(e, "checkpoint at step %ld not saved (earlier checkpoints are intact): %s", s->step, why.msg);
        }
    }
    free(mp);
    free(sp);
    if (!r) prune(run, keep);
    return r;
}

/* A checkpoint file's name: model_* or state_* ending in CKPT_SUFFIX. */
static int ckpt_file(const char *name, void *ctx) {
    (void)ctx;
    size_t n = strlen(name), k = strlen(CKPT_SUFFIX);
    return (strncmp(name, "model_", 6) == 0 || strncmp(name, "state_", 6) == 0) && n > k &&
           strcmp(name + n - k, CKPT_SUFFIX) == 0;
}

/* Removes temporary files left in RUN/checkpoints by a process that was killed while writing. */
static void remove_temps(const char *run) {
    char *dir = lnl_path_join(run, LNL_CKPT_DIR);
    lnl_atomic_remove_stale(dir, ckpt_file, NULL);
    free(dir);
}

/* Loads checkpoint `step` into m and st, checking that they belong together. */
static int load_one(const char *run, long step, LnlModel *m, LnlConfigHook hook, void *ctx, LnlTrainState *st,
                    LnlErr *e) {
    char *mp = lnl_ckpt_path(run, "model", step), *sp = lnl_ckpt_path(run, "state", step);
    int r = -1;
    if (!file_exists(sp)) {
        lnl_err(e, "%s is missing (the checkpoint was not finished)", sp);
        goto done;
    }
    if (lnl_state_read(sp, st, e)) goto done;
    if (st->step != step) {
        lnl_err(e, "%s: holds step %ld, its name says %ld", sp, st->step, step);
        lnl_state_free(st);
        goto done;
    }
    if (lnl_model_load(m, mp, hook, ctx, e)) {
        lnl_state_free(st);
        goto done;
    }
    if (m->num_alloc != st->n) {
        lnl_err(e, "%s: AdamW moments have %zu floats, the model in %s has %zu", sp, st->n, mp, m->num_alloc);
        lnl_model_free(m);
        lnl_state_free(st);
        goto done;
    }
    r = 0;
done:
    free(mp);
    free(sp);
    return r;
}

int lnl_ckpt_load_latest(const char *run, LnlModel *m, LnlConfigHook hook, void *ctx, LnlTrainState *st, FILE *msgs,
                         LnlErr *e) {
    remove_temps(run);
    long *steps;
    int n;
    if (lnl_ckpt_list(run, &steps, &n, e)) return -1;
    if (n == 0) {
        free(steps);
        return lnl_err(e, "%s: no checkpoint to resume from in %s/%s (checkpoints are written with "
                          "--checkpoint-every K, and when a run is stopped by SIGINT or SIGTERM)",
                       run, run, LNL_CKPT_DIR);
    }
    int r = -1;
    for (int i = 0; i < n && r; i++) {
        LnlErr why;
        if (load_one(run, steps[i], m, hook, ctx, st, &why) == 0) {
            r = 0;
            break;
        }
        if (msgs)
            fprintf(msgs, "lnlab: checkpoint at step %ld is unusable: %s%s\n", steps[i], why.msg,
                    i + 1 < n ? "; trying the previous one" : "");
        if (i + 1 == n)
            lnl_err(e, "%s: no usable checkpoint (%d tried; the oldest failed with: %s)", run, n, why.msg);
    }
    free(steps);
    return r;
}
