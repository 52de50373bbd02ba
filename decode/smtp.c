/* SPDX-License-Identifier: Apache-2.0 */
/* smtp.c: SMTP session lifecycle, per-direction byte dispatch (lines, message
 * content, TLS records), anomalies, server packet fingerprints, and the
 * stream-consumer glue. Follows RFC 5321 (SMTP), RFC 3207 (STARTTLS),
 * RFC 8314 (implicit TLS on 465), RFC 791 / RFC 6864 (IPv4 ID). */
#include <stdarg.h>
#include <stdio.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "decode/ndpi_smtp.h"
#include "decode/smtp_int.h"
#include "decode/strtab.h"

static const uint16_t default_ports[] = {25, 587, 2525};
static const uint16_t default_tls_ports[] = {465};

#define SMTP_LINE_MIN       128 /* first allocation of a partial line */
#define SMTP_RING_MIN       4   /* first allocation of the command ring */
#define SMTP_FP_REPORTS_MAX 4   /* TTL / IP-ID anomalies kept per session */
#define SMTP_IPID_LEARN     3   /* consistent IDs needed before a shift counts */
#define SMTP_IPID_STEP_MAX  256
#define SMTP_IPID_JUMP      8192
#define SMTP_MEMCAP_DEFAULT (512ull << 20)

void smtp_cfg_defaults(struct smtp_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->ports = default_ports;
    c->n_ports = sizeof default_ports / sizeof default_ports[0];
    c->tls_ports = default_tls_ports;
    c->n_tls_ports = sizeof default_tls_ports / sizeof default_tls_ports[0];
    c->max_line = 4096;
    c->max_pipeline = 64;
    c->memcap = SMTP_MEMCAP_DEFAULT;
}

const char *smtp_event_str(enum smtp_event e)
{
    switch (e) {
    case SMTP_EV_EHLO_REPLY:
        return "ehlo_reply";
    case SMTP_EV_STARTTLS_REPLY:
        return "starttls_reply";
    case SMTP_EV_TLS:
        return "tls";
    case SMTP_EV_DATA_CLEAR:
        return "data_clear";
    case SMTP_EV_END:
        return "end";
    }
    return "unknown";
}

const char *smtp_state_str(enum smtp_state st)
{
    static const char *const names[SMTP_ST_COUNT] = {
        [SMTP_ST_COMMAND] = "command",
        [SMTP_ST_DATA_WAIT] = "data_wait",
        [SMTP_ST_DATA] = "data",
        [SMTP_ST_BDAT] = "bdat",
        [SMTP_ST_AUTH] = "auth",
        [SMTP_ST_STARTTLS_WAIT] = "starttls_wait",
        [SMTP_ST_TLS_EXPECT] = "tls_expect",
        [SMTP_ST_TLS] = "tls",
        [SMTP_ST_CLASSIFY] = "classify",
        [SMTP_ST_IGNORED] = "ignored",
    };
    if ((unsigned)st >= SMTP_ST_COUNT)
        return "unknown";
    return names[st];
}

bool smtp_strlcpy_n(char *dst, size_t dstlen, const char *src, size_t n)
{
    bool fits = n < dstlen;
    if (!fits)
        n = dstlen - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return fits;
}

void smtp_anomaly(struct smtp_session *s, enum anomaly_kind k, enum stream_dir dir,
                  const struct stream_meta *m, const char *fmt, ...)
{
    struct smtp_facts *f = &s->f;
    struct facts_anomaly *a;
    if (!(a = facts_add_anomaly(f)))
        return;
    a->kind = k;
    a->dir = dir;
    a->ts = m ? m->ts : f->last_ts;
    a->pkt_no = m ? m->pkt_no : f->last_pkt;
    char detail[FACTS_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    facts_set(f, &a->detail, detail, n < 0 ? 0 : (size_t)n, sizeof detail);
}

void smtp_set_field(struct smtp_session *s, const char **slot, const char *name, const char *src,
                    size_t n, size_t max, enum stream_dir dir, const struct stream_meta *m)
{
    const char *nul = memchr(src, '\0', n);
    size_t len = nul ? (size_t)(nul - src) : n;
    if (max && len > max - 1)
        smtp_anomaly(s, ANOM_FIELD_TRUNCATED, dir, m, "field=%s length=%zu kept=%zu", name, len,
                     max - 1);
    facts_set(&s->f, slot, src, n, max);
}

/* Every change of the client phase goes through here (one place to trace). */
void smtp_enter_state(struct smtp_session *s, enum smtp_state to)
{
#ifdef SW_SMTP_TRACE
    fprintf(stderr, "smtp uid=%s state=%s->%s\n", s->f.flow.uid, smtp_state_str(s->st),
            smtp_state_str(to));
#endif
    s->st = to;
}

void smtp_emit(struct smtp_session *s, enum smtp_event ev)
{
    if (s->cfg->on_event)
        s->cfg->on_event(s->cfg->event_ctx, ev, &s->f);
}

/* SMTP_EV_TLS once per session: handshake established, or failed. */
void smtp_tls_event(struct smtp_session *s)
{
    if (s->tls_event_sent)
        return;
    s->tls_event_sent = true;
    smtp_emit(s, SMTP_EV_TLS);
}

/* The command ring one size up (doubling, at most max_pipeline), its
 * entries in order from 0. False when it cannot grow. */
static bool ring_grow(struct smtp_session *s)
{
    size_t max = s->cfg->max_pipeline;
    if (s->ring_cap >= max)
        return false;
    size_t cap = s->ring_cap ? (size_t)s->ring_cap * 2 : SMTP_RING_MIN;
    if (cap > max)
        cap = max;
    struct smtp_pending *r = malloc(cap * sizeof *r);
    if (!r)
        return false;
    for (size_t i = 0; i < s->ring_len; i++)
        r[i] = s->ring[(s->ring_head + i) % s->ring_cap];
    free(s->ring);
    s->ring = r;
    s->ring_cap = (uint16_t)cap;
    s->ring_head = 0;
    return true;
}

bool smtp_pending_push(struct smtp_session *s, enum smtp_cmd cmd, int tx, int rcpt, bool last)
{
    if (s->ring_len >= s->ring_cap && !ring_grow(s)) {
        s->stats->pipeline_overflow++;
        return false;
    }
    struct smtp_pending *p = &s->ring[(s->ring_head + s->ring_len) % s->ring_cap];
    p->cmd = (uint8_t)cmd;
    p->last = last;
    p->tx = (int16_t)tx;
    p->rcpt = (int16_t)rcpt;
    s->ring_len++;
    return true;
}

static bool port_in(uint16_t port, const uint16_t *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == port)
            return true;
    return false;
}

