/* meta.json of a prepared dataset directory: reading and the model/data vocabulary check. */
#include "dataset.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tokenizer.h"

/* The meta.json describing data (see lnl_data_meta_read), whether or not it exists; NULL when
 * data itself does not exist. Caller frees. */
static char *meta_path(const char *data) {
    struct stat st;
    if (stat(data, &st) != 0) return NULL;
    if (S_ISDIR(st.st_mode)) return lnl_path_join(data, LNL_DATASET_META);
    const char *slash = strrchr(data, '/');
    if (!slash) return lnl_strdup(LNL_DATASET_META);
    size_t dir = (size_t)(slash - data) + 1; /* keeps the slash: "/x.bin" -> "/meta.json" */
    char *p = lnl_malloc(dir + sizeof LNL_DATASET_META);
    memcpy(p, data, dir);
    memcpy(p + dir, LNL_DATASET_META, sizeof LNL_DATASET_META);
    return p;
}

/* A JSON value as it reads in the file, shortened, for messages. */
static void json_text(const cJSON *j, char *out, size_t n) {
    char *s = cJSON_PrintUnformatted(j);
    snprintf(out, n, "%.60s%s", s ? s : "?", s && strlen(s) > 60 ? "..." : "");
    cJSON_free(s);
}

static int parse_meta(const char *path, const char *text, LnlDataMeta *m, LnlErr *e) {
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithOpts(text, &end, 1);
    char v[80];
    int r = -1;
    if (!o) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        lnl_err(e, "%s: not valid JSON (error near offset %zu)", path, at);
        goto done;
    }
    if (!cJSON_IsObject(o)) {
        lnl_err(e, "%s: not a JSON object", path);
        goto done;
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(o, "format");
    if (fmt && !(cJSON_IsString(fmt) && strcmp(fmt->valuestring, LNL_DATASET_FORMAT) == 0)) {
        json_text(fmt, v, sizeof v);
        lnl_err(e, "%s: field 'format' is %s, expected \"%s\"", path, v, LNL_DATASET_FORMAT);
        goto done;
    }
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(o, "format_version");
    if (ver && !(cJSON_IsNumber(ver) && ver->valuedouble >= 1 && ver->valuedouble == floor(ver->valuedouble))) {
        json_text(ver, v, sizeof v);
        lnl_err(e, "%s: field 'format_version' is %s, expected a positive integer", path, v);
        goto done;
    }
    if (ver && ver->valuedouble > LNL_DATASET_FORMAT_VERSION) {
        lnl_err(e, "%s: format_version %.0f is newer than this lnlab understands (%d)", path, ver->valuedouble,
                LNL_DATASET_FORMAT_VERSION);
        goto done;
    }
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(o, "vocab_size");
    if (!vs) {
        lnl_err(e, "%s: missing field 'vocab_size'", path);
        goto done;
    }
    if (!cJSON_IsNumber(vs) || !(vs->valuedouble >= 2 && vs->valuedouble <= LNL_DATASET_MAX_VOCAB) ||
        vs->valuedouble != floor(vs->valuedouble)) {
        json_text(vs, v, sizeof v);
        lnl_err(e, "%s: field 'vocab_size' is %s, expected an integer in [2, %d]", path, v, LNL_DATASET_MAX_VOCAB);
        goto done;
    }
    m->vocab_size = (int)vs->valuedouble;
    const cJSON *tk = cJSON_GetObjectItemCaseSensitive(o, "tokenizer");
    if (tk && !(cJSON_IsString(tk) && strlen(tk->valuestring) < sizeof m->tokenizer)) {
        json_text(tk, v, sizeof v);
        lnl_err(e, "%s: field 'tokenizer' is %s, expected a tokenizer name such as \"gpt2\" or \"byte\"", path, v);
        goto done;
    }
    if (tk) snprintf(m->tokenizer, sizeof m->tokenizer, "%s", tk->valuestring);
    if (strcmp(m->tokenizer, "byte") == 0 && m->vocab_size != LNL_BYTE_VOCAB) {
        lnl_err(e, "%s: tokenizer \"byte\" has %d tokens, but vocab_size is %d", path, LNL_BYTE_VOCAB, m->vocab_size);
        goto done;
    }
    r = 0;
done:
    cJSON_Delete(o);
    return r;
}

int lnl_data_meta_read(const char *data, LnlDataMeta *m, LnlErr *e) {
    memset(m, 0, sizeof *m);
    char *path = meta_path(data);
    struct stat st;
    if (!path || stat(path, &st) != 0) { /* no meta.json: an llm.c or nanoGPT directory */
        free(path);
        return 0;
    }
    char *text = NULL;
    int r = lnl_read_file(path, &text, NULL, e);
    if (r == 0) r = parse_meta(path, text, m, e);
    free(text);
    if (r) {
        free(path);
        memset(m, 0, sizeof *m);
        return -1;
    }
    m->present = 1;
    m->path = path;
    return 0;
}

void lnl_data_meta_free(LnlDataMeta *m) {
    free(m->path);
    memset(m, 0, sizeof *m);
}

int lnl_data_check_vocab(const char *data, const char *model, int vocab_size, LnlErr *e) {
    LnlDataMeta m;
    if (lnl_data_meta_read(data, &m, e)) return -1;
    int r = 0;
    if (m.present && m.vocab_size != vocab_size) {
        const char *mk = lnl_tok_kind_for_vocab(vocab_size);
        char mine[48] = "", theirs[64];
        if (mk) snprintf(mine, sizeof mine, " (%s)", mk);
        if (m.tokenizer[0]) snprintf(theirs, sizeof theirs, "%s, %d", m.tokenizer, m.vocab_size);
        else snprintf(theirs, sizeof theirs, "vocab_size %d", m.vocab_size);
        r = lnl_err(e, "model %s has vocab %d%s but data %s says %s", model, vocab_size, mine, m.path, theirs);
    }
    lnl_data_meta_free(&m);
    return r;
}
