/* SPDX-License-Identifier: Apache-2.0 */
/* smtp_int.h: the SMTP decoder's internals, shared by smtp.c (session,
 * directions, anomalies), smtp_cmd.c (client commands, message content) and
 * smtp_reply.c (server replies, capabilities). Not a contract: only decode/
 * smtp*.c include it. */
#ifndef SW_SMTP_INT_H
#define SW_SMTP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode/smtp.h"
#include "decode/tls.h"

/* Commands, as the client sends them and as replies are matched to them. */
enum smtp_cmd {
    SMTP_CMD_NONE = 0, /* a reply with no pending command */
    SMTP_CMD_BANNER,   /* the greeting, pending from the start */
    SMTP_CMD_HELO,
    SMTP_CMD_EHLO,
    SMTP_CMD_MAIL_FROM,
    SMTP_CMD_RCPT_TO,
    SMTP_CMD_DATA,
    SMTP_CMD_DATA_END, /* the final reply to the content after "." */
    SMTP_CMD_BDAT,
    SMTP_CMD_RSET,
    SMTP_CMD_NOOP,
    SMTP_CMD_VRFY,
    SMTP_CMD_EXPN,
    SMTP_CMD_HELP,
    SMTP_CMD_QUIT,
    SMTP_CMD_STARTTLS,
    SMTP_CMD_AUTH,
    SMTP_CMD_AUTH_DATA, /* one SASL response line (content never kept) */
    SMTP_CMD_UNKNOWN,
    SMTP_CMD_MANGLED, /* a verb like XXXXXXXX: STARTTLS rewritten in transit */
    SMTP_CMD_COUNT,
};
const char *smtp_cmd_str(enum smtp_cmd c);

/* What the client's bytes are, at the current point of its stream. */
enum smtp_state {
    SMTP_ST_COMMAND = 0,   /* command lines */
    SMTP_ST_DATA_WAIT,     /* DATA sent, 354 not yet seen: bytes are content */
    SMTP_ST_DATA,          /* message content up to CRLF.CRLF (streamed) */
    SMTP_ST_BDAT,          /* a BDAT chunk of known size */
    SMTP_ST_AUTH,          /* SASL exchange lines */
    SMTP_ST_STARTTLS_WAIT, /* STARTTLS sent, reply not yet seen */
    SMTP_ST_TLS_EXPECT,    /* the next byte must start a TLS record */
    SMTP_ST_TLS,           /* TLS records */
    SMTP_ST_CLASSIFY,      /* non-SMTP port: waiting for nDPI's verdict */
    SMTP_ST_IGNORED,       /* not SMTP: nothing more is parsed */
    SMTP_ST_COUNT,
};
const char *smtp_state_str(enum smtp_state st);

/* The server's bytes. */
enum smtp_srv_state {
    SMTP_SRV_REPLY = 0,
    SMTP_SRV_TLS_EXPECT,
    SMTP_SRV_TLS,
};

/* A command waiting for its reply (RFC 2920 pipelining ring). */
struct smtp_pending {
    uint8_t cmd;  /* enum smtp_cmd */
    uint8_t last; /* BDAT ... LAST; MAIL: nested; RCPT: rcpt indexes tx.domains */
    int16_t tx;   /* index into facts.tx, -1 when not kept */
    int16_t rcpt; /* index into tx.rcpt (or tx.domains, see last), -1 when not kept */
};

/* One direction's partial line: lines that arrive whole in one chunk are
 * parsed where they are; only a line cut across chunks is copied here (the
 * buffer is freed once the line is complete), up to max_line, then the rest
 * is discarded up to LF. */
struct smtp_line {
    char *buf; /* NULL when no partial line is held */
    uint32_t len, cap;
    uint32_t total; /* bytes of the line so far, kept or not (without LF; saturates) */
    bool overflow;  /* the line outgrew max_line; the rest is discarded up to LF */
    bool last_cr;   /* its last byte so far is a CR */
    bool resync;    /* bytes were lost: drop everything up to the next LF */
};

/* End-of-data scanner state (CRLF.CRLF found across any split). */
enum smtp_eod {
    SMTP_EOD_TEXT = 0, /* inside a line */
    SMTP_EOD_BOL,      /* at the beginning of a line */
    SMTP_EOD_DOT,      /* "." at the beginning of a line */
    SMTP_EOD_DOT_CR,   /* ".\r" at the beginning of a line */
};

struct smtp_tunnel; /* SOCKS / HTTP CONNECT prefix skipper (ndpi_smtp.c) */
struct ndpi_smtp_flow;

#define SMTP_AUTH_NEED_UNKNOWN 0xFF

/* First member of a session (a marker for debugging). */
#define SMTP_OBJ_SESSION 0x53455353u /* "SESS" */

/* A server-side overlap conflict waiting for the reply it may fall in:
 * [lo, hi) in stream offsets, what each copy holds (SMTP_OVL_HAS_*). */
