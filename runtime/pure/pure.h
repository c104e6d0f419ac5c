/*
 * pure.h - the bottom layer: what is true on every thread and needs no
 * other part of the runtime (model.c: the SCM's rules; proto.c: the
 * control endpoint's wire format; util.c: names, JSON, parsing). Any
 * thread. Includes nothing of the runtime's.
 */
#ifndef LSVC_PURE_H
#define LSVC_PURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LSVC_VERSION "0.1.0"

/* printf-style checking; on mingw the build uses mingw's C99 printf
 * (__USE_MINGW_ANSI_STDIO), which gcc checks as gnu_printf, not msvcrt's. */
#ifdef __MINGW32__
#define LSVC_PRINTF(fmt, first) __attribute__((format(gnu_printf, fmt, first)))
#else
#define LSVC_PRINTF(fmt, first) __attribute__((format(printf, fmt, first)))
#endif

/* ---- model.c: the Windows SCM service model (pure, any thread) ---------- */

typedef enum lsvc_state {
    LSVC_STOPPED = 1,
    LSVC_START_PENDING = 2,
    LSVC_STOP_PENDING = 3,
    LSVC_RUNNING = 4,
    LSVC_CONTINUE_PENDING = 5,
    LSVC_PAUSE_PENDING = 6,
    LSVC_PAUSED = 7,
} lsvc_state;

/* Control codes, with the SCM's numbers. */
enum {
    LSVC_CTRL_STOP = 1,
    LSVC_CTRL_PAUSE = 2,
    LSVC_CTRL_CONTINUE = 3,
    LSVC_CTRL_INTERROGATE = 4,
    LSVC_CTRL_SHUTDOWN = 5,
    LSVC_CTRL_PARAMCHANGE = 6,
    LSVC_CTRL_POWEREVENT = 13,
    LSVC_CTRL_SESSIONCHANGE = 14,
    LSVC_CTRL_PRESHUTDOWN = 15,
    LSVC_CTRL_USER_MIN = 128,
    LSVC_CTRL_USER_MAX = 255,
    /* not the SCM's: a console's eval (luasvc eval, attach), queued with
     * the controls so that it is delivered in their order */
    LSVC_CTRL_CONSOLE = 0x10000,
};

/* Accepted-controls bits, with the SCM's SERVICE_ACCEPT_* values. */
enum {
    LSVC_ACCEPT_STOP = 0x001,
    LSVC_ACCEPT_PAUSE_CONTINUE = 0x002,
    LSVC_ACCEPT_SHUTDOWN = 0x004,
    LSVC_ACCEPT_PARAMCHANGE = 0x008,
    LSVC_ACCEPT_POWEREVENT = 0x040,
    LSVC_ACCEPT_SESSIONCHANGE = 0x080,
    LSVC_ACCEPT_PRESHUTDOWN = 0x100,
};

/* Win32 error codes the model speaks. */
enum {
    LSVC_NO_ERROR = 0,
    LSVC_ERROR_INVALID_PARAMETER = 87,
    LSVC_ERROR_CALL_NOT_IMPLEMENTED = 120,
    LSVC_ERROR_INVALID_SERVICE_CONTROL = 1052,
    LSVC_ERROR_SERVICE_REQUEST_TIMEOUT = 1053,
    LSVC_ERROR_SERVICE_CANNOT_ACCEPT_CTRL = 1061,
    LSVC_ERROR_SERVICE_NOT_ACTIVE = 1062,
    LSVC_ERROR_SERVICE_SPECIFIC_ERROR = 1066,
    LSVC_ERROR_PROCESS_ABORTED = 1067,
    LSVC_ERROR_TIMEOUT = 1460,
    LSVC_ERROR_NOT_ENOUGH_QUOTA = 1816, /* a control past the queue's bound */
};

/* Service-specific exit codes the runtime itself uses. */
enum {
    LSVC_EXIT_SCRIPT_ERROR = 1, /* error raised in start or run */
    LSVC_EXIT_LOAD_ERROR = 2,   /* script missing, broken or breaking the contract */
};

/* An exit code is Win32 or service-specific, never both: service_specific
 * is only meaningful when win32 == LSVC_ERROR_SERVICE_SPECIFIC_ERROR. */
typedef struct lsvc_exit {
    uint32_t win32;
    uint32_t service_specific;
} lsvc_exit;

typedef struct lsvc_status {
    lsvc_state state;
    uint32_t controls_accepted; /* as reported: 0 while START/STOP_PENDING */
    lsvc_exit exit;
    uint32_t checkpoint;
    uint32_t wait_hint; /* ms */
    uint64_t seq;       /* service.c: the order of the reports */
} lsvc_status;

const char *lsvc_state_name(lsvc_state s);  /* "RUNNING"; NULL if unknown */
int lsvc_state_from_name(const char *name); /* -1 if unknown */
bool lsvc_state_is_pending(lsvc_state s);
const char *lsvc_control_name(uint32_t code);        /* "stop", "user"; NULL if unknown */
int lsvc_control_from_name(const char *name);        /* -1 if unknown */
const char *lsvc_accept_name(uint32_t bit);          /* "pause_continue"; NULL */
int lsvc_accept_from_name(const char *name);         /* bit, or -1 */
uint32_t lsvc_accept_bit_for_control(uint32_t code); /* 0: needs no bit */
bool lsvc_transition_valid(lsvc_state from, lsvc_state to);
/* What the SCM answers a control in a state: LSVC_NO_ERROR or a Win32 code.
 * user_handled: the script has a handler for this user code (128-255). */
