/* SPDX-License-Identifier: Apache-2.0 */
/* mtasts_policy.c: strict parser of the MTA-STS policy body.
 * RFC 8461 §3.2 (policy ABNF, with RFC 7405 case-sensitive strings),
 * RFC 5321 §4.1.2 (Domain), RFC 3629 §4 (UTF-8 in extension values). */
#include "policy/mtasts.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "decode/sw.h"
#include "policy/mtasts_impl.h"

#define QUOTE_MAX 48 /* input bytes of a value quoted into a reason */

const char *mtasts_mode_str(enum mtasts_mode m)
{
    switch (m) {
    case MTASTS_MODE_NONE:
        return "none";
    case MTASTS_MODE_TESTING:
        return "testing";
    case MTASTS_MODE_ENFORCE:
        return "enforce";
    }
    return "unknown";
}

void mtasts_quote(char *out, size_t outlen, const char *s, size_t n, size_t max)
{
    size_t o = 0;
    bool cut = n > max;

    if (outlen == 0)
        return;
    if (cut)
        n = max;
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (o + 1 < outlen)                                                                        \
            out[o++] = (c);                                                                        \
    } while (0)
    PUT('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            PUT('\\');
            PUT((char)c);
        } else if (c >= 0x20 && c < 0x7f) {
            PUT((char)c);
        } else {
            static const char hex[] = "0123456789abcdef";
            PUT('\\');
            PUT('x');
            PUT(hex[c >> 4]);
            PUT(hex[c & 15]);
        }
    }
    if (cut) {
        PUT('.');
        PUT('.');
        PUT('.');
    }
    PUT('"');
#undef PUT
    out[o] = '\0';
}

char *mtasts_error_format(const struct mtasts_error *e, char *buf, size_t len)
{
    if (len == 0)
        return buf;
    if (e->line > 0)
        snprintf(buf, len, "line %d: %s", e->line, e->reason);
    else
        snprintf(buf, len, "%s", e->reason);
    return buf;
}

__attribute__((format(printf, 3, 4))) static int fail(struct mtasts_error *err, int line,
                                                      const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->line = line;
        va_start(ap, fmt);
        vsnprintf(err->reason, sizeof err->reason, fmt, ap);
        va_end(ap);
    }
    return SW_EPROTO;
}

void mtasts_policy_clear(struct mtasts_policy *p)
{
    if (!p)
        return;
    free(p->mx);
    memset(p, 0, sizeof *p);
}

/* The mx list is one allocation: n pointers, then the strings they point
 * at. Builds such a block from src's n patterns plus add (of addlen bytes)
 * when add is not NULL; NULL when out of memory. */
static char **mx_block(char *const *src, size_t n, const char *add, size_t addlen)
{
    size_t total = n + (add ? 1 : 0), bytes = total * sizeof(char *);
    for (size_t i = 0; i < n; i++)
        bytes += strlen(src[i]) + 1;
    if (add)
        bytes += addlen + 1;
    char **b = malloc(bytes);
    if (!b)
        return NULL;
    char *w = (char *)(b + total);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(src[i]) + 1;
        memcpy(w, src[i], l);
        b[i] = w;
        w += l;
    }
    if (add) {
        memcpy(w, add, addlen);
        w[addlen] = '\0';
        b[n] = w;
    }
    return b;
}

int mtasts_policy_copy(struct mtasts_policy *dst, const struct mtasts_policy *src)
{
    struct mtasts_policy tmp;

    memset(&tmp, 0, sizeof tmp);
    tmp.mode = src->mode;
    tmp.max_age = src->max_age;
    if (src->n_mx > 0) {
        tmp.mx = mx_block(src->mx, src->n_mx, NULL, 0);
        if (!tmp.mx) {
            memset(dst, 0, sizeof *dst);
            return SW_ENOMEM;
        }
        tmp.n_mx = src->n_mx;
    }
    *dst = tmp;
    return SW_OK;
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* sts-policy-ext-name characters after the first. */
static bool is_name_char(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c == '_' || c == '-' || c == '.';
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 §4), 0 if none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (n < need + 1)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i <= need; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return need + 1;
}

enum field_id { F_VERSION, F_MODE, F_MAX_AGE, F_MX, F_EXT };

static const char *const field_names[] = {"version", "mode", "max_age", "mx"};

struct parse_state {
    struct mtasts_policy *out;
    struct mtasts_error *err;
    bool have[3];            /* version, mode, max_age seen (first wins) */
    int variant_line[4];     /* first line of a case-variant of a known name */
    char variant_name[4][8]; /* its spelling */
};

