/* SPDX-License-Identifier: Apache-2.0 */
/* pcapng.c: a small bounded pcapng block reader (draft-ietf-opsawg-pcapng)
 * for files whose interfaces use several link types, which libpcap 1.10
 * refuses. Reads SHB, IDB (if_tsresol, if_tsoffset), EPB, SPB and the
 * obsolete PB; skips other blocks; validates every length. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sensor/capture.h"

#define PCAPNG_SHB        0x0A0D0D0Au
#define PCAPNG_IDB        1u
#define PCAPNG_PB         2u
#define PCAPNG_SPB        3u
#define PCAPNG_EPB        6u
#define PCAPNG_BOM        0x1A2B3C4Du
#define PCAPNG_MAX_BLOCK  (16u << 20) /* larger blocks are refused as corrupt */
#define PCAPNG_MAX_IFACES 256
#define PCAPNG_PATH_MAX   512                     /* file name kept for messages */
#define PCAPNG_ERR_MAX    (PCAPNG_PATH_MAX + 128) /* any message: name and why */

struct pcapng_iface {
    int linktype;
    uint32_t snaplen;
    uint64_t units_per_sec; /* timestamp resolution */
    int64_t offset_sec;     /* if_tsoffset */
};

struct pcapng_reader {
    FILE *f;
    char path[PCAPNG_PATH_MAX];
    bool swap;
    bool in_section;
    struct pcapng_iface ifaces[PCAPNG_MAX_IFACES];
    uint32_t n_ifaces;
    uint8_t *blk;
    uint32_t blk_cap;
    uint64_t offset;
    uint64_t blocks;
};

static uint32_t rd32(const struct pcapng_reader *r, const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return r->swap ? __builtin_bswap32(v) : v;
}

static uint16_t rd16(const struct pcapng_reader *r, const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return r->swap ? __builtin_bswap16(v) : v;
}

static uint64_t rd64(const struct pcapng_reader *r, const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return r->swap ? __builtin_bswap64(v) : v;
}

/* Reads one whole block into r->blk; returns its type and length.
 * 1 ok, 0 clean end of file, -1 error. */
static int read_block(struct pcapng_reader *r, uint32_t *type, uint32_t *len, char *err,
                      size_t errlen)
{
    uint8_t hdr[12];
    size_t got = fread(hdr, 1, 8, r->f);
    if (got == 0 && feof(r->f))
        return 0;
    if (got != 8) {
        snprintf(err, errlen, "%s: truncated pcapng block header at offset %llu", r->path,
                 (unsigned long long)r->offset);
        return -1;
    }
    uint32_t t;
    memcpy(&t, hdr, 4);
    if (t == PCAPNG_SHB) {
        /* the byte order of a section is set by its SHB */
        if (fread(hdr + 8, 1, 4, r->f) != 4) {
            snprintf(err, errlen, "%s: truncated section header at offset %llu", r->path,
                     (unsigned long long)r->offset);
            return -1;
        }
        uint32_t bom;
        memcpy(&bom, hdr + 8, 4);
        if (bom == PCAPNG_BOM)
            r->swap = false;
        else if (__builtin_bswap32(bom) == PCAPNG_BOM)
            r->swap = true;
        else {
            snprintf(err, errlen, "%s: bad byte-order magic in section header at offset %llu",
                     r->path, (unsigned long long)r->offset);
            return -1;
        }
    } else if (!r->in_section) {
        snprintf(err, errlen, "%s: not a pcapng file (no section header)", r->path);
        return -1;
    }
    *type = rd32(r, hdr);
    *len = rd32(r, hdr + 4);
    if (*len < 12 || *len % 4 != 0 || *len > PCAPNG_MAX_BLOCK) {
        snprintf(err, errlen, "%s: bad pcapng block length %u at offset %llu", r->path, *len,
                 (unsigned long long)r->offset);
        return -1;
    }
    if (*len > r->blk_cap) {
        uint8_t *nb = realloc(r->blk, *len);
        if (!nb) {
            snprintf(err, errlen, "%s: out of memory for a %u-byte block", r->path, *len);
            return -1;
        }
        r->blk = nb;
        r->blk_cap = *len;
    }
    size_t have = t == PCAPNG_SHB ? 12 : 8;
    memcpy(r->blk, hdr, have);
    if (fread(r->blk + have, 1, *len - have, r->f) != *len - have) {
        snprintf(err, errlen, "%s: truncated pcapng block at offset %llu (%u bytes expected)",
                 r->path, (unsigned long long)r->offset, *len);
        return -1;
    }
    if (rd32(r, r->blk + *len - 4) != *len) {
        snprintf(err, errlen, "%s: pcapng block at offset %llu: trailing length differs", r->path,
                 (unsigned long long)r->offset);
        return -1;
    }
    r->offset += *len;
    r->blocks++;
    return 1;
}

