/* SPDX-License-Identifier: Apache-2.0 */
/* policy_check.c: `stripwatch policy DOMAIN`: the domain's MX hosts against
 * its MTA-STS policy's mx patterns. RFC 8461 §4.1 (MX host validation),
 * RFC 5321 §5.1 (implicit MX). */
#include "policy/policy_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *policy_cli_dns_why(const struct pdns_result *r, char *buf, size_t len)
{
    if (r->err)
        snprintf(buf, len, "%s", r->errstr ? r->errstr : "DNS failure");
    else
        snprintf(buf, len, "rcode %d", r->rcode);
    return buf;
}

static size_t one_host(const struct mtasts_policy *p, const char *host, int *fails)
{
    if (mtasts_mx_match(p, host)) {
        printf("PASS §4.1 MX %s matches the policy's mx patterns\n", host);
        return 0;
    }
    printf("FAIL §4.1 MX %s matches none of the policy's mx patterns (senders that enforce the "
           "policy will not deliver there)\n",
           host);
    (*fails)++;
    return 1;
}

size_t policy_cli_mx_check(const char *domain, const struct mtasts_policy *p, const char *const *mx,
                           size_t n, int *fails)
{
    size_t bad = 0;
    if (n == 0) {
        printf("MX %s: none\n", domain);
        printf("NOTE §4.1 no MX record: the domain itself is the MX (RFC 5321 §5.1)\n");
        return one_host(p, domain, fails);
    }
    for (size_t i = 0; i < n; i++)
        printf("MX %s: %s\n", domain, mx[i]);
    for (size_t i = 0; i < n; i++) {
        const char *sp = strchr(mx[i], ' ');
        const char *host = sp ? sp + 1 : mx[i];
        if (strcmp(host, ".") == 0) {
            printf("NOTE §4.1 null MX: the domain accepts no mail (RFC 7505)\n");
            continue;
        }
        bad += one_host(p, host, fails);
    }
    return bad;
}
