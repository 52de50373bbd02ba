/* SPDX-License-Identifier: Apache-2.0 */
/* bench_realmix.c: the `real-mix` bench case (see bench_realmix.h). Frames
 * are Ethernet (RFC 894, 802.1Q tags skipped) carrying IPv4 (RFC 791) or
 * IPv6 (RFC 8200); rewritten addresses keep the IPv4 header and TCP/UDP
 * checksums right by incremental update (RFC 1624). */
#include <errno.h>
#include <ftw.h>
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "bench_realmix.h"

#define RM_GAP_MAX (600LL * 1000000LL) /* longer pauses inside a capture are cut to 10 min */
#define RM_START   (1763800000LL * 1000000LL)

struct rm_pkt {
    int64_t rel; /* microseconds since the capture's first frame, pauses cut */
    uint32_t caplen, len;
    size_t off; /* into the capture's data */
};

struct rm_cap {
    char *path;
    uint64_t hash, size;
    struct rm_pkt *pkts;
    size_t n, cap;
    uint8_t *data;
    size_t data_len, data_cap;
    int64_t span;
};

struct rm_set {
    struct rm_cap *caps;
    size_t n, cap;
    char **paths; /* every capture file found, sorted */
    size_t n_paths, cap_paths;
    unsigned dup, other_link, unreadable;
};

static struct rm_set *walk_set; /* nftw has no context argument */

static bool is_capture(const char *p)
{
    size_t l = strlen(p);
    return (l > 5 && strcmp(p + l - 5, ".pcap") == 0) ||
           (l > 7 && strcmp(p + l - 7, ".pcapng") == 0) ||
           (l > 4 && strcmp(p + l - 4, ".cap") == 0);
}

static int walk_one(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    struct rm_set *s = walk_set;
    struct stat target; /* a symbolic link to a capture counts as one */
    if (!is_capture(p) ||
        (type != FTW_F && (type != FTW_SL || stat(p, &target) != 0 || !S_ISREG(target.st_mode))))
        return 0;
    if (s->n_paths == s->cap_paths) {
        size_t nc = s->cap_paths ? 2 * s->cap_paths : 64;
        char **np = realloc(s->paths, nc * sizeof(*np));
        if (!np)
            return -1;
        s->paths = np;
        s->cap_paths = nc;
    }
    if (!(s->paths[s->n_paths] = strdup(p)))
        return -1;
    s->n_paths++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static uint64_t fnv_file(const char *path, uint64_t *size)
{
    FILE *f = fopen(path, "rb");
    uint64_t h = 1469598103934665603ull, n = 0;
    if (!f)
        return 0;
    int c;
    while ((c = getc(f)) != EOF) {
        h = (h ^ (uint8_t)c) * 1099511628211ull;
        n++;
    }
    fclose(f);
    *size = n;
    return h;
}

static bool files_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool eq = fa && fb;
    while (eq) {
        int ca = getc(fa), cb = getc(fb);
        if (ca != cb)
            eq = false;
        if (ca == EOF || cb == EOF)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return eq;
}

/* Loads one capture; false (counted) when it is skipped. */
static bool load_cap(struct rm_set *s, const char *path)
{
    uint64_t size = 0, h = fnv_file(path, &size);
    for (size_t i = 0; i < s->n; i++) {
        if (s->caps[i].hash == h && s->caps[i].size == size && files_equal(s->caps[i].path, path)) {
            s->dup++;
            return false;
        }
    }
    char e[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_MICRO, e);
    if (!p) {
        fprintf(stderr, "bench: real-mix: %s: %s (skipped)\n", path, e);
        s->unreadable++;
        return false;
    }
    if (pcap_datalink(p) != DLT_EN10MB) {
        fprintf(stderr, "bench: real-mix: %s: link type %d is not Ethernet (skipped)\n", path,
                pcap_datalink(p));
        s->other_link++;
        pcap_close(p);
        return false;
    }
    if (s->n == s->cap) {
        size_t nc = s->cap ? 2 * s->cap : 32;
        struct rm_cap *n = realloc(s->caps, nc * sizeof(*n));
        if (!n) {
            pcap_close(p);
            return false;
        }
        s->caps = n;
        s->cap = nc;
    }
    struct rm_cap *c = &s->caps[s->n];
    memset(c, 0, sizeof(*c));
    c->path = strdup(path);
    c->hash = h;
    c->size = size;
    struct pcap_pkthdr *ph;
    const u_char *d;
    int64_t prev = 0, rel = 0;
    while (pcap_next_ex(p, &ph, &d) == 1) {
        int64_t ts = (int64_t)ph->ts.tv_sec * 1000000 + ph->ts.tv_usec;
        if (c->n > 0) {
            int64_t dt = ts - prev;
            if (dt > RM_GAP_MAX)
                dt = RM_GAP_MAX;
            rel = rel + dt < 0 ? 0 : rel + dt;
        }
        prev = ts;
        if (c->n == c->cap) {
            c->cap = c->cap ? 2 * c->cap : 256;
            c->pkts = realloc(c->pkts, c->cap * sizeof(*c->pkts));
        }
        while (c->data_len + ph->caplen > c->data_cap) {
            c->data_cap = c->data_cap ? 2 * c->data_cap : 65536;
            c->data = realloc(c->data, c->data_cap);
        }
        if (!c->pkts || !c->data || !c->path) {
            pcap_close(p);
            fprintf(stderr, "bench: real-mix: out of memory\n");
            exit(1);
        }
        c->pkts[c->n] = (struct rm_pkt){rel, ph->caplen, ph->len, c->data_len};
        memcpy(c->data + c->data_len, d, ph->caplen);
        c->data_len += ph->caplen;
        c->n++;
        if (rel > c->span)
            c->span = rel;
    }
    pcap_close(p);
    if (c->n == 0) {
        free(c->pkts);
        free(c->data);
        free(c->path);
        return false;
    }
    s->n++;
    return true;
}

static void set_free(struct rm_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->caps[i].path);
        free(s->caps[i].pkts);
        free(s->caps[i].data);
    }
    for (size_t i = 0; i < s->n_paths; i++)
        free(s->paths[i]);
    free(s->caps);
    free(s->paths);
}

