/* SPDX-License-Identifier: Apache-2.0 */
/* rules.c: the detection rules: one session's facts, posture and MTA-STS
 * answers judged into verdicts with severity, confidence and evidence.
 * Follows RFC 3207 (STARTTLS), RFC 8461 (MTA-STS, §4.1 MX matching, §4.2
 * certificate validation), RFC 4954 (AUTH), RFC 6125 (certificate names). */
#include "alerts/rules.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alerts/jsonw.h"
#include "alerts/session_json.h"
#include "policy/snapshot.h"

static const struct rule_desc rule_descs[RULE_COUNT] = {
    [RULE_STARTTLS_STRIPPED] =
        {"starttls.stripped", "STARTTLS stripped",
         "The EHLO reply lacks STARTTLS although this server offered it "
         "before, a recipient domain's MTA-STS policy names it, or its DNSSEC-secure "
         "TLSA records (DANE) make TLS mandatory."},
    [RULE_STARTTLS_TAMPERED] =
        {"starttls.tampered", "STARTTLS exchange tampered with",
         "Artefacts of tampering: a mangled STARTTLS capability, STARTTLS "
         "refused as unknown by a server that offered it, plaintext after a "
         "220 to STARTTLS, overlapping copies of the EHLO or STARTTLS reply that "
         "disagree on STARTTLS, or server packets whose TTL changed mid-session."},
    [RULE_STARTTLS_UNUSED] = {"starttls.unused", "STARTTLS offered but not used",
                              "The server offered STARTTLS and the client sent mail in the clear "
                              "anyway."},
    [RULE_STARTTLS_FALLBACK] = {"starttls.fallback", "Plaintext fallback after failed TLS",
                                "A failed STARTTLS or TLS handshake was followed by a plaintext "
                                "delivery from the same client to the same server."},
    [RULE_DELIVERY_PLAINTEXT_POLICY] = {"delivery.plaintext_policy",
                                        "Plaintext delivery to an MTA-STS domain",
                                        "Message content crossed the wire in cleartext to a "
                                        "recipient domain that publishes an MTA-STS policy."},
    [RULE_POLICY_MX_MISMATCH] = {"policy.mx_mismatch", "MX not allowed by MTA-STS policy",
                                 "The receiving server's names match none of the mx patterns of "
                                 "the recipient domain's enforce policy."},
    [RULE_POLICY_CERTIFICATE_INVALID] = {"policy.certificate_invalid",
                                         "Certificate fails MTA-STS validation",
                                         "The server certificate would fail MTA-STS validation for "
                                         "this MX and the TLS handshake with it completed."},
    [RULE_AUTH_CLEARTEXT] = {"auth.cleartext", "Cleartext SMTP authentication",
                             "AUTH PLAIN or LOGIN credentials were sent before TLS."},
    [RULE_ESMTP_MASKED_EXTENSIONS] = {"esmtp.masked_extensions",
                                      "ESMTP extensions masked on the path",
                                      "An ESMTP-inspection device replaced EHLO capabilities "
                                      "with masks (XXXA, XXXXXXXB); nothing shows that STARTTLS "
                                      "was among them."},
    [RULE_DELIVERY_PLAINTEXT_DANE] = {"delivery.plaintext_dane",
                                      "Plaintext delivery to a DANE-protected MX",
                                      "Message content crossed the wire in cleartext to a server "
                                      "whose DNSSEC-secure TLSA records make TLS mandatory."},
    [RULE_DANE_CERTIFICATE_MISMATCH] = {"dane.certificate_mismatch",
                                        "Certificate matches no DANE TLSA record",
                                        "The server's certificate chain matches none of its "
                                        "usable DNSSEC-secure TLSA records."},
};

const struct rule_desc *rule_desc(enum rule_id r)
{
    static const struct rule_desc none = {"unknown", "unknown", ""};
    return (unsigned)r < RULE_COUNT ? &rule_descs[r] : &none;
}

const char *rule_id_str(enum rule_id r)
{
    return rule_desc(r)->id;
}

const char *rule_severity_name(int sev)
{
    return sev >= SEV_HIGH ? "high" : sev == SEV_MEDIUM ? "medium" : "low";
}

const char *rule_confidence_str(enum rule_confidence c)
{
    return c == CONF_HIGH ? "high" : c == CONF_MEDIUM ? "medium" : "low";
}

/* IPv4/IPv6 literals and address literals in brackets never name an MX. */
bool rules_host_is_ip_literal(const char *h)
{
    if (!h || !*h)
        return false;
    if (h[0] == '[' || strchr(h, ':'))
        return true;
    for (const char *p = h; *p; p++)
        if (!isdigit((unsigned char)*p) && *p != '.')
            return false;
    return true;
}

bool rules_is_submission(const struct smtp_facts *f)
{
    if (f->flow.sport == 587 || f->flow.sport == 465)
        return true;
    return f->auth_mechanism && f->auth_mechanism[0] && f->auth_code >= 200 && f->auth_code < 300;
}

/* ---- policy answers ---- */

void rule_policy_set(struct rule_policy *p, const struct policy_answer *a)
{
    p->answered = true;
    p->status = a ? a->status : POLICY_ST_UNKNOWN;
    if (p->status == POLICY_ST_PENDING)
        p->status = POLICY_ST_UNKNOWN;
    bool with_entry = p->status == POLICY_ST_VALID || p->status == POLICY_ST_EXPIRED;
    if (with_entry && a->entry) {
        snprintf(p->id, sizeof p->id, "%s", a->entry->id);
        if (mtasts_policy_copy(&p->pol, &a->entry->policy) != SW_OK)
            p->status = POLICY_ST_UNKNOWN;
        p->fetched_at = a->entry->fetched_at;
        p->source = a->entry->source;
    } else if (with_entry) {
        p->status = POLICY_ST_UNKNOWN;
    }
    free(p->detail);
    p->detail = NULL;
    if (a && a->detail && p->status != POLICY_ST_VALID && !(p->detail = strdup(a->detail)))
        p->status = POLICY_ST_UNKNOWN;
}

/* A string as jansson's json_string() takes it: valid UTF-8, else the
 * member is left out (as a failed json_object_set_new() leaves it). */
static void str_like_jansson(struct jsonw *w, const char *key, const char *s)
{
    if (s && jsonw_utf8_valid(s, strlen(s)))
        jsonw_str(w, key, s);
}

void rule_policy_write(struct jsonw *w, const char *key, const struct rule_policy *p)
{
    jsonw_obj_open(w, key);
    str_like_jansson(w, "domain", p->domain);
    if (rule_policy_in_force(p)) {
        jsonw_str(w, "id", p->id);
        jsonw_str(w, "mode", mtasts_mode_str(p->pol.mode));
        jsonw_arr_open(w, "mx");
        for (size_t i = 0; i < p->pol.n_mx; i++)
            str_like_jansson(w, NULL, p->pol.mx[i]);
        jsonw_arr_close(w);
        jsonw_int(w, "max_age", p->pol.max_age);
        char t[32];
        snapshot_time_format(p->fetched_at, t);
        jsonw_str(w, "fetched_at", t);
        jsonw_str(w, "source", policy_source_str(p->source));
    } else {
        static const char *const none[] = {"id", "mode", "mx", "max_age", "fetched_at", "source"};
        for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
            jsonw_null(w, none[i]);
    }
    jsonw_str(w, "status", policy_status_str(p->status));
    str_like_jansson(w, "detail", p->detail);
    if (p->derived)
        jsonw_bool(w, "derived_from_server_name", true);
    jsonw_obj_close(w);
}

