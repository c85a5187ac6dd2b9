/* Warmup then cosine / linear / constant decay. */
#include "schedule.h"

#include <math.h>
#include <string.h>

int lnl_schedule_parse(const char *name) {
    if (strcmp(name, "cosine") == 0) return LNL_SCHED_COSINE;
    if (strcmp(name, "linear") == 0) return LNL_SCHED_LINEAR;
    if (strcmp(name, "constant") == 0) return LNL_SCHED_CONSTANT;
    return -1;
}

double lnl_schedule_lr(const LnlSchedule *s, long step) {
    if (step < s->warmup) return s->lr * (double)(step + 1) / (double)s->warmup;
    if (s->kind == LNL_SCHED_CONSTANT) return s->lr;
    long span = s->steps - s->warmup;
    double ratio = span > 1 ? (double)(step - s->warmup) / (double)(span - 1) : 1.0;
    if (ratio > 1) ratio = 1;
    if (s->kind == LNL_SCHED_LINEAR) return s->lr - ratio * (s->lr - s->min_lr);
    return s->min_lr + 0.5 * (1.0 + cos(M_PI * ratio)) * (s->lr - s->min_lr);
}
