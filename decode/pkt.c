/* SPDX-License-Identifier: Apache-2.0 */
/* pkt.c: link, IP and TCP decoding of one frame (IEEE 802.3, 802.1Q/802.1ad,
 * Linux cooked v1/v2, BSD null/loop, raw IP; RFC 791, RFC 8200, RFC 9293).
 * Every byte is read through pkt_rd; checksums are never verified (offload
 * makes most local captures wrong), so nothing is dropped for them. */
#include <string.h>

#include "decode/pkt.h"
#include "decode/pkt_frag.h"
#include "decode/pkt_rd.h"

#define ETH_IPV4     0x0800
#define ETH_IPV6     0x86DD
#define ETH_VLAN     0x8100
#define ETH_QINQ     0x88A8
#define ETH_QINQ_OLD 0x9100
#define PKT_MAX_VLAN 4 /* tags accepted in one frame */
#define PKT_MAX_EXT  8 /* IPv6 extension headers followed */
#define IPPROTO_TCP_ 6

const char *pkt_status_str(enum pkt_status s)
{
    switch (s) {
    case PKT_TCP:
        return "tcp";
    case PKT_NOT_TCP:
        return "not_tcp";
    case PKT_FRAG_PENDING:
        return "frag_pending";
    case PKT_ERR_LINK:
        return "err_link";
    case PKT_ERR_IP:
        return "err_ip";
    case PKT_ERR_TCP:
        return "err_tcp";
    case PKT_ERR_FRAG:
        return "err_frag";
    case PKT_STATUS_COUNT:
        break;
    }
    return "unknown";
}

static inline uint16_t be16(const uint8_t *b)
{
    return (uint16_t)(b[0] << 8 | b[1]);
}

static inline uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* struct pkt tcp_opt_hash (FNV-1a folded to 8 bits). */
static uint8_t tcp_opt_hash(const uint8_t *opts, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len;) {
        uint8_t k = opts[i];
        h = (h ^ k) * 16777619u;
        if (k == 0)
            break; /* end of list */
        if (k == 1) {
            i++;
            continue;
        }
        if (i + 1 >= len || opts[i + 1] < 2 || i + opts[i + 1] > len)
            break; /* malformed: what came before is the layout */
        uint8_t ol = opts[i + 1];
        if (k == 2 || k == 3) /* MSS, window scale: their values belong to the stack */
            for (uint8_t j = 2; j < ol; j++)
                h = (h ^ opts[i + j]) * 16777619u;
        i += ol;
    }
    return (uint8_t)(h ^ (h >> 8) ^ (h >> 16) ^ (h >> 24));
}

/* TCP header at r (seg_len bytes of segment captured from r's position). */
static enum pkt_status decode_tcp(struct pkt *p, const uint8_t *seg, size_t seg_len)
{
    /* the fixed 20 bytes checked once, then read in place (per packet) */
    if (seg_len < 20)
        return PKT_ERR_TCP;
    size_t hlen = (size_t)(seg[12] >> 4) * 4;
    if (hlen < 20 || hlen > seg_len)
        return PKT_ERR_TCP;
    p->sport = be16(seg);
    p->dport = be16(seg + 2);
    p->seq = be32(seg + 4);
    p->ack = be32(seg + 8);
    p->win = be16(seg + 14);
    /* options are read only for their structure (MSS, WS, SACK, TS are not
     * needed downstream); a malformed list is ignored, as end hosts do */
    p->tcp_flags = seg[13];
    /* only SYNs: their options say what stack answers (flow_syn_ack_fp) */
    p->tcp_opt_hash = (seg[13] & PKT_TH_SYN) ? tcp_opt_hash(seg + 20, hlen - 20) : 0;
    p->payload = seg + hlen;
    p->payload_len = (uint32_t)(seg_len - hlen);
    return PKT_TCP;
}

/* The key of p's datagram (addresses of its family, protocol, identification). */
static void frag_key_init(struct frag_key *k, const struct pkt *p, uint8_t family, uint8_t proto,
                          uint32_t id)
{
    size_t alen = family == 4 ? 4 : 16;
    memset(k, 0, sizeof(*k));
    k->family = family;
    k->proto = proto;
    memcpy(k->src, p->src.b, alen);
    memcpy(k->dst, p->dst.b, alen);
    k->id = id;
}

