/* The probe of a model on one batch: everything `lnlab probe` reports (the model and batch, the
 * per-layer figures, local sensitivity when asked, the growth fits in depth), the run that measures
 * it, and its JSON object (DESIGN.md, docs/USAGE.md) in both directions, whose layer objects take
 * their keys, order and nulls from the per-layer metrics (metrics.h). Not the loading of a model
 * or of a batch, and not the table form: src/cli/cmd_probe.c. */
#ifndef LNL_PROBE_H
#define LNL_PROBE_H

#include <stdint.h>

#include "growth.h"
#include "stats.h"

typedef struct {
    int sensitivity;    /* measure each block's local sensitivity (src/diag/sensitivity.h) */
    int sens_iters;     /* power iterations on J^T J per block */
    uint64_t sens_seed; /* seed of the power iteration's random start */
} LnlProbeOptions;

/* One probe. Entry l = 0..L of the per-layer arrays: 0 is the embedding output, l the stream
 * leaving block l (LnlProbe). Figures that are not finite are NAN; the JSON writes them as null. */
typedef struct {
    /* the model and the batch */
    double loss;                                    /* mean loss of the batch */
    char placement[sizeof(((LnlConfig *)0)->preset)]; /* the config's preset */
    char run_id[sizeof(((LnlModel *)0)->run_id)];     /* "" when the file names none (JSON null) */
    char norm[16];                                  /* the norm kind's name (LNL_NORMS) */
    double dt;
    int batch, seq;
    LnlProbe fig;    /* hidden-state, gradient and attention-logit figures, and the output logits */
    double *dx_norm; /* (fig.n) ||dLoss / d stream leaving block l|| (LnlModel.dx_norm) */
    /* local sensitivity: sigma == NULL unless measured; entry 0 is NAN (no block) */
    int sens_iters;
    double *sigma, *rel_change; /* (fig.n) LnlSensResult of block l */
    /* hidden_mean_abs and hidden_var against l = 0..L; the JSON carries no rss, so rss is NAN */
    LnlGrowth growth;
} LnlProbeResult;

/* The batch must be made of the model's tokens: token k of the batch is in[k] for k < B*T, then
 * tg[k - 1] (a batch of a shard: tg is in shifted by one, so only its last token is new). */
int lnl_probe_check_tokens(const LnlModel *m, const int32_t *in, const int32_t *tg, int B, int T, LnlErr *e);

/* One forward with targets (recording attention logits) and one backward of m on the batch
 * in/tg (B x T each), then the figures, the sensitivity if o->sensitivity, and the growth fits.
 * Allocates m's activations for B x T; leaves m's parameters unchanged and its gradients those of
 * the batch. On error (tokens outside the vocabulary, a batch the model cannot take) r holds
 * nothing to free. */
int lnl_probe_run(LnlProbeResult *r, LnlModel *m, const int32_t *in, const int32_t *tg, int B, int T,
                  const LnlProbeOptions *o, LnlErr *e);

/* Per-layer metric `metric` (src/diag/metrics.h, a probe metric) of entry l = 0..fig.n-1 as r keeps
 * it; NAN where it keeps none (sensitivity not measured, a metric the probe does not report). */
double lnl_probe_result_value(const LnlProbeResult *r, int metric, int l);

/* The JSON object of `lnlab probe --json`, on one line without a newline. Caller frees. */
char *lnl_probe_result_to_json(const LnlProbeResult *r);

/* Reads that object back, strictly: a missing field, or one of the wrong type, is an error naming
 * it (`what` names the source in messages). On error r holds nothing to free. The figures come
 * back to the JSON's precision (cJSON prints 15 significant digits when they read back within
 * DBL_EPSILON of the value, else 17), so writing what was read gives the same text again. */
int lnl_probe_result_from_json(LnlProbeResult *r, const char *text, const char *what, LnlErr *e);

void lnl_probe_result_free(LnlProbeResult *r);

#endif
