/* SPDX-License-Identifier: Apache-2.0 */
/* test_detector.c: unit tests of the detection rules (alerts/rules.c through
 * alerts/detector.c and alert.c): hand-built session facts for each rule and
 * its negative twin, judged against a real policy engine loaded from a
 * temporary --policy-file; alerts parsed back with jansson. */
#include "detector_fixture.h"

/* ---- tests ---- */

static void test_starttls_used_is_clean(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.25", 25, T0);
    banner(f, "mx.enforce.example");
    caps(f, "PIPELINING", "SIZE 10240000", "STARTTLS", "8BITMIME", NULL);
    starttls(f, 220, true);
    facts_tls_mut(f)->cert.present = false;
    feed(x, f);
    finish(x);
    assert_int_equal(x->out.n, 0);
    assert_int_equal(detector_stats(x->d)->sessions, 1);
}

static void test_unused_low(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.25", 25, T0);
    banner(f, "mx.other.example");
    caps(f, "PIPELINING", "STARTTLS", NULL);
    tx(f, true, 1506, "other.example:250", NULL);
    feed(x, f);
    finish(x);
    assert_int_equal(x->out.n, 1);
    json_t *o = expect(x, 0, "starttls.unused", 1, "low");
    assert_string_equal(jstr(o, "event.action"), "starttls-not-used");
    assert_string_equal(jstr(o, "event.start"), "2026-11-18T11:06:40.000000Z");
    /* no packet seen by these hand-built facts: end at the start */
    assert_string_equal(jstr(o, "event.end"), "2026-11-18T11:06:40.000000Z");
    assert_int_equal(jint(o, "event.duration"), 0);
    assert_string_equal(jstr(o, "source.ip"), "192.0.2.10");
    assert_int_equal(jint(o, "destination.port"), 25);
    assert_string_equal(jstr(o, "smtp.transactions.0.rcpt.0.domain"), "other.example");
    assert_int_equal(jint(o, "stripwatch.evidence.cleartext_data.bytes"), 1506);
    /* offline: no interface, so no observer.ip */
    assert_null(jget(o, "observer.ip"));
    assert_null(jget(o, "observer.ingress"));
    /* other.example is not in the file: offline, the policy is unknown */
    assert_string_equal(jstr(o, "mta_sts.domain"), "other.example");
    assert_string_equal(jstr(o, "mta_sts.status"), "unknown");
    assert_int_equal(jint(o, "stripwatch.suppressed"), 0);
    json_decref(o);
}

/* Every accepted recipient domain is consulted, whatever its place in the
 * RCPT order: 19 decoys first (no policy), enforce.example 20th, and 150
 * more recipients past the 128 the record keeps (their domains in
 * tx.domains: one more decoy, and a refused one that is not consulted).
 * At most 16 lookups are in flight per session; the rest wait their turn. */
static void test_policy_domains_every_one(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "203.0.113.5", 25, T0);
    banner(f, "mx.enforce.example");
    caps(f, "PIPELINING", NULL);
    tx(f, true, 10, "d0.example:250", NULL);
    struct facts_tx *t = &f->tx[0];
    for (int i = 1; i < 128; i++) {
        struct facts_rcpt *r = facts_add_rcpt(f, t);
        assert_non_null(r);
        if (i == 19)
            fset(f, &r->domain, "enforce.example");
        else
            fset(f, &r->domain, "d%d.example", i < 20 ? i : 1);
        r->code = 250;
    }
    int more = facts_tx_domain(f, t, "more.example");
    int refused = facts_tx_domain(f, t, "refused.example");
    assert_int_equal(more, 0);
    assert_int_equal(refused, 1);
    t->domains[0].rcpts = t->domains[0].accepted = 100;
    t->domains[1].rcpts = 50;
    t->rcpt_dropped = 150;
    t->rcpt_total = 278;
    t->rcpt_accepted = 228;
    f->saw_s2c = true; /* the replies were seen: refused.example got none 2xx */
    feed(x, f);
    finish(x);
    assert_int_equal(detector_stats(x->d)->policy_domains_dropped, 0);
    assert_int_equal(x->out.n, 2);
    json_t *o = expect(x, 0, "starttls.stripped", 3, "high");
    assert_string_equal(jstr(o, "mta_sts.domain"), "enforce.example");
    assert_int_equal(jint(o, "stripwatch.recipients.count"), 278);
    assert_int_equal(jint(o, "stripwatch.recipients.accepted"), 228);
    assert_int_equal(jint(o, "stripwatch.recipients.domains"), 21);
    assert_null(jget(o, "stripwatch.recipients.domains_dropped"));
    json_decref(o);
    o = expect(x, 1, "delivery.plaintext_policy", 3, "high");
    assert_string_equal(jstr(o, "mta_sts.domain"), "enforce.example");
    json_decref(o);
}

