/* The model: parameter and activation layout, init, forward, backward. One block
 * implementation serves every placement; it reads the spec flags (spec.h), never a preset.
 *
 * Parameters live in one allocation, grouped by role: a per-layer role holds (L, rows, cols)
 * floats, layer-major, llm.c style. A role exists if any layer uses it; unused per-layer slices
 * stay zero and are not part of any tensor view. The list of tensors (views) is generated from
 * LNL_PARAMS below, which is the only list of parameters in the program: struct fields, sizes,
 * names in files, weight decay and the gradient tests all come from it.
 */
#ifndef LNL_MODEL_H
#define LNL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "../common/rng.h"
#include "../common/util.h"
#include "spec.h"

/* How a role is initialized (lnl_model_init_weights): N(0, std); N(0, std) over sqrt(2L) where
 * init_resid_scale; 0; 1; a norm's gain (1, or 0 for the one-plus gain 1 + w); a DyT / Derf
 * norm's a, the config's norm_alpha of the attention sub-layer, the MLP sub-layer or the final
 * and embedding norms; the learned embedding scale, sqrt(C). */
typedef enum {
    LNL_INIT_NORMAL,
    LNL_INIT_RESID,
    LNL_INIT_ZERO,
    LNL_INIT_ONE,
    LNL_INIT_GAIN,
    LNL_INIT_ALPHA_ATTN,
    LNL_INIT_ALPHA_MLP,
    LNL_INIT_ALPHA_FINAL,
    LNL_INIT_EMBED_SCALE
} LnlInit;

/* The weights of one sub-layer by their place in the block equations (spec.h), layer l's slices of
 * the roles whose `place` below is LNL_SUB(sub-layer, field); a field is NULL where the sub-layer
 * has no such weight. lnl_sub_view (block.h) fills it from LNL_PARAMS, so the block's forward,
 * backward and tangent passes read the weights through the tensor table and nothing else. */
typedef struct {
    /* each norm: gain _w, bias _b (LayerNorm, DyT, Derf), DyT / Derf's scalar a _a, Derf's s _s */
    float *pre_w, *pre_b, *pre_a, *pre_s;     /* N_pre: ln_1 / ln_2 */
    float *in_w, *in_b;                       /* F's first matrix: attention's c_attn (3C, C), the MLP's c_fc (4C, C) */
    float *qkvn_w, *qkvn_b, *qkvn_a, *qkvn_s; /* attention's per-head q, k, v norms (3, HS); a, s (3) */
    float *qkn_w, *qkn_b, *qkn_a, *qkn_s;     /* attention's q and k norms (qk_norm): (2, HS) per head or
                                               * (2, C) full; a, s (2) */
    float *proj_w, *proj_b;                   /* F's output matrix c_proj: (C, C) or (C, 4C) */
    float *out_w, *out_b, *out_a, *out_s;     /* N_out: ln_1_out / ln_2_out */
    float *post_w, *post_b, *post_a, *post_s; /* N_post: ln_1_post / ln_2_post */
    float *skip;              /* learned per-channel skip weight (C): attn_skip / mlp_skip */
    float *gate;              /* the block's scalar gate, shared by both sub-layers */
} LnlSubView;

#define LNL_SUB_BOTH 2 /* a per-layer role both sub-layers read (the gate) */

/* X(field, file name(s) after "h.{i}." for per-layer roles, per_layer, rows, cols, init, decay,
 *   hf_transpose, present, place). Names separated by '|' split the role's rows into equal named
 * tensors. Expressions may use: c (const LnlConfig *), A / M (the attn / mlp LnlSubSpec of layer
 * l), NB (the norm kind has a bias: LayerNorm, DyT, Derf), DYN (DyT or Derf: a scalar a), DERF
 * (Derf: a scalar s too), C, V, T (n_positions), HS (head size), QKN (the q/k norm gains' length,
 * lnl_config_qk_norm_dim). hf_transpose: stored in Hugging
 * Face Conv1D (in, out) layout in safetensors; kept (out, in) in memory. place: LNL_SUB(LNL_ATTN,
 * LNL_MLP or LNL_SUB_BOTH, the LnlSubView field it fills), or LNL_GLOBAL for roles outside the
 * blocks; the two macros are defined only where a table reads them. */
