/* Test helper: moves a freshly initialized model's parameters away from their trivial init
 * values (gains 1, biases 0, gates 0, omegas 1; DyT / Derf's a by 20% about its init, their s
 * about 0, the one-plus gain's w about 0) so that gradient and reference checks see every
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
        int is_alpha = strstr(nm, ".alpha") != NULL, is_shift = strstr(nm, ".shift") != NULL;
        int is_escale = strcmp(nm, "embed_scale") == 0;
        const double gain0 = m->cfg.norm_gain == LNL_GAIN_ONE_PLUS ? 0.0 : 1.0; /* the w of a gain 1 */
        for (size_t k = 0; k < v->numel; k++) {
            double u = lnl_rng_uniform(&r) - 0.5;
            if (is_alpha || is_escale) p[k] = (float)(p[k] * (1.0 + 0.4 * u)); /* DyT / Derf's a, about its init */
            else if (is_shift) p[k] = (float)(0.2 * u);
            else if (is_gate) p[k] = (float)(0.4 + 0.4 * u);
            else if (is_skip) p[k] = (float)(1.3 + 0.6 * u);
            else if (is_gain && is_bias) p[k] = (float)(0.2 * u);
            else if (is_gain) p[k] = (float)(gain0 + 0.4 * u);
            else if (is_bias) p[k] = (float)(0.04 * u);
            else p[k] += (float)(0.02 * u);
        }
    }
}

#endif
