/* SPDX-License-Identifier: Apache-2.0 */
/* reasm.c: TCP stream reassembly per direction, with out-of-order queues,
 * first-copy-wins overlaps, explicit gaps and stop-buffering.
 * RFC 9293 (TCP), RFC 1982 (serial arithmetic), RFC 7323 (window bound),
 * RFC 9293 section 3.8.6.1 (zero-window probes), RFC 1122 4.2.3.6 (keep-alives).
 *
 * Policy, in one place:
 * - Bytes before the next expected sequence number were already delivered:
 *   dropped (a segment entirely before it counts as a retransmission).
 * - Overlapping copies of the same stream offset: the first copy seen wins;
 *   a later copy with different bytes is reported (overlap_conflict, with
 *   both copies around the first difference and their stream offset), for
 *   queued bytes and for delivered bytes the peer has not ACKed yet (kept,
 *   up to REASM_RETAIN_MAX per direction; what the receiver ACKed is moot).
 * - Keep-alives (at most one byte just below the next expected one) and
 *   zero-window probes (one byte while the peer's window is 0) are not data.
 * - Segments more than 2^30 beyond the next expected byte are dropped.
 * - A hole becomes a gap event (never glued) when: the other side ACKed
 *   beyond it and then either sends data itself (it answers what we never
 *   saw) or the sender goes on past the ACKed point, or both FINs are seen;
 *   when the per-direction queue bound or the memcap is hit; or when the
 *   flow closes (RST, timeout, eviction, shutdown). A bare ACK beyond the
 *   hole only records the point: captures often hold the ACK before the data
 *   it acknowledges, and tshark delivers those bytes too.
 * - A gap declared at close, with no packet at its origin, carries a meta
 *   with the table clock as ts and pkt_no 0. */
#include <stdlib.h>
#include <string.h>

#include "decode/flow_int.h"

static void seg_free(struct flow_table *t, struct flow_dir *fd, struct seg *s)
{
    fd->q_n--;
    fd->q_bytes -= s->len;
    flow_mem_release(t, sizeof(*s) + s->len);
    free(s);
}

static void queue_free(struct flow_table *t, struct flow_dir *fd)
{
    while (fd->q) {
        struct seg *s = fd->q;
        fd->q = s->next;
        seg_free(t, fd, s);
    }
}

/* The spare class of a buffer of cap bytes, or -1 when it is not kept. */
static int spare_class(uint32_t cap)
{
    for (int c = 0; c < REASM_SPARE_CLASSES; c++)
        if (cap == 64u << c)
            return c;
    return -1;
}

/* Frees r, or keeps it for reuse (its next link in its data). */
static void retain_release(struct flow_table *t, struct retain *r)
{
    int c = spare_class(r->cap);
    if (c < 0 || t->n_spare[c] >= REASM_SPARE_MAX) {
        free(r);
        return;
    }
    memcpy(r->data, &t->spare[c], sizeof(t->spare[c]));
    t->spare[c] = r;
    t->n_spare[c]++;
}

/* Takes the first spare buffer of class c (NULL: none). */
static struct retain *spare_pop(struct flow_table *t, int c)
{
    struct retain *r = t->spare[c];
    if (r) {
        memcpy(&t->spare[c], r->data, sizeof(t->spare[c]));
        t->n_spare[c]--;
    }
    return r;
}

/* A buffer of cap bytes: a spare one, or a new one (NULL: out of memory). */
static struct retain *retain_alloc(struct flow_table *t, uint32_t cap)
{
    int c = spare_class(cap);
    struct retain *r = c >= 0 ? spare_pop(t, c) : NULL;
    return r ? r : malloc(sizeof(struct retain) + cap);
}

void reasm_table_free(struct flow_table *t)
{
    for (int c = 0; c < REASM_SPARE_CLASSES; c++)
        for (struct retain *r; (r = spare_pop(t, c)) != NULL;)
            free(r);
}

static void retain_free(struct flow_table *t, struct flow_dir *fd)
{
    if (fd->r) {
        flow_mem_release(t, sizeof(*fd->r) + fd->r->cap);
        retain_release(t, fd->r);
        fd->r = NULL;
    }
}

