/* SPDX-License-Identifier: Apache-2.0 */
/* policy.h: the MTA-STS policy engine (RFC 8461): for a recipient domain,
 * what does it publish? Discovery (DNS TXT via libunbound), fetch (HTTPS via
 * libcurl multi), strict parsing (mtasts.h), cache (memory LRU, Redis,
 * snapshot file: policy/policy_file.c), refresh. Single-threaded: the owner thread calls
 * policy_lookup() and drives I/O with policy_engine_run(); callbacks fire
 * from inside policy_engine_run(). A lookup never blocks. Pointers inside a
 * policy_answer are borrowed for the duration of the call or callback. */
#ifndef SW_POLICY_H
#define SW_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode/sw.h"
#include "policy/mtasts.h"

enum policy_source {
    POLICY_SRC_NONE = 0,
    POLICY_SRC_HTTPS, /* fetched by this process */
    POLICY_SRC_REDIS, /* fetched by a sensor sharing the Redis cache */
    POLICY_SRC_FILE,  /* --policy-file snapshot */
    POLICY_SRC_CACHE, /* memory cache of an earlier answer */
};
const char *policy_source_str(enum policy_source s); /* "https", "redis", "file", "cache" */

enum policy_status {
    POLICY_ST_VALID = 0, /* a valid policy is in force: entry is set */
    POLICY_ST_NONE,      /* the domain publishes no policy (or it is invalid) */
    POLICY_ST_PENDING,   /* a lookup is under way (only in callbacks: never) */
    POLICY_ST_UNKNOWN,   /* could not be determined (offline without data, failure, deadline) */
    POLICY_ST_EXPIRED,   /* the policy known has expired and no refresh has succeeded (yet):
                            entry is set and still judged with (RFC 8461 §5.1) */
};
/* "valid", "none", "pending", "unknown", "expired" */
const char *policy_status_str(enum policy_status s);

/* A policy in force for one domain. Immutable once published. */
struct policy_entry {
    char *domain; /* lowercase, NUL-terminated (sized to fit) */
    char id[33];  /* TXT id it was fetched for */
    char *text;   /* the policy exactly as served, NUL-terminated */
    struct mtasts_policy policy;
    int64_t fetched_at; /* Unix seconds, wall clock of the fetch */
    int64_t expires_at; /* fetched_at + max_age (judged at capture time offline) */
    enum policy_source source;
};

struct policy_answer {
    enum policy_status status;
    const struct policy_entry *entry; /* when status is VALID or EXPIRED */
    const char *detail;               /* why NONE/UNKNOWN/EXPIRED, e.g. "no TXT record" */
};

typedef void (*policy_cb)(void *arg, const char *domain, const struct policy_answer *a);

struct policy_cfg {
    bool fetch;                  /* may use the network (default: live runs yes, offline no) */
    const char *dns_server;      /* "ADDR[@PORT]"; NULL: /etc/resolv.conf */
    const char *ca_file;         /* NULL: system store */
    bool allow_private_hosts;    /* --allow-private-policy-hosts */
    const char *redis_url;       /* shared cache; NULL for none */
    const char *policy_file;     /* --policy-file to load at start */
    size_t cache_max;            /* valid policies kept in memory (default 100,000); loaded
                                    or fetched policies are pushed out only by each other */
    size_t neg_cache_max;        /* "no policy"/failed answers kept (default 100,000) */
    size_t max_pending;          /* lookups under way (default 10,000); past it a new lookup
                                    is answered UNKNOWN at once (lookups_dropped) */
    unsigned dns_max_in_flight;  /* TXT queries sent and not answered (default 256); more
                                    wait in a queue bounded by max_pending */
    unsigned dns_dead_after;     /* consecutive DNS timeouts that mark the resolver down (8) */
    int64_t dns_backoff_min_s;   /* first down period (5 s), doubled per failed retry... */
    int64_t dns_backoff_max_s;   /* ...up to this (300 s) */
    unsigned max_concurrent;     /* fetches in flight (default 32) */
    unsigned max_per_second;     /* fetches started per second (default 20) */
    int64_t negative_ttl;        /* seconds to remember "no policy" (default 300) */
    int64_t retry_after_failure; /* seconds before retrying a failed (domain, id) (default 300) */
    long connect_timeout_ms, total_timeout_ms;
    uint16_t https_port; /* 443; tests use another */
    /* added by the engine (policynet): */
    int64_t refresh_interval; /* seconds between TXT re-checks of a cached policy (3600) */
    long dns_timeout_ms;      /* per DNS query (4000: below the detector's 5 s verdict
                                 deadline, so a silent resolver is a counted error) */
    long lock_wait_ms;        /* wait for another sensor's fetch via Redis (10000) */
    size_t max_queued;        /* fetches waiting for a slot (4096); past it: throttled */
    /* DANE (policy/dane.h), looked up beside the policies when dane is set:
     * through the same resolver, validated against trust_anchor (NULL: the
     * root anchor of dns-root-data), with fetch, redis_url and the memory
     * bounds of the engine; dane_file is the DANE snapshot to load. */
    bool dane;
    const char *trust_anchor;
    const char *dane_file;
};
void policy_cfg_defaults(struct policy_cfg *c);

