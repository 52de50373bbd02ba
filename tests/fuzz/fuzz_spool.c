/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_spool.c: libFuzzer target for the alert spool reader (alerts/spool.c):
 * the spool file and its head file as found after a crash or tampering.
 * Input: one flags byte (bit 0: write PATH.head from the next 21 bytes;
 * bit 1: a bound just above the file so that appending compacts or is
 * refused), then the spool file. The spool is opened, every pending record
 * read in batches and acknowledged in order, one record appended, the spool
 * closed and opened again. Checks: records handed out carry seq 0 (skipped)
 * or a seq above every earlier one; the appended record is the only one
 * pending after the reopen, with the seq it was given. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alerts/spool.h"
#include "decode/sw.h"
#include "tests/fuzz/fuzz_input.h"

static void cleanup(const char *path, const char *head)
{
    char tmp[320];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    unlink(path);
    unlink(head);
    unlink(tmp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    data++, size--;
    char path[300], head[310], err[512] = "";
    snprintf(path, sizeof(path), "%s/alerts.spool", fuzz_scratch_dir());
    snprintf(head, sizeof(head), "%s.head", path);
    if (flags & 1) {
        size_t hn = size < 21 ? size : 21;
        fuzz_write_file(head, data, hn);
        data += hn, size -= hn;
    }
    fuzz_write_file(path, data, size);
    uint64_t max = (flags & 2) ? size + 96 : (64u << 20);
    struct spool *sp = spool_open(path, max, err, sizeof(err));
    if (!sp) {
        if (!err[0])
            abort();
        cleanup(path, head);
        return 0;
    }
    uint64_t prev = 0, from = 0;
    struct spool_rec recs[16];
    size_t n;
    while ((n = spool_read(sp, from, recs, 16)) > 0) {
        for (size_t i = 0; i < n; i++) {
            if (recs[i].seq) {
                if (recs[i].seq <= prev || recs[i].seq > spool_last_seq(sp))
                    abort();
                prev = recs[i].seq;
                volatile char c = recs[i].len ? recs[i].json[recs[i].len - 1] : 0;
                (void)c;
            }
            if (spool_ack(sp, recs[i].seq, recs[i].end) != SW_OK)
                abort();
            from = recs[i].end;
        }
    }
    if (spool_pending(sp) != 0)
        abort();
    uint64_t seq = 0, last = spool_last_seq(sp);
    int rc = spool_append(sp, "{\"fuzz\":1}", 10, &seq);
    if (rc == SW_OK && seq != last + 1)
        abort();
    if (spool_save_head(sp) != SW_OK)
        abort();
    spool_close(sp);
    sp = spool_open(path, max, err, sizeof(err));
    if (!sp)
        abort(); /* a spool this code wrote must open */
    if (spool_pending(sp) != (rc == SW_OK ? 1u : 0u) || spool_last_seq(sp) < last)
        abort();
    if (rc == SW_OK) {
        n = spool_read(sp, 0, recs, 16);
        if (n != 1 || recs[0].seq != seq || recs[0].len != 10 ||
            memcmp(recs[0].json, "{\"fuzz\":1}", 10) != 0)
            abort();
    }
    spool_close(sp);
    cleanup(path, head);
    return 0;
}
