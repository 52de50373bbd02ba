/* SPDX-License-Identifier: Apache-2.0 */
/* test_detector_state.c: unit tests of what the detector keeps between
 * sessions (alerts/detector.c, posture.c, ratelimit.c): state file, posture
 * bound and age, policy deadlines and session order, the pending bound, rate
 * limiting, determinism, the file sink, random sessions. */
#include "detector_fixture.h"

#include "alerts/session_json.h"

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
    a->flow.syn_ack = flow_syn_ack_fp(57, 65160, 0x61);
    char uid_a[18];
    memcpy(uid_a, a->flow.uid, sizeof uid_a);
    detector_session(d1, a);
    detector_finish(d1);
    detector_free(d1);
    assert_int_equal(x->out.n, 0);
    char *saved = slurp_file(path);
    assert_non_null(strstr(saved, "\"syn_ack\": 962723464")); /* 57<<24 | 0x61<<16 | 65160 */
    free(saved);

    /* a second run (another process in real life) starts from the file; the
     * server answers from a new address, known by its banner host */
    struct detector *d2 = fx_detector(x, &c);
    struct smtp_facts *b = session("192.0.2.12", "198.51.100.77", 25, T0 + 86400);
    banner(b, "MX.other.example");
    caps(b, "PIPELINING", NULL);
    tx(b, true, 10, "other.example:250", NULL);
    b->flow.syn_ack = flow_syn_ack_fp(64, 65535, 0x61);
    detector_session(d2, b);
    /* the first address again, its SYN-ACK from another TTL: the learned
     * fingerprint came back from the file */
    struct smtp_facts *e = session("192.0.2.12", "198.51.100.25", 25, T0 + 86500);
    banner(e, "mx.other.example");
    caps(e, "PIPELINING", NULL);
    tx(e, true, 10, "other.example:250", NULL);
    e->flow.syn_ack = flow_syn_ack_fp(58, 65160, 0x61);
    detector_session(d2, e);
    detector_finish(d2);
    detector_free(d2);
    assert_int_equal(x->out.n, 2);
    json_t *o = expect(x, 0, "starttls.stripped", 2, "medium");
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.server.session_uid"), uid_a);
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.server.by"), "banner_host");
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.server.key"), "mx.other.example:25");
    /* known by name only: another address's SYN-ACK says nothing */
    assert_null(jget(o, "stripwatch.evidence.path"));
    json_decref(o);
    o = expect(x, 1, "starttls.stripped", 3, "medium");
    assert_int_equal(jint(o, "stripwatch.evidence.path.syn_ack_before.ttl"), 57);
    assert_int_equal(jint(o, "stripwatch.evidence.path.syn_ack.ttl"), 58);
    assert_string_equal(jstr(o, "stripwatch.evidence.path.changed.0"), "ttl");
    assert_null(jget(o, "stripwatch.evidence.path.changed.1"));
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

/* Bounded: with the probe window (8) covering the whole table, a ninth key
 * replaces the least recently used one, whose suppressed count is lost. */
static void test_ratelimit_evict(void **state)
{
    (void)state;
    struct ratelimit *r = ratelimit_new(1, 8);
    uint64_t s = 99;
    char key[8];
    assert_true(ratelimit_allow(r, 0, "k0", 0, &s));
    assert_false(ratelimit_allow(r, 0, "k0", 0, &s)); /* k0: 1 suppressed */
    for (int i = 1; i < 8; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_true(ratelimit_allow(r, 0, key, 0, &s));
    }
    assert_int_equal(ratelimit_lost_suppressed(r), 0);
    assert_true(ratelimit_allow(r, 0, "k8", 0, &s)); /* replaces k0 */
    assert_int_equal(ratelimit_lost_suppressed(r), 1);
    assert_true(ratelimit_allow(r, 0, "k0", 0, &s)); /* a new bucket, replaces k1 */
    assert_int_equal(s, 0);
    assert_false(ratelimit_allow(r, 0, "k2", 0, &s)); /* still held: no token */
    assert_true(ratelimit_allow(r, 0, "k1", 0, &s));  /* replaced: a new bucket */
    assert_false(ratelimit_allow(r, 0, "k8", 0, &s));
    assert_int_equal(ratelimit_lost_suppressed(r), 1);
    ratelimit_free(r);
}

