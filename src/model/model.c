/* Parameter layout, init, and the forward/backward of the one block that serves every
 * placement (see spec.h for the block equations), plus its KV-cache decode mode. */
#include "model.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/kernels.h"
#include "block.h"

/* ---------------------------------------------------------------- parameter layout */

/* The model library reports a failed allocation to its caller instead of exiting (util.h's
 * lnl_calloc would): zeroed memory, or NULL. */
static void *try_calloc(size_t n, size_t size) { return calloc(n ? n : 1, size); }

static int alloc_failed(LnlErr *e, const char *what, double bytes) {
    return lnl_err(e, "cannot allocate %.1f MiB for the model's %s: out of memory", bytes / 1048576.0, what);
}

typedef struct {
    const char *names;
    int per_layer;
    LnlInit init;
    uint8_t decay, hf_transpose;
} RoleInfo;

static const RoleInfo role_info[LNL_NUM_ROLES] = {
#define X(f, n, pl, r, cc, i, d, t, p, place) {n, pl, i, d, t},
    LNL_PARAMS(X)
#undef X
};

/* rows/cols of a role and whether layer l uses it (l ignored for global roles). */
static void role_dims(const LnlConfig *c, int role, int l, size_t *rows, size_t *cols, int *present) {
    const size_t C = (size_t)c->n_embd, V = (size_t)c->vocab_size, T = (size_t)c->n_positions;
    const size_t HS = C / (size_t)c->n_head, QKN = (size_t)lnl_config_qk_norm_dim(c);
    const int NB = c->norm != LNL_NORM_RMSNORM, DYN = lnl_norm_is_dynamic(c->norm), DERF = c->norm == LNL_NORM_DERF;
    const LnlSubSpec A = c->sub[l][LNL_ATTN], M = c->sub[l][LNL_MLP];
    (void)A;
    (void)M;
    (void)NB;
    (void)DYN;
    (void)DERF;
    switch (role) {
#define X(f, n, pl, r, cc, i, d, t, p, place)                                                                    \
    case LNL_ROLE_##f:                                                                                            \
        *rows = (r);                                                                                              \
        *cols = (cc);                                                                                             \
        *present = (p) ? 1 : 0;                                                                                   \
        break;
        LNL_PARAMS(X)
#undef X
    default: *rows = *cols = 0; *present = 0;
    }
    (void)V;
    (void)T;
    (void)HS;
    (void)QKN;
}

static void add_view(LnlModel *m, const char *name, int role, int layer, size_t offset, size_t numel, int ndim,
                     int r, int cc) {
    LnlTensorView *v = &m->views[m->nviews++];
    if (layer >= 0) snprintf(v->name, sizeof v->name, "h.%d.%s", layer, name);
    else snprintf(v->name, sizeof v->name, "%s", name);
    v->role = role;
    v->layer = layer;
    v->offset = offset;
    v->numel = numel;
    v->ndim = ndim;
    v->shape[0] = r;
    v->shape[1] = cc;
    v->decay = role_info[role].decay;
    v->hf_transpose = role_info[role].hf_transpose;
}

/* Floats per role in the parameter allocation (0 if absent), their total, and a bound on the
 * number of tensor views. */
static size_t param_layout(const LnlConfig *c, size_t role_size[LNL_NUM_ROLES], int *max_views) {
    const int L = c->n_layer;
    size_t total = 0;
    *max_views = 0;
    for (int role = 0; role < LNL_NUM_ROLES; role++) {
        size_t rows, cols;
        int any = 0, pres;
        int nl = role_info[role].per_layer ? L : 1;
        for (int l = 0; l < nl; l++) {
            role_dims(c, role, l, &rows, &cols, &pres);
            any |= pres;
            *max_views += pres * 3;
        }
        role_size[role] = any ? (size_t)nl * rows * cols : 0;
        total += role_size[role];
    }
    return total;
}

