/* SPDX-License-Identifier: Apache-2.0 */
/* test_snapshot.c: unit tests of the MTA-STS policy snapshot file
 * (policy/snapshot.c): exact output, round trip, partial load with exact
 * per-entry reports, files that are not JSON, atomic save errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "decode/sw.h"
#include "policy/snapshot.h"

static char tmpdir[4096];
static char olddir[4096];

/* Every test runs inside a fresh temporary directory, so that file names
 * in messages are relative and exact. */
static int setup(void **state)
{
    const char *t = getenv("TMPDIR");
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "%s/sw-snapshot-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir) || !getcwd(olddir, sizeof olddir) || chdir(tmpdir) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[4200];
    if (chdir(olddir) != 0)
        return -1;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *name, const char *s)
{
    FILE *f = fopen(name, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(s, 1, strlen(s), f), strlen(s));
    assert_int_equal(fclose(f), 0);
}

static char *read_file(const char *name)
{
    FILE *f = fopen(name, "rb");
    static char buf[65536];
    size_t n;
    assert_non_null(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* What the callbacks saw, as text. */
struct seen {
    char log[8192];
    struct snapshot_item items[16];
    char store[16][3][512];
    size_t n;
};

static int on_entry(void *arg, const struct snapshot_entry *e)
{
    struct seen *s = arg;
    char line[600];
    snprintf(line, sizeof line, "ok %s id=%s mode=%s mx=%zu max_age=%u at=%lld len=%zu\n",
             e->domain, e->id, mtasts_mode_str(e->policy->mode), e->policy->n_mx,
             e->policy->max_age, (long long)e->fetched_at, e->text_len);
    strcat(s->log, line);
    if (s->n < 16) {
        snprintf(s->store[s->n][0], 512, "%s", e->domain);
        snprintf(s->store[s->n][1], 512, "%s", e->id);
        snprintf(s->store[s->n][2], 512, "%s", e->text);
        s->items[s->n] = (struct snapshot_item){s->store[s->n][0], s->store[s->n][1],
                                                s->store[s->n][2], e->text_len, e->fetched_at};
        s->n++;
    }
    return 0;
}

static void on_error(void *arg, const struct snapshot_error *e)
{
    struct seen *s = arg;
    char line[600];
    snapshot_error_format(e, line, sizeof line);
    strcat(s->log, "error ");
    strcat(s->log, line);
    strcat(s->log, "\n");
}

static const char expected_file[] =
    "{\n"
    "  \"a.example\": {\n"
    "    \"id\": \"1\",\n"
    "    \"policy\": \"version: STSv1\\nmode: none\\nmax_age: 0\\n\",\n"
    "    \"fetched_at\": \"1970-01-01T00:00:00Z\"\n"
    "  },\n"
    "  \"example.org\": {\n"
    "    \"id\": \"20261101T000000\",\n"
    "    \"policy\": \"version: STSv1\\nmode: enforce\\nmx: mx1.example.org\\nmax_age: "
    "604800\\n\",\n"
    "    \"fetched_at\": \"2026-11-20T08:00:00Z\"\n"
    "  },\n"
    "  \"z.example\": {\n"
    "    \"id\": \"abc\",\n"
    "    \"policy\": \"version: STSv1\\r\\nmode: testing\\r\\nmx: *.z.example\\r\\nmax_age: "
    "86400\\r\\ncomment: caf\xc3\xa9 \\\"q\\\"\",\n"
    "    \"fetched_at\": \"2000-02-29T23:59:59Z\"\n"
    "  }\n"
    "}\n";

static void test_round_trip(void **state)
{
    static const char t1[] =
        "version: STSv1\nmode: enforce\nmx: mx1.example.org\nmax_age: 604800\n";
    static const char t2[] = "version: STSv1\r\nmode: testing\r\nmx: *.z.example\r\n"
                             "max_age: 86400\r\ncomment: caf\xc3\xa9 \"q\"";
    static const char t3[] = "version: STSv1\nmode: none\nmax_age: 0\n";
    const struct snapshot_item items[] = {
        {"Z.Example.", "abc", t2, sizeof t2 - 1, 951868799},
        {"example.org", "20261101T000000", t1, sizeof t1 - 1, 1795161600},
        {"a.example", "1", t3, sizeof t3 - 1, 0},
    };
    char err[256];
    struct seen *s = calloc(1, sizeof *s);
    struct snapshot_stats st;

    (void)state;
    assert_int_equal(snapshot_save("policies.json", items, 3, err, sizeof err), SW_OK);
    assert_string_equal(err, "");
    assert_string_equal(read_file("policies.json"), expected_file);

    assert_int_equal(snapshot_load("policies.json", on_entry, on_error, s, &st), SW_OK);
    assert_string_equal(
        s->log, "ok a.example id=1 mode=none mx=0 max_age=0 at=0 len=37\n"
                "ok example.org id=20261101T000000 mode=enforce mx=1 max_age=604800 "
                "at=1795161600 len=65\n"
                "ok z.example id=abc mode=testing mx=1 max_age=86400 at=951868799 len=82\n");
    assert_int_equal(st.loaded, 3);
    assert_int_equal(st.rejected, 0);
    assert_string_equal(s->store[2][2], t2); /* text kept exactly */

    /* Saving what was loaded writes the same bytes. */
    assert_int_equal(snapshot_save("again.json", s->items, s->n, err, sizeof err), SW_OK);
    assert_string_equal(read_file("again.json"), expected_file);
    /* No temporary file is left behind. */
    assert_int_equal(system("test $(ls | wc -l) -eq 2"), 0);

    /* An empty snapshot is an empty object. */
    assert_int_equal(snapshot_save("empty.json", NULL, 0, err, sizeof err), SW_OK);
    assert_string_equal(read_file("empty.json"), "{}\n");
    memset(s, 0, sizeof *s);
    assert_int_equal(snapshot_load("empty.json", on_entry, on_error, s, &st), SW_OK);
    assert_string_equal(s->log, "");
    assert_int_equal(st.loaded, 0);
    free(s);
}

static void test_partial_load(void **state)
{
    struct seen *s = calloc(1, sizeof *s);
    struct snapshot_stats st;

    (void)state;
    write_file(
        "policies.json",
        "{\"good.example\": {\"id\": \"1\", \"policy\": \"version: STSv1\\nmode: enforce\\n"
        "mx: mx.good.example\\nmax_age: 604800\\n\", \"fetched_at\": "
        "\"2026-11-20T08:00:00Z\", \"source\": \"https\"},\n"
        " \"a.org\": {\"id\": \"2\", \"policy\": \"version: STSv1\\nmode: enforce\\n"
        "max_age: 9x\\n\", \"fetched_at\": \"2026-11-20T08:00:00Z\"},\n"
        " \"bad..example\": {\"id\": \"3\", \"policy\": \"\", \"fetched_at\": \"\"},\n"
        " \"id.example\": {\"id\": \"2026-11-01\", \"policy\": \"\", \"fetched_at\": \"\"},\n"
        " \"noid.example\": {\"policy\": \"\", \"fetched_at\": \"\"},\n"
        " \"num.example\": {\"id\": 5, \"policy\": \"\", \"fetched_at\": \"\"},\n"
        " \"arr.example\": [1],\n"
        " \"time.example\": {\"id\": \"4\", \"policy\": \"version: STSv1\\nmode: none\\n"
        "max_age: 1\\n\", \"fetched_at\": \"2026-02-29T08:00:00Z\"},\n"
        " \"old.example\": {\"id\": \"9\", \"policy\": \"version: STSv1\\nmode: none\\n"
        "max_age: 1\\n\", \"fetched_at\": \"1969-12-31T23:59:59Z\"},\n"
        " \"nopolicy.example\": {\"id\": \"5\", \"fetched_at\": \"2026-11-20T08:00:00Z\"},\n"
        " \"GOOD.example.\": {\"id\": \"6\", \"policy\": \"\", \"fetched_at\": \"\"},\n"
        " \"Second.Example.\": {\"id\": \"7\", \"policy\": \"version: STSv1\\nmode: none\\n"
        "max_age: 1\\n\", \"fetched_at\": \"2026-11-20T08:00:01Z\"},\n"
        " \"nomx.example\": {\"id\": \"8\", \"policy\": \"version: STSv1\\nmode: enforce\\n"
        "max_age: 1\\n\", \"fetched_at\": \"2026-11-20T08:00:00Z\"}}\n");
    assert_int_equal(snapshot_load("policies.json", on_entry, on_error, s, &st), SW_OK);
    assert_string_equal(
        s->log,
        "ok good.example id=1 mode=enforce mx=1 max_age=604800 at=1795161600 len=65\n"
        "error policies.json: domain \"a.org\": line 3: max_age \"9x\" is not 1-10 digits\n"
        "error policies.json: domain \"bad..example\": not a valid domain name: label 2 is "
        "empty\n"
        "error policies.json: domain \"id.example\": id \"2026-11-01\" is not 1-32 letters or "
        "digits\n"
        "error policies.json: domain \"noid.example\": \"id\" missing\n"
        "error policies.json: domain \"num.example\": \"id\" is not a string\n"
        "error policies.json: domain \"arr.example\": entry is not a JSON object\n"
        "error policies.json: domain \"time.example\": fetched_at \"2026-02-29T08:00:00Z\" is "
        "not an RFC 3339 UTC time YYYY-MM-DDTHH:MM:SSZ\n"
        /* found by fuzz_snapshot: loaded, then every --save-policies failed */
        "error policies.json: domain \"old.example\": fetched_at \"1969-12-31T23:59:59Z\" is "
        "before 1970\n"
        "error policies.json: domain \"nopolicy.example\": \"policy\" missing\n"
        "error policies.json: domain \"GOOD.example.\": duplicate of an earlier entry for "
        "good.example\n"
        "ok second.example id=7 mode=none mx=0 max_age=1 at=1795161601 len=37\n"
        "error policies.json: domain \"nomx.example\": mx field missing (required when mode is "
        "enforce)\n");
    assert_int_equal(st.loaded, 2);
    assert_int_equal(st.rejected, 11);

    /* Without an error callback the same entries load. */
    memset(s, 0, sizeof *s);
    assert_int_equal(snapshot_load("policies.json", on_entry, NULL, s, NULL), SW_OK);
    assert_int_equal(s->n, 2);
    free(s);
}

static int stop_second(void *arg, const struct snapshot_entry *e)
{
    int *n = arg;
    (void)e;
    return ++*n == 2 ? SW_ENOMEM : 0;
}

static void test_stop(void **state)
{
    int n = 0;
    struct snapshot_stats st;
    (void)state;
    write_file("p.json", "{\"a.example\": {\"id\": \"1\", \"policy\": \"version: STSv1\\nmode: "
                         "none\\nmax_age: 1\\n\", \"fetched_at\": \"2026-11-20T08:00:00Z\"},"
                         "\"b.example\": {\"id\": \"1\", \"policy\": \"version: STSv1\\nmode: "
                         "none\\nmax_age: 1\\n\", \"fetched_at\": \"2026-11-20T08:00:00Z\"},"
                         "\"c.example\": {\"id\": \"1\", \"policy\": \"version: STSv1\\nmode: "
                         "none\\nmax_age: 1\\n\", \"fetched_at\": \"2026-11-20T08:00:00Z\"}}");
    assert_int_equal(snapshot_load("p.json", stop_second, NULL, &n, &st), SW_ENOMEM);
    assert_int_equal(n, 2);
    assert_int_equal(st.loaded, 1);
}

static void load_expect(const char *name, const char *content, int rc, const char *log)
{
    struct seen *s = calloc(1, sizeof *s);
    struct snapshot_stats st;
    if (content)
        write_file(name, content);
    assert_int_equal(snapshot_load(name, on_entry, on_error, s, &st), rc);
    assert_string_equal(s->log, log);
    assert_int_equal(st.loaded, 0);
    free(s);
}

static void test_bad_files(void **state)
{
    (void)state;
    load_expect("missing.json", NULL, SW_EIO,
                "error missing.json: cannot open: No such file or directory\n");
    load_expect("text.json", "version: STSv1\n", SW_EPROTO,
                "error text.json: line 1, column 7: not valid JSON: '[' or '{' expected near "
                "'version'\n");
    load_expect("cut.json", "{\"a.example\": {\"id\": \"1\",\n \"policy\": ", SW_EPROTO,
                "error cut.json: line 2, column 11: not valid JSON: unexpected token near end "
                "of file\n");
    load_expect("array.json", "[{\"a.example\": {}}]", SW_EPROTO,
                "error array.json: top level is not a JSON object\n");
    load_expect("dup.json", "{\"a.example\": {},\n\"a.example\": {}}", SW_EPROTO,
                "error dup.json: line 2, column 11: not valid JSON: duplicate object key near "
                "'\"a.example\"'\n");
    load_expect("empty.json", "", SW_EPROTO,
                "error empty.json: line 1, column 0: not valid JSON: '[' or '{' expected near end "
                "of file\n");
}

static void test_save_errors(void **state)
{
    static const char t[] = "version: STSv1\nmode: none\nmax_age: 1\n";
    char err[256];
    (void)state;

    struct snapshot_item bad_domain[] = {{"a..example", "1", t, sizeof t - 1, 0}};
    assert_int_equal(snapshot_save("s.json", bad_domain, 1, err, sizeof err), SW_EPROTO);
    assert_string_equal(err, "s.json: domain \"a..example\": not a valid domain name: label 2 is "
                             "empty");

    struct snapshot_item dup[] = {{"a.example", "1", t, sizeof t - 1, 0},
                                  {"A.EXAMPLE.", "2", t, sizeof t - 1, 0}};
    assert_int_equal(snapshot_save("s.json", dup, 2, err, sizeof err), SW_EPROTO);
    assert_string_equal(err, "s.json: domain \"a.example\": listed twice");

    struct snapshot_item bad_id[] = {{"a.example", "x-1", t, sizeof t - 1, 0}};
    assert_int_equal(snapshot_save("s.json", bad_id, 1, err, sizeof err), SW_EPROTO);
    assert_string_equal(err, "s.json: domain \"a.example\": id \"x-1\" is not 1-32 letters or "
                             "digits");

    struct snapshot_item bad_pol[] = {{"a.example", "1", "version: STSv1\n", 15, 0}};
    assert_int_equal(snapshot_save("s.json", bad_pol, 1, err, sizeof err), SW_EPROTO);
    assert_string_equal(err, "s.json: domain \"a.example\": mode field missing");

    struct snapshot_item bad_time[] = {{"a.example", "1", t, sizeof t - 1, -1}};
    assert_int_equal(snapshot_save("s.json", bad_time, 1, err, sizeof err), SW_EPROTO);
    assert_string_equal(err, "s.json: domain \"a.example\": fetched_at -1 out of range");

    struct snapshot_item ok[] = {{"a.example", "1", t, sizeof t - 1, 0}};
    assert_int_equal(snapshot_save("nodir/s.json", ok, 1, err, sizeof err), SW_EIO);
    assert_string_equal(err, "nodir/s.json: cannot create a temporary file: No such file or "
                             "directory");
    /* Nothing was written by the failed saves. */
    assert_int_equal(access("s.json", F_OK), -1);

    /* A failed save leaves the previous file intact. */
    assert_int_equal(snapshot_save("s.json", ok, 1, err, sizeof err), SW_OK);
    char *before = strdup(read_file("s.json"));
    assert_non_null(before);
    assert_int_equal(snapshot_save("s.json", dup, 2, err, sizeof err), SW_EPROTO);
    assert_string_equal(read_file("s.json"), before);
    free(before);
}

static void test_time(void **state)
{
    int64_t t;
    char buf[32];
    (void)state;

    assert_true(snapshot_time_parse("2026-11-20T08:00:00Z", 20, &t));
    assert_int_equal(t, 1795161600);
    assert_true(snapshot_time_parse("1970-01-01T00:00:00Z", 20, &t));
    assert_int_equal(t, 0);
    assert_true(snapshot_time_parse("2000-02-29T23:59:59Z", 20, &t));
    assert_int_equal(t, 951868799);
    assert_true(snapshot_time_parse("1969-12-31T23:59:59Z", 20, &t));
    assert_int_equal(t, -1);
    assert_false(snapshot_time_parse("1900-02-29T00:00:00Z", 20, &t));
    assert_false(snapshot_time_parse("2026-11-20T08:00:00+00:00", 25, &t));
    assert_false(snapshot_time_parse("2026-11-20 08:00:00Z", 20, &t));
    assert_false(snapshot_time_parse("2026-11-20T08:00:00z", 20, &t));
    assert_false(snapshot_time_parse("2026-11-20T24:00:00Z", 20, &t));
    assert_false(snapshot_time_parse("2026-11-20T08:60:00Z", 20, &t));
    assert_false(snapshot_time_parse("2026-11-20T08:00:60Z", 20, &t));
    assert_false(snapshot_time_parse("2026-00-20T08:00:00Z", 20, &t));
    assert_false(snapshot_time_parse("2026-04-31T08:00:00Z", 20, &t));
    assert_false(snapshot_time_parse("2026-11-20T08:00:00.5Z", 22, &t));
    assert_false(snapshot_time_parse("+026-11-20T08:00:00Z", 20, &t));
    snapshot_time_format(1795161600, buf);
    assert_string_equal(buf, "2026-11-20T08:00:00Z");
    snapshot_time_format(951868799, buf);
    assert_string_equal(buf, "2000-02-29T23:59:59Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_errors, setup, teardown),
        cmocka_unit_test(test_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
