/* SPDX-License-Identifier: Apache-2.0 */
/* tlsrpt.c: TLS-RPT aggregation: sessions counted per UTC day, policy
 * domain and policy, with failure rows per result type and addresses;
 * reports written as RFC 8460 §4 JSON files named per §5.3. Follows
 * RFC 8460 (TLS-RPT), RFC 8461 §4.1 (MX matching), RFC 7672 (DANE). */
#include "alerts/tlsrpt.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alerts/alog.h"
#include "policy/dane.h"
#include "policy/mtasts.h"
#include "policy/snapshot.h"

#define TLSRPT_BUCKETS     4096
#define TLSRPT_REPORTS_MAX 100000 /* (day, domain) reports held */
#define TLSRPT_DETAILS_MAX 1000   /* failure rows per policy */
#define DAY                86400

struct detail {
    char result[32];
    char sip[64], mx[FACTS_HOST_MAX], rip[64];
    uint64_t count;
};

struct pol {
    char type[8];  /* "sts" or "tlsa" */
    char *string;  /* policy-string lines, LF between */
    char *mx_host; /* mx-host lines, LF between */
    uint64_t ok, fail;
    struct detail *d;
    size_t n_d, cap_d;
};

struct report {
    struct report *next; /* hash chain */
    int64_t day;         /* Unix seconds of 00:00:00Z */
    char domain[FACTS_HOST_MAX];
    struct pol *p;
    size_t n_p;
    bool dirty; /* changed since written */
};

struct tlsrpt {
    char *dir, *org, *contact;
    struct report *b[TLSRPT_BUCKETS];
    size_t n_reports;
    int64_t today; /* tlsrpt_tick's last UTC day, -1 before the first */
    struct tlsrpt_stats st;
};

struct tlsrpt *tlsrpt_new(const struct tlsrpt_cfg *cfg)
{
    struct tlsrpt *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    const char *org = cfg->organization && *cfg->organization ? cfg->organization : "stripwatch";
    char contact[300];
    if (cfg->contact && *cfg->contact)
        snprintf(contact, sizeof contact, "%s", cfg->contact);
    else
        snprintf(contact, sizeof contact, "postmaster@%s", org);
    t->dir = strdup(cfg->dir ? cfg->dir : ".");
    t->org = strdup(org);
    t->contact = strdup(contact);
    t->today = -1;
    if (!t->dir || !t->org || !t->contact) {
        tlsrpt_free(t);
        return NULL;
    }
    return t;
}

static void pol_clear(struct pol *p)
{
    free(p->string);
    free(p->mx_host);
    free(p->d);
}

static void report_free(struct report *r)
{
    for (size_t i = 0; i < r->n_p; i++)
        pol_clear(&r->p[i]);
    free(r->p);
    free(r);
}

void tlsrpt_free(struct tlsrpt *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < TLSRPT_BUCKETS; i++) {
        while (t->b[i]) {
            struct report *r = t->b[i];
            t->b[i] = r->next;
            report_free(r);
        }
    }
    free(t->dir);
    free(t->org);
    free(t->contact);
    free(t);
}

const struct tlsrpt_stats *tlsrpt_stats(const struct tlsrpt *t)
{
    return &t->st;
}

/* ---- sessions ---- */

static void host_copy(char out[FACTS_HOST_MAX], const char *h)
{
    out[0] = '\0';
    if (!h || !*h || rules_host_is_ip_literal(h) || !strchr(h, '.'))
        return;
    size_t n = strlen(h);
    if (n >= FACTS_HOST_MAX)
        return;
    for (size_t i = 0; i < n; i++)
        out[i] = (h[i] >= 'A' && h[i] <= 'Z') ? (char)(h[i] + 32) : h[i];
    out[n] = '\0';
    if (n && out[n - 1] == '.')
        out[n - 1] = '\0';
}

static void rcpt_add(struct tlsrpt_session *s, const char *dom)
{
    char d[FACTS_HOST_MAX];
    host_copy(d, dom);
    if (!d[0])
        return;
    for (size_t i = 0; i < s->n_rcpt; i++)
        if (strcmp(s->rcpt[i], d) == 0)
            return;
    if (s->n_rcpt == TLSRPT_RCPT_MAX) {
        s->rcpt_dropped++; /* (a repeat past the bound counts again: an upper bound) */
        return;
    }
    memcpy(s->rcpt[s->n_rcpt++], d, sizeof d);
}