int lnl_model_create(LnlModel *m, const LnlConfig *cfg, LnlErr *e) {
    memset(m, 0, sizeof *m);
    if (lnl_config_validate(cfg, e)) return -1;
    m->cfg = *cfg;
    m->cfg.init_std = lnl_config_init_std(cfg); /* the number the rule means at this width, for the record */
    const LnlConfig *c = &m->cfg;
    const int L = c->n_layer;
    int max_views = 0;
    size_t total = param_layout(c, m->role_size, &max_views);
    m->num_alloc = total;
    m->params_mem = try_calloc(total, sizeof(float));
    m->grads_mem = try_calloc(total, sizeof(float));
    m->views = try_calloc((size_t)max_views + 1, sizeof(LnlTensorView));
    m->gain_eff = try_calloc(3 * (size_t)c->n_embd, sizeof(float));
    if (!m->params_mem || !m->grads_mem || !m->views || !m->gain_eff) {
        lnl_model_free(m);
        return alloc_failed(e, "parameters and gradients", 2.0 * (double)total * sizeof(float));
    }
    float **pp = (float **)&m->p, **gp = (float **)&m->g;
    size_t off = 0;
    for (int role = 0; role < LNL_NUM_ROLES; role++) {
        if (!m->role_size[role]) {
            pp[role] = gp[role] = NULL;
            continue;
        }
        pp[role] = m->params_mem + off;
        gp[role] = m->grads_mem + off;
        int nl = role_info[role].per_layer ? L : 1;
        for (int l = 0; l < nl; l++) {
            size_t rows, cols;
            int pres;
            role_dims(c, role, l, &rows, &cols, &pres);
            if (!pres) continue;
            size_t base = off + (size_t)l * rows * cols;
            /* split "a|b|c" names into equal parts of the rows */
            const char *names = role_info[role].names;
            int nsplit = 1;
            for (const char *q = names; *q; q++) nsplit += *q == '|';
            size_t part_rows = rows / (size_t)nsplit;
            const char *q = names;
            for (int k = 0; k < nsplit; k++) {
                char nm[48];
                const char *bar = strchr(q, '|');
                size_t len = bar ? (size_t)(bar - q) : strlen(q);
                if (len >= sizeof nm) len = sizeof nm - 1;
                memcpy(nm, q, len);
                nm[len] = 0;
                size_t numel = part_rows * cols;
                int ndim = (part_rows == 1) ? 1 : 2;
                add_view(m, nm, role, role_info[role].per_layer ? l : -1, base + (size_t)k * numel, numel, ndim,
                         ndim == 1 ? (int)cols : (int)part_rows, ndim == 1 ? 0 : (int)cols);
                m->num_params += numel;
                q = bar ? bar + 1 : q + len;
            }
        }
        off += m->role_size[role];
    }
    m->branch_lambda = 0.0f;
    return 0;
}

static void free_acts(LnlModel *m);

void lnl_model_free(LnlModel *m) {
    free(m->params_mem);
    free(m->grads_mem);
    free(m->views);
    free(m->gain_eff);
    free_acts(m);
    free(m->dec.mem);
    free(m->dec.stream);
    free(m->dec.sub);
    free(m->dec.tok);
    memset(m, 0, sizeof *m);
}

const LnlTensorView *lnl_model_find(const LnlModel *m, const char *name) {
    for (int i = 0; i < m->nviews; i++)
        if (strcmp(m->views[i].name, name) == 0) return &m->views[i];
    return NULL;
}

/* ---------------------------------------------------------------- init */

float lnl_branchnorm_lambda(const LnlConfig *c, long step) {
    double lam = 1.0 - (double)step / (double)(c->branchnorm_steps > 0 ? c->branchnorm_steps : 1);
    return lam > 0 ? (float)lam : 0.0f;
}

double lnl_model_step_flops(const LnlConfig *c, int B, int T) {
    const double L = c->n_layer, C = c->n_embd, V = c->vocab_size, N = (double)B * T;
    const double mm_weights = 12.0 * L * C * C + V * C;
    const double attn_per_token = 6.0 * L * C * (T + 1); /* 12 C per pair, (T + 1) / 2 pairs per token */
    return N * (6.0 * mm_weights + attn_per_token);
}

void lnl_model_init_weights(LnlModel *m, uint64_t seed) {
    const LnlConfig *c = &m->cfg;
    LnlRng rng;
    lnl_rng_seed(&rng, seed);
    memset(m->params_mem, 0, m->num_alloc * sizeof(float));
    const double std = lnl_config_init_std(c);
    const double resid_std = std / (c->init_resid_scale ? sqrt(2.0 * c->n_layer) : 1.0);
    for (int i = 0; i < m->nviews; i++) {
        const LnlTensorView *v = &m->views[i];
        float *p = m->params_mem + v->offset;
        switch (role_info[v->role].init) {
        case LNL_INIT_NORMAL:
            for (size_t k = 0; k < v->numel; k++) p[k] = (float)(std * lnl_rng_normal(&rng));
            break;
        case LNL_INIT_RESID:
            for (size_t k = 0; k < v->numel; k++) p[k] = (float)(resid_std * lnl_rng_normal(&rng));
            break;
        case LNL_INIT_ZERO: break;
        case LNL_INIT_ONE:
            for (size_t k = 0; k < v->numel; k++) p[k] = 1.0f;
            break;
        case LNL_INIT_GAIN: /* the one-plus gain 1 + w starts at 1 with w = 0 */
            for (size_t k = 0; k < v->numel; k++) p[k] = c->norm_gain == LNL_GAIN_ONE_PLUS ? 0.0f : 1.0f;
            break;
        case LNL_INIT_ALPHA_ATTN:
        case LNL_INIT_ALPHA_MLP:
        case LNL_INIT_ALPHA_FINAL: {
            const LnlInit init = role_info[v->role].init;
            const float a = c->norm_alpha[init == LNL_INIT_ALPHA_ATTN  ? LNL_ALPHA_ATTN
                                          : init == LNL_INIT_ALPHA_MLP ? LNL_ALPHA_MLP
                                                                       : LNL_ALPHA_FINAL];
            for (size_t k = 0; k < v->numel; k++) p[k] = a;
            break;
        }
        case LNL_INIT_EMBED_SCALE:
            for (size_t k = 0; k < v->numel; k++) p[k] = sqrtf((float)c->n_embd);
            break;
        }
    }
    if (c->init_beta != 1.0f) {
        /* DeepNorm: value, attention output and both MLP weights scaled by beta. */
        const size_t C = (size_t)c->n_embd;
        for (int l = 0; l < c->n_layer; l++) {
            float *v_rows = m->p.qkvw + (size_t)l * 3 * C * C + 2 * C * C;
            for (size_t k = 0; k < C * C; k++) v_rows[k] *= c->init_beta;
            float *ap = m->p.attprojw + (size_t)l * C * C;
            for (size_t k = 0; k < C * C; k++) ap[k] *= c->init_beta;
            float *fc = m->p.fcw + (size_t)l * 4 * C * C, *fp = m->p.fcprojw + (size_t)l * 4 * C * C;
            for (size_t k = 0; k < 4 * C * C; k++) {
                fc[k] *= c->init_beta;
                fp[k] *= c->init_beta;
            }
        }
    }
}

