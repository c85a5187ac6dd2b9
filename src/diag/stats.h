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

/* Per-layer figures of `lnlab probe`: entry 0 is the embedding output (after ln_e if any),
 * entry l = 1..L the stream leaving block l (before ln_f). grad_norm[0] is 0. */
typedef struct {
    int n; /* L + 1 */
    LnlHiddenStats *hidden; /* (n) */
    double *grad_norm;      /* (n) */
} LnlProbe;

/* Fills a probe from the model's last forward (and backward, for grad_norm). */
void lnl_probe_collect(const LnlModel *m, LnlProbe *p);
void lnl_probe_free(LnlProbe *p);

#endif
