/* SPDX-License-Identifier: Apache-2.0 */
/* test_policy_net.c: the MTA-STS engine against real servers on loopback:
 * unbound (TXT/A records), nginx with a test CA (the policy hosts), redis.
 * RFC 8461 §3.1, §3.3, §5.1, §7. Servers are started by netlab.sh in a
 * temporary directory and stopped at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "policy/policy.h"
#include "policy/rcache.h"
#include "policy/snapshot.h"
#include "../test_port.h"
#include "../test_threads.h"
#include "mta_sts_json.h"

static char g_dir[512];
static char g_lab[1024];
static int g_dns, g_https, g_redis;
static char g_ca[600], g_dns_server[64], g_redis_url[64];

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
    snprintf(g_dir, sizeof(g_dir), "%s/sw-policynet-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_lab, sizeof(g_lab), "%s/tests/policy_net/netlab.sh", SW_SOURCE_DIR);
    g_dns = test_pick_port();
    g_https = test_pick_port();
    g_redis = test_pick_port();
    if (g_dns < 0 || g_https < 0 || g_redis < 0)
        return -1;
    if (sh("bash '%s' start '%s' %d %d %d", g_lab, g_dir, g_dns, g_https, g_redis))
        return -1;
    snprintf(g_ca, sizeof(g_ca), "%s/ca.crt", g_dir);
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

static void base_cfg(struct policy_cfg *c)
{
    policy_cfg_defaults(c);
    c->dns_server = g_dns_server;
    c->ca_file = g_ca;
    c->https_port = (uint16_t)g_https;
    c->allow_private_hosts = true; /* the lab is on loopback */
    c->connect_timeout_ms = 2000;
    c->total_timeout_ms = 4000;
    c->dns_timeout_ms = 4000;
}

struct got {
    int calls;
    enum policy_status status;
    char detail[800];
    char id[33];
    enum policy_source source;
    enum mtasts_mode mode;
    size_t n_mx;
    char mx[4][256];
    uint32_t max_age;
    int64_t fetched_at;
};

static void copy_answer(struct got *g, const struct policy_answer *a)
{
    g->status = a->status;
    snprintf(g->detail, sizeof(g->detail), "%s", a->detail ? a->detail : "");
    g->id[0] = 0;
    g->n_mx = 0;
    if (a->entry) {
        snprintf(g->id, sizeof(g->id), "%s", a->entry->id);
        g->source = a->entry->source;
        g->mode = a->entry->policy.mode;
        g->n_mx = a->entry->policy.n_mx;
        for (size_t i = 0; i < g->n_mx && i < 4; i++)
            snprintf(g->mx[i], sizeof(g->mx[i]), "%s", a->entry->policy.mx[i]);
        g->max_age = a->entry->policy.max_age;
        g->fetched_at = a->entry->fetched_at;
    }
}

static void on_answer(void *arg, const char *domain, const struct policy_answer *a)
{
    (void)domain;
    struct got *g = arg;
    g->calls++;
    copy_answer(g, a);
}

/* Looks domain up; waits (bounded) for the callback. Returns SW_OK when the
 * answer came at once, SW_AGAIN when through the callback. */
static int lookup(struct policy_engine *e, const char *domain, struct got *g)
{
    memset(g, 0, sizeof(*g));
    struct policy_answer a;
    int r = policy_lookup(e, domain, on_answer, g, &a);
    if (r == SW_OK) {
        copy_answer(g, &a);
        return r;
    }
    assert_int_equal(r, SW_AGAIN);
    for (int i = 0; i < 300 && !g->calls; i++)
        policy_engine_run(e, 100);
    if (g->calls != 1)
        print_message("lookup %s: %d callbacks\n", domain, g->calls);
    assert_int_equal(g->calls, 1);
    return r;
}

static struct policy_engine *engine(const struct policy_cfg *c)
{
    char err[512] = "";
    struct policy_engine *e = policy_engine_new(c, err, sizeof(err));
    if (!e)
        fail_msg("policy_engine_new: %s", err);
    return e;
}

static void url(char *buf, size_t len, const char *d)
{
    snprintf(buf, len, "https://mta-sts.%s:%d/.well-known/mta-sts.txt", d, g_https);
}

/* ---- cases ---- */

static void test_valid(void **state)
{
    (void)state;
    struct policy_cfg c;
    base_cfg(&c);
    struct policy_engine *e = engine(&c);
    struct got g;
    int64_t t0 = time(NULL);
    assert_int_equal(lookup(e, "Valid.Example.", &g), SW_AGAIN);
    assert_int_equal(g.status, POLICY_ST_VALID);
    assert_string_equal(g.id, "valid1");
    assert_int_equal(g.source, POLICY_SRC_HTTPS);
    assert_int_equal(g.mode, MTASTS_MODE_ENFORCE);
    assert_int_equal(g.n_mx, 2);
    assert_string_equal(g.mx[0], "mail.valid.example");
    assert_string_equal(g.mx[1], "*.mx.valid.example");
    assert_int_equal(g.max_age, 604800);
    assert_true(g.fetched_at >= t0 && g.fetched_at <= time(NULL));
    const struct policy_stats *st = policy_engine_stats(e);
    assert_int_equal(st->dns_queries, 1);
    assert_int_equal(st->fetches, 1);
    assert_int_equal(st->fetch_ok, 1);
    /* second lookup: from memory, at once */
    assert_int_equal(lookup(e, "valid.example", &g), SW_OK);
    assert_int_equal(g.status, POLICY_ST_VALID);
    assert_string_equal(g.id, "valid1");
    assert_int_equal(st->hits_memory, 1);
    assert_int_equal(st->fetches, 1);

    /* the alert's mta_sts object */
    struct policy_answer a;
    assert_int_equal(policy_lookup(e, "valid.example", NULL, NULL, &a), SW_OK);
    char at[32];
    snapshot_time_format(a.entry->fetched_at, at);
    char want[512];
    snprintf(want, sizeof(want),
             "{\"domain\":\"valid.example\",\"id\":\"valid1\",\"mode\":\"enforce\",\"mx\":"
             "[\"mail.valid.example\",\"*.mx.valid.example\"],\"max_age\":604800,\"fetched_at\":"
             "\"%s\",\"source\":\"https\",\"status\":\"valid\"}",
             at);
    char *s = mta_sts_json("valid.example", &a);
    assert_string_equal(s, want);
    free(s);
    policy_engine_free(e);
}

