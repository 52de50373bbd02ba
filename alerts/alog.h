/* SPDX-License-Identifier: Apache-2.0 */
/* alog.h: where the alerts module's warnings go (alerts/alog.c): one line
 * each, without the "stripwatch: " prefix, with a syslog(3) priority. The
 * process sets a hook once at start (the sensor's log: stderr or syslog);
 * without one, lines go to stderr as "stripwatch: LINE". Callable from any
 * thread (the Redis sink's included); the hook must be thread-safe. */
#ifndef SW_ALOG_H
#define SW_ALOG_H

#include <syslog.h>

typedef void (*alerts_log_fn)(int prio, const char *line);
/* Sets the hook (NULL: stderr); call before the detector and sinks start. */
void alerts_set_log(alerts_log_fn fn);
/* One line at priority prio (LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO). */
void alerts_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
