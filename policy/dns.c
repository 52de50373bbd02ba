/* SPDX-License-Identifier: Apache-2.0 */
/* dns.c: asynchronous TXT and A/AAAA lookups through libunbound.
 * RFC 1035 (TXT character-strings, MX), RFC 8461 §3.1 (concatenated strings). */
#include "policy/dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unbound.h>

#include "decode/sw.h"
#include "policy/dns_int.h"

struct pdns_sub {
    struct pdns_req *req;
    int id; /* libunbound async id */
    bool done;
    int rrtype;
};

struct pdns_req {
    struct pdns *d;
    pdns_cb cb;
    void *arg;
    bool is_addr;
    int n_sub, n_done;
    struct pdns_sub sub[2];
    struct pdns_result res;
    char errbuf[128];
    char canon[256];
    struct pdns_req *prev, *next;
};

struct pdns {
    struct ub_ctx *ctx;
    struct pdns_req *reqs; /* in flight */
    size_t n_reqs;
};

bool pdns_server_valid(const char *server, char *why, size_t whylen)
{
    char addr[64];
    const char *at = strchr(server, '@');
    size_t alen = at ? (size_t)(at - server) : strlen(server);
    if (alen == 0 || alen >= sizeof(addr)) {
        snprintf(why, whylen, "not ADDR[@PORT]");
        return false;
    }
    memcpy(addr, server, alen);
    addr[alen] = 0;
    unsigned char buf[16];
    if (inet_pton(AF_INET, addr, buf) != 1 && inet_pton(AF_INET6, addr, buf) != 1) {
        snprintf(why, whylen, "\"%s\" is not an IPv4 or IPv6 address", addr);
        return false;
    }
    if (at) {
        const char *p = at + 1;
        unsigned long port = 0;
        size_t n = 0;
        for (; p[n]; n++) {
            if (p[n] < '0' || p[n] > '9' || n >= 5) {
                snprintf(why, whylen, "port is not 1-65535");
                return false;
            }
            port = port * 10 + (unsigned long)(p[n] - '0');
        }
        if (n == 0 || port == 0 || port > 65535) {
            snprintf(why, whylen, "port is not 1-65535");
            return false;
        }
    }
    return true;
}

struct pdns *pdns_new(const char *server, char *err, size_t errlen)
{
    char why[96];
    if (server && !pdns_server_valid(server, why, sizeof(why))) {
        sw_set_err(err, errlen, "dns server \"%s\": %s", server, why);
        return NULL;
    }
    struct pdns *d = calloc(1, sizeof(*d));
    if (!d) {
        sw_set_err(err, errlen, "dns: out of memory");
        return NULL;
    }
    d->ctx = ub_ctx_create();
    if (!d->ctx) {
        free(d);
        sw_set_err(err, errlen, "dns: cannot create a libunbound context");
        return NULL;
    }
    int r = ub_ctx_async(d->ctx, 1);
    if (!r)
        r = ub_ctx_set_option(d->ctx, "do-not-query-localhost:", "no");
    if (!r)
        r = server ? ub_ctx_set_fwd(d->ctx, server) : ub_ctx_resolvconf(d->ctx, NULL);
    if (r) {
        sw_set_err(err, errlen, "dns: %s: %s", server ? server : "/etc/resolv.conf",
                   r == UB_READFILE ? strerror(errno) : ub_strerror(r));
        ub_ctx_delete(d->ctx);
        free(d);
        return NULL;
    }
    return d;
}

static void req_unlink(struct pdns *d, struct pdns_req *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        d->reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    d->n_reqs--;
}

static void req_free(struct pdns_req *q)
{
    for (size_t i = 0; i < q->res.n_txt; i++)
        free(q->res.txt[i]);
    free(q->res.txt);
    free(q->res.txt_len);
    free(q);
}

void pdns_cancel(struct pdns *d, struct pdns_req *q)
{
    if (!q)
        return;
    for (int i = 0; i < q->n_sub; i++)
        if (!q->sub[i].done)
            ub_cancel(d->ctx, q->sub[i].id);
    req_unlink(d, q);
    req_free(q);
}

/* ub_ctx_delete() stops libunbound's thread and waits for it; with queries
 * outstanding to a resolver that never answers that can take minutes. It
 * runs on a detached helper thread; pdns_free() waits for it at most
 * PDNS_DELETE_WAIT_MS and then leaves it to finish (or to die with the
 * process). */
#define PDNS_DELETE_WAIT_MS 1000

struct reaper {
    struct ub_ctx *ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int refs; /* the helper and pdns_free() */
};

