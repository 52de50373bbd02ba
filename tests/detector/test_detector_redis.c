/* SPDX-License-Identifier: Apache-2.0 */
/* test_detector_redis.c: learned posture shared through a real redis-server
 * started on a loopback port picked by the test: what one sensor learned
 * raises another sensor's verdict, only for sessions after the capture time
 * it was learned at; entries merge by time whatever the order they were
 * written in; an unreachable Redis is not fatal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alerts/detector.h"
#include "policy/redis_conn.h"
#include "../test_port.h"

#define T0 1795000000LL

static pid_t redis_pid;
static char redis_url[64];
static char workdir[256];

static int start_redis(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(workdir, sizeof workdir, "%s/swdetredis.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(workdir))
        return -1;
    uint16_t port = (uint16_t)test_pick_port();
    char p[8];
    snprintf(p, sizeof p, "%u", port);
    redis_pid = fork();
    if (redis_pid == 0) {
        int null = open("/dev/null", 1);
        dup2(null, 1);
        execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", workdir, (char *)NULL);
        _exit(127);
    }
    snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%u/0", port);
    /* wait (bounded) until it answers PING */
    char err[256];
    struct redis_conn *c = redis_conn_new(redis_url, NULL, err, sizeof err);
    for (int i = 0; i < 100; i++) {
        if (redis_conn_connect(c) == SW_OK) {
            redisReply *r = redis_conn_command(c, 500, "PING");
            bool ok = r && r->type == REDIS_REPLY_STATUS;
            if (r)
                freeReplyObject(r);
            if (ok) {
                redis_conn_free(c);
                return 0;
            }
        }
        usleep(50000);
    }
    redis_conn_free(c);
    return -1;
}

static int stop_redis(void **state)
{
    (void)state;
    if (redis_pid > 0) {
        kill(redis_pid, SIGTERM);
        waitpid(redis_pid, NULL, 0);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", workdir);
    return system(cmd) == 0 ? 0 : -1;
}

struct lines {
    char *v[16];
    size_t n;
};

static void on_emit(void *arg, const char *json, size_t len, const char *rule, int severity)
{
    struct lines *l = arg;
    (void)rule;
    (void)severity;
    if (l->n < 16)
        l->v[l->n++] = strndup(json, len);
}

static struct detector *det(const char *url, struct lines *out)
{
    struct detector_cfg c;
    detector_cfg_defaults(&c);
    c.observer_name = "test-sensor";
    c.offline = true;
    c.redis_url = url;
    c.emit = on_emit;
    c.emit_arg = out;
    char err[512] = "";
    struct detector *d = detector_new(&c, err, sizeof err);
    if (!d)
        fail_msg("detector_new: %s", err);
    return d;
}

static struct smtp_facts *session(const char *uid, const char *cip, bool offered, int64_t t)
{
    struct smtp_facts *f = facts_new();
    snprintf(f->flow.uid, sizeof f->flow.uid, "%s", uid);
    f->flow.client.family = 4;
    inet_pton(AF_INET, cip, f->flow.client.b);
    f->flow.server.family = 4;
    inet_pton(AF_INET, "198.51.100.25", f->flow.server.b);
    f->flow.cport = 40000;
    f->flow.sport = 25;
    f->flow.start = t * 1000000LL;
    f->banner_code = 220;
    f->ehlo_code = 250;
    snprintf(f->helo_verb, sizeof f->helo_verb, "EHLO");
    facts_add_cap(f, "PIPELINING", 10);
    if (offered) {
        facts_add_cap(f, "STARTTLS", 8);
        f->starttls_offered = true;
        f->starttls_requested = true;
        f->starttls_code = 220;
        facts_tls_mut(f)->established = true;
    }
    return f;
}

static void test_posture_shared_through_redis(void **state)
{
    (void)state;
    struct lines a = {0}, b = {0};
    struct detector *d1 = det(redis_url, &a);
    detector_session(d1, session("S00000000000000a1", "192.0.2.10", true, T0));
    /* the same news again within a minute is not rewritten */
    detector_session(d1, session("S00000000000000a3", "192.0.2.10", true, T0 + 10));
    detector_finish(d1);
    detector_free(d1);
    assert_int_equal(a.n, 0);

    /* what the first sensor wrote */
    char err[256];
    struct redis_conn *c = redis_conn_new(redis_url, NULL, err, sizeof err);
    assert_int_equal(redis_conn_connect(c), SW_OK);
    redisReply *r = redis_conn_command(c, 1000, "HGET %s %s",
                                       "stripwatch:posture:server:198.51.100.25:25", "ok_uid");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "S00000000000000a1");
    freeReplyObject(r);
    r = redis_conn_command(c, 1000, "TTL %s", "stripwatch:posture:server:198.51.100.25:25");
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_true(r->integer > 0 && r->integer <= 90LL * 24 * 3600);
    freeReplyObject(r);

    /* a minute later it is */
    struct lines a2 = {0};
    struct detector *d3 = det(redis_url, &a2);
    detector_session(d3, session("S00000000000000a4", "192.0.2.10", true, T0 + 100));
    detector_session(d3, session("S00000000000000a5", "192.0.2.10", true, T0 + 170));
    detector_finish(d3);
    detector_free(d3);
    r = redis_conn_command(c, 1000, "HGET %s %s", "stripwatch:posture:server:198.51.100.25:25",
                           "ok_uid");
    assert_string_equal(r->str, "S00000000000000a5");
    freeReplyObject(r);
    /* the earliest stays the first sensor's */
    r = redis_conn_command(c, 1000, "HGET %s %s", "stripwatch:posture:server:198.51.100.25:25",
                           "first_uid");
    assert_string_equal(r->str, "S00000000000000a1");
    freeReplyObject(r);
    redis_conn_free(c);

    /* a second sensor with empty memory sees the same server stripped; the
     * evidence names the first session that showed STARTTLS offered */
    struct detector *d2 = det(redis_url, &b);
    detector_session(d2, session("S00000000000000b2", "192.0.2.11", false, T0 + 200));
    detector_finish(d2);
    detector_free(d2);
    assert_int_equal(b.n, 1);
    json_t *o = json_loads(b.v[0], 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "rule"), "id")),
                        "starttls.stripped");
    json_t *srv = json_object_get(
        json_object_get(json_object_get(json_object_get(o, "stripwatch"), "evidence"), "posture"),
        "server");
    assert_string_equal(json_string_value(json_object_get(srv, "session_uid")),
                        "S00000000000000a1");
    json_decref(o);
    free(b.v[0]);
}