uint32_t lsvc_control_check(lsvc_state state, uint32_t accepted, uint32_t code, bool user_handled);
/* The state a control moves the service into at once, or 0 for none. */
lsvc_state lsvc_control_pending_state(uint32_t code);
/* The process exit status (0-255) for a service exit code. */
int lsvc_exit_status(lsvc_exit e);
const char *lsvc_win32_message(uint32_t code); /* short text for codes above */
/* The one text of a final status, wherever it is shown (log, client,
 * systemd's STATUS=, a status slot): "STOPPED", "STOPPED with
 * service-specific exit code N" or "STOPPED with error N: TEXT" (TEXT:
 * text, or NULL for lsvc_win32_message). Returns buf. */
#define LSVC_EXIT_TEXT_MAX 600
const char *lsvc_exit_text(lsvc_exit e, const char *text, char *buf, size_t len);
/* A control as a front end hands it over (model.c fills it from HandlerEx). */
typedef struct lsvc_event {
    uint32_t code;
    uint32_t event_type; /* SESSIONCHANGE / POWEREVENT subtype */
    uint32_t session_id; /* SESSIONCHANGE: the session it is about */
    /* POWEREVENT's PBT_POWERSETTINGCHANGE: the setting's GUID as
     * "{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}" ("" for none) and its value */
    char power_setting[39];
    uint8_t power_data_len;
    uint8_t power_data[16];
    uint64_t arrived_ns; /* monotonic clock when the handler accepted it */
    /* LSVC_CTRL_CONSOLE: an eval for the worker, with its reply channel
     * (primitives' console.c); its reference goes with the event, and
     * whoever drops the event releases it. NULL for every other control. */
    struct lsvc_console *console;
} lsvc_event;

#define LSVC_PBT_POWERSETTINGCHANGE 0x8013u
/* Fill ev for a control as HandlerEx receives it: code, event type, and
 * what its event data says (data may be NULL), read by the documented
 * layouts of WTSSESSION_NOTIFICATION (SESSIONCHANGE) and
 * POWERBROADCAST_SETTING (POWEREVENT / PBT_POWERSETTINGCHANGE), so that
 * nothing of the SCM's memory outlives the handler call (model.c). */
void lsvc_event_from_scm(lsvc_event *ev, uint32_t code, uint32_t event_type, const void *data);

/* ---- proto.c: the control endpoint's wire format (pure, any thread) ---- */

#define LSVC_PROTO_MAX 512 /* bytes in one request line, newline included */
#define LSVC_PROTO_EVAL_MAX (1u << 20) /* bytes of an EVAL's chunk */

typedef enum lsvc_req_kind {
    LSVC_REQ_CONTROL = 1,
    LSVC_REQ_STATUS = 2,
    LSVC_REQ_EVAL = 3, /* its line is followed by payload_len bytes: the chunk */
    LSVC_REQ_LOG = 4,  /* the service's log lines, streamed until the client goes */
} lsvc_req_kind;

typedef struct lsvc_request {
    lsvc_req_kind kind;
    uint32_t code;
    uint32_t payload_len; /* LSVC_REQ_EVAL: bytes after the line */
    char name[128];
} lsvc_request;

/* Parse one request line: "CONTROL <code> <name>\n", "STATUS <name>\n",
 * "EVAL <length> <name>\n" (the chunk's length, at most
 * LSVC_PROTO_EVAL_MAX: that many bytes follow the line, read by the
 * caller) or "LOG <name>\n". Returns 0, or -1 with a message in err.
 * Never reads past len. */
int lsvc_proto_parse(const char *buf, size_t len, lsvc_request *out, char *err, size_t errlen);

/* ---- util.c ------------------------------------------------------------ */

/* A path separator: '/', and on Windows '\\' too. */
#ifdef _WIN32
#define LSVC_IS_SEP(c) ((c) == '/' || (c) == '\\')
#else
#define LSVC_IS_SEP(c) ((c) == '/')
#endif

/* A bounded text buffer, for every text built piece by piece: appends
 * never write past cap, and the text stays NUL-terminated, cut where it
 * no longer fits. len counts what the whole text needs (as snprintf
 * does), so len >= cap says it was cut. p may be NULL when cap is 0 (to
 * measure). */
typedef struct lsvc_buf {
    char *p;
    size_t cap, len;
} lsvc_buf;
lsvc_buf lsvc_buf_init(char *p, size_t cap); /* empty text */
void lsvc_buf_add(lsvc_buf *b, const char *s);
void lsvc_buf_printf(lsvc_buf *b, const char *fmt, ...) LSVC_PRINTF(2, 3);
/* Append a JSON string literal for s. Valid JSON whatever s holds:
 * control characters escaped, bytes that are not UTF-8 written as U+FFFD. */
void lsvc_buf_json(lsvc_buf *b, const char *s);
/* The name rule of services and slots, for C and Lua (fileguard.c): 1-80
 * characters, no '/', '\' or control characters, not "." or "..", no
 * leading '-' (it reads as an option), no leading or trailing space. */
bool lsvc_name_valid(const char *name);
#define LSVC_NAME_RULE                                                                             \
    "1-80 characters, no '/', '\\' or control characters, not starting with '-', not "             \
    "starting or ending with a space"
/* Parse a control given as a number (1-255) or a name. -1 if invalid. */
int lsvc_parse_control(const char *s);
/* The arguments "[NAME] [--json]" of `luasvc CMD` (status, listen): 0, or 2
 * after saying which argument is unexpected. */
int lsvc_parse_name_json(const char *cmd, int argc, char **argv, const char **name, bool *json);

/* ---- jsonvalid.c ---- */
/* Whether text (len bytes) is exactly one JSON value, with whitespace
 * around it at most; *first (when not NULL): its first character ('{' for
 * an object), '\0' for none. */
bool lsvc_json_valid(const char *text, size_t len, char *first);

#endif
