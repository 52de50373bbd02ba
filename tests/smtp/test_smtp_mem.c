/* SPDX-License-Identifier: Apache-2.0 */
/* test_smtp_mem.c: the SMTP consumer's memory and the flow table's bounds
 * together: nothing is allocated for a flow before its first payload byte,
 * gap or overlap; a common session (banner, EHLO, 20 capabilities, one
 * transaction with 5 recipients) costs at most 1 KiB through the memcap
 * accounting; the copy handed to the output stage is no bigger than its
 * content; a half-open flood never evicts a session, and a full table evicts
 * the oldest idle session, whose record is flushed as "evicted". Flows go
 * through the real flow table (RFC 9293 handshakes). */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conv.h"
#include "decode/flow_int.h"
#include "decode/smtp_int.h"
#include "decode/strtab.h"

/* The events and session records a consumer gave, in order. */
struct ev_log {
    char events[1024];
    char *json[8];
    size_t n_json;
};

static void log_event(void *ctx, enum smtp_event ev, const struct smtp_facts *f)
{
    struct ev_log *l = ctx;
    size_t n = strlen(l->events);
    snprintf(l->events + n, sizeof l->events - n, "%s%s:%u", n ? "," : "", smtp_event_str(ev),
             f->flow.cport);
    if (ev == SMTP_EV_END && l->n_json < 8) {
        json_t *j = facts_to_json(f);
        assert_non_null(j);
        l->json[l->n_json++] = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(j);
    }
}

static void log_free(struct ev_log *l)
{
    for (size_t i = 0; i < l->n_json; i++)
        free(l->json[i]);
}

#define CLI 0xc000020au /* 192.0.2.10 */
#define SRV 0xc6336419u /* 198.51.100.25 */

/* A flow table with a bound SMTP consumer, and connections on it. */
struct wire {
    struct smtp_consumer *sc;
    struct flow_table *ft;
    struct ev_log log;
    uint64_t no;
    sw_usec ts;
    uint64_t base; /* the consumer's bytes before any flow (its string table) */
};

struct conn {
    uint16_t cport, sport;
    uint32_t cseq, sseq; /* next sequence number of each side */
};

static void put4(struct sw_addr *a, uint32_t v)
{
    a->family = 4;
    a->b[0] = (uint8_t)(v >> 24), a->b[1] = (uint8_t)(v >> 16);
    a->b[2] = (uint8_t)(v >> 8), a->b[3] = (uint8_t)v;
}

/* One segment; payload advances the sender's sequence (SYN and FIN by one). */
static void seg(struct wire *w, struct conn *c, bool from_client, uint8_t flags, const char *data)
{
    struct pkt p;
    memset(&p, 0, sizeof p);
    p.ts = w->ts += 1000;
    p.no = ++w->no;
    put4(&p.src, from_client ? CLI : SRV);
    put4(&p.dst, from_client ? SRV : CLI);
    p.sport = from_client ? c->cport : c->sport;
    p.dport = from_client ? c->sport : c->cport;
    p.ttl = from_client ? 64 : 57;
    p.ip_id = (uint16_t)w->no;
    p.seq = from_client ? c->cseq : c->sseq;
    p.ack = (flags & PKT_TH_ACK) ? (from_client ? c->sseq : c->cseq) : 0;
    p.tcp_flags = flags;
    p.win = 65535;
    p.payload = (const uint8_t *)data;
    p.payload_len = data ? (uint32_t)strlen(data) : 0;
    uint32_t adv = p.payload_len + ((flags & (PKT_TH_SYN | PKT_TH_FIN)) ? 1 : 0);
    if (from_client)
        c->cseq += adv;
    else
        c->sseq += adv;
    flow_table_packet(w->ft, &p);
}