/* ---------------------------------------------------------------- activations */

typedef struct {
    float *base;
    size_t used;
} Arena;

static float *take(Arena *a, size_t n) {
    float *p = a->base ? a->base + a->used : NULL;
    a->used += (n + 15) & ~(size_t)15; /* 64-byte aligned slices */
    return a->base ? p : (float *)(uintptr_t)1; /* non-NULL marker while sizing */
}

/* One arena for a layout function: a sizing pass (no base), the zeroed allocation, then the pass
 * that places every slice. *floats gets the arena's size. NULL if the allocation fails. */
static float *arena_build(LnlModel *m, void (*layout)(LnlModel *, Arena *), size_t *floats) {
    Arena a = {NULL, 0};
    layout(m, &a);
    *floats = a.used;
    float *mem = try_calloc(a.used, sizeof(float));
    if (!mem) return NULL;
    a.base = mem;
    a.used = 0;
    layout(m, &a);
    return mem;
}

/* Lays out (or sizes) the sub-layer activations and stream[1..2L] for B x T rows. with_att: keep
 * the (B, NH, T, T) attention matrix of the full causal attention (decode passes have none). */
static void layout_blocks(const LnlConfig *c, size_t B, size_t T, int with_att, float **stream, LnlSubActs *sub,
                          Arena *a) {
    const size_t C = (size_t)c->n_embd, L = (size_t)c->n_layer, N = B * T, NH = (size_t)c->n_head;
    for (size_t k = 0; k < 2 * L; k++) {
        const LnlSubSpec *q = &c->sub[k / 2][k % 2];
        LnlSubActs *s = &sub[k];
        memset(s, 0, sizeof *s);
        int attn = k % 2 == 0;
        if (q->pre_norm) {
            s->u = take(a, N * C);
            s->u_mean = take(a, N);
            s->u_rstd = take(a, N);
        }
        if (attn) {
            s->qkv = take(a, N * 3 * C);
            if (q->qkv_norm) {
                s->qkvn = take(a, N * 3 * C);
                s->qkvn_mean = take(a, N * 3 * NH);
                s->qkvn_rstd = take(a, N * 3 * NH);
            } else if (q->qk_norm) {
                const size_t rows = N * 2 * (q->qk_norm == LNL_QK_NORM_HEAD ? NH : 1);
                s->qk = take(a, N * 2 * C);
                s->qkn = take(a, N * 2 * C);
                s->qkvn = take(a, N * 3 * C);
                s->qkvn_mean = take(a, rows);
                s->qkvn_rstd = take(a, rows);
            }
            if (with_att) s->att = take(a, B * NH * T * T);
            s->atty = take(a, N * C);
        } else {
            s->fch = take(a, N * 4 * C);
            s->fch_gelu = take(a, N * 4 * C);
        }
        s->fproj = take(a, N * C);
        if (q->out_norm) {
            s->fo = take(a, N * C);
            s->fo_mean = take(a, N);
            s->fo_rstd = take(a, N);
        }
        if (q->branch_norm) {
            s->branch_n0 = take(a, N * C);
            s->branch_n0_mean = take(a, N);
            s->branch_n0_rstd = take(a, N);
            s->branch_mix = take(a, N * C);
        }
        if (q->post_norm) {
            s->r = take(a, N * C);
            s->post_mean = take(a, N);
            s->post_rstd = take(a, N);
        }
        stream[k + 1] = take(a, N * C);
    }
}

/* The buffers around the blocks, shared by the training pass and decoding: the embedding of
 * `rows` rows (with ln_e's output as stream 0, or the embedding itself as stream 0), and ln_f and
 * logits for the `head` rows that reach the LM head (all rows in training, the last in decoding). */
