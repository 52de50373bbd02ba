/* SPDX-License-Identifier: Apache-2.0 */
/* frag.c: bounded IP fragment reassembly (RFC 791 section 3.2, RFC 815, RFC 8200 section 4.5).
 * Policy and bounds are documented in pkt.h above struct frag_stats. */
#include <stdlib.h>
#include <string.h>

#include "decode/pkt_frag.h"

#define FRAG_MAX_DATAGRAM 65535u

struct frag_dgram {
    struct frag_key key;
    sw_usec first_ts;
    uint8_t ttl;
    uint16_t ip_id;
    bool have_first, have_last;
    uint32_t total; /* end of the datagram, known once the last fragment came */
    uint8_t *buf;
    uint32_t cap;     /* bytes allocated (charged to max_bytes) */
    uint32_t n_frags; /* fragments stored (dropped with the datagram) */
    uint32_t rs[FRAG_MAX_PIECES], re[FRAG_MAX_PIECES]; /* disjoint sorted [rs, re) */
    uint32_t n_pieces;
};

struct frag_table {
    struct frag_cfg cfg;
    struct frag_dgram **d; /* held partial datagrams, oldest first */
    uint32_t n;
    uint8_t *done; /* buffer of the last completed datagram */
    struct frag_stats st;
};

void frag_cfg_defaults(struct frag_cfg *c)
{
    c->max_datagrams = 1024;
    c->max_bytes = 4u << 20;
    c->timeout = 30 * SW_USEC_PER_SEC;
}

struct frag_table *frag_table_new(const struct frag_cfg *cfg)
{
    struct frag_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    if (cfg)
        t->cfg = *cfg;
    else
        frag_cfg_defaults(&t->cfg);
    if (t->cfg.max_datagrams == 0)
        t->cfg.max_datagrams = 1;
    t->d = calloc(t->cfg.max_datagrams, sizeof(*t->d));
    if (!t->d) {
        free(t);
        return NULL;
    }
    return t;
}

static void dgram_free(struct frag_dgram *g)
{
    if (!g)
        return;
    free(g->buf);
    free(g);
}

void frag_table_free(struct frag_table *t)
{
    if (!t)
        return;
    for (uint32_t i = 0; i < t->n; i++)
        dgram_free(t->d[i]);
    free(t->d);
    free(t->done);
    free(t);
}

uint64_t frag_table_dropped(const struct frag_table *t)
{
    if (!t)
        return 0;
    return t->st.bound_dropped + t->st.bad_dropped + t->st.timeout_dropped;
}

const struct frag_stats *frag_table_stats(const struct frag_table *t)
{
    return &t->st;
}

/* Removes datagram i from the table; its fragments are added to *counter. */
static void drop_at(struct frag_table *t, uint32_t i, uint64_t *counter)
{
    struct frag_dgram *g = t->d[i];
    if (counter)
        *counter += g->n_frags;
    t->st.bytes_held -= g->cap;
    dgram_free(g);
    memmove(&t->d[i], &t->d[i + 1], (t->n - i - 1) * sizeof(*t->d));
    t->n--;
    t->st.held = t->n;
}

void frag_table_expire(struct frag_table *t, sw_usec now)
{
    if (!t)
        return;
    for (uint32_t i = 0; i < t->n;) {
        const struct frag_dgram *g = t->d[i];
        if (now >= g->first_ts && now - g->first_ts > t->cfg.timeout)
            drop_at(t, i, &t->st.timeout_dropped);
        else
            i++;
    }
}

static bool key_eq(const struct frag_key *a, const struct frag_key *b)
{
    return a->family == b->family && a->proto == b->proto && a->id == b->id &&
           memcmp(a->src, b->src, 16) == 0 && memcmp(a->dst, b->dst, 16) == 0;
}

/* Inserts [s, e) into the piece list, merging neighbours. */
static bool pieces_add(struct frag_dgram *g, uint32_t s, uint32_t e)
{
    uint32_t i = 0;
    while (i < g->n_pieces && g->re[i] < s)
        i++;
    /* pieces i.. that touch or overlap [s, e) are merged into one */
    uint32_t j = i;
    while (j < g->n_pieces && g->rs[j] <= e) {
        if (g->rs[j] < s)
            s = g->rs[j];
        if (g->re[j] > e)
            e = g->re[j];
        j++;
    }
    if (j == i) {
        if (g->n_pieces == FRAG_MAX_PIECES)
            return false;
        memmove(&g->rs[i + 1], &g->rs[i], (g->n_pieces - i) * sizeof(g->rs[0]));
        memmove(&g->re[i + 1], &g->re[i], (g->n_pieces - i) * sizeof(g->re[0]));
        g->n_pieces++;
    } else if (j > i + 1) {
        uint32_t gone = j - i - 1;
        memmove(&g->rs[i + 1], &g->rs[j], (g->n_pieces - j) * sizeof(g->rs[0]));
        memmove(&g->re[i + 1], &g->re[j], (g->n_pieces - j) * sizeof(g->re[0]));
        g->n_pieces -= gone;
    }
    g->rs[i] = s;
    g->re[i] = e;
    return true;
}

