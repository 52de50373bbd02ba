/* SPDX-License-Identifier: Apache-2.0 */
/* facts.c: session facts lifecycle and the session record JSON (ECS names).
 * Follows RFC 3339 (timestamps), RFC 5321 (SMTP terms), RFC 8446/5246 (TLS
 * version names), RFC 5280 (certificate fields). */
#include "decode/facts.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static const char *const anom_names[ANOM_KIND_COUNT] = {
    [ANOM_CAP_MANGLED] = "cap_mangled",
    [ANOM_STARTTLS_UNKNOWN_CMD] = "starttls_unknown_cmd",
    [ANOM_STARTTLS_REFUSED] = "starttls_refused",
    [ANOM_TTL_SHIFT] = "ttl_shift",
    [ANOM_IPID_SHIFT] = "ipid_shift",
    [ANOM_LINE_TOO_LONG] = "line_too_long",
    [ANOM_REPLY_WITHOUT_COMMAND] = "reply_without_command",
    [ANOM_GAP] = "gap",
    [ANOM_NOT_TLS_AFTER_STARTTLS] = "not_tls_after_starttls",
    [ANOM_PLAINTEXT_ON_TLS_PORT] = "plaintext_on_tls_port",
    [ANOM_OVERLAP_CONFLICT] = "overlap_conflict",
    [ANOM_TLS_ALERT] = "tls_alert",
    [ANOM_STARTTLS_NOT_OFFERED] = "starttls_not_offered",
};

const char *anomaly_kind_str(enum anomaly_kind k)
{
    if ((unsigned)k >= ANOM_KIND_COUNT || !anom_names[k])
        return "unknown";
    return anom_names[k];
}

const char *smtp_end_str(enum smtp_end e)
{
    switch (e) {
    case SMTP_END_NONE:
        return "none";
    case SMTP_END_QUIT:
        return "quit";
    case SMTP_END_FIN:
        return "fin";
    case SMTP_END_RST:
        return "rst";
    case SMTP_END_TIMEOUT:
        return "timeout";
    case SMTP_END_EVICTED:
        return "evicted";
    case SMTP_END_CAPTURE_END:
        return "capture_end";
    case SMTP_END_TLS:
        return "tls";
    }
    return "unknown";
}

static void tx_clear(struct facts_tx *t)
{
    for (size_t i = 0; i < t->n_rcpt; i++)
        free(t->rcpt[i].address);
    free(t->rcpt);
    free(t->mail_from);
    t->rcpt = NULL;
    t->n_rcpt = 0;
    t->mail_from = NULL;
}

void facts_clear(struct smtp_facts *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n_caps; i++)
        free(f->caps[i]);
    f->n_caps = 0;
    for (size_t i = 0; i < f->n_tx; i++)
        tx_clear(&f->tx[i]);
    free(f->tx);
    f->tx = NULL;
    f->n_tx = 0;
    for (size_t i = 0; i < f->tls.cert.n_san; i++)
        free(f->tls.cert.san_dns[i]);
    f->tls.cert.n_san = 0;
}

void facts_free(struct smtp_facts *f)
{
    if (!f)
        return;
    facts_clear(f);
    free(f);
}

static bool dup_str(char **dst, const char *src)
{
    *dst = NULL;
    if (!src)
        return true;
    *dst = strdup(src);
    return *dst != NULL;
}

struct smtp_facts *facts_copy(const struct smtp_facts *f)
{
    struct smtp_facts *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    memcpy(c, f, sizeof *c);
    /* detach every owned pointer before duplicating, so a failure can free */
    c->n_caps = 0;
    c->tx = NULL;
    c->n_tx = 0;
    c->tls.cert.n_san = 0;
    for (size_t i = 0; i < f->n_caps; i++) {
        if (!dup_str(&c->caps[i], f->caps[i]))
            goto fail;
        c->n_caps++;
    }
    for (size_t i = 0; i < f->tls.cert.n_san; i++) {
        if (!dup_str(&c->tls.cert.san_dns[i], f->tls.cert.san_dns[i]))
            goto fail;
        c->tls.cert.n_san++;
    }
    if (f->n_tx) {
        c->tx = calloc(f->n_tx, sizeof *c->tx);
        if (!c->tx)
            goto fail;
        for (size_t i = 0; i < f->n_tx; i++) {
            const struct facts_tx *s = &f->tx[i];
            struct facts_tx *d = &c->tx[i];
            *d = *s;
            d->rcpt = NULL;
            d->n_rcpt = 0;
            d->mail_from = NULL;
            c->n_tx++;
            if (!dup_str(&d->mail_from, s->mail_from))
                goto fail;
            if (s->n_rcpt) {
                d->rcpt = calloc(s->n_rcpt, sizeof *d->rcpt);
                if (!d->rcpt)
                    goto fail;
                for (size_t j = 0; j < s->n_rcpt; j++) {
                    d->rcpt[j] = s->rcpt[j];
                    d->rcpt[j].address = NULL;
                    d->n_rcpt++;
                    if (!dup_str(&d->rcpt[j].address, s->rcpt[j].address))
                        goto fail;
                }
            }
        }
    }
    return c;
fail:
    facts_free(c);
    return NULL;
}

