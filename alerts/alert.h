/* SPDX-License-Identifier: Apache-2.0 */
/* alert.h: the alert JSON (alerts/alert.c): the session record
 * (alerts/session_json.h) plus the judgment: event.kind "alert", rule.*,
 * severity, mta_sts.*, dane.*, observer.*,
 * stripwatch.confidence/evidence/suppressed.
 * One compact JSON object, no trailing newline, written straight into a
 * struct jsonw (no jansson tree). */
#ifndef SW_ALERT_H
#define SW_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alerts/jsonw.h"
#include "alerts/rules.h"
#include "decode/facts.h"

struct alert_ctx {
    const char *observer_name;
    const char *hostname;         /* observer.hostname; NULL or "": left out */
    const char *interface;        /* observer.ingress.interface.name; NULL: left out */
    uint64_t suppressed;          /* alerts of this (rule, server) suppressed before this one */
    const char *evidence_pcap;    /* --evidence-dir: file name of the session's packets, or NULL */
    const struct rule_dane *dane; /* the session's DANE answer, or NULL */
    const char *const *ips;       /* observer.ip: n_ips addresses as text; left out when 0 */
    size_t n_ips;
    /* the session's members from "source" to "tls" as its record wrote them
     * (session_json_ext.same), or NULL */
    const char *same;
    size_t same_len;
};

/* Writes the dane object {host, records, status[, detail]} when the
 * session's server has DNSSEC-secure TLSA records or a bogus answer
 * (alerts/alert_dane.c); nothing otherwise. */
void alert_write_dane(struct jsonw *w, const struct rule_dane *dn);

/* Appends the alert to w (reset it first for one alert per buffer); false
 * when out of memory. pols (NULL: none looked up): the session's policy
 * domains as rules_policy_domains() gave them, in its order, n_pols of them
 * (the alert counts them as its recipient domains). */
bool alert_write(struct jsonw *w, const struct smtp_facts *f, const struct verdict *v,
                 const struct rule_policy *pols, size_t n_pols, const struct alert_ctx *ctx);
/* The same as a malloc'd string the caller frees; NULL on allocation
 * failure; *len gets the length. */
char *alert_build(const struct smtp_facts *f, const struct verdict *v,
                  const struct rule_policy *pols, size_t n_pols, const struct alert_ctx *ctx,
                  size_t *len);

#endif
