/* SPDX-License-Identifier: Apache-2.0 */
/* test_live_caps.c: live capture with capabilities only, as the systemd unit
 * runs it. In a network namespace the test creates, `stripwatch -i` runs as
 * the unprivileged user nobody holding only CAP_NET_RAW and CAP_NET_ADMIN
 * (setpriv: ambient, inheritable and bounding sets), from a copy of the
 * binary in a private temporary directory (the checkout may be unreadable to
 * nobody); tcpreplay sends a shipped capture onto the veth; the alerts must
 * be exactly those of the offline run. Without the capabilities the sensor
 * must stop with one error line and exit 1. Needs root and network
 * namespaces: skipped otherwise, with the reason. */
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>

#include "../sensor/runbin.h"

#define CAPTURE SW_SOURCE_DIR "/pcaps/mitm-starttls-command-rewritten-sender-side.pcap"
#define CAPS    "-all,+net_raw,+net_admin"
#define NO_CAPS "-all"
/* CAP_NET_ADMIN (12) and CAP_NET_RAW (13) */
#define CAPS_MASK "0000000000003000"

static char *tmp;       /* root's: tools' output, offline run */
static char sdir[1024]; /* root's: the sensor's stdout and stderr */
static char priv[1024]; /* nobody's: the binary and what the sensor writes */
static char bin[1100];
static char ns[64];
static bool ns_made;
static pid_t sensor_pid; /* killed at teardown if a failed test left it */
static uid_t nobody_uid;
static gid_t nobody_gid;

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

/* Root and a network namespace with a veth pair va-vb (both up). False,
 * with the reason printed, when the machine cannot give them. */
static bool need_ns(const char *test)
{
    static const char *why; /* set once the machine said no */
    if (!why && geteuid() != 0)
        why = "needs root (network namespace, setpriv)";
    if (!why && !ns_made) {
        snprintf(ns, sizeof(ns), "swcaps%d", (int)getpid());
        if (sh("ip netns add %s 2>/dev/null", ns) != 0)
            why = "cannot create a network namespace (ip netns add)";
        else
            ns_made = true;
        /* ip netns exec remounts / as a slave and /sys for the namespace:
         * impossible where / is not a mount point (a chroot) */
        if (!why && sh("ip netns exec %s true 2>/dev/null", ns) != 0)
            why = "cannot enter a network namespace (ip netns exec: mount propagation of / "
                  "refused, e.g. in a chroot)";
        if (!why) {
            assert_int_equal(sh("ip -n %s link add va type veth peer name vb", ns), 0);
            assert_int_equal(sh("ip -n %s link set va up && ip -n %s link set vb up", ns, ns), 0);
        }
    }
    if (why)
        printf("%s: skipped: %s\n", test, why);
    return !why;
}

static pid_t start_sensor(const char *caps, const char *alerts, const char *sessions)
{
    char uid[32], gid[32], inh[64], amb[64], bnd[64];
    snprintf(uid, sizeof(uid), "--reuid=%u", (unsigned)nobody_uid);
    snprintf(gid, sizeof(gid), "--regid=%u", (unsigned)nobody_gid);
    snprintf(inh, sizeof(inh), "--inh-caps=%s", caps);
    snprintf(amb, sizeof(amb), "--ambient-caps=%s", caps);
    snprintf(bnd, sizeof(bnd), "--bounding-set=%s", caps);
    char *argv[] = {"ip",
                    "netns",
                    "exec",
                    ns,
                    "setpriv",
                    uid,
                    gid,
                    "--clear-groups",
                    inh,
                    amb,
                    bnd,
                    "--",
                    bin,
                    "-i",
                    "va",
                    "--immediate",
                    "--alerts-out",
                    (char *)alerts,
                    "--sessions-out",
                    (char *)sessions,
                    NULL};
    /* the sensor's working directory and state directory are nobody's */
    char cwd[4200];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(priv), 0);
    setenv("STATE_DIRECTORY", priv, 1);
    pid_t pid = run_start(sdir, argv, NULL);
    unsetenv("STATE_DIRECTORY");
    assert_int_equal(chdir(cwd), 0);
    assert_true(pid > 0);
    sensor_pid = pid;
    return pid;
}

static size_t count_lines(const char *path)
{
    size_t n, lines = 0;
    char *s = slurp(path, &n);
    for (size_t i = 0; i < n; i++)
        lines += s[i] == '\n';
    free(s);
    return lines;
}

/* Whether the namespace holds a packet socket with the capture filter on
 * (libpcap drains the socket with a one-instruction filter first). */
static bool capture_open(void)
{
    char cmd[256], line[4096];
    snprintf(cmd, sizeof(cmd), "ip netns exec %s ss -0 -b 2>/dev/null", ns);
    FILE *p = popen(cmd, "r");
    bool open = false;
    unsigned n;
    while (p && fgets(line, sizeof(line), p)) {
        const char *f = strstr(line, "bpf filter (");
        if (f && sscanf(f, "bpf filter (%u)", &n) == 1 && n > 1)
            open = true;
    }
    if (p)
        pclose(p);
    return open;
}

