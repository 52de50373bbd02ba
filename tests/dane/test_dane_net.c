/* SPDX-License-Identifier: Apache-2.0 */
/* test_dane_net.c: DANE TLSA lookups against a real signed zone: nsd serves
 * dane.example (signed here by danelab.sh, one signature broken) and the
 * unsigned plain.example on loopback; libunbound validates with the lab's
 * own trust anchor. Secure, bogus, secure denial, insecure, the snapshot
 * file, the Redis cache and the MTA-STS engine driving the lookups.
 * RFC 7672 §2.2, RFC 6698. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "decode/sw.h"
#include "policy/dane.h"
#include "policy/policy.h"
#include "../test_port.h"

static char g_dir[512], g_lab[1024], g_ta[600], g_dns_server[64], g_redis_url[64];
static int g_dns, g_redis;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int r = system(cmd);
    r = WIFEXITED(r) ? WEXITSTATUS(r) : -1;
    if (r)
        print_message("command failed (%d): %s\n", r, cmd);
    return r;
}

static int lab_up(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof(g_dir), "%s/sw-danenet-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_lab, sizeof(g_lab), "%s/tests/dane/danelab.sh", SW_SOURCE_DIR);
    g_dns = test_pick_port();
    g_redis = test_pick_port();
    if (g_dns < 0 || g_redis < 0)
        return -1;
    if (sh("bash '%s' start '%s' %d %d", g_lab, g_dir, g_dns, g_redis))
        return -1;
    snprintf(g_ta, sizeof(g_ta), "%s/ta.key", g_dir);
    snprintf(g_dns_server, sizeof(g_dns_server), "127.0.0.1@%d", g_dns);
    snprintf(g_redis_url, sizeof(g_redis_url), "redis://127.0.0.1:%d", g_redis);
    return 0;
}

static int lab_down(void **state)
{
    (void)state;
    if (!g_dir[0])
        return 0;
    sh("bash '%s' stop '%s'", g_lab, g_dir);
    if (!getenv("SW_KEEP_LAB"))
        sh("rm -rf '%s'", g_dir);
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What one callback saw (copied: the answer is borrowed). */
struct seen {
    int calls;
    char host[256];
    enum dane_status status;
    size_t n;
    char rec[4][300];
    char detail[512];
    enum dane_source source;
};

static void on_answer(void *arg, const char *host, const struct dane_answer *a)
{
    struct seen *s = arg;
    s->calls++;
    snprintf(s->host, sizeof(s->host), "%s", host);
    s->status = a->status;
    s->n = a->entry ? a->entry->n : 0;
    for (size_t i = 0; i < s->n && i < 4; i++)
        dane_tlsa_format(&a->entry->rr[i], s->rec[i], sizeof(s->rec[i]));
    snprintf(s->detail, sizeof(s->detail), "%s", a->detail ? a->detail : "");
    s->source = a->entry ? a->entry->source : DANE_SRC_DNS;
}

static void take(struct seen *s, const struct dane_answer *a)
{
    on_answer(s, a->entry ? a->entry->host : "", a);
}

static const char *rep(char c, int n)
{
    static char buf[4][200];
    static int k;
    char *b = buf[k++ % 4];
    memset(b, c, (size_t)n);
    b[n] = 0;
    return b;
}

static struct dane *engine(const char *server, const char *redis, const char *file, bool fetch)
{
    struct dane_cfg c;
    char err[512];
    dane_cfg_defaults(&c);
    c.fetch = fetch;
    c.dns_server = server;
    c.trust_anchor = g_ta;
    c.redis_url = redis;
    c.dane_file = file;
    c.timeout_ms = 8000;
    struct dane *d = dane_new(&c, err, sizeof(err));
    if (!d)
        print_message("dane_new: %s\n", err);
    assert_non_null(d);
    return d;
}

/* Looks host up and waits (bounded) for the callback when it is needed. */
static void lookup_wait(struct dane *d, const char *host, struct seen *s)
{
    struct dane_answer a;
    memset(s, 0, sizeof(*s));
    int rc = dane_lookup(d, host, on_answer, s, &a);
    if (rc == SW_OK) {
        take(s, &a);
        return;
    }
    assert_int_equal(rc, SW_AGAIN);
    int64_t end = now_ms() + 20000;
    while (!s->calls && now_ms() < end) {
        struct pollfd p = {.fd = dane_fd(d), .events = POLLIN};
        if (p.fd >= 0)
            poll(&p, 1, 100);
        dane_process(d);
    }
    assert_int_equal(s->calls, 1);
}