static void flushall(void)
{
    char err[256];
    struct redis_conn *c = redis_conn_new(redis_url, NULL, err, sizeof err);
    assert_int_equal(redis_conn_connect(c), SW_OK);
    redisReply *r = redis_conn_command(c, 1000, "FLUSHALL");
    assert_non_null(r);
    freeReplyObject(r);
    redis_conn_free(c);
}

/* Runs one sensor (a fresh detector) over sessions; returns its alert count
 * and, for the first alert, the posture.server session uid in uid. */
static size_t run_sensor(struct smtp_facts **v, size_t n, char *uid, size_t uidlen)
{
    struct lines out = {0};
    struct detector *d = det(redis_url, &out);
    for (size_t i = 0; i < n; i++)
        detector_session(d, v[i]);
    detector_finish(d);
    detector_free(d);
    uid[0] = '\0';
    if (out.n) {
        json_t *o = json_loads(out.v[0], 0, NULL);
        assert_non_null(o);
        json_t *srv = json_object_get(
            json_object_get(json_object_get(json_object_get(o, "stripwatch"), "evidence"),
                            "posture"),
            "server");
        const char *s = json_string_value(json_object_get(srv, "session_uid"));
        snprintf(uid, uidlen, "%s", s ? s : "");
        json_decref(o);
    }
    for (size_t i = 0; i < out.n; i++)
        free(out.v[i]);
    return out.n;
}

/* Issue 8: posture learned at a later capture time is not shown to an
 * earlier session, so a repeated run gives the same verdicts as the first. */
