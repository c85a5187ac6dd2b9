/* lnlab bench: training throughput of lnlab beside PyTorch on the same models, the same batch and
 * the same threads; what docs/PERFORMANCE.md reports. Each measurement runs in its own process
 * (lnlab bench --one, or bench/torch_train.py), so that peak memory and thread settings are its own.
 * Speed only: no numerics are checked here (tests/ does that). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/load.h"
#include "../kernels/kernels.h"
#include "../model/model.h"
#include "../train/optim.h"
#include "../train/peak.h"
#include "flags.h"

#ifdef LNL_HAVE_BLAS
#include <cblas.h>
#endif

extern char **environ;

/* The benchmark models: sizes, batch, vocabulary and context length. tiny and gpt2 have GPT-2's
 * vocabulary and context; s64 and s128 are the study's shapes (byte vocabulary, context = T). */
typedef struct {
    const char *name;
    int L, H, C, T, B, V, P;
} BenchModel;
static const BenchModel bench_models[] = {
    {"tiny", 6, 6, 384, 256, 8, 50257, 1024},
    {"gpt2", 12, 12, 768, 256, 4, 50257, 1024},
    {"s64", 8, 4, 64, 64, 16, 257, 64},
    {"s128", 8, 4, 128, 128, 16, 257, 128},
};
#define BENCH_MODEL_NAMES "tiny, gpt2, s64, s128"
#define BENCH_MAX_REPEAT 9 /* lnlab bench --repeat at most */
#define BENCH_SGEMM_N 2048  /* the SGEMM peak: n^3, best of 5 (peak.h) */

/* The optimizer settings of a step, as lnlab train's defaults (and the PyTorch script's). */
#define BENCH_LR 6e-4f
static const LnlAdamW bench_adam = {0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, lnl_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* CPU seconds used by this process so far (all threads). */
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * ru.ru_stime.tv_usec;
}

static double peak_rss_bytes(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss * 1024.0;
}

/* ------------------------------------------------------------------ one measurement, in process */

