/* SPDX-License-Identifier: Apache-2.0 */
/* bench_gen.c: the `bench` target: generates captures (a >= 1 GB mix of SMTP
 * sessions, some with STARTTLS and TLS-looking records, among other TCP
 * traffic; an SMTP-only capture with messages of 2 KB..10 MB, half of them
 * STARTTLS; 1,000,000 idle TCP handshakes; 200,000 SMTP sessions held open
 * after a banner, EHLO, 20 capabilities and one transaction of 5 recipients;
 * the SMTP-only capture merged with a SYN flood and idle sessions spread over
 * it, for the throughput under attack), runs stripwatch on them and a bare libpcap read loop over
 * the same files, prints the figures, deletes the files. The real-mix case (bench_realmix.c) is
 * built from real captures instead. --only picks one part. It also writes the
 * captures some tests read (--write-*). Frames follow RFC 894 / RFC 791 / RFC 9293; SMTP RFC 5321;
 * the TLS records are shaped as RFC 8446 (contents are filler). */
#include <errno.h>
#include <pcap/pcap.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "bench_realmix.h"

#define MSS     1460
#define TLS_REC 16384

/* ---- output ---- */

struct pw {
    FILE *f;
    uint64_t bytes, frames;
    int64_t ts;   /* microseconds */
    int64_t pace; /* extra microseconds after each frame (spreads a flood) */
};

static void le32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}

static void be16(uint8_t *b, uint16_t v)
{
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
}

static void be32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

static bool pw_open(struct pw *w, const char *path)
{
    memset(w, 0, sizeof(*w));
    w->f = fopen(path, "wb");
    if (!w->f)
        return false;
    setvbuf(w->f, NULL, _IOFBF, 1 << 22);
    uint8_t h[24];
    le32(h, 0xa1b2c3d4u);
    h[4] = 2;
    h[5] = 0;
    h[6] = 4;
    h[7] = 0;
    le32(h + 8, 0);
    le32(h + 12, 0);
    le32(h + 16, 262144);
    le32(h + 20, 1);
    fwrite(h, 1, 24, w->f);
    w->ts = 1763800000LL * 1000000LL;
    return true;
}

static bool pw_close(struct pw *w)
{
    return fclose(w->f) == 0;
}

