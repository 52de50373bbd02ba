/* SPDX-License-Identifier: Apache-2.0 */
/* smtp.c: SMTP session lifecycle and stream-consumer glue (placeholder).
 * Follows RFC 5321, RFC 3207. */
#include "decode/smtp.h"

#include <stdlib.h>
#include <string.h>

static const uint16_t default_ports[] = {25, 587, 2525};
static const uint16_t default_tls_ports[] = {465};

void smtp_cfg_defaults(struct smtp_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->ports = default_ports;
    c->n_ports = 3;
    c->tls_ports = default_tls_ports;
    c->n_tls_ports = 1;
    c->max_line = 4096;
    c->max_pipeline = 64;
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

struct smtp_session {
    struct smtp_cfg cfg;
    struct smtp_facts f;
};

struct smtp_consumer {
    struct smtp_cfg cfg;
    struct smtp_stats stats;
    struct stream_consumer ops;
};

struct smtp_session *smtp_session_new(const struct smtp_cfg *cfg, const struct flow_info *fi)
{
    struct smtp_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = *cfg;
    s->f.flow = *fi;
    s->f.tls.alert_level = s->f.tls.alert_desc = -1;
    return s;
}

unsigned smtp_session_feed(struct smtp_session *s, enum stream_dir dir, const uint8_t *buf,
                           size_t len, const struct stream_meta *m)
{
    (void)buf;
    (void)m;
    if (dir == DIR_C2S)
        s->f.bytes_c2s += len;
    else
        s->f.bytes_s2c += len;
    return 0;
}

void smtp_session_gap(struct smtp_session *s, enum stream_dir dir, uint32_t len,
                      const struct stream_meta *m)
{
    (void)s, (void)dir, (void)len, (void)m;
}

void smtp_session_packet(struct smtp_session *s, enum stream_dir dir, const struct stream_meta *m)
{
    (void)s, (void)dir, (void)m;
}

void smtp_session_end(struct smtp_session *s, enum flow_end why, sw_usec ts)
{
    (void)why;
    s->f.last_ts = ts;
    if (s->cfg.on_event)
        s->cfg.on_event(s->cfg.event_ctx, SMTP_EV_END, &s->f);
}

const struct smtp_facts *smtp_session_facts(const struct smtp_session *s)
{
    return &s->f;
}

void smtp_session_free(struct smtp_session *s)
{
    if (!s)
        return;
    facts_clear(&s->f);
    free(s);
}

static void *c_open(void *ctx, const struct flow_info *fi)
{
    struct smtp_consumer *sc = ctx;
    return smtp_session_new(&sc->cfg, fi);
}

static unsigned c_data(void *st, enum stream_dir dir, const uint8_t *buf, size_t len,
                       const struct stream_meta *m)
{
    return smtp_session_feed(st, dir, buf, len, m);
}

static unsigned c_gap(void *st, enum stream_dir dir, uint32_t len, const struct stream_meta *m)
{
    smtp_session_gap(st, dir, len, m);
    return 0;
}

static void c_close(void *st, enum flow_end why, sw_usec ts)
{
    smtp_session_end(st, why, ts);
    smtp_session_free(st);
}

struct smtp_consumer *smtp_consumer_new(const struct smtp_cfg *cfg)
{
    struct smtp_consumer *sc = calloc(1, sizeof *sc);
    if (!sc)
        return NULL;
    sc->cfg = *cfg;
    sc->ops.ctx = sc;
    sc->ops.open = c_open;
    sc->ops.data = c_data;
    sc->ops.gap = c_gap;
    sc->ops.close = c_close;
    return sc;
}

const struct stream_consumer *smtp_consumer_ops(struct smtp_consumer *sc)
{
    return &sc->ops;
}

const struct smtp_stats *smtp_consumer_stats(const struct smtp_consumer *sc)
{
    return &sc->stats;
}

void smtp_consumer_free(struct smtp_consumer *sc)
{
    free(sc);
}
