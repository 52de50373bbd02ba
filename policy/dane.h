/* SPDX-License-Identifier: Apache-2.0 */
/* dane.h: DANE for SMTP (RFC 7672): what TLSA records does an MX host
 * publish at _25._tcp.<host>, and are they DNSSEC-secure? Lookups go through
 * a validating libunbound context with its own trust anchor (policy/dane.c);
 * answers are cached in memory (bounded LRU, negative answers too), shared
 * through Redis (stripwatch:dane:<host>) and kept in a snapshot file
 * (--dane-file / --save-dane, policy/dane_file.c). Only a secure answer
 * makes TLS mandatory; a bogus one is reported on the log and never judged
 * with. Single-threaded like the MTA-STS engine, which owns one and drives
 * it from policy_engine_run(); callbacks fire from there. Pointers in a
 * dane_answer are borrowed for the duration of the call or callback. */
#ifndef SW_POLICY_DANE_H
#define SW_POLICY_DANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DANE_MAX_RECORDS 16   /* TLSA records kept per host; more are counted, not kept */
#define DANE_MAX_DATA    2048 /* longest certificate association data kept */
#define DANE_DEFAULT_TA  "/usr/share/dns/root.key"

enum dane_status {
    DANE_ST_SECURE = 0, /* DNSSEC-secure TLSA records: TLS is mandatory (entry->n >= 1) */
    DANE_ST_NONE,       /* secure proof that the host publishes no TLSA record */
    DANE_ST_INSECURE,   /* the answer is not signed: DANE does not apply (RFC 7672 §2.2) */
    DANE_ST_BOGUS,      /* validation failed: reported, judged as if no DANE */
    DANE_ST_UNKNOWN,    /* could not be determined (offline without data, failure, timeout) */
};
/* "secure", "none", "insecure", "bogus", "unknown" */
const char *dane_status_str(enum dane_status s);
/* The inverse; false for any other string. */
bool dane_status_parse(const char *s, enum dane_status *out);

enum dane_source {
    DANE_SRC_DNS = 0, /* looked up by this process */
    DANE_SRC_REDIS,   /* looked up by a sensor sharing the Redis cache */
    DANE_SRC_FILE,    /* --dane-file snapshot */
};
const char *dane_source_str(enum dane_source s); /* "dns", "redis", "file" */

/* One TLSA record (RFC 6698 §2.1). */
struct dane_tlsa {
    uint8_t usage, selector, mtype;
    uint16_t len;
    unsigned char *data;
};

/* What is known of one host. Immutable once published. */
struct dane_entry {
    char *host; /* lowercase, no trailing dot */
    enum dane_status status;
    size_t n;             /* records kept (secure, insecure or bogus answers) */
    struct dane_tlsa *rr; /* n records */
    char *why;            /* bogus: libunbound's why_bogus; unknown: the failure; or NULL */
    int64_t fetched_at;   /* Unix seconds */
    int64_t ttl;          /* seconds the answer holds (live runs) */
    enum dane_source source;
};

struct dane_answer {
    enum dane_status status;
    const struct dane_entry *entry; /* NULL only for UNKNOWN without an entry */
    const char *detail;             /* why UNKNOWN/BOGUS, or NULL */
};

/* "3 1 1 0a1b..." (RFC 6698 §2.2 presentation form, hex lowercase) into
 * buf; returns buf (cut at len, always NUL-terminated). */
char *dane_tlsa_format(const struct dane_tlsa *t, char *buf, size_t len);
/* The inverse: "U S M HEX" with U, S, M 0-255 and an even number of hex
 * digits (1 to DANE_MAX_DATA bytes). t->data is allocated (free() it).
 * false with a reason in why. */
bool dane_tlsa_parse(const char *s, struct dane_tlsa *t, char *why, size_t whylen);
/* Parses one TLSA rdata (wire form); false when shorter than 4 bytes or the
 * data is past DANE_MAX_DATA. t->data allocated. */
bool dane_tlsa_from_rdata(const unsigned char *rd, size_t len, struct dane_tlsa *t);

/* Usable for SMTP (RFC 7672 §3.1): usage DANE-TA(2) or DANE-EE(3),
 * selector Cert(0) or SPKI(1), matching Full(0), SHA2-256(1) or SHA2-512(2)
 * with the digest's length. */
bool dane_tlsa_is_usable(const struct dane_tlsa *t);

struct dane_entry *dane_entry_new(const char *host, enum dane_status st, const struct dane_tlsa *rr,
                                  size_t n, const char *why, int64_t fetched_at, int64_t ttl,
                                  enum dane_source src);
