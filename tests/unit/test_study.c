/* Study library: config parsing and its errors, top-level axes as grid defaults, flags over a
 * config, expansion into runs (ids, order, repeats dropped, named sizes), the precision axis (ids,
 * settings, resume, same-setting, host check), medians, and results records read back as written. */
#include <cjson/cJSON.h>

#include "harness.h"
#include "study/config.h"
#include "study/plan.h"
#include "study/results.h"

static int parse(LnlStudyConfig *c, const char *json, LnlErr *e) { return lnl_study_config_parse(c, json, "t.json", e); }

static void test_builtin_default_expands(void) {
    LnlStudyConfig c;
    LnlErr e;
    CHECK(lnl_study_config_builtin(&c, "default", &e) == 0, "%s", e.msg);
    LnlStudyRun *runs;
    int n;
    CHECK(lnl_study_expand(&c, &runs, &n, &e) == 0, "%s", e.msg);
    /* lr-sweep 2 presets x 5 lrs x 2 seeds, its dt 0.1 twin with 1 seed, depth 2 x 3 less the sweep's
     * L8 run, deep-post 3 presets x 2 depths x 2 seeds */
    CHECK(n == 20 + 10 + 4 + 12, "n = %d", n);
    CHECK(strcmp(runs[0].id, "pre-dt1-L8-lr0.001-s1") == 0, "first id %s", runs[0].id);
    CHECK(strcmp(runs[1].id, "pre-dt1-L8-lr0.001-s2") == 0, "seed varies fastest: %s", runs[1].id);
    CHECK(strcmp(runs[n - 1].id, "pre+steps600+wu60-dt1-L18-lr0.001-s2") == 0, "last id %s", runs[n - 1].id);
    for (int i = 0; i < n; i++) {
        CHECK(runs[i].order == i, "order");
        for (int j = 0; j < i; j++) CHECK(strcmp(runs[i].id, runs[j].id) != 0, "repeated id %s", runs[i].id);
    }
    free(runs);
    lnl_study_config_free(&c);
}

static void test_paper_sizes(void) {
    LnlStudyConfig c;
    LnlErr e;
    CHECK(lnl_study_config_builtin(&c, "paper", &e) == 0, "%s", e.msg);
    LnlStudyRun *runs;
    int n;
    CHECK(lnl_study_expand(&c, &runs, &n, &e) == 0, "%s", e.msg);
    CHECK(n == 3 * 2 * 3, "n = %d", n);
    CHECK(strcmp(runs[0].id, "post-dt1-gpt2-lr0.0006-s1") == 0, "%s", runs[0].id);
    CHECK(runs[0].depth == 12 && runs[0].dim == 768 && runs[0].heads == 12, "gpt2 shape");
    int xl = 0;
    for (int i = 0; i < n; i++)
        if (!strcmp(runs[i].size, "gpt2-xl")) xl = runs[i].depth == 48 && runs[i].dim == 1600 && runs[i].heads == 25;
    CHECK(xl, "gpt2-xl is 48 layers of width 1600, 25 heads");
    CHECK(c.seq == 1024 && c.warmup == 2000 && c.grad_clip == 1 && c.weight_decay == 0.1 && c.beta2 == 0.95, "settings");
    free(runs);
    lnl_study_config_free(&c);
}

