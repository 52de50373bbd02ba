/* SPDX-License-Identifier: Apache-2.0 */
/* ratelimit.c: per (rule, server) token buckets with suppressed counts.
 * No RFC; a bounded open-addressing table of bucket indexes (4 bytes a
 * slot), the buckets themselves dense in a pool that grows as keys come, so
 * a run with few keys touches few pages. */
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

struct ratelimit {
    unsigned rate;
    size_t n;
    uint32_t *slot;      /* n slots: 0 free, else 1 + the bucket's index in pool */
    struct bucket *pool; /* n_pool used of cap_pool, at most n */
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

static uint64_t hash_key(int rule, const char *s)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)(unsigned)rule;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* The bucket in slot s, NULL when the slot is free. */
static struct bucket *slot_bucket(const struct ratelimit *r, size_t s)
{
    return r->slot[s] ? &r->pool[r->slot[s] - 1] : NULL;
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
    r->slot[s] = (uint32_t)++r->n_pool;
    return &r->pool[r->n_pool - 1];
}

/* The key's bucket, made when new (replacing the least recently used one of
 * the probe window when no slot of it is free); NULL when out of memory. */
static struct bucket *bucket_for(struct ratelimit *r, int rule, const char *server, sw_usec now,
                                 unsigned rate)
{
    size_t start = hash_key(rule, server) % r->n;
    size_t free_slot = SIZE_MAX;
    struct bucket *victim = NULL;
    for (size_t i = 0; i < RL_PROBE; i++) {
        size_t s = (start + i) % r->n;
        struct bucket *b = slot_bucket(r, s);
        if (b && b->rule == rule && !strncmp(b->server, server, RL_KEY_MAX - 1))
            return b;
        if (!b) {
            if (free_slot == SIZE_MAX)
                free_slot = s;
        } else if (!victim || b->touched < victim->touched) {
            victim = b;
        }
    }
    if (free_slot != SIZE_MAX) {
        victim = bucket_add(r, free_slot);
        if (!victim)
            return NULL;
    } else {
        r->lost += victim->suppressed;
    }
    memset(victim, 0, sizeof *victim);
    victim->rule = rule;
    snprintf(victim->server, sizeof victim->server, "%s", server);
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
        size_t start = hash_key(rule, server) % r->n;
        for (size_t i = 0; i < RL_PROBE; i++) {
            struct bucket *b = slot_bucket(r, (start + i) % r->n);
            if (b && b->rule == rule && !strncmp(b->server, server, RL_KEY_MAX - 1)) {
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