/* /proc/PID/status line "key:\tvalue", value copied to out. */
static void proc_status(pid_t pid, const char *key, char *out, size_t outlen)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    out[0] = '\0';
    size_t kl = strlen(key);
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            snprintf(out, outlen, "%s", line + kl + 2);
            out[strcspn(out, "\n")] = '\0';
        }
    }
    fclose(f);
}

/* event.id (from the uid), start, end, created and duration depend on capture time
 * too (the live run's is now); only a live run has an ingress interface and
 * observer.ip, and packet numbers count differently. */
static void scrub_event_times(json_t *j)
{
    json_t *o = json_object_get(j, "observer");
    if (json_is_object(o)) {
        json_object_del(o, "ingress");
        json_object_del(o, "ip");
    }
    json_t *sw = json_object_get(j, "stripwatch");
    if (json_is_object(sw))
        json_object_del(sw, "packet");
    json_t *ev = json_object_get(j, "event");
    if (!json_is_object(ev))
        return;
    json_object_del(ev, "id");
    json_object_del(ev, "start");
    json_object_del(ev, "end");
    json_object_del(ev, "created");
    json_object_del(ev, "duration");
}

/* Fields whose value depends on the capture time (the live run's is now). */
static bool is_capture_time_key(const char *k)
{
    size_t l = strlen(k);
    return !strcmp(k, "@timestamp") || !strcmp(k, "start") || !strcmp(k, "ts") ||
           !strcmp(k, "uid") || (l > 3 && !strcmp(k + l - 3, "_ts")) ||
           (l > 4 && !strcmp(k + l - 4, "_uid"));
}

static void scrub(json_t *j)
{
    if (json_is_object(j)) {
        scrub_event_times(j);
        const char *k;
        json_t *v;
        void *t;
        json_object_foreach_safe(j, t, k, v)
        {
            if (is_capture_time_key(k))
                json_object_del(j, k);
            else
                scrub(v);
        }
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) scrub(v);
    }
}

/* Alerts as "rule.id severity" lines, and the alert objects without the
 * fields that depend on capture time (@timestamp, start, ts, *_ts, uid,
 * *_uid) and the policy lookup (mta_sts) as sorted compact JSON lines. */
static void read_alerts(const char *path, char *ids, size_t idlen, char **scrubbed)
{
    size_t n;
    char *text = slurp(path, &n);
    json_t *rule, *sev;
    size_t cap = n + 1, used = 0;
    *scrubbed = calloc(1, cap);
    ids[0] = '\0';
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t err;
        json_t *j = json_loads(line, 0, &err);
        if (!j)
            fail_msg("%s: not JSON: %s", path, line);
        if (!strcmp(json_string_value(json_object_get(json_object_get(j, "event"), "dataset"))
                        ?: "",
                    "stripwatch.health")) {
            json_decref(j); /* health records: start and stop, not alerts */
            continue;
        }
        rule = json_object_get(json_object_get(j, "rule"), "id");
        sev = json_object_get(json_object_get(j, "event"), "severity");
        size_t l = strlen(ids);
        snprintf(ids + l, idlen - l, "%s %lld\n", json_string_value(rule),
                 (long long)json_integer_value(sev));
        /* the live run asked this machine's resolver, the offline one nobody */
        json_object_del(j, "mta_sts");
        scrub(j);
        char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        size_t sl = strlen(s);
        if (used + sl + 2 > cap) {
            cap = (used + sl + 2) * 2;
            *scrubbed = realloc(*scrubbed, cap);
        }
        memcpy(*scrubbed + used, s, sl);
        used += sl;
        (*scrubbed)[used++] = '\n';
        (*scrubbed)[used] = '\0';
        free(s);
        json_decref(j);
    }
    free(text);
}

