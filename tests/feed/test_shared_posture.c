/* SPDX-License-Identifier: Apache-2.0 */
/* test_shared_posture.c: learned posture shared through one real
 * redis-server (loopback port of its own) by separate sensor processes.
 * Two sensors on two halves of one capture: the second detects the strip
 * from the STARTTLS offer only the first saw, the same alert one sensor
 * seeing the whole capture raises, and both sensors' records land in one
 * stream. An offline run with --redis but without --posture-redis neither
 * writes posture nor reads it. Repeated offline runs through the shared
 * posture give the same alerts, byte for byte, as the first run and as a run
 * without Redis (posture learned at a later capture time is not shown to
 * earlier sessions). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <dirent.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "feed_util.h"
#include "test_redis_server.h"

#define PCAPS SW_SOURCE_DIR "/pcaps"
/* conn 1 (packets 1-15, its close up to 23) offers STARTTLS and uses it; conn
 * 2 (24-43), to the same server, gets an EHLO reply without it */
#define STRIP_CAPTURE PCAPS "/learned-posture-then-strip-sender-side.pcap"
#define SPLIT_AT      23
#define TEACHER_UID   "Sc49eb0ecd6fc902e"
#define STRIPPED_UID  "S8d846c256741b9a9"
#define SERVER_KEY    "stripwatch:posture:server:198.51.100.25:25"

static struct test_redis srv;
static char tdir[256], half_a[300], half_b[300], spool[300];

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(tdir, sizeof tdir, "%s/sw-posture-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tdir))
        return -1;
    snprintf(half_a, sizeof half_a, "%s/a.pcap", tdir);
    snprintf(half_b, sizeof half_b, "%s/b.pcap", tdir);
    snprintf(spool, sizeof spool, "%s/spool", tdir);
    if (!test_redis_init(&srv, false, false, "") || !test_redis_start(&srv))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    test_redis_cleanup(&srv);
    if (strstr(tdir, "sw-posture-"))
        test_sh("rm -rf '%s'", tdir);
    return 0;
}

static redisReply *cmd(const char *fmt, ...)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", srv.port, tv);
    assert_true(c && !c->err);
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    assert_non_null(r);
    return r;
}

static void flushall(void)
{
    freeReplyObject(cmd("FLUSHALL"));
}

static size_t posture_keys(void)
{
    redisReply *r = cmd("KEYS stripwatch:posture:*");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    size_t n = r->elements;
    freeReplyObject(r);
    return n;
}

/* Packets 1..at of in into a, the rest into b (classic pcap, either byte
 * order), headers copied. */
static void split_capture(const char *in, size_t at, const char *a, const char *b)
{
    size_t len;
    char *p = feed_slurp(in, &len);
    assert_true(len > 24);
    uint32_t magic;
    memcpy(&magic, p, 4);
    bool swapped = magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u;
    assert_true(swapped || magic == 0xa1b2c3d4u || magic == 0xa1b23c4du);
    FILE *fa = fopen(a, "wb"), *fb = fopen(b, "wb");
    assert_non_null(fa);
    assert_non_null(fb);
    assert_int_equal(fwrite(p, 1, 24, fa), 24);
    assert_int_equal(fwrite(p, 1, 24, fb), 24);
    size_t off = 24, n = 0;
    while (off + 16 <= len) {
        uint32_t incl;
        memcpy(&incl, p + off + 8, 4);
        if (swapped)
            incl = __builtin_bswap32(incl);
        assert_true(off + 16 + incl <= len);
        FILE *f = ++n <= at ? fa : fb;
        assert_int_equal(fwrite(p + off, 1, 16 + incl, f), 16 + incl);
        off += 16 + incl;
    }
    assert_true(n > at);
    assert_int_equal(fclose(fa), 0);
    assert_int_equal(fclose(fb), 0);
    free(p);
}

/* Runs the sensor (--no-config -q, spool in the temp dir) with args[0..n),
 * alerts into out; asserts exit status 0 and an empty stderr, within 120 s. */
