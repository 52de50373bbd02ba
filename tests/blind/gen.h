/* SPDX-License-Identifier: Apache-2.0 */
/* gen.h: writes small classic pcap files for the blinding tests (test code):
 * Ethernet/IPv4/TCP frames (RFC 894, RFC 791, RFC 9293) carrying scripted
 * SMTP sessions (RFC 5321), with a chosen snap length and link type. */
#ifndef SW_TEST_BLIND_GEN_H
#define SW_TEST_BLIND_GEN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct gen {
    FILE *f;
    uint32_t snaplen;
    int64_t ts; /* microseconds */
    uint64_t frames;
    bool tcp_ts; /* TCP headers carry the timestamp option (32 bytes, as Linux sends) */
};

static inline void gen_le32(FILE *f, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    fwrite(b, 1, 4, f);
}

static inline void gen_le16(FILE *f, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    fwrite(b, 1, 2, f);
}

/* Opens path and writes the file header; false when it cannot be created. */
static inline bool gen_open(struct gen *g, const char *path, uint32_t snaplen, uint32_t linktype,
                            int64_t start_us)
{
    memset(g, 0, sizeof(*g));
    g->f = fopen(path, "wb");
    if (!g->f)
        return false;
    g->snaplen = snaplen;
    g->ts = start_us;
    gen_le32(g->f, 0xa1b2c3d4u);
    gen_le16(g->f, 2);
    gen_le16(g->f, 4);
    gen_le32(g->f, 0);
    gen_le32(g->f, 0);
    gen_le32(g->f, snaplen);
    gen_le32(g->f, linktype);
    return true;
}

static inline bool gen_close(struct gen *g)
{
    return fclose(g->f) == 0;
}

/* One record: len bytes on the wire, at most snaplen kept; 10 us later
 * than the previous one. */
static inline void gen_frame(struct gen *g, const uint8_t *data, uint32_t len)
{
    uint32_t incl = len < g->snaplen ? len : g->snaplen;
    g->ts += 10;
    gen_le32(g->f, (uint32_t)(g->ts / 1000000));
    gen_le32(g->f, (uint32_t)(g->ts % 1000000));
    gen_le32(g->f, incl);
    gen_le32(g->f, len);
    fwrite(data, 1, incl, g->f);
    g->frames++;
}

static inline void gen_be16(uint8_t *b, uint16_t v)
{
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
}

static inline void gen_be32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

#define GEN_SYN 0x02
#define GEN_ACK 0x10
#define GEN_PSH 0x08
#define GEN_FIN 0x01

/* One endpoint pair of a TCP connection, client first. */
struct gen_tcp {
    uint32_t cip, sip; /* host order */
    uint16_t cport, sport;
    uint32_t cseq, sseq; /* next sequence number of each side */
};

/* A TCP segment from the client (c2s) or the server, over Ethernet/IPv4. */
static inline void gen_seg(struct gen *g, struct gen_tcp *t, bool c2s, uint8_t flags,
                           const char *payload, size_t plen)
{
    uint8_t b[14 + 20 + 32 + 2048];
    size_t th = g->tcp_ts ? 32 : 20;
    if (plen > 2048)
        plen = 2048;
    memset(b, 0, 14 + 20 + th);
    b[0] = c2s ? 0x02 : 0x04; /* locally administered MACs */
    b[6] = c2s ? 0x04 : 0x02;
    gen_be16(b + 12, 0x0800);
    uint8_t *ip = b + 14;
    ip[0] = 0x45;
    gen_be16(ip + 2, (uint16_t)(20 + th + plen));
    ip[8] = 64;
    ip[9] = 6;
    gen_be32(ip + 12, c2s ? t->cip : t->sip);
    gen_be32(ip + 16, c2s ? t->sip : t->cip);
    uint32_t sum = 0;
    for (int i = 0; i < 20; i += 2)
        sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    gen_be16(ip + 10, (uint16_t)~sum);
    uint8_t *tcp = ip + 20;
    gen_be16(tcp, c2s ? t->cport : t->sport);
    gen_be16(tcp + 2, c2s ? t->sport : t->cport);
    uint32_t *seq = c2s ? &t->cseq : &t->sseq;
    gen_be32(tcp + 4, *seq);
    gen_be32(tcp + 8, (flags & GEN_ACK) ? (c2s ? t->sseq : t->cseq) : 0);
    tcp[12] = (uint8_t)((th / 4) << 4);
    tcp[13] = flags;
    gen_be16(tcp + 14, 65535);
    if (g->tcp_ts) { /* NOP, NOP, TS (kind 8, length 10) */
        tcp[20] = tcp[21] = 1;
        tcp[22] = 8;
        tcp[23] = 10;
        gen_be32(tcp + 24, (uint32_t)(g->ts / 1000));
    }
    memcpy(tcp + th, payload, plen);
    *seq += (uint32_t)plen + ((flags & (GEN_SYN | GEN_FIN)) ? 1 : 0);
    gen_frame(g, b, (uint32_t)(14 + 20 + th + plen));
}