static void test_top_level_axes_and_dedupe(void) {
    LnlStudyConfig c;
    LnlErr e;
    const char *j = "{\"steps\": 30, \"warmup\": 3, \"seeds\": [7, 8], \"grids\": [{\"name\": \"a\", \"presets\": [\"sandwich\"]},"
                    " {\"presets\": [\"peri\", \"hybrid*\"], \"depths\": [3]}]}";
    CHECK(parse(&c, j, &e) == 0, "%s", e.msg);
    CHECK(c.steps == 30 && c.dim == 64, "fields: steps %lld dim %lld", c.steps, c.dim);
    LnlStudyRun *runs;
    int n;
    CHECK(lnl_study_expand(&c, &runs, &n, &e) == 0, "%s", e.msg);
    /* grid a: peri (sandwich is peri) x dt 1 x L4 x 2 seeds; grid 2: peri, hybrid* x L3 x 2 seeds */
    CHECK(n == 2 + 4, "n = %d", n);
    CHECK(strcmp(runs[0].id, "peri-dt1-L4-lr0.003-s7") == 0, "%s", runs[0].id);
    CHECK(strcmp(runs[4].id, "hybridstar-dt1-L3-lr0.003-s7") == 0, "%s", n > 4 ? runs[4].id : "");
    CHECK(strcmp(runs[2].grid, "grid2") == 0, "unnamed grid: %s", runs[2].grid);
    free(runs);
    /* an axis flag replaces the axis in every grid: both grids become the same runs */
    const char *items[] = {"pre,post", "post"};
    CHECK(lnl_study_axis_set_all(&c, LNL_AX_PRESET, items, 2, "--presets", &e) == 0, "%s", e.msg);
    const char *d[] = {"5"};
    CHECK(lnl_study_axis_set_all(&c, LNL_AX_DEPTH, d, 1, "--depths", &e) == 0, "%s", e.msg);
    CHECK(lnl_study_expand(&c, &runs, &n, &e) == 0, "%s", e.msg);
    CHECK(n == 4, "pre, post, post x 2 seeds, repeats dropped: n = %d", n);
    free(runs);
    lnl_study_config_free(&c);
}

static void test_config_errors(void) {
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"{\"steps\": 10,", "t.json: not valid JSON at line 1"},
        {"[1, 2]", "t.json: expected a JSON object"},
        {"{\"steps\": -3}", "t.json: field 'steps': expected an integer in [1, "},
        {"{\"steps\": 2.5}", "t.json: field 'steps': expected an integer, got 2.5"},
        {"{\"steps\": \"many\"}", "t.json: field 'steps': expected a number"},
        {"{\"norm\": \"batchnorm\"}", "t.json: field 'norm': 'batchnorm' is not one of layernorm|rmsnorm"},
        {"{\"presets\": [\"pre\", 3]}", "t.json: field 'presets[1]': expected a string"},
        {"{\"dts\": [1, 0]}", "t.json: field 'dts[1]': dt must be positive"},
        {"{\"sizes\": [\"gpt5\"]}", "t.json: field 'sizes[0]': 'gpt5' is not a named size"},
        {"{\"depths\": [4], \"sizes\": [\"gpt2\"]}", "t.json: give depths or sizes, not both"},
        {"{\"grids\": []}", "t.json: field 'grids': expected a non-empty list"},
        {"{\"grids\": [{\"lr\": [1]}]}", "t.json: unknown field 'grids[0].lr'"},
        {"{\"dim\": 30, \"heads\": 4}", "t.json: field 'heads': 4 does not divide dim 30"},
        {"{\"seeds\": []}", "t.json: field 'seeds': empty list"},
        {"{\"precisions\": [\"fp32\", \"fp16\"]}", "t.json: field 'precisions[1]': 'fp16' is not a precision (fp32|bf16)"},
        {"{\"grids\": [{\"precisions\": [16]}]}", "t.json: field 'grids[0].precisions[0]': expected a string"},
        {"{\"precision\": \"fp16\"}", "t.json: field 'precision': 'fp16' is not one of fp32|bf16"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        LnlStudyConfig c;
        LnlErr e = {{0}};
        int r = parse(&c, cases[i].json, &e);
        CHECK(r != 0, "accepted %s", cases[i].json);
        CHECK(strstr(e.msg, cases[i].want) != NULL, "%s: got '%s', want '%s'", cases[i].json, e.msg, cases[i].want);
        CHECK(strchr(e.msg, '\n') == NULL, "message on one line: %s", e.msg);
        if (r == 0) lnl_study_config_free(&c);
    }
}

static void test_config_json_roundtrip(void) {
    LnlStudyConfig a, b;
    LnlErr e;
    CHECK(lnl_study_config_builtin(&a, "default", &e) == 0, "%s", e.msg);
    char *s1 = lnl_study_config_to_json(&a);
    CHECK(parse(&b, s1, &e) == 0, "%s", e.msg);
    char *s2 = lnl_study_config_to_json(&b);
    CHECK(strcmp(s1, s2) == 0, "printed config reads back to itself");
    char *k1 = lnl_study_settings_json(&a), *k2 = lnl_study_settings_json(&b);
    CHECK(strcmp(k1, k2) == 0 && strstr(k1, "\"jobs\"") == NULL && strstr(k1, "\"steps\":400"), "settings %s", k1);
    free(s1);
    free(s2);
    cJSON_free(k1);
    cJSON_free(k2);
    lnl_study_config_free(&a);
    lnl_study_config_free(&b);
}