bool rule_policy_in_force(const struct rule_policy *p)
{
    return p->status == POLICY_ST_VALID || p->status == POLICY_ST_EXPIRED;
}

void rule_policy_clear(struct rule_policy *p)
{
    if (rule_policy_in_force(p))
        mtasts_policy_clear(&p->pol);
    free(p->detail);
    memset(p, 0, sizeof *p);
}

/* ---- server identity ---- */

#define NAMES_MAX (FACTS_SAN_MAX + 4)

struct names {
    const char *v[NAMES_MAX];
    bool strong[NAMES_MAX]; /* from TLS (SNI, certificate), not from SMTP text */
    size_t n;
    char cn[FACTS_HOST_MAX];
};

static void names_add(struct names *n, const char *h, bool strong)
{
    if (!h || !*h || rules_host_is_ip_literal(h) || n->n >= NAMES_MAX)
        return;
    for (size_t i = 0; i < n->n; i++)
        if (!strcasecmp(n->v[i], h))
            return;
    n->v[n->n] = h;
    n->strong[n->n++] = strong;
}

/* The CN of a subject like "CN=mx.example.org, O=..." or "/O=x/CN=mx". */
static void subject_cn(const char *subj, char *out, size_t len)
{
    out[0] = 0;
    const char *p = subj;
    while ((p = strstr(p, "CN=")) != NULL) {
        if (p == subj || p[-1] == ' ' || p[-1] == ',' || p[-1] == '/') {
            p += 3;
            size_t k = strcspn(p, ",/");
            if (k >= len)
                k = len - 1;
            memcpy(out, p, k);
            out[k] = 0;
            return;
        }
        p += 3;
    }
}

/* Server names, strongest first: SNI, certificate names (SAN, else CN),
 * banner host, EHLO reply host. IP literals are left out. */
static void server_names(const struct smtp_facts *f, struct names *n)
{
    memset(n, 0, sizeof *n);
    names_add(n, f->tls->sni, true);
    if (f->tls->cert.present) {
        for (size_t i = 0; i < f->tls->cert.n_san; i++)
            names_add(n, f->tls->cert.san_dns[i], true);
        if (f->tls->cert.n_san == 0) {
            subject_cn(facts_s(f->tls->cert.subject), n->cn, sizeof n->cn);
            names_add(n, n->cn, true);
        }
    }
    names_add(n, f->banner_host, false);
    names_add(n, f->ehlo_host, false);
}

/* RFC 6125: a certificate name matches host exactly or as "*.rest". */
static bool cert_name_matches(const char *cert, const char *host)
{
    if (!strcasecmp(cert, host))
        return true;
    if (cert[0] == '*' && cert[1] == '.') {
        const char *dot = strchr(host, '.');
        return dot && dot != host && !strcasecmp(dot + 1, cert + 2);
    }
    return false;
}

/* Does the policy name any of these server names? */
static bool policy_names_server(const struct mtasts_policy *pol, const struct names *n,
                                bool strong_only)
{
    for (size_t i = 0; i < n->n; i++) {
        if (strong_only && !n->strong[i])
            continue;
        if (mtasts_mx_match(pol, n->v[i]))
            return true;
        /* a wildcard certificate name equal to a wildcard pattern */
        for (size_t k = 0; k < pol->n_mx && n->v[i][0] == '*'; k++)
            if (!strcasecmp(pol->mx[k], n->v[i]))
                return true;
    }
    return false;
}

static bool names_have_strong(const struct names *n)
{
    for (size_t i = 0; i < n->n; i++)
        if (n->strong[i])
            return true;
    return false;
}

static void names_json(struct jsonw *w, const char *key, const struct names *n)
{
    jsonw_arr_open(w, key);
    for (size_t i = 0; i < n->n; i++)
        jsonw_wire_str(w, NULL, n->v[i]);
    jsonw_arr_close(w);
}

/* ---- which domains ---- */

