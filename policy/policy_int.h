/* SPDX-License-Identifier: Apache-2.0 */
/* policy_int.h: the policy engine's own records, shared by policy/policy.c
 * (lookups, steps, cache) and policy/policy_file.c (the --policy-file
 * snapshot loaded and saved). Not part of the module's contract: only these
 * two files include it. Everything here runs on the engine's owner thread. */
#ifndef SW_POLICY_INT_H
#define SW_POLICY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/dns.h"
#include "policy/policy.h"

enum dom_phase {
    PH_IDLE = 0,
    PH_START, /* queued: started at the next policy_engine_run() */
    PH_DNS_TXT,
    PH_LOCK_WAIT, /* another sensor holds the fetch lock: poll Redis */
    PH_QUEUED,    /* waiting for a fetch slot */
    PH_DNS_ADDR,  /* resolving mta-sts.<domain> (holds a fetch slot) */
    PH_FETCH,     /* HTTPS transfer (holds a fetch slot) */
    PH_DNS_WAIT,  /* waiting for a DNS slot (dns_max_in_flight) */
};

/* The checked addresses of a policy host, tried in order while connecting
 * fails (allocated for the fetch only). */
struct addr_list {
    size_t n, next;
    char addr[PDNS_MAX_ADDR][46];
    int family[PDNS_MAX_ADDR];
};

struct waiter {
    policy_cb cb;
    void *arg;
    struct waiter *next;
};

struct dom {
    struct policy_engine *e;
    struct policy_entry *entry; /* valid policy in force, or NULL */
    int64_t refresh_at;         /* wall seconds: next TXT re-check */
    /* negative answer ("no policy" or a failure) and until when it holds */
    enum policy_status neg_status;
    char *neg_detail; /* NULL, or why (allocated only when negative) */
    int64_t neg_until;
    char failed_id[33];
    int64_t failed_until;
    bool expired_warned; /* the expired entry was reported on the log */
    unsigned file_gen;   /* the policy file load that installed entry (source file) */
    /* the lookup in flight */
    enum dom_phase phase;
    int firing;   /* callbacks running: not evictable */
    bool refresh; /* started by a hit on a cached policy */
    bool have_lock;
    char txt_id[33];
    struct pdns_req *dns;
    struct pfetch_req *fetch;
    struct addr_list *addrs;
    int64_t deadline_ms; /* DNS step deadline or end of the lock wait */
    int64_t next_poll_ms;
    struct waiter *waiters, **wtail;
    size_t n_waiters;
    bool positive;               /* held by the engine's positive LRU (else the negative one) */
    bool pending;                /* counted in the engine's n_pending */
    struct dom *q_prev, *q_next; /* on one of the engine's queues */
    int *q_len;                  /* which queue's length to adjust */
    struct dom **q_head, **q_tail;
    char name[]; /* the domain, sized to fit */
};

struct policy_engine {
    struct policy_cfg cfg;
    struct policy_stats stats;
    struct lru *pos; /* domains with a policy (loaded or fetched) */
    struct lru *neg; /* the others: negative answers and lookups under way */
    size_t n_pending;
    unsigned dns_timeouts_in_row;
    int64_t dns_down_until_ms; /* 0: up */
    int64_t dns_backoff_s;
    struct pdns *dns;
    struct pfetch *fetch;
    struct rcache *rc;
    struct dane *dane; /* NULL unless cfg.dane */
    struct dom *redis_h, *redis_t, *wait_h, *wait_t, *fetch_h, *fetch_t, *dns_h, *dns_t;
    struct dom *dnsq_h, *dnsq_t;
    int redis_n, wait_n, fetch_n, dns_n, dnsq_n;
    unsigned fetch_slots; /* in PH_DNS_ADDR or PH_FETCH */
    double tokens;        /* fetches-per-second bucket */
    int64_t tokens_ms;
    uint64_t fired;
    char ca_file[4096];
    char dns_server[128];
    char redis_url[1024];
    char load_err[512]; /* the policy file's own error, when it cannot load */
    unsigned file_gen;  /* policy file loads so far (dom.file_gen) */
    bool judge_capture; /* expiry judged at judge_t (capture time), not the wall clock */
    int64_t judge_t;
};

/* One line to the engine's log (policy_set_log), without the prefix. */
void policy_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The record of name (marked most recently used when touch), or NULL. */
struct dom *policy_dom_find(struct policy_engine *e, const char *name, bool touch);
/* Inserts a record for name into the positive (file policies) or negative
 * (lookups) map. NULL when no room could be made or memory ran out. */
struct dom *policy_dom_insert(struct policy_engine *e, const char *name, bool positive);
/* A new entry for text, parsed again (NULL when it does not parse, with
 * the reason in *perr when perr is set, or when memory ran out). */
struct policy_entry *policy_entry_new(const char *domain, const char *id, const char *text,
                                      size_t len, int64_t fetched_at, enum policy_source src,
                                      struct mtasts_error *perr);
/* pe becomes the policy in force for d (d takes it over): negative answer
 * and failure suppression cleared, next TXT re-check scheduled. */
void policy_install(struct policy_engine *e, struct dom *d, struct policy_entry *pe);
/* d's policy is forgotten: an idle record is removed (freed: d is no longer
 * valid), one with a lookup in flight loses its entry and keeps the lookup,
 * which installs what it finds. Either way the domain is then answered as
 * if never looked up. Not while d's callbacks run. */
void policy_dom_forget(struct policy_engine *e, struct dom *d);

#endif
