/* The study's child processes (children.h): spawning, supervising N at a time, records as runs
 * finish, the live line, stopping on a signal. */
#include "children.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

/* Exit code of `lnlab train` when the run diverged (src/train/train.h, LNL_EXIT_DIVERGED). */
#include "../train/train.h"

static volatile sig_atomic_t g_stop; /* the signal that asked the study to stop, or 0 */

static void on_signal(int sig) { g_stop = sig; }

/* ---- small helpers ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int remove_tree(const char *path, LnlErr *e) {
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return lnl_err(e, "%s: cannot remove the unfinished run: %s", path, strerror(errno));
    return 0;
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

/* Starts exe with argv; stdout to out_path (NULL: inherit), stderr to err_path (NULL: inherit),
 * stdin from /dev/null, threads OpenMP/BLAS threads (0: unchanged), without LNLAB_BF16 (a run's
 * precision is the one its command line, or resumed its config.json, says: never the study's
 * environment). The child dies with the study (PR_SET_PDEATHSIG), so a killed study leaves no
 * run writing behind it. */
static pid_t spawn(const char *exe, const LnlArgv *a, const char *out_path, const char *err_path, int append_err,
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
    unsetenv("LNLAB_BF16");
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

int lnl_study_child_wait(const char *exe, const LnlArgv *a, LnlErr *e) {
    pid_t pid = spawn(exe, a, NULL, NULL, 0, 0, e);
    if (pid < 0) return -1;
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return lnl_err(e, "waitpid: %s", strerror(errno));
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- the runs ---- */

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

/* The supervisor's state besides what the caller sees. */
typedef struct {
    LnlStudyChildren *ch;
    int tty, sens;
    double t_start, units_total, units_done;
    int pending_total;
} Sup;

static double run_units(const Sup *s, const LnlStudyRun *r) { return lnl_study_run_units(s->ch->c, r); }
static char *run_dir(const Sup *s, const LnlStudyRun *r) { return lnl_study_run_dir(s->ch->o->out, r); }
static char *run_file(const Sup *s, const LnlStudyRun *r, const char *name) {
    return lnl_study_run_file(s->ch->o->out, r, name);
}

static void clear_line(const Sup *s) {
    if (s->tty && !s->ch->o->quiet) fputs("\r\033[K", stderr);
}

/* Whether the probe of the next run asks for local sensitivity. */
static int want_sensitivity(const Sup *s) {
    const char *sens = s->ch->c->sensitivity;
    return strcmp(sens, "on") == 0 || (strcmp(sens, "auto") == 0 && s->sens != SENS_NO);
}

static int start_fresh(Sup *s, Slot *sl, int k, LnlErr *e) {
    const LnlStudyChildren *ch = s->ch;
    const LnlStudyRun *r = &ch->runs[k];
    char *dir = run_dir(s, r);
    if (remove_tree(dir, e) || lnl_mkdir_p(dir, e)) {
        free(dir);
        return -1;
    }
    char *sp = lnl_path_join(dir, LNL_STUDY_RUN_SETTINGS), *settings = lnl_study_run_settings_json(ch->c, r);
    int wr = lnl_write_file_atomic(sp, settings, strlen(settings), e);
    cJSON_free(settings);
    free(sp);
    if (wr) {
        free(dir);
        return -1;
    }
    LnlArgv a = {{0}, 0};
    lnl_study_train_argv(&a, ch->c, r, dir);
    char *err = lnl_path_join(dir, "train.err");
    pid_t pid = spawn(ch->o->exe, &a, "/dev/null", err, 0, ch->threads, e);
    free(err);
    free(dir);
    lnl_argv_free(&a);
    if (pid < 0) return -1;
    sl->run = k;
    sl->stage = STAGE_TRAIN;
    sl->pid = pid;
    sl->resumed = 0;
    sl->t0 = lnl_now();
    return 0;
}

static int start_probe(Sup *s, Slot *sl, int with_sens, LnlErr *e) {
    const LnlStudyChildren *ch = s->ch;
    const LnlStudyRun *r = &ch->runs[sl->run];
    char *model = run_file(s, r, "model.safetensors"), *out = run_file(s, r, "probe.json.tmp"),
         *err = run_file(s, r, "probe.err");
    LnlArgv a = {{0}, 0};
    lnl_study_probe_argv(&a, ch->c, model, ch->val_data, with_sens);
    pid_t pid = spawn(ch->o->exe, &a, out, err, 0, ch->threads, e);
    free(model);
    free(out);
    free(err);
    lnl_argv_free(&a);
    if (pid < 0) return -1;
    sl->stage = STAGE_PROBE;
    sl->pid = pid;
    sl->with_sens = with_sens;
    return 0;
}

static void run_failed(Sup *s, Slot *sl, const char *errfile, const char *what) {
    LnlStudyChildren *ch = s->ch;
    const LnlStudyRun *r = &ch->runs[sl->run];
    char *path = run_file(s, r, errfile), line[600];
    last_line(path, line, sizeof line);
    free(path);
    clear_line(s);
    fprintf(stderr, "lnlab study: run %s failed in %s: %s (see %s/runs/%s/%s)\n", r->id, what,
            line[0] ? line : "no message", ch->o->out, r->id, errfile);
    if (!ch->failed)
        snprintf(ch->first_failure, sizeof ch->first_failure, "%s: %s", r->id, line[0] ? line : "no message");
    ch->failed++;
    s->units_done += run_units(s, r);
    sl->run = -1;
}

/* Writes the record of a run that trained (and was probed, unless it diverged). */
static int finish_run(Sup *s, Slot *sl, int probed, LnlErr *e) {
    LnlStudyChildren *ch = s->ch;
    const LnlStudyRun *r = &ch->runs[sl->run];
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
    int rc = lnl_study_result_build(&res, r, dir, probe_text, ch->c->spike_nats, e);
    free(probe_text);
    free(dir);
    if (rc) {
        lnl_study_result_free(&res);
        return -1;
    }
    res.threads = ch->threads;
    res.wall_s = lnl_now() - sl->t0;
    char *settings = lnl_study_run_settings_json(ch->c, r);
    char *line = lnl_study_result_to_json(&res, settings, ch->o->command ? ch->o->command : "");
    cJSON_free(settings);
    lnl_study_results_put(ch->res, r->id, line);
    cJSON_free(line);
    rc = lnl_study_results_save(ch->res, ch->results_path, ch->runs, ch->nruns, e);
    ch->done_now++;
    s->units_done += run_units(s, r);
    if (!ch->o->quiet) {
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
                ch->done_now + ch->failed, s->pending_total, r->id, what, res.last_hidden, took, eta);
    }
    lnl_study_result_free(&res);
    sl->run = -1;
    return rc;
}

/* Starts run k as plan.h's lnl_study_run_state says: a finished training goes straight to the
 * probe, a diverged one to its record, a checkpoint is resumed, anything else starts over. */
static int start_train(Sup *s, Slot *sl, int k, LnlErr *e) {
    const LnlStudyChildren *ch = s->ch;
    const LnlStudyRun *r = &ch->runs[k];
    char *dir = run_dir(s, r);
    char *settings = lnl_study_run_settings_json(ch->c, r);
    LnlRunState state = lnl_study_run_state(dir, settings, ch->c);
    cJSON_free(settings);
    sl->run = k;
    sl->t0 = lnl_now();
    sl->resumed = 0;
    if (state == LNL_RUN_PROBE) {
        if (!ch->o->quiet) {
            clear_line(s);
            fprintf(stderr, "study: %s had finished training; probing it\n", r->id);
        }
        free(dir);
        return start_probe(s, sl, want_sensitivity(s), e);
    }
    if (state == LNL_RUN_DIVERGED) {
        free(dir);
        return finish_run(s, sl, 0, e);
    }
    if (state == LNL_RUN_RESUME) {
        if (!ch->o->quiet) {
            clear_line(s);
            fprintf(stderr, "study: resuming %s from its newest checkpoint\n", r->id);
        }
        LnlArgv a = {{0}, 0};
        lnl_study_resume_argv(&a, ch->c, dir);
        char *err = lnl_path_join(dir, "train.err");
        pid_t pid = spawn(ch->o->exe, &a, "/dev/null", err, 1, ch->threads, e);
        free(err);
        lnl_argv_free(&a);
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

static void live_line(Sup *s, const Slot *slots, int nslots) {
    const LnlStudyChildren *ch = s->ch;
    if (!s->tty || ch->o->quiet) return;
    double partial = 0;
    char running[512] = "";
    size_t used = 0;
    long long steps = ch->c->steps;
    for (int i = 0; i < nslots; i++) {
        if (slots[i].run < 0) continue;
        const LnlStudyRun *r = &ch->runs[slots[i].run];
        char *log = run_file(s, r, "log.jsonl");
        long step = slots[i].stage == STAGE_PROBE ? (long)steps : last_step(log);
        free(log);
        partial += run_units(s, r) * (double)step / (double)steps;
        if (used < sizeof running - 1)
            used += (size_t)snprintf(running + used, sizeof running - used, "%s%s %s", used ? ", " : "", r->id,
                                     slots[i].stage == STAGE_PROBE ? "probe" : "");
        if (slots[i].stage == STAGE_TRAIN && used < sizeof running - 1)
            used += (size_t)snprintf(running + used, sizeof running - used, "%ld/%lld", step, steps);
    }
    double el = lnl_now() - s->t_start, done = s->units_done + partial;
    char els[32], eta[32] = "?";
    fmt_dur(els, sizeof els, el);
    if (done > 0 && el > 1) fmt_dur(eta, sizeof eta, el * (s->units_total - done) / done);
    fprintf(stderr, "\r\033[Kstudy: %d/%d done | %s | %s elapsed | ETA %s", ch->done_now + ch->failed,
            s->pending_total, running, els, eta);
    fflush(stderr);
}

int lnl_study_children_run(LnlStudyChildren *ch, const int *order, int npending, LnlErr *e) {
    const LnlStudyConfig *c = ch->c;
    Sup s = {ch, isatty(2), SENS_UNKNOWN, 0, 0, 0, npending};
    for (int i = 0; i < npending; i++) s.units_total += run_units(&s, &ch->runs[order[i]]);
    int jobs = ch->jobs > npending ? (npending > 0 ? npending : 1) : ch->jobs;
    ch->done_now = ch->failed = ch->stopped = 0;
    ch->first_failure[0] = 0;

    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    g_stop = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    Slot *slots = lnl_malloc(sizeof *slots * (size_t)jobs);
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
    }
    clear_line(&s);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(slots);
    ch->stopped = (int)g_stop;
    return err ? -1 : 0;
}