/* One Ethernet/IPv4/TCP frame. */
static void pw_frame(struct pw *w, uint32_t src, uint32_t dst, uint16_t sp, uint16_t dp,
                     uint32_t seq, uint32_t ack, uint8_t flags, uint16_t ipid, uint8_t ttl,
                     const uint8_t *pl, uint32_t plen)
{
    uint8_t h[16 + 54];
    uint32_t len = 54 + plen;
    w->ts += 20 + w->pace;
    le32(h, (uint32_t)(w->ts / 1000000));
    le32(h + 4, (uint32_t)(w->ts % 1000000));
    le32(h + 8, len);
    le32(h + 12, len);
    uint8_t *e = h + 16;
    memcpy(e, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00", 14);
    uint8_t *ip = e + 14;
    ip[0] = 0x45;
    ip[1] = 0;
    be16(ip + 2, (uint16_t)(20 + 20 + plen));
    be16(ip + 4, ipid);
    be16(ip + 6, 0x4000);
    ip[8] = ttl;
    ip[9] = 6;
    be16(ip + 10, 0);
    be32(ip + 12, src);
    be32(ip + 16, dst);
    uint8_t *t = ip + 20;
    be16(t, sp);
    be16(t + 2, dp);
    be32(t + 4, seq);
    be32(t + 8, ack);
    t[12] = 0x50;
    t[13] = flags;
    be16(t + 14, 65535);
    be16(t + 16, 0);
    be16(t + 18, 0);
    fwrite(h, 1, sizeof(h), w->f);
    if (plen)
        fwrite(pl, 1, plen, w->f);
    w->bytes += 16 + len;
    w->frames++;
}

/* ---- content ---- */

static uint8_t rnd_block[65536];
static uint8_t text_block[78 * 840]; /* lines of 78 bytes with CRLF, no '.' */
static uint8_t client_hello[256], server_hello[256];
static size_t ch_len, sh_len;
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t xrand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void content_init(void)
{
    for (size_t i = 0; i < sizeof(rnd_block); i++)
        rnd_block[i] = (uint8_t)xrand();
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789";
    for (size_t l = 0; l < sizeof(text_block) / 78; l++) {
        for (size_t i = 0; i < 76; i++)
            text_block[l * 78 + i] = (uint8_t)alpha[(l * 7 + i * 3) % (sizeof(alpha) - 1)];
        text_block[l * 78 + 76] = '\r';
        text_block[l * 78 + 77] = '\n';
    }
    /* ClientHello: TLS 1.3 shaped, SNI mx.example.org, supported_versions */
    uint8_t *p = client_hello + 9;
    *p++ = 3;
    *p++ = 3;
    memcpy(p, rnd_block, 32);
    p += 32;
    *p++ = 0; /* session id */
    *p++ = 0;
    *p++ = 6; /* cipher suites */
    *p++ = 0x13;
    *p++ = 0x01;
    *p++ = 0x13;
    *p++ = 0x02;
    *p++ = 0xc0;
    *p++ = 0x2f;
    *p++ = 1;
    *p++ = 0; /* compression */
    uint8_t *ext_len = p;
    p += 2;
    uint8_t *ext = p;
    const char *sni = "mx.example.org";
    size_t sl = strlen(sni);
    *p++ = 0;
    *p++ = 0; /* server_name */
    be16(p, (uint16_t)(sl + 5));
    p += 2;
    be16(p, (uint16_t)(sl + 3));
    p += 2;
    *p++ = 0;
    be16(p, (uint16_t)sl);
    p += 2;
    memcpy(p, sni, sl);
    p += sl;
    *p++ = 0;
    *p++ = 0x2b;
    *p++ = 0;
    *p++ = 5;
    *p++ = 4; /* supported_versions */
    *p++ = 3;
    *p++ = 4;
    *p++ = 3;
    *p++ = 3;
    be16(ext_len, (uint16_t)(p - ext));
    size_t hs = (size_t)(p - (client_hello + 9));
    client_hello[0] = 0x16;
    client_hello[1] = 3;
    client_hello[2] = 1;
    be16(client_hello + 3, (uint16_t)(hs + 4));
    client_hello[5] = 1;
    client_hello[6] = 0;
    be16(client_hello + 7, (uint16_t)hs);
    ch_len = (size_t)(p - client_hello);
    /* ServerHello (TLS 1.3 via supported_versions) + ChangeCipherSpec */
    p = server_hello + 9;
    *p++ = 3;
    *p++ = 3;
    memcpy(p, rnd_block + 32, 32);
    p += 32;
    *p++ = 0;
    *p++ = 0x13;
    *p++ = 0x01;
    *p++ = 0;
    *p++ = 0;
    *p++ = 6;
    *p++ = 0;
    *p++ = 0x2b;
    *p++ = 0;
    *p++ = 2;
    *p++ = 3;
    *p++ = 4;
    hs = (size_t)(p - (server_hello + 9));
    server_hello[0] = 0x16;
    server_hello[1] = 3;
    server_hello[2] = 3;
    be16(server_hello + 3, (uint16_t)(hs + 4));
    server_hello[5] = 2;
    server_hello[6] = 0;
    be16(server_hello + 7, (uint16_t)hs);
    memcpy(p, "\x14\x03\x03\x00\x01\x01", 6);
    p += 6;
    sh_len = (size_t)(p - server_hello);
}

/* ---- connections as scripts ---- */

enum kind { K_TEXT, K_BODY, K_TLS, K_RAW };
struct step {
    uint8_t dir; /* 0 client->server, 1 server->client */
    uint8_t kind;
    const uint8_t *text;
    uint64_t len;
};

#define MAX_STEPS 20
struct conn {
    uint32_t ip[2];
    uint16_t port[2];
    uint32_t seq[2];
    uint16_t ipid[2];
    struct step steps[MAX_STEPS];
    int n_steps, step;
    uint64_t off;
    int phase; /* 0 SYN, 1 SYN-ACK, 2 ACK, 3 data, 4 FIN c, 5 FIN s, 6 ACK, 7 done */
    bool smtp;
};

static void add(struct conn *c, uint8_t dir, uint8_t kind, const void *text, uint64_t len)
{
    struct step *s = &c->steps[c->n_steps++];
    s->dir = dir;
    s->kind = kind;
    s->text = text;
    s->len = kind == K_TEXT && len == 0 ? strlen(text) : len;
}

static void fill(const struct step *s, uint64_t off, uint8_t *dst, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint64_t o = off + i;
        switch (s->kind) {
        case K_TEXT:
            dst[i] = s->text[o];
            break;
        case K_BODY:
            dst[i] = o + 5 < s->len ? text_block[o % sizeof(text_block)]
                                    : (uint8_t) "\r\n.\r\n"[o - (s->len - 5)];
            break;
        case K_TLS: {
            uint64_t p = o % (TLS_REC + 5);
            static const uint8_t hdr[5] = {0x17, 3, 3, TLS_REC >> 8, TLS_REC & 0xFF};
            dst[i] = p < 5 ? hdr[p] : rnd_block[o % sizeof(rnd_block)];
            break;
        }
        default:
            dst[i] = rnd_block[(o * 7) % sizeof(rnd_block)];
        }
    }
}

static uint64_t tls_len(uint64_t n)
{
    uint64_t recs = (n + TLS_REC - 1) / TLS_REC;
    return recs * (TLS_REC + 5);
}

static uint32_t next_client = 0x0a000001;

static void conn_init(struct conn *c, uint16_t server_port)
{
    memset(c, 0, sizeof(*c));
    c->ip[0] = next_client++;
    c->ip[1] = 0xc0000219; /* 192.0.2.25 */
    c->port[0] = (uint16_t)(20000 + xrand() % 40000);
    c->port[1] = server_port;
    c->seq[0] = (uint32_t)xrand();
    c->seq[1] = (uint32_t)xrand();
    c->ipid[0] = (uint16_t)xrand();
    c->ipid[1] = (uint16_t)xrand();
}

static const char EHLO_REPLY[] = "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n"
                                 "250-STARTTLS\r\n250-8BITMIME\r\n250 CHUNKING\r\n";

static void smtp_conn(struct conn *c, uint64_t size, bool starttls)
{
    conn_init(c, 25);
    c->smtp = true;
    add(c, 1, K_TEXT, "220 mx.example.org ESMTP Postfix\r\n", 0);
    add(c, 0, K_TEXT, "EHLO out.example.net\r\n", 0);
    add(c, 1, K_TEXT, EHLO_REPLY, 0);
    if (starttls) {
        add(c, 0, K_TEXT, "STARTTLS\r\n", 0);
        add(c, 1, K_TEXT, "220 2.0.0 Ready to start TLS\r\n", 0);
        add(c, 0, K_TEXT, client_hello, ch_len);
        add(c, 1, K_TEXT, server_hello, sh_len);
        add(c, 1, K_TLS, NULL, tls_len(4000));
        add(c, 0, K_TLS, NULL, tls_len(size + 200));
        add(c, 1, K_TLS, NULL, tls_len(300));
        return;
    }
    add(c, 0, K_TEXT, "MAIL FROM:<alice@example.net> SIZE=1000\r\n", 0);
    add(c, 1, K_TEXT, "250 2.1.0 Ok\r\n", 0);
    add(c, 0, K_TEXT, "RCPT TO:<bob@example.org>\r\n", 0);
    add(c, 1, K_TEXT, "250 2.1.5 Ok\r\n", 0);
    add(c, 0, K_TEXT, "DATA\r\n", 0);
    add(c, 1, K_TEXT, "354 End data with <CR><LF>.<CR><LF>\r\n", 0);
    add(c, 0, K_BODY, NULL, size < 16 ? 16 : size);
    add(c, 1, K_TEXT, "250 2.0.0 Ok: queued as 4Abc\r\n", 0);
    add(c, 0, K_TEXT, "QUIT\r\n", 0);
    add(c, 1, K_TEXT, "221 2.0.0 Bye\r\n", 0);
}

