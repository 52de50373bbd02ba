/* SPDX-License-Identifier: Apache-2.0 */
/* smtp_reply.c: SMTP server replies (single and multi-line, matched to the
 * pipelined commands in order), the EHLO capability list and its mangled
 * tokens, and what each reply means for the session.
 * Follows RFC 5321 4.2 (reply lines), RFC 2920 (pipelining), RFC 3207
 * (STARTTLS reply codes), RFC 4954 (334 continuation), RFC 3030 (BDAT). */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "decode/smtp_int.h"

/* Capability keywords of STARTTLS's length that mean something. */
static const char *const known_len8[] = {
    "STARTTLS", "8BITMIME", "CHUNKING", "SMTPUTF8", "UTF8SMTP", "XFORWARD",
};

bool smtp_cap_is_mangled(const char *kw, size_t len)
{
    if (len >= 2 && len < 4) {
        /* "XI", "XXC": an ESMTP-inspection mask (Xs, then the mask's letter) */
        for (size_t i = 0; i + 1 < len; i++)
            if (kw[i] != 'X' && kw[i] != 'x')
                return false;
        return kw[len - 1] >= 'A' && kw[len - 1] <= 'Z' && kw[len - 1] != 'X';
    }
    if (len < 4)
        return false;
    if (kw[len - 1] >= 'A' && kw[len - 1] <= 'Z') {
        size_t i = 0;
        while (i + 1 < len && (kw[i] == 'X' || kw[i] == 'x'))
            i++;
        if (i + 1 == len)
            return true; /* XXXA, XXXC: Xs then the mask's letter */
    }
    size_t x = 0;
    for (size_t i = 0; i < len; i++)
        if (kw[i] == 'X' || kw[i] == 'x')
            x++;
    if (x == len)
        return true; /* all X: a PIX-style fixup */
    if (len >= 6 && x >= len - 1)
        return true; /* XXXXXXXA */
    if (len == 8) {
        for (size_t i = 0; i < sizeof known_len8 / sizeof known_len8[0]; i++)
            if (strncasecmp(kw, known_len8[i], 8) == 0)
                return false;
        return true;
    }
    return false;
}

static bool is_2xx(int code)
{
    return code >= 200 && code < 300;
}

/* One capability line of the first EHLO reply. Every line is scanned for
 * its keyword, stored or not (store false: an overflowed line, of which text
 * is the bounded prefix, or a line past FACTS_CAPS_MAX): a reply padded past
 * the bounds still shows whether STARTTLS was offered. */
static void add_capability(struct smtp_session *s, const char *text, size_t len, bool store,
                           const struct stream_meta *m)
{
    struct smtp_facts *f = &s->f;
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    size_t kl = 0;
    while (kl < len && text[kl] != ' ' && text[kl] != '=')
        kl++;
    store = store && f->n_caps < FACTS_CAPS_MAX;
    if (kl == 8 && strncasecmp(text, "STARTTLS", 8) == 0) {
        f->starttls_offered = true;
        if (!store)
            s->starttls_dropped = true;
    } else if (kl == 10 && strncasecmp(text, "PIPELINING", 10) == 0)
        f->pipelining_offered = true;
    else if (kl == 8 && strncasecmp(text, "CHUNKING", 8) == 0)
        f->chunking_offered = true;
    if (smtp_cap_is_mangled(text, kl)) {
        char tok[64];
        smtp_strlcpy_n(tok, sizeof tok, text, kl);
        smtp_anomaly(s, ANOM_CAP_MANGLED, DIR_S2C, m, "token=%s", tok);
    }
    if (!store || !facts_add_cap(f, text, len))
        f->caps_dropped++;
}

/* RFC 1918 and RFC 6598 (shared) IPv4 addresses: a client there reaches
 * servers through NAT. */
static bool is_private4(const struct sw_addr *a)
{
    const uint8_t *b = a->b;
    return a->family == 4 && (b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) ||
                              (b[0] == 192 && b[1] == 168) || (b[0] == 100 && (b[1] & 0xc0) == 64));
}

