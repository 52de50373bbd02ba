/* SPDX-License-Identifier: Apache-2.0 */
/* ndpi_smtp.c: is this flow on a non-standard port SMTP? The first bytes of
 * both directions are held (bounded), a SOCKS4/4a/5 (RFC 1928, RFC 1929) or HTTP
 * CONNECT (RFC 9110 9.3.6) handshake in front is skipped, and the rest is
 * given to nDPI 4.2 as synthesized IPv4/TCP packets (after a synthesized
 * three-way handshake, with consistent sequence numbers, documentation
 * addresses so that no IP-based rule fires, the real ports). nDPI's verdict
 * is the authority: SMTP or SMTPS -> the held bytes are replayed into the
 * SMTP session in their original order; another protocol, or no verdict
 * within the hold bounds -> the flow is ignored. */
#include <arpa/inet.h>
#include <ndpi/ndpi_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode/ndpi_smtp.h"
#include "decode/smtp_int.h"

#define HOLD_BYTES       8192 /* per direction */
#define HOLD_CHUNKS      64
#define NDPI_PAYLOAD_MAX 1400
#define NDPI_PKTS_MAX    16 /* payload packets given to nDPI before giving up */

struct ndpi_smtp {
    struct ndpi_detection_module_struct *mod;
};

struct hold_chunk {
    uint8_t dir;
    uint32_t len;
    struct stream_meta m;
};

struct ndpi_smtp_flow {
    struct ndpi_smtp *n;
    struct ndpi_flow_struct *flow;
    uint16_t cport, sport;
    uint32_t seq[2];
    bool handshake_sent;
    unsigned pkts;
    uint8_t *buf[2]; /* grown by doubling up to HOLD_BYTES */
    size_t len[2], cap[2];
    long prefix[2]; /* -1 not known yet */
    size_t fed[2];  /* bytes of each direction given to nDPI */
    struct hold_chunk chunks[HOLD_CHUNKS];
    size_t n_chunks;
};

struct ndpi_smtp *ndpi_smtp_new(void)
{
    struct ndpi_smtp *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->mod = ndpi_init_detection_module(ndpi_no_prefs);
    if (!n->mod) {
        free(n);
        return NULL;
    }
    NDPI_PROTOCOL_BITMASK all;
    NDPI_BITMASK_SET_ALL(all);
    ndpi_set_protocol_detection_bitmask2(n->mod, &all);
    ndpi_finalize_initialization(n->mod);
    return n;
}

void ndpi_smtp_free(struct ndpi_smtp *n)
{
    if (!n)
        return;
    ndpi_exit_detection_module(n->mod);
    free(n);
}

struct ndpi_smtp_flow *ndpi_smtp_flow_new(struct ndpi_smtp *n, const struct flow_info *fi)
{
    struct ndpi_smtp_flow *fl = calloc(1, sizeof *fl);
    if (!fl)
        return NULL;
    size_t sz = ndpi_detection_get_sizeof_ndpi_flow_struct();
    fl->flow = ndpi_flow_malloc(sz);
    if (!fl->flow) {
        free(fl);
        return NULL;
    }
    memset(fl->flow, 0, sz);
    fl->n = n;
    fl->cport = fi->cport;
    fl->sport = fi->sport;
    fl->seq[0] = 1000;
    fl->seq[1] = 5000;
    fl->prefix[0] = fl->prefix[1] = -1;
    return fl;
}

void ndpi_smtp_flow_free(struct ndpi_smtp_flow *fl)
{
    if (!fl)
        return;
    ndpi_free_flow(fl->flow);
    free(fl->buf[0]);
    free(fl->buf[1]);
    free(fl);
}

static size_t find_crlfcrlf(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i + 3 < n; i++)
        if (b[i] == '\r' && b[i + 1] == '\n' && b[i + 2] == '\r' && b[i + 3] == '\n')
            return i + 4;
    return 0;
}

/* A SOCKS5 request or reply: VER CMD/REP RSV ATYP ADDR PORT. */
static long socks5_msg(const uint8_t *b, size_t n, size_t off)
{
    if (n < off + 5)
        return -1;
    if (b[off] != 5)
        return 0;
    size_t alen;
    switch (b[off + 3]) {
    case 1:
        alen = 4;
        break;
    case 3:
        alen = 1 + (size_t)b[off + 4];
        break;
    case 4:
        alen = 16;
        break;
    default:
        return 0;
    }
    size_t end = off + 4 + alen + 2;
    return n < end ? -1 : (long)end;
}

