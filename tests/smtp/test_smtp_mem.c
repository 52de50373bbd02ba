/* SPDX-License-Identifier: Apache-2.0 */
/* test_smtp_mem.c: the SMTP consumer's memory: an idle flow costs a small
 * stub and its session is made at the first payload, gap or overlap, with the
 * same facts and events as a session made at open (which the consumer did
 * before; smtp_session_new still does); and smtp_cfg.memcap refuses flows
 * and counts them. Flows go through the real flow table where they can
 * (RFC 9293 handshakes), or the consumer's callbacks directly. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conv.h"
#include "decode/smtp_int.h"

/* What one side of the comparison saw: its events and the final record. */
struct ev_log {
    char events[256];
    char *json;
};

static void log_event(void *ctx, enum smtp_event ev, const struct smtp_facts *f)
{
    struct ev_log *l = ctx;
    size_t n = strlen(l->events);
    snprintf(l->events + n, sizeof l->events - n, "%s%s", n ? "," : "", smtp_event_str(ev));
    if (ev == SMTP_EV_END) {
        json_t *j = facts_to_json(f);
        assert_non_null(j);
        free(l->json);
        l->json = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(j);
        assert_non_null(l->json);
    }
}

/* A consumer that hands every callback to the SMTP consumer under test (lazy
 * session) and to a session made at open (eager: what the consumer did
 * before), and checks they answer alike. */
struct twin_ctx {
    struct smtp_consumer *sc;
    const struct stream_consumer *ops;
    struct smtp_cfg eager_cfg;
    struct ev_log lazy, eager;
    unsigned opened, closed;
};

struct twin {
    void *lazy;
    struct smtp_session *eager;
};

/* The test's consumer under test and its context (one at a time; the flow
 * table's callbacks get only the per-flow state). */
static const struct stream_consumer *twin_lazy_ops;
static struct twin_ctx *closing_ctx;

static void *t_open(void *ctx, const struct flow_info *fi)
{
    struct twin_ctx *x = ctx;
    struct twin *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->lazy = x->ops->open(x->ops->ctx, fi);
    assert_non_null(t->lazy);
    t->eager = smtp_session_new(&x->eager_cfg, fi);
    assert_non_null(t->eager);
    x->opened++;
    return t;
}

static unsigned t_data(void *st, enum stream_dir dir, const uint8_t *buf, size_t len,
                       const struct stream_meta *m)
{
    struct twin *t = st;
    unsigned a = smtp_session_feed(t->eager, dir, buf, len, m);
    unsigned b = twin_lazy_ops->data(t->lazy, dir, buf, len, m);
    assert_int_equal(a, b);
    return b;
}

static unsigned t_gap(void *st, enum stream_dir dir, uint32_t len, const struct stream_meta *m)
{
    struct twin *t = st;
    smtp_session_gap(t->eager, dir, len, m);
    unsigned b = twin_lazy_ops->gap(t->lazy, dir, len, m);
    assert_int_equal(t->eager->stop, b);
    return b;
}

static void t_packet(void *st, enum stream_dir dir, const struct stream_meta *m, uint8_t flags)
{
    struct twin *t = st;
    smtp_session_tcp_packet(t->eager, dir, m, flags);
    twin_lazy_ops->packet(t->lazy, dir, m, flags);
}

static void t_overlap(void *st, enum stream_dir dir, const struct stream_meta *m)
{
    struct twin *t = st;
    smtp_session_overlap(t->eager, dir, m);
    twin_lazy_ops->overlap_conflict(t->lazy, dir, m);
}

static void t_close(void *st, enum flow_end why, sw_usec ts)
{
    struct twin *t = st;
    twin_lazy_ops->close(t->lazy, why, ts);
    smtp_session_end(t->eager, why, ts);
    smtp_session_free(t->eager);
    closing_ctx->closed++;
    free(t);
}

static void twin_init(struct twin_ctx *x, struct stream_consumer *ops, uint64_t memcap)
{
    memset(x, 0, sizeof *x);
    struct smtp_cfg c;
    smtp_cfg_defaults(&c);
    c.memcap = memcap;
    c.on_event = log_event;
    c.event_ctx = &x->lazy;
    x->sc = smtp_consumer_new(&c);
    assert_non_null(x->sc);
    x->ops = smtp_consumer_ops(x->sc);
    twin_lazy_ops = x->ops;
    closing_ctx = x;
    smtp_cfg_defaults(&x->eager_cfg);
    x->eager_cfg.on_event = log_event;
    x->eager_cfg.event_ctx = &x->eager;
    memset(ops, 0, sizeof *ops);
    ops->ctx = x;
    ops->open = t_open;
    ops->data = t_data;
    ops->gap = t_gap;
    ops->packet = t_packet;
    ops->overlap_conflict = t_overlap;
    ops->close = t_close;
}

