/* SPDX-License-Identifier: Apache-2.0 */
/* addr.c: text form of IPv4/IPv6 addresses (RFC 5952 for IPv6, via inet_ntop;
 * IPv4 dotted-quad written directly, as inet_ntop writes it). */
#include <arpa/inet.h>
#include <stdio.h>
#include <sys/socket.h>

#include "decode/pkt.h"

/* The dotted-quad of b into buf (at least 16 bytes): what inet_ntop(AF_INET)
 * writes, without its sprintf. Returns the length. */
static size_t ip4_str(const uint8_t b[4], char *buf)
{
    char *o = buf;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100)
            *o++ = (char)('0' + v / 100);
        if (v >= 10)
            *o++ = (char)('0' + v / 10 % 10);
        *o++ = (char)('0' + v % 10);
        *o++ = '.';
    }
    o[-1] = '\0';
    return (size_t)(o - 1 - buf);
}

const char *sw_addr_str(const struct sw_addr *a, char *buf, size_t len)
{
    if (!buf || len == 0)
        return "";
    buf[0] = '\0';
    if (!a)
        return buf;
    if (a->family == 4 && len >= 16) {
        ip4_str(a->b, buf);
    } else if (a->family == 4) {
        if (!inet_ntop(AF_INET, a->b, buf, (socklen_t)len))
            buf[0] = '\0';
    } else if (a->family == 6) {
        if (!inet_ntop(AF_INET6, a->b, buf, (socklen_t)len))
            buf[0] = '\0';
    } else {
        snprintf(buf, len, "?");
    }
    return buf;
}
