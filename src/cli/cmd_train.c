/* lnlab train: build (or load) a model and train it on prepared token data. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/version.h"
#include "../data/dataset.h"
#include "../data/tokenizer.h"
#include "../io/model_io.h"
#include "../kernels/kernels.h"
#include "../train/memcheck.h"
#include "../train/peak.h"
#include "../train/settings.h"
#include "../train/signals.h"
#include "../train/train.h"
#include "flags.h"
#include "model_flags.h"
#include "train_resume.h"
#include "monitor_flags.h"

typedef struct {
    LnlModelFlags *mf;
    LnlFlag *flags;
    int B, T; /* for the memory check */
} Hook;

/* Prints msg as lnl_die does and exits 1. If every rank is stopping on the same failure
 * (d->failed_together), it leaves MPI first (MPI_Finalize, which waits for all ranks), so each
 * rank's message is out before any rank exits and the launcher does not kill the slower ones; on
 * any other error it exits at once (the other ranks may be inside a collective). */
static void dist_die(LnlDist *d, const char *msg) {
    if (!d || !d->mpi || !d->failed_together) lnl_die(1, "%s", msg);
    lnl_print_error("%s", msg);
    fflush(stderr);
    lnl_dist_free(d);
    exit(1);
}

static int override_hook(LnlConfig *c, void *ctx, LnlErr *e) {
    Hook *h = ctx;
    if (lnl_model_flags_override(h->mf, h->flags, c, e)) return -1;
    return lnl_mem_check(c, h->B, h->T, e);
}

#define SAMPLE_TOKENS 64 /* --sample-tokens' default */

/* --sample-every's tokenizer: the one the data's meta.json names, else the one whose vocabulary is
 * the model's; opened now, so that a missing GPT-2 vocabulary stops the run before it starts. */
static LnlTokenizer *open_sample_tokenizer(const char *data, int vocab_size) {
    LnlErr e;
    LnlDataMeta dm;
    if (lnl_data_meta_read(data, &dm, &e)) lnl_die(1, "--data: %s", e.msg);
    char kind[sizeof dm.tokenizer];
    snprintf(kind, sizeof kind, "%s", dm.present && dm.tokenizer[0] ? dm.tokenizer : "");
    lnl_data_meta_free(&dm);
    if (!kind[0] && lnl_tok_kind_for_vocab(vocab_size))
        snprintf(kind, sizeof kind, "%s", lnl_tok_kind_for_vocab(vocab_size));
    if (!kind[0])
        lnl_die(1, "--sample-every: %s has no meta.json naming its tokenizer, and the model's vocabulary of %d "
                   "tokens is neither gpt2's (%d) nor byte's (%d)",
                data, vocab_size, LNL_GPT2_VOCAB, LNL_BYTE_VOCAB);
    if (strcmp(kind, "gpt2") != 0 && strcmp(kind, "byte") != 0)
        lnl_die(1, "--sample-every: the meta.json of %s names tokenizer '%s'; samples decode gpt2 or byte only", data,
                kind);
    char *vocab_dir = lnl_tok_default_vocab_dir();
    LnlTokenizer *tok;
    if (lnl_tok_open(&tok, kind, vocab_dir, &e))
        lnl_die(1, "--sample-every: %s (lnlab train: LNLAB_VOCAB only; its --vocab is the vocabulary size)",
                e.msg);
    free(vocab_dir);
    if (lnl_tok_vocab_size(tok) > vocab_size)
        lnl_die(1, "--sample-every: the %s tokenizer of %s has %d tokens but the model's vocabulary is %d", kind, data,
                lnl_tok_vocab_size(tok), vocab_size);
    return tok;
}

