/*
 * alloc.c - the allocator of a service's Lua state, with the script's
 * `memory_limit`: past it an allocation that grows the state is refused,
 * which Lua turns (after an emergency collection) into a "not enough
 * memory" error in that service only. Freeing and shrinking always
 * succeed. Once the service is stopping, `reserve` more bytes are allowed,
 * so a service that ran out of memory can still run its stop handler: a
 * STOP is never refused for want of memory.
 *
 * Worker thread only (the state's own allocator); the counters are read by
 * the worker too.
 */
#include <stdlib.h>

#include "primitives.h"

void *lsvc_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    lsvc_alloc *a = ud;
    if (!ptr)
        osize = 0; /* then osize is the kind of object, not a size */
    if (nsize == 0) {
        free(ptr);
        a->used -= osize;
        return NULL;
    }
    if (a->limit && nsize > osize) {
        size_t allowed = a->limit + (a->stopping ? a->reserve : 0);
        if (a->used - osize + nsize > allowed) {
            a->refused++;
            return NULL;
        }
    }
    void *p = realloc(ptr, nsize);
    if (!p)
        return NULL; /* Lua keeps ptr when a shrink fails */
    a->used = a->used - osize + nsize;
    if (a->used > a->peak)
        a->peak = a->used;
    return p;
}
