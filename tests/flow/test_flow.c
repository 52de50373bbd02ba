/* SPDX-License-Identifier: Apache-2.0 */
/* test_flow.c: unit tests of the flow table and TCP reassembly with
 * hand-built segments. RFC 9293 (TCP), RFC 1982 (sequence wrap).
 * Every test records the consumer's callbacks as text lines and asserts the
 * exact sequence. */
#include "flow_fixture.h"

/* ---- tests ---- */

static void test_in_order(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    f.r.log_packets = true;
    fx_start(&f);
    handshake(&f);
    seg(&f, S, ACK | PSH, 5001, 1001, "220 mx ESMTP\r\n");
    seg(&f, C, ACK | PSH, 1001, 5015, "EHLO a\r\n");
    seg(&f, C, FIN | ACK, 1009, 5015, NULL);
    seg(&f, S, FIN | ACK, 5015, 1010, NULL);
    seg(&f, C, ACK, 1010, 5016, NULL);
    assert_string_equal(f.r.log, OPEN_STD "c2s pkt #1 flags=02\n"
                                          "s2c pkt #2 flags=12\n"
                                          "c2s pkt #3 flags=10\n"
                                          "s2c pkt #4 flags=18\n"
                                          "s2c data '220 mx ESMTP\r\n' #4\n"
                                          "c2s pkt #5 flags=18\n"
                                          "c2s data 'EHLO a\r\n' #5\n"
                                          "c2s pkt #6 flags=11\n"
                                          "s2c pkt #7 flags=11\n"
                                          "close fin t=1000\n");
    /* the last ACK hit the closed entry: no new flow */
    const struct flow_stats *st = flow_table_stats(f.t);
    assert_int_equal(st->flows_created, 1);
    assert_int_equal(st->flows_closed, 1);
    assert_int_equal(st->bytes_delivered, 22);
    assert_int_equal(st->flows_active, 1);
    fx_end(&f);
    assert_int_equal(f.r.closes, 1);
}

static void test_out_of_order(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_start(&f);
    handshake(&f);
    seg(&f, C, ACK, 1009, 5001, "RCPT\r\n"); /* #4 */
    seg(&f, C, ACK, 1005, 5001, "FROM");     /* #5 */
    seg(&f, C, ACK, 1001, 5001, "MAIL");     /* #6 */
    assert_string_equal(f.r.log, OPEN_STD "c2s data 'MAIL' #6\n"
                                          "c2s data 'FROM' #5\n"
                                          "c2s data 'RCPT\r\n' #4\n");
    const struct flow_stats *st = flow_table_stats(f.t);
    assert_int_equal(st->segs_ooo_queued, 2);
    /* delivered bytes are kept until ACKed, then nothing is left but the flow */
    assert_int_equal(st->bytes_in_use,
                     1024 * sizeof(void *) + sizeof(struct flow) + sizeof(struct retain) + 64);
    seg(&f, S, ACK, 5001, 1015, NULL);
    assert_int_equal(st->bytes_in_use, 1024 * sizeof(void *) + sizeof(struct flow));
    fx_end(&f);
}

static void test_retransmission(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_start(&f);
    handshake(&f);
    seg(&f, C, ACK, 1001, 5001, "HELO a\r\n");
    seg(&f, C, ACK, 1001, 5001, "HELO a\r\n");
    seg(&f, C, ACK, 1001, 5001, "HELO a\r\nQUIT\r\n"); /* partial retransmission */
    assert_string_equal(f.r.log, OPEN_STD "c2s data 'HELO a\r\n' #4\n"
                                          "c2s data 'QUIT\r\n' #6\n");
    assert_int_equal(flow_table_stats(f.t)->segs_retransmitted, 1);
    assert_int_equal(flow_table_stats(f.t)->overlaps, 1);
    fx_end(&f);
}

static void test_overlap_identical(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_start(&f);
    handshake(&f);
    seg(&f, C, ACK, 1005, 5001, "DDDD");     /* #4 queued */
    seg(&f, C, ACK, 1001, 5001, "XXXXDDDD"); /* #5 overlaps #4 with equal bytes */
    assert_string_equal(f.r.log, OPEN_STD "c2s data 'XXXX' #5\n"
                                          "c2s data 'DDDD' #4\n");
    assert_int_equal(flow_table_stats(f.t)->overlaps, 1);
    assert_int_equal(flow_table_stats(f.t)->overlap_conflicts, 0);
    fx_end(&f);
}

static void test_overlap_conflict(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_start(&f);
    handshake(&f);
    seg(&f, C, ACK, 1005, 5001, "DDDD");     /* #4 queued first: wins */
    seg(&f, C, ACK, 1003, 5001, "YYEEEEZZ"); /* #5 conflicts on 1005..1008 */
    seg(&f, C, ACK, 1001, 5001, "XX");       /* #6 fills the hole */
    assert_string_equal(f.r.log, OPEN_STD "c2s conflict #5 at 4 'DDDD' kept, 'EEEE' dropped\n"
                                          "c2s data 'XX' #6\n"
                                          "c2s data 'YY' #5\n"
                                          "c2s data 'DDDD' #4\n"
                                          "c2s data 'ZZ' #5\n");
    assert_int_equal(flow_table_stats(f.t)->overlap_conflicts, 1);
    fx_end(&f);
}

/* An on-path injector races the real server: two copies of the reply at the
 * same sequence number. The first delivered copy stands; the second is
 * reported while the bytes are not yet ACKed. */
static void test_conflict_after_delivery(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_start(&f);
    handshake(&f);
    seg(&f, C, ACK, 1001, 5001, "STARTTLS\r\n");              /* #4 */
    seg(&f, S, ACK, 5001, 1011, "454 TLS not available\r\n"); /* #5 injected */
    seg(&f, S, ACK, 5001, 1011, "220 2.0.0 Ready\r\n");       /* #6 the real one */
    seg(&f, S, ACK, 5001, 1011, "454 TLS");                   /* #7 same bytes: fine */
    seg(&f, C, ACK, 1011, 5024, NULL);                        /* #8 the client ACKs */
    seg(&f, S, ACK, 5001, 1011, "220 2.0.0 Ready\r\n");       /* #9 after the ACK: moot */
    assert_string_equal(f.r.log, OPEN_STD "c2s data 'STARTTLS\r\n' #4\n"
                                          "s2c data '454 TLS not available\r\n' #5\n"
                                          "s2c conflict #6 at -23 '454 TLS not avail' kept, "
                                          "'220 2.0.0 Ready\r\n' dropped\n");
    const struct flow_stats *st = flow_table_stats(f.t);
    assert_int_equal(st->overlap_conflicts, 1);
    assert_int_equal(st->segs_retransmitted, 3);
    fx_end(&f);
}

/* The retained bytes wrap around their ring: copies are still compared
 * right, only the last REASM_RETAIN_MAX unACKed bytes count, and what was
 * ACKed is forgotten. */
