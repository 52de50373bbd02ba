/* SPDX-License-Identifier: Apache-2.0 */
/* policy_check.c: `stripwatch policy DOMAIN`: the domain's MX hosts against
 * its MTA-STS policy's mx patterns, and its TLS-RPT record. RFC 8461 §4.1
 * (MX host validation), RFC 5321 §5.1 (implicit MX), RFC 8460 §3 (TLS-RPT
 * record). */
#include "policy/policy_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
        fprintf(policy_cli_stream(), "PASS §4.1 MX %s matches the policy's mx patterns\n", host);
        return 0;
    }
    fprintf(policy_cli_stream(),
            "FAIL §4.1 MX %s matches none of the policy's mx patterns (senders that enforce the "
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
        fprintf(policy_cli_stream(), "MX %s: none\n", domain);
        fprintf(policy_cli_stream(),
                "NOTE §4.1 no MX record: the domain itself is the MX (RFC 5321 §5.1)\n");
        return one_host(p, domain, fails);
    }
    for (size_t i = 0; i < n; i++)
        fprintf(policy_cli_stream(), "MX %s: %s\n", domain, mx[i]);
    for (size_t i = 0; i < n; i++) {
        const char *sp = strchr(mx[i], ' ');
        const char *host = sp ? sp + 1 : mx[i];
        if (strcmp(host, ".") == 0) {
            fprintf(policy_cli_stream(),
                    "NOTE §4.1 null MX: the domain accepts no mail (RFC 7505)\n");
            continue;
        }
        bad += one_host(p, host, fails);
    }
    return bad;
}

/* "mailto:" or "https:" followed by at least one character, no space. */
static bool rua_uri_ok(const char *s, size_t n)
{
    size_t k = 0;
    if (n > 7 && strncasecmp(s, "mailto:", 7) == 0)
        k = 7;
    else if (n > 8 && strncasecmp(s, "https://", 8) == 0)
        k = 8;
    else
        return false;
    for (size_t i = k; i < n; i++)
        if (s[i] <= ' ' || s[i] == 0x7f)
            return false;
    return true;
}

bool tlsrpt_record_check(const char *s, size_t n, size_t *n_rua, char *why, size_t whylen)
{
    const char *end = s + n;
    bool have_rua = false;
    *n_rua = 0;
    if (n < 11 || strncmp(s, "v=TLSRPTv1", 10) != 0) {
        snprintf(why, whylen, "does not start with v=TLSRPTv1");
        return false;
    }
    const char *p = s + 10;
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p == end)
            break;
        if (*p != ';') {
            snprintf(why, whylen, "fields are not separated by \";\"");
            return false;
        }
        p++;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p == end)
            break; /* a final ";" */
        const char *f = p;
        while (p < end && *p != ';')
            p++;
        const char *fe = p;
        while (fe > f && (fe[-1] == ' ' || fe[-1] == '\t'))
            fe--;
        const char *eq = memchr(f, '=', (size_t)(fe - f));
        if (!eq || eq == f) {
            snprintf(why, whylen, "field \"%.*s\" is not NAME=VALUE", (int)(fe - f), f);
            return false;
        }
        if ((size_t)(eq - f) == 3 && strncmp(f, "rua", 3) == 0) {
            if (have_rua) {
                snprintf(why, whylen, "rua given twice");
                return false;
            }
            have_rua = true;
            for (const char *u = eq + 1; u <= fe;) {
                const char *c = memchr(u, ',', (size_t)(fe - u));
                const char *ue = c ? c : fe;
                while (u < ue && (*u == ' ' || *u == '\t'))
                    u++;
                const char *ut = ue;
                while (ut > u && (ut[-1] == ' ' || ut[-1] == '\t'))
                    ut--;
                if (!rua_uri_ok(u, (size_t)(ut - u))) {
                    snprintf(why, whylen, "rua \"%.*s\" is not a mailto: or https:// URI",
                             (int)(ut - u), u);
                    return false;
                }
                (*n_rua)++;
                if (!c)
                    break;
                u = c + 1;
            }
        }
    }
    if (!have_rua) {
        snprintf(why, whylen, "no rua field");
        return false;
    }
    return true;
}
