/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_config.c: libFuzzer target for the config file (sensor/config.c,
 * libinih through its own line reader): the input is the file (a memfd),
 * loaded as --config FILE is (sensor_opts_load, as at SIGHUP: no
 * cross-checks of the result). Checks: the load succeeds, or fails with
 * exactly one error line `FILE:N: why` whose N is a line of the file; the
 * options are freed either way (leaks show under the sanitizers). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sensor/sensor.h"
#include "tests/fuzz/fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64], err[1024] = "";
    int fd = fuzz_memfd(data, size, path);
    char *argv[] = {"stripwatch", "--config", path, NULL};
    struct sensor_opts o;
    int rc = sensor_opts_load(&o, 3, argv, true, err, sizeof(err));
    sensor_opts_free(&o);
    close(fd);
    if (rc == -1) {
        if (err[0])
            abort();
        return 0;
    }
    if (rc != 2)
        abort();
    /* lines as the reader counts them: a last one without its newline counts */
    size_t lines = 0;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    if (size && data[size - 1] != '\n')
        lines++;
    size_t plen = strlen(path);
    if (strncmp(err, path, plen) != 0 || err[plen] != ':')
        abort();
    char *end;
    unsigned long line = strtoul(err + plen + 1, &end, 10);
    if (end == err + plen + 1 || end[0] != ':' || end[1] != ' ' || !end[2])
        abort();
    if (line < 1 || line > lines)
        abort();
    if (strchr(err, '\n') || strlen(err) >= sizeof(err) - 1)
        abort();
    return 0;
}
