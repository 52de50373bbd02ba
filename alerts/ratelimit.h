/* SPDX-License-Identifier: Apache-2.0 */
/* ratelimit.h: per (rule, server) token buckets (alerts/ratelimit.c), so an
 * attack burst cannot flood the SIEM. rate alerts per minute per key, burst
 * rate; time is the session's capture time (backwards jumps refill nothing).
 * What is suppressed is counted and handed to the next alert that passes for
 * the same key. Bounded: at most max_keys buckets (a new key replaces the
 * least recently used one in its probe window; the count it carried is added
 * to lost_suppressed). Memory grows with the keys seen, not max_keys (4
 * bytes a key slot up front); a key that finds no memory is not limited. */
#ifndef SW_RATELIMIT_H
#define SW_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode/sw.h"

struct ratelimit;
/* rate 0: unlimited. */
struct ratelimit *ratelimit_new(unsigned rate_per_min, size_t max_keys);
void ratelimit_free(struct ratelimit *r);
/* True when an alert for (rule, server) may pass at time now; then
 * *suppressed is the number suppressed for that key since the last one that
 * passed (and is reset). False: counted as suppressed. */
bool ratelimit_allow(struct ratelimit *r, int rule, const char *server, sw_usec now,
                     uint64_t *suppressed);
/* The same with rate (alerts per minute, 0: unlimited) for this call instead
 * of the one given to ratelimit_new: a key's bucket holds at most rate
 * tokens, so a rate changed while running (SIGHUP) applies at once. */
bool ratelimit_allow_rate(struct ratelimit *r, int rule, const char *server, sw_usec now,
                          unsigned rate, uint64_t *suppressed);
uint64_t ratelimit_lost_suppressed(const struct ratelimit *r);

#endif
