/* The study report. The content is built once as a list of blocks (headings, paragraphs,
 * tables, figures) and rendered twice, as Markdown (summary.md) and as HTML (report.html). The
 * findings are computed from the records: medians over seeds, counts, and factors between
 * them; no sentence states a result that the numbers beside it do not show. */
#include "report.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "doc.h"
#include "export.h"
#include "findings.h"
#include "plots.h"
#include "../common/version.h"
#include "../train/train.h"

/* ---- the report ---- */

#define NUM(x) (lnl_num(x).s)

/* The precisions of the runs with a record: HAS_FP32 | HAS_BF16 (the choices of train/settings.h). */
enum { HAS_FP32 = 1, HAS_BF16 = 2 };
static int precisions_of(const LnlStudyResult *rs, const int *have, int n) {
    int m = 0;
    for (int i = 0; i < n; i++)
        if (have[i]) m |= !strcmp(lnl_study_run_precision(&rs[i].run), LNL_STUDY_FP32) ? HAS_FP32 : HAS_BF16;
    return m;
}

/* The runs table; a study of several precisions has a precision column after the run's id. */
static void runs_table(LnlDoc *d, const LnlStudyResult *rs, const int *have, int n) {
    enum { NCOLS = 16 };
    const int prec = precisions_of(rs, have, n) == (HAS_FP32 | HAS_BF16);
    const char *head[NCOLS] = {"run", "precision", "trained", "final val loss", "unigram loss", "trained at step",
                               "diverged at step", "spikes", "largest loss rise (nats, step)",
                               "last-layer hidden_mean_abs", "block-1 hidden_mean_abs", "growth fit",
                               "grad ratio layer 1 / L (end)", "min grad ratio (step)", "median sensitivity",
                               "tokens/s"};
    if (!prec) memmove(&head[1], &head[2], sizeof head[0] * (NCOLS - 2));
    int t = lnl_doc_table(d, NCOLS - !prec, head);
    for (int i = 0; i < n; i++) {
        if (!have[i]) continue;
        const LnlStudyResult *r = &rs[i];
        char gate[32], div[32], fit[160], tps[32], rise[64], spikes[16], mr[64];
        if (r->gate_step >= 0) snprintf(gate, sizeof gate, "%lld", r->gate_step);
        else snprintf(gate, sizeof gate, "-");
        if (r->diverged_at_step >= 0) snprintf(div, sizeof div, "%lld", r->diverged_at_step);
        else snprintf(div, sizeof div, "-");
        const LnlGrowthFit *g = &r->growth.magnitude;
        if (!r->nlayers) snprintf(fit, sizeof fit, "-");
        else
            snprintf(fit, sizeof fit, "%s (slope %s, rate %s per layer)", lnl_study_growth_better(g, 0),
                     NUM(g->linear.ok ? g->linear.b : NAN), NUM(g->exponential.ok ? g->exponential.b : NAN));
        if (isfinite(r->tokens_per_s)) snprintf(tps, sizeof tps, "%.0f", r->tokens_per_s);
        else snprintf(tps, sizeof tps, "n/a");
        if (r->max_rise_step >= 0) snprintf(rise, sizeof rise, "%s (%lld)", NUM(r->max_rise), r->max_rise_step);
        else snprintf(rise, sizeof rise, "n/a");
        snprintf(spikes, sizeof spikes, "%d", r->spikes);
        if (r->min_grad_ratio_step >= 0) snprintf(mr, sizeof mr, "%s (%lld)", NUM(r->min_grad_ratio), r->min_grad_ratio_step);
        else snprintf(mr, sizeof mr, "n/a");
        const char *tr = r->trained == 1 ? "yes" : r->trained == 0 ? "**no**" : "unknown";
        LnlNum val = lnl_num(r->final_val_loss), uni = lnl_num(r->unigram), last = lnl_num(r->last_hidden),
               b1 = lnl_num(r->nlayers > 1 ? r->layers[1].mean_abs : NAN), gr = lnl_num(r->grad_ratio),
               sens = lnl_num(r->median_sensitivity);
        const char *cells[NCOLS] = {r->run.id, lnl_study_run_precision(&r->run), tr, val.s, uni.s, gate, div, spikes,
                                    rise, last.s, b1.s, fit, gr.s, mr, sens.s, tps};
        if (!prec) memmove(&cells[1], &cells[2], sizeof cells[0] * (NCOLS - 2));
        lnl_doc_row_cells(d, t, cells);
    }
}

/* The run's optimizer steps: its grid's or preset entry's option, else the shared setting. */
static long long run_steps(const LnlStudyConfig *c, const LnlStudyRun *u) {
    return u->opt[LNL_OPT_STEPS][0] ? atoll(u->opt[LNL_OPT_STEPS]) : c->steps;
}

static int write_out(const char *out, const char *name, const LnlBuf *b, LnlErr *e) {
    char *p = lnl_path_join(out, name);
    int r = lnl_write_file_atomic(p, b->data ? b->data : "", b->len, e);
    free(p);
    return r;
}