static void other_conn(struct conn *c, uint64_t size)
{
    bool tls = xrand() % 2;
    conn_init(c, tls ? 443 : 80);
    if (tls) {
        add(c, 0, K_TEXT, client_hello, ch_len);
        add(c, 1, K_TEXT, server_hello, sh_len);
        add(c, 1, K_TLS, NULL, tls_len(size));
    } else {
        add(c, 0, K_TEXT, "GET /download/file.bin HTTP/1.1\r\nHost: www.example.com\r\n\r\n", 0);
        add(c, 1, K_RAW, NULL, size);
    }
}

/* Emits the connection's next packet; false when it is over. */
static bool conn_next(struct conn *c, struct pw *w)
{
    static uint8_t buf[MSS];
    uint8_t ttl[2] = {64, 56};
#define PKT(d, fl, pl, n)                                                                          \
    pw_frame(w, c->ip[d], c->ip[!(d)], c->port[d], c->port[!(d)], c->seq[d], c->seq[!(d)], fl,     \
             c->ipid[d]++, ttl[d], pl, n)
    switch (c->phase) {
    case 0:
        PKT(0, 0x02, NULL, 0);
        c->seq[0]++;
        c->phase = 1;
        return true;
    case 1:
        PKT(1, 0x12, NULL, 0);
        c->seq[1]++;
        c->phase = 2;
        return true;
    case 2:
        PKT(0, 0x10, NULL, 0);
        c->phase = c->n_steps ? 3 : 7;
        return c->phase != 7;
    case 3: {
        const struct step *s = &c->steps[c->step];
        uint64_t left = s->len - c->off;
        uint32_t n = left < MSS ? (uint32_t)left : MSS;
        fill(s, c->off, buf, n);
        PKT(s->dir, 0x18, buf, n);
        c->seq[s->dir] += n;
        c->off += n;
        if (c->off == s->len) {
            c->off = 0;
            if (++c->step == c->n_steps)
                c->phase = 4;
        }
        return true;
    }
    case 4:
        PKT(0, 0x11, NULL, 0);
        c->seq[0]++;
        c->phase = 5;
        return true;
    case 5:
        PKT(1, 0x11, NULL, 0);
        c->seq[1]++;
        c->phase = 6;
        return true;
    case 6:
        PKT(0, 0x10, NULL, 0);
        c->phase = 7;
        return false;
    }
    return false;
#undef PKT
}

/* 2 KB .. 10 MB, log-uniform */
static uint64_t msg_size(void)
{
    double u = (double)(xrand() % 1000000) / 1e6;
    double lo = 2048, hi = 10 * 1024 * 1024;
    return (uint64_t)(lo * __builtin_exp(u * __builtin_log(hi / lo)));
}

struct gen_result {
    uint64_t frames, bytes, smtp_sessions, other;
};

/* Interleaves up to K connections until target bytes are written. */
static bool generate(const char *path, uint64_t target, int K, bool smtp_only,
                     struct gen_result *res)
{
    struct pw w;
    if (!pw_open(&w, path))
        return false;
    struct conn *cs = calloc((size_t)K, sizeof(*cs));
    bool *live = calloc((size_t)K, sizeof(*live));
    memset(res, 0, sizeof(*res));
    int active = 0;
    for (;;) {
        for (int i = 0; i < K; i++) {
            if (!live[i] && w.bytes < target) {
                uint64_t r = xrand() % 10;
                if (smtp_only) {
                    smtp_conn(&cs[i], msg_size(), res->smtp_sessions % 2 == 1);
                } else if (r < 6) {
                    /* small and medium messages, a third with STARTTLS */
                    smtp_conn(&cs[i], 2048 + xrand() % 200000, r < 2);
                } else {
                    other_conn(&cs[i], 100000 + xrand() % 4000000);
                }
                if (cs[i].smtp)
                    res->smtp_sessions++;
                else
                    res->other++;
                live[i] = true;
                active++;
            }
            if (live[i] && !conn_next(&cs[i], &w)) {
                live[i] = false;
                active--;
            }
        }
        if (active == 0 && w.bytes >= target)
            break;
    }
    res->frames = w.frames;
    res->bytes = w.bytes;
    free(cs);
    free(live);
    return pw_close(&w);
}

/* N idle handshakes on port 25 (or another port), all concurrent. */
static bool handshakes(const char *path, uint32_t n, uint16_t port)
{
    struct pw w;
    if (!pw_open(&w, path))
        return false;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t cip = 0x0a000000u + (i / 50000) * 256 + 1, sip = 0xc0000219;
        uint16_t cp = (uint16_t)(10000 + i % 50000);
        w.ts -= 19; /* 1 us per packet: 1M flows in 3 s */
        pw_frame(&w, cip, sip, cp, port, 1000, 0, 0x02, 1, 64, NULL, 0);
        w.ts -= 19;
        pw_frame(&w, sip, cip, port, cp, 5000, 1001, 0x12, 1, 64, NULL, 0);
        w.ts -= 19;
        pw_frame(&w, cip, sip, cp, port, 1001, 5001, 0x10, 2, 64, NULL, 0);
    }
    return pw_close(&w);
}

