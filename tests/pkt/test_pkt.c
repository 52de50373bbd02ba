/* SPDX-License-Identifier: Apache-2.0 */
/* test_pkt.c: pkt_decode on hand-built frames: every link type, VLAN/QinQ,
 * IPv4 options, IPv6 extension headers, truncation at every length. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "decode/pkt.h"
#include "pktbuild.h"

#define EHLO "EHLO out.example.net\r\n"

static uint8_t frame[4096];

/* An IPv4/TCP segment with "EHLO ..." at b; returns its length. */
static size_t ip4_tcp(uint8_t *b, const char *ipopts, size_t ipoptlen)
{
    uint8_t seg[256];
    size_t sl = tcp_seg(seg, 40122, 25, 1000, 2000, PKT_TH_ACK | PKT_TH_PUSH,
                        "\x02\x04\x05\xb4\x01\x01\x04\x02", 8, EHLO, strlen(EHLO));
    size_t hl = ip4_hdr(b, A_CLIENT, A_SERVER, 0x1234, 0x4000, 61, 6, ipopts, ipoptlen, sl);
    memcpy(b + hl, seg, sl);
    return hl + sl;
}

static size_t ip6_tcp(uint8_t *b)
{
    uint8_t seg[256];
    size_t sl = tcp_seg(seg, 7562, 25, 5, 6, PKT_TH_ACK, "", 0, EHLO, strlen(EHLO));
    size_t hl = ip6_hdr(b, A6_CLIENT, A6_SERVER, 6, 57, sl);
    memcpy(b + hl, seg, sl);
    return hl + sl;
}

static enum pkt_status decode(struct pkt *p, int dlt, size_t len)
{
    memset(p, 0, sizeof(*p));
    p->frame = frame;
    p->caplen = p->len = (uint32_t)len;
    p->linktype = dlt;
    return pkt_decode(p, NULL);
}

static void check_v4(const struct pkt *p)
{
    char a[64], b[64];
    assert_string_equal(sw_addr_str(&p->src, a, sizeof(a)), "192.0.2.10");
    assert_string_equal(sw_addr_str(&p->dst, b, sizeof(b)), "198.51.100.25");
    assert_int_equal(p->sport, 40122);
    assert_int_equal(p->dport, 25);
    assert_int_equal(p->seq, 1000);
    assert_int_equal(p->ack, 2000);
    assert_int_equal(p->tcp_flags, PKT_TH_ACK | PKT_TH_PUSH);
    assert_int_equal(p->win, 65535);
    assert_int_equal(p->ttl, 61);
    assert_int_equal(p->ip_id, 0x1234);
    assert_false(p->reassembled);
    assert_int_equal(p->payload_len, strlen(EHLO));
    assert_memory_equal(p->payload, EHLO, strlen(EHLO));
}

static void check_v6(const struct pkt *p)
{
    char a[64], b[64];
    assert_string_equal(sw_addr_str(&p->src, a, sizeof(a)), "2001:db8::a");
    assert_string_equal(sw_addr_str(&p->dst, b, sizeof(b)), "2001:db8::19");
    assert_int_equal(p->sport, 7562);
    assert_int_equal(p->dport, 25);
    assert_int_equal(p->ttl, 57);
    assert_int_equal(p->ip_id, 0);
    assert_int_equal(p->payload_len, strlen(EHLO));
    assert_memory_equal(p->payload, EHLO, strlen(EHLO));
}

static void test_ethernet(void **st)
{
    (void)st;
    struct pkt p;
    size_t n = eth_hdr(frame, 0x0800);
    n += ip4_tcp(frame + n, "", 0);
    assert_int_equal(decode(&p, PKT_DLT_EN10MB, n), PKT_TCP);
    check_v4(&p);
    assert_int_equal(p.n_vlan, 0);
    /* Ethernet padding after the datagram is not payload */
    memset(frame + n, 0, 20);
    assert_int_equal(decode(&p, PKT_DLT_EN10MB, n + 20), PKT_TCP);
    check_v4(&p);
    n = eth_hdr(frame, 0x86DD);
    n += ip6_tcp(frame + n);
    assert_int_equal(decode(&p, PKT_DLT_EN10MB, n), PKT_TCP);
    check_v6(&p);
    n = eth_hdr(frame, 0x0806); /* ARP */
    memset(frame + n, 0, 28);
    assert_int_equal(decode(&p, PKT_DLT_EN10MB, n + 28), PKT_NOT_TCP);
    n = eth_hdr(frame, 46); /* 802.3 length field */
    assert_int_equal(decode(&p, PKT_DLT_EN10MB, n + 46), PKT_NOT_TCP);
    assert_int_equal(decode(&p, 9999, n), PKT_ERR_LINK);
}

