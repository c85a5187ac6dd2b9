/* Decoding tests: the KV-cache decode step and the prompt prefill against the full forward (and
 * each other) for every preset and both norm kinds, the decode attention kernel against the
 * reference attention, and the sampler (greedy, top-k, temperature, repeatability). */
#include "harness.h"

#include "common/perturb.h"
#include "model/model.h"
#include "train/sample.h"

static const char *presets[] = {"post", "pre", "peri", "b2t", "mix", "lns", "hybrid", "hybrid*",
                                "deepnorm", "admin", "branchnorm", "rezero", "olmo2", "gemma2"};
#define NPRESETS (int)(sizeof presets / sizeof presets[0])
#define BN_LAMBDA 0.3f
#define ATOL 1e-5
#define RTOL 1e-5

#define SOFTCAP 1.0f /* the logit softcap: small enough that the small models' logits reach into tanh's bend */

/* extras: a set of EX_* */
enum { EX_EMBED = 1, EX_SOFTCAP = 2, EX_QK_HEAD = 4, EX_QK_FULL = 8, EX_NEW = 16, EX_LOGITCAP = 32 };

static int small_model(LnlModel *m, const char *preset, LnlNormKind kind, float dt, int extras, int T) {
    LnlConfig c;
    lnl_config_default(&c);
    c.n_layer = 4;
    c.n_head = 2;
    c.n_embd = 16;
    c.n_positions = T;
    c.vocab_size = 29;
    c.init_std = 0.2f; /* activations of order 1, so every norm and gate matters */
    c.norm = kind;
    c.dt = dt;
    LnlErr e;
    if (lnl_config_preset(&c, preset, &e)) {
        CHECK(0, "preset %s: %s", preset, e.msg);
        return -1;
    }
    c.embed_norm = (uint8_t)(extras & EX_EMBED);
    c.embed_scale = (uint8_t)(extras & EX_EMBED);
    c.attn_softcap = extras & EX_SOFTCAP ? 0.7f : 0.0f; /* below these scores: the cap bends them */
    if (extras & (EX_QK_HEAD | EX_QK_FULL))
        lnl_config_set_qk_norm(&c, extras & EX_QK_FULL ? LNL_QK_NORM_FULL : LNL_QK_NORM_HEAD);
    /* EX_NEW: the learned embedding scale (instead of sqrt(C)) and the one-plus gain */
    if (extras & EX_NEW) {
        c.embed_scale = 0;
        c.embed_scale_learned = 1;
        c.norm_gain = LNL_GAIN_ONE_PLUS;
    }
    c.logit_softcap = extras & EX_LOGITCAP ? SOFTCAP : 0.0f;
    if (lnl_model_create(m, &c, &e)) {
        CHECK(0, "%s", e.msg);
        return -1;
    }
    lnl_model_init_weights(m, 7);
    lnl_test_perturb(m, 11);
    m->branch_lambda = BN_LAMBDA;
    return 0;
}

static void random_tokens(int32_t *tok, int n, int V, uint64_t seed) {
    LnlRng r;
    lnl_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) tok[i] = (int32_t)lnl_rng_below(&r, (uint64_t)V);
}

/* Worst |got - want| / (ATOL + RTOL |want|) over n values; > 1 fails. NaN counts as failing. */
static double worst_err(const float *got, const float *want, int n, int *at) {
    double w = 0;
    *at = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]) / (ATOL + RTOL * fabs((double)want[i]));
        if (!(d <= w)) {
            w = isnan(d) ? INFINITY : d;
            *at = i;
        }
    }
    return w;
}

