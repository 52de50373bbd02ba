/* SPDX-License-Identifier: Apache-2.0 */
/* test_evidence.c: --evidence-dir. Every attack capture of pcaps/ (the lines
 * of tests/golden_alerts/TESTLIST that judge a pcaps/ capture against
 * pcaps/policies.json and expect alerts), with one and with two workers:
 * each alert names DIR/<uid>.pcap in stripwatch.evidence.pcap, and that
 * file read back by stripwatch (same policies, the posture learned from the
 * capture without that session) raises exactly the same alerts (packet
 * numbers aside). Also: no
 * file for a clean session, the per-direction byte bound, and the total size
 * cap removing the oldest files first, each counted. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../sensor/alertcmp.h"
#include "../sensor/runbin.h"

#define POLICIES SW_SOURCE_DIR "/pcaps/policies.json"

/* The alerts (no health records) of a JSON-lines text, packet numbers
 * dropped; an array the caller frees. */
static json_t *alerts_of(const char *text)
{
    json_t *a = json_array();
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n && !alert_line_is_health(p, n)) {
            json_error_t je;
            json_t *j = json_loadb(p, n, 0, &je);
            if (!j)
                fail_msg("not JSON: %.*s", (int)n, p);
            alert_drop_packet_numbers(j);
            json_array_append_new(a, j);
        }
        p += n + (nl ? 1 : 0);
    }
    return a;
}

static const char *evidence_name(json_t *alert)
{
    json_t *v =
        json_object_get(json_object_get(json_object_get(alert, "stripwatch"), "evidence"), "pcap");
    return json_string_value(v);
}

static const char *uid_of(json_t *alert)
{
    return json_string_value(json_object_get(json_object_get(alert, "stripwatch"), "uid"));
}

/* The attack captures: from the golden TESTLIST, pcaps/X.pcap judged with
 * pcaps/policies.json, flags "-", expected alerts other than none. */
static size_t attack_captures(char names[][256], size_t max)
{
    FILE *f = fopen(SW_SOURCE_DIR "/tests/golden_alerts/TESTLIST", "r");
    assert_non_null(f);
    char line[2048];
    size_t n = 0;
    while (n < max && fgets(line, sizeof(line), f)) {
        char name[256], pcap[240], pol[512], flags[512], exp[512];
        if (line[0] == '#' ||
            sscanf(line, "%255s %239s %511s %511s %511s", name, pcap, pol, flags, exp) != 5)
            continue;
        if (strncmp(pcap, "pcaps/", 6) != 0 || strchr(pcap + 6, '/') ||
            strcmp(pol, "pcaps/policies.json") != 0 || strcmp(flags, "-") != 0 ||
            strcmp(exp, "expected/none.alerts") == 0)
            continue;
        snprintf(names[n++], 256, "%s", pcap);
    }
    fclose(f);
    return n;
}

