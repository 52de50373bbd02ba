/* SPDX-License-Identifier: Apache-2.0 */
/* test_dane_rules.c: the DANE rules end to end: `stripwatch -r` on the
 * committed capture of a STARTTLS-stripping man in the middle, with a DANE
 * snapshot (--dane-file) that says the server mx.example.org has secure,
 * bogus or insecure TLSA records; and on the captures of a real Postfix at
 * smtp_tls_security_level = dane (the pcaps/ captures named dane) with the
 * TLSA answers its validating resolver gave (pcaps/dane.json).
 * RFC 7672 §2.2, §3. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define PCAP   SW_SOURCE_DIR "/pcaps/mitm-strip-sender-side.pcap"
#define RECORD "3 1 1 8f3c7a1d5e2b9046c1a7e3d2f5b8091c4e6a2d7f3b1c9e8a5d4f2b7c6e1a3d90"

/* Runs the sensor on PCAP with dane_file; the alerts (not health records)
 * as a JSON array; *rc the exit status; stderr into err. */
static json_t *run_pcap(const char *pcap, const char *dane_file, int *rc, char *err, size_t errlen);

static json_t *run(const char *dane_file, int *rc, char *err, size_t errlen)
{
    return run_pcap(PCAP, dane_file, rc, err, errlen);
}

static json_t *run_pcap(const char *pcap, const char *dane_file, int *rc, char *err, size_t errlen)
{
    char cmd[2048], errpath[] = "/tmp/sw-dane-rules-XXXXXX";
    int efd = mkstemp(errpath);
    assert_true(efd >= 0);
    close(efd);
    snprintf(cmd, sizeof(cmd),
             "'%s/stripwatch' --no-config -q -r '%s' --dane-file '%s' --alerts-out - "
             "--sessions-out /dev/null 2>'%s'",
             SW_BINARY_DIR, pcap, dane_file, errpath);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    json_t *alerts = json_array();
    char line[65536];
    while (fgets(line, sizeof(line), p)) {
        json_t *o = json_loads(line, 0, NULL);
        assert_non_null(o);
        if (json_object_get(o, "rule"))
            json_array_append(alerts, o);
        json_decref(o);
    }
    int st = pclose(p);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    FILE *e = fopen(errpath, "r");
    size_t n = e ? fread(err, 1, errlen - 1, e) : 0;
    err[n] = 0;
    if (e)
        fclose(e);
    unlink(errpath);
    return alerts;
}

static const char *str_at(json_t *o, const char *a, const char *b)
{
    return json_string_value(json_object_get(json_object_get(o, a), b));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_secure_strip_and_plaintext(void **state)
{
    (void)state;
    char err[4096];
    int rc;
    json_t *a = run(SW_SOURCE_DIR "/pcaps/dane.json", &rc, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_string_equal(err, "");
    assert_int_equal(json_array_size(a), 2);
    json_t *s = json_array_get(a, 0), *p = json_array_get(a, 1);
    assert_string_equal(str_at(s, "rule", "id"), "starttls.stripped");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(s, "event"), "severity")),
                     3);
    assert_string_equal(str_at(s, "stripwatch", "confidence"), "high");
    assert_string_equal(str_at(p, "rule", "id"), "delivery.plaintext_dane");
    assert_string_equal(str_at(p, "event", "action"), "plaintext-delivery-dane");
    assert_string_equal(str_at(p, "stripwatch", "severity_name"), "high");
    for (size_t i = 0; i < 2; i++) {
        json_t *d = json_object_get(json_array_get(a, i), "dane");
        char *txt = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
        assert_string_equal(txt, "{\"host\":\"mx.example.org\",\"records\":[\"" RECORD "\"],"
                                 "\"status\":\"secure\"}");
        free(txt);
    }
    json_t *ev = json_object_get(json_object_get(p, "stripwatch"), "evidence");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(ev, "cleartext_data"), "bytes")), 506);
    json_decref(a);
}

/* A bogus answer is ignored (no DANE alert; with no history and no policy
 * nothing else fires), and so is an insecure one (DANE does not apply). */
