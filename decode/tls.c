/* SPDX-License-Identifier: Apache-2.0 */
/* tls.c: TLS record and handshake observer for STARTTLS and implicit TLS:
 * ClientHello (SNI, versions, JA3), ServerHello (version, cipher, JA3S),
 * Certificate (TLS <= 1.2), alerts, the point where both sides encrypt, and
 * (TLS <= 1.2) the type of the client's first record after its Finished.
 * Follows RFC 5246 (TLS 1.2 records and handshake), RFC 8446 (TLS 1.3,
 * supported_versions), RFC 6066 (server_name), RFC 8701 (GREASE); JA3/JA3S
 * as defined by Salesforce (github.com/salesforce/ja3). */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode/tls.h"

#define TLS_CT_CCS       20
#define TLS_CT_ALERT     21
#define TLS_CT_HANDSHAKE 22
#define TLS_CT_APPDATA   23
#define TLS_CT_HEARTBEAT 24
#define TLS_REC_MAX      (16384 + 2048) /* RFC 5246 6.2.3 ciphertext bound */

#define TLS_HS_CLIENT_HELLO 1
#define TLS_HS_SERVER_HELLO 2
#define TLS_HS_CERTIFICATE  11

#define TLS_EXT_SNI                0
#define TLS_EXT_GROUPS             10
#define TLS_EXT_POINT_FORMATS      11
#define TLS_EXT_SUPPORTED_VERSIONS 43

bool tls_is_record_start(uint8_t b)
{
    return b >= TLS_CT_CCS && b <= TLS_CT_APPDATA;
}

