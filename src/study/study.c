/* The study, end to end: the runs of the grid (config.h), what OUT already holds (results.jsonl,
 * the lock, the settings check), the plan (plan.h), the children that train and probe
 * (children.h), then the report (report.h). */
#include "study.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "children.h"
#include "plan.h"
#include "report.h"
#include "results.h"

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int lnl_study_prepare_data(const LnlStudyConfig *c, const LnlStudyOpts *o, LnlErr *e) {
    if (exists(c->data)) return 0;
    if (strcmp(c->corpus, "none") == 0)
        return lnl_err(e, "data: %s does not exist (prepare it with lnlab prepare, or set corpus)", c->data);
    if (!o->quiet)
        fprintf(stderr, "study: preparing %s (lnlab prepare --corpus %s --tokenizer %s)\n", c->data, c->corpus,
                c->tokenizer);
    LnlArgv a = {{0}, 0};
    lnl_study_prepare_argv(&a, c);
    int st = lnl_study_child_wait(o->exe, &a, e);
    lnl_argv_free(&a);
    if (st < 0) return -1;
    if (st != 0) return lnl_err(e, "data: lnlab prepare of %s failed (exit %d)", c->data, st);
    return 0;
}

/* Takes OUT: its runs/ directory and the lock (a shard's own), and, for a whole study, removes
 * what atomic writes cut short by a kill left (the lock says no one else writes here; shards
 * start together, so one's cleanup would remove another's new file). */
static int take_out(const LnlStudyOpts *o, int *lock_fd, LnlErr *e) {
    char *runs_dir = lnl_path_join(o->out, "runs");
    int r = lnl_mkdir_p(runs_dir, e);
    free(runs_dir);
    if (r) return -1;
    char name[64] = ".lock";
    if (o->nshards > 1 && o->shard > 0) snprintf(name, sizeof name, ".lock.shard%d", o->shard);
    if (lnl_dir_lock(o->out, name, "study", lock_fd, e)) {
        LnlErr why = *e;
        return lnl_err(e, "--out %s", why.msg);
    }
    if (o->nshards <= 1) {
        lnl_atomic_remove_stale(o->out, NULL, NULL);
        char *plots = lnl_path_join(o->out, "plots");
        lnl_atomic_remove_stale(plots, NULL, NULL);
        free(plots);
    }
    return 0;
}

/* OUT/study.json: the resolved config of this invocation. */
static int write_config(const LnlStudyConfig *c, const char *out, LnlErr *e) {
    char *cfg = lnl_study_config_to_json(c), *path = lnl_path_join(out, "study.json");
    LnlBuf b = {0};
    lnl_buf_printf(&b, "%s\n", cfg);
    int r = lnl_write_file_atomic(path, b.data, b.len, e);
    lnl_buf_free(&b);
    free(path);
    free(cfg);
    return r;
}

int lnl_study_run(const LnlStudyConfig *c, const LnlStudyOpts *o, LnlStudySummary *sum, LnlErr *e) {
    memset(sum, 0, sizeof *sum);
    double t0 = lnl_now();
    int code = 1, lock_fd = -1, *order = NULL;
    LnlStudyRun *runs = NULL;
    int nruns = 0;
    LnlStudyResults res = {0};
    char *results_path = NULL, *val = NULL;

    if (lnl_study_expand(c, &runs, &nruns, e)) {
        code = LNL_STUDY_EXIT_USAGE;
        goto done;
    }
    sum->runs = nruns;
    if (take_out(o, &lock_fd, e)) goto done;
    results_path = lnl_path_join(o->out, "results.jsonl");
    if (lnl_study_results_load(&res, results_path, e)) goto done;
    if (o->nshards > 1) { /* a shard saves its records apart; rank 0 merges them (study_mpi.h) */
        char name[64];
        snprintf(name, sizeof name, "results.shard%d.jsonl", o->shard);
        free(results_path);
        results_path = lnl_path_join(o->out, name);
    }
    if (lnl_study_plan_check_settings(o->out, c, runs, nruns, &res, e)) {
        code = LNL_STUDY_EXIT_USAGE;
        goto done;
    }
    if (write_config(c, o->out, e)) goto done;

    order = lnl_malloc(sizeof(int) * (size_t)(nruns ? nruns : 1));
    int npending = lnl_study_plan_order(c, runs, nruns, &res, o->shard, o->nshards, order, &sum->reused);
    int jobs, threads;
    lnl_study_plan_threads(c, &jobs, &threads);
    sum->jobs = jobs;
    sum->threads = threads;

    LnlStudyChildren ch = {c, o, runs, nruns, &res, results_path, NULL, jobs, threads, 0, 0, "", 0};
    if (npending > 0) {
        if (lnl_study_prepare_data(c, o, e)) goto done;
        struct stat st;
        val = lnl_path_join(c->data, "val.bin");
        ch.val_data = stat(c->data, &st) == 0 && S_ISDIR(st.st_mode) && exists(val) ? val : c->data;
        if (!o->quiet)
            fprintf(stderr, "study: %d runs (%d finished before), %d at a time, %d thread%s each, into %s\n", nruns,
                    sum->reused, jobs > npending ? npending : jobs, threads, threads == 1 ? "" : "s", o->out);
    }
    int err = lnl_study_children_run(&ch, order, npending, e);
    sum->trained = ch.done_now;
    sum->failed = ch.failed;
    if (err) goto done;
    if (ch.stopped) {
        code = 128 + ch.stopped;
        lnl_err(e, "interrupted: %d runs finished (kept in %s), %d left; run the same command again to continue",
                sum->reused + sum->trained, results_path, nruns - sum->reused - sum->trained);
        goto done;
    }
    if (o->nshards > 1) { /* a shard: rank 0 merges the records and writes the report */
        code = ch.failed ? 1 : 0;
        if (ch.failed) lnl_err(e, "%d run%s failed (first: %s)", ch.failed, ch.failed == 1 ? "" : "s", ch.first_failure);
        goto done;
    }

    LnlStudyReportInfo info = {0};
    info.failed = ch.failed;
    info.first_failure = ch.first_failure;
    info.command = o->command;
    info.jobs = jobs;
    info.threads = threads;
    int rep = lnl_study_report(c, o->out, runs, nruns, &res, &info, e);
    sum->verdicts = info.verdicts;
    sum->plots_drawn = info.plots_drawn;
    snprintf(sum->plots_why, sizeof sum->plots_why, "%s", info.plots_why);
    if (rep) goto done;
    if (ch.failed) {
        lnl_err(e, "%d run%s failed (first: %s); the report covers the others; run again to retry", ch.failed,
                ch.failed == 1 ? "" : "s", ch.first_failure);
        code = 1;
        goto done;
    }
    code = 0;
done:
    sum->wall_s = lnl_now() - t0;
    free(order);
    free(val);
    free(runs);
    free(results_path);
    lnl_study_results_free(&res);
    if (lock_fd >= 0) close(lock_fd);
    return code;
}
