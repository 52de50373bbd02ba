/* SPDX-License-Identifier: Apache-2.0 */
/* detector_fixture.h: shared by the detector's unit tests: a temp dir with a
 * policy file and a real policy engine, a detector whose alerts are collected,
 * session facts built by hand, and readers for the alerts' JSON. Test code
 * only. */
#ifndef SW_DETECTOR_FIXTURE_H
#define SW_DETECTOR_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "alerts/detector.h"
#include "alerts/ratelimit.h"
#include "alerts/rules.h"

/* ---- fixture: temp dir, policy file, collected alert lines ---- */

#define T0                                                                                         \
    1795000000LL /* 2026-11-18T11:06:40Z: both policies in force (enforce.example                  \
                  * until 2026-11-22T08:00:00Z, testing.example until                              \
                  * 2026-11-19T09:30:00Z) */

static const char POLICIES[] =
    "{\"enforce.example\": {\"id\": \"20261101T000000\", \"policy\": \"version: STSv1\\nmode: "
    "enforce\\nmx: mx.enforce.example\\nmx: *.backup.enforce.example\\nmax_age: "
    "604800\\n\", \"fetched_at\": \"2026-11-15T08:00:00Z\"},\n"
    " \"testing.example\": {\"id\": \"t1\", \"policy\": \"version: STSv1\\nmode: testing\\nmx: "
    "mx.testing.example\\nmax_age: 86400\\n\", \"fetched_at\": \"2026-11-18T09:30:00Z\"}}\n";

struct lines {
    char **v;
    size_t n;
};

struct fx {
    char dir[256];
    char policy_path[300];
    struct policy_engine *pe;
    struct detector *d;
    struct lines out;
};

static inline void on_emit(void *arg, const char *json, size_t len, const char *rule, int severity)
{
    struct lines *l = arg;
    if (getenv("SW_TEST_PRINT"))
        fprintf(stderr, "%.*s\n", (int)len, json);
    l->v = realloc(l->v, (l->n + 1) * sizeof *l->v);
    l->v[l->n] = strndup(json, len);
    l->n++;
    /* the hook's rule and severity are the line's rule.id and event.severity */
    json_t *o = json_loadb(json, len, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "rule"), "id")), rule);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "event"), "severity")),
                     severity);
    json_decref(o);
}

static inline void lines_clear(struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static inline void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* The whole file, NUL-terminated (free it), or NULL. */
static inline char *slurp_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t n = buf ? fread(buf, 1, (1 << 16) - 1, fp) : 0;
    (void)n;
    fclose(fp);
    return buf;
}

static inline struct policy_engine *engine_new(const char *policy_file, bool fetch, const char *dns)
{
    struct policy_cfg pc;
    policy_cfg_defaults(&pc);
    pc.fetch = fetch;
    pc.policy_file = policy_file;
    pc.dns_server = dns;
    pc.total_timeout_ms = 2000;
    pc.connect_timeout_ms = 1000;
    char err[512] = "";
    struct policy_engine *pe = policy_engine_new(&pc, err, sizeof err);
    if (!pe)
        fail_msg("policy_engine_new: %s", err);
    return pe;
}

static inline void fx_cfg(struct fx *x, struct detector_cfg *c)
{
    detector_cfg_defaults(c);
    c->policy = x->pe;
    c->observer_name = "test-sensor";
    c->offline = true;
    c->emit = on_emit;
    c->emit_arg = &x->out;
}

static inline struct detector *fx_detector(struct fx *x, const struct detector_cfg *c)
{
    (void)x;
    char err[512] = "";
    struct detector *d = detector_new(c, err, sizeof err);
    if (!d)
        fail_msg("detector_new: %s", err);
    return d;
}

