/* The study runner: child processes for prepare, train and probe, a few at a time, with a
 * live line; records into OUT/results.jsonl as runs finish; then the report. */
#include "study.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "report.h"
#include "results.h"

/* Exit code of `lnlab train` when the run diverged (src/train/train.h, LNL_EXIT_DIVERGED). */
#include "../train/train.h"
#include "../train/run_result.h" /* RUN/result.json: its name and "status" values */

static volatile sig_atomic_t g_stop; /* the signal that asked the study to stop, or 0 */

static void on_signal(int sig) { g_stop = sig; }

/* ---- small helpers ---- */

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int remove_tree(const char *path, LnlErr *e) {
    if (!exists(path)) return 0;
    if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return lnl_err(e, "%s: cannot remove the unfinished run: %s", path, strerror(errno));
    return 0;
}

static int cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void fmt_dur(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

/* The last line of a text file, for error messages (empty if none). */
static void last_line(const char *path, char *buf, size_t n) {
    buf[0] = 0;
    char *text = NULL;
    if (lnl_read_file(path, &text, NULL, NULL)) return;
    size_t len = strlen(text);
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r')) text[--len] = 0;
    char *start = strrchr(text, '\n');
    start = start ? start + 1 : text;
    char *cr = strrchr(start, '\r'); /* progress lines end in \r updates */
    if (cr) start = cr + 1;
    snprintf(buf, n, "%s", start);
    free(text);
}

/* The step of the last training record in a run's log (0 if none), read from the file's tail. */
static long last_step(const char *log_path) {
    FILE *f = fopen(log_path, "rb");
    if (!f) return 0;
    char buf[4097];
    long step = 0;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        long from = size > 4096 ? size - 4096 : 0;
        if (fseek(f, from, SEEK_SET) == 0) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            buf[n] = 0;
            const char *key = "{\"step\": ", *p = buf, *hit = NULL;
            while ((p = strstr(p, key))) hit = p++;
            if (hit) step = strtol(hit + strlen(key), NULL, 10);
        }
    }
    fclose(f);
    return step;
}

/* ---- child processes ---- */

typedef struct {
    char *v[80];
    int n;
} Argv;

static void arg(Argv *a, const char *fmt, ...) LNL_PRINTF(2, 3);
static void arg(Argv *a, const char *fmt, ...) {
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (a->n + 1 >= (int)(sizeof a->v / sizeof a->v[0])) abort(); /* programmer error: too many */
    a->v[a->n++] = lnl_strdup(buf);
    a->v[a->n] = NULL;
}

static void argv_free(Argv *a) {
    for (int i = 0; i < a->n; i++) free(a->v[i]);
    a->n = 0;
}

/* Starts exe with argv; stdout to out_path (NULL: inherit), stderr to err_path (NULL: inherit),
 * stdin from /dev/null, threads OpenMP/BLAS threads (0: unchanged). The child dies with the
 * study (PR_SET_PDEATHSIG), so a killed study leaves no run writing behind it. */
static pid_t spawn(const char *exe, const Argv *a, const char *out_path, const char *err_path, int append_err,
                   int threads, LnlErr *e) {
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        lnl_err(e, "cannot start %s: fork: %s", a->v[1], strerror(errno));
        return -1;
    }
    if (pid > 0) return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (threads > 0) {
        char t[16];
        snprintf(t, sizeof t, "%d", threads);
        setenv("OMP_NUM_THREADS", t, 1);
        setenv("OPENBLAS_NUM_THREADS", t, 1);
    }
    int in = open("/dev/null", O_RDONLY);
    if (in >= 0) dup2(in, 0);
    if (out_path) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
        if (fd < 0 || dup2(fd, 1) < 0) _exit(127);
    }
    if (err_path) {
        int fd = open(err_path, O_WRONLY | O_CREAT | (append_err ? O_APPEND : O_TRUNC), 0666);
        if (fd < 0 || dup2(fd, 2) < 0) _exit(127);
    }
    execv(exe, a->v);
    fprintf(stderr, "lnlab: error: cannot run %s: %s\n", exe, strerror(errno));
    _exit(127);
}

