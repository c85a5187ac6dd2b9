/* Growth fits (src/diag/growth.h) on synthetic series with known answers: exact lines, exact
 * exponentials and exact parabolas are recovered with R^2 = 1 and the right shape wins; a
 * constant series is fitted by every shape; undefined fits say so. */
#include "harness.h"

#include "diag/growth.h"

static void test_exact_linear(void) {
    double y[13];
    for (int l = 0; l < 13; l++) y[l] = 0.7 + 0.25 * l;
    LnlGrowthFit g = lnl_growth_fit(y, 13, 0);
    CHECK(g.linear.ok && g.exponential.ok && g.quadratic.ok, "fits undefined");
    CHECK_CLOSE(g.linear.a, 0.7, 1e-12, 0);
    CHECK_CLOSE(g.linear.b, 0.25, 1e-12, 0);
    CHECK_CLOSE(g.linear.r2, 1.0, 1e-12, 0);
    CHECK_CLOSE(g.quadratic.c, 0.0, 1e-10, 0);
    CHECK(g.exponential.r2 < 0.999, "an exponential fits a line too well: R^2 %.9g", g.exponential.r2);
    CHECK(!g.better_exp, "a line judged exponential");
}

static void test_exact_exponential(void) {
    double y[13];
    for (int l = 0; l < 13; l++) y[l] = 0.3 * pow(1.7, l);
    LnlGrowthFit g = lnl_growth_fit(y, 13, 0);
    CHECK_CLOSE(g.exponential.a, 0.3, 0, 1e-9);
    CHECK_CLOSE(g.exponential.b, 1.7, 0, 1e-9);
    CHECK_CLOSE(g.exponential.r2, 1.0, 1e-12, 0);
    CHECK_CLOSE(g.exponential.r2_log, 1.0, 1e-12, 0);
    CHECK(g.linear.r2 < 0.9, "a line fits 1.7^l: R^2 %.9g", g.linear.r2);
    CHECK(g.better_exp, "an exponential judged linear");
    /* as a variance, too: exponential beats the parabola */
    LnlGrowthFit v = lnl_growth_fit(y, 13, 1);
    CHECK(v.better_exp && v.quadratic.r2 < 0.99, "quadratic R^2 %.9g", v.quadratic.r2);
}

static void test_exact_quadratic(void) {
    double y[10];
    for (int l = 0; l < 10; l++) y[l] = 1.5 - 0.2 * l + 0.05 * l * l;
    LnlGrowthFit g = lnl_growth_fit(y, 10, 1);
    CHECK_CLOSE(g.quadratic.a, 1.5, 1e-10, 0);
    CHECK_CLOSE(g.quadratic.b, -0.2, 1e-10, 0);
    CHECK_CLOSE(g.quadratic.c, 0.05, 1e-10, 0);
    CHECK_CLOSE(g.quadratic.r2, 1.0, 1e-12, 0);
    CHECK(!g.better_exp, "a parabola judged exponential (exp R^2 %.9g)", g.exponential.r2);
}

/* The exponential fit minimizes the error in y, not in log y: with noise on y its residual is no
 * larger than the log-space line's, evaluated on y. */
static void test_exponential_refined(void) {
    double x[12], y[12];
    for (int l = 0; l < 12; l++) {
        x[l] = l;
        y[l] = 2.0 * pow(1.3, l) + ((l % 3) - 1) * 0.4;
    }
    LnlFit f = lnl_fit_exponential(x, y, 12);
    double ly[12];
    for (int l = 0; l < 12; l++) ly[l] = log(y[l]);
    LnlFit lf = lnl_fit_linear(x, ly, 12);
    double rss_log = 0;
    for (int l = 0; l < 12; l++) {
        double p = exp(lf.a + lf.b * l);
        rss_log += (y[l] - p) * (y[l] - p);
    }
    CHECK(f.ok && f.rss <= rss_log, "refined RSS %.9g above the log fit's %.9g", f.rss, rss_log);
    CHECK_CLOSE(f.b, 1.3, 0, 0.02);
    CHECK_CLOSE(f.r2_log, lf.r2, 1e-12, 0);
}

static void test_constant_and_undefined(void) {
    double y[6] = {0.8, 0.8, 0.8, 0.8, 0.8, 0.8};
    LnlGrowthFit g = lnl_growth_fit(y, 6, 0);
    CHECK_CLOSE(g.linear.r2, 1.0, 0, 0);
    CHECK_CLOSE(g.exponential.r2, 1.0, 1e-12, 0);
    CHECK_CLOSE(g.exponential.b, 1.0, 1e-12, 0);
    CHECK(!g.better_exp, "a tie went to the exponential");
    double neg[4] = {1, -1, 2, 3};
    double x[4] = {0, 1, 2, 3};
    CHECK(!lnl_fit_exponential(x, neg, 4).ok, "exponential fit of a non-positive series");
    CHECK(!lnl_fit_quadratic(x, y, 2).ok, "quadratic fit of 2 points");
    CHECK(!lnl_fit_linear(x, y, 1).ok, "linear fit of 1 point");
    double bad[3] = {1, NAN, 2};
    CHECK(!lnl_fit_linear(x, bad, 3).ok, "fit through NaN");
}

static void test_growth_bound(void) {
    double mag[9], var[9], emag[9], evar[9];
    for (int l = 0; l < 9; l++) {
        mag[l] = 0.5 + 0.1 * l;
        var[l] = 0.3 + 0.05 * l + 0.02 * l * l;
        emag[l] = 0.5 * pow(1.5, l);
        evar[l] = 0.3 * pow(2.25, l);
    }
    LnlGrowth g = lnl_growth(mag, var, 9);
    CHECK(g.n == 9 && g.within_bound, "linear magnitude, quadratic variance: outside the bound");
    g = lnl_growth(emag, evar, 9);
    CHECK(!g.within_bound && g.magnitude.better_exp && g.variance.better_exp, "exponential growth inside the bound");
    CHECK_CLOSE(g.variance.exponential.b, 2.25, 0, 1e-9);
}

int main(void) {
    RUN_TEST(test_exact_linear);
    RUN_TEST(test_exact_exponential);
    RUN_TEST(test_exact_quadratic);
    RUN_TEST(test_exponential_refined);
    RUN_TEST(test_constant_and_undefined);
    RUN_TEST(test_growth_bound);
    TEST_MAIN_END();
}
