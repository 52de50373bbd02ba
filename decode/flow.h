/* SPDX-License-Identifier: Apache-2.0 */
/* flow.h: the flow table and TCP reassembly (decode/flow.c, reasm.c), and the
 * stream-consumer interface through which an application decoder (SMTP)
 * receives each TCP connection as two ordered byte streams.
 *
 * The table is owned by one thread (one table per worker). flow_table_packet()
 * takes a decoded TCP segment, finds or creates its flow, reassembles, and
 * calls the consumer synchronously. Every allocation is charged to the
 * table's memcap; what is refused or evicted is counted in flow_stats. */
#ifndef SW_FLOW_H
#define SW_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode/pkt.h"

enum stream_dir {
    DIR_C2S = 0, /* client to server */
    DIR_S2C = 1, /* server to client */
};

/* What is known of a connection when it is opened to the consumer. */
struct flow_info {
    char uid[18]; /* "S" + 16 hex digits, deterministic from the
                     5-tuple, VLAN and first timestamp */
    struct sw_addr client, server;
    uint16_t cport, sport; /* client and server TCP ports */
    uint16_t vlan;         /* innermost VLAN id, 0 when none */
    bool midstream;        /* no SYN seen: roles guessed from the ports */
    uint8_t file;          /* first packet's file (struct pkt file); 0 none */
    /* the server's SYN-ACK (flow_syn_ack_fp), in the padding before start;
     * 0 when none was seen */
    uint32_t syn_ack;
    sw_usec start;      /* first packet's timestamp */
    uint64_t first_pkt; /* first packet's number */
    /* packets each side sent before the consumer opened the flow (the
     * handshake, and the packet that opened it; stream_consumer.packet
     * tells the later ones, and the SMTP decoder counts them on here) */
    uint32_t pkts_c2s, pkts_s2c;
};

/* Per-chunk facts from the packet(s) the bytes came from. */
struct stream_meta {
    sw_usec ts;
    uint64_t pkt_no;
    uint8_t ttl;    /* IPv4 TTL / IPv6 hop limit of the packet */
    uint16_t ip_id; /* IPv4 identification, 0 for IPv6 */
    uint8_t ip_version;
};

/* How a flow ended, as told to the consumer's close(). */
enum flow_end {
    FLOW_END_FIN = 0, /* both FINs (or FIN then timeout of the closed state) */
    FLOW_END_RST,
    FLOW_END_TIMEOUT,  /* idle past its timeout */
    FLOW_END_EVICTED,  /* pushed out by the memcap or the flow bound */
    FLOW_END_SHUTDOWN, /* end of capture / process exit */
};
const char *flow_end_str(enum flow_end e);

/* A SYN-ACK as a 32-bit fingerprint (flow_info.syn_ack): the IP TTL or hop
 * limit in bits 24-31 (never 0: a TTL of 0 is taken as 1), the options hash
 * (struct pkt tcp_opt_hash) in bits 16-23, the window in bits 0-15. Equal
 * stacks on equal paths give equal fingerprints; the parts tell what
 * changed. */
uint32_t flow_syn_ack_fp(uint8_t ttl, uint16_t win, uint8_t opt_hash);
#define FLOW_FP_TTL(fp)  ((uint8_t)((fp) >> 24))
#define FLOW_FP_OPTS(fp) ((uint8_t)((fp) >> 16))
#define FLOW_FP_WIN(fp)  ((uint16_t)(fp))

/* Returned by data(): directions the reassembler should stop buffering from
 * now on (their later bytes are counted and dropped, never delivered). */
#define STREAM_STOP_C2S 0x1u
#define STREAM_STOP_S2C 0x2u

/* The two copies of an overlap conflict, borrowed for the call: len bytes
 * (at most STREAM_OVERLAP_MAX, from up to 128 bytes before the first byte
 * that differs) starting rel bytes from the next byte data() will be given
 * in that direction (negative: bytes already delivered; gap() lengths count
 * as delivered). first is the copy kept, second the copy dropped. */
#define STREAM_OVERLAP_MAX 512u
struct stream_overlap {
    int64_t rel;
    const uint8_t *first, *second;
    uint32_t len;
};

/* The consumer. open() returns the per-flow state, or NULL to ignore the flow
 * (the table then keeps only a small tombstone so later packets are cheap).
 * All callbacks run on the table's thread, synchronously, in stream order;
 * buf is borrowed for the duration of the call.
 *
 * Lazy consumers set want(): it is asked at the flow's first packet (false:
 * a tombstone) and allocates nothing; open() then comes at the flow's first
 * payload byte, gap or overlap, with the same flow_info (NULL from it: the
 * flow's bytes are dropped from then on). A wanted flow that ends without
 * having been opened goes to unopened() (may be NULL) instead of close().
 * Until open(), packet() is not called. */
