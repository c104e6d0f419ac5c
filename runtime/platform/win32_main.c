/*
 * win32_main.c - the luasvc.exe command line. The command line arrives as
 * UTF-16 (wmain) and becomes UTF-8 at once: everything past this point,
 * Lua included, speaks UTF-8; the Win32 calls convert back. Main thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "win32.h"

static const char usage_text[] =
    "usage: luasvc COMMAND ...\n"
    "  run [--log-level LEVEL] [--no-watch] [--watch-interval MS]\n"
    "      [--allow-insecure-script] SCRIPT... [-- ARGS]\n"
    "                                              host services in the foreground\n"
    "  check SCRIPT...                             validate scripts without starting them\n"
    "  install SCRIPT... [options]                 register with the service manager\n"
    "      --name N  --display-name S  --description S\n"
    "      --start auto|delayed-auto|demand|disabled  --depend NAME (repeatable)\n"
    "      --account NAME [--password P]  --preshutdown-timeout MS\n"
    "      --restart-on-failure MS  --log-file PATH  --no-watch\n"
    "  uninstall NAME                              stop (waiting) and delete\n"
    "  start NAME [ARGS...]                        start, waiting for RUNNING\n"
    "  stop|pause|continue|reload|interrogate NAME send a control (stop waits)\n"
    "  control NAME CODE                           CODE: 128-255 or a control name\n"
    "  status [NAME] [--json]                      state, accepted controls, exit codes\n"
    "  listen SLOT [--json]                        print a mailslot's messages until Ctrl+C\n"
    "  version\n";

int wmain(int argc, wchar_t **wargv)
{
    SetConsoleOutputCP(CP_UTF8);
    char **argv = calloc((size_t)argc + 1, sizeof *argv);
    if (!argv)
        return 1;
    for (int i = 0; i < argc; i++)
        if (!(argv[i] = lsvc_utf8(wargv[i]))) {
            fprintf(stderr, "luasvc: argument %d is not valid UTF-16\n", i);
            return 2;
        }
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0)
        return lsvc_win32_console_run(argc - 2, argv + 2, false);
    if (strcmp(cmd, "check") == 0)
        return lsvc_check_main(argc - 2, argv + 2); /* check.c */
    if (strcmp(cmd, "listen") == 0)
        return lsvc_listen(argc - 2, argv + 2); /* listen.c */
    if (strcmp(cmd, "service") == 0)
        return lsvc_win32_service_main(argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("luasvc %s\n", LSVC_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    int rc = lsvc_win32_client(cmd, argc - 2, argv + 2);
    if (rc >= 0)
        return rc;
    fprintf(stderr, "luasvc: unknown command '%s'\n%s", cmd, usage_text);
    return 2;
}
