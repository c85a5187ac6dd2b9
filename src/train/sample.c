/* Next-token sampling: argmax, or temperature softmax over all or the top-k logits. */
#include "sample.h"

#include <math.h>
#include <stdlib.h>

struct LnlSampleCand {
    float v;
    int32_t id;
    double w; /* unnormalized probability */
};
typedef struct LnlSampleCand Cand;

/* The ranking: larger logit first, lower id among equals (a total order on finite logits). */
static int better(const Cand *a, const Cand *b) { return a->v > b->v || (a->v == b->v && a->id < b->id); }

static int cmp_rank(const void *pa, const void *pb) {
    const Cand *a = pa, *b = pb;
    return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

int lnl_sampler_init(LnlSampler *s, int V, float temperature, int top_k, uint64_t seed, LnlErr *e) {
    if (V < 1) return lnl_err(e, "sampler: vocabulary size %d must be at least 1", V);
    if (!(temperature >= 0.0f) || !isfinite(temperature))
        return lnl_err(e, "--temperature: %g must be a finite number >= 0", (double)temperature);
    if (top_k < 0) return lnl_err(e, "--top-k: %d must be >= 0", top_k);
    s->V = V;
    s->temperature = temperature;
    s->top_k = top_k == 0 || top_k > V ? V : top_k;
    lnl_rng_seed(&s->rng, seed);
    s->cand = lnl_calloc((size_t)V, sizeof(Cand));
    return 0;
}

void lnl_sampler_free(LnlSampler *s) {
    free(s->cand);
    s->cand = NULL;
}

/* Min-heap on the ranking: the root is the worst kept candidate. */
static void sift_down(Cand *h, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(&h[w], &h[l])) w = l;
        if (r < n && better(&h[w], &h[r])) w = r;
        if (w == i) return;
        Cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void sift_up(Cand *h, int i) {
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!better(&h[p], &h[i])) return;
        Cand t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

int32_t lnl_sampler_next(LnlSampler *s, const float *logits) {
    const int V = s->V;
    if (s->temperature == 0.0f) {
        int32_t best = -1;
        for (int i = 0; i < V; i++)
            if (isfinite(logits[i]) && (best < 0 || logits[i] > logits[best])) best = i;
        return best;
    }
    Cand *c = s->cand;
    int n = 0;
    if (s->top_k >= V) {
        for (int i = 0; i < V; i++)
            if (isfinite(logits[i])) c[n++] = (Cand){logits[i], i, 0.0};
    } else {
        for (int i = 0; i < V; i++) {
            if (!isfinite(logits[i])) continue;
            Cand x = {logits[i], i, 0.0};
            if (n < s->top_k) {
                c[n] = x;
                sift_up(c, n++);
            } else if (better(&x, &c[0])) {
                c[0] = x;
                sift_down(c, n, 0);
            }
        }
        qsort(c, (size_t)n, sizeof(Cand), cmp_rank);
    }
    if (n == 0) return -1;
    float mx = c[0].v;
    for (int i = 1; i < n; i++)
        if (c[i].v > mx) mx = c[i].v;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        c[i].w = exp(((double)c[i].v - mx) / s->temperature);
        sum += c[i].w;
    }
    double u = lnl_rng_uniform(&s->rng) * sum, acc = 0.0;
    for (int i = 0; i < n; i++) {
        acc += c[i].w;
        if (u < acc) return c[i].id;
    }
    return c[n - 1].id;
}
