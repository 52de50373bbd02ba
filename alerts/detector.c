/* SPDX-License-Identifier: Apache-2.0 */
/* detector.c: the downgrade detector: sessions in (in capture order), policy
 * lookups parked with a deadline, verdicts judged by rules.c, alerts out in
 * session order through a reorder queue, rate limited per (rule, server).
 * Follows RFC 8461 (MTA-STS) for which policies apply; see alerts/RULES.md. */
#include "alerts/detector.h"
#include "alerts/alog.h"

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alerts/alert.h"
#include "alerts/posture.h"
#include "alerts/ratelimit.h"
#include "alerts/rules.h"
#include "alerts/tlsrpt.h"
#include "decode/pkt.h"

#define RATELIMIT_KEYS 65536
/* Policy lookups one session has in flight at once; the others wait their
 * turn (deferred, never skipped): each answer starts the next. */
#define LOOKUPS_PER_SESSION 16

/* One session waiting for its policies (or for an earlier one to leave). */
struct record {
    uint64_t seq;
    struct smtp_facts *f;
    struct posture_view pv;
    struct rule_policy *pols; /* every domain whose policy matters */
    size_t n_pols;            /* judged by the rules: pols[0..n_pols) */
    size_t n_all;             /* with the lookups only TLS-RPT asked for: pols[0..n_all) */
    size_t next_lookup;       /* pols[next_lookup..n_all) not asked yet */
    size_t in_flight;         /* lookups asked, not answered */
    bool deferred;            /* some waited for their turn */
    struct rule_dane dane;    /* the server's TLSA answer (dane.host "" when none) */
    size_t waiting;           /* lookups not answered yet */
    int64_t deadline_ms;      /* monotonic */
    /* detector_session_rendered's text of the record, while in that call */
    const char *same;
    size_t same_len;
};

/* Outlives the detector while policy callbacks are still owed to it. The
 * engine may be freed without calling them back (it cancels what is in
 * flight), so a freed detector's handle and its contexts stay reachable from
 * the orphan list, never dangling and never reported as leaks. */
struct lookup_ctx;
struct handle {
    struct detector *d;
    size_t refs;                  /* 1 for the detector + one per context */
    struct lookup_ctx *ctxs;      /* contexts the engine still holds */
    struct handle *onext, *oprev; /* orphan list, once the detector is gone */
};

#define LOOKUP_DANE SIZE_MAX /* lookup_ctx.idx of the DANE lookup */

struct lookup_ctx {
    struct handle *h;
    uint64_t seq;
    size_t idx; /* into pols, or LOOKUP_DANE */
    struct lookup_ctx *next, *prev;
};

static pthread_mutex_t orphan_mu = PTHREAD_MUTEX_INITIALIZER;
static struct handle *orphans;

#define SPARE_RECORDS 8 /* emitted records kept for the next sessions */

struct detector {
    struct detector_cfg cfg;
    struct record *spare[SPARE_RECORDS]; /* emptied records, reused before malloc */
    size_t n_spare;
    struct lookup_ctx *spare_ctx; /* a context an answer at once left unused */
    struct detector_stats stats;
    char observer[256];
    char hostname[256];            /* observer.hostname */
    char ip[DETECTOR_MAX_IPS][64]; /* observer.ip */
    const char *ips[DETECTOR_MAX_IPS];
    size_t n_ips;
    struct posture *posture;
    struct ratelimit *rl;
    struct rules_tuning tuning;
    struct handle *h;
    /* reorder queue: a ring of records with consecutive seq numbers */
    struct record **ring;
    size_t cap, head, count;
    uint64_t head_seq, next_seq;
    bool saved;
    struct jsonw out; /* the alert being written, reused */
    /* a session's policy domains while its record is made, reused */
    char (*doms)[FACTS_HOST_MAX];
    size_t doms_cap;
};

