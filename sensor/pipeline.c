/* SPDX-License-Identifier: Apache-2.0 */
/* pipeline.c: flow sharding over worker threads through bounded SPSC rings,
 * and the output stage that merges finished sessions in a deterministic
 * order (see pipeline.h). No RFC: process plumbing. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sensor/pipeline.h"

#include "alerts/session_json.h"

#define RING_BATCH 128 /* slots filled before the worker is told */
/* Finished sessions a worker queues before it wakes the output thread (which
 * otherwise looks every few milliseconds), and before it waits for it. */
#define OUT_BATCH 64
#define OUT_MAX   1024
#ifndef SPIN_CONSUMER
#define SPIN_CONSUMER 256 /* pause steps an idle worker polls before it sleeps */
#endif

enum slot_kind { SLOT_PKT = 0, SLOT_TICK, SLOT_END };

struct slot {
    uint8_t kind;
    struct pkt p;
    uint8_t *buf; /* payload copy, grown on demand */
    uint32_t cap;
};

struct out_item {
    uint64_t no;
    uint64_t uid; /* the session uid's 16 hex digits ("S%016llx"), as a number */
    unsigned worker;
    uint64_t seq; /* order within the worker, last tie-breaker */
    struct smtp_facts *f;
};

struct worker {
    struct pipeline *pl;
    unsigned idx;
    struct flow_table *ft;
    struct smtp_consumer *sc;
    uint64_t cur_no; /* key of the packet or tick being processed */
    uint64_t seq;
    pthread_t th;
    bool started;

    /* ring: capture thread produces, worker consumes. Each side's index and
     * flag live on their own cache line; each side caches the other's index
     * and re-reads it only when the ring looks full (or empty). */
    struct slot *slots;
    uint32_t mask;
    _Alignas(64) _Atomic uint64_t head;
    uint64_t prod_head;  /* next slot to fill; published to head in batches */
    uint64_t tail_cache; /* producer's view of tail */
    _Atomic int prod_sleeping;
    _Alignas(64) _Atomic uint64_t tail;
    uint64_t head_cache; /* consumer's view of head */
    _Atomic int cons_sleeping;
    _Alignas(64) char pad_;
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    uint64_t ring_dropped, ring_waits, out_waits;

    /* finished sessions waiting for the output stage */
    pthread_mutex_t out_mu;
    pthread_cond_t out_taken; /* the output stage took them */
    struct out_item *out;
    size_t n_out, cap_out;      /* n_out: written under out_mu, atomically (a tick reads it
                                   without the lock) */
    _Atomic uint64_t watermark; /* every packet/tick <= this is processed */
    uint64_t copy_failed;       /* atomic: the worker and the output thread add to it */
    struct flow_stats final;    /* the table's counters just before it was freed */
    /* the worker's counters as its thread last published them (under
     * pl->pub_mu): what pipeline_get_stats reads */
    struct flow_stats pub_flow;
    struct smtp_stats pub_smtp;
    uint64_t pub_out_waits;
};

struct pipeline {
    struct pipeline_cfg cfg;
    struct worker *w;
    unsigned n;
    /* output stage */
    struct out_item *heap;
    size_t n_heap, cap_heap;
    uint64_t sessions_out;
    struct jsonw line; /* the session record being written, reused (output stage only) */
    uint64_t sessions_seen, sessions_tls; /* atomics: read by the capture thread */
    pthread_t out_th;
    bool out_started;
    _Atomic int out_stop;
    pthread_mutex_t out_wake_mu;
    pthread_cond_t out_wake;
    /* pipeline_run_on_output: a call for the output thread (under out_wake_mu) */
    void (*call_fn)(void *arg);
    void *call_arg;
    pthread_cond_t call_done;
    /* the output stage's counters as the output thread last published them */
    pthread_mutex_t pub_mu; /* these and the workers' pub_* */
    uint64_t pub_sessions_out;
    struct detector_stats pub_det;
    struct policy_stats pub_pol;
    struct tlsrpt_stats pub_rpt;
};

/* A short busy-wait step; the waits below sleep on a condition after it. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    sched_yield();
#endif
}

static void wait_ms(pthread_cond_t *c, pthread_mutex_t *m, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += ms * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(c, m, &ts);
}

/* ---- output stage ---- */

