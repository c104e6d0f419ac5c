/*
 * util.c - small pure helpers: JSON string escaping, name and control
 * parsing. Any thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luasvc.h"

size_t lsvc_json_str(char *buf, size_t len, size_t pos, const char *s)
{
#define PUT(c)                  \
    do {                        \
        if (pos + 1 < len)      \
            buf[pos] = (c);     \
        pos++;                  \
    } while (0)
    PUT('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            PUT('\\');
            PUT((char)c);
        } else if (c == '\n') {
            PUT('\\');
            PUT('n');
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            for (char *e = esc; *e; e++)
                PUT(*e);
        } else {
            PUT((char)c);
        }
    }
    PUT('"');
    if (len)
        buf[pos < len ? pos : len - 1] = '\0';
    return pos;
#undef PUT
}

bool lsvc_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 80 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    if (name[0] == '-' || name[0] == ' ' || name[n - 1] == ' ')
        return false;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == '/' || *p == '\\' || *p == 0x7f)
            return false;
    return true;
}

int lsvc_parse_control(const char *s)
{
    if (!s || !*s)
        return -1;
    if (s[0] >= '0' && s[0] <= '9') {
        char *end;
        long v = strtol(s, &end, 10);
        if (*end || v < 1 || v > LSVC_CTRL_USER_MAX)
            return -1;
        return (int)v;
    }
    return lsvc_control_from_name(s);
}

int lsvc_parse_name_json(const char *cmd, int argc, char **argv, const char **name, bool *json)
{
    *name = NULL;
    *json = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            *json = true;
        } else if (!*name && argv[i][0] != '-') {
            *name = argv[i];
        } else {
            fprintf(stderr, "luasvc %s: unexpected argument '%s'\n", cmd, argv[i]);
            *name = NULL;
            return 2;
        }
    }
    return 0;
}
