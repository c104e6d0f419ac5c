/*
 * model.c - the Windows SCM service model: states, controls, accepted
 * controls, exit codes and valid transitions, with the SCM's numbers.
 * Pure functions on plain values: any thread may call them.
 */
#include <stdio.h>
#include <string.h>

#include "pure.h"

static const char *const state_names[] = {
    NULL,      "STOPPED",          "START_PENDING", "STOP_PENDING",
    "RUNNING", "CONTINUE_PENDING", "PAUSE_PENDING", "PAUSED",
};

const char *lsvc_state_name(lsvc_state s)
{
    return (s >= LSVC_STOPPED && s <= LSVC_PAUSED) ? state_names[s] : NULL;
}

int lsvc_state_from_name(const char *name)
{
    for (int i = LSVC_STOPPED; i <= LSVC_PAUSED; i++)
        if (strcmp(state_names[i], name) == 0)
            return i;
    return -1;
}

bool lsvc_state_is_pending(lsvc_state s)
{
    return s == LSVC_START_PENDING || s == LSVC_STOP_PENDING || s == LSVC_PAUSE_PENDING ||
           s == LSVC_CONTINUE_PENDING;
}

static const struct {
    uint32_t code;
    const char *name;
} controls[] = {
    {LSVC_CTRL_STOP, "stop"},
    {LSVC_CTRL_PAUSE, "pause"},
    {LSVC_CTRL_CONTINUE, "continue"},
    {LSVC_CTRL_INTERROGATE, "interrogate"},
    {LSVC_CTRL_SHUTDOWN, "shutdown"},
    {LSVC_CTRL_PARAMCHANGE, "paramchange"},
    {LSVC_CTRL_POWEREVENT, "powerevent"},
    {LSVC_CTRL_SESSIONCHANGE, "sessionchange"},
    {LSVC_CTRL_PRESHUTDOWN, "preshutdown"},
};

const char *lsvc_control_name(uint32_t code)
{
    for (size_t i = 0; i < sizeof controls / sizeof controls[0]; i++)
        if (controls[i].code == code)
            return controls[i].name;
    if (code >= LSVC_CTRL_USER_MIN && code <= LSVC_CTRL_USER_MAX)
        return "user";
    return NULL;
}

int lsvc_control_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof controls / sizeof controls[0]; i++)
        if (strcmp(controls[i].name, name) == 0)
            return (int)controls[i].code;
    if (strcmp(name, "reload") == 0) /* the CLI's word for PARAMCHANGE */
        return LSVC_CTRL_PARAMCHANGE;
    return -1;
}

static const struct {
    uint32_t bit;
    const char *name;
} accepts[] = {
    {LSVC_ACCEPT_STOP, "stop"},
    {LSVC_ACCEPT_PAUSE_CONTINUE, "pause_continue"},
    {LSVC_ACCEPT_SHUTDOWN, "shutdown"},
    {LSVC_ACCEPT_PARAMCHANGE, "paramchange"},
    {LSVC_ACCEPT_POWEREVENT, "powerevent"},
    {LSVC_ACCEPT_SESSIONCHANGE, "sessionchange"},
    {LSVC_ACCEPT_PRESHUTDOWN, "preshutdown"},
};

const char *lsvc_accept_name(uint32_t bit)
{
    for (size_t i = 0; i < sizeof accepts / sizeof accepts[0]; i++)
        if (accepts[i].bit == bit)
            return accepts[i].name;
    return NULL;
}

int lsvc_accept_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof accepts / sizeof accepts[0]; i++)
        if (strcmp(accepts[i].name, name) == 0)
            return (int)accepts[i].bit;
    return -1;
}