struct stream_consumer {
    void *ctx;
    bool (*want)(void *ctx, const struct flow_info *fi);
    void (*unopened)(void *ctx, enum flow_end why);
    void *(*open)(void *ctx, const struct flow_info *fi);
    unsigned (*data)(void *state, enum stream_dir dir, const uint8_t *buf, size_t len,
                     const struct stream_meta *m);
    /* len bytes are missing at this point of the stream (never glued).
     * m is the packet that revealed the hole (the ACK or segment beyond
     * it); a gap found only at close has pkt_no 0 and the close time.
     * When and why gaps are declared: see the header of decode/reasm.c. */
    unsigned (*gap)(void *state, enum stream_dir dir, uint32_t len, const struct stream_meta *m);
    /* every packet of the flow, with or without payload, before its data is
     * delivered (lets the consumer follow TTL / IP-ID per direction) */
    void (*packet)(void *state, enum stream_dir dir, const struct stream_meta *m,
                   uint8_t tcp_flags);
    /* two copies of the same stream offset carried different bytes; the
     * first copy was kept (the documented overlap policy). m is the packet
     * of the second copy; ov holds both copies around their first
     * difference (struct stream_overlap) */
    void (*overlap_conflict)(void *state, enum stream_dir dir, const struct stream_meta *m,
                             const struct stream_overlap *ov);
    /* len new bytes of a direction the consumer stopped (STREAM_STOP_*)
     * went by, not delivered (may be NULL): the stream's length goes on */
    void (*skipped)(void *state, enum stream_dir dir, uint32_t len);
    /* the flow is gone; state must be freed by the consumer here */
    void (*close)(void *state, enum flow_end why, sw_usec ts);
};

/* Bounds. When a new flow or a charge meets the memcap or max_flows, flows
 * are evicted (their consumer closes them with FLOW_END_EVICTED), never the
 * new one refused, in this order: entries already closed for the consumer,
 * then half-open flows (no packet without SYN yet: a SYN flood), then flows
 * without a consumer session (other ports, no payload yet, or both
 * directions stopped), then the least recently active sessions. The flow
 * whose packet is being processed is never evicted.
 * Emergency mode: above 90 % of the memcap or of max_flows the table uses the
 * emergency timeouts, until it is back under 70 % of both (counted). */
struct flow_cfg {
    uint64_t memcap;              /* bytes for flows, queued segments and the consumer's
                                     charges (default 512 MiB) */
    uint32_t max_flows;           /* default 1,000,000 */
    uint32_t max_queued_segs;     /* out-of-order segments per direction (default 256) */
    uint32_t max_queued_bytes;    /* out-of-order bytes per direction (default 1 MiB) */
    sw_usec timeout_syn;          /* half-open (default 30 s) */
    sw_usec timeout_est;          /* established, idle (default 300 s) */
    sw_usec timeout_closed;       /* after FIN/RST (default 10 s) */
    sw_usec emerg_timeout_syn;    /* the same in emergency mode (default 3 s) */
    sw_usec emerg_timeout_est;    /* (default 30 s) */
    sw_usec emerg_timeout_closed; /* (default 1 s) */
    /* server ports used to decide roles on midstream pickup (default 25, 587, 465) */
    const uint16_t *server_ports;
    size_t n_server_ports;
};
void flow_cfg_defaults(struct flow_cfg *c);

struct flow_stats {
    uint64_t flows_created, flows_closed, flows_timed_out, flows_evicted, flows_refused;
    /* flows_evicted by class (flow_cfg's order); evicted_done: entries whose
     * consumer was already done (not in flows_evicted) */
    uint64_t evicted_half_open, evicted_no_session, evicted_session, evicted_done;
    uint64_t emergency;                         /* 1 while in emergency mode */
    uint64_t emergency_entered, emergency_left; /* times */
    uint64_t
        timed_out_emergency; /* of flows_timed_out + closed expiries: on an emergency timeout */
    uint64_t flows_active, flows_active_peak;
    uint64_t bytes_in_use, bytes_peak;
    uint64_t segs_ooo_queued, segs_ooo_dropped, segs_retransmitted, segs_after_stop;
    uint64_t overlaps, overlap_conflicts, gaps, gap_bytes;
    uint64_t bytes_delivered;
    uint64_t rst_ignored; /* RSTs whose sequence number is outside the window
                             (RFC 5961: a blind reset the endpoint ignores) */
};

struct flow_table;
struct flow_table *flow_table_new(const struct flow_cfg *cfg, const struct stream_consumer *c);
/* Closes every flow (consumer close() with FLOW_END_SHUTDOWN) and frees. */
void flow_table_free(struct flow_table *t);
/* Processes one decoded TCP segment (pkt_decode returned PKT_TCP). */
void flow_table_packet(struct flow_table *t, const struct pkt *p);
/* Expires flows idle at time now (call with capture time; backwards jumps in
 * time are tolerated and never expire anything). */
void flow_table_expire(struct flow_table *t, sw_usec now);
const struct flow_stats *flow_table_stats(const struct flow_table *t);

/* The consumer's own memory, charged to the table's memcap: a charge that
 * meets the memcap evicts other flows as above (never the flow being
 * processed) and is never refused; release gives bytes back. */
void flow_table_mem_charge(struct flow_table *t, size_t n);
void flow_table_mem_release(struct flow_table *t, size_t n);

/* Symmetric hash of the connection (same for both directions), used by the
 * sensor to shard flows over workers. */
uint32_t flow_hash(const struct pkt *p);

#endif
