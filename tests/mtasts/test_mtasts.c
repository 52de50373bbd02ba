/* SPDX-License-Identifier: Apache-2.0 */
/* test_mtasts.c: unit tests of the MTA-STS policy parser (RFC 8461 §3.2),
 * TXT record parser (§3.1) and MX matching (§4.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "decode/sw.h"
#include "policy/mtasts.h"

#define S(lit) lit, sizeof(lit) - 1

/* The example policy of RFC 8461 §3.2. */
#define RFC_EXAMPLE                                                                                \
    "version: STSv1\n"                                                                             \
    "mode: enforce\n"                                                                              \
    "mx: mail.example.com\n"                                                                       \
    "mx: *.example.net\n"                                                                          \
    "mx: backupmx.example.com\n"                                                                   \
    "max_age: 604800\n"

static void check_rfc_example(const char *text, size_t len)
{
    struct mtasts_policy p;
    struct mtasts_error e;

    assert_int_equal(mtasts_policy_parse(text, len, &p, &e), SW_OK);
    assert_int_equal(p.mode, MTASTS_MODE_ENFORCE);
    assert_int_equal(p.max_age, 604800);
    assert_int_equal(p.n_mx, 3);
    assert_string_equal(p.mx[0], "mail.example.com");
    assert_string_equal(p.mx[1], "*.example.net");
    assert_string_equal(p.mx[2], "backupmx.example.com");
    mtasts_policy_clear(&p);
    assert_int_equal(p.n_mx, 0);
}

static void test_rfc_example(void **state)
{
    (void)state;
    check_rfc_example(S(RFC_EXAMPLE));
    /* Without the final terminator ([sts-policy-term] is optional). */
    check_rfc_example(RFC_EXAMPLE, sizeof(RFC_EXAMPLE) - 2);
    /* CRLF everywhere, and mixed LF / CRLF. */
    check_rfc_example(S("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
                        "mx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n"));
    check_rfc_example(S("version: STSv1\nmode: enforce\r\nmx: mail.example.com\n"
                        "mx: *.example.net\r\nmx: backupmx.example.com\nmax_age: 604800"));
    /* Fields in another order: the ABNF does not order policy fields. */
    check_rfc_example(S("mx: mail.example.com\nmax_age: 604800\nmx: *.example.net\n"
                        "mode: enforce\nmx: backupmx.example.com\nversion: STSv1\n"));
    /* No space after ':' and trailing whitespace (":" *WSP, field *WSP). */
    check_rfc_example(S("version:STSv1\nmode:\tenforce \nmx:mail.example.com\t\n"
                        "mx:  *.example.net\nmx: backupmx.example.com  \nmax_age:604800\n"));
}

struct pcase {
    const char *name;
    const char *text;
    size_t len;
    int rc;
    int line;
    const char *reason;
};

#define HDR "version: STSv1\nmode: enforce\n"
#define P(n, t, rc, l, r)                                                                          \
    {                                                                                              \
        n, t, sizeof(t) - 1, rc, l, r                                                              \
    }

