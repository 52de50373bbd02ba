/* SPDX-License-Identifier: Apache-2.0 */
/* snapshot.c: load and save the MTA-STS policy snapshot file (JSON).
 * RFC 8259 (JSON, via jansson), RFC 3339 §5.6 (fetched_at, UTC "Z" form),
 * RFC 8461 §3.1/§3.2 (id and policy text, judged by mtasts_*). */
#include "policy/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "decode/sw.h"
#include "policy/lru.h"
#include "policy/mtasts_impl.h"

#define SNAPSHOT_MAX_BYTES (256L * 1024 * 1024) /* refuse larger files */
#define TIME_MAX           253402300799LL       /* 9999-12-31T23:59:59Z */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

bool snapshot_time_parse(const char *s, size_t len, int64_t *out)
{
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    unsigned y, mo, d, h, mi, se;

    /* YYYY-MM-DDTHH:MM:SSZ */
    if (len != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        s[19] != 'Z')
        return false;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap ? 1u : 0u))
        return false;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    return true;
}

void snapshot_time_format(int64_t t, char buf[32])
{
    struct tm tm;
    time_t tt;

    if (t < 0)
        t = 0;
    if (t > TIME_MAX)
        t = TIME_MAX;
    tt = (time_t)t;
    gmtime_r(&tt, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

char *snapshot_error_format(const struct snapshot_error *e, char *buf, size_t len)
{
    char q[96] = "";
    int n;

    if (len == 0)
        return buf;
    if (e->domain)
        mtasts_quote(q, sizeof q, e->domain, strlen(e->domain), 64);
    if (e->domain && e->line > 0)
        n = snprintf(buf, len, "%s: domain %s: line %d: %s", e->file, q, e->line, e->reason);
    else if (e->domain)
        n = snprintf(buf, len, "%s: domain %s: %s", e->file, q, e->reason);
    else if (e->line > 0)
        n = snprintf(buf, len, "%s: line %d, column %d: %s", e->file, e->line, e->column,
                     e->reason);
    else
        n = snprintf(buf, len, "%s: %s", e->file, e->reason);
    (void)n;
    return buf;
}

/* Lowercases and strips one trailing dot into out[254]; false with reason
 * when the result is no valid domain. */
static bool normalise_domain(const char *in, char out[254], char *reason, size_t rlen)
{
    size_t n = strlen(in);

    if (n > 0 && in[n - 1] == '.')
        n--;
    if (n > 253) {
        snprintf(reason, rlen, "not a valid domain name: name is %zu octets, more than 253", n);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[n] = '\0';
    char why[96];
    if (!mtasts_domain_is_valid(out, n, why, sizeof why)) {
        snprintf(reason, rlen, "not a valid domain name: %s", why);
        return false;
    }
    return true;
}

struct load_ctx {
    const char *path;
    snapshot_error_cb on_error;
    void *arg;
    struct snapshot_stats *st;
};

__attribute__((format(printf, 4, 5))) static void
entry_error(struct load_ctx *c, const char *domain, int line, const char *fmt, ...)
{
    char reason[256];
    va_list ap;

    c->st->rejected++;
    if (!c->on_error)
        return;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    struct snapshot_error e = {c->path, domain, line, 0, reason};
    c->on_error(c->arg, &e);
}

static void file_error(const char *path, snapshot_error_cb on_error, void *arg, int line,
                       int column, const char *reason)
{
    if (!on_error)
        return;
    struct snapshot_error e = {path, NULL, line, column, reason};
    on_error(arg, &e);
}

/* Checks one entry; on success calls on_entry. Returns non-zero only to stop. */
static int load_entry(struct load_ctx *c, struct lru *seen, const char *key, json_t *v,
                      snapshot_entry_cb on_entry)
{
    char dom[254], reason[160], q[96];
    json_t *jid, *jpol, *jat;
    int64_t at;

    if (!normalise_domain(key, dom, reason, sizeof reason)) {
        entry_error(c, key, 0, "%s", reason);
        return 0;
    }
    if (lru_peek(seen, dom)) {
        entry_error(c, key, 0, "duplicate of an earlier entry for %s", dom);
        return 0;
    }
    if (lru_put(seen, dom, (void *)1) != SW_OK) {
        entry_error(c, key, 0, "out of memory");
        return 0;
    }
    if (!json_is_object(v)) {
        entry_error(c, key, 0, "entry is not a JSON object");
        return 0;
    }
    jid = json_object_get(v, "id");
    jpol = json_object_get(v, "policy");
    jat = json_object_get(v, "fetched_at");
    if (!jid || !json_is_string(jid)) {
        entry_error(c, key, 0, jid ? "\"id\" is not a string" : "\"id\" missing");
        return 0;
    }
    if (!mtasts_id_is_valid(json_string_value(jid), json_string_length(jid))) {
        mtasts_quote(q, sizeof q, json_string_value(jid), json_string_length(jid), 40);
        entry_error(c, key, 0, "id %s is not 1-32 letters or digits", q);
        return 0;
    }
    if (!jpol || !json_is_string(jpol)) {
        entry_error(c, key, 0, jpol ? "\"policy\" is not a string" : "\"policy\" missing");
        return 0;
    }
    if (!jat || !json_is_string(jat)) {
        entry_error(c, key, 0, jat ? "\"fetched_at\" is not a string" : "\"fetched_at\" missing");
        return 0;
    }
    if (!snapshot_time_parse(json_string_value(jat), json_string_length(jat), &at)) {
        mtasts_quote(q, sizeof q, json_string_value(jat), json_string_length(jat), 40);
        entry_error(c, key, 0, "fetched_at %s is not an RFC 3339 UTC time YYYY-MM-DDTHH:MM:SSZ", q);
        return 0;
    }
    if (at < 0) {
        /* snapshot_save refuses it: one such entry would stop every save */
        mtasts_quote(q, sizeof q, json_string_value(jat), json_string_length(jat), 40);
        entry_error(c, key, 0, "fetched_at %s is before 1970", q);
        return 0;
    }
    struct mtasts_policy pol;
    struct mtasts_error perr;
    const char *text = json_string_value(jpol);
    size_t tl = json_string_length(jpol);
    int rc = mtasts_policy_parse(text, tl, &pol, &perr);
    if (rc == SW_ENOMEM) {
        entry_error(c, key, 0, "out of memory");
        return 0;
    }
    if (rc != SW_OK) {
        entry_error(c, key, perr.line, "%s", perr.reason);
        return 0;
    }
    struct snapshot_entry e = {dom, json_string_value(jid), text, tl, &pol, at};
    rc = on_entry ? on_entry(c->arg, &e) : 0;
    mtasts_policy_clear(&pol);
    if (rc == 0)
        c->st->loaded++;
    return rc;
}

/* ---- loading entry by entry ----
 * The file is mapped and its top-level object walked by hand: jansson
 * decodes one key and one entry at a time, and pages already read are
 * dropped, so memory holds one entry's JSON, not the whole tree. A first
 * walk only checks the document (and exact duplicate keys); anything it
 * does not accept (a syntax error, a top level that is no object, an entry
 * that is no object) falls back to the whole-file parse, which gives
 * jansson's own message. */

struct walk {
    const char *buf;
    size_t len, pos, dropped;
};

static void skip_ws(struct walk *w)
{
    while (w->pos < w->len && (w->buf[w->pos] == ' ' || w->buf[w->pos] == '\t' ||
                               w->buf[w->pos] == '\n' || w->buf[w->pos] == '\r'))
        w->pos++;
}

/* Gives back the pages wholly behind the cursor. */
static void drop_behind(struct walk *w)
{
    size_t pg = 1u << 20;
    size_t upto = w->pos / pg * pg;
    if (upto > w->dropped) {
        (void)madvise((char *)w->buf + w->dropped, upto - w->dropped, MADV_DONTNEED);
        w->dropped = upto;
    }
}

static json_t *walk_value(struct walk *w, bool want_string)
{
    json_error_t je;
    json_t *v = json_loadb(w->buf + w->pos, w->len - w->pos,
                           JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &je);
    if (!v)
        return NULL;
    if (want_string ? !json_is_string(v) : !json_is_object(v)) {
        json_decref(v); /* objects and strings end at their last byte; others may not */
        return NULL;
    }
    w->pos += je.position;
    return v;
}

/* Walks the top-level object: check_only records the keys in seen, else
 * each entry goes to load_entry. Returns 1 when the document is accepted
 * (*stop_rc set when on_entry stopped), 0 for the whole-file parse. */
static int walk_entries(struct walk *w, struct load_ctx *c, struct lru *seen, bool check_only,
                        snapshot_entry_cb on_entry, int *stop_rc)
{
    w->pos = 0;
    w->dropped = 0;
    skip_ws(w);
    if (w->pos >= w->len || w->buf[w->pos] != '{')
        return 0;
    w->pos++;
    skip_ws(w);
    if (w->pos < w->len && w->buf[w->pos] == '}') {
        w->pos++;
    } else {
        for (;;) {
            json_t *k = walk_value(w, true);
            if (!k)
                return 0;
            skip_ws(w);
            if (w->pos >= w->len || w->buf[w->pos] != ':') {
                json_decref(k);
                return 0;
            }
            w->pos++;
            skip_ws(w);
            json_t *v = walk_value(w, false);
            if (!v) {
                json_decref(k);
                return 0;
            }
            const char *key = json_string_value(k);
            int rc = 0;
            if (check_only) {
                /* an exact duplicate key is jansson's error: leave it to it */
                if (strlen(key) != json_string_length(k) || lru_peek(seen, key) ||
                    lru_put(seen, key, (void *)1) != SW_OK)
                    rc = -1;
            } else {
                rc = load_entry(c, seen, key, v, on_entry);
            }
            json_decref(v);
            json_decref(k);
            if (rc != 0) {
                if (check_only)
                    return 0;
                *stop_rc = rc;
                return 1;
            }
            drop_behind(w);
            skip_ws(w);
            if (w->pos < w->len && w->buf[w->pos] == ',') {
                w->pos++;
                skip_ws(w);
                continue;
            }
            if (w->pos < w->len && w->buf[w->pos] == '}') {
                w->pos++;
                break;
            }
            return 0;
        }
    }
    skip_ws(w);
    return w->pos == w->len;
}

/* 1: loaded (or stopped, *rc set); 0: use the whole-file parse. */
static int load_mapped(FILE *f, size_t size, struct load_ctx *c, snapshot_entry_cb on_entry,
                       int *rc)
{
    if (size == 0)
        return 0;
    void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fileno(f), 0);
    if (m == MAP_FAILED)
        return 0;
    struct walk w = {m, size, 0, 0};
    int ok = 0, stop = SW_OK;
    struct lru *seen = lru_new(size / 4 + 1, NULL);
    if (seen && walk_entries(&w, c, seen, true, NULL, &stop) == 1) {
        lru_free(seen);
        seen = lru_new(size / 4 + 1, NULL);
        if (seen) {
            ok = walk_entries(&w, c, seen, false, on_entry, &stop);
        }
    }
    lru_free(seen);
    munmap(m, size);
    *rc = stop;
    return ok;
}

int snapshot_load(const char *path, snapshot_entry_cb on_entry, snapshot_error_cb on_error,
                  void *arg, struct snapshot_stats *st)
{
    struct snapshot_stats dummy;
    json_error_t je;
    struct stat sb;
    char reason[256];
    FILE *f;
    json_t *root;

    if (!st)
        st = &dummy;
    memset(st, 0, sizeof *st);
    f = fopen(path, "rb");
    if (!f) {
        snprintf(reason, sizeof reason, "cannot open: %s", strerror(errno));
        file_error(path, on_error, arg, 0, 0, reason);
        return SW_EIO;
    }
    if (fstat(fileno(f), &sb) != 0)
        sb.st_size = 0; /* the whole-file parse reports what is wrong */
    if (sb.st_size > SNAPSHOT_MAX_BYTES) {
        snprintf(reason, sizeof reason, "file is %lld bytes, more than %ld", (long long)sb.st_size,
                 SNAPSHOT_MAX_BYTES);
        fclose(f);
        file_error(path, on_error, arg, 0, 0, reason);
        return SW_EIO;
    }
    struct load_ctx c = {path, on_error, arg, st};
    int mrc;
    if (sb.st_size > 0 && load_mapped(f, (size_t)sb.st_size, &c, on_entry, &mrc)) {
        fclose(f);
        return mrc;
    }
    root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    if (!root) {
        snprintf(reason, sizeof reason, "not valid JSON: %s", je.text);
        file_error(path, on_error, arg, je.line, je.column, reason);
        return SW_EPROTO;
    }
    if (!json_is_object(root)) {
        file_error(path, on_error, arg, 0, 0, "top level is not a JSON object");
        json_decref(root);
        return SW_EPROTO;
    }

    struct lru *seen = lru_new(json_object_size(root) + 1, NULL);
    if (!seen) {
        json_decref(root);
        file_error(path, on_error, arg, 0, 0, "out of memory");
        return SW_ENOMEM;
    }
    const char *key;
    json_t *v;
    int rc = SW_OK;
    json_object_foreach(root, key, v)
    {
        rc = load_entry(&c, seen, key, v, on_entry);
        if (rc != 0)
            break;
    }
    lru_free(seen);
    json_decref(root);
    return rc;
}

struct save_row {
    char domain[254];
    const struct snapshot_item *item;
};

static int row_cmp(const void *a, const void *b)
{
    return strcmp(((const struct save_row *)a)->domain, ((const struct save_row *)b)->domain);
}

__attribute__((format(printf, 3, 4))) static int save_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
    va_list ap;
    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return 0;
}

static json_t *build_json(const char *path, struct save_row *rows, size_t n, char *err,
                          size_t errlen, int *rc)
{
    json_t *root = json_object();
    char reason[160], q[96];

    *rc = SW_ENOMEM;
    if (!root)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const struct snapshot_item *it = rows[i].item;
        char ts[32];
        struct mtasts_policy pol;
        struct mtasts_error perr;

        *rc = SW_EPROTO;
        if (i > 0 && strcmp(rows[i - 1].domain, rows[i].domain) == 0) {
            save_err(err, errlen, "%s: domain \"%s\": listed twice", path, rows[i].domain);
            goto fail;
        }
        if (!it->id || !mtasts_id_is_valid(it->id, strlen(it->id))) {
            mtasts_quote(q, sizeof q, it->id ? it->id : "", it->id ? strlen(it->id) : 0, 40);
            save_err(err, errlen, "%s: domain \"%s\": id %s is not 1-32 letters or digits", path,
                     rows[i].domain, q);
            goto fail;
        }
        if (it->fetched_at < 0 || it->fetched_at > TIME_MAX) {
            save_err(err, errlen, "%s: domain \"%s\": fetched_at %lld out of range", path,
                     rows[i].domain, (long long)it->fetched_at);
            goto fail;
        }
        int prc =
            mtasts_policy_parse(it->text ? it->text : "", it->text ? it->text_len : 0, &pol, &perr);
        if (prc != SW_OK) {
            char m[200];
            save_err(err, errlen, "%s: domain \"%s\": %s", path, rows[i].domain,
                     mtasts_error_format(&perr, m, sizeof m));
            *rc = prc == SW_ENOMEM ? SW_ENOMEM : SW_EPROTO;
            goto fail;
        }
        mtasts_policy_clear(&pol);
        snapshot_time_format(it->fetched_at, ts);
        json_t *e = json_object();
        json_t *t = json_stringn(it->text, it->text_len);
        if (!e || !t || json_object_set_new(e, "id", json_string(it->id)) ||
            json_object_set_new(e, "policy", t) ||
            json_object_set_new(e, "fetched_at", json_string(ts)) ||
            json_object_set_new(root, rows[i].domain, e)) {
            (void)reason;
            save_err(err, errlen, "%s: out of memory", path);
            *rc = SW_ENOMEM;
            goto fail;
        }
    }
    *rc = SW_OK;
    return root;
fail:
    json_decref(root);
    return NULL;
}

