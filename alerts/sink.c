/* SPDX-License-Identifier: Apache-2.0 */
/* sink.c: alert delivery front end: JSON lines to a file or stdout, and/or
 * the Redis sink (sink_redis.c) with its spool. Follows RFC 8259 (JSON text;
 * one object per line as in the JSON Lines convention) and RFC 7464's
 * rationale for newline-free records.
 *
 * File/stdout: each alert is written as one line with a single fwrite and
 * flushed (fflush) at once, so a reader tailing the file or the pipe never
 * sees half a line and never waits for a batch; files are fsynced at
 * sink_flush()/sink_free(), not per line. Runs reading regular files that
 * write a file (file_batch) gather whole lines into writes of
 * SINK_FILE_BATCH bytes. */
#include "alerts/sink.h"
#include "alerts/alog.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alerts/sink_redis.h"
#include "alerts/spool.h"
#include "decode/sw.h"

struct sink {
    pthread_mutex_t mu; /* producers: the output stage (alerts), the capture thread (health) */
    FILE *out;
    bool own_out;
    char *out_name;
    struct sink_redis *redis;
    int flush_timeout_ms;
    struct sink_stats file_st; /* counters of the file half and of sink_emit itself */
    struct sink_stats snap;    /* what sink_stats() returns */
    char *scratch;
    size_t scap;
    bool big_reported;
    /* file_batch: bytes and lines in the stream's buffer, not written yet */
    bool batch;
    char *batch_buf; /* the stream's buffer (setvbuf allocates only 4 KiB itself) */
    size_t batched;
    uint64_t batch_lines;
};

void sink_cfg_defaults(struct sink_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->out_path = "-";
    c->mode = SINK_REDIS_LIST;
    c->key = "stripwatch:alerts";
    c->stream_maxlen = 1000000;
    c->spool_path = "stripwatch.spool";
    c->spool_max_bytes = 256ull << 20;
    c->batch_max = 256;
    c->connect_timeout_ms = 2000;
    c->io_timeout_ms = 5000;
    c->backoff_min_ms = 100;
    c->backoff_max_ms = 30000;
    c->dedup_ttl_s = 30ull * 86400;
}

struct sink *sink_new(const struct sink_cfg *cfg, char *err, size_t errlen)
{
    struct sink *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "sink: out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->flush_timeout_ms = cfg->io_timeout_ms > 0 ? cfg->io_timeout_ms : 5000;
    if (cfg->out_path && *cfg->out_path) {
        if (strcmp(cfg->out_path, "-") == 0) {
            s->out = stdout;
            s->out_name = strdup("stdout");
        } else {
            s->out = fopen(cfg->out_path, "ae");
            if (!s->out) {
                snprintf(err, errlen, "stripwatch: %s: %s", cfg->out_path, strerror(errno));
                free(s);
                return NULL;
            }
            s->own_out = true;
            s->out_name = strdup(cfg->out_path);
            if (cfg->file_batch && (s->batch_buf = malloc(SINK_FILE_BATCH)) != NULL &&
                setvbuf(s->out, s->batch_buf, _IOFBF, SINK_FILE_BATCH) == 0)
                s->batch = true;
        }
        if (!s->out_name) {
            snprintf(err, errlen, "sink: out of memory");
            sink_free(s);
            return NULL;
        }
    }
    if (cfg->redis_url) {
        s->redis = sink_redis_new(cfg, err, errlen);
        if (!s->redis) {
            sink_free(s);
            return NULL;
        }
    }
    return s;
}

/* A copy of json with CR/LF turned into spaces (JSON whitespace outside
 * strings; raw inside a string they were invalid anyway), or json itself. */
static const char *one_line(struct sink *s, const char *json, size_t len)
{
    if (!memchr(json, '\n', len) && !memchr(json, '\r', len))
        return json;
    if (s->scap < len) {
        char *n = realloc(s->scratch, len);
        if (!n)
            return NULL;
        s->scratch = n;
        s->scap = len;
    }
    for (size_t i = 0; i < len; i++)
        s->scratch[i] = json[i] == '\n' || json[i] == '\r' ? ' ' : json[i];
    return s->scratch;
}

static int emit_locked(struct sink *s, const char *json, size_t len);

/* file_batch: writes what the buffer holds; its lines count as delivered,
 * or as errors when the write fails. */
static int batch_write(struct sink *s)
{
    int rc = SW_OK;
    if (fflush(s->out) != 0) {
        s->file_st.errors += s->batch_lines;
        rc = SW_EIO;
    } else if (!s->redis) {
        s->file_st.delivered += s->batch_lines;
    }
    s->batched = 0;
    s->batch_lines = 0;
    return rc;
}

