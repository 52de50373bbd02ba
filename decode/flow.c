/* SPDX-License-Identifier: Apache-2.0 */
/* flow.c: the flow table: bidirectional 5-tuple + VLAN keys, symmetric hash,
 * client/server roles, deterministic uids, timeouts on a capture clock, and a
 * memcap and flow bound met by eviction by class (half-open first, sessions
 * last), with an emergency mode of short timeouts under pressure.
 * RFC 9293 (TCP connection states).
 *
 * Flows live in a chained hash table and in one of four LRU lists (half-open,
 * established without a consumer session, established with one, closed),
 * each ordered by last activity on the table's monotonic clock, so expiry
 * and eviction only ever look at list heads.
 *
 * The clock: capture time never goes backwards here (an older timestamp
 * leaves the clock where it is), and a forward jump of more than a day is
 * only believed once a second, different timestamp confirms it, so that one
 * corrupt timestamp (a frame dated 2063) cannot expire every flow. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "decode/flow_int.h"

#define FLOW_CLOCK_JUMP  (86400 * SW_USEC_PER_SEC)
#define FLOW_MIN_BUCKETS 1024u
/* emergency mode: entered above 90 % of a bound, left under 70 % of both */
#define FLOW_EMERG_ENTER 90u
#define FLOW_EMERG_LEAVE 70u

const char *flow_end_str(enum flow_end e)
{
    switch (e) {
    case FLOW_END_FIN:
        return "fin";
    case FLOW_END_RST:
        return "rst";
    case FLOW_END_TIMEOUT:
        return "timeout";
    case FLOW_END_EVICTED:
        return "evicted";
    case FLOW_END_SHUTDOWN:
        return "shutdown";
    }
    return "unknown";
}

static const uint16_t flow_default_ports[] = {25, 587, 465, 2525};

void flow_cfg_defaults(struct flow_cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->memcap = 512ull << 20;
    c->max_flows = 1000000;
    c->max_queued_segs = 256;
    c->max_queued_bytes = 1u << 20;
    c->timeout_syn = 30 * SW_USEC_PER_SEC;
    c->timeout_est = 300 * SW_USEC_PER_SEC;
    c->timeout_closed = 10 * SW_USEC_PER_SEC;
    c->emerg_timeout_syn = 3 * SW_USEC_PER_SEC;
    c->emerg_timeout_est = 30 * SW_USEC_PER_SEC;
    c->emerg_timeout_closed = 1 * SW_USEC_PER_SEC;
    c->server_ports = flow_default_ports;
    c->n_server_ports = sizeof(flow_default_ports) / sizeof(flow_default_ports[0]);
}

/* ---- hashing ---- */

static uint64_t mix64(uint64_t x)
{
    /* the splitmix64 finaliser */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static uint64_t hash_bytes(uint64_t seed, const void *data, size_t len)
{
    const uint8_t *b = data;
    uint64_t h = mix64(seed ^ (len * 0x9e3779b97f4a7c15ull));
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        h = mix64(h ^ w) + 0x9e3779b97f4a7c15ull;
        b += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, b, len);
    return mix64(h ^ w ^ ((uint64_t)len << 56));
}

/* A flow key as six words: the image of struct flow_key's bytes on this
 * little-endian host (the last word: family, the padding byte, zeros). */
struct key_words {
    uint64_t w[6];
};
_Static_assert(sizeof(struct flow_key) == 42 && offsetof(struct flow_key, b) == 16 &&
                   offsetof(struct flow_key, pa) == 32 && offsetof(struct flow_key, pb) == 34 &&
                   offsetof(struct flow_key, vlan) == 36 && offsetof(struct flow_key, family) == 40,
               "flow_key is five words, the family and a padding byte");
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "key words are a flow key's bytes on a little-endian host"
#endif

/* The table's bucket hash of a key, seeded with the table's random seed: the
 * key's six words folded pairwise by 64x64->128-bit multiplications (as in
 * wyhash), which run in parallel, then one splitmix64 finaliser. About a
 * third of hash_bytes()'s serial chain of six finalisers per packet. */
