/* SPDX-License-Identifier: Apache-2.0 */
/* sw.h: the few things every module shares: the error enum and time units.
 * Header only; no module state lives here. */
#ifndef SW_H
#define SW_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* One small error enum for the whole project. SW_AGAIN is not an error: it
 * means "need more input / try later". sw_strerror() never returns NULL. */
enum sw_err {
    SW_OK = 0,
    SW_AGAIN = 1,
    SW_ENOMEM = -1, /* allocation or memcap refused */
    SW_EPROTO = -2, /* input violates its protocol or format */
    SW_ELIMIT = -3, /* a configured bound was reached; counted by the caller */
    SW_EIO = -4,    /* file, socket or library I/O failed */
};

static inline const char *sw_strerror(int e)
{
    switch (e) {
    case SW_OK:
        return "ok";
    case SW_AGAIN:
        return "again";
    case SW_ENOMEM:
        return "out of memory";
    case SW_EPROTO:
        return "protocol error";
    case SW_ELIMIT:
        return "limit reached";
    case SW_EIO:
        return "i/o error";
    }
    return "unknown error";
}

/* Formats an error message into err (always terminated, truncated to
 * errlen); a NULL err or errlen 0 is allowed and writes nothing. */
__attribute__((format(printf, 3, 4))) static inline void sw_set_err(char *err, size_t errlen,
                                                                    const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Timestamps everywhere are microseconds since the Unix epoch (capture time
 * for offline runs, so that offline analysis is deterministic). */
typedef int64_t sw_usec;
#define SW_USEC_PER_SEC 1000000LL

#endif
