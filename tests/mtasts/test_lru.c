/* SPDX-License-Identifier: Apache-2.0 */
/* test_lru.c: unit tests of the bounded LRU map (policy/lru.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "decode/sw.h"
#include "policy/lru.h"

static int freed;
static char freed_log[256];

static void free_val(void *v)
{
    freed++;
    strncat(freed_log, (const char *)v, sizeof freed_log - strlen(freed_log) - 1);
    strncat(freed_log, " ", sizeof freed_log - strlen(freed_log) - 1);
    free(v);
}

static char *val(const char *s)
{
    char *p = strdup(s);
    assert_non_null(p);
    return p;
}

static int collect(void *arg, const char *key, void *value)
{
    char *buf = arg;
    (void)value;
    strcat(buf, key);
    strcat(buf, " ");
    return 0;
}

static void order(const struct lru *l, const char *want)
{
    char buf[512] = "";
    assert_int_equal(lru_foreach(l, collect, buf), 0);
    assert_string_equal(buf, want);
}

static int reset(void **state)
{
    (void)state;
    freed = 0;
    freed_log[0] = '\0';
    return 0;
}

static void test_eviction_order(void **state)
{
    struct lru *l = lru_new(3, free_val);

    (void)state;
    assert_non_null(l);
    assert_int_equal(lru_capacity(l), 3);
    assert_int_equal(lru_put(l, "a.example", val("A")), SW_OK);
    assert_int_equal(lru_put(l, "b.example", val("B")), SW_OK);
    assert_int_equal(lru_put(l, "c.example", val("C")), SW_OK);
    order(l, "c.example b.example a.example ");
    assert_string_equal(lru_oldest_key(l), "a.example");

    /* get promotes; peek does not. */
    assert_string_equal(lru_get(l, "a.example"), "A");
    assert_string_equal(lru_peek(l, "b.example"), "B");
    order(l, "a.example c.example b.example ");

    /* Full: the least recently used (b) goes. */
    assert_int_equal(lru_put(l, "d.example", val("D")), SW_OK);
    assert_int_equal(lru_count(l), 3);
    assert_int_equal(lru_evictions(l), 1);
    assert_null(lru_get(l, "b.example"));
    assert_string_equal(freed_log, "B ");
    order(l, "d.example a.example c.example ");

    /* Replacing frees the old value, promotes, evicts nothing. */
    assert_int_equal(lru_put(l, "c.example", val("C2")), SW_OK);
    assert_string_equal(freed_log, "B C ");
    assert_int_equal(lru_evictions(l), 1);
    order(l, "c.example d.example a.example ");
    assert_string_equal(lru_get(l, "c.example"), "C2");

    /* remove frees, take hands over, neither counts as an eviction. */
    assert_true(lru_remove(l, "d.example"));
    assert_false(lru_remove(l, "d.example"));
    char *a = lru_take(l, "a.example");
    assert_string_equal(a, "A");
    free(a);
    assert_null(lru_take(l, "a.example"));
    assert_int_equal(lru_count(l), 1);
    assert_int_equal(lru_evictions(l), 1);
    assert_string_equal(freed_log, "B C D ");

    assert_true(lru_evict_oldest(l));
    assert_false(lru_evict_oldest(l));
    assert_int_equal(lru_evictions(l), 2);
    assert_int_equal(lru_count(l), 0);
    assert_null(lru_oldest_key(l));
    order(l, "");

    assert_int_equal(lru_put(l, "e.example", val("E")), SW_OK);
    lru_free(l);
    assert_int_equal(freed, 5);
    assert_string_equal(freed_log, "B C D C2 E ");
    lru_free(NULL);
    assert_null(lru_new(0, NULL));
}

static int stop_at_b(void *arg, const char *key, void *value)
{
    (void)arg;
    (void)value;
    return strcmp(key, "b") == 0 ? 7 : 0;
}

/* Values held in the entry: emplace makes or finds them, zeroed when new,
 * aligned, with the map's copy of the key; eviction and removal free them
 * with the entry; put and take refuse. */
