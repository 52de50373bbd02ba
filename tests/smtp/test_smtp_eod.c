// SPDX-License-Identifier: Apache-2.0
// End-of-data scanner (smtp_client_content, DATA) against a byte-by-byte reference.
// RFC 5321 4.1.1.4 (CRLF "." CRLF ends the content; a bare LF is accepted too),
// 4.5.2 (dot-stuffing).

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conv.h"
#include "decode/smtp_int.h"

static struct smtp_cfg cfg;
static struct flow_info fi;

static int setup(void **state)
{
    (void)state;
    smtp_cfg_defaults(&cfg);
    conv_flow(&fi, 25);
    return 0;
}

/* ---- the reference: one byte at a time ---- */

struct ref {
    enum smtp_eod st;
    uint64_t bytes; /* content bytes so far, end marker included */
    size_t dot_len; /* 0 while not ended; 2 for ".\n", 3 for ".\r\n" */
};

/* Bytes of buf consumed (all of them unless the end marker is in buf). */
static size_t ref_scan(struct ref *r, const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t c = buf[i];
        switch (r->st) {
        case SMTP_EOD_TEXT:
            if (c == '\n')
                r->st = SMTP_EOD_BOL;
            break;
        case SMTP_EOD_BOL:
            r->st = c == '.' ? SMTP_EOD_DOT : c == '\n' ? SMTP_EOD_BOL : SMTP_EOD_TEXT;
            break;
        case SMTP_EOD_DOT:
            if (c == '\n') {
                r->bytes += i + 1;
                r->dot_len = 2;
                r->st = SMTP_EOD_BOL;
                return i + 1;
            }
            r->st = c == '\r' ? SMTP_EOD_DOT_CR : SMTP_EOD_TEXT;
            break;
        case SMTP_EOD_DOT_CR:
            if (c == '\n') {
                r->bytes += i + 1;
                r->dot_len = 3;
                r->st = SMTP_EOD_BOL;
                return i + 1;
            }
            r->st = SMTP_EOD_TEXT;
            break;
        }
    }
    r->bytes += len;
    return len;
}

/* ---- the scanner under test, on a session in DATA with one transaction ---- */

struct run {
    struct smtp_session *s;
    struct facts_tx tx;
    struct facts_tx *saved_tx;
    size_t saved_n_tx;
};

static void run_start(struct run *u, enum smtp_eod start)
{
    memset(u, 0, sizeof(*u));
    u->s = smtp_session_new(&cfg, &fi);
    assert_non_null(u->s);
    u->saved_tx = u->s->f.tx;
    u->saved_n_tx = u->s->f.n_tx;
    u->s->f.tx = &u->tx;
    u->s->f.n_tx = 1;
    u->s->data_tx = 0;
    u->s->body_bytes = 0;
    u->s->eod = start;
    u->s->st = SMTP_ST_DATA;
}

static void run_end(struct run *u)
{
    u->s->f.tx = u->saved_tx;
    u->s->f.n_tx = u->saved_n_tx;
    smtp_session_free(u->s);
}

/* Feeds body cut at cuts[0..ncuts) (increasing, inside the body) to both
 * scanners, comparing after each segment; returns the bytes consumed. */
static size_t check_split(const uint8_t *body, size_t len, const size_t *cuts, size_t ncuts,
                          enum smtp_eod start)
{
    struct run u;
    struct ref r = {start, 0, 0};
    run_start(&u, start);
    size_t off = 0;
    for (size_t k = 0; k <= ncuts && off < len; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        if (end <= off)
            continue;
        size_t want = ref_scan(&r, body + off, end - off);
        size_t got = smtp_client_content(u.s, body + off, end - off);
        assert_int_equal(got, want);
        assert_int_equal(u.s->body_bytes, r.bytes);
        off += got;
        if (r.dot_len) {
            assert_int_equal(u.s->st, SMTP_ST_COMMAND);
            assert_int_equal(u.s->eod, SMTP_EOD_BOL);
            assert_true(u.tx.data_sent);
            assert_int_equal(u.tx.data_bytes, r.bytes - r.dot_len);
            break;
        }
        assert_int_equal(u.s->st, SMTP_ST_DATA);
        assert_int_equal(u.s->eod, r.st);
        assert_int_equal(u.tx.data_bytes, r.bytes);
    }
    run_end(&u);
    return off;
}

/* ---- random bodies ---- */

static uint64_t rng = 0x5eed0fe0d5eedULL;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)((rng >> 11) % n);
}

static void put(uint8_t *b, size_t *n, size_t cap, const char *s)
{
    size_t l = strlen(s);
    if (*n + l > cap)
        return;
    memcpy(b + *n, s, l);
    *n += l;
}