static void sensor_v(const char *out, const char *const *args, size_t n)
{
    const char **argv = calloc(n + 8, sizeof *argv);
    assert_non_null(argv);
    size_t k = 0;
    argv[k++] = STRIPWATCH;
    argv[k++] = "--no-config";
    argv[k++] = "-q";
    argv[k++] = "--spool";
    argv[k++] = spool;
    argv[k++] = "--alerts-out";
    argv[k++] = out;
    for (size_t i = 0; i < n; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    unlink(out);
    char err[400];
    snprintf(err, sizeof err, "%s/stderr", tdir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int o = open("/dev/null", O_WRONLY);
        dup2(o, 1);
        dup2(e, 2);
        execv(STRIPWATCH, (char *const *)argv);
        _exit(127);
    }
    free(argv);
    int st = -1;
    bool done = false;
    for (int i = 0; i < 120 * 100 && !done; i++) {
        done = waitpid(pid, &st, WNOHANG) == pid;
        if (!done) {
            struct timespec ts = {0, 10 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("the sensor ran past 120 s");
    }
    size_t elen;
    char *etext = feed_slurp(err, &elen);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("stripwatch exited with status %d: %s", st, etext);
    assert_string_equal(etext, ""); /* not a warning: Redis answered */
    free(etext);
}

/* sensor_v with the arguments given as a NULL-terminated list. */
static void sensor(const char *out, ...)
{
    const char *args[32];
    size_t n = 0;
    va_list ap;
    va_start(ap, out);
    const char *s;
    while ((s = va_arg(ap, const char *)) != NULL && n < sizeof args / sizeof args[0])
        args[n++] = s;
    va_end(ap);
    sensor_v(out, args, n);
}

/* The alerts (event.kind "alert") of a sensor's output, in order. */
static json_t *alerts_of(const char *path)
{
    size_t n;
    char **lines = feed_lines(path, &n);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_loads(lines[i], 0, NULL);
        assert_non_null(o);
        const char *kind = json_string_value(json_object_get(json_object_get(o, "event"), "kind"));
        if (kind && !strcmp(kind, "alert"))
            json_array_append(arr, o);
        json_decref(o);
    }
    feed_lines_free(lines, n);
    return arr;
}

/* A string at a dotted path ("a.b.c"), NULL when absent. */
static const char *jstr(json_t *o, const char *path)
{
    char buf[200];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k && o; k = strtok_r(NULL, ".", &save))
        o = json_object_get(o, k);
    return json_string_value(o);
}

static long long jint(json_t *o, const char *path)
{
    char buf[200];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k && o; k = strtok_r(NULL, ".", &save))
        o = json_object_get(o, k);
    assert_true(json_is_integer(o));
    return json_integer_value(o);
}

static char *hget(const char *key, const char *field)
{
    redisReply *r = cmd("HGET %s %s", key, field);
    char *v = r->type == REDIS_REPLY_STRING ? strdup(r->str) : strdup("");
    freeReplyObject(r);
    return v;
}