/* Both sides gave the same events and record; returns the lazy record. */
static const char *twin_same(struct twin_ctx *x)
{
    assert_string_equal(x->lazy.events, x->eager.events);
    assert_non_null(x->lazy.json);
    assert_non_null(x->eager.json);
    assert_string_equal(x->lazy.json, x->eager.json);
    return x->lazy.json;
}

static void twin_free(struct twin_ctx *x)
{
    const struct smtp_stats *s = smtp_consumer_stats(x->sc);
    assert_int_equal(s->mem_in_use, 0); /* every charge released */
    smtp_consumer_free(x->sc);
    free(x->lazy.json);
    free(x->eager.json);
}

/* ---- packets through the flow table ---- */

#define CLI 0xc000020au /* 192.0.2.10 */
#define SRV 0xc6336419u /* 198.51.100.25 */

struct wire {
    struct flow_table *ft;
    uint64_t no;
    sw_usec ts;
    uint32_t cseq, sseq; /* next sequence number of each side */
    uint16_t sport;
    uint8_t srv_ttl;
    uint16_t srv_id;
};

static void put4(struct sw_addr *a, uint32_t v)
{
    a->family = 4;
    a->b[0] = (uint8_t)(v >> 24), a->b[1] = (uint8_t)(v >> 16);
    a->b[2] = (uint8_t)(v >> 8), a->b[3] = (uint8_t)v;
}

/* One segment; payload advances the sender's sequence (SYN and FIN by one). */
static void seg(struct wire *w, bool from_client, uint8_t flags, const char *data)
{
    struct pkt p;
    memset(&p, 0, sizeof p);
    p.ts = w->ts += 1000;
    p.no = ++w->no;
    put4(&p.src, from_client ? CLI : SRV);
    put4(&p.dst, from_client ? SRV : CLI);
    p.sport = from_client ? 40000 : w->sport;
    p.dport = from_client ? w->sport : 40000;
    p.ttl = from_client ? 64 : w->srv_ttl;
    p.ip_id = from_client ? (uint16_t)w->no : w->srv_id++;
    p.seq = from_client ? w->cseq : w->sseq;
    p.ack = (flags & PKT_TH_ACK) ? (from_client ? w->sseq : w->cseq) : 0;
    p.tcp_flags = flags;
    p.win = 65535;
    p.payload = (const uint8_t *)data;
    p.payload_len = data ? (uint32_t)strlen(data) : 0;
    uint32_t adv = p.payload_len + ((flags & (PKT_TH_SYN | PKT_TH_FIN)) ? 1 : 0);
    if (from_client)
        w->cseq += adv;
    else
        w->sseq += adv;
    flow_table_packet(w->ft, &p);
}

static void wire_start(struct wire *w, const struct stream_consumer *ops, uint16_t port)
{
    memset(w, 0, sizeof *w);
    struct flow_cfg fc;
    flow_cfg_defaults(&fc);
    w->ft = flow_table_new(&fc, ops);
    assert_non_null(w->ft);
    w->ts = CONV_START;
    w->cseq = 1000;
    w->sseq = 5000;
    w->sport = port;
    w->srv_ttl = 57;
    w->srv_id = 700;
}

static void handshake(struct wire *w)
{
    seg(w, true, PKT_TH_SYN, NULL);
    seg(w, false, PKT_TH_SYN | PKT_TH_ACK, NULL);
    seg(w, true, PKT_TH_ACK, NULL);
}

/* ---- tests ---- */

