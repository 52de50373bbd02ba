/* SPDX-License-Identifier: Apache-2.0 */
/* capture.c: packet sources: a live interface through libpcap, or capture
 * files (pcap, pcapng, "-" for stdin) merged in timestamp order (ties: the
 * file given first wins). Files whose pcapng interfaces mix link types go
 * through the own pcapng reader; BPF filters apply to every source.
 * Regular classic pcap files (version 2.4) are read from a memory map of the
 * file libpcap opened (no read() copy of every byte); the first record that
 * is not plainly well-formed hands the file back to libpcap at that offset,
 * so errors and odd records behave exactly as libpcap has them.
 * Live with fanout N > 1: N libpcap handles on the interface, whose AF_PACKET
 * sockets join one PACKET_FANOUT group (hash of the flow, both directions
 * alike, IPv4 fragments reassembled before the hash), one per worker. */
#include <errno.h>
#include <linux/if_packet.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "sensor/capture.h"

#define CAPTURE_MAX_LINKTYPES 16 /* compiled filters kept per link type */

/* A classic pcap file read from its memory map. */
struct capture_map {
    const uint8_t *base;
    size_t size, off;    /* off: the next record header */
    size_t released;     /* pages before this offset were given back */
    size_t populated;    /* pages before this offset were mapped ahead */
    uint32_t max_caplen; /* larger records go to libpcap */
    bool swapped, nsec;
};

#define CAPTURE_MAP_RELEASE (4u << 20) /* give back mapped pages every 4 MB */
#define CAPTURE_MAP_AHEAD   (2u << 20) /* map the pages ahead 2 MB at a time */

struct capture_src {
    const char *name;
    pcap_t *pc;               /* libpcap source, or */
    struct pcapng_reader *ng; /* own pcapng reader */
    struct capture_map *map;  /* with pc: records read from the map */
    bool have;                /* pkt holds the next packet */
    bool done;
    struct capture_pkt pkt;
};

struct capture_filter {
    int linktype;
    bool ok;
    struct bpf_program prog;
};

struct capture {
    bool live;
    struct capture_src *src;
    size_t n_src;
    const char *bpf;
    int snaplen;
    struct capture_filter filters[CAPTURE_MAX_LINKTYPES];
    size_t n_filters;
    uint64_t filtered;
    uint64_t total_bytes;
};

static void set_err(char *err, size_t errlen, const char *a, const char *b)
{
    snprintf(err, errlen, "%s: %s", a, b);
}

/* Sets cfg->bpf on the live handle of s (no filter: every packet). False:
 * err filled. */
static bool live_set_filter(struct capture_src *s, const struct capture_live_cfg *cfg, char *err,
                            size_t errlen)
{
    const char *bpf = cfg->bpf ? cfg->bpf : "";
    struct bpf_program prog;
    if (pcap_compile(s->pc, &prog, bpf, 1, PCAP_NETMASK_UNKNOWN) < 0) {
        snprintf(err, errlen, "--bpf \"%s\": %s", bpf, pcap_geterr(s->pc));
        return false;
    }
    if (pcap_setfilter(s->pc, &prog) < 0) {
        snprintf(err, errlen, "--bpf \"%s\": %s", bpf, pcap_geterr(s->pc));
        pcap_freecode(&prog);
        return false;
    }
    pcap_freecode(&prog);
    return true;
}

/* Opens and activates one live handle on cfg->iface into s, with a ring of
 * buffer bytes (0: libpcap's default) and the filter, or closed: with a
 * filter that passes nothing (a socket yet to join a fanout group). False:
 * err filled. */