void dane_entry_free(struct dane_entry *e);

typedef void (*dane_cb)(void *arg, const char *host, const struct dane_answer *a);

struct dane_cfg {
    bool fetch;               /* may query DNS (live runs; offline with --fetch-policies) */
    const char *dns_server;   /* "ADDR[@PORT]" to forward to; NULL: /etc/resolv.conf */
    const char *trust_anchor; /* DNSSEC trust anchor file (zone-file DS/DNSKEY lines);
                                 NULL: DANE_DEFAULT_TA */
    const char *redis_url;    /* shared cache; NULL for none */
    const char *dane_file;    /* snapshot to load at start; NULL for none */
    size_t cache_max;         /* hosts kept in memory (default 100,000) */
    size_t max_pending;       /* queries under way (default 1,000); past it UNKNOWN at once */
    long timeout_ms;          /* per query (default 4000) */
    int64_t negative_ttl;     /* none/insecure answers kept at least (300 s) */
    int64_t failure_ttl;      /* unknown/bogus answers kept (300 s) */
};
void dane_cfg_defaults(struct dane_cfg *c);

struct dane_stats {
    uint64_t lookups, hits, misses, queries, secure, none, insecure, bogus, failures, timeouts;
    uint64_t dropped, evicted, file_loaded, file_rejected, redis_hits, redis_errors;
};

struct dane;
/* NULL with a message in err: the trust anchor cannot be read or parsed,
 * the snapshot file cannot be read, the resolver cannot be set up. */
struct dane *dane_new(const struct dane_cfg *cfg, char *err, size_t errlen);
void dane_free(struct dane *d); /* cancels what is in flight (no callbacks) */
/* The MTA-STS engine's DANE lookups: fetch, resolver, Redis, bounds and
 * TTLs of its cfg (defaults applied), trust anchor and snapshot file of
 * orig (the caller's cfg). */
struct policy_cfg;
struct dane *dane_new_for_policy(const struct policy_cfg *cfg, const struct policy_cfg *orig,
                                 char *err, size_t errlen);

/* Answers now (SW_OK, *a filled) or starts/joins a query (SW_AGAIN; cb is
 * then called exactly once from dane_process()). host is lowercased and
 * trailing-dot-stripped; an invalid name is answered UNKNOWN. Offline
 * without fetching, a host missing from the snapshot is UNKNOWN ("no DANE
 * data"). cb NULL: a prefetch. */
int dane_lookup(struct dane *d, const char *host, dane_cb cb, void *arg, struct dane_answer *a);
/* The resolver's descriptor to wait on, or -1 when nothing is in flight. */
int dane_fd(const struct dane *d);
/* Reads answers, applies deadlines, fires callbacks; returns how many fired. */
int dane_process(struct dane *d);
size_t dane_in_flight(const struct dane *d);
/* Loads a snapshot over what is held (entries replace those of their hosts). */
int dane_load_file(struct dane *d, const char *path, char *err, size_t errlen);
/* Writes what is known (every status but unknown) to path, atomically. */
int dane_save(struct dane *d, const char *path, char *err, size_t errlen);
const struct dane_stats *dane_stats(const struct dane *d);

/* The snapshot file (policy/dane_file.c): a JSON object keyed by host,
 *   {"mx.example.org": {"status": "secure", "records": ["3 1 1 0a1b..."],
 *                       "fetched_at": "2026-11-20T08:00:00Z", "ttl": 3600}}
 * status is secure, none, insecure or bogus ("why" may say why); records
 * is required for secure (at least one). Loading reports each bad entry
 * through on_error and skips it; SW_EIO/SW_EPROTO for a file that cannot be
 * read or is not an object. Entries handed to on_entry are the callee's. */
typedef void (*dane_file_entry_cb)(void *arg, struct dane_entry *e);
typedef void (*dane_file_error_cb)(void *arg, const char *line);
int dane_file_load(const char *path, dane_file_entry_cb on_entry, dane_file_error_cb on_error,
                   void *arg, size_t *loaded, size_t *rejected, char *err, size_t errlen);
/* One entry's JSON value (the object above) as a compact string (caller
 * frees), and back (NULL with a reason in why); shared with Redis. */
char *dane_entry_to_json(const struct dane_entry *e);
struct dane_entry *dane_entry_from_json(const char *host, const char *json, size_t len,
                                        enum dane_source src, char *why, size_t whylen);
/* Writes entries sorted by host, 2-space indented, atomically. */
int dane_file_save(const char *path, const struct dane_entry *const *entries, size_t n, char *err,
                   size_t errlen);

#endif
