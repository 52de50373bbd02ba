/* SPDX-License-Identifier: Apache-2.0 */
/* flow_fixture.h: the flow table tests' fixture (test code): a consumer that
 * records its callbacks as text lines, and hand-built segments of one
 * client/server pair. */
#ifndef SW_TEST_FLOW_FIXTURE_H
#define SW_TEST_FLOW_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "decode/flow.h"
#include "decode/flow_int.h"

/* ---- the recording consumer ---- */

struct rec {
    char log[16384];
    size_t len;
    bool log_packets;
    bool log_meta;       /* add ttl/ip_id to data lines */
    bool ignore;         /* open() returns NULL */
    const char *stop_on; /* data containing this returns stop_bits */
    unsigned stop_bits;
    int opens, closes;
    char uid[18];
    int state_token; /* open() returns &state_token */
    bool lazy;       /* want() every flow: open() at the first byte, gap or overlap */
    bool log_want;
};

__attribute__((format(printf, 2, 3))) static inline void rec_add(struct rec *r, const char *fmt,
                                                                 ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->log + r->len, sizeof(r->log) - r->len, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof(r->log) - r->len);
    r->len += (size_t)n;
}

static inline const char *dname(enum stream_dir d)
{
    return d == DIR_C2S ? "c2s" : "s2c";
}

static struct rec *g_rec;

static inline void *rec_open(void *ctx, const struct flow_info *fi)
{
    struct rec *r = ctx;
    char c[64], s[64];
    sw_addr_str(&fi->client, c, sizeof(c));
    sw_addr_str(&fi->server, s, sizeof(s));
    r->opens++;
    memcpy(r->uid, fi->uid, sizeof(r->uid));
    rec_add(r, "open %s:%u > %s:%u vlan=%u mid=%d pkt=%llu\n", c, fi->cport, s, fi->sport, fi->vlan,
            fi->midstream, (unsigned long long)fi->first_pkt);
    return r->ignore ? NULL : r;
}

static inline unsigned rec_data(void *st, enum stream_dir d, const uint8_t *buf, size_t len,
                                const struct stream_meta *m)
{
    struct rec *r = st;
    if (r->log_meta)
        rec_add(r, "%s data '%.*s' #%llu ttl=%u id=%u v%u\n", dname(d), (int)len, (const char *)buf,
                (unsigned long long)m->pkt_no, m->ttl, m->ip_id, m->ip_version);
    else
        rec_add(r, "%s data '%.*s' #%llu\n", dname(d), (int)len, (const char *)buf,
                (unsigned long long)m->pkt_no);
    if (r->stop_on && memmem(buf, len, r->stop_on, strlen(r->stop_on)))
        return r->stop_bits;
    return 0;
}

static inline unsigned rec_gap(void *st, enum stream_dir d, uint32_t len,
                               const struct stream_meta *m)
{
    struct rec *r = st;
    rec_add(r, "%s gap %u #%llu\n", dname(d), len, (unsigned long long)m->pkt_no);
    return 0;
}

static inline void rec_packet(void *st, enum stream_dir d, const struct stream_meta *m,
                              uint8_t flags)
{
    struct rec *r = st;
    if (r->log_packets)
        rec_add(r, "%s pkt #%llu flags=%02x\n", dname(d), (unsigned long long)m->pkt_no, flags);
}

static inline void rec_conflict(void *st, enum stream_dir d, const struct stream_meta *m,
                                const struct stream_overlap *ov)
{
    struct rec *r = st;
    rec_add(r, "%s conflict #%llu at %lld '%.*s' kept, '%.*s' dropped\n", dname(d),
            (unsigned long long)m->pkt_no, (long long)ov->rel, (int)ov->len,
            (const char *)ov->first, (int)ov->len, (const char *)ov->second);
}

static inline void rec_close(void *st, enum flow_end why, sw_usec ts)
{
    struct rec *r = st;
    r->closes++;
    rec_add(r, "close %s t=%lld\n", flow_end_str(why), (long long)(ts / SW_USEC_PER_SEC));
}

