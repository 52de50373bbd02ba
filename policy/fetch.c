/* SPDX-License-Identifier: Apache-2.0 */
/* fetch.c: HTTPS fetch of MTA-STS policies with libcurl multi and OpenSSL.
 * RFC 8461 §3.3 (fetch rules), §7 (security), RFC 6125 (name checks, by curl),
 * RFC 1918, RFC 6598, RFC 4193, RFC 3927 (address ranges refused). */
#include "policy/fetch.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "decode/sw.h"
#include "policy/mtasts.h"

struct pfetch_req {
    struct pfetch *f;
    CURL *easy;
    struct curl_slist *resolve, *headers;
    pfetch_cb cb;
    void *arg;
    char *body;
    size_t body_len;
    bool too_big;
    struct pfetch_result res;
    char errbuf[CURL_ERROR_SIZE];
    struct pfetch_req *prev, *next;
};

struct pfetch {
    CURLM *multi;
    struct pfetch_req *reqs;
    size_t n_reqs;
};

const char *pfetch_outcome_str(enum pfetch_outcome o)
{
    switch (o) {
    case PFETCH_OK:
        return "ok";
    case PFETCH_HTTP_ERROR:
        return "http_error";
    case PFETCH_REDIRECT:
        return "redirect";
    case PFETCH_BAD_TYPE:
        return "bad_content_type";
    case PFETCH_TOO_BIG:
        return "too_big";
    case PFETCH_TLS_ERROR:
        return "tls_error";
    case PFETCH_TIMEOUT:
        return "timeout";
    case PFETCH_CONNECT:
        return "connect_error";
    case PFETCH_ERROR:
        return "error";
    }
    return "error";
}

static bool v4_private(const unsigned char *a, const char **why)
{
    static const struct {
        unsigned char net[4];
        int bits;
        const char *name;
    } r[] = {
        {{0, 0, 0, 0}, 8, "unspecified (0/8)"},
        {{10, 0, 0, 0}, 8, "private (RFC 1918)"},
        {{100, 64, 0, 0}, 10, "CGNAT (100.64/10)"},
        {{127, 0, 0, 0}, 8, "loopback"},
        {{169, 254, 0, 0}, 16, "link-local"},
        {{172, 16, 0, 0}, 12, "private (RFC 1918)"},
        {{192, 0, 0, 0}, 24, "IETF protocol assignments (192.0.0/24)"},
        {{192, 168, 0, 0}, 16, "private (RFC 1918)"},
        {{198, 18, 0, 0}, 15, "benchmarking (198.18/15)"},
        {{224, 0, 0, 0}, 4, "multicast"},
        {{240, 0, 0, 0}, 4, "reserved (240/4)"},
    };
    uint32_t v = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        uint32_t n = (uint32_t)r[i].net[0] << 24 | (uint32_t)r[i].net[1] << 16 |
                     (uint32_t)r[i].net[2] << 8 | r[i].net[3];
        uint32_t mask = 0xffffffffu << (32 - r[i].bits);
        if ((v & mask) == n) {
            *why = r[i].name;
            return true;
        }
    }
    return false;
}

bool pfetch_addr_is_private(const char *addr, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    unsigned char a[16];
    if (inet_pton(AF_INET, addr, a) == 1)
        return v4_private(a, why);
    if (inet_pton(AF_INET6, addr, a) != 1) {
        *why = "not an IP address";
        return true;
    }
    static const unsigned char zero[16];
    if (!memcmp(a, zero, 16)) {
        *why = "unspecified (::)";
        return true;
    }
    if (!memcmp(a, zero, 15) && a[15] == 1) {
        *why = "loopback";
        return true;
    }
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!memcmp(a, mapped, 12))
        return v4_private(a + 12, why);
    if ((a[0] & 0xfe) == 0xfc) {
        *why = "unique local (fc00::/7)";
        return true;
    }
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) {
        *why = "link-local";
        return true;
    }
    if (a[0] == 0xff) {
        *why = "multicast";
        return true;
    }
    if (!memcmp(a, zero, 12)) { /* IPv4-compatible, deprecated */
        *why = "IPv4-compatible (::/96)";
        return true;
    }
    return false;
}

/* text/plain, optionally ;charset=utf-8|us-ascii (quoted or not), any case. */
bool pfetch_content_type_ok(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, "text/plain", 10))
        return false;
    const char *p = ct + 10;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p)
        return true;
    if (*p++ != ';')
        return false;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncasecmp(p, "charset=", 8))
        return false;
    p += 8;
    char v[32];
    size_t n = 0;
    bool quoted = *p == '"';
    if (quoted)
        p++;
    while (*p && *p != '"' && *p != ' ' && *p != '\t' && *p != ';' && n < sizeof(v) - 1)
        v[n++] = *p++;
    v[n] = 0;
    if (quoted && *p++ != '"')
        return false;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p)
        return false;
    return !strcasecmp(v, "utf-8") || !strcasecmp(v, "us-ascii");
}

