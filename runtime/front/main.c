/*
 * main.c - the luasvc command line: run and check host services; control,
 * stop, pause, continue, reload and status talk to running hosts; new
 * scaffolds a script. Main thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "frontend.h"
#include "posix/posix.h"

static const char template_text[] =
    "-- %s.lua: a luasvc service. Run it with: luasvc run %s.lua\n"
    "-- Check it with: luasvc check --strict %s.lua. Editors with lua-language-server\n"
    "-- know ctx and the fields below from luasvc's types (see .luarc.json).\n"
    "---@type luasvc.Script\n"
    "local S = {\n"
    "  name = \"%s\",\n"
    "  description = \"What %s does\",\n"
    "  accepts = { \"stop\", \"pause_continue\", \"paramchange\", \"shutdown\" },\n"
    "}\n"
    "\n"
    "function S.start(ctx, args)\n"
    "  ctx.data.count = ctx.data.count or 0\n"
    "end\n"
    "\n"
    "function S.run(ctx)\n"
    "  while ctx:sleep(1000) do\n"
    "    ctx.data.count = ctx.data.count + 1\n"
    "    ctx:log(\"info\", \"tick %%d\", ctx.data.count)\n"
    "  end\n"
    "end\n"
    "\n"
    "function S.stop(ctx)\n"
    "  ctx:log(\"info\", \"stopped after %%d ticks\", ctx.data.count)\n"
    "end\n"
    "\n"
    "S.controls = {\n"
    "  [128] = function(ctx, code) ctx:log(\"info\", \"control %%d\", code) end,\n"
    "}\n"
    "\n"
    "return S\n";

/* s as one shell word: as it is when that is safe, else single-quoted. */
static void put_shell_word(FILE *f, const char *s)
{
    if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                        "_-.,/+=:@%") == strlen(s)) {
        fputs(s, f);
        return;
    }
    fputc('\'', f);
    for (; *s; s++)
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    fputc('\'', f);
}

/*
 * luasvc new PATH: PATH.lua (PATH itself when it ends in .lua), in PATH's
 * directory (which must exist), the service named after PATH's last part;
 * never over an existing file (O_EXCL); a .luarc.json beside it.
 */
static int cmd_new(int argc, char **argv)
{
    if (argc != 1)
        return lsvc_usage_error("new", "one PATH");
    char path[PATH_MAX], name[256], dir[PATH_MAX];
    const char *arg = argv[0], *slash = strrchr(arg, '/');
    size_t n = strlen(slash ? slash + 1 : arg);
    bool has_ext = n > 4 && strcmp(arg + strlen(arg) - 4, ".lua") == 0;
    snprintf(name, sizeof name, "%.*s", (int)(has_ext ? n - 4 : n), slash ? slash + 1 : arg);
    if (!lsvc_name_valid(name) || strchr(name, '%') || strchr(name, '"') || n >= sizeof name) {
        fprintf(stderr,
                "luasvc new: PATH '%s': its last part '%s' cannot name a service (1-80 "
                "characters, no %%, \", \\ or control characters, not starting with -)\n",
                arg, name);
        return 2;
    }
    if (snprintf(path, sizeof path, "%s%s", arg, has_ext ? "" : ".lua") >= (int)sizeof path)
        return lsvc_usage_error("new", "PATH '%s' is too long", arg);
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - arg) + (slash == arg) : 1,
             slash ? arg : ".");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        fprintf(stderr, "luasvc new: %s: %s%s\n", path, strerror(errno),
                errno == EEXIST ? " (not overwritten)" : "");
        return 1;
    }
    FILE *f = fdopen(fd, "w");
    fprintf(f, template_text, name, name, name, name, name);
    fclose(f);
    printf("wrote %s (service '%s'); run it with: luasvc run ", path, name);
    put_shell_word(stdout, path);
    putchar('\n');
    return lsvc_write_luarc(dir); /* posix_luarc.c */
}

static int cmd_start(int argc, char **argv)
{
    lsvc_wait_args w;
    if (lsvc_parse_wait("start", argc, argv, false, &w) != 0)
        return 2;
    /* systemctl start waits for READY=1 (RUNNING) already; --timeout
     * bounds that wait */
    int rc = w.timeout_ms ? lsvc_unit_systemctl_wait(w.name, "start", w.timeout_ms)
                          : lsvc_unit_systemctl(w.name, "start");
    if (rc >= 0)
        return rc;
    fprintf(stderr,
            "luasvc start: no systemd unit '%s' installed by luasvc (luasvc install SCRIPT "
            "--systemd [--user]); to run a script in the foreground: luasvc run SCRIPT\n",
            w.name);
    return 1;
}

static int cmd_status(int argc, char **argv)
{
    const char *name;
    bool json;
    char unit_svc[128];
    if (lsvc_parse_name_json("status", argc, argv, &name, &json) != 0)
        return 2;
    return lsvc_client_status(name ? lsvc_unit_service_name(name, unit_svc, sizeof unit_svc) : NULL,
                              json);
}

static int cmd_control(int argc, char **argv)
{
    char unit_svc[128];
    if (argc != 2)
        return lsvc_usage_error("control", "NAME and CODE");
    int code = lsvc_usage_control(argv[1]);
    if (code < 0)
        return 2;
    return lsvc_client_control(lsvc_unit_service_name(argv[0], unit_svc, sizeof unit_svc), code);
}