/* Options per grid and per preset entry: read, printed back, distinct runs with the options in
 * their ids, and the train flags each run gets. */
static void test_options(void) {
    LnlStudyConfig c;
    LnlErr e;
    const char *j = "{\"steps\": 50, \"bias\": false, \"grids\": ["
                    " {\"name\": \"peri\", \"presets\": [\"pre\", \"peri\", {\"preset\": \"sandwich\", \"embed_norm\": false}]},"
                    " {\"name\": \"post\", \"presets\": [\"post\", {\"preset\": \"post\", \"init_std\": 0.02,"
                    "  \"resid_scale_init\": \"on\", \"embed_scale\": false}], \"depths\": [6], \"steps\": 80, \"warmup\": 8,"
                    "  \"init_std\": \"1/sqrt(C)\"}]}";
    CHECK(parse(&c, j, &e) == 0, "%s", e.msg);
    CHECK(!strcmp(c.bias, "off") && !strcmp(c.embed_norm, "preset"), "top-level switches: bias %s", c.bias);
    LnlStudyRun *runs;
    int n;
    CHECK(lnl_study_expand(&c, &runs, &n, &e) == 0, "%s", e.msg);
    CHECK(n == 5, "n = %d", n);
    const char *ids[] = {"pre-dt1-L4-lr0.003-s1", "peri-dt1-L4-lr0.003-s1", "peri+noen-dt1-L4-lr0.003-s1",
                         "post+std1_sqrtC+steps80+wu8-dt1-L6-lr0.003-s1",
                         "post+std0.02+rs+noes+steps80+wu8-dt1-L6-lr0.003-s1"};
    for (int i = 0; i < n && i < 5; i++) CHECK(strcmp(runs[i].id, ids[i]) == 0, "run %d: %s, want %s", i, runs[i].id, ids[i]);
    CHECK(!strcmp(runs[2].preset, "peri") && !strcmp(runs[2].variant, "noen") && !strcmp(runs[2].opt[LNL_OPT_EMBED_NORM], "off"),
          "entry options on the run");
    /* the flags: the run's own options, else the shared settings; "preset" passes none */
    char w[2 * LNL_STUDY_NOPTS][LNL_STUDY_ARG_MAX];
    int nw = lnl_study_train_args(&c, &runs[2], w);
    LnlBuf b = {0};
    for (int i = 0; i < nw; i++) lnl_buf_printf(&b, "%s%s", i ? " " : "", w[i]);
    CHECK(b.data && !strcmp(b.data, "--bias off --embed-norm=false --steps 50 --warmup 40 --schedule cosine "
                                     "--min-lr-frac 0.10000000000000001 --weight-decay 0.10000000000000001 --grad-clip 1"),
          "peri+noen flags: %s", b.data ? b.data : "");
    lnl_buf_free(&b);
    nw = lnl_study_train_args(&c, &runs[4], w);
    for (int i = 0; i < nw; i++) lnl_buf_printf(&b, "%s%s", i ? " " : "", w[i]);
    CHECK(b.data && strstr(b.data, "--init-std 0.02 --resid-scale-init on --bias off --embed-scale=false --steps 80 --warmup 8 "),
          "post flags: %s", b.data ? b.data : "");
    lnl_buf_free(&b);
    free(runs);
    /* printed, read back, printed the same */
    char *s1 = lnl_study_config_to_json(&c);
    LnlStudyConfig d;
    CHECK(parse(&d, s1, &e) == 0, "%s", e.msg);
    char *s2 = lnl_study_config_to_json(&d);
    CHECK(strcmp(s1, s2) == 0, "options do not read back");
    CHECK(strstr(s1, "\"embed_norm\": false") && strstr(s1, "\"init_std\": \"1/sqrt(C)\"") && strstr(s1, "\"bias\": false"),
          "printed: %s", s1);
    char *k1 = lnl_study_settings_json(&c);
    CHECK(strstr(k1, "\"bias\":false") && strstr(k1, "\"init_std\":\"preset\""), "settings: %s", k1);
    cJSON_free(k1);
    free(s1);
    free(s2);
    lnl_study_config_free(&d);
    /* an axis flag replaces the entries, options and all; the grid's options stay */
    const char *items[] = {"peri"};
    CHECK(lnl_study_axis_set_all(&c, LNL_AX_PRESET, items, 1, "--presets", &e) == 0, "%s", e.msg);
    CHECK(lnl_study_expand(&c, &runs, &n, &e) == 0, "%s", e.msg);
    CHECK(n == 2 && !strcmp(runs[0].id, "peri-dt1-L4-lr0.003-s1") && !strcmp(runs[1].id, "peri+std1_sqrtC+steps80+wu8-dt1-L6-lr0.003-s1"),
          "after --presets: %d runs, %s", n, n ? runs[n - 1].id : "");
    free(runs);
    lnl_study_config_free(&c);
    /* the default study has no options: its runs keep their ids */
    CHECK(lnl_study_config_builtin(&c, "default", &e) == 0, "%s", e.msg);
    CHECK(lnl_study_expand(&c, &runs, &n, &e) == 0 && !runs[0].variant[0], "default study variants");
    nw = lnl_study_train_args(&c, &runs[0], w);
    CHECK(nw == 12 && !strcmp(w[0], "--steps"), "default flags: %d, %s", nw, w[0]);
    free(runs);
    lnl_study_config_free(&c);
}

