/* SPDX-License-Identifier: Apache-2.0 */
/* policy_check.h: checks of `stripwatch policy DOMAIN` beyond the policy
 * itself (policy/policy_check.c, policy_dane_check.c): the domain's MX
 * records against the policy's mx patterns, its TLS-RPT record, the TLSA
 * records of its MX hosts. Output: one line per finding on
 * policy_cli_stream(). */
#ifndef SW_POLICY_CHECK_H
#define SW_POLICY_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/dns.h"
#include "policy/mtasts.h"

/* mx: the MX answer's entries ("PREFERENCE EXCHANGE", dns.h). Prints
 * "MX DOMAIN: PREF HOST" per record, then "PASS §4.1 MX HOST matches the
 * policy's mx patterns" or "FAIL §4.1 MX HOST matches none of the policy's
 * mx patterns (...)" per host; no MX at all is a NOTE (RFC 5321 §5.1: the
 * domain itself is the MX), checked as the host DOMAIN. Adds the failures
 * to *fails; returns how many hosts are not covered. */
size_t policy_cli_mx_check(const char *domain, const struct mtasts_policy *p, const char *const *mx,
                           size_t n, int *fails);
/* One TXT record of _smtp._tls.DOMAIN (RFC 8460 §3): "v=TLSRPTv1" first,
 * fields separated by ";" (whitespace around them allowed, a final ";"
 * too), exactly one rua= with comma-separated mailto: or https:// URIs,
 * other NAME=VALUE fields allowed. false with the reason in why. */
bool tlsrpt_record_check(const char *s, size_t n, size_t *n_rua, char *why, size_t whylen);
/* Where the command's lines go: stdout, or with --json a buffer that
 * policy_cli.c turns into one JSON object at the end. */
#include <stdio.h>
FILE *policy_cli_stream(void);

/* RFC 7672 §2.2, §3.1: the TLSA records of each MX host (hosts: the MX
 * answer's "PREFERENCE EXCHANGE" entries; none: domain itself; the null MX
 * "." skipped), looked up with DNSSEC validation against trust_anchor (NULL:
 * the default root anchor) through dns_server (NULL: /etc/resolv.conf).
 * Prints per host its records ("TLSA _25._tcp.HOST: U S M DATA") and one
 * finding: PASS for DNSSEC-secure records of which at least one is usable
 * for SMTP; NOTE when DANE does not apply (secure denial, unsigned answer);
 * FAIL for a bogus answer, secure records none of which is usable, or a
 * failed lookup. Adds the failures to *fails; when tlsa is not NULL (a
 * json_t array), appends per host {"host", "status", "records", "usable"}.
 * False with one line in err when the validator cannot start (the trust
 * anchor cannot be read). */
struct json_t;
bool policy_cli_dane_check(const char *domain, const char *const *mx, size_t n,
                           const char *dns_server, const char *trust_anchor, int *fails,
                           struct json_t *tlsa, char *err, size_t errlen);

/* Why a DNS answer failed: its error string or "rcode N". */
const char *policy_cli_dns_why(const struct pdns_result *r, char *buf, size_t len);

#endif