/* The first address literal ("[192.0.2.9]", "[IPv6:2001:db8::9]", RFC 5321
 * 4.1.3) in a greeting line, when it is not the client's address on the
 * wire: the server saw the connection come from elsewhere (a proxy or NAT
 * between the client and the server). Once per session. */
static void greeting_addr(struct smtp_session *s, const char *text, size_t len, const char *where,
                          const struct stream_meta *m)
{
    const struct smtp_facts *f = &s->f;
    const char *o = memchr(text, '[', len);
    if (!o)
        return;
    const char *c = memchr(o, ']', len - (size_t)(o - text));
    if (!c)
        return;
    const char *a = o + 1;
    size_t al = (size_t)(c - a);
    bool v6 = al > 5 && strncasecmp(a, "IPv6:", 5) == 0;
    if (v6)
        a += 5, al -= 5;
    char lit[INET6_ADDRSTRLEN];
    if (al == 0 || al >= sizeof lit)
        return;
    memcpy(lit, a, al);
    lit[al] = 0;
    struct sw_addr x = {.family = 0};
    if (!v6 && inet_pton(AF_INET, lit, x.b) == 1)
        x.family = 4;
    else if (v6 && inet_pton(AF_INET6, lit, x.b) == 1)
        x.family = 6;
    else
        return;
    for (size_t i = 0; i < f->n_anomalies; i++)
        if (f->anomalies[i].kind == ANOM_GREETING_CLIENT_ADDR)
            return;
    size_t n = x.family == 4 ? 4 : 16;
    if (x.family == f->flow.client.family && memcmp(x.b, f->flow.client.b, n) == 0)
        return;
    char wire[64];
    sw_addr_str(&f->flow.client, wire, sizeof wire);
    smtp_anomaly(s, ANOM_GREETING_CLIENT_ADDR, DIR_S2C, m, "%s names %s, client on the wire %s%s",
                 where, lit, wire, is_private4(&f->flow.client) ? " (private: NAT likely)" : "");
}

/* One line of a reply, before its last line is known. */
static void reply_line(struct smtp_session *s, const char *text, size_t len, bool overflow,
                       const struct stream_meta *m)
{
    struct smtp_facts *f = &s->f;
    size_t first_word = 0;
    while (first_word < len && text[first_word] != ' ')
        first_word++;
    switch (s->reply_cmd.cmd) {
    case SMTP_CMD_BANNER:
        if (s->reply_lines == 0 && !f->banner_code)
            smtp_set_field(s, &f->banner_host, "banner.host", text, first_word, FACTS_HOST_MAX,
                           DIR_S2C, m);
        if (!f->banner_code)
            greeting_addr(s, text, len, "banner", m);
        break;
    case SMTP_CMD_EHLO:
        if (s->caps_done || !is_2xx(s->reply_code))
            break;
        if (s->reply_lines == 0) {
            smtp_set_field(s, &f->ehlo_host, "ehlo.host", text, first_word, FACTS_HOST_MAX, DIR_S2C,
                           m);
            greeting_addr(s, text, len, "EHLO reply", m);
        } else
            add_capability(s, text, len, !overflow, m);
        break;
    default:
        break;
    }
}

static void reply_end(struct smtp_session *s, const struct stream_meta *m);