static void lower_copy(char *dst, const char *src, size_t len)
{
    size_t i = 0;
    for (; src[i] && i + 1 < len; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = 0;
    while (i > 0 && dst[i - 1] == '.')
        dst[--i] = 0;
}

/* Domains already in out, by hash (open addressing, indices + 1; NULL for
 * the few derived names, searched linearly). */
struct domset {
    uint32_t *slot;
    size_t mask;
};

static uint32_t dom_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static size_t add_domain(char (*out)[FACTS_HOST_MAX], size_t n, size_t max, const char *d,
                         uint32_t *dropped, struct domset *set)
{
    char tmp[FACTS_HOST_MAX];
    lower_copy(tmp, d, sizeof tmp);
    if (!tmp[0] || rules_host_is_ip_literal(tmp))
        return n;
    for (const char *c = tmp; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f || *c == '/' || *c == '\\')
            return n; /* not a domain: never looked up */
    size_t at = 0;
    if (set && set->slot) {
        for (at = dom_hash(tmp) & set->mask; set->slot[at]; at = (at + 1) & set->mask)
            if (!strcmp(out[set->slot[at] - 1], tmp))
                return n;
    } else {
        for (size_t i = 0; i < n; i++)
            if (!strcmp(out[i], tmp))
                return n;
    }
    if (n >= max) {
        if (dropped)
            (*dropped)++;
        return n;
    }
    memcpy(out[n], tmp, sizeof tmp);
    if (set && set->slot)
        set->slot[at] = (uint32_t)n + 1;
    return n + 1;
}

/* Accepted: a 2xx reply, or no reply at all where the server's side is not
 * in the capture (asymmetric routing: only the client's packets). */
static bool rcpt_accepted(const struct smtp_facts *f, const struct facts_rcpt *r)
{
    return (r->code >= 200 && r->code < 300) || (r->code == 0 && !f->saw_s2c);
}

static bool ehlo_ok(const struct smtp_facts *f)
{
    return f->ehlo_code >= 200 && f->ehlo_code < 300;
}

size_t rules_policy_domains(const struct smtp_facts *f, char (*out)[FACTS_HOST_MAX], size_t max,
                            bool *derived, uint32_t *dropped)
{
    size_t n = 0;
    *derived = false;
    *dropped = 0;
    if (rules_is_submission(f))
        return 0;
    /* every accepted recipient's domain, those past the kept recipients
     * too (tx.domains); the decoder counts what it could not keep */
    struct domset set = {NULL, 0};
    size_t cap = 16;
    while (cap < 2 * max && cap < ((size_t)1 << 20))
        cap *= 2;
    if (max > 16 && (set.slot = calloc(cap, sizeof *set.slot)) != NULL)
        set.mask = cap - 1;
    for (size_t i = 0; i < f->n_tx; i++) {
        const struct facts_tx *t = &f->tx[i];
        for (size_t j = 0; j < t->n_rcpt; j++)
            if (rcpt_accepted(f, &t->rcpt[j]))
                n = add_domain(out, n, max, facts_s(t->rcpt[j].domain), dropped, &set);
        for (size_t j = 0; j < t->n_domains; j++)
            if (t->domains[j].accepted || (!f->saw_s2c && t->domains[j].rcpts))
                n = add_domain(out, n, max, facts_s(t->domains[j].domain), dropped, &set);
        *dropped += t->domains_dropped;
    }
    free(set.slot);
    if (n > 0)
        return n;
    /* No recipient visible: the checks that need a policy naming this MX
     * (stripped EHLO reply, certificate) try the parents of its names. */
    bool strip_candidate = ehlo_ok(f) && !f->starttls_offered && !f->tls->established;
    if (!strip_candidate && !f->tls->cert.present)
        return 0;
    *derived = true;
    if (max > RULES_DERIVED_MAX)
        max = RULES_DERIVED_MAX;
    struct names nm;
    server_names(f, &nm);
    for (size_t i = 0; i < nm.n; i++) {
        const char *p = nm.v[i];
        if (p[0] == '*')
            p++;
        for (int k = 0; k < 3; k++) {
            const char *dot = strchr(p, '.');
            if (!dot || !strchr(dot + 1, '.'))
                break; /* keep at least two labels */
            p = dot + 1;
            n = add_domain(out, n, max, p, NULL, NULL);
        }
    }
    return n;
}

size_t rules_policy_domains_max(const struct smtp_facts *f)
{
    size_t n = RULES_DERIVED_MAX;
    for (size_t i = 0; i < f->n_tx; i++)
        n += f->tx[i].n_rcpt + f->tx[i].n_domains;
    return n;
}

/* ---- helpers for the rules ---- */

static const struct facts_anomaly *find_anom(const struct smtp_facts *f, enum anomaly_kind k)
{
    for (size_t i = 0; i < f->n_anomalies; i++)
        if (f->anomalies[i].kind == k)
            return &f->anomalies[i];
    return NULL;
}

/* Overlapping copies that disagree on STARTTLS (decoder anomaly
 * overlap_starttls_conflict) inside the reply named by what ("EHLO" or
 * "STARTTLS", the detail's first word). */
static const struct facts_anomaly *overlap_starttls(const struct smtp_facts *f, const char *what)
{
    size_t wl = strlen(what);
    for (size_t i = 0; i < f->n_anomalies; i++) {
        const struct facts_anomaly *a = &f->anomalies[i];
        const char *d = facts_s(a->detail);
        if (a->kind == ANOM_OVERLAP_STARTTLS && !strncmp(d, what, wl) && d[wl] == ' ')
            return a;
    }
    return NULL;
}

static const struct facts_anomaly *find_anom_dir(const struct smtp_facts *f, enum anomaly_kind k,
                                                 enum stream_dir dir)
{
    for (size_t i = 0; i < f->n_anomalies; i++)
        if (f->anomalies[i].kind == k && f->anomalies[i].dir == dir)
            return &f->anomalies[i];
    return NULL;
}

static void ts_json(struct jsonw *w, const char *key, sw_usec t)
{
    char buf[40];
    facts_fmt_time(t, buf, sizeof buf);
    jsonw_str(w, key, buf);
}

static void anom_json(struct jsonw *w, const struct facts_anomaly *a)
{
    jsonw_obj_open(w, NULL);
    jsonw_str(w, "kind", anomaly_kind_str(a->kind));
    jsonw_str(w, "dir", a->dir == DIR_C2S ? "c2s" : "s2c");
    ts_json(w, "ts", a->ts);
    jsonw_int(w, "packet", (int64_t)a->pkt_no);
    jsonw_wire_str(w, "detail", a->detail);
    jsonw_obj_close(w);
}

static void starttls_json(struct jsonw *w, const struct smtp_facts *f)
{
    jsonw_obj_open(w, "starttls");
    jsonw_bool(w, "offered", f->starttls_offered);
    jsonw_bool(w, "requested", f->starttls_requested);
    jsonw_int_or_null(w, "reply_code", f->starttls_code);
    if (f->starttls_requested && f->starttls_ts)
        ts_json(w, "ts", f->starttls_ts);
    jsonw_bool(w, "tls_established", f->tls->established);
    jsonw_obj_close(w);
}

static bool anom_in(const struct facts_anomaly *a, const enum anomaly_kind *kinds, size_t nk)
{
    for (size_t k = 0; k < nk; k++)
        if (a->kind == kinds[k])
            return true;
    return false;
}

static void ev_anoms(struct jsonw *w, const struct smtp_facts *f, const enum anomaly_kind *kinds,
                     size_t nk)
{
    bool open = false;
    for (size_t i = 0; i < f->n_anomalies; i++)
        if (anom_in(&f->anomalies[i], kinds, nk)) {
            if (!open)
                jsonw_arr_open(w, "anomalies");
            open = true;
            anom_json(w, &f->anomalies[i]);
        }
    if (open)
        jsonw_arr_close(w);
}

static void syn_ack_json(struct jsonw *w, const char *key, uint32_t fp)
{
    char opts[8];
    snprintf(opts, sizeof opts, "%02x", FLOW_FP_OPTS(fp));
    jsonw_obj_open(w, key);
    jsonw_int(w, "ttl", FLOW_FP_TTL(fp));
    jsonw_int(w, "window", FLOW_FP_WIN(fp));
    jsonw_str(w, "options", opts);
    jsonw_obj_close(w);
}

/* Path evidence (never a verdict alone): this session's SYN-ACK against the
 * one learned from this server address's earlier session that offered
 * STARTTLS, when they differ: another stack or another path answers. */
static void ev_path(struct jsonw *w, const struct smtp_facts *f, const struct posture_view *pv)
{
    uint32_t now = f->flow.syn_ack, then = pv->server_syn_ack;
    if (!now || !then || now == then || !pv->server_offered || pv->server_by_name)
        return;
    jsonw_obj_open(w, "path");
    syn_ack_json(w, "syn_ack", now);
    syn_ack_json(w, "syn_ack_before", then);
    jsonw_str(w, "before_session_uid", pv->server_uid);
    jsonw_arr_open(w, "changed");
    if (FLOW_FP_TTL(now) != FLOW_FP_TTL(then))
        jsonw_str(w, NULL, "ttl");
    if (FLOW_FP_WIN(now) != FLOW_FP_WIN(then))
        jsonw_str(w, NULL, "window");
    if (FLOW_FP_OPTS(now) != FLOW_FP_OPTS(then))
        jsonw_str(w, NULL, "options");
    jsonw_arr_close(w);
    jsonw_obj_close(w);
}

static void ev_server_posture(struct jsonw *w, const struct posture_view *pv)
{
    if (!pv->server_offered)
        return;
    jsonw_obj_open(w, "posture");
    jsonw_obj_open(w, "server");
    jsonw_str(w, "showed", "server offered STARTTLS");
    jsonw_wire_str(w, "key", pv->server_key);
    jsonw_str(w, "by", pv->server_by_name ? "banner_host" : "address");
    ts_json(w, "ts", pv->server_ts);
    jsonw_str(w, "session_uid", pv->server_uid);
    jsonw_obj_close(w);
    jsonw_obj_close(w);
}

/* A verdict has the server's posture or the client's, never both. */
static void ev_client_posture(struct jsonw *w, const struct posture_view *pv, bool used,
                              bool failed)
{
    if (!((used && pv->client_used) || (failed && pv->client_failed)))
        return;
    jsonw_obj_open(w, "posture");
    if (used && pv->client_used) {
        jsonw_obj_open(w, "client");
        jsonw_str(w, "showed", "client used STARTTLS to this server");
        ts_json(w, "ts", pv->client_ts);
        jsonw_str(w, "session_uid", pv->client_uid);
        jsonw_obj_close(w);
    }
    /* left out when the detail is not valid UTF-8 (as the tree built with
     * jansson did) */
    if (failed && pv->client_failed &&
        jsonw_utf8_valid(pv->client_failed_detail, strlen(pv->client_failed_detail))) {
        jsonw_obj_open(w, "client_failure");
        jsonw_str(w, "showed",
                  pv->client_failed_by_name
                      ? "client's TLS attempt to a server of the same name failed"
                      : "client's TLS attempt to this server failed");
        ts_json(w, "ts", pv->client_failed_ts);
        jsonw_str(w, "session_uid", pv->client_failed_uid);
        jsonw_str(w, "detail", pv->client_failed_detail);
        jsonw_obj_close(w);
    }
    jsonw_obj_close(w);
}

/* Policies consulted, as mta_sts objects, for the evidence. */
static void ev_policies(struct jsonw *w, const struct rule_policy *pols, size_t n, bool valid_only)
{
    bool open = false;
    for (size_t i = 0; i < n; i++) {
        if (!pols[i].answered || (valid_only && !rule_policy_in_force(&pols[i])))
            continue;
        if (!open)
            jsonw_arr_open(w, "policies");
        open = true;
        rule_policy_write(w, NULL, &pols[i]);
    }
    if (open)
        jsonw_arr_close(w);
}

struct clear_data {
    bool any;
    uint64_t bytes;
    uint64_t pkt_no;
    sw_usec ts;
    size_t n_tx;
};

static void clear_data_of(const struct smtp_facts *f, struct clear_data *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < f->n_tx; i++) {
        const struct facts_tx *t = &f->tx[i];
        if (!(t->data_sent && t->cleartext))
            continue;
        if (!c->any) {
            c->pkt_no = t->pkt_no;
            c->ts = t->ts;
        }
        c->any = true;
        c->bytes += t->data_bytes;
        c->n_tx++;
    }
}

