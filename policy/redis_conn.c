/* SPDX-License-Identifier: Apache-2.0 */
/* redis_conn.c: small synchronous Redis client: URL parsing, TCP/unix/TLS
 * socket I/O with deadlines, AUTH/SELECT, commands and pipelining.
 * Follows RESP2 (Redis protocol spec, via hiredis' encoder and reader),
 * RFC 3986 (URL syntax, percent-encoding), RFC 6066 (SNI), RFC 6125
 * (host name verification via OpenSSL). */
#include "policy/redis_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "decode/sw.h"

#define REDIS_CONN_OBUF_MAX (256u << 20) /* pipelined bytes not yet written */
#define REDIS_CONN_URL_MAX  1024

struct redis_conn {
    struct redis_url url;
    char url_masked[REDIS_CONN_URL_MAX];
    struct redis_conn_opts opts;
    int fd;
    SSL_CTX *ssl_ctx;
    SSL *ssl;
    redisReader *reader;
    char *obuf;
    size_t olen, ocap;
    size_t pending;
    int err;
    char errstr[128];
};

/* ---- URL ---------------------------------------------------------------- */

char *redis_url_mask(const char *url, char *buf, size_t len)
{
    if (len == 0)
        return buf;
    buf[0] = '\0';
    if (!url)
        return buf;
    size_t o = 0;
    const char *p = url;
    const char *sep = strstr(url, "://");
    const char *at = NULL;
    if (sep) {
        for (const char *q = sep + 3; *q && *q != '?'; q++)
            if (*q == '@')
                at = q;
    }
#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (o + 1 < len)                                                                           \
            buf[o++] = (ch);                                                                       \
    } while (0)
    while (*p) {
        if (sep && at && p == sep + 3) {
            /* userinfo: keep the user, mask the password */
            const char *colon = memchr(p, ':', (size_t)(at - p));
            const char *keep_end = colon ? colon + 1 : p;
            for (const char *q = p; q < keep_end; q++)
                PUT(*q);
            for (const char *m = "***"; *m; m++)
                PUT(*m);
            p = at;
            continue;
        }
        if ((*p == '?' || *p == '&') && strncmp(p + 1, "password=", 9) == 0) {
            for (const char *m = p; m < p + 10; m++)
                PUT(*m);
            for (const char *m = "***"; *m; m++)
                PUT(*m);
            p += 10;
            while (*p && *p != '&')
                p++;
            continue;
        }
        PUT(*p);
        p++;
    }
#undef PUT
    buf[o] = '\0';
    return buf;
}

