/* SPDX-License-Identifier: Apache-2.0 */
/* test_cli.c: the stripwatch binary on real captures: bad input (missing,
 * corrupt, truncated file; bad BPF; unknown interface; bad flags), -r merge
 * order, -r - (stdin), a pcapng mixing link types, and identical output for
 * every --workers N on every capture in pcaps/ (with pcaps/third-party/);
 * a bounded queue to an output stage that falls behind;
 * --user/--group (bad names, a failed drop, and the ids of every thread). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <poll.h>
#include <pwd.h>

#include "runbin.h"

static char *tmp;
/* Readable by every user: copies of the binary and of DECRYPTED for the runs
 * as nobody (setpriv), which may not read the checkout or the build dir. */
static char *pub, *pub_stripwatch, *pub_decrypted;

#define PC(x)       SW_THIRD_PARTY_PCAPS "/" x
#define ORIGINATING PC("arkime/smtp-originating.pcap")
#define DECRYPTED   PC("arkime/smtp-decrypted.pcap")
#define OLD_SMTP    PC("ndpi/pcap/smtp.pcap")

/* ---- classic pcap files, read and written by hand ---- */

struct rec {
    uint32_t sec, usec, incl, orig;
    const uint8_t *data;
};

struct pcapf {
    char *buf;
    size_t len;
    uint8_t hdr[24];
    uint32_t linktype;
    struct rec *r;
    size_t n;
};

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void pcap_load(const char *path, struct pcapf *f)
{
    memset(f, 0, sizeof(*f));
    f->buf = slurp(path, &f->len);
    assert_non_null(f->buf);
    assert_true(f->len >= 24);
    const uint8_t *b = (const uint8_t *)f->buf;
    assert_int_equal(le32(b), 0xa1b2c3d4u); /* little-endian microsecond pcap */
    memcpy(f->hdr, b, 24);
    f->linktype = le32(b + 20);
    size_t off = 24;
    f->r = calloc(f->len / 16 + 1, sizeof(*f->r));
    while (off + 16 <= f->len) {
        struct rec *r = &f->r[f->n++];
        r->sec = le32(b + off);
        r->usec = le32(b + off + 4);
        r->incl = le32(b + off + 8);
        r->orig = le32(b + off + 12);
        r->data = b + off + 16;
        off += 16 + r->incl;
        assert_true(off <= f->len);
    }
}

static void pcap_unload(struct pcapf *f)
{
    free(f->buf);
    free(f->r);
}

static void put_le32(FILE *f, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    fwrite(b, 1, 4, f);
}

static void write_rec(FILE *o, const struct rec *r, uint32_t incl_written)
{
    put_le32(o, r->sec);
    put_le32(o, r->usec);
    put_le32(o, r->incl);
    put_le32(o, r->orig);
    fwrite(r->data, 1, incl_written, o);
}

static char *tpath(const char *name)
{
    static char buf[8][4096];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmp, name);
    return buf[i];
}

/* Runs stripwatch on args (NULL-terminated, after the binary); sessions and
 * alerts go to files whose contents are returned. */
struct sw_result {
    int status;
    char *sessions, *alerts, *err;
    size_t sessions_len;
};

static void sw_run(struct sw_result *res, const char *stdin_path, ...)
{
    char *argv[64];
    int n = 0;
    argv[n++] = STRIPWATCH;
    va_list ap;
    va_start(ap, stdin_path);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 56)
        argv[n++] = (char *)a;
    va_end(ap);
    char *s = strdup(tpath("sessions.json")), *al = strdup(tpath("alerts.json"));
    argv[n++] = "--sessions-out";
    argv[n++] = s;
    argv[n++] = "--alerts-out";
    argv[n++] = al;
    argv[n] = NULL;
    unlink(s);
    unlink(al);
    struct run_out r;
    run(tmp, argv, stdin_path, 120, &r);
    res->status = r.status;
    res->err = r.err;
    free(r.out);
    size_t l;
    res->sessions = slurp(s, &res->sessions_len);
    res->alerts = slurp(al, &l);
    free(s);
    free(al);
}

