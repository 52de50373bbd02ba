/* SPDX-License-Identifier: Apache-2.0 */
/* test_sink.c: alert sinks against real redis-servers on loopback: every
 * mode read back by a hiredis consumer in order, Redis killed and restarted
 * mid-run (every alert exactly once), spool bound (exact message, dropped
 * count), replay after restart, no duplicate after a crash between ack and
 * head update, refused commands, torn spool tail, unix socket and TLS. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "alerts/sink.h"
#include "alerts/spool.h"
#include "decode/sw.h"
#include "test_redis_server.h"

static struct test_redis srv;
static char tdir[256]; /* spool and output files */
static int saved_stderr = -1;
static void restore_stderr(void);

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(tdir, sizeof tdir, "%s/sw-sink-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(tdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    restore_stderr();
    test_redis_cleanup(&srv);
    if (strstr(tdir, "sw-sink-"))
        test_sh("rm -rf '%s'", tdir);
    return 0;
}

static void alert(char *buf, size_t len, int i)
{
    snprintf(buf, len,
             "{\"event\":{\"kind\":\"alert\"},\"rule\":{\"id\":\"starttls.stripped\"},"
             "\"stripwatch\":{\"n\":%d}}",
             i);
}

static void cfg_for(struct sink_cfg *c, const char *url, enum sink_redis_mode mode, char *spool,
                    size_t spool_len)
{
    sink_cfg_defaults(c);
    c->out_path = NULL;
    c->redis_url = url;
    c->mode = mode;
    snprintf(spool, spool_len, "%s/spool", tdir);
    c->spool_path = spool;
    c->backoff_min_ms = 20;
    c->backoff_max_ms = 200;
    c->io_timeout_ms = 2000;
    c->connect_timeout_ms = 1000;
}

static struct sink *sink_ok(const struct sink_cfg *c)
{
    char err[512];
    struct sink *s = sink_new(c, err, sizeof err);
    if (!s)
        fail_msg("sink_new: %s", err);
    return s;
}

static void emit_range(struct sink *s, int from, int to)
{
    char a[256];
    for (int i = from; i < to; i++) {
        alert(a, sizeof a, i);
        assert_int_equal(sink_emit(s, a, strlen(a)), SW_OK);
    }
}

static redisContext *consumer(void)
{
    struct timeval tv = {5, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", srv.port, tv);
    assert_non_null(rc);
    if (rc->err)
        fail_msg("consumer: %s", rc->errstr);
    redisSetTimeout(rc, tv);
    return rc;
}

/* The list holds alerts from..to-1 exactly, in order (reversed for LPUSH). */
static void assert_list(const char *key, int from, int to, bool reversed)
{
    redisContext *rc = consumer();
    redisReply *r = redisCommand(rc, "LRANGE %s 0 -1", key);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    if (r->elements != (size_t)(to - from))
        fail_msg("list %s holds %zu alerts, want %d", key, r->elements, to - from);
    char a[256];
    for (size_t k = 0; k < r->elements; k++) {
        int i = reversed ? to - 1 - (int)k : from + (int)k;
        alert(a, sizeof a, i);
        if (strcmp(r->element[k]->str, a) != 0)
            fail_msg("element %zu: got %s want %s", k, r->element[k]->str, a);
    }
    freeReplyObject(r);
    redisFree(rc);
}

static void start_srv(bool tls, bool aof)
{
    assert_true(test_redis_init(&srv, tls, aof, NULL));
    assert_true(test_redis_start(&srv));
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strdup(buf);
}

/* stderr into a file while a sink runs */
static void capture_stderr(const char *path)
{
    fflush(stderr);
    saved_stderr = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    dup2(fd, 2);
    close(fd);
}
static void restore_stderr(void)
{
    if (saved_stderr < 0)
        return;
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    saved_stderr = -1;
}

static int count_lines_with(const char *text, const char *line)
{
    int n = 0;
    size_t l = strlen(line);
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t ll = e ? (size_t)(e - p) : strlen(p);
        if (ll == l && memcmp(p, line, l) == 0)
            n++;
        p += ll + (e ? 1 : 0);
    }
    return n;
}

