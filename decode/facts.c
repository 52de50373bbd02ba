/* SPDX-License-Identifier: Apache-2.0 */
/* facts.c: session facts lifecycle and the session record JSON (ECS names).
 * Follows RFC 3339 (timestamps), RFC 5321 (SMTP terms), RFC 8446/5246 (TLS
 * version names), RFC 5280 (certificate fields). */
#include "decode/facts.h"

#include "decode/strtab.h"

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
    [ANOM_EHLO_PADDED] = "ehlo_reply_padded",
    [ANOM_TTL_SHIFT_REPLY] = "ttl_shift_reply",
    [ANOM_REPLY_CODE_CHANGED] = "reply_code_changed",
    [ANOM_NO_TRANSACTION] = "no_transaction",
    [ANOM_FIELD_TRUNCATED] = "field_truncated",
    [ANOM_BOUND_REACHED] = "bound_reached",
    [ANOM_GREETING_CLIENT_ADDR] = "greeting_client_addr",
    [ANOM_OVERLAP_STARTTLS] = "overlap_starttls_conflict",
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

const struct facts_tls facts_tls_none = {.alert_level = -1, .alert_desc = -1};

const char *facts_tls_after_str(enum facts_tls_after a)
{
    switch (a) {
    case FACTS_TLS_AFTER_APPDATA:
        return "application_data";
    case FACTS_TLS_AFTER_ALERT:
        return "alert";
    case FACTS_TLS_AFTER_NONE:
        break;
    }
    return NULL;
}

void facts_init(struct smtp_facts *f, struct strtab *strs)
{
    memset(f, 0, sizeof *f);
    f->tls = &facts_tls_none;
    f->strs = strs;
    f->storage = strs ? FACTS_STRTAB : FACTS_HEAP;
}

struct smtp_facts *facts_new(void)
{
    struct smtp_facts *f = malloc(sizeof *f);
    if (f)
        facts_init(f, NULL);
    return f;
}

/* Bytes of the capability list, its last NUL included. */
static size_t caps_len(const char *caps, size_t n)
{
    const char *p = caps;
    for (size_t i = 0; i < n; i++)
        p += strlen(p) + 1;
    return (size_t)(p - caps);
}

/* Bytes of a string slot's value, its NUL included; strs: the value is a
 * string of that table's (which knows its length). */
static size_t slot_bytes(const struct smtp_facts *f, const char *s, bool is_caps, bool strs)
{
    if (strs) /* a list's length counts its last NUL already */
        return strtab_len(s) + !is_caps;
    return is_caps ? caps_len(s, f->n_caps) : strlen(s) + 1;
}

static size_t slot_len(const struct smtp_facts *f, const char *s, bool is_caps)
{
    return slot_bytes(f, s, is_caps, f->storage == FACTS_STRTAB);
}

const char *facts_cap(const struct smtp_facts *f, size_t i)
{
    const char *p = f->caps;
    while (i--)
        p += strlen(p) + 1;
    return p;
}

/* A string of n bytes (NULs inside allowed) in f's storage. */
static const char *str_new(struct smtp_facts *f, const char *s, size_t n)
{
    if (f->storage == FACTS_STRTAB)
        return strtab_get(f->strs, s, n);
    char *c = malloc(n + 1);
    if (!c)
        return NULL;
    memcpy(c, s, n);
    c[n] = '\0';
    f->mem += n + 1;
    return c;
}

/* Releases a string of f's storage; len is its length (HEAP accounting). */
static void str_drop(struct smtp_facts *f, const char *s, size_t len)
{
    if (!s)
        return;
    if (f->storage == FACTS_STRTAB) {
        strtab_put(f->strs, s);
    } else if (f->storage == FACTS_HEAP) {
        f->mem -= len + 1;
        free((char *)s);
    }
}

bool facts_set(struct smtp_facts *f, const char **slot, const char *s, size_t n, size_t max)
{
    const char *old = *slot;
    *slot = NULL;
    if (s) {
        n = strnlen(s, n);
        if (max && n > max - 1)
            n = max - 1;
        *slot = str_new(f, s, n);
    }
    str_drop(f, old, old && f->storage == FACTS_HEAP ? strlen(old) : 0);
    return !s || *slot;
}

