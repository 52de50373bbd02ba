/* SPDX-License-Identifier: Apache-2.0 */
/* posture.c: learned posture: servers that offered STARTTLS, clients that
 * used it (or failed to), bounded LRU, aged, saved to a JSON state file and
 * shared through Redis. Every fact carries the capture time it was learned
 * at (the end of the session that showed it) and is shown only to sessions
 * that ended after it (judged later in capture time); entries merge by that
 * time (the earliest and the latest kept), so shared state does not depend
 * on the order in which sensors or runs wrote it. Follows RFC 3207
 * (STARTTLS), RFC 8259 (JSON). */
#include "alerts/posture.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "decode/pkt.h"
#include "policy/lru.h"
#include "policy/redis_conn.h"

enum pkind {
    PK_SERVER = 0, /* "192.0.2.1:25": offered STARTTLS */
    PK_NAME,       /* "mx.example.org:25": offered STARTTLS (banner host) */
    PK_CLIENT,     /* "192.0.2.9>192.0.2.1:25" or "192.0.2.9>mx.example.org:25" (the
                      server's banner host): used STARTTLS / failed */
    PK_COUNT,
};
static const char *const pkind_names[PK_COUNT] = {"server", "name", "client"};

#define PKEY_MAX 300
/* The map's key: the kind's name, ':' and the entry's key ("server:192.0.2.1:25"). */
#define PLKEY_MAX (PKEY_MAX + 16)
/* Redis: an entry is rewritten at most this often unless a failure is new,
 * and a key Redis did not have is asked again after this long. */
#define POSTURE_REDIS_REFRESH_US (60 * SW_USEC_PER_SEC)

/* One session that showed something: when it started (ts, shown as
 * evidence), when it was learned (at: the session's end, the time the
 * sensor knew it; the capture-time rule and merging use this), its uid.
 * ts 0: none. */
struct pfact {
    sw_usec ts, at;
    char uid[18];
};

/* Held in the map's entry, after the map's key ("server:192.0.2.1:25"). */
struct pentry {
    const char *key; /* the entry's key: the map's copy, after the kind's name and ':' */
    uint8_t kind;
    sw_usec seen; /* latest time learned at, for ageing */
    /* server: offered STARTTLS; client: used it; the earliest and the latest */
    struct pfact first, ok;
    struct pfact fail; /* client: the latest failed attempt */
    char fail_detail[96];
    uint32_t syn_ack;      /* server: the SYN-ACK fingerprint of the last session that offered
                              STARTTLS with its handshake seen (flow_syn_ack_fp), 0 none */
    sw_usec redis_written; /* capture time of the last write to Redis, 0 never */
    sw_usec redis_miss;    /* an empty probe: Redis had nothing at this time */
};

struct posture {
    int64_t max_age_us;
    int64_t fallback_window_us;
    /* kind-prefixed key -> struct pentry; keys come from the traffic, so the
     * map's seeded hash matters (no chosen-collision flooding) */
    struct lru *map;
    struct posture_stats st;
    struct redis_conn *redis;
    int64_t redis_retry_at; /* wall seconds: skip Redis until then after a failure */
};

struct posture *posture_new(size_t max_entries, int64_t max_age_s, int64_t fallback_window_s)
{
    struct posture *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->max_age_us = max_age_s * SW_USEC_PER_SEC;
    p->fallback_window_us =
        (fallback_window_s > 0 ? fallback_window_s : POSTURE_FALLBACK_WINDOW_S) * SW_USEC_PER_SEC;
    p->map = lru_new_inline(max_entries ? max_entries : 1, sizeof(struct pentry));
    if (!p->map) {
        free(p);
        return NULL;
    }
    return p;
}

void posture_free(struct posture *p)
{
    if (!p)
        return;
    lru_free(p->map);
    redis_conn_free(p->redis);
    free(p);
}

const struct posture_stats *posture_stats(const struct posture *p)
{
    return &p->st;
}

/* Appends the n bytes of s to buf[*at..len) as snprintf would (cut to fit,
 * always NUL-terminated). */
static void key_cat(char *buf, size_t len, size_t *at, const char *s, size_t n)
{
    if (*at + 1 >= len)
        return;
    if (n > len - 1 - *at)
        n = len - 1 - *at;
    memcpy(buf + *at, s, n);
    *at += n;
    buf[*at] = '\0';
}

static void key_cat_port(char *buf, size_t len, size_t *at, unsigned port)
{
    char d[8], *e = d + sizeof d, *p = e;
    do {
        *--p = (char)('0' + port % 10);
        port /= 10;
    } while (port);
    key_cat(buf, len, at, p, (size_t)(e - p));
}

/* s into buf[0..len) as snprintf "%s" would (cut to fit). */
static void key_copy(char *buf, size_t len, const char *s)
{
    size_t at = 0;
    if (len)
        buf[0] = '\0';
    key_cat(buf, len, &at, s, strlen(s));
}

