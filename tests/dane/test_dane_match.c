/* SPDX-License-Identifier: Apache-2.0 */
/* test_dane_match.c: TLSA records against a chain's DANE digests
 * (rules_dane_match), the presentation form of TLSA records, and the
 * digests the decoder computes from a DER certificate. RFC 6698 §2,
 * RFC 7671 §5, RFC 7672 §3.1. */
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alerts/rules.h"
#include "decode/tls.h"

/* Digest strings of a made-up chain: leaf "a.."/"b.."/"c.."/"d..",
 * issuer "e.."/"f.."/"1.."/"2.." (256-bit fields 64, 512-bit 128 hex). */
static char chain[1024];

static void fill(char *p, char c, int n)
{
    memset(p, c, (size_t)n);
    p[n] = 0;
}

static const char *rep(char c, int n)
{
    static char b[4][200];
    static int k;
    char *p = b[k++ % 4];
    fill(p, c, n);
    return p;
}

static int setup(void **state)
{
    (void)state;
    const char c[8] = {'a', 'b', 'c', 'd', 'e', 'f', '1', '2'};
    size_t o = 0;
    for (int i = 0; i < 8; i++) {
        int n = i % 2 ? 128 : 64;
        fill(chain + o, c[i], n);
        o += (size_t)n;
        chain[o++] = i == 7 ? 0 : i == 3 ? ';' : ' ';
    }
    return 0;
}

static bool match(const char *rec)
{
    struct dane_tlsa t;
    char why[128];
    if (!dane_tlsa_parse(rec, &t, why, sizeof(why)))
        fail_msg("%s: %s", rec, why);
    bool m = rules_dane_match(&t, chain);
    free(t.data);
    return m;
}

static void test_ee_and_ta(void **state)
{
    (void)state;
    char r[300];
    snprintf(r, sizeof(r), "3 0 1 %s", rep('a', 64));
    assert_true(match(r)); /* EE, certificate, SHA-256 */
    snprintf(r, sizeof(r), "3 0 2 %s", rep('b', 128));
    assert_true(match(r)); /* EE, certificate, SHA-512 */
    snprintf(r, sizeof(r), "3 1 1 %s", rep('c', 64));
    assert_true(match(r)); /* EE, SPKI, SHA-256 */
    snprintf(r, sizeof(r), "3 1 2 %s", rep('d', 128));
    assert_true(match(r)); /* EE, SPKI, SHA-512 */
    snprintf(r, sizeof(r), "3 1 1 %s", rep('1', 64));
    assert_false(match(r)); /* the issuer's key is not the end entity */
    snprintf(r, sizeof(r), "2 1 1 %s", rep('1', 64));
    assert_true(match(r)); /* TA: the issuer's SPKI */
    snprintf(r, sizeof(r), "2 0 2 %s", rep('f', 128));
    assert_true(match(r)); /* TA: the issuer's certificate, SHA-512 */
    snprintf(r, sizeof(r), "2 0 1 %s", rep('a', 64));
    assert_false(match(r)); /* the leaf is no trust anchor */
    snprintf(r, sizeof(r), "1 0 1 %s", rep('a', 64));
    assert_false(match(r)); /* PKIX-EE: not usable for SMTP (RFC 7672 §3.1.3) */
    snprintf(r, sizeof(r), "3 0 1 %s", rep('a', 62));
    assert_false(match(r)); /* SHA-256 of the wrong length */
    snprintf(r, sizeof(r), "3 0 1 %s", rep('c', 64));
    assert_false(match(r)); /* the SPKI digest under the certificate selector */
}

/* Full(0): the record holds the DER itself, matched by its SHA-256. */
static void test_full_match(void **state)
{
    (void)state;
    unsigned char der[] = "not really DER";
    unsigned char md[32];
    unsigned n = 0;
    assert_int_equal(EVP_Digest(der, sizeof(der) - 1, md, &n, EVP_sha256(), NULL), 1);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    snprintf(chain, sizeof(chain), "%s %s %s %s", hex, rep('b', 128), rep('c', 64), rep('d', 128));
    char r[300] = "3 0 0 ";
    for (size_t i = 0; i < sizeof(der) - 1; i++)
        snprintf(r + 6 + 2 * i, 3, "%02x", der[i]);
    assert_true(match(r));
    r[2] = '1'; /* SPKI selector: compares with the SPKI digest */
    assert_false(match(r));
    setup(NULL);
}

static void test_tlsa_text(void **state)
{
    (void)state;
    struct dane_tlsa t;
    char why[128], buf[300];
    assert_true(dane_tlsa_parse("3 1 1 0A0b", &t, why, sizeof(why)));
    assert_string_equal(dane_tlsa_format(&t, buf, sizeof(buf)), "3 1 1 0a0b");
    free(t.data);
    assert_false(dane_tlsa_parse("3 1 1 0a0", &t, why, sizeof(why)));
    assert_string_equal(why, "association data: not 1-2048 bytes of hex");
    assert_false(dane_tlsa_parse("3 1 256 0a", &t, why, sizeof(why)));
    assert_string_equal(why, "not \"USAGE SELECTOR MTYPE HEX\"");
    assert_false(dane_tlsa_parse("3 1 1 zz", &t, why, sizeof(why)));
    assert_string_equal(why, "association data: not hex");
}

/* The decoder's digests of a real certificate: SHA-256 of the DER and of
 * its subjectPublicKeyInfo, as `openssl x509 -pubkey | openssl pkey
 * -pubin -outform der | openssl dgst -sha256` says. */
static void test_decoder_digests(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/dane/leaf.der", SW_SOURCE_DIR);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t der[4096];
    size_t n = fread(der, 1, sizeof(der), f);
    fclose(f);
    char out[X509_DANE_DIGESTS_LEN];
    assert_true(x509_dane_digests(der, n, out, sizeof(out)) > 0);
    assert_memory_equal(out, "ec5f842cd6c429d7c626f806201f053c1130ec17acbc170d9df7c8e13e31a0b1 ",
                        65);
    const char *spki = strchr(strchr(out, ' ') + 1, ' ') + 1;
    assert_memory_equal(spki, "6bcaf13a6737429e791a135e863bfe57b67d7aafc8e240577012720c5472bb2d ",
                        65);
    assert_int_equal(x509_dane_digests(der, n / 2, out, sizeof(out)), 0); /* cut short */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ee_and_ta),
        cmocka_unit_test(test_full_match),
        cmocka_unit_test(test_tlsa_text),
        cmocka_unit_test(test_decoder_digests),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