/* IPv6 extension chain starting with next header nh at data[0..len). */
static enum pkt_status ip6_chain(struct pkt *p, struct frag_table *ft, uint8_t nh,
                                 const uint8_t *data, size_t len, bool reassembled)
{
    struct pkt_rd r;
    pkt_rd_init(&r, data, len);
    for (int n = 0; n <= PKT_MAX_EXT; n++) {
        uint8_t next, hl;
        switch (nh) {
        case IPPROTO_TCP_:
            return decode_tcp(p, pkt_rd_ptr(&r), pkt_rd_left(&r));
        case 0:  /* hop-by-hop */
        case 43: /* routing */
        case 60: /* destination options */
            if (!pkt_rd_u8(&r, &next) || !pkt_rd_u8(&r, &hl) ||
                !pkt_rd_skip(&r, (size_t)hl * 8 + 6))
                return PKT_ERR_IP;
            nh = next;
            break;
        case 51: /* AH: length in 4-octet units minus 2 */
            if (!pkt_rd_u8(&r, &next) || !pkt_rd_u8(&r, &hl) ||
                !pkt_rd_skip(&r, (size_t)hl * 4 + 6))
                return PKT_ERR_IP;
            nh = next;
            break;
        case 44: { /* fragment */
            uint8_t res;
            uint16_t offm;
            uint32_t id;
            if (!pkt_rd_u8(&r, &next) || !pkt_rd_u8(&r, &res) || !pkt_rd_u16(&r, &offm) ||
                !pkt_rd_u32(&r, &id))
                return PKT_ERR_IP;
            uint32_t foff = (uint32_t)(offm & 0xFFF8u);
            bool more = offm & 1u;
            if (foff == 0 && !more) { /* atomic fragment (RFC 6946) */
                nh = next;
                break;
            }
            if (reassembled || !ft)
                return PKT_ERR_FRAG;
            struct frag_key k;
            frag_key_init(&k, p, 6, next, id);
            struct frag_done d;
            enum pkt_status st = frag_add(ft, &k, p->ts, p->ttl, 0, foff, more, pkt_rd_ptr(&r),
                                          (uint32_t)pkt_rd_left(&r), &d);
            if (st != PKT_TCP)
                return st;
            p->reassembled = true;
            p->ttl = d.ttl; /* of the first fragment, as for IPv4 */
            return ip6_chain(p, ft, next, d.data, d.len, true);
        }
        default: /* 59 no next header, UDP, ICMPv6, ESP...: not for us */
            return PKT_NOT_TCP;
        }
    }
    return PKT_ERR_IP; /* too many extension headers */
}

static enum pkt_status decode_ip6(struct pkt *p, struct frag_table *ft, struct pkt_rd *r)
{
    uint32_t vtf;
    uint16_t plen;
    uint8_t nh, hlim;
    if (!pkt_rd_u32(r, &vtf) || !pkt_rd_u16(r, &plen) || !pkt_rd_u8(r, &nh) ||
        !pkt_rd_u8(r, &hlim) || !pkt_rd_bytes(r, p->src.b, 16) || !pkt_rd_bytes(r, p->dst.b, 16))
        return PKT_ERR_IP;
    if ((vtf >> 28) != 6)
        return PKT_ERR_IP;
    p->src.family = p->dst.family = 6;
    p->ttl = hlim;
    p->ip_id = 0;
    size_t avail = pkt_rd_left(r);
    size_t len = plen;
    if (plen == 0 && nh != 0)
        return PKT_ERR_IP; /* jumbograms (RFC 2675) need a hop-by-hop option */
    if (plen == 0)
        len = avail;
    if (len > avail) {
        if (p->caplen >= p->len)
            return PKT_ERR_IP; /* the datagram claims more than the frame holds */
        len = avail;           /* cut by the snap length */
    }
    return ip6_chain(p, ft, nh, pkt_rd_ptr(r), len, false);
}

/* IPv4 options: type 0 ends, 1 is one byte, the rest carry a length >= 2. */
static bool ip4_options_ok(const uint8_t *o, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (o[i] == 0)
            return true;
        if (o[i] == 1) {
            i++;
            continue;
        }
        if (i + 1 >= len || o[i + 1] < 2 || i + o[i + 1] > len)
            return false;
        i += o[i + 1];
    }
    return true;
}