static void test_unused_without_data_is_clean(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.25", 25, T0);
    caps(f, "PIPELINING", "STARTTLS", NULL);
    tx(f, false, 0, "other.example:250", NULL);
    feed(x, f);
    finish(x);
    assert_int_equal(x->out.n, 0);
}

static void test_unused_after_client_used_tls(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *a = session("192.0.2.10", "198.51.100.25", 25, T0);
    caps(a, "STARTTLS", NULL);
    starttls(a, 220, true);
    char uid_a[18];
    memcpy(uid_a, a->flow.uid, sizeof uid_a);
    feed(x, a);
    struct smtp_facts *b = session("192.0.2.10", "198.51.100.25", 25, T0 + 600);
    caps(b, "STARTTLS", NULL);
    tx(b, true, 900, "other.example:250", NULL);
    feed(x, b);
    /* another client to the same server, never seen using TLS: low */
    struct smtp_facts *c = session("192.0.2.11", "198.51.100.25", 25, T0 + 700);
    caps(c, "STARTTLS", NULL);
    tx(c, true, 900, "other.example:250", NULL);
    feed(x, c);
    finish(x);
    assert_int_equal(x->out.n, 2);
    json_t *o = expect(x, 0, "starttls.unused", 2, "high");
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.client.session_uid"), uid_a);
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.client.ts"),
                        "2026-11-18T11:06:40.000000Z");
    json_decref(o);
    o = expect(x, 1, "starttls.unused", 1, "low");
    assert_null(jget(o, "stripwatch.evidence.posture"));
    json_decref(o);
}