static void layout_ends(const LnlConfig *c, size_t rows, size_t head, Arena *a, float **emb, float **emb_mean,
                        float **emb_rstd, float **stream0, float **lnf, float **lnf_mean, float **lnf_rstd,
                        float **logits) {
    const size_t C = (size_t)c->n_embd, V = (size_t)c->vocab_size;
    *emb = take(a, rows * C);
    if (c->embed_norm) {
        *emb_mean = take(a, rows);
        *emb_rstd = take(a, rows);
        *stream0 = take(a, rows * C);
    } else {
        *emb_mean = *emb_rstd = NULL;
        *stream0 = *emb;
    }
    if (c->final_norm) {
        *lnf = take(a, head * C);
        *lnf_mean = take(a, head);
        *lnf_rstd = take(a, head);
    } else {
        *lnf = *lnf_mean = *lnf_rstd = NULL;
    }
    *logits = take(a, head * V);
}

/* Lays out (or, with a->base == NULL, sizes) all activation buffers. */
static void layout_acts(LnlModel *m, Arena *a) {
    const LnlConfig *c = &m->cfg;
    const size_t B = (size_t)m->B, T = (size_t)m->T, N = B * T;
    layout_ends(c, N, N, a, &m->emb, &m->emb_mean, &m->emb_rstd, &m->stream[0], &m->lnf, &m->lnf_mean, &m->lnf_rstd,
                &m->logits);
    layout_blocks(c, B, T, 1, m->stream, m->sub, a);
    m->losses = take(a, N);
    m->xent_max = take(a, N);
    m->xent_inv_z = take(a, N);
    m->att_rowmax = take(a, N * (size_t)c->n_head);
    m->attn_logit_max = take(a, (size_t)c->n_layer);
    m->branch_vars = take(a, 2 * (size_t)c->n_layer);
}

static void layout_scratch(LnlModel *m, Arena *a) {
    const LnlConfig *c = &m->cfg;
    const size_t B = (size_t)m->B, T = (size_t)m->T, C = (size_t)c->n_embd;
    const size_t N = B * T, NH = (size_t)c->n_head;
    for (int i = 0; i < 3; i++) m->d_stream[i] = take(a, N * C);
    m->d_r = take(a, N * C);
    m->d_f = take(a, N * C);
    m->d_fin = take(a, N * C);
    m->d_u = take(a, N * C);
    m->d_tmp = take(a, N * C);
    m->d_atty = take(a, N * C);
    m->d_x = take(a, N * C);
    m->d_qkv = take(a, N * 3 * C);
    m->d_qkvn = take(a, N * 3 * C);
    m->d_fch2 = take(a, N * 4 * C);
    m->d_att = take(a, B * NH * T * T);
    m->d_losses = take(a, N);
    m->d_logz = take(a, N);
}

/* Frees the activations and scratch of lnl_model_alloc_acts; the model has none afterwards. */
static void free_acts(LnlModel *m) {
    free(m->acts_mem);
    free(m->scratch_mem);
    free(m->stream);
    free(m->sub);
    free(m->inputs);
    free(m->targets);
    free(m->dx_norm);
    m->acts_mem = m->scratch_mem = NULL;
    m->stream = NULL;
    m->sub = NULL;
    m->inputs = m->targets = NULL;
    m->dx_norm = NULL;
    m->branch_vars = NULL;
    m->B = m->T = 0;
    m->acts_floats = 0;
    m->have_targets = 0;
}

int lnl_model_alloc_acts(LnlModel *m, int B, int T, LnlErr *e) {
    const LnlConfig *c = &m->cfg;
    if (B < 1) return lnl_err(e, "--batch: %d must be at least 1", B);
    if (T < 1 || T > c->n_positions)
        return lnl_err(e, "--seq: %d must be in [1, %d] (the model's n_positions)", T, c->n_positions);
    if ((int64_t)B * T > INT32_MAX) /* token indices are int */
        return lnl_err(e, "--batch %d x --seq %d = %lld tokens per batch, more than %d", B, T, (long long)B * T,
                       INT32_MAX);
    free_acts(m);
    m->B = B;
    m->T = T;
    const int L = c->n_layer;
    const size_t N = (size_t)B * (size_t)T;
    size_t acts = 0, scratch = 0;
    m->stream = try_calloc((size_t)(2 * L + 1), sizeof(float *));
    m->sub = try_calloc((size_t)(2 * L), sizeof(LnlSubActs));
    m->inputs = try_calloc(N, sizeof(int32_t));
    m->targets = try_calloc(N, sizeof(int32_t));
    m->dx_norm = try_calloc((size_t)L + 1, sizeof(double));
    if (m->stream && m->sub && m->inputs && m->targets && m->dx_norm) {
        m->acts_mem = arena_build(m, layout_acts, &acts);
        if (m->acts_mem) m->scratch_mem = arena_build(m, layout_scratch, &scratch);
    }
    if (!m->scratch_mem) {
        free_acts(m);
        return alloc_failed(e, "activations", ((double)acts + (double)scratch) * sizeof(float));
    }
    m->acts_floats = acts;
    return 0;
}

