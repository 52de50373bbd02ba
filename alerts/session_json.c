/* SPDX-License-Identifier: Apache-2.0 */
/* session_json.c: the session record in Elastic Common Schema names, written
 * straight to JSON, one function per object. Follows RFC 8259 (JSON),
 * RFC 3339 (times), RFC 5321 (SMTP fields), RFC 8446 (TLS fields). */
#include "alerts/session_json.h"
#include "alerts/community_id.h"
#include "decode/pkt.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* session_json_files(): the -r files, for stripwatch.packet.file */
static const char *const *files;
static size_t n_files;

void session_json_files(const char *const *names, size_t n)
{
    files = names;
    n_files = n;
}

static void addr_str(const struct sw_addr *a, char *buf, size_t len)
{
    buf[0] = '\0';
    if (a->family == 4 || a->family == 6)
        sw_addr_str(a, buf, len);
}

/* source / destination (ip: the address as text): bytes and packets are
 * those this side sent */
static void w_addr(struct jsonw *w, const char *key, const char *ip, uint16_t port, uint64_t bytes,
                   uint64_t packets)
{
    jsonw_obj_open(w, key);
    jsonw_str(w, "ip", ip);
    jsonw_int(w, "port", port);
    jsonw_int(w, "bytes", (int64_t)bytes);
    jsonw_int(w, "packets", (int64_t)packets);
    jsonw_obj_close(w);
}

/* event.*: start and end are the capture times of the first and last
 * packet, duration in nanoseconds (ECS); created is when the sensor had the
 * whole session: its last packet's capture time, so that a re-analysed
 * capture gives the same document. */
static void w_event(struct jsonw *w, const struct smtp_facts *f, const struct session_json_ext *x,
                    const char *start)
{
    jsonw_obj_open(w, "event");
    jsonw_str(w, "kind", x && x->kind ? x->kind : "event");
    jsonw_str(w, "dataset", x && x->dataset ? x->dataset : "stripwatch.session");
    if (x && x->event) {
        x->event(w, x->arg);
    } else {
        jsonw_arr_open(w, "category");
        jsonw_str(w, NULL, "network");
        jsonw_arr_close(w);
        jsonw_arr_open(w, "type");
        jsonw_str(w, NULL, "connection");
        jsonw_str(w, NULL, "protocol");
        jsonw_arr_close(w);
    }
    sw_usec end = f->pkt_last_ts > f->flow.start ? f->pkt_last_ts : f->flow.start;
    char ts[40];
    jsonw_str(w, "start", start);
    facts_fmt_time(end, ts, sizeof ts);
    jsonw_str(w, "end", ts);
    jsonw_int(w, "duration", (int64_t)(end - f->flow.start) * 1000);
    jsonw_str(w, "created", ts);
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
    /* where the evidence is: packet numbers in the capture as read (1 is
     * the first packet of the first -r file; several files, merged by
     * time, count on), and offline the file of the first packet (its
     * base name; "stdin" for -) */
    jsonw_obj_open(w, "packet");
    if (f->flow.file && f->flow.file <= n_files) {
        const char *name = files[f->flow.file - 1], *slash = strrchr(name, '/');
        jsonw_wire_str(w, "file", slash ? slash + 1 : name);
    }
    jsonw_int(w, "first", (int64_t)f->flow.first_pkt);
    jsonw_int(w, "last",
              (int64_t)(f->last_pkt > f->flow.first_pkt ? f->last_pkt : f->flow.first_pkt));
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
    jsonw_int(w, "bytes", (int64_t)(f->bytes_c2s + f->bytes_s2c));
    jsonw_int(w, "packets", (int64_t)(f->flow.pkts_c2s + f->flow.pkts_s2c));
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
    if (t->n_domains) {
        /* the domains of the recipients past those kept in rcpt */
        jsonw_arr_open(w, "rcpt_more_domains");
        for (size_t j = 0; j < t->n_domains; j++) {
            jsonw_obj_open(w, NULL);
            jsonw_wire_str(w, "domain", t->domains[j].domain);
            jsonw_int(w, "rcpt", t->domains[j].rcpts);
            jsonw_int(w, "accepted", t->domains[j].accepted);
            jsonw_obj_close(w);
        }
        jsonw_arr_close(w);
    }
    if (t->domains_dropped)
        jsonw_int(w, "rcpt_domains_dropped", t->domains_dropped);
    if (t->before_capture)
        jsonw_bool(w, "before_capture", true);
    jsonw_obj_close(w);
}

