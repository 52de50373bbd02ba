/* SPDX-License-Identifier: Apache-2.0 */
/* addr.c: text form of IPv4/IPv6 addresses (RFC 5952 for IPv6, via inet_ntop). */
#include <arpa/inet.h>
#include <stdio.h>
#include <sys/socket.h>

#include "decode/pkt.h"

const char *sw_addr_str(const struct sw_addr *a, char *buf, size_t len)
{
    if (!buf || len == 0)
        return "";
    buf[0] = '\0';
    if (!a)
        return buf;
    if (a->family == 4) {
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
