/* SPDX-License-Identifier: Apache-2.0 */
/* test_smtp_tls.c: STARTTLS and implicit TLS in the SMTP decoder: hello
 * parsing (SNI, versions, GREASE), JA3/JA3S, the certificate (a real one
 * made here with OpenSSL), alerts, the end of buffering, TLS 1.3; and the
 * classification of non-SMTP ports (nDPI 4.2, SOCKS / HTTP CONNECT prefixes).
 * TLS records are built by small writers below (RFC 5246, RFC 8446). */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conv.h"
#include "decode/ndpi_smtp.h"
#include "decode/tls.h"

static struct smtp_cfg cfg;
static struct flow_info fi;

static int setup(void **state)
{
    (void)state;
    smtp_cfg_defaults(&cfg);
    conv_flow(&fi, 25);
    return 0;
}

/* ---- writers ---- */

struct wbuf {
    uint8_t *b;
    size_t n, cap;
};

static void w_bytes(struct wbuf *w, const void *p, size_t n)
{
    if (!n)
        return;
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2;
        w->b = realloc(w->b, w->cap);
        assert_non_null(w->b);
    }
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void w8(struct wbuf *w, unsigned v)
{
    uint8_t b = (uint8_t)v;
    w_bytes(w, &b, 1);
}

static void w16(struct wbuf *w, unsigned v)
{
    w8(w, v >> 8);
    w8(w, v);
}

static void w24(struct wbuf *w, size_t v)
{
    w8(w, (unsigned)(v >> 16));
    w8(w, (unsigned)(v >> 8));
    w8(w, (unsigned)v);
}

/* Wraps body as one handshake message of type t. */
static void w_handshake(struct wbuf *w, unsigned t, const struct wbuf *body)
{
    w8(w, t);
    w24(w, body->n);
    w_bytes(w, body->b, body->n);
}

/* Wraps body into TLS records of at most max bytes each. */
static void w_records(struct wbuf *w, unsigned type, const struct wbuf *body, size_t max)
{
    size_t off = 0;
    do {
        size_t n = body->n - off < max ? body->n - off : max;
        w8(w, type);
        w16(w, 0x0303);
        w16(w, (unsigned)n);
        w_bytes(w, body->b + off, n);
        off += n;
    } while (off < body->n);
}

static void w_ext(struct wbuf *w, unsigned type, const struct wbuf *body)
{
    w16(w, type);
    w16(w, (unsigned)body->n);
    if (body->n)
        w_bytes(w, body->b, body->n);
}

static void w_free(struct wbuf *w)
{
    free(w->b);
    memset(w, 0, sizeof *w);
}

/* ClientHello with GREASE in ciphers, extensions, groups and versions.
 * Its JA3 string is "771,4865-4866-49199,0-10-11-43-65281,29-23,0". */
static void client_hello(struct wbuf *out, const char *sni)
{
    struct wbuf h = {0}, exts = {0}, e = {0}, tmp = {0};
    w16(&h, 0x0303);
    for (int i = 0; i < 32; i++)
        w8(&h, i);
    w8(&h, 0); /* session id */
    w16(&h, 8);
    w16(&h, 0x0a0a);
    w16(&h, 0x1301);
    w16(&h, 0x1302);
    w16(&h, 0xc02f);
    w8(&h, 1);
    w8(&h, 0);
    w_ext(&exts, 0x1a1a, &e); /* GREASE, empty */
    /* server_name */
    w8(&tmp, 0);
    w16(&tmp, (unsigned)strlen(sni));
    w_bytes(&tmp, sni, strlen(sni));
    w16(&e, (unsigned)tmp.n);
    w_bytes(&e, tmp.b, tmp.n);
    w_ext(&exts, 0, &e);
    w_free(&e);
    w_free(&tmp);
    /* supported_groups */
    w16(&e, 6);
    w16(&e, 0x2a2a);
    w16(&e, 29);
    w16(&e, 23);
    w_ext(&exts, 10, &e);
    w_free(&e);
    /* ec_point_formats */
    w8(&e, 1);
    w8(&e, 0);
    w_ext(&exts, 11, &e);
    w_free(&e);
    /* supported_versions */
    w8(&e, 6);
    w16(&e, 0x3a3a);
    w16(&e, 0x0304);
    w16(&e, 0x0303);
    w_ext(&exts, 43, &e);
    w_free(&e);
    /* renegotiation_info */
    w8(&e, 0);
    w_ext(&exts, 0xff01, &e);
    w_free(&e);
    w16(&h, (unsigned)exts.n);
    w_bytes(&h, exts.b, exts.n);
    struct wbuf msg = {0};
    w_handshake(&msg, 1, &h);
    w_records(out, 22, &msg, 16384);
    w_free(&msg);
    w_free(&h);
    w_free(&exts);
}

/* ServerHello; tls13 adds supported_versions (JA3S "771,4866,43-51"), else
 * JA3S is "771,49199,65281-11". */
