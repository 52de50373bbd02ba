/* SPDX-License-Identifier: Apache-2.0 */
/* health.c: health records ("stripwatch.health"): the loss counters of every
 * bound, read through the statistics getters, and a record when they move.
 * Field names follow the Elastic Common Schema (event.kind "state"). No RFC. */
#include "sensor/health.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alerts/detector.h"
#include "alerts/sink.h"
#include "decode/facts.h"
#include "decode/pkt.h"
#include "policy/policy.h"
#include "sensor/capture.h"
#include "sensor/evidence.h"
#include "sensor/pipeline.h"

/* Every counter that says "something was dropped or pushed out by a bound",
 * its name in the record (group.name as in the statistics lines) and the
 * severity of its moving: 3 high when packets, flows, sessions or alerts
 * were lost; 2 medium when verdicts went out without their policy. A
 * counter added by a module gets one line here. */
struct snap {
    struct pipeline_stats ps; /* with the detector's and policy engine's counters */
    const struct frag_stats *fs;
    const struct detector_stats *ds;
    const struct policy_stats *pol;
    const struct sink_stats *ss;
    struct evidence_stats es;
    uint64_t kdrop, ifdrop;
};

static uint64_t c_kdrop(const struct snap *s)
{
    return s->kdrop;
}
static uint64_t c_ifdrop(const struct snap *s)
{
    return s->ifdrop;
}
static uint64_t c_ring(const struct snap *s)
{
    return s->ps.ring_dropped;
}
static uint64_t c_copy(const struct snap *s)
{
    return s->ps.copy_failed;
}
static uint64_t c_evicted(const struct snap *s)
{
    return s->ps.flow.flows_evicted;
}
static uint64_t c_refused(const struct snap *s)
{
    return s->ps.flow.flows_refused;
}
static uint64_t c_ooo(const struct snap *s)
{
    return s->ps.flow.segs_ooo_dropped;
}
static uint64_t c_evsess(const struct snap *s)
{
    return s->ps.flow.evicted_session;
}
static uint64_t c_memcap(const struct snap *s)
{
    return s->ps.smtp.memcap_refused;
}
static uint64_t c_pipe(const struct snap *s)
{
    return s->ps.smtp.pipeline_overflow;
}
static uint64_t c_fbound(const struct snap *s)
{
    return s->fs ? s->fs->bound_dropped : 0;
}
static uint64_t c_fevict(const struct snap *s)
{
    return s->fs ? s->fs->evicted : 0;
}
static uint64_t c_pend(const struct snap *s)
{
    return s->ds ? s->ds->pending_dropped : 0;
}
static uint64_t c_doms(const struct snap *s)
{
    return s->ds ? s->ds->policy_domains_dropped : 0;
}
static uint64_t c_ldrop(const struct snap *s)
{
    return s->pol ? s->pol->lookups_dropped : 0;
}
static uint64_t c_skip(const struct snap *s)
{
    return s->pol ? s->pol->dns_skipped : 0;
}
static uint64_t c_down(const struct snap *s)
{
    return s->pol ? s->pol->dns_resolver_down : 0;
}
static uint64_t c_cfull(const struct snap *s)
{
    return s->pol ? s->pol->cache_full : 0;
}
static uint64_t c_spool(const struct snap *s)
{
    return s->ss ? s->ss->dropped_spool_full : 0;
}

static uint64_t c_evmem(const struct snap *s)
{
    return s->es.pkts_memcap;
}
static uint64_t c_everr(const struct snap *s)
{
    return s->es.write_errors + s->es.files_too_large;
}

static const struct counter {
    const char *name;
    int severity;
    uint64_t (*get)(const struct snap *s);
} counters[] = {
    {"capture.kernel_dropped", 3, c_kdrop},  {"capture.interface_dropped", 3, c_ifdrop},
    {"workers.ring_dropped", 3, c_ring},     {"workers.facts_copy_failed", 3, c_copy},
    {"flows.evicted", 3, c_evicted},         {"flows.refused", 3, c_refused},
    {"flows.ooo_dropped", 3, c_ooo},         {"smtp.memcap_refused", 3, c_memcap},
    {"smtp.pipeline_overflow", 3, c_pipe},   {"frag.bound_dropped", 3, c_fbound},
    {"frag.evicted", 3, c_fevict},           {"sink.dropped_spool_full", 3, c_spool},
    {"detector.pending_dropped", 2, c_pend}, {"detector.policy_domains_dropped", 2, c_doms},
    {"policy.lookups_dropped", 2, c_ldrop},  {"policy.dns_skipped", 2, c_skip},
    {"policy.dns_resolver_down", 2, c_down}, {"policy.cache_full", 2, c_cfull},
    {"flows.evicted_session", 3, c_evsess},  {"evidence.pkts_memcap", 2, c_evmem},
    {"evidence.not_written", 2, c_everr},
};
#define N_COUNTERS (sizeof(counters) / sizeof(counters[0]))

struct health {
    struct health_cfg cfg;
    char observer[256];
    uint64_t last[N_COUNTERS];
    bool started, stopped;
    sw_usec last_ts; /* time of the last record */
    bool dns_down;   /* the policy engine's resolver, at the last take */
    uint64_t records;
};

