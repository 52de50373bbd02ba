/* SPDX-License-Identifier: Apache-2.0 */
/* summary.c: the human summary of a run: packets, sessions, the share with
 * TLS, alerts by rule and severity, the first alerts one per line (contract
 * in summary.h). No RFC. */
#include "sensor/summary.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sensor/log.h"

struct rule_count {
    char rule[48];
    uint64_t n[4]; /* by event.severity 1..3 (0: anything else) */
};

struct summary {
    pthread_mutex_t mu;
    uint64_t alerts;
    struct rule_count rules[SUMMARY_RULES];
    size_t n_rules;
    uint64_t other_rules; /* alerts of rules past SUMMARY_RULES */
    char list[SUMMARY_LIST][320];
    size_t n_list;
};

struct summary *summary_new(void)
{
    struct summary *s = calloc(1, sizeof(*s));
    if (s)
        pthread_mutex_init(&s->mu, NULL);
    return s;
}

void summary_free(struct summary *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static const char *jstr(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(json_object_get(o, a), b);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* "ADDR" or "ADDR:PORT" ("[ADDR]:PORT" for IPv6); "?" when absent. */
static void endpoint(json_t *o, const char *key, bool port, char *out, size_t len)
{
    const char *ip = jstr(o, key, "ip");
    json_t *p = json_object_get(json_object_get(o, key), "port");
    if (!ip) {
        snprintf(out, len, "?");
        return;
    }
    bool v6 = strchr(ip, ':') != NULL;
    if (port && json_is_integer(p))
        snprintf(out, len, v6 ? "[%s]:%lld" : "%s:%lld", ip, (long long)json_integer_value(p));
    else
        snprintf(out, len, "%s", ip);
}

/* The first recipient domain that got a 2xx, else the policy's domain. */
static const char *recipient_domain(json_t *o)
{
    json_t *txs = json_object_get(json_object_get(o, "smtp"), "transactions");
    size_t i, k;
    json_t *tx, *rc;
    json_array_foreach(txs, i, tx)
    {
        json_array_foreach(json_object_get(tx, "rcpt"), k, rc)
        {
            json_t *d = json_object_get(rc, "domain");
            json_int_t code = json_integer_value(json_object_get(rc, "code"));
            if (json_is_string(d) && code >= 200 && code < 300)
                return json_string_value(d);
        }
    }
    const char *d = jstr(o, "mta_sts", "domain");
    return d ? d : "-";
}

void summary_alert(void *arg, const char *json, size_t len, const char *rule, int sev)
{
    struct summary *s = arg;
    if (!rule)
        rule = "?";
    pthread_mutex_lock(&s->mu);
    s->alerts++;
    size_t r = 0;
    while (r < s->n_rules && strcmp(s->rules[r].rule, rule) != 0)
        r++;
    if (r == s->n_rules && s->n_rules < SUMMARY_RULES)
        snprintf(s->rules[s->n_rules++].rule, sizeof(s->rules[0].rule), "%s", rule);
    if (r < s->n_rules)
        s->rules[r].n[sev >= 1 && sev <= 3 ? sev : 0]++;
    else
        s->other_rules++;
    /* only the listed alerts are read back from their JSON */
    json_t *o = s->n_list < SUMMARY_LIST ? json_loadb(json, len, 0, NULL) : NULL;
    if (o) {
        const char *sevname = jstr(o, "stripwatch", "severity_name");
        const char *uid = jstr(o, "stripwatch", "uid");
        char cli[64], srv[72];
        endpoint(o, "source", false, cli, sizeof(cli));
        endpoint(o, "destination", true, srv, sizeof(srv));
        snprintf(s->list[s->n_list++], sizeof(s->list[0]), "%s %s %s -> %s %s (%s)", rule,
                 sevname ? sevname : "?", cli, srv, recipient_domain(o), uid ? uid : "?");
    }
    pthread_mutex_unlock(&s->mu);
    json_decref(o);
}

struct out {
    char *buf;
    size_t len, used;
};

static void put(struct out *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->used < w->len ? w->buf + w->used : NULL,
                      w->used < w->len ? w->len - w->used : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        w->used += (size_t)n;
}

static const char *plural(uint64_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

size_t summary_format(struct summary *s, const struct summary_counts *c, char *buf, size_t len)
{
    struct out w = {buf, len, 0};
    if (len)
        buf[0] = '\0';
    pthread_mutex_lock(&s->mu);
    put(&w, "stripwatch: summary: %llu %s, %llu SMTP %s", (unsigned long long)c->packets,
        plural(c->packets, "packet", "packets"), (unsigned long long)c->sessions,
        plural(c->sessions, "session", "sessions"));
    if (c->sessions)
        put(&w, ", %llu with TLS (%llu%%)", (unsigned long long)c->sessions_tls,
            (unsigned long long)((c->sessions_tls * 100 + c->sessions / 2) / c->sessions));
    put(&w, ", %llu %s", (unsigned long long)s->alerts, plural(s->alerts, "alert", "alerts"));
    if (c->suppressed)
        put(&w, " (%llu more suppressed by the rate limit)", (unsigned long long)c->suppressed);
    put(&w, "\n");
    if (s->n_rules) {
        put(&w, "  %-28s %6s %6s %6s\n", "alerts by rule", "high", "medium", "low");
        for (size_t i = 0; i < s->n_rules; i++)
            put(&w, "  %-28s %6llu %6llu %6llu\n", s->rules[i].rule,
                (unsigned long long)s->rules[i].n[3], (unsigned long long)s->rules[i].n[2],
                (unsigned long long)s->rules[i].n[1]);
        if (s->other_rules)
            put(&w, "  %-28s %6llu\n", "other rules", (unsigned long long)s->other_rules);
        put(&w, "  %s:\n", s->alerts > s->n_list ? "first alerts" : "alerts");
        for (size_t i = 0; i < s->n_list; i++)
            put(&w, "  %s\n", s->list[i]);
        if (s->alerts > s->n_list)
            put(&w, "  ... and %llu more\n", (unsigned long long)(s->alerts - s->n_list));
    }
    pthread_mutex_unlock(&s->mu);
    return w.used;
}

void summary_print(struct summary *s, const struct summary_counts *c)
{
    char small[4096];
    size_t n = summary_format(s, c, small, sizeof(small));
    char *buf = small;
    if (n >= sizeof(small)) {
        buf = malloc(n + 1);
        if (!buf)
            return;
        summary_format(s, c, buf, n + 1);
    }
    for (char *line = buf, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            break;
        *nl = '\0';
        if (strncmp(line, "stripwatch: ", 12) == 0)
            sw_log(LOG_INFO, "%s", line + 12);
        else
            sw_log_text(LOG_INFO, line);
    }
    if (buf != small)
        free(buf);
}