int lnl_model_memory(const LnlConfig *c, int B, int T, LnlModelMemory *out, LnlErr *e) {
    memset(out, 0, sizeof *out);
    if (lnl_config_validate(c, e)) return -1;
    if (B < 1) return lnl_err(e, "--batch: %d must be at least 1", B);
    if (T < 1 || T > c->n_positions)
        return lnl_err(e, "--seq: %d must be in [1, %d] (the model's n_positions)", T, c->n_positions);
    if ((int64_t)B * T > INT32_MAX)
        return lnl_err(e, "--batch %d x --seq %d = %lld tokens per batch, more than %d", B, T, (long long)B * T,
                       INT32_MAX);
    /* a bound on every product the layout forms, so that none can overflow size_t below */
    double N = (double)B * T, bound = N * ((double)c->vocab_size + (double)c->n_head * T + 64.0 * c->n_embd) *
                                      (2.0 * c->n_layer + 2) + 64.0 * c->n_embd * (c->vocab_size + c->n_positions);
    if (bound > 0x1p60)
        return lnl_err(e, "model and batch are far too large: about %.3g floats (B %d, T %d, L %d, C %d, V %d)", bound,
                       B, T, c->n_layer, c->n_embd, c->vocab_size);
    LnlModel *m = try_calloc(1, sizeof *m);
    if (!m) return alloc_failed(e, "memory estimate", sizeof *m);
    int max_views;
    m->cfg = *c;
    m->num_alloc = param_layout(c, m->role_size, &max_views);
    m->B = B;
    m->T = T;
    m->stream = try_calloc((size_t)(2 * c->n_layer + 1), sizeof(float *));
    m->sub = try_calloc((size_t)(2 * c->n_layer), sizeof(LnlSubActs));
    if (!m->stream || !m->sub) {
        free(m->stream);
        free(m->sub);
        free(m);
        return alloc_failed(e, "memory estimate", (2.0 * c->n_layer + 1) * (sizeof(float *) + sizeof(LnlSubActs)));
    }
    Arena a = {NULL, 0}, s = {NULL, 0};
    layout_acts(m, &a); /* sizing only: with no base nothing is written through the pointers */
    layout_scratch(m, &s);
    const uint64_t N4 = (uint64_t)B * (uint64_t)T * 4;
    out->num_alloc = m->num_alloc;
    for (int role = 0; role < LNL_NUM_ROLES; role++) {
        int nl = role_info[role].per_layer ? c->n_layer : 1;
        for (int l = 0; l < nl; l++) {
            size_t rows, cols;
            int pres;
            role_dims(c, role, l, &rows, &cols, &pres);
            if (pres) out->num_params += (uint64_t)rows * cols;
        }
    }
    out->params = out->grads = (uint64_t)m->num_alloc * sizeof(float);
    out->acts = (uint64_t)a.used * sizeof(float) + 2 * N4 + ((uint64_t)c->n_layer + 1) * sizeof(double);
    out->scratch = (uint64_t)s.used * sizeof(float);
    free(m->stream);
    free(m->sub);
    free(m);
    return 0;
}

/* ---------------------------------------------------------------- forward */

float *lnl_model_slice(const LnlModel *m, float *base, int role, int l) {
    if (!base) return NULL;
    size_t per = m->role_size[role] / (size_t)m->cfg.n_layer;
    return base + (size_t)l * per;
}

/* The embedding's scale: sqrt(C) (embed_scale), the learned scalar (embed_scale_learned), or 1. */
static float embed_scale(const LnlModel *m) {
    if (m->p.embscale) return m->p.embscale[0];
    return m->cfg.embed_scale ? sqrtf((float)m->cfg.n_embd) : 1.0f;
}

#define LNE_W(P) ((LnlNormW){P.lnew, P.lneb, P.lnea, P.lnes})
#define LNF_W(P) ((LnlNormW){P.lnfw, P.lnfb, P.lnfa, P.lnfs})
#define LNE_G(P) ((LnlNormG){P.lnew, P.lneb, P.lnea, P.lnes})
#define LNF_G(P) ((LnlNormG){P.lnfw, P.lnfb, P.lnfa, P.lnfs})

/* Token + position embedding of B x T rows at positions first_pos.., then the optional ln_e
 * into x0 (x0 == emb without ln_e). */
static void embed_rows(LnlModel *m, float *emb, float *mean, float *rstd, float *x0, const int32_t *tok, int B,
                       int T, int first_pos) {
    const LnlConfig *c = &m->cfg;
    const int C = c->n_embd;
    lnl_embed_forward(emb, tok, m->p.wte, m->p.wpe + (size_t)first_pos * (size_t)C, B, T, C, embed_scale(m));
    if (c->embed_norm) lnl_site_norm_forward(m, x0, mean, rstd, emb, LNE_W(m->p), B * T, C, 1, 1, 1.0f);
}

