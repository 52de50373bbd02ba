/* SPDX-License-Identifier: Apache-2.0 */
/* test_blind.c: the stripwatch binary when it cannot see everything: health
 * records (start, stop, a bound that evicts, at most one per 10 s of capture
 * time), bad input (snap length, link type) named on stderr with exit codes,
 * alerts left in the spool at exit (Redis down; Redis LOADING retried), and
 * a recipient-domain flood with a resolver that never answers (a UDP socket
 * the test holds open): the loaded policy still raises its enforce alert and
 * the run ends, by itself or on SIGTERM, within a generous deadline.
 * Captures are generated here (gen.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "gen.h"
#include "runbin.h"
#include "test_redis_server.h"

#define STRIP_PCAP SW_SOURCE_DIR "/pcaps/mitm-strip-sender-side.pcap"
#define STRIP_POL  SW_SOURCE_DIR "/pcaps/policies.json"
#define T0         (1700000000LL * 1000000) /* 2023-11-14T22:13:20Z */

static char *tmp;

static char *tpath(const char *name)
{
    static char buf[8][4096];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmp, name);
    return buf[i];
}

static int setup(void **state)
{
    (void)state;
    tmp = temp_dir();
    return tmp ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    rm_rf(tmp);
    tmp = NULL;
    return 0;
}

/* One cleartext delivery to victim.example (banner mx.victim.example). */
static void victim_session(struct gen *g)
{
    const char *v[] = {"victim.example"};
    gen_smtp_session(g, 0x0b000001u, 40000, 0xc000021au, "mx.victim.example", v, 1);
}

/* A valid enforce policy for victim.example, fetched now. */
static char *victim_policy(void)
{
    char at[32], body[600];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(body, sizeof(body),
             "{\"victim.example\": {\"id\": \"v1\", \"policy\": \"version: STSv1\\nmode: "
             "enforce\\nmx: mx.victim.example\\nmax_age: 604800\\n\", \"fetched_at\": \"%s\"}}\n",
             at);
    char *p = tpath("policies.json");
    assert_true(spit(p, body, strlen(body)));
    return p;
}

