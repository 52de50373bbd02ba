/* SPDX-License-Identifier: Apache-2.0 */
/* test_syslog.c: --syslog against a real rsyslogd started by the test (its
 * own config, pid file, work directory and unix socket). glibc's syslog(3)
 * always writes to /dev/log, so the sensor runs in a private mount namespace
 * (unshare -m) where the test's socket is bind-mounted over /dev/log (over a
 * small tmpfs /dev when the machine has no /dev/log). Asserts the exact lines
 * that arrive, with facility, priority, ident and pid, and that nothing went
 * to stderr. Skips, saying why, without rsyslogd or mount namespaces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "runbin.h"

#define PCAPS SW_SOURCE_DIR "/pcaps/"

struct lab {
    char *dir;
    char sock[4200], out[4200];
    pid_t rsyslogd;
};

static const char *rsyslogd_path(void)
{
    static const char *const cand[] = {"/usr/sbin/rsyslogd", "/sbin/rsyslogd"};
    for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++)
        if (access(cand[i], X_OK) == 0)
            return cand[i];
    return NULL;
}

static int setup(void **st)
{
    struct lab *l = calloc(1, sizeof(*l));
    if (!l || !(l->dir = temp_dir()))
        return -1;
    *st = l;
    return 0;
}

static int teardown(void **st)
{
    struct lab *l = *st;
    if (l->rsyslogd > 0) {
        kill(l->rsyslogd, SIGTERM);
        if (run_wait(l->rsyslogd, 10) < 0)
            fprintf(stderr, "rsyslogd did not stop on SIGTERM (killed)\n");
    }
    rm_rf(l->dir);
    free(l);
    return 0;
}

/* Starts rsyslogd with a socket and an output file of the test's own; false
 * (with a reason printed) when it cannot. */
static bool start_rsyslogd(struct lab *l)
{
    const char *bin = rsyslogd_path();
    if (!bin) {
        print_message("skipped: rsyslogd not installed (Debian package rsyslog, .ci/deps)\n");
        return false;
    }
    char conf[4200], work[4200], pid[4200];
    snprintf(conf, sizeof(conf), "%s/rsyslog.conf", l->dir);
    snprintf(work, sizeof(work), "%s/work", l->dir);
    snprintf(pid, sizeof(pid), "%s/rsyslogd.pid", l->dir);
    snprintf(l->sock, sizeof(l->sock), "%s/log.sock", l->dir);
    snprintf(l->out, sizeof(l->out), "%s/messages", l->dir);
    assert_int_equal(mkdir(work, 0700), 0);
    char text[20000];
    int n = snprintf(text, sizeof(text),
                     "global(workDirectory=\"%s\")\n"
                     "module(load=\"imuxsock\" SysSock.Use=\"off\")\n"
                     "input(type=\"imuxsock\" Socket=\"%s\")\n"
                     "template(name=\"t\" type=\"string\" string=\"%%syslogfacility-text%%."
                     "%%syslogseverity-text%% %%programname%%[%%procid%%]:"
                     "%%msg:::drop-last-lf%%\\n\")\n"
                     "*.* action(type=\"omfile\" file=\"%s\" template=\"t\")\n",
                     work, l->sock, l->out);
    assert_true(n > 0 && (size_t)n < sizeof(text));
    assert_true(spit(conf, text, (size_t)n));
    char *argv[] = {(char *)bin, "-n", "-f", conf, "-i", pid, NULL};
    l->rsyslogd = run_start(l->dir, argv, NULL);
    assert_true(l->rsyslogd > 0);
    /* wait for its socket, not for time */
    struct timespec d = {0, 20 * 1000 * 1000};
    struct stat sb;
    for (int i = 0; i < 1000 && stat(l->sock, &sb) != 0; i++) {
        if (waitpid(l->rsyslogd, NULL, WNOHANG) == l->rsyslogd) {
            l->rsyslogd = 0;
            fail_msg("rsyslogd exited before creating %s", l->sock);
        }
        nanosleep(&d, NULL);
    }
    assert_int_equal(stat(l->sock, &sb), 0);
    assert_true(S_ISSOCK(sb.st_mode));
    return true;
}

/* Runs stripwatch args... in a private mount namespace with the test's
 * socket over /dev/log; returns its pid through *pid. */