static void server_hello(struct wbuf *msgs, bool tls13)
{
    struct wbuf h = {0}, exts = {0}, e = {0};
    w16(&h, 0x0303);
    for (int i = 0; i < 32; i++)
        w8(&h, 0x40 + i);
    w8(&h, 0);
    w16(&h, tls13 ? 0x1302 : 0xc02f);
    w8(&h, 0);
    if (tls13) {
        w16(&e, 0x0304);
        w_ext(&exts, 43, &e);
        w_free(&e);
        w16(&e, 29);
        w16(&e, 4);
        w16(&e, 0x0102);
        w16(&e, 0x0304);
        w_ext(&exts, 51, &e);
    } else {
        w8(&e, 0);
        w_ext(&exts, 0xff01, &e);
        w_free(&e);
        w8(&e, 1);
        w8(&e, 0);
        w_ext(&exts, 11, &e);
    }
    w_free(&e);
    w16(&h, (unsigned)exts.n);
    w_bytes(&h, exts.b, exts.n);
    w_handshake(msgs, 2, &h);
    w_free(&h);
    w_free(&exts);
}

/* A self-signed certificate for mx.example.org, DER in *der. */
static void make_cert(struct wbuf *der)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"Example", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"mx.example.org", -1,
                               -1, 0);
    X509_set_issuer_name(x, n);
    ASN1_TIME_set_string(X509_getm_notBefore(x), "20260101000000Z");
    ASN1_TIME_set_string(X509_getm_notAfter(x), "20270101120000Z");
    X509_set_pubkey(x, k);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(
        NULL, &ctx, NID_subject_alt_name, "DNS:mx.example.org,IP:192.0.2.1,DNS:mail.example.org");
    assert_non_null(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    unsigned char *p = NULL;
    int len = i2d_X509(x, &p);
    assert_true(len > 0);
    w_bytes(der, p, (size_t)len);
    OPENSSL_free(p);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void sha256_hex(const struct wbuf *b, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(b->b, b->n, md, &n, EVP_sha256(), NULL), 1);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static const char ja3_expected[] = "8719c2a74c6622115026b7aac36d9e19";
static const char ja3s_12[] = "303951d4c50efb2e991652225a6f02b1";
static const char ja3s_13[] = "15af977ce25de452b96affa2addb1036";

/* The record of facts holding only certificate c (sorted keys). */
static char *cert_json(struct smtp_facts *f)
{
    json_t *j = facts_to_json(f);
    assert_non_null(j);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    assert_non_null(s);
    return s;
}

/* The certificate cache: a certificate seen again is not decoded again and
 * gives the same facts; bytes that are no certificate are remembered too;
 * the least recently used entry leaves past the bound. */
static void test_cert_cache(void **state)
{
    (void)state;
    struct wbuf a = {0}, b = {0};
    make_cert(&a);
    make_cert(&b); /* another key: another DER */
    struct smtp_facts *plain = facts_new();
    assert_true(x509_parse_leaf(plain, &facts_tls_mut(plain)->cert, a.b, a.n));
    char *want = cert_json(plain);
    assert_non_null(strstr(want, "mail.example.org"));
    struct x509_cache *cache = x509_cache_new(2);
    const struct x509_cache_stats *st = x509_cache_stats(cache);
    for (int i = 0; i < 2; i++) {
        struct smtp_facts *f = facts_new();
        assert_true(x509_parse_leaf_cached(cache, f, &facts_tls_mut(f)->cert, a.b, a.n));
        char *got = cert_json(f);
        assert_string_equal(got, want);
        assert_true(f->tls->cert.self_signed);
        free(got);
        facts_free(f);
    }
    assert_int_equal(st->misses, 1);
    assert_int_equal(st->hits, 1);
    static const uint8_t junk[] = {0x30, 0x03, 0x01, 0x02, 0x03};
    for (int i = 0; i < 2; i++) {
        struct smtp_facts *f = facts_new();
        assert_false(x509_parse_leaf_cached(cache, f, &facts_tls_mut(f)->cert, junk, sizeof junk));
        assert_false(f->tls->cert.present);
        assert_null(f->tls->cert.sha256);
        facts_free(f);
    }
    assert_int_equal(st->misses, 2);
    assert_int_equal(st->hits, 2);
    assert_int_equal(st->entries, 2);
    /* a is the least recently used: b pushes it out, then a is a miss */
    struct smtp_facts *f = facts_new();
    assert_true(x509_parse_leaf_cached(cache, f, &facts_tls_mut(f)->cert, b.b, b.n));
    facts_free(f);
    assert_int_equal(st->evicted, 1);
    f = facts_new();
    assert_true(x509_parse_leaf_cached(cache, f, &facts_tls_mut(f)->cert, a.b, a.n));
    char *got = cert_json(f);
    assert_string_equal(got, want);
    free(got);
    facts_free(f);
    assert_int_equal(st->misses, 4);
    assert_int_equal(st->hits, 2);
    assert_int_equal(st->evicted, 2);
    assert_int_equal(st->entries, 2);
    x509_cache_free(cache);
    free(want);
    facts_free(plain);
    w_free(&a);
    w_free(&b);
}

/* certificate_list bytes: each DER with its 24-bit length. */
static void chain_of(struct wbuf *list, const struct wbuf *const *certs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        w24(list, (unsigned)certs[i]->n);
        w_bytes(list, certs[i]->b, certs[i]->n);
    }
}

/* The DANE digests x509_chain gives, or "-" when none. */
static char *chain_digests(struct x509_cache *cache, const struct wbuf *list, size_t *chain_len)
{
    struct smtp_facts *f = facts_new();
    struct facts_x509 *c = &facts_tls_mut(f)->cert;
    x509_chain(cache, f, c, list->b, list->n);
    *chain_len = c->chain_len;
    char *s = strdup(c->dane_digests ? c->dane_digests : "-");
    assert_non_null(s);
    facts_free(f);
    return s;
}

