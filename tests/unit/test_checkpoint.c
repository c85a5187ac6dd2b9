/* Checkpoint integrity and the pieces of resume: CRC-32, per-tensor checksums in safetensors
 * (verified on open, files without them still load), the training state file, checkpoint
 * listing/pruning/fallback, the log cut, the injected full disk, and the memory estimate. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32.h"
#include "harness.h"
#include "io/safetensors.h"
#include "train/checkpoint.h"
#include "train/memcheck.h"

static char dir[256];

static const char *tmp(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void test_crc32(void) {
    CHECK(lnl_crc32(0, "123456789", 9) == 0xCBF43926u, "check value %08x", lnl_crc32(0, "123456789", 9));
    CHECK(lnl_crc32(0, "", 0) == 0, "empty");
    unsigned char b[1000];
    for (int i = 0; i < 1000; i++) b[i] = (unsigned char)(i * 7 + 3);
    uint32_t whole = lnl_crc32(0, b, 1000);
    for (size_t cut = 0; cut <= 1000; cut += 37)
        CHECK(lnl_crc32(lnl_crc32(0, b, cut), b + cut, 1000 - cut) == whole, "continued at %zu", cut);
    CHECK(lnl_crc32(0, b + 1, 999) != lnl_crc32(0, b, 999), "offset changes it");
}

/* Writes a two-tensor file with checksums and returns the data section's offset. */
static uint64_t write_two(const char *path, int checksums) {
    float a[3] = {1, 2, 3};
    int32_t c[2] = {7, -7};
    int64_t s3 = 3, s2 = 2;
    LnlStWriter w;
    lnl_stw_init(&w);
    w.no_checksums = !checksums;
    lnl_stw_add(&w, "a", LNL_ST_F32, 1, &s3, a, 0);
    lnl_stw_add(&w, "c", LNL_ST_I32, 1, &s2, c, 0);
    if (checksums) lnl_stw_meta(&w, LNL_ST_CRC_KEY, "replaced by the writer");
    LnlErr e = {""};
    CHECK(lnl_stw_write(&w, path, &e) == 0, "%s", e.msg);
    lnl_stw_free(&w);
    char *buf;
    size_t n;
    if (lnl_read_file(path, &buf, &n, &e)) return 0;
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = (h << 8) | (uint8_t)buf[i];
    free(buf);
    return 8 + h;
}

static void flip_byte(const char *path, uint64_t off) {
    FILE *f = fopen(path, "r+b");
    fseek(f, (long)off, SEEK_SET);
    int c = fgetc(f);
    fseek(f, (long)off, SEEK_SET);
    fputc(c ^ 1, f);
    fclose(f);
}

static void test_checksums(void) {
    const char *p = tmp("crc.safetensors");
    uint64_t data = write_two(p, 1);
    LnlSafetensors st;
    LnlErr e = {""};
    CHECK(lnl_st_open(&st, p, &e) == 0, "clean file: %s", e.msg);
    if (!e.msg[0]) {
        const char *v = lnl_st_meta(&st, LNL_ST_CRC_KEY);
        CHECK(v && strstr(v, "\"a\":\"") && strstr(v, "\"c\":\""), "checksums listed: %s", v ? v : "(none)");
        lnl_st_close(&st);
    }
    for (uint64_t off = data; off < data + 20; off += 5) {
        flip_byte(p, off);
        e.msg[0] = 0;
        int r = lnl_st_open(&st, p, &e);
        CHECK(r != 0 && strstr(e.msg, "checksum mismatch") && strstr(e.msg, "corrupt"), "flipped byte %llu: %s",
              (unsigned long long)off, e.msg);
        if (r == 0) lnl_st_close(&st);
        flip_byte(p, off);
    }
    /* without checksums (files from elsewhere) a flipped byte goes unnoticed, as before */
    const char *q = tmp("nocrc.safetensors");
    data = write_two(q, 0);
    flip_byte(q, data + 1);
    e.msg[0] = 0;
    CHECK(lnl_st_open(&st, q, &e) == 0, "file without checksums: %s", e.msg);
    if (!e.msg[0]) {
        CHECK(lnl_st_meta(&st, LNL_ST_CRC_KEY) == NULL, "no checksum key");
        lnl_st_close(&st);
    }
}

