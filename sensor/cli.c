/* SPDX-License-Identifier: Apache-2.0 */
/* cli.c: the stripwatch command line: parses flags into struct sensor_opts,
 * prints usage and version, and dispatches `stripwatch policy ...`. No RFC. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "sensor/sensor.h"

#define EXIT_USAGE 2

static void usage(FILE *f)
{
    fputs(
        "usage: stripwatch (-i IFACE | -r FILE [-r FILE]...) [options]\n"
        "       stripwatch policy DOMAIN... [policy options]   (MTA-STS check)\n"
        "\n"
        "Watches SMTP for STARTTLS stripping and plaintext delivery to MTA-STS domains.\n"
        "\n"
        "capture:\n"
        "  -i IFACE                 live capture (promiscuous)\n"
        "  -r FILE                  read a pcap/pcapng file; repeat to merge by time; - is stdin\n"
        "  --bpf EXPR               capture filter (live default: \"" SENSOR_DEFAULT_BPF "\")\n"
        "  --snaplen N              bytes kept per packet (default 262144)\n"
        "  --buffer-size BYTES      kernel capture buffer\n"
        "  --immediate              deliver packets without buffering delay\n"
        "  --workers N              worker threads, 1-64 (default 1)\n"
        "  --memcap BYTES           flow, reassembly and SMTP session memory (default 512M),\n"
        "                           split over workers\n"
        "  --max-flows N            tracked flows, split over workers\n"
        "  --any-port               classify SMTP on any port with nDPI\n"
        "output:\n"
        "  --sessions-out FILE      session records as JSON lines (- for stdout)\n"
        "  --alerts-out FILE        alerts as JSON lines (default stdout without --redis)\n"
        "  --log-addresses          keep local parts of mail addresses\n"
        "  --observer-name NAME     observer.name in alerts\n"
        "  --redis URL              redis://[user:pass@]host:port/db, rediss://, unix://\n"
        "  --redis-mode MODE        list | lpush | channel | stream (default list)\n"
        "  --redis-key KEY          list/channel/stream name\n"
        "  --redis-stream-maxlen N  XADD MAXLEN ~ N\n"
        "  --spool FILE             on-disk spool while Redis is away\n"
        "  --spool-max BYTES        spool bound\n"
        "policy and state:\n"
        "  --policy-file FILE       MTA-STS policies snapshot to load\n"
        "  --save-policies FILE     write the policies known at exit\n"
        "  --fetch-policies         fetch MTA-STS policies in offline runs too\n"
        "  --dns-server ADDR[@PORT] resolver for MTA-STS TXT lookups\n"
        "  --ca-file FILE           CA bundle for policy fetches and rediss://\n"
        "  --allow-private-policy-hosts  allow policy hosts on private addresses\n"
        "  --state-file FILE        learned posture loaded at start, saved at exit\n"
        "process:\n"
        "  --user USER              drop root to USER once the capture and files are open\n"
        "                           (--save-policies, --state-file and --spool are written\n"
        "                           again later: they and their directories must be\n"
        "                           writable by USER)\n"
        "  --group GROUP            group for --user (default USER's primary group)\n"
        "  -q                       no progress line, no statistics at exit\n"
        "  -h, --help               this text\n"
        "  --version                print the version\n"
        "\n"
        "Exit status: 0 done (also after SIGINT/SIGTERM), 1 bad input or runtime error,\n"
        "2 bad command line. SIGUSR1 prints statistics to stderr.\n",
        f);
}

enum {
    OPT_BPF = 256,
    OPT_SNAPLEN,
    OPT_BUFSIZE,
    OPT_IMMEDIATE,
    OPT_WORKERS,
    OPT_SESSIONS,
    OPT_ALERTS,
    OPT_LOGADDR,
    OPT_ANYPORT,
    OPT_REDIS,
    OPT_REDIS_MODE,
    OPT_REDIS_KEY,
    OPT_REDIS_MAXLEN,
    OPT_SPOOL,
    OPT_SPOOL_MAX,
    OPT_POLICY_FILE,
    OPT_SAVE_POLICIES,
    OPT_FETCH,
    OPT_DNS,
    OPT_CA,
    OPT_PRIVATE,
    OPT_STATE,
    OPT_OBSERVER,
    OPT_MEMCAP,
    OPT_MAXFLOWS,
    OPT_VERSION,
    OPT_USER,
    OPT_GROUP,
};

static const struct option long_opts[] = {
    {"bpf", required_argument, NULL, OPT_BPF},
    {"snaplen", required_argument, NULL, OPT_SNAPLEN},
    {"buffer-size", required_argument, NULL, OPT_BUFSIZE},
    {"immediate", no_argument, NULL, OPT_IMMEDIATE},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"sessions-out", required_argument, NULL, OPT_SESSIONS},
    {"alerts-out", required_argument, NULL, OPT_ALERTS},
    {"log-addresses", no_argument, NULL, OPT_LOGADDR},
    {"any-port", no_argument, NULL, OPT_ANYPORT},
    {"redis", required_argument, NULL, OPT_REDIS},
    {"redis-mode", required_argument, NULL, OPT_REDIS_MODE},
    {"redis-key", required_argument, NULL, OPT_REDIS_KEY},
    {"redis-stream-maxlen", required_argument, NULL, OPT_REDIS_MAXLEN},
    {"spool", required_argument, NULL, OPT_SPOOL},
    {"spool-max", required_argument, NULL, OPT_SPOOL_MAX},
    {"policy-file", required_argument, NULL, OPT_POLICY_FILE},
    {"save-policies", required_argument, NULL, OPT_SAVE_POLICIES},
    {"fetch-policies", no_argument, NULL, OPT_FETCH},
    {"dns-server", required_argument, NULL, OPT_DNS},
    {"ca-file", required_argument, NULL, OPT_CA},
    {"allow-private-policy-hosts", no_argument, NULL, OPT_PRIVATE},
    {"state-file", required_argument, NULL, OPT_STATE},
    {"observer-name", required_argument, NULL, OPT_OBSERVER},
    {"memcap", required_argument, NULL, OPT_MEMCAP},
    {"max-flows", required_argument, NULL, OPT_MAXFLOWS},
    {"user", required_argument, NULL, OPT_USER},
    {"group", required_argument, NULL, OPT_GROUP},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* Decimal digits with an optional K, M or G suffix (powers of 1024). */
