/* SPDX-License-Identifier: Apache-2.0 */
/* cli.c: the stripwatch command line: parses flags into struct sensor_opts,
 * prints usage and version, and dispatches `stripwatch policy ...`. No RFC. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "policy/dane.h"
#include "policy/policy.h"
#include "sensor/config.h"
#include "sensor/sensor.h"

#define EXIT_USAGE 2

static void usage(FILE *f)
{
    fputs("usage: stripwatch (-i IFACE | -r FILE [-r FILE]...) [options]\n"
          "       stripwatch policy DOMAIN... [policy options]   (MTA-STS check)\n"
          "       stripwatch report --tlsrpt SESSIONS.jsonl [report options]   (TLS-RPT)\n"
          "\n"
          "Watches SMTP for STARTTLS stripping and plaintext delivery to MTA-STS domains.\n"
          "\n"
          "configuration:\n"
          "  --config FILE            options as `key = value` lines, keys are the long\n"
          "                           names below (default " SENSOR_DEFAULT_CONFIG "\n"
          "                           when it exists); the command line wins\n"
          "  --no-config              read no config file\n"
          "capture:\n"
          "  -i, --interface IFACE    live capture (promiscuous)\n"
          "  -r, --read FILE          read a pcap/pcapng file or named pipe; repeat to merge\n"
          "                           by time; - is stdin\n"
          "  --bpf EXPR               capture filter (live default: \"" SENSOR_DEFAULT_BPF "\")\n"
          "  --snaplen N              bytes kept per packet (default 262144)\n"
          "  --buffer-size BYTES      kernel capture ring, in all (default 256M; shared\n"
          "                           over the --workers sockets)\n"
          "  --immediate              deliver packets without buffering delay\n"
          "  --workers N              worker threads, 1-64 (default 1); live: each has its\n"
          "                           own capture socket (PACKET_FANOUT)\n"
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
          "  --spool FILE             on-disk spool while Redis is away (default\n"
          "                           STATE-DIR/alerts.spool)\n"
          "  --spool-max BYTES        spool bound\n"
          "  --evidence-dir DIR       write the packets of each session that raised an\n"
          "                           alert to DIR/UID.pcap (stripwatch.evidence.pcap)\n"
          "  --evidence-bytes BYTES   payload kept per direction after the first DATA, BDAT\n"
          "                           or TLS record (default 4K)\n"
          "  --evidence-max-size BYTES  total size of DIR's pcap files, oldest removed\n"
          "                           first (default 1G)\n"
          "  --tlsrpt-out DIR         write TLS-RPT reports (RFC 8460) per policy domain and\n"
          "                           UTC day to DIR (live: at each day change and at exit)\n"
          "  --tlsrpt-contact TEXT    their contact-info (default postmaster@OBSERVER-NAME)\n"
          "rules (also per rule in the config file: [rule.id] enabled, severity, rate-limit):\n"
          "  --rate-limit N           alerts per minute per rule and server (default 10, 0: none)\n"
          "  --allow-server ADDR[/LEN]  no alert for sessions to these servers (repeatable)\n"
          "  --allow-client ADDR[/LEN]  ... from these clients (repeatable)\n"
          "  --allow-domain DOMAIN    ... whose recipient domains are all this domain or under\n"
          "                           it (repeatable)\n"
          "  --fallback-window SECONDS  a failed TLS attempt explains a plaintext session\n"
          "                           from the same client to the same server this long\n"
          "                           after it (starttls.fallback; default 600)\n"
          "policy and state:\n"
          "  --state-dir DIR          default directory of the spool, and of live runs' state\n"
          "                           and policy files ($STATE_DIRECTORY, else\n"
          "                           " SENSOR_DEFAULT_STATE_DIR ")\n"
          "  --policy-file FILE       MTA-STS policies snapshot to load (live default\n"
          "                           STATE-DIR/policies.json when it exists)\n"
          "  --save-policies FILE     write the policies known at exit (live default\n"
          "                           STATE-DIR/policies.json)\n"
          "  --fetch-policies         fetch MTA-STS policies in offline runs too\n"
          "  --dns-server ADDR[@PORT] resolver for MTA-STS TXT and DANE TLSA lookups\n"
          "  --trust-anchor FILE      DNSSEC trust anchor DANE answers are validated with\n"
          "                           (default " DANE_DEFAULT_TA ")\n"
          "  --dane-file FILE         DANE (TLSA) snapshot to load (live default\n"
          "                           STATE-DIR/dane.json when it exists)\n"
          "  --save-dane FILE         write the DANE answers known at exit (live default\n"
          "                           STATE-DIR/dane.json)\n"
          "  --no-dane                no DANE lookups (live runs and --fetch-policies\n"
          "                           look TLSA records up, offline runs read --dane-file)\n"
          "  --ca-file FILE           CA bundle for policy fetches and rediss://\n"
          "  --allow-private-policy-hosts  allow policy hosts on private addresses\n"
          "  --state-file FILE        learned posture loaded at start, saved at exit (live\n"
          "                           default STATE-DIR/state.json)\n"
          "  --posture-redis          share learned posture through --redis in an offline\n"
          "                           run too (live runs share it unless the config file\n"
          "                           says posture-redis = no)\n"
          "process:\n"
          "  --user USER              drop root to USER once the capture and files are open\n"
          "                           (--save-policies, --state-file, --spool and\n"
          "                           --tlsrpt-out are written again later: they and their\n"
          "                           directories must be writable by USER)\n"
          "  --group GROUP            group for --user (default USER's primary group)\n"
          "  --syslog                 log lines (errors, warnings, summary, statistics) to\n"
          "                           syslog (daemon facility) instead of stderr\n"
          "  --stats-interval SECONDS print statistics every SECONDS (live default 300;\n"
          "                           offline default 0 = off, counted in capture time)\n"
          "  -q, --quiet              no summary, progress line or statistics\n"
          "  -h, --help               this text\n"
          "  --version                print the version\n"
          "\n"
          "Exit status: 0 done (also after SIGINT/SIGTERM/SIGQUIT), 1 bad input or runtime\n"
          "error (a capture file with nothing decodable; an offline run that ends with\n"
          "alerts left in the spool), 2 bad command line or config file. Health records\n"
          "(event.dataset stripwatch.health) go with the alerts. SIGUSR1 prints statistics;\n"
          "SIGHUP reads the config file and the policy file again and reopens the alerts\n"
          "and sessions files. At the end of an offline run, and on SIGUSR1, a summary\n"
          "(packets, sessions, share with TLS, alerts by rule and severity, the first\n"
          "alerts) and the statistics go to stderr (or syslog).\n",
          f);
}

enum {
    OPT_IFACE = 0,
    OPT_READ,
    OPT_QUIET,
    OPT_HELP,
    OPT_VERSION,
    OPT_CONFIG,
    OPT_NO_CONFIG,
    OPT_BPF,
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
    OPT_POSTURE_REDIS,
    OPT_DNS,
    OPT_CA,
    OPT_PRIVATE,
    OPT_STATE,
    OPT_STATE_DIR,
    OPT_OBSERVER,
    OPT_MEMCAP,
    OPT_MAXFLOWS,
    OPT_USER,
    OPT_GROUP,
    OPT_RATE_LIMIT,
    OPT_ALLOW_SERVER,
    OPT_ALLOW_CLIENT,
    OPT_ALLOW_DOMAIN,
    OPT_SYSLOG,
    OPT_STATS_INTERVAL,
    OPT_EVIDENCE_DIR,
    OPT_EVIDENCE_BYTES,
    OPT_EVIDENCE_MAX_SIZE,
    OPT_TRUST_ANCHOR,
    OPT_DANE_FILE,
    OPT_SAVE_DANE,
    OPT_NO_DANE,
    OPT_TLSRPT_OUT,
    OPT_TLSRPT_CONTACT,
    OPT_FALLBACK_WINDOW,
    OPT_COUNT,
};

#define A  SENSOR_OPT_ARG
#define RP SENSOR_OPT_REPEAT
#define C  SENSOR_OPT_CLI
#define RL SENSOR_OPT_RELOAD

/* One table for the command line and the config file: the long name is the
 * config key. Indexed by the enum above. */
