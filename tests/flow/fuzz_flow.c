/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_flow.c: libFuzzer target for the flow table and TCP reassembly
 * (RFC 9293): the input is a list of segments over a few connections, with
 * tight bounds so that queues, gaps, evictions and timeouts all happen.
 *
 * Input: one byte (bit 0: a roomy memcap), then records:
 * [ctl][flags][seq16][ack16][len] and len payload bytes, where ctl bit 0 =
 * from the client, bits 1-2 = which of 4 client ports, bit 3 = VLAN 7,
 * bits 4-7 = time step in seconds; seq/ack are offsets (little endian) from
 * fixed ISNs near 2^32. Checks: memory accounting returns to the bucket
 * array once every flow is gone, and the consumer sees open/close in pairs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode/flow.h"

struct fz {
    long open;
    uint64_t bytes;
};

static void *fz_open(void *ctx, const struct flow_info *fi)
{
    struct fz *z = ctx;
    if (fi->cport == 40003)
        return NULL; /* exercise tombstones */
    z->open++;
    return z;
}

static unsigned fz_data(void *st, enum stream_dir d, const uint8_t *b, size_t n,
                        const struct stream_meta *m)
{
    (void)d;
    (void)m;
    struct fz *z = st;
    z->bytes += n;
    /* stop buffering when a direction says "STOP" */
    if (n >= 4 && memcmp(b, "STOP", 4) == 0)
        return d == DIR_C2S ? STREAM_STOP_C2S : STREAM_STOP_S2C;
    return 0;
}

static unsigned fz_gap(void *st, enum stream_dir d, uint32_t len, const struct stream_meta *m)
{
    (void)st;
    (void)d;
    (void)len;
    (void)m;
    return 0;
}

static void fz_close(void *st, enum flow_end why, sw_usec ts)
{
    (void)why;
    (void)ts;
    ((struct fz *)st)->open--;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz z = {0, 0};
    struct stream_consumer sc = {
        .ctx = &z, .open = fz_open, .data = fz_data, .gap = fz_gap, .close = fz_close};
    struct flow_cfg cfg;
    flow_cfg_defaults(&cfg);
    cfg.max_queued_segs = 8;
    cfg.max_queued_bytes = 512;
    cfg.max_flows = 3;
    /* the first byte picks a tight memcap (evictions, refusals) or a roomy
     * one (retained bytes, which only use the lower half of the memcap) */
    cfg.memcap = 1024 * sizeof(void *) + (size && (data[0] & 1) ? 65536 : 4096);
    struct flow_table *t = flow_table_new(&cfg, &sc);
    if (!t)
        abort();
    uint64_t base = flow_table_stats(t)->bytes_in_use;
    sw_usec now = 1000 * SW_USEC_PER_SEC;
    uint64_t no = 0;
    size_t i = 1;
    while (i + 7 <= size) {
        uint8_t ctl = data[i], flags = data[i + 1];
        uint32_t seq = (uint32_t)data[i + 2] | (uint32_t)data[i + 3] << 8;
        uint32_t ack = (uint32_t)data[i + 4] | (uint32_t)data[i + 5] << 8;
        size_t len = data[i + 6];
        i += 7;
        if (len > size - i)
            len = size - i;
        struct pkt p;
        memset(&p, 0, sizeof(p));
        now += (sw_usec)(ctl >> 4) * SW_USEC_PER_SEC;
        p.ts = now;
        p.no = ++no;
        bool from_client = ctl & 1;
        uint16_t cport = (uint16_t)(40000 + ((ctl >> 1) & 3));
        struct sw_addr c = {.family = 4, .b = {192, 0, 2, 10}};
        struct sw_addr s = {.family = 4, .b = {198, 51, 100, 25}};
        p.src = from_client ? c : s;
        p.dst = from_client ? s : c;
        p.sport = from_client ? cport : 25;
        p.dport = from_client ? 25 : cport;
        if (ctl & 8) {
            p.vlan[0] = 7;
            p.n_vlan = 1;
        }
        uint32_t isn_c = 0xffffff00u, isn_s = 0x7fffff00u;
        p.seq = (from_client ? isn_c : isn_s) + seq;
        p.ack = (from_client ? isn_s : isn_c) + ack;
        p.tcp_flags = flags & 0x1f;
        p.win = (flags & 0x80) ? 0 : 1000;
        p.payload = data + i;
        p.payload_len = (uint32_t)len;
        i += len;
        flow_table_packet(t, &p);
        flow_table_expire(t, now);
    }
    /* far in the future: everything times out, memory returns */
    flow_table_expire(t, now + 3600 * SW_USEC_PER_SEC);
    flow_table_expire(t, now + 3601 * SW_USEC_PER_SEC);
    const struct flow_stats *st = flow_table_stats(t);
    if (st->flows_active != 0 || st->bytes_in_use != base || z.open != 0)
        abort();
    flow_table_free(t);
    return 0;
}
