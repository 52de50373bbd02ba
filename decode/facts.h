/* SPDX-License-Identifier: Apache-2.0 */
/* facts.h: what one SMTP conversation showed on the wire (decode/facts.c).
 *
 * The SMTP decoder fills a struct smtp_facts as the conversation goes; the
 * detector reads it. Facts handed to another thread are deep copies made with
 * facts_copy(); facts_free() releases one (NULL is a no-op). facts_to_json()
 * renders the session record of shared DESIGN.md (ECS names; the caller owns
 * the returned json_t). Every list is bounded; what did not fit is counted in
 * the matching *_dropped field. */
#ifndef SW_FACTS_H
#define SW_FACTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode/flow.h"

#define FACTS_HOST_MAX 256 /* host names, domains (RFC 5321 limit is 255) */
#define FACTS_ADDR_MAX 256 /* a full mail address (only with --log-addresses) */
#define FACTS_CAPS_MAX 64  /* EHLO capability lines kept */
#define FACTS_TX_MAX   32  /* mail transactions kept per session */
#define FACTS_RCPT_MAX 128 /* recipients kept per transaction */
#define FACTS_ANOM_MAX 32  /* anomalies kept per session */
#define FACTS_SAN_MAX  32  /* certificate DNS names kept */

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
    ANOM_KIND_COUNT,
};
const char *anomaly_kind_str(enum anomaly_kind k);

struct facts_anomaly {
    enum anomaly_kind kind;
    enum stream_dir dir;
    sw_usec ts;
    uint64_t pkt_no;
    char detail[128]; /* e.g. "token=XXXXXXXA", "ttl 64->59" */
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

struct facts_rcpt {
    char domain[FACTS_HOST_MAX];
    char *address; /* full address, only with --log-addresses, else NULL */
    int code;      /* reply code, 0 when no reply seen */
};

struct facts_tx {
    char mail_from_domain[FACTS_HOST_MAX]; /* "" for the null sender <> */
    char *mail_from;                       /* only with --log-addresses */
    int mail_code;
    uint64_t size_param; /* MAIL FROM SIZE=, 0 when absent */
    char body_param[16]; /* 7BIT / 8BITMIME / BINARYMIME */
    struct facts_rcpt *rcpt;
    size_t n_rcpt;
    uint32_t rcpt_dropped;
    /* content */
    bool data_sent;      /* DATA accepted with 354, or BDAT chunks sent */
    bool bdat;           /* content went by BDAT (CHUNKING) */
    bool cleartext;      /* the content crossed the wire unencrypted */
    uint64_t data_bytes; /* content bytes seen in clear */
    int data_code;       /* final reply to the content, 0 when not seen */
    int accepted;        /* -1 unknown, 0 refused, 1 accepted (2xx) */
    sw_usec ts;          /* MAIL FROM time */
    uint64_t pkt_no;     /* packet carrying MAIL FROM */
};

struct facts_x509 {
    bool present;
    char subject[256];
    char issuer[256];
    char *san_dns[FACTS_SAN_MAX];
    size_t n_san;
    char not_before[32]; /* RFC 3339 */
    char not_after[32];
    char sha256[65]; /* fingerprint of the leaf, hex */
    bool self_signed;
    size_t chain_len;
};

struct facts_tls {
    bool client_hello;    /* a ClientHello was seen */
    bool server_hello;    /* a ServerHello was seen */
    bool established;     /* handshake went far enough that both sides encrypt */
    bool implicit;        /* TLS from the first byte (port 465) */
    uint16_t version;     /* negotiated, e.g. 0x0304 */
    uint16_t cipher;      /* negotiated suite */
    char cipher_name[64]; /* IANA name when known */
    uint16_t offered_versions[16];
    size_t n_offered_versions;
    char sni[FACTS_HOST_MAX];
    char ja3[33], ja3s[33];      /* hex MD5, "" when not computed */
    int alert_level, alert_desc; /* last alert seen, -1 when none */
    struct facts_x509 cert;
};

struct smtp_facts {
    struct flow_info flow; /* uid, addresses, ports, vlan, start */
    sw_usec last_ts;
    uint64_t last_pkt;
    enum smtp_end end;

    int banner_code; /* 0 when no banner seen */
    char banner_host[FACTS_HOST_MAX];
    char helo_verb[5]; /* "EHLO", "HELO", "" */
    char helo_host[FACTS_HOST_MAX];
    int ehlo_code;                  /* reply code to the (first) EHLO */
    char ehlo_host[FACTS_HOST_MAX]; /* host named in the first line of the EHLO reply */

    /* the first EHLO reply's capability lines, as sent (without "250-") */
    char *caps[FACTS_CAPS_MAX];
    size_t n_caps;
    uint32_t caps_dropped;

    bool starttls_offered;
    bool starttls_requested;
    int starttls_code; /* reply code to STARTTLS, 0 when none */
    bool pipelining_offered, chunking_offered;
    sw_usec starttls_ts;

    char auth_mechanism[32]; /* AUTH before TLS; "" when none. Never credentials. */
    bool auth_cleartext;
    int auth_code;

    struct facts_tx *tx;
    size_t n_tx;
    uint32_t tx_dropped;

    struct facts_tls tls;

    struct facts_anomaly anomalies[FACTS_ANOM_MAX];
    size_t n_anomalies;
    uint32_t anomalies_dropped;
    uint32_t lines_too_long;
    uint64_t bytes_c2s, bytes_s2c;  /* application bytes seen per direction */
    uint8_t client_ttl, server_ttl; /* TTL / hop limit of each side's first payload
                                       packet, 0 when none (posture across sessions) */
    bool saw_c2s, saw_s2c;          /* each direction carried payload */
};

/* Deep copy; NULL on allocation failure. */
struct smtp_facts *facts_copy(const struct smtp_facts *f);
/* Frees what facts_init filled and the struct itself (heap facts). */
void facts_free(struct smtp_facts *f);
/* Releases the lists inside a facts struct that lives inside another struct. */
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