static bool parse_u64(const char *flag, const char *s, bool suffix, uint64_t min, uint64_t max,
                      uint64_t *out)
{
    const char *p = s;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*p))
        goto bad;
    while (isdigit((unsigned char)*p)) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            goto bad;
        v = v * 10 + d;
        p++;
    }
    if (suffix && *p) {
        unsigned shift = 0;
        switch (*p) {
        case 'k':
        case 'K':
            shift = 10;
            break;
        case 'm':
        case 'M':
            shift = 20;
            break;
        case 'g':
        case 'G':
            shift = 30;
            break;
        default:
            goto bad;
        }
        if (v > (UINT64_MAX >> shift))
            goto bad;
        v <<= shift;
        p++;
    }
    if (*p || v < min || v > max)
        goto bad;
    *out = v;
    return true;
bad:
    fprintf(stderr, "stripwatch: --%s: \"%s\": not %s in %llu-%llu\n", flag, s,
            suffix ? "a size (digits with optional K, M or G)" : "a number",
            (unsigned long long)min, (unsigned long long)max);
    return false;
}

static bool parse_mode(const char *s, enum sink_redis_mode *m)
{
    static const struct {
        const char *name;
        enum sink_redis_mode m;
    } modes[] = {
        {"list", SINK_REDIS_LIST},
        {"lpush", SINK_REDIS_LPUSH},
        {"channel", SINK_REDIS_CHANNEL},
        {"stream", SINK_REDIS_STREAM},
    };
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (strcmp(s, modes[i].name) == 0) {
            *m = modes[i].m;
            return true;
        }
    }
    fprintf(stderr, "stripwatch: --redis-mode: \"%s\": not one of list, lpush, channel, stream\n",
            s);
    return false;
}

