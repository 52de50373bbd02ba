/* SPDX-License-Identifier: Apache-2.0 */
/* jsonw.c: a direct, compact JSON writer into a growable buffer, escaping
 * as jansson's json_dumps(JSON_COMPACT) does. Follows RFC 8259 (JSON) and
 * RFC 3629 (UTF-8). */
#include "alerts/jsonw.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSONW_FIRST_CAP 2048

void jsonw_init(struct jsonw *w)
{
    memset(w, 0, sizeof *w);
}

void jsonw_reset(struct jsonw *w)
{
    w->len = 0;
    w->comma = false;
    w->oom = false;
    if (w->buf)
        w->buf[0] = '\0';
}

void jsonw_init_buf(struct jsonw *w, char *buf, size_t cap)
{
    jsonw_init(w);
    w->buf = buf;
    w->cap = cap;
    w->borrowed = true;
    buf[0] = '\0';
}

void jsonw_free(struct jsonw *w)
{
    if (!w->borrowed)
        free(w->buf);
    jsonw_init(w);
}

char *jsonw_take(struct jsonw *w)
{
    char *s = w->buf;
    if (w->oom) {
        s = NULL;
    } else if (w->borrowed || !s) {
        s = malloc(w->len + 1);
        if (s) {
            if (w->len)
                memcpy(s, w->buf, w->len);
            s[w->len] = '\0';
        }
    } else {
        w->buf = NULL; /* handed over */
    }
    jsonw_free(w);
    return s;
}

