/*
 * luawarn.c - Lua's warn() in a service's state: each warning becomes a
 * log line at level warning under the service's name (the contract's
 * findings, lua/contract.lua, come this way too, so `luasvc run` logs them
 * at every load and `luasvc check` collects them from the log). The worker
 * installs it with lua_setwarnf when it makes the state; it is called on
 * that worker's thread only.
 */
#include <lua.h>
#include <string.h>

#include "private.h"

/* warn("a", "b") arrives as pieces ("a" with tocont, then "b"): one worker
 * per thread, one state per worker, so one pending line per thread. */
static _Thread_local struct {
    char text[2048];
    size_t n;
} pending;

void lsvc__lua_warn(void *ud, const char *msg, int tocont)
{
    lsvc_service *svc = ud;
    /* control messages ("@on", "@off"): a service's warnings are always on */
    if (!tocont && pending.n == 0 && msg[0] == '@')
        return;
    size_t len = strlen(msg), room = sizeof pending.text - 1 - pending.n;
    if (len > room)
        len = room;
    memcpy(pending.text + pending.n, msg, len);
    pending.n += len;
    pending.text[pending.n] = '\0';
    if (tocont)
        return;
    lsvc_log(LSVC_LOG_WARNING, lsvc_service_name(svc), "%s", pending.text);
    pending.n = 0;
}