static const struct pcase bad_policies[] = {
    P("empty", "", SW_EPROTO, 0, "policy is empty"),
    P("no version", "mode: enforce\nmx: a.example\nmax_age: 1\n", SW_EPROTO, 0,
      "version field missing"),
    P("version case variant", "Version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n",
      SW_EPROTO, 0,
      "version field missing (\"Version\" on line 1 is another field: names are case-sensitive)"),
    P("version STSv2", "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n", SW_EPROTO, 1,
      "version \"STSv2\" is not STSv1"),
    P("version lowercase value", "version: stsv1\n", SW_EPROTO, 1,
      "version \"stsv1\" is not STSv1"),
    P("version trailing word", "version: STSv1 beta\n", SW_EPROTO, 1,
      "version \"STSv1 beta\" is not STSv1"),
    P("mode Enforce", "version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n", SW_EPROTO, 2,
      "mode \"Enforce\" is not enforce, testing or none"),
    P("mode strict", "version: STSv1\nmode: strict\n", SW_EPROTO, 2,
      "mode \"strict\" is not enforce, testing or none"),
    P("no mode", "version: STSv1\nmx: a.example\nmax_age: 1\n", SW_EPROTO, 0, "mode field missing"),
    P("Mode field", "version: STSv1\nMode: enforce\nmx: a.example\nmax_age: 1\n", SW_EPROTO, 0,
      "mode field missing (\"Mode\" on line 2 is another field: names are case-sensitive)"),
    P("no max_age", HDR "mx: a.example\n", SW_EPROTO, 0, "max_age field missing"),
    P("max_age too big", HDR "mx: a.example\nmax_age: 31557601\n", SW_EPROTO, 4,
      "max_age \"31557601\" exceeds 31557600"),
    P("max_age 11 digits", HDR "max_age: 12345678901\n", SW_EPROTO, 3,
      "max_age \"12345678901\" is not 1-10 digits"),
    P("max_age 10 digits too big", HDR "max_age: 9999999999\n", SW_EPROTO, 3,
      "max_age \"9999999999\" exceeds 31557600"),
    P("max_age negative", HDR "max_age: -1\n", SW_EPROTO, 3, "max_age \"-1\" is not 1-10 digits"),
    P("max_age exponent", HDR "max_age: 1e6\n", SW_EPROTO, 3, "max_age \"1e6\" is not 1-10 digits"),
    P("max_age unit", HDR "max_age: 604800s\n", SW_EPROTO, 3,
      "max_age \"604800s\" is not 1-10 digits"),
    P("max_age plus", HDR "max_age: +604800\n", SW_EPROTO, 3,
      "max_age \"+604800\" is not 1-10 digits"),
    P("max_age inner space", HDR "max_age: 604 800\n", SW_EPROTO, 3,
      "max_age \"604 800\" is not 1-10 digits"),
    P("max_age empty", HDR "max_age:\n", SW_EPROTO, 3, "field \"max_age\" has no value"),
    P("no mx enforce", HDR "max_age: 86400\n", SW_EPROTO, 0,
      "mx field missing (required when mode is enforce)"),
    P("no mx testing", "version: STSv1\nmode: testing\nmax_age: 86400\n", SW_EPROTO, 0,
      "mx field missing (required when mode is testing)"),
    P("MX field", HDR "MX: a.example\nmax_age: 86400\n", SW_EPROTO, 0,
      "mx field missing (required when mode is enforce) (\"MX\" on line 3 is another field: "
      "names are case-sensitive)"),
    P("mx inner wildcard", HDR "mx: mail.*.example.com\n", SW_EPROTO, 3,
      "mx \"mail.*.example.com\": '*' is only allowed as the whole leftmost label"),
    P("mx partial wildcard", HDR "mx: *mail.example.com\n", SW_EPROTO, 3,
      "mx \"*mail.example.com\": '*' is only allowed as the whole leftmost label"),
    P("mx double wildcard", HDR "mx: *.*.example.com\n", SW_EPROTO, 3,
      "mx \"*.*.example.com\": '*' is only allowed as the whole leftmost label"),
    P("mx star alone", HDR "mx: *\n", SW_EPROTO, 3,
      "mx \"*\": '*' is only allowed as the whole leftmost label"),
    P("mx star dot", HDR "mx: *.\n", SW_EPROTO, 3, "mx \"*.\": empty name"),
    P("mx empty label", HDR "mx: mail..example.com\n", SW_EPROTO, 3,
      "mx \"mail..example.com\": label 2 is empty"),
    P("mx wildcard empty label", HDR "mx: *.a..example.com\n", SW_EPROTO, 3,
      "mx \"*.a..example.com\": label 3 is empty"),
    P("mx trailing dot", HDR "mx: mail.example.com.\n", SW_EPROTO, 3,
      "mx \"mail.example.com.\": trailing dot"),
    P("mx leading dot", HDR "mx: .example.com\n", SW_EPROTO, 3,
      "mx \".example.com\": label 1 is empty"),
    P("mx leading hyphen", HDR "mx: -mail.example.com\n", SW_EPROTO, 3,
      "mx \"-mail.example.com\": label 1 starts with '-'"),
    P("mx trailing hyphen", HDR "mx: mail-.example.com\n", SW_EPROTO, 3,
      "mx \"mail-.example.com\": label 1 ends with '-'"),
    P("mx underscore", HDR "mx: mail_1.example.com\n", SW_EPROTO, 3,
      "mx \"mail_1.example.com\": label 1 has invalid character \"_\""),
    P("mx two names", HDR "mx: mail.example.com backup.example.com\n", SW_EPROTO, 3,
      "mx \"mail.example.com backup.example.com\": label 3 has invalid character \" \""),
    P("mx bracketed IP", HDR "mx: [192.0.2.1]\n", SW_EPROTO, 3,
      "mx \"[192.0.2.1]\": label 1 has invalid character \"[\""),
    P("mx label 64",
      HDR "mx: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example\n",
      SW_EPROTO, 3,
      "mx \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\": label 1 is 64 octets, more than "
      "63"),
    P("mx non-ascii", HDR "mx: m\xc3\xa4il.example\n", SW_EPROTO, 3,
      "mx \"m\\xc3\\xa4il.example\": label 1 has invalid character \"\\xc3\""),
    P("leading whitespace", " version: STSv1\n", SW_EPROTO, 1, "leading whitespace"),
    P("leading tab", "version: STSv1\n\tmode: enforce\n", SW_EPROTO, 2, "leading whitespace"),
    P("space before colon", "version : STSv1\n", SW_EPROTO, 1, "whitespace before ':'"),
    P("no colon", "version STSv1\n", SW_EPROTO, 1, "no ':' in \"version STSv1\""),
    P("equals instead of colon", "version=STSv1\n", SW_EPROTO, 1, "no ':' in \"version=STSv1\""),
    P("empty line", "version: STSv1\n\nmode: enforce\n", SW_EPROTO, 2, "empty line"),
    P("two terminators at end", HDR "mx: a.example\nmax_age: 1\n\n", SW_EPROTO, 5, "empty line"),
    P("CRLF empty line", "version: STSv1\r\n\r\nmode: enforce\r\n", SW_EPROTO, 2, "empty line"),
    P("bare CR separators", "version: STSv1\rmode: enforce\r", SW_EPROTO, 1,
      "CR not followed by LF"),
    P("CR CR LF", "version: STSv1\r\r\n", SW_EPROTO, 1, "CR not followed by LF"),
    P("NUL byte", "version: STSv1\nmode: enf\0orce\n", SW_EPROTO, 2, "control character 0x00"),
    P("DEL byte", "version: STSv1\nx: a\x7f\n", SW_EPROTO, 2, "control character 0x7f"),
    P("tab inside value", "version: STSv1\next: a\tb\n", SW_EPROTO, 2, "tab inside a value"),
    P("invalid UTF-8", "version: STSv1\next: caf\xc3\n", SW_EPROTO, 2, "invalid UTF-8 at column 9"),
    P("overlong UTF-8", "version: STSv1\next: \xc0\xaf\n", SW_EPROTO, 2,
      "invalid UTF-8 at column 6"),
    P("UTF-16 surrogate", "version: STSv1\next: \xed\xa0\x80\n", SW_EPROTO, 2,
      "invalid UTF-8 at column 6"),
    P("non-ASCII field name", "v\xc3\xa9rsion: STSv1\n", SW_EPROTO, 1,
      "invalid character \"\\xc3\" in field name"),
    P("underscore first", "_ext: x\n", SW_EPROTO, 1,
      "field name \"_ext\" does not start with a letter or digit"),
    P("name too long", "abcdefghijabcdefghijabcdefghijabc: x\n", SW_EPROTO, 1,
      "field name \"abcdefghijabcdefghijabcdefghijabc\" is longer than 32 characters"),
    P("empty name", ": STSv1\n", SW_EPROTO, 1, "empty field name"),
    P("extension without value", "version: STSv1\next:\n", SW_EPROTO, 2,
      "field \"ext\" has no value"),
    P("extension only spaces", "version: STSv1\next:   \n", SW_EPROTO, 2,
      "field \"ext\" has no value"),
};

