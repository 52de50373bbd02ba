/* SPDX-License-Identifier: Apache-2.0 */
/* fanout.h: live capture on several workers (sensor/fanout.c). One thread
 * per socket of a live capture opened with a PACKET_FANOUT group: each reads
 * its socket, decodes (its own fragment table and clock) and feeds the
 * pipeline worker of the same index, so a flow is captured, decoded and
 * judged by one worker. Packet numbers come from one counter shared by the
 * threads (arrival order); sessions are ordered by capture time. The caller
 * keeps the capture and the pipeline (self-fed) alive until fanout_stop(). */
#ifndef SW_SENSOR_FANOUT_H
#define SW_SENSOR_FANOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode/pkt.h"

struct capture;
struct pipeline;
struct fanout;

/* Starts one thread per capture socket (with every signal blocked). NULL on
 * failure with the error line in err. */
struct fanout *fanout_start(struct capture *cap, struct pipeline *pl, char *err, size_t errlen);
/* Totals over the threads so far. */
void fanout_counts(struct fanout *f, uint64_t *packets, uint64_t *bytes,
                   uint64_t status[PKT_STATUS_COUNT]);
/* The fragment tables' counters, summed over the threads. */
void fanout_frag_stats(struct fanout *f, struct frag_stats *sum);
/* True (err filled, once) when a thread stopped on a capture error. */
bool fanout_failed(struct fanout *f, char *err, size_t errlen);
/* Stops and joins the threads; the pipeline's workers get nothing more. */
void fanout_stop(struct fanout *f);
/* Stops first when still running. NULL is a no-op. */
void fanout_free(struct fanout *f);

#endif