static uint32_t key_hash(uint64_t seed, const struct key_words *kw)
{
    const uint64_t *w = kw->w;
    const uint64_t s0 = seed ^ 0xa0761d6478bd642full, s1 = seed ^ 0xe7037ed1a0b428dbull,
                   s2 = seed ^ 0x8ebc6af09c88c6e3ull;
    unsigned __int128 m0 = (unsigned __int128)(w[0] ^ s0) * (w[1] ^ s1);
    unsigned __int128 m1 = (unsigned __int128)(w[2] ^ s1) * (w[3] ^ s2);
    unsigned __int128 m2 = (unsigned __int128)(w[4] ^ s2) * (w[5] ^ s0);
    uint64_t h = (uint64_t)m0 ^ (uint64_t)(m0 >> 64);
    h ^= ((uint64_t)m1 ^ (uint64_t)(m1 >> 64)) * 0x9e3779b97f4a7c15ull;
    h += (uint64_t)m2 ^ (uint64_t)(m2 >> 64);
    return (uint32_t)mix64(h);
}

static uint32_t load32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Builds the canonical key of p as key words; *from_a tells whether p's
 * source is the key's endpoint a. Everything comes from p into registers:
 * nothing read back from a key just stored byte by byte, which stalled
 * every packet's hash and compare on store forwarding. */
static void key_build(const struct pkt *p, struct key_words *kw, bool *from_a)
{
    bool v6 = p->src.family == 6;
    int c;
    uint64_t s0, s1 = 0, d0, d1 = 0;
    if (!v6) {
        uint32_t sa = load32(p->src.b), da = load32(p->dst.b), sr, dr;
        c = sa < da ? -1 : sa > da;
        memcpy(&sr, p->src.b, 4);
        memcpy(&dr, p->dst.b, 4);
        s0 = sr;
        d0 = dr;
    } else {
        c = memcmp(p->src.b, p->dst.b, 16);
        memcpy(&s0, p->src.b, 8);
        memcpy(&s1, p->src.b + 8, 8);
        memcpy(&d0, p->dst.b, 8);
        memcpy(&d1, p->dst.b + 8, 8);
    }
    bool src_lower = c < 0 || (c == 0 && p->sport <= p->dport);
    uint16_t pa = src_lower ? p->sport : p->dport, pb = src_lower ? p->dport : p->sport;
    uint16_t v0 = p->n_vlan >= 1 ? p->vlan[0] : 0, v1 = p->n_vlan >= 2 ? p->vlan[1] : 0;
    kw->w[0] = src_lower ? s0 : d0;
    kw->w[1] = src_lower ? s1 : d1;
    kw->w[2] = src_lower ? d0 : s0;
    kw->w[3] = src_lower ? d1 : s1;
    kw->w[4] = (uint64_t)pa | (uint64_t)pb << 16 | (uint64_t)v0 << 32 | (uint64_t)v1 << 48;
    kw->w[5] = p->src.family;
    *from_a = src_lower;
}

/* The key whose bytes the words are. */
static void key_of_words(const struct key_words *kw, struct flow_key *k)
{
    memcpy(k, kw->w, sizeof(*k));
}

/* f's key equals the words? (f's key is old memory: loading it is cheap) */
static bool key_eq(const struct flow_key *k, const struct key_words *kw)
{
    uint64_t w[5];
    uint16_t last;
    memcpy(w, k, sizeof(w));
    memcpy(&last, (const char *)k + sizeof(w), sizeof(last));
    return ((w[0] ^ kw->w[0]) | (w[1] ^ kw->w[1]) | (w[2] ^ kw->w[2]) | (w[3] ^ kw->w[3]) |
            (w[4] ^ kw->w[4]) | (last ^ kw->w[5])) == 0;
}

#define FLOW_HASH_SEED 0x73747269707761ull /* fixed: shards and uids are stable */

uint32_t flow_hash(const struct pkt *p)
{
    struct key_words kw;
    bool from_a;
    key_build(p, &kw, &from_a);
    struct flow_key k;
    key_of_words(&kw, &k);
    return (uint32_t)hash_bytes(FLOW_HASH_SEED, &k, sizeof(k));
}

/* ---- memory ---- */

static void mem_charge(struct flow_table *t, size_t size)
{
    t->st.bytes_in_use += size;
    if (t->st.bytes_in_use > t->st.bytes_peak)
        t->st.bytes_peak = t->st.bytes_in_use;
}

void flow_mem_release(struct flow_table *t, size_t size)
{
    t->st.bytes_in_use -= size;
}

static size_t flow_size(const struct flow *f)
{
    return (f->flags & F_TOMB) ? FLOW_TOMB_SIZE : f->emb ? FLOW_EMB_SIZE : sizeof(struct flow);
}

/* ---- entry slabs (decode/slab.h) ---- */