/* What a session made by smtp_session_new owns besides itself. */
struct smtp_own {
    struct smtp_cfg cfg;
    struct smtp_stats stats;
    struct strtab *strs;
};

/* The consumer (smtp_consumer_new). */
struct smtp_consumer {
    struct smtp_cfg cfg;
    struct smtp_stats stats;
    struct stream_consumer ops;
    struct strtab *strs;      /* every session's strings */
    size_t strs_charged;      /* strtab bytes charged */
    struct flow_table *ft;    /* memory is charged there when bound */
    struct ndpi_smtp *ndpi;   /* created on first use, only with any_port */
    struct x509_cache *certs; /* parsed certificates of every session (NULL: none) */
};

static void cfg_normalise(struct smtp_cfg *c)
{
    if (!c->max_line)
        c->max_line = 4096;
    if (c->max_line > UINT32_MAX - 1)
        c->max_line = UINT32_MAX - 1;
    if (!c->max_pipeline)
        c->max_pipeline = 64;
    if (c->max_pipeline > INT16_MAX)
        c->max_pipeline = INT16_MAX;
}

/* Bytes the session holds now. */
static size_t session_bytes(const struct smtp_session *s)
{
    size_t n = sizeof *s + (size_t)s->ring_cap * sizeof *s->ring + s->line[0].cap + s->line[1].cap +
               s->f.mem;
    if (s->tls)
        n += sizeof *s->tls + s->tls->d[0].hs_cap + s->tls->d[1].hs_cap;
    if (s->ovl)
        n += SMTP_OVL_MAX * sizeof *s->ovl;
    return n;
}

/* Moves an accounting from have to now bytes (stats, and the bound table). */
static void stats_charge(struct smtp_stats *st, struct flow_table *ft, size_t have, size_t now)
{
    if (now > have) {
        st->mem_in_use += now - have;
        if (st->mem_in_use > st->mem_peak)
            st->mem_peak = st->mem_in_use;
        if (ft)
            flow_table_mem_charge(ft, now - have);
    } else if (now < have) {
        st->mem_in_use -= have - now;
        if (ft)
            flow_table_mem_release(ft, have - now);
    }
}

static void strs_sync(struct smtp_consumer *sc)
{
    size_t now = strtab_bytes(sc->strs);
    size_t have = sc->strs_charged;
    sc->strs_charged = now;
    sc->stats.strings = strtab_count(sc->strs);
    sc->stats.strings_bytes = now;
    stats_charge(&sc->stats, sc->ft, have, now);
}

void smtp_mem_sync(struct smtp_session *s)
{
    struct smtp_consumer *sc = s->consumer;
    size_t now = session_bytes(s);
    size_t have = s->charged;
    s->charged = now;
    stats_charge(s->stats, sc ? sc->ft : NULL, have, now);
    if (sc)
        strs_sync(sc);
}

/* A new session on cfg (normalised), stats and strs, of consumer sc (NULL
 * for one made by smtp_session_new); counted in stats->sessions when count
 * is set. Not from a slab: at the end of a capture the sessions are freed
 * one by one while their records are made, and malloc hands their memory to
 * those records (a slab kept it: 200,000 open sessions then cost 1,738
 * bytes each in peak RSS instead of 1,191). */
static struct smtp_session *session_new(const struct smtp_cfg *cfg, const struct flow_info *fi,
                                        struct smtp_stats *stats, struct strtab *strs, bool count,
                                        struct smtp_consumer *sc)
{
    struct smtp_session *s = malloc(sizeof *s);
    if (!s)
        return NULL;
    memset(s, 0, sizeof *s);
    s->consumer = sc;
    s->obj = SMTP_OBJ_SESSION;
    s->cfg = cfg;
    s->stats = stats;
    if (count)
        s->stats->sessions++;
    facts_init(&s->f, strs);
    s->f.flow = *fi;
    s->f.last_ts = fi->start;
    s->f.last_pkt = fi->first_pkt;
    s->cur_tx = -1;
    s->eod = SMTP_EOD_BOL;
    if (!fi->midstream)
        smtp_pending_push(s, SMTP_CMD_BANNER, -1, -1, false);
    if (port_in(fi->sport, cfg->tls_ports, cfg->n_tls_ports)) {
        s->implicit_tls = true;
        struct facts_tls *t = facts_tls_mut(&s->f);
        if (t)
            t->implicit = true;
        s->st = SMTP_ST_TLS_EXPECT;
        s->srv = SMTP_SRV_TLS_EXPECT;
    }
    return s;
}

