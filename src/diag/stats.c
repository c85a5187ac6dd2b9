/* Hidden-state statistics and the per-layer probe figures. */
#include "stats.h"

#include <math.h>
#include <stdlib.h>

LnlHiddenStats lnl_hidden_stats(const float *x, int N, int C) {
    LnlHiddenStats s = {0, 0, 0};
    double *csum = lnl_calloc((size_t)C, sizeof(double)), *csq = lnl_calloc((size_t)C, sizeof(double));
    double abs_sum = 0, entry_var_sum = 0;
    for (int n = 0; n < N; n++) {
        const float *row = x + (size_t)n * C;
        double rs = 0, rq = 0;
        for (int c = 0; c < C; c++) {
            double v = row[c];
            abs_sum += fabs(v);
            rs += v;
            rq += v * v;
            csum[c] += v;
            csq[c] += v * v;
        }
        double mean = rs / C;
        entry_var_sum += rq / C - mean * mean;
    }
    double data_var_sum = 0;
    for (int c = 0; c < C; c++) {
        double mean = csum[c] / N;
        data_var_sum += csq[c] / N - mean * mean;
    }
    free(csum);
    free(csq);
    s.mean_abs = abs_sum / ((double)N * C);
    s.var_entry = entry_var_sum / N;
    s.var_data = data_var_sum / C;
    return s;
}

LnlLogitStats lnl_logit_stats(const LnlModel *m) {
    LnlLogitStats s = {NAN, NAN};
    const int N = m->B * m->T;
    if (!m->xent_max || N < 1) return s;
    /* of the logits the softmax sees: after the softcap, when the model has one */
    double mx = -INFINITY, lz = 0;
    for (int r = 0; r < N; r++) {
        if (m->xent_max[r] > mx || isnan(m->xent_max[r])) mx = m->xent_max[r];
        lz += lnl_xent_log_z(m->xent_max[r], m->xent_inv_z[r]);
    }
    s.logit_max = mx;
    s.log_z_mean = lz / N;
    return s;
}

void lnl_probe_collect(const LnlModel *m, LnlProbe *p) {
    const int L = m->cfg.n_layer, N = m->B * m->T, C = m->cfg.n_embd;
    p->n = L + 1;
    p->hidden = lnl_calloc((size_t)p->n, sizeof(LnlHiddenStats));
    p->grad_norm = lnl_calloc((size_t)p->n, sizeof(double));
    p->attn_logit_max = lnl_calloc((size_t)p->n, sizeof(double));
    for (int l = 0; l <= L; l++) {
        p->hidden[l] = lnl_hidden_stats(m->stream[2 * l], N, C);
        p->grad_norm[l] = l == 0 ? 0.0 : lnl_model_layer_grad_norm(m, l - 1);
        p->attn_logit_max[l] = l == 0 ? NAN : m->attn_logit_max[l - 1];
    }
    p->logits = lnl_logit_stats(m);
}

void lnl_probe_free(LnlProbe *p) {
    free(p->hidden);
    free(p->grad_norm);
    free(p->attn_logit_max);
    p->hidden = NULL;
    p->grad_norm = NULL;
    p->attn_logit_max = NULL;
}