static void test_two_sensors_one_redis(void **state)
{
    (void)state;
    split_capture(STRIP_CAPTURE, SPLIT_AT, half_a, half_b);
    char out1[300], out2[300], whole[300];
    snprintf(out1, sizeof out1, "%s/tap1.json", tdir);
    snprintf(out2, sizeof out2, "%s/tap2.json", tdir);
    snprintf(whole, sizeof whole, "%s/whole.json", tdir);

    /* the second half alone has no history: no alert */
    flushall();
    sensor(out2, "-r", half_b, "--redis", srv.url, "--posture-redis", (char *)NULL);
    json_t *a = alerts_of(out2);
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);

    /* tap1 sees the first half: nothing to report, posture learned */
    flushall();
    sensor(out1, "-r", half_a, "--redis", srv.url, "--redis-mode", "stream", "--posture-redis",
           "--observer-name", "tap1", (char *)NULL);
    a = alerts_of(out1);
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
    char *v = hget(SERVER_KEY, "first_uid");
    assert_string_equal(v, TEACHER_UID);
    free(v);

    /* tap2 sees the second half: the strip, from tap1's history */
    sensor(out2, "-r", half_b, "--redis", srv.url, "--redis-mode", "stream", "--posture-redis",
           "--observer-name", "tap2", (char *)NULL);
    a = alerts_of(out2);
    assert_int_equal(json_array_size(a), 1);
    json_t *o = json_array_get(a, 0);
    assert_string_equal(jstr(o, "rule.id"), "starttls.stripped");
    assert_int_equal(jint(o, "event.severity"), 3);
    assert_string_equal(jstr(o, "stripwatch.confidence"), "medium");
    assert_string_equal(jstr(o, "stripwatch.uid"), STRIPPED_UID);
    assert_string_equal(jstr(o, "observer.name"), "tap2");
    assert_string_equal(jstr(o, "stripwatch.evidence.reason"), "EHLO reply without STARTTLS");
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.server.session_uid"), TEACHER_UID);
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.server.key"), "198.51.100.25:25");
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.server.by"), "address");
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.server.ts"),
                        "2026-11-22T17:30:23.377195Z");

    /* the same alert one sensor seeing the whole capture raises */
    sensor(whole, "-r", STRIP_CAPTURE, (char *)NULL);
    json_t *w = alerts_of(whole);
    assert_int_equal(json_array_size(w), 1);
    json_t *wo = json_array_get(w, 0);
    assert_string_equal(jstr(wo, "event.id"), jstr(o, "event.id"));
    /* evidence alike but for the packet numbers (counted per run) */
    json_t *ew = json_deep_copy(json_object_get(json_object_get(wo, "stripwatch"), "evidence"));
    json_t *eo = json_deep_copy(json_object_get(json_object_get(o, "stripwatch"), "evidence"));
    assert_int_equal(json_object_del(json_object_get(ew, "cleartext_data"), "mail_from_packet"), 0);
    assert_int_equal(json_object_del(json_object_get(eo, "cleartext_data"), "mail_from_packet"), 0);
    assert_true(json_equal(ew, eo));
    json_decref(ew);
    json_decref(eo);
    json_decref(w);
    json_decref(a);

    /* one stream holds both sensors' lines (health records and the alert) */
    size_t n1, n2;
    char **l1 = feed_lines(out1, &n1), **l2 = feed_lines(out2, &n2);
    redisReply *r = cmd("XRANGE stripwatch:alerts - +");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, n1 + n2);
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *kv = r->element[i]->element[1];
        assert_string_equal(kv->element[1]->str, i < n1 ? l1[i] : l2[i - n1]);
    }
    freeReplyObject(r);
    feed_lines_free(l1, n1);
    feed_lines_free(l2, n2);
}

