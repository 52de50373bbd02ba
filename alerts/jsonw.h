/* SPDX-License-Identifier: Apache-2.0 */
/* jsonw.h: a direct JSON writer (alerts/jsonw.c) for the hot path: session
 * records and alerts are written straight into one growable buffer, compact
 * (no spaces), keys in the order written, no tree built. Strings are escaped
 * exactly as jansson's json_dumps(JSON_COMPACT) escapes them, so output is
 * byte-identical with the jansson rendering it replaces. The writer keeps the
 * comma state itself: callers open, write and close, never write separators.
 * Out of memory is sticky: every later call is a no-op and jsonw_ok() is false.
 * The caller owns the struct; jsonw_free() releases the buffer (or
 * jsonw_take() hands it over). */
#ifndef SW_JSONW_H
#define SW_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_t;

struct jsonw {
    char *buf;       /* NUL-terminated while ok */
    size_t len, cap; /* bytes written, bytes held */
    bool comma;      /* the next member or element needs a ',' first */
    bool oom;
    bool borrowed; /* buf is the caller's (jsonw_init_buf): never freed here */
};

/* An empty writer (no allocation until the first byte). */
void jsonw_init(struct jsonw *w);
/* A writer into the caller's buf[0..cap) (cap >= 1; on the stack, say),
 * moved to the heap only when the text outgrows it. */
void jsonw_init_buf(struct jsonw *w, char *buf, size_t cap);
/* The text in a buffer of the caller's to free (the writer's own, or a
 * copy of exactly its length when borrowed); the writer is left empty,
 * as jsonw_init leaves it. NULL when out of memory. */
char *jsonw_take(struct jsonw *w);
/* Empties the text, keeps the buffer for the next document. */
void jsonw_reset(struct jsonw *w);
void jsonw_free(struct jsonw *w);
static inline bool jsonw_ok(const struct jsonw *w)
{
    return !w->oom;
}

/* Every call below takes key: the member name inside an object, NULL for an
 * array element or the top-level value. Keys are written escaped too. Each
 * is a macro passing the key's length to the function of the same name and
 * _k (jsonw_klen: known when compiling for a literal key, as every writer
 * passes). */
static inline size_t jsonw_klen(const char *key)
{
    return key ? __builtin_strlen(key) : 0;
}
#define jsonw_obj_open(w, key) jsonw_obj_open_k((w), (key), jsonw_klen(key))
void jsonw_obj_open_k(struct jsonw *w, const char *key, size_t klen);
void jsonw_obj_close(struct jsonw *w);
#define jsonw_arr_open(w, key) jsonw_arr_open_k((w), (key), jsonw_klen(key))
void jsonw_arr_open_k(struct jsonw *w, const char *key, size_t klen);
void jsonw_arr_close(struct jsonw *w);

/* n bytes of s, valid UTF-8. */
#define jsonw_strn(w, key, s, n) jsonw_strn_k((w), (key), jsonw_klen(key), (s), (n))
void jsonw_strn_k(struct jsonw *w, const char *key, size_t klen, const char *s, size_t n);
void jsonw_null_k(struct jsonw *w, const char *key, size_t klen);
/* s must be valid UTF-8 (program text, numbers formatted here, names from
 * tables); NULL writes null. Inline: a literal's length is known when
 * compiling, as a key's is. */
static inline void jsonw_str_k(struct jsonw *w, const char *key, size_t klen, const char *s)
{
    if (s)
        jsonw_strn_k(w, key, klen, s, __builtin_strlen(s));
    else
        jsonw_null_k(w, key, klen);
}
#define jsonw_str(w, key, s) jsonw_str_k((w), (key), jsonw_klen(key), (s))
/* Bytes from the wire: written as they are when valid UTF-8 (RFC 3629, as
 * jansson checks it: no overlong forms, surrogates or code points past
 * U+10FFFF), else every byte outside printable ASCII (0x20..0x7e) becomes
 * '?'. NULL is "". The same text as decode/facts.h facts_json_wire_str(). */
#define jsonw_wire_str(w, key, s) jsonw_wire_str_k((w), (key), jsonw_klen(key), (s))
void jsonw_wire_str_k(struct jsonw *w, const char *key, size_t klen, const char *s);
/* jsonw_wire_str of the n bytes at s (a length already known). */
#define jsonw_wire_strn(w, key, s, n) jsonw_wire_strn_k((w), (key), jsonw_klen(key), (s), (n))
void jsonw_wire_strn_k(struct jsonw *w, const char *key, size_t klen, const char *s, size_t n);
/* jsonw_wire_str, or null for NULL and "". */
#define jsonw_wire_str_or_null(w, key, s) jsonw_wire_str_or_null_k((w), (key), jsonw_klen(key), (s))
void jsonw_wire_str_or_null_k(struct jsonw *w, const char *key, size_t klen, const char *s);
#define jsonw_int(w, key, v) jsonw_int_k((w), (key), jsonw_klen(key), (v))
void jsonw_int_k(struct jsonw *w, const char *key, size_t klen, int64_t v);
/* v, or null when v is 0 (reply codes, TTLs: 0 means not seen). */
#define jsonw_int_or_null(w, key, v) jsonw_int_or_null_k((w), (key), jsonw_klen(key), (v))
void jsonw_int_or_null_k(struct jsonw *w, const char *key, size_t klen, int64_t v);
#define jsonw_bool(w, key, v) jsonw_bool_k((w), (key), jsonw_klen(key), (v))
void jsonw_bool_k(struct jsonw *w, const char *key, size_t klen, bool v);
#define jsonw_null(w, key) jsonw_null_k((w), (key), jsonw_klen(key))
/* A jansson value (policy and DANE answers), members in their
 * insertion order as json_dumps writes them; NULL writes null. */
#define jsonw_json(w, key, v) jsonw_json_k((w), (key), jsonw_klen(key), (v))
void jsonw_json_k(struct jsonw *w, const char *key, size_t klen, const struct json_t *v);

/* Members written elsewhere into the object open here: s[0..n) is a
 * fragment of a writer's output, '"k":v' separated by commas, no braces
 * (a verdict's evidence, alerts/rules.h); n 0 writes nothing. */
void jsonw_members(struct jsonw *w, const char *s, size_t n);

/* True when s[0..n) is valid UTF-8 in jansson's sense (see jsonw_wire_str). */
bool jsonw_utf8_valid(const char *s, size_t n);

#endif