void reasm_free(struct flow_table *t, struct flow *f)
{
    for (int d = 0; d < 2; d++) {
        queue_free(t, &f->d[d]);
        retain_free(t, &f->d[d]);
    }
}

/* The retention ring: r->len bytes from r->head (mod cap, a power of two),
 * the oldest being stream byte r->seq. */
static void ring_put(struct retain *r, uint32_t at, const uint8_t *buf, uint32_t n)
{
    uint32_t pos = (r->head + at) & (r->cap - 1);
    uint32_t first = r->cap - pos < n ? r->cap - pos : n;
    memcpy(r->data + pos, buf, first);
    memcpy(r->data, buf + first, n - first);
}

static void ring_get(const struct retain *r, uint32_t at, uint8_t *out, uint32_t n)
{
    uint32_t pos = (r->head + at) & (r->cap - 1);
    uint32_t first = r->cap - pos < n ? r->cap - pos : n;
    memcpy(out, r->data + pos, first);
    memcpy(out + first, r->data, n - first);
}

static bool ring_differs(const struct retain *r, uint32_t at, const uint8_t *buf, uint32_t n)
{
    uint32_t pos = (r->head + at) & (r->cap - 1);
    uint32_t first = r->cap - pos < n ? r->cap - pos : n;
    return memcmp(r->data + pos, buf, first) != 0 || memcmp(r->data, buf + first, n - first) != 0;
}

/* Grows r (or allocates it) to hold want bytes; false when the memcap or
 * malloc say no (the retention is then dropped). */
static bool retain_grow(struct flow_table *t, struct flow_dir *fd, uint32_t want)
{
    struct retain *r = fd->r;
    uint32_t cap = r ? r->cap : 0;
    uint32_t ncap = cap ? cap : 64;
    while (ncap < want && ncap < REASM_RETAIN_MAX)
        ncap *= 2;
    size_t charge = (r ? 0 : sizeof(*r)) + (ncap - cap);
    struct retain *nr = NULL;
    if (flow_mem_try(t, charge)) {
        nr = retain_alloc(t, ncap);
        if (!nr)
            flow_mem_release(t, charge);
    }
    if (!nr) {
        retain_free(t, fd);
        return false;
    }
    nr->cap = ncap;
    nr->head = 0;
    nr->seq = r ? r->seq : 0;
    nr->len = 0;
    if (r && r->len) {
        uint32_t first = r->cap - r->head < r->len ? r->cap - r->head : r->len;
        memcpy(nr->data, r->data + r->head, first);
        memcpy(nr->data + first, r->data, r->len - first);
        nr->len = r->len;
    }
    if (r)
        retain_release(t, r);
    fd->r = nr;
    return true;
}

/* Keeps the delivered bytes [seq, seq+len) until the peer ACKs them. */
static void retain_add(struct flow_table *t, struct flow_dir *fd, uint32_t seq, const uint8_t *buf,
                       uint32_t len)
{
    struct retain *r = fd->r;
    if (r && r->seq + r->len != seq)
        r->len = 0; /* not contiguous (a gap): start again */
    if (r && r->len == 0) {
        r->seq = seq;
        r->head = 0;
    }
    uint32_t want = (r ? r->len : 0) + len;
    if ((!r || r->cap < want) && (!r || r->cap < REASM_RETAIN_MAX)) {
        if (!retain_grow(t, fd, want))
            return;
        r = fd->r;
        if (r->len == 0)
            r->seq = seq;
    }
    if (len >= r->cap) {
        memcpy(r->data, buf + (len - r->cap), r->cap);
        r->head = 0;
        r->seq = seq + (len - r->cap);
        r->len = r->cap;
        return;
    }
    if (r->len + len > r->cap) {
        uint32_t drop = r->len + len - r->cap;
        r->head = (r->head + drop) & (r->cap - 1);
        r->len -= drop;
        r->seq += drop;
    }
    ring_put(r, r->len, buf, len);
    r->len += len;
}

/* The peer ACKed up to ack: forget what it acknowledged. A small buffer is
 * freed once empty (idle flows cost nothing); a large one stays for the
 * next bytes of a bulk transfer. */
