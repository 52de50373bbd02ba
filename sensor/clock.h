/* SPDX-License-Identifier: Apache-2.0 */
/* clock.h: the capture clock that drives timeouts (sensor/clock.c).
 *
 * The rule, applied to each packet's timestamp ts in capture order:
 *  - the first packet sets the clock;
 *  - ts earlier than the clock (a backwards step) never moves it and never
 *    expires anything;
 *  - ts at most one day after the clock moves it to ts; when that crosses a
 *    whole-second boundary a tick is due (flows are expired at ts);
 *  - ts more than one day after the clock is a discontinuity (a corrupt
 *    timestamp such as a frame dated 2063): it moves nothing and expires
 *    nothing. Only when SW_CLOCK_REBASE_RUN packets in a row are all that
 *    far ahead (a merged capture from a later era) is the clock re-based to
 *    the last of them, without a tick at that moment; later ticks then expire
 *    by the flows' normal timeouts. */
#ifndef SW_CLOCK_H
#define SW_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "decode/sw.h"

#define SW_CLOCK_JUMP       (86400LL * SW_USEC_PER_SEC)
#define SW_CLOCK_REBASE_RUN 32

struct sw_clock {
    bool set;
    sw_usec now;
    uint32_t ahead_run; /* consecutive packets beyond SW_CLOCK_JUMP */
    uint64_t backwards, discontinuities, rebases, ticks;
};

/* Feeds one timestamp; returns true when a tick at ts is due. */
bool sw_clock_step(struct sw_clock *c, sw_usec ts);

#endif