bool facts_add_cap(struct smtp_facts *f, const char *s, size_t n)
{
    n = strnlen(s, n);
    size_t old = f->caps ? slot_len(f, f->caps, true) : 0;
    const char *nc;
    if (f->storage == FACTS_STRTAB) {
        if (!(nc = strtab_add_item(f->strs, f->caps, s, n)))
            return false;
    } else {
        char *b = malloc(old + n + 1);
        if (!b)
            return false;
        if (old)
            memcpy(b, f->caps, old);
        memcpy(b + old, s, n);
        b[old + n] = '\0';
        nc = b;
        f->mem += old + n + 1;
    }
    str_drop(f, f->caps, old ? old - 1 : 0);
    f->caps = nc;
    f->n_caps++;
    return true;
}

/* Grows *arr (n elements of size sz) by one zeroed element. */
static void *grow1(struct smtp_facts *f, void *arr, size_t n, size_t sz)
{
    char *a = realloc(arr, (n + 1) * sz);
    if (!a)
        return NULL;
    memset(a + n * sz, 0, sz);
    f->mem += sz;
    return a;
}

struct facts_tx *facts_add_tx(struct smtp_facts *f)
{
    struct facts_tx *a = grow1(f, f->tx, f->n_tx, sizeof *a);
    if (!a)
        return NULL;
    f->tx = a;
    a[f->n_tx].accepted = -1;
    return &a[f->n_tx++];
}

struct facts_rcpt *facts_add_rcpt(struct smtp_facts *f, struct facts_tx *t)
{
    struct facts_rcpt *a = grow1(f, t->rcpt, t->n_rcpt, sizeof *a);
    if (!a)
        return NULL;
    t->rcpt = a;
    return &a[t->n_rcpt++];
}

int facts_tx_domain(struct smtp_facts *f, struct facts_tx *t, const char *d)
{
    if (!d)
        d = "";
    /* interned strings compare by pointer; heap ones by content */
    for (size_t i = 0; i < t->n_domains; i++) {
        const char *x = facts_s(t->domains[i].domain);
        if (x == d || !strcmp(x, d))
            return (int)i;
    }
    if (t->n_domains >= FACTS_DOMAINS_MAX) {
        t->domains_dropped++;
        return -1;
    }
    struct facts_domain *a = grow1(f, t->domains, t->n_domains, sizeof *a);
    if (!a)
        return -1;
    t->domains = a;
    facts_set(f, &a[t->n_domains].domain, d, strlen(d), 0);
    return (int)t->n_domains++;
}

/* The entry to drop from a full anomaly ring: the oldest repeat of a kind
 * (an entry whose kind an older entry has too), else the oldest. */
static size_t anomaly_victim(const struct smtp_facts *f)
{
    unsigned seen = 0;
    _Static_assert(ANOM_KIND_COUNT <= 32, "kinds fit in a mask");
    for (size_t i = 0; i < f->n_anomalies; i++) {
        unsigned bit = 1u << f->anomalies[i].kind;
        if (seen & bit)
            return i;
        seen |= bit;
    }
    return 0;
}

struct facts_anomaly *facts_add_anomaly(struct smtp_facts *f)
{
    if (f->n_anomalies >= FACTS_ANOM_MAX) {
        size_t v = anomaly_victim(f);
        struct facts_anomaly *a = f->anomalies;
        facts_set(f, &a[v].detail, NULL, 0, 0);
        memmove(&a[v], &a[v + 1], (f->n_anomalies - v - 1) * sizeof *a);
        memset(&a[f->n_anomalies - 1], 0, sizeof *a);
        f->anomalies_dropped++;
        return &a[f->n_anomalies - 1];
    }
    struct facts_anomaly *a = grow1(f, f->anomalies, f->n_anomalies, sizeof *a);
    if (!a) {
        f->anomalies_dropped++;
        return NULL;
    }
    f->anomalies = a;
    return &a[f->n_anomalies++];
}