static void test_bad_policies(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_policies / sizeof bad_policies[0]; i++) {
        const struct pcase *c = &bad_policies[i];
        struct mtasts_policy p;
        struct mtasts_error e;
        int rc = mtasts_policy_parse(c->text, c->len, &p, &e);
        if (rc != c->rc || e.line != c->line || strcmp(e.reason, c->reason) != 0) {
            print_error("case \"%s\": got rc %d line %d reason '%s'\n", c->name, rc, e.line,
                        e.reason);
            print_error("   expected rc %d line %d reason '%s'\n", c->rc, c->line, c->reason);
            fail();
        }
        assert_int_equal(p.n_mx, 0); /* cleared on failure */
    }
    assert_true(sizeof bad_policies / sizeof bad_policies[0] >= 30);
}

static void test_error_format(void **state)
{
    struct mtasts_policy p;
    struct mtasts_error e;
    char buf[200];

    (void)state;
    assert_int_equal(mtasts_policy_parse(S(HDR "mx: a.example\nmax_age: 31557601\n"), &p, &e),
                     SW_EPROTO);
    assert_string_equal(mtasts_error_format(&e, buf, sizeof buf),
                        "line 4: max_age \"31557601\" exceeds 31557600");
    assert_int_equal(mtasts_policy_parse(S(HDR), &p, &e), SW_EPROTO);
    assert_string_equal(mtasts_error_format(&e, buf, sizeof buf), "max_age field missing");
    /* err may be NULL */
    assert_int_equal(mtasts_policy_parse(S("x"), &p, NULL), SW_EPROTO);
}