/* A detector whose policy engine fetches through a DNS server that never
 * answers (a bound UDP port, *sock: close it after freeing both), with a
 * 300 ms policy deadline. */
static struct detector *silent_detector(struct fx *x, int *sock, struct policy_engine **pe)
{
    *sock = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(*sock >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(*sock, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t sl = sizeof sin;
    assert_int_equal(getsockname(*sock, (struct sockaddr *)&sin, &sl), 0);
    char dns[64];
    snprintf(dns, sizeof dns, "127.0.0.1@%u", ntohs(sin.sin_port));
    *pe = engine_new(fresh_policy_file(x), true, dns);
    struct detector_cfg c;
    fx_cfg(x, &c);
    c.policy = *pe;
    c.policy_deadline_ms = 300;
    return fx_detector(x, &c);
}

/* A domain the file does not hold, looked up with fetching on against a DNS
 * server that never answers: the verdict waits, then leaves with status
 * "unknown"; a later session that is answered at once leaves after it. */
static void test_pending_deadline_and_order(void **state)
{
    struct fx *x = *state;
    int sock;
    struct policy_engine *pe;
    struct detector *d = silent_detector(x, &sock, &pe);
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

/* An unused-STARTTLS session, as test_unused_low builds it. */
static struct smtp_facts *unused_session(int64_t t, const char *domain)
{
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.25", 25, t);
    banner(f, "mx.other.example");
    caps(f, "PIPELINING", "STARTTLS", NULL);
    char rcpt[128];
    snprintf(rcpt, sizeof rcpt, "%s:250", domain);
    tx(f, true, 1506, rcpt, NULL);
    return f;
}

/* The session record's members from "source" to "tls", handed to the
 * detector with the session (detector_session_rendered), are copied into an
 * alert emitted during that call: the record's own text gives the alert the
 * record's bytes, another text shows it is copied, not written again. An
 * alert that waits for its policy (emitted after the call) writes them
 * itself: the text handed over is gone by then. */
static void test_alert_copies_record_members(void **state)
{
    struct fx *x = *state;
    /* with its record's text, and without: the alert holds the record's
     * members either way */
    for (int with = 1; with >= 0; with--) {
        struct smtp_facts *f = unused_session(T0 + 1 - with, "other.example");
        struct jsonw rec;
        jsonw_init(&rec);
        size_t from = 0, to = 0;
        session_json_write_at(&rec, f, NULL, &from, &to);
        assert_true(jsonw_ok(&rec));
        char *members = strndup(rec.buf + from, to - from);
        assert_true(strncmp(members, "\"source\":{", 10) == 0);
        assert_non_null(strstr(members, ",\"tls\":{"));
        assert_int_equal(members[to - from - 1], '}');
        size_t before = x->out.n;
        if (with)
            detector_session_rendered(x->d, f, rec.buf + from, to - from);
        else
            detector_session(x->d, f);
        assert_int_equal(x->out.n, before + 1);
        const char *at = strstr(x->out.v[before], members);
        assert_non_null(at);
        assert_int_equal(at[-1], ','); /* after stripwatch's object */
        assert_true(strncmp(at + (to - from), ",\"rule\":{", 9) == 0);
        free(members);
        jsonw_free(&rec);
    }

    /* another text: it is what the alert holds (the text is trusted) */
    static const char other[] = "\"source\":{\"ip\":\"copied\"}";
    detector_session_rendered(x->d, unused_session(T0 + 2, "other.example"), other,
                              sizeof other - 1);
    assert_int_equal(x->out.n, 3);
    json_t *o = expect(x, 2, "starttls.unused", 1, "low");
    assert_string_equal(jstr(o, "source.ip"), "copied");
    assert_null(jget(o, "destination.ip"));
    assert_string_equal(jstr(o, "rule.id"), "starttls.unused"); /* the tail follows */
    json_decref(o);

    /* a policy lookup that never answers: the alert leaves after the call,
     * when the text handed over has been overwritten */
    int sock;
    struct policy_engine *pe;
    struct detector *d = silent_detector(x, &sock, &pe);
    char gone[sizeof other];
    memcpy(gone, other, sizeof other);
    detector_session_rendered(d, unused_session(T0 + 3, "slow.example"), gone, sizeof gone - 1);
    assert_int_equal(x->out.n, 3); /* waiting for slow.example's policy */
    memset(gone, 'x', sizeof gone - 1);
    detector_finish(d);
    assert_int_equal(x->out.n, 4);
    o = expect(x, 3, "starttls.unused", 1, "low");
    assert_string_equal(jstr(o, "source.ip"), "192.0.2.10");
    assert_string_equal(jstr(o, "destination.ip"), "198.51.100.25");
    assert_string_equal(jstr(o, "mta_sts.status"), "unknown");
    json_decref(o);
    detector_free(d);
    policy_engine_free(pe);
    close(sock);
}

/* With fetching on, a file policy counts only while fresh: one fetched now. */
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
    strip(d, "198.51.100.3", T0 - 500);  /* before T0+2, when it was learned: no alert */
    strip(d, "198.51.100.3", T0 + 7200); /* aged out: no alert */
    strip(d, "198.51.100.3", T0 + 30);   /* and forgotten since */
    detector_finish(d);
    /* 3 servers + 3 client entries learned into 4 slots: 2 evicted; at
     * T0+7200 the .3 server and client entries aged out */
    assert_int_equal(detector_stats(d)->posture_entries, 2);
    assert_int_equal(detector_stats(d)->posture_evicted, 2);
    assert_int_equal(detector_stats(d)->posture_expired, 2);
    detector_free(d);
    assert_int_equal(x->out.n, 1);
    json_t *o = expect(x, 0, "starttls.stripped", 3, "medium");
    assert_string_equal(jstr(o, "destination.ip"), "198.51.100.3");
    assert_string_equal(jstr(o, "@timestamp"), "2026-11-18T11:07:00.000000Z");
    json_decref(o);
}

/* Issue 8: the state file follows the capture-time rule: what it holds is
 * shown only to sessions that ended after the time it was learned at (the
 * end of the session that showed it), also in a second run; a file written
 * before first and the learned-at times existed loads as learned at ok_ts. */
static void test_state_file_capture_time(void **state)
{
    struct fx *x = *state;
    char path[400];
    snprintf(path, sizeof path, "%s/state.json", x->dir);
    struct detector_cfg c;
    fx_cfg(x, &c);
    c.state_file = path;
    struct detector *d = fx_detector(x, &c);
    struct smtp_facts *f = session("192.0.2.10", "198.51.100.9", 25, T0 + 1000);
    caps(f, "STARTTLS", NULL);
    starttls(f, 220, true);
    char uid[18];
    memcpy(uid, f->flow.uid, sizeof uid);
    detector_session(d, f);
    strip(d, "198.51.100.9", T0); /* judged after, but before it in capture time */
    detector_finish(d);
    detector_free(d);
    assert_int_equal(x->out.n, 0);

    /* a second run from the file (strips last 2 s, the offer ended at T0+1002) */
    d = fx_detector(x, &c);
    strip(d, "198.51.100.9", T0);        /* the same session again: still none */
    strip(d, "198.51.100.9", T0 + 999);  /* ended at T0+1001, before it was learned */
    strip(d, "198.51.100.9", T0 + 1000); /* ended the microsecond it was learned at */
    strip(d, "198.51.100.9", T0 + 1001); /* ended after it: alert */
    detector_finish(d);
    detector_free(d);
    assert_int_equal(x->out.n, 1);
    json_t *o = expect(x, 0, "starttls.stripped", 3, "medium");
    assert_string_equal(jstr(o, "@timestamp"), "2026-11-18T11:23:21.000000Z");
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.server.session_uid"), uid);
    json_decref(o);
    lines_clear(&x->out);

    /* the older format: ok_ts only */
    write_file(path, "{\"stripwatch_posture\": 1, \"entries\": [{\"kind\": \"server\", \"key\": "
                     "\"198.51.100.8:25\", \"seen\": 1795000100000000, \"ok_ts\": "
                     "1795000100000000, \"ok_uid\": \"S00000000000000f1\", \"fail_ts\": 0, "
                     "\"fail_uid\": \"\", \"fail_detail\": \"\"}]}");
    d = fx_detector(x, &c);
    strip(d, "198.51.100.8", T0 + 50);
    strip(d, "198.51.100.8", T0 + 150);
    detector_finish(d);
    detector_free(d);
    assert_int_equal(x->out.n, 1);
    o = expect(x, 0, "starttls.stripped", 3, "medium");
    assert_string_equal(jstr(o, "stripwatch.evidence.posture.server.session_uid"),
                        "S00000000000000f1");
    json_decref(o);

    /* first_ts of the wrong type is refused, naming the entry */
    write_file(path, "{\"stripwatch_posture\": 1, \"entries\": [{\"kind\": \"server\", \"key\": "
                     "\"198.51.100.8:25\", \"seen\": 1, \"ok_ts\": 1, \"ok_uid\": \"\", "
                     "\"first_ts\": \"1\", \"first_uid\": \"\", \"fail_ts\": 0, \"fail_uid\": "
                     "\"\", \"fail_detail\": \"\"}]}");
    char err[600] = "", want[600];
    assert_null(detector_new(&c, err, sizeof err));
    snprintf(want, sizeof want,
             "%s: entries[0]: first_ts/first_at/ok_at/fail_at/first_uid: not integers and a "
             "string, or too long",
             path);
    assert_string_equal(err, want);
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
    static const char *const doms[] = {"enforce.example:250", "testing.example:250",
                                       "other.example:250",   "enforce.example:550",
                                       "testing.example:0",   "\001bad:250"};
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
            assert_true(facts_add_cap(f, c, strlen(c)));
            if (!strcmp(c, "STARTTLS"))
                f->starttls_offered = true;
        }
        if (rnd(3) == 0)
            starttls(f, codes[rnd(6)], rnd(2));
        if (rnd(4) == 0) {
            fset(f, &f->auth_mechanism, "%s", rnd(2) ? "PLAIN" : "LOGIN");
            f->auth_cleartext = true;
            f->auth_code = rnd(2) ? 235 : 503;
        }
        for (uint32_t k = rnd(3); k > 0; k--)
            tx(f, rnd(2), rnd(5000), doms[rnd(6)], doms[rnd(6)], NULL);
        for (uint32_t k = rnd(3); k > 0; k--)
            anomaly(f, (enum anomaly_kind)rnd(ANOM_KIND_COUNT), "token=\xffX", rnd(100));
        if (f->tls->established && rnd(2)) {
            struct facts_tls *tl = facts_tls_mut(f);
            tl->cert.present = true;
            tl->cert.self_signed = rnd(2);
            fset(f, &tl->cert.subject, "CN=%s", hosts[rnd(6)]);
            fset(f, &tl->cert.not_after, "%s", rnd(2) ? "2020-01-01T00:00:00Z" : "garbage");
            fset(f, &tl->sni, "%s", hosts[rnd(6)]);
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
        cmocka_unit_test_setup_teardown(test_state_file_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_file_capture_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_posture_bound_and_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_suppression, setup, teardown),
        cmocka_unit_test(test_ratelimit_unit),
        cmocka_unit_test(test_ratelimit_evict),
        cmocka_unit_test_setup_teardown(test_pending_deadline_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alert_copies_record_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_determinism, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_sink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_facts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_pending_bound, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
