/* SPDX-License-Identifier: Apache-2.0 */
/* sink.h: where alerts go (alerts/sink*.c, spool.c). JSON lines to a file or
 * stdout, or to Redis (list RPUSH, LPUSH, PUBLISH channel, XADD stream) with
 * pipelining, reconnect with backoff, and a bounded on-disk spool: an alert
 * leaves the spool only after Redis acknowledged it. sink_emit() copies the
 * line and never blocks on the network (shipping runs on the sink's own
 * thread). Safe to call from one producer thread.
 *
 * Delivery semantics (details in spool.h and sink_redis.c):
 * - File/stdout: one fwrite + fflush per alert (a tailing reader never sees
 *   half a line nor waits for a batch); fsync at sink_flush()/sink_free().
 *   CR/LF inside an alert become spaces: one alert, one line.
 * - Redis: sink_emit() writes the alert ahead into the spool file (a write()
 *   under a mutex: page cache, no fsync, no network); the sink thread reads
 *   batches (batch_max) from the spool, pipelines them, and acknowledges each
 *   in order when Redis' reply is not an error. While Redis is away alerts
 *   simply accumulate in the spool (bounded by spool_max_bytes; past it new
 *   alerts are dropped, counted in dropped_spool_full and reported once per
 *   episode on stderr: "stripwatch: spool FILE: full (bound N bytes);
 *   dropping new alerts until Redis takes the spooled ones (counted in
 *   dropped_spool_full)"). Reconnects back off from backoff_min_ms doubling
 *   to backoff_max_ms. A refused command (e.g. WRONGTYPE) is not an
 *   acknowledgement: the alert stays and is retried, in order, after backoff.
 * - Exactly once: each alert carries a sequence number and is applied by a
 *   Lua script (EVALSHA) that skips numbers already applied (key
 *   "<key>:seq:<spool id>", TTL dedup_ttl_s). So a re-send after a lost
 *   reply, a Redis restart or a crash between Redis' ack and the spool's
 *   head update is not applied twice. Windows left: the dedup key expired or
 *   was deleted while alerts waited, or the spool's head file was lost.
 *   A Redis user that may not run scripts gets plain commands (at least once).
 * - Restart: sink_new() on the same spool delivers what it holds first. */
#ifndef SW_SINK_H
#define SW_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sink_redis_mode {
    SINK_REDIS_LIST = 0, /* RPUSH key (Logstash/Filebeat redis input) */
    SINK_REDIS_LPUSH,
    SINK_REDIS_CHANNEL, /* PUBLISH key: Redis acknowledges a publish nobody heard;
                           only subscribers connected at that moment get it */
    SINK_REDIS_STREAM,  /* XADD key MAXLEN ~ N * alert <json> */
};

#define SINK_FILE_BATCH (256u << 10)

struct sink_cfg {
    const char *out_path;  /* JSON lines file (appended); "-" for stdout; NULL for none.
                              With redis_url too, alerts go to both. */
    const char *redis_url; /* redis://[user:pass@]host:port/db, rediss://..., unix:///path?db=N */
    enum sink_redis_mode mode;
    const char *key;          /* list/channel/stream name (default "stripwatch:alerts") */
    uint64_t stream_maxlen;   /* default 1,000,000 */
    const char *spool_path;   /* spool file (default "stripwatch.spool" in the working dir) */
    uint64_t spool_max_bytes; /* default 256 MiB */
    const char *ca_file;      /* for rediss:// */
    /* out_path a file (not stdout), runs reading regular files (nobody waits
     * for each line): lines gathered and written
     * SINK_FILE_BATCH bytes at a time, whole lines (a line is never split
     * between writes unless longer than that), instead of a write per line;
     * written at sink_flush() and sink_free(). Counted as delivered once
     * written. */
    bool file_batch;
    /* added by sink (defaults from sink_cfg_defaults) */
    unsigned batch_max;        /* alerts per pipelined batch (default 256) */
    int connect_timeout_ms;    /* default 2000 */
    int io_timeout_ms;         /* reply wait per batch (default 5000) */
    int backoff_min_ms;        /* first reconnect delay (default 100), doubled per failure */
    int backoff_max_ms;        /* cap (default 30000) */
    uint64_t dedup_ttl_s;      /* life of the Redis key holding the last delivered sequence
                                  number (default 30 days) */
    const char *tls_cert_file; /* rediss:// client certificate (tls-auth-clients); NULL none */
    const char *tls_key_file;  /* its key; NULL: in tls_cert_file */
};
void sink_cfg_defaults(struct sink_cfg *c);

struct sink_stats {
    uint64_t emitted, delivered, spooled, replayed, dropped_spool_full, reconnects, errors;
    /* added by sink */
    uint64_t duplicates_skipped; /* re-sent alerts Redis already had (not applied twice) */
    uint64_t pending;            /* alerts in the spool not yet acknowledged */
    uint64_t spool_bytes;        /* spool file size */
};

struct sink;
struct sink *sink_new(const struct sink_cfg *cfg, char *err, size_t errlen);
/* Queues one alert (a JSON object without trailing newline). SW_OK, or
 * SW_ELIMIT when the spool is full (counted and reported). Several threads
 * may call it (the alerts' output stage and the health records); each line
 * stays whole and the order is the order of the calls. */
int sink_emit(struct sink *s, const char *json, size_t len);
/* Ships what is queued, waiting at most timeout_ms for acknowledgements
 * (a Redis that answers LOADING or BUSY is retried every 100 ms until then:
 * it is starting or busy, not down);
 * returns SW_OK when nothing is left outside the spool file.
 * (sink: every alert is written ahead to the spool, and the spool is
 * fdatasync'ed here. With Redis: SW_OK when Redis acknowledged every alert,
 * SW_AGAIN when some stay in the spool for the next run; one connection
 * attempt is made at once and its failure ends the wait early, so a
 * SIGTERM while Redis is down does not hang. SW_EIO: a file write/sync failed.) */
int sink_flush(struct sink *s, int timeout_ms);
/* Opens the alerts file (out_path) again, for logrotate (SIGHUP): after a
 * rename, the next alerts go to a new file at the configured path. Nothing
 * to do for stdout. Call it on the producer thread. SW_OK, or SW_EIO with
 * one line in err (`FILE: Permission denied`) and the old file kept. */
int sink_reopen(struct sink *s, char *err, size_t errlen);
const struct sink_stats *sink_stats(const struct sink *s);
/* The spool file with Redis, else NULL. */
const char *sink_spool_path(const struct sink *s);
/* Flushes (bounded by io_timeout_ms; skipped when sink_flush() ran after the
 * last sink_emit) then frees. What Redis has not acknowledged stays in the
 * spool and is delivered first by the next sink_new() on the same spool. */
void sink_free(struct sink *s);

#endif
