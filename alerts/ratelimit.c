/* SPDX-License-Identifier: Apache-2.0 */
/* ratelimit.c: per (rule, server) token buckets with suppressed counts.
 * No RFC; a bounded open-addressing table of bucket indexes and key hashes
 * (8 bytes a slot), the buckets themselves dense in a pool that grows as
 * keys come, so a run with few keys touches few pages. */
#include "alerts/ratelimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RL_KEY_MAX 160
#define RL_PROBE   8

struct bucket {
    int rule;
    char server[RL_KEY_MAX];
    double tokens;
    sw_usec last;     /* last refill time */
    uint64_t touched; /* use counter, for replacement */
    uint64_t suppressed;
};

/* A slot keeps its key's hash beside the bucket's index: a probe looks at
 * the slots (contiguous) and touches only the bucket whose hash matches. */
struct rl_slot {
    uint32_t idx;  /* 0 free, else 1 + the bucket's index in pool */
    uint32_t hash; /* low bits of the key's hash_key() */
};

struct ratelimit {
    unsigned rate;
    size_t n;
    struct rl_slot *slot; /* n slots */
    struct bucket *pool;  /* n_pool used of cap_pool, at most n */
    size_t n_pool, cap_pool;
    uint64_t clock;
    uint64_t lost;
};

struct ratelimit *ratelimit_new(unsigned rate_per_min, size_t max_keys)
{
    struct ratelimit *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->rate = rate_per_min;
    r->n = max_keys < RL_PROBE ? RL_PROBE : max_keys;
    if (r->n > UINT32_MAX - 1)
        r->n = UINT32_MAX - 1;
    r->slot = calloc(r->n, sizeof *r->slot);
    if (!r->slot) {
        free(r);
        return NULL;
    }
    return r;
}

void ratelimit_free(struct ratelimit *r)
{
    if (!r)
        return;
    free(r->slot);
    free(r->pool);
    free(r);
}

uint64_t ratelimit_lost_suppressed(const struct ratelimit *r)
{
    return r->lost;
}

/* FNV-1a of the rule and the part of the server a bucket keeps. */
static uint64_t hash_key(int rule, const char *s)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)(unsigned)rule;
    for (size_t i = 0; s[i] && i < RL_KEY_MAX - 1; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* Slot i (0..RL_PROBE-1) of the probe window that starts at start. */
static size_t probe(const struct ratelimit *r, size_t start, size_t i)
{
    return start + i < r->n ? start + i : start + i - r->n;
}

/* The bucket in slot s, NULL when the slot is free. */
static struct bucket *slot_bucket(const struct ratelimit *r, size_t s)
{
    return r->slot[s].idx ? &r->pool[r->slot[s].idx - 1] : NULL;
}

/* The bucket of (rule, server), whose hash_key() is h, when slot s holds
 * it; else NULL. */
static struct bucket *slot_match(const struct ratelimit *r, size_t s, uint32_t h, int rule,
                                 const char *server)
{
    if (!r->slot[s].idx || r->slot[s].hash != h)
        return NULL;
    struct bucket *b = slot_bucket(r, s);
    return b->rule == rule && !strncmp(b->server, server, RL_KEY_MAX - 1) ? b : NULL;
}

/* A new bucket for the free slot s; NULL when out of memory. */
static struct bucket *bucket_add(struct ratelimit *r, size_t s)
{
    if (r->n_pool == r->cap_pool) {
        size_t cap = r->cap_pool ? r->cap_pool * 2 : 16;
        if (cap > r->n)
            cap = r->n;
        struct bucket *p = realloc(r->pool, cap * sizeof *p);
        if (!p)
            return NULL;
        r->pool = p;
        r->cap_pool = cap;
    }
    r->slot[s].idx = (uint32_t)++r->n_pool;
    return &r->pool[r->n_pool - 1];
}

/* The key's bucket, made when new (replacing the least recently used one of
 * the probe window when no slot of it is free); NULL when out of memory. */
static struct bucket *bucket_for(struct ratelimit *r, int rule, const char *server, sw_usec now,
                                 unsigned rate)
{
    uint64_t h = hash_key(rule, server);
    size_t start = h % r->n;
    size_t free_slot = SIZE_MAX;
    for (size_t i = 0; i < RL_PROBE; i++) {
        size_t s = probe(r, start, i);
        struct bucket *b = slot_match(r, s, (uint32_t)h, rule, server);
        if (b)
            return b;
        if (!r->slot[s].idx && free_slot == SIZE_MAX)
            free_slot = s;
    }
    struct bucket *victim = NULL;
    if (free_slot != SIZE_MAX) {
        victim = bucket_add(r, free_slot);
        if (!victim)
            return NULL;
    } else {
        /* the window is full: its least recently used bucket goes */
        for (size_t i = 0; i < RL_PROBE; i++) {
            size_t s = probe(r, start, i);
            struct bucket *b = slot_bucket(r, s);
            if (!victim || b->touched < victim->touched) {
                victim = b;
                free_slot = s;
            }
        }
        r->lost += victim->suppressed;
    }
    r->slot[free_slot].hash = (uint32_t)h;
    memset(victim, 0, sizeof *victim);
    victim->rule = rule;
    size_t sl = strnlen(server, sizeof victim->server - 1); /* cut to fit, as before */
    memcpy(victim->server, server, sl);
    victim->server[sl] = '\0';
    victim->tokens = rate;
    victim->last = now;
    return victim;
}

bool ratelimit_allow(struct ratelimit *r, int rule, const char *server, sw_usec now,
                     uint64_t *suppressed)
{
    return ratelimit_allow_rate(r, rule, server, now, r->rate, suppressed);
}

bool ratelimit_allow_rate(struct ratelimit *r, int rule, const char *server, sw_usec now,
                          unsigned rate, uint64_t *suppressed)
{
    *suppressed = 0;
    if (rate == 0) {
        /* unlimited; a bucket left from a limited time hands its count on */
        uint64_t h = hash_key(rule, server);
        size_t start = h % r->n;
        for (size_t i = 0; i < RL_PROBE; i++) {
            size_t s = probe(r, start, i);
            struct bucket *b = slot_match(r, s, (uint32_t)h, rule, server);
            if (b) {
                *suppressed = b->suppressed;
                b->suppressed = 0;
                break;
            }
        }
        return true;
    }
    struct bucket *b = bucket_for(r, rule, server, now, rate);
    if (!b)
        return true; /* out of memory: not limited */
    b->touched = ++r->clock;
    if (now > b->last) {
        b->tokens += (double)(now - b->last) * rate / (60.0 * SW_USEC_PER_SEC);
        b->last = now;
    }
    if (b->tokens > rate) /* also when the rate was lowered meanwhile */
        b->tokens = rate;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        *suppressed = b->suppressed;
        b->suppressed = 0;
        return true;
    }
    b->suppressed++;
    return false;
}
