/* SPDX-License-Identifier: Apache-2.0 */
/* inputcheck.h: bad input is never silent (sensor/inputcheck.c). Counts, per
 * capture file, the frames the decoder could not read and why: a link type
 * it does not decode, or a snap length that cut the link, IP or TCP headers
 * (or the TCP payload). At the end, one line per file with such a problem,
 * and whether some file had nothing decodable at all (exit 1). */
#ifndef SW_SENSOR_INPUTCHECK_H
#define SW_SENSOR_INPUTCHECK_H

#include <stdbool.h>
#include <stdio.h>

#include "decode/pkt.h"
#include "sensor/capture.h"

struct input_check;
/* One counter set per source of cap (borrowed until input_check_free). */
struct input_check *input_check_new(const struct capture *cap);
/* A frame of source cp->src and what pkt_decode() made of it. */
void input_check_packet(struct input_check *ic, const struct capture_pkt *cp, enum pkt_status st);
/* Writes "stripwatch: FILE: ..." lines to out; false when a file with
 * frames had not one that could be decoded. */
bool input_check_report(const struct input_check *ic, FILE *out);
void input_check_free(struct input_check *ic);

#endif