/* A chain's DANE digests: each certificate's (x509_dane_digests), ";"
 * between, one that does not parse left out; cached with the leaf for the
 * chain it came with: the same chain again gives the same string, the same
 * leaf with another chain its own. */
static void test_chain_digests(void **state)
{
    (void)state;
    struct wbuf a = {0}, b = {0}, c = {0}, junk = {0}, l1 = {0}, l2 = {0}, l3 = {0};
    make_cert(&a);
    make_cert(&b);
    make_cert(&c);
    static const uint8_t jb[] = {0x30, 0x03, 0x01, 0x02, 0x03};
    w_bytes(&junk, jb, sizeof jb);
    char da[X509_DANE_DIGESTS_LEN], db[X509_DANE_DIGESTS_LEN], dc[X509_DANE_DIGESTS_LEN];
    assert_true(x509_dane_digests(a.b, a.n, da, sizeof da) > 0);
    assert_true(x509_dane_digests(b.b, b.n, db, sizeof db) > 0);
    assert_true(x509_dane_digests(c.b, c.n, dc, sizeof dc) > 0);
    char want_ab[3 * X509_DANE_DIGESTS_LEN], want_ac[3 * X509_DANE_DIGESTS_LEN];
    snprintf(want_ab, sizeof want_ab, "%s;%s", da, db);
    snprintf(want_ac, sizeof want_ac, "%s;%s", da, dc);
    chain_of(&l1, (const struct wbuf *[]){&a, &b}, 2);
    chain_of(&l2, (const struct wbuf *[]){&a, &junk, &c}, 3);
    chain_of(&l3, (const struct wbuf *[]){&junk, &a}, 2);

    struct x509_cache *cache = x509_cache_new(4);
    const struct x509_cache_stats *st = x509_cache_stats(cache);
    size_t len;
    for (int i = 0; i < 2; i++) {
        char *got = chain_digests(cache, &l1, &len);
        assert_string_equal(got, want_ab);
        assert_int_equal(len, 2);
        free(got);
        /* the same leaf with another chain: its own digests, not the cached ones */
        got = chain_digests(cache, &l2, &len);
        assert_string_equal(got, want_ac);
        assert_int_equal(len, 3);
        free(got);
    }
    assert_int_equal(st->misses, 1);
    assert_int_equal(st->hits, 3);
    /* without a cache: the same */
    char *got = chain_digests(NULL, &l1, &len);
    assert_string_equal(got, want_ab);
    free(got);
    /* a leaf that is no certificate: no digests, the chain still counted */
    got = chain_digests(cache, &l3, &len);
    assert_string_equal(got, "-");
    assert_int_equal(len, 2);
    free(got);
    x509_cache_free(cache);
    w_free(&a);
    w_free(&b);
    w_free(&c);
    w_free(&junk);
    w_free(&l1);
    w_free(&l2);
    w_free(&l3);
}

/* ---- STARTTLS with TLS 1.2 and a visible certificate ---- */

