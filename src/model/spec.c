/* Presets, overrides and the JSON form of a model config. Presets only fill LnlConfig.sub[][];
 * equations and sources for each are in docs/PLACEMENTS.md. */
#include "spec.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_FORMAT "lnlab.config"
#define CONFIG_VERSION 1

void lnl_config_default(LnlConfig *c) {
    memset(c, 0, sizeof *c);
    c->n_layer = 12;
    c->n_head = 12;
    c->n_embd = 768;
    c->n_positions = 1024;
    c->vocab_size = 50257;
    lnl_config_set_norm(c, LNL_NORM_LAYERNORM);
    c->eps = 1e-5f;
    c->dt = 1.0f; /* lnl_config_preset below gives it to every sub-layer */
    c->init_std = LNL_GPT2_INIT_STD;
    c->init_beta = 1.0f;
    c->branchnorm_steps = 1000;
    c->mix_ratio = 0.25f;
    LnlErr e;
    lnl_config_preset(c, "pre", &e);
}

int lnl_config_size(LnlConfig *c, const char *size, LnlErr *e) {
    static const struct {
        const char *name;
        int L, H, C;
    } sizes[] = {{"gpt2", 12, 12, 768}, {"gpt2-medium", 24, 16, 1024}, {"gpt2-large", 36, 20, 1280}, {"gpt2-xl", 48, 25, 1600}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (strcmp(size, sizes[i].name) == 0) {
            c->n_layer = sizes[i].L;
            c->n_head = sizes[i].H;
            c->n_embd = sizes[i].C;
            return 0;
        }
    }
    return lnl_err(e, "--model-size: unknown size '%s' (one of %s)", size, LNL_SIZES);
}

static LnlSubSpec plain_sub(void) {
    LnlSubSpec s;
    memset(&s, 0, sizeof s);
    s.bias = 1;
    s.in_scale = 1.0f;
    s.skip_scale = 1.0f;
    return s;
}

/* ---- the preset table ---- */

/* Per-layer refinements of a row's placement that a flag per sub-layer cannot say. */
typedef enum {
    LAYERS_SAME,      /* every sub-layer of every layer as the row says */
    LAYERS_MIX,       /* Mix-LN: post_norm for l <= floor(mix_ratio L), pre_norm after */
    LAYERS_LNS,       /* LayerNorm Scaling: pre_norm with in_scale 1/sqrt(l) */
    LAYERS_HYBRID,    /* HybridNorm: attn qkv_norm without pre_norm; mlp pre_norm + res_from_normed */
    LAYERS_HYBRID1,   /* HybridNorm*: as HYBRID, but layer 1 is Pre-LN in both sub-layers (qkv_norm kept) */
    LAYERS_DEEPNORM   /* DeepNorm: skip_scale (2L)^(1/4), init beta (8L)^(-1/4) */
} LayerRule;

#define X_ 1   /* on */
#define o_ 0   /* off */
#define GPT2 LNL_STD_FIXED      /* init_std as configured: GPT-2's 0.02 unless changed */
#define XAV LNL_STD_INV_SQRT_C  /* 1/sqrt(C): Xavier's std for a C x C matrix */

/* Every preset's defaults in one place; docs/PLACEMENTS.md (sections 4 and 5) gives the source
 * and the reason for each. Placement flags apply to every sub-layer (b2t: the mlp's only). The
 * presets of whole model families (olmo2, gemma2) also set what their source fixes beyond the
 * placement (`model`): the norm kind, gain and eps, the softcaps and the q/k norms; the other
 * presets leave those to the flags. */
typedef struct {
    uint8_t on;                /* the preset sets the fields below */
    LnlNormKind norm;          /* every norm's kind */
    LnlNormGain gain;          /* every norm's gain */
    float eps;                 /* every norm's eps */
    float attn_softcap, logit_softcap;
    LnlQkNorm qk_norm;         /* every attention sub-layer's */
} ModelExtras;

