/* SPDX-License-Identifier: Apache-2.0 */
/* dane_file.c: TLSA records in presentation and wire form, DANE entries, and
 * their JSON form (snapshot file --dane-file / --save-dane, Redis values).
 * RFC 6698 §2 (TLSA RR), RFC 7672 §3.1 (usable records), RFC 3339 (times). */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "decode/sw.h"
#include "policy/dane.h"
#include "policy/snapshot.h"

static const char *const status_names[] = {"secure", "none", "insecure", "bogus", "unknown"};

const char *dane_status_str(enum dane_status s)
{
    return (unsigned)s < sizeof(status_names) / sizeof(status_names[0]) ? status_names[s] : "?";
}

bool dane_status_parse(const char *s, enum dane_status *out)
{
    for (unsigned i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++)
        if (strcmp(s, status_names[i]) == 0) {
            *out = (enum dane_status)i;
            return true;
        }
    return false;
}

const char *dane_source_str(enum dane_source s)
{
    switch (s) {
    case DANE_SRC_DNS:
        return "dns";
    case DANE_SRC_REDIS:
        return "redis";
    case DANE_SRC_FILE:
        return "file";
    }
    return "?";
}

char *dane_tlsa_format(const struct dane_tlsa *t, char *buf, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    int o = snprintf(buf, len, "%u %u %u ", t->usage, t->selector, t->mtype);
    size_t p = o > 0 ? (size_t)o : 0;
    for (size_t i = 0; i < t->len && p + 2 < len; i++) {
        buf[p++] = hex[t->data[i] >> 4];
        buf[p++] = hex[t->data[i] & 15];
    }
    if (p < len)
        buf[p] = 0;
    else if (len)
        buf[len - 1] = 0;
    return buf;
}

static bool parse_u8(const char **s, uint8_t *out)
{
    unsigned v = 0, n = 0;
    while (isdigit((unsigned char)**s) && n < 4) {
        v = v * 10 + (unsigned)(**s - '0');
        (*s)++;
        n++;
    }
    if (n == 0 || v > 255 || **s != ' ')
        return false;
    while (**s == ' ')
        (*s)++;
    *out = (uint8_t)v;
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

bool dane_tlsa_parse(const char *s, struct dane_tlsa *t, char *why, size_t whylen)
{
    memset(t, 0, sizeof(*t));
    if (!parse_u8(&s, &t->usage) || !parse_u8(&s, &t->selector) || !parse_u8(&s, &t->mtype)) {
        sw_set_err(why, whylen, "not \"USAGE SELECTOR MTYPE HEX\"");
        return false;
    }
    size_t n = strlen(s);
    if (n == 0 || n % 2 || n / 2 > DANE_MAX_DATA) {
        sw_set_err(why, whylen, "association data: not 1-%d bytes of hex", DANE_MAX_DATA);
        return false;
    }
    t->data = malloc(n / 2);
    if (!t->data) {
        sw_set_err(why, whylen, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(t->data);
            t->data = NULL;
            sw_set_err(why, whylen, "association data: not hex");
            return false;
        }
        t->data[i] = (unsigned char)(hi << 4 | lo);
    }
    t->len = (uint16_t)(n / 2);
    return true;
}

bool dane_tlsa_from_rdata(const unsigned char *rd, size_t len, struct dane_tlsa *t)
{
    memset(t, 0, sizeof(*t));
    if (len < 4 || len - 3 > DANE_MAX_DATA)
        return false;
    t->usage = rd[0];
    t->selector = rd[1];
    t->mtype = rd[2];
    t->len = (uint16_t)(len - 3);
    t->data = malloc(t->len);
    if (!t->data)
        return false;
    memcpy(t->data, rd + 3, t->len);
    return true;
}

bool dane_tlsa_is_usable(const struct dane_tlsa *t)
{
    if (t->usage != 2 && t->usage != 3)
        return false;
    if (t->selector > 1)
        return false;
    switch (t->mtype) {
    case 0:
        return t->len > 0;
    case 1:
        return t->len == 32;
    case 2:
        return t->len == 64;
    }
    return false;
}

void dane_entry_free(struct dane_entry *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++)
        free(e->rr[i].data);
    free(e->rr);
    free(e->why);
    free(e->host);
    free(e);
}