static void test_retention_ring(void **state)
{
    (void)state;
    static char body[7][1000];
    for (int i = 0; i < 7; i++)
        for (int k = 0; k < 1000; k++)
            body[i][k] = (char)('a' + (i * 7 + k) % 26);
    struct fx f;
    fx_init(&f);
    fx_start(&f);
    handshake(&f);
    for (int i = 0; i < 7; i++) /* 7000 bytes, no ACK: the ring wraps */
        seg_ex(&f, C, ACK, 1001 + 1000u * (uint32_t)i, 5001, body[i], 1000);
    const struct flow_stats *st = flow_table_stats(f.t);
    char copy[1000];
    /* identical copy of the last segment, across the ring's end */
    seg_ex(&f, C, ACK, 1001 + 6000, 5001, body[6], 1000);
    assert_int_equal(st->overlap_conflicts, 0);
    /* a different byte in segment 4 (retained): reported */
    memcpy(copy, body[4], 1000);
    copy[999] ^= 1;
    seg_ex(&f, C, ACK, 1001 + 4000, 5001, copy, 1000);
    assert_int_equal(st->overlap_conflicts, 1);
    /* a different byte in segment 1 (older than the last 4096): not known */
    memcpy(copy, body[1], 1000);
    copy[0] ^= 1;
    seg_ex(&f, C, ACK, 1001 + 1000, 5001, copy, 1000);
    assert_int_equal(st->overlap_conflicts, 1);
    /* straddling the retained window's start (stream byte 2904): only the
     * retained part counts */
    memcpy(copy, body[2], 1000);
    copy[0] ^= 1; /* stream byte 2000: forgotten */
    seg_ex(&f, C, ACK, 1001 + 2000, 5001, copy, 1000);
    assert_int_equal(st->overlap_conflicts, 1);
    copy[999] ^= 1; /* stream byte 2999: retained */
    seg_ex(&f, C, ACK, 1001 + 2000, 5001, copy, 1000);
    assert_int_equal(st->overlap_conflicts, 2);
    /* the server ACKs up to segment 5: segment 4 is moot now */
    seg(&f, S, ACK, 5001, 1001 + 5000, NULL);
    memcpy(copy, body[4], 1000);
    copy[0] ^= 1;
    seg_ex(&f, C, ACK, 1001 + 4000, 5001, copy, 1000);
    assert_int_equal(st->overlap_conflicts, 2);
    memcpy(copy, body[5], 1000);
    copy[500] ^= 1;
    seg_ex(&f, C, ACK, 1001 + 5000, 5001, copy, 1000);
    assert_int_equal(st->overlap_conflicts, 3);
    /* all ACKed: the 4 KiB buffer stays (bulk), empty */
    seg(&f, S, ACK, 5001, 1001 + 7000, NULL);
    assert_int_equal(st->bytes_in_use, 1024 * sizeof(void *) + sizeof(struct flow) +
                                           sizeof(struct retain) + REASM_RETAIN_MAX);
    seg_ex(&f, C, ACK, 1001 + 6000, 5001, copy, 1000);
    assert_int_equal(st->overlap_conflicts, 3);
    assert_int_equal(st->bytes_delivered, 7000);
    fx_end(&f);
}

static void test_gap_by_ack(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_start(&f);
    handshake(&f);
    seg(&f, C, ACK, 1001, 5001, "AAAA");       /* #4 */
    seg(&f, C, ACK, 1009, 5001, "CCCC");       /* #5 queued: 1005..1008 missing */
    seg(&f, S, ACK, 5001, 1013, NULL);         /* #6 the server got it all */
    seg(&f, S, ACK, 5001, 1013, "250 ok\r\n"); /* #7 and answers: the hole is lost */
    seg(&f, S, ACK, 5009, 1017, NULL);         /* #8 ACK beyond an empty queue */
    seg(&f, C, ACK, 1017, 5009, "EEEE");       /* #9 the client goes on past it */
    assert_string_equal(f.r.log, OPEN_STD "c2s data 'AAAA' #4\n"
                                          "c2s gap 4 #5\n"
                                          "c2s data 'CCCC' #5\n"
                                          "s2c data '250 ok\r\n' #7\n"
                                          "c2s gap 4 #9\n"
                                          "c2s data 'EEEE' #9\n");
    assert_int_equal(flow_table_stats(f.t)->gaps, 2);
    assert_int_equal(flow_table_stats(f.t)->gap_bytes, 8);
    fx_end(&f);

    /* the capture holds the ACKs before the data they acknowledge (seen in
     * real captures): no gap, the late data fills the stream */
    fx_init(&f);
    fx_start(&f);
    handshake(&f);
    seg(&f, C, ACK, 1001, 5001, "AAAA");       /* #4 */
    seg(&f, S, ACK, 5001, 1009, NULL);         /* #5 */
    seg(&f, S, ACK, 5001, 1013, NULL);         /* #6 */
    seg(&f, C, ACK, 1005, 5001, "BBBB");       /* #7 */
    seg(&f, C, ACK, 1009, 5001, "CCCC");       /* #8 */
    seg(&f, S, ACK, 5001, 1013, "250 ok\r\n"); /* #9 */
    /* an ACK beyond a hole at close: declared at the flush */
    seg(&f, S, ACK, 5009, 1020, NULL); /* #10 */
    f.ts += 5 * SW_USEC_PER_SEC;
    fx_end(&f);
    assert_string_equal(f.r.log, OPEN_STD "c2s data 'AAAA' #4\n"
                                          "c2s data 'BBBB' #7\n"
                                          "c2s data 'CCCC' #8\n"
                                          "s2c data '250 ok\r\n' #9\n"
                                          "c2s gap 7 #0\n"
                                          "close shutdown t=1000\n");
}

static void test_gap_by_queue_bound(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    f.cfg.max_queued_segs = 2;
    fx_start(&f);
    handshake(&f);
    seg(&f, C, ACK, 1005, 5001, "BBBB"); /* #4 */
    seg(&f, C, ACK, 1009, 5001, "CCCC"); /* #5 */
    seg(&f, C, ACK, 1013, 5001, "DDDD"); /* #6: third segment, bound of 2 */
    seg(&f, C, ACK, 1001, 5001, "AAAA"); /* #7 too late: a retransmission */
    assert_string_equal(f.r.log, OPEN_STD "c2s gap 4 #4\n"
                                          "c2s data 'BBBB' #4\n"
                                          "c2s data 'CCCC' #5\n"
                                          "c2s data 'DDDD' #6\n");
    assert_int_equal(flow_table_stats(f.t)->segs_retransmitted, 1);
    fx_end(&f);

    /* the byte bound works the same way */
    fx_init(&f);
    f.cfg.max_queued_bytes = 6;
    fx_start(&f);
    handshake(&f);
    seg(&f, C, ACK, 1005, 5001, "BBBB"); /* #4 */
    seg(&f, C, ACK, 1011, 5001, "DDDD"); /* #5: 8 bytes > 6, room once BBBB goes */
    fx_end(&f);                          /* the shutdown flushes the queue */
    assert_string_equal(f.r.log, OPEN_STD "c2s gap 4 #4\n"
                                          "c2s data 'BBBB' #4\n"
                                          "c2s gap 2 #5\n"
                                          "c2s data 'DDDD' #5\n"
                                          "close shutdown t=1000\n");
}