static int check_max_age(struct parse_state *st, int line, const char *v, size_t n)
{
    char q[80];
    uint64_t val = 0;

    mtasts_quote(q, sizeof q, v, n, QUOTE_MAX);
    if (n < 1 || n > 10)
        return fail(st->err, line, "max_age %s is not 1-10 digits", q);
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)v[i]))
            return fail(st->err, line, "max_age %s is not 1-10 digits", q);
        val = val * 10 + (uint64_t)(v[i] - '0');
    }
    if (val > MTASTS_MAX_AGE_MAX)
        return fail(st->err, line, "max_age %s exceeds %u", q, MTASTS_MAX_AGE_MAX);
    st->out->max_age = (uint32_t)val;
    return SW_OK;
}

static int check_mx(struct parse_state *st, int line, const char *v, size_t n)
{
    char q[80], why[96];
    const char *d = v;
    size_t dn = n;
    int first = 1;

    mtasts_quote(q, sizeof q, v, n, QUOTE_MAX);
    if (n >= 2 && v[0] == '*' && v[1] == '.') {
        d = v + 2;
        dn = n - 2;
        first = 2;
    }
    if (memchr(d, '*', dn))
        return fail(st->err, line, "mx %s: '*' is only allowed as the whole leftmost label", q);
    if (!mtasts_domain_check(d, dn, first, why, sizeof why))
        return fail(st->err, line, "mx %s: %s", q, why);
    if (st->out->n_mx >= MTASTS_MX_MAX) {
        fail(st->err, line, "more than %d mx patterns (bound)", MTASTS_MX_MAX);
        return SW_ELIMIT;
    }
    char **b = mx_block(st->out->mx, st->out->n_mx, v, n);
    if (!b)
        return SW_ENOMEM;
    free(st->out->mx);
    st->out->mx = b;
    st->out->n_mx++;
    return SW_OK;
}

/* One field line (terminator removed, len > 0). */
static int parse_line(struct parse_state *st, int line, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, name_len, vstart, vend;
    char q[80];

    if (is_wsp(u[0]))
        return fail(st->err, line, "leading whitespace");
    /* Control characters anywhere (HTAB only as *WSP, checked below). */
    for (size_t k = 0; k < len; k++) {
        if ((u[k] < 0x20 && u[k] != '\t') || u[k] == 0x7f) {
            if (u[k] == '\r')
                return fail(st->err, line, "CR not followed by LF");
            return fail(st->err, line, "control character 0x%02x", u[k]);
        }
    }
    if (!memchr(s, ':', len)) {
        mtasts_quote(q, sizeof q, s, len, QUOTE_MAX);
        return fail(st->err, line, "no ':' in %s", q);
    }
    while (i < len && is_name_char(u[i]))
        i++;
    name_len = i;
    if (u[i] != ':') {
        size_t j = i;
        while (j < len && is_wsp(u[j]))
            j++;
        if (j > i && j < len && u[j] == ':')
            return fail(st->err, line, "whitespace before ':'");
        mtasts_quote(q, sizeof q, s + i, 1, 1);
        return fail(st->err, line, "invalid character %s in field name", q);
    }
    if (name_len == 0)
        return fail(st->err, line, "empty field name");
    if (!is_alpha(u[0]) && !is_digit(u[0])) {
        mtasts_quote(q, sizeof q, s, name_len, QUOTE_MAX);
        return fail(st->err, line, "field name %s does not start with a letter or digit", q);
    }
    if (name_len > 32) {
        mtasts_quote(q, sizeof q, s, name_len, QUOTE_MAX);
        return fail(st->err, line, "field name %s is longer than 32 characters", q);
    }
    vstart = i + 1;
    while (vstart < len && is_wsp(u[vstart]))
        vstart++;
    vend = len;
    while (vend > vstart && is_wsp(u[vend - 1]))
        vend--;

    enum field_id f = F_EXT;
    for (int k = 0; k < 4; k++) {
        size_t kl = strlen(field_names[k]);
        if (name_len != kl)
            continue;
        if (memcmp(s, field_names[k], kl) == 0) {
            f = (enum field_id)k;
            break;
        }
        if (strncasecmp(s, field_names[k], kl) == 0) {
            if (st->variant_line[k] == 0) {
                st->variant_line[k] = line;
                memcpy(st->variant_name[k], s, kl);
                st->variant_name[k][kl] = '\0';
            }
            break;
        }
    }
    if (f != F_MX && f != F_EXT && st->have[f])
        f = F_EXT; /* "senders MUST ignore all but the first instance" (§3.2) */

    const char *v = s + vstart;
    size_t vn = vend - vstart;
    if (vn == 0) {
        mtasts_quote(q, sizeof q, s, name_len, QUOTE_MAX);
        return fail(st->err, line, "field %s has no value", q);
    }
    /* sts-policy-ext-value: vchar [*(SP / vchar) vchar], vchar may be UTF-8. */
    for (size_t k = 0; k < vn;) {
        unsigned char c = (unsigned char)v[k];
        if (c == '\t')
            return fail(st->err, line, "tab inside a value");
        if (c < 0x80) {
            k++;
            continue;
        }
        size_t sl = utf8_seq((const unsigned char *)v + k, vn - k);
        if (sl == 0)
            return fail(st->err, line, "invalid UTF-8 at column %zu", vstart + k + 1);
        k += sl;
    }

    switch (f) {
    case F_VERSION:
        st->have[F_VERSION] = true;
        if (vn != 5 || memcmp(v, "STSv1", 5) != 0) {
            mtasts_quote(q, sizeof q, v, vn, QUOTE_MAX);
            return fail(st->err, line, "version %s is not STSv1", q);
        }
        return SW_OK;
    case F_MODE:
        st->have[F_MODE] = true;
        if (vn == 7 && memcmp(v, "enforce", 7) == 0)
            st->out->mode = MTASTS_MODE_ENFORCE;
        else if (vn == 7 && memcmp(v, "testing", 7) == 0)
            st->out->mode = MTASTS_MODE_TESTING;
        else if (vn == 4 && memcmp(v, "none", 4) == 0)
            st->out->mode = MTASTS_MODE_NONE;
        else {
            mtasts_quote(q, sizeof q, v, vn, QUOTE_MAX);
            return fail(st->err, line, "mode %s is not enforce, testing or none", q);
        }
        return SW_OK;
    case F_MAX_AGE:
        st->have[F_MAX_AGE] = true;
        return check_max_age(st, line, v, vn);
    case F_MX:
        return check_mx(st, line, v, vn);
    case F_EXT:
        return SW_OK;
    }
    return SW_OK;
}

