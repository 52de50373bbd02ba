/* SPDX-License-Identifier: Apache-2.0 */
/* strtab.c: interned reference-counted strings: a chained hash table of
 * entries that carry their bytes, grown by doubling, shrunk never. A string
 * whose last reference goes stays in the table for reuse, among the last
 * STRTAB_KEEP released (at most STRTAB_KEEP_BYTES): sessions come and go
 * one after another with the same banner, capability list and domains, and
 * would otherwise allocate and free them each time. */
#include "decode/strtab.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct strtab_ent {
    struct strtab_ent *next;
    uint64_t st_h, st_carry; /* the hash's state after the bytes (struct shash) */
    /* lists: the list last made from this one by strtab_add_item, and the
     * one this one was made from (each cleared when the other goes) */
    struct strtab_ent *succ, *pred;
    uint32_t hash;
    uint32_t refs;
    uint32_t len;
    uint32_t kept; /* in the ring of released strings */
    char s[];
};

#define STRTAB_KEEP       256u /* a power of two */
#define STRTAB_KEEP_BYTES 65536u

struct strtab {
    struct strtab_ent **b;
    size_t n_b;   /* power of two */
    size_t n;     /* entries, released ones kept included */
    size_t bytes; /* the table and the strings in use */
    /* released strings kept (refs 0), oldest first; a slot may hold one
     * taken again since */
    struct strtab_ent *keep[STRTAB_KEEP];
    size_t keep_head, keep_n;
    size_t n_dead, dead_bytes; /* kept with refs 0 */
};

#define STRTAB_MIN_BUCKETS 64u

static struct strtab_ent *ent_of(const char *s)
{
    return (struct strtab_ent *)(void *)(s - offsetof(struct strtab_ent, s));
}

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "strtab.c: the hash reads words as little-endian"
#endif

/* The hash: a word at a time (multiply and fold), over the bytes as one
 * stream whatever pieces they come in, so a list's entry keeps the state
 * after its bytes and an item added to it hashes only the item's bytes. A
 * per-worker table of short strings. */
struct shash {
    uint64_t h, carry; /* carry: the bytes past the last whole word */
    size_t len;        /* bytes so far */
};

#define SH_SEED 0x2545f4914f6cdd1dull
#define SH_MUL  0x9e3779b97f4a7c15ull

static inline uint64_t sh_mix(uint64_t h, uint64_t w)
{
    h = (h ^ w) * SH_MUL;
    return h ^ (h >> 32);
}

static void sh_feed(struct shash *st, const char *p, size_t n)
{
    unsigned fill = (unsigned)(st->len & 7);
    st->len += n;
    for (; n && fill; n--) {
        st->carry |= (uint64_t)(uint8_t)*p++ << (8 * fill);
        if (++fill == 8) {
            st->h = sh_mix(st->h, st->carry);
            st->carry = 0;
            fill = 0;
        }
    }
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        st->h = sh_mix(st->h, w);
    }
    for (unsigned i = 0; i < n; i++)
        st->carry |= (uint64_t)(uint8_t)p[i] << (8 * i);
}

static uint32_t sh_final(const struct shash *st)
{
    uint64_t h = sh_mix(sh_mix(st->h, st->carry), st->len);
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return (uint32_t)(h ^ (h >> 32));
}

struct strtab *strtab_new(void)
{
    struct strtab *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->b = calloc(STRTAB_MIN_BUCKETS, sizeof *t->b);
    if (!t->b) {
        free(t);
        return NULL;
    }
    t->n_b = STRTAB_MIN_BUCKETS;
    /* the ring of released strings is kept outside the accounting, as they are */
    t->bytes = sizeof *t - sizeof t->keep + t->n_b * sizeof *t->b;
    return t;
}

void strtab_free(struct strtab *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_b; i++) {
        struct strtab_ent *e = t->b[i];
        while (e) {
            struct strtab_ent *n = e->next;
            free(e);
            e = n;
        }
    }
    free(t->b);
    free(t);
}

static void grow(struct strtab *t)
{
    size_t nb = t->n_b * 2;
    struct strtab_ent **b = calloc(nb, sizeof *b);
    if (!b)
        return; /* chains get longer */
    for (size_t i = 0; i < t->n_b; i++) {
        struct strtab_ent *e = t->b[i];
        while (e) {
            struct strtab_ent *n = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = n;
        }
    }
    free(t->b);
    t->bytes += (nb - t->n_b) * sizeof *b;
    t->b = b;
    t->n_b = nb;
}

static size_t ent_size(const struct strtab_ent *e)
{
    return sizeof *e + e->len + 1;
}

static void ent_unlink_free(struct strtab *t, struct strtab_ent *e)
{
    if (e->pred && e->pred->succ == e)
        e->pred->succ = NULL;
    if (e->succ && e->succ->pred == e)
        e->succ->pred = NULL;
    struct strtab_ent **pp = &t->b[e->hash & (t->n_b - 1)];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    t->n--;
    free(e);
}

