/* SPDX-License-Identifier: Apache-2.0 */
/* test_sighup.c: SIGHUP and the stop signals on a running sensor. The
 * sensor reads `-r -` from a FIFO the test keeps open and feeds capture by
 * capture (each shifted in time, followed by a non-IP frame far enough
 * ahead to expire its flows), with its options in a config file. Between
 * feeds the test rewrites the config, renames the alerts file and sends
 * SIGHUP, then waits for the alerts it expects: the process keeps running,
 * new alerts follow the new rule tuning and go to a new file at the
 * configured path, a bad line keeps the running configuration with the
 * exact error line, an option that needs a restart says so, and learned
 * posture survives (a strip judged from it after the reloads, and in the
 * state file written at SIGTERM). Once with one worker, once with three.
 * SIGQUIT and SIGINT also stop cleanly and save the state file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>

#include "alertcmp.h"
#include "runbin.h"

#define PCAPS      SW_SOURCE_DIR "/pcaps/"
#define LEARN      PCAPS "postfix-postfix-starttls-tls13.pcap"
#define STRIP      PCAPS "mitm-strip-sender-side.pcap"
#define SUBMISSION PCAPS "submission-auth-plain-cleartext.pcap"
#define BASE_SEC   1795368000u /* 2026-11-22, the captures' day */
#define SLOT_SEC   1000u       /* each feed starts this much after the last */
#define DEADLINE_S 60

static char *tmp;

static char *tpath(const char *name)
{
    static char buf[8][4096];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmp, name);
    return buf[i];
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

/* Writes the records of the classic pcap at path to fd, shifted so that the
 * first starts at BASE_SEC + slot * SLOT_SEC, then a non-IP frame 900 s
 * later (the capture clock's tick expires the flows: their sessions end). */
static void feed(int fd, const char *path, unsigned slot)
{
    size_t len;
    char *b = slurp(path, &len);
    assert_non_null(b);
    assert_true(len >= 24);
    const uint8_t *u = (const uint8_t *)b;
    assert_int_equal(le32(u), 0xa1b2c3d4u);
    uint32_t start = BASE_SEC + slot * SLOT_SEC, first = 0;
    size_t off = 24;
    while (off + 16 <= len) {
        uint8_t h[16];
        memcpy(h, u + off, 16);
        uint32_t incl = le32(h + 8);
        assert_true(off + 16 + incl <= len);
        if (off == 24)
            first = le32(h);
        put32(h, le32(h) - first + start);
        write_all(fd, h, 16);
        write_all(fd, u + off + 16, incl);
        off += 16 + incl;
    }
    free(b);
    uint8_t tick[16 + 60];
    memset(tick, 0, sizeof(tick));
    put32(tick, start + 900);
    put32(tick + 8, 60);
    put32(tick + 12, 60);
    tick[16 + 12] = 0x88; /* EtherType 0x88b5: local experimental */
    tick[16 + 13] = 0xb5;
    write_all(fd, tick, sizeof(tick));
}

static void pcap_header(int fd)
{
    size_t len;
    char *b = slurp(SUBMISSION, &len);
    assert_true(len >= 24);
    write_all(fd, b, 24);
    free(b);
}

/* Alert lines in path (health records not counted). */
static size_t count_lines(const char *path)
{
    size_t len, n = 0;
    char *s = slurp(path, &len);
    for (char *p = s, *e; p < s + len && (e = memchr(p, '\n', (size_t)(s + len - p))); p = e + 1)
        n += !alert_line_is_health(p, (size_t)(e - p));
    free(s);
    return n;
}

/* Waits until path holds at least n lines (the sensor must stay alive). */
static void wait_lines(pid_t pid, const char *path, size_t n)
{
    for (int i = 0; i < DEADLINE_S * 100; i++) {
        if (count_lines(path) >= n)
            return;
        assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);
        struct timespec d = {0, 10 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
    fail_msg("%s: %zu lines after %d s, want %zu", path, count_lines(path), DEADLINE_S, n);
}

/* Waits until the sensor's stderr holds needle. */
static void wait_err(pid_t pid, const char *needle)
{
    for (int i = 0; i < DEADLINE_S * 100; i++) {
        size_t len;
        char *e = slurp(tpath(".stderr"), &len);
        bool found = strstr(e, needle) != NULL;
        free(e);
        if (found)
            return;
        assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);
        struct timespec d = {0, 10 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
    fail_msg("stderr never said: %s", needle);
}

/* Alert i (from 0, health records not counted) of the alerts file: rule
 * id and severity. */
static void expect_alert(const char *path, size_t i, const char *rule, int severity)
{
    size_t len;
    char *s = slurp(path, &len), *line = s;
    for (size_t k = 0; line;) {
        char *nl = strchr(line, '\n');
        if (nl && alert_line_is_health(line, (size_t)(nl - line))) {
            line = nl + 1;
            continue;
        }
        if (k++ == i)
            break;
        line = nl ? nl + 1 : NULL;
    }
    assert_non_null(line);
    char *end = strchr(line, '\n');
    assert_non_null(end);
    json_error_t je;
    json_t *j = json_loadb(line, (size_t)(end - line), 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "rule"), "id")), rule);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "event"), "severity")),
                     severity);
    json_decref(j);
    free(s);
}