static void blocks_forward(LnlModel *m, const LnlPass *P) {
    for (int l = 0; l < m->cfg.n_layer; l++) {
        lnl_sub_forward(m, P, l, LNL_ATTN);
        lnl_sub_forward(m, P, l, LNL_MLP);
    }
}

/* The optional final norm (into lnf), the tied LM head and the optional logit softcap (in place:
 * the backward reads the capped logits, lnl_xent_backward_inplace) on N rows of the top stream x. */
static void head_rows(LnlModel *m, const float *x, float *lnf, float *mean, float *rstd, float *logits, int N) {
    const LnlConfig *c = &m->cfg;
    if (c->final_norm) {
        lnl_site_norm_forward(m, lnf, mean, rstd, x, LNF_W(m->p), N, c->n_embd, 1, 1, 1.0f);
        x = lnf;
    }
    lnl_matmul_forward(logits, x, m->p.wte, NULL, N, c->n_embd, c->vocab_size);
    if (c->logit_softcap > 0)
        lnl_softcap_forward(logits, logits, (size_t)N * (size_t)c->vocab_size, c->logit_softcap);
}

static float forward_impl(LnlModel *m, const int32_t *inputs, const int32_t *targets, int B, int T, float *vars) {
    const LnlConfig *c = &m->cfg;
    const int L = c->n_layer, V = c->vocab_size, N = B * T;
    if (B != m->B || T != m->T) {
        /* another batch shape: re-layout (the attention buffers depend on T); a caller that
         * wants this allocation's error calls lnl_model_alloc_acts first */
        LnlErr e;
        if (lnl_model_alloc_acts(m, B, T, &e)) {
            m->loss = NAN;
            return NAN;
        }
    }
    memcpy(m->inputs, inputs, (size_t)N * sizeof(int32_t));
    embed_rows(m, m->emb, m->emb_mean, m->emb_rstd, m->stream[0], inputs, B, T, 0);
    const LnlPass P = {m->stream, m->sub, B, T, -1, vars};
    blocks_forward(m, &P);
    head_rows(m, m->stream[2 * L], m->lnf, m->lnf_mean, m->lnf_rstd, m->logits, N);
    m->have_targets = targets != NULL;
    m->loss = 0.0f;
    m->z_loss = 0.0f;
    if (targets) {
        memcpy(m->targets, targets, (size_t)N * sizeof(int32_t));
        lnl_xent_forward(m->losses, m->xent_max, m->xent_inv_z, m->logits, targets, N, V);
        double sum = 0, zsum = 0;
        int count = 0;
        for (int i = 0; i < N; i++) {
            if (targets[i] < 0) continue;
            sum += m->losses[i];
            if (m->z_loss_coef > 0) {
                const double lz = lnl_xent_log_z(m->xent_max[i], m->xent_inv_z[i]);
                zsum += lz * lz;
            }
            count++;
        }
        m->loss = count ? (float)(sum / count) : 0.0f;
        m->z_loss = count ? (float)(m->z_loss_coef * zsum / count) : 0.0f;
    }
    return m->loss;
}

float lnl_model_forward(LnlModel *m, const int32_t *inputs, const int32_t *targets, int B, int T) {
    return forward_impl(m, inputs, targets, B, T, NULL);
}

int lnl_model_admin_profile(LnlModel *m, const int32_t *inputs, int B, int T) {
    const LnlConfig *c = &m->cfg;
    if (!c->admin_profile || !m->p.askip) return 0;
    const int L = c->n_layer, C = c->n_embd;
    for (int l = 0; l < L; l++)
        for (int s = 0; s < 2; s++) {
            float *om = lnl_sub_view(m, &m->p, l, s).skip;
            if (om && c->sub[l][s].skip_learned)
                for (int i = 0; i < C; i++) om[i] = 1.0f;
        }
    forward_impl(m, inputs, NULL, B, T, m->branch_vars);
    const float *vars = m->branch_vars;
    if (!vars) return -1; /* the activations for B x T could not be allocated */
    double acc = 1.0;
    for (int k = 0; k < 2 * L; k++) {
        int l = k / 2, s = k % 2;
        float *om = lnl_sub_view(m, &m->p, l, s).skip;
        if (om && c->sub[l][s].skip_learned) {
            float w = (float)sqrt(acc);
            for (int i = 0; i < C; i++) om[i] = w;
        }
        acc += vars[k];
    }
    return 0;
}

/* ---------------------------------------------------------------- decode (KV cache) */

static void layout_decode(LnlModel *m, Arena *a) {
    const LnlConfig *c = &m->cfg;
    LnlDecode *d = &m->dec;
    const size_t B = (size_t)d->B, T = (size_t)d->T, R = (size_t)d->R, C = (size_t)c->n_embd;
    const size_t L = (size_t)c->n_layer;
    d->kcache = take(a, L * B * T * C);
    d->vcache = take(a, L * B * T * C);
    layout_ends(c, B * R, B, a, &d->emb, &d->emb_mean, &d->emb_rstd, &d->stream[0], &d->lnf, &d->lnf_mean,
                &d->lnf_rstd, &d->logits);
    d->top = R > 1 ? take(a, B * C) : NULL;
    layout_blocks(c, B, R, 0, d->stream, d->sub, a);
    d->scores = take(a, T);
}