static bool live_open_one(struct capture_src *s, const struct capture_live_cfg *cfg, int buffer,
                          bool closed, char *err, size_t errlen)
{
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    s->name = cfg->iface;
    pcap_t *pc = pcap_create(cfg->iface, ebuf);
    if (!pc) {
        set_err(err, errlen, cfg->iface, ebuf);
        return false;
    }
    s->pc = pc;
    pcap_set_snaplen(pc, cfg->snaplen > 0 ? cfg->snaplen : 262144);
    pcap_set_promisc(pc, 1);
    pcap_set_timeout(pc, 100);
    if (buffer > 0)
        pcap_set_buffer_size(pc, buffer);
    if (cfg->immediate)
        pcap_set_immediate_mode(pc, 1);
    int rc = pcap_activate(pc);
    if (rc < 0) {
        /* the status names the problem; libpcap's text adds the detail when
         * it says something more (e.g. "socket: Operation not permitted") */
        const char *status = pcap_statustostr(rc), *why = pcap_geterr(pc);
        char msg[PCAP_ERRBUF_SIZE + 128];
        if (rc == PCAP_ERROR && why && why[0])
            snprintf(msg, sizeof(msg), "%s", why);
        else if (!why || !why[0] || strcmp(why, status) == 0)
            snprintf(msg, sizeof(msg), "%s", status);
        else
            snprintf(msg, sizeof(msg), "%s (%s)", status, why);
        set_err(err, errlen, cfg->iface, msg);
        return false;
    }
    /* non-blocking reads plus our own poll: idle periods still return to the
     * caller (clock ticks, signals), which a blocking TPACKET_V3 read does not */
    if (pcap_setnonblock(pc, 1, ebuf) < 0 || pcap_get_selectable_fd(pc) < 0) {
        set_err(err, errlen, cfg->iface, ebuf[0] ? ebuf : "cannot poll the capture");
        return false;
    }
    if (!closed)
        return !(cfg->bpf && cfg->bpf[0]) || live_set_filter(s, cfg, err, errlen);
    /* nothing until the socket is in the fanout group: before it joins, it
     * gets a copy of every packet the others get. The reject-all filter
     * stops new packets; libpcap judges those already in the ring by the
     * filter too, and reading them here drops them. */
    struct bpf_insn none = BPF_STMT(BPF_RET | BPF_K, 0);
    struct bpf_program prog = {1, &none};
    if (pcap_setfilter(pc, &prog) < 0) {
        set_err(err, errlen, cfg->iface, pcap_geterr(pc));
        return false;
    }
    struct pcap_pkthdr *h;
    const u_char *data;
    while ((rc = pcap_next_ex(pc, &h, &data)) == 1)
        ;
    if (rc < 0) {
        set_err(err, errlen, cfg->iface, pcap_geterr(pc));
        return false;
    }
    return true;
}

/* Puts the socket of s into the fanout group *id, or, for the first socket
 * (first), into a new group with an id the kernel picks, returned in *id.
 * Only first says which: the kernel hands out id 0 too (its counter starts
 * at 0 at boot and wraps), and a second "new" group would give every socket
 * a copy of every packet. False: err filled. */
static bool live_join_fanout(struct capture_src *s, bool first, uint16_t *id, char *err,
                             size_t errlen)
{
    int fd = pcap_get_selectable_fd(s->pc);
    int mode = PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG;
    unsigned flags = (unsigned)mode | (first ? (unsigned)PACKET_FANOUT_FLAG_UNIQUEID : 0u);
    unsigned want = first ? 0u : *id;
    int val = (int)(want | flags << 16); /* id in the low 16 bits, mode and flags above */
    if (setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &val, sizeof(val)) != 0) {
        snprintf(err, errlen, "%s: cannot join a PACKET_FANOUT group (--workers): %s", s->name,
                 strerror(errno));
        return false;
    }
    if (first) {
        socklen_t len = sizeof(val);
        if (getsockopt(fd, SOL_PACKET, PACKET_FANOUT, &val, &len) != 0) {
            snprintf(err, errlen, "%s: PACKET_FANOUT: %s", s->name, strerror(errno));
            return false;
        }
        *id = (uint16_t)(val & 0xffff);
    }
    return true;
}

