/* SPDX-License-Identifier: Apache-2.0 */
/* test_detector_tuning.c: rule tuning and allow-lists in the detector
 * (alerts/tuning.c through alerts/detector.c): disabled rules, severity
 * overrides, per-rule and global rate limits, server/client prefixes and
 * recipient domains; each suppression in its own counter, the alert fields
 * exact; a tuning replaced between sessions; the value parsers' errors. */
#include "detector_fixture.h"

#include "alerts/tuning.h"

/* starttls.unused (low, low) from client cip to server sip, recipients as
 * for tx(): "domain:code", NULL-terminated. */
static struct smtp_facts *unused(const char *cip, const char *sip, int64_t t, const char *rcpt,
                                 const char *rcpt2)
{
    struct smtp_facts *f = session(cip, sip, 25, t);
    banner(f, "mx.other.example");
    caps(f, "PIPELINING", "STARTTLS", NULL);
    tx(f, true, 100, rcpt, rcpt2, NULL);
    return f;
}

/* auth.cleartext (high, high): AUTH PLAIN accepted before TLS. */
static struct smtp_facts *auth_clear(const char *cip, const char *sip, int64_t t)
{
    struct smtp_facts *f = session(cip, sip, 25, t);
    caps(f, "AUTH PLAIN", NULL);
    fset(f, &f->auth_mechanism, "PLAIN");
    f->auth_cleartext = true;
    f->auth_code = 235;
    return f;
}

static struct detector *tuned(struct fx *x, const struct rules_tuning *t)
{
    struct detector_cfg c;
    fx_cfg(x, &c);
    c.tuning = t;
    return fx_detector(x, &c);
}

static void add(struct rules_tuning *t, enum tuning_list w, const char *v)
{
    char err[256] = "";
    if (!rules_tuning_add(t, w, v, err, sizeof err))
        fail_msg("rules_tuning_add %s: %s", v, err);
}

static void expect_counts(const struct detector_stats *s, uint64_t alerts, uint64_t disabled,
                          uint64_t srv, uint64_t cli, uint64_t dom, uint64_t rate)
{
    assert_int_equal(s->alerts, alerts);
    assert_int_equal(s->suppressed_disabled, disabled);
    assert_int_equal(s->suppressed_allow_server, srv);
    assert_int_equal(s->suppressed_allow_client, cli);
    assert_int_equal(s->suppressed_allow_domain, dom);
    assert_int_equal(s->suppressed, rate);
}

static void test_disabled_rule(void **state)
{
    struct fx *x = *state;
    struct rules_tuning t;
    rules_tuning_init(&t);
    t.rule[RULE_STARTTLS_UNUSED].disabled = true;
    struct detector *d = tuned(x, &t);
    rules_tuning_free(&t);
    detector_session(d, unused("192.0.2.10", "198.51.100.25", T0, "other.example:250", NULL));
    /* another rule still fires: cleartext AUTH accepted */
    detector_session(d, auth_clear("192.0.2.11", "198.51.100.26", T0 + 1));
    detector_finish(d);
    expect_counts(detector_stats(d), 1, 1, 0, 0, 0, 0);
    assert_int_equal(detector_stats(d)->sessions, 2);
    detector_free(d);
    assert_int_equal(x->out.n, 1);
    json_decref(expect(x, 0, "auth.cleartext", 3, "high"));
}

static void test_severity_override(void **state)
{
    struct fx *x = *state;
    struct rules_tuning t;
    rules_tuning_init(&t);
    t.rule[RULE_STARTTLS_UNUSED].severity = rules_tuning_severity("high");
    assert_int_equal(t.rule[RULE_STARTTLS_UNUSED].severity, SEV_HIGH);
    struct detector *d = tuned(x, &t);
    rules_tuning_free(&t);
    detector_session(d, unused("192.0.2.10", "198.51.100.25", T0, "other.example:250", NULL));
    detector_finish(d);
    expect_counts(detector_stats(d), 1, 0, 0, 0, 0, 0);
    detector_free(d);
    assert_int_equal(x->out.n, 1);
    /* severity 3 "high"; confidence and the rest as the rule made them */
    json_t *o = expect(x, 0, "starttls.unused", 3, "low");
    assert_string_equal(jstr(o, "stripwatch.severity_name"), "high");
    assert_string_equal(jstr(o, "event.action"), "starttls-not-used");
    json_decref(o);
}

