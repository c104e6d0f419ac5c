/*
 * main.c - the luasvc command line: run and check host services; control,
 * stop, pause, continue, reload and status talk to running hosts; new
 * scaffolds a script. Main thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "luasvc.h"
#include "platform/posix.h"

static const char usage_text[] =
    "usage: luasvc COMMAND ...\n"
    "  run [--log-level LEVEL] SCRIPT... [-- ARGS]  host services in the foreground\n"
    "  check [--strict] [--json] SCRIPT...         validate scripts without starting them\n"
    "  stop|pause|continue|reload NAME             send a control to a running service\n"
    "                                              (stop, reload: through systemctl for an\n"
    "                                              installed unit)\n"
    "  start NAME                                  start an installed systemd unit\n"
    "  install SCRIPT --systemd [--user] [--unit-dir DIR] [--name NAME]\n"
    "          [--description TEXT] [--restart-on-failure]  write NAME.service\n"
    "  uninstall NAME --systemd [--user]           stop, disable and remove it\n"
    "  control NAME CODE                           CODE: 128-255 or a control name\n"
    "  status [NAME] [--json]                      state, accepted controls, exit codes\n"
    "  new NAME                                    write NAME.lua, a service to start from\n"
    "  listen SLOT [--json]                        print a mailslot's messages until Ctrl+C\n"
    "  version\n";

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

static int cmd_new(const char *name)
{
    if (!lsvc_name_valid(name) || strchr(name, '%') || strchr(name, '"')) {
        fprintf(stderr, "luasvc new: invalid name '%s'\n", name);
        return 2;
    }
    char path[300];
    snprintf(path, sizeof path, "%s.lua", name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        fprintf(stderr, "luasvc new: %s: %s\n", path, strerror(errno));
        return 1;
    }
    FILE *f = fdopen(fd, "w");
    fprintf(f, template_text, name, name, name, name, name);
    fclose(f);
    printf("wrote %s; run it with: luasvc run %s\n", path, path);
    return lsvc_write_luarc(); /* posix_luarc.c */
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    /* One malloc arena: each thread's own would cost a 128 MB mapping and a
     * few hundred microseconds of a start, for no gain (one Lua state per
     * thread, little contention). */
    mallopt(M_ARENA_MAX, 1);
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0)
        return lsvc_console_run(argc - 2, argv + 2, false);
    if (strcmp(cmd, "check") == 0)
        return lsvc_check_main(argc - 2, argv + 2); /* check.c */
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("luasvc %s\n", LSVC_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (strcmp(cmd, "new") == 0) {
        if (argc != 3) {
            fputs("usage: luasvc new NAME\n", stderr);
            return 2;
        }
        return cmd_new(argv[2]);
    }
    if (strcmp(cmd, "listen") == 0)
        return lsvc_listen(argc - 2, argv + 2); /* listen.c */
    if (strcmp(cmd, "install") == 0)
        return lsvc_install_main(argc - 2, argv + 2);
    if (strcmp(cmd, "uninstall") == 0)
        return lsvc_uninstall_main(argc - 2, argv + 2);
    char unit_svc[128];
    if (strcmp(cmd, "start") == 0) {
        if (argc != 3) {
            fputs("usage: luasvc start NAME\n", stderr);
            return 2;
        }
        int rc = lsvc_unit_systemctl(argv[2], "start");
        if (rc >= 0)
            return rc;
        fprintf(stderr,
                "luasvc start: no systemd unit '%s' installed by luasvc (luasvc install SCRIPT "
                "--systemd [--user]); to run a script in the foreground: luasvc run SCRIPT\n",
                argv[2]);
        return 1;
    }
    if (strcmp(cmd, "status") == 0) {
        const char *name;
        bool json;
        if (lsvc_parse_name_json("status", argc - 2, argv + 2, &name, &json) != 0)
            return 2;
        return lsvc_client_status(name ? lsvc_unit_service_name(name, unit_svc, sizeof unit_svc)
                                       : NULL,
                                  json);
    }
    int code = -1;
    if (strcmp(cmd, "control") == 0) {
        if (argc != 4) {
            fputs("usage: luasvc control NAME CODE\n", stderr);
            return 2;
        }
        code = lsvc_parse_control(argv[3]);
        if (code < 0) {
            fprintf(stderr,
                    "luasvc control: bad control '%s': 128-255, or stop, pause, continue, "
                    "interrogate, paramchange, reload, shutdown, preshutdown\n",
                    argv[3]);
            return 2;
        }
        return lsvc_client_control(lsvc_unit_service_name(argv[2], unit_svc, sizeof unit_svc),
                                   code);
    }
    if (strcmp(cmd, "stop") == 0 || strcmp(cmd, "pause") == 0 || strcmp(cmd, "continue") == 0 ||
        strcmp(cmd, "reload") == 0 || strcmp(cmd, "interrogate") == 0) {
        if (argc != 3) {
            fprintf(stderr, "usage: luasvc %s NAME\n", cmd);
            return 2;
        }
        /* An installed unit is stopped and reloaded by its manager, which
         * then knows; the other controls go to the endpoint. */
        if (strcmp(cmd, "stop") == 0 || strcmp(cmd, "reload") == 0) {
            int rc = lsvc_unit_systemctl(argv[2], cmd);
            if (rc >= 0)
                return rc;
        }
        return lsvc_client_control(lsvc_unit_service_name(argv[2], unit_svc, sizeof unit_svc),
                                   lsvc_control_from_name(cmd));
    }
    fprintf(stderr, "luasvc: unknown command '%s'\n%s", cmd, usage_text);
    return 2;
}
