/* SPDX-License-Identifier: Apache-2.0 */
/* detector.h: the downgrade detector (alerts/detector.c, rules.c, posture.c).
 * Judges finished SMTP sessions against learned posture and MTA-STS policy
 * and emits alerts (JSON lines) into a sink. Single-threaded: the owner calls
 * detector_session() for each session in a deterministic order (capture
 * order of the session's last packet) and detector_run() to drive policy
 * lookups and deadlines. Alerts leave in session order even when one waits
 * for its policy, so offline runs are deterministic. */
#ifndef SW_DETECTOR_H
#define SW_DETECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alerts/sink.h"
#include "alerts/tuning.h"
#include "decode/facts.h"
#include "policy/policy.h"

#define DETECTOR_MAX_IPS 16

struct detector_cfg {
    struct policy_engine *policy; /* borrowed; may be NULL (no policy rules) */
    struct sink *sink;            /* borrowed */
    const char *observer_name;    /* observer.name; default: host name */
    const char *interface;        /* observer.ingress.interface.name; NULL offline */
    const char *const *ips;       /* observer.ip: the interface's addresses as text (copied,
                                     at most DETECTOR_MAX_IPS kept); n_ips 0 offline */
    size_t n_ips;
    const char *state_file;            /* --state-file: posture loaded at start, saved at end */
    const char *redis_url;             /* posture shared through Redis; NULL for none (the
                                          sensor: live runs, offline with --posture-redis) */
    const char *redis_ca_file;         /* CA bundle for a rediss:// URL; NULL: system store */
    bool offline;                      /* capture time drives deadlines and ageing */
    int policy_deadline_ms;            /* how long a verdict waits for its policy (default 5000) */
    size_t max_pending;                /* parked verdicts (default 10,000) */
    size_t posture_max;                /* learned servers/clients kept (default 100,000) */
    int64_t posture_max_age;           /* seconds (default 90 days) */
    int64_t fallback_window;           /* seconds: a failed TLS attempt explains a plaintext
                                          session this long after it (starttls.fallback;
                                          default 600) */
    unsigned rate_per_rule_server;     /* alerts per (rule, server) per minute before suppression
                                          (default 10); used when tuning is NULL */
    const struct rules_tuning *tuning; /* rules enabled, severities, rate limits, allow-lists
                                          (copied); NULL: defaults, rate_per_rule_server */
    /* Also hands every alert line here (may be NULL; sink may be NULL when
     * this is set), with the alert's rule.id and event.severity as written
     * in it (so that a counter need not parse the line). Tests and
     * embedders use it; called on the owner thread. */
    void (*emit)(void *arg, const char *json, size_t len, const char *rule, int severity);
    void *emit_arg;
    /* Evidence packets (--evidence-dir; may be NULL): called once per judged
     * session on the owner thread, alerted true just before its first alert
     * is built (then a true return with the file name in name puts it into
     * stripwatch.evidence.pcap of each of its alerts), else alerted false
     * once its verdicts are done (name NULL, the return ignored). */
    bool (*evidence)(void *arg, const struct smtp_facts *f, bool alerted, char *name,
                     size_t namelen);
    void *evidence_arg;
    /* TLS-RPT reports (--tlsrpt-out; borrowed, may be NULL): every judged
     * session is counted there with its policy answers (a TLS session also
     * looks up the policies of its MX host's parent domains, tlsrpt.h);
     * live runs tick it with the wall clock from detector_run(). */
    struct tlsrpt *tlsrpt;
};
void detector_cfg_defaults(struct detector_cfg *c);

/* pending_dropped: verdicts pushed out of a full queue before their policy
 * answered (emitted with status "unknown", not lost). by_rule: indexed by
 * enum rule_id (alerts/rules.h). */
struct detector_stats {
    uint64_t sessions, alerts, suppressed, pending_peak, pending_dropped, policy_unknown;
    /* verdicts not alerted, by the first reason that applied, in this order:
     * the rule is disabled, the server or the client is allow-listed, every
     * recipient domain is allow-listed; then `suppressed`: the rate limit */
    uint64_t suppressed_disabled, suppressed_allow_server, suppressed_allow_client,
        suppressed_allow_domain;
    uint64_t by_rule[RULE_COUNT];
    uint64_t lookups_in_flight; /* policy callbacks still owed to the detector */
    /* learned posture: entries held, pushed out by posture_max, aged out by
     * posture_max_age, Redis reads/writes that failed (posture.h) */
    uint64_t posture_entries, posture_evicted, posture_expired, posture_redis_errors;
    uint64_t policy_domains_dropped;  /* recipient domains not consulted: past the decoder's
                                         bound (1,024 more per transaction) or out of memory */
    uint64_t policy_lookups_deferred; /* lookups that waited for their session's turn (at most
                                         16 in flight per session), then were made */
};

struct detector;
/* NULL with a message in err when the state file cannot be read or does not
 * parse (the sensor refuses to start rather than forget what it learned), or
 * the Redis URL is bad. A missing state file is an empty state. */
struct detector *detector_new(const struct detector_cfg *cfg, char *err, size_t errlen);
/* Takes ownership of f (a heap copy from facts_copy). */
void detector_session(struct detector *d, struct smtp_facts *f);
/* detector_session, with the session record just written: same[0..same_len)
 * its members from "source" to "tls" (session_json_write_at), valid during
 * the call. An alert emitted before the call returns copies them. */
void detector_session_rendered(struct detector *d, struct smtp_facts *f, const char *same,
                               size_t same_len);
/* Drives policy lookups and deadlines for at most timeout_ms. */
void detector_run(struct detector *d, int timeout_ms);
/* End of input: waits (up to the deadline) for parked verdicts, emits them
 * all, saves the state file (an error is printed to stderr). Deadlines are
 * measured on the monotonic wall clock in live and offline runs alike (capture
 * time runs far faster than a lookup offline). */
void detector_finish(struct detector *d);
/* Replaces the tuning (a copy of t is kept) from the next verdict on; call
 * it on the owner thread, between sessions. Rate-limit buckets are kept
 * (a lowered rate caps them at once). False: out of memory, the old tuning
 * stays. */
bool detector_set_tuning(struct detector *d, const struct rules_tuning *t);
const struct detector_stats *detector_stats(const struct detector *d);
struct tlsrpt_stats;
/* Copies of the detector's counters, its policy engine's and its TLS-RPT
 * reports' (zeroed when it has none); each pointer may be NULL. On the
 * owner thread, or once no thread drives the detector any more. */
void detector_stats_all(const struct detector *d, struct detector_stats *ds,
                        struct policy_stats *ps, struct tlsrpt_stats *ts);
void detector_free(struct detector *d);

#endif
