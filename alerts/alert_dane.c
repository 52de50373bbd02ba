/* SPDX-License-Identifier: Apache-2.0 */
/* alert_dane.c: the alert's dane object (host, records, status) beside
 * mta_sts: the TLSA answer for the session's server. RFC 7672 §2.2. */
#include "alerts/alert.h"

void alert_write_dane(struct jsonw *w, const struct rule_dane *dn)
{
    /* only where DANE is in play: secure records, or a bogus answer that
     * was ignored; an insecure, absent or unknown answer adds nothing */
    if (!dn || !dn->answered || !dn->json ||
        (dn->status != DANE_ST_SECURE && dn->status != DANE_ST_BOGUS))
        return;
    jsonw_json(w, "dane", dn->json);
}
