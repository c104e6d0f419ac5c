/*
 * usage.c - the command line's one table: every verb of this platform's
 * luasvc with its synopsis, what it does, and every option it parses.
 * `luasvc help`, `luasvc help VERB`, `luasvc VERB --help`, `luasvc
 * --help` and every usage error print from it, and the console's parser
 * accepts only the options listed here; spec/help_spec.lua checks the
 * README's command reference against it. Main thread of a client.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "frontend.h"

typedef struct usage_opt {
    const char *name; /* "--log-level" */
    const char *arg;  /* "LEVEL", or NULL for a flag */
    const char *text;
} usage_opt;

typedef struct usage_verb {
    const char *names;    /* "stop|pause": one entry for verbs that share it */
    const char *synopsis; /* what follows the verb */
    const char *text;     /* what it does, one line */
    usage_opt opts[24];   /* ends at a NULL name */
} usage_verb;

#define OPT_LOG_LEVEL                                                                              \
    {                                                                                              \
        "--log-level", "LEVEL", "debug, info, notice, warning or error (default info)"             \
    }
#define OPT_LOG_FILE                                                                               \
    {                                                                                              \
        "--log-file", "PATH",                                                                      \
            "the log's lines to PATH (appended) instead of stderr; reopened on SIGHUP, for an "    \
            "outside logrotate"                                                                    \
    }
#define OPT_LOG_MAX_SIZE                                                                           \
    {                                                                                              \
        "--log-max-size", "SIZE",                                                                  \
            "rotate PATH before a line would take it past SIZE (bytes, or 512k, 10M, 1G): PATH "   \
            "becomes PATH.1, PATH.1 PATH.2, ... (default: never)"                                  \
    }
#define OPT_LOG_KEEP                                                                               \
    {                                                                                              \
        "--log-keep", "N", "rotated files kept, PATH.1 to PATH.N (0-1000, default 5)"              \
    }
#define OPT_INSECURE                                                                               \
    {                                                                                              \
        "--allow-insecure-script", NULL,                                                           \
            "load scripts (and their directories) that others than their owner, root or "          \
            "Administrators could change"                                                          \
    }
#define OPT_JSON(what)                                                                             \
    {                                                                                              \
        "--json", NULL, what                                                                       \
    }
#define OPT_WAIT(what)                                                                             \
    {"--wait", NULL, what},                                                                        \
    {                                                                                              \
        "--timeout", "SECONDS",                                                                    \
            "give up waiting after SECONDS (0.5, 30; implies --wait): exit 1, saying the state "   \
            "the service is in"                                                                    \
    }

