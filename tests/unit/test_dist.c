/* Data parallelism without a launcher: the loader's row split (n split loaders read exactly the
 * batches of one loader with n times the rows), launcher detection from the environment, the
 * single-process case (rank 0 of 1), and the ZeRO-1 step, which on one rank must equal
 * lnl_opt_step bit for bit. The multi-process equivalence runs under mpirun in
 * tests/cli/test_mpi.sh. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/loader.h"
#include "dist/dist.h"
#include "harness.h"
#include "train/optim.h"
#include "train/zero.h"

static char tmpdir[256];

static int32_t *seq(size_t n, int V) {
    int32_t *v = lnl_malloc(n * sizeof(int32_t));
    for (size_t i = 0; i < n; i++) v[i] = (int32_t)((i * 7 + i / 13) % (size_t)V);
    return v;
}

static void test_loader_split(void) {
    /* two shards of different sizes: the split loaders must follow the shard skips and the wrap
     * of one loader with 3x the rows */
    const int V = 257, T = 5, B = 2, n = 3;
    char *dir = lnl_path_join(tmpdir, "split");
    LnlErr e;
    CHECK(lnl_mkdir_p(dir, &e) == 0, "%s", e.msg);
    char *p0 = lnl_path_join(dir, "d_train_000.bin"), *p1 = lnl_path_join(dir, "d_train_001.bin");
    int32_t *a = seq(100, V), *b = seq(71, V);
    for (int i = 0; i < 71; i++) b[i] = (b[i] + 100) % V;
    CHECK(lnl_shard_write(p0, a, 100, &e) == 0, "%s", e.msg);
    CHECK(lnl_shard_write(p1, b, 71, &e) == 0, "%s", e.msg);
    LnlLoader whole, part[3];
    CHECK(lnl_loader_open(&whole, dir, "train", n * B, T, V, &e) == 0, "%s", e.msg);
    for (int r = 0; r < n; r++) {
        CHECK(lnl_loader_open(&part[r], dir, "train", B, T, V, &e) == 0, "%s", e.msg);
        CHECK(lnl_loader_split(&part[r], n, r, &e) == 0, "%s", e.msg);
        CHECK(lnl_loader_num_batches(&part[r]) == lnl_loader_num_batches(&whole), "num_batches %llu vs %llu",
              (unsigned long long)lnl_loader_num_batches(&part[r]), (unsigned long long)lnl_loader_num_batches(&whole));
    }
    int32_t wx[30], wy[30], x[10], y[10];
    for (int k = 0; k < 12; k++) {
        lnl_loader_next(&whole, wx, wy);
        for (int r = 0; r < n; r++) {
            lnl_loader_next(&part[r], x, y);
            CHECK(memcmp(x, wx + r * B * T, sizeof x) == 0 && memcmp(y, wy + r * B * T, sizeof y) == 0,
                  "batch %d, rank %d: rows differ from rows %d..%d of the whole batch", k, r, r * B, r * B + B - 1);
            CHECK(part[r].pos == whole.pos, "batch %d rank %d: pos %llu vs %llu", k, r,
                  (unsigned long long)part[r].pos, (unsigned long long)whole.pos);
        }
    }
    /* a global batch no shard holds is refused, naming the processes */
    LnlLoader big;
    CHECK(lnl_loader_open(&big, dir, "train", 5, T, V, &e) == 0, "%s", e.msg);
    CHECK(lnl_loader_split(&big, 4, 0, &e) != 0, "4 x 5 x 5 tokens accepted from shards of 100 and 71");
    CHECK(strstr(e.msg, "4 processes") && strstr(e.msg, "needs 101"), "message: %s", e.msg);
    lnl_loader_free(&big);
    for (int r = 0; r < n; r++) lnl_loader_free(&part[r]);
    lnl_loader_free(&whole);
    free(a);
    free(b);
    free(p0);
    free(p1);
    free(dir);
}

static void test_launcher_env(void) {
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK", "SLURM_STEP_NUM_TASKS",
                                 "SLURM_NTASKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
    CHECK(lnl_dist_launched() == 0, "launched without a launcher");
    setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
    CHECK(lnl_dist_launched() == 4, "OMPI_COMM_WORLD_SIZE=4 gave %d", lnl_dist_launched());
    unsetenv("OMPI_COMM_WORLD_SIZE");
    setenv("PMI_SIZE", "3", 1);
    CHECK(lnl_dist_launched() == 3, "PMI_SIZE=3 gave %d", lnl_dist_launched());
    unsetenv("PMI_SIZE");
    setenv("PMIX_RANK", "0", 1);
    setenv("SLURM_NTASKS", "8", 1);
    CHECK(lnl_dist_launched() == 8, "PMIX_RANK with SLURM_NTASKS=8 gave %d", lnl_dist_launched());
    unsetenv("SLURM_NTASKS");
    unsetenv("PMIX_RANK");
#ifndef LNL_HAVE_MPI
    /* several processes but no MPI: refused, since each would train alone on the same files */
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    LnlDist d;
    LnlErr e;
    CHECK(lnl_dist_init(&d, &e) != 0 && strstr(e.msg, "built without MPI"), "init: %s", e.msg);
    unsetenv("OMPI_COMM_WORLD_SIZE");
#endif
}

