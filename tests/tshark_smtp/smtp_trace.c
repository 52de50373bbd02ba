/* SPDX-License-Identifier: Apache-2.0 */
/* smtp_trace.c: test tool: reads a capture with libpcap, runs it through the
 * decoder (pkt_decode, flow table, SMTP consumer) and prints what the SMTP
 * decoder extracted, one line per item, for comparison with tshark:
 *   CPORT SPORT C VERB     a client command (verb as sent, upper-cased)
 *   CPORT SPORT S CODE     a complete server reply
 *   CPORT SPORT CAP TEXT   a capability line of the first EHLO reply
 * usage: smtp_trace FILE [--any-port] */
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode/flow.h"
#include "decode/pkt.h"
#include "decode/smtp.h"

static void on_trace(void *ctx, const struct smtp_facts *f, enum stream_dir dir, const char *verb,
                     int code)
{
    (void)ctx;
    if (dir == DIR_C2S)
        printf("%u %u C %s\n", f->flow.cport, f->flow.sport, verb);
    else
        printf("%u %u S %d\n", f->flow.cport, f->flow.sport, code);
}

static void on_event(void *ctx, enum smtp_event ev, const struct smtp_facts *f)
{
    (void)ctx;
    if (ev != SMTP_EV_EHLO_REPLY)
        return;
    for (size_t i = 0; i < f->n_caps; i++)
        printf("%u %u CAP %s\n", f->flow.cport, f->flow.sport, facts_cap(f, i));
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: smtp_trace FILE [--any-port]\n");
        return 2;
    }
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *pc = pcap_open_offline(argv[1], err);
    if (!pc) {
        fprintf(stderr, "smtp_trace: %s: %s\n", argv[1], err);
        return 1;
    }
    struct smtp_cfg sc;
    smtp_cfg_defaults(&sc);
    sc.any_port = argc > 2 && strcmp(argv[2], "--any-port") == 0;
    sc.on_trace = on_trace;
    sc.on_event = on_event;
    struct smtp_consumer *cons = smtp_consumer_new(&sc);
    struct flow_cfg fc;
    flow_cfg_defaults(&fc);
    struct flow_table *ft = flow_table_new(&fc, smtp_consumer_ops(cons));
    struct frag_cfg frc = {1024, 4u << 20, 30 * SW_USEC_PER_SEC};
    struct frag_table *frt = frag_table_new(&frc);
    if (!cons || !ft || !frt) {
        fprintf(stderr, "smtp_trace: out of memory\n");
        return 1;
    }
    struct pcap_pkthdr *h;
    const u_char *data;
    uint64_t no = 0;
    int rc;
    while ((rc = pcap_next_ex(pc, &h, &data)) == 1) {
        struct pkt p;
        memset(&p, 0, sizeof p);
        p.ts = (sw_usec)h->ts.tv_sec * SW_USEC_PER_SEC + h->ts.tv_usec;
        p.no = ++no;
        p.frame = data;
        p.caplen = h->caplen;
        p.len = h->len;
        p.linktype = pcap_datalink(pc);
        if (pkt_decode(&p, frt) == PKT_TCP)
            flow_table_packet(ft, &p);
    }
    flow_table_free(ft);
    frag_table_free(frt);
    smtp_consumer_free(cons);
    pcap_close(pc);
    return 0;
}
