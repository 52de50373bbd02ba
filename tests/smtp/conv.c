/* SPDX-License-Identifier: Apache-2.0 */
/* conv.c: conversation replay for the SMTP decoder tests (see conv.h). */
#include "conv.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

void conv_flow(struct flow_info *fi, uint16_t port)
{
    memset(fi, 0, sizeof *fi);
    snprintf(fi->uid, sizeof fi->uid, "S00000000000000a1");
    fi->client.family = 4;
    fi->client.b[0] = 192, fi->client.b[1] = 0, fi->client.b[2] = 2, fi->client.b[3] = 10;
    fi->server.family = 4;
    fi->server.b[0] = 198, fi->server.b[1] = 51, fi->server.b[2] = 100, fi->server.b[3] = 25;
    fi->cport = 40000;
    fi->sport = port;
    fi->start = CONV_START;
    fi->first_pkt = 1;
}

struct run_ctx {
    struct conv_result *out;
};

static void on_event(void *ctx, enum smtp_event ev, const struct smtp_facts *f)
{
    struct run_ctx *rc = ctx;
    struct conv_result *o = rc->out;
    size_t l = strlen(o->events);
    snprintf(o->events + l, sizeof o->events - l, "%s%s", l ? "," : "", smtp_event_str(ev));
    if (ev == SMTP_EV_END) {
        facts_free(o->facts);
        o->facts = facts_copy(f);
        assert_non_null(o->facts);
        json_t *j = facts_to_json(f);
        assert_non_null(j);
        free(o->json);
        o->json = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(j);
        assert_non_null(o->json);
    }
}

static void meta_for(size_t i, struct stream_meta *m)
{
    memset(m, 0, sizeof *m);
    m->ts = CONV_START + (sw_usec)(i + 1) * 1000;
    m->pkt_no = i + 2;
    m->ttl = 64;
    m->ip_id = (uint16_t)(100 + i);
    m->ip_version = 4;
}

/* split_i: step to split (SIZE_MAX none); split_k: offset; bytewise: 1 byte at a time */
static void run(const struct smtp_cfg *cfg0, const struct flow_info *fi, const struct step *st,
                size_t n, size_t split_i, size_t split_k, bool bytewise, struct conv_result *out)
{
    memset(out, 0, sizeof *out);
    struct run_ctx rc = {out};
    struct smtp_cfg cfg = *cfg0;
    cfg.on_event = on_event;
    cfg.event_ctx = &rc;
    struct smtp_session *s = smtp_session_new(&cfg, fi);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++) {
        struct stream_meta m;
        meta_for(i, &m);
        const uint8_t *d = (const uint8_t *)st[i].data;
        if (bytewise) {
            for (size_t k = 0; k < st[i].len; k++)
                out->stop = smtp_session_feed(s, st[i].dir, d + k, 1, &m);
        } else if (i == split_i) {
            out->stop = smtp_session_feed(s, st[i].dir, d, split_k, &m);
            out->stop = smtp_session_feed(s, st[i].dir, d + split_k, st[i].len - split_k, &m);
        } else {
            out->stop = smtp_session_feed(s, st[i].dir, d, st[i].len, &m);
        }
    }
    smtp_session_end(s, FLOW_END_FIN, CONV_START + (sw_usec)(n + 1) * 1000);
    smtp_session_free(s);
    assert_non_null(out->json);
}

void conv_run(const struct smtp_cfg *cfg, const struct flow_info *fi, const struct step *st,
              size_t n, struct conv_result *out)
{
    run(cfg, fi, st, n, SIZE_MAX, 0, false, out);
}

static void same(const struct conv_result *a, const struct conv_result *b, const char *how,
                 size_t i, size_t k)
{
    if (strcmp(a->json, b->json) != 0 || strcmp(a->events, b->events) != 0 || a->stop != b->stop) {
        fprintf(stderr,
                "replay %s (step %zu, offset %zu) differs:\n whole: %s\n        %s\n split: %s\n   "
                "     %s\n",
                how, i, k, a->json, a->events, b->json, b->events);
        fail();
    }
}

void conv_check(const struct smtp_cfg *cfg, const struct flow_info *fi, const struct step *st,
                size_t n, bool full_splits, struct conv_result *out)
{
    run(cfg, fi, st, n, SIZE_MAX, 0, false, out);
    struct conv_result r;
    if (full_splits) {
        for (size_t i = 0; i < n; i++)
            for (size_t k = 1; k < st[i].len; k++) {
                run(cfg, fi, st, n, i, k, false, &r);
                same(out, &r, "split", i, k);
                conv_result_free(&r);
            }
    }
    run(cfg, fi, st, n, SIZE_MAX, 0, true, &r);
    same(out, &r, "byte by byte", 0, 0);
    conv_result_free(&r);
}

void conv_result_free(struct conv_result *r)
{
    facts_free(r->facts);
    free(r->json);
    r->facts = NULL;
    r->json = NULL;
}

size_t conv_anomalies(const struct smtp_facts *f, enum anomaly_kind k)
{
    size_t c = 0;
    for (size_t i = 0; i < f->n_anomalies; i++)
        if (f->anomalies[i].kind == k)
            c++;
    return c;
}

const char *conv_anomaly_detail(const struct smtp_facts *f, enum anomaly_kind k, size_t i)
{
    for (size_t j = 0; j < f->n_anomalies; j++)
        if (f->anomalies[j].kind == k && i-- == 0)
            return f->anomalies[j].detail;
    return "";
}