long ndpi_smtp_proxy_prefix(enum stream_dir dir, const uint8_t *b, size_t n)
{
    if (n == 0)
        return -1;
    if (dir == DIR_C2S) {
        if (b[0] == 5) { /* greeting VER NMETHODS METHODS, then the request */
            if (n < 2)
                return -1;
            if (b[1] == 0 || b[1] > 16)
                return 0;
            size_t off = 2 + (size_t)b[1];
            if (n > off && b[off] == 1) {
                /* username/password sub-negotiation (RFC 1929): VER ULEN
                 * UNAME PLEN PASSWD, skipped, never kept */
                if (n < off + 2)
                    return -1;
                size_t p = off + 2 + b[off + 1];
                if (n < p + 1)
                    return -1;
                off = p + 1 + b[p];
            }
            return socks5_msg(b, n, off);
        }
        if (b[0] == 4) { /* VER CMD PORT IP USERID\0 [HOST\0 for 4a] */
            if (n < 9)
                return -1;
            if (b[1] != 1 && b[1] != 2)
                return 0;
            const uint8_t *z = memchr(b + 8, 0, n - 8);
            if (!z)
                return n > 512 ? 0 : -1;
            size_t end = (size_t)(z - b) + 1;
            if (b[4] == 0 && b[5] == 0 && b[6] == 0 && b[7] != 0) {
                z = memchr(b + end, 0, n - end);
                if (!z)
                    return n > 512 ? 0 : -1;
                end = (size_t)(z - b) + 1;
            }
            return (long)end;
        }
        if (n < 8)
            return memcmp(b, "CONNECT ", n) == 0 ? -1 : 0;
        if (memcmp(b, "CONNECT ", 8) != 0)
            return 0;
    } else {
        if (b[0] == 5) { /* method choice VER METHOD, then the reply */
            if (n < 2)
                return -1;
            if (b[1] == 2) { /* username/password: VER STATUS, then the reply */
                if (n < 4)
                    return -1;
                return b[2] == 1 ? socks5_msg(b, n, 4) : 0;
            }
            return socks5_msg(b, n, 2);
        }
        if (b[0] == 0) { /* SOCKS4 reply: 0 REP PORT IP */
            if (n < 2)
                return -1;
            if (b[1] < 0x5a || b[1] > 0x5d)
                return 0;
            return n < 8 ? -1 : 8;
        }
        if (n < 7)
            return memcmp(b, "HTTP/1.", n) == 0 ? -1 : 0;
        if (memcmp(b, "HTTP/1.", 7) != 0)
            return 0;
    }
    size_t end = find_crlfcrlf(b, n);
    if (end)
        return (long)end;
    return n >= HOLD_BYTES / 2 ? 0 : -1;
}

/* Builds one IPv4/TCP packet and hands it to nDPI. */
static ndpi_protocol ndpi_packet(struct ndpi_smtp_flow *fl, int dir, uint8_t flags,
                                 const uint8_t *pl, size_t len, sw_usec ts)
{
    uint8_t pkt[40 + NDPI_PAYLOAD_MAX];
    if (len > NDPI_PAYLOAD_MAX)
        len = NDPI_PAYLOAD_MAX;
    memset(pkt, 0, 40);
    uint16_t tot = (uint16_t)(40 + len);
    pkt[0] = 0x45;
    pkt[2] = (uint8_t)(tot >> 8);
    pkt[3] = (uint8_t)tot;
    pkt[6] = 0x40; /* DF */
    pkt[8] = 64;
    pkt[9] = 6;                                           /* TCP */
    uint8_t a[4] = {192, 0, 2, 1}, b[4] = {192, 0, 2, 2}; /* RFC 5737 */
    memcpy(pkt + 12, dir == 0 ? a : b, 4);
    memcpy(pkt + 16, dir == 0 ? b : a, 4);
    uint8_t *t = pkt + 20;
    uint16_t sp = dir == 0 ? fl->cport : fl->sport, dp = dir == 0 ? fl->sport : fl->cport;
    t[0] = (uint8_t)(sp >> 8);
    t[1] = (uint8_t)sp;
    t[2] = (uint8_t)(dp >> 8);
    t[3] = (uint8_t)dp;
    uint32_t seq = fl->seq[dir], ack = fl->seq[!dir];
    t[4] = (uint8_t)(seq >> 24);
    t[5] = (uint8_t)(seq >> 16);
    t[6] = (uint8_t)(seq >> 8);
    t[7] = (uint8_t)seq;
    if (flags & 0x10) {
        t[8] = (uint8_t)(ack >> 24);
        t[9] = (uint8_t)(ack >> 16);
        t[10] = (uint8_t)(ack >> 8);
        t[11] = (uint8_t)ack;
    }
    t[12] = 5 << 4;
    t[13] = flags;
    t[14] = 0xff;
    t[15] = 0xff;
    if (len)
        memcpy(pkt + 40, pl, len);
    fl->seq[dir] += (uint32_t)len + ((flags & 0x02) ? 1u : 0u);
    uint64_t ms = ts > 0 ? (uint64_t)(ts / 1000) : 0;
    return ndpi_detection_process_packet(fl->n->mod, fl->flow, pkt, tot, ms);
}

