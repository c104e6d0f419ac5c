/*
 * test_model.c - unit tests of model.c (the SCM service model) and of the
 * pure helpers in util.c (control parsing, JSON strings, service names).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pure/pure.h"

#include "check.h"

/* ---- fixtures ---------------------------------------------------------- */

#define ALL_STATES_N 7
static const lsvc_state all_states[ALL_STATES_N] = {
    LSVC_STOPPED,          LSVC_START_PENDING, LSVC_STOP_PENDING, LSVC_RUNNING,
    LSVC_CONTINUE_PENDING, LSVC_PAUSE_PENDING, LSVC_PAUSED,
};

static const struct {
    uint32_t code;
    const char *name;
    uint32_t bit; /* accepted-controls bit it needs, 0 for none */
} named_controls[] = {
    {1, "stop", 0x001},        {2, "pause", 0x002},          {3, "continue", 0x002},
    {4, "interrogate", 0},     {5, "shutdown", 0x004},       {6, "paramchange", 0x008},
    {13, "powerevent", 0x040}, {14, "sessionchange", 0x080}, {15, "preshutdown", 0x100},
};
#define N_NAMED (sizeof named_controls / sizeof named_controls[0])

static const struct {
    uint32_t bit;
    const char *name;
} accept_bits[] = {
    {0x001, "stop"},        {0x002, "pause_continue"}, {0x004, "shutdown"},
    {0x008, "paramchange"}, {0x040, "powerevent"},     {0x080, "sessionchange"},
    {0x100, "preshutdown"},
};
#define N_ACCEPT (sizeof accept_bits / sizeof accept_bits[0])

#define ACCEPT_ALL 0x1cfu /* every SERVICE_ACCEPT_* bit the model knows */

static bool is_named(uint32_t code)
{
    for (size_t i = 0; i < N_NAMED; i++)
        if (named_controls[i].code == code)
            return true;
    return false;
}

/* ---- states ------------------------------------------------------------ */

static void test_states(void)
{
    static const char *const names[] = {
        NULL,      "STOPPED",          "START_PENDING", "STOP_PENDING",
        "RUNNING", "CONTINUE_PENDING", "PAUSE_PENDING", "PAUSED",
    };
    CHECK_EQ(LSVC_STOPPED, 1);
    CHECK_EQ(LSVC_START_PENDING, 2);
    CHECK_EQ(LSVC_STOP_PENDING, 3);
    CHECK_EQ(LSVC_RUNNING, 4);
    CHECK_EQ(LSVC_CONTINUE_PENDING, 5);
    CHECK_EQ(LSVC_PAUSE_PENDING, 6);
    CHECK_EQ(LSVC_PAUSED, 7);
    for (int s = 1; s <= 7; s++) {
        CHECK_STR(lsvc_state_name((lsvc_state)s), names[s]);
        CHECK_EQ(lsvc_state_from_name(names[s]), s);
        CHECK_EQ(lsvc_state_from_name(lsvc_state_name((lsvc_state)s)), s);
    }
    CHECK_STR(lsvc_state_name((lsvc_state)0), NULL);
    CHECK_STR(lsvc_state_name((lsvc_state)8), NULL);
    CHECK_STR(lsvc_state_name((lsvc_state)1000), NULL);
    CHECK_EQ(lsvc_state_from_name(""), -1);
    CHECK_EQ(lsvc_state_from_name("running"), -1);
    CHECK_EQ(lsvc_state_from_name("RUNNING "), -1);
    CHECK_EQ(lsvc_state_from_name("RUN"), -1);
    CHECK_EQ(lsvc_state_from_name("STOPPED_"), -1);

    CHECK(!lsvc_state_is_pending(LSVC_STOPPED));
    CHECK(lsvc_state_is_pending(LSVC_START_PENDING));
    CHECK(lsvc_state_is_pending(LSVC_STOP_PENDING));
    CHECK(!lsvc_state_is_pending(LSVC_RUNNING));
    CHECK(lsvc_state_is_pending(LSVC_CONTINUE_PENDING));
    CHECK(lsvc_state_is_pending(LSVC_PAUSE_PENDING));
    CHECK(!lsvc_state_is_pending(LSVC_PAUSED));
    CHECK(!lsvc_state_is_pending((lsvc_state)0));
    CHECK(!lsvc_state_is_pending((lsvc_state)8));
}

/* ---- controls and accepted-controls bits ------------------------------- */

