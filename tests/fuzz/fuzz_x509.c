/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_x509.c: libFuzzer target for the certificate parser alone
 * (decode/x509.c, RFC 5280 through OpenSSL's d2i_X509): the input is one DER
 * certificate. Checks: the strings of struct facts_x509 are NUL-terminated
 * within their arrays, and nothing is kept from a refused input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct facts_x509 c;
    memset(&c, 0, sizeof(c));
    bool ok = x509_parse_leaf(&c, data, size);
    if (ok != c.present)
        abort();
    if (!memchr(c.subject, 0, sizeof(c.subject)) || !memchr(c.issuer, 0, sizeof(c.issuer)))
        abort();
    if (c.n_san > FACTS_SAN_MAX)
        abort();
    for (size_t i = 0; i < c.n_san; i++)
        free(c.san_dns[i]); /* as facts_clear() */
    return 0;
}