struct capture *capture_open_live(const struct capture_live_cfg *cfg, char *err, size_t errlen)
{
    unsigned n = cfg->fanout > 1 ? cfg->fanout : 1;
    struct capture *c = calloc(1, sizeof(*c));
    if (!c || !(c->src = calloc(n, sizeof(*c->src)))) {
        free(c);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->live = true;
    c->n_src = n;
    /* the ring is shared out: each socket gets its part of the buffer */
    int buffer = cfg->buffer_size > 0 ? cfg->buffer_size / (int)n : 0;
    uint16_t group = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!live_open_one(&c->src[i], cfg, buffer, n > 1, err, errlen) ||
            (n > 1 && !live_join_fanout(&c->src[i], i == 0, &group, err, errlen))) {
            capture_free(c);
            return NULL;
        }
    }
    /* every socket is in the group: now they capture, each its share */
    for (unsigned i = 0; n > 1 && i < n; i++)
        if (!live_set_filter(&c->src[i], cfg, err, errlen)) {
            capture_free(c);
            return NULL;
        }
    return c;
}

/* Compiles (once per link type) and checks the offline filter. */
static struct capture_filter *filter_for(struct capture *c, int linktype, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->n_filters; i++)
        if (c->filters[i].linktype == linktype)
            return &c->filters[i];
    if (c->n_filters == CAPTURE_MAX_LINKTYPES) {
        snprintf(err, errlen, "--bpf \"%s\": more than %d link types", c->bpf,
                 CAPTURE_MAX_LINKTYPES);
        return NULL;
    }
    struct capture_filter *f = &c->filters[c->n_filters];
    pcap_t *dead = pcap_open_dead(linktype, c->snaplen > 0 ? c->snaplen : 262144);
    if (!dead) {
        snprintf(err, errlen, "--bpf \"%s\": cannot compile for link type %d", c->bpf, linktype);
        return NULL;
    }
    if (pcap_compile(dead, &f->prog, c->bpf, 1, PCAP_NETMASK_UNKNOWN) < 0) {
        snprintf(err, errlen, "--bpf \"%s\": %s", c->bpf, pcap_geterr(dead));
        pcap_close(dead);
        return NULL;
    }
    pcap_close(dead);
    f->linktype = linktype;
    f->ok = true;
    c->n_filters++;
    return f;
}

static uint32_t rd32(const uint8_t *b, bool swapped)
{
    uint32_t v;
    memcpy(&v, b, 4);
    return swapped ? __builtin_bswap32(v) : v;
}

static void map_free(struct capture_map *m)
{
    if (!m)
        return;
    munmap((void *)m->base, m->size);
    free(m);
}

/* Maps the pcap file that libpcap opened for s, when it is a regular file in
 * classic pcap 2.4 whose link type libpcap hands out unchanged. Anything
 * else (or a failure) leaves s to libpcap alone. Known limit: a file cut
 * shorter by another process while it is being read is noticed every
 * CAPTURE_MAP_RELEASE bytes (libpcap takes over and reports it); a cut
 * inside the current window still ends the run with SIGBUS. Growing files
 * are fine (the records past the mapped size are read by libpcap). */
static void map_try(struct capture_src *s)
{
    FILE *f = pcap_file(s->pc);
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 24 ||
        (uint64_t)st.st_size > SIZE_MAX)
        return;
    int dlt = pcap_datalink(s->pc);
    bool sll = dlt == DLT_LINUX_SLL || dlt == DLT_LINUX_SLL2;
    if (dlt != DLT_EN10MB && dlt != DLT_RAW && dlt != DLT_NULL && dlt != DLT_LOOP &&
        dlt != DLT_IPV4 && dlt != DLT_IPV6 && !sll)
        return;
    void *base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fileno(f), 0);
    if (base == MAP_FAILED)
        return;
    const uint8_t *b = base;
    uint32_t magic;
    memcpy(&magic, b, 4);
    bool swapped = magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u;
    bool nsec = magic == 0xa1b23c4du || magic == 0x4d3cb2a1u;
    bool classic = magic == 0xa1b2c3d4u || magic == 0xa1b23c4du || swapped;
    uint16_t major, minor;
    memcpy(&major, b + 4, 2);
    memcpy(&minor, b + 6, 2);
    if (swapped) {
        major = __builtin_bswap16(major);
        minor = __builtin_bswap16(minor);
    }
    /* libpcap swaps pseudo-headers of byte-swapped Linux cooked files (CAN) */
    struct capture_map *m = NULL;
    if (classic && major == 2 && minor == 4 && !(swapped && sll) &&
        (m = calloc(1, sizeof(*m))) != NULL) {
        int snap = pcap_snapshot(s->pc);
        m->base = b;
        m->size = (size_t)st.st_size;
        m->off = 24;
        m->max_caplen = snap > 0 && snap < 262144 ? (uint32_t)snap : 262144;
        m->swapped = swapped;
        m->nsec = nsec;
        madvise(base, m->size, MADV_SEQUENTIAL);
        s->map = m;
        return;
    }
    munmap(base, (size_t)st.st_size);
}

