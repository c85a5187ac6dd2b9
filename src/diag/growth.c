/* Least-squares growth fits in depth (growth.h). Normal equations in double on centered x, which
 * is well conditioned for the few dozen points a model's depth gives. */
#include "growth.h"

#include <math.h>
#include <string.h>

#define GROWTH_MAX_ITERS 200

/* R^2 from the residual and total sums of squares; a constant series counts as fitted exactly
 * when the residual is at rounding level too. */
static double r2_of(double rss, double tss, double sumsq) {
    double tiny = 1e-24 * (sumsq > 0 ? sumsq : 1e-300);
    if (tss <= tiny) return rss <= 1e-18 * (sumsq > 0 ? sumsq : 1e-300) ? 1.0 : 0.0;
    return 1.0 - rss / tss;
}

static int all_finite(const double *x, const double *y, int n) {
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i]) || !isfinite(y[i])) return 0;
    return 1;
}

/* Fills rss and r2 of f's predictions: a + b x + c x^2, or a * b^x if expo. */
static void score(LnlFit *f, const double *x, const double *y, int n, int expo) {
    double mean = 0, sumsq = 0;
    for (int i = 0; i < n; i++) {
        mean += y[i];
        sumsq += y[i] * y[i];
    }
    mean /= n;
    double rss = 0, tss = 0;
    for (int i = 0; i < n; i++) {
        double p = expo ? f->a * pow(f->b, x[i]) : f->a + f->b * x[i] + f->c * x[i] * x[i];
        rss += (y[i] - p) * (y[i] - p);
        tss += (y[i] - mean) * (y[i] - mean);
    }
    f->rss = rss;
    f->r2 = r2_of(rss, tss, sumsq);
}