static const struct {
    const char *name;
    char short_name;
    unsigned flags;
} opt_table[OPT_COUNT] = {
    [OPT_IFACE] = {"interface", 'i', A},
    [OPT_READ] = {"read", 'r', A | RP},
    [OPT_QUIET] = {"quiet", 'q', 0},
    [OPT_HELP] = {"help", 'h', C},
    [OPT_VERSION] = {"version", 0, C},
    [OPT_CONFIG] = {"config", 0, A | C},
    [OPT_NO_CONFIG] = {"no-config", 0, C},
    [OPT_BPF] = {"bpf", 0, A},
    [OPT_SNAPLEN] = {"snaplen", 0, A},
    [OPT_BUFSIZE] = {"buffer-size", 0, A},
    [OPT_IMMEDIATE] = {"immediate", 0, 0},
    [OPT_WORKERS] = {"workers", 0, A},
    [OPT_SESSIONS] = {"sessions-out", 0, A},
    [OPT_ALERTS] = {"alerts-out", 0, A},
    [OPT_LOGADDR] = {"log-addresses", 0, 0},
    [OPT_ANYPORT] = {"any-port", 0, 0},
    [OPT_REDIS] = {"redis", 0, A},
    [OPT_REDIS_MODE] = {"redis-mode", 0, A},
    [OPT_REDIS_KEY] = {"redis-key", 0, A},
    [OPT_REDIS_MAXLEN] = {"redis-stream-maxlen", 0, A},
    [OPT_SPOOL] = {"spool", 0, A},
    [OPT_SPOOL_MAX] = {"spool-max", 0, A},
    [OPT_POLICY_FILE] = {"policy-file", 0, A | RL},
    [OPT_SAVE_POLICIES] = {"save-policies", 0, A},
    [OPT_FETCH] = {"fetch-policies", 0, 0},
    [OPT_POSTURE_REDIS] = {"posture-redis", 0, 0},
    [OPT_DNS] = {"dns-server", 0, A},
    [OPT_CA] = {"ca-file", 0, A},
    [OPT_PRIVATE] = {"allow-private-policy-hosts", 0, 0},
    [OPT_STATE] = {"state-file", 0, A},
    [OPT_STATE_DIR] = {"state-dir", 0, A},
    [OPT_OBSERVER] = {"observer-name", 0, A},
    [OPT_MEMCAP] = {"memcap", 0, A},
    [OPT_MAXFLOWS] = {"max-flows", 0, A},
    [OPT_USER] = {"user", 0, A},
    [OPT_GROUP] = {"group", 0, A},
    [OPT_RATE_LIMIT] = {"rate-limit", 0, A | RL},
    [OPT_ALLOW_SERVER] = {"allow-server", 0, A | RP | RL},
    [OPT_ALLOW_CLIENT] = {"allow-client", 0, A | RP | RL},
    [OPT_ALLOW_DOMAIN] = {"allow-domain", 0, A | RP | RL},
    [OPT_SYSLOG] = {"syslog", 0, 0},
    [OPT_STATS_INTERVAL] = {"stats-interval", 0, A},
    [OPT_EVIDENCE_DIR] = {"evidence-dir", 0, A},
    [OPT_EVIDENCE_BYTES] = {"evidence-bytes", 0, A},
    [OPT_EVIDENCE_MAX_SIZE] = {"evidence-max-size", 0, A},
    [OPT_TRUST_ANCHOR] = {"trust-anchor", 0, A},
    [OPT_DANE_FILE] = {"dane-file", 0, A},
    [OPT_SAVE_DANE] = {"save-dane", 0, A},
    [OPT_NO_DANE] = {"no-dane", 0, 0},
    [OPT_TLSRPT_OUT] = {"tlsrpt-out", 0, A},
    [OPT_TLSRPT_CONTACT] = {"tlsrpt-contact", 0, A},
    [OPT_FALLBACK_WINDOW] = {"fallback-window", 0, A},
};
_Static_assert(OPT_COUNT <= SENSOR_OPTS_MAX, "SENSOR_OPTS_MAX too small");

