/* Model files: safetensors round trips for every preset, llm.c v3 and lnlab's extension,
 * Hugging Face GPT-2 files (prefixed names, tied head, config.json beside), and bad files. */
#include "harness.h"

#include <unistd.h>

#include "common/crc32.h"
#include "common/perturb.h"
#include "io/llmc.h"
#include "io/model_io.h"
#include "io/safetensors.h"

static char dir[256];

static void small(LnlConfig *c, const char *preset, LnlNormKind kind) {
    lnl_config_default(c);
    c->n_layer = 4;
    c->n_head = 2;
    c->n_embd = 8;
    c->n_positions = 6;
    c->vocab_size = 13;
    c->norm = kind;
    LnlErr e;
    lnl_config_preset(c, preset, &e);
}

static int make_model(LnlModel *m, const LnlConfig *c) {
    LnlErr e;
    if (lnl_model_create(m, c, &e)) return -1;
    lnl_model_init_weights(m, 3);
    lnl_test_perturb(m, 4);
    return 0;
}

static int same_params(const LnlModel *a, const LnlModel *b) {
    if (a->nviews != b->nviews) return 0;
    for (int i = 0; i < a->nviews; i++) {
        const LnlTensorView *v = &a->views[i], *w = lnl_model_find(b, v->name);
        if (!w || w->numel != v->numel) return 0;
        if (memcmp(a->params_mem + v->offset, b->params_mem + w->offset, v->numel * sizeof(float))) return 0;
    }
    return 1;
}