/* The slab of entries of size sz (FLOW_TOMB_SIZE, FLOW_EMB_SIZE or full). */
static struct sw_slab *slab_of(struct flow_table *t, size_t sz)
{
    return sz == FLOW_TOMB_SIZE  ? &t->slab_tomb
           : sz == FLOW_EMB_SIZE ? &t->slab_emb
                                 : &t->slab_full;
}

/* ---- lists ---- */

static void lru_unlink(struct flow_table *t, struct flow *f)
{
    struct flow_lru *l = &t->lru[f->list];
    if (f->prev)
        f->prev->next = f->next;
    else
        l->head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    else
        l->tail = f->prev;
    f->prev = f->next = NULL;
}

static void lru_append(struct flow_table *t, struct flow *f, enum flow_list which)
{
    struct flow_lru *l = &t->lru[which];
    f->list = (uint8_t)which;
    f->next = NULL;
    f->prev = l->tail;
    if (l->tail)
        l->tail->next = f;
    else
        l->head = f;
    l->tail = f;
}

/* No consumer session to lose: a tombstone, an entry done for the
 * consumer, a lazy flow not opened yet, or both directions stopped. */
static bool flow_is_bare(const struct flow *f)
{
    if ((f->flags & (F_TOMB | F_DONE)) || f->emb)
        return true;
    if (!f->cstate)
        return true;
    return (f->d[0].flags & FD_STOP) && (f->d[1].flags & FD_STOP);
}

static void lru_touch(struct flow_table *t, struct flow *f, enum flow_list which)
{
    if (which == FL_EST || which == FL_BARE)
        which = flow_is_bare(f) ? FL_BARE : FL_EST;
    f->last = t->clock;
    if (f->list == which && t->lru[which].tail == f)
        return; /* the most recent already (a burst of one flow) */
    lru_unlink(t, f);
    lru_append(t, f, which);
}

/* ---- table ---- */

/* f->hash is the key hashed with the table's random seed (not flow_hash(),
 * whose fixed seed would let crafted tuples share one chain). */
static uint32_t bucket_of(const struct flow_table *t, uint32_t hash)
{
    return hash & (t->n_buckets - 1);
}

static void table_grow(struct flow_table *t)
{
    uint32_t nb = t->n_buckets * 2;
    if (nb < t->n_buckets)
        return;
    size_t add = (size_t)(nb - t->n_buckets) * sizeof(struct flow *);
    if (t->st.bytes_in_use + add > t->cfg.memcap)
        return; /* chains get longer; the memcap stays the law */
    struct flow **nbk = calloc(nb, sizeof(*nbk));
    if (!nbk)
        return;
    uint32_t old = t->n_buckets;
    t->n_buckets = nb;
    for (uint32_t i = 0; i < old; i++) {
        struct flow *f = t->buckets[i];
        while (f) {
            struct flow *n = f->hnext;
            uint32_t b = bucket_of(t, f->hash);
            f->hnext = nbk[b];
            nbk[b] = f;
            f = n;
        }
    }
    free(t->buckets);
    t->buckets = nbk;
    mem_charge(t, add);
}

struct flow_table *flow_table_new(const struct flow_cfg *cfg, const struct stream_consumer *c)
{
    struct flow_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->cfg = *cfg;
    t->c = *c;
    if (!t->cfg.max_queued_segs)
        t->cfg.max_queued_segs = 1;
    if (t->cfg.max_queued_segs > UINT16_MAX) /* flow_dir.q_n */
        t->cfg.max_queued_segs = UINT16_MAX;
    t->n_buckets = FLOW_MIN_BUCKETS;
    t->buckets = calloc(t->n_buckets, sizeof(*t->buckets));
    if (!t->buckets) {
        free(t);
        return NULL;
    }
    mem_charge(t, t->n_buckets * sizeof(*t->buckets));
    sw_slab_init(&t->slab_tomb, FLOW_TOMB_SIZE);
    sw_slab_init(&t->slab_emb, FLOW_EMB_SIZE);
    sw_slab_init(&t->slab_full, sizeof(struct flow));
    if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != (ssize_t)sizeof(t->seed))
        t->seed = (uint64_t)(uintptr_t)t ^ 0x5bd1e9955bd1e995ull;
    return t;
}

static struct flow *table_find(struct flow_table *t, const struct key_words *kw, uint32_t hash)
{
    for (struct flow *f = t->buckets[bucket_of(t, hash)]; f; f = f->hnext)
        if (f->hash == hash && key_eq(&f->key, kw))
            return f;
    return NULL;
}

