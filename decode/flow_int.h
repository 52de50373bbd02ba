/* SPDX-License-Identifier: Apache-2.0 */
/* flow_int.h: internals shared by the flow table (flow.c) and the TCP
 * reassembler (reasm.c). Not a contract: nothing outside decode/flow.c and
 * decode/reasm.c includes it (tests may, to check struct sizes). */
#ifndef SW_FLOW_INT_H
#define SW_FLOW_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode/flow.h"
#include "decode/slab.h"

/* Serial-number arithmetic on 32-bit sequence numbers (RFC 1982, RFC 9293
 * section 3.4): a is before b when the signed distance is negative. */
static inline bool seq_lt(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}
static inline bool seq_le(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) <= 0;
}
static inline bool seq_gt(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) > 0;
}
static inline bool seq_ge(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) >= 0;
}

/* Bytes further than this beyond the next expected sequence number are out
 * of any possible TCP window (RFC 7323: at most 2^30) and are dropped. */
#define REASM_WINDOW_LIMIT (1u << 30)

/* One queued out-of-order piece of a stream, with the facts of the packet it
 * came from. Pieces in a queue never overlap (first copy wins on insert). */
struct seg {
    struct seg *next;
    uint32_t seq, len;
    struct stream_meta m;
    uint8_t data[];
};

/* Delivered bytes the peer has not ACKed yet, [seq, seq+len): kept so that
 * a later copy of them with different bytes is seen (an injection race).
 * Grown to at most REASM_RETAIN_MAX, freed once ACKed (unless larger than
 * REASM_RETAIN_KEEP: a bulk transfer is under way); never evicts a flow
 * (allocated only while less than half the memcap is used). */
struct retain {
    uint32_t seq, len, cap, head; /* a ring: cap is a power of two */
    uint8_t data[];
};
#define REASM_RETAIN_MAX  4096u
#define REASM_RETAIN_KEEP 1024u /* larger buffers (bulk transfers) stay when emptied */
/* Freed buffers of every size (64 to REASM_RETAIN_MAX bytes) are kept for
 * reuse, up to REASM_SPARE_MAX of each size per table (at most about 260 KB,
 * outside the memcap): an SMTP reply is retained until ACKed, so a buffer
 * came and went per reply, and a message body's ring per session, a malloc
 * (and first-touch page faults) and a free each. */
#define REASM_SPARE_CLASSES 7 /* 64, 128, ..., 4096 */
#define REASM_SPARE_MAX     32u
_Static_assert((64u << (REASM_SPARE_CLASSES - 1)) == REASM_RETAIN_MAX,
               "the largest spare class is REASM_RETAIN_MAX");

/* flow_dir.flags */
#define FD_KNOWN    0x01 /* next is valid (SYN seen, or midstream base set) */
#define FD_SYN      0x02 /* a SYN was seen in this direction */
#define FD_FIN      0x04 /* a FIN was seen; fin_seq is valid */
#define FD_FIN_DONE 0x08 /* the stream was delivered up to its FIN */
#define FD_STOP     0x10 /* the consumer asked to stop buffering */
#define FD_WIN0     0x20 /* this direction last advertised a zero window */
#define FD_SEEN     0x40 /* a packet was seen in this direction */
#define FD_ACKED    0x80 /* the peer ACKed beyond next (acked is valid) */

/* Reassembly state of one direction; the queue is allocated lazily. */
struct flow_dir {
    struct seg *q;    /* out-of-order pieces, sorted by seq */
    struct retain *r; /* delivered, not yet ACKed (lazily allocated) */
    uint32_t next;    /* next expected sequence number */
    uint32_t fin_seq; /* sequence number of the FIN (FD_FIN) */
    uint32_t acked;   /* highest peer ACK beyond next (FD_ACKED) */
    uint32_t isn;     /* sequence number of the SYN (FD_SYN); in the server
                         direction, once its SYN-ACK was seen, that SYN-ACK's
                         fingerprint instead (flow_syn_ack_fp): nothing reads
                         the server's isn */
    uint32_t q_bytes;
    uint16_t q_n;
    uint8_t flags;
};

/* A canonical (direction-free) connection key: endpoint a is the lower of
 * the two (address, port) pairs. Padding is zeroed so memcmp compares. */
struct flow_key {
    uint8_t a[16], b[16];
    uint16_t pa, pb;
    uint16_t vlan[2];
    uint8_t family;
};

/* flow.list: the LRU list the flow is in; each has one timeout (FL_BARE and
 * FL_EST the established one) and eviction takes them in the order of
 * flow_cfg: FL_CLOSED's finished entries, FL_SYN, FL_BARE, then the older
 * head of FL_EST and FL_CLOSED. */
enum flow_list {
    FL_SYN = 0, /* half-open: no packet without SYN yet */
    FL_BARE,    /* established, no consumer session (or both directions stopped) */
    FL_EST,     /* established, with a consumer session */
    FL_CLOSED,  /* FIN or RST seen */
    FL_COUNT
};