static void map_key(uint8_t kind, const char *key, char *buf, size_t len)
{
    /* "%s:%s" by hand: three times per session */
    size_t at = 0;
    if (len)
        buf[0] = '\0';
    key_cat(buf, len, &at, pkind_names[kind], strlen(pkind_names[kind]));
    key_cat(buf, len, &at, ":", 1);
    key_cat(buf, len, &at, key, strlen(key));
}

/* The counters the map keeps, copied after every change. */
static void sync_stats(struct posture *p)
{
    p->st.entries = lru_count(p->map);
    p->st.evicted = lru_evictions(p->map);
}

static void remove_entry(struct posture *p, const struct pentry *e)
{
    char lk[PLKEY_MAX];
    map_key(e->kind, e->key, lk, sizeof lk);
    lru_remove(p->map, lk);
    sync_stats(p);
}

/* Aged out at time now? Backwards time never ages anything. */
static bool expired(const struct posture *p, const struct pentry *e, sw_usec now)
{
    return p->max_age_us > 0 && now > e->seen && now - e->seen > p->max_age_us;
}

/* The entry for kind/key, made most recently used; a new one when absent
 * (the least recently used one evicted when full, counted). */
static struct pentry *add_hashed(struct posture *p, uint8_t kind, const char *lk, size_t len,
                                 uint64_t hash)
{
    bool added;
    const char *stored;
    struct pentry *e = lru_emplace_hashed(p->map, lk, len, hash, &added, &stored);
    if (!e || !added)
        return e;
    e->key = stored + strlen(pkind_names[kind]) + 1;
    e->kind = kind;
    sync_stats(p);
    return e;
}

static struct pentry *get_or_add(struct posture *p, uint8_t kind, const char *key)
{
    char lk[PLKEY_MAX];
    map_key(kind, key, lk, sizeof lk);
    size_t len = strlen(lk);
    return add_hashed(p, kind, lk, len, lru_hash(p->map, lk, len));
}

/* Copies what Redis and the state file carry (times, uids, detail) from src. */
static void set_learned(struct pentry *e, const struct pentry *src)
{
    e->seen = src->seen;
    e->first = src->first;
    e->ok = src->ok;
    e->fail = src->fail;
    memcpy(e->fail_detail, src->fail_detail, sizeof e->fail_detail);
    e->syn_ack = src->syn_ack;
}

/* ---- keys ---- */

/* "ADDR:PORT", "[ADDR]:PORT" for IPv6 (written without snprintf: per session) */
static void addr_port(const struct sw_addr *a, uint16_t port, char *buf, size_t len)
{
    char ip[64];
    sw_addr_str(a, ip, sizeof ip);
    size_t at = 0;
    if (len)
        buf[0] = '\0';
    if (a->family == 6)
        key_cat(buf, len, &at, "[", 1);
    key_cat(buf, len, &at, ip, strlen(ip));
    key_cat(buf, len, &at, a->family == 6 ? "]:" : ":", a->family == 6 ? 2 : 1);
    key_cat_port(buf, len, &at, port);
}

static void server_key(const struct smtp_facts *f, char *buf, size_t len)
{
    addr_port(&f->flow.server, f->flow.sport, buf, len);
}

/* The banner host (else the EHLO reply host), lowercased, with the port;
 * false when the server named itself only by an IP literal or not at all. */
static bool name_key(const struct smtp_facts *f, char *buf, size_t len)
{
    const char *h = f->banner_host && f->banner_host[0] ? f->banner_host : facts_s(f->ehlo_host);
    /* only names that can tell servers apart: a dot, not localhost */
    if (!h[0] || rules_host_is_ip_literal(h) || !strchr(h, '.') || !strncasecmp(h, "localhost", 9))
        return false;
    char low[FACTS_HOST_MAX];
    size_t i = 0;
    for (; h[i] && i + 1 < sizeof low; i++)
        low[i] = (char)((h[i] >= 'A' && h[i] <= 'Z') ? h[i] + 32 : h[i]);
    low[i] = 0;
    size_t at = 0;
    if (len)
        buf[0] = '\0';
    key_cat(buf, len, &at, low, i);
    key_cat(buf, len, &at, ":", 1);
    key_cat_port(buf, len, &at, f->flow.sport);
    return true;
}

static void client_key(const struct smtp_facts *f, char *buf, size_t len)
{
    char ip[64], srv[128];
    sw_addr_str(&f->flow.client, ip, sizeof ip);
    server_key(f, srv, sizeof srv);
    size_t at = 0;
    if (len)
        buf[0] = '\0';
    key_cat(buf, len, &at, ip, strlen(ip));
    key_cat(buf, len, &at, ">", 1);
    key_cat(buf, len, &at, srv, strlen(srv));
}

/* The client and the server's name (name_key); false without a usable name. */
static bool client_name_key(const struct smtp_facts *f, char *buf, size_t len)
{
    char ip[64], name[PKEY_MAX];
    if (!name_key(f, name, sizeof name))
        return false;
    sw_addr_str(&f->flow.client, ip, sizeof ip);
    /* "%s>%.*s" by hand: a name too long for the key is cut, the same way
     * every time */
    size_t at = 0, nl = strlen(name), max = len > 80 ? len - 80 : 1;
    if (len)
        buf[0] = '\0';
    key_cat(buf, len, &at, ip, strlen(ip));
    key_cat(buf, len, &at, ">", 1);
    key_cat(buf, len, &at, name, nl < max ? nl : max);
    return true;
}