static bool is_smtp(ndpi_protocol p)
{
    return p.app_protocol == NDPI_PROTOCOL_MAIL_SMTP ||
           p.master_protocol == NDPI_PROTOCOL_MAIL_SMTP ||
           p.app_protocol == NDPI_PROTOCOL_MAIL_SMTPS ||
           p.master_protocol == NDPI_PROTOCOL_MAIL_SMTPS;
}

static void replay(struct smtp_session *s, struct ndpi_smtp_flow *fl)
{
    size_t pos[2] = {0, 0};
    for (size_t i = 0; i < fl->n_chunks; i++) {
        const struct hold_chunk *c = &fl->chunks[i];
        size_t b = pos[c->dir], e = b + c->len;
        pos[c->dir] = e;
        size_t skip = fl->prefix[c->dir] > 0 ? (size_t)fl->prefix[c->dir] : 0;
        if (e <= skip)
            continue;
        if (b < skip)
            b = skip;
        smtp_session_replay(s, (enum stream_dir)c->dir, fl->buf[c->dir] + b, e - b, &c->m);
    }
}

int ndpi_smtp_classify(struct smtp_session *s, enum stream_dir dir, const uint8_t *buf, size_t len,
                       const struct stream_meta *m)
{
    struct ndpi_smtp_flow *fl = s->ndpi;
    int d = dir == DIR_C2S ? 0 : 1;
    if (!fl || len > HOLD_BYTES - fl->len[d])
        return -1;
    if (fl->len[d] + len > fl->cap[d]) {
        size_t cap = fl->cap[d] ? fl->cap[d] : 512;
        while (cap < fl->len[d] + len)
            cap *= 2;
        if (cap > HOLD_BYTES)
            cap = HOLD_BYTES;
        uint8_t *nb = realloc(fl->buf[d], cap);
        if (!nb)
            return -1;
        fl->buf[d] = nb;
        fl->cap[d] = cap;
    }
    memcpy(fl->buf[d] + fl->len[d], buf, len);
    fl->len[d] += len;
    /* consecutive bytes of one direction make one held chunk: the order of
     * the two directions is what the replay must keep */
    if (fl->n_chunks && fl->chunks[fl->n_chunks - 1].dir == d) {
        fl->chunks[fl->n_chunks - 1].len += (uint32_t)len;
    } else {
        if (fl->n_chunks >= HOLD_CHUNKS)
            return -1;
        struct hold_chunk *c = &fl->chunks[fl->n_chunks++];
        c->dir = (uint8_t)d;
        c->len = (uint32_t)len;
        if (m)
            c->m = *m;
        else
            memset(&c->m, 0, sizeof c->m);
    }

    if (fl->prefix[d] < 0)
        fl->prefix[d] = ndpi_smtp_proxy_prefix(dir, fl->buf[d], fl->len[d]);
    if (fl->prefix[d] < 0)
        return 0;
    if (fl->fed[d] < (size_t)fl->prefix[d])
        fl->fed[d] = (size_t)fl->prefix[d];
    /* nDPI's SMTP dissector reads whole lines: give it complete lines only */
    size_t end = fl->len[d];
    while (end > fl->fed[d] && fl->buf[d][end - 1] != '\n')
        end--;
    if (end <= fl->fed[d])
        return 0;

    sw_usec ts = m ? m->ts : 0;
    if (!fl->handshake_sent) {
        fl->handshake_sent = true;
        ndpi_packet(fl, 0, 0x02, NULL, 0, ts);
        ndpi_packet(fl, 1, 0x12, NULL, 0, ts);
        ndpi_packet(fl, 0, 0x10, NULL, 0, ts);
    }
    ndpi_protocol p = ndpi_packet(fl, d, 0x18, fl->buf[d] + fl->fed[d], end - fl->fed[d], ts);
    fl->fed[d] = end;
    fl->pkts++;
#ifdef SW_SMTP_TRACE
    fprintf(stderr, "ndpi_smtp dir=%d prefix=%ld fed=%zu master=%u app=%u\n", d, fl->prefix[d], end,
            p.master_protocol, p.app_protocol);
#endif
    if (is_smtp(p)) {
        smtp_enter_state(s, SMTP_ST_COMMAND);
        s->ndpi = NULL;
        replay(s, fl);
        ndpi_smtp_flow_free(fl);
        return 1;
    }
    if (p.app_protocol != NDPI_PROTOCOL_UNKNOWN || p.master_protocol != NDPI_PROTOCOL_UNKNOWN)
        return -1;
    if (fl->pkts >= NDPI_PKTS_MAX)
        return -1;
    return 0;
}