struct smtp_session *smtp_session_new(const struct smtp_cfg *cfg, const struct flow_info *fi)
{
    struct smtp_own *own = calloc(1, sizeof *own);
    if (!own)
        return NULL;
    own->cfg = *cfg;
    cfg_normalise(&own->cfg);
    own->strs = strtab_new();
    struct smtp_session *s =
        own->strs ? session_new(&own->cfg, fi, &own->stats, own->strs, true, NULL) : NULL;
    if (!s) {
        strtab_free(own->strs);
        free(own);
        return NULL;
    }
    s->own = own;
    smtp_mem_sync(s);
    return s;
}

/* Frees a direction's partial line. */
static void line_drop(struct smtp_line *l)
{
    free(l->buf);
    l->buf = NULL;
    l->cap = l->len = 0;
}

/* A complete line (without CRLF) to the command or reply parser; total is
 * its length on the wire, of which ll bytes are here (the bounded prefix of
 * an overflowed line). no_lf: the stream ended inside it. */
static void line_done(struct smtp_session *s, enum stream_dir dir, const char *line, size_t ll,
                      bool overflow, uint32_t total, bool no_lf, const struct stream_meta *m)
{
    if (overflow) {
        s->f.lines_too_long++;
        s->stats->lines_too_long++;
        smtp_anomaly(s, ANOM_LINE_TOO_LONG, dir, m, "%s line over %zu bytes (%s%u bytes%s)",
                     dir == DIR_C2S ? "command" : "reply", s->cfg->max_line,
                     total == UINT32_MAX ? "at least " : "", total,
                     no_lf ? ", no LF before the end" : "");
    }
    if (dir == DIR_C2S)
        smtp_client_line(s, line, ll, overflow, m);
    else
        smtp_server_line(s, line, ll, overflow, m);
}

/* Hands the direction's held line to its parser and frees it. */
static void line_flush(struct smtp_session *s, enum stream_dir dir, bool no_lf,
                       const struct stream_meta *m)
{
    struct smtp_line *l = &s->line[dir];
    bool overflow = l->overflow;
    size_t ll = l->len;
    uint32_t total = l->total - (l->last_cr && l->total != UINT32_MAX);
    if (!overflow && ll && l->buf[ll - 1] == '\r')
        ll--;
    char *held = l->buf;
    l->buf = NULL;
    l->len = l->cap = 0;
    l->total = 0;
    l->last_cr = false;
    l->overflow = false;
    line_done(s, dir, held ? held : "", ll, overflow, total, no_lf, m);
    free(held);
}

/* Takes bytes up to the next LF: a line whole in buf is parsed where it is
 * (the parsers read lengths, never a NUL); one cut across chunks is
 * assembled in the direction's partial line (bounded by max_line, the rest
 * discarded to LF) and freed once complete. Returns bytes used. */
static size_t feed_line(struct smtp_session *s, enum stream_dir dir, const uint8_t *buf, size_t len,
                        const struct stream_meta *m)
{
    struct smtp_line *l = &s->line[dir];
    const uint8_t *nl = memchr(buf, '\n', len);
    size_t take = nl ? (size_t)(nl - buf) + 1 : len;
    size_t n = nl ? take - 1 : take;
    size_t max = s->cfg->max_line;

    if (l->resync) {
        if (nl)
            l->resync = false;
        return take;
    }
    if (nl && l->len == 0 && !l->overflow) {
        bool overflow = n > max;
        size_t ll = overflow ? max : n;
        if (!overflow && ll && buf[ll - 1] == '\r')
            ll--;
        size_t wire = n && buf[n - 1] == '\r' ? n - 1 : n; /* without CRLF */
        line_done(s, dir, (const char *)buf, ll, overflow,
                  wire > UINT32_MAX ? UINT32_MAX : (uint32_t)wire, false, m);
        return take;
    }
    l->total = n > UINT32_MAX - l->total ? UINT32_MAX : l->total + (uint32_t)n;
    if (n)
        l->last_cr = buf[n - 1] == '\r';
    if (!l->overflow && n) {
        size_t want = l->len + n;
        if (want > max) {
            l->overflow = true;
            want = max;
            n = max - l->len;
        }
        if (want > l->cap) {
            /* grow by doubling, at most max */
            size_t cap = l->cap ? l->cap : SMTP_LINE_MIN;
            while (cap < want)
                cap *= 2;
            if (cap > max)
                cap = max;
            char *nb = realloc(l->buf, cap);
            if (!nb) {
                l->overflow = true;
                n = 0;
            } else {
                l->buf = nb;
                l->cap = (uint32_t)cap;
            }
        }
        if (n) {
            memcpy(l->buf + l->len, buf, n);
            l->len += (uint32_t)n;
        }
    }
    if (!nl)
        return take;

    line_flush(s, dir, false, m);
    return take;
}

static unsigned dir_stop(enum stream_dir dir)
{
    return dir == DIR_C2S ? STREAM_STOP_C2S : STREAM_STOP_S2C;
}

/* The first byte after a 220 to STARTTLS (or on an implicit-TLS port) is not
 * a TLS record: record it once and go on reading SMTP in both directions. */
