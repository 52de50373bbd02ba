/* SPDX-License-Identifier: Apache-2.0 */
/* report.c: `stripwatch report --tlsrpt SESSIONS.jsonl`: the TLS-RPT
 * reports (RFC 8460) of a session log, judged with the MTA-STS and DANE
 * snapshots the sensor would have used (--policy-file, --dane-file), the
 * same counting as the sensor's --tlsrpt-out (alerts/tlsrpt.h). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alerts/tlsrpt.h"
#include "policy/dane.h"
#include "policy/policy.h"
#include "sensor/sensor.h"

#define REPORT_WAIT_ROUNDS 100 /* engine rounds of 100 ms a lookup may take */

static void usage(FILE *f)
{
    fputs("usage: stripwatch report --tlsrpt SESSIONS.jsonl --tlsrpt-out DIR\n"
          "                         [--policy-file FILE] [--dane-file FILE]\n"
          "                         [--observer-name NAME] [--tlsrpt-contact TEXT]\n"
          "Writes the TLS-RPT reports (RFC 8460) of a session log (--sessions-out) to DIR,\n"
          "one per policy domain and UTC day, as `stripwatch --tlsrpt-out` does: policies\n"
          "from the MTA-STS snapshot, TLSA records from the DANE snapshot. Exit 0 done,\n"
          "1 bad input, 2 usage error.\n",
          f);
}

/* One lookup being waited for, on the heap: a lookup still running when
 * the wait gives up answers into nothing (its callback frees the wait)
 * instead of into the stack frame of a finished one(). */
struct wait {
    bool done, abandoned;
    struct rule_policy *p;
    struct rule_dane *dn;
};

static void on_policy(void *arg, const char *domain, const struct policy_answer *a)
{
    struct wait *w = arg;
    (void)domain;
    if (w->abandoned) {
        free(w);
        return;
    }
    rule_policy_set(w->p, a);
    w->done = true;
}

static void on_dane(void *arg, const char *host, const struct dane_answer *a)
{
    struct wait *w = arg;
    if (w->abandoned) {
        free(w);
        return;
    }
    rule_dane_set(w->dn, host, a);
    w->done = true;
}

/* Runs the engine until w is answered (true, w freed) or for at most
 * REPORT_WAIT_ROUNDS rounds (false: w is left to its callback). */
static bool wait_for(struct policy_engine *e, struct wait *w)
{
    for (int i = 0; i < REPORT_WAIT_ROUNDS && !w->done; i++)
        policy_engine_run(e, 100);
    if (w->done) {
        free(w);
        return true;
    }
    w->abandoned = true;
    return false;
}

static void lookup_policy(struct policy_engine *e, struct rule_policy *p)
{
    struct policy_answer a;
    memset(&a, 0, sizeof a);
    struct wait *w = calloc(1, sizeof *w);
    int rc = w ? policy_lookup(e, p->domain, on_policy, w, &a) : SW_ENOMEM;
    if (rc == SW_AGAIN) {
        w->p = p;
        if (!wait_for(e, w)) {
            struct policy_answer u = {POLICY_ST_UNKNOWN, NULL, "lookup deadline passed"};
            rule_policy_set(p, &u);
        }
        return;
    }
    free(w);
    if (rc == SW_OK) {
        rule_policy_set(p, &a);
    } else {
        struct policy_answer u = {POLICY_ST_UNKNOWN, NULL, sw_strerror(rc)};
        rule_policy_set(p, &u);
    }
}

static void lookup_dane(struct policy_engine *e, const char *host, struct rule_dane *dn)
{
    struct dane *d = policy_engine_dane(e);
    if (!d || !host[0])
        return;
    struct dane_answer a;
    memset(&a, 0, sizeof a);
    struct wait *w = calloc(1, sizeof *w);
    if (!w) {
        struct dane_answer u = {DANE_ST_UNKNOWN, NULL, "out of memory"};
        rule_dane_set(dn, host, &u);
        return;
    }
    if (dane_lookup(d, host, on_dane, w, &a) == SW_AGAIN) {
        w->dn = dn;
        if (!wait_for(e, w)) {
            struct dane_answer u = {DANE_ST_UNKNOWN, NULL, "DANE lookup deadline passed"};
            rule_dane_set(dn, host, &u);
        }
        return;
    }
    free(w);
    rule_dane_set(dn, host, &a);
}

/* Counts one session record; false with err set for a bad record. */
static bool one(struct tlsrpt *t, struct policy_engine *e, const json_t *rec, char *err,
                size_t errlen)
{
    struct tlsrpt_session s;
    if (!tlsrpt_session_of_json(rec, &s, err, errlen))
        return false;
    char doms[TLSRPT_RCPT_MAX][FACTS_HOST_MAX];
    size_t n = tlsrpt_domains(&s, doms, TLSRPT_RCPT_MAX);
    if (!n)
        return true;
    /* the policy in force when the session took place */
    policy_engine_set_time(e, true, s.start);
    struct rule_policy pols[TLSRPT_RCPT_MAX];
    struct rule_dane dn;
    memset(pols, 0, sizeof pols);
    memset(&dn, 0, sizeof dn);
    for (size_t i = 0; i < n; i++) {
        memcpy(pols[i].domain, doms[i], sizeof pols[i].domain);
        lookup_policy(e, &pols[i]);
    }
    lookup_dane(e, s.mx, &dn);
    tlsrpt_add(t, &s, pols, n, &dn);
    for (size_t i = 0; i < n; i++)
        rule_policy_clear(&pols[i]);
    rule_dane_clear(&dn);
    return true;
}

