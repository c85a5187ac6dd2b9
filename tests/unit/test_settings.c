/* The training settings' table (train/settings.h) drives all its uses: every row is a flag of
 * `lnlab train` with its type, range, choices and default; a value other than the default survives
 * RUN/config.json's "train" object and --resume's replay; and every row is a field of the study
 * config (same key, type, range, choices; train's default unless the study chooses its own) or one
 * of the settings the study sets per run from its axes. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "study/config.h"
#include "train/settings.h"
/* The CLI layer is not in lib.a: the flag parser and the replay are compiled in here. */
#include "cli/flags.c"
#include "cli/train_resume.c"

/* The settings the study does not keep as fields: a run's lr and seeds come from the grid's axes
 * (lrs, seeds; the data seed is the seed), and its batches are always in random order. */
static const char *const not_in_study[] = {"lr", "seed", "data_order", "data_seed"};
/* The training settings the study gives defaults of its own (config.c, config_defaults). */
static const char *const study_defaults[] = {"batch", "steps", "warmup", "eval_every", "eval_batches",
                                             "checkpoint_every"};

static int listed(const char *key, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(key, list[i]) == 0) return 1;
    return 0;
}

static void *at(LnlTrainSettings *s, const LnlTrainSetting *d) { return (char *)s + d->off; }

/* Every setting at a value in its range other than its default. */
static void other_values(LnlTrainSettings *s) {
    lnl_train_settings_default(s);
    for (int i = 0; i < LNL_TRAIN_NSETTINGS; i++) {
        const LnlTrainSetting *d = &lnl_train_settings[i];
        if (d->type == LNL_TS_INT) {
            long long *v = at(s, d);
            *v = *v + 1 <= d->hi ? *v + 1 : *v - 1;
        } else if (d->type == LNL_TS_FLOAT) {
            *(double *)at(s, d) = d->lo + (d->hi - d->lo) / 3; /* not a short decimal: exactness */
        } else { /* the first choice that is not the default */
            static char buf[LNL_TRAIN_NSETTINGS][64];
            const char **v = at(s, d);
            const char *c = d->choices;
            for (;;) {
                size_t n = strcspn(c, "|");
                snprintf(buf[i], sizeof buf[i], "%.*s", (int)n, c);
                if (strcmp(buf[i], *v) != 0 || !c[n]) break;
                c += n + 1;
            }
            *v = buf[i];
        }
    }
}

/* Names the first setting in which a and b differ, or returns NULL. */
static const char *first_difference(LnlTrainSettings *a, LnlTrainSettings *b) {
    for (int i = 0; i < LNL_TRAIN_NSETTINGS; i++) {
        const LnlTrainSetting *d = &lnl_train_settings[i];
        int same = d->type == LNL_TS_INT     ? *(long long *)at(a, d) == *(long long *)at(b, d)
                   : d->type == LNL_TS_FLOAT ? *(double *)at(a, d) == *(double *)at(b, d)
                                             : strcmp(*(const char **)at(a, d), *(const char **)at(b, d)) == 0;
        if (!same) return d->key;
    }
    return NULL;
}

static void test_rows(void) {
    LnlTrainSettings s;
    lnl_train_settings_default(&s);
    for (int i = 0; i < LNL_TRAIN_NSETTINGS; i++) {
        const LnlTrainSetting *d = &lnl_train_settings[i];
        char want[64];
        snprintf(want, sizeof want, "--%s", d->key);
        for (char *p = want; *p; p++)
            if (*p == '_') *p = '-';
        CHECK(strcmp(d->flag, want) == 0, "%s: flag %s, want %s (--resume finds the key by that rule)", d->key,
              d->flag, want);
        CHECK(lnl_train_setting_find(d->key) == d, "%s: not found by its key, or the key is repeated", d->key);
        CHECK(d->help && d->help[0], "%s: no help", d->key);
        if (d->type == LNL_TS_STR) {
            const char *v = *(const char **)at(&s, d);
            CHECK(d->choices && lnl_in_choices(v, d->choices), "%s: default '%s' not in its choices", d->key, v);
        } else {
            double v = d->type == LNL_TS_INT ? (double)*(long long *)at(&s, d) : *(double *)at(&s, d);
            CHECK(d->lo <= v && v <= d->hi && !d->choices, "%s: default %g outside [%g, %g]", d->key, v, d->lo, d->hi);
        }
    }
    CHECK(lnl_train_setting_find("no_such_setting") == NULL, "found a setting that is not there");
}

