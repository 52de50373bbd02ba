/* SPDX-License-Identifier: Apache-2.0 */
/* test_tlsrpt_cli.c: TLS-RPT reports (RFC 8460) from the sensor
 * (--tlsrpt-out) on a shipped capture, the exact report file; the same
 * bytes for --workers 1 and 3 and from `stripwatch report --tlsrpt` on the
 * run's session log; a recipient domain past the recipients a record keeps;
 * the errors of both commands. Runs the stripwatch binary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "runbin.h"

#define PCAPS    SW_SOURCE_DIR "/pcaps/"
#define CAPTURE  PCAPS "learned-posture-then-strip-sender-side.pcap"
#define OBSERVER "sensor.example.net"
#define CONTACT  "mailto:tlsrpt@example.net"
/* RFC 8460 §5.3: sender!policy-domain!begin!end (the UTC day of 22 Nov 2026) */
#define REPORT_NAME OBSERVER "!example.org!1795305600!1795391999.json"

/* The capture: a delivery over STARTTLS to mx.example.org, then one in
 * clear after the man in the middle stripped the offer; example.org's
 * enforce policy names mx.example.org. */
static const char expected_sts[] =
    "{\n"
    "  \"organization-name\": \"sensor.example.net\",\n"
    "  \"date-range\": {\n"
    "    \"start-datetime\": \"2026-11-22T00:00:00Z\",\n"
    "    \"end-datetime\": \"2026-11-22T23:59:59Z\"\n"
    "  },\n"
    "  \"contact-info\": \"mailto:tlsrpt@example.net\",\n"
    "  \"report-id\": \"2026-11-22_example.org_sensor.example.net\",\n"
    "  \"policies\": [\n"
    "    {\n"
    "      \"policy\": {\n"
    "        \"policy-type\": \"sts\",\n"
    "        \"policy-string\": [\n"
    "          \"version: STSv1\",\n"
    "          \"mode: enforce\",\n"
    "          \"mx: mx.example.org\",\n"
    "          \"max_age: 604800\"\n"
    "        ],\n"
    "        \"policy-domain\": \"example.org\",\n"
    "        \"mx-host\": [\n"
    "          \"mx.example.org\"\n"
    "        ]\n"
    "      },\n"
    "      \"summary\": {\n"
    "        \"total-successful-session-count\": 1,\n"
    "        \"total-failure-session-count\": 1\n"
    "      },\n"
    "      \"failure-details\": [\n"
    "        {\n"
    "          \"result-type\": \"starttls-not-supported\",\n"
    "          \"sending-mta-ip\": \"192.0.2.10\",\n"
    "          \"receiving-mx-hostname\": \"mx.example.org\",\n"
    "          \"receiving-ip\": \"198.51.100.25\",\n"
    "          \"failed-session-count\": 1\n"
    "        }\n"
    "      ]\n"
    "    }\n"
    "  ]\n"
    "}\n";

/* The tlsa policy that pcaps/dane.json adds after the sts one. */
static const char expected_tlsa[] =
    "    {\n"
    "      \"policy\": {\n"
    "        \"policy-type\": \"tlsa\",\n"
    "        \"policy-string\": [\n"
    "          \"3 1 1 8f3c7a1d5e2b9046c1a7e3d2f5b8091c4e6a2d7f3b1c9e8a5d4f2b7c6e1a3d90\"\n"
    "        ],\n"
    "        \"policy-domain\": \"example.org\",\n"
    "        \"mx-host\": [\n"
    "          \"mx.example.org\"\n"
    "        ]\n"
    "      },\n"
    "      \"summary\": {\n"
    "        \"total-successful-session-count\": 1,\n"
    "        \"total-failure-session-count\": 1\n"
    "      },\n";

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

/* The names in dir (not starting with '.'), sorted, one a line. */
static char *listing(const char *dir)
{
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "ls '%s'", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char *buf = calloc(1, 4096);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 4095, p);
    buf[n] = '\0';
    pclose(p);
    return buf;
}

static char *mkdir_in(const char *dir, const char *name)
{
    char *p = malloc(4200);
    assert_non_null(p);
    snprintf(p, 4200, "%s/%s", dir, name);
    assert_int_equal(mkdir(p, 0700), 0);
    return p;
}

static char *report_of(const char *out)
{
    char path[4400];
    size_t len;
    snprintf(path, sizeof path, "%s/%s", out, REPORT_NAME);
    char *s = slurp(path, &len);
    assert_non_null(s);
    return s;
}

/* The sensor on capture with --workers w writing into dir/name; the session
 * log to dir/name.jsonl; dane: also pcaps/dane.json. Returns the report. */
