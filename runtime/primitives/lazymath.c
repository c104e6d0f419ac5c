/*
 * lazymath.c - the math functions of the C library that the binary calls
 * (Lua's math library, float % and ^ in the VM, luv, lua-cjson), taken
 * from libm at their first call instead of at every start. On glibc, libm
 * is a library of its own: mapping it and running its IFUNC resolvers
 * costs an exec about 0.1-0.2 ms, a sixth of a trivial C program's whole
 * start, and most services never compute a sine. The binary is linked
 * without libm (CMakeLists.txt); each function here opens libm.so.6 once
 * (dlopen, under pthread_once) and calls libm's own through a pointer,
 * which costs what a call through the PLT does. Lua C modules a script
 * loads bind to libm directly (these symbols are not exported).
 * Linux only; any thread.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static void *libm;
static pthread_once_t libm_once = PTHREAD_ONCE_INIT;

static void open_libm(void) { libm = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL); }

/* libm's function `name`; a C library without it cannot run Lua: abort. */
static void *resolve(const char *name)
{
    pthread_once(&libm_once, open_libm);
    void *f = libm ? dlsym(libm, name) : NULL;
    if (!f) {
        fprintf(stderr, "luasvc: cannot find %s in libm.so.6: %s\n", name, dlerror());
        abort();
    }
    return f;
}

#define LAZY1(name)                                                                                \
    double name(double x)                                                                          \
    {                                                                                              \
        static _Atomic(double (*)(double)) p;                                                      \
        double (*f)(double) = atomic_load_explicit(&p, memory_order_acquire);                      \
        if (!f) {                                                                                  \
            *(void **)&f = resolve(#name);                                                         \
            atomic_store_explicit(&p, f, memory_order_release);                                    \
        }                                                                                          \
        return f(x);                                                                               \
    }

#define LAZY2(name)                                                                                \
    double name(double x, double y)                                                                \
    {                                                                                              \
        static _Atomic(double (*)(double, double)) p;                                              \
        double (*f)(double, double) = atomic_load_explicit(&p, memory_order_acquire);              \
        if (!f) {                                                                                  \
            *(void **)&f = resolve(#name);                                                         \
            atomic_store_explicit(&p, f, memory_order_release);                                    \
        }                                                                                          \
        return f(x, y);                                                                            \
    }

/* Every function of libm that the binary imports (`nm -D --undefined-only
 * luasvc` against libm's exports; frexp and ldexp are in libc too, but the
 * link would take them from libm). One missing here brings libm back as
 * a needed library: the spec on the binary's libraries says which. */
LAZY1(acos)
LAZY1(asin)
LAZY1(cos)
LAZY1(cosh)
LAZY1(exp)
LAZY1(log)
LAZY1(log10)
LAZY1(log2)
LAZY1(sin)
LAZY1(sinh)
LAZY1(sqrt)
LAZY1(tan)
LAZY1(tanh)
LAZY2(atan2)
LAZY2(fmod)
LAZY2(pow)

double frexp(double x, int *e)
{
    static _Atomic(double (*)(double, int *)) p;
    double (*f)(double, int *) = atomic_load_explicit(&p, memory_order_acquire);
    if (!f) {
        *(void **)&f = resolve("frexp");
        atomic_store_explicit(&p, f, memory_order_release);
    }
    return f(x, e);
}

double ldexp(double x, int e)
{
    static _Atomic(double (*)(double, int)) p;
    double (*f)(double, int) = atomic_load_explicit(&p, memory_order_acquire);
    if (!f) {
        *(void **)&f = resolve("ldexp");
        atomic_store_explicit(&p, f, memory_order_release);
    }
    return f(x, e);
}