static void write_config(const char *body)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "# stripwatch test configuration\n"
             "alerts-out = %s\n"
             "sessions-out = %s\n"
             "state-file = %s\n"
             "%s",
             tpath("alerts.json"), tpath("sessions.json"), tpath("state.json"), body);
    /* replaced by a rename, as an editor or a deployment would */
    assert_true(spit(tpath("new.conf"), text, strlen(text)));
    assert_int_equal(rename(tpath("new.conf"), tpath("stripwatch.conf")), 0);
}

static pid_t start(const char *workers, int *fd)
{
    unlink(tpath("fifo"));
    assert_int_equal(mkfifo(tpath("fifo"), 0600), 0);
    char *argv[] = {STRIPWATCH, "--config",  tpath("stripwatch.conf"), "-r",
                    "-",        "--workers", (char *)workers,          NULL};
    char conf[4096], fifo[4096];
    snprintf(conf, sizeof(conf), "%s", argv[2]);
    argv[2] = conf;
    snprintf(fifo, sizeof(fifo), "%s", tpath("fifo"));
    pid_t pid = run_start(tmp, argv, fifo);
    assert_true(pid > 0);
    *fd = open(fifo, O_WRONLY);
    assert_true(*fd >= 0);
    pcap_header(*fd);
    return pid;
}

static void reload_run(const char *workers)
{
    char *alerts = strdup(tpath("alerts.json")), *rotated = strdup(tpath("alerts.json.1"));
    char *state = strdup(tpath("state.json")), *conf = strdup(tpath("stripwatch.conf"));
    unlink(alerts);
    unlink(rotated);
    unlink(state);
    write_config("[starttls.unused]\n"
                 "enabled = no\n");
    int fd;
    pid_t pid = start(workers, &fd);

    /* 1: posture learned from a STARTTLS session; auth.cleartext alone */
    feed(fd, LEARN, 0);
    feed(fd, SUBMISSION, 1);
    wait_lines(pid, alerts, 1);
    expect_alert(alerts, 0, "auth.cleartext", 3);

    /* 2: severities tuned, the rule enabled again; logrotate's rename */
    write_config("[starttls.unused]\n"
                 "severity = high ; was low\n"
                 "[auth.cleartext]\n"
                 "severity = medium\n");
    assert_int_equal(rename(alerts, rotated), 0);
    kill(pid, SIGHUP);
    feed(fd, SUBMISSION, 2);
    wait_lines(pid, alerts, 2);
    expect_alert(alerts, 0, "starttls.unused", 3); /* a session's alerts: in rule order */
    expect_alert(alerts, 1, "auth.cleartext", 2);
    assert_int_equal(count_lines(rotated), 1);

    /* 3: a bad line: the running configuration stays */
    write_config("[starttls.unused]\n"
                 "enabled = no\n"
                 "rate-limit = ten\n");
    kill(pid, SIGHUP);
    feed(fd, SUBMISSION, 3);
    wait_lines(pid, alerts, 4);
    expect_alert(alerts, 2, "starttls.unused", 3);
    expect_alert(alerts, 3, "auth.cleartext", 2);

    /* 4: auth.cleartext off; snaplen needs a restart, workers (given on the
     * command line, which wins) does not change; posture survived */
    write_config("snaplen = 1500\n"
                 "workers = 5\n"
                 "[starttls.unused]\n"
                 "severity = high\n"
                 "[auth.cleartext]\n"
                 "enabled = off\n");
    kill(pid, SIGHUP);
    feed(fd, STRIP, 4);
    feed(fd, SUBMISSION, 5);
    wait_lines(pid, alerts, 6);
    expect_alert(alerts, 4, "starttls.stripped", 3);
    expect_alert(alerts, 5, "starttls.unused", 3);

    kill(pid, SIGTERM);
    int status = run_wait(pid, 30);
    close(fd);
    struct run_out o;
    run_collect(tmp, &o);
    assert_int_equal(status, 0);
    char want[8192];
    snprintf(want, sizeof(want),
             "stripwatch: SIGHUP: reloaded %s\n"
             "stripwatch: SIGHUP: %s:7: rate-limit: \"ten\": not a number in 0-1000000; keeping "
             "the running configuration\n"
             "stripwatch: SIGHUP: snaplen: changed; it needs a restart (the running value stays)\n"
             "stripwatch: SIGHUP: reloaded %s\n"
             "stripwatch: summary: ",
             conf, conf, conf);
    if (strncmp(o.err, want, strlen(want)) != 0)
        fail_msg("stderr:\n%s\nwant it to start with:\n%s", o.err, want);
    /* workers= is the running value; 1 + 6 alerts, both disabled verdicts counted */
    char wn[64];
    snprintf(wn, sizeof(wn), "stripwatch: stats workers n=%s ", workers);
    assert_non_null(strstr(o.err, wn));
    assert_non_null(strstr(o.err, " alerts=7 suppressed=0 suppressed_disabled=2 "
                                  "suppressed_allow_server=0 suppressed_allow_client=0 "
                                  "suppressed_allow_domain=0 "));
    run_free(&o);
    assert_int_equal(count_lines(rotated), 1);
    assert_int_equal(count_lines(alerts), 6);
    /* the session records were all written (only alerts are suppressed) */
    assert_int_equal(count_lines(tpath("sessions.json")), 6);

    /* the state file, written at SIGTERM, holds what was learned at first */
    json_error_t je;
    json_t *st = json_load_file(state, 0, &je);
    assert_non_null(st);
    json_t *entries = json_object_get(st, "entries");
    size_t i;
    json_t *e;
    bool found = false;
    json_array_foreach(entries, i, e)
    {
        const char *key = json_string_value(json_object_get(e, "key"));
        found |= key && strstr(key, "198.51.100.25") != NULL;
    }
    assert_true(found);
    json_decref(st);
    free(alerts);
    free(rotated);
    free(state);
    free(conf);
}

