/* SPDX-License-Identifier: Apache-2.0 */
/* tls.h: TLS handshake observer (decode/tls.c, x509.c), internal to the SMTP
 * decoder. It reads both directions' TLS records (bounded reassembly of
 * records and handshake messages), fills struct facts_tls (hello versions,
 * SNI, cipher, JA3/JA3S, the leaf certificate when visible, in TLS <= 1.2
 * the content type of the client's first record after its Finished) and
 * tells the caller when a direction has gone encrypted. */
#ifndef SW_TLS_H
#define SW_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode/facts.h"

#define TLS_HS_MAX (64 * 1024) /* largest handshake message kept */

struct tls_dir {
    uint8_t hdr[5];
    uint8_t hdr_len;
    uint8_t rec_type;
    uint32_t rec_left; /* body bytes left in the current record */
    uint8_t *hs;       /* handshake bytes awaiting a complete message */
    uint32_t hs_len, hs_cap;
    uint32_t hs_skip; /* bytes of an oversized message still to skip */
    uint8_t alert[2];
    uint8_t alert_len;
    bool encrypted; /* ChangeCipherSpec or application data seen */
    bool dead;      /* bytes that are not TLS records: parsing stopped */
    uint64_t records;
    uint64_t appdata; /* application_data records */
    uint8_t fin;      /* TLS_FIN_*: where the client is after its CCS */
};

/* The client's records from its ChangeCipherSpec on (struct tls_dir.fin):
 * the next one is its Finished, the one after that what it did next
 * (facts_tls.client_after). */
#define TLS_FIN_WAIT_CCS 0 /* no CCS yet */
#define TLS_FIN_CCS      1 /* CCS read: the next record is the Finished */
#define TLS_FIN_FINISHED 2 /* Finished read: the next record is recorded */
#define TLS_FIN_DONE     3 /* recorded (or not recordable): nothing more to read */

struct x509_cache;

struct tls_state {
    struct tls_dir d[2];
    uint64_t hs_dropped;      /* handshake messages over TLS_HS_MAX */
    struct x509_cache *certs; /* borrowed, may be NULL (x509_parse_leaf_cached) */
};

/* tls_feed results (bit set) */
#define TLS_R_ESTABLISHED 0x1u /* established became true during this call */
#define TLS_R_ALERT       0x2u /* a cleartext alert was read */
#define TLS_R_DEAD        0x4u /* the direction stopped being TLS */
#define TLS_R_HELLO       0x8u /* a ClientHello / ServerHello was read */

/* Parses len bytes of direction dir (0 c2s, 1 s2c). Never fails: malformed
 * input marks the direction dead. */
unsigned tls_feed(struct tls_state *t, struct smtp_facts *f, int dir, const uint8_t *buf,
                  size_t len);
/* True when the client direction has nothing more to tell: TLS 1.3 (the
 * record types are hidden), or its first record after its Finished read. */
bool tls_client_done(const struct tls_state *t, const struct facts_tls *f);
/* len bytes lost in direction dir: the direction's record framing is gone. */
void tls_gap(struct tls_state *t, int dir);
void tls_state_clear(struct tls_state *t);
/* True when the byte can start a TLS record (handshake, alert, CCS, data). */
bool tls_is_record_start(uint8_t b);
/* IANA name of a cipher suite, NULL when unknown. */
const char *tls_cipher_name(uint16_t suite);
const char *tls_alert_str(int desc);

/* x509.c: parses a DER leaf certificate into c (the certificate of f's TLS
 * facts; strings set in f) with OpenSSL d2i_X509. Returns false when it is
 * not a certificate. */
bool x509_parse_leaf(struct smtp_facts *f, struct facts_x509 *c, const uint8_t *der, size_t len);
/* The digests DANE matches a certificate with (RFC 6698 §2.1), hex, space
 * separated: SHA-256 and SHA-512 of the whole DER, then of its
 * subjectPublicKeyInfo. Returns the length written into out (NUL-terminated;
 * outlen >= X509_DANE_DIGESTS_LEN), 0 when the DER does not parse. */
#define X509_DANE_DIGESTS_LEN (2 * (64 + 128) + 3 + 1)
size_t x509_dane_digests(const uint8_t *der, size_t len, char *out, size_t outlen);

/* A bounded cache of parsed certificates keyed by the SHA-256 of the DER, so
 * that the certificate a server shows in every session is decoded once:
 * at most max entries (the least recently used leaves), each holding the
 * strings x509_parse_leaf sets (at most about 9 KiB: names of 255 bytes,
 * FACTS_SAN_MAX SAN names) and the DANE digests of the chain it came with
 * last (x509_chain: at most about 1.6 KiB). Not thread-safe: one per
 * worker. */
struct x509_cache_stats {
    uint64_t hits, misses, entries, evicted;
};
#define X509_CACHE_MAX 1000 /* entries per worker */
struct x509_cache *x509_cache_new(size_t max);
void x509_cache_free(struct x509_cache *c);
const struct x509_cache_stats *x509_cache_stats(const struct x509_cache *c);
/* x509_parse_leaf through cache (NULL: no cache): the same facts, the same
 * result; a certificate seen before is not decoded again (a hit). */
bool x509_parse_leaf_cached(struct x509_cache *cache, struct smtp_facts *f, struct facts_x509 *c,
                            const uint8_t *der, size_t len);
/* The chain of a Certificate message (list: its certificate_list, len
 * bytes): the leaf through x509_parse_leaf_cached, the chain's length, and
 * when the leaf is a certificate, the DANE digests (x509_dane_digests) of
 * the first FACTS_DANE_CERTS certificates, ";" between (one that does not
 * parse: left out). The cache keeps the digests with the leaf's entry, for
 * the chain it came with (the SHA-256 of the certificates after the leaf):
 * a server showing the same chain again costs two digests. */
void x509_chain(struct x509_cache *cache, struct smtp_facts *f, struct facts_x509 *c,
                const uint8_t *list, size_t len);

#endif