static void test_idle_stub_bytes(void **state)
{
    (void)state;
    /* the bound of issue 2 (512 bytes per idle flow) minus the flow table */
    assert_true(smtp_consumer_idle_bytes() <= 400);
    assert_true(smtp_consumer_idle_bytes() < sizeof(struct smtp_session) / 10);

    struct smtp_cfg c;
    smtp_cfg_defaults(&c);
    assert_int_equal(c.memcap, 512ull << 20);
    struct smtp_consumer *sc = smtp_consumer_new(&c);
    assert_non_null(sc);
    const struct stream_consumer *ops = smtp_consumer_ops(sc);
    const struct smtp_stats *ss = smtp_consumer_stats(sc);
    struct flow_info fi;
    conv_flow(&fi, 25);
    void *st[3];
    for (int i = 0; i < 3; i++) {
        st[i] = ops->open(ops->ctx, &fi);
        assert_non_null(st[i]);
        assert_int_equal(ss->mem_in_use, (uint64_t)(i + 1) * smtp_consumer_idle_bytes());
    }
    struct stream_meta m = {CONV_START + 5, 4, 57, 900, 4};
    ops->packet(st[0], DIR_S2C, &m, PKT_TH_ACK);
    assert_null(smtp_session_facts(st[0])); /* no session for a packet */
    assert_int_equal(ss->mem_in_use, 3 * smtp_consumer_idle_bytes());
    /* the first byte makes the session, charged in full */
    ops->data(st[0], DIR_S2C, (const uint8_t *)"220 mx\r\n", 8, &m);
    const struct smtp_facts *f = smtp_session_facts(st[0]);
    assert_non_null(f);
    assert_int_equal(f->banner_code, 220);
    assert_true(ss->mem_in_use >= 3 * smtp_consumer_idle_bytes() + sizeof(struct smtp_session));
    assert_int_equal(ss->sessions, 3);
    for (int i = 0; i < 3; i++)
        ops->close(st[i], FLOW_END_FIN, CONV_START + 10);
    assert_int_equal(ss->mem_in_use, 0);
    assert_true(ss->mem_peak >= sizeof(struct smtp_session));
    assert_int_equal(ss->memcap_refused, 0);
    smtp_consumer_free(sc);
}

/* A handshake and nothing else is no SMTP conversation: no event, no record,
 * one count (a session made at open would have reported it). */
static void test_handshake_only(void **state)
{
    (void)state;
    struct twin_ctx x;
    struct stream_consumer ops;
    twin_init(&x, &ops, 0);
    struct wire w;
    wire_start(&w, &ops, 25);
    handshake(&w);
    assert_int_equal(x.opened, 1);
    assert_int_equal(smtp_consumer_stats(x.sc)->mem_in_use, smtp_consumer_idle_bytes());
    flow_table_free(w.ft);
    assert_int_equal(x.closed, 1);
    assert_string_equal(x.lazy.events, "");
    assert_null(x.lazy.json);
    assert_string_equal(x.eager.events, "end");
    assert_int_equal(smtp_consumer_stats(x.sc)->flows_no_payload, 1);
    assert_int_equal(smtp_consumer_stats(x.sc)->sessions, 1);
    twin_free(&x);
}

/* Implicit TLS port, handshake and FINs only: no event either. */
static void test_handshake_only_tls_port(void **state)
{
    (void)state;
    struct twin_ctx x;
    struct stream_consumer ops;
    twin_init(&x, &ops, 0);
    struct wire w;
    wire_start(&w, &ops, 465);
    handshake(&w);
    seg(&w, true, PKT_TH_FIN | PKT_TH_ACK, NULL);
    seg(&w, false, PKT_TH_FIN | PKT_TH_ACK, NULL);
    seg(&w, true, PKT_TH_ACK, NULL);
    flow_table_free(w.ft);
    assert_string_equal(x.lazy.events, "");
    assert_null(x.lazy.json);
    assert_string_equal(x.eager.events, "tls,end");
    assert_int_equal(smtp_consumer_stats(x.sc)->flows_no_payload, 1);
    twin_free(&x);
}

/* Server packets with other TTLs and IP IDs before the first payload, then a
 * conversation whose TTL shifts: the same anomalies as a session that saw
 * every packet from the start. */
