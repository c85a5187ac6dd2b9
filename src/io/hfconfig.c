/* Hugging Face GPT-2 config.json reader. */
#include "hfconfig.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../model/spec.h"

#define MAX_POSITIONS (1 << 24)
#define MAX_VOCAB (1 << 26)
#define MAX_EMBD (1 << 20)

/* An integer field in [lo, hi]. Absent: *out untouched, returns 1 if optional, else an error. */
static int get_int(const cJSON *root, const char *key, long lo, long hi, int optional, int *out, const char *path,
                   LnlErr *e) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!j || cJSON_IsNull(j)) {
        if (optional) return 1;
        return lnl_err(e, "%s: missing field '%s'", path, key);
    }
    if (!cJSON_IsNumber(j)) return lnl_err(e, "%s: field '%s' is not a number", path, key);
    double d = j->valuedouble;
    if (d != floor(d)) return lnl_err(e, "%s: field '%s' is %g, expected an integer", path, key, d);
    if (d < (double)lo || d > (double)hi)
        return lnl_err(e, "%s: field '%s' is %.0f, expected %ld..%ld", path, key, d, lo, hi);
    *out = (int)d;
    return 0;
}

/* GPT2Config switches that change what the model computes away from what lnlab computes, with the
 * value lnlab would need (GPT2Config's default) and why the other value cannot be honoured. Absent
 * or null means the default. */
static const struct {
    const char *key;
    int want; /* the one boolean value lnlab can honour */
    const char *why;
} switches[] = {
    {"scale_attn_weights", 1, "lnlab always scales attention scores by 1/sqrt(head size)"},
    {"scale_attn_by_inverse_layer_idx", 0, "lnlab does not scale attention scores by 1/layer"},
    {"reorder_and_upcast_attn", 0, "lnlab computes attention in one order only"},
    {"add_cross_attention", 0, "lnlab models are decoder-only, without cross-attention"},
    {"tie_word_embeddings", 1, "lnlab's LM head is always wte (lm_head.weight is not read)"},
};

/* The activation_function names of GPT2Config that are GELU's tanh approximation, lnlab's GELU
 * (gelu_fast is the same formula with the constant written out). */
static const char *const tanh_gelus[] = {"gelu_new", "gelu_pytorch_tanh", "gelu_fast"};

/* A config.json field lnlab cannot honour is an error naming it, never silently ignored. */
static int check_supported(const cJSON *root, const char *path, LnlErr *e) {
    const cJSON *af = cJSON_GetObjectItemCaseSensitive(root, "activation_function");
    if (af && !cJSON_IsNull(af)) {
        int ok = 0;
        for (size_t i = 0; cJSON_IsString(af) && i < sizeof tanh_gelus / sizeof tanh_gelus[0]; i++)
            ok |= strcmp(af->valuestring, tanh_gelus[i]) == 0;
        if (!ok && !cJSON_IsString(af)) return lnl_err(e, "%s: field 'activation_function' is not a string", path);
        if (!ok)
            return lnl_err(e, "%s: field 'activation_function' is \"%.60s\": lnlab computes GELU's tanh approximation "
                              "only (gelu_new, gelu_pytorch_tanh, gelu_fast)",
                           path, af->valuestring);
    }
    for (size_t i = 0; i < sizeof switches / sizeof switches[0]; i++) {
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, switches[i].key);
        if (!j || cJSON_IsNull(j)) continue;
        if (!cJSON_IsBool(j)) return lnl_err(e, "%s: field '%s' is not a boolean", path, switches[i].key);
        if (cJSON_IsTrue(j) != switches[i].want)
            return lnl_err(e, "%s: field '%s' is %s: %s", path, switches[i].key, cJSON_IsTrue(j) ? "true" : "false",
                           switches[i].why);
    }
    const cJSON *ph = cJSON_GetObjectItemCaseSensitive(root, "pruned_heads");
    if (ph && !cJSON_IsNull(ph) && cJSON_GetArraySize(ph) > 0)
        return lnl_err(e, "%s: field 'pruned_heads' is not empty: lnlab models have every head in every layer", path);
    return 0;
}

