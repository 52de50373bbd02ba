/* SPDX-License-Identifier: Apache-2.0 */
/* test_jsonw.c: unit tests of the direct JSON writer (alerts/jsonw.c):
 * escapes of quotes, backslash and control characters written out literally,
 * bytes from the wire that are not UTF-8 turned into '?', commas in nested
 * containers, and every one- and two-byte string and many random ones
 * written byte for byte as jansson's json_dumps(JSON_COMPACT) writes them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "alerts/jsonw.h"
#include "decode/facts.h"

/* The writer's text for one string value written with jsonw_str. */
static char *str_out(const char *s, size_t n)
{
    struct jsonw w;
    jsonw_init(&w);
    jsonw_strn(&w, NULL, s, n);
    assert_true(jsonw_ok(&w));
    return w.buf;
}

static char *wire_out(const char *s)
{
    struct jsonw w;
    jsonw_init(&w);
    jsonw_wire_str(&w, NULL, s);
    assert_true(jsonw_ok(&w));
    return w.buf;
}

static void expect_str(const char *in, const char *want)
{
    char *got = str_out(in, strlen(in));
    assert_string_equal(got, want);
    free(got);
}

static void expect_wire(const char *in, const char *want)
{
    char *got = wire_out(in);
    assert_string_equal(got, want);
    free(got);
}

