/* SPDX-License-Identifier: Apache-2.0 */
/* test_community_id.c: the Community ID v1 hash (alerts/community_id.c)
 * against the vectors the specification publishes (community-id-spec,
 * baseline/baseline_deflt.json and baseline_seed1.json, TCP entries, and
 * the example of its README that Zeek's tests use too), each in both
 * directions; and the refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "alerts/community_id.h"

static struct sw_addr addr(const char *s)
{
    struct sw_addr a;
    memset(&a, 0, sizeof a);
    if (inet_pton(AF_INET, s, a.b) == 1)
        a.family = 4;
    else if (inet_pton(AF_INET6, s, a.b) == 1)
        a.family = 6;
    else
        fail_msg("bad address %s", s);
    return a;
}

struct vector {
    const char *saddr, *daddr;
    uint16_t sport, dport, seed;
    const char *want;
};

static const struct vector vectors[] = {
    /* baseline_deflt.json (seed 0) */
    {"2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25, 0,
     "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="},
    {"128.232.110.120", "66.35.250.204", 34855, 80, 0, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
    /* the README's example */
    {"1.2.3.4", "5.6.7.8", 1122, 3344, 0, "1:wCb3OG7yAFWelaUydu0D+125CLM="},
    /* baseline_seed1.json (seed 1) */
    {"2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25, 1,
     "1:eJYTW6AOzFLlSUoESovMjnu7rMw="},
    {"128.232.110.120", "66.35.250.204", 34855, 80, 1, "1:3V71V58M3Ksw/yuFALMcW0LAHvc="},
};

static void test_published_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        const struct vector *v = &vectors[i];
        struct sw_addr s = addr(v->saddr), d = addr(v->daddr);
        char out[COMMUNITY_ID_LEN];
        assert_true(community_id_v1(&s, v->sport, &d, v->dport, COMMUNITY_ID_TCP, v->seed, out));
        assert_string_equal(out, v->want);
        /* the other direction: the same flow, the same id */
        assert_true(community_id_v1(&d, v->dport, &s, v->sport, COMMUNITY_ID_TCP, v->seed, out));
        assert_string_equal(out, v->want);
    }
}

/* The id of the flow asked for last is kept (a record, then its alerts):
 * alternating flows that differ in one input only (the seed, a port) each
 * get their own id, asked again or not. */
static void test_alternating_flows(void **state)
{
    (void)state;
    const size_t nv = sizeof vectors / sizeof vectors[0];
    for (size_t round = 0; round < 2 * nv; round++) {
        const struct vector *v = &vectors[round % nv], *u = &vectors[(round * 3 + 3) % nv];
        struct sw_addr s = addr(v->saddr), d = addr(v->daddr), us = addr(u->saddr),
                       ud = addr(u->daddr);
        char out[COMMUNITY_ID_LEN];
        assert_true(community_id_v1(&s, v->sport, &d, v->dport, COMMUNITY_ID_TCP, v->seed, out));
        assert_string_equal(out, v->want);
        assert_true(community_id_v1(&us, u->sport, &ud, u->dport, COMMUNITY_ID_TCP, u->seed, out));
        assert_string_equal(out, u->want);
        assert_true(
            community_id_v1(&s, v->sport + 1, &d, v->dport, COMMUNITY_ID_TCP, v->seed, out));
        assert_string_not_equal(out, v->want);
    }
}

/* Same address on both sides: the ports decide the order. */
static void test_same_address_orders_by_port(void **state)
{
    (void)state;
    struct sw_addr a = addr("127.0.0.1");
    char x[COMMUNITY_ID_LEN], y[COMMUNITY_ID_LEN];
    assert_true(community_id_v1(&a, 25, &a, 40000, COMMUNITY_ID_TCP, 0, x));
    assert_true(community_id_v1(&a, 40000, &a, 25, COMMUNITY_ID_TCP, 0, y));
    assert_string_equal(x, y);
    assert_int_equal(strlen(x), COMMUNITY_ID_LEN - 1);
    assert_true(community_id_v1(&a, 25, &a, 40001, COMMUNITY_ID_TCP, 0, y));
    assert_string_not_equal(x, y);
}

static void test_mixed_families_refused(void **state)
{
    (void)state;
    struct sw_addr a = addr("192.0.2.1"), b = addr("2001:db8::1"), none;
    memset(&none, 0, sizeof none);
    char out[COMMUNITY_ID_LEN] = "x";
    assert_false(community_id_v1(&a, 1, &b, 2, COMMUNITY_ID_TCP, 0, out));
    assert_string_equal(out, "");
    assert_false(community_id_v1(&none, 1, &none, 2, COMMUNITY_ID_TCP, 0, out));
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published_vectors),
        cmocka_unit_test(test_alternating_flows),
        cmocka_unit_test(test_same_address_orders_by_port),
        cmocka_unit_test(test_mixed_families_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