/* ---- a session's keys ---- */

/* The keys of one session, each built (and hashed) once for the view and
 * the learning: the map's key ("server:192.0.2.1:25"), the entry's key
 * after the kind's name and ':'. */
enum skind { SK_SERVER, SK_NAME, SK_CLIENT, SK_CLIENT_NAME, SK_COUNT };
static const uint8_t skind_pkind[SK_COUNT] = {PK_SERVER, PK_NAME, PK_CLIENT, PK_CLIENT};

struct skey {
    bool built, have; /* have: false when the session has no such key */
    size_t len, off;
    uint64_t hash;
    char s[PLKEY_MAX];
};

struct skeys {
    const struct smtp_facts *f;
    struct skey k[SK_COUNT];
};

static void skeys_init(struct skeys *ks, const struct smtp_facts *f)
{
    ks->f = f;
    for (int i = 0; i < SK_COUNT; i++)
        ks->k[i].built = false;
}

/* The session's key of kind i, built on first use; NULL when it has none. */
static const struct skey *skey(struct posture *p, struct skeys *ks, enum skind i)
{
    struct skey *k = &ks->k[i];
    if (k->built)
        return k->have ? k : NULL;
    k->built = true;
    const char *kn = pkind_names[skind_pkind[i]];
    size_t at = 0;
    k->s[0] = '\0';
    key_cat(k->s, sizeof k->s, &at, kn, strlen(kn));
    key_cat(k->s, sizeof k->s, &at, ":", 1);
    k->off = at;
    /* the entry's key as map_key would copy it: at most PKEY_MAX - 1 bytes */
    char *e = k->s + at;
    switch (i) {
    case SK_SERVER:
        server_key(ks->f, e, PKEY_MAX);
        k->have = true;
        break;
    case SK_NAME:
        k->have = name_key(ks->f, e, PKEY_MAX);
        break;
    case SK_CLIENT:
        client_key(ks->f, e, PKEY_MAX);
        k->have = true;
        break;
    default:
        k->have = client_name_key(ks->f, e, PKEY_MAX);
        break;
    }
    if (!k->have)
        return NULL;
    k->len = at + strlen(e);
    k->hash = lru_hash(p->map, k->s, k->len);
    return k;
}

/* ---- Redis sharing ---- */

static int64_t wall_now(void)
{
    return (int64_t)time(NULL);
}

static bool redis_usable(struct posture *p)
{
    if (!p->redis || wall_now() < p->redis_retry_at)
        return false;
    if (redis_conn_is_connected(p->redis))
        return true;
    if (redis_conn_connect(p->redis) == SW_OK)
        return true;
    p->st.redis_errors++;
    p->redis_retry_at = wall_now() + 10;
    return false;
}

static void redis_failed(struct posture *p)
{
    p->st.redis_errors++;
    p->redis_retry_at = wall_now() + 10;
}

/* Merges an entry into the Redis hash by the time each fact was learned at,
 * so that the result does not depend on the order sensors write: ok and
 * fail keep the latest (ties: the greater uid), first the earliest (ties:
 * the smaller uid), seen the latest. Facts written by a version without
 * learned-at times (*_at) count as learned at their ts; an entry without
 * first gets its ok as first. ARGV: seen, ttl, then ts, at, uid of first,
 * ok and fail, then fail_detail, then syn_ack (0: none; kept with the
 * latest ok, or when the hash has none). */
static const char merge_lua[] =
    "local k = KEYS[1]\n"
    "local function num(f) return tonumber(redis.call('HGET', k, f) or '0') or 0 end\n"
    "local function str(f) return redis.call('HGET', k, f) or '' end\n"
    "local function at(p) local a = num(p .. '_at') if a == 0 then a = num(p .. '_ts') end "
    "return a end\n"
    "if num('first_ts') == 0 and num('ok_ts') > 0 then\n"
    "  redis.call('HSET', k, 'first_ts', str('ok_ts'), 'first_at', at('ok'), 'first_uid',\n"
    "             str('ok_uid'))\n"
    "end\n"
    "local function merge(p, i, earliest)\n"
    "  local ts, a, u = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), ARGV[i + 2]\n"
    "  if ts == 0 then return false end\n"
    "  local o, ou = at(p), str(p .. '_uid')\n"
    "  local take = num(p .. '_ts') == 0\n"
    "  if earliest then take = take or a < o or (a == o and u < ou)\n"
    "  else take = take or a > o or (a == o and u > ou) end\n"
    "  if take then\n"
    "    redis.call('HSET', k, p .. '_ts', ARGV[i], p .. '_at', ARGV[i + 1], p .. '_uid', u)\n"
    "  end\n"
    "  return take\n"
    "end\n"
    "if tonumber(ARGV[1]) > num('seen') then redis.call('HSET', k, 'seen', ARGV[1]) end\n"
    "merge('first', 3, true)\n"
    "local took_ok = merge('ok', 6, false)\n"
    "if merge('fail', 9, false) then redis.call('HSET', k, 'fail_detail', ARGV[12]) end\n"
    "if ARGV[13] ~= '0' and (took_ok or str('syn_ack') == '') then\n"
    "  redis.call('HSET', k, 'syn_ack', ARGV[13])\n"
    "end\n"
    "redis.call('EXPIRE', k, ARGV[2])\n"
    "return 1\n";

