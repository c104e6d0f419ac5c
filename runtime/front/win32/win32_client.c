/*
 * win32_client.c - the client commands' dispatcher: which verb goes where
 * (lsvc_win32_client). The families it calls: win32_install.c (install,
 * uninstall), win32_control.c (start and the controls), win32_status.c
 * (status), win32_eval.c (eval and attach, over the service's console
 * pipe); they speak to the SCM through win32_svcapi.c. Nothing calls
 * back into this file. Runs in the luasvc client process, on its main
 * thread.
 *
 * Exit status: 0 done, 1 refused or failed (the service manager's or the
 * service's error printed), 2 bad usage.
 */
#include <stdio.h>
#include <string.h>
#include <windows.h>

#include "../frontend.h"
#include "win32.h"

int lsvc_win32_client(const char *cmd, int argc, char **argv)
{
    if (strcmp(cmd, "install") == 0)
        return lsvc_win32_install(argc, argv);
    if (strcmp(cmd, "status") == 0) {
        const char *name;
        bool json;
        if (lsvc_parse_name_json("status", argc, argv, &name, &json) != 0)
            return 2;
        return lsvc_win32_status(name, json);
    }
    if (strcmp(cmd, "uninstall") == 0) {
        if (argc != 1)
            return lsvc_usage_error(cmd, "%s", argc < 1 ? "no NAME given" : "one NAME");
        return lsvc_win32_uninstall(argv[0]);
    }
    lsvc_wait_args w;
    if (strcmp(cmd, "start") == 0) { /* waits always: --wait changes nothing */
        if (lsvc_parse_wait(cmd, argc, argv, true, &w) != 0)
            return 2;
        return lsvc_win32_start(w.name, w.nargs, w.args, w.timeout_ms);
    }
    if (strcmp(cmd, "control") == 0) {
        if (argc != 2)
            return lsvc_usage_error("control", "NAME and CODE");
        int code = lsvc_usage_control(argv[1]);
        return code < 0 ? 2 : lsvc_win32_control(argv[0], (DWORD)code, 0);
    }
    if (strcmp(cmd, "stop") == 0 || strcmp(cmd, "pause") == 0 || strcmp(cmd, "continue") == 0) {
        if (lsvc_parse_wait(cmd, argc, argv, false, &w) != 0)
            return 2;
        return lsvc_win32_control(w.name, (DWORD)lsvc_control_from_name(cmd), w.timeout_ms);
    }
    if (strcmp(cmd, "eval") == 0) {
        if (argc != 2)
            return lsvc_usage_error(cmd, "NAME and CHUNK");
        return lsvc_win32_eval(argv[0], argv[1]);
    }
    if (strcmp(cmd, "attach") == 0) {
        if (argc != 1)
            return lsvc_usage_error(cmd, "one NAME");
        return lsvc_win32_attach(argv[0]);
    }
    if (strcmp(cmd, "reload") == 0 || strcmp(cmd, "interrogate") == 0) {
        if (argc != 1)
            return lsvc_usage_error(cmd, "one NAME");
        return lsvc_win32_control(argv[0], (DWORD)lsvc_control_from_name(cmd), 0);
    }
    return -1;
}