static void test_late_first_payload(void **state)
{
    (void)state;
    struct twin_ctx x;
    struct stream_consumer ops;
    twin_init(&x, &ops, 0);
    struct wire w;
    wire_start(&w, &ops, 25);
    handshake(&w);
    for (int i = 0; i < 5; i++) {
        w.srv_ttl = (uint8_t)(50 + i);
        w.srv_id = (uint16_t)(i * 9000);
        seg(&w, false, PKT_TH_ACK, NULL); /* keepalive-like, no payload */
        seg(&w, true, PKT_TH_ACK, NULL);
    }
    assert_int_equal(smtp_consumer_stats(x.sc)->mem_in_use, smtp_consumer_idle_bytes());
    w.srv_ttl = 57;
    w.srv_id = 100;
    seg(&w, false, PKT_TH_ACK | PKT_TH_PUSH, "220 mx.example.org ESMTP\r\n");
    seg(&w, true, PKT_TH_ACK | PKT_TH_PUSH, "EHLO a.example\r\n");
    seg(&w, false, PKT_TH_ACK | PKT_TH_PUSH, "250-mx.example.org\r\n250 STARTTLS\r\n");
    w.srv_ttl = 60; /* something else answers from here on */
    seg(&w, true, PKT_TH_ACK | PKT_TH_PUSH, "STARTTLS\r\n");
    seg(&w, false, PKT_TH_ACK | PKT_TH_PUSH, "454 TLS not available\r\n");
    seg(&w, true, PKT_TH_ACK | PKT_TH_PUSH, "QUIT\r\n");
    seg(&w, false, PKT_TH_ACK | PKT_TH_PUSH, "221 bye\r\n");
    seg(&w, false, PKT_TH_FIN | PKT_TH_ACK, NULL);
    seg(&w, true, PKT_TH_FIN | PKT_TH_ACK, NULL);
    seg(&w, false, PKT_TH_ACK, NULL);
    flow_table_free(w.ft);
    assert_string_equal(x.lazy.events, "ehlo_reply,starttls_reply,end");
    const char *json = twin_same(&x);
    assert_non_null(strstr(json, "{\"detail\":\"ttl 57->60\""));
    assert_non_null(strstr(json, "\"end\":\"quit\""));
    assert_non_null(strstr(json, "\"ttl\":{\"client\":64,\"server\":57}"));
    twin_free(&x);
}

/* Midstream pickup (no SYN): the session starts at the first payload too. */
static void test_midstream_late_payload(void **state)
{
    (void)state;
    struct twin_ctx x;
    struct stream_consumer ops;
    twin_init(&x, &ops, 0);
    struct wire w;
    wire_start(&w, &ops, 25);
    seg(&w, true, PKT_TH_ACK, NULL);
    seg(&w, false, PKT_TH_ACK, NULL);
    seg(&w, true, PKT_TH_ACK | PKT_TH_PUSH, "NOOP\r\n");
    seg(&w, false, PKT_TH_ACK | PKT_TH_PUSH, "250 ok\r\n");
    flow_table_free(w.ft);
    assert_int_equal(x.opened, 1);
    const char *json = twin_same(&x);
    assert_non_null(strstr(json, "\"end\":\"capture_end\""));
    twin_free(&x);
}

/* A gap or an overlap as the first thing a flow reports makes the session. */
static void test_gap_or_overlap_first(void **state)
{
    (void)state;
    struct flow_info fi;
    conv_flow(&fi, 25);
    struct stream_meta m = {CONV_START + 10, 5, 57, 3, 4};
    for (int k = 0; k < 2; k++) {
        struct twin_ctx x;
        struct stream_consumer ops;
        twin_init(&x, &ops, 0);
        void *st = ops.open(ops.ctx, &fi);
        if (k == 0)
            assert_int_equal(ops.gap(st, DIR_S2C, 100, &m), 0);
        else
            ops.overlap_conflict(st, DIR_C2S, &m);
        ops.data(st, DIR_S2C, (const uint8_t *)"x\r\n220 mx\r\n", 11, &m);
        ops.close(st, FLOW_END_RST, CONV_START + 20);
        assert_string_equal(x.lazy.events, "end");
        const char *json = twin_same(&x);
        assert_non_null(strstr(json, k == 0 ? "{\"detail\":\"100 bytes missing\","
                                            : "{\"detail\":\"retransmission differs from first "
                                              "copy\","));
        assert_non_null(strstr(json, "\"end\":\"rst\""));
        twin_free(&x);
    }
}

/* smtp_cfg.memcap: a stub over the cap is refused at open (the flow table
 * keeps a tombstone), a session over it at the first byte (the flow is then
 * ignored: no events); both counted. */