static void test_controls(void)
{
    CHECK_EQ(LSVC_CTRL_STOP, 1);
    CHECK_EQ(LSVC_CTRL_PAUSE, 2);
    CHECK_EQ(LSVC_CTRL_CONTINUE, 3);
    CHECK_EQ(LSVC_CTRL_INTERROGATE, 4);
    CHECK_EQ(LSVC_CTRL_SHUTDOWN, 5);
    CHECK_EQ(LSVC_CTRL_PARAMCHANGE, 6);
    CHECK_EQ(LSVC_CTRL_POWEREVENT, 13);
    CHECK_EQ(LSVC_CTRL_SESSIONCHANGE, 14);
    CHECK_EQ(LSVC_CTRL_PRESHUTDOWN, 15);
    CHECK_EQ(LSVC_CTRL_USER_MIN, 128);
    CHECK_EQ(LSVC_CTRL_USER_MAX, 255);

    for (size_t i = 0; i < N_NAMED; i++) {
        CHECK_STR(lsvc_control_name(named_controls[i].code), named_controls[i].name);
        CHECK_EQ(lsvc_control_from_name(named_controls[i].name), named_controls[i].code);
        CHECK_EQ(lsvc_accept_bit_for_control(named_controls[i].code), named_controls[i].bit);
        if (named_controls[i].bit)
            CHECK(lsvc_accept_name(named_controls[i].bit) != NULL);
    }
    /* Every code 0-300 has the right name class. */
    for (uint32_t c = 0; c <= 300; c++) {
        const char *n = lsvc_control_name(c);
        if (is_named(c))
            continue;
        if (c >= 128 && c <= 255) {
            if (!n || strcmp(n, "user") != 0)
                FAILF("lsvc_control_name(%u) = %s, want \"user\"", c, n ? n : "(null)");
        } else if (n) {
            FAILF("lsvc_control_name(%u) = \"%s\", want NULL", c, n);
        }
        checks++;
        if (lsvc_accept_bit_for_control(c) != 0)
            FAILF("lsvc_accept_bit_for_control(%u) = %u, want 0", c,
                  lsvc_accept_bit_for_control(c));
        checks++;
    }
    CHECK_STR(lsvc_control_name(1000), NULL);
    CHECK_STR(lsvc_control_name(UINT32_MAX), NULL);
    CHECK_EQ(lsvc_control_from_name("reload"), LSVC_CTRL_PARAMCHANGE);
    CHECK_EQ(lsvc_control_from_name("user"), -1);
    CHECK_EQ(lsvc_control_from_name("STOP"), -1);
    CHECK_EQ(lsvc_control_from_name("stop "), -1);
    CHECK_EQ(lsvc_control_from_name(""), -1);
    CHECK_EQ(lsvc_control_from_name("pause_continue"), -1);

    CHECK_EQ(LSVC_ACCEPT_STOP, 0x001);
    CHECK_EQ(LSVC_ACCEPT_PAUSE_CONTINUE, 0x002);
    CHECK_EQ(LSVC_ACCEPT_SHUTDOWN, 0x004);
    CHECK_EQ(LSVC_ACCEPT_PARAMCHANGE, 0x008);
    CHECK_EQ(LSVC_ACCEPT_POWEREVENT, 0x040);
    CHECK_EQ(LSVC_ACCEPT_SESSIONCHANGE, 0x080);
    CHECK_EQ(LSVC_ACCEPT_PRESHUTDOWN, 0x100);
    for (size_t i = 0; i < N_ACCEPT; i++) {
        CHECK_STR(lsvc_accept_name(accept_bits[i].bit), accept_bits[i].name);
        CHECK_EQ(lsvc_accept_from_name(accept_bits[i].name), accept_bits[i].bit);
    }
    uint32_t known = 0;
    for (size_t i = 0; i < N_ACCEPT; i++)
        known |= accept_bits[i].bit;
    CHECK_EQ(known, ACCEPT_ALL);
    for (int b = 0; b < 32; b++) {
        uint32_t bit = 1u << b;
        if (!(known & bit)) {
            checks++;
            if (lsvc_accept_name(bit))
                FAILF("lsvc_accept_name(0x%x) = \"%s\", want NULL", bit, lsvc_accept_name(bit));
        }
    }
    CHECK_STR(lsvc_accept_name(0), NULL);
    CHECK_STR(lsvc_accept_name(0x003), NULL); /* two bits are not one name */
    CHECK_EQ(lsvc_accept_from_name("pause"), -1);
    CHECK_EQ(lsvc_accept_from_name("continue"), -1);
    CHECK_EQ(lsvc_accept_from_name(""), -1);
    CHECK_EQ(lsvc_accept_from_name("STOP"), -1);
}

/* ---- lsvc_control_check: the SCM's answers ------------------------------ */

static void expect_check(lsvc_state st, uint32_t acc, uint32_t code, bool uh, uint32_t want,
                         int line)
{
    checks++;
    uint32_t got = lsvc_control_check(st, acc, code, uh);
    if (got != want)
        FAILF("(line %d) lsvc_control_check(%s, 0x%x, %u, %d) = %u, want %u", line,
              lsvc_state_name(st) ? lsvc_state_name(st) : "?", acc, code, (int)uh, got, want);
}
#define EXPECT_CHECK(st, acc, code, uh, want) expect_check(st, acc, code, uh, want, __LINE__)

