/* SPDX-License-Identifier: Apache-2.0 */
/* test_attacks.c: attacks merged by time with clean captures (issue 11):
 * a SYN flood during a real session, idle sessions before it under
 * --memcap 64M, many recipient domains with a policy file loaded, and
 * overlapping TCP segments with conflicting bytes on the EHLO reply. The
 * alerts of the clean captures come out unchanged (packet numbers and
 * health records aside) and the statistics say exactly what was evicted.
 * The attack captures are written at test time (tests/blind/gen.h).
 * RFC 9293 (TCP overlaps), RFC 5321 (SMTP), RFC 8461 (MTA-STS). */
#include <pcap/pcap.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>

#include "gen.h"
#include "alertcmp.h"
#include "runbin.h"

#define STRIP    SW_SOURCE_DIR "/pcaps/mitm-strip-sender-side.pcap"
#define PLAIN    SW_SOURCE_DIR "/pcaps/postfix-plaintext-no-starttls.pcap"
#define POLICIES SW_SOURCE_DIR "/pcaps/policies.json"

static char *tmp;
static char alerts[4200];

static char *tpath(const char *name)
{
    static char p[8][4200];
    static int i;
    i = (i + 1) % 8;
    snprintf(p[i], sizeof(p[i]), "%s/%s", tmp, name);
    return p[i];
}

/* First and last timestamps of a capture, microseconds. */
static void span(const char *path, int64_t *first, int64_t *last)
{
    char e[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(path, e);
    assert_non_null(p);
    struct pcap_pkthdr *h;
    const u_char *d;
    *first = *last = 0;
    while (pcap_next_ex(p, &h, &d) == 1) {
        int64_t ts = (int64_t)h->ts.tv_sec * 1000000 + h->ts.tv_usec;
        if (!*first)
            *first = ts;
        *last = ts;
    }
    pcap_close(p);
}

/* Runs the sensor with the policy file and the given arguments
 * (NULL-terminated); returns its alerts file (health records included),
 * stderr in *err. */
static char *sensor(char **err, const char *first, ...)
{
    char *argv[40];
    int n = 0;
    argv[n++] = STRIPWATCH;
    argv[n++] = "--policy-file";
    argv[n++] = POLICIES;
    argv[n++] = "--sessions-out";
    argv[n++] = tpath("sessions.json");
    argv[n++] = "--alerts-out";
    argv[n++] = alerts;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 38; a = va_arg(ap, const char *))
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    unlink(alerts);
    struct run_out r;
    run(tmp, argv, NULL, 120, &r);
    if (r.status != 0)
        fail_msg("stripwatch exited %d: %s", r.status, r.err);
    free(r.out);
    *err = r.err;
    size_t len;
    return slurp(alerts, &len);
}

/* The alerts of text (health records left out, packet numbers dropped),
 * normalised and sorted, one per line. */
static char *alert_set(const char *text)
{
    char *lines[256];
    size_t n = 0, total = 1;
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (!alert_line_is_health(p, len)) {
            json_error_t je;
            json_t *j = json_loadb(p, len, 0, &je);
            if (!j)
                fail_msg("alert does not parse: %s: %.200s", je.text, p);
            alert_drop_packet_numbers(j);
            assert_true(n < 256);
            lines[n] = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
            total += strlen(lines[n]) + 1;
            n++;
            json_decref(j);
        }
        p += e ? len + 1 : len;
    }
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && strcmp(lines[k - 1], lines[k]) > 0; k--) {
            char *t = lines[k];
            lines[k] = lines[k - 1];
            lines[k - 1] = t;
        }
    char *out = calloc(1, total);
    for (size_t i = 0; i < n; i++) {
        strcat(out, lines[i]);
        strcat(out, "\n");
        free(lines[i]);
    }
    return out;
}

/* The alerts of the clean captures alone. */
static char *clean_alerts(const char *a, const char *b)
{
    char *err;
    char *got = sensor(&err, "-r", a, "-r", b, NULL);
    free(err);
    char *s = alert_set(got);
    free(got);
    return s;
}

static void assert_same_alerts(const char *want, const char *got_raw)
{
    char *got = alert_set(got_raw);
    if (strcmp(want, got))
        fail_msg("alerts differ under attack:\nwant:\n%s\ngot:\n%s", want, got);
    free(got);
}

/* The value of key= in the statistics line starting with prefix. */
#define FLOWS(err, key) stats_value(err, "stripwatch: stats flows ", key)

/* The total of counter name in the last health record that has it (0 when
 * none has it). */
static unsigned long long health_total(const char *raw, const char *name)
{
    char k[96];
    snprintf(k, sizeof k, "\"%s\":{\"delta\":", name);
    const char *last = NULL;
    for (const char *p = raw; (p = strstr(p, k)) != NULL; p++)
        last = p;
    if (!last)
        return 0;
    unsigned long long delta, total;
    assert_int_equal(sscanf(last + strlen(k), "%llu,\"total\":%llu", &delta, &total), 2);
    return total;
}