static void readback(const char *capture, const char *workers)
{
    char *dir = temp_dir();
    assert_non_null(dir);
    char cap[4096], ev[4200], st[4200], alerts[4200];
    snprintf(cap, sizeof(cap), "%s/%s", SW_SOURCE_DIR, capture);
    snprintf(ev, sizeof(ev), "%s/ev", dir);
    snprintf(st, sizeof(st), "%s/state.json", dir);
    snprintf(alerts, sizeof(alerts), "%s/alerts.json", dir);
    char *argv[] = {STRIPWATCH,
                    "--no-config",
                    "-r",
                    cap,
                    "--policy-file",
                    POLICIES,
                    "--state-file",
                    st,
                    "--evidence-dir",
                    ev,
                    "--alerts-out",
                    alerts,
                    "--workers",
                    (char *)workers,
                    NULL};
    struct run_out r;
    run(dir, argv, NULL, 120, &r);
    if (r.status != 0)
        fail_msg("%s: exit %d: %s", capture, r.status, r.err);
    size_t n;
    char *text = slurp(alerts, &n);
    json_t *first = alerts_of(text);
    free(text);
    assert_true(json_array_size(first) > 0);
    /* one file per alerted session, counted */
    size_t files = 0;
    size_t i;
    json_t *a;
    json_array_foreach(first, i, a)
    {
        const char *name = evidence_name(a);
        if (!name)
            fail_msg("%s: alert %zu has no stripwatch.evidence.pcap", capture, i);
        char want[64];
        snprintf(want, sizeof(want), "%s.pcap", uid_of(a));
        assert_string_equal(name, want);
        bool seen = false;
        for (size_t k = 0; k < i; k++)
            seen |= strcmp(evidence_name(json_array_get(first, k)), name) == 0;
        files += !seen;
    }
    assert_int_equal(stats_value(r.err, "stripwatch: stats evidence ", "files_written"), files);
    assert_int_equal(stats_value(r.err, "stripwatch: stats evidence ", "dir_files"), files);
    assert_int_equal(stats_value(r.err, "stripwatch: stats evidence ", "held_flows"), 0);
    run_free(&r);

    /* each file read back raises the alerts that named it, unchanged */
    json_array_foreach(first, i, a)
    {
        const char *name = evidence_name(a);
        bool done = false;
        for (size_t k = 0; k < i; k++)
            done |= strcmp(evidence_name(json_array_get(first, k)), name) == 0;
        if (done)
            continue;
        /* the posture the session met: the capture without it, learned
         * into a fresh state file */
        char pcap[4300], st2[4200], again[4200], bpf[256];
        snprintf(pcap, sizeof(pcap), "%s/%s", ev, name);
        snprintf(st2, sizeof(st2), "%s/state2.json", dir);
        snprintf(again, sizeof(again), "%s/again.json", dir);
        json_t *src = json_object_get(a, "source");
        snprintf(bpf, sizeof(bpf), "not (host %s and tcp port %lld)",
                 json_string_value(json_object_get(src, "ip")),
                 (long long)json_integer_value(json_object_get(src, "port")));
        unlink(st2);
        char *argv1[] = {STRIPWATCH,  "--no-config",
                         "-q",        "-r",
                         cap,         "--policy-file",
                         POLICIES,    "--state-file",
                         st2,         "--bpf",
                         bpf,         "--alerts-out",
                         "/dev/null", NULL};
        run(dir, argv1, NULL, 120, &r);
        if (r.status != 0)
            fail_msg("%s: without %s: exit %d: %s", capture, bpf, r.status, r.err);
        run_free(&r);
        char *argv2[] = {STRIPWATCH, "--no-config",  "-q", "-r",           pcap,  "--policy-file",
                         POLICIES,   "--state-file", st2,  "--alerts-out", again, NULL};
        run(dir, argv2, NULL, 120, &r);
        if (r.status != 0)
            fail_msg("%s: %s read back: exit %d: %s", capture, name, r.status, r.err);
        run_free(&r);
        text = slurp(again, &n);
        json_t *second = alerts_of(text);
        free(text);
        json_t *want = json_array();
        size_t j;
        json_t *b;
        json_array_foreach(first, j, b)
        {
            if (strcmp(evidence_name(b), name) != 0)
                continue;
            json_t *c = json_deep_copy(b);
            /* the read-back run had no --evidence-dir */
            json_object_del(json_object_get(json_object_get(c, "stripwatch"), "evidence"), "pcap");
            json_array_append_new(want, c);
        }
        if (!json_equal(want, second)) {
            char *x = json_dumps(want, JSON_COMPACT), *y = json_dumps(second, JSON_COMPACT);
            fail_msg("%s: %s read back differs:\n first %s\n again %s", capture, name, x, y);
        }
        json_decref(want);
        json_decref(second);
    }
    json_decref(first);
    rm_rf(dir);
}

static void test_attack_captures(void **state)
{
    (void)state;
    char names[64][256];
    size_t n = attack_captures(names, 64);
    assert_true(n >= 10);
    for (size_t i = 0; i < n; i++) {
        print_message("%s\n", names[i]);
        readback(names[i], "1");
        readback(names[i], "2");
    }
}

/* A clean capture: packets held, nothing written, nothing left held. */
static void test_clean_writes_nothing(void **state)
{
    (void)state;
    char *dir = temp_dir();
    char ev[4200];
    snprintf(ev, sizeof(ev), "%s/ev", dir);
    char *argv[] = {STRIPWATCH,
                    "--no-config",
                    "-r",
                    SW_SOURCE_DIR "/pcaps/postfix-postfix-starttls-tls13.pcap",
                    "--evidence-dir",
                    ev,
                    "--alerts-out",
                    "/dev/null",
                    NULL};
    struct run_out r;
    run(dir, argv, NULL, 60, &r);
    assert_int_equal(r.status, 0);
    const char *pre = "stripwatch: stats evidence ";
    assert_true(stats_value(r.err, pre, "pkts_kept") > 0);
    assert_int_equal(stats_value(r.err, pre, "files_written"), 0);
    assert_int_equal(stats_value(r.err, pre, "held_flows"), 0);
    assert_int_equal(stats_value(r.err, pre, "held_bytes"), 0);
    run_free(&r);
    rm_rf(dir);
}