static void test_option_errors(void) {
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"{\"presets\": [{\"embed_norm\": true}]}", "t.json: field 'presets[0]': a preset entry needs \"preset\""},
        {"{\"presets\": [{\"preset\": \"nope\"}]}", "t.json: field 'presets[0].preset': 'nope' is not a preset"},
        {"{\"grids\": [{\"presets\": [{\"preset\": \"peri\", \"embed_norms\": true}]}]}",
         "t.json: unknown field 'grids[0].presets[0].embed_norms' (a preset entry has preset and the options init_std,"},
        {"{\"grids\": [{\"presets\": [{\"preset\": \"peri\", \"embed_norm\": 1}]}]}",
         "t.json: field 'grids[0].presets[0].embed_norm': expected true, false or \"preset\""},
        {"{\"grids\": [{\"presets\": [\"pre\"], \"bias\": \"maybe\"}]}",
         "t.json: field 'grids[0].bias': 'maybe' is not one of preset|on|off"},
        {"{\"grids\": [{\"init_std\": 0}]}", "t.json: field 'grids[0].init_std': expected a number in (0, 10], 1/sqrt(C) or preset"},
        {"{\"init_std\": \"1/sqrt(L)\"}", "t.json: field 'init_std': expected a number in (0, 10], 1/sqrt(C) or preset, got '1/sqrt(L)'"},
        {"{\"grids\": [{\"steps\": 2.5}]}", "t.json: field 'grids[0].steps': expected an integer, got 2.5"},
        {"{\"grids\": [{\"schedule\": \"cyclic\"}]}", "t.json: field 'grids[0].schedule': 'cyclic' is not one of"},
        {"{\"grids\": [{\"name\": \"g\", \"presets\": [\"pre\", {\"preset\": \"peri\", \"steps\": 10}], \"warmup\": 10}]}",
         "t.json: grid 'g', preset peri: warmup 10 must be smaller than steps 10"},
        {"{\"grids\": [{\"batch\": 4}]}", "t.json: unknown field 'grids[0].batch' (a grid has name, the axes and the options"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        LnlStudyConfig c;
        LnlErr e = {{0}};
        int r = parse(&c, cases[i].json, &e);
        CHECK(r != 0, "accepted %s", cases[i].json);
        CHECK(strstr(e.msg, cases[i].want) != NULL, "%s: got '%s', want '%s'", cases[i].json, e.msg, cases[i].want);
        CHECK(strchr(e.msg, '\n') == NULL, "message on one line: %s", e.msg);
        if (r == 0) lnl_study_config_free(&c);
    }
}