static size_t count_str(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* ---- health records ---- */

#define HEALTH_HEAD "\"event\":{\"kind\":\"state\",\"dataset\":\"stripwatch.health\",\"action\":"
#define HEALTH_OBS                                                                                 \
    "\"observer\":{\"name\":\"sensor-1\",\"type\":\"sensor\",\"vendor\":\"stripwatch\","           \
    "\"product\":\"stripwatch\",\"version\":\"" SW_VERSION                                         \
    "\"},\"stripwatch\":{\"version\":\"" SW_VERSION "\",\"severity_name\":"

/* 30 idle banner sessions one second apart, then a delivery, with
 * --max-flows 10: a flow (an idle SMTP session: evicted_session too) is
 * evicted every second from the 11th on, and the records say so at most once per 10 s of capture
 * time, exactly. */
static void test_health_eviction(void **state)
{
    (void)state;
    struct gen g;
    char *pcap = tpath("idle.pcap");
    assert_true(gen_open(&g, pcap, 262144, 1, T0));
    for (uint32_t i = 0; i < 30; i++) {
        gen_idle_session(&g, 0x0a000001u + i, (uint16_t)(20000 + i), 0xc0000219u);
        g.ts += 1000000;
    }
    victim_session(&g);
    assert_true(gen_close(&g));
    char *al = tpath("alerts.json");
    char *argv[] = {
        STRIPWATCH,        "-q",       "-r", pcap, "--max-flows", "10", "--alerts-out", al,
        "--observer-name", "sensor-1", NULL};
    struct run_out r;
    run(tmp, argv, NULL, 60, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    size_t len;
    char *got = slurp(al, &len);
    const char *want =
        "{\"@timestamp\":\"2023-11-14T22:13:20.000010Z\"," HEALTH_HEAD
        "\"sensor-started\",\"severity\":1,\"module\":\"stripwatch\"}," HEALTH_OBS
        "\"low\",\"health\":{\"state\":\"start\",\"clock\":\"capture\",\"since\":\"2023-11-14T22:"
        "13:20.000010Z\",\"data_lost\":false,\"counters\":{}}}}\n"
        "{\"@timestamp\":\"2023-11-14T22:13:31.000670Z\"," HEALTH_HEAD
        "\"data-lost\",\"severity\":3,\"module\":\"stripwatch\"}," HEALTH_OBS
        "\"high\",\"health\":{\"state\":\"running\",\"clock\":\"capture\",\"since\":\"2023-11-"
        "14T22:"
        "13:20.000010Z\",\"data_lost\":true,\"counters\":{\"flows.evicted\":{\"delta\":1,"
        "\"total\":1},\"flows.evicted_session\":{\"delta\":1,\"total\":1}}}}}\n"
        "{\"@timestamp\":\"2023-11-14T22:13:41.001270Z\"," HEALTH_HEAD
        "\"data-lost\",\"severity\":3,\"module\":\"stripwatch\"}," HEALTH_OBS
        "\"high\",\"health\":{\"state\":\"running\",\"clock\":\"capture\",\"since\":\"2023-11-"
        "14T22:"
        "13:31.000670Z\",\"data_lost\":true,\"counters\":{\"flows.evicted\":{\"delta\":10,"
        "\"total\":11},\"flows.evicted_session\":{\"delta\":10,\"total\":11}}}}}\n"
        "{\"@timestamp\":\"2023-11-14T22:13:50.001990Z\"," HEALTH_HEAD
        "\"sensor-stopped\",\"severity\":3,\"module\":\"stripwatch\"}," HEALTH_OBS
        "\"high\",\"health\":{\"state\":\"stop\",\"clock\":\"capture\",\"since\":\"2023-11-14T22:"
        "13:41.001270Z\",\"data_lost\":true,\"counters\":{\"flows.evicted\":{\"delta\":10,"
        "\"total\":21},\"flows.evicted_session\":{\"delta\":10,\"total\":21}}}}}\n";
    assert_string_equal(got, want);
    free(got);
    run_free(&r);
}

/* Nothing lost: a start and a stop record around the alerts, nothing else. */
static void test_health_start_stop(void **state)
{
    (void)state;
    char *al = tpath("alerts-clean.json");
    char *argv[] = {STRIPWATCH, "-q",           "-r", STRIP_PCAP,        "--policy-file",
                    STRIP_POL,  "--alerts-out", al,   "--observer-name", "sensor-1",
                    NULL};
    struct run_out r;
    run(tmp, argv, NULL, 60, &r);
    assert_int_equal(r.status, 0);
    size_t len;
    char *got = slurp(al, &len);
    /* start, starttls.stripped, delivery.plaintext_policy, stop */
    assert_int_equal(count_str(got, "\n"), 4);
    assert_true(!strncmp(got,
                         "{\"@timestamp\":\"2026-11-22T17:30:09.606785Z\"," HEALTH_HEAD
                         "\"sensor-started\",\"severity\":1,",
                         130));
    assert_non_null(strstr(got, "\"action\":\"starttls-stripped\""));
    assert_non_null(
        strstr(got, "{\"@timestamp\":\"2026-11-22T17:30:09.716533Z\"," HEALTH_HEAD
                    "\"sensor-stopped\",\"severity\":1,\"module\":\"stripwatch\"}," HEALTH_OBS
                    "\"low\",\"health\":{\"state\":\"stop\",\"clock\":\"capture\","
                    "\"since\":\"2026-11-22T17:30:09.606785Z\",\"data_lost\":false,"
                    "\"counters\":{}}}}\n"));
    free(got);
    run_free(&r);
}

/* ---- bad input ---- */

static void test_snaplen_cuts_tcp(void **state)
{
    (void)state;
    struct gen g;
    char *pcap = tpath("snap60.pcap");
    assert_true(gen_open(&g, pcap, 60, 1, T0));
    g.tcp_ts = true; /* 14 + 20 + 32 = 66 bytes of headers */
    victim_session(&g);
    assert_true(gen_close(&g));
    char *argv[] = {STRIPWATCH, "-q", "-r", pcap, "--alerts-out", "/dev/null", NULL};
    struct run_out r;
    run(tmp, argv, NULL, 60, &r);
    char want[4500];
    snprintf(want, sizeof(want),
             "stripwatch: %s: snap length 60 cuts TCP headers: 19 of 19 TCP packets undecodable\n",
             pcap);
    assert_string_equal(r.err, want);
    assert_int_equal(r.status, 1);
    run_free(&r);

    /* headers whole, payload cut: decoded (exit 0), and said */
    pcap = tpath("snap96.pcap");
    assert_true(gen_open(&g, pcap, 96, 1, T0));
    victim_session(&g);
    assert_true(gen_close(&g));
    char *argv2[] = {STRIPWATCH, "-q", "-r", pcap, "--alerts-out", "/dev/null", NULL};
    run(tmp, argv2, NULL, 60, &r);
    snprintf(want, sizeof(want),
             "stripwatch: %s: snap length 96 cuts TCP payload: 1 of 19 TCP packets truncated "
             "(the missing bytes are gaps in their streams)\n",
             pcap);
    assert_string_equal(r.err, want);
    assert_int_equal(r.status, 0);
    run_free(&r);
}

static void test_unknown_linktype(void **state)
{
    (void)state;
    struct gen g;
    char *pcap = tpath("wifi.pcap");
    assert_true(gen_open(&g, pcap, 262144, 105, T0)); /* IEEE 802.11 */
    victim_session(&g);
    assert_true(gen_close(&g));
    /* with a good capture beside it: its alerts still come, the exit is 1 */
    char *al = tpath("alerts-lt.json");
    char *argv[] = {STRIPWATCH,      "-q",      "-r",           STRIP_PCAP, "-r", pcap,
                    "--policy-file", STRIP_POL, "--alerts-out", al,         NULL};
    struct run_out r;
    run(tmp, argv, NULL, 60, &r);
    char want[4500];
    snprintf(want, sizeof(want),
             "stripwatch: %s: link type 105 (IEEE802_11) not supported: 19 of 19 frames not "
             "decoded\n",
             pcap);
    assert_string_equal(r.err, want);
    assert_int_equal(r.status, 1);
    size_t len;
    char *got = slurp(al, &len);
    assert_int_equal(count_str(got, "\"action\":\"starttls-stripped\""), 1);
    free(got);
    run_free(&r);
}

/* ---- alerts left in the spool ---- */

static void test_spool_left_redis_down(void **state)
{
    (void)state;
    char url[64], *spool = tpath("down.spool");
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", test_pick_port());
    char *argv[] = {STRIPWATCH,     "-q",        "-r", STRIP_PCAP, "--policy-file",
                    STRIP_POL,      "--redis",   url,  "--spool",  spool,
                    "--alerts-out", "/dev/null", NULL};
    struct run_out r;
    run(tmp, argv, NULL, 60, &r);
    assert_int_equal(r.status, 1);
    char want[4500];
    /* the two alerts and the start and stop records */
    snprintf(want, sizeof(want), "stripwatch: 4 alerts not delivered, left in spool %s\n", spool);
    const char *last = strrchr(r.err, '\n');
    assert_non_null(last);
    while (last > r.err && last[-1] != '\n')
        last--;
    assert_string_equal(last, want);
    assert_int_equal(count_str(r.err, "\n"), 2); /* the outage, then the count */
    assert_non_null(strstr(r.err, "; alerts wait in spool "));
    run_free(&r);
}

/* Starts redis-server on srv's port and directory (its dump.rdb) loading
 * each key key_load_delay us late and answering clients every KB of the
 * load (the server's own key-load-delay and
 * loading-process-events-interval-bytes settings); returns once it answers
 * PING with LOADING. */
static void start_loading(struct test_redis *srv, const char *key_load_delay)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char port[16];
        snprintf(port, sizeof(port), "%d", srv->port);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("redis-server", "redis-server", "--bind", "127.0.0.1", "--port", port, "--dir",
               srv->dir, "--save", "", "--appendonly", "no", "--key-load-delay", key_load_delay,
               "--loading-process-events-interval-bytes", "1024", (char *)NULL);
        _exit(127);
    }
    srv->pid = pid; /* test_redis_stop/cleanup stop it */
    bool loading = false;
    for (int i = 0; i < 1000 && !loading; i++) {
        loading = test_sh("redis-cli -p %d PING 2>/dev/null | grep -q LOADING", srv->port);
        if (!loading) {
            struct timespec d = {0, 10 * 1000 * 1000};
            nanosleep(&d, NULL);
        }
    }
    assert_true(loading);
}