static void test_escapes(void **state)
{
    (void)state;
    expect_str("", "\"\"");
    expect_str("plain", "\"plain\"");
    expect_str("a\"b", "\"a\\\"b\"");
    expect_str("a\\b", "\"a\\\\b\"");
    expect_str("/", "\"/\""); /* no JSON_ESCAPE_SLASH */
    expect_str("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"");
    expect_str("\x01\x1f", "\"\\u0001\\u001F\""); /* upper-case hex, as jansson */
    expect_str("\x7f", "\"\x7f\"");               /* DEL is not escaped */
    expect_str("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7",
               "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7\"");
    char *nul = str_out("a\0b", 3);
    assert_string_equal(nul, "\"a\\u0000b\"");
    free(nul);
}

static void test_wire_invalid_utf8(void **state)
{
    (void)state;
    expect_wire(NULL, "\"\"");
    expect_wire("ok\tline", "\"ok\\tline\""); /* valid UTF-8: escaped, kept */
    expect_wire("caf\xc3\xa9", "\"caf\xc3\xa9\"");
    /* not UTF-8: every byte outside 0x20..0x7e becomes '?', controls too */
    expect_wire("caf\xe9\tx", "\"caf??x\"");
    expect_wire("\xc0\xaf", "\"??\"");           /* overlong '/' */
    expect_wire("\xe0\x80\xaf", "\"???\"");      /* overlong, 3 bytes */
    expect_wire("\xed\xa0\x80", "\"???\"");      /* a surrogate */
    expect_wire("\xf4\x90\x80\x80", "\"????\""); /* past U+10FFFF */
    expect_wire("\xf5\x80\x80\x80", "\"????\""); /* F5 never leads */
    expect_wire("ab\xc3", "\"ab?\"");            /* cut sequence */
    expect_wire("\"q\\\xff", "\"\\\"q\\\\?\"");  /* quote, backslash still escaped */
    expect_wire("\x80\x7f", "\"??\"");           /* DEL is outside printable ASCII */
    /* a known length: the n bytes given, plain ASCII past one 8-byte word
     * and a later byte that leaves the one-pass path (a NUL inside, invalid
     * UTF-8 after it) */
    struct jsonw w;
    jsonw_init(&w);
    jsonw_arr_open(&w, NULL);
    jsonw_wire_strn(&w, NULL, "mx1.example.org and more", 15);
    jsonw_wire_strn(&w, NULL, "mail.example.net\0\xff", 18);
    jsonw_wire_strn(&w, NULL, "\xff", 0);
    jsonw_arr_close(&w);
    assert_true(jsonw_ok(&w));
    assert_string_equal(w.buf, "[\"mx1.example.org\",\"mail.example.net??\",\"\"]");
    jsonw_free(&w);
}

static void test_nesting_and_scalars(void **state)
{
    (void)state;
    struct jsonw w;
    jsonw_init(&w);
    jsonw_obj_open(&w, NULL);
    jsonw_str(&w, "a", "x");
    jsonw_arr_open(&w, "b");
    jsonw_int(&w, NULL, -1);
    jsonw_obj_open(&w, NULL);
    jsonw_obj_close(&w);
    jsonw_arr_open(&w, NULL);
    jsonw_arr_close(&w);
    jsonw_bool(&w, NULL, true);
    jsonw_arr_close(&w);
    jsonw_null(&w, "c");
    jsonw_int_or_null(&w, "d", 0);
    jsonw_int_or_null(&w, "e", 250);
    jsonw_wire_str_or_null(&w, "f", "");
    jsonw_str(&w, "g", NULL);
    jsonw_int(&w, "h", INT64_MAX);
    jsonw_bool(&w, "k\"ey", false);
    jsonw_obj_close(&w);
    assert_true(jsonw_ok(&w));
    assert_string_equal(w.buf,
                        "{\"a\":\"x\",\"b\":[-1,{},[],true],\"c\":null,\"d\":null,\"e\":250,"
                        "\"f\":null,\"g\":null,\"h\":9223372036854775807,\"k\\\"ey\":false}");
    assert_int_equal(w.len, strlen(w.buf));
    jsonw_reset(&w);
    jsonw_arr_open(&w, NULL);
    jsonw_arr_close(&w);
    assert_string_equal(w.buf, "[]");
    jsonw_free(&w);
}

/* jsonw_json: any jansson value comes out as json_dumps writes it. */
static void test_json_value_as_jansson(void **state)
{
    (void)state;
    json_error_t e;
    const char *src = "{\"z\":1,\"a\":[true,false,null,\"s\\u0001\\\"\",2.5,1e300,-0.0],"
                      "\"m\":{\"k\":{}},\"n\":[]}";
    json_t *v = json_loads(src, 0, &e);
    assert_non_null(v);
    char *want = json_dumps(v, JSON_COMPACT);
    struct jsonw w;
    jsonw_init(&w);
    jsonw_json(&w, NULL, v);
    assert_string_equal(w.buf, want);
    free(want);
    json_decref(v);
    jsonw_free(&w);
}

/* Compares jsonw_str/jsonw_wire_str with jansson on s[0..n). */
static void same_as_jansson(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    assert_int_equal(j != NULL, jsonw_utf8_valid(s, n));
    if (j) {
        char *want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        char *got = str_out(s, n);
        assert_string_equal(got, want);
        free(got);
        free(want);
        json_decref(j);
    }
    if (!memchr(s, '\0', n)) { /* wire strings are C strings */
        json_t *fj = facts_json_wire_str(s);
        char *want = json_dumps(fj, JSON_COMPACT | JSON_ENCODE_ANY);
        char *got = wire_out(s);
        assert_string_equal(got, want);
        free(got);
        free(want);
        json_decref(fj);
    }
}

static void test_every_short_string(void **state)
{
    (void)state;
    char s[3] = {0};
    for (int a = 0; a < 256; a++) {
        s[0] = (char)a;
        same_as_jansson(s, 1);
        for (int b = 0; b < 256; b++) {
            s[1] = (char)b;
            same_as_jansson(s, 2);
        }
    }
}

static void test_random_strings(void **state)
{
    (void)state;
    /* bytes biased towards the interesting ones: escapes, UTF-8 leads and
     * continuations, the edges of the valid ranges */
    static const unsigned char alphabet[] = {'a',  ' ',  '"',  '\\', '/',  '\n', '\t', 0x01, 0x1f,
                                             0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc2, 0xc3,
                                             0xdf, 0xe0, 0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
    uint32_t x = 2463534242u;
    char s[12];
    for (int round = 0; round < 200000; round++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        size_t n = 1 + x % (sizeof s - 1);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            s[i] = (char)alphabet[x % sizeof alphabet];
        }
        s[n] = '\0'; /* the wire-string half reads it as a C string */
        same_as_jansson(s, n);
    }
}

/* Strings past one 8-byte word (the writer copies words while none needs
 * an escape) and keys of every length around the one-pass limit, with and
 * without escapes, as jansson writes them. */
static void test_long_strings_and_keys(void **state)
{
    (void)state;
    static const unsigned char alphabet[] = {'a',  'b',  ' ',  '"',  '\\', '\n', 0x01, 0x1f,
                                             0x20, 0x7f, 0xc3, 0xa9, 0xe2, 0x82, 0xac};
    uint32_t x = 88172645u;
    char s[72];
    for (int round = 0; round < 50000; round++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        size_t n = 1 + x % (sizeof s - 1);
        bool plain = round % 2; /* half without anything to escape */
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            s[i] = plain ? (char)('a' + x % 26) : (char)alphabet[x % sizeof alphabet];
        }
        s[n] = '\0';
        same_as_jansson(s, n);
        /* the same bytes as a key, after another member */
        json_t *o = json_pack("{s:i}", "k", 1);
        json_t *v = json_stringn(s, n);
        if (!v || !jsonw_utf8_valid(s, n)) {
            json_decref(o);
            json_decref(v);
            continue;
        }
        json_decref(v);
        json_object_set_new(o, s, json_integer(2));
        char *want = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        struct jsonw w;
        jsonw_init(&w);
        jsonw_obj_open(&w, NULL);
        jsonw_int(&w, "k", 1);
        jsonw_int(&w, s, 2);
        jsonw_obj_close(&w);
        assert_true(jsonw_ok(&w));
        if (strcmp(s, "k") == 0) /* the second member replaced the first */
            assert_string_equal(want, "{\"k\":2}");
        else
            assert_string_equal(w.buf, want);
        free(want);
        jsonw_free(&w);
        json_decref(o);
    }
}