static void test_caps_only_captures(void **st)
{
    (void)st;
    if (!need_ns(__func__))
        skip();
    char alerts[1200], sessions[1200], off_alerts[1200];
    snprintf(alerts, sizeof(alerts), "%s/alerts.json", priv);
    snprintf(sessions, sizeof(sessions), "%s/sessions.json", priv);
    snprintf(off_alerts, sizeof(off_alerts), "%s/offline-alerts.json", tmp);

    pid_t pid = start_sensor(CAPS, alerts, sessions);
    time_t deadline = time(NULL) + 30;
    struct timespec tick = {0, 50 * 1000 * 1000};
    while (!capture_open()) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            struct run_out so;
            run_collect(sdir, &so);
            fail_msg("sensor exited before capturing: %s", so.err);
        }
        if (time(NULL) > deadline) {
            run_wait(pid, 0);
            fail_msg("no capture socket with a filter in %s after 30 s", ns);
        }
        nanosleep(&tick, NULL);
    }
    /* it is the sensor, as nobody, with exactly the two capabilities */
    char v[256];
    proc_status(pid, "Name", v, sizeof(v));
    assert_string_equal(v, "stripwatch");
    char ids4[128];
    snprintf(ids4, sizeof(ids4), "%u\t%u\t%u\t%u", (unsigned)nobody_uid, (unsigned)nobody_uid,
             (unsigned)nobody_uid, (unsigned)nobody_uid);
    proc_status(pid, "Uid", v, sizeof(v));
    assert_string_equal(v, ids4);
    proc_status(pid, "CapEff", v, sizeof(v));
    assert_string_equal(v, CAPS_MASK);
    proc_status(pid, "CapBnd", v, sizeof(v));
    assert_string_equal(v, CAPS_MASK);
    proc_status(pid, "CapAmb", v, sizeof(v));
    assert_string_equal(v, CAPS_MASK);

    char *replay[] = {"ip", "netns", "exec", ns, "tcpreplay", "-q", "-i", "vb", CAPTURE, NULL};
    struct run_out r;
    run(tmp, replay, NULL, 60, &r);
    if (r.status != 0)
        fail_msg("tcpreplay exit %d: %s", r.status, r.err);
    run_free(&r);
    /* the conversation ends with FIN: its session record comes once the
     * sensor has seen every packet; then stop it (alerts are flushed) */
    deadline = time(NULL) + 30;
    while (count_lines(sessions) < 1 && time(NULL) <= deadline)
        nanosleep(&tick, NULL);
    kill(pid, SIGINT);
    int status = run_wait(pid, 30);
    struct run_out so;
    run_collect(sdir, &so);
    if (status != 0)
        fail_msg("sensor exit %d: %s", status, so.err);
    if (!strstr(so.err, "stripwatch: stats packets=21 "))
        fail_msg("not every packet seen: %s", so.err);
    run_free(&so);
    assert_int_equal(count_lines(sessions), 1);

    char *offline[] = {STRIPWATCH, "-q", "-r", CAPTURE, "--alerts-out", off_alerts, NULL};
    run(tmp, offline, NULL, 60, &r);
    assert_int_equal(r.status, 0);
    run_free(&r);

    char live_ids[512], off_ids[512];
    char *live_json, *off_json;
    read_alerts(alerts, live_ids, sizeof(live_ids), &live_json);
    read_alerts(off_alerts, off_ids, sizeof(off_ids), &off_json);
    assert_string_equal(live_ids, "starttls.tampered 3\nstarttls.fallback 2\n");
    assert_string_equal(off_ids, live_ids);
    if (strcmp(live_json, off_json) != 0)
        fail_msg("live alerts differ from offline:\n%s\n%s", live_json, off_json);
    free(live_json);
    free(off_json);
}

static void test_no_caps_one_error_line(void **st)
{
    (void)st;
    if (!need_ns(__func__))
        skip();
    char alerts[1200], sessions[1200];
    snprintf(alerts, sizeof(alerts), "%s/nocaps-alerts.json", priv);
    snprintf(sessions, sizeof(sessions), "%s/nocaps-sessions.json", priv);
    pid_t pid = start_sensor(NO_CAPS, alerts, sessions);
    int status = run_wait(pid, 30);
    struct run_out so;
    run_collect(sdir, &so);
    assert_string_equal(so.err, "stripwatch: va: You don't have permission to perform this "
                                "capture on that device (socket: Operation not permitted)\n");
    assert_string_equal(so.out, "");
    assert_int_equal(status, 1);
    run_free(&so);
}

static int setup(void **st)
{
    (void)st;
    struct passwd *pw = getpwnam("nobody");
    if (!pw)
        return -1;
    nobody_uid = pw->pw_uid;
    nobody_gid = pw->pw_gid;
    tmp = temp_dir();
    if (!tmp)
        return -1;
    /* nobody may pass through tmp, into priv only */
    snprintf(priv, sizeof(priv), "%s/nobody", tmp);
    snprintf(sdir, sizeof(sdir), "%s/sensor", tmp);
    snprintf(bin, sizeof(bin), "%s/stripwatch", priv);
    if (chmod(tmp, 0711) != 0 || mkdir(priv, 0700) != 0 || mkdir(sdir, 0700) != 0)
        return -1;
    size_t n;
    char *b = slurp(STRIPWATCH, &n);
    bool ok = n > 0 && spit(bin, b, n) && chmod(bin, 0755) == 0;
    free(b);
    if (!ok || (geteuid() == 0 && chown(priv, nobody_uid, nobody_gid) != 0))
        return -1;
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    if (sensor_pid > 0 && waitpid(sensor_pid, NULL, WNOHANG) == 0) {
        kill(sensor_pid, SIGKILL);
        waitpid(sensor_pid, NULL, 0);
    }
    if (ns_made)
        sh("ip netns del %s 2>/dev/null", ns);
    rm_rf(tmp);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_caps_only_captures),
        cmocka_unit_test(test_no_caps_one_error_line),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