static char *path_in(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void test_safetensors_round_trip_all_presets(void) {
    const char *presets[] = {"post", "pre", "peri", "b2t", "mix", "lns", "hybrid", "hybrid*",
                             "deepnorm", "admin", "branchnorm", "rezero"};
    for (int i = 0; i < 12; i++) {
        for (int k = 0; k < 2; k++) {
            LnlConfig c;
            small(&c, presets[i], k ? LNL_NORM_RMSNORM : LNL_NORM_LAYERNORM);
            lnl_config_set_dt(&c, 0.25f);
            LnlModel a, b;
            LnlErr e;
            CHECK(make_model(&a, &c) == 0, "create");
            char *p = path_in("m.safetensors");
            CHECK(lnl_model_save(&a, p, &e) == 0, "%s", e.msg);
            CHECK(lnl_model_load(&b, p, NULL, NULL, &e) == 0, "%s: %s", presets[i], e.msg);
            CHECK(same_params(&a, &b), "%s: params differ after reload", presets[i]);
            CHECK(memcmp(&a.cfg, &b.cfg, sizeof a.cfg) == 0, "%s: config differs after reload", presets[i]);
            /* the llm.c extension holds every placement too */
            char *q = path_in("m.bin");
            LnlModel d;
            CHECK(lnl_model_save(&a, q, &e) == 0, "%s", e.msg);
            CHECK(lnl_model_load(&d, q, NULL, NULL, &e) == 0, "%s: %s", presets[i], e.msg);
            CHECK(same_params(&a, &d), "%s: params differ after .bin reload", presets[i]);
            lnl_model_free(&a);
            lnl_model_free(&b);
            lnl_model_free(&d);
        }
    }
}

static void test_llmc_v3_for_plain_gpt2(void) {
    LnlConfig c;
    small(&c, "pre", LNL_NORM_LAYERNORM);
    LnlModel a, b;
    LnlErr e;
    CHECK(make_model(&a, &c) == 0, "create");
    CHECK(lnl_config_is_plain_gpt2(&a.cfg), "pre + layernorm is not plain GPT-2");
    char *p = path_in("gpt2.bin");
    CHECK(lnl_model_save(&a, p, &e) == 0, "%s", e.msg);
    LnlLlmcHeader h;
    CHECK(lnl_llmc_read_header(p, &h, &e) == 0, "not a valid llm.c v3 file: %s", e.msg);
    CHECK(h.padded_vocab_size == 128 && h.num_layers == 4, "header Vp %d L %d", h.padded_vocab_size, h.num_layers);
    CHECK(lnl_model_load(&b, p, NULL, NULL, &e) == 0, "%s", e.msg);
    CHECK(same_params(&a, &b) && strcmp(b.cfg.preset, "pre") == 0, "v3 round trip differs");
    lnl_model_free(&b);
    /* an llm.c file cannot become a placement with other tensors */
    CHECK(lnl_model_load(&b, p, NULL, NULL, &e) == 0, "%s", e.msg);
    lnl_model_free(&b);
    lnl_model_free(&a);
}

static int to_peri(LnlConfig *c, void *ctx, LnlErr *e) {
    (void)ctx;
    int r = lnl_config_preset(c, "peri", e);
    c->embed_norm = 0; /* else peri's default ln_e is the first missing tensor the error names */
    return r;
}

static int set_dt(LnlConfig *c, void *ctx, LnlErr *e) {
    (void)e;
    lnl_config_set_dt(c, *(float *)ctx);
    return 0;
}

static void test_overrides_on_load(void) {
    LnlConfig c;
    small(&c, "pre", LNL_NORM_LAYERNORM);
    LnlModel a, b;
    LnlErr e;
    CHECK(make_model(&a, &c) == 0, "create");
    char *p = path_in("gpt2b.bin");
    CHECK(lnl_model_save(&a, p, &e) == 0, "%s", e.msg);
    float dt = 0.1f;
    CHECK(lnl_model_load(&b, p, set_dt, &dt, &e) == 0 && b.cfg.dt == 0.1f, "dt override failed: %s", e.msg);
    lnl_model_free(&b);
    CHECK(lnl_model_load(&b, p, to_peri, NULL, &e) != 0 && strstr(e.msg, "peri"), "peri accepted from llm.c file");
    char *s = path_in("pre.safetensors");
    CHECK(lnl_model_save(&a, s, &e) == 0, "%s", e.msg);
    CHECK(lnl_model_load(&b, s, to_peri, NULL, &e) != 0 && strstr(e.msg, "ln_1_out"), "missing tensor not named: %s",
          e.msg);
    lnl_model_free(&a);
}

/* Replaces the first occurrence of `from` in the file by `to` (same length: the layout stays). */
static int edit_file(const char *path, const char *from, const char *to) {
    char *buf;
    size_t n;
    LnlErr e;
    if (lnl_read_file(path, &buf, &n, &e)) return -1;
    char *at = n > 8 ? strstr(buf + 8, from) : NULL; /* the JSON header, after its length, holds no NUL */
    int r = -1;
    if (at && strlen(from) == strlen(to)) {
        memcpy(at, to, strlen(to));
        r = lnl_write_file_atomic(path, buf, n, &e);
    }
    free(buf);
    return r;
}

/* The config in __metadata__ is covered by LNL_META_CONFIG_CRC: an edited config is refused, a
 * file without the checksum (older lnlab) loads as its config says. */
static void test_config_checksum(void) {
    LnlConfig c;
    small(&c, "post", LNL_NORM_LAYERNORM);
    lnl_config_set_dt(&c, 0.25f);
    LnlModel a, b;
    LnlErr e;
    CHECK(make_model(&a, &c) == 0, "create");
    char *p = path_in("crc.safetensors");
    CHECK(lnl_model_save(&a, p, &e) == 0, "%s", e.msg);
    LnlSafetensors st;
    CHECK(lnl_st_open(&st, p, &e) == 0, "%s", e.msg);
    const char *cfg = lnl_st_meta(&st, LNL_META_CONFIG), *crc = lnl_st_meta(&st, LNL_META_CONFIG_CRC);
    char want[16] = "";
    if (cfg) snprintf(want, sizeof want, "%08x", (unsigned)lnl_crc32(0, cfg, strlen(cfg)));
    CHECK(cfg && crc && strcmp(crc, want) == 0, "config checksum %s, expected %s", crc ? crc : "(none)", want);
    lnl_st_close(&st);

    CHECK(edit_file(p, "\\\"dt\\\":0.25", "\\\"dt\\\":0.50") == 0, "edit"); /* escaped in the header */
    e.msg[0] = 0;
    int r = lnl_model_load(&b, p, NULL, NULL, &e);
    CHECK(r != 0 && strstr(e.msg, p) && strstr(e.msg, "the model config in __metadata__ does not match its checksum") &&
              !strchr(e.msg, '\n'),
          "edited config: %s", e.msg);
    if (r == 0) lnl_model_free(&b);
    /* the same file without the checksum key (renamed: unknown keys are ignored) */
    CHECK(edit_file(p, "\"" LNL_META_CONFIG_CRC "\"", "\"lnlab.config.crc99\"") == 0, "edit key");
    r = lnl_model_load(&b, p, NULL, NULL, &e);
    CHECK(r == 0, "file without config checksum: %s", e.msg);
    if (r == 0) {
        CHECK(b.cfg.dt == 0.5f && same_params(&a, &b), "dt %g", b.cfg.dt);
        lnl_model_free(&b);
    }
    /* a checksum that is not 8 hex digits */
    CHECK(lnl_model_save(&a, p, &e) == 0, "%s", e.msg);
    CHECK(edit_file(p, want, "zzzzzzzz") == 0, "edit crc");
    r = lnl_model_load(&b, p, NULL, NULL, &e);
    CHECK(r != 0 && strstr(e.msg, "not 8 hex digits"), "bad checksum text: %s", e.msg);
    if (r == 0) lnl_model_free(&b);
    lnl_model_free(&a);
}

/* lnl_config_diff: what a built model computes differently, one line; nothing for a change of name. */
static void test_config_diff(void) {
    LnlConfig a, b;
    LnlErr e;
    small(&a, "post", LNL_NORM_LAYERNORM);
    b = a;
    char *d = lnl_config_diff(&a, &b);
    CHECK(d == NULL, "same config: %s", d);
    free(d);
    lnl_config_set_dt(&b, 0.1f);
    d = lnl_config_diff(&a, &b);
    CHECK(d && strcmp(d, "dt 1 -> 0.1") == 0, "dt: %s", d ? d : "(none)");
    free(d);
    b = a;
    lnl_config_preset(&b, "b2t", &e);
    d = lnl_config_diff(&a, &b);
    CHECK(d && strcmp(d, "preset post -> b2t") == 0, "b2t: %s", d ? d : "(none)");
    free(d);
    b = a;
    lnl_config_preset(&b, "pre", &e);
    b.norm = LNL_NORM_RMSNORM;
    b.n_head = 4;
    d = lnl_config_diff(&a, &b);
    CHECK(d && strcmp(d, "preset post -> pre, n_head 2 -> 4, norm layernorm -> rmsnorm, final_norm off -> on, "
                         "embed_scale on -> off") == 0,
          "pre: %s", d ? d : "(none)");
    free(d);
    /* --spec renames the preset "custom"; an edit that changes nothing is no difference */
    b = a;
    CHECK(lnl_config_override(&b, "post_norm=1", &e) == 0 && strcmp(b.preset, "custom") == 0, "%s", e.msg);
    d = lnl_config_diff(&a, &b);
    CHECK(d == NULL, "no-op --spec: %s", d);
    free(d);
    CHECK(lnl_config_override(&b, "mlp.b2t=1@2-2,embed_norm=1", &e) == 0, "%s", e.msg);
    d = lnl_config_diff(&a, &b);
    CHECK(d && strcmp(d, "preset post -> custom, embed_norm off -> on") == 0, "spec: %s", d ? d : "(none)");
    free(d);
    /* init rules do not change a built model */
    b = a;
    b.init_std = 0.5f;
    d = lnl_config_diff(&a, &b);
    CHECK(d == NULL, "init_std: %s", d);
    free(d);
}

/* A file laid out as Hugging Face writes GPT-2: "transformer." prefix, Conv1D weights, the
 * tied lm_head and attention-mask buffers, no lnlab metadata, config.json beside it. */
static void test_hugging_face_gpt2(void) {
    LnlConfig c;
    small(&c, "pre", LNL_NORM_LAYERNORM);
    LnlModel a, b;
    LnlErr e;
    CHECK(make_model(&a, &c) == 0, "create");
    char sub[512];
    snprintf(sub, sizeof sub, "%s/hf", dir);
    CHECK(lnl_mkdir_p(sub, &e) == 0, "%s", e.msg);
    LnlStWriter w;
    lnl_stw_init(&w);
    for (int i = 0; i < a.nviews; i++) {
        const LnlTensorView *v = &a.views[i];
        char name[96];
        snprintf(name, sizeof name, "transformer.%s", v->name);
        float *t = lnl_malloc(v->numel * sizeof(float));
        lnl_view_to_file(v, a.params_mem + v->offset, t);
        int64_t shape[2] = {v->ndim == 1 ? v->shape[0] : (v->hf_transpose ? v->shape[1] : v->shape[0]),
                            v->hf_transpose ? v->shape[0] : v->shape[1]};
        lnl_stw_add(&w, name, LNL_ST_F32, v->ndim, shape, t, 1);
    }
    int64_t hs[2] = {13, 8};
    lnl_stw_add(&w, "lm_head.weight", LNL_ST_F32, 2, hs, a.p.wte, 0);
    float mask[36] = {0};
    int64_t ms[4] = {1, 1, 6, 6};
    lnl_stw_add(&w, "transformer.h.0.attn.bias", LNL_ST_F32, 4, ms, mask, 0);
    char mp[600], cp[600];
    snprintf(mp, sizeof mp, "%s/model.safetensors", sub);
    snprintf(cp, sizeof cp, "%s/config.json", sub);
    CHECK(lnl_stw_write(&w, mp, &e) == 0, "%s", e.msg);
    lnl_stw_free(&w);
    const char *cfg = "{\"model_type\": \"gpt2\", \"n_layer\": 4, \"n_head\": 2, \"n_embd\": 8, "
                      "\"n_positions\": 6, \"vocab_size\": 13, \"layer_norm_epsilon\": 1e-05}";
    CHECK(lnl_write_file_atomic(cp, cfg, strlen(cfg), &e) == 0, "%s", e.msg);
    CHECK(lnl_model_load(&b, mp, NULL, NULL, &e) == 0, "HF file did not load: %s", e.msg);
    CHECK(same_params(&a, &b) && strcmp(b.cfg.preset, "pre") == 0 && b.cfg.n_head == 2, "HF load differs");
    lnl_model_free(&b);
    /* a config.json switch lnlab cannot honour refuses the file instead of loading another model */
    const char *relu = "{\"model_type\": \"gpt2\", \"n_layer\": 4, \"n_head\": 2, \"n_embd\": 8, "
                       "\"n_positions\": 6, \"vocab_size\": 13, \"activation_function\": \"relu\"}";
    CHECK(lnl_write_file_atomic(cp, relu, strlen(relu), &e) == 0, "%s", e.msg);
    int r = lnl_model_load(&b, mp, NULL, NULL, &e);
    CHECK(r != 0 && strstr(e.msg, cp) && strstr(e.msg, "'activation_function' is \"relu\""), "relu accepted: %s",
          e.msg);
    if (r == 0) lnl_model_free(&b);
    unlink(cp); /* without config.json the sizes come from the shapes, heads from C / 64 */
    CHECK(lnl_model_load(&b, mp, NULL, NULL, &e) == 0, "HF file without config.json: %s", e.msg);
    CHECK(b.cfg.n_layer == 4 && b.cfg.n_embd == 8 && b.cfg.vocab_size == 13, "inferred sizes wrong");
    lnl_model_free(&b);
    lnl_model_free(&a);
}

static void test_bad_files(void) {
    LnlConfig c;
    small(&c, "peri", LNL_NORM_LAYERNORM);
    LnlModel a, b;
    LnlErr e;
    CHECK(make_model(&a, &c) == 0, "create");
    CHECK(lnl_model_save(&a, path_in("x.pt"), &e) != 0 && strstr(e.msg, "extension"), "bad extension accepted");
    a.params_mem[a.views[3].offset] = NAN;
    char *p = path_in("nan.safetensors");
    CHECK(lnl_model_save(&a, p, &e) == 0, "%s", e.msg);
    CHECK(lnl_model_load(&b, p, NULL, NULL, &e) != 0 && strstr(e.msg, "non-finite"), "NaN accepted: %s", e.msg);
    char *bad = path_in("junk.bin");
    CHECK(lnl_write_file_atomic(bad, "not a model at all", 18, &e) == 0, "%s", e.msg);
    CHECK(lnl_model_load(&b, bad, NULL, NULL, &e) != 0 && strstr(e.msg, "junk.bin"), "junk accepted: %s", e.msg);
    CHECK(lnl_model_load(&b, path_in("absent.safetensors"), NULL, NULL, &e) != 0 && strstr(e.msg, "absent"),
          "missing file accepted");
    /* a truncated lnlab .bin */
    a.params_mem[a.views[3].offset] = 1.0f;
    char *q = path_in("t.bin");
    CHECK(lnl_model_save(&a, q, &e) == 0, "%s", e.msg);
    CHECK(truncate(q, 2000) == 0, "truncate");
    CHECK(lnl_model_load(&b, q, NULL, NULL, &e) != 0 && strstr(e.msg, "truncated"), "truncated accepted: %s", e.msg);
    lnl_model_free(&a);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/lnlab_test_model_io.%d", (int)getpid());
    LnlErr e;
    if (lnl_mkdir_p(dir, &e)) {
        printf("FAIL setup: %s\n", e.msg);
        return 1;
    }
    RUN_TEST(test_safetensors_round_trip_all_presets);
    RUN_TEST(test_llmc_v3_for_plain_gpt2);
    RUN_TEST(test_overrides_on_load);
    RUN_TEST(test_config_checksum);
    RUN_TEST(test_config_diff);
    RUN_TEST(test_hugging_face_gpt2);
    RUN_TEST(test_bad_files);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    TEST_MAIN_END();
}
