/* SPDX-License-Identifier: Apache-2.0 */
/* fanout.c: one capture thread per PACKET_FANOUT socket, each feeding its own
 * pipeline worker (see fanout.h). No RFC: process plumbing. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sensor/capture.h"
#include "sensor/clock.h"
#include "sensor/fanout.h"
#include "sensor/pipeline.h"

struct fanout_thread {
    struct fanout *f;
    unsigned idx;
    pthread_t th;
    bool started;
    struct frag_table *frag;
    struct sw_clock clock;
    /* written by the thread, read by others (relaxed) */
    uint64_t packets, bytes;
    uint64_t status[PKT_STATUS_COUNT];
};

struct fanout {
    struct capture *cap;
    struct pipeline *pl;
    struct fanout_thread *t;
    unsigned n;
    _Atomic uint64_t no; /* packet numbers, shared */
    _Atomic int stop;
    pthread_mutex_t err_mu;
    char err[1024];
    bool failed, reported;
};

static sw_usec wall_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (sw_usec)ts.tv_sec * SW_USEC_PER_SEC + ts.tv_nsec / 1000;
}

static void add(uint64_t *c, uint64_t v)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}

static void *thread_main(void *arg)
{
    struct fanout_thread *t = arg;
    struct fanout *f = t->f;
    char err[1024], name[16];
    snprintf(name, sizeof(name), "sw-capture-%u", t->idx % 100u); /* top -H, ps -L */
    pthread_setname_np(pthread_self(), name);
    while (!atomic_load_explicit(&f->stop, memory_order_relaxed)) {
        struct capture_pkt cp;
        int rc = capture_next_live(f->cap, t->idx, &cp, err, sizeof(err));
        if (rc < 0) {
            if (rc == -2) {
                pthread_mutex_lock(&f->err_mu);
                if (!f->failed)
                    snprintf(f->err, sizeof(f->err), "%s", err);
                f->failed = true;
                pthread_mutex_unlock(&f->err_mu);
            }
            break;
        }
        if (rc == 0) {
            /* idle: wall time drives this worker's clock and its key */
            sw_usec now = wall_usec();
            bool tick = sw_clock_step(&t->clock, now);
            if (tick)
                frag_table_expire(t->frag, now);
            pipeline_worker_tick(f->pl, t->idx, now, (uint64_t)now, tick);
            continue;
        }
        add(&t->packets, 1);
        add(&t->bytes, cp.len);
        if (sw_clock_step(&t->clock, cp.ts)) {
            frag_table_expire(t->frag, cp.ts);
            pipeline_worker_tick(f->pl, t->idx, cp.ts, (uint64_t)cp.ts, true);
        }
        struct pkt p;
        memset(&p, 0, sizeof(p));
        p.ts = cp.ts;
        p.no = atomic_fetch_add_explicit(&f->no, 1, memory_order_relaxed) + 1;
        p.frame = cp.data;
        p.caplen = cp.caplen;
        p.len = cp.len;
        p.linktype = cp.linktype;
        enum pkt_status st = pkt_decode(&p, t->frag);
        add(&t->status[st], 1);
        if (st == PKT_TCP)
            pipeline_worker_packet(f->pl, t->idx, &p, (uint64_t)cp.ts);
    }
    return NULL;
}

struct fanout *fanout_start(struct capture *cap, struct pipeline *pl, char *err, size_t errlen)
{
    struct fanout *f = calloc(1, sizeof(*f));
    unsigned n = (unsigned)capture_n_src(cap);
    if (!f || !(f->t = calloc(n, sizeof(*f->t)))) {
        free(f);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f->cap = cap;
    f->pl = pl;
    f->n = n;
    pthread_mutex_init(&f->err_mu, NULL);
    for (unsigned i = 0; i < n; i++) {
        f->t[i].f = f;
        f->t[i].idx = i;
        if (!(f->t[i].frag = frag_table_new(NULL))) {
            snprintf(err, errlen, "out of memory");
            fanout_free(f);
            return NULL;
        }
    }
    /* signals stay with the main thread */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    bool ok = true;
    for (unsigned i = 0; i < n && ok; i++)
        ok = f->t[i].started = pthread_create(&f->t[i].th, NULL, thread_main, &f->t[i]) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!ok) {
        snprintf(err, errlen, "cannot start the capture threads");
        fanout_free(f);
        return NULL;
    }
    return f;
}

void fanout_counts(struct fanout *f, uint64_t *packets, uint64_t *bytes,
                   uint64_t status[PKT_STATUS_COUNT])
{
    *packets = *bytes = 0;
    memset(status, 0, sizeof(uint64_t) * PKT_STATUS_COUNT);
    for (unsigned i = 0; i < f->n; i++) {
        struct fanout_thread *t = &f->t[i];
        *packets += __atomic_load_n(&t->packets, __ATOMIC_RELAXED);
        *bytes += __atomic_load_n(&t->bytes, __ATOMIC_RELAXED);
        for (int k = 0; k < PKT_STATUS_COUNT; k++)
            status[k] += __atomic_load_n(&t->status[k], __ATOMIC_RELAXED);
    }
}

void fanout_frag_stats(struct fanout *f, struct frag_stats *sum)
{
    memset(sum, 0, sizeof(*sum));
    for (unsigned i = 0; i < f->n; i++) {
        const uint64_t *src = (const uint64_t *)frag_table_stats(f->t[i].frag);
        uint64_t *dst = (uint64_t *)sum;
        for (size_t k = 0; k < sizeof(*sum) / sizeof(uint64_t); k++)
            dst[k] += __atomic_load_n(&src[k], __ATOMIC_RELAXED);
    }
}

bool fanout_failed(struct fanout *f, char *err, size_t errlen)
{
    pthread_mutex_lock(&f->err_mu);
    bool failed = f->failed && !f->reported;
    if (failed) {
        snprintf(err, errlen, "%s", f->err);
        f->reported = true;
    }
    pthread_mutex_unlock(&f->err_mu);
    return failed;
}

void fanout_stop(struct fanout *f)
{
    atomic_store(&f->stop, 1);
    for (unsigned i = 0; i < f->n; i++) {
        if (f->t[i].started)
            pthread_join(f->t[i].th, NULL); /* each polls at most 100 ms */
        f->t[i].started = false;
    }
}

void fanout_free(struct fanout *f)
{
    if (!f)
        return;
    fanout_stop(f);
    for (unsigned i = 0; i < f->n; i++)
        frag_table_free(f->t[i].frag);
    pthread_mutex_destroy(&f->err_mu);
    free(f->t);
    free(f);
}
