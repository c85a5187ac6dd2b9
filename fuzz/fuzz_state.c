/* Fuzz target: the training state file of a checkpoint (src/train/checkpoint.h). */
#include "fuzz_common.h"
#include "train/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("state.safetensors", data, size);
    LnlTrainState st;
    LnlErr e = {""};
    int r = lnl_state_read(path, &st, &e);
    fuzz_check(r, &e, "lnl_state_read");
    if (r == 0) lnl_state_free(&st);
    return 0;
}
