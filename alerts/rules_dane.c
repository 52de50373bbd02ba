/* SPDX-License-Identifier: Apache-2.0 */
/* rules_dane.c: the DANE rules: TLS made mandatory by DNSSEC-secure TLSA
 * records of the receiving MX, and sessions that went without it.
 * RFC 7672 §2.2 (secure TLSA RRset: TLS mandatory, no fallback to
 * cleartext), §3.1 (usable records: DANE-TA(2), DANE-EE(3)), RFC 7671 §5
 * (matching a certificate chain). */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/jsonw.h"
#include "alerts/session_json.h"
#include "alerts/rules.h"

bool rules_dane_host(const struct smtp_facts *f, char out[FACTS_HOST_MAX])
{
    const char *c[3] = {f->tls->sni, f->banner_host, f->ehlo_host};
    out[0] = 0;
    if (rules_is_submission(f))
        return false;
    for (int i = 0; i < 3; i++) {
        if (!c[i] || !c[i][0] || rules_host_is_ip_literal(c[i]) || !strchr(c[i], '.'))
            continue;
        size_t k = 0;
        for (; c[i][k] && k + 1 < FACTS_HOST_MAX; k++)
            out[k] = (char)(c[i][k] >= 'A' && c[i][k] <= 'Z' ? c[i][k] - 'A' + 'a' : c[i][k]);
        out[k] = 0;
        if (k && out[k - 1] == '.')
            out[k - 1] = 0;
        return out[0] != 0;
    }
    return false;
}

void rule_dane_set(struct rule_dane *dn, const char *host, const struct dane_answer *a)
{
    rule_dane_clear(dn);
    snprintf(dn->host, sizeof(dn->host), "%s", host);
    dn->answered = true;
    dn->status = a ? a->status : DANE_ST_UNKNOWN;
    json_t *recs = json_array();
    const struct dane_entry *e = a ? a->entry : NULL;
    if (e)
        dn->entry = dane_entry_new(e->host, e->status, e->rr, e->n, e->why, e->fetched_at, e->ttl,
                                   e->source);
    for (size_t i = 0; e && i < e->n; i++) {
        char buf[DANE_MAX_DATA * 2 + 16];
        json_array_append_new(recs, json_string(dane_tlsa_format(&e->rr[i], buf, sizeof(buf))));
        if (dane_tlsa_is_usable(&e->rr[i]))
            dn->n_usable++;
    }
    dn->json = json_pack("{s:s, s:o, s:s}", "host", dn->host, "records", recs, "status",
                         dane_status_str(dn->status));
    if (dn->json && a && a->detail &&
        (dn->status == DANE_ST_BOGUS || dn->status == DANE_ST_UNKNOWN))
        json_object_set_new(dn->json, "detail", json_string(a->detail));
}

bool rule_dane_in_force(const struct rule_dane *dn)
{
    return dn && dn->answered && dn->status == DANE_ST_SECURE && dn->n_usable > 0 && dn->entry;
}

void rule_dane_clear(struct rule_dane *dn)
{
    json_decref(dn->json);
    dane_entry_free(dn->entry);
    memset(dn, 0, sizeof(*dn));
}

static void hex_of(const unsigned char *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = 0;
}

