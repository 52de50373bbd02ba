/* SPDX-License-Identifier: Apache-2.0 */
/* test_policy_pure.c: the engine's parts that need no server: the media type
 * rule and the address ranges refused (RFC 8461 §3.3, §7), --dns-server
 * syntax, the alert's mta_sts object, offline answers, expired policies
 * (RFC 8461 §5.1; judged at an injected capture time offline, and live with
 * a resolver that does not answer), CLI usage errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <jansson.h>

#include "policy/dns.h"
#include "policy/fetch.h"
#include "policy/policy.h"
#include "policy/snapshot.h"
#include "mta_sts_json.h"

static void test_content_type(void **state)
{
    (void)state;
    static const struct {
        const char *ct;
        bool ok;
    } t[] = {
        {"text/plain", true},
        {"text/plain; charset=utf-8", true},
        {"TEXT/PLAIN;charset=\"US-ASCII\"", true},
        {"text/plain;charset=UTF-8 ", true},
        {" text/plain", true},
        {"text/plain; charset=iso-8859-1", false},
        {"text/plain; format=flowed", false},
        {"text/plain;", false},
        {"text/plain; charset=\"utf-8", false},
        {"text/plain; charset=utf-8; format=flowed", false},
        {"text/plainx", false},
        {"text/html", false},
        {"application/octet-stream", false},
        {"", false},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (pfetch_content_type_ok(t[i].ct) != t[i].ok)
            fail_msg("content type \"%s\": want %s", t[i].ct, t[i].ok ? "ok" : "refused");
    }
    assert_false(pfetch_content_type_ok(NULL));
}

static void test_private_ranges(void **state)
{
    (void)state;
    static const struct {
        const char *addr;
        const char *why; /* NULL: public */
    } t[] = {
        {"10.1.2.3", "private (RFC 1918)"},
        {"172.16.0.1", "private (RFC 1918)"},
        {"172.31.255.255", "private (RFC 1918)"},
        {"172.32.0.1", NULL},
        {"192.168.1.1", "private (RFC 1918)"},
        {"100.64.0.1", "CGNAT (100.64/10)"},
        {"100.127.255.255", "CGNAT (100.64/10)"},
        {"100.128.0.1", NULL},
        {"127.0.0.1", "loopback"},
        {"169.254.1.1", "link-local"},
        {"224.0.0.1", "multicast"},
        {"239.255.255.250", "multicast"},
        {"0.0.0.0", "unspecified (0/8)"},
        {"255.255.255.255", "reserved (240/4)"},
        {"8.8.8.8", NULL},
        {"93.184.216.34", NULL},
        {"::1", "loopback"},
        {"::", "unspecified (::)"},
        {"fc00::1", "unique local (fc00::/7)"},
        {"fd12:3456::1", "unique local (fc00::/7)"},
        {"fe80::1", "link-local"},
        {"ff02::1", "multicast"},
        {"::ffff:10.0.0.1", "private (RFC 1918)"},
        {"::ffff:127.0.0.1", "loopback"},
        {"::ffff:8.8.8.8", NULL},
        {"::10.0.0.1", "IPv4-compatible (::/96)"},
        {"2606:4700::1111", NULL},
        {"mta-sts.example.org", "not an IP address"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        const char *why = NULL;
        bool priv = pfetch_addr_is_private(t[i].addr, &why);
        if (priv != (t[i].why != NULL))
            fail_msg("%s: want %s", t[i].addr, t[i].why ? t[i].why : "public");
        if (priv)
            assert_string_equal(why, t[i].why);
    }
}

static void test_dns_server_syntax(void **state)
{
    (void)state;
    char why[128];
    assert_true(pdns_server_valid("127.0.0.1", why, sizeof(why)));
    assert_true(pdns_server_valid("192.0.2.53@5353", why, sizeof(why)));
    assert_true(pdns_server_valid("::1@53", why, sizeof(why)));
    assert_false(pdns_server_valid("ns.example.org@53", why, sizeof(why)));
    assert_string_equal(why, "\"ns.example.org\" is not an IPv4 or IPv6 address");
    assert_false(pdns_server_valid("127.0.0.1@0", why, sizeof(why)));
    assert_string_equal(why, "port is not 1-65535");
    assert_false(pdns_server_valid("127.0.0.1@65536", why, sizeof(why)));
    assert_string_equal(why, "port is not 1-65535");
    assert_false(pdns_server_valid("127.0.0.1@", why, sizeof(why)));
    assert_string_equal(why, "port is not 1-65535");
    assert_false(pdns_server_valid("@53", why, sizeof(why)));
    assert_string_equal(why, "not ADDR[@PORT]");
    char err[256];
    assert_null(pdns_new("resolver@53", err, sizeof(err)));
    assert_string_equal(err,
                        "dns server \"resolver@53\": \"resolver\" is not an IPv4 or IPv6 address");
}

