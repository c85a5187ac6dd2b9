/* SIGINT/SIGTERM during training. The handler only records the signal; the training loop asks
 * after each step, saves a checkpoint and the training state, and stops (the CLI then exits
 * 128 + signal: 130 for SIGINT, 143 for SIGTERM). A second signal while that happens ends the
 * process at once with the default action; checkpoints are written atomically, so the previous
 * one is still intact then. Not a general signal framework: only these two signals. */
#ifndef LNL_SIGNALS_H
#define LNL_SIGNALS_H

/* Installs the handlers (remembering the previous ones) and clears any recorded signal. */
void lnl_signals_install(void);
/* The first signal received since lnl_signals_install, or 0. */
int lnl_signals_pending(void);
/* Puts the previous handlers back. */
void lnl_signals_restore(void);
/* "SIGINT", "SIGTERM", or "a signal". */
const char *lnl_signal_name(int sig);

#endif
