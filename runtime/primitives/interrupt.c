/*
 * interrupt.c - makes a given thread run a small function of its own at
 * once, wherever it is: the watchdog uses it to have a worker install its
 * interrupt hook (a Lua state's hook may be set only by the thread running
 * it, or while that thread cannot run, as lua.c does for Ctrl+C).
 *
 * POSIX: pthread_kill with a signal reserved for this (LSVC_IRQ_SIGNAL);
 * its handler, installed with SA_RESTART so no system call of the thread
 * sees EINTR, calls the bound function, which must be async-signal-safe
 * (lua_sethook is, by the Lua manual). The signal is never blocked or
 * ignored, so children inherit neither, and exec resets a caught signal.
 * Windows: SuspendThread, the function on the calling thread while the
 * target cannot run, ResumeThread.
 *
 * bind/unbind: the target thread itself; raise: any thread, with the
 * caller's lock making raise and unbind exclusive.
 */
#include <signal.h>

#include "primitives.h"

#ifdef _WIN32
#include <windows.h>
#endif

#if !defined(_WIN32)
#define LSVC_IRQ_SIGNAL (SIGRTMIN + 3)
static _Thread_local lsvc_irq *tls_irq;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void on_signal(int sig)
{
    (void)sig;
    lsvc_irq *irq = tls_irq;
    if (irq && irq->fn)
        irq->fn(irq->ud);
}

static void install(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(LSVC_IRQ_SIGNAL, &sa, NULL);
}
#endif

void lsvc_irq_bind(lsvc_irq *irq, void (*fn)(void *), void *ud)
{
    irq->thread = pthread_self();
    irq->fn = fn;
    irq->ud = ud;
#if !defined(_WIN32)
    pthread_once(&once, install);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, LSVC_IRQ_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    tls_irq = irq;
#endif
    irq->bound = true;
}

void lsvc_irq_unbind(lsvc_irq *irq)
{
    irq->bound = false;
#if !defined(_WIN32)
    tls_irq = NULL;
#endif
}

void lsvc_irq_raise(lsvc_irq *irq)
{
    if (!irq->bound || !irq->fn)
        return;
#ifdef _WIN32
    HANDLE th = pthread_gethandle(irq->thread);
    if (th && SuspendThread(th) != (DWORD)-1) {
        irq->fn(irq->ud);
        ResumeThread(th);
    }
#else
    pthread_kill(irq->thread, LSVC_IRQ_SIGNAL);
#endif
}

int lsvc_irq_signo(void)
{
#ifdef _WIN32
    return 0;
#else
    return LSVC_IRQ_SIGNAL;
#endif
}