/* A file with a hand-written checksum entry. */
static void expect_crc_error(const char *name, const char *crcs, const char *want) {
    char hdr[512];
    snprintf(hdr, sizeof hdr,
             "{\"__metadata__\":{\"lnlab.crc32\":\"%s\"},\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}",
             crcs);
    size_t n = strlen(hdr);
    const char *p = tmp(name);
    FILE *f = fopen(p, "wb");
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)n >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(hdr, 1, n, f);
    fwrite("xy", 1, 2, f);
    fclose(f);
    LnlSafetensors st;
    LnlErr e = {""};
    int r = lnl_st_open(&st, p, &e);
    if (!want) {
        CHECK(r == 0, "%s: %s", name, e.msg);
    } else {
        CHECK(r != 0 && strstr(e.msg, want), "%s: expected '%s', got '%s'", name, want, e.msg);
    }
    if (r == 0) lnl_st_close(&st);
}

static void test_checksum_entries(void) {
    char ok[64];
    snprintf(ok, sizeof ok, "{\\\"a\\\":\\\"%08x\\\"}", lnl_crc32(0, "xy", 2));
    expect_crc_error("crc_ok", ok, NULL);
    expect_crc_error("crc_not_object", "[1]", "not a JSON object of checksums");
    expect_crc_error("crc_unknown", "{\\\"b\\\":\\\"00000000\\\"}", "lists 'b', which is not a tensor");
    expect_crc_error("crc_missing", "{}", "tensor 'a' has no checksum");
    expect_crc_error("crc_bad_hex", "{\\\"a\\\":\\\"xyz\\\"}", "is not 8 hex digits");
    expect_crc_error("crc_number", "{\\\"a\\\":5}", "is not 8 hex digits");
    expect_crc_error("crc_wrong", "{\\\"a\\\":\\\"00000000\\\"}", "checksum mismatch");
}

/* A small model, its optimizer state and a loader over a shard of 400 tokens. */
typedef struct {
    LnlModel m;
    LnlOptState opt;
    LnlLoader train;
    LnlRng rng;
    double ms[10], extra[3];
    LnlStateRefs refs;
} Fixture;

static int fixture(Fixture *f, const char *shard) {
    memset(f, 0, sizeof *f);
    LnlConfig *c = malloc(sizeof *c);
    LnlErr e = {""};
    lnl_config_default(c);
    c->n_layer = 1;
    c->n_head = 1;
    c->n_embd = 4;
    c->n_positions = 4;
    c->vocab_size = 8;
    int r = lnl_config_preset(c, "peri", &e) || lnl_model_create(&f->m, c, &e);
    free(c);
    CHECK(r == 0, "model: %s", e.msg);
    if (r) return -1;
    lnl_model_init_weights(&f->m, 1);
    lnl_opt_init(&f->opt, &f->m);
    int32_t toks[400];
    for (int i = 0; i < 400; i++) toks[i] = (i * 3) % 8;
    if (lnl_shard_write(shard, toks, 400, &e) || lnl_loader_open(&f->train, shard, NULL, 2, 4, 8, &e)) {
        CHECK(0, "data: %s", e.msg);
        return -1;
    }
    lnl_rng_seed(&f->rng, 5);
    f->refs = (LnlStateRefs){.opt = &f->opt, .train = &f->train, .rng = &f->rng, .step_ms = f->ms, .max_steps = 10,
                             .B = 2, .T = 4, .grad_accum = 1};
    lnl_state_extra(&f->refs, "stats", f->extra, 3);
    return 0;
}

static void fixture_free(Fixture *f) {
    lnl_opt_free(&f->opt);
    lnl_loader_free(&f->train);
    lnl_model_free(&f->m);
}