static void test_gap_at_fin(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_start(&f);
    handshake(&f);
    seg(&f, C, ACK, 1001, 5001, "AAAA");     /* #4 */
    seg(&f, C, ACK, 1009, 5001, "CCCC");     /* #5 queued */
    seg(&f, C, FIN | ACK, 1013, 5001, NULL); /* #6 */
    seg(&f, S, FIN | ACK, 5001, 1005, NULL); /* #7 acks only what it has */
    /* waits for the hole in the closed state, then flushes */
    f.ts += 9 * SW_USEC_PER_SEC;
    flow_table_expire(f.t, f.ts);
    assert_int_equal(f.r.closes, 0);
    f.ts += 1 * SW_USEC_PER_SEC;
    flow_table_expire(f.t, f.ts);
    assert_string_equal(f.r.log, OPEN_STD "c2s data 'AAAA' #4\n"
                                          "c2s gap 4 #5\n"
                                          "c2s data 'CCCC' #5\n"
                                          "close fin t=1010\n");
    fx_end(&f);

    /* FIN both ways with the last ACK covering the hole: gap then close */
    fx_init(&f);
    fx_start(&f);
    handshake(&f);
    seg(&f, C, ACK, 1001, 5001, "AAAA");       /* #4 */
    seg(&f, C, FIN | ACK, 1009, 5001, "CCCC"); /* #5 data + FIN after a hole */
    seg(&f, S, FIN | ACK, 5001, 1014, NULL);   /* #6 */
    seg(&f, C, ACK, 1014, 5002, NULL);         /* #7 */
    assert_string_equal(f.r.log, OPEN_STD "c2s data 'AAAA' #4\n"
                                          "c2s gap 4 #5\n"
                                          "c2s data 'CCCC' #5\n"
                                          "close fin t=1000\n");
    fx_end(&f);
}

static void test_seq_wrap(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_start(&f);
    seg(&f, C, SYN, 0xfffffff8u, 0, NULL);
    seg(&f, S, SYN | ACK, 0xfffffffeu, 0xfffffff9u, NULL);
    seg(&f, C, ACK, 0xfffffff9u, 0xffffffffu, NULL);
    seg(&f, C, ACK, 0x00000001u, 0xffffffffu, "3456");        /* #4 after the wrap: queued */
    seg(&f, C, ACK, 0xfffffff9u, 0xffffffffu, "abcdefgh012"); /* #5 crosses 2^32 */
    seg(&f, S, ACK, 0xffffffffu, 0x00000005u, "220 x\r\n");   /* #6 server seq wraps inside */
    seg(&f, S, ACK, 0x00000006u, 0x00000005u, "ok");          /* #7 */
    assert_string_equal(f.r.log, OPEN_STD "c2s conflict #5 at 8 '345' kept, '012' dropped\n"
                                          "c2s data 'abcdefgh' #5\n"
                                          "c2s data '3456' #4\n"
                                          "s2c data '220 x\r\n' #6\n"
                                          "s2c data 'ok' #7\n");
    assert_int_equal(flow_table_stats(f.t)->overlap_conflicts, 1);
    fx_end(&f);
}

static void test_rst_midstream(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_start(&f);
    handshake(&f);
    seg(&f, C, ACK, 1001, 5001, "EHLO"); /* #4 */
    seg(&f, C, ACK, 1009, 5001, "QUIT"); /* #5 queued behind a hole */
    f.ts += 2 * SW_USEC_PER_SEC;
    seg(&f, S, RST | ACK, 5001, 1005, NULL); /* #6 */
    seg(&f, C, ACK, 1013, 5001, "more");     /* #7 late: absorbed */
    assert_string_equal(f.r.log, OPEN_STD "c2s data 'EHLO' #4\n"
                                          "c2s gap 4 #5\n"
                                          "c2s data 'QUIT' #5\n"
                                          "close rst t=1002\n");
    assert_int_equal(f.r.opens, 1);
    /* a RST never opens a flow */
    f.cli.port = 40001;
    seg(&f, C, RST, 1, 0, NULL);
    assert_int_equal(f.r.opens, 1);
    assert_int_equal(flow_table_stats(f.t)->flows_created, 1);
    /* the closed entry goes away after the closed timeout, silently */
    f.ts += 10 * SW_USEC_PER_SEC;
    flow_table_expire(f.t, f.ts);
    assert_int_equal(flow_table_stats(f.t)->flows_active, 0);
    assert_int_equal(f.r.closes, 1);
    fx_end(&f);
}

static void test_rst_out_of_window(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_start(&f);
    handshake(&f);
    seg(&f, S, ACK, 5001, 1001, "220 hi\r\n");      /* #4 */
    seg(&f, C, RST, 0x80000000u, 0, NULL);          /* #5 blind reset: ignored */
    seg(&f, C, RST | ACK, 1001 - 100, 5009, NULL);  /* #6 behind: ignored */
    seg(&f, C, ACK, 1001, 5009, "EHLO a\r\n");      /* #7 */
    seg(&f, C, RST | ACK, 1009 + 3000, 5009, NULL); /* #8 ahead, in window */
    assert_string_equal(f.r.log, OPEN_STD "s2c data '220 hi\r\n' #4\n"
                                          "c2s data 'EHLO a\r\n' #7\n"
                                          "close rst t=1000\n");
    assert_int_equal(flow_table_stats(f.t)->rst_ignored, 2);
    fx_end(&f);
}

static void test_fin_both_sides_and_port_reuse(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_start(&f);
    handshake(&f);
    seg(&f, S, ACK, 5001, 1001, "220 hi\r\n"); /* #4 */
    seg(&f, S, FIN | ACK, 5009, 1001, NULL);   /* #5 server closes first */
    seg(&f, C, ACK, 1001, 5010, NULL);         /* #6 */
    seg(&f, C, ACK, 1001, 5010, "QUIT\r\n");   /* #7 half-closed: still data */
    seg(&f, C, FIN | ACK, 1007, 5010, NULL);   /* #8 */
    seg(&f, S, ACK, 5010, 1008, NULL);         /* #9 */
    /* the same ports again: a new connection */
    f.ts += SW_USEC_PER_SEC;
    seg(&f, C, SYN, 9000, 0, NULL);  /* #10 */
    seg(&f, C, ACK, 9001, 0, "NEW"); /* #11 */
    assert_string_equal(f.r.log,
                        OPEN_STD "s2c data '220 hi\r\n' #4\n"
                                 "c2s data 'QUIT\r\n' #7\n"
                                 "close fin t=1000\n"
                                 "open 192.0.2.10:40000 > 198.51.100.25:25 vlan=0 mid=0 pkt=10\n"
                                 "c2s data 'NEW' #11\n");
    fx_end(&f);
    assert_int_equal(f.r.closes, 2);
}

