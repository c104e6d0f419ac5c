/*
 * win32_main.c - the luasvc.exe command line. The command line arrives as
 * UTF-16 (wmain) and becomes UTF-8 at once: everything past this point,
 * Lua included, speaks UTF-8; the Win32 calls convert back. Main thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "../frontend.h"
#include "win32.h"

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
        lsvc_help(stderr, NULL);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        return lsvc_help(stdout, NULL);
    if (strcmp(cmd, "service") == 0) /* the service manager's, not in the help */
        return lsvc_win32_service_main(argc - 2, argv + 2);
    if (lsvc_usage_wants_help(argc - 2, argv + 2))
        return lsvc_help(stdout, cmd);
    if (strcmp(cmd, "run") == 0)
        return lsvc_console_run(cmd, argc - 2, argv + 2); /* console.c */
    if (strcmp(cmd, "check") == 0)
        return lsvc_check_main(argc - 2, argv + 2); /* check.c */
    if (strcmp(cmd, "listen") == 0)
        return lsvc_listen(argc - 2, argv + 2); /* listen.c */
    if (strcmp(cmd, "help") == 0) {
        if (argc > 3)
            return lsvc_usage_error("help", "one VERB at most");
        return lsvc_help(stdout, argc == 3 ? argv[2] : NULL);
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("luasvc %s\n", LSVC_VERSION);
        return 0;
    }
    int rc = lsvc_win32_client(cmd, argc - 2, argv + 2);
    if (rc >= 0)
        return rc;
    fprintf(stderr, "luasvc: unknown command '%s'\n", cmd);
    lsvc_help(stderr, NULL);
    return 2;
}
