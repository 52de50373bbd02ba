/* SPDX-License-Identifier: Apache-2.0 */
/* rcache.h: the MTA-STS policy cache shared through Redis by every sensor on
 * it (RFC 8461 §5.1 caching, shared). Key stripwatch:mta-sts:<domain> holds
 * JSON {"id","policy","fetched_at"} (the snapshot entry format) with TTL =
 * max_age; stripwatch:mta-sts-lock:<domain> is the per-domain fetch lock
 * (SET NX PX, released only by its holder). Synchronous, each call bounded by
 * a short timeout; after a failure calls return SW_EIO without touching the
 * network until a reconnect back-off has passed. */
#ifndef SW_POLICY_RCACHE_H
#define SW_POLICY_RCACHE_H

#include <stddef.h>
#include <stdint.h>

#define RCACHE_KEY_PREFIX  "stripwatch:mta-sts:"
#define RCACHE_LOCK_PREFIX "stripwatch:mta-sts-lock:"
#define RCACHE_LOCK_MS     30000

struct rcache;

/* NULL with a message in err when the URL does not parse (no connection yet). */
struct rcache *rcache_new(const char *url, char *err, size_t errlen);
void rcache_free(struct rcache *rc);

/* SW_OK with id, *text (caller frees) and *fetched_at; SW_AGAIN when absent;
 * SW_EPROTO when the value is not ours (message in err); SW_EIO when Redis
 * is unavailable. */
int rcache_get(struct rcache *rc, const char *domain, char id[33], char **text, int64_t *fetched_at,
               char *err, size_t errlen);
/* The value part of rcache_get, bytes in, result out (no I/O, no state):
 * parses len bytes of val (a Redis string, not NUL-terminated, any bytes) as
 * the JSON above. SW_OK with id (NUL-terminated, at most 32 characters),
 * *text (NUL-terminated copy of the policy, caller frees) and *fetched_at;
 * SW_EPROTO with a message naming key in err (also for a fetched_at before
 * 1970, which the snapshot loader and saver refuse too); SW_ENOMEM. *text is set only
 * on SW_OK. */
int rcache_value_parse(const char *key, const char *val, size_t len, char id[33], char **text,
                       int64_t *fetched_at, char *err, size_t errlen);
/* Stores with TTL ttl_s seconds (>= 1). SW_OK or SW_EIO. */
int rcache_put(struct rcache *rc, const char *domain, const char *id, const char *text,
               int64_t fetched_at, int64_t ttl_s);
/* SW_OK: this process holds the lock; SW_AGAIN: another does; SW_EIO. */
int rcache_lock(struct rcache *rc, const char *domain);
void rcache_unlock(struct rcache *rc, const char *domain);

/* Last failure, "" when none (password masked). */
const char *rcache_error(const struct rcache *rc);

#endif