static void posture_counts(struct detector *d);

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void detector_cfg_defaults(struct detector_cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->policy_deadline_ms = 5000;
    c->max_pending = 10000;
    c->posture_max = 100000;
    c->posture_max_age = 90LL * 24 * 3600;
    c->fallback_window = POSTURE_FALLBACK_WINDOW_S;
    c->rate_per_rule_server = 10;
}

struct detector *detector_new(const struct detector_cfg *cfg, char *err, size_t errlen)
{
    struct detector *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "detector: out of memory");
        return NULL;
    }
    d->cfg = *cfg;
    if (d->cfg.max_pending == 0)
        d->cfg.max_pending = 1;
    if (d->cfg.policy_deadline_ms < 0)
        d->cfg.policy_deadline_ms = 0;
    if (cfg->observer_name && *cfg->observer_name)
        snprintf(d->observer, sizeof d->observer, "%s", cfg->observer_name);
    else if (gethostname(d->observer, sizeof d->observer - 1) != 0 || !d->observer[0])
        snprintf(d->observer, sizeof d->observer, "stripwatch");
    if (gethostname(d->hostname, sizeof d->hostname - 1) != 0)
        d->hostname[0] = '\0';
    for (size_t i = 0; i < cfg->n_ips && d->n_ips < DETECTOR_MAX_IPS; i++) {
        snprintf(d->ip[d->n_ips], sizeof d->ip[0], "%s", cfg->ips[i]);
        d->ips[d->n_ips] = d->ip[d->n_ips];
        d->n_ips++;
    }
    d->cfg.ips = NULL;
    d->cfg.n_ips = 0;
    if (cfg->tuning) {
        if (!rules_tuning_copy(&d->tuning, cfg->tuning)) {
            snprintf(err, errlen, "detector: out of memory");
            free(d);
            return NULL;
        }
    } else {
        rules_tuning_init(&d->tuning);
        d->tuning.rate_limit = cfg->rate_per_rule_server;
    }
    d->cfg.tuning = NULL;
    d->cap = d->cfg.max_pending;
    d->ring = calloc(d->cap, sizeof *d->ring);
    d->posture = posture_new(d->cfg.posture_max, d->cfg.posture_max_age, d->cfg.fallback_window);
    d->rl = ratelimit_new(d->tuning.rate_limit, RATELIMIT_KEYS);
    d->h = calloc(1, sizeof *d->h);
    if (!d->ring || !d->posture || !d->rl || !d->h) {
        snprintf(err, errlen, "detector: out of memory");
        detector_free(d);
        return NULL;
    }
    d->h->d = d;
    d->h->refs = 1;
    if (cfg->state_file && posture_load(d->posture, cfg->state_file, err, errlen) != SW_OK) {
        detector_free(d);
        return NULL;
    }
    if (cfg->redis_url && posture_attach_redis(d->posture, cfg->redis_url, cfg->redis_ca_file, err,
                                               errlen) != SW_OK) {
        detector_free(d);
        return NULL;
    }
    return d;
}

static void handle_unref(struct handle *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&orphan_mu);
    bool gone = --h->refs == 0;
    if (gone && !h->d && (h->oprev || orphans == h)) {
        if (h->oprev)
            h->oprev->onext = h->onext;
        else
            orphans = h->onext;
        if (h->onext)
            h->onext->oprev = h->oprev;
    }
    pthread_mutex_unlock(&orphan_mu);
    if (gone)
        free(h);
}

static void ctx_unlink(struct lookup_ctx *c)
{
    pthread_mutex_lock(&orphan_mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->h->ctxs = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&orphan_mu);
}

/* Frees what the record holds, not the record itself. */
static void record_clear(struct record *r)
{
    for (size_t i = 0; i < r->n_all; i++)
        rule_policy_clear(&r->pols[i]);
    free(r->pols);
    rule_dane_clear(&r->dane);
    facts_free(r->f);
}

static void record_free(struct record *r)
{
    if (!r)
        return;
    record_clear(r);
    free(r);
}

/* record_free, keeping the block for the next session when there is room */
static void record_release(struct detector *d, struct record *r)
{
    if (!r)
        return;
    if (d->n_spare == SPARE_RECORDS) {
        record_free(r);
        return;
    }
    record_clear(r);
    d->spare[d->n_spare++] = r;
}