static void wire_start(struct wire *w, const struct flow_cfg *fc)
{
    memset(w, 0, sizeof *w);
    struct smtp_cfg c;
    smtp_cfg_defaults(&c);
    c.on_event = log_event;
    c.event_ctx = &w->log;
    w->sc = smtp_consumer_new(&c);
    assert_non_null(w->sc);
    struct flow_cfg d;
    flow_cfg_defaults(&d);
    w->ft = flow_table_new(fc ? fc : &d, smtp_consumer_ops(w->sc));
    assert_non_null(w->ft);
    smtp_consumer_bind(w->sc, w->ft);
    w->ts = CONV_START;
    w->base = smtp_consumer_stats(w->sc)->mem_in_use;
}

static void wire_end(struct wire *w)
{
    flow_table_free(w->ft);
    /* only the (empty) string table is left */
    assert_int_equal(smtp_consumer_stats(w->sc)->mem_in_use, w->base);
    smtp_consumer_free(w->sc);
}

static struct conn conn_new(uint16_t cport, uint16_t sport)
{
    struct conn c = {cport, sport, 1000u + cport * 7u, 5000u + cport * 13u};
    return c;
}

static void handshake(struct wire *w, struct conn *c)
{
    seg(w, c, true, PKT_TH_SYN, NULL);
    seg(w, c, false, PKT_TH_SYN | PKT_TH_ACK, NULL);
    seg(w, c, true, PKT_TH_ACK, NULL);
}

static const char ehlo_reply[] =
    "250-mx.example.org Hello out.example.net\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n"
    "250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n"
    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n"
    "250-BINARYMIME\r\n250-DELIVERBY 300\r\n250-MT-PRIORITY MIXER\r\n250-FUTURERELEASE 604800\r\n"
    "250-REQUIRETLS\r\n250-LIMITS RCPTMAX=100\r\n250-XCLIENT NAME ADDR\r\n250 XFORWARD NAME\r\n";

/* The common case of issue 11: banner, EHLO, a reply of 20 capabilities,
 * one transaction with 5 recipients, then the session waits. */
static void common_session(struct wire *w, struct conn *c)
{
    handshake(w, c);
    seg(w, c, false, PKT_TH_ACK | PKT_TH_PUSH, "220 mx.example.org ESMTP Postfix\r\n");
    seg(w, c, true, PKT_TH_ACK | PKT_TH_PUSH, "EHLO out.example.net\r\n");
    seg(w, c, false, PKT_TH_ACK | PKT_TH_PUSH, ehlo_reply);
    seg(w, c, true, PKT_TH_ACK | PKT_TH_PUSH,
        "MAIL FROM:<alice@example.net> SIZE=1000\r\nRCPT TO:<b1@one.example>\r\n"
        "RCPT TO:<b2@two.example>\r\nRCPT TO:<b3@three.example>\r\nRCPT TO:<b4@four.example>\r\n"
        "RCPT TO:<b5@five.example>\r\n");
    seg(w, c, false, PKT_TH_ACK | PKT_TH_PUSH,
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
        "250 2.1.5 Ok\r\n");
    seg(w, c, true, PKT_TH_ACK, NULL);
}

/* ---- tests ---- */

/* A handshake allocates nothing in the consumer; the first byte makes the
 * session; a flow that ends without a byte gives no event, only a count. */
