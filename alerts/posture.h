/* SPDX-License-Identifier: Apache-2.0 */
/* posture.h: learned posture (alerts/posture.c): which servers offered
 * STARTTLS (by address:port and by banner host), which clients used it to
 * which servers, and whose last attempt failed. Bounded (LRU), aged (entries
 * older than max_age are ignored and dropped), in memory; loaded from and
 * saved to a JSON state file; optionally shared through Redis. Time is the
 * sessions' capture time: a fact is learned at the end of the session that
 * showed it and shown only to sessions that end after it, wherever it came
 * from (memory, state file, Redis). Single-threaded (the detector's
 * thread). */
#ifndef SW_POSTURE_H
#define SW_POSTURE_H

#include <stddef.h>
#include <stdint.h>

#include "alerts/rules.h"
#include "decode/facts.h"

/* A failed TLS attempt explains a plaintext session from the same client to
 * the same server (address and port, or banner host and port) when the
 * attempt (its STARTTLS command) came at most this long before the plaintext
 * session began: the default of --fallback-window. */
#define POSTURE_FALLBACK_WINDOW_S 600

struct posture_stats {
    uint64_t entries, learned, evicted, expired, loaded, saved;
    uint64_t redis_reads, redis_writes, redis_errors;
};

struct posture;
/* fallback_window_s: see POSTURE_FALLBACK_WINDOW_S (0: that default). */
struct posture *posture_new(size_t max_entries, int64_t max_age_s, int64_t fallback_window_s);
void posture_free(struct posture *p);

/* What the posture shows about f's server and client (out): facts learned
 * before f's end (f->last_ts); the first session that showed an offer or a
 * use, the latest failure. Then learns from f. */
void posture_view_learn(struct posture *p, const struct smtp_facts *f, struct posture_view *out);

/* Loads a state file. A missing file is an empty state (SW_OK); a file that
 * does not parse is SW_EPROTO with err naming the file and the problem. */
int posture_load(struct posture *p, const char *path, char *err, size_t errlen);
/* Writes the state file atomically (temp file + rename). */
int posture_save(struct posture *p, const char *path, char *err, size_t errlen);

/* Shares posture through Redis (keys stripwatch:posture:<kind>:<key>, one
 * EVAL merging by learned-at time + EXPIRE max_age): written on learn, read
 * on a memory miss. SW_OK or SW_EIO with err (bad URL). Unreachable Redis
 * later is counted, never fatal. */
int posture_attach_redis(struct posture *p, const char *url, const char *ca_file, char *err,
                         size_t errlen);

const struct posture_stats *posture_stats(const struct posture *p);

#endif