/* Runs a child to the end (for prepare). Returns its exit status, or -1. */
static int run_wait(const char *exe, const Argv *a, LnlErr *e) {
    pid_t pid = spawn(exe, a, NULL, NULL, 0, 0, e);
    if (pid < 0) return -1;
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return lnl_err(e, "waitpid: %s", strerror(errno));
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- the study ---- */

enum { STAGE_TRAIN, STAGE_PROBE };
enum { SENS_UNKNOWN, SENS_YES, SENS_NO };

typedef struct {
    int run; /* index into runs, -1: free */
    int stage;
    pid_t pid;
    int with_sens;
    int resumed; /* the train child is `lnlab train --resume` */
    double t0;
} Slot;

typedef struct {
    const LnlStudyConfig *c;
    const LnlStudyOpts *o;
    LnlStudyRun *runs;
    int nruns;
    LnlStudyResults res;
    char *results_path, *settings;
    const char *val_data;
    int threads, tty, sens;
    /* progress */
    double t_start, units_total, units_done;
    int done_now, pending_total;
    int failed;
    char first_failure[1024];
} Study;

static double run_units(const Study *s, const LnlStudyRun *r) {
    return (double)s->c->steps * (r->depth + 1.0) * (double)r->dim * r->dim;
}

static char *run_dir(const Study *s, const LnlStudyRun *r) {
    char *runs = lnl_path_join(s->o->out, "runs");
    char *d = lnl_path_join(runs, r->id);
    free(runs);
    return d;
}

static char *run_file(const Study *s, const LnlStudyRun *r, const char *name) {
    char *d = run_dir(s, r);
    char *p = lnl_path_join(d, name);
    free(d);
    return p;
}

static void clear_line(const Study *s) {
    if (s->tty && !s->o->quiet) fputs("\r\033[K", stderr);
}

#define RUN_SETTINGS "study-settings.json" /* the settings a run directory was started with */

/* Whether a run directory was started under the study's current settings. */
static int same_settings(const Study *s, const char *dir) {
    char *path = lnl_path_join(dir, RUN_SETTINGS), *text = NULL;
    int same = lnl_read_file(path, &text, NULL, NULL) == 0 && strcmp(text, s->settings) == 0;
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

static int start_fresh(Study *s, Slot *sl, int k, LnlErr *e) {
    const LnlStudyConfig *c = s->c;
    const LnlStudyRun *r = &s->runs[k];
    char *dir = run_dir(s, r);
    if (remove_tree(dir, e) || lnl_mkdir_p(dir, e)) {
        free(dir);
        return -1;
    }
    char *sp = lnl_path_join(dir, RUN_SETTINGS);
    int wr = lnl_write_file_atomic(sp, s->settings, strlen(s->settings), e);
    free(sp);
    if (wr) {
        free(dir);
        return -1;
    }
    Argv a = {{0}, 0};
    arg(&a, "lnlab");
    arg(&a, "train");
    arg(&a, "--data");
    arg(&a, "%s", c->data);
    arg(&a, "--out");
    arg(&a, "%s", dir);
    arg(&a, "--preset");
    arg(&a, "%s", r->preset);
    arg(&a, "--dt");
    arg(&a, "%.17g", r->dt);
    if (r->size[0]) {
        arg(&a, "--model-size");
        arg(&a, "%s", r->size);
    } else {
        arg(&a, "--layers");
        arg(&a, "%d", r->depth);
        arg(&a, "--heads");
        arg(&a, "%d", r->heads);
        arg(&a, "--dim");
        arg(&a, "%d", r->dim);
    }
    arg(&a, "--norm");
    arg(&a, "%s", c->norm);
    arg(&a, "--seq");
    arg(&a, "%lld", c->seq);
    if (c->vocab > 0) {
        arg(&a, "--vocab");
        arg(&a, "%lld", c->vocab);
    }
    arg(&a, "--batch");
    arg(&a, "%lld", c->batch);
    if (c->total_batch > 0) {
        arg(&a, "--total-batch");
        arg(&a, "%lld", c->total_batch);
    }
    arg(&a, "--lr");
    arg(&a, "%.17g", r->lr);
    /* the options (init, biases, embedding, steps, schedule, ...): the run's grid's or preset
     * entry's, else the shared settings; model options left to the preset pass no flag */
    char words[2 * LNL_STUDY_NOPTS][LNL_STUDY_ARG_MAX];
    int nw = lnl_study_train_args(c, r, words);
    for (int i = 0; i < nw; i++) arg(&a, "%s", words[i]);
    arg(&a, "--beta1");
    arg(&a, "%.17g", c->beta1);
    arg(&a, "--beta2");
    arg(&a, "%.17g", c->beta2);
    arg(&a, "--adam-eps");
    arg(&a, "%.17g", c->adam_eps);
    if (c->diverge_loss > 0) {
        arg(&a, "--diverge-loss");
        arg(&a, "%.17g", c->diverge_loss);
    }
    if (c->skip_spikes > 0) {
        arg(&a, "--skip-spikes");
        arg(&a, "%.17g", c->skip_spikes);
    }
    /* the seed draws the init and the batches: runs of two placements with one seed are a pair
     * that saw the same data */
    arg(&a, "--seed");
    arg(&a, "%lld", r->seed);
    arg(&a, "--data-seed");
    arg(&a, "%lld", r->seed);
    if (c->diag_every > 0) {
        arg(&a, "--diag-every");
        arg(&a, "%lld", c->diag_every);
    }
    arg(&a, "--eval-every");
    arg(&a, "%lld", c->eval_every);
    arg(&a, "--eval-batches");
    arg(&a, "%lld", c->eval_batches);
    if (c->checkpoint_every > 0) {
        arg(&a, "--checkpoint-every");
        arg(&a, "%lld", c->checkpoint_every);
        arg(&a, "--keep-checkpoints");
        arg(&a, "%lld", c->keep_checkpoints);
    }
    arg(&a, "--quiet");
    char *err = lnl_path_join(dir, "train.err");
    pid_t pid = spawn(s->o->exe, &a, "/dev/null", err, 0, s->threads, e);
    free(err);
    free(dir);
    argv_free(&a);
    if (pid < 0) return -1;
    sl->run = k;
    sl->stage = STAGE_TRAIN;
    sl->pid = pid;
    sl->resumed = 0;
    sl->t0 = lnl_now();
    return 0;
}

static int start_probe(Study *s, Slot *sl, int with_sens, LnlErr *e);
static int finish_run(Study *s, Slot *sl, int probed, LnlErr *e);
static int want_sensitivity(const Study *s);

/* Starts run k: what an earlier, interrupted study left of it is used if it was made under the
 * same settings (a finished training goes straight to the probe; a checkpoint is resumed with
 * `lnlab train --resume`); otherwise the run starts from scratch. */
static int start_train(Study *s, Slot *sl, int k, LnlErr *e) {
    const LnlStudyRun *r = &s->runs[k];
    char *dir = run_dir(s, r);
    int reuse = exists(dir) && same_settings(s, dir);
    int outcome = reuse ? train_outcome(dir) : -1;
    char *model = lnl_path_join(dir, "model.safetensors");
    int have_model = exists(model);
    free(model);
    sl->run = k;
    sl->t0 = lnl_now();
    sl->resumed = 0;
    if (reuse && outcome == 0 && have_model) {
        if (!s->o->quiet) {
            clear_line(s);
            fprintf(stderr, "study: %s had finished training; probing it\n", r->id);
        }
        free(dir);
        return start_probe(s, sl, want_sensitivity(s), e);
    }
    if (reuse && outcome == LNL_EXIT_DIVERGED) {
        free(dir);
        return finish_run(s, sl, 0, e);
    }
    if (reuse && s->c->checkpoint_every > 0 && has_checkpoint(dir)) {
        if (!s->o->quiet) {
            clear_line(s);
            fprintf(stderr, "study: resuming %s from its newest checkpoint\n", r->id);
        }
        Argv a = {{0}, 0};
        arg(&a, "lnlab");
        arg(&a, "train");
        arg(&a, "--resume");
        arg(&a, "%s", dir);
        arg(&a, "--keep-checkpoints");
        arg(&a, "%lld", s->c->keep_checkpoints);
        arg(&a, "--quiet");
        char *err = lnl_path_join(dir, "train.err");
        pid_t pid = spawn(s->o->exe, &a, "/dev/null", err, 1, s->threads, e);
        free(err);
        argv_free(&a);
        free(dir);
        if (pid < 0) return -1;
        sl->stage = STAGE_TRAIN;
        sl->pid = pid;
        sl->resumed = 1;
        return 0;
    }
    free(dir);
    return start_fresh(s, sl, k, e);
}

static int start_probe(Study *s, Slot *sl, int with_sens, LnlErr *e) {
    const LnlStudyConfig *c = s->c;
    const LnlStudyRun *r = &s->runs[sl->run];
    char *model = run_file(s, r, "model.safetensors"), *out = run_file(s, r, "probe.json.tmp"),
         *err = run_file(s, r, "probe.err");
    Argv a = {{0}, 0};
    arg(&a, "lnlab");
    arg(&a, "probe");
    arg(&a, "--model");
    arg(&a, "%s", model);
    arg(&a, "--data");
    arg(&a, "%s", s->val_data);
    arg(&a, "--batch");
    arg(&a, "%lld", c->probe_batch);
    arg(&a, "--seq");
    arg(&a, "%lld", c->seq);
    arg(&a, "--json");
    if (with_sens) arg(&a, "--sensitivity");
    pid_t pid = spawn(s->o->exe, &a, out, err, 0, s->threads, e);
    free(model);
    free(out);
    free(err);
    argv_free(&a);
    if (pid < 0) return -1;
    sl->stage = STAGE_PROBE;
    sl->pid = pid;
    sl->with_sens = with_sens;
    return 0;
}

static void run_failed(Study *s, Slot *sl, const char *errfile, const char *what) {
    const LnlStudyRun *r = &s->runs[sl->run];
    char *path = run_file(s, r, errfile), line[600];
    last_line(path, line, sizeof line);
    free(path);
    clear_line(s);
    fprintf(stderr, "lnlab study: run %s failed in %s: %s (see %s/runs/%s/%s)\n", r->id, what,
            line[0] ? line : "no message", s->o->out, r->id, errfile);
    if (!s->failed)
        snprintf(s->first_failure, sizeof s->first_failure, "%s: %s", r->id, line[0] ? line : "no message");
    s->failed++;
    s->units_done += run_units(s, r);
    sl->run = -1;
}

/* Writes the record of a run that trained (and was probed, unless it diverged). */
static int finish_run(Study *s, Slot *sl, int probed, LnlErr *e) {
    const LnlStudyRun *r = &s->runs[sl->run];
    char *dir = run_dir(s, r), *probe_text = NULL;
    if (probed) {
        char *tmp = run_file(s, r, "probe.json.tmp"), *fin = run_file(s, r, "probe.json");
        int bad = rename(tmp, fin) != 0 || lnl_read_file(fin, &probe_text, NULL, e) != 0;
        if (bad && !probe_text) lnl_err(e, "%s: %s", fin, strerror(errno));
        free(tmp);
        free(fin);
        if (bad) {
            free(dir);
            return -1;
        }
    }
    LnlStudyResult res;
    int rc = lnl_study_result_build(&res, r, dir, probe_text, s->c->spike_nats, e);
    free(probe_text);
    free(dir);
    if (rc) {
        lnl_study_result_free(&res);
        return -1;
    }
    res.threads = s->threads;
    res.wall_s = lnl_now() - sl->t0;
    char *line = lnl_study_result_to_json(&res, s->settings, s->o->command ? s->o->command : "");
    lnl_study_results_put(&s->res, r->id, line);
    cJSON_free(line);
    rc = lnl_study_results_save(&s->res, s->results_path, s->runs, s->nruns, e);
    s->done_now++;
    s->units_done += run_units(s, r);
    if (!s->o->quiet) {
        char took[32], eta[32];
        fmt_dur(took, sizeof took, res.wall_s);
        double el = lnl_now() - s->t_start;
        fmt_dur(eta, sizeof eta, s->units_done > 0 ? el * (s->units_total - s->units_done) / s->units_done : NAN);
        char what[96];
        if (res.diverged_at_step >= 0) snprintf(what, sizeof what, "diverged at step %lld", res.diverged_at_step);
        else if (isfinite(res.final_val_loss)) snprintf(what, sizeof what, "val loss %.4f", res.final_val_loss);
        else snprintf(what, sizeof what, "train loss %.4f", res.final_train_loss);
        clear_line(s);
        fprintf(stderr, "study: [%d/%d] %s: %s, last-layer |h| %.4g (%s) | ETA %s\n",
                s->done_now + s->failed, s->pending_total, r->id, what, res.last_hidden, took, eta);
    }
    lnl_study_result_free(&res);
    sl->run = -1;
    return rc;
}

static void live_line(Study *s, const Slot *slots, int nslots) {
    if (!s->tty || s->o->quiet) return;
    double partial = 0;
    char running[512] = "";
    size_t used = 0;
    for (int i = 0; i < nslots; i++) {
        if (slots[i].run < 0) continue;
        const LnlStudyRun *r = &s->runs[slots[i].run];
        char *log = run_file(s, r, "log.jsonl");
        long step = slots[i].stage == STAGE_PROBE ? (long)s->c->steps : last_step(log);
        free(log);
        partial += run_units(s, r) * (double)step / (double)s->c->steps;
        if (used < sizeof running - 1)
            used += (size_t)snprintf(running + used, sizeof running - used, "%s%s %s", used ? ", " : "", r->id,
                                     slots[i].stage == STAGE_PROBE ? "probe" : "");
        if (slots[i].stage == STAGE_TRAIN && used < sizeof running - 1)
            used += (size_t)snprintf(running + used, sizeof running - used, "%ld/%lld", step, s->c->steps);
    }
    double el = lnl_now() - s->t_start, done = s->units_done + partial;
    char els[32], eta[32] = "?";
    fmt_dur(els, sizeof els, el);
    if (done > 0 && el > 1) fmt_dur(eta, sizeof eta, el * (s->units_total - done) / done);
    fprintf(stderr, "\r\033[Kstudy: %d/%d done | %s | %s elapsed | ETA %s", s->done_now + s->failed,
            s->pending_total, running, els, eta);
    fflush(stderr);
}

/* Refuses to mix runs made under other settings into this study. */
static int check_settings(const Study *s, LnlErr *e) {
    cJSON *cur = cJSON_Parse(s->settings);
    int rc = 0;
    for (int k = 0; k < s->nruns && !rc; k++) {
        int i = lnl_study_results_find(&s->res, s->runs[k].id);
        if (i < 0) continue;
        cJSON *rec = cJSON_Parse(s->res.lines[i]);
        const cJSON *old = cJSON_GetObjectItemCaseSensitive(rec, "settings");
        for (const cJSON *it = cur ? cur->child : NULL; it && !rc; it = it->next) {
            const cJSON *o = cJSON_GetObjectItemCaseSensitive(old, it->string);
            if (!o || cJSON_Compare(o, it, 1)) continue;
            char *a = cJSON_PrintUnformatted(o), *b = cJSON_PrintUnformatted(it);
            rc = lnl_err(e,
                         "--out %s: run %s there was made with %s %s, this study asks for %s %s; use another --out "
                         "(or delete %s)",
                         s->o->out, s->runs[k].id, it->string, a, it->string, b, s->o->out);
            cJSON_free(a);
            cJSON_free(b);
        }
        cJSON_Delete(rec);
    }
    cJSON_Delete(cur);
    return rc;
}

/* Execution order: all runs of the first seed first (a stopped study has whole comparisons),
 * the costliest first within a seed (fewer idle jobs at the end). */
static int seed_rank(const Study *s, long long seed) {
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
    const Study *s = ctx;
    const LnlStudyRun *x = &s->runs[*(const int *)a], *y = &s->runs[*(const int *)b];
    int rx = seed_rank(s, x->seed), ry = seed_rank(s, y->seed);
    if (rx != ry) return rx - ry;
    double ux = run_units(s, x), uy = run_units(s, y);
    if (ux != uy) return ux > uy ? -1 : 1;
    return x->order - y->order;
}

/* Whether the probe of the next run asks for local sensitivity. */
static int want_sensitivity(const Study *s) {
    return strcmp(s->c->sensitivity, "on") == 0 || (strcmp(s->c->sensitivity, "auto") == 0 && s->sens != SENS_NO);
}

static int prepare_data(const Study *s, LnlErr *e) {
    const LnlStudyConfig *c = s->c;
    if (exists(c->data)) return 0;
    if (strcmp(c->corpus, "none") == 0)
        return lnl_err(e, "data: %s does not exist (prepare it with lnlab prepare, or set corpus)", c->data);
    if (!s->o->quiet)
        fprintf(stderr, "study: preparing %s (lnlab prepare --corpus %s --tokenizer %s)\n", c->data, c->corpus,
                c->tokenizer);
    Argv a = {{0}, 0};
    arg(&a, "lnlab");
    arg(&a, "prepare");
    arg(&a, "--corpus");
    arg(&a, "%s", c->corpus);
    arg(&a, "--tokenizer");
    arg(&a, "%s", c->tokenizer);
    arg(&a, "--out");
    arg(&a, "%s", c->data);
    int st = run_wait(s->o->exe, &a, e);
    argv_free(&a);
    if (st < 0) return -1;
    if (st != 0) return lnl_err(e, "data: lnlab prepare of %s failed (exit %d)", c->data, st);
    return 0;
}

int lnl_study_prepare_data(const LnlStudyConfig *c, const LnlStudyOpts *o, LnlErr *e) {
    Study s;
    memset(&s, 0, sizeof s);
    s.c = c;
    s.o = o;
    return prepare_data(&s, e);
}

int lnl_study_run(const LnlStudyConfig *c, const LnlStudyOpts *o, LnlStudySummary *sum, LnlErr *e) {
    memset(sum, 0, sizeof *sum);
    double t0 = lnl_now();
    Study s;
    memset(&s, 0, sizeof s);
    s.c = c;
    s.o = o;
    s.tty = isatty(2);
    int code = 1, lock_fd = -1;
    Slot *slots = NULL;
    int *order = NULL, npending = 0;
    char *val = NULL;

    if (lnl_study_expand(c, &s.runs, &s.nruns, e)) {
        code = LNL_STUDY_EXIT_USAGE;
        goto done;
    }
    sum->runs = s.nruns;
    {
        char *runs_dir = lnl_path_join(o->out, "runs");
        int r = lnl_mkdir_p(runs_dir, e);
        free(runs_dir);
        if (r) goto done;
    }
    {
        char name[64] = ".lock";
        if (o->nshards > 1 && o->shard > 0) snprintf(name, sizeof name, ".lock.shard%d", o->shard);
        if (lnl_dir_lock(o->out, name, "study", &lock_fd, e)) {
            LnlErr why = *e;
            lnl_err(e, "--out %s", why.msg);
            goto done;
        }
    }
    if (o->nshards <= 1) { /* shards start together: one's cleanup would remove another's new file */
        /* leftovers of atomic writes cut short by a kill (the lock says no one else writes here) */
        lnl_atomic_remove_stale(o->out, NULL, NULL);
        char *plots = lnl_path_join(o->out, "plots");
        lnl_atomic_remove_stale(plots, NULL, NULL);
        free(plots);
    }
    s.results_path = lnl_path_join(o->out, "results.jsonl");
    s.settings = lnl_study_settings_json(c);
    if (lnl_study_results_load(&s.res, s.results_path, e)) goto done;
    if (o->nshards > 1) {
        char name[64];
        snprintf(name, sizeof name, "results.shard%d.jsonl", o->shard);
        free(s.results_path);
        s.results_path = lnl_path_join(o->out, name);
    }
    if (check_settings(&s, e)) {
        code = LNL_STUDY_EXIT_USAGE;
        goto done;
    }
    {
        char *cfg = lnl_study_config_to_json(c), *path = lnl_path_join(o->out, "study.json");
        LnlBuf b = {0};
        lnl_buf_printf(&b, "%s\n", cfg);
        int r = lnl_write_file_atomic(path, b.data, b.len, e);
        lnl_buf_free(&b);
        free(path);
        free(cfg);
        if (r) goto done;
    }

    order = lnl_malloc(sizeof(int) * (size_t)(s.nruns ? s.nruns : 1));
    for (int k = 0; k < s.nruns; k++) {
        if (lnl_study_results_find(&s.res, s.runs[k].id) >= 0) sum->reused++;
        else order[npending++] = k;
    }
    qsort_r(order, (size_t)npending, sizeof *order, cmp_exec, &s);
    if (o->nshards > 1) {
        int k = 0;
        for (int i = 0; i < npending; i++)
            if (i % o->nshards == o->shard) order[k++] = order[i];
        npending = k;
    }
    s.pending_total = npending;
    for (int i = 0; i < npending; i++) s.units_total += run_units(&s, &s.runs[order[i]]);

    int total_cpus = cpu_count();
    const char *omp = getenv("OMP_NUM_THREADS");
    if (omp && atoi(omp) > 0) total_cpus = atoi(omp);
    int jobs = c->jobs > 0 ? (int)c->jobs : total_cpus;
    /* threads depend on the asked jobs, not on how many runs are left, so a resumed study
     * computes exactly what an uninterrupted one would */
    s.threads = c->threads > 0 ? (int)c->threads : (total_cpus / jobs > 0 ? total_cpus / jobs : 1);
    sum->jobs = jobs;
    sum->threads = s.threads;
    if (jobs > npending) jobs = npending > 0 ? npending : 1;

    if (npending > 0) {
        if (prepare_data(&s, e)) goto done;
        struct stat st;
        val = lnl_path_join(c->data, "val.bin");
        s.val_data = stat(c->data, &st) == 0 && S_ISDIR(st.st_mode) && exists(val) ? val : c->data;
        if (!o->quiet)
            fprintf(stderr, "study: %d runs (%d finished before), %d at a time, %d thread%s each, into %s\n", s.nruns,
                    sum->reused, jobs, s.threads, s.threads == 1 ? "" : "s", o->out);
    }

    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    g_stop = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    slots = lnl_malloc(sizeof *slots * (size_t)jobs);
    for (int i = 0; i < jobs; i++) slots[i].run = -1;
    s.t_start = lnl_now();
    int next = 0, running = 0, err = 0;
    double last_draw = 0;
    while ((next < npending || running > 0) && !err) {
        if (g_stop) break;
        for (int i = 0; i < jobs && next < npending && !g_stop; i++) {
            if (slots[i].run >= 0) continue;
            if (start_train(&s, &slots[i], order[next++], e)) {
                err = 1;
                break;
            }
            if (slots[i].run >= 0) running++; /* else it was already finished (a diverged run's record) */
        }
        if (err) break;
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid <= 0) {
            if (lnl_now() - last_draw > 0.5) {
                live_line(&s, slots, jobs);
                last_draw = lnl_now();
            }
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        Slot *sl = NULL;
        for (int i = 0; i < jobs; i++)
            if (slots[i].run >= 0 && slots[i].pid == pid) sl = &slots[i];
        if (!sl) continue; /* not ours (cannot happen: every child is a run) */
        if (g_stop) break;  /* it died of the same signal; stop below */
        int status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (sl->stage == STAGE_TRAIN) {
            if (status == 0) {
                if (start_probe(&s, sl, want_sensitivity(&s), e)) err = 1;
            } else if (status == LNL_EXIT_DIVERGED) {
                if (finish_run(&s, sl, 0, e)) err = 1;
                running--;
            } else if (sl->resumed && status < 128) {
                /* the checkpoint could not be resumed: start the run over */
                if (start_fresh(&s, sl, sl->run, e)) err = 1;
            } else {
                run_failed(&s, sl, "train.err", "train");
                running--;
            }
        } else {
            if (status == 0) {
                if (sl->with_sens) s.sens = SENS_YES;
                if (finish_run(&s, sl, 1, e)) err = 1;
                running--;
            } else if (status == 2 && sl->with_sens && strcmp(c->sensitivity, "auto") == 0) {
                s.sens = SENS_NO; /* this lnlab's probe has no --sensitivity: measure without */
                if (start_probe(&s, sl, 0, e)) err = 1;
            } else {
                run_failed(&s, sl, "probe.err", "probe");
                running--;
            }
        }
    }
    if (g_stop || err) {
        for (int i = 0; i < jobs; i++)
            if (slots[i].run >= 0) kill(slots[i].pid, SIGTERM);
        for (int i = 0; i < jobs; i++)
            if (slots[i].run >= 0)
                while (waitpid(slots[i].pid, NULL, 0) < 0 && errno == EINTR) {
                }
        clear_line(&s);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sum->trained = s.done_now;
    sum->failed = s.failed;
    if (err) goto done;
    if (g_stop) {
        code = 128 + (int)g_stop;
        lnl_err(e, "interrupted: %d runs finished (kept in %s), %d left; run the same command again to continue",
                sum->reused + sum->trained, s.results_path, s.nruns - sum->reused - sum->trained);
        goto done;
    }
    clear_line(&s);
    if (o->nshards > 1) { /* a shard: rank 0 merges the records and writes the report */
        code = s.failed ? 1 : 0;
        if (s.failed) lnl_err(e, "%d run%s failed (first: %s)", s.failed, s.failed == 1 ? "" : "s", s.first_failure);
        goto done;
    }

    LnlStudyReportInfo info = {0};
    info.failed = s.failed;
    info.first_failure = s.first_failure;
    info.command = o->command;
    info.jobs = sum->jobs;
    info.threads = s.threads;
    int rep = lnl_study_report(c, o->out, s.runs, s.nruns, &s.res, &info, e);
    sum->verdicts = info.verdicts;
    sum->plots_drawn = info.plots_drawn;
    snprintf(sum->plots_why, sizeof sum->plots_why, "%s", info.plots_why);
    if (rep) goto done;
    if (s.failed) {
        lnl_err(e, "%d run%s failed (first: %s); the report covers the others; run again to retry", s.failed,
                s.failed == 1 ? "" : "s", s.first_failure);
        code = 1;
        goto done;
    }
    code = 0;
done:
    sum->wall_s = lnl_now() - t0;
    free(slots);
    free(order);
    free(val);
    free(s.runs);
    free(s.results_path);
    cJSON_free(s.settings);
    lnl_study_results_free(&s.res);
    if (lock_fd >= 0) close(lock_fd);
    return code;
}
