/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_pkt.c: libFuzzer target for pkt_decode and the fragment table. The
 * first byte picks the link type, the rest is split at "|~|" into frames
 * decoded in order through one small fragment table (tight bounds), so
 * fragment sequences, overlaps and evictions are reached. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode/pkt.h"

static const int dlts[] = {PKT_DLT_EN10MB,
                           PKT_DLT_LINUX_SLL,
                           PKT_DLT_LINUX_SLL2,
                           PKT_DLT_RAW,
                           PKT_DLT_RAW_101,
                           PKT_DLT_NULL,
                           PKT_DLT_LOOP,
                           228,
                           229,
                           14};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int dlt = dlts[data[0] % (sizeof(dlts) / sizeof(dlts[0]))];
    struct frag_cfg c = {.max_datagrams = 4, .max_bytes = 16384, .timeout = 5000};
    struct frag_table *ft = frag_table_new(&c);
    const uint8_t *p = data + 1, *end = data + size;
    sw_usec ts = 1000;
    uint64_t no = 0;
    while (p <= end) {
        const uint8_t *sep = p;
        while (sep + 3 <= end && memcmp(sep, "|~|", 3) != 0)
            sep++;
        size_t len = sep + 3 <= end ? (size_t)(sep - p) : (size_t)(end - p);
        /* copy so that reads past the frame are caught by the sanitizers */
        uint8_t *frame = malloc(len ? len : 1);
        memcpy(frame, p, len);
        struct pkt pk;
        memset(&pk, 0, sizeof(pk));
        pk.frame = frame;
        pk.caplen = (uint32_t)len;
        pk.len = (uint32_t)len + (len & 1); /* odd frames look snap-cut */
        pk.linktype = dlt;
        pk.ts = ts;
        pk.no = ++no;
        ts += (len % 3 == 0) ? 4000 : 1;
        enum pkt_status st = pkt_decode(&pk, ft);
        if (st == PKT_TCP && pk.payload_len) {
            volatile uint8_t sink = pk.payload[pk.payload_len - 1];
            (void)sink;
        }
        free(frame);
        if (sep + 3 > end)
            break;
        p = sep + 3;
    }
    frag_table_expire(ft, ts + 100000);
    frag_table_free(ft);
    return 0;
}
