/* SPDX-License-Identifier: Apache-2.0 */
/* test_frag.c: bounded IPv4/IPv6 fragment reassembly through pkt_decode:
 * in order, out of order, overlaps (first copy wins), bounds, timeout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "decode/pkt.h"
#include "pktbuild.h"

#define BODY "MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"

static uint8_t seg[256];
static size_t seg_len;
static uint8_t frame[2048];

static void make_seg(void)
{
    seg_len = tcp_seg(seg, 40122, 25, 77, 88, PKT_TH_ACK, "", 0, BODY, strlen(BODY));
}

/* Sends bytes [off, off+len) of seg as an IPv4 fragment. */
static enum pkt_status frag4(struct frag_table *ft, uint16_t id, size_t off, size_t len, bool more,
                             sw_usec ts, struct pkt *p, const uint8_t *data)
{
    uint16_t ff = (uint16_t)((more ? 0x2000 : 0) | (off / 8));
    size_t hl = ip4_hdr(frame, A_CLIENT, A_SERVER, id, ff, off == 0 ? 64 : 50, 6, "", 0, len);
    memcpy(frame + hl, (data ? data : seg) + off, len);
    memset(p, 0, sizeof(*p));
    p->frame = frame;
    p->caplen = p->len = (uint32_t)(hl + len);
    p->linktype = PKT_DLT_RAW;
    p->ts = ts;
    return pkt_decode(p, ft);
}

static void check_done(const struct pkt *p, uint16_t id)
{
    assert_true(p->reassembled);
    assert_int_equal(p->sport, 40122);
    assert_int_equal(p->seq, 77);
    assert_int_equal(p->ttl, 64); /* from the first fragment */
    assert_int_equal(p->ip_id, id);
    assert_int_equal(p->payload_len, strlen(BODY));
    assert_memory_equal(p->payload, BODY, strlen(BODY));
}

static struct frag_table *table(uint32_t max_d, uint32_t max_b, sw_usec timeout)
{
    struct frag_cfg c = {.max_datagrams = max_d, .max_bytes = max_b, .timeout = timeout};
    struct frag_table *t = frag_table_new(&c);
    assert_non_null(t);
    return t;
}

static void test_in_order(void **st)
{
    (void)st;
    make_seg();
    struct frag_table *t = table(16, 1 << 20, 30 * SW_USEC_PER_SEC);
    struct pkt p;
    assert_int_equal(frag4(t, 1, 0, 24, true, 1, &p, NULL), PKT_FRAG_PENDING);
    assert_int_equal(frag4(t, 1, 24, 24, true, 2, &p, NULL), PKT_FRAG_PENDING);
    assert_int_equal(frag4(t, 1, 48, seg_len - 48, false, 3, &p, NULL), PKT_TCP);
    check_done(&p, 1);
    const struct frag_stats *s = frag_table_stats(t);
    assert_int_equal(s->fragments, 3);
    assert_int_equal(s->datagrams, 1);
    assert_int_equal(s->reassembled, 1);
    assert_int_equal(s->held, 0);
    assert_int_equal(s->bytes_held, 0);
    assert_int_equal(frag_table_dropped(t), 0);
    frag_table_free(t);
}

static void test_out_of_order(void **st)
{
    (void)st;
    make_seg();
    struct frag_table *t = table(16, 1 << 20, 30 * SW_USEC_PER_SEC);
    struct pkt p;
    assert_int_equal(frag4(t, 2, 48, seg_len - 48, false, 1, &p, NULL), PKT_FRAG_PENDING);
    assert_int_equal(frag4(t, 9, 8, 8, true, 1, &p, NULL), PKT_FRAG_PENDING); /* another datagram */
    assert_int_equal(frag4(t, 2, 24, 24, true, 1, &p, NULL), PKT_FRAG_PENDING);
    assert_int_equal(frag4(t, 2, 0, 24, true, 1, &p, NULL), PKT_TCP);
    check_done(&p, 2);
    assert_int_equal(frag_table_stats(t)->held, 1);
    frag_table_free(t); /* frees the partial datagram 9 */
}

