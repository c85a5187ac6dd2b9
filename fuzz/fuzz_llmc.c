/* Fuzz target: llm.c's model file reader (src/io/llmc.h): header fields, sizes against the file
 * size, and reading the 16 tensors. */
#include "fuzz_common.h"
#include "io/llmc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("in.bin", data, size);
    LnlLlmcHeader h;
    LnlErr e = {""};
    int r = lnl_llmc_read_header(path, &h, &e);
    fuzz_check(r, &e, "lnl_llmc_read_header");
    if (r) return 0;
    FUZZ_ASSERT(LNL_LLMC_HEADER_BYTES + 4 * lnl_llmc_file_params(&h) == size, "size check");
    size_t sizes[LNL_LLMC_NUM_TENSORS];
    lnl_llmc_tensor_sizes(&h, sizes);
    float *dst[LNL_LLMC_NUM_TENSORS];
    for (int i = 0; i < LNL_LLMC_NUM_TENSORS; i++) dst[i] = (i % 3 == 1) ? NULL : malloc(sizes[i] * 4 + 1);
    r = lnl_llmc_read_params(path, &h, dst, &e);
    fuzz_check(r, &e, "lnl_llmc_read_params");
    FUZZ_ASSERT(r == 0, "params of a valid header: %s", e.msg);
    for (int i = 0; i < LNL_LLMC_NUM_TENSORS; i++) free(dst[i]);
    return 0;
}
