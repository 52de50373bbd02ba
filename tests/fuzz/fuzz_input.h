/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_input.h: helpers shared by the fuzz targets of tests/fuzz: a fuzz
 * input written to an anonymous in-memory file (memfd) for parsers that open
 * a path, and a scratch folder for those that write beside their input. */
#ifndef SW_FUZZ_INPUT_H
#define SW_FUZZ_INPUT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Writes data to a new memfd; path receives "/proc/self/fd/N" (opening it
 * gives a new file description at offset 0). Returns the fd, to close after
 * the run; aborts when the kernel refuses (no memfd: nothing to fuzz). */
static inline int fuzz_memfd(const uint8_t *data, size_t size, char path[64])
{
    int fd = memfd_create("fuzz-input", 0);
    if (fd < 0)
        abort();
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0)
            abort();
        off += (size_t)n;
    }
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

/* A private folder (made once per process, under TMPDIR, else /dev/shm when
 * there is one, else /tmp; removed at exit when empty) for inputs that must be real files beside
 * others. */
static char fuzz_dir[256];

static inline void fuzz_scratch_rmdir(void)
{
    rmdir(fuzz_dir);
}

static inline const char *fuzz_scratch_dir(void)
{
    char *dir = fuzz_dir;
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        if (!t || !t[0])
            t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof(fuzz_dir), "%s/sw-fuzz-XXXXXX", t);
        if (!mkdtemp(dir))
            abort();
        atexit(fuzz_scratch_rmdir);
    }
    return dir;
}

/* Writes size bytes of data to path (created or truncated). */
static inline void fuzz_write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size))
        abort();
    fclose(f);
}

#endif