struct facts_tls *facts_tls_mut(struct smtp_facts *f)
{
    if (f->tls != &facts_tls_none)
        return (struct facts_tls *)f->tls;
    struct facts_tls *t = malloc(sizeof *t);
    if (!t)
        return NULL;
    *t = facts_tls_none;
    f->mem += sizeof *t;
    f->tls = t;
    return t;
}

bool facts_add_san(struct smtp_facts *f, const char *s, size_t n)
{
    struct facts_tls *t = facts_tls_mut(f);
    if (!t || t->cert.n_san >= FACTS_SAN_MAX)
        return false;
    const char **a = grow1(f, t->cert.san_dns, t->cert.n_san, sizeof *a);
    if (!a)
        return false;
    t->cert.san_dns = a;
    if (!facts_set(f, &a[t->cert.n_san], s, n, 0)) {
        f->mem -= sizeof *a; /* the slot stays allocated, unused */
        return false;
    }
    t->cert.n_san++;
    return true;
}

/* Every string slot of f, with the capability list first (is_caps). */
typedef void (*slot_fn)(struct smtp_facts *f, const char **slot, bool is_caps, void *ctx);

static void each_slot(struct smtp_facts *f, slot_fn fn, void *ctx)
{
    fn(f, &f->caps, true, ctx);
    fn(f, &f->banner_host, false, ctx);
    fn(f, &f->helo_host, false, ctx);
    fn(f, &f->ehlo_host, false, ctx);
    fn(f, &f->auth_mechanism, false, ctx);
    for (size_t i = 0; i < f->n_tx; i++) {
        struct facts_tx *t = &f->tx[i];
        fn(f, &t->mail_from_domain, false, ctx);
        fn(f, &t->mail_from, false, ctx);
        fn(f, &t->body_param, false, ctx);
        for (size_t j = 0; j < t->n_rcpt; j++) {
            fn(f, &t->rcpt[j].domain, false, ctx);
            fn(f, &t->rcpt[j].address, false, ctx);
        }
        for (size_t j = 0; j < t->n_domains; j++)
            fn(f, &t->domains[j].domain, false, ctx);
    }
    for (size_t i = 0; i < f->n_anomalies; i++)
        fn(f, &f->anomalies[i].detail, false, ctx);
    if (f->tls != &facts_tls_none) {
        struct facts_tls *t = (struct facts_tls *)f->tls;
        fn(f, &t->sni, false, ctx);
        fn(f, &t->ja3, false, ctx);
        fn(f, &t->ja3s, false, ctx);
        fn(f, &t->cert.subject, false, ctx);
        fn(f, &t->cert.issuer, false, ctx);
        fn(f, &t->cert.not_before, false, ctx);
        fn(f, &t->cert.not_after, false, ctx);
        fn(f, &t->cert.sha256, false, ctx);
        fn(f, &t->cert.dane_digests, false, ctx);
        for (size_t i = 0; i < t->cert.n_san; i++)
            fn(f, &t->cert.san_dns[i], false, ctx);
    }
}

static void slot_drop(struct smtp_facts *f, const char **slot, bool is_caps, void *ctx)
{
    (void)ctx;
    if (*slot)
        str_drop(f, *slot, slot_len(f, *slot, is_caps) - 1);
    *slot = NULL;
}

void facts_clear(struct smtp_facts *f)
{
    if (!f)
        return;
    if (f->storage != FACTS_PACKED) {
        each_slot(f, slot_drop, NULL);
        for (size_t i = 0; i < f->n_tx; i++) {
            free(f->tx[i].rcpt);
            free(f->tx[i].domains);
        }
        free(f->tx);
        free(f->anomalies);
        if (f->tls != &facts_tls_none) {
            free(f->tls->cert.san_dns);
            free((struct facts_tls *)f->tls);
        }
    }
    struct strtab *strs = f->strs;
    facts_init(f, strs);
}

void facts_free(struct smtp_facts *f)
{
    if (!f)
        return;
    if (f->storage != FACTS_PACKED)
        facts_clear(f);
    free(f);
}