/* The 16 hex digits after the "S" of a session uid as a number: records
 * are ordered by it as by the text, without a string compare (200,000
 * sessions ending together take millions of them). */
static uint64_t uid_value(const char *uid)
{
    uint64_t v = 0;
    for (int i = 1; i <= 16; i++) {
        char c = uid[i];
        v = v << 4 | (uint64_t)(c >= 'a' ? c - 'a' + 10 : c - '0');
    }
    return v;
}

static bool key_less(const struct out_item *a, const struct out_item *b)
{
    if (a->no != b->no)
        return a->no < b->no;
    if (a->uid != b->uid) /* the order of the uids' text: fixed-width lower-case hex */
        return a->uid < b->uid;
    if (a->worker != b->worker)
        return a->worker < b->worker;
    return a->seq < b->seq;
}

static int cmp_item(const void *a, const void *b)
{
    const struct out_item *x = a, *y = b;
    return key_less(x, y) ? -1 : key_less(y, x);
}

static bool heap_push(struct pipeline *pl, const struct out_item *it)
{
    if (pl->n_heap == pl->cap_heap) {
        size_t nc = pl->cap_heap ? pl->cap_heap * 2 : 256;
        struct out_item *nh = realloc(pl->heap, nc * sizeof(*nh));
        if (!nh)
            return false;
        pl->heap = nh;
        pl->cap_heap = nc;
    }
    size_t i = pl->n_heap++;
    pl->heap[i] = *it;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!key_less(&pl->heap[i], &pl->heap[parent]))
            break;
        struct out_item t = pl->heap[i];
        pl->heap[i] = pl->heap[parent];
        pl->heap[parent] = t;
        i = parent;
    }
    return true;
}

static struct out_item heap_pop(struct pipeline *pl)
{
    struct out_item top = pl->heap[0];
    pl->heap[0] = pl->heap[--pl->n_heap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < pl->n_heap && key_less(&pl->heap[l], &pl->heap[m]))
            m = l;
        if (r < pl->n_heap && key_less(&pl->heap[r], &pl->heap[m]))
            m = r;
        if (m == i)
            break;
        struct out_item t = pl->heap[i];
        pl->heap[i] = pl->heap[m];
        pl->heap[m] = t;
        i = m;
    }
    return top;
}

/* The output stage's counters for pipeline_get_stats (the output thread, or
 * the caller once it is joined). */
static void output_publish(struct pipeline *pl)
{
    struct detector_stats ds;
    struct policy_stats ps;
    struct tlsrpt_stats ts;
    if (pl->cfg.det)
        detector_stats_all(pl->cfg.det, &ds, &ps, &ts);
    pthread_mutex_lock(&pl->pub_mu);
    pl->pub_sessions_out = pl->sessions_out;
    if (pl->cfg.det) {
        pl->pub_det = ds;
        pl->pub_pol = ps;
        pl->pub_rpt = ts;
    }
    pthread_mutex_unlock(&pl->pub_mu);
}

/* Worker w's counters for pipeline_get_stats (the thread driving it). */
static void worker_publish(struct worker *w)
{
    pthread_mutex_lock(&w->pl->pub_mu);
    w->pub_flow = w->ft ? *flow_table_stats(w->ft) : w->final;
    w->pub_smtp = *smtp_consumer_stats(w->sc);
    w->pub_out_waits = w->out_waits;
    pthread_mutex_unlock(&w->pl->pub_mu);
}

static void emit_session(struct pipeline *pl, struct smtp_facts *f)
{
    __atomic_add_fetch(&pl->sessions_seen, 1, __ATOMIC_RELAXED);
    if (f->tls && (f->tls->established || f->tls->implicit))
        __atomic_add_fetch(&pl->sessions_tls, 1, __ATOMIC_RELAXED);
    const char *same = NULL; /* the record's members the alerts copy */
    size_t from = 0, to = 0;
    if (pl->cfg.sessions_out) {
        struct jsonw *w = &pl->line;
        jsonw_reset(w);
        session_json_write_at(w, f, NULL, &from, &to);
        if (jsonw_ok(w)) {
            same = w->buf + from;
            w->buf[w->len] = '\n'; /* the NUL's place: one write for the line */
            fwrite(w->buf, 1, w->len + 1, pl->cfg.sessions_out);
            if (pl->cfg.flush_records)
                fflush(pl->cfg.sessions_out);
            pl->sessions_out++;
        }
    }
    if (pl->cfg.det)
        detector_session_rendered(pl->cfg.det, f, same, same ? to - from : 0);
    else
        facts_free(f);
}