/* (1) 20,000 never-answered SYNs spread over the real stripping session,
 * with room for 2,000 flows: the SYNs evict each other, never the session. */
static void test_syn_flood_during_session(void **state)
{
    (void)state;
    char *want = clean_alerts(STRIP, PLAIN);
    int64_t first, last;
    span(STRIP, &first, &last);
    const char *flood = tpath("syn.pcap");
    struct gen g;
    assert_true(gen_open(&g, flood, 262144, 1, first));
    const uint32_t n = 20000;
    for (uint32_t i = 0; i < n; i++) {
        struct gen_tcp t = {
            0x0c000001u + i / 50000 * 256, 0xc0000264u, (uint16_t)(10000 + i), 25, 1000 + i, 0};
        g.ts = first + 1 + (last - first - 2) * (int64_t)i / n - 10;
        gen_seg(&g, &t, true, GEN_SYN, "", 0);
    }
    assert_true(gen_close(&g));
    char *err;
    char *got = sensor(&err, "-r", flood, "-r", STRIP, "-r", PLAIN, "--max-flows", "2000", NULL);
    assert_same_alerts(want, got);
    assert_int_equal(FLOWS(err, "created"), n + 2);
    /* the session and 1,999 SYNs fill the table: every other SYN is evicted,
     * the last 1,999 time out at the end of input */
    assert_int_equal(FLOWS(err, "evicted_half_open"), n - 1999);
    assert_int_equal(FLOWS(err, "evicted"), n - 1999);
    assert_int_equal(FLOWS(err, "timed_out"), 1999);
    assert_int_equal(FLOWS(err, "closed"), 2);
    assert_int_equal(FLOWS(err, "emergency_entered"), 1);
    assert_int_equal(FLOWS(err, "evicted_session"), 0);
    assert_int_equal(FLOWS(err, "evicted_no_session"), 0);
    assert_int_equal(FLOWS(err, "refused"), 0);
    assert_int_equal(health_total(got, "flows.evicted"), n - 1999);
    assert_int_equal(health_total(got, "flows.evicted_session"), 0);
    free(got);
    free(err);
    free(want);
}

static int setup(void **state)
{
    (void)state;
    tmp = temp_dir();
    if (!tmp)
        return -1;
    snprintf(alerts, sizeof alerts, "%s/alerts.json", tmp);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rm_rf(tmp);
    return 0;
}

/* (2) 100,000 idle banner sessions in the 7 s before the real captures,
 * under --memcap 64M: idle sessions are evicted, never a real one. */
static void test_idle_flood_memcap(void **state)
{
    (void)state;
    char *want = clean_alerts(STRIP, PLAIN);
    int64_t first, last;
    span(STRIP, &first, &last);
    const char *flood = tpath("idle.pcap");
    struct gen g;
    const uint32_t n = 100000;
    assert_true(gen_open(&g, flood, 262144, 1, first - 7000000));
    for (uint32_t i = 0; i < n; i++)
        gen_idle_session(&g, 0x0b000001u + i / 50000 * 256, (uint16_t)(10000 + i % 50000),
                         0xc0000264u);
    assert_true(g.ts < first);
    assert_true(gen_close(&g));
    char *err;
    char *got = sensor(&err, "-r", flood, "-r", STRIP, "-r", PLAIN, "--memcap", "64M", NULL);
    assert_same_alerts(want, got);
    assert_int_equal(FLOWS(err, "created"), n + 2);
    assert_int_equal(FLOWS(err, "refused"), 0);
    assert_int_equal(FLOWS(err, "evicted_half_open"), 0);
    /* 64 MiB hold 85,195 flows (87,611 before sessions kept the offsets
     * that judge overlapping copies of the EHLO and STARTTLS replies, 24
     * bytes; 89,297 before sessions counted packets per direction and kept
     * their last packet's time): the oldest idle sessions went first, then
     * the table in emergency mode timed the rest out when the real
     * captures' clock came, 7 s later */
    assert_int_equal(FLOWS(err, "evicted_session"), 14805);
    assert_int_equal(FLOWS(err, "evicted"), 14805);
    assert_int_equal(FLOWS(err, "active_peak"), 85197);
    assert_int_equal(FLOWS(err, "emergency_entered"), 1);
    assert_int_equal(FLOWS(err, "timed_out_emergency"), n - 14805);
    assert_int_equal(FLOWS(err, "closed"), 2);
    /* and the feed said so */
    assert_int_equal(health_total(got, "flows.evicted_session"), 14805);
    assert_int_equal(health_total(got, "flows.evicted"), 14805);
    free(got);
    free(err);
    free(want);
}

