/* SPDX-License-Identifier: Apache-2.0 */
/* test_detector.c: unit tests of the detector (alerts/detector.c, rules.c,
 * posture.c, ratelimit.c, alert.c): hand-built session facts for each rule
 * and its negative twin, judged against a real policy engine loaded from a
 * temporary --policy-file; posture, state file, deadlines, rate limiting,
 * determinism. Alerts are parsed back with jansson. */
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

#define T0 1795000000LL /* 2026-11-18T11:06:40Z, after the policies' fetched_at */

static const char POLICIES[] =
    "{\"enforce.example\": {\"id\": \"20261101T000000\", \"policy\": \"version: STSv1\\nmode: "
    "enforce\\nmx: mx.enforce.example\\nmx: *.backup.enforce.example\\nmax_age: "
    "604800\\n\", \"fetched_at\": \"2026-11-01T08:00:00Z\"},\n"
    " \"testing.example\": {\"id\": \"t1\", \"policy\": \"version: STSv1\\nmode: testing\\nmx: "
    "mx.testing.example\\nmax_age: 86400\\n\", \"fetched_at\": \"2026-11-02T09:30:00Z\"}}\n";

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

static void on_emit(void *arg, const char *json, size_t len)
{
    struct lines *l = arg;
    if (getenv("SW_TEST_PRINT"))
        fprintf(stderr, "%.*s\n", (int)len, json);
    l->v = realloc(l->v, (l->n + 1) * sizeof *l->v);
    l->v[l->n] = strndup(json, len);
    l->n++;
}

