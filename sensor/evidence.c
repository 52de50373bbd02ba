/* SPDX-License-Identifier: Apache-2.0 */
/* evidence.c: evidence packets: a bounded copy of each connection's frames
 * until its session is judged, written as a classic pcap file (the
 * libpcap savefile format, microsecond timestamps) for the sessions that
 * raised an alert. Recognises the SMTP commands that end the command phase
 * (RFC 5321 DATA, RFC 3030 BDAT, RFC 3207 STARTTLS) and a TLS record header
 * (RFC 8446 section 5.1) at the start of a segment. */
#include "sensor/evidence.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define EV_BUCKETS      65536u     /* hash buckets (power of two) */
#define EV_FLOW_MAX     (1u << 20) /* frame bytes per connection before its trigger */
#define EV_FRAME_HDR    16u        /* pcap record header */
#define EV_PCAP_SNAPLEN 262144u

/* One kept frame, its bytes after the struct. */
struct ev_frame {
    struct ev_frame *next;
    sw_usec ts;
    uint32_t caplen, len;
    uint8_t data[];
};

/* The connection key, the same whichever side sent the packet: the lower
 * (address, port) first. */
struct ev_key {
    struct sw_addr a, b;
    uint16_t pa, pb;
    uint16_t vlan;
};

struct ev_flow {
    struct ev_flow *next; /* bucket chain, newest first */
    struct ev_key key;
    sw_usec first_ts, last_ts;
    int linktype;
    struct ev_frame *head, *tail;
    uint64_t bytes;           /* frames and their headers, charged to the memcap */
    uint64_t after[2];        /* payload bytes kept after the trigger, per direction
                                 (0: sent by key.a) */
    bool triggered, finished; /* DATA/BDAT/STARTTLS/TLS seen; FIN or RST seen */
};

struct ev_file {
    struct ev_file *next;
    char name[40];
    uint64_t size;
    sw_usec mtime;
};

struct evidence {
    struct evidence_cfg cfg;
    char dir[4096];
    pthread_mutex_t mu;
    struct ev_flow **b;
    struct ev_file *files, *files_tail; /* oldest first */
    sw_usec last_expire;
    struct evidence_stats st;
};

static int addr_cmp(const struct sw_addr *x, uint16_t px, const struct sw_addr *y, uint16_t py)
{
    if (x->family != y->family)
        return x->family < y->family ? -1 : 1;
    int c = memcmp(x->b, y->b, x->family == 4 ? 4 : 16);
    if (c)
        return c;
    return px == py ? 0 : (px < py ? -1 : 1);
}

/* Fills k from the endpoints; returns the direction (0: from k->a). */
static int key_make(struct ev_key *k, const struct sw_addr *s, uint16_t sp, const struct sw_addr *d,
                    uint16_t dp, uint16_t vlan)
{
    memset(k, 0, sizeof(*k));
    k->vlan = vlan;
    int dir = addr_cmp(s, sp, d, dp) <= 0 ? 0 : 1;
    const struct sw_addr *lo = dir == 0 ? s : d, *hi = dir == 0 ? d : s;
    k->a.family = lo->family;
    k->b.family = hi->family;
    memcpy(k->a.b, lo->b, lo->family == 4 ? 4 : 16);
    memcpy(k->b.b, hi->b, hi->family == 4 ? 4 : 16);
    k->pa = dir == 0 ? sp : dp;
    k->pb = dir == 0 ? dp : sp;
    return dir;
}

static bool key_eq(const struct ev_key *x, const struct ev_key *y)
{
    return x->vlan == y->vlan && x->pa == y->pa && x->pb == y->pb &&
           addr_cmp(&x->a, 0, &y->a, 0) == 0 && addr_cmp(&x->b, 0, &y->b, 0) == 0;
}

static uint32_t key_hash(const struct ev_key *k)
{
    /* FNV-1a over the fields */
    uint32_t h = 2166136261u;
    const uint8_t *parts[] = {k->a.b, k->b.b};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 16; j++)
            h = (h ^ parts[i][j]) * 16777619u;
    uint16_t w[3] = {k->pa, k->pb, k->vlan};
    for (int i = 0; i < 3; i++) {
        h = (h ^ (w[i] & 0xff)) * 16777619u;
        h = (h ^ (w[i] >> 8)) * 16777619u;
    }
    return h & (EV_BUCKETS - 1);
}

