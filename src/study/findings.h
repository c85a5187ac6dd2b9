/* The study's findings: each claim of the literature is a rule over the records (which presets,
 * which metric, which comparison) that gives a verdict, "shows", "does not show" or
 * "inconclusive", with the numbers it rests on. A verdict never rests on runs that did not
 * train, and a loss difference within the seeds' spread is a tie. The rules: docs/STUDY.md,
 * "Claims and verdicts". */
#ifndef LNL_STUDY_FINDINGS_H
#define LNL_STUDY_FINDINGS_H

#include "config.h"
#include "doc.h"
#include "plots.h"
#include "results.h"

/* Appends the verdict table (a row per claim) to top, one section per claim (its verdict with the
 * numbers, a table with a row per setting, the rule, and the figures of pl the claim's numbers
 * come from) to body, and one line per claim ("(a1) ...: shows: ...") to verdicts. rs[i] is valid
 * where have[i]; pl may be NULL (no figures). */
void lnl_study_findings(LnlDoc *top, LnlDoc *body, const LnlStudyConfig *c, const LnlStudyResult *rs, const int *have,
                        int n, const LnlStudyPlots *pl, LnlBuf *verdicts);

/* A number with 4 significant digits, or "n/a", in a buffer of the caller's. */
typedef struct {
    char s[16];
} LnlNum;
LnlNum lnl_num(double v);

#endif