static void redis_write(struct posture *p, struct pentry *e, bool urgent)
{
    if (!p->redis)
        return;
    if (!urgent && e->redis_written && e->seen >= e->redis_written &&
        e->seen - e->redis_written < POSTURE_REDIS_REFRESH_US)
        return;
    if (!redis_usable(p))
        return;
    e->redis_written = e->seen;
    char rkey[PKEY_MAX + 40];
    snprintf(rkey, sizeof rkey, "stripwatch:posture:%s:%s", pkind_names[e->kind], e->key);
    char num[8][24], syn[16];
    const struct pfact *fa[3] = {&e->first, &e->ok, &e->fail};
    snprintf(num[0], sizeof num[0], "%lld", (long long)e->seen);
    snprintf(num[1], sizeof num[1], "%lld", (long long)(p->max_age_us / SW_USEC_PER_SEC));
    for (int i = 0; i < 3; i++) {
        snprintf(num[2 + 2 * i], sizeof num[0], "%lld", (long long)fa[i]->ts);
        snprintf(num[3 + 2 * i], sizeof num[0], "%lld", (long long)fa[i]->at);
    }
    snprintf(syn, sizeof syn, "%lu", (unsigned long)e->syn_ack);
    const char *argv[] = {"EVAL", merge_lua, "1",          rkey,           num[0], num[1],
                          num[2], num[3],    e->first.uid, num[4],         num[5], e->ok.uid,
                          num[6], num[7],    e->fail.uid,  e->fail_detail, syn};
    enum { NARGS = sizeof argv / sizeof argv[0] };
    size_t lens[NARGS];
    for (int i = 0; i < NARGS; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = NULL;
    if (redis_conn_append_argv(p->redis, NARGS, argv, lens) != SW_OK ||
        redis_conn_get_reply(p->redis, 500, &r) != SW_OK) {
        redis_failed(p);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR)
        p->st.redis_errors++;
    else
        p->st.redis_writes++;
    freeReplyObject(r);
}

/* The fact a field name ("ok_ts", "first_uid", ...) belongs to, and the
 * field's suffix; NULL for another name. */
static struct pfact *fact_of(struct pentry *e, const char *name, const char **suffix)
{
    static const char *const pre[] = {"first_", "ok_", "fail_"};
    struct pfact *fa[] = {&e->first, &e->ok, &e->fail};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(pre[i]);
        if (!strncmp(name, pre[i], n)) {
            *suffix = name + n;
            return fa[i];
        }
    }
    return NULL;
}

/* Sets the field name of e from Redis' text v; other names are ignored. */
static void fact_field(struct pentry *e, const char *name, const char *v)
{
    const char *sfx;
    struct pfact *f = fact_of(e, name, &sfx);
    if (!f)
        return;
    if (!strcmp(sfx, "ts"))
        f->ts = strtoll(v, NULL, 10);
    else if (!strcmp(sfx, "at"))
        f->at = strtoll(v, NULL, 10);
    else if (!strcmp(sfx, "uid"))
        snprintf(f->uid, sizeof f->uid, "%s", v);
}

/* What an entry written before learned-at times and first existed means:
 * a fact learned at its ts; its ok as first. */
static void fact_defaults(struct pentry *e)
{
    struct pfact *fa[] = {&e->first, &e->ok, &e->fail};
    for (int i = 0; i < 3; i++)
        if (fa[i]->ts && !fa[i]->at)
            fa[i]->at = fa[i]->ts;
    if (!e->first.ts && e->ok.ts)
        e->first = e->ok;
}

static int64_t reply_ll(const redisReply *r, size_t i)
{
    return r->element[i]->type == REDIS_REPLY_STRING ? strtoll(r->element[i]->str, NULL, 10) : 0;
}