/* ---- measuring ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct bare {
    uint64_t packets, bytes;
    double secs;
};

static bool bare_read(const char *path, struct bare *b)
{
    char e[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(path, e);
    if (!p) {
        fprintf(stderr, "bench: %s\n", e);
        return false;
    }
    struct pcap_pkthdr *h;
    const u_char *d;
    memset(b, 0, sizeof(*b));
    double t0 = now_s();
    while (pcap_next_ex(p, &h, &d) == 1) {
        b->packets++;
        b->bytes += h->len;
    }
    b->secs = now_s() - t0;
    pcap_close(p);
    return true;
}

struct child {
    int status;
    double secs;
    long maxrss_kb;
};

static bool run_sensor(const char *sw, const char *file, const char *workers, const char *extra1,
                       const char *extra2, struct child *r)
{
    double t0 = now_s();
    pid_t pid = fork();
    if (pid == 0) {
        int dn = open("/dev/null", O_WRONLY);
        dup2(dn, 1);
        dup2(dn, 2);
        const char *argv[16] = {
            sw,          "-q",           "-r",       file, "--workers", workers, "--sessions-out",
            "/dev/null", "--alerts-out", "/dev/null"};
        int n = 10;
        if (extra1)
            argv[n++] = extra1;
        if (extra2)
            argv[n++] = extra2;
        argv[n] = NULL;
        execv(sw, (char *const *)argv);
        _exit(127);
    }
    struct rusage ru;
    int st;
    if (pid < 0 || wait4(pid, &st, 0, &ru) != pid)
        return false;
    r->secs = now_s() - t0;
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r->maxrss_kb = ru.ru_maxrss;
    if (r->status != 0)
        fprintf(stderr, "bench: stripwatch exited %d on %s\n", r->status, file);
    return r->status == 0;
}

static bool run_sensor_argv(const char *sw, char *const *extra, struct child *r)
{
    double t0 = now_s();
    pid_t pid = fork();
    if (pid == 0) {
        int dn = open("/dev/null", O_WRONLY);
        dup2(dn, 1);
        dup2(dn, 2);
        const char *argv[32] = {sw};
        int n = 1;
        for (; extra[n - 1] && n < 31; n++)
            argv[n] = extra[n - 1];
        argv[n] = NULL;
        execv(sw, (char *const *)argv);
        _exit(127);
    }
    struct rusage ru;
    int st;
    if (pid < 0 || wait4(pid, &st, 0, &ru) != pid)
        return false;
    r->secs = now_s() - t0;
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r->maxrss_kb = ru.ru_maxrss;
    return r->status == 0;
}

/* ---- sessions held open (issue 11) ---- */

/* The capabilities of the common case: 20 lines. */
static const char EHLO_REPLY_20[] =
    "250-mx.example.org Hello out.example.net\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n"
    "250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n"
    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n"
    "250-BINARYMIME\r\n250-DELIVERBY 300\r\n250-MT-PRIORITY MIXER\r\n250-FUTURERELEASE 604800\r\n"
    "250-REQUIRETLS\r\n250-LIMITS RCPTMAX=100\r\n250-XCLIENT NAME ADDR\r\n250 XFORWARD NAME\r\n";

/* n SMTP sessions to server (port 25), each written whole and left open, 1 us
 * apart per packet: the handshake and the banner, and with full the common
 * case of issue 11 (EHLO, a 20-capability reply, MAIL FROM and 5 RCPT TO
 * with their replies); the client ACKs the last reply. */
static void open_sessions(struct pw *w, uint32_t n, uint32_t server, bool full)
{
    static const char mail[] =
        "MAIL FROM:<alice@example.net> SIZE=1000\r\nRCPT TO:<b1@one.example>\r\n"
        "RCPT TO:<b2@two.example>\r\nRCPT TO:<b3@three.example>\r\nRCPT TO:<b4@four.example>\r\n"
        "RCPT TO:<b5@five.example>\r\n";
    static const char ok[] = "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
                             "250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n";
    static const char banner[] = "220 mx.example.org ESMTP Postfix\r\n";
    static const char ehlo[] = "EHLO out.example.net\r\n";
    for (uint32_t i = 0; i < n; i++) {
        uint32_t cip = 0x0b000000u + (i / 50000) * 256 + 1;
        uint16_t cp = (uint16_t)(10000 + i % 50000);
        uint32_t c = 1000, s = 5000;
#define OS_PKT(from_c, fl, txt)                                                                    \
    do {                                                                                           \
        const char *t_ = (txt);                                                                    \
        uint32_t l_ = t_ ? (uint32_t)strlen(t_) : 0;                                               \
        w->ts -= 19;                                                                               \
        if (from_c)                                                                                \
            pw_frame(w, cip, server, cp, 25, c, s, fl, 1, 64, (const uint8_t *)t_, l_);            \
        else                                                                                       \
            pw_frame(w, server, cip, 25, cp, s, c, fl, 1, 57, (const uint8_t *)t_, l_);            \
        if (from_c)                                                                                \
            c += l_ + (((fl)&0x03) ? 1 : 0);                                                       \
        else                                                                                       \
            s += l_ + (((fl)&0x03) ? 1 : 0);                                                       \
    } while (0)
        OS_PKT(true, 0x02, NULL);
        OS_PKT(false, 0x12, NULL);
        OS_PKT(true, 0x10, NULL);
        OS_PKT(false, 0x18, banner);
        if (full) {
            OS_PKT(true, 0x18, ehlo);
            OS_PKT(false, 0x18, EHLO_REPLY_20);
            OS_PKT(true, 0x18, mail);
            OS_PKT(false, 0x18, ok);
        }
        OS_PKT(true, 0x10, NULL);
#undef OS_PKT
    }
}

