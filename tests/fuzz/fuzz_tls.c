/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_tls.c: libFuzzer target for the TLS handshake observer alone
 * (decode/tls.c, RFC 8446, RFC 5246; the leaf certificate through
 * decode/x509.c): both directions' bytes, fed in segments. Input: segments,
 * each [head][length, 2 bytes little endian][bytes]: head bit 0 the
 * direction (0 client, 1 server), bit 1 a gap (no bytes follow). Checks:
 * the certificate's DNS names stay within FACTS_SAN_MAX; everything the
 * observer set is freed with the facts (the leak check). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode/facts.h"
#include "decode/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tls_state t;
    struct smtp_facts *f = facts_new();
    if (!f)
        abort();
    memset(&t, 0, sizeof(t));
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
        tls_feed(&t, f, dir, seg, n);
        free(seg);
        i += n;
    }
    if (f->tls->cert.n_san > FACTS_SAN_MAX)
        abort();
    facts_free(f);
    tls_state_clear(&t);
    return 0;
}
