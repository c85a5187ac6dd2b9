/* The per-layer metrics (metrics.h): the list as a table, and lookups in it. */
#include "metrics.h"

#include <string.h>

const LnlLayerMetric lnl_layer_metrics[LNL_LM_COUNT] = {
#define LNL_LM_ROW_(ID, KEY, ROWS, FLAGS, POS, LOG, NAME, LABEL, AXIS, UNIT, DEF) \
    {KEY, ROWS, FLAGS, POS, LOG, NAME, LABEL, AXIS, UNIT, DEF},
    LNL_LAYER_METRICS(LNL_LM_ROW_)
#undef LNL_LM_ROW_
};

int lnl_layer_metric_find(const char *key) {
    for (int i = 0; i < LNL_LM_COUNT; i++)
        if (!strcmp(lnl_layer_metrics[i].key, key)) return i;
    return -1;
}

int lnl_layer_metrics_select(int flags, int by_pos, int *ids) {
    int n = 0;
    for (int i = 0; i < LNL_LM_COUNT; i++)
        if ((lnl_layer_metrics[i].flags & flags) == flags && (!by_pos || lnl_layer_metrics[i].pos >= 0)) ids[n++] = i;
    if (by_pos) /* insertion sort: a handful of entries */
        for (int i = 1; i < n; i++)
            for (int j = i; j > 0 && lnl_layer_metrics[ids[j]].pos < lnl_layer_metrics[ids[j - 1]].pos; j--) {
                int t = ids[j];
                ids[j] = ids[j - 1];
                ids[j - 1] = t;
            }
    return n;
}

int lnl_layer_metric_len(int id, int L) { return lnl_layer_metrics[id].rows == LNL_ROWS_STREAM ? L + 1 : L; }