/* True when the segment starts the part after the command phase: a line
 * DATA, BDAT or STARTTLS (any case; pipelined commands share a segment), or
 * a TLS handshake/alert record header at its start. */
static bool is_trigger(const uint8_t *p, uint32_t n)
{
    if (n >= 3 && (p[0] == 0x16 || p[0] == 0x15) && p[1] == 0x03 && p[2] <= 0x04)
        return true;
    static const char *const cmds[] = {"DATA\r", "DATA\n", "BDAT ", "STARTTLS"};
    for (uint32_t at = 0; at < n;) {
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
            size_t l = strlen(cmds[i]);
            if (n - at >= l && strncasecmp((const char *)p + at, cmds[i], l) == 0)
                return true;
        }
        const uint8_t *nl = memchr(p + at, '\n', n - at);
        if (!nl)
            break;
        at = (uint32_t)(nl - p) + 1;
    }
    return false;
}

static void flow_release(struct evidence *e, struct ev_flow *f)
{
    struct ev_frame *fr = f->head;
    while (fr) {
        struct ev_frame *n = fr->next;
        free(fr);
        fr = n;
    }
    e->st.held_bytes -= f->bytes;
    e->st.held_flows--;
    free(f);
}

/* ---- files in the directory ---- */

static void file_forget(struct evidence *e, const char *name)
{
    struct ev_file **pp = &e->files, *prev = NULL;
    while (*pp) {
        struct ev_file *f = *pp;
        if (strcmp(f->name, name) == 0) {
            *pp = f->next;
            if (e->files_tail == f)
                e->files_tail = prev;
            e->st.dir_bytes -= f->size;
            e->st.dir_files--;
            free(f);
            return;
        }
        prev = f;
        pp = &f->next;
    }
}

static void file_append(struct evidence *e, const char *name, uint64_t size, sw_usec mtime)
{
    struct ev_file *f = calloc(1, sizeof(*f));
    if (!f)
        return; /* not counted toward the cap: at worst the directory grows by one file */
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->size = size;
    f->mtime = mtime;
    if (e->files_tail)
        e->files_tail->next = f;
    else
        e->files = f;
    e->files_tail = f;
    e->st.dir_bytes += size;
    e->st.dir_files++;
}

/* Removes the oldest files until need more bytes fit under max_size. */
static void rotate(struct evidence *e, uint64_t need)
{
    while (e->files && e->st.dir_bytes + need > e->cfg.max_size) {
        struct ev_file *f = e->files;
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", e->dir, f->name);
        unlink(path);
        e->files = f->next;
        if (!e->files)
            e->files_tail = NULL;
        e->st.dir_bytes -= f->size;
        e->st.dir_files--;
        e->st.files_rotated++;
        free(f);
    }
}

static int file_cmp(const void *x, const void *y)
{
    const struct ev_file *a = *(struct ev_file *const *)x, *b = *(struct ev_file *const *)y;
    if (a->mtime != b->mtime)
        return a->mtime < b->mtime ? -1 : 1;
    return strcmp(a->name, b->name);
}

static bool scan_dir(struct evidence *e, char *err, size_t errlen)
{
    DIR *d = opendir(e->dir);
    if (!d) {
        snprintf(err, errlen, "evidence directory %s: %s", e->dir, strerror(errno));
        return false;
    }
    struct ev_file **v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 6 || l >= sizeof(v[0]->name) || strcmp(de->d_name + l - 5, ".pcap") != 0)
            continue;
        struct stat sb;
        if (fstatat(dirfd(d), de->d_name, &sb, 0) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            struct ev_file **nv = realloc(v, cap * sizeof(*nv));
            if (!nv)
                break;
            v = nv;
        }
        struct ev_file *f = calloc(1, sizeof(*f));
        if (!f)
            break;
        memcpy(f->name, de->d_name, l + 1); /* l < sizeof(f->name), checked above */
        f->size = (uint64_t)sb.st_size;
        f->mtime = (sw_usec)sb.st_mtim.tv_sec * SW_USEC_PER_SEC + sb.st_mtim.tv_nsec / 1000;
        v[n++] = f;
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof(*v), file_cmp);
    for (size_t i = 0; i < n; i++) {
        v[i]->next = NULL;
        if (e->files_tail)
            e->files_tail->next = v[i];
        else
            e->files = v[i];
        e->files_tail = v[i];
        e->st.dir_bytes += v[i]->size;
        e->st.dir_files++;
    }
    free(v);
    return true;
}

