/* SPDX-License-Identifier: Apache-2.0 */
/* alert.c: the alert JSON: the session record plus the judgment, in Elastic
 * Common Schema names where one exists (event.*, rule.*, observer.*).
 * Follows RFC 8259 (JSON), RFC 3339 (times), RFC 8461 (mta_sts fields). */
#include "alerts/alert.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#ifndef SW_VERSION
#define SW_VERSION "0.0.0"
#endif

static const char *event_type(enum rule_id r)
{
    switch (r) {
    case RULE_STARTTLS_STRIPPED:
    case RULE_STARTTLS_TAMPERED:
        return "indicator";
    case RULE_AUTH_CLEARTEXT:
    case RULE_DELIVERY_PLAINTEXT_POLICY:
    case RULE_DELIVERY_PLAINTEXT_DANE:
    case RULE_DANE_CERTIFICATE_MISMATCH:
    case RULE_POLICY_MX_MISMATCH:
    case RULE_POLICY_CERTIFICATE_INVALID:
        return "denied"; /* a policy that should have refused it */
    default:
        return "info";
    }
}

char *alert_build(const struct smtp_facts *f, const struct verdict *v,
                  const struct rule_policy *pols, size_t n_pols, const struct alert_ctx *ctx,
                  size_t *len)
{
    json_t *o = facts_to_json(f);
    if (!o)
        return NULL;
    const struct rule_desc *rd = rule_desc(v->rule);

    json_t *ev = json_object_get(o, "event");
    if (!json_is_object(ev)) {
        ev = json_object();
        json_object_set_new(o, "event", ev);
    }
    json_object_set_new(ev, "kind", json_string("alert"));
    json_object_set_new(ev, "dataset", json_string("stripwatch.alert"));
    json_object_set_new(ev, "category", json_pack("[s, s]", "network", "intrusion_detection"));
    json_object_set_new(ev, "type", json_pack("[s]", event_type(v->rule)));
    json_object_set_new(ev, "severity", json_integer(v->severity));
    json_object_set_new(ev, "action", json_string(v->action));
    json_object_set_new(ev, "module", json_string("stripwatch"));
    char ts[40];
    facts_fmt_time(f->flow.start, ts, sizeof ts);
    json_object_set_new(ev, "start", json_string(ts));

    json_object_set_new(o, "rule",
                        json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", rd->id, "name", rd->name,
                                  "description", rd->description, "ruleset", "stripwatch",
                                  "reference", "alerts/RULES.md"));
    json_object_set_new(o, "observer",
                        json_pack("{s:s, s:s, s:s, s:s, s:s}", "name",
                                  ctx && ctx->observer_name ? ctx->observer_name : "stripwatch",
                                  "type", "sensor", "vendor", "stripwatch", "product", "stripwatch",
                                  "version", SW_VERSION));
    if (v->policy >= 0 && (size_t)v->policy < n_pols && pols[v->policy].json) {
        json_t *m = json_deep_copy(pols[v->policy].json);
        if (pols[v->policy].derived)
            json_object_set_new(m, "derived_from_server_name", json_true());
        json_object_set_new(o, "mta_sts", m);
    }
    alert_add_dane(o, ctx ? ctx->dane : NULL);

    json_t *sw = json_object_get(o, "stripwatch");
    if (!json_is_object(sw)) {
        sw = json_object();
        json_object_set_new(o, "stripwatch", sw);
    }
    json_object_set_new(sw, "severity_name", json_string(rule_severity_name(v->severity)));
    json_object_set_new(sw, "confidence", json_string(rule_confidence_str(v->confidence)));
    json_object_set_new(sw, "evidence", v->evidence ? json_deep_copy(v->evidence) : json_object());
    /* --evidence-dir: stripwatch.evidence.pcap, the file holding the
     * session's packets (sensor/evidence.c); absent without it */
    json_t *evj = json_object_get(sw, "evidence");
    if (ctx && ctx->evidence_pcap && json_is_object(evj))
        json_object_set_new(evj, "pcap", json_string(ctx->evidence_pcap));
    json_object_set_new(sw, "suppressed", json_integer(ctx ? (json_int_t)ctx->suppressed : 0));
    json_object_set_new(sw, "version", json_string(SW_VERSION));

    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s && len)
        *len = strlen(s);
    return s;
}