#define SMTP_OVL_MAX          4
#define SMTP_OVL_EHLO         0 /* ovl_lo / ovl_hi index: the EHLO reply */
#define SMTP_OVL_STARTTLS     1 /* ... the STARTTLS reply */
#define SMTP_OVL_REPLIES      2
#define SMTP_OVL_HAS_STARTTLS 1u /* a capability line STARTTLS */
#define SMTP_OVL_HAS_220      2u /* a line starting with 220 */
struct smtp_ovl {
    uint32_t lo, hi;
    uint8_t first, second;
    sw_usec ts;
    uint64_t pkt_no;
};

struct smtp_own; /* cfg, stats and strings of a session made by smtp_session_new */

struct smtp_session {
    uint32_t obj;               /* SMTP_OBJ_SESSION */
    uint32_t srv_off;           /* offset of the next server byte (data and gaps) */
    const struct smtp_cfg *cfg; /* the consumer's, or own->cfg */
    struct smtp_stats *stats;   /* the consumer's, or own->stats */
    struct smtp_consumer *consumer;
    struct smtp_own *own; /* NULL for a consumer's session */
    struct smtp_facts f;

    enum smtp_state st;
    enum smtp_srv_state srv;
    enum smtp_eod eod;
    uint32_t reply_lo; /* offset where the server reply being read began */
    struct smtp_line line[2];

    struct smtp_pending *ring; /* grown on demand up to cfg->max_pipeline */
    uint16_t ring_head, ring_len, ring_cap;

    /* reply being assembled (multi-line) */
    bool in_reply;
    struct smtp_pending reply_cmd;
    int reply_code;
    uint32_t reply_lines;

    /* client-side progress */
    int16_t cur_tx;      /* transaction receiving RCPT/DATA, -1 none */
    int16_t data_tx;     /* transaction of the content being sent */
    uint8_t ovl_open;    /* bits 1 << SMTP_OVL_*: reply read, its end not yet */
    uint8_t ovl_done;    /* bits 1 << SMTP_OVL_*: anomaly recorded */
    uint8_t n_ovl;       /* conflicts waiting in ovl */
    uint8_t ovl_next;    /* ... the slot of the next one */
    uint64_t body_bytes; /* content bytes of the current DATA */
    uint64_t bdat_left;  /* bytes left in the current BDAT chunk */
    bool helo_seen, caps_done, ehlo_replied, quit_answered, tls_event_sent;
    bool any_command; /* a client command was seen (midstream pickup) */
    bool implicit_tls;
    bool not_tls_reported;
    bool starttls_dropped; /* STARTTLS was on an EHLO reply line not stored */
    /* AUTH exchange (RFC 4954): SASL lines the mechanism still takes
     * (SMTP_AUTH_NEED_UNKNOWN: not known), and 334 replies not answered */
    uint8_t auth_need, auth_invited;

    /* server packet fingerprints (TTL, IPv4 ID) */
    bool server_fin;
    bool ttl_base_set;
    bool ipid_have;
    bool ignored;
    bool tls_quiet; /* TLS established: the client's bytes only counted */
    uint8_t ttl_base;
    uint8_t ttl_ref;        /* the banner's TTL, the reference for the replies below */
    uint8_t ttl_reply_done; /* SMTP_TTL_AT_* already compared */
    uint8_t ttl_reports, ipid_reports;
    uint16_t ipid_last;
    uint16_t ipid_seq, ipid_zero; /* consecutive sequential / zero IDs */

    unsigned stop;         /* STREAM_STOP_* already asked for */
    struct tls_state *tls; /* allocated when TLS records start */

    /* classification of non-SMTP ports (cfg.any_port) */
    struct ndpi_smtp_flow *ndpi;

    /* overlap conflicts judged against the EHLO and STARTTLS replies
     * (smtp_reply.c, smtp_ovl_*), in stream offsets of the server's side
     * (srv_off, reply_lo, and these): 32 bits, saturating, as only the
     * first replies matter; a reply that starts at UINT32_MAX is not judged */
    uint32_t ovl_lo[SMTP_OVL_REPLIES], ovl_hi[SMTP_OVL_REPLIES]; /* hi 0: not read yet */
    struct smtp_ovl *ovl; /* SMTP_OVL_MAX conflicts waiting, allocated at the first */

    size_t charged; /* bytes charged to stats->mem_in_use (smtp_mem_sync) */
};