/* Copies the bytes of [off, off+len) not held yet; counts overlaps. Returns
 * false when the piece list is full. */
static bool store(struct frag_table *t, struct frag_dgram *g, uint32_t off, const uint8_t *data,
                  uint32_t len)
{
    uint32_t end = off + len;
    bool overlap = false, conflict = false;
    uint32_t pos = off;
    for (uint32_t i = 0; i < g->n_pieces && pos < end; i++) {
        if (g->re[i] <= pos)
            continue;
        if (g->rs[i] >= end)
            break;
        if (g->rs[i] > pos)
            memcpy(g->buf + pos, data + (pos - off), g->rs[i] - pos);
        uint32_t os = g->rs[i] > pos ? g->rs[i] : pos;
        uint32_t oe = g->re[i] < end ? g->re[i] : end;
        overlap = true;
        if (memcmp(g->buf + os, data + (os - off), oe - os) != 0)
            conflict = true;
        pos = oe;
    }
    if (pos < end)
        memcpy(g->buf + pos, data + (pos - off), end - pos);
    if (overlap)
        t->st.overlaps++;
    if (conflict)
        t->st.overlap_conflicts++;
    return pieces_add(g, off, end);
}

enum pkt_status frag_add(struct frag_table *t, const struct frag_key *k, sw_usec ts, uint8_t ttl,
                         uint16_t ip_id, uint32_t off, bool more, const uint8_t *data, uint32_t len,
                         struct frag_done *out)
{
    free(t->done);
    t->done = NULL;
    t->st.fragments++;
    frag_table_expire(t, ts);

    uint32_t i;
    struct frag_dgram *g = NULL;
    for (i = 0; i < t->n; i++) {
        if (key_eq(&t->d[i]->key, k)) {
            g = t->d[i];
            break;
        }
    }
    uint32_t end = off + len;
    bool bad = end > FRAG_MAX_DATAGRAM || (more && (len == 0 || len % 8 != 0));
    if (g && !bad) {
        if (g->have_last && (end > g->total || (!more && end != g->total)))
            bad = true;
        if (!more && !g->have_last && g->n_pieces && g->re[g->n_pieces - 1] > end)
            bad = true;
    }
    if (bad) {
        t->st.bad_dropped++;
        if (g)
            drop_at(t, i, &t->st.bad_dropped);
        return PKT_ERR_FRAG;
    }
    if (!g) {
        if (t->n == t->cfg.max_datagrams) {
            t->st.evicted++;
            drop_at(t, 0, &t->st.bound_dropped);
        }
        g = calloc(1, sizeof(*g));
        if (!g) {
            t->st.bound_dropped++;
            return PKT_ERR_FRAG;
        }
        g->key = *k;
        g->first_ts = ts;
        t->d[t->n++] = g;
        i = t->n - 1;
        t->st.held = t->n;
        t->st.datagrams++;
    }
    if (end > g->cap) {
        /* grow to the next 2 KiB step, charged to max_bytes */
        uint32_t ncap = (end + 2047u) & ~2047u;
        if (t->st.bytes_held - g->cap + ncap > t->cfg.max_bytes) {
            t->st.bound_dropped++;
            drop_at(t, i, &t->st.bound_dropped);
            return PKT_ERR_FRAG;
        }
        uint8_t *nb = realloc(g->buf, ncap);
        if (!nb) {
            t->st.bound_dropped++;
            drop_at(t, i, &t->st.bound_dropped);
            return PKT_ERR_FRAG;
        }
        t->st.bytes_held += ncap - g->cap;
        g->buf = nb;
        g->cap = ncap;
    }
    if (!store(t, g, off, data, len)) {
        t->st.bound_dropped++;
        drop_at(t, i, &t->st.bound_dropped);
        return PKT_ERR_FRAG;
    }
    g->n_frags++;
    if (off == 0 && !g->have_first) {
        g->have_first = true;
        g->ttl = ttl;
        g->ip_id = ip_id;
    }
    if (!more) {
        g->have_last = true;
        g->total = end;
    }
    if (!(g->have_last && g->n_pieces == 1 && g->rs[0] == 0 && g->re[0] == g->total))
        return PKT_FRAG_PENDING;

    /* complete: hand the buffer out until the next call */
    t->done = g->buf;
    g->buf = NULL;
    out->data = t->done;
    out->len = g->total;
    out->ttl = g->ttl;
    out->ip_id = g->ip_id;
    t->st.reassembled++;
    drop_at(t, i, NULL);
    return PKT_TCP;
}