struct pfetch *pfetch_new(char *err, size_t errlen)
{
    static bool inited;
    if (!inited) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
            sw_set_err(err, errlen, "fetch: curl_global_init failed");
            return NULL;
        }
        inited = true;
    }
    struct pfetch *f = calloc(1, sizeof(*f));
    if (!f || !(f->multi = curl_multi_init())) {
        free(f);
        sw_set_err(err, errlen, "fetch: cannot create a libcurl multi handle");
        return NULL;
    }
    return f;
}

static void req_unlink(struct pfetch *f, struct pfetch_req *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        f->reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    f->n_reqs--;
}

static void req_free(struct pfetch *f, struct pfetch_req *q)
{
    if (q->easy) {
        curl_multi_remove_handle(f->multi, q->easy);
        curl_easy_cleanup(q->easy);
    }
    curl_slist_free_all(q->resolve);
    curl_slist_free_all(q->headers);
    free(q->body);
    free(q);
}

void pfetch_cancel(struct pfetch *f, struct pfetch_req *q)
{
    if (!q)
        return;
    req_unlink(f, q);
    req_free(f, q);
}

void pfetch_free(struct pfetch *f)
{
    if (!f)
        return;
    while (f->reqs)
        pfetch_cancel(f, f->reqs);
    curl_multi_cleanup(f->multi);
    free(f);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct pfetch_req *q = ud;
    size_t n = size * nmemb;
    q->res.bytes += n;
    if (q->body_len + n > MTASTS_MAX_BODY) {
        q->too_big = true;
        return 0; /* abort the transfer */
    }
    char *b = realloc(q->body, q->body_len + n + 1);
    if (!b)
        return 0;
    q->body = b;
    memcpy(b + q->body_len, ptr, n);
    q->body_len += n;
    b[q->body_len] = 0;
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct pfetch_req *q = ud;
    size_t n = size * nmemb;
    if (!q->res.tls_version[0]) {
        struct curl_tlssessioninfo *ti = NULL;
        if (curl_easy_getinfo(q->easy, CURLINFO_TLS_SSL_PTR, &ti) == CURLE_OK && ti &&
            ti->backend == CURLSSLBACKEND_OPENSSL && ti->internals)
            snprintf(q->res.tls_version, sizeof(q->res.tls_version), "%s",
                     SSL_get_version((SSL *)ti->internals));
    }
    if (n >= 5 && !strncmp(ptr, "HTTP/", 5)) {
        q->res.content_type[0] = 0;
    } else if (n > 13 && !strncasecmp(ptr, "content-type:", 13)) {
        const char *v = ptr + 13;
        size_t l = n - 13;
        while (l && (*v == ' ' || *v == '\t'))
            v++, l--;
        while (l && (v[l - 1] == '\r' || v[l - 1] == '\n' || v[l - 1] == ' '))
            l--;
        if (l >= sizeof(q->res.content_type))
            l = sizeof(q->res.content_type) - 1;
        memcpy(q->res.content_type, v, l);
        q->res.content_type[l] = 0;
        for (size_t i = 0; i < l; i++) /* keep it printable in reports */
            if ((unsigned char)q->res.content_type[i] < 0x20 ||
                (unsigned char)q->res.content_type[i] > 0x7e)
                q->res.content_type[i] = '?';
    }
    return n;
}

struct pfetch_req *pfetch_start(struct pfetch *f, const char *domain, const char *addr, int family,
                                const struct pfetch_opts *o, pfetch_cb cb, void *arg, char *err,
                                size_t errlen)
{
    struct pfetch_req *q = calloc(1, sizeof(*q));
    if (!q || !(q->easy = curl_easy_init())) {
        free(q);
        sw_set_err(err, errlen, "fetch: out of memory");
        return NULL;
    }
    q->f = f;
    q->cb = cb;
    q->arg = arg;
    unsigned port = o->port ? o->port : 443;
    if (port == 443)
        snprintf(q->res.url, sizeof(q->res.url), "https://mta-sts.%s/.well-known/mta-sts.txt",
                 domain);
    else
        snprintf(q->res.url, sizeof(q->res.url), "https://mta-sts.%s:%u/.well-known/mta-sts.txt",
                 domain, port);
    char pin[400];
    bool v6 = family == AF_INET6;
    snprintf(q->res.pinned, sizeof(q->res.pinned), "%s%s%s:%u", v6 ? "[" : "", addr, v6 ? "]" : "",
             port);
    snprintf(pin, sizeof(pin), "mta-sts.%s:%u:%s", domain, port, q->res.pinned);
    /* pin holds "host:port:ADDR:port": cut the trailing ":port" of the address */
    char *last = strrchr(pin, ':');
    if (last)
        *last = 0;
    q->resolve = curl_slist_append(NULL, pin);
    q->headers = curl_slist_append(NULL, "Cache-Control: no-cache");
    if (q->headers)
        q->headers = curl_slist_append(q->headers, "Pragma: no-cache");
    CURL *h = q->easy;
    int bad = !q->resolve || !q->headers;
    bad |= curl_easy_setopt(h, CURLOPT_URL, q->res.url) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_RESOLVE, q->resolve) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_PROXY, "") != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_NOPROXY, "*") != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK;
    if (o->ca_file)
        bad |= curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, q->headers) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_USERAGENT, "stripwatch/" SW_VERSION) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->total_timeout_ms) != CURLE_OK;
    if (o->low_speed_secs > 0) {
        bad |= curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, o->low_speed_bytes) != CURLE_OK;
        bad |= curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, o->low_speed_secs) != CURLE_OK;
    }
    bad |= curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MTASTS_MAX_BODY) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_WRITEDATA, q) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_HEADERDATA, q) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, q->errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_PRIVATE, q) != CURLE_OK;
    if (bad || curl_multi_add_handle(f->multi, h) != CURLM_OK) {
        sw_set_err(err, errlen, "fetch: %s: cannot set up the transfer", q->res.url);
        req_free(f, q);
        return NULL;
    }
    q->next = f->reqs;
    if (f->reqs)
        f->reqs->prev = q;
    f->reqs = q;
    f->n_reqs++;
    return q;
}

