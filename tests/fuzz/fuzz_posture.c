/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_posture.c: libFuzzer target for the learned-posture state-file loader
 * (alerts/posture.c, --state-file): the input is the file. Round trip: a
 * state that loaded is saved, the saved file must load into a fresh posture
 * and save again byte for byte the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alerts/posture.h"
#include "decode/sw.h"
#include "tests/fuzz/fuzz_input.h"

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        abort();
    char *b = NULL;
    size_t cap = 0;
    *n = 0;
    for (;;) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 4096;
            b = realloc(b, cap);
            if (!b)
                abort();
        }
        size_t got = fread(b + *n, 1, cap - *n, f);
        if (!got)
            break;
        *n += got;
    }
    fclose(f);
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char in[300], out1[300], out2[300], err[512] = "";
    const char *dir = fuzz_scratch_dir();
    snprintf(in, sizeof(in), "%s/state.json", dir);
    snprintf(out1, sizeof(out1), "%s/state1.json", dir);
    snprintf(out2, sizeof(out2), "%s/state2.json", dir);
    fuzz_write_file(in, data, size);
    struct posture *p = posture_new(64, 30 * 86400, 0);
    if (!p)
        abort();
    int rc = posture_load(p, in, err, sizeof(err));
    unlink(in);
    if (rc != SW_OK) {
        if (!err[0])
            abort();
        posture_free(p);
        return 0;
    }
    if (posture_save(p, out1, err, sizeof(err)) != SW_OK)
        abort();
    posture_free(p);
    p = posture_new(64, 30 * 86400, 0);
    if (posture_load(p, out1, err, sizeof(err)) != SW_OK)
        abort(); /* a saved state must load */
    if (posture_save(p, out2, err, sizeof(err)) != SW_OK)
        abort();
    posture_free(p);
    size_t n1, n2;
    char *a = slurp(out1, &n1), *b = slurp(out2, &n2);
    if (n1 != n2 || memcmp(a, b, n1) != 0)
        abort();
    free(a);
    free(b);
    unlink(out1);
    unlink(out2);
    return 0;
}
