/* Tests of the loader's random order (lnl_loader_sample, loader.h "Random order"): the offsets
 * follow the documented formula, a batch is a pure function of (data seed, step, micro-batch,
 * row), rows are T+1 consecutive tokens of one shard, shards are drawn in proportion to their
 * starting offsets, and n split loaders read the rows of one loader with n times the rows.
 * The sequential order is tested in test_shard.c and test_dist.c. */
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "data/loader.h"
#include "data/shard.h"
#include "harness.h"

static char tmpdir[256];

/* Token k of the concatenation is k (all shards together hold < 65536 tokens), so a token says
 * where it was read. */
static void write_shard(const char *dir, const char *name, uint64_t first, size_t n) {
    int32_t *v = lnl_malloc(n * sizeof(int32_t));
    for (size_t i = 0; i < n; i++) v[i] = (int32_t)(first + i);
    char *p = lnl_path_join(dir, name);
    LnlErr e;
    CHECK(lnl_shard_write(p, v, n, &e) == 0, "%s", e.msg);
    free(p);
    free(v);
}

/* Shards of 400, 7 (< T+1: no starting offset), 1000 and 200 tokens; T = 8. */
static const size_t sizes[] = {400, 7, 1000, 200};
#define NSH 4
#define TT 8

static char *make_dir(void) {
    char *d = lnl_path_join(tmpdir, "shards");
    LnlErr e;
    CHECK(lnl_mkdir_p(d, &e) == 0, "%s", e.msg);
    uint64_t first = 0;
    for (int i = 0; i < NSH; i++) {
        char name[64];
        snprintf(name, sizeof name, "d_train_%03d.bin", i);
        write_shard(d, name, first, sizes[i]);
        first += sizes[i];
    }
    return d;
}

static uint64_t H(uint64_t x) { return lnl_splitmix64(&x); }

/* The formula of loader.h, written out independently: starting offset number u of U. */
static uint64_t formula_offset(uint64_t seed, uint64_t step, uint64_t micro, uint64_t row) {
    uint64_t U = 0, start = 0;
    for (int i = 0; i < NSH; i++)
        if (sizes[i] > TT) U += sizes[i] - TT;
    LnlRng r;
    lnl_rng_seed(&r, H(H(H(H(seed) ^ step) ^ micro) ^ row));
    uint64_t u = lnl_rng_u64(&r) % U;
    for (int i = 0; i < NSH; i++) {
        uint64_t k = sizes[i] > TT ? sizes[i] - TT : 0;
        if (u < k) return start + u;
        u -= k;
        start += sizes[i];
    }
    return UINT64_MAX;
}

static void test_order_names(void) {
    LnlDataOrder o = LNL_ORDER_SEQUENTIAL;
    CHECK(lnl_data_order_parse("random", &o) == 0 && o == LNL_ORDER_RANDOM, "random");
    CHECK(lnl_data_order_parse("sequential", &o) == 0 && o == LNL_ORDER_SEQUENTIAL, "sequential");
    CHECK(lnl_data_order_parse("shuffled", &o) != 0, "an unknown order was accepted");
    CHECK(strcmp(lnl_data_order_name(LNL_ORDER_RANDOM), "random") == 0 &&
              strcmp(lnl_data_order_name(LNL_ORDER_SEQUENTIAL), "sequential") == 0,
          "names");
}

static void test_formula(void) {
    char *d = make_dir();
    LnlLoader l;
    LnlErr e;
    CHECK(lnl_loader_open(&l, d, "train", 3, TT, 0, &e) == 0, "%s", e.msg);
    CHECK(l.usable == 392 + 992 + 192, "usable %llu", (unsigned long long)l.usable);
    int bad = 0;
    for (uint64_t seed = 0; seed < 3; seed++)
        for (uint64_t step = 0; step < 50; step++)
            for (uint64_t micro = 0; micro < 3; micro++)
                for (uint64_t row = 0; row < 4; row++)
                    if (lnl_loader_sample_offset(&l, seed, step, micro, row) != formula_offset(seed, step, micro, row))
                        bad++;
    CHECK(bad == 0, "%d offsets differ from loader.h's formula", bad);
    lnl_loader_free(&l);
    free(d);
}

/* Rows of a sampled batch are T+1 consecutive tokens of one shard, starting at the offset the
 * loader reports, within range; sampling does not move the sequential position. */
