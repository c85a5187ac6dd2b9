/* The per-layer metrics: one list of every figure lnlab reports per layer or per block, with its
 * JSON key, how it is indexed, which records carry it, how it is drawn and what it is. The
 * monitor's diag records (log.jsonl), lnlab probe's layer objects, the study's results records and
 * the figures (lnlab plot, the study's report) read their keys, labels and scales here; docs/
 * FORMATS.md ("Per-layer metrics") lists it. It says what a metric is, not how it is measured
 * (src/diag/stats.h, monitor.c, sensitivity.h) nor where a record keeps it (each user's own slot).
 *
 * A new per-layer metric is one line below, its measurement, and its slot in each record that
 * carries it (monitor.c's value table, probe.c's probe_slot, results.c's layer_slot). */
#ifndef LNL_DIAG_METRICS_H
#define LNL_DIAG_METRICS_H

/* ROWS: how a metric is indexed. */
#define LNL_ROWS_STREAM 0 /* entries l = 0..L: 0 the embedding output (after ln_e), l the residual
                           * stream leaving block l (before ln_f); a diag array of L + 1 */
#define LNL_ROWS_BLOCK 1  /* blocks l = 1..L: a diag array of L, entry i = block i + 1; in the
                           * probe's and the study's layer objects entry 0 (no block) is null,
                           * or 0 with LNL_LMF_EMBED_ZERO */

/* FLAGS: the records that carry a metric and how it is shown. */
#define LNL_LMF_DIAG 1        /* an array of the diag record (log.jsonl, lnlab train --diag-every) */
#define LNL_LMF_PROBE 2       /* a key of each object of lnlab probe --json's "layers" */
#define LNL_LMF_STUDY 4       /* a key of each object of a study results record's "layers" */
#define LNL_LMF_HEATMAP 8     /* a layer x step heatmap of the diag records (lnlab plot, the study) */
#define LNL_LMF_BYLAYER 16    /* a column of the study's layer data files and a by-layer figure panel */
#define LNL_LMF_ASKED 32      /* measured only when asked for (lnlab probe --sensitivity): null when
                               * not measured; a number there is an error on reading */
#define LNL_LMF_OMIT 64       /* with ASKED: the key is left out, not null, where there is no value */
#define LNL_LMF_EMBED_ZERO 128 /* a block metric the probe reports as 0 at entry 0 (DESIGN.md) */

/* X(ID, KEY, ROWS, FLAGS, POS, LOG, NAME, LABEL, AXIS, UNIT, DEF)
 *   ID     the enum name LNL_LM_<ID>
 *   KEY    the JSON key, in every record that carries it
 *   ROWS   LNL_ROWS_STREAM or LNL_ROWS_BLOCK
 *   FLAGS  LNL_LMF_*; the list's order is the order of the diag record's arrays
 *   POS    the key's place in a layer object of the probe and of the study's records (after
 *          "layer"; a new metric takes the next number); -1: not there
 *   LOG    1: a magnitude, drawn on a logarithmic scale; 0: may have either sign, linear
 *   NAME   what it is, in titles: a heatmap's "NAME[ of each block] (KEY)", a by-layer figure's
 *          "Name by layer"
 *   LABEL  its panel's title in the by-layer figures (stream metrics: "LABEL (KEY)"), the
 *          figure's for block metrics
 *   AXIS   the by-layer figures' y-axis label
 *   UNIT   what the number measures, with units: the heatmap's colour bar
 *   DEF    the definition (docs/USAGE.md, "log.jsonl records"; DESIGN.md for the probe)
 * NULL where a figure that would use the text does not draw the metric. */
