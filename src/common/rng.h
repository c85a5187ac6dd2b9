/* Deterministic random numbers: xoshiro256** seeded through splitmix64. The state is four
 * words so a run can save and restore it exactly. */
#ifndef LNL_RNG_H
#define LNL_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} LnlRng;

static inline uint64_t lnl_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline void lnl_rng_seed(LnlRng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = lnl_splitmix64(&x);
}

static inline uint64_t lnl_rng_u64(LnlRng *r) {
    uint64_t *s = r->s;
    uint64_t x = s[1] * 5;
    uint64_t result = ((x << 7) | (x >> 57)) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double lnl_rng_uniform(LnlRng *r) { return (double)(lnl_rng_u64(r) >> 11) * 0x1.0p-53; }

/* Standard normal (Box-Muller; one value per call, the second is discarded for simplicity). */
static inline double lnl_rng_normal(LnlRng *r) {
    double u1 = lnl_rng_uniform(r), u2 = lnl_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Uniform integer in [0, n). */
static inline uint64_t lnl_rng_below(LnlRng *r, uint64_t n) { return n ? lnl_rng_u64(r) % n : 0; }

#endif