/* T decode steps of one stream against one forward over the same T tokens. */
static void decode_matches_forward(const char *preset, LnlNormKind kind, float dt, int extras) {
    const int T = 7;
    LnlModel m;
    if (small_model(&m, preset, kind, dt, extras, T)) return;
    const int V = m.cfg.vocab_size;
    int32_t tok[T];
    random_tokens(tok, T, V, 3);
    LnlErr e;
    CHECK(lnl_model_alloc_acts(&m, 1, T, &e) == 0, "%s", e.msg);
    lnl_model_forward(&m, tok, NULL, 1, T);
    CHECK(lnl_model_alloc_decode(&m, T, 1, &e) == 0, "%s", e.msg);
    for (int t = 0; t < T; t++) {
        const float *lg = lnl_model_decode_step(&m, tok[t], t);
        int at;
        double w = worst_err(lg, m.logits + (size_t)t * V, V, &at);
        CHECK(w <= 1.0, "%s/%s dt %g extras %d: position %d logit %d: decode %.9g, forward %.9g", preset,
              lnl_norm_name(kind), (double)dt, extras, t, at, (double)lg[at],
              (double)m.logits[(size_t)t * V + at]);
        if (w > 1.0) break;
    }
    lnl_model_free(&m);
}

static void test_decode_every_preset(void) {
    for (int p = 0; p < NPRESETS; p++)
        for (int k = 0; k < 2; k++) decode_matches_forward(presets[p], (LnlNormKind)k, 1.0f, 0);
}

static void test_decode_dt_and_embedding_extras(void) {
    for (int p = 0; p < NPRESETS; p++)
        for (int k = 0; k < 2; k++) decode_matches_forward(presets[p], (LnlNormKind)k, 0.3f, 1);
}

/* DyT and Derf in every placement that can have them, with the one-plus gain and the learned
 * embedding scale. */
static void test_decode_dynamic_norms(void) {
    for (int p = 0; p < NPRESETS; p++) {
        if (!strcmp(presets[p], "branchnorm")) continue;
        decode_matches_forward(presets[p], LNL_NORM_DYT, 1.0f, 0);
        decode_matches_forward(presets[p], LNL_NORM_DERF, 0.5f, EX_EMBED | EX_NEW | EX_SOFTCAP);
        decode_matches_forward(presets[p], LNL_NORM_RMSNORM, 0.5f, EX_EMBED | EX_NEW);
    }
    /* with the q/k norms (which HybridNorm's qkv_norm excludes) */
    decode_matches_forward("pre", LNL_NORM_DYT, 1.0f, EX_QK_FULL | EX_NEW | EX_EMBED);
    decode_matches_forward("peri", LNL_NORM_DERF, 0.5f, EX_QK_HEAD | EX_SOFTCAP);
}

/* Several streams decoded together match a batched forward; each stream has its own cache. */
static void test_decode_batch_of_streams(void) {
    const int B = 3, T = 6;
    const char *which[] = {"peri", "hybrid", "b2t"};
    for (int p = 0; p < 3; p++) {
        LnlModel m;
        if (small_model(&m, which[p], LNL_NORM_LAYERNORM, 1.0f, 0, T)) return;
        const int V = m.cfg.vocab_size;
        int32_t tok[3 * 6], col[3];
        random_tokens(tok, B * T, V, 5);
        LnlErr e;
        CHECK(lnl_model_alloc_acts(&m, B, T, &e) == 0, "%s", e.msg);
        lnl_model_forward(&m, tok, NULL, B, T);
        CHECK(lnl_model_alloc_decode_batch(&m, B, T, 1, &e) == 0, "%s", e.msg);
        for (int t = 0; t < T; t++) {
            for (int b = 0; b < B; b++) col[b] = tok[b * T + t];
            const float *lg = lnl_model_decode_step_batch(&m, col, t);
            for (int b = 0; b < B; b++) {
                int at;
                double w = worst_err(lg + (size_t)b * V, m.logits + ((size_t)b * T + t) * V, V, &at);
                CHECK(w <= 1.0, "%s: stream %d position %d logit %d off by %.3g tolerances", which[p], b, t, at, w);
            }
        }
        lnl_model_free(&m);
    }
}

