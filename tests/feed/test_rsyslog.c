/* SPDX-License-Identifier: Apache-2.0 */
/* test_rsyslog.c: rsyslog as a consumer of the feed. A private rsyslogd
 * (its own config, pid file and work directory; no system syslog socket,
 * nothing of the system's rsyslog touched) with the imhiredis input writes
 * every message as it came (%rawmsg%) to a file, which must then hold
 * exactly the lines the sensor wrote (its --alerts-out copies), unchanged
 * and in order:
 *   list: the sensor RPUSHes (--redis-mode list), imhiredis pops with
 *     uselpop="on" (LPOP: oldest first); three runs, Redis killed after the
 *     first, the second spooling, Redis started again before the third;
 *   lpush: the sensor LPUSHes, imhiredis pops with its default RPOP;
 *   channel: the sensor PUBLISHes, imhiredis subscribes.
 * imhiredis is not packaged in Debian 12: imhiredis-build.sh builds it once
 * from the rsyslog source package (cached outside the tree); when it cannot,
 * the test is skipped with its reason. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "feed_util.h"
#include "test_redis_server.h"

#define COPIES 20 /* 4 alerts each, and the health records */
#define KEY    "stripwatch:alerts"

static struct test_redis srv;
static char tdir[256];
static char module[4096];
static pid_t rsyslog = -1;

static int group_setup(void **state)
{
    (void)state;
    FILE *p = popen("bash '" SW_SOURCE_DIR "/tests/feed/imhiredis-build.sh'", "r");
    if (!p)
        return -1;
    if (!fgets(module, sizeof module, p))
        module[0] = '\0';
    int st = pclose(p);
    module[strcspn(module, "\n")] = '\0';
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        module[0] = '\0'; /* the reason is on stderr; the tests skip */
    return 0;
}

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(tdir, sizeof tdir, "%s/sw-rsyslog-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(tdir) ? 0 : -1;
}

static void stop_rsyslog(void)
{
    if (rsyslog <= 0)
        return;
    kill(rsyslog, SIGTERM);
    for (int i = 0; i < 1000; i++) {
        if (waitpid(rsyslog, NULL, WNOHANG) == rsyslog) {
            rsyslog = -1;
            return;
        }
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    kill(rsyslog, SIGKILL);
    waitpid(rsyslog, NULL, 0);
    rsyslog = -1;
}

static int teardown(void **state)
{
    (void)state;
    stop_rsyslog();
    test_redis_cleanup(&srv);
    if (strstr(tdir, "sw-rsyslog-"))
        test_sh("rm -rf '%s'", tdir);
    return 0;
}

/* Starts rsyslogd with one imhiredis input (its parameters in input_args)
 * writing to out. */
static void start_rsyslog(const char *input_args, const char *out)
{
    char conf[300], pid[300], work[300], err[300];
    snprintf(conf, sizeof conf, "%s/rsyslog.conf", tdir);
    snprintf(pid, sizeof pid, "%s/rsyslogd.pid", tdir);
    snprintf(work, sizeof work, "%s/work", tdir);
    snprintf(err, sizeof err, "%s/rsyslogd.stderr", tdir);
    assert_int_equal(mkdir(work, 0700), 0);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f,
            "global(workDirectory=\"%s\" maxMessageSize=\"256k\")\n"
            "module(load=\"%s\")\n"
            "template(name=\"asis\" type=\"string\" string=\"%%rawmsg%%\\n\")\n"
            "ruleset(name=\"feed\") {\n"
            "  action(type=\"omfile\" file=\"%s\" template=\"asis\" flushOnTXEnd=\"on\")\n"
            "}\n"
            "input(type=\"imhiredis\" server=\"127.0.0.1\" port=\"%d\" key=\"" KEY "\" "
            "ruleset=\"feed\" %s)\n",
            work, module, out, srv.port, input_args);
    assert_int_equal(fclose(f), 0);
    rsyslog = fork();
    assert_true(rsyslog >= 0);
    if (rsyslog == 0) {
        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(e, 1);
        dup2(e, 2);
        execl("/usr/sbin/rsyslogd", "rsyslogd", "-n", "-f", conf, "-i", pid, (char *)NULL);
        _exit(127);
    }
}

static size_t count_lines(const char *path)
{
    size_t len, n = 0;
    char *t = feed_slurp(path, &len);
    for (size_t i = 0; i < len; i++)
        n += t[i] == '\n';
    free(t);
    return n;
}

/* Waits (at most timeout_s) until path has n lines; fails past it. */
static void wait_lines(const char *path, size_t n, int timeout_s)
{
    for (int i = 0; i < timeout_s * 10; i++) {
        if (count_lines(path) >= n)
            return;
        int st;
        if (rsyslog > 0 && waitpid(rsyslog, &st, WNOHANG) == rsyslog) {
            rsyslog = -1;
            fail_msg("rsyslogd exited (see %s/rsyslogd.stderr)", tdir);
        }
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
    }
    fail_msg("%s: %zu lines after %d s, want %zu", path, count_lines(path), timeout_s, n);
}