static void test_cname_and_multistring(void **state)
{
    (void)state;
    struct policy_cfg c;
    base_cfg(&c);
    struct policy_engine *e = engine(&c);
    struct got g;
    lookup(e, "cname.example", &g); /* _mta-sts.cname.example CNAME _mta-sts.valid.example */
    assert_int_equal(g.status, POLICY_ST_VALID);
    assert_string_equal(g.id, "valid1");
    assert_int_equal(g.mode, MTASTS_MODE_TESTING);
    assert_string_equal(g.mx[0], "mx.cname.example");
    lookup(e, "dup.example", &g); /* mode: testing, then mode: enforce */
    assert_int_equal(g.status, POLICY_ST_VALID);
    assert_int_equal(g.mode, MTASTS_MODE_TESTING);
    lookup(e, "multi.example", &g); /* "v=STSv1; " "id=multi" "2;" */
    assert_int_equal(g.status, POLICY_ST_VALID);
    assert_string_equal(g.id, "multi2");
    assert_string_equal(g.mx[0], "mx.multi.example");
    policy_engine_free(e);
}

static void test_no_txt_and_two_txt(void **state)
{
    (void)state;
    struct policy_cfg c;
    base_cfg(&c);
    struct policy_engine *e = engine(&c);
    struct got g;
    assert_int_equal(lookup(e, "nosuch.example", &g), SW_AGAIN);
    assert_int_equal(g.status, POLICY_ST_NONE);
    assert_string_equal(g.detail, "no MTA-STS TXT record at _mta-sts.nosuch.example");
    /* negative cache: at once, no new query */
    assert_int_equal(lookup(e, "nosuch.example", &g), SW_OK);
    assert_int_equal(g.status, POLICY_ST_NONE);
    assert_string_equal(g.detail, "no MTA-STS TXT record at _mta-sts.nosuch.example");
    /* a TXT record that is not STSv1 is discarded */
    lookup(e, "other.example", &g);
    assert_string_equal(g.detail, "no MTA-STS TXT record at _mta-sts.other.example");
    lookup(e, "twotxt.example", &g);
    assert_int_equal(g.status, POLICY_ST_NONE);
    assert_string_equal(g.detail,
                        "2 STSv1 TXT records at _mta-sts.twotxt.example (exactly one required)");
    const struct policy_stats *st = policy_engine_stats(e);
    assert_int_equal(st->dns_queries, 3);
    assert_int_equal(st->dns_no_record, 2);
    assert_int_equal(st->dns_invalid, 1);
    assert_int_equal(st->fetches, 0);
    policy_engine_free(e);
}

/* One failing fetch: exact detail and counter, then no retry of (domain, id). */
static void check_failure(const char *domain, const char *why, size_t off, long total_ms)
{
    struct policy_cfg c;
    base_cfg(&c);
    if (total_ms)
        c.total_timeout_ms = total_ms;
    struct policy_engine *e = engine(&c);
    struct got g;
    char want[800], u[300];
    url(u, sizeof(u), domain);
    snprintf(want, sizeof(want), "fetch %s: %s", u, why);
    lookup(e, domain, &g);
    assert_int_equal(g.status, POLICY_ST_UNKNOWN);
    assert_string_equal(g.detail, want);
    const struct policy_stats *st = policy_engine_stats(e);
    assert_int_equal(st->fetches, 1);
    assert_int_equal(st->fetch_ok, 0);
    assert_int_equal(*(const uint64_t *)((const char *)st + off), 1);
    /* not retried for retry_after_failure */
    assert_int_equal(lookup(e, domain, &g), SW_OK);
    assert_int_equal(g.status, POLICY_ST_UNKNOWN);
    assert_string_equal(g.detail, want);
    assert_int_equal(st->fetches, 1);
    policy_engine_free(e);
}

static void test_404(void **state)
{
    (void)state;
    check_failure("notfound.example", "HTTP 404", offsetof(struct policy_stats, fetch_http_error),
                  0);
}

static void test_redirect_refused(void **state)
{
    (void)state;
    check_failure("redirect.example", "redirect refused (HTTP 301)",
                  offsetof(struct policy_stats, fetch_redirect), 0);
}

static void test_wrong_content_type(void **state)
{
    (void)state;
    check_failure("badtype.example", "content type \"text/html\" is not text/plain",
                  offsetof(struct policy_stats, fetch_bad_type), 0);
}

static void test_body_too_big(void **state)
{
    (void)state;
    check_failure("big.example", "policy body exceeds 65536 bytes",
                  offsetof(struct policy_stats, fetch_too_big), 0);
}

static void test_expired_cert(void **state)
{
    (void)state;
    check_failure("expired.example", "TLS: SSL certificate problem: certificate has expired",
                  offsetof(struct policy_stats, fetch_tls_error), 0);
}

static void test_wrong_name_cert(void **state)
{
    (void)state;
    check_failure("wrongname.example",
                  "TLS: SSL: no alternative certificate subject name matches target host name "
                  "'mta-sts.wrongname.example'",
                  offsetof(struct policy_stats, fetch_tls_error), 0);
}

static void test_trickle_timeout(void **state)
{
    (void)state;
    check_failure("trickle.example", "timed out", offsetof(struct policy_stats, fetch_timeout),
                  2000);
}

static void test_invalid_policy(void **state)
{
    (void)state;
    struct policy_cfg c;
    base_cfg(&c);
    struct policy_engine *e = engine(&c);
    struct got g;
    char u[300], want[600];
    url(u, sizeof(u), "invalid.example");
    snprintf(want, sizeof(want),
             "policy at %s invalid: mx field missing (required when mode is enforce)", u);
    lookup(e, "invalid.example", &g);
    assert_int_equal(g.status, POLICY_ST_NONE);
    assert_string_equal(g.detail, want);
    assert_int_equal(policy_engine_stats(e)->fetch_parse_error, 1);
    policy_engine_free(e);
}

