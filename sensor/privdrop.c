/* SPDX-License-Identifier: Apache-2.0 */
/* privdrop.c: drops root to the --user/--group of the command line after the
 * capture and the files are open; verifies that root cannot be regained.
 * POSIX setuid/setgid semantics, no RFC. */
#include "sensor/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

bool privdrop_resolve(struct privdrop *pd, const char *user, const char *group, char *err,
                      size_t errlen)
{
    memset(pd, 0, sizeof(*pd));
    if (!user) {
        if (group) {
            snprintf(err, errlen, "--group %s: needs --user", group);
            return false;
        }
        return true;
    }
    errno = 0;
    const struct passwd *pw = getpwnam(user);
    if (!pw) {
        if (errno == 0 || errno == ENOENT || errno == ESRCH)
            snprintf(err, errlen, "--user %s: no such user", user);
        else
            snprintf(err, errlen, "--user %s: cannot look up: %s", user, strerror(errno));
        return false;
    }
    if (pw->pw_uid == 0) {
        snprintf(err, errlen, "--user %s: has uid 0, nothing would be dropped", user);
        return false;
    }
    pd->user = user;
    pd->uid = pw->pw_uid;
    pd->gid = pw->pw_gid;
    if (group) {
        errno = 0;
        const struct group *gr = getgrnam(group);
        if (!gr) {
            if (errno == 0 || errno == ENOENT || errno == ESRCH)
                snprintf(err, errlen, "--group %s: no such group", group);
            else
                snprintf(err, errlen, "--group %s: cannot look up: %s", group, strerror(errno));
            return false;
        }
        if (gr->gr_gid == 0) {
            snprintf(err, errlen, "--group %s: has gid 0, nothing would be dropped", group);
            return false;
        }
        pd->gid = gr->gr_gid;
    }
    return true;
}

bool privdrop_apply(const struct privdrop *pd, char *err, size_t errlen)
{
    if (!pd->user)
        return true;
    /* group list first, then gid, then uid: each later step needs root */
    if (initgroups(pd->user, pd->gid) != 0) {
        snprintf(err, errlen, "--user %s: cannot drop privileges: initgroups: %s", pd->user,
                 strerror(errno));
        return false;
    }
    if (setgid(pd->gid) != 0) {
        snprintf(err, errlen, "--user %s: cannot drop privileges: setgid %lu: %s", pd->user,
                 (unsigned long)pd->gid, strerror(errno));
        return false;
    }
    if (setuid(pd->uid) != 0) {
        snprintf(err, errlen, "--user %s: cannot drop privileges: setuid %lu: %s", pd->user,
                 (unsigned long)pd->uid, strerror(errno));
        return false;
    }
    /* setuid as root set the real, effective and saved uid: none may be 0 */
    if (setuid(0) == 0 || seteuid(0) == 0) {
        snprintf(err, errlen, "--user %s: root could be regained after the drop", pd->user);
        return false;
    }
    if (pd->gid != 0 && (setgid(0) == 0 || setegid(0) == 0)) {
        snprintf(err, errlen, "--user %s: group 0 could be regained after the drop", pd->user);
        return false;
    }
    if (getuid() != pd->uid || geteuid() != pd->uid || getgid() != pd->gid ||
        getegid() != pd->gid) {
        snprintf(err, errlen, "--user %s: ids after the drop are not %lu:%lu", pd->user,
                 (unsigned long)pd->uid, (unsigned long)pd->gid);
        return false;
    }
    return true;
}

bool privdrop_check_writable(const struct privdrop *pd, const char *flag, const char *path,
                             char *err, size_t errlen)
{
    if (!pd->user || !path)
        return true;
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    /* the real uid is the dropped user's now */
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "--user %s: %s %s: directory %s not writable by %s: %s", pd->user,
                 flag, path, dir, pd->user, strerror(errno));
        return false;
    }
    return true;
}