void smtp_server_line(struct smtp_session *s, const char *line, size_t len, bool overflow,
                      const struct stream_meta *m)
{
    if (len < 3 || line[0] < '1' || line[0] > '5' || !isdigit((unsigned char)line[1]) ||
        !isdigit((unsigned char)line[2]))
        return; /* not a reply line: nothing to learn from it */
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    bool more = len > 3 && line[3] == '-';
    const char *text = len > 4 ? line + 4 : "";
    size_t tlen = len > 4 ? len - 4 : 0;

    if (s->in_reply && code != s->reply_code) {
        /* RFC 5321 4.2.1: every line of a reply has the same code. A line
         * with another code starts the next reply; the one before ends
         * here, as if its last line had come. */
        smtp_anomaly(s, ANOM_REPLY_CODE_CHANGED, DIR_S2C, m, "reply %d ended by a %d line",
                     s->reply_code, code);
        reply_end(s, m);
    }
    if (!s->in_reply) {
        s->in_reply = true;
        s->reply_code = code;
        s->reply_lines = 0;
        if (s->ring_len) {
            s->reply_cmd = s->ring[s->ring_head];
            s->ring_head = (uint16_t)((s->ring_head + 1) % s->ring_cap);
            s->ring_len--;
        } else {
            memset(&s->reply_cmd, 0, sizeof s->reply_cmd);
            s->reply_cmd.tx = s->reply_cmd.rcpt = -1;
            /* Only the server's side in the capture (asymmetric routing):
             * the first multi-line 2xx reply before any client byte is the
             * EHLO reply, judged as one (no anomaly for it). */
            bool server_only =
                !s->f.saw_c2s && !s->any_command && more && is_2xx(code) && !s->caps_done;
            if (server_only)
                s->reply_cmd.cmd = SMTP_CMD_EHLO;
            /* 421 may come unasked (RFC 5321 3.8); a midstream pickup
             * starts with replies to commands it never saw */
            if (code != 421 && !server_only && !(s->f.flow.midstream && !s->any_command)) {
                s->stats->replies_unmatched++;
                smtp_anomaly(s, ANOM_REPLY_WITHOUT_COMMAND, DIR_S2C, m, "reply %d", code);
            }
        }
    }
    if (s->reply_cmd.cmd == SMTP_CMD_EHLO && !s->caps_done)
        smtp_ttl_at_reply(s, SMTP_TTL_AT_EHLO, m);
    else if (s->reply_cmd.cmd == SMTP_CMD_STARTTLS)
        smtp_ttl_at_reply(s, SMTP_TTL_AT_STARTTLS, m);
    reply_line(s, text, tlen, overflow, m);
    s->reply_lines++;
    if (!more)
        reply_end(s, m);
}

/* The reply being assembled is complete: its command's handler runs. */
static void reply_end(struct smtp_session *s, const struct stream_meta *m)
{
    s->in_reply = false;
    struct smtp_pending p = s->reply_cmd;
    if (s->cfg->on_trace)
        s->cfg->on_trace(s->cfg->trace_ctx, &s->f, DIR_S2C, NULL, s->reply_code);
    const struct smtp_cmd_def *def = smtp_cmd_def((enum smtp_cmd)p.cmd);
    if (def->on_reply)
        def->on_reply(s, &p, s->reply_code, m);
}

void smtp_reply_banner(struct smtp_session *s, const struct smtp_pending *p, int code,
                       const struct stream_meta *m)
{
    (void)p, (void)m;
    if (!s->f.banner_code)
        s->f.banner_code = code;
}

void smtp_reply_ehlo(struct smtp_session *s, const struct smtp_pending *p, int code,
                     const struct stream_meta *m)
{
    (void)p, (void)m;
    if (!s->ehlo_replied) {
        s->ehlo_replied = true;
        s->f.ehlo_code = code;
    }
    if (is_2xx(code) && !s->caps_done) {
        s->caps_done = true;
        smtp_ovl_mark(s, SMTP_OVL_EHLO);
        /* padding past the bounds is itself suspect (a man in the middle
         * hiding a strip behind it); where STARTTLS was is known */
        if (s->f.caps_dropped)
            smtp_anomaly(s, ANOM_EHLO_PADDED, DIR_S2C, m,
                         "%zu capability lines, %zu kept; STARTTLS %s",
                         s->f.n_caps + s->f.caps_dropped, s->f.n_caps,
                         !s->f.starttls_offered ? "absent"
                         : s->starttls_dropped  ? "on a line not kept"
                                                : "kept");
        smtp_emit(s, SMTP_EV_EHLO_REPLY);
    }
}

void smtp_reply_mail(struct smtp_session *s, const struct smtp_pending *p, int code,
                     const struct stream_meta *m)
{
    (void)m;
    struct facts_tx *t = smtp_tx(s, p->tx);
    if (!t)
        return;
    t->mail_code = code;
    if (!is_2xx(code)) {
        /* no transaction began: a command sent from now on has none */
        t->accepted = 0;
        t->closed = true;
        if (s->cur_tx == p->tx)
            s->cur_tx = -1;
    } else if (p->last) {
        /* a nested MAIL accepted after all: what is sent from now on is
         * its transaction's */
        s->cur_tx = p->tx;
    }
}

