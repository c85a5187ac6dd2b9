/* Picking the next token from logits: greedy (temperature 0), or softmax sampling at a
 * temperature, optionally restricted to the top-k logits, from a seeded RNG. Deterministic:
 * the same logits, settings and seed give the same tokens on every machine. */
#ifndef LNL_SAMPLE_H
#define LNL_SAMPLE_H

#include <stdint.h>

#include "../common/rng.h"
#include "../common/util.h"

typedef struct {
    int V;             /* logits considered: ids 0..V-1 */
    float temperature; /* 0: argmax; > 0: p_i ~ exp(logit_i / temperature) */
    int top_k;         /* keep the top_k largest logits; 0 (or >= V): all */
    LnlRng rng;
    struct LnlSampleCand *cand; /* (V) scratch */
} LnlSampler;

int lnl_sampler_init(LnlSampler *s, int V, float temperature, int top_k, uint64_t seed, LnlErr *e);
void lnl_sampler_free(LnlSampler *s);
/* The next token for logits (at least V entries). Greedy takes the largest logit, the lowest id
 * among equals, and draws nothing from the RNG; sampling draws exactly one uniform number.
 * Ranking (for argmax and top-k) is by logit, then by lower id, so ties break the same way
 * everywhere and top_k = 1 picks the greedy token. Returns -1 if no logit is finite. */
int32_t lnl_sampler_next(LnlSampler *s, const float *logits);

#endif