/* A Redis loading its data set (an RDB of 20,000 keys) answers LOADING.
 * Loading for about 20 s: the sensor waits its bound (10 s), then names
 * what it leaves in the spool and exits 1. Loading for a few seconds: it
 * retries, delivers everything and exits 0. */
static void test_redis_loading(void **state)
{
    (void)state;
    struct test_redis srv;
    assert_true(test_redis_init(&srv, false, false, "--enable-debug-command yes"));
    assert_true(test_redis_start(&srv));
    assert_true(test_sh("redis-cli -p %d DEBUG POPULATE 20000 >/dev/null && "
                        "redis-cli -p %d SAVE >/dev/null",
                        srv.port, srv.port));
    test_redis_stop(&srv, false);

    start_loading(&srv, "1000");
    char *spool = tpath("loading.spool");
    char *argv[] = {STRIPWATCH,     "-q",        "-r",    STRIP_PCAP, "--policy-file",
                    STRIP_POL,      "--redis",   srv.url, "--spool",  spool,
                    "--alerts-out", "/dev/null", NULL};
    struct run_out r;
    run(tmp, argv, NULL, 120, &r);
    char want[1200];
    snprintf(want, sizeof(want),
             "stripwatch: redis %s: SCRIPT LOAD failed: LOADING Redis is loading the dataset in "
             "memory; alerts wait in spool %s (retrying every 100 ms)\n"
             "stripwatch: 4 alerts not delivered, left in spool %s\n",
             srv.url, spool, spool);
    assert_string_equal(r.err, want);
    assert_int_equal(r.status, 1);
    run_free(&r);
    test_redis_stop(&srv, true);

    start_loading(&srv, "40");
    run(tmp, argv, NULL, 120, &r);
    snprintf(want, sizeof(want),
             "stripwatch: spool %s: 4 alert(s) from an earlier run are delivered first\n"
             "stripwatch: redis %s: SCRIPT LOAD failed: LOADING Redis is loading the dataset in "
             "memory; alerts wait in spool %s (retrying every 100 ms)\n"
             "stripwatch: redis %s: connected; replaying 8 spooled alert(s)\n",
             spool, srv.url, spool, srv.url);
    assert_string_equal(r.err, want);
    assert_int_equal(r.status, 0);
    redisContext *rc = redisConnect("127.0.0.1", srv.port);
    assert_true(rc && !rc->err);
    redisReply *rep = redisCommand(rc, "LLEN stripwatch:alerts");
    assert_non_null(rep);
    assert_int_equal(rep->integer, 8); /* both runs' records, each once */
    freeReplyObject(rep);
    redisFree(rc);
    run_free(&r);
    test_redis_cleanup(&srv);
}

