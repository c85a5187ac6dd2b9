/* The training loop. Training batches are sampled at seeded random offsets of the train split, a
 * function of (data seed, step, micro-batch), or read in llm.c's order (consecutive B x T
 * batches, wrapping at the end; loader.h); the run is repeatable for given seeds and data. */
#include "train.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../data/loader.h"
#include "../dist/dist.h"
#include "../io/model_io.h"
#include "eval.h"
#include "runlog.h"
#include "sample.h"
#include "signals.h"
#include "run_result.h"
#include "zero.h"

static void fmt_eta(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

/* After a file that rank 0 alone writes: every rank learns whether it was written (rc is rank
 * 0's), so that all stop together on a failure; the others say why they stop. */
static int root_wrote(LnlDist *d, int rc, const char *what, LnlErr *e) {
    if (lnl_dist_root_rc(d, rc) == 0) return 0;
    if (!lnl_dist_is_root(d))
        lnl_err(e, "rank %d of %d: stopping because rank 0 could not write %s (rank 0's error says why)",
                lnl_dist_rank(d), lnl_dist_size(d), what);
    return -1;
}

/* The console's sample (--sample-every): what the model writes after `step` steps from the
 * end-of-text token, through its KV-cache decode state (apart from the training activations) and a
 * sampler seeded from the run's seed and the step, never from the loop's RNG: sampling changes no
 * number of the run. Its text goes to stderr with newlines and tabs kept and other control bytes
 * as \xHH, so that the model's output cannot move the cursor or change the terminal. */
static void print_sample(LnlModel *m, const LnlTrainOpts *o, long step) {
    const LnlTokenizer *tok = o->sample_tok;
    const int tv = lnl_tok_vocab_size(tok), eot = lnl_tok_eot(tok);
    uint64_t x = o->seed;
    const uint64_t seed = lnl_splitmix64(&x) ^ (uint64_t)step;
    LnlSampler smp;
    LnlErr e;
    fprintf(stderr, "sample at step %ld:\n", step);
    if (lnl_sampler_init(&smp, tv, (float)LNL_TRAIN_SAMPLE_TEMPERATURE, LNL_TRAIN_SAMPLE_TOP_K, seed, &e)) {
        fprintf(stderr, "(no sample: %s)\n", e.msg);
        return;
    }
    const float branch_lambda = m->branch_lambda;
    m->branch_lambda = lnl_branchnorm_lambda(&m->cfg, step); /* as the next step's forward */
    LnlIds ids = {0};
    const char *cut = NULL;
    const float *logits = lnl_model_decode_step(m, eot, 0);
    for (int i = 0; i < o->sample_tokens && !cut; i++) {
        for (int k = 0; k < tv && !cut; k++)
            if (!isfinite(logits[k])) cut = "[the model's logits are not finite]";
        if (cut) break;
        int32_t next = lnl_sampler_next(&smp, logits);
        lnl_ids_push(&ids, next);
        if (i + 1 < o->sample_tokens) logits = lnl_model_decode_step(m, next, i + 1);
    }
    m->branch_lambda = branch_lambda;
    LnlBuf raw = {0}, text = {0};
    if (lnl_tok_decode(tok, ids.ids, ids.n, &raw, &e)) cut = e.msg; /* sampled ids are below tv: not expected */
    for (size_t i = 0; i < raw.len; i++) {
        const unsigned char ch = (unsigned char)raw.data[i];
        if (ch == '\n' || ch == '\t' || (ch >= 0x20 && ch != 0x7f)) lnl_buf_append(&text, &ch, 1);
        else lnl_buf_printf(&text, "\\x%02x", ch);
    }
    fprintf(stderr, "%.*s%s%s\n", (int)text.len, text.len ? text.data : "", cut && text.len ? " " : "",
            cut ? cut : "");
    lnl_buf_free(&raw);
    lnl_buf_free(&text);
    lnl_ids_free(&ids);
    lnl_sampler_free(&smp);
}

int lnl_train_new_run_id(char *id, LnlErr *e) { return lnl_random_hex(id, LNL_RUN_ID_LEN / 2, e); }

static int write_config(const LnlModel *m, const LnlTrainOpts *o, LnlErr *e) {
    char *cfg = lnl_config_to_json(&m->cfg);
    LnlBuf b = {0};
    lnl_buf_printf(&b, "{\"run_id\": \"%s\",\n \"model\": %s,\n \"train\": %s}\n", o->run_id ? o->run_id : "", cfg,
                   o->hparams_json ? o->hparams_json : "{}");
    free(cfg);
    char *path = lnl_path_join(o->out, "config.json");
    int r = lnl_write_file_atomic(path, b.data, b.len, e);
    free(path);
    lnl_buf_free(&b);
    return r;
}

/* The files that make a directory a run's (checkpoints/ is handled apart). */
static const char *const run_files[] = {"config.json", LNL_LOG_FILE, "model.safetensors", LNL_RESULT_FILE};

static int run_file(const char *name, void *ctx) {
    (void)ctx;
    for (size_t i = 0; i < sizeof run_files / sizeof run_files[0]; i++)
        if (strcmp(name, run_files[i]) == 0) return 1;
    return 0;
}

/* A fresh run's directory must not hold another run: refused, or with --overwrite deleted first
 * (the old checkpoints too, which a later --resume would otherwise take for this run's). */
static int claim_run_dir(const LnlTrainOpts *o, LnlErr *e) {
    char found[256] = "";
    const size_t nfiles = sizeof run_files / sizeof run_files[0];
    for (size_t i = 0; i < nfiles; i++) {
        char *p = lnl_path_join(o->out, run_files[i]);
        if (access(p, F_OK) == 0) {
            size_t k = strlen(found);
            snprintf(found + k, sizeof found - k, "%s%s", k ? ", " : "", run_files[i]);
        }
        free(p);
    }
    /* result.json first, so a kill half-way never leaves one that says the run ended beside a
     * model or log that is gone; then config.json, so it never leaves a run that looks resumable
     * (config.json and checkpoints) whose log is gone: --resume would refuse it on every try,
     * where a fresh run (--overwrite again) is what it needs */
    static const char *const del_order[] = {LNL_RESULT_FILE, "config.json", "model.safetensors", LNL_LOG_FILE};
    _Static_assert(sizeof del_order == sizeof run_files, "every run file is deleted");
    for (size_t i = 0; o->overwrite && i < nfiles; i++) {
        char *p = lnl_path_join(o->out, del_order[i]);
        if (unlink(p) != 0 && errno != ENOENT) {
            int r = lnl_err(e, "%s: cannot remove (--overwrite): %s", p, strerror(errno));
            free(p);
            return r;
        }
        free(p);
    }
    char *dir = lnl_path_join(o->out, LNL_CKPT_DIR);
    DIR *dd = opendir(dir);
    int ckpts = 0;
    if (dd) {
        struct dirent *de;
        while ((de = readdir(dd)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                ckpts++;
                if (!o->overwrite) continue;
                char *p = lnl_path_join(dir, de->d_name);
                int bad = unlink(p) != 0;
                if (bad) lnl_err(e, "%s: cannot remove (--overwrite): %s", p, strerror(errno));
                free(p);
                if (bad) {
                    closedir(dd);
                    free(dir);
                    return -1;
                }
            }
        closedir(dd);
        if (o->overwrite && rmdir(dir) != 0) {
            int r = lnl_err(e, "%s: cannot remove (--overwrite): %s", dir, strerror(errno));
            free(dir);
            return r;
        }
    }
    free(dir);
    if (ckpts) {
        size_t k = strlen(found);
        snprintf(found + k, sizeof found - k, "%s%s/", k ? ", " : "", LNL_CKPT_DIR);
    }
    if (found[0] && !o->overwrite)
        return lnl_err(e, "--out %s: holds a run (%s): continue it with lnlab train --resume %s, or replace it with "
                          "--overwrite (which deletes it first)",
                       o->out, found, o->out);
    return 0;
}

/* Rank 0's part of a run's start, first: RUN/ locked for this process, and for a fresh run free of
 * another run's files. Nothing in RUN/ changes before every check of a resume has passed. */
static int lock_run_dir(const LnlTrainOpts *o, int *lock_fd, LnlErr *e) {
    if (lnl_mkdir_p(o->out, e) || lnl_dir_lock(o->out, LNL_RUN_LOCK, "train", lock_fd, e)) return -1;
    /* a process killed while writing a run file left its temporary (RUN/checkpoints has its own
     * cleanup, checkpoint.h); the lock says no one else writes here */
    lnl_atomic_remove_stale(o->out, run_file, NULL);
    return o->resume ? 0 : claim_run_dir(o, e);
}

/* ... then, the checks passed: RUN/ without a stale result.json, config.json and a new log, or for
 * a resumed run the log cut back to the step it resumes after. */
static int start_run_dir(const LnlModel *m, const LnlTrainOpts *o, const char *log_path, LnlRunLog *log, LnlErr *e) {
    if (lnl_train_remove_result(o->out, e)) return -1;
    if (o->resume) return lnl_runlog_resume(log, log_path, o->resume->step, stderr, e);
    if (write_config(m, o, e)) return -1;
    return lnl_runlog_create(log, log_path, e);
}

/* Reads of the mapped shards, each guarded against SIGBUS (signals.h): 0, or -1 with the faulting
 * address in *bad when a shard was truncated or replaced under the run. Nothing in these frames
 * changes between sigsetjmp and the jump. */
static int read_batch(LnlLoader *l, const LnlTrainOpts *o, long step, long micro, int32_t *in, int32_t *tg,
                      const void **bad) {
    if (sigsetjmp(*lnl_bus_jump(), 0)) {
        *bad = lnl_bus_after_jump();
        return -1;
    }
    lnl_bus_arm(1);
    if (o->data_order == LNL_ORDER_RANDOM) lnl_loader_sample(l, o->data_seed, (uint64_t)step, (uint64_t)micro, in, tg);
    else lnl_loader_next(l, in, tg);
    lnl_bus_arm(0);
    return 0;
}

static int eval_loss(LnlModel *m, LnlLoader *val, long batches, double *loss, const void **bad) {
    if (sigsetjmp(*lnl_bus_jump(), 0)) {
        *bad = lnl_bus_after_jump();
        return -1;
    }
    lnl_bus_arm(1);
    *loss = lnl_eval_loss(m, val, batches > 0 ? batches : -1, NULL);
    lnl_bus_arm(0);
    return 0;
}

/* One pass over the data: its CRC-32 (saved with each checkpoint so that a resume refuses edited
 * data) and the unigram loss of val under train's token frequencies (NAN without val), the loss
 * a run that learned nothing sits at. */
static int scan_data(const LnlLoader *train, const LnlLoader *val, int vocab, uint32_t *crc, double *unigram,
                     const void **bad) {
    uint64_t *counts = lnl_calloc(2 * (size_t)vocab, sizeof(uint64_t));
    if (sigsetjmp(*lnl_bus_jump(), 0)) {
        *bad = lnl_bus_after_jump();
        free(counts);
        return -1;
    }
    lnl_bus_arm(1);
    *crc = lnl_loader_crc32(train, 0);
    if (val) *crc = lnl_loader_crc32(val, *crc);
    lnl_loader_count(train, counts, vocab);
    if (val) lnl_loader_count(val, counts + vocab, vocab);
    lnl_bus_arm(0);
    *unigram = val ? lnl_unigram_loss(counts, counts + vocab, vocab) : NAN;
    free(counts);
    return 0;
}

/* The shard of train or val (may be NULL) mapped at addr, or NULL. */
static const char *shard_at_addr(const LnlLoader *train, const LnlLoader *val, const void *addr) {
    const LnlLoader *ls[2] = {train, val};
    for (int k = 0; k < 2; k++)
        for (int i = 0; ls[k] && i < ls[k]->nshards; i++) {
            const char *m = ls[k]->shards[i].map;
            if (m && (const char *)addr >= m && (const char *)addr < m + ls[k]->shards[i].map_len)
                return ls[k]->shards[i].path;
        }
    return NULL;
}

/* A record that could not be written ends the run: one attempt at a checkpoint of this step (it
 * writes the pending records first, so it succeeds only if the disk took them after all), then
 * the error, which says whether that checkpoint exists. */
static void stop_on_log_error(LnlDist *d, const LnlTrainOpts *o, const LnlModel *m, LnlStateRefs *refs,
                              LnlOptState *opt, LnlZero *zero, LnlRunLog *log, const LnlErr *why, LnlTrainResult *res,
                              LnlErr *e) {
    LnlErr ce;
    lnl_zero_gather(zero, opt);
    int cr = lnl_dist_is_root(d) ? lnl_ckpt_save(o->out, m, refs, log, o->keep_checkpoints, &ce) : 0;
    lnl_zero_release(zero, opt);
    cr = lnl_dist_root_rc(d, cr);
    if (!lnl_dist_is_root(d))
        lnl_err(e, "rank %d of %d: stopping because rank 0 could not write %s/log.jsonl (rank 0's error says why)",
                lnl_dist_rank(d), lnl_dist_size(d), o->out);
    else if (cr == 0)
        lnl_err(e, "%s; the run stops after step %ld, checkpoint of that step saved: continue with lnlab train --resume %s",
                why->msg, refs->step, o->out);
    else if (strstr(ce.msg, why->msg))
        lnl_err(e, "%s; the run stops after step %ld without a checkpoint of that step (the records failed again; "
                   "earlier checkpoints are intact)",
                why->msg, refs->step);
    else
        lnl_err(e, "%s; the run stops after step %ld without a checkpoint of that step (%s)", why->msg, refs->step,
                ce.msg);
    res->failed = 1;
    snprintf(res->error, sizeof res->error, "%s", e->msg);
}

/* Admin's profiling pass (lnl_model_admin_profile) on the first global batch: every rank's B rows
 * of it, gathered in rank order, so that the omegas equal a single process's. With several ranks
 * the model's activations are reallocated for n*B rows for that one forward and back to B x T.
 * Rewinds the loader. */
static int admin_profile(LnlDist *d, LnlModel *m, LnlLoader *train, int B, int T, LnlErr *e) {
    if (!m->cfg.admin_profile) return 0;
    const int n = lnl_dist_size(d);
    const size_t N = (size_t)B * (size_t)T;
    int32_t *in = lnl_malloc(N * (size_t)n * sizeof(int32_t));
    lnl_loader_next(train, in + (size_t)lnl_dist_rank(d) * N, NULL);
    int r = 0;
    if (n > 1) {
        if (N > LNL_DIST_MAX_COUNT) {
            free(in);
            return lnl_err(e, "Admin profiling: a batch of B*T = %zu tokens is too large for one MPI call", N);
        }
        lnl_dist_allgather_i32(d, in, N);
        r = lnl_model_alloc_acts(m, n * B, T, e);
    }
    if (r == 0 && lnl_model_admin_profile(m, in, n * B, T))
        r = lnl_err(e, "Admin profiling: no activations for %d x %d", n * B, T);
    if (r == 0 && n > 1) r = lnl_model_alloc_acts(m, B, T, e);
    lnl_loader_reset(train);
    free(in);
    return r;
}

int lnl_train(LnlModel *m, const LnlTrainOpts *o, LnlTrainResult *res, LnlErr *e) {
    memset(res, 0, sizeof *res);
    res->final_val_loss = NAN;
    res->min_loss = NAN;
    res->unigram_val_loss = NAN;
    const LnlConfig *c = &m->cfg;
    const int B = o->B, T = o->T, N = B * T;
    int r = -1;
    LnlLoader train = {0}, val = {0};
    int have_val = 0;
    LnlRunLog log;
    int lock_fd = -1; /* RUN/.lock, rank 0's */
    const void *bad_addr = NULL; /* a read of the mapped data faulted here (SIGBUS) */
    long bad_step = -1;          /* ... while reading the batches of this step (steps done) */
    if (lnl_runlog_discard(&log, e)) return -1; /* rank 0 replaces it with RUN/log.jsonl */
    LnlOptState opt = {0};
    LnlZero zero = {0}; /* --zero under mpirun: opt's moments sharded over the ranks */
    LnlMonitor mon = {0};
    LnlRng rng;              /* the loop's RNG: saved and restored with the state (no draw uses it yet) */
    LnlStateRefs refs;       /* what a checkpoint saves besides the model */
    double *mon_state = NULL;
    int32_t *in = lnl_malloc((size_t)N * sizeof(int32_t)), *tg = lnl_malloc((size_t)N * sizeof(int32_t));
    double *times = lnl_calloc((size_t)(o->steps > 0 ? o->steps : 1), sizeof(double));
    char *log_path = NULL;

    LnlDist *d = o->dist; /* under mpirun: this process's rows of each batch, rank 0 writes */
    /* the weights carry their run's id into every model file this run writes */
    snprintf(m->run_id, sizeof m->run_id, "%s", o->run_id ? o->run_id : "");
    m->z_loss_coef = o->z_loss; /* every training forward and backward; eval's forwards compute it unreported */
    const int root = lnl_dist_is_root(d), nproc = lnl_dist_size(d);
    if (lnl_loader_open(&train, o->data, "train", B, T, c->vocab_size, e)) goto done;
    if (lnl_loader_split(&train, nproc, lnl_dist_rank(d), e)) goto done;
    {
        /* only a prepared directory has a val split; a single shard is all training data */
        struct stat st;
        LnlErr ve;
        if (stat(o->data, &st) == 0 && S_ISDIR(st.st_mode))
            have_val = lnl_loader_open(&val, o->data, "val", B, T, c->vocab_size, &ve) == 0;
        if (have_val && lnl_loader_split(&val, nproc, lnl_dist_rank(d), &ve)) {
            lnl_loader_free(&val);
            have_val = 0;
        }
    }
    log_path = lnl_path_join(o->out, LNL_LOG_FILE);
    if (root) lnl_runlog_close(&log);
    if (root_wrote(d, root ? lock_run_dir(o, &lock_fd, e) : 0, "the run directory's setup files", e)) goto done;
    if (lnl_model_alloc_acts(m, B, T, e)) goto done;
    /* every rank, so that all fail together; rank 0 alone samples */
    if (o->sample_every > 0 && lnl_model_alloc_decode(m, 1 + o->sample_tokens, 1, e)) goto done;
    lnl_opt_init(&opt, m);
    lnl_monitor_init(&mon, m, &o->monitor);
    lnl_rng_seed(&rng, o->seed);
    uint32_t data_crc = 0;
    lnl_bus_install();
    if (scan_data(&train, have_val ? &val : NULL, c->vocab_size, &data_crc, &res->unigram_val_loss, &bad_addr))
        goto data_changed;
    refs = (LnlStateRefs){.opt = &opt, .train = &train, .rng = &rng, .step_ms = times, .max_steps = o->steps,
                          .B = B, .T = T, .grad_accum = o->grad_accum, .run_id = o->run_id, .data_crc = data_crc,
                          .data_order = o->data_order, .data_seed = o->data_seed};
    mon_state = lnl_calloc(lnl_monitor_state_count(&mon) + 1, sizeof(double));
    lnl_state_extra(&refs, "monitor", mon_state, lnl_monitor_state_count(&mon));
    if (o->resume) {
        if (lnl_state_apply(o->resume, &refs, e)) goto done;
        if (lnl_monitor_state_unpack(&mon, mon_state, lnl_monitor_state_count(&mon))) {
            lnl_err(e, "%s: the saved monitor state does not fit this run's settings", o->out);
            goto done;
        }
        res->steps_done = o->resume->step;
    }
    int setup_rc = root ? start_run_dir(m, o, log_path, &log, e) : 0;
    if (root_wrote(d, setup_rc, "the run directory's setup files", e)) goto done;
    /* the other ranks' records (the same values) go nowhere: their log discards them */
    if (d && d->zero && lnl_zero_init(&zero, d, &opt, m, e)) goto done;

    if (!o->resume && admin_profile(d, m, &train, B, T, e)) goto done;
    lnl_dist_bcast_floats(d, m->params_mem, m->num_alloc); /* rank 0's parameters */

    if (have_val && o->eval_every > 0 && !o->resume) {
        /* the starting point of the validation curve */
        double vl;
        if (eval_loss(m, &val, o->eval_batches, &vl, &bad_addr)) goto data_changed;
        vl = lnl_dist_mean(d, vl);
        char vs[32];
        lnl_json_num(vs, sizeof vs, "%.6f", vl);
        fprintf(lnl_runlog_records(&log), "{\"step\": 0, \"val_loss\": %s}\n", vs);
    }
    const int tty = isatty(fileno(stderr));
    int line_open = 0; /* a progress line on the terminal waits for its newline */
    /* the model FLOPs this process does per step: its B rows of every micro-batch */
    const double step_flops = lnl_model_step_flops(c, B, T) * (double)o->grad_accum;
    long val_step = 0; /* the step of the newest evaluation, for the progress line (0: none yet) */
    const long print_every = o->steps >= 20 ? o->steps / 20 : 1;
    double t_start = lnl_now();
    const long start = o->resume ? o->resume->step : 0;
    lnl_signals_install();
    lnl_kernels_adapt_begin(o->adapt_threads);
    const int max_threads = lnl_kernels_threads();
    for (long step = start; step < o->steps; step++) {
        double t0 = lnl_now();
        const int threads = lnl_kernels_threads();
        m->branch_lambda = lnl_branchnorm_lambda(c, step);
        m->diag_forward = lnl_monitor_due_forward(&mon, step + 1);
        lnl_model_zero_grad(m);
        double loss_sum = 0, z_loss_sum = 0;
        const uint64_t step_pos = train.pos;
        for (long micro = 0; micro < o->grad_accum; micro++) {
            if (read_batch(&train, o, step, micro, in, tg, &bad_addr)) {
                train.pos = step_pos; /* the checkpoint of the steps done reads this batch again */
                bad_step = step;
                goto data_changed;
            }
            loss_sum += lnl_model_forward(m, in, tg, B, T);
            z_loss_sum += m->z_loss;
            lnl_model_backward(m);
        }
        if (o->grad_accum > 1) {
            float s = 1.0f / (float)o->grad_accum;
            for (int i = 0; i < m->nviews; i++) {
                float *g = m->grads_mem + m->views[i].offset;
                for (size_t k = 0; k < m->views[i].numel; k++) g[k] *= s;
            }
        }
        lnl_dist_allreduce_mean_floats(d, m->grads_mem, m->num_alloc);
        float loss = (float)lnl_dist_mean(d, loss_sum / (double)o->grad_accum);
        /* the z-loss term of the objective, apart from the cross-entropy `loss` (every rank has the same coef) */
        char zfield[48] = "";
        if (o->z_loss > 0) {
            char zs[32];
            lnl_json_num(zs, sizeof zs, "%.6g", lnl_dist_mean(d, z_loss_sum / (double)o->grad_accum));
            snprintf(zfield, sizeof zfield, ", \"z_loss\": %s", zs);
        }
        double lr = lnl_schedule_lr(&o->sched, step);
        double gnorm = lnl_model_grad_norm(m);
        LnlStepAction act = lnl_monitor_check(&mon, loss, gnorm, res->cause, sizeof res->cause);
        int diag_due = lnl_monitor_due(&mon, step + 1);
        if (diag_due) lnl_monitor_pre_update(&mon, m);
        if (act == LNL_STEP_UPDATE && lnl_zero_on(&zero)) lnl_zero_step(&zero, &opt, m, &o->adam, (float)lr, gnorm);
        else if (act == LNL_STEP_UPDATE) lnl_opt_step_norm(&opt, m, &o->adam, (float)lr, gnorm);
        if (diag_due) lnl_monitor_post_update(&mon, m);
        res->skipped_steps = mon.skipped;
        res->min_loss = mon.min_loss;
        double ms = (lnl_now() - t0) * 1000.0;
        times[step] = ms;
        double tps = (double)N * nproc * (double)o->grad_accum / (ms / 1000.0);
        res->steps_done = step + 1;
        res->final_loss = loss;
        char mfields[128];
        lnl_monitor_step_fields(&mon, mfields, sizeof mfields);
        char ls[32];
        lnl_json_num(ls, sizeof ls, "%.6f", loss);
        fprintf(lnl_runlog_records(&log), "{\"step\": %ld, \"loss\": %s, \"lr\": %.6e, \"grad_norm\": %.6e, \"tokens_per_s\": %.1f, "
                     "\"ms\": %.3f, \"threads\": %d%s%s}\n",
                step + 1, ls, lr, isfinite(gnorm) ? gnorm : -1.0, tps, ms, threads, zfield, mfields);
        if (diag_due) lnl_monitor_write_diag(&mon, m, step + 1, gnorm, lnl_runlog_records(&log));
        if (act == LNL_STEP_DIVERGED) {
            res->diverged = 1;
            res->diverged_step = step + 1;
            fprintf(lnl_runlog_records(&log), "{\"step\": %ld, \"diverged\": true, \"cause\": \"%s\"}\n", step + 1,
                    res->cause);
            if (line_open) fputc('\n', stderr);
            if (root_wrote(d, root ? lnl_runlog_sync(&log, e) : 0, "log.jsonl", e)) goto log_failed;
            r = 0;
            goto done;
        }
        int last = step + 1 == o->steps;
        if (have_val && ((o->eval_every > 0 && (step + 1) % o->eval_every == 0) || last)) {
            double vl;
            if (eval_loss(m, &val, o->eval_batches, &vl, &bad_addr)) goto data_changed;
            vl = lnl_dist_mean(d, vl);
            res->final_val_loss = vl;
            val_step = step + 1;
            char vs[32];
            lnl_json_num(vs, sizeof vs, "%.6f", vl);
            fprintf(lnl_runlog_records(&log), "{\"step\": %ld, \"val_loss\": %s}\n", step + 1, vs);
        }
        /* every step's records are written (and checked) before the next step starts */
        LnlErr log_err;
        int log_failed = root && lnl_runlog_flush(&log, &log_err) != 0;
        int stop = !last && (lnl_signals_pending() || (o->stop_after > 0 && step + 1 >= o->stop_after));
        /* a signal may reach one rank only: all stop at this step; 2 = rank 0 could not write the log */
        stop = (int)lnl_dist_max(d, log_failed ? 2 : stop);
        if (stop == 2) {
            refs.step = step + 1;
            lnl_monitor_state_pack(&mon, mon_state);
            stop_on_log_error(d, o, m, &refs, &opt, &zero, &log, &log_err, res, e);
            goto done;
        }
        if (stop || (o->checkpoint_every > 0 && (step + 1) % o->checkpoint_every == 0 && !last)) {
            refs.step = step + 1;
            lnl_monitor_state_pack(&mon, mon_state);
            lnl_zero_gather(&zero, &opt);
            int cr = root ? lnl_ckpt_save(o->out, m, &refs, &log, o->keep_checkpoints, e) : 0;
            lnl_zero_release(&zero, &opt);
            char what[64];
            snprintf(what, sizeof what, "the checkpoint at step %ld", step + 1);
            if (root_wrote(d, cr, what, e)) goto done;
        }
        if (stop) {
            res->stopped = 1;
            /* the signal may have reached another rank only; rank 0 reports it */
            res->stop_signal = (int)lnl_dist_max(d, lnl_signals_pending());
            if (line_open) fputc('\n', stderr);
            r = 0;
            goto done;
        }
        if (!o->quiet && (tty || (step + 1) % print_every == 0 || last)) {
            char eta[32];
            double elapsed = lnl_now() - t_start;
            fmt_eta(eta, sizeof eta, elapsed / (double)(step + 1 - start) * (double)(o->steps - step - 1));
            char val[48] = "", thr[64] = "", mfu[32] = "";
            if (val_step > 0) snprintf(val, sizeof val, " | val %.4f (step %ld)", res->final_val_loss, val_step);
            if (o->peak_flops > 0)
                snprintf(mfu, sizeof mfu, " | MFU %.1f%%", 100.0 * step_flops / (ms / 1000.0) / o->peak_flops);
            if (threads < max_threads) snprintf(thr, sizeof thr, " | %d of %d threads (CPUs busy)", threads, max_threads);
            fprintf(stderr,
                    "%sstep %ld/%ld | loss %.4f%s | lr %.2e | grad norm %.3f | %.1f ms | %.0f tok/s%s%s | ETA %s%s",
                    tty ? "\r" : "", step + 1, o->steps, loss, val, lr, gnorm, ms, tps, mfu, thr, eta,
                    tty ? "   " : "\n");
            line_open = tty;
        }
        if (root && o->sample_every > 0 && (step + 1) % o->sample_every == 0) {
            if (line_open) fputc('\n', stderr);
            line_open = 0;
            print_sample(m, o, step + 1);
        }
        lnl_kernels_adapt();
    }
    if (line_open) fputc('\n', stderr);
    if (lnl_dist_check_same_floats(d, m->params_mem, m->num_alloc, "parameters after training", e)) goto done;
    if (root_wrote(d, root ? lnl_runlog_sync(&log, e) : 0, "log.jsonl", e)) goto log_failed;
    int sr = 0;
    if (root) {
        char *path = lnl_path_join(o->out, "model.safetensors");
        sr = lnl_model_save_safetensors(m, path, NULL, NULL, e);
        free(path);
    }
    if (root_wrote(d, sr, "model.safetensors", e)) goto done;
    r = 0;
    goto done;
data_changed: { /* a shard was truncated or replaced in place while the run read it */
    const char *file = shard_at_addr(&train, have_val ? &val : NULL, bad_addr);
    LnlErr why;
    lnl_err(&why, "%s: the data file changed under the run (truncated or replaced in place while training read it)",
            file ? file : o->data);
    if (bad_step > (o->resume ? o->resume->step : 0) && nproc == 1) { /* the state after bad_step steps is intact */
        refs.step = bad_step;
        lnl_monitor_state_pack(&mon, mon_state);
        LnlErr ce;
        if (lnl_ckpt_save(o->out, m, &refs, &log, o->keep_checkpoints, &ce) == 0)
            lnl_err(e, "%s; the run stops after step %ld, checkpoint of that step saved (a resume checks the data)",
                    why.msg, bad_step);
        else
            lnl_err(e, "%s; the run stops after step %ld without a checkpoint of that step (%s)", why.msg, bad_step,
                    ce.msg);
    } else {
        lnl_err(e, "%s; the run stops%s", why.msg, bad_step >= 0 ? " (its newest checkpoint is intact)" : "");
    }
    res->failed = 1;
    snprintf(res->error, sizeof res->error, "%s", e->msg);
    goto done;
}
log_failed: /* the last records could not be written: the run did not end as it says */
    res->failed = 1;
    snprintf(res->error, sizeof res->error, "%s", e->msg);
done:
    lnl_kernels_adapt_end();
    if (res->steps_done > 0) {
        qsort(times, (size_t)res->steps_done, sizeof(double), lnl_cmp_double);
        double med = times[res->steps_done / 2];
        res->tokens_per_s = (double)N * nproc * (double)o->grad_accum / (med / 1000.0);
    }
    lnl_signals_restore();
    lnl_bus_restore();
    free(mon_state);
    if (r == 0 || res->failed) { /* finished, diverged, stopped or failed: every rank is here */
        LnlErr we;
        int wr = root ? lnl_train_write_result(o->out, o, res, &we) : 0;
        if (res->failed) {
            if (lnl_dist_root_rc(d, wr) && root) /* the run's own error comes first */
                fprintf(stderr, "lnlab: %s not written either: %s\n", LNL_RESULT_FILE, we.msg);
        } else if (root_wrote(d, wr, LNL_RESULT_FILE, &we)) {
            *e = we;
            r = -1;
        }
    }
    lnl_runlog_close(&log);
    if (lock_fd >= 0) close(lock_fd); /* last: the run's files are complete */
    free(log_path);
    lnl_opt_free(&opt);
    lnl_zero_free(&zero);
    lnl_monitor_free(&mon);
    lnl_loader_free(&train);
    if (have_val) lnl_loader_free(&val);
    free(in);
    free(tg);
    free(times);
    return r;
}
