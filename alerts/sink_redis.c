/* SPDX-License-Identifier: Apache-2.0 */
/* sink_redis.c: ships spooled alerts to Redis (RPUSH, LPUSH, PUBLISH or
 * XADD MAXLEN ~) from its own thread, pipelined, with reconnect and capped
 * exponential backoff. Follows RESP2 and the Redis command semantics of
 * EVALSHA/SCRIPT LOAD, RPUSH, LPUSH, PUBLISH, XADD, SET EX.
 *
 * Exactly once: each spooled alert carries a sequence number. It is applied
 * by a Lua script that compares it with the last sequence number this spool
 * delivered (key "<key>:seq:<spool id>", refreshed with the dedup TTL) and
 * does nothing for a number already applied. The script runs atomically, so
 * a batch re-sent after a lost connection, a refused command or a crash
 * between Redis' reply and the spool's head update is never applied twice.
 * The only windows for a duplicate: the dedup key expired or was deleted
 * while alerts waited in the spool, or the spool's head file was lost (the
 * spool then takes a new id and replays everything).
 *
 * A Redis user not allowed to run scripts (ACL NOPERM) gets plain RPUSH/
 * LPUSH/PUBLISH/XADD instead, said once on the log: still nothing lost and in
 * order, but at-least-once (a batch re-sent after a lost reply may repeat).
 * Redis Cluster is not supported (the two keys are not in one hash slot). */
#include "alerts/sink_redis.h"
#include "alerts/alog.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alerts/spool.h"
#include "decode/sw.h"
#include "policy/redis_conn.h"

#define SINK_BATCH_HARD_MAX     4096
#define SINK_TRANSIENT_RETRY_MS 100

static const char sink_script[] =
    "local last = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "local seq = tonumber(ARGV[1])\n"
    "if seq <= last then return 0 end\n"
    "local m = ARGV[2]\n"
    "if m == 'list' then redis.call('RPUSH', KEYS[1], ARGV[3])\n"
    "elseif m == 'lpush' then redis.call('LPUSH', KEYS[1], ARGV[3])\n"
    "elseif m == 'channel' then redis.call('PUBLISH', KEYS[1], ARGV[3])\n"
    "else redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'alert', ARGV[3]) end\n"
    "redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[5])\n"
    "return 1\n";

struct inflight {
    uint64_t seq, end;
};

