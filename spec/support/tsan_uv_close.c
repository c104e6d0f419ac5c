/*
 * tsan_uv_close.c - linked into ThreadSanitizer builds only.
 *
 * libuv closes descriptors with syscall(SYS_close, fd) (no cancellation
 * point), which this gcc's ThreadSanitizer does not intercept: it keeps
 * believing the descriptor is the worker's epoll or eventfd, and when
 * another thread's open() reuses the number it reports a race between two
 * unrelated files. Routing SYS_close through close(), which it intercepts,
 * keeps its view of descriptors true; every other call goes to the C
 * library's syscall() unchanged.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

long syscall(long n, ...)
{
    va_list ap;
    long a[6];
    va_start(ap, n);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long); /* as the C library's own syscall() reads them */
    va_end(ap);
    if (n == SYS_close)
        return close((int)a[0]);
    /* looked up at the first call, by whichever thread makes it (libuv's
     * pool threads may make their first at once: atomic, or ThreadSanitizer
     * reports the lookup itself, and halts the host) */
    static long (*real)(long, ...);
    long (*fn)(long, ...) = __atomic_load_n(&real, __ATOMIC_ACQUIRE);
    if (!fn) {
        fn = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
        __atomic_store_n(&real, fn, __ATOMIC_RELEASE);
    }
    return fn(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}