static const struct {
    const char *name;
    uint8_t pre, out, post, b2t, skip_learned, gate, branch_norm; /* placement */
    LayerRule layers;
    uint8_t final_norm;
    uint8_t std_rule, resid_scale, bias, embed_norm, embed_scale, admin_profile;
    ModelExtras model; /* zero (off) unless given */
} presets[] = {
    /*  name          pre out post b2t skip gate bn  layers           final std   resid bias enorm escale admin model */
    {"post",          o_, o_, X_,  o_, o_,  o_,  o_, LAYERS_SAME,     o_,   XAV,  o_,   X_,  o_,   X_,    o_, {0}},
    {"pre",           X_, o_, o_,  o_, o_,  o_,  o_, LAYERS_SAME,     X_,   GPT2, X_,   X_,  o_,   o_,    o_, {0}},
    {"peri",          X_, X_, o_,  o_, o_,  o_,  o_, LAYERS_SAME,     X_,   GPT2, o_,   X_,  X_,   o_,    o_, {0}},
    {"b2t",           o_, o_, X_,  X_, o_,  o_,  o_, LAYERS_SAME,     o_,   XAV,  o_,   X_,  o_,   X_,    o_, {0}},
    {"mix",           o_, o_, o_,  o_, o_,  o_,  o_, LAYERS_MIX,      X_,   GPT2, o_,   o_,  o_,   o_,    o_, {0}},
    {"lns",           X_, o_, o_,  o_, o_,  o_,  o_, LAYERS_LNS,      X_,   GPT2, o_,   o_,  o_,   o_,    o_, {0}},
    {"hybrid",        o_, o_, o_,  o_, o_,  o_,  o_, LAYERS_HYBRID,   X_,   GPT2, X_,   o_,  o_,   o_,    o_, {0}},
    {"hybrid*",       o_, o_, o_,  o_, o_,  o_,  o_, LAYERS_HYBRID1,  X_,   GPT2, X_,   o_,  o_,   o_,    o_, {0}},
    {"deepnorm",      o_, o_, X_,  o_, o_,  o_,  o_, LAYERS_DEEPNORM, o_,   XAV,  o_,   X_,  o_,   o_,    o_, {0}},
    {"admin",         o_, o_, X_,  o_, X_,  o_,  o_, LAYERS_SAME,     o_,   XAV,  o_,   X_,  o_,   X_,    X_, {0}},
    {"branchnorm",    o_, o_, X_,  o_, o_,  o_,  X_, LAYERS_SAME,     o_,   GPT2, X_,   X_,  o_,   o_,    o_, {0}},
    {"rezero",        o_, o_, o_,  o_, o_,  X_,  o_, LAYERS_SAME,     o_,   GPT2, X_,   X_,  o_,   o_,    o_, {0}},
    /* OLMo 2: x + N(F(x)), RMSNorm eps 1e-6, q and k RMSNormed over the full width */
    {"olmo2",         o_, X_, o_,  o_, o_,  o_,  o_, LAYERS_SAME,     X_,   GPT2, o_,   o_,  o_,   o_,    o_,
     {1, LNL_NORM_RMSNORM, LNL_GAIN_PLAIN, 1e-6f, 0.0f, 0.0f, LNL_QK_NORM_FULL}},
    /* Gemma 2: input and output norms, RMSNorm x (1 + w) eps 1e-6, embedding x sqrt(C), softcaps */
    {"gemma2",        X_, X_, o_,  o_, o_,  o_,  o_, LAYERS_SAME,     X_,   GPT2, o_,   o_,  o_,   X_,    o_,
     {1, LNL_NORM_RMSNORM, LNL_GAIN_ONE_PLUS, 1e-6f, 50.0f, 30.0f, LNL_QK_NORM_OFF}},
};
#undef X_
#undef o_
#undef GPT2
#undef XAV
#define NPRESETS (int)(sizeof presets / sizeof presets[0])

/* The row of a preset name ("sandwich" is "peri"), or -1. */
static int preset_row(const char *preset) {
    const char *p = strcmp(preset, "sandwich") == 0 ? "peri" : preset;
    for (int i = 0; i < NPRESETS; i++)
        if (strcmp(p, presets[i].name) == 0) return i;
    return -1;
}

int lnl_preset_defaults(const char *preset, LnlPresetDefaults *d, LnlErr *e) {
    int i = preset_row(preset);
    if (i < 0) return lnl_err(e, "--preset: unknown preset '%s' (one of %s)", preset, LNL_PRESETS);
    d->final_norm = presets[i].final_norm;
    d->embed_norm = presets[i].embed_norm;
    d->embed_scale = presets[i].embed_scale;
    d->bias = presets[i].bias;
    d->init_std_rule = presets[i].std_rule;
    d->init_resid_scale = presets[i].resid_scale;
    return 0;
}

int lnl_config_preset(LnlConfig *c, const char *preset, LnlErr *e) {
    int L = c->n_layer;
    if (L < 1 || L > LNL_MAX_LAYERS) return lnl_err(e, "--layers: %d is out of range [1, %d]", L, LNL_MAX_LAYERS);
    int row = preset_row(preset);
    if (row < 0) return lnl_err(e, "--preset: unknown preset '%s' (one of %s)", preset, LNL_PRESETS);
    const LayerRule rule = presets[row].layers;
    const int n_post = (int)floorf(c->mix_ratio * (float)L);
    for (int l = 0; l < L; l++) {
        for (int s = 0; s < 2; s++) {
            LnlSubSpec *q = &c->sub[l][s];
            *q = plain_sub();
            q->dt = c->dt;
            q->pre_norm = presets[row].pre;
            q->out_norm = presets[row].out;
            q->post_norm = presets[row].post;
            q->b2t = (uint8_t)(presets[row].b2t && s == LNL_MLP);
            q->skip_learned = presets[row].skip_learned;
            q->gate = presets[row].gate;
            q->branch_norm = presets[row].branch_norm;
            q->bias = presets[row].bias;
            switch (rule) {
            case LAYERS_SAME: break;
            case LAYERS_MIX:
                q->post_norm = (uint8_t)(l + 1 <= n_post);
                q->pre_norm = (uint8_t)!q->post_norm;
                break;
            case LAYERS_LNS: q->in_scale = 1.0f / sqrtf((float)(l + 1)); break;
            case LAYERS_HYBRID:
            case LAYERS_HYBRID1: {
                int first_pre = rule == LAYERS_HYBRID1 && l == 0;
                if (s == LNL_ATTN) {
                    q->qkv_norm = 1;
                    q->pre_norm = (uint8_t)first_pre;
                } else {
                    q->pre_norm = 1;
                    q->res_from_normed = (uint8_t)!first_pre;
                }
                break;
            }
            case LAYERS_DEEPNORM: q->skip_scale = powf(2.0f * (float)L, 0.25f); break;
            }
        }
    }
    c->final_norm = presets[row].final_norm;
    c->embed_norm = presets[row].embed_norm;
    c->embed_scale = presets[row].embed_scale;
    c->init_std_rule = presets[row].std_rule;
    c->init_resid_scale = presets[row].resid_scale;
    c->init_beta = rule == LAYERS_DEEPNORM ? powf(8.0f * (float)L, -0.25f) : 1.0f;
    c->admin_profile = presets[row].admin_profile;
    const ModelExtras *x = &presets[row].model;
    if (x->on) {
        lnl_config_set_norm(c, x->norm);
        c->norm_gain = (uint8_t)x->gain;
        c->eps = x->eps;
        c->attn_softcap = x->attn_softcap;
        c->logit_softcap = x->logit_softcap;
        lnl_config_set_qk_norm(c, x->qk_norm);
    }
    snprintf(c->preset, sizeof c->preset, "%s", presets[row].name);
    return 0;
}

