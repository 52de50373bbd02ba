/* SPDX-License-Identifier: Apache-2.0 */
/* policy_cli.c: `stripwatch policy DOMAIN`, the operator's MTA-STS check.
 * RFC 8461 §3.1 (TXT), §3.2 (policy), §3.3 (fetch), §7 (policy host address);
 * stricter than common validators: no redirects, first duplicate key wins,
 * wildcards one label deep (the same parser as the sensor). */
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "policy/dane.h"
#include "policy/dns.h"
#include "policy/fetch.h"
#include "policy/policy.h"
#include "policy/policy_check.h"

#define CLI_DNS_TIMEOUT_MS 10000

struct cli {
    const char *domain_arg;
    char domain[256];
    const char *dns_server, *ca_file, *trust_anchor;
    unsigned port;
    bool allow_private, json, no_dane;
    FILE *out; /* --json: the lines, turned into the object at the end */
    char *out_buf;
    size_t out_len;
    json_t *tlsa; /* --json: the TLSA findings per MX host */
    struct pdns *dns;
    struct pfetch *fetch;
    int fails;
    /* results, copied out of the callbacks */
    bool dns_done, fetch_done;
    struct pdns_result dres;
    char **txt;
    size_t *txt_len, n_txt;
    struct pfetch_result fres;
    char *body;
};

static FILE *cli_stream;

FILE *policy_cli_stream(void)
{
    return cli_stream ? cli_stream : stdout;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: stripwatch policy DOMAIN [--dns-server ADDR[@PORT]] [--ca-file FILE]\n"
               "                         [--https-port N] [--allow-private-policy-hosts]\n"
               "                         [--trust-anchor FILE] [--no-dane] [--json]\n"
               "Checks the MTA-STS policy DOMAIN publishes (RFC 8461), that its MX hosts\n"
               "match the policy's mx patterns, its TLS-RPT record (RFC 8460) and the TLSA\n"
               "records of its MX hosts (DANE, RFC 7672, validated with --trust-anchor,\n"
               "default " DANE_DEFAULT_TA "; the resolver must pass DNSSEC data;\n"
               "--no-dane skips them): one line per finding, or with --json\n"
               "one JSON object. Exit 0 for a fully valid setup (a valid policy covering\n"
               "every MX, no invalid TLS-RPT record, no failed TLSA check), 1 when not, 2 on\n"
               "a usage error.\n");
}

__attribute__((format(printf, 4, 5))) static void check(struct cli *c, bool ok, const char *sec,
                                                        const char *fmt, ...)
{
    char what[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    fprintf(policy_cli_stream(), "%s %s %s\n", ok ? "PASS" : "FAIL", sec, what);
    if (!ok)
        c->fails++;
}

/* Prints bytes from the network: printable ASCII as is, the rest escaped. */
static void print_escaped(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            fprintf(policy_cli_stream(), "\\%c", ch);
        else if (ch >= 0x20 && ch < 0x7f)
            fputc(ch, policy_cli_stream());
        else
            fprintf(policy_cli_stream(), "\\x%02x", ch);
    }
}

/* Keeps what the printing needs of a DNS result after its callback: the
 * scalars, the addresses and the error text; pointers into the resolver's
 * answer are cleared (on_txt copies the TXT records itself). */
static void keep_dns(struct cli *c, const struct pdns_result *r)
{
    static char errbuf[128];
    c->dns_done = true;
    c->dres = *r;
    c->dres.txt = NULL;
    c->dres.txt_len = NULL;
    c->dres.canonname = NULL;
    c->dres.errstr = NULL;
    if (r->errstr) {
        snprintf(errbuf, sizeof(errbuf), "%s", r->errstr);
        c->dres.errstr = errbuf;
    }
}

static void on_txt(void *arg, const struct pdns_result *r)
{
    struct cli *c = arg;
    keep_dns(c, r);
    c->n_txt = 0;
    c->txt = calloc(r->n_txt ? r->n_txt : 1, sizeof(*c->txt));
    c->txt_len = calloc(r->n_txt ? r->n_txt : 1, sizeof(*c->txt_len));
    for (size_t i = 0; c->txt && c->txt_len && i < r->n_txt; i++) {
        c->txt[i] = malloc(r->txt_len[i] + 1);
        if (!c->txt[i])
            break;
        memcpy(c->txt[i], r->txt[i], r->txt_len[i] + 1);
        c->txt_len[i] = r->txt_len[i];
        c->n_txt++;
    }
}

