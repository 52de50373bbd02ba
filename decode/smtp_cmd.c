/* SPDX-License-Identifier: Apache-2.0 */
/* smtp_cmd.c: the SMTP command table, client command lines, and message
 * content (DATA streamed to CRLF.CRLF, BDAT chunks by size).
 * Follows RFC 5321 (commands, paths, end of data), RFC 1870 (SIZE),
 * RFC 6152 (BODY), RFC 3030 (BDAT/CHUNKING), RFC 4954 (AUTH), RFC 3207
 * (STARTTLS), RFC 2920 (pipelining). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "decode/smtp_int.h"

static void cmd_helo(struct smtp_session *s, const char *arg, size_t len,
                     const struct stream_meta *m);
static void cmd_ehlo(struct smtp_session *s, const char *arg, size_t len,
                     const struct stream_meta *m);
static void cmd_mail(struct smtp_session *s, const char *arg, size_t len,
                     const struct stream_meta *m);
static void cmd_rcpt(struct smtp_session *s, const char *arg, size_t len,
                     const struct stream_meta *m);
static void cmd_data(struct smtp_session *s, const char *arg, size_t len,
                     const struct stream_meta *m);
static void cmd_bdat(struct smtp_session *s, const char *arg, size_t len,
                     const struct stream_meta *m);
static void cmd_rset(struct smtp_session *s, const char *arg, size_t len,
                     const struct stream_meta *m);
static void cmd_starttls(struct smtp_session *s, const char *arg, size_t len,
                         const struct stream_meta *m);
static void cmd_auth(struct smtp_session *s, const char *arg, size_t len,
                     const struct stream_meta *m);

/* Indexed by enum smtp_cmd. on_cmd NULL: the command only awaits a reply. */
static const struct smtp_cmd_def cmd_table[SMTP_CMD_COUNT] = {
    [SMTP_CMD_NONE] = {SMTP_CMD_NONE, "", NULL, NULL, NULL},
    [SMTP_CMD_BANNER] = {SMTP_CMD_BANNER, "", NULL, NULL, smtp_reply_banner},
    [SMTP_CMD_HELO] = {SMTP_CMD_HELO, "HELO", NULL, cmd_helo, NULL},
    [SMTP_CMD_EHLO] = {SMTP_CMD_EHLO, "EHLO", NULL, cmd_ehlo, smtp_reply_ehlo},
    [SMTP_CMD_MAIL_FROM] = {SMTP_CMD_MAIL_FROM, "MAIL", "FROM:", cmd_mail, smtp_reply_mail},
    [SMTP_CMD_RCPT_TO] = {SMTP_CMD_RCPT_TO, "RCPT", "TO:", cmd_rcpt, smtp_reply_rcpt},
    [SMTP_CMD_DATA] = {SMTP_CMD_DATA, "DATA", NULL, cmd_data, smtp_reply_data},
    [SMTP_CMD_DATA_END] = {SMTP_CMD_DATA_END, "", NULL, NULL, smtp_reply_data_end},
    [SMTP_CMD_BDAT] = {SMTP_CMD_BDAT, "BDAT", NULL, cmd_bdat, smtp_reply_bdat},
    [SMTP_CMD_RSET] = {SMTP_CMD_RSET, "RSET", NULL, cmd_rset, NULL},
    [SMTP_CMD_NOOP] = {SMTP_CMD_NOOP, "NOOP", NULL, NULL, NULL},
    [SMTP_CMD_VRFY] = {SMTP_CMD_VRFY, "VRFY", NULL, NULL, NULL},
    [SMTP_CMD_EXPN] = {SMTP_CMD_EXPN, "EXPN", NULL, NULL, NULL},
    [SMTP_CMD_HELP] = {SMTP_CMD_HELP, "HELP", NULL, NULL, NULL},
    [SMTP_CMD_QUIT] = {SMTP_CMD_QUIT, "QUIT", NULL, NULL, smtp_reply_quit},
    [SMTP_CMD_STARTTLS] = {SMTP_CMD_STARTTLS, "STARTTLS", NULL, cmd_starttls, smtp_reply_starttls},
    [SMTP_CMD_AUTH] = {SMTP_CMD_AUTH, "AUTH", NULL, cmd_auth, smtp_reply_auth},
    [SMTP_CMD_AUTH_DATA] = {SMTP_CMD_AUTH_DATA, "", NULL, NULL, smtp_reply_auth},
    [SMTP_CMD_UNKNOWN] = {SMTP_CMD_UNKNOWN, "", NULL, NULL, NULL},
    [SMTP_CMD_MANGLED] = {SMTP_CMD_MANGLED, "", NULL, NULL, smtp_reply_mangled},
};

