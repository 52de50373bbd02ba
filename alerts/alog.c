/* SPDX-License-Identifier: Apache-2.0 */
/* alog.c: the alerts module's log hook (contract in alog.h). No RFC. */
#include "alerts/alog.h"

#include <stdarg.h>
#include <stdio.h>

static alerts_log_fn g_log;

void alerts_set_log(alerts_log_fn fn)
{
    g_log = fn;
}

void alerts_log(int prio, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (g_log)
        g_log(prio, line);
    else
        fprintf(stderr, "stripwatch: %s\n", line);
}
