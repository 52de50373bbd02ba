/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_capture.c: libFuzzer target for the capture-file source
 * (sensor/capture.c): the input is one capture file (a memfd), opened as -r
 * opens it, so classic pcap files go through the memory-mapped reader (and
 * back to libpcap at the first odd record) and pcapng files with mixed link
 * types through the own reader. Differential check: for files libpcap reads
 * itself, every packet (timestamp, caplen, len, link type, bytes) and the way
 * the file ends (clean end or error) must equal what plain libpcap gives. */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sensor/capture.h"
#include "tests/fuzz/fuzz_input.h"

#define FUZZ_MAX_PKTS 100000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64], err[256] = "";
    int fd = fuzz_memfd(data, size, path);
    const char *files[1] = {path};
    struct capture *c = capture_open_files(files, 1, NULL, 0, err, sizeof(err));
    char ebuf[PCAP_ERRBUF_SIZE];
    pcap_t *ref = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_MICRO, ebuf);
    bool own_ng = pcapng_has_mixed_linktypes(path);
    if (!c) {
        /* refused: libpcap refuses it too (or the own pcapng reader did) */
        if (!err[0] || (ref && !own_ng))
            abort();
        if (ref)
            pcap_close(ref);
        close(fd);
        return 0;
    }
    struct capture_pkt p;
    int rc = 1;
    for (int n = 0; n < FUZZ_MAX_PKTS; n++) {
        rc = capture_next(c, &p, err, sizeof(err));
        if (rc != 1)
            break;
        if (p.caplen > p.len)
            abort();
        volatile uint8_t last = p.caplen ? p.data[p.caplen - 1] : 0;
        (void)last;
        if (own_ng || !ref)
            continue;
        struct pcap_pkthdr *h;
        const u_char *d;
        if (pcap_next_ex(ref, &h, &d) != 1)
            abort(); /* the mapped reader gave a packet libpcap does not */
        sw_usec ts = (sw_usec)((uint64_t)h->ts.tv_sec * SW_USEC_PER_SEC + (uint64_t)h->ts.tv_usec);
        uint32_t len = h->len < h->caplen ? h->caplen : h->len;
        if (p.ts != ts || p.caplen != h->caplen || p.len != len ||
            p.linktype != pcap_datalink(ref) || memcmp(p.data, d, h->caplen) != 0)
            abort();
    }
    if (rc == 1 || rc == 0)
        rc = 1; /* stopped at the bound */
    if (!own_ng && ref && rc != 1) {
        struct pcap_pkthdr *h;
        const u_char *d;
        int r2 = pcap_next_ex(ref, &h, &d);
        /* both end cleanly (-1 / PCAP_ERROR_BREAK) or both with an error */
        if ((rc == -1) != (r2 == PCAP_ERROR_BREAK))
            abort();
    }
    if (rc == -2 && !err[0])
        abort();
    capture_free(c);
    if (ref)
        pcap_close(ref);
    close(fd);
    return 0;
}