static enum pkt_status decode_ip4(struct pkt *p, struct frag_table *ft, struct pkt_rd *r)
{
    /* the fixed 20 bytes checked once, then read in place (per packet) */
    const uint8_t *hdr = pkt_rd_ptr(r);
    if (!pkt_rd_skip(r, 20))
        return PKT_ERR_IP;
    uint8_t vihl = hdr[0], ttl = hdr[8], proto = hdr[9];
    uint16_t tot = be16(hdr + 2), id = be16(hdr + 4), fo = be16(hdr + 6);
    memset(&p->src, 0, sizeof(p->src));
    memset(&p->dst, 0, sizeof(p->dst));
    memcpy(p->src.b, hdr + 12, 4);
    memcpy(p->dst.b, hdr + 16, 4);
    if ((vihl >> 4) != 4)
        return PKT_ERR_IP;
    size_t hlen = (size_t)(vihl & 0x0F) * 4;
    if (hlen < 20 || !pkt_rd_skip(r, hlen - 20))
        return PKT_ERR_IP;
    if (!ip4_options_ok(hdr + 20, hlen - 20))
        return PKT_ERR_IP;
    p->src.family = p->dst.family = 4;
    p->ttl = ttl;
    p->ip_id = id;
    size_t avail = pkt_rd_left(r);
    size_t plen;
    if (tot == 0) {
        plen = avail; /* TCP segmentation offload writes 0 */
    } else {
        if (tot < hlen)
            return PKT_ERR_IP;
        plen = tot - hlen;
        if (plen > avail) {
            if (p->caplen >= p->len)
                return PKT_ERR_IP;
            plen = avail; /* cut by the snap length */
        }
    }
    /* bytes past tot are Ethernet padding and are ignored */
    uint32_t foff = (uint32_t)(fo & 0x1FFFu) * 8;
    bool more = fo & 0x2000u;
    if (foff == 0 && !more) {
        if (proto != IPPROTO_TCP_)
            return PKT_NOT_TCP;
        return decode_tcp(p, pkt_rd_ptr(r), plen);
    }
    if (proto != IPPROTO_TCP_)
        return PKT_NOT_TCP; /* fragments of other protocols are not kept */
    if (!ft)
        return PKT_ERR_FRAG;
    struct frag_key k;
    frag_key_init(&k, p, 4, proto, id);
    struct frag_done d;
    enum pkt_status st =
        frag_add(ft, &k, p->ts, ttl, id, foff, more, pkt_rd_ptr(r), (uint32_t)plen, &d);
    if (st != PKT_TCP)
        return st;
    p->reassembled = true;
    p->ttl = d.ttl;
    p->ip_id = d.ip_id;
    return decode_tcp(p, d.data, d.len);
}

static enum pkt_status decode_l3(struct pkt *p, struct frag_table *ft, struct pkt_rd *r,
                                 uint16_t etype)
{
    if (etype == ETH_IPV4)
        return decode_ip4(p, ft, r);
    if (etype == ETH_IPV6)
        return decode_ip6(p, ft, r);
    return PKT_NOT_TCP;
}

/* Version nibble decides (raw IP, and payloads whose family is unclear). */
static enum pkt_status decode_raw(struct pkt *p, struct frag_table *ft, struct pkt_rd *r)
{
    if (pkt_rd_left(r) < 1)
        return PKT_ERR_IP;
    uint8_t v = pkt_rd_ptr(r)[0] >> 4;
    if (v == 4)
        return decode_ip4(p, ft, r);
    if (v == 6)
        return decode_ip6(p, ft, r);
    return PKT_ERR_IP;
}

