/* SPDX-License-Identifier: Apache-2.0 */
/* test_port.h: a free loopback port for a test's own server (test code). */
#ifndef SW_TEST_PORT_H
#define SW_TEST_PORT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* A loopback port of the socket type (SOCK_STREAM, SOCK_DGRAM) that was
 * free a moment ago (bound to port 0, then closed); -1 when none. */
static inline int test_pick_port(int type)
{
    int fd = socket(AF_INET, type, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
        getsockname(fd, (struct sockaddr *)&sa, &len)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(sa.sin_port);
}

#endif