/* The size of the only *.pcap file in dir (fails when not exactly one). */
static long only_pcap_size(const char *dir)
{
    char cmd[4400];
    snprintf(cmd, sizeof(cmd), "ls '%s'/*.pcap | wc -l | grep -qx 1", dir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "stat -c %%s '%s'/*.pcap", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    long size = -1;
    assert_int_equal(fscanf(p, "%ld", &size), 1);
    pclose(p);
    return size;
}

/* --evidence-bytes: the body after DATA is cut to N bytes per direction. The
 * capture's message body is longer than 64 bytes. */
static void test_bytes_bound(void **state)
{
    (void)state;
    char *dir = temp_dir();
    char ev1[4200], ev2[4200];
    snprintf(ev1, sizeof(ev1), "%s/ev1", dir);
    snprintf(ev2, sizeof(ev2), "%s/ev2", dir);
    long size[2];
    const char *bytes[2] = {"64K", "64"};
    const char *evs[2] = {ev1, ev2};
    uint64_t bounded[2];
    for (int i = 0; i < 2; i++) {
        char *argv[] = {STRIPWATCH,
                        "--no-config",
                        "-r",
                        SW_SOURCE_DIR "/pcaps/postfix-plaintext-no-starttls.pcap",
                        "--policy-file",
                        POLICIES,
                        "--evidence-dir",
                        (char *)evs[i],
                        "--evidence-bytes",
                        (char *)bytes[i],
                        "--alerts-out",
                        "/dev/null",
                        NULL};
        struct run_out r;
        run(dir, argv, NULL, 60, &r);
        assert_int_equal(r.status, 0);
        assert_int_equal(stats_value(r.err, "stripwatch: stats evidence ", "files_written"), 1);
        bounded[i] = stats_value(r.err, "stripwatch: stats evidence ", "pkts_bounded");
        run_free(&r);
        size[i] = only_pcap_size(evs[i]);
    }
    print_message("evidence pcap: %ld bytes with 64K, %ld with 64\n", size[0], size[1]);
    assert_true(size[1] < size[0]);
    assert_true(bounded[1] >= bounded[0]);
    rm_rf(dir);
}

/* --evidence-max-size: two old files of 31,000 bytes and a cap of 64 KiB:
 * the new file makes room by removing the older one only. */
static void test_rotation(void **state)
{
    (void)state;
    char *dir = temp_dir();
    char ev[4200], old1[4300], old2[4300];
    snprintf(ev, sizeof(ev), "%s/ev", dir);
    snprintf(old1, sizeof(old1), "%s/Sold1.pcap", ev);
    snprintf(old2, sizeof(old2), "%s/Sold2.pcap", ev);
    assert_int_equal(mkdir(ev, 0700), 0);
    char *pad = calloc(1, 32000);
    assert_true(spit(old1, pad, 32000));
    assert_true(spit(old2, pad, 32000));
    free(pad);
    struct timespec t1[2] = {{1000, 0}, {1000, 0}}, t2[2] = {{2000, 0}, {2000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, old1, t1, 0), 0);
    assert_int_equal(utimensat(AT_FDCWD, old2, t2, 0), 0);
    char *argv[] = {STRIPWATCH,
                    "--no-config",
                    "-r",
                    SW_SOURCE_DIR "/pcaps/mitm-strip-sender-side.pcap",
                    "--policy-file",
                    POLICIES,
                    "--evidence-dir",
                    ev,
                    "--evidence-max-size",
                    "64K",
                    "--alerts-out",
                    "/dev/null",
                    NULL};
    struct run_out r;
    run(dir, argv, NULL, 60, &r);
    assert_int_equal(r.status, 0);
    const char *pre = "stripwatch: stats evidence ";
    assert_int_equal(stats_value(r.err, pre, "files_written"), 1);
    assert_int_equal(stats_value(r.err, pre, "files_rotated"), 1);
    assert_int_equal(stats_value(r.err, pre, "dir_files"), 2);
    uint64_t dir_bytes = stats_value(r.err, pre, "dir_bytes");
    assert_true(dir_bytes > 32000 && dir_bytes <= 65536);
    run_free(&r);
    assert_int_not_equal(access(old1, F_OK), 0);
    assert_int_equal(access(old2, F_OK), 0);
    rm_rf(dir);
}

/* A directory that cannot be made: one line naming it, exit 1. */
static void test_bad_dir(void **state)
{
    (void)state;
    char *dir = temp_dir();
    char file[4200], ev[4300];
    snprintf(file, sizeof(file), "%s/file", dir);
    snprintf(ev, sizeof(ev), "%s/sub", file);
    assert_true(spit(file, "x", 1));
    char *argv[] = {STRIPWATCH,
                    "--no-config",
                    "-r",
                    SW_SOURCE_DIR "/pcaps/mitm-strip-sender-side.pcap",
                    "--evidence-dir",
                    ev,
                    NULL};
    struct run_out r;
    run(dir, argv, NULL, 60, &r);
    assert_int_equal(r.status, 1);
    char want[4600];
    snprintf(want, sizeof(want), "stripwatch: evidence directory %s: Not a directory\n", ev);
    assert_string_equal(r.err, want);
    run_free(&r);
    rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attack_captures), cmocka_unit_test(test_clean_writes_nothing),
        cmocka_unit_test(test_bytes_bound),     cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_bad_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
