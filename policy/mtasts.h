/* SPDX-License-Identifier: Apache-2.0 */
/* mtasts.h: MTA-STS text formats (RFC 8461 §3.1, §3.2) and MX matching
 * (§4.1) (policy/mtasts_*.c). Pure functions: no I/O, no global state. A
 * rejection fills struct mtasts_error with the 1-based line and the reason. */
#ifndef SW_MTASTS_H
#define SW_MTASTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MTASTS_MAX_BODY    65536 /* policy body cap (§3.3) */
#define MTASTS_MX_MAX      64    /* mx patterns kept */
#define MTASTS_MAX_AGE_MAX 31557600u
#define MTASTS_ID_MAX      32 /* §3.1: id is 1*32(ALPHA / DIGIT) */

enum mtasts_mode {
    MTASTS_MODE_NONE = 0,
    MTASTS_MODE_TESTING,
    MTASTS_MODE_ENFORCE,
};
const char *mtasts_mode_str(enum mtasts_mode m); /* "none", "testing", "enforce" */

struct mtasts_policy {
    enum mtasts_mode mode;
    char **mx; /* n_mx patterns as served (case kept), NUL-terminated: one
                  allocation sized to the list (NULL when empty) */
    size_t n_mx;
    uint32_t max_age;
};

struct mtasts_error {
    int line;         /* 1-based line of the policy text, 0 when not line-bound */
    char reason[160]; /* without the "line N: " prefix; attacker bytes escaped */
};

/* Parses a policy body (§3.2, to the letter of its ABNF):
 * - fields "name:" *WSP value *WSP, one per line, lines end in LF or CRLF
 *   (the last terminator is optional); no leading whitespace, no whitespace
 *   before ':', no empty lines, no control characters, UTF-8 only in
 *   extension values;
 * - names and values are case-sensitive ("Mode" is an extension field);
 * - version (STSv1), mode (none/testing/enforce) and max_age (1*10DIGIT,
 *   <= 31557600; 0 is allowed by the ABNF and accepted) required, in any
 *   order (the ABNF does not order policy fields); for a repeated field
 *   other than mx the first instance wins, later ones are only checked as
 *   extension fields;
 * - mx: ["*."] Domain (RFC 5321 §4.1.2, labels <= 63, name <= 253), one per
 *   line, at least one unless mode is none, at most MTASTS_MX_MAX;
 * - extension fields (name (ALPHA/DIGIT) *31(ALPHA/DIGIT/"_"/"-"/".")) ignored;
 * - more than MTASTS_MAX_BODY bytes rejected.
 * Returns SW_OK, SW_EPROTO (malformed) or SW_ELIMIT (more than MTASTS_MX_MAX
 * mx patterns), with err filled, or SW_ENOMEM. On success the caller
 * releases out with mtasts_policy_clear(); on failure out is left cleared.
 * err may be NULL. */
int mtasts_policy_parse(const char *text, size_t len, struct mtasts_policy *out,
                        struct mtasts_error *err);
/* Frees the mx list and zeroes p; p may be NULL. */
void mtasts_policy_clear(struct mtasts_policy *p);
/* Deep copy: SW_OK or SW_ENOMEM (dst left cleared). dst is overwritten,
 * not cleared first. */
int mtasts_policy_copy(struct mtasts_policy *dst, const struct mtasts_policy *src);

/* Parses one TXT record (strings already concatenated), §3.1:
 *   v=STSv1 1*(*WSP ";" *WSP field) [*WSP ";" *WSP], field = id=1*32(ALPHA/DIGIT)
 *   or an extension name=value. SW_OK with id filled (NUL-terminated);
 * SW_AGAIN when the record is not an STSv1 record (does not begin with
 * "v=STSv1" followed by ';', WSP or its end: to be discarded);
 * SW_EPROTO when it is STSv1 but malformed (err filled, line 0). err may be
 * NULL. */
int mtasts_txt_parse(const char *txt, size_t len, char id[33], struct mtasts_error *err);

/* §4.1: case-insensitive, trailing dot ignored, "*." matches exactly one
 * leftmost label; IP literals (v4, v6, [bracketed]) never match; a host
 * that is not a host name (empty label, '*', space, control) never matches. */
bool mtasts_mx_pattern_match(const char *pattern, const char *host);
bool mtasts_mx_match(const struct mtasts_policy *p, const char *host);
/* True for "192.0.2.1", "2001:db8::1", "[192.0.2.1]", "[IPv6:2001:db8::1]". */
bool mtasts_is_ip_literal(const char *host);

/* "line 3: max_age ..." or just the reason when line is 0. Returns buf. */
char *mtasts_error_format(const struct mtasts_error *e, char *buf, size_t len);

/* True when id is 1-32 ALPHA/DIGIT (the §3.1 id). */
bool mtasts_id_is_valid(const char *id, size_t len);
/* Checks an RFC 5321 Domain (LDH labels of 1-63, at most 253 octets, no
 * trailing dot). On false, reason (if not NULL) says why, e.g.
 * "label 2 is empty". */
bool mtasts_domain_is_valid(const char *d, size_t len, char *reason, size_t reasonlen);

#endif
