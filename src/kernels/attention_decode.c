/* Attention of one new position over a KV cache: the decode step of generation (model.c's
 * decode mode). Same math as the last row of lnl_attention_forward, without a saved att matrix
 * and without a backward (generation never trains). One plain version, the reference's, which the
 * cpu backend uses too: it costs O(npos * C) per token, small next to the matmuls of the same step. */
#include <assert.h>
#include <math.h>

#include "kernels_internal.h"

void lnl_ref_attention_decode(float *out, float *scores, const float *q, const float *kcache, const float *vcache,
                              int npos, int C, int NH, float softcap) {
    assert(npos >= 1 && NH >= 1 && C % NH == 0);
    const int hs = C / NH;
    const double sc = 1.0 / sqrt((double)hs);
    for (int h = 0; h < NH; h++) {
        const float *qh = q + (size_t)h * hs;
        float mx = -INFINITY;
        for (int t = 0; t < npos; t++) {
            const float *k = kcache + (size_t)t * C + (size_t)h * hs;
            double d = 0.0;
            for (int i = 0; i < hs; i++) d += (double)qh[i] * k[i];
            scores[t] = (float)lnl_softcap(d * sc, softcap);
            if (scores[t] > mx) mx = scores[t];
        }
        double z = 0.0;
        for (int t = 0; t < npos; t++) {
            scores[t] = (float)exp((double)scores[t] - mx);
            z += scores[t];
        }
        const float iz = (float)(1.0 / z);
        float *o = out + (size_t)h * hs;
        for (int i = 0; i < hs; i++) o[i] = 0.0f;
        /* position-major so the cache is read row by row */
        for (int t = 0; t < npos; t++) {
            const float *v = vcache + (size_t)t * C + (size_t)h * hs;
            const float w = scores[t] * iz;
            for (int i = 0; i < hs; i++) o[i] += w * v[i];
        }
    }
}
