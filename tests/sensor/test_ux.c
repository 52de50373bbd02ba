/* SPDX-License-Identifier: Apache-2.0 */
/* test_ux.c: what a person at a terminal sees: the summary at the end of an
 * offline run (exact text, -q silences it), the expired-policy warning once
 * per domain, --stats-interval counted in capture time offline, -r on a
 * named pipe fed by the test. Runs the stripwatch binary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "runbin.h"

#define PCAPS SW_SOURCE_DIR "/pcaps/"

/* How many times needle occurs in text. */
static void count_lines_with(const char *text, const char *needle, int *n)
{
    *n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        (*n)++;
}

/* stderr up to the first statistics line */
static char *before_stats(const char *err)
{
    const char *s = strstr(err, "stripwatch: stats ");
    size_t n = s ? (size_t)(s - err) : strlen(err);
    char *b = strndup(err, n);
    assert_non_null(b);
    return b;
}

static void test_summary(void **st)
{
    char *dir = *st;
    char *argv[] = {STRIPWATCH,
                    "-r",
                    PCAPS "mitm-strip-sender-side.pcap",
                    "--policy-file",
                    PCAPS "policies.json",
                    NULL};
    struct run_out r;
    run(dir, argv, NULL, 60, &r);
    assert_int_equal(r.status, 0);
    char *sum = before_stats(r.err);
    assert_string_equal(
        sum, "stripwatch: summary: 19 packets, 1 SMTP session, 0 with TLS (0%), 2 alerts\n"
             "  alerts by rule                 high medium    low\n"
             "  starttls.stripped                 1      0      0\n"
             "  delivery.plaintext_policy         1      0      0\n"
             "  alerts:\n"
             "  starttls.stripped high 192.0.2.10 -> 198.51.100.25:25 example.org "
             "(Sd701486d30332b04)\n"
             "  delivery.plaintext_policy high 192.0.2.10 -> 198.51.100.25:25 example.org "
             "(Sd701486d30332b04)\n");
    free(sum);
    /* the summary comes before the statistics, which end with the policy line */
    assert_non_null(strstr(r.err, "\nstripwatch: stats packets=19 bytes=2192 filtered=0\n"));
    assert_non_null(strstr(r.err, " expired=0 expired_domains=0 file_dropped=0\n"));
    run_free(&r);

    /* two sessions, one with TLS; two workers give the same text */
    char *argv2[] = {STRIPWATCH,
                     "-r",
                     PCAPS "learned-posture-then-strip-sender-side.pcap",
                     "--policy-file",
                     PCAPS "policies.json",
                     "--workers",
                     "2",
                     NULL};
    run(dir, argv2, NULL, 60, &r);
    assert_int_equal(r.status, 0);
    sum = before_stats(r.err);
    assert_string_equal(
        sum, "stripwatch: summary: 43 packets, 2 SMTP sessions, 1 with TLS (50%), 2 alerts\n"
             "  alerts by rule                 high medium    low\n"
             "  starttls.stripped                 1      0      0\n"
             "  delivery.plaintext_policy         1      0      0\n"
             "  alerts:\n"
             "  starttls.stripped high 192.0.2.10 -> 198.51.100.25:25 example.org "
             "(S8d846c256741b9a9)\n"
             "  delivery.plaintext_policy high 192.0.2.10 -> 198.51.100.25:25 example.org "
             "(S8d846c256741b9a9)\n");
    free(sum);
    run_free(&r);

    /* no alert: one line */
    char *argv3[] = {STRIPWATCH, "-r", PCAPS "postfix-postfix-starttls-tls13.pcap", NULL};
    run(dir, argv3, NULL, 60, &r);
    assert_int_equal(r.status, 0);
    sum = before_stats(r.err);
    assert_string_equal(
        sum, "stripwatch: summary: 23 packets, 1 SMTP session, 1 with TLS (100%), 0 alerts\n");
    free(sum);
    run_free(&r);

    /* -q: nothing on stderr */
    char *argv4[] = {STRIPWATCH,
                     "-q",
                     "-r",
                     PCAPS "mitm-strip-sender-side.pcap",
                     "--policy-file",
                     PCAPS "policies.json",
                     NULL};
    run(dir, argv4, NULL, 60, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    int n;
    count_lines_with(r.out, "\"kind\":\"alert\"", &n);
    assert_int_equal(n, 2);
    run_free(&r);
}

/* Three captures of sessions to example.org, judged against a snapshot whose
 * policy expired before them: the warning comes once, the alerts say
 * "expired", the statistics count three answers and one domain. */
static void test_expired_warning_once(void **st)
{
    char *dir = *st;
    char *argv[] = {STRIPWATCH,
                    "-r",
                    PCAPS "mitm-strip-sender-side.pcap",
                    "-r",
                    PCAPS "mitm-xxxxxxxa-sender-side.pcap",
                    "-r",
                    PCAPS "policy-mx-mismatch.pcap",
                    "--policy-file",
                    SW_SOURCE_DIR "/tests/golden_alerts/policies-expired.json",
                    NULL};
    struct run_out r;
    run(dir, argv, NULL, 60, &r);
    assert_int_equal(r.status, 0);
    const char *line =
        "stripwatch: policy example.org: expired on 2026-11-08T08:00:00Z (fetched "
        "2026-11-01T08:00:00Z, max_age 604800), before the capture time; no refresh offline "
        "(--fetch-policies refreshes): judging with it (RFC 8461 §5.1)\n";
    assert_int_equal(strncmp(r.err, line, strlen(line)), 0);
    int n;
    count_lines_with(r.err, "stripwatch: policy ", &n);
    assert_int_equal(n, 1);
    count_lines_with(r.out, "\"status\":\"expired\"", &n);
    assert_true(n >= 3);
    count_lines_with(r.out, "\"status\":\"valid\"", &n);
    assert_int_equal(n, 0);
    assert_non_null(strstr(r.err, " expired=3 expired_domains=1 file_dropped=0\n"));
    run_free(&r);
}

/* Offline, --stats-interval counts capture time: three captures of
 * 17:29:31, 17:29:36 and 17:29:44 with an interval of 4 s give statistics
 * at the first packet of the second (packet 24) and third (packet 51)
 * capture, then at the end. */
static void test_stats_interval_offline(void **st)
{
    char *dir = *st;
    char *argv[] = {STRIPWATCH,
                    "-r",
                    PCAPS "postfix-postfix-starttls-tls13.pcap",
                    "-r",
                    PCAPS "postfix-exim-starttls.pcap",
                    "-r",
                    PCAPS "exim-postfix-pipelining-chunking.pcap",
                    "--stats-interval",
                    "4",
                    NULL};
    struct run_out r;
    run(dir, argv, NULL, 60, &r);
    assert_int_equal(r.status, 0);
    int n;
    count_lines_with(r.err, "stripwatch: stats packets=", &n);
    assert_int_equal(n, 3);
    const char *a = strstr(r.err, "stripwatch: stats packets=24 bytes=");
    const char *b = strstr(r.err, "stripwatch: stats packets=51 bytes=");
    const char *c = strstr(r.err, "stripwatch: stats packets=63 bytes=");
    const char *s = strstr(r.err, "stripwatch: summary: 63 packets");
    assert_true(a && b && c && s && a < b && b < s && s < c);
    run_free(&r);

    /* 0 and the default (offline: off) print only the final statistics */
    char *argv0[] = {STRIPWATCH,
                     "-r",
                     PCAPS "postfix-postfix-starttls-tls13.pcap",
                     "-r",
                     PCAPS "exim-postfix-pipelining-chunking.pcap",
                     "--stats-interval",
                     "0",
                     NULL};
    run(dir, argv0, NULL, 60, &r);
    assert_int_equal(r.status, 0);
    count_lines_with(r.err, "stripwatch: stats packets=", &n);
    assert_int_equal(n, 1);
    run_free(&r);

    char *bad[] = {STRIPWATCH,         "-r", PCAPS "mitm-strip-sender-side.pcap",
                   "--stats-interval", "5m", NULL};
    run(dir, bad, NULL, 60, &r);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.err,
                        "stripwatch: --stats-interval: \"5m\": not a number in 0-31536000\n");
    run_free(&r);
}