static void test_nothing_before_payload(void **state)
{
    (void)state;
    struct wire w;
    wire_start(&w, NULL);
    const struct smtp_stats *ss = smtp_consumer_stats(w.sc);
    const struct flow_stats *fs = flow_table_stats(w.ft);
    uint64_t base = ss->mem_in_use, flow_base = fs->bytes_in_use;
    struct conn a = conn_new(40000, 25), b = conn_new(40001, 25);
    handshake(&w, &a);
    handshake(&w, &b);
    assert_int_equal(ss->mem_in_use, base);
    assert_int_equal(fs->bytes_in_use, flow_base + 2 * sizeof(struct flow));
    assert_int_equal(ss->sessions, 0);
    seg(&w, &b, false, PKT_TH_ACK | PKT_TH_PUSH, "220 mx.example.org ESMTP\r\n");
    seg(&w, &b, true, PKT_TH_ACK, NULL);
    assert_int_equal(ss->sessions, 1);
    assert_true(ss->mem_in_use >= base + sizeof(struct smtp_session));
    /* everything the consumer holds is charged to the table */
    assert_int_equal(fs->bytes_in_use, flow_base + 2 * sizeof(struct flow) + ss->mem_in_use - base);
    seg(&w, &a, true, PKT_TH_FIN | PKT_TH_ACK, NULL);
    seg(&w, &a, false, PKT_TH_FIN | PKT_TH_ACK, NULL);
    seg(&w, &b, true, PKT_TH_RST, NULL);
    assert_int_equal(ss->flows_no_payload, 1);
    assert_string_equal(w.log.events, "end:40001");
    assert_non_null(strstr(w.log.json[0], "\"end\":\"rst\""));
    assert_non_null(strstr(w.log.json[0], "\"host\":\"mx.example.org\""));
    wire_end(&w);
    log_free(&w.log);
}

/* Sizes: the common session at most 1 KiB per session through the memcap
 * accounting (flow, session, lists, its share of the interned strings), its
 * copy for the output stage exactly its content. */
static void test_common_session_bytes(void **state)
{
    (void)state;
    assert_true(sizeof(struct flow) <= 192);
    /* 512, and 24 bytes of overlap judging (reply offsets, a pointer) */
    assert_true(sizeof(struct smtp_session) <= 536);
    assert_int_equal(smtp_consumer_session_bytes(), sizeof(struct smtp_session));
    assert_true(sizeof(struct smtp_facts) <= 320);
    struct wire w;
    wire_start(&w, NULL);
    const struct flow_stats *fs = flow_table_stats(w.ft);
    struct conn one = conn_new(30000, 25);
    common_session(&w, &one);
    uint64_t after1 = fs->bytes_in_use;
    enum { N = 1000 };
    for (uint16_t i = 1; i <= N; i++) {
        struct conn c = conn_new((uint16_t)(30000 + i), 25);
        common_session(&w, &c);
    }
    uint64_t per = (fs->bytes_in_use - after1) / N;
    print_message("bytes per common session (memcap accounting): %llu\n", (unsigned long long)per);
    assert_true(per <= 1024);
    assert_int_equal(fs->flows_active, N + 1);
    assert_int_equal(fs->flows_evicted, 0);
    /* every session's facts so far: 20 capabilities, 5 recipients */
    wire_end(&w);
    assert_int_equal(w.log.n_json, 8);
    assert_non_null(strstr(w.log.json[0], "\"XFORWARD NAME\"]"));
    assert_non_null(strstr(w.log.json[0], "{\"code\":250,\"domain\":\"five.example\"}"));
    log_free(&w.log);
}

/* The copy handed to the output stage is one block of exactly its content:
 * the struct, its lists and its strings. */
