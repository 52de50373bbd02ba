/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_mtasts.c: libFuzzer target for the MTA-STS policy parser (RFC 8461
 * §3.2) and TXT parser (§3.1). The first byte picks the parser; invariants
 * of accepted input are checked, so a wrong accept is a crash too. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode/sw.h"
#include "policy/mtasts.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

static void fuzz_policy(const char *t, size_t n)
{
    struct mtasts_policy p, c;
    struct mtasts_error e;
    char buf[300];
    int rc = mtasts_policy_parse(t, n, &p, &e);

    check(strlen(mtasts_error_format(&e, buf, sizeof buf)) < sizeof buf);
    if (rc != SW_OK) {
        check(rc == SW_EPROTO || rc == SW_ELIMIT || rc == SW_ENOMEM);
        check(p.n_mx == 0 && e.reason[0] != '\0' && e.line >= 0);
        return;
    }
    check(n <= MTASTS_MAX_BODY && p.max_age <= MTASTS_MAX_AGE_MAX);
    check(p.n_mx <= MTASTS_MX_MAX);
    check(p.mode == MTASTS_MODE_NONE || p.n_mx > 0);
    for (size_t i = 0; i < p.n_mx; i++) {
        const char *mx = p.mx[i];
        char host[300];
        /* An accepted pattern matches a host of its own shape. */
        if (mx[0] == '*') {
            check(mx[1] == '.' && strchr(mx + 2, '*') == NULL);
            snprintf(host, sizeof host, "a%s", mx + 1);
        } else {
            snprintf(host, sizeof host, "%s", mx);
        }
        if (!mtasts_is_ip_literal(host))
            check(mtasts_mx_match(&p, host));
    }
    check(mtasts_policy_copy(&c, &p) == SW_OK);
    check(c.n_mx == p.n_mx && c.mode == p.mode && c.max_age == p.max_age);
    mtasts_policy_clear(&c);
    mtasts_policy_clear(&p);
}

static void fuzz_txt(const char *t, size_t n)
{
    char id[33];
    struct mtasts_error e;
    int rc = mtasts_txt_parse(t, n, id, &e);

    if (rc == SW_OK)
        check(mtasts_id_is_valid(id, strlen(id)) && n >= 7 && memcmp(t, "v=STSv1", 7) == 0);
    else if (rc == SW_EPROTO)
        check(e.reason[0] != '\0');
    else
        check(rc == SW_AGAIN);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* Copy so that reads past the end are caught by ASan. */
    char *t = malloc(size - 1 ? size - 1 : 1);
    if (!t)
        return 0;
    memcpy(t, data + 1, size - 1);
    if (data[0] & 1)
        fuzz_txt(t, size - 1);
    else
        fuzz_policy(t, size - 1);
    /* The pattern matcher on two halves of the input. */
    if (size > 2 && size < 600) {
        char a[600], b[600];
        size_t half = (size - 1) / 2;
        memcpy(a, t, half);
        a[half] = '\0';
        memcpy(b, t + half, size - 1 - half);
        b[size - 1 - half] = '\0';
        (void)mtasts_mx_pattern_match(a, b);
    }
    free(t);
    return 0;
}