static void test_stripped_by_posture(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *a = session("192.0.2.10", "198.51.100.25", 25, T0);
    banner(a, "mx.other.example");
    caps(a, "PIPELINING", "STARTTLS", NULL);
    starttls(a, 220, true);
    a->flow.syn_ack = flow_syn_ack_fp(57, 65160, 0x61);
    char uid_a[18];
    memcpy(uid_a, a->flow.uid, sizeof uid_a);
    feed(x, a);
    /* the same server, later, without STARTTLS, another SYN-ACK */
    struct smtp_facts *b = session("192.0.2.12", "198.51.100.25", 25, T0 + 3600);
    banner(b, "mx.other.example");
    caps(b, "PIPELINING", "8BITMIME", NULL);
    tx(b, true, 700, "other.example:250", NULL);
    b->flow.syn_ack = flow_syn_ack_fp(64, 65160, 0xd1);
    /* path evidence: the EHLO reply names another client address */
    anomaly(b, ANOM_GREETING_CLIENT_ADDR,
            "EHLO reply names 203.0.113.7, client on the wire 192.0.2.12", 5);
    feed(x, b);
    /* the same, with bytes missing from the server side: low confidence */
    struct smtp_facts *g = session("192.0.2.13", "198.51.100.25", 25, T0 + 3650);
    banner(g, "mx.other.example");
    caps(g, "PIPELINING", "8BITMIME", NULL);
    anomaly(g, ANOM_GAP, "1448 bytes", 6);
    feed(x, g);
    /* the negative twin: a server never seen offering STARTTLS */
    struct smtp_facts *c = session("192.0.2.12", "198.51.100.99", 25, T0 + 3700);
    banner(c, "mx.plain.example");
    caps(c, "PIPELINING", "8BITMIME", NULL);
    tx(c, true, 700, "plain.example:250", NULL);
    feed(x, c);
    finish(x);
    assert_int_equal(x->out.n, 2);
    json_t *o = expect(x, 0, "starttls.stripped", 3, "medium");
    assert_string_equal(jstr(o, "event.action"), "starttls-stripped");
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.server.session_uid"), uid_a);
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.server.key"), "198.51.100.25:25");
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.server.by"), "address");
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.server.ts"),
                        "2026-11-18T11:06:40.000000Z");
    assert_string_equal(jstr(o, "stripwatch.evidence.capabilities.0"), "PIPELINING");
    assert_string_equal(jstr(o, "stripwatch.evidence.anomalies.0.kind"), "greeting_client_addr");
    assert_string_equal(jstr(o, "stripwatch.evidence.anomalies.0.detail"),
                        "EHLO reply names 203.0.113.7, client on the wire 192.0.2.12");
    assert_int_equal(jint(o, "stripwatch.evidence.path.syn_ack.ttl"), 64);
    assert_int_equal(jint(o, "stripwatch.evidence.path.syn_ack.window"), 65160);
    assert_string_equal(jstr(o, "stripwatch.evidence.path.syn_ack.options"), "d1");
    assert_int_equal(jint(o, "stripwatch.evidence.path.syn_ack_before.ttl"), 57);
    assert_string_equal(jstr(o, "stripwatch.evidence.path.syn_ack_before.options"), "61");
    assert_string_equal(jstr(o, "stripwatch.evidence.path.before_session_uid"), uid_a);
    assert_string_equal(jstr(o, "stripwatch.evidence.path.changed.0"), "ttl");
    assert_string_equal(jstr(o, "stripwatch.evidence.path.changed.1"), "options");
    assert_null(jget(o, "stripwatch.evidence.path.changed.2"));
    assert_string_equal(jstr(o, "source.ip"), "192.0.2.12");
    json_decref(o);
    o = expect(x, 1, "starttls.stripped", 3, "low");
    assert_string_equal(jstr(o, "stripwatch.evidence.anomalies.0.kind"), "gap");
    assert_null(jget(o, "stripwatch.evidence.path")); /* no SYN-ACK seen */
    json_decref(o);
}

static void test_stripped_by_enforce_policy(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "203.0.113.5", 25, T0);
    banner(f, "mx.enforce.example");
    caps(f, "PIPELINING", "SIZE 10240000", "8BITMIME", NULL);
    tx(f, true, 2048, "enforce.example:250", "rejected.example:550", NULL);
    feed(x, f);
    finish(x);
    assert_int_equal(x->out.n, 2);
    json_t *o = expect(x, 0, "starttls.stripped", 3, "high");
    assert_string_equal(jstr(o, "mta_sts.domain"), "enforce.example");
    assert_string_equal(jstr(o, "mta_sts.mode"), "enforce");
    assert_string_equal(jstr(o, "mta_sts.id"), "20261101T000000");
    assert_string_equal(jstr(o, "mta_sts.mx.0"), "mx.enforce.example");
    assert_string_equal(jstr(o, "mta_sts.source"), "file");
    assert_string_equal(jstr(o, "mta_sts.status"), "valid");
    assert_string_equal(jstr(o, "mta_sts.fetched_at"), "2026-11-15T08:00:00Z");
    assert_int_equal(jint(o, "mta_sts.max_age"), 604800);
    /* only the accepted recipient's domain was consulted */
    assert_int_equal(json_array_size(jget(o, "stripwatch.evidence.policies")), 1);
    json_decref(o);
    o = expect(x, 1, "delivery.plaintext_policy", 3, "high");
    assert_string_equal(jstr(o, "event.action"), "plaintext-delivery-enforce");
    assert_string_equal(jstr(o, "mta_sts.mode"), "enforce");
    json_decref(o);
}

/* The same session five days later: enforce.example's policy expired on
 * 2026-11-22T08:00:00Z (offline: judged at capture time, whatever the wall
 * clock says) and cannot be refreshed offline. It is still judged with
 * (RFC 8461 §5.1), status "expired", one step less confident. */
