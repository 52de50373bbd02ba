/* SPDX-License-Identifier: Apache-2.0 */
/* test_tlsrpt_record.c: the TLS-RPT TXT record check of `stripwatch policy`
 * (tlsrpt_record_check), RFC 8460 §3. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/policy_check.h"

static const char *check_of(const char *rec, size_t *n_rua)
{
    static char why[256];
    if (tlsrpt_record_check(rec, strlen(rec), n_rua, why, sizeof(why)))
        return "ok";
    return why;
}

static void test_records(void **state)
{
    (void)state;
    size_t n;
    assert_string_equal(check_of("v=TLSRPTv1; rua=mailto:r@example.org", &n), "ok");
    assert_int_equal(n, 1);
    assert_string_equal(
        check_of("v=TLSRPTv1 ; rua=mailto:r@example.org, https://r.example.org/x ;", &n), "ok");
    assert_int_equal(n, 2);
    assert_string_equal(check_of("v=TLSRPTv1; ext=1; rua=https://r.example.org/", &n), "ok");
    assert_string_equal(check_of("v=TLSRPTv1;", &n), "no rua field");
    assert_string_equal(check_of("rua=mailto:r@example.org; v=TLSRPTv1", &n),
                        "does not start with v=TLSRPTv1");
    assert_string_equal(check_of("v=TLSRPTv1; rua=http://r.example.org/", &n),
                        "rua \"http://r.example.org/\" is not a mailto: or https:// URI");
    assert_string_equal(check_of("v=TLSRPTv1; rua=mailto:a@b; rua=mailto:c@d", &n),
                        "rua given twice");
    assert_string_equal(check_of("v=TLSRPTv1; rua", &n), "field \"rua\" is not NAME=VALUE");
    assert_string_equal(check_of("v=TLSRPTv1 rua=mailto:a@b", &n),
                        "fields are not separated by \";\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_records)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
