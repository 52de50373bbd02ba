/* SPDX-License-Identifier: Apache-2.0 */
/* test_consumer_group.c: --redis-mode stream read by a consumer group. Two
 * consumer processes of one group (XREADGROUP ... >, then XACK) read the
 * stream while the sensor writes it: together they read every line the
 * sensor wrote (its --alerts-out copy) exactly once, unchanged, in stream
 * order each; both got some; nothing is left pending. A third run checks
 * the same after a consumer stopped without acknowledging: XAUTOCLAIM
 * hands its pending entries to the other, still once each. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "feed_util.h"
#include "test_redis_server.h"

#define COPIES 150 /* 4 alerts each */
#define KEY    "stripwatch:alerts"
#define GROUP  "siem"

static struct test_redis srv;
static char tdir[256];

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(tdir, sizeof tdir, "%s/sw-group-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(tdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    test_redis_cleanup(&srv);
    if (strstr(tdir, "sw-group-"))
        test_sh("rm -rf '%s'", tdir);
    return 0;
}

static redisContext *connect_srv(void)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", srv.port, tv);
    if (!c || c->err)
        return NULL;
    return c;
}

/* One consumer (a child process): reads new entries COUNT 3 at a time,
 * writes "ID<TAB>payload" lines to out and acknowledges each, until the
 * key "done" exists and a read came back empty. With stop_after > 0 it
 * exits after that many entries without acknowledging the last batch. */
static int consume(const char *name, const char *out, int stop_after)
{
    redisContext *c = connect_srv();
    FILE *f = fopen(out, "w");
    if (!c || !f)
        return 3;
    int got = 0;
    for (int round = 0; round < 6000; round++) {
        redisReply *r = redisCommand(c, "XREADGROUP GROUP %s %s COUNT 3 BLOCK 100 STREAMS %s >",
                                     GROUP, name, KEY);
        if (!r)
            return 4;
        size_t n = 0;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
            redisReply *entries = r->element[0]->element[1];
            n = entries->elements;
            for (size_t i = 0; i < n; i++) {
                redisReply *e = entries->element[i];
                redisReply *kv = e->element[1];
                if (kv->elements != 2 || strcmp(kv->element[0]->str, "alert") != 0)
                    return 5;
                fprintf(f, "%s\t%s\n", e->element[0]->str, kv->element[1]->str);
                got++;
            }
            if (stop_after > 0 && got >= stop_after) {
                freeReplyObject(r);
                fclose(f);
                redisFree(c);
                return 0; /* gone without XACK of this batch */
            }
            for (size_t i = 0; i < n; i++) {
                redisReply *a = redisCommand(c, "XACK %s %s %s", KEY, GROUP,
                                             entries->element[i]->element[0]->str);
                if (!a || a->type != REDIS_REPLY_INTEGER || a->integer != 1)
                    return 6;
                freeReplyObject(a);
            }
        } else if (r->type == REDIS_REPLY_ERROR) {
            return 7;
        }
        freeReplyObject(r);
        if (n == 0) {
            redisReply *d = redisCommand(c, "EXISTS done");
            bool done = d && d->type == REDIS_REPLY_INTEGER && d->integer == 1;
            freeReplyObject(d);
            if (done)
                break;
        }
    }
    fclose(f);
    redisFree(c);
    return 0;
}

static pid_t spawn_consumer(const char *name, const char *out, int stop_after)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(consume(name, out, stop_after));
    return pid;
}

