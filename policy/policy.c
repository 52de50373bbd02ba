/* SPDX-License-Identifier: Apache-2.0 */
/* policy.c: the MTA-STS policy engine: discovery, fetch, cache, refresh, sharing.
 * RFC 8461 §3.1 (TXT discovery), §3.3 (fetch), §5.1 (caching and refresh),
 * §7 (security: pinned, public policy hosts only). */
#include "policy/policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>

#include "decode/sw.h"
#include "policy/dane.h"
#include "policy/dns.h"
#include "policy/fetch.h"
#include "policy/lru.h"
#include "policy/policy_int.h"
#include "policy/rcache.h"
#include "policy/snapshot.h"

#define POLICY_MAX_WAITERS 1024 /* per domain */
#define POLICY_EVICT_TRIES 16   /* busy LRU tails skipped before "cache full" */
#define POLICY_POLL_MS     200  /* Redis poll while another sensor fetches */
#define POLICY_TXT_PREFIX  "_mta-sts."
#define POLICY_DETAIL_MAX  640

static policy_log_fn g_log;

void policy_set_log(policy_log_fn fn)
{
    g_log = fn;
}

void policy_log(int prio, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (g_log)
        g_log(prio, line);
    else
        fprintf(stderr, "stripwatch: %s\n", line);
}

const char *policy_source_str(enum policy_source s)
{
    switch (s) {
    case POLICY_SRC_NONE:
        return "none";
    case POLICY_SRC_HTTPS:
        return "https";
    case POLICY_SRC_REDIS:
        return "redis";
    case POLICY_SRC_FILE:
        return "file";
    case POLICY_SRC_CACHE:
        return "cache";
    }
    return "none";
}

const char *policy_status_str(enum policy_status s)
{
    switch (s) {
    case POLICY_ST_VALID:
        return "valid";
    case POLICY_ST_NONE:
        return "none";
    case POLICY_ST_PENDING:
        return "pending";
    case POLICY_ST_UNKNOWN:
        return "unknown";
    case POLICY_ST_EXPIRED:
        return "expired";
    }
    return "unknown";
}

void policy_cfg_defaults(struct policy_cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->fetch = true;
    c->cache_max = 100000;
    c->neg_cache_max = 100000;
    c->max_pending = 10000;
    c->dns_max_in_flight = 256;
    c->dns_dead_after = 8;
    c->dns_backoff_min_s = 5;
    c->dns_backoff_max_s = 300;
    c->max_concurrent = 32;
    c->max_per_second = 20;
    c->negative_ttl = 300;
    c->retry_after_failure = 300;
    c->connect_timeout_ms = 5000;
    c->total_timeout_ms = 15000;
    c->https_port = 443;
    c->refresh_interval = 3600;
    c->dns_timeout_ms = 4000;
    c->lock_wait_ms = 10000;
    c->max_queued = 4096;
}

static int64_t wall_s(void)
{
    return (int64_t)time(NULL);
}

/* The time expiry is judged at: capture time offline, else the wall clock. */
static int64_t judge_now(const struct policy_engine *e)
{
    return e->judge_capture ? e->judge_t : wall_s();
}

