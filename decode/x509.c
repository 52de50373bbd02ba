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

static void name_str(const X509_NAME *n, char *out, size_t len)
{
    out[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return;
    if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        int k = BIO_read(b, out, (int)len - 1);
        out[k > 0 ? k : 0] = '\0';
    }
    BIO_free(b);
}

static void time_str(const ASN1_TIME *t, char *out, size_t len)
{
    struct tm tm;
    out[0] = '\0';
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return;
    int n = snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (n < 0 || (size_t)n >= len) /* a year past 9999 does not fit: leave it unknown */
        out[0] = '\0';
}

static void san_dns(struct facts_x509 *c, X509 *x)
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
        char *s = malloc((size_t)n + 1);
        if (!s)
            break;
        for (int k = 0; k < n; k++)
            s[k] = (d[k] < 0x21 || d[k] > 0x7e) ? '?' : (char)d[k];
        s[n] = '\0';
        c->san_dns[c->n_san++] = s;
    }
    GENERAL_NAMES_free(gens);
}

bool x509_parse_leaf(struct facts_x509 *c, const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (!x)
        return false;
    c->present = true;
    name_str(X509_get_subject_name(x), c->subject, sizeof c->subject);
    name_str(X509_get_issuer_name(x), c->issuer, sizeof c->issuer);
    time_str(X509_get0_notBefore(x), c->not_before, sizeof c->not_before);
    time_str(X509_get0_notAfter(x), c->not_after, sizeof c->not_after);
    san_dns(c, x);

    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    c->sha256[0] = '\0';
    if (EVP_Digest(der, len, md, &n, EVP_sha256(), NULL) == 1 && n == 32)
        for (unsigned i = 0; i < 32; i++)
            snprintf(c->sha256 + 2 * i, 3, "%02x", md[i]);

    c->self_signed = false;
    if (X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0) {
        EVP_PKEY *k = X509_get0_pubkey(x);
        c->self_signed = k && X509_verify(x, k) == 1;
        ERR_clear_error();
    }
    X509_free(x);
    return true;
}
