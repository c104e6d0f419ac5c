/*
 * posix_signals.c - the host's signals, caught for the endpoint's thread
 * (posix_endpoint.c takes them from the pipe), and the endpoint's reserve
 * descriptor, taken here before any script can leak them all. Main
 * thread (lsvc_signals_catch, before any thread starts), then the
 * endpoint's thread; the handler runs on any.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "posix.h"

/*
 * The host's signals. A handler that only writes the signal's number to a
 * pipe, which the endpoint's thread polls and takes to the host: nothing
 * runs asynchronously but that write. No thread blocks these signals, and
 * none is ignored (SIGPIPE gets a handler that does nothing, so a write
 * to a closed pipe still fails with EPIPE): a child started from any
 * thread (io.popen, os.execute, a spawn) begins with an empty mask and
 * the default dispositions, as exec resets handled signals and keeps
 * ignored ones. SA_RESTART: a thread a signal lands on resumes its call.
 *
 * (The event loop's branch reserves one more signal here, the worker's
 * interrupt installed by pthread_kill: handled, never blocked, never
 * ignored, for the same reason.)
 */
static int sig_pipe[2] = {-1, -1};

/* The endpoint's reserve descriptor (endpoint_main): the main thread's
 * before the endpoint's thread starts, then that thread's alone. */
static int spare_fd = -1;

int lsvc_take_spare(void) { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

int lsvc_signals_spare(void)
{
    int fd = spare_fd >= 0 ? spare_fd : lsvc_take_spare();
    spare_fd = -1;
    return fd;
}

int lsvc_signals_fd(void) { return sig_pipe[0]; }

static void on_host_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(sig_pipe[1], &b, 1); /* full (64 kB of signals): dropped */
    (void)w;
    errno = saved;
}

static void on_sigpipe(int sig) { (void)sig; }

int lsvc_signals_catch(const sigset_t *set)
{
    if (sig_pipe[0] < 0 && pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return -1;
    if (spare_fd < 0)
        spare_fd = lsvc_take_spare(); /* before any thread can leak descriptors */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_host_signal;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGPIPE && sigismember(set, sig) == 1 && sigaction(sig, &sa, NULL) != 0)
            return -1;
    sa.sa_handler = on_sigpipe;
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        return -1;
    /* and nothing blocked: whatever our parent left, the threads this one
     * starts, and their children, begin with an empty mask */
    sigset_t none;
    sigemptyset(&none);
    return pthread_sigmask(SIG_SETMASK, &none, NULL) == 0 ? 0 : -1;
}