static void test_private_address_refused(void **state)
{
    (void)state;
    struct policy_cfg c;
    base_cfg(&c);
    c.allow_private_hosts = false;
    struct policy_engine *e = engine(&c);
    struct got g;
    lookup(e, "private.example", &g);
    assert_int_equal(g.status, POLICY_ST_UNKNOWN);
    assert_string_equal(g.detail, "policy host mta-sts.private.example resolves to 10.0.0.1, a "
                                  "private (RFC 1918) address: refused");
    lookup(e, "valid.example", &g);
    assert_int_equal(g.status, POLICY_ST_UNKNOWN);
    assert_string_equal(g.detail,
                        "policy host mta-sts.valid.example resolves to 127.0.0.1, a loopback "
                        "address: refused");
    const struct policy_stats *st = policy_engine_stats(e);
    assert_int_equal(st->fetch_private_addr, 2);
    assert_int_equal(st->fetches, 0);
    policy_engine_free(e);
    /* allowed with the flag (base_cfg sets it): the same loopback host */
    base_cfg(&c);
    e = engine(&c);
    lookup(e, "valid.example", &g);
    assert_int_equal(g.status, POLICY_ST_VALID);
    assert_int_equal(policy_engine_stats(e)->fetch_private_addr, 0);
    policy_engine_free(e);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void run_until(struct policy_engine *e, const uint64_t *counter, uint64_t want)
{
    for (int i = 0; i < 300 && *counter < want; i++)
        policy_engine_run(e, 100);
    if (*counter != want) {
        const struct policy_stats *st = policy_engine_stats(e);
        print_message("counter %llu, want %llu; dns_queries %llu no_record %llu errors %llu "
                      "fetches %llu ok %llu http_error %llu refreshes %llu\n",
                      (unsigned long long)*counter, (unsigned long long)want,
                      (unsigned long long)st->dns_queries, (unsigned long long)st->dns_no_record,
                      (unsigned long long)st->dns_errors, (unsigned long long)st->fetches,
                      (unsigned long long)st->fetch_ok, (unsigned long long)st->fetch_http_error,
                      (unsigned long long)st->refreshes);
    }
    assert_int_equal(*counter, want);
}

static void test_id_change_refetch(void **state)
{
    (void)state;
    struct policy_cfg c;
    base_cfg(&c);
    /* wall_s() counts whole seconds: with an interval of 1 a lookup a few
     * milliseconds after a check can cross a second boundary and start
     * another refresh; 3 s leaves room for a loaded machine */
    c.refresh_interval = 3;
    struct policy_engine *e = engine(&c);
    const struct policy_stats *st = policy_engine_stats(e);
    struct got g;
    lookup(e, "change.example", &g);
    assert_int_equal(g.status, POLICY_ST_VALID);
    assert_string_equal(g.id, "change1");
    assert_string_equal(g.mx[0], "old.change.example");

    /* same id at the next check: no fetch */
    sleep(4);
    assert_int_equal(lookup(e, "change.example", &g), SW_OK);
    assert_string_equal(g.id, "change1");
    run_until(e, &st->dns_queries, 2);
    for (int i = 0; i < 10; i++)
        policy_engine_run(e, 50);
    assert_int_equal(st->fetches, 1);
    assert_int_equal(st->refreshes, 1);

    /* the domain publishes a new policy and a new id */
    char path[700];
    snprintf(path, sizeof(path), "%s/www/change/.well-known/mta-sts.txt", g_dir);
    write_file(path, "version: STSv1\nmode: enforce\nmx: new.change.example\nmax_age: 86400\n");
    assert_int_equal(
        sh("bash '%s' txt '%s' _mta-sts.change.example. '\"v=STSv1; id=change2;\"'", g_lab, g_dir),
        0);
    sleep(4);
    /* the cached policy answers while the refresh runs */
    assert_int_equal(lookup(e, "change.example", &g), SW_OK);
    assert_string_equal(g.id, "change1");
    run_until(e, &st->fetch_ok, 2);
    assert_int_equal(lookup(e, "change.example", &g), SW_OK);
    assert_int_equal(g.status, POLICY_ST_VALID);
    assert_string_equal(g.id, "change2");
    assert_int_equal(g.mode, MTASTS_MODE_ENFORCE);
    assert_string_equal(g.mx[0], "new.change.example");
    assert_int_equal(st->refreshes, 2);

    /* a new id whose fetch fails: the cached policy stays in force */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(
        sh("bash '%s' txt '%s' _mta-sts.change.example. '\"v=STSv1; id=change3;\"'", g_lab, g_dir),
        0);
    sleep(4);
    assert_int_equal(lookup(e, "change.example", &g), SW_OK);
    run_until(e, &st->fetch_http_error, 1);
    assert_int_equal(lookup(e, "change.example", &g), SW_OK);
    assert_int_equal(g.status, POLICY_ST_VALID);
    assert_string_equal(g.id, "change2");
    assert_int_equal(st->fetches, 3);

    /* the TXT record disappears: the cached policy stays in force */
    assert_int_equal(sh("unbound-control -c '%s/unbound.conf' local_data_remove "
                        "_mta-sts.change.example. >/dev/null",
                        g_dir),
                     0);
    sleep(4);
    assert_int_equal(lookup(e, "change.example", &g), SW_OK);
    run_until(e, &st->dns_no_record, 1);
    assert_int_equal(lookup(e, "change.example", &g), SW_OK);
    assert_int_equal(g.status, POLICY_ST_VALID);
    assert_string_equal(g.id, "change2");
    policy_engine_free(e);
}

/* Proactive refresh: the same id is fetched again when a quarter of max_age
 * is left (max_age 8: at 6 s), while the policy still answers. */
static void test_refresh_before_expiry(void **state)
{
    (void)state;
    struct policy_cfg c;
    base_cfg(&c);
    struct policy_engine *e = engine(&c);
    const struct policy_stats *st = policy_engine_stats(e);
    struct got g;
    lookup(e, "short.example", &g);
    assert_int_equal(g.status, POLICY_ST_VALID);
    int64_t first = g.fetched_at;
    struct timespec ts = {6, 300000000};
    nanosleep(&ts, NULL);
    assert_int_equal(lookup(e, "short.example", &g), SW_OK);
    assert_int_equal(g.status, POLICY_ST_VALID);
    assert_int_equal(g.fetched_at, first);
    run_until(e, &st->fetch_ok, 2);
    assert_int_equal(st->refreshes, 1);
    assert_int_equal(lookup(e, "short.example", &g), SW_OK);
    assert_true(g.fetched_at >= first + 6);
    policy_engine_free(e);
}

/* A second process sees, through Redis, what the first fetched. */
static void test_redis_shared(void **state)
{
    (void)state;
    struct policy_cfg c;
    base_cfg(&c);
    c.redis_url = g_redis_url;
    struct policy_engine *e = engine(&c);
    struct got g;
    lookup(e, "shared.example", &g);
    assert_int_equal(g.status, POLICY_ST_VALID);
    assert_int_equal(g.source, POLICY_SRC_HTTPS);
    int64_t fetched = g.fetched_at;
    policy_engine_free(e);

    char err[256];
    struct rcache *rc = rcache_new(g_redis_url, err, sizeof(err));
    assert_non_null(rc);
    char id[33], *text = NULL;
    int64_t at;
    assert_int_equal(rcache_get(rc, "shared.example", id, &text, &at, err, sizeof(err)), SW_OK);
    assert_string_equal(id, "shared1");
    assert_string_equal(text,
                        "version: STSv1\nmode: enforce\nmx: mx.shared.example\nmax_age: 3600\n");
    assert_int_equal(at, fetched);
    free(text);
    assert_int_equal(sh("redis-cli -p %d TTL stripwatch:mta-sts:shared.example | "
                        "awk '{exit !($1 > 3590 && $1 <= 3600)}'",
                        g_redis),
                     0);

    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* the second sensor: offline, Redis only */
        close(pfd[0]);
        struct policy_cfg c2;
        base_cfg(&c2);
        c2.fetch = false;
        c2.redis_url = g_redis_url;
        char e2[256];
        struct policy_engine *x = policy_engine_new(&c2, e2, sizeof(e2));
        struct got g2;
        memset(&g2, 0, sizeof(g2));
        struct policy_answer a;
        int r = x ? policy_lookup(x, "shared.example", on_answer, &g2, &a) : -1;
        for (int i = 0; r == SW_AGAIN && i < 100 && !g2.calls; i++)
            policy_engine_run(x, 100);
        char out[256];
        int n = snprintf(out, sizeof(out), "%d %s %s %s %lld %llu", r, policy_status_str(g2.status),
                         policy_source_str(g2.source), g2.id, (long long)g2.fetched_at,
                         x ? (unsigned long long)policy_engine_stats(x)->fetches : 99ULL);
        if (write(pfd[1], out, (size_t)n) != n)
            _exit(2);
        policy_engine_free(x);
        _exit(0);
    }
    close(pfd[1]);
    char buf[256] = "";
    ssize_t n = 0, k;
    while ((k = read(pfd[0], buf + n, sizeof(buf) - 1 - (size_t)n)) > 0)
        n += k;
    close(pfd[0]);
    int status;
    waitpid(pid, &status, 0);
    char want[256];
    snprintf(want, sizeof(want), "1 valid redis shared1 %lld 0", (long long)fetched);
    assert_string_equal(buf, want);

    /* the fetch lock: another sensor holds it, this one waits for Redis */
    assert_int_equal(rcache_lock(rc, "multi.example"), SW_OK);
    base_cfg(&c);
    c.redis_url = g_redis_url;
    e = engine(&c);
    struct policy_answer a;
    memset(&g, 0, sizeof(g));
    assert_int_equal(policy_lookup(e, "multi.example", on_answer, &g, &a), SW_AGAIN);
    const struct policy_stats *st = policy_engine_stats(e);
    run_until(e, &st->lock_waits, 1);
    policy_engine_run(e, 300);
    assert_int_equal(g.calls, 0);
    const char *mtext = "version: STSv1\nmode: testing\nmx: from.redis.example\nmax_age: 600\n";
    assert_int_equal(rcache_put(rc, "multi.example", "multi2", mtext, time(NULL), 600), SW_OK);
    for (int i = 0; i < 50 && !g.calls; i++)
        policy_engine_run(e, 100);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.status, POLICY_ST_VALID);
    assert_int_equal(g.source, POLICY_SRC_REDIS);
    assert_string_equal(g.mx[0], "from.redis.example");
    assert_int_equal(st->fetches, 0);
    rcache_unlock(rc, "multi.example");
    policy_engine_free(e);
    rcache_free(rc);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = 0;
    fclose(f);
    return strdup(buf);
}

