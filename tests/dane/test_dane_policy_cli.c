/* SPDX-License-Identifier: Apache-2.0 */
/* test_dane_policy_cli.c: `stripwatch policy DOMAIN` on the DANE lab
 * (danelab.sh: nsd serving the signed dane.example and the unsigned
 * plain.example, an MTA-STS policy host on loopback): the TLSA findings of
 * each MX host (secure and usable, bogus, secure denial, none usable,
 * insecure), the exit status (0 only for a fully valid setup), the result
 * line, and --json. And the captures of a real Postfix at
 * smtp_tls_security_level = dane (pcaps/) replayed with --fetch-policies
 * against the lab's signed secure.example, whose TLSA records are those of
 * the captures: the DANE verdicts from a live, DNSSEC-validated lookup.
 * Runs the stripwatch binary. RFC 7672 §2.2, §3.1. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "../sensor/runbin.h"
#include "../test_port.h"

static char g_dir[512], g_lab[1024], g_ta[600], g_ca[600], g_dns_server[64], g_https_port[16];

static int lab_up(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof(g_dir), "%s/sw-danecli-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_lab, sizeof(g_lab), "%s/tests/dane/danelab.sh", SW_SOURCE_DIR);
    int dns = test_pick_port(), redis = test_pick_port(), https = test_pick_port();
    if (dns < 0 || redis < 0 || https < 0)
        return -1;
    char cmd[2400];
    snprintf(cmd, sizeof(cmd), "bash '%s' start '%s' %d %d %d", g_lab, g_dir, dns, redis, https);
    int r = system(cmd);
    if (r != 0) {
        print_message("command failed (%d): %s\n", r, cmd);
        return -1;
    }
    snprintf(g_ta, sizeof(g_ta), "%s/ta.key", g_dir);
    snprintf(g_ca, sizeof(g_ca), "%s/ca.pem", g_dir);
    snprintf(g_dns_server, sizeof(g_dns_server), "127.0.0.1@%d", dns);
    snprintf(g_https_port, sizeof(g_https_port), "%d", https);
    return 0;
}

static int lab_down(void **state)
{
    (void)state;
    if (!g_dir[0])
        return 0;
    char cmd[2400];
    snprintf(cmd, sizeof(cmd), "bash '%s' stop '%s'", g_lab, g_dir);
    if (system(cmd) != 0)
        print_message("lab stop failed\n");
    if (!getenv("SW_KEEP_LAB")) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
        if (system(cmd) != 0)
            print_message("cannot remove %s\n", g_dir);
    }
    return 0;
}

/* stripwatch policy DOMAIN against the lab (json: --json). */
static void policy(const char *domain, bool json, struct run_out *r)
{
    char *argv[] = {STRIPWATCH,
                    "policy",
                    (char *)domain,
                    "--dns-server",
                    g_dns_server,
                    "--trust-anchor",
                    g_ta,
                    "--ca-file",
                    g_ca,
                    "--https-port",
                    g_https_port,
                    "--allow-private-policy-hosts",
                    json ? "--json" : NULL,
                    NULL};
    run(g_dir, argv, NULL, 120, r);
}

#define HAS(out, line) assert_non_null(strstr((out), line))

/* records in presentation order */
static const char MX1_TLSA[] =
    "TLSA _25._tcp.mx1.dane.example: 2 0 2 "
    "2222222222222222222222222222222222222222222222222222222222222222"
    "2222222222222222222222222222222222222222222222222222222222222222\n"
    "TLSA _25._tcp.mx1.dane.example: 3 1 1 "
    "1111111111111111111111111111111111111111111111111111111111111111\n"
    "PASS DANE§2.2 MX mx1.dane.example has DNSSEC-secure TLSA records (2 usable for SMTP)\n";

/* MTA-STS, MX, TLSA and TLS-RPT all valid: exit 0 */
static void test_valid_setup(void **state)
{
    (void)state;
    struct run_out r;
    policy("ok.dane.example", false, &r);
    assert_int_equal(r.status, 0);
    HAS(r.out, "PASS §4.1 MX mx1.dane.example matches the policy's mx patterns\n");
    HAS(r.out, MX1_TLSA);
    HAS(r.out, "PASS TLSRPT§3 TLS-RPT record syntax (1 rua URI)\n");
    HAS(r.out, "result: valid policy published (mode enforce, id ok1)\n");
    assert_null(strstr(r.out, "FAIL"));
    assert_string_equal(r.err, "");
    run_free(&r);
}