static void test_offline_leaves_shared_posture_alone(void **state)
{
    (void)state;
    split_capture(STRIP_CAPTURE, SPLIT_AT, half_a, half_b);
    char out[300];
    snprintf(out, sizeof out, "%s/out.json", tdir);
    flushall();
    /* --redis alone: alerts go there, posture stays in this process */
    sensor(out, "-r", half_a, "--redis", srv.url, (char *)NULL);
    assert_int_equal(posture_keys(), 0);
    /* what a production sensor learned ... */
    sensor(out, "-r", half_a, "--redis", srv.url, "--posture-redis", (char *)NULL);
    assert_int_equal(posture_keys(), 4); /* server, banner name, client>server, client>name */
    char *before = hget(SERVER_KEY, "seen");
    /* ... is not read by a re-analysis without --posture-redis */
    sensor(out, "-r", half_b, "--redis", srv.url, (char *)NULL);
    json_t *a = alerts_of(out);
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
    assert_int_equal(posture_keys(), 4);
    char *after = hget(SERVER_KEY, "seen");
    assert_string_equal(before, after);
    free(before);
    free(after);
    /* and is with it */
    sensor(out, "-r", half_b, "--redis", srv.url, "--posture-redis", (char *)NULL);
    a = alerts_of(out);
    assert_int_equal(json_array_size(a), 1);
    assert_string_equal(jstr(json_array_get(a, 0), "rule.id"), "starttls.stripped");
    json_decref(a);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Issue 8: the OpenSMTPD server did not offer STARTTLS at 17:29:33 and
 * offered it at 17:49:55; a second run used to raise starttls.stripped on
 * the first session from what the first run had learned at 17:49:55. */
static void test_repeated_run_same_alerts(void **state)
{
    (void)state;
    char o1[300], o2[300], o3[300];
    snprintf(o1, sizeof o1, "%s/run1.json", tdir);
    snprintf(o2, sizeof o2, "%s/run2.json", tdir);
    snprintf(o3, sizeof o3, "%s/noredis.json", tdir);
    const char *plain = PCAPS "/postfix-opensmtpd-plaintext.pcap";
    const char *fallback = PCAPS "/postfix-opensmtpd-tls-failure-fallback.pcap";
    flushall();
    for (int run = 0; run < 2; run++) {
        sensor(run ? o2 : o1, "-r", plain, "-r", fallback, "--redis", srv.url, "--posture-redis",
               (char *)NULL);
        json_t *a = alerts_of(run ? o2 : o1);
        assert_int_equal(json_array_size(a), 1);
        json_t *o = json_array_get(a, 0);
        assert_string_equal(jstr(o, "rule.id"), "starttls.fallback");
        assert_int_equal(jint(o, "event.severity"), 3);
        assert_string_equal(jstr(o, "stripwatch.uid"), "S9c0a5aadde6c45f0");
        json_decref(a);
    }
    size_t l1, l2;
    char *t1 = feed_slurp(o1, &l1), *t2 = feed_slurp(o2, &l2);
    assert_true(l1 > 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(t1, t2, l1);
    free(t1);
    free(t2);

    /* every capture in pcaps/, merged, with their policies: two runs through
     * the shared posture and one without Redis, byte for byte the same */
    const char *argv_files[128];
    char *names[64];
    size_t n = 0;
    DIR *d = opendir(PCAPS);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < 64) {
        size_t len = strlen(de->d_name);
        if (len > 5 && !strcmp(de->d_name + len - 5, ".pcap")) {
            names[n] = malloc(strlen(PCAPS) + len + 2);
            sprintf(names[n], "%s/%s", PCAPS, de->d_name);
            n++;
        }
    }
    closedir(d);
    assert_true(n >= 20);
    qsort(names, n, sizeof names[0], cmp_str);
    const char *outs[3] = {o1, o2, o3};
    flushall();
    for (int run = 0; run < 3; run++) {
        size_t k = 0;
        argv_files[k++] = "--policy-file";
        argv_files[k++] = PCAPS "/policies.json";
        for (size_t i = 0; i < n; i++) {
            argv_files[k++] = "-r";
            argv_files[k++] = names[i];
        }
        if (run < 2) {
            argv_files[k++] = "--redis";
            argv_files[k++] = srv.url;
            argv_files[k++] = "--posture-redis";
        }
        sensor_v(outs[run], argv_files, k);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    assert_true(posture_keys() > 0);
    char *t[3];
    size_t l[3];
    for (int i = 0; i < 3; i++)
        t[i] = feed_slurp(outs[i], &l[i]);
    json_t *a = alerts_of(o1);
    assert_true(json_array_size(a) > 10);
    json_decref(a);
    for (int i = 1; i < 3; i++) {
        assert_int_equal(l[i], l[0]);
        assert_memory_equal(t[i], t[0], l[0]);
    }
    for (int i = 0; i < 3; i++)
        free(t[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_sensors_one_redis),
        cmocka_unit_test(test_offline_leaves_shared_posture_alone),
        cmocka_unit_test(test_repeated_run_same_alerts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