static void test_memcap(void **state)
{
    (void)state;
    struct ev_log log;
    memset(&log, 0, sizeof log);
    struct smtp_cfg c;
    smtp_cfg_defaults(&c);
    c.on_event = log_event;
    c.event_ctx = &log;
    c.memcap = 2 * smtp_consumer_idle_bytes() + sizeof(struct smtp_session) +
               64 * sizeof(struct smtp_pending);
    struct smtp_consumer *sc = smtp_consumer_new(&c);
    assert_non_null(sc);
    const struct stream_consumer *ops = smtp_consumer_ops(sc);
    const struct smtp_stats *ss = smtp_consumer_stats(sc);
    struct flow_info fi;
    conv_flow(&fi, 25);
    struct stream_meta m = {CONV_START + 10, 5, 57, 3, 4};

    void *a = ops->open(ops->ctx, &fi);
    void *b = ops->open(ops->ctx, &fi);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(ss->sessions, 2);
    /* a's session fits exactly (a gap allocates no line buffer) */
    assert_int_equal(ops->gap(a, DIR_S2C, 7, &m), 0);
    assert_int_equal(ss->mem_in_use, c.memcap);
    assert_null(ops->open(ops->ctx, &fi)); /* a third stub is over the cap */
    assert_int_equal(ss->memcap_refused, 1);
    assert_int_equal(ss->sessions, 2);
    /* b's session does not fit */
    assert_int_equal(ops->data(b, DIR_S2C, (const uint8_t *)"220 mx\r\n", 8, &m),
                     STREAM_STOP_C2S | STREAM_STOP_S2C);
    assert_int_equal(ss->memcap_refused, 2);
    assert_int_equal(ss->sessions, 1);
    assert_null(smtp_session_facts(b));
    /* b stays ignored, even once memory is free again */
    ops->close(a, FLOW_END_FIN, CONV_START + 20);
    assert_string_equal(log.events, "end");
    assert_int_equal(ops->gap(b, DIR_C2S, 5, &m), STREAM_STOP_C2S | STREAM_STOP_S2C);
    ops->packet(b, DIR_S2C, &m, PKT_TH_ACK);
    ops->overlap_conflict(b, DIR_S2C, &m);
    ops->close(b, FLOW_END_FIN, CONV_START + 30);
    assert_string_equal(log.events, "end"); /* nothing for b */
    assert_int_equal(ss->memcap_refused, 2);
    assert_int_equal(ss->mem_in_use, 0);
    /* memory is back: a new flow is admitted and reported */
    void *d = ops->open(ops->ctx, &fi);
    assert_non_null(d);
    assert_int_equal(ops->gap(d, DIR_S2C, 3, &m), 0);
    ops->close(d, FLOW_END_TIMEOUT, CONV_START + 40);
    assert_string_equal(log.events, "end,end");
    assert_non_null(strstr(log.json, "\"end\":\"timeout\""));
    assert_int_equal(ss->sessions, 2);
    assert_int_equal(ss->mem_in_use, 0);
    smtp_consumer_free(sc);
    free(log.json);
}

/* Session memory grows with what the conversation keeps (line buffers,
 * transactions, recipients, capabilities) and is all released at close. */
static void test_session_charges(void **state)
{
    (void)state;
    struct smtp_cfg c;
    smtp_cfg_defaults(&c);
    c.log_addresses = true;
    struct smtp_consumer *sc = smtp_consumer_new(&c);
    assert_non_null(sc);
    const struct stream_consumer *ops = smtp_consumer_ops(sc);
    const struct smtp_stats *ss = smtp_consumer_stats(sc);
    struct flow_info fi;
    conv_flow(&fi, 25);
    struct stream_meta m = {CONV_START + 10, 5, 57, 3, 4};
    void *st = ops->open(ops->ctx, &fi);
    assert_non_null(st);
    ops->data(st, DIR_S2C, (const uint8_t *)"220 mx\r\n", 8, &m);
    uint64_t base = ss->mem_in_use;
    assert_int_equal(base, smtp_consumer_idle_bytes() + sizeof(struct smtp_session) +
                               64 * sizeof(struct smtp_pending) + 256 /* one line buffer */);
    static const char cmds[] = "EHLO a.example\r\nMAIL FROM:<a@b.example>\r\n"
                               "RCPT TO:<c@d.example>\r\n";
    static const char reps[] = "250-mx\r\n250 PIPELINING\r\n250 ok\r\n250 ok\r\n";
    ops->data(st, DIR_C2S, (const uint8_t *)cmds, sizeof cmds - 1, &m);
    ops->data(st, DIR_S2C, (const uint8_t *)reps, sizeof reps - 1, &m);
    /* c2s line buffer, a transaction and its sender, a recipient and its
     * address, the capability line */
    assert_int_equal(ss->mem_in_use, base + 256 + sizeof(struct facts_tx) + strlen("a@b.example") +
                                         1 + sizeof(struct facts_rcpt) + strlen("c@d.example") + 1 +
                                         strlen("PIPELINING") + 1);
    ops->close(st, FLOW_END_FIN, CONV_START + 20);
    assert_int_equal(ss->mem_in_use, 0);
    smtp_consumer_free(sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_stub_bytes),
        cmocka_unit_test(test_handshake_only),
        cmocka_unit_test(test_handshake_only_tls_port),
        cmocka_unit_test(test_late_first_payload),
        cmocka_unit_test(test_midstream_late_payload),
        cmocka_unit_test(test_gap_or_overlap_first),
        cmocka_unit_test(test_memcap),
        cmocka_unit_test(test_session_charges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
