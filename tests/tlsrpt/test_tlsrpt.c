/* SPDX-License-Identifier: Apache-2.0 */
/* test_tlsrpt.c: the TLS-RPT counting (alerts/tlsrpt.c): which policy
 * domains a session counts for (TLS: policies naming its MX host; clear:
 * its recipients' domains), the result types (certificate checks, STARTTLS
 * asked or not), mode none and submission left out, and live day handling
 * (a report written at the UTC day change, written again after a late
 * session). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "../sensor/runbin.h"
#include "alerts/tlsrpt.h"
#include "policy/mtasts.h"
#include "policy/policy.h"

#define DAY0 1795305600 /* 2026-11-22T00:00:00Z */

static void pol_set(struct rule_policy *p, const char *domain, const char *text)
{
    memset(p, 0, sizeof *p);
    snprintf(p->domain, sizeof p->domain, "%s", domain);
    struct policy_entry e;
    memset(&e, 0, sizeof e);
    e.domain = (char *)domain;
    snprintf(e.id, sizeof e.id, "1");
    e.text = (char *)text;
    assert_int_equal(mtasts_policy_parse(text, strlen(text), &e.policy, NULL), SW_OK);
    e.fetched_at = DAY0 - 3600;
    e.expires_at = e.fetched_at + e.policy.max_age;
    e.source = POLICY_SRC_FILE;
    struct policy_answer a = {POLICY_ST_VALID, &e, NULL};
    rule_policy_set(p, &a);
    mtasts_policy_clear(&e.policy);
}

static void sess(struct tlsrpt_session *s, int64_t t, const char *mx, bool tls)
{
    memset(s, 0, sizeof *s);
    s->start = t;
    snprintf(s->client, sizeof s->client, "192.0.2.10");
    snprintf(s->server, sizeof s->server, "198.51.100.25");
    s->port = 25;
    snprintf(s->mx, sizeof s->mx, "%s", mx);
    s->tls = tls;
}

static json_t *load(const char *dir, const char *domain, int64_t day)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/obs!%s!%lld!%lld.json", dir, domain, (long long)day,
             (long long)day + 86399);
    json_error_t je;
    return json_load_file(path, 0, &je);
}

/* "type ok fail result:count,..." of each policy, ";" between */
static void summary(const json_t *r, char *out, size_t len)
{
    size_t i, k;
    const json_t *p, *d;
    out[0] = '\0';
    json_array_foreach(json_object_get(r, "policies"), i, p)
    {
        const json_t *s = json_object_get(p, "summary");
        size_t n = strlen(out);
        snprintf(out + n, len - n, "%s%s %lld %lld", i ? ";" : "",
                 json_string_value(json_object_get(json_object_get(p, "policy"), "policy-type")),
                 json_integer_value(json_object_get(s, "total-successful-session-count")),
                 json_integer_value(json_object_get(s, "total-failure-session-count")));
        json_array_foreach(json_object_get(p, "failure-details"), k, d)
        {
            n = strlen(out);
            snprintf(out + n, len - n, " %s:%lld",
                     json_string_value(json_object_get(d, "result-type")),
                     json_integer_value(json_object_get(d, "failed-session-count")));
        }
    }
}

static void check(const char *dir, const char *domain, int64_t day, const char *want)
{
    json_t *r = load(dir, domain, day);
    assert_non_null(r);
    char got[1000];
    summary(r, got, sizeof got);
    assert_string_equal(got, want);
    json_decref(r);
}

static const char ORG[] = "version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 604800\n";
static const char NET[] = "version: STSv1\nmode: testing\nmx: *.example.net\nmax_age: 86400\n";
static const char NONE[] = "version: STSv1\nmode: none\nmx: mx.example.com\nmax_age: 86400\n";

