/* SPDX-License-Identifier: Apache-2.0 */
/* facts.h: what one SMTP conversation showed on the wire (decode/facts.c).
 *
 * The SMTP decoder fills a struct smtp_facts as the conversation goes; the
 * detector reads it. Facts handed to another thread are deep copies made with
 * facts_copy(); facts_free() releases one (NULL is a no-op). facts_to_json()
 * renders the facts as a jansson tree for the decoder's tests and fuzzers
 * (the caller owns it); the session record the sensor writes is
 * alerts/session_json.h. Every list is bounded; what did not fit is counted in
 * the matching *_dropped field. Facts keep what was seen, sized to it:
 * strings interned (decode/strtab.h) or one heap copy each, lists grown one
 * entry at a time, TLS facts allocated when TLS is seen; a copy is one block. */
#ifndef SW_FACTS_H
#define SW_FACTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode/flow.h"

#define FACTS_HOST_MAX    256  /* host names, domains (RFC 5321 limit is 255) */
#define FACTS_ADDR_MAX    256  /* a full mail address (only with --log-addresses) */
#define FACTS_CAPS_MAX    64   /* EHLO capability lines kept */
#define FACTS_TX_MAX      32   /* mail transactions kept per session */
#define FACTS_RCPT_MAX    128  /* recipients kept per transaction */
#define FACTS_DOMAINS_MAX 1024 /* distinct domains of recipients past FACTS_RCPT_MAX */
#define FACTS_ANOM_MAX    16   /* anomalies kept per session (a ring, facts_add_anomaly) */
#define FACTS_SAN_MAX     32   /* certificate DNS names kept */
#define FACTS_DANE_CERTS  4    /* chain certificates whose DANE digests are kept */

/* Anomalies: the detector's evidence. The names (anomaly_kind_str) are stable
 * and appear in stripwatch.anomalies[].kind. */
enum anomaly_kind {
    ANOM_CAP_MANGLED = 0,       /* capability token like XXXXXXXA, all-X, STARTTLS-length unknown */
    ANOM_STARTTLS_UNKNOWN_CMD,  /* STARTTLS answered as an unknown command (500/502) */
    ANOM_STARTTLS_REFUSED,      /* STARTTLS answered 454 or another 4xx/5xx */
    ANOM_TTL_SHIFT,             /* server packets' TTL / hop limit changed mid-conversation */
    ANOM_IPID_SHIFT,            /* server packets' IPv4 ID jumped out of sequence */
    ANOM_LINE_TOO_LONG,         /* a line over RFC 5321 limits (discarded to LF) */
    ANOM_REPLY_WITHOUT_COMMAND, /* a server reply with no pending command */
    ANOM_GAP,                   /* bytes missing in a direction (reassembly gap) */
    ANOM_NOT_TLS_AFTER_STARTTLS, /* 220 to STARTTLS, then bytes that are not TLS */
    ANOM_PLAINTEXT_ON_TLS_PORT,  /* implicit-TLS port answered in plaintext */
    ANOM_OVERLAP_CONFLICT,       /* retransmitted bytes differed from the first copy */
    ANOM_TLS_ALERT,              /* a TLS alert during the handshake */
    ANOM_STARTTLS_NOT_OFFERED,   /* client sent STARTTLS although the EHLO reply lacked it */
    ANOM_EHLO_PADDED,            /* EHLO reply over the capability bounds (lines or length) */
    ANOM_TTL_SHIFT_REPLY,        /* the EHLO / STARTTLS reply's packet left the banner's TTL by more
                                    than a route change (>= 2 hops, another initial TTL, or with an
                                    IPv4 ID break on the same packet) */
    ANOM_REPLY_CODE_CHANGED,     /* a multi-line reply changed code: ended at the change */
    ANOM_NO_TRANSACTION,         /* RCPT / DATA / BDAT with no open transaction */
    ANOM_FIELD_TRUNCATED,        /* a field kept cut at its bound (detail: field, length) */
    ANOM_BOUND_REACHED,          /* a list bound was reached (recipients, recipient domains) */
    ANOM_GREETING_CLIENT_ADDR,   /* the banner or EHLO reply names a client address ("[ip]")
                                    other than the wire's: a proxy (or NAT) on the path */
    ANOM_OVERLAP_STARTTLS,       /* two copies of the EHLO reply (or the STARTTLS reply) disagree
                                    on STARTTLS (offered / 220): one was injected or rewritten */
    ANOM_KIND_COUNT,
};
const char *anomaly_kind_str(enum anomaly_kind k);

