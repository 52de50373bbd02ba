/* SPDX-License-Identifier: Apache-2.0 */
/* policy_json.c: the mta_sts object of an alert (policy_answer_to_json).
 * RFC 8461 fields; times in RFC 3339. */
#include <jansson.h>

#include "policy/policy.h"
#include "policy/snapshot.h"

static json_t *rfc3339(int64_t t)
{
    char buf[32];
    snapshot_time_format(t, buf);
    return json_string(buf);
}

json_t *policy_answer_to_json(const char *domain, const struct policy_answer *a)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    const struct policy_entry *pe =
        a && (a->status == POLICY_ST_VALID || a->status == POLICY_ST_EXPIRED) ? a->entry : NULL;
    json_object_set_new(o, "domain", domain ? json_string(domain) : json_null());
    if (pe) {
        json_t *mx = json_array();
        for (size_t i = 0; i < pe->policy.n_mx; i++)
            json_array_append_new(mx, json_string(pe->policy.mx[i]));
        json_object_set_new(o, "id", json_string(pe->id));
        json_object_set_new(o, "mode", json_string(mtasts_mode_str(pe->policy.mode)));
        json_object_set_new(o, "mx", mx);
        json_object_set_new(o, "max_age", json_integer(pe->policy.max_age));
        json_object_set_new(o, "fetched_at", rfc3339(pe->fetched_at));
        json_object_set_new(o, "source", json_string(policy_source_str(pe->source)));
    } else {
        json_object_set_new(o, "id", json_null());
        json_object_set_new(o, "mode", json_null());
        json_object_set_new(o, "mx", json_null());
        json_object_set_new(o, "max_age", json_null());
        json_object_set_new(o, "fetched_at", json_null());
        json_object_set_new(o, "source", json_null());
    }
    json_object_set_new(o, "status",
                        json_string(policy_status_str(a ? a->status : POLICY_ST_UNKNOWN)));
    return o;
}