static void cert_name_add(struct tlsrpt_session *s, const char *name, size_t len)
{
    if (s->n_cert_names == TLSRPT_CERT_NAMES || !len || len >= FACTS_HOST_MAX)
        return;
    memcpy(s->cert_names[s->n_cert_names], name, len);
    s->cert_names[s->n_cert_names++][len] = '\0';
}

/* "2026-01-02T03:04:05..." to Unix seconds; 0 when it does not parse. */
static int64_t time_of(const char *v)
{
    char buf[32];
    int64_t t;
    if (!v || strlen(v) < 19)
        return 0;
    snprintf(buf, sizeof buf, "%.19sZ", v);
    return snapshot_time_parse(buf, strlen(buf), &t) ? t : 0;
}

void tlsrpt_session_of_facts(const struct smtp_facts *f, struct tlsrpt_session *s)
{
    memset(s, 0, sizeof *s);
    s->start = f->flow.start / SW_USEC_PER_SEC;
    sw_addr_str(&f->flow.client, s->client, sizeof s->client);
    sw_addr_str(&f->flow.server, s->server, sizeof s->server);
    s->port = f->flow.sport;
    host_copy(s->mx, f->tls->sni);
    if (!s->mx[0])
        host_copy(s->mx, f->banner_host);
    s->tls = f->tls->established;
    s->starttls_requested = f->starttls_requested;
    s->submission = s->port == 587 || s->port == 465 || (f->auth_mechanism && *f->auth_mechanism);
    for (size_t i = 0; i < f->n_tx; i++) {
        for (size_t j = 0; j < f->tx[i].n_rcpt; j++)
            if (f->tx[i].rcpt[j].code >= 200 && f->tx[i].rcpt[j].code < 300)
                rcpt_add(s, f->tx[i].rcpt[j].domain);
        /* the domains of the recipients past those kept one by one */
        for (size_t j = 0; j < f->tx[i].n_domains; j++)
            if (f->tx[i].domains[j].accepted)
                rcpt_add(s, f->tx[i].domains[j].domain);
    }
    const struct facts_x509 *c = &f->tls->cert;
    if (!c->present)
        return;
    s->cert = true;
    s->cert_self_signed = c->self_signed;
    s->cert_not_after = time_of(c->not_after);
    for (size_t i = 0; i < c->n_san; i++)
        cert_name_add(s, c->san_dns[i], strlen(facts_s(c->san_dns[i])));
    /* no SAN: the subject's (first) CN, as session records write it */
    const char *subj = facts_s(c->subject), *p = subj;
    while (!c->n_san && (p = strstr(p, "CN=")) != NULL) {
        if (p == subj || p[-1] == ',' || p[-1] == ' ' || p[-1] == '/') {
            p += 3;
            cert_name_add(s, p, strcspn(p, ",/"));
            break;
        }
        p += 3;
    }
}

static const json_t *path_get(const json_t *j, const char *a, const char *b, const char *c)
{
    j = json_object_get(j, a);
    if (j && b)
        j = json_object_get(j, b);
    if (j && c)
        j = json_object_get(j, c);
    return j;
}