static void clear_data_json(struct jsonw *w, const struct clear_data *c)
{
    jsonw_obj_open(w, "cleartext_data");
    jsonw_int(w, "bytes", (int64_t)c->bytes);
    jsonw_int(w, "transactions", (int64_t)c->n_tx);
    ts_json(w, "mail_from_ts", c->ts);
    jsonw_int(w, "mail_from_packet", (int64_t)c->pkt_no);
    jsonw_obj_close(w);
}

/* Index of the most relevant policy for mta_sts: enforce naming the server,
 * enforce, testing naming the server, testing, unknown, none; -1 if none. */
static int primary_policy(const struct rule_policy *pols, size_t n, const struct names *nm)
{
    int best = -1, best_score = -1;
    for (size_t i = 0; i < n; i++) {
        int s = 0;
        const struct rule_policy *p = &pols[i];
        if (rule_policy_in_force(p)) {
            bool names = policy_names_server(&p->pol, nm, false);
            if (p->pol.mode == MTASTS_MODE_ENFORCE)
                s = names ? 7 : 6;
            else if (p->pol.mode == MTASTS_MODE_TESTING)
                s = names ? 5 : 4;
            else
                s = 2;
        } else if (p->status == POLICY_ST_UNKNOWN) {
            s = 3;
        } else {
            s = 1;
        }
        if (p->derived && !rule_policy_in_force(p))
            continue; /* a guessed domain without policy says nothing */
        if (s > best_score) {
            best_score = s;
            best = (int)i;
        }
    }
    return best;
}

/* Whether policy p beats the one at best (mode m): a stronger mode, or the
 * same mode not expired where the best one is. */
static bool policy_better(const struct rule_policy *pols, int best, enum mtasts_mode m,
                          const struct rule_policy *p)
{
    if (p->pol.mode != m)
        return p->pol.mode > m;
    return best >= 0 && pols[best].status == POLICY_ST_EXPIRED && p->status == POLICY_ST_VALID;
}

/* The strongest policy in force naming this server: enforce > testing,
 * valid > expired. */
static int policy_naming_server(const struct rule_policy *pols, size_t n, const struct names *nm,
                                enum mtasts_mode *mode)
{
    int idx = -1;
    *mode = MTASTS_MODE_NONE;
    for (size_t i = 0; i < n; i++) {
        const struct rule_policy *p = &pols[i];
        if (!rule_policy_in_force(p) || p->pol.mode == MTASTS_MODE_NONE)
            continue;
        if (!policy_names_server(&p->pol, nm, false))
            continue;
        if (policy_better(pols, idx, *mode, p)) {
            *mode = p->pol.mode;
            idx = (int)i;
        }
    }
    return idx;
}

/* The strongest policy in force among the recipient domains (not derived). */
static int recipient_policy(const struct rule_policy *pols, size_t n, enum mtasts_mode *mode)
{
    int idx = -1;
    *mode = MTASTS_MODE_NONE;
    for (size_t i = 0; i < n; i++) {
        const struct rule_policy *p = &pols[i];
        if (p->derived || !rule_policy_in_force(p) || p->pol.mode == MTASTS_MODE_NONE)
            continue;
        if (policy_better(pols, idx, *mode, p)) {
            *mode = p->pol.mode;
            idx = (int)i;
        }
    }
    return idx;
}

/* An alert that rests on an expired policy (RFC 8461 §5.1: judged with
 * until a refresh succeeds) is one step less certain. */
static enum rule_confidence conf_expired(enum rule_confidence c, const struct rule_policy *pols,
                                         int idx)
{
    if (idx < 0 || pols[idx].status != POLICY_ST_EXPIRED)
        return c;
    return c == CONF_HIGH ? CONF_MEDIUM : CONF_LOW;
}

static enum rule_confidence conf_max(enum rule_confidence a, enum rule_confidence b)
{
    return a > b ? a : b;
}

/* Takes ev's text (an empty evidence when out of memory). */
static void push(struct verdict *out, size_t *n, enum rule_id r, int sev, enum rule_confidence c,
                 const char *action, int policy, struct jsonw *ev, size_t reason_end)
{
    if (*n >= RULES_VERDICTS_MAX) {
        jsonw_free(ev);
        return;
    }
    size_t len = ev->len;
    char *text = jsonw_take(ev);
    if (!text)
        len = reason_end = 0;
    out[*n] = (struct verdict){r, sev, c, action, policy, text, len, reason_end};
    (*n)++;
}

/* ---- the rules ---- */

/* Masked capability tokens of the EHLO reply (decoder anomaly cap_mangled,
 * server side) and whether one of them plausibly hid STARTTLS. */
struct masked {
    size_t n;        /* masked tokens */
    size_t n_len8;   /* ... of STARTTLS's length */
    bool excluded;   /* CHUNKING, 8BITMIME and SMTPUTF8 are all visible */
    bool plausible;  /* a length-8 mask plausibly hid STARTTLS */
    bool strong;     /* ... by posture or by exclusion, not only by being alone */
    const char *why; /* the evidence, for the alert */
};