/* Whether train's command line for run r holds "--precision P" (P NULL: no --precision at all). */
static int argv_precision(const LnlStudyConfig *c, const LnlStudyRun *r, const char *p) {
    LnlArgv a = {{0}, 0};
    lnl_study_train_argv(&a, c, r, "dir");
    int found = 0;
    for (int i = 0; i + 1 < a.n; i++)
        if (!strcmp(a.v[i], "--precision")) found = p && !strcmp(a.v[i + 1], p) ? 1 : -1;
    lnl_argv_free(&a);
    return p ? found == 1 : found == 0;
}

/* The precision axis: twice the runs, the ids of fp32 runs as before and -bf16 on the others, each
 * run's settings (the resume key) its own, two settings for the figures and findings, the flag on
 * train's command line only for bf16, and the config printed and read back. */
static void test_precision_axis(void) {
    LnlStudyConfig c;
    LnlErr e;
    const char *j = "{\"seeds\": [1, 2], \"grids\": [{\"name\": \"g\", \"presets\": [\"pre\"], \"depths\": [2],"
                    " \"precisions\": [\"fp32\", \"bf16\"]}]}";
    CHECK(parse(&c, j, &e) == 0, "%s", e.msg);
    LnlStudyRun *runs;
    int n;
    CHECK(lnl_study_expand(&c, &runs, &n, &e) == 0, "%s", e.msg);
    CHECK(n == 4, "n = %d", n);
    if (n != 4) return;
    /* precision varies just outside the seed: each precision's seeds side by side */
    const char *ids[] = {"pre-dt1-L2-lr0.003-s1", "pre-dt1-L2-lr0.003-s2", "pre-dt1-L2-lr0.003-s1-bf16",
                         "pre-dt1-L2-lr0.003-s2-bf16"};
    for (int i = 0; i < 4; i++) CHECK(!strcmp(runs[i].id, ids[i]), "run %d: %s, want %s", i, runs[i].id, ids[i]);
    CHECK(!strcmp(runs[0].precision, "fp32") && !strcmp(runs[2].precision, "bf16"), "precisions %s %s",
          runs[0].precision, runs[2].precision);
    /* the settings a run is recorded and resumed under: an fp32 run's are the study's as before */
    char *study = lnl_study_settings_json(&c), *s32 = lnl_study_run_settings_json(&c, &runs[0]),
         *s16 = lnl_study_run_settings_json(&c, &runs[2]);
    CHECK(!strcmp(s32, study) && strstr(s32, "\"precision\":\"fp32\","), "fp32 run's settings: %s", s32);
    CHECK(strcmp(s16, s32) && strstr(s16, "\"precision\":\"bf16\","), "bf16 run's settings: %s", s16);
    cJSON_free(study);
    cJSON_free(s32);
    cJSON_free(s16);
    /* seeds of one precision share a setting; the two precisions never do */
    CHECK(lnl_study_same_setting(&runs[0], &runs[1]) && lnl_study_same_setting(&runs[2], &runs[3]), "seeds");
    CHECK(!lnl_study_same_setting(&runs[0], &runs[2]) && !lnl_study_same_setting(&runs[3], &runs[1]), "precisions apart");
    char tag[LNL_STUDY_ID_MAX];
    lnl_study_setting_tag(&runs[0], tag, sizeof tag);
    CHECK(!strcmp(tag, ""), "fp32 tag '%s'", tag);
    lnl_study_setting_tag(&runs[2], tag, sizeof tag);
    CHECK(!strcmp(tag, "bf16"), "bf16 tag '%s'", tag);
    CHECK(argv_precision(&c, &runs[0], NULL) && argv_precision(&c, &runs[3], "bf16"), "train --precision");
    free(runs);
    /* printed and read back */
    char *s1 = lnl_study_config_to_json(&c);
    LnlStudyConfig d;
    CHECK(parse(&d, s1, &e) == 0, "%s", e.msg);
    char *s2 = lnl_study_config_to_json(&d);
    CHECK(!strcmp(s1, s2) && strstr(s1, "\"precisions\": [\"fp32\", \"bf16\"]"), "round trip: %s", s1);
    free(s1);
    free(s2);
    lnl_study_config_free(&d);
    /* the flag replaces the axis in every grid */
    const char *one[] = {"bf16"};
    CHECK(lnl_study_axis_set_all(&c, LNL_AX_PRECISION, one, 1, "--precisions", &e) == 0, "%s", e.msg);
    CHECK(lnl_study_expand(&c, &runs, &n, &e) == 0 && n == 2 && !strcmp(runs[1].id, ids[3]), "--precisions bf16: %d", n);
    free(runs);
    CHECK(lnl_study_axis_set_all(&c, LNL_AX_PRECISION, (const char *[]){"fp64"}, 1, "--precisions", &e) != 0 &&
              strstr(e.msg, "--precisions: 'fp64' is not a precision (fp32|bf16)"),
          "bad flag value: %s", e.msg);
    lnl_study_config_free(&c);
}