static int url_fail(char *err, size_t errlen, const char *url, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int url_fail(char *err, size_t errlen, const char *url, const char *fmt, ...)
{
    char masked[REDIS_CONN_URL_MAX], why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (err && errlen)
        snprintf(err, errlen, "redis URL \"%s\": %s", redis_url_mask(url, masked, sizeof masked),
                 why);
    return SW_EPROTO;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, s+n) into out; false on a bad escape or overflow. */
static bool pct_decode(const char *s, size_t n, char *out, size_t outlen, bool *overflow)
{
    size_t o = 0;
    *overflow = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return false;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return false;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (c == '\0')
            return false;
        if (o + 1 >= outlen) {
            *overflow = true;
            return false;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return true;
}

/* Decimal in [lo, hi], 1-10 digits, nothing else. */
static bool parse_num(const char *s, size_t n, long long lo, long long hi, long long *v)
{
    if (n == 0 || n > 10)
        return false;
    long long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        x = x * 10 + (s[i] - '0');
    }
    if (x < lo || x > hi)
        return false;
    *v = x;
    return true;
}

static int parse_userinfo(const char *url, const char *s, size_t n, struct redis_url *u, char *err,
                          size_t errlen)
{
    const char *colon = memchr(s, ':', n);
    bool ovf;
    if (!colon)
        return url_fail(err, errlen, url,
                        "userinfo without \":\" (write :password@ or user:password@)");
    size_t ulen = (size_t)(colon - s), plen = n - ulen - 1;
    if (!pct_decode(s, ulen, u->user, sizeof u->user, &ovf))
        return url_fail(err, errlen, url,
                        ovf ? "user: longer than %d bytes" : "user: bad percent escape",
                        REDIS_URL_CRED_MAX - 1);
    if (plen == 0)
        return url_fail(err, errlen, url, "empty password");
    if (!pct_decode(colon + 1, plen, u->password, sizeof u->password, &ovf))
        return url_fail(err, errlen, url,
                        ovf ? "password: longer than %d bytes" : "password: bad percent escape",
                        REDIS_URL_CRED_MAX - 1);
    u->has_password = true;
    return SW_OK;
}

static int parse_db(const char *url, const char *s, size_t n, struct redis_url *u, char *err,
                    size_t errlen)
{
    long long v;
    if (n == 0)
        return SW_OK;
    if (!parse_num(s, n, 0, INT_MAX, &v))
        return url_fail(err, errlen, url, "db \"%.*s\": not 0-%d", (int)(n > 40 ? 40 : n), s,
                        INT_MAX);
    u->db = (int)v;
    return SW_OK;
}

static int parse_unix(const char *url, const char *rest, struct redis_url *u, char *err,
                      size_t errlen)
{
    const char *q = strchr(rest, '?');
    size_t plen = q ? (size_t)(q - rest) : strlen(rest);
    if (plen == 0)
        return url_fail(err, errlen, url, "missing socket path");
    if (rest[0] != '/')
        return url_fail(err, errlen, url, "socket path must be absolute (unix:///path)");
    if (plen >= sizeof u->path)
        return url_fail(err, errlen, url, "socket path longer than %zu bytes", sizeof u->path - 1);
    memcpy(u->path, rest, plen);
    u->path[plen] = '\0';
    if (!q)
        return SW_OK;
    const char *p = q + 1;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        size_t klen = eq ? (size_t)(eq - p) : n;
        const char *v = eq ? eq + 1 : p + n;
        size_t vlen = eq ? n - klen - 1 : 0;
        bool ovf;
        int rc = SW_OK;
        if (klen == 2 && memcmp(p, "db", 2) == 0) {
            if (vlen == 0)
                return url_fail(err, errlen, url, "db \"\": not 0-%d", INT_MAX);
            rc = parse_db(url, v, vlen, u, err, errlen);
        } else if (klen == 8 && memcmp(p, "password", 8) == 0) {
            if (vlen == 0)
                return url_fail(err, errlen, url, "empty password");
            if (!pct_decode(v, vlen, u->password, sizeof u->password, &ovf))
                return url_fail(err, errlen, url,
                                ovf ? "password: longer than %d bytes"
                                    : "password: bad percent escape",
                                REDIS_URL_CRED_MAX - 1);
            u->has_password = true;
        } else if (klen == 4 && memcmp(p, "user", 4) == 0) {
            if (!pct_decode(v, vlen, u->user, sizeof u->user, &ovf))
                return url_fail(err, errlen, url,
                                ovf ? "user: longer than %d bytes" : "user: bad percent escape",
                                REDIS_URL_CRED_MAX - 1);
        } else {
            return url_fail(err, errlen, url,
                            "unknown parameter \"%.*s\" (expected db, user, password)",
                            (int)(klen > 40 ? 40 : klen), p);
        }
        if (rc != SW_OK)
            return rc;
        p += n;
        if (*p == '&')
            p++;
    }
    if (u->user[0] && !u->has_password)
        return url_fail(err, errlen, url, "user without password");
    return SW_OK;
}

