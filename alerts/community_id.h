/* SPDX-License-Identifier: Apache-2.0 */
/* community_id.h: the Community ID flow hash, version 1 (alerts/community_id.c),
 * as Zeek, Suricata and Wireshark compute it: "1:" and the base64 SHA-1 of
 * seed, the two endpoints in a fixed order, the protocol and the ports. The
 * same flow gets the same value whichever side is named first, so an alert
 * pivots to the matching Zeek conn.log and Suricata EVE records. */
#ifndef SW_COMMUNITY_ID_H
#define SW_COMMUNITY_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode/pkt.h"

#define COMMUNITY_ID_LEN 31 /* "1:" + 28 base64 characters + NUL */
#define COMMUNITY_ID_TCP 6

/* Writes the id of the flow (a, ap) <-> (b, bp) of IP protocol proto into
 * out (COMMUNITY_ID_LEN bytes). seed is 0 for interoperability (the
 * default of Zeek, Suricata and Wireshark). False, out "", when the two
 * addresses are not of one family or hashing fails. */
bool community_id_v1(const struct sw_addr *a, uint16_t ap, const struct sw_addr *b, uint16_t bp,
                     uint8_t proto, uint16_t seed, char out[COMMUNITY_ID_LEN]);

#endif
