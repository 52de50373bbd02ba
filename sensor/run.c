/* SPDX-License-Identifier: Apache-2.0 */
/* run.c: the sensor process: opens the capture, policy engine, sink and
 * detector, runs the capture loop (decode, clock ticks, pipeline), handles
 * signals, prints the summary and statistics (through sensor/log.c), and
 * flushes everything at the end. No RFC. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alerts/detector.h"
#include "alerts/session_json.h"
#include "alerts/sink.h"
#include "alerts/tlsrpt.h"
#include "decode/pkt.h"
#include "policy/dane.h"
#include "policy/policy.h"
#include "sensor/capture.h"
#include "sensor/clock.h"
#include "sensor/fanout.h"
#include "sensor/evidence.h"
#include "sensor/health.h"
#include "sensor/inputcheck.h"
#include "sensor/log.h"
#include "sensor/pipeline.h"
#include "sensor/privdrop.h"
#include "sensor/sensor.h"
#include "sensor/summary.h"

static volatile sig_atomic_t g_stop, g_usr1, g_hup;

static void on_stop(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void on_hup(int sig)
{
    (void)sig;
    g_hup = 1;
}

static void on_usr1(int sig)
{
    (void)sig;
    g_usr1 = 1;
}

struct run {
    const struct sensor_opts *o;
    struct capture *cap;
    struct frag_table *frag;
    struct pipeline *pl;
    struct policy_engine *pol;
    struct sink *sink;
    struct detector *det;
    struct health *health;
    struct input_check *input; /* offline: undecodable frames per file */
    struct fanout *fan;        /* live with several workers: one capture thread each */
    struct evidence *ev;       /* --evidence-dir; NULL without it */
    struct tlsrpt *tlsrpt;     /* --tlsrpt-out; NULL without it */
    FILE *sessions;
    char *sessions_buf; /* its stdio buffer (setvbuf allocates only 4 KiB itself) */
    bool no_save;       /* the drop failed: write no state or policies as the user */
    struct sw_clock clock;
    struct summary *sum;
    uint64_t packets, bytes;
    uint64_t status[PKT_STATUS_COUNT];
};

static sw_usec wall_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (sw_usec)ts.tv_sec * SW_USEC_PER_SEC + ts.tv_nsec / 1000;
}

/* Health records' time: capture time offline, wall time live (health.h). */
static sw_usec health_time(const struct run *r, sw_usec capture_ts)
{
    return capture_is_live(r->cap) || !r->clock.set ? wall_usec() : capture_ts;
}

/* observer.ip: the IPv4 and IPv6 addresses of the capture interface, in
 * getifaddrs order, as text; 0 when it has none or they cannot be read
 * (the field is then left out). */
