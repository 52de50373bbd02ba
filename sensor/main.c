/* SPDX-License-Identifier: Apache-2.0 */
/* main.c: the stripwatch executable (placeholder while the sensor lands). */
#include "sensor/sensor.h"

int main(int argc, char **argv)
{
    return sensor_main(argc, argv);
}