const struct smtp_cmd_def *smtp_cmd_def(enum smtp_cmd c)
{
    if ((unsigned)c >= SMTP_CMD_COUNT)
        c = SMTP_CMD_NONE;
    return &cmd_table[c];
}

const char *smtp_cmd_str(enum smtp_cmd c)
{
    static const char *const names[SMTP_CMD_COUNT] = {
        [SMTP_CMD_NONE] = "none",       [SMTP_CMD_BANNER] = "banner",
        [SMTP_CMD_HELO] = "HELO",       [SMTP_CMD_EHLO] = "EHLO",
        [SMTP_CMD_MAIL_FROM] = "MAIL",  [SMTP_CMD_RCPT_TO] = "RCPT",
        [SMTP_CMD_DATA] = "DATA",       [SMTP_CMD_DATA_END] = "data_end",
        [SMTP_CMD_BDAT] = "BDAT",       [SMTP_CMD_RSET] = "RSET",
        [SMTP_CMD_NOOP] = "NOOP",       [SMTP_CMD_VRFY] = "VRFY",
        [SMTP_CMD_EXPN] = "EXPN",       [SMTP_CMD_HELP] = "HELP",
        [SMTP_CMD_QUIT] = "QUIT",       [SMTP_CMD_STARTTLS] = "STARTTLS",
        [SMTP_CMD_AUTH] = "AUTH",       [SMTP_CMD_AUTH_DATA] = "auth_data",
        [SMTP_CMD_UNKNOWN] = "unknown", [SMTP_CMD_MANGLED] = "mangled",
    };
    if ((unsigned)c >= SMTP_CMD_COUNT)
        return "none";
    return names[c];
}

struct facts_tx *smtp_tx(struct smtp_session *s, int idx)
{
    if (idx < 0 || (size_t)idx >= s->f.n_tx)
        return NULL;
    return &s->f.tx[idx];
}

static bool is_2xx_code(int code)
{
    return code >= 200 && code < 300;
}

static size_t skip_sp(const char *a, size_t len, size_t i)
{
    while (i < len && (a[i] == ' ' || a[i] == '\t'))
        i++;
    return i;
}

static size_t word_end(const char *a, size_t len, size_t i)
{
    while (i < len && a[i] != ' ' && a[i] != '\t')
        i++;
    return i;
}

static void lower(char *p)
{
    for (; *p; p++)
        *p = (char)tolower((unsigned char)*p);
}

/* The greeting recorded is the one the capabilities belong to: each
 * HELO/EHLO replaces the record until an EHLO reply has given the
 * capabilities (caps_done), then the record stays. So HELO then EHLO
 * records the EHLO, EHLO refused then HELO records the HELO, and an EHLO
 * sent again after the capabilities does not change them. */
static void cmd_helo_common(struct smtp_session *s, const char *verb, const char *arg, size_t len,
                            const struct stream_meta *m)
{
    if (s->caps_done)
        return;
    s->helo_seen = true;
    memcpy(s->f.helo_verb, verb, 5);
    size_t b = skip_sp(arg, len, 0);
    size_t e = word_end(arg, len, b);
    smtp_set_field(s, &s->f.helo_host, "helo.host", arg + b, e - b, FACTS_HOST_MAX, DIR_C2S, m);
}

static void cmd_helo(struct smtp_session *s, const char *arg, size_t len,
                     const struct stream_meta *m)
{
    cmd_helo_common(s, "HELO", arg, len, m);
    smtp_pending_push(s, SMTP_CMD_HELO, -1, -1, false);
}

static void cmd_ehlo(struct smtp_session *s, const char *arg, size_t len,
                     const struct stream_meta *m)
{
    cmd_helo_common(s, "EHLO", arg, len, m);
    smtp_pending_push(s, SMTP_CMD_EHLO, -1, -1, false);
}

