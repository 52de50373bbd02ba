/* SPDX-License-Identifier: Apache-2.0 */
/* session_json.c: the session record in Elastic Common Schema names, written
 * straight to JSON, one function per object. Follows RFC 8259 (JSON),
 * RFC 3339 (times), RFC 5321 (SMTP fields), RFC 8446 (TLS fields). */
#include "alerts/session_json.h"
#include "alerts/community_id.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void w_addr(struct jsonw *w, const char *key, const struct sw_addr *a, uint16_t port)
{
    char buf[INET6_ADDRSTRLEN] = "";
    if (a->family == 4)
        inet_ntop(AF_INET, a->b, buf, sizeof buf);
    else if (a->family == 6)
        inet_ntop(AF_INET6, a->b, buf, sizeof buf);
    jsonw_obj_open(w, key);
    jsonw_str(w, "ip", buf);
    jsonw_int(w, "port", port);
    jsonw_obj_close(w);
}

static void w_event(struct jsonw *w, const struct session_json_ext *x)
{
    jsonw_obj_open(w, "event");
    jsonw_str(w, "kind", x && x->kind ? x->kind : "event");
    jsonw_str(w, "dataset", x && x->dataset ? x->dataset : "stripwatch.session");
    if (x && x->event)
        x->event(w, x->arg);
    jsonw_obj_close(w);
}

static void w_anomalies(struct jsonw *w, const struct smtp_facts *f)
{
    jsonw_arr_open(w, "anomalies");
    for (size_t i = 0; i < f->n_anomalies; i++) {
        const struct facts_anomaly *an = &f->anomalies[i];
        char ts[40];
        facts_fmt_time(an->ts, ts, sizeof ts);
        jsonw_obj_open(w, NULL);
        jsonw_str(w, "kind", anomaly_kind_str(an->kind));
        jsonw_str(w, "dir", an->dir == DIR_C2S ? "c2s" : "s2c");
        jsonw_str(w, "ts", ts);
        jsonw_wire_str(w, "detail", an->detail);
        jsonw_obj_close(w);
    }
    jsonw_arr_close(w);
}

static void w_stripwatch(struct jsonw *w, const struct smtp_facts *f,
                         const struct session_json_ext *x)
{
    jsonw_obj_open(w, "stripwatch");
    jsonw_str(w, "uid", f->flow.uid);
    jsonw_str(w, "end", smtp_end_str(f->end));
    w_anomalies(w, f);
    if (f->anomalies_dropped)
        jsonw_int(w, "anomalies_dropped", f->anomalies_dropped);
    jsonw_obj_open(w, "ttl");
    jsonw_int_or_null(w, "client", f->client_ttl);
    jsonw_int_or_null(w, "server", f->server_ttl);
    jsonw_obj_close(w);
    if (x && x->stripwatch)
        x->stripwatch(w, x->arg);
    jsonw_obj_close(w);
}

static void w_network(struct jsonw *w, const struct smtp_facts *f)
{
    jsonw_obj_open(w, "network");
    jsonw_str(w, "transport", "tcp");
    jsonw_str(w, "protocol", "smtp");
    char cid[COMMUNITY_ID_LEN];
    if (community_id_v1(&f->flow.client, f->flow.cport, &f->flow.server, f->flow.sport,
                        COMMUNITY_ID_TCP, 0, cid))
        jsonw_str(w, "community_id", cid);
    if (f->flow.vlan) {
        jsonw_obj_open(w, "vlan");
        jsonw_int(w, "id", f->flow.vlan);
        jsonw_obj_close(w);
    }
    jsonw_obj_close(w);
}

static void w_tx(struct jsonw *w, const struct facts_tx *t)
{
    jsonw_obj_open(w, NULL);
    jsonw_wire_str(w, "mail_from_domain", t->mail_from_domain);
    jsonw_int_or_null(w, "mail_code", t->mail_code);
    jsonw_arr_open(w, "rcpt");
    for (size_t j = 0; j < t->n_rcpt; j++) {
        jsonw_obj_open(w, NULL);
        jsonw_wire_str(w, "domain", t->rcpt[j].domain);
        jsonw_int_or_null(w, "code", t->rcpt[j].code);
        if (t->rcpt[j].address)
            jsonw_wire_str(w, "address", t->rcpt[j].address);
        jsonw_obj_close(w);
    }
    jsonw_arr_close(w);
    jsonw_obj_open(w, "data");
    jsonw_bool(w, "cleartext", t->data_sent && t->cleartext);
    jsonw_int(w, "bytes", (int64_t)t->data_bytes);
    if (t->accepted < 0)
        jsonw_null(w, "accepted");
    else
        jsonw_bool(w, "accepted", t->accepted == 1);
    jsonw_int_or_null(w, "code", t->data_code);
    jsonw_bool(w, "bdat", t->bdat);
    jsonw_obj_close(w);
    jsonw_int_or_null(w, "size", (int64_t)t->size_param);
    jsonw_wire_str_or_null(w, "body", t->body_param);
    if (t->mail_from)
        jsonw_wire_str(w, "mail_from", t->mail_from);
    if (t->rcpt_dropped)
        jsonw_int(w, "rcpt_dropped", t->rcpt_dropped);
    jsonw_obj_close(w);
}

