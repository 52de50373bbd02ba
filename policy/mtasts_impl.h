/* SPDX-License-Identifier: Apache-2.0 */
/* mtasts_impl.h: helpers shared by policy/mtasts_*.c and snapshot.c (not a
 * contract): quoting attacker-controlled bytes into error reasons and the
 * RFC 5321 domain check with a label offset. */
#ifndef SW_MTASTS_IMPL_H
#define SW_MTASTS_IMPL_H

#include <stdbool.h>
#include <stddef.h>

/* Writes `"bytes"` into out: printable ASCII kept, '"' and '\\' escaped,
 * other bytes as \xNN; more than max input bytes are cut and "..." added
 * inside the quotes. Always NUL-terminates (when outlen > 0). */
void mtasts_quote(char *out, size_t outlen, const char *s, size_t n, size_t max);

/* mtasts_domain_is_valid() numbering labels from first_label. */
bool mtasts_domain_check(const char *d, size_t len, int first_label, char *reason,
                         size_t reasonlen);

#endif