struct judge {
    const struct smtp_facts *f;
    const struct posture_view *pv;
    const struct rule_policy *pols;
    size_t n_pols;
    struct names nm;
    struct clear_data cd;
    struct masked mk;
    int primary;
    bool submission;
    char *evbuf; /* EVIDENCE_SCRATCH bytes (evidence_new) */
};

/* The judge's scratch for a verdict's evidence, written before the verdict
 * takes a copy of its exact length: most evidence is under a kilobyte, and
 * a small allocation is much cheaper than growing a writer's. */
#define EVIDENCE_SCRATCH 2048

/* A verdict's evidence starts with the session's uid and the reason;
 * returns where the reason ends (struct verdict.reason_end). */
static size_t evidence_new(struct jsonw *w, const struct judge *j, const char *reason)
{
    const struct smtp_facts *f = j->f;
    jsonw_init_buf(w, j->evbuf, EVIDENCE_SCRATCH);
    jsonw_str(w, "session_uid", f->flow.uid);
    jsonw_str(w, "reason", reason);
    return w->len;
}

static bool cap_visible(const struct smtp_facts *f, const char *kw)
{
    size_t kl = strlen(kw);
    const char *c = f->caps;
    for (size_t i = 0; i < f->n_caps; i++, c += strlen(c) + 1)
        if (!strncasecmp(c, kw, kl) && (c[kl] == 0 || c[kl] == ' ' || c[kl] == '='))
            return true;
    return false;
}

/* STARTTLS is 8 letters. A mask of another length never hid it. One of
 * length 8 plausibly did when this server offered STARTTLS before (posture),
 * when the other common extensions of that length (CHUNKING, 8BITMIME,
 * SMTPUTF8) are all visible unmasked, so nothing else of the server's list
 * fits there, or when it is the only mask (a box rewriting one extension:
 * the classic 250-XXXXXXXA). Several masks with none of these (Exchange 2003
 * behind a box masking TURN, CHUNKING, VRFY, X-EXPS ...) are an inspection
 * device, not evidence about STARTTLS. */
static void masked_of(const struct smtp_facts *f, const struct posture_view *pv, struct masked *mk)
{
    memset(mk, 0, sizeof *mk);
    for (size_t i = 0; i < f->n_anomalies; i++) {
        const struct facts_anomaly *a = &f->anomalies[i];
        if (a->kind != ANOM_CAP_MANGLED || a->dir != DIR_S2C)
            continue;
        const char *d = facts_s(a->detail);
        mk->n++;
        if (!strncmp(d, "token=", 6) && strlen(d + 6) == 8)
            mk->n_len8++;
    }
    mk->n += f->anomalies_dropped ? 1 : 0; /* more than counted: never "alone" */
    if (!mk->n_len8 || f->starttls_offered)
        return;
    mk->excluded =
        cap_visible(f, "CHUNKING") && cap_visible(f, "8BITMIME") && cap_visible(f, "SMTPUTF8");
    if (pv->server_offered) {
        mk->plausible = mk->strong = true;
        mk->why = "a capability masked where STARTTLS stood: this server offered STARTTLS "
                  "before";
    } else if (mk->excluded) {
        mk->plausible = mk->strong = true;
        mk->why = "a capability token mangled where STARTTLS stood";
    } else if (mk->n == 1) {
        mk->plausible = true;
        mk->why = "the only masked capability has STARTTLS's length";
    }
}

/* A TTL shift that means something: on the packets of the EHLO reply, the
 * STARTTLS reply or the plaintext after 220, by more than a route change
 * (decoder anomaly ttl_shift_reply). ttl_shift elsewhere in the session is
 * route noise, kept on the session record only. */
static bool ttl_shift(const struct smtp_facts *f)
{
    return find_anom(f, ANOM_TTL_SHIFT_REPLY) != NULL;
}

static void rule_stripped(const struct judge *j, struct verdict *out, size_t *n)
{
    const struct smtp_facts *f = j->f;
    /* A padded reply (capabilities_dropped) is judged all the same: the
     * decoder scans every line for STARTTLS, kept or not. */
    if (f->tls->established || f->tls->implicit || j->mk.plausible)
        return;
    /* two copies of the EHLO reply, one without STARTTLS: the client may
     * have seen that one, whichever copy the sensor kept */
    bool ovl = overlap_starttls(f, "EHLO") != NULL;
    bool no_starttls = ehlo_ok(f) && (!f->starttls_offered || ovl);
    /* EHLO refused (forcing HELO) by a server that offered STARTTLS before */
    bool ehlo_refused = f->ehlo_code >= 400 && j->pv->server_offered;
    if (!no_starttls && !ehlo_refused)
        return;
    enum mtasts_mode mode = MTASTS_MODE_NONE;
    int pidx = j->submission ? -1 : policy_naming_server(j->pols, j->n_pols, &j->nm, &mode);
    if (!j->pv->server_offered && pidx < 0)
        return;
    int sev = SEV_LOW;
    enum rule_confidence conf = CONF_LOW;
    if (j->pv->server_offered) {
        sev = j->pv->server_by_name ? SEV_MEDIUM : SEV_HIGH;
        conf = CONF_MEDIUM;
    }
    if (mode == MTASTS_MODE_ENFORCE) {
        sev = SEV_HIGH;
        conf = CONF_HIGH;
    } else if (mode == MTASTS_MODE_TESTING) {
        sev = sev > SEV_MEDIUM ? sev : SEV_MEDIUM;
        conf = conf_max(conf, CONF_MEDIUM);
    }
    if (ttl_shift(f) || (j->pv->server_offered && mode != MTASTS_MODE_NONE))
        conf = CONF_HIGH;
    if (mode != MTASTS_MODE_NONE && !ttl_shift(f))
        conf = conf_expired(conf, j->pols, pidx);
    /* bytes missing from the server's side: the reply seen may be partial */
    bool gap = false;
    for (size_t i = 0; i < f->n_anomalies; i++)
        gap |= f->anomalies[i].kind == ANOM_GAP && f->anomalies[i].dir == DIR_S2C;
    if (gap)
        conf = CONF_LOW;
    struct jsonw ev;
    size_t re = evidence_new(
        &ev, j,
        ehlo_refused && !no_starttls ? "EHLO refused by a server that offered STARTTLS before"
        : ovl ? "EHLO reply without STARTTLS in one of two overlapping copies (the other "
                "offers it)"
        : gap ? "EHLO reply without STARTTLS (bytes missing from the "
                "server side: the reply may be incomplete)"
        : f->caps_dropped ? "EHLO reply without STARTTLS, padded past the capability "
                            "bounds (every line scanned)"
                          : "EHLO reply without STARTTLS");
    session_json_caps(&ev, f);
    jsonw_int_or_null(&ev, "ehlo_reply_code", f->ehlo_code);
    names_json(&ev, "server_names", &j->nm);
    ev_server_posture(&ev, j->pv);
    ev_path(&ev, f, j->pv);
    static const enum anomaly_kind k[] = {ANOM_TTL_SHIFT_REPLY,
                                          ANOM_TTL_SHIFT,
                                          ANOM_IPID_SHIFT,
                                          ANOM_STARTTLS_UNKNOWN_CMD,
                                          ANOM_GAP,
                                          ANOM_EHLO_PADDED,
                                          ANOM_GREETING_CLIENT_ADDR,
                                          ANOM_OVERLAP_STARTTLS};
    ev_anoms(&ev, f, k, 8);
    if (j->cd.any)
        clear_data_json(&ev, &j->cd);
    ev_policies(&ev, j->pols, j->n_pols, true);
    push(out, n, RULE_STARTTLS_STRIPPED, sev, conf, "starttls-stripped",
         pidx >= 0 ? pidx : j->primary, &ev, re);
}