#define LNL_PARAMS(X)                                                                                                  \
    X(wte, "wte.weight", 0, V, C, LNL_INIT_NORMAL, 1, 0, 1, LNL_GLOBAL)                                                \
    X(wpe, "wpe.weight", 0, T, C, LNL_INIT_NORMAL, 1, 0, 1, LNL_GLOBAL)                                                \
    X(embscale, "embed_scale", 0, 1, 1, LNL_INIT_EMBED_SCALE, 0, 0, c->embed_scale_learned, LNL_GLOBAL)                \
    X(lnew, "ln_e.weight", 0, 1, C, LNL_INIT_GAIN, 0, 0, c->embed_norm, LNL_GLOBAL)                                    \
    X(lneb, "ln_e.bias", 0, 1, C, LNL_INIT_ZERO, 0, 0, c->embed_norm && NB, LNL_GLOBAL)                                \
    X(lnea, "ln_e.alpha", 0, 1, 1, LNL_INIT_ALPHA_FINAL, 0, 0, c->embed_norm && DYN, LNL_GLOBAL)                       \
    X(lnes, "ln_e.shift", 0, 1, 1, LNL_INIT_ZERO, 0, 0, c->embed_norm && DERF, LNL_GLOBAL)                             \
    X(ln1w, "ln_1.weight", 1, 1, C, LNL_INIT_GAIN, 0, 0, A.pre_norm, LNL_SUB(LNL_ATTN, pre_w))                         \
    X(ln1b, "ln_1.bias", 1, 1, C, LNL_INIT_ZERO, 0, 0, A.pre_norm && NB, LNL_SUB(LNL_ATTN, pre_b))                     \
    X(ln1a, "ln_1.alpha", 1, 1, 1, LNL_INIT_ALPHA_ATTN, 0, 0, A.pre_norm && DYN, LNL_SUB(LNL_ATTN, pre_a))             \
    X(ln1s, "ln_1.shift", 1, 1, 1, LNL_INIT_ZERO, 0, 0, A.pre_norm && DERF, LNL_SUB(LNL_ATTN, pre_s))                  \
    X(qkvw, "attn.c_attn.weight", 1, 3 * C, C, LNL_INIT_NORMAL, 1, 1, 1, LNL_SUB(LNL_ATTN, in_w))                      \
    X(qkvb, "attn.c_attn.bias", 1, 1, 3 * C, LNL_INIT_ZERO, 0, 0, A.bias, LNL_SUB(LNL_ATTN, in_b))                     \
    X(qkvnw, "attn.q_norm.weight|attn.k_norm.weight|attn.v_norm.weight", 1, 3, HS, LNL_INIT_GAIN, 0, 0,                \
      A.qkv_norm, LNL_SUB(LNL_ATTN, qkvn_w))                                                                           \
    X(qkvnb, "attn.q_norm.bias|attn.k_norm.bias|attn.v_norm.bias", 1, 3, HS, LNL_INIT_ZERO, 0, 0,                      \
      A.qkv_norm && NB, LNL_SUB(LNL_ATTN, qkvn_b))                                                                     \
    X(qkvna, "attn.q_norm.alpha|attn.k_norm.alpha|attn.v_norm.alpha", 1, 3, 1, LNL_INIT_ALPHA_ATTN, 0, 0,              \
      A.qkv_norm && DYN, LNL_SUB(LNL_ATTN, qkvn_a))                                                                    \
    X(qkvns, "attn.q_norm.shift|attn.k_norm.shift|attn.v_norm.shift", 1, 3, 1, LNL_INIT_ZERO, 0, 0,                    \
      A.qkv_norm && DERF, LNL_SUB(LNL_ATTN, qkvn_s))                                                                   \
    X(qknw, "attn.q_norm.weight|attn.k_norm.weight", 1, 2, QKN, LNL_INIT_GAIN, 0, 0, A.qk_norm,                        \
      LNL_SUB(LNL_ATTN, qkn_w))                                                                                        \
    X(qknb, "attn.q_norm.bias|attn.k_norm.bias", 1, 2, QKN, LNL_INIT_ZERO, 0, 0, A.qk_norm && NB,                      \
      LNL_SUB(LNL_ATTN, qkn_b))                                                                                        \
    X(qkna, "attn.q_norm.alpha|attn.k_norm.alpha", 1, 2, 1, LNL_INIT_ALPHA_ATTN, 0, 0, A.qk_norm && DYN,               \
      LNL_SUB(LNL_ATTN, qkn_a))                                                                                        \
    X(qkns, "attn.q_norm.shift|attn.k_norm.shift", 1, 2, 1, LNL_INIT_ZERO, 0, 0, A.qk_norm && DERF,                    \
      LNL_SUB(LNL_ATTN, qkn_s))                                                                                        \
    X(attprojw, "attn.c_proj.weight", 1, C, C, LNL_INIT_RESID, 1, 1, 1, LNL_SUB(LNL_ATTN, proj_w))                     \
    X(attprojb, "attn.c_proj.bias", 1, 1, C, LNL_INIT_ZERO, 0, 0, A.bias, LNL_SUB(LNL_ATTN, proj_b))                   \
    X(ln1ow, "ln_1_out.weight", 1, 1, C, LNL_INIT_GAIN, 0, 0, A.out_norm, LNL_SUB(LNL_ATTN, out_w))                    \
    X(ln1ob, "ln_1_out.bias", 1, 1, C, LNL_INIT_ZERO, 0, 0, A.out_norm && NB, LNL_SUB(LNL_ATTN, out_b))                \
    X(ln1oa, "ln_1_out.alpha", 1, 1, 1, LNL_INIT_ALPHA_ATTN, 0, 0, A.out_norm && DYN, LNL_SUB(LNL_ATTN, out_a))        \
    X(ln1os, "ln_1_out.shift", 1, 1, 1, LNL_INIT_ZERO, 0, 0, A.out_norm && DERF, LNL_SUB(LNL_ATTN, out_s))             \
    X(ln1pw, "ln_1_post.weight", 1, 1, C, LNL_INIT_GAIN, 0, 0, A.post_norm, LNL_SUB(LNL_ATTN, post_w))                 \
    X(ln1pb, "ln_1_post.bias", 1, 1, C, LNL_INIT_ZERO, 0, 0, A.post_norm && NB, LNL_SUB(LNL_ATTN, post_b))             \
    X(ln1pa, "ln_1_post.alpha", 1, 1, 1, LNL_INIT_ALPHA_ATTN, 0, 0, A.post_norm && DYN, LNL_SUB(LNL_ATTN, post_a))     \
    X(ln1ps, "ln_1_post.shift", 1, 1, 1, LNL_INIT_ZERO, 0, 0, A.post_norm && DERF, LNL_SUB(LNL_ATTN, post_s))          \
    X(askip, "attn_skip", 1, 1, C, LNL_INIT_ONE, 0, 0, A.skip_learned, LNL_SUB(LNL_ATTN, skip))                        \
    X(ln2w, "ln_2.weight", 1, 1, C, LNL_INIT_GAIN, 0, 0, M.pre_norm, LNL_SUB(LNL_MLP, pre_w))                          \
    X(ln2b, "ln_2.bias", 1, 1, C, LNL_INIT_ZERO, 0, 0, M.pre_norm && NB, LNL_SUB(LNL_MLP, pre_b))                      \
    X(ln2a, "ln_2.alpha", 1, 1, 1, LNL_INIT_ALPHA_MLP, 0, 0, M.pre_norm && DYN, LNL_SUB(LNL_MLP, pre_a))               \
    X(ln2s, "ln_2.shift", 1, 1, 1, LNL_INIT_ZERO, 0, 0, M.pre_norm && DERF, LNL_SUB(LNL_MLP, pre_s))                   \
    X(fcw, "mlp.c_fc.weight", 1, 4 * C, C, LNL_INIT_NORMAL, 1, 1, 1, LNL_SUB(LNL_MLP, in_w))                           \
    X(fcb, "mlp.c_fc.bias", 1, 1, 4 * C, LNL_INIT_ZERO, 0, 0, M.bias, LNL_SUB(LNL_MLP, in_b))                          \
    X(fcprojw, "mlp.c_proj.weight", 1, C, 4 * C, LNL_INIT_RESID, 1, 1, 1, LNL_SUB(LNL_MLP, proj_w))                    \
    X(fcprojb, "mlp.c_proj.bias", 1, 1, C, LNL_INIT_ZERO, 0, 0, M.bias, LNL_SUB(LNL_MLP, proj_b))                      \
    X(ln2ow, "ln_2_out.weight", 1, 1, C, LNL_INIT_GAIN, 0, 0, M.out_norm, LNL_SUB(LNL_MLP, out_w))                     \
    X(ln2ob, "ln_2_out.bias", 1, 1, C, LNL_INIT_ZERO, 0, 0, M.out_norm && NB, LNL_SUB(LNL_MLP, out_b))                 \
    X(ln2oa, "ln_2_out.alpha", 1, 1, 1, LNL_INIT_ALPHA_MLP, 0, 0, M.out_norm && DYN, LNL_SUB(LNL_MLP, out_a))          \
    X(ln2os, "ln_2_out.shift", 1, 1, 1, LNL_INIT_ZERO, 0, 0, M.out_norm && DERF, LNL_SUB(LNL_MLP, out_s))              \
    X(ln2pw, "ln_2_post.weight", 1, 1, C, LNL_INIT_GAIN, 0, 0, M.post_norm, LNL_SUB(LNL_MLP, post_w))                  \
    X(ln2pb, "ln_2_post.bias", 1, 1, C, LNL_INIT_ZERO, 0, 0, M.post_norm && NB, LNL_SUB(LNL_MLP, post_b))              \
    X(ln2pa, "ln_2_post.alpha", 1, 1, 1, LNL_INIT_ALPHA_MLP, 0, 0, M.post_norm && DYN, LNL_SUB(LNL_MLP, post_a))       \
    X(ln2ps, "ln_2_post.shift", 1, 1, 1, LNL_INIT_ZERO, 0, 0, M.post_norm && DERF, LNL_SUB(LNL_MLP, post_s))           \
    X(mskip, "mlp_skip", 1, 1, C, LNL_INIT_ONE, 0, 0, M.skip_learned, LNL_SUB(LNL_MLP, skip))                          \
    X(gate, "gate", 1, 1, 1, LNL_INIT_ZERO, 0, 0, A.gate || M.gate, LNL_SUB(LNL_SUB_BOTH, gate))                       \
    X(lnfw, "ln_f.weight", 0, 1, C, LNL_INIT_GAIN, 0, 0, c->final_norm, LNL_GLOBAL)                                    \
    X(lnfb, "ln_f.bias", 0, 1, C, LNL_INIT_ZERO, 0, 0, c->final_norm && NB, LNL_GLOBAL)                                \
    X(lnfa, "ln_f.alpha", 0, 1, 1, LNL_INIT_ALPHA_FINAL, 0, 0, c->final_norm && DYN, LNL_GLOBAL)                       \
    X(lnfs, "ln_f.shift", 0, 1, 1, LNL_INIT_ZERO, 0, 0, c->final_norm && DERF, LNL_GLOBAL)