/* The next record from the map: 1, or 0 when the record at off is not
 * plainly well-formed (or the map ends): libpcap continues from there. */
static int map_next(struct capture_src *s)
{
    struct capture_map *m = s->map;
    /* the caller is done with every earlier packet of this source */
    if (m->off - m->released >= CAPTURE_MAP_RELEASE) {
        size_t to = m->off & ~(size_t)4095;
        madvise((void *)(m->base + m->released), to - m->released, MADV_DONTNEED);
        m->released = to;
        /* a file cut shorter since it was mapped goes back to libpcap (which
         * reports it) before a read past its end raises SIGBUS */
        struct stat st;
        if (fstat(fileno(pcap_file(s->pc)), &st) != 0 || (uint64_t)st.st_size < m->size)
            return 0;
    }
    /* the pages ahead mapped in one call (MADV_POPULATE_READ, Linux 5.14)
     * instead of a page fault per 16 pages; refused (an older kernel): the
     * faults as before */
    if (m->populated < m->size && m->off + CAPTURE_MAP_AHEAD / 2 > m->populated) {
        size_t to = m->populated + CAPTURE_MAP_AHEAD;
        if (to > m->size)
            to = m->size;
        madvise((void *)(m->base + m->populated), to - m->populated, MADV_POPULATE_READ);
        m->populated = to;
    }
    if (m->size - m->off < 16)
        return 0;
    const uint8_t *h = m->base + m->off;
    uint32_t caplen = rd32(h + 8, m->swapped), len = rd32(h + 12, m->swapped);
    if (caplen > m->max_caplen || m->size - m->off - 16 < caplen)
        return 0;
    /* as libpcap 1.10: seconds and fraction are 32-bit signed in files of
     * the host's byte order and unsigned in byte-swapped ones (its swap
     * yields an unsigned value); nanoseconds truncated */
    uint32_t sec32 = rd32(h, m->swapped), ufrac = rd32(h + 4, m->swapped);
    int64_t sec = m->swapped ? (int64_t)sec32 : (int64_t)(int32_t)sec32;
    int64_t frac = m->swapped ? (int64_t)ufrac : (int64_t)(int32_t)ufrac;
    if (m->nsec)
        frac /= 1000;
    s->pkt.ts = (sw_usec)sec * SW_USEC_PER_SEC + frac;
    s->pkt.data = h + 16;
    s->pkt.caplen = caplen;
    s->pkt.len = len < caplen ? caplen : len;
    s->pkt.linktype = pcap_datalink(s->pc);
    m->off += 16 + (size_t)caplen;
    /* the next record's header and first bytes are read after this packet
     * is handled: ask for them now (a prefetch never faults) */
    if (m->size - m->off >= 128) {
        __builtin_prefetch(m->base + m->off);
        __builtin_prefetch(m->base + m->off + 64);
    }
    return 1;
}

/* Hands s back to libpcap at the map's offset. False (err filled) when the
 * file cannot be repositioned. */
static bool map_leave(struct capture_src *s, char *err, size_t errlen)
{
    struct capture_map *m = s->map;
    s->map = NULL;
    FILE *f = pcap_file(s->pc);
    bool ok = f && fseeko(f, (off_t)m->off, SEEK_SET) == 0;
    if (!ok)
        snprintf(err, errlen, "%s: %s", s->name, strerror(errno));
    map_free(m);
    return ok;
}