static void sw_free(struct sw_result *r)
{
    free(r->sessions);
    free(r->alerts);
    free(r->err);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static size_t count_str(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* s (malloc'd copy) with stripwatch.packet.file FROM (a base name) read as
 * TO: runs of the same packets from files of other names compare equal. */
static char *swap_file(const char *s, const char *from, const char *to)
{
    char f[256], t[256];
    snprintf(f, sizeof(f), "\"packet\":{\"file\":\"%s\"", from);
    snprintf(t, sizeof(t), "\"packet\":{\"file\":\"%s\"", to);
    size_t n = 0, fl = strlen(f), tl = strlen(t);
    for (const char *p = s; (p = strstr(p, f)) != NULL; p += fl)
        n++;
    char *out = malloc(strlen(s) + n * tl + 1), *o = out;
    assert_non_null(out);
    for (const char *p = s, *q; *p; p = q + fl) {
        q = strstr(p, f);
        if (!q) {
            strcpy(o, p);
            return out;
        }
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, t, tl);
        o += tl;
    }
    *o = '\0';
    return out;
}

/* got equals want once got's packet.file FROM reads as TO; want names TO. */
static void assert_same_but_file(const char *got, const char *want, const char *from,
                                 const char *to)
{
    char t[256];
    snprintf(t, sizeof(t), "\"packet\":{\"file\":\"%s\"", to);
    if (*want)
        assert_non_null(strstr(want, t));
    char *g = swap_file(got, from, to);
    assert_string_equal(g, want);
    free(g);
}

/* ---- bad input ---- */

static void test_missing_file(void **st)
{
    (void)st;
    struct sw_result r;
    char *p = tpath("missing.pcap");
    sw_run(&r, NULL, "-q", "-r", p, NULL);
    char want[4200];
    snprintf(want, sizeof(want), "stripwatch: %s: No such file or directory\n", p);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.err, want);
    assert_string_equal(r.sessions, "");
    sw_free(&r);
}

static void test_corrupt_file(void **st)
{
    (void)st;
    char *p = tpath("corrupt.pcap");
    assert_true(spit(p, "this is not a capture file, only text\n", 38));
    struct sw_result r;
    sw_run(&r, NULL, "-q", "-r", p, NULL);
    char want[4200];
    snprintf(want, sizeof(want), "stripwatch: %s: unknown file format\n", p);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.err, want);
    sw_free(&r);
}

/* A capture cut in the middle of record K: one error line, exit 1, and the
 * same session records as the valid file holding records 1..K-1. */
static void test_truncated_file(void **st)
{
    (void)st;
    struct pcapf f;
    pcap_load(DECRYPTED, &f);
    size_t k = 60;
    while (k < f.n && f.r[k].incl < 200)
        k++; /* cut inside a record with data */
    assert_true(k < f.n - 10);
    char *good = strdup(tpath("prefix.pcap")), *cut = strdup(tpath("cut.pcap"));
    FILE *g = fopen(good, "wb"), *c = fopen(cut, "wb");
    fwrite(f.hdr, 1, 24, g);
    fwrite(f.hdr, 1, 24, c);
    for (size_t i = 0; i < k; i++) {
        write_rec(g, &f.r[i], f.r[i].incl);
        write_rec(c, &f.r[i], f.r[i].incl);
    }
    uint32_t half = f.r[k].incl / 2;
    write_rec(c, &f.r[k], half);
    fclose(g);
    fclose(c);

    struct sw_result a, b;
    sw_run(&a, NULL, "-q", "-r", good, NULL);
    assert_int_equal(a.status, 0);
    assert_string_equal(a.err, "");
    assert_true(count_lines(a.sessions) >= 1);
    sw_run(&b, NULL, "-r", cut, NULL);
    assert_int_equal(b.status, 1);
    char want[4200];
    snprintf(want, sizeof(want),
             "stripwatch: %s: truncated dump file; tried to read %u captured bytes, only got %u\n"
             "stripwatch: summary: %zu packets, ",
             cut, f.r[k].incl, half, k);
    /* the error line first, then the summary and statistics of what was decoded */
    assert_memory_equal(b.err, want, strlen(want));
    snprintf(want, sizeof(want), "\nstripwatch: stats packets=%zu ", k);
    assert_non_null(strstr(b.err, want));
    assert_same_but_file(b.sessions, a.sessions, "cut.pcap", "prefix.pcap");
    assert_same_but_file(b.alerts, a.alerts, "cut.pcap", "prefix.pcap");
    sw_free(&a);
    sw_free(&b);
    free(good);
    free(cut);
    pcap_unload(&f);
}

static void test_bad_bpf(void **st)
{
    (void)st;
    struct sw_result r;
    sw_run(&r, NULL, "-q", "-r", ORIGINATING, "--bpf", "tcp port", NULL);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.err, "stripwatch: --bpf \"tcp port\": can't parse filter expression: "
                               "syntax error\n");
    sw_free(&r);
    /* live: the same line (needs the privilege to open lo) */
    if (geteuid() == 0) {
        sw_run(&r, NULL, "-q", "-i", "lo", "--bpf", "tcp port", NULL);
        assert_int_equal(r.status, 1);
        assert_string_equal(r.err, "stripwatch: --bpf \"tcp port\": can't parse filter "
                                   "expression: syntax error\n");
        sw_free(&r);
    }
    /* a good filter that removes everything */
    sw_run(&r, NULL, "-r", ORIGINATING, "--bpf", "udp", NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.sessions, "");
    assert_non_null(strstr(r.err, "stripwatch: stats packets=0 bytes=0 filtered=24\n"));
    sw_free(&r);
}

static void test_unknown_interface(void **st)
{
    (void)st;
    struct sw_result r;
    sw_run(&r, NULL, "-q", "-i", "nosuchif0", NULL);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.err, "stripwatch: nosuchif0: No such device exists\n");
    sw_free(&r);
}

/* Skips (with its reason on stderr) a test that runs the sensor as nobody
 * when the test itself does not run as root. */