static void test_answer_json_without_policy(void **state)
{
    (void)state;
    struct policy_answer a = {.status = POLICY_ST_NONE, .entry = NULL, .detail = "x"};
    char *s = mta_sts_json("example.org", &a);
    assert_string_equal(s, "{\"domain\":\"example.org\",\"id\":null,\"mode\":null,\"mx\":null,"
                           "\"max_age\":null,\"fetched_at\":null,\"source\":null,"
                           "\"status\":\"none\",\"detail\":\"x\"}");
    free(s);
}

static void test_offline_answers(void **state)
{
    (void)state;
    struct policy_cfg c;
    policy_cfg_defaults(&c);
    c.fetch = false;
    char err[256];
    struct policy_engine *e = policy_engine_new(&c, err, sizeof(err));
    assert_non_null(e);
    struct policy_answer a;
    assert_int_equal(policy_lookup(e, "example.org", NULL, NULL, &a), SW_OK);
    assert_int_equal(a.status, POLICY_ST_UNKNOWN);
    assert_string_equal(a.detail, "offline: no policy in file or cache");
    assert_int_equal(policy_lookup(e, "bad..example.org", NULL, NULL, &a), SW_OK);
    assert_int_equal(a.status, POLICY_ST_NONE);
    assert_string_equal(a.detail, "invalid domain name");
    assert_int_equal(policy_engine_run(e, 0), 0);
    const struct policy_stats *st = policy_engine_stats(e);
    assert_int_equal(st->lookups, 2);
    assert_int_equal(st->misses, 1);
    policy_engine_free(e);
    policy_engine_free(NULL);
}

/* ---- expired policies ---- */

static char log_lines[4096];
static int log_count, log_prio;

static void log_hook(int prio, const char *line)
{
    log_count++;
    log_prio = prio;
    size_t n = strlen(log_lines);
    snprintf(log_lines + n, sizeof(log_lines) - n, "%s\n", line);
}

/* A snapshot file with example.org (enforce, max_age 604800) fetched at
 * fetched; returns its path (static). */
static const char *write_snapshot(const char *fetched)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/sw-expired-%d.json", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"example.org\": {\"id\": \"20261101T000000\", \"policy\": \"version: STSv1\\nmode: "
            "enforce\\nmx: mx.example.org\\nmax_age: 604800\\n\", \"fetched_at\": \"%s\"}}\n",
            fetched);
    assert_int_equal(fclose(f), 0);
    return path;
}

static int64_t t_of(const char *s)
{
    int64_t t;
    assert_true(snapshot_time_parse(s, strlen(s), &t));
    return t;
}

static void test_expired_offline(void **state)
{
    (void)state;
    struct policy_cfg c;
    policy_cfg_defaults(&c);
    c.fetch = false;
    c.policy_file = write_snapshot("2026-11-20T08:00:00Z");
    char err[256];
    struct policy_engine *e = policy_engine_new(&c, err, sizeof(err));
    unlink(c.policy_file);
    assert_non_null(e);
    log_lines[0] = 0;
    log_count = 0;
    policy_set_log(log_hook);
    struct policy_answer a;
    /* a session of 2026-11-22: in force, whatever the wall clock says */
    policy_engine_set_time(e, true, t_of("2026-11-22T17:30:09Z"));
    assert_int_equal(policy_lookup(e, "example.org", NULL, NULL, &a), SW_OK);
    assert_int_equal(a.status, POLICY_ST_VALID);
    /* the last second of validity, then the first one past it */
    policy_engine_set_time(e, true, t_of("2026-11-27T07:59:59Z"));
    assert_int_equal(policy_lookup(e, "example.org", NULL, NULL, &a), SW_OK);
    assert_int_equal(a.status, POLICY_ST_VALID);
    assert_int_equal(log_count, 0);
    policy_engine_set_time(e, true, t_of("2026-11-27T08:00:00Z"));
    assert_int_equal(policy_lookup(e, "example.org", NULL, NULL, &a), SW_OK);
    assert_int_equal(a.status, POLICY_ST_EXPIRED);
    assert_non_null(a.entry);
    assert_int_equal(a.entry->policy.mode, MTASTS_MODE_ENFORCE);
    assert_string_equal(a.detail, "policy expired; no refresh offline");
    /* far in the future: still judged with, and said once */
    policy_engine_set_time(e, true, t_of("2099-01-01T00:00:00Z"));
    assert_int_equal(policy_lookup(e, "example.org", NULL, NULL, &a), SW_OK);
    assert_int_equal(a.status, POLICY_ST_EXPIRED);
    assert_int_equal(log_count, 1);
    assert_int_equal(log_prio, LOG_WARNING);
    assert_string_equal(log_lines,
                        "policy example.org: expired on 2026-11-27T08:00:00Z (fetched "
                        "2026-11-20T08:00:00Z, max_age 604800), before the capture time; no "
                        "refresh offline (--fetch-policies refreshes): judging with it (RFC 8461 "
                        "§5.1)\n");
    char *js = mta_sts_json("example.org", &a);
    assert_string_equal(js, "{\"domain\":\"example.org\",\"id\":\"20261101T000000\",\"mode\":"
                            "\"enforce\",\"mx\":[\"mx.example.org\"],\"max_age\":604800,"
                            "\"fetched_at\":\"2026-11-20T08:00:00Z\",\"source\":\"file\","
                            "\"status\":\"expired\",\"detail\":\"policy expired; no refresh "
                            "offline\"}");
    free(js);
    const struct policy_stats *st = policy_engine_stats(e);
    assert_int_equal(st->expired, 2);
    assert_int_equal(st->expired_domains, 1);
    assert_int_equal(st->hits_file, 2);
    policy_set_log(NULL);
    policy_engine_free(e);
}