struct capture *capture_open_files(const char *const *files, size_t n, const char *bpf, int snaplen,
                                   char *err, size_t errlen)
{
    struct capture *c = calloc(1, sizeof(*c));
    if (!c || !(c->src = calloc(n ? n : 1, sizeof(*c->src)))) {
        free(c);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->n_src = n;
    c->bpf = bpf && bpf[0] ? bpf : NULL;
    c->snaplen = snaplen;
    for (size_t i = 0; i < n; i++) {
        struct capture_src *s = &c->src[i];
        char ebuf[PCAP_ERRBUF_SIZE] = "";
        bool is_stdin = strcmp(files[i], "-") == 0;
        s->name = is_stdin ? "stdin" : files[i];
        /* a named pipe (or any non-regular file) is read once, like stdin:
         * no peek for mixed link types, no size, no memory map */
        struct stat st;
        if (!is_stdin && stat(files[i], &st) == 0 && S_ISREG(st.st_mode)) {
            c->total_bytes += (uint64_t)st.st_size;
            if (pcapng_has_mixed_linktypes(files[i])) {
                s->ng = pcapng_open(files[i], err, errlen);
                if (!s->ng) {
                    capture_free(c);
                    return NULL;
                }
                continue;
            }
        }
        s->pc =
            pcap_open_offline_with_tstamp_precision(files[i], PCAP_TSTAMP_PRECISION_MICRO, ebuf);
        if (!s->pc) {
            /* libpcap names the file itself for some errors: not twice */
            size_t fl = strlen(files[i]);
            if (strncmp(ebuf, files[i], fl) == 0 && ebuf[fl] == ':')
                snprintf(err, errlen, "%s", ebuf);
            else
                set_err(err, errlen, s->name, ebuf);
            capture_free(c);
            return NULL;
        }
        if (!is_stdin)
            map_try(s);
    }
    if (c->bpf) {
        /* compile once now so that a bad expression is reported before any work */
        for (size_t i = 0; i < n; i++) {
            if (c->src[i].pc && !filter_for(c, pcap_datalink(c->src[i].pc), err, errlen)) {
                capture_free(c);
                return NULL;
            }
        }
    }
    return c;
}

/* Fills s->pkt with the source's next packet. 1, 0 (end), -1 error. */
static int src_fill(struct capture_src *s, char *err, size_t errlen)
{
    if (s->ng) {
        int rc = pcapng_next(s->ng, &s->pkt, err, errlen);
        return rc;
    }
    if (s->map) {
        if (map_next(s))
            return 1;
        if (!map_leave(s, err, errlen))
            return -1;
    }
    struct pcap_pkthdr *h;
    const u_char *data;
    int rc = pcap_next_ex(s->pc, &h, &data);
    if (rc == 1) {
        /* unsigned: a pcapng timestamp libpcap scaled past the microsecond
         * range (a corrupt file) wraps instead of overflowing */
        s->pkt.ts = (sw_usec)((uint64_t)h->ts.tv_sec * SW_USEC_PER_SEC + (uint64_t)h->ts.tv_usec);
        s->pkt.data = data;
        s->pkt.caplen = h->caplen;
        s->pkt.len = h->len < h->caplen ? h->caplen : h->len;
        s->pkt.linktype = pcap_datalink(s->pc);
        return 1;
    }
    if (rc == PCAP_ERROR_BREAK)
        return 0;
    snprintf(err, errlen, "%s: %s", s->name, pcap_geterr(s->pc));
    return -1;
}

static bool passes(struct capture *c, const struct capture_pkt *p, char *err, size_t errlen,
                   int *fail)
{
    if (!c->bpf)
        return true;
    struct capture_filter *f = filter_for(c, p->linktype, err, errlen);
    if (!f) {
        *fail = 1;
        return false;
    }
    struct pcap_pkthdr h;
    h.ts.tv_sec = (time_t)(p->ts / SW_USEC_PER_SEC);
    h.ts.tv_usec = (suseconds_t)(p->ts % SW_USEC_PER_SEC);
    h.caplen = p->caplen;
    h.len = p->len;
    return pcap_offline_filter(&f->prog, &h, p->data) != 0;
}

int capture_next_live(struct capture *c, unsigned i, struct capture_pkt *out, char *err,
                      size_t errlen)
{
    struct capture_src *s = &c->src[i];
    struct pcap_pkthdr *h;
    const u_char *data;
    int rc = pcap_next_ex(s->pc, &h, &data);
    if (rc == 0) {
        struct pollfd pfd = {.fd = pcap_get_selectable_fd(s->pc), .events = POLLIN};
        poll(&pfd, 1, 100); /* EINTR (a signal) simply returns early */
        return 0;
    }
    if (rc == PCAP_ERROR_BREAK)
        return -1;
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", s->name, pcap_geterr(s->pc));
        return -2;
    }
    out->ts = (sw_usec)h->ts.tv_sec * SW_USEC_PER_SEC + h->ts.tv_usec;
    out->data = data;
    out->caplen = h->caplen;
    out->len = h->len < h->caplen ? h->caplen : h->len;
    out->linktype = pcap_datalink(s->pc);
    out->src = 0;
    return 1;
}