struct sink_redis {
    struct redis_conn *conn; /* thread only */
    struct spool *sp;        /* under mu */
    pthread_t th;
    bool th_started;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    /* under mu */
    bool stop, up, full_reported, try_now;
    uint64_t fail_gen; /* failures so far: a flush stops waiting at the next one */
    bool flushed;      /* a flush ended with nothing emitted since */
    struct sink_stats st;
    bool dirty;
    int64_t last_sync_ms;
    uint64_t replay_upto;
    /* thread only */
    uint64_t send_off;
    bool down_reported, ever_up;
    bool plain, plain_reported; /* EVALSHA refused: plain commands, at-least-once */
    int backoff_ms;
    int64_t next_try_ms;
    char sha[41];
    struct inflight *fl;
    /* configuration */
    char *key, *seq_key;
    const char *mode, *plain_cmd;
    char maxlen[24], ttl[24];
    unsigned batch_max;
    int io_timeout_ms, backoff_min_ms, backoff_max_ms;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void abs_deadline(struct timespec *ts, int64_t ms_from_now)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms_from_now / 1000;
    ts->tv_nsec += (ms_from_now % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

static const char *plain_cmd(enum sink_redis_mode m)
{
    switch (m) {
    case SINK_REDIS_LIST:
        return "RPUSH";
    case SINK_REDIS_LPUSH:
        return "LPUSH";
    case SINK_REDIS_CHANNEL:
        return "PUBLISH";
    case SINK_REDIS_STREAM:
        return "XADD";
    }
    return NULL;
}

static const char *mode_arg(enum sink_redis_mode m)
{
    switch (m) {
    case SINK_REDIS_LIST:
        return "list";
    case SINK_REDIS_LPUSH:
        return "lpush";
    case SINK_REDIS_CHANNEL:
        return "channel";
    case SINK_REDIS_STREAM:
        return "stream";
    }
    return NULL;
}

/* A reply that means "up, but not now": loading its data set at start,
 * running a long script, a replica without its master. */
static bool transient(const char *why)
{
    static const char *const words[] = {"LOADING ", "BUSY ", "MASTERDOWN ", "TRYAGAIN "};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strstr(why, words[i]))
            return true;
    return false;
}

/* Called with mu held after a failure: drop the connection, schedule the
 * next try, say so once per outage. A transient refusal is retried every
 * SINK_TRANSIENT_RETRY_MS and does not end a flush's wait. */
static void went_down(struct sink_redis *r, const char *why)
{
    redis_conn_close(r->conn);
    r->up = false;
    r->st.errors++;
    if (transient(why)) {
        if (!r->down_reported) {
            alerts_log(LOG_WARNING, "redis %s: %s; alerts wait in spool %s (retrying every %d ms)",
                       redis_conn_url(r->conn), why, spool_path(r->sp), SINK_TRANSIENT_RETRY_MS);
            r->down_reported = true;
        }
        r->next_try_ms = now_ms() + SINK_TRANSIENT_RETRY_MS;
        r->replay_upto = spool_last_seq(r->sp);
        return;
    }
    r->fail_gen++;
    if (!r->down_reported) {
        alerts_log(LOG_WARNING,
                   "redis %s: %s; alerts wait in spool %s (retrying with backoff up to %d "
                   "ms)",
                   redis_conn_url(r->conn), why, spool_path(r->sp), r->backoff_max_ms);
        r->down_reported = true;
    }
    r->next_try_ms = now_ms() + r->backoff_ms;
    r->backoff_ms = r->backoff_ms * 2 > r->backoff_max_ms ? r->backoff_max_ms : r->backoff_ms * 2;
    r->replay_upto = spool_last_seq(r->sp);
    pthread_cond_broadcast(&r->done);
}

/* Connects and loads the script; called without mu. */
static bool do_connect(struct sink_redis *r, char *why, size_t whylen)
{
    if (redis_conn_connect(r->conn) != SW_OK) {
        snprintf(why, whylen, "%s", redis_conn_errstr(r->conn));
        return false;
    }
    redisReply *rep = redis_conn_command(r->conn, r->io_timeout_ms, "SCRIPT LOAD %s", sink_script);
    if (!rep) {
        snprintf(why, whylen, "%s", redis_conn_errstr(r->conn));
        return false;
    }
    bool ok = rep->type == REDIS_REPLY_STRING && rep->len == 40;
    r->plain = false;
    if (ok) {
        memcpy(r->sha, rep->str, 41);
    } else if (rep->type == REDIS_REPLY_ERROR &&
               (strncmp(rep->str, "NOPERM", 6) == 0 ||
                strncmp(rep->str, "ERR unknown command", 19) == 0)) {
        /* scripting not allowed for this user: plain commands, no dedup */
        ok = true;
        r->plain = true;
        if (!r->plain_reported) {
            alerts_log(LOG_WARNING,
                       "redis %s: SCRIPT LOAD refused (%.80s); sending plain %s without "
                       "duplicate protection: an alert re-sent after a lost reply may arrive twice",
                       redis_conn_url(r->conn), rep->str, r->plain_cmd);
            r->plain_reported = true;
        }
    } else {
        snprintf(why, whylen, "SCRIPT LOAD failed: %.80s",
                 rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    }
    freeReplyObject(rep);
    if (!ok)
        redis_conn_close(r->conn);
    return ok;
}

/* One pipelined batch; called with mu held, returns with mu held. */
static void send_batch(struct sink_redis *r)
{
    struct spool_rec recs[SINK_BATCH_HARD_MAX];
    size_t n = spool_read(r->sp, r->send_off, recs, r->batch_max);
    if (n == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        r->fl[i].seq = recs[i].seq;
        r->fl[i].end = recs[i].end;
        if (!recs[i].seq)
            continue; /* malformed line: acknowledged without sending */
        char seq[24];
        snprintf(seq, sizeof seq, "%" PRIu64, recs[i].seq);
        const char *argv[10];
        size_t argvlen[10];
        int argc, jpos;
        if (!r->plain) {
            const char *v[] = {"EVALSHA", r->sha,  "2",          r->key,    r->seq_key,
                               seq,       r->mode, recs[i].json, r->maxlen, r->ttl};
            argc = 10;
            jpos = 7;
            memcpy(argv, v, sizeof v);
        } else if (strcmp(r->plain_cmd, "XADD") == 0) {
            const char *v[] = {"XADD",    r->key, "MAXLEN", "~",
                               r->maxlen, "*",    "alert",  recs[i].json};
            argc = 8;
            jpos = 7;
            memcpy(argv, v, sizeof v);
        } else {
            const char *v[] = {r->plain_cmd, r->key, recs[i].json};
            argc = 3;
            jpos = 2;
            memcpy(argv, v, sizeof v);
        }
        for (int a = 0; a < argc; a++)
            argvlen[a] = a == jpos ? recs[i].len : strlen(argv[a]);
        if (redis_conn_append_argv(r->conn, argc, argv, argvlen) != SW_OK) {
            n = i; /* the connection is closed: nothing of this batch is read */
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);

    char why[200] = "";
    size_t done = 0;
    for (size_t i = 0; i < n; i++) {
        int applied = 0;
        if (r->fl[i].seq) {
            redisReply *rep;
            if (redis_conn_get_reply(r->conn, r->io_timeout_ms, &rep) != SW_OK) {
                snprintf(why, sizeof why, "%s", redis_conn_errstr(r->conn));
                break;
            }
            if (rep->type == REDIS_REPLY_ERROR) {
                snprintf(why, sizeof why, "alert seq %" PRIu64 " refused: %.120s", r->fl[i].seq,
                         rep->str);
                freeReplyObject(rep);
                break;
            }
            applied = r->plain || (rep->type == REDIS_REPLY_INTEGER && rep->integer == 1) ? 1 : 2;
            freeReplyObject(rep);
        }
        pthread_mutex_lock(&r->mu);
        spool_ack(r->sp, r->fl[i].seq, r->fl[i].end);
        if (r->fl[i].seq) {
            r->st.delivered++;
            if (applied == 2)
                r->st.duplicates_skipped++;
            if (r->fl[i].seq <= r->replay_upto)
                r->st.replayed++;
        }
        pthread_mutex_unlock(&r->mu);
        r->send_off = r->fl[i].end;
        done++;
    }
    pthread_mutex_lock(&r->mu);
    spool_save_head(r->sp);
    if (spool_pending(r->sp) == 0)
        r->full_reported = false;
    if (done < n || !redis_conn_is_connected(r->conn)) {
        if (!why[0])
            snprintf(why, sizeof why, "%s", redis_conn_errstr(r->conn));
        went_down(r, why);
    }
    pthread_cond_broadcast(&r->done);
}

static void *sink_thread(void *arg)
{
    struct sink_redis *r = arg;
    pthread_setname_np(pthread_self(), "sw-redis"); /* top -H, ps -L */
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        int64_t now = now_ms();
        if (r->dirty && spool_pending(r->sp) && now - r->last_sync_ms >= 1000) {
            /* fdatasync without the lock: sink_emit() never waits for a disk */
            int fds[2];
            spool_sync_begin(r->sp, fds);
            r->dirty = false;
            r->last_sync_ms = now;
            pthread_mutex_unlock(&r->mu);
            spool_sync_end(fds);
            pthread_mutex_lock(&r->mu);
            continue;
        }
        bool work = spool_pending(r->sp) > 0 && r->send_off < spool_tail(r->sp);
        if (r->try_now) {
            r->try_now = false;
            r->next_try_ms = now;
        }
        if (!work || (!r->up && now < r->next_try_ms)) {
            struct timespec ts;
            int64_t wait = !work ? 1000 : r->next_try_ms - now;
            abs_deadline(&ts, wait > 1000 ? 1000 : wait);
            pthread_cond_timedwait(&r->wake, &r->mu, &ts);
            continue;
        }
        if (!r->up) {
            pthread_mutex_unlock(&r->mu);
            char why[200];
            bool ok = do_connect(r, why, sizeof why);
            pthread_mutex_lock(&r->mu);
            if (!ok) {
                went_down(r, why);
                continue;
            }
            if (r->ever_up)
                r->st.reconnects++;
            if (r->down_reported)
                alerts_log(LOG_NOTICE,
                           "redis %s: connected; replaying %" PRIu64 " spooled alert(s)",
                           redis_conn_url(r->conn), spool_pending(r->sp));
            r->ever_up = true;
            r->down_reported = false;
            r->up = true;
            r->backoff_ms = r->backoff_min_ms;
            r->send_off = spool_head(r->sp);
            continue;
        }
        send_batch(r);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

struct sink_redis *sink_redis_new(const struct sink_cfg *cfg, char *err, size_t errlen)
{
    const char *mode = mode_arg(cfg->mode);
    if (!mode) {
        snprintf(err, errlen, "sink: unknown redis mode %d", (int)cfg->mode);
        return NULL;
    }
    struct sink_redis *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "sink: out of memory");
        return NULL;
    }
    r->mode = mode;
    r->plain_cmd = plain_cmd(cfg->mode);
    r->batch_max = cfg->batch_max ? cfg->batch_max : 256;
    if (r->batch_max > SINK_BATCH_HARD_MAX)
        r->batch_max = SINK_BATCH_HARD_MAX;
    r->io_timeout_ms = cfg->io_timeout_ms > 0 ? cfg->io_timeout_ms : 5000;
    r->backoff_min_ms = cfg->backoff_min_ms > 0 ? cfg->backoff_min_ms : 100;
    r->backoff_max_ms = cfg->backoff_max_ms > 0 ? cfg->backoff_max_ms : 30000;
    if (r->backoff_max_ms < r->backoff_min_ms)
        r->backoff_max_ms = r->backoff_min_ms;
    r->backoff_ms = r->backoff_min_ms;
    snprintf(r->maxlen, sizeof r->maxlen, "%" PRIu64,
             cfg->stream_maxlen ? cfg->stream_maxlen : 1000000);
    snprintf(r->ttl, sizeof r->ttl, "%" PRIu64, cfg->dedup_ttl_s ? cfg->dedup_ttl_s : 30u * 86400);
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->wake, &ca);
    pthread_cond_init(&r->done, &ca);
    pthread_condattr_destroy(&ca);
    r->fl = calloc(SINK_BATCH_HARD_MAX, sizeof *r->fl);
    const char *key = cfg->key && *cfg->key ? cfg->key : "stripwatch:alerts";
    r->key = strdup(key);
    if (!r->fl || !r->key) {
        snprintf(err, errlen, "sink: out of memory");
        goto bad;
    }
    struct redis_conn_opts o;
    redis_conn_opts_defaults(&o);
    o.ca_file = cfg->ca_file;
    o.cert_file = cfg->tls_cert_file;
    o.key_file = cfg->tls_key_file;
    if (cfg->connect_timeout_ms > 0)
        o.connect_timeout_ms = cfg->connect_timeout_ms;
    o.io_timeout_ms = r->io_timeout_ms;
    r->conn = redis_conn_new(cfg->redis_url, &o, err, errlen);
    if (!r->conn)
        goto bad;
    const char *spath = cfg->spool_path && *cfg->spool_path ? cfg->spool_path : "stripwatch.spool";
    r->sp =
        spool_open(spath, cfg->spool_max_bytes ? cfg->spool_max_bytes : 256ull << 20, err, errlen);
    if (!r->sp)
        goto bad;
    size_t kl = strlen(key) + 5 + 17;
    r->seq_key = malloc(kl);
    if (!r->seq_key) {
        snprintf(err, errlen, "sink: out of memory");
        goto bad;
    }
    snprintf(r->seq_key, kl, "%s:seq:%s", key, spool_id(r->sp));
    r->send_off = spool_head(r->sp);
    if (spool_pending(r->sp)) {
        r->replay_upto = spool_last_seq(r->sp);
        alerts_log(LOG_NOTICE,
                   "spool %s: %" PRIu64 " alert(s) from an earlier run are delivered first",
                   spool_path(r->sp), spool_pending(r->sp));
    }
    r->last_sync_ms = now_ms();
    if (pthread_create(&r->th, NULL, sink_thread, r) != 0) {
        snprintf(err, errlen, "sink: cannot start thread: %s", strerror(errno));
        goto bad;
    }
    r->th_started = true;
    return r;
bad:
    sink_redis_free(r, 0);
    return NULL;
}

int sink_redis_emit(struct sink_redis *r, const char *json, size_t len)
{
    uint64_t seq;
    pthread_mutex_lock(&r->mu);
    int rc = spool_append(r->sp, json, len, &seq);
    r->flushed = false;
    if (rc == SW_OK) {
        if (!r->up)
            r->st.spooled++;
        r->dirty = true;
        pthread_cond_signal(&r->wake);
    } else if (rc == SW_ELIMIT) {
        r->st.dropped_spool_full++;
        if (!r->full_reported) {
            alerts_log(
                LOG_WARNING,
                "spool %s: full (bound %" PRIu64
                " bytes); dropping new alerts until Redis takes the spooled ones (counted in "
                "dropped_spool_full)",
                spool_path(r->sp), spool_max_bytes(r->sp));
            r->full_reported = true;
        }
    } else {
        r->st.errors++;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int sink_redis_flush(struct sink_redis *r, int timeout_ms)
{
    pthread_mutex_lock(&r->mu);
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    r->try_now = true;
    pthread_cond_signal(&r->wake);
    uint64_t gen = r->fail_gen;
    while (spool_pending(r->sp) > 0 && r->th_started && r->fail_gen == gen) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            break;
        struct timespec ts;
        abs_deadline(&ts, left);
        pthread_cond_timedwait(&r->done, &r->mu, &ts);
    }
    int rc = spool_sync(r->sp);
    r->dirty = false;
    if (rc == SW_OK && spool_pending(r->sp) > 0)
        rc = SW_AGAIN;
    r->flushed = true;
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void sink_redis_stats(struct sink_redis *r, struct sink_stats *out)
{
    pthread_mutex_lock(&r->mu);
    out->delivered += r->st.delivered;
    out->spooled += r->st.spooled;
    out->replayed += r->st.replayed;
    out->dropped_spool_full += r->st.dropped_spool_full;
    out->reconnects += r->st.reconnects;
    out->errors += r->st.errors;
    out->duplicates_skipped += r->st.duplicates_skipped;
    out->pending += spool_pending(r->sp);
    out->spool_bytes += spool_bytes(r->sp);
    pthread_mutex_unlock(&r->mu);
}

const char *sink_redis_spool_path(const struct sink_redis *r)
{
    return spool_path(r->sp);
}

void sink_redis_free(struct sink_redis *r, int flush_timeout_ms)
{
    if (!r)
        return;
    if (r->th_started) {
        pthread_mutex_lock(&r->mu);
        bool flushed = r->flushed;
        pthread_mutex_unlock(&r->mu);
        if (flush_timeout_ms > 0 && !flushed)
            sink_redis_flush(r, flush_timeout_ms);
        pthread_mutex_lock(&r->mu);
        r->stop = true;
        pthread_cond_signal(&r->wake);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->th, NULL);
    }
    spool_close(r->sp);
    redis_conn_free(r->conn);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->wake);
    pthread_cond_destroy(&r->done);
    free(r->fl);
    free(r->key);
    free(r->seq_key);
    free(r);
}
