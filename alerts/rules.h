/* SPDX-License-Identifier: Apache-2.0 */
/* rules.h: the detection rules (alerts/rules.c). Pure judgment: facts of one
 * session + what posture showed before it + the MTA-STS answers for the
 * domains it concerns -> zero or more verdicts. No I/O, no global state.
 * Severity and confidence per rule and evidence are tabled in alerts/RULES.md.
 * Verdicts own their evidence, written as JSON text at judgment time
 * (rules_verdicts_clear releases it). */
#ifndef SW_RULES_H
#define SW_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode/facts.h"
#include "policy/dane.h"
#include "policy/policy.h"

struct jsonw;

/* Stable rule ids, in the order detector_stats.by_rule counts them. */
enum rule_id {
    RULE_STARTTLS_STRIPPED = 0,
    RULE_STARTTLS_TAMPERED,
    RULE_STARTTLS_UNUSED,
    RULE_STARTTLS_FALLBACK,
    RULE_DELIVERY_PLAINTEXT_POLICY,
    RULE_POLICY_MX_MISMATCH,
    RULE_POLICY_CERTIFICATE_INVALID,
    RULE_AUTH_CLEARTEXT,
    RULE_ESMTP_MASKED_EXTENSIONS,
    RULE_DELIVERY_PLAINTEXT_DANE,
    RULE_DANE_CERTIFICATE_MISMATCH,
    RULE_COUNT,
};

struct rule_desc {
    const char *id;          /* "starttls.stripped" */
    const char *name;        /* short human title */
    const char *description; /* one sentence */
};
const struct rule_desc *rule_desc(enum rule_id r);
const char *rule_id_str(enum rule_id r);

/* Severity: numeric event.severity, with stripwatch.severity_name. */
#define SEV_LOW    1
#define SEV_MEDIUM 2
#define SEV_HIGH   3
const char *rule_severity_name(int sev); /* "low", "medium", "high" */

enum rule_confidence { CONF_LOW = 0, CONF_MEDIUM, CONF_HIGH };
const char *rule_confidence_str(enum rule_confidence c);

#define RULES_DERIVED_MAX 4 /* policy domains derived from the server's names */

/* One domain whose policy was consulted, with its answer copied (the engine's
 * answer pointers are borrowed only for the call). */
struct rule_policy {
    char domain[FACTS_HOST_MAX];
    bool derived;              /* derived from the server's names, not a recipient */
    bool answered;             /* false while the lookup is pending */
    enum policy_status status; /* POLICY_ST_UNKNOWN after the deadline */
    char id[33];
    struct mtasts_policy pol; /* set when status is VALID or EXPIRED */
    int64_t fetched_at;
    enum policy_source source;
    char *detail; /* the answer's detail (not for VALID); owned */
};
void rule_policy_set(struct rule_policy *p, const struct policy_answer *a);
/* The answered policy p as an alert's mta_sts object: domain, id, mode, mx,
 * max_age, fetched_at (RFC 3339), source, status, then detail when there
 * is one and derived_from_server_name when derived. */
void rule_policy_write(struct jsonw *w, const char *key, const struct rule_policy *p);
/* VALID or EXPIRED: pol is set and judged with (expired ones lower the
 * confidence of the alerts resting on them, alerts/RULES.md). */
bool rule_policy_in_force(const struct rule_policy *p);
void rule_policy_clear(struct rule_policy *p);

/* What learned posture showed before this session (a snapshot taken when the
 * session arrived, so that verdicts do not depend on lookup timing). */
struct posture_view {
    bool server_offered; /* this server offered STARTTLS before */
    bool server_by_name; /* ... known by its banner host, not its address */
    char server_key[300];
    char server_uid[18];
    sw_usec server_ts;
    uint32_t server_syn_ack; /* its SYN-ACK fingerprint then (by address only), 0 unknown */
    bool client_used;        /* this client used STARTTLS to this server before */
    char client_uid[18];
    sw_usec client_ts;
    bool client_failed;         /* its last STARTTLS/TLS attempt to this server failed, within
                                   the fallback window (alerts/posture.h) */
    bool client_failed_by_name; /* ... to another address of the same server name */
    char client_failed_uid[18];
    sw_usec client_failed_ts;
    char client_failed_detail[96];
};

