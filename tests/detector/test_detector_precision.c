/* SPDX-License-Identifier: Apache-2.0 */
/* test_detector_precision.c: the rules on the cases of issue 12 (precision
 * on real traffic): masked ESMTP extensions judged by evidence, a padded
 * EHLO reply still judged for a strip, TTL shifts that count only on the
 * replies that matter. Hand-built facts, real policy engine (fixture). */
#include "detector_fixture.h"

/* The EHLO reply of a Microsoft ESMTP 6.0 (Exchange 2003) server behind an
 * ESMTP-inspection box: every mask fits that server's own list by length
 * (TURN, CHUNKING, VRFY, X-EXPS GSSAPI NTLM LOGIN, X-EXPS=LOGIN, AUTH=LOGIN,
 * X-LINK2STATE, XEXCH50, OK); STARTTLS was never offered. */
static const char *const exchange_masked[] = {
    "XXXA",
    "SIZE",
    "ETRN",
    "PIPELINING",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "8bitmime",
    "BINARYMIME",
    "XXXXXXXB",
    "XXXC",
    "XXXXXXXXXXXXXXXXXXXXXXXD",
    "XXXXXXXXXXXE",
    "AUTH GSSAPI NTLM LOGIN",
    "XXXXXXXXXF",
    "XXXXXXXXXXXG",
    "XXXXXXH",
    "XI",
};
#define N_EXCHANGE (sizeof exchange_masked / sizeof exchange_masked[0])

static struct smtp_facts *exchange_session(const char *sip, int64_t t)
{
    struct smtp_facts *f = session("192.0.2.10", sip, 25, t);
    banner(f, "mail.other.example");
    for (size_t i = 0; i < N_EXCHANGE; i++) {
        const char *c = exchange_masked[i];
        assert_true(facts_add_cap(f, c, strlen(c)));
        size_t kl = strcspn(c, " =");
        /* the decoder's cap_mangled anomaly for each mask (Xs, one letter) */
        if (kl >= 2 && strspn(c, "X") == kl - 1 && c[kl - 1] != 'X') {
            char d[64];
            snprintf(d, sizeof d, "token=%.*s", (int)kl, c);
            anomaly(f, ANOM_CAP_MANGLED, d, 8);
        }
    }
    return f;
}

static void test_masked_extensions_are_no_strip(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = exchange_session("198.51.100.40", T0);
    assert_int_equal(f->n_anomalies, 9);
    tx(f, true, 700, "other.example:250", NULL);
    feed(x, f);
    finish(x);
    assert_int_equal(x->out.n, 1);
    json_t *o = expect(x, 0, "esmtp.masked_extensions", 1, "high");
    assert_string_equal(jstr(o, "event.action"), "esmtp-extensions-masked");
    assert_string_equal(jstr(o, "stripwatch.evidence.anomalies.0.detail"), "token=XXXA");
    assert_string_equal(jstr(o, "stripwatch.evidence.anomalies.8.detail"), "token=XI");
    assert_string_equal(jstr(o, "stripwatch.evidence.capabilities.8"), "XXXXXXXB");
    json_decref(o);
}

/* The same masks, but this server offered STARTTLS in an earlier session:
 * the length-8 mask is the missing STARTTLS. */
static void test_masked_with_posture_is_tampering(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *a = session("192.0.2.10", "198.51.100.40", 25, T0);
    caps(a, "SIZE", "STARTTLS", NULL);
    starttls(a, 220, true);
    feed(x, a);
    struct smtp_facts *f = exchange_session("198.51.100.40", T0 + 60);
    tx(f, true, 700, "other.example:250", NULL);
    feed(x, f);
    finish(x);
    assert_int_equal(x->out.n, 1);
    json_t *o = expect(x, 0, "starttls.tampered", 3, "high");
    assert_string_equal(jstr(o, "event.action"), "starttls-capability-mangled");
    assert_string_equal(jstr(o, "stripwatch.evidence.reason"),
                        "a capability masked where STARTTLS stood: this server offered "
                        "STARTTLS before");
    assert_non_null(jget(o, "stripwatch.evidence.posture.server"));
    json_decref(o);
}

/* One mask of length 8 where every other common 8-letter extension is
 * visible (the shipped XXXXXXXA capture's reply): STARTTLS, high/high with
 * or without a policy. */
static void test_masked_starttls_by_exclusion(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.25", 25, T0);
    banner(f, "mx.other.example");
    caps(f, "PIPELINING", "ETRN", "XXXXXXXA", "8BITMIME", "SMTPUTF8", "CHUNKING", NULL);
    anomaly(f, ANOM_CAP_MANGLED, "token=XXXXXXXA", 7);
    tx(f, true, 100, "other.example:250", NULL);
    feed(x, f);
    struct smtp_facts *g = session("192.0.2.10", "203.0.113.5", 25, T0 + 1);
    banner(g, "mx.enforce.example");
    caps(g, "PIPELINING", "ETRN", "XXXXXXXA", "8BITMIME", "SMTPUTF8", "CHUNKING", NULL);
    anomaly(g, ANOM_CAP_MANGLED, "token=XXXXXXXA", 7);
    tx(g, true, 100, "enforce.example:250", NULL);
    feed(x, g);
    finish(x);
    assert_int_equal(x->out.n, 3);
    json_t *o = expect(x, 0, "starttls.tampered", 3, "high");
    assert_string_equal(jstr(o, "stripwatch.evidence.reason"),
                        "a capability token mangled where STARTTLS stood");
    json_decref(o);
    o = expect(x, 1, "starttls.tampered", 3, "high");
    json_decref(o);
    o = expect(x, 2, "delivery.plaintext_policy", 3, "high");
    json_decref(o);
}

