/* SPDX-License-Identifier: Apache-2.0 */
/* clock.c: the capture clock and its tick rule (documented in clock.h). No RFC. */
#include "sensor/clock.h"

bool sw_clock_step(struct sw_clock *c, sw_usec ts)
{
    if (!c->set) {
        c->set = true;
        c->now = ts;
        return false;
    }
    if (ts < c->now) {
        c->backwards++;
        c->ahead_run = 0;
        return false;
    }
    if (ts - c->now > SW_CLOCK_JUMP) {
        c->discontinuities++;
        if (++c->ahead_run >= SW_CLOCK_REBASE_RUN) {
            c->now = ts;
            c->ahead_run = 0;
            c->rebases++;
        }
        return false;
    }
    c->ahead_run = 0;
    bool tick = ts / SW_USEC_PER_SEC != c->now / SW_USEC_PER_SEC;
    c->now = ts;
    if (tick)
        c->ticks++;
    return tick;
}
