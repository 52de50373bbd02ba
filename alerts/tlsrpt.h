/* SPDX-License-Identifier: Apache-2.0 */
/* tlsrpt.h: TLS-RPT aggregate reports (RFC 8460 §4) built from the sessions
 * seen on the wire (alerts/tlsrpt.c). A session is reduced to
 * a struct tlsrpt_session (from its facts, or from its JSON record for
 * `stripwatch report --tlsrpt`), its policy answers are those of the domains
 * tlsrpt_domains() names (MTA-STS) and of its MX host (DANE), and
 * tlsrpt_add() counts it, per policy domain and UTC day of the session's
 * start, for each policy that applies:
 *  - a TLS session for the domains whose MTA-STS policy (mode testing or
 *    enforce, in force or expired) names its MX host (TLS hides the
 *    recipients; the domains tried are the parents of the host), a success,
 *    unless its certificate is visible and fails the policy's checks
 *    (RFC 8461 §4.2): certificate-host-mismatch (no name matches the MX
 *    host), certificate-expired (at the session's start), or
 *    certificate-not-trusted (self-signed), in this order;
 *  - a session without TLS for its accepted recipients' domains with such a
 *    policy, a failure: starttls-not-supported, or validation-failure when
 *    the client asked for STARTTLS and no TLS followed;
 *  - the same sessions and domains again under a `tlsa` policy when the MX
 *    host has DNSSEC-secure TLSA records usable for SMTP (certificates are
 *    not matched against the records here: dane.certificate_mismatch is the
 *    alert for that; a TLS session counts as a success).
 * Submission (ports 587/465, AUTH) is no MX delivery and is not counted.
 * Reports are written as DIR/ORG!DOMAIN!BEGIN!END.json (RFC 8460 §5.3,
 * BEGIN/END Unix seconds of the UTC day), indented JSON with sorted
 * policies and failure details, so that the same sessions give the same
 * bytes. Single-threaded: the detector's owner thread (or the report
 * command) calls everything. */
#ifndef SW_TLSRPT_H
#define SW_TLSRPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alerts/rules.h"
#include "decode/facts.h"

#define TLSRPT_RCPT_MAX                                                                            \
    64 /* accepted recipients' domains counted per session (more: stats dropped) */
#define TLSRPT_DOMAINS_MAX 4  /* parents of the MX host tried for a TLS session */
#define TLSRPT_CERT_NAMES  16 /* certificate names kept */

/* What a report needs of one session. */
struct tlsrpt_session {
    int64_t start;           /* first packet, Unix seconds */
    char client[64];         /* sending MTA address */
    char server[64];         /* receiving address */
    uint16_t port;           /* server port */
    char mx[FACTS_HOST_MAX]; /* SNI, else the banner's host (lowercase); "" when none */
    bool tls;                /* TLS established */
    bool starttls_requested;
    bool submission;                            /* port 587/465 or AUTH: not counted */
    char rcpt[TLSRPT_RCPT_MAX][FACTS_HOST_MAX]; /* accepted recipients' domains */
    size_t n_rcpt;
    size_t rcpt_dropped; /* distinct domains past TLSRPT_RCPT_MAX, not counted */
    /* the server's certificate when visible (TLS <= 1.2) */
    bool cert, cert_self_signed;
    int64_t cert_not_after;                             /* Unix seconds, 0 when unknown */
    char cert_names[TLSRPT_CERT_NAMES][FACTS_HOST_MAX]; /* DNS SANs, else the subject CN */
    size_t n_cert_names;
};

/* From a session's facts. */
void tlsrpt_session_of_facts(const struct smtp_facts *f, struct tlsrpt_session *s);

struct json_t;
/* From a session record (alerts/session_json.h); false with the reason in
 * err when a field the report needs is missing or malformed. */
bool tlsrpt_session_of_json(const struct json_t *rec, struct tlsrpt_session *s, char *err,
                            size_t errlen);

/* The domains whose MTA-STS policy must be known to count s (accepted
 * recipients' domains without TLS, the MX host's parents with TLS, keeping
 * at least two labels); 0 for a session that is not counted. */
size_t tlsrpt_domains(const struct tlsrpt_session *s, char (*out)[FACTS_HOST_MAX], size_t max);

struct tlsrpt_cfg {
    const char *dir;          /* where reports go (must exist) */
    const char *organization; /* organization-name, and the file names' sender */
    const char *contact;      /* contact-info (NULL: "postmaster@" organization) */
};

struct tlsrpt_stats {
    uint64_t sessions_counted; /* sessions that counted for at least one policy */
    uint64_t reports_written, write_errors;
    uint64_t dropped; /* (day, domain) reports or failure rows past the bounds */
};

struct tlsrpt;
/* NULL when out of memory. The strings of cfg are copied. */
struct tlsrpt *tlsrpt_new(const struct tlsrpt_cfg *cfg);
/* Counts s with the answers for its domains (pols[0..n), any order, others
 * ignored) and its MX host's DANE answer (dn: NULL or another host: none). */
void tlsrpt_add(struct tlsrpt *t, const struct tlsrpt_session *s, const struct rule_policy *pols,
                size_t n, const struct rule_dane *dn);
/* Live runs: at a UTC day change of now (Unix seconds, wall clock) writes
 * the reports of the days before, and forgets those older than yesterday
 * (a late session of yesterday writes its report again at the next change). */
void tlsrpt_tick(struct tlsrpt *t, int64_t now);
/* Writes every report not written yet (or changed since). False when a
 * file could not be written (said on the log). */
bool tlsrpt_flush(struct tlsrpt *t);
const struct tlsrpt_stats *tlsrpt_stats(const struct tlsrpt *t);
void tlsrpt_free(struct tlsrpt *t);

#endif