static void test_copy_is_content(void **state)
{
    (void)state;
    struct smtp_cfg c;
    smtp_cfg_defaults(&c);
    struct flow_info fi;
    conv_flow(&fi, 25);
    struct smtp_session *s = smtp_session_new(&c, &fi);
    assert_non_null(s);
    struct stream_meta m = {CONV_START + 10, 5, 57, 3, 4};
    static const char b[] = "220 mx.example.org ESMTP\r\n";
    static const char e[] =
        "EHLO a.example\r\nMAIL FROM:<x@y.example>\r\nRCPT TO:<z@w.example>\r\n";
    static const char r[] = "250-mx.example.org\r\n250 PIPELINING\r\n250 ok\r\n250 ok\r\n";
    smtp_session_feed(s, DIR_S2C, (const uint8_t *)b, sizeof b - 1, &m);
    smtp_session_feed(s, DIR_C2S, (const uint8_t *)e, sizeof e - 1, &m);
    smtp_session_feed(s, DIR_S2C, (const uint8_t *)r, sizeof r - 1, &m);
    const struct smtp_facts *f = smtp_session_facts(s);
    size_t strings = strlen("mx.example.org") + 1 + strlen("a.example") + 1 +
                     strlen("mx.example.org") + 1 + strlen("PIPELINING") + 1 + strlen("y.example") +
                     1 + strlen("w.example") + 1;
    size_t want = sizeof *f + sizeof(struct facts_tx) + sizeof(struct facts_rcpt) + strings;
    assert_int_equal(facts_copy_size(f), want);
    struct smtp_facts *cp = facts_copy(f);
    assert_non_null(cp);
    assert_int_equal(cp->storage, FACTS_PACKED);
    /* every pointer of the copy is inside its block */
    const char *lo = (const char *)cp, *hi = lo + want;
    assert_true(cp->banner_host > lo && cp->banner_host < hi);
    assert_true((const char *)cp->tx > lo && (const char *)cp->tx < hi);
    assert_true(cp->tx[0].rcpt[0].domain > lo && cp->tx[0].rcpt[0].domain < hi);
    assert_string_equal(cp->tx[0].rcpt[0].domain, "w.example");
    assert_string_equal(facts_cap(cp, 0), "PIPELINING");
    assert_ptr_equal(cp->tls, &facts_tls_none);
    facts_free(cp);
    smtp_session_free(s);
}

/* The same strings in many sessions are kept once. */
static void test_strings_shared(void **state)
{
    (void)state;
    struct strtab *t = strtab_new();
    assert_non_null(t);
    const char *a = strtab_get(t, "mx.example.org", 14);
    const char *b = strtab_get(t, "mx.example.orgXX", 14);
    assert_ptr_equal(a, b);
    assert_int_equal(strtab_count(t), 1);
    const char *c = strtab_get(t, "A\0B", 3); /* lists keep NULs inside */
    assert_int_equal(strtab_len(c), 3);
    assert_int_equal(strtab_count(t), 2);
    strtab_put(t, a);
    assert_int_equal(strtab_count(t), 2);
    strtab_put(t, b);
    assert_int_equal(strtab_count(t), 1);
    strtab_put(t, c);
    assert_int_equal(strtab_count(t), 0);
    strtab_free(t);
}

/* A list grown item by item is the one copy of the whole list (same hash,
 * same bytes): two sessions' equal capability lists share it. */
static void test_list_items_shared(void **state)
{
    (void)state;
    struct strtab *t = strtab_new();
    assert_non_null(t);
    const char *whole = strtab_get(t, "PIPELINING\0STARTTLS\0", 20);
    const char *one = strtab_add_item(t, NULL, "PIPELININGxx", 10);
    assert_int_equal(strtab_len(one), 11);
    assert_memory_equal(one, "PIPELINING", 11);
    const char *two = strtab_add_item(t, one, "STARTTLS", 8);
    assert_ptr_equal(two, whole);
    assert_int_equal(strtab_count(t), 2);
    strtab_put(t, one); /* the list keeps its own reference */
    assert_int_equal(strtab_count(t), 1);
    strtab_put(t, two);
    assert_int_equal(strtab_count(t), 1);
    strtab_put(t, whole);
    assert_int_equal(strtab_count(t), 0);
    strtab_free(t);
}

/* The same for lists of items of every length about the hash's word
 * size, cut anywhere: the list grown item by item is the copy that
 * strtab_get finds for its bytes, and a list one byte different is another. */