static void reaper_unref(struct reaper *r)
{
    pthread_mutex_lock(&r->mu);
    bool last = --r->refs == 0;
    pthread_mutex_unlock(&r->mu);
    if (last) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
    }
}

static void *reap(void *arg)
{
    struct reaper *r = arg;
    pthread_setname_np(pthread_self(), "sw-dns-reaper"); /* top -H, ps -L */
    ub_ctx_delete(r->ctx);
    pthread_mutex_lock(&r->mu);
    r->done = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    reaper_unref(r);
    return NULL;
}

static void ctx_delete_bounded(struct ub_ctx *ctx)
{
    struct reaper *r = calloc(1, sizeof(*r));
    pthread_t th;
    pthread_attr_t at;
    if (!r) {
        ub_ctx_delete(ctx);
        return;
    }
    r->ctx = ctx;
    r->refs = 2;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &at, reap, r) != 0) {
        pthread_attr_destroy(&at);
        r->refs = 1;
        reaper_unref(r);
        ub_ctx_delete(ctx);
        return;
    }
    pthread_attr_destroy(&at);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += PDNS_DELETE_WAIT_MS / 1000;
    ts.tv_nsec += (PDNS_DELETE_WAIT_MS % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->mu);
    while (!r->done && pthread_cond_timedwait(&r->cv, &r->mu, &ts) == 0)
        ;
    pthread_mutex_unlock(&r->mu);
    reaper_unref(r);
}

void pdns_free(struct pdns *d)
{
    if (!d)
        return;
    /* no ub_cancel() per query (each is a blocking write to libunbound's
     * thread): deleting the context drops them all, and no callback can
     * fire without ub_process() */
    while (d->reqs) {
        struct pdns_req *q = d->reqs;
        req_unlink(d, q);
        req_free(q);
    }
    ctx_delete_bounded(d->ctx);
    free(d);
}

/* TXT rdata: a sequence of <length byte><bytes>; concatenated (§3.1). */
static int add_txt(struct pdns_result *res, const unsigned char *rd, size_t len)
{
    char *s = malloc(len + 1);
    if (!s)
        return SW_ENOMEM;
    size_t o = 0, p = 0;
    while (p < len) {
        size_t n = rd[p++];
        if (n > len - p)
            n = len - p;
        memcpy(s + o, rd + p, n);
        o += n;
        p += n;
    }
    s[o] = 0;
    char **t = realloc(res->txt, (res->n_txt + 1) * sizeof(*t));
    if (!t) {
        free(s);
        return SW_ENOMEM;
    }
    res->txt = t;
    size_t *l = realloc(res->txt_len, (res->n_txt + 1) * sizeof(*l));
    if (!l) {
        free(s);
        return SW_ENOMEM;
    }
    res->txt_len = l;
    res->txt[res->n_txt] = s;
    res->txt_len[res->n_txt] = o;
    res->n_txt++;
    return SW_OK;
}

/* MX rdata: preference, then the exchange in (uncompressed) wire form. */
static int add_mx(struct pdns_result *res, const unsigned char *rd, size_t len)
{
    char name[300];
    size_t o = 0, p = 2;
    if (len < 3)
        return SW_OK;
    while (p < len && rd[p] && o < 255) {
        size_t n = rd[p++];
        if (n > 63 || n > len - p)
            return SW_OK;
        if (o)
            name[o++] = '.';
        for (size_t i = 0; i < n && o < 255; i++) {
            unsigned char c = rd[p + i];
            name[o++] = (char)(c > 0x20 && c < 0x7f ? c : '?');
        }
        p += n;
    }
    name[o] = 0;
    char line[320];
    int k = snprintf(line, sizeof(line), "%u %s", (unsigned)(rd[0] << 8 | rd[1]), o ? name : ".");
    unsigned char tmp[330];
    tmp[0] = (unsigned char)(k > 255 ? 255 : k);
    memcpy(tmp + 1, line, tmp[0]);
    return add_txt(res, tmp, (size_t)tmp[0] + 1);
}

