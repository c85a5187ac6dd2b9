/* Planning a study's runs (plan.h): order, directories, reuse, command lines, threads. */
#include "plan.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Exit code of `lnlab train` when the run diverged (src/train/train.h, LNL_EXIT_DIVERGED). */
#include "../train/train.h"
#include "../train/run_result.h" /* RUN/result.json: its name and "status" values */

void lnl_argv_add(LnlArgv *a, const char *fmt, ...) {
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (a->n + 1 >= (int)(sizeof a->v / sizeof a->v[0])) abort(); /* programmer error: too many */
    a->v[a->n++] = lnl_strdup(buf);
    a->v[a->n] = NULL;
}

void lnl_argv_free(LnlArgv *a) {
    for (int i = 0; i < a->n; i++) free(a->v[i]);
    a->n = 0;
}

char *lnl_study_run_dir(const char *out, const LnlStudyRun *r) {
    char *runs = lnl_path_join(out, "runs");
    char *d = lnl_path_join(runs, r->id);
    free(runs);
    return d;
}

char *lnl_study_run_file(const char *out, const LnlStudyRun *r, const char *name) {
    char *d = lnl_study_run_dir(out, r);
    char *p = lnl_path_join(d, name);
    free(d);
    return p;
}

double lnl_study_run_units(const LnlStudyConfig *c, const LnlStudyRun *r) {
    return (double)c->steps * (r->depth + 1.0) * (double)r->dim * r->dim;
}

/* ---- the order ---- */

typedef struct {
    const LnlStudyConfig *c;
    const LnlStudyRun *runs;
    int nruns;
} Order;

static int seed_rank(const Order *s, long long seed) {
    int rank = 0;
    for (int k = 0; k < s->nruns; k++) {
        if (s->runs[k].seed == seed) return rank;
        int seen = 0;
        for (int j = 0; j < k && !seen; j++) seen = s->runs[j].seed == s->runs[k].seed;
        rank += !seen;
    }
    return rank;
}

static int cmp_exec(const void *a, const void *b, void *ctx) {
    const Order *s = ctx;
    const LnlStudyRun *x = &s->runs[*(const int *)a], *y = &s->runs[*(const int *)b];
    int rx = seed_rank(s, x->seed), ry = seed_rank(s, y->seed);
    if (rx != ry) return rx - ry;
    double ux = lnl_study_run_units(s->c, x), uy = lnl_study_run_units(s->c, y);
    if (ux != uy) return ux > uy ? -1 : 1;
    return x->order - y->order;
}

int lnl_study_plan_order(const LnlStudyConfig *c, const LnlStudyRun *runs, int nruns, const LnlStudyResults *res,
                         int shard, int nshards, int *order, int *reused) {
    int npending = 0;
    *reused = 0;
    for (int k = 0; k < nruns; k++) {
        if (lnl_study_results_find(res, runs[k].id) >= 0) (*reused)++;
        else order[npending++] = k;
    }
    Order s = {c, runs, nruns};
    qsort_r(order, (size_t)npending, sizeof *order, cmp_exec, &s);
    if (nshards > 1) {
        int k = 0;
        for (int i = 0; i < npending; i++)
            if (i % nshards == shard) order[k++] = order[i];
        npending = k;
    }
    return npending;
}

static int cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void lnl_study_plan_threads(const LnlStudyConfig *c, int *jobs, int *threads) {
    int total_cpus = cpu_count();
    const char *omp = getenv("OMP_NUM_THREADS");
    if (omp && atoi(omp) > 0) total_cpus = atoi(omp);
    *jobs = c->jobs > 0 ? (int)c->jobs : total_cpus;
    *threads = c->threads > 0 ? (int)c->threads : (total_cpus / *jobs > 0 ? total_cpus / *jobs : 1);
}

/* ---- what OUT already holds ---- */

