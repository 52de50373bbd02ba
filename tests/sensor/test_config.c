/* SPDX-License-Identifier: Apache-2.0 */
/* test_config.c: the config file and the command line over it
 * (sensor/config.c, sensor/cli.c): every error line exact (file and line),
 * comments as libinih reads them, flags overriding the file, repeatable
 * keys, rule sections, and the defaults under the state directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sensor/sensor.h"

static char dir[256], conf[300];

static void write_conf(const char *text)
{
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* sensor_opts_load on "stripwatch ARGS..." (NULL-terminated); returns its
 * code, the options in o (free them), the error in err. */
static int load(struct sensor_opts *o, char *err, size_t errlen, ...)
{
    static char *argv[32];
    int argc = 0;
    argv[argc++] = "stripwatch";
    va_list ap;
    va_start(ap, errlen);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && argc < 31)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    err[0] = '\0';
    return sensor_opts_load(o, argc, argv, false, err, errlen);
}

/* The error line for conf text, run with -r x: the path, then tail. */
static void expect_error(const char *text, const char *tail)
{
    char want[1024], err[1024];
    snprintf(want, sizeof(want), "%s%s", conf, tail);
    write_conf(text);
    struct sensor_opts o;
    int rc = load(&o, err, sizeof(err), "--config", conf, "-r", "x", NULL);
    sensor_opts_free(&o);
    if (rc != 2 || strcmp(err, want) != 0)
        fail_msg("config:\n%s\ngot %d \"%s\"\nwant 2 \"%s\"", text, rc, err, want);
}

