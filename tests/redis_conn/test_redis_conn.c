/* SPDX-License-Identifier: Apache-2.0 */
/* test_redis_conn.c: the shared Redis client against real redis-servers
 * started on loopback: URL table with exact errors, TCP, unix socket, TLS
 * (own CA), AUTH (password and ACL user), SELECT, pipelining, timeouts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cmocka.h>

#include "decode/sw.h"
#include "policy/redis_conn.h"
#include "test_redis_server.h"

/* ---- URL table ------------------------------------------------------------ */

struct good_url {
    const char *url;
    enum redis_url_kind kind;
    const char *host;
    int port;
    const char *path, *user, *password;
    int db;
};

static const struct good_url good[] = {
    {"redis://localhost", REDIS_URL_TCP, "localhost", 6379, "", "", NULL, 0},
    {"redis://127.0.0.1:6380/2", REDIS_URL_TCP, "127.0.0.1", 6380, "", "", NULL, 2},
    {"redis://:s3cret@h:1/0", REDIS_URL_TCP, "h", 1, "", "", "s3cret", 0},
    {"redis://alice:p%40ss@h/15", REDIS_URL_TCP, "h", 6379, "", "alice", "p@ss", 15},
    {"redis://bob:a@b@h:7", REDIS_URL_TCP, "h", 7, "", "bob", "a@b", 0},
    {"rediss://mx.example.org:6380", REDIS_URL_TLS, "mx.example.org", 6380, "", "", NULL, 0},
    {"redis://[::1]:7000/1", REDIS_URL_TCP, "::1", 7000, "", "", NULL, 1},
    {"redis://h/", REDIS_URL_TCP, "h", 6379, "", "", NULL, 0},
    {"unix:///run/redis.sock", REDIS_URL_UNIX, "", 6379, "/run/redis.sock", "", NULL, 0},
    {"unix:///run/r.sock?db=3&password=x", REDIS_URL_UNIX, "", 6379, "/run/r.sock", "", "x", 3},
    {"unix:///r.sock?user=u&password=p%26q", REDIS_URL_UNIX, "", 6379, "/r.sock", "u", "p&q", 0},
};

static void test_url_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct redis_url u;
        char err[256] = "";
        int rc = redis_url_parse(good[i].url, &u, err, sizeof err);
        if (rc != SW_OK)
            fail_msg("%s: %s", good[i].url, err);
        assert_int_equal(u.kind, good[i].kind);
        assert_string_equal(u.host, good[i].host);
        assert_int_equal(u.port, good[i].port);
        assert_string_equal(u.path, good[i].path);
        assert_string_equal(u.user, good[i].user);
        assert_int_equal(u.has_password, good[i].password != NULL);
        assert_string_equal(u.password, good[i].password ? good[i].password : "");
        assert_int_equal(u.db, good[i].db);
    }
}

