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

/* Waits until the sensor's stderr holds needle n times. */
static void wait_err_n(pid_t pid, const char *needle, int n)
{
    for (int i = 0; i < DEADLINE_S * 100; i++) {
        size_t len;
        char *e = slurp(tpath(".stderr"), &len);
        int found = 0;
        for (const char *p = e; (p = strstr(p, needle)) != NULL; p += strlen(needle))
            found++;
        free(e);
        if (found >= n)
            return;
        assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);
        struct timespec d = {0, 10 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
    fail_msg("stderr never said %d times: %s", n, needle);
}

static void wait_err(pid_t pid, const char *needle)
{
    wait_err_n(pid, needle, 1);
}

/* Alert i (from 0, health records not counted) of the alerts file. */
static json_t *alert_json(const char *path, size_t i)
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
    free(s);
    return j;
}

/* Alert i of the alerts file: rule id and severity. */
static void expect_alert(const char *path, size_t i, const char *rule, int severity)
{
    json_t *j = alert_json(path, i);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "rule"), "id")), rule);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "event"), "severity")),
                     severity);
    json_decref(j);
}

/* The mta_sts object of alert i: source (NULL: null), status, detail (NULL:
 * none). */
static void expect_mta_sts(const char *path, size_t i, const char *source, const char *status,
                           const char *detail)
{
    json_t *j = alert_json(path, i), *m = json_object_get(j, "mta_sts");
    assert_non_null(m);
    const char *src = json_string_value(json_object_get(m, "source"));
    const char *det = json_string_value(json_object_get(m, "detail"));
    if (source)
        assert_string_equal(src, source);
    else
        assert_null(src);
    assert_string_equal(json_string_value(json_object_get(m, "status")), status);
    if (detail)
        assert_string_equal(det, detail);
    else
        assert_null(det);
    json_decref(j);
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

/* The policy file on SIGHUP: a domain gone from it loses the policy it had
 * from the file (no delivery.plaintext_policy for a session after the
 * reload, its strip judged from learned posture alone), the domain kept
 * still alerts, and a file that does not parse changes nothing.
 * Policies: example.org (enforce, the strip capture's domain), example.com. */
#define POLICY_ORG                                                                                 \
    "\"example.org\": {\"id\": \"20261101T000000\", \"policy\": \"version: STSv1\\nmode: "         \
    "enforce\\nmx: mx.example.org\\nmax_age: 604800\\n\", \"fetched_at\": "                        \
    "\"2026-11-20T08:00:00Z\"}"
#define POLICY_COM                                                                                 \
    "\"example.com\": {\"id\": \"20261115T120000\", \"policy\": \"version: STSv1\\nmode: "         \
    "testing\\nmx: mx.example.com\\nmax_age: 86400\\n\", \"fetched_at\": "                         \
    "\"2026-11-22T08:00:05Z\"}"

static void write_policies(const char *text)
{
    assert_true(spit(tpath("new.json"), text, strlen(text)));
    assert_int_equal(rename(tpath("new.json"), tpath("policies.json")), 0);
}

static void test_reload_policy_file(void **st)
{
    (void)st;
    char *alerts = strdup(tpath("alerts.json")), *conf = strdup(tpath("stripwatch.conf"));
    char *pol = strdup(tpath("policies.json"));
    unlink(alerts);
    write_policies("{" POLICY_ORG ",\n " POLICY_COM "}\n");
    char body[4400];
    snprintf(body, sizeof(body), "policy-file = %s\n", pol);
    write_config(body);
    int fd;
    pid_t pid = start("1", &fd);

    /* 1: both domains loaded */
    feed(fd, STRIP, 0);
    wait_lines(pid, alerts, 2);
    expect_alert(alerts, 0, "starttls.stripped", 3);
    expect_alert(alerts, 1, "delivery.plaintext_policy", 3);
    expect_mta_sts(alerts, 1, "file", "valid", NULL);

    /* 2: example.com gone: example.org still alerts */
    char dropped[4400];
    snprintf(dropped, sizeof(dropped),
             "stripwatch: SIGHUP: %s: 1 domain no longer in the file: its policy dropped\n", pol);
    write_policies("{" POLICY_ORG "}\n");
    kill(pid, SIGHUP);
    feed(fd, STRIP, 1);
    wait_err_n(pid, dropped, 1);
    wait_lines(pid, alerts, 4);
    expect_alert(alerts, 2, "starttls.stripped", 3);
    expect_alert(alerts, 3, "delivery.plaintext_policy", 3);
    expect_mta_sts(alerts, 3, "file", "valid", NULL);

    /* 3: a file cut short: nothing dropped */
    char bad[4400];
    snprintf(bad, sizeof(bad),
             "stripwatch: SIGHUP: %s: line 1, column 16: not valid JSON: unexpected token near "
             "end of file; keeping the running configuration\n",
             pol);
    write_policies("{\"example.com\": ");
    kill(pid, SIGHUP);
    feed(fd, STRIP, 2);
    wait_err(pid, bad);
    wait_lines(pid, alerts, 6);
    expect_alert(alerts, 4, "starttls.stripped", 3);
    expect_alert(alerts, 5, "delivery.plaintext_policy", 3);
    expect_mta_sts(alerts, 5, "file", "valid", NULL);

    /* 4: example.org gone: the strip is judged as if no policy had ever
     * been loaded (the submission session after it shows that it was) */
    write_policies("{" POLICY_COM "}\n");
    kill(pid, SIGHUP);
    feed(fd, STRIP, 3);
    feed(fd, SUBMISSION, 4);
    wait_err_n(pid, dropped, 2);
    wait_lines(pid, alerts, 9);
    expect_alert(alerts, 6, "starttls.stripped", 3);
    expect_mta_sts(alerts, 6, NULL, "unknown", "offline: no policy in file or cache");
    expect_alert(alerts, 7, "starttls.unused", 1);
    expect_alert(alerts, 8, "auth.cleartext", 3);

    kill(pid, SIGTERM);
    assert_int_equal(run_wait(pid, 30), 0);
    close(fd);
    struct run_out o;
    run_collect(tmp, &o);
    char want[20000];
    snprintf(want, sizeof(want),
             "%sstripwatch: SIGHUP: reloaded %s\n%s%sstripwatch: SIGHUP: reloaded %s\n"
             "stripwatch: summary: ",
             dropped, conf, bad, dropped, conf);
    if (strncmp(o.err, want, strlen(want)) != 0)
        fail_msg("stderr:\n%s\nwant it to start with:\n%s", o.err, want);
    assert_non_null(strstr(o.err, " expired=0 expired_domains=0 file_dropped=2\n"));
    run_free(&o);
    assert_int_equal(count_lines(alerts), 9);
    free(alerts);
    free(conf);
    free(pol);
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
        cmocka_unit_test(test_reload_one_worker),       cmocka_unit_test(test_reload_three_workers),
        cmocka_unit_test(test_stop_signals_save_state), cmocka_unit_test(test_missing_config),
        cmocka_unit_test(test_reload_policy_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
