/* SPDX-License-Identifier: Apache-2.0 */
/* runbin.h: run a program with a time bound and collect its output (test code). */
#ifndef SW_TEST_RUNBIN_H
#define SW_TEST_RUNBIN_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../test_threads.h"

#define STRIPWATCH SW_BINARY_DIR "/stripwatch"
#define BENCHGEN   SW_BINARY_DIR "/tests/bench/bench_gen"

struct run_out {
    int status; /* exit code, or 128+signal, or -1 when killed at the timeout */
    char *out;  /* stdout, NUL-terminated */
    size_t out_len;
    char *err;
    size_t err_len;
};

static inline char *slurp(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    size_t cap = 4096, n = 0;
    char *b = malloc(cap + 1);
    size_t r;
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            char *nb = realloc(b, cap + 1);
            if (!nb) {
                free(b);
                b = NULL;
            }
            b = nb;
        }
    }
    fclose(f);
    if (!b)
        return NULL;
    b[n] = '\0';
    *len = n;
    return b;
}

static inline bool spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

/* Starts argv with stdin from in_path (NULL: /dev/null), stdout/stderr to
 * files in dir; returns the pid. */
static inline pid_t run_start(const char *dir, char *const argv[], const char *in_path)
{
    char o[4200], e[4200];
    snprintf(o, sizeof(o), "%s/.stdout", dir);
    snprintf(e, sizeof(e), "%s/.stderr", dir);
    pid_t pid = fork();
    if (pid == 0) {
        int in = open(in_path ? in_path : "/dev/null", O_RDONLY);
        int fo = open(o, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fe = open(e, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in < 0 || fo < 0 || fe < 0)
            _exit(126);
        dup2(in, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Waits up to timeout_s; kills (SIGKILL) past it. */
static inline int run_wait(pid_t pid, int timeout_s)
{
    struct timespec d = {0, 10 * 1000 * 1000};
    for (int i = 0; i < timeout_s * 100; i++) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        nanosleep(&d, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static inline void run_collect(const char *dir, struct run_out *r)
{
    char o[4200], e[4200];
    snprintf(o, sizeof(o), "%s/.stdout", dir);
    snprintf(e, sizeof(e), "%s/.stderr", dir);
    r->out = slurp(o, &r->out_len);
    r->err = slurp(e, &r->err_len);
    unlink(o);
    unlink(e);
}

static inline void run(const char *dir, char *const argv[], const char *in_path, int timeout_s,
                       struct run_out *r)
{
    pid_t pid = run_start(dir, argv, in_path);
    r->status = pid > 0 ? run_wait(pid, timeout_s) : -1;
    run_collect(dir, r);
}

static inline void run_free(struct run_out *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* A fresh directory under $TMPDIR (or /tmp); removed by rm_rf. */
static inline char *temp_dir(void)
{
    const char *t = getenv("TMPDIR");
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s/stripwatch-test-XXXXXX", t && *t ? t : "/tmp");
    char *d = mkdtemp(buf);
    return d ? strdup(d) : NULL;
}

static inline void rm_rf(char *dir)
{
    if (!dir)
        return;
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    free(dir);
}

/* True when every directory on the way to path (absolute) may be searched
 * by others (mode o+x). */
static inline bool path_is_public(const char *path)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s", path);
    for (;;) {
        struct stat sb;
        if (p[0] != '/' || stat(p, &sb) != 0 || !(sb.st_mode & S_IXOTH))
            return false;
        char *slash = strrchr(p, '/');
        if (slash == p)
            return stat("/", &sb) == 0 && (sb.st_mode & S_IXOTH);
        *slash = '\0';
    }
}

/* A fresh directory with mode 0755 for what a test runs as an unprivileged
 * user must read: the checkout and the build directory may be closed to
 * that user (a checkout under /root, mode 0700 on Debian), so such a test
 * copies the binary and its inputs here (copy_public()). Under $TMPDIR when
 * others may reach it, else under /tmp. Removed by rm_rf. */
static inline char *temp_dir_public(void)
{
    const char *t = getenv("TMPDIR");
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s/stripwatch-test-XXXXXX",
             t && *t && path_is_public(t) ? t : "/tmp");
    char *d = mkdtemp(buf);
    if (!d)
        return NULL;
    d = strdup(d);
    if (d && chmod(d, 0755) != 0) {
        rm_rf(d);
        return NULL;
    }
    return d;
}

/* Copies the file src into dir under its base name with mode 0755 (an
 * executable) or 0644; the new path (free()) or NULL. */
static inline char *copy_public(const char *dir, const char *src)
{
    struct stat sb;
    size_t len;
    const char *base = strrchr(src, '/');
    base = base ? base + 1 : src;
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, base);
    if (stat(src, &sb) != 0)
        return NULL;
    char *data = slurp(src, &len);
    bool ok = data && len == (size_t)sb.st_size && spit(path, data, len) &&
              chmod(path, (sb.st_mode & S_IXUSR) ? 0755 : 0644) == 0;
    free(data);
    return ok ? strdup(path) : NULL;
}

struct task_file {
    const char *file;
    void (*fn)(void *ctx, const char *text);
    void *ctx;
};

static inline void task_file_one(void *ctx, const char *dir)
{
    const struct task_file *t = ctx;
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, t->file);
    size_t len;
    char *text = slurp(path, &len);
    t->fn(t->ctx, text);
    free(text);
}

/* Calls fn(ctx, text) with /proc/PID/task/TID/FILE of each of pid's threads
 * (NULL when it cannot be read); returns the number of threads, 0 when the
 * process is gone. */
static inline size_t each_task_file(pid_t pid, const char *file,
                                    void (*fn)(void *ctx, const char *text), void *ctx)
{
    struct task_file t = {file, fn, ctx};
    return each_task(pid, task_file_one, &t);
}

struct thread_name_list {
    char names[64][16];
    size_t n;
};

static inline void thread_name_add(void *ctx, const char *comm)
{
    struct thread_name_list *l = ctx;
    if (comm && l->n < 64)
        snprintf(l->names[l->n++], sizeof(l->names[0]), "%.*s", (int)strcspn(comm, "\n"), comm);
}

static inline int thread_name_cmp(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* The names of pid's threads (their comm), sorted and joined by single
 * spaces, into buf; "" when the process is gone. */
static inline void thread_names(pid_t pid, char *buf, size_t len)
{
    struct thread_name_list l = {.n = 0};
    buf[0] = '\0';
    each_task_file(pid, "comm", thread_name_add, &l);
    qsort(l.names, l.n, sizeof(l.names[0]), thread_name_cmp);
    for (size_t i = 0; i < l.n; i++) {
        size_t at = strlen(buf);
        snprintf(buf + at, len - at, "%s%s", i ? " " : "", l.names[i]);
    }
}

/* The thread names want (as thread_names sorts them: the main thread's
 * "stripwatch" first) with those extra threads, into buf. */
static inline const char *want_thread_names(const char *want, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = extra_threads(); i > 0; i--) {
        size_t at = strlen(buf);
        snprintf(buf + at, len - at, "stripwatch ");
    }
    size_t at = strlen(buf);
    snprintf(buf + at, len - at, "%s", want);
    return buf;
}

#endif