/* n SYNs that are never answered, from distinct addresses and ports. */
static void syn_flood(struct pw *w, uint32_t n, uint32_t server)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t cip = 0x0c000000u + (i / 50000) * 256 + 1;
        uint16_t cp = (uint16_t)(10000 + i % 50000);
        w->ts -= 19;
        pw_frame(w, cip, server, cp, 25, (uint32_t)xrand(), 0, 0x02, 1, 64, NULL, 0);
    }
}

/* The first timestamp of a capture (microseconds), 0 when unreadable. */
static int64_t first_ts(const char *path)
{
    char e[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(path, e);
    if (!p)
        return 0;
    struct pcap_pkthdr *h;
    const u_char *d;
    int64_t ts = 0;
    if (pcap_next_ex(p, &h, &d) == 1)
        ts = (int64_t)h->ts.tv_sec * 1000000 + h->ts.tv_usec;
    pcap_close(p);
    return ts;
}

/* A flood to merge before a real capture: syns half-open SYNs, then
 * sessions idle banner sessions, ending 1 ms before before's first packet
 * (to another server than the one in before). */
static bool write_flood(const char *path, uint32_t syns, uint32_t sessions, const char *before)
{
    int64_t end = first_ts(before);
    if (!end) {
        fprintf(stderr, "bench: %s: cannot read its first packet\n", before);
        return false;
    }
    struct pw w;
    if (!pw_open(&w, path))
        return false;
    uint64_t frames = (uint64_t)syns + 5ull * sessions;
    w.ts = end - 1000 - (int64_t)frames;
    syn_flood(&w, syns, 0xc0000264u); /* 192.0.2.100 */
    open_sessions(&w, sessions, 0xc0000264u, false);
    return pw_close(&w);
}

/* Throughput under attack: the SMTP-only capture alone, then merged by
 * time with syns half-open SYNs and sessions idle banner sessions spread
 * evenly over it (the flood written with pace so that it spans the clean
 * capture). Prints the clean traffic's packets per second in both runs and
 * their ratio. */
/* The attack case's flood: syns half-open SYNs and sessions idle banner
 * sessions paced to span the clean capture of clean_frames frames. */
static bool write_attack(const char *flood, const char *clean, uint64_t clean_frames, uint32_t syns,
                         uint32_t sessions, struct pw *w)
{
    int64_t start = first_ts(clean);
    if (!start || !pw_open(w, flood))
        return false;
    uint64_t frames = (uint64_t)syns + 5ull * sessions;
    int64_t span = (int64_t)clean_frames * 20;
    w->pace = span / (int64_t)frames > 1 ? span / (int64_t)frames - 1 : 0;
    w->ts = start;
    syn_flood(w, syns / 2, 0xc0000264u); /* 192.0.2.100 */
    open_sessions(w, sessions, 0xc0000264u, false);
    syn_flood(w, syns - syns / 2, 0xc0000265u);
    return pw_close(w);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of n wall times (sorts them). */
static double median(double *v, unsigned n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static bool bench_attack(const char *sw, const char *dir, const char *clean,
                         const struct gen_result *gs, uint32_t syns, uint32_t sessions,
                         unsigned runs)
{
    char flood[4200];
    snprintf(flood, sizeof(flood), "%s/attack.pcap", dir);
    struct pw w;
    bool ok = write_attack(flood, clean, gs->frames, syns, sessions, &w);
    char *a0[] = {"-q",        "-r",           (char *)clean, "--sessions-out",
                  "/dev/null", "--alerts-out", "/dev/null",   NULL};
    char *a1[] = {"-q",        "-r",           flood,       "-r", (char *)clean, "--sessions-out",
                  "/dev/null", "--alerts-out", "/dev/null", NULL};
    char *a2[] = {"-q",        "-r",           flood,       "--sessions-out",
                  "/dev/null", "--alerts-out", "/dev/null", NULL};
    struct bare b;
    double t0[16], t1[16], t2[16];
    long rss0 = 0, rss1 = 0, rss2 = 0;
    if (runs < 1 || runs > 16)
        runs = 3;
    ok = ok && bare_read(clean, &b);
    for (unsigned r = 0; ok && r < runs; r++) { /* alternating, medians */
        struct child c0, c1, c2;
        ok = run_sensor_argv(sw, a0, &c0) && run_sensor_argv(sw, a1, &c1) &&
             run_sensor_argv(sw, a2, &c2);
        t0[r] = c0.secs, t1[r] = c1.secs, t2[r] = c2.secs;
        rss0 = c0.maxrss_kb, rss1 = c1.maxrss_kb, rss2 = c2.maxrss_kb;
    }
    unlink(flood);
    if (!ok) {
        fprintf(stderr, "bench: the attack case failed\n");
        return false;
    }
    double s0 = median(t0, runs), s1 = median(t1, runs), s2 = median(t2, runs);
    double clean_f = (double)gs->frames, flood_f = (double)w.frames;
    printf("under attack: SMTP-only capture (%.2f GB, %llu frames, %llu sessions) merged with "
           "%u half-open SYNs and %u idle banner sessions (%llu frames) spread over it, 1 "
           "worker, default bounds, medians of %u runs\n",
           (double)gs->bytes / 1e9, (unsigned long long)gs->frames,
           (unsigned long long)gs->smtp_sessions, syns, sessions, (unsigned long long)w.frames,
           runs);
    printf("  %-28s %10.0f frames/s %8.2f s  peak RSS %ld MiB\n", "clean capture alone",
           clean_f / s0, s0, rss0 / 1024);
    printf("  %-28s %10.0f frames/s %8.2f s  peak RSS %ld MiB (%.0f ns a frame)\n", "flood alone",
           flood_f / s2, s2, rss2 / 1024, s2 * 1e9 / flood_f);
    printf("  %-28s %10.0f frames/s %8.2f s  peak RSS %ld MiB (%.0f clean frames/s)\n",
           "clean + flood merged", (clean_f + flood_f) / s1, s1, rss1 / 1024, clean_f / s1);
    printf("  throughput under attack/alone: %.2f (frames/s merged over frames/s of the clean "
           "capture alone; target >= 0.50)\n",
           ((clean_f + flood_f) / s1) / (clean_f / s0));
    printf("  the clean capture's own rate under attack/alone: %.2f (it shrinks with the "
           "flood's size: %.1f flood frames per clean frame here)\n",
           s0 / s1, flood_f / clean_f);
    fflush(stdout);
    return true;
}

/* Bytes per session held open: peak RSS with n common sessions minus peak
 * RSS with 1,000, divided by the difference. */
static bool bench_sessions(const char *sw, const char *dir, uint32_t n)
{
    char big[4200], base[4200];
    snprintf(big, sizeof(big), "%s/sessions.pcap", dir);
    snprintf(base, sizeof(base), "%s/sessions-base.pcap", dir);
    struct pw w;
    bool ok = pw_open(&w, big);
    if (ok) {
        open_sessions(&w, n, 0xc0000219, true);
        ok = pw_close(&w);
    }
    if (ok && (ok = pw_open(&w, base))) {
        open_sessions(&w, 1000, 0xc0000219, true);
        ok = pw_close(&w);
    }
    struct child cb, c0;
    char *a_big[] = {"-q",        "-r",           big,         "--max-flows",
                     "4000000",   "--memcap",     "16G",       "--sessions-out",
                     "/dev/null", "--alerts-out", "/dev/null", NULL};
    char *a_base[] = {"-q",        "-r",           base,        "--max-flows",
                      "4000000",   "--memcap",     "16G",       "--sessions-out",
                      "/dev/null", "--alerts-out", "/dev/null", NULL};
    if (!ok || !run_sensor_argv(sw, a_big, &cb) || !run_sensor_argv(sw, a_base, &c0)) {
        fprintf(stderr, "bench: the sessions case failed\n");
        unlink(big);
        unlink(base);
        return false;
    }
    double per = (double)(cb.maxrss_kb - c0.maxrss_kb) * 1024.0 / (double)(n - 1000);
    printf("sessions held open (banner, EHLO, 20 capabilities, MAIL FROM + 5 RCPT TO): %u "
           "concurrent: peak RSS %ld MiB, baseline (1000) %ld MiB: %.0f bytes per session in RSS "
           "(target <= 2048)\n",
           n, cb.maxrss_kb / 1024, c0.maxrss_kb / 1024, per);
    fflush(stdout);
    unlink(big);
    unlink(base);
    return true;
}

static void line(const char *what, uint64_t packets, uint64_t bytes, double secs, long rss_kb)
{
    printf("  %-34s %10.0f packets/s %7.2f Gbit/s %8.2f s", what, (double)packets / secs,
           (double)bytes * 8 / secs / 1e9, secs);
    if (rss_kb)
        printf("  peak RSS %ld MiB", rss_kb / 1024);
    printf("\n");
}

/* ---- memory of a policy snapshot (issue 11) ---- */

/* Writes a policy snapshot (policy/snapshot.h format, as snapshot_save
 * indents it) of at least target bytes: distinct domains, each with two mx
 * patterns. Returns the number of entries, 0 on error; *size gets the bytes. */
static uint32_t write_policies(const char *path, uint64_t target, uint64_t *size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    uint64_t n = 0;
    uint32_t i = 0;
    int w = fprintf(f, "{");
    n += w > 0 ? (uint64_t)w : 0;
    while (n < target) {
        w = fprintf(
            f,
            "%s\n  \"d%07u.example.org\": {\n    \"id\": \"20240101T%07u\",\n"
            "    \"policy\": \"version: STSv1\\nmode: enforce\\nmx: mx1.d%07u.example.org\\n"
            "mx: *.mx.example.net\\nmax_age: 604800\\n\",\n"
            "    \"fetched_at\": \"2024-01-01T00:00:00Z\"\n  }",
            i ? "," : "", i, i, i);
        if (w < 0)
            break;
        n += (uint64_t)w;
        i++;
    }
    w = fprintf(f, "\n}\n");
    n += w > 0 ? (uint64_t)w : 0;
    if (fclose(f) != 0 || w < 0)
        return 0;
    *size = n;
    return i;
}

/* Peak RSS of loading a 50 MB snapshot minus the same run without it. */
static bool bench_policies(const char *sw, const char *dir)
{
    char pol[4200], cap[4200];
    snprintf(pol, sizeof(pol), "%s/policies.json", dir);
    snprintf(cap, sizeof(cap), "%s/handshakes-policies.pcap", dir);
    uint64_t size = 0;
    uint32_t n = write_policies(pol, 50000000, &size);
    bool ok = n > 0 && handshakes(cap, 1000, 25);
    struct child with, without;
    char *a_with[] = {
        "-q",           "-r",        cap, "--policy-file", pol, "--sessions-out", "/dev/null",
        "--alerts-out", "/dev/null", NULL};
    char *a_without[] = {"-q",        "-r",           cap,         "--sessions-out",
                         "/dev/null", "--alerts-out", "/dev/null", NULL};
    ok = ok && run_sensor_argv(sw, a_with, &with) && run_sensor_argv(sw, a_without, &without);
    if (ok) {
        double delta = (double)(with.maxrss_kb - without.maxrss_kb) * 1024.0;
        printf("policy snapshot: %.1f MB, %u entries: peak RSS %ld MiB, without it %ld MiB: "
               "%.1f MB more, %.2fx the file size (target about 2)\n",
               (double)size / 1e6, n, with.maxrss_kb / 1024, without.maxrss_kb / 1024, delta / 1e6,
               delta / (double)size);
        fflush(stdout);
    } else {
        fprintf(stderr, "bench: the policy snapshot case failed\n");
    }
    unlink(pol);
    unlink(cap);
    return ok;
}

int main(int argc, char **argv)
{
    const char *sw = NULL;
    uint64_t mixed_mb = 1100, smtp_mb = 600;
    uint32_t flows = 1000000, sessions = 200000;
    const char *only = NULL;
    const char *rm_dirs[16];
    struct realmix_cfg rm = {.dirs = rm_dirs};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--stripwatch") == 0 && i + 1 < argc)
            sw = argv[++i];
        else if (strcmp(argv[i], "--mixed-mb") == 0 && i + 1 < argc)
            mixed_mb = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--smtp-mb") == 0 && i + 1 < argc)
            smtp_mb = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--write-mixed") == 0 && i + 2 < argc) {
            /* only write a mixed capture of about N MB (used by tests) */
            content_init();
            struct gen_result g;
            const char *path = argv[++i];
            uint64_t mb = strtoull(argv[++i], NULL, 10);
            if (!generate(path, mb << 20, 64, false, &g)) {
                fprintf(stderr, "bench: %s: %s\n", path, strerror(errno));
                return 1;
            }
            printf("%llu %llu\n", (unsigned long long)g.frames,
                   (unsigned long long)g.smtp_sessions);
            return 0;
        } else if (strcmp(argv[i], "--write-smtp") == 0 && i + 2 < argc) {
            /* only write an SMTP-only capture of about N MB (for profiling) */
            content_init();
            struct gen_result g;
            const char *path = argv[++i];
            uint64_t mb = strtoull(argv[++i], NULL, 10);
            if (!generate(path, mb << 20, 16, true, &g)) {
                fprintf(stderr, "bench: %s: %s\n", path, strerror(errno));
                return 1;
            }
            printf("%llu %llu\n", (unsigned long long)g.frames,
                   (unsigned long long)g.smtp_sessions);
            return 0;
        } else if (strcmp(argv[i], "--write-flood") == 0 && i + 4 < argc) {
            /* only write a flood to merge before a capture (used by tests) */
            const char *path = argv[++i];
            uint32_t syns = (uint32_t)strtoul(argv[++i], NULL, 10);
            uint32_t idle = (uint32_t)strtoul(argv[++i], NULL, 10);
            if (!write_flood(path, syns, idle, argv[++i])) {
                fprintf(stderr, "bench: %s: %s\n", path, strerror(errno));
                return 1;
            }
            return 0;
        } else if (strcmp(argv[i], "--write-attack") == 0 && i + 2 < argc) {
            /* only write the attack case's flood for CLEAN (for profiling:
             * stripwatch -r FILE -r CLEAN); after --flows and --sessions */
            const char *path = argv[++i], *clean = argv[++i];
            struct bare b;
            struct pw w;
            if (!bare_read(clean, &b) ||
                !write_attack(path, clean, b.packets, flows, sessions, &w)) {
                fprintf(stderr, "bench: %s: cannot write the flood for %s\n", path, clean);
                return 1;
            }
            return 0;
        } else if (strcmp(argv[i], "--flows") == 0 && i + 1 < argc)
            flows = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--sessions") == 0 && i + 1 < argc)
            sessions = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strcmp(argv[i], "--pcaps") == 0 && i + 1 < argc && rm.n_dirs < 16)
            rm_dirs[rm.n_dirs++] = argv[++i];
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rm.rounds = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            rm.runs = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--write-real-mix") == 0 && i + 1 < argc) {
            /* only write the real-mix capture (for profiling); after --pcaps */
            return bench_realmix_write(argv[++i], &rm) ? 0 : 1;
        } else {
            fprintf(stderr,
                    "usage: bench_gen --stripwatch PATH [--mixed-mb N] [--smtp-mb N] "
                    "[--flows N] [--sessions N] [--pcaps DIR]... [--rounds N] [--runs N]\n"
                    "               [--only mixed|smtp|idle|sessions|policies|attack|real-mix]\n"
                    "       bench_gen --write-mixed FILE MB\n"
                    "       bench_gen --write-smtp FILE MB\n"
                    "       bench_gen --write-flood FILE SYNS SESSIONS BEFORE.pcap\n"
                    "       bench_gen [--flows N] [--sessions N] --write-attack FILE CLEAN.pcap\n"
                    "       bench_gen --pcaps DIR... [--rounds N] --write-real-mix FILE\n");
            return 2;
        }
    }
    if (!sw) {
        fprintf(stderr, "bench: --stripwatch PATH is required\n");
        return 2;
    }
    const char *t = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/stripwatch-bench-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "bench: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char mixed[4200], smtp[4200], hs[4200], hs0[4200];
    snprintf(mixed, sizeof(mixed), "%s/mixed.pcap", dir);
    snprintf(smtp, sizeof(smtp), "%s/smtp.pcap", dir);
    snprintf(hs, sizeof(hs), "%s/handshakes.pcap", dir);
    snprintf(hs0, sizeof(hs0), "%s/handshakes-base.pcap", dir);
    content_init();
    int rc = 0;
    struct gen_result gm, gs;
    printf("stripwatch benchmark (captures in %s, deleted at the end)\n", dir);
    fflush(stdout);
    bool do_mixed = !only || !strcmp(only, "mixed"), do_smtp = !only || !strcmp(only, "smtp");
    bool do_idle = !only || !strcmp(only, "idle");
    bool do_sessions = !only || !strcmp(only, "sessions");
    bool do_policies = !only || !strcmp(only, "policies");
    bool do_attack = !only || !strcmp(only, "attack");
    bool do_realmix = !only || !strcmp(only, "real-mix");
    if ((do_mixed && !generate(mixed, mixed_mb << 20, 64, false, &gm)) ||
        ((do_smtp || do_attack) && !generate(smtp, smtp_mb << 20, 16, true, &gs))) {
        fprintf(stderr, "bench: cannot write the captures in %s\n", dir);
        rc = 1;
        goto out;
    }
    struct bare b;
    struct child c1, c2;
    if (!do_mixed)
        goto smtp_only;
    printf("mixed capture: %.2f GB, %llu frames, %llu SMTP sessions (a third STARTTLS), "
           "%llu other TCP connections\n",
           (double)gm.bytes / 1e9, (unsigned long long)gm.frames,
           (unsigned long long)gm.smtp_sessions, (unsigned long long)gm.other);
    bare_read(mixed, &b); /* warm the page cache */
    if (!bare_read(mixed, &b) || !run_sensor(sw, mixed, "1", NULL, NULL, &c1) ||
        !run_sensor(sw, mixed, "2", NULL, NULL, &c2)) {
        rc = 1;
        goto out;
    }
    line("bare libpcap pcap_next_ex loop", b.packets, b.bytes, b.secs, 0);
    line("stripwatch --workers 1", b.packets, b.bytes, c1.secs, c1.maxrss_kb);
    line("stripwatch --workers 2", b.packets, b.bytes, c2.secs, c2.maxrss_kb);
    printf("  ratio sensor/bare: %.2f with 1 worker (target >= 0.60), %.2f with 2\n",
           b.secs / c1.secs, b.secs / c2.secs);