bool tlsrpt_session_of_json(const json_t *rec, struct tlsrpt_session *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    const json_t *ts = path_get(rec, "event", "start", NULL);
    const char *tv = json_string_value(ts);
    char buf[32];
    if (!tv || strlen(tv) < 20) {
        snprintf(err, errlen, "event.start missing");
        return false;
    }
    snprintf(buf, sizeof buf, "%.19sZ", tv);
    if (!snapshot_time_parse(buf, strlen(buf), &s->start)) {
        snprintf(err, errlen, "event.start: not a time");
        return false;
    }
    const char *cip = json_string_value(path_get(rec, "source", "ip", NULL));
    const char *sip = json_string_value(path_get(rec, "destination", "ip", NULL));
    const json_t *port = path_get(rec, "destination", "port", NULL);
    if (!cip || !sip || !json_is_integer(port)) {
        snprintf(err, errlen, "source.ip, destination.ip or destination.port missing");
        return false;
    }
    snprintf(s->client, sizeof s->client, "%s", cip);
    snprintf(s->server, sizeof s->server, "%s", sip);
    s->port = (uint16_t)json_integer_value(port);
    host_copy(s->mx, json_string_value(path_get(rec, "tls", "client", "server_name")));
    if (!s->mx[0])
        host_copy(s->mx, json_string_value(path_get(rec, "smtp", "banner", "host")));
    s->tls = json_is_true(path_get(rec, "tls", "established", NULL));
    s->starttls_requested = json_is_true(path_get(rec, "smtp", "starttls", "requested"));
    const char *mech = json_string_value(path_get(rec, "smtp", "auth", "mechanism"));
    s->submission = s->port == 587 || s->port == 465 || (mech && *mech);
    const json_t *txs = path_get(rec, "smtp", "transactions", NULL);
    size_t i, k;
    const json_t *tx, *r;
    json_array_foreach(txs, i, tx)
    {
        json_array_foreach(json_object_get(tx, "rcpt"), k, r)
        {
            json_int_t code = json_integer_value(json_object_get(r, "code"));
            if (code >= 200 && code < 300)
                rcpt_add(s, json_string_value(json_object_get(r, "domain")));
        }
        json_array_foreach(json_object_get(tx, "rcpt_more_domains"), k, r)
        {
            if (json_integer_value(json_object_get(r, "accepted")) > 0)
                rcpt_add(s, json_string_value(json_object_get(r, "domain")));
        }
    }
    const json_t *x = path_get(rec, "tls", "server", "x509");
    if (!json_is_object(x))
        return true;
    s->cert = true;
    s->cert_self_signed = json_is_true(json_object_get(x, "self_signed"));
    s->cert_not_after = time_of(json_string_value(json_object_get(x, "not_after")));
    const json_t *names = json_object_get(x, "alternative_names");
    if (!json_array_size(names))
        names = path_get(x, "subject", "common_name", NULL);
    const json_t *nm;
    json_array_foreach(names, i, nm)
    {
        const char *v = json_string_value(nm);
        if (v)
            cert_name_add(s, v, strlen(v));
        if (json_array_size(json_object_get(x, "alternative_names")) == 0)
            break; /* the first CN */
    }
    return true;
}

size_t tlsrpt_domains(const struct tlsrpt_session *s, char (*out)[FACTS_HOST_MAX], size_t max)
{
    size_t n = 0;
    if (s->submission)
        return 0;
    if (!s->tls) {
        for (size_t i = 0; i < s->n_rcpt && n < max; i++)
            memcpy(out[n++], s->rcpt[i], FACTS_HOST_MAX);
        return n;
    }
    const char *p = s->mx;
    while (n < max && n < TLSRPT_DOMAINS_MAX) {
        const char *dot = strchr(p, '.');
        if (!dot || !strchr(dot + 1, '.'))
            break; /* keep at least two labels */
        p = dot + 1;
        snprintf(out[n++], FACTS_HOST_MAX, "%s", p);
    }
    return n;
}

/* ---- counting ---- */

static size_t bucket(int64_t day, const char *domain)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)day;
    for (const char *p = domain; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return (size_t)(h % TLSRPT_BUCKETS);
}

static struct report *report_get(struct tlsrpt *t, int64_t day, const char *domain)
{
    size_t b = bucket(day, domain);
    for (struct report *r = t->b[b]; r; r = r->next)
        if (r->day == day && strcmp(r->domain, domain) == 0)
            return r;
    if (t->n_reports >= TLSRPT_REPORTS_MAX)
        return NULL;
    struct report *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->day = day;
    size_t l = strnlen(domain, sizeof r->domain - 1);
    memcpy(r->domain, domain, l);
    r->domain[l] = '\0';
    r->next = t->b[b];
    t->b[b] = r;
    t->n_reports++;
    return r;
}

/* Appends line and a LF separator (none before the first) to *s. */
static bool lines_add(char **s, size_t *len, const char *line)
{
    size_t add = strlen(line) + 1;
    char *n = realloc(*s, *len + add + 1);
    if (!n)
        return false;
    if (*len)
        n[(*len)++] = '\n';
    memcpy(n + *len, line, add);
    *len += add - 1;
    *s = n;
    return true;
}