static void test_control_check(void)
{
    static const uint32_t masks[] = {0, ACCEPT_ALL, 0xffffffffu, LSVC_ACCEPT_STOP};

    /* A stopped service takes no control at all, not even bad codes. */
    for (uint32_t c = 0; c <= 300; c++)
        for (size_t m = 0; m < sizeof masks / sizeof masks[0]; m++) {
            EXPECT_CHECK(LSVC_STOPPED, masks[m], c, false, 1062);
            EXPECT_CHECK(LSVC_STOPPED, masks[m], c, true, 1062);
        }
    EXPECT_CHECK(LSVC_STOPPED, ACCEPT_ALL, UINT32_MAX, true, 1062);

    for (int si = 0; si < ALL_STATES_N; si++) {
        lsvc_state st = all_states[si];
        if (st == LSVC_STOPPED)
            continue;
        /* Codes that do not exist: 87, whatever the mask and handlers. */
        for (uint32_t c = 16; c <= 127; c++)
            for (size_t m = 0; m < sizeof masks / sizeof masks[0]; m++) {
                EXPECT_CHECK(st, masks[m], c, false, 87);
                EXPECT_CHECK(st, masks[m], c, true, 87);
            }
        for (uint32_t c = 256; c <= 300; c++)
            EXPECT_CHECK(st, ACCEPT_ALL, c, true, 87);
        EXPECT_CHECK(st, ACCEPT_ALL, 1000, true, 87);
        EXPECT_CHECK(st, ACCEPT_ALL, 65536 + 200, true, 87); /* not truncated to 200 */
        EXPECT_CHECK(st, ACCEPT_ALL, 0x80000000u, true, 87);
        EXPECT_CHECK(st, ACCEPT_ALL, UINT32_MAX, true, 87);

        /* INTERROGATE is always answered, mask or no mask. */
        for (size_t m = 0; m < sizeof masks / sizeof masks[0]; m++) {
            EXPECT_CHECK(st, masks[m], LSVC_CTRL_INTERROGATE, false, 0);
            EXPECT_CHECK(st, masks[m], LSVC_CTRL_INTERROGATE, true, 0);
        }

        /* SCM codes 7-12 exist (NETBIND*, DEVICEEVENT, HARDWAREPROFILECHANGE)
         * but no service of ours can accept them: 1052, never 87. */
        if (st == LSVC_RUNNING || st == LSVC_PAUSED)
            for (uint32_t c = 7; c <= 12; c++)
                EXPECT_CHECK(st, 0xffffffffu, c, true, 1052);
    }

    /* A control not in the mask: 1052 (states where nothing else refuses). */
    static const lsvc_state steady[] = {LSVC_RUNNING, LSVC_PAUSED};
    for (size_t s = 0; s < 2; s++)
        for (size_t i = 0; i < N_NAMED; i++) {
            uint32_t c = named_controls[i].code;
            if (c == LSVC_CTRL_INTERROGATE)
                continue;
            uint32_t bit = named_controls[i].bit;
            EXPECT_CHECK(steady[s], 0, c, false, 1052);
            EXPECT_CHECK(steady[s], ACCEPT_ALL & ~bit, c, false, 1052);
            EXPECT_CHECK(steady[s], ACCEPT_ALL & ~bit, c, true, 1052);
            EXPECT_CHECK(steady[s], bit, c, false, 0);
            EXPECT_CHECK(steady[s], ACCEPT_ALL, c, false, 0);
        }
    /* The mask is checked bit by bit, not as "any bit". */
    EXPECT_CHECK(LSVC_RUNNING, LSVC_ACCEPT_SHUTDOWN, LSVC_CTRL_STOP, false, 1052);
    EXPECT_CHECK(LSVC_RUNNING, LSVC_ACCEPT_STOP, LSVC_CTRL_PAUSE, false, 1052);
    EXPECT_CHECK(LSVC_RUNNING, LSVC_ACCEPT_PAUSE_CONTINUE, LSVC_CTRL_CONTINUE, false, 0);

    /* User codes 128-255: the handler decides, the mask does not. */
    for (uint32_t c = 128; c <= 255; c++) {
        EXPECT_CHECK(LSVC_RUNNING, ACCEPT_ALL, c, false, 1052);
        EXPECT_CHECK(LSVC_RUNNING, 0xffffffffu, c, false, 1052);
        EXPECT_CHECK(LSVC_RUNNING, 0, c, true, 0);
        EXPECT_CHECK(LSVC_RUNNING, ACCEPT_ALL, c, true, 0);
        EXPECT_CHECK(LSVC_PAUSED, 0, c, true, 0);
        EXPECT_CHECK(LSVC_PAUSE_PENDING, 0, c, true, 0);
        EXPECT_CHECK(LSVC_CONTINUE_PENDING, 0, c, true, 0);
        EXPECT_CHECK(LSVC_START_PENDING, 0, c, true, 1061);
        EXPECT_CHECK(LSVC_STOP_PENDING, 0, c, true, 1061);
    }

    /* START_PENDING / STOP_PENDING: every control but INTERROGATE is 1061,
     * accepted or not, with a handler or not (the SCM sees an empty mask
     * while a service starts or stops). */
    for (int p = 0; p < 2; p++) {
        lsvc_state st = p ? LSVC_STOP_PENDING : LSVC_START_PENDING;
        for (size_t i = 0; i < N_NAMED; i++) {
            uint32_t c = named_controls[i].code;
            uint32_t want = c == LSVC_CTRL_INTERROGATE ? 0 : 1061;
            EXPECT_CHECK(st, ACCEPT_ALL, c, true, want);
            EXPECT_CHECK(st, 0xffffffffu, c, false, want);
            EXPECT_CHECK(st, 0, c, false, want);
            if (named_controls[i].bit)
                EXPECT_CHECK(st, named_controls[i].bit, c, false, 1061);
        }
        EXPECT_CHECK(st, 0, 200, false, 1061);
    }

    /* PAUSE / CONTINUE while either of them is pending: 1061. Other
     * controls go through (STOP may interrupt a pause). */
    for (int p = 0; p < 2; p++) {
        lsvc_state st = p ? LSVC_CONTINUE_PENDING : LSVC_PAUSE_PENDING;
        EXPECT_CHECK(st, ACCEPT_ALL, LSVC_CTRL_PAUSE, false, 1061);
        EXPECT_CHECK(st, ACCEPT_ALL, LSVC_CTRL_CONTINUE, false, 1061);
        EXPECT_CHECK(st, LSVC_ACCEPT_PAUSE_CONTINUE, LSVC_CTRL_PAUSE, false, 1061);
        EXPECT_CHECK(st, LSVC_ACCEPT_PAUSE_CONTINUE, LSVC_CTRL_CONTINUE, false, 1061);
        EXPECT_CHECK(st, ACCEPT_ALL, LSVC_CTRL_STOP, false, 0);
        EXPECT_CHECK(st, ACCEPT_ALL, LSVC_CTRL_SHUTDOWN, false, 0);
        EXPECT_CHECK(st, ACCEPT_ALL, LSVC_CTRL_PRESHUTDOWN, false, 0);
        EXPECT_CHECK(st, ACCEPT_ALL, LSVC_CTRL_PARAMCHANGE, false, 0);
        EXPECT_CHECK(st, ACCEPT_ALL, LSVC_CTRL_POWEREVENT, false, 0);
        EXPECT_CHECK(st, ACCEPT_ALL, LSVC_CTRL_SESSIONCHANGE, false, 0);
        EXPECT_CHECK(st, ACCEPT_ALL, LSVC_CTRL_INTERROGATE, false, 0);
        EXPECT_CHECK(st, 0, LSVC_CTRL_STOP, false, 1052);
    }
    /* In steady states pause and continue are accepted either way; the
     * service layer turns PAUSE-while-PAUSED into a no-op. */
    EXPECT_CHECK(LSVC_RUNNING, LSVC_ACCEPT_PAUSE_CONTINUE, LSVC_CTRL_PAUSE, false, 0);
    EXPECT_CHECK(LSVC_RUNNING, LSVC_ACCEPT_PAUSE_CONTINUE, LSVC_CTRL_CONTINUE, false, 0);
    EXPECT_CHECK(LSVC_PAUSED, LSVC_ACCEPT_PAUSE_CONTINUE, LSVC_CTRL_PAUSE, false, 0);
    EXPECT_CHECK(LSVC_PAUSED, LSVC_ACCEPT_PAUSE_CONTINUE, LSVC_CTRL_CONTINUE, false, 0);

    /* Every answer is one of the codes the SCM gives. */
    for (int si = 0; si < ALL_STATES_N; si++)
        for (uint32_t c = 0; c <= 300; c++)
            for (int uh = 0; uh < 2; uh++) {
                uint32_t r = lsvc_control_check(all_states[si], ACCEPT_ALL, c, uh);
                checks++;
                if (r != 0 && r != 87 && r != 1052 && r != 1061 && r != 1062)
                    FAILF("lsvc_control_check(%d, all, %u, %d) = %u", (int)all_states[si], c, uh,
                          r);
            }
}