static void test_vlan(void **st)
{
    (void)st;
    struct pkt p;
    uint8_t *b = frame + 12;
    memcpy(frame, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
    b = put16(b, 0x8100);
    b = put16(b, 0x2000 | 125); /* PCP 1, VID 125 */
    b = put16(b, 0x0800);
    size_t n = (size_t)(b - frame) + ip4_tcp(b, "", 0);
    assert_int_equal(decode(&p, PKT_DLT_EN10MB, n), PKT_TCP);
    check_v4(&p);
    assert_int_equal(p.n_vlan, 1);
    assert_int_equal(p.vlan[0], 125);
    assert_int_equal(p.vlan[1], 0);

    /* QinQ: 802.1ad outer 100, 802.1Q inner 200, IPv6 */
    b = frame + 12;
    b = put16(b, 0x88A8);
    b = put16(b, 100);
    b = put16(b, 0x8100);
    b = put16(b, 200);
    b = put16(b, 0x86DD);
    n = (size_t)(b - frame) + ip6_tcp(b);
    assert_int_equal(decode(&p, PKT_DLT_EN10MB, n), PKT_TCP);
    check_v6(&p);
    assert_int_equal(p.n_vlan, 2);
    assert_int_equal(p.vlan[0], 100);
    assert_int_equal(p.vlan[1], 200);

    /* three tags: outermost and innermost kept */
    b = frame + 12;
    b = put16(b, 0x9100);
    b = put16(b, 7);
    b = put16(b, 0x88A8);
    b = put16(b, 8);
    b = put16(b, 0x8100);
    b = put16(b, 9);
    b = put16(b, 0x0800);
    n = (size_t)(b - frame) + ip4_tcp(b, "", 0);
    assert_int_equal(decode(&p, PKT_DLT_EN10MB, n), PKT_TCP);
    assert_int_equal(p.n_vlan, 2);
    assert_int_equal(p.vlan[0], 7);
    assert_int_equal(p.vlan[1], 9);

    /* five tags: refused */
    b = frame + 12;
    for (int i = 0; i < 5; i++) {
        b = put16(b, 0x8100);
        b = put16(b, (uint16_t)i);
    }
    b = put16(b, 0x0800);
    n = (size_t)(b - frame) + ip4_tcp(b, "", 0);
    assert_int_equal(decode(&p, PKT_DLT_EN10MB, n), PKT_ERR_LINK);
    /* a tag cut short */
    assert_int_equal(decode(&p, PKT_DLT_EN10MB, 16), PKT_ERR_LINK);
}

static void test_sll(void **st)
{
    (void)st;
    struct pkt p;
    uint8_t *b = frame;
    b = put16(b, 0); /* to us */
    b = put16(b, 1); /* ARPHRD_ETHER */
    b = put16(b, 6);
    b = putn(b, "\x02\x00\x00\x00\x00\x01\x00\x00", 8);
    b = put16(b, 0x0800);
    size_t n = 16 + ip4_tcp(b, "", 0);
    assert_int_equal(decode(&p, PKT_DLT_LINUX_SLL, n), PKT_TCP);
    check_v4(&p);
    assert_int_equal(decode(&p, PKT_DLT_LINUX_SLL, 15), PKT_ERR_LINK);
    /* VLAN tag kept in the cooked header's payload */
    b = frame + 14;
    b = put16(b, 0x8100);
    b = put16(b, 42);
    b = put16(b, 0x86DD);
    n = 20 + ip6_tcp(b);
    assert_int_equal(decode(&p, PKT_DLT_LINUX_SLL, n), PKT_TCP);
    check_v6(&p);
    assert_int_equal(p.vlan[0], 42);
}

static void test_sll2(void **st)
{
    (void)st;
    struct pkt p;
    uint8_t *b = frame;
    b = put16(b, 0x86DD);
    b = put16(b, 0);
    b = put32(b, 3); /* ifindex */
    b = put16(b, 1);
    *b++ = 4; /* outgoing */
    *b++ = 6;
    b = putn(b, "\x02\x00\x00\x00\x00\x01\x00\x00", 8);
    size_t n = 20 + ip6_tcp(b);
    assert_int_equal(decode(&p, PKT_DLT_LINUX_SLL2, n), PKT_TCP);
    check_v6(&p);
    assert_int_equal(decode(&p, PKT_DLT_LINUX_SLL2, 19), PKT_ERR_LINK);
}

static void test_raw(void **st)
{
    (void)st;
    struct pkt p;
    static const int dlts[] = {PKT_DLT_RAW, 14, PKT_DLT_RAW_101};
    for (size_t i = 0; i < 3; i++) {
        size_t n = ip4_tcp(frame, "", 0);
        assert_int_equal(decode(&p, dlts[i], n), PKT_TCP);
        check_v4(&p);
        n = ip6_tcp(frame);
        assert_int_equal(decode(&p, dlts[i], n), PKT_TCP);
        check_v6(&p);
        frame[0] = 0x50; /* version 5 */
        assert_int_equal(decode(&p, dlts[i], n), PKT_ERR_IP);
        assert_int_equal(decode(&p, dlts[i], 0), PKT_ERR_IP);
    }
    size_t n = ip4_tcp(frame, "", 0);
    assert_int_equal(decode(&p, 228, n), PKT_TCP);
    n = ip6_tcp(frame);
    assert_int_equal(decode(&p, 229, n), PKT_TCP);
    assert_int_equal(decode(&p, 228, n), PKT_ERR_IP);
}

static void test_null_loop(void **st)
{
    (void)st;
    struct pkt p;
    /* DLT_NULL, little-endian host: AF_INET = 2 */
    memcpy(frame, "\x02\x00\x00\x00", 4);
    size_t n = 4 + ip4_tcp(frame + 4, "", 0);
    assert_int_equal(decode(&p, PKT_DLT_NULL, n), PKT_TCP);
    check_v4(&p);
    /* DLT_NULL, big-endian host */
    memcpy(frame, "\x00\x00\x00\x02", 4);
    assert_int_equal(decode(&p, PKT_DLT_NULL, n), PKT_TCP);
    /* IPv6 families of the BSDs and Darwin */
    static const char *fams[] = {"\x18\x00\x00\x00", "\x1c\x00\x00\x00", "\x00\x00\x00\x1e"};
    for (size_t i = 0; i < 3; i++) {
        memcpy(frame, fams[i], 4);
        n = 4 + ip6_tcp(frame + 4);
        assert_int_equal(decode(&p, PKT_DLT_NULL, n), PKT_TCP);
        check_v6(&p);
    }
    /* DLT_LOOP is always network order */
    memcpy(frame, "\x00\x00\x00\x18", 4);
    assert_int_equal(decode(&p, PKT_DLT_LOOP, n), PKT_TCP);
    memcpy(frame, "\x18\x00\x00\x00", 4);
    assert_int_equal(decode(&p, PKT_DLT_LOOP, n), PKT_NOT_TCP);
    assert_int_equal(decode(&p, PKT_DLT_NULL, 3), PKT_ERR_LINK);
}

static void test_ip4_options(void **st)
{
    (void)st;
    struct pkt p;
    /* NOP, record route (len 7, pointer 4, one empty slot), EOL */
    size_t n = ip4_tcp(frame, "\x01\x07\x07\x04\x00\x00\x00\x00", 8);
    assert_int_equal(decode(&p, PKT_DLT_RAW, n), PKT_TCP);
    check_v4(&p);
    /* option length 1 is malformed */
    n = ip4_tcp(frame, "\x07\x01\x00\x00", 4);
    assert_int_equal(decode(&p, PKT_DLT_RAW, n), PKT_ERR_IP);
    /* option overruns the header */
    n = ip4_tcp(frame, "\x01\x01\x44\x08", 4);
    assert_int_equal(decode(&p, PKT_DLT_RAW, n), PKT_ERR_IP);
    /* IHL below 5 */
    n = ip4_tcp(frame, "", 0);
    frame[0] = 0x44;
    assert_int_equal(decode(&p, PKT_DLT_RAW, n), PKT_ERR_IP);
    /* total length below the header length */
    n = ip4_tcp(frame, "", 0);
    put16(frame + 2, 19);
    assert_int_equal(decode(&p, PKT_DLT_RAW, n), PKT_ERR_IP);
    /* total length 0 (segmentation offload): the frame length counts */
    put16(frame + 2, 0);
    assert_int_equal(decode(&p, PKT_DLT_RAW, n), PKT_TCP);
    check_v4(&p);
    /* UDP */
    n = ip4_tcp(frame, "", 0);
    frame[9] = 17;
    assert_int_equal(decode(&p, PKT_DLT_RAW, n), PKT_NOT_TCP);
}

/* IPv6 with hop-by-hop, routing, destination options and an atomic fragment. */
static void test_ip6_ext(void **st)
{
    (void)st;
    struct pkt p;
    uint8_t seg[128];
    size_t sl = tcp_seg(seg, 7562, 25, 5, 6, PKT_TH_ACK, "", 0, EHLO, strlen(EHLO));
    uint8_t ext[128], *e = ext;
    e = putn(e, "\x2b\x00\x01\x04\x00\x00\x00\x00", 8); /* HBH -> routing; PadN */
    e = putn(e, "\x3c\x02\x00\x00\x00\x00\x00\x00", 8); /* routing -> dstopts, len 2 */
    e = putn(e, A6_SERVER, 16);
    e = putn(e, "\x2c\x00\x01\x04\x00\x00\x00\x00", 8); /* dstopts -> fragment */
    e = putn(e, "\x06\x00\x00\x00\x00\x00\x00\x09", 8); /* atomic fragment -> TCP */
    size_t el = (size_t)(e - ext);
    size_t n = ip6_hdr(frame, A6_CLIENT, A6_SERVER, 0, 57, el + sl);
    memcpy(frame + n, ext, el);
    memcpy(frame + n + el, seg, sl);
    n += el + sl;
    assert_int_equal(decode(&p, PKT_DLT_RAW, n), PKT_TCP);
    check_v6(&p);
    /* a real fragment without a table */
    frame[40 + 8 + 24 + 8 + 3] = 0x01; /* M flag */
    assert_int_equal(decode(&p, PKT_DLT_RAW, n), PKT_ERR_FRAG);
    /* no next header */
    frame[6] = 59;
    assert_int_equal(decode(&p, PKT_DLT_RAW, n), PKT_NOT_TCP);
    /* an extension header running past the datagram */
    frame[6] = 0;
    frame[41] = 200;
    assert_int_equal(decode(&p, PKT_DLT_RAW, n), PKT_ERR_IP);
    /* nine destination-options headers in a row: too many */
    e = ext;
    for (int i = 0; i < 9; i++)
        e = putn(e, "\x3c\x00\x01\x04\x00\x00\x00\x00", 8);
    el = (size_t)(e - ext);
    n = ip6_hdr(frame, A6_CLIENT, A6_SERVER, 60, 57, el + sl);
    memcpy(frame + n, ext, el);
    memcpy(frame + n + el, seg, sl);
    n += el + sl;
    assert_int_equal(decode(&p, PKT_DLT_RAW, n), PKT_ERR_IP);
    /* payload length larger than the frame */
    n = ip6_tcp(frame);
    put16(frame + 4, 2000);
    assert_int_equal(decode(&p, PKT_DLT_RAW, n), PKT_ERR_IP);
    /* jumbo payload length 0 without hop-by-hop */
    put16(frame + 4, 0);
    assert_int_equal(decode(&p, PKT_DLT_RAW, n), PKT_ERR_IP);
}

static void test_tcp_header(void **st)
{
    (void)st;
    struct pkt p;
    size_t n = ip4_tcp(frame, "", 0);
    frame[20 + 12] = 0x40; /* data offset 4 words */
    assert_int_equal(decode(&p, PKT_DLT_RAW, n), PKT_ERR_TCP);
    frame[20 + 12] = 0xF0; /* 60 bytes: more than the segment holds */
    assert_int_equal(decode(&p, PKT_DLT_RAW, n), PKT_ERR_TCP);
    /* malformed TCP options are ignored, as end hosts do */
    n = ip4_tcp(frame, "", 0);
    frame[20 + 20] = 2;
    frame[20 + 21] = 60; /* MSS option claims 60 bytes */
    assert_int_equal(decode(&p, PKT_DLT_RAW, n), PKT_TCP);
    assert_int_equal(p.payload_len, strlen(EHLO));
}

/* Ethernet + 802.1Q + IPv4 with options + TCP with options, cut at every
 * length: as a real short frame (caplen == len) and as a snap-length cut. */
static void test_truncation(void **st)
{
    (void)st;
    struct pkt p;
    uint8_t *b = frame + 12;
    memcpy(frame, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
    b = put16(b, 0x8100);
    b = put16(b, 12);
    b = put16(b, 0x0800);
    size_t l2 = (size_t)(b - frame);
    size_t full = l2 + ip4_tcp(b, "\x01\x01\x01\x00", 4);
    size_t ip_end = l2 + 24, tcp_end = ip_end + 28;
    uint8_t copy[4096];
    memcpy(copy, frame, full);
    for (size_t k = 0; k < full; k++) {
        enum pkt_status want_real = k < l2 ? PKT_ERR_LINK : PKT_ERR_IP;
        memcpy(frame, copy, full);
        assert_int_equal(decode(&p, PKT_DLT_EN10MB, k), want_real);
        enum pkt_status want_snap = k < l2        ? PKT_ERR_LINK
                                    : k < ip_end  ? PKT_ERR_IP
                                    : k < tcp_end ? PKT_ERR_TCP
                                                  : PKT_TCP;
        memset(&p, 0, sizeof(p));
        p.frame = frame;
        p.caplen = (uint32_t)k;
        p.len = (uint32_t)full;
        p.linktype = PKT_DLT_EN10MB;
        assert_int_equal(pkt_decode(&p, NULL), want_snap);
        if (want_snap == PKT_TCP) {
            assert_int_equal(p.payload_len, k - tcp_end);
            assert_int_equal(p.vlan[0], 12);
        }
    }
    assert_int_equal(decode(&p, PKT_DLT_EN10MB, full), PKT_TCP);
    check_v4(&p);

    /* IPv6 behind SLL2: link 20, IPv6 40, TCP 20 */
    b = frame;
    b = put16(b, 0x86DD);
    memset(b, 0, 18);
    b += 18;
    full = 20 + ip6_tcp(b);
    memcpy(copy, frame, full);
    for (size_t k = 0; k < full; k++) {
        memcpy(frame, copy, full);
        assert_int_equal(decode(&p, PKT_DLT_LINUX_SLL2, k), k < 20 ? PKT_ERR_LINK : PKT_ERR_IP);
        memset(&p, 0, sizeof(p));
        p.frame = frame;
        p.caplen = (uint32_t)k;
        p.len = (uint32_t)full;
        p.linktype = PKT_DLT_LINUX_SLL2;
        enum pkt_status want = k < 20   ? PKT_ERR_LINK
                               : k < 60 ? PKT_ERR_IP
                               : k < 80 ? PKT_ERR_TCP
                                        : PKT_TCP;
        assert_int_equal(pkt_decode(&p, NULL), want);
    }
}

static void test_names(void **st)
{
    (void)st;
    assert_string_equal(pkt_status_str(PKT_TCP), "tcp");
    assert_string_equal(pkt_status_str(PKT_NOT_TCP), "not_tcp");
    assert_string_equal(pkt_status_str(PKT_FRAG_PENDING), "frag_pending");
    assert_string_equal(pkt_status_str(PKT_ERR_LINK), "err_link");
    assert_string_equal(pkt_status_str(PKT_ERR_IP), "err_ip");
    assert_string_equal(pkt_status_str(PKT_ERR_TCP), "err_tcp");
    assert_string_equal(pkt_status_str(PKT_ERR_FRAG), "err_frag");
    assert_string_equal(pkt_status_str(PKT_STATUS_COUNT), "unknown");
    struct sw_addr a = {.family = 6};
    char buf[64];
    assert_string_equal(sw_addr_str(&a, buf, sizeof(buf)), "::");
    a.family = 4;
    memcpy(a.b, "\x7f\x00\x00\x01", 4);
    assert_string_equal(sw_addr_str(&a, buf, sizeof(buf)), "127.0.0.1");
    a.family = 0;
    assert_string_equal(sw_addr_str(&a, buf, sizeof(buf)), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ethernet),    cmocka_unit_test(test_vlan),
        cmocka_unit_test(test_sll),         cmocka_unit_test(test_sll2),
        cmocka_unit_test(test_raw),         cmocka_unit_test(test_null_loop),
        cmocka_unit_test(test_ip4_options), cmocka_unit_test(test_ip6_ext),
        cmocka_unit_test(test_tcp_header),  cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