int redis_url_parse(const char *url, struct redis_url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    u->port = 6379;
    if (!url || !*url)
        return url_fail(err, errlen, url ? url : "", "empty");
    if (strlen(url) >= REDIS_CONN_URL_MAX)
        return url_fail(err, errlen, "", "longer than %d bytes", REDIS_CONN_URL_MAX - 1);
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
            return url_fail(err, errlen, url, "contains a space or control character");
    const char *rest;
    if (strncmp(url, "redis://", 8) == 0) {
        u->kind = REDIS_URL_TCP;
        rest = url + 8;
    } else if (strncmp(url, "rediss://", 9) == 0) {
        u->kind = REDIS_URL_TLS;
        rest = url + 9;
    } else if (strncmp(url, "unix://", 7) == 0) {
        u->kind = REDIS_URL_UNIX;
        return parse_unix(url, url + 7, u, err, errlen);
    } else {
        const char *sep = strstr(url, "://");
        if (!sep)
            return url_fail(err, errlen, url,
                            "no scheme (expected redis://, rediss:// or unix://)");
        return url_fail(err, errlen, url,
                        "unknown scheme \"%.*s\" (expected redis://, rediss:// or unix://)",
                        (int)((sep - url) > 20 ? 20 : (sep - url)), url);
    }
    if (strchr(rest, '?') || strchr(rest, '#'))
        return url_fail(err, errlen, url, "unexpected query or fragment");
    /* userinfo ends at the last '@' */
    const char *at = strrchr(rest, '@');
    if (at) {
        int rc = parse_userinfo(url, rest, (size_t)(at - rest), u, err, errlen);
        if (rc != SW_OK)
            return rc;
        rest = at + 1;
    }
    const char *slash = strchr(rest, '/');
    size_t alen = slash ? (size_t)(slash - rest) : strlen(rest);
    const char *hs = rest, *he, *portp = NULL;
    if (alen > 0 && rest[0] == '[') {
        const char *rb = memchr(rest, ']', alen);
        if (!rb)
            return url_fail(err, errlen, url, "unterminated \"[\" in host");
        hs = rest + 1;
        he = rb;
        if (rb + 1 < rest + alen) {
            if (rb[1] != ':')
                return url_fail(err, errlen, url, "junk after \"]\" in host");
            portp = rb + 2;
        }
        struct in6_addr a6;
        char tmp[REDIS_URL_HOST_MAX];
        size_t hl = (size_t)(he - hs);
        if (hl >= sizeof tmp)
            return url_fail(err, errlen, url, "host longer than %d bytes", REDIS_URL_HOST_MAX - 1);
        memcpy(tmp, hs, hl);
        tmp[hl] = '\0';
        if (inet_pton(AF_INET6, tmp, &a6) != 1)
            return url_fail(err, errlen, url, "host \"[%s]\": not an IPv6 address", tmp);
    } else {
        const char *colon = memchr(rest, ':', alen);
        he = colon ? colon : rest + alen;
        if (colon)
            portp = colon + 1;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0)
        return url_fail(err, errlen, url, "missing host");
    if (hl >= sizeof u->host)
        return url_fail(err, errlen, url, "host longer than %d bytes", REDIS_URL_HOST_MAX - 1);
    memcpy(u->host, hs, hl);
    u->host[hl] = '\0';
    if (portp) {
        size_t pl = (size_t)(rest + alen - portp);
        long long v;
        if (!parse_num(portp, pl, 1, 65535, &v))
            return url_fail(err, errlen, url, "port \"%.*s\": not 1-65535",
                            (int)(pl > 40 ? 40 : pl), portp);
        u->port = (uint16_t)v;
    }
    if (slash)
        return parse_db(url, slash + 1, strlen(slash + 1), u, err, errlen);
    return SW_OK;
}

/* ---- errors and time ------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conn_drop(struct redis_conn *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    if (c->reader) {
        redisReaderFree(c->reader);
        c->reader = NULL;
    }
    c->olen = 0;
    c->pending = 0;
}

static int set_err(struct redis_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int set_err(struct redis_conn *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errstr, sizeof c->errstr, fmt, ap);
    va_end(ap);
    c->err = code;
    conn_drop(c);
    return SW_EIO;
}

static void clear_err(struct redis_conn *c)
{
    c->err = 0;
    c->errstr[0] = '\0';
}

static const char *ssl_errstr(void)
{
    static __thread char buf[96];
    unsigned long e = ERR_get_error();
    if (!e)
        return "no details";
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

/* ---- socket I/O with deadlines ------------------------------------------- */