/* Reset replays the same logits; rewinding to an earlier pos replaces the later positions. */
static void test_decode_reset_and_rewind(void) {
    const int T = 6;
    LnlModel m;
    if (small_model(&m, "peri", LNL_NORM_RMSNORM, 1.0f, 0, T)) return;
    const int V = m.cfg.vocab_size;
    int32_t a[6], b[6];
    random_tokens(a, T, V, 8);
    random_tokens(b, T, V, 9);
    b[0] = a[0];
    b[1] = a[1];
    LnlErr e;
    CHECK(lnl_model_alloc_decode(&m, T, 1, &e) == 0, "%s", e.msg);
    float *first = calloc((size_t)T * V, sizeof(float));
    for (int t = 0; t < T; t++) memcpy(first + (size_t)t * V, lnl_model_decode_step(&m, a[t], t), V * sizeof(float));
    lnl_model_decode_reset(&m);
    for (int t = 0; t < T; t++) {
        const float *lg = lnl_model_decode_step(&m, a[t], t);
        CHECK(memcmp(lg, first + (size_t)t * V, V * sizeof(float)) == 0, "replay differs at position %d", t);
    }
    /* rewind to position 2 and continue with b: must equal a forward on b */
    float *dec = calloc((size_t)T * V, sizeof(float));
    for (int t = 2; t < T; t++) memcpy(dec + (size_t)t * V, lnl_model_decode_step(&m, b[t], t), V * sizeof(float));
    CHECK(lnl_model_alloc_acts(&m, 1, T, &e) == 0, "%s", e.msg);
    lnl_model_forward(&m, b, NULL, 1, T);
    for (int t = 2; t < T; t++) {
        int at;
        double w = worst_err(dec + (size_t)t * V, m.logits + (size_t)t * V, V, &at);
        CHECK(w <= 1.0, "after rewind: position %d logit %d off by %.3g tolerances", t, at, w);
    }
    free(first);
    free(dec);
    lnl_model_free(&m);
}

/* Prefill of a P-token prompt in one pass against P token-by-token steps and one forward over
 * the same tokens: the next-token logits, every prompt row of the top stream (the pass really
 * ran the blocks on all P rows), the K/V cache of positions 0..P-1, and a step after it. */
static void prefill_matches(const char *preset, LnlNormKind kind, float dt, int extras) {
    const int P = 7, T = 8;
    LnlModel m;
    if (small_model(&m, preset, kind, dt, extras, T)) return;
    const int V = m.cfg.vocab_size, C = m.cfg.n_embd, L = m.cfg.n_layer;
    const char *kn = kind == LNL_NORM_LAYERNORM ? "layernorm" : "rmsnorm";
    int32_t tok[8];
    random_tokens(tok, T, V, 13);
    LnlErr e;
    CHECK(lnl_model_alloc_acts(&m, 1, T, &e) == 0, "%s", e.msg);
    lnl_model_forward(&m, tok, NULL, 1, T);
    /* token by token */
    CHECK(lnl_model_alloc_decode(&m, T, 1, &e) == 0, "%s", e.msg);
    const float *lg = NULL;
    for (int t = 0; t < P; t++) lg = lnl_model_decode_step(&m, tok[t], t);
    const size_t cache_n = (size_t)L * T * C;
    float *steps = malloc(sizeof(float) * V), *kc = malloc(sizeof(float) * cache_n), *vc = malloc(sizeof(float) * cache_n);
    memcpy(steps, lg, sizeof(float) * V);
    memcpy(kc, m.dec.kcache, sizeof(float) * cache_n);
    memcpy(vc, m.dec.vcache, sizeof(float) * cache_n);
    /* one pass */
    CHECK(lnl_model_alloc_decode(&m, T, P, &e) == 0, "%s", e.msg);
    lg = lnl_model_decode_prefill(&m, tok, P, 0);
    int at;
    double w = worst_err(lg, m.logits + (size_t)(P - 1) * V, V, &at);
    CHECK(w <= 1.0, "%s/%s dt %g extras %d: prefill vs forward, logit %d: %.9g vs %.9g", preset, kn, (double)dt, extras,
          at, (double)lg[at], (double)m.logits[(size_t)(P - 1) * V + at]);
    w = worst_err(lg, steps, V, &at);
    CHECK(w <= 1.0, "%s/%s dt %g extras %d: prefill vs token by token, logit %d: %.9g vs %.9g", preset, kn, (double)dt,
          extras, at, (double)lg[at], (double)steps[at]);
    w = worst_err(m.dec.stream[2 * L], m.stream[2 * L], P * C, &at);
    CHECK(w <= 1.0, "%s/%s: top stream of the prefill pass vs forward, row %d channel %d off by %.3g tolerances", preset,
          kn, at / C, at % C, w);
    for (int l = 0; l < L; l++) {
        const size_t o = (size_t)l * T * C;
        double wk = worst_err(m.dec.kcache + o, kc + o, P * C, &at);
        double wv = worst_err(m.dec.vcache + o, vc + o, P * C, &at);
        CHECK(wk <= 1.0 && wv <= 1.0, "%s/%s layer %d: cached k / v after prefill off by %.3g / %.3g tolerances", preset,
              kn, l, wk, wv);
    }
    CHECK(m.dec.len == P, "%s: %d positions cached after a %d-token prefill", preset, m.dec.len, P);
    lg = lnl_model_decode_step(&m, tok[P], P);
    w = worst_err(lg, m.logits + (size_t)P * V, V, &at);
    CHECK(w <= 1.0, "%s/%s: the step after the prefill, logit %d off by %.3g tolerances", preset, kn, at, w);
    free(steps);
    free(kc);
    free(vc);
    lnl_model_free(&m);
}

