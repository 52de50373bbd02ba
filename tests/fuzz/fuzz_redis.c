/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_redis.c: libFuzzer target for Redis replies as the project's client
 * reads them (policy/redis_conn.c over hiredis' reply reader): a server on a
 * unix socket of a scratch folder answers with the input bytes and closes;
 * the client pipelines commands and reads replies until one fails. Every
 * reply is walked to its leaves; a failure must leave an error message and
 * the connection closed. */
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "decode/sw.h"
#include "policy/redis_conn.h"
#include "tests/fuzz/fuzz_input.h"

#define FUZZ_MAX_INPUT (64 * 1024) /* fits in the socket buffer: no thread */

static int listen_fd = -1;
static char url[200];

static void walk(const redisReply *r, int depth)
{
    if (!r || depth > 64)
        abort();
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        if (!r->str || strlen(r->str) > r->len)
            abort();
        break;
    case REDIS_REPLY_ARRAY:
        for (size_t i = 0; i < r->elements; i++)
            walk(r->element[i], depth + 1);
        break;
    case REDIS_REPLY_INTEGER:
    case REDIS_REPLY_NIL:
        break;
    default:
        abort();
    }
}

static char sock_path[108];

static void server_unlink(void)
{
    unlink(sock_path);
}

static void server_init(void)
{
    if (listen_fd >= 0)
        return;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    const char *dir = fuzz_scratch_dir();
    if (strlen(dir) + sizeof("/redis.sock") > sizeof(sa.sun_path))
        abort();
    memcpy(sa.sun_path, dir, strlen(dir));
    memcpy(sa.sun_path + strlen(dir), "/redis.sock", sizeof("/redis.sock"));
    unlink(sa.sun_path);
    listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(listen_fd, 4) != 0)
        abort();
    snprintf(url, sizeof(url), "unix://%s", sa.sun_path);
    memcpy(sock_path, sa.sun_path, sizeof(sock_path));
    atexit(server_unlink); /* before the scratch folder's rmdir (LIFO) */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT)
        return 0;
    server_init();
    char err[256];
    struct redis_conn_opts o;
    redis_conn_opts_defaults(&o);
    o.io_timeout_ms = 1000;
    struct redis_conn *c = redis_conn_new(url, &o, err, sizeof(err));
    if (!c || redis_conn_connect(c) != SW_OK)
        abort();
    int s = accept(listen_fd, NULL, NULL);
    if (s < 0)
        abort();
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(s, data + off, size - off);
        if (n <= 0)
            abort();
        off += (size_t)n;
    }
    shutdown(s, SHUT_WR);
    /* a few single commands, then a pipeline of the rest */
    int replies = 0;
    for (int i = 0; i < 3; i++) {
        redisReply *r = redis_conn_command(c, -1, "GET k%d", i);
        if (!r)
            break;
        walk(r, 0);
        freeReplyObject(r);
        replies++;
    }
    if (redis_conn_is_connected(c)) {
        for (int i = 0; i < 8; i++)
            if (redis_conn_append(c, "HGETALL h%d", i) != SW_OK)
                abort();
        for (int i = 0; i < 8; i++) {
            redisReply *r;
            if (redis_conn_get_reply(c, -1, &r) != SW_OK)
                break;
            walk(r, 0);
            freeReplyObject(r);
            replies++;
        }
    }
    if (replies < 11 && (redis_conn_is_connected(c) || !redis_conn_errstr(c)[0]))
        abort(); /* a failure names itself and closes */
    redis_conn_free(c);
    close(s);
    return 0;
}
