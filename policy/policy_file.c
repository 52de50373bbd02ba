/* SPDX-License-Identifier: Apache-2.0 */
/* policy_file.c: the policy engine's --policy-file snapshot: loaded at start
 * and on SIGHUP, saved by --save-policies (format: policy/snapshot.h).
 * RFC 8461 §5.1 (a cached policy stays in force until it expires). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "decode/sw.h"
#include "policy/lru.h"
#include "policy/policy.h"
#include "policy/policy_int.h"
#include "policy/snapshot.h"

static int on_file_entry(void *arg, const struct snapshot_entry *se)
{
    struct policy_engine *e = arg;
    struct dom *d = policy_dom_find(e, se->domain, false);
    if (!d && !(d = policy_dom_insert(e, se->domain, true)))
        return SW_ENOMEM;
    struct policy_entry *pe = policy_entry_new(se->domain, se->id, se->text, se->text_len,
                                               se->fetched_at, POLICY_SRC_FILE, NULL);
    if (!pe)
        return SW_ENOMEM;
    policy_install(e, d, pe);
    d->refresh_at = 0; /* online: check the TXT id on first use */
    d->file_gen = e->file_gen;
    e->stats.file_loaded++;
    return 0;
}

static void on_file_error(void *arg, const struct snapshot_error *se)
{
    struct policy_engine *e = arg;
    char buf[512];
    snapshot_error_format(se, buf, sizeof(buf));
    if (se->domain) {
        e->stats.file_rejected++;
        policy_log(LOG_WARNING, "%s", buf);
    } else {
        snprintf(e->load_err, sizeof(e->load_err), "%s", buf);
    }
}

int policy_engine_load_file(struct policy_engine *e, const char *path, char *err, size_t errlen)
{
    struct snapshot_stats st;
    e->load_err[0] = '\0';
    e->file_gen++;
    int r = snapshot_load(path, on_file_entry, on_file_error, e, &st);
    if (r == SW_EIO || r == SW_EPROTO) {
        if (e->load_err[0])
            sw_set_err(err, errlen, "%s", e->load_err);
        else
            sw_set_err(err, errlen, "%s: cannot load the policy file", path);
    } else if (r != SW_OK) {
        sw_set_err(err, errlen, "%s: %s", path, sw_strerror(r));
    }
    return r;
}

/* The records whose policy came from a policy file load before the last. */
struct stale_ctx {
    unsigned gen;
    struct dom **doms;
    size_t n, cap;
};

static int collect_stale(void *arg, const char *key, void *value)
{
    (void)key;
    struct stale_ctx *sc = arg;
    struct dom *d = value;
    if (!d->entry || d->entry->source != POLICY_SRC_FILE || d->file_gen == sc->gen)
        return 0;
    if (sc->n == sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 64;
        struct dom **nd = realloc(sc->doms, cap * sizeof(*nd));
        if (!nd)
            return SW_ENOMEM;
        sc->doms = nd;
        sc->cap = cap;
    }
    sc->doms[sc->n++] = d;
    return 0;
}

int policy_engine_reload_file(struct policy_engine *e, const char *path, size_t *dropped, char *err,
                              size_t errlen)
{
    *dropped = 0;
    int r = policy_engine_load_file(e, path, err, errlen);
    if (r != SW_OK)
        return r; /* a file that did not load drops nothing */
    struct stale_ctx sc = {.gen = e->file_gen};
    if (lru_foreach(e->pos, collect_stale, &sc) || lru_foreach(e->neg, collect_stale, &sc)) {
        free(sc.doms);
        sw_set_err(err, errlen, "%s: out of memory", path);
        return SW_ENOMEM;
    }
    for (size_t i = 0; i < sc.n; i++)
        policy_dom_forget(e, sc.doms[i]);
    free(sc.doms);
    e->stats.file_dropped += sc.n;
    *dropped = sc.n;
    return SW_OK;
}

struct save_ctx {
    struct snapshot_item *items;
    size_t n, cap;
};

static int collect(void *arg, const char *key, void *value)
{
    (void)key;
    struct save_ctx *sc = arg;
    struct dom *d = value;
    if (!d->entry)
        return 0;
    if (sc->n == sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 64;
        struct snapshot_item *it = realloc(sc->items, cap * sizeof(*it));
        if (!it)
            return SW_ENOMEM;
        sc->items = it;
        sc->cap = cap;
    }
    sc->items[sc->n++] = (struct snapshot_item){
        .domain = d->name,
        .id = d->entry->id,
        .text = d->entry->text,
        .text_len = strlen(d->entry->text),
        .fetched_at = d->entry->fetched_at,
    };
    return 0;
}

int policy_engine_save(struct policy_engine *e, const char *path, char *err, size_t errlen)
{
    struct save_ctx sc = {0};
    if (lru_foreach(e->pos, collect, &sc) || lru_foreach(e->neg, collect, &sc)) {
        free(sc.items);
        sw_set_err(err, errlen, "%s: out of memory", path);
        return SW_ENOMEM;
    }
    int r = snapshot_save(path, sc.items, sc.n, err, errlen);
    free(sc.items);
    return r;
}