static void test_state_roundtrip(void) {
    Fixture a, b;
    if (fixture(&a, tmp("s1.bin")) || fixture(&b, tmp("s1.bin"))) return;
    for (size_t i = 0; i < a.opt.n; i++) {
        a.opt.m[i] = (float)i * 0.5f;
        a.opt.v[i] = (float)i * 0.25f;
    }
    a.opt.step = 6;
    a.refs.step = 6;
    for (int i = 0; i < 6; i++) a.ms[i] = 10.0 + i;
    a.extra[0] = 1.5, a.extra[1] = -2, a.extra[2] = 1e300;
    int32_t in[8], tg[8];
    for (int i = 0; i < 6; i++) lnl_loader_next(&a.train, in, tg);
    (void)lnl_rng_u64(&a.rng);
    const char *p = tmp("state.safetensors");
    LnlErr e = {""};
    CHECK(lnl_state_write(p, &a.refs, &e) == 0, "write: %s", e.msg);
    LnlTrainState st;
    CHECK(lnl_state_read(p, &st, &e) == 0, "read: %s", e.msg);
    if (e.msg[0]) return;
    CHECK(st.step == 6 && st.adam_step == 6 && st.n == a.opt.n && st.B == 2 && st.T == 4 && st.grad_accum == 1,
          "scalars");
    CHECK(lnl_state_apply(&st, &b.refs, &e) == 0, "apply: %s", e.msg);
    CHECK(memcmp(a.opt.m, b.opt.m, a.opt.n * 4) == 0 && memcmp(a.opt.v, b.opt.v, a.opt.n * 4) == 0 && b.opt.step == 6,
          "moments");
    CHECK(b.train.pos == a.train.pos && memcmp(&a.rng, &b.rng, sizeof a.rng) == 0, "data position and rng");
    CHECK(memcmp(a.ms, b.ms, 6 * sizeof(double)) == 0 && memcmp(a.extra, b.extra, sizeof a.extra) == 0, "ms, extra");
    /* what must match the run */
    b.refs.B = 3;
    CHECK(lnl_state_apply(&st, &b.refs, &e) != 0 && strstr(e.msg, "saved with B 2"), "batch shape: %s", e.msg);
    b.refs.B = 2;
    b.refs.extra[0].n = 4;
    CHECK(lnl_state_apply(&st, &b.refs, &e) != 0 && strstr(e.msg, "'stats' has 3 values, expected 4"), "extra size: %s",
          e.msg);
    b.refs.extra[0].name = "other";
    CHECK(lnl_state_apply(&st, &b.refs, &e) != 0 && strstr(e.msg, "'other' is missing"), "extra name: %s", e.msg);
    b.refs.extra[0] = a.refs.extra[0];
    b.refs.max_steps = 5;
    CHECK(lnl_state_apply(&st, &b.refs, &e) != 0 && strstr(e.msg, "past the run's 5 steps"), "steps: %s", e.msg);
    lnl_state_free(&st);
    /* the run id and the data's checksum: written, read back, and checked on apply */
    b.refs.max_steps = 10;
    a.refs.run_id = "0123456789abcdef";
    a.refs.data_crc = 0xdeadbeefu;
    CHECK(lnl_state_write(p, &a.refs, &e) == 0 && lnl_state_read(p, &st, &e) == 0, "id: %s", e.msg);
    CHECK(strcmp(st.run_id, "0123456789abcdef") == 0 && st.have_data_crc && st.data_crc == 0xdeadbeefu, "id read back");
    b.refs.run_id = "0123456789abcdef";
    b.refs.data_crc = 0xdeadbeefu;
    CHECK(lnl_state_apply(&st, &b.refs, &e) == 0, "same id and data: %s", e.msg);
    b.refs.data_crc = 0xdeadbeeeu;
    CHECK(lnl_state_apply(&st, &b.refs, &e) != 0 && strstr(e.msg, "content changed") && strstr(e.msg, "deadbeef then"),
          "data crc: %s", e.msg);
    b.refs.data_crc = 0xdeadbeefu;
    b.refs.run_id = "fedcba9876543210";
    CHECK(lnl_state_apply(&st, &b.refs, &e) != 0 &&
              strstr(e.msg, "belongs to run 0123456789abcdef, this run is fedcba9876543210"),
          "run id: %s", e.msg);
    b.refs.run_id = NULL;
    CHECK(lnl_state_apply(&st, &b.refs, &e) != 0 && strstr(e.msg, "another run"), "no run id: %s", e.msg);
    lnl_state_free(&st);
    /* a model file is not a state file; a newer version is refused */
    const char *mp = tmp("model.safetensors");
    CHECK(lnl_model_save_safetensors(&a.m, mp, NULL, NULL, &e) == 0, "%s", e.msg);
    CHECK(lnl_state_read(mp, &st, &e) != 0 && strstr(e.msg, "not a training state file"), "model as state: %s", e.msg);
    LnlSafetensors sf;
    CHECK(lnl_st_open(&sf, p, &e) == 0, "%s", e.msg);
    LnlStWriter w;
    lnl_stw_init(&w);
    for (int i = 0; i < sf.n; i++) {
        const LnlStTensor *t = &sf.tensors[i];
        lnl_stw_add(&w, t->name, t->dtype, t->ndim, t->shape, lnl_st_data(&sf, t), 0);
    }
    lnl_stw_meta(&w, "format", LNL_STATE_FORMAT);
    char newer[16];
    snprintf(newer, sizeof newer, "%d", LNL_STATE_VERSION + 1);
    lnl_stw_meta(&w, "version", newer);
    const char *p2 = tmp("state_newer.safetensors");
    CHECK(lnl_stw_write(&w, p2, &e) == 0, "%s", e.msg);
    lnl_stw_free(&w);
    lnl_st_close(&sf);
    char want[64];
    snprintf(want, sizeof want, "version %d is newer", LNL_STATE_VERSION + 1);
    CHECK(lnl_state_read(p2, &st, &e) != 0 && strstr(e.msg, want), "version: %s", e.msg);
    fixture_free(&a);
    fixture_free(&b);
}

