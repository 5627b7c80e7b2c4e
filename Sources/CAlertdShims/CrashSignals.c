#include <signal.h>
#include <stddef.h>
#include "CAlertdShims.h"

/*
 * Swift's runtime catches the crash signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT,
 * SIGQUIT) to print its crash report, then returns from its handler with the signal's default
 * action restored: a real fault happens again at once and ends the process. A signal sent with
 * kill(2) does not happen again, so after "Program crashed" the process would go on running.
 *
 * alertd's handler calls the runtime's, then, for a signal that was sent rather than caused,
 * raises it once more with the default action: the process ends by that signal, with a core dump
 * where the system keeps them, as a supervisor expects. Only async-signal-safe calls are made.
 */

static const int alertd_crash_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT, SIGQUIT};
#define ALERTD_CRASH_SIGNAL_COUNT (sizeof(alertd_crash_signals) / sizeof(alertd_crash_signals[0]))

/* The runtime's action for each signal, indexed like alertd_crash_signals. Written before the
   handlers are installed, read only by them. */
static struct sigaction alertd_runtime_actions[ALERTD_CRASH_SIGNAL_COUNT];

static int alertd_handles(const struct sigaction *action) {
    if (action->sa_flags & SA_SIGINFO) return action->sa_sigaction != NULL;
    return action->sa_handler != SIG_DFL && action->sa_handler != SIG_IGN;
}

static void alertd_crash_signal_handler(int number, siginfo_t *info, void *context) {
    for (size_t i = 0; i < ALERTD_CRASH_SIGNAL_COUNT; i++) {
        if (alertd_crash_signals[i] != number) continue;
        const struct sigaction *runtime = &alertd_runtime_actions[i];
        if (runtime->sa_flags & SA_SIGINFO) {
            runtime->sa_sigaction(number, info, context);
        } else {
            runtime->sa_handler(number);
        }
        break;
    }
    /* si_code <= 0: SI_USER (kill), SI_QUEUE, SI_TKILL (tgkill), as abort() sends SIGABRT too.
       A fault has a positive code and happens again when the handler returns. */
    if (info == NULL || info->si_code <= 0) {
        struct sigaction fallback;
        sigemptyset(&fallback.sa_mask);
        fallback.sa_flags = 0;
        fallback.sa_handler = SIG_DFL;
        sigaction(number, &fallback, NULL);
        /* Blocked while this handler runs (unless the runtime asked for SA_NODEFER), so it is
           delivered, with the default action, as the handler returns. */
        raise(number);
    }
}

int alertd_end_on_sent_crash_signals(void) {
    int result = 0;
    for (size_t i = 0; i < ALERTD_CRASH_SIGNAL_COUNT; i++) {
        struct sigaction current;
        if (sigaction(alertd_crash_signals[i], NULL, &current) != 0) {
            result = -1;
            continue;
        }
        /* Not caught (SWIFT_BACKTRACE=enable=no): the default action already ends the process. */
        if (!alertd_handles(&current)) continue;
        alertd_runtime_actions[i] = current;
        struct sigaction wrapper = current;
        wrapper.sa_flags = (current.sa_flags | SA_SIGINFO) & ~SA_RESETHAND;
        wrapper.sa_sigaction = alertd_crash_signal_handler;
        if (sigaction(alertd_crash_signals[i], &wrapper, NULL) != 0) result = -1;
    }
    return result;
}