static void test_body_limits(void **state)
{
    struct mtasts_policy p;
    struct mtasts_error e;
    size_t big = MTASTS_MAX_BODY + 1;
    char *t = malloc(big + 64);
    size_t n = 0;

    (void)state;
    /* A valid policy padded with an extension field to exactly 64 KiB is
     * accepted; one byte more is rejected before parsing. */
    n += (size_t)sprintf(t, "version: STSv1\nmode: none\nmax_age: 1\npad: ");
    while (n < MTASTS_MAX_BODY - 1)
        t[n++] = 'x';
    t[n++] = '\n';
    assert_int_equal(n, MTASTS_MAX_BODY);
    assert_int_equal(mtasts_policy_parse(t, n, &p, &e), SW_OK);
    mtasts_policy_clear(&p);
    t[n - 1] = 'x';
    t[n++] = '\n';
    assert_int_equal(mtasts_policy_parse(t, n, &p, &e), SW_EPROTO);
    assert_int_equal(e.line, 0);
    assert_string_equal(e.reason, "policy is 65537 bytes, more than 65536");

    /* 64 mx patterns are kept, the 65th is refused (bound). */
    n = (size_t)sprintf(t, "version: STSv1\nmode: enforce\nmax_age: 60\n");
    for (int i = 0; i < MTASTS_MX_MAX; i++)
        n += (size_t)sprintf(t + n, "mx: mx%d.example.org\n", i);
    assert_int_equal(mtasts_policy_parse(t, n, &p, &e), SW_OK);
    assert_int_equal(p.n_mx, MTASTS_MX_MAX);
    assert_string_equal(p.mx[63], "mx63.example.org");
    mtasts_policy_clear(&p);
    n += (size_t)sprintf(t + n, "mx: mx64.example.org\n");
    assert_int_equal(mtasts_policy_parse(t, n, &p, &e), SW_ELIMIT);
    assert_int_equal(e.line, 68);
    assert_string_equal(e.reason, "more than 64 mx patterns (bound)");
    assert_int_equal(p.n_mx, 0);
    free(t);
}