static void need_root(const char *test)
{
    if (geteuid() != 0) {
        fprintf(stderr, "test_cli: %s: skipped: not run as root (runs the sensor as nobody)\n",
                test);
        skip();
    }
}

/* Capturing without the privilege (as nobody, when the test runs as root). */
static void test_no_permission(void **st)
{
    (void)st;
    need_root("test_no_permission");
    char *argv[] = {"setpriv",
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    pub_stripwatch,
                    "-q",
                    "-i",
                    "lo",
                    NULL};
    struct run_out o;
    run(pub, argv, NULL, 20, &o);
    assert_int_equal(o.status, 1);
    assert_string_equal(o.err, "stripwatch: lo: You don't have permission to perform this "
                               "capture on that device (socket: Operation not permitted)\n");
    run_free(&o);
}

static void test_bad_flags(void **st)
{
    (void)st;
    static const struct {
        const char *a, *b, *err;
    } cases[] = {
        {"--workers", "0", "stripwatch: --workers: \"0\": not a number in 1-64\n"},
        {"--workers", "x", "stripwatch: --workers: \"x\": not a number in 1-64\n"},
        {"--memcap", "12Q",
         "stripwatch: --memcap: \"12Q\": not a size (digits with optional K, M or G) in "
         "1048576-18446744073709551615\n"},
        {"--redis-mode", "queue",
         "stripwatch: --redis-mode: \"queue\": not one of list, lpush, channel, stream\n"},
        {"--no-such-flag", NULL,
         "stripwatch: --no-such-flag: unknown option (see stripwatch -h)\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sw_result r;
        if (cases[i].b)
            sw_run(&r, NULL, "-r", ORIGINATING, cases[i].a, cases[i].b, NULL);
        else
            sw_run(&r, NULL, "-r", ORIGINATING, cases[i].a, NULL);
        assert_int_equal(r.status, 2);
        assert_string_equal(r.err, cases[i].err);
        sw_free(&r);
    }
    struct run_out o;
    char *argv[] = {STRIPWATCH, "--version", NULL};
    run(tmp, argv, NULL, 10, &o);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.out, "stripwatch " SW_VERSION "\n");
    run_free(&o);
    char *argv2[] = {STRIPWATCH, NULL};
    run(tmp, argv2, NULL, 10, &o);
    assert_int_equal(o.status, 2);
    assert_string_equal(o.err, "stripwatch: give -i IFACE or -r FILE (see stripwatch -h)\n");
    run_free(&o);
}

/* ---- merge, stdin, pcapng ---- */

/* -r a -r b gives what one file holding both, merged by time, gives. */
static void test_merge(void **st)
{
    (void)st;
    struct pcapf a, b;
    pcap_load(DECRYPTED, &a);
    pcap_load(ORIGINATING, &b);
    /* shift b into a's time span so that the two interleave */
    uint32_t shift = a.r[0].sec - b.r[0].sec;
    char *m = tpath("merged.pcap");
    FILE *o = fopen(m, "wb");
    fwrite(a.hdr, 1, 24, o);
    char *bs = strdup(tpath("shifted.pcap"));
    FILE *so = fopen(bs, "wb");
    fwrite(b.hdr, 1, 24, so);
    for (size_t j = 0; j < b.n; j++) {
        b.r[j].sec += shift;
        write_rec(so, &b.r[j], b.r[j].incl);
    }
    fclose(so);
    size_t i = 0, j = 0;
    while (i < a.n || j < b.n) {
        bool take_a =
            j == b.n || (i < a.n && (a.r[i].sec < b.r[j].sec ||
                                     (a.r[i].sec == b.r[j].sec && a.r[i].usec <= b.r[j].usec)));
        if (take_a) {
            write_rec(o, &a.r[i], a.r[i].incl);
            i++;
        } else {
            write_rec(o, &b.r[j], b.r[j].incl);
            j++;
        }
    }
    fclose(o);
    struct sw_result one, two;
    sw_run(&one, NULL, "-q", "-r", m, NULL);
    sw_run(&two, NULL, "-q", "-r", DECRYPTED, "-r", bs, NULL);
    assert_int_equal(one.status, 0);
    assert_int_equal(two.status, 0);
    assert_int_equal(count_lines(one.sessions), 5);
    /* packet.file: each session names the file of its first packet (4
     * sessions in a, 1 in b); packet numbers count on across the files */
    char *t1 = swap_file(two.sessions, "smtp-decrypted.pcap", "merged.pcap");
    char *t2 = swap_file(t1, "shifted.pcap", "merged.pcap");
    assert_string_equal(t2, one.sessions);
    assert_int_equal(count_str(two.sessions, "{\"file\":\"smtp-decrypted.pcap\""), 4);
    assert_int_equal(count_str(two.sessions, "{\"file\":\"shifted.pcap\""), 1);
    free(t1);
    free(t2);
    t1 = swap_file(two.alerts, "smtp-decrypted.pcap", "merged.pcap");
    t2 = swap_file(t1, "shifted.pcap", "merged.pcap");
    assert_string_equal(t2, one.alerts);
    free(t1);
    free(t2);
    sw_free(&two);
    /* the order on the command line does not matter */
    sw_run(&two, NULL, "-q", "-r", bs, "-r", DECRYPTED, NULL);
    t1 = swap_file(two.sessions, "smtp-decrypted.pcap", "merged.pcap");
    t2 = swap_file(t1, "shifted.pcap", "merged.pcap");
    assert_string_equal(t2, one.sessions);
    free(t1);
    free(t2);
    sw_free(&one);
    sw_free(&two);
    free(bs);
    pcap_unload(&a);
    pcap_unload(&b);
}