/* -r FIFO: read like stdin (no peek, no map), fed by a child of the test. */
static void test_named_pipe(void **st)
{
    char *dir = *st;
    char fifo[4200];
    snprintf(fifo, sizeof(fifo), "%s/capture.fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    size_t len;
    char *pcap = slurp(PCAPS "mitm-strip-sender-side.pcap", &len);
    assert_non_null(pcap);
    assert_true(len > 24);
    pid_t w = fork();
    assert_true(w >= 0);
    if (w == 0) {
        int fd = open(fifo, O_WRONLY);
        if (fd < 0)
            _exit(1);
        /* in two writes, so that the reader sees the header arrive alone */
        ssize_t a = write(fd, pcap, 24);
        struct timespec d = {0, 50 * 1000 * 1000};
        nanosleep(&d, NULL);
        ssize_t b = write(fd, pcap + 24, len - 24);
        _exit(a == 24 && b == (ssize_t)(len - 24) ? 0 : 1);
    }
    char *argv[] = {STRIPWATCH, "-r", fifo, "--policy-file", PCAPS "policies.json", NULL};
    struct run_out r;
    run(dir, argv, NULL, 60, &r);
    int ws;
    assert_int_equal(waitpid(w, &ws, 0), w);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    assert_int_equal(r.status, 0);
    int n;
    count_lines_with(r.out, "\"kind\":\"alert\"", &n);
    assert_int_equal(n, 2);
    assert_non_null(strstr(r.out, "\"rule\":{\"id\":\"starttls.stripped\""));
    assert_non_null(strstr(r.out, "\"rule\":{\"id\":\"delivery.plaintext_policy\""));
    assert_non_null(strstr(r.err, "stripwatch: summary: 19 packets, 1 SMTP session"));
    run_free(&r);
    free(pcap);
}

static int setup(void **st)
{
    *st = temp_dir();
    return *st ? 0 : -1;
}

static int teardown(void **st)
{
    rm_rf(*st);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_summary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_warning_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_interval_offline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_named_pipe, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
