/* The training monitor: what the training loop asks after each step's backward. It decides
 * whether the step's update is applied, skipped as a spike, or whether the run has diverged,
 * keeps the running windows of the loss and gradient-norm z-scores, and every K steps writes a
 * per-layer diagnostics record to RUN/log.jsonl. Formats and definitions: docs/USAGE.md,
 * "Training diagnostics". It reads only what the model already keeps (activations of the last
 * forward, the attention-logit maxima that forward recorded if told to, gradients, dx_norm of the
 * last backward); it never runs the model.
 *
 * Use per optimizer step (step is 1-based):
 *     m->diag_forward = lnl_monitor_due_forward(mon, step);
 *     ... forward and backward ...
 *     act = lnl_monitor_check(mon, loss, grad_norm, cause, n);
 *     if (due = lnl_monitor_due(mon, step)) lnl_monitor_pre_update(mon, m);
 *     if (act == LNL_STEP_UPDATE) ... optimizer step ...
 *     if (due) lnl_monitor_post_update(mon, m);
 *     ... the step record, with lnl_monitor_step_fields ...
 *     if (due) lnl_monitor_write_diag(mon, m, step, log);
 */
#ifndef LNL_MONITOR_H
#define LNL_MONITOR_H

#include <stdio.h>

#include "../model/model.h"

#define LNL_DIAG_EVERY_DEFAULT 10
#define LNL_ZSCORE_WINDOW_DEFAULT 128

typedef struct {
    long every;          /* a diagnostics record every `every` steps; 0 = none */
    int window;          /* steps in the z-score window (>= 2) */
    double skip_z;       /* skip the update when the loss or grad-norm z-score exceeds this; 0 = never */
    double diverge_loss; /* diverged when the loss exceeds its running minimum by more than this
                          * (nats); 0 = only non-finite values count */
} LnlMonitorOpts;

void lnl_monitor_opts_default(LnlMonitorOpts *o);

/* The last `cap` values pushed, for a z-score against them. */
typedef struct {
    double *v; /* (cap) ring buffer */
    int cap, n, head;
} LnlWindow;

/* z = (x - mean) / std over the window (population std); NAN until the window holds cap values;
 * with std = 0: 0 if x equals the mean, else +-INFINITY. */
double lnl_window_z(const LnlWindow *w, double x);
void lnl_window_push(LnlWindow *w, double x);

typedef enum { LNL_STEP_UPDATE = 0, LNL_STEP_SKIP = 1, LNL_STEP_DIVERGED = 2 } LnlStepAction;

typedef struct {
    LnlMonitorOpts o;
    /* decision state: what a resumed run must restore (lnl_monitor_state_*) */
    LnlWindow loss_w, gnorm_w; /* values of applied steps only: a skipped spike does not widen them */
    double min_loss;           /* running minimum of the training loss; INFINITY before step 1 */
    long skipped;              /* updates skipped so far */
    /* the last checked step */
    double loss_z, gnorm_z;    /* NAN while the window fills */
    LnlStepAction last;
    /* diagnostics of a due step (allocated only if o.every > 0) */
    int L;
    float *before;        /* (num_alloc) parameters before the update */
    double *grad_norm;    /* (L + 1): entry 0 the non-block tensors (wte, wpe, ln_e, ln_f), l = block l */
    double *update_ratio; /* (L + 1): ||theta_after - theta_before|| / ||theta_before|| per group */
    double *update_rms;   /* (L + 1): sqrt(mean (theta_after - theta_before)^2) over the group's parameters */
} LnlMonitor;

void lnl_monitor_init(LnlMonitor *mon, const LnlModel *m, const LnlMonitorOpts *o);
void lnl_monitor_free(LnlMonitor *mon);

/* Classifies a step from its (accumulated) mean loss and global gradient norm before clipping:
 * DIVERGED if either is NaN/Inf or the loss exceeds min_loss + diverge_loss; else SKIP if a
 * z-score exceeds skip_z; else UPDATE. Fills cause (a short sentence) on DIVERGED. */
LnlStepAction lnl_monitor_check(LnlMonitor *mon, double loss, double grad_norm, char *cause, size_t n);

/* Whether step gets a diagnostics record: every `every` steps, and at the step that diverged
 * (its figures show where the blow-up is). Call after lnl_monitor_check. */
int lnl_monitor_due(const LnlMonitor *mon, long step);
/* Whether the forward passes of step must record what only a forward can give (the attention
 * logit maxima: LnlModel.diag_forward): the steps due by the schedule, known before the forward.
 * The record of a step due only because it diverged has attn_logit_max null. */
int lnl_monitor_due_forward(const LnlMonitor *mon, long step);
/* Per-group gradient norms (before clipping) and a copy of the parameters. */
void lnl_monitor_pre_update(LnlMonitor *mon, const LnlModel *m);
/* Update-to-weight ratios and update RMS from the copy (0 for a skipped step). */
void lnl_monitor_post_update(LnlMonitor *mon, const LnlModel *m);

/* The extra fields of the step record of the last checked step, starting with ", ":
 * `"loss_z": z, "grad_norm_z": z` (null while undefined) and `"skipped": true` when skipped. */
void lnl_monitor_step_fields(const LnlMonitor *mon, char *buf, size_t n);
/* One line {"step": step, "diag": {...}} with the per-layer figures of the last forward/backward
 * (an array for each metric of src/diag/metrics.h with LNL_LMF_DIAG, in the list's order), its
 * output-logit figures (src/diag/stats.h) and the non-block group's gradient norm, update ratio and
 * update RMS; grad_norm is the global norm before clipping. */
void lnl_monitor_write_diag(const LnlMonitor *mon, const LnlModel *m, long step, double grad_norm, FILE *log);

/* Decision state as doubles, for a resumable run: count, then pack/unpack. The layout is
 * [min_loss, skipped, loss_w (n, head, cap values), gnorm_w (n, head, cap values)]; unpack
 * checks the window size and returns -1 if it differs. */
size_t lnl_monitor_state_count(const LnlMonitor *mon);
void lnl_monitor_state_pack(const LnlMonitor *mon, double *out);
int lnl_monitor_state_unpack(LnlMonitor *mon, const double *in, size_t count);

#endif
