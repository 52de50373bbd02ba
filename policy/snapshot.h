/* SPDX-License-Identifier: Apache-2.0 */
/* snapshot.h: the policy snapshot file (--policy-file / --save-policies)
 * (policy/snapshot.c). A JSON object keyed by domain:
 *   {"example.org": {"id": "20261101T000000",
 *                    "policy": "version: STSv1\nmode: enforce\n...",
 *                    "fetched_at": "2026-11-20T08:00:00Z"}}
 * The policy is kept as the exact text that was served and is judged again
 * by mtasts_policy_parse() on load. Loading reports each bad entry (also a
 * fetched_at before 1970, which saving refuses) and skips it; saving writes atomically, sorted by
 * domain. No global state. */
#ifndef SW_SNAPSHOT_H
#define SW_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/mtasts.h"

/* One valid entry, borrowed for the duration of the callback. */
struct snapshot_entry {
    const char *domain; /* lowercased, trailing dot stripped */
    const char *id;     /* 1-32 ALPHA/DIGIT */
    const char *text;   /* policy text as served (NUL-terminated) */
    size_t text_len;
    const struct mtasts_policy *policy; /* parsed text; copy to keep */
    int64_t fetched_at;                 /* Unix seconds */
};

/* One problem, borrowed for the duration of the callback. */
struct snapshot_error {
    const char *file;   /* the path as given */
    const char *domain; /* the key as written in the file (escaped), NULL for file errors */
    int line;           /* policy text line for policy errors; JSON line for file errors; else 0 */
    int column;         /* JSON column for file errors, else 0 */
    const char *reason;
};

/* Returns non-zero to stop loading (snapshot_load then returns that value). */
typedef int (*snapshot_entry_cb)(void *arg, const struct snapshot_entry *e);
typedef void (*snapshot_error_cb)(void *arg, const struct snapshot_error *e);

struct snapshot_stats {
    size_t loaded, rejected;
};

/* Reads path and calls on_entry for each valid entry (in file order) and
 * on_error for each bad one, which is skipped. A file that cannot be read,
 * is not JSON or is not an object gives one on_error call (domain NULL) and
 * SW_EIO / SW_EPROTO; otherwise SW_OK (even if entries were rejected), or
 * the non-zero value an on_entry returned. on_error and st may be NULL. */
int snapshot_load(const char *path, snapshot_entry_cb on_entry, snapshot_error_cb on_error,
                  void *arg, struct snapshot_stats *st);

/* "policies.json: domain \"a.org\": line 3: max_age ..." (parts that are
 * unset are left out; file errors read "f.json: line 2, column 7: ..."). */
char *snapshot_error_format(const struct snapshot_error *e, char *buf, size_t len);

/* One entry to save, borrowed. */
struct snapshot_item {
    const char *domain; /* normalised on save (lowercase, no trailing dot) */
    const char *id;
    const char *text;
    size_t text_len;
    int64_t fetched_at;
};

/* Writes items to path atomically (temporary file in the same directory,
 * fsync, rename), sorted by domain, in the format above (2-space indented,
 * keys id, policy, fetched_at). A file written by snapshot_save() and loaded
 * back, then saved again, is byte-identical. SW_OK, or SW_EPROTO (an item is
 * invalid: bad domain or id, duplicate domain, text not UTF-8), SW_EIO or
 * SW_ENOMEM with a message in err ("policies.json: ..."). */
int snapshot_save(const char *path, const struct snapshot_item *items, size_t n, char *err,
                  size_t errlen);

/* RFC 3339 "YYYY-MM-DDTHH:MM:SSZ" <-> Unix seconds. parse returns false on
 * any other form or an impossible date. */
bool snapshot_time_parse(const char *s, size_t len, int64_t *out);
void snapshot_time_format(int64_t t, char buf[32]);

#endif