enum {
#define X(f, n, pl, r, cc, i, d, t, p, place) LNL_ROLE_##f,
    LNL_PARAMS(X)
#undef X
        LNL_NUM_ROLES
};

/* One pointer per role, into the params (or grads) allocation; NULL if no layer uses the role. */
typedef struct {
#define X(f, n, pl, r, cc, i, d, t, p, place) float *f;
    LNL_PARAMS(X)
#undef X
} LnlParams;

/* One named tensor as it appears in files. */
typedef struct {
    char name[64];     /* e.g. "h.3.attn.c_attn.weight" */
    int role, layer;   /* layer is -1 for global tensors */
    size_t offset;     /* floats from the start of the params allocation */
    size_t numel;
    int ndim;
    int shape[2];      /* in-memory shape (rows, cols) or (cols) */
    uint8_t decay;     /* gets weight decay */
    uint8_t hf_transpose;
} LnlTensorView;

/* Saved activations of one sub-layer; a pointer is NULL when the spec does not need it. */
typedef struct {
    float *u, *u_mean, *u_rstd;          /* pre-norm output (N, C) */
    float *qkv;                          /* (N, 3C) */
    /* the attention's input with normalized q, k (and v for qkv_norm) (N, 3C); the norms' stats:
     * qkv_norm (N*3*NH), qk_norm per head (N*2*NH), qk_norm full (N*2) */
    float *qkvn, *qkvn_mean, *qkvn_rstd;
    float *qk, *qkn;                     /* qk_norm: q|k gathered from qkv (the norms' input), normalized (N, 2C) */
    float *att;                          /* (B, NH, T, T) */
    float *atty;                         /* attention output before c_proj (N, C) */
    float *fch, *fch_gelu;               /* (N, 4C) */
    float *fproj;                        /* F's output: attention's or the MLP's c_proj (N, C) */
    float *fo, *fo_mean, *fo_rstd;       /* out-norm output (N, C) */
    /* BranchNorm's parameter-free norm N0(fin) of its input fin (fo, else fproj) (N, C), stats (N) */
    float *branch_n0, *branch_n0_mean, *branch_n0_rstd;
    float *branch_mix;                   /* BranchNorm output (1 - lambda) fin + lambda N0(fin) (N, C) */
    float *r, *post_mean, *post_rstd;    /* residual sum before N_post (N, C) */
} LnlSubActs;