/* ---- file ------------------------------------------------------------------ */

/* A sink writing tdir/alerts.json (path gets its name). */
static struct sink *file_sink(struct sink_cfg *c, char *path, size_t len, bool batch)
{
    snprintf(path, len, "%s/alerts.json", tdir);
    sink_cfg_defaults(c);
    c->out_path = path;
    c->file_batch = batch;
    return sink_ok(c);
}

static void test_file_sink(void **state)
{
    (void)state;
    char path[300], err[256];
    struct sink_cfg c;
    struct sink *s = file_sink(&c, path, sizeof path, false);
    const char *a1 = "{\"a\":1}";
    const char *a2 = "{\"b\":\n2}"; /* a newline becomes a space: one alert, one line */
    assert_int_equal(sink_emit(s, a1, strlen(a1)), SW_OK);
    /* flushed per line: visible before sink_flush */
    char *t = slurp(path);
    assert_string_equal(t, "{\"a\":1}\n");
    free(t);
    assert_int_equal(sink_emit(s, a2, strlen(a2)), SW_OK);
    assert_int_equal(sink_flush(s, 100), SW_OK);
    const struct sink_stats *st = sink_stats(s);
    assert_int_equal(st->emitted, 2);
    assert_int_equal(st->delivered, 2);
    assert_int_equal(st->errors, 0);
    sink_free(s);
    t = slurp(path);
    assert_string_equal(t, "{\"a\":1}\n{\"b\": 2}\n");
    free(t);
    /* a file that cannot be opened */
    c.out_path = "no-such-dir/alerts.json";
    assert_null(sink_new(&c, err, sizeof err));
    assert_string_equal(err, "stripwatch: no-such-dir/alerts.json: No such file or directory");
    /* a bad URL is reported as such */
    c.out_path = NULL;
    c.redis_url = "redis://:pw@h:0";
    assert_null(sink_new(&c, err, sizeof err));
    assert_string_equal(err, "redis URL \"redis://:***@h:0\": port \"0\": not 1-65535");
}

/* file_batch (runs reading regular files): lines gathered into writes of
 * SINK_FILE_BATCH bytes that end at line ends; counted as delivered once
 * written; a write that fails counts each of its lines as an error. */
static void test_file_sink_batch(void **state)
{
    (void)state;
    char path[300];
    struct sink_cfg c;
    struct sink *s = file_sink(&c, path, sizeof path, true);
    /* lines of 1000 bytes and the newline: a batch holds whole lines only */
    char line[1001];
    memset(line, 'x', sizeof line);
    line[0] = '{';
    line[999] = '}';
    line[1000] = '\0';
    size_t per = SINK_FILE_BATCH / 1001; /* lines that fit in one write */
    for (size_t i = 0; i < per; i++)
        assert_int_equal(sink_emit(s, line, 1000), SW_OK);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, 0); /* gathered, not written yet */
    assert_int_equal(sink_stats(s)->delivered, 0);
    assert_int_equal(sink_emit(s, line, 1000), SW_OK); /* does not fit: the batch goes first */
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, (off_t)(per * 1001));
    assert_int_equal(sink_stats(s)->delivered, per);
    assert_int_equal(sink_flush(s, 100), SW_OK);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, (off_t)((per + 1) * 1001));
    assert_int_equal(sink_stats(s)->delivered, per + 1);
    assert_int_equal(sink_stats(s)->errors, 0);
    sink_free(s);

    /* a device that takes nothing: every line an error, none delivered */
    c.out_path = "/dev/full";
    s = sink_ok(&c);
    for (int i = 0; i < 3; i++)
        assert_int_equal(sink_emit(s, line, 1000), SW_OK);
    assert_int_equal(sink_flush(s, 100), SW_EIO);
    assert_int_equal(sink_stats(s)->emitted, 3);
    assert_int_equal(sink_stats(s)->delivered, 0);
    assert_int_equal(sink_stats(s)->errors, 3);
    sink_free(s);
}