static void test_stripped_by_expired_policy(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "203.0.113.5", 25, T0 + 5 * 86400);
    banner(f, "mx.enforce.example");
    caps(f, "PIPELINING", "SIZE 10240000", "8BITMIME", NULL);
    tx(f, true, 2048, "enforce.example:250", NULL);
    feed(x, f);
    finish(x);
    assert_int_equal(x->out.n, 2);
    json_t *o = expect(x, 0, "starttls.stripped", 3, "medium");
    assert_string_equal(jstr(o, "mta_sts.domain"), "enforce.example");
    assert_string_equal(jstr(o, "mta_sts.mode"), "enforce");
    assert_string_equal(jstr(o, "mta_sts.status"), "expired");
    assert_string_equal(jstr(o, "mta_sts.detail"), "policy expired; no refresh offline");
    assert_string_equal(jstr(o, "mta_sts.fetched_at"), "2026-11-15T08:00:00Z");
    assert_string_equal(jstr(o, "stripwatch.evidence.policies.0.status"), "expired");
    json_decref(o);
    o = expect(x, 1, "delivery.plaintext_policy", 3, "medium");
    assert_string_equal(jstr(o, "mta_sts.status"), "expired");
    json_decref(o);
}

static void test_stripped_policy_derived_from_server_name(void **state)
{
    /* the client stopped after EHLO (no recipient visible): the policy of the
     * banner host's parent domain names this MX */
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "203.0.113.5", 25, T0);
    banner(f, "mx.enforce.example");
    caps(f, "PIPELINING", "8BITMIME", NULL);
    feed(x, f);
    finish(x);
    assert_int_equal(x->out.n, 1);
    json_t *o = expect(x, 0, "starttls.stripped", 3, "high");
    assert_string_equal(jstr(o, "mta_sts.domain"), "enforce.example");
    assert_true(json_is_true(jget(o, "mta_sts.derived_from_server_name")));
    json_decref(o);
}

static void test_tampered_mangled_token(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.25", 25, T0);
    banner(f, "mx.other.example");
    caps(f, "PIPELINING", "XXXXXXXA", "8BITMIME", NULL);
    anomaly(f, ANOM_CAP_MANGLED, "token=XXXXXXXA", 7);
    tx(f, true, 100, "other.example:250", NULL);
    feed(x, f);
    finish(x);
    assert_int_equal(x->out.n, 1);
    /* the only mask, of STARTTLS's length: plausible, yet CHUNKING and
     * SMTPUTF8 (also 8 letters) are not visible and nothing else speaks
     * for STARTTLS (alerts/RULES.md): medium; with a policy or posture, high */
    json_t *o = expect(x, 0, "starttls.tampered", 2, "medium");
    assert_string_equal(jstr(o, "event.action"), "starttls-capability-mangled");
    assert_string_equal(jstr(o, "stripwatch.evidence.anomalies.0.kind"), "cap_mangled");
    assert_string_equal(jstr(o, "stripwatch.evidence.anomalies.0.detail"), "token=XXXXXXXA");
    assert_int_equal(jint(o, "stripwatch.evidence.anomalies.0.packet"), 7);
    assert_string_equal(jstr(o, "stripwatch.evidence.capabilities.1"), "XXXXXXXA");
    json_decref(o);
}

/* Bytes from the wire that are not UTF-8 never break the alert JSON. */
static void test_non_utf8_wire_bytes(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.25", 25, T0);
    banner(f, "mx.\xff.example");
    caps(f, "PIPELINING", "X-\xc3(", "XXXXXXXA", NULL);
    anomaly(f, ANOM_CAP_MANGLED, "token=\xffXXXXXXA", 7);
    feed(x, f);
    finish(x);
    assert_int_equal(x->out.n, 1);
    json_t *o = expect(x, 0, "starttls.tampered", 2, "medium");
    assert_string_equal(jstr(o, "stripwatch.evidence.capabilities.1"), "X-?(");
    assert_string_equal(jstr(o, "stripwatch.evidence.anomalies.0.detail"), "token=?XXXXXXA");
    json_decref(o);
}

