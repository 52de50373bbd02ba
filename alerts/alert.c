/* SPDX-License-Identifier: Apache-2.0 */
/* alert.c: the alert JSON: the session record plus the judgment, in Elastic
 * Common Schema names where one exists (event.*, rule.*, observer.*), written
 * with the direct writer (alerts/jsonw.h), one function per object.
 * Follows RFC 8259 (JSON), RFC 3339 (times), RFC 8461 (mta_sts fields). */
#include "alerts/alert.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
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

/* event.type: of the values ECS allows with category intrusion_detection
 * (allowed, denied, info): "denied" where a policy should have refused the
 * session, "info" otherwise. */
static const char *event_type(enum rule_id r)
{
    switch (r) {
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

/* SHA-256 fetched once: EVP_sha256() in EVP_Digest makes OpenSSL 3 look
 * the implementation up again for every alert. Kept for the life of the
 * process. */
static EVP_MD *g_sha256;
/* pthread_once, not C11 call_once: ThreadSanitizer sees its ordering */
static pthread_once_t g_sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* event.id: the same for the same session and rule whenever and however
 * often it is written (restart, spool replay, re-analysis): the first 16
 * bytes of SHA-256("<session uid>|<rule id>") in hex. */
static void alert_event_id(const struct alert_doc *a, char out[33])
{
    char in[64];
    /* "%s|%s" by hand (once per alert) */
    const char *uid = a->f->flow.uid, *id = rule_desc(a->v->rule)->id;
    size_t ul = strlen(uid), il = strlen(id), n = ul + 1 + il;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    out[0] = '\0';
    pthread_once(&g_sha256_once, sha256_fetch);
    if (n >= sizeof in)
        return;
    memcpy(in, uid, ul);
    in[ul] = '|';
    memcpy(in + ul + 1, id, il);
    if (!EVP_Digest(in, n, md, &mdlen, g_sha256 ? g_sha256 : EVP_sha256(), NULL) || mdlen < 16)
        return;
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[32] = '\0';
}

/* event.*: after the record's kind and dataset */
static void alert_event(struct jsonw *w, const void *arg)
{
    const struct alert_doc *a = arg;
    char id[33];
    alert_event_id(a, id);
    if (id[0])
        jsonw_str(w, "id", id);
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
}

/* stripwatch.recipients: how many recipients the session named (every RCPT,
 * kept in the record or not), how many were accepted, and the distinct
 * accepted recipient domains, those whose policies matter (0 for a
 * submission), and those the decoder could not keep; left out when no RCPT
 * was seen. */
static void alert_recipients(struct jsonw *w, const struct alert_doc *a)
{
    uint64_t total = 0, accepted = 0, dropped = 0;
    for (size_t i = 0; i < a->f->n_tx; i++) {
        const struct facts_tx *t = &a->f->tx[i];
        uint64_t kept_ok = 0;
        for (size_t j = 0; j < t->n_rcpt; j++)
            kept_ok += t->rcpt[j].code >= 200 && t->rcpt[j].code < 300;
        /* facts built without the decoder's counts: what is kept */
        total += t->rcpt_total ? t->rcpt_total : t->n_rcpt + t->rcpt_dropped;
        accepted += t->rcpt_total ? t->rcpt_accepted : kept_ok;
        dropped += t->domains_dropped;
    }
    if (!total)
        return;
    size_t domains = 0;
    bool derived = false;
    if (a->pols) {
        /* the detector's: rules_policy_domains already made them */
        domains = a->n_pols;
        derived = a->n_pols && a->pols[0].derived;
    } else {
        size_t max = rules_policy_domains_max(a->f);
        char(*doms)[FACTS_HOST_MAX] = malloc(max * sizeof *doms);
        uint32_t left = 0;
        if (doms)
            domains = rules_policy_domains(a->f, doms, max, &derived, &left);
        free(doms);
    }
    if (derived)
        domains = 0; /* names of the server, not recipients' */
    jsonw_obj_open(w, "recipients");
    jsonw_int(w, "count", (int64_t)total);
    jsonw_int(w, "accepted", (int64_t)accepted);
    jsonw_int(w, "domains", (int64_t)domains);
    if (dropped)
        jsonw_int(w, "domains_dropped", (int64_t)dropped);
    jsonw_obj_close(w);
}

/* stripwatch.*: after the record's uid, end, anomalies, ttl */
static void alert_stripwatch(struct jsonw *w, const void *arg)
{
    const struct alert_doc *a = arg;
    jsonw_str(w, "severity_name", rule_severity_name(a->v->severity));
    jsonw_str(w, "confidence", rule_confidence_str(a->v->confidence));
    jsonw_obj_open(w, "evidence");
    if (a->v->evidence)
        jsonw_members(w, a->v->evidence, a->v->evidence_len);
    /* --evidence-dir: the file holding the session's packets
     * (sensor/evidence.c); absent without it */
    if (a->ctx && a->ctx->evidence_pcap)
        jsonw_str(w, "pcap", a->ctx->evidence_pcap);
    jsonw_obj_close(w);
    jsonw_int(w, "suppressed", a->ctx ? (int64_t)a->ctx->suppressed : 0);
    alert_recipients(w, a);
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
    /* rule.reference: ECS wants an absolute URL; the rule pages ship with
     * the sensor (alerts/RULES.md), not at a URL, so it is left out */
    jsonw_obj_close(w);
}

static void alert_observer(struct jsonw *w, const struct alert_doc *a)
{
    jsonw_obj_open(w, "observer");
    jsonw_str(w, "name", a->ctx && a->ctx->observer_name ? a->ctx->observer_name : "stripwatch");
    if (a->ctx && a->ctx->hostname && a->ctx->hostname[0])
        jsonw_str(w, "hostname", a->ctx->hostname);
    /* observer.ip: the capture interface's addresses (live runs only) */
    if (a->ctx && a->ctx->n_ips > 0) {
        jsonw_arr_open(w, "ip");
        for (size_t i = 0; i < a->ctx->n_ips; i++)
            jsonw_str(w, NULL, a->ctx->ips[i]);
        jsonw_arr_close(w);
    }
    if (a->ctx && a->ctx->interface && a->ctx->interface[0]) {
        jsonw_obj_open(w, "ingress");
        jsonw_obj_open(w, "interface");
        jsonw_str(w, "name", a->ctx->interface);
        jsonw_obj_close(w);
        jsonw_obj_close(w);
    }
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
    if (p < 0 || (size_t)p >= a->n_pols || !a->pols[p].answered)
        return;
    rule_policy_write(w, "mta_sts", &a->pols[p]);
}

/* top level: after the record's tls */
static void alert_tail(struct jsonw *w, const void *arg)
{
    const struct alert_doc *a = arg;
    alert_rule(w, a);
    alert_observer(w, a);
    alert_mta_sts(w, a);
    alert_write_dane(w, a->ctx ? a->ctx->dane : NULL);
}

bool alert_write(struct jsonw *w, const struct smtp_facts *f, const struct verdict *v,
                 const struct rule_policy *pols, size_t n_pols, const struct alert_ctx *ctx)
{
    struct alert_doc a = {f, v, pols, n_pols, ctx};
    struct session_json_ext x = {.kind = "alert",
                                 .dataset = "stripwatch.alert",
                                 .event = alert_event,
                                 .stripwatch = alert_stripwatch,
                                 .tail = alert_tail,
                                 .arg = &a};
    if (ctx) { /* the record's members, when the caller has them */
        x.same = ctx->same;
        x.same_len = ctx->same_len;
    }
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