/* ---- modes ----------------------------------------------------------------- */

static void run_list_mode(enum sink_redis_mode mode, bool reversed)
{
    start_srv(false, false);
    struct sink_cfg c;
    char spool[300];
    cfg_for(&c, srv.url, mode, spool, sizeof spool);
    c.key = "feed";
    c.batch_max = 64;
    struct sink *s = sink_ok(&c);
    emit_range(s, 0, 1000);
    assert_int_equal(sink_flush(s, 20000), SW_OK);
    const struct sink_stats *st = sink_stats(s);
    assert_int_equal(st->emitted, 1000);
    assert_int_equal(st->delivered, 1000);
    assert_int_equal(st->pending, 0);
    assert_int_equal(st->duplicates_skipped, 0);
    assert_int_equal(st->dropped_spool_full, 0);
    sink_free(s);
    assert_list("feed", 0, 1000, reversed);
}

static void test_mode_list(void **state)
{
    (void)state;
    run_list_mode(SINK_REDIS_LIST, false);
}

static void test_mode_lpush(void **state)
{
    (void)state;
    run_list_mode(SINK_REDIS_LPUSH, true);
}

static void test_mode_stream(void **state)
{
    (void)state;
    start_srv(false, false);
    struct sink_cfg c;
    char spool[300], a[256];
    cfg_for(&c, srv.url, SINK_REDIS_STREAM, spool, sizeof spool);
    c.stream_maxlen = 100000;
    struct sink *s = sink_ok(&c);
    emit_range(s, 0, 500);
    assert_int_equal(sink_flush(s, 20000), SW_OK);
    sink_free(s);
    redisContext *rc = consumer();
    redisReply *r = redisCommand(rc, "XRANGE stripwatch:alerts - +");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 500);
    for (size_t k = 0; k < r->elements; k++) {
        redisReply *fields = r->element[k]->element[1];
        assert_int_equal(fields->elements, 2);
        assert_string_equal(fields->element[0]->str, "alert");
        alert(a, sizeof a, (int)k);
        assert_string_equal(fields->element[1]->str, a);
    }
    freeReplyObject(r);
    redisFree(rc);
}

static void test_mode_channel(void **state)
{
    (void)state;
    start_srv(false, false);
    redisContext *sub = consumer();
    redisReply *r = redisCommand(sub, "SUBSCRIBE alerts-ch");
    assert_non_null(r);
    freeReplyObject(r);
    struct sink_cfg c;
    char spool[300], a[256];
    cfg_for(&c, srv.url, SINK_REDIS_CHANNEL, spool, sizeof spool);
    c.key = "alerts-ch";
    struct sink *s = sink_ok(&c);
    emit_range(s, 0, 300);
    assert_int_equal(sink_flush(s, 20000), SW_OK);
    for (int i = 0; i < 300; i++) {
        void *v = NULL;
        assert_int_equal(redisGetReply(sub, &v), REDIS_OK);
        r = v;
        assert_int_equal(r->elements, 3);
        assert_string_equal(r->element[0]->str, "message");
        assert_string_equal(r->element[1]->str, "alerts-ch");
        alert(a, sizeof a, i);
        assert_string_equal(r->element[2]->str, a);
        freeReplyObject(r);
    }
    assert_int_equal(sink_stats(s)->delivered, 300);
    sink_free(s);
    redisFree(sub);
}

