/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_tls.c: libFuzzer target for the TLS handshake observer alone
 * (decode/tls.c, RFC 8446, RFC 5246; the leaf certificate through
 * decode/x509.c): both directions' bytes, fed in segments. Input: segments,
 * each [head][length, 2 bytes little endian][bytes]: head bit 0 the
 * direction (0 client, 1 server), bit 1 a gap (no bytes follow). Checks:
 * the strings of struct facts_tls are NUL-terminated within their arrays. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode/tls.h"

static void check_str(const char *s, size_t cap)
{
    if (!memchr(s, 0, cap))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tls_state t;
    struct facts_tls f;
    memset(&t, 0, sizeof(t));
    memset(&f, 0, sizeof(f));
    size_t i = 0;
    while (i < size) {
        uint8_t h = data[i++];
        int dir = h & 1;
        if (h & 2) {
            tls_gap(&t, dir);
            continue;
        }
        size_t n = 0;
        if (i + 2 <= size)
            n = (size_t)data[i] | (size_t)data[i + 1] << 8;
        i += i + 2 <= size ? 2 : size - i;
        if (n > size - i)
            n = size - i;
        /* an exact-size copy: a read past the segment is caught */
        uint8_t *seg = malloc(n ? n : 1);
        if (!seg)
            abort();
        memcpy(seg, data + i, n);
        tls_feed(&t, &f, dir, seg, n);
        free(seg);
        i += n;
    }
    check_str(f.sni, sizeof(f.sni));
    check_str(f.ja3, sizeof(f.ja3));
    check_str(f.ja3s, sizeof(f.ja3s));
    check_str(f.cert.subject, sizeof(f.cert.subject));
    check_str(f.cert.issuer, sizeof(f.cert.issuer));
    if (f.cert.n_san > FACTS_SAN_MAX)
        abort();
    for (size_t k = 0; k < f.cert.n_san; k++)
        free(f.cert.san_dns[k]); /* as facts_clear() */
    tls_state_clear(&t);
    return 0;
}