/* KV-cache decoding state (lnl_model_alloc_decode): B streams that advance in lockstep. A pass
 * feeds up to R positions per stream (R = 1: one token per step; R = P: a P-token prompt in one
 * prefill pass). Activations hold B*R rows; a pass of n positions uses the first B*n, row b*n + t
 * for position pos + t of stream b. The attention's past lives in the caches. Separate from the
 * training activations, so sampling between training steps is fine. */
typedef struct {
    int B, T;                 /* streams; cache capacity in positions (<= n_positions) */
    int R;                    /* positions per stream one pass may feed (1 <= R <= T) */
    int len;                  /* positions cached so far; the next pass may start at any pos <= len */
    float *mem;               /* one allocation for every float buffer below */
    float *kcache, *vcache;   /* (L, B, T, C): k and v exactly as attention uses them (after qkv_norm / qk_norm) */
    float **stream;           /* (2L+1) pointers to (B*R, C), as LnlModel.stream */
    LnlSubActs *sub;          /* (2L), as LnlModel.sub with B*R rows; no att matrix */
    float *emb, *emb_mean, *emb_rstd; /* (B*R, C), (B*R), (B*R) */
    float *top;               /* (B, C) each stream's last row of a pass's top stream (R > 1 only) */
    float *lnf, *lnf_mean, *lnf_rstd; /* (B, C), (B), (B): the head runs on the last row only */
    float *logits;            /* (B, V) of the last pass's last position */
    float *scores;            /* (T) attention scratch */
    int32_t *tok;             /* (B, R) a pass's tokens, gathered per stream */
} LnlDecode;