static void test_unix_and_tls(void **state)
{
    (void)state;
    /* unix socket */
    start_srv(false, false);
    char url[400], spool[300];
    snprintf(url, sizeof url, "unix://%s", srv.sock);
    struct sink_cfg c;
    cfg_for(&c, url, SINK_REDIS_LIST, spool, sizeof spool);
    struct sink *s = sink_ok(&c);
    emit_range(s, 0, 50);
    assert_int_equal(sink_flush(s, 10000), SW_OK);
    sink_free(s);
    assert_list("stripwatch:alerts", 0, 50, false);
    test_redis_cleanup(&srv);
    /* TLS, verified with the test CA */
    start_srv(true, false);
    cfg_for(&c, srv.url, SINK_REDIS_LIST, spool, sizeof spool);
    c.ca_file = srv.ca;
    s = sink_ok(&c);
    emit_range(s, 50, 80);
    assert_int_equal(sink_flush(s, 10000), SW_OK);
    assert_int_equal(sink_stats(s)->delivered, 30);
    sink_free(s);
    char cmd[1024];
    snprintf(
        cmd, sizeof cmd,
        "test \"$(redis-cli --tls --cacert '%s' -h 127.0.0.1 -p %d LLEN stripwatch:alerts)\" = 30",
        srv.ca, srv.port);
    assert_true(test_sh("%s", cmd));
}

/* ---- outages ----------------------------------------------------------------- */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_kill_restart_mid_run(void **state)
{
    (void)state;
    start_srv(false, true); /* AOF, fsync always: what Redis acknowledged survives kill -9 */
    struct sink_cfg c;
    char spool[300];
    cfg_for(&c, srv.url, SINK_REDIS_LIST, spool, sizeof spool);
    c.batch_max = 32;
    struct sink *s = sink_ok(&c);
    char a[256];
    for (int i = 0; i < 3000; i++) {
        alert(a, sizeof a, i);
        assert_int_equal(sink_emit(s, a, strlen(a)), SW_OK);
        if (i == 1000)
            test_redis_stop(&srv, true);
        if (i == 2000)
            assert_true(test_redis_start(&srv));
        if (i % 10 == 0)
            sleep_ms(1);
    }
    assert_int_equal(sink_flush(s, 30000), SW_OK);
    const struct sink_stats *st = sink_stats(s);
    assert_int_equal(st->delivered, 3000);
    assert_int_equal(st->pending, 0);
    assert_true(st->reconnects >= 1);
    assert_true(st->spooled > 0);
    assert_true(st->replayed > 0);
    sink_free(s);
    assert_list("stripwatch:alerts", 0, 3000, false);
}

static void test_spool_full(void **state)
{
    (void)state;
    char url[64], spool[300], errpath[300], a[256], want[600];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", test_pick_port());
    struct sink_cfg c;
    cfg_for(&c, url, SINK_REDIS_LIST, spool, sizeof spool);
    c.spool_max_bytes = 1024;
    c.io_timeout_ms = 200;
    snprintf(errpath, sizeof errpath, "%s/stderr", tdir);
    capture_stderr(errpath);
    struct sink *s = sink_ok(&c);
    /* 100-byte alerts: header 36 bytes, records "N <json>\n" of 103 bytes: 9 fit */
    int ok = 0, full = 0;
    for (int i = 0; i < 20; i++) {
        memset(a, 'x', 100);
        memcpy(a, "{\"n\":\"", 6);
        memcpy(a + 98, "\"}", 2);
        a[100] = '\0';
        int rc = sink_emit(s, a, 100);
        if (rc == SW_OK)
            ok++;
        else if (rc == SW_ELIMIT)
            full++;
    }
    const struct sink_stats *st = sink_stats(s);
    assert_int_equal(ok, 9);
    assert_int_equal(full, 11);
    assert_int_equal(st->dropped_spool_full, 11);
    assert_int_equal(st->pending, 9);
    assert_int_equal(st->emitted, 20);
    assert_int_equal(sink_flush(s, 100), SW_AGAIN);
    sink_free(s);
    restore_stderr();
    char *text = slurp(errpath);
    snprintf(want, sizeof want,
             "stripwatch: spool %s: full (bound 1024 bytes); dropping new alerts until Redis takes "
             "the spooled ones (counted in dropped_spool_full)",
             spool);
    if (count_lines_with(text, want) != 1)
        fail_msg("stderr was:\n%s", text);
    free(text);
}