static const usage_verb verbs[] = {
    {"run",
     "[--log-level LEVEL] [--log-file PATH [--log-max-size SIZE] [--log-keep N]] [--no-watch] "
     "[--watch-interval MS] [--allow-insecure-script] [--metrics ADDR:PORT] SCRIPT... [-- ARGS]",
     "host services in the foreground (ARGS: the start arguments)",
     {OPT_LOG_LEVEL,
      OPT_LOG_FILE,
      OPT_LOG_MAX_SIZE,
      OPT_LOG_KEEP,
      {"--no-watch", NULL, "do not watch the scripts: no hot reload (reload NAME still works)"},
      {"--watch-interval", "MS",
       "look at the scripts every MS ms (10-60000), polling even where the system tells of "
       "changes (default 100)"},
      OPT_INSECURE,
      {"--metrics", "ADDR:PORT",
       "serve GET /healthz (200, or 503 and why) and GET /metrics (Prometheus) over HTTP on "
       "ADDR:PORT (127.0.0.1:9100, [::1]:9100, 0.0.0.0:9100 for every interface; port 0: any "
       "free one, logged); off by default"}}},
    {"check",
     "[--strict] [--json] [--allow-insecure-script] SCRIPT...",
     "validate scripts without starting them (no state lines; exit 2: an error, 1: warnings "
     "under --strict)",
     {{"--strict", NULL, "warnings (a field the contract lacks, a handler never called) fail"},
      OPT_JSON("print the findings as one JSON array (file, line, severity, message)"),
      OPT_INSECURE}},
#ifdef _WIN32
    {"install",
     "SCRIPT... [--name N] [--display-name S] [--description S] "
     "[--start auto|delayed-auto|demand|disabled] [--depend NAME]... "
     "[--account NAME [--password P]] [--preshutdown-timeout MS] [--restart-on-failure MS] "
     "[--log-file PATH [--log-max-size SIZE] [--log-keep N]] [--no-watch]",
     "register with the service manager (several scripts share one process)",
     {{"--name", "N", "the service name (default: the script's; one script only)"},
      {"--display-name", "S", "the name the service manager shows (one script only)"},
      {"--description", "S", "the description (one script only)"},
      {"--start", "TYPE", "auto, delayed-auto, demand (default) or disabled"},
      {"--depend", "NAME", "a service to start first (repeatable)"},
      {"--account", "NAME", "the account to run as (default LocalSystem)"},
      {"--password", "P", "its password (with --account)"},
      {"--preshutdown-timeout", "MS", "how long PRESHUTDOWN may take"},
      {"--restart-on-failure", "MS", "restart MS ms after each of the first three failures"},
      {"--log-file", "PATH", "append the service's log lines to PATH"},
      OPT_LOG_MAX_SIZE,
      OPT_LOG_KEEP,
      {"--no-watch", NULL, "do not watch the scripts for hot edits"}}},
    {"uninstall", "NAME", "stop it (waiting) and delete it", {{0}}},
    {"start",
     "NAME [--wait] [--timeout SECONDS] [ARGS...]",
     "start, waiting for RUNNING (ARGS: the start arguments; after -- when one is an option)",
     {OPT_WAIT("wait for RUNNING (always: the SCM's checkpoints are followed)")}},
    {"stop|pause|continue",
     "NAME [--wait] [--timeout SECONDS]",
     "send the control, waiting for the state it leads to (STOPPED, PAUSED, RUNNING)",
     {OPT_WAIT("wait for that state (always: the SCM's checkpoints are followed)")}},
    {"reload|interrogate", "NAME", "send the control (reload: PARAMCHANGE)", {{0}}},
    {"eval",
     "NAME CHUNK",
     "run the Lua CHUNK inside the running service, over its console pipe; print what it "
     "returns and prints; 1 and the error on stderr when it fails",
     {{0}}},
    {"attach",
     "NAME",
     "a Lua console inside the running service, a chunk at a time (Ctrl+Z then Enter, or "
     ".exit, detaches); from a pipe, each chunk's values without prompts",
     {{0}}},
#else
    {"install",
     "SCRIPT --systemd [--user | --user-account NAME | --dynamic-user] [--unit-dir DIR] "
     "[--name NAME] [--description TEXT] [--restart-on-failure] [--network] "
     "[--read-write PATH]... [--capability CAP]... [--allow-jit] [--metrics ADDR:PORT] "
     "[--log-file PATH [--log-max-size SIZE] [--log-keep N]]",
     "write NAME.service, a sandboxed systemd unit that runs the script (a warning when the "
     "binary or the script is in a temporary or build directory)",
     {{"--systemd", NULL, "install a systemd unit (required: the only kind here)"},
      {"--user", NULL, "a user unit (~/.config/systemd/user) instead of a system one"},
      {"--user-account", "NAME",
       "run the system unit as user NAME (User=), its endpoint in /run/luasvc-UNIT"},
      {"--dynamic-user", NULL,
       "run the system unit as a user made at each start (DynamicUser=), its endpoint in "
       "/run/luasvc-UNIT"},
      {"--unit-dir", "DIR", "write the unit to DIR (systemd is not reloaded)"},
      {"--name", "NAME", "the unit's name (default: the script's service name)"},
      {"--description", "TEXT", "the unit's description (default: the script's)"},
      {"--restart-on-failure", NULL, "Restart=on-failure"},
      {"--network", NULL, "start once the network is up (Wants= and After=network-online.target)"},
      {"--read-write", "PATH",
       "PATH (an existing file or directory) writable inside the sandbox (ReadWritePaths=; "
       "repeatable)"},
      {"--capability", "CAP",
       "grant CAP (CAP_NET_BIND_SERVICE, ...) and drop every other (AmbientCapabilities=, "
       "CapabilityBoundingSet=; repeatable; a system unit)"},
      {"--allow-jit", NULL,
       "let the service and its children map writable executable memory, as a JIT does "
       "(MemoryDenyWriteExecute=no)"},
      {"--metrics", "ADDR:PORT",
       "serve health and metrics over HTTP at ADDR:PORT (passed on to luasvc run)"},
      OPT_LOG_FILE,
      OPT_LOG_MAX_SIZE,
      OPT_LOG_KEEP}},
    {"uninstall",
     "NAME --systemd [--user] [--unit-dir DIR]",
     "stop, disable and remove it",
     {{"--systemd", NULL, "a systemd unit (required)"},
      {"--user", NULL, "a user unit"},
      {"--unit-dir", "DIR", "the unit is in DIR (systemd is not asked to stop it)"}}},
    {"start",
     "NAME [--wait] [--timeout SECONDS]",
     "start an installed systemd unit, waiting for RUNNING (systemctl start)",
     {OPT_WAIT("wait for RUNNING (always: systemctl start waits for READY=1)")}},
    {"stop|pause|continue",
     "NAME [--wait] [--timeout SECONDS]",
     "send a control to a running service (stop: through systemctl for an installed unit, "
     "which waits)",
     {OPT_WAIT("return once the service is STOPPED, PAUSED or RUNNING, waiting at most its "
               "stop_timeout + 5 s (without it: once the control is accepted)")}},
    {"reload|interrogate",
     "NAME",
     "send a control to a running service (reload: PARAMCHANGE, through systemctl for an "
     "installed unit)",
     {{0}}},
    {"eval",
     "NAME CHUNK",
     "run the Lua CHUNK inside the running service (ctx and the script's globals in scope); "
     "print what it returns, one value a line, and what it prints; 1 and the error on stderr "
     "when it fails",
     {{0}}},
    {"attach",
     "NAME",
     "an interactive Lua console inside the running service, with its log lines as they come "
     "(Ctrl+D or .exit detaches); from a pipe, each chunk's values without prompts",
     {{0}}},
#endif
    {"control", "NAME CODE", "send a control: CODE is 128-255 or a control name", {{0}}},
    {"status",
     "[NAME] [--json]",
     "state, accepted controls, exit codes: one line per service",
     {OPT_JSON("one JSON object per service instead")}},
#ifndef _WIN32
    {"new",
     "PATH",
     "write PATH.lua (or PATH, ending in .lua), a service to start from named after PATH's last "
     "part, and a .luarc.json beside it; never over an existing file",
     {{0}}},
#endif
    {"listen",
     "SLOT [--json]",
     "print a mailslot's messages until Ctrl+C",
     {OPT_JSON("print each message as received (JSON) instead of a line")}},
    {"version", "", "print the version", {{0}}},
    {"help", "[VERB]", "this text, or a verb's options (also: luasvc VERB --help)", {{0}}},
};

