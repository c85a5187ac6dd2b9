/* The training settings' flags, resume flags, and the round trip of training flags through
 * RUN/config.json (train_resume.h). */
#include "train_resume.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Flags that describe one invocation: never stored, never restored (--out is RUN itself). */
static const char *const session_flags[] = {"--resume",       "--quiet",        "--stop-after",
                                            "--out",          "--sample-every", "--sample-tokens"};
/* Flags that may be given with --resume: the invocation's own, and those that change what is
 * kept on disk, not the numbers (restored from the file unless given). */
static const char *const allowed_flags[] = {"--resume",           "--quiet",           "--stop-after",
                                            "--keep-checkpoints", "--checkpoint-every", "--sample-every",
                                            "--sample-tokens"};
/* The one model flag that is a training setting (the model's n_positions is in its config). */
#define SEQ_FLAG "--seq"

static int in_list(const char *name, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0) return 1;
    return 0;
}

#define IN(name, list) in_list(name, list, sizeof list / sizeof list[0])

void lnl_train_settings_flags(LnlTrainSettings *s, LnlFlag *flags) {
    for (int i = 0; i < LNL_TRAIN_NSETTINGS; i++) {
        const LnlTrainSetting *d = &lnl_train_settings[i];
        LnlFlagType type = d->type == LNL_TS_INT ? LNL_FLAG_INT : d->type == LNL_TS_FLOAT ? LNL_FLAG_FLOAT : LNL_FLAG_STR;
        flags[i] = (LnlFlag){d->flag, type, (char *)s + d->off, d->help, d->lo, d->hi, d->choices, 0};
    }
}

void lnl_resume_flags_init(LnlResumeFlags *rf, LnlFlag *flags) {
    rf->resume = NULL;
    rf->keep = 0;
    rf->stop_after = 0;
    LnlFlag f[LNL_RESUME_NFLAGS] = {
        {"--resume", LNL_FLAG_STR, &rf->resume,
         "continue run directory RUN from its newest valid checkpoint, with the settings in RUN/config.json "
         "(other flags are refused, except --quiet, --stop-after, --keep-checkpoints, --checkpoint-every, "
         "--sample-every, --sample-tokens)",
         1, 0, NULL, 0},
        {"--keep-checkpoints", LNL_FLAG_INT, &rf->keep,
         "keep only the newest K checkpoints in RUN/checkpoints (0 = keep all)", 0, 1LL << 40, NULL, 0},
        {"--stop-after", LNL_FLAG_INT, &rf->stop_after,
         "stop after step K as if SIGTERM arrived: save a checkpoint and exit 0 (0 = run to the end; for "
         "testing resume)",
         0, 1LL << 40, NULL, 0},
    };
    memcpy(flags, f, sizeof f);
}

/* "--total-batch" -> "total_batch" */
static void json_name(const char *flag, char *out, size_t n) {
    snprintf(out, n, "%s", flag + 2);
    for (char *p = out; *p; p++)
        if (*p == '-') *p = '_';
}

static int recorded(const LnlFlag *f, int is_model) {
    if (is_model) return strcmp(f->name, SEQ_FLAG) == 0;
    return !IN(f->name, session_flags) && f->type != LNL_FLAG_LIST;
}

void lnl_resume_record_flags(cJSON *train, const LnlFlag *flags, int nflags, int nmodel) {
    for (int i = 0; i < nflags; i++) {
        const LnlFlag *f = &flags[i];
        if (!recorded(f, i < nmodel)) continue;
        char key[128];
        json_name(f->name, key, sizeof key);
        if (cJSON_GetObjectItemCaseSensitive(train, key)) continue;
        switch (f->type) {
        case LNL_FLAG_INT: cJSON_AddNumberToObject(train, key, (double)*(const long long *)f->dest); break;
        case LNL_FLAG_FLOAT: cJSON_AddNumberToObject(train, key, *(const double *)f->dest); break;
        case LNL_FLAG_BOOL: cJSON_AddBoolToObject(train, key, *(const int *)f->dest); break;
        case LNL_FLAG_STR: {
            const char *s = *(const char *const *)f->dest;
            if (s) cJSON_AddStringToObject(train, key, s);
            break;
        }
        case LNL_FLAG_LIST: break;
        }
    }
}

