/* SPDX-License-Identifier: Apache-2.0 */
/* alertcmp.h: what the sensor tests that compare alert streams share:
 * telling a health record (event.dataset stripwatch.health, which shares
 * the alerts stream) from an alert, and dropping the fields that number
 * packets (a merged capture numbers them differently), and reading one
 * counter of a statistics line. Header-only, for tests; needs jansson and
 * cmocka (included before). */
#ifndef SW_TESTS_ALERTCMP_H
#define SW_TESTS_ALERTCMP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* True for the line (n bytes, no newline) of a health record. */
static inline bool alert_line_is_health(const char *line, size_t n)
{
    static const char key[] = "\"dataset\":\"stripwatch.health\"";
    return memmem(line, n, key, sizeof key - 1) != NULL;
}

/* Removes, at every depth of j, the integer members whose name holds
 * "packet" (counts too) and the "packet" objects (stripwatch.packet.first/last). */
static inline void alert_drop_packet_numbers(json_t *j)
{
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        void *it;
        json_object_foreach_safe(j, it, k, v)
        {
            if (strstr(k, "packet") && (json_is_integer(v) || !strcmp(k, "packet")))
                json_object_del(j, k);
            else
                alert_drop_packet_numbers(v);
        }
    } else if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++)
            alert_drop_packet_numbers(json_array_get(j, i));
    }
}

/* The value of key in the first stderr line starting with prefix (e.g.
 * "stripwatch: stats flows "); fails the test when either is missing. */
static inline unsigned long long stats_value(const char *err, const char *prefix, const char *key)
{
    const char *l = strstr(err, prefix);
    if (!l)
        fail_msg("no \"%s\" line in: %s", prefix, err);
    const char *end = strchr(l, '\n');
    char k[64];
    snprintf(k, sizeof k, " %s=", key);
    const char *v = strstr(l, k);
    assert_true(v && (!end || v < end));
    return strtoull(v + strlen(k), NULL, 10);
}

#endif