int lnl_model_alloc_decode_batch(LnlModel *m, int B, int max_T, int max_rows, LnlErr *e) {
    const LnlConfig *c = &m->cfg;
    LnlDecode *d = &m->dec;
    if (B < 1) return lnl_err(e, "decode: %d streams; need at least 1", B);
    if (max_T < 1 || max_T > c->n_positions)
        return lnl_err(e, "decode: %d positions; must be in [1, %d] (the model's n_positions)", max_T,
                       c->n_positions);
    if (max_rows < 1 || max_rows > max_T)
        return lnl_err(e, "decode: %d positions per pass; must be in [1, %d] (the positions decoded)", max_rows,
                       max_T);
    free(d->mem);
    free(d->stream);
    free(d->sub);
    free(d->tok);
    memset(d, 0, sizeof *d);
    d->B = B;
    d->T = max_T;
    d->R = max_rows;
    const int L = c->n_layer;
    size_t floats = 0;
    d->stream = try_calloc((size_t)(2 * L + 1), sizeof(float *));
    d->sub = try_calloc((size_t)(2 * L), sizeof(LnlSubActs));
    d->tok = try_calloc((size_t)B * (size_t)max_rows, sizeof(int32_t));
    if (d->stream && d->sub && d->tok) d->mem = arena_build(m, layout_decode, &floats);
    if (!d->mem) {
        free(d->stream);
        free(d->sub);
        free(d->tok);
        memset(d, 0, sizeof *d);
        return alloc_failed(e, "decoding caches and activations", (double)floats * sizeof(float));
    }
    return 0;
}

int lnl_model_alloc_decode(LnlModel *m, int max_T, int max_rows, LnlErr *e) {
    return lnl_model_alloc_decode_batch(m, 1, max_T, max_rows, e);
}

void lnl_model_decode_reset(LnlModel *m) { m->dec.len = 0; }

/* One decode pass: n positions pos..pos+n-1 of every stream, tokens (B, n) in d->tok, through the
 * blocks on B*n rows; the head on each stream's last row. */
static const float *decode_pass(LnlModel *m, int n, int pos) {
    const LnlConfig *c = &m->cfg;
    LnlDecode *d = &m->dec;
    const size_t C = (size_t)c->n_embd;
    assert(d->mem && "lnl_model_alloc_decode first");
    assert(n >= 1 && n <= d->R && pos >= 0 && pos <= d->len && pos + n <= d->T && d->T <= c->n_positions);
    for (int i = 0; i < d->B * n; i++) assert(d->tok[i] >= 0 && d->tok[i] < c->vocab_size);
    embed_rows(m, d->emb, d->emb_mean, d->emb_rstd, d->stream[0], d->tok, d->B, n, pos);
    const LnlPass P = {d->stream, d->sub, d->B, n, pos, NULL};
    blocks_forward(m, &P);
    const float *x = d->stream[2 * c->n_layer];
    if (n > 1) {
        for (int b = 0; b < d->B; b++)
            memcpy(d->top + (size_t)b * C, x + ((size_t)b * (size_t)n + (size_t)n - 1) * C, C * sizeof(float));
        x = d->top;
    }
    head_rows(m, x, d->lnf, d->lnf_mean, d->lnf_rstd, d->logits, d->B);
    d->len = pos + n;
    return d->logits;
}

const float *lnl_model_decode_step_batch(LnlModel *m, const int32_t *tokens, int pos) {
    LnlDecode *d = &m->dec;
    assert(d->mem && "lnl_model_alloc_decode first");
    memcpy(d->tok, tokens, (size_t)d->B * sizeof(int32_t));
    return decode_pass(m, 1, pos);
}

const float *lnl_model_decode_step(LnlModel *m, int32_t token, int pos) {
    assert(m->dec.B == 1);
    return lnl_model_decode_step_batch(m, &token, pos);
}

const float *lnl_model_decode_prefill_batch(LnlModel *m, const int32_t *tokens, int P, int pos) {
    LnlDecode *d = &m->dec;
    assert(d->mem && "lnl_model_alloc_decode first");
    assert(P >= 1 && pos >= 0 && pos + P <= d->T);
    const float *logits = NULL;
    for (int off = 0; off < P; off += d->R) {
        const int n = P - off < d->R ? P - off : d->R;
        for (int b = 0; b < d->B; b++)
            memcpy(d->tok + (size_t)b * (size_t)n, tokens + (size_t)b * (size_t)P + (size_t)off,
                   (size_t)n * sizeof(int32_t));
        logits = decode_pass(m, n, pos + off);
    }
    return logits;
}