static void test_tampered_starttls_unknown_and_plaintext_after_220(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.25", 25, T0);
    caps(f, "STARTTLS", NULL);
    starttls(f, 502, false);
    anomaly(f, ANOM_STARTTLS_UNKNOWN_CMD, "502 5.5.1 Unrecognized command", 9);
    feed(x, f);
    /* a TLS-inspecting firewall: 220, then plaintext (low) */
    struct smtp_facts *g = session("192.0.2.10", "198.51.100.26", 25, T0 + 10);
    caps(g, "STARTTLS", NULL);
    starttls(g, 220, false);
    anomaly(g, ANOM_NOT_TLS_AFTER_STARTTLS, "EHLO TRANSIT-MTA", 11);
    feed(x, g);
    /* negative twin: 502 from a server that never offered STARTTLS */
    struct smtp_facts *h = session("192.0.2.10", "198.51.100.27", 25, T0 + 20);
    caps(h, "PIPELINING", NULL);
    starttls(h, 502, false);
    anomaly(h, ANOM_STARTTLS_NOT_OFFERED, "", 9);
    feed(x, h);
    /* seen between the man in the middle and the server: the client's
     * STARTTLS arrives as XXXXXXXX, the mail follows in clear; tampering
     * explains the unused STARTTLS (no starttls.unused) */
    struct smtp_facts *m = session("192.0.2.10", "198.51.100.29", 25, T0 + 25);
    caps(m, "PIPELINING", "STARTTLS", NULL);
    anomaly(m, ANOM_CAP_MANGLED, "command=XXXXXXXX", 10);
    m->anomalies[0].dir = DIR_C2S;
    anomaly(m, ANOM_STARTTLS_UNKNOWN_CMD, "502 5.5.2 Error: command not recognized", 11);
    tx(m, true, 100, "other.example:250", NULL);
    feed(x, m);
    /* STARTTLS missing from the EHLO reply, yet accepted with 220 */
    struct smtp_facts *k = session("192.0.2.10", "198.51.100.28", 25, T0 + 30);
    caps(k, "PIPELINING", "8BITMIME", NULL);
    starttls(k, 220, true);
    anomaly(k, ANOM_STARTTLS_NOT_OFFERED, "", 9);
    feed(x, k);
    finish(x);
    assert_int_equal(x->out.n, 4);
    json_t *o = expect(x, 2, "starttls.tampered", 3, "high");
    assert_string_equal(jstr(o, "event.action"), "starttls-command-mangled");
    assert_string_equal(jstr(o, "stripwatch.evidence.anomalies.0.dir"), "c2s");
    assert_string_equal(jstr(o, "stripwatch.evidence.anomalies.1.kind"), "starttls_unknown_cmd");
    json_decref(o);
    o = expect(x, 3, "starttls.tampered", 2, "medium");
    assert_string_equal(jstr(o, "event.action"), "starttls-hidden-in-ehlo");
    json_decref(o);
    o = expect(x, 0, "starttls.tampered", 3, "high");
    assert_string_equal(jstr(o, "event.action"), "starttls-command-rejected");
    assert_int_equal(jint(o, "stripwatch.evidence.starttls.reply_code"), 502);
    json_decref(o);
    o = expect(x, 1, "starttls.tampered", 1, "low");
    assert_string_equal(jstr(o, "event.action"), "starttls-plaintext-after-220");
    json_decref(o);
}