static size_t iface_addrs(const char *iface, char ip[][64], size_t max)
{
    struct ifaddrs *ifa, *i;
    size_t n = 0;
    if (!iface || getifaddrs(&ifa) != 0)
        return 0;
    for (i = ifa; i && n < max; i = i->ifa_next) {
        if (!i->ifa_addr || !i->ifa_name || strcmp(i->ifa_name, iface) != 0)
            continue;
        const void *a = NULL;
        if (i->ifa_addr->sa_family == AF_INET)
            a = &((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr;
        else if (i->ifa_addr->sa_family == AF_INET6)
            a = &((const struct sockaddr_in6 *)(const void *)i->ifa_addr)->sin6_addr;
        if (a && inet_ntop(i->ifa_addr->sa_family, a, ip[n], 64))
            n++;
    }
    freeifaddrs(ifa);
    return n;
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define U(x) ((unsigned long long)(x))

static void print_stats_to(struct run *r, FILE *f);

/* The statistics lines, through the log (stderr or syslog). */
static void print_stats(struct run *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return;
    print_stats_to(r, f);
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return;
    }
    for (char *line = buf, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        *nl = '\0';
        sw_log(LOG_INFO, "%s", strncmp(line, "stripwatch: ", 12) ? line : line + 12);
    }
    free(buf);
}

/* The human summary (summary.h) before the statistics. */
static void print_summary(struct run *r)
{
    if (!r->sum)
        return;
    if (r->fan)
        fanout_counts(r->fan, &r->packets, &r->bytes, r->status);
    struct summary_counts c = {.packets = r->packets};
    if (r->pl) {
        struct pipeline_stats ps;
        pipeline_get_stats(r->pl, &ps);
        c.sessions = ps.sessions;
        c.sessions_tls = ps.sessions_tls;
        c.suppressed = ps.det.suppressed;
    }
    summary_print(r->sum, &c);
}

static void print_stats_to(struct run *r, FILE *f)
{
    if (r->fan)
        fanout_counts(r->fan, &r->packets, &r->bytes, r->status);
    /* the detector's, policy engine's and TLS-RPT counters come from there
     * too: the output thread writes them (r->pol and r->tlsrpt are the
     * detector's) */
    struct pipeline_stats ps;
    memset(&ps, 0, sizeof(ps));
    if (r->pl)
        pipeline_get_stats(r->pl, &ps);
    uint64_t recv = 0, drop = 0, ifdrop = 0;
    bool kd = r->cap && capture_kernel_drops(r->cap, &recv, &drop, &ifdrop);
    fprintf(f, "stripwatch: stats packets=%llu bytes=%llu filtered=%llu", U(r->packets),
            U(r->bytes), U(r->cap ? capture_filtered(r->cap) : 0));
    if (kd)
        fprintf(f, " kernel_received=%llu kernel_dropped=%llu interface_dropped=%llu", U(recv),
                U(drop), U(ifdrop));
    fputc('\n', f);
    fprintf(f, "stripwatch: stats decode");
    for (int i = 0; i < PKT_STATUS_COUNT; i++)
        fprintf(f, " %s=%llu", pkt_status_str((enum pkt_status)i), U(r->status[i]));
    fputc('\n', f);
    if (r->frag) {
        struct frag_stats fs_sum;
        const struct frag_stats *s = frag_table_stats(r->frag);
        if (r->fan) {
            fanout_frag_stats(r->fan, &fs_sum);
            s = &fs_sum;
        }
        fprintf(f,
                "stripwatch: stats frag fragments=%llu datagrams=%llu reassembled=%llu "
                "overlaps=%llu overlap_conflicts=%llu bound_dropped=%llu bad_dropped=%llu "
                "timeout_dropped=%llu evicted=%llu held=%llu\n",
                U(s->fragments), U(s->datagrams), U(s->reassembled), U(s->overlaps),
                U(s->overlap_conflicts), U(s->bound_dropped), U(s->bad_dropped),
                U(s->timeout_dropped), U(s->evicted), U(s->held));
    }
    fprintf(f,
            "stripwatch: stats clock ticks=%llu backwards=%llu discontinuities=%llu "
            "rebases=%llu\n",
            U(r->clock.ticks), U(r->clock.backwards), U(r->clock.discontinuities),
            U(r->clock.rebases));
    if (r->pl) {
        const struct flow_stats *fl = &ps.flow;
        fprintf(f,
                "stripwatch: stats flows created=%llu closed=%llu timed_out=%llu evicted=%llu "
                "refused=%llu active=%llu active_peak=%llu bytes_peak=%llu ooo_queued=%llu "
                "ooo_dropped=%llu retransmitted=%llu after_stop=%llu overlaps=%llu "
                "overlap_conflicts=%llu gaps=%llu gap_bytes=%llu delivered=%llu "
                "evicted_half_open=%llu evicted_no_session=%llu evicted_session=%llu "
                "evicted_done=%llu emergency=%llu emergency_entered=%llu emergency_left=%llu "
                "timed_out_emergency=%llu\n",
                U(fl->flows_created), U(fl->flows_closed), U(fl->flows_timed_out),
                U(fl->flows_evicted), U(fl->flows_refused), U(fl->flows_active),
                U(fl->flows_active_peak), U(fl->bytes_peak), U(fl->segs_ooo_queued),
                U(fl->segs_ooo_dropped), U(fl->segs_retransmitted), U(fl->segs_after_stop),
                U(fl->overlaps), U(fl->overlap_conflicts), U(fl->gaps), U(fl->gap_bytes),
                U(fl->bytes_delivered), U(fl->evicted_half_open), U(fl->evicted_no_session),
                U(fl->evicted_session), U(fl->evicted_done), U(fl->emergency),
                U(fl->emergency_entered), U(fl->emergency_left), U(fl->timed_out_emergency));
        fprintf(f,
                "stripwatch: stats workers n=%u ring_dropped=%llu ring_waits=%llu "
                "output_waits=%llu "
                "sessions_written=%llu facts_copy_failed=%llu\n",
                r->o->workers, U(ps.ring_dropped), U(ps.ring_waits), U(ps.output_waits),
                U(ps.sessions_out), U(ps.copy_failed));
        const struct smtp_stats *sm = &ps.smtp;
        fprintf(f,
                "stripwatch: stats smtp sessions=%llu ignored_flows=%llu lines_too_long=%llu "
                "replies_unmatched=%llu pipeline_overflow=%llu tls_records=%llu "
                "bytes_c2s=%llu bytes_s2c=%llu flows_no_payload=%llu memcap_refused=%llu "
                "mem_in_use=%llu mem_peak=%llu cert_cache_hits=%llu cert_cache_misses=%llu\n",
                U(sm->sessions), U(sm->ignored_flows), U(sm->lines_too_long),
                U(sm->replies_unmatched), U(sm->pipeline_overflow), U(sm->tls_records),
                U(sm->bytes_c2s), U(sm->bytes_s2c), U(sm->flows_no_payload), U(sm->memcap_refused),
                U(sm->mem_in_use), U(sm->mem_peak), U(sm->cert_cache_hits),
                U(sm->cert_cache_misses));
    }
    if (ps.have_det) {
        const struct detector_stats *d = &ps.det;
        fprintf(f,
                "stripwatch: stats detector sessions=%llu alerts=%llu suppressed=%llu "
                "suppressed_disabled=%llu suppressed_allow_server=%llu "
                "suppressed_allow_client=%llu suppressed_allow_domain=%llu "
                "pending_peak=%llu pending_dropped=%llu policy_unknown=%llu "
                "lookups_in_flight=%llu policy_domains_dropped=%llu policy_lookups_deferred=%llu "
                "posture_entries=%llu "
                "posture_evicted=%llu posture_expired=%llu posture_redis_errors=%llu\n",
                U(d->sessions), U(d->alerts), U(d->suppressed), U(d->suppressed_disabled),
                U(d->suppressed_allow_server), U(d->suppressed_allow_client),
                U(d->suppressed_allow_domain), U(d->pending_peak), U(d->pending_dropped),
                U(d->policy_unknown), U(d->lookups_in_flight), U(d->policy_domains_dropped),
                U(d->policy_lookups_deferred), U(d->posture_entries), U(d->posture_evicted),
                U(d->posture_expired), U(d->posture_redis_errors));
    }
    if (r->sink) {
        const struct sink_stats *s = sink_stats(r->sink);
        fprintf(f,
                "stripwatch: stats sink emitted=%llu delivered=%llu spooled=%llu replayed=%llu "
                "dropped_spool_full=%llu reconnects=%llu errors=%llu duplicates_skipped=%llu "
                "pending=%llu spool_bytes=%llu\n",
                U(s->emitted), U(s->delivered), U(s->spooled), U(s->replayed),
                U(s->dropped_spool_full), U(s->reconnects), U(s->errors), U(s->duplicates_skipped),
                U(s->pending), U(s->spool_bytes));
    }
    if (r->ev) {
        struct evidence_stats es;
        evidence_get_stats(r->ev, &es);
        fprintf(f,
                "stripwatch: stats evidence held_flows=%llu held_bytes=%llu held_peak=%llu "
                "pkts_kept=%llu pkts_bounded=%llu pkts_memcap=%llu flows_expired=%llu "
                "sessions_unmatched=%llu files_written=%llu files_rotated=%llu "
                "files_too_large=%llu write_errors=%llu dir_files=%llu dir_bytes=%llu\n",
                U(es.held_flows), U(es.held_bytes), U(es.held_peak), U(es.pkts_kept),
                U(es.pkts_bounded), U(es.pkts_memcap), U(es.flows_expired),
                U(es.sessions_unmatched), U(es.files_written), U(es.files_rotated),
                U(es.files_too_large), U(es.write_errors), U(es.dir_files), U(es.dir_bytes));
    }
    if (r->tlsrpt && ps.have_det) {
        const struct tlsrpt_stats *ts = &ps.rpt;
        fprintf(f,
                "stripwatch: stats tlsrpt sessions_counted=%llu reports_written=%llu "
                "write_errors=%llu dropped=%llu\n",
                U(ts->sessions_counted), U(ts->reports_written), U(ts->write_errors),
                U(ts->dropped));
    }
    if (r->pol && ps.have_det) {
        const struct policy_stats *p = &ps.pol;
        fprintf(f,
                "stripwatch: stats policy lookups=%llu hits_memory=%llu hits_redis=%llu "
                "hits_file=%llu misses=%llu dns_queries=%llu dns_errors=%llu fetches=%llu "
                "fetch_ok=%llu fetch_errors=%llu expired=%llu expired_domains=%llu "
                "file_dropped=%llu\n",
                U(p->lookups), U(p->hits_memory), U(p->hits_redis), U(p->hits_file), U(p->misses),
                U(p->dns_queries), U(p->dns_errors), U(p->fetches), U(p->fetch_ok),
                U(p->fetch_http_error + p->fetch_tls_error + p->fetch_timeout + p->fetch_redirect +
                  p->fetch_bad_type + p->fetch_too_big + p->fetch_private_addr +
                  p->fetch_parse_error),
                U(p->expired), U(p->expired_domains), U(p->file_dropped));
        fprintf(f,
                "stripwatch: stats policy_bounds lookups_dropped=%llu dns_timeouts=%llu "
                "dns_resolver_down=%llu dns_skipped=%llu dns_queued_peak=%llu cache_full=%llu "
                "evicted=%llu neg_evicted=%llu\n",
                U(p->lookups_dropped), U(p->dns_timeouts), U(p->dns_resolver_down),
                U(p->dns_skipped), U(p->dns_queued_peak), U(p->cache_full), U(p->evicted),
                U(p->neg_evicted));
    }
}

static void progress(struct run *r, double t0, bool final)
{
    uint64_t done, total;
    capture_progress(r->cap, &done, &total);
    double el = now_mono() - t0;
    fprintf(stderr, "\rstripwatch: %llu packets, %.1f MB", U(r->packets), (double)r->bytes / 1e6);
    if (total)
        fprintf(stderr, " (%.0f%% of input)", 100.0 * (double)done / (double)total);
    if (el > 0)
        fprintf(stderr, ", %.0f packets/s   ", (double)r->packets / el);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    /* a reload waits for the read in progress (a pipe's read is restarted,
     * not failed); the loop reloads before the next packet is handled */
    sa.sa_handler = on_hup;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* The state directory, when a default path lies in it: exists, is a
 * directory, may be written (as the user started; --user's drop is checked
 * later, file by file). */
static bool state_dir_ok(const struct sensor_opts *o, char *err, size_t errlen)
{
    if (!o->state_dir_used)
        return true;
    struct stat st;
    const char *why = NULL;
    if (stat(o->state_dir, &st) != 0)
        why = strerror(errno);
    else if (!S_ISDIR(st.st_mode))
        why = "not a directory";
    else if (access(o->state_dir, W_OK | X_OK) != 0)
        why = strerror(errno);
    if (why)
        snprintf(err, errlen,
                 "state directory %s: %s (create it, or choose another with "
                 "--state-dir)",
                 o->state_dir, why);
    return why == NULL;
}

/* The detector's evidence hook (detector.h): the session's packets. */
static bool evidence_of_session(void *arg, const struct smtp_facts *f, bool alerted, char *name,
                                size_t namelen)
{
    return evidence_session(arg, &f->flow, alerted, name, namelen);
}

/* Reading regular files only (not live, not stdin or a pipe that someone
 * feeds and reads the output of as it comes): output can go out in large
 * writes. */
static bool inputs_are_files(const struct sensor_opts *o)
{
    if (o->iface || !o->n_files)
        return false;
    for (size_t i = 0; i < o->n_files; i++) {
        struct stat st;
        if (strcmp(o->files[i], "-") == 0 || stat(o->files[i], &st) != 0 || !S_ISREG(st.st_mode))
            return false;
    }
    return true;
}

/* Opens everything but the capture; 0 or an error line in err. With --user,
 * privileges are dropped once the files are open (sessions, policy file,
 * alerts, spool, state file) and before the pipeline starts its threads. */
static int open_outputs(struct run *r, char *err, size_t errlen)
{
    const struct sensor_opts *o = r->o;
    bool large_writes = inputs_are_files(o); /* nobody waits for each line */
    if (o->sessions_out) {
        if (strcmp(o->sessions_out, "-") == 0) {
            /* alerts may share stdout: one write per session line */
            setvbuf(stdout, NULL, _IOLBF, 1 << 20);
            r->sessions = stdout;
        } else {
            r->sessions = fopen(o->sessions_out, "w");
            if (!r->sessions) {
                snprintf(err, errlen, "%s: %s", o->sessions_out, strerror(errno));
                return -1;
            }
            /* one write per MiB of records reading files (live runs and
             * pipes flush each line); glibc ignores the size without a
             * buffer given */
            r->sessions_buf = malloc(1 << 20);
            if (r->sessions_buf)
                setvbuf(r->sessions, r->sessions_buf, _IOFBF, 1 << 20);
        }
    }
    struct policy_cfg pc;
    policy_cfg_defaults(&pc);
    pc.fetch = o->iface != NULL || o->fetch_policies;
    pc.dns_server = o->dns_server;
    pc.ca_file = o->ca_file;
    pc.allow_private_hosts = o->allow_private_policy_hosts;
    pc.redis_url = o->redis_url;
    pc.policy_file = o->policy_file;
    pc.dane = !o->no_dane && (pc.fetch || o->dane_file);
    pc.trust_anchor = o->trust_anchor;
    pc.dane_file = o->dane_file;
    char e[512] = "";
    r->pol = policy_engine_new(&pc, e, sizeof(e));
    if (!r->pol) {
        snprintf(err, errlen, "%s", e[0] ? e : "policy engine: cannot start");
        return -1;
    }
    struct sink_cfg sc;
    sink_cfg_defaults(&sc);
    sc.out_path = o->alerts_out ? o->alerts_out : (o->redis_url ? NULL : "-");
    sc.redis_url = o->redis_url;
    sc.mode = o->redis_mode;
    if (o->redis_key)
        sc.key = o->redis_key;
    if (o->redis_stream_maxlen)
        sc.stream_maxlen = o->redis_stream_maxlen;
    if (o->spool)
        sc.spool_path = o->spool;
    if (o->spool_max)
        sc.spool_max_bytes = o->spool_max;
    if (o->ca_file)
        sc.ca_file = o->ca_file;
    sc.file_batch = large_writes;
    e[0] = '\0';
    r->sink = sink_new(&sc, e, sizeof(e));
    if (!r->sink) {
        snprintf(err, errlen, "%s", e[0] ? e : "alert sink: cannot start");
        return -1;
    }
    struct detector_cfg dc;
    detector_cfg_defaults(&dc);
    dc.policy = r->pol;
    dc.sink = r->sink;
    if (o->observer_name)
        dc.observer_name = o->observer_name;
    dc.state_file = o->state_file;
    /* posture through Redis: live runs share it (one sensor per tap, one
     * Redis); an offline run only when asked, so that re-analysing a capture
     * neither changes nor is changed by what production sensors learned */
    bool share_posture = o->posture_redis_set ? o->posture_redis : o->iface != NULL;
    dc.redis_url = share_posture ? o->redis_url : NULL;
    if (o->fallback_window > 0)
        dc.fallback_window = o->fallback_window;
    dc.offline = o->iface == NULL;
    dc.interface = o->iface;
    char ip[DETECTOR_MAX_IPS][64];
    const char *ips[DETECTOR_MAX_IPS];
    dc.n_ips = iface_addrs(o->iface, ip, DETECTOR_MAX_IPS);
    for (size_t i = 0; i < dc.n_ips; i++)
        ips[i] = ip[i];
    dc.ips = ips;
    dc.tuning = &o->tuning;
    r->sum = summary_new();
    if (r->sum) {
        dc.emit = summary_alert;
        dc.emit_arg = r->sum;
    }
    if (o->evidence_dir) {
        struct evidence_cfg ec;
        evidence_cfg_defaults(&ec);
        ec.dir = o->evidence_dir;
        if (o->evidence_bytes_set)
            ec.bytes_per_dir = o->evidence_bytes;
        if (o->evidence_max_size)
            ec.max_size = o->evidence_max_size;
        e[0] = '\0';
        r->ev = evidence_new(&ec, e, sizeof(e));
        if (!r->ev) {
            snprintf(err, errlen, "%s", e);
            return -1;
        }
        dc.evidence = evidence_of_session;
        dc.evidence_arg = r->ev;
    }
    if (o->tlsrpt_out) {
        struct stat st;
        int src = stat(o->tlsrpt_out, &st);
        if (src != 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "--tlsrpt-out %s: %s", o->tlsrpt_out,
                     src != 0 ? strerror(errno) : "not a directory");
            return -1;
        }
        char host[256] = "";
        if (!o->observer_name && gethostname(host, sizeof(host) - 1) != 0)
            host[0] = '\0';
        struct tlsrpt_cfg tc = {o->tlsrpt_out, o->observer_name ? o->observer_name : host,
                                o->tlsrpt_contact};
        r->tlsrpt = tlsrpt_new(&tc);
        if (!r->tlsrpt) {
            snprintf(err, errlen, "TLS-RPT: out of memory");
            return -1;
        }
        dc.tlsrpt = r->tlsrpt;
    }
    e[0] = '\0';
    r->det = detector_new(&dc, e, sizeof(e));
    if (!r->det) {
        snprintf(err, errlen, "%s", e[0] ? e : "detector: cannot start");
        return -1;
    }
    /* a file in the evidence directory: the drop's check that USER may write there */
    char evidence_probe[4200] = "";
    if (o->evidence_dir)
        snprintf(evidence_probe, sizeof(evidence_probe), "%s/", o->evidence_dir);
    char tlsrpt_probe[4200] = "";
    if (o->tlsrpt_out)
        snprintf(tlsrpt_probe, sizeof(tlsrpt_probe), "%s/", o->tlsrpt_out);
    /* everything that opens a file as root is done; no worker thread yet */
    if (!privdrop_apply(&o->drop, err, errlen) ||
        !privdrop_check_writable(&o->drop, "--save-dane", o->save_dane, err, errlen) ||
        !privdrop_check_writable(&o->drop, "--save-policies", o->save_policies, err, errlen) ||
        !privdrop_check_writable(&o->drop, "--state-file", o->state_file, err, errlen) ||
        !privdrop_check_writable(&o->drop, "--spool", o->redis_url ? sc.spool_path : NULL, err,
                                 errlen) ||
        !privdrop_check_writable(&o->drop, "--evidence-dir",
                                 o->evidence_dir ? evidence_probe : NULL, err, errlen) ||
        !privdrop_check_writable(&o->drop, "--tlsrpt-out", o->tlsrpt_out ? tlsrpt_probe : NULL, err,
                                 errlen)) {
        r->no_save = true; /* nothing learned yet; one error line only */
        return -1;
    }
    struct pipeline_cfg plc;
    memset(&plc, 0, sizeof(plc));
    plc.workers = o->workers;
    plc.live = o->iface != NULL;
    plc.flush_records = !large_writes;
    plc.self_fed = capture_n_src(r->cap) > 1 && capture_is_live(r->cap);
    flow_cfg_defaults(&plc.flow);
    if (o->memcap)
        plc.flow.memcap = o->memcap / o->workers;
    if (o->max_flows)
        plc.flow.max_flows = (o->max_flows + o->workers - 1) / o->workers;
    smtp_cfg_defaults(&plc.smtp);
    plc.smtp.log_addresses = o->log_addresses;
    plc.smtp.any_port = o->any_port;
    plc.sessions_out = r->sessions;
    plc.det = r->det;
    r->pl = pipeline_new(&plc, err, errlen);
    if (!r->pl)
        return -1;
    r->frag = frag_table_new(NULL);
    struct health_cfg hc = {.sink = r->sink,
                            .cap = r->cap,
                            .frag = r->frag,
                            .pl = r->pl,
                            .det = r->det,
                            .pol = r->pol,
                            .ev = r->ev,
                            .observer_name = o->observer_name,
                            .live = o->iface != NULL};
    if (!r->frag || !(r->health = health_new(&hc))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* ---- SIGHUP ---- */

/* What the owner of the detector applies (pipeline_run_on_output). */
struct reload_job {
    struct run *r;
    const struct sensor_opts *n;
    FILE *sessions;  /* reopened session records, or NULL */
    char err[1024];  /* the reload failed: nothing changed */
    char warn[1024]; /* applied, but the alerts file could not be reopened */
    size_t dropped;  /* policies of domains no longer in the policy file */
};

static void reload_apply(void *arg)
{
    struct reload_job *j = arg;
    struct run *r = j->r;
    if (j->n->policy_file && r->pol &&
        policy_engine_reload_file(r->pol, j->n->policy_file, &j->dropped, j->err, sizeof(j->err)) !=
            SW_OK)
        return;
    if (r->det && !detector_set_tuning(r->det, &j->n->tuning)) {
        snprintf(j->err, sizeof(j->err), "out of memory");
        return;
    }
    if (r->sink)
        sink_reopen(r->sink, j->warn, sizeof(j->warn));
    if (j->sessions)
        j->sessions = pipeline_swap_sessions_out(r->pl, j->sessions);
}

/* Reads the config file and the command line again, applies what may
 * change while running, reopens the output files; one line on stderr for
 * the outcome and one per option that needs a restart. */
static void reload(struct run *r)
{
    const struct sensor_opts *o = r->o;
    struct sensor_opts n;
    char err[1024] = "";
    if (sensor_opts_load(&n, o->argc, o->argv, true, err, sizeof(err)) >= 0) {
        sw_log(LOG_WARNING, "SIGHUP: %s; keeping the running configuration", err);
        sensor_opts_free(&n);
        return;
    }
    struct reload_job j;
    memset(&j, 0, sizeof(j));
    j.r = r;
    j.n = &n;
    if (r->sessions && r->sessions != stdout) {
        j.sessions = fopen(o->sessions_out, "ae"); /* live: flushed each line */
        if (!j.sessions)
            snprintf(j.warn, sizeof(j.warn), "%s: %s", o->sessions_out, strerror(errno));
    }
    FILE *new_sessions = j.sessions;
    char sess_warn[sizeof(j.warn)];
    snprintf(sess_warn, sizeof(sess_warn), "%s", j.warn);
    j.warn[0] = '\0';
    pipeline_run_on_output(r->pl, reload_apply, &j);
    if (j.err[0]) {
        sw_log(LOG_WARNING, "SIGHUP: %s; keeping the running configuration", j.err);
        if (j.sessions)
            fclose(j.sessions); /* not swapped in */
        sensor_opts_free(&n);
        return;
    }
    if (j.sessions) { /* swapped: j.sessions holds the old stream now */
        fclose(j.sessions);
        r->sessions = new_sessions;
    }
    for (int i = 0;; i++) {
        unsigned flags;
        const char *name = sensor_opt_name(i, &flags);
        if (!name)
            break;
        if (flags & (SENSOR_OPT_RELOAD | SENSOR_OPT_CLI))
            continue;
        const char *a = o->given[i], *b = n.given[i];
        if ((a || b) && (!a || !b || strcmp(a, b) != 0))
            sw_log(LOG_WARNING,
                   "SIGHUP: %s: changed; it needs a restart (the running "
                   "value stays)",
                   name);
    }
    if (j.dropped)
        sw_log(LOG_NOTICE, "SIGHUP: %s: %zu domain%s no longer in the file: %s dropped",
               n.policy_file, j.dropped, j.dropped == 1 ? "" : "s",
               j.dropped == 1 ? "its policy" : "their policies");
    if (sess_warn[0])
        sw_log(LOG_WARNING, "SIGHUP: %s; still writing to the open file", sess_warn);
    if (j.warn[0])
        sw_log(LOG_WARNING, "SIGHUP: %s; still writing to the open file", j.warn);
    sw_log(LOG_NOTICE, "SIGHUP: reloaded %s", n.config_path ? n.config_path : "(no config file)");
    sensor_opts_free(&n);
}

/* Flushes and frees everything; returns false when a step failed. */
static bool close_all(struct run *r, bool print)
{
    bool ok = true;
    if (r->fan)
        fanout_stop(r->fan); /* no packet after this */
    if (r->pl)
        pipeline_finish(r->pl);
    if (r->det && !r->no_save)
        detector_finish(r->det);
    if (r->tlsrpt && !r->no_save && !tlsrpt_flush(r->tlsrpt))
        ok = false;
    if (r->health)
        health_stop(r->health, health_time(r, r->clock.now));
    if (r->pol && r->o->save_policies && !r->no_save) {
        char e[512] = "";
        if (policy_engine_save(r->pol, r->o->save_policies, e, sizeof(e)) != SW_OK) {
            sw_log(LOG_ERR, "%s", e[0] ? e : r->o->save_policies);
            ok = false;
        }
    }
    struct dane *dane = r->pol ? policy_engine_dane(r->pol) : NULL;
    if (dane && r->o->save_dane && !r->no_save) {
        char e[512] = "";
        if (dane_save(dane, r->o->save_dane, e, sizeof(e)) != SW_OK) {
            sw_log(LOG_ERR, "%s", e[0] ? e : r->o->save_dane);
            ok = false;
        }
    }
    if (r->sink && sink_flush(r->sink, 10000) != SW_OK && sink_stats(r->sink)->pending) {
        /* an offline run that reached its end without delivering everything
         * failed (exit 1); stopped by a signal, or live, the next run on the
         * same spool delivers it first (exit 0) */
        uint64_t n = sink_stats(r->sink)->pending;
        sw_log(LOG_ERR, "%llu alert%s not delivered, left in spool %s", U(n), n == 1 ? "" : "s",
               sink_spool_path(r->sink));
        if (!capture_is_live(r->cap) && !g_stop)
            ok = false;
    }
    if (r->sessions && fflush(r->sessions) != 0) {
        sw_log(LOG_ERR, "%s: %s", r->o->sessions_out, strerror(errno));
        ok = false;
    }
    if (print && r->o->iface == NULL)
        print_summary(r);
    if (print)
        print_stats(r);
    health_free(r->health);
    detector_free(r->det);
    tlsrpt_free(r->tlsrpt);
    evidence_free(r->ev);
    summary_free(r->sum);
    sink_free(r->sink);
    policy_engine_free(r->pol);
    if (r->fan) /* the statistics above read its counters */
        fanout_counts(r->fan, &r->packets, &r->bytes, r->status);
    fanout_free(r->fan);
    pipeline_free(r->pl);
    frag_table_free(r->frag);
    capture_free(r->cap);
    if (r->sessions && r->sessions != stdout)
        fclose(r->sessions);
    free(r->sessions_buf);
    fflush(stdout);
    return ok;
}

/* Live with several workers: the capture threads do the packets (fanout.c);
 * this thread handles signals, statistics and health records. Returns the
 * exit status. */
static int run_fanout(struct run *r, long every)
{
    char err[1024];
    double last_stats = now_mono();
    while (!g_stop) {
        if (g_usr1) {
            g_usr1 = 0;
            print_summary(r);
            print_stats(r);
        }
        if (every > 0 && now_mono() - last_stats >= (double)every) {
            last_stats = now_mono();
            print_stats(r);
        }
        if (g_hup) {
            g_hup = 0;
            reload(r);
        }
        if (fanout_failed(r->fan, err, sizeof(err))) {
            sw_log(LOG_ERR, "%s", err);
            return 1;
        }
        health_poll(r->health, wall_usec());
        struct timespec nap = {0, 50 * 1000000L}; /* a signal ends it early */
        nanosleep(&nap, NULL);
    }
    return 0;
}

int sensor_run(const struct sensor_opts *o)
{
    struct run r;
    memset(&r, 0, sizeof(r));
    r.o = o;
    char err[1024] = "";
    install_signals();
    sw_log_open(o->syslog);

    if (o->iface) {
        struct capture_live_cfg lc = {
            .iface = o->iface,
            .bpf = o->bpf ? o->bpf : (o->any_port ? "tcp" : SENSOR_DEFAULT_BPF),
            .snaplen = o->snaplen,
            .buffer_size = o->buffer_size ? o->buffer_size : SENSOR_DEFAULT_BUFFER_SIZE,
            .immediate = o->immediate,
            /* the evidence store is fed by the one capture thread (evidence.c) */
            .fanout = o->evidence_dir ? 1 : o->workers,
        };
        r.cap = capture_open_live(&lc, err, sizeof(err));
    } else {
        r.cap = capture_open_files(o->files, o->n_files, o->bpf, o->snaplen, err, sizeof(err));
    }
    if (!r.cap) {
        sw_log(LOG_ERR, "%s", err);
        sw_log_close();
        return 1;
    }
    /* stripwatch.packet.file: struct pkt file - 1 indexes the sources (the
     * capture owns the names; "stdin" for -) */
    const char *src_names[255];
    size_t n_src_names = 0;
    if (!capture_is_live(r.cap)) {
        n_src_names = capture_n_src(r.cap) < 255 ? capture_n_src(r.cap) : 255;
        for (size_t i = 0; i < n_src_names; i++)
            src_names[i] = capture_src_name(r.cap, i);
        session_json_files(src_names, n_src_names);
    }
    if (!state_dir_ok(o, err, sizeof(err)) || open_outputs(&r, err, sizeof(err)) < 0) {
        sw_log(LOG_ERR, "%s", err);
        close_all(&r, false);
        sw_log_close();
        return 1;
    }

    bool live = capture_is_live(r.cap);
    if (live)
        health_start(r.health, wall_usec());
    else
        r.input = input_check_new(r.cap);
    if (live && capture_n_src(r.cap) > 1) {
        int rc = 0;
        if (!(r.fan = fanout_start(r.cap, r.pl, err, sizeof(err)))) {
            sw_log(LOG_ERR, "%s", err);
            rc = 1;
        } else {
            rc = run_fanout(&r, o->stats_interval >= 0 ? o->stats_interval : (o->quiet ? 0 : 300));
        }
        if (!close_all(&r, !o->quiet))
            rc = 1;
        sw_log_close();
        return rc;
    }
    bool show_progress = !live && !o->quiet && isatty(STDERR_FILENO);
    double t0 = now_mono(), last_progress = t0, last_stats = t0;
    /* --stats-interval: wall time live, capture time offline */
    long every = o->stats_interval >= 0 ? o->stats_interval : (live && !o->quiet ? 300 : 0);
    sw_usec stats_cap = -1;
    int exit_code = 0;
    uint64_t no = 0;
    for (;;) {
        if (g_stop)
            break;
        if (g_usr1) {
            g_usr1 = 0;
            print_summary(&r);
            print_stats(&r);
        }
        if (every > 0 && live && now_mono() - last_stats >= (double)every) {
            last_stats = now_mono();
            print_stats(&r);
        }
        if (g_hup) {
            g_hup = 0;
            reload(&r);
        }
        struct capture_pkt cp;
        int rc = capture_next(r.cap, &cp, err, sizeof(err));
        if (g_hup && rc == 1) {
            /* the signal came during the read: the new configuration
             * judges this packet already */
            g_hup = 0;
            reload(&r);
        }
        if (rc == -1)
            break;
        if (rc == -2 && g_stop)
            break; /* a read interrupted by SIGINT/SIGTERM is the requested stop */
        if (rc == -2) {
            sw_log(LOG_ERR, "%s", err);
            exit_code = 1;
            break;
        }
        if (rc == 0) {
            /* live and idle: wall time drives the clock */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            sw_usec now = (sw_usec)ts.tv_sec * SW_USEC_PER_SEC + ts.tv_nsec / 1000;
            if (sw_clock_step(&r.clock, now)) {
                frag_table_expire(r.frag, now);
                pipeline_tick(r.pl, now, no);
            }
            pipeline_idle(r.pl);
            health_poll(r.health, now);
            continue;
        }
        no++;
        r.packets++;
        r.bytes += cp.len;
        if (no == 1)
            health_start(r.health, live ? wall_usec() : cp.ts);
        if (sw_clock_step(&r.clock, cp.ts)) {
            frag_table_expire(r.frag, cp.ts);
            evidence_tick(r.ev, cp.ts);
            pipeline_tick(r.pl, cp.ts, no);
            health_poll(r.health, health_time(&r, cp.ts));
        }
        if (every > 0 && !live) {
            if (stats_cap < 0 || r.clock.now < stats_cap)
                stats_cap = r.clock.now; /* first packet, or a re-based clock */
            else if (r.clock.now - stats_cap >= (sw_usec)every * SW_USEC_PER_SEC) {
                stats_cap = r.clock.now;
                print_stats(&r);
            }
        }
        struct pkt p;
        memset(&p, 0, sizeof(p));
        p.ts = cp.ts;
        p.no = no;
        p.file = live || cp.src >= 255 ? 0 : (uint8_t)(cp.src + 1);
        p.frame = cp.data;
        p.caplen = cp.caplen;
        p.len = cp.len;
        p.linktype = cp.linktype;
        enum pkt_status st = pkt_decode(&p, r.frag);
        r.status[st]++;
        input_check_packet(r.input, &cp, st);
        if (st == PKT_TCP) {
            evidence_packet(r.ev, &p); /* before the session can end */
            pipeline_packet(r.pl, &p);
        }
        if ((no & 0xFFF) == 0)
            pipeline_idle(r.pl);
        if (show_progress && (no & 0xFFFF) == 0) {
            double t = now_mono();
            if (t - last_progress >= 1.0) {
                progress(&r, t0, false);
                last_progress = t;
            }
        }
    }
    if (show_progress && last_progress != t0)
        progress(&r, t0, true);
    if (!input_check_report(r.input, stderr))
        exit_code = 1; /* a file with nothing decodable */
    input_check_free(r.input);
    if (!close_all(&r, !o->quiet))
        exit_code = 1;
    session_json_files(NULL, 0); /* src_names ends here */
    sw_log_close();
    return exit_code;
}