int lnl_study_plan_check_settings(const char *out, const LnlStudyConfig *c, const LnlStudyRun *runs, int nruns,
                                  const LnlStudyResults *res, LnlErr *e) {
    int rc = 0;
    for (int k = 0; k < nruns && !rc; k++) {
        int i = lnl_study_results_find(res, runs[k].id);
        if (i < 0) continue;
        char *settings_json = lnl_study_run_settings_json(c, &runs[k]);
        cJSON *cur = cJSON_Parse(settings_json);
        cJSON_free(settings_json);
        cJSON *rec = cJSON_Parse(res->lines[i]);
        const cJSON *old = cJSON_GetObjectItemCaseSensitive(rec, "settings");
        for (const cJSON *it = cur ? cur->child : NULL; it && !rc; it = it->next) {
            const cJSON *o = cJSON_GetObjectItemCaseSensitive(old, it->string);
            if (!o || cJSON_Compare(o, it, 1)) continue;
            char *a = cJSON_PrintUnformatted(o), *b = cJSON_PrintUnformatted(it);
            rc = lnl_err(e,
                         "--out %s: run %s there was made with %s %s, this study asks for %s %s; use another --out "
                         "(or delete %s)",
                         out, runs[k].id, it->string, a, it->string, b, out);
            cJSON_free(a);
            cJSON_free(b);
        }
        cJSON_Delete(rec);
        cJSON_Delete(cur);
    }
    return rc;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Whether a run directory was started under the study's current settings. */
static int same_settings(const char *dir, const char *settings_json) {
    char *path = lnl_path_join(dir, LNL_STUDY_RUN_SETTINGS), *text = NULL;
    int same = lnl_read_file(path, &text, NULL, NULL) == 0 && strcmp(text, settings_json) == 0;
    free(text);
    free(path);
    return same;
}

static int has_checkpoint(const char *dir) {
    char *cp = lnl_path_join(dir, "checkpoints");
    DIR *d = opendir(cp);
    free(cp);
    if (!d) return 0;
    int any = 0;
    struct dirent *de;
    while ((de = readdir(d)) && !any) any = de->d_name[0] != '.';
    closedir(d);
    return any;
}

/* What RUN/result.json (written by lnlab train when a run ends) says: -1 no usable file or a run
 * stopped early (SIGINT/SIGTERM, --stop-after: to be resumed or redone), 0 the run finished all
 * its steps, 3 it diverged. Version 1 files have no "status" (finished or diverged only). */
static int train_outcome(const char *dir) {
    char *path = lnl_path_join(dir, LNL_RESULT_FILE), *text = NULL;
    int out = -1;
    if (lnl_read_file(path, &text, NULL, NULL) == 0) {
        cJSON *o = cJSON_Parse(text);
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(o, "status");
        const cJSON *div = cJSON_GetObjectItemCaseSensitive(o, "diverged");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "steps");
        const cJSON *plan = cJSON_GetObjectItemCaseSensitive(o, "steps_planned");
        /* a stopped run (or a status this study does not know) has not ended */
        int ended = !status || (cJSON_IsString(status) && (strcmp(status->valuestring, LNL_RESULT_FINISHED) == 0 ||
                                                           strcmp(status->valuestring, LNL_RESULT_DIVERGED) == 0));
        if (ended && cJSON_IsTrue(div)) out = LNL_EXIT_DIVERGED;
        else if (ended && cJSON_IsFalse(div) && cJSON_IsNumber(st) && cJSON_IsNumber(plan) &&
                 st->valuedouble == plan->valuedouble)
            out = 0;
        cJSON_Delete(o);
    }
    free(text);
    free(path);
    return out;
}

LnlRunState lnl_study_run_state(const char *dir, const char *settings_json, const LnlStudyConfig *c) {
    if (!exists(dir) || !same_settings(dir, settings_json)) return LNL_RUN_FRESH;
    int outcome = train_outcome(dir);
    char *model = lnl_path_join(dir, "model.safetensors");
    int have_model = exists(model);
    free(model);
    if (outcome == 0 && have_model) return LNL_RUN_PROBE;
    if (outcome == LNL_EXIT_DIVERGED) return LNL_RUN_DIVERGED;
    if (c->checkpoint_every > 0 && has_checkpoint(dir)) return LNL_RUN_RESUME;
    return LNL_RUN_FRESH;
}

/* One flag and its value on a child's command line. */
static void arg_str(LnlArgv *a, const char *flag, const char *v) {
    lnl_argv_add(a, "%s", flag);
    lnl_argv_add(a, "%s", v);
}
static void arg_int(LnlArgv *a, const char *flag, long long v) {
    lnl_argv_add(a, "%s", flag);
    lnl_argv_add(a, "%lld", v);
}
static void arg_num(LnlArgv *a, const char *flag, double v) {
    lnl_argv_add(a, "%s", flag);
    lnl_argv_add(a, "%.17g", v);
}