static void finish(struct pfetch_req *q, CURLcode rc)
{
    struct pfetch_result *r = &q->res;
    curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &r->http_code);
    snprintf(r->curl_error, sizeof(r->curl_error), "%s",
             q->errbuf[0] ? q->errbuf : (rc != CURLE_OK ? curl_easy_strerror(rc) : ""));
    if (q->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        r->outcome = PFETCH_TOO_BIG;
        snprintf(r->detail, sizeof(r->detail), "policy body exceeds %d bytes", MTASTS_MAX_BODY);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        r->outcome = PFETCH_TIMEOUT;
        snprintf(r->detail, sizeof(r->detail), "timed out");
    } else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CONNECT_ERROR ||
               rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CERTPROBLEM ||
               rc == CURLE_SSL_CIPHER || rc == CURLE_SSL_ISSUER_ERROR ||
               rc == CURLE_SSL_INVALIDCERTSTATUS || rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH) {
        r->outcome = PFETCH_TLS_ERROR;
        snprintf(r->detail, sizeof(r->detail), "TLS: %s", r->curl_error);
    } else if (rc == CURLE_COULDNT_CONNECT) {
        r->outcome = PFETCH_CONNECT;
        snprintf(r->detail, sizeof(r->detail), "cannot connect to %s", r->pinned);
    } else if (rc != CURLE_OK) {
        r->outcome = PFETCH_ERROR;
        snprintf(r->detail, sizeof(r->detail), "%s", r->curl_error);
    } else if (r->http_code >= 300 && r->http_code <= 399) {
        r->outcome = PFETCH_REDIRECT;
        snprintf(r->detail, sizeof(r->detail), "redirect refused (HTTP %ld)", r->http_code);
    } else if (r->http_code != 200) {
        r->outcome = PFETCH_HTTP_ERROR;
        snprintf(r->detail, sizeof(r->detail), "HTTP %ld", r->http_code);
    } else if (!pfetch_content_type_ok(r->content_type[0] ? r->content_type : NULL)) {
        r->outcome = PFETCH_BAD_TYPE;
        if (r->content_type[0])
            snprintf(r->detail, sizeof(r->detail), "content type \"%s\" is not text/plain",
                     r->content_type);
        else
            snprintf(r->detail, sizeof(r->detail), "no content type (text/plain required)");
    } else {
        r->outcome = PFETCH_OK;
        snprintf(r->detail, sizeof(r->detail), "HTTP 200");
        r->body = q->body ? q->body : "";
        r->body_len = q->body_len;
    }
}

int pfetch_perform(struct pfetch *f)
{
    int running = 0;
    if (curl_multi_perform(f->multi, &running) != CURLM_OK)
        return SW_EIO;
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(f->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct pfetch_req *q = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&q);
        if (!q)
            continue;
        finish(q, m->data.result);
        req_unlink(f, q);
        q->cb(q->arg, &q->res);
        req_free(f, q);
    }
    return SW_OK;
}

int pfetch_wait(struct pfetch *f, const int *extra_fds, unsigned n_extra, int timeout_ms)
{
    struct curl_waitfd w[4];
    if (n_extra > 4)
        n_extra = 4;
    for (unsigned i = 0; i < n_extra; i++) {
        w[i].fd = extra_fds[i];
        w[i].events = CURL_WAIT_POLLIN;
        w[i].revents = 0;
    }
    int numfds = 0;
    if (curl_multi_poll(f->multi, w, n_extra, timeout_ms, &numfds) != CURLM_OK)
        return SW_EIO;
    return SW_OK;
}

size_t pfetch_in_flight(const struct pfetch *f)
{
    return f->n_reqs;
}