static void test_reload_one_worker(void **st)
{
    (void)st;
    reload_run("1");
}

static void test_reload_three_workers(void **st)
{
    (void)st;
    reload_run("3");
}

/* SIGQUIT and SIGINT stop like SIGTERM: exit 0, the state file saved. */
static void test_stop_signals_save_state(void **st)
{
    (void)st;
    static const int sigs[] = {SIGQUIT, SIGINT};
    for (size_t k = 0; k < sizeof(sigs) / sizeof(sigs[0]); k++) {
        char *alerts = strdup(tpath("alerts.json")), *state = strdup(tpath("state.json"));
        unlink(alerts);
        unlink(state);
        write_config("");
        int fd;
        pid_t pid = start("1", &fd);
        feed(fd, LEARN, 0);
        feed(fd, SUBMISSION, 1);
        wait_lines(pid, alerts, 2);
        kill(pid, sigs[k]);
        int status = run_wait(pid, 30);
        close(fd);
        struct run_out o;
        run_collect(tmp, &o);
        assert_int_equal(status, 0);
        assert_non_null(strstr(o.err, "stripwatch: stats packets="));
        run_free(&o);
        json_error_t je;
        json_t *s = json_load_file(state, 0, &je);
        if (!s)
            fail_msg("signal %d: %s: %s", sigs[k], state, je.text);
        assert_true(json_array_size(json_object_get(s, "entries")) > 0);
        json_decref(s);
        free(alerts);
        free(state);
    }
}

/* A SIGHUP whose config file went missing keeps running, one line. */
static void test_missing_config(void **st)
{
    (void)st;
    char *alerts = strdup(tpath("alerts.json")), *conf = strdup(tpath("stripwatch.conf"));
    unlink(alerts);
    write_config("");
    int fd;
    pid_t pid = start("1", &fd);
    feed(fd, SUBMISSION, 0);
    wait_lines(pid, alerts, 2); /* running, its signal handlers in place */
    unlink(conf);
    kill(pid, SIGHUP);
    feed(fd, SUBMISSION, 1);
    wait_lines(pid, alerts, 4);
    char want[4400];
    snprintf(want, sizeof(want),
             "stripwatch: SIGHUP: %s: No such file or directory; keeping the running "
             "configuration\n",
             conf);
    wait_err(pid, want);
    kill(pid, SIGTERM);
    assert_int_equal(run_wait(pid, 30), 0);
    close(fd);
    struct run_out o;
    run_collect(tmp, &o);
    assert_int_equal(strncmp(o.err, want, strlen(want)), 0);
    run_free(&o);
    free(alerts);
    free(conf);
}

static int setup(void **st)
{
    (void)st;
    signal(SIGPIPE, SIG_IGN);
    tmp = temp_dir();
    return tmp ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    rm_rf(tmp);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reload_one_worker),
        cmocka_unit_test(test_reload_three_workers),
        cmocka_unit_test(test_stop_signals_save_state),
        cmocka_unit_test(test_missing_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