static void test_list_items_any_split(void **state)
{
    (void)state;
    struct strtab *t = strtab_new();
    assert_non_null(t);
    uint32_t x = 2463534242u;
    for (int round = 0; round < 2000; round++) {
        char whole[400];
        size_t n = 0;
        const char *list = NULL;
        int items = 1 + round % 9;
        for (int i = 0; i < items; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            size_t k = x % 20; /* empty items too */
            char item[20];
            for (size_t j = 0; j < k; j++)
                item[j] = (char)('A' + (x >> j) % 26);
            const char *grown = strtab_add_item(t, list, item, k);
            assert_non_null(grown);
            strtab_put(t, list);
            list = grown;
            memcpy(whole + n, item, k);
            n += k;
            whole[n++] = '\0';
        }
        const char *got = strtab_get(t, whole, n);
        assert_ptr_equal(got, list);
        whole[n / 2] ^= 1;
        const char *other = strtab_get(t, whole, n);
        assert_ptr_not_equal(other, list);
        assert_memory_equal(other, whole, n);
        strtab_put(t, got);
        strtab_put(t, other);
        strtab_put(t, list);
    }
    assert_int_equal(strtab_count(t), 0);
    strtab_free(t);
}

/* Takes and releases 300 strings of its own (tag and a number): the ring of
 * released strings then holds none of those released before. */
static void release_others(struct strtab *t, char tag)
{
    char k[16];
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, "%c%d", tag, i);
        strtab_put(t, strtab_get(t, k, strlen(k)));
    }
}

/* The list made from a list last time is found again by its item; another
 * item gives another list; a list freed (fallen out of the released ring)
 * is made anew, never reached through a stale link (ASan would tell), and
 * so is a list whose prefix was freed. */
static void test_list_successor(void **state)
{
    (void)state;
    struct strtab *t = strtab_new();
    assert_non_null(t);
    const char *a = strtab_add_item(t, NULL, "A", 1);
    const char *ab = strtab_add_item(t, a, "B", 1);
    assert_memory_equal(ab, "A\0B", 4);
    assert_ptr_equal(strtab_add_item(t, a, "B", 1), ab);
    const char *ac = strtab_add_item(t, a, "C", 1);
    assert_ptr_not_equal(ac, ab);
    assert_memory_equal(ac, "A\0C", 4);
    assert_ptr_equal(strtab_add_item(t, a, "B", 1), ab); /* found by its hash */
    assert_ptr_equal(strtab_add_item(t, a, "BB", 2), strtab_get(t, "A\0BB", 5));
    /* three references to ab and to "A\0BB": all dropped, then 256 other
     * strings released push them out */
    for (int i = 0; i < 3; i++)
        strtab_put(t, ab);
    const char *abb = strtab_get(t, "A\0BB", 5);
    for (int i = 0; i < 3; i++)
        strtab_put(t, abb);
    release_others(t, 's');
    assert_int_equal(strtab_count(t), 2); /* a and ac */
    ab = strtab_add_item(t, a, "B", 1);
    assert_memory_equal(ab, "A\0B", 4);
    assert_int_equal(strtab_count(t), 3);
    /* the prefix freed: its successor lives on and grows as before */
    strtab_put(t, a);
    release_others(t, 't');
    assert_int_equal(strtab_count(t), 2);
    const char *abd = strtab_add_item(t, ab, "D", 1);
    assert_memory_equal(abd, "A\0B\0D", 6);
    a = strtab_add_item(t, NULL, "A", 1);
    assert_ptr_equal(strtab_add_item(t, a, "B", 1), ab);
    strtab_put(t, ab);
    strtab_put(t, ab);
    strtab_put(t, abd);
    strtab_put(t, ac);
    strtab_put(t, a);
    assert_int_equal(strtab_count(t), 0);
    strtab_free(t);
}

/* A released string is kept for the next session that needs it (the same
 * copy), among the last 256 released and at most 64 KiB of them, outside
 * the accounting; what falls out is freed. */
