/* lnlab study: a grid of training runs (presets x dt x depth x lr x precision x seed) with a probe
 * of each final model, and a report of what they show (docs/STUDY.md). The flags are generated from
 * the study's field table (src/study/config.c), so a flag and a config field never disagree. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/version.h"
#include "../study/config.h"
#include "../study/study.h"
#include "../study/study_mpi.h"
#include "flags.h"

enum { NOWN = 7, NMAX = NOWN + 64 + LNL_NAXES };

typedef struct {
    char names[64 + LNL_NAXES][40];
    char helps[64 + LNL_NAXES][200];
    long long ival[64];
    double fval[64];
    const char *sval[64];
    LnlStrList lists[LNL_NAXES];
} FlagStore;

int cmd_study(int argc, char **argv) {
    const char *config = NULL, *builtin = "default", *out = "study";
    int print_config = 0, quiet = 0, mpi = 0;
    LnlStrList grids = {0};
    FlagStore fs;
    memset(&fs, 0, sizeof fs);
    LnlFlag flags[NMAX] = {
        {"--config", LNL_FLAG_STR, &config, "JSON config file (docs/STUDY.md); flags override its fields", 1, 0, NULL, 0},
        {"--preset-study", LNL_FLAG_STR, &builtin, "built-in study to start from", 1, 0, LNL_STUDY_BUILTINS, 0},
        {"--print-config", LNL_FLAG_BOOL, &print_config, "print the resolved config as JSON and exit", 1, 0, NULL, 0},
        {"--out", LNL_FLAG_STR, &out, "study directory (results.jsonl, summary.md, report.html, plots/, runs/)", 1, 0,
         NULL, 0},
        {"--quiet", LNL_FLAG_BOOL, &quiet, "no progress lines", 1, 0, NULL, 0},
        {"--grids", LNL_FLAG_LIST, &grids, "run only these grids of the study (names, comma separated; "
         "--print-config shows them)", 1, 0, NULL, 0},
        {"--mpi", LNL_FLAG_BOOL, &mpi, "under mpirun: deal the runs out to the processes, rank 0 writes the report "
         "(docs/DISTRIBUTED.md)", 1, 0, NULL, 0},
    };
    int nflags = NOWN;
    for (int i = 0; i < lnl_study_nfields; i++) {
        const LnlStudyField *f = &lnl_study_fields[i];
        char *name = fs.names[i];
        snprintf(name, sizeof fs.names[i], "--%s", f->key);
        for (char *p = name + 2; *p; p++)
            if (*p == '_') *p = '-';
        snprintf(fs.helps[i], sizeof fs.helps[i], "%s (default: the study's; see --print-config)", f->help);
        LnlFlag fl = {name, LNL_FLAG_STR, &fs.sval[i], fs.helps[i], 1, 0, f->choices, 0};
        if (f->type == LNL_SF_INT) fl = (LnlFlag){name, LNL_FLAG_INT, &fs.ival[i], fs.helps[i], f->lo, f->hi, NULL, 0};
        if (f->type == LNL_SF_FLOAT) fl = (LnlFlag){name, LNL_FLAG_FLOAT, &fs.fval[i], fs.helps[i], f->lo, f->hi, NULL, 0};
        flags[nflags++] = fl;
    }
    for (int ax = 0; ax < LNL_NAXES; ax++) {
        char *name = fs.names[64 + ax];
        snprintf(name, sizeof fs.names[64 + ax], "--%s", lnl_study_axes[ax].key);
        snprintf(fs.helps[64 + ax], sizeof fs.helps[64 + ax],
                 "%s, comma separated; replaces that axis in every grid (default: the study's)", lnl_study_axes[ax].help);
        flags[nflags++] = (LnlFlag){name, LNL_FLAG_LIST, &fs.lists[ax], fs.helps[64 + ax], 1, 0, NULL, 0};
    }
    int npos;
    lnl_flags_parse_or_exit("study",
                            "[--config FILE | --preset-study default|thorough|paper] [flags] [--out DIR]\n"
                            "       runs the default comparison into study/ when given no flags (docs/STUDY.md)",
                            flags, nflags, argc, argv, NULL, 0, &npos);

    LnlErr e;
    LnlStudyConfig c;
    const char *what = config ? config : "lnlab study";
    if (config && lnl_flags_find(flags, nflags, "--preset-study")->seen)
        lnl_die(2, "study: give --config or --preset-study, not both");
    if (config ? lnl_study_config_load(&c, config, &e) : lnl_study_config_builtin(&c, builtin, &e))
        lnl_die(2, "%s", e.msg);
    for (int i = 0; i < lnl_study_nfields; i++) {
        const LnlStudyField *f = &lnl_study_fields[i];
        LnlFlag *fl = lnl_flags_find(flags, nflags, fs.names[i]);
        if (!fl->seen) continue;
        int r = f->type == LNL_SF_STR ? lnl_study_field_set_str(&c, f, fs.sval[i], fl->name, &e)
                                      : lnl_study_field_set_num(&c, f, f->type == LNL_SF_INT ? (double)fs.ival[i] : fs.fval[i],
                                                                fl->name, &e);
        if (r) lnl_die(2, "%s", e.msg);
    }
    if (grids.n && lnl_study_keep_grids(&c, grids.items, grids.n, "--grids", &e)) lnl_die(2, "%s", e.msg);
    free(grids.items);
    /* every axis given (depths or sizes): one grid of exactly those runs, whatever the study had */
    if (fs.lists[LNL_AX_PRESET].n && fs.lists[LNL_AX_DT].n && (fs.lists[LNL_AX_DEPTH].n || fs.lists[LNL_AX_SIZE].n) &&
        fs.lists[LNL_AX_LR].n && fs.lists[LNL_AX_SEED].n)
        lnl_study_single_grid(&c, "flags");
    for (int ax = 0; ax < LNL_NAXES; ax++) {
        if (!fs.lists[ax].n) continue;
        if (lnl_study_axis_set_all(&c, ax, fs.lists[ax].items, fs.lists[ax].n, fs.names[64 + ax], &e))
            lnl_die(2, "%s", e.msg);
    }
    for (int ax = 0; ax < LNL_NAXES; ax++) free(fs.lists[ax].items); /* the config holds copies */
    if (lnl_study_config_validate(&c, what, &e)) lnl_die(2, "%s", e.msg);

    if (print_config) {
        char *s = lnl_study_config_to_json(&c);
        if (printf("%s\n", s) < 0 || fflush(stdout) != 0) lnl_die(1, "study: error writing stdout");
        free(s);
        lnl_study_config_free(&c);
        return 0;
    }
    /* what this machine cannot run is refused before any run starts (a printed config may be for another) */
    if (lnl_study_config_check_host(&c, lnl_version_bf16(), what, &e)) lnl_die(2, "%s", e.msg);

    char *self = lnl_exe_path(); /* the children run this same program */
    char *command = lnl_command_line(argc, argv);
    LnlStudyOpts o = {self, out, quiet, 0, 0, command};
    LnlStudySummary sum;
    LnlDist dist = {0}; /* without --mpi the study never joins an MPI job: rank 0 of 1 */
    dist.size = 1;
    if (mpi && lnl_dist_init(&dist, &e)) lnl_die(1, "%s", e.msg);
    int code = lnl_study_run_mpi(&c, &o, &dist, &sum, &e);
    free(self);
    free(command);
    const int root = dist.rank == 0;
    lnl_dist_free(&dist);
    if (root && (code == 0 || (code == 1 && sum.verdicts))) {
        char dur[32];
        long t = (long)(sum.wall_s + 0.5);
        snprintf(dur, sizeof dur, "%ldm%02lds", t / 60, t % 60);
        printf("study: %d runs (%d finished before, %d trained now, %d failed) in %s, %d at a time x %d thread%s\n",
               sum.runs, sum.reused, sum.trained, sum.failed, dur, sum.jobs, sum.threads, sum.threads == 1 ? "" : "s");
        if (sum.plots_why[0]) printf("report: %s/summary.md, %s/report.html (no plots: %s)\n", out, out, sum.plots_why);
        else printf("report: %s/summary.md, %s/report.html, %d plot files in %s/plots\n", out, out, sum.plots_drawn, out);
        if (sum.verdicts) printf("%s", sum.verdicts);
        fflush(stdout);
    }
    free(sum.verdicts);
    lnl_study_config_free(&c);
    if (code > 128) {
        fprintf(stderr, "lnlab study: %s\n", e.msg);
        return code;
    }
    if (code) lnl_die(code, "%s", e.msg);
    return 0;
}