/* The policy-string and mx-host lines of an MTA-STS policy (its fields as
 * parsed, one line each: RFC 8460 §4.4 takes the policy's text). */
static bool sts_lines(const struct rule_policy *p, char **str, char **mx)
{
    size_t sl = 0, ml = 0;
    char line[FACTS_HOST_MAX + 16];
    bool ok = lines_add(str, &sl, "version: STSv1");
    snprintf(line, sizeof line, "mode: %s", mtasts_mode_str(p->pol.mode));
    ok = ok && lines_add(str, &sl, line);
    for (size_t i = 0; ok && i < p->pol.n_mx; i++) {
        snprintf(line, sizeof line, "mx: %s", p->pol.mx[i]);
        ok = lines_add(str, &sl, line) && lines_add(mx, &ml, p->pol.mx[i]);
    }
    snprintf(line, sizeof line, "max_age: %u", p->pol.max_age);
    ok = ok && lines_add(str, &sl, line);
    if (ok && !*mx)
        ok = (*mx = calloc(1, 1)) != NULL;
    return ok;
}

static bool tlsa_lines(const struct rule_dane *dn, char **str)
{
    size_t sl = 0;
    char line[2 * DANE_MAX_DATA + 32];
    bool ok = true;
    for (size_t i = 0; ok && i < dn->entry->n; i++)
        ok = lines_add(str, &sl, dane_tlsa_format(&dn->entry->rr[i], line, sizeof line));
    if (ok && !*str)
        ok = (*str = calloc(1, 1)) != NULL;
    return ok;
}

/* Why s's certificate fails an MTA-STS policy naming its MX host
 * (RFC 8461 §4.2), or NULL when it passes or is not visible. */
static const char *cert_result(const struct tlsrpt_session *s)
{
    if (!s->cert)
        return NULL;
    bool named = false;
    for (size_t i = 0; i < s->n_cert_names && !named; i++)
        named = mtasts_mx_pattern_match(s->cert_names[i], s->mx);
    if (!named)
        return "certificate-host-mismatch";
    if (s->cert_not_after && s->cert_not_after < s->start)
        return "certificate-expired";
    if (s->cert_self_signed)
        return "certificate-not-trusted";
    return NULL;
}

/* Counts s once in report r under the policy (type, string, mx). Takes
 * string and mx (freed here when the policy is there already). */
static void count(struct tlsrpt *t, struct report *r, const char *type, char *string, char *mx,
                  const struct tlsrpt_session *s)
{
    struct pol *p = NULL;
    for (size_t i = 0; i < r->n_p; i++) {
        if (strcmp(r->p[i].type, type) == 0 && strcmp(r->p[i].string, string) == 0 &&
            strcmp(r->p[i].mx_host, mx) == 0) {
            p = &r->p[i];
            break;
        }
    }
    if (p) {
        free(string);
        free(mx);
    } else {
        struct pol *np = realloc(r->p, (r->n_p + 1) * sizeof *np);
        if (!np) {
            free(string);
            free(mx);
            t->st.dropped++;
            return;
        }
        r->p = np;
        p = &r->p[r->n_p++];
        memset(p, 0, sizeof *p);
        snprintf(p->type, sizeof p->type, "%s", type);
        p->string = string;
        p->mx_host = mx;
    }
    r->dirty = true;
    const char *result = s->starttls_requested ? "validation-failure" : "starttls-not-supported";
    if (s->tls) {
        result = strcmp(type, "sts") == 0 ? cert_result(s) : NULL;
        if (!result) {
            p->ok++;
            return;
        }
    }
    p->fail++;
    for (size_t i = 0; i < p->n_d; i++) {
        struct detail *d = &p->d[i];
        if (strcmp(d->result, result) == 0 && strcmp(d->sip, s->client) == 0 &&
            strcmp(d->mx, s->mx) == 0 && strcmp(d->rip, s->server) == 0) {
            d->count++;
            return;
        }
    }
    if (p->n_d == TLSRPT_DETAILS_MAX) {
        t->st.dropped++;
        return;
    }
    if (p->n_d == p->cap_d) {
        size_t cap = p->cap_d ? p->cap_d * 2 : 4;
        struct detail *nd = realloc(p->d, cap * sizeof *nd);
        if (!nd) {
            t->st.dropped++;
            return;
        }
        p->d = nd;
        p->cap_d = cap;
    }
    struct detail *d = &p->d[p->n_d++];
    memset(d, 0, sizeof *d);
    snprintf(d->result, sizeof d->result, "%s", result);
    snprintf(d->sip, sizeof d->sip, "%s", s->client);
    snprintf(d->mx, sizeof d->mx, "%s", s->mx);
    snprintf(d->rip, sizeof d->rip, "%s", s->server);
    d->count = 1;
}

