/* SPDX-License-Identifier: Apache-2.0 */
/* test_flood.c: the sensor is not blinded by a flood (issue 11): 1,000,000
 * half-open SYNs, then 200,000 idle banner sessions, then a real stripping
 * attack (pcaps/mitm-strip-sender-side.pcap, pcaps/policies.json): every
 * alert of the attack alone comes out, the same but for packet numbers, with default bounds
 * and with --memcap 64M, and the flows statistics say what was evicted. The
 * flood is written at test time by the bench generator (bench_gen
 * --write-flood), never kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>

#include "alertcmp.h"
#include "runbin.h"

#define ATTACK   SW_SOURCE_DIR "/pcaps/mitm-strip-sender-side.pcap"
#define POLICIES SW_SOURCE_DIR "/pcaps/policies.json"

static char *tmp;
static char flood[4200], alerts[4200];

/* Runs the sensor on files with extra flags (NULL-terminated after the
 * files); returns its alerts, stderr in *err. */
static char *sensor(char **err, const char *first, ...)
{
    char *argv[32];
    int n = 0;
    argv[n++] = STRIPWATCH;
    argv[n++] = "--policy-file";
    argv[n++] = POLICIES;
    argv[n++] = "--sessions-out";
    argv[n++] = "/dev/null";
    argv[n++] = "--alerts-out";
    argv[n++] = alerts;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 30; a = va_arg(ap, const char *))
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    unlink(alerts);
    struct run_out r;
    run(tmp, argv, NULL, 300, &r);
    assert_int_equal(r.status, 0);
    free(r.out);
    *err = r.err;
    size_t len;
    return slurp(alerts, &len);
}

static char *normalised(const char *line, size_t n)
{
    json_error_t e;
    json_t *j = json_loadb(line, n, 0, &e);
    if (!j)
        fail_msg("alert does not parse: %s: %.200s", e.text, line);
    alert_drop_packet_numbers(j);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return s;
}

/* Every alert of want is an alert of got (packet numbers aside). */
static void assert_alerts_in(const char *want, const char *got)
{
    size_t lines = 0;
    for (const char *p = want; *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (alert_line_is_health(p, n)) {
            p += e ? n + 1 : n; /* health records differ by design: not the attack's */
            continue;
        }
        char *w = normalised(p, n);
        bool found = false;
        for (const char *q = got; *q && !found;) {
            const char *f = strchr(q, '\n');
            size_t m = f ? (size_t)(f - q) : strlen(q);
            char *g = normalised(q, m);
            found = !strcmp(w, g);
            free(g);
            q += f ? m + 1 : m;
        }
        if (!found)
            fail_msg("alert of the attack missing under the flood: %.300s", w);
        free(w);
        lines++;
        p += e ? n + 1 : n;
    }
    assert_int_equal(lines, 2); /* starttls.stripped, delivery.plaintext_policy */
}

/* The value of key= in the "stats flows" line of err. */
static void test_flood_then_attack(void **state)
{
    (void)state;
    char *err0;
    char *want = sensor(&err0, "-r", ATTACK, NULL);
    free(err0);
    assert_non_null(strstr(want, "\"starttls.stripped\""));
    assert_non_null(strstr(want, "\"delivery.plaintext_policy\""));

    char *err;
    char *got = sensor(&err, "-r", flood, "-r", ATTACK, NULL);
    assert_alerts_in(want, got);
    /* the table was full of half-open flows: they went first */
    assert_true(stats_value(err, "stripwatch: stats flows ", "evicted_half_open") >= 200000);
    assert_int_equal(stats_value(err, "stripwatch: stats flows ", "evicted_session"), 0);
    assert_int_equal(stats_value(err, "stripwatch: stats flows ", "refused"), 0);
    assert_true(stats_value(err, "stripwatch: stats flows ", "emergency_entered") >= 1);
    free(got);
    free(err);

    got = sensor(&err, "-r", flood, "-r", ATTACK, "--memcap", "64M", NULL);
    assert_alerts_in(want, got);
    /* 64 MiB hold neither the SYNs nor all the sessions: idle sessions were
     * evicted too, never the attack's */
    assert_true(stats_value(err, "stripwatch: stats flows ", "evicted_half_open") >= 900000);
    assert_true(stats_value(err, "stripwatch: stats flows ", "evicted_session") > 0);
    assert_int_equal(stats_value(err, "stripwatch: stats flows ", "refused"), 0);
    free(got);
    free(err);
    free(want);
}

static int setup(void **state)
{
    (void)state;
    tmp = temp_dir();
    if (!tmp)
        return -1;
    snprintf(flood, sizeof flood, "%s/flood.pcap", tmp);
    snprintf(alerts, sizeof alerts, "%s/alerts.json", tmp);
    char *argv[] = {BENCHGEN, "--write-flood", flood, "1000000", "200000", ATTACK, NULL};
    struct run_out r;
    run(tmp, argv, NULL, 120, &r);
    int rc = r.status;
    run_free(&r);
    return rc == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    rm_rf(tmp);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flood_then_attack),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