/* A new SYN on a live flow: a copy of the first SYN changes nothing; another
 * ISN is a new connection on the same ports, the old one ends as silent. */
static void test_new_syn_on_live_flow(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_start(&f);
    handshake(&f);
    seg(&f, C, ACK, 1001, 5001, "EHLO");   /* #4 */
    seg(&f, C, SYN, 1000, 0, NULL);        /* #5 a late copy of the SYN */
    seg(&f, C, ACK, 1005, 5001, " a\r\n"); /* #6 */
    f.ts += 60 * SW_USEC_PER_SEC;
    seg(&f, C, SYN, 77000, 0, NULL); /* #7 a new connection */
    seg(&f, S, SYN | ACK, 8000, 77001, NULL);
    seg(&f, C, ACK, 77001, 8001, "HELO");
    /* a midstream flow: a client SYN is a new connection too */
    f.cli.port = 40001;
    seg(&f, C, ACK, 3000, 1, "DATA"); /* #10 */
    seg(&f, C, SYN, 3003, 0, NULL);   /* #11 SYN right below: a copy */
    seg(&f, C, SYN, 9000, 0, NULL);   /* #12 */
    assert_string_equal(f.r.log,
                        OPEN_STD "c2s data 'EHLO' #4\n"
                                 "c2s data ' a\r\n' #6\n"
                                 "close timeout t=1060\n"
                                 "open 192.0.2.10:40000 > 198.51.100.25:25 vlan=0 mid=0 pkt=7\n"
                                 "c2s data 'HELO' #9\n"
                                 "open 192.0.2.10:40001 > 198.51.100.25:25 vlan=0 mid=1 pkt=10\n"
                                 "c2s data 'DATA' #10\n"
                                 "close timeout t=1060\n"
                                 "open 192.0.2.10:40001 > 198.51.100.25:25 vlan=0 mid=0 pkt=12\n");
    assert_int_equal(flow_table_stats(f.t)->flows_timed_out, 2);
    fx_end(&f);
}

static void test_midstream(void **state)
{
    (void)state;
    struct fx f;
    /* server speaks first: roles from port 25 */
    fx_init(&f);
    fx_start(&f);
    seg(&f, S, ACK, 7000, 3000, "250 ok\r\n");
    seg(&f, C, ACK, 3000, 7008, "DATA\r\n");
    assert_string_equal(f.r.log, "open 192.0.2.10:40000 > 198.51.100.25:25 vlan=0 mid=1 pkt=1\n"
                                 "s2c data '250 ok\r\n' #1\n"
                                 "c2s data 'DATA\r\n' #2\n");
    fx_end(&f);

    /* client speaks first */
    fx_init(&f);
    fx_start(&f);
    seg(&f, C, ACK, 3000, 7000, "RSET\r\n");
    seg(&f, S, ACK, 7000, 3006, "250 ok\r\n");
    assert_string_equal(f.r.log, "open 192.0.2.10:40000 > 198.51.100.25:25 vlan=0 mid=1 pkt=1\n"
                                 "c2s data 'RSET\r\n' #1\n"
                                 "s2c data '250 ok\r\n' #2\n");
    fx_end(&f);

    /* no well-known port: the lower port is the server; ports configurable */
    fx_init(&f);
    f.srv.port = 8025;
    f.cli.port = 50000;
    fx_start(&f);
    seg(&f, S, ACK, 7000, 3000, "x");
    f.cli.port = 1025; /* 1025 < 8025 but 8025 is configured */
    static const uint16_t ports[] = {8025};
    flow_table_free(f.t);
    f.cfg.server_ports = ports;
    f.cfg.n_server_ports = 1;
    fx_start(&f);
    seg(&f, S, ACK, 7000, 3000, "y");
    assert_string_equal(f.r.log, "open 192.0.2.10:50000 > 198.51.100.25:8025 vlan=0 mid=1 pkt=1\n"
                                 "s2c data 'x' #1\n"
                                 "close shutdown t=1000\n"
                                 "open 192.0.2.10:1025 > 198.51.100.25:8025 vlan=0 mid=1 pkt=2\n"
                                 "s2c data 'y' #2\n");
    fx_end(&f);

    /* SYN-ACK first: roles known, not midstream; client stream from the ack */
    fx_init(&f);
    fx_start(&f);
    seg(&f, S, SYN | ACK, 5000, 1001, NULL);
    seg(&f, C, ACK, 1001, 5001, "EHLO");
    assert_string_equal(f.r.log, "open 192.0.2.10:40000 > 198.51.100.25:25 vlan=0 mid=0 pkt=1\n"
                                 "c2s data 'EHLO' #2\n");
    fx_end(&f);
}

static void test_ipv6(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    memset(&f.cli.addr, 0, sizeof(f.cli.addr));
    memset(&f.srv.addr, 0, sizeof(f.srv.addr));
    f.cli.addr.family = f.srv.addr.family = 6;
    f.cli.addr.b[0] = f.srv.addr.b[0] = 0x20;
    f.cli.addr.b[1] = f.srv.addr.b[1] = 0x01;
    f.cli.addr.b[2] = f.srv.addr.b[2] = 0x0d;
    f.cli.addr.b[3] = f.srv.addr.b[3] = 0xb8;
    f.cli.addr.b[15] = 0x10;
    f.srv.addr.b[15] = 0x25;
    f.ip_id = 0;
    f.ttl = 57;
    f.r.log_meta = true;
    fx_start(&f);
    handshake(&f);
    seg(&f, S, ACK, 5001, 1001, "220 v6\r\n");
    assert_string_equal(f.r.log, "open 2001:db8::10:40000 > 2001:db8::25:25 vlan=0 mid=0 pkt=1\n"
                                 "s2c data '220 v6\r\n' #4 ttl=57 id=0 v6\n");
    fx_end(&f);
}

static void test_vlan_separates(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_start(&f);
    f.vlan = 10;
    seg(&f, C, SYN, 1000, 0, NULL);
    f.vlan = 20;
    seg(&f, C, SYN, 1000, 0, NULL);
    f.vlan = 10;
    seg(&f, C, ACK, 1001, 5001, "ten");
    f.vlan = 20;
    seg(&f, C, ACK, 1001, 5001, "twenty");
    assert_string_equal(f.r.log, "open 192.0.2.10:40000 > 198.51.100.25:25 vlan=10 mid=0 pkt=1\n"
                                 "open 192.0.2.10:40000 > 198.51.100.25:25 vlan=20 mid=0 pkt=2\n"
                                 "c2s data 'ten' #3\n"
                                 "c2s data 'twenty' #4\n");
    assert_int_equal(flow_table_stats(f.t)->flows_active, 2);
    fx_end(&f);
}

