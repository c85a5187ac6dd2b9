/* The training loop. Data order is llm.c's: consecutive B x T batches of the train split,
 * wrapping at the end; the run is repeatable for a given seed and data. */
#include "train.h"

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
#include "signals.h"
#include "result.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

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

static int write_config(const LnlModel *m, const LnlTrainOpts *o, LnlErr *e) {
    char *cfg = lnl_config_to_json(&m->cfg);
    LnlBuf b = {0};
    lnl_buf_printf(&b, "{\"model\": %s,\n \"train\": %s}\n", cfg, o->hparams_json ? o->hparams_json : "{}");
    free(cfg);
    char *path = lnl_path_join(o->out, "config.json");
    int r = lnl_write_file_atomic(path, b.data, b.len, e);
    free(path);
    lnl_buf_free(&b);
    return r;
}

/* Rank 0's part of a run's start: RUN/ itself without a stale result.json, then config.json and a
 * new log, or for a resumed run the log cut back to the step it resumes after. */
static int start_run_dir(const LnlModel *m, const LnlTrainOpts *o, const char *log_path, FILE **log, LnlErr *e) {
    if (lnl_mkdir_p(o->out, e) || lnl_train_remove_result(o->out, e)) return -1;
    if (o->resume) return lnl_log_reopen(log_path, o->resume->step, log, e);
    if (write_config(m, o, e)) return -1;
    *log = fopen(log_path, "w");
    if (!*log) return lnl_err(e, "%s: cannot create the log: %s", log_path, strerror(errno));
    return 0;
}