/* ---- the packed copy ---- */

static void slot_size(struct smtp_facts *f, const char **slot, bool is_caps, void *ctx)
{
    if (*slot)
        *(size_t *)ctx += slot_len(f, *slot, is_caps);
}

/* Bytes of the copy's fixed parts (struct, TLS, lists), 8-aligned each. */
static size_t lists_size(const struct smtp_facts *f)
{
    size_t n = sizeof *f + f->n_anomalies * sizeof *f->anomalies + f->n_tx * sizeof *f->tx;
    for (size_t i = 0; i < f->n_tx; i++)
        n +=
            f->tx[i].n_rcpt * sizeof *f->tx[i].rcpt + f->tx[i].n_domains * sizeof *f->tx[i].domains;
    if (f->tls != &facts_tls_none)
        n += sizeof *f->tls + f->tls->cert.n_san * sizeof *f->tls->cert.san_dns;
    return n;
}

size_t facts_copy_size(const struct smtp_facts *f)
{
    size_t n = 0;
    each_slot((struct smtp_facts *)f, slot_size, &n);
    return lists_size(f) + n;
}

/* Moves each string of the source (same slot in the copy) into the block. */
struct pack {
    char *p;
    bool strs; /* the source's strings are a table's */
};

static void slot_pack(struct smtp_facts *c, const char **slot, bool is_caps, void *ctx)
{
    struct pack *k = ctx;
    if (!*slot)
        return;
    size_t n = slot_bytes(c, *slot, is_caps, k->strs);
    memcpy(k->p, *slot, n);
    *slot = k->p;
    k->p += n;
}

static void *take(char **p, const void *src, size_t n)
{
    void *d = *p;
    if (n)
        memcpy(d, src, n);
    *p += n;
    return d;
}

struct smtp_facts *facts_copy(const struct smtp_facts *f)
{
    size_t total = facts_copy_size(f);
    char *blk = malloc(total);
    if (!blk)
        return NULL;
    char *p = blk;
    struct smtp_facts *c = take(&p, f, sizeof *f);
    c->storage = FACTS_PACKED;
    c->strs = NULL;
    c->mem = 0;
    c->anomalies =
        f->n_anomalies ? take(&p, f->anomalies, f->n_anomalies * sizeof *f->anomalies) : NULL;
    c->tx = f->n_tx ? take(&p, f->tx, f->n_tx * sizeof *f->tx) : NULL;
    for (size_t i = 0; i < f->n_tx; i++) {
        const struct facts_tx *t = &f->tx[i];
        c->tx[i].rcpt = t->n_rcpt ? take(&p, t->rcpt, t->n_rcpt * sizeof *t->rcpt) : NULL;
        c->tx[i].domains =
            t->n_domains ? take(&p, t->domains, t->n_domains * sizeof *t->domains) : NULL;
    }
    if (f->tls != &facts_tls_none) {
        struct facts_tls *t = take(&p, f->tls, sizeof *f->tls);
        t->cert.san_dns = f->tls->cert.n_san ? take(&p, f->tls->cert.san_dns,
                                                    f->tls->cert.n_san * sizeof *t->cert.san_dns)
                                             : NULL;
        c->tls = t;
    }
    /* the copy's slots still point at f's strings: move them in */
    struct pack k = {p, f->storage == FACTS_STRTAB};
    each_slot(c, slot_pack, &k);
    return c;
}

bool facts_has_cleartext_data(const struct smtp_facts *f)
{
    for (size_t i = 0; i < f->n_tx; i++)
        if (f->tx[i].data_sent && f->tx[i].cleartext)
            return true;
    return false;
}

