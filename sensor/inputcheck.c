/* SPDX-License-Identifier: Apache-2.0 */
/* inputcheck.c: per-file counts of frames the decoder could not read (link
 * type, snap length) and the one-line reports at the end of a run. No RFC. */
#include "sensor/inputcheck.h"

#include <pcap/pcap.h>
#include <stdint.h>
#include <stdlib.h>

struct src_count {
    uint64_t frames, decoded;
    uint64_t bad_linktype;     /* link type not decoded */
    int linktype;              /* the first one not decoded */
    uint64_t tcp;              /* TCP segments, decoded or not (PKT_TCP + PKT_ERR_TCP) */
    uint64_t cut_link, cut_ip; /* undecodable, shorter than on the wire */
    uint64_t cut_tcp;          /* TCP header cut */
    uint64_t cut_payload;      /* decoded, but the payload is cut */
    uint32_t max_cut_caplen;   /* snap length when the file header does not say */
};

struct input_check {
    const struct capture *cap;
    size_t n;
    struct src_count *c;
};

struct input_check *input_check_new(const struct capture *cap)
{
    struct input_check *ic = calloc(1, sizeof(*ic));
    if (!ic)
        return NULL;
    ic->cap = cap;
    ic->n = capture_n_src(cap);
    ic->c = calloc(ic->n ? ic->n : 1, sizeof(*ic->c));
    if (!ic->c) {
        free(ic);
        return NULL;
    }
    return ic;
}

void input_check_packet(struct input_check *ic, const struct capture_pkt *cp, enum pkt_status st)
{
    if (!ic || cp->src >= ic->n)
        return;
    struct src_count *c = &ic->c[cp->src];
    bool cut = cp->caplen < cp->len;
    c->frames++;
    if (cut && cp->caplen > c->max_cut_caplen)
        c->max_cut_caplen = cp->caplen;
    switch (st) {
    case PKT_TCP:
        c->decoded++;
        c->tcp++;
        c->cut_payload += cut;
        break;
    case PKT_NOT_TCP:
    case PKT_FRAG_PENDING:
    case PKT_ERR_FRAG: /* the frame was read; its datagram was not kept */
        c->decoded++;
        break;
    case PKT_ERR_LINK:
        if (!pkt_linktype_supported(cp->linktype)) {
            if (!c->bad_linktype)
                c->linktype = cp->linktype;
            c->bad_linktype++;
        } else {
            c->cut_link += cut;
        }
        break;
    case PKT_ERR_IP:
        c->cut_ip += cut;
        break;
    case PKT_ERR_TCP:
        c->tcp++;
        c->cut_tcp += cut;
        break;
    case PKT_STATUS_COUNT:
        break;
    }
}

#define U(x) ((unsigned long long)(x))

bool input_check_report(const struct input_check *ic, FILE *out)
{
    bool ok = true;
    for (size_t i = 0; ic && i < ic->n; i++) {
        const struct src_count *c = &ic->c[i];
        const char *name = capture_src_name(ic->cap, i);
        int snap = capture_src_snaplen(ic->cap, i);
        if (snap <= 0)
            snap = (int)c->max_cut_caplen;
        bool said = true;
        if (c->bad_linktype) {
            const char *ln = pcap_datalink_val_to_name(c->linktype);
            fprintf(out,
                    "stripwatch: %s: link type %d%s%s%s not supported: %llu of %llu frames "
                    "not decoded\n",
                    name, c->linktype, ln ? " (" : "", ln ? ln : "", ln ? ")" : "",
                    U(c->bad_linktype), U(c->frames));
        } else if (c->cut_tcp) {
            fprintf(out,
                    "stripwatch: %s: snap length %d cuts TCP headers: %llu of %llu TCP packets "
                    "undecodable\n",
                    name, snap, U(c->cut_tcp), U(c->tcp));
        } else if (c->cut_ip || c->cut_link) {
            fprintf(out,
                    "stripwatch: %s: snap length %d cuts %s headers: %llu of %llu frames "
                    "undecodable\n",
                    name, snap, c->cut_ip ? "IP" : "link", U(c->cut_ip + c->cut_link),
                    U(c->frames));
        } else if (c->cut_payload) {
            fprintf(out,
                    "stripwatch: %s: snap length %d cuts TCP payload: %llu of %llu TCP packets "
                    "truncated (the missing bytes are gaps in their streams)\n",
                    name, snap, U(c->cut_payload), U(c->tcp));
        } else {
            said = false;
        }
        if (c->frames && !c->decoded) {
            ok = false;
            if (!said)
                fprintf(out, "stripwatch: %s: none of its %llu frames could be decoded\n", name,
                        U(c->frames));
        }
    }
    return ok;
}

void input_check_free(struct input_check *ic)
{
    if (!ic)
        return;
    free(ic->c);
    free(ic);
}
