/* SPDX-License-Identifier: Apache-2.0 */
/* alert.h: the alert JSON (alerts/alert.c): the session record
 * (facts_to_json) plus the judgment: event.kind "alert", rule.*, severity,
 * mta_sts.*, dane.*, observer.*, stripwatch.confidence/evidence/suppressed. One
 * compact JSON object, no trailing newline; the caller frees it. */
#ifndef SW_ALERT_H
#define SW_ALERT_H

#include <stddef.h>
#include <stdint.h>

#include "alerts/rules.h"
#include "decode/facts.h"

struct alert_ctx {
    const char *observer_name;
    uint64_t suppressed;          /* alerts of this (rule, server) suppressed before this one */
    const char *evidence_pcap;    /* --evidence-dir: file name of the session's packets, or NULL */
    const struct rule_dane *dane; /* the session's DANE answer, or NULL */
};

/* Adds the dane object {host, records, status[, detail]} to alert when the
 * session's server has DNSSEC-secure TLSA records or a bogus answer
 * (alerts/alert_dane.c); nothing otherwise. */
struct json_t;
void alert_add_dane(struct json_t *alert, const struct rule_dane *dn);

/* NULL on allocation failure; *len gets the length. */
char *alert_build(const struct smtp_facts *f, const struct verdict *v,
                  const struct rule_policy *pols, size_t n_pols, const struct alert_ctx *ctx,
                  size_t *len);

#endif
