/* SPDX-License-Identifier: Apache-2.0 */
/* dns.h: asynchronous DNS for the policy engine (libunbound): TXT records
 * (strings of each record concatenated, RFC 8461 §3.1) and the A/AAAA
 * addresses of a host. Single-threaded: the owner calls pdns_process() when
 * pdns_fd() is readable; callbacks fire from inside it, exactly once per
 * query unless the query was cancelled. */
#ifndef SW_POLICY_DNS_H
#define SW_POLICY_DNS_H

#include <stdbool.h>
#include <stddef.h>

#define PDNS_MAX_ADDR 16

struct pdns_result {
    int err;            /* 0, or a resolver failure described by errstr */
    const char *errstr; /* NULL when err is 0 */
    int rcode;          /* DNS rcode (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN) */
    bool nxdomain;
    const char *canonname; /* after CNAMEs, or NULL */
    /* TXT queries: one entry per record, its strings concatenated; MX
     * queries: one entry per record, "PREFERENCE EXCHANGE" (no final dot). */
    size_t n_txt;
    char **txt;
    size_t *txt_len;
    /* address queries: A then AAAA, numeric strings. */
    size_t n_addr;
    char addr[PDNS_MAX_ADDR][46];
    int family[PDNS_MAX_ADDR]; /* AF_INET or AF_INET6 */
};

typedef void (*pdns_cb)(void *arg, const struct pdns_result *r);

struct pdns;
struct pdns_req;

/* server: "ADDR[@PORT]" of a recursive resolver to forward to, or NULL for
 * /etc/resolv.conf. NULL on failure with a message in err. */
struct pdns *pdns_new(const char *server, char *err, size_t errlen);
/* Drops what is in flight (no callbacks; request handles become invalid) and
 * stops libunbound's thread, waiting for it at most one second. */
void pdns_free(struct pdns *d);

/* Start a query; NULL on failure (err filled). The request handle stays valid
 * until its callback has returned or pdns_cancel() was called. */
struct pdns_req *pdns_query_txt(struct pdns *d, const char *name, pdns_cb cb, void *arg, char *err,
                                size_t errlen);
struct pdns_req *pdns_query_addr(struct pdns *d, const char *name, pdns_cb cb, void *arg, char *err,
                                 size_t errlen);
struct pdns_req *pdns_query_mx(struct pdns *d, const char *name, pdns_cb cb, void *arg, char *err,
                               size_t errlen);
void pdns_cancel(struct pdns *d, struct pdns_req *r);

int pdns_fd(const struct pdns *d);
/* Reads answers and fires callbacks; SW_OK or SW_EIO. */
int pdns_process(struct pdns *d);
size_t pdns_in_flight(const struct pdns *d);

/* Checks "ADDR[@PORT]"; false with a reason in why. */
bool pdns_server_valid(const char *server, char *why, size_t whylen);

#endif