static void rule_tampered(const struct judge *j, bool stripped, struct verdict *out, size_t *n)
{
    const struct smtp_facts *f = j->f;
    int sev = 0;
    enum rule_confidence conf = CONF_LOW;
    const char *action = NULL, *reason = NULL;
    const struct facts_anomaly *a;
    if ((a = overlap_starttls(f, "EHLO")) != NULL || (a = overlap_starttls(f, "STARTTLS"))) {
        /* the client's stack took one copy, the sensor the other: a reply
         * offering (or accepting) STARTTLS in one copy only was injected or
         * rewritten on the path */
        sev = SEV_HIGH;
        conf = CONF_HIGH;
        action = "starttls-overlap-conflict";
        reason = facts_s(a->detail)[0] == 'E'
                     ? "STARTTLS offered in one copy of the EHLO reply and absent from another "
                       "copy of the same bytes (an injected or rewritten reply)"
                     : "STARTTLS accepted (220) in one copy of its reply and not in another copy "
                       "of the same bytes (an injected or rewritten reply)";
    } else if ((a = find_anom_dir(f, ANOM_CAP_MANGLED, DIR_C2S)) != NULL) {
        sev = SEV_HIGH;
        conf = CONF_HIGH;
        action = "starttls-command-mangled";
        reason = "the client's STARTTLS command arrived mangled (rewritten in transit)";
    } else if (j->mk.plausible) {
        /* high with posture, exclusion, or a policy that wants TLS here */
        enum mtasts_mode mode = MTASTS_MODE_NONE;
        if (!j->submission) {
            recipient_policy(j->pols, j->n_pols, &mode);
            if (mode == MTASTS_MODE_NONE)
                policy_naming_server(j->pols, j->n_pols, &j->nm, &mode);
        }
        sev = j->mk.strong || mode != MTASTS_MODE_NONE ? SEV_HIGH : SEV_MEDIUM;
        conf = j->mk.strong ? CONF_HIGH : CONF_MEDIUM;
        action = "starttls-capability-mangled";
        reason = j->mk.why;
    } else if (f->starttls_offered && (f->starttls_code == 500 || f->starttls_code == 502 ||
                                       find_anom(f, ANOM_STARTTLS_UNKNOWN_CMD))) {
        sev = SEV_HIGH;
        conf = CONF_HIGH;
        action = "starttls-command-rejected";
        reason = "STARTTLS answered as an unknown command by a server that offered it";
    } else if (!f->starttls_offered && ehlo_ok(f) && f->starttls_requested &&
               f->starttls_code == 220) {
        sev = SEV_MEDIUM;
        conf = CONF_MEDIUM;
        action = "starttls-hidden-in-ehlo";
        reason = "the EHLO reply lacked STARTTLS, yet the server accepted STARTTLS with 220 "
                 "(the capability was removed on the way)";
    } else if (find_anom(f, ANOM_NOT_TLS_AFTER_STARTTLS)) {
        sev = SEV_LOW;
        conf = CONF_LOW;
        action = "starttls-plaintext-after-220";
        reason = f->tls->client_hello && find_anom_dir(f, ANOM_NOT_TLS_AFTER_STARTTLS, DIR_S2C)
                     ? "220 to STARTTLS, then the client's ClientHello answered in plaintext "
                       "(a failed TLS attempt: a plaintext retry is starttls.fallback)"
                     : "220 to STARTTLS, then plaintext instead of a TLS handshake (a "
                       "TLS-inspecting device, a capture written after decryption, or a proxy "
                       "answering STARTTLS)";
    } else if (stripped) {
        /* the weaker signs below are evidence of that alert already */
    } else if (ttl_shift(f) && !f->tls->established) {
        /* alone, never above low (alerts/RULES.md) */
        sev = SEV_LOW;
        conf = CONF_LOW;
        action = "server-ttl-shift";
        reason = "the reply that decides on STARTTLS came with another TTL than the banner "
                 "(another host may answer)";
    } else if (find_anom(f, ANOM_EHLO_PADDED) && !f->starttls_offered && ehlo_ok(f) &&
               !f->tls->established) {
        sev = SEV_LOW;
        conf = CONF_LOW;
        action = "ehlo-reply-padded";
        reason = "EHLO reply padded past the capability bounds, without STARTTLS";
    }
    if (!action)
        return;
    if (sev == SEV_HIGH && ttl_shift(f))
        conf = CONF_HIGH;
    struct jsonw ev;
    size_t re = evidence_new(&ev, j, reason);
    session_json_caps(&ev, f);
    starttls_json(&ev, f);
    static const enum anomaly_kind k[] = {ANOM_CAP_MANGLED,
                                          ANOM_STARTTLS_UNKNOWN_CMD,
                                          ANOM_NOT_TLS_AFTER_STARTTLS,
                                          ANOM_TTL_SHIFT_REPLY,
                                          ANOM_TTL_SHIFT,
                                          ANOM_IPID_SHIFT,
                                          ANOM_STARTTLS_REFUSED,
                                          ANOM_EHLO_PADDED,
                                          ANOM_GREETING_CLIENT_ADDR,
                                          ANOM_OVERLAP_STARTTLS,
                                          ANOM_OVERLAP_CONFLICT};
    ev_anoms(&ev, f, k, 11);
    ev_server_posture(&ev, j->pv);
    ev_path(&ev, f, j->pv);
    if (j->cd.any)
        clear_data_json(&ev, &j->cd);
    ev_policies(&ev, j->pols, j->n_pols, true);
    push(out, n, RULE_STARTTLS_TAMPERED, sev, conf, action, j->primary, &ev, re);
}

/* Cleartext content after a failed TLS attempt: in this session (STARTTLS
 * refused, or accepted and the client's ClientHello not answered by a
 * handshake), or an earlier session of this client to this server or one of
 * the same name, within the fallback window (posture). */
static bool fallback_applies(const struct judge *j, bool *in_session)
{
    const struct smtp_facts *f = j->f;
    *in_session = false;
    if (!j->cd.any || (f->tls->established && !find_anom(f, ANOM_NOT_TLS_AFTER_STARTTLS)))
        return false;
    if (f->starttls_requested &&
        (f->starttls_code >= 400 ||
         (f->starttls_code == 220 && f->tls->client_hello && !f->tls->established))) {
        *in_session = true;
        return true;
    }
    return j->pv->client_failed;
}

