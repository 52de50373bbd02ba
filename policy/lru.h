/* SPDX-License-Identifier: Apache-2.0 */
/* lru.h: a bounded least-recently-used map from string keys (domains) to
 * void* values (policy/lru.c). Keys are copied; values are owned by the map
 * once put and released with the free callback when replaced, removed,
 * evicted or at lru_free(). get/put/remove/evict are O(1) (keyed SipHash
 * buckets, randomly seeded against hash flooding, plus a recency list).
 * Bounded by entry count; evictions are counted. Not thread-safe. */
#ifndef SW_LRU_H
#define SW_LRU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lru;
typedef void (*lru_free_fn)(void *value);

/* max_entries >= 1; free_value may be NULL (values not freed). NULL on
 * allocation failure or max_entries == 0. */
struct lru *lru_new(size_t max_entries, lru_free_fn free_value);
/* A map whose values are value_size bytes held in the entry itself (one
 * allocation per entry, with its key, for tables of many small entries):
 * entries are made by lru_emplace; lru_put and lru_take refuse (SW_ELIMIT,
 * NULL). A value lives until its entry is removed or evicted. */
struct lru *lru_new_inline(size_t max_entries, size_t value_size);
/* Frees every value and the map; NULL is a no-op. */
void lru_free(struct lru *l);

/* The value for key and marks it most recently used; NULL when absent. */
void *lru_get(struct lru *l, const char *key);
/* The value for key without touching recency; NULL when absent. */
void *lru_peek(const struct lru *l, const char *key);
/* Inserts or replaces (the old value is freed) key as most recently used;
 * when full, the least recently used entry is evicted first (counted).
 * SW_OK, or SW_ENOMEM with the map unchanged and value NOT taken over (the
 * caller still owns it). */
int lru_put(struct lru *l, const char *key, void *value);
/* Inline maps: the value for key, made most recently used; a new one,
 * zeroed, when absent (*added true; the least recently used entry evicted
 * first when full, counted). *stored_key (when not NULL): the map's copy of
 * the key, valid as long as the value. NULL when out of memory or not an
 * inline map. */
void *lru_emplace(struct lru *l, const char *key, bool *added, const char **stored_key);
/* The same with the key's hash given (lru_hash; len: strlen(key)), for a
 * caller that looks the same key up more than once. */
uint64_t lru_hash(const struct lru *l, const char *key, size_t len);
/* Asks the CPU for the buckets of n keys (by lru_hash) and their first
 * entries: lookups of several keys then wait for memory about once, not
 * once each. */
void lru_prefetch(const struct lru *l, const uint64_t *hash, size_t n);
void *lru_peek_hashed(const struct lru *l, const char *key, uint64_t hash);
void *lru_emplace_hashed(struct lru *l, const char *key, size_t len, uint64_t hash, bool *added,
                         const char **stored_key);
/* Removes key and frees its value: true if it was there. */
bool lru_remove(struct lru *l, const char *key);
/* Removes key and hands its value to the caller (not freed); NULL if absent. */
void *lru_take(struct lru *l, const char *key);
/* Evicts the least recently used entry (counted as an eviction): false when
 * empty. */
bool lru_evict_oldest(struct lru *l);
/* Key of the least recently used entry, or NULL; valid until the next change. */
const char *lru_oldest_key(const struct lru *l);

size_t lru_count(const struct lru *l);
size_t lru_capacity(const struct lru *l);
uint64_t lru_evictions(const struct lru *l);

/* Calls cb for each entry from most to least recently used; stops when cb
 * returns non-zero and returns that value. cb must not change the map. */
int lru_foreach(const struct lru *l, int (*cb)(void *arg, const char *key, void *value), void *arg);

#endif