static void not_tls(struct smtp_session *s, enum stream_dir dir, const struct stream_meta *m,
                    uint8_t b)
{
    if (dir == DIR_S2C)
        smtp_ttl_at_reply(s, SMTP_TTL_AT_PLAIN, m);
    if (!s->not_tls_reported) {
        s->not_tls_reported = true;
        if (s->implicit_tls && !s->f.starttls_requested)
            smtp_anomaly(s, ANOM_PLAINTEXT_ON_TLS_PORT, dir, m, "first byte 0x%02x, port %u", b,
                         s->f.flow.sport);
        else
            smtp_anomaly(s, ANOM_NOT_TLS_AFTER_STARTTLS, dir, m, "first byte 0x%02x", b);
    }
    if (dir == DIR_C2S) {
        smtp_enter_state(s, SMTP_ST_COMMAND);
        if (s->srv == SMTP_SRV_TLS_EXPECT)
            s->srv = SMTP_SRV_REPLY;
    } else {
        s->srv = SMTP_SRV_REPLY;
        if (s->st == SMTP_ST_TLS_EXPECT)
            smtp_enter_state(s, SMTP_ST_COMMAND);
    }
    if (!s->f.tls->client_hello && !s->f.tls->server_hello)
        smtp_tls_event(s);
}

static void feed_tls(struct smtp_session *s, enum stream_dir dir, const uint8_t *buf, size_t len,
                     const struct stream_meta *m)
{
    if (!s->tls) {
        if (!(s->tls = calloc(1, sizeof *s->tls))) {
            s->stop |= dir_stop(dir); /* out of memory: stop reading this side */
            return;
        }
        s->tls->certs = s->consumer ? s->consumer->certs : NULL;
    }
    uint64_t before = s->tls->d[dir].records;
    unsigned r = tls_feed(s->tls, &s->f, (int)dir, buf, len);
    s->stats->tls_records += s->tls->d[dir].records - before;
    if (s->tls->certs) {
        const struct x509_cache_stats *cs = x509_cache_stats(s->tls->certs);
        s->stats->cert_cache_hits = cs->hits;
        s->stats->cert_cache_misses = cs->misses;
    }
    if (r & TLS_R_ALERT) {
        const struct facts_tls *t = s->f.tls;
        smtp_anomaly(s, ANOM_TLS_ALERT, dir, m, "level %d %s (%d)", t->alert_level,
                     tls_alert_str(t->alert_desc), t->alert_desc);
        if (!t->established)
            smtp_tls_event(s);
    }
    if (r & TLS_R_ESTABLISHED)
        smtp_tls_event(s);
    /* nothing more to learn once both sides encrypt (the client's side: once
     * its first record after its Finished is read, TLS <= 1.2), or from a
     * direction that stopped being TLS: the reassembler may stop buffering
     * it. The client's bytes past the handshake are read for that one record
     * header only: they count in bytes_c2s and nowhere else (tls_quiet). */
    const struct facts_tls *t = s->f.tls;
    if (t->established)
        s->tls_quiet = true;
    if (s->tls->d[DIR_S2C].dead || t->established)
        s->stop |= STREAM_STOP_S2C;
    if (s->tls->d[DIR_C2S].dead || (t->established && tls_client_done(s->tls, t)))
        s->stop |= STREAM_STOP_C2S;
}

static void feed_client(struct smtp_session *s, const uint8_t *buf, size_t len,
                        const struct stream_meta *m)
{
    size_t off = 0;
    while (off < len) {
        switch (s->st) {
        case SMTP_ST_STARTTLS_WAIT:
            /* a ClientHello before the 220 was captured: trust the bytes */
            if (s->line[DIR_C2S].len == 0 && !s->line[DIR_C2S].overflow &&
                tls_is_record_start(buf[off])) {
                smtp_enter_state(s, SMTP_ST_TLS);
                continue;
            }
            off += feed_line(s, DIR_C2S, buf + off, len - off, m);
            break;
        case SMTP_ST_COMMAND:
        case SMTP_ST_AUTH:
            off += feed_line(s, DIR_C2S, buf + off, len - off, m);
            break;
        case SMTP_ST_DATA_WAIT:
        case SMTP_ST_DATA:
        case SMTP_ST_BDAT:
            off += smtp_client_content(s, buf + off, len - off);
            break;
        case SMTP_ST_TLS_EXPECT:
            if (tls_is_record_start(buf[off])) {
                smtp_enter_state(s, SMTP_ST_TLS);
            } else {
                not_tls(s, DIR_C2S, m, buf[off]);
            }
            break;
        case SMTP_ST_TLS:
            feed_tls(s, DIR_C2S, buf + off, len - off, m);
            off = len;
            break;
        case SMTP_ST_CLASSIFY:
        case SMTP_ST_IGNORED:
        case SMTP_ST_COUNT:
            off = len;
            break;
        }
    }
}

/* base + n in the server's stream offsets, saturating at UINT32_MAX */
static uint32_t ovl_off(uint32_t base, uint64_t n)
{
    return n >= UINT32_MAX - base ? UINT32_MAX : base + (uint32_t)n;
}

static void feed_server(struct smtp_session *s, const uint8_t *buf, size_t len,
                        const struct stream_meta *m)
{
    size_t off = 0;
    while (off < len) {
        switch (s->srv) {
        case SMTP_SRV_REPLY: {
            /* a line that begins outside a reply begins the next one */
            const struct smtp_line *l = &s->line[DIR_S2C];
            if (!s->in_reply && !l->len && !l->total && !l->overflow && !l->resync)
                s->reply_lo = ovl_off(s->srv_off, off);
            off += feed_line(s, DIR_S2C, buf + off, len - off, m);
            if (s->ovl_open)
                smtp_ovl_close(s, ovl_off(s->srv_off, off));
            break;
        }
        case SMTP_SRV_TLS_EXPECT:
            if (tls_is_record_start(buf[off]))
                s->srv = SMTP_SRV_TLS;
            else
                not_tls(s, DIR_S2C, m, buf[off]);
            break;
        case SMTP_SRV_TLS:
            feed_tls(s, DIR_S2C, buf + off, len - off, m);
            off = len;
            break;
        }
    }
}