static void test_overlap(void **st)
{
    (void)st;
    make_seg();
    struct frag_table *t = table(16, 1 << 20, 30 * SW_USEC_PER_SEC);
    struct pkt p;
    uint8_t evil[256];
    memcpy(evil, seg, seg_len);
    memset(evil + 40, 'X', 16); /* conflicting bytes at 40..56 */
    assert_int_equal(frag4(t, 3, 0, 48, true, 1, &p, NULL), PKT_FRAG_PENDING);
    /* identical overlap 16..32 */
    assert_int_equal(frag4(t, 3, 16, 16, true, 1, &p, NULL), PKT_FRAG_PENDING);
    /* 40..64: 40..48 conflicts with what is held (kept), 48..56 is new (X) */
    assert_int_equal(frag4(t, 3, 40, 24, true, 1, &p, evil), PKT_FRAG_PENDING);
    assert_int_equal(frag4(t, 3, 64, seg_len - 64, false, 1, &p, NULL), PKT_TCP);
    assert_memory_equal(p.payload, BODY, 20);           /* seg 40..48 kept original */
    assert_memory_equal(p.payload + 28, "XXXXXXXX", 8); /* seg 48..56 from the second copy */
    const struct frag_stats *s = frag_table_stats(t);
    assert_int_equal(s->overlaps, 2);
    assert_int_equal(s->overlap_conflicts, 1);
    frag_table_free(t);
}

static void test_bounds(void **st)
{
    (void)st;
    make_seg();
    struct pkt p;
    /* max_bytes: a 2 KiB step per datagram; the second datagram does not fit */
    struct frag_table *t = table(16, 2048, 30 * SW_USEC_PER_SEC);
    assert_int_equal(frag4(t, 4, 0, 24, true, 1, &p, NULL), PKT_FRAG_PENDING);
    assert_int_equal(frag4(t, 5, 0, 24, true, 1, &p, NULL), PKT_ERR_FRAG);
    assert_int_equal(frag_table_stats(t)->bound_dropped, 1);
    assert_int_equal(frag_table_stats(t)->held, 1);
    /* datagram 4 still completes */
    assert_int_equal(frag4(t, 4, 24, seg_len - 24, false, 1, &p, NULL), PKT_TCP);
    check_done(&p, 4);
    frag_table_free(t);

    /* max_datagrams 2: the third evicts the oldest */
    t = table(2, 1 << 20, 30 * SW_USEC_PER_SEC);
    assert_int_equal(frag4(t, 10, 0, 24, true, 1, &p, NULL), PKT_FRAG_PENDING);
    assert_int_equal(frag4(t, 11, 0, 24, true, 1, &p, NULL), PKT_FRAG_PENDING);
    assert_int_equal(frag4(t, 12, 0, 24, true, 1, &p, NULL), PKT_FRAG_PENDING);
    assert_int_equal(frag_table_stats(t)->evicted, 1);
    assert_int_equal(frag_table_stats(t)->bound_dropped, 1);
    /* 10 was evicted: its last fragment opens a new datagram, evicting 11 */
    assert_int_equal(frag4(t, 10, 24, seg_len - 24, false, 1, &p, NULL), PKT_FRAG_PENDING);
    assert_int_equal(frag_table_stats(t)->evicted, 2);
    assert_int_equal(frag4(t, 12, 24, seg_len - 24, false, 1, &p, NULL), PKT_TCP);
    check_done(&p, 12);
    frag_table_free(t);

    /* bad offsets and lengths */
    t = table(16, 1 << 20, 30 * SW_USEC_PER_SEC);
    assert_int_equal(frag4(t, 20, 0, 20, true, 1, &p, NULL),
                     PKT_ERR_FRAG); /* not a multiple of 8 */
    uint8_t big[2048];
    memset(big, 'a', sizeof(big));
    size_t hl = ip4_hdr(frame, A_CLIENT, A_SERVER, 21, 0x1FFF, 64, 6, "", 0, 16);
    memcpy(frame + hl, big, 16); /* offset 65528 + 16 > 65535 */
    memset(&p, 0, sizeof(p));
    p.frame = frame;
    p.caplen = p.len = (uint32_t)(hl + 16);
    p.linktype = PKT_DLT_RAW;
    assert_int_equal(pkt_decode(&p, t), PKT_ERR_FRAG);
    /* two different ends */
    assert_int_equal(frag4(t, 22, 16, 16, false, 1, &p, NULL), PKT_FRAG_PENDING);
    assert_int_equal(frag4(t, 22, 8, 16, false, 1, &p, NULL), PKT_ERR_FRAG);
    assert_int_equal(frag_table_stats(t)->bad_dropped, 4); /* 3 fragments + datagram 22's first */
    assert_int_equal(frag_table_stats(t)->held, 0);
    /* too many pieces: 65 disjoint 8-byte pieces */
    for (int i = 0; i < FRAG_MAX_PIECES; i++)
        assert_int_equal(frag4(t, 23, (size_t)i * 16, 8, true, 1, &p, big), PKT_FRAG_PENDING);
    assert_int_equal(frag4(t, 23, FRAG_MAX_PIECES * 16, 8, true, 1, &p, big), PKT_ERR_FRAG);
    assert_int_equal(frag_table_stats(t)->bound_dropped, FRAG_MAX_PIECES + 1);
    /* no table: every fragment is an error; other protocols are ignored */
    assert_int_equal(frag4(NULL, 24, 0, 24, true, 1, &p, NULL), PKT_ERR_FRAG);
    hl = ip4_hdr(frame, A_CLIENT, A_SERVER, 25, 0x2000, 64, 17, "", 0, 24);
    p.caplen = p.len = (uint32_t)(hl + 24);
    assert_int_equal(pkt_decode(&p, t), PKT_NOT_TCP);
    frag_table_free(t);
}

