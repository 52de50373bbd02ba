/* SPDX-License-Identifier: Apache-2.0 */
/* conv.h: replays an SMTP conversation (a list of direction + bytes steps)
 * into smtp_session_* whole, split at every byte boundary and byte by byte,
 * and checks that every replay gives the same session record and events. */
#ifndef SW_TEST_CONV_H
#define SW_TEST_CONV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode/smtp.h"

struct step {
    enum stream_dir dir;
    const char *data;
    size_t len;
};
#define C(s)                                                                                       \
    {                                                                                              \
        DIR_C2S, s, sizeof(s) - 1                                                                  \
    }
#define S(s)                                                                                       \
    {                                                                                              \
        DIR_S2C, s, sizeof(s) - 1                                                                  \
    }
#define CONV_N(a) (sizeof(a) / sizeof((a)[0]))

#define CONV_START 1795341600000000LL /* 2026-11-22T10:00:00Z */

struct conv_result {
    struct smtp_facts *facts; /* deep copy of the facts at SMTP_EV_END */
    char *json;               /* facts_to_json, compact, sorted keys */
    char events[512];         /* "ehlo_reply,tls,end" */
    unsigned stop;            /* STREAM_STOP_* bits returned by the last feed */
};

/* The flow used by every test: 192.0.2.10:40000 -> 198.51.100.25:port. */
void conv_flow(struct flow_info *fi, uint16_t port);

/* One replay, whole steps. The caller frees with conv_result_free. */
void conv_run(const struct smtp_cfg *cfg, const struct flow_info *fi, const struct step *st,
              size_t n, struct conv_result *out);
/* Whole, then every split point (when full_splits), then byte by byte:
 * asserts all replays agree (json and events) and returns the whole one. */
void conv_check(const struct smtp_cfg *cfg, const struct flow_info *fi, const struct step *st,
                size_t n, bool full_splits, struct conv_result *out);
void conv_result_free(struct conv_result *r);

/* Count of anomalies of one kind. */
size_t conv_anomalies(const struct smtp_facts *f, enum anomaly_kind k);
/* The detail of the i-th anomaly of kind k, "" when none. */
const char *conv_anomaly_detail(const struct smtp_facts *f, enum anomaly_kind k, size_t i);

#endif