/* file_batch: one line into the buffer, written first when it would not
 * fit, so writes end at line ends. */
static int batch_line(struct sink *s, const char *line, size_t len)
{
    int rc = SW_OK;
    if (s->batched && s->batched + len + 1 > SINK_FILE_BATCH)
        rc = batch_write(s);
    if (fwrite(line, 1, len, s->out) != len || fputc('\n', s->out) == EOF) {
        s->file_st.errors++;
        return SW_EIO;
    }
    s->batched += len + 1;
    s->batch_lines++;
    if (s->batched >= SINK_FILE_BATCH) {
        int r2 = batch_write(s);
        if (rc == SW_OK)
            rc = r2;
    }
    return rc;
}

int sink_emit(struct sink *s, const char *json, size_t len)
{
    pthread_mutex_lock(&s->mu);
    int rc = emit_locked(s, json, len);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int emit_locked(struct sink *s, const char *json, size_t len)
{
    s->file_st.emitted++;
    if (len > SPOOL_REC_MAX) {
        s->file_st.errors++;
        if (!s->big_reported) {
            alerts_log(LOG_WARNING, "sink: alert of %zu bytes dropped (over the %u-byte limit)",
                       len, SPOOL_REC_MAX);
            s->big_reported = true;
        }
        return SW_ELIMIT;
    }
    const char *line = one_line(s, json, len);
    if (!line) {
        s->file_st.errors++;
        return SW_ENOMEM;
    }
    int rc = SW_OK;
    if (s->out && s->batch) {
        rc = batch_line(s, line, len);
    } else if (s->out) {
        if (fwrite(line, 1, len, s->out) != len || fputc('\n', s->out) == EOF ||
            fflush(s->out) != 0) {
            s->file_st.errors++;
            rc = SW_EIO;
        } else if (!s->redis) {
            s->file_st.delivered++;
        }
    }
    if (s->redis) {
        int r2 = sink_redis_emit(s->redis, line, len);
        if (r2 != SW_OK)
            rc = r2;
    }
    return rc;
}

int sink_flush(struct sink *s, int timeout_ms)
{
    int rc = SW_OK;
    if (s->out) {
        pthread_mutex_lock(&s->mu);
        if (s->batch ? batch_write(s) != SW_OK : fflush(s->out) != 0)
            rc = SW_EIO;
        pthread_mutex_unlock(&s->mu);
        if (s->own_out && fsync(fileno(s->out)) != 0)
            rc = SW_EIO;
    }
    if (s->redis) {
        int r2 = sink_redis_flush(s->redis, timeout_ms);
        if (rc == SW_OK)
            rc = r2;
    }
    return rc;
}

int sink_reopen(struct sink *s, char *err, size_t errlen)
{
    if (!s->out || !s->own_out)
        return SW_OK;
    FILE *f = fopen(s->out_name, "ae");
    if (!f) {
        snprintf(err, errlen, "%s: %s", s->out_name, strerror(errno));
        return SW_EIO;
    }
    int rc = SW_OK;
    /* the health records' thread may emit meanwhile: the swap under the lock */
    pthread_mutex_lock(&s->mu);
    if ((s->batch && batch_write(s) != SW_OK) || fflush(s->out) != 0 ||
        fsync(fileno(s->out)) != 0) {
        snprintf(err, errlen, "%s: %s", s->out_name, strerror(errno));
        rc = SW_EIO;
    }
    fclose(s->out);
    s->out = f;
    if (s->batch && setvbuf(s->out, s->batch_buf, _IOFBF, SINK_FILE_BATCH) != 0)
        s->batch = false;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

const struct sink_stats *sink_stats(const struct sink *cs)
{
    struct sink *s = (struct sink *)cs; /* the snapshot is a cache */
    pthread_mutex_lock(&s->mu);
    s->snap = s->file_st;
    if (s->redis)
        sink_redis_stats(s->redis, &s->snap);
    pthread_mutex_unlock(&s->mu);
    return &s->snap;
}

const char *sink_spool_path(const struct sink *s)
{
    return s->redis ? sink_redis_spool_path(s->redis) : NULL;
}

void sink_free(struct sink *s)
{
    if (!s)
        return;
    if (s->redis)
        sink_redis_free(s->redis, s->flush_timeout_ms);
    if (s->out) {
        if (s->batch)
            batch_write(s);
        fflush(s->out);
        if (s->own_out) {
            fsync(fileno(s->out));
            fclose(s->out);
        }
    }
    free(s->out_name);
    free(s->batch_buf); /* after fclose: the stream no longer uses it */
    free(s->scratch);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
