/* SPDX-License-Identifier: Apache-2.0 */
/* test_flow_evict.c: the flow table's bounds: eviction by class (finished
 * entries, half-open flows, flows without a session, then the least recently
 * active session), a SYN flood next to a session, emergency mode, and the
 * consumer's own charges against the memcap. RFC 9293 (TCP). */
#include "flow_fixture.h"

/* Eviction by class when the table is full: half-open flows first (even
 * the newest), then flows without a session (a lazy consumer's handshake
 * with no byte yet), then the least recently active session; a new flow is
 * never refused. */
static void test_evict_by_class(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    f.r.lazy = true;
    f.r.log_want = true;
    f.cfg.max_flows = 3;
    fx_start(&f);
    f.cli.port = 40000; /* A: a session, the oldest flow */
    handshake(&f);
    seg(&f, S, ACK | PSH, 5001, 1001, "220 a\r\n");
    f.ts += SW_USEC_PER_SEC;
    f.cli.port = 40001; /* B: a handshake, no byte */
    handshake(&f);
    f.ts += SW_USEC_PER_SEC;
    f.cli.port = 40002; /* C: a SYN */
    seg(&f, C, SYN, 1000, 0, NULL);
    f.ts += SW_USEC_PER_SEC;
    f.cli.port = 40003; /* D: a SYN evicts C, the newest but half-open */
    seg(&f, C, SYN, 1000, 0, NULL);
    const struct flow_stats *st = flow_table_stats(f.t);
    assert_int_equal(st->evicted_half_open, 1);
    f.cli.port = 40004; /* E: midstream bytes evict D */
    seg(&f, C, ACK | PSH, 7000, 1, "x");
    assert_int_equal(st->evicted_half_open, 2);
    f.cli.port = 40005; /* F: evicts B (no session) */
    seg(&f, C, ACK | PSH, 7000, 1, "y");
    assert_int_equal(st->evicted_no_session, 1);
    f.cli.port = 40006; /* G: evicts A, the least recently active session */
    seg(&f, C, ACK | PSH, 7000, 1, "z");
    assert_int_equal(st->evicted_session, 1);
    assert_int_equal(st->flows_evicted, 4);
    assert_int_equal(st->flows_refused, 0);
    assert_string_equal(f.r.log, "want 40000\n"
                                 "open 192.0.2.10:40000 > 198.51.100.25:25 vlan=0 mid=0 pkt=1\n"
                                 "s2c data '220 a\r\n' #4\n"
                                 "want 40001\n"
                                 "want 40002\n"
                                 "unopened evicted\n" /* C, for D */
                                 "want 40003\n"
                                 "unopened evicted\n" /* D, for E */
                                 "want 40004\n"
                                 "open 192.0.2.10:40004 > 198.51.100.25:25 vlan=0 mid=1 pkt=10\n"
                                 "c2s data 'x' #10\n"
                                 "unopened evicted\n" /* B, for F */
                                 "want 40005\n"
                                 "open 192.0.2.10:40005 > 198.51.100.25:25 vlan=0 mid=1 pkt=11\n"
                                 "c2s data 'y' #11\n"
                                 "close evicted t=1003\n" /* A, for G */
                                 "want 40006\n"
                                 "open 192.0.2.10:40006 > 198.51.100.25:25 vlan=0 mid=1 pkt=12\n"
                                 "c2s data 'z' #12\n");
    fx_end(&f);
}

/* A SYN flood while a session pauses: the session stays, every SYN takes
 * the place of an older one. */
/* A lazy consumer's flow that has seen only its SYN is an embryonic entry
 * of FLOW_EMB_SIZE bytes; its next packet grows it into a full flow that
 * goes on as if it had been full from the start (a retransmitted SYN and
 * the handshake, then data delivered from the SYN's sequence number). */
static void test_embryonic_entries(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    f.r.lazy = true;
    fx_start(&f);
    const struct flow_stats *st = flow_table_stats(f.t);
    uint64_t base = st->bytes_in_use;
    for (unsigned i = 0; i < 100; i++) {
        f.cli.port = (uint16_t)(41000 + i);
        seg(&f, C, SYN, 1000, 0, NULL);
    }
    assert_true(FLOW_EMB_SIZE <= 112);
    assert_int_equal(st->bytes_in_use, base + 100 * FLOW_EMB_SIZE);
    f.cli.port = 41050;
    seg(&f, C, SYN, 1000, 0, NULL); /* retransmitted */
    seg(&f, S, SYN | ACK, 5000, 1001, NULL);
    seg(&f, C, ACK, 1001, 5001, NULL);
    assert_int_equal(st->bytes_in_use, base + 99 * FLOW_EMB_SIZE + sizeof(struct flow));
    seg(&f, S, ACK | PSH, 5001, 1001, "220 mx\r\n");
    seg(&f, C, ACK | PSH, 1001, 5009, "EHLO a\r\n");
    f.cli.port = 41060; /* a new SYN on the ports of an embryonic entry */
    seg(&f, C, SYN, 7000, 0, NULL);
    assert_int_equal(st->flows_timed_out, 1);
    assert_int_equal(st->flows_created, 101);
    assert_int_equal(st->flows_active, 100);
    assert_non_null(strstr(f.r.log, "s2c data '220 mx\r\n'"));
    assert_non_null(strstr(f.r.log, "c2s data 'EHLO a\r\n'"));
    assert_null(strstr(f.r.log, "gap"));
    fx_end(&f);
}

