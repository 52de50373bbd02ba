/* SPDX-License-Identifier: Apache-2.0 */
/* alert_dane.c: the alert's dane object (host, records, status) beside
 * mta_sts: the TLSA answer for the session's server. RFC 7672 §2.2. */
#include <jansson.h>

#include "alerts/alert.h"

void alert_add_dane(struct json_t *alert, const struct rule_dane *dn)
{
    /* only where DANE is in play: secure records, or a bogus answer that
     * was ignored; an insecure, absent or unknown answer adds nothing */
    if (!dn || !dn->answered || !dn->json ||
        (dn->status != DANE_ST_SECURE && dn->status != DANE_ST_BOGUS))
        return;
    json_object_set_new(alert, "dane", json_deep_copy(dn->json));
}