static int parse_idb(struct pcapng_reader *r, uint32_t len, char *err, size_t errlen)
{
    if (len < 20) {
        snprintf(err, errlen, "%s: interface description block too short", r->path);
        return -1;
    }
    if (r->n_ifaces == PCAPNG_MAX_IFACES) {
        snprintf(err, errlen, "%s: more than %d interfaces", r->path, PCAPNG_MAX_IFACES);
        return -1;
    }
    struct pcapng_iface *ifc = &r->ifaces[r->n_ifaces++];
    ifc->linktype = rd16(r, r->blk + 8);
    ifc->snaplen = rd32(r, r->blk + 12);
    ifc->units_per_sec = 1000000;
    ifc->offset_sec = 0;
    /* options: code u16, length u16, value padded to 4 */
    uint32_t o = 16, end = len - 4;
    while (o + 4 <= end) {
        uint16_t code = rd16(r, r->blk + o), olen = rd16(r, r->blk + o + 2);
        if (code == 0)
            break;
        uint32_t padded = (olen + 3u) & ~3u;
        if (o + 4 + padded > end) {
            snprintf(err, errlen, "%s: interface option overruns its block", r->path);
            return -1;
        }
        const uint8_t *v = r->blk + o + 4;
        if (code == 9 && olen >= 1) { /* if_tsresol */
            uint8_t res = v[0];
            uint64_t u = 1;
            if (res & 0x80) {
                if ((res & 0x7F) > 63)
                    goto bad_res;
                u = 1ull << (res & 0x7F);
            } else {
                if (res > 19)
                    goto bad_res;
                for (uint8_t i = 0; i < res; i++)
                    u *= 10;
            }
            ifc->units_per_sec = u;
        } else if (code == 14 && olen == 8) { /* if_tsoffset */
            ifc->offset_sec = (int64_t)rd64(r, v);
        }
        o += 4 + padded;
    }
    return 0;
bad_res:
    snprintf(err, errlen, "%s: interface timestamp resolution out of range", r->path);
    return -1;
}

static sw_usec to_usec(const struct pcapng_iface *ifc, uint64_t t)
{
    uint64_t u = ifc->units_per_sec;
    uint64_t frac = t % u;
    uint64_t usec = (uint64_t)((unsigned __int128)frac * 1000000u / u);
    /* in unsigned arithmetic: a timestamp or offset from a corrupt file
     * wraps (as libpcap's pcapng reader does) instead of overflowing */
    uint64_t sec = t / u + (uint64_t)ifc->offset_sec;
    return (sw_usec)(sec * (uint64_t)SW_USEC_PER_SEC + usec);
}

struct pcapng_reader *pcapng_open(const char *path, char *err, size_t errlen)
{
    struct pcapng_reader *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    snprintf(r->path, sizeof(r->path), "%s", path);
    r->f = fopen(path, "rb");
    if (!r->f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        free(r);
        return NULL;
    }
    return r;
}