static void test_secure(void **state)
{
    (void)state;
    struct dane *d = engine(g_dns_server, NULL, NULL, true);
    struct seen s;
    lookup_wait(d, "MX1.dane.example.", &s);
    assert_string_equal(s.host, "mx1.dane.example");
    assert_string_equal(dane_status_str(s.status), "secure");
    assert_int_equal(s.n, 2);
    char want1[200], want2[200];
    snprintf(want1, sizeof(want1), "3 1 1 %s", rep('1', 64));
    snprintf(want2, sizeof(want2), "2 0 2 %s", rep('2', 128));
    /* libunbound keeps the RRset's order or not: either order is the set */
    bool first = strcmp(s.rec[0], want1) == 0;
    assert_string_equal(s.rec[first ? 0 : 1], want1);
    assert_string_equal(s.rec[first ? 1 : 0], want2);
    assert_int_equal(s.source, DANE_SRC_DNS);
    /* the second lookup is answered from memory */
    struct dane_answer a;
    assert_int_equal(dane_lookup(d, "mx1.dane.example", on_answer, &s, &a), SW_OK);
    assert_int_equal(a.status, DANE_ST_SECURE);
    assert_int_equal(dane_stats(d)->queries, 1);
    assert_int_equal(dane_stats(d)->hits, 1);
    assert_int_equal(dane_stats(d)->secure, 1);
    dane_free(d);
}

static void test_bogus(void **state)
{
    (void)state;
    struct dane *d = engine(g_dns_server, NULL, NULL, true);
    struct seen s;
    lookup_wait(d, "bogus.dane.example", &s);
    assert_string_equal(dane_status_str(s.status), "bogus");
    const char *want = "validation failure <_25._tcp.bogus.dane.example. TLSA IN>: ";
    if (strncmp(s.detail, want, strlen(want)) != 0)
        fail_msg("detail: %s", s.detail);
    assert_non_null(strstr(s.detail, "signature"));
    assert_int_equal(dane_stats(d)->bogus, 1);
    /* negative answers are cached too */
    struct dane_answer a;
    assert_int_equal(dane_lookup(d, "bogus.dane.example", on_answer, &s, &a), SW_OK);
    assert_int_equal(a.status, DANE_ST_BOGUS);
    dane_free(d);
}

static void test_none_and_insecure(void **state)
{
    (void)state;
    struct dane *d = engine(g_dns_server, NULL, NULL, true);
    struct seen s;
    lookup_wait(d, "mx-none.dane.example", &s); /* NODATA, signed */
    assert_string_equal(dane_status_str(s.status), "none");
    assert_int_equal(s.n, 0);
    lookup_wait(d, "absent.dane.example", &s); /* NXDOMAIN, signed */
    assert_string_equal(dane_status_str(s.status), "none");
    lookup_wait(d, "mx.plain.example", &s); /* unsigned zone: DANE does not apply */
    assert_string_equal(dane_status_str(s.status), "insecure");
    assert_int_equal(s.n, 1);
    char want[200];
    snprintf(want, sizeof(want), "3 1 1 %s", rep('5', 64));
    assert_string_equal(s.rec[0], want);
    assert_int_equal(dane_stats(d)->none, 2);
    assert_int_equal(dane_stats(d)->insecure, 1);
    dane_free(d);
}

/* What was learnt live is saved, and an offline engine answers it from the
 * snapshot (source "file"); a host it does not hold is unknown. */
static void test_snapshot_round_trip(void **state)
{
    (void)state;
    struct dane *d = engine(g_dns_server, NULL, NULL, true);
    struct seen s;
    lookup_wait(d, "mx1.dane.example", &s);
    lookup_wait(d, "bogus.dane.example", &s);
    lookup_wait(d, "mx.plain.example", &s);
    char path[700], err[512];
    snprintf(path, sizeof(path), "%s/dane.json", g_dir);
    assert_int_equal(dane_save(d, path, err, sizeof(err)), SW_OK);
    dane_free(d);

    d = engine(NULL, NULL, path, false);
    struct dane_answer a;
    assert_int_equal(dane_lookup(d, "mx1.dane.example", NULL, NULL, &a), SW_OK);
    take(&s, &a);
    assert_string_equal(dane_status_str(s.status), "secure");
    assert_int_equal(s.n, 2);
    assert_int_equal(s.source, DANE_SRC_FILE);
    assert_int_equal(dane_lookup(d, "bogus.dane.example", NULL, NULL, &a), SW_OK);
    assert_int_equal(a.status, DANE_ST_BOGUS);
    assert_int_equal(dane_lookup(d, "mx.plain.example", NULL, NULL, &a), SW_OK);
    assert_int_equal(a.status, DANE_ST_INSECURE);
    assert_int_equal(dane_lookup(d, "other.example", NULL, NULL, &a), SW_OK);
    assert_int_equal(a.status, DANE_ST_UNKNOWN);
    assert_string_equal(a.detail, "no DANE data");
    assert_int_equal(dane_stats(d)->file_loaded, 3);
    dane_free(d);
}

