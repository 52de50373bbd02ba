/* SPDX-License-Identifier: Apache-2.0 */
/* fetch.h: the HTTPS fetch of an MTA-STS policy (RFC 8461 §3.3) over libcurl
 * multi: https://mta-sts.<domain>/.well-known/mta-sts.txt on an address the
 * caller resolved and checked (pinned, no DNS by curl), TLS >= 1.2 with the
 * certificate verified for mta-sts.<domain>, no redirects, only 200,
 * text/plain, body capped at MTASTS_MAX_BODY, timeouts, no proxy, no cache.
 * Single-threaded; callbacks fire from pfetch_perform(). */
#ifndef SW_POLICY_FETCH_H
#define SW_POLICY_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pfetch_outcome {
    PFETCH_OK = 0,
    PFETCH_HTTP_ERROR, /* status other than 200 and 3xx */
    PFETCH_REDIRECT,   /* 3xx: refused */
    PFETCH_BAD_TYPE,   /* Content-Type not text/plain (charset utf-8/us-ascii) */
    PFETCH_TOO_BIG,    /* body over MTASTS_MAX_BODY: transfer aborted */
    PFETCH_TLS_ERROR,  /* handshake or certificate verification failed */
    PFETCH_TIMEOUT,    /* connect, total or low-speed timeout */
    PFETCH_CONNECT,    /* connection refused or unreachable */
    PFETCH_ERROR,      /* anything else */
};
const char *pfetch_outcome_str(enum pfetch_outcome o);

struct pfetch_result {
    enum pfetch_outcome outcome;
    char detail[320];     /* e.g. "HTTP 404", "redirect refused (HTTP 301)" */
    char curl_error[256]; /* libcurl's own message, "" when none */
    char url[320];
    char pinned[64];      /* "ADDR:PORT" ("[v6]:PORT") the transfer was pinned to */
    char tls_version[16]; /* "TLSv1.3", "" when the handshake did not finish */
    long http_code;       /* 0 when no response */
    char content_type[128];
    size_t bytes;     /* body bytes received (up to the cap + 1 chunk) */
    const char *body; /* valid during the callback; NUL-terminated */
    size_t body_len;
};

typedef void (*pfetch_cb)(void *arg, const struct pfetch_result *r);

struct pfetch_opts {
    const char *ca_file; /* NULL: system store */
    uint16_t port;       /* 443 */
    long connect_timeout_ms;
    long total_timeout_ms;
    long low_speed_bytes; /* abort below this many bytes/s ... */
    long low_speed_secs;  /* ... for this long (0: off) */
};

struct pfetch;
struct pfetch_req;

struct pfetch *pfetch_new(char *err, size_t errlen);
void pfetch_free(struct pfetch *f); /* aborts transfers, no callbacks */

/* Fetch the policy of domain from addr (numeric, AF_INET or AF_INET6). */
struct pfetch_req *pfetch_start(struct pfetch *f, const char *domain, const char *addr, int family,
                                const struct pfetch_opts *o, pfetch_cb cb, void *arg, char *err,
                                size_t errlen);
void pfetch_cancel(struct pfetch *f, struct pfetch_req *r);

/* Waits up to timeout_ms for transfer activity or for one of extra_fds
 * (readable); then pfetch_perform() advances and fires callbacks. */
int pfetch_wait(struct pfetch *f, const int *extra_fds, unsigned n_extra, int timeout_ms);
int pfetch_perform(struct pfetch *f);
size_t pfetch_in_flight(const struct pfetch *f);

/* §3.3: media type text/plain, optional charset utf-8 or us-ascii. */
bool pfetch_content_type_ok(const char *ct);

/* §7 and SSRF: true when addr (numeric) is loopback, RFC 1918, CGNAT
 * 100.64/10, link-local, ULA fc00::/7, multicast, unspecified, or another
 * non-public range (IPv4-mapped IPv6 judged as IPv4); why names the range. */
bool pfetch_addr_is_private(const char *addr, const char **why);

#endif