static void test_bogus_and_insecure_ignored(void **state)
{
    (void)state;
    char path[] = "/tmp/sw-dane-file-XXXXXX", err[4096];
    int fd = mkstemp(path), rc;
    assert_true(fd >= 0);
    close(fd);
    write_file(path, "{\"mx.example.org\": {\"status\": \"bogus\", \"records\": [\"" RECORD
                     "\"], \"why\": \"validation failure\", \"fetched_at\": "
                     "\"2026-11-22T17:00:00Z\", \"ttl\": 300}}\n");
    json_t *a = run(path, &rc, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
    write_file(path, "{\"mx.example.org\": {\"status\": \"insecure\", \"records\": [\"" RECORD
                     "\"], \"fetched_at\": \"2026-11-22T17:00:00Z\", \"ttl\": 300}}\n");
    a = run(path, &rc, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
    unlink(path);
}

/* Secure records none of which is usable for SMTP (PKIX-EE(1)): no DANE. */
static void test_unusable_records_ignored(void **state)
{
    (void)state;
    char path[] = "/tmp/sw-dane-file-XXXXXX", err[4096];
    int fd = mkstemp(path), rc;
    assert_true(fd >= 0);
    close(fd);
    write_file(path, "{\"mx.example.org\": {\"status\": \"secure\", \"records\": [\"1 1 1 "
                     "8f3c7a1d5e2b9046c1a7e3d2f5b8091c4e6a2d7f3b1c9e8a5d4f2b7c6e1a3d90\"], "
                     "\"fetched_at\": \"2026-11-22T17:00:00Z\", \"ttl\": 300}}\n");
    json_t *a = run(path, &rc, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
    unlink(path);
}

/* A bad entry is reported with the file and host, and skipped. */
static void test_bad_entry_reported(void **state)
{
    (void)state;
    char path[] = "/tmp/sw-dane-file-XXXXXX", err[4096], want[256];
    int fd = mkstemp(path), rc;
    assert_true(fd >= 0);
    close(fd);
    write_file(path, "{\"mx.example.org\": {\"status\": \"secure\", \"records\": [\"3 1 1 zz\"], "
                     "\"fetched_at\": \"2026-11-22T17:00:00Z\", \"ttl\": 300}}\n");
    json_t *a = run(path, &rc, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_int_equal(json_array_size(a), 0);
    snprintf(want, sizeof(want),
             "stripwatch: %s: host \"mx.example.org\": records[0]: association data: not hex\n",
             path);
    assert_string_equal(err, want);
    json_decref(a);
    unlink(path);
}

#define TLS12        SW_SOURCE_DIR "/pcaps/postfix-tls12-certificate.pcap"
#define LEAF_SPKI256 "6bcaf13a6737429e791a135e863bfe57b67d7aafc8e240577012720c5472bb2d"
#define LEAF_CERT256 "ec5f842cd6c429d7c626f806201f053c1130ec17acbc170d9df7c8e13e31a0b1"

/* TLS 1.2, certificate visible: records naming another key (DANE-EE) and a
 * trust anchor the chain does not hold (DANE-TA) are a mismatch (medium);
 * the leaf's SPKI or certificate digest matches (no alert). */
static void test_certificate_mismatch(void **state)
{
    (void)state;
    char err[4096];
    int rc;
    json_t *a = run_pcap(TLS12, SW_SOURCE_DIR "/pcaps/dane.json", &rc, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_int_equal(json_array_size(a), 1);
    json_t *m = json_array_get(a, 0);
    assert_string_equal(str_at(m, "rule", "id"), "dane.certificate_mismatch");
    assert_string_equal(str_at(m, "event", "action"), "certificate-fails-dane");
    assert_string_equal(str_at(m, "stripwatch", "severity_name"), "medium");
    assert_string_equal(str_at(m, "stripwatch", "confidence"), "high");
    assert_string_equal(str_at(m, "dane", "host"), "mx.tls12.example");
    json_t *c = json_object_get(json_object_get(json_object_get(m, "stripwatch"), "evidence"),
                                "certificate");
    assert_string_equal(json_string_value(json_object_get(c, "sha256")), LEAF_CERT256);
    json_decref(a);

    const char *ok[] = {"3 1 1 " LEAF_SPKI256, "3 0 1 " LEAF_CERT256};
    for (size_t i = 0; i < 2; i++) {
        char path[] = "/tmp/sw-dane-file-XXXXXX", text[512];
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
        snprintf(text, sizeof(text),
                 "{\"mx.tls12.example\": {\"status\": \"secure\", \"records\": [\"%s\"], "
                 "\"fetched_at\": \"2026-11-22T17:00:00Z\", \"ttl\": 300}}\n",
                 ok[i]);
        write_file(path, text);
        a = run_pcap(TLS12, path, &rc, err, sizeof(err));
        assert_int_equal(rc, 0);
        assert_int_equal(json_array_size(a), 0);
        json_decref(a);
        unlink(path);
    }
}

/* ---- a real Postfix at smtp_tls_security_level = dane (pcaps/README.md) ----
 * The records are those the lab's validating unbound answered (AD) for the
 * zone secure.example that pcaps/generate.sh signs; SECURE_RECORD is the
 * SHA-256 of the SPKI of mx.secure.example's certificate in the captures. */
#define DANE_VERIFIED  SW_SOURCE_DIR "/pcaps/postfix-dane-verified.pcap"
#define DANE_STRIP     SW_SOURCE_DIR "/pcaps/mitm-strip-dane-sender-side.pcap"
#define DANE_STRIP_RCV SW_SOURCE_DIR "/pcaps/mitm-strip-dane-receiver-side.pcap"
#define DANE_MISMATCH  SW_SOURCE_DIR "/pcaps/postfix-dane-tlsa-mismatch.pcap"
#define SECURE_RECORD  "3 1 1 ab2795efe85c88eb045fbfb6121d56b80e85e5b0692937a3e418e854e49f5d36"
#define STALE_RECORD   "3 1 1 41842ec662d2599b2956a0628df693424797a5ece37fa35805e5ec43e44b8b10"
#define SECURE_CERT256 "31ff052781c8075aaf87bcb17e5ef7f67a47221bbd22621deeb8eec323f9948a"
#define STALE_CERT256  "da4720c68804015828bf895db23a270424b40366b1c2113321ee178ad2002b75"

static void assert_dane_json(json_t *d, const char *want)
{
    char *txt = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
    assert_non_null(txt);
    assert_string_equal(txt, want);
    free(txt);
}

/* The man in the middle deletes STARTTLS; Postfix defers (QUIT, no content):
 * starttls.stripped high/high for the DANE reason, and nothing else. */
static void test_real_postfix_strip(void **state)
{
    (void)state;
    char err[4096];
    int rc;
    json_t *a = run_pcap(DANE_STRIP, SW_SOURCE_DIR "/pcaps/dane.json", &rc, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_string_equal(err, "");
    assert_int_equal(json_array_size(a), 1);
    json_t *s = json_array_get(a, 0);
    assert_string_equal(str_at(s, "rule", "id"), "starttls.stripped");
    assert_string_equal(str_at(s, "event", "action"), "starttls-stripped");
    assert_string_equal(str_at(s, "stripwatch", "severity_name"), "high");
    assert_string_equal(str_at(s, "stripwatch", "confidence"), "high");
    assert_string_equal(str_at(s, "destination", "ip"), "198.51.100.30");
    const char *want = "{\"host\":\"mx.secure.example\",\"records\":[\"" SECURE_RECORD "\"],"
                       "\"status\":\"secure\"}";
    assert_dane_json(json_object_get(s, "dane"), want);
    json_t *ev = json_object_get(json_object_get(s, "stripwatch"), "evidence");
    assert_dane_json(json_object_get(ev, "dane"), want);
    assert_string_equal(json_string_value(json_object_get(ev, "reason")),
                        "EHLO reply without STARTTLS from a server whose DNSSEC-secure TLSA "
                        "records make TLS mandatory (DANE)");
    json_decref(a);
    /* the receiver's side: STARTTLS offered, EHLO then QUIT: nothing */
    a = run_pcap(DANE_STRIP_RCV, SW_SOURCE_DIR "/pcaps/dane.json", &rc, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
}

/* Verified DANE delivery over TLS 1.2 (certificate on the wire): no alert
 * with the real record. That it is the match which keeps it clean: the
 * retired key's record raises dane.certificate_mismatch on the same
 * session, and a 3 0 1 record of the certificate itself does not. */
static void test_real_postfix_verified(void **state)
{
    (void)state;
    char err[4096];
    int rc;
    json_t *a = run_pcap(DANE_VERIFIED, SW_SOURCE_DIR "/pcaps/dane.json", &rc, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_string_equal(err, "");
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);

    const char *rec[] = {STALE_RECORD, "3 0 1 " SECURE_CERT256};
    for (size_t i = 0; i < 2; i++) {
        char path[] = "/tmp/sw-dane-file-XXXXXX", text[512];
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
        snprintf(text, sizeof(text),
                 "{\"mx.secure.example\": {\"status\": \"secure\", \"records\": [\"%s\"], "
                 "\"fetched_at\": \"2026-12-05T11:57:10Z\", \"ttl\": 300}}\n",
                 rec[i]);
        write_file(path, text);
        a = run_pcap(DANE_VERIFIED, path, &rc, err, sizeof(err));
        assert_int_equal(rc, 0);
        assert_int_equal(json_array_size(a), i == 0 ? 1 : 0);
        if (i == 0) {
            json_t *m = json_array_get(a, 0);
            assert_string_equal(str_at(m, "rule", "id"), "dane.certificate_mismatch");
            assert_string_equal(str_at(m, "dane", "host"), "mx.secure.example");
        }
        json_decref(a);
        unlink(path);
    }
}

/* The TLSA record names a retired key; Postfix says "Server certificate not
 * verified" and defers: dane.certificate_mismatch medium/high. */
static void test_real_postfix_mismatch(void **state)
{
    (void)state;
    char err[4096];
    int rc;
    json_t *a = run_pcap(DANE_MISMATCH, SW_SOURCE_DIR "/pcaps/dane.json", &rc, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_string_equal(err, "");
    assert_int_equal(json_array_size(a), 1);
    json_t *m = json_array_get(a, 0);
    assert_string_equal(str_at(m, "rule", "id"), "dane.certificate_mismatch");
    assert_string_equal(str_at(m, "stripwatch", "severity_name"), "medium");
    assert_string_equal(str_at(m, "stripwatch", "confidence"), "high");
    assert_dane_json(json_object_get(m, "dane"),
                     "{\"host\":\"mx-stale.secure.example\",\"records\":[\"" STALE_RECORD "\"],"
                     "\"status\":\"secure\"}");
    json_t *c = json_object_get(json_object_get(json_object_get(m, "stripwatch"), "evidence"),
                                "certificate");
    assert_string_equal(json_string_value(json_object_get(c, "sha256")), STALE_CERT256);
    assert_string_equal(json_string_value(json_object_get(c, "subject")),
                        "CN=mx-stale.secure.example");
    json_decref(a);
}

/* The same capture with one byte changed: the content type of the client's
 * first record after its Finished (its QUIT over TLS, 30 bytes) is made 21,
 * an alert, as from a client that closes TLS without a command. Written to a
 * temporary file named in path (the caller unlinks it). */
static void refusal_copy(char *path)
{
    FILE *in = fopen(DANE_MISMATCH, "rb");
    assert_non_null(in);
    static unsigned char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, in);
    fclose(in);
    assert_true(n > 0 && n < sizeof buf);
    static const unsigned char hdr[] = {0x17, 0x03, 0x03, 0x00, 0x1e};
    size_t hits = 0, at = 0;
    for (size_t i = 0; i + sizeof hdr <= n; i++)
        if (!memcmp(buf + i, hdr, sizeof hdr))
            hits++, at = i;
    assert_int_equal(hits, 1);
    buf[at] = 0x15;
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, n), (ssize_t)n);
    close(fd);
}

/* The real capture: the client's first record after its Finished is its
 * QUIT (application data): medium, no client_refused. The copy where that
 * record is an alert instead: low, the same confidence, client_refused and
 * the reason says so. */
static void test_mismatch_client_refused(void **state)
{
    (void)state;
    char err[4096];
    int rc;
    const char *base = "the certificate chain matches none of the server's usable "
                       "DNSSEC-secure TLSA records (DANE)";
    json_t *a = run_pcap(DANE_MISMATCH, SW_SOURCE_DIR "/pcaps/dane.json", &rc, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_int_equal(json_array_size(a), 1);
    json_t *m = json_array_get(a, 0);
    json_t *ev = json_object_get(json_object_get(m, "stripwatch"), "evidence");
    assert_string_equal(str_at(m, "stripwatch", "severity_name"), "medium");
    assert_string_equal(json_string_value(json_object_get(ev, "reason")), base);
    assert_null(json_object_get(ev, "client_refused"));
    json_decref(a);

    char path[] = "/tmp/sw-dane-refused-XXXXXX";
    refusal_copy(path);
    a = run_pcap(path, SW_SOURCE_DIR "/pcaps/dane.json", &rc, err, sizeof(err));
    unlink(path);
    assert_int_equal(rc, 0);
    assert_string_equal(err, "");
    assert_int_equal(json_array_size(a), 1);
    m = json_array_get(a, 0);
    ev = json_object_get(json_object_get(m, "stripwatch"), "evidence");
    assert_string_equal(str_at(m, "rule", "id"), "dane.certificate_mismatch");
    assert_string_equal(str_at(m, "stripwatch", "severity_name"), "low");
    assert_string_equal(str_at(m, "stripwatch", "confidence"), "high");
    assert_string_equal(json_string_value(json_object_get(ev, "reason")),
                        "the certificate chain matches none of the server's usable "
                        "DNSSEC-secure TLSA records (DANE); the client refused it: it closed TLS "
                        "with an alert before sending any data");
    assert_true(json_is_true(json_object_get(ev, "client_refused")));
    json_decref(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secure_strip_and_plaintext),
        cmocka_unit_test(test_bogus_and_insecure_ignored),
        cmocka_unit_test(test_unusable_records_ignored),
        cmocka_unit_test(test_bad_entry_reported),
        cmocka_unit_test(test_certificate_mismatch),
        cmocka_unit_test(test_mismatch_client_refused),
        cmocka_unit_test(test_real_postfix_strip),
        cmocka_unit_test(test_real_postfix_verified),
        cmocka_unit_test(test_real_postfix_mismatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