/* smtp.c */
void smtp_anomaly(struct smtp_session *s, enum anomaly_kind k, enum stream_dir dir,
                  const struct stream_meta *m, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void smtp_enter_state(struct smtp_session *s, enum smtp_state to);
void smtp_emit(struct smtp_session *s, enum smtp_event ev);
void smtp_tls_event(struct smtp_session *s);
/* Brings the memory accounting up to what the session holds now (struct,
 * command ring, partial lines, TLS reader, facts lists; the consumer's
 * interned strings too): charged to stats->mem_in_use and to the flow table
 * the consumer is bound to. Called after every callback. */
void smtp_mem_sync(struct smtp_session *s);
bool smtp_pending_push(struct smtp_session *s, enum smtp_cmd cmd, int tx, int rcpt, bool last);
/* Copies at most dstlen-1 bytes of src[0..n) into dst, NUL-terminated;
 * returns false when it had to truncate. */
bool smtp_strlcpy_n(char *dst, size_t dstlen, const char *src, size_t n);
/* facts_set(&s->f, slot, src, n, max) with ANOM_FIELD_TRUNCATED ("field=NAME
 * length=N") when src[0..n) does not fit in max - 1 bytes. */
void smtp_set_field(struct smtp_session *s, const char **slot, const char *name, const char *src,
                    size_t n, size_t max, enum stream_dir dir, const struct stream_meta *m);

/* Replays bytes held back while the flow was classified (ndpi_smtp.c). */
void smtp_session_replay(struct smtp_session *s, enum stream_dir dir, const uint8_t *buf,
                         size_t len, const struct stream_meta *m);

/* One row of the command table (smtp_cmd.c): the verb as sent, what the
 * client side does with the command, what the reply to it does. */
struct smtp_cmd_def {
    enum smtp_cmd id;
    const char *verb;
    const char *arg_prefix; /* "FROM:" / "TO:" or NULL */
    void (*on_cmd)(struct smtp_session *s, const char *arg, size_t len,
                   const struct stream_meta *m);
    void (*on_reply)(struct smtp_session *s, const struct smtp_pending *p, int code,
                     const struct stream_meta *m);
};
const struct smtp_cmd_def *smtp_cmd_def(enum smtp_cmd c);
struct facts_tx *smtp_tx(struct smtp_session *s, int idx);

/* reply handlers (smtp_reply.c), referenced by the command table */
void smtp_reply_banner(struct smtp_session *s, const struct smtp_pending *p, int code,
                       const struct stream_meta *m);
void smtp_reply_ehlo(struct smtp_session *s, const struct smtp_pending *p, int code,
                     const struct stream_meta *m);
void smtp_reply_mail(struct smtp_session *s, const struct smtp_pending *p, int code,
                     const struct stream_meta *m);
void smtp_reply_rcpt(struct smtp_session *s, const struct smtp_pending *p, int code,
                     const struct stream_meta *m);
void smtp_reply_data(struct smtp_session *s, const struct smtp_pending *p, int code,
                     const struct stream_meta *m);
void smtp_reply_data_end(struct smtp_session *s, const struct smtp_pending *p, int code,
                         const struct stream_meta *m);
void smtp_reply_bdat(struct smtp_session *s, const struct smtp_pending *p, int code,
                     const struct stream_meta *m);
void smtp_reply_starttls(struct smtp_session *s, const struct smtp_pending *p, int code,
                         const struct stream_meta *m);
void smtp_reply_auth(struct smtp_session *s, const struct smtp_pending *p, int code,
                     const struct stream_meta *m);
void smtp_reply_quit(struct smtp_session *s, const struct smtp_pending *p, int code,
                     const struct stream_meta *m);
void smtp_reply_mangled(struct smtp_session *s, const struct smtp_pending *p, int code,
                        const struct stream_meta *m);

/* smtp_cmd.c */
void smtp_client_line(struct smtp_session *s, const char *line, size_t len, bool overflow,
                      const struct stream_meta *m);
/* Consumes message content (DATA or BDAT); returns the bytes used. */
size_t smtp_client_content(struct smtp_session *s, const uint8_t *buf, size_t len);

/* Replies whose packets must keep the banner's TTL (smtp_ttl_at_reply). */
#define SMTP_TTL_AT_EHLO     1u
#define SMTP_TTL_AT_STARTTLS 2u
#define SMTP_TTL_AT_PLAIN    4u /* plaintext after 220 to STARTTLS */
/* Compares the TTL of the packet carrying this reply with the banner's:
 * ANOM_TTL_SHIFT_REPLY when it moved by more than a route change (2 hops or
 * more, another initial-TTL class 64/128/255, or one hop together with an
 * IPv4 ID break on the same packet). Once per kind; m NULL is a no-op. */
void smtp_ttl_at_reply(struct smtp_session *s, unsigned at, const struct stream_meta *m);

/* smtp_reply.c */
/* The reply just read (SMTP_OVL_EHLO / SMTP_OVL_STARTTLS) began at
 * reply_lo; its end comes with smtp_ovl_close. */
void smtp_ovl_mark(struct smtp_session *s, unsigned which);
/* The server's bytes before offset end are read: replies marked are
 * complete, and the conflicts waiting are judged against them. */
void smtp_ovl_close(struct smtp_session *s, uint32_t end);
/* Judges the conflicts waiting against the replies read so far. */
void smtp_ovl_judge(struct smtp_session *s);
void smtp_server_line(struct smtp_session *s, const char *line, size_t len, bool overflow,
                      const struct stream_meta *m);
/* True when the capability keyword looks mangled: an ESMTP-inspection mask
 * (Xs then one letter, XXXXXXXA, XXXA, XI; all X) or an unknown token of
 * STARTTLS's length. Which extension a mask hid is the rules' judgement. */
bool smtp_cap_is_mangled(const char *kw, size_t len);

#endif
