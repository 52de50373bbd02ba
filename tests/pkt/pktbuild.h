/* SPDX-License-Identifier: Apache-2.0 */
/* pktbuild.h: tiny frame builders for decode tests (test code only). */
#ifndef SW_TEST_PKTBUILD_H
#define SW_TEST_PKTBUILD_H

#include <stdint.h>
#include <string.h>

static inline uint8_t *put16(uint8_t *b, uint16_t v)
{
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
    return b + 2;
}

static inline uint8_t *put32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
    return b + 4;
}

static inline uint8_t *putn(uint8_t *b, const void *s, size_t n)
{
    memcpy(b, s, n);
    return b + n;
}

/* TCP header (with optlen option bytes, padded by the caller to 4) + payload. */
static inline size_t tcp_seg(uint8_t *b, uint16_t sp, uint16_t dp, uint32_t seq, uint32_t ack,
                             uint8_t flags, const char *opts, size_t optlen, const char *pl,
                             size_t plen)
{
    uint8_t *p = b;
    p = put16(p, sp);
    p = put16(p, dp);
    p = put32(p, seq);
    p = put32(p, ack);
    *p++ = (uint8_t)(((20 + optlen) / 4) << 4);
    *p++ = flags;
    p = put16(p, 65535);
    p = put16(p, 0xdead); /* wrong checksum on purpose: never checked */
    p = put16(p, 0);
    p = putn(p, opts, optlen);
    p = putn(p, pl, plen);
    return (size_t)(p - b);
}

/* IPv4 header; tot = header + plen (0 when tot0). frag is the flags/offset field. */
static inline size_t ip4_hdr(uint8_t *b, const char *src, const char *dst, uint16_t id,
                             uint16_t frag, uint8_t ttl, uint8_t proto, const char *opts,
                             size_t optlen, size_t plen)
{
    uint8_t *p = b;
    size_t hl = 20 + optlen;
    *p++ = (uint8_t)(0x40 | (hl / 4));
    *p++ = 0;
    p = put16(p, (uint16_t)(hl + plen));
    p = put16(p, id);
    p = put16(p, frag);
    *p++ = ttl;
    *p++ = proto;
    p = put16(p, 0xbeef);
    p = putn(p, src, 4);
    p = putn(p, dst, 4);
    p = putn(p, opts, optlen);
    return (size_t)(p - b);
}

static inline size_t ip6_hdr(uint8_t *b, const char *src, const char *dst, uint8_t nh, uint8_t hlim,
                             size_t plen)
{
    uint8_t *p = b;
    p = put32(p, 0x60000000u);
    p = put16(p, (uint16_t)plen);
    *p++ = nh;
    *p++ = hlim;
    p = putn(p, src, 16);
    p = putn(p, dst, 16);
    return (size_t)(p - b);
}

static inline size_t eth_hdr(uint8_t *b, uint16_t etype)
{
    uint8_t *p = b;
    p = putn(p, "\x02\x00\x00\x00\x00\x02", 6);
    p = putn(p, "\x02\x00\x00\x00\x00\x01", 6);
    p = put16(p, etype);
    return (size_t)(p - b);
}

#define A_CLIENT  "\xc0\x00\x02\x0a" /* 192.0.2.10 */
#define A_SERVER  "\xc6\x33\x64\x19" /* 198.51.100.25 */
#define A6_CLIENT "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0a"
#define A6_SERVER "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x19"

#endif