/* OpenSSL writes with write(2), which raises SIGPIPE on a closed peer; a
 * library must not kill a process that did not ignore it. Plain sockets use
 * MSG_NOSIGNAL; TLS calls run with SIGPIPE blocked in this thread and a
 * SIGPIPE they raised is consumed. */
struct sigpipe_guard {
    sigset_t old;
    bool was_pending;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
    sigset_t set, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pend);
    sigpending(&pend);
    g->was_pending = sigismember(&pend, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void sigpipe_unblock(struct sigpipe_guard *g)
{
    if (!g->was_pending) {
        sigset_t set, pend;
        sigemptyset(&pend);
        sigpending(&pend);
        if (sigismember(&pend, SIGPIPE) == 1) {
            struct timespec zero = {0, 0};
            sigemptyset(&set);
            sigaddset(&set, SIGPIPE);
            while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR) {
            }
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

enum tls_op { TLS_OP_READ, TLS_OP_WRITE, TLS_OP_CONNECT };

/* One SSL_read/SSL_write/SSL_connect with SIGPIPE guarded; errno kept. */
static int tls_io(SSL *ssl, enum tls_op op, char *buf, int len)
{
    struct sigpipe_guard g;
    sigpipe_block(&g);
    int n = op == TLS_OP_READ    ? SSL_read(ssl, buf, len)
            : op == TLS_OP_WRITE ? SSL_write(ssl, buf, len)
                                 : SSL_connect(ssl);
    int saved = errno;
    sigpipe_unblock(&g);
    errno = saved;
    return n;
}

static int wait_fd(struct redis_conn *c, short events, int64_t deadline, const char *what)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return set_err(c, REDIS_CONN_ETIMEOUT, "%s: timeout", what);
        struct pollfd p = {.fd = c->fd, .events = events};
        int n = poll(&p, 1, (int)(left > INT_MAX ? INT_MAX : left));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return set_err(c, REDIS_CONN_EIO, "%s: poll: %s", what, strerror(errno));
        if (n > 0)
            return SW_OK;
    }
}

static int io_write_all(struct redis_conn *c, const char *buf, size_t len, int64_t deadline)
{
    size_t off = 0;
    while (off < len) {
        if (c->ssl) {
            ERR_clear_error();
            errno = 0;
            int n = tls_io(c->ssl, TLS_OP_WRITE, (char *)buf + off,
                           (int)((len - off) > INT_MAX ? INT_MAX : (len - off)));
            if (n > 0) {
                off += (size_t)n;
                continue;
            }
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                if (wait_fd(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, "write") !=
                    SW_OK)
                    return SW_EIO;
                continue;
            }
            if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
                return set_err(c, REDIS_CONN_EIO, "write: TLS: %s",
                               errno ? strerror(errno) : "connection closed by the server");
            return set_err(c, REDIS_CONN_EIO, "write: TLS: %s", ssl_errstr());
        }
        ssize_t n = send(c->fd, buf + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(c, POLLOUT, deadline, "write") != SW_OK)
                return SW_EIO;
            continue;
        }
        return set_err(c, REDIS_CONN_EIO, "write: %s", strerror(errno));
    }
    return SW_OK;
}