void session_json_caps(struct jsonw *w, const struct smtp_facts *f)
{
    /* one walk of the list (facts_cap(f, i) walks it from the start) */
    jsonw_arr_open(w, "capabilities");
    const char *c = f->caps;
    for (size_t i = 0; i < f->n_caps; i++) {
        size_t n = strlen(c);
        jsonw_wire_strn(w, NULL, c, n);
        c += n + 1;
    }
    jsonw_arr_close(w);
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
    session_json_caps(w, f);
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

/* One attribute type of a distinguished name as OpenSSL prints it
 * ("CN=a,O=b\\, c,C=DE", RFC 4514 escapes) into an array of its values; the
 * array is left out when the name has none. */
static void w_dn_attr(struct jsonw *w, const char *key, const char *dn, const char *type)
{
    size_t tl = strlen(type);
    bool open = false;
    const char *p = dn;
    while (*p) {
        const char *e = p; /* the end of this RDN: an unescaped ',' */
        while (*e && *e != ',') {
            if (*e == '\\' && e[1])
                e++;
            e++;
        }
        while (*p == ' ')
            p++;
        if ((size_t)(e - p) > tl && strncmp(p, type, tl) == 0 && p[tl] == '=') {
            char v[FACTS_HOST_MAX];
            size_t n = 0;
            for (const char *q = p + tl + 1; q < e && n + 1 < sizeof v; q++) {
                if (*q == '\\' && q + 1 < e)
                    q++;
                v[n++] = *q;
            }
            v[n] = '\0';
            if (!open)
                jsonw_arr_open(w, key);
            open = true;
            jsonw_wire_str(w, NULL, v);
        }
        p = *e ? e + 1 : e;
    }
    if (open)
        jsonw_arr_close(w);
}

/* x509.subject / x509.issuer as ECS objects: the attributes as arrays and
 * the whole name in distinguished_name */
static void w_dn(struct jsonw *w, const char *key, const char *dn)
{
    dn = facts_s(dn);
    jsonw_obj_open(w, key);
    jsonw_wire_str(w, "distinguished_name", dn);
    w_dn_attr(w, "common_name", dn, "CN");
    w_dn_attr(w, "organization", dn, "O");
    w_dn_attr(w, "organizational_unit", dn, "OU");
    w_dn_attr(w, "locality", dn, "L");
    w_dn_attr(w, "state_or_province", dn, "ST");
    w_dn_attr(w, "country", dn, "C");
    jsonw_obj_close(w);
}

static void w_x509(struct jsonw *w, const struct facts_x509 *c)
{
    if (!c->present) {
        jsonw_null(w, "x509");
        return;
    }
    jsonw_obj_open(w, "x509");
    w_dn(w, "subject", c->subject);
    w_dn(w, "issuer", c->issuer);
    jsonw_arr_open(w, "alternative_names");
    for (size_t i = 0; i < c->n_san; i++)
        jsonw_wire_str(w, NULL, c->san_dns[i]);
    jsonw_arr_close(w);
    jsonw_wire_str_or_null(w, "not_before", c->not_before);
    jsonw_wire_str_or_null(w, "not_after", c->not_after);
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
    const char *after = facts_tls_after_str(t->client_after);
    if (after)
        jsonw_str(w, "after_handshake", after);
    else
        jsonw_null(w, "after_handshake");
    jsonw_obj_close(w);
    jsonw_obj_open(w, "server");
    jsonw_wire_str_or_null(w, "ja3s", t->ja3s);
    if (t->cert.present && t->cert.sha256 && t->cert.sha256[0]) {
        jsonw_obj_open(w, "hash");
        jsonw_wire_str(w, "sha256", t->cert.sha256); /* of the leaf's DER */
        jsonw_obj_close(w);
    }
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

/* Appends s to the set of n strings in seen (at most 8) when it is new. */
static bool add_unique(const char **seen, size_t *n, const char *s)
{
    if (!s || !*s || *n >= 8)
        return false;
    for (size_t i = 0; i < *n; i++)
        if (strcmp(seen[i], s) == 0)
            return false;
    seen[(*n)++] = s;
    return true;
}

/* related.ip: both ends (c, sv: their addresses as text); related.hosts:
 * every host name the session named (banner, HELO/EHLO argument, the EHLO
 * reply's host, the SNI) */
static void w_related(struct jsonw *w, const struct smtp_facts *f, const char *c, const char *sv)
{
    jsonw_obj_open(w, "related");
    jsonw_arr_open(w, "ip");
    jsonw_str(w, NULL, c);
    if (strcmp(c, sv) != 0)
        jsonw_str(w, NULL, sv);
    jsonw_arr_close(w);
    const char *seen[8];
    size_t n = 0;
    add_unique(seen, &n, f->banner_host);
    add_unique(seen, &n, f->helo_host);
    add_unique(seen, &n, f->ehlo_host);
    add_unique(seen, &n, f->tls->sni);
    if (n) {
        jsonw_arr_open(w, "hosts");
        for (size_t i = 0; i < n; i++)
            jsonw_wire_str(w, NULL, seen[i]);
        jsonw_arr_close(w);
    }
    jsonw_obj_close(w);
}

void session_json_write_at(struct jsonw *w, const struct smtp_facts *f,
                           const struct session_json_ext *x, size_t *from, size_t *to)
{
    char ts[40];
    facts_fmt_time(f->flow.start, ts, sizeof ts);
    jsonw_obj_open(w, NULL);
    jsonw_str(w, "@timestamp", ts);
    jsonw_obj_open(w, "ecs");
    jsonw_str(w, "version", SESSION_JSON_ECS_VERSION);
    jsonw_obj_close(w);
    w_event(w, f, x, ts);
    w_stripwatch(w, f, x);
    size_t at = w->len;
    if (x && x->same) {
        jsonw_members(w, x->same, x->same_len);
    } else {
        char c[INET6_ADDRSTRLEN], sv[INET6_ADDRSTRLEN];
        addr_str(&f->flow.client, c, sizeof c);
        addr_str(&f->flow.server, sv, sizeof sv);
        w_addr(w, "source", c, f->flow.cport, f->bytes_c2s, f->flow.pkts_c2s);
        w_addr(w, "destination", sv, f->flow.sport, f->bytes_s2c, f->flow.pkts_s2c);
        w_network(w, f);
        w_related(w, f, c, sv);
        w_smtp(w, f);
        w_tls(w, f->tls);
    }
    if (from && to) { /* the separator before "source" is not theirs */
        *from = at < w->len && w->buf[at] == ',' ? at + 1 : at;
        *to = w->len;
    }
    if (x && x->tail)
        x->tail(w, x->arg);
    jsonw_obj_close(w);
}

void session_json_write(struct jsonw *w, const struct smtp_facts *f,
                        const struct session_json_ext *x)
{
    session_json_write_at(w, f, x, NULL, NULL);
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