static void emit_line(struct detector *d, const char *s, size_t len, const struct verdict *v)
{
    if (d->cfg.sink)
        sink_emit(d->cfg.sink, s, len);
    if (d->cfg.emit)
        d->cfg.emit(d->cfg.emit_arg, s, len, rule_desc(v->rule)->id, v->severity);
}

static void server_str(const struct smtp_facts *f, char *buf, size_t len)
{
    char ip[64];
    sw_addr_str(&f->flow.server, ip, sizeof ip);
    /* "%s|%u" by hand: once per session */
    size_t n = strlen(ip);
    char port[8], *e = port + sizeof port, *q = e;
    unsigned v = f->flow.sport;
    do {
        *--q = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (n + 1 + (size_t)(e - q) < len) {
        memcpy(buf, ip, n);
        buf[n] = '|';
        memcpy(buf + n + 1, q, (size_t)(e - q));
        buf[n + 1 + (e - q)] = '\0';
    } else {
        snprintf(buf, len, "%s|%u", ip, f->flow.sport);
    }
}

/* True when every recipient domain of the session (there is at least one)
 * is allow-listed. */
static bool recipients_allowed(const struct rules_tuning *t, const struct smtp_facts *f)
{
    size_t seen = 0;
    for (size_t i = 0; i < f->n_tx; i++) {
        for (size_t j = 0; j < f->tx[i].n_rcpt; j++) {
            const char *dom = f->tx[i].rcpt[j].domain;
            if (!dom[0])
                continue;
            if (!rules_tuning_domain_allowed(t, dom))
                return false;
            seen++;
        }
    }
    return seen > 0;
}

/* Whether the tuning suppresses verdict v (counted); a severity override
 * is applied to it. */
static bool tuned_out(struct detector *d, const struct smtp_facts *f, struct verdict *v)
{
    const struct rules_tuning *t = &d->tuning;
    const struct rule_tuning *rt = &t->rule[v->rule];
    if (rt->disabled) {
        d->stats.suppressed_disabled++;
        return true;
    }
    if (t->n_servers && rules_tuning_addr_allowed(t, TUNING_ALLOW_SERVER, &f->flow.server)) {
        d->stats.suppressed_allow_server++;
        return true;
    }
    if (t->n_clients && rules_tuning_addr_allowed(t, TUNING_ALLOW_CLIENT, &f->flow.client)) {
        d->stats.suppressed_allow_client++;
        return true;
    }
    if (t->n_domains && recipients_allowed(t, f)) {
        d->stats.suppressed_allow_domain++;
        return true;
    }
    if (rt->severity)
        v->severity = rt->severity;
    return false;
}

/* Judges the record and emits its alerts; frees it. */
static void record_emit(struct detector *d, struct record *r)
{
    for (size_t i = 0; i < r->n_all; i++) {
        if (r->pols[i].answered)
            continue;
        struct policy_answer a = {POLICY_ST_UNKNOWN, NULL, "policy lookup deadline passed"};
        rule_policy_set(&r->pols[i], &a);
        d->stats.policy_unknown++;
    }
    if (r->dane.host[0] && !r->dane.answered) {
        struct dane_answer a = {DANE_ST_UNKNOWN, NULL, "DANE lookup deadline passed"};
        char host[FACTS_HOST_MAX];
        memcpy(host, r->dane.host, sizeof host);
        rule_dane_set(&r->dane, host, &a);
    }
    struct verdict v[RULES_VERDICTS_MAX];
    size_t n = rules_judge(r->f, &r->pv, r->pols, r->n_pols, v);
    n = rules_judge_dane(r->f, &r->dane, v, n);
    char srv[128];
    server_str(r->f, srv, sizeof srv);
    char pcap[64] = "";
    bool evidence_asked = false;
    for (size_t i = 0; i < n; i++) {
        uint64_t supp = 0;
        if (tuned_out(d, r->f, &v[i]))
            continue;
        if (!ratelimit_allow_rate(d->rl, (int)v[i].rule, srv, r->f->flow.start,
                                  rules_tuning_rate(&d->tuning, (int)v[i].rule), &supp)) {
            d->stats.suppressed++;
            continue;
        }
        if (d->cfg.evidence && !evidence_asked) {
            evidence_asked = true;
            if (!d->cfg.evidence(d->cfg.evidence_arg, r->f, true, pcap, sizeof pcap))
                pcap[0] = '\0';
        }
        struct alert_ctx ctx = {
            d->observer, d->hostname, d->cfg.interface, supp,    pcap[0] ? pcap : NULL,
            &r->dane,    d->ips,      d->n_ips,         r->same, r->same_len};
        jsonw_reset(&d->out);
        if (!alert_write(&d->out, r->f, &v[i], r->pols, r->n_pols, &ctx))
            continue;
        emit_line(d, d->out.buf, d->out.len, &v[i]);
        d->stats.alerts++;
        d->stats.by_rule[v[i].rule]++;
    }
    if (d->cfg.evidence && !evidence_asked)
        d->cfg.evidence(d->cfg.evidence_arg, r->f, false, NULL, 0);
    if (d->cfg.tlsrpt) {
        struct tlsrpt_session ts;
        tlsrpt_session_of_facts(r->f, &ts);
        tlsrpt_add(d->cfg.tlsrpt, &ts, r->pols, r->n_all, &r->dane);
    }
    rules_verdicts_clear(v, n);
    record_release(d, r);
}

static void pop_emit(struct detector *d)
{
    struct record *r = d->ring[d->head];
    d->ring[d->head] = NULL;
    d->head = (d->head + 1) % d->cap;
    d->count--;
    d->head_seq++;
    record_emit(d, r);
}

/* Emits every record at the head that is complete or past its deadline;
 * with force, all of them. */
static void drain(struct detector *d, bool force)
{
    int64_t now = -1;
    while (d->count) {
        struct record *r = d->ring[d->head];
        if (r->waiting && !force) {
            if (now < 0)
                now = mono_ms();
            if (now < r->deadline_ms)
                break;
        }
        pop_emit(d);
    }
}

/* The record a lookup context belongs to, if it is still queued. */
static struct record *ctx_record(struct lookup_ctx *c)
{
    struct detector *d = c->h->d;
    if (!d || c->seq < d->head_seq || c->seq >= d->head_seq + d->count)
        return NULL;
    return d->ring[(d->head + (size_t)(c->seq - d->head_seq)) % d->cap];
}

/* A zeroed lookup context: the spare one, or a new one (NULL: out of
 * memory). Most lookups answer at once (from the cache), so one context
 * serves them all. */
static struct lookup_ctx *ctx_new(struct detector *d)
{
    struct lookup_ctx *c = d->spare_ctx;
    d->spare_ctx = NULL;
    if (c) {
        memset(c, 0, sizeof *c);
        return c;
    }
    return calloc(1, sizeof *c);
}

/* Keeps c (a context of a lookup that answered at once) for the next one. */
static void ctx_spare(struct detector *d, struct lookup_ctx *c)
{
    free(d->spare_ctx);
    d->spare_ctx = c;
}

/* A lookup of record r answers later through c: c joins the handle's
 * contexts (reachable, never leaked, if the detector goes first) and r
 * waits for it. */
static void ctx_link(struct detector *d, struct record *r, struct lookup_ctx *c)
{
    pthread_mutex_lock(&orphan_mu);
    d->h->refs++;
    c->next = d->h->ctxs;
    if (c->next)
        c->next->prev = c;
    d->h->ctxs = c;
    pthread_mutex_unlock(&orphan_mu);
    d->stats.lookups_in_flight++;
    r->waiting++;
}

static void on_dane(void *arg, const char *host, const struct dane_answer *a)
{
    struct lookup_ctx *c = arg;
    struct detector *d = c->h->d;
    if (d)
        d->stats.lookups_in_flight--;
    struct record *r = ctx_record(c);
    if (r && !r->dane.answered) {
        rule_dane_set(&r->dane, host, a);
        r->waiting--;
    }
    struct handle *h = c->h;
    ctx_unlink(c);
    free(c);
    handle_unref(h);
}

/* Starts the DANE lookup of the session's server (record r, not queued
 * yet: its seq is d->next_seq). */
static void dane_start(struct detector *d, struct record *r)
{
    struct dane *dn = d->cfg.policy ? policy_engine_dane(d->cfg.policy) : NULL;
    char host[FACTS_HOST_MAX];
    if (!dn || !rules_dane_host(r->f, host))
        return;
    memcpy(r->dane.host, host, sizeof host);
    struct lookup_ctx *c = ctx_new(d);
    struct dane_answer a;
    if (!c) {
        a = (struct dane_answer){DANE_ST_UNKNOWN, NULL, "out of memory"};
        rule_dane_set(&r->dane, host, &a);
        return;
    }
    c->h = d->h;
    c->seq = d->next_seq;
    c->idx = LOOKUP_DANE;
    if (dane_lookup(dn, host, on_dane, c, &a) == SW_AGAIN) {
        ctx_link(d, r, c);
        return;
    }
    ctx_spare(d, c);
    rule_dane_set(&r->dane, host, &a);
}

static void on_policy(void *arg, const char *domain, const struct policy_answer *a);

/* Asks for the policies of record r (its seq is seq) not asked yet, while
 * fewer than LOOKUPS_PER_SESSION are in flight; the answers that come at
 * once are set here. A lookup that has to wait for its turn is deferred:
 * each answer starts the next one, and the record's deadline runs from the
 * latest start, so no domain is left out for having come late in the
 * RCPT order. */
static void lookups_start(struct detector *d, struct record *r, uint64_t seq)
{
    bool started = false;
    while (r->next_lookup < r->n_all && r->in_flight < LOOKUPS_PER_SESSION) {
        struct rule_policy *p = &r->pols[r->next_lookup];
        size_t idx = r->next_lookup++;
        struct lookup_ctx *c = ctx_new(d);
        if (!c) {
            struct policy_answer a = {POLICY_ST_UNKNOWN, NULL, "out of memory"};
            rule_policy_set(p, &a);
            continue;
        }
        c->h = d->h;
        c->seq = seq;
        c->idx = idx;
        struct policy_answer a;
        memset(&a, 0, sizeof a);
        if (d->cfg.offline)
            policy_engine_set_time(d->cfg.policy, true, r->f->flow.start / SW_USEC_PER_SEC);
        int rc = policy_lookup(d->cfg.policy, p->domain, on_policy, c, &a);
        if (rc == SW_AGAIN) {
            ctx_link(d, r, c);
            r->in_flight++;
            started = true;
            continue;
        }
        ctx_spare(d, c);
        if (rc == SW_OK) {
            rule_policy_set(p, &a);
        } else {
            struct policy_answer u = {POLICY_ST_UNKNOWN, NULL, sw_strerror(rc)};
            rule_policy_set(p, &u);
        }
    }
    if (r->next_lookup < r->n_all && r->in_flight >= LOOKUPS_PER_SESSION)
        r->deferred = true;
    if (started && r->deferred)
        r->deadline_ms = mono_ms() + d->cfg.policy_deadline_ms;
}

static void on_policy(void *arg, const char *domain, const struct policy_answer *a)
{
    struct lookup_ctx *c = arg;
    struct detector *d = c->h->d;
    (void)domain;
    if (d)
        d->stats.lookups_in_flight--;
    if (d && c->seq >= d->head_seq && c->seq < d->head_seq + d->count) {
        struct record *r = d->ring[(d->head + (size_t)(c->seq - d->head_seq)) % d->cap];
        if (r && c->idx < r->n_all && !r->pols[c->idx].answered) {
            rule_policy_set(&r->pols[c->idx], a);
            r->waiting--;
            r->in_flight--;
            if (r->next_lookup < r->n_all)
                lookups_start(d, r, c->seq);
        }
    }
    struct handle *h = c->h;
    ctx_unlink(c);
    free(c);
    handle_unref(h);
}

void detector_session(struct detector *d, struct smtp_facts *f)
{
    detector_session_rendered(d, f, NULL, 0);
}

void detector_session_rendered(struct detector *d, struct smtp_facts *f, const char *same,
                               size_t same_len)
{
    if (!f)
        return;
    d->stats.sessions++;
    struct record *r = d->n_spare ? d->spare[--d->n_spare] : malloc(sizeof *r);
    if (r)
        memset(r, 0, sizeof *r);
    if (!r) {
        d->stats.pending_dropped++;
        facts_free(f);
        return;
    }
    r->f = f;
    r->same = same;
    r->same_len = same_len;
    posture_view_learn(d->posture, f, &r->pv);

    if (d->cfg.policy) {
        size_t max = rules_policy_domains_max(f);
        if (max > d->doms_cap) {
            void *grown = realloc(d->doms, max * sizeof *d->doms);
            if (grown) {
                d->doms = grown;
                d->doms_cap = max;
            }
        }
        char(*doms)[FACTS_HOST_MAX] = max <= d->doms_cap ? d->doms : NULL;
        bool derived = false;
        uint32_t dropped = 0;
        size_t n = doms ? rules_policy_domains(f, doms, max, &derived, &dropped) : 0;
        d->stats.policy_domains_dropped += dropped;
        /* TLS-RPT: the domains that may count this session and that the
         * rules do not judge (the MX host's parents for a TLS session) */
        char(*extra)[FACTS_HOST_MAX] = NULL;
        size_t n_extra = 0;
        if (d->cfg.tlsrpt && (extra = malloc(TLSRPT_RCPT_MAX * sizeof *extra))) {
            struct tlsrpt_session *ts = malloc(sizeof *ts);
            size_t m = 0;
            if (ts) {
                tlsrpt_session_of_facts(f, ts);
                m = tlsrpt_domains(ts, extra, TLSRPT_RCPT_MAX);
                free(ts);
            }
            for (size_t i = 0; i < m; i++) {
                bool have = false;
                for (size_t k = 0; k < n && !have; k++)
                    have = strcmp(doms[k], extra[i]) == 0;
                if (!have)
                    memmove(extra[n_extra++], extra[i], sizeof extra[i]);
            }
        }
        if (n + n_extra && !(r->pols = calloc(n + n_extra, sizeof *r->pols))) {
            d->stats.policy_domains_dropped += n;
            n = n_extra = 0;
        }
        for (size_t i = 0; i < n; i++) {
            memcpy(r->pols[i].domain, doms[i], sizeof r->pols[i].domain);
            r->pols[i].derived = derived;
        }
        for (size_t i = 0; i < n_extra; i++) {
            memcpy(r->pols[n + i].domain, extra[i], sizeof r->pols[n + i].domain);
            r->pols[n + i].derived = true;
        }
        free(extra);
        r->n_pols = n;
        r->n_all = n + n_extra;
        /* offline: the policy in force when the session took place */
        if (d->cfg.offline)
            policy_engine_set_time(d->cfg.policy, true, f->flow.start / SW_USEC_PER_SEC);
        r->deadline_ms = mono_ms() + d->cfg.policy_deadline_ms;
        lookups_start(d, r, d->next_seq);
        if (r->deferred)
            d->stats.policy_lookups_deferred += r->n_all - r->next_lookup;
        dane_start(d, r);
    }
    if (d->count == d->cap) {
        /* the queue bound: the oldest verdict leaves now, its missing
         * policies as "unknown" (counted, never dropped silently) */
        d->stats.pending_dropped++;
        pop_emit(d);
    }
    r->seq = d->next_seq++;
    if (!r->deadline_ms)
        r->deadline_ms = mono_ms() + d->cfg.policy_deadline_ms;
    d->ring[(d->head + d->count) % d->cap] = r;
    d->count++;
    if (r->waiting && d->count > d->stats.pending_peak)
        d->stats.pending_peak = d->count;
    posture_counts(d);
    drain(d, false);
    /* still queued (its policies asked): the record's text will be gone */
    if (d->count && d->ring[(d->head + d->count - 1) % d->cap] == r)
        r->same = NULL;
}

void detector_run(struct detector *d, int timeout_ms)
{
    if (d->cfg.policy) {
        int t = timeout_ms;
        if (d->count && d->ring[d->head]->waiting) {
            int64_t left = d->ring[d->head]->deadline_ms - mono_ms();
            if (left < t)
                t = left < 0 ? 0 : (int)left;
        }
        policy_engine_run(d->cfg.policy, t < 0 ? 0 : t);
    }
    drain(d, false);
    if (d->cfg.tlsrpt && !d->cfg.offline)
        tlsrpt_tick(d->cfg.tlsrpt, (int64_t)time(NULL));
}

void detector_finish(struct detector *d)
{
    while (d->count) {
        struct record *r = d->ring[d->head];
        if (r->waiting && d->cfg.policy) {
            int64_t left = r->deadline_ms - mono_ms();
            if (left > 0) {
                policy_engine_run(d->cfg.policy, left > 100 ? 100 : (int)left);
                drain(d, false);
                continue;
            }
        }
        drain(d, false);
        if (d->count && (!d->cfg.policy || mono_ms() >= d->ring[d->head]->deadline_ms))
            pop_emit(d);
    }
    if (d->cfg.state_file && !d->saved) {
        char err[512];
        if (posture_save(d->posture, d->cfg.state_file, err, sizeof err) != SW_OK)
            alerts_log(LOG_ERR, "%s", err);
        d->saved = true;
    }
}

static void posture_counts(struct detector *d)
{
    const struct posture_stats *ps = posture_stats(d->posture);
    d->stats.posture_entries = ps->entries;
    d->stats.posture_evicted = ps->evicted;
    d->stats.posture_expired = ps->expired;
    d->stats.posture_redis_errors = ps->redis_errors;
}

bool detector_set_tuning(struct detector *d, const struct rules_tuning *t)
{
    struct rules_tuning copy;
    if (!rules_tuning_copy(&copy, t))
        return false;
    rules_tuning_free(&d->tuning);
    d->tuning = copy;
    return true;
}

const struct detector_stats *detector_stats(const struct detector *d)
{
    return &d->stats;
}

void detector_stats_all(const struct detector *d, struct detector_stats *ds,
                        struct policy_stats *ps, struct tlsrpt_stats *ts)
{
    if (ds)
        *ds = d->stats;
    if (ps) {
        memset(ps, 0, sizeof(*ps));
        if (d->cfg.policy)
            *ps = *policy_engine_stats(d->cfg.policy);
    }
    if (ts) {
        memset(ts, 0, sizeof(*ts));
        if (d->cfg.tlsrpt)
            *ts = *tlsrpt_stats(d->cfg.tlsrpt);
    }
}

void detector_free(struct detector *d)
{
    if (!d)
        return;
    while (d->ring && d->count) {
        record_free(d->ring[d->head]);
        d->ring[d->head] = NULL;
        d->head = (d->head + 1) % d->cap;
        d->count--;
    }
    while (d->n_spare)
        free(d->spare[--d->n_spare]);
    free(d->spare_ctx);
    free(d->ring);
    jsonw_free(&d->out);
    free(d->doms);
    posture_free(d->posture);
    ratelimit_free(d->rl);
    rules_tuning_free(&d->tuning);
    if (d->h) {
        pthread_mutex_lock(&orphan_mu);
        d->h->d = NULL;
        if (d->h->refs > 1) { /* callbacks still owed: keep it reachable */
            d->h->onext = orphans;
            if (orphans)
                orphans->oprev = d->h;
            orphans = d->h;
        }
        pthread_mutex_unlock(&orphan_mu);
        handle_unref(d->h);
    }
    free(d);
}
