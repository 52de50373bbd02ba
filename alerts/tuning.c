/* SPDX-License-Identifier: Apache-2.0 */
/* tuning.c: rule tuning and allow-lists (see tuning.h): address prefixes
 * (RFC 4632 CIDR notation for IPv4, RFC 4291 section 2.3 for IPv6) and
 * recipient domains (RFC 1035 names, matched with their subdomains). */
#include "alerts/tuning.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void rules_tuning_init(struct rules_tuning *t)
{
    memset(t, 0, sizeof *t);
    t->rate_limit = TUNING_RATE_DEFAULT;
    for (int i = 0; i < RULE_COUNT; i++)
        t->rule[i].rate_limit = -1;
}

void rules_tuning_clear(struct rules_tuning *t, enum tuning_list which)
{
    switch (which) {
    case TUNING_ALLOW_SERVER:
        free(t->servers);
        t->servers = NULL;
        t->n_servers = 0;
        break;
    case TUNING_ALLOW_CLIENT:
        free(t->clients);
        t->clients = NULL;
        t->n_clients = 0;
        break;
    case TUNING_ALLOW_DOMAIN:
        for (size_t i = 0; i < t->n_domains; i++)
            free(t->domains[i]);
        free(t->domains);
        t->domains = NULL;
        t->n_domains = 0;
        break;
    }
}

void rules_tuning_free(struct rules_tuning *t)
{
    rules_tuning_clear(t, TUNING_ALLOW_SERVER);
    rules_tuning_clear(t, TUNING_ALLOW_CLIENT);
    rules_tuning_clear(t, TUNING_ALLOW_DOMAIN);
}

bool rules_tuning_copy(struct rules_tuning *dst, const struct rules_tuning *src)
{
    *dst = *src;
    dst->servers = dst->clients = NULL;
    dst->domains = NULL;
    dst->n_servers = dst->n_clients = dst->n_domains = 0;
    if (src->n_servers) {
        if (!(dst->servers = malloc(src->n_servers * sizeof *dst->servers)))
            goto fail;
        memcpy(dst->servers, src->servers, src->n_servers * sizeof *dst->servers);
        dst->n_servers = src->n_servers;
    }
    if (src->n_clients) {
        if (!(dst->clients = malloc(src->n_clients * sizeof *dst->clients)))
            goto fail;
        memcpy(dst->clients, src->clients, src->n_clients * sizeof *dst->clients);
        dst->n_clients = src->n_clients;
    }
    if (src->n_domains) {
        if (!(dst->domains = calloc(src->n_domains, sizeof *dst->domains)))
            goto fail;
        for (size_t i = 0; i < src->n_domains; i++) {
            if (!(dst->domains[i] = strdup(src->domains[i])))
                goto fail;
            dst->n_domains = i + 1;
        }
    }
    return true;
fail:
    rules_tuning_free(dst);
    return false;
}

static bool parse_net(const char *value, struct tuning_net *n, char *err, size_t errlen)
{
    char buf[64];
    const char *slash = strchr(value, '/');
    size_t alen = slash ? (size_t)(slash - value) : strlen(value);
    memset(n, 0, sizeof *n);
    if (alen == 0 || alen >= sizeof buf)
        goto bad_addr;
    memcpy(buf, value, alen);
    buf[alen] = '\0';
    unsigned max;
    if (inet_pton(AF_INET, buf, n->addr.b) == 1) {
        n->addr.family = 4;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, n->addr.b) == 1) {
        n->addr.family = 6;
        max = 128;
    } else {
        goto bad_addr;
    }
    n->len = max;
    if (slash) {
        const char *p = slash + 1;
        unsigned v = 0;
        if (!isdigit((unsigned char)*p))
            goto bad_len;
        for (; isdigit((unsigned char)*p) && v <= max; p++)
            v = v * 10 + (unsigned)(*p - '0');
        if (*p || v > max)
            goto bad_len;
        n->len = v;
        /* host bits must be zero: "10.1.2.3/8" is a typo more often than not */
        for (unsigned bit = v; bit < max; bit++) {
            if (n->addr.b[bit / 8] & (0x80u >> (bit % 8))) {
                snprintf(err, errlen, "\"%s\": bits set past the /%u prefix", value, v);
                return false;
            }
        }
    }
    return true;