static void lines_clear(struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static struct policy_engine *engine_new(const char *policy_file, bool fetch, const char *dns)
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

static void fx_cfg(struct fx *x, struct detector_cfg *c)
{
    detector_cfg_defaults(c);
    c->policy = x->pe;
    c->observer_name = "test-sensor";
    c->offline = true;
    c->emit = on_emit;
    c->emit_arg = &x->out;
}

static struct detector *fx_detector(struct fx *x, const struct detector_cfg *c)
{
    (void)x;
    char err[512] = "";
    struct detector *d = detector_new(c, err, sizeof err);
    if (!d)
        fail_msg("detector_new: %s", err);
    return d;
}

static int setup(void **state)
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

static int teardown(void **state)
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

static const char *fresh_policy_file(struct fx *x);

/* ---- facts builders ---- */

static void set_addr(struct sw_addr *a, const char *ip)
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

static struct smtp_facts *session(const char *cip, const char *sip, uint16_t sport, int64_t t)
{
    struct smtp_facts *f = calloc(1, sizeof *f);
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
    snprintf(f->helo_host, sizeof f->helo_host, "out.sender.example");
    f->ehlo_code = 250;
    f->tls.alert_level = -1;
    f->tls.alert_desc = -1;
    return f;
}

static void banner(struct smtp_facts *f, const char *host)
{
    snprintf(f->banner_host, sizeof f->banner_host, "%s", host);
    snprintf(f->ehlo_host, sizeof f->ehlo_host, "%s", host);
}

/* caps: NULL-terminated; STARTTLS in the list sets starttls_offered. */
static void caps(struct smtp_facts *f, ...)
{
    va_list ap;
    va_start(ap, f);
    const char *c;
    while ((c = va_arg(ap, const char *)) != NULL) {
        f->caps[f->n_caps++] = strdup(c);
        if (!strcmp(c, "STARTTLS"))
            f->starttls_offered = true;
    }
    va_end(ap);
}

static void starttls(struct smtp_facts *f, int code, bool established)
{
    f->starttls_requested = true;
    f->starttls_code = code;
    f->starttls_ts = f->flow.start + SW_USEC_PER_SEC / 2;
    if (code == 220) {
        f->tls.client_hello = true;
        f->tls.server_hello = established;
        f->tls.established = established;
        f->tls.version = established ? 0x0303 : 0;
        f->end = established ? SMTP_END_TLS : SMTP_END_FIN;
    }
}

/* One transaction: rcpt "domain:code" strings, NULL-terminated. */
static void tx(struct smtp_facts *f, bool data_clear, uint64_t bytes, ...)
{
    f->tx = realloc(f->tx, (f->n_tx + 1) * sizeof *f->tx);
    struct facts_tx *t = &f->tx[f->n_tx++];
    memset(t, 0, sizeof *t);
    snprintf(t->mail_from_domain, sizeof t->mail_from_domain, "sender.example");
    t->mail_code = 250;
    va_list ap;
    va_start(ap, bytes);
    const char *r;
    while ((r = va_arg(ap, const char *)) != NULL) {
        t->rcpt = realloc(t->rcpt, (t->n_rcpt + 1) * sizeof *t->rcpt);
        struct facts_rcpt *x = &t->rcpt[t->n_rcpt++];
        memset(x, 0, sizeof *x);
        const char *colon = strchr(r, ':');
        snprintf(x->domain, sizeof x->domain, "%.*s", (int)(colon - r), r);
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

static void anomaly(struct smtp_facts *f, enum anomaly_kind k, const char *detail, uint64_t pkt)
{
    struct facts_anomaly *a = &f->anomalies[f->n_anomalies++];
    a->kind = k;
    a->dir = DIR_S2C;
    a->ts = f->flow.start + 300000;
    a->pkt_no = pkt;
    snprintf(a->detail, sizeof a->detail, "%s", detail);
}

/* ---- reading alerts back ---- */

static json_t *alert_at(struct fx *x, size_t i)
{
    assert_true(i < x->out.n);
    json_error_t je;
    json_t *o = json_loads(x->out.v[i], 0, &je);
    if (!o)
        fail_msg("alert %zu does not parse: %s: %s", i, je.text, x->out.v[i]);
    return o;
}

static const char *jstr(json_t *o, const char *path)
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

static json_t *jget(json_t *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = o;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur =
            json_is_array(cur) ? json_array_get(cur, (size_t)atoi(tok)) : json_object_get(cur, tok);
    return cur;
}

static long long jint(json_t *o, const char *path)
{
    json_t *v = jget(o, path);
    if (!json_is_integer(v))
        fail_msg("%s: not an integer", path);
    return json_integer_value(v);
}

/* Asserts the alert's rule, severity and confidence; returns it (decref). */
static json_t *expect(struct fx *x, size_t i, const char *rule, int sev, const char *conf)
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

static void feed(struct fx *x, struct smtp_facts *f)
{
    detector_session(x->d, f);
}

static void finish(struct fx *x)
{
    detector_finish(x->d);
}

/* ---- tests ---- */

static void test_starttls_used_is_clean(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.25", 25, T0);
    banner(f, "mx.enforce.example");
    caps(f, "PIPELINING", "SIZE 10240000", "STARTTLS", "8BITMIME", NULL);
    starttls(f, 220, true);
    f->tls.cert.present = false;
    feed(x, f);
    finish(x);
    assert_int_equal(x->out.n, 0);
    assert_int_equal(detector_stats(x->d)->sessions, 1);
}

static void test_unused_low(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.25", 25, T0);
    banner(f, "mx.other.example");
    caps(f, "PIPELINING", "STARTTLS", NULL);
    tx(f, true, 1506, "other.example:250", NULL);
    feed(x, f);
    finish(x);
    assert_int_equal(x->out.n, 1);
    json_t *o = expect(x, 0, "starttls.unused", 1, "low");
    assert_string_equal(jstr(o, "event.action"), "starttls-not-used");
    assert_string_equal(jstr(o, "event.start"), "2026-11-18T11:06:40.000000Z");
    assert_null(jget(o, "event.end"));
    assert_string_equal(jstr(o, "source.ip"), "192.0.2.10");
    assert_int_equal(jint(o, "destination.port"), 25);
    assert_string_equal(jstr(o, "smtp.transactions.0.rcpt.0.domain"), "other.example");
    assert_int_equal(jint(o, "stripwatch.evidence.cleartext_data.bytes"), 1506);
    /* other.example is not in the file: offline, the policy is unknown */
    assert_string_equal(jstr(o, "mta_sts.domain"), "other.example");
    assert_string_equal(jstr(o, "mta_sts.status"), "unknown");
    assert_int_equal(jint(o, "stripwatch.suppressed"), 0);
    json_decref(o);
}

/* At most 16 recipient domains are consulted per session; the rest counted. */
static void test_policy_domains_bound(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.25", 25, T0);
    caps(f, "STARTTLS", NULL);
    tx(f, true, 10, "d0.example:250", NULL);
    struct facts_tx *t = &f->tx[0];
    t->rcpt = realloc(t->rcpt, 20 * sizeof *t->rcpt);
    for (int i = 1; i < 20; i++) {
        memset(&t->rcpt[i], 0, sizeof t->rcpt[i]);
        snprintf(t->rcpt[i].domain, sizeof t->rcpt[i].domain, "d%d.example", i);
        t->rcpt[i].code = 250;
    }
    t->n_rcpt = 20;
    feed(x, f);
    finish(x);
    assert_int_equal(detector_stats(x->d)->policy_domains_dropped, 4);
    assert_int_equal(x->out.n, 1);
}

static void test_unused_without_data_is_clean(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.25", 25, T0);
    caps(f, "PIPELINING", "STARTTLS", NULL);
    tx(f, false, 0, "other.example:250", NULL);
    feed(x, f);
    finish(x);
    assert_int_equal(x->out.n, 0);
}

static void test_unused_after_client_used_tls(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *a = session("192.0.2.10", "198.51.100.25", 25, T0);
    caps(a, "STARTTLS", NULL);
    starttls(a, 220, true);
    char uid_a[18];
    memcpy(uid_a, a->flow.uid, sizeof uid_a);
    feed(x, a);
    struct smtp_facts *b = session("192.0.2.10", "198.51.100.25", 25, T0 + 600);
    caps(b, "STARTTLS", NULL);
    tx(b, true, 900, "other.example:250", NULL);
    feed(x, b);
    /* another client to the same server, never seen using TLS: low */
    struct smtp_facts *c = session("192.0.2.11", "198.51.100.25", 25, T0 + 700);
    caps(c, "STARTTLS", NULL);
    tx(c, true, 900, "other.example:250", NULL);
    feed(x, c);
    finish(x);
    assert_int_equal(x->out.n, 2);
    json_t *o = expect(x, 0, "starttls.unused", 2, "high");
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.client.session_uid"), uid_a);
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.client.ts"),
                        "2026-11-18T11:06:40.000000Z");
    json_decref(o);
    o = expect(x, 1, "starttls.unused", 1, "low");
    assert_null(jget(o, "stripwatch.evidence.posture"));
    json_decref(o);
}

static void test_stripped_by_posture(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *a = session("192.0.2.10", "198.51.100.25", 25, T0);
    banner(a, "mx.other.example");
    caps(a, "PIPELINING", "STARTTLS", NULL);
    starttls(a, 220, true);
    char uid_a[18];
    memcpy(uid_a, a->flow.uid, sizeof uid_a);
    feed(x, a);
    /* the same server, later, without STARTTLS */
    struct smtp_facts *b = session("192.0.2.12", "198.51.100.25", 25, T0 + 3600);
    banner(b, "mx.other.example");
    caps(b, "PIPELINING", "8BITMIME", NULL);
    tx(b, true, 700, "other.example:250", NULL);
    feed(x, b);
    /* the same, with bytes missing from the server side: low confidence */
    struct smtp_facts *g = session("192.0.2.13", "198.51.100.25", 25, T0 + 3650);
    banner(g, "mx.other.example");
    caps(g, "PIPELINING", "8BITMIME", NULL);
    anomaly(g, ANOM_GAP, "1448 bytes", 6);
    feed(x, g);
    /* the negative twin: a server never seen offering STARTTLS */
    struct smtp_facts *c = session("192.0.2.12", "198.51.100.99", 25, T0 + 3700);
    banner(c, "mx.plain.example");
    caps(c, "PIPELINING", "8BITMIME", NULL);
    tx(c, true, 700, "plain.example:250", NULL);
    feed(x, c);
    finish(x);
    assert_int_equal(x->out.n, 2);
    json_t *o = expect(x, 0, "starttls.stripped", 3, "medium");
    assert_string_equal(jstr(o, "event.action"), "starttls-stripped");
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.server.session_uid"), uid_a);
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.server.key"), "198.51.100.25:25");
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.server.by"), "address");
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.server.ts"),
                        "2026-11-18T11:06:40.000000Z");
    assert_string_equal(jstr(o, "stripwatch.evidence.capabilities.0"), "PIPELINING");
    assert_string_equal(jstr(o, "source.ip"), "192.0.2.12");
    json_decref(o);
    o = expect(x, 1, "starttls.stripped", 3, "low");
    assert_string_equal(jstr(o, "stripwatch.evidence.anomalies.0.kind"), "gap");
    json_decref(o);
}

static void test_stripped_by_enforce_policy(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "203.0.113.5", 25, T0);
    banner(f, "mx.enforce.example");
    caps(f, "PIPELINING", "SIZE 10240000", "8BITMIME", NULL);
    tx(f, true, 2048, "enforce.example:250", "rejected.example:550", NULL);
    feed(x, f);
    finish(x);
    assert_int_equal(x->out.n, 2);
    json_t *o = expect(x, 0, "starttls.stripped", 3, "high");
    assert_string_equal(jstr(o, "mta_sts.domain"), "enforce.example");
    assert_string_equal(jstr(o, "mta_sts.mode"), "enforce");
    assert_string_equal(jstr(o, "mta_sts.id"), "20261101T000000");
    assert_string_equal(jstr(o, "mta_sts.mx.0"), "mx.enforce.example");
    assert_string_equal(jstr(o, "mta_sts.source"), "file");
    assert_string_equal(jstr(o, "mta_sts.status"), "valid");
    assert_string_equal(jstr(o, "mta_sts.fetched_at"), "2026-11-01T08:00:00Z");
    assert_int_equal(jint(o, "mta_sts.max_age"), 604800);
    /* only the accepted recipient's domain was consulted */
    assert_int_equal(json_array_size(jget(o, "stripwatch.evidence.policies")), 1);
    json_decref(o);
    o = expect(x, 1, "delivery.plaintext_policy", 3, "high");
    assert_string_equal(jstr(o, "event.action"), "plaintext-delivery-enforce");
    assert_string_equal(jstr(o, "mta_sts.mode"), "enforce");
    json_decref(o);
}

