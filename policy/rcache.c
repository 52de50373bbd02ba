/* SPDX-License-Identifier: Apache-2.0 */
/* rcache.c: MTA-STS policies shared through Redis, and the per-domain fetch lock.
 * RFC 8461 §5.1 (policy caching), RFC 3339 (fetched_at). */
#include "policy/rcache.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "decode/sw.h"
#include "policy/redis_conn.h"
#include "policy/snapshot.h"

#define RCACHE_IO_MS     500
#define RCACHE_BACKOFF_S 5

struct rcache {
    struct redis_conn *c;
    time_t next_try; /* no reconnect before this (monotonic seconds) */
    char token[40];
    char err[256];
};

static time_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

struct rcache *rcache_new(const char *url, char *err, size_t errlen)
{
    struct rcache *rc = calloc(1, sizeof(*rc));
    if (!rc) {
        snprintf(err, errlen, "redis cache: out of memory");
        return NULL;
    }
    struct redis_conn_opts o;
    redis_conn_opts_defaults(&o);
    o.connect_timeout_ms = 1000;
    o.io_timeout_ms = RCACHE_IO_MS;
    rc->c = redis_conn_new(url, &o, err, errlen);
    if (!rc->c) {
        free(rc);
        return NULL;
    }
    unsigned char rnd[16];
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f ? fread(rnd, 1, sizeof(rnd), f) : 0;
    if (f)
        fclose(f);
    if (got != sizeof(rnd)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
        for (size_t i = 0; i < sizeof(rnd); i++, x = x * 6364136223846793005ULL + 1)
            rnd[i] = (unsigned char)(x >> 56);
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(rc->token + 2 * i, 3, "%02x", rnd[i]);
    return rc;
}

void rcache_free(struct rcache *rc)
{
    if (!rc)
        return;
    redis_conn_free(rc->c);
    free(rc);
}

const char *rcache_error(const struct rcache *rc)
{
    return rc->err;
}

static bool ensure(struct rcache *rc)
{
    if (redis_conn_is_connected(rc->c))
        return true;
    time_t now = mono_s();
    if (now < rc->next_try)
        return false;
    if (redis_conn_connect(rc->c) != SW_OK) {
        rc->next_try = now + RCACHE_BACKOFF_S;
        snprintf(rc->err, sizeof(rc->err), "redis %s: %s", redis_conn_url(rc->c),
                 redis_conn_errstr(rc->c));
        return false;
    }
    rc->err[0] = 0;
    return true;
}

static redisReply *cmd(struct rcache *rc, int argc, const char **argv)
{
    if (!ensure(rc))
        return NULL;
    size_t len[8];
    for (int i = 0; i < argc; i++)
        len[i] = strlen(argv[i]);
    redisReply *r = redis_conn_command_argv(rc->c, RCACHE_IO_MS, argc, argv, len);
    if (!r) {
        rc->next_try = mono_s() + RCACHE_BACKOFF_S;
        snprintf(rc->err, sizeof(rc->err), "redis %s: %s", redis_conn_url(rc->c),
                 redis_conn_errstr(rc->c));
    }
    return r;
}

int rcache_value_parse(const char *key, const char *val, size_t len, char id[33], char **text,
                       int64_t *fetched_at, char *err, size_t errlen)
{
    json_error_t je;
    json_t *o = json_loadb(val, len, 0, &je);
    const char *jid = o ? json_string_value(json_object_get(o, "id")) : NULL;
    const char *jpol = o ? json_string_value(json_object_get(o, "policy")) : NULL;
    const char *jat = o ? json_string_value(json_object_get(o, "fetched_at")) : NULL;
    int ret = SW_EPROTO;
    if (!o)
        snprintf(err, errlen, "redis key %s: not JSON: %s", key, je.text);
    else if (!jid || strlen(jid) > 32)
        snprintf(err, errlen, "redis key %s: id: missing or not 1-32 characters", key);
    else if (!jpol)
        snprintf(err, errlen, "redis key %s: policy: missing or not a string", key);
    else if (!jat || !snapshot_time_parse(jat, strlen(jat), fetched_at))
        snprintf(err, errlen, "redis key %s: fetched_at: missing or not RFC 3339", key);
    else if (*fetched_at < 0)
        snprintf(err, errlen, "redis key %s: fetched_at: before 1970", key); /* as snapshot */
    else {
        snprintf(id, 33, "%s", jid);
        size_t n = json_string_length(json_object_get(o, "policy"));
        *text = malloc(n + 1);
        ret = SW_ENOMEM;
        if (*text) {
            memcpy(*text, jpol, n);
            (*text)[n] = 0;
            ret = SW_OK;
        }
    }
    json_decref(o);
    return ret;
}

int rcache_get(struct rcache *rc, const char *domain, char id[33], char **text, int64_t *fetched_at,
               char *err, size_t errlen)
{
    char key[300];
    snprintf(key, sizeof(key), RCACHE_KEY_PREFIX "%s", domain);
    const char *argv[] = {"GET", key};
    redisReply *r = cmd(rc, 2, argv);
    if (!r)
        return SW_EIO;
    int ret = SW_AGAIN;
    if (r->type == REDIS_REPLY_STRING) {
        ret = rcache_value_parse(key, r->str, r->len, id, text, fetched_at, err, errlen);
    } else if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "redis key %s: %s", key, r->str);
        ret = SW_EIO;
    }
    freeReplyObject(r);
    return ret;
}

int rcache_put(struct rcache *rc, const char *domain, const char *id, const char *text,
               int64_t fetched_at, int64_t ttl_s)
{
    char key[300], at[32], ttl[24];
    snprintf(key, sizeof(key), RCACHE_KEY_PREFIX "%s", domain);
    snapshot_time_format(fetched_at, at);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)(ttl_s < 1 ? 1 : ttl_s));
    json_t *o = json_pack("{s:s, s:s, s:s}", "id", id, "policy", text, "fetched_at", at);
    char *val = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!val)
        return SW_ENOMEM;
    const char *argv[] = {"SET", key, val, "EX", ttl};
    redisReply *r = cmd(rc, 5, argv);
    free(val);
    if (!r)
        return SW_EIO;
    int ret = r->type == REDIS_REPLY_STATUS ? SW_OK : SW_EIO;
    freeReplyObject(r);
    return ret;
}

int rcache_lock(struct rcache *rc, const char *domain)
{
    char key[300], px[16];
    snprintf(key, sizeof(key), RCACHE_LOCK_PREFIX "%s", domain);
    snprintf(px, sizeof(px), "%d", RCACHE_LOCK_MS);
    const char *argv[] = {"SET", key, rc->token, "NX", "PX", px};
    redisReply *r = cmd(rc, 6, argv);
    if (!r)
        return SW_EIO;
    int ret = r->type == REDIS_REPLY_STATUS ? SW_OK
              : r->type == REDIS_REPLY_NIL  ? SW_AGAIN
                                            : SW_EIO;
    freeReplyObject(r);
    return ret;
}

void rcache_unlock(struct rcache *rc, const char *domain)
{
    static const char script[] =
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) "
        "else return 0 end";
    char key[300];
    snprintf(key, sizeof(key), RCACHE_LOCK_PREFIX "%s", domain);
    const char *argv[] = {"EVAL", script, "1", key, rc->token};
    redisReply *r = cmd(rc, 5, argv);
    if (r)
        freeReplyObject(r);
}
