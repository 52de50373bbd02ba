/* SPDX-License-Identifier: Apache-2.0 */
/* dns_int.h: the part of policy/dns.c that turns one libunbound answer into
 * the pdns_result handed to callers, apart from the resolver so that it can
 * be tested and fuzzed alone with a struct ub_result built by hand. */
#ifndef SW_POLICY_DNS_INT_H
#define SW_POLICY_DNS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <unbound.h>

#include "policy/dns.h"

#define RR_A    1
#define RR_MX   15
#define RR_TXT  16
#define RR_AAAA 28

/* Adds the answer ub to res for one sub-query of type rrtype (RR_TXT, RR_A,
 * RR_AAAA) of a TXT (is_addr false) or address (is_addr true) query: rcode
 * (an AAAA answer does not override a non-zero A rcode), nxdomain (TXT, or
 * the A half of an address query), canon (copied into canon[canon_len] when
 * ub has a canonname and canon is still empty), TXT rdata (each record's
 * <length><bytes> strings concatenated, a length past the rdata cut at its
 * end; appended to res->txt, allocated, freed by the owner of res) and
 * addresses (4-byte A / 16-byte AAAA rdata only, at most PDNS_MAX_ADDR).
 * Reads ub->data[] up to its NULL entry with ub->len[] when ub->havedata;
 * neither keeps nor frees ub. Out of memory sets res->err once. */
void pdns_answer_take(struct pdns_result *res, char *canon, size_t canon_len, int rrtype,
                      bool is_addr, const struct ub_result *ub);

#endif
