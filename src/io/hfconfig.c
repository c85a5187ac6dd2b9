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