/* Unlinks f from the table and frees it (no consumer call). */
static void flow_destroy(struct flow_table *t, struct flow *f)
{
    /* flow_table_free empties the whole table: its chains are dropped with
     * the bucket array (a cache miss per flow spared) */
    if (!t->tearing_down) {
        struct flow **pp = &t->buckets[bucket_of(t, f->hash)];
        while (*pp != f)
            pp = &(*pp)->hnext;
        *pp = f->hnext;
    }
    lru_unlink(t, f);
    if (!(f->flags & F_TOMB) && !f->emb)
        reasm_free(t, f);
    size_t sz = flow_size(f);
    flow_mem_release(t, sz);
    t->n_flows--;
    t->st.flows_active = t->n_flows;
    sw_slab_free(slab_of(t, sz), f);
}

/* Ends the flow for the consumer: delivers what is queued (holes as gaps),
 * then close(). The entry itself stays (see flow_destroy). */
static void flow_finish(struct flow_table *t, struct flow *f, enum flow_end why)
{
    if (f->flags & (F_TOMB | F_DONE))
        return;
    if (f->emb) { /* a lazy flow never opened, nothing queued */
        f->flags |= F_DONE;
        if ((f->flags & F_LAZY) && t->c.unopened)
            t->c.unopened(t->c.ctx, why);
        f->flags &= (uint8_t)~F_LAZY;
        return;
    }
    struct flow *cur = t->cur;
    t->cur = f;
    reasm_flush(t, f);
    reasm_free(t, f);
    f->flags |= F_DONE;
    if (f->cstate) {
        if (t->c.close)
            t->c.close(f->cstate, why, t->clock);
    } else if ((f->flags & F_LAZY) && t->c.unopened) {
        t->c.unopened(t->c.ctx, why);
    }
    f->flags &= (uint8_t)~F_LAZY;
    f->cstate = NULL;
    t->cur = cur;
}

/* The next flow to evict other than keep, and its class (a flow_stats
 * counter): an entry already closed for the consumer (they only absorb late
 * packets), the oldest half-open flow, the oldest flow without a session,
 * then the least recently active session (established or closing). */
static struct flow *victim(struct flow_table *t, const struct flow *keep, uint64_t **counter)
{
    int look = 8; /* bounded: half-closed flows may sit in front */
    for (struct flow *f = t->lru[FL_CLOSED].head; f && look-- > 0; f = f->next)
        if (f != keep && (f->flags & (F_DONE | F_TOMB))) {
            *counter = &t->st.evicted_done;
            return f;
        }
    static const int order[] = {FL_SYN, FL_BARE};
    uint64_t *counters[] = {&t->st.evicted_half_open, &t->st.evicted_no_session};
    for (int i = 0; i < 2; i++) {
        struct flow *f = t->lru[order[i]].head;
        if (f && f == keep)
            f = f->next;
        if (f) {
            *counter = counters[i];
            return f;
        }
    }
    struct flow *best = NULL;
    static const int sess[] = {FL_EST, FL_CLOSED};
    for (int i = 0; i < 2; i++) {
        struct flow *f = t->lru[sess[i]].head;
        if (f && f == keep)
            f = f->next;
        if (f && (!best || f->last < best->last))
            best = f;
    }
    *counter = &t->st.evicted_session;
    return best;
}

static bool evict_one(struct flow_table *t, const struct flow *keep)
{
    uint64_t *counter;
    struct flow *f = victim(t, keep, &counter);
    if (!f)
        return false;
    bool was_evicting = t->evicting;
    t->evicting = true;
    if (!(f->flags & F_DONE)) {
        t->st.flows_evicted++;
        if (counter == &t->st.evicted_done)
            counter = &t->st.evicted_no_session; /* a tombstone */
        flow_finish(t, f, FLOW_END_EVICTED);
    }
    (*counter)++;
    flow_destroy(t, f);
    t->evicting = was_evicting;
    return true;
}

static void emergency_check(struct flow_table *t)
{
    uint64_t mem = t->st.bytes_in_use, cap = t->cfg.memcap;
    uint64_t n = t->n_flows, max = t->cfg.max_flows;
    if (!t->emergency) {
        if (mem * 100 > cap * FLOW_EMERG_ENTER || n * 100 > max * FLOW_EMERG_ENTER) {
            t->emergency = true;
            t->st.emergency = 1;
            t->st.emergency_entered++;
        }
    } else if (mem * 100 < cap * FLOW_EMERG_LEAVE && n * 100 < max * FLOW_EMERG_LEAVE) {
        t->emergency = false;
        t->st.emergency = 0;
        t->st.emergency_left++;
    }
}

