/* SPDX-License-Identifier: Apache-2.0 */
/* ndpi_smtp.h: classification of flows on non-SMTP ports (cfg.any_port) with
 * nDPI 4.2, internal to the SMTP decoder (decode/ndpi_smtp.c). A SOCKS4/5 or
 * HTTP CONNECT handshake in front of the conversation is skipped first. */
#ifndef SW_NDPI_SMTP_H
#define SW_NDPI_SMTP_H

#include <stddef.h>
#include <stdint.h>

#include "decode/flow.h"

struct smtp_session;
struct ndpi_smtp;      /* one nDPI detection module per consumer (thread) */
struct ndpi_smtp_flow; /* one flow being classified */

struct ndpi_smtp *ndpi_smtp_new(void);
void ndpi_smtp_free(struct ndpi_smtp *n);
struct ndpi_smtp_flow *ndpi_smtp_flow_new(struct ndpi_smtp *n, const struct flow_info *fi);
void ndpi_smtp_flow_free(struct ndpi_smtp_flow *fl);

/* Holds the bytes back and asks nDPI. Returns 0 while undecided, 1 when the
 * flow was found to be SMTP (the held bytes, minus any proxy handshake, have
 * been replayed into the session), -1 when it is not SMTP. */
int ndpi_smtp_classify(struct smtp_session *s, enum stream_dir dir, const uint8_t *buf, size_t len,
                       const struct stream_meta *m);

/* Length of a proxy handshake (SOCKS4/4a/5, HTTP CONNECT) at the start of
 * one direction's bytes: 0 when none, -1 when more bytes are needed. */
long ndpi_smtp_proxy_prefix(enum stream_dir dir, const uint8_t *b, size_t n);

#endif