static const char *const bad[][2] = {
    {"", "redis URL \"\": empty"},
    {"http://h",
     "redis URL \"http://h\": unknown scheme \"http\" (expected redis://, rediss:// or unix://)"},
    {"localhost:6379",
     "redis URL \"localhost:6379\": no scheme (expected redis://, rediss:// or unix://)"},
    {"redis://", "redis URL \"redis://\": missing host"},
    {"redis://:6379", "redis URL \"redis://:6379\": missing host"},
    {"redis://h:0", "redis URL \"redis://h:0\": port \"0\": not 1-65535"},
    {"redis://h:65536", "redis URL \"redis://h:65536\": port \"65536\": not 1-65535"},
    {"redis://h:x", "redis URL \"redis://h:x\": port \"x\": not 1-65535"},
    {"redis://h:", "redis URL \"redis://h:\": port \"\": not 1-65535"},
    {"redis://h/x", "redis URL \"redis://h/x\": db \"x\": not 0-2147483647"},
    {"redis://h/1/2", "redis URL \"redis://h/1/2\": db \"1/2\": not 0-2147483647"},
    {"redis://h/2147483648",
     "redis URL \"redis://h/2147483648\": db \"2147483648\": not 0-2147483647"},
    {"redis://pw@h",
     "redis URL \"redis://***@h\": userinfo without \":\" (write :password@ or user:password@)"},
    {"redis://u:@h", "redis URL \"redis://u:***@h\": empty password"},
    {"redis://:p%zz@h", "redis URL \"redis://:***@h\": password: bad percent escape"},
    {"redis://:p%4@h", "redis URL \"redis://:***@h\": password: bad percent escape"},
    {"redis://[::1", "redis URL \"redis://[::1\": unterminated \"[\" in host"},
    {"redis://[zz]:1", "redis URL \"redis://[zz]:1\": host \"[zz]\": not an IPv6 address"},
    {"redis://[::1]x", "redis URL \"redis://[::1]x\": junk after \"]\" in host"},
    {"redis://h?db=1", "redis URL \"redis://h?db=1\": unexpected query or fragment"},
    {"redis://h x", "redis URL \"redis://h x\": contains a space or control character"},
    {"unix://", "redis URL \"unix://\": missing socket path"},
    {"unix://run/x.sock",
     "redis URL \"unix://run/x.sock\": socket path must be absolute (unix:///path)"},
    {"unix:///x.sock?foo=1",
     "redis URL \"unix:///x.sock?foo=1\": unknown parameter \"foo\" (expected db, user, password)"},
    {"unix:///x.sock?db=abc", "redis URL \"unix:///x.sock?db=abc\": db \"abc\": not 0-2147483647"},
    {"unix:///x.sock?password=sec&db=z",
     "redis URL \"unix:///x.sock?password=***&db=z\": db \"z\": not 0-2147483647"},
    {"unix:///x.sock?user=u", "redis URL \"unix:///x.sock?user=u\": user without password"},
};

static void test_url_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct redis_url u;
        char err[512] = "";
        int rc = redis_url_parse(bad[i][0], &u, err, sizeof err);
        if (rc != SW_EPROTO)
            fail_msg("%s: parsed, expected: %s", bad[i][0], bad[i][1]);
        if (strcmp(err, bad[i][1]) != 0)
            fail_msg("%s:\n got  %s\n want %s", bad[i][0], err, bad[i][1]);
    }
    /* a long unix path */
    char url[300], want[512], err[512];
    memcpy(url, "unix:///", 8);
    memset(url + 8, 'a', 200);
    url[208] = '\0';
    snprintf(want, sizeof want, "redis URL \"%s\": socket path longer than 107 bytes", url);
    struct redis_url u;
    assert_int_equal(redis_url_parse(url, &u, err, sizeof err), SW_EPROTO);
    assert_string_equal(err, want);
}

