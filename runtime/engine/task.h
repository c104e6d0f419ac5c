/*
 * task.h - the engine's unit of work: a task, one coroutine the scheduler
 * owns, of a kind. Every entry into the script's Lua on the worker is a
 * task (start, run, stop, a control's handler, a ctx:spawn task, a new
 * version's top level and its reload()), or a luv callback's slice
 * (uvlua.c). A kind is a table the owner of the task registers, in the way
 * systemd's service_vtable is the unit core's only way into a service:
 * what PAUSED does to it, whether it may wait, what a stop does to it,
 * whether it holds the control lane, how its resumes are timed, and what
 * its end means. The scheduler (sched.c) asks the kind; it never asks
 * which kind it is.
 *
 * Owned by task.c (the struct, the ready list, waits); the kinds by the
 * files that define them: worker.c (start, run, stop), lane.c (control),
 * task.c (spawned), reload.c (load, reload), eval.c (a console's eval).
 * Worker thread only.
 */
#ifndef LSVC_ENGINE_TASK_H
#define LSVC_ENGINE_TASK_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

struct lua_State;
typedef struct lsvc__worker lsvc__worker;
typedef struct lsvc__task lsvc__task;

/* How one resume of a task came back. */
typedef enum lsvc__result {
    LSVC__TASK_YIELDED, /* it waits, or yielded to the loop: resumed later */
    LSVC__TASK_DONE,    /* it returned (or os.exit: the service stops) */
    LSVC__TASK_FAILED,  /* it raised (logged, with its traceback) */
    LSVC__TASK_OVERRAN, /* its timed resume ran past its time: interrupted */
} lsvc__result;

/* What the interrupt hook stopped, for the answer to a deadline. */
typedef enum lsvc__victim {
    LSVC__VICTIM_NONE,    /* nothing: the worker was waiting */
    LSVC__VICTIM_MAIN,    /* start, run or stop */
    LSVC__VICTIM_HANDLER, /* a control's handler, or the new version's reload */
    LSVC__VICTIM_OTHER,   /* a spawned task, a load, a luv callback */
} lsvc__victim;

/* How a kind's resumes are timed by the watchdog (one slice each). */
typedef enum lsvc__timing {
    LSVC__TIMED_NOT,     /* not per resume: a deadline of its owner's holds */
    LSVC__TIMED_SLICE,   /* each resume within handler_timeout (ctx:spawn) */
    LSVC__TIMED_BUDGET,  /* all its resumes together within t->budget_ns (a load) */
} lsvc__timing;

typedef struct lsvc__kind {
    const char *name;
    bool pause_holds;     /* PAUSED: not resumed from any wait until CONTINUE or a stop */
    bool can_wait;        /* may wait (ctx:sleep, a queue, ctx:await, a descriptor) */
    bool winds_down;      /* its waits end early at a stop (a task may say otherwise) */
    bool holds_lane;      /* no control is delivered while it lives */
    bool sliced;          /* yielded to the loop after LSVC__SLICE_NS of running,
                           * where a yield reaches (not inside a C call) */
    lsvc__timing timing;
    lsvc__victim victim;
    /* around each resume (NULL: nothing) */
    void (*resuming)(lsvc__task *t);
    void (*resumed)(lsvc__task *t, lsvc__result r);
    /* it ended (after it is freed: ud is what it was given); interrupted:
     * it ended by the interrupt. true: the interrupt is answered here. */
    bool (*done)(lsvc__worker *w, lsvc__result r, bool interrupted, void *ud);
    /* it ends, however (its end above, an interrupt's answer, a stop, the
     * close): called first thing in lsvc__task_end, t still whole (NULL:
     * nothing). What the task holds outside Lua is let go here. */
    void (*ended)(lsvc__task *t);
} lsvc__kind;

/* A sliced task runs this long before the loop turns again. */
#define LSVC__SLICE_NS 1000000u

/* What a suspended task waits for. */
typedef enum lsvc__wait {
    LSVC__WAIT_NONE,  /* runnable, or running */
    LSVC__WAIT_TURN,  /* a bare yield, a sliced task's turn: resumed at the next turn */
    LSVC__WAIT_SLEEP, /* ctx:sleep: its timer */
    LSVC__WAIT_QUEUE, /* a queue's get (ctx:queue, ctx:await): a push or its timer */
    LSVC__WAIT_FD,    /* a descriptor readable (a mailslot's read): a poll or its timer */
} lsvc__wait;

/* How a wait ended, for the continuation that returns to the script. */
typedef enum lsvc__woke {
    LSVC__WOKE_OK,       /* the time passed (sleep) or a value came (queue) */
    LSVC__WOKE_TIMEOUT,  /* a queue's get timed out */
    LSVC__WOKE_STOPPING, /* the task must wind down: a stop, or run's reload */
} lsvc__woke;

/* A queue's C side (waitq.c): its one waiter, its items [head, tail) in
 * its user value. */
typedef struct lsvc__waitq {
    lsvc__task *waiter;
    long long head, tail;
} lsvc__waitq;

struct lsvc__task {
    lsvc__worker *w;
    struct lua_State *co;
    int ref; /* keeps co alive in the registry */
    const lsvc__kind *kind;
    bool (*done)(lsvc__worker *w, lsvc__result r, bool interrupted, void *ud); /* kind's, or its owner's */
    void *ud;
    bool winds_down;  /* its waits end early at a stop */
    uint32_t epoch;   /* the version whose code made it (a refused one's end) */
    lsvc__task **slot; /* its owner's pointer to it: NULL when it ends */
    bool wind_asked;  /* its owner asked it to wind down (run, at a reload) */
    lsvc__wait wait;
    lsvc__woke woke;
    bool held;                  /* ready while PAUSED: kept back until CONTINUE */
    bool queued;                /* on the ready list */
    uint64_t budget_ns;         /* LSVC__TIMED_BUDGET: its running time left */
    lsvc__waitq *waiting_on;    /* LSVC__WAIT_QUEUE: the queue */
    struct lsvc__fdwait *fdwait; /* LSVC__WAIT_FD: the poll handle */
    uv_timer_t timer;           /* data NULL: the loop's own handles are not luv's */
    bool timer_init;
    uint64_t due_ns;               /* the timer's wait ends then, not before */
    uint64_t ready_turn;           /* the turn it became ready in */
    char what[40];                 /* "run", "pause", "controls[200]", "task 3" */
    lsvc__task *prev, *next;       /* every live task */
    lsvc__task *rprev, *rnext;     /* the ready list */
};

#endif