static void test_snapshot_round_trip(void **state)
{
    (void)state;
    struct policy_cfg c;
    base_cfg(&c);
    struct policy_engine *e = engine(&c);
    struct got g1, g2;
    lookup(e, "valid.example", &g1);
    lookup(e, "cname.example", &g2);
    lookup(e, "notfound.example", &g2); /* failures are not saved */
    char p1[700], p2[700], err[512];
    snprintf(p1, sizeof(p1), "%s/snap1.json", g_dir);
    snprintf(p2, sizeof(p2), "%s/snap2.json", g_dir);
    assert_int_equal(policy_engine_save(e, p1, err, sizeof(err)), SW_OK);
    policy_engine_free(e);

    policy_cfg_defaults(&c); /* offline, no network */
    c.fetch = false;
    c.policy_file = p1;
    e = engine(&c);
    struct got g;
    assert_int_equal(lookup(e, "valid.example", &g), SW_OK);
    assert_int_equal(g.status, POLICY_ST_VALID);
    assert_int_equal(g.source, POLICY_SRC_FILE);
    assert_string_equal(g.id, "valid1");
    assert_int_equal(g.fetched_at, g1.fetched_at);
    assert_string_equal(g.mx[1], "*.mx.valid.example");
    assert_int_equal(lookup(e, "cname.example", &g), SW_OK);
    assert_int_equal(g.mode, MTASTS_MODE_TESTING);
    assert_int_equal(lookup(e, "notfound.example", &g), SW_OK);
    assert_int_equal(g.status, POLICY_ST_UNKNOWN);
    assert_string_equal(g.detail, "offline: no policy in file or cache");
    const struct policy_stats *st = policy_engine_stats(e);
    assert_int_equal(st->file_loaded, 2);
    assert_int_equal(st->hits_file, 2);
    assert_int_equal(policy_engine_save(e, p2, err, sizeof(err)), SW_OK);
    policy_engine_free(e);
    char *a = slurp(p1), *b = slurp(p2);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, b);
    assert_non_null(strstr(a, "\"valid.example\""));
    free(a);
    free(b);
}

/* One fetch at a time: the others wait in the queue (counted) and all end. */
static void test_bounded_concurrency(void **state)
{
    (void)state;
    struct policy_cfg c;
    base_cfg(&c);
    c.max_concurrent = 1;
    struct policy_engine *e = engine(&c);
    const char *doms[] = {"valid.example", "cname.example", "multi.example"};
    struct got g[3];
    struct policy_answer a;
    memset(g, 0, sizeof(g));
    for (int i = 0; i < 3; i++)
        assert_int_equal(policy_lookup(e, doms[i], on_answer, &g[i], &a), SW_AGAIN);
    for (int i = 0; i < 300 && !(g[0].calls && g[1].calls && g[2].calls); i++)
        policy_engine_run(e, 100);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(g[i].calls, 1);
        assert_int_equal(g[i].status, POLICY_ST_VALID);
    }
    const struct policy_stats *st = policy_engine_stats(e);
    assert_int_equal(st->fetches, 3);
    assert_int_equal(st->fetch_ok, 3);
    assert_int_equal(st->fetch_throttled, 2);
    policy_engine_free(e);
}

/* Callbacks may look domains up again; a record whose callbacks run is never
 * evicted (here the cache holds one domain). */
struct nested {
    struct policy_engine *e;
    int calls, same_rc, other_rc;
    enum policy_status same_st, other_st;
    char other_detail[200];
};