/* out holds exactly the concatenation of the files in want, in order. */
static void assert_same(const char *out, const char *const *want, size_t nwant)
{
    size_t n;
    char **got = feed_lines(out, &n);
    size_t k = 0;
    for (size_t w = 0; w < nwant; w++) {
        size_t m;
        char **lines = feed_lines(want[w], &m);
        for (size_t i = 0; i < m; i++, k++) {
            if (k >= n)
                fail_msg("%s: %zu lines, want more (%s line %zu)", out, n, want[w], i + 1);
            if (strcmp(got[k], lines[i]) != 0)
                fail_msg("%s line %zu differs:\n got  %s\n want %s", out, k + 1, got[k], lines[i]);
        }
        feed_lines_free(lines, m);
    }
    assert_int_equal(n, k);
    feed_lines_free(got, n);
}

static void wait_subscribed(void)
{
    struct timeval tv = {5, 0};
    for (int i = 0; i < 600; i++) {
        redisContext *c = redisConnectWithTimeout("127.0.0.1", srv.port, tv);
        assert_true(c && !c->err);
        redisReply *r = redisCommand(c, "PUBSUB NUMSUB " KEY);
        bool yes =
            r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->integer >= 1;
        freeReplyObject(r);
        redisFree(c);
        if (yes)
            return;
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
    }
    fail_msg("rsyslogd did not subscribe to " KEY " within 60 s");
}

#define PATHS                                                                                      \
    char in[300], out[300], spool[300], err[300];                                                  \
    snprintf(in, sizeof in, "%s/in.pcap", tdir);                                                   \
    snprintf(out, sizeof out, "%s/out.json", tdir);                                                \
    snprintf(spool, sizeof spool, "%s/spool", tdir);                                               \
    snprintf(err, sizeof err, "%s/stripwatch.stderr", tdir)

static void test_list_across_restart(void **state)
{
    (void)state;
    if (!module[0])
        skip();
    PATHS;
    char a1[300], a2[300], a3[300];
    snprintf(a1, sizeof a1, "%s/alerts1.json", tdir);
    snprintf(a2, sizeof a2, "%s/alerts2.json", tdir);
    snprintf(a3, sizeof a3, "%s/alerts3.json", tdir);
    feed_make_input(in, COPIES);
    assert_true(test_redis_init(&srv, false, true, NULL));
    assert_true(test_redis_start(&srv));
    start_rsyslog("mode=\"queue\" uselpop=\"on\"", out);

    assert_int_equal(feed_run_sensor(in, srv.url, "list", a1, spool, err, 120), 0);
    size_t n1 = count_lines(a1);
    assert_true(n1 >= 4 * COPIES);
    wait_lines(out, n1, 120);

    /* Redis gone: the second run keeps its alerts in the spool (exit 1) */
    test_redis_stop(&srv, true);
    assert_int_equal(feed_run_sensor(in, srv.url, "list", a2, spool, err, 120), 1);
    /* back: the third run delivers the spool first; rsyslog reconnects */
    assert_true(test_redis_start(&srv));
    assert_int_equal(feed_run_sensor(in, srv.url, "list", a3, spool, err, 120), 0);
    size_t n2 = count_lines(a2), n3 = count_lines(a3);
    wait_lines(out, n1 + n2 + n3, 120);
    stop_rsyslog();
    const char *want[] = {a1, a2, a3};
    assert_same(out, want, 3);
}

static void test_lpush_default_rpop(void **state)
{
    (void)state;
    if (!module[0])
        skip();
    PATHS;
    char a1[300];
    snprintf(a1, sizeof a1, "%s/alerts1.json", tdir);
    feed_make_input(in, COPIES);
    assert_true(test_redis_init(&srv, false, false, NULL));
    assert_true(test_redis_start(&srv));
    start_rsyslog("mode=\"queue\"", out);
    assert_int_equal(feed_run_sensor(in, srv.url, "lpush", a1, spool, err, 120), 0);
    wait_lines(out, count_lines(a1), 120);
    stop_rsyslog();
    const char *want[] = {a1};
    assert_same(out, want, 1);
}

static void test_channel(void **state)
{
    (void)state;
    if (!module[0])
        skip();
    PATHS;
    char a1[300];
    snprintf(a1, sizeof a1, "%s/alerts1.json", tdir);
    feed_make_input(in, COPIES);
    assert_true(test_redis_init(&srv, false, false, NULL));
    assert_true(test_redis_start(&srv));
    start_rsyslog("mode=\"subscribe\"", out);
    wait_subscribed(); /* PUBLISH reaches only those subscribed */
    assert_int_equal(feed_run_sensor(in, srv.url, "channel", a1, spool, err, 120), 0);
    wait_lines(out, count_lines(a1), 120);
    stop_rsyslog();
    const char *want[] = {a1};
    assert_same(out, want, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_list_across_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lpush_default_rpop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
