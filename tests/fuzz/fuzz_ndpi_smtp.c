/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_ndpi_smtp.c: libFuzzer target for the --any-port classifier
 * (decode/ndpi_smtp.c: SOCKS4/4a/5 and HTTP CONNECT prefixes, nDPI 4.2
 * verdict, replay of the held bytes into the SMTP session), driven through
 * the SMTP stream consumer as the flow table drives it. Input: one byte
 * picking the server port (none of them an SMTP port), then segments
 * separated by 0xff; a segment's first byte: bit 0 the direction (0 client,
 * 1 server), bit 1 a gap of (second byte) bytes instead of data, bits 2-7
 * the TTL. The proxy-prefix scanner also reads the client's first segment
 * alone. Checks: at close the consumer's memory is back to its string
 * table alone, which holds no string any more. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode/ndpi_smtp.h"
#include "decode/smtp.h"

static const uint16_t ports[] = {8025, 1080, 80, 443, 3128, 26, 10025, 40000};

static void on_event(void *ctx, enum smtp_event ev, const struct smtp_facts *f)
{
    (void)ctx, (void)ev;
    json_t *j = facts_to_json(f);
    if (j) {
        char *s = json_dumps(j, JSON_COMPACT);
        free(s);
        json_decref(j);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct smtp_consumer *sc; /* one nDPI module for the process */
    if (!sc) {
        struct smtp_cfg cfg;
        smtp_cfg_defaults(&cfg);
        cfg.any_port = true;
        cfg.on_event = on_event;
        sc = smtp_consumer_new(&cfg);
        if (!sc)
            abort();
    }
    if (size < 1)
        return 0;
    const struct stream_consumer *ops = smtp_consumer_ops(sc);
    struct flow_info fi;
    memset(&fi, 0, sizeof fi);
    memcpy(fi.uid, "S0123456789abcdef", 18);
    fi.client.family = fi.server.family = 4;
    fi.cport = 40001;
    fi.sport = ports[data[0] % (sizeof(ports) / sizeof(ports[0]))];
    fi.midstream = data[0] & 0x80;
    void *st = ops->open(ops->ctx, &fi);
    if (!st)
        abort();
    size_t i = 1;
    uint64_t no = 1;
    bool prefix_done = false;
    while (i < size) {
        const uint8_t *end = memchr(data + i, 0xff, size - i);
        size_t n = end ? (size_t)(end - (data + i)) : size - i;
        if (n) {
            uint8_t h = data[i];
            enum stream_dir dir = (h & 1) ? DIR_S2C : DIR_C2S;
            struct stream_meta m = {(sw_usec)no * 1000, no, (uint8_t)(h >> 2), (uint16_t)no, 4};
            no++;
            ops->packet(st, dir, &m, 0x18);
            if (h & 2) {
                ops->gap(st, dir, n > 1 ? data[i + 1] : 1, &m);
            } else {
                if (!prefix_done && dir == DIR_C2S) {
                    long p = ndpi_smtp_proxy_prefix(dir, data + i + 1, n - 1);
                    if (p < -1 || p > (long)(n - 1))
                        abort();
                    prefix_done = true;
                }
                ops->data(st, dir, data + i + 1, n - 1, &m);
            }
        }
        i += n + 1;
    }
    ops->close(st, FLOW_END_FIN, (sw_usec)no * 1000);
    const struct smtp_stats *ss = smtp_consumer_stats(sc);
    if (ss->strings != 0 || ss->mem_in_use != ss->strings_bytes)
        abort();
    return 0;
}
