/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_dns.c: libFuzzer target for what policy/dns.c does with libunbound's
 * answers (pdns_answer_take: rcode, NXDOMAIN, canonical name, TXT rdata as
 * RFC 1035 character-strings concatenated per RFC 8461 §3.1, A/AAAA rdata).
 * A struct ub_result is built from the input for each sub-query: byte 0 bit 0
 * picks a TXT query (one answer) or an address query (A then AAAA); each
 * answer is [rcode][flags: 1 nxdomain, 2 havedata, 4 canonname][canonname
 * length][canonname][record count] then per record [length][rdata], every
 * length one byte. Checks: TXT strings are at most as long as their rdata and
 * NUL-terminated at their length; addresses parse back. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/dns_int.h"

struct rd {
    const uint8_t *p, *end;
};

static uint8_t byte(struct rd *r)
{
    return r->p < r->end ? *r->p++ : 0;
}

/* A copy of the next n input bytes (fewer at the end), exact size. */
static char *take(struct rd *r, size_t n, size_t *got, bool nul)
{
    if (n > (size_t)(r->end - r->p))
        n = (size_t)(r->end - r->p);
    char *s = malloc(n + (nul ? 1 : 0) + (n || nul ? 0 : 1));
    if (!s)
        abort();
    memcpy(s, r->p, n);
    if (nul)
        s[n] = 0;
    r->p += n;
    *got = n;
    return s;
}

static void answer(struct rd *r, struct pdns_result *res, char *canon, size_t canon_len, int rrtype,
                   bool is_addr, size_t *max_txt)
{
    struct ub_result ub;
    memset(&ub, 0, sizeof(ub));
    ub.qtype = rrtype;
    ub.qclass = 1;
    ub.rcode = byte(r) & 0x0f;
    uint8_t flags = byte(r);
    ub.nxdomain = flags & 1;
    ub.havedata = (flags & 2) != 0;
    size_t cl = byte(r), got;
    char *cn = take(r, cl, &got, true);
    ub.canonname = (flags & 4) ? cn : NULL;
    size_t n = byte(r) % 16;
    ub.data = calloc(n + 1, sizeof(char *));
    ub.len = calloc(n + 1, sizeof(int));
    if (!ub.data || !ub.len)
        abort();
    for (size_t i = 0; i < n; i++) {
        size_t want = byte(r);
        ub.data[i] = take(r, want, &got, false);
        ub.len[i] = (int)got;
        if (got > *max_txt)
            *max_txt = got;
    }
    pdns_answer_take(res, canon, canon_len, rrtype, is_addr, &ub);
    for (size_t i = 0; i < n; i++)
        free(ub.data[i]);
    free(ub.data);
    free(ub.len);
    free(cn);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rd r = {data, data + size};
    bool is_addr = byte(&r) & 1;
    struct pdns_result res;
    memset(&res, 0, sizeof(res));
    char canon[256] = "";
    size_t max_txt = 0;
    if (is_addr) {
        answer(&r, &res, canon, sizeof(canon), RR_A, true, &max_txt);
        answer(&r, &res, canon, sizeof(canon), RR_AAAA, true, &max_txt);
    } else {
        answer(&r, &res, canon, sizeof(canon), RR_TXT, false, &max_txt);
    }
    if (strlen(canon) >= sizeof(canon) || res.n_addr > PDNS_MAX_ADDR)
        abort();
    for (size_t i = 0; i < res.n_txt; i++) {
        if (res.txt_len[i] > max_txt || res.txt[i][res.txt_len[i]] != 0)
            abort();
        free(res.txt[i]);
    }
    for (size_t i = 0; i < res.n_addr; i++) {
        uint8_t b[16];
        if (inet_pton(res.family[i], res.addr[i], b) != 1)
            abort();
    }
    free(res.txt);
    free(res.txt_len);
    return 0;
}