static void test_prefill_every_preset(void) {
    for (int p = 0; p < NPRESETS; p++)
        for (int k = 0; k < 2; k++) {
            prefill_matches(presets[p], (LnlNormKind)k, 1.0f, 0);
            prefill_matches(presets[p], (LnlNormKind)k, 0.3f, 1);
        }
}

/* The attention softcap (alone with HybridNorm's qkv_norm, and with either QK-norm) in decoding
 * and prefill: the same logits as the forward. */
static void test_decode_softcap_qk_norm(void) {
    const char *which[] = {"pre", "peri", "post", "b2t"};
    for (int k = 0; k < 2; k++) {
        decode_matches_forward("hybrid", (LnlNormKind)k, 1.0f, EX_SOFTCAP);
        for (size_t p = 0; p < sizeof which / sizeof which[0]; p++) {
            decode_matches_forward(which[p], (LnlNormKind)k, 1.0f, EX_SOFTCAP);
            decode_matches_forward(which[p], (LnlNormKind)k, 1.0f, EX_SOFTCAP | EX_QK_HEAD);
            decode_matches_forward(which[p], (LnlNormKind)k, 0.3f, EX_QK_FULL | EX_EMBED);
            prefill_matches(which[p], (LnlNormKind)k, 1.0f, EX_SOFTCAP | EX_QK_FULL);
        }
    }
}

/* The logit softcap is applied on the decode path too: steps and prefill match the forward, and the
 * logits stay within +-SOFTCAP while the capped ones bend (some beyond SOFTCAP / 2). */
static void test_decode_softcap(void) {
    const char *which[] = {"pre", "post", "peri", "hybrid"};
    for (int p = 0; p < 4; p++)
        for (int k = 0; k < 2; k++) {
            decode_matches_forward(which[p], (LnlNormKind)k, 1.0f, EX_LOGITCAP);
            prefill_matches(which[p], (LnlNormKind)k, 0.3f, EX_EMBED | EX_LOGITCAP);
        }
    LnlModel m;
    if (small_model(&m, "pre", LNL_NORM_LAYERNORM, 1.0f, EX_LOGITCAP, 6)) return;
    LnlErr e;
    CHECK(lnl_model_alloc_decode(&m, 6, 1, &e) == 0, "%s", e.msg);
    float big = 0;
    int inside = 1;
    for (int t = 0; t < 6; t++) {
        const float *lg = lnl_model_decode_step(&m, (int32_t)(3 * t + 1), t);
        for (int v = 0; v < m.cfg.vocab_size; v++) {
            inside &= fabsf(lg[v]) <= SOFTCAP;
            if (fabsf(lg[v]) > big) big = fabsf(lg[v]);
        }
    }
    CHECK(inside, "decoded logits beyond the softcap %g", (double)SOFTCAP);
    CHECK(big > 0.5f * SOFTCAP, "the largest decoded logit %g never reaches tanh's bend", (double)big);
    lnl_model_free(&m);
}

/* Several streams, a prompt longer than one pass (passes of 4 + 3 rows), a prefill that starts
 * after cached positions, and one that rewinds: each equals a batched forward. */