/* ---- public ---- */

void evidence_cfg_defaults(struct evidence_cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->bytes_per_dir = EVIDENCE_DEFAULT_BYTES;
    c->max_size = EVIDENCE_DEFAULT_MAX_SIZE;
    c->memcap = EVIDENCE_DEFAULT_MEMCAP;
    c->idle = 660 * SW_USEC_PER_SEC;
}

struct evidence *evidence_new(const struct evidence_cfg *cfg, char *err, size_t errlen)
{
    struct evidence *e = calloc(1, sizeof(*e));
    if (!e) {
        snprintf(err, errlen, "evidence: out of memory");
        return NULL;
    }
    e->cfg = *cfg;
    if (!e->cfg.max_size)
        e->cfg.max_size = EVIDENCE_DEFAULT_MAX_SIZE;
    if (!e->cfg.memcap)
        e->cfg.memcap = EVIDENCE_DEFAULT_MEMCAP;
    if (e->cfg.idle <= 0)
        e->cfg.idle = 660 * SW_USEC_PER_SEC;
    snprintf(e->dir, sizeof(e->dir), "%s", cfg->dir);
    e->cfg.dir = e->dir;
    pthread_mutex_init(&e->mu, NULL);
    e->b = calloc(EV_BUCKETS, sizeof(*e->b));
    if (!e->b) {
        snprintf(err, errlen, "evidence: out of memory");
        evidence_free(e);
        return NULL;
    }
    if (mkdir(e->dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "evidence directory %s: %s", e->dir, strerror(errno));
        evidence_free(e);
        return NULL;
    }
    if (access(e->dir, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "evidence directory %s: %s", e->dir, strerror(errno));
        evidence_free(e);
        return NULL;
    }
    if (!scan_dir(e, err, errlen)) {
        evidence_free(e);
        return NULL;
    }
    return e;
}