struct dane_entry *dane_entry_new(const char *host, enum dane_status st, const struct dane_tlsa *rr,
                                  size_t n, const char *why, int64_t fetched_at, int64_t ttl,
                                  enum dane_source src)
{
    struct dane_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->status = st;
    e->fetched_at = fetched_at;
    e->ttl = ttl;
    e->source = src;
    if (!(e->host = strdup(host)) || (why && !(e->why = strdup(why))))
        goto fail;
    if (n > DANE_MAX_RECORDS)
        n = DANE_MAX_RECORDS;
    if (n) {
        if (!(e->rr = calloc(n, sizeof(*e->rr))))
            goto fail;
        for (size_t i = 0; i < n; i++) {
            e->rr[i] = rr[i];
            e->rr[i].data = malloc(rr[i].len ? rr[i].len : 1);
            if (!e->rr[i].data) {
                e->n = i;
                goto fail;
            }
            memcpy(e->rr[i].data, rr[i].data, rr[i].len);
        }
        e->n = n;
    }
    return e;
fail:
    dane_entry_free(e);
    return NULL;
}

static json_t *entry_json(const struct dane_entry *e)
{
    char t[32];
    json_t *o = json_object(), *recs = json_array();
    if (!o || !recs) {
        json_decref(o);
        json_decref(recs);
        return NULL;
    }
    json_object_set_new(o, "status", json_string(dane_status_str(e->status)));
    for (size_t i = 0; i < e->n; i++) {
        char buf[DANE_MAX_DATA * 2 + 16];
        json_array_append_new(recs, json_string(dane_tlsa_format(&e->rr[i], buf, sizeof(buf))));
    }
    json_object_set_new(o, "records", recs);
    if (e->why)
        json_object_set_new(o, "why", json_string(e->why));
    snapshot_time_format(e->fetched_at, t);
    json_object_set_new(o, "fetched_at", json_string(t));
    json_object_set_new(o, "ttl", json_integer(e->ttl));
    return o;
}

char *dane_entry_to_json(const struct dane_entry *e)
{
    json_t *o = entry_json(e);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return s;
}

static struct dane_entry *entry_of(const char *host, json_t *v, enum dane_source src, char *why,
                                   size_t whylen)
{
    struct dane_tlsa rr[DANE_MAX_RECORDS];
    size_t n = 0;
    struct dane_entry *e = NULL;
    enum dane_status st;
    int64_t at;
    json_t *js = json_object_get(v, "status"), *jr = json_object_get(v, "records"),
           *jw = json_object_get(v, "why"), *jf = json_object_get(v, "fetched_at"),
           *jt = json_object_get(v, "ttl");
    if (!json_is_object(v)) {
        sw_set_err(why, whylen, "not an object");
        return NULL;
    }
    if (!json_is_string(js) || !dane_status_parse(json_string_value(js), &st) ||
        st == DANE_ST_UNKNOWN) {
        sw_set_err(why, whylen, "status: not secure, none, insecure or bogus");
        return NULL;
    }
    if (jr && !json_is_array(jr)) {
        sw_set_err(why, whylen, "records: not an array");
        return NULL;
    }
    if (st == DANE_ST_SECURE && json_array_size(jr) == 0) {
        sw_set_err(why, whylen, "records: a secure entry needs at least one");
        return NULL;
    }
    if (jr && json_array_size(jr) > DANE_MAX_RECORDS) {
        sw_set_err(why, whylen, "records: more than %d", DANE_MAX_RECORDS);
        return NULL;
    }
    if (jw && !json_is_string(jw)) {
        sw_set_err(why, whylen, "why: not a string");
        return NULL;
    }
    if (!json_is_string(jf) ||
        !snapshot_time_parse(json_string_value(jf), json_string_length(jf), &at) || at < 0) {
        sw_set_err(why, whylen, "fetched_at: not YYYY-MM-DDTHH:MM:SSZ");
        return NULL;
    }
    if (!json_is_integer(jt) || json_integer_value(jt) < 0) {
        sw_set_err(why, whylen, "ttl: not a number of seconds");
        return NULL;
    }
    for (size_t i = 0; i < json_array_size(jr); i++) {
        json_t *r = json_array_get(jr, i);
        char w[96];
        if (!json_is_string(r) || !dane_tlsa_parse(json_string_value(r), &rr[n], w, sizeof(w))) {
            sw_set_err(why, whylen, "records[%zu]: %s", i, json_is_string(r) ? w : "not a string");
            goto out;
        }
        n++;
    }
    e = dane_entry_new(host, st, rr, n, jw ? json_string_value(jw) : NULL, at,
                       json_integer_value(jt), src);
    if (!e)
        sw_set_err(why, whylen, "out of memory");
out:
    for (size_t i = 0; i < n; i++)
        free(rr[i].data);
    return e;
}