bool facts_has_cleartext_data(const struct smtp_facts *f)
{
    for (size_t i = 0; i < f->n_tx; i++)
        if (f->tx[i].data_sent && f->tx[i].cleartext)
            return true;
    return false;
}

/* RFC 3339 UTC with microseconds: 2026-11-22T10:00:01.123456Z */
void facts_fmt_time(sw_usec ts, char *buf, size_t len)
{
    long long sec = ts / SW_USEC_PER_SEC;
    long long us = ts % SW_USEC_PER_SEC;
    if (us < 0) {
        us += SW_USEC_PER_SEC;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, len, "1970-01-01T00:00:00.000000Z");
        return;
    }
    int n = snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, us);
    if (n < 0 || (size_t)n >= len) /* years past 9999 do not fit: say so, never cut */
        snprintf(buf, len, "9999-12-31T23:59:59.999999Z");
}

static json_t *addr_json(const struct sw_addr *a, uint16_t port)
{
    char buf[INET6_ADDRSTRLEN] = "";
    if (a->family == 4)
        inet_ntop(AF_INET, a->b, buf, sizeof buf);
    else if (a->family == 6)
        inet_ntop(AF_INET6, a->b, buf, sizeof buf);
    return json_pack("{s:s, s:i}", "ip", buf, "port", (json_int_t)port);
}

json_t *facts_json_wire_str(const char *s)
{
    if (!s)
        s = "";
    json_t *j = json_string(s);
    if (j)
        return j;
    size_t n = strlen(s);
    char *c = malloc(n + 1);
    if (!c)
        return json_string("?");
    for (size_t i = 0; i < n; i++)
        c[i] = ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) ? '?' : s[i];
    c[n] = '\0';
    j = json_string(c);
    free(c);
    return j;
}

/* A string, or JSON null for "". */
static json_t *str_or_null(const char *s)
{
    return (s && *s) ? facts_json_wire_str(s) : json_null();
}

