/* Fuzz target: model files (src/io/model_io.h): safetensors with an lnlab config or Hugging Face
 * names, llm.c's version 3 file and lnlab's version 1003. The first input byte picks the file
 * name's extension (the loader dispatches on content, and on ".bin" for the error message). An
 * accepted model must save and load back with the same parameters in both formats. */
#include "fuzz_common.h"
#include "io/model_io.h"

static void roundtrip(const LnlModel *m, const char *name) {
    char path[200];
    snprintf(path, sizeof path, "%s", fuzz_file(name, "", 0));
    LnlErr e = {""};
    int r = lnl_model_save(m, path, &e);
    FUZZ_ASSERT(r == 0, "saving %s: %s", name, e.msg);
    LnlModel b;
    r = lnl_model_load(&b, path, NULL, NULL, &e);
    FUZZ_ASSERT(r == 0, "loading the saved %s: %s", name, e.msg);
    FUZZ_ASSERT(b.num_params == m->num_params, "%s: parameter count", name);
    for (int i = 0; i < m->nviews; i++) {
        const LnlTensorView *v = &m->views[i];
        FUZZ_ASSERT(memcmp(m->params_mem + v->offset, b.params_mem + v->offset, v->numel * sizeof(float)) == 0,
                    "%s: tensor %s changed", name, v->name);
    }
    lnl_model_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *name = data[0] & 1 ? "in.bin" : "in.safetensors";
    const char *path = fuzz_file(name, data + 1, size - 1);
    LnlModel m;
    LnlErr e = {""};
    int r = lnl_model_load(&m, path, NULL, NULL, &e);
    fuzz_check(r, &e, "lnl_model_load");
    if (r) return 0;
    roundtrip(&m, "rt.safetensors");
    roundtrip(&m, "rt.bin");
    lnl_model_free(&m);
    return 0;
}