bool rules_dane_match(const struct dane_tlsa *t, const char *digests)
{
    if (!digests || !dane_tlsa_is_usable(t))
        return false;
    /* the digest the record names, hex */
    char want[2 * 64 + 1];
    int field; /* 0 cert-256, 1 cert-512, 2 spki-256, 3 spki-512 */
    if (t->mtype == 0) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        if (EVP_Digest(t->data, t->len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
            return false;
        hex_of(md, 32, want);
        field = t->selector ? 2 : 0;
    } else {
        hex_of(t->data, t->len, want);
        field = (t->selector ? 2 : 0) + (t->mtype == 2 ? 1 : 0);
    }
    size_t wl = strlen(want);
    int cert = 0;
    for (const char *p = digests; *p; cert++) {
        const char *end = strchr(p, ';');
        if (!end)
            end = p + strlen(p);
        bool ee = cert == 0;
        if ((t->usage == 3 && ee) || (t->usage == 2 && !ee)) {
            const char *f = p;
            for (int k = 0; k < field && f && f < end; k++) {
                f = strchr(f, ' ');
                if (f)
                    f++;
            }
            if (f && f < end && (size_t)(end - f) >= wl && strncmp(f, want, wl) == 0 &&
                (f[wl] == ' ' || f + wl == end))
                return true;
        }
        p = *end ? end + 1 : end;
    }
    return false;
}

static void ts_json(struct jsonw *w, const char *key, sw_usec t)
{
    char buf[40];
    facts_fmt_time(t, buf, sizeof buf);
    jsonw_str(w, key, buf);
}

static bool has_anom(const struct smtp_facts *f, enum anomaly_kind k)
{
    for (size_t i = 0; i < f->n_anomalies; i++)
        if (f->anomalies[i].kind == k)
            return true;
    return false;
}

/* The evidence's head (alerts/rules.h, struct verdict): session_uid and
 * reason; returns where the reason ends. */
static size_t dane_head(struct jsonw *w, const struct smtp_facts *f, const char *reason)
{
    jsonw_init(w);
    jsonw_str(w, "session_uid", f->flow.uid);
    jsonw_str(w, "reason", reason);
    return w->len;
}

static void dane_json(struct jsonw *w, const struct rule_dane *dn)
{
    if (dn->json)
        jsonw_json(w, "dane", dn->json);
}

static size_t dane_evidence(struct jsonw *w, const struct smtp_facts *f, const struct rule_dane *dn,
                            const char *reason)
{
    size_t re = dane_head(w, f, reason);
    dane_json(w, dn);
    return re;
}

/* The verdict takes w's buffer (no evidence when it ran out of memory). */
static struct verdict dane_verdict(enum rule_id r, int sev, const char *action, struct jsonw *w,
                                   size_t reason_end)
{
    struct verdict v = {r, sev, CONF_HIGH, action, -1, w->buf, w->len, reason_end};
    if (!jsonw_ok(w)) {
        jsonw_free(w);
        v.evidence = NULL;
        v.evidence_len = v.reason_end = 0;
    }
    return v;
}

/* dane.certificate_mismatch: TLS <= 1.2 with the chain visible, no fatal
 * alert, and no usable record matches it. Low when the client's first record
 * after its Finished was an alert: it refused the certificate. */
static size_t cert_mismatch(const struct smtp_facts *f, const struct rule_dane *dn,
                            struct verdict *out, size_t n)
{
    const struct facts_x509 *c = &f->tls->cert;
    const struct dane_entry *e = dn->entry;
    if (!c->present || !c->dane_digests || f->tls->alert_level == 2 || n >= RULES_VERDICTS_MAX)
        return n;
    for (size_t i = 0; i < e->n; i++)
        if (rules_dane_match(&e->rr[i], c->dane_digests))
            return n;
    bool refused = f->tls->client_after == FACTS_TLS_AFTER_ALERT;
    struct jsonw ev;
    size_t re = dane_evidence(&ev, f, dn,
                              refused ? "the certificate chain matches none of the server's usable "
                                        "DNSSEC-secure TLSA records (DANE); the client refused "
                                        "it: it closed TLS with an alert before sending any data"
                                      : "the certificate chain matches none of the server's usable "
                                        "DNSSEC-secure TLSA records (DANE)");
    if (refused)
        jsonw_bool(&ev, "client_refused", true);
    jsonw_obj_open(&ev, "certificate");
    jsonw_wire_str(&ev, "subject", c->subject);
    jsonw_wire_str(&ev, "issuer", c->issuer);
    jsonw_wire_str(&ev, "sha256", c->sha256);
    jsonw_int(&ev, "chain_length", (int64_t)c->chain_len);
    jsonw_obj_close(&ev);
    jsonw_wire_str_or_null(&ev, "sni", f->tls->sni);
    out[n++] = dane_verdict(RULE_DANE_CERTIFICATE_MISMATCH, refused ? SEV_LOW : SEV_MEDIUM,
                            "certificate-fails-dane", &ev, re);
    return n;
}

size_t rules_judge_dane(const struct smtp_facts *f, const struct rule_dane *dn, struct verdict *out,
                        size_t n)
{
    if (!rule_dane_in_force(dn) || rules_is_submission(f) || f->tls->implicit)
        return n;
    if (f->tls->established)
        return cert_mismatch(f, dn, out, n);
    /* starttls.stripped: the EHLO reply lacks STARTTLS (not mangled: that is
     * starttls.tampered) */
    bool ehlo_ok = f->ehlo_code >= 200 && f->ehlo_code < 300;
    if (ehlo_ok && !f->starttls_offered && !f->caps_dropped && !has_anom(f, ANOM_CAP_MANGLED)) {
        const char *why = "EHLO reply without STARTTLS from a server whose DNSSEC-secure TLSA "
                          "records make TLS mandatory (DANE)";
        size_t i = 0;
        while (i < n && out[i].rule != RULE_STARTTLS_STRIPPED)
            i++;
        if (i < n) {
            out[i].severity = SEV_HIGH;
            out[i].confidence = CONF_HIGH;
            /* the DANE reason in the place of the first one, the rest as
             * it was, the dane object last */
            struct verdict *v = &out[i];
            struct jsonw ev;
            size_t re = dane_head(&ev, f, why);
            if (v->evidence && v->reason_end < v->evidence_len)
                jsonw_members(&ev, v->evidence + v->reason_end + 1,
                              v->evidence_len - v->reason_end - 1); /* past its ',' */
            dane_json(&ev, dn);
            struct verdict nv = dane_verdict(v->rule, v->severity, v->action, &ev, re);
            free(v->evidence);
            v->evidence = nv.evidence;
            v->evidence_len = nv.evidence_len;
            v->reason_end = nv.reason_end;
        } else if (n < RULES_VERDICTS_MAX) {
            struct jsonw ev;
            size_t re = dane_evidence(&ev, f, dn, why);
            session_json_caps(&ev, f);
            jsonw_int(&ev, "ehlo_reply_code", f->ehlo_code);
            /* rule order: starttls.stripped is the first rule */
            memmove(&out[1], &out[0], n * sizeof(*out));
            out[0] = dane_verdict(RULE_STARTTLS_STRIPPED, SEV_HIGH, "starttls-stripped", &ev, re);
            n++;
        }
    }
    /* delivery.plaintext_dane: message content in clear */
    uint64_t bytes = 0, pkt = 0;
    size_t n_tx = 0;
    sw_usec ts = 0;
    for (size_t i = 0; i < f->n_tx; i++) {
        const struct facts_tx *t = &f->tx[i];
        if (!(t->data_sent && t->cleartext))
            continue;
        if (!n_tx) {
            pkt = t->pkt_no;
            ts = t->ts;
        }
        n_tx++;
        bytes += t->data_bytes;
    }
    if (n_tx && n < RULES_VERDICTS_MAX) {
        struct jsonw ev;
        size_t re = dane_evidence(&ev, f, dn,
                                  "content sent in clear to a server whose DNSSEC-secure TLSA "
                                  "records make TLS mandatory (DANE)");
        jsonw_obj_open(&ev, "cleartext_data");
        jsonw_int(&ev, "bytes", (int64_t)bytes);
        jsonw_int(&ev, "transactions", (int64_t)n_tx);
        ts_json(&ev, "mail_from_ts", ts);
        jsonw_int(&ev, "mail_from_packet", (int64_t)pkt);
        jsonw_obj_close(&ev);
        jsonw_obj_open(&ev, "starttls");
        jsonw_bool(&ev, "offered", f->starttls_offered);
        jsonw_bool(&ev, "requested", f->starttls_requested);
        jsonw_bool(&ev, "tls_established", f->tls->established);
        jsonw_obj_close(&ev);
        out[n++] = dane_verdict(RULE_DELIVERY_PLAINTEXT_DANE, SEV_HIGH, "plaintext-delivery-dane",
                                &ev, re);
    }
    return n;
}
