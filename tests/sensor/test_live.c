/* SPDX-License-Identifier: Apache-2.0 */
/* test_live.c: live capture end to end. Two network namespaces made by the
 * test, joined by a veth pair; stripwatch -i listens in one, tcpreplay
 * replays a capture from the other; once the sensor has counted every packet
 * (its statistics on SIGUSR1), SIGINT stops it, and it must exit 0 with the
 * same session records as the offline run of the same file (capture-time
 * fields aside: @timestamp, uid, ts); the evidence pcap of each of its
 * alerts (--evidence-dir), read back, raises that alert. Commands enter a namespace with
 * `nsenter --net` only: no mount namespace, so no `mount --make-rslave /`
 * (what `ip netns exec` and `ip -n` do, which fails where / is not a mount
 * point, e.g. in a chroot). Where the namespaces or the veth pair cannot be
 * made (not root, no CAP_SYS_ADMIN, no veth), the test is skipped with one
 * line on stderr saying why. Namespaces are removed at the end.
 * With --workers 2 (one PACKET_FANOUT socket per worker) the alerts and
 * session records of a replayed capture of many flows (the bench generator's
 * real mix of the project's own captures) are those of the offline run
 * (the sensor's fanout group gets id 0, as the first after boot does),
 * fields of capture time, live policy lookups and packet numbers aside;
 * alerts that rest on other sessions' history (learned posture, path) may
 * cite or gain history that the other run judged later (sessions open at
 * the end: offline in uid order, live at their idle timeout), so for them
 * every offline alert must be raised live for the same connection and rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sched.h>
#include <sys/socket.h>

#include "alertcmp.h"
#include "runbin.h"

#define CAPTURE SW_THIRD_PARTY_PCAPS "/arkime/smtp-decrypted.pcap"

static char *tmp;
static char ns_a[64], ns_b[64], ns_c[64], ns_d[64];
static bool ns_made, ns2_made;

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

/* Runs cmd (a shell command) with its stderr kept; on failure, the first
 * line of that stderr (or the exit status) goes to why. A command not found
 * (exit 127) is a missing test dependency, a failure, never a skip. */
static bool try_sh(const char *cmd, char *why, size_t whylen)
{
    char full[5400], errf[4200];
    snprintf(errf, sizeof(errf), "%s/.try-stderr", tmp);
    snprintf(full, sizeof(full), "%s 2>'%s'", cmd, errf);
    int rc = system(full);
    if (WIFEXITED(rc) && WEXITSTATUS(rc) == 0) {
        unlink(errf);
        return true;
    }
    size_t len;
    char *e = slurp(errf, &len);
    unlink(errf);
    if (WIFEXITED(rc) && WEXITSTATUS(rc) == 127)
        fail_msg("%s: %s", cmd, e ? e : "command not found");
    if (e && e[0]) {
        e[strcspn(e, "\n")] = '\0';
        snprintf(why, whylen, "%s", e);
    } else {
        snprintf(why, whylen, "exit status %d", WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
    }
    free(e);
    return false;
}

/* Prints why the test is skipped (one line on stderr) and skips it. */
#define SKIP_BECAUSE(...)                                                                          \
    do {                                                                                           \
        fprintf(stderr, "test_live: skipped: " __VA_ARGS__);                                       \
        fputc('\n', stderr);                                                                       \
        skip();                                                                                    \
    } while (0)

/* How many packet sockets pid holds bound to an interface for every
 * protocol (ETH_P_ALL): from then on the kernel queues what each captures.
 * /proc/PID/net/packet lists the sockets of pid's network namespace. */
static int capture_sockets(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/net/packet", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        bool found = false;
        unsigned proto;
        int iface;
        unsigned long inode;
        if (sscanf(line, "%*x %*d %*d %x %d %*d %*u %*u %lu", &proto, &iface, &inode) != 3 ||
            proto != 0x0003 || iface == 0)
            continue;
        char fddir[64], want[64];
        snprintf(fddir, sizeof(fddir), "/proc/%d/fd", (int)pid);
        snprintf(want, sizeof(want), "socket:[%lu]", inode);
        DIR *d = opendir(fddir);
        for (struct dirent *e; d && !found && (e = readdir(d)) != NULL;) {
            char fd[320], target[64];
            snprintf(fd, sizeof(fd), "%s/%s", fddir, e->d_name);
            ssize_t tl = readlink(fd, target, sizeof(target) - 1);
            found = tl > 0 && (target[tl] = '\0', strcmp(target, want) == 0);
        }
        if (d)
            closedir(d);
        n += found;
    }
    fclose(f);
    return n;
}

