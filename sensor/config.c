/* SPDX-License-Identifier: Apache-2.0 */
/* config.c: the configuration file (see config.h): libinih parses the INI
 * syntax through our line reader (which numbers the lines, refuses overlong
 * ones and checks section names); each key goes through the command line's
 * option table (cli.c). No RFC: INI as libinih reads it. */
#include "sensor/config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/tuning.h"

enum { RK_ENABLED = 0, RK_SEVERITY, RK_RATE, RK_COUNT };
static const char *const rule_keys[RK_COUNT] = {"enabled", "severity", "rate-limit"};

struct cfg {
    const char *path;
    FILE *f;
    struct sensor_opts *o;
    char *buf;
    size_t cap;
    int line;     /* lines read so far: the one being handled */
    int err_line; /* first error found here (0: none) */
    char err[512];
    int read_errno;
    int seen[SENSOR_OPTS_MAX];           /* line a global key was first given on */
    int rule_seen[RULE_COUNT][RK_COUNT]; /* ... a rule key */
};

__attribute__((format(printf, 2, 3))) static int fail(struct cfg *c, const char *fmt, ...)
{
    if (!c->err_line) {
        c->err_line = c->line;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, sizeof(c->err), fmt, ap);
        va_end(ap);
    }
    return 0;
}

/* fgets-like, for ini_parse_stream: one line per call, leading blanks
 * removed (so no line continues the previous value), section names checked
 * against the rule ids. Stops (NULL) at the first error. */
static char *reader(char *str, int num, void *stream)
{
    struct cfg *c = stream;
    if (c->err_line)
        return NULL;
    errno = 0;
    ssize_t n = getline(&c->buf, &c->cap, c->f);
    if (n < 0) {
        c->read_errno = ferror(c->f) ? (errno ? errno : EIO) : 0;
        return NULL;
    }
    c->line++;
    char *p = c->buf;
    if (c->line == 1 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3; /* UTF-8 byte order mark */
    while (*p == ' ' || *p == '\t')
        p++;
    size_t len = strlen(p), content = len;
    while (content && (p[content - 1] == '\n' || p[content - 1] == '\r'))
        content--;
    if (len != (size_t)(c->buf + n - p)) {
        fail(c, "a NUL byte in the line");
        return NULL;
    }
    if (num < 4 || content > (size_t)num - 3) {
        fail(c, "line longer than %d bytes", num - 3);
        return NULL;
    }
    if (*p == '[') {
        const char *end = strchr(p, ']');
        if (end) {
            char s[128];
            snprintf(s, sizeof(s), "%.*s", (int)(end - p - 1), p + 1);
            if (rules_tuning_rule_id(s) < 0) {
                fail(c, "unknown rule \"%s\" in a section name (see alerts/RULES.md)", s);
                return NULL;
            }
        }
    }
    /* the content and one newline: a line may end in any number of CRs */
    memcpy(str, p, content);
    memcpy(str + content, "\n", 2);
    return str;
}

static int on_rule_key(struct cfg *c, int rule, const char *section, const char *name,
                       const char *value)
{
    int k = 0;
    while (k < RK_COUNT && strcmp(rule_keys[k], name) != 0)
        k++;
    if (k == RK_COUNT)
        return fail(c, "unknown key \"%s\" in [%s] (enabled, severity, rate-limit)", name, section);
    if (c->rule_seen[rule][k])
        return fail(c, "key \"%s\" given twice in [%s] (first on line %d)", name, section,
                    c->rule_seen[rule][k]);
    c->rule_seen[rule][k] = c->line;
    struct rule_tuning *rt = &c->o->tuning.rule[rule];
    char e[256];
    bool on;
    uint64_t n;
    switch (k) {
    case RK_ENABLED:
        if (!sensor_parse_bool(value, &on, e, sizeof(e)))
            return fail(c, "%s: %s", name, e);
        rt->disabled = !on;
        break;
    case RK_SEVERITY:
        if (!(rt->severity = rules_tuning_severity(value)))
            return fail(c, "%s: \"%s\": not low, medium or high", name, value);
        break;
    default:
        if (!sensor_parse_u64(value, false, 0, TUNING_RATE_MAX, &n, e, sizeof(e)))
            return fail(c, "%s: %s", name, e);
        rt->rate_limit = (int)n;
        break;
    }
    return 1;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct cfg *c = user;
    if (c->err_line)
        return 0;
    if (!*value)
        return fail(c, "key \"%s\": empty value", name);
    if (*section) {
        int rule = rules_tuning_rule_id(section);
        if (rule < 0) /* the reader checked it; a section after a BOM-less odd line */
            return fail(c, "unknown rule \"%s\" in a section name (see alerts/RULES.md)", section);
        return on_rule_key(c, rule, section, name, value);
    }
    unsigned flags = 0;
    int idx = sensor_opt_find(name, &flags);
    if (idx < 0)
        return fail(c, "unknown key \"%s\"", name);
    if (flags & SENSOR_OPT_CLI)
        return fail(c, "key \"%s\": only on the command line", name);
    if (c->seen[idx] && !(flags & SENSOR_OPT_REPEAT))
        return fail(c, "key \"%s\" given twice (first on line %d)", name, c->seen[idx]);
    if (!c->seen[idx])
        c->seen[idx] = c->line;
    char e[512];
    if (!sensor_opt_apply(c->o, idx, value, true, e, sizeof(e)))
        return fail(c, "%s: %s", name, e);
    return 1;
}

bool config_load(const char *path, struct sensor_opts *o, char *err, size_t errlen)
{
    struct cfg *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "%s: out of memory", path);
        return false;
    }
    c->path = path;
    c->o = o;
    c->f = fopen(path, "re");
    if (!c->f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        free(c);
        return false;
    }
    int r = ini_parse_stream(reader, c, handler, c);
    bool ok = false;
    if (c->read_errno)
        snprintf(err, errlen, "%s: %s", path, strerror(c->read_errno));
    else if (c->err_line && (r <= 0 || c->err_line <= r))
        snprintf(err, errlen, "%s:%d: %s", path, c->err_line, c->err);
    else if (r > 0)
        snprintf(err, errlen, "%s:%d: syntax error (want key = value, [rule.id] or a comment)",
                 path, r);
    else if (r < 0)
        snprintf(err, errlen, "%s: out of memory", path);
    else
        ok = true;
    fclose(c->f);
    free(c->buf);
    free(c);
    return ok;
}