/* Grows the buffer to hold n more bytes and the NUL. */
static bool grow(struct jsonw *w, size_t n)
{
    if (w->oom)
        return false;
    size_t cap = w->cap ? w->cap : JSONW_FIRST_CAP;
    while (cap < w->len + n + 1) {
        if (cap > SIZE_MAX / 2) {
            w->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *b = w->borrowed ? malloc(cap) : realloc(w->buf, cap);
    if (!b) {
        w->oom = true;
        return false;
    }
    if (w->borrowed) {
        memcpy(b, w->buf, w->len);
        b[w->len] = '\0';
    }
    w->borrowed = false;
    w->buf = b;
    w->cap = cap;
    return true;
}

/* Room for n more bytes and the NUL. */
static inline bool reserve(struct jsonw *w, size_t n)
{
    if (__builtin_expect(!w->oom && w->len + n + 1 <= w->cap, 1))
        return true;
    return grow(w, n);
}

static inline void put(struct jsonw *w, const char *s, size_t n)
{
    if (!reserve(w, n))
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

static inline void putc1(struct jsonw *w, char c)
{
    if (!reserve(w, 1))
        return;
    w->buf[w->len++] = c;
    w->buf[w->len] = '\0';
}

/* Bytes a JSON string must escape: '"', '\\' and the C0 controls. */
static inline bool must_escape(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\';
}

/* Nonzero when one of the 8 bytes of x must be escaped: the exact
 * any-byte tests for '"', '\\' (zero after XOR) and < 0x20. */
static inline uint64_t escape_mask8(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    return (((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x)) & high;
}

/* The escape of c (one that must_escape) at o; returns the end. */
static char *put_escape(char *o, unsigned char c)
{
    *o++ = '\\';
    switch (c) {
    case '"':
        *o++ = '"';
        break;
    case '\\':
        *o++ = '\\';
        break;
    case '\b':
        *o++ = 'b';
        break;
    case '\f':
        *o++ = 'f';
        break;
    case '\n':
        *o++ = 'n';
        break;
    case '\r':
        *o++ = 'r';
        break;
    case '\t':
        *o++ = 't';
        break;
    default: /* jansson writes the other controls as \u00XX, upper-case hex */
        *o++ = 'u';
        *o++ = '0';
        *o++ = '0';
        *o++ = "0123456789ABCDEF"[c >> 4];
        *o++ = "0123456789ABCDEF"[c & 15];
    }
    return o;
}

/* The quoted, escaped text of s[0..n) (valid UTF-8 or the '?' rendering),
 * written straight into the buffer, 8 bytes at a time while none needs an
 * escape: room for the plain case first, more at each escape (for it and
 * the rest). */
static void put_quoted(struct jsonw *w, const char *s, size_t n)
{
    if (!reserve(w, n + 2))
        return;
    char *o = w->buf + w->len;
    *o++ = '"';
    size_t i = 0;
    while (i < n) {
        if (n - i >= 8) {
            uint64_t x;
            memcpy(&x, s + i, 8);
            if (!escape_mask8(x)) {
                memcpy(o, &x, 8);
                o += 8;
                i += 8;
                continue;
            }
        }
        unsigned char c = (unsigned char)s[i++];
        if (!must_escape(c)) {
            *o++ = (char)c;
            continue;
        }
        w->len = (size_t)(o - w->buf);
        if (!reserve(w, 6 + (n - i) + 1))
            return;
        o = put_escape(w->buf + w->len, c);
    }
    *o++ = '"';
    *o = '\0';
    w->len = (size_t)(o - w->buf);
}

/* Copies the n bytes of key to o when none must be escaped (false: some
 * must, and what was written is scratch), with whole words: two overlapping
 * ones from 4 bytes on (a key of 4 to 16 bytes, as nearly every key is,
 * takes two loads, one test and two stores). */
static inline bool copy_plain_key(char *o, const char *key, size_t n)
{
    if (n >= 8) {
        uint64_t x, last;
        for (size_t i = 0; i + 8 < n; i += 8) {
            memcpy(&x, key + i, 8);
            if (escape_mask8(x))
                return false;
            memcpy(o + i, &x, 8);
        }
        memcpy(&last, key + n - 8, 8);
        if (escape_mask8(last))
            return false;
        memcpy(o + n - 8, &last, 8);
        return true;
    }
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, key, 4);
        memcpy(&hi, key + n - 4, 4);
        if (escape_mask8((uint64_t)hi << 32 | lo))
            return false;
        memcpy(o, &lo, 4);
        memcpy(o + n - 4, &hi, 4);
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        if (must_escape((unsigned char)key[i]))
            return false;
        o[i] = key[i];
    }
    return true;
}

/* prefix() for a key that must be escaped, or when out of memory. */
static __attribute__((noinline)) void prefix_general(struct jsonw *w, const char *key, size_t klen)
{
    if (w->comma)
        putc1(w, ',');
    if (key) {
        put_quoted(w, key, klen);
        putc1(w, ':');
    }
    w->comma = true;
}

/* The separator and the key before a value: inlined in every writer call,
 * a key with nothing to escape (every key the writers pass literally)
 * straight into the buffer; anything else takes the general path. */
static inline __attribute__((always_inline)) void prefix(struct jsonw *w, const char *key,
                                                         size_t klen)
{
    if (key && reserve(w, klen + 4)) {
        char *o = w->buf + w->len;
        if (w->comma)
            *o++ = ',';
        *o++ = '"';
        if (copy_plain_key(o, key, klen)) {
            o += klen;
            *o++ = '"';
            *o++ = ':';
            *o = '\0';
            w->len = (size_t)(o - w->buf);
            w->comma = true;
            return;
        }
    } else if (!key && !w->comma) {
        w->comma = true; /* an element first in its array: nothing to write */
        return;
    }
    prefix_general(w, key, klen);
}

void jsonw_obj_open_k(struct jsonw *w, const char *key, size_t klen)
{
    prefix(w, key, klen);
    putc1(w, '{');
    w->comma = false;
}

void jsonw_obj_close(struct jsonw *w)
{
    putc1(w, '}');
    w->comma = true;
}

void jsonw_arr_open_k(struct jsonw *w, const char *key, size_t klen)
{
    prefix(w, key, klen);
    putc1(w, '[');
    w->comma = false;
}

void jsonw_arr_close(struct jsonw *w)
{
    putc1(w, ']');
    w->comma = true;
}

void jsonw_strn_k(struct jsonw *w, const char *key, size_t klen, const char *s, size_t n)
{
    prefix(w, key, klen);
    put_quoted(w, s, n);
}

/* The length of the UTF-8 sequence a lead byte starts, 0 when it starts none
 * (a continuation byte, C0/C1 overlong leads, F5..FF). */
static size_t utf8_lead_len(unsigned char u)
{
    if (u < 0x80)
        return 1;
    if (u < 0xC2)
        return 0;
    if (u <= 0xDF)
        return 2;
    if (u <= 0xEF)
        return 3;
    if (u <= 0xF4)
        return 4;
    return 0;
}

bool jsonw_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_lead_len(p[i]);
        if (k == 0 || k > n - i)
            return false;
        uint32_t v = p[i] & (k == 2 ? 0x1F : k == 3 ? 0x0F : 0x07);
        for (size_t j = 1; j < k; j++) {
            if (p[i + j] < 0x80 || p[i + j] > 0xBF)
                return false;
            v = (v << 6) | (p[i + j] & 0x3F);
        }
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (k == 3 && v < 0x800) ||
            (k == 4 && v < 0x10000))
            return false;
        i += k;
    }
    return true;
}

/* The value of jsonw_wire_strn when s[0..n) is not all printable ASCII
 * without escapes: quoted as it is when valid UTF-8, else with '?' for every
 * byte outside printable ASCII. */