typedef struct {
    LnlConfig cfg;
    char run_id[40]; /* the training run that made these weights (metadata lnlab.run_id), or "" */
    /* parameters */
    size_t role_size[LNL_NUM_ROLES]; /* floats per role in the allocation (0 if absent) */
    size_t num_alloc;                /* floats allocated for parameters */
    size_t num_params;               /* floats in tensor views (the model's real size) */
    float *params_mem, *grads_mem;
    LnlParams p, g;
    LnlTensorView *views;
    int nviews;
    float *gain_eff; /* (3C) scratch: the one-plus gain 1 + w of the norm being computed (block.c) */
    /* activations for batch B x T (allocated by lnl_model_alloc_acts) */
    int B, T;
    float *acts_mem;
    size_t acts_floats;
    float *emb, *emb_mean, *emb_rstd; /* embedding before ln_e (N, C); emb == stream[0] without ln_e */
    float **stream;                   /* stream[k], k = 0..2L: input of sub-layer k, (N, C) */
    LnlSubActs *sub;                  /* (2L), sub-layer k = 2l + s */
    float *lnf, *lnf_mean, *lnf_rstd; /* (N, C) */
    float *logits;                    /* (N, V), after the softcap if the config has one; after
                                       * lnl_model_backward it holds dLoss/d(the LM head's output) instead */
    float *losses;                    /* (N) per-token cross-entropy */
    float *xent_max, *xent_inv_z;     /* (N) each: per row, the max logit and 1/sum exp(logit - max) */
    float *att_rowmax;                /* (B, NH, T) scratch: each attention row's largest logit */
    float *attn_logit_max;            /* (L) per block, the largest attention logit of the last forward
                                       * (lnl_attention_forward's rowmax); NAN unless diag_forward */
    float *branch_vars;               /* (2L) Admin's profiling: each sub-layer's branch variance */
    int32_t *inputs, *targets;        /* (N) copies of the last batch */
    int have_targets;
    /* backward scratch; d_fin: dLoss/d the input of the branch's BranchNorm or out-norm, copied into d_f */
    float *scratch_mem;
    float *d_stream[3], *d_r, *d_f, *d_fin, *d_u, *d_tmp, *d_atty, *d_qkv, *d_qkvn, *d_fch2, *d_att;
    float *d_losses, *d_x; /* dLoss/dlogits lives in logits (lnl_xent_backward_inplace) */
    float *d_logz;         /* (N) the z-loss's dLoss/d log Z per row */
    /* per-block statistics written by backward: ||dLoss/d stream leaving block l||, l = 0..L */
    double *dx_norm;
    /* runtime settings */
    float branch_lambda; /* BranchNorm strength for the next forward */
    int diag_forward;    /* forwards also record attn_logit_max (diagnostics; 0 by default: no cost) */
    float z_loss_coef;   /* z-loss coefficient for the next forward and its backward (0 by default: off);
                          * the trainer's --z-loss */
    float loss;          /* mean cross-entropy of the last forward with targets (never the z-loss) */
    float z_loss;        /* z_loss_coef * mean log(Z)^2 of that forward (0 when off): the objective the
                          * backward differentiates is loss + z_loss */
    /* generation */
    LnlDecode dec;
} LnlModel;