static void retain_ack(struct flow_table *t, struct flow_dir *fd, uint32_t ack)
{
    struct retain *r = fd->r;
    if (!r || !seq_gt(ack, r->seq))
        return;
    uint32_t n = ack - r->seq;
    if (n >= r->len) {
        if (r->cap <= REASM_RETAIN_KEEP) {
            retain_free(t, fd);
            return;
        }
        n = r->len;
    }
    r->head = (r->head + n) & (r->cap - 1);
    r->seq += n;
    r->len -= n;
}

/* A copy of already delivered bytes: does it say the same thing? */
static bool retain_differs(const struct flow_dir *fd, uint32_t seq, const uint8_t *buf,
                           uint32_t len)
{
    const struct retain *r = fd->r;
    if (!r || !r->len)
        return false;
    uint32_t lo = seq_gt(seq, r->seq) ? seq : r->seq;
    uint32_t hi = seq_lt(seq + len, r->seq + r->len) ? seq + len : r->seq + r->len;
    if (!seq_lt(lo, hi))
        return false;
    return ring_differs(r, lo - r->seq, buf + (lo - seq), hi - lo);
}

/* Applies the consumer's stop bits (from data() or gap()). */
static void apply_stop(struct flow_table *t, struct flow *f, unsigned bits)
{
    for (int d = 0; d < 2; d++) {
        if (!(bits & (d == DIR_C2S ? STREAM_STOP_C2S : STREAM_STOP_S2C)))
            continue;
        if (f->d[d].flags & FD_STOP)
            continue;
        f->d[d].flags |= FD_STOP;
        queue_free(t, &f->d[d]);
        retain_free(t, &f->d[d]);
    }
}

/* The consumer's state exists (a lazy flow is opened now); when it does not,
 * both directions stop. */
static bool ready(struct flow_table *t, struct flow *f)
{
    if (flow_consumer_ready(t, f))
        return true;
    apply_stop(t, f, STREAM_STOP_C2S | STREAM_STOP_S2C);
    return false;
}

static void deliver(struct flow_table *t, struct flow *f, enum stream_dir dir, const uint8_t *buf,
                    uint32_t len, const struct stream_meta *m)
{
    struct flow_dir *fd = &f->d[dir];
    retain_add(t, fd, fd->next, buf, len);
    fd->next += len;
    t->st.bytes_delivered += len;
    if (!ready(t, f))
        return;
    unsigned bits = t->c.data ? t->c.data(f->cstate, dir, buf, len, m) : 0;
    if (bits)
        apply_stop(t, f, bits);
}

static void emit_gap(struct flow_table *t, struct flow *f, enum stream_dir dir, uint32_t len,
                     const struct stream_meta *m)
{
    struct flow_dir *fd = &f->d[dir];
    fd->next += len;
    t->st.gaps++;
    t->st.gap_bytes += len;
    if (!ready(t, f))
        return;
    unsigned bits = t->c.gap ? t->c.gap(f->cstate, dir, len, m) : 0;
    if (bits)
        apply_stop(t, f, bits);
}

/* Marks the FIN as reached when the stream got up to it. */
static void fin_check(struct flow_dir *fd)
{
    if ((fd->flags & (FD_FIN | FD_FIN_DONE)) == FD_FIN && fd->next == fd->fin_seq) {
        fd->flags |= FD_FIN_DONE;
        fd->next++;
    }
}

/* Delivers queued pieces that start at or before next. */
static void drain(struct flow_table *t, struct flow *f, enum stream_dir dir)
{
    struct flow_dir *fd = &f->d[dir];
    while (fd->q && !(fd->flags & FD_STOP) && seq_le(fd->q->seq, fd->next)) {
        struct seg *s = fd->q;
        fd->q = s->next;
        uint32_t end = s->seq + s->len;
        if (seq_gt(end, fd->next)) {
            uint32_t off = fd->next - s->seq;
            deliver(t, f, dir, s->data + off, s->len - off, &s->m);
        }
        seg_free(t, fd, s);
    }
    fin_check(fd);
}

/* Declares the hole before the first queued piece and delivers from it on.
 * The stream moves past the hole: used when a bound forces progress. */
