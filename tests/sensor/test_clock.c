/* SPDX-License-Identifier: Apache-2.0 */
/* test_clock.c: the capture clock's tick rule (sensor/clock.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sensor/clock.h"

#define S(x) ((sw_usec)(x)*SW_USEC_PER_SEC)

static void test_ticks(void **st)
{
    (void)st;
    struct sw_clock c = {0};
    sw_usec t0 = S(1700000000);
    assert_false(sw_clock_step(&c, t0 + 100));    /* first packet sets the clock */
    assert_false(sw_clock_step(&c, t0 + 900000)); /* same second */
    assert_true(sw_clock_step(&c, t0 + S(1)));    /* crosses a second */
    assert_false(sw_clock_step(&c, t0 + S(1) + 5));
    assert_true(sw_clock_step(&c, t0 + S(50))); /* one tick for 49 s */
    assert_int_equal(c.ticks, 2);
    assert_int_equal(c.now, t0 + S(50));
}

static void test_backwards(void **st)
{
    (void)st;
    struct sw_clock c = {0};
    sw_usec t0 = S(1700000000);
    sw_clock_step(&c, t0);
    assert_false(sw_clock_step(&c, t0 - S(3600))); /* never expires on a backwards step */
    assert_int_equal(c.now, t0);
    assert_false(sw_clock_step(&c, t0 + 10));
    assert_true(sw_clock_step(&c, t0 + S(2)));
    assert_int_equal(c.backwards, 1);
}

static void test_jump(void **st)
{
    (void)st;
    struct sw_clock c = {0};
    sw_usec t0 = S(1420000000);
    sw_clock_step(&c, t0);
    /* a lone frame dated 2063: nothing moves, no tick */
    assert_false(sw_clock_step(&c, S(2950000000)));
    assert_int_equal(c.now, t0);
    assert_true(sw_clock_step(&c, t0 + S(1))); /* life goes on */
    /* exactly one day ahead is still a step */
    assert_true(sw_clock_step(&c, t0 + S(1) + S(86400)));
    /* a merged later capture: re-based after SW_CLOCK_REBASE_RUN packets, no tick */
    sw_usec era = t0 + S(86400 * 400);
    for (int i = 0; i < SW_CLOCK_REBASE_RUN - 1; i++) {
        assert_false(sw_clock_step(&c, era + i));
        assert_int_equal(c.now, t0 + S(1) + S(86400));
    }
    assert_false(sw_clock_step(&c, era + SW_CLOCK_REBASE_RUN - 1));
    assert_int_equal(c.now, era + SW_CLOCK_REBASE_RUN - 1);
    assert_int_equal(c.rebases, 1);
    assert_int_equal(c.discontinuities, 1 + SW_CLOCK_REBASE_RUN);
    assert_true(sw_clock_step(&c, era + S(1)));
    /* a run broken by an in-era packet starts over */
    struct sw_clock d = {0};
    sw_clock_step(&d, t0);
    for (int i = 0; i < SW_CLOCK_REBASE_RUN - 1; i++)
        sw_clock_step(&d, era);
    sw_clock_step(&d, t0 + 1);
    for (int i = 0; i < SW_CLOCK_REBASE_RUN - 1; i++)
        sw_clock_step(&d, era);
    assert_int_equal(d.rebases, 0);
    assert_int_equal(d.now, t0 + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ticks),
        cmocka_unit_test(test_backwards),
        cmocka_unit_test(test_jump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