static void test_stdin(void **st)
{
    (void)st;
    struct sw_result f, s;
    sw_run(&f, NULL, "-q", "-r", DECRYPTED, NULL);
    sw_run(&s, DECRYPTED, "-q", "-r", "-", NULL);
    assert_int_equal(s.status, 0);
    assert_int_equal(count_lines(f.sessions), 4);
    /* packet.file: "stdin" for -r - */
    assert_same_but_file(s.sessions, f.sessions, "stdin", "smtp-decrypted.pcap");
    assert_same_but_file(s.alerts, f.alerts, "stdin", "smtp-decrypted.pcap");
    sw_free(&s);
    /* garbage on stdin is named as such */
    char *g = tpath("garbage");
    assert_true(spit(g, "garbage garbage garbage garbage\n", 32));
    sw_run(&s, g, "-q", "-r", "-", NULL);
    assert_int_equal(s.status, 1);
    assert_string_equal(s.err, "stripwatch: stdin: unknown file format\n");
    sw_free(&s);
    sw_free(&f);
}

/* pcapng block helpers (little endian) */
static void ng_block(FILE *o, uint32_t type, const void *body, uint32_t blen)
{
    uint32_t pad = (4 - blen % 4) % 4, total = 12 + blen + pad;
    put_le32(o, type);
    put_le32(o, total);
    fwrite(body, 1, blen, o);
    fwrite("\0\0\0", 1, pad, o);
    put_le32(o, total);
}

/* One file, two interfaces: Ethernet (microseconds) and raw IP (nanoseconds);
 * libpcap 1.10 refuses it, the own reader must give the Ethernet file's output. */