static int run_one(const BenchModel *bm, const char *preset, int threads, int warmup, int steps, int sgemm, int adapt) {
    lnl_kernels_set_threads(threads);
    LnlConfig c;
    LnlErr e;
    lnl_config_default(&c);
    c.n_layer = bm->L;
    c.n_head = bm->H;
    c.n_embd = bm->C;
    c.n_positions = bm->P;
    c.vocab_size = bm->V;
    if (lnl_config_preset(&c, preset, &e)) lnl_die(2, "%s", e.msg);
    LnlModel m;
    if (lnl_model_create(&m, &c, &e)) lnl_die(1, "%s", e.msg);
    lnl_model_init_weights(&m, 1);
    const int B = bm->B, T = bm->T, N = B * T;
    if (lnl_model_alloc_acts(&m, B, T, &e)) lnl_die(1, "%s", e.msg);
    LnlOptState opt;
    lnl_opt_init(&opt, &m);
    int32_t *in = lnl_malloc((size_t)N * sizeof(int32_t)), *tg = lnl_malloc((size_t)N * sizeof(int32_t));
    LnlRng rng;
    lnl_rng_seed(&rng, 1);
    for (int i = 0; i < N; i++) {
        in[i] = (int32_t)lnl_rng_below(&rng, (uint64_t)bm->V);
        tg[i] = (int32_t)lnl_rng_below(&rng, (uint64_t)bm->V);
    }
    double *ms = lnl_calloc((size_t)steps, sizeof(double)), *fw = lnl_calloc((size_t)steps, sizeof(double));
    double *bw = lnl_calloc((size_t)steps, sizeof(double)), *op = lnl_calloc((size_t)steps, sizeof(double));
    double *cpu = lnl_calloc((size_t)steps, sizeof(double));
    int *used = lnl_calloc((size_t)steps, sizeof(int));
    float loss_first = 0, loss_last = 0;
    lnl_kernels_adapt_begin(adapt); /* as lnlab train does (--adapt-threads) */
    for (int s = 0; s < warmup + steps; s++) {
        if (s >= warmup) used[s - warmup] = lnl_kernels_threads();
        double t0 = lnl_now(), c0 = cpu_seconds();
        lnl_model_zero_grad(&m);
        float loss = lnl_model_forward(&m, in, tg, B, T);
        double t1 = lnl_now();
        lnl_model_backward(&m);
        double t2 = lnl_now();
        lnl_opt_step(&opt, &m, &bench_adam, BENCH_LR);
        double t3 = lnl_now();
        if (s == 0) loss_first = loss;
        loss_last = loss;
        if (s >= warmup) {
            int k = s - warmup;
            ms[k] = (t3 - t0) * 1e3;
            fw[k] = (t1 - t0) * 1e3;
            bw[k] = (t2 - t1) * 1e3;
            op[k] = (t3 - t2) * 1e3;
            cpu[k] = (cpu_seconds() - c0) * 1e3;
        }
        lnl_kernels_adapt();
    }
    lnl_kernels_adapt_end();
    double rss = peak_rss_bytes();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "impl", "lnlab");
    cJSON_AddStringToObject(o, "model", bm->name);
    cJSON_AddStringToObject(o, "preset", preset);
    cJSON_AddNumberToObject(o, "threads", threads);
    cJSON_AddNumberToObject(o, "batch", B);
    cJSON_AddNumberToObject(o, "seq", T);
    cJSON_AddNumberToObject(o, "params", (double)m.num_params);
    cJSON *all = cJSON_AddArrayToObject(o, "ms_all");
    for (int k = 0; k < steps; k++) cJSON_AddItemToArray(all, cJSON_CreateNumber(ms[k]));
    cJSON *cpus = cJSON_AddArrayToObject(o, "cpu_ms_all"); /* CPU time of all threads, per step */
    for (int k = 0; k < steps; k++) cJSON_AddItemToArray(cpus, cJSON_CreateNumber(cpu[k]));
    cJSON_AddBoolToObject(o, "adapt_threads", adapt);
    cJSON *th = cJSON_AddArrayToObject(o, "threads_all"); /* threads in use, per step */
    for (int k = 0; k < steps; k++) cJSON_AddItemToArray(th, cJSON_CreateNumber(used[k]));
    double sum = 0;
    for (int k = 0; k < steps; k++) sum += ms[k];
    cJSON_AddNumberToObject(o, "ms_mean", sum / steps);
    double med = median(ms, steps);
    double gflop = lnl_model_step_flops(&m.cfg, B, T) / 1e9;
    cJSON_AddNumberToObject(o, "ms", med);
    cJSON_AddNumberToObject(o, "forward_ms", median(fw, steps));
    cJSON_AddNumberToObject(o, "backward_ms", median(bw, steps));
    cJSON_AddNumberToObject(o, "optimizer_ms", median(op, steps));
    cJSON_AddNumberToObject(o, "tokens_per_s", N / (med / 1e3));
    cJSON_AddNumberToObject(o, "gflop_per_step", gflop);
    cJSON_AddNumberToObject(o, "gflops", gflop / (med / 1e3));
    cJSON_AddNumberToObject(o, "peak_rss", rss);
    cJSON_AddNumberToObject(o, "loss_first", loss_first);
    cJSON_AddNumberToObject(o, "loss_last", loss_last);
    cJSON_AddStringToObject(o, "blas", lnl_kernels_blas_name());
    lnl_opt_free(&opt);
    lnl_model_free(&m);
    free(in), free(tg), free(ms), free(fw), free(bw), free(op), free(cpu), free(used);
    cJSON_AddBoolToObject(o, "bf16", lnl_kernels_bf16());
    if (sgemm) {
        double pool = lnl_sgemm_gflops(BENCH_SGEMM_N, 5, 0), own = 0;
#ifdef LNL_HAVE_BLAS
        openblas_set_num_threads(threads);
        own = lnl_sgemm_gflops(BENCH_SGEMM_N, 5, 1);
        openblas_set_num_threads(1);
#endif
        cJSON_AddNumberToObject(o, "sgemm_gflops_pool", pool);
        cJSON_AddNumberToObject(o, "sgemm_gflops_blas_threads", own);
        cJSON_AddNumberToObject(o, "sgemm_peak_gflops", pool > own ? pool : own);
    }
    char *txt = cJSON_PrintUnformatted(o);
    printf("%s\n", txt);
    fflush(stdout);
    free(txt);
    cJSON_Delete(o);
    return 0;
}

/* ------------------------------------------------------------------ the driver */