bool flow_mem_reserve(struct flow_table *t, size_t size, const struct flow *keep)
{
    while (t->st.bytes_in_use + size > t->cfg.memcap)
        if (t->evicting || !evict_one(t, keep))
            return false;
    mem_charge(t, size);
    return true;
}

bool flow_mem_try(struct flow_table *t, size_t size)
{
    if (t->st.bytes_in_use + size > t->cfg.memcap / 2)
        return false;
    mem_charge(t, size);
    return true;
}

void flow_table_mem_charge(struct flow_table *t, size_t n)
{
    while (!t->evicting && t->st.bytes_in_use + n > t->cfg.memcap)
        if (!evict_one(t, t->cur))
            break;
    mem_charge(t, n);
}

void flow_table_mem_release(struct flow_table *t, size_t n)
{
    flow_mem_release(t, n);
}

/* ---- clock ---- */

static void clock_observe(struct flow_table *t, sw_usec ts)
{
    if (!t->clock_set) {
        t->clock = ts;
        t->clock_set = true;
        return;
    }
    if (ts <= t->clock)
        return;
    if (ts - t->clock <= FLOW_CLOCK_JUMP) {
        t->clock = ts;
        t->pending = 0;
        return;
    }
    sw_usec d = ts > t->pending ? ts - t->pending : t->pending - ts;
    if (t->pending && ts != t->pending && d <= FLOW_CLOCK_JUMP) {
        t->clock = ts;
        t->pending = 0;
        return;
    }
    t->pending = ts;
}

/* ---- roles and creation ---- */

static bool is_server_port(const struct flow_table *t, uint16_t port)
{
    for (size_t i = 0; i < t->cfg.n_server_ports; i++)
        if (t->cfg.server_ports[i] == port)
            return true;
    return false;
}

static void make_uid(char uid[18], const struct flow_key *k, sw_usec first)
{
    uint8_t buf[sizeof(*k) + sizeof(first)];
    memcpy(buf, k, sizeof(*k));
    memcpy(buf + sizeof(*k), &first, sizeof(first));
    /* "S%016llx", written by hand: every flow gets one */
    uint64_t h = hash_bytes(FLOW_HASH_SEED, buf, sizeof(buf));
    uid[0] = 'S';
    for (int i = 16; i >= 1; i--, h >>= 4)
        uid[i] = "0123456789abcdef"[h & 15];
    uid[17] = '\0';
}

/* What the consumer is told about f (the same at creation and at a lazy
 * open). */
uint32_t flow_syn_ack_fp(uint8_t ttl, uint16_t win, uint8_t opt_hash)
{
    return (uint32_t)(ttl ? ttl : 1) << 24 | (uint32_t)opt_hash << 16 | win;
}

static void flow_info_of(const struct flow *f, struct flow_info *fi)
{
    memset(fi, 0, sizeof(*fi));
    make_uid(fi->uid, &f->key, f->start);
    bool ca = f->flags & F_CLIENT_IS_A;
    fi->client.family = fi->server.family = f->key.family;
    memcpy(fi->client.b, ca ? f->key.a : f->key.b, 16);
    memcpy(fi->server.b, ca ? f->key.b : f->key.a, 16);
    fi->cport = ca ? f->key.pa : f->key.pb;
    fi->sport = ca ? f->key.pb : f->key.pa;
    fi->vlan = (f->flags & F_VLAN2) ? f->key.vlan[1] : f->key.vlan[0];
    fi->start = f->start;
    fi->first_pkt = f->first_pkt;
    fi->file = f->file;
    fi->midstream = f->flags & F_MIDSTREAM;
    fi->pkts_c2s = f->pre_pkts[DIR_C2S];
    fi->pkts_s2c = f->pre_pkts[DIR_S2C];
    /* the server direction's isn holds its SYN-ACK's fingerprint */
    if ((f->d[DIR_S2C].flags & FD_SYN) && !(f->flags & F_MIDSTREAM))
        fi->syn_ack = f->d[DIR_S2C].isn;
}