static void note_meta(struct smtp_session *s, enum stream_dir dir, const struct stream_meta *m)
{
    if (!m)
        return;
    s->f.last_ts = m->ts;
    s->f.last_pkt = m->pkt_no;
    if (dir == DIR_C2S && !s->f.client_ttl)
        s->f.client_ttl = m->ttl;
    if (dir == DIR_S2C && !s->f.server_ttl)
        s->f.server_ttl = m->ttl;
    if (dir == DIR_S2C && !s->ttl_base_set) {
        /* the banner's packet: the reference for the server's TTL / IP ID */
        s->ttl_base_set = true;
        s->ttl_base = s->ttl_ref = m->ttl;
        if (m->ip_version == 4) {
            s->ipid_have = true;
            s->ipid_last = m->ip_id;
        }
    }
}

unsigned smtp_session_feed(struct smtp_session *s, enum stream_dir dir, const uint8_t *buf,
                           size_t len, const struct stream_meta *m)
{
    if (!len)
        return s->stop;
    if (s->st == SMTP_ST_IGNORED)
        return STREAM_STOP_C2S | STREAM_STOP_S2C;
    if (dir == DIR_C2S && s->tls_quiet) {
        /* past the handshake: only the client's next record header */
        s->f.bytes_c2s += len;
        feed_client(s, buf, len, m);
        return s->stop;
    }
    note_meta(s, dir, m);
    if (s->st == SMTP_ST_CLASSIFY) {
        int v = ndpi_smtp_classify(s, dir, buf, len, m);
        if (v < 0) {
            /* not SMTP: keep nothing but the tombstone flag */
            ndpi_smtp_flow_free(s->ndpi);
            s->ndpi = NULL;
            s->ignored = true;
            smtp_enter_state(s, SMTP_ST_IGNORED);
            s->stats->ignored_flows++;
            s->stats->sessions--;
            return STREAM_STOP_C2S | STREAM_STOP_S2C;
        }
        return s->stop; /* a classified flow was replayed from inside the classifier */
    }
    /* picked up midstream inside TLS: record type bytes (0x14-0x17) never
     * start an SMTP line */
    if (s->f.flow.midstream && !(dir == DIR_C2S ? s->f.saw_c2s : s->f.saw_s2c) &&
        tls_is_record_start(buf[0])) {
        if (dir == DIR_C2S && s->st == SMTP_ST_COMMAND)
            smtp_enter_state(s, SMTP_ST_TLS);
        else if (dir == DIR_S2C && s->srv == SMTP_SRV_REPLY)
            s->srv = SMTP_SRV_TLS;
    }
    if (dir == DIR_C2S) {
        s->f.bytes_c2s += len;
        s->f.saw_c2s = true;
        s->stats->bytes_c2s += len;
        feed_client(s, buf, len, m);
    } else {
        s->f.bytes_s2c += len;
        s->f.saw_s2c = true;
        s->stats->bytes_s2c += len;
        feed_server(s, buf, len, m);
        s->srv_off = ovl_off(s->srv_off, len);
    }
    return s->stop;
}

/* Replays bytes that were held back while the flow was being classified. */
void smtp_session_replay(struct smtp_session *s, enum stream_dir dir, const uint8_t *buf,
                         size_t len, const struct stream_meta *m)
{
    smtp_session_feed(s, dir, buf, len, m);
}

void smtp_session_gap(struct smtp_session *s, enum stream_dir dir, uint32_t len,
                      const struct stream_meta *m)
{
    if (s->st == SMTP_ST_IGNORED || s->st == SMTP_ST_CLASSIFY)
        return;
    if (dir == DIR_C2S && s->tls_quiet) {
        /* the record after the client's Finished is lost: not seen */
        if (s->tls)
            tls_gap(s->tls, 0);
        s->stop |= STREAM_STOP_C2S;
        return;
    }
    smtp_anomaly(s, ANOM_GAP, dir, m, "%u bytes missing", len);
    if (dir == DIR_S2C)
        s->srv_off = ovl_off(s->srv_off, len);
    if (dir == DIR_C2S) {
        switch (s->st) {
        case SMTP_ST_DATA_WAIT:
        case SMTP_ST_DATA:
            s->eod = SMTP_EOD_TEXT; /* resync at the next line */
            return;
        case SMTP_ST_BDAT:
            s->bdat_left = s->bdat_left > len ? s->bdat_left - len : 0;
            if (!s->bdat_left)
                smtp_enter_state(s, SMTP_ST_COMMAND);
            return;
        case SMTP_ST_TLS:
            if (s->tls)
                tls_gap(s->tls, 0);
            s->stop |= STREAM_STOP_C2S;
            return;
        default:
            break;
        }
    } else if (s->srv == SMTP_SRV_TLS) {
        if (s->tls)
            tls_gap(s->tls, 1);
        s->stop |= STREAM_STOP_S2C;
        return;
    }
    /* line mode: the partial line is lost, drop up to the next LF */
    struct smtp_line *l = &s->line[dir];
    line_drop(l);
    l->overflow = false;
    l->total = 0;
    l->last_cr = false;
    l->resync = true;
}

static unsigned ttl_class(unsigned ttl)
{
    return ttl <= 64 ? 64 : ttl <= 128 ? 128 : 255;
}