static void w_smtp(struct jsonw *w, const struct smtp_facts *f)
{
    jsonw_obj_open(w, "smtp");
    jsonw_obj_open(w, "banner");
    jsonw_int_or_null(w, "code", f->banner_code);
    jsonw_wire_str_or_null(w, "host", f->banner_host);
    jsonw_obj_close(w);
    jsonw_obj_open(w, "helo");
    jsonw_wire_str_or_null(w, "verb", f->helo_verb);
    jsonw_wire_str_or_null(w, "host", f->helo_host);
    jsonw_obj_close(w);
    jsonw_arr_open(w, "capabilities");
    for (size_t i = 0; i < f->n_caps; i++)
        jsonw_wire_str(w, NULL, facts_cap(f, i));
    jsonw_arr_close(w);
    jsonw_obj_open(w, "starttls");
    jsonw_bool(w, "offered", f->starttls_offered);
    jsonw_bool(w, "requested", f->starttls_requested);
    jsonw_int_or_null(w, "reply_code", f->starttls_code);
    jsonw_obj_close(w);
    jsonw_obj_open(w, "auth");
    jsonw_wire_str_or_null(w, "mechanism", f->auth_mechanism);
    jsonw_bool(w, "cleartext", f->auth_cleartext);
    jsonw_obj_close(w);
    jsonw_arr_open(w, "transactions");
    for (size_t i = 0; i < f->n_tx; i++)
        w_tx(w, &f->tx[i]);
    jsonw_arr_close(w);
    if (f->caps_dropped)
        jsonw_int(w, "capabilities_dropped", f->caps_dropped);
    if (f->tx_dropped)
        jsonw_int(w, "transactions_dropped", f->tx_dropped);
    jsonw_obj_close(w);
}

static void w_x509(struct jsonw *w, const struct facts_x509 *c)
{
    if (!c->present) {
        jsonw_null(w, "x509");
        return;
    }
    jsonw_obj_open(w, "x509");
    jsonw_wire_str(w, "subject", c->subject);
    jsonw_wire_str(w, "issuer", c->issuer);
    jsonw_arr_open(w, "alternative_names");
    for (size_t i = 0; i < c->n_san; i++)
        jsonw_wire_str(w, NULL, c->san_dns[i]);
    jsonw_arr_close(w);
    jsonw_str(w, "not_before", facts_s(c->not_before));
    jsonw_str(w, "not_after", facts_s(c->not_after));
    jsonw_obj_open(w, "fingerprint");
    jsonw_str(w, "sha256", facts_s(c->sha256));
    jsonw_obj_close(w);
    jsonw_bool(w, "self_signed", c->self_signed);
    jsonw_int(w, "chain_length", (int64_t)c->chain_len);
    jsonw_obj_close(w);
}

static const char *tls_version_name(uint16_t v)
{
    switch (v) {
    case 0x0300:
        return "ssl3";
    case 0x0301:
        return "1.0";
    case 0x0302:
        return "1.1";
    case 0x0303:
        return "1.2";
    case 0x0304:
        return "1.3";
    }
    return NULL;
}

static void w_tls(struct jsonw *w, const struct facts_tls *t)
{
    jsonw_obj_open(w, "tls");
    jsonw_bool(w, "established", t->established);
    jsonw_bool(w, "implicit", t->implicit);
    jsonw_str(w, "version", tls_version_name(t->version));
    if (t->cipher_name) {
        jsonw_str(w, "cipher", t->cipher_name);
    } else if (t->server_hello) {
        char hex[16];
        snprintf(hex, sizeof hex, "0x%04x", t->cipher);
        jsonw_str(w, "cipher", hex);
    } else {
        jsonw_null(w, "cipher");
    }
    jsonw_obj_open(w, "client");
    jsonw_wire_str_or_null(w, "server_name", t->sni);
    jsonw_wire_str_or_null(w, "ja3", t->ja3);
    jsonw_obj_close(w);
    jsonw_obj_open(w, "server");
    jsonw_wire_str_or_null(w, "ja3s", t->ja3s);
    w_x509(w, &t->cert);
    jsonw_obj_close(w);
    if (t->alert_level >= 0 && (t->client_hello || t->server_hello)) {
        jsonw_obj_open(w, "alert");
        jsonw_int(w, "level", t->alert_level);
        jsonw_int(w, "description", t->alert_desc);
        jsonw_obj_close(w);
    }
    jsonw_obj_close(w);
}

void session_json_write(struct jsonw *w, const struct smtp_facts *f,
                        const struct session_json_ext *x)
{
    char ts[40];
    facts_fmt_time(f->flow.start, ts, sizeof ts);
    jsonw_obj_open(w, NULL);
    jsonw_str(w, "@timestamp", ts);
    w_event(w, x);
    w_stripwatch(w, f, x);
    w_addr(w, "source", &f->flow.client, f->flow.cport);
    w_addr(w, "destination", &f->flow.server, f->flow.sport);
    w_network(w, f);
    w_smtp(w, f);
    w_tls(w, f->tls);
    if (x && x->tail)
        x->tail(w, x->arg);
    jsonw_obj_close(w);
}

char *session_json(const struct smtp_facts *f, size_t *len)
{
    struct jsonw w;
    jsonw_init(&w);
    session_json_write(&w, f, NULL);
    if (!jsonw_ok(&w)) {
        jsonw_free(&w);
        return NULL;
    }
    if (len)
        *len = w.len;
    return w.buf; /* ownership passes to the caller */
}