static void on_nested(void *arg, const char *domain, const struct policy_answer *a)
{
    struct nested *n = arg;
    n->calls++;
    (void)a;
    struct policy_answer b;
    n->same_rc = policy_lookup(n->e, domain, on_nested, n, &b);
    n->same_st = b.status;
    n->other_rc = policy_lookup(n->e, "valid.example", on_nested, n, &b);
    n->other_st = b.status;
    snprintf(n->other_detail, sizeof(n->other_detail), "%s", b.detail);
}

static void test_reentrant_callback(void **state)
{
    (void)state;
    struct policy_cfg c;
    base_cfg(&c);
    c.cache_max = 1;
    c.neg_cache_max = 1;
    struct policy_engine *e = engine(&c);
    struct nested n = {.e = e};
    struct policy_answer a;
    assert_int_equal(policy_lookup(e, "nosuch.example", on_nested, &n, &a), SW_AGAIN);
    for (int i = 0; i < 300 && !n.calls; i++)
        policy_engine_run(e, 100);
    assert_int_equal(n.calls, 1);
    assert_int_equal(n.same_rc, SW_OK); /* the negative answer, at once */
    assert_int_equal(n.same_st, POLICY_ST_NONE);
    assert_int_equal(n.other_rc, SW_OK);
    assert_int_equal(n.other_st, POLICY_ST_UNKNOWN);
    assert_string_equal(n.other_detail, "policy cache full of lookups in flight");
    assert_int_equal(policy_engine_stats(e)->cache_full, 1);
    /* outside callbacks the idle record is evicted for the new domain */
    struct got g;
    lookup(e, "valid.example", &g);
    assert_int_equal(g.status, POLICY_ST_VALID);
    assert_int_equal(policy_engine_stats(e)->evicted, 1);
    policy_engine_free(e);
}

/* A resolver that does not answer: the lookup ends within dns_timeout_ms as
 * a DNS failure (UNKNOWN), counted. */
static void test_dns_unreachable(void **state)
{
    (void)state;
    struct policy_cfg c;
    base_cfg(&c);
    char srv[64];
    snprintf(srv, sizeof(srv), "127.0.0.1@%d", test_pick_port());
    c.dns_server = srv;
    c.dns_timeout_ms = 1500;
    struct policy_engine *e = engine(&c);
    struct got g;
    lookup(e, "valid.example", &g);
    assert_int_equal(g.status, POLICY_ST_UNKNOWN);
    assert_true(!strncmp(g.detail, "DNS TXT _mta-sts.valid.example: ", 32));
    assert_int_equal(policy_engine_stats(e)->dns_errors, 1);
    policy_engine_free(e);
}

/* Bounds with a resolver that never answers (a UDP socket the test holds
 * open and never reads): lookups past max_pending are dropped at once, the
 * rest queue behind dns_max_in_flight; dns_dead_after timeouts in a row put
 * the resolver down (every lookup still under way answered UNKNOWN, no
 * query), and a flood of negative answers never pushes out a policy loaded
 * from the file. Every counter is exact. */
static void test_bounds_dns_down(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_true(fd >= 0 && !bind(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
                !getsockname(fd, (struct sockaddr *)&sa, &sl));
    char srv[64], p[700], body[600], at[32];
    snprintf(srv, sizeof(srv), "127.0.0.1@%d", ntohs(sa.sin_port));
    snprintf(p, sizeof(p), "%s/bounds.json", g_dir);
    snapshot_time_format((int64_t)time(NULL), at);
    snprintf(body, sizeof(body),
             "{\"kept.example\": {\"id\": \"k1\", \"policy\": \"version: STSv1\\nmode: "
             "enforce\\nmx: mx.kept.example\\nmax_age: 86400\\n\", \"fetched_at\": \"%s\"}}\n",
             at);
    write_file(p, body);
    struct policy_cfg c;
    base_cfg(&c);
    c.dns_server = srv;
    c.policy_file = p;
    c.cache_max = 1;
    c.neg_cache_max = 10;
    c.max_pending = 10;
    c.dns_max_in_flight = 4;
    c.dns_dead_after = 2;
    c.dns_timeout_ms = 500;
    c.dns_backoff_min_s = 60;
    struct policy_engine *e = engine(&c);
    const struct policy_stats *st = policy_engine_stats(e);
    assert_int_equal(st->file_loaded, 1);
    struct got g[20];
    char name[64];
    for (int i = 0; i < 20; i++) {
        memset(&g[i], 0, sizeof(g[i]));
        snprintf(name, sizeof(name), "d%d.flood.example", i);
        struct policy_answer a;
        int rc = policy_lookup(e, name, on_answer, &g[i], &a);
        assert_int_equal(rc, i < 10 ? SW_AGAIN : SW_OK);
        if (rc == SW_OK) {
            assert_int_equal(a.status, POLICY_ST_UNKNOWN);
            assert_string_equal(a.detail, "too many policy lookups under way");
        }
    }
    assert_int_equal(st->lookups_dropped, 10);
    for (int i = 0; i < 100; i++) {
        size_t done = 0;
        for (int k = 0; k < 10; k++)
            done += (size_t)g[k].calls;
        if (done == 10)
            break;
        policy_engine_run(e, 100);
    }
    /* 4 sent, 6 queued; the second timeout puts the resolver down and
     * answers the other 8 */
    assert_int_equal(st->dns_queued_peak, 6);
    assert_int_equal(st->dns_timeouts, 2);
    assert_int_equal(st->dns_errors, 2);
    assert_int_equal(st->dns_resolver_down, 1);
    assert_int_equal(st->dns_down, 1);
    assert_int_equal(st->dns_skipped, 8);
    /* 4 at once; one or two more when a slot freed between the two
     * timeouts (their deadlines may fall in different milliseconds) */
    assert_in_range(st->dns_queries, 4, 6);
    size_t timed_out = 0, skipped = 0;
    for (int k = 0; k < 10; k++) {
        assert_int_equal(g[k].calls, 1);
        assert_int_equal(g[k].status, POLICY_ST_UNKNOWN);
        snprintf(name, sizeof(name), "DNS TXT _mta-sts.d%d.flood.example: timed out", k);
        if (!strcmp(g[k].detail, name))
            timed_out++;
        else if (!strncmp(g[k].detail, "DNS resolver ", 13) &&
                 strstr(g[k].detail, " not answering (2 queries in a row timed out); retried in "))
            skipped++;
        else
            fail_msg("d%d: %s", k, g[k].detail);
    }
    assert_int_equal(timed_out, 2);
    assert_int_equal(skipped, 8);
    /* while it is down: 20 more domains answered at once, each pushing an
     * older negative answer out; the loaded policy stays */
    for (int i = 20; i < 40; i++) {
        struct got h;
        snprintf(name, sizeof(name), "d%d.flood.example", i);
        assert_int_equal(lookup(e, name, &h), SW_AGAIN);
        assert_int_equal(h.status, POLICY_ST_UNKNOWN);
    }
    assert_int_equal(st->dns_skipped, 28);
    assert_int_equal(st->neg_evicted, 20);
    assert_int_equal(st->evicted, 20);
    assert_int_equal(st->cache_full, 0);
    struct got k;
    assert_int_equal(lookup(e, "kept.example", &k), SW_OK);
    assert_int_equal(k.status, POLICY_ST_VALID);
    assert_int_equal(k.source, POLICY_SRC_FILE);
    assert_int_equal(st->hits_file, 1);
    assert_int_equal(st->dns_timeouts, 2);
    policy_engine_free(e);
    close(fd);
}

/* Redis away: the engine fetches on its own and counts the failures. */
static void test_redis_down(void **state)
{
    (void)state;
    struct policy_cfg c;
    base_cfg(&c);
    char u[64];
    int dead = test_pick_port();
    snprintf(u, sizeof(u), "redis://127.0.0.1:%d", dead);
    c.redis_url = u;
    struct policy_engine *e = engine(&c);
    struct got g;
    lookup(e, "valid.example", &g);
    assert_int_equal(g.status, POLICY_ST_VALID);
    assert_int_equal(g.source, POLICY_SRC_HTTPS);
    const struct policy_stats *st = policy_engine_stats(e);
    assert_int_equal(st->fetch_ok, 1);
    assert_true(st->redis_errors >= 1);
    policy_engine_free(e);
}

/* A bad entry in the policy file is reported and skipped; a file that does
 * not load stops the engine with the file's own message. */
static void test_policy_file_errors(void **state)
{
    (void)state;
    char p[700], err[512];
    snprintf(p, sizeof(p), "%s/mixed.json", g_dir);
    write_file(p, "{\"good.example\": {\"id\": \"g1\", \"policy\": \"version: STSv1\\nmode: "
                  "enforce\\nmx: mx.good.example\\nmax_age: 86400\\n\", \"fetched_at\": "
                  "\"2026-11-20T08:00:00Z\"},\n \"bad.example\": {\"id\": \"b1\", \"policy\": "
                  "\"version: STSv1\\nmode: enforce\\nmax_age: 86400\\n\", \"fetched_at\": "
                  "\"2026-11-20T08:00:00Z\"}}\n");
    struct policy_cfg c;
    policy_cfg_defaults(&c);
    c.fetch = false;
    c.policy_file = p;
    struct policy_engine *e = engine(&c);
    const struct policy_stats *st = policy_engine_stats(e);
    assert_int_equal(st->file_loaded, 1);
    assert_int_equal(st->file_rejected, 1);
    struct got g;
    /* judged on the wall clock (no capture time given): expired since
     * 2026-11-21, still judged with (RFC 8461 §5.1) */
    assert_int_equal(lookup(e, "good.example", &g), SW_OK);
    assert_int_equal(g.status, POLICY_ST_EXPIRED);
    policy_engine_set_time(e, true, 1795161600 + 3600); /* capture time, an hour later */
    assert_int_equal(lookup(e, "good.example", &g), SW_OK);
    assert_int_equal(g.status, POLICY_ST_VALID);
    assert_int_equal(g.source, POLICY_SRC_FILE);
    assert_int_equal(g.fetched_at, 1795161600); /* 2026-11-20T08:00:00Z */
    assert_int_equal(lookup(e, "bad.example", &g), SW_OK);
    assert_int_equal(g.status, POLICY_ST_UNKNOWN);
    policy_engine_free(e);

    snprintf(p, sizeof(p), "%s/missing.json", g_dir);
    c.policy_file = p;
    err[0] = 0;
    assert_null(policy_engine_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "missing.json"));
    assert_non_null(strstr(err, "No such file or directory"));
}