static void test_prefill_passes_streams_rewind(void) {
    const int B = 3, T = 9, P = 7, R = 4;
    const char *which[] = {"hybrid", "b2t", "post", "peri"};
    for (int p = 0; p < 4; p++) {
        LnlModel m;
        if (small_model(&m, which[p], p % 2 ? LNL_NORM_RMSNORM : LNL_NORM_LAYERNORM, 1.0f, p == 3, T)) return;
        const int V = m.cfg.vocab_size;
        int32_t tok[3 * 9], pre[3 * 7], col[3];
        random_tokens(tok, B * T, V, 21 + (uint64_t)p);
        for (int b = 0; b < B; b++) memcpy(pre + b * P, tok + b * T, sizeof(int32_t) * P);
        LnlErr e;
        CHECK(lnl_model_alloc_acts(&m, B, T, &e) == 0, "%s", e.msg);
        lnl_model_forward(&m, tok, NULL, B, T);
        CHECK(lnl_model_alloc_decode_batch(&m, B, T, R, &e) == 0, "%s", e.msg);
        const float *lg = lnl_model_decode_prefill_batch(&m, pre, P, 0);
        for (int b = 0; b < B; b++) {
            int at;
            double w = worst_err(lg + (size_t)b * V, m.logits + ((size_t)b * T + P - 1) * V, V, &at);
            CHECK(w <= 1.0, "%s: %d-row passes, stream %d logit %d off by %.3g tolerances", which[p], R, b, at, w);
        }
        /* the last two positions as one more prefill after the cached ones */
        for (int b = 0; b < B; b++) memcpy(pre + b * 2, tok + b * T + P, sizeof(int32_t) * 2);
        lg = lnl_model_decode_prefill_batch(&m, pre, 2, P);
        for (int b = 0; b < B; b++) {
            int at;
            double w = worst_err(lg + (size_t)b * V, m.logits + ((size_t)b * T + T - 1) * V, V, &at);
            CHECK(w <= 1.0, "%s: prefill after cached positions, stream %d logit %d off by %.3g tolerances", which[p], b,
                  at, w);
        }
        /* rewind to position 2 with other tokens: a forward on the changed sequences */
        int32_t alt[3 * 9];
        random_tokens(alt, B * T, V, 40 + (uint64_t)p);
        for (int b = 0; b < B; b++) {
            memcpy(alt + b * T, tok + b * T, sizeof(int32_t) * 2);
            memcpy(pre + b * 5, alt + b * T + 2, sizeof(int32_t) * 5);
        }
        lg = lnl_model_decode_prefill_batch(&m, pre, 5, 2);
        lnl_model_forward(&m, alt, NULL, B, T);
        for (int b = 0; b < B; b++) {
            int at;
            double w = worst_err(lg + (size_t)b * V, m.logits + ((size_t)b * T + 6) * V, V, &at);
            CHECK(w <= 1.0, "%s: prefill that rewinds, stream %d logit %d off by %.3g tolerances", which[p], b, at, w);
        }
        /* and a single step continues from there */
        for (int b = 0; b < B; b++) col[b] = alt[b * T + 7];
        lg = lnl_model_decode_step_batch(&m, col, 7);
        for (int b = 0; b < B; b++) {
            int at;
            double w = worst_err(lg + (size_t)b * V, m.logits + ((size_t)b * T + 7) * V, V, &at);
            CHECK(w <= 1.0, "%s: step after the prefills, stream %d logit %d off by %.3g tolerances", which[p], b, at, w);
        }
        lnl_model_free(&m);
    }
}

