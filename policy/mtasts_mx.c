/* SPDX-License-Identifier: Apache-2.0 */
/* mtasts_mx.c: MX host matching against policy mx patterns, and the domain
 * syntax check. RFC 8461 §4.1 (MX host validation), RFC 5321 §4.1.2
 * (Domain), RFC 1035 §2.3.4 (label and name sizes), RFC 3696 §2 (no
 * all-numeric top-level label). */
#include "policy/mtasts.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "policy/mtasts_impl.h"

static bool is_ldh(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

bool mtasts_domain_check(const char *d, size_t len, int first_label, char *reason, size_t reasonlen)
{
    char tmp[1];
    int label = first_label;
    size_t start = 0;

    if (!reason) {
        reason = tmp;
        reasonlen = sizeof tmp;
    }
    if (len == 0) {
        snprintf(reason, reasonlen, "empty name");
        return false;
    }
    if (len > 253) {
        snprintf(reason, reasonlen, "name is %zu octets, more than 253", len);
        return false;
    }
    if (d[len - 1] == '.') {
        snprintf(reason, reasonlen, "trailing dot");
        return false;
    }
    for (size_t i = 0; i <= len; i++) {
        if (i < len && d[i] != '.')
            continue;
        size_t n = i - start;
        if (n == 0) {
            snprintf(reason, reasonlen, "label %d is empty", label);
            return false;
        }
        if (n > 63) {
            snprintf(reason, reasonlen, "label %d is %zu octets, more than 63", label, n);
            return false;
        }
        for (size_t k = start; k < i; k++) {
            if (!is_ldh((unsigned char)d[k])) {
                char q[16];
                mtasts_quote(q, sizeof q, d + k, 1, 1);
                snprintf(reason, reasonlen, "label %d has invalid character %s", label, q);
                return false;
            }
        }
        if (d[start] == '-') {
            snprintf(reason, reasonlen, "label %d starts with '-'", label);
            return false;
        }
        if (d[i - 1] == '-') {
            snprintf(reason, reasonlen, "label %d ends with '-'", label);
            return false;
        }
        label++;
        start = i + 1;
    }
    return true;
}

bool mtasts_domain_is_valid(const char *d, size_t len, char *reason, size_t reasonlen)
{
    return mtasts_domain_check(d, len, 1, reason, reasonlen);
}

/* Length without one trailing dot. */
static size_t strip_dot(const char *s)
{
    size_t n = strlen(s);
    if (n > 0 && s[n - 1] == '.')
        n--;
    return n;
}

static bool ip_literal(const char *h, size_t n)
{
    char buf[64];
    size_t last;

    if (n == 0)
        return false;
    if (h[0] == '[' || memchr(h, ':', n))
        return true;
    if (n < sizeof buf) {
        struct in_addr a;
        memcpy(buf, h, n);
        buf[n] = '\0';
        if (inet_pton(AF_INET, buf, &a) == 1)
            return true;
    }
    /* An all-numeric last label is no host name (RFC 3696 §2): "127.1". */
    last = n;
    while (last > 0 && h[last - 1] != '.')
        last--;
    if (last == n)
        return false;
    for (size_t i = last; i < n; i++)
        if (h[i] < '0' || h[i] > '9')
            return false;
    return true;
}

bool mtasts_is_ip_literal(const char *host)
{
    return host && ip_literal(host, strip_dot(host));
}

/* A name the sensor saw on the wire: printable, no '*', no empty label. */
static bool host_ok(const char *h, size_t n)
{
    if (n == 0 || n > 253 || h[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c <= 0x20 || c >= 0x7f || c == '*')
            return false;
        if (c == '.' && (i + 1 == n || h[i + 1] == '.'))
            return false;
    }
    return true;
}

bool mtasts_mx_pattern_match(const char *pattern, const char *host)
{
    size_t pn, hn;

    if (!pattern || !host)
        return false;
    pn = strip_dot(pattern);
    hn = strip_dot(host);
    if (!host_ok(host, hn) || ip_literal(host, hn) || ip_literal(pattern, pn))
        return false;
    if (pn >= 2 && pattern[0] == '*' && pattern[1] == '.') {
        /* §4.1: the wildcard matches exactly the one leftmost label. */
        const char *suffix = pattern + 2;
        size_t sn = pn - 2;
        const char *dot = memchr(host, '.', hn);
        if (sn == 0 || memchr(suffix, '*', sn) || !dot || dot == host)
            return false;
        size_t rest = hn - (size_t)(dot + 1 - host);
        return rest == sn && strncasecmp(dot + 1, suffix, sn) == 0;
    }
    if (memchr(pattern, '*', pn))
        return false;
    return pn == hn && strncasecmp(pattern, host, pn) == 0;
}

bool mtasts_mx_match(const struct mtasts_policy *p, const char *host)
{
    if (!p)
        return false;
    for (size_t i = 0; i < p->n_mx && i < MTASTS_MX_MAX; i++)
        if (mtasts_mx_pattern_match(p->mx[i], host))
            return true;
    return false;
}