float lnl_config_init_std(const LnlConfig *c) {
    return c->init_std_rule == LNL_STD_INV_SQRT_C ? 1.0f / sqrtf((float)c->n_embd) : c->init_std;
}

int lnl_parse_init_std(const char *v, LnlStdRule *rule, float *std, const char *what, LnlErr *e) {
    if (strcmp(v, LNL_STD_INV_SQRT_C_NAME) == 0) {
        *rule = LNL_STD_INV_SQRT_C;
        return 0;
    }
    char *end = NULL;
    double x = strtod(v, &end);
    if (!*v || !end || *end || !isfinite(x) || x <= 0 || x > 10)
        return lnl_err(e, "%s: expected a number in (0, 10] or %s, got '%s'", what, LNL_STD_INV_SQRT_C_NAME, v);
    *rule = LNL_STD_FIXED;
    *std = (float)x;
    return 0;
}

static const char *const norm_names[] = {"layernorm", "rmsnorm", "dyt", "derf"};

const char *lnl_norm_name(LnlNormKind kind) {
    return (unsigned)kind < sizeof norm_names / sizeof norm_names[0] ? norm_names[kind] : "?";
}

int lnl_norm_parse(const char *name, LnlNormKind *kind) {
    for (size_t i = 0; i < sizeof norm_names / sizeof norm_names[0]; i++)
        if (!strcmp(name, norm_names[i])) {
            *kind = (LnlNormKind)i;
            return 0;
        }
    return -1;
}

const char *lnl_norm_gain_name(LnlNormGain gain) { return gain == LNL_GAIN_ONE_PLUS ? "one-plus" : "plain"; }

int lnl_norm_gain_parse(const char *name, LnlNormGain *gain) {
    if (!strcmp(name, "plain")) *gain = LNL_GAIN_PLAIN;
    else if (!strcmp(name, "one-plus")) *gain = LNL_GAIN_ONE_PLUS;
    else return -1;
    return 0;
}

void lnl_norm_alpha_default(LnlNormKind kind, float alpha[3]) {
    alpha[LNL_ALPHA_ATTN] = kind == LNL_NORM_DYT ? 0.8f : 1.0f;
    alpha[LNL_ALPHA_MLP] = alpha[LNL_ALPHA_FINAL] = kind == LNL_NORM_DYT ? 0.2f : 1.0f;
}

void lnl_config_set_norm(LnlConfig *c, LnlNormKind kind) {
    c->norm = kind;
    lnl_norm_alpha_default(kind, c->norm_alpha);
}

void lnl_config_set_dt(LnlConfig *c, float dt) {
    c->dt = dt;
    for (int l = 0; l < c->n_layer; l++)
        for (int s = 0; s < 2; s++) c->sub[l][s].dt = dt;
}

void lnl_config_set_qk_norm(LnlConfig *c, int kind) {
    for (int l = 0; l < c->n_layer; l++) c->sub[l][LNL_ATTN].qk_norm = (uint8_t)kind;
}

int lnl_config_qk_norm(const LnlConfig *c) {
    int k = c->sub[0][LNL_ATTN].qk_norm;
    for (int l = 1; l < c->n_layer; l++)
        if (c->sub[l][LNL_ATTN].qk_norm != k) return -1;
    return k;
}

int lnl_config_qk_norm_dim(const LnlConfig *c) {
    for (int l = 0; l < c->n_layer; l++)
        if (c->sub[l][LNL_ATTN].qk_norm == LNL_QK_NORM_FULL) return c->n_embd;
    return c->n_embd / c->n_head;
}

void lnl_config_set_bias(LnlConfig *c, int on) {
    for (int l = 0; l < c->n_layer; l++)
        for (int s = 0; s < 2; s++) c->sub[l][s].bias = (uint8_t)(on != 0);
}

int lnl_config_bias(const LnlConfig *c) {
    int b = c->sub[0][0].bias;
    for (int l = 0; l < c->n_layer; l++)
        for (int s = 0; s < 2; s++)
            if (c->sub[l][s].bias != b) return -1;
    return b;
}

/* ---- overrides ---- */

/* F_ENUM: a uint8_t whose values are named, in order, by the field's names ("a|b|c"); configs
 * store the name. */
typedef enum { F_BOOL, F_FLOAT, F_ENUM } FieldType;
typedef struct {
    const char *name;
    FieldType type;
    size_t off;
    uint8_t optional; /* may be missing from a config JSON (older files): plain_sub's value then */
    const char *names; /* F_ENUM only */
} SubField;