int lnl_hfconfig_read(const char *path, LnlHfConfig *out, LnlErr *e) {
    char *text;
    size_t len;
    if (lnl_read_file(path, &text, &len, e)) return -1;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    int r = 0;
    LnlHfConfig c;
    memset(&c, 0, sizeof c);
    if (!root) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        r = lnl_err(e, "%s: not valid JSON (error near offset %zu)", path, at);
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        r = lnl_err(e, "%s: not a JSON object", path);
        goto done;
    }
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (mt && (!cJSON_IsString(mt) || strcmp(mt->valuestring, "gpt2") != 0)) {
        r = lnl_err(e, "%s: field 'model_type' is %s%s%s, only \"gpt2\" is supported", path,
                    cJSON_IsString(mt) ? "\"" : "", cJSON_IsString(mt) ? mt->valuestring : "not a string",
                    cJSON_IsString(mt) ? "\"" : "");
        goto done;
    }
    if (check_supported(root, path, e)) {
        r = -1;
        goto done;
    }
    if (get_int(root, "n_layer", 1, LNL_MAX_LAYERS, 0, &c.n_layer, path, e) ||
        get_int(root, "n_head", 1, MAX_EMBD, 0, &c.n_head, path, e) ||
        get_int(root, "n_embd", 1, MAX_EMBD, 0, &c.n_embd, path, e) ||
        get_int(root, "vocab_size", 1, MAX_VOCAB, 0, &c.vocab_size, path, e)) {
        r = -1;
        goto done;
    }
    int got = get_int(root, "n_positions", 1, MAX_POSITIONS, 1, &c.n_positions, path, e);
    if (got == 1) got = get_int(root, "n_ctx", 1, MAX_POSITIONS, 1, &c.n_positions, path, e);
    if (got == 1) r = lnl_err(e, "%s: missing field 'n_positions' (or 'n_ctx')", path);
    if (got < 0 || r) {
        r = -1;
        goto done;
    }
    if (c.n_embd % c.n_head != 0) {
        r = lnl_err(e, "%s: field 'n_embd' (%d) is not a multiple of 'n_head' (%d)", path, c.n_embd, c.n_head);
        goto done;
    }
    c.n_inner = 4 * c.n_embd;
    if (get_int(root, "n_inner", 1, 4 * MAX_EMBD, 1, &c.n_inner, path, e) < 0) {
        r = -1;
        goto done;
    }
    c.layer_norm_epsilon = LNL_HFCONFIG_DEFAULT_EPS;
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(root, "layer_norm_epsilon");
    if (eps && !cJSON_IsNull(eps)) {
        if (!cJSON_IsNumber(eps)) {
            r = lnl_err(e, "%s: field 'layer_norm_epsilon' is not a number", path);
            goto done;
        }
        if (!(eps->valuedouble > 0 && eps->valuedouble < 1)) {
            r = lnl_err(e, "%s: field 'layer_norm_epsilon' is %g, expected a value in (0, 1)", path, eps->valuedouble);
            goto done;
        }
        c.layer_norm_epsilon = eps->valuedouble;
    }
    *out = c;
done:
    cJSON_Delete(root);
    free(text);
    return r;
}

char *lnl_hfconfig_beside(const char *model_path) {
    const char *slash = strrchr(model_path, '/');
    char *cfg;
    if (!slash) {
        cfg = lnl_strdup(LNL_HFCONFIG_NAME);
    } else {
        size_t dir = (size_t)(slash - model_path) + 1; /* keeps the slash, so "/m.st" -> "/config.json" */
        cfg = lnl_malloc(dir + sizeof LNL_HFCONFIG_NAME);
        memcpy(cfg, model_path, dir);
        memcpy(cfg + dir, LNL_HFCONFIG_NAME, sizeof LNL_HFCONFIG_NAME);
    }
    struct stat sb;
    if (stat(cfg, &sb) == 0 && S_ISREG(sb.st_mode)) return cfg;
    free(cfg);
    return NULL;
}
