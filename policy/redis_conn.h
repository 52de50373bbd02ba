/* SPDX-License-Identifier: Apache-2.0 */
/* redis_conn.h: the project's small Redis client (policy/redis_conn.c), used
 * by the policy cache, the detector's posture store and the alert sink.
 * Own socket I/O (TCP with connect timeout, unix socket, TLS through OpenSSL
 * with SNI and certificate verification); hiredis only encodes commands and
 * decodes replies. Synchronous: every call is bounded by a timeout. After a
 * failure the connection is closed and err/errstr say why (like hiredis'
 * context); whether and when to reconnect is the caller's decision.
 * Not thread-safe: one connection per thread. Passwords never appear in any
 * message or in redis_conn_url(). */
#ifndef SW_REDIS_CONN_H
#define SW_REDIS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

/* A parsed URL. redis://[user:password@]host[:port][/db],
 * rediss://... (TLS, same syntax), unix:///path/to.sock[?db=N].
 * user and password are percent-decoded; ":password@" means password only
 * (AUTH password), "user:password@" means AUTH user password. IPv6 hosts are
 * written in brackets: redis://[::1]:6379. */
enum redis_url_kind { REDIS_URL_TCP = 0, REDIS_URL_TLS, REDIS_URL_UNIX };

#define REDIS_URL_HOST_MAX 256
#define REDIS_URL_PATH_MAX 108 /* sizeof(sun_path) */
#define REDIS_URL_CRED_MAX 256

struct redis_url {
    enum redis_url_kind kind;
    char host[REDIS_URL_HOST_MAX]; /* without brackets */
    uint16_t port;                 /* default 6379 */
    char path[REDIS_URL_PATH_MAX]; /* unix socket */
    char user[REDIS_URL_CRED_MAX]; /* "" for none */
    char password[REDIS_URL_CRED_MAX];
    bool has_password;
    int db; /* 0 default */
};

/* Parses url into *u. SW_OK, or SW_EPROTO with a message in err such as
 * `redis URL "redis://h:0": port "0": not 1-65535`; the URL in the message
 * has its password masked. */
int redis_url_parse(const char *url, struct redis_url *u, char *err, size_t errlen);
/* Writes url with the password replaced by "***" (textual, works on URLs
 * that do not parse). Always NUL-terminates; returns buf. */
char *redis_url_mask(const char *url, char *buf, size_t len);

/* err values, like hiredis' REDIS_ERR_*. */
enum redis_conn_err {
    REDIS_CONN_OK = 0,
    REDIS_CONN_EIO,      /* socket error, refused, reset */
    REDIS_CONN_EOF,      /* server closed the connection */
    REDIS_CONN_ETIMEOUT, /* connect or reply timeout */
    REDIS_CONN_EPROTO,   /* reply does not parse */
    REDIS_CONN_ETLS,     /* handshake or certificate verification failed */
    REDIS_CONN_EAUTH,    /* AUTH or SELECT refused */
    REDIS_CONN_EOOM,
    REDIS_CONN_ESTATE, /* not connected, or pipeline misuse */
};

struct redis_conn_opts {
    const char *ca_file;    /* rediss: CA bundle; NULL: system store */
    const char *cert_file;  /* rediss: client certificate (PEM) for servers that
                               require one (Redis' tls-auth-clients yes); NULL: none */
    const char *key_file;   /* its private key (PEM); NULL: in cert_file */
    int connect_timeout_ms; /* default 2000 (TCP connect + TLS + AUTH + SELECT) */
    int io_timeout_ms;      /* default for redis_conn_command(): 2000 */
    bool tls_no_verify;     /* tests only; never set by the sensor */
};
void redis_conn_opts_defaults(struct redis_conn_opts *o);

struct redis_conn;
/* Parses url (message in err on failure, NULL returned); does not connect.
 * opts may be NULL for defaults. */
struct redis_conn *redis_conn_new(const char *url, const struct redis_conn_opts *opts, char *err,
                                  size_t errlen);
void redis_conn_free(struct redis_conn *c); /* NULL is a no-op */

/* Connects (closing any previous connection), TLS handshake for rediss://,
 * AUTH and SELECT, all within connect_timeout_ms. SW_OK or SW_EIO (err set). */
int redis_conn_connect(struct redis_conn *c);
void redis_conn_close(struct redis_conn *c);
bool redis_conn_is_connected(const struct redis_conn *c);

/* Synchronous command; the reply (freeReplyObject()) or NULL on an I/O
 * failure (err set, connection closed). A Redis error reply is returned as a
 * REDIS_REPLY_ERROR reply, not as a failure. timeout_ms < 0: io_timeout_ms. */
redisReply *redis_conn_command(struct redis_conn *c, int timeout_ms, const char *fmt, ...);
redisReply *redis_conn_command_argv(struct redis_conn *c, int timeout_ms, int argc,
                                    const char **argv, const size_t *argvlen);

/* Pipelining: append N commands (buffered, no I/O), then read N replies in
 * order with redis_conn_get_reply() (the first call writes the buffer).
 * A failed append (not connected, over 256 MiB buffered, out of memory)
 * closes the connection like any other failure: nothing half-queued stays. */
int redis_conn_append_argv(struct redis_conn *c, int argc, const char **argv,
                           const size_t *argvlen);
int redis_conn_append(struct redis_conn *c, const char *fmt, ...);
/* Number of appended commands whose reply was not read yet. */
size_t redis_conn_pending(const struct redis_conn *c);
/* SW_OK and *reply, or SW_EIO (err set, connection closed, pending reset).
 * A reply longer than REDIS_CONN_REPLY_MAX is refused (REDIS_CONN_EPROTO). */
#define REDIS_CONN_REPLY_MAX (64u << 20)
int redis_conn_get_reply(struct redis_conn *c, int timeout_ms, redisReply **reply);

int redis_conn_err(const struct redis_conn *c);
const char *redis_conn_errstr(const struct redis_conn *c); /* "" when err == 0 */
/* The URL with the password masked, for messages. */
const char *redis_conn_url(const struct redis_conn *c);
const struct redis_url *redis_conn_parsed_url(const struct redis_conn *c);

#endif