static inline void gen_say(struct gen *g, struct gen_tcp *t, bool c2s, const char *text)
{
    gen_seg(g, t, c2s, GEN_ACK | GEN_PSH, text, strlen(text));
}

/* A whole cleartext SMTP delivery to the recipients rcpt[0..n) (no
 * STARTTLS offered), from client address cip:cport to sip:25; banner host
 * mx. */
static inline void gen_smtp_session(struct gen *g, uint32_t cip, uint16_t cport, uint32_t sip,
                                    const char *mx, const char *const *rcpt, size_t n)
{
    struct gen_tcp t = {cip, sip, cport, 25, 1000, 5000};
    char line[600];
    gen_seg(g, &t, true, GEN_SYN, "", 0);
    gen_seg(g, &t, false, GEN_SYN | GEN_ACK, "", 0);
    gen_seg(g, &t, true, GEN_ACK, "", 0);
    snprintf(line, sizeof(line), "220 %s ESMTP\r\n", mx);
    gen_say(g, &t, false, line);
    gen_say(g, &t, true, "EHLO client.example\r\n");
    snprintf(line, sizeof(line), "250-%s\r\n250-PIPELINING\r\n250 8BITMIME\r\n", mx);
    gen_say(g, &t, false, line);
    gen_say(g, &t, true, "MAIL FROM:<a@sender.example>\r\n");
    gen_say(g, &t, false, "250 2.1.0 Ok\r\n");
    for (size_t i = 0; i < n; i++) {
        snprintf(line, sizeof(line), "RCPT TO:<b@%s>\r\n", rcpt[i]);
        gen_say(g, &t, true, line);
        gen_say(g, &t, false, "250 2.1.5 Ok\r\n");
    }
    gen_say(g, &t, true, "DATA\r\n");
    gen_say(g, &t, false, "354 End data with <CR><LF>.<CR><LF>\r\n");
    gen_say(g, &t, true, "Subject: test\r\n\r\nhello\r\n.\r\n");
    gen_say(g, &t, false, "250 2.0.0 Ok: queued\r\n");
    gen_say(g, &t, true, "QUIT\r\n");
    gen_say(g, &t, false, "221 2.0.0 Bye\r\n");
    gen_seg(g, &t, true, GEN_FIN | GEN_ACK, "", 0);
    gen_seg(g, &t, false, GEN_FIN | GEN_ACK, "", 0);
    gen_seg(g, &t, true, GEN_ACK, "", 0);
}

/* An idle banner session that stays open (no FIN). */
static inline void gen_idle_session(struct gen *g, uint32_t cip, uint16_t cport, uint32_t sip)
{
    struct gen_tcp t = {cip, sip, cport, 25, 1000, 5000};
    gen_seg(g, &t, true, GEN_SYN, "", 0);
    gen_seg(g, &t, false, GEN_SYN | GEN_ACK, "", 0);
    gen_seg(g, &t, true, GEN_ACK, "", 0);
    gen_say(g, &t, false, "220 mx.idle.example ESMTP\r\n");
    gen_say(g, &t, true, "EHLO idle.example\r\n");
    gen_say(g, &t, false, "250-mx.idle.example\r\n250 PIPELINING\r\n");
}

#endif
