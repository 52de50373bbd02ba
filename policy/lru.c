/* SPDX-License-Identifier: Apache-2.0 */
/* lru.c: bounded LRU map keyed by string: chained hash table (SipHash-2-4
 * with a random key, growing by doubling up to the bound) plus a doubly
 * linked recency list. No RFC; SipHash per Aumasson and Bernstein (2012). */
#include "policy/lru.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "decode/sw.h"

struct lru_node {
    struct lru_node *hnext;       /* bucket chain */
    struct lru_node *prev, *next; /* recency: head is most recent */
    uint64_t hash;
    void *value;
    char key[];
};

struct lru {
    struct lru_node **buckets;
    size_t nbuckets; /* power of two */
    struct lru_node *head, *tail;
    size_t count, max;
    uint64_t evictions;
    uint64_t k0, k1;
    lru_free_fn free_value;
    size_t value_size; /* inline maps: the value's bytes after the key; 0 otherwise */
};

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

static uint64_t siphash(const struct lru *l, const char *s, size_t n)
{
    uint64_t v0 = 0x736f6d6570736575ULL ^ l->k0, v1 = 0x646f72616e646f6dULL ^ l->k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ l->k0, v3 = 0x7465646279746573ULL ^ l->k1;
    const unsigned char *p = (const unsigned char *)s;
    size_t full = n & ~(size_t)7;
    uint64_t m, b = (uint64_t)n << 56;

    for (size_t i = 0; i < full; i += 8) {
        m = 0;
        for (int k = 7; k >= 0; k--)
            m = (m << 8) | p[i + (size_t)k];
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t k = 0; k < (n & 7); k++)
        b |= (uint64_t)p[full + k] << (8 * k);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

struct lru *lru_new(size_t max_entries, lru_free_fn free_value)
{
    struct lru *l;
    uint64_t seed[2];

    if (max_entries == 0)
        return NULL;
    l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->nbuckets = 16;
    l->buckets = calloc(l->nbuckets, sizeof *l->buckets);
    if (!l->buckets) {
        free(l);
        return NULL;
    }
    if (getrandom(seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)(uintptr_t)l << 17);
        seed[1] = (uint64_t)ts.tv_sec * 0x9e3779b97f4a7c15ULL;
    }
    l->k0 = seed[0];
    l->k1 = seed[1];
    l->max = max_entries;
    l->free_value = free_value;
    return l;
}

struct lru *lru_new_inline(size_t max_entries, size_t value_size)
{
    struct lru *l = value_size ? lru_new(max_entries, NULL) : NULL;
    if (l)
        l->value_size = value_size;
    return l;
}

static void node_release(struct lru *l, struct lru_node *n)
{
    if (l->free_value)
        l->free_value(n->value);
    free(n);
}

void lru_free(struct lru *l)
{
    if (!l)
        return;
    for (struct lru_node *n = l->head, *next; n; n = next) {
        next = n->next;
        node_release(l, n);
    }
    free(l->buckets);
    free(l);
}

static struct lru_node *find(const struct lru *l, const char *key, uint64_t h)
{
    for (struct lru_node *n = l->buckets[h & (l->nbuckets - 1)]; n; n = n->hnext)
        if (n->hash == h && strcmp(n->key, key) == 0)
            return n;
    return NULL;
}

static void list_unlink(struct lru *l, struct lru_node *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
}

static void list_push_front(struct lru *l, struct lru_node *n)
{
    n->prev = NULL;
    n->next = l->head;
    if (l->head)
        l->head->prev = n;
    l->head = n;
    if (!l->tail)
        l->tail = n;
}

static void hash_unlink(struct lru *l, struct lru_node *n)
{
    struct lru_node **pp = &l->buckets[n->hash & (l->nbuckets - 1)];
    while (*pp != n)
        pp = &(*pp)->hnext;
    *pp = n->hnext;
}

/* Unlinks n from both structures and returns it (not freed). */
static struct lru_node *detach(struct lru *l, struct lru_node *n)
{
    hash_unlink(l, n);
    list_unlink(l, n);
    l->count--;
    return n;
}

void *lru_get(struct lru *l, const char *key)
{
    struct lru_node *n = find(l, key, siphash(l, key, strlen(key)));
    if (!n)
        return NULL;
    if (l->head != n) {
        list_unlink(l, n);
        list_push_front(l, n);
    }
    return n->value;
}

void *lru_peek(const struct lru *l, const char *key)
{
    return lru_peek_hashed(l, key, siphash(l, key, strlen(key)));
}

uint64_t lru_hash(const struct lru *l, const char *key, size_t len)
{
    return siphash(l, key, len);
}