static void test_fallback(void **state)
{
    struct fx *x = *state;
    /* in session: 454, then the mail in clear */
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.25", 25, T0);
    caps(f, "STARTTLS", NULL);
    starttls(f, 454, false);
    anomaly(f, ANOM_STARTTLS_REFUSED, "454 4.7.0 TLS not available", 8);
    tx(f, true, 300, "other.example:250", NULL);
    feed(x, f);
    /* across sessions: a failed handshake, then a plaintext retry */
    struct smtp_facts *a = session("192.0.2.20", "198.51.100.30", 25, T0 + 100);
    caps(a, "STARTTLS", NULL);
    starttls(a, 220, false);
    facts_tls_mut(a)->alert_level = 2;
    facts_tls_mut(a)->alert_desc = 40;
    char uid_a[18];
    memcpy(uid_a, a->flow.uid, sizeof uid_a);
    feed(x, a);
    struct smtp_facts *b = session("192.0.2.20", "198.51.100.30", 25, T0 + 130);
    caps(b, "STARTTLS", NULL);
    tx(b, true, 300, "enforce.example:250", NULL);
    feed(x, b);
    /* a failed attempt (220, then nothing), the retry to another address of
     * the same banner name, without a STARTTLS offer: medium */
    struct smtp_facts *d = session("192.0.2.40", "198.51.100.31", 25, T0 + 200);
    banner(d, "mx.named.example");
    caps(d, "STARTTLS", NULL);
    starttls(d, 220, false);
    feed(x, d);
    struct smtp_facts *e = session("192.0.2.40", "198.51.100.32", 25, T0 + 260);
    banner(e, "mx.named.example");
    caps(e, "8BITMIME", NULL);
    tx(e, true, 300, "other.example:250", NULL);
    feed(x, e);
    /* the retry 601 s after the attempt: outside the default window */
    struct smtp_facts *h = session("192.0.2.40", "198.51.100.31", 25, T0 + 801);
    banner(h, "mx.named.example");
    caps(h, "8BITMIME", NULL);
    tx(h, true, 300, "other.example:250", NULL);
    feed(x, h);
    finish(x);
    assert_int_equal(x->out.n, 6);
    json_t *o = expect(x, 0, "starttls.fallback", 2, "medium");
    assert_string_equal(jstr(o, "stripwatch.evidence.reason"),
                        "STARTTLS answered 454, then content sent in clear");
    json_decref(o);
    o = expect(x, 1, "starttls.fallback", 3, "high");
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.client_failure.session_uid"), uid_a);
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.client_failure.detail"),
                        "TLS handshake failed (alert level 2 description 40)");
    assert_string_equal(jstr(o, "mta_sts.domain"), "enforce.example");
    json_decref(o);
    /* the same plaintext session also breaks the enforce policy; its server
     * (no names) cannot be checked against the mx list; starttls.unused is
     * left out: the fallback explains it */
    o = expect(x, 2, "delivery.plaintext_policy", 3, "high");
    json_decref(o);
    /* the retry without STARTTLS is also stripped (only its name offered
     * it before: medium) */
    o = expect(x, 3, "starttls.stripped", 2, "medium");
    json_decref(o);
    o = expect(x, 4, "starttls.fallback", 2, "medium");
    assert_string_equal(jstr(o, "stripwatch.evidence.reason"),
                        "plaintext delivery after a failed TLS attempt by the same client to a "
                        "server of the same name");
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.client_failure.showed"),
                        "client's TLS attempt to a server of the same name failed");
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.client_failure.detail"),
                        "ClientHello not answered (reset or timeout)");
    json_decref(o);
    /* outside the window: stripped only (this address offered STARTTLS
     * before: high), no fallback */
    o = expect(x, 5, "starttls.stripped", 3, "medium");
    assert_string_equal(jstr(o, "destination.ip"), "198.51.100.31");
    json_decref(o);
}