/* Moves finished sessions into the heap and releases those every worker is
 * past. Returns the number released. Runs on the output thread (and once
 * more in pipeline_finish, after it is joined). */
static size_t pump(struct pipeline *pl)
{
    uint64_t min_wm = UINT64_MAX;
    for (unsigned i = 0; i < pl->n; i++) {
        struct worker *w = &pl->w[i];
        uint64_t wm = atomic_load_explicit(&w->watermark, memory_order_acquire);
        if (wm < min_wm)
            min_wm = wm;
        pthread_mutex_lock(&w->out_mu);
        for (size_t k = 0; k < w->n_out; k++) {
            if (!heap_push(pl, &w->out[k])) {
                facts_free(w->out[k].f);
                __atomic_add_fetch(&w->copy_failed, 1, __ATOMIC_RELAXED);
            }
        }
        if (w->n_out >= OUT_MAX)
            pthread_cond_signal(&w->out_taken);
        __atomic_store_n(&w->n_out, 0, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&w->out_mu);
    }
    size_t released = 0;
    if (min_wm == UINT64_MAX && pl->n_heap > 1) {
        /* the end (every worker is done): all of them go, sorted at once; a
         * pop each walks the whole depth of a heap that can hold every
         * session still open at the end */
        qsort(pl->heap, pl->n_heap, sizeof(*pl->heap), cmp_item);
        for (size_t k = 0; k < pl->n_heap; k++)
            emit_session(pl, pl->heap[k].f);
        released = pl->n_heap;
        pl->n_heap = 0;
    }
    while (pl->n_heap > 0 && pl->heap[0].no <= min_wm) {
        struct out_item it = heap_pop(pl);
        emit_session(pl, it.f);
        released++;
    }
    if (released && pl->cfg.det)
        detector_run(pl->cfg.det, 0);
    return released;
}

static void *output_main(void *arg)
{
    struct pipeline *pl = arg;
    pthread_setname_np(pthread_self(), "sw-output"); /* top -H, ps -L */
    for (;;) {
        int stop = atomic_load(&pl->out_stop);
        size_t released = pump(pl);
        if (stop && pl->n_heap == 0)
            break;
        if (!released && pl->cfg.det) /* pump already ran it after a release */
            detector_run(pl->cfg.det, 0);
        output_publish(pl);
        pthread_mutex_lock(&pl->out_wake_mu);
        if (pl->call_fn) {
            void (*fn)(void *) = pl->call_fn;
            pthread_mutex_unlock(&pl->out_wake_mu);
            fn(pl->call_arg); /* between sessions */
            pthread_mutex_lock(&pl->out_wake_mu);
            pl->call_fn = NULL;
            pthread_cond_broadcast(&pl->call_done);
        } else {
            wait_ms(&pl->out_wake, &pl->out_wake_mu, 5);
        }
        pthread_mutex_unlock(&pl->out_wake_mu);
    }
    return NULL;
}

/* ---- workers ---- */

/* The workers are driven by their feeders' calls (one worker: the capture
 * thread; self-fed: a capture thread each), with no ring or thread of their
 * own. */
static bool fed_inline(const struct pipeline *pl)
{
    return pl->n == 1 || pl->cfg.self_fed;
}

/* Tells the output thread that worker w has finished sessions. */
static void wake_output(struct worker *w)
{
    pthread_mutex_lock(&w->pl->out_wake_mu);
    pthread_cond_signal(&w->pl->out_wake);
    pthread_mutex_unlock(&w->pl->out_wake_mu);
}