static void test_restart_replay(void **state)
{
    (void)state;
    /* the port is picked now; the server starts only after the first sink is gone */
    assert_true(test_redis_init(&srv, false, false, NULL));
    struct sink_cfg c;
    char spool[300];
    cfg_for(&c, srv.url, SINK_REDIS_LIST, spool, sizeof spool);
    c.io_timeout_ms = 200;
    struct sink *s = sink_ok(&c);
    emit_range(s, 0, 10);
    assert_int_equal(sink_flush(s, 200), SW_AGAIN);
    assert_int_equal(sink_stats(s)->spooled, 10);
    assert_int_equal(sink_stats(s)->pending, 10);
    sink_free(s); /* the 10 stay in the spool */

    assert_true(test_redis_start(&srv));
    c.io_timeout_ms = 2000;
    s = sink_ok(&c);
    emit_range(s, 10, 15);
    assert_int_equal(sink_flush(s, 10000), SW_OK);
    const struct sink_stats *st = sink_stats(s);
    assert_int_equal(st->delivered, 15);
    assert_int_equal(st->replayed, 10);
    assert_int_equal(st->pending, 0);
    sink_free(s);
    assert_list("stripwatch:alerts", 0, 15, false);
}

/* A crash after Redis acknowledged but before the head file was updated:
 * the next start re-sends, and Redis does not apply them twice. */
static void test_no_duplicate_after_crash_window(void **state)
{
    (void)state;
    assert_true(test_redis_init(&srv, false, false, NULL));
    struct sink_cfg c;
    char spool[300];
    cfg_for(&c, srv.url, SINK_REDIS_LIST, spool, sizeof spool);
    c.io_timeout_ms = 200;
    struct sink *s = sink_ok(&c);
    emit_range(s, 0, 5);
    sink_free(s);
    assert_true(
        test_sh("cp '%s' '%s.saved' && cp '%s.head' '%s.head.saved'", spool, spool, spool, spool));
    assert_true(test_redis_start(&srv));
    c.io_timeout_ms = 2000;
    s = sink_ok(&c);
    assert_int_equal(sink_flush(s, 10000), SW_OK);
    assert_int_equal(sink_stats(s)->delivered, 5);
    sink_free(s);
    /* back to the state before the head update */
    assert_true(
        test_sh("cp '%s.saved' '%s' && cp '%s.head.saved' '%s.head'", spool, spool, spool, spool));
    s = sink_ok(&c);
    emit_range(s, 5, 7);
    assert_int_equal(sink_flush(s, 10000), SW_OK);
    const struct sink_stats *st = sink_stats(s);
    assert_int_equal(st->delivered, 7);
    assert_int_equal(st->duplicates_skipped, 5);
    sink_free(s);
    assert_list("stripwatch:alerts", 0, 7, false);
}

/* Redis refuses the command (wrong key type): the alerts stay spooled until
 * it accepts them, in order. */
static void test_refused_then_accepted(void **state)
{
    (void)state;
    start_srv(false, false);
    redisContext *rc = consumer();
    freeReplyObject(redisCommand(rc, "SET stripwatch:alerts not-a-list"));
    struct sink_cfg c;
    char spool[300], errpath[300];
    cfg_for(&c, srv.url, SINK_REDIS_LIST, spool, sizeof spool);
    snprintf(errpath, sizeof errpath, "%s/stderr", tdir);
    capture_stderr(errpath);
    struct sink *s = sink_ok(&c);
    emit_range(s, 0, 3);
    assert_int_equal(sink_flush(s, 300), SW_AGAIN);
    assert_int_equal(sink_stats(s)->pending, 3);
    assert_true(sink_stats(s)->errors >= 1);
    freeReplyObject(redisCommand(rc, "DEL stripwatch:alerts"));
    assert_int_equal(sink_flush(s, 10000), SW_OK);
    assert_int_equal(sink_stats(s)->delivered, 3);
    sink_free(s);
    restore_stderr();
    redisFree(rc);
    assert_list("stripwatch:alerts", 0, 3, false);
    char *text = slurp(errpath);
    char want[800];
    snprintf(want, sizeof want, "stripwatch: redis %s: alert seq 1 refused: ", srv.url);
    if (!strstr(text, want) || !strstr(text, "WRONGTYPE"))
        fail_msg("stderr was:\n%s", text);
    free(text);
}

