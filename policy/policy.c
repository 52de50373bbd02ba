/* SPDX-License-Identifier: Apache-2.0 */
/* policy.c: the MTA-STS policy engine (stub: answers UNKNOWN until the engine lands).
 * RFC 8461. */
#include "policy/policy.h"

#include <stdlib.h>
#include <string.h>

struct policy_engine {
    struct policy_cfg cfg;
    struct policy_stats stats;
};

const char *policy_source_str(enum policy_source s)
{
    switch (s) {
    case POLICY_SRC_NONE:
        return "none";
    case POLICY_SRC_HTTPS:
        return "https";
    case POLICY_SRC_REDIS:
        return "redis";
    case POLICY_SRC_FILE:
        return "file";
    case POLICY_SRC_CACHE:
        return "cache";
    }
    return "none";
}

const char *policy_status_str(enum policy_status s)
{
    switch (s) {
    case POLICY_ST_VALID:
        return "valid";
    case POLICY_ST_NONE:
        return "none";
    case POLICY_ST_PENDING:
        return "pending";
    case POLICY_ST_UNKNOWN:
        return "unknown";
    }
    return "unknown";
}

void policy_cfg_defaults(struct policy_cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->fetch = true;
    c->cache_max = 100000;
    c->max_concurrent = 32;
    c->max_per_second = 20;
    c->negative_ttl = 300;
    c->retry_after_failure = 300;
    c->connect_timeout_ms = 5000;
    c->total_timeout_ms = 15000;
    c->https_port = 443;
}

struct policy_engine *policy_engine_new(const struct policy_cfg *cfg, char *err, size_t errlen)
{
    struct policy_engine *e = calloc(1, sizeof(*e));
    if (!e) {
        if (errlen)
            strncpy(err, "policy: out of memory", errlen - 1), err[errlen - 1] = 0;
        return NULL;
    }
    e->cfg = *cfg;
    return e;
}

void policy_engine_free(struct policy_engine *e)
{
    free(e);
}

int policy_lookup(struct policy_engine *e, const char *domain, policy_cb cb, void *arg,
                  struct policy_answer *a)
{
    (void)domain, (void)cb, (void)arg;
    e->stats.lookups++;
    a->status = POLICY_ST_UNKNOWN;
    a->entry = NULL;
    a->detail = "offline: no policy in file or cache";
    return SW_OK;
}

int policy_engine_run(struct policy_engine *e, int timeout_ms)
{
    (void)e, (void)timeout_ms;
    return 0;
}

int policy_engine_save(struct policy_engine *e, const char *path, char *err, size_t errlen)
{
    (void)e, (void)path, (void)err, (void)errlen;
    return SW_OK;
}

const struct policy_stats *policy_engine_stats(const struct policy_engine *e)
{
    return &e->stats;
}