/* ---- pending states and transitions ------------------------------------ */

static void test_pending_state(void)
{
    CHECK_EQ(lsvc_control_pending_state(LSVC_CTRL_STOP), LSVC_STOP_PENDING);
    CHECK_EQ(lsvc_control_pending_state(LSVC_CTRL_SHUTDOWN), LSVC_STOP_PENDING);
    CHECK_EQ(lsvc_control_pending_state(LSVC_CTRL_PRESHUTDOWN), LSVC_STOP_PENDING);
    CHECK_EQ(lsvc_control_pending_state(LSVC_CTRL_PAUSE), LSVC_PAUSE_PENDING);
    CHECK_EQ(lsvc_control_pending_state(LSVC_CTRL_CONTINUE), LSVC_CONTINUE_PENDING);
    CHECK_EQ(lsvc_control_pending_state(LSVC_CTRL_INTERROGATE), 0);
    CHECK_EQ(lsvc_control_pending_state(LSVC_CTRL_PARAMCHANGE), 0);
    CHECK_EQ(lsvc_control_pending_state(LSVC_CTRL_POWEREVENT), 0);
    CHECK_EQ(lsvc_control_pending_state(LSVC_CTRL_SESSIONCHANGE), 0);
    CHECK_EQ(lsvc_control_pending_state(0), 0);
    CHECK_EQ(lsvc_control_pending_state(200), 0);
    CHECK_EQ(lsvc_control_pending_state(1000), 0);
}