static void test_torn_spool_tail(void **state)
{
    (void)state;
    assert_true(test_redis_init(&srv, false, false, NULL));
    struct sink_cfg c;
    char spool[300], errpath[300], want[600];
    cfg_for(&c, srv.url, SINK_REDIS_LIST, spool, sizeof spool);
    c.io_timeout_ms = 200;
    struct sink *s = sink_ok(&c);
    emit_range(s, 0, 2);
    sink_free(s);
    struct stat sb;
    assert_int_equal(stat(spool, &sb), 0);
    /* a crash in the middle of writing record 3 */
    assert_true(test_sh("printf '3 {\"torn' >> '%s'", spool));
    assert_true(test_redis_start(&srv));
    snprintf(errpath, sizeof errpath, "%s/stderr", tdir);
    capture_stderr(errpath);
    c.io_timeout_ms = 2000;
    s = sink_ok(&c);
    assert_int_equal(sink_flush(s, 10000), SW_OK);
    assert_int_equal(sink_stats(s)->delivered, 2);
    sink_free(s);
    restore_stderr();
    assert_list("stripwatch:alerts", 0, 2, false);
    char *text = slurp(errpath);
    snprintf(
        want, sizeof want,
        "stripwatch: spool %s: cut a torn record at offset %lld (8 bytes; a crash during a write)",
        spool, (long long)sb.st_size);
    if (count_lines_with(text, want) != 1)
        fail_msg("stderr was:\n%s", text);
    free(text);
    /* a second process on the same spool is refused */
    s = sink_ok(&c);
    char err[512], want2[700];
    assert_null(sink_new(&c, err, sizeof err));
    snprintf(want2, sizeof want2, "spool %s: in use by another process (%s.head is locked)", spool,
             spool);
    assert_string_equal(err, want2);
    sink_free(s);
    /* a file that is not a spool is left alone */
    char other[300];
    snprintf(other, sizeof other, "%s/not-a-spool", tdir);
    assert_true(test_sh("echo hello > '%s'", other));
    c.spool_path = other;
    assert_null(sink_new(&c, err, sizeof err));
    snprintf(want2, sizeof want2, "spool %s: not a stripwatch spool (bad header)", other);
    assert_string_equal(err, want2);
}

/* The spool itself: bound, head, compaction keeps logical offsets, the last
 * seq survives truncation and reopening. */
