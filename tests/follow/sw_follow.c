/* SPDX-License-Identifier: Apache-2.0 */
/* sw_follow.c: test tool: reassembles every TCP flow of a capture with the
 * sensor's decoder and flow table and prints both streams, one JSON object
 * per flow, for comparison with `tshark -z follow,tcp,raw`. RFC 9293.
 *
 * Usage: sw_follow FILE
 * Output lines: {"uid":..., "client":..., "cport":..., "server":...,
 *   "sport":..., "vlan":..., "midstream":..., "first_pkt":..., "end":...,
 *   "c2s":"<hex>", "s2c":"<hex>", "gaps":[["c2s",offset,len],...],
 *   "conflicts":N}
 * The hex streams hold only delivered bytes; "gaps" says where bytes were
 * missing (offset into the delivered stream) and how many. Streams are capped
 * at 64 MiB per direction (a longer one exits with an error). */
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode/flow.h"
#include "decode/pkt.h"

#define FOLLOW_MAX_STREAM (64u << 20)
#define FOLLOW_MAX_GAPS   4096

struct buf {
    uint8_t *p;
    size_t len, cap;
};

struct gap {
    int dir;
    size_t off;
    uint32_t len;
};

struct fstate {
    struct flow_info fi;
    struct buf s[2];
    struct gap gaps[FOLLOW_MAX_GAPS];
    size_t n_gaps;
    unsigned conflicts;
};

static void die(const char *msg)
{
    fprintf(stderr, "sw_follow: %s\n", msg);
    exit(1);
}

static void buf_add(struct buf *b, const uint8_t *d, size_t n)
{
    if (b->len + n > FOLLOW_MAX_STREAM)
        die("stream longer than 64 MiB");
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + n)
            nc *= 2;
        uint8_t *np = realloc(b->p, nc);
        if (!np)
            die("out of memory");
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void *f_open(void *ctx, const struct flow_info *fi)
{
    (void)ctx;
    struct fstate *s = calloc(1, sizeof(*s));
    if (!s)
        die("out of memory");
    s->fi = *fi;
    return s;
}

static unsigned f_data(void *st, enum stream_dir d, const uint8_t *b, size_t n,
                       const struct stream_meta *m)
{
    (void)m;
    struct fstate *s = st;
    buf_add(&s->s[d], b, n);
    return 0;
}

static unsigned f_gap(void *st, enum stream_dir d, uint32_t len, const struct stream_meta *m)
{
    (void)m;
    struct fstate *s = st;
    if (s->n_gaps == FOLLOW_MAX_GAPS)
        die("more than 4096 gaps in one flow");
    s->gaps[s->n_gaps++] = (struct gap){.dir = d, .off = s->s[d].len, .len = len};
    return 0;
}

static void f_conflict(void *st, enum stream_dir d, const struct stream_meta *m,
                       const struct stream_overlap *ov)
{
    (void)ov;
    (void)d;
    (void)m;
    ((struct fstate *)st)->conflicts++;
}

static void put_hex(const struct buf *b)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < b->len; i++) {
        putchar(hx[b->p[i] >> 4]);
        putchar(hx[b->p[i] & 15]);
    }
}

static void f_close(void *st, enum flow_end why, sw_usec ts)
{
    (void)ts;
    struct fstate *s = st;
    char c[64], v[64];
    sw_addr_str(&s->fi.client, c, sizeof(c));
    sw_addr_str(&s->fi.server, v, sizeof(v));
    printf("{\"uid\":\"%s\",\"client\":\"%s\",\"cport\":%u,\"server\":\"%s\",\"sport\":%u,"
           "\"vlan\":%u,\"midstream\":%s,\"first_pkt\":%llu,\"end\":\"%s\",\"c2s\":\"",
           s->fi.uid, c, s->fi.cport, v, s->fi.sport, s->fi.vlan,
           s->fi.midstream ? "true" : "false", (unsigned long long)s->fi.first_pkt,
           flow_end_str(why));
    put_hex(&s->s[DIR_C2S]);
    printf("\",\"s2c\":\"");
    put_hex(&s->s[DIR_S2C]);
    printf("\",\"gaps\":[");
    for (size_t i = 0; i < s->n_gaps; i++)
        printf("%s[\"%s\",%zu,%u]", i ? "," : "", s->gaps[i].dir == DIR_C2S ? "c2s" : "s2c",
               s->gaps[i].off, s->gaps[i].len);
    printf("],\"conflicts\":%u}\n", s->conflicts);
    free(s->s[0].p);
    free(s->s[1].p);
    free(s);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: sw_follow FILE\n");
        return 2;
    }
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *pc = pcap_open_offline(argv[1], err);
    if (!pc) {
        fprintf(stderr, "sw_follow: %s: %s\n", argv[1], err);
        return 1;
    }
    struct flow_cfg cfg;
    flow_cfg_defaults(&cfg);
    struct stream_consumer sc = {
        .open = f_open,
        .data = f_data,
        .gap = f_gap,
        .overlap_conflict = f_conflict,
        .close = f_close,
    };
    struct flow_table *t = flow_table_new(&cfg, &sc);
    struct frag_cfg fc = {
        .max_datagrams = 1024, .max_bytes = 4u << 20, .timeout = 30 * SW_USEC_PER_SEC};
    struct frag_table *ft = frag_table_new(&fc);
    if (!t || !ft)
        die("out of memory");
    int dlt = pcap_datalink(pc);
    struct pcap_pkthdr *h;
    const u_char *data;
    uint64_t no = 0;
    int rc;
    while ((rc = pcap_next_ex(pc, &h, &data)) == 1) {
        struct pkt p;
        memset(&p, 0, sizeof(p));
        p.ts = (sw_usec)h->ts.tv_sec * SW_USEC_PER_SEC + h->ts.tv_usec;
        p.no = ++no;
        p.frame = data;
        p.caplen = h->caplen;
        p.len = h->len;
        p.linktype = dlt;
        if (pkt_decode(&p, ft) == PKT_TCP) {
            flow_table_packet(t, &p);
            flow_table_expire(t, p.ts);
        }
    }
    if (rc == PCAP_ERROR)
        fprintf(stderr, "sw_follow: %s: %s\n", argv[1], pcap_geterr(pc));
    flow_table_free(t);
    frag_table_free(ft);
    pcap_close(pc);
    return rc == PCAP_ERROR ? 1 : 0;
}