int lnl_train(LnlModel *m, const LnlTrainOpts *o, LnlTrainResult *res, LnlErr *e) {
    memset(res, 0, sizeof *res);
    res->final_val_loss = NAN;
    res->min_loss = NAN;
    const LnlConfig *c = &m->cfg;
    const int B = o->B, T = o->T, N = B * T;
    int r = -1;
    LnlLoader train = {0}, val = {0};
    int have_val = 0;
    FILE *log = NULL;
    LnlOptState opt = {0};
    LnlMonitor mon = {0};
    LnlRng rng;              /* the loop's RNG: saved and restored with the state (no draw uses it yet) */
    LnlStateRefs refs;       /* what a checkpoint saves besides the model */
    double *mon_state = NULL;
    int32_t *in = lnl_malloc((size_t)N * sizeof(int32_t)), *tg = lnl_malloc((size_t)N * sizeof(int32_t));
    double *times = lnl_calloc((size_t)(o->steps > 0 ? o->steps : 1), sizeof(double));
    char *log_path = NULL;

    LnlDist *d = o->dist; /* under mpirun: this process's rows of each batch, rank 0 writes */
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
    log_path = lnl_path_join(o->out, "log.jsonl");
    int setup_rc = root ? start_run_dir(m, o, log_path, &log, e) : 0;
    if (root_wrote(d, setup_rc, "the run directory's setup files", e)) goto done;
    /* the other ranks' records (the same values) go nowhere */
    if (!root && !(log = fopen("/dev/null", "w"))) {
        lnl_err(e, "/dev/null: cannot open for the log records of rank %d: %s", lnl_dist_rank(d), strerror(errno));
        goto done;
    }
    if (lnl_model_alloc_acts(m, B, T, e)) goto done;
    lnl_opt_init(&opt, m);
    lnl_monitor_init(&mon, m, &o->monitor);
    lnl_rng_seed(&rng, o->seed);
    refs = (LnlStateRefs){.opt = &opt, .train = &train, .rng = &rng, .step_ms = times, .max_steps = o->steps,
                          .B = B, .T = T, .grad_accum = o->grad_accum};
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
    if (d && d->zero && lnl_dist_zero_init(d, &opt, m, e)) goto done;

    if (!o->resume && lnl_dist_admin_profile(d, m, &train, B, T, e)) goto done;
    lnl_dist_sync_params(d, m);

    if (have_val && o->eval_every > 0 && !o->resume) {
        /* the starting point of the validation curve */
        double vl = lnl_dist_mean(d, lnl_eval_loss(m, &val, o->eval_batches > 0 ? o->eval_batches : -1, NULL));
        fprintf(log, "{\"step\": 0, \"val_loss\": %.6f}\n", vl);
    }
    const int tty = isatty(fileno(stderr));
    const long print_every = o->steps >= 20 ? o->steps / 20 : 1;
    double t_start = lnl_now();
    const long start = o->resume ? o->resume->step : 0;
    lnl_signals_install();
    for (long step = start; step < o->steps; step++) {
        double t0 = lnl_now();
        m->branch_lambda = lnl_branchnorm_lambda(c, step);
        lnl_model_zero_grad(m);
        double loss_sum = 0;
        for (long micro = 0; micro < o->grad_accum; micro++) {
            lnl_loader_next(&train, in, tg);
            loss_sum += lnl_model_forward(m, in, tg, B, T);
            lnl_model_backward(m);
        }
        if (o->grad_accum > 1) {
            float s = 1.0f / (float)o->grad_accum;
            for (int i = 0; i < m->nviews; i++) {
                float *g = m->grads_mem + m->views[i].offset;
                for (size_t k = 0; k < m->views[i].numel; k++) g[k] *= s;
            }
        }
        lnl_dist_reduce_grads(d, m);
        float loss = (float)lnl_dist_mean(d, loss_sum / (double)o->grad_accum);
        double lr = lnl_schedule_lr(&o->sched, step);
        double gnorm = lnl_model_grad_norm(m);
        LnlStepAction act = lnl_monitor_check(&mon, loss, gnorm, res->cause, sizeof res->cause);
        int diag_due = lnl_monitor_due(&mon, step + 1);
        if (diag_due) lnl_monitor_pre_update(&mon, m);
        if (act == LNL_STEP_UPDATE && d && d->zero) lnl_dist_zero_step(d, &opt, m, &o->adam, (float)lr, gnorm);
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
        fprintf(log, "{\"step\": %ld, \"loss\": %.6f, \"lr\": %.6e, \"grad_norm\": %.6e, \"tokens_per_s\": %.1f, "
                     "\"ms\": %.3f%s}\n",
                step + 1, loss, lr, isfinite(gnorm) ? gnorm : -1.0, tps, ms, mfields);
        if (diag_due) lnl_monitor_write_diag(&mon, m, step + 1, gnorm, log);
        if (act == LNL_STEP_DIVERGED) {
            res->diverged = 1;
            res->diverged_step = step + 1;
            fprintf(log, "{\"step\": %ld, \"diverged\": true, \"cause\": \"%s\"}\n", step + 1, res->cause);
            fflush(log);
            if (!o->quiet) fprintf(stderr, "%s", tty ? "\n" : "");
            r = 0;
            goto done;
        }
        int last = step + 1 == o->steps;
        if (have_val && ((o->eval_every > 0 && (step + 1) % o->eval_every == 0) || last)) {
            double vl = lnl_dist_mean(d, lnl_eval_loss(m, &val, o->eval_batches > 0 ? o->eval_batches : -1, NULL));
            res->final_val_loss = vl;
            fprintf(log, "{\"step\": %ld, \"val_loss\": %.6f}\n", step + 1, vl);
        }
        fflush(log);
        int stop = !last && (lnl_signals_pending() || (o->stop_after > 0 && step + 1 >= o->stop_after));
        stop = (int)lnl_dist_max(d, stop); /* a signal may reach one rank only: all stop at this step */
        if (stop || (o->checkpoint_every > 0 && (step + 1) % o->checkpoint_every == 0 && !last)) {
            refs.step = step + 1;
            lnl_monitor_state_pack(&mon, mon_state);
            lnl_dist_zero_gather(d, &opt);
            int cr = root ? lnl_ckpt_save(o->out, m, &refs, log, o->keep_checkpoints, e) : 0;
            lnl_dist_zero_release(d, &opt);
            char what[64];
            snprintf(what, sizeof what, "the checkpoint at step %ld", step + 1);
            if (root_wrote(d, cr, what, e)) goto done;
        }
        if (stop) {
            res->stopped = 1;
            /* the signal may have reached another rank only; rank 0 reports it */
            res->stop_signal = (int)lnl_dist_max(d, lnl_signals_pending());
            if (!o->quiet && tty) fputc('\n', stderr);
            r = 0;
            goto done;
        }
        if (!o->quiet && (tty || (step + 1) % print_every == 0 || last)) {
            char eta[32];
            double elapsed = lnl_now() - t_start;
            fmt_eta(eta, sizeof eta, elapsed / (double)(step + 1 - start) * (double)(o->steps - step - 1));
            fprintf(stderr, "%sstep %ld/%ld | loss %.4f | lr %.2e | grad norm %.3f | %.0f tok/s | ETA %s%s",
                    tty ? "\r" : "", step + 1, o->steps, loss, lr, gnorm, tps, eta, tty ? "   " : "\n");
        }
    }
    if (!o->quiet && tty) fputc('\n', stderr);
    if (lnl_dist_check_params(d, m, e)) goto done;
    int sr = 0;
    if (root) {
        char *path = lnl_path_join(o->out, "model.safetensors");
        sr = lnl_model_save_safetensors(m, path, NULL, NULL, e);
        free(path);
    }
    if (root_wrote(d, sr, "model.safetensors", e)) goto done;
    r = 0;
done:
    if (res->steps_done > 0) {
        qsort(times, (size_t)res->steps_done, sizeof(double), cmp_double);
        double med = times[res->steps_done / 2];
        res->tokens_per_s = (double)N * nproc * (double)o->grad_accum / (med / 1000.0);
    }
    lnl_signals_restore();
    free(mon_state);
    if (r == 0) { /* finished, diverged or stopped: every rank is here */
        int wr = root ? lnl_train_write_result(o->out, o, res, e) : 0;
        if (root_wrote(d, wr, LNL_RESULT_FILE, e)) r = -1;
    }
    if (log) fclose(log);
    free(log_path);
    lnl_opt_free(&opt);
    lnl_monitor_free(&mon);
    lnl_loader_free(&train);
    if (have_val) lnl_loader_free(&val);
    free(in);
    free(tg);
    free(times);
    return r;
}