/* a valid policy, one MX host's TLSA answer bogus: exit 1 */
static void test_bogus_mx(void **state)
{
    (void)state;
    struct run_out r;
    policy("okbogus.dane.example", false, &r);
    assert_int_equal(r.status, 1);
    HAS(r.out, MX1_TLSA);
    HAS(r.out, "FAIL DANE§2.2 MX bogus.dane.example: DNSSEC validation of the TLSA answer failed "
               "(bogus: validation failure <_25._tcp.bogus.dane.example. TLSA IN>: ECDSA "
               "signature verification failed from 127.0.0.1); DANE senders will not deliver "
               "there\n");
    HAS(r.out, "result: policy published (mode enforce, id okbogus1) but the TLSA records of its "
               "MX hosts fail DANE checks\n");
    run_free(&r);
}

/* no MTA-STS policy: the MX hosts and their TLSA records still reported */
static void test_without_policy(void **state)
{
    (void)state;
    struct run_out r;
    policy("dane.example", false, &r);
    assert_int_equal(r.status, 1);
    HAS(r.out, "FAIL §3.1 exactly one STSv1 TXT record: none found\n"
               "MX dane.example: 10 mx1.dane.example\n"
               "MX dane.example: 20 bogus.dane.example\n"
               "MX dane.example: 30 mx-none.dane.example\n");
    HAS(r.out, MX1_TLSA);
    HAS(r.out, "NOTE DANE§2.2 MX mx-none.dane.example: no TLSA record (DNSSEC-secure denial): "
               "DANE not in use\n");
    HAS(r.out, "result: no valid policy published (no usable TXT record)\n");
    run_free(&r);

    policy("pkix.dane.example", false, &r);
    assert_int_equal(r.status, 1);
    HAS(r.out, "TLSA _25._tcp.mx-pkix.dane.example: 1 1 1 "
               "6666666666666666666666666666666666666666666666666666666666666666 (not usable for "
               "SMTP: RFC 7672 §3.1)\n"
               "FAIL DANE§3.1 MX mx-pkix.dane.example has DNSSEC-secure TLSA records, none usable "
               "for SMTP (DANE-TA(2) or DANE-EE(3) needed; senders will not deliver there)\n");
    run_free(&r);

    policy("plain.example", false, &r);
    assert_int_equal(r.status, 1);
    HAS(r.out, "TLSA _25._tcp.mx.plain.example: 3 1 1 "
               "5555555555555555555555555555555555555555555555555555555555555555\n"
               "NOTE DANE§2.2 MX mx.plain.example: the TLSA answer is not DNSSEC-signed "
               "(insecure): DANE does not apply\n");
    assert_null(strstr(r.out, "FAIL DANE"));
    run_free(&r);
}