/* The shared field `precision` is the axis's default: a grid without precisions runs at it (an
 * existing config with "precision": "bf16" keeps working), top-level precisions come before it,
 * a grid's own before those; studies without precision keep their runs and command lines. */
static void test_precision_default(void) {
    LnlStudyConfig c;
    LnlErr e;
    const char *j = "{\"precision\": \"bf16\", \"grids\": [{\"name\": \"a\", \"presets\": [\"pre\"]},"
                    " {\"name\": \"b\", \"presets\": [\"peri\"], \"precisions\": [\"fp32\"]}]}";
    CHECK(parse(&c, j, &e) == 0, "%s", e.msg);
    LnlStudyRun *runs;
    int n;
    CHECK(lnl_study_expand(&c, &runs, &n, &e) == 0 && n == 2, "%s", e.msg);
    CHECK(n == 2 && !strcmp(runs[0].id, "pre-dt1-L4-lr0.003-s1-bf16") && !strcmp(runs[1].id, "peri-dt1-L4-lr0.003-s1"),
          "ids %s %s", runs[0].id, n > 1 ? runs[1].id : "");
    CHECK(argv_precision(&c, &runs[0], "bf16") && argv_precision(&c, &runs[1], NULL), "train --precision");
    char *study = lnl_study_settings_json(&c), *s0 = lnl_study_run_settings_json(&c, &runs[0]),
         *s1 = lnl_study_run_settings_json(&c, &runs[1]);
    CHECK(!strcmp(s0, study) && strstr(s1, "\"precision\":\"fp32\""), "settings %s / %s", s0, s1);
    cJSON_free(study);
    cJSON_free(s0);
    cJSON_free(s1);
    free(runs);
    char *printed = lnl_study_config_to_json(&c);
    CHECK(strstr(printed, "\"precision\": \"bf16\"") && strstr(printed, "\"precisions\": [\"fp32\"]") &&
              strstr(printed, "\"precisions\"") > strstr(printed, "\"name\": \"b\""),
          "only grid b prints precisions: %s", printed);
    free(printed);
    lnl_study_config_free(&c);
    CHECK(parse(&c, "{\"precisions\": [\"bf16\"], \"grids\": [{\"presets\": [\"pre\"]}]}", &e) == 0, "%s", e.msg);
    CHECK(lnl_study_expand(&c, &runs, &n, &e) == 0 && n == 1 && !strcmp(runs[0].precision, "bf16"), "top-level precisions");
    free(runs);
    lnl_study_config_free(&c);
    /* the default study: fp32, its grids print no precisions, no run passes --precision */
    CHECK(lnl_study_config_builtin(&c, "default", &e) == 0, "%s", e.msg);
    CHECK(lnl_study_expand(&c, &runs, &n, &e) == 0, "%s", e.msg);
    int plain = 1;
    for (int i = 0; i < n; i++) plain &= !strcmp(runs[i].precision, "fp32") && argv_precision(&c, &runs[i], NULL) &&
                                         !strstr(runs[i].id, "fp32");
    CHECK(plain, "default study's runs are fp32 without a flag");
    free(runs);
    printed = lnl_study_config_to_json(&c);
    CHECK(!strstr(printed, "\"precisions\""), "no precisions printed");
    free(printed);
    lnl_study_config_free(&c);
}