static void test_memcap_eviction(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    /* room for the bucket array and exactly two flows */
    f.cfg.memcap = 1024 * sizeof(void *) + 2 * sizeof(struct flow);
    fx_start(&f);
    for (int i = 0; i < 3; i++) {
        f.cli.port = (uint16_t)(40000 + i);
        seg(&f, C, ACK, 1000, 1, "x");
        f.ts += SW_USEC_PER_SEC;
    }
    /* the oldest idle flow goes first: touch 40001, then open 40003 */
    f.cli.port = 40001;
    seg(&f, C, ACK, 1001, 1, "y");
    f.cli.port = 40003;
    seg(&f, C, ACK, 1000, 1, "z");
    assert_string_equal(f.r.log, "open 192.0.2.10:40000 > 198.51.100.25:25 vlan=0 mid=1 pkt=1\n"
                                 "c2s data 'x' #1\n"
                                 "open 192.0.2.10:40001 > 198.51.100.25:25 vlan=0 mid=1 pkt=2\n"
                                 "c2s data 'x' #2\n"
                                 "close evicted t=1002\n"
                                 "open 192.0.2.10:40002 > 198.51.100.25:25 vlan=0 mid=1 pkt=3\n"
                                 "c2s data 'x' #3\n"
                                 "c2s data 'y' #4\n"
                                 "close evicted t=1003\n"
                                 "open 192.0.2.10:40003 > 198.51.100.25:25 vlan=0 mid=1 pkt=5\n"
                                 "c2s data 'z' #5\n");
    const struct flow_stats *st = flow_table_stats(f.t);
    assert_int_equal(st->flows_evicted, 2);
    assert_int_equal(st->flows_active, 2);
    assert_true(st->bytes_in_use <= f.cfg.memcap);
    fx_end(&f);

    /* queued segments are charged too: a queue that does not fit evicts an
     * idle flow, and when nothing else can go the hole is declared */
    fx_init(&f);
    f.cfg.memcap = 1024 * sizeof(void *) + 2 * sizeof(struct flow) + sizeof(struct seg) + 4;
    fx_start(&f);
    f.cli.port = 40000;
    seg(&f, C, ACK, 1000, 1, "a");
    f.ts += SW_USEC_PER_SEC;
    f.cli.port = 40001;
    seg(&f, C, ACK, 1000, 1, "b");
    seg(&f, C, ACK, 1005, 1, "QQQQ"); /* #3 fits */
    seg(&f, C, ACK, 1010, 1, "RRRR"); /* #4 evicts 40000 */
    seg(&f, C, ACK, 1015, 1, "SSSS"); /* #5 nothing left to evict */
    fx_end(&f);
    assert_string_equal(f.r.log, "open 192.0.2.10:40000 > 198.51.100.25:25 vlan=0 mid=1 pkt=1\n"
                                 "c2s data 'a' #1\n"
                                 "open 192.0.2.10:40001 > 198.51.100.25:25 vlan=0 mid=1 pkt=2\n"
                                 "c2s data 'b' #2\n"
                                 "close evicted t=1001\n"
                                 "c2s gap 4 #3\n"
                                 "c2s data 'QQQQ' #3\n"
                                 "c2s gap 1 #4\n"
                                 "c2s data 'RRRR' #4\n"
                                 "c2s gap 1 #5\n"
                                 "c2s data 'SSSS' #5\n"
                                 "close shutdown t=1001\n");
}

static void test_max_flows_and_refusal(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    f.cfg.max_flows = 2;
    fx_start(&f);
    for (int i = 0; i < 3; i++) {
        f.cli.port = (uint16_t)(40000 + i);
        seg(&f, C, SYN, 1000, 0, NULL);
        f.ts += SW_USEC_PER_SEC;
    }
    assert_string_equal(f.r.log, "open 192.0.2.10:40000 > 198.51.100.25:25 vlan=0 mid=0 pkt=1\n"
                                 "open 192.0.2.10:40001 > 198.51.100.25:25 vlan=0 mid=0 pkt=2\n"
                                 "close evicted t=1002\n"
                                 "open 192.0.2.10:40002 > 198.51.100.25:25 vlan=0 mid=0 pkt=3\n");
    assert_int_equal(flow_table_stats(f.t)->flows_evicted, 1);
    assert_int_equal(flow_table_stats(f.t)->flows_active_peak, 2);
    fx_end(&f);

    /* a memcap too small for even one flow refuses, and counts it */
    fx_init(&f);
    f.cfg.memcap = 1024 * sizeof(void *);
    fx_start(&f);
    seg(&f, C, SYN, 1000, 0, NULL);
    assert_int_equal(f.r.opens, 0);
    assert_int_equal(flow_table_stats(f.t)->flows_refused, 1);
    fx_end(&f);
}

static void test_timeouts(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_start(&f);
    sw_usec t0 = f.ts;
    f.cli.port = 40000;
    seg(&f, C, SYN, 1000, 0, NULL); /* half-open: 30 s */
    f.cli.port = 40001;
    seg(&f, C, ACK, 1000, 1, "established"); /* 300 s */
    flow_table_expire(f.t, t0 + 29 * SW_USEC_PER_SEC);
    assert_int_equal(f.r.closes, 0);
    flow_table_expire(f.t, t0 + 30 * SW_USEC_PER_SEC);
    assert_int_equal(f.r.closes, 1);
    /* time going backwards expires nothing, and does not move the clock */
    flow_table_expire(f.t, t0 - 3600 * SW_USEC_PER_SEC);
    f.ts = t0 - 7200 * SW_USEC_PER_SEC;
    seg(&f, C, ACK, 1011, 1, "!"); /* an old timestamp refreshes at the clock */
    flow_table_expire(f.t, t0 + 329 * SW_USEC_PER_SEC);
    assert_int_equal(f.r.closes, 1);
    /* one corrupt timestamp decades ahead is not believed... */
    flow_table_expire(f.t, t0 + 40LL * 365 * 86400 * SW_USEC_PER_SEC);
    assert_int_equal(f.r.closes, 1);
    flow_table_expire(f.t, t0 + 329 * SW_USEC_PER_SEC);
    /* ...until a second, different one confirms the jump */
    flow_table_expire(f.t, t0 + 2 * 86400 * SW_USEC_PER_SEC);
    assert_int_equal(f.r.closes, 1);
    flow_table_expire(f.t, t0 + 2 * 86400 * SW_USEC_PER_SEC + 1);
    assert_string_equal(f.r.log, "open 192.0.2.10:40000 > 198.51.100.25:25 vlan=0 mid=0 pkt=1\n"
                                 "open 192.0.2.10:40001 > 198.51.100.25:25 vlan=0 mid=1 pkt=2\n"
                                 "c2s data 'established' #2\n"
                                 "close timeout t=1030\n"
                                 "c2s data '!' #3\n"
                                 "close timeout t=173800\n");
    assert_int_equal(flow_table_stats(f.t)->flows_timed_out, 2);
    assert_int_equal(flow_table_stats(f.t)->flows_active, 0);
    fx_end(&f);

    /* established idle timeout at exactly 300 s */
    fx_init(&f);
    fx_start(&f);
    handshake(&f);
    flow_table_expire(f.t, f.ts + 300 * SW_USEC_PER_SEC - 1);
    assert_int_equal(f.r.closes, 0);
    flow_table_expire(f.t, f.ts + 300 * SW_USEC_PER_SEC);
    assert_string_equal(f.r.log, OPEN_STD "close timeout t=1300\n");
    fx_end(&f);
}