void smtp_ttl_at_reply(struct smtp_session *s, unsigned at, const struct stream_meta *m)
{
    if (!m || !s->ttl_base_set || (s->ttl_reply_done & at))
        return;
    s->ttl_reply_done |= (uint8_t)at;
    unsigned ref = s->ttl_ref, ttl = m->ttl;
    unsigned hops = ttl > ref ? ttl - ref : ref - ttl;
    if (hops == 0)
        return;
    /* an IPv4 ID break found on this very packet (packet_fp runs first) */
    bool ipid = false;
    for (size_t i = s->f.n_anomalies; i > 0 && !ipid; i--) {
        const struct facts_anomaly *a = &s->f.anomalies[i - 1];
        if (a->pkt_no != m->pkt_no)
            break;
        ipid = a->kind == ANOM_IPID_SHIFT;
    }
    bool cls = ttl_class(ttl) != ttl_class(ref);
    if (hops < 2 && !cls && !ipid)
        return; /* one hop: a route change, no more */
    static const char *const what[] = {"EHLO reply", "STARTTLS reply", "plaintext after 220"};
    unsigned w = at == SMTP_TTL_AT_EHLO ? 0 : at == SMTP_TTL_AT_STARTTLS ? 1 : 2;
    smtp_anomaly(s, ANOM_TTL_SHIFT_REPLY, DIR_S2C, m, "ttl %u->%u on the %s (%u hop%s%s%s)", ref,
                 ttl, what[w], hops, hops == 1 ? "" : "s", cls ? ", another initial TTL" : "",
                 ipid ? ", IP ID break" : "");
}

/* TTL / hop limit and IPv4 ID of the server's packets, from the banner on.
 * Linux uses a per-socket incrementing ID (0 with DF on control packets such
 * as RSTs and TIME_WAIT ACKs), others 0 or random: only a break in a pattern
 * seen SMTP_IPID_LEARN times counts, and nothing after the server's FIN. */
static void packet_fp(struct smtp_session *s, enum stream_dir dir, const struct stream_meta *m,
                      uint8_t flags)
{
    if (dir != DIR_S2C || !m || !s->ttl_base_set || s->quit_answered)
        return;
    if (s->server_fin)
        return;
    if (flags & PKT_TH_FIN)
        s->server_fin = true;
    if (m->ttl != s->ttl_base) {
        if (s->ttl_reports < SMTP_FP_REPORTS_MAX) {
            s->ttl_reports++;
            smtp_anomaly(s, ANOM_TTL_SHIFT, DIR_S2C, m, "ttl %u->%u", s->ttl_base, m->ttl);
        }
        s->ttl_base = m->ttl;
    }
    if (m->ip_version != 4 || (flags & PKT_TH_RST))
        return;
    uint16_t id = m->ip_id;
    if (!s->ipid_have) {
        s->ipid_have = true;
        s->ipid_last = id;
        return;
    }
    uint16_t step = (uint16_t)(id - s->ipid_last);
    bool shift = false;
    if (s->ipid_zero >= SMTP_IPID_LEARN && id != 0)
        shift = true;
    else if (s->ipid_seq >= SMTP_IPID_LEARN && (step == 0 || step > SMTP_IPID_STEP_MAX) &&
             (id == 0 || (step > SMTP_IPID_JUMP && step < 65536 - SMTP_IPID_STEP_MAX)))
        shift = true;
    if (shift) {
        if (s->ipid_reports < SMTP_FP_REPORTS_MAX) {
            s->ipid_reports++;
            smtp_anomaly(s, ANOM_IPID_SHIFT, DIR_S2C, m, "ipid %u->%u", s->ipid_last, id);
        }
        s->ipid_seq = s->ipid_zero = 0;
    } else if (id == 0 && s->ipid_last == 0) {
        s->ipid_zero++;
        s->ipid_seq = 0;
    } else if (step >= 1 && step <= SMTP_IPID_STEP_MAX) {
        s->ipid_seq++;
        s->ipid_zero = 0;
    } else if (step == 0 || step >= 65536 - SMTP_IPID_STEP_MAX) {
        /* retransmission or reordering: no information */
    } else {
        s->ipid_seq = s->ipid_zero = 0;
    }
    s->ipid_last = id;
}

void smtp_session_packet(struct smtp_session *s, enum stream_dir dir, const struct stream_meta *m)
{
    packet_fp(s, dir, m, PKT_TH_ACK);
}

void smtp_session_tcp_packet(struct smtp_session *s, enum stream_dir dir,
                             const struct stream_meta *m, uint8_t tcp_flags)
{
    if (dir == DIR_C2S)
        s->f.flow.pkts_c2s++;
    else
        s->f.flow.pkts_s2c++;
    if (m)
        s->f.pkt_last_ts = m->ts;
    packet_fp(s, dir, m, tcp_flags);
}

/* What one copy of a server-side overlap holds: a capability line
 * STARTTLS ("250-STARTTLS", "250 STARTTLS", or the keyword where the copy
 * begins), a line that starts with 220. */