static void test_syn_flood_keeps_session(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    f.r.lazy = true;
    f.cfg.max_flows = 100;
    fx_start(&f);
    handshake(&f);
    seg(&f, S, ACK | PSH, 5001, 1001, "220 mx\r\n");
    for (unsigned i = 0; i < 5000; i++) {
        f.cli.port = (uint16_t)(41000 + i);
        seg(&f, C, SYN, 1000, 0, NULL);
    }
    f.cli.port = 40000;
    seg(&f, C, ACK | PSH, 1001, 5009, "EHLO a\r\n");
    const struct flow_stats *st = flow_table_stats(f.t);
    assert_int_equal(st->evicted_half_open, 5000 - 99);
    assert_int_equal(st->evicted_session, 0);
    assert_non_null(strstr(f.r.log, "c2s data 'EHLO a\r\n'"));
    assert_null(strstr(f.r.log, "close"));
    fx_end(&f);
}

/* Above 90 % of max_flows the table is in emergency mode: idle flows time
 * out after the emergency timeouts; under 70 % it leaves it. */
static void test_emergency_mode(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    f.r.lazy = true;
    f.cfg.max_flows = 10;
    fx_start(&f);
    handshake(&f);
    seg(&f, S, ACK | PSH, 5001, 1001, "220 mx\r\n");
    const struct flow_stats *st = flow_table_stats(f.t);
    for (unsigned i = 0; i < 8; i++) {
        f.cli.port = (uint16_t)(41000 + i);
        seg(&f, C, SYN, 1000, 0, NULL);
    }
    assert_int_equal(st->emergency, 0); /* 9 flows: 90 %, not above */
    f.cli.port = 42000;
    seg(&f, C, SYN, 1000, 0, NULL);
    assert_int_equal(st->emergency, 1);
    assert_int_equal(st->emergency_entered, 1);
    /* 3 s idle: the half-open flows go (30 s otherwise), the session stays */
    flow_table_expire(f.t, f.ts + 3 * SW_USEC_PER_SEC);
    assert_int_equal(st->flows_active, 1);
    assert_int_equal(st->timed_out_emergency, 9);
    assert_int_equal(st->emergency, 0);
    assert_int_equal(st->emergency_left, 1);
    assert_null(strstr(f.r.log, "close"));
    /* out of emergency: the session has its 300 s again */
    flow_table_expire(f.t, f.ts + 200 * SW_USEC_PER_SEC);
    assert_int_equal(st->flows_active, 1);
    /* back in emergency, it times out after 30 s idle */
    for (unsigned i = 0; i < 9; i++) {
        f.cli.port = (uint16_t)(43000 + i);
        f.ts = f.ts + 201 * SW_USEC_PER_SEC;
        seg(&f, C, SYN, 1000, 0, NULL);
        f.ts -= 201 * SW_USEC_PER_SEC;
    }
    assert_int_equal(st->emergency_entered, 2);
    flow_table_expire(f.t, f.ts + 202 * SW_USEC_PER_SEC);
    assert_non_null(strstr(f.r.log, "close timeout t=1202\n"));
    fx_end(&f);
}

/* A consumer's own charges count against the memcap: past it, other flows
 * are evicted (never the one being processed) and the charge is never
 * refused. */
static void test_consumer_charges(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    f.cfg.memcap = 1024 * sizeof(void *) + 3 * sizeof(struct flow) + 1000;
    fx_start(&f);
    f.cli.port = 40000;
    seg(&f, C, ACK | PSH, 1000, 1, "a");
    f.cli.port = 40001;
    seg(&f, C, ACK | PSH, 1000, 1, "b");
    const struct flow_stats *st = flow_table_stats(f.t);
    uint64_t before = st->bytes_in_use;
    flow_table_mem_charge(f.t, 500);
    assert_int_equal(st->bytes_in_use, before + 500);
    assert_int_equal(st->flows_evicted, 0);
    flow_table_mem_charge(f.t, 800); /* over: the oldest flow goes */
    assert_int_equal(st->flows_evicted, 1);
    assert_int_equal(st->evicted_session, 1);
    assert_non_null(strstr(f.r.log, "close evicted"));
    flow_table_mem_release(f.t, 1300);
    fx_end(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_evict_by_class),          cmocka_unit_test(test_embryonic_entries),
        cmocka_unit_test(test_syn_flood_keeps_session), cmocka_unit_test(test_emergency_mode),
        cmocka_unit_test(test_consumer_charges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