int capture_next(struct capture *c, struct capture_pkt *out, char *err, size_t errlen)
{
    if (c->live)
        return capture_next_live(c, 0, out, err, errlen);
    for (;;) {
        struct capture_src *best = NULL;
        for (size_t i = 0; i < c->n_src; i++) {
            struct capture_src *s = &c->src[i];
            if (s->done)
                continue;
            if (!s->have) {
                int rc = src_fill(s, err, errlen);
                if (rc < 0) {
                    s->done = true;
                    return -2;
                }
                if (rc == 0) {
                    s->done = true;
                    continue;
                }
                s->have = true;
            }
            if (!best || s->pkt.ts < best->pkt.ts)
                best = s;
        }
        if (!best)
            return -1;
        best->have = false;
        int fail = 0;
        if (!passes(c, &best->pkt, err, errlen, &fail)) {
            if (fail)
                return -2;
            c->filtered++;
            continue;
        }
        *out = best->pkt;
        out->src = (unsigned)(best - c->src);
        return 1;
    }
}

size_t capture_n_src(const struct capture *c)
{
    return c->n_src;
}

const char *capture_src_name(const struct capture *c, size_t i)
{
    return i < c->n_src ? c->src[i].name : "";
}

int capture_src_snaplen(const struct capture *c, size_t i)
{
    return i < c->n_src && c->src[i].pc ? pcap_snapshot(c->src[i].pc) : 0;
}

bool capture_is_live(const struct capture *c)
{
    return c->live;
}

bool capture_kernel_drops(struct capture *c, uint64_t *recv, uint64_t *drop, uint64_t *ifdrop)
{
    if (!c->live)
        return false;
    *recv = *drop = *ifdrop = 0;
    for (size_t i = 0; i < c->n_src; i++) { /* every socket of a fanout group */
        struct pcap_stat ps;
        if (!c->src[i].pc || pcap_stats(c->src[i].pc, &ps) < 0)
            return false;
        *recv += ps.ps_recv;
        *drop += ps.ps_drop;
        *ifdrop += ps.ps_ifdrop;
    }
    return true;
}

void capture_progress(const struct capture *c, uint64_t *done, uint64_t *total)
{
    *done = 0;
    *total = c->total_bytes;
    for (size_t i = 0; i < c->n_src; i++) {
        const struct capture_src *s = &c->src[i];
        if (s->ng)
            *done += pcapng_offset(s->ng);
        else if (s->map)
            *done += s->map->off;
        else if (s->pc && !c->live && strcmp(s->name, "stdin") != 0) {
            FILE *f = pcap_file(s->pc);
            if (f) {
                long pos = ftell(f);
                if (pos > 0)
                    *done += (uint64_t)pos;
            }
        }
    }
}

uint64_t capture_filtered(const struct capture *c)
{
    return c->filtered;
}

void capture_free(struct capture *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_src; i++) {
        if (c->src[i].pc)
            pcap_close(c->src[i].pc);
        pcapng_close(c->src[i].ng);
        map_free(c->src[i].map);
    }
    for (size_t i = 0; i < c->n_filters; i++)
        pcap_freecode(&c->filters[i].prog);
    free(c->src);
    free(c);
}
