/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_smtp.c: libFuzzer target for the SMTP + STARTTLS + TLS decoder.
 * Input: one flags byte (bit 0: port 465, implicit TLS; bit 1: keep
 * addresses; bit 2: midstream pickup; bit 3: 64-byte lines, 4-deep
 * pipeline), then segments separated by 0xff. A segment's first byte picks
 * what it is: bit 0 the direction (0 client, 1 server); bit 1 set makes it a
 * gap of (second byte) bytes instead of data; bits 2-7 are the TTL of the
 * packet (so TTL and IP-ID tracking are fuzzed too). Every run ends the
 * session and renders its record, like the sensor does. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode/smtp.h"

static void on_event(void *ctx, enum smtp_event ev, const struct smtp_facts *f)
{
    (void)ctx, (void)ev;
    struct smtp_facts *c = facts_copy(f);
    json_t *j = facts_to_json(c ? c : f);
    if (j) {
        char *s = json_dumps(j, JSON_COMPACT);
        free(s);
        json_decref(j);
    }
    facts_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    struct smtp_cfg cfg;
    smtp_cfg_defaults(&cfg);
    cfg.log_addresses = flags & 2;
    if (flags & 8) {
        cfg.max_line = 64;
        cfg.max_pipeline = 4;
    }
    cfg.on_event = on_event;
    struct flow_info fi;
    memset(&fi, 0, sizeof fi);
    memcpy(fi.uid, "S0123456789abcdef", 18);
    fi.client.family = fi.server.family = 4;
    fi.cport = 40000;
    fi.sport = (flags & 1) ? 465 : 25;
    fi.midstream = flags & 4;
    struct smtp_session *s = smtp_session_new(&cfg, &fi);
    if (!s)
        return 0;
    size_t i = 1;
    uint64_t no = 1;
    while (i < size) {
        const uint8_t *end = memchr(data + i, 0xff, size - i);
        size_t n = end ? (size_t)(end - (data + i)) : size - i;
        if (n) {
            uint8_t h = data[i];
            enum stream_dir dir = (h & 1) ? DIR_S2C : DIR_C2S;
            struct stream_meta m = {(sw_usec)no * 1000, no, (uint8_t)(h >> 2), (uint16_t)no, 4};
            no++;
            smtp_session_packet(s, dir, &m);
            if (h & 2)
                smtp_session_gap(s, dir, n > 1 ? data[i + 1] : 1, &m);
            else
                smtp_session_feed(s, dir, data + i + 1, n - 1, &m);
        }
        i += n + 1;
    }
    smtp_session_end(s, FLOW_END_FIN, (sw_usec)no * 1000);
    smtp_session_free(s);
    return 0;
}