#define LNL_LAYER_METRICS(X)                                                                                         \
    X(HIDDEN_MEAN_ABS, "hidden_mean_abs", LNL_ROWS_STREAM,                                                           \
      LNL_LMF_DIAG | LNL_LMF_PROBE | LNL_LMF_STUDY | LNL_LMF_HEATMAP | LNL_LMF_BYLAYER, 0, 1,                        \
      "hidden-state magnitude", "mean |x|", "mean |x|", "mean |x| of the residual stream",                          \
      "mean of |x| over all B*T*C entries of the residual stream")                                                  \
    X(HIDDEN_VAR, "hidden_var", LNL_ROWS_STREAM, LNL_LMF_DIAG | LNL_LMF_PROBE | LNL_LMF_STUDY | LNL_LMF_BYLAYER, 1, \
      1, "entry-wise variance", "variance over channels", "variance", "variance of x",                              \
      "variance over the C channels of each token vector, averaged over the tokens (entry-wise)")                   \
    X(HIDDEN_VAR_DATA, "hidden_var_data", LNL_ROWS_STREAM,                                                           \
      LNL_LMF_DIAG | LNL_LMF_PROBE | LNL_LMF_STUDY | LNL_LMF_BYLAYER, 2, 1, "data-wise variance",                    \
      "variance over tokens", "variance", "variance of x",                                                           \
      "variance over the B*T tokens of each channel, averaged over the channels (data-wise)")                       \
    X(DX_NORM, "dx_norm", LNL_ROWS_STREAM, LNL_LMF_DIAG | LNL_LMF_PROBE | LNL_LMF_STUDY, 5, 1,                      \
      "gradient of the stream", NULL, NULL, "||dLoss/dx_l||", "L2 norm of the gradient of the loss with respect to the stream x_l") \
    X(ATTN_MEAN_ABS, "attn_mean_abs", LNL_ROWS_BLOCK, LNL_LMF_DIAG, -1, 1, "attention branch magnitude", NULL,      \
      NULL, "mean |f|", "mean |f| of the attention sub-layer's branch output f (after any out-norm, before dt * gate)") \
    X(ATTN_VAR, "attn_var", LNL_ROWS_BLOCK, LNL_LMF_DIAG, -1, 1, "attention branch variance", NULL, NULL,           \
      "variance of f", "entry-wise variance of the attention sub-layer's branch output f")                          \
    X(ATTN_VAR_DATA, "attn_var_data", LNL_ROWS_BLOCK, LNL_LMF_DIAG, -1, 1, "attention branch data-wise variance",  \
      NULL, NULL, "variance of f", "data-wise variance of the attention sub-layer's branch output f")              \
    X(MLP_MEAN_ABS, "mlp_mean_abs", LNL_ROWS_BLOCK, LNL_LMF_DIAG, -1, 1, "MLP branch magnitude", NULL, NULL,        \
      "mean |f|", "mean |f| of the MLP sub-layer's branch output f (after any out-norm, before dt * gate)")         \
    X(MLP_VAR, "mlp_var", LNL_ROWS_BLOCK, LNL_LMF_DIAG, -1, 1, "MLP branch variance", NULL, NULL, "variance of f",  \
      "entry-wise variance of the MLP sub-layer's branch output f")                                                 \
    X(MLP_VAR_DATA, "mlp_var_data", LNL_ROWS_BLOCK, LNL_LMF_DIAG, -1, 1, "MLP branch data-wise variance", NULL,     \
      NULL, "variance of f", "data-wise variance of the MLP sub-layer's branch output f")                           \
    X(GRAD_NORM, "grad_norm", LNL_ROWS_BLOCK,                                                                        \
      LNL_LMF_DIAG | LNL_LMF_PROBE | LNL_LMF_STUDY | LNL_LMF_HEATMAP | LNL_LMF_BYLAYER | LNL_LMF_EMBED_ZERO, 3, 1,   \
      "gradient norm", "gradient norm of the parameters of each block", "L2 norm of the block gradient",            \
      "L2 norm of the block's parameter gradient",                                                                   \
      "L2 norm of the gradient of the mean loss with respect to all parameters of the block (before clipping)")     \
    X(UPDATE_RATIO, "update_ratio", LNL_ROWS_BLOCK, LNL_LMF_DIAG, -1, 1, "update-to-weight ratio", NULL, NULL,      \
      "||theta_after - theta_before|| / ||theta_before||",                                                          \
      "the step's update-to-weight ratio over all parameters of the block; 0 for a skipped step")                   \
    X(UPDATE_RMS, "update_rms", LNL_ROWS_BLOCK, LNL_LMF_DIAG | LNL_LMF_HEATMAP, -1, 1, "update size", NULL, NULL,   \
      "RMS of the step's parameter change",                                                                          \
      "sqrt(mean over the block's parameters of (theta_after - theta_before)^2), parameter units per step")        \
    /* the largest logit of a block can be negative (every key turned away from every query) */                    \
    X(ATTN_LOGIT_MAX, "attn_logit_max", LNL_ROWS_BLOCK, LNL_LMF_DIAG | LNL_LMF_PROBE | LNL_LMF_HEATMAP, 7, 0,        \
      "largest attention logit", NULL, NULL, "max of q.k / sqrt(head dim)",                                          \
      "the block's largest attention logit q . k / sqrt(head_dim) over allowed positions")                          \
    X(SENSITIVITY, "sensitivity", LNL_ROWS_BLOCK,                                                                    \
      LNL_LMF_PROBE | LNL_LMF_STUDY | LNL_LMF_BYLAYER | LNL_LMF_ASKED, 4, 1, "local sensitivity",                   \
      "local sensitivity (spectral norm of dx_l/dx_{l-1})", "spectral norm", "spectral norm of dx_l/dx_{l-1}",      \
      "estimated spectral norm of the block's Jacobian d x_l / d x_{l-1} (power iteration)")                        \
    X(SENSITIVITY_REL_CHANGE, "sensitivity_rel_change", LNL_ROWS_BLOCK,                                              \
      LNL_LMF_PROBE | LNL_LMF_ASKED | LNL_LMF_OMIT, 6, 1, "sensitivity convergence", NULL, NULL,                     \
      "relative change", "relative change of the sensitivity estimate over the last power iteration")

enum {
#define LNL_LM_ENUM_(ID, ...) LNL_LM_##ID,
    LNL_LAYER_METRICS(LNL_LM_ENUM_)
#undef LNL_LM_ENUM_
    LNL_LM_COUNT
};

typedef struct {
    const char *key;
    int rows;  /* LNL_ROWS_* */
    int flags; /* LNL_LMF_* */
    int pos;   /* place in the probe's and the study's layer objects; -1: none */
    int log;
    const char *name, *label, *axis, *unit, *def;
} LnlLayerMetric;

/* Indexed by LNL_LM_<ID>, in the list's order. */
extern const LnlLayerMetric lnl_layer_metrics[LNL_LM_COUNT];

/* The metric of a key, or -1. */
int lnl_layer_metric_find(const char *key);
/* The ids of the metrics that have every flag of `flags`, into ids (room for LNL_LM_COUNT), in the
 * list's order (by_pos 0) or by POS (by_pos 1: the key order of the probe's and the study's layer
 * objects). Returns how many. */
int lnl_layer_metrics_select(int flags, int by_pos, int *ids);
/* Entries of a metric for a model of L blocks in a diag record: L + 1 or L. */
int lnl_layer_metric_len(int id, int L);

#endif