static void test_allow_server_client(void **state)
{
    struct fx *x = *state;
    struct rules_tuning t;
    rules_tuning_init(&t);
    add(&t, TUNING_ALLOW_SERVER, "198.51.100.0/25");
    add(&t, TUNING_ALLOW_SERVER, "2001:db8:25::/48");
    add(&t, TUNING_ALLOW_CLIENT, "192.0.2.77");
    struct detector *d = tuned(x, &t);
    rules_tuning_free(&t);
    /* server in 198.51.100.0/25, and in the IPv6 prefix */
    detector_session(d, unused("192.0.2.10", "198.51.100.25", T0, "other.example:250", NULL));
    detector_session(
        d, unused("2001:db8::1", "2001:db8:25:ffff::9", T0 + 1, "other.example:250", NULL));
    /* client exactly allow-listed */
    detector_session(d, unused("192.0.2.77", "203.0.113.5", T0 + 2, "other.example:250", NULL));
    /* outside every list: 198.51.100.200 is past the /25, 192.0.2.78 is not .77 */
    detector_session(d, unused("192.0.2.78", "198.51.100.200", T0 + 3, "other.example:250", NULL));
    detector_finish(d);
    expect_counts(detector_stats(d), 1, 0, 2, 1, 0, 0);
    detector_free(d);
    assert_int_equal(x->out.n, 1);
    json_t *o = expect(x, 0, "starttls.unused", 1, "low");
    assert_string_equal(jstr(o, "destination.ip"), "198.51.100.200");
    json_decref(o);
}

static void test_allow_domain(void **state)
{
    struct fx *x = *state;
    struct rules_tuning t;
    rules_tuning_init(&t);
    add(&t, TUNING_ALLOW_DOMAIN, "Partner.Example.");
    struct detector *d = tuned(x, &t);
    rules_tuning_free(&t);
    /* the domain itself and a subdomain, in any case: suppressed */
    detector_session(d, unused("192.0.2.10", "198.51.100.25", T0, "partner.example:250",
                               "mail.PARTNER.example:250"));
    /* one recipient outside the list: alerted */
    detector_session(d, unused("192.0.2.10", "198.51.100.26", T0 + 1, "partner.example:250",
                               "other.example:250"));
    /* a name that merely ends the same way is not a subdomain */
    detector_session(
        d, unused("192.0.2.10", "198.51.100.27", T0 + 2, "otherpartner.example:250", NULL));
    detector_finish(d);
    expect_counts(detector_stats(d), 2, 0, 0, 0, 1, 0);
    detector_free(d);
    assert_int_equal(x->out.n, 2);
    json_t *o = expect(x, 0, "starttls.unused", 1, "low");
    assert_string_equal(jstr(o, "destination.ip"), "198.51.100.26");
    json_decref(o);
    o = expect(x, 1, "starttls.unused", 1, "low");
    assert_string_equal(jstr(o, "destination.ip"), "198.51.100.27");
    json_decref(o);
}

/* A session without any recipient is never suppressed by allow-domain. */
static void test_allow_domain_needs_recipients(void **state)
{
    struct fx *x = *state;
    struct rules_tuning t;
    rules_tuning_init(&t);
    add(&t, TUNING_ALLOW_DOMAIN, "example");
    struct detector *d = tuned(x, &t);
    rules_tuning_free(&t);
    detector_session(d, auth_clear("192.0.2.11", "198.51.100.26", T0));
    detector_finish(d);
    expect_counts(detector_stats(d), 1, 0, 0, 0, 0, 0);
    detector_free(d);
    assert_int_equal(x->out.n, 1);
    json_decref(expect(x, 0, "auth.cleartext", 3, "high"));
}

static void test_rate_limits(void **state)
{
    struct fx *x = *state;
    struct rules_tuning t;
    rules_tuning_init(&t);
    t.rate_limit = 0;                            /* no global limit ... */
    t.rule[RULE_STARTTLS_UNUSED].rate_limit = 2; /* ... but 2 a minute for this rule */
    struct detector *d = tuned(x, &t);
    for (int i = 0; i < 5; i++)
        detector_session(d,
                         unused("192.0.2.10", "198.51.100.25", T0 + i, "other.example:250", NULL));
    for (int i = 0; i < 5; i++)
        detector_session(d, auth_clear("192.0.2.11", "198.51.100.99", T0 + i));
    expect_counts(detector_stats(d), 7, 0, 0, 0, 0, 3);
    /* the rule's limit lifted at run time: the same bucket passes everything */
    t.rule[RULE_STARTTLS_UNUSED].rate_limit = -1;
    assert_true(detector_set_tuning(d, &t));
    rules_tuning_free(&t);
    detector_session(d, unused("192.0.2.10", "198.51.100.25", T0 + 6, "other.example:250", NULL));
    detector_finish(d);
    expect_counts(detector_stats(d), 8, 0, 0, 0, 0, 3);
    detector_free(d);
    assert_int_equal(x->out.n, 8);
    json_t *o = expect(x, 7, "starttls.unused", 1, "low");
    assert_int_equal(jint(o, "stripwatch.suppressed"), 3);
    json_decref(o);
}