void pdns_answer_take(struct pdns_result *res, char *canon, size_t canon_len, int rrtype,
                      bool is_addr, const struct ub_result *ub)
{
    if (rrtype != RR_AAAA || res->rcode == 0)
        res->rcode = ub->rcode;
    if (ub->nxdomain && (!is_addr || rrtype == RR_A))
        res->nxdomain = true;
    if (ub->canonname && !canon[0])
        snprintf(canon, canon_len, "%s", ub->canonname);
    for (int i = 0; ub->havedata && ub->data[i]; i++) {
        size_t len = (size_t)ub->len[i];
        const unsigned char *rd = (const unsigned char *)ub->data[i];
        if (rrtype == RR_TXT || rrtype == RR_MX) {
            int rc = rrtype == RR_TXT ? add_txt(res, rd, len) : add_mx(res, rd, len);
            if (rc != SW_OK && !res->err) {
                res->err = -1;
                res->errstr = "out of memory";
            }
        } else if (res->n_addr < PDNS_MAX_ADDR) {
            int fam = rrtype == RR_A ? AF_INET : AF_INET6;
            if ((fam == AF_INET && len == 4) || (fam == AF_INET6 && len == 16)) {
                inet_ntop(fam, rd, res->addr[res->n_addr], sizeof(res->addr[0]));
                res->family[res->n_addr++] = fam;
            }
        }
    }
}

static void on_result(void *mydata, int err, struct ub_result *ub)
{
    struct pdns_sub *sub = mydata;
    struct pdns_req *q = sub->req;
    struct pdns_result *res = &q->res;
    sub->done = true;
    q->n_done++;
    if (err) {
        if (!res->err) {
            res->err = err;
            snprintf(q->errbuf, sizeof(q->errbuf), "%s", ub_strerror(err));
            res->errstr = q->errbuf;
        }
    } else if (ub) {
        pdns_answer_take(res, q->canon, sizeof(q->canon), sub->rrtype, q->is_addr, ub);
    }
    if (ub)
        ub_resolve_free(ub);
    if (q->n_done < q->n_sub)
        return;
    /* A before AAAA regardless of arrival order. */
    if (q->is_addr) {
        struct pdns_result tmp = *res;
        size_t k = 0;
        for (int fam = 0; fam < 2; fam++)
            for (size_t i = 0; i < tmp.n_addr; i++)
                if ((fam == 0) == (tmp.family[i] == AF_INET)) {
                    memcpy(res->addr[k], tmp.addr[i], sizeof(res->addr[0]));
                    res->family[k++] = tmp.family[i];
                }
    }
    if (q->canon[0])
        res->canonname = q->canon;
    req_unlink(q->d, q);
    q->cb(q->arg, res);
    req_free(q);
}

static struct pdns_req *start(struct pdns *d, const char *name, bool is_addr, int rrtype,
                              pdns_cb cb, void *arg, char *err, size_t errlen)
{
    struct pdns_req *q = calloc(1, sizeof(*q));
    if (!q) {
        sw_set_err(err, errlen, "dns: out of memory");
        return NULL;
    }
    q->d = d;
    q->cb = cb;
    q->arg = arg;
    q->is_addr = is_addr;
    q->n_sub = is_addr ? 2 : 1;
    q->sub[0].rrtype = is_addr ? RR_A : rrtype;
    q->sub[1].rrtype = RR_AAAA;
    q->next = d->reqs;
    if (d->reqs)
        d->reqs->prev = q;
    d->reqs = q;
    d->n_reqs++;
    for (int i = 0; i < q->n_sub; i++) {
        q->sub[i].req = q;
        int r = ub_resolve_async(d->ctx, name, q->sub[i].rrtype, 1, &q->sub[i], on_result,
                                 &q->sub[i].id);
        if (r) {
            sw_set_err(err, errlen, "dns: %s: %s", name, ub_strerror(r));
            q->n_sub = i; /* cancel only what started */
            pdns_cancel(d, q);
            return NULL;
        }
    }
    return q;
}

struct pdns_req *pdns_query_txt(struct pdns *d, const char *name, pdns_cb cb, void *arg, char *err,
                                size_t errlen)
{
    return start(d, name, false, RR_TXT, cb, arg, err, errlen);
}

struct pdns_req *pdns_query_mx(struct pdns *d, const char *name, pdns_cb cb, void *arg, char *err,
                               size_t errlen)
{
    return start(d, name, false, RR_MX, cb, arg, err, errlen);
}

struct pdns_req *pdns_query_addr(struct pdns *d, const char *name, pdns_cb cb, void *arg, char *err,
                                 size_t errlen)
{
    return start(d, name, true, RR_A, cb, arg, err, errlen);
}

int pdns_fd(const struct pdns *d)
{
    return ub_fd(d->ctx);
}

int pdns_process(struct pdns *d)
{
    if (!d->n_reqs)
        return SW_OK;
    return ub_process(d->ctx) ? SW_EIO : SW_OK;
}

size_t pdns_in_flight(const struct pdns *d)
{
    return d->n_reqs;
}
