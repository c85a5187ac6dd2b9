/* Model configuration and the per-layer placement spec: where each normalization sits is data.
 * Presets only fill the spec (spec.c); the block code reads the flags and never a preset name.
 *
 * For layer l (1-based) and sub-layer s in {attn, mlp}, with sub-layer input h and block input x:
 *   u   = pre_norm ? N_pre(h) * in_scale : h
 *   f   = F_s(u)                                   (attn: q, k, v normalized per head if qkv_norm, or q
 *                                                   and k per head or over C if qk_norm; scores capped
 *                                                   by the model's attn_softcap; F's linear layers add
 *                                                   biases if bias)
 *   f   = out_norm ? N_out(f) : f
 *   f   = branch_norm ? (1 - lambda) f + lambda N0(f) : f     (N0: parameter-free, see PLACEMENTS.md)
 *   res = res_from_normed ? u : h
 *   r   = skip * res + dt_s * g * f  [+ x if b2t and s == mlp]   (dt_s: the sub-layer's dt)
 *         skip = skip_scale * (skip_learned ? omega_s (C) : 1),  g = gate ? gate_l : 1
 *   h'  = post_norm ? N_post(r) : r
 */
#ifndef LNL_SPEC_H
#define LNL_SPEC_H

#include <stdint.h>

#include "../common/util.h"
#include "../kernels/kernels.h"

#define LNL_MAX_LAYERS 1024
enum { LNL_ATTN = 0, LNL_MLP = 1 };

/* QK-norm (LnlSubSpec.qk_norm): q and k (not v) normalized after c_attn, each with its own gain
 * (and bias for LayerNorm): per head over the head size HS (Gemma 3), or over all C channels
 * before the split into heads (OLMo 2). Append-only: the values are stored in configs by name. */
typedef enum { LNL_QK_NORM_OFF = 0, LNL_QK_NORM_HEAD = 1, LNL_QK_NORM_FULL = 2 } LnlQkNorm;
#define LNL_QK_NORM_NAMES "off|head|full"

typedef struct {
    uint8_t pre_norm;        /* N_pre before F */
    uint8_t out_norm;        /* N_out on F's output (Peri-LN / Sandwich) */
    uint8_t post_norm;       /* N_post after the residual add (Post-LN) */
    uint8_t res_from_normed; /* the residual carries u, not h (HybridNorm's FFN) */
    uint8_t b2t;             /* add the block input x before N_post (mlp only) */
    uint8_t qkv_norm;        /* per-head norms on q, k, v (attn only; HybridNorm) */
    uint8_t qk_norm;         /* LnlQkNorm: norms on q and k (attn only; not with qkv_norm in one model) */
    uint8_t skip_learned;    /* learned per-channel skip omega (Admin) */
    uint8_t gate;            /* multiply the branch by the layer's learned scalar gate (ReZero) */
    uint8_t branch_norm;     /* BranchNorm on the branch output */
    uint8_t bias;            /* F's linear layers have biases (attn: c_attn, c_proj; mlp: c_fc, c_proj) */
    float in_scale;          /* multiplies N_pre(h); 1/sqrt(l) for LayerNorm Scaling */
    float skip_scale;        /* constant skip multiplier; DeepNorm's alpha */
    float dt;                /* the residual step of this sub-layer (attn.dt / mlp.dt); --dt sets every one */
} LnlSubSpec;

/* How the init std is chosen: the number init_std, or 1/sqrt(n_embd) (Xavier's std for a C x C
 * matrix, fairseq's embedding std). */
typedef enum { LNL_STD_FIXED = 0, LNL_STD_INV_SQRT_C = 1 } LnlStdRule;
#define LNL_STD_INV_SQRT_C_NAME "1/sqrt(C)"
#define LNL_GPT2_INIT_STD 0.02f /* lnl_config_default's init_std */
/* The largest logit softcap a config takes (--logit-softcap, the JSON field): far above any logit */
#define LNL_LOGIT_SOFTCAP_MAX 1e6