bad_addr:
    snprintf(err, errlen, "\"%s\": not an IPv4 or IPv6 address (ADDR or ADDR/LEN)", value);
    return false;
bad_len:
    snprintf(err, errlen, "\"%s\": prefix length not in 0-%u", value, max);
    return false;
}

/* Lowercases value into out (without a trailing dot); false unless it is
 * a host name: labels of letters, digits and '-', 1-63 bytes each. */
static bool parse_domain(const char *value, char *out, size_t outlen)
{
    size_t len = strlen(value);
    if (len && value[len - 1] == '.')
        len--;
    if (len == 0 || len > 253 || len >= outlen)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == '.') {
            if (label == 0 || value[i - 1] == '-')
                return false;
            label = 0;
        } else if (c == '-' && label == 0) {
            return false; /* no label starts with a hyphen */
        } else if (isalnum(c) || c == '-' || c == '_') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
        out[i] = (char)tolower(c);
    }
    out[len] = '\0';
    return label > 0 && value[len - 1] != '-';
}

bool rules_tuning_add(struct rules_tuning *t, enum tuning_list which, const char *value, char *err,
                      size_t errlen)
{
    if (which == TUNING_ALLOW_DOMAIN) {
        char d[256];
        if (!parse_domain(value, d, sizeof d)) {
            snprintf(err, errlen, "\"%s\": not a domain name", value);
            return false;
        }
        char **nv = realloc(t->domains, (t->n_domains + 1) * sizeof *nv);
        if (!nv)
            goto oom;
        t->domains = nv;
        if (!(t->domains[t->n_domains] = strdup(d)))
            goto oom;
        t->n_domains++;
        return true;
    }
    struct tuning_net n;
    if (!parse_net(value, &n, err, errlen))
        return false;
    struct tuning_net **list = which == TUNING_ALLOW_SERVER ? &t->servers : &t->clients;
    size_t *count = which == TUNING_ALLOW_SERVER ? &t->n_servers : &t->n_clients;
    struct tuning_net *nv = realloc(*list, (*count + 1) * sizeof *nv);
    if (!nv)
        goto oom;
    *list = nv;
    nv[(*count)++] = n;
    return true;
oom:
    snprintf(err, errlen, "out of memory");
    return false;
}

int rules_tuning_rule_id(const char *id)
{
    for (int i = 0; i < RULE_COUNT; i++)
        if (strcmp(rule_id_str((enum rule_id)i), id) == 0)
            return i;
    return -1;
}

int rules_tuning_severity(const char *name)
{
    for (int s = SEV_LOW; s <= SEV_HIGH; s++)
        if (strcmp(rule_severity_name(s), name) == 0)
            return s;
    return 0;
}

static bool net_has(const struct tuning_net *n, const struct sw_addr *a)
{
    if (n->addr.family != a->family)
        return false;
    unsigned full = n->len / 8, rest = n->len % 8;
    if (memcmp(n->addr.b, a->b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xFFu << (8 - rest));
    return (n->addr.b[full] & mask) == (a->b[full] & mask);
}

bool rules_tuning_addr_allowed(const struct rules_tuning *t, enum tuning_list which,
                               const struct sw_addr *a)
{
    const struct tuning_net *list = which == TUNING_ALLOW_SERVER ? t->servers : t->clients;
    size_t n = which == TUNING_ALLOW_SERVER ? t->n_servers : t->n_clients;
    for (size_t i = 0; i < n; i++)
        if (net_has(&list[i], a))
            return true;
    return false;
}

bool rules_tuning_domain_allowed(const struct rules_tuning *t, const char *domain)
{
    size_t dl = strlen(domain);
    if (dl && domain[dl - 1] == '.')
        dl--;
    for (size_t i = 0; i < t->n_domains; i++) {
        const char *a = t->domains[i];
        size_t al = strlen(a);
        if (dl < al || strncasecmp(domain + dl - al, a, al) != 0)
            continue;
        if (dl == al || domain[dl - al - 1] == '.')
            return true; /* the domain itself or one under it */
    }
    return false;
}

unsigned rules_tuning_rate(const struct rules_tuning *t, int r)
{
    if (r >= 0 && r < RULE_COUNT && t->rule[r].rate_limit >= 0)
        return (unsigned)t->rule[r].rate_limit;
    return t->rate_limit;
}