static void test_valid_edges(void **state)
{
    struct mtasts_policy p, c;
    struct mtasts_error e;

    (void)state;
    /* mode none needs no mx. */
    assert_int_equal(mtasts_policy_parse(S("version: STSv1\nmode: none\nmax_age: 86400\n"), &p, &e),
                     SW_OK);
    assert_int_equal(p.mode, MTASTS_MODE_NONE);
    assert_int_equal(p.n_mx, 0);
    assert_int_equal(p.max_age, 86400);
    mtasts_policy_clear(&p);

    /* mode none with mx: kept. */
    assert_int_equal(
        mtasts_policy_parse(S("version: STSv1\nmode: none\nmx: a.example\nmax_age: 1\n"), &p, &e),
        SW_OK);
    assert_int_equal(p.n_mx, 1);
    mtasts_policy_clear(&p);

    /* max_age 0 is allowed by sts-policy-max-age-value = 1*10DIGIT. */
    assert_int_equal(mtasts_policy_parse(
                         S("version: STSv1\nmode: testing\nmx: a.example\nmax_age: 0\n"), &p, &e),
                     SW_OK);
    assert_int_equal(p.mode, MTASTS_MODE_TESTING);
    assert_int_equal(p.max_age, 0);
    mtasts_policy_clear(&p);

    /* The maximum, and leading zeros within 10 digits. */
    assert_int_equal(mtasts_policy_parse(S(HDR "mx: a.example\nmax_age: 31557600\n"), &p, &e),
                     SW_OK);
    assert_int_equal(p.max_age, 31557600);
    mtasts_policy_clear(&p);
    assert_int_equal(mtasts_policy_parse(S(HDR "mx: a.example\nmax_age: 0000604800\n"), &p, &e),
                     SW_OK);
    assert_int_equal(p.max_age, 604800);
    mtasts_policy_clear(&p);

    /* Repeated non-mx fields: the first wins; later ones need only be valid
     * extension fields (§3.2 "ignore all but the first instance"). */
    assert_int_equal(mtasts_policy_parse(S("version: STSv1\nmode: testing\nmode: enforce\n"
                                           "mode: bogus\nmx: a.example\nmax_age: 10\n"
                                           "max_age: 99999999999\nversion: STSv2\n"),
                                         &p, &e),
                     SW_OK);
    assert_int_equal(p.mode, MTASTS_MODE_TESTING);
    assert_int_equal(p.max_age, 10);
    mtasts_policy_clear(&p);

    /* Extension fields (and case variants of known names) are ignored. */
    assert_int_equal(
        mtasts_policy_parse(S("version: STSv1\nmode: enforce\nMode: none\ncomment: caf\xc3\xa9 "
                              "\xe2\x9c\x93 ok\nx-ext.1_a: v=1; w=2\nmx: MX1.Example.COM\n"
                              "max_age: 604800\n9field: 1\n"),
                            &p, &e),
        SW_OK);
    assert_int_equal(p.mode, MTASTS_MODE_ENFORCE);
    assert_int_equal(p.n_mx, 1);
    assert_string_equal(p.mx[0], "MX1.Example.COM");

    /* Copy is deep. */
    assert_int_equal(mtasts_policy_copy(&c, &p), SW_OK);
    mtasts_policy_clear(&p);
    assert_int_equal(c.n_mx, 1);
    assert_string_equal(c.mx[0], "MX1.Example.COM");
    assert_int_equal(c.max_age, 604800);
    assert_int_equal(c.mode, MTASTS_MODE_ENFORCE);
    mtasts_policy_clear(&c);
    mtasts_policy_clear(NULL);

    assert_string_equal(mtasts_mode_str(MTASTS_MODE_NONE), "none");
    assert_string_equal(mtasts_mode_str(MTASTS_MODE_TESTING), "testing");
    assert_string_equal(mtasts_mode_str(MTASTS_MODE_ENFORCE), "enforce");
}

struct tcase {
    const char *txt;
    size_t len;
    int rc;
    const char *want; /* id on SW_OK, reason on SW_EPROTO */
};

#define T(t, rc, w)                                                                                \
    {                                                                                              \
        t, sizeof(t) - 1, rc, w                                                                    \
    }

