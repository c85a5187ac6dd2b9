/* lnlab study --mpi (study_mpi.h): shards of a study on the ranks, one report on rank 0. */
#include "study_mpi.h"

#include <dirent.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "results.h"

/* Moves the records of every OUT/results.shard*.jsonl into OUT/results.jsonl (a record of the
 * same run replaces the older one), then removes those files. */
static int merge_shards(const LnlStudyConfig *c, const char *out, LnlErr *e) {
    LnlStudyRun *runs = NULL;
    int nruns = 0;
    if (lnl_study_expand(c, &runs, &nruns, e)) return -1;
    char *path = lnl_path_join(out, "results.jsonl");
    LnlStudyResults all;
    int r = lnl_study_results_load(&all, path, e);
    char **shards = NULL;
    int nshards = 0;
    DIR *dir = r ? NULL : opendir(out);
    struct dirent *de;
    while (dir && (de = readdir(dir)))
        if (fnmatch("results.shard*.jsonl", de->d_name, 0) == 0) {
            shards = lnl_realloc(shards, sizeof(char *) * (size_t)(nshards + 1));
            shards[nshards++] = lnl_path_join(out, de->d_name);
        }
    if (dir) closedir(dir);
    for (int i = 0; i < nshards && !r; i++) {
        LnlStudyResults part;
        r = lnl_study_results_load(&part, shards[i], e);
        for (int k = 0; !r && k < part.n; k++) lnl_study_results_put(&all, part.ids[k], part.lines[k]);
        lnl_study_results_free(&part);
    }
    if (!r && nshards > 0) r = lnl_study_results_save(&all, path, runs, nruns, e);
    for (int i = 0; i < nshards; i++) {
        if (!r) unlink(shards[i]);
        free(shards[i]);
    }
    free(shards);
    lnl_study_results_free(&all);
    free(path);
    free(runs);
    return r;
}

int lnl_study_run_mpi(const LnlStudyConfig *c, const LnlStudyOpts *o, LnlDist *d, LnlStudySummary *sum, LnlErr *e) {
    if (lnl_dist_size(d) == 1) return lnl_study_run(c, o, sum, e);
    memset(sum, 0, sizeof *sum);
    double t0 = lnl_now();
    const int root = lnl_dist_is_root(d);
    lnl_dist_hide_launcher(); /* the runs are plain child processes, not ranks */

    int err = 0;
    if (root)
        err = lnl_mkdir_p(o->out, e) || merge_shards(c, o->out, e) || lnl_study_prepare_data(c, o, e);
    if (lnl_dist_max(d, err)) {
        if (!err) lnl_err(e, "study: rank 0 could not set up %s", o->out);
        return 1;
    }

    LnlStudyOpts so = *o;
    so.shard = lnl_dist_rank(d);
    so.nshards = lnl_dist_size(d);
    if (!root) so.quiet = 1;
    LnlStudySummary part;
    LnlErr pe;
    int code = lnl_study_run(c, &so, &part, &pe);
    free(part.verdicts);
    long trained = lnl_dist_sum(d, part.trained);
    int worst = (int)lnl_dist_max(d, code);
    if (!root) {
        if (code) *e = pe;
        return code;
    }
    int merged = merge_shards(c, o->out, e);
    if (worst != 0 && worst != 1) { /* interrupted (128 + signal) or refused settings (2) */
        if (code) *e = pe;
        else lnl_err(e, "another rank stopped with exit code %d; finished runs are kept in %s", worst, o->out);
        return worst;
    }
    if (merged) return 1;
    /* the final pass: every run that has a record is reused, failed ones are tried again here */
    int final = lnl_study_run(c, o, sum, e);
    sum->reused -= (int)trained;
    sum->trained += (int)trained;
    sum->jobs = part.jobs;
    sum->threads = part.threads;
    sum->wall_s = lnl_now() - t0;
    return final;
}
