/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_snapshot.c: libFuzzer target for the policy snapshot loader
 * (policy/snapshot.c, --policy-file): the input is the file (a memfd).
 * Every error is formatted as the sensor prints it. Round trip: the entries
 * the loader accepted (the last one per domain, as the cache keeps them) are
 * saved with snapshot_save, which must accept them, and loaded back: the
 * same number of entries, none rejected. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "decode/sw.h"
#include "policy/snapshot.h"
#include "tests/fuzz/fuzz_input.h"

struct kept {
    struct snapshot_item *v;
    size_t n;
};

static void on_error(void *arg, const struct snapshot_error *e)
{
    (void)arg;
    char buf[512];
    if (strlen(snapshot_error_format(e, buf, sizeof(buf))) >= sizeof(buf) || !e->reason)
        abort();
}

static int on_entry(void *arg, const struct snapshot_entry *e)
{
    struct kept *k = arg;
    if (!e->domain[0] || strlen(e->id) < 1 || strlen(e->id) > 32 || !e->policy ||
        strlen(e->text) > e->text_len)
        abort();
    for (size_t i = 0; i < k->n; i++) {
        if (strcmp(k->v[i].domain, e->domain) == 0) {
            free((char *)k->v[i].domain);
            free((char *)k->v[i].id);
            free((char *)k->v[i].text);
            k->v[i] = k->v[--k->n];
            break;
        }
    }
    struct snapshot_item *nv = realloc(k->v, (k->n + 1) * sizeof(*nv));
    if (!nv)
        abort();
    k->v = nv;
    char *text = malloc(e->text_len + 1);
    if (!text)
        abort();
    memcpy(text, e->text, e->text_len + 1);
    k->v[k->n++] =
        (struct snapshot_item){strdup(e->domain), strdup(e->id), text, e->text_len, e->fetched_at};
    return 0;
}

static int count_entry(void *arg, const struct snapshot_entry *e)
{
    (void)e;
    (*(size_t *)arg)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_memfd(data, size, path);
    struct kept k = {NULL, 0};
    struct snapshot_stats st = {0, 0};
    int rc = snapshot_load(path, on_entry, on_error, &k, &st);
    close(fd);
    if (rc != SW_OK && rc != SW_EPROTO && rc != SW_EIO && rc != SW_ENOMEM)
        abort();
    if (k.n) {
        char out[300], err[512];
        snprintf(out, sizeof(out), "%s/policies.json", fuzz_scratch_dir());
        if (snapshot_save(out, k.v, k.n, err, sizeof(err)) != SW_OK)
            abort(); /* an entry the loader accepted cannot be saved */
        size_t n = 0;
        struct snapshot_stats st2 = {0, 0};
        if (snapshot_load(out, count_entry, NULL, &n, &st2) != SW_OK || n != k.n ||
            st2.rejected != 0)
            abort();
        unlink(out);
    }
    for (size_t i = 0; i < k.n; i++) {
        free((char *)k.v[i].domain);
        free((char *)k.v[i].id);
        free((char *)k.v[i].text);
    }
    free(k.v);
    return 0;
}