int lnl_study_report(const LnlStudyConfig *c, const char *out, const LnlStudyRun *runs, int nruns,
                     const LnlStudyResults *res, LnlStudyReportInfo *info, LnlErr *e) {
    LnlStudyResult *rs = lnl_calloc((size_t)(nruns ? nruns : 1), sizeof *rs);
    int *have = lnl_calloc((size_t)(nruns ? nruns : 1), sizeof(int));
    int nhave = 0, ndiv = 0, nsens = 0, rc = -1;
    double train_s = 0;
    for (int k = 0; k < nruns; k++) {
        int i = lnl_study_results_find(res, runs[k].id);
        if (i < 0) continue;
        char what[200];
        snprintf(what, sizeof what, "results.jsonl record of %s", runs[k].id);
        if (lnl_study_result_from_json(&rs[k], res->lines[i], what, e)) goto done;
        have[k] = 1;
        nhave++;
        ndiv += rs[k].diverged_at_step >= 0;
        nsens += isfinite(rs[k].median_sensitivity);
        if (isfinite(rs[k].wall_s)) train_s += rs[k].wall_s;
    }
    if (lnl_study_export(out, rs, have, nruns, e)) goto done;
    LnlStudyPlots pl;
    if (lnl_study_plots_make(out, c->gnuplot, rs, have, nruns, &pl, e)) goto done;

    LnlDoc d = {0};
    LnlBuf verdicts = {0};
    lnl_doc_text(&d, B_H1, "lnlab study");
    /* the verdicts first, then the contents, then everything they rest on */
    LnlDoc claims = {0};
    lnl_doc_text(&d, B_P, "The claims of the literature this study tests, each with its verdict computed from %d runs "
                          "(the rules: docs/STUDY.md, \"Claims and verdicts\"; each claim's numbers are in its section "
                          "under Findings):", nhave);
    lnl_study_findings(&d, &claims, c, rs, have, nruns, &pl, &verdicts);
    char dur[64];
    snprintf(dur, sizeof dur, "%.0f s", train_s);
    {
        /* what this scale can test, in one line */
        double pmin = INFINITY, pmax = 0, tmin = INFINITY, tmax = 0;
        for (int k = 0; k < nruns; k++) {
            if (!have[k]) continue;
            double C = rs[k].run.dim, L = rs[k].run.depth, p = 12 * L * C * C,
                   tk = (double)run_steps(c, &runs[k]) * (double)(c->total_batch ? c->total_batch : c->batch * c->seq);
            pmin = fmin(pmin, p), pmax = fmax(pmax, p), tmin = fmin(tmin, tk), tmax = fmax(tmax, tk);
        }
        if (pmax > 0)
            lnl_doc_text(&d, B_P,
                         "Scale: %s to %s parameters in the blocks and %s to %s training tokens per run. At this scale "
                         "the study tests mechanisms (hidden-state growth and its bounds, collapse to the unigram loss, "
                         "vanishing gradients, learning-rate sensitivity), not the papers' results at GPT-2 scale "
                         "(divergence of large models, end-task gains).",
                         NUM(pmin), NUM(pmax), NUM(tmin), NUM(tmax));
    }
    {
        /* the headline figure: the first learning-rate sweep (each preset's final val loss against
         * the learning rate, the study's central picture), else the first loss curves */
        const LnlStudyPlot *head = NULL;
        for (int pass = 0; pass < 2 && !head; pass++)
            for (int i = 0; i < pl.n && !head; i++)
                if (pl.p[i].ok && !strcmp(pl.p[i].section, pass ? "loss" : "lr")) head = &pl.p[i];
        if (head) {
            int bi = lnl_doc_add(&d, B_FIG);
            d.b[bi].text = lnl_strdup(head->title);
            snprintf(d.b[bi].base, sizeof d.b[bi].base, "%s", head->base);
        }
    }
    lnl_doc_add(&d, B_TOC);
    lnl_doc_text(&d, B_H2, "This study");
    lnl_doc_text(&d, B_P,
         "%d runs in this study's grids: %d finished (%d diverged), %d not finished%s. Data: %s. Model: width %lld, %lld "
         "heads, sequence %lld, %s (named sizes set their own width and heads). Training: %lld steps (where a grid sets "
         "no other: its run ids then say so, e.g. steps600) of batch %lld x %lld tokens%s, AdamW (%g, %g), weight decay %g, gradient clip %g, warmup %lld, %s decay to %g x lr; validation on "
         "%lld batches every %lld steps and at the end. Probe: lnlab probe on the first %lld x %lld + 1 tokens of the "
         "val split. Sum of the runs' wall times: %s.",
         nruns, nhave, ndiv, nruns - nhave, info->failed ? " (some failed in this invocation; run again to retry)" : "",
         c->data, c->dim, c->heads, c->seq, c->norm, c->steps, c->batch, c->seq,
         c->total_batch ? " (accumulated to total_batch)" : "", c->beta1, c->beta2, c->weight_decay, c->grad_clip,
         c->warmup, c->schedule, c->min_lr_frac, c->eval_batches, c->eval_every, c->probe_batch, c->seq, dur);
    {
        char ver[160], cpu[256], date[32];
        lnl_version_line(ver, sizeof ver);
        lnl_cpu_name(cpu, sizeof cpu);
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &tm);
        lnl_doc_text(&d, B_P,
                     "Provenance: %s, built with %s; report written %s on %s (%ld CPUs), runs %d at a time with %d "
                     "thread%s each. Command: %s. Every record in results.jsonl and every run's result.json carries "
                     "the same, as of when it was made; the resolved config is under Settings.",
                     ver, lnl_build_options, date, cpu, sysconf(_SC_NPROCESSORS_ONLN), info->jobs, info->threads,
                     info->threads == 1 ? "" : "s", info->command ? info->command : "(not given)");
    }
    const int precs = precisions_of(rs, have, nruns);
    if (precs & HAS_BF16)
        lnl_doc_text(&d, B_P, "Matrix products: %s (bf16: bf16 products with fp32 accumulation and fp32 master weights).%s",
                     precs & HAS_FP32 ? "fp32 and bf16" : "bf16",
                     precs & HAS_FP32 ? " Runs of different precision are different settings: "
                     "compared, plotted and tabled apart, never pooled as seeds of one." : "");
    if (info->failed) lnl_doc_text(&d, B_P, "Failed in this invocation: %d run(s); first: %s.", info->failed, info->first_failure);
    if (!nsens)
        lnl_doc_text(&d, B_P, "Local sensitivity was not measured (this lnlab's probe has no --sensitivity, or the study "
                      "set sensitivity off), so the sensitivity column is n/a and there is no sensitivity plot.");

    lnl_doc_text(&d, B_H2, "Findings");
    lnl_doc_text(&d, B_P, "Each claim is a rule over the records below (docs/STUDY.md, \"Claims and verdicts\"): shows, "
                          "does not show, or inconclusive, with the numbers it rests on: medians over seeds with their "
                          "range [min-max] and the seed count. Only runs that trained count (final val loss %g nats "
                          "below the unigram loss), and a loss difference within the seeds' spread is a tie.",
                 LNL_TRAINED_MARGIN);
    for (int i = 0; i < claims.n; i++) { /* the blocks move over */
        int bi = lnl_doc_add(&d, claims.b[i].kind);
        d.b[bi] = claims.b[i];
    }
    free(claims.b);

    lnl_doc_text(&d, B_H2, "Plots");
    if (pl.why_none[0]) {
        lnl_doc_text(&d, B_P, "No plots: %s.", pl.why_none);
        snprintf(info->plots_why, sizeof info->plots_why, "%s", pl.why_none);
    } else {
        int drawn = 0;
        for (int i = 0; i < pl.n; i++) {
            if (pl.p[i].ok) {
                int bi = lnl_doc_add(&d, B_FIG);
                LnlBlock *b = &d.b[bi];
                b->text = lnl_strdup(pl.p[i].title);
                snprintf(b->base, sizeof b->base, "%s", pl.p[i].base);
                drawn++;
            } else {
                lnl_doc_text(&d, B_P, "Plot '%s' failed: %s (script: plots/data/%s.gp).", pl.p[i].title, pl.p[i].why, pl.p[i].base);
            }
        }
        if (!pl.n) lnl_doc_text(&d, B_P, "No plots: no run has finished yet.");
        info->plots_drawn = 2 * drawn;
    }

    lnl_doc_text(&d, B_H2, "Settings");
    lnl_doc_text(&d, B_P, "The study's config (lnlab study --config accepts it):");
    char *cfg = lnl_study_config_to_json(c);
    lnl_doc_text(&d, B_PRE, "%s", cfg);
    free(cfg);

    lnl_doc_text(&d, B_H2, "Runs");
    lnl_doc_text(&d, B_P, "One row per finished run (results.jsonl has the same records with every layer's figures). Growth fit: "
                  "least-squares line a + b l (slope b) and exponential a r^l (rate r, a factor per layer) of "
                  "hidden_mean_abs against entry l = 0..L, as lnlab probe fits them; the better one has the higher R^2 "
                  "on the values themselves. Grad ratio: grad_norm of block 1 / grad_norm of block L, at the end "
                  "(final probe) and its minimum over the diag records. Trained: final val loss at least %g nats below "
                  "the unigram loss; trained at step: the first evaluation below that. n/a: not measured or not finite "
                  "(a diverged run has no final model, so no probe).", LNL_TRAINED_MARGIN);
    runs_table(&d, rs, have, nruns);

    LnlBuf md = {0}, html = {0};
    lnl_doc_md(&d, &md);
    char *plots_dir = lnl_path_join(out, "plots");
    lnl_doc_html(&d, plots_dir, &html);
    free(plots_dir);
    rc = write_out(out, "summary.md", &md, e) || write_out(out, "report.html", &html, e) ? -1 : 0;
    lnl_buf_free(&md);
    lnl_buf_free(&html);
    lnl_doc_free(&d);
    lnl_study_plots_free(&pl);
    lnl_buf_append(&verdicts, "", 1);
    info->verdicts = verdicts.data;
done:
    for (int k = 0; k < nruns; k++) lnl_study_result_free(&rs[k]);
    free(rs);
    free(have);
    return rc;
}
