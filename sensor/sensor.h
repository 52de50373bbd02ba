/* SPDX-License-Identifier: Apache-2.0 */
/* sensor.h: the process: CLI, capture, workers, output stage, statistics. */
#ifndef SW_SENSOR_H
#define SW_SENSOR_H

int sensor_main(int argc, char **argv);

#endif