/* Parses argv into o. Returns -1 to go on, else an exit code. */
static int parse(int argc, char **argv, struct sensor_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->workers = 1;
    o->snaplen = 262144;
    uint64_t v;
    int c;
    const char *user = NULL, *group = NULL;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":i:r:qh", long_opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            if (o->iface) {
                fprintf(stderr, "stripwatch: -i: only one interface per process\n");
                return EXIT_USAGE;
            }
            o->iface = optarg;
            break;
        case 'r':
            if (o->n_files == SENSOR_MAX_FILES) {
                fprintf(stderr, "stripwatch: -r: more than %d files\n", SENSOR_MAX_FILES);
                return EXIT_USAGE;
            }
            o->files[o->n_files++] = optarg;
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case OPT_VERSION:
            printf("stripwatch %s\n", SW_VERSION);
            return 0;
        case OPT_BPF:
            o->bpf = optarg;
            break;
        case OPT_SNAPLEN:
            if (!parse_u64("snaplen", optarg, false, 64, 262144, &v))
                return EXIT_USAGE;
            o->snaplen = (int)v;
            break;
        case OPT_BUFSIZE:
            if (!parse_u64("buffer-size", optarg, true, 65536, 1ull << 31, &v))
                return EXIT_USAGE;
            o->buffer_size = (int)(v > 2147483647ull ? 2147483647ull : v);
            break;
        case OPT_IMMEDIATE:
            o->immediate = true;
            break;
        case OPT_WORKERS:
            if (!parse_u64("workers", optarg, false, 1, SENSOR_MAX_WORKERS, &v))
                return EXIT_USAGE;
            o->workers = (unsigned)v;
            break;
        case OPT_SESSIONS:
            o->sessions_out = optarg;
            break;
        case OPT_ALERTS:
            o->alerts_out = optarg;
            break;
        case OPT_LOGADDR:
            o->log_addresses = true;
            break;
        case OPT_ANYPORT:
            o->any_port = true;
            break;
        case OPT_REDIS:
            o->redis_url = optarg;
            break;
        case OPT_REDIS_MODE:
            if (!parse_mode(optarg, &o->redis_mode))
                return EXIT_USAGE;
            break;
        case OPT_REDIS_KEY:
            o->redis_key = optarg;
            break;
        case OPT_REDIS_MAXLEN:
            if (!parse_u64("redis-stream-maxlen", optarg, false, 1, UINT64_MAX, &v))
                return EXIT_USAGE;
            o->redis_stream_maxlen = v;
            break;
        case OPT_SPOOL:
            o->spool = optarg;
            break;
        case OPT_SPOOL_MAX:
            if (!parse_u64("spool-max", optarg, true, 4096, UINT64_MAX, &v))
                return EXIT_USAGE;
            o->spool_max = v;
            break;
        case OPT_POLICY_FILE:
            o->policy_file = optarg;
            break;
        case OPT_SAVE_POLICIES:
            o->save_policies = optarg;
            break;
        case OPT_FETCH:
            o->fetch_policies = true;
            break;
        case OPT_DNS:
            o->dns_server = optarg;
            break;
        case OPT_CA:
            o->ca_file = optarg;
            break;
        case OPT_PRIVATE:
            o->allow_private_policy_hosts = true;
            break;
        case OPT_STATE:
            o->state_file = optarg;
            break;
        case OPT_OBSERVER:
            o->observer_name = optarg;
            break;
        case OPT_MEMCAP:
            if (!parse_u64("memcap", optarg, true, 1u << 20, UINT64_MAX, &v))
                return EXIT_USAGE;
            o->memcap = v;
            break;
        case OPT_MAXFLOWS:
            if (!parse_u64("max-flows", optarg, false, 1, 100000000, &v))
                return EXIT_USAGE;
            o->max_flows = (uint32_t)v;
            break;
        case OPT_USER:
            user = optarg;
            break;
        case OPT_GROUP:
            group = optarg;
            break;
        case ':':
            fprintf(stderr, "stripwatch: %s: needs an argument (see stripwatch -h)\n",
                    argv[optind - 1]);
            return EXIT_USAGE;
        default:
            fprintf(stderr, "stripwatch: %s: unknown option (see stripwatch -h)\n",
                    argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "stripwatch: %s: unexpected argument (see stripwatch -h)\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!o->iface && o->n_files == 0) {
        fprintf(stderr, "stripwatch: give -i IFACE or -r FILE (see stripwatch -h)\n");
        return EXIT_USAGE;
    }
    if (o->iface && o->n_files) {
        fprintf(stderr, "stripwatch: -i and -r cannot be combined\n");
        return EXIT_USAGE;
    }
    size_t stdin_uses = 0;
    for (size_t i = 0; i < o->n_files; i++)
        stdin_uses += strcmp(o->files[i], "-") == 0;
    if (stdin_uses > 1) {
        fprintf(stderr, "stripwatch: -r -: stdin can be read only once\n");
        return EXIT_USAGE;
    }
    char err[512];
    if (!privdrop_resolve(&o->drop, user, group, err, sizeof(err))) {
        fprintf(stderr, "stripwatch: %s\n", err);
        return EXIT_USAGE;
    }
    return -1;
}

int sensor_main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "policy") == 0)
        return policy_cli_main(argc - 1, argv + 1);
    struct sensor_opts o;
    int rc = parse(argc, argv, &o);
    if (rc >= 0)
        return rc;
    return sensor_run(&o);
}