static void test_stripped_policy_derived_from_server_name(void **state)
{
    /* the client stopped after EHLO (no recipient visible): the policy of the
     * banner host's parent domain names this MX */
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "203.0.113.5", 25, T0);
    banner(f, "mx.enforce.example");
    caps(f, "PIPELINING", "8BITMIME", NULL);
    feed(x, f);
    finish(x);
    assert_int_equal(x->out.n, 1);
    json_t *o = expect(x, 0, "starttls.stripped", 3, "high");
    assert_string_equal(jstr(o, "mta_sts.domain"), "enforce.example");
    assert_true(json_is_true(jget(o, "mta_sts.derived_from_server_name")));
    json_decref(o);
}

static void test_tampered_mangled_token(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.25", 25, T0);
    banner(f, "mx.other.example");
    caps(f, "PIPELINING", "XXXXXXXA", "8BITMIME", NULL);
    anomaly(f, ANOM_CAP_MANGLED, "token=XXXXXXXA", 7);
    tx(f, true, 100, "other.example:250", NULL);
    feed(x, f);
    finish(x);
    assert_int_equal(x->out.n, 1);
    json_t *o = expect(x, 0, "starttls.tampered", 3, "high");
    assert_string_equal(jstr(o, "event.action"), "starttls-capability-mangled");
    assert_string_equal(jstr(o, "stripwatch.evidence.anomalies.0.kind"), "cap_mangled");
    assert_string_equal(jstr(o, "stripwatch.evidence.anomalies.0.detail"), "token=XXXXXXXA");
    assert_int_equal(jint(o, "stripwatch.evidence.anomalies.0.packet"), 7);
    assert_string_equal(jstr(o, "stripwatch.evidence.capabilities.1"), "XXXXXXXA");
    json_decref(o);
}

/* Bytes from the wire that are not UTF-8 never break the alert JSON. */
static void test_non_utf8_wire_bytes(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.25", 25, T0);
    banner(f, "mx.\xff.example");
    caps(f, "PIPELINING", "X-\xc3(", "XXXXXXXA", NULL);
    anomaly(f, ANOM_CAP_MANGLED, "token=\xffXXXXXXA", 7);
    feed(x, f);
    finish(x);
    assert_int_equal(x->out.n, 1);
    json_t *o = expect(x, 0, "starttls.tampered", 3, "high");
    assert_string_equal(jstr(o, "stripwatch.evidence.capabilities.1"), "X-?(");
    assert_string_equal(jstr(o, "stripwatch.evidence.anomalies.0.detail"), "token=?XXXXXXA");
    json_decref(o);
}