/* Live: the snapshot's policy expired long ago (wall clock), the resolver
 * does not answer: judged with at once (EXPIRED while the refresh runs),
 * one warning once the refresh fails, still EXPIRED after it. */
static void test_expired_live_refresh_fails(void **state)
{
    (void)state;
    struct policy_cfg c;
    policy_cfg_defaults(&c);
    c.fetch = true;
    c.dns_server = "127.0.0.1@9"; /* discard: nothing answers */
    c.dns_timeout_ms = 300;
    c.policy_file = write_snapshot("2020-01-01T00:00:00Z");
    char err[256];
    struct policy_engine *e = policy_engine_new(&c, err, sizeof(err));
    unlink(c.policy_file);
    assert_non_null(e);
    log_lines[0] = 0;
    log_count = 0;
    policy_set_log(log_hook);
    struct policy_answer a;
    assert_int_equal(policy_lookup(e, "example.org", NULL, NULL, &a), SW_OK);
    assert_int_equal(a.status, POLICY_ST_EXPIRED);
    assert_string_equal(a.detail, "policy expired; refresh under way");
    assert_int_equal(log_count, 0);
    /* wait for the refresh to fail (bounded) */
    time_t t0 = time(NULL);
    while (log_count == 0 && time(NULL) - t0 < 30)
        policy_engine_run(e, 100);
    assert_int_equal(log_count, 1);
    const char *pre = "policy example.org: expired on 2020-01-08T00:00:00Z (fetched "
                      "2020-01-01T00:00:00Z, max_age 604800); refresh failed: DNS TXT "
                      "_mta-sts.example.org: ";
    const char *post = "; judging with it until a refresh succeeds (RFC 8461 §5.1)\n";
    assert_int_equal(strncmp(log_lines, pre, strlen(pre)), 0);
    size_t n = strlen(log_lines);
    assert_true(n > strlen(post));
    assert_string_equal(log_lines + n - strlen(post), post);
    assert_int_equal(policy_lookup(e, "example.org", NULL, NULL, &a), SW_OK);
    assert_int_equal(a.status, POLICY_ST_EXPIRED);
    assert_int_equal(strncmp(a.detail, "DNS TXT _mta-sts.example.org: ", 30), 0);
    /* no second warning for the same domain */
    for (int i = 0; i < 5; i++)
        policy_engine_run(e, 50);
    assert_int_equal(log_count, 1);
    const struct policy_stats *st = policy_engine_stats(e);
    assert_int_equal(st->expired, 2);
    assert_int_equal(st->expired_domains, 1);
    assert_int_equal(st->dns_errors, 1);
    policy_set_log(NULL);
    policy_engine_free(e);
}

static void test_cli_usage(void **state)
{
    (void)state;
    char *a1[] = {"policy", NULL};
    assert_int_equal(policy_cli_main(1, a1), 2);
    char *a2[] = {"policy", "example.org", "--https-port", "0", NULL};
    assert_int_equal(policy_cli_main(4, a2), 2);
    char *a3[] = {"policy", "example.org", "--dns-server", "ns1", NULL};
    assert_int_equal(policy_cli_main(4, a3), 2);
    char *a4[] = {"policy", "a.example", "b.example", NULL};
    assert_int_equal(policy_cli_main(3, a4), 2);
    char *a5[] = {"policy", "example.org", "--bogus", NULL};
    assert_int_equal(policy_cli_main(3, a5), 2);
    char *a6[] = {"policy", "-bad-.example", NULL};
    assert_int_equal(policy_cli_main(2, a6), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_private_ranges),
        cmocka_unit_test(test_dns_server_syntax),
        cmocka_unit_test(test_answer_json_without_policy),
        cmocka_unit_test(test_offline_answers),
        cmocka_unit_test(test_expired_offline),
        cmocka_unit_test(test_expired_live_refresh_fails),
        cmocka_unit_test(test_cli_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
