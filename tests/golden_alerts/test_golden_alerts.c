/* SPDX-License-Identifier: Apache-2.0 */
/* test_golden_alerts.c: golden alert tests. For each line of TESTLIST, runs
 * `stripwatch -r PCAP [--policy-file F] --alerts-out - --sessions-out
 * /dev/null [flags]` and compares the exact set of alerts, each reduced to
 * its key fields, with the expected file:
 *   RULE SEVERITY CONFIDENCE CLIENT > SERVER rcpt=DOMAINS mta_sts=MODE/STATUS
 *   [dane=HOST/STATUS]
 * (DOMAINS: accepted recipient domains in order, "-" for none; mta_sts "-"
 * when the alert has none; dane only when the alert carries it). An empty
 * expected file means: no alert at all.
 * SW_GOLDEN_PRINT=1 prints what each capture produced. A capture named
 * extra:PATH lives in the optional SW_EXTRA_PCAPS directory (captures that
 * may not be redistributed, pcaps/third-party/README.md); without it the case
 * is skipped with one line on stderr. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GOLDEN_DIR     SW_SOURCE_DIR "/tests/golden_alerts"
#define RUN_TIMEOUT_MS 60000
#define MAX_ARGS       32
#define MAX_LINES      256

struct gcase {
    char name[128];
    char pcap[1024];   /* "" for an extra: capture without SW_EXTRA_PCAPS */
    char extra[512];   /* that capture's PATH, for the skip line */
    char policy[1024]; /* "" for none */
    char flags[512];
    char expected[1024];
};

static char tmpdir[256];

/* extra:PATH is under SW_EXTRA_PCAPS ("" when that is not set), anything
 * else relative to the source tree. */
static void resolve(const char *in, char *out, size_t len)
{
    if (!strncmp(in, "extra:", 6))
        snprintf(out, len, "%s%s%s", SW_EXTRA_PCAPS, SW_EXTRA_PCAPS[0] ? "/" : "",
                 SW_EXTRA_PCAPS[0] ? in + 6 : "");
    else
        snprintf(out, len, "%s/%s", SW_SOURCE_DIR, in);
}