struct health *health_new(const struct health_cfg *cfg)
{
    struct health *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->cfg = *cfg;
    if (h->cfg.period_s <= 0)
        h->cfg.period_s = 10;
    /* the same observer.name as the alerts (alerts/detector.c) */
    if (cfg->observer_name && *cfg->observer_name)
        snprintf(h->observer, sizeof(h->observer), "%s", cfg->observer_name);
    else if (gethostname(h->observer, sizeof(h->observer) - 1) != 0 || !h->observer[0])
        snprintf(h->observer, sizeof(h->observer), "stripwatch");
    h->cfg.observer_name = h->observer;
    return h;
}

static void take(struct health *h, uint64_t now[N_COUNTERS])
{
    struct snap s;
    memset(&s, 0, sizeof(s));
    /* the output thread drives the detector and the policy engine: their
     * counters as it published them, through the pipeline */
    if (h->cfg.pl) {
        pipeline_get_stats(h->cfg.pl, &s.ps);
        if (s.ps.have_det) {
            s.ds = &s.ps.det;
            s.pol = h->cfg.pol ? &s.ps.pol : NULL;
        }
    } else {
        if (h->cfg.det)
            s.ds = detector_stats(h->cfg.det);
        if (h->cfg.pol)
            s.pol = policy_engine_stats(h->cfg.pol);
    }
    if (h->cfg.frag)
        s.fs = frag_table_stats(h->cfg.frag);
    h->dns_down = s.pol && s.pol->dns_down;
    if (h->cfg.sink)
        s.ss = sink_stats(h->cfg.sink);
    if (h->cfg.ev)
        evidence_get_stats(h->cfg.ev, &s.es);
    uint64_t recv = 0;
    if (h->cfg.cap)
        capture_kernel_drops(h->cfg.cap, &recv, &s.kdrop, &s.ifdrop);
    for (size_t i = 0; i < N_COUNTERS; i++)
        now[i] = counters[i].get(&s);
}

static const char *sev_name(int sev)
{
    return sev >= 3 ? "high" : sev == 2 ? "medium" : "low";
}

/* Builds and emits one record with the counters that moved since the last. */
static void emit(struct health *h, const char *state, sw_usec ts, const uint64_t now[N_COUNTERS])
{
    json_t *moved = json_object();
    int sev = 1;
    for (size_t i = 0; i < N_COUNTERS; i++) {
        if (now[i] == h->last[i])
            continue;
        json_object_set_new(moved, counters[i].name,
                            json_pack("{s:I, s:I}", "delta", (json_int_t)(now[i] - h->last[i]),
                                      "total", (json_int_t)now[i]));
        if (counters[i].severity > sev)
            sev = counters[i].severity;
    }
    bool lost = json_object_size(moved) > 0;
    const char *action = !strcmp(state, "start")  ? "sensor-started"
                         : !strcmp(state, "stop") ? "sensor-stopped"
                                                  : "data-lost";
    char t[40], since[40];
    facts_fmt_time(ts, t, sizeof(t));
    facts_fmt_time(h->started ? h->last_ts : ts, since, sizeof(since));
    json_t *o = json_pack(
        "{s:s, s:{s:s, s:s, s:s, s:i, s:s}, s:{s:s, s:s, s:s, s:s, s:s}, "
        "s:{s:s, s:s, s:{s:s, s:s, s:s, s:b, s:o}}}",
        "@timestamp", t, "event", "kind", "state", "dataset", "stripwatch.health", "action", action,
        "severity", sev, "module", "stripwatch", "observer", "name", h->observer, "type", "sensor",
        "vendor", "stripwatch", "product", "stripwatch", "version", SW_VERSION, "stripwatch",
        "version", SW_VERSION, "severity_name", sev_name(sev), "health", "state", state, "clock",
        h->cfg.live ? "wall" : "capture", "since", since, "data_lost", lost, "counters", moved);
    if (!o)
        return;
    if (h->dns_down)
        json_object_set_new(json_object_get(json_object_get(o, "stripwatch"), "health"),
                            "dns_resolver", json_string("down"));
    char *line = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!line)
        return;
    size_t len = strlen(line);
    if (h->cfg.sink)
        sink_emit(h->cfg.sink, line, len);
    if (h->cfg.emit)
        h->cfg.emit(h->cfg.emit_arg, line, len);
    free(line);
    memcpy(h->last, now, sizeof(h->last));
    h->last_ts = ts;
    h->records++;
}

void health_start(struct health *h, sw_usec now)
{
    if (h->started)
        return;
    uint64_t c[N_COUNTERS];
    take(h, c);
    emit(h, "start", now, c);
    h->started = true;
}

bool health_poll(struct health *h, sw_usec now)
{
    if (!h->started || h->stopped || now < h->last_ts + h->cfg.period_s * SW_USEC_PER_SEC)
        return false;
    uint64_t c[N_COUNTERS];
    take(h, c);
    if (!memcmp(c, h->last, sizeof(c)))
        return false;
    emit(h, "running", now, c);
    return true;
}

void health_stop(struct health *h, sw_usec now)
{
    if (h->stopped)
        return;
    health_start(h, now);
    uint64_t c[N_COUNTERS];
    take(h, c);
    emit(h, "stop", now < h->last_ts ? h->last_ts : now, c);
    h->stopped = true;
}

uint64_t health_records(const struct health *h)
{
    return h->records;
}

void health_free(struct health *h)
{
    free(h);
}
