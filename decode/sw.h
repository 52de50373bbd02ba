/* SPDX-License-Identifier: Apache-2.0 */
/* sw.h: the few things every module shares: the error enum and time units.
 * Header only; no module state lives here. */
#ifndef SW_H
#define SW_H

#include <stdint.h>

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

/* Timestamps everywhere are microseconds since the Unix epoch (capture time
 * for offline runs, so that offline analysis is deterministic). */
typedef int64_t sw_usec;
#define SW_USEC_PER_SEC 1000000LL

#endif