#define OPT_LONG_BASE 1000 /* getopt_long's value for table entry i: base + i */

/* Decimal digits with an optional K, M or G suffix (powers of 1024). */
bool sensor_parse_u64(const char *s, bool suffix, uint64_t min, uint64_t max, uint64_t *out,
                      char *err, size_t errlen)
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
    snprintf(err, errlen, "\"%s\": not %s in %llu-%llu", s,
             suffix ? "a size (digits with optional K, M or G)" : "a number",
             (unsigned long long)min, (unsigned long long)max);
    return false;
}

static bool parse_mode(const char *s, enum sink_redis_mode *m, char *err, size_t errlen)
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
    snprintf(err, errlen, "\"%s\": not one of list, lpush, channel, stream", s);
    return false;
}

/* A flag's value: NULL (the command line) is yes. */
bool sensor_parse_bool(const char *s, bool *out, char *err, size_t errlen)
{
    static const char *const yes[] = {"yes", "true", "on", "1"}, *const no[] = {"no", "false",
                                                                                "off", "0"};
    if (!s) {
        *out = true;
        return true;
    }
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
            *out = strcasecmp(s, yes[i]) == 0;
            return true;
        }
    }
    snprintf(err, errlen, "\"%s\": not yes, no, true, false, on, off, 1 or 0", s);
    return false;
}