/* Ethertype dispatch with 802.1Q / 802.1ad tags (any number up to PKT_MAX_VLAN). */
static enum pkt_status decode_ethertype(struct pkt *p, struct frag_table *ft, struct pkt_rd *r,
                                        uint16_t etype)
{
    int tags = 0;
    while (etype == ETH_VLAN || etype == ETH_QINQ || etype == ETH_QINQ_OLD) {
        uint16_t tci;
        if (tags == PKT_MAX_VLAN)
            return PKT_ERR_LINK;
        if (!pkt_rd_u16(r, &tci) || !pkt_rd_u16(r, &etype))
            return PKT_ERR_LINK;
        uint16_t vid = tci & 0x0FFFu;
        if (tags < 2)
            p->vlan[tags] = vid;
        else
            p->vlan[1] = vid; /* keep the outermost and the innermost */
        tags++;
        p->n_vlan = (uint8_t)(tags < 2 ? tags : 2);
    }
    if (etype <= 1500)
        return PKT_NOT_TCP; /* 802.3 length field: LLC/SNAP, not IP for us */
    return decode_l3(p, ft, r, etype);
}

static enum pkt_status decode_null(struct pkt *p, struct frag_table *ft, struct pkt_rd *r,
                                   bool network_order)
{
    uint8_t b[4];
    if (!pkt_rd_bytes(r, b, 4))
        return PKT_ERR_LINK;
    uint32_t be = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
    uint32_t le = ((uint32_t)b[3] << 24) | ((uint32_t)b[2] << 16) | ((uint32_t)b[1] << 8) | b[0];
    /* DLT_NULL is in the capturing host's byte order: accept either */
    uint32_t fam = network_order ? be : (be < 256 ? be : le);
    switch (fam) {
    case 2: /* AF_INET everywhere */
        return decode_ip4(p, ft, r);
    case 10: /* Linux */
    case 24: /* NetBSD, OpenBSD, BSD/OS */
    case 28: /* FreeBSD */
    case 30: /* Darwin */
        return decode_ip6(p, ft, r);
    default:
        return PKT_NOT_TCP;
    }
}

bool pkt_linktype_supported(int linktype)
{
    switch (linktype) {
    case PKT_DLT_EN10MB:
    case PKT_DLT_LINUX_SLL:
    case PKT_DLT_LINUX_SLL2:
    case PKT_DLT_RAW:
    case 14:
    case PKT_DLT_RAW_101:
    case 228:
    case 229:
    case PKT_DLT_NULL:
    case PKT_DLT_LOOP:
        return true;
    default:
        return false;
    }
}

enum pkt_status pkt_decode(struct pkt *p, struct frag_table *ft)
{
    struct pkt_rd r;
    p->n_vlan = 0;
    p->vlan[0] = p->vlan[1] = 0;
    p->reassembled = false;
    p->payload = NULL;
    p->payload_len = 0;
    p->tcp_flags = 0;
    p->ip_id = 0;
    p->ttl = 0;
    if (!p->frame)
        return PKT_ERR_LINK;
    pkt_rd_init(&r, p->frame, p->caplen);
    uint16_t etype;
    switch (p->linktype) {
    case PKT_DLT_EN10MB:
        if (!pkt_rd_skip(&r, 12) || !pkt_rd_u16(&r, &etype))
            return PKT_ERR_LINK;
        return decode_ethertype(p, ft, &r, etype);
    case PKT_DLT_LINUX_SLL:
        /* packet type, ARPHRD, address length, 8 address bytes, protocol */
        if (!pkt_rd_skip(&r, 14) || !pkt_rd_u16(&r, &etype))
            return PKT_ERR_LINK;
        return decode_ethertype(p, ft, &r, etype);
    case PKT_DLT_LINUX_SLL2:
        /* protocol, reserved, ifindex, ARPHRD, packet type, address length, 8 address bytes */
        if (!pkt_rd_u16(&r, &etype) || !pkt_rd_skip(&r, 18))
            return PKT_ERR_LINK;
        return decode_ethertype(p, ft, &r, etype);
    case PKT_DLT_RAW:
    case 14: /* DLT_RAW on OpenBSD */
    case PKT_DLT_RAW_101:
        return decode_raw(p, ft, &r);
    case 228: /* LINKTYPE_IPV4 */
        return decode_ip4(p, ft, &r);
    case 229: /* LINKTYPE_IPV6 */
        return decode_ip6(p, ft, &r);
    case PKT_DLT_NULL:
        return decode_null(p, ft, &r, false);
    case PKT_DLT_LOOP:
        return decode_null(p, ft, &r, true);
    default:
        return PKT_ERR_LINK;
    }
}