static void test_spool_unit(void **state)
{
    (void)state;
    char path[300], err[512], rec[128];
    snprintf(path, sizeof path, "%s/unit.spool", tdir);
    struct spool *sp = spool_open(path, 1024, err, sizeof err);
    assert_non_null(sp);
    memset(rec, 'y', 100);
    memcpy(rec, "{\"n\":\"", 6);
    memcpy(rec + 98, "\"}", 2);
    uint64_t seq = 0;
    for (int i = 1; i <= 9; i++) {
        assert_int_equal(spool_append(sp, rec, 100, &seq), SW_OK);
        assert_int_equal(seq, (uint64_t)i);
    }
    assert_int_equal(spool_bytes(sp), 36 + 9 * 103);
    assert_int_equal(spool_append(sp, rec, 100, &seq), SW_ELIMIT);
    struct spool_rec recs[16];
    assert_int_equal(spool_read(sp, 0, recs, 16), 9);
    for (int i = 0; i < 9; i++) {
        assert_int_equal(recs[i].seq, (uint64_t)i + 1);
        assert_int_equal(recs[i].len, 100);
        assert_memory_equal(recs[i].json, rec, 100);
    }
    uint64_t end5 = recs[4].end, end9 = recs[8].end;
    for (int i = 0; i < 5; i++)
        assert_int_equal(spool_ack(sp, recs[i].seq, recs[i].end), SW_OK);
    assert_int_equal(spool_pending(sp), 4);
    assert_int_equal(spool_head(sp), end5);
    /* full, but 5 records are acknowledged: compaction makes room */
    assert_int_equal(spool_append(sp, rec, 100, &seq), SW_OK);
    assert_int_equal(seq, 10);
    assert_int_equal(spool_bytes(sp), 36 + 4 * 103 + 104);
    assert_int_equal(spool_head(sp), end5); /* logical offsets did not move */
    assert_int_equal(spool_read(sp, end5, recs, 16), 5);
    assert_int_equal(recs[0].seq, 6);
    assert_int_equal(recs[3].end, end9);
    assert_int_equal(recs[4].seq, 10);
    assert_int_equal(spool_read(sp, recs[4].end, recs, 16), 0);
    assert_int_equal(spool_save_head(sp), SW_OK);
    spool_close(sp);

    /* reopened: 6..10 pending */
    sp = spool_open(path, 1024, err, sizeof err);
    assert_non_null(sp);
    assert_int_equal(spool_pending(sp), 5);
    assert_int_equal(spool_last_seq(sp), 10);
    size_t n = spool_read(sp, 0, recs, 16);
    assert_int_equal(n, 5);
    assert_int_equal(recs[0].seq, 6);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(spool_ack(sp, recs[i].seq, recs[i].end), SW_OK);
    /* everything acknowledged: truncated back to the header */
    assert_int_equal(spool_pending(sp), 0);
    assert_int_equal(spool_bytes(sp), 36);
    spool_close(sp);
    sp = spool_open(path, 1024, err, sizeof err);
    assert_non_null(sp);
    assert_int_equal(spool_pending(sp), 0);
    assert_int_equal(spool_append(sp, rec, 100, &seq), SW_OK);
    assert_int_equal(seq, 11); /* never reused */
    /* an ack that does not match the head is refused */
    assert_int_equal(spool_ack(sp, 11, 5), SW_EPROTO);
    spool_close(sp);
    spool_close(NULL);
    /* a bound too small for anything */
    assert_null(spool_open(path, 10, err, sizeof err));
    char want[600];
    snprintf(want, sizeof want, "spool %s: bound 10 bytes is too small", path);
    assert_string_equal(err, want);
}

/* A Redis user without scripting: plain RPUSH, said once, still in order. */
static void test_plain_fallback(void **state)
{
    (void)state;
    start_srv(false, false);
    redisContext *rc = consumer();
    redisReply *r = redisCommand(rc, "ACL SETUSER feeder on >pw ~* &* +@all -@scripting");
    assert_string_equal(r->str, "OK");
    freeReplyObject(r);
    char url[300], spool[300], errpath[300], want[600];
    snprintf(url, sizeof url, "redis://feeder:pw@127.0.0.1:%d", srv.port);
    struct sink_cfg c;
    cfg_for(&c, url, SINK_REDIS_LIST, spool, sizeof spool);
    snprintf(errpath, sizeof errpath, "%s/stderr", tdir);
    capture_stderr(errpath);
    struct sink *s = sink_ok(&c);
    emit_range(s, 0, 20);
    assert_int_equal(sink_flush(s, 10000), SW_OK);
    assert_int_equal(sink_stats(s)->delivered, 20);
    sink_free(s);
    restore_stderr();
    redisFree(rc);
    assert_list("stripwatch:alerts", 0, 20, false);
    char *text = slurp(errpath);
    snprintf(want, sizeof want,
             "stripwatch: redis redis://feeder:***@127.0.0.1:%d: SCRIPT LOAD refused (NOPERM this "
             "user has no permissions to run the 'script|load' command); sending plain RPUSH "
             "without duplicate protection: an alert re-sent after a lost reply may arrive twice",
             srv.port);
    if (count_lines_with(text, want) != 1)
        fail_msg("stderr was:\n%s", text);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_sink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_sink_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_lpush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_channel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_and_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_restart_mid_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_duplicate_after_crash_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_then_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_spool_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_unit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_fallback, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