#define FACTS_DETAIL_MAX 128 /* an anomaly's detail, with its NUL */

struct facts_anomaly {
    enum anomaly_kind kind;
    enum stream_dir dir;
    sw_usec ts;
    uint64_t pkt_no;
    const char *detail; /* e.g. "token=XXXXXXXA", "ttl 64->59" */
};

/* How the conversation ended (stripwatch.end). */
enum smtp_end {
    SMTP_END_NONE = 0, /* still running */
    SMTP_END_QUIT,     /* QUIT answered */
    SMTP_END_FIN,      /* TCP closed without QUIT */
    SMTP_END_RST,
    SMTP_END_TIMEOUT,
    SMTP_END_EVICTED,
    SMTP_END_CAPTURE_END, /* the capture ended with the session open */
    SMTP_END_TLS,         /* encrypted after STARTTLS/implicit TLS, then closed */
};
const char *smtp_end_str(enum smtp_end e);

/* Strings below are NULL until seen (facts_s() reads NULL as ""); they are
 * set with facts_set() and never written in place. */
struct facts_rcpt {
    const char *domain;
    const char *address; /* full address, only with --log-addresses, else NULL */
    int code;            /* reply code, 0 when no reply seen */
};

/* A distinct recipient domain of a transaction: how many RCPT named it,
 * how many of those got a 2xx. */
struct facts_domain {
    const char *domain;
    uint32_t rcpts, accepted;
};

struct facts_tx {
    const char *mail_from_domain; /* "" or NULL for the null sender <> */
    const char *mail_from;        /* only with --log-addresses */
    const char *body_param;       /* 7BIT / 8BITMIME / BINARYMIME (at most 15 bytes) */
    struct facts_rcpt *rcpt;
    size_t n_rcpt;
    uint64_t size_param; /* MAIL FROM SIZE=, 0 when absent */
    uint64_t data_bytes; /* content bytes seen in clear */
    sw_usec ts;          /* MAIL FROM time */
    uint64_t pkt_no;     /* packet carrying MAIL FROM */
    int mail_code;
    int data_code; /* final reply to the content, 0 when not seen */
    int accepted;  /* -1 unknown, 0 refused, 1 accepted (2xx) */
    uint32_t rcpt_dropped;
    /* the recipients past FACTS_RCPT_MAX (not in rcpt): their distinct
     * domains, at most FACTS_DOMAINS_MAX (the rest counted) */
    struct facts_domain *domains;
    size_t n_domains;
    uint32_t domains_dropped;
    uint32_t rcpt_total;    /* RCPT commands, kept or not */
    uint32_t rcpt_accepted; /* ... answered 2xx */
    bool before_capture;    /* content without a visible MAIL FROM: begun before the capture */
    bool closed;            /* the final reply to its content was seen */
    /* content */
    bool data_sent; /* DATA accepted with 354, or BDAT chunks sent */
    bool bdat;      /* content went by BDAT (CHUNKING) */
    bool cleartext; /* the content crossed the wire unencrypted */
};

struct facts_x509 {
    bool present;
    bool self_signed;
    const char *subject;
    const char *issuer;
    const char **san_dns;
    size_t n_san;
    const char *not_before; /* RFC 3339 */
    const char *not_after;
    const char *sha256; /* fingerprint of the leaf, hex */
    size_t chain_len;
    /* DANE (RFC 6698 §2.1): per certificate of the chain (leaf first, at most
     * FACTS_DANE_CERTS), "CERT256 CERT512 SPKI256 SPKI512" in hex, ";"
     * between certificates; NULL when none parsed. Not in the JSON. */
    const char *dane_digests;
};

/* The client's first TLS record after its Finished (TLS <= 1.2, where the
 * record's content type is in clear): what it did once the handshake was
 * over. NONE: not seen (the session ended first, a gap, TLS 1.3). */
