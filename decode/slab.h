/* SPDX-License-Identifier: Apache-2.0 */
/* slab.h: fixed-size objects carved from big chunks (decode/slab.c).
 *
 * One slab per object size and per worker thread (not thread-safe). The flow
 * table keeps its entries here: a flood of a million flows then costs a few
 * hundred page faults and TLB entries instead of one malloc (and, on first
 * touch, one page fault) per entry. Chunks start small (a table of a few
 * flows stays small) and double up to 2 MiB, from where they are 2 MiB
 * aligned and asked to be backed by transparent huge pages. A freed object
 * goes on a free list and is the next one handed out (still warm in cache);
 * chunks are only returned by sw_slab_destroy(), so after a flood the
 * process keeps its peak (callers bound their objects by their memcap).
 * Under AddressSanitizer every object is its own malloc, so that a use after
 * free is still caught. */
#ifndef SW_SLAB_H
#define SW_SLAB_H

#include <stddef.h>

struct sw_slab {
    size_t size;   /* object size, a multiple of 8 */
    void *free;    /* freed objects, linked through their first word */
    char *cur;     /* the chunk being carved */
    size_t left;   /* objects left in cur */
    void **chunks; /* every chunk, for sw_slab_destroy */
    size_t n_chunks, cap_chunks;
};

/* An empty slab of objects of size bytes (nothing allocated yet). */
void sw_slab_init(struct sw_slab *s, size_t size);
/* An uninitialised object of s->size bytes, NULL when out of memory. */
void *sw_slab_alloc(struct sw_slab *s);
/* Gives back an object of s (NULL is a no-op). */
void sw_slab_free(struct sw_slab *s, void *p);
/* Frees every chunk: every object of s is gone. */
void sw_slab_destroy(struct sw_slab *s);

#endif