/* ---- the children's command lines ---- */

void lnl_study_prepare_argv(LnlArgv *a, const LnlStudyConfig *c) {
    lnl_argv_add(a, "lnlab");
    lnl_argv_add(a, "prepare");
    arg_str(a, "--corpus", c->corpus);
    arg_str(a, "--tokenizer", c->tokenizer);
    arg_str(a, "--out", c->data);
}

void lnl_study_train_argv(LnlArgv *a, const LnlStudyConfig *c, const LnlStudyRun *r, const char *dir) {
    lnl_argv_add(a, "lnlab");
    lnl_argv_add(a, "train");
    arg_str(a, "--data", c->data);
    arg_str(a, "--out", dir);
    arg_str(a, "--preset", r->preset);
    arg_num(a, "--dt", r->dt);
    if (r->size[0]) {
        arg_str(a, "--model-size", r->size);
    } else {
        arg_int(a, "--layers", r->depth);
        arg_int(a, "--heads", r->heads);
        arg_int(a, "--dim", r->dim);
    }
    arg_str(a, "--norm", c->norm);
    arg_int(a, "--seq", c->seq);
    if (c->vocab > 0) arg_int(a, "--vocab", c->vocab);
    arg_int(a, "--batch", c->batch);
    if (c->total_batch > 0) arg_int(a, "--total-batch", c->total_batch);
    arg_num(a, "--lr", r->lr);
    /* the options (init, biases, embedding, steps, schedule, ...): the run's grid's or preset
     * entry's, else the shared settings; model options left to the preset pass no flag */
    char words[2 * LNL_STUDY_NOPTS][LNL_STUDY_ARG_MAX];
    int nw = lnl_study_train_args(c, r, words);
    for (int i = 0; i < nw; i++) lnl_argv_add(a, "%s", words[i]);
    arg_num(a, "--beta1", c->beta1);
    arg_num(a, "--beta2", c->beta2);
    arg_num(a, "--adam-eps", c->adam_eps);
    /* the z-loss only when on: the command lines of studies without it stay as they were */
    if (c->z_loss > 0) arg_num(a, "--z-loss", c->z_loss);
    /* the run's precision only when not fp32: fp32 runs keep the command line they had */
    if (strcmp(lnl_study_run_precision(r), LNL_STUDY_FP32) != 0) arg_str(a, "--precision", lnl_study_run_precision(r));
    if (c->diverge_loss > 0) arg_num(a, "--diverge-loss", c->diverge_loss);
    if (c->skip_spikes > 0) arg_num(a, "--skip-spikes", c->skip_spikes);
    /* the seed draws the init and the batches: runs of two placements with one seed are a pair
     * that saw the same data */
    arg_int(a, "--seed", r->seed);
    arg_int(a, "--data-seed", r->seed);
    if (c->diag_every > 0) arg_int(a, "--diag-every", c->diag_every);
    arg_int(a, "--eval-every", c->eval_every);
    arg_int(a, "--eval-batches", c->eval_batches);
    if (c->checkpoint_every > 0) {
        arg_int(a, "--checkpoint-every", c->checkpoint_every);
        arg_int(a, "--keep-checkpoints", c->keep_checkpoints);
    }
    lnl_argv_add(a, "--quiet");
}

void lnl_study_resume_argv(LnlArgv *a, const LnlStudyConfig *c, const char *dir) {
    lnl_argv_add(a, "lnlab");
    lnl_argv_add(a, "train");
    arg_str(a, "--resume", dir);
    arg_int(a, "--keep-checkpoints", c->keep_checkpoints);
    lnl_argv_add(a, "--quiet");
}

void lnl_study_probe_argv(LnlArgv *a, const LnlStudyConfig *c, const char *model, const char *val_data, int with_sens) {
    lnl_argv_add(a, "lnlab");
    lnl_argv_add(a, "probe");
    arg_str(a, "--model", model);
    arg_str(a, "--data", val_data);
    arg_int(a, "--batch", c->probe_batch);
    arg_int(a, "--seq", c->seq);
    lnl_argv_add(a, "--json");
    if (with_sens) lnl_argv_add(a, "--sensitivity");
}