static void test_transitions(void)
{
    /* valid[from][to], states 1-7 */
    static const bool valid[8][8] = {
        [LSVC_STOPPED] = {[LSVC_START_PENDING] = true},
        [LSVC_START_PENDING] =
            {[LSVC_STOPPED] = true, [LSVC_RUNNING] = true, [LSVC_STOP_PENDING] = true},
        [LSVC_STOP_PENDING] = {[LSVC_STOPPED] = true},
        [LSVC_RUNNING] =
            {[LSVC_STOPPED] = true, [LSVC_STOP_PENDING] = true, [LSVC_PAUSE_PENDING] = true},
        [LSVC_CONTINUE_PENDING] = {[LSVC_STOPPED] = true,
                                   [LSVC_RUNNING] = true,
                                   [LSVC_PAUSED] = true,
                                   [LSVC_STOP_PENDING] = true},
        [LSVC_PAUSE_PENDING] = {[LSVC_STOPPED] = true,
                                [LSVC_PAUSED] = true,
                                [LSVC_RUNNING] = true,
                                [LSVC_STOP_PENDING] = true},
        [LSVC_PAUSED] =
            {[LSVC_STOPPED] = true, [LSVC_CONTINUE_PENDING] = true, [LSVC_STOP_PENDING] = true},
    };
    for (int f = 0; f <= 9; f++)
        for (int t = 0; t <= 9; t++) {
            bool want = f >= 1 && f <= 7 && t >= 1 && t <= 7 && valid[f][t];
            bool got = lsvc_transition_valid((lsvc_state)f, (lsvc_state)t);
            checks++;
            if (got != want)
                FAILF("lsvc_transition_valid(%d, %d) = %d, want %d", f, t, got, want);
        }
    /* The rules in words. */
    for (int si = 0; si < ALL_STATES_N; si++) {
        lsvc_state s = all_states[si];
        CHECK(!lsvc_transition_valid(s, s));
        CHECK(lsvc_transition_valid(s, LSVC_STOPPED) == (s != LSVC_STOPPED));
        if (s != LSVC_STOPPED)
            CHECK(!lsvc_transition_valid(LSVC_STOP_PENDING, s) || s == LSVC_STOPPED);
        if (s != LSVC_START_PENDING)
            CHECK(!lsvc_transition_valid(LSVC_STOPPED, s));
    }
    CHECK(!lsvc_transition_valid(LSVC_RUNNING, LSVC_PAUSED)); /* via PAUSE_PENDING */
    CHECK(!lsvc_transition_valid(LSVC_PAUSED, LSVC_RUNNING)); /* via CONTINUE_PENDING */
    CHECK(!lsvc_transition_valid(LSVC_STOP_PENDING, LSVC_RUNNING));
    CHECK(!lsvc_transition_valid(LSVC_START_PENDING, LSVC_PAUSED));

    /* Cross-check with the control handler: a control the model lets
     * through moves the service to a state it may reach from where it is
     * (PAUSE while PAUSED and CONTINUE while RUNNING are no-ops in
     * service.c and are skipped). */
    for (int si = 0; si < ALL_STATES_N; si++) {
        lsvc_state s = all_states[si];
        for (size_t i = 0; i < N_NAMED; i++) {
            uint32_t c = named_controls[i].code;
            lsvc_state p = lsvc_control_pending_state(c);
            if (!p || lsvc_control_check(s, ACCEPT_ALL, c, false) != 0)
                continue;
            if ((c == LSVC_CTRL_PAUSE && s == LSVC_PAUSED) ||
                (c == LSVC_CTRL_CONTINUE && s == LSVC_RUNNING))
                continue;
            checks++;
            if (!lsvc_transition_valid(s, p))
                FAILF("control %u accepted in %s leads to %s, an invalid transition", c,
                      lsvc_state_name(s), lsvc_state_name(p));
        }
    }
}

/* ---- exit codes ---------------------------------------------------------- */

static void test_exit_status(void)
{
    CHECK_EQ(lsvc_exit_status((lsvc_exit){0, 0}), 0);
    CHECK_EQ(lsvc_exit_status((lsvc_exit){0, 5}), 0); /* service_specific ignored */
    CHECK_EQ(lsvc_exit_status((lsvc_exit){1066, 1}), 1);
    CHECK_EQ(lsvc_exit_status((lsvc_exit){1066, 2}), 2);
    CHECK_EQ(lsvc_exit_status((lsvc_exit){1066, 3}), 3);
    CHECK_EQ(lsvc_exit_status((lsvc_exit){1066, 42}), 42);
    CHECK_EQ(lsvc_exit_status((lsvc_exit){1066, 255}), 255);
    CHECK_EQ(lsvc_exit_status((lsvc_exit){1066, 0}), 1);   /* a failure is never 0 */
    CHECK_EQ(lsvc_exit_status((lsvc_exit){1066, 256}), 1); /* low byte 0: still a failure */
    CHECK_EQ(lsvc_exit_status((lsvc_exit){1066, 0x1ff}), 255);
    CHECK_EQ(lsvc_exit_status((lsvc_exit){1066, 0x12345607}), 7);
    CHECK_EQ(lsvc_exit_status((lsvc_exit){1066, UINT32_MAX}), 255);
    CHECK_EQ(lsvc_exit_status((lsvc_exit){1067, 0}), 1);
    CHECK_EQ(lsvc_exit_status((lsvc_exit){1067, 9}), 1); /* not service-specific */
    CHECK_EQ(lsvc_exit_status((lsvc_exit){1053, 0}), 1);
    CHECK_EQ(lsvc_exit_status((lsvc_exit){87, 0}), 1);
    CHECK_EQ(lsvc_exit_status((lsvc_exit){1460, 0}), 1);
    CHECK_EQ(lsvc_exit_status((lsvc_exit){UINT32_MAX, UINT32_MAX}), 1);
    CHECK_EQ(
        lsvc_exit_status((lsvc_exit){LSVC_ERROR_SERVICE_SPECIFIC_ERROR, LSVC_EXIT_SCRIPT_ERROR}),
        1);
    CHECK_EQ(lsvc_exit_status((lsvc_exit){LSVC_ERROR_SERVICE_SPECIFIC_ERROR, LSVC_EXIT_LOAD_ERROR}),
             2);
    for (uint32_t w = 0; w < 2000; w += 7)
        for (uint32_t ss = 0; ss < 600; ss += 13) {
            int r = lsvc_exit_status((lsvc_exit){w, ss});
            checks++;
            if (r < 0 || r > 255 || ((w != 0) != (r != 0)))
                FAILF("lsvc_exit_status({%u, %u}) = %d", w, ss, r);
        }

    static const uint32_t known[] = {0, 87, 120, 1052, 1053, 1061, 1062, 1066, 1067, 1460};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const char *m = lsvc_win32_message(known[i]);
        CHECK(m != NULL && m[0] != '\0');
        CHECK(m != NULL && strcmp(m, "Unknown error.") != 0);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(m, lsvc_win32_message(known[j])) != 0);
    }
    CHECK_STR(lsvc_win32_message(1), "Unknown error.");
    CHECK_STR(lsvc_win32_message(UINT32_MAX), "Unknown error.");

    /* the one text of a final status */
    char buf[LSVC_EXIT_TEXT_MAX];
    CHECK_STR(lsvc_exit_text((lsvc_exit){0, 0}, NULL, buf, sizeof buf), "STOPPED");
    CHECK_STR(lsvc_exit_text((lsvc_exit){1066, 7}, NULL, buf, sizeof buf),
              "STOPPED with service-specific exit code 7");
    CHECK_STR(lsvc_exit_text((lsvc_exit){1460, 0}, NULL, buf, sizeof buf),
              "STOPPED with error 1460: This operation returned because the timeout period "
              "expired.");
    CHECK_STR(lsvc_exit_text((lsvc_exit){1067, 0}, "gone", buf, sizeof buf),
              "STOPPED with error 1067: gone");
    char small[8];
    CHECK_STR(lsvc_exit_text((lsvc_exit){1066, 7}, NULL, small, sizeof small), "STOPPED");
}