/* Reads a reverse- or forward-path ("<a@b>" or a bare address, RFC 5321
 * 4.1.2; a source route "@x,@y:" is skipped) starting at arg[i]. Copies the
 * domain (lower case, at most FACTS_HOST_MAX - 1 bytes) into d and, with
 * keep_addr, sets *addr to the full address; a field cut at its bound is an
 * anomaly naming it (what: "mail_from" / "rcpt"). Returns the index after
 * the path. */
static size_t parse_path(struct smtp_session *s, const char *arg, size_t len, size_t i,
                         char d[FACTS_HOST_MAX], const char **addr, const char *what,
                         const struct stream_meta *m)
{
    i = skip_sp(arg, len, i);
    size_t b, e;
    if (i < len && arg[i] == '<') {
        b = i + 1;
        e = b;
        while (e < len && arg[e] != '>')
            e++;
        i = e < len ? e + 1 : e;
    } else {
        b = i;
        e = word_end(arg, len, i);
        i = e;
    }
    /* source route: keep what follows the last ':' */
    for (size_t k = e; k > b; k--)
        if (arg[k - 1] == ':') {
            b = k;
            break;
        }
    size_t at = e;
    for (size_t k = e; k > b; k--)
        if (arg[k - 1] == '@') {
            at = k - 1;
            break;
        }
    d[0] = '\0';
    if (at < e && !smtp_strlcpy_n(d, FACTS_HOST_MAX, arg + at + 1, e - at - 1))
        smtp_anomaly(s, ANOM_FIELD_TRUNCATED, DIR_C2S, m, "field=%s.domain length=%zu kept=%d",
                     what, e - at - 1, FACTS_HOST_MAX - 1);
    lower(d);
    if (s->cfg->log_addresses) {
        char name[32];
        snprintf(name, sizeof name, "%s.address", what);
        smtp_set_field(s, addr, name, arg + b, e - b, FACTS_ADDR_MAX, DIR_C2S, m);
    }
    return i;
}

static void cmd_mail(struct smtp_session *s, const char *arg, size_t len,
                     const struct stream_meta *m)
{
    struct smtp_facts *f = &s->f;
    /* A MAIL inside an open transaction (its content not sent yet, its
     * MAIL not refused) is nested: RFC 5321 4.1.4 has the server refuse it
     * (503), and the open transaction keeps the RCPT and DATA that follow.
     * It is recorded, as a refused transaction of its own. */
    struct facts_tx *open = smtp_tx(s, s->cur_tx);
    bool nested = open && !open->closed && !open->data_code &&
                  (open->mail_code == 0 || is_2xx_code(open->mail_code));
    if (!nested)
        s->cur_tx = -1;
    struct facts_tx *t;
    if (f->n_tx >= FACTS_TX_MAX || !(t = facts_add_tx(f))) {
        if (!nested && !f->tx_dropped)
            smtp_anomaly(s, ANOM_BOUND_REACHED, DIR_C2S, m, "transactions %d", FACTS_TX_MAX);
        f->tx_dropped++;
        smtp_pending_push(s, SMTP_CMD_MAIL_FROM, -1, -1, false);
        return;
    }
    t->ts = m ? m->ts : f->last_ts;
    t->pkt_no = m ? m->pkt_no : f->last_pkt;
    char d[FACTS_HOST_MAX];
    size_t i = parse_path(s, arg, len, 0, d, &t->mail_from, "mail_from", m);
    facts_set(f, &t->mail_from_domain, d, strlen(d), 0);
    /* ESMTP parameters: SIZE=n (RFC 1870), BODY=x (RFC 6152) */
    while ((i = skip_sp(arg, len, i)) < len) {
        size_t e = word_end(arg, len, i);
        if (e - i > 5 && strncasecmp(arg + i, "SIZE=", 5) == 0) {
            uint64_t v = 0;
            size_t k = i + 5;
            for (; k < e && k - i - 5 < 19 && isdigit((unsigned char)arg[k]); k++)
                v = v * 10 + (uint64_t)(arg[k] - '0');
            t->size_param = v;
        } else if (e - i > 5 && strncasecmp(arg + i, "BODY=", 5) == 0) {
            char body[16];
            if (!smtp_strlcpy_n(body, sizeof body, arg + i + 5, e - i - 5))
                smtp_anomaly(s, ANOM_FIELD_TRUNCATED, DIR_C2S, m,
                             "field=mail_from.body length=%zu kept=%zu", e - i - 5,
                             sizeof body - 1);
            for (char *p = body; *p; p++)
                *p = (char)toupper((unsigned char)*p);
            facts_set(f, &t->body_param, body, strlen(body), 0);
        }
        i = e;
    }
    if (nested) {
        smtp_pending_push(s, SMTP_CMD_MAIL_FROM, (int)(f->n_tx - 1), -1, true);
        return;
    }
    s->cur_tx = (int16_t)(f->n_tx - 1);
    smtp_pending_push(s, SMTP_CMD_MAIL_FROM, s->cur_tx, -1, false);
}

