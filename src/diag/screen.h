/* The stability screen of a placement (`lnlab screen`, docs/SCREEN.md): what the spec says about
 * the residual stream's bound, read from the flags alone; and, on a model (fresh or trained), the
 * forward and backward figures behind it as the block weights and inputs are scaled up, at dt 1
 * and at the model's dt. It trains nothing; the model's parameters, dt and BranchNorm strength
 * are as they were when it returns (its activations and gradients are not). */
#ifndef LNL_SCREEN_H
#define LNL_SCREEN_H

#include <stdint.h>

#include "../model/model.h"
#include "growth.h"

/* The scales of the measurements: weight matrices of every block times s, a block's input
 * times a. */
#define LNL_SCREEN_NS 5
#define LNL_SCREEN_WEIGHT_SCALES {1.0, 2.0, 4.0, 8.0, 16.0}
#define LNL_SCREEN_NA 4
#define LNL_SCREEN_INPUT_SCALES {1.0, 4.0, 16.0, 64.0}

/* Verdict thresholds (docs/SCREEN.md states them). A ratio r of a figure at the largest scale
 * over the smallest scale is "grows" when r > GROW, "shrinks" when r < 1 / GROW, else
 * "invariant"; the forward's ratio is the last layer's hidden_mean_abs at s = 16 over s = 1, the
 * sensitivity's the largest sigma of the probed blocks at a = 64 (s = 16) over a = 1 (s = 1).
 * The gradient ratio (block 1's parameter gradient norm over block L's) is "vanishing" below
 * VANISH. */
#define LNL_SCREEN_FWD_GROW 2.0
#define LNL_SCREEN_SENS_GROW 1.25
#define LNL_SCREEN_VANISH 0.5

/* ---- 1. from the spec ---- */

/* What the update a sub-layer adds to the stream is: normalized (an out-norm's output, bounded by
 * its gain times dt), renormalized with the stream (a post-norm after the add: Post-LN style),
 * or unnormalized (scales with the branch's weights, a ReZero gate's included). */
typedef enum { LNL_UPDATE_NORMALIZED = 0, LNL_UPDATE_RENORMALIZED = 1, LNL_UPDATE_UNNORMALIZED = 2 } LnlUpdateKind;
/* What follows for the stream's magnitude: bounded independently of depth (every layer resets
 * the stream through a norm), at most linear in depth (normalized updates accumulate), no
 * weight-independent bound, or a combination the rules do not cover. */
typedef enum { LNL_BOUND_BOUNDED = 0, LNL_BOUND_LINEAR = 1, LNL_BOUND_NONE = 2, LNL_BOUND_NOT_COVERED = 3 } LnlBoundKind;

const char *lnl_update_kind_name(LnlUpdateKind k);
const char *lnl_bound_kind_name(LnlBoundKind k);

typedef struct {
    int nsub;                 /* 2L */
    uint8_t *kind;            /* (2L) LnlUpdateKind of sub-layer k = 2l + s */
    int count[3];             /* sub-layers of each kind */
    LnlBoundKind bound;
    char why[192];            /* the sub-layer or rule that decided the bound */
    char dt_effect[160];      /* how dt scales the bound */
} LnlScreenSpec;

/* Reads the spec of c; no computation on weights. Free with lnl_screen_spec_free. */
void lnl_screen_spec(const LnlConfig *c, LnlScreenSpec *s);
void lnl_screen_spec_free(LnlScreenSpec *s);

/* The bound the spec gives on hidden_mean_abs of the stream leaving each block, for model m's
 * norm gains and biases, dt, gates and skips: B[0] = x0 (the embedding output's measured
 * hidden_mean_abs), then per sub-layer by the triangle inequality on mean |.| (docs/SCREEN.md):
 * a norm's output is at most max|gain| + max|bias|, an out-normed update at most dt |g| times
 * that, a post-norm resets the bound. B[l] = INFINITY from the first unnormalized update of a
 * sub-layer without a post-norm. B has L + 1 entries. */
void lnl_screen_bound(const LnlModel *m, double x0, double *B);

/* ---- 2-4. measured ---- */

typedef struct {
    int B, T;          /* the batch: token i = lnl_screen_token(i, V), rows of T + 1 as in llm.c */
    int sens_iters;    /* power iterations per sensitivity */
    uint64_t sens_seed;
} LnlScreenOpts;

/* The screen's input tokens, fixed so that a reference can rebuild them:
 * token i = ((i * 2654435761) mod 2^32) mod V. */
int32_t lnl_screen_token(long i, int V);

#define LNL_SCREEN_MAX_BLOCKS 2
typedef struct {
    double dt;
    /* forward at each weight scale s */
    double *mean_abs[LNL_SCREEN_NS]; /* (L + 1) hidden_mean_abs of entry l = 0..L */
    double *bound[LNL_SCREEN_NS];    /* (L + 1) lnl_screen_bound; INFINITY where there is none */
    LnlGrowth growth[LNL_SCREEN_NS];
    int within_bound[LNL_SCREEN_NS]; /* every entry <= its bound (1e-5 relative for rounding) */
    double fwd_ratio;                /* last layer's mean_abs at s = 16 / s = 1 */
    int fwd_verdict;                 /* +1 grows, 0 invariant, -1 shrinks */
    /* backward: sigma of the probed blocks */
    int nblocks;
    int block[LNL_SCREEN_MAX_BLOCKS];                     /* 1-based */
    double sigma_a[LNL_SCREEN_MAX_BLOCKS][LNL_SCREEN_NA]; /* input times a, weights at s = 1 */
    double sigma_s[LNL_SCREEN_MAX_BLOCKS][LNL_SCREEN_NS]; /* weights times s, input at a = 1 */
    double sens_a_ratio, sens_s_ratio;
    int sens_a_verdict, sens_s_verdict;                   /* +1 grows, 0 invariant, -1 shrinks */
    /* gradients of the batch's mean loss: block 1 / block L */
    double grad_ratio_s[LNL_SCREEN_NS]; /* parameter gradient norms at each weight scale s */
    double loss, grad_ratio, dx_ratio;  /* at init (s = 1): loss; parameter gradient norms; stream gradients */
    int vanishing;
} LnlScreenRun;

typedef struct {
    int L;
    int ndt;              /* 1 when the model's dt is 1, else 2 */
    LnlScreenRun run[2];  /* run[0]: dt 1; run[1]: the model's dt */
} LnlScreenMeasured;

/* Runs the measurements on m (allocates its activations for opts B x T). Returns 0, or -1 with e
 * set (a batch that does not fit the model). */
int lnl_screen_measure(LnlModel *m, const LnlScreenOpts *o, LnlScreenMeasured *r, LnlErr *e);
void lnl_screen_measured_free(LnlScreenMeasured *r);

/* "grows", "invariant", "shrinks" for a verdict of +1, 0, -1. */
const char *lnl_screen_trend_name(int v);

#endif
