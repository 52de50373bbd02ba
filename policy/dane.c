/* SPDX-License-Identifier: Apache-2.0 */
/* dane.c: DANE TLSA lookups (_25._tcp.<mx-host>) through a DNSSEC-validating
 * libunbound context, with a bounded memory cache, a Redis cache and the
 * snapshot file. RFC 7672 §2.2 (TLSA discovery, secure/insecure/bogus),
 * RFC 6698 §2 (TLSA RR), RFC 4033 §5 (validation states). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unbound.h>

#include "decode/sw.h"
#include "policy/dane.h"
#include "policy/dns.h"
#include "policy/lru.h"
#include "policy/policy.h"
#include "policy/redis_conn.h"

#define RR_TLSA            52
#define DANE_MAX_WAITERS   256 /* per host */
#define DANE_REDIS_PREFIX  "stripwatch:dane:"
#define DANE_REDIS_IO_MS   500
#define DANE_REDIS_BACKOFF 5 /* seconds */
#define DANE_TTL_MAX       86400

struct dwaiter {
    dane_cb cb;
    void *arg;
    struct dwaiter *next;
};

struct dhost {
    struct dane *d;
    struct dane_entry *entry; /* what is known, or NULL */
    int64_t until;            /* wall seconds the entry holds (live) */
    bool inflight;
    int ub_id;
    int64_t deadline_ms;
    struct dwaiter *waiters, **wtail;
    size_t n_waiters;
    struct dhost *prev, *next; /* in flight, in start order */
    char name[];
};

struct dane {
    struct dane_cfg cfg;
    struct dane_stats st;
    struct ub_ctx *ctx;
    struct lru *hosts;
    struct dhost *fl_h, *fl_t; /* in flight */
    size_t n_inflight;
    struct redis_conn *rc;
    time_t redis_next_try;
    int fired;
};

void dane_cfg_defaults(struct dane_cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->cache_max = 100000;
    c->max_pending = 1000;
    c->timeout_ms = 4000;
    c->negative_ttl = 300;
    c->failure_ttl = 300;
}