static void on_addr(void *arg, const struct pdns_result *r)
{
    keep_dns(arg, r);
}

static void on_fetch(void *arg, const struct pfetch_result *r)
{
    struct cli *c = arg;
    c->fetch_done = true;
    c->fres = *r;
    c->fres.body = NULL;
    if (r->body) {
        c->body = malloc(r->body_len + 1);
        if (c->body) {
            memcpy(c->body, r->body, r->body_len);
            c->body[r->body_len] = 0;
            c->fres.body = c->body;
        }
    }
}

/* Validators differ on repeated fields; say which value counts (§3.2: the
 * first, as the sensor's parser does). */
static void note_repeats(const char *body, size_t len)
{
    static const char *const keys[] = {"version", "mode", "max_age"};
    int first[3] = {0, 0, 0};
    const char *s = body, *end = body + len;
    for (int line = 1; s < end; line++) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
        for (int k = 0; k < 3; k++) {
            size_t kl = strlen(keys[k]);
            if (n > kl && !memcmp(s, keys[k], kl) && s[kl] == ':') {
                if (first[k])
                    fprintf(policy_cli_stream(),
                            "NOTE §3.2 line %d: repeated %s ignored (the first, on line %d, "
                            "wins)\n",
                            line, keys[k], first[k]);
                else
                    first[k] = line;
            }
        }
        s += n + (nl ? 1 : 0);
    }
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Drives DNS and HTTPS until *flag is set or timeout_ms passed. */
static bool wait_for(struct cli *c, const bool *flag, long timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    int fd = pdns_fd(c->dns);
    while (!*flag) {
        int64_t left = end - mono_ms();
        if (left <= 0)
            return false;
        pfetch_wait(c->fetch, &fd, 1, left > 200 ? 200 : (int)left);
        pdns_process(c->dns);
        pfetch_perform(c->fetch);
    }
    return true;
}