LnlFit lnl_fit_linear(const double *x, const double *y, int n) {
    LnlFit f;
    memset(&f, 0, sizeof f);
    if (n < 2 || !all_finite(x, y, n)) return f;
    double mx = 0, my = 0;
    for (int i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= n;
    my /= n;
    double sxx = 0, sxy = 0;
    for (int i = 0; i < n; i++) {
        sxx += (x[i] - mx) * (x[i] - mx);
        sxy += (x[i] - mx) * (y[i] - my);
    }
    if (!(sxx > 0)) return f;
    f.b = sxy / sxx;
    f.a = my - f.b * mx;
    f.ok = 1;
    score(&f, x, y, n, 0);
    return f;
}

/* Solves the 3x3 system m z = r by Gaussian elimination with partial pivoting; 0 if singular. */
static int solve3(double m[3][3], double r[3], double z[3]) {
    for (int col = 0; col < 3; col++) {
        int piv = col;
        for (int i = col + 1; i < 3; i++)
            if (fabs(m[i][col]) > fabs(m[piv][col])) piv = i;
        if (!(fabs(m[piv][col]) > 1e-300)) return 0;
        for (int j = 0; j < 3; j++) {
            double t = m[col][j];
            m[col][j] = m[piv][j];
            m[piv][j] = t;
        }
        double t = r[col];
        r[col] = r[piv];
        r[piv] = t;
        for (int i = col + 1; i < 3; i++) {
            double k = m[i][col] / m[col][col];
            for (int j = col; j < 3; j++) m[i][j] -= k * m[col][j];
            r[i] -= k * r[col];
        }
    }
    for (int i = 2; i >= 0; i--) {
        double s = r[i];
        for (int j = i + 1; j < 3; j++) s -= m[i][j] * z[j];
        z[i] = s / m[i][i];
    }
    return 1;
}

LnlFit lnl_fit_quadratic(const double *x, const double *y, int n) {
    LnlFit f;
    memset(&f, 0, sizeof f);
    if (n < 3 || !all_finite(x, y, n)) return f;
    double mx = 0;
    for (int i = 0; i < n; i++) mx += x[i];
    mx /= n;
    /* y = p0 + p1 t + p2 t^2 with t = x - mx, then expanded back to powers of x */
    double m[3][3] = {{0}}, r[3] = {0}, p[3];
    for (int i = 0; i < n; i++) {
        double t = x[i] - mx, pw[3] = {1, t, t * t};
        for (int j = 0; j < 3; j++) {
            r[j] += pw[j] * y[i];
            for (int k = 0; k < 3; k++) m[j][k] += pw[j] * pw[k];
        }
    }
    if (!solve3(m, r, p)) return f;
    f.c = p[2];
    f.b = p[1] - 2 * p[2] * mx;
    f.a = p[0] - p[1] * mx + p[2] * mx * mx;
    f.ok = 1;
    score(&f, x, y, n, 0);
    return f;
}

LnlFit lnl_fit_exponential(const double *x, const double *y, int n) {
    LnlFit f;
    memset(&f, 0, sizeof f);
    if (n < 2 || !all_finite(x, y, n)) return f;
    double ly[n];
    for (int i = 0; i < n; i++) {
        if (!(y[i] > 0)) return f;
        ly[i] = log(y[i]);
    }
    LnlFit lf = lnl_fit_linear(x, ly, n);
    if (!lf.ok) return f;
    /* y = A exp(g x), start at the log-space line; Levenberg-Marquardt on the error in y */
    double A = exp(lf.a), g = lf.b, lambda = 1e-3;
    double rss = 0;
    for (int i = 0; i < n; i++) rss += (y[i] - A * exp(g * x[i])) * (y[i] - A * exp(g * x[i]));
    int done = 0;
    for (int it = 0; it < GROWTH_MAX_ITERS && rss > 0 && !done; it++) {
        double h00 = 0, h01 = 0, h11 = 0, g0 = 0, g1 = 0;
        for (int i = 0; i < n; i++) {
            double e = exp(g * x[i]), res = y[i] - A * e, j0 = e, j1 = A * x[i] * e;
            h00 += j0 * j0;
            h01 += j0 * j1;
            h11 += j1 * j1;
            g0 += j0 * res;
            g1 += j1 * res;
        }
        done = 1; /* unless a step below lowers the error by more than rounding */
        while (lambda < 1e12) {
            double a00 = h00 * (1 + lambda), a11 = h11 * (1 + lambda), det = a00 * a11 - h01 * h01;
            if (!(fabs(det) > 0)) break;
            double dA = (g0 * a11 - h01 * g1) / det, dg = (a00 * g1 - h01 * g0) / det;
            double nA = A + dA, ng = g + dg, nrss = 0;
            for (int i = 0; i < n; i++) nrss += (y[i] - nA * exp(ng * x[i])) * (y[i] - nA * exp(ng * x[i]));
            if (isfinite(nrss) && nrss < rss) {
                done = rss - nrss <= 1e-15 * rss;
                A = nA, g = ng, rss = nrss, lambda *= 0.3;
                break;
            }
            lambda *= 10;
        }
    }
    f.a = A;
    f.b = exp(g);
    f.ok = 1;
    f.r2_log = lf.r2;
    score(&f, x, y, n, 1);
    return f;
}

LnlGrowthFit lnl_growth_fit(const double *y, int n, int variance) {
    LnlGrowthFit g;
    double x[n > 0 ? n : 1];
    for (int i = 0; i < n; i++) x[i] = i;
    g.linear = lnl_fit_linear(x, y, n);
    g.quadratic = lnl_fit_quadratic(x, y, n);
    g.exponential = lnl_fit_exponential(x, y, n);
    const LnlFit *bounded = variance ? &g.quadratic : &g.linear;
    g.better_exp = g.exponential.ok && (!bounded->ok || g.exponential.r2 > bounded->r2 + 1e-9);
    return g;
}

LnlGrowth lnl_growth(const double *magnitude, const double *variance, int n) {
    LnlGrowth g;
    g.n = n;
    g.magnitude = lnl_growth_fit(magnitude, n, 0);
    g.variance = lnl_growth_fit(variance, n, 1);
    g.within_bound = g.magnitude.linear.ok && g.variance.quadratic.ok && !g.magnitude.better_exp &&
                     !g.variance.better_exp;
    return g;
}
