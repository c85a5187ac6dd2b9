/* Fuzz target: the study config JSON (lnl_study_config_parse, src/study/config.h). An accepted
 * config is validated, printed and read back to the same JSON, and, when its grids are small,
 * expanded into runs. */
#include "fuzz_common.h"
#include "study/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    LnlStudyConfig *c = calloc(1, sizeof *c), *d = calloc(1, sizeof *d);
    LnlErr e = {""};
    int r = lnl_study_config_parse(c, text, "fuzz", &e);
    fuzz_check(r, &e, "lnl_study_config_parse");
    if (r == 0) {
        e.msg[0] = 0;
        fuzz_check(lnl_study_config_validate(c, "fuzz", &e), &e, "lnl_study_config_validate");
        char *js = lnl_study_config_to_json(c);
        r = lnl_study_config_parse(d, js, "fuzz (printed)", &e);
        FUZZ_ASSERT(r == 0, "printed config does not read back: %s\n%s", e.msg, js);
        char *js2 = lnl_study_config_to_json(d);
        FUZZ_ASSERT(strcmp(js, js2) == 0, "round trip changed the config:\n%s\n%s", js, js2);
        free(js);
        free(js2);
        free(lnl_study_settings_json(c));
        double runs = 0;
        for (int g = 0; g < c->ngrids; g++) {
            double p = 1;
            for (int a = 0; a < LNL_NAXES; a++) p *= c->grids[g].ax[a].n > 0 ? c->grids[g].ax[a].n : 1;
            runs += p;
        }
        if (runs <= 4096) {
            LnlStudyRun *rs = NULL;
            int n = 0;
            e.msg[0] = 0;
            r = lnl_study_expand(c, &rs, &n, &e);
            fuzz_check(r, &e, "lnl_study_expand");
            free(rs);
        }
        lnl_study_config_free(d);
    }
    lnl_study_config_free(c);
    free(c);
    free(d);
    free(text);
    return 0;
}
