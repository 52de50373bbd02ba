/* SPDX-License-Identifier: Apache-2.0 */
/* mta_sts_json.h: the alert's mta_sts object of a policy answer, as text
 * (test code shared by the policy tests). */
#ifndef SW_TEST_MTA_STS_JSON_H
#define SW_TEST_MTA_STS_JSON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/jsonw.h"
#include "alerts/rules.h"

/* The alert's mta_sts object for answer a (rules.h rule_policy_write), as
 * compact JSON; free() it. */
static inline char *mta_sts_json(const char *domain, const struct policy_answer *a)
{
    struct rule_policy p;
    memset(&p, 0, sizeof p);
    snprintf(p.domain, sizeof p.domain, "%s", domain);
    rule_policy_set(&p, a);
    struct jsonw w;
    jsonw_init(&w);
    rule_policy_write(&w, NULL, &p);
    char *s = strdup(w.buf);
    jsonw_free(&w);
    rule_policy_clear(&p);
    return s;
}

#endif