/* One entry of a policy file: dom's policy (mode line as given: "" leaves
 * it out), mx mx.DOM, fetched at at. */
static const char *reload_entry(char *buf, size_t len, const char *dom, const char *id,
                                const char *mode, const char *at)
{
    snprintf(buf, len,
             "\"%s\": {\"id\": \"%s\", \"policy\": \"version: STSv1\\n%smx: mx.%s\\nmax_age: "
             "604800\\n\", \"fetched_at\": \"%s\"}",
             dom, id, mode, dom, at);
    return buf;
}

/* SIGHUP's reload (policy_engine_reload_file): the policies of the file
 * whose domain is gone from the new file, or whose entry it rejects, are
 * dropped, also while a refresh of one is in flight, and those domains are
 * looked up again; fetched policies and the kept domain stay; a file that
 * does not load drops nothing. */
static void test_policy_file_reload(void **state)
{
    (void)state;
    char a[700], b[700], bad[700], err[512], at[32], text[2048];
    snprintf(a, sizeof(a), "%s/reload-a.json", g_dir);
    snprintf(b, sizeof(b), "%s/reload-b.json", g_dir);
    snprintf(bad, sizeof(bad), "%s/reload-bad.json", g_dir);
    snapshot_time_format(time(NULL) - 60, at);
    char e1[400], e2[400], e3[400];
    snprintf(text, sizeof(text), "{%s,\n%s,\n%s}\n",
             reload_entry(e1, sizeof(e1), "valid.example", "file1", "mode: enforce\\n", at),
             reload_entry(e2, sizeof(e2), "keep.example", "k1", "mode: enforce\\n", at),
             reload_entry(e3, sizeof(e3), "gone.example", "g1", "mode: enforce\\n", at));
    write_file(a, text);
    struct policy_cfg c;
    base_cfg(&c);
    c.policy_file = a;
    struct policy_engine *e = engine(&c);
    const struct policy_stats *st = policy_engine_stats(e);
    assert_int_equal(st->file_loaded, 3);
    struct got g;
    assert_int_equal(lookup(e, "cname.example", &g), SW_AGAIN);
    assert_int_equal(g.source, POLICY_SRC_HTTPS);
    /* a hit on a loaded policy starts its TXT re-check: in flight below */
    assert_int_equal(lookup(e, "valid.example", &g), SW_OK);
    assert_int_equal(g.source, POLICY_SRC_FILE);
    assert_string_equal(g.id, "file1");

    /* valid.example gone, gone.example's entry rejected (mode missing) */
    snprintf(text, sizeof(text), "{%s,\n%s}\n",
             reload_entry(e1, sizeof(e1), "keep.example", "k1", "mode: enforce\\n", at),
             reload_entry(e2, sizeof(e2), "gone.example", "g2", "", at));
    write_file(b, text);
    size_t dropped = 99;
    assert_int_equal(policy_engine_reload_file(e, b, &dropped, err, sizeof(err)), SW_OK);
    assert_int_equal(dropped, 2);
    assert_int_equal(st->file_dropped, 2);
    assert_int_equal(st->file_loaded, 4);
    assert_int_equal(st->file_rejected, 1);
    /* the refresh in flight goes on and installs what is served */
    assert_int_equal(lookup(e, "valid.example", &g), SW_AGAIN);
    assert_int_equal(g.status, POLICY_ST_VALID);
    assert_int_equal(g.source, POLICY_SRC_HTTPS);
    assert_string_equal(g.id, "valid1");
    assert_int_equal(lookup(e, "gone.example", &g), SW_AGAIN);
    assert_int_equal(g.status, POLICY_ST_NONE);
    assert_string_equal(g.detail, "no MTA-STS TXT record at _mta-sts.gone.example");
    assert_int_equal(lookup(e, "keep.example", &g), SW_OK);
    assert_int_equal(g.status, POLICY_ST_VALID);
    assert_int_equal(g.source, POLICY_SRC_FILE);
    assert_string_equal(g.id, "k1");
    uint64_t fetches = st->fetches;
    assert_int_equal(lookup(e, "cname.example", &g), SW_OK);
    assert_int_equal(g.source, POLICY_SRC_HTTPS);

    /* files that do not load: nothing dropped, the error named */
    write_file(bad, "{\"keep.example\": ");
    dropped = 99;
    assert_int_equal(policy_engine_reload_file(e, bad, &dropped, err, sizeof(err)), SW_EPROTO);
    assert_int_equal(dropped, 0);
    char want[900];
    snprintf(want, sizeof(want), "%s: line 1, column 17: not valid JSON: ", bad);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("err: %s\nwant it to start with: %s", err, want);
    char missing[700];
    snprintf(missing, sizeof(missing), "%s/reload-missing.json", g_dir);
    assert_int_equal(policy_engine_reload_file(e, missing, &dropped, err, sizeof(err)), SW_EIO);
    assert_int_equal(dropped, 0);
    snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", missing);
    assert_string_equal(err, want);
    assert_int_equal(st->file_dropped, 2);
    assert_int_equal(lookup(e, "keep.example", &g), SW_OK);
    assert_int_equal(g.source, POLICY_SRC_FILE);

    /* an empty file drops the last one; the fetched policies stay */
    write_file(b, "{}\n");
    assert_int_equal(policy_engine_reload_file(e, b, &dropped, err, sizeof(err)), SW_OK);
    assert_int_equal(dropped, 1);
    assert_int_equal(st->file_dropped, 3);
    assert_int_equal(lookup(e, "valid.example", &g), SW_OK);
    assert_int_equal(g.source, POLICY_SRC_HTTPS);
    assert_int_equal(lookup(e, "cname.example", &g), SW_OK);
    assert_int_equal(g.source, POLICY_SRC_HTTPS);
    assert_int_equal(st->fetches, fetches);
    assert_int_equal(lookup(e, "keep.example", &g), SW_AGAIN);
    assert_int_equal(g.status, POLICY_ST_NONE);
    policy_engine_free(e);
}

