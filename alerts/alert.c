/* SPDX-License-Identifier: Apache-2.0 */
/* alert.c: the alert JSON: the session record plus the judgment, in Elastic
 * Common Schema names where one exists (event.*, rule.*, observer.*), written
 * with the direct writer (alerts/jsonw.h), one function per object.
 * Follows RFC 8259 (JSON), RFC 3339 (times), RFC 8461 (mta_sts fields). */
#include "alerts/alert.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/session_json.h"

#ifndef SW_VERSION
#define SW_VERSION "0.0.0"
#endif

/* What the hooks below read. */
struct alert_doc {
    const struct smtp_facts *f;
    const struct verdict *v;
    const struct rule_policy *pols;
    size_t n_pols;
    const struct alert_ctx *ctx;
};

static const char *event_type(enum rule_id r)
{
    switch (r) {
    case RULE_STARTTLS_STRIPPED:
    case RULE_STARTTLS_TAMPERED:
        return "indicator";
    case RULE_AUTH_CLEARTEXT:
    case RULE_DELIVERY_PLAINTEXT_POLICY:
    case RULE_POLICY_MX_MISMATCH:
    case RULE_POLICY_CERTIFICATE_INVALID:
        return "denied"; /* a policy that should have refused it */
    default:
        return "info";
    }
}

/* event.*: after the record's kind and dataset */
static void alert_event(struct jsonw *w, const void *arg)
{
    const struct alert_doc *a = arg;
    jsonw_arr_open(w, "category");
    jsonw_str(w, NULL, "network");
    jsonw_str(w, NULL, "intrusion_detection");
    jsonw_arr_close(w);
    jsonw_arr_open(w, "type");
    jsonw_str(w, NULL, event_type(a->v->rule));
    jsonw_arr_close(w);
    jsonw_int(w, "severity", a->v->severity);
    jsonw_str(w, "action", a->v->action);
    jsonw_str(w, "module", "stripwatch");
    char ts[40];
    facts_fmt_time(a->f->flow.start, ts, sizeof ts);
    jsonw_str(w, "start", ts);
}

/* stripwatch.*: after the record's uid, end, anomalies, ttl */
static void alert_stripwatch(struct jsonw *w, const void *arg)
{
    const struct alert_doc *a = arg;
    jsonw_str(w, "severity_name", rule_severity_name(a->v->severity));
    jsonw_str(w, "confidence", rule_confidence_str(a->v->confidence));
    if (a->v->evidence) {
        jsonw_json(w, "evidence", a->v->evidence);
    } else {
        jsonw_obj_open(w, "evidence");
        jsonw_obj_close(w);
    }
    jsonw_int(w, "suppressed", a->ctx ? (int64_t)a->ctx->suppressed : 0);
    jsonw_str(w, "version", SW_VERSION);
}

static void alert_rule(struct jsonw *w, const struct alert_doc *a)
{
    const struct rule_desc *rd = rule_desc(a->v->rule);
    jsonw_obj_open(w, "rule");
    jsonw_str(w, "id", rd->id);
    jsonw_str(w, "name", rd->name);
    jsonw_str(w, "description", rd->description);
    jsonw_str(w, "ruleset", "stripwatch");
    jsonw_str(w, "reference", "alerts/RULES.md");
    jsonw_obj_close(w);
}

static void alert_observer(struct jsonw *w, const struct alert_doc *a)
{
    jsonw_obj_open(w, "observer");
    jsonw_str(w, "name", a->ctx && a->ctx->observer_name ? a->ctx->observer_name : "stripwatch");
    jsonw_str(w, "type", "sensor");
    jsonw_str(w, "vendor", "stripwatch");
    jsonw_str(w, "product", "stripwatch");
    jsonw_str(w, "version", SW_VERSION);
    jsonw_obj_close(w);
}

/* mta_sts: the policy answer the verdict rests on, when there is one */
static void alert_mta_sts(struct jsonw *w, const struct alert_doc *a)
{
    int p = a->v->policy;
    if (p < 0 || (size_t)p >= a->n_pols || !a->pols[p].json)
        return;
    const struct rule_policy *rp = &a->pols[p];
    const char *k;
    json_t *m;
    bool derived_done = false;
    jsonw_obj_open(w, "mta_sts");
    json_object_foreach(rp->json, k, m)
    {
        if (rp->derived && strcmp(k, "derived_from_server_name") == 0) {
            jsonw_bool(w, k, true);
            derived_done = true;
            continue;
        }
        jsonw_json(w, k, m);
    }
    if (rp->derived && !derived_done)
        jsonw_bool(w, "derived_from_server_name", true);
    jsonw_obj_close(w);
}

/* top level: after the record's tls */
static void alert_tail(struct jsonw *w, const void *arg)
{
    const struct alert_doc *a = arg;
    alert_rule(w, a);
    alert_observer(w, a);
    alert_mta_sts(w, a);
}

bool alert_write(struct jsonw *w, const struct smtp_facts *f, const struct verdict *v,
                 const struct rule_policy *pols, size_t n_pols, const struct alert_ctx *ctx)
{
    struct alert_doc a = {f, v, pols, n_pols, ctx};
    struct session_json_ext x = {
        "alert", "stripwatch.alert", alert_event, alert_stripwatch, alert_tail, &a,
    };
    session_json_write(w, f, &x);
    return jsonw_ok(w);
}

char *alert_build(const struct smtp_facts *f, const struct verdict *v,
                  const struct rule_policy *pols, size_t n_pols, const struct alert_ctx *ctx,
                  size_t *len)
{
    struct jsonw w;
    jsonw_init(&w);
    if (!alert_write(&w, f, v, pols, n_pols, ctx)) {
        jsonw_free(&w);
        return NULL;
    }
    if (len)
        *len = w.len;
    return w.buf; /* ownership passes to the caller */
}