static void test_plaintext_testing_and_mx_mismatch(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.40", 25, T0);
    banner(f, "mx.testing.example");
    caps(f, "PIPELINING", "STARTTLS", NULL);
    tx(f, true, 300, "testing.example:250", NULL);
    feed(x, f);
    struct smtp_facts *g = session("192.0.2.10", "198.51.100.41", 25, T0 + 5);
    banner(g, "smtp.attacker.example");
    caps(g, "PIPELINING", NULL);
    tx(g, true, 300, "enforce.example:250", NULL);
    feed(x, g);
    finish(x);
    assert_int_equal(x->out.n, 4);
    json_t *o = expect(x, 0, "starttls.unused", 2, "medium");
    assert_string_equal(jstr(o, "mta_sts.mode"), "testing");
    json_decref(o);
    o = expect(x, 1, "delivery.plaintext_policy", 1, "high");
    assert_string_equal(jstr(o, "event.action"), "plaintext-delivery-testing");
    assert_string_equal(jstr(o, "mta_sts.fetched_at"), "2026-11-18T09:30:00Z");
    json_decref(o);
    o = expect(x, 2, "delivery.plaintext_policy", 3, "high");
    json_decref(o);
    o = expect(x, 3, "policy.mx_mismatch", 2, "medium");
    assert_string_equal(jstr(o, "stripwatch.evidence.server_names.0"), "smtp.attacker.example");
    assert_string_equal(jstr(o, "mta_sts.domain"), "enforce.example");
    json_decref(o);
}

/* STARTTLS to mx.enforce.example at t with a self-signed certificate
 * naming it (fails MTA-STS validation). */
static struct smtp_facts *self_signed_session(sw_usec t)
{
    struct smtp_facts *f = session("192.0.2.10", "203.0.113.5", 25, t);
    banner(f, "mx.enforce.example");
    caps(f, "STARTTLS", NULL);
    starttls(f, 220, true);
    fset(f, &facts_tls_mut(f)->sni, "mx.enforce.example");
    facts_tls_mut(f)->cert.present = true;
    facts_tls_mut(f)->cert.self_signed = true;
    fset(f, &facts_tls_mut(f)->cert.subject, "CN=mx.enforce.example");
    fset(f, &facts_tls_mut(f)->cert.issuer, "CN=mx.enforce.example");
    fset(f, &facts_tls_mut(f)->cert.not_before, "2026-01-01T00:00:00Z");
    fset(f, &facts_tls_mut(f)->cert.not_after, "2027-01-01T00:00:00Z");
    assert_true(facts_add_san(f, "mx.enforce.example", strlen("mx.enforce.example")));
    return f;
}

static void test_certificate_invalid(void **state)
{
    struct fx *x = *state;
    feed(x, self_signed_session(T0));
    /* negative twin: a CA-issued certificate naming the MX */
    struct smtp_facts *g = session("192.0.2.10", "203.0.113.5", 25, T0 + 60);
    banner(g, "mx.enforce.example");
    caps(g, "STARTTLS", NULL);
    starttls(g, 220, true);
    fset(g, &facts_tls_mut(g)->sni, "mx.enforce.example");
    facts_tls_mut(g)->cert.present = true;
    fset(g, &facts_tls_mut(g)->cert.subject, "CN=mx.enforce.example");
    fset(g, &facts_tls_mut(g)->cert.issuer, "CN=Example CA");
    fset(g, &facts_tls_mut(g)->cert.not_before, "2026-01-01T00:00:00Z");
    fset(g, &facts_tls_mut(g)->cert.not_after, "2027-01-01T00:00:00Z");
    assert_true(facts_add_san(g, "*.enforce.example", strlen("*.enforce.example")));
    feed(x, g);
    finish(x);
    assert_int_equal(x->out.n, 1);
    json_t *o = expect(x, 0, "policy.certificate_invalid", 3, "medium");
    assert_string_equal(jstr(o, "stripwatch.evidence.problems.0"), "self-signed");
    assert_null(jget(o, "stripwatch.evidence.problems.1"));
    assert_string_equal(jstr(o, "mta_sts.domain"), "enforce.example");
    json_decref(o);
}

/* The same self-signed certificate; the client's first record after its
 * Finished: application data (the alert stands: high), or an alert (it
 * refused the certificate: low, confidence unchanged, client_refused). */