static void test_errors(void **st)
{
    (void)st;
    static const struct {
        const char *text, *err;
    } cases[] = {
        {"alerts-out = a.json\npolciy-file = p.json\n", ":2: unknown key \"polciy-file\""},
        {"workers = 0\n", ":1: workers: \"0\": not a number in 1-64"},
        {"memcap = 12Q\n", ":1: memcap: \"12Q\": not a size (digits with optional K, M or G) "
                           "in 1048576-18446744073709551615"},
        {"immediate = maybe\n",
         ":1: immediate: \"maybe\": not yes, no, true, false, on, off, 1 or 0"},
        {"redis-mode = queue\n",
         ":1: redis-mode: \"queue\": not one of list, lpush, channel, stream"},
        {"rate-limit = -1\n", ":1: rate-limit: \"-1\": not a number in 0-1000000"},
        {"workers = 2\n\nworkers = 3\n", ":3: key \"workers\" given twice (first on line 1)"},
        {"; a comment\njust words\n",
         ":2: syntax error (want key = value, [rule.id] or a comment)"},
        {"[starttls.unused\nenabled = no\n",
         ":1: syntax error (want key = value, [rule.id] or a comment)"},
        {"bpf = tcp\n  port 25\n", /* no continuation lines */
         ":2: syntax error (want key = value, [rule.id] or a comment)"},
        {"[ auth.cleartext ]\n", /* no blanks inside the brackets */
         ":1: unknown rule \" auth.cleartext \" in a section name (see alerts/RULES.md)"},
        {"alerts-out = a\n[starttls.unusd]\nenabled = no\n",
         ":2: unknown rule \"starttls.unusd\" in a section name (see alerts/RULES.md)"},
        {"[starttls.unused]\nenable = no\n",
         ":2: unknown key \"enable\" in [starttls.unused] (enabled, severity, rate-limit)"},
        {"[auth.cleartext]\nseverity = low\nseverity = high\n",
         ":3: key \"severity\" given twice in [auth.cleartext] (first on line 2)"},
        {"[auth.cleartext]\nseverity = critical\n",
         ":2: severity: \"critical\": not low, medium or high"},
        {"[auth.cleartext]\nenabled = nope\n",
         ":2: enabled: \"nope\": not yes, no, true, false, on, off, 1 or 0"},
        {"[auth.cleartext]\nrate-limit = 1000001\n",
         ":2: rate-limit: \"1000001\": not a number in 0-1000000"},
        /* a global key inside a rule section is not that rule's */
        {"[auth.cleartext]\nworkers = 2\n",
         ":2: unknown key \"workers\" in [auth.cleartext] (enabled, severity, rate-limit)"},
        {"config = other.conf\n", ":1: key \"config\": only on the command line"},
        {"help = yes\n", ":1: key \"help\": only on the command line"},
        {"alerts-out =\n", ":1: key \"alerts-out\": empty value"},
        {"allow-server = 10.1.2.3/8\n",
         ":1: allow-server: \"10.1.2.3/8\": bits set past the /8 prefix"},
        {"allow-client = nohost\n",
         ":1: allow-client: \"nohost\": not an IPv4 or IPv6 address (ADDR or ADDR/LEN)"},
        {"allow-domain = -\n", ":1: allow-domain: \"-\": not a domain name"},
        /* the first error counts, whichever kind */
        {"workers = 2\nbad line\npolciy = 1\n",
         ":2: syntax error (want key = value, [rule.id] or a comment)"},
        {"workers = 2\npolciy = 1\nbad line\n", ":2: unknown key \"polciy\""},
        {"interface = eth0\ninterface = eth1\n",
         ":2: key \"interface\" given twice (first on line 1)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cases[i].text, cases[i].err);

    /* a line past libinih's buffer (200 bytes with CR, LF and NUL) */
    char longline[400];
    snprintf(longline, sizeof(longline), "observer-name = %0*d\n", 181, 0);
    assert_int_equal(strlen(longline), 16 + 181 + 1); /* 197 bytes: fits */
    write_conf(longline);
    struct sensor_opts o;
    char err[1024];
    assert_int_equal(load(&o, err, sizeof(err), "--config", conf, "-r", "x", NULL), -1);
    assert_int_equal(strlen(o.observer_name), 181);
    sensor_opts_free(&o);
    snprintf(longline, sizeof(longline), "workers = 1\nobserver-name = %0*d\n", 182, 0);
    expect_error(longline, ":2: line longer than 197 bytes");

    /* the file as a whole */
    char missing[400], want[1024];
    snprintf(missing, sizeof(missing), "%s/none.conf", dir);
    assert_int_equal(load(&o, err, sizeof(err), "--config", missing, "-r", "x", NULL), 2);
    snprintf(want, sizeof(want), "%s: No such file or directory", missing);
    assert_string_equal(err, want);
    sensor_opts_free(&o);
    assert_int_equal(load(&o, err, sizeof(err), "--config", dir, "-r", "x", NULL), 2);
    snprintf(want, sizeof(want), "%s: Is a directory", dir);
    assert_string_equal(err, want);
    sensor_opts_free(&o);

    /* the command line's own errors */
    write_conf("");
    assert_int_equal(
        load(&o, err, sizeof(err), "--config", conf, "-r", "x", "--rate-limit", "x", NULL), 2);
    assert_string_equal(err, "--rate-limit: \"x\": not a number in 0-1000000");
    sensor_opts_free(&o);
    assert_int_equal(
        load(&o, err, sizeof(err), "--no-config", "-r", "x", "--allow-domain", "a..b", NULL), 2);
    assert_string_equal(err, "--allow-domain: \"a..b\": not a domain name");
    sensor_opts_free(&o);
    assert_int_equal(load(&o, err, sizeof(err), "--no-config", "-i", "a", "--interface", "b", NULL),
                     2);
    assert_string_equal(err, "--interface: only one interface per process");
    sensor_opts_free(&o);
    assert_int_equal(load(&o, err, sizeof(err), "--no-config", "-r", "x", "--config", NULL), 2);
    assert_string_equal(err, "--config: needs an argument (see stripwatch -h)");
    sensor_opts_free(&o);
}

static void test_comments_and_values(void **st)
{
    (void)st;
    write_conf("\xEF\xBB\xBF# stripwatch.conf\n"
               "; both start a comment line\n"
               "   # indented comment\n"
               "\n"
               "read = a.pcap ; inline comment: ' ;'\n"
               "read=b.pcap\n"
               "bpf = tcp port 25 # a '#' after a value is part of it\n"
               "  alerts-out   =   /tmp/alerts x.json  \n"
               "immediate = ON\n"
               "any-port = 0\n"
               "log-addresses = true\n"
               "quiet = yes\n"
               "observer-name: colon form\n"
               "workers = 4\n"
               "memcap = 64M\n");
    struct sensor_opts o;
    char err[1024];
    assert_int_equal(load(&o, err, sizeof(err), "--config", conf, NULL), -1);
    assert_string_equal(err, "");
    assert_string_equal(o.config_path, conf);
    assert_int_equal(o.n_files, 2);
    assert_string_equal(o.files[0], "a.pcap");
    assert_string_equal(o.files[1], "b.pcap");
    assert_string_equal(o.bpf, "tcp port 25 # a '#' after a value is part of it");
    assert_string_equal(o.alerts_out, "/tmp/alerts x.json");
    assert_true(o.immediate);
    assert_false(o.any_port);
    assert_true(o.log_addresses);
    assert_true(o.quiet);
    assert_string_equal(o.observer_name, "colon form");
    assert_int_equal(o.workers, 4);
    assert_int_equal(o.memcap, 64u << 20);
    assert_string_equal(o.given[sensor_opt_find("read", NULL)], "a.pcap\nb.pcap");
    sensor_opts_free(&o);
}

static void test_flags_override(void **st)
{
    (void)st;
    write_conf("interface = eth9\n"
               "workers = 2\n"
               "alerts-out = file.json\n"
               "allow-server = 10.0.0.0/8\n"
               "allow-server = 192.0.2.1\n"
               "allow-client = 2001:db8::/32\n"
               "allow-domain = partner.example\n"
               "rate-limit = 3\n"
               "immediate = yes\n");
    struct sensor_opts o;
    char err[1024];
    /* -r replaces the file's interface; --workers and one list replaced */
    assert_int_equal(load(&o, err, sizeof(err), "-r", "x.pcap", "--config", conf, "--workers", "3",
                          "--allow-server", "203.0.113.0/24", "--allow-domain", "a.example",
                          "--allow-domain", "b.example", NULL),
                     -1);
    assert_null(o.iface);
    assert_int_equal(o.n_files, 1);
    assert_string_equal(o.files[0], "x.pcap");
    assert_int_equal(o.workers, 3);
    assert_string_equal(o.alerts_out, "file.json");
    assert_true(o.immediate);
    assert_int_equal(o.tuning.rate_limit, 3);
    assert_int_equal(o.tuning.n_servers, 1);
    assert_int_equal(o.tuning.servers[0].len, 24);
    assert_int_equal(o.tuning.n_clients, 1); /* from the file */
    assert_int_equal(o.tuning.n_domains, 2);
    assert_string_equal(o.tuning.domains[0], "a.example");
    assert_string_equal(o.tuning.domains[1], "b.example");
    assert_string_equal(o.given[sensor_opt_find("allow-domain", NULL)], "a.example\nb.example");
    assert_int_equal(o.origin[sensor_opt_find("allow-client", NULL)], 1);
    assert_int_equal(o.origin[sensor_opt_find("workers", NULL)], 2);
    sensor_opts_free(&o);
    /* --no-config: none of it */
    assert_int_equal(load(&o, err, sizeof(err), "-r", "x.pcap", "--no-config", NULL), -1);
    assert_null(o.config_path);
    assert_int_equal(o.workers, 1);
    assert_null(o.alerts_out);
    assert_int_equal(o.tuning.rate_limit, 10);
    sensor_opts_free(&o);
    /* the file's source alone is used, and checked like flags */
    write_conf("interface = eth9\nread = x.pcap\n");
    assert_int_equal(load(&o, err, sizeof(err), "--config", conf, NULL), 2);
    assert_string_equal(err, "-i and -r cannot be combined");
    sensor_opts_free(&o);
    /* --posture-redis: set or not, from the command line or the file; it
     * needs --redis */
    assert_int_equal(load(&o, err, sizeof(err), "-r", "x.pcap", "--no-config", NULL), -1);
    assert_false(o.posture_redis_set);
    sensor_opts_free(&o);
    assert_int_equal(load(&o, err, sizeof(err), "-r", "x.pcap", "--no-config", "--redis",
                          "redis://127.0.0.1:6379/0", "--posture-redis", NULL),
                     -1);
    assert_true(o.posture_redis_set && o.posture_redis);
    sensor_opts_free(&o);
    write_conf("interface = eth9\nredis = redis://127.0.0.1:6379/0\nposture-redis = no\n");
    assert_int_equal(load(&o, err, sizeof(err), "--config", conf, NULL), -1);
    assert_true(o.posture_redis_set && !o.posture_redis);
    sensor_opts_free(&o);
    assert_int_equal(
        load(&o, err, sizeof(err), "-r", "x.pcap", "--no-config", "--posture-redis", NULL), 2);
    assert_string_equal(err, "--posture-redis: needs --redis URL (the Redis the posture is "
                             "shared through)");
    sensor_opts_free(&o);
}

static void test_rule_sections(void **st)
{
    (void)st;
    write_conf("rate-limit = 0\n"
               "[starttls.unused]\n"
               "enabled = no\n"
               "[auth.cleartext]\n"
               "severity = medium\n"
               "rate-limit = 2\n"
               "enabled = yes\n"
               "[policy.mx_mismatch]\n"
               "severity = low\n");
    struct sensor_opts o;
    char err[1024];
    assert_int_equal(load(&o, err, sizeof(err), "--config", conf, "-r", "x", NULL), -1);
    const struct rules_tuning *t = &o.tuning;
    assert_int_equal(t->rate_limit, 0);
    assert_true(t->rule[RULE_STARTTLS_UNUSED].disabled);
    assert_false(t->rule[RULE_AUTH_CLEARTEXT].disabled);
    assert_int_equal(t->rule[RULE_AUTH_CLEARTEXT].severity, SEV_MEDIUM);
    assert_int_equal(t->rule[RULE_AUTH_CLEARTEXT].rate_limit, 2);
    assert_int_equal(t->rule[RULE_POLICY_MX_MISMATCH].severity, SEV_LOW);
    assert_int_equal(t->rule[RULE_POLICY_MX_MISMATCH].rate_limit, -1);
    assert_int_equal(rules_tuning_rate(t, RULE_AUTH_CLEARTEXT), 2);
    assert_int_equal(rules_tuning_rate(t, RULE_STARTTLS_STRIPPED), 0);
    assert_int_equal(t->rule[RULE_STARTTLS_STRIPPED].severity, 0);
    sensor_opts_free(&o);
    /* the same key in two sections is fine */
    write_conf("[auth.cleartext]\nenabled = no\n[starttls.fallback]\nenabled = no\n");
    assert_int_equal(load(&o, err, sizeof(err), "--config", conf, "-r", "x", NULL), -1);
    assert_true(o.tuning.rule[RULE_AUTH_CLEARTEXT].disabled);
    assert_true(o.tuning.rule[RULE_STARTTLS_FALLBACK].disabled);
    sensor_opts_free(&o);
}

static void test_state_dir_defaults(void **st)
{
    (void)st;
    struct sensor_opts o;
    char err[1024], want[600];
    unsetenv("STATE_DIRECTORY");
    /* offline: nothing under the state directory */
    assert_int_equal(load(&o, err, sizeof(err), "--no-config", "-r", "x", NULL), -1);
    assert_string_equal(o.state_dir, SENSOR_DEFAULT_STATE_DIR);
    assert_false(o.state_dir_used);
    assert_null(o.state_file);
    assert_null(o.policy_file);
    assert_null(o.save_policies);
    assert_null(o.spool);
    sensor_opts_free(&o);
    /* offline with Redis: the spool */
    assert_int_equal(load(&o, err, sizeof(err), "--no-config", "-r", "x", "--redis",
                          "redis://127.0.0.1:1", "--state-dir", dir, NULL),
                     -1);
    snprintf(want, sizeof(want), "%s/alerts.spool", dir);
    assert_string_equal(o.spool, want);
    assert_true(o.state_dir_used);
    assert_null(o.state_file);
    sensor_opts_free(&o);
    /* live, systemd's $STATE_DIRECTORY (the first of a list) */
    char env[600];
    snprintf(env, sizeof(env), "%s:/elsewhere", dir);
    setenv("STATE_DIRECTORY", env, 1);
    assert_int_equal(load(&o, err, sizeof(err), "--no-config", "-i", "lo", NULL), -1);
    assert_string_equal(o.state_dir, dir);
    snprintf(want, sizeof(want), "%s/state.json", dir);
    assert_string_equal(o.state_file, want);
    snprintf(want, sizeof(want), "%s/policies.json", dir);
    assert_string_equal(o.save_policies, want);
    assert_null(o.policy_file); /* loaded only when it exists */
    assert_null(o.spool);
    sensor_opts_free(&o);
    FILE *f = fopen(want, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(
        load(&o, err, sizeof(err), "--no-config", "-i", "lo", "--state-file", "s.json", NULL), -1);
    assert_string_equal(o.policy_file, want);
    assert_string_equal(o.state_file, "s.json");
    sensor_opts_free(&o);
    unlink(want);
    /* --state-dir wins over the environment; from the config file too */
    snprintf(want, sizeof(want), "state-dir = %s/sub\n", dir);
    write_conf(want);
    assert_int_equal(load(&o, err, sizeof(err), "--config", conf, "-i", "lo", NULL), -1);
    snprintf(want, sizeof(want), "%s/sub/state.json", dir);
    assert_string_equal(o.state_file, want);
    sensor_opts_free(&o);
    unsetenv("STATE_DIRECTORY");
}

static int setup(void **st)
{
    (void)st;
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/swconf.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir))
        return -1;
    snprintf(conf, sizeof(conf), "%s/stripwatch.conf", dir);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_comments_and_values),
        cmocka_unit_test(test_flags_override),
        cmocka_unit_test(test_rule_sections),
        cmocka_unit_test(test_state_dir_defaults),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
