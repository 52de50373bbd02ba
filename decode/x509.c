/* SPDX-License-Identifier: Apache-2.0 */
/* x509.c: the server's leaf certificate as seen in a TLS <= 1.2 handshake:
 * subject, issuer, SAN DNS names, validity, SHA-256 fingerprint, whether it
 * is self-signed. Parsed with OpenSSL (d2i_X509), never verified here.
 * Follows RFC 5280 (certificate fields), RFC 4514 (DN strings),
 * RFC 3339 (validity times). */
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decode/tls.h"

/* An RFC 4514 string of the name, at most 255 bytes, into *slot. */
static void name_str(struct smtp_facts *f, const char **slot, const X509_NAME *n)
{
    char out[256];
    out[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return;
    if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        int k = BIO_read(b, out, (int)sizeof out - 1);
        out[k > 0 ? k : 0] = '\0';
    }
    BIO_free(b);
    facts_set(f, slot, out, strlen(out), 0);
}

static void time_str(struct smtp_facts *f, const char **slot, const ASN1_TIME *t)
{
    struct tm tm;
    char out[32];
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return;
    int n = snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (n < 0 || (size_t)n >= sizeof out) /* a year past 9999 does not fit: leave it unknown */
        return;
    facts_set(f, slot, out, (size_t)n, 0);
}

static void san_dns(struct smtp_facts *f, const struct facts_x509 *c, X509 *x)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    if (!gens)
        return;
    for (int i = 0; i < sk_GENERAL_NAME_num(gens) && c->n_san < FACTS_SAN_MAX; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_DNS)
            continue;
        const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
        int n = ASN1_STRING_length(g->d.dNSName);
        if (n <= 0 || n >= FACTS_HOST_MAX)
            continue;
        char s[FACTS_HOST_MAX];
        for (int k = 0; k < n; k++)
            s[k] = (d[k] < 0x21 || d[k] > 0x7e) ? '?' : (char)d[k];
        if (!facts_add_san(f, s, (size_t)n))
            break;
    }
    GENERAL_NAMES_free(gens);
}

bool x509_parse_leaf(struct smtp_facts *f, struct facts_x509 *c, const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (!x)
        return false;
    c->present = true;
    name_str(f, &c->subject, X509_get_subject_name(x));
    name_str(f, &c->issuer, X509_get_issuer_name(x));
    time_str(f, &c->not_before, X509_get0_notBefore(x));
    time_str(f, &c->not_after, X509_get0_notAfter(x));
    san_dns(f, c, x);

    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char hex[65];
    if (EVP_Digest(der, len, md, &n, EVP_sha256(), NULL) == 1 && n == 32) {
        for (unsigned i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        facts_set(f, &c->sha256, hex, 64, 0);
    }

    c->self_signed = false;
    if (X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0) {
        EVP_PKEY *k = X509_get0_pubkey(x);
        c->self_signed = k && X509_verify(x, k) == 1;
        ERR_clear_error();
    }
    X509_free(x);
    return true;
}
