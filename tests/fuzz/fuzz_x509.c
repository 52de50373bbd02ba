/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_x509.c: libFuzzer target for the certificate parser alone
 * (decode/x509.c, RFC 5280 through OpenSSL's d2i_X509): the input is one DER
 * certificate. Checks: the answer matches c->present, the DNS names stay
 * within FACTS_SAN_MAX, everything set is freed with the facts, and the
 * certificate cache (a miss, then a hit) gives the same record. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

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
    /* through the certificate cache, a miss then a hit: the same record */
    json_t *j = facts_to_json(f);
    char *want = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    struct x509_cache *cache = x509_cache_new(1);
    for (int i = 0; i < 2 && cache && want; i++) {
        struct smtp_facts *g = facts_new();
        if (!g)
            abort();
        if (x509_parse_leaf_cached(cache, g, &facts_tls_mut(g)->cert, data, size) != ok)
            abort();
        j = facts_to_json(g);
        char *got = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(j);
        if (got && strcmp(got, want) != 0)
            abort();
        free(got);
        facts_free(g);
    }
    x509_cache_free(cache);
    free(want);
    facts_free(f);
    return 0;
}