static void test_tampered_starttls_unknown_and_plaintext_after_220(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.25", 25, T0);
    caps(f, "STARTTLS", NULL);
    starttls(f, 502, false);
    anomaly(f, ANOM_STARTTLS_UNKNOWN_CMD, "502 5.5.1 Unrecognized command", 9);
    feed(x, f);
    /* a TLS-inspecting firewall: 220, then plaintext (low) */
    struct smtp_facts *g = session("192.0.2.10", "198.51.100.26", 25, T0 + 10);
    caps(g, "STARTTLS", NULL);
    starttls(g, 220, false);
    anomaly(g, ANOM_NOT_TLS_AFTER_STARTTLS, "EHLO TRANSIT-MTA", 11);
    feed(x, g);
    /* negative twin: 502 from a server that never offered STARTTLS */
    struct smtp_facts *h = session("192.0.2.10", "198.51.100.27", 25, T0 + 20);
    caps(h, "PIPELINING", NULL);
    starttls(h, 502, false);
    anomaly(h, ANOM_STARTTLS_NOT_OFFERED, "", 9);
    feed(x, h);
    /* seen between the man in the middle and the server: the client's
     * STARTTLS arrives as XXXXXXXX, the mail follows in clear; tampering
     * explains the unused STARTTLS (no starttls.unused) */
    struct smtp_facts *m = session("192.0.2.10", "198.51.100.29", 25, T0 + 25);
    caps(m, "PIPELINING", "STARTTLS", NULL);
    anomaly(m, ANOM_CAP_MANGLED, "command=XXXXXXXX", 10);
    m->anomalies[0].dir = DIR_C2S;
    anomaly(m, ANOM_STARTTLS_UNKNOWN_CMD, "502 5.5.2 Error: command not recognized", 11);
    tx(m, true, 100, "other.example:250", NULL);
    feed(x, m);
    /* STARTTLS missing from the EHLO reply, yet accepted with 220 */
    struct smtp_facts *k = session("192.0.2.10", "198.51.100.28", 25, T0 + 30);
    caps(k, "PIPELINING", "8BITMIME", NULL);
    starttls(k, 220, true);
    anomaly(k, ANOM_STARTTLS_NOT_OFFERED, "", 9);
    feed(x, k);
    finish(x);
    assert_int_equal(x->out.n, 4);
    json_t *o = expect(x, 2, "starttls.tampered", 3, "high");
    assert_string_equal(jstr(o, "event.action"), "starttls-command-mangled");
    assert_string_equal(jstr(o, "stripwatch.evidence.anomalies.0.dir"), "c2s");
    assert_string_equal(jstr(o, "stripwatch.evidence.anomalies.1.kind"), "starttls_unknown_cmd");
    json_decref(o);
    o = expect(x, 3, "starttls.tampered", 2, "medium");
    assert_string_equal(jstr(o, "event.action"), "starttls-hidden-in-ehlo");
    json_decref(o);
    o = expect(x, 0, "starttls.tampered", 3, "high");
    assert_string_equal(jstr(o, "event.action"), "starttls-command-rejected");
    assert_int_equal(jint(o, "stripwatch.evidence.starttls.reply_code"), 502);
    json_decref(o);
    o = expect(x, 1, "starttls.tampered", 1, "low");
    assert_string_equal(jstr(o, "event.action"), "starttls-plaintext-after-220");
    json_decref(o);
}

static void test_fallback(void **state)
{
    struct fx *x = *state;
    /* in session: 454, then the mail in clear */
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.25", 25, T0);
    caps(f, "STARTTLS", NULL);
    starttls(f, 454, false);
    anomaly(f, ANOM_STARTTLS_REFUSED, "454 4.7.0 TLS not available", 8);
    tx(f, true, 300, "other.example:250", NULL);
    feed(x, f);
    /* across sessions: a failed handshake, then a plaintext retry */
    struct smtp_facts *a = session("192.0.2.20", "198.51.100.30", 25, T0 + 100);
    caps(a, "STARTTLS", NULL);
    starttls(a, 220, false);
    a->tls.alert_level = 2;
    a->tls.alert_desc = 40;
    char uid_a[18];
    memcpy(uid_a, a->flow.uid, sizeof uid_a);
    feed(x, a);
    struct smtp_facts *b = session("192.0.2.20", "198.51.100.30", 25, T0 + 130);
    caps(b, "STARTTLS", NULL);
    tx(b, true, 300, "enforce.example:250", NULL);
    feed(x, b);
    finish(x);
    assert_int_equal(x->out.n, 3);
    json_t *o = expect(x, 0, "starttls.fallback", 2, "medium");
    assert_string_equal(jstr(o, "stripwatch.evidence.reason"),
                        "STARTTLS answered 454, then content sent in clear");
    json_decref(o);
    o = expect(x, 1, "starttls.fallback", 3, "high");
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.client_failure.session_uid"), uid_a);
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.client_failure.detail"),
                        "TLS handshake failed (alert level 2 description 40)");
    assert_string_equal(jstr(o, "mta_sts.domain"), "enforce.example");
    json_decref(o);
    /* the same plaintext session also breaks the enforce policy; its server
     * (no names) cannot be checked against the mx list; starttls.unused is
     * left out: the fallback explains it */
    o = expect(x, 2, "delivery.plaintext_policy", 3, "high");
    json_decref(o);
}

static void test_plaintext_testing_and_mx_mismatch(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.40", 25, T0);
    banner(f, "mx.testing.example");
    caps(f, "PIPELINING", "STARTTLS", NULL);
    tx(f, true, 300, "testing.example:250", NULL);
    feed(x, f);
    struct smtp_facts *g = session("192.0.2.10", "198.51.100.41", 25, T0 + 5);
    banner(g, "smtp.attacker.example");
    caps(g, "PIPELINING", NULL);
    tx(g, true, 300, "enforce.example:250", NULL);
    feed(x, g);
    finish(x);
    assert_int_equal(x->out.n, 4);
    json_t *o = expect(x, 0, "starttls.unused", 2, "medium");
    assert_string_equal(jstr(o, "mta_sts.mode"), "testing");
    json_decref(o);
    o = expect(x, 1, "delivery.plaintext_policy", 1, "high");
    assert_string_equal(jstr(o, "event.action"), "plaintext-delivery-testing");
    assert_string_equal(jstr(o, "mta_sts.fetched_at"), "2026-11-02T09:30:00Z");
    json_decref(o);
    o = expect(x, 2, "delivery.plaintext_policy", 3, "high");
    json_decref(o);
    o = expect(x, 3, "policy.mx_mismatch", 2, "medium");
    assert_string_equal(jstr(o, "stripwatch.evidence.server_names.0"), "smtp.attacker.example");
    assert_string_equal(jstr(o, "mta_sts.domain"), "enforce.example");
    json_decref(o);
}