/* A writer into the caller's buffer: a short text stays there and is
 * taken as an exact copy; a longer one moves to the heap with what was
 * written, and is taken as it is; the caller's buffer is never freed (ASan
 * would tell) and the writer is empty after a take. */
static void test_borrowed_buffer(void **state)
{
    (void)state;
    char buf[16];
    struct jsonw w;
    jsonw_init_buf(&w, buf, sizeof buf);
    jsonw_obj_open(&w, NULL);
    jsonw_int(&w, "a", 1);
    jsonw_obj_close(&w);
    assert_ptr_equal(w.buf, buf);
    assert_string_equal(buf, "{\"a\":1}");
    size_t len = w.len;
    char *t = jsonw_take(&w);
    assert_non_null(t);
    assert_ptr_not_equal(t, buf);
    assert_int_equal(len, 7);
    assert_string_equal(t, "{\"a\":1}");
    assert_null(w.buf);
    assert_int_equal(w.len, 0);
    free(t);

    jsonw_init_buf(&w, buf, sizeof buf);
    jsonw_obj_open(&w, NULL);
    jsonw_str(&w, "k", "fits");
    assert_ptr_equal(w.buf, buf);
    jsonw_str(&w, "longer", "no longer fits in sixteen bytes");
    jsonw_obj_close(&w);
    assert_true(jsonw_ok(&w));
    assert_ptr_not_equal(w.buf, buf);
    const char *want = "{\"k\":\"fits\",\"longer\":\"no longer fits in sixteen bytes\"}";
    assert_string_equal(w.buf, want);
    char *heap = w.buf;
    t = jsonw_take(&w);
    assert_ptr_equal(t, heap);
    assert_string_equal(t, want);
    free(t);

    /* freed unused: nothing to free */
    jsonw_init_buf(&w, buf, sizeof buf);
    jsonw_str(&w, NULL, "x");
    jsonw_free(&w);
    assert_null(w.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_wire_invalid_utf8),
        cmocka_unit_test(test_nesting_and_scalars),
        cmocka_unit_test(test_json_value_as_jansson),
        cmocka_unit_test(test_every_short_string),
        cmocka_unit_test(test_random_strings),
        cmocka_unit_test(test_long_strings_and_keys),
        cmocka_unit_test(test_borrowed_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
