/* Hidden-state statistics of the residual stream, read from activations the model keeps.
 * Definitions (DESIGN.md, lnlab probe): mean_abs = mean |x| over all N*C entries; var_entry =
 * variance over the C channels of each token vector, averaged over tokens; var_data = variance
 * over the N tokens of each channel, averaged over channels. Variances are biased (divide by
 * C or N), accumulated in double. */
#ifndef LNL_STATS_H
#define LNL_STATS_H

#include "../model/model.h"

typedef struct {
    double mean_abs, var_entry, var_data;
} LnlHiddenStats;

LnlHiddenStats lnl_hidden_stats(const float *x, int N, int C);

/* Output-logit figures of the last forward with targets (as LnlModel.loss; a backward keeps
 * them), from the per-row maximum and partition sum the cross-entropy saved, so nothing is
 * recomputed: logit_max = the largest logit z over the N = B*T rows and V classes; log_z_mean =
 * the mean over the N rows of log sum_v exp(z_v), in nats. NAN before any activations exist.
 * Early-warning signals of output-logit divergence (Wortsman et al. 2023). */
typedef struct {
    double logit_max, log_z_mean;
} LnlLogitStats;

LnlLogitStats lnl_logit_stats(const LnlModel *m);

/* Per-layer figures of `lnlab probe`: entry 0 is the embedding output (after ln_e if any),
 * entry l = 1..L the stream leaving block l (before ln_f). grad_norm[0] is 0. attn_logit_max[l] is
 * block l's largest attention logit (LnlModel.attn_logit_max; NAN for entry 0, which has no
 * attention, and unless the forward ran with diag_forward). */
typedef struct {
    int n; /* L + 1 */
    LnlHiddenStats *hidden;  /* (n) */
    double *grad_norm;       /* (n) */
    double *attn_logit_max;  /* (n) */
    LnlLogitStats logits;    /* of the whole model */
} LnlProbe;

/* Fills a probe from the model's last forward (and backward, for grad_norm). */
void lnl_probe_collect(const LnlModel *m, LnlProbe *p);
void lnl_probe_free(LnlProbe *p);

#endif