static inline bool rec_want(void *ctx, const struct flow_info *fi)
{
    struct rec *r = ctx;
    if (r->log_want)
        rec_add(r, "want %u\n", fi->cport);
    return true;
}

static inline void rec_unopened(void *ctx, enum flow_end why)
{
    struct rec *r = ctx;
    if (r->log_want)
        rec_add(r, "unopened %s\n", flow_end_str(why));
}

static inline struct stream_consumer rec_consumer(struct rec *r)
{
    struct stream_consumer c = {
        .ctx = r,
        .open = rec_open,
        .data = rec_data,
        .gap = rec_gap,
        .packet = rec_packet,
        .overlap_conflict = rec_conflict,
        .close = rec_close,
    };
    if (r->lazy) {
        c.want = rec_want;
        c.unopened = rec_unopened;
    }
    return c;
}

/* ---- packet builder ---- */

#define SYN PKT_TH_SYN
#define ACK PKT_TH_ACK
#define FIN PKT_TH_FIN
#define RST PKT_TH_RST
#define PSH PKT_TH_PUSH

struct side {
    struct sw_addr addr;
    uint16_t port;
};

struct fx {
    struct rec r;
    struct flow_cfg cfg;
    struct flow_table *t;
    struct side cli, srv;
    uint16_t vlan;
    uint64_t no;
    sw_usec ts;
    uint8_t ttl;
    uint16_t ip_id;
};

static inline struct sw_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    struct sw_addr x;
    memset(&x, 0, sizeof(x));
    x.family = 4;
    x.b[0] = a;
    x.b[1] = b;
    x.b[2] = c;
    x.b[3] = d;
    return x;
}

static inline void fx_init(struct fx *f)
{
    memset(f, 0, sizeof(*f));
    flow_cfg_defaults(&f->cfg);
    f->cli.addr = v4(192, 0, 2, 10);
    f->cli.port = 40000;
    f->srv.addr = v4(198, 51, 100, 25);
    f->srv.port = 25;
    f->ts = 1000 * SW_USEC_PER_SEC;
    f->ttl = 64;
    g_rec = &f->r;
}

static inline void fx_start(struct fx *f)
{
    struct stream_consumer c = rec_consumer(&f->r);
    f->t = flow_table_new(&f->cfg, &c);
    assert_non_null(f->t);
}

/* Sends one segment; from_client picks the direction. */
static inline void seg_ex(struct fx *f, bool from_client, uint8_t flags, uint32_t seq, uint32_t ack,
                          const char *data, size_t len)
{
    struct pkt p;
    memset(&p, 0, sizeof(p));
    p.ts = f->ts;
    p.no = ++f->no;
    const struct side *s = from_client ? &f->cli : &f->srv;
    const struct side *d = from_client ? &f->srv : &f->cli;
    p.src = s->addr;
    p.dst = d->addr;
    p.sport = s->port;
    p.dport = d->port;
    if (f->vlan) {
        p.vlan[0] = f->vlan;
        p.n_vlan = 1;
    }
    p.ttl = f->ttl;
    p.ip_id = f->ip_id;
    p.seq = seq;
    p.ack = ack;
    p.tcp_flags = flags;
    p.win = 65535;
    p.payload = (const uint8_t *)data;
    p.payload_len = (uint32_t)len;
    flow_table_packet(f->t, &p);
}

static inline void seg(struct fx *f, bool from_client, uint8_t flags, uint32_t seq, uint32_t ack,
                       const char *data)
{
    seg_ex(f, from_client, flags, seq, ack, data, data ? strlen(data) : 0);
}

#define C true
#define S false

/* client ISN 1000, server ISN 5000 */
static inline void handshake(struct fx *f)
{
    seg(f, C, SYN, 1000, 0, NULL);
    seg(f, S, SYN | ACK, 5000, 1001, NULL);
    seg(f, C, ACK, 1001, 5001, NULL);
}

static inline void fx_end(struct fx *f)
{
    flow_table_free(f->t);
    f->t = NULL;
}

#define OPEN_STD "open 192.0.2.10:40000 > 198.51.100.25:25 vlan=0 mid=0 pkt=1\n"

#endif