/* ---- util.c: lsvc_parse_control ---------------------------------------- */

static void test_parse_control(void)
{
    CHECK_EQ(lsvc_parse_control("200"), 200);
    CHECK_EQ(lsvc_parse_control("1"), 1);
    CHECK_EQ(lsvc_parse_control("255"), 255);
    CHECK_EQ(lsvc_parse_control("128"), 128);
    CHECK_EQ(lsvc_parse_control("4"), 4);
    CHECK_EQ(lsvc_parse_control("stop"), 1);
    CHECK_EQ(lsvc_parse_control("pause"), 2);
    CHECK_EQ(lsvc_parse_control("continue"), 3);
    CHECK_EQ(lsvc_parse_control("interrogate"), 4);
    CHECK_EQ(lsvc_parse_control("shutdown"), 5);
    CHECK_EQ(lsvc_parse_control("paramchange"), 6);
    CHECK_EQ(lsvc_parse_control("reload"), 6);
    CHECK_EQ(lsvc_parse_control("powerevent"), 13);
    CHECK_EQ(lsvc_parse_control("sessionchange"), 14);
    CHECK_EQ(lsvc_parse_control("preshutdown"), 15);
    CHECK_EQ(lsvc_parse_control("0"), -1);
    CHECK_EQ(lsvc_parse_control("256"), -1);
    CHECK_EQ(lsvc_parse_control("1000"), -1);
    CHECK_EQ(lsvc_parse_control("99999999999999999999999"), -1);
    CHECK_EQ(lsvc_parse_control("abc"), -1);
    CHECK_EQ(lsvc_parse_control(""), -1);
    CHECK_EQ(lsvc_parse_control(NULL), -1);
    CHECK_EQ(lsvc_parse_control("-1"), -1);
    CHECK_EQ(lsvc_parse_control("+5"), -1);
    CHECK_EQ(lsvc_parse_control(" 5"), -1);
    CHECK_EQ(lsvc_parse_control("5 "), -1);
    CHECK_EQ(lsvc_parse_control("20x"), -1);
    CHECK_EQ(lsvc_parse_control("0x10"), -1);
    CHECK_EQ(lsvc_parse_control("1.5"), -1);
    CHECK_EQ(lsvc_parse_control("user"), -1);
    CHECK_EQ(lsvc_parse_control("STOP"), -1);
    CHECK_EQ(lsvc_parse_control("stop "), -1);
    for (int i = 1; i <= 255; i++) {
        char s[8];
        snprintf(s, sizeof s, "%d", i);
        checks++;
        if (lsvc_parse_control(s) != i)
            FAILF("lsvc_parse_control(\"%s\") = %d", s, lsvc_parse_control(s));
    }
}

/* ---- util.c: lsvc_buf, lsvc_buf_json ------------------------------------ */

/* lsvc_buf_json at pos of a text already in buf; what the text needs. */
static size_t json_str(char *buf, size_t len, size_t pos, const char *s)
{
    lsvc_buf b = {buf, len, pos};
    lsvc_buf_json(&b, s);
    return b.len;
}

/* Encode s into a generous buffer and compare with want. */
static void expect_json(const char *s, const char *want, int line)
{
    char buf[256];
    memset(buf, 'Z', sizeof buf);
    size_t n = json_str(buf, sizeof buf, 0, s);
    checks++;
    if (n != strlen(want) || strcmp(buf, want) != 0)
        FAILF("(line %d) lsvc_buf_json(\"%s\") = [%s] (%zu), want [%s] (%zu)", line, s, buf, n,
              want, strlen(want));
}
#define EXPECT_JSON(s, want) expect_json(s, want, __LINE__)