/* ---- rewriting ---- */

static uint16_t rd16(const uint8_t *b)
{
    return (uint16_t)(b[0] << 8 | b[1]);
}

static void wr16(uint8_t *b, uint16_t v)
{
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') */
static void csum_fix(uint8_t *c, uint16_t old, uint16_t new)
{
    uint32_t s = (uint16_t)~rd16(c) + (uint32_t)(uint16_t)~old + new;
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    wr16(c, (uint16_t)~s);
}

/* XORs the 16-bit word at a with k; fixes the checksums at c1 and c2 (may be NULL). */
static void xor_word(uint8_t *a, uint16_t k, uint8_t *c1, uint8_t *c2)
{
    uint16_t old = rd16(a), new = old ^ k;
    wr16(a, new);
    if (c1)
        csum_fix(c1, old, new);
    if (c2)
        csum_fix(c2, old, new);
}

/* The transport checksum's position, when the packet holds it. */
static uint8_t *l4_csum(uint8_t *l4, uint8_t proto, const uint8_t *end)
{
    if (proto == 6 && l4 + 18 <= end)
        return l4 + 16;
    if (proto == 17 && l4 + 8 <= end && rd16(l4 + 6) != 0)
        return l4 + 6;
    return NULL;
}

/* Rewrites the low 16 bits of both addresses (XOR k): the same host gets the
 * same new address in both directions, and each k gives other flows. */
static void rewrite(uint8_t *b, uint32_t caplen, uint16_t k)
{
    const uint8_t *end = b + caplen;
    if (k == 0 || caplen < 14)
        return;
    size_t off = 12;
    uint16_t type = rd16(b + off);
    while ((type == 0x8100 || type == 0x88a8) && off + 6 <= caplen) {
        off += 4;
        type = rd16(b + off);
    }
    uint8_t *l3 = b + off + 2;
    if (type == 0x0800 && l3 + 20 <= end && (l3[0] >> 4) == 4) {
        size_t ihl = (size_t)(l3[0] & 15) * 4;
        bool first = (rd16(l3 + 6) & 0x1fff) == 0;
        uint8_t *l4c = first && ihl >= 20 ? l4_csum(l3 + ihl, l3[9], end) : NULL;
        xor_word(l3 + 14, k, l3 + 10, l4c);
        xor_word(l3 + 18, k, l3 + 10, l4c);
    } else if (type == 0x86dd && l3 + 40 <= end && (l3[0] >> 4) == 6) {
        uint8_t *l4c = l4_csum(l3 + 40, l3[6], end);
        xor_word(l3 + 22, k, l4c, NULL);
        xor_word(l3 + 38, k, l4c, NULL);
    }
}

/* ---- the mix ---- */

struct rm_mix {
    uint64_t packets, bytes;
};

static bool find_caps(struct rm_set *s, const struct realmix_cfg *cfg)
{
    for (size_t i = 0; i < cfg->n_dirs; i++) {
        struct stat st;
        if (stat(cfg->dirs[i], &st) != 0 || !S_ISDIR(st.st_mode)) {
            printf("real-mix: %s: %s: its captures are not in the mix\n", cfg->dirs[i],
                   stat(cfg->dirs[i], &st) != 0 ? strerror(errno) : "not a directory");
            continue;
        }
        size_t before = s->n_paths;
        walk_set = s;
        if (nftw(cfg->dirs[i], walk_one, 16, FTW_PHYS) != 0) {
            fprintf(stderr, "bench: real-mix: %s: cannot walk it\n", cfg->dirs[i]);
            return false;
        }
        qsort(s->paths + before, s->n_paths - before, sizeof(*s->paths), cmp_str);
    }
    for (size_t i = 0; i < s->n_paths; i++)
        load_cap(s, s->paths[i]);
    if (s->n == 0) {
        fprintf(stderr, "bench: real-mix: no Ethernet capture found\n");
        return false;
    }
    if ((uint64_t)s->n * (cfg->rounds ? cfg->rounds : 1) > 65536) {
        fprintf(stderr, "bench: real-mix: %zu captures x %u rounds: at most 65536 copies\n", s->n,
                cfg->rounds);
        return false;
    }
    return true;
}

/* Round r holds every capture once, all starting together, merged by time,
 * capture i with addresses XOR (r * n + i); the next round starts 1 s after
 * the longest capture of this one ended. */
static bool write_mix(const char *path, const struct rm_set *s, unsigned rounds, struct rm_mix *m)
{
    pcap_t *dead = pcap_open_dead(DLT_EN10MB, 262144);
    pcap_dumper_t *dw = dead ? pcap_dump_open(dead, path) : NULL;
    if (!dw) {
        fprintf(stderr, "bench: real-mix: %s: %s\n", path, dead ? pcap_geterr(dead) : "no memory");
        if (dead)
            pcap_close(dead);
        return false;
    }
    size_t *at = calloc(s->n, sizeof(*at));
    uint8_t *buf = malloc(262144);
    int64_t span = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->caps[i].span > span)
            span = s->caps[i].span;
    memset(m, 0, sizeof(*m));
    for (unsigned r = 0; at && buf && r < rounds; r++) {
        int64_t base = RM_START + (int64_t)r * (span + 1000000);
        memset(at, 0, s->n * sizeof(*at));
        for (;;) {
            size_t best = s->n;
            for (size_t i = 0; i < s->n; i++) {
                if (at[i] < s->caps[i].n &&
                    (best == s->n || s->caps[i].pkts[at[i]].rel < s->caps[best].pkts[at[best]].rel))
                    best = i;
            }
            if (best == s->n)
                break;
            const struct rm_cap *c = &s->caps[best];
            const struct rm_pkt *p = &c->pkts[at[best]++];
            memcpy(buf, c->data + p->off, p->caplen);
            rewrite(buf, p->caplen, (uint16_t)(r * s->n + best));
            struct pcap_pkthdr h;
            int64_t ts = base + p->rel;
            h.ts.tv_sec = (time_t)(ts / 1000000);
            h.ts.tv_usec = (suseconds_t)(ts % 1000000);
            h.caplen = p->caplen;
            h.len = p->len;
            pcap_dump((u_char *)dw, &h, buf);
            m->packets++;
            m->bytes += 16 + p->caplen;
        }
    }
    bool ok = at && buf && pcap_dump_flush(dw) == 0;
    pcap_dump_close(dw);
    pcap_close(dead);
    free(at);
    free(buf);
    return ok;
}

