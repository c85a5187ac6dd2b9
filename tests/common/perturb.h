/* Test helper: moves a freshly initialized model's parameters away from their trivial init
 * values (gains 1, biases 0, gates 0, omegas 1) so that gradient and reference checks see every
 * parameter act. Header-only; used by the unit tests and the reference dump tool. */
#ifndef LNL_TEST_PERTURB_H
#define LNL_TEST_PERTURB_H

#include "model/model.h"

static inline void lnl_test_perturb(LnlModel *m, uint64_t seed) {
    LnlRng r;
    lnl_rng_seed(&r, seed ^ 0x5eedULL);
    for (int i = 0; i < m->nviews; i++) {
        const LnlTensorView *v = &m->views[i];
        float *p = m->params_mem + v->offset;
        const char *nm = v->name;
        int is_gain = strstr(nm, "ln_") != NULL || strstr(nm, "_norm.") != NULL;
        int is_bias = strstr(nm, ".bias") != NULL;
        int is_skip = strstr(nm, "_skip") != NULL;
        int is_gate = strstr(nm, "gate") != NULL;
        for (size_t k = 0; k < v->numel; k++) {
            double u = lnl_rng_uniform(&r) - 0.5;
            if (is_gate) p[k] = (float)(0.4 + 0.4 * u);
            else if (is_skip) p[k] = (float)(1.3 + 0.6 * u);
            else if (is_gain && is_bias) p[k] = (float)(0.2 * u);
            else if (is_gain) p[k] = (float)(1.0 + 0.4 * u);
            else if (is_bias) p[k] = (float)(0.04 * u);
            else p[k] += (float)(0.02 * u);
        }
    }
}

#endif