void policy_engine_set_time(struct policy_engine *e, bool capture, int64_t t)
{
    e->judge_capture = capture;
    e->judge_t = t;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- entries ---- */

static void entry_free(struct policy_entry *pe)
{
    if (!pe)
        return;
    mtasts_policy_clear(&pe->policy);
    free(pe); /* domain and text live in the same allocation */
}

/* Parses text again (every source is judged by the same parser). One
 * allocation holds the entry, its domain and its text, each sized to fit. */
struct policy_entry *policy_entry_new(const char *domain, const char *id, const char *text,
                                      size_t len, int64_t fetched_at, enum policy_source src,
                                      struct mtasts_error *perr)
{
    size_t dl = strlen(domain);
    struct policy_entry *pe = calloc(1, sizeof(*pe) + dl + 1 + len + 1);
    if (!pe)
        return NULL;
    pe->domain = (char *)(pe + 1);
    memcpy(pe->domain, domain, dl + 1);
    snprintf(pe->id, sizeof(pe->id), "%s", id);
    pe->text = pe->domain + dl + 1;
    memcpy(pe->text, text, len);
    pe->text[len] = 0;
    struct mtasts_error ebuf;
    if (mtasts_policy_parse(text, len, &pe->policy, perr ? perr : &ebuf) != SW_OK) {
        free(pe);
        return NULL;
    }
    pe->fetched_at = fetched_at;
    pe->expires_at = fetched_at + (int64_t)pe->policy.max_age;
    pe->source = src;
    return pe;
}

/* Not expired at now (the judge time: capture time offline). */
static bool entry_usable(const struct policy_entry *pe, int64_t now)
{
    return pe && now < pe->expires_at;
}

/* ---- domain records and queues ---- */

static void q_remove(struct dom *d)
{
    if (!d->q_len)
        return;
    if (d->q_prev)
        d->q_prev->q_next = d->q_next;
    else
        *d->q_head = d->q_next;
    if (d->q_next)
        d->q_next->q_prev = d->q_prev;
    else
        *d->q_tail = d->q_prev;
    (*d->q_len)--;
    d->q_prev = d->q_next = NULL;
    d->q_len = NULL;
    d->q_head = d->q_tail = NULL;
}

static void q_push(struct dom *d, struct dom **head, struct dom **tail, int *len)
{
    q_remove(d);
    d->q_prev = *tail;
    d->q_next = NULL;
    if (*tail)
        (*tail)->q_next = d;
    else
        *head = d;
    *tail = d;
    (*len)++;
    d->q_len = len;
    d->q_head = head;
    d->q_tail = tail;
}

static void dom_free(void *v)
{
    struct dom *d = v;
    if (!d)
        return;
    struct policy_engine *e = d->e;
    q_remove(d);
    if (d->pending)
        e->n_pending--;
    if (d->dns && e->dns)
        pdns_cancel(e->dns, d->dns);
    if (d->fetch)
        pfetch_cancel(e->fetch, d->fetch);
    if (d->phase == PH_DNS_ADDR || d->phase == PH_FETCH)
        e->fetch_slots--;
    if (d->have_lock && e->rc)
        rcache_unlock(e->rc, d->name);
    while (d->waiters) {
        struct waiter *w = d->waiters;
        d->waiters = w->next;
        free(w);
    }
    entry_free(d->entry);
    free(d->neg_detail);
    free(d->addrs);
    free(d);
}

static struct dom *dom_new(struct policy_engine *e, const char *name)
{
    size_t nl = strlen(name);
    struct dom *d = calloc(1, sizeof(*d) + nl + 1);
    if (!d)
        return NULL;
    d->e = e;
    memcpy(d->name, name, nl + 1);
    d->wtail = &d->waiters;
    return d;
}

/* A lookup is under way for d. */
static bool dom_in_flight(const struct dom *d)
{
    return d->phase != PH_IDLE;
}

/* Not evictable: in flight, or its callbacks are running. */
static bool dom_busy(const struct dom *d)
{
    return d->phase != PH_IDLE || d->firing;
}

/* Makes room in l for one more record by evicting idle least-recently-used
 * ones (busy ones are moved to the front and skipped, a bounded number of
 * times); false when none could be evicted. */
static bool make_room(struct policy_engine *e, struct lru *l)
{
    for (int i = 0; lru_count(l) >= lru_capacity(l); i++) {
        const char *k = lru_oldest_key(l);
        struct dom *old = k ? lru_peek(l, k) : NULL;
        if (!old || i >= POLICY_EVICT_TRIES) {
            e->stats.cache_full++;
            return false;
        }
        if (dom_busy(old)) {
            lru_get(l, k); /* to the front */
            continue;
        }
        lru_evict_oldest(l);
        e->stats.evicted++;
        if (l == e->neg)
            e->stats.neg_evicted++;
    }
    return true;
}

/* Inserts a record for name into the positive (file policies) or negative
 * (lookups) map. NULL when no room could be made or memory ran out. */
struct dom *policy_dom_insert(struct policy_engine *e, const char *name, bool positive)
{
    struct lru *l = positive ? e->pos : e->neg;
    if (!make_room(e, l))
        return NULL;
    struct dom *d = dom_new(e, name);
    if (!d)
        return NULL;
    d->positive = positive;
    if (lru_put(l, name, d) != SW_OK) {
        free(d);
        return NULL;
    }
    return d;
}

/* The record of name (marked most recently used when touch), or NULL. */
struct dom *policy_dom_find(struct policy_engine *e, const char *name, bool touch)
{
    struct dom *d = touch ? lru_get(e->pos, name) : lru_peek(e->pos, name);
    if (!d)
        d = touch ? lru_get(e->neg, name) : lru_peek(e->neg, name);
    return d;
}

void policy_dom_forget(struct policy_engine *e, struct dom *d)
{
    if (dom_in_flight(d)) {
        entry_free(d->entry);
        d->entry = NULL;
        d->expired_warned = false;
        d->refresh_at = 0;
        return;
    }
    char name[256];
    snprintf(name, sizeof(name), "%s", d->name);
    lru_remove(d->positive ? e->pos : e->neg, name);
}

/* d just got a policy: it moves to the positive map, where only other
 * policies can push it out. When that map has no evictable record it stays
 * where it is (counted in cache_full). */
static void dom_promote(struct policy_engine *e, struct dom *d)
{
    if (d->positive || !make_room(e, e->pos))
        return;
    if (lru_take(e->neg, d->name) != d)
        return;
    if (lru_put(e->pos, d->name, d) != SW_OK) {
        lru_put(e->neg, d->name, d); /* the slot it had is still free */
        return;
    }
    d->positive = true;
}

/* Lowercases, strips one trailing dot, checks the RFC 5321 domain syntax. */
static bool normalize(const char *in, char out[256])
{
    size_t n = strlen(in);
    if (n && in[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    out[n] = 0;
    return mtasts_domain_is_valid(out, n, NULL, 0);
}

/* ---- answers ---- */

static void fill_answer(const struct policy_engine *e, const struct dom *d, int64_t now,
                        struct policy_answer *a)
{
    if (d->entry && entry_usable(d->entry, now)) {
        a->status = POLICY_ST_VALID;
        a->entry = d->entry;
        a->detail = "";
    } else if (d->entry) {
        /* RFC 8461 §5.1: judged with until a refresh succeeds */
        a->status = POLICY_ST_EXPIRED;
        a->entry = d->entry;
        a->detail = !e->cfg.fetch   ? "policy expired; no refresh offline"
                    : d->neg_detail ? d->neg_detail
                                    : "policy expired; refresh under way";
    } else {
        a->status = d->neg_status == POLICY_ST_NONE ? POLICY_ST_NONE : POLICY_ST_UNKNOWN;
        a->entry = NULL;
        a->detail = d->neg_detail ? d->neg_detail : "no policy";
    }
}

/* Ends the lookup in flight: every waiter gets the current answer. */
static void dom_finish(struct policy_engine *e, struct dom *d)
{
    q_remove(d);
    if (d->have_lock && e->rc)
        rcache_unlock(e->rc, d->name);
    d->have_lock = false;
    d->phase = PH_IDLE;
    if (d->pending) {
        d->pending = false;
        e->n_pending--;
    }
    d->refresh = false;
    struct waiter *w = d->waiters;
    d->waiters = NULL;
    d->wtail = &d->waiters;
    d->n_waiters = 0;
    struct policy_answer a;
    fill_answer(e, d, judge_now(e), &a);
    char detail[POLICY_DETAIL_MAX];
    snprintf(detail, sizeof(detail), "%s", a.detail);
    a.detail = detail;
    /* A callback may look domains up (even this one): d is marked busy so
     * that no eviction frees it or its entry while the callbacks run. */
    d->firing++;
    while (w) {
        struct waiter *next = w->next;
        if (a.status == POLICY_ST_EXPIRED)
            e->stats.expired++;
        w->cb(w->arg, d->name, &a);
        e->fired++;
        free(w);
        w = next;
    }
    d->firing--;
}

static void set_neg(struct dom *d, enum policy_status st, int64_t until, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_neg(struct dom *d, enum policy_status st, int64_t until, const char *fmt, ...)
{
    d->neg_status = st;
    d->neg_until = until;
    char buf[POLICY_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    char *dup = strdup(buf);
    if (dup) { /* on failure the previous detail stays */
        free(d->neg_detail);
        d->neg_detail = dup;
    }
}

void policy_install(struct policy_engine *e, struct dom *d, struct policy_entry *pe)
{
    dom_promote(e, d);
    entry_free(d->entry);
    d->entry = pe;
    d->neg_until = 0;
    free(d->neg_detail);
    d->neg_detail = NULL;
    d->failed_id[0] = 0;
    d->expired_warned = false;
    /* next TXT check: the interval, or when a quarter of max_age is left */
    int64_t due = pe->expires_at - (int64_t)(pe->policy.max_age / 4);
    d->refresh_at = wall_s() + e->cfg.refresh_interval;
    if (due < d->refresh_at)
        d->refresh_at = due;
}

/* ---- steps ---- */

static void release_slot(struct policy_engine *e, struct dom *d)
{
    if (d->phase == PH_DNS_ADDR || d->phase == PH_FETCH)
        e->fetch_slots--;
}

static void step_txt(struct policy_engine *e, struct dom *d);
static void step_dns(struct policy_engine *e, struct dom *d);
static void step_after_txt(struct policy_engine *e, struct dom *d);

/* Says once per domain (and expiry) that its expired policy cannot be
 * refreshed and is still judged with: why is the failed refresh, NULL
 * offline (no refresh attempted). */
static void warn_expired(struct policy_engine *e, struct dom *d, const char *why)
{
    if (d->expired_warned || !d->entry)
        return;
    d->expired_warned = true;
    e->stats.expired_domains++;
    const struct policy_entry *pe = d->entry;
    char exp[32], got[32];
    snapshot_time_format(pe->expires_at, exp);
    snapshot_time_format(pe->fetched_at, got);
    if (why)
        policy_log(LOG_WARNING,
                   "policy %s: expired on %s (fetched %s, max_age %u); refresh failed: %s; judging "
                   "with it until a refresh succeeds (RFC 8461 §5.1)",
                   d->name, exp, got, (unsigned)pe->policy.max_age, why);
    else
        policy_log(LOG_WARNING,
                   "policy %s: expired on %s (fetched %s, max_age %u), before the capture time; no "
                   "refresh offline (--fetch-policies refreshes): judging with it (RFC 8461 §5.1)",
                   d->name, exp, got, (unsigned)pe->policy.max_age);
}

/* The lookup failed: the cached policy (if any) stays in force; an expired
 * one stays judged with (and is reported) unless the domain was found to
 * publish no policy, which retires it. */
static void fail(struct policy_engine *e, struct dom *d, enum policy_status st, int64_t ttl,
                 const char *detail)
{
    int64_t now = wall_s();
    set_neg(d, st, now + ttl, "%s", detail);
    if (d->entry && !entry_usable(d->entry, judge_now(e))) {
        if (st == POLICY_ST_NONE) {
            entry_free(d->entry);
            d->entry = NULL;
        } else {
            warn_expired(e, d, detail);
        }
    }
    if (d->entry)
        d->refresh_at = now + (ttl < e->cfg.refresh_interval ? ttl : e->cfg.refresh_interval);
    dom_finish(e, d);
}

/* Reads the shared cache: SW_OK when an entry for id (any id when NULL),
 * fetched after min_fetched_at, was installed. */
static int try_redis(struct policy_engine *e, struct dom *d, const char *want_id,
                     int64_t min_fetched_at)
{
    char id[33], err[400];
    char *text = NULL;
    int64_t at = 0;
    err[0] = 0;
    int r = rcache_get(e->rc, d->name, id, &text, &at, err, sizeof(err));
    if (r == SW_EIO) {
        e->stats.redis_errors++;
        return r;
    }
    if (r != SW_OK) {
        if (r == SW_EPROTO)
            policy_log(LOG_WARNING, "%s", err);
        return r;
    }
    int ret = SW_AGAIN;
    if ((!want_id || !strcmp(want_id, id)) && at > min_fetched_at) {
        struct mtasts_error pe;
        struct policy_entry *ent =
            policy_entry_new(d->name, id, text, strlen(text), at, POLICY_SRC_REDIS, &pe);
        if (ent && entry_usable(ent, judge_now(e))) {
            policy_install(e, d, ent);
            ret = SW_OK;
        } else {
            if (!ent) {
                char why[200];
                policy_log(LOG_WARNING, "redis key " RCACHE_KEY_PREFIX "%s: %s", d->name,
                           mtasts_error_format(&pe, why, sizeof(why)));
            }
            entry_free(ent);
        }
    }
    free(text);
    return ret;
}

/* First step, from policy_engine_run() (so that callbacks never fire inside
 * policy_lookup()): the shared cache unless refreshing, then DNS. */
static void step_start(struct policy_engine *e, struct dom *d)
{
    q_remove(d);
    if (!e->rc || d->refresh) {
        step_dns(e, d);
        return;
    }
    if (try_redis(e, d, NULL, 0) == SW_OK) {
        dom_finish(e, d);
        return;
    }
    if (!e->cfg.fetch) {
        fail(e, d, POLICY_ST_UNKNOWN, e->cfg.negative_ttl, "offline: no policy in file or cache");
        return;
    }
    step_dns(e, d);
}

/* ---- the resolver's health ---- */

/* An answer came (any rcode): the resolver is alive. */
static void dns_answered(struct policy_engine *e)
{
    e->dns_timeouts_in_row = 0;
    e->dns_backoff_s = 0;
    if (e->stats.dns_down) {
        e->stats.dns_down = 0;
        e->dns_down_until_ms = 0;
        policy_log(LOG_NOTICE, "dns %s: answering again",
                   e->cfg.dns_server ? e->cfg.dns_server : "/etc/resolv.conf");
    }
}

/* True while the resolver is considered down (lookups skip DNS). Past the
 * back-off the next queries are sent again; one more timeout in a row puts
 * it down again for twice as long. */
static bool dns_is_down(struct policy_engine *e, int64_t now_ms)
{
    return e->dns_down_until_ms && now_ms < e->dns_down_until_ms;
}

static void dns_fail_queued(struct policy_engine *e);

/* A query timed out. */
static void dns_timed_out(struct policy_engine *e, int64_t now_ms)
{
    if (++e->dns_timeouts_in_row < e->cfg.dns_dead_after || dns_is_down(e, now_ms))
        return;
    e->dns_backoff_s = e->dns_backoff_s ? e->dns_backoff_s * 2 : e->cfg.dns_backoff_min_s;
    if (e->dns_backoff_s > e->cfg.dns_backoff_max_s)
        e->dns_backoff_s = e->cfg.dns_backoff_max_s;
    e->dns_down_until_ms = now_ms + e->dns_backoff_s * 1000;
    e->stats.dns_resolver_down++;
    e->stats.dns_down = 1;
    policy_log(LOG_WARNING,
               "dns %s: %u queries in a row timed out; resolver considered down, "
               "lookups answered \"unknown\" without a query for %lld s",
               e->cfg.dns_server ? e->cfg.dns_server : "/etc/resolv.conf", e->dns_timeouts_in_row,
               (long long)e->dns_backoff_s);
    e->dns_timeouts_in_row = e->cfg.dns_dead_after - 1; /* one more after the back-off */
    dns_fail_queued(e);
}

/* The resolver is down: d is answered UNKNOWN until it is retried. */
static void dns_skip(struct policy_engine *e, struct dom *d, int64_t now_ms)
{
    e->stats.dns_skipped++;
    int64_t left = (e->dns_down_until_ms - now_ms + 999) / 1000;
    char detail[POLICY_DETAIL_MAX];
    snprintf(detail, sizeof(detail),
             "DNS resolver %s not answering (%u queries in a row timed out); retried in %lld s",
             e->cfg.dns_server ? e->cfg.dns_server : "/etc/resolv.conf", e->cfg.dns_dead_after,
             (long long)left);
    release_slot(e, d); /* PH_DNS_ADDR holds a fetch slot */
    d->phase = PH_IDLE;
    fail(e, d, POLICY_ST_UNKNOWN, left > 0 ? left : 1, detail);
}

/* Lookups waiting for a DNS slot or in flight when the resolver went down
 * are answered now. */
static void dns_fail_queued(struct policy_engine *e)
{
    int64_t now_ms = mono_ms();
    while (e->dnsq_h)
        dns_skip(e, e->dnsq_h, now_ms);
    while (e->dns_h) {
        struct dom *d = e->dns_h;
        q_remove(d);
        pdns_cancel(e->dns, d->dns);
        d->dns = NULL;
        dns_skip(e, d, now_ms);
    }
}

/* The TXT query now, or a place in the DNS queue (at most max_pending
 * lookups are under way, so the queue is bounded too). */
static void step_dns(struct policy_engine *e, struct dom *d)
{
    int64_t now_ms = mono_ms();
    if (dns_is_down(e, now_ms)) {
        dns_skip(e, d, now_ms);
        return;
    }
    if (pdns_in_flight(e->dns) >= e->cfg.dns_max_in_flight || e->dnsq_h) {
        d->phase = PH_DNS_WAIT;
        q_push(d, &e->dnsq_h, &e->dnsq_t, &e->dnsq_n);
        e->stats.dns_queued = (uint64_t)e->dnsq_n;
        if (e->stats.dns_queued > e->stats.dns_queued_peak)
            e->stats.dns_queued_peak = e->stats.dns_queued;
        return;
    }
    step_txt(e, d);
}

static void on_txt(void *arg, const struct pdns_result *r)
{
    struct dom *d = arg;
    struct policy_engine *e = d->e;
    d->dns = NULL;
    q_remove(d);
    dns_answered(e);
    char detail[640];
    if (r->err || (r->rcode != 0 && r->rcode != 3)) {
        e->stats.dns_errors++;
        if (r->err)
            snprintf(detail, sizeof(detail), "DNS TXT " POLICY_TXT_PREFIX "%s: %s", d->name,
                     r->errstr);
        else
            snprintf(detail, sizeof(detail), "DNS TXT " POLICY_TXT_PREFIX "%s: rcode %d", d->name,
                     r->rcode);
        fail(e, d, POLICY_ST_UNKNOWN, e->cfg.negative_ttl, detail);
        return;
    }
    size_t n_sts = 0, n_bad = 0;
    char id[33] = "", bad[200] = "";
    for (size_t i = 0; i < r->n_txt; i++) {
        char tid[33];
        struct mtasts_error te;
        int pr = mtasts_txt_parse(r->txt[i], r->txt_len[i], tid, &te);
        if (pr == SW_AGAIN)
            continue;
        n_sts++;
        if (pr == SW_OK) {
            memcpy(id, tid, sizeof(id));
        } else {
            n_bad++;
            snprintf(bad, sizeof(bad), "%s", te.reason);
        }
    }
    if (n_sts == 0) {
        e->stats.dns_no_record++;
        e->stats.negative_cached++;
        snprintf(detail, sizeof(detail), "no MTA-STS TXT record at " POLICY_TXT_PREFIX "%s",
                 d->name);
        fail(e, d, POLICY_ST_NONE, e->cfg.negative_ttl, detail);
        return;
    }
    if (n_sts > 1 || n_bad) {
        e->stats.dns_invalid++;
        e->stats.negative_cached++;
        if (n_sts > 1)
            snprintf(detail, sizeof(detail),
                     "%zu STSv1 TXT records at " POLICY_TXT_PREFIX "%s (exactly one required)",
                     n_sts, d->name);
        else
            snprintf(detail, sizeof(detail),
                     "invalid TXT record at " POLICY_TXT_PREFIX "%s: %.160s", d->name, bad);
        fail(e, d, POLICY_ST_NONE, e->cfg.negative_ttl, detail);
        return;
    }
    memcpy(d->txt_id, id, sizeof(d->txt_id));
    step_after_txt(e, d);
}

static void step_txt(struct policy_engine *e, struct dom *d)
{
    char qname[300], err[300];
    snprintf(qname, sizeof(qname), POLICY_TXT_PREFIX "%s", d->name);
    e->stats.dns_queries++;
    d->phase = PH_DNS_TXT;
    d->deadline_ms = mono_ms() + e->cfg.dns_timeout_ms;
    d->dns = pdns_query_txt(e->dns, qname, on_txt, d, err, sizeof(err));
    if (d->dns)
        q_push(d, &e->dns_h, &e->dns_t, &e->dns_n);
    if (!d->dns) {
        e->stats.dns_errors++;
        fail(e, d, POLICY_ST_UNKNOWN, e->cfg.negative_ttl, err);
    }
}

static void enqueue_fetch(struct policy_engine *e, struct dom *d)
{
    if ((size_t)e->fetch_n >= e->cfg.max_queued) {
        e->stats.fetch_throttled++;
        char detail[640];
        snprintf(detail, sizeof(detail), "fetch queue full (%zu waiting)", e->cfg.max_queued);
        fail(e, d, POLICY_ST_UNKNOWN, 1, detail);
        return;
    }
    if (e->fetch_h || e->fetch_slots >= e->cfg.max_concurrent || e->tokens < 1.0)
        e->stats.fetch_throttled++; /* waits for a slot or the rate */
    d->phase = PH_QUEUED;
    q_push(d, &e->fetch_h, &e->fetch_t, &e->fetch_n);
}

/* The TXT id is known: up to date, suppressed after a failure, shared by
 * another sensor, or to be fetched. */
static void step_after_txt(struct policy_engine *e, struct dom *d)
{
    int64_t now = wall_s();
    if (d->entry && !strcmp(d->entry->id, d->txt_id)) {
        uint32_t left_min = d->entry->policy.max_age / 4;
        if (d->entry->expires_at - now > (int64_t)left_min ||
            (d->entry->source == POLICY_SRC_FILE && !e->cfg.fetch)) {
            d->refresh_at = now + e->cfg.refresh_interval;
            dom_finish(e, d);
            return;
        }
        /* same id but close to expiry: fetch again (proactive refresh) */
    }
    if (d->failed_id[0] && !strcmp(d->failed_id, d->txt_id) && now < d->failed_until) {
        d->neg_until = d->failed_until;
        if (d->entry)
            d->refresh_at = d->failed_until;
        dom_finish(e, d);
        return;
    }
    if (e->rc) {
        /* another sensor may have fetched it (newer than ours, if any) */
        if (try_redis(e, d, d->txt_id, d->entry ? d->entry->fetched_at : 0) == SW_OK) {
            dom_finish(e, d);
            return;
        }
        int lr = rcache_lock(e->rc, d->name);
        if (lr == SW_AGAIN) {
            e->stats.lock_waits++;
            d->phase = PH_LOCK_WAIT;
            d->deadline_ms = mono_ms() + e->cfg.lock_wait_ms;
            d->next_poll_ms = mono_ms() + POLICY_POLL_MS;
            q_push(d, &e->wait_h, &e->wait_t, &e->wait_n);
            return;
        }
        if (lr == SW_OK)
            d->have_lock = true;
        else
            e->stats.redis_errors++;
    }
    enqueue_fetch(e, d);
}

static void step_lock_poll(struct policy_engine *e, struct dom *d, int64_t now_ms)
{
    if (now_ms < d->next_poll_ms)
        return;
    d->next_poll_ms = now_ms + POLICY_POLL_MS;
    if (try_redis(e, d, d->txt_id, d->entry ? d->entry->fetched_at : 0) == SW_OK) {
        dom_finish(e, d);
        return;
    }
    int lr = rcache_lock(e->rc, d->name);
    if (lr == SW_OK || lr == SW_EIO) { /* the holder is gone, or Redis is */
        q_remove(d);
        d->have_lock = lr == SW_OK;
        enqueue_fetch(e, d);
        return;
    }
    if (now_ms >= d->deadline_ms) {
        char detail[640];
        snprintf(detail, sizeof(detail),
                 "another sensor holds the fetch lock for %s; no policy appeared in Redis "
                 "within %ld ms",
                 d->name, e->cfg.lock_wait_ms);
        fail(e, d, POLICY_ST_UNKNOWN, e->cfg.negative_ttl, detail);
    }
}

static void fetch_failed(struct policy_engine *e, struct dom *d, enum policy_status st,
                         const char *detail)
{
    int64_t now = wall_s();
    snprintf(d->failed_id, sizeof(d->failed_id), "%s", d->txt_id);
    d->failed_until = now + e->cfg.retry_after_failure;
    fail(e, d, st, e->cfg.retry_after_failure, detail);
}

static bool fetch_next_addr(struct policy_engine *e, struct dom *d, char *err, size_t errlen);

static void on_fetch(void *arg, const struct pfetch_result *r)
{
    struct dom *d = arg;
    struct policy_engine *e = d->e;
    d->fetch = NULL;
    char err[300];
    if (r->outcome == PFETCH_CONNECT && fetch_next_addr(e, d, err, sizeof(err)))
        return; /* the next address of the policy host */
    free(d->addrs);
    d->addrs = NULL;
    release_slot(e, d);
    d->phase = PH_IDLE;
    char detail[640];
    switch (r->outcome) {
    case PFETCH_OK: {
        struct mtasts_error pe;
        struct policy_entry *ent = policy_entry_new(d->name, d->txt_id, r->body, r->body_len,
                                                    wall_s(), POLICY_SRC_HTTPS, &pe);
        if (!ent) {
            char why[200];
            e->stats.fetch_parse_error++;
            snprintf(detail, sizeof(detail), "policy at %s invalid: %s", r->url,
                     mtasts_error_format(&pe, why, sizeof(why)));
            fetch_failed(e, d, POLICY_ST_NONE, detail);
            return;
        }
        e->stats.fetch_ok++;
        if (e->rc && ent->policy.max_age > 0 &&
            rcache_put(e->rc, d->name, ent->id, ent->text, ent->fetched_at,
                       (int64_t)ent->policy.max_age) != SW_OK)
            e->stats.redis_errors++;
        policy_install(e, d, ent);
        dom_finish(e, d);
        return;
    }
    case PFETCH_HTTP_ERROR:
    case PFETCH_CONNECT:
    case PFETCH_ERROR:
        e->stats.fetch_http_error++;
        break;
    case PFETCH_REDIRECT:
        e->stats.fetch_redirect++;
        break;
    case PFETCH_BAD_TYPE:
        e->stats.fetch_bad_type++;
        break;
    case PFETCH_TOO_BIG:
        e->stats.fetch_too_big++;
        break;
    case PFETCH_TLS_ERROR:
        e->stats.fetch_tls_error++;
        break;
    case PFETCH_TIMEOUT:
        e->stats.fetch_timeout++;
        break;
    }
    snprintf(detail, sizeof(detail), "fetch %.280s: %.300s", r->url, r->detail);
    fetch_failed(e, d, POLICY_ST_UNKNOWN, detail);
}

static void on_addr(void *arg, const struct pdns_result *r)
{
    struct dom *d = arg;
    struct policy_engine *e = d->e;
    d->dns = NULL;
    q_remove(d);
    dns_answered(e);
    char detail[640], err[300];
    if (r->err || r->n_addr == 0) {
        release_slot(e, d);
        d->phase = PH_IDLE;
        e->stats.dns_errors++;
        if (r->err)
            snprintf(detail, sizeof(detail), "policy host mta-sts.%s: DNS: %s", d->name, r->errstr);
        else
            snprintf(detail, sizeof(detail), "policy host mta-sts.%s: no A/AAAA record", d->name);
        fetch_failed(e, d, POLICY_ST_UNKNOWN, detail);
        return;
    }
    struct addr_list *al = calloc(1, sizeof(*al));
    const char *why = NULL;
    for (size_t i = 0; al && i < r->n_addr; i++) {
        const char *w = NULL;
        if (e->cfg.allow_private_hosts || !pfetch_addr_is_private(r->addr[i], &w)) {
            memcpy(al->addr[al->n], r->addr[i], sizeof(al->addr[0]));
            al->family[al->n++] = r->family[i];
        } else if (!why) {
            why = w;
        }
    }
    if (!al || al->n == 0) {
        free(al);
        release_slot(e, d);
        d->phase = PH_IDLE;
        if (!al) {
            fetch_failed(e, d, POLICY_ST_UNKNOWN, "out of memory");
            return;
        }
        e->stats.fetch_private_addr++;
        snprintf(detail, sizeof(detail),
                 "policy host mta-sts.%s resolves to %s, a %s address: refused", d->name,
                 r->addr[0], why ? why : "non-public");
        fetch_failed(e, d, POLICY_ST_UNKNOWN, detail);
        return;
    }
    free(d->addrs);
    d->addrs = al;
    e->stats.fetches++;
    if (!fetch_next_addr(e, d, err, sizeof(err))) {
        free(d->addrs);
        d->addrs = NULL;
        release_slot(e, d);
        d->phase = PH_IDLE;
        e->stats.fetch_http_error++;
        fetch_failed(e, d, POLICY_ST_UNKNOWN, err);
    }
}

/* Starts the transfer on the next checked address; false when none is left
 * or it cannot start (err filled). */
static bool fetch_next_addr(struct policy_engine *e, struct dom *d, char *err, size_t errlen)
{
    struct addr_list *al = d->addrs;
    struct pfetch_opts o = {
        .ca_file = e->cfg.ca_file,
        .port = e->cfg.https_port,
        .connect_timeout_ms = e->cfg.connect_timeout_ms,
        .total_timeout_ms = e->cfg.total_timeout_ms,
        .low_speed_bytes = 64,
        .low_speed_secs = 10,
    };
    snprintf(err, errlen, "no address left");
    while (al && al->next < al->n) {
        size_t i = al->next++;
        d->phase = PH_FETCH;
        d->fetch = pfetch_start(e->fetch, d->name, al->addr[i], al->family[i], &o, on_fetch, d, err,
                                errlen);
        if (d->fetch)
            return true;
    }
    return false;
}

static void start_fetch(struct policy_engine *e, struct dom *d)
{
    char host[300], err[300];
    q_remove(d);
    snprintf(host, sizeof(host), "mta-sts.%s", d->name);
    e->fetch_slots++;
    d->phase = PH_DNS_ADDR;
    if (dns_is_down(e, mono_ms())) {
        dns_skip(e, d, mono_ms());
        return;
    }
    d->deadline_ms = mono_ms() + e->cfg.dns_timeout_ms;
    d->dns = pdns_query_addr(e->dns, host, on_addr, d, err, sizeof(err));
    if (d->dns)
        q_push(d, &e->dns_h, &e->dns_t, &e->dns_n);
    if (!d->dns) {
        release_slot(e, d);
        d->phase = PH_IDLE;
        e->stats.dns_errors++;
        fail(e, d, POLICY_ST_UNKNOWN, e->cfg.negative_ttl, err);
    }
}

/* Starts a lookup for d (idle). */
static void start(struct policy_engine *e, struct dom *d, bool refresh)
{
    d->refresh = refresh;
    if (refresh)
        e->stats.refreshes++;
    d->phase = PH_START;
    d->pending = true;
    e->n_pending++;
    q_push(d, &e->redis_h, &e->redis_t, &e->redis_n);
}

/* ---- public ---- */

struct policy_engine *policy_engine_new(const struct policy_cfg *cfg, char *err, size_t errlen)
{
    struct policy_engine *e = calloc(1, sizeof(*e));
    if (!e) {
        sw_set_err(err, errlen, "policy: out of memory");
        return NULL;
    }
    e->cfg = *cfg;
    if (!e->cfg.cache_max)
        e->cfg.cache_max = 100000;
    if (!e->cfg.neg_cache_max)
        e->cfg.neg_cache_max = 100000;
    if (!e->cfg.max_pending)
        e->cfg.max_pending = 10000;
    if (!e->cfg.dns_max_in_flight)
        e->cfg.dns_max_in_flight = 256;
    if (!e->cfg.dns_dead_after)
        e->cfg.dns_dead_after = 8;
    if (e->cfg.dns_backoff_min_s <= 0)
        e->cfg.dns_backoff_min_s = 5;
    if (e->cfg.dns_backoff_max_s < e->cfg.dns_backoff_min_s)
        e->cfg.dns_backoff_max_s = e->cfg.dns_backoff_min_s > 300 ? e->cfg.dns_backoff_min_s : 300;
    if (!e->cfg.max_concurrent)
        e->cfg.max_concurrent = 32;
    if (!e->cfg.max_per_second)
        e->cfg.max_per_second = 20;
    if (e->cfg.refresh_interval <= 0)
        e->cfg.refresh_interval = 3600;
    if (e->cfg.dns_timeout_ms <= 0)
        e->cfg.dns_timeout_ms = 4000;
    if (e->cfg.lock_wait_ms <= 0)
        e->cfg.lock_wait_ms = 10000;
    if (!e->cfg.max_queued)
        e->cfg.max_queued = 4096;
    if (e->cfg.connect_timeout_ms <= 0)
        e->cfg.connect_timeout_ms = 5000;
    if (e->cfg.total_timeout_ms <= 0)
        e->cfg.total_timeout_ms = 15000;
    if (!e->cfg.https_port)
        e->cfg.https_port = 443;
    /* keep our own copies of the strings */
    if (cfg->ca_file) {
        snprintf(e->ca_file, sizeof(e->ca_file), "%s", cfg->ca_file);
        e->cfg.ca_file = e->ca_file;
    }
    if (cfg->dns_server) {
        snprintf(e->dns_server, sizeof(e->dns_server), "%s", cfg->dns_server);
        e->cfg.dns_server = e->dns_server;
    }
    if (cfg->redis_url) {
        snprintf(e->redis_url, sizeof(e->redis_url), "%s", cfg->redis_url);
        e->cfg.redis_url = e->redis_url;
    }
    e->cfg.policy_file = NULL;
    e->tokens = e->cfg.max_per_second;
    e->tokens_ms = mono_ms();
    if (!(e->pos = lru_new(e->cfg.cache_max, dom_free)) ||
        !(e->neg = lru_new(e->cfg.neg_cache_max, dom_free))) {
        sw_set_err(err, errlen, "policy: out of memory");
        goto fail;
    }
    if (e->cfg.fetch) {
        if (!(e->dns = pdns_new(e->cfg.dns_server, err, errlen)))
            goto fail;
        if (!(e->fetch = pfetch_new(err, errlen)))
            goto fail;
    }
    if (e->cfg.redis_url && !(e->rc = rcache_new(e->cfg.redis_url, err, errlen)))
        goto fail;
    if (cfg->policy_file && policy_engine_load_file(e, cfg->policy_file, err, errlen) != SW_OK)
        goto fail;
    if (cfg->dane && !(e->dane = dane_new_for_policy(&e->cfg, cfg, err, errlen)))
        goto fail;
    e->cfg.trust_anchor = e->cfg.dane_file = NULL;
    return e;
fail:
    policy_engine_free(e);
    return NULL;
}

void policy_engine_free(struct policy_engine *e)
{
    if (!e)
        return;
    /* the resolver first: it drops its queries at once without waiting for
     * libunbound's thread, and the records below no longer cancel theirs */
    pdns_free(e->dns);
    e->dns = NULL;
    dane_free(e->dane);
    lru_free(e->neg); /* cancels the fetches in flight, no callbacks */
    lru_free(e->pos);
    rcache_free(e->rc);
    pfetch_free(e->fetch);
    free(e);
}

int policy_lookup(struct policy_engine *e, const char *domain, policy_cb cb, void *arg,
                  struct policy_answer *a)
{
    char name[256];
    e->stats.lookups++;
    a->entry = NULL;
    if (!domain || !normalize(domain, name)) {
        a->status = POLICY_ST_NONE;
        a->detail = "invalid domain name";
        return SW_OK;
    }
    int64_t now = wall_s(), jt = judge_now(e);
    struct dom *d = policy_dom_find(e, name, true);
    bool full = e->n_pending >= e->cfg.max_pending;
    if (d) {
        if (d->entry && entry_usable(d->entry, jt)) {
            if (d->entry->source == POLICY_SRC_FILE)
                e->stats.hits_file++;
            else if (d->entry->source == POLICY_SRC_REDIS)
                e->stats.hits_redis++;
            else
                e->stats.hits_memory++;
            /* at the bound the refresh waits for a later hit */
            if (e->cfg.fetch && now >= d->refresh_at && !dom_in_flight(d) && !full)
                start(e, d, true);
            fill_answer(e, d, jt, a);
            return SW_OK;
        }
        if (d->entry) {
            /* expired: judged with while its refresh runs, or cannot run
             * offline (RFC 8461 §5.1: fetch asynchronously, do not block) */
            e->stats.expired++;
            if (!e->cfg.fetch)
                warn_expired(e, d, NULL);
            else if (now >= d->refresh_at && !dom_in_flight(d) && !full)
                start(e, d, true);
            fill_answer(e, d, jt, a);
            return SW_OK;
        }
        if (!dom_in_flight(d) && now < d->neg_until) {
            fill_answer(e, d, jt, a);
            return SW_OK;
        }
    } else if (!e->cfg.fetch && !e->rc) {
        e->stats.misses++; /* nothing to ask: keep no record */
        a->status = POLICY_ST_UNKNOWN;
        a->detail = "offline: no policy in file or cache";
        return SW_OK;
    } else if (full) {
        e->stats.misses++;
        e->stats.lookups_dropped++;
        a->status = POLICY_ST_UNKNOWN;
        a->detail = "too many policy lookups under way";
        return SW_OK;
    } else if (!(d = policy_dom_insert(e, name, false))) {
        a->status = POLICY_ST_UNKNOWN;
        a->detail = "policy cache full of lookups in flight";
        return SW_OK;
    }
    e->stats.misses++;
    if (!dom_in_flight(d) && full) {
        e->stats.lookups_dropped++;
        a->status = POLICY_ST_UNKNOWN;
        a->detail = "too many policy lookups under way";
        return SW_OK;
    }
    if (!dom_in_flight(d) && !e->cfg.fetch && !e->rc) {
        a->status = POLICY_ST_UNKNOWN;
        a->detail = "offline: no policy in file or cache";
        return SW_OK;
    }
    if (!cb) { /* a probe: start the lookup, nobody to tell */
        if (!dom_in_flight(d))
            start(e, d, false);
        a->status = POLICY_ST_PENDING;
        a->detail = "lookup in progress";
        return SW_AGAIN;
    }
    if (d->n_waiters >= POLICY_MAX_WAITERS) {
        a->status = POLICY_ST_UNKNOWN;
        a->detail = "too many lookups waiting for this domain";
        return SW_OK;
    }
    struct waiter *w = calloc(1, sizeof(*w));
    if (!w) {
        a->status = POLICY_ST_UNKNOWN;
        a->detail = "out of memory";
        return SW_OK;
    }
    w->cb = cb;
    w->arg = arg;
    *d->wtail = w;
    d->wtail = &w->next;
    d->n_waiters++;
    if (!dom_in_flight(d))
        start(e, d, false);
    a->status = POLICY_ST_PENDING;
    a->detail = "lookup in progress";
    return SW_AGAIN;
}

static void pump(struct policy_engine *e)
{
    int64_t now_ms = mono_ms();
    /* Redis reads queued by lookups */
    while (e->redis_h)
        step_start(e, e->redis_h);
    /* lock waits */
    for (struct dom *d = e->wait_h, *next; d; d = next) {
        next = d->q_next;
        step_lock_poll(e, d, now_ms);
    }
    /* DNS deadlines (the queue is in start order, deadlines are equal) */
    while (e->dns_h && now_ms >= e->dns_h->deadline_ms) {
        struct dom *d = e->dns_h;
        q_remove(d);
        pdns_cancel(e->dns, d->dns);
        d->dns = NULL;
        e->stats.dns_timeouts++;
        e->stats.dns_errors++;
        char detail[640];
        if (d->phase == PH_DNS_TXT) {
            snprintf(detail, sizeof(detail), "DNS TXT " POLICY_TXT_PREFIX "%s: timed out", d->name);
            fail(e, d, POLICY_ST_UNKNOWN, e->cfg.negative_ttl, detail);
        } else {
            release_slot(e, d);
            d->phase = PH_IDLE;
            snprintf(detail, sizeof(detail), "policy host mta-sts.%s: DNS: timed out", d->name);
            fetch_failed(e, d, POLICY_ST_UNKNOWN, detail);
        }
        dns_timed_out(e, now_ms);
    }
    /* TXT queries waiting for a slot */
    while (e->dns && e->dnsq_h && pdns_in_flight(e->dns) < e->cfg.dns_max_in_flight) {
        struct dom *d = e->dnsq_h;
        q_remove(d);
        if (dns_is_down(e, now_ms))
            dns_skip(e, d, now_ms);
        else
            step_txt(e, d);
    }
    e->stats.dns_queued = (uint64_t)e->dnsq_n;
    /* fetch slots and rate */
    double elapsed = (double)(now_ms - e->tokens_ms) / 1000.0;
    e->tokens_ms = now_ms;
    e->tokens += elapsed * e->cfg.max_per_second;
    if (e->tokens > e->cfg.max_per_second)
        e->tokens = e->cfg.max_per_second;
    while (e->fetch_h && e->fetch_slots < e->cfg.max_concurrent && e->tokens >= 1.0) {
        e->tokens -= 1.0;
        start_fetch(e, e->fetch_h);
    }
}

int policy_engine_run(struct policy_engine *e, int timeout_ms)
{
    uint64_t before = e->fired;
    /* no clock read for a poll (timeout 0): once per session */
    int64_t end = timeout_ms > 0 ? mono_ms() + timeout_ms : 0;
    for (;;) {
        if (e->dns)
            pdns_process(e->dns);
        if (e->fetch)
            pfetch_perform(e->fetch);
        if (e->dane)
            e->fired += (uint64_t)dane_process(e->dane);
        pump(e);
        if (e->fired > before || timeout_ms <= 0)
            break;
        int64_t now = mono_ms();
        if (now >= end)
            break;
        int64_t wait = end - now;
        if (e->wait_h && wait > POLICY_POLL_MS)
            wait = POLICY_POLL_MS;
        if (e->fetch_h && wait > 50)
            wait = 50;
        if (wait > 100 &&
            ((e->dns && pdns_in_flight(e->dns)) || (e->dane && dane_in_flight(e->dane))))
            wait = 100; /* DNS deadlines */
        if (e->fetch) {
            int fds[2], nfd = 0;
            if (e->dns)
                fds[nfd++] = pdns_fd(e->dns);
            if (e->dane && dane_fd(e->dane) >= 0)
                fds[nfd++] = dane_fd(e->dane);
            pfetch_wait(e->fetch, fds, nfd, (int)wait);
        } else {
            struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    return (int)(e->fired - before);
}

struct dane *policy_engine_dane(struct policy_engine *e)
{
    return e->dane;
}

const struct policy_stats *policy_engine_stats(const struct policy_engine *e)
{
    return &e->stats;
}