static bool sts_applies(const struct rule_policy *p)
{
    return p->answered && rule_policy_in_force(p) && p->pol.mode != MTASTS_MODE_NONE;
}

static const struct rule_policy *pol_of(const struct rule_policy *pols, size_t n, const char *dom)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(pols[i].domain, dom) == 0)
            return &pols[i];
    return NULL;
}

void tlsrpt_add(struct tlsrpt *t, const struct tlsrpt_session *s, const struct rule_policy *pols,
                size_t n, const struct rule_dane *dn)
{
    char doms[TLSRPT_RCPT_MAX][FACTS_HOST_MAX];
    size_t nd = tlsrpt_domains(s, doms, TLSRPT_RCPT_MAX);
    if (!nd)
        return;
    t->st.dropped += s->rcpt_dropped;
    bool dane = s->mx[0] && dn && rule_dane_in_force(dn) && strcmp(dn->host, s->mx) == 0;
    int64_t day = s->start - ((s->start % DAY) + DAY) % DAY;
    bool counted = false;
    for (size_t i = 0; i < nd; i++) {
        const struct rule_policy *p = pol_of(pols, n, doms[i]);
        bool sts = p && sts_applies(p);
        /* TLS hides the recipients: the domain counts only when its
         * policy names the server */
        if (s->tls && !(sts && s->mx[0] && mtasts_mx_match(&p->pol, s->mx)))
            continue;
        if (!sts && !dane)
            continue;
        struct report *r = report_get(t, day, doms[i]);
        if (!r) {
            t->st.dropped++;
            continue;
        }
        counted = true;
        if (sts) {
            char *str = NULL, *mx = NULL;
            if (sts_lines(p, &str, &mx)) {
                count(t, r, "sts", str, mx, s);
            } else {
                free(str);
                free(mx);
                t->st.dropped++;
            }
        }
        if (dane) {
            char *str = NULL, *mx = strdup(s->mx);
            if (mx && tlsa_lines(dn, &str)) {
                count(t, r, "tlsa", str, mx, s);
            } else {
                free(str);
                free(mx);
                t->st.dropped++;
            }
        }
    }
    if (counted)
        t->st.sessions_counted++;
}

/* ---- writing ---- */

static json_t *lines_json(const char *s)
{
    json_t *a = json_array();
    while (a && *s) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        json_array_append_new(a, json_stringn(s, n));
        s += n;
        if (*s == '\n')
            s++;
    }
    return a;
}

static int pol_cmp(const void *a, const void *b)
{
    const struct pol *x = a, *y = b;
    int c = strcmp(x->type, y->type);
    if (!c)
        c = strcmp(x->string, y->string);
    return c ? c : strcmp(x->mx_host, y->mx_host);
}

static int detail_cmp(const void *a, const void *b)
{
    const struct detail *x = a, *y = b;
    int c = strcmp(x->result, y->result);
    if (!c)
        c = strcmp(x->sip, y->sip);
    if (!c)
        c = strcmp(x->mx, y->mx);
    return c ? c : strcmp(x->rip, y->rip);
}

