/* Fuzz target: the lnlab model config JSON (lnl_config_from_json, src/model/spec.h), read from
 * safetensors metadata, lnlab .bin files and RUN/config.json. An accepted config must print and
 * read back to the same JSON. */
#include "fuzz_common.h"
#include "model/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    LnlConfig *c = malloc(sizeof *c), *d = malloc(sizeof *d);
    LnlErr e = {""};
    int r = lnl_config_from_json(c, text, "fuzz", &e);
    fuzz_check(r, &e, "lnl_config_from_json");
    if (r == 0) {
        char *js = lnl_config_to_json(c);
        r = lnl_config_from_json(d, js, "fuzz (printed)", &e);
        FUZZ_ASSERT(r == 0, "printed config does not read back: %s", e.msg);
        char *js2 = lnl_config_to_json(d);
        FUZZ_ASSERT(strcmp(js, js2) == 0, "round trip changed the config:\n%s\n%s", js, js2);
        free(js);
        free(js2);
    }
    free(c);
    free(d);
    free(text);
    return 0;
}