static void test_certificate_invalid(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("192.0.2.10", "203.0.113.5", 25, T0);
    banner(f, "mx.enforce.example");
    caps(f, "STARTTLS", NULL);
    starttls(f, 220, true);
    snprintf(f->tls.sni, sizeof f->tls.sni, "mx.enforce.example");
    f->tls.cert.present = true;
    f->tls.cert.self_signed = true;
    snprintf(f->tls.cert.subject, sizeof f->tls.cert.subject, "CN=mx.enforce.example");
    snprintf(f->tls.cert.issuer, sizeof f->tls.cert.issuer, "CN=mx.enforce.example");
    snprintf(f->tls.cert.not_before, sizeof f->tls.cert.not_before, "2026-01-01T00:00:00Z");
    snprintf(f->tls.cert.not_after, sizeof f->tls.cert.not_after, "2027-01-01T00:00:00Z");
    f->tls.cert.san_dns[f->tls.cert.n_san++] = strdup("mx.enforce.example");
    feed(x, f);
    /* negative twin: a CA-issued certificate naming the MX */
    struct smtp_facts *g = session("192.0.2.10", "203.0.113.5", 25, T0 + 60);
    banner(g, "mx.enforce.example");
    caps(g, "STARTTLS", NULL);
    starttls(g, 220, true);
    snprintf(g->tls.sni, sizeof g->tls.sni, "mx.enforce.example");
    g->tls.cert.present = true;
    snprintf(g->tls.cert.subject, sizeof g->tls.cert.subject, "CN=mx.enforce.example");
    snprintf(g->tls.cert.issuer, sizeof g->tls.cert.issuer, "CN=Example CA");
    snprintf(g->tls.cert.not_before, sizeof g->tls.cert.not_before, "2026-01-01T00:00:00Z");
    snprintf(g->tls.cert.not_after, sizeof g->tls.cert.not_after, "2027-01-01T00:00:00Z");
    g->tls.cert.san_dns[g->tls.cert.n_san++] = strdup("*.enforce.example");
    feed(x, g);
    finish(x);
    assert_int_equal(x->out.n, 1);
    json_t *o = expect(x, 0, "policy.certificate_invalid", 3, "medium");
    assert_string_equal(jstr(o, "stripwatch.evidence.problems.0"), "self-signed");
    assert_null(jget(o, "stripwatch.evidence.problems.1"));
    assert_string_equal(jstr(o, "mta_sts.domain"), "enforce.example");
    json_decref(o);
}

static void test_auth_cleartext(void **state)
{
    struct fx *x = *state;
    struct smtp_facts *f = session("10.0.0.1", "64.12.168.40", 587, T0);
    caps(f, "AUTH PLAIN LOGIN", "STARTTLS", NULL);
    snprintf(f->auth_mechanism, sizeof f->auth_mechanism, "PLAIN");
    f->auth_cleartext = true;
    f->auth_code = 235;
    tx(f, true, 928, "enforce.example:250", NULL);
    feed(x, f);
    /* negative twin: AUTH LOGIN refused as out of sequence, no credential */
    struct smtp_facts *g = session("10.0.0.2", "10.0.0.1", 1080, T0 + 5);
    caps(g, "AUTH LOGIN", NULL);
    snprintf(g->auth_mechanism, sizeof g->auth_mechanism, "LOGIN");
    g->auth_cleartext = true;
    g->auth_code = 503;
    feed(x, g);
    finish(x);
    /* submission: no MTA-STS rule applies, the unused STARTTLS is low */
    assert_int_equal(x->out.n, 2);
    json_t *o = expect(x, 0, "starttls.unused", 1, "low");
    assert_null(jget(o, "mta_sts"));
    json_decref(o);
    o = expect(x, 1, "auth.cleartext", 3, "high");
    assert_string_equal(jstr(o, "stripwatch.evidence.auth.mechanism"), "PLAIN");
    assert_int_equal(jint(o, "stripwatch.evidence.auth.reply_code"), 235);
    json_decref(o);
}

static void test_state_file_round_trip(void **state)
{
    struct fx *x = *state;
    char path[400];
    snprintf(path, sizeof path, "%s/state.json", x->dir);
    struct detector_cfg c;
    fx_cfg(x, &c);
    c.state_file = path;
    struct detector *d1 = fx_detector(x, &c);
    struct smtp_facts *a = session("192.0.2.10", "198.51.100.25", 25, T0);
    banner(a, "mx.other.example");
    caps(a, "STARTTLS", NULL);
    starttls(a, 220, true);
    char uid_a[18];
    memcpy(uid_a, a->flow.uid, sizeof uid_a);
    detector_session(d1, a);
    detector_finish(d1);
    detector_free(d1);
    assert_int_equal(x->out.n, 0);

    /* a second run (another process in real life) starts from the file; the
     * server answers from a new address, known by its banner host */
    struct detector *d2 = fx_detector(x, &c);
    struct smtp_facts *b = session("192.0.2.12", "198.51.100.77", 25, T0 + 86400);
    banner(b, "MX.other.example");
    caps(b, "PIPELINING", NULL);
    tx(b, true, 10, "other.example:250", NULL);
    detector_session(d2, b);
    detector_finish(d2);
    detector_free(d2);
    assert_int_equal(x->out.n, 1);
    json_t *o = expect(x, 0, "starttls.stripped", 2, "medium");
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.server.session_uid"), uid_a);
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.server.by"), "banner_host");
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.server.key"), "mx.other.example:25");
    json_decref(o);
}

