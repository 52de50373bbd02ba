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
#include <stdint.h>

#include "alerts/sink.h"
#include "decode/facts.h"
#include "policy/policy.h"

struct detector_cfg {
    struct policy_engine *policy; /* borrowed; may be NULL (no policy rules) */
    struct sink *sink;            /* borrowed */
    const char *observer_name;    /* observer.name; default: host name */
    const char *state_file;       /* --state-file: posture loaded at start, saved at end */
    const char *redis_url;        /* posture shared through Redis; NULL for none */
    bool offline;                 /* capture time drives deadlines and ageing */
    int policy_deadline_ms;       /* how long a verdict waits for its policy (default 5000) */
    size_t max_pending;           /* parked verdicts (default 10,000) */
    size_t posture_max;           /* learned servers/clients kept (default 100,000) */
    int64_t posture_max_age;      /* seconds (default 90 days) */
    unsigned rate_per_rule_server; /* alerts per (rule, server) per minute before suppression (default 10) */
};
void detector_cfg_defaults(struct detector_cfg *c);

struct detector_stats {
    uint64_t sessions, alerts, suppressed, pending_peak, pending_dropped, policy_unknown;
    uint64_t by_rule[8];
};

struct detector;
struct detector *detector_new(const struct detector_cfg *cfg, char *err, size_t errlen);
/* Takes ownership of f (a heap copy from facts_copy). */
void detector_session(struct detector *d, struct smtp_facts *f);
/* Drives policy lookups and deadlines for at most timeout_ms. */
void detector_run(struct detector *d, int timeout_ms);
/* End of input: waits (up to the deadline) for parked verdicts, emits them
 * all, saves the state file. */
void detector_finish(struct detector *d);
const struct detector_stats *detector_stats(const struct detector *d);
void detector_free(struct detector *d);

#endif