static void test_stop_buffering(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    f.r.stop_on = "220 go";
    f.r.stop_bits = STREAM_STOP_C2S | STREAM_STOP_S2C;
    fx_start(&f);
    handshake(&f);
    seg(&f, C, ACK, 1001, 5001, "STARTTLS\r\n");        /* #4 */
    seg(&f, C, ACK, 1020, 5001, "queued");              /* #5 ooo, freed at stop */
    seg(&f, S, ACK, 5001, 1011, "220 go\r\n");          /* #6 */
    seg(&f, C, ACK, 1011, 5009, "\x16\x03\x01 hello");  /* #7 */
    seg(&f, S, ACK, 5009, 1020, "\x16\x03\x03 server"); /* #8 */
    seg(&f, S, FIN | ACK, 5020, 1020, NULL);
    seg(&f, C, FIN | ACK, 1020, 5021, NULL);
    assert_string_equal(f.r.log, OPEN_STD "c2s data 'STARTTLS\r\n' #4\n"
                                          "s2c data '220 go\r\n' #6\n"
                                          "close fin t=1000\n");
    const struct flow_stats *st = flow_table_stats(f.t);
    assert_int_equal(st->segs_after_stop, 2);
    assert_int_equal(st->bytes_in_use, 1024 * sizeof(void *) + sizeof(struct flow));
    fx_end(&f);
}

static void test_meta_through_queue(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    f.r.log_meta = true;
    fx_start(&f);
    handshake(&f);
    f.ttl = 50;
    f.ip_id = 111;
    seg(&f, S, ACK, 5005, 1001, "late"); /* #4 */
    f.ttl = 51;
    f.ip_id = 222;
    seg(&f, S, ACK, 5009, 1001, "r\r\n"); /* #5 */
    f.ttl = 52;
    f.ip_id = 333;
    seg(&f, S, ACK, 5001, 1001, "250 "); /* #6 */
    assert_string_equal(f.r.log, OPEN_STD "s2c data '250 ' #6 ttl=52 id=333 v4\n"
                                          "s2c data 'late' #4 ttl=50 id=111 v4\n"
                                          "s2c data 'r\r\n' #5 ttl=51 id=222 v4\n");
    fx_end(&f);
}

static void test_uid_and_hash(void **state)
{
    (void)state;
    char uid1[18], uid2[18];
    struct fx f;
    fx_init(&f);
    fx_start(&f);
    handshake(&f);
    memcpy(uid1, f.r.uid, sizeof(uid1));
    fx_end(&f);
    fx_init(&f);
    f.cfg.max_flows = 10; /* a different table configuration */
    fx_start(&f);
    handshake(&f);
    memcpy(uid2, f.r.uid, sizeof(uid2));
    fx_end(&f);
    assert_string_equal(uid1, uid2);
    assert_int_equal(strlen(uid1), 17);
    assert_int_equal(uid1[0], 'S');
    assert_int_equal(strspn(uid1 + 1, "0123456789abcdef"), 16);
    /* another first timestamp: another uid */
    fx_init(&f);
    f.ts += 1;
    fx_start(&f);
    handshake(&f);
    assert_string_not_equal(uid1, f.r.uid);
    fx_end(&f);
    /* another VLAN: another uid */
    fx_init(&f);
    f.vlan = 7;
    fx_start(&f);
    handshake(&f);
    assert_string_not_equal(uid1, f.r.uid);
    fx_end(&f);

    /* the hash is symmetric and separates VLANs */
    struct pkt a, b;
    memset(&a, 0, sizeof(a));
    a.src = v4(10, 0, 0, 1);
    a.dst = v4(10, 0, 0, 2);
    a.sport = 1234;
    a.dport = 25;
    b = a;
    b.src = a.dst;
    b.dst = a.src;
    b.sport = a.dport;
    b.dport = a.sport;
    assert_int_equal(flow_hash(&a), flow_hash(&b));
    b.n_vlan = 1;
    b.vlan[0] = 3;
    assert_int_not_equal(flow_hash(&a), flow_hash(&b));
}

static void test_tombstone(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    f.r.ignore = true;
    fx_start(&f);
    handshake(&f);
    seg(&f, C, ACK, 1001, 5001, "GET / HTTP/1.0\r\n");
    seg(&f, C, FIN | ACK, 1017, 5001, NULL);
    seg(&f, S, FIN | ACK, 5001, 1018, NULL);
    assert_string_equal(f.r.log, OPEN_STD);
    const struct flow_stats *st = flow_table_stats(f.t);
    assert_int_equal(st->flows_created, 1);
    assert_int_equal(st->bytes_in_use, 1024 * sizeof(void *) + FLOW_TOMB_SIZE);
    assert_true(FLOW_TOMB_SIZE <= 96);
    assert_true(sizeof(struct flow) <= 192);
    /* closed after both FINs: gone after the closed timeout */
    flow_table_expire(f.t, f.ts + 10 * SW_USEC_PER_SEC);
    assert_int_equal(flow_table_stats(f.t)->flows_active, 0);
    fx_end(&f);
    assert_int_equal(f.r.closes, 0);
}