/* --json: one object, the same findings, the TLSA answers per host */
static void test_json(void **state)
{
    (void)state;
    struct run_out r;
    policy("dane.example", true, &r);
    assert_int_equal(r.status, 1);
    json_error_t je;
    json_t *j = json_loads(r.out, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "domain")), "dane.example");
    assert_int_equal(json_integer_value(json_object_get(j, "exit")), 1);
    assert_string_equal(json_string_value(json_object_get(j, "result")),
                        "no valid policy published (no usable TXT record)");
    json_t *t = json_object_get(j, "tlsa");
    assert_int_equal(json_array_size(t), 3);
    const char *want[3][3] = {{"mx1.dane.example", "secure", "2"},
                              {"bogus.dane.example", "bogus", "0"},
                              {"mx-none.dane.example", "none", "0"}};
    for (size_t i = 0; i < 3; i++) {
        json_t *h = json_array_get(t, i);
        assert_string_equal(json_string_value(json_object_get(h, "host")), want[i][0]);
        assert_string_equal(json_string_value(json_object_get(h, "status")), want[i][1]);
        assert_int_equal(json_integer_value(json_object_get(h, "usable")), atoi(want[i][2]));
    }
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(json_array_get(t, 0), "records"), 1)),
        "3 1 1 1111111111111111111111111111111111111111111111111111111111111111");
    /* the findings: every line, FAIL/PASS/NOTE with their check */
    json_t *f = json_object_get(j, "findings"), *x;
    size_t i;
    int fails = 0, dane_pass = 0;
    json_array_foreach(f, i, x)
    {
        const char *st = json_string_value(json_object_get(x, "status"));
        const char *ck = json_string_value(json_object_get(x, "check"));
        if (!strcmp(st, "FAIL"))
            fails++;
        if (!strcmp(st, "PASS") && ck && !strcmp(ck, "DANE§2.2")) {
            dane_pass++;
            assert_string_equal(json_string_value(json_object_get(x, "text")),
                                "MX mx1.dane.example has DNSSEC-secure TLSA records (2 usable "
                                "for SMTP)");
        }
    }
    assert_int_equal(fails, 2); /* no STSv1 TXT record; the bogus answer */
    assert_int_equal(dane_pass, 1);
    json_t *first = json_array_get(f, 0);
    assert_string_equal(json_string_value(json_object_get(first, "status")), "INFO");
    assert_string_equal(json_string_value(json_object_get(first, "text")),
                        "TXT _mta-sts.dane.example: none (NXDOMAIN)");
    json_decref(j);
    run_free(&r);
}

/* stripwatch -r PCAP --fetch-policies against the lab: the alerts (health
 * records left out), one "RULE SEVERITY DANE-JSON" line each. */
static void replay(const char *pcap, char *got, size_t len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/pcaps/%s", SW_SOURCE_DIR, pcap);
    char *argv[] = {STRIPWATCH,
                    "--no-config",
                    "-q",
                    "-r",
                    path,
                    "--fetch-policies",
                    "--dns-server",
                    g_dns_server,
                    "--trust-anchor",
                    g_ta,
                    "--alerts-out",
                    "-",
                    "--sessions-out",
                    "/dev/null",
                    NULL};
    struct run_out r;
    run(g_dir, argv, NULL, 120, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    got[0] = 0;
    for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *o = json_loads(line, 0, NULL);
        assert_non_null(o);
        json_t *rule = json_object_get(o, "rule");
        if (rule) {
            char *d = json_dumps(json_object_get(o, "dane"), JSON_COMPACT | JSON_SORT_KEYS);
            size_t l = strlen(got);
            snprintf(got + l, len - l, "%s %s %s\n", json_string_value(json_object_get(rule, "id")),
                     json_string_value(
                         json_object_get(json_object_get(o, "stripwatch"), "severity_name")),
                     d ? d : "-");
            free(d);
        }
        json_decref(o);
    }
    run_free(&r);
}

/* The strip: high, with the records the lab's validated answer holds; the
 * verified delivery: nothing; the retired key: certificate_mismatch. */
static void test_replay_real_postfix(void **state)
{
    (void)state;
    char got[4096];
    replay("mitm-strip-dane-sender-side.pcap", got, sizeof(got));
    assert_string_equal(got, "starttls.stripped high {\"host\":\"mx.secure.example\","
                             "\"records\":[\"3 1 1 ab2795efe85c88eb045fbfb6121d56b80e85e5b0692"
                             "937a3e418e854e49f5d36\"],\"status\":\"secure\"}\n");
    replay("postfix-dane-verified.pcap", got, sizeof(got));
    assert_string_equal(got, "");
    replay("postfix-dane-tlsa-mismatch.pcap", got, sizeof(got));
    assert_string_equal(got, "dane.certificate_mismatch medium {\"host\":\"mx-stale.secure."
                             "example\",\"records\":[\"3 1 1 41842ec662d2599b2956a0628df69342"
                             "4797a5ece37fa35805e5ec43e44b8b10\"],\"status\":\"secure\"}\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_setup),         cmocka_unit_test(test_bogus_mx),
        cmocka_unit_test(test_without_policy),      cmocka_unit_test(test_json),
        cmocka_unit_test(test_replay_real_postfix),
    };
    return cmocka_run_group_tests(tests, lab_up, lab_down);
}
