/* SPDX-License-Identifier: Apache-2.0 */
/* x509.c: the server's leaf certificate as seen in a TLS <= 1.2 handshake:
 * subject, issuer, SAN DNS names, validity, SHA-256 fingerprint, whether it
 * is self-signed. Parsed with OpenSSL (d2i_X509), never verified here.
 * And the digests DANE matches each certificate of the chain with.
 * Follows RFC 5280 (certificate fields), RFC 4514 (DN strings),
 * RFC 3339 (validity times), RFC 6698 §2.1 (TLSA selectors and digests). */
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

/* One DER TLV at *p (before end): its tag, its contents [*c, *c + *clen);
 * *p moves past it. False when it does not fit. */
static bool der_next(const uint8_t **p, const uint8_t *end, uint8_t *tag, const uint8_t **c,
                     size_t *clen)
{
    const uint8_t *q = *p;
    if (end - q < 2)
        return false;
    *tag = *q++;
    size_t len = *q++;
    if (len & 0x80) {
        size_t k = len & 0x7f;
        if (k == 0 || k > 4 || (size_t)(end - q) < k)
            return false;
        len = 0;
        while (k--)
            len = len << 8 | *q++;
    }
    if ((size_t)(end - q) < len)
        return false;
    *c = q;
    *clen = len;
    *p = q + len;
    return true;
}

/* The subjectPublicKeyInfo of a DER certificate, TLV included. */
static bool der_spki(const uint8_t *der, size_t len, const uint8_t **spki, size_t *spki_len)
{
    const uint8_t *p = der, *c, *tbs;
    size_t clen, tlen;
    uint8_t tag;
    if (!der_next(&p, der + len, &tag, &c, &clen) || tag != 0x30)
        return false;
    p = c;
    if (!der_next(&p, c + clen, &tag, &tbs, &tlen) || tag != 0x30)
        return false;
    const uint8_t *end = tbs + tlen;
    p = tbs;
    /* [0] version (optional), serial, signature, issuer, validity, subject */
    const uint8_t *at = p;
    if (!der_next(&p, end, &tag, &c, &clen))
        return false;
    if (tag != 0xa0)
        p = at;
    for (int i = 0; i < 5; i++)
        if (!der_next(&p, end, &tag, &c, &clen))
            return false;
    at = p;
    if (!der_next(&p, end, &tag, &c, &clen) || tag != 0x30)
        return false;
    *spki = at;
    *spki_len = (size_t)(p - at);
    return true;
}

static void hex_of(const unsigned char *md, unsigned n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = hx[md[i] >> 4];
        out[2 * i + 1] = hx[md[i] & 15];
    }
    out[2 * n] = 0;
}

size_t x509_dane_digests(const uint8_t *der, size_t len, char *out, size_t outlen)
{
    const uint8_t *spki;
    size_t spki_len;
    if (outlen < X509_DANE_DIGESTS_LEN || !der_spki(der, len, &spki, &spki_len))
        return 0;
    const struct {
        const uint8_t *p;
        size_t n;
        const EVP_MD *md;
    } v[4] = {{der, len, EVP_sha256()},
              {der, len, EVP_sha512()},
              {spki, spki_len, EVP_sha256()},
              {spki, spki_len, EVP_sha512()}};
    size_t o = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        if (EVP_Digest(v[i].p, v[i].n, md, &n, v[i].md, NULL) != 1)
            return 0;
        if (i)
            out[o++] = ' ';
        hex_of(md, n, out + o);
        o += 2 * n;
    }
    return o;
}