/* ---- recipient-domain flood, resolver that never answers ---- */

/* A UDP socket on loopback the test holds and never reads. */
static int silent_resolver(char *server, size_t len)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_true(fd >= 0 && !bind(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
                !getsockname(fd, (struct sockaddr *)&sa, &sl));
    snprintf(server, len, "127.0.0.1@%d", ntohs(sa.sin_port));
    return fd;
}

/* 6,250 sessions with 16 recipient domains each (100,000 distinct), then
 * the delivery to victim.example: every lookup but the file's times out or
 * is cut short, the enforce alert still comes from the loaded policy. */
static char *flood_capture(void)
{
    struct gen g;
    char *pcap = tpath("flood.pcap");
    assert_true(gen_open(&g, pcap, 262144, 1, T0));
    char names[16][64];
    const char *rcpt[16];
    for (uint32_t s = 0; s < 6250; s++) {
        for (int i = 0; i < 16; i++) {
            snprintf(names[i], sizeof(names[i]), "d%u.flood.example", s * 16 + (uint32_t)i);
            rcpt[i] = names[i];
        }
        gen_smtp_session(&g, 0x0a000001u + s, (uint16_t)(10000 + s), 0xc0000219u,
                         "mx.flood.example", rcpt, 16);
    }
    victim_session(&g);
    assert_true(gen_close(&g));
    return pcap;
}