/* RFC 3339 UTC with microseconds: 2026-11-22T10:00:01.123456Z */
static char *put_digits(char *o, unsigned long long v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        o[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return o + n;
}

void facts_fmt_time(sw_usec ts, char *buf, size_t len)
{
    long long sec = ts / SW_USEC_PER_SEC;
    long long us = ts % SW_USEC_PER_SEC;
    if (us < 0) {
        us += SW_USEC_PER_SEC;
        sec--;
    }
    /* years 1970 to 9999: the civil date from the day number (H. Hinnant's
     * days_from_civil inverse, proleptic Gregorian as gmtime_r), written
     * without snprintf; the same text as the general path below */
    if (sec >= 0 && sec < 253402300800LL && len >= 28) {
        unsigned long long days = (unsigned long long)sec / 86400,
                           sod = (unsigned long long)sec % 86400;
        unsigned long long z = days + 719468, era = z / 146097;
        unsigned doe = (unsigned)(z - era * 146097);
        unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        unsigned mp = (5 * doy + 2) / 153;
        unsigned d = doy - (153 * mp + 2) / 5 + 1;
        unsigned m = mp < 10 ? mp + 3 : mp - 9;
        unsigned long long y = yoe + era * 400 + (m <= 2);
        char *o = put_digits(buf, y, 4);
        *o++ = '-';
        o = put_digits(o, m, 2);
        *o++ = '-';
        o = put_digits(o, d, 2);
        *o++ = 'T';
        o = put_digits(o, sod / 3600, 2);
        *o++ = ':';
        o = put_digits(o, sod / 60 % 60, 2);
        *o++ = ':';
        o = put_digits(o, sod % 60, 2);
        *o++ = '.';
        o = put_digits(o, (unsigned long long)us, 6);
        *o++ = 'Z';
        *o = '\0';
        return;
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
    if (t->n_domains) {
        json_t *md = json_array();
        for (size_t j = 0; j < t->n_domains; j++)
            json_array_append_new(md, json_pack("{s:o, s:I, s:I}", "domain",
                                                facts_json_wire_str(t->domains[j].domain), "rcpt",
                                                (json_int_t)t->domains[j].rcpts, "accepted",
                                                (json_int_t)t->domains[j].accepted));
        json_object_set_new(o, "rcpt_more_domains", md);
    }
    if (t->domains_dropped)
        json_object_set_new(o, "rcpt_domains_dropped", json_integer(t->domains_dropped));
    if (t->before_capture)
        json_object_set_new(o, "before_capture", json_true());
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
                     "alternative_names", san, "not_before", facts_s(c->not_before), "not_after",
                     facts_s(c->not_after), "fingerprint", "sha256", facts_s(c->sha256),
                     "self_signed", c->self_signed, "chain_length", (json_int_t)c->chain_len);
}

static json_t *tls_json(const struct facts_tls *t)
{
    const char *v = tls_version_name(t->version);
    json_t *client =
        json_pack("{s:o, s:o, s:o}", "server_name", str_or_null(t->sni), "ja3", str_or_null(t->ja3),
                  "after_handshake", str_or_null(facts_tls_after_str(t->client_after)));
    json_t *server =
        json_pack("{s:o, s:o}", "ja3s", str_or_null(t->ja3s), "x509", x509_json(&t->cert));
    json_t *cipher = t->cipher_name ? json_string(t->cipher_name) : json_null();
    if (!t->cipher_name && t->server_hello) {
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
        json_array_append_new(caps, facts_json_wire_str(facts_cap(f, i)));
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
    if (f->auth_lines)
        json_object_set_new(json_object_get(smtp, "auth"), "lines", json_integer(f->auth_lines));
    if (f->caps_dropped)
        json_object_set_new(smtp, "capabilities_dropped", json_integer(f->caps_dropped));
    if (f->tx_dropped)
        json_object_set_new(smtp, "transactions_dropped", json_integer(f->tx_dropped));

    return json_pack("{s:s, s:{s:s, s:s}, s:o, s:o, s:o, s:o, s:o, s:o}", "@timestamp", ts, "event",
                     "kind", "event", "dataset", "stripwatch.session", "stripwatch", sw, "source",
                     addr_json(&f->flow.client, f->flow.cport), "destination",
                     addr_json(&f->flow.server, f->flow.sport), "network", net, "smtp", smtp, "tls",
                     tls_json(f->tls));
}
