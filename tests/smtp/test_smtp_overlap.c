/* SPDX-License-Identifier: Apache-2.0 */
/* test_smtp_overlap.c: overlapping copies of the server's bytes that
 * disagree, through the real flow table and SMTP consumer (RFC 9293
 * reassembly, first copy wins): both copies reach the decoder, which
 * records overlap_starttls_conflict when the copies of the EHLO reply
 * disagree on a STARTTLS capability line, or those of the STARTTLS reply on
 * 220, whichever copy came first and whether the reply was read before or
 * after the second copy came; copies that agree on STARTTLS are only an
 * overlap_conflict. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conv.h"
#include "decode/smtp_int.h"

/* The anomalies of the session records, "kind detail|" each. */
struct rec {
    char anoms[2048];
    int starttls_offered;
    int ends;
};

static void on_event(void *ctx, enum smtp_event ev, const struct smtp_facts *f)
{
    struct rec *r = ctx;
    if (ev != SMTP_EV_END)
        return;
    r->ends++;
    r->starttls_offered = f->starttls_offered;
    for (size_t i = 0; i < f->n_anomalies; i++) {
        size_t n = strlen(r->anoms);
        snprintf(r->anoms + n, sizeof r->anoms - n, "%s %s|",
                 anomaly_kind_str(f->anomalies[i].kind), facts_s(f->anomalies[i].detail));
    }
}

#define CLI 0xc000020au /* 192.0.2.10 */
#define SRV 0xc6336419u /* 198.51.100.25 */

struct wire {
    struct smtp_consumer *sc;
    struct flow_table *ft;
    struct rec rec;
    uint64_t no;
    sw_usec ts;
    uint32_t cseq, sseq; /* next sequence number of each side */
};

static void put4(struct sw_addr *a, uint32_t v)
{
    a->family = 4;
    a->b[0] = (uint8_t)(v >> 24), a->b[1] = (uint8_t)(v >> 16);
    a->b[2] = (uint8_t)(v >> 8), a->b[3] = (uint8_t)v;
}

/* One segment at the sender's next sequence number, which payload, SYN and
 * FIN advance. */