/* Builds the parameter layout for cfg (validated) and allocates params and grads (zeroed). The
 * model library never exits the process: invalid settings and failed allocations come back as
 * -1 with e set (lnl_model_create, lnl_model_alloc_acts, lnl_model_alloc_decode*). */
int lnl_model_create(LnlModel *m, const LnlConfig *cfg, LnlErr *e);
void lnl_model_free(LnlModel *m);
/* The init rules of the config (docs/PLACEMENTS.md, section 4): matrices and embeddings
 * N(0, lnl_config_init_std), residual output projections divided by sqrt(2L) if init_resid_scale,
 * DeepNorm's beta; biases 0, gains 1. Admin's omegas stay 1 until lnl_model_admin_profile. */
void lnl_model_init_weights(LnlModel *m, uint64_t seed);
/* Allocates activations and scratch for batches of B x T (T <= n_positions). */
int lnl_model_alloc_acts(LnlModel *m, int B, int T, LnlErr *e);
/* Bytes a model with config c and batches of B x T need, from the same layout code that
 * allocates them (lnl_model_create, lnl_model_alloc_acts); allocates only a few pointers. The
 * optimizer's state is its own business (src/train/memcheck.h adds AdamW's moments). */
typedef struct {
    uint64_t num_alloc;      /* floats in each parameter-sized buffer */
    uint64_t num_params;     /* floats in tensor views: what a model file holds */
    uint64_t params, grads;  /* num_alloc floats each */
    uint64_t acts;           /* activations of a forward on B x T (and the batch copies) */
    uint64_t scratch;        /* backward scratch */
} LnlModelMemory;
int lnl_model_memory(const LnlConfig *c, int B, int T, LnlModelMemory *out, LnlErr *e);
/* Forward on inputs (B, T); with targets (B, T) also computes the mean cross-entropy (returned, and
 * in m->loss; else 0) and, with z_loss_coef > 0, the z-loss term m->z_loss = z_loss_coef * mean
 * over the same tokens of (log Z)^2, Z = sum_v exp(logit_v) (Wortsman et al. 2023), which the
 * returned value leaves out.
 * A (B, T) other than the allocated one re-allocates the activations first (valid sizes are the
 * caller's to check, as lnl_model_alloc_acts does); if that allocation fails the forward returns
 * NaN and leaves the model without activations. Callers who need the error call
 * lnl_model_alloc_acts themselves. */