static void test_rows_in_range(void) {
    char *d = make_dir();
    const int B = 5;
    LnlLoader l;
    LnlErr e;
    CHECK(lnl_loader_open(&l, d, "train", B, TT, 0, &e) == 0, "%s", e.msg);
    int32_t x[5 * TT], y[5 * TT];
    long hits[NSH] = {0}, draws = 0;
    uint64_t lo0 = UINT64_MAX, hi0 = 0; /* offsets seen in shard 0 */
    for (uint64_t step = 0; step < 4000; step++) {
        lnl_loader_sample(&l, 7, step, step % 3, x, y);
        for (int b = 0; b < B; b++, draws++) {
            uint64_t off = lnl_loader_sample_offset(&l, 7, step, step % 3, (uint64_t)b);
            int i = 0;
            while (i + 1 < NSH && off >= l.start[i + 1]) i++;
            uint64_t in_shard = off - l.start[i];
            if (in_shard + TT + 1 > sizes[i]) {
                CHECK(0, "step %llu row %d: offset %llu of shard %d (%zu tokens) leaves no room for T+1 tokens",
                      (unsigned long long)step, b, (unsigned long long)in_shard, i, sizes[i]);
                goto out;
            }
            hits[i]++;
            if (i == 0 && in_shard < lo0) lo0 = in_shard;
            if (i == 0 && in_shard > hi0) hi0 = in_shard;
            for (int t = 0; t < TT; t++)
                if (x[b * TT + t] != (int32_t)(off + t) || y[b * TT + t] != (int32_t)(off + t + 1)) {
                    CHECK(0, "step %llu row %d: token %d is %d/%d, expected %llu/%llu", (unsigned long long)step, b,
                          t, x[b * TT + t], y[b * TT + t], (unsigned long long)(off + t),
                          (unsigned long long)(off + t + 1));
                    goto out;
                }
        }
    }
    CHECK(l.pos == 0, "sampling moved the sequential position to %llu", (unsigned long long)l.pos);
    CHECK(hits[1] == 0, "the shard shorter than T+1 was drawn %ld times", hits[1]);
    /* each shard in proportion to its starting offsets (20000 draws: within 10%) */
    for (int i = 0; i < NSH; i++) {
        double want = (double)draws * (sizes[i] > TT ? (double)(sizes[i] - TT) : 0.0) / (double)l.usable;
        CHECK(hits[i] >= 0.9 * want && hits[i] <= 1.1 * want + 0.5, "shard %d drawn %ld times of %ld, expected ~%.0f",
              i, hits[i], draws, want);
    }
    CHECK(lo0 == 0 && hi0 == sizes[0] - TT - 1, "shard 0 offsets ranged over %llu..%llu, expected 0..%zu",
          (unsigned long long)lo0, (unsigned long long)hi0, sizes[0] - TT - 1);
out:
    lnl_loader_free(&l);
    free(d);
}

/* The same (seed, step, micro) gives the same batch in another loader; another seed, step or
 * micro-batch gives another one. */
static void test_reproducible(void) {
    char *d = make_dir();
    const int B = 4;
    LnlLoader a, b;
    LnlErr e;
    CHECK(lnl_loader_open(&a, d, "train", B, TT, 0, &e) == 0 && lnl_loader_open(&b, d, "train", B, TT, 0, &e) == 0,
          "%s", e.msg);
    int32_t xa[4 * TT], ya[4 * TT], xb[4 * TT], yb[4 * TT];
    int same = 1;
    for (uint64_t step = 0; step < 20; step++) {
        lnl_loader_sample(&a, 11, step, 1, xa, ya);
        lnl_loader_next(&b, NULL, NULL); /* b's sequential reads change nothing in its samples */
        lnl_loader_sample(&b, 11, step, 1, xb, yb);
        same &= memcmp(xa, xb, sizeof xa) == 0 && memcmp(ya, yb, sizeof ya) == 0;
    }
    CHECK(same, "two loaders sampled different batches for the same seed, step and micro-batch");
    lnl_loader_sample(&a, 11, 5, 0, xa, ya);
    int differ_seed = 0, differ_step = 0, differ_micro = 0, differ_rows = 0;
    lnl_loader_sample(&a, 12, 5, 0, xb, yb);
    differ_seed = memcmp(xa, xb, sizeof xa) != 0;
    lnl_loader_sample(&a, 11, 6, 0, xb, yb);
    differ_step = memcmp(xa, xb, sizeof xa) != 0;
    lnl_loader_sample(&a, 11, 5, 1, xb, yb);
    differ_micro = memcmp(xa, xb, sizeof xa) != 0;
    for (int r = 1; r < B; r++) differ_rows += memcmp(xa, xa + r * TT, TT * sizeof(int32_t)) != 0;
    CHECK(differ_seed && differ_step && differ_micro, "same batch for another seed %d / step %d / micro-batch %d",
          !differ_seed, !differ_step, !differ_micro);
    CHECK(differ_rows == B - 1, "rows of one batch repeat row 0");
    /* the seed is not the init seed's stream: data seed 0 is an ordinary seed */
    CHECK(lnl_loader_sample_offset(&a, 0, 0, 0, 0) != lnl_loader_sample_offset(&a, 0, 0, 0, 1), "seed 0 rows");
    lnl_loader_free(&a);
    lnl_loader_free(&b);
    free(d);
}

/* n loaders split n ways read the rows of one loader with n*B rows, for every micro-batch. */
static void test_split(void) {
    char *d = make_dir();
    const int B = 2, n = 3;
    LnlLoader whole, part[3];
    LnlErr e;
    CHECK(lnl_loader_open(&whole, d, "train", n * B, TT, 0, &e) == 0, "%s", e.msg);
    for (int r = 0; r < n; r++)
        CHECK(lnl_loader_open(&part[r], d, "train", B, TT, 0, &e) == 0 && lnl_loader_split(&part[r], n, r, &e) == 0,
              "%s", e.msg);
    int32_t wx[6 * TT], wy[6 * TT], x[2 * TT], y[2 * TT];
    int bad = 0;
    for (uint64_t step = 0; step < 30; step++)
        for (uint64_t micro = 0; micro < 2; micro++) {
            lnl_loader_sample(&whole, 3, step, micro, wx, wy);
            for (int r = 0; r < n; r++) {
                lnl_loader_sample(&part[r], 3, step, micro, x, y);
                bad += memcmp(x, wx + r * B * TT, sizeof x) != 0 || memcmp(y, wy + r * B * TT, sizeof y) != 0;
            }
        }
    CHECK(bad == 0, "%d split batches differ from the rows of the whole batch", bad);
    for (int r = 0; r < n; r++) lnl_loader_free(&part[r]);
    lnl_loader_free(&whole);
    free(d);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lnl_test_loader_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        printf("FAIL setup: mkdtemp\n");
        return 1;
    }
    RUN_TEST(test_order_names);
    RUN_TEST(test_formula);
    RUN_TEST(test_rows_in_range);
    RUN_TEST(test_reproducible);
    RUN_TEST(test_split);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", tmpdir);
    TEST_MAIN_END();
}