static void force_head(struct flow_table *t, struct flow *f, enum stream_dir dir)
{
    struct flow_dir *fd = &f->d[dir];
    if (!fd->q)
        return;
    if (seq_gt(fd->q->seq, fd->next))
        emit_gap(t, f, dir, fd->q->seq - fd->next, &fd->q->m);
    drain(t, f, dir);
}

static bool queue_piece(struct flow_table *t, struct flow_dir *fd, struct seg **pp, uint32_t seq,
                        const uint8_t *buf, uint32_t len, const struct stream_meta *m,
                        const struct flow *f)
{
    size_t sz = sizeof(struct seg) + len;
    if (!flow_mem_reserve(t, sz, f))
        return false;
    struct seg *s = malloc(sz);
    if (!s) {
        flow_mem_release(t, sz);
        return false;
    }
    s->seq = seq;
    s->len = len;
    s->m = *m;
    memcpy(s->data, buf, len);
    s->next = *pp;
    *pp = s;
    fd->q_n++;
    fd->q_bytes += len;
    return true;
}

/* Hands both copies of [seq, seq+n) to the consumer: the bytes around the
 * first difference, at most STREAM_OVERLAP_MAX (struct stream_overlap). */
static void report_conflict(struct flow_table *t, struct flow *f, enum stream_dir dir,
                            const struct stream_meta *m, uint32_t seq, const uint8_t *first,
                            const uint8_t *second, uint32_t n)
{
    if (!t->c.overlap_conflict || !flow_consumer_ready(t, f))
        return;
    uint32_t diff = 0;
    while (diff < n && first[diff] == second[diff])
        diff++;
    uint32_t lo = diff > 128 ? diff - 128 : 0;
    uint32_t len = n - lo < STREAM_OVERLAP_MAX ? n - lo : STREAM_OVERLAP_MAX;
    struct stream_overlap ov = {(int64_t)(int32_t)(seq + lo - f->d[dir].next), first + lo,
                                second + lo, len};
    t->c.overlap_conflict(f->cstate, dir, m, &ov);
}

/* Inserts [seq, seq+len) into the queue, keeping what is already queued
 * (first copy wins) and reporting overlaps whose bytes differ. */
static bool queue_insert(struct flow_table *t, struct flow *f, enum stream_dir dir, uint32_t seq,
                         const uint8_t *buf, uint32_t len, const struct stream_meta *m)
{
    struct flow_dir *fd = &f->d[dir];
    struct seg **pp = &fd->q;
    uint32_t cur = seq, end = seq + len;
    bool conflict = false, overlapped = false, queued = false, refused = false;
    const struct seg *cq = NULL; /* the first queued copy that differs */
    uint32_t c_lo = 0, c_hi = 0;
    while (seq_lt(cur, end)) {
        while (*pp && seq_le((*pp)->seq + (*pp)->len, cur))
            pp = &(*pp)->next;
        struct seg *q = *pp;
        if (!q || seq_ge(q->seq, end)) {
            if (queue_piece(t, fd, pp, cur, buf + (cur - seq), end - cur, m, f))
                queued = true;
            else
                refused = true;
            break;
        }
        if (seq_gt(q->seq, cur)) {
            if (!queue_piece(t, fd, pp, cur, buf + (cur - seq), q->seq - cur, m, f)) {
                refused = true;
                break;
            }
            queued = true;
            pp = &(*pp)->next;
            cur = q->seq;
        }
        uint32_t ov_end = seq_lt(end, q->seq + q->len) ? end : q->seq + q->len;
        overlapped = true;
        if (memcmp(buf + (cur - seq), q->data + (cur - q->seq), ov_end - cur) != 0 && !conflict) {
            conflict = true;
            cq = q;
            c_lo = cur;
            c_hi = ov_end;
        }
        cur = ov_end;
    }
    if (queued && seq != fd->next)
        t->st.segs_ooo_queued++;
    else if (overlapped && !conflict)
        t->st.segs_retransmitted++;
    if (overlapped)
        t->st.overlaps++;
    if (conflict) {
        t->st.overlap_conflicts++;
        report_conflict(t, f, dir, m, c_lo, cq->data + (c_lo - cq->seq), buf + (c_lo - seq),
                        c_hi - c_lo);
    }
    return !refused;
}