typedef struct {
    /* sizes */
    int n_layer, n_head, n_embd, n_positions, vocab_size;
    /* normalization and residual step */
    LnlNormKind norm;    /* every norm's kind (LNL_NORMS) */
    uint8_t norm_gain;   /* LnlNormGain: every norm's gain is w, or 1 + w with w initialized to 0 */
    float eps;
    float dt;            /* the model's residual step: every sub-layer's dt unless the spec gives one its own
                          * (set both with lnl_config_set_dt) */
    uint8_t final_norm;  /* N before the tied LM head (ln_f) */
    uint8_t embed_norm;  /* N right after the embedding (ln_e) */
    uint8_t embed_scale; /* multiply the embedding by sqrt(C) (Spike No More) */
    uint8_t embed_scale_learned; /* multiply the embedding by a learned scalar embed_scale, initialized to
                                  * sqrt(C) (the DyT and Derf sources' language models) */
    float attn_softcap;  /* attention scores s = S tanh(s / S) before the softmax (Gemma 2); 0: off */
    float logit_softcap; /* S > 0: the LM head's logits become S tanh(z / S) (Gemma 2); 0: off */
    char preset[32];     /* the preset the spec was filled from, for reports; "custom" if edited */
    /* init rules (used when a model is created, kept for the record) */
    float init_std;           /* N(0, std) for matrices and embeddings under LNL_STD_FIXED; GPT-2: 0.02 */
    uint8_t init_std_rule;    /* LnlStdRule; lnl_config_init_std gives the std it means */
    uint8_t init_resid_scale; /* residual output projections get std / sqrt(2L) */
    float init_beta;          /* DeepNorm: fc, mlp proj, v and attn proj weights times beta */
    uint8_t admin_profile;    /* Admin: set omega by a one-batch profiling pass before training */
    float norm_alpha[3];      /* DyT / Derf: the initial a of the attention sub-layer's norms, the MLP
                               * sub-layer's, and ln_f's and ln_e's (LNL_ALPHA_*) */
    int branchnorm_steps;     /* BranchNorm: lambda = max(0, 1 - step / branchnorm_steps) */
    float mix_ratio;          /* Mix-LN: layers l <= floor(mix_ratio * L) are Post-LN */
    LnlSubSpec sub[LNL_MAX_LAYERS][2];
} LnlConfig;

/* The norm kinds' names (kernels.h's LnlNormKind), for flags and files. */
#define LNL_NORMS "layernorm|rmsnorm|dyt|derf"
const char *lnl_norm_name(LnlNormKind kind);
/* The kind called name; -1 if none. */
int lnl_norm_parse(const char *name, LnlNormKind *kind);
/* A norm's gain: w itself, or 1 + w with w initialized to 0 (Gemma's RMSNorm). */
typedef enum { LNL_GAIN_PLAIN = 0, LNL_GAIN_ONE_PLUS = 1 } LnlNormGain;
#define LNL_NORM_GAINS "plain|one-plus"
const char *lnl_norm_gain_name(LnlNormGain gain);
int lnl_norm_gain_parse(const char *name, LnlNormGain *gain);
/* The positions of LnlConfig.norm_alpha. */
enum { LNL_ALPHA_ATTN = 0, LNL_ALPHA_MLP = 1, LNL_ALPHA_FINAL = 2 };
/* The initial a of a kind's sources: DyT 0.8 (attention), 0.2 (MLP, final), LLaMA-DyT (Zhu et al.
 * 2025); Derf 1, 1, 1, its nanoGPT patch (zlab-princeton/Derf); 1 for the kinds without a. */
void lnl_norm_alpha_default(LnlNormKind kind, float alpha[3]);
/* Sets every norm's kind and, with it, the initial a of that kind's source. */
void lnl_config_set_norm(LnlConfig *c, LnlNormKind kind);

/* Names accepted by lnl_config_preset, for help texts. */
#define LNL_PRESETS "post|pre|peri|sandwich|b2t|mix|lns|hybrid|hybrid*|deepnorm|admin|branchnorm|rezero|olmo2|gemma2"
/* Named sizes: gpt2, gpt2-medium, gpt2-large, gpt2-xl (layers/heads/dim). */
#define LNL_SIZES "gpt2|gpt2-medium|gpt2-large|gpt2-xl"