static void test_keepalive_and_zero_window(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_start(&f);
    handshake(&f);
    seg(&f, C, ACK, 1001, 5001, "MAIL"); /* #4 */
    seg(&f, C, ACK, 1004, 5001, "L");    /* #5 keep-alive: 1 byte below next */
    seg(&f, C, ACK, 1004, 5001, NULL);   /* #6 keep-alive without a byte */
    /* the server closes its window; the client probes with one byte */
    struct pkt p;
    memset(&p, 0, sizeof(p));
    p.ts = f.ts;
    p.no = ++f.no; /* #7 */
    p.src = f.srv.addr;
    p.dst = f.cli.addr;
    p.sport = f.srv.port;
    p.dport = f.cli.port;
    p.seq = 5001;
    p.ack = 1005;
    p.tcp_flags = ACK;
    p.win = 0;
    flow_table_packet(f.t, &p);
    seg(&f, C, ACK, 1005, 5001, " ");     /* #8 probe: not data */
    seg(&f, S, ACK, 5001, 1005, NULL);    /* #9 window opens */
    seg(&f, C, ACK, 1005, 5001, " FROM"); /* #10 */
    assert_string_equal(f.r.log, OPEN_STD "c2s data 'MAIL' #4\n"
                                          "c2s data ' FROM' #10\n");
    assert_int_equal(flow_table_stats(f.t)->segs_retransmitted, 0);
    fx_end(&f);
}

static void test_data_on_syn(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_start(&f);
    seg(&f, C, SYN, 1000, 0, "early"); /* TCP Fast Open style */
    seg(&f, S, SYN | ACK, 5000, 1006, NULL);
    seg(&f, C, ACK, 1006, 5001, "later");
    assert_string_equal(f.r.log, OPEN_STD "c2s data 'early' #1\n"
                                          "c2s data 'later' #3\n");
    fx_end(&f);
}

/* Every split point of a stream, the two halves sent in both orders, gives
 * the same bytes. */
static void test_every_split(void **state)
{
    (void)state;
    static const char msg[] = "EHLO client.example.org\r\n";
    size_t n = strlen(msg);
    for (size_t k = 1; k < n; k++) {
        for (int order = 0; order < 2; order++) {
            struct fx f;
            fx_init(&f);
            fx_start(&f);
            handshake(&f);
            if (order == 0) {
                seg_ex(&f, C, ACK, 1001, 5001, msg, k);
                seg_ex(&f, C, ACK, 1001 + (uint32_t)k, 5001, msg + k, n - k);
            } else {
                seg_ex(&f, C, ACK, 1001 + (uint32_t)k, 5001, msg + k, n - k);
                seg_ex(&f, C, ACK, 1001, 5001, msg, k);
            }
            char want[256];
            snprintf(want, sizeof(want), OPEN_STD "c2s data '%.*s' #%d\nc2s data '%s' #%d\n",
                     (int)k, msg, order == 0 ? 4 : 5, msg + k, order == 0 ? 5 : 4);
            assert_string_equal(f.r.log, want);
            fx_end(&f);
        }
    }
}

static void test_names_and_defaults(void **state)
{
    (void)state;
    assert_string_equal(flow_end_str(FLOW_END_FIN), "fin");
    assert_string_equal(flow_end_str(FLOW_END_RST), "rst");
    assert_string_equal(flow_end_str(FLOW_END_TIMEOUT), "timeout");
    assert_string_equal(flow_end_str(FLOW_END_EVICTED), "evicted");
    assert_string_equal(flow_end_str(FLOW_END_SHUTDOWN), "shutdown");
    assert_string_equal(flow_end_str((enum flow_end)99), "unknown");
    struct flow_cfg c;
    flow_cfg_defaults(&c);
    assert_int_equal(c.memcap, 512ull << 20);
    assert_int_equal(c.max_flows, 1000000);
    assert_int_equal(c.max_queued_segs, 256);
    assert_int_equal(c.max_queued_bytes, 1u << 20);
    assert_int_equal(c.timeout_syn, 30 * SW_USEC_PER_SEC);
    assert_int_equal(c.timeout_est, 300 * SW_USEC_PER_SEC);
    assert_int_equal(c.timeout_closed, 10 * SW_USEC_PER_SEC);
    assert_int_equal(c.n_server_ports, 4);
    assert_int_equal(c.server_ports[0], 25);
    assert_int_equal(c.server_ports[1], 587);
    assert_int_equal(c.server_ports[2], 465);
    assert_int_equal(c.server_ports[3], 2525);
}

/* Closed entries (only absorbing late packets) go before live flows, and
 * their going is no eviction. */
static void test_evict_closed_first(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    f.cfg.max_flows = 2;
    fx_start(&f);
    f.cli.port = 40000;
    seg(&f, C, ACK, 1000, 1, "idle"); /* oldest, live */
    f.ts += SW_USEC_PER_SEC;
    f.cli.port = 40001;
    handshake(&f);
    seg(&f, C, RST, 1001, 0, NULL); /* closed entry, newer */
    f.ts += SW_USEC_PER_SEC;
    f.cli.port = 40002;
    seg(&f, C, SYN, 1000, 0, NULL);
    assert_string_equal(f.r.log, "open 192.0.2.10:40000 > 198.51.100.25:25 vlan=0 mid=1 pkt=1\n"
                                 "c2s data 'idle' #1\n"
                                 "open 192.0.2.10:40001 > 198.51.100.25:25 vlan=0 mid=0 pkt=2\n"
                                 "close rst t=1001\n"
                                 "open 192.0.2.10:40002 > 198.51.100.25:25 vlan=0 mid=0 pkt=6\n");
    assert_int_equal(flow_table_stats(f.t)->flows_evicted, 0);
    assert_int_equal(flow_table_stats(f.t)->flows_active, 2);
    fx_end(&f);
}

/* QinQ: both tags are part of the key; the flow reports the inner one. */
static void test_qinq(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_start(&f);
    for (uint16_t outer = 100; outer <= 200; outer += 100) {
        struct pkt p;
        memset(&p, 0, sizeof(p));
        p.ts = f.ts;
        p.no = ++f.no;
        p.src = f.cli.addr;
        p.dst = f.srv.addr;
        p.sport = f.cli.port;
        p.dport = f.srv.port;
        p.vlan[0] = outer;
        p.vlan[1] = 5;
        p.n_vlan = 2;
        p.seq = 1000;
        p.tcp_flags = SYN;
        flow_table_packet(f.t, &p);
    }
    assert_string_equal(f.r.log, "open 192.0.2.10:40000 > 198.51.100.25:25 vlan=5 mid=0 pkt=1\n"
                                 "open 192.0.2.10:40000 > 198.51.100.25:25 vlan=5 mid=0 pkt=2\n");
    fx_end(&f);
}

/* A tombstone that ends (RST) gives way to a new connection on the same
 * ports, which the consumer may want this time. */
static void test_tombstone_port_reuse(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    f.r.ignore = true;
    fx_start(&f);
    handshake(&f);
    seg(&f, S, RST | ACK, 5001, 1001, NULL);
    f.r.ignore = false;
    seg(&f, C, SYN, 7000, 0, NULL); /* #5 */
    seg(&f, C, ACK, 7001, 5001, "hello");
    assert_string_equal(f.r.log,
                        OPEN_STD "open 192.0.2.10:40000 > 198.51.100.25:25 vlan=0 mid=0 pkt=5\n"
                                 "c2s data 'hello' #6\n");
    fx_end(&f);
}