static void test_timeout(void **st)
{
    (void)st;
    make_seg();
    struct pkt p;
    struct frag_table *t = table(16, 1 << 20, 30 * SW_USEC_PER_SEC);
    sw_usec t0 = 1700000000LL * SW_USEC_PER_SEC;
    assert_int_equal(frag4(t, 6, 0, 24, true, t0, &p, NULL), PKT_FRAG_PENDING);
    assert_int_equal(frag4(t, 6, 24, 24, true, t0 + 1000, &p, NULL), PKT_FRAG_PENDING);
    /* a backwards timestamp never expires anything */
    frag_table_expire(t, t0 - 3600 * SW_USEC_PER_SEC);
    assert_int_equal(frag_table_stats(t)->held, 1);
    /* exactly at the timeout: still held */
    frag_table_expire(t, t0 + 30 * SW_USEC_PER_SEC);
    assert_int_equal(frag_table_stats(t)->held, 1);
    /* the last fragment 31 s later: the datagram had expired, the new one waits */
    assert_int_equal(frag4(t, 6, 48, seg_len - 48, false, t0 + 31 * SW_USEC_PER_SEC, &p, NULL),
                     PKT_FRAG_PENDING);
    const struct frag_stats *s = frag_table_stats(t);
    assert_int_equal(s->timeout_dropped, 2);
    assert_int_equal(s->held, 1);
    frag_table_expire(t, t0 + 62 * SW_USEC_PER_SEC);
    assert_int_equal(s->timeout_dropped, 3);
    assert_int_equal(s->held, 0);
    assert_int_equal(frag_table_dropped(t), 3);
    frag_table_free(t);
}

/* IPv6: fragment header after a destination-options header. */
static enum pkt_status frag6(struct frag_table *ft, size_t off, size_t len, bool more,
                             struct pkt *p)
{
    uint8_t ext[16], *e = ext;
    e = putn(e, "\x2c\x00\x01\x04\x00\x00\x00\x00", 8); /* dstopts -> fragment */
    *e++ = 6;
    *e++ = 0;
    e = put16(e, (uint16_t)(off | (more ? 1 : 0)));
    e = put32(e, 0xabcdef);
    size_t n = ip6_hdr(frame, A6_CLIENT, A6_SERVER, 60, off == 0 ? 55 : 40, 16 + len);
    memcpy(frame + n, ext, 16);
    memcpy(frame + n + 16, seg + off, len);
    memset(p, 0, sizeof(*p));
    p->frame = frame;
    p->caplen = p->len = (uint32_t)(n + 16 + len);
    p->linktype = PKT_DLT_RAW;
    return pkt_decode(p, ft);
}

static void test_ipv6(void **st)
{
    (void)st;
    make_seg();
    struct pkt p;
    struct frag_table *t = table(16, 1 << 20, 30 * SW_USEC_PER_SEC);
    assert_int_equal(frag6(t, 0, 32, true, &p), PKT_FRAG_PENDING);
    assert_int_equal(frag6(t, 32, seg_len - 32, false, &p), PKT_TCP);
    assert_true(p.reassembled);
    assert_int_equal(p.ttl, 55);
    assert_int_equal(p.ip_id, 0);
    assert_int_equal(p.payload_len, strlen(BODY));
    assert_memory_equal(p.payload, BODY, strlen(BODY));
    frag_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order), cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_overlap),  cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_timeout),  cmocka_unit_test(test_ipv6),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