/* reload, interrogate NAME */
static int cmd_named_control(const char *cmd, int argc, char **argv)
{
    char unit_svc[128];
    if (argc != 1)
        return lsvc_usage_error(cmd, "one NAME");
    /* An installed unit is reloaded by its manager, which then knows. */
    if (strcmp(cmd, "reload") == 0) {
        int rc = lsvc_unit_systemctl(argv[0], cmd);
        if (rc >= 0)
            return rc;
    }
    return lsvc_client_control(lsvc_unit_service_name(argv[0], unit_svc, sizeof unit_svc),
                               lsvc_control_from_name(cmd));
}

/* stop, pause, continue NAME [--wait] [--timeout SECONDS] */
static int cmd_waiting_control(const char *cmd, int argc, char **argv)
{
    char unit_svc[128];
    lsvc_wait_args w;
    if (lsvc_parse_wait(cmd, argc, argv, false, &w) != 0)
        return 2;
    /* An installed unit is stopped by its manager, which then knows;
     * systemctl stop waits for the stop already. */
    if (strcmp(cmd, "stop") == 0) {
        int rc = w.timeout_ms ? lsvc_unit_systemctl_wait(w.name, cmd, w.timeout_ms)
                              : lsvc_unit_systemctl(w.name, cmd);
        if (rc >= 0)
            return rc;
    }
    const char *svc = lsvc_unit_service_name(w.name, unit_svc, sizeof unit_svc);
    int code = lsvc_control_from_name(cmd);
    if (w.wait || w.timeout_ms) /* --timeout implies --wait */
        return lsvc_client_control_wait(cmd, svc, code, w.timeout_ms);
    return lsvc_client_control(svc, code);
}

/* eval NAME CHUNK, attach NAME */
static int cmd_console(const char *cmd, int argc, char **argv)
{
    char unit_svc[128];
    bool eval = strcmp(cmd, "eval") == 0;
    if (argc != (eval ? 2 : 1))
        return lsvc_usage_error(cmd, eval ? "NAME and CHUNK" : "one NAME");
    const char *name = lsvc_unit_service_name(argv[0], unit_svc, sizeof unit_svc);
    if (eval)
        return lsvc_client_eval(name, argv[1]);
    return lsvc_client_attach(name);
}

static int cmd_help(int argc, char **argv)
{
    if (argc > 1)
        return lsvc_usage_error("help", "one VERB at most");
    return lsvc_help(stdout, argc ? argv[0] : NULL);
}

static int cmd_version(int argc, char **argv)
{
    (void)argv;
    if (argc)
        return lsvc_usage_error("version", "no arguments");
    printf("luasvc %s\n", LSVC_VERSION);
    return 0;
}

/* The verb's command with its arguments (argv[0] the first after the
 * verb); -1 for a verb this platform does not know. */
static int dispatch(const char *cmd, int argc, char **argv)
{
    if (strcmp(cmd, "run") == 0) {
        int init_status = lsvc_init_if_pid1(); /* a container's PID 1: reap, forward */
        if (init_status >= 0)
            return init_status;
    }
    if (strcmp(cmd, "run") == 0) {
        int rc = lsvc_console_run(cmd, argc, argv); /* console.c */
        if (lsvc_fence_pool_busy()) {
            /* libuv's pool still works on a stopped service's request (a
             * FIFO's open): exit without joining its threads at exit */
            fflush(NULL);
            _exit(rc);
        }
        return rc;
    }
    if (strcmp(cmd, "check") == 0)
        return lsvc_check_main(argc, argv); /* check.c */
    if (strcmp(cmd, "help") == 0)
        return cmd_help(argc, argv);
    if (strcmp(cmd, "version") == 0)
        return cmd_version(argc, argv);
    if (strcmp(cmd, "new") == 0)
        return cmd_new(argc, argv);
    if (strcmp(cmd, "listen") == 0)
        return lsvc_listen(argc, argv); /* listen.c */
    if (strcmp(cmd, "install") == 0)
        return lsvc_install_main(argc, argv);
    if (strcmp(cmd, "uninstall") == 0)
        return lsvc_uninstall_main(argc, argv);
    if (strcmp(cmd, "start") == 0)
        return cmd_start(argc, argv);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(argc, argv);
    if (strcmp(cmd, "control") == 0)
        return cmd_control(argc, argv);
    if (strcmp(cmd, "stop") == 0 || strcmp(cmd, "pause") == 0 || strcmp(cmd, "continue") == 0)
        return cmd_waiting_control(cmd, argc, argv);
    if (strcmp(cmd, "reload") == 0 || strcmp(cmd, "interrogate") == 0)
        return cmd_named_control(cmd, argc, argv);
    if (strcmp(cmd, "eval") == 0 || strcmp(cmd, "attach") == 0)
        return cmd_console(cmd, argc, argv);
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        lsvc_help(stderr, NULL);
        return 2;
    }
    /* One malloc arena: each thread's own would cost a 128 MB mapping and a
     * few hundred microseconds of a start, for no gain (one Lua state per
     * thread, little contention). */
    mallopt(M_ARENA_MAX, 1);
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        return lsvc_help(stdout, NULL);
    if (strcmp(cmd, "--version") == 0)
        return cmd_version(0, NULL);
    if (lsvc_usage_wants_help(argc - 2, argv + 2))
        return lsvc_help(stdout, cmd);
    int rc = dispatch(cmd, argc - 2, argv + 2);
    if (rc >= 0)
        return rc;
    fprintf(stderr, "luasvc: unknown command '%s'\n", cmd);
    lsvc_help(stderr, NULL);
    return 2;
}
