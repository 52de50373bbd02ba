/* SPDX-License-Identifier: Apache-2.0 */
/* smtp.h: the SMTP + STARTTLS + TLS-handshake decoder (decode/smtp*.c, tls.c).
 * Bytes in, facts out: it plugs into the flow table as a stream consumer,
 * follows each conversation from both sides, fills a struct smtp_facts and
 * calls the event callback at the moments a verdict can be made. The facts
 * pointer given to the callback is borrowed for the call (copy it with
 * facts_copy to keep it). Message bodies are streamed, never buffered. */
#ifndef SW_SMTP_H
#define SW_SMTP_H

#include <stdbool.h>
#include <stddef.h>

#include "decode/facts.h"
#include "decode/flow.h"

enum smtp_event {
    SMTP_EV_EHLO_REPLY = 0, /* the (first) EHLO reply is complete */
    SMTP_EV_STARTTLS_REPLY, /* STARTTLS was answered */
    SMTP_EV_TLS,            /* the TLS handshake was seen (established or failed) */
    SMTP_EV_DATA_CLEAR,     /* content was sent in clear and its final reply arrived */
    SMTP_EV_END,            /* the session is over: the final facts */
};
const char *smtp_event_str(enum smtp_event e);

typedef void (*smtp_event_fn)(void *ctx, enum smtp_event ev, const struct smtp_facts *f);

struct smtp_cfg {
    bool log_addresses;    /* keep local parts of addresses */
    bool any_port;         /* classify non-standard ports with nDPI */
    const uint16_t *ports; /* SMTP ports (default 25, 587, 2525) */
    size_t n_ports;
    const uint16_t *tls_ports; /* implicit-TLS ports (default 465) */
    size_t n_tls_ports;
    size_t max_line;     /* longest line kept (default 4096; RFC 5321 says 1000) */
    size_t max_pipeline; /* pending commands ring (default 64) */
    /* Only for a consumer not bound to a flow table (smtp_consumer_bind):
     * bytes of SMTP decoder state (default 512 MiB, 0 means the default);
     * a session that would start over it is refused (the flow is ignored,
     * counted in smtp_stats.memcap_refused). A bound consumer charges
     * everything to the table's memcap, which evicts instead. */
    uint64_t memcap;
    smtp_event_fn on_event;
    void *event_ctx;
    /* Optional: every command verb (code 0) and every complete reply (verb
     * NULL, its code) as parsed, in stream order. SASL lines and message
     * content are never traced. For tests and debugging. */
    void (*on_trace)(void *ctx, const struct smtp_facts *f, enum stream_dir dir, const char *verb,
                     int code);
    void *trace_ctx;
};
void smtp_cfg_defaults(struct smtp_cfg *c);

struct smtp_stats {
    uint64_t sessions, ignored_flows, lines_too_long, replies_unmatched;
    uint64_t pipeline_overflow, tls_records, bytes_c2s, bytes_s2c;
    /* memory charged now and at the peak: sessions (struct, command ring,
     * partial lines, TLS reader, facts lists) and the interned strings they
     * share; memcap_refused: flows refused by smtp_cfg.memcap (an unbound
     * consumer only; sessions does not count them) */
    uint64_t memcap_refused, mem_in_use, mem_peak;
    /* flows on an SMTP port that closed without a payload byte, gap or
     * overlap in either direction: no session record, no events */
    uint64_t flows_no_payload;
    /* the interned string table (part of mem_in_use): strings held by open
     * sessions now, and the table's bytes (it grows, never shrinks) */
    uint64_t strings, strings_bytes;
    /* the consumer's certificate cache (decode/tls.h): leaf certificates
     * found there and decoded anew */
    uint64_t cert_cache_hits, cert_cache_misses;
};

/* A stream consumer for flow_table_new(): wants each flow on an SMTP port
 * (or any port with any_port, classified by nDPI) and ignores the rest. It
 * is lazy (stream_consumer.want): nothing is allocated for a flow before its
 * first payload byte, gap or overlap; then its session is made. A flow that
 * ends without any is no SMTP conversation: it gives no event and no facts
 * (smtp_stats.flows_no_payload). Strings of all sessions are interned in one
 * table per consumer. One per worker thread; smtp_consumer_free after the
 * flow table is freed. */
struct smtp_consumer;
struct smtp_consumer *smtp_consumer_new(const struct smtp_cfg *cfg);
/* Charges the consumer's memory (sessions, strings) to ft's memcap from now
 * on: a session is never refused; the table evicts instead. */
void smtp_consumer_bind(struct smtp_consumer *sc, struct flow_table *ft);
const struct stream_consumer *smtp_consumer_ops(struct smtp_consumer *sc);
const struct smtp_stats *smtp_consumer_stats(const struct smtp_consumer *sc);
/* sizeof(struct smtp_session): a session's fixed part. */
size_t smtp_consumer_session_bytes(void);
void smtp_consumer_free(struct smtp_consumer *sc);

/* One conversation, for direct use (tests, fuzzers): feed the two directions
 * in stream order. */
struct smtp_session;
struct smtp_session *smtp_session_new(const struct smtp_cfg *cfg, const struct flow_info *fi);
unsigned smtp_session_feed(struct smtp_session *s, enum stream_dir dir, const uint8_t *buf,
                           size_t len, const struct stream_meta *m);
void smtp_session_gap(struct smtp_session *s, enum stream_dir dir, uint32_t len,
                      const struct stream_meta *m);
void smtp_session_packet(struct smtp_session *s, enum stream_dir dir, const struct stream_meta *m);
/* Like smtp_session_packet, with the TCP flags (PKT_TH_*): the consumer's
 * packet() callback. */
void smtp_session_tcp_packet(struct smtp_session *s, enum stream_dir dir,
                             const struct stream_meta *m, uint8_t tcp_flags);
/* Two copies of the same stream bytes differed (ANOM_OVERLAP_CONFLICT). When
 * ov (may be NULL) shows them disagreeing on STARTTLS inside the server's
 * EHLO reply (a STARTTLS capability line in one copy only) or its STARTTLS
 * reply (220 in one copy only), ANOM_OVERLAP_STARTTLS as well, once each:
 * at once for a reply already read, else when that reply is read (the last
 * 4 such conflicts of the server's side wait for it, allocated at the
 * first). */
void smtp_session_overlap(struct smtp_session *s, enum stream_dir dir, const struct stream_meta *m,
                          const struct stream_overlap *ov);
/* Ends the session (emits SMTP_EV_END). */
void smtp_session_end(struct smtp_session *s, enum flow_end why, sw_usec ts);
/* The facts so far (also of the state a consumer's open() returned). */
const struct smtp_facts *smtp_session_facts(const struct smtp_session *s);
void smtp_session_free(struct smtp_session *s);

#endif