#define SUBF(name, type, opt) {#name, type, offsetof(LnlSubSpec, name), opt, NULL}
static const SubField sub_fields[] = {
    SUBF(pre_norm, F_BOOL, 0),     SUBF(out_norm, F_BOOL, 0),     SUBF(post_norm, F_BOOL, 0),
    SUBF(res_from_normed, F_BOOL, 0), SUBF(b2t, F_BOOL, 0),       SUBF(qkv_norm, F_BOOL, 0),
    SUBF(skip_learned, F_BOOL, 0), SUBF(gate, F_BOOL, 0),         SUBF(branch_norm, F_BOOL, 0),
    SUBF(bias, F_BOOL, 1),         SUBF(in_scale, F_FLOAT, 0),    SUBF(skip_scale, F_FLOAT, 0),
    SUBF(dt, F_FLOAT, 1), /* missing in older files: the model's dt (lnl_config_from_json) */
    {"qk_norm", F_ENUM, offsetof(LnlSubSpec, qk_norm), 1, LNL_QK_NORM_NAMES}, /* missing in older files: off */
};
#undef SUBF
#define N_SUB_FIELDS (sizeof sub_fields / sizeof sub_fields[0])

static const SubField *find_sub_field(const char *name) {
    for (size_t i = 0; i < N_SUB_FIELDS; i++)
        if (strcmp(sub_fields[i].name, name) == 0) return &sub_fields[i];
    return NULL;
}

/* The index of v among names "a|b|c", or -1. */
static int enum_index(const char *names, const char *v) {
    int i = 0;
    for (const char *p = names;; i++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (strlen(v) == len && strncmp(p, v, len) == 0) return i;
        if (!bar) return -1;
        p = bar + 1;
    }
}

/* The name of value i among names "a|b|c" into buf (size n); "?" if there is none. */
static const char *enum_name(const char *names, int i, char *buf, size_t n) {
    const char *p = names;
    for (int k = 0; k < i && p; k++) {
        p = strchr(p, '|');
        if (p) p++;
    }
    if (!p) return "?";
    const char *bar = strchr(p, '|');
    snprintf(buf, n, "%.*s", bar ? (int)(bar - p) : (int)strlen(p), p);
    return buf;
}

static int parse_bool(const char *v, int *out) {
    if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "on")) *out = 1;
    else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "off")) *out = 0;
    else return -1;
    return 0;
}

static int apply_one(LnlConfig *c, char *item, LnlErr *e) {
    char *eq = strchr(item, '=');
    if (!eq) return lnl_err(e, "--spec: '%s' is not KEY=VALUE", item);
    *eq = 0;
    char *key = item, *val = eq + 1;
    int lo = 1, hi = c->n_layer;
    /* the layer range may follow the key (pre_norm@2-3=1) or the value (pre_norm=1@2-3) */
    char *at = strchr(key, '@');
    char *vat = strchr(val, '@');
    if (at && vat) return lnl_err(e, "--spec: two layer ranges in '%s=%s'", key, val);
    if (vat) {
        *vat = 0;
        at = vat;
    }
    if (at) {
        *at = 0;
        char *dash = strchr(at + 1, '-');
        LnlErr e2;
        long long a, b;
        if (dash) *dash = 0;
        if (lnl_parse_int(at + 1, 1, c->n_layer, &a, "--spec layer", &e2) ||
            lnl_parse_int(dash ? dash + 1 : at + 1, 1, c->n_layer, &b, "--spec layer", &e2) || b < a)
            return lnl_err(e, "--spec: bad layer range in '%s' (layers are 1..%d)", key, c->n_layer);
        lo = (int)a;
        hi = (int)b;
    }
    int s0 = 0, s1 = 1;
    if (strncmp(key, "attn.", 5) == 0) {
        s1 = 0;
        key += 5;
    } else if (strncmp(key, "mlp.", 4) == 0) {
        s0 = 1;
        key += 4;
    }
    /* dt alone (no sub-layer, no layers) is the model's dt, which every sub-layer takes */
    const SubField *f = !strcmp(key, "dt") && s0 == 0 && s1 == 1 && !at ? NULL : find_sub_field(key);
    if (f) {
        int bv = 0;
        double fv = 0;
        if (f->type == F_BOOL && parse_bool(val, &bv)) return lnl_err(e, "--spec: %s expects 0 or 1, got '%s'", key, val);
        if (f->type == F_ENUM && (bv = enum_index(f->names, val)) < 0)
            return lnl_err(e, "--spec: %s expects one of %s, got '%s'", key, f->names, val);
        if (f->type == F_FLOAT && f->off == offsetof(LnlSubSpec, dt)) {
            if (lnl_parse_double(val, 0, 1e3, &fv, "--spec dt", e)) return -1;
        } else if (f->type == F_FLOAT && lnl_parse_double(val, -1e6, 1e6, &fv, "--spec", e)) {
            return -1;
        }
        for (int l = lo; l <= hi; l++)
            for (int s = s0; s <= s1; s++) {
                char *base = (char *)&c->sub[l - 1][s];
                if (f->type != F_FLOAT) *(uint8_t *)(base + f->off) = (uint8_t)bv;
                else *(float *)(base + f->off) = (float)fv;
            }
        return 0;
    }
    if (at || s0 != 0 || s1 != 1) return lnl_err(e, "--spec: unknown per-layer field '%s'", key);
    int bv;
    double fv;
    if (!strcmp(key, "final_norm") || !strcmp(key, "embed_norm") || !strcmp(key, "embed_scale")) {
        if (parse_bool(val, &bv)) return lnl_err(e, "--spec: %s expects 0 or 1, got '%s'", key, val);
        if (!strcmp(key, "final_norm")) c->final_norm = (uint8_t)bv;
        else if (!strcmp(key, "embed_norm")) c->embed_norm = (uint8_t)bv;
        else c->embed_scale = (uint8_t)bv;
        return 0;
    }
    if (!strcmp(key, "dt")) {
        if (lnl_parse_double(val, 0, 1e3, &fv, "--spec dt", e)) return -1;
        lnl_config_set_dt(c, (float)fv);
        return 0;
    }
    if (!strcmp(key, "eps")) {
        if (lnl_parse_double(val, 1e-12, 1, &fv, "--spec eps", e)) return -1;
        c->eps = (float)fv;
        return 0;
    }
    return lnl_err(e, "--spec: unknown field '%s'", key);
}

