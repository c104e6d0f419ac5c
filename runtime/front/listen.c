/*
 * listen.c - `luasvc listen NAME [--json]`: create the slot NAME and print
 * what arrives until Ctrl+C (SIGINT/SIGTERM), then remove the slot.
 *
 * Human-readable by default: a status_slot message (status_slot.c) becomes
 * "TIME SERVICE [STATE] LEVEL: TEXT"; any other message is printed as it
 * is. --json prints one JSON object per line: status_slot messages, and
 * any other message that is one JSON object, as they came (on one line);
 * others as {"text": ...}. On a terminal, what a writer sent is
 * never taken for the terminal's commands or for another line: control
 * characters (newlines too) and C1 controls are shown escaped (\n, \xHH,
 * \u00HH). Main thread only.
 */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend.h"

static bool to_tty; /* stdout is a terminal: escape what a writer sent */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* The string value of "key" in a flat JSON object of ours, unescaped into
 * out (\uXXXX below 0x80 only, which is all lsvc_buf_json writes). Returns
 * false when it is not there. */
static bool json_field(const char *msg, const char *key, char *out, size_t len)
{
    char pat[40];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(msg, pat);
    if (!p || !len)
        return false;
    p += strlen(pat);
    size_t n = 0;
    for (; *p && *p != '"'; p++) {
        char c = *p;
        if (c == '\\') {
            p++;
            switch (*p) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'u': {
                unsigned v = 0;
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit((unsigned char)p[i])) /* stops at the NUL too */
                        return false;
                if (sscanf(p + 1, "%4x", &v) != 1)
                    return false;
                c = v < 0x80 ? (char)v : '?';
                p += 4;
                break;
            }
            case '\0': return false;
            default: c = *p; break;
            }
        }
        if (n + 1 < len)
            out[n++] = c;
    }
    out[n] = '\0';
    return *p == '"';
}

/* Print n bytes a writer sent: as they are, or on a terminal escaped. */
static void put_text(const char *s, size_t n)
{
    if (!to_tty) {
        fwrite(s, 1, n, stdout);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if ((c < 0x20 && c != '\t') || c == 0x7f)
            printf("\\x%02x", c);
        else if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
                 (unsigned char)s[i + 1] <= 0x9f)
            printf("\\u%04x", (unsigned char)s[++i]);
        else
            fputc(c, stdout);
    }
}

static void put_str(const char *s) { put_text(s, strlen(s)); }

/* --json: the message as one line of JSON. One that is a JSON object (the
 * runtime's own, or a writer's) goes as it came, on one line: a valid JSON
 * text has line breaks only between its tokens, where a space does as
 * well. Any other becomes {"text": ...}, up to a NUL. */
static void print_json(const char *msg, size_t len)
{
    char first;
    if (strlen(msg) == len && lsvc_json_valid(msg, len, &first) && first == '{') {
        for (const char *p = msg; *p; p++) { /* on a terminal, C1 controls escaped too */
            size_t run = strcspn(p, "\r\n");
            put_text(p, run);
            p += run;
            if (!*p)
                break;
            fputc(' ', stdout);
        }
        fputc('\n', stdout);
        return;
    }
    size_t n = strlen(msg) < len ? strlen(msg) : len;
    char *buf = malloc(n * 6 + 16), *copy = malloc(n + 1);
    if (buf && copy) {
        memcpy(copy, msg, n);
        copy[n] = '\0';
        lsvc_buf b = lsvc_buf_init(buf, n * 6 + 16);
        lsvc_buf_json(&b, copy);
        printf("{\"text\":%s}\n", buf);
    }
    free(copy);
    free(buf);
}

/* Without --json: a status_slot message as "TIME SERVICE [STATE] LEVEL:
 * TEXT" (what is there of it), any other as it is. */
static void print_line(const char *msg, size_t len)
{
    static char service[256], state[64], when[64], level[32], text[LSVC_SLOT_MAX];
    bool ours = len > 0 && msg[0] == '{' && strlen(msg) == len && strstr(msg, "\"service\":") &&
                strstr(msg, "\"text\":");
    if (!ours || !json_field(msg, "service", service, sizeof service) ||
        !json_field(msg, "text", text, sizeof text)) {
        put_text(msg, len);
        fputc('\n', stdout);
        return;
    }
    if (json_field(msg, "time", when, sizeof when)) {
        put_str(when);
        fputc(' ', stdout);
    }
    put_str(service);
    if (json_field(msg, "state", state, sizeof state)) {
        fputs(" [", stdout);
        put_str(state);
        fputc(']', stdout);
    }
    if (json_field(msg, "level", level, sizeof level)) {
        fputc(' ', stdout);
        put_str(level);
    }
    fputs(": ", stdout);
    put_str(text);
    fputc('\n', stdout);
}

static void print_message(const char *msg, size_t len, bool json)
{
    if (json)
        print_json(msg, len);
    else
        print_line(msg, len);
    fflush(stdout);
}

int lsvc_listen(int argc, char **argv)
{
    const char *name;
    bool json;
    if (lsvc_parse_name_json("listen", argc, argv, &name, &json) != 0 || !name) {
        fputs("usage: luasvc listen NAME [--json]\n", stderr);
        return 2;
    }
    char err[512];
    lsvc_slot_rc rc;
    lsvc_slot *s = lsvc_slot_create(name, NULL, &rc, err, sizeof err);
    if (!s) {
        fprintf(stderr, "luasvc listen: %s\n", err);
        return 1;
    }
    to_tty = isatty(STDOUT_FILENO);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    fprintf(stderr, "luasvc listen: listening on slot %s (Ctrl+C to end)\n", name);
    char *buf = malloc(LSVC_SLOT_MAX + 1);
    int status = 0;
    while (buf && !interrupted) {
        size_t len = 0;
        rc = lsvc_slot_read(s, buf, LSVC_SLOT_MAX, &len, 200, err, sizeof err);
        if (rc == LSVC_SLOT_OK) {
            buf[len] = '\0';
            print_message(buf, len, json);
        } else if (rc == LSVC_SLOT_TRUNCATED || rc == LSVC_SLOT_MALFORMED) {
            fprintf(stderr, "luasvc listen: %s\n", err); /* and go on */
        } else if (rc != LSVC_SLOT_TIMEOUT) {
            fprintf(stderr, "luasvc listen: %s\n", err);
            status = 1;
            break;
        }
    }
    free(buf);
    lsvc_slot_close(s);
    return status;
}