void evidence_packet(struct evidence *e, const struct pkt *p)
{
    if (!e || !p->frame || !p->caplen)
        return;
    struct ev_key k;
    uint16_t vlan = p->n_vlan ? p->vlan[p->n_vlan - 1] : 0;
    int dir = key_make(&k, &p->src, p->sport, &p->dst, p->dport, vlan);
    uint32_t h = key_hash(&k);
    bool syn = (p->tcp_flags & (PKT_TH_SYN | PKT_TH_ACK)) == PKT_TH_SYN;

    pthread_mutex_lock(&e->mu);
    struct ev_flow *f = e->b[h];
    while (f && !key_eq(&f->key, &k))
        f = f->next;
    /* a new connection on the same ports: after FIN/RST a new SYN, or idle
     * past the bound */
    if (f && ((f->finished && syn) || p->ts - f->last_ts > e->cfg.idle))
        f = NULL;
    if (!f && !syn && p->payload_len == 0) {
        /* a bare ACK or FIN after its session was judged: nothing to start */
        e->st.pkts_bounded++;
        pthread_mutex_unlock(&e->mu);
        return;
    }
    if (!f) {
        f = calloc(1, sizeof(*f));
        if (!f) {
            e->st.pkts_memcap++;
            pthread_mutex_unlock(&e->mu);
            return;
        }
        f->key = k;
        f->first_ts = p->ts;
        f->linktype = p->linktype;
        f->next = e->b[h];
        e->b[h] = f;
        e->st.held_flows++;
    }
    f->last_ts = p->ts;
    if (p->tcp_flags & (PKT_TH_FIN | PKT_TH_RST))
        f->finished = true;

    /* how much of the frame to keep */
    uint32_t keep = p->caplen;
    bool control = (p->tcp_flags & (PKT_TH_SYN | PKT_TH_FIN | PKT_TH_RST)) != 0;
    /* the payload lies in the frame (not for a datagram rebuilt from
     * fragments): the frame can be cut after n payload bytes */
    bool inside = p->payload >= p->frame && p->payload + p->payload_len <= p->frame + p->caplen;
    if (!f->triggered && p->payload_len && is_trigger(p->payload, p->payload_len)) {
        f->triggered = true;
        /* the triggering command itself belongs to the command phase */
        if (p->payload[0] != 0x16 && p->payload[0] != 0x15)
            goto keep_all;
    }
    if (f->triggered) {
        uint64_t room = e->cfg.bytes_per_dir - f->after[dir];
        if (f->after[dir] >= e->cfg.bytes_per_dir)
            room = 0;
        if (p->payload_len == 0) {
            /* a bare ACK is kept while either direction still has room */
            if (!control && f->after[0] >= e->cfg.bytes_per_dir &&
                f->after[1] >= e->cfg.bytes_per_dir)
                keep = 0;
        } else if (room == 0) {
            keep = control && inside ? (uint32_t)(p->payload - p->frame) : 0;
        } else {
            uint64_t take = p->payload_len < room ? p->payload_len : room;
            if (!inside)
                take = p->payload_len; /* reassembled fragments: kept whole */
            else if (take < p->payload_len)
                keep = (uint32_t)(p->payload - p->frame) + (uint32_t)take;
            f->after[dir] += take;
        }
    } else if (f->bytes + p->caplen + EV_FRAME_HDR > EV_FLOW_MAX) {
        keep = 0;
    }
keep_all:
    if (keep == 0 || p->linktype != f->linktype) {
        e->st.pkts_bounded++;
        pthread_mutex_unlock(&e->mu);
        return;
    }
    uint64_t charge = sizeof(struct ev_frame) + keep;
    if (e->st.held_bytes + charge > e->cfg.memcap) {
        e->st.pkts_memcap++;
        pthread_mutex_unlock(&e->mu);
        return;
    }
    struct ev_frame *fr = malloc(sizeof(*fr) + keep);
    if (!fr) {
        e->st.pkts_memcap++;
        pthread_mutex_unlock(&e->mu);
        return;
    }
    fr->next = NULL;
    fr->ts = p->ts;
    fr->caplen = keep;
    fr->len = p->len;
    memcpy(fr->data, p->frame, keep);
    if (f->tail)
        f->tail->next = fr;
    else
        f->head = fr;
    f->tail = fr;
    f->bytes += charge;
    e->st.held_bytes += charge;
    if (e->st.held_bytes > e->st.held_peak)
        e->st.held_peak = e->st.held_bytes;
    e->st.pkts_kept++;
    pthread_mutex_unlock(&e->mu);
}

void evidence_tick(struct evidence *e, sw_usec now)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    /* a full sweep at most once per idle/8 of capture time */
    if (e->last_expire && now >= e->last_expire && now - e->last_expire < e->cfg.idle / 8) {
        pthread_mutex_unlock(&e->mu);
        return;
    }
    e->last_expire = now;
    for (uint32_t i = 0; i < EV_BUCKETS; i++) {
        struct ev_flow **pp = &e->b[i];
        while (*pp) {
            struct ev_flow *f = *pp;
            if (now - f->last_ts > e->cfg.idle) {
                *pp = f->next;
                e->st.flows_expired++;
                flow_release(e, f);
            } else {
                pp = &f->next;
            }
        }
    }
    pthread_mutex_unlock(&e->mu);
}

static void put32(uint8_t *b, uint32_t v)
{
    memcpy(b, &v, 4); /* native byte order: the magic number tells readers */
}

