/* SPDX-License-Identifier: Apache-2.0 */
/* sink_redis.h: internal to alerts/: the Redis half of the sink
 * (alerts/sink_redis.c), driven by sink.c. Every alert is written ahead to
 * the spool (spool.h) by the producer; the sink's own thread ships spooled
 * alerts in pipelined batches through a Lua script that applies each alert
 * at most once (see sink_redis.c), and removes them from the spool only
 * when Redis acknowledged them. */
#ifndef SW_SINK_REDIS_H
#define SW_SINK_REDIS_H

#include <stddef.h>

#include "alerts/sink.h"

struct sink_redis;
/* Opens the spool (replaying what it holds first) and starts the thread; the
 * first connection is attempted by the thread. NULL with a message. */
struct sink_redis *sink_redis_new(const struct sink_cfg *cfg, char *err, size_t errlen);
int sink_redis_emit(struct sink_redis *r, const char *json, size_t len);
int sink_redis_flush(struct sink_redis *r, int timeout_ms);
/* Adds this half's counters into *out. */
void sink_redis_stats(struct sink_redis *r, struct sink_stats *out);
const char *sink_redis_spool_path(const struct sink_redis *r);
void sink_redis_free(struct sink_redis *r, int flush_timeout_ms);

#endif
