/* SPDX-License-Identifier: Apache-2.0 */
/* test_smtp_tx.c: reply slots and mail transactions (RFC 5321 4.1.4, 4.2.1,
 * RFC 2920, RFC 3030): every pipelined command takes its reply slot, a
 * multi-line reply ends at a change of code, a transaction begins only with
 * an accepted MAIL FROM and is closed at its final reply, content without a
 * visible MAIL FROM still counts, every recipient domain is kept, and fields
 * cut at their bound say so. Each conversation is replayed whole, split at
 * every byte boundary and byte by byte (conv_check). */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conv.h"
#include "decode/smtp_int.h"

static struct smtp_cfg cfg;
static struct flow_info fi;

static int setup(void **state)
{
    (void)state;
    smtp_cfg_defaults(&cfg);
    conv_flow(&fi, 25);
    return 0;
}

#define EHLO_PIPE S("250-mx\r\n250 PIPELINING\r\n")

/* Unknown, invalid and known commands pipelined in one segment each take
 * their reply slot: 500, 501, 250, 250, 354 are matched in order. */
static void test_every_command_takes_its_slot(void **state)
{
    (void)state;
    static const struct step conv[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        EHLO_PIPE,
        C("FROB\r\nMAIL\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"),
        S("500 5.5.2 unknown\r\n501 5.5.4 Syntax\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
          "354 go\r\n"),
        C("Subject: x\r\n\r\nhi\r\n.\r\n"),
        S("250 2.0.0 queued\r\n"),
        C("QUIT\r\n"),
        S("221 bye\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_int_equal(f->n_tx, 1);
    assert_int_equal(f->tx[0].mail_code, 250);
    assert_int_equal(f->tx[0].rcpt[0].code, 250);
    assert_true(f->tx[0].cleartext);
    assert_int_equal(f->tx[0].data_code, 250);
    assert_int_equal(f->tx[0].accepted, 1);
    assert_int_equal(f->end, SMTP_END_QUIT);
    assert_int_equal(f->n_anomalies, 0);
    conv_result_free(&r);
}

/* A lone "250-" line followed by a 334 line: two replies, not one; the
 * replies after it keep their commands (AUTH 235, RCPT 250). */
static void test_reply_code_change_ends_reply(void **state)
{
    (void)state;
    static const struct step conv[] = {
        S("220 mx\r\n"),           C("EHLO c\r\n"),
        S("250-mx\r\n"),           C("AUTH LOGIN\r\n"),
        S("334 VXNlcm5hbWU6\r\n"), C("dXNlcg==\r\n"),
        S("334 UGFzc3dvcmQ6\r\n"), C("cGFzcw==\r\n"),
        S("235 2.7.0 ok\r\n"),     C("MAIL FROM:<a@x.org>\r\n"),
        S("250 ok\r\n"),           C("RCPT TO:<b@y.org>\r\n"),
        S("250 ok\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_int_equal(f->ehlo_code, 250);
    assert_int_equal(f->auth_code, 235);
    assert_int_equal(f->tx[0].mail_code, 250);
    assert_int_equal(f->tx[0].rcpt[0].code, 250);
    assert_int_equal(conv_anomalies(f, ANOM_REPLY_CODE_CHANGED), 1);
    assert_string_equal(conv_anomaly_detail(f, ANOM_REPLY_CODE_CHANGED, 0),
                        "reply 250 ended by a 334 line");
    assert_int_equal(conv_anomalies(f, ANOM_REPLY_WITHOUT_COMMAND), 0);
    conv_result_free(&r);
}

/* A nested MAIL answered 503 opens nothing: the RCPT and DATA after it
 * stay with the accepted sender's transaction. */
static void test_nested_mail_refused(void **state)
{
    (void)state;
    static const struct step conv[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        EHLO_PIPE,
        C("MAIL FROM:<a@good.example>\r\nMAIL FROM:<b@evil.example>\r\n"
          "RCPT TO:<c@example.org>\r\nDATA\r\n"),
        S("250 2.1.0 Ok\r\n503 5.5.1 Error: nested MAIL command\r\n250 2.1.5 Ok\r\n354 go\r\n"),
        C("hi\r\n.\r\n"),
        S("250 queued\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_int_equal(f->n_tx, 2);
    assert_string_equal(f->tx[0].mail_from_domain, "good.example");
    assert_int_equal(f->tx[0].mail_code, 250);
    assert_int_equal(f->tx[0].n_rcpt, 1);
    assert_int_equal(f->tx[0].rcpt[0].code, 250);
    assert_true(f->tx[0].cleartext);
    assert_int_equal(f->tx[0].data_code, 250);
    assert_int_equal(f->tx[0].accepted, 1);
    assert_string_equal(f->tx[1].mail_from_domain, "evil.example");
    assert_int_equal(f->tx[1].mail_code, 503);
    assert_int_equal(f->tx[1].n_rcpt, 0);
    assert_int_equal(f->tx[1].accepted, 0);
    assert_false(f->tx[1].data_sent);
    conv_result_free(&r);
}

/* After a completed transaction, RCPT and DATA answered 503 have no
 * transaction: the finished one keeps its 250, an anomaly names each. */
static void test_closed_transaction_stays_closed(void **state)
{
    (void)state;
    static const struct step conv[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        EHLO_PIPE,
        C("MAIL FROM:<a@x.org>\r\n"),
        S("250 ok\r\n"),
        C("RCPT TO:<b@example.org>\r\n"),
        S("250 ok\r\n"),
        C("DATA\r\n"),
        S("354 go\r\n"),
        C("hi\r\n.\r\n"),
        S("250 queued\r\n"),
        C("RCPT TO:<c@example.org>\r\nDATA\r\n"),
        S("503 5.5.1 need MAIL\r\n503 5.5.1 need RCPT\r\n"),
        C("QUIT\r\n"),
        S("221 bye\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_int_equal(f->n_tx, 1);
    assert_int_equal(f->tx[0].n_rcpt, 1);
    assert_int_equal(f->tx[0].data_code, 250);
    assert_int_equal(f->tx[0].accepted, 1);
    assert_int_equal(f->end, SMTP_END_QUIT);
    assert_int_equal(conv_anomalies(f, ANOM_NO_TRANSACTION), 2);
    assert_string_equal(conv_anomaly_detail(f, ANOM_NO_TRANSACTION, 0),
                        "RCPT outside a transaction");
    assert_string_equal(conv_anomaly_detail(f, ANOM_NO_TRANSACTION, 1),
                        "DATA outside a transaction");
    conv_result_free(&r);
}

/* A MAIL FROM refused: the RCPT sent after the refusal has no transaction. */
static void test_refused_mail_opens_nothing(void **state)
{
    (void)state;
    static const struct step conv[] = {
        S("220 mx\r\n"),        C("HELO c\r\n"),
        S("250 mx\r\n"),        C("MAIL FROM:<a@x.org>\r\n"),
        S("550 no\r\n"),        C("RCPT TO:<b@y.org>\r\n"),
        S("503 need MAIL\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_int_equal(f->n_tx, 1);
    assert_int_equal(f->tx[0].mail_code, 550);
    assert_int_equal(f->tx[0].accepted, 0);
    assert_int_equal(f->tx[0].n_rcpt, 0);
    assert_int_equal(conv_anomalies(f, ANOM_NO_TRANSACTION), 1);
    conv_result_free(&r);
}

/* A capture that begins after MAIL FROM: the RCPT, DATA and content are a
 * transaction begun before the capture, and the content counts as clear. */
static void test_data_without_mail_from(void **state)
{
    (void)state;
    struct flow_info m = fi;
    m.midstream = true;
    static const struct step conv[] = {
        C("RCPT TO:<b@example.org>\r\n"),   S("250 ok\r\n"),     C("DATA\r\n"), S("354 go\r\n"),
        C("Subject: x\r\n\r\nhi\r\n.\r\n"), S("250 queued\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &m, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_int_equal(f->n_tx, 1);
    assert_true(f->tx[0].before_capture);
    assert_null(f->tx[0].mail_from_domain);
    assert_int_equal(f->tx[0].rcpt[0].code, 250);
    assert_true(f->tx[0].cleartext);
    assert_int_equal(f->tx[0].data_bytes, 18);
    assert_int_equal(f->tx[0].accepted, 1);
    assert_non_null(strstr(r.json, "\"before_capture\":true"));
    assert_string_equal(r.events, "data_clear,end");
    conv_result_free(&r);

    /* DATA alone, the client's side only */
    static const struct step only[] = {C("DATA\r\nhello\r\n.\r\nQUIT\r\n")};
    conv_check(&cfg, &m, only, CONV_N(only), true, &r);
    assert_int_equal(r.facts->n_tx, 1);
    assert_true(r.facts->tx[0].before_capture);
    assert_true(r.facts->tx[0].cleartext);
    assert_int_equal(r.facts->tx[0].data_bytes, 7);
    conv_result_free(&r);

    /* the whole session seen, RCPT before any MAIL: no transaction */
    static const struct step early[] = {
        S("220 mx\r\n"),
        C("HELO c\r\n"),
        S("250 mx\r\n"),
        C("RCPT TO:<b@y.org>\r\n"),
        S("503 5.5.1 need MAIL\r\n"),
    };
    conv_check(&cfg, &fi, early, CONV_N(early), true, &r);
    assert_int_equal(r.facts->n_tx, 0);
    assert_int_equal(conv_anomalies(r.facts, ANOM_NO_TRANSACTION), 1);
    conv_result_free(&r);
}

/* Only the server's side (asymmetric routing): the first multi-line 2xx
 * reply is the EHLO reply; a single-line one stays a reply without its
 * command. */
static void test_server_side_only(void **state)
{
    (void)state;
    static const struct step conv[] = {
        S("220 mx.example.org ESMTP\r\n"),
        S("250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n"),
        S("250 2.1.0 Ok\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_int_equal(f->ehlo_code, 250);
    assert_string_equal(f->ehlo_host, "mx.example.org");
    assert_int_equal(f->n_caps, 2);
    assert_false(f->starttls_offered);
    assert_true(f->pipelining_offered);
    assert_int_equal(conv_anomalies(f, ANOM_REPLY_WITHOUT_COMMAND), 1);
    assert_string_equal(r.events, "ehlo_reply,end");
    conv_result_free(&r);
}

/* 1,300 recipients in 1,300 domains: 128 kept, the next 1,024 domains in
 * tx.domains, the rest counted; the bounds say so once each. */
static void test_recipient_domains_bound(void **state)
{
    (void)state;
    size_t cap = 1 << 17, lc = 0, ls = 0;
    char *c1 = malloc(cap), *s1 = malloc(cap);
    assert_non_null(c1);
    assert_non_null(s1);
    lc += (size_t)snprintf(c1 + lc, cap - lc, "MAIL FROM:<a@x.org>\r\n");
    ls += (size_t)snprintf(s1 + ls, cap - ls, "250 ok\r\n");
    for (int i = 0; i < 1300; i++) {
        /* every other recipient past the kept ones goes to one domain */
        int d = i >= 200 && i % 2 ? 1 : i;
        lc += (size_t)snprintf(c1 + lc, cap - lc, "RCPT TO:<u%d@d%d.example>\r\n", i, d);
        ls += (size_t)snprintf(s1 + ls, cap - ls, i == 1299 ? "550 no\r\n" : "250 ok\r\n");
    }
    struct smtp_cfg c = cfg;
    c.max_pipeline = 2048;
    struct step conv[] = {
        S("220 mx\r\n"), C("EHLO c\r\n"), EHLO_PIPE, {DIR_C2S, c1, lc}, {DIR_S2C, s1, ls},
    };
    struct conv_result r;
    conv_run(&c, &fi, conv, CONV_N(conv), &r);
    const struct facts_tx *t = &r.facts->tx[0];
    assert_int_equal(t->n_rcpt, FACTS_RCPT_MAX);
    assert_int_equal(t->rcpt_dropped, 1300 - FACTS_RCPT_MAX);
    assert_int_equal(t->rcpt_total, 1300);
    assert_int_equal(t->rcpt_accepted, 1299);
    /* 72 distinct (128..199), then d200, d1 and the other even ones */
    assert_int_equal(t->n_domains, 72 + 1 + 550);
    assert_int_equal(t->domains_dropped, 0);
    assert_string_equal(t->domains[0].domain, "d128.example");
    assert_string_equal(t->domains[72].domain, "d200.example");
    assert_string_equal(t->domains[73].domain, "d1.example");
    assert_int_equal(t->domains[73].rcpts, 550);
    assert_int_equal(t->domains[73].accepted, 549);
    assert_int_equal(conv_anomalies(r.facts, ANOM_BOUND_REACHED), 1);
    conv_result_free(&r);

    /* past the domain bound too */
    lc = ls = 0;
    lc += (size_t)snprintf(c1 + lc, cap - lc, "MAIL FROM:<a@x.org>\r\n");
    ls += (size_t)snprintf(s1 + ls, cap - ls, "250 ok\r\n");
    for (int i = 0; i < FACTS_RCPT_MAX + FACTS_DOMAINS_MAX + 5; i++) {
        lc += (size_t)snprintf(c1 + lc, cap - lc, "RCPT TO:<u@e%d.example>\r\n", i);
        ls += (size_t)snprintf(s1 + ls, cap - ls, "250 ok\r\n");
    }
    conv[3].len = lc;
    conv[4].len = ls;
    conv_run(&c, &fi, conv, CONV_N(conv), &r);
    t = &r.facts->tx[0];
    assert_int_equal(t->n_domains, FACTS_DOMAINS_MAX);
    assert_int_equal(t->domains_dropped, 5);
    assert_int_equal(conv_anomalies(r.facts, ANOM_BOUND_REACHED), 2);
    assert_string_equal(conv_anomaly_detail(r.facts, ANOM_BOUND_REACHED, 1),
                        "recipient domains 1024");
    assert_non_null(strstr(r.json, "\"rcpt_domains_dropped\":5"));
    conv_result_free(&r);
    free(c1);
    free(s1);
}

/* Fields kept cut at their bound say which and how long they were. */
static void test_truncated_fields(void **state)
{
    (void)state;
    char helo[4200];
    memcpy(helo, "HELO ", 5);
    memset(helo + 5, 'h', 4000);
    memcpy(helo + 4005, "\r\n", 3);
    char rcpt[400];
    int n = snprintf(rcpt, sizeof rcpt, "RCPT TO:<b@%0300d.example>\r\n", 0);
    const struct step conv[] = {
        S("220 mx\r\n"), {DIR_C2S, helo, 4007},
        S("250 mx\r\n"), C("MAIL FROM:<a@x.org> BODY=8BITMIME-AND-MUCH-MORE\r\n"),
        S("250 ok\r\n"), {DIR_C2S, rcpt, (size_t)n},
        S("250 ok\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), false, &r);
    const struct smtp_facts *f = r.facts;
    assert_int_equal(strlen(f->helo_host), FACTS_HOST_MAX - 1);
    assert_int_equal(conv_anomalies(f, ANOM_FIELD_TRUNCATED), 3);
    assert_string_equal(conv_anomaly_detail(f, ANOM_FIELD_TRUNCATED, 0),
                        "field=helo.host length=4000 kept=255");
    assert_string_equal(conv_anomaly_detail(f, ANOM_FIELD_TRUNCATED, 1),
                        "field=mail_from.body length=22 kept=15");
    assert_string_equal(conv_anomaly_detail(f, ANOM_FIELD_TRUNCATED, 2),
                        "field=rcpt.domain length=308 kept=255");
    conv_result_free(&r);
}

/* The greeting recorded is the one the capabilities belong to: HELO
 * answered 250, then EHLO with the capabilities records the EHLO and its
 * host; an EHLO refused, then HELO, records the HELO; an EHLO sent again
 * after the capabilities changes nothing. */
static void test_greeting_of_the_capabilities(void **state)
{
    (void)state;
    static const struct step helo_ehlo[] = {
        S("220 mx\r\n"),
        C("HELO old.example\r\n"),
        S("250 mx\r\n"),
        C("EHLO new.example\r\n"),
        EHLO_PIPE,
        C("EHLO again.example\r\n"),
        S("250-mx\r\n250 X\r\n"),
        C("QUIT\r\n"),
        S("221 bye\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, helo_ehlo, CONV_N(helo_ehlo), true, &r);
    assert_string_equal(r.facts->helo_verb, "EHLO");
    assert_string_equal(r.facts->helo_host, "new.example");
    assert_true(r.facts->pipelining_offered);
    conv_result_free(&r);

    static const struct step ehlo_helo[] = {
        S("220 mx\r\n"),           C("EHLO new.example\r\n"), S("502 5.5.2 unknown\r\n"),
        C("HELO old.example\r\n"), S("250 mx\r\n"),
    };
    conv_check(&cfg, &fi, ehlo_helo, CONV_N(ehlo_helo), true, &r);
    assert_string_equal(r.facts->helo_verb, "HELO");
    assert_string_equal(r.facts->helo_host, "old.example");
    conv_result_free(&r);
}

#define AUTH_MAIL C("MAIL FROM:<a@x.org>\r\n"), C("RCPT TO:<b@example.org>\r\n"), C("DATA\r\n")

/* AUTH with the server's side not in the capture: the exchange ends at the
 * lines the mechanism takes (LOGIN: two, or one after an initial
 * response; PLAIN: one, or none after it), or, for a mechanism of unknown
 * length, at the next line that reads as a command; the MAIL, RCPT and
 * message that follow are a transaction in clear. */
static void test_auth_client_side_only(void **state)
{
    (void)state;
    static const struct {
        const char *auth;
        const char *lines;
        int n;
    } cases[] = {
        {"AUTH LOGIN\r\n", "dXNlcg==\r\ncGFzcw==\r\n", 2},
        {"AUTH LOGIN dXNlcg==\r\n", "cGFzcw==\r\n", 2},
        {"AUTH PLAIN\r\n", "AHVzZXIAcGFzcw==\r\n", 1},
        {"AUTH PLAIN AHVzZXIAcGFzcw==\r\n", "", 1},
        {"AUTH NTLM\r\n", "TlRMTVNTUAABAAAA\r\nTlRMTVNTUAADAAAA\r\n", 2},
        /* LOGIN with a command where the password would be: a command */
        {"AUTH LOGIN\r\n", "dXNlcg==\r\n", 1},
    };
    for (size_t i = 0; i < CONV_N(cases); i++) {
        const struct step conv[] = {
            C("EHLO c\r\n"),
            {DIR_C2S, cases[i].auth, strlen(cases[i].auth)},
            {DIR_C2S, cases[i].lines, strlen(cases[i].lines)},
            AUTH_MAIL,
            C("Subject: x\r\n\r\nhi\r\n.\r\n"),
            C("QUIT\r\n"),
        };
        struct conv_result r;
        conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
        const struct smtp_facts *f = r.facts;
        assert_true(f->auth_cleartext);
        assert_int_equal(f->auth_lines, cases[i].n);
        assert_int_equal(f->n_tx, 1);
        assert_string_equal(f->tx[0].mail_from_domain, "x.org");
        assert_int_equal(f->tx[0].n_rcpt, 1);
        assert_true(f->tx[0].cleartext);
        assert_int_equal(f->tx[0].data_bytes, 18);
        conv_result_free(&r);
    }
}

/* With the server's side: a 334 asks for each line, whatever it reads as;
 * QUIT answered to "334 Username:" carries no credential; a server asking
 * LOGIN for a third line gets it; the replies keep their commands. */
static void test_auth_with_replies(void **state)
{
    (void)state;
    static const struct step quit[] = {
        S("220 mx\r\n"),        C("EHLO c\r\n"),           EHLO_PIPE,
        C("AUTH LOGIN\r\n"),    S("334 VXNlcm5hbWU6\r\n"), C("QUIT\r\n"),
        S("501 5.5.2 bad\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, quit, CONV_N(quit), true, &r);
    assert_false(r.facts->auth_cleartext); /* no credential crossed */
    assert_int_equal(r.facts->auth_lines, 0);
    assert_int_equal(r.facts->auth_code, 501);
    conv_result_free(&r);

    static const struct step third[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        EHLO_PIPE,
        C("AUTH LOGIN\r\n"),
        S("334 VXNlcm5hbWU6\r\n"),
        C("dXNlcg==\r\n"),
        S("334 UGFzc3dvcmQ6\r\n"),
        C("cGFzcw==\r\n"),
        S("334 T1RQOg==\r\n"),
        C("MTIzNDU2\r\n"),
        S("235 2.7.0 ok\r\n"),
        C("MAIL FROM:<a@x.org>\r\n"),
        S("250 ok\r\n"),
        C("RCPT TO:<b@example.org>\r\n"),
        S("250 ok\r\n"),
    };
    conv_check(&cfg, &fi, third, CONV_N(third), true, &r);
    assert_int_equal(r.facts->auth_lines, 3);
    assert_int_equal(r.facts->auth_code, 235);
    assert_int_equal(r.facts->tx[0].mail_code, 250);
    assert_int_equal(r.facts->tx[0].rcpt[0].code, 250);
    assert_int_equal(conv_anomalies(r.facts, ANOM_REPLY_WITHOUT_COMMAND), 0);
    conv_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_every_command_takes_its_slot, setup),
        cmocka_unit_test_setup(test_reply_code_change_ends_reply, setup),
        cmocka_unit_test_setup(test_nested_mail_refused, setup),
        cmocka_unit_test_setup(test_closed_transaction_stays_closed, setup),
        cmocka_unit_test_setup(test_refused_mail_opens_nothing, setup),
        cmocka_unit_test_setup(test_data_without_mail_from, setup),
        cmocka_unit_test_setup(test_server_side_only, setup),
        cmocka_unit_test_setup(test_recipient_domains_bound, setup),
        cmocka_unit_test_setup(test_truncated_fields, setup),
        cmocka_unit_test_setup(test_greeting_of_the_capabilities, setup),
        cmocka_unit_test_setup(test_auth_client_side_only, setup),
        cmocka_unit_test_setup(test_auth_with_replies, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