const float *lnl_model_decode_prefill(LnlModel *m, const int32_t *tokens, int P, int pos) {
    assert(m->dec.B == 1);
    return lnl_model_decode_prefill_batch(m, tokens, P, pos);
}

/* ---------------------------------------------------------------- backward */

void lnl_model_zero_grad(LnlModel *m) { lnl_zero(m->grads_mem, m->num_alloc); }

static void zero(float *p, size_t n) { lnl_zero(p, n); }

int lnl_model_backward(LnlModel *m) {
    const LnlConfig *c = &m->cfg;
    const int B = m->B, T = m->T, C = c->n_embd, L = c->n_layer, V = c->vocab_size, N = B * T;
    const size_t n = (size_t)N * C;
    if (!m->have_targets) return -1;
    int count = 0;
    for (int i = 0; i < N; i++) count += m->targets[i] >= 0;
    for (int i = 0; i < N; i++) m->d_losses[i] = count ? 1.0f / (float)count : 0.0f;
    /* the z-loss coef * mean (log Z)^2 adds 2 coef log Z / count to each row's dLoss/d log Z */
    const float *dlogz = NULL;
    if (m->z_loss_coef > 0 && count) {
        for (int i = 0; i < N; i++)
            m->d_logz[i] = m->targets[i] < 0 ? 0.0f
                                             : (float)(2.0 * m->z_loss_coef *
                                                       lnl_xent_log_z(m->xent_max[i], m->xent_inv_z[i]) / count);
        dlogz = m->d_logz;
    }
    /* the logits become dlogits in place (through the softcap: dLoss/d the LM head's output); a
     * second backward needs a new forward */
    lnl_xent_backward_inplace(m->logits, m->xent_max, m->xent_inv_z, m->targets, m->d_losses, dlogz,
                              c->logit_softcap, N, V);
    m->have_targets = 0;
    const float *dlogits = m->logits;
    const float *x = c->final_norm ? m->lnf : m->stream[2 * L];
    float *dtop = m->d_stream[0];
    if (c->final_norm) {
        zero(dtop, n);
        lnl_matmul_backward(m->d_x, m->g.wte, NULL, dlogits, x, m->p.wte, N, C, V);
        lnl_site_norm_backward(m, dtop, LNF_G(m->g), m->d_x, m->stream[2 * L], LNF_W(m->p), m->lnf_mean, m->lnf_rstd,
                               N, C, 1, 1, 1.0f);
    } else {
        lnl_matmul_backward(dtop, m->g.wte, NULL, dlogits, x, m->p.wte, N, C, V);
    }
    m->dx_norm[L] = sqrt(lnl_sumsq(dtop, n));
    int ia = 0; /* d_stream[ia] holds dLoss/d stream[2l+2] */
    for (int l = L - 1; l >= 0; l--) {
        int ib = (ia + 1) % 3, ic = (ia + 2) % 3;
        float *dA = m->d_stream[ia], *dB = m->d_stream[ib], *dC = m->d_stream[ic];
        zero(dB, n);
        zero(dC, n);
        lnl_sub_backward(m, l, LNL_MLP, dA, dB, dC, 1);
        lnl_sub_backward(m, l, LNL_ATTN, dB, dC, NULL, 1);
        m->dx_norm[l] = sqrt(lnl_sumsq(dC, n));
        ia = ic;
    }
    float *d0 = m->d_stream[ia];
    float *demb = d0;
    if (c->embed_norm) {
        zero(m->d_x, n);
        lnl_site_norm_backward(m, m->d_x, LNE_G(m->g), d0, m->emb, LNE_W(m->p), m->emb_mean, m->emb_rstd, N, C, 1, 1,
                               1.0f);
        demb = m->d_x;
    }
    lnl_embed_backward(m->g.wte, m->g.wpe, demb, m->inputs, B, T, C, embed_scale(m));
    if (m->g.embscale) {
        /* emb = scale * (wte[token] + wpe[position]): dLoss/dscale = sum demb . (wte[token] + wpe[position]) */
        double ds = 0.0;
        for (int r = 0; r < N; r++) {
            const float *te = m->p.wte + (size_t)m->inputs[r] * C, *pe = m->p.wpe + (size_t)(r % T) * C;
            const float *d = demb + (size_t)r * C;
            for (int i = 0; i < C; i++) ds += (double)d[i] * ((double)te[i] + pe[i]);
        }
        m->g.embscale[0] += (float)ds;
    }
    return 0;
}

double lnl_model_grad_norm(const LnlModel *m) {
    double s = 0;
    for (int i = 0; i < m->nviews; i++) s += lnl_sumsq(m->grads_mem + m->views[i].offset, m->views[i].numel);
    return sqrt(s);
}

double lnl_model_layer_grad_norm(const LnlModel *m, int l) {
    double s = 0;
    for (int i = 0; i < m->nviews; i++)
        if (m->views[i].layer == l) s += lnl_sumsq(m->grads_mem + m->views[i].offset, m->views[i].numel);
    return sqrt(s);
}
