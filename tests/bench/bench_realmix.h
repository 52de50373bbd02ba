/* SPDX-License-Identifier: Apache-2.0 */
/* bench_realmix.h: the bench's `real-mix` case (bench_realmix.c): a capture
 * built from real captures (every pcap/pcapng under the given folders, many
 * rounds, addresses rewritten per round, timestamps shifted), read by a bare
 * libpcap loop, stripwatch with 1 and 2 workers, ndpiReader and tshark,
 * alternately, several times; prints medians, ratios, sessions/s and peak
 * RSS. The capture is written in dir and deleted before the call returns. */
#ifndef SW_BENCH_REALMIX_H
#define SW_BENCH_REALMIX_H

#include <stdbool.h>
#include <stddef.h>

struct realmix_cfg {
    const char *const *dirs; /* folders searched for captures; one missing is skipped */
    size_t n_dirs;
    unsigned rounds; /* copies of every capture (default 1000) */
    unsigned runs;   /* alternating runs of each reader; medians (default 5) */
};

/* False when the case could not run (the reason is on stderr). */
bool bench_realmix(const char *sw, const char *dir, const struct realmix_cfg *cfg);

/* Only writes the mix (for profiling); false on error. */
bool bench_realmix_write(const char *path, const struct realmix_cfg *cfg);

#endif