static void test_flood_dns_down(void **state)
{
    (void)state;
    char dns[64];
    int fd = silent_resolver(dns, sizeof(dns));
    char *pcap = flood_capture(), *pol = victim_policy(), *al = tpath("alerts-flood.json");
    char *argv[] = {
        STRIPWATCH,     "-r", pcap, "--policy-file", pol, "--fetch-policies", "--dns-server", dns,
        "--alerts-out", al,   NULL};
    struct run_out r;
    run(tmp, argv, NULL, 120, &r); /* it took minutes, blocked in libunbound */
    close(fd);
    assert_int_equal(r.status, 0);
    char want[300];
    snprintf(want, sizeof(want),
             "stripwatch: dns %s: 8 queries in a row timed out; resolver considered down, "
             "lookups answered \"unknown\" without a query for 5 s\n",
             dns);
    assert_true(!strncmp(r.err, want, strlen(want)));
    /* every recipient domain was looked up; the loaded policy answered once */
    assert_non_null(strstr(r.err, "stripwatch: stats policy lookups=100001 hits_memory=0 "
                                  "hits_redis=0 hits_file=1 misses=100000 "));
    unsigned long long q, errs, timeouts, down;
    const char *pl = strstr(r.err, "dns_queries=");
    assert_non_null(pl);
    assert_int_equal(sscanf(pl, "dns_queries=%llu dns_errors=%llu", &q, &errs), 2);
    pl = strstr(r.err, "stripwatch: stats policy_bounds ");
    assert_non_null(pl);
    assert_int_equal(sscanf(pl,
                            "stripwatch: stats policy_bounds lookups_dropped=%*u dns_timeouts=%llu "
                            "dns_resolver_down=%llu",
                            &timeouts, &down),
                     2);
    /* a silent resolver is a DNS error (it read dns_errors=0) */
    assert_true(timeouts >= 8);
    assert_int_equal(errs, timeouts);
    assert_true(down >= 1);
    assert_true(q <= 256 * down + timeouts); /* never more than the in-flight bound at once */
    assert_non_null(strstr(r.err, " evicted=0 "));

    size_t len;
    char *got = slurp(al, &len);
    char *copy = strdup(got);
    json_t *enforce = NULL;
    for (char *line = copy, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        *nl = '\0';
        json_t *o = json_loads(line, 0, NULL);
        assert_non_null(o);
        const char *act = json_string_value(json_object_get(json_object_get(o, "event"), "action"));
        if (act && !strcmp(act, "plaintext-delivery-enforce")) {
            assert_null(enforce);
            enforce = o;
        } else {
            json_decref(o);
        }
    }
    assert_non_null(enforce);
    json_t *m = json_object_get(enforce, "mta_sts");
    assert_string_equal(json_string_value(json_object_get(m, "domain")), "victim.example");
    assert_string_equal(json_string_value(json_object_get(m, "source")), "file");
    assert_string_equal(json_string_value(json_object_get(m, "status")), "valid");
    json_decref(enforce);
    /* and the stop record says the lookups that were lost */
    if (!strstr(got, "\"policy.dns_resolver_down\":{\"delta\":"))
        fail_msg("no health record counts the resolver down:\n%s", got);
    free(got);
    free(copy);
    run_free(&r);
}

/* SIGTERM while lookups wait on the silent resolver: the run stops within a
 * few seconds (never blocked on libunbound's thread) and exits 0. */
static void test_sigterm_dns_down(void **state)
{
    (void)state;
    char dns[64];
    int fd = silent_resolver(dns, sizeof(dns));
    char *pcap = flood_capture(), *pol = victim_policy(), *al = tpath("alerts-term.json");
    char *argv[] = {STRIPWATCH,
                    "-q",
                    "-r",
                    pcap,
                    "--policy-file",
                    pol,
                    "--fetch-policies",
                    "--dns-server",
                    dns,
                    "--alerts-out",
                    al,
                    NULL};
    pid_t pid = run_start(tmp, argv, NULL);
    assert_true(pid > 0);
    /* wait for the first health record (reading has begun), then stop it */
    size_t len = 0;
    for (int i = 0; i < 3000 && len == 0; i++) {
        free(slurp(al, &len));
        struct timespec d = {0, 10 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
    assert_true(len > 0);
    kill(pid, SIGTERM);
    int st = run_wait(pid, 30);
    struct run_out r;
    run_collect(tmp, &r);
    close(fd);
    assert_int_equal(st, 0);
    char *got = slurp(al, &len);
    assert_non_null(strstr(got, "\"action\":\"sensor-stopped\""));
    free(got);
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_eviction),       cmocka_unit_test(test_health_start_stop),
        cmocka_unit_test(test_snaplen_cuts_tcp),      cmocka_unit_test(test_unknown_linktype),
        cmocka_unit_test(test_spool_left_redis_down), cmocka_unit_test(test_redis_loading),
        cmocka_unit_test(test_flood_dns_down),        cmocka_unit_test(test_sigterm_dns_down),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