static void test_train_flags(void) {
    LnlTrainSettings s, want;
    lnl_train_settings_default(&s);
    other_values(&want);
    LnlFlag flags[LNL_TRAIN_NSETTINGS];
    lnl_train_settings_flags(&s, flags);
    static char text[LNL_TRAIN_NSETTINGS][64];
    char *argv[1 + 2 * LNL_TRAIN_NSETTINGS] = {"train"};
    int argc = 1;
    for (int i = 0; i < LNL_TRAIN_NSETTINGS; i++) {
        const LnlTrainSetting *d = &lnl_train_settings[i];
        const LnlFlag *f = &flags[i];
        LnlFlagType type = d->type == LNL_TS_INT ? LNL_FLAG_INT : d->type == LNL_TS_FLOAT ? LNL_FLAG_FLOAT : LNL_FLAG_STR;
        CHECK(strcmp(f->name, d->flag) == 0 && f->type == type && f->dest == at(&s, d) && f->help == d->help &&
                  f->lo == d->lo && f->hi == d->hi && f->choices == d->choices && !f->seen,
              "flag %d is not the row of %s", i, d->key);
        if (d->type == LNL_TS_INT) snprintf(text[i], sizeof text[i], "%lld", *(long long *)at(&want, d));
        else if (d->type == LNL_TS_FLOAT) snprintf(text[i], sizeof text[i], "%.17g", *(double *)at(&want, d));
        else snprintf(text[i], sizeof text[i], "%s", *(const char **)at(&want, d));
        argv[argc++] = (char *)d->flag;
        argv[argc++] = text[i];
    }
    int npos;
    LnlErr e;
    CHECK(lnl_flags_parse("train", NULL, flags, LNL_TRAIN_NSETTINGS, argc, argv, NULL, 0, &npos, &e) == LNL_FLAGS_OK,
          "%s", e.msg);
    const char *diff = first_difference(&s, &want);
    CHECK(!diff, "--%s: parsed value is not the one given", diff);
    /* a value out of range is refused, as for any flag */
    char *bad[] = {"train", "--beta2", "1"};
    CHECK(lnl_flags_parse("train", NULL, flags, LNL_TRAIN_NSETTINGS, 3, bad, NULL, 0, &npos, &e) == LNL_FLAGS_ERROR,
          "--beta2 1 accepted");
}

static void test_config_json_resume(void) {
    char run[128];
    snprintf(run, sizeof run, "/tmp/lnlab_test_settings.%ld", (long)getpid());
    mkdir(run, 0777);
    LnlTrainSettings want, s;
    other_values(&want);
    cJSON *root = cJSON_CreateObject(), *train = cJSON_AddObjectToObject(root, "train");
    lnl_train_settings_to_json(&want, train);
    CHECK(cJSON_GetArraySize(train) == LNL_TRAIN_NSETTINGS, "%d entries for %d settings", cJSON_GetArraySize(train),
          LNL_TRAIN_NSETTINGS);
    for (int i = 0; i < LNL_TRAIN_NSETTINGS; i++)
        CHECK(cJSON_GetObjectItemCaseSensitive(train, lnl_train_settings[i].key), "no \"%s\" in the train object",
              lnl_train_settings[i].key);
    char *text = cJSON_Print(root), path[256];
    cJSON_Delete(root);
    snprintf(path, sizeof path, "%s/config.json", run);
    FILE *fp = fopen(path, "w");
    CHECK(fp && fputs(text, fp) >= 0 && fclose(fp) == 0, "cannot write %s", path);
    free(text);
    /* --resume RUN: the flags, at their defaults, take the stored values */
    lnl_train_settings_default(&s);
    LnlFlag flags[LNL_TRAIN_NSETTINGS];
    lnl_train_settings_flags(&s, flags);
    cJSON *saved = NULL;
    LnlErr e;
    CHECK(lnl_resume_flags(run, flags, LNL_TRAIN_NSETTINGS, 0, &saved, &e) == 0, "%s", e.msg);
    const char *diff = first_difference(&s, &want);
    CHECK(!diff, "%s: the resumed value is not the stored one", diff);
    cJSON_Delete(saved);
    remove(path);
    rmdir(run);
}