static char *sensor_report(const char *dir, const char *name, const char *capture,
                           const char *workers, bool dane)
{
    char *out = mkdir_in(dir, name);
    char sessions[4300];
    snprintf(sessions, sizeof sessions, "%s/%s.jsonl", dir, name);
    char *argv[] = {STRIPWATCH,
                    "-q",
                    "-r",
                    (char *)capture,
                    "--policy-file",
                    PCAPS "policies.json",
                    "--observer-name",
                    OBSERVER,
                    "--tlsrpt-contact",
                    CONTACT,
                    "--tlsrpt-out",
                    out,
                    "--sessions-out",
                    sessions,
                    "--workers",
                    (char *)workers,
                    "--alerts-out",
                    "/dev/null",
                    dane ? "--dane-file" : NULL,
                    PCAPS "dane.json",
                    NULL};
    struct run_out r;
    run(dir, argv, NULL, 60, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    run_free(&r);
    char *names = listing(out);
    assert_string_equal(names, REPORT_NAME "\n");
    free(names);
    char *rep = report_of(out);
    free(out);
    return rep;
}

/* `stripwatch report --tlsrpt` on dir/name.jsonl into dir/name-offline. */
static char *offline_report(const char *dir, const char *name, bool dane)
{
    char oname[300], sessions[4300];
    snprintf(oname, sizeof oname, "%s-offline", name);
    snprintf(sessions, sizeof sessions, "%s/%s.jsonl", dir, name);
    char *out = mkdir_in(dir, oname);
    char *argv[] = {STRIPWATCH,
                    "report",
                    "--tlsrpt",
                    sessions,
                    "--tlsrpt-out",
                    out,
                    "--policy-file",
                    PCAPS "policies.json",
                    "--observer-name",
                    OBSERVER,
                    "--tlsrpt-contact",
                    CONTACT,
                    dane ? "--dane-file" : NULL,
                    PCAPS "dane.json",
                    NULL};
    struct run_out r;
    run(dir, argv, NULL, 60, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    assert_string_equal(r.out, "");
    run_free(&r);
    char *names = listing(out);
    assert_string_equal(names, REPORT_NAME "\n");
    free(names);
    char *rep = report_of(out);
    free(out);
    return rep;
}

static void test_sts_report(void **st)
{
    const char *dir = *st;
    char *one = sensor_report(dir, "w1", CAPTURE, "1", false);
    assert_string_equal(one, expected_sts);
    char *three = sensor_report(dir, "w3", CAPTURE, "3", false);
    assert_string_equal(three, expected_sts);
    char *off = offline_report(dir, "w1", false);
    assert_string_equal(off, expected_sts);
    free(one);
    free(three);
    free(off);

    /* a log cut in the middle of a line (the sensor still writing): that
     * line is named and skipped, the report counts the others, exit 1 */
    char path[4300], cut[4300];
    snprintf(path, sizeof path, "%s/w1.jsonl", dir);
    snprintf(cut, sizeof cut, "%s/cut.jsonl", dir);
    size_t len;
    char *log = slurp(path, &len);
    assert_non_null(log);
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += log[i] == '\n';
    char *text = malloc(len + 32);
    assert_non_null(text);
    memcpy(text, log, len);
    static const char part[] = "{\"event\": {\"dataset\"";
    memcpy(text + len, part, sizeof part - 1);
    assert_true(spit(cut, text, len + sizeof part - 1));
    free(text);
    free(log);
    char *out = mkdir_in(dir, "cut-offline");
    char *argv[] = {STRIPWATCH,
                    "report",
                    "--tlsrpt",
                    cut,
                    "--tlsrpt-out",
                    out,
                    "--policy-file",
                    PCAPS "policies.json",
                    "--observer-name",
                    OBSERVER,
                    "--tlsrpt-contact",
                    CONTACT,
                    NULL};
    struct run_out r;
    run(dir, argv, NULL, 60, &r);
    assert_int_equal(r.status, 1);
    char want[9000];
    snprintf(want, sizeof want,
             "stripwatch: %s:%zu: not JSON: ':' expected near end of file\n"
             "stripwatch: %s: 1 of %zu lines skipped; the reports count the others\n",
             cut, lines + 1, cut, lines + 1);
    assert_string_equal(r.err, want);
    run_free(&r);
    char *rep = report_of(out);
    assert_string_equal(rep, expected_sts);
    free(rep);
    free(out);
}

static void test_dane_report(void **st)
{
    const char *dir = *st;
    char *one = sensor_report(dir, "d1", CAPTURE, "1", true);
    /* the sts policy as without DANE, then the tlsa one */
    const char *cut = strstr(expected_sts, "    }\n  ]\n}\n");
    assert_non_null(cut);
    assert_memory_equal(one, expected_sts, (size_t)(cut - expected_sts));
    assert_non_null(strstr(one, expected_tlsa));
    char *three = sensor_report(dir, "d3", CAPTURE, "3", true);
    assert_string_equal(three, one);
    char *off = offline_report(dir, "d1", true);
    assert_string_equal(off, one);
    free(one);
    free(three);
    free(off);
}

/* A delivery in clear whose only recipient of example.org is the 141st,
 * past the 128 recipients a session record keeps one by one (its domain is
 * in rcpt_more_domains): the session still counts for example.org, from
 * the sensor and from the session log alike. */
static void test_recipient_past_kept(void **st)
{
    const char *dir = *st;
    char *rep = sensor_report(
        dir, "many", SW_SOURCE_DIR "/tests/precision/pcaps/recipients-enforce-past-kept.pcap", "1",
        false);
    assert_non_null(strstr(rep, "\"total-successful-session-count\": 0,\n"
                                "        \"total-failure-session-count\": 1\n"));
    assert_non_null(strstr(rep, "\"result-type\": \"starttls-not-supported\",\n"
                                "          \"sending-mta-ip\": \"192.0.2.10\",\n"
                                "          \"receiving-mx-hostname\": \"mx.example.org\",\n"
                                "          \"receiving-ip\": \"198.51.100.25\",\n"
                                "          \"failed-session-count\": 1\n"));
    char *off = offline_report(dir, "many", false);
    assert_string_equal(off, rep);
    free(off);
    free(rep);
}

/* the statistics line: 2 sessions counted, 1 report */
static void test_stats(void **st)
{
    const char *dir = *st;
    char *argv[] = {
        STRIPWATCH,     "-r",        CAPTURE,        "--policy-file", PCAPS "policies.json",
        "--tlsrpt-out", (char *)dir, "--alerts-out", "/dev/null",     NULL};
    struct run_out r;
    run(dir, argv, NULL, 60, &r);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "\nstripwatch: stats tlsrpt sessions_counted=2 "
                                  "reports_written=1 write_errors=0 dropped=0\n"));
    run_free(&r);
}

