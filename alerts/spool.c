/* SPDX-License-Identifier: Apache-2.0 */
/* spool.c: bounded append-only on-disk alert spool with an acknowledged-seq
 * head file; the format and the crash/fsync guarantees are in spool.h.
 * Follows no RFC; files are POSIX (pwrite, flock, rename). */
#include "alerts/spool.h"
#include "alerts/alog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "decode/sw.h"

#define SPOOL_MAGIC    "stripwatch-spool 1 "
#define SPOOL_HDR_LEN  (sizeof(SPOOL_MAGIC) - 1 + 16 + 1)
#define SPOOL_RBUF     (2u * SPOOL_REC_MAX + 64)
#define SPOOL_HEAD_LEN 21

struct spool {
    char *path, *head_path, *tmp_path;
    int fd, head_fd;
    uint64_t max_bytes;
    char id[17];
    uint64_t size;  /* physical end of file */
    uint64_t head;  /* physical offset of the first unacknowledged record */
    uint64_t shift; /* logical = physical + shift */
    uint64_t acked_seq, last_seq, pending;
    /* where the last spool_read ended (logical) and the last valid seq up to
     * there: a read that continues from there judges seqs as scan() does */
    uint64_t rd_end, rd_seq;
    char *rbuf;
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return SW_EIO;
}