/* Runs argv, collecting stdout into *out (malloc'd); stderr into errbuf. */
static int run(char *const argv[], char **out, char *errbuf, size_t errlen)
{
    int po[2], pe[2];
    assert_int_equal(pipe(po), 0);
    assert_int_equal(pipe(pe), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    size_t cap = 65536, n = 0, en = 0;
    char *buf = malloc(cap);
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    int open_fds = 2;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (open_fds) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        long el = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (el > RUN_TIMEOUT_MS) {
            kill(pid, SIGKILL);
            break;
        }
        if (poll(fds, 2, 200) <= 0)
            continue;
        if (fds[0].revents) {
            if (cap - n < 4096)
                buf = realloc(buf, cap *= 2);
            ssize_t r = read(po[0], buf + n, cap - n - 1);
            if (r <= 0) {
                fds[0].fd = -1;
                open_fds--;
            } else {
                n += (size_t)r;
            }
        }
        if (fds[1].revents) {
            char tmp[4096];
            ssize_t r = read(pe[0], tmp, sizeof tmp);
            if (r <= 0) {
                fds[1].fd = -1;
                open_fds--;
            } else if (en + 1 < errlen) {
                size_t k = (size_t)r < errlen - en - 1 ? (size_t)r : errlen - en - 1;
                memcpy(errbuf + en, tmp, k);
                en += k;
            }
        }
    }
    errbuf[en] = 0;
    buf[n] = 0;
    close(po[0]);
    close(pe[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static const char *jstr(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(json_object_get(o, a), b);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void endpoint(json_t *o, const char *which, char *buf, size_t len)
{
    json_t *e = json_object_get(o, which);
    const char *ip = json_string_value(json_object_get(e, "ip"));
    long long port = json_integer_value(json_object_get(e, "port"));
    if (ip && strchr(ip, ':'))
        snprintf(buf, len, "[%s]:%lld", ip, port);
    else
        snprintf(buf, len, "%s:%lld", ip ? ip : "?", port);
}

/* One alert reduced to its key fields. */
static void summarize(json_t *o, char *out, size_t len)
{
    char src[80], dst[80], rcpt[512] = "";
    endpoint(o, "source", src, sizeof src);
    endpoint(o, "destination", dst, sizeof dst);
    size_t i, j;
    json_t *t, *r;
    json_array_foreach(json_object_get(json_object_get(o, "smtp"), "transactions"), i, t)
    {
        json_array_foreach(json_object_get(t, "rcpt"), j, r)
        {
            long long code = json_integer_value(json_object_get(r, "code"));
            const char *d = json_string_value(json_object_get(r, "domain"));
            if (!d || code < 200 || code > 299)
                continue;
            char needle[300];
            snprintf(needle, sizeof needle, ",%s,", d);
            char hay[520];
            snprintf(hay, sizeof hay, ",%s,", rcpt);
            if (strstr(hay, needle))
                continue;
            size_t l = strlen(rcpt);
            snprintf(rcpt + l, sizeof rcpt - l, "%s%s", l ? "," : "", d);
        }
    }
    char mta[80] = "-";
    json_t *m = json_object_get(o, "mta_sts");
    if (json_is_object(m)) {
        const char *mode = json_string_value(json_object_get(m, "mode"));
        const char *st = json_string_value(json_object_get(m, "status"));
        snprintf(mta, sizeof mta, "%s/%s", mode ? mode : "-", st ? st : "-");
    }
    char dane[300] = "";
    json_t *dn = json_object_get(o, "dane");
    if (json_is_object(dn)) {
        const char *host = json_string_value(json_object_get(dn, "host"));
        const char *st = json_string_value(json_object_get(dn, "status"));
        snprintf(dane, sizeof dane, " dane=%s/%s", host ? host : "-", st ? st : "-");
    }
    const char *rule = jstr(o, "rule", "id");
    long long sev = json_integer_value(json_object_get(json_object_get(o, "event"), "severity"));
    const char *conf = jstr(o, "stripwatch", "confidence");
    snprintf(out, len, "%s %lld %s %s > %s rcpt=%s mta_sts=%s%s", rule ? rule : "?", sev,
             conf ? conf : "?", src, dst, rcpt[0] ? rcpt : "-", mta, dane);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Splits text into trimmed lines, skipping blanks and # comments. */
static size_t lines_of(char *text, char **v, size_t max, bool comments)
{
    size_t n = 0;
    for (char *s = strtok(text, "\n"); s && n < max; s = strtok(NULL, "\n")) {
        while (*s == ' ' || *s == '\t')
            s++;
        size_t l = strlen(s);
        while (l && (s[l - 1] == ' ' || s[l - 1] == '\r'))
            s[--l] = 0;
        if (!*s || (comments && *s == '#'))
            continue;
        v[n++] = s;
    }
    return n;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *b = malloc((size_t)sz + 1);
    size_t n = fread(b, 1, (size_t)sz, fp);
    b[n] = 0;
    fclose(fp);
    return b;
}

static void run_case(void **state)
{
    const struct gcase *c = *state;
    if (!c->pcap[0]) {
        fprintf(stderr,
                "test_golden_alerts: skipped %s: %s is not redistributable (no licence); set "
                "SW_EXTRA_PCAPS to a directory holding it\n",
                c->name, c->extra);
        skip();
    }
    char *argv[MAX_ARGS];
    int argc = 0;
    char bin[1024], state_path[MAX_ARGS][512], workers[16], dane_path[1024];
    int n_state = 0;
    snprintf(bin, sizeof bin, "%s/stripwatch", SW_BINARY_DIR);
    argv[argc++] = bin;
    argv[argc++] = "-r";
    argv[argc++] = (char *)c->pcap;
    if (c->policy[0]) {
        argv[argc++] = "--policy-file";
        argv[argc++] = (char *)c->policy;
    }
    argv[argc++] = "--alerts-out";
    argv[argc++] = "-";
    argv[argc++] = "--sessions-out";
    argv[argc++] = "/dev/null";
    char flags[512];
    snprintf(flags, sizeof flags, "%s", c->flags);
    if (strcmp(flags, "-")) {
        char *save = NULL;
        for (char *f = strtok_r(flags, ",", &save); f && argc < MAX_ARGS - 3;
             f = strtok_r(NULL, ",", &save)) {
            if (!strncmp(f, "state=", 6)) {
                snprintf(state_path[n_state], sizeof state_path[0], "%s/%s.json", tmpdir, f + 6);
                argv[argc++] = "--state-file";
                argv[argc++] = state_path[n_state++];
            } else if (!strncmp(f, "dane=", 5)) {
                resolve(f + 5, dane_path, sizeof dane_path);
                argv[argc++] = "--dane-file";
                argv[argc++] = dane_path;
            } else if (!strncmp(f, "workers=", 8)) {
                snprintf(workers, sizeof workers, "%s", f + 8);
                argv[argc++] = "--workers";
                argv[argc++] = workers;
            } else {
                argv[argc++] = f;
            }
        }
    }
    argv[argc] = NULL;

    char *out = NULL, errbuf[8192];
    int rc = run(argv, &out, errbuf, sizeof errbuf);
    if (rc != 0) {
        fprintf(stderr, "%s: stripwatch exited %d:\n%s\n", c->name, rc, errbuf);
        free(out);
        fail();
    }
    char *got[MAX_LINES], *want[MAX_LINES];
    size_t n_got = 0, n_health = 0;
    char *raw[MAX_LINES];
    size_t n_raw = lines_of(out, raw, MAX_LINES, false);
    for (size_t i = 0; i < n_raw; i++) {
        json_error_t je;
        json_t *o = json_loads(raw[i], 0, &je);
        if (!o) {
            fprintf(stderr, "%s: alert line %zu is not JSON (%s): %.200s\n", c->name, i + 1,
                    je.text, raw[i]);
            fail();
        }
        /* health records: exactly a start (first line) and a stop (last
         * line), nothing lost on any of these captures */
        json_t *h = json_object_get(json_object_get(o, "stripwatch"), "health");
        const char *ds = json_string_value(json_object_get(json_object_get(o, "event"), "dataset"));
        if (ds && !strcmp(ds, "stripwatch.health")) {
            const char *st = json_string_value(json_object_get(h, "state"));
            const char *want_st = i == 0 ? "start" : i + 1 == n_raw ? "stop" : "";
            if (!st || strcmp(st, want_st) != 0 ||
                !json_is_false(json_object_get(h, "data_lost"))) {
                fprintf(stderr, "%s: unexpected health record at line %zu: %.300s\n", c->name,
                        i + 1, raw[i]);
                fail();
            }
            n_health++;
            json_decref(o);
            continue;
        }
        got[n_got] = malloc(1024);
        summarize(o, got[n_got++], 1024);
        json_decref(o);
    }
    if (n_health != 2) {
        fprintf(stderr, "%s: %zu health records, want a start and a stop\n", c->name, n_health);
        fail();
    }
    qsort(got, n_got, sizeof *got, cmp_str);
    if (getenv("SW_GOLDEN_PRINT"))
        for (size_t i = 0; i < n_got; i++)
            fprintf(stderr, "%s: %s\n", c->name, got[i]);

    char *exp = slurp(c->expected);
    if (!exp) {
        fprintf(stderr, "%s: cannot read %s\n", c->name, c->expected);
        fail();
    }
    size_t n_want = lines_of(exp, want, MAX_LINES, true);
    qsort(want, n_want, sizeof *want, cmp_str);
    bool same = n_got == n_want;
    for (size_t i = 0; same && i < n_got; i++)
        same = !strcmp(got[i], want[i]);
    if (!same) {
        fprintf(stderr, "%s: alerts differ from %s\n  expected (%zu):\n", c->name, c->expected,
                n_want);
        for (size_t i = 0; i < n_want; i++)
            fprintf(stderr, "    %s\n", want[i]);
        fprintf(stderr, "  got (%zu):\n", n_got);
        for (size_t i = 0; i < n_got; i++)
            fprintf(stderr, "    %s\n", got[i]);
    }
    for (size_t i = 0; i < n_got; i++)
        free(got[i]);
    free(exp);
    free(out);
    assert_true(same);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/swgold.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    char *list = slurp(GOLDEN_DIR "/TESTLIST");
    if (!list) {
        fprintf(stderr, "cannot read " GOLDEN_DIR "/TESTLIST\n");
        return 1;
    }
    char *lines[MAX_LINES];
    size_t n = lines_of(list, lines, MAX_LINES, true);
    struct gcase *cases = calloc(n, sizeof *cases);
    struct CMUnitTest *tests = calloc(n, sizeof *tests);
    for (size_t i = 0; i < n; i++) {
        char name[128], pcap[512], policy[512], flags[512], expected[512];
        if (sscanf(lines[i], "%127s %511s %511s %511s %511s", name, pcap, policy, flags,
                   expected) != 5) {
            fprintf(stderr, "TESTLIST: line \"%s\": want name pcap policy flags expected\n",
                    lines[i]);
            return 1;
        }
        struct gcase *c = &cases[i];
        snprintf(c->name, sizeof c->name, "%s", name);
        resolve(pcap, c->pcap, sizeof c->pcap);
        if (!strncmp(pcap, "extra:", 6))
            snprintf(c->extra, sizeof c->extra, "%s", pcap + 6);
        if (strcmp(policy, "-"))
            resolve(policy, c->policy, sizeof c->policy);
        snprintf(c->flags, sizeof c->flags, "%s", flags);
        snprintf(c->expected, sizeof c->expected, "%s/%s", GOLDEN_DIR, expected);
        tests[i] = (struct CMUnitTest){c->name, run_case, NULL, NULL, c};
    }
    int rc = _cmocka_run_group_tests("golden_alerts", tests, n, NULL, NULL);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        rc = rc ? rc : 1;
    free(tests);
    free(cases);
    free(list);
    return rc;
}