static uint8_t ovl_scan(const uint8_t *b, size_t n)
{
    uint8_t has = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && b[i - 1] != '\n')
            continue;
        size_t k = i;
        if (n - i >= 4 && b[i] == '2' && isdigit(b[i + 1]) && isdigit(b[i + 2]) &&
            (b[i + 3] == '-' || b[i + 3] == ' ' || b[i + 3] == '\r')) {
            if (b[i + 1] == '2' && b[i + 2] == '0')
                has |= SMTP_OVL_HAS_220;
            k = i + 4;
        } else if (n - i == 3 && !memcmp(b + i, "220", 3)) {
            has |= SMTP_OVL_HAS_220;
        }
        if (n - k >= 8 && !strncasecmp((const char *)b + k, "STARTTLS", 8) &&
            (n - k == 8 || b[k + 8] == '\r' || b[k + 8] == '\n' || b[k + 8] == ' '))
            has |= SMTP_OVL_HAS_STARTTLS;
    }
    return has;
}

void smtp_session_overlap(struct smtp_session *s, enum stream_dir dir, const struct stream_meta *m,
                          const struct stream_overlap *ov)
{
    if (dir == DIR_C2S && s->tls_quiet)
        return; /* past the handshake: the client's bytes count no more */
    smtp_anomaly(s, ANOM_OVERLAP_CONFLICT, dir, m, "retransmission differs from first copy");
    if (!ov || dir != DIR_S2C || s->ignored || !ov->len || s->srv_off == UINT32_MAX)
        return;
    /* both replies judged: nothing more to learn */
    if ((s->ovl_done & 3u) == 3u)
        return;
    struct smtp_ovl c = {0};
    int64_t lo = (int64_t)s->srv_off + ov->rel;
    if (lo >= UINT32_MAX)
        return;
    c.lo = lo > 0 ? (uint32_t)lo : 0;
    c.hi = ovl_off(c.lo, ov->len);
    c.ts = m ? m->ts : 0;
    c.pkt_no = m ? m->pkt_no : 0;
    c.first = ovl_scan(ov->first, ov->len);
    c.second = ovl_scan(ov->second, ov->len);
    if (c.first == c.second)
        return; /* they agree on what matters here */
    if (!s->ovl && !(s->ovl = calloc(SMTP_OVL_MAX, sizeof *s->ovl)))
        return;
    s->ovl[s->ovl_next] = c;
    s->ovl_next = (uint8_t)((s->ovl_next + 1) % SMTP_OVL_MAX);
    if (s->n_ovl < SMTP_OVL_MAX)
        s->n_ovl++;
    smtp_ovl_judge(s);
}

void smtp_session_end(struct smtp_session *s, enum flow_end why, sw_usec ts)
{
    if (s->ignored || s->st == SMTP_ST_CLASSIFY || s->f.end != SMTP_END_NONE)
        return;
    if (ts > s->f.last_ts)
        s->f.last_ts = ts;
    /* a line over the bound that no LF ended (a 10 MB line up to the end of
     * the capture): its bounded prefix is parsed and the anomaly recorded */
    for (int d = 0; d < 2; d++)
        if (s->line[d].overflow && !s->line[d].resync)
            line_flush(s, (enum stream_dir)d, true, NULL);
    if (s->quit_answered)
        s->f.end = SMTP_END_QUIT;
    else if (s->f.tls->established ||
             (s->f.flow.midstream && !s->f.tls->client_hello && !s->f.tls->server_hello &&
              (s->st == SMTP_ST_TLS || s->srv == SMTP_SRV_TLS)))
        s->f.end = SMTP_END_TLS;
    else {
        switch (why) {
        case FLOW_END_FIN:
            s->f.end = SMTP_END_FIN;
            break;
        case FLOW_END_RST:
            s->f.end = SMTP_END_RST;
            break;
        case FLOW_END_TIMEOUT:
            s->f.end = SMTP_END_TIMEOUT;
            break;
        case FLOW_END_EVICTED:
            s->f.end = SMTP_END_EVICTED;
            break;
        case FLOW_END_SHUTDOWN:
            s->f.end = SMTP_END_CAPTURE_END;
            break;
        }
    }
    if (s->f.tls->client_hello || s->f.tls->server_hello || s->st == SMTP_ST_TLS_EXPECT ||
        s->srv == SMTP_SRV_TLS_EXPECT)
        if (s->f.starttls_code == 220 || s->implicit_tls)
            smtp_tls_event(s);
    smtp_emit(s, SMTP_EV_END);
}

const struct smtp_facts *smtp_session_facts(const struct smtp_session *s)
{
    return s ? &s->f : NULL;
}

void smtp_session_free(struct smtp_session *s)
{
    if (!s)
        return;
    facts_clear(&s->f);
    if (s->tls) {
        tls_state_clear(s->tls);
        free(s->tls);
    }
    ndpi_smtp_flow_free(s->ndpi);
    free(s->line[0].buf);
    free(s->line[1].buf);
    free(s->ring);
    free(s->ovl);
    struct smtp_consumer *sc = s->consumer;
    stats_charge(s->stats, sc ? sc->ft : NULL, s->charged, 0);
    if (sc)
        strs_sync(sc); /* the strings only this session held are gone */
    struct smtp_own *own = s->own;
    free(s);
    if (own) {
        strtab_free(own->strs);
        free(own);
    }
}

/* ---- the stream consumer ---- */

size_t smtp_consumer_session_bytes(void)
{
    return sizeof(struct smtp_session);
}

/* A flow on an SMTP port (or any port with any_port) is wanted; nothing is
 * allocated for it until its first payload byte, gap or overlap (open). */
static bool c_want(void *ctx, const struct flow_info *fi)
{
    struct smtp_consumer *sc = ctx;
    const struct smtp_cfg *c = &sc->cfg;
    bool std = port_in(fi->sport, c->ports, c->n_ports) ||
               port_in(fi->sport, c->tls_ports, c->n_tls_ports);
    if (!std && !c->any_port) {
        sc->stats.ignored_flows++;
        return false;
    }
    return true;
}