static void test_json_str(void)
{
    EXPECT_JSON("", "\"\"");
    EXPECT_JSON("abc", "\"abc\"");
    EXPECT_JSON("my svc", "\"my svc\"");
    EXPECT_JSON("a\"b", "\"a\\\"b\"");
    EXPECT_JSON("\"", "\"\\\"\"");
    EXPECT_JSON("a\\b", "\"a\\\\b\"");
    EXPECT_JSON("C:\\dir\\x.lua", "\"C:\\\\dir\\\\x.lua\"");
    EXPECT_JSON("a\nb", "\"a\\nb\"");
    EXPECT_JSON("\t", "\"\\u0009\"");
    EXPECT_JSON("\r\n", "\"\\u000d\\n\"");
    EXPECT_JSON("\x01\x1f", "\"\\u0001\\u001f\"");
    EXPECT_JSON("\x1b[0m", "\"\\u001b[0m\"");
    EXPECT_JSON("\x7f", "\"\x7f\""); /* DEL needs no escape in JSON */
    EXPECT_JSON(" ", "\" \"");
    EXPECT_JSON("my svc \xc3\xa9", "\"my svc \xc3\xa9\""); /* UTF-8 passes through */
    EXPECT_JSON("\xe2\x82\xac\xf0\x9f\x98\x80", "\"\xe2\x82\xac\xf0\x9f\x98\x80\"");
    /* Not UTF-8: each bad byte becomes U+FFFD, so the JSON stays valid. */
    EXPECT_JSON("a\xff", "\"a\\ufffd\"");
    EXPECT_JSON("\x80x", "\"\\ufffdx\"");                                /* a stray continuation */
    EXPECT_JSON("\xc0\xaf", "\"\\ufffd\\ufffd\"");                       /* overlong '/' */
    EXPECT_JSON("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");            /* a surrogate */
    EXPECT_JSON("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* past U+10FFFF */
    EXPECT_JSON("\xe2\x82", "\"\\ufffd\\ufffd\"");                       /* cut short */

    /* No control character survives unescaped. */
    for (int c = 1; c < 0x20; c++) {
        char in[2] = {(char)c, 0}, buf[16];
        size_t n = json_str(buf, sizeof buf, 0, in);
        checks++;
        bool ok = n == strlen(buf) && buf[0] == '"' && buf[n - 1] == '"' && buf[1] == '\\';
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)buf[i] < 0x20)
                ok = false;
        if (!ok)
            FAILF("lsvc_buf_json(0x%02x) = [%s]", c, buf);
    }

    /* Appending at pos keeps what is there. */
    {
        char buf[32] = "{\"a\":";
        size_t n = json_str(buf, sizeof buf, 5, "x\"y");
        CHECK_EQ(n, 11);
        CHECK_STR(buf, "{\"a\":\"x\\\"y\"");
    }

    /* Truncation: every buffer size from 0 up, with exact-size heap buffers
     * (ASan catches any write past len). The return value is always the
     * full length; the buffer holds a NUL-terminated prefix of the full
     * output. */
    static const char *const inputs[] = {
        "",
        "abc",
        "a\"b\\c\nd\te\x01",
        "\"\"\"\"",
        "\\\\\\",
        "\n\n\n",
        "\x1f\x1f",
        "long name with several words and \"quotes\" and \\backslashes\\",
        "my svc \xc3\xa9",
    };
    for (size_t k = 0; k < sizeof inputs / sizeof inputs[0]; k++) {
        char full[512];
        size_t flen = json_str(full, sizeof full, 0, inputs[k]);
        CHECK_EQ(flen, strlen(full));
        for (size_t len = 0; len <= flen + 3; len++) {
            char *buf = malloc(len ? len : 1);
            if (!buf) {
                FAILF("malloc");
                continue;
            }
            memset(buf, 'Z', len ? len : 1);
            size_t n = json_str(buf, len, 0, inputs[k]);
            checks++;
            if (n != flen)
                FAILF("input %zu len %zu: returned %zu, want %zu", k, len, n, flen);
            checks++;
            if (len == 0) {
                if (buf[0] != 'Z')
                    FAILF("input %zu: wrote into a zero-length buffer", k);
            } else if (!memchr(buf, '\0', len)) {
                FAILF("input %zu len %zu: not NUL-terminated", k, len);
            } else {
                size_t got = strlen(buf), want = flen < len - 1 ? flen : len - 1;
                if (got != want || memcmp(buf, full, got) != 0)
                    FAILF("input %zu len %zu: [%s] is not the %zu-byte prefix of [%s]", k, len, buf,
                          want, full);
            }
            free(buf);
        }
    }

    /* pos already past the end: nothing written but the terminator. */
    {
        char *buf = malloc(8);
        if (buf) {
            memcpy(buf, "abcdefg", 8);
            size_t n = json_str(buf, 8, 20, "xy");
            CHECK_EQ(n, 24);
            CHECK(memcmp(buf, "abcdefg", 7) == 0); /* earlier text untouched */
            CHECK_EQ(buf[7], '\0');
            free(buf);
        }
        char one = 'Z';
        CHECK_EQ(json_str(&one, 0, 3, "q\""), 3 + 5);
        CHECK_EQ(one, 'Z');
        CHECK_EQ(json_str(&one, 1, 0, "q"), 3);
        CHECK_EQ(one, '\0');
    }

    /* lsvc_buf_add and lsvc_buf_printf: the same bounds, cut text kept
     * NUL-terminated, len counting the whole. */
    {
        char buf[8];
        lsvc_buf b = lsvc_buf_init(buf, sizeof buf);
        lsvc_buf_add(&b, "abc");
        lsvc_buf_printf(&b, "%d-%s", 42, "xyz");
        CHECK_EQ(b.len, 9);
        CHECK_STR(buf, "abc42-x");
        lsvc_buf_add(&b, "more");
        CHECK_EQ(b.len, 13);
        CHECK_STR(buf, "abc42-x");
        lsvc_buf m = lsvc_buf_init(NULL, 0); /* measure only */
        lsvc_buf_printf(&m, "%s", "12345");
        lsvc_buf_json(&m, "a\"");
        CHECK_EQ(m.len, 5 + 5);
    }
}

