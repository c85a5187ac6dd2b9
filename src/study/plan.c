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

int lnl_study_plan_check_settings(const char *out, const LnlStudyRun *runs, int nruns, const LnlStudyResults *res,
                                  const char *settings_json, LnlErr *e) {
    cJSON *cur = cJSON_Parse(settings_json);
    int rc = 0;
    for (int k = 0; k < nruns && !rc; k++) {
        int i = lnl_study_results_find(res, runs[k].id);
        if (i < 0) continue;
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
    }
    cJSON_Delete(cur);
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

/* ---- the children's command lines ---- */

void lnl_study_prepare_argv(LnlArgv *a, const LnlStudyConfig *c) {
    lnl_argv_add(a, "lnlab");
    lnl_argv_add(a, "prepare");
    lnl_argv_add(a, "--corpus");
    lnl_argv_add(a, "%s", c->corpus);
    lnl_argv_add(a, "--tokenizer");
    lnl_argv_add(a, "%s", c->tokenizer);
    lnl_argv_add(a, "--out");
    lnl_argv_add(a, "%s", c->data);
}

void lnl_study_train_argv(LnlArgv *a, const LnlStudyConfig *c, const LnlStudyRun *r, const char *dir) {
    lnl_argv_add(a, "lnlab");
    lnl_argv_add(a, "train");
    lnl_argv_add(a, "--data");
    lnl_argv_add(a, "%s", c->data);
    lnl_argv_add(a, "--out");
    lnl_argv_add(a, "%s", dir);
    lnl_argv_add(a, "--preset");
    lnl_argv_add(a, "%s", r->preset);
    lnl_argv_add(a, "--dt");
    lnl_argv_add(a, "%.17g", r->dt);
    if (r->size[0]) {
        lnl_argv_add(a, "--model-size");
        lnl_argv_add(a, "%s", r->size);
    } else {
        lnl_argv_add(a, "--layers");
        lnl_argv_add(a, "%d", r->depth);
        lnl_argv_add(a, "--heads");
        lnl_argv_add(a, "%d", r->heads);
        lnl_argv_add(a, "--dim");
        lnl_argv_add(a, "%d", r->dim);
    }
    lnl_argv_add(a, "--norm");
    lnl_argv_add(a, "%s", c->norm);
    lnl_argv_add(a, "--seq");
    lnl_argv_add(a, "%lld", c->seq);
    if (c->vocab > 0) {
        lnl_argv_add(a, "--vocab");
        lnl_argv_add(a, "%lld", c->vocab);
    }
    lnl_argv_add(a, "--batch");
    lnl_argv_add(a, "%lld", c->batch);
    if (c->total_batch > 0) {
        lnl_argv_add(a, "--total-batch");
        lnl_argv_add(a, "%lld", c->total_batch);
    }
    lnl_argv_add(a, "--lr");
    lnl_argv_add(a, "%.17g", r->lr);
    /* the options (init, biases, embedding, steps, schedule, ...): the run's grid's or preset
     * entry's, else the shared settings; model options left to the preset pass no flag */
    char words[2 * LNL_STUDY_NOPTS][LNL_STUDY_ARG_MAX];
    int nw = lnl_study_train_args(c, r, words);
    for (int i = 0; i < nw; i++) lnl_argv_add(a, "%s", words[i]);
    lnl_argv_add(a, "--beta1");
    lnl_argv_add(a, "%.17g", c->beta1);
    lnl_argv_add(a, "--beta2");
    lnl_argv_add(a, "%.17g", c->beta2);
    lnl_argv_add(a, "--adam-eps");
    lnl_argv_add(a, "%.17g", c->adam_eps);
    if (c->diverge_loss > 0) {
        lnl_argv_add(a, "--diverge-loss");
        lnl_argv_add(a, "%.17g", c->diverge_loss);
    }
    if (c->skip_spikes > 0) {
        lnl_argv_add(a, "--skip-spikes");
        lnl_argv_add(a, "%.17g", c->skip_spikes);
    }
    /* the seed draws the init and the batches: runs of two placements with one seed are a pair
     * that saw the same data */
    lnl_argv_add(a, "--seed");
    lnl_argv_add(a, "%lld", r->seed);
    lnl_argv_add(a, "--data-seed");
    lnl_argv_add(a, "%lld", r->seed);
    if (c->diag_every > 0) {
        lnl_argv_add(a, "--diag-every");
        lnl_argv_add(a, "%lld", c->diag_every);
    }
    lnl_argv_add(a, "--eval-every");
    lnl_argv_add(a, "%lld", c->eval_every);
    lnl_argv_add(a, "--eval-batches");
    lnl_argv_add(a, "%lld", c->eval_batches);
    if (c->checkpoint_every > 0) {
        lnl_argv_add(a, "--checkpoint-every");
        lnl_argv_add(a, "%lld", c->checkpoint_every);
        lnl_argv_add(a, "--keep-checkpoints");
        lnl_argv_add(a, "%lld", c->keep_checkpoints);
    }
    lnl_argv_add(a, "--quiet");
}

void lnl_study_resume_argv(LnlArgv *a, const LnlStudyConfig *c, const char *dir) {
    lnl_argv_add(a, "lnlab");
    lnl_argv_add(a, "train");
    lnl_argv_add(a, "--resume");
    lnl_argv_add(a, "%s", dir);
    lnl_argv_add(a, "--keep-checkpoints");
    lnl_argv_add(a, "%lld", c->keep_checkpoints);
    lnl_argv_add(a, "--quiet");
}

void lnl_study_probe_argv(LnlArgv *a, const LnlStudyConfig *c, const char *model, const char *val_data, int with_sens) {
    lnl_argv_add(a, "lnlab");
    lnl_argv_add(a, "probe");
    lnl_argv_add(a, "--model");
    lnl_argv_add(a, "%s", model);
    lnl_argv_add(a, "--data");
    lnl_argv_add(a, "%s", val_data);
    lnl_argv_add(a, "--batch");
    lnl_argv_add(a, "%lld", c->probe_batch);
    lnl_argv_add(a, "--seq");
    lnl_argv_add(a, "%lld", c->seq);
    lnl_argv_add(a, "--json");
    if (with_sens) lnl_argv_add(a, "--sensitivity");
}
