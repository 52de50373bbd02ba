/* SPDX-License-Identifier: Apache-2.0 */
/* sensor.h: the process (sensor/): command line, capture sources, the
 * worker pipeline, the output stage and statistics. Internal to sensor/;
 * main.c only calls sensor_main(). */
#ifndef SW_SENSOR_H
#define SW_SENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alerts/sink.h"
#include "alerts/tuning.h"
#include "sensor/privdrop.h"

#define SENSOR_MAX_FILES   64
#define SENSOR_MAX_WORKERS 64
/* live ring buffer in all (shared out over the --workers sockets) */
#define SENSOR_DEFAULT_BUFFER_SIZE (256 << 20)
#define SENSOR_DEFAULT_BPF         "tcp port 25 or tcp port 587 or tcp port 465"
#define SENSOR_DEFAULT_CONFIG      "/etc/stripwatch/stripwatch.conf"
#define SENSOR_DEFAULT_STATE_DIR   "/var/lib/stripwatch"
#define SENSOR_OPTS_MAX            64 /* entries of the option table (cli.c) */

struct sensor_str; /* the strings an options struct owns */

/* Everything the config file and the command line set (the command line
 * wins). Every string is owned by the struct (sensor_opts_free). */
struct sensor_opts {
    const char *iface;                   /* -i */
    const char *files[SENSOR_MAX_FILES]; /* -r, in order */
    size_t n_files;
    const char *bpf;          /* --bpf; NULL: default for live, none offline */
    int snaplen;              /* --snaplen (default 262144) */
    int buffer_size;          /* --buffer-size bytes (0: SENSOR_DEFAULT_BUFFER_SIZE) */
    bool immediate;           /* --immediate */
    unsigned workers;         /* --workers (default 1) */
    const char *sessions_out; /* --sessions-out; NULL: none */
    const char *alerts_out;   /* --alerts-out */
    bool log_addresses, any_port, quiet;
    const char *redis_url;
    enum sink_redis_mode redis_mode;
    const char *redis_key;
    uint64_t redis_stream_maxlen;
    const char *spool;
    uint64_t spool_max;
    const char *policy_file, *save_policies;
    bool fetch_policies;
    const char *dns_server, *ca_file;
    const char *trust_anchor, *dane_file, *save_dane; /* DANE (policy/dane.h) */
    bool no_dane;
    bool allow_private_policy_hosts;
    const char *state_file, *observer_name;
    /* --posture-redis: learned posture shared through --redis; unset
     * (posture_redis_set false): live runs yes, offline runs no */
    bool posture_redis, posture_redis_set;
    uint64_t memcap;      /* --memcap (0: flow default, split over workers) */
    uint32_t max_flows;   /* --max-flows (0: flow default, split over workers) */
    struct privdrop drop; /* --user, --group (drop.user NULL: stay as started) */
    const char *user, *group;
    const char *state_dir;      /* --state-dir, else $STATE_DIRECTORY, else /var/lib/stripwatch */
    bool state_dir_used;        /* some default path (spool, state, policies) lies in it */
    struct rules_tuning tuning; /* --rate-limit, --allow-*, [rule.id] sections */
    /* where it all came from, read again at SIGHUP */
    const char *config_path; /* the file read; NULL: none */
    int argc;
    char **argv;
    const char *given[SENSOR_OPTS_MAX];    /* each option's value(s) as written (NULL: not
                                              given), to tell what changed at SIGHUP */
    unsigned char origin[SENSOR_OPTS_MAX]; /* 0 not given, 1 the file, 2 the command line */
    struct sensor_str *strings;
    bool syslog;              /* --syslog: log lines to syslog instead of stderr */
    long stats_interval;      /* --stats-interval seconds; -1: default (live 300, offline 0) */
    int64_t fallback_window;  /* --fallback-window seconds; 0: default (600) */
    const char *evidence_dir; /* --evidence-dir; NULL: no evidence packets kept */
    uint64_t evidence_bytes;  /* --evidence-bytes (evidence_bytes_set: given, may be 0) */
    bool evidence_bytes_set;
    uint64_t evidence_max_size; /* --evidence-max-size (0: default 1 GiB) */
    const char *tlsrpt_out;     /* --tlsrpt-out DIR; NULL: no TLS-RPT reports */
    const char *tlsrpt_contact; /* --tlsrpt-contact (NULL: postmaster@observer) */
};

/* Reads the config file (--config FILE, else the default one when it
 * exists, none with --no-config) and then the command line over it into o,
 * then fills the defaults that depend on both (state directory, spool,
 * live runs' state and policy files). Returns -1 to go on; 0 when -h or
 * --version printed what they print; 2 with one line in err (no
 * "stripwatch: " prefix) for a bad command line or config file. With
 * reload, -h/--version are ignored and no cross-check is made (SIGHUP). o
 * is always initialised: free it with sensor_opts_free. */
int sensor_opts_load(struct sensor_opts *o, int argc, char **argv, bool reload, char *err,
                     size_t errlen);
void sensor_opts_free(struct sensor_opts *o);

/* The option table (cli.c), by long name, for the config file (config.c).
 * Flags: */
#define SENSOR_OPT_ARG    1u /* takes a value (else a yes/no flag) */
#define SENSOR_OPT_REPEAT 2u /* may be given more than once */
#define SENSOR_OPT_CLI    4u /* command line only (--config, --help, ...) */
#define SENSOR_OPT_RELOAD 8u /* applied again at SIGHUP; others need a restart */
/* The option's index in the table and its flags; -1 when unknown. */
int sensor_opt_find(const char *name, unsigned *flags);
/* Option idx's long name and flags; NULL past the table. */
const char *sensor_opt_name(int idx, unsigned *flags);
/* Applies option idx with value (a flag's value is yes|no|true|false|on|off|
 * 1|0 from a file; NULL from the command line means yes). from_file: the
 * value came from the config file (the command line, applied later, then
 * replaces the lists the file filled). False with the reason in err, e.g.
 * `"x": not a number in 1-64`. */
bool sensor_opt_apply(struct sensor_opts *o, int idx, const char *value, bool from_file, char *err,
                      size_t errlen);
/* Value parsers shared with config.c; false with `"VALUE": why` in err.
 * Numbers: decimal digits in min-max (with suffix, an optional K, M or G:
 * powers of 1024). Flags: yes|no|true|false|on|off|1|0 (NULL: yes). */
bool sensor_parse_u64(const char *s, bool suffix, uint64_t min, uint64_t max, uint64_t *out,
                      char *err, size_t errlen);
bool sensor_parse_bool(const char *s, bool *out, char *err, size_t errlen);
/* A string kept until sensor_opts_free; NULL when out of memory. */
const char *sensor_opts_keep(struct sensor_opts *o, const char *s);

int sensor_main(int argc, char **argv);
/* `stripwatch report --tlsrpt SESSIONS.jsonl ...` (sensor/report.c): TLS-RPT
 * reports from a session log; returns the exit code. */
int sensor_report_main(int argc, char **argv);
/* Runs the configured capture to its end; returns the exit code. */
int sensor_run(const struct sensor_opts *o);

#endif