/* GPT-2 defaults (12/12/768, T 1024, V 50257, LayerNorm eps 1e-5, dt 1, preset pre). */
void lnl_config_default(LnlConfig *c);
/* Sets n_layer/n_head/n_embd from a named size. */
int lnl_config_size(LnlConfig *c, const char *size, LnlErr *e);
/* Fills the spec, the final and embedding norms, the embedding scale, the linear biases and the
 * init rules for a preset from its row of the preset table (spec.c; docs/PLACEMENTS.md says
 * where each default comes from); n_layer must already be set. A preset whose std rule is
 * LNL_STD_FIXED leaves the number init_std as it is (lnl_config_default: 0.02). */
int lnl_config_preset(LnlConfig *c, const char *preset, LnlErr *e);

/* What a preset sets besides its per-layer placement: one row of the preset table. */
typedef struct {
    uint8_t final_norm, embed_norm, embed_scale;
    uint8_t bias;             /* every sub-layer's linear biases */
    uint8_t init_std_rule;    /* LnlStdRule */
    uint8_t init_resid_scale; /* GPT-2's 1/sqrt(2L) on the residual output projections */
} LnlPresetDefaults;
int lnl_preset_defaults(const char *preset, LnlPresetDefaults *d, LnlErr *e);

/* The std of the normal init of matrices and embeddings that c's rule gives. */
float lnl_config_init_std(const LnlConfig *c);
/* Parses an init std as written on the command line or in a config: a number in (0, 10], or
 * "1/sqrt(C)"; `what` names it in the error. */
int lnl_parse_init_std(const char *v, LnlStdRule *rule, float *std, const char *what, LnlErr *e);
/* The residual step dt of the model and of every sub-layer. */
void lnl_config_set_dt(LnlConfig *c, float dt);
/* Every layer's attention qk_norm (an LnlQkNorm). */
void lnl_config_set_qk_norm(LnlConfig *c, int kind);
/* The qk_norm of every layer's attention, or -1 when layers differ. */
int lnl_config_qk_norm(const LnlConfig *c);
/* The length of the q and k norm gains: C when the layers' qk_norm is full, else the head size
 * (a model does not mix head and full: lnl_config_validate). */
int lnl_config_qk_norm_dim(const LnlConfig *c);
/* Linear biases of every sub-layer on or off. */
void lnl_config_set_bias(LnlConfig *c, int on);
/* 1 or 0 when every sub-layer of c has its linear biases on or off; -1 when they differ. */
int lnl_config_bias(const LnlConfig *c);
/* Applies spec overrides "KEY=VALUE[,KEY=VALUE...]", KEY = [attn.|mlp.]field[@A-B] for
 * per-sub-layer fields, bias included (layers A..B, 1-based; default all; "field=V@A-B" also works), or a top-level field
 * (final_norm, embed_norm, embed_scale, dt, eps); dt sets every sub-layer's, attn.dt / mlp.dt
 * those of one kind. Marks the preset "custom". */
int lnl_config_override(LnlConfig *c, const char *spec, LnlErr *e);
/* Checks sizes and spec for consistency (heads divide dim, b2t only on mlp, ...). */
int lnl_config_validate(const LnlConfig *c, LnlErr *e);

/* What a built model computes differently under `now` than under `was` (a file's config and
 * the one the command line made of it): sizes, norm kind, eps, dt, the final and embedding norms,
 * the embedding scale, the attention softcap, the per-layer spec (named by its preset; the linear biases on their own,
 * "bias on -> off"), Mix-LN's ratio and BranchNorm's
 * schedule where the spec uses them; init rules are not compared (they do not change a built
 * model). Returns NULL when nothing differs, else one line such as "preset post -> b2t, dt 1 ->
 * 0.1" (caller frees). */
char *lnl_config_diff(const LnlConfig *was, const LnlConfig *now);

/* The config as the JSON string stored in safetensors __metadata__["lnlab.config"] and in
 * RUN/config.json (format documented in docs/FORMATS.md). Caller frees. */
char *lnl_config_to_json(const LnlConfig *c);
int lnl_config_from_json(LnlConfig *c, const char *json, const char *what, LnlErr *e);

#endif