/* The transaction a RCPT, DATA or BDAT belongs to: the open one; else, when
 * no MAIL FROM was seen at all and the start of the session was not either
 * (the capture began inside it, or lost its first commands), one begun
 * before the capture; else none (ANOM_NO_TRANSACTION naming the command;
 * the server refuses it). */
static struct facts_tx *tx_for(struct smtp_session *s, const char *verb,
                               const struct stream_meta *m)
{
    struct facts_tx *t = smtp_tx(s, s->cur_tx);
    if (t)
        return t;
    struct smtp_facts *f = &s->f;
    if (f->n_tx == 0 && f->tx_dropped == 0 && (f->flow.midstream || !s->helo_seen) &&
        (t = facts_add_tx(f))) {
        t->before_capture = true;
        t->ts = m ? m->ts : f->last_ts;
        t->pkt_no = m ? m->pkt_no : f->last_pkt;
        s->cur_tx = 0;
        return t;
    }
    smtp_anomaly(s, ANOM_NO_TRANSACTION, DIR_C2S, m, "%s outside a transaction", verb);
    return NULL;
}

static void cmd_rcpt(struct smtp_session *s, const char *arg, size_t len,
                     const struct stream_meta *m)
{
    struct facts_tx *t = tx_for(s, "RCPT", m);
    if (!t) {
        smtp_pending_push(s, SMTP_CMD_RCPT_TO, -1, -1, false);
        return;
    }
    /* every recipient counts; past the FACTS_RCPT_MAX kept, the domain
     * still is (t->domains, up to FACTS_DOMAINS_MAX distinct ones), so that
     * the order of RCPT lines never decides which policies are consulted */
    t->rcpt_total++;
    char d[FACTS_HOST_MAX];
    struct facts_rcpt *r = NULL;
    int dom = -1;
    if (t->n_rcpt < FACTS_RCPT_MAX && (r = facts_add_rcpt(&s->f, t)) != NULL) {
        parse_path(s, arg, len, 0, d, &r->address, "rcpt", m);
        facts_set(&s->f, &r->domain, d, strlen(d), 0);
    } else {
        if (!t->rcpt_dropped)
            smtp_anomaly(s, ANOM_BOUND_REACHED, DIR_C2S, m, "recipients %d, domains kept up to %d",
                         FACTS_RCPT_MAX, FACTS_DOMAINS_MAX);
        t->rcpt_dropped++;
        const char *addr = NULL;
        parse_path(s, arg, len, 0, d, &addr, "rcpt", m);
        facts_set(&s->f, &addr, NULL, 0, 0);
        uint32_t dropped = t->domains_dropped;
        dom = facts_tx_domain(&s->f, t, d);
        if (dom >= 0)
            t->domains[dom].rcpts++;
        else if (!dropped && t->domains_dropped)
            smtp_anomaly(s, ANOM_BOUND_REACHED, DIR_C2S, m, "recipient domains %d",
                         FACTS_DOMAINS_MAX);
    }
    int tx = (int)(t - s->f.tx);
    /* a recipient past those kept: its slot names its domain instead */
    if (r)
        smtp_pending_push(s, SMTP_CMD_RCPT_TO, tx, (int)(t->n_rcpt - 1), false);
    else
        smtp_pending_push(s, SMTP_CMD_RCPT_TO, tx, dom, dom >= 0);
}

static void cmd_data(struct smtp_session *s, const char *arg, size_t len,
                     const struct stream_meta *m)
{
    (void)arg, (void)len;
    struct facts_tx *t = tx_for(s, "DATA", m);
    int tx = t ? (int)(t - s->f.tx) : -1;
    smtp_pending_push(s, SMTP_CMD_DATA, tx, -1, false);
    s->data_tx = (int16_t)tx;
    s->body_bytes = 0;
    s->eod = SMTP_EOD_BOL;
    smtp_enter_state(s, SMTP_ST_DATA_WAIT);
}