/* Whether the alerts file at path holds the sensor-started health event. */
static bool started(const char *path)
{
    size_t len;
    char *text = slurp(path, &len);
    bool yes = text && strstr(text, "\"action\":\"sensor-started\"");
    free(text);
    return yes;
}

static bool capturing(pid_t pid)
{
    return capture_sockets(pid) > 0;
}

/* Fanout group ids. The kernel hands out the ids of groups made with
 * PACKET_FANOUT_FLAG_UNIQUEID from one counter for the whole machine (0 at
 * boot, then up, wrapping after 65535), skipping ids in use in the socket's
 * network namespace; an attempt that fails still takes its id. */

/* Enters the network namespace at path (/run/netns/NAME); returns a file
 * descriptor of the one left, for leave_netns. */
static int enter_netns(const char *path)
{
    int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int ns = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(self >= 0 && ns >= 0);
    assert_int_equal(setns(ns, CLONE_NEWNET), 0);
    close(ns);
    return self;
}

static void leave_netns(int self)
{
    assert_int_equal(setns(self, CLONE_NEWNET), 0);
    close(self);
}

/* The id of a new group, made and left at once by a socket of the current
 * namespace. */
static int new_group_id(void)
{
    int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    assert_true(fd >= 0);
    int val = PACKET_FANOUT_FLAG_UNIQUEID << 16;
    assert_int_equal(setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &val, sizeof(val)), 0);
    socklen_t len = sizeof(val);
    assert_int_equal(getsockopt(fd, SOL_PACKET, PACKET_FANOUT, &val, &len), 0);
    close(fd);
    return val & 0xffff;
}

/* Winds the counter on until the next new group gets id 0, as the first one
 * after boot does: a socket bound to no protocol cannot join, but each of
 * its attempts takes an id. */
static void next_group_id_zero(void)
{
    int fd = socket(AF_PACKET, SOCK_RAW, 0);
    assert_true(fd >= 0);
    for (int id = new_group_id() + 1; id < 65535; id++) {
        int val = PACKET_FANOUT_FLAG_UNIQUEID << 16;
        assert_int_not_equal(setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &val, sizeof(val)), 0);
    }
    close(fd);
    int last = new_group_id();
    if (last != 65535)
        fail_msg("fanout group ids: winding the counter to 65535 ended at %d (another process "
                 "made groups meanwhile?)",
                 last);
}

