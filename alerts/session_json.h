/* SPDX-License-Identifier: Apache-2.0 */
/* session_json.h: the session record (alerts/session_json.c) written with the
 * direct JSON writer (alerts/jsonw.h): ECS field names, one compact JSON
 * object, no trailing newline. An alert is the same document with the
 * judgment added (alerts/alert.c): session_json_write() calls the hooks of a
 * struct session_json_ext at fixed places, so the alert's members land where
 * they belong without building a tree. Each object of the document has one
 * writer function in session_json.c; a new field goes into the function of
 * its object. */
#ifndef SW_SESSION_JSON_H
#define SW_SESSION_JSON_H

#include <stddef.h>

#include "alerts/jsonw.h"
#include "decode/facts.h"

/* The ECS version the documents follow (ecs.version). */
#define SESSION_JSON_ECS_VERSION "8.11.0"

/* What an alert adds; any hook may be NULL. Each is called inside its object,
 * after the record's own members, with arg. */
struct session_json_ext {
    const char *kind, *dataset; /* event.kind, event.dataset (NULL: the record's) */
    /* inside "event", after kind and dataset, in place of the record's
     * category and type; start, end, duration and created follow */
    void (*event)(struct jsonw *w, const void *arg);
    void (*stripwatch)(struct jsonw *w, const void *arg); /* inside "stripwatch" */
    void (*tail)(struct jsonw *w, const void *arg);       /* top level, after "tls" */
    const void *arg;
    /* the members from "source" to "tls" (they depend on f alone) as a
     * document of the same session wrote them (session_json_write_at):
     * copied, not written again; NULL: written */
    const char *same;
    size_t same_len;
};

/* The names of the -r files (borrowed; in the order given, so that
 * f->flow.file - 1 indexes them) for stripwatch.packet.file, which is
 * written as the base name. Process-wide: set once before any document is
 * written (and before threads start); without it (live runs) the field is
 * left out. */
void session_json_files(const char *const *names, size_t n);

/* Appends the document for f to w (x NULL: the session record,
 * event.kind "event", dataset stripwatch.session). Check jsonw_ok(w). */
void session_json_write(struct jsonw *w, const struct smtp_facts *f,
                        const struct session_json_ext *x);
/* session_json_write, telling where in w->buf the members from "source" to
 * "tls" are: [*from, *to), no separator before or after (a document of the
 * same session, an alert, may pass them as its ext's same while w holds
 * them). */
void session_json_write_at(struct jsonw *w, const struct smtp_facts *f,
                           const struct session_json_ext *x, size_t *from, size_t *to);

/* The "capabilities" array of f (its EHLO reply's extensions, as on the
 * wire), as the record and the evidence of several rules write it. */
void session_json_caps(struct jsonw *w, const struct smtp_facts *f);

/* The session record as a malloc'd string (*len its length); NULL when out
 * of memory. The caller frees it. */
char *session_json(const struct smtp_facts *f, size_t *len);

#endif