static void cmd_bdat(struct smtp_session *s, const char *arg, size_t len,
                     const struct stream_meta *m)
{
    size_t i = skip_sp(arg, len, 0);
    size_t e = word_end(arg, len, i);
    uint64_t size = 0;
    if (e == i || e - i > 18) {
        smtp_pending_push(s, SMTP_CMD_UNKNOWN, -1, -1, false);
        return;
    }
    for (size_t k = i; k < e; k++) {
        if (!isdigit((unsigned char)arg[k])) {
            smtp_pending_push(s, SMTP_CMD_UNKNOWN, -1, -1, false);
            return;
        }
        size = size * 10 + (uint64_t)(arg[k] - '0');
    }
    i = skip_sp(arg, len, e);
    e = word_end(arg, len, i);
    bool last = e - i == 4 && strncasecmp(arg + i, "LAST", 4) == 0;
    if ((e > i && !last) || skip_sp(arg, len, e) < len) {
        /* "BDAT 5 X", "BDAT 1234 SCRAMBLE": not RFC 3030 syntax. The server
         * answers 501 and reads the next bytes as commands, so must we: the
         * command takes its reply slot and carries no chunk. */
        smtp_pending_push(s, SMTP_CMD_UNKNOWN, -1, -1, false);
        return;
    }
    struct facts_tx *t = tx_for(s, "BDAT", m);
    int tx = t ? (int)(t - s->f.tx) : -1;
    if (t)
        t->bdat = true; /* content counts once its bytes are seen */
    s->data_tx = (int16_t)tx;
    smtp_pending_push(s, SMTP_CMD_BDAT, tx, -1, last);
    if (last)
        s->cur_tx = -1; /* the transaction's content is complete */
    s->bdat_left = size;
    if (size)
        smtp_enter_state(s, SMTP_ST_BDAT);
}

static void cmd_rset(struct smtp_session *s, const char *arg, size_t len,
                     const struct stream_meta *m)
{
    (void)arg, (void)len, (void)m;
    s->cur_tx = -1;
    smtp_pending_push(s, SMTP_CMD_RSET, -1, -1, false);
}

static void cmd_starttls(struct smtp_session *s, const char *arg, size_t len,
                         const struct stream_meta *m)
{
    (void)arg, (void)len;
    struct smtp_facts *f = &s->f;
    if (!f->starttls_requested) {
        f->starttls_requested = true;
        f->starttls_ts = m ? m->ts : f->last_ts;
    }
    if (!f->starttls_offered && !f->flow.midstream)
        smtp_anomaly(s, ANOM_STARTTLS_NOT_OFFERED, DIR_C2S, m, "%s",
                     s->caps_done ? "EHLO reply did not list STARTTLS" : "no EHLO reply seen");
    smtp_pending_push(s, SMTP_CMD_STARTTLS, -1, -1, false);
    smtp_enter_state(s, SMTP_ST_STARTTLS_WAIT);
}

/* SASL response lines a mechanism takes after the AUTH line, an initial
 * response (ir) being the first (RFC 4616 PLAIN, draft-murchison-sasl-login
 * LOGIN, RFC 2195 CRAM-MD5, RFC 7628 OAUTHBEARER, XOAUTH2). */
static uint8_t auth_lines_taken(const char *mech, bool ir)
{
    static const struct {
        const char *name;
        uint8_t lines;
    } known[] = {{"PLAIN", 1}, {"LOGIN", 2}, {"CRAM-MD5", 1}, {"OAUTHBEARER", 1}, {"XOAUTH2", 1}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(mech, known[i].name) == 0)
            return (uint8_t)(known[i].lines - (ir ? 1 : 0));
    return SMTP_AUTH_NEED_UNKNOWN;
}