/* On a memory miss: the entry another sensor wrote, copied into memory. */
static struct pentry *redis_read(struct posture *p, uint8_t kind, const char *key, sw_usec now)
{
    if (!redis_usable(p))
        return NULL;
    char rkey[PKEY_MAX + 40];
    snprintf(rkey, sizeof rkey, "stripwatch:posture:%s:%s", pkind_names[kind], key);
    redisReply *r = redis_conn_command(p->redis, 500, "HGETALL %s", rkey);
    if (!r) {
        redis_failed(p);
        return NULL;
    }
    p->st.redis_reads++;
    struct pentry tmp;
    memset(&tmp, 0, sizeof tmp);
    bool any = false;
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            if (r->element[i]->type != REDIS_REPLY_STRING ||
                r->element[i + 1]->type != REDIS_REPLY_STRING)
                continue;
            const char *k = r->element[i]->str, *v = r->element[i + 1]->str;
            any = true;
            if (!strcmp(k, "seen"))
                tmp.seen = reply_ll(r, i + 1);
            else if (!strcmp(k, "fail_detail"))
                snprintf(tmp.fail_detail, sizeof tmp.fail_detail, "%s", v);
            else if (!strcmp(k, "syn_ack"))
                tmp.syn_ack = (uint32_t)strtoul(v, NULL, 10);
            else
                fact_field(&tmp, k, v);
        }
    }
    freeReplyObject(r);
    fact_defaults(&tmp);
    struct pentry *e = get_or_add(p, kind, key);
    if (!e)
        return NULL;
    if (!any) { /* remember the miss for a while: an empty probe entry */
        e->seen = now;
        e->redis_miss = now;
        return e;
    }
    e->redis_miss = 0;
    set_learned(e, &tmp);
    return e;
}

int posture_attach_redis(struct posture *p, const char *url, const char *ca_file, char *err,
                         size_t errlen)
{
    struct redis_conn_opts o;
    redis_conn_opts_defaults(&o);
    o.ca_file = ca_file;
    o.connect_timeout_ms = 1000;
    p->redis = redis_conn_new(url, &o, err, errlen);
    return p->redis ? SW_OK : SW_EIO;
}

/* ---- view and learn ---- */

/* The entry for the session's key of kind i (NULL: none, or it has no such
 * key), from memory without touching recency, else from Redis. */
static struct pentry *lookup(struct posture *p, struct skeys *ks, enum skind i, sw_usec now)
{
    const struct skey *k = skey(p, ks, i);
    if (!k)
        return NULL;
    uint8_t kind = skind_pkind[i];
    struct pentry *e = lru_peek_hashed(p->map, k->s, k->hash);
    if (p->redis &&
        (!e || (e->redis_miss && !e->ok.ts && !e->fail.ts &&
                (now < e->redis_miss || now - e->redis_miss >= POSTURE_REDIS_REFRESH_US))))
        e = redis_read(p, kind, k->s + k->off, now);
    if (e && expired(p, e, now)) {
        remove_entry(p, e);
        p->st.expired++;
        return NULL;
    }
    return e;
}

/* f learned before the sensor had the whole session judged (its end)? */
static bool fact_before(const struct pfact *f, sw_usec end)
{
    return f->ts && f->at < end;
}

/* The latest success learned before end (for "not followed by a success"):
 * the latest when it is before end, else the earliest when that is. */
static const struct pfact *ok_latest_before(const struct pentry *e, sw_usec end)
{
    if (fact_before(&e->ok, end))
        return &e->ok;
    return fact_before(&e->first, end) ? &e->first : NULL;
}

/* A failed attempt in e that explains a plaintext session starting at now
 * and ending at end: learned before end, within the window before now, and
 * no success learned before end that came after it. */
static bool failure_in_window(const struct posture *p, const struct pentry *e, sw_usec now,
                              sw_usec end)
{
    if (!e || !fact_before(&e->fail, end))
        return false;
    const struct pfact *ok = ok_latest_before(e, end);
    return (!ok || e->fail.ts >= ok->ts) && now >= e->fail.ts &&
           now - e->fail.ts <= p->fallback_window_us;
}

/* What posture shows session f: for "offered" / "used", the first session
 * that showed it, if it was learned before f's end, when the sensor judges
 * f. That is what a single run in capture order knows at that point, so a
 * fact learned at a later capture time (by another sensor, an earlier run,
 * a state file) is not shown, and the earliest is the one every run agrees
 * on whatever it learned after. */
static void view_of(struct posture *p, struct skeys *ks, struct posture_view *out)
{
    const struct smtp_facts *f = ks->f;
    memset(out, 0, sizeof *out);
    sw_usec now = f->flow.start; /* ageing and the fallback window */
    sw_usec end = f->last_ts > now ? f->last_ts : now;
    /* the two keys every session looks up, fetched from memory together */
    const uint64_t h[2] = {skey(p, ks, SK_SERVER)->hash, skey(p, ks, SK_CLIENT)->hash};
    lru_prefetch(p->map, h, 2);
    struct pentry *e = lookup(p, ks, SK_SERVER, now);
    if (e && fact_before(&e->first, end)) {
        out->server_offered = true;
        key_copy(out->server_key, sizeof out->server_key,
                 ks->k[SK_SERVER].s + ks->k[SK_SERVER].off);
        memcpy(out->server_uid, e->first.uid, sizeof out->server_uid);
        out->server_ts = e->first.ts;
        out->server_syn_ack = e->syn_ack;
    } else if ((e = lookup(p, ks, SK_NAME, now)) && fact_before(&e->first, end)) {
        out->server_offered = true;
        out->server_by_name = true;
        key_copy(out->server_key, sizeof out->server_key, ks->k[SK_NAME].s + ks->k[SK_NAME].off);
        memcpy(out->server_uid, e->first.uid, sizeof out->server_uid);
        out->server_ts = e->first.ts;
    }
    e = lookup(p, ks, SK_CLIENT, now);
    if (e && fact_before(&e->first, end)) {
        out->client_used = true;
        memcpy(out->client_uid, e->first.uid, sizeof out->client_uid);
        out->client_ts = e->first.ts;
    }
    /* a failure explains this session when it was learned before its end,
     * came within the window before this session began, and no later
     * success was learned: first to this address, else to a server of the
     * same name */
    if (!failure_in_window(p, e, now, end) && skey(p, ks, SK_CLIENT_NAME)) {
        e = lookup(p, ks, SK_CLIENT_NAME, now);
        out->client_failed_by_name = failure_in_window(p, e, now, end);
    }
    if (failure_in_window(p, e, now, end)) {
        out->client_failed = true;
        memcpy(out->client_failed_uid, e->fail.uid, sizeof out->client_failed_uid);
        out->client_failed_ts = e->fail.ts;
        key_copy(out->client_failed_detail, sizeof out->client_failed_detail, e->fail_detail);
    }
}