struct dane_entry *dane_entry_from_json(const char *host, const char *json, size_t len,
                                        enum dane_source src, char *why, size_t whylen)
{
    json_error_t je;
    json_t *v = json_loadb(json, len, 0, &je);
    if (!v) {
        sw_set_err(why, whylen, "not JSON: %s", je.text);
        return NULL;
    }
    struct dane_entry *e = entry_of(host, v, src, why, whylen);
    json_decref(v);
    return e;
}

/* lowercase, no trailing dot, LDH labels of 1-63: false otherwise */
static bool host_ok(const char *in, char out[256])
{
    size_t n = strlen(in);
    if (n && in[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return false;
    size_t lab = 0;
    for (size_t i = 0; i < n; i++) {
        char c = (char)tolower((unsigned char)in[i]);
        if (c == '.') {
            if (lab == 0)
                return false;
            lab = 0;
        } else if (isalnum((unsigned char)c) || c == '-' || c == '_') {
            if (++lab > 63)
                return false;
        } else {
            return false;
        }
        out[i] = c;
    }
    out[n] = 0;
    return lab > 0;
}

int dane_file_load(const char *path, dane_file_entry_cb on_entry, dane_file_error_cb on_error,
                   void *arg, size_t *loaded, size_t *rejected, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    size_t ok = 0, bad = 0;
    if (!root) {
        FILE *f = fopen(path, "r");
        if (!f) {
            sw_set_err(err, errlen, "%s: %s", path, strerror(errno));
            return SW_EIO;
        }
        fclose(f);
        sw_set_err(err, errlen, "%s: line %d, column %d: %s", path, je.line, je.column, je.text);
        return SW_EPROTO;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        sw_set_err(err, errlen, "%s: not a JSON object keyed by host", path);
        return SW_EPROTO;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        char host[256], why[256], line[768];
        struct dane_entry *e = NULL;
        if (!host_ok(key, host))
            snprintf(why, sizeof(why), "not a host name");
        else
            e = entry_of(host, v, DANE_SRC_FILE, why, sizeof(why));
        if (!e) {
            bad++;
            snprintf(line, sizeof(line), "%s: host \"%s\": %s", path, key, why);
            if (on_error)
                on_error(arg, line);
            continue;
        }
        ok++;
        on_entry(arg, e);
    }
    json_decref(root);
    if (loaded)
        *loaded = ok;
    if (rejected)
        *rejected = bad;
    return SW_OK;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct dane_entry *const *x = a, *const *y = b;
    return strcmp((*x)->host, (*y)->host);
}

int dane_file_save(const char *path, const struct dane_entry *const *entries, size_t n, char *err,
                   size_t errlen)
{
    const struct dane_entry **v = malloc((n ? n : 1) * sizeof(*v));
    json_t *root = json_object();
    char tmp[4096];
    int rc = SW_ENOMEM;
    if (!v || !root)
        goto out;
    memcpy(v, entries, n * sizeof(*v));
    qsort(v, n, sizeof(*v), cmp_entry);
    for (size_t i = 0; i < n; i++) {
        json_t *o = entry_json(v[i]);
        if (!o || json_object_set_new(root, v[i]->host, o) != 0)
            goto out;
    }
    if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp)) {
        rc = SW_EIO;
        sw_set_err(err, errlen, "%s: path too long", path);
        goto out;
    }
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        rc = SW_EIO;
        sw_set_err(err, errlen, "%s: cannot create a temporary file: %s", path, strerror(errno));
        goto out;
    }
    if (json_dumpf(root, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 || fputc('\n', f) == EOF ||
        fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fclose(f);
        unlink(tmp);
        rc = SW_EIO;
        sw_set_err(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        goto out;
    }
    fclose(f);
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        rc = SW_EIO;
        sw_set_err(err, errlen, "%s: cannot rename the temporary file into place: %s", path,
                   strerror(errno));
        goto out;
    }
    rc = SW_OK;
out:
    if (rc == SW_ENOMEM)
        sw_set_err(err, errlen, "%s: out of memory", path);
    json_decref(root);
    free(v);
    return rc;
}