static void test_decode_alloc_checks(void) {
    LnlModel m;
    if (small_model(&m, "pre", LNL_NORM_LAYERNORM, 1.0f, 0, 5)) return;
    LnlErr e;
    CHECK(lnl_model_alloc_decode(&m, 6, 1, &e) != 0 && strstr(e.msg, "n_positions"), "max_T beyond n_positions");
    CHECK(lnl_model_alloc_decode(&m, 0, 1, &e) != 0, "max_T 0");
    CHECK(lnl_model_alloc_decode_batch(&m, 0, 5, 1, &e) != 0, "0 streams");
    CHECK(lnl_model_alloc_decode(&m, 5, 0, &e) != 0, "0 positions per pass");
    CHECK(lnl_model_alloc_decode(&m, 4, 5, &e) != 0 && strstr(e.msg, "per pass"), "a pass longer than the cache");
    CHECK(lnl_model_alloc_decode(&m, 5, 1, &e) == 0, "%s", e.msg);
    CHECK(lnl_model_alloc_decode(&m, 3, 3, &e) == 0, "re-allocating: %s", e.msg);
    lnl_model_free(&m);
}

/* The decode kernel equals the last row of the reference causal attention, with and without a
 * softcap. */
static void test_attention_decode_kernel(void) {
    for (int ci = 0; ci < 2; ci++) {
        const int T = 9, C = 24, NH = 3;
        const float cap = ci ? 1.5f : 0.0f;
        float *qkv = malloc(sizeof(float) * T * 3 * C), *att = malloc(sizeof(float) * NH * T * T);
        float *ref = malloc(sizeof(float) * T * C), *kc = malloc(sizeof(float) * T * C);
        float *vc = malloc(sizeof(float) * T * C);
        float out[24], scores[9];
        LnlRng r;
        lnl_rng_seed(&r, 4);
        for (int i = 0; i < T * 3 * C; i++) qkv[i] = (float)(2.0 * lnl_rng_normal(&r));
        lnl_kernels_ref_ops.attention_forward(ref, att, NULL, qkv, 1, T, C, NH, cap);
        for (int t = 0; t < T; t++) {
            memcpy(kc + t * C, qkv + t * 3 * C + C, C * sizeof(float));
            memcpy(vc + t * C, qkv + t * 3 * C + 2 * C, C * sizeof(float));
        }
        for (int t = 0; t < T; t++) {
            lnl_attention_decode(out, scores, qkv + t * 3 * C, kc, vc, t + 1, C, NH, cap);
            for (int i = 0; i < C; i++) CHECK_CLOSE(out[i], ref[t * C + i], 1e-6, 1e-5);
        }
        free(qkv);
        free(att);
        free(ref);
        free(kc);
        free(vc);
    }
}

/* ---------------------------------------------------------------- sampler */

static const float LOGITS[6] = {0.5f, 2.0f, -1.0f, 2.0f, 1.5f, 0.0f};

static void test_sampler_greedy(void) {
    LnlSampler s;
    LnlErr e;
    CHECK(lnl_sampler_init(&s, 6, 0.0f, 0, 1, &e) == 0, "%s", e.msg);
    /* ids 1 and 3 tie: the lower id wins */
    for (int i = 0; i < 5; i++) CHECK(lnl_sampler_next(&s, LOGITS) == 1, "greedy picked something else");
    float x[6] = {0, 0, 0, 0, 0, 7};
    CHECK(lnl_sampler_next(&s, x) == 5, "greedy missed the last id");
    float bad[3] = {NAN, NAN, NAN};
    s.V = 3;
    CHECK(lnl_sampler_next(&s, bad) == -1, "all-NaN logits must give -1");
    lnl_sampler_free(&s);
}

static void test_sampler_top1_is_greedy(void) {
    LnlSampler s;
    LnlErr e;
    CHECK(lnl_sampler_init(&s, 6, 1.5f, 1, 99, &e) == 0, "%s", e.msg);
    for (int i = 0; i < 200; i++) CHECK(lnl_sampler_next(&s, LOGITS) == 1, "top-1 picked something else");
    lnl_sampler_free(&s);
}

static void test_sampler_top_k_support(void) {
    LnlSampler s;
    LnlErr e;
    CHECK(lnl_sampler_init(&s, 6, 5.0f, 3, 2, &e) == 0, "%s", e.msg);
    int seen[6] = {0};
    for (int i = 0; i < 3000; i++) seen[lnl_sampler_next(&s, LOGITS)]++;
    /* the top 3 are ids 1, 3 (tie at 2.0) and 4 (1.5); a high temperature makes each likely */
    CHECK(seen[1] > 500 && seen[3] > 500 && seen[4] > 500, "top-3 ids undersampled: %d %d %d", seen[1], seen[3],
          seen[4]);
    CHECK(seen[0] == 0 && seen[2] == 0 && seen[5] == 0, "sampled outside the top 3: %d %d %d", seen[0], seen[2],
          seen[5]);
    lnl_sampler_free(&s);
}