static int write_all_at(int fd, const char *buf, size_t len, uint64_t off)
{
    while (len) {
        ssize_t n = pwrite(fd, buf, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static ssize_t read_at(int fd, char *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static void new_id(char id[17])
{
    unsigned char r[8];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        uint64_t x = (uint64_t)getpid() ^ (uint64_t)(uintptr_t)id ^ (uint64_t)time(NULL);
        memcpy(r, &x, sizeof r);
    }
    for (int i = 0; i < 8; i++)
        snprintf(id + 2 * i, 3, "%02x", r[i]);
}

static int write_header(struct spool *sp)
{
    char hdr[SPOOL_HDR_LEN + 1];
    snprintf(hdr, sizeof hdr, SPOOL_MAGIC "%s\n", sp->id);
    return write_all_at(sp->fd, hdr, SPOOL_HDR_LEN, 0);
}

static int save_head(struct spool *sp)
{
    char b[SPOOL_HEAD_LEN + 1];
    snprintf(b, sizeof b, "%020" PRIu64 "\n", sp->acked_seq);
    return write_all_at(sp->head_fd, b, SPOOL_HEAD_LEN, 0);
}

/* "<digits> " -> seq, or 0 when malformed. */
static uint64_t parse_seq(const char *line, size_t len, size_t *json_off)
{
    uint64_t v = 0;
    size_t i = 0;
    while (i < len && i < 20 && line[i] >= '0' && line[i] <= '9')
        v = v * 10 + (uint64_t)(line[i++] - '0');
    if (i == 0 || i >= len || line[i] != ' ' || v == 0)
        return 0;
    *json_off = i + 1;
    return v;
}

/* Reads acked seq from the head file; false if missing or unreadable. */
static bool load_head(struct spool *sp, bool *existed)
{
    char b[64];
    ssize_t n = read_at(sp->head_fd, b, sizeof b - 1, 0);
    *existed = n > 0;
    if (n != SPOOL_HEAD_LEN || b[SPOOL_HEAD_LEN - 1] != '\n')
        return false;
    uint64_t v = 0;
    for (int i = 0; i < SPOOL_HEAD_LEN - 1; i++) {
        if (b[i] < '0' || b[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(b[i] - '0');
    }
    sp->acked_seq = v;
    return true;
}

/* Scans the records: finds the head, the last seq and the pending count;
 * cuts a torn tail. */
static int scan(struct spool *sp, char *err, size_t errlen)
{
    uint64_t off = SPOOL_HDR_LEN, prev_seq = 0, bad = 0;
    bool head_found = false;
    sp->head = sp->size;
    sp->pending = 0;
    while (off < sp->size) {
        size_t want = sp->size - off > SPOOL_RBUF ? SPOOL_RBUF : (size_t)(sp->size - off);
        ssize_t n = read_at(sp->fd, sp->rbuf, want, off);
        if (n <= 0)
            return fail(err, errlen, "spool %s: read: %s", sp->path,
                        n < 0 ? strerror(errno) : "short file");
        size_t pos = 0;
        bool progress = false;
        for (;;) {
            char *nl = memchr(sp->rbuf + pos, '\n', (size_t)n - pos);
            if (!nl)
                break;
            size_t llen = (size_t)(nl - (sp->rbuf + pos)), jo;
            uint64_t seq = parse_seq(sp->rbuf + pos, llen, &jo);
            if (seq && seq <= prev_seq)
                seq = 0;
            if (!seq)
                bad++;
            else
                prev_seq = seq;
            if (!head_found && seq > sp->acked_seq) {
                head_found = true;
                sp->head = off + pos;
            }
            if (head_found)
                sp->pending++;
            pos += llen + 1;
            progress = true;
        }
        if (!progress) {
            if (off + (uint64_t)n < sp->size)
                return fail(err, errlen,
                            "spool %s: line at offset %" PRIu64
                            " longer than %u bytes: not a stripwatch spool",
                            sp->path, off, SPOOL_RBUF);
            /* torn tail: a record without its newline */
            alerts_log(LOG_WARNING,
                       "spool %s: cut a torn record at offset %" PRIu64 " (%" PRIu64
                       " bytes; a crash during a write)",
                       sp->path, off, sp->size - off);
            if (ftruncate(sp->fd, (off_t)off) != 0)
                return fail(err, errlen, "spool %s: truncate: %s", sp->path, strerror(errno));
            sp->size = off;
            if (!head_found)
                sp->head = off;
            break;
        }
        off += pos;
    }
    if (bad)
        alerts_log(LOG_WARNING, "spool %s: %" PRIu64 " malformed line(s) skipped", sp->path, bad);
    sp->last_seq = prev_seq > sp->acked_seq ? prev_seq : sp->acked_seq;
    return SW_OK;
}

void spool_close(struct spool *sp)
{
    if (!sp)
        return;
    if (sp->fd >= 0) {
        spool_sync(sp);
        close(sp->fd);
    }
    if (sp->head_fd >= 0)
        close(sp->head_fd); /* releases the flock */
    free(sp->path);
    free(sp->head_path);
    free(sp->tmp_path);
    free(sp->rbuf);
    free(sp);
}

struct spool *spool_open(const char *path, uint64_t max_bytes, char *err, size_t errlen)
{
    struct spool *sp = calloc(1, sizeof *sp);
    if (!sp) {
        snprintf(err, errlen, "spool %s: out of memory", path);
        return NULL;
    }
    sp->fd = sp->head_fd = -1;
    sp->max_bytes = max_bytes;
    size_t pl = strlen(path);
    sp->path = strdup(path);
    sp->head_path = malloc(pl + 6);
    sp->tmp_path = malloc(pl + 5);
    sp->rbuf = malloc(SPOOL_RBUF);
    if (!sp->path || !sp->head_path || !sp->tmp_path || !sp->rbuf) {
        snprintf(err, errlen, "spool %s: out of memory", path);
        goto bad;
    }
    snprintf(sp->head_path, pl + 6, "%s.head", path);
    snprintf(sp->tmp_path, pl + 5, "%s.tmp", path);
    if (max_bytes < SPOOL_HDR_LEN + 64) {
        snprintf(err, errlen, "spool %s: bound %" PRIu64 " bytes is too small", path, max_bytes);
        goto bad;
    }
    sp->head_fd = open(sp->head_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (sp->head_fd < 0) {
        snprintf(err, errlen, "spool %s: %s", sp->head_path, strerror(errno));
        goto bad;
    }
    if (flock(sp->head_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "spool %s: in use by another process (%s is locked)", path,
                 sp->head_path);
        goto bad;
    }
    sp->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (sp->fd < 0) {
        snprintf(err, errlen, "spool %s: %s", path, strerror(errno));
        goto bad;
    }
    struct stat st;
    if (fstat(sp->fd, &st) != 0) {
        snprintf(err, errlen, "spool %s: %s", path, strerror(errno));
        goto bad;
    }
    sp->size = (uint64_t)st.st_size;
    bool head_existed;
    bool head_ok = load_head(sp, &head_existed);
    if (sp->size == 0) {
        new_id(sp->id);
        sp->acked_seq = 0;
        if (write_header(sp) != 0 || save_head(sp) != 0) {
            snprintf(err, errlen, "spool %s: write: %s", path, strerror(errno));
            goto bad;
        }
        sp->size = sp->head = SPOOL_HDR_LEN;
        return sp;
    }
    char hdr[SPOOL_HDR_LEN];
    if (read_at(sp->fd, hdr, SPOOL_HDR_LEN, 0) != (ssize_t)SPOOL_HDR_LEN ||
        memcmp(hdr, SPOOL_MAGIC, sizeof(SPOOL_MAGIC) - 1) != 0 || hdr[SPOOL_HDR_LEN - 1] != '\n' ||
        strspn(hdr + sizeof(SPOOL_MAGIC) - 1, "0123456789abcdef") != 16) {
        snprintf(err, errlen, "spool %s: not a stripwatch spool (bad header)", path);
        goto bad;
    }
    memcpy(sp->id, hdr + sizeof(SPOOL_MAGIC) - 1, 16);
    sp->id[16] = '\0';
    if (!head_ok) {
        /* Without the head we cannot know what Redis has: replay everything
         * under a new id (new dedup key): duplicates are possible, loss is not. */
        if (head_existed)
            alerts_log(LOG_WARNING,
                       "spool %s: %s unreadable; replaying the whole spool under a new id", path,
                       sp->head_path);
        sp->acked_seq = 0;
        new_id(sp->id);
        if (write_header(sp) != 0) {
            snprintf(err, errlen, "spool %s: write: %s", path, strerror(errno));
            goto bad;
        }
    }
    if (scan(sp, err, errlen) != SW_OK)
        goto bad;
    if (save_head(sp) != 0) {
        snprintf(err, errlen, "spool %s: write: %s", sp->head_path, strerror(errno));
        goto bad;
    }
    if (sp->pending == 0 && sp->size > SPOOL_HDR_LEN) {
        if (ftruncate(sp->fd, SPOOL_HDR_LEN) != 0) {
            snprintf(err, errlen, "spool %s: truncate: %s", path, strerror(errno));
            goto bad;
        }
        sp->size = sp->head = SPOOL_HDR_LEN;
    }
    return sp;
bad:
    spool_close(sp);
    return NULL;
}

/* Copies the unacknowledged records to PATH.tmp and renames it over PATH. */
static int compact(struct spool *sp)
{
    if (sp->head <= SPOOL_HDR_LEN)
        return SW_OK;
    int fd = open(sp->tmp_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return SW_EIO;
    int ofd = sp->fd;
    sp->fd = fd;
    int rc = write_header(sp);
    sp->fd = ofd;
    uint64_t off = sp->head, w = SPOOL_HDR_LEN;
    while (rc == 0 && off < sp->size) {
        size_t want = sp->size - off > SPOOL_RBUF ? SPOOL_RBUF : (size_t)(sp->size - off);
        ssize_t n = read_at(sp->fd, sp->rbuf, want, off);
        if (n <= 0 || write_all_at(fd, sp->rbuf, (size_t)n, w) != 0)
            rc = -1;
        off += (uint64_t)(n > 0 ? n : 0);
        w += (uint64_t)(n > 0 ? n : 0);
    }
    if (rc == 0 && fdatasync(fd) != 0)
        rc = -1;
    if (rc == 0 && rename(sp->tmp_path, sp->path) != 0)
        rc = -1;
    if (rc != 0) {
        close(fd);
        unlink(sp->tmp_path);
        return SW_EIO;
    }
    close(sp->fd);
    sp->fd = fd;
    sp->shift += sp->head - SPOOL_HDR_LEN;
    sp->size = w;
    sp->head = SPOOL_HDR_LEN;
    return SW_OK;
}

int spool_append(struct spool *sp, const char *json, size_t len, uint64_t *seq)
{
    if (len > SPOOL_REC_MAX)
        return SW_EPROTO;
    uint64_t s = sp->last_seq + 1;
    char pre[24];
    int pl = snprintf(pre, sizeof pre, "%" PRIu64 " ", s);
    uint64_t rl = (uint64_t)pl + len + 1;
    if (sp->size + rl > sp->max_bytes) {
        /* compact when the acknowledged prefix is worth reclaiming */
        if (sp->head > SPOOL_HDR_LEN && compact(sp) != SW_OK)
            return SW_EIO;
        if (sp->size + rl > sp->max_bytes)
            return SW_ELIMIT;
    }
    struct iovec iov[3] = {{pre, (size_t)pl}, {(void *)json, len}, {"\n", 1}};
    uint64_t off = sp->size;
    size_t done = 0;
    while (done < rl) {
        /* pwritev, restarted after a partial write */
        struct iovec v[3];
        int vn = 0;
        size_t skip = done;
        for (int i = 0; i < 3; i++) {
            if (skip >= iov[i].iov_len) {
                skip -= iov[i].iov_len;
                continue;
            }
            v[vn].iov_base = (char *)iov[i].iov_base + skip;
            v[vn].iov_len = iov[i].iov_len - skip;
            skip = 0;
            vn++;
        }
        ssize_t n = pwritev(sp->fd, v, vn, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (ftruncate(sp->fd, (off_t)off) != 0) {
                /* the torn record is cut at the next open */
            }
            return SW_EIO;
        }
        done += (size_t)n;
    }
    sp->size += rl;
    sp->last_seq = s;
    sp->pending++;
    *seq = s;
    return SW_OK;
}

size_t spool_read(struct spool *sp, uint64_t from, struct spool_rec *recs, size_t max)
{
    uint64_t off = from < sp->shift ? 0 : from - sp->shift;
    if (off < sp->head)
        off = sp->head;
    if (off >= sp->size || max == 0)
        return 0;
    /* as scan(): a seq not above the previous valid one is malformed (0);
     * from the head the previous valid seq is the acknowledged one */
    uint64_t prev = off > sp->head && off + sp->shift == sp->rd_end ? sp->rd_seq : sp->acked_seq;
    size_t want = sp->size - off > SPOOL_RBUF ? SPOOL_RBUF : (size_t)(sp->size - off);
    ssize_t n = read_at(sp->fd, sp->rbuf, want, off);
    if (n <= 0)
        return 0;
    size_t pos = 0, k = 0;
    while (k < max) {
        char *nl = memchr(sp->rbuf + pos, '\n', (size_t)n - pos);
        if (!nl)
            break;
        size_t llen = (size_t)(nl - (sp->rbuf + pos)), jo = 0;
        uint64_t seq = parse_seq(sp->rbuf + pos, llen, &jo);
        if (seq && seq <= prev)
            seq = 0;
        else if (seq)
            prev = seq;
        recs[k].seq = seq;
        recs[k].json = seq ? sp->rbuf + pos + jo : NULL;
        recs[k].len = seq ? llen - jo : 0;
        pos += llen + 1;
        recs[k].end = off + pos + sp->shift;
        k++;
    }
    if (k) {
        sp->rd_end = recs[k - 1].end;
        sp->rd_seq = prev;
    }
    return k;
}

int spool_ack(struct spool *sp, uint64_t seq, uint64_t end)
{
    uint64_t pe = end - sp->shift;
    if (end < sp->shift || pe <= sp->head || pe > sp->size)
        return SW_EPROTO;
    sp->head = pe;
    if (sp->pending)
        sp->pending--;
    if (seq)
        sp->acked_seq = seq;
    if (sp->head == sp->size) {
        /* all acknowledged: the head must be on disk before the records go
         * (it carries the last seq across restarts) */
        sp->pending = 0;
        if (save_head(sp) != 0)
            return SW_EIO;
        if (sp->size > SPOOL_HDR_LEN) {
            if (ftruncate(sp->fd, SPOOL_HDR_LEN) != 0)
                return SW_EIO;
            sp->shift += sp->size - SPOOL_HDR_LEN;
            sp->size = sp->head = SPOOL_HDR_LEN;
        }
    }
    return SW_OK;
}

/* Persists the acknowledged seq (after a batch). */
int spool_save_head(struct spool *sp)
{
    return save_head(sp) == 0 ? SW_OK : SW_EIO;
}

int spool_sync(struct spool *sp)
{
    int rc = SW_OK;
    if (save_head(sp) != 0 || fdatasync(sp->head_fd) != 0)
        rc = SW_EIO;
    if (fdatasync(sp->fd) != 0)
        rc = SW_EIO;
    return rc;
}

int spool_sync_begin(struct spool *sp, int fds[2])
{
    fds[0] = fds[1] = -1;
    if (save_head(sp) != 0)
        return SW_EIO;
    fds[0] = fcntl(sp->fd, F_DUPFD_CLOEXEC, 0);
    fds[1] = fcntl(sp->head_fd, F_DUPFD_CLOEXEC, 0);
    return fds[0] >= 0 && fds[1] >= 0 ? SW_OK : SW_EIO;
}

int spool_sync_end(int fds[2])
{
    int rc = SW_OK;
    for (int i = 0; i < 2; i++) {
        if (fds[i] < 0 || fdatasync(fds[i]) != 0)
            rc = SW_EIO;
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
    return rc;
}

uint64_t spool_head(const struct spool *sp)
{
    return sp->head + sp->shift;
}
uint64_t spool_tail(const struct spool *sp)
{
    return sp->size + sp->shift;
}
uint64_t spool_pending(const struct spool *sp)
{
    return sp->pending;
}
uint64_t spool_bytes(const struct spool *sp)
{
    return sp->size;
}
uint64_t spool_last_seq(const struct spool *sp)
{
    return sp->last_seq;
}
uint64_t spool_max_bytes(const struct spool *sp)
{
    return sp->max_bytes;
}
const char *spool_id(const struct spool *sp)
{
    return sp->id;
}
const char *spool_path(const struct spool *sp)
{
    return sp->path;
}