/* Payload bytes [seq, seq+len) of direction dir. */
static void reasm_data(struct flow_table *t, struct flow *f, enum stream_dir dir, uint32_t seq,
                       const uint8_t *buf, uint32_t len, const struct stream_meta *m)
{
    struct flow_dir *fd = &f->d[dir];
    const struct flow_dir *od = &f->d[!dir];

    /* a keep-alive: one byte (or none) just below the next expected one */
    if (len <= 1 && seq == fd->next - 1)
        return;
    /* a zero-window probe: the peer's window is closed; the byte will be
     * sent again when it opens */
    if (len == 1 && seq == fd->next && (od->flags & FD_WIN0))
        return;
    if (seq_lt(seq, fd->next) && retain_differs(fd, seq, buf, len)) {
        /* the first copy was delivered; this one says something else */
        t->st.overlaps++;
        t->st.overlap_conflicts++;
        const struct retain *r = fd->r;
        uint32_t lo = seq_gt(seq, r->seq) ? seq : r->seq;
        uint32_t hi = seq_lt(seq + len, r->seq + r->len) ? seq + len : r->seq + r->len;
        uint8_t first[REASM_RETAIN_MAX];
        ring_get(r, lo - r->seq, first, hi - lo);
        report_conflict(t, f, dir, m, lo, first, buf + (lo - seq), hi - lo);
    }
    for (;;) {
        if (fd->flags & FD_STOP)
            return;
        if (seq_le(seq + len, fd->next)) {
            t->st.segs_retransmitted++;
            return;
        }
        if (seq_lt(seq, fd->next)) {
            uint32_t skip = fd->next - seq;
            t->st.overlaps++;
            seq += skip;
            buf += skip;
            len -= skip;
        }
        if (seq - fd->next >= REASM_WINDOW_LIMIT) {
            t->st.segs_ooo_dropped++;
            return;
        }
        if (!fd->q && seq == fd->next) {
            deliver(t, f, dir, buf, len, m);
            fin_check(fd);
            return;
        }
        bool fits = fd->q_n < t->cfg.max_queued_segs &&
                    (uint64_t)fd->q_bytes + len <= t->cfg.max_queued_bytes;
        if (fits && queue_insert(t, f, dir, seq, buf, len, m)) {
            drain(t, f, dir);
            return;
        }
        /* a bound (queue or memcap) is hit: the hole before the queue (or
         * before this segment) will not be filled in time; declare it and
         * move on */
        if (fd->q)
            force_head(t, f, dir);
        else
            emit_gap(t, f, dir, seq - fd->next, m);
    }
}

/* The peer acknowledged bytes up to ack in direction dir: whatever we did not
 * see below ack was lost to the capture, declare it. */
static void reasm_ack(struct flow_table *t, struct flow *f, enum stream_dir dir, uint32_t ack,
                      const struct stream_meta *m)
{
    struct flow_dir *fd = &f->d[dir];
    fd->flags &= (uint8_t)~FD_ACKED;
    if ((fd->flags & (FD_KNOWN | FD_STOP)) != FD_KNOWN || !seq_gt(ack, fd->next))
        return;
    if (ack - fd->next >= REASM_WINDOW_LIMIT)
        return;
    uint32_t limit = ack;
    if ((fd->flags & (FD_FIN | FD_FIN_DONE)) == FD_FIN && seq_gt(limit, fd->fin_seq))
        limit = fd->fin_seq;
    while (seq_lt(fd->next, limit) && !(fd->flags & FD_STOP)) {
        if (fd->q && seq_le(fd->q->seq, fd->next)) {
            drain(t, f, dir);
        } else if (fd->q && seq_lt(fd->q->seq, limit)) {
            emit_gap(t, f, dir, fd->q->seq - fd->next, &fd->q->m);
        } else {
            emit_gap(t, f, dir, limit - fd->next, m);
        }
    }
    drain(t, f, dir);
}

