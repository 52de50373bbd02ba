/* SPDX-License-Identifier: Apache-2.0 */
/* config.h: the configuration file (sensor/config.c), read with libinih.
 *
 * Lines `key = value` whose keys are the long option names (`interface`
 * and `read` for -i and -r); flags take yes|no|true|false|on|off|1|0;
 * `allow-server`, `allow-client`, `allow-domain` and `read` may repeat, any
 * other key given twice is an error. Rule sections `[rule.id]` (see
 * alerts/RULES.md) take `enabled`, `severity` (low|medium|high) and
 * `rate-limit` (alerts per minute per server, 0: none). Comments: a line
 * whose first non-blank character is `;` or `#`, and, after a value, a `;`
 * preceded by a blank (`key = value ; comment`); a `#` after a value is part
 * of the value. Leading blanks are ignored (there are no continuation
 * lines). A line holds at most 197 bytes (libinih's line buffer). */
#ifndef SW_CONFIG_H
#define SW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "sensor/sensor.h"

/* Applies the file at path to o (as the config file: the command line,
 * applied afterwards, wins). True, or false with one line in err naming the
 * file and, for what is wrong inside it, the line: `PATH:12: unknown key
 * "polciy-file"`; for the file as a whole `PATH: No such file or directory`. The first error
 * counts; o is then half-filled and must only be freed. */
bool config_load(const char *path, struct sensor_opts *o, char *err, size_t errlen);

#endif