/* > 0 bytes read; SW_EIO on error/EOF/timeout (err set). */
static ssize_t io_read_some(struct redis_conn *c, char *buf, size_t cap, int64_t deadline)
{
    for (;;) {
        if (c->ssl) {
            ERR_clear_error();
            int n = tls_io(c->ssl, TLS_OP_READ, buf, (int)(cap > INT_MAX ? INT_MAX : cap));
            if (n > 0)
                return n;
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                if (wait_fd(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, "read") !=
                    SW_OK)
                    return SW_EIO;
                continue;
            }
            if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0))
                return set_err(c, REDIS_CONN_EOF, "server closed the connection");
            return set_err(c, REDIS_CONN_EIO, "read: TLS: %s", ssl_errstr());
        }
        ssize_t n = recv(c->fd, buf, cap, 0);
        if (n > 0)
            return n;
        if (n == 0)
            return set_err(c, REDIS_CONN_EOF, "server closed the connection");
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (wait_fd(c, POLLIN, deadline, "read") != SW_OK)
                return SW_EIO;
            continue;
        }
        return set_err(c, REDIS_CONN_EIO, "read: %s", strerror(errno));
    }
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Non-blocking connect bounded by deadline; fd stays non-blocking. */
static int connect_addr(struct redis_conn *c, const struct sockaddr *sa, socklen_t salen,
                        int64_t deadline, char *why, size_t whylen)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(why, whylen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, sa, salen) != 0) {
        if (errno != EINPROGRESS) {
            snprintf(why, whylen, "%s", strerror(errno));
            close(fd);
            return -1;
        }
        for (;;) {
            int64_t left = deadline - now_ms();
            if (left <= 0) {
                snprintf(why, whylen, "connect timeout");
                close(fd);
                return -1;
            }
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int n = poll(&p, 1, (int)left);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                snprintf(why, whylen, "poll: %s", strerror(errno));
                close(fd);
                return -1;
            }
            if (n > 0)
                break;
        }
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
            snprintf(why, whylen, "%s", strerror(soerr ? soerr : errno));
            close(fd);
            return -1;
        }
    }
    c->fd = fd;
    return 0;
}

static int tls_handshake(struct redis_conn *c, int64_t deadline)
{
    if (!c->ssl_ctx) {
        c->ssl_ctx = SSL_CTX_new(TLS_client_method());
        if (!c->ssl_ctx)
            return set_err(c, REDIS_CONN_ETLS, "TLS: SSL_CTX_new: %s", ssl_errstr());
        SSL_CTX_set_min_proto_version(c->ssl_ctx, TLS1_2_VERSION);
        int ok;
        if (c->opts.ca_file) {
            FILE *f = fopen(c->opts.ca_file, "r");
            if (!f) {
                set_err(c, REDIS_CONN_ETLS, "TLS: CA file %.60s: %s", c->opts.ca_file,
                        strerror(errno));
                SSL_CTX_free(c->ssl_ctx);
                c->ssl_ctx = NULL;
                return SW_EIO;
            }
            fclose(f);
            ok = SSL_CTX_load_verify_locations(c->ssl_ctx, c->opts.ca_file, NULL);
        } else {
            ok = SSL_CTX_set_default_verify_paths(c->ssl_ctx);
        }
        if (ok != 1) {
            ERR_clear_error();
            set_err(c, REDIS_CONN_ETLS, "TLS: CA file %.60s: no usable certificate",
                    c->opts.ca_file ? c->opts.ca_file : "(system store)");
            SSL_CTX_free(c->ssl_ctx);
            c->ssl_ctx = NULL;
            return SW_EIO;
        }
        SSL_CTX_set_verify(c->ssl_ctx, c->opts.tls_no_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER,
                           NULL);
        if (c->opts.cert_file) {
            const char *kf = c->opts.key_file ? c->opts.key_file : c->opts.cert_file;
            if (SSL_CTX_use_certificate_chain_file(c->ssl_ctx, c->opts.cert_file) != 1 ||
                SSL_CTX_use_PrivateKey_file(c->ssl_ctx, kf, SSL_FILETYPE_PEM) != 1 ||
                SSL_CTX_check_private_key(c->ssl_ctx) != 1) {
                ERR_clear_error();
                set_err(c, REDIS_CONN_ETLS,
                        "TLS: client certificate %.40s / key %.40s: unreadable or not a pair",
                        c->opts.cert_file, kf);
                SSL_CTX_free(c->ssl_ctx);
                c->ssl_ctx = NULL;
                return SW_EIO;
            }
        }
    }
    c->ssl = SSL_new(c->ssl_ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
        return set_err(c, REDIS_CONN_ETLS, "TLS: SSL_new: %s", ssl_errstr());
    unsigned char ipbuf[16];
    bool is_ip =
        inet_pton(AF_INET, c->url.host, ipbuf) == 1 || inet_pton(AF_INET6, c->url.host, ipbuf) == 1;
    if (is_ip) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        if (X509_VERIFY_PARAM_set1_ip_asc(vp, c->url.host) != 1)
            return set_err(c, REDIS_CONN_ETLS, "TLS: bad IP %s", c->url.host);
    } else {
        SSL_set_tlsext_host_name(c->ssl, c->url.host);
        if (SSL_set1_host(c->ssl, c->url.host) != 1)
            return set_err(c, REDIS_CONN_ETLS, "TLS: bad host name %s", c->url.host);
    }
    for (;;) {
        ERR_clear_error();
        int n = tls_io(c->ssl, TLS_OP_CONNECT, NULL, 0);
        if (n == 1)
            return SW_OK;
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (wait_fd(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline,
                        "TLS handshake") != SW_OK)
                return SW_EIO;
            continue;
        }
        long vr = SSL_get_verify_result(c->ssl);
        if (vr != X509_V_OK)
            return set_err(c, REDIS_CONN_ETLS, "TLS: certificate verification failed: %s",
                           X509_verify_cert_error_string(vr));
        return set_err(c, REDIS_CONN_ETLS, "TLS handshake: %s", ssl_errstr());
    }
}