static bool has_anom_dir(const struct smtp_facts *f, enum anomaly_kind k, enum stream_dir dir)
{
    for (size_t i = 0; i < f->n_anomalies; i++)
        if (f->anomalies[i].kind == k && f->anomalies[i].dir == dir)
            return true;
    return false;
}

static void learned(struct posture *p, struct pentry *e, bool urgent)
{
    p->st.learned++;
    e->redis_miss = 0;
    redis_write(p, e, urgent);
}

/* The fact f shows (started at its start, learned at its end). */
static struct pfact fact_from(const struct smtp_facts *f)
{
    struct pfact x;
    memset(&x, 0, sizeof x);
    x.ts = f->flow.start ? f->flow.start : 1;
    x.at = f->last_ts > f->flow.start ? f->last_ts : f->flow.start;
    memcpy(x.uid, f->flow.uid, sizeof x.uid);
    return x;
}

/* x learned later than have (ties: the greater uid); any fact is later than
 * none. The same rule as merge_lua's, so merging gives one answer whatever
 * the order. */
static bool fact_later(const struct pfact *x, const struct pfact *have)
{
    return !have->ts || x->at > have->at || (x->at == have->at && strcmp(x->uid, have->uid) > 0);
}

static bool fact_earlier(const struct pfact *x, const struct pfact *have)
{
    return !have->ts || x->at < have->at || (x->at == have->at && strcmp(x->uid, have->uid) < 0);
}

/* Records "offered" / "used" shown by f; true when it is news for other
 * sensors (the first, or an earlier first). */
static bool learn_ok(struct pentry *e, const struct smtp_facts *f)
{
    struct pfact x = fact_from(f);
    if (x.at > e->seen)
        e->seen = x.at;
    bool news = fact_earlier(&x, &e->first);
    if (news)
        e->first = x;
    if (fact_later(&x, &e->ok))
        e->ok = x;
    return news;
}

/* The client's TLS attempt of f, as a client entry records it. */
static void learn_client(struct posture *p, struct pentry *e, const struct smtp_facts *f)
{
    if (f->tls->established) {
        learned(p, e, learn_ok(e, f));
        return;
    }
    struct pfact x = fact_from(f);
    /* dated by the attempt (the STARTTLS command; the start on an
     * implicit-TLS port), not by the session's start: the window runs from
     * it, and a client that gives up reconnects before the old
     * connection's last FIN */
    if (f->starttls_requested && f->starttls_ts >= f->flow.start)
        x.ts = f->starttls_ts;
    if (x.at > e->seen)
        e->seen = x.at;
    if (!fact_later(&x, &e->fail))
        return; /* a later failure is known already */
    e->fail = x;
    if (f->starttls_requested && f->starttls_code && f->starttls_code != 220)
        snprintf(e->fail_detail, sizeof e->fail_detail, "STARTTLS answered %d", f->starttls_code);
    else if (f->tls->alert_level >= 0 && (f->tls->client_hello || f->tls->server_hello))
        snprintf(e->fail_detail, sizeof e->fail_detail,
                 "TLS handshake failed (alert level %d description %d)", f->tls->alert_level,
                 f->tls->alert_desc);
    else if (f->starttls_requested && !f->starttls_code)
        snprintf(e->fail_detail, sizeof e->fail_detail, "STARTTLS not answered");
    else if (has_anom_dir(f, ANOM_NOT_TLS_AFTER_STARTTLS, DIR_S2C))
        snprintf(e->fail_detail, sizeof e->fail_detail, "%s",
                 f->tls->client_hello ? "ClientHello answered in plaintext"
                                      : "plaintext reply where TLS was expected");
    else if (f->tls->client_hello)
        snprintf(e->fail_detail, sizeof e->fail_detail,
                 "ClientHello not answered (reset or timeout)");
    else
        snprintf(e->fail_detail, sizeof e->fail_detail, "TLS handshake not completed");
    learned(p, e, true); /* news for other sensors */
}

/* The session's entry of kind i, made most recently used (a new one when
 * absent); NULL when the session has no such key or out of memory. */
