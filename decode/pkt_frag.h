/* SPDX-License-Identifier: Apache-2.0 */
/* pkt_frag.h: the fragment table's entry point used by pkt.c (internal). */
#ifndef SW_PKT_FRAG_H
#define SW_PKT_FRAG_H

#include "decode/pkt.h"

struct frag_key {
    uint8_t family; /* 4 or 6 */
    uint8_t proto;  /* upper-layer protocol (v4) / next header after the fragment header (v6) */
    uint8_t src[16], dst[16];
    uint32_t id;
};

/* What a completed datagram gives back: its fragmentable part (the bytes
 * after the IP header / fragment header), valid until the next frag_add. */
struct frag_done {
    const uint8_t *data;
    uint32_t len;
    uint8_t ttl; /* of the first fragment (offset 0) */
    uint16_t ip_id;
};

/* Adds one fragment (payload bytes at byte offset off; more = MF flag).
 * Returns PKT_TCP when the datagram is complete (*out filled),
 * PKT_FRAG_PENDING when stored, PKT_ERR_FRAG when dropped. */
enum pkt_status frag_add(struct frag_table *t, const struct frag_key *k, sw_usec ts, uint8_t ttl,
                         uint16_t ip_id, uint32_t off, bool more, const uint8_t *data, uint32_t len,
                         struct frag_done *out);

#endif