/* `stripwatch policy DOMAIN`: exit code and key lines. Runs
 * policy_cli_main() in a forked child (stdout and stderr to a pipe), or the
 * built binary when binary is true. */
static int run_cli(bool binary, const char *domain, bool allow_private, char *out, size_t outlen)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", g_https);
    char bin[600];
    snprintf(bin, sizeof(bin), "%s/stripwatch", SW_BINARY_DIR);
    char *argv[] = {bin, "policy", (char *)domain, "--dns-server", g_dns_server, "--ca-file", g_ca,
                    "--https-port", port,
                    /* the lab's resolver serves no DNSSEC data: TLSA
                       checks are tested in tests/dane */
                    "--no-dane", allow_private ? "--allow-private-policy-hosts" : NULL, NULL};
    int argc = allow_private ? 11 : 10;
    /* the child runs the CLI, which starts threads: fork only once the
     * DNS reapers of the engines freed before (pdns_free leaves them to
     * finish, dns.c) are gone, so that no thread of this process is
     * half-way through its end in the child (ThreadSanitizer aborts then;
     * its own runtime thread is counted in extra_threads) */
    size_t one = 1 + extra_threads();
    for (int i = 0; i < 1000 && task_count(getpid()) > one; i++)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    if (task_count(getpid()) != one)
        fail_msg("after 10 s the test has %zu threads, not %zu: the CLI must fork from one",
                 task_count(getpid()), one);
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        close(pfd[1]);
        if (binary) {
            execv(bin, argv);
            _exit(127);
        }
        int code = policy_cli_main(argc - 1, argv + 1);
        fflush(stdout);
        _exit(code);
    }
    close(pfd[1]);
    size_t n = 0;
    ssize_t k;
    while ((k = read(pfd[0], out + n, outlen - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = 0;
    close(pfd[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(void **state)
{
    (void)state;
    static char out[65536];
    char line[400];
    assert_int_equal(run_cli(false, "valid.example", true, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "TXT _mta-sts.valid.example: \"v=STSv1; id=valid1;\"\n"));
    snprintf(line, sizeof(line),
             "  url: https://mta-sts.valid.example:%d/.well-known/mta-sts.txt\n", g_https);
    assert_non_null(strstr(out, line));
    snprintf(line, sizeof(line), "  pinned address: 127.0.0.1:%d\n", g_https);
    assert_non_null(strstr(out, line));
    assert_non_null(strstr(out, "  tls: TLSv1.3\n"));
    assert_non_null(strstr(out, "  status: 200\n"));
    assert_non_null(strstr(out, "  content-type: text/plain\n"));
    assert_non_null(strstr(out, "  bytes: 91\n"));
    assert_non_null(strstr(out, "  mode: enforce\n"));
    assert_non_null(strstr(out, "  mx: *.mx.valid.example\n"));
    assert_non_null(strstr(out, "PASS §3.1 exactly one STSv1 TXT record\n"));
    assert_non_null(strstr(out, "PASS §3.2 policy syntax\n"));
    assert_non_null(strstr(out, "MX valid.example: 10 mail.valid.example\n"));
    assert_non_null(strstr(out, "PASS §4.1 MX mail.valid.example matches the policy's mx "
                                "patterns\n"));
    assert_non_null(strstr(out, "PASS §4.1 MX a.mx.valid.example matches the policy's mx "
                                "patterns\n"));
    assert_non_null(strstr(out, "PASS TLSRPT§3 TLS-RPT record syntax (2 rua URIs)\n"));
    assert_non_null(
        strstr(out, "SKIP DANE§2.2 TLSA records of the MX hosts not checked (--no-dane)\n"));
    assert_null(strstr(out, "FAIL"));
    assert_non_null(strstr(out, "result: valid policy published (mode enforce, id valid1)\n"));

    /* a valid policy whose MX host it does not cover is a failure */
    assert_int_equal(run_cli(false, "multi.example", true, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "PASS §3.2 policy syntax\n"));
    assert_non_null(strstr(out, "MX multi.example: 10 mx.elsewhere.example\n"));
    assert_non_null(strstr(out, "FAIL TLSRPT§3 TLS-RPT record syntax: no rua field\n"));
    assert_non_null(strstr(out, "FAIL §4.1 MX mx.elsewhere.example matches none of the policy's "
                                "mx patterns (senders that enforce the policy will not deliver "
                                "there)\n"));
    assert_non_null(strstr(out, "result: policy published (mode enforce, id multi2) but MX hosts "
                                "are not covered by its mx patterns\n"));

    assert_int_equal(run_cli(false, "redirect.example", true, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "  status: 301\n"));
    assert_non_null(strstr(out, "FAIL §3.3 HTTP status 200 without redirect: redirect refused "
                                "(HTTP 301)\n"));
    assert_int_equal(run_cli(false, "valid.example", false, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "FAIL §7 policy host address is public: 127.0.0.1 is a loopback "
                                "address (use --allow-private-policy-hosts)\n"));
    assert_int_equal(run_cli(false, "nosuch.example", true, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "FAIL §3.1 exactly one STSv1 TXT record: none found\n"));
    assert_int_equal(run_cli(false, "twotxt.example", true, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "FAIL §3.1 exactly one STSv1 TXT record: 2 found\n"));
    assert_int_equal(run_cli(false, "expired.example", true, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "FAIL §3.3 HTTPS with a certificate valid for "
                                "mta-sts.expired.example: SSL certificate problem: certificate "
                                "has expired\n"));
    assert_int_equal(run_cli(false, "badtype.example", true, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "FAIL §3.3 media type text/plain: content type \"text/html\" is "
                                "not text/plain\n"));
    assert_int_equal(run_cli(false, "invalid.example", true, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "FAIL §3.2 policy syntax: mx field missing (required when mode "
                                "is enforce)\n"));
    /* a repeated field: the first value wins, and the report says so */
    assert_int_equal(run_cli(false, "dup.example", true, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "NOTE §3.2 line 3: repeated mode ignored (the first, on line 2, "
                                "wins)\n"));
    assert_non_null(strstr(out, "  mode: testing\n"));
    assert_non_null(strstr(out, "NOTE TLSRPT§3 no TLS-RPT record: failures to deliver with TLS "
                                "are not reported to the domain (RFC 8460)\n"));
    assert_int_equal(run_cli(false, "Bad_Domain..example", true, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "stripwatch policy: domain \"Bad_Domain..example\": "));
}

/* IPv6 policy hosts (bracketed pin), and the next address when connecting
 * to the first fails (127.0.0.2 refuses, ::1 serves). */
static void test_ipv6_and_fallback(void **state)
{
    (void)state;
    char p[700];
    snprintf(p, sizeof(p), "%s/ipv6", g_dir);
    FILE *f = fopen(p, "r");
    int v6 = 0;
    if (f) {
        if (fscanf(f, "%d", &v6) != 1)
            v6 = 0;
        fclose(f);
    }
    if (!v6) {
        fprintf(stderr, "test_policy_net: test_ipv6_and_fallback: skipped: no IPv6 loopback "
                        "(::1 on lo) on this host\n");
        skip();
    }
    struct policy_cfg c;
    base_cfg(&c);
    struct policy_engine *e = engine(&c);
    struct got g;
    lookup(e, "v6.example", &g);
    assert_int_equal(g.status, POLICY_ST_VALID);
    assert_string_equal(g.mx[0], "mx.v6.example");
    lookup(e, "fallback.example", &g);
    assert_int_equal(g.status, POLICY_ST_VALID);
    assert_string_equal(g.mx[0], "mx.fallback.example");
    const struct policy_stats *st = policy_engine_stats(e);
    assert_int_equal(st->fetches, 2);
    assert_int_equal(st->fetch_ok, 2);
    policy_engine_free(e);

    static char out[65536];
    char line[200];
    assert_int_equal(run_cli(false, "v6.example", true, out, sizeof(out)), 0);
    snprintf(line, sizeof(line), "  pinned address: [::1]:%d\n", g_https);
    assert_non_null(strstr(out, line));
    assert_int_equal(run_cli(false, "fallback.example", true, out, sizeof(out)), 0);
    snprintf(line, sizeof(line), "connect: 127.0.0.2:%d: ", g_https);
    assert_non_null(strstr(out, line));
    snprintf(line, sizeof(line), "  pinned address: [::1]:%d\n", g_https);
    assert_non_null(strstr(out, line));
}

/* The same through the sensor binary, when it is built. */
static void test_cli_binary(void **state)
{
    (void)state;
    char bin[600];
    snprintf(bin, sizeof(bin), "%s/stripwatch", SW_BINARY_DIR);
    struct stat sb;
    if (stat(bin, &sb)) {
        fprintf(stderr,
                "test_policy_net: test_cli_binary: skipped: stripwatch binary not built: %s\n",
                bin);
        skip();
    }
    static char out[65536];
    assert_int_equal(run_cli(true, "valid.example", true, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "result: valid policy published (mode enforce, id valid1)\n"));
    assert_int_equal(run_cli(true, "notfound.example", true, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "FAIL §3.3 HTTP status 200 without redirect: HTTP 404\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_cname_and_multistring),
        cmocka_unit_test(test_no_txt_and_two_txt),
        cmocka_unit_test(test_404),
        cmocka_unit_test(test_redirect_refused),
        cmocka_unit_test(test_wrong_content_type),
        cmocka_unit_test(test_body_too_big),
        cmocka_unit_test(test_expired_cert),
        cmocka_unit_test(test_wrong_name_cert),
        cmocka_unit_test(test_trickle_timeout),
        cmocka_unit_test(test_invalid_policy),
        cmocka_unit_test(test_private_address_refused),
        cmocka_unit_test(test_id_change_refetch),
        cmocka_unit_test(test_refresh_before_expiry),
        cmocka_unit_test(test_redis_shared),
        cmocka_unit_test(test_snapshot_round_trip),
        cmocka_unit_test(test_redis_down),
        cmocka_unit_test(test_dns_unreachable),
        cmocka_unit_test(test_bounds_dns_down),
        cmocka_unit_test(test_reentrant_callback),
        cmocka_unit_test(test_bounded_concurrency),
        cmocka_unit_test(test_policy_file_errors),
        cmocka_unit_test(test_policy_file_reload),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_cli_binary),
        cmocka_unit_test(test_ipv6_and_fallback),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, lab_up, lab_down);
}