int lnl_config_override(LnlConfig *c, const char *spec, LnlErr *e) {
    char *s = lnl_strdup(spec);
    char *save = NULL;
    int r = 0;
    for (char *item = strtok_r(s, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        if ((r = apply_one(c, item, e))) break;
    }
    free(s);
    if (!r) snprintf(c->preset, sizeof c->preset, "custom");
    return r;
}

int lnl_config_validate(const LnlConfig *c, LnlErr *e) {
    if (c->n_layer < 1 || c->n_layer > LNL_MAX_LAYERS)
        return lnl_err(e, "config: n_layer %d out of range [1, %d]", c->n_layer, LNL_MAX_LAYERS);
    if (c->n_head < 1 || c->n_embd < 1 || c->n_embd % c->n_head)
        return lnl_err(e, "config: n_embd %d must be a positive multiple of n_head %d", c->n_embd, c->n_head);
    if (c->n_positions < 1) return lnl_err(e, "config: n_positions %d must be positive", c->n_positions);
    if (c->vocab_size < 2) return lnl_err(e, "config: vocab_size %d must be at least 2", c->vocab_size);
    if (!(c->eps > 0) || !isfinite(c->eps)) return lnl_err(e, "config: eps must be positive");
    if (!(c->dt >= 0) || !isfinite(c->dt)) return lnl_err(e, "config: dt must be a finite number >= 0");
    if ((unsigned)c->norm > LNL_NORM_DERF) return lnl_err(e, "config: unknown norm kind %d", (int)c->norm);
    for (int i = 0; i < 3; i++)
        if (!isfinite(c->norm_alpha[i])) return lnl_err(e, "config: norm_alpha must be finite");
    if (c->embed_scale && c->embed_scale_learned)
        return lnl_err(e, "config: embed_scale (sqrt(C)) and embed_scale_learned (a learned scalar) exclude each "
                          "other");
    if (!(c->attn_softcap >= 0) || !isfinite(c->attn_softcap))
        return lnl_err(e, "config: attn_softcap must be a finite number >= 0 (0: off)");
    if (!(c->logit_softcap >= 0 && c->logit_softcap <= LNL_LOGIT_SOFTCAP_MAX))
        return lnl_err(e, "config: logit_softcap %g must be a finite number in [0, %g] (0: off)",
                       (double)c->logit_softcap, LNL_LOGIT_SOFTCAP_MAX);
    int qkv_layer = 0, qk_layer = 0, qk_kind = 0; /* 1-based layers that use them, 0 if none */
    for (int l = 0; l < c->n_layer; l++) {
        const LnlSubSpec *a = &c->sub[l][LNL_ATTN];
        if (a->b2t) return lnl_err(e, "config: layer %d: b2t applies to the mlp sub-layer only", l + 1);
        if (c->sub[l][LNL_MLP].qkv_norm) return lnl_err(e, "config: layer %d: qkv_norm applies to attn only", l + 1);
        if (c->sub[l][LNL_MLP].qk_norm) return lnl_err(e, "config: layer %d: qk_norm applies to attn only", l + 1);
        if (a->qk_norm > LNL_QK_NORM_FULL)
            return lnl_err(e, "config: layer %d: attn.qk_norm %d is not one of %s", l + 1, a->qk_norm,
                           LNL_QK_NORM_NAMES);
        if (a->qkv_norm && !qkv_layer) qkv_layer = l + 1;
        if (a->qk_norm && !qk_layer) qk_layer = l + 1, qk_kind = a->qk_norm;
        /* one gain length per model: the q/k norm role holds (L, 2, HS) or (L, 2, C) */
        if (a->qk_norm && a->qk_norm != qk_kind)
            return lnl_err(e, "config: layers %d and %d: attn.qk_norm head and full in one model", qk_layer, l + 1);
    }
    /* both name their gains h.{i}.attn.q_norm / k_norm: one model uses one of them */
    if (qkv_layer && qk_layer)
        return lnl_err(e, "config: qkv_norm (layer %d) and qk_norm (layer %d) in one model: use one of them", qkv_layer,
                       qk_layer);
    for (int l = 0; l < c->n_layer; l++) {
        for (int s = 0; s < 2; s++) {
            const LnlSubSpec *q = &c->sub[l][s];
            if (q->res_from_normed && !q->pre_norm)
                return lnl_err(e, "config: layer %d: res_from_normed needs pre_norm", l + 1);
            if (!isfinite(q->in_scale) || !isfinite(q->skip_scale))
                return lnl_err(e, "config: layer %d: in_scale and skip_scale must be finite", l + 1);
            if (q->branch_norm && lnl_norm_is_dynamic(c->norm))
                return lnl_err(e, "config: layer %d: branch_norm needs a normalizing kind (layernorm or rmsnorm), "
                                  "not %s: its N0 has no parameters",
                               l + 1, lnl_norm_name(c->norm));
            if (!(q->dt >= 0) || !isfinite(q->dt))
                return lnl_err(e, "config: layer %d: %s.dt must be a finite number >= 0", l + 1, s ? "mlp" : "attn");
        }
    }
    return 0;
}

/* ---- differences ---- */

/* The placement fields of two sub-layers agree (bias and dt aside: the diff names them on their
 * own). */
static int same_sub(const LnlSubSpec *a, const LnlSubSpec *b) {
    for (size_t i = 0; i < N_SUB_FIELDS; i++) {
        const SubField *f = &sub_fields[i];
        if (f->off == offsetof(LnlSubSpec, bias) || f->off == offsetof(LnlSubSpec, dt)) continue;
        const char *pa = (const char *)a + f->off, *pb = (const char *)b + f->off;
        if (f->type != F_FLOAT ? *(const uint8_t *)pa != *(const uint8_t *)pb
                               : *(const float *)pa != *(const float *)pb)
            return 0;
    }
    return 1;
}

static int uses_branch_norm(const LnlConfig *c) {
    for (int l = 0; l < c->n_layer; l++)
        if (c->sub[l][LNL_ATTN].branch_norm || c->sub[l][LNL_MLP].branch_norm) return 1;
    return 0;
}

char *lnl_config_diff(const LnlConfig *was, const LnlConfig *now) {
    LnlBuf b = {0};
#define SEP (b.len ? ", " : "")
#define INT_FIELD(f)                                                                       \
    if (was->f != now->f) lnl_buf_printf(&b, "%s" #f " %d -> %d", SEP, was->f, now->f)
#define NUM_FIELD(f)                                                                       \
    if (was->f != now->f) lnl_buf_printf(&b, "%s" #f " %g -> %g", SEP, (double)was->f, (double)now->f)
#define BOOL_FIELD(f)                                                                      \
    if (!was->f != !now->f) lnl_buf_printf(&b, "%s" #f " %s -> %s", SEP, was->f ? "on" : "off", now->f ? "on" : "off")
    int spec_differs = was->n_layer != now->n_layer, bias_differs = 0, sub_dt_differs = 0;
    for (int l = 0; !spec_differs && l < now->n_layer; l++)
        for (int s = 0; s < 2; s++) {
            const LnlSubSpec *a = &was->sub[l][s], *b = &now->sub[l][s];
            spec_differs |= !same_sub(a, b);
            bias_differs |= a->bias != b->bias;
            /* a sub-layer's dt that follows the model's dt in both changes with "dt" alone */
            sub_dt_differs |= a->dt != b->dt && !(a->dt == was->dt && b->dt == now->dt);
        }
    if (spec_differs && strcmp(was->preset, now->preset) != 0)
        lnl_buf_printf(&b, "preset %s -> %s", was->preset, now->preset);
    else if (spec_differs)
        lnl_buf_printf(&b, "per-layer spec of preset %s changed", now->preset);
    INT_FIELD(n_layer);
    INT_FIELD(n_head);
    INT_FIELD(n_embd);
    INT_FIELD(n_positions);
    INT_FIELD(vocab_size);
    if (was->norm != now->norm) lnl_buf_printf(&b, "%snorm %s -> %s", SEP, lnl_norm_name(was->norm), lnl_norm_name(now->norm));
    if (was->norm_gain != now->norm_gain)
        lnl_buf_printf(&b, "%snorm gain %s -> %s", SEP, lnl_norm_gain_name((LnlNormGain)was->norm_gain),
                       lnl_norm_gain_name((LnlNormGain)now->norm_gain));
    NUM_FIELD(eps);
    NUM_FIELD(dt);
    if (sub_dt_differs) lnl_buf_printf(&b, "%sattn.dt / mlp.dt of some sub-layers changed", SEP);
    BOOL_FIELD(final_norm);
    BOOL_FIELD(embed_norm);
    BOOL_FIELD(embed_scale);
    BOOL_FIELD(embed_scale_learned);
    NUM_FIELD(attn_softcap);
    NUM_FIELD(logit_softcap);
    if (bias_differs) {
        int wb = lnl_config_bias(was), nb = lnl_config_bias(now);
        if (wb >= 0 && nb >= 0) lnl_buf_printf(&b, "%sbias %s -> %s", SEP, wb ? "on" : "off", nb ? "on" : "off");
        else lnl_buf_printf(&b, "%slinear biases of some sub-layers changed", SEP);
    }
    if (spec_differs) NUM_FIELD(mix_ratio);
    if (uses_branch_norm(now)) INT_FIELD(branchnorm_steps);
#undef SEP
#undef INT_FIELD
#undef NUM_FIELD
#undef BOOL_FIELD
    return b.data; /* NULL when nothing was appended */
}

/* ---- JSON ---- */

char *lnl_config_to_json(const LnlConfig *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", CONFIG_FORMAT);
    cJSON_AddNumberToObject(o, "version", CONFIG_VERSION);
    cJSON_AddNumberToObject(o, "n_layer", c->n_layer);
    cJSON_AddNumberToObject(o, "n_head", c->n_head);
    cJSON_AddNumberToObject(o, "n_embd", c->n_embd);
    cJSON_AddNumberToObject(o, "n_positions", c->n_positions);
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size);
    cJSON_AddStringToObject(o, "norm", lnl_norm_name(c->norm));
    cJSON_AddStringToObject(o, "norm_gain", lnl_norm_gain_name((LnlNormGain)c->norm_gain));
    cJSON_AddNumberToObject(o, "eps", c->eps);
    cJSON_AddNumberToObject(o, "dt", c->dt);
    cJSON_AddBoolToObject(o, "final_norm", c->final_norm);
    cJSON_AddBoolToObject(o, "embed_norm", c->embed_norm);
    cJSON_AddBoolToObject(o, "embed_scale", c->embed_scale);
    cJSON_AddBoolToObject(o, "embed_scale_learned", c->embed_scale_learned);
    cJSON_AddNumberToObject(o, "attn_softcap", c->attn_softcap);
    cJSON_AddNumberToObject(o, "logit_softcap", c->logit_softcap);
    cJSON_AddStringToObject(o, "preset", c->preset);
    cJSON *init = cJSON_AddObjectToObject(o, "init");
    cJSON_AddNumberToObject(init, "std", lnl_config_init_std(c));
    cJSON_AddStringToObject(init, "std_rule", c->init_std_rule == LNL_STD_INV_SQRT_C ? LNL_STD_INV_SQRT_C_NAME : "fixed");
    cJSON_AddBoolToObject(init, "resid_scale", c->init_resid_scale);
    cJSON_AddNumberToObject(init, "beta", c->init_beta);
    cJSON_AddBoolToObject(init, "admin_profile", c->admin_profile);
    if (lnl_norm_is_dynamic(c->norm)) {
        cJSON *a = cJSON_AddObjectToObject(init, "norm_alpha");
        cJSON_AddNumberToObject(a, "attn", c->norm_alpha[LNL_ALPHA_ATTN]);
        cJSON_AddNumberToObject(a, "mlp", c->norm_alpha[LNL_ALPHA_MLP]);
        cJSON_AddNumberToObject(a, "final", c->norm_alpha[LNL_ALPHA_FINAL]);
    }
    cJSON_AddNumberToObject(o, "branchnorm_steps", c->branchnorm_steps);
    cJSON_AddNumberToObject(o, "mix_ratio", c->mix_ratio);
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    for (int l = 0; l < c->n_layer; l++) {
        cJSON *lo = cJSON_CreateObject();
        for (int s = 0; s < 2; s++) {
            cJSON *so = cJSON_AddObjectToObject(lo, s == 0 ? "attn" : "mlp");
            const char *base = (const char *)&c->sub[l][s];
            for (size_t i = 0; i < N_SUB_FIELDS; i++) {
                const SubField *f = &sub_fields[i];
                char nm[16];
                if (f->type == F_BOOL) cJSON_AddBoolToObject(so, f->name, *(const uint8_t *)(base + f->off));
                else if (f->type == F_ENUM)
                    cJSON_AddStringToObject(so, f->name,
                                            enum_name(f->names, *(const uint8_t *)(base + f->off), nm, sizeof nm));
                else cJSON_AddNumberToObject(so, f->name, *(const float *)(base + f->off));
            }
        }
        cJSON_AddItemToArray(layers, lo);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char *r = lnl_strdup(s);
    cJSON_free(s);
    return r;
}

static int get_num(const cJSON *o, const char *key, double lo, double hi, double *out, const char *what, LnlErr *e) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(it)) return lnl_err(e, "%s: field '%s' missing or not a number", what, key);
    double v = it->valuedouble;
    if (!isfinite(v) || v < lo || v > hi) return lnl_err(e, "%s: field '%s' = %g out of range [%g, %g]", what, key, v, lo, hi);
    *out = v;
    return 0;
}

static int get_bool(const cJSON *o, const char *key, uint8_t *out, const char *what, LnlErr *e) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsBool(it)) return lnl_err(e, "%s: field '%s' missing or not a boolean", what, key);
    *out = (uint8_t)cJSON_IsTrue(it);
    return 0;
}