static void test_inline(void **state)
{
    struct value {
        long double x; /* max_align_t's alignment */
        char s[40];
    };
    struct lru *l = lru_new_inline(2, sizeof(struct value));
    bool added = true;
    const char *key = NULL;

    (void)state;
    assert_non_null(l);
    assert_null(lru_new_inline(2, 0));
    /* a key of each length about the alignment: the value always aligned */
    for (size_t n = 1; n <= 40; n++) {
        char k[48];
        memset(k, 'k', n);
        k[n] = '\0';
        struct value *v = lru_emplace(l, k, &added, &key);
        assert_non_null(v);
        assert_true(added);
        assert_string_equal(key, k);
        assert_ptr_not_equal(key, k);
        assert_int_equal((uintptr_t)v % _Alignof(max_align_t), 0);
        assert_int_equal(v->s[0], 0);
        assert_true(v->x == 0);
    }
    assert_int_equal(lru_count(l), 2);
    assert_int_equal(lru_evictions(l), 38);
    lru_free(l);

    l = lru_new_inline(2, sizeof(struct value));
    assert_non_null(l);
    struct value *a = lru_emplace(l, "a.example", &added, &key);
    assert_true(added);
    strcpy(a->s, "A");
    assert_ptr_equal(lru_emplace(l, "a.example", &added, NULL), a);
    assert_false(added);
    assert_string_equal(a->s, "A");
    struct value *b = lru_emplace(l, "b.example", &added, NULL);
    strcpy(b->s, "B");
    assert_ptr_equal(lru_get(l, "a.example"), a);
    assert_ptr_equal(lru_peek(l, "b.example"), b);
    order(l, "a.example b.example ");
    /* full: the least recently used (b) goes, with its value */
    struct value *c = lru_emplace(l, "c.example", &added, &key);
    assert_true(added);
    assert_string_equal(key, "c.example");
    assert_null(lru_peek(l, "b.example"));
    assert_int_equal(lru_evictions(l), 1);
    order(l, "c.example a.example ");
    assert_int_equal(lru_put(l, "d.example", c), SW_ELIMIT);
    assert_null(lru_take(l, "a.example"));
    assert_int_equal(lru_count(l), 2);
    assert_true(lru_remove(l, "a.example"));
    assert_int_equal(lru_count(l), 1);
    assert_int_equal(freed, 0);
    lru_free(l);

    /* a pointer map has no inline values */
    l = lru_new(2, free_val);
    assert_null(lru_emplace(l, "a.example", &added, &key));
    assert_false(added);
    lru_free(l);
}

/* The hashed calls find what the plain ones find, across the table's
 * growth; a wrong hash finds nothing; a prefetch changes nothing (keys
 * present, absent, an empty map). */
static void test_hashed(void **state)
{
    struct lru *l = lru_new_inline(100, sizeof(int));
    char key[32];
    bool added;
    const char *stored;

    (void)state;
    assert_non_null(l);
    uint64_t h0 = lru_hash(l, "k0", 2);
    lru_prefetch(l, &h0, 1);
    assert_null(lru_peek_hashed(l, "k0", h0));
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "k%d", i);
        uint64_t h = lru_hash(l, key, strlen(key));
        int *v = lru_emplace_hashed(l, key, strlen(key), h, &added, &stored);
        assert_non_null(v);
        assert_true(added);
        assert_string_equal(stored, key);
        *v = i + 1;
    }
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "k%d", i);
        uint64_t h[2] = {lru_hash(l, key, strlen(key)), lru_hash(l, "absent", 6)};
        lru_prefetch(l, h, 2);
        int *v = lru_peek_hashed(l, key, h[0]);
        assert_non_null(v);
        assert_int_equal(*v, i + 1);
        assert_ptr_equal(lru_peek(l, key), v);
        assert_ptr_equal(lru_emplace(l, key, &added, NULL), v);
        assert_false(added);
        assert_null(lru_peek_hashed(l, key, h[0] ^ 1));
        assert_null(lru_peek_hashed(l, "absent", h[1]));
    }
    assert_int_equal(lru_count(l), 100);
    assert_int_equal(lru_evictions(l), 0);
    lru_free(l);
}

static void test_foreach_stop(void **state)
{
    struct lru *l = lru_new(10, NULL);
    static int x, y, z;

    (void)state;
    lru_put(l, "a", &x);
    lru_put(l, "b", &y);
    lru_put(l, "c", &z);
    assert_int_equal(lru_foreach(l, stop_at_b, NULL), 7);
    lru_free(l); /* no free callback: static values untouched */
}

/* Many keys through a small map, and a large map that grows its table:
 * counts stay exact and the survivors are the most recent keys. */
static void test_many(void **state)
{
    char key[32];
    struct lru *l = lru_new(1000, free_val);

    (void)state;
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "d%d.example", i);
        assert_int_equal(lru_put(l, key, val("")), SW_OK);
    }
    assert_int_equal(lru_count(l), 1000);
    assert_int_equal(lru_evictions(l), 4000);
    assert_int_equal(freed, 4000);
    assert_string_equal(lru_oldest_key(l), "d4000.example");
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "d%d.example", i);
        if (i < 4000)
            assert_null(lru_peek(l, key));
        else
            assert_non_null(lru_peek(l, key));
    }
    for (int i = 4000; i < 5000; i++) {
        snprintf(key, sizeof key, "d%d.example", i);
        assert_true(lru_remove(l, key));
    }
    assert_int_equal(lru_count(l), 0);
    assert_int_equal(freed, 5000);
    lru_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_eviction_order, reset),
        cmocka_unit_test_setup(test_inline, reset),
        cmocka_unit_test_setup(test_hashed, reset),
        cmocka_unit_test_setup(test_foreach_stop, reset),
        cmocka_unit_test_setup(test_many, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