/* Direct tampering evidence explains why STARTTLS was not used. */
static bool tampered_directly(const struct judge *j)
{
    const struct smtp_facts *f = j->f;
    return j->mk.plausible || find_anom_dir(f, ANOM_CAP_MANGLED, DIR_C2S) ||
           find_anom(f, ANOM_OVERLAP_STARTTLS) ||
           (f->starttls_offered && (f->starttls_code == 500 || f->starttls_code == 502 ||
                                    find_anom(f, ANOM_STARTTLS_UNKNOWN_CMD)));
}

static void rule_unused(const struct judge *j, struct verdict *out, size_t *n)
{
    const struct smtp_facts *f = j->f;
    bool in_session;
    if (!f->starttls_offered || f->starttls_requested || !j->cd.any || f->tls->established ||
        fallback_applies(j, &in_session) || tampered_directly(j))
        return;
    int sev = SEV_LOW;
    enum rule_confidence conf = CONF_LOW;
    enum mtasts_mode mode;
    int pidx = recipient_policy(j->pols, j->n_pols, &mode);
    if (mode != MTASTS_MODE_NONE) {
        sev = SEV_MEDIUM;
        conf = conf_expired(CONF_MEDIUM, j->pols, pidx);
    }
    if (j->pv->client_used) {
        sev = SEV_MEDIUM;
        conf = CONF_HIGH;
    }
    struct jsonw ev;
    size_t re =
        evidence_new(&ev, j,
                     j->pv->client_used ? "STARTTLS offered and not used by a client that used it "
                                          "to this server before"
                                        : "STARTTLS offered and not used; content sent in clear");
    session_json_caps(&ev, f);
    starttls_json(&ev, f);
    clear_data_json(&ev, &j->cd);
    ev_client_posture(&ev, j->pv, true, false);
    ev_policies(&ev, j->pols, j->n_pols, true);
    push(out, n, RULE_STARTTLS_UNUSED, sev, conf, "starttls-not-used",
         pidx >= 0 ? pidx : j->primary, &ev, re);
}

static void rule_fallback(const struct judge *j, struct verdict *out, size_t *n)
{
    const struct smtp_facts *f = j->f;
    bool in_session;
    if (!fallback_applies(j, &in_session))
        return;
    /* high when the server offered STARTTLS again in the plaintext session
     * (it does TLS; something broke the attempt) or a recipient's policy is
     * enforce */
    bool again = !in_session && f->starttls_offered;
    int sev = again ? SEV_HIGH : SEV_MEDIUM;
    enum rule_confidence conf = CONF_MEDIUM;
    enum mtasts_mode mode;
    int pidx = recipient_policy(j->pols, j->n_pols, &mode);
    if (mode == MTASTS_MODE_ENFORCE) {
        sev = SEV_HIGH;
        conf = conf_expired(CONF_HIGH, j->pols, pidx);
    }
    char reason[160];
    if (in_session && f->starttls_code != 220)
        snprintf(reason, sizeof reason, "STARTTLS answered %d, then content sent in clear",
                 f->starttls_code);
    else if (in_session)
        snprintf(reason, sizeof reason,
                 "STARTTLS answered 220, the TLS handshake not completed, then content sent "
                 "in clear");
    else
        snprintf(reason, sizeof reason,
                 "plaintext delivery after a failed TLS attempt by the same client%s%s",
                 j->pv->client_failed_by_name ? " to a server of the same name" : "",
                 again ? ", STARTTLS offered again" : "");
    struct jsonw ev;
    size_t re = evidence_new(&ev, j, reason);
    starttls_json(&ev, f);
    clear_data_json(&ev, &j->cd);
    static const enum anomaly_kind k[] = {ANOM_STARTTLS_REFUSED, ANOM_TLS_ALERT};
    ev_anoms(&ev, f, k, 2);
    if (!in_session)
        ev_client_posture(&ev, j->pv, false, true);
    ev_policies(&ev, j->pols, j->n_pols, true);
    push(out, n, RULE_STARTTLS_FALLBACK, sev, conf, "starttls-fallback-plaintext",
         pidx >= 0 ? pidx : j->primary, &ev, re);
}

static void rule_plaintext_policy(const struct judge *j, struct verdict *out, size_t *n)
{
    if (!j->cd.any || j->submission)
        return;
    enum mtasts_mode mode;
    int pidx = recipient_policy(j->pols, j->n_pols, &mode);
    if (pidx < 0)
        return;
    bool enforce = mode == MTASTS_MODE_ENFORCE;
    struct jsonw ev;
    size_t re = evidence_new(&ev, j,
                             enforce ? "content sent in clear to a domain whose MTA-STS policy is "
                                       "enforce"
                                     : "content sent in clear to a domain whose MTA-STS policy is "
                                       "testing");
    clear_data_json(&ev, &j->cd);
    starttls_json(&ev, j->f);
    ev_policies(&ev, j->pols, j->n_pols, true);
    push(out, n, RULE_DELIVERY_PLAINTEXT_POLICY, enforce ? SEV_HIGH : SEV_LOW,
         conf_expired(CONF_HIGH, j->pols, pidx),
         enforce ? "plaintext-delivery-enforce" : "plaintext-delivery-testing", pidx, &ev, re);
}

static void rule_mx_mismatch(const struct judge *j, struct verdict *out, size_t *n)
{
    if (j->submission || j->nm.n == 0)
        return;
    int pidx = -1;
    for (size_t i = 0; i < j->n_pols; i++) {
        const struct rule_policy *p = &j->pols[i];
        if (p->derived || !rule_policy_in_force(p) || p->pol.mode != MTASTS_MODE_ENFORCE)
            continue;
        if (!policy_names_server(&p->pol, &j->nm, false)) {
            pidx = (int)i;
            break;
        }
    }
    if (pidx < 0)
        return;
    bool strong = names_have_strong(&j->nm);
    struct jsonw ev;
    size_t re = evidence_new(&ev, j,
                             "the server's names match none of the enforce policy's mx "
                             "patterns");
    names_json(&ev, "server_names", &j->nm);
    jsonw_str(&ev, "names_from", strong ? "tls" : "smtp");
    if (j->cd.any)
        clear_data_json(&ev, &j->cd);
    ev_policies(&ev, j->pols, j->n_pols, true);
    push(out, n, RULE_POLICY_MX_MISMATCH, strong ? SEV_HIGH : SEV_MEDIUM,
         conf_expired(strong ? CONF_HIGH : CONF_MEDIUM, j->pols, pidx), "mx-not-in-policy", pidx,
         &ev, re);
}

/* "2026-01-02T03:04:05Z" (or with fractions / offset-free) to Unix seconds;
 * false when it does not parse. */
static bool parse_rfc3339(const char *s, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *e = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!e)
        return false;
    *out = (int64_t)timegm(&tm);
    return true;
}