static void test_pcapng_mixed(void **st)
{
    (void)st;
    struct pcapf f;
    pcap_load(ORIGINATING, &f);
    char *p = tpath("mixed.pcapng");
    FILE *o = fopen(p, "wb");
    uint8_t shb[16] = {0x4d, 0x3c, 0x2b, 0x1a, 1,    0,    0,    0,
                       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    ng_block(o, 0x0A0D0D0A, shb, 16);
    uint8_t idb0[8] = {1, 0, 0, 0, 0, 0, 4, 0}; /* EN10MB, snaplen 262144 */
    ng_block(o, 1, idb0, 8);
    uint8_t idb1[20] = {101, 0, 0, 0, 0, 0, 4, 0, /* LINKTYPE_RAW */
                        9,   0, 1, 0, 9, 0, 0, 0, /* if_tsresol = 9 (ns) */
                        0,   0, 0, 0};            /* opt_endofopt */
    ng_block(o, 1, idb1, 20);
    ng_block(o, 0x0BAD, "skip me!", 8); /* unknown block: skipped */
    for (size_t i = 0; i < f.n; i++) {
        struct rec *r = &f.r[i];
        bool raw = i % 2 == 1;
        uint32_t caplen = raw ? r->incl - 14 : r->incl, orig = raw ? r->orig - 14 : r->orig;
        uint64_t t = raw ? (uint64_t)r->sec * 1000000000ull + (uint64_t)r->usec * 1000
                         : (uint64_t)r->sec * 1000000ull + r->usec;
        uint8_t *body = malloc(20 + caplen);
        uint8_t *q = body;
        uint32_t v[5] = {raw ? 1u : 0u, (uint32_t)(t >> 32), (uint32_t)t, caplen, orig};
        for (int k = 0; k < 5; k++, q += 4) {
            q[0] = (uint8_t)v[k];
            q[1] = (uint8_t)(v[k] >> 8);
            q[2] = (uint8_t)(v[k] >> 16);
            q[3] = (uint8_t)(v[k] >> 24);
        }
        memcpy(q, r->data + (raw ? 14 : 0), caplen);
        ng_block(o, 6, body, 20 + caplen);
        free(body);
    }
    fclose(o);
    struct sw_result a, b;
    sw_run(&a, NULL, "-q", "-r", ORIGINATING, NULL);
    sw_run(&b, NULL, "-r", p, NULL);
    assert_int_equal(b.status, 0);
    assert_int_equal(count_lines(a.sessions), 1);
    assert_same_but_file(b.sessions, a.sessions, "mixed.pcapng", "smtp-originating.pcap");
    char want[128];
    snprintf(want, sizeof(want), "stripwatch: summary: %zu packets, ", f.n);
    assert_memory_equal(b.err, want, strlen(want));
    snprintf(want, sizeof(want), "\nstripwatch: stats packets=%zu ", f.n);
    assert_non_null(strstr(b.err, want));
    assert_non_null(strstr(b.err, " tcp=24 not_tcp=0 "));
    sw_free(&a);
    sw_free(&b);

    /* the same file cut inside a block */
    size_t len;
    char *whole = slurp(p, &len);
    char *cut = tpath("mixed-cut.pcapng");
    assert_true(spit(cut, whole, len - 30));
    free(whole);
    sw_run(&b, NULL, "-q", "-r", cut, NULL);
    assert_int_equal(b.status, 1);
    assert_non_null(strstr(b.err, ": truncated pcapng block at offset "));
    assert_int_equal(count_lines(b.err), 1);
    sw_free(&b);
    pcap_unload(&f);
}

/* ---- determinism over --workers ---- */

static char *captures[256];
static size_t n_captures;

static int collect(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    if (ftw->level > 0 && path[ftw->base] == '.')
        return type == FTW_D ? FTW_SKIP_SUBTREE : FTW_CONTINUE; /* work dirs, dotfiles */
    size_t l = strlen(path);
    if (type == FTW_F && n_captures < 256 &&
        ((l > 5 && strcmp(path + l - 5, ".pcap") == 0) ||
         (l > 7 && strcmp(path + l - 7, ".pcapng") == 0)))
        captures[n_captures++] = strdup(path);
    return FTW_CONTINUE;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_workers_identical(void **st)
{
    (void)st;
    n_captures = 0;
    assert_int_equal(nftw(SW_SOURCE_DIR "/pcaps", collect, 16, FTW_PHYS | FTW_ACTIONRETVAL), 0);
    if (SW_EXTRA_PCAPS[0]) /* only the captures that are not in pcaps/ */
        assert_int_equal(
            nftw(SW_EXTRA_PCAPS "/wireshark-notes", collect, 16, FTW_PHYS | FTW_ACTIONRETVAL), 0);
    else
        fprintf(stderr, "test_cli: test_workers_identical: skipped the SW_EXTRA_PCAPS captures "
                        "(wireshark-notes/tls/*.pcapng): not redistributable (no licence); set "
                        "SW_EXTRA_PCAPS to a directory holding them\n");
    qsort(captures, n_captures, sizeof(captures[0]), cmp_str);
    size_t third_party = 0, third_party_sessions = 0;
    for (size_t i = 0; i < n_captures; i++) {
        bool tp =
            strncmp(captures[i], SW_THIRD_PARTY_PCAPS "/", strlen(SW_THIRD_PARTY_PCAPS) + 1) == 0;
        struct sw_result one;
        sw_run(&one, NULL, "-q", "-r", captures[i], "--workers", "1", NULL);
        if (one.status != 0)
            fail_msg("%s: exit %d: %s", captures[i], one.status, one.err);
        third_party += tp;
        third_party_sessions += tp ? count_lines(one.sessions) : 0;
        static const char *ns[] = {"2", "5"};
        for (size_t k = 0; k < 2; k++) {
            struct sw_result m;
            sw_run(&m, NULL, "-q", "-r", captures[i], "--workers", ns[k], NULL);
            if (m.status != 0 || strcmp(m.sessions, one.sessions) != 0 ||
                strcmp(m.alerts, one.alerts) != 0)
                fail_msg("%s: --workers %s differs from --workers 1", captures[i], ns[k]);
            sw_free(&m);
        }
        sw_free(&one);
        free(captures[i]);
    }
    /* pcaps/third-party/README.md: 8 captures, their 12 SMTP streams but
     * the SOCKS5 one (needs --any-port) */
    assert_int_equal(third_party, 8);
    assert_int_equal(third_party_sessions, 11);
    assert_true(n_captures >= 30); /* and the project's own */
}

/* SIGTERM while reading a capture from a pipe that stalls: exit 0, and the
 * sessions of what was read end as on a capture end. */
static void test_sigterm_flushes(void **st)
{
    (void)st;
    struct pcapf f;
    pcap_load(DECRYPTED, &f);
    size_t k = 70;
    char *prefix = strdup(tpath("prefix70.pcap")), *fifo = strdup(tpath("fifo"));
    FILE *g = fopen(prefix, "wb");
    fwrite(f.hdr, 1, 24, g);
    for (size_t i = 0; i < k; i++)
        write_rec(g, &f.r[i], f.r[i].incl);
    fclose(g);
    struct sw_result want;
    sw_run(&want, NULL, "-q", "-r", prefix, NULL);
    assert_int_equal(want.status, 0);
    assert_true(count_lines(want.sessions) >= 1);

    assert_int_equal(mkfifo(fifo, 0600), 0);
    char *s = strdup(tpath("sessions-term.json")), *a = strdup(tpath("alerts-term.json"));
    char *argv[] = {STRIPWATCH, "-q", "-r", "-", "--sessions-out", s, "--alerts-out", a, NULL};
    pid_t pid = run_start(tmp, argv, fifo);
    int fd = open(fifo, O_WRONLY);
    assert_true(fd >= 0);
    size_t len;
    char *whole = slurp(prefix, &len);
    assert_int_equal(write(fd, whole, len), (ssize_t)len);
    free(whole);
    sleep(1); /* the sensor has read all of it and waits for more */
    kill(pid, SIGTERM);
    int status = run_wait(pid, 30);
    close(fd);
    struct run_out o;
    run_collect(tmp, &o);
    assert_int_equal(status, 0);
    assert_string_equal(o.err, "");
    run_free(&o);
    char *got = slurp(s, &len), *got_a = slurp(a, &len);
    assert_same_but_file(got, want.sessions, "stdin", "prefix70.pcap");
    assert_same_but_file(got_a, want.alerts, "stdin", "prefix70.pcap");
    free(got);
    free(got_a);
    free(s);
    free(a);
    sw_free(&want);
    free(prefix);
    free(fifo);
    pcap_unload(&f);
}

/* Many interleaved flows (generated: SMTP with and without STARTTLS among
 * HTTP and TLS bulk transfers) keep every worker ring busy. */
static void test_workers_many_flows(void **st)
{
    (void)st;
    char *p = strdup(tpath("generated.pcap"));
    char *argv[] = {BENCHGEN, "--write-mixed", p, "24", NULL};
    struct run_out g;
    run(tmp, argv, NULL, 120, &g);
    assert_int_equal(g.status, 0);
    unsigned long long frames = 0, sessions = 0;
    assert_int_equal(sscanf(g.out, "%llu %llu", &frames, &sessions), 2);
    run_free(&g);
    struct sw_result one;
    sw_run(&one, NULL, "-q", "-r", p, "--workers", "1", NULL);
    assert_int_equal(one.status, 0);
    assert_int_equal(count_lines(one.sessions), sessions);
    static const char *ns[] = {"2", "4"};
    for (size_t k = 0; k < 2; k++) {
        struct sw_result m;
        sw_run(&m, NULL, "-q", "-r", p, "--workers", ns[k], NULL);
        assert_int_equal(m.status, 0);
        if (strcmp(m.sessions, one.sessions) != 0 || strcmp(m.alerts, one.alerts) != 0)
            fail_msg("generated capture: --workers %s differs from --workers 1", ns[k]);
        sw_free(&m);
    }
    sw_free(&one);
    unlink(p);
    free(p);
}

/* The output stage falls behind (its session records go to a pipe nobody
 * reads yet): the capture thread stops taking packets after a bounded queue
 * of finished sessions instead of holding the rest of the capture in memory.
 * The capture (pcaps/ mixed 100 times by bench_gen: 4,300 sessions) comes
 * through a pipe; a bounded queue lets through well under half of it. Once
 * the records are read, every one comes out, as from the file, and the
 * statistics count the waits (output_waits). */
static void test_output_backpressure(void **st)
{
    (void)st;
    char *p = strdup(tpath("backpressure.pcap"));
    char *gen[] = {BENCHGEN,   "--pcaps", SW_SOURCE_DIR "/pcaps",
                   "--rounds", "100",     "--write-real-mix",
                   p,          NULL};
    struct run_out g;
    run(tmp, gen, NULL, 120, &g);
    assert_int_equal(g.status, 0);
    run_free(&g);
    struct sw_result want;
    sw_run(&want, NULL, "-q", "-r", p, NULL);
    assert_int_equal(want.status, 0);
    assert_true(count_lines(want.sessions) > 4000);

    char *in = strdup(tpath("bp-in")), *out = strdup(tpath("bp-sessions")),
         *a = strdup(tpath("bp-alerts.json"));
    assert_int_equal(mkfifo(in, 0600), 0);
    assert_int_equal(mkfifo(out, 0600), 0);
    char *argv[] = {STRIPWATCH, "-r", "-", "--sessions-out", out, "--alerts-out", a, NULL};
    pid_t pid = run_start(tmp, argv, in);
    int fi = open(in, O_WRONLY);
    assert_true(fi >= 0);
    int fo = open(out, O_RDONLY | O_NONBLOCK);
    assert_true(fo >= 0);
    size_t len;
    char *whole = slurp(p, &len);
    assert_non_null(whole);
    /* write until the sensor has taken nothing for 2 s */
    assert_int_equal(fcntl(fi, F_SETFL, O_NONBLOCK), 0);
    size_t sent = 0;
    while (sent < len) {
        struct pollfd pf = {.fd = fi, .events = POLLOUT};
        if (poll(&pf, 1, 2000) != 1)
            break;
        ssize_t k = write(fi, whole + sent, len - sent);
        assert_true(k > 0 || errno == EAGAIN);
        sent += k > 0 ? (size_t)k : 0;
    }
    if (sent >= len / 2)
        fail_msg("the sensor took %zu of %zu bytes while its records were not read", sent, len);
    /* the rest from a child, while this reads the records */
    pid_t w = fork();
    if (w == 0) {
        int fl = fcntl(fi, F_GETFL);
        fcntl(fi, F_SETFL, fl & ~O_NONBLOCK);
        bool ok = true;
        for (size_t at = sent; ok && at < len;) {
            ssize_t k = write(fi, whole + at, len - at);
            ok = k > 0;
            at += ok ? (size_t)k : 0;
        }
        _exit(ok ? 0 : 1);
    }
    close(fi);
    size_t got_len;
    char *got = slurp(out, &got_len); /* a second reader, to the sensor's close */
    close(fo);
    int ws;
    assert_int_equal(waitpid(w, &ws, 0), w);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    int status = run_wait(pid, 120);
    struct run_out o;
    run_collect(tmp, &o);
    assert_int_equal(status, 0);
    /* no -q: the summary first (no warning before it), then the statistics,
     * which count the waits */
    assert_int_equal(strncmp(o.err, "stripwatch: summary: ", 21), 0);
    const char *ow = strstr(o.err, " output_waits=");
    assert_non_null(ow);
    if (strtoull(ow + 14, NULL, 10) == 0)
        fail_msg("output_waits=0: the capture never waited for the output");
    run_free(&o);
    assert_same_but_file(got, want.sessions, "stdin", "backpressure.pcap");
    free(got);
    free(whole);
    sw_free(&want);
    unlink(in);
    unlink(out);
    unlink(a);
    unlink(p);
    free(in);
    free(out);
    free(a);
    free(p);
}

static int setup(void **st)
{
    (void)st;
    tmp = temp_dir();
    pub = temp_dir_public();
    if (!tmp || !pub)
        return -1;
    pub_stripwatch = copy_public(pub, STRIPWATCH);
    pub_decrypted = copy_public(pub, DECRYPTED);
    return pub_stripwatch && pub_decrypted ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    rm_rf(tmp);
    rm_rf(pub);
    free(pub_stripwatch);
    free(pub_decrypted);
    return 0;
}

/* ---- --user, --group ---- */

/* Unknown names are a bad command line; nothing is opened. */
static void test_user_bad(void **st)
{
    (void)st;
    static const struct {
        const char *a, *b, *c, *d, *err;
    } cases[] = {
        {"--user", "nosuchuser", NULL, NULL, "stripwatch: --user nosuchuser: no such user\n"},
        {"--user", "nobody", "--group", "nosuchgroup",
         "stripwatch: --group nosuchgroup: no such group\n"},
        {"--group", "nogroup", NULL, NULL, "stripwatch: --group nogroup: needs --user\n"},
        {"--user", "root", NULL, NULL,
         "stripwatch: --user root: has uid 0, nothing would be dropped\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sw_result r;
        sw_run(&r, NULL, "-q", "-r", DECRYPTED, cases[i].a, cases[i].b, cases[i].c, cases[i].d,
               NULL);
        assert_int_equal(r.status, 2);
        assert_string_equal(r.err, cases[i].err);
        assert_string_equal(r.sessions, "");
        sw_free(&r);
    }
}

/* Skips (with its reason on stderr) when the system has no user nobody with
 * uid and gid 65534 (Debian's). */
static void need_nobody(const char *test)
{
    const struct passwd *pw = getpwnam("nobody");
    if (!pw || pw->pw_uid != 65534 || pw->pw_gid != 65534) {
        fprintf(stderr, "test_cli: %s: skipped: no user nobody with uid and gid 65534\n", test);
        skip();
    }
}

/* A drop the process has no right to make (started as nobody) is exit 1. */
static void test_user_drop_fails(void **st)
{
    (void)st;
    need_root("test_user_drop_fails");
    need_nobody("test_user_drop_fails");
    char *argv[] = {"setpriv",
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    pub_stripwatch,
                    "-q",
                    "-r",
                    pub_decrypted,
                    "--user",
                    "nobody",
                    NULL};
    struct run_out o;
    run(pub, argv, NULL, 20, &o);
    assert_int_equal(o.status, 1);
    assert_string_equal(o.err, "stripwatch: --user nobody: cannot drop privileges: initgroups: "
                               "Operation not permitted\n");
    run_free(&o);
}

/* Files written later as the user: their directory is checked right after
 * the drop (tmp is root's, mode 0700), with one error line and nothing
 * written. */
static void test_user_unwritable(void **st)
{
    (void)st;
    need_root("test_user_unwritable");
    need_nobody("test_user_unwritable");
    char *state = strdup(tpath("state-user.json"));
    struct sw_result r;
    sw_run(&r, NULL, "-q", "-r", DECRYPTED, "--user", "nobody", "--state-file", state, NULL);
    char want[8400];
    snprintf(want, sizeof(want),
             "stripwatch: --user nobody: --state-file %s: directory %s not writable by nobody: "
             "Permission denied\n",
             state, tmp);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.err, want);
    assert_string_equal(r.sessions, "");
    assert_int_equal(access(state, F_OK), -1);
    sw_free(&r);
    free(state);
}

struct ids_check {
    char uid[128], gid[128], groups[128];
    bool ok;
};

static void ids_check_one(void *ctx, const char *status)
{
    struct ids_check *c = ctx;
    c->ok = c->ok && status && strstr(status, c->uid) && strstr(status, c->gid) &&
            strstr(status, c->groups);
}

/* Reads /proc/PID/task/TID/status lines Uid, Gid and Groups of every thread;
 * returns the number of threads, *all set when every one of them is
 * want_uid/want_gid with exactly the group want_gid. */
static size_t threads_as(pid_t pid, const char *want_uid, const char *want_gid, bool *all)
{
    struct ids_check c = {.ok = true};
    snprintf(c.uid, sizeof(c.uid), "Uid:\t%s\t%s\t%s\t%s\n", want_uid, want_uid, want_uid,
             want_uid);
    snprintf(c.gid, sizeof(c.gid), "Gid:\t%s\t%s\t%s\t%s\n", want_gid, want_gid, want_gid,
             want_gid);
    snprintf(c.groups, sizeof(c.groups), "Groups:\t%s \n", want_gid);
    size_t n = each_task_file(pid, "status", ids_check_one, &c);
    *all = c.ok && n > 0;
    return n;
}

/* --user nobody: the same output as without, and while it reads packets
 * every thread (capture, 2 workers, output) runs as 65534:65534 with no
 * other group. The capture comes through a pipe that stalls after the first
 * half. Privileges are dropped before the pipeline starts its threads, so
 * the test waits (up to 30 s) until all four exist, then checks them and
 * their names. */
static void test_user_nobody(void **st)
{
    (void)st;
    need_root("test_user_nobody");
    need_nobody("test_user_nobody");
    struct sw_result want, got;
    sw_run(&want, NULL, "-q", "-r", DECRYPTED, NULL);
    assert_int_equal(want.status, 0);
    assert_int_equal(count_lines(want.sessions), 4);
    sw_run(&got, NULL, "-q", "-r", DECRYPTED, "--user", "nobody", NULL);
    assert_int_equal(got.status, 0);
    assert_string_equal(got.err, "");
    assert_string_equal(got.sessions, want.sessions);
    assert_string_equal(got.alerts, want.alerts);
    sw_free(&got);

    char *fifo = strdup(tpath("fifo-user")), *s = strdup(tpath("sessions-user.json")),
         *a = strdup(tpath("alerts-user.json"));
    assert_int_equal(mkfifo(fifo, 0600), 0);
    char *argv[] = {
        STRIPWATCH,       "-q", "-r",           "-", "--user", "nobody", "--workers", "2",
        "--sessions-out", s,    "--alerts-out", a,   NULL};
    pid_t pid = run_start(tmp, argv, fifo);
    int fd = open(fifo, O_WRONLY);
    assert_true(fd >= 0);
    size_t len;
    char *whole = slurp(DECRYPTED, &len);
    size_t half = len / 2;
    assert_int_equal(write(fd, whole, half), (ssize_t)half);
    bool dropped = false;
    size_t threads = 0;
    struct timespec d = {0, 20 * 1000 * 1000};
    /* each named for top -H and ps -L (each names itself when it starts) */
    char want_buf[256];
    const char *want_names = want_thread_names("stripwatch sw-output sw-worker-0 sw-worker-1",
                                               want_buf, sizeof(want_buf));
    size_t want_threads = 4 + extra_threads();
    char names[256] = "";
    for (int i = 0; i < 1500; i++) { /* up to 30 s */
        threads = threads_as(pid, "65534", "65534", &dropped);
        thread_names(pid, names, sizeof(names));
        /* capture, 2 workers, output: all checked */
        if (dropped && threads == want_threads && strcmp(names, want_names) == 0)
            break;
        nanosleep(&d, NULL);
    }
    assert_int_equal(write(fd, whole + half, len - half), (ssize_t)(len - half));
    close(fd);
    free(whole);
    int status = run_wait(pid, 60);
    struct run_out o;
    run_collect(tmp, &o);
    if (!dropped || threads != want_threads)
        fail_msg("after 30 s: %zu threads (want %zu), %s as 65534:65534 only", threads,
                 want_threads, dropped ? "all" : "not all");
    assert_string_equal(names, want_names);
    assert_int_equal(status, 0);
    assert_string_equal(o.err, "");
    run_free(&o);
    char *gs = slurp(s, &len), *ga = slurp(a, &len);
    assert_same_but_file(gs, want.sessions, "stdin", "smtp-decrypted.pcap");
    assert_same_but_file(ga, want.alerts, "stdin", "smtp-decrypted.pcap");
    free(gs);
    free(ga);
    free(s);
    free(a);
    free(fifo);
    sw_free(&want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_corrupt_file),
        cmocka_unit_test(test_truncated_file),
        cmocka_unit_test(test_bad_bpf),
        cmocka_unit_test(test_unknown_interface),
        cmocka_unit_test(test_no_permission),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_stdin),
        cmocka_unit_test(test_pcapng_mixed),
        cmocka_unit_test(test_workers_identical),
        cmocka_unit_test(test_workers_many_flows),
        cmocka_unit_test(test_output_backpressure),
        cmocka_unit_test(test_sigterm_flushes),
        cmocka_unit_test(test_user_bad),
        cmocka_unit_test(test_user_drop_fails),
        cmocka_unit_test(test_user_unwritable),
        cmocka_unit_test(test_user_nobody),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
