/* SPDX-License-Identifier: Apache-2.0 */
/* x509.c: the server's leaf certificate as seen in a TLS <= 1.2 handshake:
 * subject, issuer, SAN DNS names, validity, SHA-256 fingerprint, whether it
 * is self-signed. Parsed with OpenSSL (d2i_X509), never verified here;
 * the results are kept in a bounded cache keyed by the DER's SHA-256 so that
 * the same certificate is decoded once. And the digests DANE matches each
 * certificate of the chain with.
 * Follows RFC 5280 (certificate fields), RFC 4514 (DN strings),
 * RFC 3339 (validity times), RFC 6698 §2.1 (TLSA selectors and digests). */
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
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

/* SHA-256 and SHA-512 fetched once: EVP_sha256() in EVP_Digest makes
 * OpenSSL 3 look the implementation up again for every certificate. Kept
 * for the life of the process; NULL (fetch failed): the legacy getters. */
static EVP_MD *g_sha256, *g_sha512;
/* pthread_once, not C11 call_once: ThreadSanitizer sees its ordering */
static pthread_once_t g_md_once = PTHREAD_ONCE_INIT;

static void md_fetch(void)
{
    g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    g_sha512 = EVP_MD_fetch(NULL, "SHA512", NULL);
}

static const EVP_MD *md_sha256(void)
{
    pthread_once(&g_md_once, md_fetch);
    return g_sha256 ? g_sha256 : EVP_sha256();
}

static const EVP_MD *md_sha512(void)
{
    pthread_once(&g_md_once, md_fetch);
    return g_sha512 ? g_sha512 : EVP_sha512();
}

/* The SHA-256 of der as 64 hex digits and NUL; false when it cannot be had. */
static bool der_sha256(const uint8_t *der, size_t len, uint8_t md[32], char hex[65])
{
    unsigned int n = 0;
    if (EVP_Digest(der, len, md, &n, md_sha256(), NULL) != 1 || n != 32)
        return false;
    for (unsigned i = 0; i < 32; i++) {
        hex[2 * i] = "0123456789abcdef"[md[i] >> 4];
        hex[2 * i + 1] = "0123456789abcdef"[md[i] & 15];
    }
    hex[64] = '\0';
    return true;
}

/* Parses a certificate whose digest is known (have_md: md and hex valid). */
static bool parse_leaf(struct smtp_facts *f, struct facts_x509 *c, const uint8_t *der, size_t len,
                       bool have_md, const char *hex)
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
    if (have_md)
        facts_set(f, &c->sha256, hex, 64, 0);

    c->self_signed = false;
    if (X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0) {
        EVP_PKEY *k = X509_get0_pubkey(x);
        c->self_signed = k && X509_verify(x, k) == 1;
        ERR_clear_error();
    }
    X509_free(x);
    return true;
}

bool x509_parse_leaf(struct smtp_facts *f, struct facts_x509 *c, const uint8_t *der, size_t len)
{
    uint8_t md[32];
    char hex[65];
    bool have_md = der_sha256(der, len, md, hex);
    return parse_leaf(f, c, der, len, have_md, hex);
}

/* ---- the certificate cache ---- */

/* What parse_leaf left in a facts_x509, as owned strings (NULL: not set). */
struct x509_entry {
    struct x509_entry *hnext;       /* hash chain */
    struct x509_entry *prev, *next; /* least recently used first */
    uint8_t md[32];
    bool cert; /* false: the bytes are no certificate */
    bool self_signed;
    char *subject, *issuer, *not_before, *not_after;
    char **san;
    size_t n_san;
    /* x509_chain: the DANE digests of the chain this leaf came with last,
     * and the SHA-256 of that chain's certificates after the leaf (up to
     * FACTS_DANE_CERTS in all); dane NULL: none kept */
    uint8_t rest_md[32];
    char *dane;
};

#define X509_CACHE_BUCKETS 1024u /* power of two */

struct x509_cache {
    struct x509_entry *b[X509_CACHE_BUCKETS];
    struct x509_entry *head, *tail;
    size_t n, max;
    struct x509_cache_stats st;
};

