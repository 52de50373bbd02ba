/* SPDX-License-Identifier: Apache-2.0 */
/* pkt_rd.h: bounds-checked big-endian readers for packet bytes (internal to
 * decode/pkt.c and frag.c). Every read returns false instead of reading past
 * the end; the position only moves on success. */
#ifndef SW_PKT_RD_H
#define SW_PKT_RD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pkt_rd {
    const uint8_t *p;
    size_t len; /* bytes available from p */
    size_t off; /* read position */
};

static inline void pkt_rd_init(struct pkt_rd *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
}

static inline size_t pkt_rd_left(const struct pkt_rd *r)
{
    return r->len - r->off;
}

static inline const uint8_t *pkt_rd_ptr(const struct pkt_rd *r)
{
    return r->p + r->off;
}

static inline bool pkt_rd_skip(struct pkt_rd *r, size_t n)
{
    if (pkt_rd_left(r) < n)
        return false;
    r->off += n;
    return true;
}

static inline bool pkt_rd_u8(struct pkt_rd *r, uint8_t *v)
{
    if (pkt_rd_left(r) < 1)
        return false;
    *v = r->p[r->off++];
    return true;
}

static inline bool pkt_rd_u16(struct pkt_rd *r, uint16_t *v)
{
    if (pkt_rd_left(r) < 2)
        return false;
    *v = (uint16_t)((r->p[r->off] << 8) | r->p[r->off + 1]);
    r->off += 2;
    return true;
}

static inline bool pkt_rd_u32(struct pkt_rd *r, uint32_t *v)
{
    if (pkt_rd_left(r) < 4)
        return false;
    const uint8_t *b = r->p + r->off;
    *v = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
    r->off += 4;
    return true;
}

/* Copies n bytes out. */
static inline bool pkt_rd_bytes(struct pkt_rd *r, uint8_t *dst, size_t n)
{
    if (pkt_rd_left(r) < n)
        return false;
    for (size_t i = 0; i < n; i++)
        dst[i] = r->p[r->off + i];
    r->off += n;
    return true;
}

#endif