/* ---- owned strings ---- */

struct sensor_str {
    struct sensor_str *next;
    char s[];
};

const char *sensor_opts_keep(struct sensor_opts *o, const char *s)
{
    size_t len = strlen(s);
    struct sensor_str *k = malloc(sizeof(*k) + len + 1);
    if (!k)
        return NULL;
    memcpy(k->s, s, len + 1);
    k->next = o->strings;
    o->strings = k;
    return k->s;
}

void sensor_opts_free(struct sensor_opts *o)
{
    while (o->strings) {
        struct sensor_str *n = o->strings->next;
        free(o->strings);
        o->strings = n;
    }
    rules_tuning_free(&o->tuning);
}

static void opts_init(struct sensor_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->workers = 1;
    o->snaplen = 262144;
    rules_tuning_init(&o->tuning);
    o->stats_interval = -1;
}

/* ---- applying one option ---- */

int sensor_opt_find(const char *name, unsigned *flags)
{
    for (int i = 0; i < OPT_COUNT; i++) {
        if (strcmp(opt_table[i].name, name) == 0) {
            if (flags)
                *flags = opt_table[i].flags;
            return i;
        }
    }
    return -1;
}

const char *sensor_opt_name(int idx, unsigned *flags)
{
    if (idx < 0 || idx >= OPT_COUNT)
        return NULL;
    if (flags)
        *flags = opt_table[idx].flags;
    return opt_table[idx].name;
}

/* The command line replaces what the file said for a list, and for the
 * capture source (-i or -r) as a whole. */
static void drop_file_values(struct sensor_opts *o, int idx)
{
    if (idx == OPT_IFACE || idx == OPT_READ) {
        if (o->origin[OPT_IFACE] == 1 || o->origin[OPT_READ] == 1) {
            o->iface = NULL;
            o->n_files = 0;
            o->given[OPT_IFACE] = o->given[OPT_READ] = NULL;
            o->origin[OPT_IFACE] = o->origin[OPT_READ] = 0;
        }
        return;
    }
    if (o->origin[idx] != 1 || !(opt_table[idx].flags & SENSOR_OPT_REPEAT))
        return;
    if (idx == OPT_ALLOW_SERVER)
        rules_tuning_clear(&o->tuning, TUNING_ALLOW_SERVER);
    else if (idx == OPT_ALLOW_CLIENT)
        rules_tuning_clear(&o->tuning, TUNING_ALLOW_CLIENT);
    else if (idx == OPT_ALLOW_DOMAIN)
        rules_tuning_clear(&o->tuning, TUNING_ALLOW_DOMAIN);
    o->given[idx] = NULL;
}