static const struct tcase txt_cases[] = {
    /* valid */
    T("v=STSv1; id=20160831085700Z;", SW_OK, "20160831085700Z"),
    T("v=STSv1; id=20160831085700Z", SW_OK, "20160831085700Z"),
    T("v=STSv1;id=abc", SW_OK, "abc"),
    T("v=STSv1 ; id=abc", SW_OK, "abc"),
    T("v=STSv1;\tid=abc;\t", SW_OK, "abc"),
    T("v=STSv1; id=abc; ", SW_OK, "abc"),
    T("v=STSv1; id=abc; ext=value", SW_OK, "abc"),
    T("v=STSv1; ext-1.x_y=v!:<>~; id=abc", SW_OK, "abc"),
    T("v=STSv1; id=first; id=second-is-ignored", SW_OK, "first"),
    T("v=STSv1; ID=upper; id=lower", SW_OK, "lower"),
    T("v=STSv1; id=ABCDEFGHIJabcdefghij012345678901", SW_OK, "ABCDEFGHIJabcdefghij012345678901"),
    T("v=STSv1; id=1", SW_OK, "1"),
    /* not STSv1: discarded by the caller */
    T("", SW_AGAIN, ""),
    T("v=spf1 -all", SW_AGAIN, ""),
    T("v=STSv10; id=1", SW_AGAIN, ""),
    T("v=STSv2; id=1", SW_AGAIN, ""),
    T("V=STSv1; id=1", SW_AGAIN, ""),
    T("v=stsv1; id=1", SW_AGAIN, ""),
    T(" v=STSv1; id=1", SW_AGAIN, ""),
    T("id=abc; v=STSv1", SW_AGAIN, ""),
    T("v=STSv", SW_AGAIN, ""),
    T("v=STSv1,id=1", SW_AGAIN, ""),
    /* STSv1 but malformed */
    T("v=STSv1", SW_EPROTO, "id field missing"),
    T("v=STSv1;", SW_EPROTO, "id field missing"),
    T("v=STSv1; ", SW_EPROTO, "id field missing"),
    T("v=STSv1; ext=1", SW_EPROTO, "id field missing"),
    T("v=STSv1; ID=abc", SW_EPROTO, "id field missing"),
    T("v=STSv1; id=", SW_EPROTO, "field \"id\" has an empty value"),
    T("v=STSv1; id=;", SW_EPROTO, "field \"id\" has an empty value"),
    T("v=STSv1; id=2016-08-31", SW_EPROTO, "id \"2016-08-31\" has \"-\", not a letter or digit"),
    T("v=STSv1; id=abc.def", SW_EPROTO, "id \"abc.def\" has \".\", not a letter or digit"),
    T("v=STSv1; id=ABCDEFGHIJabcdefghij0123456789012", SW_EPROTO,
      "id is 33 characters, more than 32"),
    T("v=STSv1;; id=abc", SW_EPROTO, "column 9: empty field"),
    T("v=STSv1; id=abc;;", SW_EPROTO, "column 17: empty field"),
    T("v=STSv1 id=abc", SW_EPROTO, "column 9: expected ';', found \"i\""),
    T("v=STSv1; id=abc def", SW_EPROTO, "column 17: expected ';', found \"d\""),
    T("v=STSv1; id=abc ", SW_EPROTO, "whitespace at the end of the record without ';'"),
    T("v=STSv1; id abc", SW_EPROTO, "column 12: invalid character \" \" in field name"),
    T("v=STSv1; id=a=b", SW_EPROTO, "column 14: invalid character \"=\" in a value"),
    T("v=STSv1; id=abc\x01", SW_EPROTO, "column 16: invalid character \"\\x01\" in a value"),
    T("v=STSv1; id=abc\xc3\xa9", SW_EPROTO, "column 16: invalid character \"\\xc3\" in a value"),
    T("v=STSv1; id=abc\0", SW_EPROTO, "column 16: invalid character \"\\x00\" in a value"),
    T("v=STSv1; _x=1; id=abc", SW_EPROTO,
      "column 10: field name starts with \"_\", not a letter or digit"),
    T("v=STSv1; id=abc; ext", SW_EPROTO, "field \"ext\" has no '='"),
    T("v=STSv1; id=abc; ext=", SW_EPROTO, "field \"ext\" has an empty value"),
    T("v=STSv1; abcdefghijabcdefghijabcdefghijabc=1; id=abc", SW_EPROTO,
      "field name \"abcdefghijabcdefghijabcdefghijabc\" is longer than 32 characters"),
};

static void test_txt(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof txt_cases / sizeof txt_cases[0]; i++) {
        const struct tcase *c = &txt_cases[i];
        char id[33];
        struct mtasts_error e;
        int rc = mtasts_txt_parse(c->txt, c->len, id, &e);
        const char *got = rc == SW_OK ? id : rc == SW_EPROTO ? e.reason : "";
        if (rc != c->rc || strcmp(got, c->want) != 0 || e.line != 0) {
            print_error("TXT case %zu: got rc %d '%s', expected rc %d '%s'\n", i, rc, got, c->rc,
                        c->want);
            fail();
        }
    }
}

struct mcase {
    const char *pattern, *host;
    bool match;
};

