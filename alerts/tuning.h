/* SPDX-License-Identifier: Apache-2.0 */
/* tuning.h: what the operator tuned about the rules (alerts/tuning.c): per
 * rule enable/disable, severity override and rate limit, the global rate
 * limit, and allow-lists of servers, clients (addresses or CIDR prefixes,
 * IPv4 and IPv6) and recipient domains. Plain data the detector receives
 * (detector_cfg.tuning, detector_set_tuning) and copies; the caller keeps
 * and frees its own (rules_tuning_free). No file parsing here: the values
 * come already split (one address, one domain, one number at a time). */
#ifndef SW_TUNING_H
#define SW_TUNING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alerts/rules.h"
#include "decode/pkt.h"

#define TUNING_RATE_DEFAULT 10 /* alerts per minute per (rule, server) */
#define TUNING_RATE_MAX     1000000

struct rule_tuning {
    bool disabled;
    int severity;   /* SEV_LOW..SEV_HIGH; 0: the rule's own (alerts/RULES.md) */
    int rate_limit; /* alerts per minute per server; -1: the global rate_limit */
};

/* One allow-listed network: the first len bits of addr. */
struct tuning_net {
    struct sw_addr addr;
    unsigned len;
};

enum tuning_list { TUNING_ALLOW_SERVER = 0, TUNING_ALLOW_CLIENT, TUNING_ALLOW_DOMAIN };

struct rules_tuning {
    unsigned rate_limit; /* global, per (rule, server) per minute; 0: no limit */
    struct rule_tuning rule[RULE_COUNT];
    struct tuning_net *servers, *clients; /* owned arrays */
    size_t n_servers, n_clients;
    char **domains; /* owned, lowercased, without a trailing dot */
    size_t n_domains;
};

/* Defaults: every rule enabled with its own severity, rate_limit 10, empty
 * allow-lists. */
void rules_tuning_init(struct rules_tuning *t);
/* Frees the lists (t itself is the caller's); t is empty afterwards. */
void rules_tuning_free(struct rules_tuning *t);
/* Deep copy into dst (which is overwritten, not freed). False: out of memory
 * (dst is then empty). */
bool rules_tuning_copy(struct rules_tuning *dst, const struct rules_tuning *src);
/* Empties one list. */
void rules_tuning_clear(struct rules_tuning *t, enum tuning_list which);

/* Adds "ADDR" or "ADDR/LEN" (IPv4 or IPv6; host bits past LEN must be 0) to
 * the server or client list, or a domain ("example.com", which also covers
 * its subdomains; a trailing dot is ignored) to the domain list. False with
 * the reason in err (e.g. `"10.0.0.1/33": prefix length not in 0-32`). */
bool rules_tuning_add(struct rules_tuning *t, enum tuning_list which, const char *value, char *err,
                      size_t errlen);

/* Rule by its id ("starttls.unused"); -1 when there is none. */
int rules_tuning_rule_id(const char *id);
/* "low", "medium", "high" -> SEV_*; 0 when none of them. */
int rules_tuning_severity(const char *name);

/* Matches: address in the server (or client) list; domain equal to or under
 * a listed domain (case-insensitive). */
bool rules_tuning_addr_allowed(const struct rules_tuning *t, enum tuning_list which,
                               const struct sw_addr *a);
bool rules_tuning_domain_allowed(const struct rules_tuning *t, const char *domain);
/* The rate for rule r: its own, else the global one (0: no limit). */
unsigned rules_tuning_rate(const struct rules_tuning *t, int r);

#endif