static int fail_missing(struct parse_state *st, int k, const char *what)
{
    if (st->variant_line[k] > 0)
        return fail(st->err, 0, "%s (\"%s\" on line %d is another field: names are case-sensitive)",
                    what, st->variant_name[k], st->variant_line[k]);
    return fail(st->err, 0, "%s", what);
}

int mtasts_policy_parse(const char *text, size_t len, struct mtasts_policy *out,
                        struct mtasts_error *err)
{
    struct parse_state st;
    size_t pos = 0;
    int line = 0, rc = SW_OK;

    memset(out, 0, sizeof *out);
    memset(&st, 0, sizeof st);
    st.out = out;
    st.err = err;
    if (err) {
        err->line = 0;
        err->reason[0] = '\0';
    }
    if (len > MTASTS_MAX_BODY)
        return fail(err, 0, "policy is %zu bytes, more than %d", len, MTASTS_MAX_BODY);
    if (len == 0)
        return fail(err, 0, "policy is empty");

    /* RFC 8461 §3.2:
     *   sts-policy-record = sts-policy-field *WSP
     *                       *(sts-policy-term sts-policy-field *WSP) [sts-policy-term]
     *   sts-policy-term   = LF / CRLF     (the prose says "CRLF-separated";
     *                                      erratum 6253: the ABNF allows both)
     *   sts-policy-field-delim = ":" *WSP
     *   sts-policy-max-age-value = 1*10DIGIT, and the prose caps it at
     *                              31557600 (erratum 7282 notes the clash)
     *   sts-policy-mx-value = ["*."] Domain
     * The ABNF gives no order to the fields (only the TXT record of §3.1
     * puts its version first), so "version" may come on any line. Two
     * terminators in a row (an empty line) match no production. */
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t eol = nl ? (size_t)(nl - text) : len;
        size_t l = eol - pos;

        line++;
        if (nl && l > 0 && text[eol - 1] == '\r')
            l--;
        if (l == 0) {
            rc = fail(err, line, "empty line");
            break;
        }
        rc = parse_line(&st, line, text + pos, l);
        if (rc != SW_OK)
            break;
        pos = nl ? eol + 1 : len;
    }
    if (rc == SW_OK) {
        if (!st.have[F_VERSION])
            rc = fail_missing(&st, F_VERSION, "version field missing");
        else if (!st.have[F_MODE])
            rc = fail_missing(&st, F_MODE, "mode field missing");
        else if (!st.have[F_MAX_AGE])
            rc = fail_missing(&st, F_MAX_AGE, "max_age field missing");
        else if (out->mode != MTASTS_MODE_NONE && out->n_mx == 0)
            rc = fail_missing(&st, F_MX,
                              out->mode == MTASTS_MODE_ENFORCE
                                  ? "mx field missing (required when mode is enforce)"
                                  : "mx field missing (required when mode is testing)");
    }
    if (rc != SW_OK) {
        if (rc == SW_ENOMEM && err) {
            err->line = line;
            snprintf(err->reason, sizeof err->reason, "out of memory");
        }
        mtasts_policy_clear(out);
    }
    return rc;
}