static void seg(struct wire *w, bool from_client, uint8_t flags, const char *data)
{
    struct pkt p;
    memset(&p, 0, sizeof p);
    p.ts = w->ts += 1000;
    p.no = ++w->no;
    put4(&p.src, from_client ? CLI : SRV);
    put4(&p.dst, from_client ? SRV : CLI);
    p.sport = from_client ? 40000 : 25;
    p.dport = from_client ? 25 : 40000;
    p.ttl = 57;
    p.ip_id = (uint16_t)w->no;
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

#define D (PKT_TH_ACK | PKT_TH_PUSH)

static void wire_start(struct wire *w)
{
    memset(w, 0, sizeof *w);
    struct smtp_cfg c;
    smtp_cfg_defaults(&c);
    c.on_event = on_event;
    c.event_ctx = &w->rec;
    w->sc = smtp_consumer_new(&c);
    assert_non_null(w->sc);
    struct flow_cfg d;
    flow_cfg_defaults(&d);
    w->ft = flow_table_new(&d, smtp_consumer_ops(w->sc));
    assert_non_null(w->ft);
    smtp_consumer_bind(w->sc, w->ft);
    w->ts = CONV_START;
    w->cseq = 1000;
    w->sseq = 5000;
    seg(w, true, PKT_TH_SYN, NULL);
    seg(w, false, PKT_TH_SYN | PKT_TH_ACK, NULL);
    seg(w, true, PKT_TH_ACK, NULL);
}

/* Ends the flow (the session record is written) and frees everything. */
static void wire_end(struct wire *w)
{
    seg(w, true, PKT_TH_FIN | PKT_TH_ACK, NULL);
    seg(w, false, PKT_TH_FIN | PKT_TH_ACK, NULL);
    seg(w, true, PKT_TH_ACK, NULL);
    flow_table_free(w->ft);
    smtp_consumer_free(w->sc);
    assert_int_equal(w->rec.ends, 1);
}

/* Two copies of the same server bytes, one after the other, before the
 * client ACKs them. */
static void two_copies(struct wire *w, const char *first, const char *second)
{
    uint32_t at = w->sseq;
    seg(w, false, D, first);
    w->sseq = at;
    seg(w, false, D, second);
}

#define BANNER   "220 mx.example.org ESMTP\r\n" /* 26 bytes */
#define WITH     "250-mx.example.org\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
#define STRIPPED "250-mx.example.org\r\n250-XXXXXXXA\r\n250 8BITMIME\r\n"

static void plain_delivery(struct wire *w)
{
    seg(w, true, D, "MAIL FROM:<a@sender.example>\r\n");
    seg(w, false, D, "250 2.1.0 Ok\r\n");
    seg(w, true, D, "QUIT\r\n");
    seg(w, false, D, "221 2.0.0 Bye\r\n");
}

/* A decoy offering STARTTLS (a bad checksum the client drops; the sensor
 * checks none) ahead of the real, stripped reply: the sensor kept the decoy,
 * and says the copies disagree. */
static void test_decoy_first(void **state)
{
    (void)state;
    struct wire w;
    wire_start(&w);
    seg(&w, false, D, BANNER);
    seg(&w, true, D, "EHLO client.example\r\n");
    two_copies(&w, WITH, STRIPPED);
    plain_delivery(&w);
    wire_end(&w);
    assert_true(w.rec.starttls_offered);
    assert_string_equal(w.rec.anoms,
                        "overlap_conflict retransmission differs from first copy|"
                        "overlap_starttls_conflict EHLO reply at offset 26: STARTTLS in the "
                        "first copy only (kept)|");
}

/* The stripped reply first, a copy offering STARTTLS second. */
static void test_decoy_second(void **state)
{
    (void)state;
    struct wire w;
    wire_start(&w);
    seg(&w, false, D, BANNER);
    seg(&w, true, D, "EHLO client.example\r\n");
    two_copies(&w, STRIPPED, WITH);
    plain_delivery(&w);
    wire_end(&w);
    assert_false(w.rec.starttls_offered);
    assert_string_equal(w.rec.anoms,
                        "cap_mangled token=XXXXXXXA|"
                        "overlap_conflict retransmission differs from first copy|"
                        "overlap_starttls_conflict EHLO reply at offset 26: STARTTLS in the "
                        "second copy only (dropped)|");
}

/* Both copies wait in the out-of-order queue (the banner is late, and the
 * client ACKed none of it): the conflict is known before the reply is
 * read, and judged when it is. */
static void test_queued_before_reply(void **state)
{
    (void)state;
    struct wire w;
    wire_start(&w);
    seg(&w, true, D, "EHLO client.example\r\n"); /* ACKs nothing of the server's */
    uint32_t banner_at = w.sseq;
    w.sseq += (uint32_t)strlen(BANNER);
    two_copies(&w, WITH, STRIPPED);
    uint32_t after = w.sseq;
    w.sseq = banner_at;
    seg(&w, false, D, BANNER);
    w.sseq = after;
    plain_delivery(&w);
    wire_end(&w);
    assert_true(w.rec.starttls_offered);
    assert_string_equal(w.rec.anoms,
                        "overlap_conflict retransmission differs from first copy|"
                        "overlap_starttls_conflict EHLO reply at offset 26: STARTTLS in the "
                        "first copy only (kept)|");
}

/* Copies that differ elsewhere (SIZE) and agree on STARTTLS; a conflict in
 * the banner: overlap conflicts, nothing about STARTTLS. */
static void test_agreeing_copies(void **state)
{
    (void)state;
    struct wire w;
    wire_start(&w);
    two_copies(&w, "220 mx.example.org ESMTP\r\n", "220 mx.example.org SMTP!\r\n");
    seg(&w, true, D, "EHLO client.example\r\n");
    two_copies(&w, "250-mx\r\n250-SIZE 1000\r\n250 STARTTLS\r\n",
               "250-mx\r\n250-SIZE 2000\r\n250 STARTTLS\r\n");
    plain_delivery(&w);
    wire_end(&w);
    assert_string_equal(w.rec.anoms, "overlap_conflict retransmission differs from first copy|"
                                     "overlap_conflict retransmission differs from first copy|");
}

/* A refusal injected ahead of the server's 220 to STARTTLS. */
static void test_starttls_reply(void **state)
{
    (void)state;
    struct wire w;
    wire_start(&w);
    seg(&w, false, D, BANNER);
    seg(&w, true, D, "EHLO client.example\r\n");
    seg(&w, false, D, WITH); /* 26 + 48 bytes */
    seg(&w, true, D, "STARTTLS\r\n");
    two_copies(&w, "454 4.7.0 TLS not available\r\n", "220 2.0.0 Ready to start TLS\r\n");
    plain_delivery(&w);
    wire_end(&w);
    assert_string_equal(w.rec.anoms,
                        "starttls_refused STARTTLS answered 454|"
                        "overlap_conflict retransmission differs from first copy|"
                        "overlap_starttls_conflict STARTTLS reply at offset 74: 220 in the "
                        "second copy only (dropped)|");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decoy_first),         cmocka_unit_test(test_decoy_second),
        cmocka_unit_test(test_queued_before_reply), cmocka_unit_test(test_agreeing_copies),
        cmocka_unit_test(test_starttls_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
