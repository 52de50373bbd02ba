/* SPDX-License-Identifier: Apache-2.0 */
/* capture.h: packet sources for the sensor: one live interface, or several
 * capture files (pcap, pcapng; "-" is stdin) merged in timestamp order.
 * capture_next() hands out one frame at a time; the frame is borrowed until
 * the next call. A live capture may have several sockets in one PACKET_FANOUT
 * group (each flow, both directions, always on the same socket). Errors carry one line naming the
 * input and the reason. */
#ifndef SW_CAPTURE_H
#define SW_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode/sw.h"

struct capture_pkt {
    sw_usec ts;
    const uint8_t *data;
    uint32_t caplen, len;
    int linktype;
    unsigned src; /* which -r file (index in capture_open_files' list); 0 live */
};

struct capture_live_cfg {
    const char *iface;
    const char *bpf;
    int snaplen, buffer_size; /* buffer_size: in all, shared out over the sockets */
    bool immediate;
    unsigned fanout; /* > 1: that many sockets in one PACKET_FANOUT group */
};

struct capture;
/* NULL on failure with the error line (without "stripwatch: ") in err. */
struct capture *capture_open_live(const struct capture_live_cfg *cfg, char *err, size_t errlen);
/* bpf may be NULL (no filter). */
struct capture *capture_open_files(const char *const *files, size_t n, const char *bpf, int snaplen,
                                   char *err, size_t errlen);
/* 1: a packet; 0: no packet right now (live timeout; try again); -1: end of
 * input; -2: error (err filled, capture is over). Live: socket 0. */
int capture_next(struct capture *c, struct capture_pkt *out, char *err, size_t errlen);
/* Live: the same from socket i (< capture_n_src); each socket may be read by
 * its own thread, one thread per socket. */
int capture_next_live(struct capture *c, unsigned i, struct capture_pkt *out, char *err,
                      size_t errlen);
bool capture_is_live(const struct capture *c);
/* Kernel/interface drops (live), summed over the sockets; false when not
 * available. */
bool capture_kernel_drops(struct capture *c, uint64_t *recv, uint64_t *drop, uint64_t *ifdrop);
/* Bytes read so far / total size of the files (progress), 0 when unknown. */
void capture_progress(const struct capture *c, uint64_t *done, uint64_t *total);
/* Packets removed by the BPF filter in offline runs. */
uint64_t capture_filtered(const struct capture *c);
/* The sources: -r files in the order given (or the interface's sockets), with the
 * snap length of their header (0 when unknown, e.g. pcapng). */
size_t capture_n_src(const struct capture *c);
const char *capture_src_name(const struct capture *c, size_t i);
int capture_src_snaplen(const struct capture *c, size_t i);
void capture_free(struct capture *c);

/* pcapng reader for files with several link types (sensor/pcapng.c). */
struct pcapng_reader;
/* Returns true when path is a pcapng file whose interfaces have more than
 * one link type (libpcap 1.10 refuses those). */
bool pcapng_has_mixed_linktypes(const char *path);
struct pcapng_reader *pcapng_open(const char *path, char *err, size_t errlen);
/* 1: packet, 0: end of file, -1: error (err filled). */
int pcapng_next(struct pcapng_reader *r, struct capture_pkt *out, char *err, size_t errlen);
uint64_t pcapng_offset(const struct pcapng_reader *r);
void pcapng_close(struct pcapng_reader *r);

#endif