static inline int setup(void **state)
{
    struct fx *x = calloc(1, sizeof *x);
    const char *tmp = getenv("TMPDIR");
    snprintf(x->dir, sizeof x->dir, "%s/swdet.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(x->dir))
        return -1;
    snprintf(x->policy_path, sizeof x->policy_path, "%s/policies.json", x->dir);
    write_file(x->policy_path, POLICIES);
    x->pe = engine_new(x->policy_path, false, NULL);
    struct detector_cfg c;
    fx_cfg(x, &c);
    x->d = fx_detector(x, &c);
    *state = x;
    return 0;
}

static inline int teardown(void **state)
{
    struct fx *x = *state;
    detector_free(x->d);
    policy_engine_free(x->pe);
    lines_clear(&x->out);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", x->dir);
    if (system(cmd) != 0)
        return -1;
    free(x);
    return 0;
}

/* ---- facts builders ---- */

static inline void set_addr(struct sw_addr *a, const char *ip)
{
    memset(a, 0, sizeof *a);
    if (strchr(ip, ':')) {
        a->family = 6;
        assert_int_equal(inet_pton(AF_INET6, ip, a->b), 1);
    } else {
        a->family = 4;
        assert_int_equal(inet_pton(AF_INET, ip, a->b), 1);
    }
}

static unsigned uid_counter;

/* Sets a facts string field (formatted). */
static inline void fset(struct smtp_facts *f, const char **slot, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void fset(struct smtp_facts *f, const char **slot, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    assert_true(facts_set(f, slot, buf, strlen(buf), 0));
}

static inline struct smtp_facts *session(const char *cip, const char *sip, uint16_t sport,
                                         int64_t t)
{
    struct smtp_facts *f = facts_new();
    snprintf(f->flow.uid, sizeof f->flow.uid, "S%016x", ++uid_counter);
    set_addr(&f->flow.client, cip);
    set_addr(&f->flow.server, sip);
    f->flow.cport = (uint16_t)(40000 + uid_counter);
    f->flow.sport = sport;
    f->flow.start = t * SW_USEC_PER_SEC;
    f->flow.first_pkt = 1;
    f->last_ts = f->flow.start + 2 * SW_USEC_PER_SEC;
    f->end = SMTP_END_QUIT;
    f->banner_code = 220;
    snprintf(f->helo_verb, sizeof f->helo_verb, "EHLO");
    fset(f, &f->helo_host, "out.sender.example");
    f->ehlo_code = 250;
    return f;
}

static inline void banner(struct smtp_facts *f, const char *host)
{
    fset(f, &f->banner_host, "%s", host);
    fset(f, &f->ehlo_host, "%s", host);
}

/* caps: NULL-terminated; STARTTLS in the list sets starttls_offered. */
static inline void caps(struct smtp_facts *f, ...)
{
    va_list ap;
    va_start(ap, f);
    const char *c;
    while ((c = va_arg(ap, const char *)) != NULL) {
        assert_true(facts_add_cap(f, c, strlen(c)));
        if (!strcmp(c, "STARTTLS"))
            f->starttls_offered = true;
    }
    va_end(ap);
}

static inline void starttls(struct smtp_facts *f, int code, bool established)
{
    f->starttls_requested = true;
    f->starttls_code = code;
    f->starttls_ts = f->flow.start + SW_USEC_PER_SEC / 2;
    if (code == 220) {
        facts_tls_mut(f)->client_hello = true;
        facts_tls_mut(f)->server_hello = established;
        facts_tls_mut(f)->established = established;
        facts_tls_mut(f)->version = established ? 0x0303 : 0;
        f->end = established ? SMTP_END_TLS : SMTP_END_FIN;
    }
}

/* One transaction: rcpt "domain:code" strings, NULL-terminated. */
static inline void tx(struct smtp_facts *f, bool data_clear, uint64_t bytes, ...)
{
    struct facts_tx *t = facts_add_tx(f);
    assert_non_null(t);
    fset(f, &t->mail_from_domain, "sender.example");
    t->mail_code = 250;
    va_list ap;
    va_start(ap, bytes);
    const char *r;
    while ((r = va_arg(ap, const char *)) != NULL) {
        struct facts_rcpt *x = facts_add_rcpt(f, t);
        assert_non_null(x);
        const char *colon = strchr(r, ':');
        fset(f, &x->domain, "%.*s", (int)(colon - r), r);
        x->code = atoi(colon + 1);
    }
    va_end(ap);
    t->data_sent = data_clear;
    t->cleartext = data_clear;
    t->data_bytes = bytes;
    t->data_code = data_clear ? 250 : 0;
    t->accepted = data_clear ? 1 : -1;
    t->ts = f->flow.start + SW_USEC_PER_SEC;
    t->pkt_no = 12;
}

static inline void anomaly(struct smtp_facts *f, enum anomaly_kind k, const char *detail,
                           uint64_t pkt)
{
    struct facts_anomaly *a = facts_add_anomaly(f);
    assert_non_null(a);
    a->kind = k;
    a->dir = DIR_S2C;
    a->ts = f->flow.start + 300000;
    a->pkt_no = pkt;
    fset(f, &a->detail, "%s", detail);
}

/* ---- reading alerts back ---- */

static inline json_t *alert_at(struct fx *x, size_t i)
{
    assert_true(i < x->out.n);
    json_error_t je;
    json_t *o = json_loads(x->out.v[i], 0, &je);
    if (!o)
        fail_msg("alert %zu does not parse: %s: %s", i, je.text, x->out.v[i]);
    return o;
}

static inline const char *jstr(json_t *o, const char *path)
{
    json_t *v = json_object_get(o, path);
    (void)v;
    /* dotted path */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = o;
    for (char *tok = strtok(buf, "."); tok; tok = strtok(NULL, ".")) {
        if (json_is_array(cur))
            cur = json_array_get(cur, (size_t)atoi(tok));
        else
            cur = json_object_get(cur, tok);
        if (!cur)
            return NULL;
    }
    return json_is_string(cur) ? json_string_value(cur) : NULL;
}

static inline json_t *jget(json_t *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = o;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur =
            json_is_array(cur) ? json_array_get(cur, (size_t)atoi(tok)) : json_object_get(cur, tok);
    return cur;
}

static inline long long jint(json_t *o, const char *path)
{
    json_t *v = jget(o, path);
    if (!json_is_integer(v))
        fail_msg("%s: not an integer", path);
    return json_integer_value(v);
}

/* Asserts the alert's rule, severity and confidence; returns it (decref). */
static inline json_t *expect(struct fx *x, size_t i, const char *rule, int sev, const char *conf)
{
    json_t *o = alert_at(x, i);
    assert_string_equal(jstr(o, "rule.id"), rule);
    assert_int_equal(jint(o, "event.severity"), sev);
    assert_string_equal(jstr(o, "stripwatch.confidence"), conf);
    assert_string_equal(jstr(o, "event.kind"), "alert");
    assert_string_equal(jstr(o, "event.dataset"), "stripwatch.alert");
    assert_string_equal(jstr(o, "event.category.0"), "network");
    assert_string_equal(jstr(o, "event.category.1"), "intrusion_detection");
    assert_string_equal(jstr(o, "observer.name"), "test-sensor");
    assert_string_equal(jstr(o, "observer.type"), "sensor");
    assert_string_equal(jstr(o, "stripwatch.severity_name"), sev == 3   ? "high"
                                                             : sev == 2 ? "medium"
                                                                        : "low");
    assert_string_equal(jstr(o, "stripwatch.evidence.session_uid"), jstr(o, "stripwatch.uid"));
    assert_non_null(jstr(o, "stripwatch.version"));
    return o;
}

static inline void feed(struct fx *x, struct smtp_facts *f)
{
    detector_session(x->d, f);
}

static inline void finish(struct fx *x)
{
    detector_finish(x->d);
}

static inline const char *fresh_policy_file(struct fx *x)
{
    static char path[400];
    char now[32], text[600];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(text, sizeof text,
             "{\"enforce.example\": {\"id\": \"1\", \"policy\": \"version: STSv1\\nmode: "
             "enforce\\nmx: mx.enforce.example\\nmax_age: 31557600\\n\", \"fetched_at\": "
             "\"%s\"}}",
             now);
    snprintf(path, sizeof path, "%s/fresh.json", x->dir);
    write_file(path, text);
    return path;
}

/* Posture is bounded (LRU) and aged (capture time; backwards time ages
 * nothing). */

#endif