/* Resume: a record is reused only for a run of its precision. A record made as bf16 under the id
 * an fp32 run now has (a study of "precision": "bf16" before the axis existed) is refused, naming
 * precision; records of the run's own precision pass. */
static void test_precision_resume(void) {
    LnlStudyConfig c;
    LnlErr e;
    CHECK(parse(&c, "{\"presets\": [\"pre\"], \"precisions\": [\"fp32\", \"bf16\"]}", &e) == 0, "%s", e.msg);
    LnlStudyRun *runs;
    int n;
    CHECK(lnl_study_expand(&c, &runs, &n, &e) == 0 && n == 2, "%s", e.msg);
    if (n != 2) return;
    char *s32 = lnl_study_run_settings_json(&c, &runs[0]), *s16 = lnl_study_run_settings_json(&c, &runs[1]);
    LnlStudyResults res = {0};
    LnlBuf line = {0};
    lnl_buf_printf(&line, "{\"id\": \"%s\", \"settings\": %s}", runs[0].id, s32);
    lnl_study_results_put(&res, runs[0].id, line.data);
    line.len = 0;
    lnl_buf_printf(&line, "{\"id\": \"%s\", \"settings\": %s}", runs[1].id, s16);
    lnl_study_results_put(&res, runs[1].id, line.data);
    CHECK(lnl_study_plan_check_settings("out", &c, runs, n, &res, &e) == 0, "own precisions refused: %s", e.msg);
    line.len = 0; /* the fp32 run's id, made as bf16 */
    lnl_buf_printf(&line, "{\"id\": \"%s\", \"settings\": %s}", runs[0].id, s16);
    lnl_study_results_put(&res, runs[0].id, line.data);
    CHECK(lnl_study_plan_check_settings("out", &c, runs, n, &res, &e) != 0 &&
              strstr(e.msg, "was made with precision \"bf16\", this study asks for precision \"fp32\""),
          "bf16 record for an fp32 run: %s", e.msg);
    lnl_buf_free(&line);
    lnl_study_results_free(&res);
    cJSON_free(s32);
    cJSON_free(s16);
    free(runs);
    lnl_study_config_free(&c);
}