smtp_only:
    if (do_realmix && !bench_realmix(sw, dir, &rm)) {
        rc = 1;
        goto out;
    }
    if (do_attack && !bench_attack(sw, dir, smtp, &gs, flows, sessions, rm.runs)) {
        rc = 1;
        goto out;
    }
    if (!do_smtp)
        goto idle;
    printf("SMTP-only capture: %.2f GB, %llu frames, %llu sessions (messages 2 KB..10 MB, "
           "half STARTTLS)\n",
           (double)gs.bytes / 1e9, (unsigned long long)gs.frames,
           (unsigned long long)gs.smtp_sessions);
    bare_read(smtp, &b);
    if (!bare_read(smtp, &b) || !run_sensor(sw, smtp, "1", NULL, NULL, &c1) ||
        !run_sensor(sw, smtp, "2", NULL, NULL, &c2)) {
        rc = 1;
        goto out;
    }
    line("bare libpcap pcap_next_ex loop", b.packets, b.bytes, b.secs, 0);
    line("stripwatch --workers 1", b.packets, b.bytes, c1.secs, c1.maxrss_kb);
    line("stripwatch --workers 2", b.packets, b.bytes, c2.secs, c2.maxrss_kb);
    printf("  sessions/s: %.0f with 1 worker, %.0f with 2; ratio sensor/bare %.2f with 1 worker "
           "(target >= 0.50)\n",
           (double)gs.smtp_sessions / c1.secs, (double)gs.smtp_sessions / c2.secs,
           b.secs / c1.secs);