static json_t *report_json(const struct tlsrpt *t, struct report *r)
{
    char start[32], end[32], id[600];
    snapshot_time_format(r->day, start);
    snapshot_time_format(r->day + DAY - 1, end);
    snprintf(id, sizeof id, "%.10s_%s_%s", start, r->domain, t->org);
    json_t *j = json_object();
    json_object_set_new(j, "organization-name", json_string(t->org));
    json_object_set_new(j, "date-range",
                        json_pack("{s:s,s:s}", "start-datetime", start, "end-datetime", end));
    json_object_set_new(j, "contact-info", json_string(t->contact));
    json_object_set_new(j, "report-id", json_string(id));
    json_t *pols = json_array();
    if (r->n_p)
        qsort(r->p, r->n_p, sizeof *r->p, pol_cmp);
    for (size_t i = 0; i < r->n_p; i++) {
        struct pol *p = &r->p[i];
        json_t *pj = json_object();
        json_object_set_new(pj, "policy",
                            json_pack("{s:s,s:o,s:s,s:o}", "policy-type", p->type, "policy-string",
                                      lines_json(p->string), "policy-domain", r->domain, "mx-host",
                                      lines_json(p->mx_host)));
        json_object_set_new(pj, "summary",
                            json_pack("{s:I,s:I}", "total-successful-session-count",
                                      (json_int_t)p->ok, "total-failure-session-count",
                                      (json_int_t)p->fail));
        json_t *fd = json_array();
        if (p->n_d)
            qsort(p->d, p->n_d, sizeof *p->d, detail_cmp);
        for (size_t k = 0; k < p->n_d; k++) {
            const struct detail *d = &p->d[k];
            json_t *dj = json_object();
            json_object_set_new(dj, "result-type", json_string(d->result));
            json_object_set_new(dj, "sending-mta-ip", json_string(d->sip));
            if (d->mx[0])
                json_object_set_new(dj, "receiving-mx-hostname", json_string(d->mx));
            json_object_set_new(dj, "receiving-ip", json_string(d->rip));
            json_object_set_new(dj, "failed-session-count", json_integer((json_int_t)d->count));
            json_array_append_new(fd, dj);
        }
        json_object_set_new(pj, "failure-details", fd);
        json_array_append_new(pols, pj);
    }
    json_object_set_new(j, "policies", pols);
    return j;
}

/* The §5.3 file name's sender part: the organization without '/' or '!'. */
static void sender_of(const char *org, char *out, size_t len)
{
    snprintf(out, len, "%s", org);
    for (char *p = out; *p; p++)
        if (*p == '/' || *p == '!')
            *p = '_';
}

static bool report_write(struct tlsrpt *t, struct report *r)
{
    char sender[256], path[4096], tmp[4200];
    sender_of(t->org, sender, sizeof sender);
    snprintf(path, sizeof path, "%s/%s!%s!%lld!%lld.json", t->dir, sender, r->domain,
             (long long)r->day, (long long)(r->day + DAY - 1));
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    json_t *j = report_json(t, r);
    char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    FILE *f = s ? fopen(tmp, "w") : NULL;
    bool ok = f && fputs(s, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0)
        ok = false;
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok) {
        alerts_log(LOG_ERR, "tlsrpt: %s: %s", path, s ? strerror(errno) : "out of memory");
        if (f)
            unlink(tmp);
        t->st.write_errors++;
    } else {
        r->dirty = false;
        t->st.reports_written++;
    }
    free(s);
    return ok;
}

/* Writes the dirty reports of days before `before` (all with INT64_MAX),
 * then frees those of days before `keep`. */
static bool write_before(struct tlsrpt *t, int64_t before, int64_t keep)
{
    bool ok = true;
    for (size_t i = 0; i < TLSRPT_BUCKETS; i++) {
        struct report **pp = &t->b[i];
        while (*pp) {
            struct report *r = *pp;
            if (r->day < before && r->dirty && !report_write(t, r))
                ok = false;
            if (r->day < keep && !r->dirty) {
                *pp = r->next;
                report_free(r);
                t->n_reports--;
                continue;
            }
            pp = &r->next;
        }
    }
    return ok;
}

void tlsrpt_tick(struct tlsrpt *t, int64_t now)
{
    int64_t day = now - ((now % DAY) + DAY) % DAY;
    if (t->today < 0) {
        t->today = day;
        return;
    }
    if (day <= t->today)
        return;
    t->today = day;
    write_before(t, day, day - DAY);
}

bool tlsrpt_flush(struct tlsrpt *t)
{
    return write_before(t, INT64_MAX, INT64_MIN);
}
