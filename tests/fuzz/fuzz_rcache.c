/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_rcache.c: libFuzzer target for the JSON read back from the Redis
 * policy cache (policy/rcache.c: rcache_value_parse, RFC 8461 §5.1): the
 * input is the value of a stripwatch:mta-sts:<domain> key, any bytes.
 * Checks: an accepted value has an id of at most 32 characters and a
 * NUL-terminated policy, a refused one an error naming the key; an accepted
 * value stored back the way rcache_put stores it is accepted again alike. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode/sw.h"
#include "policy/rcache.h"
#include "policy/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char key[] = RCACHE_KEY_PREFIX "example.org";
    char id[33], err[512] = "";
    char *text = NULL;
    int64_t at = 0;
    int rc = rcache_value_parse(key, (const char *)data, size, id, &text, &at, err, sizeof(err));
    if (rc != SW_OK) {
        if (text || (rc == SW_EPROTO && !strstr(err, key)))
            abort();
        return 0;
    }
    if (!text || strlen(id) > 32)
        abort();
    /* as rcache_put writes it (text up to its first NUL, as put passes it) */
    char when[32];
    snapshot_time_format(at, when);
    json_t *o = json_pack("{s:s, s:s, s:s}", "id", id, "policy", text, "fetched_at", when);
    char *val = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (val) {
        char id2[33], *text2 = NULL;
        int64_t at2 = 0;
        if (rcache_value_parse(key, val, strlen(val), id2, &text2, &at2, err, sizeof(err)) !=
                SW_OK ||
            strcmp(id, id2) != 0 || strcmp(text, text2) != 0 || at != at2)
            abort();
        free(text2);
        free(val);
    }
    free(text);
    return 0;
}