static void test_url_mask(void **state)
{
    (void)state;
    char b[256];
    assert_string_equal(redis_url_mask("redis://alice:secret@h:1/0", b, sizeof b),
                        "redis://alice:***@h:1/0");
    assert_string_equal(redis_url_mask("rediss://:secret@h", b, sizeof b), "rediss://:***@h");
    assert_string_equal(redis_url_mask("redis://h:1/0", b, sizeof b), "redis://h:1/0");
    assert_string_equal(redis_url_mask("unix:///s?db=1&password=xy&user=u", b, sizeof b),
                        "unix:///s?db=1&password=***&user=u");
    assert_string_equal(redis_url_mask("redis://a:b@c", b, 8), "redis:/");
    /* redis_conn_url() is masked too */
    char err[256];
    struct redis_conn *c = redis_conn_new("redis://u:topsecret@127.0.0.1:1", NULL, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(redis_conn_url(c), "redis://u:***@127.0.0.1:1");
    redis_conn_free(c);
    redis_conn_free(NULL);
    assert_null(redis_conn_new("redis://u:topsecret@h:0", NULL, err, sizeof err));
    assert_string_equal(err, "redis URL \"redis://u:***@h:0\": port \"0\": not 1-65535");
}

/* ---- live servers ----------------------------------------------------------- */

static struct test_redis srv; /* the test's server; the teardown removes it */

static int srv_teardown(void **state)
{
    (void)state;
    test_redis_cleanup(&srv);
    return 0;
}

static struct redis_conn *connect_ok(const char *url, const struct redis_conn_opts *o)
{
    char err[256];
    struct redis_conn *c = redis_conn_new(url, o, err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    if (redis_conn_connect(c) != SW_OK)
        fail_msg("connect %s: %s", url, redis_conn_errstr(c));
    assert_true(redis_conn_is_connected(c));
    return c;
}

static void assert_reply_str(redisReply *r, int type, const char *s)
{
    assert_non_null(r);
    assert_int_equal(r->type, type);
    assert_string_equal(r->str, s);
    freeReplyObject(r);
}

static void test_tcp_commands_and_pipeline(void **state)
{
    (void)state;
    assert_true(test_redis_init(&srv, false, false, NULL));
    assert_true(test_redis_start(&srv));
    struct redis_conn *c = connect_ok(srv.url, NULL);
    assert_reply_str(redis_conn_command(c, -1, "PING"), REDIS_REPLY_STATUS, "PONG");
    assert_reply_str(redis_conn_command(c, -1, "SET %s %b", "k", "v\0x", (size_t)3),
                     REDIS_REPLY_STATUS, "OK");
    redisReply *r = redis_conn_command(c, -1, "GET k");
    assert_non_null(r);
    assert_int_equal(r->len, 3);
    assert_memory_equal(r->str, "v\0x", 3);
    freeReplyObject(r);
    /* an error reply is a reply, not a failure */
    assert_reply_str(redis_conn_command(c, -1, "NOSUCHCMD"), REDIS_REPLY_ERROR,
                     "ERR unknown command 'NOSUCHCMD', with args beginning with: ");
    assert_true(redis_conn_is_connected(c));
    /* pipelined: 5000 INCRs, replies in order */
    for (int i = 0; i < 5000; i++)
        assert_int_equal(redis_conn_append(c, "INCR counter"), SW_OK);
    assert_int_equal(redis_conn_pending(c), 5000);
    for (int i = 0; i < 5000; i++) {
        assert_int_equal(redis_conn_get_reply(c, 5000, &r), SW_OK);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        assert_int_equal(r->integer, i + 1);
        freeReplyObject(r);
    }
    assert_int_equal(redis_conn_pending(c), 0);
    /* argv with binary-safe lengths */
    const char *argv[] = {"RPUSH", "l", "a b", "c\r\nd"};
    size_t lens[] = {5, 1, 3, 4};
    r = redis_conn_command_argv(c, -1, 4, argv, lens);
    assert_non_null(r);
    assert_int_equal(r->integer, 2);
    freeReplyObject(r);
    /* misuse: a synchronous command while pipelined replies are unread */
    assert_int_equal(redis_conn_append(c, "PING"), SW_OK);
    assert_null(redis_conn_command(c, -1, "PING"));
    assert_int_equal(redis_conn_err(c), REDIS_CONN_ESTATE);
    assert_string_equal(redis_conn_errstr(c), "command while 1 pipelined replies are unread");
    assert_int_equal(redis_conn_get_reply(c, -1, &r), SW_OK);
    freeReplyObject(r);

    /* SELECT: db 3 through the URL */
    char url[512];
    snprintf(url, sizeof url, "%s/3", srv.url);
    struct redis_conn *c3 = connect_ok(url, NULL);
    assert_reply_str(redis_conn_command(c3, -1, "SET only3 yes"), REDIS_REPLY_STATUS, "OK");
    r = redis_conn_command(c, -1, "EXISTS only3");
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    assert_reply_str(redis_conn_command(c, -1, "SELECT 3"), REDIS_REPLY_STATUS, "OK");
    assert_reply_str(redis_conn_command(c, -1, "GET only3"), REDIS_REPLY_STRING, "yes");
    redis_conn_free(c3);

    /* a db the server does not have */
    snprintf(url, sizeof url, "%s/99", srv.url);
    char err[256];
    c3 = redis_conn_new(url, NULL, err, sizeof err);
    assert_int_equal(redis_conn_connect(c3), SW_EIO);
    assert_int_equal(redis_conn_err(c3), REDIS_CONN_EAUTH);
    assert_string_equal(redis_conn_errstr(c3), "SELECT 99: ERR DB index is out of range");
    assert_false(redis_conn_is_connected(c3));
    redis_conn_free(c3);

    /* unix socket, db through the query */
    snprintf(url, sizeof url, "unix://%s?db=3", srv.sock);
    c3 = connect_ok(url, NULL);
    assert_reply_str(redis_conn_command(c3, -1, "GET only3"), REDIS_REPLY_STRING, "yes");
    redis_conn_free(c3);

    /* a reply over the bound is refused, not buffered */
    assert_reply_str(redis_conn_command(c, -1, "SET big %b", "", (size_t)0), REDIS_REPLY_STATUS,
                     "OK");
    r = redis_conn_command(c, 120000, "SETRANGE big %d x", (int)REDIS_CONN_REPLY_MAX + 1);
    assert_non_null(r);
    freeReplyObject(r);
    assert_null(redis_conn_command(c, 120000, "GET big"));
    assert_int_equal(redis_conn_err(c), REDIS_CONN_EPROTO);
    assert_string_equal(redis_conn_errstr(c), "reply longer than 67108864 bytes");
    assert_false(redis_conn_is_connected(c));
    assert_int_equal(redis_conn_connect(c), SW_OK);

    /* the server goes away: the next command fails with err set */
    test_redis_stop(&srv, true);
    assert_null(redis_conn_command(c, 2000, "PING"));
    assert_false(redis_conn_is_connected(c));
    assert_true(redis_conn_err(c) == REDIS_CONN_EOF || redis_conn_err(c) == REDIS_CONN_EIO);
    assert_null(redis_conn_command(c, 2000, "PING"));
    assert_int_equal(redis_conn_err(c), REDIS_CONN_ESTATE);
    assert_string_equal(redis_conn_errstr(c), "not connected");
    /* and refuses connections */
    assert_int_equal(redis_conn_connect(c), SW_EIO);
    assert_int_equal(redis_conn_err(c), REDIS_CONN_EIO);
    snprintf(err, sizeof err, "connect 127.0.0.1:%d: Connection refused", srv.port);
    assert_string_equal(redis_conn_errstr(c), err);
    redis_conn_free(c);
    test_redis_cleanup(&srv);
}

static void test_auth(void **state)
{
    (void)state;
    assert_true(test_redis_init(&srv, false, false, "--requirepass 'pa:ss@w'"));
    assert_true(test_redis_start(&srv));
    char url[512], err[256];
    /* no password */
    struct redis_conn *c = connect_ok(srv.url, NULL);
    assert_reply_str(redis_conn_command(c, -1, "GET x"), REDIS_REPLY_ERROR,
                     "NOAUTH Authentication required.");
    redis_conn_free(c);
    /* password only, percent-encoded */
    snprintf(url, sizeof url, "redis://:pa%%3Ass%%40w@127.0.0.1:%d", srv.port);
    c = connect_ok(url, NULL);
    assert_reply_str(redis_conn_command(c, -1, "PING"), REDIS_REPLY_STATUS, "PONG");
    /* an ACL user */
    assert_reply_str(redis_conn_command(c, -1, "ACL SETUSER alice on >wonder ~* &* +@all"),
                     REDIS_REPLY_STATUS, "OK");
    redis_conn_free(c);
    snprintf(url, sizeof url, "redis://alice:wonder@127.0.0.1:%d/2", srv.port);
    c = connect_ok(url, NULL);
    assert_reply_str(redis_conn_command(c, -1, "ACL WHOAMI"), REDIS_REPLY_STRING, "alice");
    redis_conn_free(c);
    /* wrong password: EAUTH, and the message does not hold the password */
    snprintf(url, sizeof url, "redis://alice:wrong@127.0.0.1:%d", srv.port);
    c = redis_conn_new(url, NULL, err, sizeof err);
    assert_int_equal(redis_conn_connect(c), SW_EIO);
    assert_int_equal(redis_conn_err(c), REDIS_CONN_EAUTH);
    assert_string_equal(redis_conn_errstr(c),
                        "AUTH: WRONGPASS invalid username-password pair or user is disabled.");
    assert_null(strstr(redis_conn_url(c), "wrong"));
    redis_conn_free(c);
    test_redis_cleanup(&srv);
}

static void test_tls(void **state)
{
    (void)state;
    assert_true(test_redis_init(&srv, true, false, NULL));
    assert_true(test_redis_start(&srv));
    struct redis_conn_opts o;
    redis_conn_opts_defaults(&o);
    o.ca_file = srv.ca;
    /* verified against the test CA and the address 127.0.0.1 */
    struct redis_conn *c = connect_ok(srv.url, &o);
    assert_reply_str(redis_conn_command(c, -1, "PING"), REDIS_REPLY_STATUS, "PONG");
    for (int i = 0; i < 1000; i++)
        assert_int_equal(redis_conn_append(c, "INCR n"), SW_OK);
    for (int i = 0; i < 1000; i++) {
        redisReply *r;
        assert_int_equal(redis_conn_get_reply(c, 5000, &r), SW_OK);
        assert_int_equal(r->integer, i + 1);
        freeReplyObject(r);
    }
    redis_conn_free(c);
    char err[256];
    /* the system store does not know the test CA */
    c = redis_conn_new(srv.url, NULL, err, sizeof err);
    assert_int_equal(redis_conn_connect(c), SW_EIO);
    assert_int_equal(redis_conn_err(c), REDIS_CONN_ETLS);
    assert_string_equal(
        redis_conn_errstr(c),
        "TLS: certificate verification failed: self-signed certificate in certificate chain");
    redis_conn_free(c);
    /* a client certificate file that does not exist */
    o.cert_file = "no-such-cert.pem";
    c = redis_conn_new(srv.url, &o, err, sizeof err);
    assert_int_equal(redis_conn_connect(c), SW_EIO);
    assert_int_equal(redis_conn_err(c), REDIS_CONN_ETLS);
    assert_string_equal(redis_conn_errstr(c), "TLS: client certificate no-such-cert.pem / key "
                                              "no-such-cert.pem: unreadable or not a pair");
    redis_conn_free(c);
    o.cert_file = NULL;
    /* a CA file that does not exist */
    o.ca_file = "no-such-ca.pem";
    c = redis_conn_new(srv.url, &o, err, sizeof err);
    assert_int_equal(redis_conn_connect(c), SW_EIO);
    assert_int_equal(redis_conn_err(c), REDIS_CONN_ETLS);
    assert_string_equal(redis_conn_errstr(c),
                        "TLS: CA file no-such-ca.pem: No such file or directory");
    redis_conn_free(c);
    test_redis_cleanup(&srv);
    /* a certificate from the same CA that does not name 127.0.0.1 */
    assert_true(test_redis_init(&srv, true, false, NULL));
    srv.tls_cert_name_only = true;
    assert_true(test_redis_start(&srv));
    o.ca_file = srv.ca;
    c = redis_conn_new(srv.url, &o, err, sizeof err);
    assert_int_equal(redis_conn_connect(c), SW_EIO);
    assert_int_equal(redis_conn_err(c), REDIS_CONN_ETLS);
    assert_string_equal(redis_conn_errstr(c),
                        "TLS: certificate verification failed: IP address mismatch");
    redis_conn_free(c);
    test_redis_cleanup(&srv);
}

/* A server that requires client certificates (Redis' tls-auth-clients yes). */
static void test_tls_client_cert(void **state)
{
    (void)state;
    assert_true(test_redis_init(&srv, true, false, NULL));
    srv.tls_auth_clients = true;
    assert_true(test_redis_start(&srv));
    struct redis_conn_opts o;
    redis_conn_opts_defaults(&o);
    o.ca_file = srv.ca;
    o.cert_file = srv.client_cert;
    o.key_file = srv.client_key;
    struct redis_conn *c = connect_ok(srv.url, &o);
    assert_reply_str(redis_conn_command(c, -1, "PING"), REDIS_REPLY_STATUS, "PONG");
    redis_conn_free(c);
    /* without one the server ends the connection (TLS 1.3: after the
     * handshake, so the first command fails) */
    o.cert_file = o.key_file = NULL;
    char err[256];
    c = redis_conn_new(srv.url, &o, err, sizeof err);
    redisReply *r = NULL;
    if (redis_conn_connect(c) == SW_OK)
        r = redis_conn_command(c, 2000, "PING");
    assert_null(r);
    assert_false(redis_conn_is_connected(c));
    print_message("without a client certificate: %s\n", redis_conn_errstr(c));
    assert_true(redis_conn_err(c) == REDIS_CONN_ETLS || redis_conn_err(c) == REDIS_CONN_EIO ||
                redis_conn_err(c) == REDIS_CONN_EOF);
    /* a 1 MiB command to a server that closed the connection: a clean
     * failure (reset or broken pipe), the connection marked closed */
    static char blob[1 << 20];
    memset(blob, 'z', sizeof blob);
    for (int i = 0; i < 3; i++) {
        if (redis_conn_connect(c) != SW_OK)
            continue;
        struct timespec ts = {0, 200 * 1000000};
        nanosleep(&ts, NULL);
        assert_null(redis_conn_command(c, 2000, "SET k %b", blob, sizeof blob));
        assert_false(redis_conn_is_connected(c));
    }
    redis_conn_free(c);
}

/* A peer that accepts TCP but never answers: the command times out. */
static void test_timeout(void **state)
{
    (void)state;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof a;
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(ls, 4), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &l), 0);
    char url[64], err[256];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", ntohs(a.sin_port));
    struct redis_conn_opts o;
    redis_conn_opts_defaults(&o);
    o.io_timeout_ms = 200;
    struct redis_conn *c = redis_conn_new(url, &o, err, sizeof err);
    assert_int_equal(redis_conn_connect(c), SW_OK);
    assert_null(redis_conn_command(c, -1, "PING"));
    assert_int_equal(redis_conn_err(c), REDIS_CONN_ETIMEOUT);
    assert_string_equal(redis_conn_errstr(c), "read: timeout");
    assert_false(redis_conn_is_connected(c));
    /* a TLS handshake nobody answers: connect timeout */
    redis_conn_free(c);
    snprintf(url, sizeof url, "rediss://127.0.0.1:%d", ntohs(a.sin_port));
    o.connect_timeout_ms = 200;
    c = redis_conn_new(url, &o, err, sizeof err);
    assert_int_equal(redis_conn_connect(c), SW_EIO);
    assert_int_equal(redis_conn_err(c), REDIS_CONN_ETIMEOUT);
    assert_string_equal(redis_conn_errstr(c), "TLS handshake: timeout");
    redis_conn_free(c);
    close(ls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_good),
        cmocka_unit_test(test_url_bad),
        cmocka_unit_test(test_url_mask),
        cmocka_unit_test_teardown(test_tcp_commands_and_pipeline, srv_teardown),
        cmocka_unit_test_teardown(test_auth, srv_teardown),
        cmocka_unit_test_teardown(test_tls, srv_teardown),
        cmocka_unit_test_teardown(test_tls_client_cert, srv_teardown),
        cmocka_unit_test(test_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
