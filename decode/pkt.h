/* SPDX-License-Identifier: Apache-2.0 */
/* pkt.h: link, IP and TCP decoding of one captured frame (decode/pkt.c, frag.c).
 * pkt_decode() reads the frame through bounds-checked readers and fills a
 * struct pkt that points into the frame (or into the fragment table's buffer
 * for a reassembled IPv4 datagram, valid until the next pkt_decode call on
 * the same table). It never allocates except through the fragment table,
 * which is bounded and counts what it drops. */
#ifndef SW_PKT_H
#define SW_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode/sw.h"

/* Link types we decode (values are libpcap DLT_ numbers, repeated here so
 * that decode/ needs no pcap header). */
#define PKT_DLT_NULL       0   /* BSD loopback */
#define PKT_DLT_EN10MB     1   /* Ethernet */
#define PKT_DLT_RAW        12  /* raw IP (OpenBSD value 14 handled too) */
#define PKT_DLT_LOOP       108 /* OpenBSD loopback */
#define PKT_DLT_LINUX_SLL  113 /* Linux cooked v1 */
#define PKT_DLT_RAW_101    101 /* LINKTYPE_RAW as written in files */
#define PKT_DLT_LINUX_SLL2 276

/* An IPv4 or IPv6 address; v4 addresses are stored in the first 4 bytes. */
struct sw_addr {
    uint8_t family; /* 4 or 6 */
    uint8_t b[16];
};

/* Formats an address into buf (at least 46 bytes); returns buf. */
const char *sw_addr_str(const struct sw_addr *a, char *buf, size_t len);

#define PKT_TH_FIN  0x01
#define PKT_TH_SYN  0x02
#define PKT_TH_RST  0x04
#define PKT_TH_PUSH 0x08
#define PKT_TH_ACK  0x10

struct pkt {
    /* filled by the caller (sensor/) */
    sw_usec ts;  /* capture timestamp */
    uint64_t no; /* 1-based packet number in capture (merge) order */
    const uint8_t *frame;
    uint32_t caplen; /* bytes captured */
    uint32_t len;    /* bytes on the wire */
    int linktype;    /* PKT_DLT_* */

    /* filled by pkt_decode */
    uint16_t vlan[2]; /* outer first; 0 when absent */
    uint8_t n_vlan;
    struct sw_addr src, dst;
    uint8_t ttl;      /* IPv4 TTL or IPv6 hop limit */
    uint16_t ip_id;   /* IPv4 identification; 0 for IPv6 */
    bool reassembled; /* the datagram was rebuilt from IPv4 fragments */
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t tcp_flags;
    uint16_t win;
    const uint8_t *payload;
    uint32_t payload_len;

    /* filled by the caller (sensor/), here in the tail padding: offline, 1 +
     * the index of the -r file the packet came from (in the order given; 0
     * live or past the 255th file) */
    uint8_t file;
    /* filled by pkt_decode, also in the tail padding: an 8-bit hash of the
     * TCP options' kinds in order with the MSS and window-scale values
     * (timestamps and SACK blocks vary per connection and are left out);
     * what a SYN-ACK's fingerprint is made of (flow_syn_ack_fp) */
    uint8_t tcp_opt_hash;
};

/* Why a frame was not decoded to a TCP segment. Each kind is counted. */
enum pkt_status {
    PKT_TCP = 0,      /* a TCP segment: the struct is complete */
    PKT_NOT_TCP,      /* valid but not TCP (ARP, UDP, ICMP...): ignored */
    PKT_FRAG_PENDING, /* an IPv4 fragment was stored; nothing to process yet */
    PKT_ERR_LINK,     /* unsupported link type or truncated link header */
    PKT_ERR_IP,       /* truncated or malformed IP header */
    PKT_ERR_TCP,      /* truncated or malformed TCP header */
    PKT_ERR_FRAG,     /* fragment dropped (bound, bad offset, timeout) */
    PKT_STATUS_COUNT,
};
const char *pkt_status_str(enum pkt_status s);

/* Bounded IPv4 fragment reassembly. One table per worker thread. */
struct frag_table;
struct frag_cfg {
    uint32_t max_datagrams; /* concurrent partial datagrams (default 1024) */
    uint32_t max_bytes;     /* total buffered fragment bytes (default 4 MiB) */
    sw_usec timeout;        /* partial datagram lifetime (default 30 s) */
};
void frag_cfg_defaults(struct frag_cfg *c);
struct frag_table *frag_table_new(const struct frag_cfg *cfg);
void frag_table_free(struct frag_table *t);
/* Fragments dropped for any reason (sum of the *_dropped counters below). */
uint64_t frag_table_dropped(const struct frag_table *t);

/* Reassembly policy (both IPv4 and IPv6 fragments): bytes already held win
 * over later copies of the same offset ("first copy wins", as in the TCP
 * reassembler); an overlap is counted, and one whose bytes differ is counted
 * again as a conflict. A datagram is dropped whole (its fragments counted in
 * bound_dropped) when it would exceed max_bytes, holds more than
 * FRAG_MAX_PIECES disjoint pieces, or is evicted because max_datagrams
 * partial datagrams are held (the oldest goes). A fragment with a bad offset
 * or length (beyond 65535, not a multiple of 8 before the last, beyond a
 * known end, a second different end) is dropped with its datagram
 * (bad_dropped). A partial datagram older than timeout is dropped
 * (timeout_dropped) when a later fragment arrives or frag_table_expire runs;
 * a timestamp earlier than the datagram's first never expires it. */
#define FRAG_MAX_PIECES 64
struct frag_stats {
    uint64_t fragments;   /* fragments seen */
    uint64_t datagrams;   /* partial datagrams opened */
    uint64_t reassembled; /* datagrams completed */
    uint64_t overlaps, overlap_conflicts;
    uint64_t bound_dropped, bad_dropped, timeout_dropped; /* fragments */
    uint64_t evicted;          /* datagrams pushed out by max_datagrams */
    uint64_t held, bytes_held; /* partial datagrams and bytes now held */
};
const struct frag_stats *frag_table_stats(const struct frag_table *t);
/* Drops partial datagrams older than the timeout at capture time now. */
void frag_table_expire(struct frag_table *t, sw_usec now);

/* True for the link types pkt_decode() reads (PKT_DLT_*, 14, 228, 229). */
bool pkt_linktype_supported(int linktype);
/* Decodes p->frame. ft may be NULL (fragments are then PKT_ERR_FRAG). */
enum pkt_status pkt_decode(struct pkt *p, struct frag_table *ft);

#endif