/* A second sensor on the same Redis takes the answer from there, even with
 * a resolver that never answers. */
static void test_redis_shared(void **state)
{
    (void)state;
    struct dane *d = engine(g_dns_server, g_redis_url, NULL, true);
    struct seen s;
    lookup_wait(d, "mx1.dane.example", &s);
    assert_int_equal(s.status, DANE_ST_SECURE);
    dane_free(d);
    char dead[64];
    snprintf(dead, sizeof(dead), "127.0.0.1@%d", test_pick_port());
    d = engine(dead, g_redis_url, NULL, true);
    struct dane_answer a;
    assert_int_equal(dane_lookup(d, "mx1.dane.example", NULL, NULL, &a), SW_OK);
    take(&s, &a);
    assert_int_equal(s.status, DANE_ST_SECURE);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.source, DANE_SRC_REDIS);
    assert_int_equal(dane_stats(d)->redis_hits, 1);
    assert_int_equal(dane_stats(d)->queries, 0);
    dane_free(d);
}

/* The MTA-STS engine owns the DANE lookups and fires their callbacks from
 * policy_engine_run(). */
static void test_through_policy_engine(void **state)
{
    (void)state;
    struct policy_cfg c;
    char err[512];
    policy_cfg_defaults(&c);
    c.fetch = true;
    c.dns_server = g_dns_server;
    c.dane = true;
    c.trust_anchor = g_ta;
    struct policy_engine *e = policy_engine_new(&c, err, sizeof(err));
    if (!e)
        fail_msg("policy_engine_new: %s", err);
    struct dane *d = policy_engine_dane(e);
    assert_non_null(d);
    struct seen s = {0};
    struct dane_answer a;
    assert_int_equal(dane_lookup(d, "mx1.dane.example", on_answer, &s, &a), SW_AGAIN);
    int64_t end = now_ms() + 20000;
    while (!s.calls && now_ms() < end)
        policy_engine_run(e, 200);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.status, DANE_ST_SECURE);
    policy_engine_free(e);
}

static void test_trust_anchor_missing(void **state)
{
    (void)state;
    struct dane_cfg c;
    char err[512];
    dane_cfg_defaults(&c);
    c.fetch = true;
    c.dns_server = g_dns_server;
    c.trust_anchor = "/nonexistent/root.key";
    assert_null(dane_new(&c, err, sizeof(err)));
    assert_string_equal(err, "trust anchor /nonexistent/root.key: No such file or directory");
    /* a file that holds no anchor */
    char bad[700];
    snprintf(bad, sizeof(bad), "%s/bad.key", g_dir);
    FILE *f = fopen(bad, "w");
    assert_non_null(f);
    fputs("this is not a zone file\n", f);
    fclose(f);
    c.trust_anchor = bad;
    assert_null(dane_new(&c, err, sizeof(err)));
    char want[800];
    snprintf(want, sizeof(want), "trust anchor %s: no DS or DNSKEY record", bad);
    assert_string_equal(err, want);
    /* Debian's root anchor is the default (dns-root-data) */
    c.trust_anchor = NULL;
    struct dane *d = dane_new(&c, err, sizeof(err));
    if (!d)
        fail_msg("default anchor: %s", err);
    dane_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secure),
        cmocka_unit_test(test_bogus),
        cmocka_unit_test(test_none_and_insecure),
        cmocka_unit_test(test_snapshot_round_trip),
        cmocka_unit_test(test_redis_shared),
        cmocka_unit_test(test_through_policy_engine),
        cmocka_unit_test(test_trust_anchor_missing),
    };
    return cmocka_run_group_tests(tests, lab_up, lab_down);
}