/* environ with the given NAME=VALUE entries set (replacing) and the names in unset removed. */
static char **env_with(const char *const *set, int nset, const char *const *unset, int nunset) {
    int n = 0;
    while (environ[n]) n++;
    char **env = lnl_calloc((size_t)(n + nset + 1), sizeof(char *));
    int k = 0;
    for (int i = 0; i < n; i++) {
        int drop = 0;
        for (int j = 0; j < nset + nunset && !drop; j++) {
            const char *s = j < nset ? set[j] : unset[j - nset];
            size_t len = j < nset ? (size_t)(strchr(s, '=') - s) : strlen(s);
            drop = strncmp(environ[i], s, len) == 0 && environ[i][len] == '=';
        }
        if (!drop) env[k++] = environ[i];
    }
    for (int j = 0; j < nset; j++) env[k++] = (char *)set[j];
    env[k] = NULL;
    return env;
}

/* Runs argv with env, returns its stdout's last line parsed as JSON (NULL on failure) and the
 * share of the machine's CPU time that other processes used meanwhile (0..1). */
static cJSON *run_child(char **argv, char **env, int threads, double *other_load) {
    int fd[2];
    if (pipe(fd)) lnl_die(1, "bench: pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    int ncpu;
    double b0 = lnl_load_busy_seconds(0, &ncpu), w0 = lnl_now();
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    if (rc) {
        close(fd[0]);
        fprintf(stderr, "lnlab bench: cannot run %s: %s\n", argv[0], strerror(rc));
        return NULL;
    }
    LnlBuf out = {0};
    char buf[4096];
    ssize_t got;
    while ((got = read(fd[0], buf, sizeof buf)) > 0) lnl_buf_append(&out, buf, (size_t)got);
    close(fd[0]);
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
    }
    double b1 = lnl_load_busy_seconds(0, &ncpu), wall = lnl_now() - w0;
    double child_cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
                       ru.ru_stime.tv_usec * 1e-6;
    /* other processes' CPU time beyond the cores this run left idle, per core of this run: the
     * share of its cores it lost to others */
    if (b0 < 0 || b1 < 0) wall = 0;
    double others = b1 - b0 - child_cpu, spare = (double)(ncpu - threads) * wall;
    *other_load = wall > 0 && threads > 0 ? (others - spare) / ((double)threads * wall) : 0;
    if (*other_load < 0) *other_load = 0;
    if (*other_load > 1) *other_load = 1;
    cJSON *j = NULL;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && out.len) {
        lnl_buf_append(&out, "", 1);
        char *last = out.data, *p;
        while ((p = strchr(last, '\n')) && p[1]) last = p + 1;
        j = cJSON_Parse(last);
    }
    if (!j) fprintf(stderr, "lnlab bench: %s failed (status %d)\n", argv[0], status);
    lnl_buf_free(&out);
    return j;
}

static double jnum(const cJSON *o, const char *k);

static int cmp_run_ms(const void *a, const void *b) {
    double x = jnum(*(cJSON *const *)a, "ms"), y = jnum(*(cJSON *const *)b, "ms");
    return lnl_cmp_double(&x, &y);
}

/* Of n runs (NULL where one failed), the one with the median step time (the lower of the two
 * middle ones for even n), or NULL if none ran. */
static cJSON *median_run(cJSON *const *runs, int n) {
    cJSON *ok[BENCH_MAX_REPEAT];
    int m = 0;
    for (int i = 0; i < n; i++)
        if (runs[i]) ok[m++] = runs[i];
    qsort(ok, (size_t)m, sizeof ok[0], cmp_run_ms);
    return m ? ok[(m - 1) / 2] : NULL;
}

static double jnum(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* One `lnlab bench --one` child of bm / preset at nt threads (OMP_NUM_THREADS=nt, the bf16 mode as
 * asked), its JSON line or NULL; *load as run_child's. */
static cJSON *run_lnlab(const char *self, const BenchModel *bm, const char *preset, int nt, long long warmup,
                        long long steps, long long sgemm, int adapt, int bf16, double *load) {
    char ths[32], ws[32], ss[32], sg[32], omp[48];
    snprintf(ths, sizeof ths, "%d", nt);
    snprintf(ws, sizeof ws, "%lld", warmup);
    snprintf(ss, sizeof ss, "%lld", steps);
    snprintf(sg, sizeof sg, "%lld", sgemm);
    snprintf(omp, sizeof omp, "OMP_NUM_THREADS=%d", nt);
    char *la[] = {(char *)self, "bench", "--one", "--model", (char *)bm->name, "--preset", (char *)preset,
                  "--threads", ths, "--warmup", ws, "--steps", ss, "--sgemm", sg,
                  adapt ? "--adapt-threads=true" : "--adapt-threads=false", NULL};
    const char *lset[] = {omp, bf16 ? "LNLAB_BF16=1" : "LNLAB_BF16=0"};
    char **lenv = env_with(lset, 2, NULL, 0);
    cJSON *j = run_child(la, lenv, nt, load);
    free(lenv);
    return j;
}

/* A busy process beside the measurement: a child that only spins, as any other job on the machine
 * would. It dies with bench (PR_SET_PDEATHSIG), so an interrupted bench leaves no spinner behind. */
static pid_t spinner_start(void) {
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) lnl_die(1, "bench: fork: %s", strerror(errno));
    if (pid > 0) return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(0);
    for (volatile unsigned long n = 0;; n++) {
    }
}