/* (3) 100,000 distinct recipient domains (5,000 cleartext deliveries of
 * 20 recipients each) around the real captures, with pcaps/policies.json
 * loaded: every one of them is looked up (none is left out for its place in
 * the RCPT order), the loaded example.org and example.com policies still
 * answer and their alerts come out. */
static void test_recipient_domains(void **state)
{
    (void)state;
    char *want = clean_alerts(STRIP, PLAIN);
    assert_non_null(strstr(want, "\"plaintext-delivery-enforce\""));
    int64_t first, last;
    span(STRIP, &first, &last);
    const char *flood = tpath("domains.pcap");
    struct gen g;
    const uint32_t sessions = 5000;
    assert_true(gen_open(&g, flood, 262144, 1, first - 1000000));
    char names[20][64];
    const char *rcpt[20];
    for (uint32_t s = 0; s < sessions; s++) {
        for (int i = 0; i < 20; i++) {
            snprintf(names[i], sizeof(names[i]), "d%u.flood.example", s * 20 + (uint32_t)i);
            rcpt[i] = names[i];
        }
        gen_smtp_session(&g, 0x0a000001u + s, (uint16_t)(10000 + s), 0xc0000219u,
                         "mx.flood.example", rcpt, 20);
    }
    assert_true(g.ts > last); /* the real captures are inside the flood */
    assert_true(gen_close(&g));
    char *err;
    char *got = sensor(&err, "-r", flood, "-r", STRIP, "-r", PLAIN, NULL);
    assert_same_alerts(want, got);
    /* the detector looks up all 20 recipient domains of every session:
     * none dropped (the feed has no such counter to report) */
    assert_non_null(strstr(err, "stripwatch: stats policy lookups=100002 hits_memory=0 "
                                "hits_redis=0 hits_file=2 misses=100000 "));
    assert_int_equal(stats_value(err, "stripwatch: stats detector ", "policy_domains_dropped"), 0);
    assert_int_equal(stats_value(err, "stripwatch: stats detector ", "alerts"), 4);
    assert_int_equal(health_total(got, "detector.policy_domains_dropped"), 0);
    assert_int_equal(FLOWS(err, "created"), sessions + 2);
    assert_int_equal(FLOWS(err, "evicted"), 0);
    free(got);
    free(err);
    free(want);
}

/* (4) A delivery to example.org whose EHLO reply comes twice at the same
 * sequence number before the client ACKs it: the first copy offers
 * STARTTLS, the overlapping retransmission says XXXXXXXA in its place.
 * The reassembler keeps the first copy (decode/reasm.c: first copy wins,
 * a later copy of unACKed bytes that differs is an overlap conflict) and
 * hands both to the decoder: copies that disagree on STARTTLS are
 * tampering, and the client may have seen the copy without it (a stripped
 * reply), whichever the sensor kept. */
