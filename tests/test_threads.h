/* SPDX-License-Identifier: Apache-2.0 */
/* test_threads.h: the threads of a process, as the tests count them (test
 * code). */
#ifndef SW_TEST_THREADS_H
#define SW_TEST_THREADS_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

/* Threads a sanitizer's runtime adds to each process, named as its main
 * thread: SW_TEST_EXTRA_THREADS (.ci/run: 1 under ThreadSanitizer), else 0. */
static inline size_t extra_threads(void)
{
    const char *e = getenv("SW_TEST_EXTRA_THREADS");
    return e ? strtoul(e, NULL, 10) : 0;
}

/* Calls fn(ctx, dir) with /proc/PID/task/TID of each of pid's threads (fn
 * may be NULL); returns the number of threads, 0 when the process is gone. */
static inline size_t each_task(pid_t pid, void (*fn)(void *ctx, const char *dir), void *ctx)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (fn) {
            char path[320];
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            fn(ctx, path);
        }
        n++;
    }
    closedir(d);
    return n;
}

/* The threads of pid; 0 when it is gone. */
static inline size_t task_count(pid_t pid)
{
    return each_task(pid, NULL, NULL);
}

#endif