/* ---- lifecycle ------------------------------------------------------------ */

void redis_conn_opts_defaults(struct redis_conn_opts *o)
{
    memset(o, 0, sizeof *o);
    o->connect_timeout_ms = 2000;
    o->io_timeout_ms = 2000;
}

struct redis_conn *redis_conn_new(const char *url, const struct redis_conn_opts *opts, char *err,
                                  size_t errlen)
{
    struct redis_conn *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "redis: out of memory");
        return NULL;
    }
    if (redis_url_parse(url, &c->url, err, errlen) != SW_OK) {
        free(c);
        return NULL;
    }
    redis_url_mask(url, c->url_masked, sizeof c->url_masked);
    if (opts)
        c->opts = *opts;
    else
        redis_conn_opts_defaults(&c->opts);
    if (c->opts.connect_timeout_ms <= 0)
        c->opts.connect_timeout_ms = 2000;
    if (c->opts.io_timeout_ms <= 0)
        c->opts.io_timeout_ms = 2000;
    c->fd = -1;
    return c;
}

void redis_conn_free(struct redis_conn *c)
{
    if (!c)
        return;
    conn_drop(c);
    if (c->ssl_ctx)
        SSL_CTX_free(c->ssl_ctx);
    free(c->obuf);
    explicit_bzero(c->url.password, sizeof c->url.password);
    free(c);
}

void redis_conn_close(struct redis_conn *c)
{
    if (c)
        conn_drop(c);
}

bool redis_conn_is_connected(const struct redis_conn *c)
{
    return c && c->fd >= 0;
}

int redis_conn_err(const struct redis_conn *c)
{
    return c->err;
}

const char *redis_conn_errstr(const struct redis_conn *c)
{
    return c->errstr;
}

const char *redis_conn_url(const struct redis_conn *c)
{
    return c->url_masked;
}

const struct redis_url *redis_conn_parsed_url(const struct redis_conn *c)
{
    return &c->url;
}

size_t redis_conn_pending(const struct redis_conn *c)
{
    return c->pending;
}

/* ---- commands ------------------------------------------------------------- */