/* Writes f's frames to DIR/name (through a temporary name); false on error. */
static bool write_pcap(struct evidence *e, const struct ev_flow *f, const char *name,
                       uint64_t *size)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof(path), "%s/%s", e->dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *out = fopen(tmp, "wb");
    if (!out)
        return false;
    uint8_t hdr[24];
    put32(hdr, 0xa1b2c3d4u);
    uint16_t v[2] = {2, 4};
    memcpy(hdr + 4, v, 4);
    put32(hdr + 8, 0);
    put32(hdr + 12, 0);
    put32(hdr + 16, EV_PCAP_SNAPLEN);
    put32(hdr + 20, (uint32_t)(f->linktype == PKT_DLT_RAW ? PKT_DLT_RAW_101 : f->linktype));
    bool ok = fwrite(hdr, 1, sizeof(hdr), out) == sizeof(hdr);
    uint64_t n = sizeof(hdr);
    for (const struct ev_frame *fr = f->head; fr && ok; fr = fr->next) {
        uint8_t rh[EV_FRAME_HDR];
        sw_usec ts = fr->ts < 0 ? 0 : fr->ts;
        put32(rh, (uint32_t)(ts / SW_USEC_PER_SEC));
        put32(rh + 4, (uint32_t)(ts % SW_USEC_PER_SEC));
        put32(rh + 8, fr->caplen);
        put32(rh + 12, fr->len > fr->caplen ? fr->len : fr->caplen);
        ok = fwrite(rh, 1, sizeof(rh), out) == sizeof(rh) &&
             fwrite(fr->data, 1, fr->caplen, out) == fr->caplen;
        n += sizeof(rh) + fr->caplen;
    }
    if (fclose(out) != 0)
        ok = false;
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok)
        unlink(tmp);
    *size = n;
    return ok;
}

bool evidence_session(struct evidence *e, const struct flow_info *fi, bool alerted, char *name,
                      size_t namelen)
{
    if (!e)
        return false;
    struct ev_key k;
    key_make(&k, &fi->client, fi->cport, &fi->server, fi->sport, fi->vlan);
    uint32_t h = key_hash(&k);
    pthread_mutex_lock(&e->mu);
    /* the connection that started at fi->start; else the newest one that
     * started before it (the flow table may have seen a later first packet) */
    struct ev_flow **pick = NULL;
    for (struct ev_flow **pp = &e->b[h]; *pp; pp = &(*pp)->next) {
        struct ev_flow *f = *pp;
        if (!key_eq(&f->key, &k))
            continue;
        if (f->first_ts == fi->start) {
            pick = pp;
            break;
        }
        if (f->first_ts <= fi->start && (!pick || (*pick)->first_ts < f->first_ts))
            pick = pp;
    }
    bool ok = false;
    if (!pick) {
        if (alerted)
            e->st.sessions_unmatched++;
        pthread_mutex_unlock(&e->mu);
        return false;
    }
    struct ev_flow *f = *pick;
    *pick = f->next;
    if (alerted && f->head) {
        char fname[40];
        snprintf(fname, sizeof(fname), "%.17s.pcap", fi->uid);
        uint64_t size = 24;
        for (const struct ev_frame *fr = f->head; fr; fr = fr->next)
            size += EV_FRAME_HDR + fr->caplen;
        file_forget(e, fname); /* the same session again (a second run) */
        if (size > e->cfg.max_size) {
            e->st.files_too_large++;
        } else {
            rotate(e, size);
            if (write_pcap(e, f, fname, &size)) {
                file_append(e, fname, size, 0);
                e->st.files_written++;
                snprintf(name, namelen, "%s", fname);
                ok = true;
            } else {
                e->st.write_errors++;
            }
        }
    } else if (alerted) {
        e->st.sessions_unmatched++;
    }
    flow_release(e, f);
    pthread_mutex_unlock(&e->mu);
    return ok;
}

void evidence_get_stats(struct evidence *e, struct evidence_stats *s)
{
    if (!e) {
        memset(s, 0, sizeof(*s));
        return;
    }
    pthread_mutex_lock(&e->mu);
    *s = e->st;
    pthread_mutex_unlock(&e->mu);
}

void evidence_free(struct evidence *e)
{
    if (!e)
        return;
    if (e->b) {
        for (uint32_t i = 0; i < EV_BUCKETS; i++) {
            while (e->b[i]) {
                struct ev_flow *f = e->b[i];
                e->b[i] = f->next;
                flow_release(e, f);
            }
        }
        free(e->b);
    }
    while (e->files) {
        struct ev_file *f = e->files;
        e->files = f->next;
        free(f);
    }
    pthread_mutex_destroy(&e->mu);
    free(e);
}
