/*
 * tsan_longjmp.c - linked into ThreadSanitizer builds only.
 *
 * Debian's liblua5.4 is built with _FORTIFY_SOURCE, so every Lua error and
 * every yield from C (ctx:sleep) leaves through __longjmp_chk, which this
 * gcc's ThreadSanitizer does not intercept: the frames skipped are never
 * popped from its shadow stack, and after some 65,000 yields the process
 * dies inside ThreadSanitizer. Sending the jump through longjmp, which it
 * does intercept, keeps its shadow stack in step with the real one. (The
 * fortify check itself, a jump to a frame that is gone, is not lost: the
 * AddressSanitizer build keeps it.)
 */
#include <setjmp.h>

void __longjmp_chk(jmp_buf env, int val) __attribute__((noreturn));

void __longjmp_chk(jmp_buf env, int val)
{
    longjmp(env, val);
}