static void test_starttls_tls12_certificate(void **state)
{
    (void)state;
    struct wbuf ch = {0}, sh = {0}, msgs = {0}, cert = {0}, clist = {0}, body = {0}, cfin = {0},
                sfin = {0}, ccs = {0}, fin = {0};
    client_hello(&ch, "mx.example.org");
    make_cert(&cert);
    server_hello(&msgs, false);
    w24(&clist, cert.n);
    w_bytes(&clist, cert.b, cert.n);
    w24(&clist, 3); /* a second, bogus chain entry */
    w8(&clist, 1), w8(&clist, 2), w8(&clist, 3);
    w24(&body, clist.n);
    w_bytes(&body, clist.b, clist.n);
    w_handshake(&msgs, 11, &body);
    w_free(&body);
    w_handshake(&msgs, 14, &body);  /* ServerHelloDone, empty */
    w_records(&sh, 22, &msgs, 700); /* messages spread over several records */
    w8(&ccs, 1);
    for (int i = 0; i < 40; i++)
        w8(&fin, 0xa5);
    /* client: key exchange, CCS, encrypted Finished */
    w_free(&body);
    w8(&body, 0);
    w8(&body, 1);
    w8(&body, 0x55);
    struct wbuf cke = {0};
    w_handshake(&cke, 16, &body);
    w_records(&cfin, 22, &cke, 16384);
    w_records(&cfin, 20, &ccs, 16384);
    w_records(&cfin, 22, &fin, 16384);
    w_records(&sfin, 20, &ccs, 16384);
    w_records(&sfin, 22, &fin, 16384);
    w_records(&sfin, 23, &fin, 16384);

    struct step conv[] = {
        S("220 mx.example.org ESMTP\r\n"),
        C("EHLO out.example.net\r\n"),
        S("250-mx.example.org\r\n250-PIPELINING\r\n250 STARTTLS\r\n"),
        C("STARTTLS\r\n"),
        S("220 2.0.0 Ready to start TLS\r\n"),
        {DIR_C2S, (const char *)ch.b, ch.n},
        {DIR_S2C, (const char *)sh.b, sh.n},
        {DIR_C2S, (const char *)cfin.b, cfin.n},
        {DIR_S2C, (const char *)sfin.b, sfin.n},
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    const struct facts_tls *t = f->tls;
    assert_true(t->client_hello);
    assert_true(t->server_hello);
    assert_true(t->established);
    assert_false(t->implicit);
    assert_int_equal(t->version, 0x0303);
    assert_int_equal(t->cipher, 0xc02f);
    assert_string_equal(t->cipher_name, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
    assert_string_equal(t->sni, "mx.example.org");
    assert_int_equal(t->n_offered_versions, 2);
    assert_int_equal(t->offered_versions[0], 0x0304);
    assert_int_equal(t->offered_versions[1], 0x0303);
    assert_string_equal(t->ja3, ja3_expected);
    assert_string_equal(t->ja3s, ja3s_12);
    assert_true(t->cert.present);
    assert_string_equal(t->cert.subject, "CN=mx.example.org,O=Example");
    assert_string_equal(t->cert.issuer, "CN=mx.example.org,O=Example");
    assert_int_equal(t->cert.n_san, 2);
    assert_string_equal(t->cert.san_dns[0], "mx.example.org");
    assert_string_equal(t->cert.san_dns[1], "mail.example.org");
    assert_string_equal(t->cert.not_before, "2026-01-01T00:00:00Z");
    assert_string_equal(t->cert.not_after, "2027-01-01T12:00:00Z");
    char fp[65];
    sha256_hex(&cert, fp);
    assert_string_equal(t->cert.sha256, fp);
    assert_true(t->cert.self_signed);
    assert_int_equal(t->cert.chain_len, 2);
    assert_int_equal(t->alert_level, -1);
    assert_int_equal(f->starttls_code, 220);
    assert_int_equal(f->end, SMTP_END_TLS);
    assert_int_equal(f->n_anomalies, 0);
    /* established: the server's side stops; the client's waits for its
     * first record after its Finished, which never came */
    assert_int_equal(r.stop, STREAM_STOP_S2C);
    assert_int_equal(t->client_after, FACTS_TLS_AFTER_NONE);
    assert_string_equal(r.events, "ehlo_reply,starttls_reply,tls,end");
    assert_non_null(strstr(r.json, "\"tls\":{\"cipher\":\"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\","
                                   "\"client\":{\"after_handshake\":null,"
                                   "\"ja3\":\"8719c2a74c6622115026b7aac36d9e19\","
                                   "\"server_name\":\"mx.example.org\"},\"established\":true,"));
    assert_non_null(
        strstr(r.json, "\"alternative_names\":[\"mx.example.org\",\"mail.example.org\"]"));
    assert_non_null(strstr(r.json, "\"version\":\"1.2\"}"));
    uint64_t c2s_bytes = f->bytes_c2s;
    uint64_t last_pkt = f->last_pkt;
    conv_result_free(&r);

    /* the client's next record: application data (twice: only the first
     * counts), or an (encrypted) alert; its type is in clear in TLS 1.2 */
    struct wbuf capp = {0}, calert = {0}, cfalse = {0};
    w_records(&capp, 23, &fin, 16384);
    w_records(&capp, 23, &fin, 16384);
    w_records(&calert, 21, &fin, 16384);
    struct step next[CONV_N(conv) + 1];
    memcpy(next, conv, sizeof conv);
    next[CONV_N(conv)] = (struct step){DIR_C2S, (const char *)capp.b, capp.n};
    conv_check(&cfg, &fi, next, CONV_N(next), true, &r);
    assert_int_equal(r.facts->tls->client_after, FACTS_TLS_AFTER_APPDATA);
    assert_int_equal(r.stop, STREAM_STOP_C2S | STREAM_STOP_S2C);
    assert_non_null(strstr(r.json, "\"client\":{\"after_handshake\":\"application_data\","));
    /* read for its header only: its bytes count, the last packet is as before */
    assert_int_equal(r.facts->bytes_c2s, c2s_bytes + capp.n);
    assert_int_equal(r.facts->last_pkt, last_pkt);
    assert_int_equal(r.facts->n_anomalies, 0);
    conv_result_free(&r);

    next[CONV_N(conv)] = (struct step){DIR_C2S, (const char *)calert.b, calert.n};
    conv_check(&cfg, &fi, next, CONV_N(next), true, &r);
    assert_int_equal(r.facts->tls->client_after, FACTS_TLS_AFTER_ALERT);
    assert_int_equal(r.stop, STREAM_STOP_C2S | STREAM_STOP_S2C);
    assert_non_null(strstr(r.json, "\"client\":{\"after_handshake\":\"alert\","));
    assert_int_equal(r.facts->tls->alert_level, -1); /* encrypted: not read */
    assert_int_equal(r.facts->bytes_c2s, c2s_bytes + calert.n);
    assert_int_equal(r.facts->n_anomalies, 0);
    conv_result_free(&r);

    /* False Start: data right behind the Finished, before the server's */
    w_bytes(&cfalse, cfin.b, cfin.n);
    w_bytes(&cfalse, capp.b, capp.n);
    struct step early[CONV_N(conv)];
    memcpy(early, conv, sizeof conv);
    early[7] = (struct step){DIR_C2S, (const char *)cfalse.b, cfalse.n};
    conv_check(&cfg, &fi, early, CONV_N(early), true, &r);
    assert_int_equal(r.facts->tls->client_after, FACTS_TLS_AFTER_APPDATA);
    assert_true(r.facts->tls->established);
    assert_int_equal(r.stop, STREAM_STOP_C2S | STREAM_STOP_S2C);
    conv_result_free(&r);
    w_free(&capp);
    w_free(&calert);
    w_free(&cfalse);
    struct wbuf *all[] = {&ch, &sh, &msgs, &cert, &clist, &body, &cfin, &sfin, &ccs, &fin, &cke};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        w_free(all[i]);
}

/* ---- implicit TLS 1.3 on 465 ---- */

static void test_implicit_tls13(void **state)
{
    (void)state;
    struct wbuf ch = {0}, msgs = {0}, sh = {0}, ccs = {0}, enc = {0}, cfin = {0};
    client_hello(&ch, "smtp.example.org");
    server_hello(&msgs, true);
    w_records(&sh, 22, &msgs, 16384);
    w8(&ccs, 1);
    w_records(&sh, 20, &ccs, 16384);
    for (int i = 0; i < 300; i++)
        w8(&enc, i);
    w_records(&sh, 23, &enc, 16384);
    w_records(&cfin, 20, &ccs, 16384);
    w_records(&cfin, 23, &enc, 16384); /* Finished */
    w_records(&cfin, 23, &enc, 16384); /* EHLO */
    struct flow_info t = fi;
    t.sport = 465;
    struct step conv[] = {
        {DIR_C2S, (const char *)ch.b, ch.n},
        {DIR_S2C, (const char *)sh.b, sh.n},
        {DIR_C2S, (const char *)cfin.b, cfin.n},
    };
    struct conv_result r;
    conv_check(&cfg, &t, conv, CONV_N(conv), true, &r);
    const struct facts_tls *tl = r.facts->tls;
    assert_true(tl->implicit);
    assert_true(tl->established);
    assert_int_equal(tl->version, 0x0304);
    assert_string_equal(tl->cipher_name, "TLS_AES_256_GCM_SHA384");
    assert_string_equal(tl->sni, "smtp.example.org");
    assert_string_equal(tl->ja3, ja3_expected);
    assert_string_equal(tl->ja3s, ja3s_13);
    assert_false(tl->cert.present);
    /* record types are hidden in TLS 1.3: the EHLO after the Finished is
     * not told apart from an alert */
    assert_int_equal(tl->client_after, FACTS_TLS_AFTER_NONE);
    assert_non_null(strstr(r.json, "\"client\":{\"after_handshake\":null,"));
    assert_int_equal(r.facts->banner_code, 0);
    assert_int_equal(r.facts->end, SMTP_END_TLS);
    assert_int_equal(r.facts->n_anomalies, 0);
    assert_int_equal(r.stop, STREAM_STOP_C2S | STREAM_STOP_S2C);
    assert_string_equal(r.events, "tls,end");
    assert_non_null(
        strstr(r.json, "\"implicit\":true,\"server\":{\"ja3s\":"
                       "\"15af977ce25de452b96affa2addb1036\",\"x509\":null},\"version\":\"1.3\"}"));
    conv_result_free(&r);

    /* the client rejects the certificate: CCS and one encrypted alert */
    struct wbuf alert = {0}, cfail = {0};
    for (int i = 0; i < 19; i++)
        w8(&alert, 0x77);
    w_records(&cfail, 20, &ccs, 16384);
    w_records(&cfail, 23, &alert, 16384);
    conv[2].data = (const char *)cfail.b;
    conv[2].len = cfail.n;
    conv_check(&cfg, &t, conv, CONV_N(conv), true, &r);
    assert_true(r.facts->tls->server_hello);
    assert_false(r.facts->tls->established);
    assert_int_equal(r.stop, 0);
    assert_int_equal(r.facts->end, SMTP_END_FIN);
    assert_string_equal(r.events, "tls,end");
    conv_result_free(&r);
    w_free(&alert);
    w_free(&cfail);
    struct wbuf *all[] = {&ch, &msgs, &sh, &ccs, &enc, &cfin};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        w_free(all[i]);
}

/* ndpi smtps.pcapng: a ClientHello on 465, answered by a plaintext banner */
static void test_plaintext_on_tls_port(void **state)
{
    (void)state;
    struct wbuf ch = {0};
    client_hello(&ch, "mail.example.org");
    struct flow_info t = fi;
    t.sport = 465;
    struct step conv[] = {
        {DIR_C2S, (const char *)ch.b, ch.n},
        S("220-gator.example.com ESMTP Exim\r\n220-We do not authorize UBE\r\n220 and/or bulk "
          "e-mail.\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &t, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_int_equal(f->n_anomalies, 1);
    assert_int_equal(f->anomalies[0].kind, ANOM_PLAINTEXT_ON_TLS_PORT);
    assert_int_equal(f->anomalies[0].dir, DIR_S2C);
    assert_string_equal(f->anomalies[0].detail, "first byte 0x32, port 465");
    assert_int_equal(f->banner_code, 220);
    assert_string_equal(f->banner_host, "gator.example.com");
    assert_true(f->tls->client_hello);
    assert_false(f->tls->established);
    assert_int_equal(f->end, SMTP_END_FIN);
    assert_string_equal(r.events, "tls,end");
    conv_result_free(&r);
    w_free(&ch);
}

static void test_tls_alert(void **state)
{
    (void)state;
    struct wbuf ch = {0}, al = {0}, rec = {0};
    client_hello(&ch, "mx.example.org");
    w8(&al, 2);
    w8(&al, 40);
    w_records(&rec, 21, &al, 16384);
    struct step conv[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        S("250-mx\r\n250 STARTTLS\r\n"),
        C("STARTTLS\r\n"),
        S("220 go ahead\r\n"),
        {DIR_C2S, (const char *)ch.b, ch.n},
        {DIR_S2C, (const char *)rec.b, rec.n},
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_int_equal(f->n_anomalies, 1);
    assert_int_equal(f->anomalies[0].kind, ANOM_TLS_ALERT);
    assert_string_equal(f->anomalies[0].detail, "level 2 handshake_failure (40)");
    assert_int_equal(f->tls->alert_level, 2);
    assert_int_equal(f->tls->alert_desc, 40);
    assert_false(f->tls->established);
    assert_string_equal(r.events, "ehlo_reply,starttls_reply,tls,end");
    assert_non_null(strstr(r.json, "\"alert\":{\"description\":40,\"level\":2}"));
    conv_result_free(&r);
    w_free(&ch);
    w_free(&al);
    w_free(&rec);
}

static void test_server_plaintext_after_client_hello(void **state)
{
    (void)state;
    struct wbuf ch = {0};
    client_hello(&ch, "mx.example.org");
    struct step conv[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        S("250-mx\r\n250 STARTTLS\r\n"),
        C("STARTTLS\r\n"),
        S("220 go ahead\r\n"),
        {DIR_C2S, (const char *)ch.b, ch.n},
        S("421 4.7.0 TLS not available\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_int_equal(f->n_anomalies, 1);
    assert_int_equal(f->anomalies[0].kind, ANOM_NOT_TLS_AFTER_STARTTLS);
    assert_int_equal(f->anomalies[0].dir, DIR_S2C);
    assert_string_equal(f->anomalies[0].detail, "first byte 0x34");
    assert_true(f->tls->client_hello);
    assert_false(f->tls->server_hello);
    assert_int_equal(f->end, SMTP_END_FIN);
    assert_string_equal(r.events, "ehlo_reply,starttls_reply,tls,end");
    conv_result_free(&r);
    w_free(&ch);
}

static void test_tls_oversized_and_broken(void **state)
{
    (void)state;
    /* a 70,000-byte handshake message: skipped (counted), the rest goes on */
    struct wbuf ch = {0}, big = {0}, msg = {0}, sh = {0}, ccs = {0}, tail = {0};
    client_hello(&ch, "mx.example.org");
    server_hello(&msg, false);
    for (int i = 0; i < 70000; i++)
        w8(&big, i);
    w_handshake(&msg, 11, &big);
    w_records(&sh, 22, &msg, 16384);
    w8(&ccs, 1);
    w_records(&sh, 20, &ccs, 16384);
    w_records(&tail, 20, &ccs, 16384);
    struct step conv[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        S("250-mx\r\n250 STARTTLS\r\n"),
        C("STARTTLS\r\n"),
        S("220 go ahead\r\n"),
        {DIR_C2S, (const char *)ch.b, ch.n},
        {DIR_S2C, (const char *)sh.b, sh.n},
        {DIR_C2S, (const char *)tail.b, tail.n},
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), false, &r);
    assert_true(r.facts->tls->established);
    assert_false(r.facts->tls->cert.present);
    assert_string_equal(r.facts->tls->ja3s, ja3s_12);
    conv_result_free(&r);

    /* bytes that stop being TLS records after the ServerHello */
    struct step broken[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        S("250-mx\r\n250 STARTTLS\r\n"),
        C("STARTTLS\r\n"),
        S("220 go ahead\r\n"),
        {DIR_C2S, (const char *)ch.b, ch.n},
        S("\x16\x03\x03\x00\x01\x02GARBAGE GARBAGE\r\n"),
    };
    conv_check(&cfg, &fi, broken, CONV_N(broken), true, &r);
    assert_false(r.facts->tls->established);
    assert_int_equal(r.stop, STREAM_STOP_S2C);
    assert_int_equal(r.facts->end, SMTP_END_FIN);
    conv_result_free(&r);
    struct wbuf *all[] = {&ch, &big, &msg, &sh, &ccs, &tail};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        w_free(all[i]);
}

/* ---- non-standard ports: nDPI and proxy prefixes ---- */

static void test_proxy_prefix(void **state)
{
    (void)state;
    static const uint8_t s5c[] = "\x05\x01\x00\x05\x01\x00\x01\x0a\x00\x00\x01\x00\x19"
                                 "EHLO";
    static const uint8_t s5s[] = "\x05\x00\x05\x00\x00\x01\x0a\x00\x00\x01\x00\x19"
                                 "220 ";
    static const uint8_t s5dom[] = "\x05\x01\x00\x05\x01\x00\x03\x0amx.example\x00\x19";
    static const uint8_t s4c[] = "\x04\x01\x00\x19\x0a\x00\x00\x01user\x00"
                                 "EHLO";
    static const uint8_t s4a[] = "\x04\x01\x00\x19\x00\x00\x00\x01\x00mx.example\x00";
    static const uint8_t s4s[] = "\x00\x5a\x00\x19\x0a\x00\x00\x01"
                                 "220 ";
    static const char hc[] = "CONNECT mx.example:25 HTTP/1.1\r\nHost: mx.example:25\r\n\r\nEHLO";
    static const char hs[] = "HTTP/1.1 200 Connection established\r\n\r\n220 ";
    assert_int_equal(ndpi_smtp_proxy_prefix(DIR_C2S, s5c, sizeof s5c - 1), 13);
    assert_int_equal(ndpi_smtp_proxy_prefix(DIR_C2S, s5c, 12), -1);
    assert_int_equal(ndpi_smtp_proxy_prefix(DIR_S2C, s5s, sizeof s5s - 1), 12);
    assert_int_equal(ndpi_smtp_proxy_prefix(DIR_S2C, s5s, 1), -1);
    assert_int_equal(ndpi_smtp_proxy_prefix(DIR_C2S, s5dom, sizeof s5dom - 1), 20);
    /* RFC 1929 username/password: greeting 05 01 02, 01 03 "bob" 02 "pw" */
    static const uint8_t s5auth[] = "\x05\x01\x02\x01\x03"
                                    "bob\x02"
                                    "pw\x05\x01\x00\x01\x0a\x00\x00\x01\x00\x19"
                                    "EHLO";
    static const uint8_t s5auth_s[] = "\x05\x02\x01\x00\x05\x00\x00\x01\x0a\x00\x00\x01\x00\x19"
                                      "220 ";
    assert_int_equal(ndpi_smtp_proxy_prefix(DIR_C2S, s5auth, sizeof s5auth - 1), 21);
    assert_int_equal(ndpi_smtp_proxy_prefix(DIR_C2S, s5auth, 9), -1);
    assert_int_equal(ndpi_smtp_proxy_prefix(DIR_S2C, s5auth_s, sizeof s5auth_s - 1), 14);
    assert_int_equal(ndpi_smtp_proxy_prefix(DIR_S2C, s5auth_s, 3), -1);
    assert_int_equal(ndpi_smtp_proxy_prefix(DIR_C2S, s4c, sizeof s4c - 1), 13);
    assert_int_equal(ndpi_smtp_proxy_prefix(DIR_C2S, s4a, sizeof s4a - 1), 20);
    assert_int_equal(ndpi_smtp_proxy_prefix(DIR_C2S, s4a, 15), -1);
    assert_int_equal(ndpi_smtp_proxy_prefix(DIR_S2C, s4s, sizeof s4s - 1), 8);
    assert_int_equal(ndpi_smtp_proxy_prefix(DIR_C2S, (const uint8_t *)hc, sizeof hc - 1), 55);
    assert_int_equal(ndpi_smtp_proxy_prefix(DIR_C2S, (const uint8_t *)hc, 20), -1);
    assert_int_equal(ndpi_smtp_proxy_prefix(DIR_S2C, (const uint8_t *)hs, sizeof hs - 1), 39);
    assert_int_equal(ndpi_smtp_proxy_prefix(DIR_C2S, (const uint8_t *)"EHLO x\r\n", 8), 0);
    assert_int_equal(ndpi_smtp_proxy_prefix(DIR_S2C, (const uint8_t *)"220 mx\r\n", 8), 0);
    assert_int_equal(ndpi_smtp_proxy_prefix(DIR_S2C, (const uint8_t *)"", 0), -1);
}

struct ev_log {
    char events[256];
    struct smtp_facts *end;
};

static void log_event(void *ctx, enum smtp_event ev, const struct smtp_facts *f)
{
    struct ev_log *l = ctx;
    size_t n = strlen(l->events);
    snprintf(l->events + n, sizeof l->events - n, "%s%s", n ? "," : "", smtp_event_str(ev));
    if (ev == SMTP_EV_END) {
        facts_free(l->end);
        l->end = facts_copy(f);
    }
}

/* Feeds steps through the consumer (open, data, close) as the flow table
 * would, chunk by chunk of at most chunk bytes. */
static void consumer_run(const struct smtp_cfg *c, const struct flow_info *f, const struct step *st,
                         size_t n, size_t chunk, struct ev_log *log, struct smtp_stats *stats,
                         bool *opened, unsigned *last_stop)
{
    struct smtp_cfg cc = *c;
    cc.on_event = log_event;
    cc.event_ctx = log;
    struct smtp_consumer *sc = smtp_consumer_new(&cc);
    assert_non_null(sc);
    const struct stream_consumer *ops = smtp_consumer_ops(sc);
    void *s = ops->open(ops->ctx, f);
    *opened = s != NULL;
    *last_stop = 0;
    if (s) {
        for (size_t i = 0; i < n; i++) {
            struct stream_meta m = {CONV_START + (sw_usec)i * 1000, i + 2, 64, (uint16_t)i, 4};
            for (size_t off = 0; off < st[i].len; off += chunk) {
                size_t k = st[i].len - off < chunk ? st[i].len - off : chunk;
                *last_stop = ops->data(s, st[i].dir, (const uint8_t *)st[i].data + off, k, &m);
            }
        }
        ops->close(s, FLOW_END_FIN, CONV_START + 100000);
    }
    *stats = *smtp_consumer_stats(sc);
    smtp_consumer_free(sc);
}

static void test_any_port_socks5_smtp(void **state)
{
    (void)state;
    /* arkime socks5-smtp-503.pcap, shortened: SMTP behind SOCKS5 on 1080 */
    static const struct step conv[] = {
        C("\x05\x01\x00"),
        S("\x05\x00"),
        C("\x05\x01\x00\x01\x0a\x00\x00\x01\x00\x19"),
        S("\x05\x00\x00\x01\x0a\x00\x00\x01\x04\x38"),
        S("220 mx.example.org ESMTP Exim 4.80\r\n"),
        C("EHLO User\r\n"),
        S("250-mx.example.org Hello\r\n250-SIZE 52428800\r\n250-PIPELINING\r\n250-AUTH PLAIN "
          "LOGIN\r\n"
          "250-STARTTLS\r\n250 HELP\r\n"),
        C("AUTH LOGIN\r\n"),
        S("503 AUTH command used when not advertised\r\n"),
        C("QUIT\r\n"),
        S("221 mx.example.org closing connection\r\n"),
    };
    struct smtp_cfg c = cfg;
    c.any_port = true;
    struct flow_info f = fi;
    f.sport = 1080;
    static const size_t chunks[] = {100000, 7, 1};
    for (size_t k = 0; k < 3; k++) {
        struct ev_log log = {0};
        struct smtp_stats st;
        bool opened;
        unsigned stop;
        consumer_run(&c, &f, conv, CONV_N(conv), chunks[k], &log, &st, &opened, &stop);
        assert_true(opened);
        assert_non_null(log.end);
        assert_string_equal(log.events, "ehlo_reply,end");
        assert_int_equal(log.end->banner_code, 220);
        assert_string_equal(log.end->banner_host, "mx.example.org");
        assert_string_equal(log.end->helo_host, "User");
        assert_int_equal(log.end->n_caps, 5);
        assert_true(log.end->starttls_offered);
        assert_string_equal(log.end->auth_mechanism, "LOGIN");
        assert_int_equal(log.end->auth_code, 503);
        assert_int_equal(log.end->end, SMTP_END_QUIT);
        assert_int_equal(log.end->n_anomalies, 0);
        assert_int_equal(st.sessions, 1);
        assert_int_equal(st.ignored_flows, 0);
        facts_free(log.end);
    }

    /* without any_port the flow is not opened */
    struct ev_log log = {0};
    struct smtp_stats st;
    bool opened;
    unsigned stop;
    consumer_run(&cfg, &f, conv, CONV_N(conv), 100000, &log, &st, &opened, &stop);
    assert_false(opened);
    assert_int_equal(st.ignored_flows, 1);
    assert_string_equal(log.events, "");
}

static void test_any_port_http_connect_smtp(void **state)
{
    (void)state;
    static const struct step conv[] = {
        C("CONNECT mx.example.org:25 HTTP/1.1\r\nHost: mx.example.org:25\r\n\r\n"),
        S("HTTP/1.1 200 Connection established\r\n\r\n"
          "220 mx.example.org ESMTP\r\n"),
        C("EHLO c.example\r\n"),
        S("250-mx.example.org\r\n250 STARTTLS\r\n"),
        C("MAIL FROM:<a@c.example>\r\n"),
        S("250 ok\r\n"),
    };
    struct smtp_cfg c = cfg;
    c.any_port = true;
    struct flow_info f = fi;
    f.sport = 3128;
    struct ev_log log = {0};
    struct smtp_stats st;
    bool opened;
    unsigned stop;
    consumer_run(&c, &f, conv, CONV_N(conv), 5, &log, &st, &opened, &stop);
    assert_true(opened);
    assert_non_null(log.end);
    assert_string_equal(log.events, "ehlo_reply,end");
    assert_int_equal(log.end->banner_code, 220);
    assert_string_equal(log.end->banner_host, "mx.example.org");
    assert_true(log.end->starttls_offered);
    assert_int_equal(log.end->n_tx, 1);
    assert_int_equal(log.end->tx[0].mail_code, 250);
    assert_int_equal(log.end->n_anomalies, 0);
    facts_free(log.end);
}

static void test_any_port_not_smtp(void **state)
{
    (void)state;
    static const struct step conv[] = {
        C("GET / HTTP/1.1\r\nHost: www.example.org\r\nUser-Agent: curl/7.88\r\nAccept: "
          "*/*\r\n\r\n"),
        S("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello"),
        C("GET /2 HTTP/1.1\r\nHost: www.example.org\r\n\r\n"),
    };
    struct smtp_cfg c = cfg;
    c.any_port = true;
    struct flow_info f = fi;
    f.sport = 8080;
    struct ev_log log = {0};
    struct smtp_stats st;
    bool opened;
    unsigned stop;
    consumer_run(&c, &f, conv, CONV_N(conv), 100000, &log, &st, &opened, &stop);
    assert_true(opened);
    assert_int_equal(stop, STREAM_STOP_C2S | STREAM_STOP_S2C);
    assert_string_equal(log.events, "");
    assert_null(log.end);
    assert_int_equal(st.ignored_flows, 1);
    assert_int_equal(st.sessions, 0);

    /* SMTP on 2525 is a standard port: no classification needed */
    static const struct step smtp[] = {
        S("220 mx ESMTP\r\n"),
        C("EHLO c\r\n"),
        S("250 mx\r\n"),
    };
    f.sport = 2525;
    consumer_run(&cfg, &f, smtp, CONV_N(smtp), 100000, &log, &st, &opened, &stop);
    assert_true(opened);
    assert_string_equal(log.events, "ehlo_reply,end");
    facts_free(log.end);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_starttls_tls12_certificate, setup),
        cmocka_unit_test(test_cert_cache),
        cmocka_unit_test(test_chain_digests),
        cmocka_unit_test_setup(test_implicit_tls13, setup),
        cmocka_unit_test_setup(test_plaintext_on_tls_port, setup),
        cmocka_unit_test_setup(test_tls_alert, setup),
        cmocka_unit_test_setup(test_server_plaintext_after_client_hello, setup),
        cmocka_unit_test_setup(test_tls_oversized_and_broken, setup),
        cmocka_unit_test_setup(test_proxy_prefix, setup),
        cmocka_unit_test_setup(test_any_port_socks5_smtp, setup),
        cmocka_unit_test_setup(test_any_port_http_connect_smtp, setup),
        cmocka_unit_test_setup(test_any_port_not_smtp, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
