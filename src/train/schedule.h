/* Learning-rate schedules: linear warmup to lr over `warmup` steps, then cosine, linear or
 * constant decay to min_lr at the last step. Steps are 0-based. */
#ifndef LNL_SCHEDULE_H
#define LNL_SCHEDULE_H

typedef enum { LNL_SCHED_COSINE, LNL_SCHED_LINEAR, LNL_SCHED_CONSTANT } LnlSchedKind;

typedef struct {
    LnlSchedKind kind;
    double lr, min_lr;
    long warmup, steps;
} LnlSchedule;

/* "cosine" | "linear" | "constant"; -1 if unknown. */
int lnl_schedule_parse(const char *name);
double lnl_schedule_lr(const LnlSchedule *s, long step);

#endif