/* The consumer may stop a direction from gap() too. */
static unsigned stop_on_gap(void *st, enum stream_dir d, uint32_t len, const struct stream_meta *m)
{
    rec_gap(st, d, len, m);
    return STREAM_STOP_C2S;
}

static void test_stop_from_gap(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    struct stream_consumer c = rec_consumer(&f.r);
    c.gap = stop_on_gap;
    f.t = flow_table_new(&f.cfg, &c);
    handshake(&f);
    seg(&f, C, ACK, 1005, 5001, "BBBB");
    seg(&f, C, ACK, 1009, 5001, "CCCC");
    seg(&f, S, ACK, 5001, 1013, "250 ok\r\n"); /* gap, then the client stops */
    seg(&f, C, ACK, 1013, 5009, "DDDD");
    assert_string_equal(f.r.log, OPEN_STD "c2s gap 4 #4\n"
                                          "s2c data '250 ok\r\n' #6\n");
    assert_int_equal(flow_table_stats(f.t)->segs_after_stop, 1);
    fx_end(&f);
}

/* A consumer that only concatenates the client stream. */
struct cat {
    char buf[4096];
    size_t len;
    unsigned gaps, conflicts;
};

static void *cat_open(void *ctx, const struct flow_info *fi)
{
    (void)fi;
    return ctx;
}

static unsigned cat_data(void *st, enum stream_dir d, const uint8_t *buf, size_t len,
                         const struct stream_meta *m)
{
    (void)m;
    struct cat *c = st;
    if (d == DIR_C2S) {
        assert_true(c->len + len <= sizeof(c->buf));
        memcpy(c->buf + c->len, buf, len);
        c->len += len;
    }
    return 0;
}

static unsigned cat_gap(void *st, enum stream_dir d, uint32_t len, const struct stream_meta *m)
{
    (void)d;
    (void)len;
    (void)m;
    ((struct cat *)st)->gaps++;
    return 0;
}

static void cat_conflict(void *st, enum stream_dir d, const struct stream_meta *m,
                         const struct stream_overlap *ov)
{
    (void)ov;
    (void)d;
    (void)m;
    ((struct cat *)st)->conflicts++;
}

static uint32_t lcg(uint32_t *x)
{
    *x = *x * 1103515245u + 12345u;
    return *x >> 8;
}

/* The same stream cut into random pieces, sent in random order with random
 * duplicates and overlapping copies (identical bytes), ISN near 2^32: always
 * the same bytes out, once, with no gap and no conflict. Then byte by byte
 * in reverse order. */
static void test_random_segmentation(void **state)
{
    (void)state;
    static const char msg[] = "EHLO client.example.org\r\nMAIL FROM:<a@example.org> SIZE=1024\r\n"
                              "RCPT TO:<b@example.net>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n";
    const uint32_t n = (uint32_t)strlen(msg);
    uint32_t rng = 12345;
    for (int round = 0; round < 300; round++) {
        struct cat c;
        memset(&c, 0, sizeof(c));
        struct stream_consumer sc = {.ctx = &c,
                                     .open = cat_open,
                                     .data = cat_data,
                                     .gap = cat_gap,
                                     .overlap_conflict = cat_conflict};
        struct flow_cfg cfg;
        flow_cfg_defaults(&cfg);
        struct flow_table *t = flow_table_new(&cfg, &sc);
        struct fx f;
        fx_init(&f);
        f.t = t;
        uint32_t isn = 0xffffffffu - (lcg(&rng) % 64);
        seg(&f, C, SYN, isn, 0, NULL);
        /* pieces: random cuts; each piece is [off, off+len) */
        uint32_t offs[128], lens[128];
        int np = 0;
        if (round < 299) {
            for (uint32_t off = 0; off < n && np < 120;) {
                uint32_t len = 1 + lcg(&rng) % 12;
                if (off + len > n)
                    len = n - off;
                offs[np] = off;
                lens[np++] = len;
                off += len;
            }
            /* duplicates and overlapping copies */
            for (int k = 0; k < 6; k++) {
                uint32_t off = lcg(&rng) % n;
                uint32_t len = 1 + lcg(&rng) % 20;
                if (off + len > n)
                    len = n - off;
                offs[np] = off;
                lens[np++] = len;
            }
            for (int i = np - 1; i > 0; i--) { /* shuffle */
                int j = (int)(lcg(&rng) % (uint32_t)(i + 1));
                uint32_t to = offs[i], tl = lens[i];
                offs[i] = offs[j];
                lens[i] = lens[j];
                offs[j] = to;
                lens[j] = tl;
            }
        } else {
            for (uint32_t i = 0; i < n && np < 128; i++) { /* byte by byte, reversed */
                offs[np] = n - 1 - i;
                lens[np++] = 1;
            }
        }
        for (int i = 0; i < np; i++)
            seg_ex(&f, C, ACK, isn + 1 + offs[i], 1, msg + offs[i], lens[i]);
        if (c.len != n || memcmp(c.buf, msg, n) != 0)
            fail_msg("round %d: got %zu bytes '%.*s'", round, c.len, (int)c.len, c.buf);
        assert_int_equal(c.gaps, 0);
        assert_int_equal(c.conflicts, 0);
        assert_int_equal(flow_table_stats(t)->bytes_delivered, n);
        flow_table_free(t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_retransmission),
        cmocka_unit_test(test_overlap_identical),
        cmocka_unit_test(test_overlap_conflict),
        cmocka_unit_test(test_conflict_after_delivery),
        cmocka_unit_test(test_retention_ring),
        cmocka_unit_test(test_gap_by_ack),
        cmocka_unit_test(test_gap_by_queue_bound),
        cmocka_unit_test(test_gap_at_fin),
        cmocka_unit_test(test_seq_wrap),
        cmocka_unit_test(test_rst_midstream),
        cmocka_unit_test(test_rst_out_of_window),
        cmocka_unit_test(test_fin_both_sides_and_port_reuse),
        cmocka_unit_test(test_new_syn_on_live_flow),
        cmocka_unit_test(test_midstream),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_vlan_separates),
        cmocka_unit_test(test_memcap_eviction),
        cmocka_unit_test(test_max_flows_and_refusal),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_stop_buffering),
        cmocka_unit_test(test_meta_through_queue),
        cmocka_unit_test(test_uid_and_hash),
        cmocka_unit_test(test_tombstone),
        cmocka_unit_test(test_keepalive_and_zero_window),
        cmocka_unit_test(test_data_on_syn),
        cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_random_segmentation),
        cmocka_unit_test(test_names_and_defaults),
        cmocka_unit_test(test_evict_closed_first),
        cmocka_unit_test(test_qinq),
        cmocka_unit_test(test_tombstone_port_reuse),
        cmocka_unit_test(test_stop_from_gap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