static json_t *code_or_null(int code)
{
    return code ? json_integer(code) : json_null();
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

static json_t *anomalies_json(const struct smtp_facts *f)
{
    json_t *a = json_array();
    for (size_t i = 0; i < f->n_anomalies; i++) {
        const struct facts_anomaly *an = &f->anomalies[i];
        char ts[40];
        facts_fmt_time(an->ts, ts, sizeof ts);
        json_array_append_new(a,
                              json_pack("{s:s, s:s, s:s, s:o}", "kind", anomaly_kind_str(an->kind),
                                        "dir", an->dir == DIR_C2S ? "c2s" : "s2c", "ts", ts,
                                        "detail", facts_json_wire_str(an->detail)));
    }
    return a;
}

static json_t *tx_json(const struct facts_tx *t)
{
    json_t *rcpts = json_array();
    for (size_t j = 0; j < t->n_rcpt; j++) {
        json_t *r = json_pack("{s:o, s:o}", "domain", facts_json_wire_str(t->rcpt[j].domain),
                              "code", code_or_null(t->rcpt[j].code));
        if (t->rcpt[j].address)
            json_object_set_new(r, "address", facts_json_wire_str(t->rcpt[j].address));
        json_array_append_new(rcpts, r);
    }
    json_t *accepted = t->accepted < 0 ? json_null() : json_boolean(t->accepted == 1);
    json_t *data = json_pack("{s:b, s:I, s:o, s:o, s:b}", "cleartext", t->data_sent && t->cleartext,
                             "bytes", (json_int_t)t->data_bytes, "accepted", accepted, "code",
                             code_or_null(t->data_code), "bdat", t->bdat);
    json_t *o = json_pack("{s:o, s:o, s:o, s:o}", "mail_from_domain",
                          facts_json_wire_str(t->mail_from_domain), "mail_code",
                          code_or_null(t->mail_code), "rcpt", rcpts, "data", data);
    json_object_set_new(o, "size",
                        t->size_param ? json_integer((json_int_t)t->size_param) : json_null());
    json_object_set_new(o, "body", str_or_null(t->body_param));
    if (t->mail_from)
        json_object_set_new(o, "mail_from", facts_json_wire_str(t->mail_from));
    if (t->rcpt_dropped)
        json_object_set_new(o, "rcpt_dropped", json_integer(t->rcpt_dropped));
    return o;
}

static json_t *x509_json(const struct facts_x509 *c)
{
    if (!c->present)
        return json_null();
    json_t *san = json_array();
    for (size_t i = 0; i < c->n_san; i++)
        json_array_append_new(san, facts_json_wire_str(c->san_dns[i]));
    return json_pack("{s:o, s:o, s:o, s:s, s:s, s:{s:s}, s:b, s:I}", "subject",
                     facts_json_wire_str(c->subject), "issuer", facts_json_wire_str(c->issuer),
                     "alternative_names", san, "not_before", c->not_before, "not_after",
                     c->not_after, "fingerprint", "sha256", c->sha256, "self_signed",
                     c->self_signed, "chain_length", (json_int_t)c->chain_len);
}

static json_t *tls_json(const struct facts_tls *t)
{
    const char *v = tls_version_name(t->version);
    json_t *client =
        json_pack("{s:o, s:o}", "server_name", str_or_null(t->sni), "ja3", str_or_null(t->ja3));
    json_t *server =
        json_pack("{s:o, s:o}", "ja3s", str_or_null(t->ja3s), "x509", x509_json(&t->cert));
    json_t *cipher = t->cipher_name[0] ? json_string(t->cipher_name) : json_null();
    if (!t->cipher_name[0] && t->server_hello) {
        char hex[16];
        snprintf(hex, sizeof hex, "0x%04x", t->cipher);
        json_decref(cipher);
        cipher = json_string(hex);
    }
    json_t *o = json_pack("{s:b, s:b, s:o, s:o, s:o, s:o}", "established", t->established,
                          "implicit", t->implicit, "version", v ? json_string(v) : json_null(),
                          "cipher", cipher, "client", client, "server", server);
    if (t->alert_level >= 0 && (t->client_hello || t->server_hello))
        json_object_set_new(
            o, "alert",
            json_pack("{s:i, s:i}", "level", t->alert_level, "description", t->alert_desc));
    return o;
}

json_t *facts_to_json(const struct smtp_facts *f)
{
    char ts[40];
    facts_fmt_time(f->flow.start, ts, sizeof ts);

    json_t *sw = json_pack("{s:s, s:s, s:o}", "uid", f->flow.uid, "end", smtp_end_str(f->end),
                           "anomalies", anomalies_json(f));
    if (f->anomalies_dropped)
        json_object_set_new(sw, "anomalies_dropped", json_integer(f->anomalies_dropped));
    json_object_set_new(sw, "ttl",
                        json_pack("{s:o, s:o}", "client", code_or_null(f->client_ttl), "server",
                                  code_or_null(f->server_ttl)));

    json_t *net = json_pack("{s:s, s:s}", "transport", "tcp", "protocol", "smtp");
    if (f->flow.vlan)
        json_object_set_new(net, "vlan", json_pack("{s:i}", "id", (json_int_t)f->flow.vlan));

    json_t *caps = json_array();
    for (size_t i = 0; i < f->n_caps; i++)
        json_array_append_new(caps, facts_json_wire_str(f->caps[i]));
    json_t *txs = json_array();
    for (size_t i = 0; i < f->n_tx; i++)
        json_array_append_new(txs, tx_json(&f->tx[i]));

    json_t *smtp = json_pack(
        "{s:{s:o, s:o}, s:{s:o, s:o}, s:o, s:{s:b, s:b, s:o}, s:{s:o, s:b}, s:o}", "banner", "code",
        code_or_null(f->banner_code), "host", str_or_null(f->banner_host), "helo", "verb",
        str_or_null(f->helo_verb), "host", str_or_null(f->helo_host), "capabilities", caps,
        "starttls", "offered", f->starttls_offered, "requested", f->starttls_requested,
        "reply_code", code_or_null(f->starttls_code), "auth", "mechanism",
        str_or_null(f->auth_mechanism), "cleartext", f->auth_cleartext, "transactions", txs);
    if (f->caps_dropped)
        json_object_set_new(smtp, "capabilities_dropped", json_integer(f->caps_dropped));
    if (f->tx_dropped)
        json_object_set_new(smtp, "transactions_dropped", json_integer(f->tx_dropped));

    return json_pack("{s:s, s:{s:s, s:s}, s:o, s:o, s:o, s:o, s:o, s:o}", "@timestamp", ts, "event",
                     "kind", "event", "dataset", "stripwatch.session", "stripwatch", sw, "source",
                     addr_json(&f->flow.client, f->flow.cport), "destination",
                     addr_json(&f->flow.server, f->flow.sport), "network", net, "smtp", smtp, "tls",
                     tls_json(&f->tls));
}