/* Remembers what was written for idx (lists joined by newlines). */
static bool note_given(struct sensor_opts *o, int idx, const char *value)
{
    const char *v = value ? value : "yes";
    const char *prev = o->given[idx];
    if (prev && (opt_table[idx].flags & SENSOR_OPT_REPEAT)) {
        size_t n = strlen(prev) + strlen(v) + 2;
        char *j = malloc(n);
        if (!j)
            return false;
        snprintf(j, n, "%s\n%s", prev, v);
        o->given[idx] = sensor_opts_keep(o, j);
        free(j);
    } else {
        o->given[idx] = sensor_opts_keep(o, v);
    }
    return o->given[idx] != NULL;
}

bool sensor_opt_apply(struct sensor_opts *o, int idx, const char *value, bool from_file, char *err,
                      size_t errlen)
{
    if (!from_file)
        drop_file_values(o, idx);
    o->origin[idx] = from_file ? 1 : 2;
    if (!note_given(o, idx, value)) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    const char *v = (opt_table[idx].flags & SENSOR_OPT_ARG) ? sensor_opts_keep(o, value) : NULL;
    if ((opt_table[idx].flags & SENSOR_OPT_ARG) && !v) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    uint64_t n;
    switch (idx) {
    case OPT_IFACE:
        if (o->iface) {
            snprintf(err, errlen, "only one interface per process");
            return false;
        }
        o->iface = v;
        return true;
    case OPT_READ:
        if (o->n_files == SENSOR_MAX_FILES) {
            snprintf(err, errlen, "more than %d files", SENSOR_MAX_FILES);
            return false;
        }
        o->files[o->n_files++] = v;
        return true;
    case OPT_QUIET:
        return sensor_parse_bool(value, &o->quiet, err, errlen);
    case OPT_BPF:
        o->bpf = v;
        return true;
    case OPT_SNAPLEN:
        if (!sensor_parse_u64(v, false, 64, 262144, &n, err, errlen))
            return false;
        o->snaplen = (int)n;
        return true;
    case OPT_BUFSIZE:
        if (!sensor_parse_u64(v, true, 65536, 1ull << 31, &n, err, errlen))
            return false;
        o->buffer_size = (int)(n > 2147483647ull ? 2147483647ull : n);
        return true;
    case OPT_IMMEDIATE:
        return sensor_parse_bool(value, &o->immediate, err, errlen);
    case OPT_WORKERS:
        if (!sensor_parse_u64(v, false, 1, SENSOR_MAX_WORKERS, &n, err, errlen))
            return false;
        o->workers = (unsigned)n;
        return true;
    case OPT_SESSIONS:
        o->sessions_out = v;
        return true;
    case OPT_ALERTS:
        o->alerts_out = v;
        return true;
    case OPT_LOGADDR:
        return sensor_parse_bool(value, &o->log_addresses, err, errlen);
    case OPT_ANYPORT:
        return sensor_parse_bool(value, &o->any_port, err, errlen);
    case OPT_REDIS:
        o->redis_url = v;
        return true;
    case OPT_REDIS_MODE:
        return parse_mode(v, &o->redis_mode, err, errlen);
    case OPT_REDIS_KEY:
        o->redis_key = v;
        return true;
    case OPT_REDIS_MAXLEN:
        if (!sensor_parse_u64(v, false, 1, UINT64_MAX, &n, err, errlen))
            return false;
        o->redis_stream_maxlen = n;
        return true;
    case OPT_SPOOL:
        o->spool = v;
        return true;
    case OPT_SPOOL_MAX:
        if (!sensor_parse_u64(v, true, 4096, UINT64_MAX, &n, err, errlen))
            return false;
        o->spool_max = n;
        return true;
    case OPT_POLICY_FILE:
        o->policy_file = v;
        return true;
    case OPT_SAVE_POLICIES:
        o->save_policies = v;
        return true;
    case OPT_FETCH:
        return sensor_parse_bool(value, &o->fetch_policies, err, errlen);
    case OPT_POSTURE_REDIS:
        o->posture_redis_set = true;
        return sensor_parse_bool(value, &o->posture_redis, err, errlen);
    case OPT_DNS:
        o->dns_server = v;
        return true;
    case OPT_TRUST_ANCHOR:
        o->trust_anchor = v;
        return true;
    case OPT_DANE_FILE:
        o->dane_file = v;
        return true;
    case OPT_SAVE_DANE:
        o->save_dane = v;
        return true;
    case OPT_NO_DANE:
        return sensor_parse_bool(value, &o->no_dane, err, errlen);
    case OPT_CA:
        o->ca_file = v;
        return true;
    case OPT_PRIVATE:
        return sensor_parse_bool(value, &o->allow_private_policy_hosts, err, errlen);
    case OPT_STATE:
        o->state_file = v;
        return true;
    case OPT_STATE_DIR:
        o->state_dir = v;
        return true;
    case OPT_OBSERVER:
        o->observer_name = v;
        return true;
    case OPT_TLSRPT_OUT:
        o->tlsrpt_out = v;
        return true;
    case OPT_TLSRPT_CONTACT:
        o->tlsrpt_contact = v;
        return true;
    case OPT_EVIDENCE_DIR:
        o->evidence_dir = v;
        return true;
    case OPT_EVIDENCE_BYTES:
        if (!sensor_parse_u64(v, true, 0, 1u << 30, &n, err, errlen))
            return false;
        o->evidence_bytes = n;
        o->evidence_bytes_set = true;
        return true;
    case OPT_EVIDENCE_MAX_SIZE:
        if (!sensor_parse_u64(v, true, 1u << 16, UINT64_MAX, &n, err, errlen))
            return false;
        o->evidence_max_size = n;
        return true;
    case OPT_MEMCAP:
        if (!sensor_parse_u64(v, true, 1u << 20, UINT64_MAX, &n, err, errlen))
            return false;
        o->memcap = n;
        return true;
    case OPT_MAXFLOWS:
        if (!sensor_parse_u64(v, false, 1, 100000000, &n, err, errlen))
            return false;
        o->max_flows = (uint32_t)n;
        return true;
    case OPT_USER:
        o->user = v;
        return true;
    case OPT_GROUP:
        o->group = v;
        return true;
    case OPT_RATE_LIMIT:
        if (!sensor_parse_u64(v, false, 0, TUNING_RATE_MAX, &n, err, errlen))
            return false;
        o->tuning.rate_limit = (unsigned)n;
        return true;
    case OPT_ALLOW_SERVER:
        return rules_tuning_add(&o->tuning, TUNING_ALLOW_SERVER, v, err, errlen);
    case OPT_ALLOW_CLIENT:
        return rules_tuning_add(&o->tuning, TUNING_ALLOW_CLIENT, v, err, errlen);
    case OPT_ALLOW_DOMAIN:
        return rules_tuning_add(&o->tuning, TUNING_ALLOW_DOMAIN, v, err, errlen);
    case OPT_SYSLOG:
        return sensor_parse_bool(value, &o->syslog, err, errlen);
    case OPT_STATS_INTERVAL:
        if (!sensor_parse_u64(v, false, 0, 31536000, &n, err, errlen))
            return false;
        o->stats_interval = (long)n;
        return true;
    case OPT_FALLBACK_WINDOW:
        if (!sensor_parse_u64(v, false, 1, 86400, &n, err, errlen))
            return false;
        o->fallback_window = (int64_t)n;
        return true;
    default: /* command-line only: handled by the caller */
        return true;
    }
}