int snapshot_save(const char *path, const struct snapshot_item *items, size_t n, char *err,
                  size_t errlen)
{
    struct save_row *rows = NULL;
    json_t *root;
    char reason[160];
    int rc;

    if (err && errlen)
        err[0] = '\0';
    if (n > 0) {
        rows = calloc(n, sizeof *rows);
        if (!rows) {
            save_err(err, errlen, "%s: out of memory", path);
            return SW_ENOMEM;
        }
    }
    for (size_t i = 0; i < n; i++) {
        rows[i].item = &items[i];
        if (!items[i].domain ||
            !normalise_domain(items[i].domain, rows[i].domain, reason, sizeof reason)) {
            char q[96];
            const char *d = items[i].domain ? items[i].domain : "";
            mtasts_quote(q, sizeof q, d, strlen(d), 64);
            save_err(err, errlen, "%s: domain %s: %s", path, q,
                     items[i].domain ? reason : "no domain");
            free(rows);
            return SW_EPROTO;
        }
    }
    if (n > 1)
        qsort(rows, n, sizeof *rows, row_cmp);
    root = build_json(path, rows, n, err, errlen, &rc);
    free(rows);
    if (!root)
        return rc;

    /* Temporary file beside the target, then rename: readers see the old
     * or the new file, never a torn one. */
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 8);
    if (!tmp) {
        json_decref(root);
        save_err(err, errlen, "%s: out of memory", path);
        return SW_ENOMEM;
    }
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".XXXXXX", 8);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        save_err(err, errlen, "%s: cannot create a temporary file: %s", path, strerror(errno));
        free(tmp);
        json_decref(root);
        return SW_EIO;
    }
    (void)fchmod(fd, 0644);
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        save_err(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        close(fd);
        goto io_fail;
    }
    errno = 0;
    if (json_dumpf(root, f, JSON_INDENT(2)) != 0 || fputc('\n', f) == EOF || fflush(f) != 0 ||
        fsync(fileno(f)) != 0) {
        save_err(err, errlen, "%s: cannot write: %s", path, strerror(errno ? errno : EIO));
        fclose(f);
        goto io_fail;
    }
    if (fclose(f) != 0) {
        save_err(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        goto io_fail;
    }
    if (rename(tmp, path) != 0) {
        save_err(err, errlen, "%s: cannot rename the temporary file into place: %s", path,
                 strerror(errno));
        goto io_fail;
    }
    /* Make the rename durable. */
    char *slash = strrchr(tmp, '/');
    if (slash)
        slash[slash == tmp ? 1 : 0] = '\0';
    int dfd = open(slash ? tmp : ".", O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(tmp);
    json_decref(root);
    return SW_OK;
io_fail:
    unlink(tmp);
    free(tmp);
    json_decref(root);
    return SW_EIO;
}