/* Lines starting with ".", "..", text or nothing, ending with CRLF, a bare
 * LF, a bare CR or "\r\r\n"; some dots and CRs inside; the end marker
 * (CRLF or LF form) sometimes in the middle, sometimes absent. */
static size_t gen_body(uint8_t *b, size_t cap)
{
    static const char *const starts[] = {"", "", "a", "..", ".", ".x", "...", "\r", ".\r"};
    static const char *const ends[] = {"\r\n", "\r\n", "\r\n", "\n", "\r", "\r\r\n", ""};
    size_t n = 0;
    unsigned lines = rnd(12);
    for (unsigned l = 0; l < lines; l++) {
        put(b, &n, cap, starts[rnd(sizeof(starts) / sizeof(*starts))]);
        unsigned w = rnd(100) < 20 ? rnd(200) : rnd(8);
        for (unsigned k = 0; k < w && n < cap; k++) {
            uint32_t c = rnd(20);
            b[n++] = c == 0 ? '.' : c == 1 ? '\r' : (uint8_t)('a' + c);
        }
        put(b, &n, cap, ends[rnd(sizeof(ends) / sizeof(*ends))]);
        if (rnd(10) == 0)
            put(b, &n, cap, rnd(2) ? ".\r\n" : ".\n");
    }
    if (rnd(4))
        put(b, &n, cap, rnd(3) ? "\r\n.\r\n" : "\n.\n");
    put(b, &n, cap, "MAIL FROM:<x@example.org>\r\n");
    return n;
}

static void test_eod_random(void **state)
{
    (void)state;
    static uint8_t body[4096];
    size_t cuts[64];
    unsigned ended = 0, dotline_starts = 0;
    for (unsigned iter = 0; iter < 6000; iter++) {
        size_t len = gen_body(body, sizeof(body));
        enum smtp_eod start = rnd(4) ? SMTP_EOD_BOL : SMTP_EOD_TEXT;
        /* random cuts, sorted */
        size_t ncuts = rnd(sizeof(cuts) / sizeof(*cuts));
        for (size_t k = 0; k < ncuts; k++)
            cuts[k] = 1 + rnd((uint32_t)len);
        for (size_t a = 1; a < ncuts; a++)
            for (size_t b = a; b > 0 && cuts[b - 1] > cuts[b]; b--) {
                size_t t = cuts[b];
                cuts[b] = cuts[b - 1];
                cuts[b - 1] = t;
            }
        size_t used = check_split(body, len, cuts, ncuts, start);
        if (used < len)
            ended++;
        for (size_t k = 1; k < len; k++)
            dotline_starts += body[k] == '.' && body[k - 1] == '\n';
        /* every single cut, and byte by byte, on some */
        if (iter % 20 == 0) {
            for (size_t c = 0; c <= len; c++)
                check_split(body, len, &c, 1, start);
            size_t bytes[4096];
            for (size_t k = 0; k < len; k++)
                bytes[k] = k + 1;
            check_split(body, len, bytes, len, start);
        }
    }
    /* the generator did make what the test is about */
    assert_true(ended > 3000 && ended < 6000);
    assert_true(dotline_starts > 10000);
}

/* The end marker cut at every pair of points, after various line ends. */
static void test_eod_marker_splits(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        ".\r\n",       "\r\n.\r\n",          "x\r\n.\r\n",         "x\n.\n",
        "..\r\n.\r\n", "a\r.\r\nb\r\n.\r\n", ".x\r\n.\r\r\n.\r\n", "\n\n.\n",
        ".\r.\r\n.\n", "a.\r\n.a\r\n.\r\n",
    };
    static const size_t want[] = {3, 5, 6, 4, 7, 11, 11, 4, 7, 11};
    for (size_t b = 0; b < sizeof(bodies) / sizeof(*bodies); b++) {
        const uint8_t *body = (const uint8_t *)bodies[b];
        size_t len = strlen(bodies[b]);
        for (size_t c1 = 0; c1 <= len; c1++)
            for (size_t c2 = c1; c2 <= len; c2++) {
                size_t cuts[2] = {c1, c2};
                assert_int_equal(check_split(body, len, cuts, 2, SMTP_EOD_BOL), want[b]);
            }
    }
    /* after a resync (TEXT), a dot first in the segment is not at a line start */
    const uint8_t *body = (const uint8_t *)".\r\n.\r\n";
    assert_int_equal(check_split(body, 6, NULL, 0, SMTP_EOD_TEXT), 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_eod_random, setup),
        cmocka_unit_test_setup(test_eod_marker_splits, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