int cmd_train(int argc, char **argv) {
    LnlModelFlags mf;
    LnlTrainSettings ts; /* the training settings (train/settings.h): flags, config.json, resume */
    lnl_train_settings_default(&ts);
    const char *data = NULL, *out = NULL, *init_from = NULL;
    long long sample_every = 0, sample_tokens = SAMPLE_TOKENS;
    int quiet = 0, zero = 0, overwrite = 0, adapt_threads = 1;
    /* --help's order: the model's flags, the paths, the training settings, the console and the
     * process setup, the monitor's, resume's */
    enum { NPATHS = 3, NOWN = 6 };
    enum { NFLAGS = LNL_MODEL_NFLAGS + NPATHS + LNL_TRAIN_NSETTINGS + NOWN + LNL_MONITOR_NFLAGS + LNL_RESUME_NFLAGS };
    LnlFlag flags[NFLAGS];
    LnlMonitorFlags monf;
    LnlResumeFlags rf;
    lnl_model_flags_init(&mf, flags);
    LnlFlag paths[NPATHS] = {
        {"--data", LNL_FLAG_STR, &data, "prepared data directory (train.bin, val.bin) or one token shard", 1, 0, NULL, 0},
        {"--out", LNL_FLAG_STR, &out, "run directory (log.jsonl, config.json, model.safetensors)", 1, 0, NULL, 0},
        {"--init-from", LNL_FLAG_STR, &init_from, "start from this model file instead of a fresh init", 1, 0, NULL, 0},
    };
    LnlFlag own[NOWN] = {
        {"--quiet", LNL_FLAG_BOOL, &quiet, "no progress line (and no peak measurement for its MFU)", 1, 0, NULL, 0},
        {"--sample-every", LNL_FLAG_INT, &sample_every,
         "print a sample of the model to stderr every K steps: --sample-tokens tokens after end-of-text, "
         LNL_TRAIN_SAMPLE_SETTINGS ", decoded with the data's tokenizer (0 = never)",
         0, 1LL << 40, NULL, 0},
        {"--sample-tokens", LNL_FLAG_INT, &sample_tokens,
         "tokens per sample; unless given, at most the model's n_positions - 1", 1, 1 << 20, NULL, 0},
        {"--zero", LNL_FLAG_BOOL, &zero, "under mpirun: shard the AdamW moments over the processes (ZeRO-1)", 1, 0, NULL, 0},
        {"--adapt-threads", LNL_FLAG_BOOL, &adapt_threads,
         "use fewer threads while other processes take this run's CPUs, all of them again when they leave (the "
         "numbers are the same bits on any thread count); --adapt-threads=false keeps the count fixed",
         1, 0, NULL, 0},
        {"--overwrite", LNL_FLAG_BOOL, &overwrite, "replace a run already in --out (its files and checkpoints are deleted first)", 1, 0, NULL, 0},
    };
    LnlFlag *f = flags + LNL_MODEL_NFLAGS;
    memcpy(f, paths, sizeof paths);
    f += NPATHS;
    lnl_train_settings_flags(&ts, f);
    f += LNL_TRAIN_NSETTINGS;
    memcpy(f, own, sizeof own);
    f += NOWN;
    lnl_monitor_flags_init(&monf, f);
    lnl_resume_flags_init(&rf, f + LNL_MONITOR_NFLAGS);
    int nflags = NFLAGS, npos;
    lnl_flags_parse_or_exit("train", "--data DIR --out RUN [flags]  |  --resume RUN", flags, nflags, argc, argv, NULL,
                            0, &npos);
    cJSON *saved = NULL; /* RUN/config.json of a resumed run; owns the restored flag strings */
    if (rf.resume) {
        LnlErr re;
        if (lnl_resume_check_flags(rf.resume, flags, nflags, &re)) lnl_die(2, "%s", re.msg);
        if (lnl_resume_flags(rf.resume, flags, nflags, LNL_MODEL_NFLAGS, &saved, &re)) lnl_die(1, "%s", re.msg);
        out = rf.resume;
        /* a run recorded before --data-order existed read its batches in order */
        if (!cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(saved, "train"), "data_order"))
            ts.data_order = "sequential";
    }
    /* the products' arithmetic: the flag's, a resumed run's recorded one, else what LNLAB_BF16 chose
     * at startup; config.json records the one in effect */
    if (lnl_flags_find(flags, nflags, "--precision")->seen || rf.resume) {
        if (lnl_kernels_set_bf16(strcmp(ts.precision, "bf16") == 0))
            lnl_die(2, "--precision bf16: this CPU or build has no AVX512-BF16 (the products can only be fp32 here)");
    } else {
        ts.precision = lnl_kernels_bf16() ? "bf16" : "fp32";
    }
    if (!data) lnl_die(2, "train: --data is required (a directory made by lnlab prepare, or a token shard)");
    if (!out) lnl_die(2, "train: --out is required");

    LnlErr e;
    /* RUN/config.json stores absolute paths, so that --resume RUN reads the same files from any
     * working directory; a resumed run gets them back from there. */
    char *data_abs = NULL, *init_abs = NULL;
    if (!rf.resume) {
        if (lnl_path_absolute(data, &data_abs, &e)) lnl_die(1, "--data: %s", e.msg);
        if (init_from && lnl_path_absolute(init_from, &init_abs, &e)) lnl_die(1, "--init-from: %s", e.msg);
        data = data_abs;
        if (init_from) init_from = init_abs;
    } else if (data[0] != '/' && access(data, F_OK) != 0) {
        lnl_die(1, "%s/config.json: train.data '%s' is a relative path (recorded by an older lnlab) that does not "
                   "exist from this directory: resume from the directory the run was started in",
                out, data);
    }
    LnlDist dist; /* rank 0 of 1 unless an MPI launcher started this process (docs/DISTRIBUTED.md) */
    if (lnl_dist_init(&dist, &e)) lnl_die(1, "%s", e.msg);
    dist.zero = zero;
    if (dist.rank != 0) quiet = 1;
    LnlModel m;
    LnlFlag *vocab_flag = lnl_flags_find(flags, nflags, "--vocab");
    if (!vocab_flag->seen && !init_from) { /* the vocabulary `lnlab prepare` recorded, if any */
        LnlDataMeta dm;
        if (lnl_data_meta_read(data, &dm, &e)) lnl_die(1, "--data: %s", e.msg);
        if (dm.present) {
            mf.vocab = dm.vocab_size;
            vocab_flag->seen = 1;
        }
        lnl_data_meta_free(&dm);
    }
    Hook h = {&mf, flags, (int)ts.batch, (int)mf.seq};
    LnlTrainState rs;
    memset(&rs, 0, sizeof rs);
    if (rf.resume) {
        LnlConfig *c = lnl_malloc(sizeof *c);
        char *js = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(saved, "model"));
        char *cfg_path = lnl_path_join(out, "config.json");
        if (!js || lnl_config_from_json(c, js, cfg_path, &e))
            lnl_die(1, "%s", js ? e.msg : "config.json: no \"model\" object");
        if (lnl_mem_check(c, h.B, h.T, &e)) lnl_die(1, "%s", e.msg); /* before the checkpoint is loaded */
        free(cfg_path);
        free(js);
        free(c);
        if (lnl_ckpt_load_latest(out, &m, NULL, NULL, &rs, stderr, &e)) lnl_die(1, "%s", e.msg);
    } else if (init_from) {
        if (lnl_model_flags_load(&m, init_from, data, override_hook, &h, &e)) lnl_die(1, "%s", e.msg);
    } else {
        LnlConfig *c = lnl_malloc(sizeof *c);
        if (lnl_model_flags_config(&mf, flags, c, &e)) lnl_die(2, "%s", e.msg);
        if (lnl_mem_check(c, h.B, h.T, &e)) lnl_die(1, "%s", e.msg);
        if (lnl_model_create(&m, c, &e)) lnl_die(1, "%s", e.msg);
        lnl_model_init_weights(&m, (uint64_t)ts.seed);
        free(c);
    }
    const int T = (int)mf.seq, B = (int)ts.batch;
    if (T > m.cfg.n_positions)
        lnl_die(2, "--seq: %d exceeds the model's n_positions %d", T, m.cfg.n_positions);
    long long bt = (long long)B * T * dist.size; /* a micro-batch: B rows from each process */
    if (ts.total_batch == 0) ts.total_batch = bt; /* config.json records the value it resolves to */
    if (ts.total_batch % bt && dist.size > 1)
        lnl_die(2, "--total-batch: %lld is not a multiple of processes*B*T = %d*%d*%d", ts.total_batch, dist.size, B,
                T);
    if (ts.total_batch % bt) lnl_die(2, "--total-batch: %lld is not a multiple of B*T = %lld", ts.total_batch, bt);
    if (lnl_train_settings_check(&ts, &e)) lnl_die(2, "%s", e.msg);
    LnlTokenizer *sample_tok = NULL;
    if (sample_every > 0) {
        /* a sample is the end-of-text token and the tokens after it, all within the context */
        const int room = m.cfg.n_positions - 1;
        if (sample_tokens > room && (lnl_flags_find(flags, nflags, "--sample-tokens")->seen || room < 1))
            lnl_die(2, "--sample-tokens: %lld tokens after the end-of-text token exceed the model's n_positions %d "
                       "(at most %d)",
                    sample_tokens, m.cfg.n_positions, room);
        if (sample_tokens > room) sample_tokens = room;
        sample_tok = open_sample_tokenizer(data, m.cfg.vocab_size);
    }

    LnlTrainOpts o;
    memset(&o, 0, sizeof o);
    o.data = data;
    o.out = out;
    o.B = B;
    o.T = T;
    o.steps = ts.steps;
    o.grad_accum = ts.total_batch / bt;
    o.sched = (LnlSchedule){(LnlSchedKind)lnl_schedule_parse(ts.schedule), ts.lr, ts.lr * ts.min_lr_frac, ts.warmup,
                            ts.steps};
    o.adam = (LnlAdamW){(float)ts.beta1, (float)ts.beta2, (float)ts.adam_eps, (float)ts.weight_decay,
                        (float)ts.grad_clip};
    o.seed = (uint64_t)ts.seed;
    if (lnl_data_order_parse(ts.data_order, &o.data_order))
        lnl_die(2, "--data-order: '%s' is not one of %s", ts.data_order, LNL_DATA_ORDERS);
    o.data_seed = (uint64_t)ts.data_seed;
    o.eval_every = ts.eval_every;
    o.eval_batches = ts.eval_batches;
    o.checkpoint_every = ts.checkpoint_every;
    o.z_loss = (float)ts.z_loss;
    o.quiet = quiet;
    o.sample_every = sample_every;
    o.sample_tokens = (int)sample_tokens;
    o.sample_tok = sample_tok;
    o.adapt_threads = adapt_threads;
    o.monitor = lnl_monitor_flags_opts(&monf);
    o.keep_checkpoints = rf.keep;
    o.stop_after = rf.stop_after;
    o.resume = rf.resume ? &rs : NULL;
    o.dist = &dist;
    o.overwrite = overwrite;
    char run_id[LNL_RUN_ID_MAX] = "";
    if (rf.resume) { /* runs of an older lnlab have none */
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(saved, "run_id");
        if (id && (!cJSON_IsString(id) || strlen(id->valuestring) >= sizeof run_id))
            lnl_die(1, "%s/config.json: run_id is not a string of at most %zu characters", out, sizeof run_id - 1);
        if (id) snprintf(run_id, sizeof run_id, "%s", id->valuestring);
    } else if (lnl_train_new_run_id(run_id, &e)) {
        lnl_die(1, "%s", e.msg);
    }
    o.run_id = run_id;
    char *command = lnl_command_line(argc, argv);
    o.command = command;
    cJSON *hp = cJSON_CreateObject();
    cJSON_AddStringToObject(hp, "data", data);
    if (init_from) cJSON_AddStringToObject(hp, "init_from", init_from);
    lnl_train_settings_to_json(&ts, hp);
    cJSON_AddNumberToObject(hp, "processes", dist.size);
    cJSON_AddNumberToObject(hp, "seq", T);
    cJSON_AddNumberToObject(hp, "min_lr", ts.lr * ts.min_lr_frac); /* for readers; not read back */
    cJSON_AddNumberToObject(hp, "params", (double)m.num_params);
    lnl_monitor_opts_to_json(&o.monitor, hp);
    lnl_resume_record_flags(hp, flags, nflags, LNL_MODEL_NFLAGS);
    char *hjs = cJSON_PrintUnformatted(hp);
    cJSON_Delete(hp);
    o.hparams_json = hjs;

    if (!quiet)
        fprintf(stderr, "lnlab train: %s, %s, dt %g, L %d H %d C %d T %d V %d, %zu params, batch %d x %d x %ld\n",
                m.cfg.preset, lnl_norm_name(m.cfg.norm), m.cfg.dt, m.cfg.n_layer,
                m.cfg.n_head, m.cfg.n_embd, T, m.cfg.vocab_size, m.num_params, B, T, o.grad_accum);
    if (!quiet && dist.size > 1)
        fprintf(stderr, "lnlab train: %d MPI processes, global batch %d x %d x %ld%s\n", dist.size, B * dist.size, T,
                o.grad_accum, zero ? ", AdamW moments sharded (ZeRO-1)" : "");
    if (!quiet) { /* the MFU's denominator, at the thread count the run starts with */
        double gf = lnl_sgemm_gflops(LNL_PEAK_TRAIN_N, LNL_PEAK_TRAIN_REPS, 0);
        o.peak_flops = gf * 1e9;
        fprintf(stderr, "lnlab train: peak %.0f GFLOP/s (SGEMM %d^3 on %d thread%s, measured at start)\n", gf,
                LNL_PEAK_TRAIN_N, lnl_kernels_threads(), lnl_kernels_threads() == 1 ? "" : "s");
    }
    LnlTrainResult res;
    if (rf.resume && !quiet) fprintf(stderr, "lnlab train: resuming %s after step %ld of %lld\n", out, rs.step, ts.steps);
    int r = lnl_train(&m, &o, &res, &e);
    free(data_abs);
    free(init_abs);
    free(command);
    lnl_state_free(&rs);
    cJSON_free(hjs);
    lnl_model_free(&m);
    if (sample_tok) lnl_tok_free(sample_tok);
    if (r) dist_die(&dist, e.msg); /* every rank stopping together leaves MPI first */
    if (!quiet && dist.size > 1 && res.steps_done > 0)
        fprintf(stderr, "lnlab train: %.1f s per process in gradient/parameter communication\n", dist.comm_s);
    lnl_dist_free(&dist);
    if (res.stopped) {
        fprintf(stderr, "lnlab: %s%s after step %ld of %lld; checkpoint saved in %s/checkpoints; continue with: lnlab "
                        "train --resume %s\n",
                res.stop_signal ? "stopped by " : "stopped (--stop-after)",
                res.stop_signal ? lnl_signal_name(res.stop_signal) : "", res.steps_done, ts.steps, out, out);
        cJSON_Delete(saved);
        return res.stop_signal ? 128 + res.stop_signal : 0;
    }
    cJSON_Delete(saved);
    if (res.diverged) {
        fprintf(stderr, "lnlab: training diverged at step %ld: %s (see %s/log.jsonl)\n", res.diverged_step, res.cause,
                out);
        return LNL_EXIT_DIVERGED;
    }
    if (!quiet && res.skipped_steps > 0)
        fprintf(stderr, "skipped %ld updates as loss or grad-norm spikes (--skip-spikes)\n", res.skipped_steps);
    if (!quiet) {
        if (isfinite(res.final_val_loss))
            fprintf(stderr, "done: %ld steps, loss %.4f, val loss %.4f, %.0f tok/s (median)\n", res.steps_done,
                    res.final_loss, res.final_val_loss, res.tokens_per_s);
        else
            fprintf(stderr, "done: %ld steps, loss %.4f, %.0f tok/s (median)\n", res.steps_done, res.final_loss,
                    res.tokens_per_s);
    }
    return 0;
}