static void put_wire_slow(struct jsonw *w, const char *s, size_t n)
{
    if (jsonw_utf8_valid(s, n)) {
        put_quoted(w, s, n);
        return;
    }
    if (!reserve(w, n + 2))
        return;
    char *o = w->buf + w->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char r = (c < 0x20 || c > 0x7e) ? '?' : (char)c;
        if (r == '"' || r == '\\') { /* rare: escape through the slow path */
            w->len = (size_t)(o - w->buf);
            put(w, r == '"' ? "\\\"" : "\\\\", 2);
            if (w->oom)
                return;
            if (!reserve(w, n - i + 1))
                return;
            o = w->buf + w->len;
            continue;
        }
        *o++ = r;
    }
    *o++ = '"';
    *o = '\0';
    w->len = (size_t)(o - w->buf);
}

void jsonw_wire_strn_k(struct jsonw *w, const char *key, size_t klen, const char *s, size_t n)
{
    prefix(w, key, klen);
    /* one pass while every byte is ASCII with nothing to escape (host names,
     * domains, capabilities: nearly every wire string), 8 bytes at a time;
     * at the first other byte, the general path from the start (what was
     * written past len is scratch) */
    if (!reserve(w, n + 2))
        return;
    const uint64_t high = 0x8080808080808080ull;
    char *o = w->buf + w->len;
    *o++ = '"';
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        if (escape_mask8(x) | (x & high))
            goto slow;
        memcpy(o, &x, 8);
        o += 8;
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80 || must_escape(c))
            goto slow;
        *o++ = (char)c;
    }
    *o++ = '"';
    *o = '\0';
    w->len = (size_t)(o - w->buf);
    return;
slow:
    put_wire_slow(w, s, n);
}

void jsonw_wire_str_k(struct jsonw *w, const char *key, size_t klen, const char *s)
{
    if (!s)
        s = "";
    jsonw_wire_strn_k(w, key, klen, s, strlen(s));
}

void jsonw_wire_str_or_null_k(struct jsonw *w, const char *key, size_t klen, const char *s)
{
    if (s && *s)
        jsonw_wire_str_k(w, key, klen, s);
    else
        jsonw_null_k(w, key, klen);
}

void jsonw_int_k(struct jsonw *w, const char *key, size_t klen, int64_t v)
{
    char b[24], *e = b + sizeof b, *p = e;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    prefix(w, key, klen);
    put(w, p, (size_t)(e - p));
}

void jsonw_int_or_null_k(struct jsonw *w, const char *key, size_t klen, int64_t v)
{
    if (v)
        jsonw_int_k(w, key, klen, v);
    else
        jsonw_null_k(w, key, klen);
}

void jsonw_bool_k(struct jsonw *w, const char *key, size_t klen, bool v)
{
    prefix(w, key, klen);
    if (v)
        put(w, "true", 4);
    else
        put(w, "false", 5);
}

void jsonw_null_k(struct jsonw *w, const char *key, size_t klen)
{
    prefix(w, key, klen);
    put(w, "null", 4);
}

void jsonw_members(struct jsonw *w, const char *s, size_t n)
{
    if (!n)
        return;
    if (w->comma)
        putc1(w, ',');
    put(w, s, n);
    w->comma = true;
}

void jsonw_json_k(struct jsonw *w, const char *key, size_t klen, const struct json_t *cv)
{
    json_t *v = (json_t *)cv; /* jansson's getters take non-const pointers */
    if (!v) {
        jsonw_null_k(w, key, klen);
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *m;
        jsonw_obj_open_k(w, key, klen);
        json_object_foreach(v, k, m)
        {
            jsonw_json(w, k, m);
        }
        jsonw_obj_close(w);
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *m;
        jsonw_arr_open_k(w, key, klen);
        json_array_foreach(v, i, m)
        {
            jsonw_json(w, NULL, m);
        }
        jsonw_arr_close(w);
        break;
    }
    case JSON_STRING:
        jsonw_strn_k(w, key, klen, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        jsonw_int_k(w, key, klen, (int64_t)json_integer_value(v));
        break;
    case JSON_REAL: { /* jansson's own number format */
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        if (!s) {
            w->oom = true;
            return;
        }
        prefix(w, key, klen);
        put(w, s, strlen(s));
        free(s);
        break;
    }
    case JSON_TRUE:
        jsonw_bool_k(w, key, klen, true);
        break;
    case JSON_FALSE:
        jsonw_bool_k(w, key, klen, false);
        break;
    case JSON_NULL:
        jsonw_null_k(w, key, klen);
        break;
    }
}