static void test_learned_later_not_used_earlier(void **state)
{
    (void)state;
    flushall();
    char uid[32];
    /* a stripped session at T0+100, STARTTLS offered at T0+500 */
    struct smtp_facts *v1[] = {session("S00000000000000d1", "192.0.2.20", false, T0 + 100),
                               session("S00000000000000d2", "192.0.2.21", true, T0 + 500)};
    assert_int_equal(run_sensor(v1, 2, uid, sizeof uid), 0);
    /* the same capture again, Redis holding what the first run learned */
    struct smtp_facts *v2[] = {session("S00000000000000d1", "192.0.2.20", false, T0 + 100),
                               session("S00000000000000d2", "192.0.2.21", true, T0 + 500)};
    assert_int_equal(run_sensor(v2, 2, uid, sizeof uid), 0);
    /* a session after T0+500 sees it */
    struct smtp_facts *v3[] = {session("S00000000000000d3", "192.0.2.22", false, T0 + 501)};
    assert_int_equal(run_sensor(v3, 1, uid, sizeof uid), 1);
    assert_string_equal(uid, "S00000000000000d2");
    /* an older capture analysed afterwards: its offer at T0+50 becomes the
     * earliest, its strip at T0+60 is judged by it, not by T0+500 */
    struct smtp_facts *v4[] = {session("S00000000000000d4", "192.0.2.23", true, T0 + 50),
                               session("S00000000000000d5", "192.0.2.24", false, T0 + 60)};
    assert_int_equal(run_sensor(v4, 2, uid, sizeof uid), 1);
    assert_string_equal(uid, "S00000000000000d4");
    /* and a session before every offer still gets none */
    struct smtp_facts *v5[] = {session("S00000000000000d6", "192.0.2.25", false, T0 + 10)};
    assert_int_equal(run_sensor(v5, 1, uid, sizeof uid), 0);
}

/* The Redis entry is a merge by time: the same entries written in either
 * order leave the same hash. */
static void test_merge_order_independent(void **state)
{
    (void)state;
    const char *key = "stripwatch:posture:server:198.51.100.25:25";
    char got[2][512];
    for (int order = 0; order < 2; order++) {
        flushall();
        char uid[32];
        struct smtp_facts *late[] = {session("S00000000000000e2", "192.0.2.30", true, T0 + 900)};
        struct smtp_facts *early[] = {session("S00000000000000e1", "192.0.2.31", true, T0 + 20)};
        if (order == 0) {
            run_sensor(early, 1, uid, sizeof uid);
            run_sensor(late, 1, uid, sizeof uid);
        } else {
            run_sensor(late, 1, uid, sizeof uid);
            run_sensor(early, 1, uid, sizeof uid);
        }
        char err[256];
        struct redis_conn *c = redis_conn_new(redis_url, NULL, err, sizeof err);
        assert_int_equal(redis_conn_connect(c), SW_OK);
        redisReply *r =
            redis_conn_command(c, 1000, "HMGET %s seen ok_ts ok_uid first_ts first_uid", key);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        assert_int_equal(r->elements, 5);
        snprintf(got[order], sizeof got[order], "%s %s %s %s %s", r->element[0]->str,
                 r->element[1]->str, r->element[2]->str, r->element[3]->str, r->element[4]->str);
        freeReplyObject(r);
        redis_conn_free(c);
    }
    assert_string_equal(got[0], "1795000900000000 1795000900000000 S00000000000000e2 "
                                "1795000020000000 S00000000000000e1");
    assert_string_equal(got[1], got[0]);
}

static void test_redis_unreachable_is_not_fatal(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%u/0", (uint16_t)test_pick_port());
    struct lines a = {0};
    struct detector *d = det(url, &a);
    detector_session(d, session("S00000000000000c1", "192.0.2.10", true, T0));
    detector_session(d, session("S00000000000000c2", "192.0.2.10", false, T0 + 5));
    detector_finish(d);
    detector_free(d);
    /* memory posture still works */
    assert_int_equal(a.n, 1);
    free(a.v[0]);

    /* a URL that does not parse is refused at start, naming the problem */
    struct detector_cfg c;
    detector_cfg_defaults(&c);
    c.redis_url = "redis://127.0.0.1:0";
    char err[512] = "";
    assert_null(detector_new(&c, err, sizeof err));
    assert_true(strstr(err, "redis://127.0.0.1:0") != NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_posture_shared_through_redis),
        cmocka_unit_test(test_redis_unreachable_is_not_fatal),
        cmocka_unit_test(test_learned_later_not_used_earlier),
        cmocka_unit_test(test_merge_order_independent),
    };
    return cmocka_run_group_tests(tests, start_redis, stop_redis);
}