static void test_sampler_repeatable(void) {
    int32_t a[300], b[300], c[300];
    for (int run = 0; run < 3; run++) {
        LnlSampler s;
        LnlErr e;
        CHECK(lnl_sampler_init(&s, 6, 1.0f, 0, run == 2 ? 43 : 42, &e) == 0, "%s", e.msg);
        int32_t *o = run == 0 ? a : run == 1 ? b : c;
        for (int i = 0; i < 300; i++) o[i] = lnl_sampler_next(&s, LOGITS);
        lnl_sampler_free(&s);
    }
    CHECK(memcmp(a, b, sizeof a) == 0, "the same seed gave different tokens");
    CHECK(memcmp(a, c, sizeof a) != 0, "different seeds gave the same 300 tokens");
}

/* Empirical frequencies follow softmax(logits / temperature), so temperature reshapes them. */
static void test_sampler_temperature(void) {
    const int n = 40000;
    const float temps[3] = {0.5f, 1.0f, 2.0f};
    double top_freq[3];
    for (int ti = 0; ti < 3; ti++) {
        LnlSampler s;
        LnlErr e;
        CHECK(lnl_sampler_init(&s, 6, temps[ti], 0, 7, &e) == 0, "%s", e.msg);
        int cnt[6] = {0};
        for (int i = 0; i < n; i++) cnt[lnl_sampler_next(&s, LOGITS)]++;
        double z = 0, p[6];
        for (int i = 0; i < 6; i++) z += p[i] = exp(LOGITS[i] / temps[ti]);
        for (int i = 0; i < 6; i++) {
            double want = p[i] / z, got = (double)cnt[i] / n;
            /* 5 standard deviations of a binomial frequency */
            CHECK(fabs(got - want) <= 5 * sqrt(want * (1 - want) / n) + 1e-4, "T %g id %d: frequency %.4f, expected %.4f",
                  (double)temps[ti], i, got, want);
        }
        top_freq[ti] = (double)(cnt[1] + cnt[3]) / n;
        lnl_sampler_free(&s);
    }
    CHECK(top_freq[0] > top_freq[1] && top_freq[1] > top_freq[2], "lower temperature must favor the top logits: %g %g %g",
          top_freq[0], top_freq[1], top_freq[2]);
}

static void test_sampler_bad_settings(void) {
    LnlSampler s;
    LnlErr e;
    CHECK(lnl_sampler_init(&s, 6, -1.0f, 0, 1, &e) != 0, "negative temperature accepted");
    CHECK(lnl_sampler_init(&s, 6, NAN, 0, 1, &e) != 0, "NaN temperature accepted");
    CHECK(lnl_sampler_init(&s, 6, 1.0f, -2, 1, &e) != 0, "negative top-k accepted");
}

int main(void) {
    RUN_TEST(test_decode_every_preset);
    RUN_TEST(test_decode_dt_and_embedding_extras);
    RUN_TEST(test_decode_dynamic_norms);
    RUN_TEST(test_decode_softcap_qk_norm);
    RUN_TEST(test_decode_batch_of_streams);
    RUN_TEST(test_decode_softcap);
    RUN_TEST(test_decode_reset_and_rewind);
    RUN_TEST(test_prefill_every_preset);
    RUN_TEST(test_prefill_passes_streams_rewind);
    RUN_TEST(test_decode_alloc_checks);
    RUN_TEST(test_attention_decode_kernel);
    RUN_TEST(test_sampler_greedy);
    RUN_TEST(test_sampler_top1_is_greedy);
    RUN_TEST(test_sampler_top_k_support);
    RUN_TEST(test_sampler_repeatable);
    RUN_TEST(test_sampler_temperature);
    RUN_TEST(test_sampler_bad_settings);
    TEST_MAIN_END();
}
