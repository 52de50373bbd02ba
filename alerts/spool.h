/* SPDX-License-Identifier: Apache-2.0 */
/* spool.h: the sink's on-disk, append-only alert spool (alerts/spool.c).
 *
 * Files: PATH holds a header line "stripwatch-spool 1 <id>\n" (id: 16 hex
 * digits, random at creation, names this sensor's dedup key in Redis) then one
 * record per line: "<seq> <json>\n", seq strictly increasing, never reused.
 * PATH.head holds the last acknowledged seq (20 digits and "\n", rewritten in
 * place with pwrite after every acknowledged batch). On open, records with
 * seq <= that number are skipped; a torn last line (crash mid-write) is cut
 * off and reported. When every record is acknowledged the file is truncated
 * back to its header; when the bound is near and the acknowledged prefix is
 * large, the unacknowledged rest is copied to PATH.tmp, fsynced and renamed
 * over PATH (safe at any crash point: the head names a seq, not an offset).
 *
 * fsync policy: appends are plain write()s (they survive a process crash,
 * not a power loss); spool_sync() fdatasyncs PATH and PATH.head; the sink
 * calls it at most once a second while unacknowledged records exist, and at
 * sink_flush()/sink_free(). So a power loss can lose at most about one second
 * of alerts that Redis had not acknowledged yet.
 *
 * Offsets given out are logical (monotonic for the life of the struct, not
 * moved by truncation or compaction). Not thread-safe: the sink holds its
 * mutex around every call. */
#ifndef SW_SPOOL_H
#define SW_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPOOL_REC_MAX (1u << 20) /* largest alert accepted, bytes */

struct spool_rec {
    uint64_t seq;     /* 0 for a malformed line (to be skipped, not sent) */
    const char *json; /* into the spool's read buffer; valid until the next spool_read */
    size_t len;
    uint64_t end; /* logical offset just after the record */
};

struct spool;
/* Opens or creates the spool (exclusive flock: one process per spool).
 * NULL with a message naming the file on failure. Problems found in an
 * existing spool (torn tail, malformed lines) are reported on stderr. */
struct spool *spool_open(const char *path, uint64_t max_bytes, char *err, size_t errlen);
void spool_close(struct spool *sp); /* syncs; NULL is a no-op */

/* Appends one record (json must hold no newline). SW_OK and *seq;
 * SW_ELIMIT when the file would exceed max_bytes (nothing written; the
 * caller counts and reports); SW_EIO on a write error. */
int spool_append(struct spool *sp, const char *json, size_t len, uint64_t *seq);
/* Reads up to max records starting at logical offset from (clamped to the
 * head). Returns the number read (0: nothing pending after from). As at open,
 * a line whose seq is not above the previous valid one is malformed (seq 0);
 * "previous" is known when from is the head or the end of the last read. */
size_t spool_read(struct spool *sp, uint64_t from, struct spool_rec *recs, size_t max);
/* Acknowledges one record: the one at the head, which ends at logical offset
 * end and carries seq (0 for a malformed line: the last seq is kept). */
int spool_ack(struct spool *sp, uint64_t seq, uint64_t end);
/* Writes the last acknowledged seq to PATH.head (once per batch). */
int spool_save_head(struct spool *sp);
int spool_sync(struct spool *sp);
/* The same in two steps, so that the slow part runs without the caller's
 * lock: _begin (under the lock) saves the head and dups both descriptors
 * into fds; _end (lock not needed) fdatasyncs and closes them. */
int spool_sync_begin(struct spool *sp, int fds[2]);
int spool_sync_end(int fds[2]);

uint64_t spool_head(const struct spool *sp);     /* logical offset of the first unacked record */
uint64_t spool_tail(const struct spool *sp);     /* logical end of file */
uint64_t spool_pending(const struct spool *sp);  /* records not acknowledged */
uint64_t spool_bytes(const struct spool *sp);    /* file size */
uint64_t spool_last_seq(const struct spool *sp); /* last seq appended (0: none ever) */
uint64_t spool_max_bytes(const struct spool *sp);
const char *spool_id(const struct spool *sp);
const char *spool_path(const struct spool *sp);

#endif