bool bench_realmix_write(const char *path, const struct realmix_cfg *cfg)
{
    struct rm_set s;
    memset(&s, 0, sizeof(s));
    struct rm_mix m;
    bool ok = find_caps(&s, cfg) && write_mix(path, &s, cfg->rounds ? cfg->rounds : 1000, &m);
    if (ok)
        printf("%llu %llu\n", (unsigned long long)m.packets, (unsigned long long)m.bytes);
    set_free(&s);
    return ok;
}

/* ---- the readers ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs argv (PATH searched) with stdout and stderr to /dev/null; seconds,
 * peak RSS in KiB. False when it could not run or failed. */
static bool run_child(char *const *argv, double *secs, long *rss_kb)
{
    double t0 = now_s();
    pid_t pid = fork();
    if (pid == 0) {
        int dn = open("/dev/null", O_WRONLY);
        dup2(dn, 1);
        dup2(dn, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    struct rusage ru;
    int st;
    if (pid < 0 || wait4(pid, &st, 0, &ru) != pid)
        return false;
    *secs = now_s() - t0;
    *rss_kb = ru.ru_maxrss;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench: real-mix: %s exited %d\n", argv[0],
                WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        return false;
    }
    return true;
}

static bool bare_loop(const char *path, double *secs)
{
    char e[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(path, e);
    if (!p)
        return false;
    struct pcap_pkthdr *h;
    const u_char *d;
    uint64_t n = 0;
    double t0 = now_s();
    while (pcap_next_ex(p, &h, &d) == 1)
        n += h->len;
    *secs = now_s() - t0;
    pcap_close(p);
    return n > 0;
}

static bool in_path(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[4096];
    for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
        const char *e = strchr(p, ':');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        snprintf(buf, sizeof(buf), "%.*s/%s", (int)l, p, prog);
        if (access(buf, X_OK) == 0)
            return true;
        p += l + (e ? 1 : 0);
    }
    return false;
}

static uint64_t count_lines(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint64_t n = 0;
    int c;
    if (!f)
        return 0;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
    qsort(v, n, sizeof(*v), cmp_dbl);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

enum { R_BARE, R_SW1, R_SW2, R_NDPI, R_TSHARK, R_COUNT };

bool bench_realmix(const char *sw, const char *dir, const struct realmix_cfg *cfg)
{
    unsigned rounds = cfg->rounds ? cfg->rounds : 1000, runs = cfg->runs ? cfg->runs : 5;
    struct rm_set s;
    memset(&s, 0, sizeof(s));
    char mix[4200], sess[2][4200], al[2][4200];
    snprintf(mix, sizeof(mix), "%s/real-mix.pcap", dir);
    for (int w = 0; w < 2; w++) {
        snprintf(sess[w], sizeof(sess[w]), "%s/real-mix-sessions-%d.json", dir, w + 1);
        snprintf(al[w], sizeof(al[w]), "%s/real-mix-alerts-%d.json", dir, w + 1);
    }
    struct rm_mix m;
    if (!find_caps(&s, cfg) || !write_mix(mix, &s, rounds, &m)) {
        set_free(&s);
        unlink(mix);
        return false;
    }
    double load[3] = {0};
    getloadavg(load, 3);
    bool ok = true;
    /* the first run of each worker count writes its records: counts, and
     * the check that both wrote the same bytes */
    for (int w = 0; w < 2 && ok; w++) {
        char *argv[] = {
            (char *)sw,       "-q",    "-r",           mix,   "--workers", w ? "2" : "1",
            "--sessions-out", sess[w], "--alerts-out", al[w], NULL};
        double t;
        long k;
        ok = run_child(argv, &t, &k);
    }
    uint64_t n_sess = count_lines(sess[0]), n_alerts = count_lines(al[0]);
    bool same = ok && files_equal(sess[0], sess[1]) && files_equal(al[0], al[1]);
    bool have_ndpi = in_path("ndpiReader"), have_tshark = in_path("tshark");
    printf("real-mix: %zu distinct captures (%zu files found, %u duplicates, %u not Ethernet, %u "
           "unreadable skipped) x %u rounds, addresses rewritten per round and capture, pauses "
           "over 10 min cut: %llu frames, %.1f MB, %llu SMTP sessions, %llu alerts; 1 and 2 "
           "workers wrote %s\n",
           s.n, s.n_paths, s.dup, s.other_link, s.unreadable, rounds, (unsigned long long)m.packets,
           (double)m.bytes / 1e6, (unsigned long long)n_sess, (unsigned long long)n_alerts,
           same ? "the same records and alerts" : "DIFFERENT output");
    if (!have_ndpi)
        printf("  ndpiReader: not found (Debian package libndpi-bin): skipped\n");
    if (!have_tshark)
        printf("  tshark: not found (Debian package tshark): skipped\n");
    fflush(stdout);
    double t[R_COUNT][64];
    long rss[R_COUNT] = {0};
    if (runs > 64)
        runs = 64;
    char *a_sw1[] = {(char *)sw,       "-q",        "-r",           mix,         "--workers", "1",
                     "--sessions-out", "/dev/null", "--alerts-out", "/dev/null", NULL};
    char *a_sw2[] = {(char *)sw,       "-q",        "-r",           mix,         "--workers", "2",
                     "--sessions-out", "/dev/null", "--alerts-out", "/dev/null", NULL};
    char *a_ndpi[] = {"ndpiReader", "-q", "-i", mix, NULL};
    char *a_tshark[] = {"tshark", "-r",
                        mix,      "-n",
                        "-Y",     "smtp",
                        "-T",     "fields",
                        "-e",     "tcp.srcport",
                        "-e",     "tcp.dstport",
                        "-e",     "smtp.req.command",
                        "-e",     "smtp.response.code",
                        "-e",     "smtp.rsp.parameter",
                        NULL};
    char *const *argvs[R_COUNT] = {NULL, a_sw1, a_sw2, a_ndpi, a_tshark};
    bool have[R_COUNT] = {true, true, true, have_ndpi, have_tshark};
    for (unsigned i = 0; i < runs && ok; i++) {
        /* alternate: each run starts with another reader */
        for (int j = 0; j < R_COUNT && ok; j++) {
            int r = (int)((i + (unsigned)j) % R_COUNT);
            long k = 0;
            if (!have[r])
                continue;
            ok = r == R_BARE ? bare_loop(mix, &t[r][i]) : run_child(argvs[r], &t[r][i], &k);
            if (k > rss[r])
                rss[r] = k;
        }
    }
    double load_end[3] = {0};
    getloadavg(load_end, 3);
    if (ok) {
        static const char *const names[R_COUNT] = {
            "bare pcap_next_ex loop", "stripwatch -r FILE -q, 1 worker",
            "stripwatch -r FILE -q, 2 workers", "ndpiReader -q -i FILE",
            "tshark -Y smtp, SMTP fields"};
        double med[R_COUNT] = {0};
        printf("  medians of %u alternating runs (load average %.2f at the start, %.2f at the "
               "end):\n",
               runs, load[0], load_end[0]);
        for (int r = 0; r < R_COUNT; r++) {
            if (!have[r])
                continue;
            med[r] = median(t[r], runs);
            printf("  %-34s %8.3f s %10.0f packets/s %9.0f sessions/s", names[r], med[r],
                   (double)m.packets / med[r], (double)n_sess / med[r]);
            if (rss[r])
                printf("  peak RSS %6.1f MiB", (double)rss[r] / 1024);
            printf("\n");
        }
        printf("  stripwatch, 1 worker: %.2fx the bare loop's speed (target >= 0.5)",
               med[R_BARE] / med[R_SW1]);
        if (have_ndpi)
            printf(", %.2fx ndpiReader's (target >= 3)", med[R_NDPI] / med[R_SW1]);
        if (have_tshark)
            printf(", %.1fx tshark's (target >= 100)", med[R_TSHARK] / med[R_SW1]);
        printf("; 2 workers: %.2fx the bare loop's\n", med[R_BARE] / med[R_SW2]);
        fflush(stdout);
    }
    for (int w = 0; w < 2; w++) {
        unlink(sess[w]);
        unlink(al[w]);
    }
    unlink(mix);
    set_free(&s);
    return ok && same;
}