/* bf16 on a machine without AVX512-BF16 is refused before any run, naming the field it came from. */
static void test_precision_host(void) {
    static const struct {
        const char *json, *want; /* want NULL: accepted */
    } cases[] = {
        {"{\"precision\": \"bf16\"}", "t.json: field 'precision': bf16 needs AVX512-BF16"},
        {"{\"grids\": [{\"name\": \"g\", \"precisions\": [\"fp32\", \"bf16\"]}]}",
         "t.json: field 'precisions' (grid 'g'): bf16 needs AVX512-BF16"},
        {"{\"precision\": \"bf16\", \"precisions\": [\"fp32\"]}", NULL},
        {"{}", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        LnlStudyConfig c;
        LnlErr e = {{0}};
        CHECK(parse(&c, cases[i].json, &e) == 0, "%s", e.msg);
        CHECK(lnl_study_config_check_host(&c, 1, "t.json", &e) == 0, "refused with bf16: %s", e.msg);
        int r = lnl_study_config_check_host(&c, 0, "t.json", &e);
        if (cases[i].want)
            CHECK(r != 0 && strstr(e.msg, cases[i].want) && !strchr(e.msg, '\n'), "%s: got '%s'", cases[i].json,
                  r ? e.msg : "accepted");
        else CHECK(r == 0, "%s refused: %s", cases[i].json, e.msg);
        lnl_study_config_free(&c);
    }
}

static void test_median(void) {
    double v[] = {3, NAN, 1, 2, INFINITY};
    CHECK(lnl_study_median(v, 5) == 2, "median of 3 finite values");
    double w[] = {4, 1, 3, 2};
    CHECK(lnl_study_median(w, 4) == 2.5, "even count");
    double z[] = {NAN};
    CHECK(isnan(lnl_study_median(z, 1)), "no finite value");
}

static void test_record_roundtrip(void) {
    LnlStudyResult r;
    memset(&r, 0, sizeof r);
    snprintf(r.run.id, sizeof r.run.id, "pre-dt1-L3-lr0.003-s1");
    snprintf(r.run.preset, sizeof r.run.preset, "pre");
    snprintf(r.grid, sizeof r.grid, "g");
    r.run.dt = 1;
    r.run.lr = 0.003;
    r.run.depth = 3;
    r.run.seed = 1;
    r.final_val_loss = 2.5;
    r.final_train_loss = NAN;
    r.diverged_at_step = -1;
    r.max_rise = 0.25;
    r.max_rise_step = 17;
    r.tokens_per_s = 1000;
    r.wall_s = 1.5;
    r.nlayers = 4;
    LnlStudyLayer layers[4] = {{0.1, 0.01, 0.01, 0, NAN, 1}, {1, 1, 1, 0.5, 2, 1}, {2, 4, 1, 0.25, 3, 1},
                               {4, 16, 1, 2, 4, 1}};
    r.layers = layers;
    char *line = lnl_study_result_to_json(&r, "{\"steps\":20}", NULL);
    LnlStudyResult b;
    LnlErr e;
    CHECK(lnl_study_result_from_json(&b, line, "line", &e) == 0, "%s", e.msg);
    CHECK(!strcmp(b.run.id, r.run.id) && b.final_val_loss == 2.5 && isnan(b.final_train_loss) && b.nlayers == 4,
          "fields back");
    CHECK(b.last_hidden == 4, "last layer's hidden_mean_abs: %g", b.last_hidden);
    CHECK(b.grad_ratio == 0.25, "grad ratio layer 1 / layer L = 0.5 / 2: %g", b.grad_ratio);
    CHECK(b.median_sensitivity == 3, "median over layers 1..L: %g", b.median_sensitivity);
    CHECK(b.max_rise == 0.25 && b.max_rise_step == 17, "loss rise");
    CHECK(b.growth.magnitude.linear.ok && b.growth.magnitude.exponential.ok, "fits over 4 entries");
    CHECK(strstr(line, "\"settings\":{\"steps\":20}") != NULL, "settings embedded: %s", line);
    CHECK(strstr(line, "\"diverged_at_step\":null") != NULL, "null when not diverged");
    CHECK(strstr(line, "\"precision\":\"fp32\"") && !strcmp(b.run.precision, "fp32"), "fp32 when the run has none");
    lnl_study_result_free(&b);
    cJSON_free(line);
    /* a bf16 run's record says so; a record without "precision" takes its settings', else fp32 */
    snprintf(r.run.precision, sizeof r.run.precision, "bf16");
    line = lnl_study_result_to_json(&r, "{\"precision\":\"bf16\"}", NULL);
    CHECK(lnl_study_result_from_json(&b, line, "line", &e) == 0 && !strcmp(b.run.precision, "bf16"), "bf16 back");
    lnl_study_result_free(&b);
    cJSON_free(line);
    CHECK(lnl_study_result_from_json(&b, "{\"id\": \"x\", \"preset\": \"pre\", \"dt\": 1, \"depth\": 2, \"lr\": 0.1,"
                                         " \"settings\": {\"precision\": \"bf16\"}}", "old", &e) == 0 &&
              !strcmp(b.run.precision, "bf16"), "from the settings");
    lnl_study_result_free(&b);
    CHECK(lnl_study_result_from_json(&b, "{\"id\": \"x\", \"preset\": \"pre\", \"dt\": 1, \"depth\": 2, \"lr\": 0.1}",
                                     "older", &e) == 0 && !strcmp(b.run.precision, "fp32"), "older records: fp32");
    lnl_study_result_free(&b);
}

int main(void) {
    RUN_TEST(test_builtin_default_expands);
    RUN_TEST(test_paper_sizes);
    RUN_TEST(test_top_level_axes_and_dedupe);
    RUN_TEST(test_config_errors);
    RUN_TEST(test_config_json_roundtrip);
    RUN_TEST(test_options);
    RUN_TEST(test_option_errors);
    RUN_TEST(test_precision_axis);
    RUN_TEST(test_precision_default);
    RUN_TEST(test_precision_resume);
    RUN_TEST(test_precision_host);
    RUN_TEST(test_median);
    RUN_TEST(test_record_roundtrip);
    TEST_MAIN_END();
}
