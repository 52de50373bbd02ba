/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_pcapng.c: libFuzzer target for the own pcapng block reader
 * (sensor/pcapng.c, draft-ietf-opsawg-pcapng): the input is the file (a
 * memfd). Reads every packet (each byte of it is touched, so a frame that
 * overruns its block is caught), then the link-type scan run on every file
 * given to -r. Checks: a packet lies inside its block and caplen <= len. */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "sensor/capture.h"
#include "tests/fuzz/fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64], err[256];
    int fd = fuzz_memfd(data, size, path);
    struct pcapng_reader *r = pcapng_open(path, err, sizeof(err));
    if (!r)
        abort();
    struct capture_pkt p;
    err[0] = 0;
    int rc;
    uint64_t sum = 0;
    while ((rc = pcapng_next(r, &p, err, sizeof(err))) == 1) {
        if (p.caplen > p.len)
            abort();
        for (uint32_t i = 0; i < p.caplen; i++)
            sum += p.data[i];
    }
    if (rc != 0 && rc != -1)
        abort();
    if (rc == -1 && !err[0])
        abort();
    pcapng_close(r);
    (void)pcapng_has_mixed_linktypes(path);
    close(fd);
    volatile uint64_t sink = sum;
    (void)sink;
    return 0;
}