/* A tuning replaced between sessions applies from the next one on. */
static void test_set_tuning(void **state)
{
    struct fx *x = *state;
    struct detector *d = tuned(x, NULL);
    detector_session(d, unused("192.0.2.10", "198.51.100.25", T0, "other.example:250", NULL));
    struct rules_tuning t;
    rules_tuning_init(&t);
    t.rule[RULE_STARTTLS_UNUSED].severity = SEV_MEDIUM;
    assert_true(detector_set_tuning(d, &t));
    detector_session(d, unused("192.0.2.10", "198.51.100.25", T0 + 1, "other.example:250", NULL));
    t.rule[RULE_STARTTLS_UNUSED].disabled = true;
    assert_true(detector_set_tuning(d, &t));
    rules_tuning_free(&t);
    detector_session(d, unused("192.0.2.10", "198.51.100.25", T0 + 2, "other.example:250", NULL));
    detector_finish(d);
    expect_counts(detector_stats(d), 2, 1, 0, 0, 0, 0);
    detector_free(d);
    assert_int_equal(x->out.n, 2);
    json_decref(expect(x, 0, "starttls.unused", 1, "low"));
    json_decref(expect(x, 1, "starttls.unused", 2, "low"));
}

static void test_values(void **state)
{
    (void)state;
    static const struct {
        enum tuning_list w;
        const char *v, *err;
    } bad[] = {
        {TUNING_ALLOW_SERVER, "10.0.0.1/33", "\"10.0.0.1/33\": prefix length not in 0-32"},
        {TUNING_ALLOW_SERVER, "10.0.0.0/", "\"10.0.0.0/\": prefix length not in 0-32"},
        {TUNING_ALLOW_CLIENT, "2001:db8::/129", "\"2001:db8::/129\": prefix length not in 0-128"},
        {TUNING_ALLOW_CLIENT, "10.1.2.3/8", "\"10.1.2.3/8\": bits set past the /8 prefix"},
        {TUNING_ALLOW_SERVER, "mx.example",
         "\"mx.example\": not an IPv4 or IPv6 address (ADDR "
         "or ADDR/LEN)"},
        {TUNING_ALLOW_SERVER, "", "\"\": not an IPv4 or IPv6 address (ADDR or ADDR/LEN)"},
        {TUNING_ALLOW_DOMAIN, "a..example", "\"a..example\": not a domain name"},
        {TUNING_ALLOW_DOMAIN, "*.example", "\"*.example\": not a domain name"},
        {TUNING_ALLOW_DOMAIN, ".", "\".\": not a domain name"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct rules_tuning t;
        rules_tuning_init(&t);
        char err[256] = "";
        assert_false(rules_tuning_add(&t, bad[i].w, bad[i].v, err, sizeof err));
        assert_string_equal(err, bad[i].err);
        rules_tuning_free(&t);
    }
    struct rules_tuning t, c;
    rules_tuning_init(&t);
    add(&t, TUNING_ALLOW_SERVER, "0.0.0.0/0");
    add(&t, TUNING_ALLOW_CLIENT, "::1");
    add(&t, TUNING_ALLOW_DOMAIN, "example");
    assert_true(rules_tuning_copy(&c, &t));
    rules_tuning_free(&t);
    struct sw_addr a;
    set_addr(&a, "203.0.113.9");
    assert_true(rules_tuning_addr_allowed(&c, TUNING_ALLOW_SERVER, &a));
    assert_false(rules_tuning_addr_allowed(&c, TUNING_ALLOW_CLIENT, &a));
    set_addr(&a, "::1");
    assert_false(rules_tuning_addr_allowed(&c, TUNING_ALLOW_SERVER, &a));
    assert_true(rules_tuning_addr_allowed(&c, TUNING_ALLOW_CLIENT, &a));
    assert_true(rules_tuning_domain_allowed(&c, "a.b.example."));
    assert_false(rules_tuning_domain_allowed(&c, "example.org"));
    rules_tuning_clear(&c, TUNING_ALLOW_DOMAIN);
    assert_false(rules_tuning_domain_allowed(&c, "example"));
    rules_tuning_free(&c);
    assert_int_equal(rules_tuning_rule_id("policy.mx_mismatch"), RULE_POLICY_MX_MISMATCH);
    assert_int_equal(rules_tuning_rule_id("starttls"), -1);
    assert_int_equal(rules_tuning_severity("medium"), SEV_MEDIUM);
    assert_int_equal(rules_tuning_severity("critical"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_disabled_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_severity_override, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allow_server_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allow_domain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allow_domain_needs_recipients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_tuning, setup, teardown),
        cmocka_unit_test(test_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