static void rule_certificate(const struct judge *j, struct verdict *out, size_t *n)
{
    const struct smtp_facts *f = j->f;
    const struct facts_x509 *c = &f->tls->cert;
    if (j->submission || !c->present || !f->tls->established)
        return;
    if (f->tls->alert_level == 2)
        return; /* a fatal alert: the session did not go on */
    for (size_t i = 0; i < j->n_pols; i++) {
        const struct rule_policy *p = &j->pols[i];
        if (!rule_policy_in_force(p) || p->pol.mode != MTASTS_MODE_ENFORCE)
            continue;
        if (p->derived && !policy_names_server(&p->pol, &j->nm, false))
            continue; /* a guessed domain must name this server to matter */
        const char *problems[4];
        size_t n_problems = 0;
        if (c->self_signed)
            problems[n_problems++] = "self-signed";
        int64_t now = f->flow.start / SW_USEC_PER_SEC, t;
        if (c->not_after && parse_rfc3339(c->not_after, &t) && t < now)
            problems[n_problems++] = "expired";
        if (c->not_before && parse_rfc3339(c->not_before, &t) && t > now)
            problems[n_problems++] = "not yet valid";
        /* names: the certificate must name the MX the client meant (SNI when
         * the policy allows it), else some host the policy allows */
        bool sni_ok = f->tls->sni && f->tls->sni[0] && mtasts_mx_match(&p->pol, f->tls->sni);
        bool name_ok = false;
        char cn[FACTS_HOST_MAX] = "";
        const char *cnames[FACTS_SAN_MAX + 1];
        size_t nc = 0;
        for (size_t k = 0; k < c->n_san && nc < FACTS_SAN_MAX; k++)
            cnames[nc++] = c->san_dns[k];
        if (nc == 0) {
            subject_cn(facts_s(c->subject), cn, sizeof cn);
            if (cn[0])
                cnames[nc++] = cn;
        }
        for (size_t k = 0; k < nc && !name_ok; k++) {
            if (sni_ok)
                name_ok = cert_name_matches(cnames[k], f->tls->sni);
            else if (mtasts_mx_match(&p->pol, cnames[k]))
                name_ok = true;
            else
                for (size_t m = 0; m < p->pol.n_mx && !name_ok; m++)
                    name_ok = !strcasecmp(p->pol.mx[m], cnames[k]);
        }
        if (!name_ok)
            problems[n_problems++] = sni_ok ? "certificate does not name the SNI host"
                                            : "certificate names match no mx pattern";
        if (n_problems == 0)
            continue;
        /* the client's first record after its Finished an alert: it
         * refused the certificate (TLS <= 1.2) */
        bool refused = f->tls->client_after == FACTS_TLS_AFTER_ALERT;
        struct jsonw ev;
        size_t re = evidence_new(&ev, j,
                                 refused ? "the certificate fails MTA-STS validation and the TLS "
                                           "handshake with it completed; the client refused it: "
                                           "it closed TLS with an alert before sending any data"
                                         : "the certificate fails MTA-STS validation and the TLS "
                                           "handshake with it completed");
        if (refused)
            jsonw_bool(&ev, "client_refused", true);
        jsonw_arr_open(&ev, "problems");
        for (size_t k = 0; k < n_problems; k++)
            jsonw_str(&ev, NULL, problems[k]);
        jsonw_arr_close(&ev);
        jsonw_obj_open(&ev, "certificate");
        jsonw_wire_str(&ev, "subject", c->subject);
        jsonw_wire_str(&ev, "issuer", c->issuer);
        jsonw_arr_open(&ev, "names");
        for (size_t k = 0; k < nc; k++)
            jsonw_wire_str(&ev, NULL, cnames[k]);
        jsonw_arr_close(&ev);
        jsonw_wire_str(&ev, "not_before", c->not_before);
        jsonw_wire_str(&ev, "not_after", c->not_after);
        jsonw_bool(&ev, "self_signed", c->self_signed);
        jsonw_wire_str(&ev, "sha256", c->sha256);
        jsonw_obj_close(&ev);
        jsonw_wire_str_or_null(&ev, "sni", f->tls->sni);
        ev_policies(&ev, j->pols, j->n_pols, true);
        push(out, n, RULE_POLICY_CERTIFICATE_INVALID, refused ? SEV_LOW : SEV_HIGH,
             conf_expired(p->derived ? CONF_MEDIUM : CONF_HIGH, j->pols, (int)i),
             "certificate-fails-mta-sts", (int)i, &ev, re);
        return;
    }
}

static void rule_auth(const struct judge *j, struct verdict *out, size_t *n)
{
    const struct smtp_facts *f = j->f;
    if (!f->auth_cleartext)
        return;
    const char *mech = facts_s(f->auth_mechanism);
    if (strcasecmp(mech, "PLAIN") && strcasecmp(mech, "LOGIN"))
        return;
    /* 500-504: the command itself was refused, before any credential */
    if (f->auth_code >= 500 && f->auth_code <= 504)
        return;
    bool accepted = f->auth_code >= 200 && f->auth_code < 300;
    struct jsonw ev;
    size_t re = evidence_new(
        &ev, j, accepted ? "credentials sent in clear and accepted" : "credentials sent in clear");
    jsonw_obj_open(&ev, "auth");
    jsonw_wire_str(&ev, "mechanism", f->auth_mechanism);
    jsonw_int_or_null(&ev, "reply_code", f->auth_code);
    jsonw_obj_close(&ev);
    starttls_json(&ev, f);
    push(out, n, RULE_AUTH_CLEARTEXT, accepted ? SEV_HIGH : SEV_MEDIUM, CONF_HIGH,
         "cleartext-credentials", -1, &ev, re);
}

/* Masks that are not evidence about STARTTLS: the inspection device itself,
 * reported low with the masked tokens. */
static void rule_masked(const struct judge *j, struct verdict *out, size_t *n)
{
    const struct smtp_facts *f = j->f;
    if (!j->mk.n || j->mk.plausible || find_anom_dir(f, ANOM_CAP_MANGLED, DIR_C2S))
        return;
    struct jsonw ev;
    size_t re = evidence_new(&ev, j,
                             "EHLO capabilities masked by an ESMTP-inspection device; "
                             "nothing shows STARTTLS among them");
    session_json_caps(&ev, f);
    starttls_json(&ev, f);
    static const enum anomaly_kind k[] = {ANOM_CAP_MANGLED};
    ev_anoms(&ev, f, k, 1);
    ev_server_posture(&ev, j->pv);
    push(out, n, RULE_ESMTP_MASKED_EXTENSIONS, SEV_LOW, CONF_HIGH, "esmtp-extensions-masked",
         j->primary, &ev, re);
}

size_t rules_judge(const struct smtp_facts *f, const struct posture_view *pv,
                   const struct rule_policy *pols, size_t n_pols, struct verdict *out)
{
    char evbuf[EVIDENCE_SCRATCH];
    struct judge j = {.f = f, .pv = pv, .pols = pols, .n_pols = n_pols, .evbuf = evbuf};
    server_names(f, &j.nm);
    clear_data_of(f, &j.cd);
    j.primary = primary_policy(pols, n_pols, &j.nm);
    j.submission = rules_is_submission(f);
    masked_of(f, pv, &j.mk);
    size_t n = 0;
    rule_stripped(&j, out, &n);
    rule_tampered(&j, n > 0, out, &n);
    rule_unused(&j, out, &n);
    rule_fallback(&j, out, &n);
    rule_plaintext_policy(&j, out, &n);
    rule_mx_mismatch(&j, out, &n);
    rule_certificate(&j, out, &n);
    rule_auth(&j, out, &n);
    rule_masked(&j, out, &n);
    return n;
}

void rules_verdicts_clear(struct verdict *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].evidence);
        v[i].evidence = NULL;
        v[i].evidence_len = 0;
    }
}
