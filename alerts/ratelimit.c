/* SPDX-License-Identifier: Apache-2.0 */
/* ratelimit.c: per (rule, server) token buckets with suppressed counts.
 * No RFC; a bounded open-addressing table of buckets. */
#include "alerts/ratelimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RL_KEY_MAX 160
#define RL_PROBE   8

struct bucket {
    bool used;
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
    struct bucket *b;
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
    r->b = calloc(r->n, sizeof *r->b);
    if (!r->b) {
        free(r);
        return NULL;
    }
    return r;
}

void ratelimit_free(struct ratelimit *r)
{
    if (!r)
        return;
    free(r->b);
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

static struct bucket *bucket_for(struct ratelimit *r, int rule, const char *server, sw_usec now,
                                 unsigned rate)
{
    size_t start = hash_key(rule, server) % r->n;
    struct bucket *victim = NULL;
    for (size_t i = 0; i < RL_PROBE; i++) {
        struct bucket *b = &r->b[(start + i) % r->n];
        if (b->used && b->rule == rule && !strncmp(b->server, server, RL_KEY_MAX - 1))
            return b;
        if (!b->used) {
            if (!victim || victim->used)
                victim = b;
        } else if (!victim || (victim->used && b->touched < victim->touched)) {
            victim = b;
        }
    }
    if (victim->used)
        r->lost += victim->suppressed;
    memset(victim, 0, sizeof *victim);
    victim->used = true;
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
            struct bucket *b = &r->b[(start + i) % r->n];
            if (b->used && b->rule == rule && !strncmp(b->server, server, RL_KEY_MAX - 1)) {
                *suppressed = b->suppressed;
                b->suppressed = 0;
                break;
            }
        }
        return true;
    }
    struct bucket *b = bucket_for(r, rule, server, now, rate);
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
