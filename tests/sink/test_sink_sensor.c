/* SPDX-License-Identifier: Apache-2.0 */
/* test_sink_sensor.c: the sensor sent SIGTERM mid-run while Redis is down,
 * then started again with Redis up and the same spool: every alert the first
 * run emitted (its --alerts-out copy) arrives in the Redis list exactly once,
 * in order, before the second run's alerts. */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "test_redis_server.h"

#define STRIPWATCH SW_BINARY_DIR "/stripwatch"
#define CAPTURE    SW_THIRD_PARTY_PCAPS "/arkime/smtp-decrypted.pcap"
#define COPIES     1000

static struct test_redis srv;
static char tdir[256];
static pid_t child = -1;

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(tdir, sizeof tdir, "%s/sw-sink-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(tdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        child = -1;
    }
    test_redis_cleanup(&srv);
    if (strstr(tdir, "sw-sink-"))
        test_sh("rm -rf '%s'", tdir);
    return 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *len = 0;
        return strdup("");
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    *len = fread(b, 1, (size_t)n, f);
    b[*len] = '\0';
    fclose(f);
    return b;
}

static size_t count_lines(const char *path)
{
    size_t len, n = 0;
    char *t = slurp(path, &len);
    for (size_t i = 0; i < len; i++)
        n += t[i] == '\n';
    free(t);
    return n;
}

/* COPIES copies of the capture, each shifted one hour later (classic pcap,
 * either byte order is kept as is: only the seconds field changes). */
static void make_inputs(const char *big, const char *empty)
{
    size_t len;
    char *p = slurp(CAPTURE, &len);
    assert_true(len > 24);
    uint32_t magic;
    memcpy(&magic, p, 4);
    bool swapped = magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u;
    assert_true(swapped || magic == 0xa1b2c3d4u || magic == 0xa1b23c4du);
    FILE *f = fopen(big, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, 24, f), 24);
    for (uint32_t c = 0; c < COPIES; c++) {
        size_t off = 24;
        while (off + 16 <= len) {
            uint32_t sec, incl;
            memcpy(&sec, p + off, 4);
            memcpy(&incl, p + off + 8, 4);
            if (swapped) {
                sec = __builtin_bswap32(sec);
                incl = __builtin_bswap32(incl);
            }
            assert_true(off + 16 + incl <= len);
            uint32_t ns = sec + c * 3600u;
            if (swapped)
                ns = __builtin_bswap32(ns);
            assert_int_equal(fwrite(&ns, 1, 4, f), 4);
            assert_int_equal(fwrite(p + off + 4, 1, 12 + incl, f), 12 + incl);
            off += 16 + incl;
        }
    }
    assert_int_equal(fclose(f), 0);
    f = fopen(empty, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, 24, f), 24);
    assert_int_equal(fclose(f), 0);
    free(p);
}

static pid_t spawn(const char *in, const char *alerts, const char *spool, const char *tag)
{
    char out[300], err[300];
    snprintf(out, sizeof out, "%s/%s.stdout", tdir, tag);
    snprintf(err, sizeof err, "%s/%s.stderr", tdir, tag);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(o, 1);
        dup2(e, 2);
        execl(STRIPWATCH, STRIPWATCH, "-r", in, "--redis", srv.url, "--spool", spool,
              "--alerts-out", alerts, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Exit status, or fails after timeout_s. */
static int wait_exit(pid_t pid, int timeout_s)
{
    for (int i = 0; i < timeout_s * 100; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            child = -1;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    fail_msg("stripwatch still running after %d s", timeout_s);
    return -1;
}

static void test_sigterm_then_restart(void **state)
{
    (void)state;
    char big[300], empty[300], spool[300], a1[300], a2[300];
    snprintf(big, sizeof big, "%s/big.pcap", tdir);
    snprintf(empty, sizeof empty, "%s/empty.pcap", tdir);
    snprintf(spool, sizeof spool, "%s/spool", tdir);
    snprintf(a1, sizeof a1, "%s/alerts1.json", tdir);
    snprintf(a2, sizeof a2, "%s/alerts2.json", tdir);
    make_inputs(big, empty);
    /* the port is chosen; Redis is not running yet */
    assert_true(test_redis_init(&srv, false, false, NULL));

    child = spawn(big, a1, spool, "run1");
    bool mid_run = false;
    for (int i = 0; i < 6000; i++) {
        int st;
        if (waitpid(child, &st, WNOHANG) == child) {
            child = -1;
            /* an offline run that reached its end with alerts left in the
             * spool failed (exit 1) and says how many and where */
            assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
            break;
        }
        if (count_lines(a1) >= 40) {
            kill(child, SIGTERM);
            mid_run = true;
            assert_int_equal(wait_exit(child, 60), 0);
            break;
        }
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(child, -1);
    size_t n1 = count_lines(a1);
    print_message("run 1: %zu alerts, SIGTERM %s\n", n1, mid_run ? "mid-run" : "after the end");
    assert_true(n1 >= 4);
    if (mid_run)
        assert_true(n1 < 4 * COPIES);
    /* all of them wait in the spool (its header line plus one line each) */
    assert_int_equal(count_lines(spool), n1 + 1);
    char e1[300], want[600];
    snprintf(e1, sizeof e1, "%s/run1.stderr", tdir);
    size_t el;
    char *et = slurp(e1, &el);
    snprintf(want, sizeof want, "stripwatch: %zu alerts not delivered, left in spool %s\n", n1,
             spool);
    if (!strstr(et, want))
        fail_msg("run 1 stderr lacks \"%s\":\n%s", want, et);
    free(et);

    assert_true(test_redis_start(&srv));
    child = spawn(CAPTURE, a2, spool, "run2");
    assert_int_equal(wait_exit(child, 120), 0);
    size_t n2 = count_lines(a2);
    assert_int_equal(n2, 6); /* health start, 4 alerts, health stop */

    /* Redis holds run 1's alerts then run 2's, each exactly once, in order */
    size_t l1, l2;
    char *t1 = slurp(a1, &l1), *t2 = slurp(a2, &l2);
    struct timeval tv = {5, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", srv.port, tv);
    assert_true(rc && !rc->err);
    redisReply *r = redisCommand(rc, "LRANGE stripwatch:alerts 0 -1");
    assert_non_null(r);
    assert_int_equal(r->elements, n1 + n2);
    const char *p = t1;
    for (size_t k = 0; k < r->elements; k++) {
        if (k == n1)
            p = t2;
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        if (strlen(r->element[k]->str) != (size_t)(nl - p) ||
            memcmp(r->element[k]->str, p, (size_t)(nl - p)) != 0)
            fail_msg("alert %zu differs:\n redis %s\n file  %.*s", k, r->element[k]->str,
                     (int)(nl - p), p);
        p = nl + 1;
    }
    freeReplyObject(r);
    redisFree(rc);
    free(t1);
    free(t2);
    /* and the spool is empty again */
    assert_int_equal(count_lines(spool), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sigterm_then_restart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