static void test_state_file_errors(void **state)
{
    struct fx *x = *state;
    char path[400], want[600], err[600];
    struct detector_cfg c;
    fx_cfg(x, &c);
    c.state_file = path;

    snprintf(path, sizeof path, "%s/bad.json", x->dir);
    write_file(path, "{\"stripwatch_posture\": 1,\n \"entries\": [\n");
    err[0] = 0;
    assert_null(detector_new(&c, err, sizeof err));
    snprintf(want, sizeof want, "%s: line 3: ", path);
    assert_memory_equal(err, want, strlen(want));

    write_file(path, "{\"stripwatch_posture\": 1, \"entries\": [{\"kind\": \"bogus\"}]}");
    assert_null(detector_new(&c, err, sizeof err));
    snprintf(want, sizeof want, "%s: entries[0]: kind: not server, name or client", path);
    assert_string_equal(err, want);

    write_file(path, "[]");
    assert_null(detector_new(&c, err, sizeof err));
    snprintf(want, sizeof want,
             "%s: not a stripwatch state file (want \"stripwatch_posture\": 1 and "
             "an \"entries\" array)",
             path);
    assert_string_equal(err, want);

    /* missing: a first run, empty state */
    snprintf(path, sizeof path, "%s/none.json", x->dir);
    struct detector *d = fx_detector(x, &c);
    detector_free(d);
}

static void test_rate_limit_suppression(void **state)
{
    struct fx *x = *state;
    struct detector_cfg c;
    fx_cfg(x, &c);
    c.rate_per_rule_server = 2;
    struct detector *d = fx_detector(x, &c);
    for (int i = 0; i < 5; i++) {
        struct smtp_facts *f = session("192.0.2.10", "198.51.100.25", 25, T0 + i);
        caps(f, "STARTTLS", NULL);
        tx(f, true, 10, "other.example:250", NULL);
        detector_session(d, f);
    }
    /* a minute later the bucket holds tokens again */
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.25", 25, T0 + 64);
    caps(f, "STARTTLS", NULL);
    tx(f, true, 10, "other.example:250", NULL);
    detector_session(d, f);
    detector_finish(d);
    assert_int_equal(detector_stats(d)->suppressed, 3);
    assert_int_equal(detector_stats(d)->alerts, 3);
    assert_int_equal(detector_stats(d)->by_rule[RULE_STARTTLS_UNUSED], 3);
    detector_free(d);
    assert_int_equal(x->out.n, 3);
    json_t *o = alert_at(x, 2);
    assert_int_equal(jint(o, "stripwatch.suppressed"), 3);
    json_decref(o);
    o = alert_at(x, 1);
    assert_int_equal(jint(o, "stripwatch.suppressed"), 0);
    json_decref(o);
}

static void test_ratelimit_unit(void **state)
{
    (void)state;
    struct ratelimit *r = ratelimit_new(1, 16);
    uint64_t s = 99;
    assert_true(ratelimit_allow(r, 0, "a", 0, &s));
    assert_int_equal(s, 0);
    assert_false(ratelimit_allow(r, 0, "a", 1, &s));
    /* another rule or server has its own bucket */
    assert_true(ratelimit_allow(r, 1, "a", 1, &s));
    assert_true(ratelimit_allow(r, 0, "b", 1, &s));
    /* time going backwards refills nothing */
    assert_false(ratelimit_allow(r, 0, "a", -100 * SW_USEC_PER_SEC, &s));
    assert_true(ratelimit_allow(r, 0, "a", 61 * SW_USEC_PER_SEC, &s));
    assert_int_equal(s, 2);
    ratelimit_free(r);
    ratelimit_free(NULL);
}

/* A domain the file does not hold, looked up with fetching on against a DNS
 * server that never answers: the verdict waits, then leaves with status
 * "unknown"; a later session that is answered at once leaves after it. */