static void on_event(void *ctx, enum smtp_event ev, const struct smtp_facts *f)
{
    struct worker *w = ctx;
    if (ev != SMTP_EV_END)
        return;
    struct smtp_facts *copy = facts_copy(f);
    if (!copy) {
        __atomic_add_fetch(&w->copy_failed, 1, __ATOMIC_RELAXED);
        return;
    }
    struct out_item it;
    memset(&it, 0, sizeof(it));
    it.no = w->cur_no;
    it.uid = uid_value(f->flow.uid);
    it.worker = w->idx;
    it.seq = w->seq++;
    it.f = copy;
    pthread_mutex_lock(&w->out_mu);
    if (w->n_out == w->cap_out) {
        size_t nc = w->cap_out ? w->cap_out * 2 : 64;
        struct out_item *no = realloc(w->out, nc * sizeof(*no));
        if (!no) {
            pthread_mutex_unlock(&w->out_mu);
            facts_free(copy);
            __atomic_add_fetch(&w->copy_failed, 1, __ATOMIC_RELAXED);
            return;
        }
        w->out = no;
        w->cap_out = nc;
    }
    size_t n = w->n_out + 1;
    w->out[n - 1] = it;
    __atomic_store_n(&w->n_out, n, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&w->out_mu);
    if (n == OUT_BATCH || n >= OUT_MAX)
        wake_output(w);
    if (n >= OUT_MAX) {
        /* the output stage is behind: wait rather than queue without bound
         * (it takes every worker's queue whatever the others are at) */
        pthread_mutex_lock(&w->out_mu);
        w->out_waits++;
        while (w->n_out >= OUT_MAX)
            pthread_cond_wait(&w->out_taken, &w->out_mu);
        pthread_mutex_unlock(&w->out_mu);
    }
}

/* The worker's input is over: its open flows are closed (its thread). */
static void worker_close(struct worker *w)
{
    w->cur_no = UINT64_MAX;
    w->final = *flow_table_stats(w->ft);
    flow_table_free(w->ft);
    w->ft = NULL;
    worker_publish(w);
    atomic_store_explicit(&w->watermark, UINT64_MAX, memory_order_release);
}

