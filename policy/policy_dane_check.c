/* SPDX-License-Identifier: Apache-2.0 */
/* policy_dane_check.c: `stripwatch policy DOMAIN`: the TLSA records of the
 * domain's MX hosts and whether DNSSEC makes them count. RFC 7672 §2.2
 * (TLSA lookup, secure/insecure/bogus), §3.1 (usable records), RFC 6698
 * §2.2 (presentation form). */
#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decode/sw.h"
#include "policy/dane.h"
#include "policy/policy_check.h"

#define DANE_CLI_TIMEOUT_MS 10000

struct dwait {
    bool done;
    enum dane_status status;
    struct dane_entry *entry; /* a copy */
    char detail[256];
};

static void keep(struct dwait *w, const struct dane_answer *a)
{
    w->done = true;
    w->status = a->status;
    snprintf(w->detail, sizeof w->detail, "%s", a->detail ? a->detail : "");
    const struct dane_entry *e = a->entry;
    if (e)
        w->entry = dane_entry_new(e->host, e->status, e->rr, e->n, e->why, e->fetched_at, e->ttl,
                                  e->source);
    if (!w->detail[0] && e && e->why)
        snprintf(w->detail, sizeof w->detail, "%s", e->why);
}

static void on_dane(void *arg, const char *host, const struct dane_answer *a)
{
    (void)host;
    keep(arg, a);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void lookup(struct dane *d, const char *host, struct dwait *w)
{
    struct dane_answer a;
    memset(&a, 0, sizeof a);
    memset(w, 0, sizeof *w);
    if (dane_lookup(d, host, on_dane, w, &a) != SW_AGAIN) {
        keep(w, &a);
        return;
    }
    int64_t end = mono_ms() + DANE_CLI_TIMEOUT_MS;
    while (!w->done) {
        int64_t left = end - mono_ms();
        if (left <= 0)
            break;
        struct pollfd p = {dane_fd(d), POLLIN, 0};
        if (p.fd >= 0)
            poll(&p, 1, left > 200 ? 200 : (int)left);
        dane_process(d);
    }
    if (!w->done) {
        w->done = true;
        w->status = DANE_ST_UNKNOWN;
        snprintf(w->detail, sizeof w->detail, "timed out");
    }
}

static int rec_cmp(const void *a, const void *b)
{
    return strcmp(a, b); /* the text is the first member */
}

/* One host: its records and one finding. */
static void one(struct dane *d, const char *host, int *fails, json_t *tlsa)
{
    FILE *o = policy_cli_stream();
    struct dwait w;
    lookup(d, host, &w);
    size_t usable = 0, n = w.entry ? w.entry->n : 0;
    json_t *recs = json_array();
    /* in presentation order (an RRset has none: answers differ in order) */
    struct rec {
        char text[2 * DANE_MAX_DATA + 32];
        bool usable;
    } *r = calloc(n ? n : 1, sizeof *r);
    for (size_t i = 0; r && i < n; i++) {
        dane_tlsa_format(&w.entry->rr[i], r[i].text, sizeof r[i].text);
        r[i].usable = dane_tlsa_is_usable(&w.entry->rr[i]);
    }
    if (r && n)
        qsort(r, n, sizeof *r, rec_cmp);
    for (size_t i = 0; r && i < n; i++) {
        usable += r[i].usable;
        fprintf(o, "TLSA _25._tcp.%s: %s%s\n", host, r[i].text,
                r[i].usable ? "" : " (not usable for SMTP: RFC 7672 §3.1)");
        json_array_append_new(recs, json_string(r[i].text));
    }
    free(r);
    switch (w.status) {
    case DANE_ST_SECURE:
        if (usable) {
            fprintf(o, "PASS DANE§2.2 MX %s has DNSSEC-secure TLSA records (%zu usable for SMTP)\n",
                    host, usable);
        } else {
            fprintf(o,
                    "FAIL DANE§3.1 MX %s has DNSSEC-secure TLSA records, none usable for SMTP "
                    "(DANE-TA(2) or DANE-EE(3) needed; senders will not deliver there)\n",
                    host);
            (*fails)++;
        }
        break;
    case DANE_ST_NONE:
        fprintf(o, "NOTE DANE§2.2 MX %s: no TLSA record (DNSSEC-secure denial): DANE not in use\n",
                host);
        break;
    case DANE_ST_INSECURE:
        fprintf(o,
                "NOTE DANE§2.2 MX %s: the TLSA answer is not DNSSEC-signed (insecure): DANE does "
                "not apply\n",
                host);
        break;
    case DANE_ST_BOGUS:
        fprintf(o,
                "FAIL DANE§2.2 MX %s: DNSSEC validation of the TLSA answer failed (bogus: %s); "
                "DANE senders will not deliver there\n",
                host, w.detail[0] ? w.detail : "no reason given");
        (*fails)++;
        break;
    default:
        fprintf(o, "FAIL DANE§2.2 MX %s: TLSA lookup failed: %s\n", host,
                w.detail[0] ? w.detail : "unknown");
        (*fails)++;
        break;
    }
    if (tlsa)
        json_array_append_new(tlsa, json_pack("{s:s,s:s,s:O,s:I}", "host", host, "status",
                                              dane_status_str(w.status), "records", recs, "usable",
                                              (json_int_t)usable));
    json_decref(recs);
    dane_entry_free(w.entry);
}

bool policy_cli_dane_check(const char *domain, const char *const *mx, size_t n,
                           const char *dns_server, const char *trust_anchor, int *fails,
                           json_t *tlsa, char *err, size_t errlen)
{
    struct dane_cfg cfg;
    dane_cfg_defaults(&cfg);
    cfg.fetch = true;
    cfg.dns_server = dns_server;
    cfg.trust_anchor = trust_anchor;
    cfg.timeout_ms = DANE_CLI_TIMEOUT_MS / 2;
    struct dane *d = dane_new(&cfg, err, errlen);
    if (!d)
        return false;
    if (n == 0)
        one(d, domain, fails, tlsa);
    for (size_t i = 0; i < n; i++) {
        const char *sp = strchr(mx[i], ' ');
        char host[300];
        snprintf(host, sizeof host, "%s", sp ? sp + 1 : mx[i]);
        size_t l = strlen(host);
        if (l > 1 && host[l - 1] == '.')
            host[l - 1] = '\0';
        if (strcmp(host, ".") == 0 || !host[0])
            continue;
        one(d, host, fails, tlsa);
    }
    dane_free(d);
    return true;
}
