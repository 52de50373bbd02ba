/* SPDX-License-Identifier: Apache-2.0 */
/* mtasts_txt.c: parser of the _mta-sts TXT record.
 * RFC 8461 §3.1 (sts-text-record ABNF, RFC 7405 case-sensitive strings). */
#include "policy/mtasts.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "decode/sw.h"
#include "policy/mtasts_impl.h"

#define QUOTE_MAX 40

__attribute__((format(printf, 2, 3))) static int fail(struct mtasts_error *err, const char *fmt,
                                                      ...)
{
    if (err) {
        va_list ap;
        err->line = 0;
        va_start(ap, fmt);
        vsnprintf(err->reason, sizeof err->reason, fmt, ap);
        va_end(ap);
    }
    return SW_EPROTO;
}

static bool is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* sts-ext-name characters after the first: ALPHA / DIGIT / "_" / "-" / "." */
static bool is_name_char(unsigned char c)
{
    return is_alnum(c) || c == '_' || c == '-' || c == '.';
}

/* sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E) */
static bool is_value_char(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e && c != ';' && c != '=';
}

bool mtasts_id_is_valid(const char *id, size_t len)
{
    if (len < 1 || len > MTASTS_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_alnum((unsigned char)id[i]))
            return false;
    return true;
}

/* sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
 * sts-field-delim = *WSP ";" *WSP
 * sts-version     = %s"v=STSv1"
 * sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
 * sts-extension   = sts-ext-name "=" sts-ext-value
 * sts-ext-name    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
 * The text says records that do not begin with "v=STSv1;" are discarded;
 * the ABNF also allows WSP before that ';' (erratum 6285 notes the clash):
 * a record that begins with "v=STSv1" followed by ';', WSP or its end is
 * treated as an STSv1 record and judged by the ABNF. */
int mtasts_txt_parse(const char *txt, size_t len, char id[33], struct mtasts_error *err)
{
    const unsigned char *u = (const unsigned char *)txt;
    size_t pos = 7, fields = 0;
    bool have_id = false;
    char q[64];

    id[0] = '\0';
    if (err) {
        err->line = 0;
        err->reason[0] = '\0';
    }
    if (len < 7 || memcmp(txt, "v=STSv1", 7) != 0)
        return SW_AGAIN;
    if (len > 7 && u[7] != ';' && !is_wsp(u[7]))
        return SW_AGAIN;

    for (;;) {
        size_t ws = pos;
        while (pos < len && is_wsp(u[pos]))
            pos++;
        if (pos == len) {
            if (pos > ws && fields > 0)
                return fail(err, "whitespace at the end of the record without ';'");
            break;
        }
        if (u[pos] != ';') {
            mtasts_quote(q, sizeof q, txt + pos, 1, 1);
            return fail(err, "column %zu: expected ';', found %s", pos + 1, q);
        }
        pos++;
        while (pos < len && is_wsp(u[pos]))
            pos++;
        if (pos == len) {
            if (fields == 0)
                break; /* "v=STSv1;" alone: reported as id missing */
            break;     /* [sts-field-delim] at the end */
        }
        if (u[pos] == ';')
            return fail(err, "column %zu: empty field", pos + 1);

        size_t ns = pos;
        if (!is_alnum(u[pos])) {
            mtasts_quote(q, sizeof q, txt + pos, 1, 1);
            return fail(err, "column %zu: field name starts with %s, not a letter or digit",
                        pos + 1, q);
        }
        while (pos < len && is_name_char(u[pos]))
            pos++;
        size_t nl = pos - ns;
        if (pos == len || u[pos] != '=') {
            if (pos == len) {
                mtasts_quote(q, sizeof q, txt + ns, nl, QUOTE_MAX);
                return fail(err, "field %s has no '='", q);
            }
            mtasts_quote(q, sizeof q, txt + pos, 1, 1);
            return fail(err, "column %zu: invalid character %s in field name", pos + 1, q);
        }
        if (nl > 32) {
            mtasts_quote(q, sizeof q, txt + ns, nl, QUOTE_MAX);
            return fail(err, "field name %s is longer than 32 characters", q);
        }
        pos++;
        size_t vs = pos;
        while (pos < len && is_value_char(u[pos]))
            pos++;
        size_t vl = pos - vs;
        if (pos < len && u[pos] != ';' && !is_wsp(u[pos])) {
            mtasts_quote(q, sizeof q, txt + pos, 1, 1);
            return fail(err, "column %zu: invalid character %s in a value", pos + 1, q);
        }
        if (vl == 0) {
            mtasts_quote(q, sizeof q, txt + ns, nl, QUOTE_MAX);
            return fail(err, "field %s has an empty value", q);
        }
        fields++;
        if (nl == 2 && memcmp(txt + ns, "id", 2) == 0 && !have_id) {
            if (vl > MTASTS_ID_MAX)
                return fail(err, "id is %zu characters, more than %d", vl, MTASTS_ID_MAX);
            for (size_t i = vs; i < pos; i++) {
                if (!is_alnum(u[i])) {
                    char qc[16];
                    mtasts_quote(q, sizeof q, txt + vs, vl, QUOTE_MAX);
                    mtasts_quote(qc, sizeof qc, txt + i, 1, 1);
                    return fail(err, "id %s has %s, not a letter or digit", q, qc);
                }
            }
            memcpy(id, txt + vs, vl);
            id[vl] = '\0';
            have_id = true;
        }
        /* Later "id" fields and extension fields are ignored (§3.1). */
    }
    if (!have_id)
        return fail(err, "id field missing");
    return SW_OK;
}