static void spinner_stop(pid_t pid) {
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

/* lnlab's median step time in the table's row for model / preset / threads (NAN if none). */
static double alone_ms(cJSON *results, const char *model, const char *preset, int threads) {
    cJSON *r;
    cJSON_ArrayForEach(r, results) {
        cJSON *l = cJSON_GetObjectItemCaseSensitive(r, "lnlab");
        if (l && jnum(r, "threads") == threads &&
            strcmp(cJSON_GetObjectItemCaseSensitive(r, "model")->valuestring, model) == 0 &&
            strcmp(cJSON_GetObjectItemCaseSensitive(r, "preset")->valuestring, preset) == 0)
            return jnum(l, "ms");
    }
    return NAN;
}

/* --busy: lnlab beside one busy process at nt threads, the count fixed and following the load;
 * rows with "beside_busy": true added to results. What to hold: at least the one-thread step time
 * alone (docs/PERFORMANCE.md, "Waiting threads"). */
static void busy_case(cJSON *results, const char *self, const BenchModel *bm, const char *preset, int nt,
                      long long warmup, long long steps, long long repeat, int bf16) {
    double ms_alone = alone_ms(results, bm->name, preset, nt), ms_one = alone_ms(results, bm->name, preset, 1);
    printf("\nbeside one busy process (a spinner started and stopped by lnlab bench): %s %s, at most %d thread%s, "
           "%lld timed steps\n",
           bm->name, preset, nt, nt == 1 ? "" : "s", steps);
    printf("x alone: lnlab's median step alone (the table above) / beside the spinner, at %d and at 1 thread; "
           "mean ms: all timed steps, the adaptation's first second included\n", nt);
    printf("%-29s | %9s %9s %9s | %7s %7s | %-14s | %5s\n", "thread count", "tok/s", "ms/step", "mean ms", "x alone",
           "x 1 thr", "steps@threads", "load");
    fflush(stdout);
    pid_t sp = spinner_start();
    for (int c = 0; c < 2; c++) {
        cJSON *runs[BENCH_MAX_REPEAT] = {NULL};
        double load, worst = 0;
        for (int rep = 0; rep < repeat; rep++) {
            runs[rep] = run_lnlab(self, bm, preset, nt, warmup, steps, 0, c, bf16, &load);
            if (load > worst) worst = load;
        }
        cJSON *lj = median_run(runs, (int)repeat);
        for (int rep = 0; rep < repeat; rep++)
            if (runs[rep] != lj) cJSON_Delete(runs[rep]);
        double ms = lj ? jnum(lj, "ms") : NAN;
        /* steps per thread count, e.g. "5@2 55@1" */
        char used[64] = "";
        const cJSON *th = lj ? cJSON_GetObjectItemCaseSensitive(lj, "threads_all") : NULL;
        for (int t = nt; t >= 1 && th; t--) {
            int k = 0;
            const cJSON *x;
            cJSON_ArrayForEach(x, th) k += cJSON_IsNumber(x) && (int)x->valuedouble == t;
            size_t len = strlen(used);
            if (k) snprintf(used + len, sizeof used - len, "%s%d@%d", len ? " " : "", k, t);
        }
        printf("%-29s | %9.0f %9.1f %9.1f | %7.2f %7.2f | %-14s | %4.0f%%\n",
               c ? "follows the load (default)" : "fixed (--adapt-threads=false)", lj ? jnum(lj, "tokens_per_s") : NAN,
               ms, lj ? jnum(lj, "ms_mean") : NAN, ms_alone / ms, ms_one / ms, used, 100.0 * worst);
        fflush(stdout);
        cJSON *row = cJSON_CreateObject();
        if (lj) cJSON_AddItemToObject(row, "lnlab", lj);
        cJSON_AddNumberToObject(row, "other_load", worst);
        cJSON_AddStringToObject(row, "model", bm->name);
        cJSON_AddStringToObject(row, "preset", preset);
        cJSON_AddNumberToObject(row, "threads", nt);
        cJSON_AddBoolToObject(row, "beside_busy", 1);
        cJSON_AddItemToArray(results, row);
    }
    spinner_stop(sp);
}

static const char *torch_script(const char *given) {
    struct stat st;
    if (given) return given;
    if (stat("bench/torch_train.py", &st) == 0) return "bench/torch_train.py";
    char *dir = lnl_exe_dir();
    char *p = lnl_path_join(dir, "bench/torch_train.py");
    free(dir);
    return p;
}

int cmd_bench(int argc, char **argv) {
    LnlStrList models = {0}, presets = {0}, threads = {0}, torch = {0};
    long long warmup = 2, steps = 5, sgemm = 1, repeat = 1, busy = 0, busy_steps = 60;
    int one = 0, bf16 = 0, default_all = 0, adapt = 0;
    const char *json_path = NULL, *python = "/usr/bin/python3", *script = NULL;
    LnlFlag flags[] = {
        {"--model", LNL_FLAG_LIST, &models, "models to run: tiny (L6 H6 C384 B8) and gpt2 (124M, B4), both T 256 and V 50257; s64 (L8 H4 C64 T64) and s128 (L8 H4 C128 T128), the study's shapes, both B16 and V 257 (default: all four)", 1, 0, NULL, 0},
        {"--preset", LNL_FLAG_LIST, &presets, "placements to run, pre and/or peri (default: pre peri)", 1, 0, NULL, 0},
        {"--threads", LNL_FLAG_LIST, &threads, "thread counts to run (default: 1 2)", 1, 0, NULL, 0},
        {"--warmup", LNL_FLAG_INT, &warmup, "untimed steps first", 0, 1000, NULL, 0},
        {"--steps", LNL_FLAG_INT, &steps, "timed steps; the median is reported", 1, 100000, NULL, 0},
        {"--repeat", LNL_FLAG_INT, &repeat, "lnlab runs per case, the thread counts interleaved; the run with the median step time is reported", 1, BENCH_MAX_REPEAT, NULL, 0},
        {"--torch", LNL_FLAG_LIST, &torch, "PyTorch runs beside each lnlab run: tuned, default, none (default: tuned default)", 1, 0, NULL, 0},
        {"--python", LNL_FLAG_STR, &python, "Python with PyTorch", 1, 0, NULL, 0},
        {"--torch-script", LNL_FLAG_STR, &script, "the PyTorch model (default: bench/torch_train.py)", 1, 0, NULL, 0},
        {"--sgemm", LNL_FLAG_INT, &sgemm, "measure the SGEMM peak (2048^3) at each thread count", 0, 1, NULL, 0},
        {"--torch-default-all", LNL_FLAG_BOOL, &default_all, "run PyTorch with its defaults at every thread count, not only the largest", 1, 0, NULL, 0},
        {"--bf16", LNL_FLAG_BOOL, &bf16, "lnlab in its bf16 mode (LNLAB_BF16=1: bf16 products, fp32 master weights)", 1, 0, NULL, 0},
        {"--json", LNL_FLAG_STR, &json_path, "also write every measurement to this JSON file", 1, 0, NULL, 0},
        {"--busy", LNL_FLAG_INT, &busy, "1: then time lnlab on the first model and preset at the largest thread count beside one busy process (a spinner bench starts and stops), with the thread count fixed and following the load (lnlab train's default)", 0, 1, NULL, 0},
        {"--busy-steps", LNL_FLAG_INT, &busy_steps, "timed steps of each run beside the busy process (the adaptive count needs about a second to follow the load)", 1, 100000, NULL, 0},
        {"--adapt-threads", LNL_FLAG_BOOL, &adapt, "with --one: the thread count follows the machine's load between steps, as lnlab train's", 1, 0, NULL, 0},
        {"--one", LNL_FLAG_BOOL, &one, "run one model/preset/threads case in this process, print one JSON line", 1, 0, NULL, 0},
    };
    int nflags = (int)(sizeof flags / sizeof flags[0]), npos;
    lnl_flags_parse_or_exit("bench", "[flags]", flags, nflags, argc, argv, NULL, 0, &npos);
    static const char *def_models[] = {"tiny", "gpt2", "s64", "s128"}, *def_presets[] = {"pre", "peri"}, *def_threads[] = {"1", "2"},
                      *def_torch[] = {"tuned", "default"};
    if (!models.n) models = (LnlStrList){def_models, 4};
    if (!presets.n) presets = (LnlStrList){def_presets, 2};
    if (!threads.n) threads = (LnlStrList){def_threads, 2};
    if (!torch.n) torch = (LnlStrList){def_torch, 2};
    const BenchModel *bms[8];
    int nbm = 0;
    for (int i = 0; i < models.n; i++) {
        const BenchModel *f = NULL;
        for (size_t k = 0; k < sizeof bench_models / sizeof bench_models[0]; k++)
            if (strcmp(models.items[i], bench_models[k].name) == 0) f = &bench_models[k];
        if (!f) lnl_die(2, "bench: --model: '%s' is not one of " BENCH_MODEL_NAMES, models.items[i]);
        if (nbm < 8) bms[nbm++] = f;
    }
    for (int i = 0; i < presets.n; i++)
        if (strcmp(presets.items[i], "pre") && strcmp(presets.items[i], "peri"))
            lnl_die(2, "bench: --preset: '%s' is not one of pre, peri (the PyTorch side has these two)",
                    presets.items[i]);
    int nth[8], nnth = 0;
    for (int i = 0; i < threads.n && nnth < 8; i++) {
        long long v;
        LnlErr e;
        if (lnl_parse_int(threads.items[i], 1, 1024, &v, "--threads", &e)) lnl_die(2, "bench: %s", e.msg);
        nth[nnth++] = (int)v;
    }
    int max_threads = 0;
    for (int i = 0; i < nnth; i++) max_threads = nth[i] > max_threads ? nth[i] : max_threads;
    int do_tuned = 0, do_default = 0;
    for (int i = 0; i < torch.n; i++) {
        if (strcmp(torch.items[i], "tuned") == 0) do_tuned = 1;
        else if (strcmp(torch.items[i], "default") == 0) do_default = 1;
        else if (strcmp(torch.items[i], "none")) lnl_die(2, "bench: --torch: '%s' is not tuned, default or none", torch.items[i]);
    }
    if (one) {
        if (nbm != 1 || presets.n != 1 || nnth != 1) lnl_die(2, "bench --one: give exactly one --model, --preset and --threads");
        if (bf16 && lnl_kernels_set_bf16(1)) lnl_die(2, "bench --one --bf16: this CPU or build has no AVX512-BF16");
        return run_one(bms[0], presets.items[0], nth[0], (int)warmup, (int)steps, (int)sgemm, adapt);
    }

    script = torch_script(script);
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) lnl_die(1, "bench: cannot find this executable (/proc/self/exe)");
    self[sl] = 0;
    const char *orig_core = lnl_kernels_blas_env_orig();
    printf("lnlab bench: %d warm-up + %lld timed steps per run, median reported", (int)warmup, steps);
    if (repeat > 1) printf("; %lld lnlab runs per case, thread counts interleaved, the median run reported", repeat);
    printf("; BLAS: %s\n", lnl_kernels_blas_name());
    if (bf16) printf("lnlab in its bf16 mode (LNLAB_BF16=1): bf16 products, fp32 accumulation and master weights\n");
    printf("PyTorch tuned:   OPENBLAS_CORETYPE=SkylakeX MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000\n");
    printf("PyTorch default: the environment as given (OPENBLAS_CORETYPE=%s)%s\n", orig_core ? orig_core : "unset",
           default_all ? "" : ", at the largest thread count only");
    printf("both: OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = torch.set_num_threads = the thread count\n");
    printf("x tun, x def: PyTorch's step time / lnlab's; load: share of this run's cores taken by other processes\n\n");
    printf("%-5s %-5s %3s | %9s %9s %7s %6s %7s | %9s %7s %9s %7s | %6s %6s | %5s\n", "model", "prst", "thr", "tok/s",
           "ms/step", "GFLOP/s", "%peak", "RSS MB", "torch-tun", "RSS MB", "torch-def", "RSS MB", "x tun", "x def",
           "load");
    fflush(stdout);
    cJSON *results = cJSON_CreateArray();
    char ws[32], ss[32], ths[32], omp[48], obl[48];
    snprintf(ws, sizeof ws, "%lld", warmup);
    snprintf(ss, sizeof ss, "%lld", steps);
    for (int mi = 0; mi < nbm; mi++)
        for (int pi = 0; pi < presets.n; pi++) {
            const BenchModel *bm = bms[mi];
            const char *preset = presets.items[pi];
            /* lnlab first, at every thread count back to back (and, with --repeat, interleaved),
             * so that the thread-scaling ratio compares runs minutes apart at most, not runs on
             * either side of the PyTorch runs */
            cJSON *lruns[8][BENCH_MAX_REPEAT] = {{NULL}};
            double lload[8] = {0};
            for (int rep = 0; rep < repeat; rep++)
                for (int ti = 0; ti < nnth; ti++) {
                    double load;
                    lruns[ti][rep] = run_lnlab(self, bm, preset, nth[ti], warmup, steps, sgemm, 0, bf16, &load);
                    if (load > lload[ti]) lload[ti] = load;
                }
            for (int ti = 0; ti < nnth; ti++) {
                snprintf(ths, sizeof ths, "%d", nth[ti]);
                snprintf(omp, sizeof omp, "OMP_NUM_THREADS=%d", nth[ti]);
                snprintf(obl, sizeof obl, "OPENBLAS_NUM_THREADS=%d", nth[ti]);
                cJSON *row = cJSON_CreateObject();
                double load, worst_load = lload[ti];
                cJSON *lj = median_run(lruns[ti], (int)repeat);
                if (lj) {
                    /* the SGEMM peak is the machine's, not the run's: the best of all runs at this
                     * thread count (one disturbed measurement must not make the peak look low) */
                    cJSON *all = cJSON_CreateArray(), *peaks = cJSON_CreateArray();
                    double best_peak = jnum(lj, "sgemm_peak_gflops");
                    for (int rep = 0; rep < repeat; rep++) {
                        if (!lruns[ti][rep]) continue;
                        double pk = jnum(lruns[ti][rep], "sgemm_peak_gflops");
                        cJSON_AddItemToArray(all, cJSON_CreateNumber(jnum(lruns[ti][rep], "ms")));
                        cJSON_AddItemToArray(peaks, cJSON_CreateNumber(pk));
                        if (isnan(best_peak) || pk > best_peak) best_peak = pk;
                    }
                    cJSON_AddItemToObject(lj, "ms_runs", all);
                    cJSON_AddItemToObject(lj, "sgemm_peak_gflops_runs", peaks);
                    if (!isnan(best_peak)) cJSON_ReplaceItemInObject(lj, "sgemm_peak_gflops", cJSON_CreateNumber(best_peak));
                    cJSON_AddItemToObject(row, "lnlab", lj);
                }
                for (int rep = 0; rep < repeat; rep++)
                    if (lruns[ti][rep] != lj) cJSON_Delete(lruns[ti][rep]);
                /* PyTorch, same model, batch, threads */
                char Ls[16], Hs[16], Cs[16], Ts[16], Bs[16], Ps[16];
                snprintf(Ls, sizeof Ls, "%d", bm->L), snprintf(Hs, sizeof Hs, "%d", bm->H);
                snprintf(Cs, sizeof Cs, "%d", bm->C), snprintf(Ts, sizeof Ts, "%d", bm->T);
                snprintf(Bs, sizeof Bs, "%d", bm->B), snprintf(Ps, sizeof Ps, "%d", bm->P);
                char Vs[16];
                snprintf(Vs, sizeof Vs, "%d", bm->V);
                char *ta[] = {(char *)python, (char *)script, "--layers", Ls, "--heads", Hs, "--dim", Cs, "--seq", Ts,
                              "--batch", Bs, "--positions", Ps, "--vocab", Vs, "--preset", (char *)preset,
                              "--threads", ths, "--warmup", ws, "--steps", ss, NULL};
                cJSON *tj[2] = {NULL, NULL};
                for (int k = 0; k < 2; k++) {
                    if (!(k == 0 ? do_tuned : do_default)) continue;
                    if (k == 1 && !default_all && nth[ti] != max_threads) continue;
                    char core[96];
                    snprintf(core, sizeof core, "OPENBLAS_CORETYPE=%s", k == 0 ? "SkylakeX" : (orig_core ? orig_core : ""));
                    const char *tset[] = {omp, obl, core, "MALLOC_MMAP_MAX_=0", "MALLOC_TRIM_THRESHOLD_=100000000000"};
                    const char *tunset[] = {"LNLAB_BLAS_REEXEC", "OPENBLAS_CORETYPE", "MALLOC_MMAP_MAX_",
                                            "MALLOC_TRIM_THRESHOLD_"};
                    char **tenv = k == 0 ? env_with(tset, 5, tunset, 1)
                                         : env_with(tset, orig_core ? 3 : 2, tunset, orig_core ? 1 : 2);
                    tj[k] = run_child(ta, tenv, nth[ti], &load);
                    free(tenv);
                    if (load > worst_load) worst_load = load;
                    if (tj[k]) cJSON_AddItemToObject(row, k == 0 ? "torch_tuned" : "torch_default", tj[k]);
                }
                cJSON_AddNumberToObject(row, "other_load", worst_load);
                double lms = lj ? jnum(lj, "ms") : NAN, peak = lj ? jnum(lj, "sgemm_peak_gflops") : NAN;
                double tms = tj[0] ? jnum(tj[0], "ms") : NAN, dms = tj[1] ? jnum(tj[1], "ms") : NAN;
                printf("%-5s %-5s %3d | %9.0f %9.1f %7.1f %5.0f%% %7.0f | %9.1f %7.0f %9.1f %7.0f | %6.2f %6.2f | %4.0f%%%s\n",
                       bm->name, preset, nth[ti], lj ? jnum(lj, "tokens_per_s") : NAN, lms,
                       lj ? jnum(lj, "gflops") : NAN, lj ? 100.0 * jnum(lj, "gflops") / peak : NAN,
                       lj ? jnum(lj, "peak_rss") / 1048576.0 : NAN, tms, tj[0] ? jnum(tj[0], "peak_rss") / 1048576.0 : NAN,
                       dms, tj[1] ? jnum(tj[1], "peak_rss") / 1048576.0 : NAN, tms / lms, dms / lms,
                       100.0 * worst_load, worst_load > 0.1 ? " (busy machine)" : "");
                fflush(stdout);
                cJSON_AddStringToObject(row, "model", bm->name);
                cJSON_AddStringToObject(row, "preset", preset);
                cJSON_AddNumberToObject(row, "threads", nth[ti]);
                cJSON_AddItemToArray(results, row);
            }
        }
    /* scaling: the same model and preset on more threads */
    printf("\nthread scaling (lnlab step time at 1 thread / at N threads; SGEMM peak GFLOP/s at N threads)\n");
    int nr = cJSON_GetArraySize(results);
    for (int i = 0; i < nr; i++) {
        cJSON *r = cJSON_GetArrayItem(results, i), *l = cJSON_GetObjectItemCaseSensitive(r, "lnlab");
        if (!l) continue;
        for (int j = 0; j < nr; j++) {
            cJSON *q = cJSON_GetArrayItem(results, j), *ql = cJSON_GetObjectItemCaseSensitive(q, "lnlab");
            if (!ql || jnum(q, "threads") != 1 || jnum(r, "threads") == 1) continue;
            if (strcmp(cJSON_GetObjectItemCaseSensitive(q, "model")->valuestring,
                       cJSON_GetObjectItemCaseSensitive(r, "model")->valuestring) ||
                strcmp(cJSON_GetObjectItemCaseSensitive(q, "preset")->valuestring,
                       cJSON_GetObjectItemCaseSensitive(r, "preset")->valuestring))
                continue;
            printf("  %-5s %-5s %d threads: %.2fx (SGEMM peak %.0f at 1 thread, %.0f at %d)\n",
                   cJSON_GetObjectItemCaseSensitive(r, "model")->valuestring,
                   cJSON_GetObjectItemCaseSensitive(r, "preset")->valuestring, (int)jnum(r, "threads"),
                   jnum(ql, "ms") / jnum(l, "ms"), jnum(ql, "sgemm_peak_gflops"), jnum(l, "sgemm_peak_gflops"),
                   (int)jnum(r, "threads"));
        }
    }
    if (busy) { /* on the study's shape where it was run (the runs a shared machine slows most), else the first */
        const BenchModel *bb = bms[0];
        for (int i = 0; i < nbm; i++)
            if (strcmp(bms[i]->name, "s64") == 0) bb = bms[i];
        busy_case(results, self, bb, presets.items[0], max_threads, warmup, busy_steps, repeat, bf16);
    }
    if (json_path) {
        char *txt = cJSON_Print(results);
        LnlErr e;
        if (lnl_write_file_atomic(json_path, txt, strlen(txt), &e)) lnl_die(1, "%s", e.msg);
        free(txt);
    }
    cJSON_Delete(results);
    return 0;
}
