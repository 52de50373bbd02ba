/* SPDX-License-Identifier: Apache-2.0 */
/* strtab.h: interned, reference-counted strings (decode/strtab.c).
 *
 * One table per worker thread (not thread-safe). The SMTP decoder keeps every
 * string of its session facts here, so that the host names, capability
 * lists and domains that thousands of sessions share are stored once.
 * strtab_get() returns the one copy of bytes s[0..n) (NUL-terminated, may
 * contain NULs inside: it is compared by length) and takes a reference;
 * strtab_put() drops one; after the last drop the string is kept for reuse
 * among the last 256 released (64 KiB at most: strtab_kept_bytes(), outside
 * the memory accounting), then freed. strtab_bytes() is what the table holds
 * for the strings in use (entries and buckets), for memory accounting;
 * strtab_count() counts the strings in use. */
#ifndef SW_STRTAB_H
#define SW_STRTAB_H

#include <stddef.h>

struct strtab;
struct strtab *strtab_new(void);
/* Frees the table and every string still in it (NULL is a no-op). */
void strtab_free(struct strtab *t);
/* NULL when out of memory. */
const char *strtab_get(struct strtab *t, const char *s, size_t n);
/* The one copy of the string list (one of t, or NULL for none) followed by
 * s[0..n) and a NUL byte: a list of NUL-terminated items, one item longer.
 * The list keeps its reference. NULL when out of memory. */
const char *strtab_add_item(struct strtab *t, const char *list, const char *s, size_t n);
/* A second reference to a string strtab_get returned. */
const char *strtab_ref(const char *s);
/* Drops a reference (NULL is a no-op). */
void strtab_put(struct strtab *t, const char *s);
/* The length given to strtab_get (a string's NULs inside included). */
size_t strtab_len(const char *s);
size_t strtab_bytes(const struct strtab *t);
size_t strtab_count(const struct strtab *t);
size_t strtab_kept_bytes(const struct strtab *t);

#endif