/* ---- the command line ---- */

static struct option long_opts[OPT_COUNT + 1];
static char short_opts[2 * OPT_COUNT + 2];

static void build_getopt(void)
{
    if (long_opts[0].name)
        return;
    char *sp = short_opts;
    *sp++ = ':';
    for (int i = 0; i < OPT_COUNT; i++) {
        bool arg = opt_table[i].flags & SENSOR_OPT_ARG;
        long_opts[i] = (struct option){opt_table[i].name, arg ? required_argument : no_argument,
                                       NULL, OPT_LONG_BASE + i};
        if (opt_table[i].short_name) {
            *sp++ = opt_table[i].short_name;
            if (arg)
                *sp++ = ':';
        }
    }
    *sp = '\0';
}

/* Table index of getopt's answer c; -1 for none. */
static int opt_of(int c)
{
    if (c >= OPT_LONG_BASE && c < OPT_LONG_BASE + OPT_COUNT)
        return c - OPT_LONG_BASE;
    for (int i = 0; i < OPT_COUNT; i++)
        if (opt_table[i].short_name && opt_table[i].short_name == c)
            return i;
    return -1;
}

/* First pass: only --config and --no-config, so the file is read first. */
static void find_config(int argc, char **argv, const char **path, bool *none)
{
    *path = NULL;
    *none = false;
    opterr = 0;
    optind = 0; /* full re-initialisation (GNU) */
    int c;
    while ((c = getopt_long(argc, argv, short_opts, long_opts, NULL)) != -1) {
        if (c == OPT_LONG_BASE + OPT_CONFIG)
            *path = optarg;
        else if (c == OPT_LONG_BASE + OPT_NO_CONFIG)
            *none = true;
    }
}