static int parse_args(struct cli *c, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        const char *eq = strchr(a, '=');
        char name[64];
        if (!strncmp(a, "--", 2) && eq && (size_t)(eq - a) < sizeof(name)) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = 0;
            v = eq + 1;
            a = name;
        }
        bool takes = !strcmp(a, "--dns-server") || !strcmp(a, "--ca-file") ||
                     !strcmp(a, "--https-port") || !strcmp(a, "--trust-anchor");
        if (takes && !v) {
            if (i + 1 >= argc) {
                fprintf(stderr, "stripwatch policy: %s: missing value\n", a);
                return 2;
            }
            v = argv[++i];
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return -1;
        } else if (!strcmp(a, "--dns-server")) {
            char why[128];
            if (!pdns_server_valid(v, why, sizeof(why))) {
                fprintf(stderr, "stripwatch policy: --dns-server \"%s\": %s\n", v, why);
                return 2;
            }
            c->dns_server = v;
        } else if (!strcmp(a, "--ca-file")) {
            c->ca_file = v;
        } else if (!strcmp(a, "--trust-anchor")) {
            c->trust_anchor = v;
        } else if (!strcmp(a, "--json") && !v) {
            c->json = true;
        } else if (!strcmp(a, "--no-dane") && !v) {
            c->no_dane = true;
        } else if (!strcmp(a, "--https-port")) {
            char *end;
            unsigned long p = strtoul(v, &end, 10);
            if (!*v || *end || p == 0 || p > 65535) {
                fprintf(stderr, "stripwatch policy: --https-port \"%s\": not 1-65535\n", v);
                return 2;
            }
            c->port = (unsigned)p;
        } else if (!strcmp(a, "--allow-private-policy-hosts") && !v) {
            c->allow_private = true;
        } else if (a[0] == '-') {
            fprintf(stderr, "stripwatch policy: unknown option %s\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (c->domain_arg) {
            fprintf(stderr, "stripwatch policy: one DOMAIN only (got \"%s\" and \"%s\")\n",
                    c->domain_arg, a);
            return 2;
        } else {
            c->domain_arg = a;
        }
    }
    if (!c->domain_arg) {
        usage(stderr);
        return 2;
    }
    size_t n = strlen(c->domain_arg);
    if (n && c->domain_arg[n - 1] == '.')
        n--;
    char why[160] = "empty";
    if (n == 0 || n > 253) {
        fprintf(stderr, "stripwatch policy: domain \"%s\": not 1-253 characters\n", c->domain_arg);
        return 2;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = c->domain_arg[i];
        c->domain[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    c->domain[n] = 0;
    if (!mtasts_domain_is_valid(c->domain, n, why, sizeof(why))) {
        fprintf(stderr, "stripwatch policy: domain \"%s\": %s\n", c->domain_arg, why);
        return 2;
    }
    return 0;
}

static void clear_txt(struct cli *c)
{
    for (size_t i = 0; i < c->n_txt; i++)
        free(c->txt[i]);
    free(c->txt);
    free(c->txt_len);
    c->txt = NULL;
    c->txt_len = NULL;
    c->n_txt = 0;
}

/* _smtp._tls.DOMAIN TXT: none is a NOTE, one valid record a PASS. */
static void policy_cli_tlsrpt(struct cli *c)
{
    char qname[300], err[256] = "", why[256];
    snprintf(qname, sizeof(qname), "_smtp._tls.%s", c->domain);
    clear_txt(c);
    c->dns_done = false;
    memset(&c->dres, 0, sizeof(c->dres));
    if (!pdns_query_txt(c->dns, qname, on_txt, c, err, sizeof(err)) ||
        !wait_for(c, &c->dns_done, CLI_DNS_TIMEOUT_MS)) {
        check(c, false, "TLSRPT§3", "TXT lookup %s: %s", qname, err[0] ? err : "timed out");
        return;
    }
    if (c->dres.err || (c->dres.rcode != 0 && c->dres.rcode != 3)) {
        check(c, false, "TLSRPT§3", "TXT lookup %s: %s", qname,
              policy_cli_dns_why(&c->dres, why, sizeof(why)));
        return;
    }
    size_t n_rpt = 0, at = 0;
    for (size_t i = 0; i < c->n_txt; i++) {
        fprintf(policy_cli_stream(), "TXT %s: \"", qname);
        print_escaped(c->txt[i], c->txt_len[i]);
        bool rpt = c->txt_len[i] >= 10 && strncmp(c->txt[i], "v=TLSRPTv1", 10) == 0;
        fprintf(policy_cli_stream(), "\"%s\n", rpt ? "" : " (not TLSRPTv1: discarded)");
        if (rpt) {
            n_rpt++;
            at = i;
        }
    }
    if (n_rpt == 0) {
        fprintf(policy_cli_stream(),
                "NOTE TLSRPT§3 no TLS-RPT record: failures to deliver with TLS are not reported "
                "to the domain (RFC 8460)\n");
        return;
    }
    if (n_rpt > 1) {
        check(c, false, "TLSRPT§3", "exactly one TLSRPTv1 TXT record: %zu found", n_rpt);
        return;
    }
    size_t n_rua = 0;
    if (tlsrpt_record_check(c->txt[at], c->txt_len[at], &n_rua, why, sizeof(why)))
        check(c, true, "TLSRPT§3", "TLS-RPT record syntax (%zu rua URI%s)", n_rua,
              n_rua == 1 ? "" : "s");
    else
        check(c, false, "TLSRPT§3", "TLS-RPT record syntax: %s", why);
}

/* --json: the lines written, as one object: "domain", "resolver", "findings"
 * (PASS/FAIL/NOTE/SKIP lines as {"status", "check", "text"}, the others as
 * {"status": "INFO", "text"}), "tlsa" (per MX host), "result", "exit". */
static void print_json(struct cli *c, int code)
{
    json_t *j = json_object(), *f = json_array();
    json_object_set_new(j, "domain", json_string(c->domain));
    char *s = c->out_buf ? c->out_buf : "";
    while (*s) {
        char *nl = strchr(s, '\n');
        if (nl)
            *nl = '\0';
        const char *st[] = {"PASS ", "FAIL ", "NOTE ", "SKIP "};
        int k = 0;
        while (k < 4 && strncmp(s, st[k], 5) != 0)
            k++;
        if (k < 4 && strchr(s + 5, ' ')) {
            char *sp = strchr(s + 5, ' ');
            json_array_append_new(f, json_pack("{s:s#,s:s#,s:s}", "status", s, (size_t)4, "check",
                                               s + 5, (size_t)(sp - s - 5), "text", sp + 1));
        } else if (!strncmp(s, "result: ", 8)) {
            json_object_set_new(j, "result", json_string(s + 8));
        } else if (!strncmp(s, "domain: ", 8)) {
            /* the object's "domain" */
        } else if (!strncmp(s, "resolver: ", 10)) {
            json_object_set_new(j, "resolver", json_string(s + 10));
        } else if (*s) {
            const char *t = s;
            while (*t == ' ')
                t++;
            json_array_append_new(f, json_pack("{s:s,s:s}", "status", "INFO", "text", t));
        }
        if (!nl)
            break;
        s = nl + 1;
    }
    json_object_set_new(j, "findings", f);
    json_object_set(j, "tlsa", c->tlsa ? c->tlsa : json_array());
    json_object_set_new(j, "exit", json_integer(code));
    char *out = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    if (out)
        printf("%s\n", out);
    free(out);
    json_decref(j);
}

static int finish(struct cli *c, int code)
{
    if (c->json && c->out) {
        fclose(c->out);
        c->out = NULL;
        cli_stream = NULL;
        if (code != 2)
            print_json(c, code);
        free(c->out_buf);
        c->out_buf = NULL;
    }
    json_decref(c->tlsa);
    for (size_t i = 0; i < c->n_txt; i++)
        free(c->txt[i]);
    free(c->txt);
    free(c->txt_len);
    free(c->body);
    pfetch_free(c->fetch);
    pdns_free(c->dns);
    return code;
}

static int mx_cmp(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    long px = strtol(x, NULL, 10), py = strtol(y, NULL, 10);
    if (px != py)
        return px < py ? -1 : 1;
    return strcmp(x, y);
}

/* The domain's MX records (into c->txt), listed, and with a policy p
 * checked against its mx patterns (*uncovered: hosts it does not cover).
 * False when the lookup failed (a FAIL line). */
static bool mx_lookup(struct cli *c, const struct mtasts_policy *p, size_t *uncovered)
{
    char err[512] = "", dwhy[512];
    FILE *o = policy_cli_stream();
    clear_txt(c);
    c->dns_done = false;
    memset(&c->dres, 0, sizeof(c->dres));
    if (!pdns_query_mx(c->dns, c->domain, on_txt, c, err, sizeof(err)) ||
        !wait_for(c, &c->dns_done, CLI_DNS_TIMEOUT_MS)) {
        check(c, false, "§4.1", "MX lookup %s: %s", c->domain, err[0] ? err : "timed out");
        return false;
    }
    if (c->dres.err || (c->dres.rcode != 0 && c->dres.rcode != 3)) {
        check(c, false, "§4.1", "MX lookup %s: %s", c->domain,
              policy_cli_dns_why(&c->dres, dwhy, sizeof(dwhy)));
        return false;
    }
    /* by preference, then name (answers come in any order) */
    if (c->n_txt)
        qsort(c->txt, c->n_txt, sizeof(*c->txt), mx_cmp);
    for (size_t i = 0; i < c->n_txt; i++)
        c->txt_len[i] = strlen(c->txt[i]);
    if (p) {
        *uncovered =
            policy_cli_mx_check(c->domain, p, (const char *const *)c->txt, c->n_txt, &c->fails);
    } else if (c->n_txt == 0) {
        fprintf(o, "MX %s: none\n", c->domain);
    } else {
        for (size_t i = 0; i < c->n_txt; i++)
            fprintf(o, "MX %s: %s\n", c->domain, c->txt[i]);
    }
    return true;
}

/* RFC 7672: the TLSA records of the MX hosts in c->txt. */
static void dane_checks(struct cli *c)
{
    char err[512] = "";
    if (c->no_dane) {
        fprintf(policy_cli_stream(), "SKIP DANE§2.2 TLSA records of the MX hosts not checked "
                                     "(--no-dane)\n");
        return;
    }
    if (!policy_cli_dane_check(c->domain, (const char *const *)c->txt, c->n_txt, c->dns_server,
                               c->trust_anchor, &c->fails, c->tlsa, err, sizeof(err)))
        check(c, false, "DANE§2.2", "TLSA lookups: %s", err);
}

/* No valid policy: the MX hosts' TLSA records and the TLS-RPT record are
 * still reported, then the result. */
static int fail_result(struct cli *c, const char *why)
{
    if (mx_lookup(c, NULL, NULL))
        dane_checks(c);
    policy_cli_tlsrpt(c);
    fprintf(policy_cli_stream(), "result: no valid policy published (%s)\n", why);
    return finish(c, 1);
}

int policy_cli_main(int argc, char **argv)
{
    struct cli c;
    memset(&c, 0, sizeof(c));
    c.port = 443;
    int r = parse_args(&c, argc, argv);
    if (r)
        return r < 0 ? 0 : r;
    char err[512];
    if (!(c.dns = pdns_new(c.dns_server, err, sizeof(err)))) {
        fprintf(stderr, "stripwatch policy: %s\n", err);
        return finish(&c, 2);
    }
    if (!(c.fetch = pfetch_new(err, sizeof(err)))) {
        fprintf(stderr, "stripwatch policy: %s\n", err);
        return finish(&c, 2);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (c.json) {
        c.out = open_memstream(&c.out_buf, &c.out_len);
        c.tlsa = json_array();
        if (!c.out || !c.tlsa) {
            fprintf(stderr, "stripwatch policy: out of memory\n");
            return finish(&c, 2);
        }
        cli_stream = c.out;
    }
    fprintf(policy_cli_stream(), "domain: %s\n", c.domain);
    fprintf(policy_cli_stream(), "resolver: %s\n",
            c.dns_server ? c.dns_server : "/etc/resolv.conf");

    /* §3.1: TXT discovery */
    char qname[300];
    snprintf(qname, sizeof(qname), "_mta-sts.%s", c.domain);
    if (!pdns_query_txt(c.dns, qname, on_txt, &c, err, sizeof(err))) {
        check(&c, false, "§3.1", "TXT lookup %s: %s", qname, err);
        return fail_result(&c, "DNS failure");
    }
    if (!wait_for(&c, &c.dns_done, CLI_DNS_TIMEOUT_MS)) {
        check(&c, false, "§3.1", "TXT lookup %s: timed out", qname);
        return fail_result(&c, "DNS failure");
    }
    if (c.dres.err || (c.dres.rcode != 0 && c.dres.rcode != 3)) {
        if (c.dres.err)
            check(&c, false, "§3.1", "TXT lookup %s: %s", qname, c.dres.errstr);
        else
            check(&c, false, "§3.1", "TXT lookup %s: rcode %d", qname, c.dres.rcode);
        return fail_result(&c, "DNS failure");
    }
    if (c.n_txt == 0)
        fprintf(policy_cli_stream(), "TXT %s: none%s\n", qname,
                c.dres.nxdomain ? " (NXDOMAIN)" : "");
    size_t n_sts = 0, n_ok = 0;
    char id[33] = "", bad[200] = "";
    for (size_t i = 0; i < c.n_txt; i++) {
        fprintf(policy_cli_stream(), "TXT %s: \"", qname);
        print_escaped(c.txt[i], c.txt_len[i]);
        char tid[33];
        struct mtasts_error te;
        int pr = mtasts_txt_parse(c.txt[i], c.txt_len[i], tid, &te);
        fprintf(policy_cli_stream(), "\"%s\n", pr == SW_AGAIN ? " (not STSv1: discarded)" : "");
        if (pr == SW_AGAIN)
            continue;
        n_sts++;
        if (pr == SW_OK) {
            n_ok++;
            memcpy(id, tid, sizeof(id));
        } else {
            snprintf(bad, sizeof(bad), "%s", te.reason);
        }
    }
    if (n_sts != 1) {
        if (n_sts == 0)
            check(&c, false, "§3.1", "exactly one STSv1 TXT record: none found");
        else
            check(&c, false, "§3.1", "exactly one STSv1 TXT record: %zu found", n_sts);
        return fail_result(&c, "no usable TXT record");
    }
    check(&c, true, "§3.1", "exactly one STSv1 TXT record");
    if (!n_ok) {
        check(&c, false, "§3.1", "TXT record syntax: %s", bad);
        return fail_result(&c, "invalid TXT record");
    }
    check(&c, true, "§3.1", "TXT record syntax (id %s)", id);

    /* §7: the policy host, resolved and checked by us, then pinned */
    char host[300];
    snprintf(host, sizeof(host), "mta-sts.%s", c.domain);
    c.dns_done = false;
    memset(&c.dres, 0, sizeof(c.dres));
    if (!pdns_query_addr(c.dns, host, on_addr, &c, err, sizeof(err)) ||
        !wait_for(&c, &c.dns_done, CLI_DNS_TIMEOUT_MS)) {
        check(&c, false, "§3.3", "policy host %s resolves: %s", host, err[0] ? err : "timed out");
        return fail_result(&c, "policy host does not resolve");
    }
    if (c.dres.err || c.dres.n_addr == 0) {
        check(&c, false, "§3.3", "policy host %s resolves: %s", host,
              c.dres.err ? c.dres.errstr : "no A/AAAA record");
        return fail_result(&c, "policy host does not resolve");
    }
    for (size_t i = 0; i < c.dres.n_addr; i++)
        fprintf(policy_cli_stream(), "address: %s -> %s\n", host, c.dres.addr[i]);
    /* candidates, in order: the public addresses, or with the flag all */
    size_t cand[PDNS_MAX_ADDR], n_cand = 0;
    const char *why = NULL, *first_why = NULL;
    for (size_t i = 0; i < c.dres.n_addr; i++) {
        if (!pfetch_addr_is_private(c.dres.addr[i], &why) || c.allow_private)
            cand[n_cand++] = i;
        if (why && !first_why)
            first_why = why;
        why = NULL;
    }
    if (!first_why) {
        check(&c, true, "§7", "policy host address is public (%s)", c.dres.addr[cand[0]]);
    } else if (c.allow_private) {
        fprintf(policy_cli_stream(),
                "SKIP §7 policy host address is public: %s is a %s address (allowed by "
                "--allow-private-policy-hosts)\n",
                c.dres.addr[0], first_why);
    } else if (n_cand) {
        fprintf(policy_cli_stream(),
                "NOTE §7 non-public addresses of %s skipped (%s is a %s address)\n", host,
                c.dres.addr[0], first_why);
        check(&c, true, "§7", "policy host address is public (%s)", c.dres.addr[cand[0]]);
    } else {
        check(&c, false, "§7",
              "policy host address is public: %s is a %s address (use "
              "--allow-private-policy-hosts)",
              c.dres.addr[0], first_why);
        return fail_result(&c, "policy host address refused");
    }

    /* §3.3: the fetch, pinned to each candidate in turn while connecting fails */
    struct pfetch_opts o = {
        .ca_file = c.ca_file,
        .port = (uint16_t)c.port,
        .connect_timeout_ms = 5000,
        .total_timeout_ms = 15000,
        .low_speed_bytes = 64,
        .low_speed_secs = 10,
    };
    for (size_t k = 0; k < n_cand; k++) {
        size_t i = cand[k];
        c.fetch_done = false;
        if (!pfetch_start(c.fetch, c.domain, c.dres.addr[i], c.dres.family[i], &o, on_fetch, &c,
                          err, sizeof(err))) {
            check(&c, false, "§3.3", "HTTPS fetch: %s", err);
            return fail_result(&c, "fetch failed");
        }
        wait_for(&c, &c.fetch_done, 20000);
        if (!c.fetch_done) {
            check(&c, false, "§3.3", "HTTPS fetch: timed out");
            return fail_result(&c, "fetch failed");
        }
        if (c.fres.outcome != PFETCH_CONNECT || k + 1 == n_cand)
            break;
        fprintf(policy_cli_stream(), "connect: %s: %s; trying the next address\n", c.fres.pinned,
                c.fres.curl_error);
    }
    const struct pfetch_result *f = &c.fres;
    fprintf(policy_cli_stream(), "https:\n");
    fprintf(policy_cli_stream(), "  url: %s\n", f->url);
    fprintf(policy_cli_stream(), "  pinned address: %s\n", f->pinned);
    fprintf(policy_cli_stream(), "  tls: %s\n",
            f->tls_version[0] ? f->tls_version : "(no handshake)");
    if (f->http_code)
        fprintf(policy_cli_stream(), "  status: %ld\n", f->http_code);
    else
        fprintf(policy_cli_stream(), "  status: (no response)\n");
    fprintf(policy_cli_stream(), "  content-type: %s\n",
            f->content_type[0] ? f->content_type : "(none)");
    fprintf(policy_cli_stream(), "  bytes: %zu\n", f->bytes);
    if (f->curl_error[0])
        fprintf(policy_cli_stream(), "  error: %s\n", f->curl_error);

    if (f->outcome == PFETCH_TLS_ERROR) {
        check(&c, false, "§3.3", "HTTPS with a certificate valid for %s: %s", host, f->curl_error);
        return fail_result(&c, "TLS failure");
    }
    if (f->outcome == PFETCH_CONNECT || f->outcome == PFETCH_TIMEOUT ||
        f->outcome == PFETCH_ERROR) {
        check(&c, false, "§3.3", "HTTPS transfer: %s", f->detail);
        return fail_result(&c, "fetch failed");
    }
    check(&c, true, "§3.3", "HTTPS (TLS >= 1.2) with a certificate valid for %s", host);
    if (f->outcome == PFETCH_TOO_BIG) {
        check(&c, false, "§3.3", "body at most %d bytes: %s", MTASTS_MAX_BODY, f->detail);
        return fail_result(&c, "policy too big");
    }
    if (f->outcome == PFETCH_REDIRECT || f->outcome == PFETCH_HTTP_ERROR) {
        check(&c, false, "§3.3", "HTTP status 200 without redirect: %s", f->detail);
        return fail_result(&c, "no policy served");
    }
    check(&c, true, "§3.3", "HTTP status 200 without redirect");
    if (f->outcome == PFETCH_BAD_TYPE) {
        check(&c, false, "§3.3", "media type text/plain: %s", f->detail);
        return fail_result(&c, "wrong media type");
    }
    check(&c, true, "§3.3", "media type text/plain");
    check(&c, true, "§3.3", "body at most %d bytes", MTASTS_MAX_BODY);

    /* §3.2: the policy */
    struct mtasts_policy p;
    struct mtasts_error pe;
    const char *body = f->body ? f->body : "";
    if (mtasts_policy_parse(body, f->body_len, &p, &pe) != SW_OK) {
        char buf[256];
        fprintf(policy_cli_stream(), "body:\n");
        const char *s = body;
        for (int line = 0; line < 50 && s < body + f->body_len; line++) {
            const char *nl = memchr(s, '\n', (size_t)(body + f->body_len - s));
            size_t len = nl ? (size_t)(nl - s) : (size_t)(body + f->body_len - s);
            fprintf(policy_cli_stream(), "  %3d| ", line + 1);
            print_escaped(s, len);
            fputc('\n', policy_cli_stream());
            s += len + (nl ? 1 : 0);
        }
        check(&c, false, "§3.2", "policy syntax: %s", mtasts_error_format(&pe, buf, sizeof(buf)));
        return fail_result(&c, "invalid policy");
    }
    note_repeats(body, f->body_len);
    fprintf(policy_cli_stream(), "policy:\n");
    fprintf(policy_cli_stream(), "  version: STSv1\n");
    fprintf(policy_cli_stream(), "  mode: %s\n", mtasts_mode_str(p.mode));
    for (size_t i = 0; i < p.n_mx; i++)
        fprintf(policy_cli_stream(), "  mx: %s\n", p.mx[i]);
    fprintf(policy_cli_stream(), "  max_age: %u\n", p.max_age);
    check(&c, true, "§3.2", "policy syntax");
    if (p.max_age < 86400)
        fprintf(policy_cli_stream(),
                "NOTE §3.2 max_age %u is under a day; weeks or more are recommended\n", p.max_age);
    /* §4.1: every MX host of the domain must match the policy's mx
     * patterns, or senders that enforce it refuse to deliver there */
    size_t uncovered = 0;
    int fails_before = c.fails;
    bool mx_ok = mx_lookup(&c, &p, &uncovered);
    bool mx_bad = c.fails > fails_before;
    /* RFC 7672: the MX hosts' TLSA records */
    fails_before = c.fails;
    if (mx_ok)
        dane_checks(&c);
    bool dane_bad = c.fails > fails_before;
    /* RFC 8460 §3: the TLS-RPT record (optional; invalid is a failure) */
    fails_before = c.fails;
    policy_cli_tlsrpt(&c);
    bool rpt_bad = c.fails > fails_before;
    if (!c.fails)
        fprintf(policy_cli_stream(), "result: valid policy published (mode %s, id %s)\n",
                mtasts_mode_str(p.mode), id);
    else
        fprintf(policy_cli_stream(), "result: policy published (mode %s, id %s) but %s\n",
                mtasts_mode_str(p.mode), id,
                uncovered  ? "MX hosts are not covered by its mx patterns"
                : mx_bad   ? "the MX records could not be checked"
                : dane_bad ? "the TLSA records of its MX hosts fail DANE checks"
                : rpt_bad  ? "its TLS-RPT record is invalid"
                           : "a check failed");
    mtasts_policy_clear(&p);
    return finish(&c, c.fails ? 1 : 0);
}
