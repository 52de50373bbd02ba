/* SPDX-License-Identifier: Apache-2.0 */
/* test_redis_server.c: private redis-server instances for integration tests
 * (loopback only, reached as 127.0.0.1, never by a name a minimal system may
 * not resolve; temp dir, bounded waits). */
#include "test_redis_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

bool test_sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

bool test_redis_init(struct test_redis *r, bool tls, bool aof, const char *extra)
{
    memset(r, 0, sizeof *r);
    r->pid = -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(r->dir, sizeof r->dir, "%s/sw-redis-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(r->dir))
        return false;
    snprintf(r->sock, sizeof r->sock, "%s/redis.sock", r->dir);
    r->tls = tls;
    r->aof = aof;
    snprintf(r->extra, sizeof r->extra, "%s", extra ? extra : "");
    r->port = test_pick_port();
    if (r->port <= 0)
        return false;
    if (tls) {
        snprintf(r->ca, sizeof r->ca, "%s/ca.crt", r->dir);
        const char *d = r->dir;
        if (!test_sh("cd '%s' && openssl req -x509 -newkey ec -pkeyopt "
                     "ec_paramgen_curve:prime256v1 -nodes "
                     "-keyout ca.key -out ca.crt -days 2 -subj /CN=stripwatch-test-ca >/dev/null "
                     "2>&1 && "
                     "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "
                     "srv.key "
                     "-out srv.csr -subj /CN=stripwatch-test-redis >/dev/null 2>&1 && "
                     "printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf && "
                     "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out "
                     "srv.crt "
                     "-days 2 -extfile ext.cnf >/dev/null 2>&1 && "
                     "printf 'subjectAltName=" TEST_REDIS_CERT_NAME "\\n' > name.cnf && "
                     "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out "
                     "name.crt -days 2 -extfile name.cnf >/dev/null 2>&1 && "
                     "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "
                     "cli.key "
                     "-out cli.csr -subj /CN=stripwatch-test-client >/dev/null 2>&1 && "
                     "openssl x509 -req -in cli.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out "
                     "cli.crt "
                     "-days 2 >/dev/null 2>&1",
                     d))
            return false;
        snprintf(r->client_cert, sizeof r->client_cert, "%s/cli.crt", r->dir);
        snprintf(r->client_key, sizeof r->client_key, "%s/cli.key", r->dir);
        snprintf(r->url, sizeof r->url, "rediss://127.0.0.1:%d", r->port);
    } else {
        snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d", r->port);
    }
    return true;
}

static bool answers_ping(struct test_redis *r)
{
    char cmd[1024];
    if (r->tls)
        snprintf(cmd, sizeof cmd,
                 "redis-cli --tls --cacert '%s' --cert '%s' --key '%s' -h 127.0.0.1 -p %d PING "
                 "2>/dev/null | grep -q PONG",
                 r->ca, r->client_cert, r->client_key, r->port);
    else
        snprintf(cmd, sizeof cmd, "redis-cli -s '%s' PING 2>/dev/null | grep -q -e PONG -e NOAUTH",
                 r->sock);
    int st = system(cmd);
    return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

bool test_redis_start(struct test_redis *r)
{
    char args[2048];
    int n = snprintf(args, sizeof args,
                     "exec redis-server --bind 127.0.0.1 --save '' --dir '%s' --unixsocket '%s' "
                     "--unixsocketperm 700 --logfile '%s/redis.log' --daemonize no ",
                     r->dir, r->sock, r->dir);
    if (r->aof)
        n += snprintf(args + n, sizeof args - (size_t)n, "--appendonly yes --appendfsync always ");
    else
        n += snprintf(args + n, sizeof args - (size_t)n, "--appendonly no ");
    if (r->tls)
        n += snprintf(args + n, sizeof args - (size_t)n,
                      "--port 0 --tls-port %d --tls-cert-file '%s/%s' --tls-key-file '%s/srv.key' "
                      "--tls-ca-cert-file '%s/ca.crt' --tls-auth-clients %s ",
                      r->port, r->dir, r->tls_cert_name_only ? "name.crt" : "srv.crt", r->dir,
                      r->dir, r->tls_auth_clients ? "yes" : "no");
    else
        n += snprintf(args + n, sizeof args - (size_t)n, "--port %d ", r->port);
    snprintf(args + n, sizeof args - (size_t)n, "%s", r->extra);
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        /* the server dies with the test, even when the test crashes */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1);
            dup2(nul, 2);
        }
        execl("/bin/sh", "sh", "-c", args, (char *)NULL);
        _exit(127);
    }
    r->pid = pid;
    for (int i = 0; i < 200; i++) {
        if (answers_ping(r))
            return true;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            r->pid = -1;
            return false;
        }
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    test_redis_stop(r, true);
    return false;
}

void test_redis_stop(struct test_redis *r, bool hard)
{
    if (r->pid <= 0)
        return;
    kill(r->pid, hard ? SIGKILL : SIGTERM);
    for (int i = 0; i < 200; i++) {
        int st;
        if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
            r->pid = -1;
            return;
        }
        struct timespec ts = {0, 25 * 1000000};
        nanosleep(&ts, NULL);
    }
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    r->pid = -1;
}

void test_redis_cleanup(struct test_redis *r)
{
    test_redis_stop(r, true);
    if (r->dir[0] && strstr(r->dir, "sw-redis-"))
        test_sh("rm -rf '%s'", r->dir);
    r->dir[0] = '\0';
}