void reasm_packet(struct flow_table *t, struct flow *f, enum stream_dir dir, const struct pkt *p,
                  const struct stream_meta *m)
{
    struct flow_dir *fd = &f->d[dir];
    uint8_t fl = p->tcp_flags;
    uint32_t seq = p->seq;

    fd->flags |= FD_SEEN;
    if (fl & PKT_TH_SYN) {
        if (!(fd->flags & FD_SYN)) {
            /* a first SYN sets the stream's origin (unless a midstream base
             * was already taken from an earlier packet) */
            if (!(fd->flags & FD_KNOWN))
                fd->next = seq + 1;
            fd->flags |= FD_SYN | FD_KNOWN;
            fd->isn = seq;
        }
        /* a SYN-ACK tells where the other direction starts */
        struct flow_dir *od = &f->d[!dir];
        if ((fl & PKT_TH_ACK) && !(od->flags & FD_KNOWN)) {
            od->next = p->ack;
            od->flags |= FD_KNOWN;
        }
        seq++;
    } else if (!(fd->flags & FD_KNOWN)) {
        fd->next = seq; /* midstream pickup: the stream starts here */
        fd->flags |= FD_KNOWN;
    }
    if (fl & PKT_TH_ACK) {
        if (p->win == 0)
            fd->flags |= FD_WIN0;
        else
            fd->flags &= (uint8_t)~FD_WIN0;
        struct flow_dir *od = &f->d[!dir];
        retain_ack(t, od, p->ack);
        if ((od->flags & FD_KNOWN) && seq_gt(p->ack, od->next) &&
            p->ack - od->next < REASM_WINDOW_LIMIT &&
            (!(od->flags & FD_ACKED) || seq_gt(p->ack, od->acked))) {
            od->acked = p->ack;
            od->flags |= FD_ACKED;
        }
        /* the peer speaks after ACKing bytes we never saw: declare them */
        if (p->payload_len && (od->flags & FD_ACKED))
            reasm_ack(t, f, (enum stream_dir) !dir, od->acked, m);
    }
    /* the sender went past the point its peer ACKed: the hole below that
     * point will not be filled */
    if (p->payload_len && (fd->flags & FD_ACKED) && seq_ge(seq, fd->acked))
        reasm_ack(t, f, dir, fd->acked, m);
    if (p->payload_len) {
        if (fd->flags & FD_STOP) {
            /* not delivered, but followed: sequence checks stay valid */
            t->st.segs_after_stop++;
            if (seq_gt(seq + p->payload_len, fd->next) &&
                seq + p->payload_len - fd->next < REASM_WINDOW_LIMIT) {
                uint32_t n = seq + p->payload_len - fd->next;
                fd->next = seq + p->payload_len;
                if (t->c.skipped && f->cstate)
                    t->c.skipped(f->cstate, dir, n);
            }
        } else
            reasm_data(t, f, dir, seq, p->payload, p->payload_len, m);
    }
    if ((fl & PKT_TH_FIN) && !(fd->flags & FD_FIN)) {
        fd->flags |= FD_FIN;
        fd->fin_seq = seq + p->payload_len;
        if (fd->flags & FD_STOP) {
            fd->flags |= FD_FIN_DONE;
        } else if (fd->q) {
            drain(t, f, dir);
        } else {
            fin_check(fd);
        }
    }
    /* both sides closed: what was ACKed and not seen is lost */
    if ((f->d[0].flags & FD_FIN) && (f->d[1].flags & FD_FIN))
        for (int d = 0; d < 2; d++)
            if ((f->d[d].flags & (FD_ACKED | FD_FIN_DONE)) == FD_ACKED)
                reasm_ack(t, f, (enum stream_dir)d, f->d[d].acked, m);
}

/* Delivers a direction's queue at close, holes becoming gaps. */
static void flush_dir(struct flow_table *t, struct flow *f, enum stream_dir dir)
{
    struct flow_dir *fd = &f->d[dir];
    if (fd->flags & FD_ACKED) {
        struct stream_meta m = {.ts = t->clock};
        reasm_ack(t, f, dir, fd->acked, &m);
    }
    while (fd->q && !(fd->flags & FD_STOP))
        force_head(t, f, dir);
    queue_free(t, fd);
}

void reasm_flush(struct flow_table *t, struct flow *f)
{
    flush_dir(t, f, DIR_C2S);
    flush_dir(t, f, DIR_S2C);
}