static void worker_do(struct worker *w, const struct slot *s)
{
    switch (s->kind) {
    case SLOT_PKT:
        w->cur_no = s->p.no;
        flow_table_packet(w->ft, &s->p);
        atomic_store_explicit(&w->watermark, s->p.no, memory_order_release);
        break;
    case SLOT_TICK:
        w->cur_no = s->p.no;
        flow_table_expire(w->ft, s->p.ts);
        worker_publish(w);
        atomic_store_explicit(&w->watermark, s->p.no, memory_order_release);
        break;
    case SLOT_END:
        worker_close(w);
        break;
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char name[16];
    snprintf(name, sizeof(name), "sw-worker-%u", w->idx % 100u); /* top -H, ps -L */
    pthread_setname_np(pthread_self(), name);
    for (;;) {
        uint64_t t = atomic_load_explicit(&w->tail, memory_order_relaxed);
        uint64_t h = w->head_cache;
        if (h <= t)
            h = w->head_cache = atomic_load_explicit(&w->head, memory_order_acquire);
        if (t == h) {
            for (int spin = 0; spin < SPIN_CONSUMER && t == h; spin++) {
                cpu_relax();
                h = w->head_cache = atomic_load_explicit(&w->head, memory_order_acquire);
            }
            if (t == h) {
                pthread_mutex_lock(&w->mu);
                atomic_store(&w->cons_sleeping, 1);
                if (atomic_load(&w->head) == t)
                    wait_ms(&w->not_empty, &w->mu, 2);
                atomic_store(&w->cons_sleeping, 0);
                pthread_mutex_unlock(&w->mu);
                continue;
            }
        }
        struct slot *s = &w->slots[t & w->mask];
        uint8_t kind = s->kind;
        worker_do(w, s);
        atomic_store_explicit(&w->tail, t + 1, memory_order_release);
        atomic_thread_fence(memory_order_seq_cst);
        if (atomic_load_explicit(&w->prod_sleeping, memory_order_relaxed)) {
            pthread_mutex_lock(&w->mu);
            pthread_cond_signal(&w->not_full);
            pthread_mutex_unlock(&w->mu);
        }
        if (kind != SLOT_PKT)
            wake_output(w);
        if (kind == SLOT_END)
            break;
    }
    return NULL;
}

/* Makes every filled slot visible to the worker and wakes it if it sleeps. */
static void ring_flush(struct worker *w)
{
    if (atomic_load_explicit(&w->head, memory_order_relaxed) == w->prod_head)
        return;
    atomic_store_explicit(&w->head, w->prod_head, memory_order_release);
    atomic_thread_fence(memory_order_seq_cst); /* the store above before the load below */
    if (atomic_load_explicit(&w->cons_sleeping, memory_order_relaxed)) {
        pthread_mutex_lock(&w->mu);
        pthread_cond_signal(&w->not_empty);
        pthread_mutex_unlock(&w->mu);
    }
}

/* Reserves the next slot of w's ring; NULL when full and live (dropped). */
static struct slot *ring_reserve(struct worker *w, bool may_drop)
{
    uint64_t h = w->prod_head;
    if (h - w->tail_cache <= w->mask)
        return &w->slots[h & w->mask];
    for (;;) {
        uint64_t t = w->tail_cache = atomic_load_explicit(&w->tail, memory_order_acquire);
        if (h - t <= w->mask)
            return &w->slots[h & w->mask];
        ring_flush(w); /* the worker must see everything before we wait for it */
        if (may_drop) {
            w->ring_dropped++;
            return NULL;
        }
        w->ring_waits++;
        for (int spin = 0; spin < 256; spin++) {
            cpu_relax();
            t = atomic_load_explicit(&w->tail, memory_order_acquire);
            if (h - t <= w->mask)
                return &w->slots[h & w->mask];
        }
        pthread_mutex_lock(&w->mu);
        atomic_store(&w->prod_sleeping, 1);
        if (h - atomic_load(&w->tail) > w->mask)
            wait_ms(&w->not_full, &w->mu, 2);
        atomic_store(&w->prod_sleeping, 0);
        pthread_mutex_unlock(&w->mu);
    }
}

static void ring_publish(struct worker *w)
{
    if (++w->prod_head - atomic_load_explicit(&w->head, memory_order_relaxed) >= RING_BATCH)
        ring_flush(w);
}

static bool slot_copy(struct slot *s, const struct pkt *p)
{
    s->kind = SLOT_PKT;
    s->p = *p;
    s->p.frame = NULL;
    if (p->payload_len > s->cap) {
        uint32_t nc = p->payload_len < 2048 ? 2048 : p->payload_len;
        uint8_t *nb = realloc(s->buf, nc);
        if (!nb)
            return false;
        s->buf = nb;
        s->cap = nc;
    }
    if (p->payload_len)
        memcpy(s->buf, p->payload, p->payload_len);
    s->p.payload = s->buf;
    return true;
}

/* ---- public ---- */

struct pipeline *pipeline_new(const struct pipeline_cfg *cfg, char *err, size_t errlen)
{
    struct pipeline *pl = calloc(1, sizeof(*pl));
    if (!pl) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pl->cfg = *cfg;
    pl->n = cfg->workers ? cfg->workers : 1;
    uint32_t slots = cfg->ring_slots ? cfg->ring_slots : 1024;
    while (slots & (slots - 1))
        slots &= slots - 1;
    pthread_mutex_init(&pl->out_wake_mu, NULL);
    pthread_cond_init(&pl->out_wake, NULL);
    pthread_cond_init(&pl->call_done, NULL);
    pthread_mutex_init(&pl->pub_mu, NULL);
    /* workers are cache-line aligned (their ring indices are) */
    pl->w = aligned_alloc(_Alignof(struct worker), pl->n * sizeof(*pl->w));
    if (pl->w)
        memset(pl->w, 0, pl->n * sizeof(*pl->w));
    if (!pl->w) {
        snprintf(err, errlen, "out of memory");
        free(pl);
        return NULL;
    }
    /* several workers fed by the capture thread: one ring and thread each */
    bool rings = !fed_inline(pl);
    for (unsigned i = 0; i < pl->n; i++) {
        struct worker *w = &pl->w[i];
        w->pl = pl;
        w->idx = i;
        pthread_mutex_init(&w->mu, NULL);
        pthread_mutex_init(&w->out_mu, NULL);
        pthread_cond_init(&w->out_taken, NULL);
        pthread_cond_init(&w->not_empty, NULL);
        pthread_cond_init(&w->not_full, NULL);
        struct smtp_cfg sc = cfg->smtp;
        sc.on_event = on_event;
        sc.event_ctx = w;
        w->sc = smtp_consumer_new(&sc);
        w->ft = w->sc ? flow_table_new(&cfg->flow, smtp_consumer_ops(w->sc)) : NULL;
        if (w->ft) /* sessions are charged to the flow table's memcap */
            smtp_consumer_bind(w->sc, w->ft);
        if (rings) {
            w->slots = calloc(slots, sizeof(*w->slots));
            w->mask = slots - 1;
        }
        if (!w->sc || !w->ft || (rings && !w->slots)) {
            snprintf(err, errlen, "worker %u: cannot allocate its flow table", i);
            pl->n = i + 1;
            pipeline_free(pl);
            return NULL;
        }
    }
    /* signals stay with the capture thread */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (unsigned i = 0; i < pl->n && rings; i++) {
        if (pthread_create(&pl->w[i].th, NULL, worker_main, &pl->w[i]) == 0)
            pl->w[i].started = true;
    }
    if (pthread_create(&pl->out_th, NULL, output_main, pl) == 0)
        pl->out_started = true;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    for (unsigned i = 0; i < pl->n; i++) {
        if ((rings && !pl->w[i].started) || !pl->out_started) {
            snprintf(err, errlen, "cannot start threads: %s", strerror(errno));
            pipeline_finish(pl);
            pipeline_free(pl);
            return NULL;
        }
    }
    return pl;
}

void pipeline_packet(struct pipeline *pl, const struct pkt *p)
{
    if (pl->n == 1) {
        pipeline_worker_packet(pl, 0, p, p->no);
        return;
    }
    struct worker *w = &pl->w[flow_hash(p) % pl->n];
    struct slot *s = ring_reserve(w, pl->cfg.live);
    if (!s)
        return;
    if (!slot_copy(s, p)) {
        w->ring_dropped++;
        return;
    }
    ring_publish(w);
}

/* ---- self-fed workers (live fanout) ---- */

void pipeline_worker_packet(struct pipeline *pl, unsigned i, const struct pkt *p, uint64_t key)
{
    struct worker *w = &pl->w[i];
    w->cur_no = key;
    flow_table_packet(w->ft, p);
    if (key > atomic_load_explicit(&w->watermark, memory_order_relaxed))
        atomic_store_explicit(&w->watermark, key, memory_order_release);
}

void pipeline_worker_tick(struct pipeline *pl, unsigned i, sw_usec now, uint64_t key, bool expire)
{
    struct worker *w = &pl->w[i];
    w->cur_no = key;
    if (expire) {
        flow_table_expire(w->ft, now);
        worker_publish(w);
    }
    if (key > atomic_load_explicit(&w->watermark, memory_order_relaxed))
        atomic_store_explicit(&w->watermark, key, memory_order_release);
    /* a hint without the lock: sessions queued wake the output at once */
    if (__atomic_load_n(&w->n_out, __ATOMIC_RELAXED) || expire)
        wake_output(w);
}

/* Worker i's input is over: its open flows are closed. */
static void worker_end(struct pipeline *pl, unsigned i)
{
    struct worker *w = &pl->w[i];
    if (!w->ft)
        return;
    worker_close(w);
    wake_output(w);
}

void pipeline_tick(struct pipeline *pl, sw_usec now, uint64_t pkt_no)
{
    if (pl->n == 1) {
        pipeline_worker_tick(pl, 0, now, pkt_no, true);
        return;
    }
    for (unsigned i = 0; i < pl->n; i++) {
        struct worker *w = &pl->w[i];
        /* ticks are never dropped: they keep the workers' clocks in step */
        struct slot *s = ring_reserve(w, false);
        s->kind = SLOT_TICK;
        memset(&s->p, 0, sizeof(s->p));
        s->p.ts = now;
        s->p.no = pkt_no;
        ring_publish(w);
        ring_flush(w);
    }
}

void pipeline_idle(struct pipeline *pl)
{
    if (fed_inline(pl))
        return;
    for (unsigned i = 0; i < pl->n; i++)
        ring_flush(&pl->w[i]); /* no packet waits for a batch to fill */
}

void pipeline_finish(struct pipeline *pl)
{
    for (unsigned i = 0; i < pl->n && fed_inline(pl); i++)
        worker_end(pl, i); /* the feeding threads are gone */
    for (unsigned i = 0; i < pl->n; i++) {
        struct worker *w = &pl->w[i];
        if (!w->started)
            continue;
        struct slot *s = ring_reserve(w, false);
        s->kind = SLOT_END;
        ring_publish(w);
        ring_flush(w);
    }
    for (unsigned i = 0; i < pl->n; i++) {
        if (pl->w[i].started) {
            pthread_join(pl->w[i].th, NULL);
            pl->w[i].started = false;
        }
        atomic_store(&pl->w[i].watermark, UINT64_MAX);
    }
    if (pl->out_started) {
        atomic_store(&pl->out_stop, 1);
        pthread_mutex_lock(&pl->out_wake_mu);
        pthread_cond_signal(&pl->out_wake);
        pthread_mutex_unlock(&pl->out_wake_mu);
        pthread_join(pl->out_th, NULL);
        pl->out_started = false;
    }
    pump(pl);
}

void pipeline_run_on_output(struct pipeline *pl, void (*fn)(void *arg), void *arg)
{
    if (!pl->out_started) {
        fn(arg);
        return;
    }
    pthread_mutex_lock(&pl->out_wake_mu);
    pl->call_fn = fn;
    pl->call_arg = arg;
    pthread_cond_signal(&pl->out_wake);
    while (pl->call_fn)
        pthread_cond_wait(&pl->call_done, &pl->out_wake_mu);
    pthread_mutex_unlock(&pl->out_wake_mu);
}

FILE *pipeline_swap_sessions_out(struct pipeline *pl, FILE *f)
{
    FILE *old = pl->cfg.sessions_out;
    pl->cfg.sessions_out = f;
    return old;
}

/* dst += src, counter by counter (structs made of uint64_t counters) */
static void add_counters(void *dst, const void *src, size_t size)
{
    uint64_t *d = dst;
    const uint64_t *s = src;
    for (size_t k = 0; k < size / sizeof(uint64_t); k++)
        d[k] += s[k];
}

void pipeline_get_stats(struct pipeline *pl, struct pipeline_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (!pl->out_started) /* joined: the counters as they are now */
        output_publish(pl);
    pthread_mutex_lock(&pl->pub_mu);
    for (unsigned i = 0; i < pl->n; i++) {
        struct worker *w = &pl->w[i];
        add_counters(&st->flow, &w->pub_flow, sizeof(w->pub_flow));
        add_counters(&st->smtp, &w->pub_smtp, sizeof(w->pub_smtp));
        st->output_waits += w->pub_out_waits;
        /* the ring's counters are the capture thread's own */
        st->ring_dropped += w->ring_dropped;
        st->ring_waits += w->ring_waits;
        st->copy_failed += __atomic_load_n(&w->copy_failed, __ATOMIC_RELAXED);
    }
    st->sessions_out = pl->pub_sessions_out;
    st->have_det = pl->cfg.det != NULL;
    st->det = pl->pub_det;
    st->pol = pl->pub_pol;
    st->rpt = pl->pub_rpt;
    pthread_mutex_unlock(&pl->pub_mu);
    st->sessions = __atomic_load_n(&pl->sessions_seen, __ATOMIC_RELAXED);
    st->sessions_tls = __atomic_load_n(&pl->sessions_tls, __ATOMIC_RELAXED);
}

void pipeline_free(struct pipeline *pl)
{
    if (!pl)
        return;
    for (unsigned i = 0; i < pl->n; i++) {
        struct worker *w = &pl->w[i];
        if (w->started)
            pthread_join(w->th, NULL);
        flow_table_free(w->ft);
        smtp_consumer_free(w->sc);
        if (w->slots) {
            for (uint32_t k = 0; k <= w->mask; k++)
                free(w->slots[k].buf);
            free(w->slots);
        }
        for (size_t k = 0; k < w->n_out; k++)
            facts_free(w->out[k].f);
        free(w->out);
        pthread_mutex_destroy(&w->mu);
        pthread_mutex_destroy(&w->out_mu);
        pthread_cond_destroy(&w->out_taken);
        pthread_cond_destroy(&w->not_empty);
        pthread_cond_destroy(&w->not_full);
    }
    for (size_t k = 0; k < pl->n_heap; k++)
        facts_free(pl->heap[k].f);
    free(pl->heap);
    jsonw_free(&pl->line);
    free(pl->w);
    pthread_mutex_destroy(&pl->out_wake_mu);
    pthread_cond_destroy(&pl->out_wake);
    pthread_cond_destroy(&pl->call_done);
    pthread_mutex_destroy(&pl->pub_mu);
    free(pl);
}