static void test_released_kept_bounded(void **state)
{
    (void)state;
    struct strtab *t = strtab_new();
    assert_non_null(t);
    size_t empty = strtab_bytes(t);
    const char *a = strtab_get(t, "mx.example.org", 14);
    size_t one = strtab_bytes(t) - empty;
    strtab_put(t, a);
    assert_int_equal(strtab_count(t), 0);
    assert_int_equal(strtab_bytes(t), empty);
    assert_int_equal(strtab_kept_bytes(t), one);
    assert_ptr_equal(strtab_get(t, "mx.example.org", 14), a);
    assert_int_equal(strtab_count(t), 1);
    assert_int_equal(strtab_kept_bytes(t), 0);
    strtab_put(t, a);
    /* 300 more released, of one size: the last 256 are kept */
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "host%03d.example", i);
        strtab_put(t, strtab_get(t, name, 15));
    }
    assert_int_equal(strtab_count(t), 0);
    empty = strtab_bytes(t); /* the buckets grew with the entries */
    size_t k = strtab_kept_bytes(t);
    assert_int_equal(k % 256, 0);
    assert_int_equal(k / 256, one + 1);                   /* one byte longer than a */
    const char *a2 = strtab_get(t, "mx.example.org", 14); /* a fell out */
    assert_int_equal(strtab_kept_bytes(t), k);
    strtab_put(t, a2);
    /* by bytes: 40 strings of 2000 bytes keep at most 64 KiB */
    char big[2000];
    for (int i = 0; i < 40; i++) {
        memset(big, 'a', sizeof big);
        big[0] = (char)i;
        strtab_put(t, strtab_get(t, big, sizeof big));
    }
    assert_true(strtab_kept_bytes(t) <= 65536);
    assert_true(strtab_kept_bytes(t) > 65536 - 2100);
    /* too big to keep: freed at once */
    char *huge = malloc(70000);
    assert_non_null(huge);
    memset(huge, 'z', 70000);
    k = strtab_kept_bytes(t);
    strtab_put(t, strtab_get(t, huge, 70000));
    assert_int_equal(strtab_kept_bytes(t), k);
    assert_int_equal(strtab_bytes(t), empty);
    free(huge);
    strtab_free(t);
}

/* A half-open flood never evicts a session; a full table evicts the least
 * recently active session, flushed as "evicted" with what was decoded and
 * judged like any other; a new session is never refused. */
static void test_eviction_order(void **state)
{
    (void)state;
    struct flow_cfg fc;
    flow_cfg_defaults(&fc);
    fc.max_flows = 3;
    struct wire w;
    wire_start(&w, &fc);
    struct conn a = conn_new(40000, 25), b = conn_new(40001, 25);
    handshake(&w, &a);
    seg(&w, &a, false, PKT_TH_ACK | PKT_TH_PUSH, "220 mx.example.org ESMTP\r\n");
    seg(&w, &a, true, PKT_TH_ACK | PKT_TH_PUSH, "EHLO a.example\r\n");
    handshake(&w, &b);
    seg(&w, &b, false, PKT_TH_ACK | PKT_TH_PUSH, "220 mx.example.org ESMTP\r\n");
    /* 1,000 SYNs, never answered, newer than both sessions */
    for (uint16_t i = 0; i < 1000; i++) {
        struct conn x = conn_new((uint16_t)(50000 + i), 25);
        seg(&w, &x, true, PKT_TH_SYN, NULL);
    }
    const struct flow_stats *fs = flow_table_stats(w.ft);
    assert_int_equal(fs->evicted_half_open, 999);
    assert_int_equal(fs->evicted_session, 0);
    assert_string_equal(w.log.events, "");
    /* the session goes on */
    seg(&w, &a, false, PKT_TH_ACK | PKT_TH_PUSH, "250 mx.example.org\r\n");
    assert_string_equal(w.log.events, "ehlo_reply:40000");
    /* a third session takes the last SYN's place; a fourth evicts the least
     * recently active session (b), flushed as evicted */
    struct conn c = conn_new(40002, 25), d = conn_new(40003, 25);
    handshake(&w, &c);
    seg(&w, &c, false, PKT_TH_ACK | PKT_TH_PUSH, "220 mx.example.org ESMTP\r\n");
    assert_int_equal(fs->evicted_half_open, 1000);
    handshake(&w, &d);
    assert_int_equal(fs->evicted_session, 1);
    assert_int_equal(fs->flows_refused, 0);
    assert_string_equal(w.log.events, "ehlo_reply:40000,end:40001");
    assert_non_null(strstr(w.log.json[0], "\"end\":\"evicted\""));
    assert_non_null(strstr(w.log.json[0], "\"banner\":{\"code\":220,\"host\":\"mx.example.org\"}"));
    assert_int_equal(fs->flows_evicted, 1001);
    assert_int_equal(smtp_consumer_stats(w.sc)->flows_no_payload, 1000);
    wire_end(&w);
    log_free(&w.log);
}