static const struct mcase mx_cases[] = {
    {"mail.example.com", "mail.example.com", true},
    {"mail.example.com", "MAIL.Example.COM", true},
    {"MAIL.EXAMPLE.COM", "mail.example.com", true},
    {"mail.example.com", "mail.example.com.", true},
    {"mail.example.com.", "mail.example.com", true},
    {"mail.example.com", "mail.example.co", false},
    {"mail.example.com", "xmail.example.com", false},
    {"mail.example.com", "mail.example.com.evil", false},
    {"mail.example.com", "mail.example.com..", false},
    {"*.example.com", "mail.example.com", true},
    {"*.example.com", "MX-1.EXAMPLE.COM.", true},
    {"*.example.com", "example.com", false},
    {"*.example.com", "a.b.example.com", false},
    {"*.example.com", ".example.com", false},
    {"*.example.com", "mailexample.com", false},
    {"*.example.com", "mail.example.org", false},
    {"*.example.com", "*.example.com", false},
    {"*.example.com", "mail.example.com.example.com", false},
    {"*.example.com.", "mail.example.com", true},
    {"mail.*.com", "mail.example.com", false},
    {"*mail.example.com", "xmail.example.com", false},
    {"*", "example", false},
    {"*.", "example", false},
    {"192.0.2.1", "192.0.2.1", false},
    {"*.0.2.1", "192.0.2.1", false},
    {"*.2.1", "192.0.2.1", false},
    {"2001:db8::1", "2001:db8::1", false},
    {"[192.0.2.1]", "[192.0.2.1]", false},
    {"*.example.com", "[192.0.2.1]", false},
    {"[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]", false},
    {"127.1", "127.1", false},
    {"mail.example.com", "", false},
    {"", "", false},
    {"mail.example.com", "mail example.com", false},
    {"mail.example.com", "mail.example.com\r", false},
};

static void test_mx_match(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof mx_cases / sizeof mx_cases[0]; i++) {
        const struct mcase *c = &mx_cases[i];
        if (mtasts_mx_pattern_match(c->pattern, c->host) != c->match) {
            print_error("MX case %zu: pattern '%s' host '%s' expected %s\n", i, c->pattern, c->host,
                        c->match ? "match" : "no match");
            fail();
        }
    }
    assert_false(mtasts_mx_pattern_match(NULL, "a.example"));
    assert_false(mtasts_mx_pattern_match("a.example", NULL));

    struct mtasts_policy p;
    struct mtasts_error e;
    assert_int_equal(mtasts_policy_parse(S(RFC_EXAMPLE), &p, &e), SW_OK);
    assert_true(mtasts_mx_match(&p, "mail.example.com"));
    assert_true(mtasts_mx_match(&p, "mx7.example.net"));
    assert_true(mtasts_mx_match(&p, "BACKUPMX.example.com."));
    assert_false(mtasts_mx_match(&p, "example.net"));
    assert_false(mtasts_mx_match(&p, "a.mx7.example.net"));
    assert_false(mtasts_mx_match(&p, "198.51.100.25"));
    assert_false(mtasts_mx_match(NULL, "mail.example.com"));
    mtasts_policy_clear(&p);

    assert_true(mtasts_is_ip_literal("192.0.2.1"));
    assert_true(mtasts_is_ip_literal("192.0.2.1."));
    assert_true(mtasts_is_ip_literal("::1"));
    assert_true(mtasts_is_ip_literal("[IPv6:::1]"));
    assert_false(mtasts_is_ip_literal("mail.example.com"));
    assert_false(mtasts_is_ip_literal("1mail.example.com"));
}

static void test_domain_and_id(void **state)
{
    char why[96];

    (void)state;
    assert_true(mtasts_domain_is_valid(S("example.org"), why, sizeof why));
    assert_true(mtasts_domain_is_valid(S("localhost"), why, sizeof why));
    assert_true(mtasts_domain_is_valid(S("xn--bcher-kva.example"), why, sizeof why));
    assert_false(mtasts_domain_is_valid(S("a..b"), why, sizeof why));
    assert_string_equal(why, "label 2 is empty");
    assert_false(mtasts_domain_is_valid(S(""), why, sizeof why));
    assert_string_equal(why, "empty name");
    assert_false(mtasts_domain_is_valid(S("a.b."), NULL, 0));

    char big[300];
    memset(big, 'a', sizeof big);
    for (size_t i = 63; i < sizeof big; i += 64)
        big[i] = '.';
    assert_false(mtasts_domain_is_valid(big, 254, why, sizeof why));
    assert_string_equal(why, "name is 254 octets, more than 253");
    assert_true(mtasts_domain_is_valid(big, 253, why, sizeof why));

    assert_true(mtasts_id_is_valid(S("20261101T000000")));
    assert_false(mtasts_id_is_valid(S("")));
    assert_false(mtasts_id_is_valid(S("a-b")));
    assert_false(mtasts_id_is_valid(S("012345678901234567890123456789012")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_example),  cmocka_unit_test(test_bad_policies),
        cmocka_unit_test(test_error_format), cmocka_unit_test(test_body_limits),
        cmocka_unit_test(test_valid_edges),  cmocka_unit_test(test_txt),
        cmocka_unit_test(test_mx_match),     cmocka_unit_test(test_domain_and_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