static int wait_child(pid_t pid, int timeout_s)
{
    for (int i = 0; i < timeout_s * 100; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void cmd_ok(redisContext *c, const char *cmd)
{
    redisReply *r = redisCommand(c, cmd);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("%s: %s", cmd, r->str);
    freeReplyObject(r);
}

/* Entry IDs compare as ms-seq. */
static int id_cmp(const char *a, const char *b)
{
    unsigned long long am = 0, as = 0, bm = 0, bs = 0;
    sscanf(a, "%llu-%llu", &am, &as);
    sscanf(b, "%llu-%llu", &bm, &bs);
    if (am != bm)
        return am < bm ? -1 : 1;
    return as == bs ? 0 : (as < bs ? -1 : 1);
}

/* Checks that the lines of the consumers' files are, merged by entry ID,
 * exactly the sensor's lines, each once, each file in ID order. Returns
 * how many each file held in counts. */
static void check_exactly_once(const char *alerts, const char *const *files, size_t nfiles,
                               size_t *counts)
{
    size_t n_want;
    char **want = feed_lines(alerts, &n_want);
    assert_true(n_want >= 4 * COPIES);
    char **all_id = calloc(n_want + 16, sizeof(char *)),
         **all_v = calloc(n_want + 16, sizeof(char *));
    size_t total = 0;
    for (size_t k = 0; k < nfiles; k++) {
        size_t n;
        char **got = feed_lines(files[k], &n);
        counts[k] = n;
        for (size_t i = 0; i < n; i++) {
            char *tab = strchr(got[i], '\t');
            assert_non_null(tab);
            *tab = '\0';
            if (i > 0 && id_cmp(got[i - 1], got[i]) >= 0)
                fail_msg("%s: %s not after %s", files[k], got[i], got[i - 1]);
            if (total >= n_want)
                fail_msg("more entries read than the sensor wrote (%zu)", n_want);
            all_id[total] = strdup(got[i]);
            all_v[total] = strdup(tab + 1);
            total++;
        }
        feed_lines_free(got, n);
    }
    assert_int_equal(total, n_want);
    /* merge by ID (insertion sort is fine for a few hundred) */
    for (size_t i = 1; i < total; i++) {
        for (size_t j = i; j > 0 && id_cmp(all_id[j - 1], all_id[j]) > 0; j--) {
            char *t = all_id[j];
            all_id[j] = all_id[j - 1];
            all_id[j - 1] = t;
            t = all_v[j];
            all_v[j] = all_v[j - 1];
            all_v[j - 1] = t;
        }
    }
    for (size_t i = 0; i < total; i++) {
        if (i > 0 && id_cmp(all_id[i - 1], all_id[i]) == 0)
            fail_msg("entry %s read twice", all_id[i]);
        if (strcmp(all_v[i], want[i]) != 0)
            fail_msg("entry %zu (%s) differs:\n read  %s\n wrote %s", i, all_id[i], all_v[i],
                     want[i]);
        free(all_id[i]);
        free(all_v[i]);
    }
    free(all_id);
    free(all_v);
    feed_lines_free(want, n_want);
}

static void assert_nothing_pending(void)
{
    redisContext *c = connect_srv();
    assert_non_null(c);
    redisReply *r = redisCommand(c, "XPENDING %s %s", KEY, GROUP);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->element[0]->integer, 0);
    freeReplyObject(r);
    redisFree(c);
}

static void prepare(char *in, size_t inl, char *alerts, size_t al, char *spool, size_t sl,
                    char *err, size_t el)
{
    snprintf(in, inl, "%s/in.pcap", tdir);
    snprintf(alerts, al, "%s/alerts.json", tdir);
    snprintf(spool, sl, "%s/spool", tdir);
    snprintf(err, el, "%s/stripwatch.stderr", tdir);
    feed_make_input(in, COPIES);
    assert_true(test_redis_init(&srv, false, false, NULL));
    assert_true(test_redis_start(&srv));
    redisContext *c = connect_srv();
    assert_non_null(c);
    cmd_ok(c, "XGROUP CREATE " KEY " " GROUP " $ MKSTREAM");
    redisFree(c);
}

static void test_two_consumers(void **state)
{
    (void)state;
    char in[300], alerts[300], spool[300], err[300], c1[300], c2[300];
    prepare(in, sizeof in, alerts, sizeof alerts, spool, sizeof spool, err, sizeof err);
    snprintf(c1, sizeof c1, "%s/c1.txt", tdir);
    snprintf(c2, sizeof c2, "%s/c2.txt", tdir);
    pid_t p1 = spawn_consumer("c1", c1, 0), p2 = spawn_consumer("c2", c2, 0);
    int rc = feed_run_sensor(in, srv.url, "stream", alerts, spool, err, 120);
    redisContext *c = connect_srv();
    assert_non_null(c);
    cmd_ok(c, "SET done 1");
    redisFree(c);
    assert_int_equal(wait_child(p1, 60), 0);
    assert_int_equal(wait_child(p2, 60), 0);
    assert_int_equal(rc, 0);
    const char *files[] = {c1, c2};
    size_t counts[2];
    check_exactly_once(alerts, files, 2, counts);
    print_message("c1 read %zu, c2 read %zu\n", counts[0], counts[1]);
    assert_true(counts[0] > 0 && counts[1] > 0);
    assert_nothing_pending();
}

/* c2 stops after its first batch without XACK; c1 claims what c2 left
 * pending (XAUTOCLAIM, idle 0) and acknowledges it: still once each. */
static void test_consumer_gone(void **state)
{
    (void)state;
    char in[300], alerts[300], spool[300], err[300], c1[300], c2[300], cl[300];
    prepare(in, sizeof in, alerts, sizeof alerts, spool, sizeof spool, err, sizeof err);
    snprintf(c1, sizeof c1, "%s/c1.txt", tdir);
    snprintf(c2, sizeof c2, "%s/c2.txt", tdir);
    snprintf(cl, sizeof cl, "%s/claimed.txt", tdir);
    pid_t p2 = spawn_consumer("c2", c2, 1);
    /* c2 has its batch before c1 starts */
    assert_int_equal(feed_run_sensor(in, srv.url, "stream", alerts, spool, err, 120), 0);
    assert_int_equal(wait_child(p2, 60), 0);
    pid_t p1 = spawn_consumer("c1", c1, 0);
    redisContext *c = connect_srv();
    assert_non_null(c);
    cmd_ok(c, "SET done 1");
    assert_int_equal(wait_child(p1, 60), 0);
    /* c2's batch is pending; c1 claims it */
    redisReply *r = redisCommand(c, "XAUTOCLAIM %s %s c1 0 0-0 COUNT 100", KEY, GROUP);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    redisReply *entries = r->element[1];
    size_t n_c2;
    char **read_by_c2 = feed_lines(c2, &n_c2);
    assert_true(n_c2 >= 1);
    assert_int_equal(entries->elements, n_c2);
    FILE *f = fopen(cl, "w");
    assert_non_null(f);
    for (size_t i = 0; i < entries->elements; i++) {
        redisReply *e = entries->element[i];
        fprintf(f, "%s\t%s\n", e->element[0]->str, e->element[1]->element[1]->str);
        redisReply *a = redisCommand(c, "XACK %s %s %s", KEY, GROUP, e->element[0]->str);
        assert_non_null(a);
        assert_int_equal(a->integer, 1);
        freeReplyObject(a);
    }
    fclose(f);
    freeReplyObject(r);
    redisFree(c);
    feed_lines_free(read_by_c2, n_c2);
    /* what c1 read plus what it claimed: every line once */
    const char *files[] = {c1, cl};
    size_t counts[2];
    check_exactly_once(alerts, files, 2, counts);
    assert_nothing_pending();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_consumers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_consumer_gone, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