void lru_prefetch(const struct lru *l, const uint64_t *hash, size_t n)
{
    for (size_t i = 0; i < n; i++)
        __builtin_prefetch(&l->buckets[hash[i] & (l->nbuckets - 1)]);
    for (size_t i = 0; i < n; i++) {
        const struct lru_node *e = l->buckets[hash[i] & (l->nbuckets - 1)];
        if (e)
            __builtin_prefetch(e);
    }
}

void *lru_peek_hashed(const struct lru *l, const char *key, uint64_t hash)
{
    struct lru_node *n = find(l, key, hash);
    return n ? n->value : NULL;
}

/* Doubles the bucket array while it is smaller than the count (load <= 1),
 * never past the next power of two above max. Failure is harmless. */
static void maybe_grow(struct lru *l)
{
    if (l->count < l->nbuckets || l->nbuckets >= l->max)
        return;
    size_t nb = l->nbuckets * 2;
    struct lru_node **b = calloc(nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < l->nbuckets; i++) {
        for (struct lru_node *n = l->buckets[i], *next; n; n = next) {
            next = n->hnext;
            n->hnext = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
        }
    }
    free(l->buckets);
    l->buckets = b;
    l->nbuckets = nb;
}

/* Links the new node n (key and hash set) as most recently used, evicting
 * the least recently used entry first when full. */
static void link_new(struct lru *l, struct lru_node *n)
{
    if (l->count >= l->max)
        lru_evict_oldest(l);
    n->hnext = l->buckets[n->hash & (l->nbuckets - 1)];
    l->buckets[n->hash & (l->nbuckets - 1)] = n;
    list_push_front(l, n);
    l->count++;
    maybe_grow(l);
}

void *lru_emplace(struct lru *l, const char *key, bool *added, const char **stored_key)
{
    size_t kl = strlen(key);
    return lru_emplace_hashed(l, key, kl, siphash(l, key, kl), added, stored_key);
}

void *lru_emplace_hashed(struct lru *l, const char *key, size_t kl, uint64_t h, bool *added,
                         const char **stored_key)
{
    struct lru_node *n = find(l, key, h);

    *added = false;
    if (!l->value_size)
        return NULL;
    if (n) {
        if (l->head != n) {
            list_unlink(l, n);
            list_push_front(l, n);
        }
        if (stored_key)
            *stored_key = n->key;
        return n->value;
    }
    /* the value after the key, aligned as malloc aligns */
    size_t at = (sizeof *n + kl + 1 + _Alignof(max_align_t) - 1) & ~(_Alignof(max_align_t) - 1);
    n = malloc(at + l->value_size);
    if (!n)
        return NULL;
    memcpy(n->key, key, kl + 1);
    n->hash = h;
    n->value = (char *)n + at;
    memset(n->value, 0, l->value_size);
    link_new(l, n);
    *added = true;
    if (stored_key)
        *stored_key = n->key;
    return n->value;
}

int lru_put(struct lru *l, const char *key, void *value)
{
    if (l->value_size)
        return SW_ELIMIT;
    size_t kl = strlen(key);
    uint64_t h = siphash(l, key, kl);
    struct lru_node *n = find(l, key, h);

    if (n) {
        if (n->value != value && l->free_value)
            l->free_value(n->value);
        n->value = value;
        if (l->head != n) {
            list_unlink(l, n);
            list_push_front(l, n);
        }
        return SW_OK;
    }
    n = malloc(sizeof *n + kl + 1);
    if (!n)
        return SW_ENOMEM;
    memcpy(n->key, key, kl + 1);
    n->hash = h;
    n->value = value;
    link_new(l, n);
    return SW_OK;
}

bool lru_remove(struct lru *l, const char *key)
{
    struct lru_node *n = find(l, key, siphash(l, key, strlen(key)));
    if (!n)
        return false;
    node_release(l, detach(l, n));
    return true;
}

void *lru_take(struct lru *l, const char *key)
{
    struct lru_node *n = l->value_size ? NULL : find(l, key, siphash(l, key, strlen(key)));
    void *v;
    if (!n)
        return NULL;
    detach(l, n);
    v = n->value;
    free(n);
    return v;
}

bool lru_evict_oldest(struct lru *l)
{
    if (!l->tail)
        return false;
    node_release(l, detach(l, l->tail));
    l->evictions++;
    return true;
}

const char *lru_oldest_key(const struct lru *l)
{
    return l->tail ? l->tail->key : NULL;
}

size_t lru_count(const struct lru *l)
{
    return l->count;
}

size_t lru_capacity(const struct lru *l)
{
    return l->max;
}

uint64_t lru_evictions(const struct lru *l)
{
    return l->evictions;
}

int lru_foreach(const struct lru *l, int (*cb)(void *arg, const char *key, void *value), void *arg)
{
    for (struct lru_node *n = l->head; n; n = n->next) {
        int rc = cb(arg, n->key, n->value);
        if (rc)
            return rc;
    }
    return 0;
}