static void run_in_ns(struct lab *l, const char *args, struct run_out *r, pid_t *pid)
{
    char script[12000];
    snprintf(script, sizeof(script),
             "set -e\n"
             "if [ -e /dev/log ] || [ -L /dev/log ]; then\n"
             "  mount --bind '%s' /dev/log\n"
             "else\n"
             "  mkdir -p '%s/dev' && mount --rbind /dev '%s/dev'\n"
             "  mount -t tmpfs -o size=64k,mode=755 stripwatch-test /dev\n"
             "  : > /dev/null; : > /dev/log\n"
             "  mount --bind '%s/dev/null' /dev/null\n"
             "  mount --bind '%s' /dev/log\n"
             "fi\n"
             "exec '%s' %s\n",
             l->sock, l->dir, l->dir, l->dir, l->sock, STRIPWATCH, args);
    char *argv[] = {"unshare", "-m", "sh", "-c", script, NULL};
    *pid = run_start(l->dir, argv, NULL);
    assert_true(*pid > 0);
    r->status = run_wait(*pid, 60);
    run_collect(l->dir, r);
}

/* Waits until the output file holds a line containing needle. */
static char *wait_for_line(struct lab *l, const char *needle)
{
    struct timespec d = {0, 20 * 1000 * 1000};
    for (int i = 0; i < 1500; i++) {
        size_t len;
        char *t = slurp(l->out, &len);
        if (t && strstr(t, needle))
            return t;
        free(t);
        nanosleep(&d, NULL);
    }
    fail_msg("%s: no line with \"%s\" within 30 s", l->out, needle);
    return NULL;
}

static bool can_unshare(const char *dir)
{
    char *argv[] = {"unshare", "-m", "true", NULL};
    struct run_out r;
    run(dir, argv, NULL, 10, &r);
    bool ok = r.status == 0;
    if (!ok)
        print_message("skipped: cannot make a mount namespace (unshare -m: %s)\n",
                      r.err[0] ? r.err : "failed");
    run_free(&r);
    return ok;
}

static void test_syslog_lines(void **st)
{
    struct lab *l = *st;
    if (!can_unshare(l->dir) || !start_rsyslogd(l)) {
        skip();
        return;
    }
    struct run_out r;
    pid_t pid;
    char args[8000];
    snprintf(args, sizeof(args),
             "--syslog -r '%smitm-strip-sender-side.pcap' --policy-file "
             "'%s/tests/golden_alerts/policies-expired.json'",
             PCAPS, SW_SOURCE_DIR);
    run_in_ns(l, args, &r, &pid);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, ""); /* everything went to syslog */
    assert_non_null(strstr(r.out, "\"rule\":{\"id\":\"starttls.stripped\""));
    char *t = wait_for_line(l, " stats policy ");
    char head[64];
    snprintf(head, sizeof(head), "stripwatch[%d]: ", (int)pid);
    char want[8000];
    snprintf(want, sizeof(want),
             "daemon.warning %spolicy example.org: expired on 2026-11-08T08:00:00Z (fetched "
             "2026-11-01T08:00:00Z, max_age 604800), before the capture time; no refresh "
             "offline (--fetch-policies refreshes): judging with it (RFC 8461 §5.1)\n"
             "daemon.info %ssummary: 19 packets, 1 SMTP session, 0 with TLS (0%%), 2 alerts\n"
             "daemon.info %s  alerts by rule                 high medium    low\n"
             "daemon.info %s  starttls.stripped                 1      0      0\n"
             "daemon.info %s  delivery.plaintext_policy         1      0      0\n"
             "daemon.info %s  alerts:\n"
             "daemon.info %s  starttls.stripped high 192.0.2.10 -> 198.51.100.25:25 "
             "example.org (Sd701486d30332b04)\n"
             "daemon.info %s  delivery.plaintext_policy high 192.0.2.10 -> 198.51.100.25:25 "
             "example.org (Sd701486d30332b04)\n"
             "daemon.info %sstats packets=19 bytes=2192 filtered=0\n",
             head, head, head, head, head, head, head, head, head);
    assert_memory_equal(t, want, strlen(want));
    int stats = 0;
    for (const char *p = t; (p = strstr(p, "]: stats ")) != NULL; p++)
        stats++;
    assert_int_equal(stats, 11);
    free(t);
    run_free(&r);

    /* a runtime error (bad input, exit 1) is logged at err */
    snprintf(args, sizeof(args), "--syslog -r '%s/no-such.pcap'", l->dir);
    run_in_ns(l, args, &r, &pid);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.err, "");
    snprintf(want, sizeof(want), "daemon.err stripwatch[%d]: %s/no-such.pcap: ", (int)pid, l->dir);
    t = wait_for_line(l, want);
    free(t);
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_syslog_lines, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
