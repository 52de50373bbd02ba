/* SPDX-License-Identifier: Apache-2.0 */
/* feed_util.h: what the feed consumer tests share (test code, header-only):
 * a capture repeated N times an hour apart (N sessions' alerts), the lines
 * of a file, and running the sensor into Redis with an --alerts-out copy.
 * Needs cmocka (included before). */
#ifndef SW_TEST_FEED_UTIL_H
#define SW_TEST_FEED_UTIL_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STRIPWATCH   SW_BINARY_DIR "/stripwatch"
#define FEED_CAPTURE SW_THIRD_PARTY_PCAPS "/arkime/smtp-decrypted.pcap"

static char *feed_slurp(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    *len = fread(b, 1, (size_t)n, f);
    b[*len] = '\0';
    fclose(f);
    return b;
}

/* The lines of a file (no newline), in an array of *n strings; free with
 * feed_lines_free. */
static char **feed_lines(const char *path, size_t *n)
{
    size_t len;
    char *t = feed_slurp(path, &len);
    size_t cap = 16;
    char **v = malloc(cap * sizeof(*v));
    assert_non_null(v);
    *n = 0;
    for (char *p = t, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        if (*n == cap) {
            cap *= 2;
            v = realloc(v, cap * sizeof(*v));
            assert_non_null(v);
        }
        v[(*n)++] = strndup(p, (size_t)(nl - p));
    }
    free(t);
    return v;
}

static void feed_lines_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* copies copies of FEED_CAPTURE (classic pcap), each one hour later. */
__attribute__((unused)) static void feed_make_input(const char *out, uint32_t copies)
{
    size_t len;
    char *p = feed_slurp(FEED_CAPTURE, &len);
    assert_true(len > 24);
    uint32_t magic;
    memcpy(&magic, p, 4);
    bool swapped = magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u;
    assert_true(swapped || magic == 0xa1b2c3d4u || magic == 0xa1b23c4du);
    FILE *f = fopen(out, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, 24, f), 24);
    for (uint32_t c = 0; c < copies; c++) {
        size_t off = 24;
        while (off + 16 <= len) {
            uint32_t sec, incl;
            memcpy(&sec, p + off, 4);
            memcpy(&incl, p + off + 8, 4);
            if (swapped) {
                sec = __builtin_bswap32(sec);
                incl = __builtin_bswap32(incl);
            }
            assert_true(off + 16 + incl <= len);
            uint32_t ns = sec + c * 3600u;
            if (swapped)
                ns = __builtin_bswap32(ns);
            assert_int_equal(fwrite(&ns, 1, 4, f), 4);
            assert_int_equal(fwrite(p + off + 4, 1, 12 + incl, f), 12 + incl);
            off += 16 + incl;
        }
    }
    assert_int_equal(fclose(f), 0);
    free(p);
}

/* Runs the sensor on in into Redis (url, mode, key) with a copy of every
 * line in alerts and the spool in spool; returns its exit status (-1 when it
 * ran past timeout_s and was killed). stderr goes to err. */
__attribute__((unused)) static int feed_run_sensor(const char *in, const char *url,
                                                   const char *mode, const char *alerts,
                                                   const char *spool, const char *err,
                                                   int timeout_s)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int o = open("/dev/null", O_WRONLY);
        dup2(o, 1);
        dup2(e, 2);
        execl(STRIPWATCH, STRIPWATCH, "--no-config", "-q", "-r", in, "--redis", url, "--redis-mode",
              mode, "--spool", spool, "--alerts-out", alerts, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < timeout_s * 100; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

#endif
