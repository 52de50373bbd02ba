/* SPDX-License-Identifier: Apache-2.0 */
/* mtasts.h: MTA-STS text formats (RFC 8461 §3.1, §3.2) and MX matching
 * (§4.1) (policy/mtasts_*.c). Pure functions: no I/O, no global state. A
 * rejection fills struct mtasts_error with the 1-based line and the reason. */
#ifndef SW_MTASTS_H
#define SW_MTASTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MTASTS_MAX_BODY 65536 /* policy body cap (§3.3) */
#define MTASTS_MX_MAX 64      /* mx patterns kept */
#define MTASTS_MAX_AGE_MAX 31557600u

enum mtasts_mode {
    MTASTS_MODE_NONE = 0,
    MTASTS_MODE_TESTING,
    MTASTS_MODE_ENFORCE,
};
const char *mtasts_mode_str(enum mtasts_mode m); /* "none", "testing", "enforce" */

struct mtasts_policy {
    enum mtasts_mode mode;
    char *mx[MTASTS_MX_MAX];
    size_t n_mx;
    uint32_t max_age;
};

struct mtasts_error {
    int line;          /* 1-based line of the policy text, 0 when not line-bound */
    char reason[160];
};

/* Parses a policy body; SW_OK or SW_EPROTO with err filled. On success the
 * caller releases out with mtasts_policy_clear(). */
int mtasts_policy_parse(const char *text, size_t len, struct mtasts_policy *out,
                        struct mtasts_error *err);
void mtasts_policy_clear(struct mtasts_policy *p);
int mtasts_policy_copy(struct mtasts_policy *dst, const struct mtasts_policy *src);

/* Parses one TXT record (strings already concatenated). SW_OK with id filled;
 * SW_AGAIN when the record is not an STSv1 record (to be discarded);
 * SW_EPROTO when it is STSv1 but malformed. */
int mtasts_txt_parse(const char *txt, size_t len, char id[33], struct mtasts_error *err);

/* §4.1: case-insensitive, trailing dot ignored, "*." matches exactly one
 * leftmost label; IP literals never match. */
bool mtasts_mx_pattern_match(const char *pattern, const char *host);
bool mtasts_mx_match(const struct mtasts_policy *p, const char *host);

#endif
