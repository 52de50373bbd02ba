/* SPDX-License-Identifier: Apache-2.0 */
/* test_live.c: live capture end to end. Two network namespaces made by the
 * test, joined by a veth pair; stripwatch -i listens in one, tcpreplay
 * replays a capture from the other; SIGINT stops the sensor, which must exit
 * 0 with the same session records as the offline run of the same file
 * (capture-time fields aside: @timestamp, uid, ts). Needs root; skipped
 * otherwise. Namespaces are removed at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>

#include "runbin.h"

#define CAPTURE SW_THIRD_PARTY_PCAPS "/arkime/smtp-decrypted.pcap"

static char *tmp;
static char ns_a[64], ns_b[64];
static bool ns_made;

__attribute__((format(printf, 1, 2))) static int sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* Drops capture-time dependent keys, recursively. */
static void scrub(json_t *j)
{
    if (json_is_object(j)) {
        json_object_del(j, "@timestamp");
        json_object_del(j, "uid");
        json_object_del(j, "ts");
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) scrub(v);
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) scrub(v);
    }
}

static char *scrub_lines(const char *text)
{
    size_t cap = strlen(text) + 1, n = 0;
    char *out = calloc(1, cap);
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        json_error_t err;
        json_t *j = json_loadb(p, l, 0, &err);
        assert_non_null(j);
        scrub(j);
        char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        size_t sl = strlen(s);
        if (n + sl + 2 > cap) {
            cap = (n + sl + 2) * 2;
            out = realloc(out, cap);
        }
        memcpy(out + n, s, sl);
        n += sl;
        out[n++] = '\n';
        out[n] = '\0';
        free(s);
        json_decref(j);
        p = e ? e + 1 : p + l;
    }
    return out;
}

static void test_live_matches_offline(void **st)
{
    (void)st;
    if (geteuid() != 0)
        skip();
    snprintf(ns_a, sizeof(ns_a), "swlive%d-a", (int)getpid());
    snprintf(ns_b, sizeof(ns_b), "swlive%d-b", (int)getpid());
    if (sh("ip netns add %s 2>/dev/null", ns_a) != 0)
        skip();
    ns_made = true;
    assert_int_equal(sh("ip netns add %s", ns_b), 0);
    assert_int_equal(sh("ip -n %s link add va type veth peer name vb netns %s", ns_a, ns_b), 0);
    assert_int_equal(sh("ip -n %s link set va up && ip -n %s link set vb up", ns_a, ns_b), 0);

    char live_s[4096], live_a[4096], off_s[4096], off_a[4096];
    snprintf(live_s, sizeof(live_s), "%s/live-sessions.json", tmp);
    snprintf(live_a, sizeof(live_a), "%s/live-alerts.json", tmp);
    snprintf(off_s, sizeof(off_s), "%s/offline-sessions.json", tmp);
    snprintf(off_a, sizeof(off_a), "%s/offline-alerts.json", tmp);
    char *sensor[] = {"ip",           "netns", "exec", ns_a,          STRIPWATCH,       "-i",
                      "va",           "--bpf", "tcp",  "--immediate", "--sessions-out", live_s,
                      "--alerts-out", live_a,  NULL};
    char sdir[4096];
    snprintf(sdir, sizeof(sdir), "%s/sensor", tmp);
    mkdir(sdir, 0700);
    pid_t pid = run_start(sdir, sensor, NULL);
    assert_true(pid > 0);
    sleep(2); /* let the capture open */
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);

    char *replay[] = {"ip",    "netns", "exec", ns_b, "tcpreplay", "-q",
                      "--pps", "500",   "-i",   "vb", CAPTURE,     NULL};
    struct run_out r;
    run(tmp, replay, NULL, 60, &r);
    assert_int_equal(r.status, 0);
    run_free(&r);
    sleep(1);
    kill(pid, SIGINT);
    int status = run_wait(pid, 30);
    struct run_out so;
    run_collect(sdir, &so);
    if (status != 0)
        fail_msg("sensor exit %d: %s", status, so.err);
    /* the statistics at exit count what the kernel saw */
    assert_non_null(strstr(so.err, " kernel_dropped=0 "));
    run_free(&so);

    char *offline[] = {STRIPWATCH, "-q",           "-r",  CAPTURE, "--sessions-out",
                       off_s,      "--alerts-out", off_a, NULL};
    run(tmp, offline, NULL, 60, &r);
    assert_int_equal(r.status, 0);
    run_free(&r);

    size_t l;
    char *ls = slurp(live_s, &l), *os = slurp(off_s, &l);
    char *lsc = scrub_lines(ls), *osc = scrub_lines(os);
    assert_true(strlen(osc) > 0);
    assert_string_equal(lsc, osc);
    free(ls);
    free(os);
    free(lsc);
    free(osc);
}

static int setup(void **st)
{
    (void)st;
    tmp = temp_dir();
    return tmp ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    if (ns_made) {
        sh("ip netns del %s 2>/dev/null", ns_a);
        sh("ip netns del %s 2>/dev/null", ns_b);
    }
    rm_rf(tmp);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_live_matches_offline)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