static void test_pending_deadline_and_order(void **state)
{
    struct fx *x = *state;
    /* a UDP port that is bound but never answers */
    int sock = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(sock >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(sock, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t sl = sizeof sin;
    assert_int_equal(getsockname(sock, (struct sockaddr *)&sin, &sl), 0);
    char dns[64];
    snprintf(dns, sizeof dns, "127.0.0.1@%u", ntohs(sin.sin_port));
    struct policy_engine *pe = engine_new(fresh_policy_file(x), true, dns);

    struct detector_cfg c;
    fx_cfg(x, &c);
    c.policy = pe;
    c.policy_deadline_ms = 300;
    struct detector *d = fx_detector(x, &c);
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.25", 25, T0);
    caps(f, "STARTTLS", NULL);
    tx(f, true, 10, "slow.example:250", NULL);
    detector_session(d, f);
    struct smtp_facts *g = session("192.0.2.10", "198.51.100.26", 25, T0 + 1);
    caps(g, "PIPELINING", NULL);
    banner(g, "mx.enforce.example");
    tx(g, true, 10, "enforce.example:250", NULL);
    detector_session(d, g);
    assert_int_equal(x->out.n, 0); /* the second waits behind the first */
    assert_int_equal(detector_stats(d)->pending_peak, 1);
    assert_int_equal(detector_stats(d)->lookups_in_flight, 1);
    detector_finish(d);
    assert_int_equal(detector_stats(d)->policy_unknown, 1);
    assert_int_equal(x->out.n, 3);
    json_t *o = expect(x, 0, "starttls.unused", 1, "low");
    assert_string_equal(jstr(o, "mta_sts.domain"), "slow.example");
    assert_string_equal(jstr(o, "mta_sts.status"), "unknown");
    json_decref(o);
    o = expect(x, 1, "starttls.stripped", 3, "high");
    json_decref(o);
    o = expect(x, 2, "delivery.plaintext_policy", 3, "high");
    json_decref(o);
    /* the engine still owes the callback: freeing both now is the shutdown
     * path (nothing dangles, nothing leaks under ASan) */
    detector_free(d);
    policy_engine_free(pe);
    close(sock);
}

/* With fetching on, a file policy counts only while fresh: one fetched now. */
static const char *fresh_policy_file(struct fx *x)
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
static void offer(struct detector *d, const char *sip, int64_t t)
{
    struct smtp_facts *f = session("192.0.2.10", sip, 25, t);
    caps(f, "STARTTLS", NULL);
    starttls(f, 220, true);
    detector_session(d, f);
}

static void strip(struct detector *d, const char *sip, int64_t t)
{
    struct smtp_facts *f = session("192.0.2.10", sip, 25, t);
    caps(f, "PIPELINING", NULL);
    detector_session(d, f);
}

static void test_posture_bound_and_age(void **state)
{
    struct fx *x = *state;
    struct detector_cfg c;
    fx_cfg(x, &c);
    c.posture_max = 4; /* each offer learns a server and a client entry */
    c.posture_max_age = 3600;
    struct detector *d = fx_detector(x, &c);
    offer(d, "198.51.100.1", T0);
    offer(d, "198.51.100.2", T0 + 1);
    offer(d, "198.51.100.3", T0 + 2);    /* pushes .1 out */
    strip(d, "198.51.100.1", T0 + 10);   /* forgotten: no alert */
    strip(d, "198.51.100.3", T0 + 20);   /* alert 0 */
    strip(d, "198.51.100.3", T0 - 500);  /* earlier in time: still known, alert 1 */
    strip(d, "198.51.100.3", T0 + 7200); /* aged out: no alert */
    strip(d, "198.51.100.3", T0 + 30);   /* and forgotten since */
    detector_finish(d);
    /* 3 servers + 3 client entries learned into 4 slots: 2 evicted; at
     * T0+7200 the .3 server and client entries aged out */
    assert_int_equal(detector_stats(d)->posture_entries, 2);
    assert_int_equal(detector_stats(d)->posture_evicted, 2);
    assert_int_equal(detector_stats(d)->posture_expired, 2);
    detector_free(d);
    assert_int_equal(x->out.n, 2);
    json_t *o = expect(x, 0, "starttls.stripped", 3, "medium");
    assert_string_equal(jstr(o, "destination.ip"), "198.51.100.3");
    json_decref(o);
    o = expect(x, 1, "starttls.stripped", 3, "medium");
    assert_string_equal(jstr(o, "@timestamp"), "2026-11-18T10:58:20.000000Z");
    json_decref(o);
}

/* The real path: alerts through a JSON-lines file sink. */
static void test_file_sink(void **state)
{
    struct fx *x = *state;
    char path[400], err[512] = "";
    snprintf(path, sizeof path, "%s/alerts.jsonl", x->dir);
    struct sink_cfg sc;
    sink_cfg_defaults(&sc);
    sc.out_path = path;
    struct sink *sk = sink_new(&sc, err, sizeof err);
    if (!sk)
        fail_msg("sink_new: %s", err);
    struct detector_cfg c;
    fx_cfg(x, &c);
    c.emit = NULL;
    c.sink = sk;
    struct detector *d = fx_detector(x, &c);
    struct smtp_facts *f = session("192.0.2.10", "203.0.113.5", 25, T0);
    banner(f, "mx.enforce.example");
    caps(f, "PIPELINING", NULL);
    tx(f, true, 2048, "enforce.example:250", NULL);
    detector_session(d, f);
    detector_finish(d);
    detector_free(d);
    assert_int_equal(sink_flush(sk, 5000), SW_OK);
    sink_free(sk);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char line[65536];
    const char *want[] = {"starttls.stripped", "delivery.plaintext_policy"};
    size_t n = 0;
    while (fgets(line, sizeof line, fp)) {
        assert_true(n < 2);
        assert_int_equal(line[strlen(line) - 1], '\n');
        json_t *o = json_loads(line, 0, NULL);
        assert_non_null(o);
        json_t *id = json_object_get(json_object_get(o, "rule"), "id");
        assert_string_equal(json_string_value(id), want[n]);
        json_decref(o);
        n++;
    }
    fclose(fp);
    assert_int_equal(n, 2);
}

/* Random facts (fixed seed): every alert is one valid JSON object with the
 * fields every consumer relies on, whatever the combination. */
static uint32_t rnd_state = 12345;
static uint32_t rnd(uint32_t n)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 8) % n;
}

