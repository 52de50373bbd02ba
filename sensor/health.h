/* SPDX-License-Identifier: Apache-2.0 */
/* health.h: health records (sensor/health.c): "is the sensor losing data?"
 * as JSON lines in the alert sinks (event.dataset "stripwatch.health",
 * event.kind "state"). It reads the loss counters of every bound (kernel and
 * ring drops, flow evictions and refusals, out-of-order drops, SMTP memcap
 * and command-pipeline overflow, fragment bounds, verdicts pushed out, policy
 * lookups dropped or skipped while the resolver is down, spool full, evidence
 * packets not kept or not written) through
 * the modules' statistics getters, and emits a record with the counters that
 * moved (delta and total) and a severity: one at start, one at stop, and in
 * between at most one per period, only when a counter moved. Time is capture
 * time offline, wall time live. Owned by the capture thread; sink_emit() may
 * be called from another thread meanwhile (the sink serialises producers). */
#ifndef SW_SENSOR_HEALTH_H
#define SW_SENSOR_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode/sw.h"

struct capture;
struct frag_table;
struct pipeline;
struct detector;
struct sink;
struct policy_engine;
struct evidence;

/* Where the counters come from (all borrowed, any may be NULL) and where
 * records go. */
struct health_cfg {
    struct sink *sink;
    struct capture *cap;
    struct frag_table *frag;
    struct pipeline *pl;
    struct detector *det;
    struct policy_engine *pol;
    struct evidence *ev;       /* --evidence-dir */
    const char *observer_name; /* NULL: host name */
    bool live;                 /* wall time; else capture time */
    int64_t period_s;          /* at most one record per period between start and stop (10) */
    /* also hands every record here (tests); may be NULL */
    void (*emit)(void *arg, const char *json, size_t len);
    void *emit_arg;
};

struct health;
struct health *health_new(const struct health_cfg *cfg);
/* The start record, at time now (capture time of the first packet offline). */
void health_start(struct health *h, sw_usec now);
/* Emits a record when period_s has passed since the last one and a loss
 * counter moved meanwhile; cheap when not due. Returns true when one went. */
bool health_poll(struct health *h, sw_usec now);
/* The stop record (after the last packet, once everything was flushed into
 * the detector); emits the start record first when none went yet. */
void health_stop(struct health *h, sw_usec now);
uint64_t health_records(const struct health *h);
void health_free(struct health *h);

#endif
