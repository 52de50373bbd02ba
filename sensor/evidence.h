/* SPDX-License-Identifier: Apache-2.0 */
/* evidence.h: evidence packets (sensor/evidence.c, --evidence-dir). The
 * capture thread hands it every decoded TCP packet (evidence_packet); it
 * keeps a bounded copy of each connection's frames while its session is
 * undecided: every packet up to the first DATA, BDAT, STARTTLS or TLS
 * record, then at most bytes_per_dir payload bytes per direction (and every
 * FIN/RST). When the detector has judged the session (evidence_session, on
 * the detector's thread), the frames of a session that raised an alert are
 * written to DIR/<uid>.pcap and the copy is freed either way. The files in
 * DIR are kept under max_size in total, the oldest removed first. Memory is
 * bounded by memcap (packets past it are not kept, counted). Thread-safe
 * between one producer and one consumer (one mutex). Only exists when
 * --evidence-dir is given: without it nothing is allocated. */
#ifndef SW_SENSOR_EVIDENCE_H
#define SW_SENSOR_EVIDENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode/flow.h"
#include "decode/pkt.h"

#define EVIDENCE_DEFAULT_BYTES    4096u
#define EVIDENCE_DEFAULT_MAX_SIZE (1024ull << 20)
#define EVIDENCE_DEFAULT_MEMCAP   (64ull << 20)

struct evidence_cfg {
    const char *dir;        /* created (one level) when missing */
    uint64_t bytes_per_dir; /* payload bytes after the first DATA/BDAT/TLS (default
                               4096; 0: none) */
    uint64_t max_size;      /* bytes of *.pcap files kept in dir (default 1 GiB) */
    uint64_t memcap;        /* bytes of frames held for undecided sessions (64 MiB) */
    sw_usec idle;           /* a held connection idle this long is dropped (default
                               660 s: twice the established timeout and a minute) */
};

struct evidence_stats {
    uint64_t held_flows, held_bytes, held_peak; /* frames kept for undecided sessions */
    uint64_t pkts_kept, pkts_bounded;           /* kept; left out by the per-flow bounds */
    uint64_t pkts_memcap;                       /* left out: memcap reached */
    uint64_t flows_expired;                     /* held copies dropped when idle (no session) */
    uint64_t sessions_unmatched;                /* alerted sessions with no frames held */
    uint64_t files_written, files_rotated, files_too_large, write_errors;
    uint64_t dir_files, dir_bytes; /* *.pcap files in the directory now */
};

void evidence_cfg_defaults(struct evidence_cfg *c);

struct evidence;
/* NULL with the reason in err (`evidence directory DIR: why`) when the
 * directory cannot be created or read. Existing *.pcap files count toward
 * max_size, oldest (by modification time) removed first. */
struct evidence *evidence_new(const struct evidence_cfg *cfg, char *err, size_t errlen);
/* A decoded TCP packet (pkt_decode returned PKT_TCP; p->frame is the frame
 * of p->linktype). */
void evidence_packet(struct evidence *e, const struct pkt *p);
/* Drops the copies idle past cfg.idle at capture time now. */
void evidence_tick(struct evidence *e, sw_usec now);
/* The session fi was judged. alerted: its frames are written to
 * DIR/<uid>.pcap and the file name (no directory) goes into name; false when
 * nothing was written (no frames held, too large, write error: counted).
 * Not alerted: the frames are freed. */
bool evidence_session(struct evidence *e, const struct flow_info *fi, bool alerted, char *name,
                      size_t namelen);
/* A snapshot of the counters (safe from any thread). */
void evidence_get_stats(struct evidence *e, struct evidence_stats *s);
void evidence_free(struct evidence *e);

#endif