enum facts_tls_after {
    FACTS_TLS_AFTER_NONE = 0,
    FACTS_TLS_AFTER_APPDATA, /* application data (a command: mail or QUIT) */
    FACTS_TLS_AFTER_ALERT,   /* an (encrypted) alert: TLS closed */
};

struct facts_tls {
    bool client_hello;       /* a ClientHello was seen */
    bool server_hello;       /* a ServerHello was seen */
    bool established;        /* handshake went far enough that both sides encrypt */
    bool implicit;           /* TLS from the first byte (port 465) */
    uint16_t version;        /* negotiated, e.g. 0x0304 */
    uint16_t cipher;         /* negotiated suite */
    const char *cipher_name; /* IANA name when known (static), else NULL */
    uint16_t offered_versions[16];
    size_t n_offered_versions;
    const char *sni;
    const char *ja3, *ja3s;            /* hex MD5, NULL when not computed */
    int alert_level, alert_desc;       /* last alert seen, -1 when none */
    enum facts_tls_after client_after; /* TLS <= 1.2 only */
    struct facts_x509 cert;
};
/* "application_data", "alert"; NULL for FACTS_TLS_AFTER_NONE. */
const char *facts_tls_after_str(enum facts_tls_after a);

/* What a session without TLS points to: nothing seen, alerts -1. */
extern const struct facts_tls facts_tls_none;

/* facts.storage: who owns the strings and lists */
enum facts_storage {
    FACTS_HEAP = 0, /* strings and lists each malloc'd (facts_new) */
    FACTS_STRTAB,   /* strings interned in strs, lists malloc'd (the decoder) */
    FACTS_PACKED,   /* one block (facts_copy): freed at once */
};

struct strtab;

struct smtp_facts {
    struct flow_info flow; /* uid, addresses, ports, vlan, start */
    sw_usec last_ts;
    uint64_t last_pkt;
    enum smtp_end end;

    int banner_code; /* 0 when no banner seen */
    const char *banner_host;
    const char *helo_host;
    const char *ehlo_host; /* host named in the first line of the EHLO reply */
    /* the greeting the capabilities belong to: the last HELO/EHLO before
     * the EHLO reply that gave them (helo_host is its argument) */
    char helo_verb[5]; /* "EHLO", "HELO", "" */
    bool starttls_offered;
    bool starttls_requested;
    bool pipelining_offered;
    int ehlo_code;     /* reply code to the (first) EHLO */
    int starttls_code; /* reply code to STARTTLS, 0 when none */
    sw_usec starttls_ts;

    /* the first EHLO reply's capability lines, as sent (without "250-"):
     * n_caps NUL-terminated strings one after the other (facts_cap) */
    const char *caps;
    size_t n_caps;
    uint32_t caps_dropped;

    bool chunking_offered;
    bool auth_cleartext;
    /* SASL lines that may carry a credential, sent in clear after AUTH:
     * an initial response on the AUTH line counts, "=" (empty), "*"
     * (cancel) and a line that reads as an SMTP command do not (saturates
     * at 255). 0 after AUTH: no credential crossed. */
    uint8_t auth_lines;
    const char *auth_mechanism; /* AUTH before TLS (at most 31 bytes). Never credentials. */
    int auth_code;

    uint32_t tx_dropped;
    struct facts_tx *tx;
    size_t n_tx;

    const struct facts_tls *tls; /* &facts_tls_none until TLS is seen (facts_tls_mut) */

    struct facts_anomaly *anomalies; /* a ring of FACTS_ANOM_MAX (facts_add_anomaly) */
    size_t n_anomalies;
    uint32_t anomalies_dropped;
    uint32_t lines_too_long;
    uint64_t bytes_c2s, bytes_s2c;  /* stream bytes per direction (TLS included) */
    sw_usec pkt_last_ts;            /* the last TCP packet's capture time: unlike last_ts,
                                       never a timeout's or close's time */
    uint8_t client_ttl, server_ttl; /* TTL / hop limit of each side's first payload
                                       packet, 0 when none (posture across sessions) */
    bool saw_c2s, saw_s2c;          /* each direction carried payload */

