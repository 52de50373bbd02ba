/* SPDX-License-Identifier: Apache-2.0 */
/* summary.h: the human summary of a run (sensor/summary.c), printed through
 * the sensor's log before the statistics at the end of an offline run and on
 * SIGUSR1. It keeps counts of the alerts by rule and severity and the first
 * SUMMARY_LIST of them, fed by the detector's emit hook (alert JSON lines,
 * any one thread at a time; a mutex guards against the printing thread). */
#ifndef SW_SENSOR_SUMMARY_H
#define SW_SENSOR_SUMMARY_H

#include <stddef.h>
#include <stdint.h>

#define SUMMARY_LIST  10 /* alerts listed one per line */
#define SUMMARY_RULES 16 /* distinct rule ids counted */

/* What the sensor counted itself. */
struct summary_counts {
    uint64_t packets, sessions, sessions_tls, suppressed;
};

struct summary;
struct summary *summary_new(void); /* NULL when out of memory */
void summary_free(struct summary *s);
/* The detector's emit hook (arg is the summary): one alert JSON line with
 * its rule.id and event.severity; the line is parsed only for the alerts
 * listed (the first SUMMARY_LIST). */
void summary_alert(void *arg, const char *json, size_t len, const char *rule, int severity);
/* Formats the summary into buf (lines end with '\n'; the first starts with
 * "stripwatch: summary: "); returns the length it needed (as snprintf). */
size_t summary_format(struct summary *s, const struct summary_counts *c, char *buf, size_t len);
/* summary_format through sw_log (LOG_INFO), one line at a time. */
void summary_print(struct summary *s, const struct summary_counts *c);

#endif