static void test_errors(void **st)
{
    const char *dir = *st;
    struct run_out r;
    char missing[4300];
    snprintf(missing, sizeof missing, "%s/missing", dir);
    char *a1[] = {STRIPWATCH,  "-q",           "-r",    CAPTURE, "--alerts-out",
                  "/dev/null", "--tlsrpt-out", missing, NULL};
    run(dir, a1, NULL, 60, &r);
    assert_int_equal(r.status, 1);
    char want[9000];
    snprintf(want, sizeof want, "stripwatch: --tlsrpt-out %s: No such file or directory\n",
             missing);
    assert_string_equal(r.err, want);
    run_free(&r);

    char *a2[] = {STRIPWATCH, "report", "--tlsrpt", CAPTURE, NULL};
    run(dir, a2, NULL, 60, &r);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.err, "stripwatch: report: --tlsrpt SESSIONS.jsonl and --tlsrpt-out DIR "
                               "are needed (see stripwatch report -h)\n");
    run_free(&r);

    /* a line that is not JSON: named by file and line */
    char bad[4300];
    snprintf(bad, sizeof bad, "%s/bad.jsonl", dir);
    const char text[] = "\n{\"event\": {\"dataset\": \"stripwatch.health\"}}\n{\"event\":\n";
    assert_true(spit(bad, text, sizeof text - 1));
    char *a3[] = {STRIPWATCH, "report", "--tlsrpt", bad, "--tlsrpt-out", (char *)dir, NULL};
    run(dir, a3, NULL, 60, &r);
    assert_int_equal(r.status, 1);
    snprintf(want, sizeof want,
             "stripwatch: %s:3: not JSON: unexpected token near end of file\n"
             "stripwatch: %s: 1 of 3 lines skipped; the reports count the others\n",
             bad, bad);
    assert_string_equal(r.err, want);
    run_free(&r);

    /* a session record without the addresses */
    const char text2[] = "{\"event\": {\"dataset\": \"stripwatch.session\", "
                         "\"start\": \"2026-11-22T17:30:23.377195Z\"}}\n";
    assert_true(spit(bad, text2, sizeof text2 - 1));
    run(dir, a3, NULL, 60, &r);
    assert_int_equal(r.status, 1);
    snprintf(want, sizeof want,
             "stripwatch: %s:1: source.ip, destination.ip or destination.port missing\n"
             "stripwatch: %s: 1 of 1 lines skipped; the reports count the others\n",
             bad, bad);
    assert_string_equal(r.err, want);
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sts_report, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dane_report, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recipient_past_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