int pcapng_next(struct pcapng_reader *r, struct capture_pkt *out, char *err, size_t errlen)
{
    for (;;) {
        uint32_t type, len;
        int rc = read_block(r, &type, &len, err, errlen);
        if (rc <= 0)
            return rc;
        const uint8_t *b = r->blk;
        switch (type) {
        case PCAPNG_SHB:
            if (len < 28) {
                snprintf(err, errlen, "%s: section header block too short", r->path);
                return -1;
            }
            r->in_section = true;
            r->n_ifaces = 0;
            break;
        case PCAPNG_IDB:
            if (parse_idb(r, len, err, errlen) < 0)
                return -1;
            break;
        case PCAPNG_EPB:
        case PCAPNG_PB: {
            if (len < 32) {
                snprintf(err, errlen, "%s: packet block too short", r->path);
                return -1;
            }
            uint32_t ifid = type == PCAPNG_EPB ? rd32(r, b + 8) : rd16(r, b + 8);
            uint64_t t = ((uint64_t)rd32(r, b + 12) << 32) | rd32(r, b + 16);
            uint32_t caplen = rd32(r, b + 20), wire = rd32(r, b + 24);
            if (ifid >= r->n_ifaces) {
                snprintf(err, errlen, "%s: packet for undeclared interface %u", r->path, ifid);
                return -1;
            }
            if (caplen > len - 32) {
                snprintf(err, errlen, "%s: packet data overruns its block", r->path);
                return -1;
            }
            out->ts = to_usec(&r->ifaces[ifid], t);
            out->data = b + 28;
            out->caplen = caplen;
            out->len = wire < caplen ? caplen : wire;
            out->linktype = r->ifaces[ifid].linktype;
            return 1;
        }
        case PCAPNG_SPB: {
            if (len < 16 || r->n_ifaces == 0) {
                snprintf(err, errlen, "%s: bad simple packet block", r->path);
                return -1;
            }
            uint32_t wire = rd32(r, b + 8);
            uint32_t caplen = len - 16;
            if (wire < caplen)
                caplen = wire;
            if (r->ifaces[0].snaplen && caplen > r->ifaces[0].snaplen)
                caplen = r->ifaces[0].snaplen;
            out->ts = 0; /* simple packet blocks carry no timestamp */
            out->data = b + 12;
            out->caplen = caplen;
            out->len = wire;
            out->linktype = r->ifaces[0].linktype;
            return 1;
        }
        default:
            break; /* name resolution, statistics, custom...: skipped */
        }
    }
}

uint64_t pcapng_offset(const struct pcapng_reader *r)
{
    return r->offset;
}

void pcapng_close(struct pcapng_reader *r)
{
    if (!r)
        return;
    if (r->f)
        fclose(r->f);
    free(r->blk);
    free(r);
}

bool pcapng_has_mixed_linktypes(const char *path)
{
    char err[PCAPNG_ERR_MAX]; /* not shown: the real read reports the same error */
    struct pcapng_reader *r = pcapng_open(path, err, sizeof(err));
    if (!r)
        return false;
    uint8_t magic[4];
    bool mixed = false;
    if (fread(magic, 1, 4, r->f) != 4 || memcmp(magic, "\x0a\x0d\x0d\x0a", 4) != 0) {
        pcapng_close(r);
        return false;
    }
    rewind(r->f);
    int first = -1;
    /* walk the block headers only, a bounded number of them */
    for (int n = 0; n < 100000 && !mixed; n++) {
        uint32_t type, len;
        if (read_block(r, &type, &len, err, sizeof(err)) <= 0)
            break;
        if (type == PCAPNG_SHB)
            r->in_section = true;
        if (type == PCAPNG_IDB && len >= 20) {
            int lt = rd16(r, r->blk + 8);
            if (first < 0)
                first = lt;
            else if (lt != first)
                mixed = true;
        }
    }
    pcapng_close(r);
    return mixed;
}