static const struct {
    uint16_t id;
    const char *name;
} ciphers[] = {
    {0x0004, "TLS_RSA_WITH_RC4_128_MD5"},
    {0x0005, "TLS_RSA_WITH_RC4_128_SHA"},
    {0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"},
    {0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA"},
    {0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA"},
    {0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"},
    {0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"},
    {0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"},
    {0x003c, "TLS_RSA_WITH_AES_128_CBC_SHA256"},
    {0x003d, "TLS_RSA_WITH_AES_256_CBC_SHA256"},
    {0x0041, "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA"},
    {0x0045, "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA"},
    {0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"},
    {0x006b, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256"},
    {0x0084, "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA"},
    {0x0088, "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA"},
    {0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256"},
    {0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384"},
    {0x009e, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"},
    {0x009f, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"},
    {0x00ff, "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"},
    {0x1301, "TLS_AES_128_GCM_SHA256"},
    {0x1302, "TLS_AES_256_GCM_SHA384"},
    {0x1303, "TLS_CHACHA20_POLY1305_SHA256"},
    {0x1304, "TLS_AES_128_CCM_SHA256"},
    {0x1305, "TLS_AES_128_CCM_8_SHA256"},
    {0xc007, "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA"},
    {0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"},
    {0xc00a, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"},
    {0xc011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"},
    {0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"},
    {0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"},
    {0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"},
    {0xc023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"},
    {0xc024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"},
    {0xc027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"},
    {0xc028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"},
    {0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"},
    {0xc02c, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"},
    {0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
    {0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"},
    {0xcca8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"},
    {0xcca9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"},
    {0xccaa, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256"},
};

const char *tls_cipher_name(uint16_t suite)
{
    for (size_t i = 0; i < sizeof ciphers / sizeof ciphers[0]; i++)
        if (ciphers[i].id == suite)
            return ciphers[i].name;
    return NULL;
}

const char *tls_alert_str(int desc)
{
    switch (desc) {
    case 0:
        return "close_notify";
    case 10:
        return "unexpected_message";
    case 20:
        return "bad_record_mac";
    case 21:
        return "decryption_failed";
    case 22:
        return "record_overflow";
    case 40:
        return "handshake_failure";
    case 42:
        return "bad_certificate";
    case 43:
        return "unsupported_certificate";
    case 44:
        return "certificate_revoked";
    case 45:
        return "certificate_expired";
    case 46:
        return "certificate_unknown";
    case 47:
        return "illegal_parameter";
    case 48:
        return "unknown_ca";
    case 49:
        return "access_denied";
    case 50:
        return "decode_error";
    case 51:
        return "decrypt_error";
    case 70:
        return "protocol_version";
    case 71:
        return "insufficient_security";
    case 80:
        return "internal_error";
    case 86:
        return "inappropriate_fallback";
    case 90:
        return "user_canceled";
    case 100:
        return "no_renegotiation";
    case 109:
        return "missing_extension";
    case 110:
        return "unsupported_extension";
    case 112:
        return "unrecognized_name";
    case 116:
        return "certificate_required";
    case 120:
        return "no_application_protocol";
    }
    return "unknown";
}

/* ---- bounds-checked reader ---- */

struct rd {
    const uint8_t *p;
    size_t len, off;
};

static bool rd_u8(struct rd *r, uint8_t *v)
{
    if (r->len - r->off < 1)
        return false;
    *v = r->p[r->off++];
    return true;
}

static bool rd_u16(struct rd *r, uint16_t *v)
{
    if (r->len - r->off < 2)
        return false;
    *v = (uint16_t)(r->p[r->off] << 8 | r->p[r->off + 1]);
    r->off += 2;
    return true;
}

static bool rd_u24(struct rd *r, uint32_t *v)
{
    if (r->len - r->off < 3)
        return false;
    *v = (uint32_t)r->p[r->off] << 16 | (uint32_t)r->p[r->off + 1] << 8 | r->p[r->off + 2];
    r->off += 3;
    return true;
}

/* A sub-reader over the next n bytes; false when they are not there. */
static bool rd_sub(struct rd *r, size_t n, struct rd *sub)
{
    if (r->len - r->off < n)
        return false;
    sub->p = r->p + r->off;
    sub->len = n;
    sub->off = 0;
    r->off += n;
    return true;
}

static bool rd_vec8(struct rd *r, struct rd *sub)
{
    uint8_t n;
    return rd_u8(r, &n) && rd_sub(r, n, sub);
}

static bool rd_vec16(struct rd *r, struct rd *sub)
{
    uint16_t n;
    return rd_u16(r, &n) && rd_sub(r, n, sub);
}

/* ---- JA3 (MD5 over the decimal field string, built incrementally) ---- */

static bool is_grease(uint16_t v)
{
    return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

struct ja3 {
    EVP_MD_CTX *ctx;
    bool first;    /* no value yet in the current field */
    size_t n;      /* bytes in buf, not hashed yet */
    char buf[256]; /* the JA3 string is hashed in chunks, not value by value */
};

/* MD5 fetched once: EVP_md5() in EVP_DigestInit_ex makes OpenSSL 3 look the
 * implementation up again for every hello (about 100,000 instructions). The
 * fetched method is kept for the life of the process. */
static EVP_MD *g_md5;
/* pthread_once, not C11 call_once: ThreadSanitizer sees its ordering */
static pthread_once_t g_md5_once = PTHREAD_ONCE_INIT;

static void md5_fetch(void)
{
    g_md5 = EVP_MD_fetch(NULL, "MD5", NULL);
}

static void ja3_begin(struct ja3 *j)
{
    pthread_once(&g_md5_once, md5_fetch);
    j->ctx = EVP_MD_CTX_new();
    if (j->ctx && EVP_DigestInit_ex(j->ctx, g_md5 ? g_md5 : EVP_md5(), NULL) != 1) {
        EVP_MD_CTX_free(j->ctx);
        j->ctx = NULL;
    }
    j->first = true;
    j->n = 0;
}

static void ja3_flush(struct ja3 *j)
{
    if (j->ctx && j->n)
        EVP_DigestUpdate(j->ctx, j->buf, j->n);
    j->n = 0;
}

/* "-%u" ("%u" first in its field), written by hand: tens per hello */
static void ja3_value(struct ja3 *j, unsigned v)
{
    /* straight into the buffer: at most 11 bytes ('-' and 10 digits) */
    if (j->n + 11 > sizeof j->buf)
        ja3_flush(j);
    char *o = j->buf + j->n, d[10];
    if (!j->first)
        *o++ = '-';
    int k = 0;
    do {
        d[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k)
        *o++ = d[--k];
    j->n = (size_t)(o - j->buf);
    j->first = false;
}

static void ja3_field_end(struct ja3 *j, bool last)
{
    if (!last) {
        if (j->n + 1 > sizeof j->buf)
            ja3_flush(j);
        j->buf[j->n++] = ',';
    }
    j->first = true;
}

static void ja3_end(struct ja3 *j, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    out[0] = '\0';
    if (!j->ctx)
        return;
    ja3_flush(j);
    if (EVP_DigestFinal_ex(j->ctx, md, &n) == 1 && n == 16) {
        for (unsigned i = 0; i < 16; i++) {
            out[2 * i] = "0123456789abcdef"[md[i] >> 4];
            out[2 * i + 1] = "0123456789abcdef"[md[i] & 15];
        }
        out[32] = '\0';
    }
    EVP_MD_CTX_free(j->ctx);
    j->ctx = NULL;
}

/* ---- handshake messages ---- */

static void client_hello(struct smtp_facts *ff, struct facts_tls *f, struct rd *r)
{
    uint16_t version, v;
    struct rd sid, cs, comp, exts = {0};
    if (!rd_u16(r, &version) || r->len - r->off < 32)
        return;
    r->off += 32;
    if (!rd_vec8(r, &sid) || !rd_vec16(r, &cs) || !rd_vec8(r, &comp))
        return;
    f->client_hello = true;
    rd_vec16(r, &exts); /* absent or cut short: exts stays empty */

    struct ja3 j;
    ja3_begin(&j);
    ja3_value(&j, version);
    ja3_field_end(&j, false);
    while (rd_u16(&cs, &v))
        if (!is_grease(v))
            ja3_value(&j, v);
    ja3_field_end(&j, false);

    struct rd groups = {0}, formats = {0};
    f->n_offered_versions = 0;
    for (;;) {
        uint16_t type;
        struct rd body;
        if (!rd_u16(&exts, &type) || !rd_vec16(&exts, &body))
            break;
        if (is_grease(type))
            continue;
        ja3_value(&j, type);
        if (type == TLS_EXT_SNI) {
            struct rd list, name;
            uint8_t nt;
            if (rd_vec16(&body, &list) && rd_u8(&list, &nt) && nt == 0 && rd_vec16(&list, &name)) {
                char sni[FACTS_HOST_MAX];
                size_t n = name.len < sizeof sni ? name.len : sizeof sni - 1;
                memcpy(sni, name.p, n);
                sni[n] = '\0';
                for (size_t i = 0; i < n; i++) /* keep the record printable */
                    if (sni[i] < 0x21 || sni[i] > 0x7e)
                        sni[i] = '?';
                facts_set(ff, &f->sni, sni, n, 0);
            }
        } else if (type == TLS_EXT_GROUPS) {
            rd_vec16(&body, &groups);
        } else if (type == TLS_EXT_POINT_FORMATS) {
            rd_vec8(&body, &formats);
        } else if (type == TLS_EXT_SUPPORTED_VERSIONS) {
            struct rd list;
            if (rd_vec8(&body, &list))
                while (rd_u16(&list, &v))
                    if (!is_grease(v) && f->n_offered_versions < 16)
                        f->offered_versions[f->n_offered_versions++] = v;
        }
    }
    if (!f->n_offered_versions) {
        f->offered_versions[0] = version;
        f->n_offered_versions = 1;
    }
    ja3_field_end(&j, false);
    while (rd_u16(&groups, &v))
        if (!is_grease(v))
            ja3_value(&j, v);
    ja3_field_end(&j, false);
    uint8_t pf;
    while (rd_u8(&formats, &pf))
        ja3_value(&j, pf);
    ja3_field_end(&j, true);
    char ja3[33];
    ja3_end(&j, ja3);
    facts_set(ff, &f->ja3, ja3, strlen(ja3), 0);
}

static void server_hello(struct smtp_facts *ff, struct facts_tls *f, struct rd *r)
{
    uint16_t version, cipher;
    uint8_t comp;
    struct rd sid, exts;
    if (!rd_u16(r, &version) || r->len - r->off < 32)
        return;
    r->off += 32;
    if (!rd_vec8(r, &sid) || !rd_u16(r, &cipher) || !rd_u8(r, &comp))
        return;
    f->server_hello = true;
    f->version = version;
    f->cipher = cipher;
    f->cipher_name = tls_cipher_name(cipher);

    struct ja3 j;
    ja3_begin(&j);
    ja3_value(&j, version);
    ja3_field_end(&j, false);
    ja3_value(&j, cipher);
    ja3_field_end(&j, false);
    if (rd_vec16(r, &exts)) {
        uint16_t type;
        struct rd body;
        while (rd_u16(&exts, &type) && rd_vec16(&exts, &body)) {
            if (is_grease(type))
                continue;
            ja3_value(&j, type);
            uint16_t sel;
            if (type == TLS_EXT_SUPPORTED_VERSIONS && rd_u16(&body, &sel))
                f->version = sel;
        }
    }
    ja3_field_end(&j, true);
    char ja3s[33];
    ja3_end(&j, ja3s);
    facts_set(ff, &f->ja3s, ja3s, strlen(ja3s), 0);
}

static void certificate(struct tls_state *t, struct smtp_facts *ff, struct facts_tls *f,
                        struct rd *r)
{
    uint32_t total;
    struct rd list;
    if (f->version >= 0x0304 || f->cert.present)
        return; /* encrypted in TLS 1.3; only the first chain is kept */
    if (!rd_u24(r, &total) || !rd_sub(r, total, &list))
        return;
    x509_chain(t->certs, ff, &f->cert, list.p + list.off, list.len - list.off);
}

static unsigned hs_message(struct tls_state *t, struct smtp_facts *ff, struct facts_tls *f, int dir,
                           const uint8_t *m, size_t len)
{
    struct rd r = {m + 4, len - 4, 0};
    switch (m[0]) {
    case TLS_HS_CLIENT_HELLO:
        if (dir == 0 && !f->client_hello) {
            client_hello(ff, f, &r);
            return TLS_R_HELLO;
        }
        break;
    case TLS_HS_SERVER_HELLO:
        if (dir == 1 && !f->server_hello) {
            server_hello(ff, f, &r);
            return TLS_R_HELLO;
        }
        break;
    case TLS_HS_CERTIFICATE:
        if (dir == 1)
            certificate(t, ff, f, &r);
        break;
    }
    return 0;
}

static unsigned hs_bytes(struct tls_state *t, struct smtp_facts *ff, struct facts_tls *f, int dir,
                         const uint8_t *p, size_t n)
{
    struct tls_dir *d = &t->d[dir];
    unsigned res = 0;
    while (n) {
        if (d->hs_skip) {
            size_t k = n < d->hs_skip ? n : d->hs_skip;
            d->hs_skip -= (uint32_t)k;
            p += k;
            n -= k;
            continue;
        }
        size_t need = 4;
        if (d->hs_len >= 4)
            need = 4 + ((size_t)d->hs[1] << 16 | (size_t)d->hs[2] << 8 | d->hs[3]);
        if (need > d->hs_cap) {
            size_t cap = d->hs_cap ? d->hs_cap : 1024;
            while (cap < need)
                cap *= 2;
            if (cap > TLS_HS_MAX)
                cap = TLS_HS_MAX;
            uint8_t *nb = realloc(d->hs, cap);
            if (!nb) {
                d->dead = true;
                return res | TLS_R_DEAD;
            }
            d->hs = nb;
            d->hs_cap = (uint32_t)cap;
        }
        size_t k = need - d->hs_len;
        if (k > n)
            k = n;
        memcpy(d->hs + d->hs_len, p, k);
        d->hs_len += (uint32_t)k;
        p += k;
        n -= k;
        if (d->hs_len == 4) {
            size_t body = (size_t)d->hs[1] << 16 | (size_t)d->hs[2] << 8 | d->hs[3];
            if (4 + body > TLS_HS_MAX) {
                /* too big to keep: skip it, counted */
                t->hs_dropped++;
                d->hs_skip = (uint32_t)body;
                d->hs_len = 0;
                continue;
            }
            if (body)
                continue; /* now the body's length is known */
            need = 4;
        }
        if (d->hs_len >= 4 && d->hs_len == need) {
            res |= hs_message(t, ff, f, dir, d->hs, need);
            d->hs_len = 0;
        }
    }
    return res;
}

/* The client's record of this type begins: after its CCS comes its
 * Finished, and then the record kept in f->client_after (TLS <= 1.2: the
 * type is in clear). Data before any CCS: no Finished to count from. */
static void client_after(struct tls_dir *d, struct facts_tls *f, uint8_t type)
{
    switch (d->fin) {
    case TLS_FIN_WAIT_CCS:
        if (type == TLS_CT_CCS)
            d->fin = TLS_FIN_CCS;
        else if (type == TLS_CT_APPDATA)
            d->fin = TLS_FIN_DONE;
        break;
    case TLS_FIN_CCS:
        d->fin = TLS_FIN_FINISHED;
        break;
    case TLS_FIN_FINISHED:
        d->fin = TLS_FIN_DONE;
        if (f->server_hello && f->version < 0x0304) {
            if (type == TLS_CT_APPDATA)
                f->client_after = FACTS_TLS_AFTER_APPDATA;
            else if (type == TLS_CT_ALERT)
                f->client_after = FACTS_TLS_AFTER_ALERT;
        }
        break;
    }
}

bool tls_client_done(const struct tls_state *t, const struct facts_tls *f)
{
    return t->d[0].fin == TLS_FIN_DONE || f->version >= 0x0304;
}

unsigned tls_feed(struct tls_state *t, struct smtp_facts *ff, int dir, const uint8_t *buf,
                  size_t len)
{
    struct tls_dir *d = &t->d[dir];
    unsigned res = 0;
    struct facts_tls *f = facts_tls_mut(ff);
    if (!f) {
        d->dead = true;
        return TLS_R_DEAD;
    }
    size_t off = 0;
    while (off < len && !d->dead) {
        if (d->hdr_len < 5) {
            size_t k = 5 - d->hdr_len;
            if (k > len - off)
                k = len - off;
            memcpy(d->hdr + d->hdr_len, buf + off, k);
            d->hdr_len += (uint8_t)k;
            off += k;
            if (d->hdr_len < 5)
                break;
            uint8_t type = d->hdr[0];
            uint32_t rlen = (uint32_t)d->hdr[3] << 8 | d->hdr[4];
            if (type < TLS_CT_CCS || type > TLS_CT_HEARTBEAT || d->hdr[1] != 3 ||
                rlen > TLS_REC_MAX) {
                d->dead = true;
                res |= TLS_R_DEAD;
                break;
            }
            d->rec_type = type;
            d->rec_left = rlen;
            d->alert_len = 0;
            d->records++;
            if (type == TLS_CT_CCS || type == TLS_CT_APPDATA)
                d->encrypted = true;
            if (type == TLS_CT_APPDATA)
                d->appdata++;
            if (dir == 0)
                client_after(d, f, type);
            if (!rlen)
                d->hdr_len = 0;
            continue;
        }
        size_t n = len - off < d->rec_left ? len - off : d->rec_left;
        if (d->rec_type == TLS_CT_HANDSHAKE && !d->encrypted) {
            res |= hs_bytes(t, ff, f, dir, buf + off, n);
        } else if (d->rec_type == TLS_CT_ALERT && !d->encrypted) {
            for (size_t i = 0; i < n && d->alert_len < 2; i++)
                d->alert[d->alert_len++] = buf[off + i];
            if (d->alert_len == 2 && n) {
                f->alert_level = d->alert[0];
                f->alert_desc = d->alert[1];
                res |= TLS_R_ALERT;
                d->alert_len = 3; /* one alert per record */
            }
        }
        off += n;
        d->rec_left -= (uint32_t)n;
        if (!d->rec_left)
            d->hdr_len = 0;
    }
    /* TLS 1.3 hides the end of the handshake: a client that rejects the
     * server's certificate sends CCS and one encrypted alert. Established
     * needs a second encrypted client record (Finished, then data). */
    bool both = f->server_hello && t->d[0].encrypted && t->d[1].encrypted;
    if (both && f->version >= 0x0304 && t->d[0].appdata < 2)
        both = false;
    if (!f->established && both) {
        f->established = true;
        res |= TLS_R_ESTABLISHED;
    }
    return res;
}

void tls_gap(struct tls_state *t, int dir)
{
    t->d[dir].dead = true;
}

void tls_state_clear(struct tls_state *t)
{
    for (int i = 0; i < 2; i++) {
        free(t->d[i].hs);
        t->d[i].hs = NULL;
        t->d[i].hs_len = t->d[i].hs_cap = 0;
    }
}
