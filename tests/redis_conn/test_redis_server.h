/* SPDX-License-Identifier: Apache-2.0 */
/* test_redis_server.h: starts and stops a private redis-server for tests:
 * loopback port picked by the test, its own temp dir (unix socket, AOF, TLS
 * files), stopped and removed at the end. Shared by tests/redis_conn and
 * tests/sink. */
#ifndef SW_TEST_REDIS_SERVER_H
#define SW_TEST_REDIS_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

#include "../test_port.h" /* test_pick_port(): a port for a server, or for a dead one */

/* TLS: the server certificate names IP:127.0.0.1 (the address tests connect
 * to; no name lookup); the other one names only this. */
#define TEST_REDIS_CERT_NAME "DNS:redis.stripwatch.test"

struct test_redis {
    pid_t pid;
    int port;                               /* TCP port (TLS port when tls) */
    char dir[256];                          /* temp dir, removed by test_redis_cleanup */
    char sock[300];                         /* unix socket path */
    char url[400];                          /* redis://127.0.0.1:PORT or rediss://127.0.0.1:PORT */
    char ca[300];                           /* TLS: CA certificate file */
    char client_cert[300], client_key[300]; /* TLS: a client certificate from that CA */
    bool tls_auth_clients; /* set before test_redis_start: require client certificates */
    /* set before test_redis_start: serve a certificate from the same CA that
     * names only TEST_REDIS_CERT_NAME, not 127.0.0.1 (verification fails) */
    bool tls_cert_name_only;
    bool tls, aof;
    char extra[512]; /* extra command line, e.g. "--requirepass x" */
};

/* Creates the temp dir and picks a free port; does not start. */
bool test_redis_init(struct test_redis *r, bool tls, bool aof, const char *extra);
/* Starts redis-server and waits until it answers PING (at most 10 s). */
bool test_redis_start(struct test_redis *r);
/* SIGKILL (hard) or SIGTERM, then waits for the process. */
void test_redis_stop(struct test_redis *r, bool hard);
/* Stops if running and removes the temp dir. */
void test_redis_cleanup(struct test_redis *r);
/* Runs a shell command (for openssl); true on exit status 0. */
bool test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
