/* SPDX-License-Identifier: Apache-2.0 */
/* privdrop.h: dropping root to an unprivileged user (--user, --group) once
 * the capture and the files are open (sensor/privdrop.c). */
#ifndef SW_PRIVDROP_H
#define SW_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The user to become, resolved from the command line. */
struct privdrop {
    const char *user; /* --user as given (points into argv); NULL: no drop */
    uid_t uid;
    gid_t gid; /* --group's gid, else the user's primary group */
};

/* Looks up user (a name) and group (a name, or NULL for the user's primary
 * group) into pd. Returns true, or false with one line in err such as
 * `--user nosuchuser: no such user` (a bad command line: exit 2). A user
 * with uid 0 is refused: there would be nothing dropped. */
bool privdrop_resolve(struct privdrop *pd, const char *user, const char *group, char *err,
                      size_t errlen);

/* Becomes pd's user: initgroups (the user's supplementary groups plus pd's
 * gid), setgid, setuid; then verifies that neither setuid(0) nor setgid(0)
 * succeeds any more. Does nothing when pd->user is NULL. Call it before any
 * thread starts. Returns true, or false with one line in err naming the user
 * and the failed step (a runtime error: exit 1). */
bool privdrop_apply(const struct privdrop *pd, char *err, size_t errlen);

/* After privdrop_apply: checks that pd's user may replace the file path
 * (named by flag, e.g. "--state-file") later on, i.e. that its directory is
 * writable and searchable, as files are replaced through a temporary file
 * and rename. True when so or when there was no drop (pd->user NULL); else
 * false with one line in err such as `--user nobody: --state-file
 * d/state.json: directory d not writable by nobody`. */
bool privdrop_check_writable(const struct privdrop *pd, const char *flag, const char *path,
                             char *err, size_t errlen);

#endif
