/* Fuzz target: Hugging Face config.json (src/io/hfconfig.h). */
#include "fuzz_common.h"
#include "io/hfconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("config.json", data, size);
    LnlHfConfig c;
    LnlErr e = {""};
    int r = lnl_hfconfig_read(path, &c, &e);
    fuzz_check(r, &e, "lnl_hfconfig_read");
    if (r == 0)
        FUZZ_ASSERT(c.n_layer > 0 && c.n_head > 0 && c.n_embd % c.n_head == 0 && c.n_positions > 0 && c.vocab_size > 0 &&
                        c.layer_norm_epsilon > 0,
                    "accepted sizes");
    return 0;
}