static void test_counting(void **st)
{
    const char *dir = *st;
    struct tlsrpt_cfg cfg = {dir, "obs", NULL};
    struct tlsrpt *t = tlsrpt_new(&cfg);
    assert_non_null(t);
    struct rule_policy pols[3];
    pol_set(&pols[0], "example.org", ORG);
    pol_set(&pols[1], "example.net", NET);
    pol_set(&pols[2], "example.com", NONE);
    struct tlsrpt_session s;
    char doms[TLSRPT_RCPT_MAX][FACTS_HOST_MAX];

    /* TLS: the MX host's parents are asked; example.org names it */
    sess(&s, DAY0 + 100, "mx.example.org", true);
    assert_int_equal(tlsrpt_domains(&s, doms, TLSRPT_RCPT_MAX), 1);
    assert_string_equal(doms[0], "example.org");
    tlsrpt_add(t, &s, pols, 3, NULL);
    /* TLS to a host example.org does not name: not counted */
    sess(&s, DAY0 + 200, "mx2.example.org", true);
    tlsrpt_add(t, &s, pols, 3, NULL);
    /* certificates: wrong name, expired, self-signed */
    sess(&s, DAY0 + 300, "mx.example.org", true);
    s.cert = true;
    s.n_cert_names = 1;
    snprintf(s.cert_names[0], FACTS_HOST_MAX, "localhost");
    tlsrpt_add(t, &s, pols, 3, NULL);
    snprintf(s.cert_names[0], FACTS_HOST_MAX, "*.example.org");
    s.cert_not_after = DAY0;
    tlsrpt_add(t, &s, pols, 3, NULL);
    s.cert_not_after = DAY0 + 86400 * 365;
    s.cert_self_signed = true;
    tlsrpt_add(t, &s, pols, 3, NULL);
    s.cert_self_signed = false;
    tlsrpt_add(t, &s, pols, 3, NULL); /* valid: a success */
    /* in clear to two recipient domains, one asked for STARTTLS */
    sess(&s, DAY0 + 400, "mx.example.org", false);
    s.n_rcpt = 3;
    snprintf(s.rcpt[0], FACTS_HOST_MAX, "example.org");
    snprintf(s.rcpt[1], FACTS_HOST_MAX, "example.net");
    snprintf(s.rcpt[2], FACTS_HOST_MAX, "example.com"); /* mode none: not counted */
    tlsrpt_add(t, &s, pols, 3, NULL);
    s.starttls_requested = true;
    tlsrpt_add(t, &s, pols, 3, NULL);
    /* submission is no MX delivery */
    s.submission = true;
    tlsrpt_add(t, &s, pols, 3, NULL);
    assert_int_equal(tlsrpt_stats(t)->sessions_counted, 7);
    assert_true(tlsrpt_flush(t));
    assert_int_equal(tlsrpt_stats(t)->reports_written, 2);
    check(dir, "example.org", DAY0,
          "sts 2 5 certificate-expired:1 certificate-host-mismatch:1 "
          "certificate-not-trusted:1 starttls-not-supported:1 validation-failure:1");
    check(dir, "example.net", DAY0, "sts 0 2 starttls-not-supported:1 validation-failure:1");
    assert_null(load(dir, "example.com", DAY0));
    /* nothing changed: nothing written again */
    assert_true(tlsrpt_flush(t));
    assert_int_equal(tlsrpt_stats(t)->reports_written, 2);
    for (int i = 0; i < 3; i++)
        rule_policy_clear(&pols[i]);
    tlsrpt_free(t);
}

static void test_days(void **st)
{
    const char *dir = *st;
    struct tlsrpt_cfg cfg = {dir, "obs", NULL};
    struct tlsrpt *t = tlsrpt_new(&cfg);
    assert_non_null(t);
    struct rule_policy p;
    pol_set(&p, "example.org", ORG);
    struct tlsrpt_session s;
    tlsrpt_tick(t, DAY0 + 10);
    sess(&s, DAY0 + 20, "mx.example.org", true);
    tlsrpt_add(t, &s, &p, 1, NULL);
    tlsrpt_tick(t, DAY0 + 86399);
    assert_null(load(dir, "example.org", DAY0));
    /* the day is over: its report is written */
    tlsrpt_tick(t, DAY0 + 86400);
    check(dir, "example.org", DAY0, "sts 1 0");
    /* a late session of that day, and one of the new day */
    sess(&s, DAY0 + 86390, "mx.example.org", true);
    tlsrpt_add(t, &s, &p, 1, NULL);
    sess(&s, DAY0 + 86400 + 5, "mx.example.org", false);
    s.n_rcpt = 1;
    snprintf(s.rcpt[0], FACTS_HOST_MAX, "example.org");
    tlsrpt_add(t, &s, &p, 1, NULL);
    tlsrpt_tick(t, DAY0 + 2 * 86400);
    check(dir, "example.org", DAY0, "sts 2 0");
    check(dir, "example.org", DAY0 + 86400, "sts 0 1 starttls-not-supported:1");
    assert_int_equal(tlsrpt_stats(t)->reports_written, 3);
    rule_policy_clear(&p);
    tlsrpt_free(t);
}

static int setup(void **st)
{
    *st = temp_dir();
    return *st ? 0 : -1;
}

static int teardown(void **st)
{
    rm_rf(*st);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_days, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