static void cmd_auth(struct smtp_session *s, const char *arg, size_t len,
                     const struct stream_meta *m)
{
    size_t b = skip_sp(arg, len, 0);
    size_t e = word_end(arg, len, b);
    /* the mechanism only: an initial response (credentials) is never kept */
    char mech[32];
    if (!smtp_strlcpy_n(mech, sizeof mech, arg + b, e - b))
        smtp_anomaly(s, ANOM_FIELD_TRUNCATED, DIR_C2S, m,
                     "field=auth.mechanism length=%zu kept=%zu", e - b, sizeof mech - 1);
    for (char *p = mech; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    facts_set(&s->f, &s->f.auth_mechanism, mech, strlen(mech), 0);
    size_t ib = skip_sp(arg, len, e);
    size_t ie = word_end(arg, len, ib);
    bool ir = ie > ib;
    /* an initial response other than "=" (empty) is a credential */
    if (ir && !(ie - ib == 1 && arg[ib] == '=')) {
        s->f.auth_cleartext = true;
        if (s->f.auth_lines < UINT8_MAX)
            s->f.auth_lines++;
    }
    s->auth_need = auth_lines_taken(mech, ir);
    s->auth_invited = 0;
    smtp_pending_push(s, SMTP_CMD_AUTH, -1, -1, false);
    smtp_enter_state(s, SMTP_ST_AUTH);
}

/* True when a client line reads as an SMTP command: a verb of the command
 * table alone, or followed by a space (a base64 SASL line has no space). */
static bool line_is_command(const char *line, size_t len)
{
    size_t ve = word_end(line, len, 0);
    if (ve != len && line[ve] != ' ')
        return false;
    for (int c = SMTP_CMD_HELO; c < SMTP_CMD_COUNT; c++) {
        const char *v = cmd_table[c].verb;
        if (v[0] && ve == strlen(v) && strncasecmp(line, v, ve) == 0)
            return true;
    }
    return false;
}

/* One client line inside an AUTH exchange. Returns true when it was a SASL
 * line (pushed), false when the exchange ended before it and the line is a
 * command. It is a SASL line when the server asked for one (334), and else
 * while the mechanism takes more lines (PLAIN one, LOGIN two, one of them
 * an initial response) and the line does not read as a command: where the
 * server's replies are not in the capture, the MAIL, RCPT and message
 * that follow are not taken for credentials. */
static bool auth_line(struct smtp_session *s, const char *line, size_t len, bool overflow)
{
    bool invited = s->auth_invited > 0;
    bool command = !overflow && line_is_command(line, len);
    if (!invited && (s->auth_need == 0 || command)) {
        smtp_enter_state(s, SMTP_ST_COMMAND);
        return false;
    }
    if (invited)
        s->auth_invited--;
    if (s->auth_need && s->auth_need != SMTP_AUTH_NEED_UNKNOWN)
        s->auth_need--;
    /* a credential crossed: not "*" (cancel), not empty, not a command */
    if (!command && !(len == 1 && line[0] == '*') && len > 0) {
        s->f.auth_cleartext = true;
        if (s->f.auth_lines < UINT8_MAX)
            s->f.auth_lines++;
    }
    smtp_pending_push(s, SMTP_CMD_AUTH_DATA, -1, -1, false);
    return true;
}

static void trace(struct smtp_session *s, const char *verb)
{
    if (s->cfg->on_trace)
        s->cfg->on_trace(s->cfg->trace_ctx, &s->f, DIR_C2S, verb, 0);
}

void smtp_client_line(struct smtp_session *s, const char *line, size_t len, bool overflow,
                      const struct stream_meta *m)
{
    /* a SASL response: credentials, never parsed further, kept or traced */
    if (s->st == SMTP_ST_AUTH && auth_line(s, line, len, overflow))
        return;
    s->any_command = true;
    if (overflow || len == 0) {
        smtp_pending_push(s, SMTP_CMD_UNKNOWN, -1, -1, false);
        trace(s, "");
        return;
    }
    size_t ve = word_end(line, len, 0);
    char verb[16];
    smtp_strlcpy_n(verb, sizeof verb, line, ve);
    for (char *p = verb; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    const struct smtp_cmd_def *def = NULL;
    for (int c = SMTP_CMD_HELO; c < SMTP_CMD_COUNT; c++) {
        const struct smtp_cmd_def *d = &cmd_table[c];
        if (d->verb[0] && ve == strlen(d->verb) && strcasecmp(verb, d->verb) == 0) {
            def = d;
            break;
        }
    }
    trace(s, verb);
    size_t a = skip_sp(line, len, ve);
    if (def && def->arg_prefix) {
        size_t pl = strlen(def->arg_prefix);
        if (len - a >= pl && strncasecmp(line + a, def->arg_prefix, pl) == 0)
            a += pl;
        else
            def = NULL; /* "MAIL" without "FROM:": the server will say 501 */
    }
    if (!def) {
        /* XXXXXXXX / XXXXXXXA: a STARTTLS rewritten on its way (PIX-style) */
        size_t x = 0;
        for (size_t i = 0; i < ve && i < sizeof verb - 1; i++)
            x += verb[i] == 'X';
        if (ve == 8 && x >= 7) {
            smtp_anomaly(s, ANOM_CAP_MANGLED, DIR_C2S, m, "command=%s", verb);
            smtp_pending_push(s, SMTP_CMD_MANGLED, -1, -1, false);
            return;
        }
        smtp_pending_push(s, SMTP_CMD_UNKNOWN, -1, -1, false);
        return;
    }
    if (def->on_cmd)
        def->on_cmd(s, line + a, len - a, m);
    else
        smtp_pending_push(s, def->id, -1, -1, false);
}

/* The content is complete: wait for its final reply. */
static void content_end(struct smtp_session *s, size_t dot_len)
{
    struct facts_tx *t = smtp_tx(s, s->data_tx);
    if (t) {
        t->data_sent = true;
        t->cleartext = true;
        t->data_bytes = s->body_bytes - dot_len;
    }
    smtp_pending_push(s, SMTP_CMD_DATA_END, s->data_tx, -1, false);
    if (s->cur_tx == s->data_tx)
        s->cur_tx = -1; /* its content is sent: what follows is another transaction */
    s->eod = SMTP_EOD_BOL;
    smtp_enter_state(s, SMTP_ST_COMMAND);
}

size_t smtp_client_content(struct smtp_session *s, const uint8_t *buf, size_t len)
{
    if (s->st == SMTP_ST_BDAT) {
        size_t n = len < s->bdat_left ? len : (size_t)s->bdat_left;
        s->bdat_left -= n;
        struct facts_tx *t = smtp_tx(s, s->data_tx);
        if (t && n) {
            t->data_bytes += n;
            t->data_sent = true;
            t->cleartext = true;
        }
        if (!s->bdat_left)
            smtp_enter_state(s, SMTP_ST_COMMAND);
        return n;
    }
    /* DATA: stream up to CRLF "." CRLF (a bare LF is accepted as well) */
    size_t i = 0;
    while (i < len) {
        switch (s->eod) {
        case SMTP_EOD_TEXT: {
            /* Only a "." right after an LF can start the end marker: look
             * for dots (rarer than line ends). A dot at i itself never
             * does: the byte before it (here or in the previous segment)
             * was not an LF, or the state would be BOL. */
            size_t j = i;
            const uint8_t *dot;
            while ((dot = memchr(buf + j, '.', len - j)) != NULL) {
                j = (size_t)(dot - buf);
                if (j > i && buf[j - 1] == '\n')
                    break;
                j++;
            }
            if (!dot) {
                if (buf[len - 1] == '\n')
                    s->eod = SMTP_EOD_BOL;
                i = len;
                break;
            }
            s->eod = SMTP_EOD_DOT;
            i = j + 1;
            break;
        }
        case SMTP_EOD_BOL:
            if (buf[i] == '.') {
                s->eod = SMTP_EOD_DOT;
                i++;
            } else {
                s->eod = SMTP_EOD_TEXT;
            }
            break;
        case SMTP_EOD_DOT:
            if (buf[i] == '\r') {
                s->eod = SMTP_EOD_DOT_CR;
                i++;
            } else if (buf[i] == '\n') {
                s->body_bytes += i + 1;
                content_end(s, 2);
                return i + 1;
            } else {
                s->eod = SMTP_EOD_TEXT;
            }
            break;
        case SMTP_EOD_DOT_CR:
            if (buf[i] == '\n') {
                s->body_bytes += i + 1;
                content_end(s, 3);
                return i + 1;
            }
            s->eod = SMTP_EOD_TEXT;
            break;
        }
    }
    s->body_bytes += len;
    struct facts_tx *t = smtp_tx(s, s->data_tx);
    if (t && s->body_bytes) {
        t->data_sent = true;
        t->cleartext = true;
        t->data_bytes = s->body_bytes;
    }
    return len;
}
