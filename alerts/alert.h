/* SPDX-License-Identifier: Apache-2.0 */
/* alert.h: the alert JSON (alerts/alert.c): the session record
 * (alerts/session_json.h) plus the judgment: event.kind "alert", rule.*,
 * severity, mta_sts.*, observer.*, stripwatch.confidence/evidence/suppressed.
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
    const char *hostname;  /* observer.hostname; NULL or "": left out */
    const char *interface; /* observer.ingress.interface.name; NULL: left out */
    uint64_t suppressed;   /* alerts of this (rule, server) suppressed before this one */
};

/* Appends the alert to w (reset it first for one alert per buffer); false
 * when out of memory. */
bool alert_write(struct jsonw *w, const struct smtp_facts *f, const struct verdict *v,
                 const struct rule_policy *pols, size_t n_pols, const struct alert_ctx *ctx);
/* The same as a malloc'd string the caller frees; NULL on allocation
 * failure; *len gets the length. */
char *alert_build(const struct smtp_facts *f, const struct verdict *v,
                  const struct rule_policy *pols, size_t n_pols, const struct alert_ctx *ctx,
                  size_t *len);

#endif