static void test_random_facts(void **state)
{
    struct fx *x = *state;
    static const char *const capv[] = {"STARTTLS", "PIPELINING", "XXXXXXXA", "AUTH PLAIN LOGIN",
                                       "8BITMIME", "CHUNKING",   "\xff\xfe"};
    static const char *const doms[] = {"enforce.example:250",
                                       "testing.example:250",
                                       "other.example:250",
                                       "enforce.example:550",
                                       "testing.example:0",
                                       "\x01"
                                       "bad:250"};
    static const int codes[] = {0, 220, 454, 500, 502, 554};
    static const char *const hosts[] = {"",          "mx.enforce.example", "mx.testing.example",
                                        "192.0.2.1", "[192.0.2.1]",        "evil.example"};
    static const uint16_t ports[] = {25, 587, 465, 2525};
    for (int i = 0; i < 3000; i++) {
        char sip[32];
        snprintf(sip, sizeof sip, "198.51.100.%u", rnd(8));
        struct smtp_facts *f = session(rnd(2) ? "192.0.2.10" : "192.0.2.11", sip, ports[rnd(4)],
                                       T0 + i * (int)rnd(5) - 100);
        banner(f, hosts[rnd(6)]);
        f->ehlo_code = rnd(5) ? 250 : 500;
        for (uint32_t k = rnd(5); k > 0; k--) {
            const char *c = capv[rnd(7)];
            f->caps[f->n_caps++] = strdup(c);
            if (!strcmp(c, "STARTTLS"))
                f->starttls_offered = true;
        }
        if (rnd(3) == 0)
            starttls(f, codes[rnd(6)], rnd(2));
        if (rnd(4) == 0) {
            snprintf(f->auth_mechanism, sizeof f->auth_mechanism, rnd(2) ? "PLAIN" : "LOGIN");
            f->auth_cleartext = true;
            f->auth_code = rnd(2) ? 235 : 503;
        }
        for (uint32_t k = rnd(3); k > 0; k--)
            tx(f, rnd(2), rnd(5000), doms[rnd(6)], doms[rnd(6)], NULL);
        for (uint32_t k = rnd(3); k > 0; k--)
            anomaly(f, (enum anomaly_kind)rnd(ANOM_KIND_COUNT), "token=\xffX", rnd(100));
        if (f->tls.established && rnd(2)) {
            f->tls.cert.present = true;
            f->tls.cert.self_signed = rnd(2);
            snprintf(f->tls.cert.subject, sizeof f->tls.cert.subject, "CN=%s", hosts[rnd(6)]);
            snprintf(f->tls.cert.not_after, sizeof f->tls.cert.not_after,
                     rnd(2) ? "2020-01-01T00:00:00Z" : "garbage");
            snprintf(f->tls.sni, sizeof f->tls.sni, "%s", hosts[rnd(6)]);
        }
        feed(x, f);
    }
    finish(x);
    assert_true(x->out.n > 100);
    for (size_t i = 0; i < x->out.n; i++) {
        json_t *o = alert_at(x, i);
        assert_non_null(jstr(o, "rule.id"));
        long long sev = jint(o, "event.severity");
        assert_true(sev >= 1 && sev <= 3);
        assert_non_null(jstr(o, "stripwatch.confidence"));
        assert_non_null(jstr(o, "stripwatch.evidence.session_uid"));
        assert_non_null(jstr(o, "stripwatch.evidence.reason"));
        assert_non_null(jstr(o, "destination.ip"));
        json_decref(o);
    }
}

static void run_scenario(struct fx *x, struct lines *out)
{
    struct detector_cfg c;
    fx_cfg(x, &c);
    c.emit_arg = out;
    struct detector *d = fx_detector(x, &c);
    uid_counter = 1000;
    struct smtp_facts *a = session("192.0.2.10", "198.51.100.25", 25, T0);
    banner(a, "mx.enforce.example");
    caps(a, "STARTTLS", NULL);
    starttls(a, 220, true);
    detector_session(d, a);
    struct smtp_facts *b = session("192.0.2.10", "198.51.100.25", 25, T0 + 50);
    banner(b, "mx.enforce.example");
    caps(b, "XXXXXXXA", NULL);
    anomaly(b, ANOM_CAP_MANGLED, "token=XXXXXXXA", 5);
    tx(b, true, 77, "enforce.example:250", "testing.example:250", NULL);
    detector_session(d, b);
    detector_finish(d);
    detector_free(d);
}

static void test_determinism(void **state)
{
    struct fx *x = *state;
    struct lines one = {0}, two = {0};
    run_scenario(x, &one);
    run_scenario(x, &two);
    assert_int_equal(one.n, 2);
    assert_int_equal(two.n, one.n);
    for (size_t i = 0; i < one.n; i++)
        assert_string_equal(one.v[i], two.v[i]);
    lines_clear(&one);
    lines_clear(&two);
}

static void test_max_pending_bound(void **state)
{
    struct fx *x = *state;
    int sock = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(sock, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t sl = sizeof sin;
    assert_int_equal(getsockname(sock, (struct sockaddr *)&sin, &sl), 0);
    char dns[64];
    snprintf(dns, sizeof dns, "127.0.0.1@%u", ntohs(sin.sin_port));
    struct policy_engine *pe = engine_new(x->policy_path, true, dns);
    struct detector_cfg c;
    fx_cfg(x, &c);
    c.policy = pe;
    c.max_pending = 2;
    c.policy_deadline_ms = 60000;
    struct detector *d = fx_detector(x, &c);
    const char *doms[] = {"a.example:250", "b.example:250", "c.example:250"};
    for (int i = 0; i < 3; i++) {
        struct smtp_facts *f = session("192.0.2.10", "198.51.100.25", 25, T0 + i);
        caps(f, "STARTTLS", NULL);
        tx(f, true, 10, doms[i], NULL);
        detector_session(d, f);
    }
    /* the third pushed the first out, unknown, in order */
    assert_int_equal(detector_stats(d)->pending_dropped, 1);
    assert_int_equal(x->out.n, 1);
    json_t *o = alert_at(x, 0);
    assert_string_equal(jstr(o, "mta_sts.domain"), "a.example");
    assert_string_equal(jstr(o, "mta_sts.status"), "unknown");
    json_decref(o);
    detector_free(d); /* pending records are freed with the detector */
    policy_engine_free(pe);
    close(sock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_starttls_used_is_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unused_low, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unused_without_data_is_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_domains_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unused_after_client_used_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stripped_by_posture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stripped_by_enforce_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stripped_policy_derived_from_server_name, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tampered_mangled_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_starttls_unknown_and_plaintext_after_220,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_utf8_wire_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plaintext_testing_and_mx_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_certificate_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_cleartext, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_file_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_posture_bound_and_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_suppression, setup, teardown),
        cmocka_unit_test(test_ratelimit_unit),
        cmocka_unit_test_setup_teardown(test_pending_deadline_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_determinism, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_sink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_facts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_pending_bound, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