/* The memcap: sessions' memory is charged to the table, and a new session
 * past it evicts the least recently active one instead of being refused. */
static void test_memcap_evicts_sessions(void **state)
{
    (void)state;
    struct flow_cfg fc;
    flow_cfg_defaults(&fc);
    fc.memcap = 64 * 1024;
    struct wire w;
    wire_start(&w, &fc);
    for (uint16_t i = 0; i < 200; i++) {
        struct conn c = conn_new((uint16_t)(30000 + i), 25);
        common_session(&w, &c);
    }
    const struct flow_stats *fs = flow_table_stats(w.ft);
    assert_true(fs->bytes_in_use <= fc.memcap);
    assert_true(fs->evicted_session > 100);
    assert_int_equal(fs->flows_refused, 0);
    assert_int_equal(smtp_consumer_stats(w.sc)->memcap_refused, 0);
    /* the first session was evicted first, with all it had decoded */
    assert_non_null(strstr(w.log.json[0], "\"end\":\"evicted\""));
    assert_non_null(strstr(w.log.json[0], "\"port\":30000"));
    assert_non_null(strstr(w.log.json[0], "\"XFORWARD NAME\"]"));
    wire_end(&w);
    log_free(&w.log);
}

/* An unbound consumer (direct use) still refuses a session past its
 * smtp_cfg.memcap, and counts it. */
static void test_unbound_memcap(void **state)
{
    (void)state;
    struct smtp_cfg c;
    smtp_cfg_defaults(&c);
    struct smtp_consumer *probe = smtp_consumer_new(&c);
    assert_non_null(probe);
    c.memcap = smtp_consumer_stats(probe)->mem_in_use + sizeof(struct smtp_session) + 64;
    smtp_consumer_free(probe);
    struct smtp_consumer *sc = smtp_consumer_new(&c);
    assert_non_null(sc);
    const struct stream_consumer *ops = smtp_consumer_ops(sc);
    struct flow_info fi;
    conv_flow(&fi, 25);
    assert_true(ops->want(ops->ctx, &fi));
    void *a = ops->open(ops->ctx, &fi);
    assert_non_null(a);
    assert_null(ops->open(ops->ctx, &fi));
    assert_int_equal(smtp_consumer_stats(sc)->memcap_refused, 1);
    assert_int_equal(smtp_consumer_stats(sc)->sessions, 1);
    fi.sport = 80;
    assert_false(ops->want(ops->ctx, &fi));
    ops->close(a, FLOW_END_FIN, CONV_START + 10);
    smtp_consumer_free(sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_before_payload),
        cmocka_unit_test(test_common_session_bytes),
        cmocka_unit_test(test_copy_is_content),
        cmocka_unit_test(test_strings_shared),
        cmocka_unit_test(test_list_items_shared),
        cmocka_unit_test(test_list_items_any_split),
        cmocka_unit_test(test_list_successor),
        cmocka_unit_test(test_released_kept_bounded),
        cmocka_unit_test(test_eviction_order),
        cmocka_unit_test(test_memcap_evicts_sessions),
        cmocka_unit_test(test_unbound_memcap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