#define NVERBS (sizeof verbs / sizeof verbs[0])

/* The entry whose names include verb, or NULL. */
static const usage_verb *find(const char *verb)
{
    size_t n = strlen(verb);
    for (size_t i = 0; n && i < NVERBS; i++)
        for (const char *p = verbs[i].names; p; p = strchr(p, '|'), p = p ? p + 1 : NULL)
            if (strncmp(p, verb, n) == 0 && (p[n] == '|' || p[n] == '\0'))
                return &verbs[i];
    return NULL;
}

/* Print PREFIX and the words, wrapped at 78 columns (never inside a
 * bracketed group), continuation lines indented under the first word. */
static void wrap(FILE *f, const char *prefix, const char *words)
{
    int col = fprintf(f, "%s", prefix);
    if (col > 0 && prefix[col - 1] != ' ')
        col += fprintf(f, " ");
    int indent = col;
    for (const char *p = words; *p;) {
        const char *q = p;
        int depth = 0;
        while (*q && (*q != ' ' || depth > 0)) { /* one group: "[--a X [--b Y]]" */
            depth += *q == '[';
            depth -= *q == ']';
            q++;
        }
        int len = (int)(q - p);
        if (p != words && col + 1 + len > 78)
            col = fprintf(f, "\n%*s", indent, "") - 1;
        else if (p != words)
            col += fprintf(f, " ");
        col += fprintf(f, "%.*s", len, p);
        p = *q ? q + 1 : q;
    }
    fputc('\n', f);
}

static void synopsis(FILE *f, const char *lead, const usage_verb *v, const char *verb)
{
    char prefix[96];
    snprintf(prefix, sizeof prefix, "%sluasvc %s", lead, verb ? verb : v->names);
    wrap(f, prefix, v->synopsis);
}

bool lsvc_usage_has_option(const char *verb, const char *opt, bool *takes_value)
{
    const usage_verb *v = find(verb);
    for (const usage_opt *o = v ? v->opts : NULL; o && o->name; o++)
        if (strcmp(o->name, opt) == 0) {
            if (takes_value)
                *takes_value = o->arg != NULL;
            return true;
        }
    return false;
}

int lsvc_help(FILE *f, const char *verb)
{
    if (!verb) {
        fputs("usage: luasvc VERB ...  (luasvc help VERB: its options)\n", f);
        for (size_t i = 0; i < NVERBS; i++) {
            synopsis(f, "  ", &verbs[i], NULL);
            wrap(f, "      ", verbs[i].text);
        }
        return 0;
    }
    const usage_verb *v = find(verb);
    if (!v) {
        fprintf(stderr, "luasvc help: unknown verb '%s'\n", verb);
        lsvc_help(stderr, NULL);
        return 2;
    }
    synopsis(f, "usage: ", v, verb);
    wrap(f, "", v->text);
    if (v->opts[0].name)
        fputs("options:\n", f);
    for (const usage_opt *o = v->opts; o->name; o++) {
        char head[96];
        snprintf(head, sizeof head, "  %s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        snprintf(head + strlen(head), sizeof head - strlen(head), "%*s",
                 strlen(head) < 28 ? (int)(29 - strlen(head)) : 1, "");
        wrap(f, head, o->text);
    }
    return 0;
}

int lsvc_usage_error(const char *verb, const char *fmt, ...)
{
    fprintf(stderr, "luasvc %s: ", verb);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    const usage_verb *v = find(verb);
    if (v)
        synopsis(stderr, "usage: ", v, verb);
    return 2;
}

bool lsvc_usage_wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

int lsvc_usage_control(const char *arg)
{
    int code = lsvc_parse_control(arg);
    if (code < 0)
        fprintf(stderr,
                "luasvc control: bad control '%s': 128-255, or stop, pause, continue, "
                "interrogate, paramchange, reload, shutdown, preshutdown\n",
                arg);
    return code;
}