    /* storage (facts.c) */
    uint8_t storage;     /* enum facts_storage */
    struct strtab *strs; /* FACTS_STRTAB */
    size_t mem;          /* heap bytes held outside strs (lists, TLS, HEAP strings) */
};

/* A facts string, "" for NULL. */
static inline const char *facts_s(const char *s)
{
    return s ? s : "";
}

/* Empty facts (tls = &facts_tls_none) whose strings go to strs (interned),
 * or each to the heap when strs is NULL. */
void facts_init(struct smtp_facts *f, struct strtab *strs);
/* Heap facts (facts_init with no strtab); facts_free releases them. */
struct smtp_facts *facts_new(void);
/* Sets *slot (a string field of f or of its lists) to s[0..n) cut at its
 * first NUL and at max-1 bytes (max 0: no cut), replacing the old value;
 * s NULL clears it. False when out of memory (the slot is then NULL). */
bool facts_set(struct smtp_facts *f, const char **slot, const char *s, size_t n, size_t max);
/* Appends a capability line (n bytes, cut at a NUL). False when out of memory. */
bool facts_add_cap(struct smtp_facts *f, const char *s, size_t n);
/* The i-th capability line (i < n_caps). */
const char *facts_cap(const struct smtp_facts *f, size_t i);
/* A new zeroed transaction (accepted -1) at the end of f->tx, NULL when out
 * of memory. Pointers into f->tx are stale after the call. */
struct facts_tx *facts_add_tx(struct smtp_facts *f);
/* A new zeroed recipient at the end of t->rcpt (t one of f->tx). */
struct facts_rcpt *facts_add_rcpt(struct smtp_facts *f, struct facts_tx *t);
/* The recipient domain d (lowercased by the caller) of t: its index in
 * t->domains, added when new; -1 when the list is full (counted in
 * t->domains_dropped) or out of memory. */
int facts_tx_domain(struct smtp_facts *f, struct facts_tx *t, const char *d);
/* A new zeroed anomaly at the end of f->anomalies. The list is a small ring
 * of at most FACTS_ANOM_MAX in the order seen: when it is full, the oldest
 * repeat of a kind (an entry whose kind an older entry has too) leaves, else
 * the oldest, so the newest anomalies and the first of every kind (the
 * detector's evidence) stay; each one that leaves is counted in
 * anomalies_dropped. NULL when out of memory (counted as dropped too). */
struct facts_anomaly *facts_add_anomaly(struct smtp_facts *f);
/* The writable TLS facts, allocated at the first call; NULL when out of memory. */
struct facts_tls *facts_tls_mut(struct smtp_facts *f);
/* Appends a certificate DNS name (at most FACTS_SAN_MAX). */
bool facts_add_san(struct smtp_facts *f, const char *s, size_t n);

/* Deep copy in one block no bigger than its content (FACTS_PACKED); NULL on
 * allocation failure. Safe to hand to another thread. */
struct smtp_facts *facts_copy(const struct smtp_facts *f);
/* Bytes facts_copy(f) allocates. */
size_t facts_copy_size(const struct smtp_facts *f);
/* Frees the facts of facts_new or facts_copy (NULL is a no-op). */
void facts_free(struct smtp_facts *f);
/* Releases the strings and lists of facts that live inside another struct
 * (facts_init); f is empty afterwards. */
void facts_clear(struct smtp_facts *f);

/* True when any transaction sent content in clear (DATA/BDAT). */
bool facts_has_cleartext_data(const struct smtp_facts *f);

/* A capture timestamp as RFC 3339 UTC with microseconds
 * ("2026-11-22T10:00:01.123456Z"); buf of at least 32 bytes. */
void facts_fmt_time(sw_usec ts, char *buf, size_t len);

/* Bytes from the wire as a JSON string: kept as is when valid UTF-8, else
 * every byte outside printable ASCII becomes '?'; NULL is "". The caller
 * owns the result (NULL only when out of memory). */
struct json_t *facts_json_wire_str(const char *s);

/* The session record (event.kind "event", dataset stripwatch.session). The
 * returned object is the base of every alert about this session as well. */
struct json_t;
struct json_t *facts_to_json(const struct smtp_facts *f);

#endif
