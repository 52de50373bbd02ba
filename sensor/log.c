/* SPDX-License-Identifier: Apache-2.0 */
/* log.c: the sensor's log lines to stderr or syslog (contract in log.h).
 * Follows syslog(3) (RFC 5424 priorities via the local syslog daemon). */
#include "sensor/log.h"

#include <stdarg.h>
#include <stdio.h>

#include "alerts/alog.h"
#include "policy/policy.h"

static bool g_syslog;

static void emit(int prio, const char *line, bool prefix)
{
    if (g_syslog) {
        syslog(prio, "%s", line);
        return;
    }
    /* one write per line: lines of several threads do not interleave */
    flockfile(stderr);
    fprintf(stderr, "%s%s\n", prefix ? "stripwatch: " : "", line);
    fflush(stderr);
    funlockfile(stderr);
}

static void hook(int prio, const char *line)
{
    emit(prio, line, true);
}

void sw_log_open(bool use_syslog)
{
    g_syslog = use_syslog;
    if (use_syslog)
        openlog("stripwatch", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    policy_set_log(hook);
    alerts_set_log(hook);
}

void sw_log_close(void)
{
    if (g_syslog)
        closelog();
    g_syslog = false;
}

bool sw_log_to_syslog(void)
{
    return g_syslog;
}

void sw_log(int prio, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    emit(prio, line, true);
}

void sw_log_text(int prio, const char *line)
{
    emit(prio, line, false);
}
