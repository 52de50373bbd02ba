/* SPDX-License-Identifier: Apache-2.0 */
/* detector.c: the downgrade detector: sessions in, alerts out (stub). */
#include "alerts/detector.h"

#include <stdlib.h>
#include <string.h>

struct detector {
    struct detector_cfg cfg;
    struct detector_stats stats;
};

void detector_cfg_defaults(struct detector_cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->policy_deadline_ms = 5000;
    c->max_pending = 10000;
    c->posture_max = 100000;
    c->posture_max_age = 90LL * 24 * 3600;
    c->rate_per_rule_server = 10;
}

struct detector *detector_new(const struct detector_cfg *cfg, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct detector *d = calloc(1, sizeof(*d));
    if (d)
        d->cfg = *cfg;
    return d;
}

void detector_session(struct detector *d, struct smtp_facts *f)
{
    d->stats.sessions++;
    facts_free(f);
}

void detector_run(struct detector *d, int timeout_ms)
{
    (void)d;
    (void)timeout_ms;
}

void detector_finish(struct detector *d) { (void)d; }

const struct detector_stats *detector_stats(const struct detector *d) { return &d->stats; }

void detector_free(struct detector *d) { free(d); }