/* The packets=N of the last "stripwatch: stats packets=" line in text, or -1. */
static long long stats_packets(const char *text)
{
    long long n = -1;
    for (const char *p = text; (p = strstr(p, "stripwatch: stats packets=")) != NULL; p++)
        n = atoll(p + strlen("stripwatch: stats packets="));
    return n;
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

/* Drops capture-time dependent keys, recursively. */
static void scrub(json_t *j)
{
    if (json_is_object(j)) {
        scrub_event_times(j);
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

/* --evidence-dir live: every alert names a file in evdir that, read back
 * offline, raises an alert of the same rule for the same session uid. */
static void check_live_evidence(const char *alerts, const char *evdir)
{
    size_t len;
    char *text = slurp(alerts, &len);
    int n_alerts = 0;
    for (char *p = text, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        json_error_t je;
        json_t *j = json_loadb(p, (size_t)(nl - p), 0, &je);
        assert_non_null(j);
        json_t *ev = json_object_get(j, "event"), *sw = json_object_get(j, "stripwatch");
        if (strcmp(json_string_value(json_object_get(ev, "kind")), "alert") != 0) {
            json_decref(j);
            continue;
        }
        n_alerts++;
        /* observer.ip: the addresses given to va, IPv4 first (getifaddrs order) */
        char *ips = json_dumps(json_object_get(json_object_get(j, "observer"), "ip"), JSON_COMPACT);
        assert_non_null(ips);
        assert_string_equal(ips, "[\"192.0.2.77\",\"2001:db8::77\"]");
        free(ips);
        const char *name =
            json_string_value(json_object_get(json_object_get(sw, "evidence"), "pcap"));
        const char *uid = json_string_value(json_object_get(sw, "uid"));
        const char *rule = json_string_value(json_object_get(json_object_get(j, "rule"), "id"));
        assert_non_null(name);
        char want_name[64], pcap[4400], want[256];
        snprintf(want_name, sizeof(want_name), "%s.pcap", uid);
        assert_string_equal(name, want_name);
        snprintf(pcap, sizeof(pcap), "%s/%s", evdir, name);
        char *back[] = {STRIPWATCH, "--no-config", "-q", "-r", pcap, NULL};
        struct run_out r;
        run(tmp, back, NULL, 60, &r);
        assert_int_equal(r.status, 0);
        snprintf(want, sizeof(want), "\"rule\":{\"id\":\"%s\"", rule);
        if (!strstr(r.out, want) || !strstr(r.out, uid))
            fail_msg("%s read back: no %s alert for %s:\n%s", name, rule, uid, r.out);
        run_free(&r);
        json_decref(j);
    }
    assert_true(n_alerts > 0);
    free(text);
}

static void test_live_matches_offline(void **st)
{
    (void)st;
    if (geteuid() != 0)
        SKIP_BECAUSE("not run as root (needs two network namespaces and a veth pair)");
    snprintf(ns_a, sizeof(ns_a), "swlive%d-a", (int)getpid());
    snprintf(ns_b, sizeof(ns_b), "swlive%d-b", (int)getpid());
    char cmd[1024], why[512];
    snprintf(cmd, sizeof(cmd), "ip netns add %s", ns_a);
    if (!try_sh(cmd, why, sizeof(why)))
        SKIP_BECAUSE("cannot make a network namespace (ip netns add: %s)", why);
    ns_made = true;
    assert_int_equal(sh("ip netns add %s", ns_b), 0);
    snprintf(cmd, sizeof(cmd), "ip link add va netns %s type veth peer name vb netns %s", ns_a,
             ns_b);
    if (!try_sh(cmd, why, sizeof(why)))
        SKIP_BECAUSE("cannot make a veth pair (ip link add type veth: %s)", why);
    char net_a[128], net_b[128];
    snprintf(net_a, sizeof(net_a), "--net=/run/netns/%s", ns_a);
    snprintf(net_b, sizeof(net_b), "--net=/run/netns/%s", ns_b);
    /* va's addresses are observer.ip of the live alerts: one IPv4, one IPv6
     * and no link-local address (addrgenmode none) */
    assert_int_equal(sh("nsenter %s ip link set va addrgenmode none && "
                        "nsenter %s ip addr add 192.0.2.77/24 dev va && "
                        "nsenter %s ip addr add 2001:db8::77/64 dev va nodad",
                        net_a, net_a, net_a),
                     0);
    /* vb: no link-local address either, so that nothing but the replay
     * crosses the pair (see test_live_fanout_matches_offline) */
    assert_int_equal(sh("nsenter %s ip link set vb addrgenmode none && "
                        "nsenter %s ip link set va up && nsenter %s ip link set vb up",
                        net_b, net_a, net_b),
                     0);

    char live_s[4096], live_a[4096], off_s[4096], off_a[4096];
    snprintf(live_s, sizeof(live_s), "%s/live-sessions.json", tmp);
    snprintf(live_a, sizeof(live_a), "%s/live-alerts.json", tmp);
    snprintf(off_s, sizeof(off_s), "%s/offline-sessions.json", tmp);
    snprintf(off_a, sizeof(off_a), "%s/offline-alerts.json", tmp);

    /* offline first, with the live run's filter: how many packets to wait for */
    char *offline[] = {STRIPWATCH,       "-r",  CAPTURE,        "--bpf", "tcp",
                       "--sessions-out", off_s, "--alerts-out", off_a,   NULL};
    struct run_out r;
    run(tmp, offline, NULL, 60, &r);
    assert_int_equal(r.status, 0);
    long long want_packets = stats_packets(r.err);
    assert_true(want_packets > 0);
    run_free(&r);

    char evdir[4200];
    snprintf(evdir, sizeof(evdir), "%s/evidence", tmp);
    char *sensor[] = {"nsenter",
                      net_a,
                      STRIPWATCH,
                      "-i",
                      "va",
                      "--bpf",
                      "tcp",
                      "--immediate",
                      "--sessions-out",
                      live_s,
                      "--alerts-out",
                      live_a,
                      "--evidence-dir",
                      evdir,
                      NULL};
    char sdir[4096], serr[4200];
    snprintf(sdir, sizeof(sdir), "%s/sensor", tmp);
    snprintf(serr, sizeof(serr), "%s/.stderr", sdir);
    mkdir(sdir, 0700);
    pid_t pid = run_start(sdir, sensor, NULL);
    assert_true(pid > 0);
    /* wait (up to 30 s) until the capture is open */
    struct timespec tick = {0, 20 * 1000 * 1000};
    bool open = false;
    for (int i = 0; i < 1500 && !(open = capturing(pid)); i++) {
        if (waitpid(pid, NULL, WNOHANG) != 0) {
            struct run_out so;
            run_collect(sdir, &so);
            fail_msg("the sensor ended before capturing: %s", so.err);
        }
        nanosleep(&tick, NULL);
    }
    if (!open)
        fail_msg("after 30 s the sensor has no packet socket bound to va");

    char *replay[] = {"nsenter", net_b, "tcpreplay", "-q",    "--pps",
                      "500",     "-i",  "vb",        CAPTURE, NULL};
    run(tmp, replay, NULL, 60, &r);
    assert_int_equal(r.status, 0);
    run_free(&r);
    /* wait (up to 30 s) until the sensor has counted every packet: it
     * prints its statistics on SIGUSR1 */
    long long seen = -1;
    for (int i = 0; i < 300 && seen != want_packets; i++) {
        kill(pid, SIGUSR1);
        struct timespec t = {0, 100 * 1000 * 1000};
        nanosleep(&t, NULL);
        size_t len;
        char *err = slurp(serr, &len);
        seen = stats_packets(err);
        free(err);
    }
    kill(pid, SIGINT);
    int status = run_wait(pid, 30);
    struct run_out so;
    run_collect(sdir, &so);
    if (seen != want_packets)
        fail_msg("after 30 s the sensor counted %lld packets, not %lld: %s", seen, want_packets,
                 so.err);
    if (status != 0)
        fail_msg("sensor exit %d: %s", status, so.err);
    /* the statistics at exit count what the kernel saw */
    assert_non_null(strstr(so.err, " kernel_dropped=0 "));
    run_free(&so);

    size_t l;
    char *ls = slurp(live_s, &l), *os = slurp(off_s, &l);
    char *lsc = scrub_lines(ls), *osc = scrub_lines(os);
    assert_true(strlen(osc) > 0);
    assert_string_equal(lsc, osc);
    free(ls);
    free(os);
    free(lsc);
    free(osc);
    check_live_evidence(live_a, evdir);
}

/* Drops, at every depth, what depends on capture time or on live policy
 * lookups: @timestamp, ts, event start/end/id/created/duration, *uid, *_ts,
 * mta_sts.detail, observer.ingress, stripwatch.packet. */
static void scrub_alert(json_t *j)
{
    if (json_is_object(j)) {
        scrub_event_times(j);
        const char *k;
        json_t *v;
        void *it;
        json_object_foreach_safe(j, it, k, v)
        {
            size_t l = strlen(k);
            if (!strcmp(k, "@timestamp") || !strcmp(k, "ts") || !strcmp(k, "start") ||
                !strcmp(k, "end") || (l >= 3 && !strcmp(k + l - 3, "uid")) ||
                (l >= 3 && !strcmp(k + l - 3, "_ts")))
                json_object_del(j, k);
            else if (!strcmp(k, "mta_sts") && json_is_object(v))
                json_object_del(v, "detail");
            else
                scrub_alert(v);
        }
    } else if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++)
            scrub_alert(json_array_get(j, i));
    }
}

static int cmp_line(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The alerts (health records left out) or records of file, scrubbed, one
 * per line, sorted; *n gets how many. */
/* Which alerts scrubbed_sorted() keeps. */
enum keep { KEEP_ALL, KEEP_NO_HISTORY, KEEP_KEYS };

/* Learned posture and path evidence come from other sessions. Offline, the
 * sessions still open at the end of the input are judged in uid order;
 * live, idle timeouts close them in another order, so such an alert may
 * cite (or, live, gain) history the other run did not have yet. */
static bool alert_has_history(const json_t *j)
{
    const json_t *ev = json_object_get(json_object_get(j, "stripwatch"), "evidence");
    return json_object_get(ev, "posture") || json_object_get(ev, "path");
}

static char *scrubbed_sorted_keep(const char *file, size_t *n, enum keep keep)
{
    size_t len;
    char *text = slurp(file, &len);
    char **lines = NULL;
    *n = 0;
    for (char *p = text, *e; *p; p = e + 1) {
        e = strchr(p, '\n');
        assert_non_null(e);
        if (alert_line_is_health(p, (size_t)(e - p)))
            continue;
        json_error_t err;
        json_t *j = json_loadb(p, (size_t)(e - p), 0, &err);
        assert_non_null(j);
        if (keep == KEEP_NO_HISTORY && alert_has_history(j)) {
            json_decref(j);
            continue;
        }
        scrub_alert(j);
        alert_drop_packet_numbers(j);
        lines = realloc(lines, (*n + 1) * sizeof(*lines));
        if (keep == KEEP_KEYS) {
            /* the connection and the rule: which alerts, not their evidence */
            const char *cid =
                json_string_value(json_object_get(json_object_get(j, "network"), "community_id"));
            const char *rid = json_string_value(json_object_get(json_object_get(j, "rule"), "id"));
            char key[256];
            snprintf(key, sizeof key, "%s %s", cid ? cid : "-", rid ? rid : "-");
            lines[(*n)++] = strdup(key);
        } else {
            lines[(*n)++] = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        }
        json_decref(j);
    }
    qsort(lines, *n, sizeof(*lines), cmp_line);
    size_t total = 1;
    for (size_t i = 0; i < *n; i++)
        total += strlen(lines[i]) + 1;
    char *out = calloc(1, total);
    for (size_t i = 0; i < *n; i++) {
        strcat(out, lines[i]);
        strcat(out, "\n");
        free(lines[i]);
    }
    free(lines);
    free(text);
    return out;
}

static char *scrubbed_sorted(const char *file, size_t *n)
{
    return scrubbed_sorted_keep(file, n, KEEP_ALL);
}

/* Every line of sub (sorted) is in sup (sorted). */
static bool sorted_lines_within(const char *sub, const char *sup)
{
    const char *q = sup;
    for (const char *p = sub; *p;) {
        size_t l = strcspn(p, "\n");
        for (;;) {
            if (!*q)
                return false;
            size_t m = strcspn(q, "\n");
            int c = strncmp(q, p, l < m ? l : m);
            if (c == 0 && l == m) {
                q += m + (q[m] != 0);
                break;
            }
            if (c > 0 || (c == 0 && m > l))
                return false;
            q += m + (q[m] != 0);
        }
        p += l + (p[l] != 0);
    }
    return true;
}

static void test_live_fanout_matches_offline(void **st)
{
    (void)st;
    if (geteuid() != 0)
        SKIP_BECAUSE("not run as root (needs two network namespaces and a veth pair)");
    snprintf(ns_c, sizeof(ns_c), "swlive%d-c", (int)getpid());
    snprintf(ns_d, sizeof(ns_d), "swlive%d-d", (int)getpid());
    char cmd[1024], why[512];
    snprintf(cmd, sizeof(cmd), "ip netns add %s", ns_c);
    if (!try_sh(cmd, why, sizeof(why)))
        SKIP_BECAUSE("cannot make a network namespace (ip netns add: %s)", why);
    ns2_made = true;
    assert_int_equal(sh("ip netns add %s", ns_d), 0);
    snprintf(cmd, sizeof(cmd), "ip link add va netns %s type veth peer name vb netns %s", ns_c,
             ns_d);
    if (!try_sh(cmd, why, sizeof(why)))
        SKIP_BECAUSE("cannot make a veth pair (ip link add type veth: %s)", why);
    char net_c[128], net_d[128];
    snprintf(net_c, sizeof(net_c), "--net=/run/netns/%s", ns_c);
    snprintf(net_d, sizeof(net_d), "--net=/run/netns/%s", ns_d);
    /* no link-local addresses: otherwise IPv6 autoconfiguration (neighbour
     * and router solicitations, MLD reports, for seconds after link up)
     * crosses the pair too, and one that reaches a socket before its filter
     * is set is counted by the kernel (kernel_received) though the sensor
     * never sees it */
    assert_int_equal(sh("nsenter %s ip link set va addrgenmode none && "
                        "nsenter %s ip link set vb addrgenmode none && "
                        "nsenter %s ip link set va up && nsenter %s ip link set vb up",
                        net_c, net_d, net_c, net_d),
                     0);

    /* the capture: the project's own captures, twice, each copy with other
     * addresses, all at once (many flows over both workers) */
    char caps[4096], mix[4096], live_s[4096], live_a[4096], off_s[4096], off_a[4096];
    snprintf(caps, sizeof(caps), "%s/caps", tmp);
    snprintf(mix, sizeof(mix), "%s/mix.pcap", tmp);
    snprintf(live_s, sizeof(live_s), "%s/fanout-sessions.json", tmp);
    snprintf(live_a, sizeof(live_a), "%s/fanout-alerts.json", tmp);
    snprintf(off_s, sizeof(off_s), "%s/fanout-offline-sessions.json", tmp);
    snprintf(off_a, sizeof(off_a), "%s/fanout-offline-alerts.json", tmp);
    assert_int_equal(sh("mkdir '%s' && ln -s '%s'/pcaps/*.pcap '%s'/", caps, SW_SOURCE_DIR, caps),
                     0);
    char *gen[] = {BENCHGEN, "--pcaps", caps, "--rounds", "2", "--write-real-mix", mix, NULL};
    struct run_out r;
    run(tmp, gen, NULL, 60, &r);
    assert_int_equal(r.status, 0);
    run_free(&r);

    char *offline[] = {STRIPWATCH, "-r",           mix,   "--bpf", "tcp", "--sessions-out",
                       off_s,      "--alerts-out", off_a, NULL};
    run(tmp, offline, NULL, 60, &r);
    assert_int_equal(r.status, 0);
    long long want_packets = stats_packets(r.err);
    assert_true(want_packets > 0);
    run_free(&r);

    char *sensor[] = {"nsenter",        net_c,  STRIPWATCH,     "-i",        "va",
                      "--bpf",          "tcp",  "--immediate",  "--workers", "2",
                      "--sessions-out", live_s, "--alerts-out", live_a,      NULL};
    char sdir[4096], serr[4200];
    snprintf(sdir, sizeof(sdir), "%s/sensor2", tmp);
    snprintf(serr, sizeof(serr), "%s/.stderr", sdir);
    mkdir(sdir, 0700);
    /* the sensor's group gets id 0, as it does when the sensor is the
     * first on the machine to make one after boot (under systemd, say) */
    char ns_path[128];
    snprintf(ns_path, sizeof(ns_path), "/run/netns/%s", ns_c);
    int self = enter_netns(ns_path);
    next_group_id_zero();
    leave_netns(self);
    pid_t pid = run_start(sdir, sensor, NULL);
    assert_true(pid > 0);
    /* wait (up to 30 s) until both sockets capture: bound to va, and the
     * sensor says it started (written once both are in the fanout group
     * with their filter; before that they take nothing) */
    struct timespec tick = {0, 20 * 1000 * 1000};
    int socks = 0;
    for (int i = 0; i < 1500 && ((socks = capture_sockets(pid)) < 2 || !started(live_a)); i++) {
        if (waitpid(pid, NULL, WNOHANG) != 0) {
            struct run_out so;
            run_collect(sdir, &so);
            fail_msg("the sensor ended before capturing: %s", so.err);
        }
        nanosleep(&tick, NULL);
    }
    if (socks != 2)
        fail_msg("after 30 s the sensor has %d packet sockets bound to va, not 2", socks);
    if (!started(live_a))
        fail_msg("after 30 s the sensor has not written its sensor-started event");
    /* a capture thread per socket, the output thread and the main one,
     * named for top -H and ps -L (each names itself when it starts: up to
     * 10 s) */
    char want_buf[256];
    const char *want_names = want_thread_names("stripwatch sw-capture-0 sw-capture-1 sw-output",
                                               want_buf, sizeof(want_buf));
    char names[256] = "";
    for (int i = 0; i < 500 && strcmp(names, want_names) != 0; i++) {
        if (i)
            nanosleep(&tick, NULL);
        thread_names(pid, names, sizeof(names));
    }
    assert_string_equal(names, want_names);
    /* one group (id 0) for both sockets: the next new group is 1 (a socket
     * that took id 0 for "no group yet" made a second one, and each socket
     * got every packet) */
    self = enter_netns(ns_path);
    int next = new_group_id();
    leave_netns(self);
    if (next != 1)
        fail_msg("the sensor's two capture sockets are not one fanout group with id 0: the next "
                 "new group got id %d, not 1",
                 next);

    char *replay[] = {"nsenter", net_d, "tcpreplay", "-q", "--pps", "1000", "-i", "vb", mix, NULL};
    run(tmp, replay, NULL, 60, &r);
    assert_int_equal(r.status, 0);
    run_free(&r);
    long long seen = -1;
    for (int i = 0; i < 300 && seen != want_packets; i++) {
        kill(pid, SIGUSR1);
        struct timespec t = {0, 100 * 1000 * 1000};
        nanosleep(&t, NULL);
        size_t len;
        char *err = slurp(serr, &len);
        seen = stats_packets(err);
        free(err);
    }
    kill(pid, SIGINT);
    int status = run_wait(pid, 30);
    struct run_out so;
    run_collect(sdir, &so);
    if (seen != want_packets)
        fail_msg("after 30 s the sensor counted %lld packets, not %lld: %s", seen, want_packets,
                 so.err);
    if (status != 0)
        fail_msg("sensor exit %d: %s", status, so.err);
    /* the statistics at exit (the last ones) sum both sockets' counters:
     * every packet received, none dropped */
    const char *last = so.err;
    for (const char *p = so.err; (p = strstr(p, "stripwatch: stats packets=")) != NULL; p++)
        last = p;
    assert_int_equal(stats_value(last, "stripwatch: stats packets=", "kernel_received"),
                     (unsigned long long)want_packets);
    assert_int_equal(stats_value(last, "stripwatch: stats packets=", "kernel_dropped"), 0);
    assert_int_equal(stats_value(last, "stripwatch: stats workers", "n"), 2);
    run_free(&so);

    /* alerts that rest on no other session: the same; the others (history
     * from other sessions, see alert_has_history): every offline alert is
     * raised live too, for the same connection and rule */
    size_t n_live, n_off;
    char *la = scrubbed_sorted_keep(live_a, &n_live, KEEP_NO_HISTORY),
         *oa = scrubbed_sorted_keep(off_a, &n_off, KEEP_NO_HISTORY);
    assert_true(n_off >= 10);
    assert_int_equal(n_live, n_off);
    assert_string_equal(la, oa);
    free(la);
    free(oa);
    la = scrubbed_sorted_keep(live_a, &n_live, KEEP_KEYS);
    oa = scrubbed_sorted_keep(off_a, &n_off, KEEP_KEYS);
    assert_true(n_off >= 30);
    if (!sorted_lines_within(oa, la))
        fail_msg("offline alerts missing live:\noffline:\n%s\nlive:\n%s", oa, la);
    free(la);
    free(oa);
    char *ls = scrubbed_sorted(live_s, &n_live), *os = scrubbed_sorted(off_s, &n_off);
    assert_true(n_off >= 40);
    assert_int_equal(n_live, n_off);
    assert_string_equal(ls, os);
    free(ls);
    free(os);
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
    if (ns2_made) {
        sh("ip netns del %s 2>/dev/null", ns_c);
        sh("ip netns del %s 2>/dev/null", ns_d);
    }
    rm_rf(tmp);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_live_matches_offline),
                                       cmocka_unit_test(test_live_fanout_matches_offline)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