struct x509_cache *x509_cache_new(size_t max)
{
    struct x509_cache *c = calloc(1, sizeof *c);
    if (c)
        c->max = max ? max : 1;
    return c;
}

static void entry_free(struct x509_entry *e)
{
    free(e->subject);
    free(e->issuer);
    free(e->not_before);
    free(e->not_after);
    for (size_t i = 0; i < e->n_san; i++)
        free(e->san[i]);
    free(e->san);
    free(e->dane);
    free(e);
}

void x509_cache_free(struct x509_cache *c)
{
    if (!c)
        return;
    for (struct x509_entry *e = c->head, *n; e; e = n) {
        n = e->next;
        entry_free(e);
    }
    free(c);
}

const struct x509_cache_stats *x509_cache_stats(const struct x509_cache *c)
{
    return &c->st;
}

static uint32_t bucket_of(const uint8_t md[32])
{
    uint32_t h;
    memcpy(&h, md, sizeof h); /* a digest: its bytes are already uniform */
    return h & (X509_CACHE_BUCKETS - 1);
}

static void lru_unlink(struct x509_cache *c, struct x509_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_append(struct x509_cache *c, struct x509_entry *e)
{
    e->prev = c->tail;
    e->next = NULL;
    if (c->tail)
        c->tail->next = e;
    else
        c->head = e;
    c->tail = e;
}

static struct x509_entry *cache_find(struct x509_cache *c, const uint8_t md[32])
{
    for (struct x509_entry *e = c->b[bucket_of(md)]; e; e = e->hnext)
        if (memcmp(e->md, md, 32) == 0)
            return e;
    return NULL;
}

static void cache_remove(struct x509_cache *c, struct x509_entry *e)
{
    struct x509_entry **pp = &c->b[bucket_of(e->md)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(c, e);
    c->n--;
}

/* A copy of s (NULL stays NULL); *ok false when out of memory. */
static char *dup_or_null(const char *s, bool *ok)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *ok = false;
    return d;
}

/* Remembers what parse_leaf made of the certificate with digest md (c is
 * the facts it filled; NULL: no certificate). Out of memory: not kept. */
static void cache_put(struct x509_cache *c, const uint8_t md[32], const struct facts_x509 *x)
{
    struct x509_entry *e = calloc(1, sizeof *e);
    if (!e)
        return;
    memcpy(e->md, md, 32);
    bool ok = true;
    if (x) {
        e->cert = true;
        e->self_signed = x->self_signed;
        e->subject = dup_or_null(x->subject, &ok);
        e->issuer = dup_or_null(x->issuer, &ok);
        e->not_before = dup_or_null(x->not_before, &ok);
        e->not_after = dup_or_null(x->not_after, &ok);
        if (x->n_san && (e->san = calloc(x->n_san, sizeof *e->san)) == NULL)
            ok = false;
        for (size_t i = 0; ok && i < x->n_san; i++) {
            e->san[i] = dup_or_null(x->san_dns[i], &ok);
            e->n_san = i + 1;
        }
    }
    if (!ok) {
        entry_free(e);
        return;
    }
    while (c->n >= c->max) {
        struct x509_entry *old = c->head;
        cache_remove(c, old);
        entry_free(old);
        c->st.evicted++;
    }
    uint32_t b = bucket_of(md);
    e->hnext = c->b[b];
    c->b[b] = e;
    lru_append(c, e);
    c->n++;
    c->st.entries = c->n;
}

/* Sets *slot to s when s was set (as parse_leaf's facts_set did). */
static void replay(struct smtp_facts *f, const char **slot, const char *s)
{
    if (s)
        facts_set(f, slot, s, strlen(s), 0);
}

/* x509_parse_leaf_cached; *entry: the cache's entry for the leaf afterwards
 * (NULL: none, not kept). */
static bool leaf_cached(struct x509_cache *cache, struct smtp_facts *f, struct facts_x509 *c,
                        const uint8_t *der, size_t len, struct x509_entry **entry)
{
    uint8_t md[32];
    char hex[65];
    bool have_md = der_sha256(der, len, md, hex);
    *entry = NULL;
    if (!cache || !have_md)
        return parse_leaf(f, c, der, len, have_md, hex);
    struct x509_entry *e = cache_find(cache, md);
    if (!e) {
        cache->st.misses++;
        bool ok = parse_leaf(f, c, der, len, true, hex);
        cache_put(cache, md, ok ? c : NULL);
        *entry = cache_find(cache, md);
        return ok;
    }
    *entry = e;
    cache->st.hits++;
    lru_unlink(cache, e);
    lru_append(cache, e);
    if (!e->cert)
        return false;
    c->present = true;
    replay(f, &c->subject, e->subject);
    replay(f, &c->issuer, e->issuer);
    replay(f, &c->not_before, e->not_before);
    replay(f, &c->not_after, e->not_after);
    for (size_t i = 0; i < e->n_san; i++)
        if (!facts_add_san(f, e->san[i], strlen(e->san[i])))
            break;
    facts_set(f, &c->sha256, hex, 64, 0);
    c->self_signed = e->self_signed;
    return true;
}

bool x509_parse_leaf_cached(struct x509_cache *cache, struct smtp_facts *f, struct facts_x509 *c,
                            const uint8_t *der, size_t len)
{
    struct x509_entry *e;
    return leaf_cached(cache, f, c, der, len, &e);
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
    } v[4] = {{der, len, md_sha256()},
              {der, len, md_sha512()},
              {spki, spki_len, md_sha256()},
              {spki, spki_len, md_sha512()}};
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

/* The 24-bit length at p[0..2]. */
static size_t u24(const uint8_t *p)
{
    return (size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2];
}

void x509_chain(struct x509_cache *cache, struct smtp_facts *f, struct facts_x509 *c,
                const uint8_t *list, size_t len)
{
    /* the certificates: the first FACTS_DANE_CERTS kept, all counted */
    const uint8_t *der[FACTS_DANE_CERTS];
    size_t n[FACTS_DANE_CERTS], count = 0, at = 0, rest_end = 0;
    while (len - at >= 3 && u24(list + at) <= len - at - 3) {
        size_t k = u24(list + at);
        if (count < FACTS_DANE_CERTS) {
            der[count] = list + at + 3;
            n[count] = k;
            rest_end = at + 3 + k;
        }
        count++;
        at += 3 + k;
    }
    c->chain_len = count;
    if (!count)
        return;
    struct x509_entry *e;
    leaf_cached(cache, f, c, der[0], n[0], &e);
    if (!c->present)
        return;
    /* the rest of the chain that counts: the same bytes after the same leaf
     * give the same digests */
    const uint8_t *rest = der[0] + n[0];
    size_t rest_len = rest_end - (size_t)(rest - list);
    uint8_t rest_md[32];
    char hex[65];
    bool have_rest = e && der_sha256(rest, rest_len, rest_md, hex);
    if (have_rest && e->dane && memcmp(e->rest_md, rest_md, 32) == 0) {
        facts_set(f, &c->dane_digests, e->dane, strlen(e->dane), 0);
        return;
    }
    /* DANE digests of each, ";" between; one that does not parse: none of
     * its digests */
    char dd[FACTS_DANE_CERTS * (X509_DANE_DIGESTS_LEN + 1)];
    size_t ddn = 0;
    for (size_t i = 0; i < count && i < FACTS_DANE_CERTS; i++) {
        if (ddn)
            dd[ddn++] = ';';
        size_t k = x509_dane_digests(der[i], n[i], dd + ddn, sizeof dd - ddn);
        if (!k && ddn)
            ddn--;
        ddn += k;
    }
    dd[ddn] = '\0';
    if (have_rest && ddn) {
        char *keep = strdup(dd);
        if (keep) {
            free(e->dane);
            e->dane = keep;
            memcpy(e->rest_md, rest_md, 32);
        }
    }
    if (ddn)
        facts_set(f, &c->dane_digests, dd, ddn, 0);
}
