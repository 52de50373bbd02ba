/* SPDX-License-Identifier: Apache-2.0 */
/* test_port.h: a free loopback port for a test's own server (test code). */
#ifndef SW_TEST_PORT_H
#define SW_TEST_PORT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Whether a loopback port of the socket type can be bound now. */
static inline int test_port_free(int type, int port)
{
    int fd = socket(AF_INET, type, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((unsigned short)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* A loopback port that was free for TCP and for UDP a moment ago (a DNS
 * server binds both), not one this process picked before, and below the
 * kernel's default ephemeral range (32768-60999): a port the kernel hands
 * out can be taken by any test's outgoing connection before the server
 * binds it, as nsd once found. -1 when none. */
static inline int test_pick_port(void)
{
    static int picked[32], npicked;
    static unsigned seed;
    if (!seed)
        seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
    for (int tries = 0; tries < 500; tries++) {
        int port = 20000 + (int)(rand_r(&seed) % 12000), again = 0;
        for (int i = 0; i < npicked; i++)
            again |= picked[i] == port;
        if (again || !test_port_free(SOCK_STREAM, port) || !test_port_free(SOCK_DGRAM, port))
            continue;
        if (npicked < (int)(sizeof(picked) / sizeof(picked[0])))
            picked[npicked++] = port;
        return port;
    }
    return -1;
}

#endif