static void test_checkpoints_dir(void) {
    Fixture a;
    if (fixture(&a, tmp("s2.bin"))) return;
    const char *run = tmp("run");
    LnlErr e = {""};
    for (long s = 1; s <= 5; s++) {
        a.refs.step = s;
        CHECK(lnl_ckpt_save(run, &a.m, &a.refs, NULL, 3, &e) == 0, "save %ld: %s", s, e.msg);
    }
    long *steps;
    int n;
    CHECK(lnl_ckpt_list(run, &steps, &n, &e) == 0 && n == 3 && steps[0] == 5 && steps[2] == 3, "kept 3, newest first");
    free(steps);
    char *s3 = lnl_ckpt_path(run, "state", 3), *m4 = lnl_ckpt_path(run, "model", 4), *m5 = lnl_ckpt_path(run, "model", 5);
    CHECK(access(s3, F_OK) == 0, "state 3 kept");
    /* newest corrupt, next incomplete: load falls back to 3 */
    char *s4 = lnl_ckpt_path(run, "state", 4);
    unlink(s4);
    FILE *f = fopen(m5, "r+b");
    fseek(f, -3, SEEK_END);
    fputc('!', f);
    fclose(f);
    LnlModel m;
    LnlTrainState st;
    FILE *msgs = tmpfile();
    CHECK(lnl_ckpt_load_latest(run, &m, NULL, NULL, &st, msgs, &e) == 0, "fallback: %s", e.msg);
    if (!e.msg[0]) {
        CHECK(st.step == 3, "loaded step %ld, expected 3", st.step);
        lnl_state_free(&st);
        lnl_model_free(&m);
    }
    char text[1024] = "";
    rewind(msgs);
    size_t got = fread(text, 1, sizeof text - 1, msgs);
    text[got] = 0;
    fclose(msgs);
    CHECK(strstr(text, "step 5 is unusable") && strstr(text, "checksum mismatch") && strstr(text, "step 4 is unusable") &&
              strstr(text, "not finished"),
          "messages: %s", text);
    free(s3);
    free(s4);
    free(m4);
    free(m5);
    fixture_free(&a);
}

/* Writes text to RUN/log.jsonl and resumes it after `step`: the return code, with the file and
 * the notes left in *file and *notes (caller frees). */
static int resume_log(const char *text, long step, char **file, char **notes, LnlErr *e) {
    const char *p = tmp("log.jsonl");
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    FILE *msgs = tmpfile();
    LnlRunLog l;
    int r = lnl_runlog_resume(&l, p, step, msgs, e);
    if (r == 0) {
        fputs("{\"step\": 3, \"loss\": 9}\n", lnl_runlog_records(&l));
        LnlErr fe;
        CHECK(lnl_runlog_sync(&l, &fe) == 0, "%s", fe.msg);
        lnl_runlog_close(&l);
    }
    long n = ftell(msgs);
    *notes = calloc(1, (size_t)n + 1);
    rewind(msgs);
    CHECK(fread(*notes, 1, (size_t)n, msgs) == (size_t)n, "notes");
    fclose(msgs);
    LnlErr re;
    CHECK(lnl_read_file(p, file, NULL, &re) == 0, "%s", re.msg);
    return r;
}