/* Second pass: every option over what the file set. -1 to go on, 0 after
 * -h/--version, 2 with err. */
static int apply_argv(struct sensor_opts *o, int argc, char **argv, bool reload, char *err,
                      size_t errlen)
{
    opterr = 0;
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, short_opts, long_opts, NULL)) != -1) {
        if (c == ':') {
            snprintf(err, errlen, "%s: needs an argument (see stripwatch -h)", argv[optind - 1]);
            return EXIT_USAGE;
        }
        int idx = opt_of(c);
        if (idx < 0) {
            snprintf(err, errlen, "%s: unknown option (see stripwatch -h)", argv[optind - 1]);
            return EXIT_USAGE;
        }
        if (idx == OPT_HELP || idx == OPT_VERSION) {
            if (reload)
                continue;
            if (idx == OPT_HELP)
                usage(stdout);
            else
                printf("stripwatch %s\n", SW_VERSION);
            return 0;
        }
        if (opt_table[idx].flags & SENSOR_OPT_CLI)
            continue; /* --config, --no-config: the first pass */
        char e[512];
        if (!sensor_opt_apply(o, idx, optarg, false, e, sizeof(e))) {
            if (c == opt_table[idx].short_name)
                snprintf(err, errlen, "-%c: %s", c, e);
            else
                snprintf(err, errlen, "--%s: %s", opt_table[idx].name, e);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "%s: unexpected argument (see stripwatch -h)", argv[optind]);
        return EXIT_USAGE;
    }
    return -1;
}