static struct pentry *learn_entry(struct posture *p, struct skeys *ks, enum skind i)
{
    const struct skey *k = skey(p, ks, i);
    return k ? add_hashed(p, skind_pkind[i], k->s, k->len, k->hash) : NULL;
}

static void learn(struct posture *p, struct skeys *ks)
{
    const struct smtp_facts *f = ks->f;
    struct pentry *e;
    if (f->starttls_offered) {
        if ((e = learn_entry(p, ks, SK_SERVER)) != NULL) {
            if (f->flow.syn_ack)
                e->syn_ack = f->flow.syn_ack;
            learned(p, e, learn_ok(e, f));
        }
        if ((e = learn_entry(p, ks, SK_NAME)) != NULL)
            learned(p, e, learn_ok(e, f));
    }
    /* the client's TLS: used (STARTTLS 220 + handshake, or implicit TLS) or
     * failed (STARTTLS refused, or 220 and then anything but a completed
     * handshake: a plaintext reply, a TLS alert, a reset, silence). A client
     * that went on in plaintext itself after 220 (a capture written after
     * decryption, a device answering STARTTLS) made no attempt to judge. */
    bool tried = f->starttls_requested || f->tls->implicit;
    if (!tried || has_anom_dir(f, ANOM_NOT_TLS_AFTER_STARTTLS, DIR_C2S))
        return;
    if ((e = learn_entry(p, ks, SK_CLIENT)) != NULL)
        learn_client(p, e, f);
    if ((e = learn_entry(p, ks, SK_CLIENT_NAME)) != NULL)
        learn_client(p, e, f);
}

void posture_view_learn(struct posture *p, const struct smtp_facts *f, struct posture_view *out)
{
    struct skeys ks;
    skeys_init(&ks, f);
    view_of(p, &ks, out);
    learn(p, &ks);
}

/* ---- state file ---- */

struct collect {
    struct pentry **v;
    size_t n, cap;
};

static int collect_entry(void *arg, const char *key, void *value)
{
    struct collect *c = arg;
    (void)key;
    if (c->n < c->cap)
        c->v[c->n++] = value;
    return 0;
}

/* Format: {"stripwatch_posture": 1, "entries": [{"kind": "server", "key":
 * "192.0.2.1:25", "seen": usec, "first_ts": usec, "first_at": usec,
 * "first_uid": "S...", "ok_ts": usec, "ok_at": usec, "ok_uid": "S...",
 * "fail_ts": usec, "fail_at": usec, "fail_uid": "...", "fail_detail": "..."},
 * ...]}, least recently used first. Times are microseconds since the epoch
 * (capture time): *_ts when the session that showed it started, *_at when it
 * was learned (that session's end). first_* and *_at are optional when
 * loading (files written before they existed: learned at *_ts, first =
 * ok), and so is "syn_ack": n (a server's SYN-ACK fingerprint,
 * flow_syn_ack_fp). */
int posture_save(struct posture *p, const char *path, char *err, size_t errlen)
{
    /* oldest first: the map walks newest first, so collect and walk back */
    size_t cap = lru_count(p->map);
    struct collect c = {malloc((cap ? cap : 1) * sizeof *c.v), 0, cap};
    if (!c.v) {
        snprintf(err, errlen, "%s: cannot write state file: out of memory", path);
        return SW_ENOMEM;
    }
    lru_foreach(p->map, collect_entry, &c);
    json_t *arr = json_array();
    while (c.n > 0) {
        const struct pentry *e = c.v[--c.n];
        if (!e->ok.ts && !e->fail.ts)
            continue; /* an empty Redis probe */
        json_t *o = json_pack("{s:s, s:s, s:I}", "kind", pkind_names[e->kind], "key", e->key,
                              "seen", (json_int_t)e->seen);
        static const char *const pre[] = {"first", "ok", "fail"};
        const struct pfact *fa[] = {&e->first, &e->ok, &e->fail};
        for (int i = 0; o && i < 3; i++) {
            char n[3][16];
            snprintf(n[0], sizeof n[0], "%s_ts", pre[i]);
            snprintf(n[1], sizeof n[1], "%s_at", pre[i]);
            snprintf(n[2], sizeof n[2], "%s_uid", pre[i]);
            json_object_set_new(o, n[0], json_integer(fa[i]->ts));
            json_object_set_new(o, n[1], json_integer(fa[i]->at));
            json_object_set_new(o, n[2], json_string(fa[i]->uid));
        }
        if (o)
            json_object_set_new(o, "fail_detail", json_string(e->fail_detail));
        if (o && e->syn_ack) /* optional: older files have none */
            json_object_set_new(o, "syn_ack", json_integer((json_int_t)e->syn_ack));
        json_array_append_new(arr, o);
    }
    free(c.v);
    json_t *root = json_pack("{s:i, s:o}", "stripwatch_posture", 1, "entries", arr);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (!root || json_dump_file(root, tmp, JSON_INDENT(1)) != 0) {
        json_decref(root);
        unlink(tmp);
        snprintf(err, errlen, "%s: cannot write state file", path);
        return SW_EIO;
    }
    json_decref(root);
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: cannot write state file: %s", path, strerror(errno));
        unlink(tmp);
        return SW_EIO;
    }
    p->st.saved = lru_count(p->map);
    return SW_OK;
}