static struct flow *flow_create(struct flow_table *t, const struct pkt *p, const struct flow_key *k,
                                uint32_t hash, bool from_a)
{
    if (t->cfg.max_flows == 0) {
        t->st.flows_refused++;
        return NULL;
    }
    /* new flows win: make room by class (half-open first, sessions last) */
    while (t->n_flows >= t->cfg.max_flows)
        if (!evict_one(t, NULL))
            break;
    if (t->n_flows >= t->cfg.max_flows || !flow_mem_reserve(t, sizeof(struct flow), NULL)) {
        t->st.flows_refused++;
        return NULL;
    }

    /* roles: the SYN decides; otherwise the well-known server port */
    bool src_is_client;
    bool midstream = false;
    uint8_t fl = p->tcp_flags;
    if ((fl & PKT_TH_SYN) && !(fl & PKT_TH_ACK)) {
        src_is_client = true;
    } else if (fl & PKT_TH_SYN) {
        src_is_client = false;
    } else {
        midstream = true;
        if (is_server_port(t, p->dport))
            src_is_client = true;
        else if (is_server_port(t, p->sport))
            src_is_client = false;
        else
            src_is_client = p->dport <= p->sport;
    }

    struct flow proto;
    memset(&proto, 0, sizeof(proto));
    proto.key = *k;
    proto.start = p->ts;
    proto.first_pkt = p->no;
    proto.file = p->file;
    if (src_is_client == from_a)
        proto.flags |= F_CLIENT_IS_A;
    if (midstream)
        proto.flags |= F_MIDSTREAM;
    if (p->n_vlan >= 2)
        proto.flags |= F_VLAN2;
    struct flow_info fi;
    flow_info_of(&proto, &fi);

    void *cstate = NULL;
    bool full;
    if (t->c.want) {
        full = t->c.want(t->c.ctx, &fi);
        if (full)
            proto.flags |= F_LAZY;
    } else {
        cstate = t->c.open ? t->c.open(t->c.ctx, &fi) : NULL;
        full = cstate != NULL;
    }
    /* a lazy flow's first SYN alone: an embryonic entry */
    bool emb = (proto.flags & F_LAZY) && !p->payload_len &&
               (fl & (PKT_TH_SYN | PKT_TH_ACK | PKT_TH_FIN | PKT_TH_RST)) == PKT_TH_SYN;
    size_t sz = !full ? FLOW_TOMB_SIZE : emb ? FLOW_EMB_SIZE : sizeof(struct flow);
    flow_mem_release(t, sizeof(struct flow) - sz);
    struct flow *f = sw_slab_alloc(slab_of(t, sz));
    if (!f) {
        flow_mem_release(t, sz);
        t->st.flows_refused++;
        if (cstate && t->c.close)
            t->c.close(cstate, FLOW_END_EVICTED, t->clock);
        else if ((proto.flags & F_LAZY) && t->c.unopened)
            t->c.unopened(t->c.ctx, FLOW_END_EVICTED);
        return NULL;
    }
    proto.hash = hash;
    proto.last = t->clock;
    proto.cstate = cstate;
    if (!full)
        proto.flags |= F_TOMB;
    if (emb) {
        proto.emb = true;
        memcpy(f, &proto, FLOW_TOMB_SIZE);
        struct flow_emb *e = flow_emb_of(f);
        e->start = proto.start;
        e->first_pkt = proto.first_pkt;
        e->isn = p->seq;
    } else {
        memcpy(f, &proto, sz);
    }
    uint32_t b = bucket_of(t, hash);
    f->hnext = t->buckets[b];
    t->buckets[b] = f;
    lru_append(t, f, (fl & PKT_TH_SYN) ? FL_SYN : flow_is_bare(f) ? FL_BARE : FL_EST);
    t->n_flows++;
    t->st.flows_created++;
    t->st.flows_active = t->n_flows;
    if (t->n_flows > t->st.flows_active_peak)
        t->st.flows_active_peak = t->n_flows;
    if (t->n_flows > t->n_buckets)
        table_grow(t);
    return f;
}

/* Grows embryonic f into a full flow in the state its SYN left (what
 * reasm_packet does with a client's first SYN), in its place in the hash
 * chain and LRU list. Returns the full flow, or NULL when no memory can be
 * had (f is then unchanged). */
static struct flow *flow_grow(struct flow_table *t, struct flow *f)
{
    if (!flow_mem_reserve(t, sizeof(struct flow) - FLOW_EMB_SIZE, f))
        return NULL;
    struct flow *n = sw_slab_alloc(&t->slab_full);
    if (!n) {
        flow_mem_release(t, sizeof(struct flow) - FLOW_EMB_SIZE);
        return NULL;
    }
    const struct flow_emb e = *flow_emb_of(f);
    memset(n, 0, sizeof(*n));
    memcpy(n, f, FLOW_TOMB_SIZE);
    n->emb = false;
    n->start = e.start;
    n->first_pkt = e.first_pkt;
    struct flow_dir *c = &n->d[DIR_C2S];
    c->flags = FD_SEEN | FD_SYN | FD_KNOWN;
    c->isn = e.isn;
    c->next = e.isn + 1;
    n->pre_pkts[DIR_C2S] = 1; /* the SYN */
    struct flow **pp = &t->buckets[bucket_of(t, f->hash)];
    while (*pp != f)
        pp = &(*pp)->hnext;
    *pp = n;
    struct flow_lru *l = &t->lru[f->list];
    if (f->prev)
        f->prev->next = n;
    else
        l->head = n;
    if (f->next)
        f->next->prev = n;
    else
        l->tail = n;
    sw_slab_free(&t->slab_emb, f);
    return n;
}