float lnl_model_forward(LnlModel *m, const int32_t *inputs, const int32_t *targets, int B, int T);
void lnl_model_zero_grad(LnlModel *m);
/* Backward of the last forward's training objective, loss + z_loss (it must have had targets),
 * through the logit softcap if the config has one; grads += .
 * Returns -1, touching nothing, if there was no such forward since the last backward. */
int lnl_model_backward(LnlModel *m);
/* Recomputes block l (0-based) from m->stream[2l] as the last forward did, in place: its saved
 * activations and stream[2l+1], stream[2l+2] are overwritten; later blocks are not recomputed.
 * For derivative checks of one block (tests/unit/test_sensitivity.c). */
void lnl_model_block_forward(LnlModel *m, int l);
/* Vector-Jacobian product of block l (0-based) at the activations of the last forward:
 * din = (d stream[2l+2] / d stream[2l])^T dout, (B*T, C) each; the b2t path (the block input
 * added before the last norm) is included. Parameter gradients are not touched. Uses the
 * backward scratch (d_stream, d_r, ...), so dout and din must be the caller's own buffers. */
void lnl_model_block_vjp(LnlModel *m, int l, const float *dout, float *din);
/* Admin's profiling pass: one forward on the batch with omega = 1, then omega_i =
 * sqrt(1 + sum_{j<i} Var f_j) over sub-layers in order. No-op unless cfg.admin_profile. Returns
 * -1 if the activations for B x T could not be allocated (lnl_model_alloc_acts first avoids it). */
int lnl_model_admin_profile(LnlModel *m, const int32_t *inputs, int B, int T);
/* BranchNorm strength for a training step: max(0, 1 - step / branchnorm_steps). */
float lnl_branchnorm_lambda(const LnlConfig *c, long step);
/* Model FLOPs of one training step (forward + backward) on B x T tokens, counted from the matrix
 * products only: 6 per token per weight of every matmul (2 forward, 4 backward; the tied LM head
 * counts V*C) and, for causal attention, 6 * C per (query, key <= query) pair per layer (QK^T and
 * att @ V forward, twice that backward):
 *     B*T * (6 * (12 L C^2 + V C) + 6 L C (T + 1))
 * Norms, GELU, softmax, cross-entropy, embeddings and AdamW are not counted. The one formula that
 * lnlab bench's GFLOP/s and lnlab train's MFU use; docs/PERFORMANCE.md ("FLOPs") states it. */