static void test_study_fields(void) {
    LnlStudyConfig c;
    LnlErr e;
    CHECK(lnl_study_config_parse(&c, "{}", "t.json", &e) == 0, "%s", e.msg);
    LnlTrainSettings train;
    lnl_train_settings_default(&train);
    for (int i = 0; i < LNL_TRAIN_NSETTINGS; i++) {
        const LnlTrainSetting *d = &lnl_train_settings[i];
        const LnlStudyField *f = NULL;
        for (int k = 0; k < lnl_study_nfields; k++)
            if (strcmp(lnl_study_fields[k].key, d->key) == 0) f = &lnl_study_fields[k];
        if (listed(d->key, not_in_study, sizeof not_in_study / sizeof *not_in_study)) {
            CHECK(!f, "%s: a study field, and also listed as set by the study's axes", d->key);
            continue;
        }
        CHECK(f, "%s: neither a study field nor set by the study's axes (say which in this test)", d->key);
        if (!f) continue;
        LnlStudyFieldType type = d->type == LNL_TS_INT ? LNL_SF_INT : d->type == LNL_TS_FLOAT ? LNL_SF_FLOAT : LNL_SF_STR;
        CHECK(f->type == type, "%s: study type %d, setting %d", d->key, (int)f->type, (int)d->type);
        CHECK(d->type == LNL_TS_STR || (f->lo == d->lo && f->hi == d->hi), "%s: study range [%g, %g], setting [%g, %g]",
              d->key, f->lo, f->hi, d->lo, d->hi);
        /* the same text: equal string literals need not be one object (ASan builds keep them apart) */
        CHECK(!f->choices == !d->choices && (!f->choices || strcmp(f->choices, d->choices) == 0),
              "%s: study choices '%s' are not the setting's '%s'", d->key, f->choices ? f->choices : "(none)",
              d->choices ? d->choices : "(none)");
        if (listed(d->key, study_defaults, sizeof study_defaults / sizeof *study_defaults)) continue;
        const char *sv = (const char *)&c + f->off, *tv = (const char *)&train + d->off;
        int same = d->type == LNL_TS_INT     ? *(const long long *)sv == *(const long long *)tv
                   : d->type == LNL_TS_FLOAT ? *(const double *)sv == *(const double *)tv
                                             : strcmp(*(char *const *)sv, *(const char *const *)tv) == 0;
        CHECK(same, "%s: the study's default is not lnlab train's", d->key);
    }
    /* a per-grid option that is a training setting passes that setting's flag */
    for (int i = 0; i < LNL_STUDY_NOPTS; i++) {
        const LnlTrainSetting *d = lnl_train_setting_find(lnl_study_options[i].key);
        CHECK(!d || strcmp(lnl_study_options[i].flag, d->flag) == 0, "option %s: flag %s, the setting's %s",
              lnl_study_options[i].key, lnl_study_options[i].flag, d ? d->flag : "");
    }
    lnl_study_config_free(&c);
}

int main(void) {
    RUN_TEST(test_rows);
    RUN_TEST(test_train_flags);
    RUN_TEST(test_config_json_resume);
    RUN_TEST(test_study_fields);
    TEST_MAIN_END();
}