bool flow_consumer_ready(struct flow_table *t, struct flow *f)
{
    if (f->cstate)
        return true;
    if (!(f->flags & F_LAZY) || !t->c.open)
        return false;
    f->flags &= (uint8_t)~F_LAZY;
    struct flow_info fi;
    flow_info_of(f, &fi);
    struct flow *cur = t->cur;
    t->cur = f;
    f->cstate = t->c.open(t->c.ctx, &fi);
    t->cur = cur;
    return f->cstate != NULL;
}

/* ---- packets ---- */

/* A SYN (without ACK) from the client of a live flow that is not a copy of
 * the SYN we saw: another connection on the same ports. */
static bool is_new_syn(const struct flow *f, bool from_a, const struct pkt *p)
{
    if ((p->tcp_flags & (PKT_TH_SYN | PKT_TH_ACK)) != PKT_TH_SYN || (f->flags & (F_TOMB | F_DONE)))
        return false;
    if (from_a != !!(f->flags & F_CLIENT_IS_A))
        return false;
    const struct flow_dir *c = &f->d[DIR_C2S];
    if (c->flags & FD_SYN)
        return p->seq != c->isn;
    return (c->flags & FD_KNOWN) && p->seq + 1 != c->next;
}

static void tomb_packet(struct flow_table *t, struct flow *f, bool from_a, uint8_t fl)
{
    enum flow_list l = (enum flow_list)f->list;
    if (fl & PKT_TH_FIN)
        f->flags |= from_a ? F_FIN_A : F_FIN_B;
    if ((fl & PKT_TH_RST) || (f->flags & (F_FIN_A | F_FIN_B)) == (F_FIN_A | F_FIN_B))
        l = FL_CLOSED;
    else if (l == FL_SYN && !(fl & PKT_TH_SYN))
        l = FL_EST;
    lru_touch(t, f, l);
}

