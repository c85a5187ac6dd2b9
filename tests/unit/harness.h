/* Minimal test harness: each TEST prints "ok <name>" or "FAIL <name>: <why>"; tests/run counts
 * those lines. A test binary exits non-zero if any test failed. */
#ifndef LNL_HARNESS_H
#define LNL_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int lnl_t_failed_total;
static int lnl_t_cur_failed;
static const char *lnl_t_cur;

#define CHECK(cond, ...)                                                                \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            if (!lnl_t_cur_failed) printf("FAIL %s: ", lnl_t_cur);                      \
            else printf("     %s: ", lnl_t_cur);                                        \
            printf("%s:%d: check '%s' failed: ", __FILE__, __LINE__, #cond);            \
            printf(__VA_ARGS__);                                                        \
            printf("\n");                                                               \
            lnl_t_cur_failed = 1;                                                       \
        }                                                                               \
    } while (0)

/* Fails unless |got - want| <= atol + rtol*|want| and both are finite. */
#define CHECK_CLOSE(got, want, atol, rtol)                                                        \
    do {                                                                                          \
        double g_ = (double)(got), w_ = (double)(want);                                           \
        CHECK(isfinite(g_) && isfinite(w_) && fabs(g_ - w_) <= (atol) + (rtol)*fabs(w_),         \
              "%s = %.9g, expected %.9g (atol %g, rtol %g)", #got, g_, w_, (double)(atol),        \
              (double)(rtol));                                                                    \
    } while (0)

#define RUN_TEST(fn)                                                     \
    do {                                                                 \
        lnl_t_cur = #fn;                                                 \
        lnl_t_cur_failed = 0;                                            \
        fflush(stdout);                                                  \
        fn();                                                            \
        if (lnl_t_cur_failed) lnl_t_failed_total++;                      \
        else printf("ok %s\n", #fn);                                     \
        fflush(stdout);                                                  \
    } while (0)

#define TEST_MAIN_END() return lnl_t_failed_total ? 1 : 0

#endif
