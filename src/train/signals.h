/* SIGINT/SIGTERM during training. The handler only records the signal; the training loop asks
 * after each step, saves a checkpoint and the training state, and stops (the CLI then exits
 * 128 + signal: 130 for SIGINT, 143 for SIGTERM). A second signal while that happens ends the
 * process at once with the default action; checkpoints are written atomically, so the previous
 * one is still intact then.
 *
 * SIGBUS: the token shards are mapped (mmap), so a shard truncated or replaced in place while a
 * run reads it faults on the next read. While armed, the handler jumps back to the point the loop
 * set with sigsetjmp(*lnl_bus_jump(), 0), which reports the file and stops the run cleanly;
 * unarmed, it prints one line and exits 1. Not a general signal framework: only these signals. */
#ifndef LNL_SIGNALS_H
#define LNL_SIGNALS_H

#include <setjmp.h>

/* Installs the handlers (remembering the previous ones) and clears any recorded signal. */
void lnl_signals_install(void);
/* The first signal received since lnl_signals_install, or 0. */
int lnl_signals_pending(void);
/* Puts the previous handlers back. */
void lnl_signals_restore(void);
/* The SIGBUS handler (see above): install before arming, restore after the last read. */
void lnl_bus_install(void);
void lnl_bus_restore(void);
/* Where an armed SIGBUS jumps to; set it with sigsetjmp(*lnl_bus_jump(), 0) in a frame that stays
 * alive while armed. After the jump (sigsetjmp returns 1), call lnl_bus_after_jump first. */
sigjmp_buf *lnl_bus_jump(void);
void lnl_bus_arm(int on);
/* Unblocks SIGBUS again (the handler left by a jump) and returns the faulting address. */
const void *lnl_bus_after_jump(void);
/* "SIGINT", "SIGTERM", or "a signal". */
const char *lnl_signal_name(int sig);

#endif