static void test_overlap_conflict(void **state)
{
    (void)state;
    char *want = clean_alerts(STRIP, PLAIN);
    int64_t first, last;
    span(STRIP, &first, &last);
    const char *cap = tpath("overlap.pcap");
    struct gen g;
    /* between the two clean captures: before, the server it names would be
     * learned as offering STARTTLS, which changes the stripping alert */
    int64_t plain_first, plain_last;
    span(PLAIN, &plain_first, &plain_last);
    assert_true(gen_open(&g, cap, 262144, 1, last + 1000000));
    struct gen_tcp t = {0x0a0000c8u, 0xc0000219u, 40000, 25, 1000, 5000};
    gen_seg(&g, &t, true, GEN_SYN, "", 0);
    gen_seg(&g, &t, false, GEN_SYN | GEN_ACK, "", 0);
    gen_seg(&g, &t, true, GEN_ACK, "", 0);
    gen_say(&g, &t, false, "220 mx.example.org ESMTP\r\n");
    gen_say(&g, &t, true, "EHLO client.example\r\n");
    uint32_t reply_seq = t.sseq;
    gen_say(&g, &t, false, "250-mx.example.org\r\n250-STARTTLS\r\n250 8BITMIME\r\n");
    t.sseq = reply_seq;
    gen_say(&g, &t, false, "250-mx.example.org\r\n250-XXXXXXXA\r\n250 8BITMIME\r\n");
    gen_say(&g, &t, true, "MAIL FROM:<a@sender.example>\r\n");
    gen_say(&g, &t, false, "250 2.1.0 Ok\r\n");
    gen_say(&g, &t, true, "RCPT TO:<b@example.org>\r\n");
    gen_say(&g, &t, false, "250 2.1.5 Ok\r\n");
    gen_say(&g, &t, true, "DATA\r\n");
    gen_say(&g, &t, false, "354 End data with <CR><LF>.<CR><LF>\r\n");
    gen_say(&g, &t, true, "Subject: test\r\n\r\nhello\r\n.\r\n");
    gen_say(&g, &t, false, "250 2.0.0 Ok: queued\r\n");
    gen_say(&g, &t, true, "QUIT\r\n");
    gen_say(&g, &t, false, "221 2.0.0 Bye\r\n");
    gen_seg(&g, &t, true, GEN_FIN | GEN_ACK, "", 0);
    gen_seg(&g, &t, false, GEN_FIN | GEN_ACK, "", 0);
    gen_seg(&g, &t, true, GEN_ACK, "", 0);
    assert_true(g.ts < plain_first);
    assert_true(gen_close(&g));
    char *err;
    char *got = sensor(&err, "-r", STRIP, "-r", cap, "-r", PLAIN, NULL);
    /* the clean captures' alerts are those not of 10.0.0.200 */
    char *clean = strdup(got), *w = clean, *mine[3];
    size_t n_mine = 0;
    for (char *l = got, *nl; (nl = strchr(l, '\n')) != NULL; l = nl + 1) {
        size_t len = (size_t)(nl - l) + 1;
        if (memmem(l, len, "\"ip\":\"10.0.0.200\"", 17) &&
            !memmem(l, len, "\"dataset\":\"stripwatch.health\"", 29)) {
            assert_true(n_mine < 3);
            mine[n_mine++] = strndup(l, len);
        } else {
            memcpy(w, l, len);
            w += len;
        }
    }
    *w = '\0';
    assert_same_alerts(want, clean);
    /* the copies disagree on STARTTLS: tampering, a stripped reply (the
     * client may have taken the copy without it; the server is named by
     * example.org's enforce policy), mail in clear to an enforce domain; not
     * starttls.unused; every alert carries both anomalies */
    assert_int_equal(n_mine, 3);
    static const char *const rules[3][3] = {
        {"starttls.stripped", "high", "starttls-stripped"},
        {"starttls.tampered", "high", "starttls-overlap-conflict"},
        {"delivery.plaintext_policy", "high", "plaintext-delivery-enforce"}};
    for (size_t i = 0; i < 3; i++) {
        json_t *j = json_loads(mine[i], 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(json_object_get(j, "rule"), "id")),
                            rules[i][0]);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(j, "event"), "action")), rules[i][2]);
        json_t *sw = json_object_get(j, "stripwatch");
        assert_string_equal(json_string_value(json_object_get(sw, "severity_name")), rules[i][1]);
        assert_string_equal(json_string_value(json_object_get(sw, "confidence")), "high");
        json_t *an = json_object_get(sw, "anomalies");
        assert_int_equal(json_array_size(an), 2);
        json_t *a0 = json_array_get(an, 0);
        assert_string_equal(json_string_value(json_object_get(a0, "kind")), "overlap_conflict");
        assert_string_equal(json_string_value(json_object_get(a0, "dir")), "s2c");
        assert_string_equal(json_string_value(json_object_get(a0, "detail")),
                            "retransmission differs from first copy");
        json_t *a1 = json_array_get(an, 1);
        assert_string_equal(json_string_value(json_object_get(a1, "kind")),
                            "overlap_starttls_conflict");
        assert_string_equal(json_string_value(json_object_get(a1, "dir")), "s2c");
        /* the banner is 26 bytes: the reply starts there */
        assert_string_equal(json_string_value(json_object_get(a1, "detail")),
                            "EHLO reply at offset 26: STARTTLS in the first copy only (kept)");
        char *caps =
            json_dumps(json_object_get(json_object_get(j, "smtp"), "capabilities"), JSON_COMPACT);
        assert_string_equal(caps, "[\"STARTTLS\",\"8BITMIME\"]");
        free(caps);
        json_decref(j);
        free(mine[i]);
    }
    /* one overlap, with different bytes; the copy is not delivered again */
    assert_int_equal(FLOWS(err, "overlaps"), 1);
    assert_int_equal(FLOWS(err, "overlap_conflicts"), 1);
    assert_int_equal(FLOWS(err, "retransmitted"), 1);
    assert_int_equal(FLOWS(err, "evicted"), 0);
    /* and the session record says so */
    size_t len;
    char *sess = slurp(tpath("sessions.json"), &len);
    assert_non_null(strstr(sess, "\"source\":{\"ip\":\"10.0.0.200\",\"port\":40000,"));
    assert_non_null(strstr(sess, "\"anomalies\":[{\"kind\":\"overlap_conflict\",\"dir\":\"s2c\","));
    free(sess);
    free(clean);
    free(got);
    free(err);
    free(want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syn_flood_during_session),
        cmocka_unit_test(test_idle_flood_memcap),
        cmocka_unit_test(test_recipient_domains),
        cmocka_unit_test(test_overlap_conflict),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