struct policy_stats {
    uint64_t lookups, hits_memory, hits_redis, hits_file, misses;
    uint64_t dns_queries, dns_no_record, dns_invalid, dns_errors;
    uint64_t fetches, fetch_ok, fetch_http_error, fetch_tls_error, fetch_timeout, fetch_redirect,
        fetch_bad_type, fetch_too_big, fetch_private_addr, fetch_parse_error, fetch_throttled;
    uint64_t refreshes, negative_cached, evicted;
    /* added by the engine (policynet). hits_*: lookups answered at once, by
     * where the policy in force came from (an HTTPS fetch of this process
     * counts as memory); answers through a callback count as misses. */
    uint64_t file_loaded, file_rejected; /* --policy-file entries */
    /* policies of the file dropped by a reload (policy_engine_reload_file) */
    uint64_t file_dropped;
    uint64_t redis_errors, lock_waits; /* Redis unavailable; waited for another sensor */
    uint64_t dns_timeouts, cache_full; /* DNS step deadline; no evictable slot */
    /* answers given with an expired policy (status EXPIRED); domains whose
     * expired policy was reported on the log (once per domain and expiry) */
    uint64_t expired, expired_domains;
    /* bounds (added by blind): lookups answered UNKNOWN at once because
     * max_pending lookups were under way; lookups answered UNKNOWN without a
     * query while the resolver was down; times the resolver was found down
     * (dns_dead_after timeouts in a row); 1 while it is down; negative
     * answers pushed out by neg_cache_max; DNS queries waiting for a slot
     * (now) and the most that ever waited */
    uint64_t lookups_dropped, dns_skipped, dns_resolver_down, dns_down;
    uint64_t neg_evicted, dns_queued, dns_queued_peak;
};

struct policy_engine;
/* NULL on failure with a message in err (e.g. the policy file cannot be read). */
struct policy_engine *policy_engine_new(const struct policy_cfg *cfg, char *err, size_t errlen);
/* Cancels what is in flight (no callbacks) and never waits for the
 * resolver's thread (dns.h). */
void policy_engine_free(struct policy_engine *e);

/* Where expiry is judged: capture time t (Unix seconds) when capture is
 * true (offline analysis: the policy in force when the session took place),
 * else the wall clock (the default). Refresh scheduling always runs on the
 * wall clock. The detector sets it before each offline session's lookups. */
void policy_engine_set_time(struct policy_engine *e, bool capture, int64_t t);

/* Where the engine's warnings go: one line each, without the "stripwatch: "
 * prefix, prio a syslog(3) priority (LOG_WARNING...). NULL (the default)
 * prints "stripwatch: LINE" on stderr. Set before engines run; fn is called
 * on the engine's owner thread. */
typedef void (*policy_log_fn)(int prio, const char *line);
void policy_set_log(policy_log_fn fn);

/* Answers now (returns SW_OK and fills *a) or starts/joins a lookup and
 * returns SW_AGAIN; cb(arg, ...) is then called exactly once from
 * policy_engine_run(). domain is lowercased and trailing-dot-stripped.
 * A valid cached policy is answered at once even while its refresh runs
 * (TXT re-check every refresh_interval, refetch on a new id or when a
 * quarter of max_age is left); a failed refresh keeps it in force until it
 * expires. An expired policy is answered at once as EXPIRED (entry set)
 * while its refresh runs (live) or cannot run (offline without fetching),
 * until a refresh succeeds or the domain is found to publish none; when it
 * cannot be refreshed, one warning per domain goes to the log (see
 * policy_set_log). "No policy" and failures are answered at once for negative_ttl /
 * retry_after_failure. With cb NULL a lookup is started and nobody is told
 * (a prefetch). */
int policy_lookup(struct policy_engine *e, const char *domain, policy_cb cb, void *arg,
                  struct policy_answer *a);
/* Drives DNS, HTTPS and Redis I/O for at most timeout_ms; returns the number
 * of callbacks fired (it returns early once some fired). DNS and HTTPS are
 * asynchronous; Redis commands are synchronous, each bounded by 500 ms (1 s
 * to connect), with a 5 s back-off after a failure. */
int policy_engine_run(struct policy_engine *e, int timeout_ms);
/* Loads a snapshot file (same format as --policy-file) over what the engine
 * holds, as at start (SIGHUP reads --policy-file again): its entries replace
 * the policies kept for their domains, other domains keep theirs. SW_OK, or
 * an error with one line in err; a file that cannot be read or is not a
 * JSON object changes nothing (a bad entry is skipped with a line on
 * stderr, as at start). Owner thread. */
int policy_engine_load_file(struct policy_engine *e, const char *path, char *err, size_t errlen);
/* SIGHUP's load: policy_engine_load_file(), then every policy that came from
 * a policy file and whose domain got no entry from this one (it is gone, or
 * its entry was rejected) is dropped, and *dropped says how many (counted in
 * file_dropped): the domain is then answered as if never loaded (looked up
 * when fetching, from Redis when shared, else "unknown"). Policies fetched
 * or read from Redis are kept. When the file does not load, nothing is
 * dropped (*dropped is 0): a file that cannot be read or is not a JSON
 * object changes nothing at all. Owner thread, not from a callback. */
int policy_engine_reload_file(struct policy_engine *e, const char *path, size_t *dropped, char *err,
                              size_t errlen);
/* Writes the snapshot file (same format as --policy-file). */
int policy_engine_save(struct policy_engine *e, const char *path, char *err, size_t errlen);
const struct policy_stats *policy_engine_stats(const struct policy_engine *e);

/* The engine's DANE lookups (dane.h), or NULL when cfg.dane was not set.
 * Its callbacks fire from policy_engine_run() like the policies'. */
struct dane;
struct dane *policy_engine_dane(struct policy_engine *e);

/* `stripwatch policy DOMAIN ...`: the operator's check command. Returns the
 * process exit code (0: valid policy published, 1: not). */
int policy_cli_main(int argc, char **argv);

#endif