static int obuf_add(struct redis_conn *c, const char *cmd, size_t len)
{
    if (c->olen + len > REDIS_CONN_OBUF_MAX) {
        set_err(c, REDIS_CONN_EOOM, "pipeline buffer over %u bytes", REDIS_CONN_OBUF_MAX);
        return SW_ELIMIT;
    }
    if (c->olen + len > c->ocap) {
        size_t ncap = c->ocap ? c->ocap : 4096;
        while (ncap < c->olen + len)
            ncap *= 2;
        char *n = realloc(c->obuf, ncap);
        if (!n) {
            set_err(c, REDIS_CONN_EOOM, "out of memory");
            return SW_ENOMEM;
        }
        c->obuf = n;
        c->ocap = ncap;
    }
    memcpy(c->obuf + c->olen, cmd, len);
    c->olen += len;
    c->pending++;
    return SW_OK;
}

int redis_conn_append_argv(struct redis_conn *c, int argc, const char **argv, const size_t *argvlen)
{
    if (c->fd < 0) {
        c->err = REDIS_CONN_ESTATE;
        snprintf(c->errstr, sizeof c->errstr, "not connected");
        return SW_EIO;
    }
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (len < 0 || !cmd) {
        set_err(c, REDIS_CONN_EOOM, "out of memory formatting a command");
        return SW_ENOMEM;
    }
    int rc = obuf_add(c, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return rc;
}

static int append_v(struct redis_conn *c, const char *fmt, va_list ap)
{
    if (c->fd < 0) {
        c->err = REDIS_CONN_ESTATE;
        snprintf(c->errstr, sizeof c->errstr, "not connected");
        return SW_EIO;
    }
    char *cmd = NULL;
    int len = redisvFormatCommand(&cmd, fmt, ap);
    if (len < 0 || !cmd) {
        set_err(c, REDIS_CONN_EOOM, "bad command format or out of memory");
        return SW_ENOMEM;
    }
    int rc = obuf_add(c, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return rc;
}

int redis_conn_append(struct redis_conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = append_v(c, fmt, ap);
    va_end(ap);
    return rc;
}

int redis_conn_get_reply(struct redis_conn *c, int timeout_ms, redisReply **reply)
{
    *reply = NULL;
    if (c->fd < 0) {
        if (!c->err) {
            c->err = REDIS_CONN_ESTATE;
            snprintf(c->errstr, sizeof c->errstr, "not connected");
        }
        return SW_EIO;
    }
    if (c->pending == 0) {
        c->err = REDIS_CONN_ESTATE;
        snprintf(c->errstr, sizeof c->errstr, "no reply pending");
        return SW_EIO;
    }
    int64_t deadline = now_ms() + (timeout_ms < 0 ? c->opts.io_timeout_ms : timeout_ms);
    if (c->olen) {
        if (io_write_all(c, c->obuf, c->olen, deadline) != SW_OK)
            return SW_EIO;
        c->olen = 0;
    }
    size_t fed = 0; /* bytes read while waiting for this reply */
    for (;;) {
        void *r = NULL;
        if (redisReaderGetReply(c->reader, &r) != REDIS_OK)
            return set_err(c, REDIS_CONN_EPROTO, "protocol error: %s", c->reader->errstr);
        if (r) {
            c->pending--;
            *reply = r;
            return SW_OK;
        }
        char buf[16384];
        ssize_t n = io_read_some(c, buf, sizeof buf, deadline);
        if (n < 0)
            return SW_EIO;
        fed += (size_t)n;
        if (fed > REDIS_CONN_REPLY_MAX)
            return set_err(c, REDIS_CONN_EPROTO, "reply longer than %u bytes",
                           REDIS_CONN_REPLY_MAX);
        if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK)
            return set_err(c, REDIS_CONN_EPROTO, "protocol error: %s", c->reader->errstr);
    }
}

redisReply *redis_conn_command_argv(struct redis_conn *c, int timeout_ms, int argc,
                                    const char **argv, const size_t *argvlen)
{
    if (c->fd >= 0 && c->pending) {
        c->err = REDIS_CONN_ESTATE;
        snprintf(c->errstr, sizeof c->errstr, "command while %zu pipelined replies are unread",
                 c->pending);
        return NULL;
    }
    if (redis_conn_append_argv(c, argc, argv, argvlen) != SW_OK)
        return NULL;
    redisReply *r;
    return redis_conn_get_reply(c, timeout_ms, &r) == SW_OK ? r : NULL;
}

redisReply *redis_conn_command(struct redis_conn *c, int timeout_ms, const char *fmt, ...)
{
    if (c->fd >= 0 && c->pending) {
        c->err = REDIS_CONN_ESTATE;
        snprintf(c->errstr, sizeof c->errstr, "command while %zu pipelined replies are unread",
                 c->pending);
        return NULL;
    }
    va_list ap;
    va_start(ap, fmt);
    int rc = append_v(c, fmt, ap);
    va_end(ap);
    if (rc != SW_OK)
        return NULL;
    redisReply *r;
    return redis_conn_get_reply(c, timeout_ms, &r) == SW_OK ? r : NULL;
}

/* ---- connect -------------------------------------------------------------- */

static int connect_socket(struct redis_conn *c, int64_t deadline)
{
    char why[160] = "no address";
    if (c->url.kind == REDIS_URL_UNIX) {
        struct sockaddr_un sun;
        memset(&sun, 0, sizeof sun);
        sun.sun_family = AF_UNIX;
        memcpy(sun.sun_path, c->url.path, strlen(c->url.path) + 1);
        if (connect_addr(c, (struct sockaddr *)&sun, sizeof sun, deadline, why, sizeof why) == 0)
            return SW_OK;
        return set_err(c, REDIS_CONN_EIO, "connect %s: %s", c->url.path, why);
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char port[8];
    snprintf(port, sizeof port, "%u", c->url.port);
    int g = getaddrinfo(c->url.host, port, &hints, &res);
    if (g != 0)
        return set_err(c, REDIS_CONN_EIO, "resolve %s: %s", c->url.host, gai_strerror(g));
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        if (connect_addr(c, a->ai_addr, a->ai_addrlen, deadline, why, sizeof why) == 0)
            break;
    }
    freeaddrinfo(res);
    if (c->fd < 0)
        return set_err(c,
                       strcmp(why, "connect timeout") == 0 ? REDIS_CONN_ETIMEOUT : REDIS_CONN_EIO,
                       "connect %s:%u: %s", c->url.host, c->url.port, why);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    return SW_OK;
}

int redis_conn_connect(struct redis_conn *c)
{
    conn_drop(c);
    clear_err(c);
    int64_t deadline = now_ms() + c->opts.connect_timeout_ms;
    if (connect_socket(c, deadline) != SW_OK)
        return SW_EIO;
    (void)set_nonblock(c->fd);
    if (c->url.kind == REDIS_URL_TLS && tls_handshake(c, deadline) != SW_OK)
        return SW_EIO;
    c->reader = redisReaderCreate();
    if (!c->reader)
        return set_err(c, REDIS_CONN_EOOM, "out of memory");
    int left = (int)(deadline - now_ms());
    if (left < 1)
        left = 1;
    if (c->url.has_password) {
        redisReply *r =
            c->url.user[0] ? redis_conn_command(c, left, "AUTH %s %s", c->url.user, c->url.password)
                           : redis_conn_command(c, left, "AUTH %s", c->url.password);
        if (!r)
            return SW_EIO;
        if (r->type == REDIS_REPLY_ERROR) {
            set_err(c, REDIS_CONN_EAUTH, "AUTH: %.100s", r->str);
            freeReplyObject(r);
            return SW_EIO;
        }
        freeReplyObject(r);
    }
    if (c->url.db != 0) {
        left = (int)(deadline - now_ms());
        redisReply *r = redis_conn_command(c, left < 1 ? 1 : left, "SELECT %d", c->url.db);
        if (!r)
            return SW_EIO;
        if (r->type == REDIS_REPLY_ERROR) {
            set_err(c, REDIS_CONN_EAUTH, "SELECT %d: %.90s", c->url.db, r->str);
            freeReplyObject(r);
            return SW_EIO;
        }
        freeReplyObject(r);
    }
    return SW_OK;
}