void flow_table_packet(struct flow_table *t, const struct pkt *p)
{
    struct key_words kw;
    bool from_a;
    key_build(p, &kw, &from_a);
    uint32_t hash = key_hash(t->seed, &kw);
    uint8_t fl = p->tcp_flags;
    clock_observe(t, p->ts);
    t->cur = NULL;

    struct flow *f = table_find(t, &kw, hash);
    if (f && f->emb && !(f->flags & F_DONE)) {
        struct flow *n = flow_grow(t, f);
        if (!n) { /* no memory for it: the packet is lost to this flow */
            lru_touch(t, f, (enum flow_list)f->list);
            return;
        }
        f = n;
    }
    if (f && f->list == FL_CLOSED && (fl & PKT_TH_SYN) && !(fl & PKT_TH_ACK)) {
        /* a new connection reusing the ports of a closed one */
        if (!(f->flags & (F_DONE | F_TOMB)))
            t->st.flows_closed++;
        flow_finish(t, f, FLOW_END_FIN);
        flow_destroy(t, f);
        f = NULL;
    } else if (f && is_new_syn(f, from_a, p)) {
        /* the client opens a new connection on the ports of one whose end
         * we never saw: the old one is over ("timeout": it went silent) */
        t->st.flows_timed_out++;
        flow_finish(t, f, FLOW_END_TIMEOUT);
        flow_destroy(t, f);
        f = NULL;
    }
    if (!f) {
        if (fl & PKT_TH_RST)
            return; /* a reset never opens a flow */
        struct flow_key k;
        key_of_words(&kw, &k);
        f = flow_create(t, p, &k, hash, from_a);
        emergency_check(t);
        if (!f || f->emb) /* an embryonic entry holds what its SYN told */
            return;
    }
    if (f->flags & (F_TOMB | F_DONE)) {
        tomb_packet(t, f, from_a, fl);
        return;
    }
    t->cur = f;

    enum stream_dir dir = (from_a == !!(f->flags & F_CLIENT_IS_A)) ? DIR_C2S : DIR_S2C;
    struct stream_meta m = {
        .ts = p->ts,
        .pkt_no = p->no,
        .ttl = p->ttl,
        .ip_id = p->ip_id,
        .ip_version = p->src.family,
    };
    if (t->c.packet && f->cstate)
        t->c.packet(f->cstate, dir, &m, fl);
    else if (f->pre_pkts[dir] < UINT16_MAX)
        f->pre_pkts[dir]++;

    if (fl & PKT_TH_RST) {
        const struct flow_dir *fd = &f->d[dir];
        /* RFC 5961 3.2: a reset far from the next expected sequence number
         * is ignored by the endpoint, so it must not blind us either */
        if ((fd->flags & FD_KNOWN) && (uint32_t)(p->seq - fd->next + 1) >= REASM_WINDOW_LIMIT) {
            t->st.rst_ignored++;
            lru_touch(t, f, (enum flow_list)f->list);
            return;
        }
        f->d[dir].flags |= FD_SEEN;
        t->st.flows_closed++;
        flow_finish(t, f, FLOW_END_RST);
        lru_touch(t, f, FL_CLOSED);
        return;
    }
    bool first_syn = (fl & PKT_TH_SYN) && !(f->d[dir].flags & FD_SYN);
    reasm_packet(t, f, dir, p, &m);
    if (first_syn && dir == DIR_S2C && (fl & PKT_TH_ACK))
        f->d[DIR_S2C].isn = flow_syn_ack_fp(p->ttl, p->win, p->tcp_opt_hash);

    const struct flow_dir *c2s = &f->d[DIR_C2S], *s2c = &f->d[DIR_S2C];
    if ((c2s->flags & FD_FIN_DONE) && (s2c->flags & FD_FIN_DONE)) {
        t->st.flows_closed++;
        flow_finish(t, f, FLOW_END_FIN);
        lru_touch(t, f, FL_CLOSED);
    } else if ((c2s->flags | s2c->flags) & FD_FIN) {
        lru_touch(t, f, FL_CLOSED);
    } else if (f->list == FL_SYN && !(fl & PKT_TH_SYN)) {
        lru_touch(t, f, FL_EST);
    } else {
        lru_touch(t, f, (enum flow_list)f->list);
    }
    t->cur = NULL;
    emergency_check(t);
}

/* ---- expiry and teardown ---- */

void flow_table_expire(struct flow_table *t, sw_usec now)
{
    clock_observe(t, now);
    t->cur = NULL;
    emergency_check(t);
    const struct flow_cfg *c = &t->cfg;
    const bool e = t->emergency;
    const sw_usec to[FL_COUNT] = {
        e ? c->emerg_timeout_syn : c->timeout_syn,
        e ? c->emerg_timeout_est : c->timeout_est,
        e ? c->emerg_timeout_est : c->timeout_est,
        e ? c->emerg_timeout_closed : c->timeout_closed,
    };
    const sw_usec normal[FL_COUNT] = {c->timeout_syn, c->timeout_est, c->timeout_est,
                                      c->timeout_closed};
    for (int l = 0; l < FL_COUNT; l++) {
        struct flow *f;
        while ((f = t->lru[l].head) && t->clock - f->last >= to[l]) {
            if (t->clock - f->last < normal[l])
                t->st.timed_out_emergency++;
            if (!(f->flags & (F_DONE | F_TOMB))) {
                if (l == FL_CLOSED) {
                    t->st.flows_closed++;
                    flow_finish(t, f, FLOW_END_FIN);
                } else {
                    t->st.flows_timed_out++;
                    flow_finish(t, f, FLOW_END_TIMEOUT);
                }
            }
            flow_destroy(t, f);
        }
    }
    emergency_check(t);
}

void flow_table_free(struct flow_table *t)
{
    if (!t)
        return;
    /* nothing looks a flow up from here on (only packets do): the entries
     * go without unlinking their hash chains */
    t->tearing_down = true;
    for (int l = 0; l < FL_COUNT; l++) {
        struct flow *f;
        while ((f = t->lru[l].head)) {
            flow_finish(t, f, FLOW_END_SHUTDOWN);
            flow_destroy(t, f);
        }
    }
    free(t->buckets);
    reasm_table_free(t);
    sw_slab_destroy(&t->slab_tomb);
    sw_slab_destroy(&t->slab_emb);
    sw_slab_destroy(&t->slab_full);
    free(t);
}

const struct flow_stats *flow_table_stats(const struct flow_table *t)
{
    return &t->st;
}
