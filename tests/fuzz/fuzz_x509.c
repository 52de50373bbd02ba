/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_x509.c: libFuzzer target for the certificate parser alone
 * (decode/x509.c, RFC 5280 through OpenSSL's d2i_X509): the input is one DER
 * certificate. Checks: the answer matches c->present, the DNS names stay
 * within FACTS_SAN_MAX, and everything set is freed with the facts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode/facts.h"
#include "decode/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_facts *f = facts_new();
    if (!f)
        abort();
    struct facts_x509 *c = &facts_tls_mut(f)->cert;
    bool ok = x509_parse_leaf(f, c, data, size);
    if (ok != c->present)
        abort();
    if (c->n_san > FACTS_SAN_MAX)
        abort();
    facts_free(f);
    return 0;
}