static void test_log_resume(void) {
    char *text, *notes;
    LnlErr e = {""};
    const char *good = "{\"step\": 0, \"val_loss\": 5}\n{\"step\": 1, \"loss\": 4}\n{\"step\": 2, \"loss\": 3}\n"
                       "{\"step\": 2, \"diag\": {}}\n";
    /* records past the checkpoint's step are dropped and counted, a torn last line removed */
    char in[512];
    snprintf(in, sizeof in, "%s{\"step\": 3, \"loss\": 2}\n{\"step\": 3, \"val_loss\": 2}\n{\"step\": 4, \"lo", good);
    CHECK(resume_log(in, 2, &text, &notes, &e) == 0, "%s", e.msg);
    char want[512];
    snprintf(want, sizeof want, "%s{\"step\": 3, \"loss\": 9}\n", good);
    CHECK(strcmp(text, want) == 0, "log: %s", text);
    CHECK(strstr(notes, "dropped 2 records past step 2") && strstr(notes, "removed line 7, a last line cut short"),
          "notes: %s", notes);
    free(text);
    free(notes);
    /* nothing to drop: no note */
    CHECK(resume_log(good, 2, &text, &notes, &e) == 0 && notes[0] == 0, "%s / %s", e.msg, notes);
    free(text);
    free(notes);
    /* a damaged line before the end is an error naming it, and the file is left as it was */
    const char *junk = "{\"step\": 1, \"loss\": 4}\nnot json\n{\"step\": 2, \"loss\": 3}\n";
    CHECK(resume_log(junk, 2, &text, &notes, &e) != 0 && strstr(e.msg, "line 2 is not a JSON record ('not json')"),
          "junk: %s", e.msg);
    CHECK(strcmp(text, junk) == 0, "the damaged log was changed: %s", text);
    free(text);
    free(notes);
    /* the checkpoint's own training record must be there */
    CHECK(resume_log("{\"step\": 1, \"loss\": 4}\n", 2, &text, &notes, &e) != 0 &&
              strstr(e.msg, "has no training record of step 2"),
          "missing: %s", e.msg);
    free(text);
    free(notes);
    /* a torn last line where the checkpoint's records should be is not a repair */
    CHECK(resume_log("{\"step\": 1, \"loss\": 4}\n{\"step\": 2, \"lo", 2, &text, &notes, &e) != 0 &&
              strstr(e.msg, "records are missing"),
          "torn early: %s", e.msg);
    free(text);
    free(notes);
    /* records out of order (two runs in one log) */
    CHECK(resume_log("{\"step\": 1, \"loss\": 4}\n{\"step\": 2, \"loss\": 3}\n{\"step\": 3, \"loss\": 3}\n"
                     "{\"step\": 1, \"loss\": 4}\n",
                     2, &text, &notes, &e) != 0 &&
              strstr(e.msg, "line 4 (step 1) comes after a record of a later step"),
          "mixed: %s", e.msg);
    free(text);
    free(notes);
    /* a missing log */
    LnlRunLog l;
    CHECK(lnl_runlog_resume(&l, tmp("no-such-log.jsonl"), 2, NULL, &e) != 0 && strstr(e.msg, "missing"), "%s", e.msg);
}

/* A write that fails half-way leaves only whole records, the records stay pending, and a later
 * flush (the disk freed) writes them. */
static void test_log_write_failure(void) {
    const char *p = tmp("full.jsonl");
    setenv(LNL_FAULT_LOG_ENV, "30:1", 1);
    LnlRunLog l;
    LnlErr e = {""};
    CHECK(lnl_runlog_create(&l, p, &e) == 0, "%s", e.msg);
    unsetenv(LNL_FAULT_LOG_ENV);
    fputs("{\"step\": 1, \"loss\": 4}\n", lnl_runlog_records(&l)); /* 24 bytes */
    CHECK(lnl_runlog_flush(&l, &e) == 0, "%s", e.msg);
    fputs("{\"step\": 2, \"loss\": 3}\n", lnl_runlog_records(&l));
    CHECK(lnl_runlog_flush(&l, &e) != 0 && strstr(e.msg, "full.jsonl: write failed: No space left on device"), "%s",
          e.msg);
    char *text;
    CHECK(lnl_read_file(p, &text, NULL, &e) == 0 && strcmp(text, "{\"step\": 1, \"loss\": 4}\n") == 0,
          "after the failure: %s", text);
    free(text);
    CHECK(lnl_runlog_sync(&l, &e) == 0, "retry: %s", e.msg);
    CHECK(lnl_read_file(p, &text, NULL, &e) == 0 &&
              strcmp(text, "{\"step\": 1, \"loss\": 4}\n{\"step\": 2, \"loss\": 3}\n") == 0,
          "after the retry: %s", text);
    free(text);
    lnl_runlog_close(&l);
}