idle:
    if (do_policies && !bench_policies(sw, dir)) {
        rc = 1;
        goto out;
    }
    if (do_sessions && !bench_sessions(sw, dir, sessions)) {
        rc = 1;
        goto out;
    }
    if (!do_idle)
        goto out;
    /* memory per idle flow: 1M concurrent handshakes minus a 1000-flow baseline,
     * on a non-SMTP port (flow table only: the SMTP decoder ignores the flow)
     * and on port 25 (flow table plus the SMTP decoder's per-session state) */
    static const struct {
        uint16_t port;
        const char *what;
    } kinds[] = {
        {80, "port 80 (flow table only)"},
        {25, "port 25 (flow table; the SMTP session starts at the first byte)"},
    };
    for (size_t k = 0; k < 2; k++) {
        if (!handshakes(hs, flows, kinds[k].port) || !handshakes(hs0, 1000, kinds[k].port)) {
            fprintf(stderr, "bench: cannot write the handshake captures in %s\n", dir);
            rc = 1;
            goto out;
        }
        struct child big, base;
        char *a_big[] = {"-q",        "-r",           hs,          "--max-flows",
                         "4000000",   "--memcap",     "16G",       "--sessions-out",
                         "/dev/null", "--alerts-out", "/dev/null", NULL};
        char *a_base[] = {"-q",        "-r",           hs0,         "--max-flows",
                          "4000000",   "--memcap",     "16G",       "--sessions-out",
                          "/dev/null", "--alerts-out", "/dev/null", NULL};
        if (!run_sensor_argv(sw, a_big, &big) || !run_sensor_argv(sw, a_base, &base)) {
            fprintf(stderr, "bench: stripwatch failed on the handshake captures\n");
            rc = 1;
            goto out;
        }
        double per = (double)(big.maxrss_kb - base.maxrss_kb) * 1024.0 / (double)(flows - 1000);
        printf("idle flows, %s: %u concurrent handshakes: peak RSS %ld MiB, baseline (1000 "
               "flows) %ld MiB: %.0f bytes per idle tracked flow (target <= 512)\n",
               kinds[k].what, flows, big.maxrss_kb / 1024, base.maxrss_kb / 1024, per);
        fflush(stdout);
    }
out:
    unlink(mixed);
    unlink(smtp);
    unlink(hs);
    unlink(hs0);
    if (rmdir(dir) != 0)
        fprintf(stderr, "bench: cannot remove %s: %s\n", dir, strerror(errno));
    return rc;
}
