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
#include "sensor/privdrop.h"

#define SENSOR_MAX_FILES   64
#define SENSOR_MAX_WORKERS 64
#define SENSOR_DEFAULT_BPF "tcp port 25 or tcp port 587 or tcp port 465"

/* Everything the command line sets. Strings point into argv. */
struct sensor_opts {
    const char *iface;                   /* -i */
    const char *files[SENSOR_MAX_FILES]; /* -r, in order */
    size_t n_files;
    const char *bpf;          /* --bpf; NULL: default for live, none offline */
    int snaplen;              /* --snaplen (default 262144) */
    int buffer_size;          /* --buffer-size bytes (default 0: libpcap's) */
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
    bool allow_private_policy_hosts;
    const char *state_file, *observer_name;
    uint64_t memcap;      /* --memcap (0: flow default, split over workers) */
    uint32_t max_flows;   /* --max-flows (0: flow default, split over workers) */
    struct privdrop drop; /* --user, --group (drop.user NULL: stay as started) */
    bool syslog;          /* --syslog: log lines to syslog instead of stderr */
    long stats_interval;  /* --stats-interval seconds; -1: default (live 300, offline 0) */
};

int sensor_main(int argc, char **argv);
/* Runs the configured capture to its end; returns the exit code. */
int sensor_run(const struct sensor_opts *o);

#endif