static void test_single_process(void) {
    LnlDist d;
    LnlErr e;
    CHECK(lnl_dist_init(&d, &e) == 0, "%s", e.msg);
    CHECK(d.rank == 0 && d.size == 1 && !d.mpi, "rank %d of %d, mpi %d without a launcher", d.rank, d.size, d.mpi);
    CHECK(lnl_dist_mean(&d, 2.5) == 2.5 && lnl_dist_mean(NULL, -1.0) == -1.0, "mean of one rank");
    CHECK(lnl_dist_max(&d, 7) == 7 && lnl_dist_is_root(NULL) && lnl_dist_size(NULL) == 1, "one rank");
    lnl_dist_barrier(&d);
    lnl_dist_free(&d);
}

static void fill_grads(LnlModel *m, float scale) {
    LnlRng r;
    lnl_rng_seed(&r, 99);
    for (int i = 0; i < m->nviews; i++)
        for (size_t k = 0; k < m->views[i].numel; k++)
            m->grads_mem[m->views[i].offset + k] = scale * (float)(lnl_rng_uniform(&r) - 0.5);
}

static void test_zero_one_rank_is_adamw(void) {
    LnlConfig c;
    lnl_config_default(&c);
    c.n_layer = 2;
    c.n_head = 2;
    c.n_embd = 8;
    c.n_positions = 8;
    c.vocab_size = 11;
    LnlErr e;
    CHECK(lnl_config_preset(&c, "peri", &e) == 0, "%s", e.msg);
    LnlModel a, b;
    CHECK(lnl_model_create(&a, &c, &e) == 0 && lnl_model_create(&b, &c, &e) == 0, "%s", e.msg);
    lnl_model_init_weights(&a, 3);
    lnl_model_init_weights(&b, 3);
    LnlOptState oa, ob;
    lnl_opt_init(&oa, &a);
    lnl_opt_init(&ob, &b);
    LnlDist d;
    LnlZero z;
    CHECK(lnl_dist_init(&d, &e) == 0, "%s", e.msg);
    CHECK(lnl_zero_init(&z, &d, &ob, &b, &e) == 0, "%s", e.msg);
    CHECK(z.lo == 0 && z.hi == b.num_alloc && ob.m == NULL, "one rank owns everything: [%zu, %zu)", z.lo, z.hi);
    LnlAdamW h = {0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    for (int step = 0; step < 4; step++) {
        float scale = step == 2 ? 50.0f : 0.5f; /* step 2 is clipped */
        fill_grads(&a, scale);
        fill_grads(&b, scale);
        double na = lnl_opt_step(&oa, &a, &h, 1e-2f);
        double nb = lnl_zero_step(&z, &ob, &b, &h, 1e-2f, lnl_model_grad_norm(&b));
        CHECK(na == nb, "step %d: norms %.17g vs %.17g", step, na, nb);
    }
    CHECK(oa.step == ob.step, "steps %ld vs %ld", oa.step, ob.step);
    CHECK(memcmp(a.params_mem, b.params_mem, a.num_alloc * sizeof(float)) == 0, "ZeRO on one rank differs from AdamW");
    /* the full moments for a checkpoint are AdamW's; a resumed run's shard starts from them */
    lnl_zero_gather(&z, &ob);
    CHECK(ob.m && memcmp(ob.m, oa.m, a.num_alloc * sizeof(float)) == 0 &&
              memcmp(ob.v, oa.v, a.num_alloc * sizeof(float)) == 0,
          "gathered moments differ from AdamW's");
    LnlOptState oc;
    lnl_opt_init(&oc, &b);
    memcpy(oc.m, ob.m, b.num_alloc * sizeof(float));
    memcpy(oc.v, ob.v, b.num_alloc * sizeof(float));
    lnl_zero_release(&z, &ob);
    CHECK(ob.m == NULL && ob.v == NULL, "release keeps the full moments");
    LnlDist d2;
    LnlZero z2;
    CHECK(lnl_dist_init(&d2, &e) == 0 && lnl_zero_init(&z2, &d2, &oc, &b, &e) == 0, "%s", e.msg);
    CHECK(memcmp(z2.m, oa.m, a.num_alloc * sizeof(float)) == 0 && memcmp(z2.v, oa.v, a.num_alloc * sizeof(float)) == 0,
          "ZeRO init does not start from the given moments");
    lnl_zero_free(&z2);
    lnl_dist_free(&d2);
    lnl_opt_free(&oc);
    float *m = lnl_malloc(a.num_alloc * sizeof(float));
    /* a non-finite norm changes nothing */
    memcpy(m, b.params_mem, b.num_alloc * sizeof(float));
    long s0 = ob.step;
    lnl_zero_step(&z, &ob, &b, &h, 1e-2f, NAN);
    CHECK(ob.step == s0 && memcmp(m, b.params_mem, b.num_alloc * sizeof(float)) == 0, "NaN norm updated the model");
    free(m);
    lnl_zero_free(&z);
    lnl_dist_free(&d);
    lnl_opt_free(&oa);
    lnl_opt_free(&ob);
    lnl_model_free(&a);
    lnl_model_free(&b);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lnl_test_dist_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        printf("FAIL setup: cannot create a temporary directory\n");
        return 1;
    }
    RUN_TEST(test_loader_split);
    RUN_TEST(test_launcher_env);
    RUN_TEST(test_single_process);
    RUN_TEST(test_zero_one_rank_is_adamw);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", tmpdir);
    TEST_MAIN_END();
}
