/* SPDX-License-Identifier: Apache-2.0 */
/* pipeline.h: workers and the ordered output stage (sensor/pipeline.c).
 *
 * The capture thread decodes each frame and calls pipeline_packet() with the
 * TCP segment; the pipeline routes it by flow_hash() to the worker that owns
 * the flow (one worker: processed inline on the capture thread; several: a
 * copy goes through that worker's bounded ring to its thread). Each worker
 * owns a flow table and an SMTP consumer. A finished session becomes a facts
 * copy keyed (pkt_no of the packet or tick that ended it, uid), queued for
 * the output stage, which runs on a thread of its own for every worker count:
 * it releases sessions in key order once every worker has passed that packet
 * number (watermarks), so the output is identical for every worker count.
 * Sessions still open at the end are keyed (UINT64_MAX, uid). Released
 * sessions are written as JSON lines and handed to the detector. A worker
 * whose queue is full (the output stage is behind) waits for the output
 * stage to take it: memory stays bounded, and live capture loses packets in
 * the kernel (counted) rather than sessions in memory.
 *
 * Self-fed (live fanout, several workers): no rings and no worker threads
 * here; each worker is driven by its own capture thread through
 * pipeline_worker_*() (worker i from one thread only), with keys that grow
 * per worker (capture time); the output thread releases by the same rule.
 * pipeline_finish() closes their flows once the feeding threads are gone. */
#ifndef SW_PIPELINE_H
#define SW_PIPELINE_H

#include <stdbool.h>
#include <stdio.h>

#include "alerts/detector.h"
#include "alerts/tlsrpt.h"
#include "decode/flow.h"
#include "decode/smtp.h"

struct pipeline_cfg {
    unsigned workers;
    bool live;            /* full rings drop (counted) instead of waiting */
    bool self_fed;        /* with workers > 1: pipeline_worker_*() feed the workers */
    uint32_t ring_slots;  /* per worker, power of two (default 1024) */
    struct flow_cfg flow; /* per worker */
    struct smtp_cfg smtp; /* template; on_event is set by the pipeline */
    FILE *sessions_out;   /* may be NULL */
    bool flush_records;   /* each record flushed (live, or reading a pipe) */
    struct detector *det; /* may be NULL */
};

struct pipeline_stats {
    struct flow_stats flow; /* summed over workers (peaks summed too) */
    struct smtp_stats smtp;
    uint64_t ring_dropped; /* live: packets dropped at a full worker ring */
    uint64_t ring_waits;   /* offline: times the capture waited for a worker */
    uint64_t output_waits; /* times a worker waited for the output stage (its queue full) */
    uint64_t sessions_out; /* session records written */
    uint64_t sessions;     /* sessions handed to the output stage */
    uint64_t sessions_tls; /* ... of them with TLS established (STARTTLS or implicit) */
    uint64_t copy_failed;  /* facts_copy failures (out of memory) */
    /* the detector's (cfg.det), its policy engine's and its TLS-RPT
     * reports' counters (detector_stats_all); zero without a detector */
    bool have_det;
    struct detector_stats det;
    struct policy_stats pol;
    struct tlsrpt_stats rpt;
};

struct pipeline;
struct pipeline *pipeline_new(const struct pipeline_cfg *cfg, char *err, size_t errlen);
/* A decoded TCP segment (p->no set; p->payload may point into borrowed memory). */
void pipeline_packet(struct pipeline *pl, const struct pkt *p);
/* Self-fed: a decoded TCP segment for worker i, keyed key (>= the worker's
 * earlier keys to keep the order; smaller ones are released at once). */
void pipeline_worker_packet(struct pipeline *pl, unsigned i, const struct pkt *p, uint64_t key);
/* Self-fed: worker i is past key; with expire, its flows are timed out at now. */
void pipeline_worker_tick(struct pipeline *pl, unsigned i, sw_usec now, uint64_t key, bool expire);
/* Capture time now has crossed a second boundary at packet pkt_no. */
void pipeline_tick(struct pipeline *pl, sw_usec now, uint64_t pkt_no);
/* Call when idle and every few thousand packets: makes sure no packet waits
 * in a worker's ring for a batch to fill. */
void pipeline_idle(struct pipeline *pl);
/* End of input: closes every flow, drains the output stage, joins threads. */
void pipeline_finish(struct pipeline *pl);
/* Runs fn(arg) on the thread that drives the detector (the output thread),
 * between two sessions, and returns once it ran (SIGHUP applies its changes
 * there). Not after pipeline_finish. */
void pipeline_run_on_output(struct pipeline *pl, void (*fn)(void *arg), void *arg);
/* Replaces the session records' stream; returns the old one (the caller
 * closes it). Only from inside pipeline_run_on_output's fn. */
FILE *pipeline_swap_sessions_out(struct pipeline *pl, FILE *f);
/* On the thread that calls pipeline_new and pipeline_finish. The counters
 * of the workers and of the output stage are written by their own threads:
 * while those run, each publishes a copy from time to time (a worker at
 * each tick and at its end, the output thread at each round) and these are
 * what is read; after pipeline_finish, the counters themselves (the
 * detector's and its engines' as they are then). */
void pipeline_get_stats(struct pipeline *pl, struct pipeline_stats *st);
void pipeline_free(struct pipeline *pl);

#endif
