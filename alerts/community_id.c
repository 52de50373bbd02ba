/* SPDX-License-Identifier: Apache-2.0 */
/* community_id.c: the Community ID flow hash, version 1 (the Community ID
 * specification by Corelight, as in Zeek, Suricata and Wireshark's
 * communityid dissector). SHA-1 per FIPS 180-4, base64 per RFC 4648. */
#include "alerts/community_id.h"

#include <openssl/evp.h>
#include <string.h>
#include <threads.h>

/* SHA-1 fetched once: EVP_sha1() in EVP_Digest makes OpenSSL 3 look the
 * implementation up again for every call (half of the hash's cost); kept
 * for the life of the process. */
static EVP_MD *g_sha1;
static once_flag g_sha1_once = ONCE_FLAG_INIT;

static void sha1_fetch(void)
{
    g_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
}

/* The last id computed on this thread and its input: a session's record and
 * then its alerts ask for the same flow's id in a row, and each SHA-1
 * through EVP costs about a microsecond. */
static _Thread_local struct {
    uint8_t in[2 + 16 + 16 + 2 + 4];
    size_t n;
    char out[COMMUNITY_ID_LEN];
} last;

bool community_id_v1(const struct sw_addr *a, uint16_t ap, const struct sw_addr *b, uint16_t bp,
                     uint8_t proto, uint16_t seed, char out[COMMUNITY_ID_LEN])
{
    out[0] = '\0';
    if (a->family != b->family || (a->family != 4 && a->family != 6))
        return false;
    size_t alen = a->family == 4 ? 4 : 16;
    /* the endpoints in order: the smaller address first, the smaller port
     * when the addresses are the same */
    int c = memcmp(a->b, b->b, alen);
    if (c > 0 || (c == 0 && ap > bp)) {
        const struct sw_addr *t = a;
        a = b;
        b = t;
        uint16_t tp = ap;
        ap = bp;
        bp = tp;
    }
    /* seed, saddr, daddr, proto, one byte of padding, sport, dport:
     * every number in network byte order */
    uint8_t in[2 + 16 + 16 + 2 + 4];
    size_t n = 0;
    in[n++] = (uint8_t)(seed >> 8);
    in[n++] = (uint8_t)seed;
    memcpy(in + n, a->b, alen);
    n += alen;
    memcpy(in + n, b->b, alen);
    n += alen;
    in[n++] = proto;
    in[n++] = 0;
    in[n++] = (uint8_t)(ap >> 8);
    in[n++] = (uint8_t)ap;
    in[n++] = (uint8_t)(bp >> 8);
    in[n++] = (uint8_t)bp;
    if (last.n == n && memcmp(last.in, in, n) == 0) {
        memcpy(out, last.out, COMMUNITY_ID_LEN);
        return true;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    call_once(&g_sha1_once, sha1_fetch);
    if (!EVP_Digest(in, n, md, &mdlen, g_sha1 ? g_sha1 : EVP_sha1(), NULL) || mdlen != 20)
        return false;
    memcpy(out, "1:", 2);
    /* 20 bytes -> 28 characters and a NUL */
    if (EVP_EncodeBlock((unsigned char *)out + 2, md, 20) != 28) {
        out[0] = '\0';
        return false;
    }
    memcpy(last.in, in, n);
    last.n = n;
    memcpy(last.out, out, COMMUNITY_ID_LEN);
    return true;
}