/* flow.flags */
#define F_TOMB        0x01 /* consumer ignored the flow: header only */
#define F_CLIENT_IS_A 0x02 /* key endpoint a is the client */
#define F_DONE        0x04 /* consumer close() already called */
#define F_FIN_A       0x08 /* tombstones: FIN seen from a */
#define F_FIN_B       0x10 /* tombstones: FIN seen from b */
#define F_LAZY        0x20 /* wanted by a lazy consumer, open() not called yet */
#define F_MIDSTREAM   0x40 /* no SYN at the first packet (flow_info.midstream) */
#define F_VLAN2       0x80 /* two VLAN tags: the innermost is key.vlan[1] */

/* A tracked flow. A tombstone is only the part before `cstate`. */
struct flow {
    struct flow *hnext;       /* hash chain */
    struct flow *prev, *next; /* LRU list of its class, oldest first */
    sw_usec last;             /* table clock at the last packet */
    struct flow_key key;
    uint32_t hash;
    uint8_t list;
    uint8_t flags;
    bool emb; /* embryonic: only the header and struct flow_emb */
    /* the first packet's file (struct pkt file), in the header's padding:
     * no flow grows for it */
    uint8_t file;
    /* packets each side sent before the consumer opened the flow (the
     * handshake; saturating), in the header's padding: the consumer counts
     * the later ones */
    uint16_t pre_pkts[2];
    /* full flows only */
    void *cstate;
    struct flow_dir d[2]; /* indexed by enum stream_dir */
    sw_usec start;        /* first packet (flow_info, for a lazy open) */
    uint64_t first_pkt;
};
#define FLOW_TOMB_SIZE offsetof(struct flow, cstate)

/* An embryonic entry: a lazy consumer's flow that has seen one client SYN
 * and nothing else (a SYN flood is made of them). The header, then this
 * where a full flow has cstate; it grows into a full flow at its next packet
 * with the state the SYN would have left (flow.c flow_grow). */
struct flow_emb {
    sw_usec start;
    uint64_t first_pkt;
    uint32_t isn;
};
#define FLOW_EMB_SIZE (FLOW_TOMB_SIZE + sizeof(struct flow_emb))
static inline struct flow_emb *flow_emb_of(struct flow *f)
{
    return (struct flow_emb *)((char *)f + FLOW_TOMB_SIZE);
}

struct flow_lru {
    struct flow *head, *tail;
};

struct flow_table {
    struct flow_cfg cfg;
    struct flow *cur; /* the flow being processed: never evicted */
    bool evicting;    /* inside an eviction: charges do not evict again */
    bool emergency;
    bool tearing_down; /* flow_table_free: entries leave without unlinking their chains */
    struct stream_consumer c;
    struct flow_stats st;
    struct flow **buckets;
    uint32_t n_buckets; /* power of two */
    uint32_t n_flows;
    uint64_t seed; /* bucket hash seed (hash flooding) */
    struct flow_lru lru[FL_COUNT];
    struct sw_slab slab_tomb, slab_emb, slab_full; /* the three entry sizes (slab.h) */
    struct retain *spare[REASM_SPARE_CLASSES];     /* reasm.c: freed ring buffers */
    unsigned n_spare[REASM_SPARE_CLASSES];
    sw_usec clock;   /* monotonic capture clock */
    sw_usec pending; /* a big forward jump awaiting confirmation */
    bool clock_set;
};

/* flow.c: memory accounting. Reserves size bytes under the memcap, evicting
 * the oldest idle flows other than keep; false when nothing can be freed. */
bool flow_mem_reserve(struct flow_table *t, size_t size, const struct flow *keep);
/* Opens a lazy flow for its consumer (before its first data, gap or
 * overlap); false when the flow has no consumer state (then its directions
 * are stopped and nothing is to be delivered). */
bool flow_consumer_ready(struct flow_table *t, struct flow *f);
/* Charges size bytes only if less than half the memcap would be in use
 * (nice-to-have memory: never evicts, leaves room for flows and queues). */
bool flow_mem_try(struct flow_table *t, size_t size);
void flow_mem_release(struct flow_table *t, size_t size);

/* reasm.c */
/* Reassembles one segment of flow f in direction dir (ACK processing of the
 * other direction included). Does not handle RST (flow.c closes the flow). */
void reasm_packet(struct flow_table *t, struct flow *f, enum stream_dir dir, const struct pkt *p,
                  const struct stream_meta *m);
/* Delivers what is queued in both directions, declaring gaps for holes. */
void reasm_flush(struct flow_table *t, struct flow *f);
/* Frees both queues (no delivery). */
void reasm_free(struct flow_table *t, struct flow *f);
/* Frees the spare buffers of the table (flow_table_free). */
void reasm_table_free(struct flow_table *t);

#endif
