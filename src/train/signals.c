/* Stop requests by signal (see signals.h). A signal handler can only talk to the program through
 * a static variable, so the recorded signal and the saved handlers are file-level state; nothing
 * else about the run lives here. */
#include "signals.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t pending;
static struct sigaction old_int, old_term;
static int installed;

static void on_signal(int sig) {
    if (pending) {
        /* second request: stop now, the default way (async-signal-safe calls only) */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(sig, &dfl, NULL);
        raise(sig);
        return;
    }
    pending = sig;
}

void lnl_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* a read or write in progress continues; the loop checks afterwards */
    pending = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    installed = 1;
}

int lnl_signals_pending(void) { return pending; }

void lnl_signals_restore(void) {
    if (!installed) return;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    installed = 0;
}

const char *lnl_signal_name(int sig) {
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal";
}