/* Paths under the state directory for what was not given. */
static bool fill_defaults(struct sensor_opts *o, char *err, size_t errlen)
{
    if (!o->state_dir) {
        /* systemd's StateDirectory=: the first of a colon-separated list */
        const char *env = getenv("STATE_DIRECTORY");
        char first[4096];
        if (env && *env) {
            snprintf(first, sizeof(first), "%.*s", (int)strcspn(env, ":"), env);
            o->state_dir = sensor_opts_keep(o, first);
        } else {
            o->state_dir = SENSOR_DEFAULT_STATE_DIR;
        }
    }
    if (!o->state_dir)
        goto oom;
    char path[4200];
    if (o->redis_url && !o->spool) {
        snprintf(path, sizeof(path), "%s/alerts.spool", o->state_dir);
        if (!(o->spool = sensor_opts_keep(o, path)))
            goto oom;
        o->state_dir_used = true;
    }
    if (o->iface) {
        if (!o->state_file) {
            snprintf(path, sizeof(path), "%s/state.json", o->state_dir);
            if (!(o->state_file = sensor_opts_keep(o, path)))
                goto oom;
            o->state_dir_used = true;
        }
        snprintf(path, sizeof(path), "%s/policies.json", o->state_dir);
        if (!o->policy_file && access(path, F_OK) == 0) {
            if (!(o->policy_file = sensor_opts_keep(o, path)))
                goto oom;
            o->state_dir_used = true;
        }
        if (!o->save_policies) {
            if (!(o->save_policies = sensor_opts_keep(o, path)))
                goto oom;
            o->state_dir_used = true;
        }
        snprintf(path, sizeof(path), "%s/dane.json", o->state_dir);
        if (!o->no_dane && !o->dane_file && access(path, F_OK) == 0) {
            if (!(o->dane_file = sensor_opts_keep(o, path)))
                goto oom;
            o->state_dir_used = true;
        }
        if (!o->no_dane && !o->save_dane) {
            if (!(o->save_dane = sensor_opts_keep(o, path)))
                goto oom;
            o->state_dir_used = true;
        }
    }
    return true;
oom:
    snprintf(err, errlen, "out of memory");
    return false;
}

/* What only the whole command line can tell. 2 with err, else -1. */
static int cross_check(struct sensor_opts *o, char *err, size_t errlen)
{
    if (!o->iface && o->n_files == 0) {
        snprintf(err, errlen, "give -i IFACE or -r FILE (see stripwatch -h)");
        return EXIT_USAGE;
    }
    if (o->iface && o->n_files) {
        snprintf(err, errlen, "-i and -r cannot be combined");
        return EXIT_USAGE;
    }
    size_t stdin_uses = 0;
    for (size_t i = 0; i < o->n_files; i++)
        stdin_uses += strcmp(o->files[i], "-") == 0;
    if (stdin_uses > 1) {
        snprintf(err, errlen, "-r -: stdin can be read only once");
        return EXIT_USAGE;
    }
    if (o->posture_redis && !o->redis_url) {
        snprintf(err, errlen,
                 "--posture-redis: needs --redis URL (the Redis the posture is "
                 "shared through)");
        return EXIT_USAGE;
    }
    if (!privdrop_resolve(&o->drop, o->user, o->group, err, errlen))
        return EXIT_USAGE;
    return -1;
}

int sensor_opts_load(struct sensor_opts *o, int argc, char **argv, bool reload, char *err,
                     size_t errlen)
{
    opts_init(o);
    build_getopt();
    o->argc = argc;
    o->argv = argv;
    const char *path;
    bool none;
    find_config(argc, argv, &path, &none);
    if (!path && !none && access(SENSOR_DEFAULT_CONFIG, F_OK) == 0)
        path = SENSOR_DEFAULT_CONFIG;
    if (path) {
        if (!(o->config_path = sensor_opts_keep(o, path))) {
            snprintf(err, errlen, "out of memory");
            return EXIT_USAGE;
        }
        if (!config_load(o->config_path, o, err, errlen))
            return EXIT_USAGE;
    }
    int rc = apply_argv(o, argc, argv, reload, err, errlen);
    if (rc >= 0)
        return rc;
    if (!reload && (rc = cross_check(o, err, errlen)) >= 0)
        return rc;
    return fill_defaults(o, err, errlen) ? -1 : EXIT_USAGE;
}

int sensor_main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "policy") == 0)
        return policy_cli_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "report") == 0)
        return sensor_report_main(argc - 1, argv + 1);
    struct sensor_opts o;
    char err[1024] = "";
    int rc = sensor_opts_load(&o, argc, argv, false, err, sizeof(err));
    if (rc < 0)
        rc = sensor_run(&o);
    else if (rc > 0)
        fprintf(stderr, "stripwatch: %s\n", err);
    sensor_opts_free(&o);
    return rc;
}
