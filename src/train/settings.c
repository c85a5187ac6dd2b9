/* The training settings' table as data, their defaults and their entries in RUN/config.json
 * (settings.h). */
#include "settings.h"

#include <string.h>

const LnlTrainSetting lnl_train_settings[LNL_TRAIN_NSETTINGS] = {
#define LNL_TS_ROW(field, flag, type, lo, hi, def, choices, help) \
    {#field, flag, LNL_TS_##type, offsetof(LnlTrainSettings, field), lo, hi, choices, help},
    LNL_TRAIN_SETTINGS(LNL_TS_ROW)
#undef LNL_TS_ROW
};

const LnlTrainSetting *lnl_train_setting_find(const char *key) {
    for (int i = 0; i < LNL_TRAIN_NSETTINGS; i++)
        if (strcmp(key, lnl_train_settings[i].key) == 0) return &lnl_train_settings[i];
    return NULL;
}

void lnl_train_settings_default(LnlTrainSettings *s) {
#define LNL_TS_DEFAULT(field, flag, type, lo, hi, def, choices, help) s->field = def;
    LNL_TRAIN_SETTINGS(LNL_TS_DEFAULT)
#undef LNL_TS_DEFAULT
}

void lnl_train_settings_to_json(const LnlTrainSettings *s, cJSON *train) {
    for (int i = 0; i < LNL_TRAIN_NSETTINGS; i++) {
        const LnlTrainSetting *d = &lnl_train_settings[i];
        const char *at = (const char *)s + d->off;
        switch (d->type) {
        case LNL_TS_INT: cJSON_AddNumberToObject(train, d->key, (double)*(const long long *)at); break;
        case LNL_TS_FLOAT: cJSON_AddNumberToObject(train, d->key, *(const double *)at); break;
        case LNL_TS_STR: cJSON_AddStringToObject(train, d->key, *(const char *const *)at); break;
        }
    }
}

int lnl_train_settings_check(const LnlTrainSettings *s, LnlErr *e) {
    if (s->warmup >= s->steps && s->warmup > 0)
        return lnl_err(e, "--warmup: %lld must be smaller than --steps %lld", s->warmup, s->steps);
    return 0;
}