int lnl_config_from_json(LnlConfig *c, const char *json, const char *what, LnlErr *e) {
    cJSON *o = cJSON_Parse(json);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return lnl_err(e, "%s: config is not valid JSON", what);
    }
    int r = -1;
    LnlConfig t;
    lnl_config_default(&t);
    double v = 0;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(o, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, CONFIG_FORMAT) != 0) {
        lnl_err(e, "%s: config field 'format' is not \"%s\"", what, CONFIG_FORMAT);
        goto done;
    }
    if (get_num(o, "version", 1, 1e9, &v, what, e)) goto done;
    if (v > CONFIG_VERSION) {
        lnl_err(e, "%s: config version %g is newer than this lnlab understands (%d)", what, v, CONFIG_VERSION);
        goto done;
    }
    if (get_num(o, "n_layer", 1, LNL_MAX_LAYERS, &v, what, e)) goto done;
    t.n_layer = (int)v;
    if (get_num(o, "n_head", 1, 1 << 16, &v, what, e)) goto done;
    t.n_head = (int)v;
    if (get_num(o, "n_embd", 1, 1 << 20, &v, what, e)) goto done;
    t.n_embd = (int)v;
    if (get_num(o, "n_positions", 1, 1 << 24, &v, what, e)) goto done;
    t.n_positions = (int)v;
    if (get_num(o, "vocab_size", 2, 1 << 24, &v, what, e)) goto done;
    t.vocab_size = (int)v;
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(o, "norm");
    LnlNormKind kind;
    if (!cJSON_IsString(norm) || lnl_norm_parse(norm->valuestring, &kind)) {
        lnl_err(e, "%s: config field 'norm' must be one of %s", what, LNL_NORMS);
        goto done;
    }
    lnl_config_set_norm(&t, kind); /* the source's initial a unless init.norm_alpha says otherwise */
    const cJSON *gain = cJSON_GetObjectItemCaseSensitive(o, "norm_gain"); /* files from before: plain */
    LnlNormGain g = LNL_GAIN_PLAIN;
    if (gain && (!cJSON_IsString(gain) || lnl_norm_gain_parse(gain->valuestring, &g))) {
        lnl_err(e, "%s: config field 'norm_gain' must be one of %s", what, LNL_NORM_GAINS);
        goto done;
    }
    t.norm_gain = (uint8_t)g;
    if (cJSON_HasObjectItem(o, "embed_scale_learned") && get_bool(o, "embed_scale_learned", &t.embed_scale_learned, what, e))
        goto done;
    if (get_num(o, "eps", 1e-12, 1, &v, what, e)) goto done;
    t.eps = (float)v;
    if (get_num(o, "dt", 0, 1e3, &v, what, e)) goto done;
    t.dt = (float)v;
    if (get_bool(o, "final_norm", &t.final_norm, what, e) || get_bool(o, "embed_norm", &t.embed_norm, what, e) ||
        get_bool(o, "embed_scale", &t.embed_scale, what, e))
        goto done;
    t.attn_softcap = 0.0f; /* files from before the softcap: off */
    if (cJSON_HasObjectItem(o, "attn_softcap")) {
        if (get_num(o, "attn_softcap", 0, 1e6, &v, what, e)) goto done;
        t.attn_softcap = (float)v;
    }
    t.logit_softcap = 0.0f; /* files from before the softcap: none */
    if (cJSON_HasObjectItem(o, "logit_softcap")) {
        if (get_num(o, "logit_softcap", 0, LNL_LOGIT_SOFTCAP_MAX, &v, what, e)) goto done;
        t.logit_softcap = (float)v;
    }
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(o, "preset");
    if (!cJSON_IsString(pr)) {
        lnl_err(e, "%s: config field 'preset' missing", what);
        goto done;
    }
    snprintf(t.preset, sizeof t.preset, "%s", pr->valuestring);
    const cJSON *init = cJSON_GetObjectItemCaseSensitive(o, "init");
    if (!cJSON_IsObject(init)) {
        lnl_err(e, "%s: config field 'init' missing", what);
        goto done;
    }
    if (get_num(init, "std", 0, 10, &v, what, e)) goto done;
    t.init_std = (float)v;
    t.init_std_rule = LNL_STD_FIXED; /* files from before the rule was recorded: the number */
    const cJSON *rule = cJSON_GetObjectItemCaseSensitive(init, "std_rule");
    if (rule) {
        if (!cJSON_IsString(rule) ||
            (strcmp(rule->valuestring, "fixed") && strcmp(rule->valuestring, LNL_STD_INV_SQRT_C_NAME))) {
            lnl_err(e, "%s: config field 'init.std_rule' must be \"fixed\" or \"%s\"", what, LNL_STD_INV_SQRT_C_NAME);
            goto done;
        }
        if (strcmp(rule->valuestring, "fixed")) t.init_std_rule = LNL_STD_INV_SQRT_C;
    }
    if (get_num(init, "beta", 0, 10, &v, what, e)) goto done;
    t.init_beta = (float)v;
    if (get_bool(init, "resid_scale", &t.init_resid_scale, what, e) ||
        get_bool(init, "admin_profile", &t.admin_profile, what, e))
        goto done;
    const cJSON *alpha = cJSON_GetObjectItemCaseSensitive(init, "norm_alpha");
    if (alpha) {
        const char *pos[3] = {"attn", "mlp", "final"};
        for (int i = 0; i < 3; i++) {
            if (get_num(alpha, pos[i], -1e6, 1e6, &v, what, e)) goto done;
            t.norm_alpha[i] = (float)v;
        }
    }
    if (get_num(o, "branchnorm_steps", 1, 1e12, &v, what, e)) goto done;
    t.branchnorm_steps = (int)v;
    if (get_num(o, "mix_ratio", 0, 1, &v, what, e)) goto done;
    t.mix_ratio = (float)v;
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(o, "layers");
    if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) != t.n_layer) {
        lnl_err(e, "%s: config field 'layers' must be an array of n_layer = %d entries", what, t.n_layer);
        goto done;
    }
    int l = 0;
    const cJSON *lo;
    cJSON_ArrayForEach(lo, layers) {
        for (int s = 0; s < 2; s++) {
            const cJSON *so = cJSON_GetObjectItemCaseSensitive(lo, s == 0 ? "attn" : "mlp");
            if (!cJSON_IsObject(so)) {
                lnl_err(e, "%s: layers[%d] lacks '%s'", what, l, s == 0 ? "attn" : "mlp");
                goto done;
            }
            LnlSubSpec q = plain_sub();
            q.dt = t.dt;
            char *base = (char *)&q;
            for (size_t i = 0; i < N_SUB_FIELDS; i++) {
                const SubField *f = &sub_fields[i];
                if (f->optional && !cJSON_HasObjectItem(so, f->name)) continue;
                if (f->type == F_BOOL) {
                    if (get_bool(so, f->name, (uint8_t *)(base + f->off), what, e)) goto done;
                } else if (f->type == F_ENUM) {
                    const cJSON *it = cJSON_GetObjectItemCaseSensitive(so, f->name);
                    int k = cJSON_IsString(it) ? enum_index(f->names, it->valuestring) : -1;
                    if (k < 0) {
                        lnl_err(e, "%s: layers[%d].%s.%s must be one of %s", what, l, s == 0 ? "attn" : "mlp", f->name,
                                f->names);
                        goto done;
                    }
                    *(uint8_t *)(base + f->off) = (uint8_t)k;
                } else {
                    if (get_num(so, f->name, -1e6, 1e6, &v, what, e)) goto done;
                    *(float *)(base + f->off) = (float)v;
                }
            }
            t.sub[l][s] = q;
        }
        l++;
    }
    if (lnl_config_validate(&t, e)) goto done;
    *c = t;
    r = 0;
done:
    cJSON_Delete(o);
    return r;
}