/* STARTTLS stripped and the reply padded past the bounds (65 lines): the
 * decoder scanned every line, so the strip is judged, with the padding as
 * evidence; with STARTTLS on a line not kept, nothing is raised. */
static void test_padded_reply_strip_judged(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "203.0.113.5", 25, T0);
    banner(f, "mx.enforce.example");
    for (int i = 0; i < FACTS_CAPS_MAX; i++) {
        char c[16];
        snprintf(c, sizeof c, "X-PAD%d", i);
        assert_true(facts_add_cap(f, c, strlen(c)));
    }
    f->caps_dropped = 2;
    anomaly(f, ANOM_EHLO_PADDED, "66 capability lines, 64 kept; STARTTLS absent", 8);
    tx(f, true, 2048, "enforce.example:250", NULL);
    feed(x, f);
    struct smtp_facts *g = session("192.0.2.10", "203.0.113.5", 25, T0 + 1);
    banner(g, "mx.enforce.example");
    caps(g, "PIPELINING", NULL);
    g->caps_dropped = 70;
    g->starttls_offered = true; /* on a dropped line */
    anomaly(g, ANOM_EHLO_PADDED, "71 capability lines, 1 kept; STARTTLS on a line not kept", 8);
    starttls(g, 220, true);
    feed(x, g);
    finish(x);
    assert_int_equal(x->out.n, 2);
    json_t *o = expect(x, 0, "starttls.stripped", 3, "high");
    assert_string_equal(jstr(o, "stripwatch.evidence.reason"),
                        "EHLO reply without STARTTLS, padded past the capability bounds (every "
                        "line scanned)");
    assert_string_equal(jstr(o, "stripwatch.evidence.anomalies.0.kind"), "ehlo_reply_padded");
    json_decref(o);
    o = expect(x, 1, "delivery.plaintext_policy", 3, "high");
    json_decref(o);
}

/* A one-hop TTL change of server packets late in a 587 session without
 * STARTTLS (route noise, kept as ttl_shift on the record): no alert; a shift
 * on the EHLO reply beyond a route change, alone: low; with the strip it
 * explains (posture): high confidence, as the evidence of that alert. */
static void test_ttl_route_noise_and_reply_shift(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.50", 587, T0);
    caps(f, "PIPELINING", "AUTH LOGIN", NULL);
    tx(f, true, 900, "other.example:250", NULL);
    anomaly(f, ANOM_TTL_SHIFT, "ttl 57->56", 44);
    feed(x, f);
    struct smtp_facts *g = session("192.0.2.10", "198.51.100.51", 25, T0 + 1);
    caps(g, "PIPELINING", NULL);
    tx(g, true, 900, "other.example:250", NULL);
    anomaly(g, ANOM_TTL_SHIFT, "ttl 57->62", 6);
    anomaly(g, ANOM_TTL_SHIFT_REPLY, "ttl 57->62 on the EHLO reply (5 hops)", 6);
    feed(x, g);
    struct smtp_facts *a = session("192.0.2.10", "198.51.100.52", 25, T0 + 2);
    caps(a, "STARTTLS", NULL);
    starttls(a, 220, true);
    feed(x, a);
    struct smtp_facts *h = session("192.0.2.10", "198.51.100.52", 25, T0 + 3);
    caps(h, "PIPELINING", NULL);
    tx(h, true, 900, "other.example:250", NULL);
    anomaly(h, ANOM_TTL_SHIFT_REPLY, "ttl 57->62 on the EHLO reply (5 hops)", 6);
    feed(x, h);
    finish(x);
    assert_int_equal(x->out.n, 2);
    json_t *o = expect(x, 0, "starttls.tampered", 1, "low");
    assert_string_equal(jstr(o, "event.action"), "server-ttl-shift");
    assert_string_equal(jstr(o, "stripwatch.evidence.anomalies.1.kind"), "ttl_shift_reply");
    json_decref(o);
    o = expect(x, 1, "starttls.stripped", 3, "high");
    assert_string_equal(jstr(o, "stripwatch.evidence.anomalies.0.detail"),
                        "ttl 57->62 on the EHLO reply (5 hops)");
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_masked_extensions_are_no_strip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_masked_with_posture_is_tampering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_masked_starttls_by_exclusion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_padded_reply_strip_judged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_route_noise_and_reply_shift, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
