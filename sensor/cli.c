/* SPDX-License-Identifier: Apache-2.0 */
/* cli.c: command line of stripwatch (placeholder). */
#include <stdio.h>

#include "sensor/sensor.h"

int sensor_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "stripwatch: not implemented yet\n");
    return 1;
}
