/* SPDX-License-Identifier: Apache-2.0 */
/* slab.c: fixed-size objects carved from big chunks backed by transparent
 * huge pages (contract in slab.h). */
#include "decode/slab.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define SLAB_FIRST (16u << 10)
#define SLAB_HUGE  (2u << 20)

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_MALLOC 1
#endif
#endif

void sw_slab_init(struct sw_slab *s, size_t size)
{
    memset(s, 0, sizeof(*s));
    s->size = (size + 7) & ~(size_t)7;
}

/* A new chunk of the next size, NULL when out of memory. */
static char *slab_chunk(struct sw_slab *s, size_t *len)
{
    size_t n = SLAB_FIRST;
    for (size_t i = 0; i < s->n_chunks && n < SLAB_HUGE; i++)
        n *= 2;
    void *c = NULL;
    if (n < SLAB_HUGE) {
        c = malloc(n);
    } else if (posix_memalign(&c, SLAB_HUGE, n) == 0) {
        (void)madvise(c, n, MADV_HUGEPAGE); /* a hint: without it, small pages */
    } else {
        c = NULL;
    }
    *len = n;
    return c;
}

void *sw_slab_alloc(struct sw_slab *s)
{
#ifdef SLAB_MALLOC
    return malloc(s->size);
#endif
    if (s->free) {
        void *e = s->free;
        memcpy(&s->free, e, sizeof(void *));
        return e;
    }
    if (!s->left) {
        if (s->n_chunks == s->cap_chunks) {
            size_t nc = s->cap_chunks ? s->cap_chunks * 2 : 16;
            void **c = realloc(s->chunks, nc * sizeof(*c));
            if (!c)
                return NULL;
            s->chunks = c;
            s->cap_chunks = nc;
        }
        size_t len;
        char *chunk = slab_chunk(s, &len);
        if (!chunk)
            return NULL;
        s->chunks[s->n_chunks++] = chunk;
        s->cur = chunk;
        s->left = len / s->size;
    }
    void *e = s->cur;
    s->cur += s->size;
    s->left--;
    return e;
}

void sw_slab_free(struct sw_slab *s, void *p)
{
    if (!p)
        return;
#ifdef SLAB_MALLOC
    free(p);
    return;
#endif
    memcpy(p, &s->free, sizeof(void *));
    s->free = p;
}

void sw_slab_destroy(struct sw_slab *s)
{
    for (size_t i = 0; i < s->n_chunks; i++)
        free(s->chunks[i]);
    free(s->chunks);
    memset(s, 0, sizeof(*s));
}
