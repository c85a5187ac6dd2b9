/* Stop requests by signal (see signals.h). A signal handler can only talk to the program through
 * a static variable, so the recorded signal and the saved handlers are file-level state; nothing
 * else about the run lives here. */
#include "signals.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

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

static sigjmp_buf bus_jump;
static volatile sig_atomic_t bus_armed;
static const void *volatile bus_addr;
static struct sigaction old_bus;
static int bus_installed;

static void on_bus(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    if (!bus_armed) {
        static const char msg[] = "lnlab: error: a mapped file was truncated or replaced while it was read (SIGBUS)\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(1);
    }
    bus_armed = 0;
    bus_addr = si->si_addr;
    siglongjmp(bus_jump, 1);
}

void lnl_bus_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_bus;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO;
    bus_armed = 0;
    sigaction(SIGBUS, &sa, &old_bus);
    bus_installed = 1;
}

void lnl_bus_restore(void) {
    if (!bus_installed) return;
    bus_armed = 0;
    sigaction(SIGBUS, &old_bus, NULL);
    bus_installed = 0;
}

sigjmp_buf *lnl_bus_jump(void) { return &bus_jump; }

void lnl_bus_arm(int on) { bus_armed = on; }

const void *lnl_bus_after_jump(void) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGBUS);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    return bus_addr;
}

const char *lnl_signal_name(int sig) {
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal";
}