static int64_t wall_s(void)
{
    return (int64_t)time(NULL);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool normalize(const char *in, char out[256])
{
    size_t n = strlen(in);
    if (n && in[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
            return false;
        if (c == '.' && (i == 0 || out[i - 1] == '.'))
            return false;
        out[i] = c;
    }
    out[n] = 0;
    return true;
}

static void fl_unlink(struct dane *d, struct dhost *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        d->fl_h = h->next;
    if (h->next)
        h->next->prev = h->prev;
    else
        d->fl_t = h->prev;
    h->prev = h->next = NULL;
    h->inflight = false;
    d->n_inflight--;
}

static void host_free(void *v)
{
    struct dhost *h = v;
    struct dane *d = h->d;
    if (h->inflight) {
        if (d->ctx)
            ub_cancel(d->ctx, h->ub_id);
        fl_unlink(d, h);
    }
    while (h->waiters) {
        struct dwaiter *w = h->waiters;
        h->waiters = w->next;
        free(w);
    }
    dane_entry_free(h->entry);
    free(h);
}

static struct dhost *host_get(struct dane *d, const char *name)
{
    struct dhost *h = lru_get(d->hosts, name);
    if (h)
        return h;
    size_t n = strlen(name);
    h = calloc(1, sizeof(*h) + n + 1);
    if (!h)
        return NULL;
    h->d = d;
    h->wtail = &h->waiters;
    memcpy(h->name, name, n + 1);
    uint64_t ev = lru_evictions(d->hosts);
    if (lru_put(d->hosts, h->name, h) != SW_OK) {
        free(h);
        return NULL;
    }
    d->st.evicted += lru_evictions(d->hosts) - ev;
    return h;
}

static void answer_of(const struct dhost *h, struct dane_answer *a)
{
    a->entry = h->entry;
    a->status = h->entry ? h->entry->status : DANE_ST_UNKNOWN;
    a->detail = h->entry ? h->entry->why : "no DANE data";
}

static void count_status(struct dane *d, enum dane_status s)
{
    switch (s) {
    case DANE_ST_SECURE:
        d->st.secure++;
        break;
    case DANE_ST_NONE:
        d->st.none++;
        break;
    case DANE_ST_INSECURE:
        d->st.insecure++;
        break;
    case DANE_ST_BOGUS:
        d->st.bogus++;
        break;
    case DANE_ST_UNKNOWN:
        d->st.failures++;
        break;
    }
}

/* ---- Redis ---- */

static bool redis_ready(struct dane *d)
{
    if (!d->rc)
        return false;
    if (redis_conn_is_connected(d->rc))
        return true;
    time_t now = time(NULL);
    if (now < d->redis_next_try)
        return false;
    if (redis_conn_connect(d->rc) != SW_OK) {
        d->redis_next_try = now + DANE_REDIS_BACKOFF;
        d->st.redis_errors++;
        return false;
    }
    return true;
}

static struct dane_entry *redis_get(struct dane *d, const char *host)
{
    if (!redis_ready(d))
        return NULL;
    char key[300];
    snprintf(key, sizeof(key), DANE_REDIS_PREFIX "%s", host);
    const char *argv[2] = {"GET", key};
    size_t len[2] = {3, strlen(key)};
    redisReply *r = redis_conn_command_argv(d->rc, DANE_REDIS_IO_MS, 2, argv, len);
    if (!r) {
        d->redis_next_try = time(NULL) + DANE_REDIS_BACKOFF;
        d->st.redis_errors++;
        return NULL;
    }
    struct dane_entry *e = NULL;
    if (r->type == REDIS_REPLY_STRING) {
        char why[128];
        e = dane_entry_from_json(host, r->str, r->len, DANE_SRC_REDIS, why, sizeof(why));
        if (!e)
            d->st.redis_errors++;
    }
    freeReplyObject(r);
    return e;
}

static void redis_put(struct dane *d, const struct dane_entry *e, int64_t ttl)
{
    if (ttl < 1 || !redis_ready(d))
        return;
    char key[300], ex[24];
    char *val = dane_entry_to_json(e);
    if (!val)
        return;
    snprintf(key, sizeof(key), DANE_REDIS_PREFIX "%s", e->host);
    snprintf(ex, sizeof(ex), "%lld", (long long)ttl);
    const char *argv[5] = {"SET", key, val, "EX", ex};
    size_t len[5] = {3, strlen(key), strlen(val), 2, strlen(ex)};
    redisReply *r = redis_conn_command_argv(d->rc, DANE_REDIS_IO_MS, 5, argv, len);
    if (!r) {
        d->redis_next_try = time(NULL) + DANE_REDIS_BACKOFF;
        d->st.redis_errors++;
    }
    freeReplyObject(r);
    free(val);
}

/* ---- answers ---- */

static void finish(struct dane *d, struct dhost *h, struct dane_entry *e, int64_t hold)
{
    dane_entry_free(h->entry);
    h->entry = e;
    h->until = wall_s() + hold;
    if (e)
        count_status(d, e->status);
    struct dane_answer a;
    char name[256];
    snprintf(name, sizeof(name), "%s", h->name);
    lru_get(d->hosts, name); /* most recently used while its callbacks run */
    answer_of(h, &a);
    struct dwaiter *w = h->waiters;
    h->waiters = NULL;
    h->wtail = &h->waiters;
    h->n_waiters = 0;
    /* a lookup of a new host from inside a callback evicts the least
     * recently used host, never this one (unless cache_max is 1) */
    while (w) {
        struct dwaiter *next = w->next;
        w->cb(w->arg, name, &a);
        d->fired++;
        free(w);
        w = next;
    }
}

static int64_t ttl_hold(const struct dane *d, enum dane_status st, int ttl)
{
    int64_t t = ttl > 0 ? ttl : 0;
    int64_t floor = st == DANE_ST_BOGUS || st == DANE_ST_UNKNOWN ? d->cfg.failure_ttl
                    : st == DANE_ST_SECURE                       ? 60
                                                                 : d->cfg.negative_ttl;
    if (st == DANE_ST_BOGUS || st == DANE_ST_UNKNOWN)
        return floor;
    if (t < floor)
        t = floor;
    return t > DANE_TTL_MAX ? DANE_TTL_MAX : t;
}

static void on_tlsa(void *arg, int err, struct ub_result *ub)
{
    struct dhost *h = arg;
    struct dane *d = h->d;
    fl_unlink(d, h);
    struct dane_tlsa rr[DANE_MAX_RECORDS];
    size_t n = 0;
    enum dane_status st;
    char why[512];
    why[0] = 0;
    int ttl = 0;
    if (err || !ub) {
        st = DANE_ST_UNKNOWN;
        snprintf(why, sizeof(why), "DNS TLSA _25._tcp.%s: %s", h->name, ub_strerror(err));
    } else if (ub->bogus) {
        st = DANE_ST_BOGUS;
        snprintf(why, sizeof(why), "%s",
                 ub->why_bogus ? ub->why_bogus : "DNSSEC validation failed");
    } else if (ub->rcode != 0 && ub->rcode != 3) {
        st = DANE_ST_UNKNOWN;
        snprintf(why, sizeof(why), "DNS TLSA _25._tcp.%s: rcode %d", h->name, ub->rcode);
    } else {
        ttl = ub->ttl;
        for (int i = 0; ub->havedata && ub->data[i] && n < DANE_MAX_RECORDS; i++)
            if (dane_tlsa_from_rdata((const unsigned char *)ub->data[i], (size_t)ub->len[i],
                                     &rr[n]))
                n++;
        if (!ub->secure)
            st = DANE_ST_INSECURE;
        else
            st = n ? DANE_ST_SECURE : DANE_ST_NONE;
    }
    if (ub)
        ub_resolve_free(ub);
    struct dane_entry *e =
        dane_entry_new(h->name, st, rr, st == DANE_ST_NONE ? 0 : n, why[0] ? why : NULL, wall_s(),
                       ttl_hold(d, st, ttl), DANE_SRC_DNS);
    for (size_t i = 0; i < n; i++)
        free(rr[i].data);
    if (e && st != DANE_ST_UNKNOWN)
        redis_put(d, e, e->ttl);
    finish(d, h, e, ttl_hold(d, st, ttl));
}

static void start_query(struct dane *d, struct dhost *h)
{
    char qname[300];
    snprintf(qname, sizeof(qname), "_25._tcp.%s", h->name);
    int r = ub_resolve_async(d->ctx, qname, RR_TLSA, 1, h, on_tlsa, &h->ub_id);
    if (r) {
        char why[400];
        snprintf(why, sizeof(why), "DNS TLSA %s: %s", qname, ub_strerror(r));
        struct dane_entry *e = dane_entry_new(h->name, DANE_ST_UNKNOWN, NULL, 0, why, wall_s(),
                                              d->cfg.failure_ttl, DANE_SRC_DNS);
        finish(d, h, e, d->cfg.failure_ttl);
        return;
    }
    d->st.queries++;
    h->inflight = true;
    h->deadline_ms = mono_ms() + d->cfg.timeout_ms;
    h->prev = d->fl_t;
    h->next = NULL;
    if (d->fl_t)
        d->fl_t->next = h;
    else
        d->fl_h = h;
    d->fl_t = h;
    d->n_inflight++;
}

int dane_lookup(struct dane *d, const char *host, dane_cb cb, void *arg, struct dane_answer *a)
{
    char name[256];
    d->st.lookups++;
    memset(a, 0, sizeof(*a));
    a->status = DANE_ST_UNKNOWN;
    if (!host || !normalize(host, name)) {
        a->detail = "invalid host name";
        return SW_OK;
    }
    struct dhost *h = lru_get(d->hosts, name);
    int64_t now = wall_s();
    if (h && h->entry && !h->inflight && (!d->cfg.fetch || now < h->until)) {
        /* offline, what the snapshot holds; live, an answer holds for its TTL */
        d->st.hits++;
        answer_of(h, a);
        return SW_OK;
    }
    if (!d->cfg.fetch) {
        d->st.misses++;
        a->detail = "no DANE data";
        return SW_OK;
    }
    if (!h || !h->inflight) {
        if (d->n_inflight >= d->cfg.max_pending) {
            d->st.dropped++;
            a->detail = "too many DANE lookups under way";
            return SW_OK;
        }
        if (!h && !(h = host_get(d, name))) {
            a->detail = "out of memory";
            return SW_OK;
        }
        struct dane_entry *re = redis_get(d, name);
        if (re) {
            d->st.redis_hits++;
            int64_t left = re->fetched_at + re->ttl - now;
            dane_entry_free(h->entry);
            h->entry = re;
            h->until = now + (left > 0 ? left : 0);
            if (left > 0) {
                answer_of(h, a);
                return SW_OK;
            }
        }
        d->st.misses++;
        start_query(d, h);
        if (!h->inflight) { /* failed at once: answered */
            answer_of(h, a);
            return SW_OK;
        }
    } else {
        d->st.misses++;
    }
    if (!cb)
        return SW_AGAIN;
    if (h->n_waiters >= DANE_MAX_WAITERS) {
        d->st.dropped++;
        a->detail = "too many waiters for one host";
        return SW_OK;
    }
    struct dwaiter *w = calloc(1, sizeof(*w));
    if (!w) {
        a->detail = "out of memory";
        return SW_OK;
    }
    w->cb = cb;
    w->arg = arg;
    *h->wtail = w;
    h->wtail = &w->next;
    h->n_waiters++;
    return SW_AGAIN;
}

int dane_fd(const struct dane *d)
{
    return d->ctx && d->n_inflight ? ub_fd(d->ctx) : -1;
}

size_t dane_in_flight(const struct dane *d)
{
    return d->n_inflight;
}

int dane_process(struct dane *d)
{
    d->fired = 0;
    if (!d->ctx || !d->n_inflight)
        return 0;
    if (ub_poll(d->ctx))
        ub_process(d->ctx);
    int64_t now = mono_ms();
    while (d->fl_h && now >= d->fl_h->deadline_ms) {
        struct dhost *h = d->fl_h;
        ub_cancel(d->ctx, h->ub_id);
        fl_unlink(d, h);
        d->st.timeouts++;
        char why[300];
        snprintf(why, sizeof(why), "DNS TLSA _25._tcp.%s: timed out", h->name);
        struct dane_entry *e = dane_entry_new(h->name, DANE_ST_UNKNOWN, NULL, 0, why, wall_s(),
                                              d->cfg.failure_ttl, DANE_SRC_DNS);
        finish(d, h, e, d->cfg.failure_ttl);
    }
    return d->fired;
}

static void on_file_entry(void *arg, struct dane_entry *e)
{
    struct dane *d = arg;
    struct dhost *h = host_get(d, e->host);
    if (!h || h->inflight) {
        dane_entry_free(e);
        return;
    }
    dane_entry_free(h->entry);
    h->entry = e;
    h->until = e->fetched_at + e->ttl;
}

static void on_file_error(void *arg, const char *line)
{
    (void)arg;
    fprintf(stderr, "stripwatch: %s\n", line);
}

int dane_load_file(struct dane *d, const char *path, char *err, size_t errlen)
{
    size_t ok = 0, bad = 0;
    int rc = dane_file_load(path, on_file_entry, on_file_error, d, &ok, &bad, err, errlen);
    d->st.file_loaded += ok;
    d->st.file_rejected += bad;
    return rc;
}

struct collect {
    const struct dane_entry **v;
    size_t n;
};

static int collect(void *arg, const char *key, void *value)
{
    struct collect *c = arg;
    const struct dhost *h = value;
    (void)key;
    if (h->entry && h->entry->status != DANE_ST_UNKNOWN)
        c->v[c->n++] = h->entry;
    return 0;
}

int dane_save(struct dane *d, const char *path, char *err, size_t errlen)
{
    struct collect c = {calloc(lru_count(d->hosts) + 1, sizeof(*c.v)), 0};
    if (!c.v) {
        sw_set_err(err, errlen, "%s: out of memory", path);
        return SW_ENOMEM;
    }
    lru_foreach(d->hosts, collect, &c);
    int rc = dane_file_save(path, c.v, c.n, err, errlen);
    free(c.v);
    return rc;
}

const struct dane_stats *dane_stats(const struct dane *d)
{
    return &d->st;
}

/* A zone-file line "OWNER [TTL] [IN] DS|DNSKEY ..." outside a comment. */
static bool ta_file_has_anchor(FILE *f)
{
    char line[4096];
    while (fgets(line, sizeof(line), f)) {
        char *c = strchr(line, ';');
        if (c)
            *c = 0;
        char *save = NULL;
        for (char *t = strtok_r(line, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save))
            if (strcmp(t, "DS") == 0 || strcmp(t, "DNSKEY") == 0)
                return true;
    }
    return false;
}

struct dane *dane_new(const struct dane_cfg *cfg, char *err, size_t errlen)
{
    struct dane *d = calloc(1, sizeof(*d));
    if (!d) {
        sw_set_err(err, errlen, "dane: out of memory");
        return NULL;
    }
    d->cfg = *cfg;
    struct dane_cfg def;
    dane_cfg_defaults(&def);
    if (!d->cfg.cache_max)
        d->cfg.cache_max = def.cache_max;
    if (!d->cfg.max_pending)
        d->cfg.max_pending = def.max_pending;
    if (d->cfg.timeout_ms <= 0)
        d->cfg.timeout_ms = def.timeout_ms;
    if (d->cfg.negative_ttl <= 0)
        d->cfg.negative_ttl = def.negative_ttl;
    if (d->cfg.failure_ttl <= 0)
        d->cfg.failure_ttl = def.failure_ttl;
    d->cfg.dns_server = d->cfg.trust_anchor = d->cfg.redis_url = d->cfg.dane_file = NULL;
    if (!(d->hosts = lru_new(d->cfg.cache_max, host_free))) {
        sw_set_err(err, errlen, "dane: out of memory");
        goto fail;
    }
    if (cfg->fetch) {
        const char *ta = cfg->trust_anchor ? cfg->trust_anchor : DANE_DEFAULT_TA;
        char why[96];
        FILE *f = fopen(ta, "r");
        if (!f) {
            sw_set_err(err, errlen, "trust anchor %s: %s", ta, strerror(errno));
            goto fail;
        }
        bool has_anchor = ta_file_has_anchor(f);
        fclose(f);
        if (!has_anchor) {
            /* libunbound would say so only at the first query */
            sw_set_err(err, errlen, "trust anchor %s: no DS or DNSKEY record", ta);
            goto fail;
        }
        if (cfg->dns_server && !pdns_server_valid(cfg->dns_server, why, sizeof(why))) {
            sw_set_err(err, errlen, "dns server \"%s\": %s", cfg->dns_server, why);
            goto fail;
        }
        if (!(d->ctx = ub_ctx_create())) {
            sw_set_err(err, errlen, "dane: cannot create a libunbound context");
            goto fail;
        }
        int r = ub_ctx_async(d->ctx, 1);
        if (!r)
            r = ub_ctx_set_option(d->ctx, "do-not-query-localhost:", "no");
        if (!r)
            r = cfg->dns_server ? ub_ctx_set_fwd(d->ctx, cfg->dns_server)
                                : ub_ctx_resolvconf(d->ctx, NULL);
        if (r) {
            sw_set_err(err, errlen, "dane: %s: %s",
                       cfg->dns_server ? cfg->dns_server : "/etc/resolv.conf",
                       r == UB_READFILE ? strerror(errno) : ub_strerror(r));
            goto fail;
        }
        if ((r = ub_ctx_add_ta_file(d->ctx, ta)) != 0) {
            sw_set_err(err, errlen, "trust anchor %s: %s", ta, ub_strerror(r));
            goto fail;
        }
    }
    if (cfg->redis_url) {
        struct redis_conn_opts o;
        redis_conn_opts_defaults(&o);
        o.connect_timeout_ms = 1000;
        o.io_timeout_ms = DANE_REDIS_IO_MS;
        if (!(d->rc = redis_conn_new(cfg->redis_url, &o, err, errlen)))
            goto fail;
    }
    if (cfg->dane_file && dane_load_file(d, cfg->dane_file, err, errlen) != SW_OK)
        goto fail;
    return d;
fail:
    dane_free(d);
    return NULL;
}

void dane_free(struct dane *d)
{
    if (!d)
        return;
    lru_free(d->hosts); /* cancels what is in flight */
    if (d->ctx)
        ub_ctx_delete(d->ctx);
    redis_conn_free(d->rc);
    free(d);
}

struct dane *dane_new_for_policy(const struct policy_cfg *cfg, const struct policy_cfg *orig,
                                 char *err, size_t errlen)
{
    struct dane_cfg dc;
    dane_cfg_defaults(&dc);
    dc.fetch = cfg->fetch;
    dc.dns_server = cfg->dns_server;
    dc.trust_anchor = orig->trust_anchor;
    dc.redis_url = cfg->redis_url;
    dc.dane_file = orig->dane_file;
    dc.cache_max = cfg->cache_max;
    dc.timeout_ms = cfg->dns_timeout_ms;
    dc.negative_ttl = cfg->negative_ttl;
    dc.failure_ttl = cfg->retry_after_failure;
    return dane_new(&dc, err, errlen);
}