/* ---- util.c: lsvc_name_valid -------------------------------------------- */

static void test_name_valid(void)
{
    char n80[81], n81[82], n127[128], n200[201];
    memset(n80, 'a', 80);
    n80[80] = 0;
    memset(n81, 'a', 81);
    n81[81] = 0;
    memset(n127, 'b', 127);
    n127[127] = 0;
    memset(n200, 'c', 200);
    n200[200] = 0;

    CHECK(lsvc_name_valid("a"));
    CHECK(lsvc_name_valid("heartbeat"));
    CHECK(lsvc_name_valid("my svc"));
    CHECK(lsvc_name_valid("my svc \xc3\xa9"));
    CHECK(lsvc_name_valid("svc-1_2.3"));
    CHECK(lsvc_name_valid("..."));
    CHECK(lsvc_name_valid(".hidden"));
    CHECK(lsvc_name_valid("a.."));
    CHECK(lsvc_name_valid(n80));
    CHECK(!lsvc_name_valid(n81));
    CHECK(!lsvc_name_valid(n127));
    CHECK(!lsvc_name_valid(n200));
    CHECK(!lsvc_name_valid(""));
    CHECK(!lsvc_name_valid("."));
    CHECK(!lsvc_name_valid(".."));
    CHECK(!lsvc_name_valid("/"));
    CHECK(!lsvc_name_valid("a/b"));
    CHECK(!lsvc_name_valid("../x"));
    CHECK(!lsvc_name_valid("a\\b"));
    CHECK(!lsvc_name_valid("a\tb"));
    CHECK(!lsvc_name_valid("a\nb"));
    CHECK(!lsvc_name_valid("a\rb"));
    CHECK(!lsvc_name_valid("\x01"));
    CHECK(!lsvc_name_valid("a\x1f"));
    CHECK(!lsvc_name_valid("a\x7f"));
    for (int c = 1; c < 0x20; c++) {
        char s[4] = {'x', (char)c, 'y', 0};
        checks++;
        if (lsvc_name_valid(s))
            FAILF("name with byte 0x%02x accepted", c);
    }
}

/* HandlerEx's event data, read by the documented Win32 layouts (built here
 * byte by byte, little-endian as on Windows). */
static void test_event_from_scm(void)
{
    lsvc_event ev;
    /* WTSSESSION_NOTIFICATION { cbSize = 8, dwSessionId = 3 }, WTS_SESSION_LOGON (5) */
    unsigned char wts[8] = {8, 0, 0, 0, 3, 0, 0, 0};
    lsvc_event_from_scm(&ev, LSVC_CTRL_SESSIONCHANGE, 5, wts);
    CHECK_EQ(ev.code, LSVC_CTRL_SESSIONCHANGE);
    CHECK_EQ(ev.event_type, 5);
    CHECK_EQ(ev.session_id, 3);
    CHECK_STR(ev.power_setting, "");
    /* a cbSize too small for the session id: none */
    wts[0] = 4;
    lsvc_event_from_scm(&ev, LSVC_CTRL_SESSIONCHANGE, 5, wts);
    CHECK_EQ(ev.session_id, 0);
    /* no data at all */
    lsvc_event_from_scm(&ev, LSVC_CTRL_SESSIONCHANGE, 6, NULL);
    CHECK_EQ(ev.event_type, 6);
    CHECK_EQ(ev.session_id, 0);

    /* POWERBROADCAST_SETTING for GUID_ACDC_POWER_SOURCE
     * {5D3E9A59-E9D5-4B00-A6BD-FF34FF516548}, DataLength 4, Data = 1 (DC) */
    unsigned char pbs[24] = {0x59, 0x9A, 0x3E, 0x5D, 0xD5, 0xE9, 0x00, 0x4B, 0xA6, 0xBD, 0xFF, 0x34,
                             0xFF, 0x51, 0x65, 0x48, 4,    0,    0,    0,    1,    0,    0,    0};
    lsvc_event_from_scm(&ev, LSVC_CTRL_POWEREVENT, LSVC_PBT_POWERSETTINGCHANGE, pbs);
    CHECK_STR(ev.power_setting, "{5D3E9A59-E9D5-4B00-A6BD-FF34FF516548}");
    CHECK_EQ(ev.power_data_len, 4);
    CHECK_EQ(ev.power_data[0], 1);
    CHECK_EQ(ev.power_data[3], 0);
    /* other power events carry no setting: PBT_APMRESUMEAUTOMATIC (0x12) */
    lsvc_event_from_scm(&ev, LSVC_CTRL_POWEREVENT, 0x12, pbs);
    CHECK_STR(ev.power_setting, "");
    CHECK_EQ(ev.power_data_len, 0);
    /* a control without event data ignores what data points to */
    lsvc_event_from_scm(&ev, 200, 0, pbs);
    CHECK_EQ(ev.code, 200);
    CHECK_EQ(ev.session_id, 0);
    CHECK_STR(ev.power_setting, "");
}

int main(void)
{
    test_states();
    test_controls();
    test_control_check();
    test_pending_state();
    test_transitions();
    test_exit_status();
    test_parse_control();
    test_json_str();
    test_name_valid();
    test_event_from_scm();
    return CHECK_EXIT("test_model");
}