/* Forgets the oldest kept slot: its string is freed unless taken again. */
static void keep_pop(struct strtab *t)
{
    struct strtab_ent *e = t->keep[t->keep_head];
    t->keep_head = (t->keep_head + 1) & (STRTAB_KEEP - 1);
    t->keep_n--;
    e->kept = 0;
    if (e->refs)
        return;
    t->n_dead--;
    t->dead_bytes -= ent_size(e);
    ent_unlink_free(t, e);
}

/* A new reference to e (refs below UINT32_MAX). */
static const char *take_ref(struct strtab *t, struct strtab_ent *e)
{
    if (e->refs++ == 0) {
        t->n_dead--;
        t->dead_bytes -= ent_size(e);
        t->bytes += ent_size(e);
    }
    return e->s;
}

/* The one copy of a[0..na) b[0..nb) c[0..nc) (hashed to st), a new
 * reference. */
static const char *get3(struct strtab *t, const struct shash *st, const char *a, size_t na,
                        const char *b, size_t nb, const char *c, size_t nc)
{
    size_t n = na + nb + nc;
    if (n > UINT32_MAX - 1)
        return NULL;
    uint32_t h = sh_final(st);
    for (struct strtab_ent *e = t->b[h & (t->n_b - 1)]; e; e = e->next)
        if (e->hash == h && e->len == n && memcmp(e->s, a, na) == 0 &&
            memcmp(e->s + na, b, nb) == 0 && memcmp(e->s + na + nb, c, nc) == 0 &&
            e->refs < UINT32_MAX)
            return take_ref(t, e);
    struct strtab_ent *e = malloc(sizeof *e + n + 1);
    if (!e)
        return NULL;
    e->succ = e->pred = NULL;
    e->st_h = st->h;
    e->st_carry = st->carry;
    e->hash = h;
    e->refs = 1;
    e->len = (uint32_t)n;
    e->kept = 0;
    memcpy(e->s, a, na);
    memcpy(e->s + na, b, nb);
    memcpy(e->s + na + nb, c, nc);
    e->s[n] = '\0';
    e->next = t->b[h & (t->n_b - 1)];
    t->b[h & (t->n_b - 1)] = e;
    t->n++;
    t->bytes += sizeof *e + n + 1;
    if (t->n > t->n_b)
        grow(t);
    return e->s;
}

const char *strtab_get(struct strtab *t, const char *s, size_t n)
{
    struct shash st = {SH_SEED, 0, 0};
    sh_feed(&st, s, n);
    return get3(t, &st, s, n, "", 0, "", 0);
}

const char *strtab_add_item(struct strtab *t, const char *list, const char *s, size_t n)
{
    struct shash st = {SH_SEED, 0, 0};
    struct strtab_ent *l = list ? ent_of(list) : NULL;
    size_t nl = 0;
    if (l) {
        /* the list made from this one last time, when it is one item
         * longer by the same item: sessions list the same capabilities in
         * the same order, and only the item needs comparing */
        struct strtab_ent *next = l->succ;
        if (next && next->len == l->len + n + 1 && next->refs < UINT32_MAX &&
            memcmp(next->s + l->len, s, n) == 0 && next->s[l->len + n] == '\0')
            return take_ref(t, next);
        /* else the hash goes on from the list's state over the item: no
         * pass over the list again */
        nl = l->len;
        st = (struct shash){l->st_h, l->st_carry, nl};
    }
    sh_feed(&st, s, n);
    sh_feed(&st, "", 1);
    const char *r = get3(t, &st, list ? list : "", nl, s, n, "", 1);
    if (r && l) {
        struct strtab_ent *e = ent_of(r);
        if (l->succ && l->succ->pred == l)
            l->succ->pred = NULL;
        if (e->pred && e->pred->succ == e)
            e->pred->succ = NULL;
        l->succ = e;
        e->pred = l;
    }
    return r;
}

const char *strtab_ref(const char *s)
{
    ent_of(s)->refs++;
    return s;
}

void strtab_put(struct strtab *t, const char *s)
{
    if (!s)
        return;
    struct strtab_ent *e = ent_of(s);
    if (--e->refs)
        return;
    t->bytes -= ent_size(e);
    if (ent_size(e) > STRTAB_KEEP_BYTES) {
        ent_unlink_free(t, e);
        return;
    }
    t->n_dead++;
    t->dead_bytes += ent_size(e);
    if (!e->kept) {
        if (t->keep_n == STRTAB_KEEP)
            keep_pop(t);
        e->kept = 1;
        t->keep[(t->keep_head + t->keep_n++) & (STRTAB_KEEP - 1)] = e;
    }
    while (t->dead_bytes > STRTAB_KEEP_BYTES && t->keep_n)
        keep_pop(t);
}

size_t strtab_len(const char *s)
{
    return ent_of(s)->len;
}

size_t strtab_bytes(const struct strtab *t)
{
    return t->bytes;
}

size_t strtab_kept_bytes(const struct strtab *t)
{
    return t->dead_bytes;
}

size_t strtab_count(const struct strtab *t)
{
    return t->n - t->n_dead;
}
