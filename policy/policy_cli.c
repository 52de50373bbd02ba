/* SPDX-License-Identifier: Apache-2.0 */
/* policy_cli.c: `stripwatch policy DOMAIN`, the operator's MTA-STS check (stub).
 * RFC 8461. */
#include <stdio.h>

#include "policy/policy.h"

int policy_cli_main(int argc, char **argv)
{
    (void)argc, (void)argv;
    fprintf(stderr, "stripwatch policy: not implemented yet\n");
    return 1;
}