static int bad(char *err, size_t errlen, const char *path, size_t i, const char *what)
{
    snprintf(err, errlen, "%s: entries[%zu]: %s", path, i, what);
    return SW_EPROTO;
}

static bool get_i64(json_t *o, const char *k, int64_t *v)
{
    json_t *x = json_object_get(o, k);
    if (!json_is_integer(x))
        return false;
    *v = json_integer_value(x);
    return true;
}

static bool get_str(json_t *o, const char *k, char *dst, size_t len)
{
    json_t *x = json_object_get(o, k);
    if (!json_is_string(x) || strlen(json_string_value(x)) >= len)
        return false;
    memcpy(dst, json_string_value(x), strlen(json_string_value(x)) + 1);
    return true;
}

int posture_load(struct posture *p, const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        if (errno == ENOENT)
            return SW_OK; /* first run: the file is written at the end */
        snprintf(err, errlen, "%s: cannot read state file: %s", path, strerror(errno));
        return SW_EIO;
    }
    json_error_t je;
    json_t *root = json_loadf(fp, 0, &je);
    fclose(fp);
    if (!root) {
        snprintf(err, errlen, "%s: line %d: %s", path, je.line, je.text);
        return SW_EPROTO;
    }
    json_t *ver = json_object_get(root, "stripwatch_posture");
    json_t *arr = json_object_get(root, "entries");
    if (!json_is_integer(ver) || json_integer_value(ver) != 1 || !json_is_array(arr)) {
        json_decref(root);
        snprintf(err, errlen,
                 "%s: not a stripwatch state file (want \"stripwatch_posture\": 1 "
                 "and an \"entries\" array)",
                 path);
        return SW_EPROTO;
    }
    size_t i;
    json_t *o;
    int rc = SW_OK;
    json_array_foreach(arr, i, o)
    {
        struct pentry t;
        memset(&t, 0, sizeof t);
        char kind[16], key[PKEY_MAX];
        int k;
        if (!json_is_object(o)) {
            rc = bad(err, errlen, path, i, "not an object");
            break;
        }
        if (!get_str(o, "kind", kind, sizeof kind)) {
            rc = bad(err, errlen, path, i, "kind: missing or not a string");
            break;
        }
        for (k = 0; k < PK_COUNT && strcmp(kind, pkind_names[k]); k++)
            ;
        if (k == PK_COUNT) {
            rc = bad(err, errlen, path, i, "kind: not server, name or client");
            break;
        }
        if (!get_str(o, "key", key, sizeof key) || !key[0]) {
            rc = bad(err, errlen, path, i, "key: missing, empty or too long");
            break;
        }
        if (!get_i64(o, "seen", &t.seen) || !get_i64(o, "ok_ts", &t.ok.ts) ||
            !get_i64(o, "fail_ts", &t.fail.ts)) {
            rc = bad(err, errlen, path, i, "seen/ok_ts/fail_ts: missing or not integers");
            break;
        }
        if (!get_str(o, "ok_uid", t.ok.uid, sizeof t.ok.uid) ||
            !get_str(o, "fail_uid", t.fail.uid, sizeof t.fail.uid) ||
            !get_str(o, "fail_detail", t.fail_detail, sizeof t.fail_detail)) {
            rc = bad(err, errlen, path, i, "ok_uid/fail_uid/fail_detail: missing or too long");
            break;
        }
        if ((json_object_get(o, "ok_at") && !get_i64(o, "ok_at", &t.ok.at)) ||
            (json_object_get(o, "fail_at") && !get_i64(o, "fail_at", &t.fail.at)) ||
            (json_object_get(o, "first_at") && !get_i64(o, "first_at", &t.first.at)) ||
            (json_object_get(o, "first_ts") && !get_i64(o, "first_ts", &t.first.ts)) ||
            (json_object_get(o, "first_uid") &&
             !get_str(o, "first_uid", t.first.uid, sizeof t.first.uid))) {
            rc = bad(err, errlen, path, i,
                     "first_ts/first_at/ok_at/fail_at/first_uid: not integers and a string, or "
                     "too long");
            break;
        }
        fact_defaults(&t);
        json_t *sa = json_object_get(o, "syn_ack");
        if (sa && (!json_is_integer(sa) || json_integer_value(sa) < 0 ||
                   json_integer_value(sa) > (json_int_t)UINT32_MAX)) {
            rc = bad(err, errlen, path, i, "syn_ack: not an integer in 0-4294967295");
            break;
        }
        t.syn_ack = sa ? (uint32_t)json_integer_value(sa) : 0;
        struct pentry *e = get_or_add(p, (uint8_t)k, key);
        if (!e) {
            snprintf(err, errlen, "%s: out of memory", path);
            rc = SW_ENOMEM;
            break;
        }
        set_learned(e, &t);
        p->st.loaded++;
    }
    json_decref(root);
    return rc;
}