static void test_certificate_invalid_refused(void **state)
{
    struct fx *x = *state;
    for (int i = 0; i < 2; i++) {
        struct smtp_facts *f = self_signed_session(T0 + i * 60);
        facts_tls_mut(f)->client_after = i ? FACTS_TLS_AFTER_ALERT : FACTS_TLS_AFTER_APPDATA;
        feed(x, f);
    }
    finish(x);
    assert_int_equal(x->out.n, 2);
    json_t *o = expect(x, 0, "policy.certificate_invalid", 3, "medium");
    assert_string_equal(jstr(o, "stripwatch.evidence.reason"),
                        "the certificate fails MTA-STS validation and the TLS handshake with it "
                        "completed");
    assert_null(jget(o, "stripwatch.evidence.client_refused"));
    json_decref(o);
    o = expect(x, 1, "policy.certificate_invalid", 1, "medium");
    assert_string_equal(jstr(o, "stripwatch.severity_name"), "low");
    assert_string_equal(jstr(o, "stripwatch.evidence.reason"),
                        "the certificate fails MTA-STS validation and the TLS handshake with it "
                        "completed; the client refused it: it closed TLS with an alert before "
                        "sending any data");
    assert_true(json_is_true(jget(o, "stripwatch.evidence.client_refused")));
    assert_string_equal(jstr(o, "stripwatch.evidence.problems.0"), "self-signed");
    json_decref(o);
}

static void test_auth_cleartext(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("10.0.0.1", "64.12.168.40", 587, T0);
    caps(f, "AUTH PLAIN LOGIN", "STARTTLS", NULL);
    fset(f, &f->auth_mechanism, "PLAIN");
    f->auth_cleartext = true;
    f->auth_code = 235;
    tx(f, true, 928, "enforce.example:250", NULL);
    feed(x, f);
    /* negative twin: AUTH LOGIN refused as out of sequence, no credential */
    struct smtp_facts *g = session("10.0.0.2", "10.0.0.1", 1080, T0 + 5);
    caps(g, "AUTH LOGIN", NULL);
    fset(g, &g->auth_mechanism, "LOGIN");
    g->auth_cleartext = true;
    g->auth_code = 503;
    feed(x, g);
    finish(x);
    /* submission: no MTA-STS rule applies, the unused STARTTLS is low */
    assert_int_equal(x->out.n, 2);
    json_t *o = expect(x, 0, "starttls.unused", 1, "low");
    assert_null(jget(o, "mta_sts"));
    json_decref(o);
    o = expect(x, 1, "auth.cleartext", 3, "high");
    assert_string_equal(jstr(o, "stripwatch.evidence.auth.mechanism"), "PLAIN");
    assert_int_equal(jint(o, "stripwatch.evidence.auth.reply_code"), 235);
    json_decref(o);
}

/* live: observer.ip carries the interface's addresses in the order given,
 * beside observer.ingress.interface.name */
static void test_observer_ip(void **state)
{
    struct fx *x = *state;
    detector_free(x->d);
    struct detector_cfg c;
    fx_cfg(x, &c);
    static const char *const ips[] = {"192.0.2.1", "2001:db8::1"};
    c.interface = "veth-test";
    c.ips = ips;
    c.n_ips = 2;
    x->d = fx_detector(x, &c);
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.25", 25, T0);
    banner(f, "mx.other.example");
    caps(f, "PIPELINING", "STARTTLS", NULL);
    tx(f, true, 1506, "other.example:250", NULL);
    feed(x, f);
    finish(x);
    assert_int_equal(x->out.n, 1);
    json_t *o = expect(x, 0, "starttls.unused", 1, "low");
    assert_int_equal(json_array_size(jget(o, "observer.ip")), 2);
    assert_string_equal(jstr(o, "observer.ip.0"), "192.0.2.1");
    assert_string_equal(jstr(o, "observer.ip.1"), "2001:db8::1");
    assert_string_equal(jstr(o, "observer.ingress.interface.name"), "veth-test");
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_starttls_used_is_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unused_low, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unused_without_data_is_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_domains_every_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unused_after_client_used_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stripped_by_posture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stripped_by_enforce_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stripped_by_expired_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stripped_policy_derived_from_server_name, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tampered_mangled_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_starttls_unknown_and_plaintext_after_220,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_utf8_wire_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plaintext_testing_and_mx_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_certificate_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_certificate_invalid_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_cleartext, setup, teardown),
        cmocka_unit_test_setup_teardown(test_observer_ip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