/* The flow's session, at its first payload, gap or overlap; NULL when the
 * flow is to be ignored (classifier, memcap of an unbound consumer). */
static void *c_open(void *ctx, const struct flow_info *fi)
{
    struct smtp_consumer *sc = ctx;
    const struct smtp_cfg *c = &sc->cfg;
    bool std = port_in(fi->sport, c->ports, c->n_ports) ||
               port_in(fi->sport, c->tls_ports, c->n_tls_ports);
    if (!std && !c->any_port) {
        sc->stats.ignored_flows++;
        return NULL;
    }
    if (!std && !sc->ndpi && !(sc->ndpi = ndpi_smtp_new())) {
        sc->stats.ignored_flows++;
        return NULL;
    }
    if (!sc->ft && sc->stats.mem_in_use + sizeof(struct smtp_session) > sc->cfg.memcap) {
        sc->stats.memcap_refused++;
        return NULL;
    }
    struct smtp_session *s = session_new(&sc->cfg, fi, &sc->stats, sc->strs, true, sc);
    if (s && !std) {
        s->ndpi = ndpi_smtp_flow_new(sc->ndpi, fi);
        if (s->ndpi) {
            smtp_enter_state(s, SMTP_ST_CLASSIFY);
        } else {
            smtp_session_free(s);
            s = NULL;
            sc->stats.ignored_flows++;
            sc->stats.sessions--;
        }
    }
    if (!s)
        return NULL;
    smtp_mem_sync(s);
    return s;
}

static unsigned c_data(void *st, enum stream_dir dir, const uint8_t *buf, size_t len,
                       const struct stream_meta *m)
{
    struct smtp_session *s = st;
    unsigned r = smtp_session_feed(s, dir, buf, len, m);
    smtp_mem_sync(s);
    return r;
}

static unsigned c_gap(void *st, enum stream_dir dir, uint32_t len, const struct stream_meta *m)
{
    struct smtp_session *s = st;
    smtp_session_gap(s, dir, len, m);
    smtp_mem_sync(s);
    return s->st == SMTP_ST_IGNORED ? STREAM_STOP_C2S | STREAM_STOP_S2C : s->stop;
}

static void c_packet(void *st, enum stream_dir dir, const struct stream_meta *m, uint8_t flags)
{
    smtp_session_tcp_packet(st, dir, m, flags);
}

static void c_overlap(void *st, enum stream_dir dir, const struct stream_meta *m,
                      const struct stream_overlap *ov)
{
    struct smtp_session *s = st;
    smtp_session_overlap(s, dir, m, ov);
    smtp_mem_sync(s);
}

/* Bytes past the point the session stopped reading (TLS): they still
 * count in source.bytes and destination.bytes. */
static void c_skipped(void *st, enum stream_dir dir, uint32_t len)
{
    struct smtp_session *s = st;
    if (s->st == SMTP_ST_IGNORED || s->st == SMTP_ST_CLASSIFY)
        return;
    if (dir == DIR_C2S)
        s->f.bytes_c2s += len;
    else
        s->f.bytes_s2c += len;
}

static void c_close(void *st, enum flow_end why, sw_usec ts)
{
    struct smtp_session *s = st;
    smtp_session_end(s, why, ts);
    smtp_session_free(s);
}

/* A wanted flow that never carried a byte, gap or overlap (a scan, a
 * refused or tarpitted connection) is not an SMTP conversation: no record,
 * no event, only a count. */
static void c_unopened(void *ctx, enum flow_end why)
{
    (void)why;
    struct smtp_consumer *sc = ctx;
    sc->stats.flows_no_payload++;
}

struct smtp_consumer *smtp_consumer_new(const struct smtp_cfg *cfg)
{
    struct smtp_consumer *sc = calloc(1, sizeof *sc);
    if (!sc)
        return NULL;
    sc->cfg = *cfg;
    cfg_normalise(&sc->cfg);
    if (!sc->cfg.memcap)
        sc->cfg.memcap = SMTP_MEMCAP_DEFAULT;
    sc->strs = strtab_new();
    sc->certs = x509_cache_new(X509_CACHE_MAX);
    if (!sc->strs || !sc->certs) {
        strtab_free(sc->strs);
        x509_cache_free(sc->certs);
        free(sc);
        return NULL;
    }
    sc->ops.ctx = sc;
    sc->ops.want = c_want;
    sc->ops.open = c_open;
    sc->ops.data = c_data;
    sc->ops.gap = c_gap;
    sc->ops.packet = c_packet;
    sc->ops.overlap_conflict = c_overlap;
    sc->ops.skipped = c_skipped;
    sc->ops.close = c_close;
    sc->ops.unopened = c_unopened;
    strs_sync(sc);
    return sc;
}

void smtp_consumer_bind(struct smtp_consumer *sc, struct flow_table *ft)
{
    /* what was charged so far moves to the table */
    if (!sc->ft && ft)
        flow_table_mem_charge(ft, (size_t)sc->stats.mem_in_use);
    sc->ft = ft;
}

const struct smtp_stats *smtp_consumer_stats(const struct smtp_consumer *sc)
{
    return &sc->stats;
}

const struct stream_consumer *smtp_consumer_ops(struct smtp_consumer *sc)
{
    return &sc->ops;
}

void smtp_consumer_free(struct smtp_consumer *sc)
{
    if (!sc)
        return;
    ndpi_smtp_free(sc->ndpi);
    x509_cache_free(sc->certs);
    strtab_free(sc->strs);
    free(sc);
}