uint32_t lsvc_accept_bit_for_control(uint32_t code)
{
    switch (code) {
    case LSVC_CTRL_STOP: return LSVC_ACCEPT_STOP;
    case LSVC_CTRL_PAUSE:
    case LSVC_CTRL_CONTINUE: return LSVC_ACCEPT_PAUSE_CONTINUE;
    case LSVC_CTRL_SHUTDOWN: return LSVC_ACCEPT_SHUTDOWN;
    case LSVC_CTRL_PARAMCHANGE: return LSVC_ACCEPT_PARAMCHANGE;
    case LSVC_CTRL_POWEREVENT: return LSVC_ACCEPT_POWEREVENT;
    case LSVC_CTRL_SESSIONCHANGE: return LSVC_ACCEPT_SESSIONCHANGE;
    case LSVC_CTRL_PRESHUTDOWN: return LSVC_ACCEPT_PRESHUTDOWN;
    default: return 0;
    }
}

/*
 * The transitions a service may report. STOPPED can be reached from every
 * state (a failure ends anywhere); pending states lead to their targets or
 * back (a failed pause returns to RUNNING).
 */
bool lsvc_transition_valid(lsvc_state from, lsvc_state to)
{
    if (!lsvc_state_name(from) || !lsvc_state_name(to))
        return false;
    if (to == LSVC_STOPPED)
        return from != LSVC_STOPPED;
    switch (from) {
    case LSVC_STOPPED: return to == LSVC_START_PENDING;
    case LSVC_START_PENDING: return to == LSVC_RUNNING || to == LSVC_STOP_PENDING;
    case LSVC_RUNNING: return to == LSVC_STOP_PENDING || to == LSVC_PAUSE_PENDING;
    case LSVC_PAUSE_PENDING:
        return to == LSVC_PAUSED || to == LSVC_RUNNING || to == LSVC_STOP_PENDING;
    case LSVC_PAUSED: return to == LSVC_CONTINUE_PENDING || to == LSVC_STOP_PENDING;
    case LSVC_CONTINUE_PENDING:
        return to == LSVC_RUNNING || to == LSVC_PAUSED || to == LSVC_STOP_PENDING;
    case LSVC_STOP_PENDING: return false;
    }
    return false;
}

/*
 * The SCM's answers, in the order it checks: a stopped service takes no
 * control (1062); codes that do not exist are invalid parameters (87);
 * INTERROGATE is always answered; anything else while START_PENDING or
 * STOP_PENDING is 1061 (the SCM sees an empty mask then); a control the
 * service does not accept is 1052. Pause/continue
 * while the other one is pending is 1061 too: the service cannot take it yet.
 */
uint32_t lsvc_control_check(lsvc_state state, uint32_t accepted, uint32_t code, bool user_handled)
{
    if (state == LSVC_STOPPED)
        return LSVC_ERROR_SERVICE_NOT_ACTIVE;
    if (!lsvc_control_name(code))
        return (code >= 16 && code < LSVC_CTRL_USER_MIN) || code > LSVC_CTRL_USER_MAX
                   ? LSVC_ERROR_INVALID_PARAMETER
                   : LSVC_ERROR_INVALID_SERVICE_CONTROL;
    if (code == LSVC_CTRL_INTERROGATE)
        return LSVC_NO_ERROR;
    if (state == LSVC_START_PENDING || state == LSVC_STOP_PENDING)
        return LSVC_ERROR_SERVICE_CANNOT_ACCEPT_CTRL;
    if (code >= LSVC_CTRL_USER_MIN) {
        if (!user_handled)
            return LSVC_ERROR_INVALID_SERVICE_CONTROL;
    } else if (!(accepted & lsvc_accept_bit_for_control(code))) {
        return LSVC_ERROR_INVALID_SERVICE_CONTROL;
    }
    if ((code == LSVC_CTRL_PAUSE || code == LSVC_CTRL_CONTINUE) &&
        (state == LSVC_PAUSE_PENDING || state == LSVC_CONTINUE_PENDING))
        return LSVC_ERROR_SERVICE_CANNOT_ACCEPT_CTRL;
    return LSVC_NO_ERROR;
}

lsvc_state lsvc_control_pending_state(uint32_t code)
{
    switch (code) {
    case LSVC_CTRL_STOP:
    case LSVC_CTRL_SHUTDOWN:
    case LSVC_CTRL_PRESHUTDOWN: return LSVC_STOP_PENDING;
    case LSVC_CTRL_PAUSE: return LSVC_PAUSE_PENDING;
    case LSVC_CTRL_CONTINUE: return LSVC_CONTINUE_PENDING;
    default: return 0;
    }
}