/* Counts the session records of in; a line that does not parse or lacks
 * what a report needs is named on stderr and skipped (*skipped), the others
 * still count. Returns 1 when in cannot be read, else 0. */
static int run(const char *in, struct tlsrpt *t, struct policy_engine *e, unsigned long *skipped,
               unsigned long *lines)
{
    FILE *f = strcmp(in, "-") == 0 ? stdin : fopen(in, "r");
    if (!f) {
        fprintf(stderr, "stripwatch: %s: %s\n", in, strerror(errno));
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned long no = 0;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        no++;
        if (len == 0 || (len == 1 && line[0] == '\n'))
            continue;
        json_error_t je;
        json_t *rec = json_loadb(line, (size_t)len, 0, &je);
        char err[300] = "";
        if (!rec) {
            fprintf(stderr, "stripwatch: %s:%lu: not JSON: %s\n", in, no, je.text);
            (*skipped)++;
            continue;
        }
        /* session records only (an alert repeats its session's facts) */
        const char *ds =
            json_string_value(json_object_get(json_object_get(rec, "event"), "dataset"));
        if (ds && strcmp(ds, "stripwatch.session") == 0 && !one(t, e, rec, err, sizeof err)) {
            fprintf(stderr, "stripwatch: %s:%lu: %s\n", in, no, err);
            (*skipped)++;
        }
        json_decref(rec);
    }
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "stripwatch: %s: %s\n", in, strerror(errno));
        rc = 1;
    }
    *lines = no;
    free(line);
    if (f != stdin)
        fclose(f);
    return rc;
}

int sensor_report_main(int argc, char **argv)
{
    enum { O_TLSRPT = 1000, O_OUT, O_POLICY, O_DANE, O_OBSERVER, O_CONTACT, O_HELP };
    static const struct option lo[] = {
        {"tlsrpt", required_argument, NULL, O_TLSRPT},
        {"tlsrpt-out", required_argument, NULL, O_OUT},
        {"policy-file", required_argument, NULL, O_POLICY},
        {"dane-file", required_argument, NULL, O_DANE},
        {"observer-name", required_argument, NULL, O_OBSERVER},
        {"tlsrpt-contact", required_argument, NULL, O_CONTACT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *in = NULL, *out = NULL, *pfile = NULL, *dfile = NULL, *obs = NULL, *contact = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case O_TLSRPT:
            in = optarg;
            break;
        case O_OUT:
            out = optarg;
            break;
        case O_POLICY:
            pfile = optarg;
            break;
        case O_DANE:
            dfile = optarg;
            break;
        case O_OBSERVER:
            obs = optarg;
            break;
        case O_CONTACT:
            contact = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "stripwatch: report: unknown option or missing value: %s\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "stripwatch: report: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (!in || !out) {
        fprintf(stderr, "stripwatch: report: --tlsrpt SESSIONS.jsonl and --tlsrpt-out DIR are "
                        "needed (see stripwatch report -h)\n");
        return 2;
    }
    struct stat st;
    int src = stat(out, &st);
    if (src != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "stripwatch: --tlsrpt-out %s: %s\n", out,
                src != 0 ? strerror(errno) : "not a directory");
        return 1;
    }
    char host[256] = "";
    if (!obs && gethostname(host, sizeof host - 1) == 0)
        obs = host;
    struct policy_cfg pc;
    policy_cfg_defaults(&pc);
    pc.fetch = false;
    pc.policy_file = pfile;
    pc.dane = dfile != NULL;
    pc.dane_file = dfile;
    char err[512] = "";
    struct policy_engine *e = policy_engine_new(&pc, err, sizeof err);
    if (!e) {
        fprintf(stderr, "stripwatch: %s\n", err[0] ? err : "policy engine: cannot start");
        return 1;
    }
    struct tlsrpt_cfg tc = {out, obs, contact};
    struct tlsrpt *t = tlsrpt_new(&tc);
    int rc = 1;
    if (!t)
        fprintf(stderr, "stripwatch: report: out of memory\n");
    else {
        unsigned long skipped = 0, lines = 0;
        rc = run(in, t, e, &skipped, &lines);
        if (!tlsrpt_flush(t))
            rc = 1;
        if (skipped) {
            fprintf(stderr,
                    "stripwatch: %s: %lu of %lu lines skipped; the reports count the others\n", in,
                    skipped, lines);
            rc = 1;
        }
    }
    tlsrpt_free(t);
    policy_engine_free(e);
    return rc;
}
