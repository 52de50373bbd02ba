/* SPDX-License-Identifier: Apache-2.0 */
/* test_policy_pure.c: the engine's parts that need no server: the media type
 * rule and the address ranges refused (RFC 8461 §3.3, §7), --dns-server
 * syntax, the alert's mta_sts object, offline answers, CLI usage errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "policy/dns.h"
#include "policy/fetch.h"
#include "policy/policy.h"

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
    json_t *o = policy_answer_to_json("example.org", &a);
    char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT);
    assert_string_equal(s, "{\"domain\":\"example.org\",\"id\":null,\"mode\":null,\"mx\":null,"
                           "\"max_age\":null,\"fetched_at\":null,\"source\":null,"
                           "\"status\":\"none\"}");
    free(s);
    json_decref(o);
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
        cmocka_unit_test(test_content_type),      cmocka_unit_test(test_private_ranges),
        cmocka_unit_test(test_dns_server_syntax), cmocka_unit_test(test_answer_json_without_policy),
        cmocka_unit_test(test_offline_answers),   cmocka_unit_test(test_cli_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
