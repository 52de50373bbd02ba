/* SPDX-License-Identifier: Apache-2.0 */
/* log.h: the sensor's log (sensor/log.c): errors, warnings, statistics and
 * the end-of-run summary. By default each line goes to stderr as
 * "stripwatch: LINE" (journald takes it under systemd); after
 * sw_log_open(true) (--syslog) it goes to syslog(3) instead, ident
 * "stripwatch", facility LOG_DAEMON, with the pid. policy/ and alerts/ print
 * through the same log: sw_log_open() installs their hooks. Thread-safe. */
#ifndef SW_SENSOR_LOG_H
#define SW_SENSOR_LOG_H

#include <stdbool.h>
#include <syslog.h>

/* Chooses the destination and installs the policy and alerts hooks. */
void sw_log_open(bool use_syslog);
/* Back to stderr (closelog when syslog was open). */
void sw_log_close(void);
bool sw_log_to_syslog(void);
/* One line at a syslog(3) priority: LOG_ERR (runtime errors), LOG_WARNING
 * (input or policy problems the sensor works around), LOG_NOTICE (state
 * changes), LOG_INFO (statistics, summary). */
void sw_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same without the "stripwatch: " prefix on stderr (the summary's
 * indented lines); syslog gets the line as it is. */
void sw_log_text(int prio, const char *line);

#endif