void smtp_reply_rcpt(struct smtp_session *s, const struct smtp_pending *p, int code,
                     const struct stream_meta *m)
{
    (void)m;
    struct facts_tx *t = smtp_tx(s, p->tx);
    if (!t || t->closed)
        return;
    if (!p->last && p->rcpt >= 0 && (size_t)p->rcpt < t->n_rcpt)
        t->rcpt[p->rcpt].code = code;
    if (is_2xx(code)) {
        t->rcpt_accepted++;
        if (p->last && p->rcpt >= 0 && (size_t)p->rcpt < t->n_domains)
            t->domains[p->rcpt].accepted++;
    }
}

void smtp_reply_data(struct smtp_session *s, const struct smtp_pending *p, int code,
                     const struct stream_meta *m)
{
    (void)m;
    struct facts_tx *t = smtp_tx(s, p->tx);
    if (t && t->closed)
        t = NULL;
    if (code == 354) {
        if (t) {
            t->data_sent = true;
            t->cleartext = true;
        }
        if (s->st == SMTP_ST_DATA_WAIT)
            smtp_enter_state(s, SMTP_ST_DATA);
        return;
    }
    if (t)
        t->data_code = code;
    /* refused before any content: the client's next line is a command */
    if (s->st == SMTP_ST_DATA_WAIT && s->body_bytes == 0)
        smtp_enter_state(s, SMTP_ST_COMMAND);
}

static void content_reply(struct smtp_session *s, struct facts_tx *t, int code)
{
    if (t->closed)
        return;
    t->closed = true; /* its final reply: nothing later changes it */
    t->data_code = code;
    if (t->accepted != 0)
        t->accepted = is_2xx(code) ? 1 : 0;
    if (t->cleartext)
        smtp_emit(s, SMTP_EV_DATA_CLEAR);
}

void smtp_reply_data_end(struct smtp_session *s, const struct smtp_pending *p, int code,
                         const struct stream_meta *m)
{
    (void)m;
    struct facts_tx *t = smtp_tx(s, p->tx);
    if (t)
        content_reply(s, t, code);
}

void smtp_reply_bdat(struct smtp_session *s, const struct smtp_pending *p, int code,
                     const struct stream_meta *m)
{
    (void)m;
    /* Refused while its chunk is still expected: the client sends a chunk
     * right behind its BDAT (RFC 3030 §2), so one that has not come by the
     * time the refusal does is not coming; what follows are commands (QUIT
     * after 521). Only the latest BDAT can be in progress: nothing else is
     * pending behind it. */
    if (!is_2xx(code) && s->st == SMTP_ST_BDAT && s->ring_len == 0) {
        s->bdat_left = 0;
        smtp_enter_state(s, SMTP_ST_COMMAND);
    }
    struct facts_tx *t = smtp_tx(s, p->tx);
    if (!t || t->closed)
        return;
    if (p->last) {
        content_reply(s, t, code);
    } else if (!is_2xx(code)) {
        t->data_code = code;
        t->accepted = 0; /* a refused chunk: the message is not accepted */
    }
}

void smtp_reply_starttls(struct smtp_session *s, const struct smtp_pending *p, int code,
                         const struct stream_meta *m)
{
    (void)p;
    if (!s->f.starttls_code)
        smtp_ovl_mark(s, SMTP_OVL_STARTTLS);
    s->f.starttls_code = code;
    if (code == 220) {
        if (s->st != SMTP_ST_TLS)
            smtp_enter_state(s, SMTP_ST_TLS_EXPECT);
        if (s->srv == SMTP_SRV_REPLY)
            s->srv = SMTP_SRV_TLS_EXPECT;
    } else if (code >= 400) {
        if (code == 500 || code == 502)
            smtp_anomaly(s, ANOM_STARTTLS_UNKNOWN_CMD, DIR_S2C, m, "STARTTLS answered %d", code);
        else
            smtp_anomaly(s, ANOM_STARTTLS_REFUSED, DIR_S2C, m, "STARTTLS answered %d", code);
        if (s->st == SMTP_ST_STARTTLS_WAIT)
            smtp_enter_state(s, SMTP_ST_COMMAND);
    }
    smtp_emit(s, SMTP_EV_STARTTLS_REPLY);
}