double lnl_model_step_flops(const LnlConfig *c, int B, int T);

/* KV-cache decoding: generation through the same block code as the forward. In decode mode the
 * attention step appends the k and v of a pass's positions to its layer's cache and attends, for
 * each of them, over the stream's positions 0..its own; every other step of the block (norms,
 * MLP, residual, b2t, gates, skips, BranchNorm with branch_lambda) runs unchanged on the pass's
 * rows. Fed the tokens of a sequence, one at a time or as a prefill, the logits equal
 * lnl_model_forward's at each position (tests/unit/test_decode.c). */
/* Allocates the caches for one stream and up to max_T positions (1 <= max_T <= n_positions), and
 * activations for passes of up to max_rows positions (1 <= max_rows <= max_T: 1 for token-by-token
 * decoding, the prompt's length to prefill it in one pass); replaces any earlier decode state.
 * Starts empty. */
int lnl_model_alloc_decode(LnlModel *m, int max_T, int max_rows, LnlErr *e);
/* The same for B streams decoded together (the _batch functions). */
int lnl_model_alloc_decode_batch(LnlModel *m, int B, int max_T, int max_rows, LnlErr *e);
/* Forgets the cached positions (the next pass must start at pos 0). */
void lnl_model_decode_reset(LnlModel *m);
/* Feeds token at position pos and returns the logits (V) for position pos + 1, valid until the
 * next pass. Requires one stream, 0 <= token < V, 0 <= pos <= (positions cached) and
 * pos < max_T <= n_positions (asserted: callers check user input). A pos below the number
 * cached rewinds: positions from pos on are replaced. */
const float *lnl_model_decode_step(LnlModel *m, int32_t token, int pos);
/* B streams at once: tokens (B), all at position pos; returns logits (B, V). */
const float *lnl_model_decode_step_batch(LnlModel *m, const int32_t *tokens, int pos);
/* Prefill: feeds tokens (P) at positions pos..pos+P-1 in passes of up to max_rows positions, each
 * pass one run of the blocks on all its rows (every matrix product on (rows, C), attention causal
 * over the cache and the pass's own rows). Caches k and v of all P positions and returns the
 * logits (V) for position pos + P; only the last row goes through ln_f and the LM head. Equal to
 * P calls of lnl_model_decode_step to float rounding. Requires P >= 1, pos + P <= max_T and the
 * conditions of lnl_model_decode_step (asserted). */
const float *lnl_model_decode_prefill(LnlModel *m, const int32_t *tokens, int P, int pos);
/* B streams at once: tokens (B, P), row b for stream b; returns logits (B, V). */
const float *lnl_model_decode_prefill_batch(LnlModel *m, const int32_t *tokens, int P, int pos);

/* Layer l's (0-based) slice of a per-layer role: base is m->p.<role> or m->g.<role> (NULL if the
 * role is absent, which gives NULL). */
float *lnl_model_slice(const LnlModel *m, float *base, int role, int l);
/* The branch value f of a sub-layer that enters the residual sum r = skip*res + dt*g*f: F's
 * output after any out-norm and BranchNorm (branch_mix, else fo, else fproj). */
const float *lnl_sub_branch_out(const LnlSubActs *s);

/* Tensor lookup by file name, or NULL. */
const LnlTensorView *lnl_model_find(const LnlModel *m, const char *name);
/* Global L2 norm of all gradients (double accumulation). */
double lnl_model_grad_norm(const LnlModel *m);
/* L2 norm of the gradients of block l's parameters (0-based layer). */
double lnl_model_layer_grad_norm(const LnlModel *m, int l);

#endif