int lsvc_exit_status(lsvc_exit e)
{
    if (e.win32 == LSVC_NO_ERROR)
        return 0;
    if (e.win32 == LSVC_ERROR_SERVICE_SPECIFIC_ERROR) {
        int s = (int)(e.service_specific & 0xff);
        return s ? s : 1;
    }
    return 1;
}

const char *lsvc_win32_message(uint32_t code)
{
    switch (code) {
    case LSVC_NO_ERROR: return "The operation completed successfully.";
    case LSVC_ERROR_INVALID_PARAMETER: return "The parameter is incorrect.";
    case LSVC_ERROR_CALL_NOT_IMPLEMENTED: return "This function is not supported on this system.";
    case LSVC_ERROR_INVALID_SERVICE_CONTROL:
        return "The requested control is not valid for this service.";
    case LSVC_ERROR_SERVICE_REQUEST_TIMEOUT:
        return "The service did not respond to the start or control request in a timely fashion.";
    case LSVC_ERROR_SERVICE_CANNOT_ACCEPT_CTRL:
        return "The service cannot accept control messages at this time.";
    case LSVC_ERROR_SERVICE_NOT_ACTIVE: return "The service has not been started.";
    case LSVC_ERROR_SERVICE_SPECIFIC_ERROR:
        return "The service has returned a service-specific error code.";
    case LSVC_ERROR_PROCESS_ABORTED: return "The process terminated unexpectedly.";
    case LSVC_ERROR_TIMEOUT: return "This operation returned because the timeout period expired.";
    case LSVC_ERROR_NOT_ENOUGH_QUOTA:
        return "Not enough quota is available to process this command (the service's "
               "control queue is full).";
    default: return "Unknown error.";
    }
}

const char *lsvc_exit_text(lsvc_exit e, const char *text, char *buf, size_t len)
{
    if (e.win32 == LSVC_NO_ERROR)
        snprintf(buf, len, "STOPPED");
    else if (e.win32 == LSVC_ERROR_SERVICE_SPECIFIC_ERROR)
        snprintf(buf, len, "STOPPED with service-specific exit code %u", e.service_specific);
    else
        snprintf(buf, len, "STOPPED with error %u: %s", e.win32,
                 text ? text : lsvc_win32_message(e.win32));
    return buf;
}

void lsvc_event_from_scm(lsvc_event *ev, uint32_t code, uint32_t event_type, const void *data)
{
    memset(ev, 0, sizeof *ev);
    ev->code = code;
    ev->event_type = event_type;
    const unsigned char *p = data;
    if (!p)
        return;
    if (code == LSVC_CTRL_SESSIONCHANGE) {
        /* WTSSESSION_NOTIFICATION { DWORD cbSize; DWORD dwSessionId; } */
        uint32_t size, session;
        memcpy(&size, p, 4);
        memcpy(&session, p + 4, 4);
        if (size >= 8)
            ev->session_id = session;
    } else if (code == LSVC_CTRL_POWEREVENT && event_type == LSVC_PBT_POWERSETTINGCHANGE) {
        /* POWERBROADCAST_SETTING { GUID PowerSetting; DWORD DataLength;
         * UCHAR Data[]; }, GUID { DWORD; WORD; WORD; BYTE[8]; } */
        uint32_t d1, len;
        uint16_t d2, d3;
        memcpy(&d1, p, 4);
        memcpy(&d2, p + 4, 2);
        memcpy(&d3, p + 6, 2);
        const unsigned char *d4 = p + 8;
        snprintf(ev->power_setting, sizeof ev->power_setting,
                 "{%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X}", (unsigned)d1, (unsigned)d2,
                 (unsigned)d3, d4[0], d4[1], d4[2], d4[3], d4[4], d4[5], d4[6], d4[7]);
        memcpy(&len, p + 16, 4);
        if (len > sizeof ev->power_data)
            len = sizeof ev->power_data; /* settings are a DWORD or a GUID */
        memcpy(ev->power_data, p + 20, len);
        ev->power_data_len = (uint8_t)len;
    }
}