void smtp_reply_auth(struct smtp_session *s, const struct smtp_pending *p, int code,
                     const struct stream_meta *m)
{
    (void)p, (void)m;
    if (code == 334) {
        /* the client sends one SASL line next: a server asking for more
         * lines than the mechanism takes is followed while nothing else
         * waits for a reply */
        if (s->st == SMTP_ST_COMMAND && s->ring_len == 0 && s->f.auth_mechanism)
            smtp_enter_state(s, SMTP_ST_AUTH);
        if (s->st == SMTP_ST_AUTH && s->auth_invited < UINT8_MAX)
            s->auth_invited++;
        return;
    }
    s->f.auth_code = code;
    if (s->st == SMTP_ST_AUTH)
        smtp_enter_state(s, SMTP_ST_COMMAND);
}

void smtp_reply_quit(struct smtp_session *s, const struct smtp_pending *p, int code,
                     const struct stream_meta *m)
{
    (void)p, (void)m;
    if (is_2xx(code))
        s->quit_answered = true;
}

void smtp_reply_mangled(struct smtp_session *s, const struct smtp_pending *p, int code,
                        const struct stream_meta *m)
{
    (void)p;
    if (code == 500 || code == 502)
        smtp_anomaly(s, ANOM_STARTTLS_UNKNOWN_CMD, DIR_S2C, m, "mangled command answered %d", code);
}

void smtp_ovl_mark(struct smtp_session *s, unsigned which)
{
    if (s->ovl_hi[which] || s->reply_lo == UINT32_MAX)
        return;
    s->ovl_lo[which] = s->reply_lo;
    s->ovl_hi[which] = UINT32_MAX;
    s->ovl_open |= (uint8_t)(1u << which);
}

void smtp_ovl_close(struct smtp_session *s, uint32_t end)
{
    for (unsigned w = 0; w < SMTP_OVL_REPLIES; w++)
        if (s->ovl_open & (1u << w))
            s->ovl_hi[w] = end;
    s->ovl_open = 0;
    smtp_ovl_judge(s);
}

/* Two copies of the EHLO reply of which one offers STARTTLS, or of the
 * STARTTLS reply of which one accepts it: the client's stack took one of
 * them (a copy with a bad checksum it drops; the sensor never checks), so
 * what the sensor kept is not what the client saw. */
void smtp_ovl_judge(struct smtp_session *s)
{
    static const uint8_t has[SMTP_OVL_REPLIES] = {SMTP_OVL_HAS_STARTTLS, SMTP_OVL_HAS_220};
    for (unsigned w = 0; w < SMTP_OVL_REPLIES; w++) {
        uint8_t bit = (uint8_t)(1u << w);
        if (!s->ovl || !s->ovl_hi[w] || (s->ovl_open & bit) || (s->ovl_done & bit))
            continue;
        for (unsigned i = 0; i < s->n_ovl; i++) {
            const struct smtp_ovl *c = &s->ovl[i];
            if (c->lo >= s->ovl_hi[w] || c->hi <= s->ovl_lo[w] ||
                !((c->first ^ c->second) & has[w]))
                continue;
            bool in_first = c->first & has[w];
            struct stream_meta m = {.ts = c->ts, .pkt_no = c->pkt_no};
            smtp_anomaly(s, ANOM_OVERLAP_STARTTLS, DIR_S2C, &m,
                         "%s reply at offset %u: %s in the %s copy only (%s)",
                         w == SMTP_OVL_EHLO ? "EHLO" : "STARTTLS", (unsigned)c->lo,
                         w == SMTP_OVL_EHLO ? "STARTTLS" : "220", in_first ? "first" : "second",
                         in_first ? "kept" : "dropped");
            s->ovl_done |= bit;
            break;
        }
    }
}
