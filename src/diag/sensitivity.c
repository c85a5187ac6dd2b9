/* Local sensitivity by power iteration with exact JVP / VJP through one block (sensitivity.h).
 * The tangent pass is block.c's, written beside the forward and backward; test_sensitivity.c checks
 * it against central differences of the real forward for every preset, and against the backward
 * by u . (J v) == (J^T u) . v. */
#include "sensitivity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/kernels.h"

void lnl_sens_work_init(LnlSensWork *w, const LnlModel *m) {
    const size_t n = (size_t)m->B * (size_t)m->T * (size_t)m->cfg.n_embd;
    memset(w, 0, sizeof *w);
    w->n = n;
    /* the power iteration's 3 buffers of n, then the tangent pass's */
    w->mem = lnl_calloc(3 * n + lnl_block_tangent_floats(n), sizeof(float));
    w->v = w->mem;
    w->jv = w->mem + n;
    w->jtjv = w->mem + 2 * n;
    lnl_block_tangent_place(&w->t, w->mem + 3 * n, n);
}

void lnl_sens_work_free(LnlSensWork *w) {
    free(w->mem);
    memset(w, 0, sizeof *w);
}

void lnl_block_jvp(const LnlModel *m, LnlSensWork *w, int l, const float *v, float *out) {
    lnl_block_tangent(m, &w->t, l, v, out);
}

static double norm2(const float *x, size_t n) { return sqrt(lnl_sumsq(x, n)); }

static void scale_to_unit(float *x, size_t n, double nrm) {
    if (nrm > 0) lnl_axpby(x, (float)(1.0 / nrm), x, 0.0f, x, n);
}

LnlSensResult lnl_block_sensitivity(LnlModel *m, LnlSensWork *w, int l, int iters, uint64_t seed) {
    const size_t n = w->n;
    LnlRng rng;
    lnl_rng_seed(&rng, seed ^ (0x9E3779B97F4A7C15ULL * (uint64_t)(l + 1)));
    for (size_t i = 0; i < n; i++) w->v[i] = (float)lnl_rng_normal(&rng);
    scale_to_unit(w->v, n, norm2(w->v, n));
    LnlSensResult r = {0.0, 0.0};
    double prev = NAN;
    for (int it = 0; it <= iters; it++) {
        lnl_block_jvp(m, w, l, w->v, w->jv);
        r.sigma = norm2(w->jv, n);
        if (it == iters) break;
        prev = r.sigma;
        lnl_model_block_vjp(m, l, w->jv, w->jtjv);
        double z = norm2(w->jtjv, n);
        if (!(z > 0) || !isfinite(z)) break; /* J v = 0 (sigma 0) or a non-finite model */
        memcpy(w->v, w->jtjv, n * sizeof(float));
        scale_to_unit(w->v, n, z);
    }
    r.rel_change = r.sigma > 0 && isfinite(prev) ? fabs(r.sigma - prev) / r.sigma : 0.0;
    return r;
}
