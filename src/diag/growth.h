/* Growth of a per-layer figure with depth: least-squares fits of y(l) against the layer index l
 * (linear a + b l, quadratic a + b l + c l^2, exponential a * r^l) and which shape describes the
 * data better. Used by `lnlab probe` ("growth") and by the study report, to set a placement's
 * measured hidden-state growth beside Peri-LN's bound: magnitude at most linear in depth,
 * variance at most quadratic (docs/PLACEMENTS.md); Pre-LN's grows exponentially.
 *
 * Every fit reports R^2 = 1 - RSS / TSS computed on y itself (not on log y), so R^2 of the three
 * shapes compare directly. The exponential fit starts from the line through (l, log y) and is
 * then refined by damped Gauss-Newton on the squared error in y; it needs every y > 0. A series
 * that is constant (TSS = 0 up to rounding) is fitted exactly by every shape: R^2 = 1. Pure
 * functions of their arguments, no allocation. */
#ifndef LNL_GROWTH_H
#define LNL_GROWTH_H

typedef struct {
    int ok;         /* 0: not defined (fewer points than parameters, a non-finite y, y <= 0 for exp) */
    double a, b, c; /* linear: a + b x (c = 0); quadratic: a + b x + c x^2; exponential: a * b^x
                     * (b is the rate per layer, c = 0) */
    double r2;      /* on y */
    double rss;     /* sum of squared residuals on y */
    double r2_log;  /* exponential only: R^2 of the line through (x, log y); else 0 */
} LnlFit;

LnlFit lnl_fit_linear(const double *x, const double *y, int n);
LnlFit lnl_fit_quadratic(const double *x, const double *y, int n);
LnlFit lnl_fit_exponential(const double *x, const double *y, int n);

/* One figure's fits against l = 0..n-1. better_exp: the exponential fit's R^2 beats the bounded
 * shape's (linear for a magnitude, quadratic for a variance) by more than 1e-9; ties go to the
 * bounded shape. */
typedef struct {
    LnlFit linear, quadratic, exponential;
    int better_exp;
} LnlGrowthFit;

/* Magnitude (e.g. hidden_mean_abs) and variance (e.g. hidden_var) series of n points, entry l =
 * layer l (entry 0: the embedding output). within_bound: the magnitude is better described as
 * linear than exponential and the variance as quadratic than exponential, the shapes of
 * Peri-LN's bound. */
typedef struct {
    int n;
    LnlGrowthFit magnitude, variance;
    int within_bound;
} LnlGrowth;

LnlGrowthFit lnl_growth_fit(const double *y, int n, int variance);
LnlGrowth lnl_growth(const double *magnitude, const double *variance, int n);

#endif