/* Which domains' policies matter for this session: the recipient domains
 * whose RCPT got a 2xx reply (deduplicated, lowercased; those of the
 * recipients past the kept ones too, tx.domains), or, when none is visible
 * (TLS hid them, or the client stopped after EHLO), parents of the server's
 * names for the checks that need them. Returns the count (at most max;
 * rules_policy_domains_max(f) holds them all); *dropped counts recipient
 * domains left out: past max, or past the decoder's bound
 * (tx.domains_dropped); *derived tells which kind. Submission sessions (port 587/465, or
 * authenticated) get none: MTA-STS governs MX delivery only. */
size_t rules_policy_domains(const struct smtp_facts *f, char (*out)[FACTS_HOST_MAX], size_t max,
                            bool *derived, uint32_t *dropped);
/* An out size that holds every domain rules_policy_domains can return. */
size_t rules_policy_domains_max(const struct smtp_facts *f);

struct verdict {
    enum rule_id rule;
    int severity;
    enum rule_confidence confidence;
    const char *action; /* event.action, static string */
    int policy;         /* index into the policies array for mta_sts, -1 none */
    /* stripwatch.evidence's members as the direct writer wrote them
     * (alerts/jsonw.h): '"session_uid":...,"reason":...,...' without the
     * braces, evidence_len bytes, NUL-terminated; owned, NULL when none.
     * reason_end: the offset just past the reason member, where
     * rules_judge_dane() splices a new reason in. */
    char *evidence;
    size_t evidence_len;
    size_t reason_end;
};

#define RULES_VERDICTS_MAX RULE_COUNT /* each rule at most once */

/* Judges one session; fills out (at most RULES_VERDICTS_MAX, in rule order)
 * and returns the count. */
size_t rules_judge(const struct smtp_facts *f, const struct posture_view *pv,
                   const struct rule_policy *pols, size_t n_pols, struct verdict *out);
void rules_verdicts_clear(struct verdict *v, size_t n);

/* The DANE answer for the session's server (alerts/rules_dane.c), copied
 * (the engine's answer is borrowed for the call only). */
struct rule_dane {
    char host[FACTS_HOST_MAX]; /* "" when no host was looked up */
    bool answered;             /* false while the lookup is pending */
    enum dane_status status;
    size_t n_usable;          /* records usable for SMTP (RFC 7672 §3.1) */
    struct dane_entry *entry; /* a copy of the answer's entry, or NULL; owned */
    struct json_t *json;      /* the alert's dane object: host, records, status; owned */
};
/* The host whose TLSA records matter: the SNI, else the banner's host, else
 * the EHLO reply's (not an address literal); false when none or for a
 * submission session (DANE for SMTP governs MX delivery only). */
bool rules_dane_host(const struct smtp_facts *f, char out[FACTS_HOST_MAX]);
void rule_dane_set(struct rule_dane *dn, const char *host, const struct dane_answer *a);
/* Secure TLSA records with at least one usable: TLS is mandatory. */
bool rule_dane_in_force(const struct rule_dane *dn);
void rule_dane_clear(struct rule_dane *dn);
/* Whether record t matches the chain whose DANE digests are digests
 * (facts_x509.dane_digests): DANE-EE(3) the leaf, DANE-TA(2) a certificate
 * after it; selector Cert(0)/SPKI(1); Full(0) by its SHA-256, SHA2-256(1),
 * SHA2-512(2) (RFC 7671 §5.1, §5.2, RFC 7672 §3.1). */
bool rules_dane_match(const struct dane_tlsa *t, const char *digests);
/* The DANE rules, after rules_judge() filled out[0..n), for a server whose
 * DANE makes TLS mandatory. Without TLS: delivery.plaintext_dane for
 * content sent in clear; starttls.stripped when the EHLO reply lacks
 * STARTTLS (a verdict rules_judge() gave already is raised to high, with
 * the DANE reason in its evidence). With TLS <= 1.2 and the certificate
 * chain visible: dane.certificate_mismatch when no usable record matches
 * (rules_dane_match). Returns the new count. */
size_t rules_judge_dane(const struct smtp_facts *f, const struct rule_dane *dn, struct verdict *out,
                        size_t n);

/* Helpers shared with alert.c and posture.c. */
bool rules_host_is_ip_literal(const char *h);
bool rules_is_submission(const struct smtp_facts *f);

#endif