static void test_fault_injection(void) {
    const char *p = tmp("fault.txt");
    LnlErr e = {""};
    CHECK(lnl_write_file_atomic(p, "before", 6, &e) == 0, "%s", e.msg);
    setenv(LNL_FAULT_ENV, "100", 1);
    char big[80];
    memset(big, 'x', sizeof big);
    CHECK(lnl_write_file_atomic(tmp("fault_ok.txt"), big, 60, &e) == 0, "60 of 100 bytes: %s", e.msg);
    int r = lnl_write_file_atomic(p, big, 60, &e);
    unsetenv(LNL_FAULT_ENV);
    CHECK(r != 0 && strstr(e.msg, "No space left on device"), "120 of 100 bytes: %s", e.msg);
    char *text;
    CHECK(lnl_read_file(p, &text, NULL, &e) == 0 && strcmp(text, "before") == 0, "previous file intact");
    free(text);
    char tmpname[600];
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", p, (long)getpid());
    CHECK(access(tmpname, F_OK) != 0, "temporary file removed");
}

static void test_memory_estimate(void) {
    LnlConfig *c = malloc(sizeof *c);
    LnlErr e = {""};
    lnl_config_default(c);
    c->n_layer = 3;
    c->n_head = 2;
    c->n_embd = 16;
    c->n_positions = 8;
    c->vocab_size = 50;
    const char *presets[] = {"pre", "peri", "mix", "hybrid", "admin", "branchnorm"};
    for (int i = 0; i < 6; i++) {
        if (lnl_config_preset(c, presets[i], &e)) {
            CHECK(0, "%s", e.msg);
            continue;
        }
        LnlModelMemory mm;
        LnlModel m;
        CHECK(lnl_model_memory(c, 3, 8, &mm, &e) == 0, "%s", e.msg);
        CHECK(lnl_model_create(&m, c, &e) == 0 && lnl_model_alloc_acts(&m, 3, 8, &e) == 0, "%s", e.msg);
        CHECK(mm.num_alloc == m.num_alloc && mm.num_params == m.num_params && mm.params == 4 * m.num_alloc,
              "%s: parameters", presets[i]);
        CHECK(mm.acts >= 4 * m.acts_floats && mm.acts < 4 * m.acts_floats + 4096, "%s: activations %llu vs %zu floats",
              presets[i], (unsigned long long)mm.acts, m.acts_floats);
        lnl_model_free(&m);
    }
    setenv(LNL_MEM_ENV, "1000", 1);
    int r = lnl_mem_check(c, 3, 8, &e);
    CHECK(r != 0 && strstr(e.msg, "not enough memory") && strstr(e.msg, "AdamW moments") &&
              strstr(e.msg, "(" LNL_MEM_ENV ")"),
          "%s", e.msg);
    setenv(LNL_MEM_ENV, "off", 1);
    CHECK(lnl_mem_check(c, 3, 8, &e) == 0, "off");
    unsetenv(LNL_MEM_ENV);
    int known;
    char src[200];
    uint64_t avail = lnl_mem_available(&known, src, sizeof src);
    CHECK(known && avail > 0, "available memory from %s", src);
    LnlModelMemory huge;
    c->n_positions = 1 << 24;
    CHECK(lnl_model_memory(c, 1 << 20, 1 << 24, &huge, &e) != 0 && strstr(e.msg, "tokens per batch, more than"),
          "B x T guard: %s", e.msg);
    c->n_layer = 1024;
    c->n_embd = 1 << 16;
    c->n_head = 1;
    c->vocab_size = 1 << 24;
    CHECK(lnl_config_preset(c, "pre", &e) == 0, "%s", e.msg);
    CHECK(lnl_model_memory(c, 1, 1 << 24, &huge, &e) != 0 && strstr(e.msg, "far too large"), "overflow guard: %s",
          e.msg);
    free(c);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/lnlab_test_checkpoint.%ld", (long)getpid());
    mkdir(dir, 0777);
    RUN_TEST(test_crc32);
    RUN_TEST(test_checksums);
    RUN_TEST(test_checksum_entries);
    RUN_TEST(test_state_roundtrip);
    RUN_TEST(test_checkpoints_dir);
    RUN_TEST(test_log_resume);
    RUN_TEST(test_log_write_failure);
    RUN_TEST(test_fault_injection);
    RUN_TEST(test_memory_estimate);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    TEST_MAIN_END();
}