/* The value of j as the flag parser's text for f, in buf; -1 if j has the wrong type. */
static int value_text(const LnlFlag *f, const cJSON *j, char *buf, size_t n, const char **text) {
    switch (f->type) {
    case LNL_FLAG_INT:
        if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble) || fabs(j->valuedouble) > 9.2e18) return -1;
        snprintf(buf, n, "%.0f", j->valuedouble);
        *text = buf;
        return 0;
    case LNL_FLAG_FLOAT:
        if (!cJSON_IsNumber(j)) return -1;
        snprintf(buf, n, "%.17g", j->valuedouble); /* exact: the double round-trips */
        *text = buf;
        return 0;
    case LNL_FLAG_STR:
        if (!cJSON_IsString(j)) return -1;
        *text = j->valuestring;
        return 0;
    case LNL_FLAG_BOOL:
        if (!cJSON_IsBool(j)) return -1;
        snprintf(buf, n, "%s=%s", f->name, cJSON_IsTrue(j) ? "true" : "false");
        *text = buf;
        return 0;
    case LNL_FLAG_LIST: return -1;
    }
    return -1;
}

int lnl_resume_check_flags(const char *run, const LnlFlag *flags, int nflags, LnlErr *e) {
    for (int i = 0; i < nflags; i++) {
        const LnlFlag *f = &flags[i];
        if (f->seen && !IN(f->name, allowed_flags))
            return lnl_err(e, "%s: cannot be given with --resume: a resumed run keeps the settings in %s/config.json "
                              "(only --quiet, --stop-after, --keep-checkpoints, --checkpoint-every, --sample-every and "
                              "--sample-tokens may be given)",
                           f->name, run);
    }
    return 0;
}

int lnl_resume_flags(const char *run, LnlFlag *flags, int nflags, int nmodel, cJSON **root, LnlErr *e) {
    *root = NULL;
    if (lnl_resume_check_flags(run, flags, nflags, e)) return -1;
    char *final = lnl_path_join(run, "model.safetensors"), *result = lnl_path_join(run, "result.json");
    uint64_t size;
    int model = lnl_file_size(final, &size, NULL) == 0, ended = lnl_file_size(result, &size, NULL) == 0;
    free(final);
    free(result);
    if (model && ended)
        return lnl_err(e, "%s: the run has finished (model.safetensors is there); nothing to resume", run);
    /* the final model is written just before result.json: a run killed between the two had not
     * finished, and its newest checkpoint finishes it again to the same bytes */
    if (model)
        fprintf(stderr, "lnlab train: %s: model.safetensors is there but result.json is not (the run was stopped "
                        "while finishing): finishing it again from the newest checkpoint\n",
                run);
    char *path = lnl_path_join(run, "config.json");
    char *text = NULL;
    if (lnl_read_file(path, &text, NULL, e)) {
        free(path);
        return -1;
    }
    cJSON *o = cJSON_Parse(text);
    free(text);
    const cJSON *train = cJSON_GetObjectItemCaseSensitive(o, "train");
    int r = 0;
    if (!cJSON_IsObject(o) || !cJSON_IsObject(train)) {
        r = lnl_err(e, "%s: not a run's config (a JSON object with a \"train\" object)", path);
        goto done;
    }
    for (int i = 0; i < nflags && !r; i++) {
        LnlFlag *f = &flags[i];
        if (!recorded(f, i < nmodel) || f->seen) continue;
        char key[128], buf[160];
        json_name(f->name, key, sizeof key);
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(train, key);
        if (!j) continue; /* a run from before the flag existed: its default */
        const char *text_val;
        if (value_text(f, j, buf, sizeof buf, &text_val)) {
            r = lnl_err(e, "%s: train.%s has the wrong type for %s", path, key, f->name);
            break;
        }
        /* through the parser: the same checks as on the command line */
        char *argv[3] = {"train", f->type == LNL_FLAG_BOOL ? (char *)text_val : (char *)f->name, (char *)text_val};
        int argc = f->type == LNL_FLAG_BOOL ? 2 : 3, npos;
        LnlErr pe;
        if (lnl_flags_parse("train", NULL, f, 1, argc, argv, NULL, 0, &npos, &pe) != LNL_FLAGS_OK)
            r = lnl_err(e, "%s: train.%s: %s", path, key, pe.msg);
        f->seen = 0;
    }
done:
    free(path);
    if (r) cJSON_Delete(o);
    else *root = o;
    return r;
}
