/* SPDX-License-Identifier: Apache-2.0 */
/* test_smtp.c: the SMTP decoder on conversations written as C string
 * literals (RFC 5321, 2920, 3030, 4954, 3207). Every conversation is replayed
 * whole, split at every byte boundary and byte by byte (conv_check), and the
 * facts must be the same; then the facts are asserted exactly. */
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

#define BODY1 "Subject: hi\r\n\r\n..leading dot\r\n.not the end\r\nlast line\r\n"

static const struct step basic[] = {
    S("220-mx.example.org ESMTP Postfix\r\n220 no UCE\r\n"),
    C("EHLO out.example.net\r\n"),
    S("250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n"
      "250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"),
    C("MAIL FROM:<alice@Example.NET> SIZE=1234 BODY=8bitmime\r\n"),
    S("250 2.1.0 Ok\r\n"),
    C("RCPT TO:<bob@example.org>\r\n"),
    S("250 2.1.5 Ok\r\n"),
    C("RCPT TO:<carol@other.example>\r\n"),
    S("550 5.1.1 no such user\r\n"),
    C("DATA\r\n"),
    S("354 End data with <CR><LF>.<CR><LF>\r\n"),
    C(BODY1 ".\r\n"),
    S("250 2.0.0 Ok: queued as ABC\r\n"),
    C("QUIT\r\n"),
    S("221 2.0.0 Bye\r\n"),
};

/* The whole session record, reviewed by hand against the conversation. */
static const char basic_json[] =
    "{\"@timestamp\":\"2026-11-22T10:00:00.000000Z\","
    "\"destination\":{\"ip\":\"198.51.100.25\",\"port\":25},"
    "\"event\":{\"dataset\":\"stripwatch.session\",\"kind\":\"event\"},"
    "\"network\":{\"protocol\":\"smtp\",\"transport\":\"tcp\"},"
    "\"smtp\":{\"auth\":{\"cleartext\":false,\"mechanism\":null},"
    "\"banner\":{\"code\":220,\"host\":\"mx.example.org\"},"
    "\"capabilities\":[\"PIPELINING\",\"SIZE 10240000\",\"STARTTLS\",\"AUTH PLAIN "
    "LOGIN\",\"8BITMIME\"],"
    "\"helo\":{\"host\":\"out.example.net\",\"verb\":\"EHLO\"},"
    "\"starttls\":{\"offered\":true,\"reply_code\":null,\"requested\":false},"
    "\"transactions\":[{\"body\":\"8BITMIME\",\"data\":{\"accepted\":true,\"bdat\":false,\"bytes\":"
    "55,\"cleartext\":true,\"code\":250},"
    "\"mail_code\":250,\"mail_from_domain\":\"example.net\","
    "\"rcpt\":[{\"code\":250,\"domain\":\"example.org\"},{\"code\":550,\"domain\":\"other."
    "example\"}],"
    "\"size\":1234}]},"
    "\"source\":{\"ip\":\"192.0.2.10\",\"port\":40000},"
    "\"stripwatch\":{\"anomalies\":[],\"end\":\"quit\",\"ttl\":{\"client\":64,\"server\":64},"
    "\"uid\":\"S00000000000000a1\"},"
    "\"tls\":{\"cipher\":null,\"client\":{\"after_handshake\":null,\"ja3\":null,\"server_name\":"
    "null},\"established\":false,"
    "\"implicit\":false,\"server\":{\"ja3s\":null,\"x509\":null},\"version\":null}}";

static void test_basic_conversation(void **state)
{
    (void)state;
    struct conv_result r;
    conv_check(&cfg, &fi, basic, CONV_N(basic), true, &r);
    assert_string_equal(r.json, basic_json);
    assert_string_equal(r.events, "ehlo_reply,data_clear,end");
    const struct smtp_facts *f = r.facts;
    assert_int_equal(f->tx[0].size_param, 1234);
    assert_string_equal(f->tx[0].body_param, "8BITMIME");
    assert_int_equal(f->tx[0].data_bytes, sizeof BODY1 - 1);
    assert_true(f->pipelining_offered);
    assert_false(f->chunking_offered);
    assert_string_equal(f->ehlo_host, "mx.example.org");
    assert_int_equal(f->ehlo_code, 250);
    assert_null(f->tx[0].mail_from);
    assert_null(f->tx[0].rcpt[0].address);
    assert_int_equal(r.stop, 0);
    conv_result_free(&r);
}

static void test_starttls_last_line_lowercase(void **state)
{
    (void)state;
    static const struct step conv[] = {
        S("220 mx ESMTP\r\n"),
        C("ehlo client.example\r\n"),
        S("250-mx\r\n250-size 100\r\n250 starttls\r\n"),
        C("mail from:<a@A.example>\r\n"),
        S("250 ok\r\n"),
        C("Rcpt To:<b@b.example>\r\n"),
        S("250 ok\r\n"),
        C("quit\r\n"),
        S("221 bye\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_true(f->starttls_offered);
    assert_int_equal(f->n_caps, 2);
    assert_string_equal(facts_cap(f, 1), "starttls");
    assert_string_equal(f->helo_verb, "EHLO");
    assert_int_equal(f->n_tx, 1);
    assert_string_equal(f->tx[0].mail_from_domain, "a.example");
    assert_string_equal(f->tx[0].rcpt[0].domain, "b.example");
    assert_int_equal(f->end, SMTP_END_QUIT);
    assert_int_equal(f->n_anomalies, 0);
    conv_result_free(&r);
}

static void test_pipelining(void **state)
{
    (void)state;
    static const struct step conv[] = {
        S("220 mx ESMTP\r\n"),
        C("EHLO c\r\n"),
        S("250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n"),
        C("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nRCPT TO:<c@z.org>\r\nDATA\r\n"),
        S("250 ok\r\n250 ok\r\n452 4.5.3 too many\r\n354 go\r\n"),
        C("hello\r\n.\r\nQUIT\r\n"),
        S("250 queued\r\n221 bye\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_int_equal(f->n_tx, 1);
    assert_int_equal(f->tx[0].mail_code, 250);
    assert_int_equal(f->tx[0].n_rcpt, 2);
    assert_string_equal(f->tx[0].rcpt[0].domain, "y.org");
    assert_int_equal(f->tx[0].rcpt[0].code, 250);
    assert_string_equal(f->tx[0].rcpt[1].domain, "z.org");
    assert_int_equal(f->tx[0].rcpt[1].code, 452);
    assert_int_equal(f->tx[0].data_bytes, 7);
    assert_int_equal(f->tx[0].accepted, 1);
    assert_int_equal(f->tx[0].data_code, 250);
    assert_int_equal(f->end, SMTP_END_QUIT);
    assert_int_equal(f->n_anomalies, 0);
    assert_string_equal(r.events, "ehlo_reply,data_clear,end");
    conv_result_free(&r);
}

static void test_transactions_rset_misc(void **state)
{
    (void)state;
    static const struct step conv[] = {
        S("220 mx\r\n"),
        C("HELO c.example\r\n"),
        S("250 mx\r\n"),
        C("MAIL FROM:<>\r\n"),
        S("250 ok\r\n"),
        C("RCPT TO:<@relay.example:bob@Dest.Example>\r\n"),
        S("250 ok\r\n"),
        C("RSET\r\n"),
        S("250 reset\r\n"),
        C("NOOP\r\n"),
        S("250 ok\r\n"),
        C("VRFY bob\r\n"),
        S("252 cannot verify\r\n"),
        C("HELP\r\n"),
        S("214-help\r\n214 end\r\n"),
        C("XYZZY plugh\r\n"),
        S("500 5.5.2 unknown command\r\n"),
        C("MAIL FROM: <x@y.org>\r\n"),
        S("250 ok\r\n"),
        C("RCPT TO:postmaster\r\n"),
        S("250 ok\r\n"),
        C("DATA\r\n"),
        S("554 5.5.1 no valid recipients\r\n"),
        C("RSET\r\n"),
        S("250 ok\r\n"),
        C("QUIT\r\n"),
        S("221 bye\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_string_equal(f->helo_verb, "HELO");
    assert_string_equal(f->helo_host, "c.example");
    assert_int_equal(f->ehlo_code, 0);
    assert_int_equal(f->n_caps, 0);
    assert_int_equal(f->n_tx, 2);
    assert_string_equal(f->tx[0].mail_from_domain, "");
    assert_string_equal(f->tx[0].rcpt[0].domain, "dest.example");
    assert_false(f->tx[0].data_sent);
    assert_string_equal(f->tx[1].mail_from_domain, "y.org");
    assert_string_equal(f->tx[1].rcpt[0].domain, "");
    assert_int_equal(f->tx[1].data_code, 554);
    assert_false(f->tx[1].data_sent);
    assert_int_equal(f->tx[1].accepted, -1);
    assert_int_equal(f->n_anomalies, 0);
    assert_int_equal(f->end, SMTP_END_QUIT);
    assert_string_equal(r.events, "end");
    conv_result_free(&r);
}

static void test_data_before_354(void **state)
{
    (void)state;
    static const struct step conv[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        S("250 mx\r\n"),
        C("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\nbody\r\n.\r\n"),
        S("250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_int_equal(f->tx[0].data_bytes, 6);
    assert_int_equal(f->tx[0].accepted, 1);
    assert_true(f->tx[0].cleartext);
    assert_int_equal(f->end, SMTP_END_FIN);
    assert_int_equal(f->n_anomalies, 0);
    conv_result_free(&r);
}

static void test_bdat(void **state)
{
    (void)state;
    static const struct step conv[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        S("250-mx\r\n250-CHUNKING\r\n250 PIPELINING\r\n"),
        C("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\n"),
        S("250 ok\r\n250 ok\r\n"),
        C("BDAT 10\r\na\r\n.\r\nbcde"),
        C("BDAT 5 last\r\nQUIT\r"),
        S("250 10 octets\r\n250 queued\r\n"),
        C("QUIT\r\n"),
        S("221 bye\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_true(f->chunking_offered);
    assert_true(f->tx[0].bdat);
    assert_true(f->tx[0].data_sent);
    assert_int_equal(f->tx[0].data_bytes, 15);
    assert_int_equal(f->tx[0].data_code, 250);
    assert_int_equal(f->tx[0].accepted, 1);
    assert_int_equal(f->end, SMTP_END_QUIT);
    assert_int_equal(f->n_anomalies, 0);
    assert_string_equal(r.events, "ehlo_reply,data_clear,end");
    conv_result_free(&r);
}

static void test_bdat_rejected(void **state)
{
    (void)state;
    static const struct step conv[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        S("250-mx\r\n250 CHUNKING\r\n"),
        C("MAIL FROM:<a@x.org>\r\n"),
        S("250 ok\r\n"),
        C("RCPT TO:<b@y.org>\r\n"),
        S("250 ok\r\n"),
        C("BDAT 4\r\nabcd"),
        S("552 5.3.4 too big\r\n"),
        C("BDAT 3 LAST\r\nxyz"),
        S("503 5.5.1 no transaction\r\n"),
        C("QUIT\r\n"),
        S("221 bye\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_int_equal(f->tx[0].data_bytes, 7);
    assert_int_equal(f->tx[0].data_code, 503);
    assert_int_equal(f->tx[0].accepted, 0);
    assert_int_equal(f->n_anomalies, 0);
    conv_result_free(&r);
}

/* A malformed BDAT pipelined before a transaction (issue 12): the server
 * answers 501 and reads MAIL, RCPT and DATA as commands; so must the decoder
 * (no 5-byte chunk eating "MAIL "), and the cleartext message is recorded. */
static void test_bdat_malformed_pipelined(void **state)
{
    (void)state;
    static const struct step conv[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        S("250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n"),
        C("BDAT 5 X\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"),
        S("501 5.5.4 Syntax: BDAT count [LAST]\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
          "354 End data with <CR><LF>.<CR><LF>\r\n"),
        C("Subject: x\r\n\r\nhello\r\n.\r\n"),
        S("250 2.0.0 Ok: queued\r\n"),
        C("QUIT\r\n"),
        S("221 bye\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_int_equal(f->n_tx, 1);
    assert_string_equal(f->tx[0].mail_from_domain, "x.org");
    assert_int_equal(f->tx[0].mail_code, 250);
    assert_int_equal(f->tx[0].n_rcpt, 1);
    assert_string_equal(f->tx[0].rcpt[0].domain, "example.org");
    assert_int_equal(f->tx[0].rcpt[0].code, 250);
    assert_false(f->tx[0].bdat);
    assert_true(f->tx[0].data_sent);
    assert_true(f->tx[0].cleartext);
    assert_int_equal(f->tx[0].data_bytes, 21);
    assert_int_equal(f->tx[0].data_code, 250);
    assert_int_equal(f->tx[0].accepted, 1);
    assert_int_equal(f->end, SMTP_END_QUIT);
    assert_int_equal(f->n_anomalies, 0);
    assert_string_equal(r.events, "ehlo_reply,data_clear,end");
    conv_result_free(&r);
}

/* A BDAT refused before its chunk came carries no chunk: the QUIT after 521
 * is a command, not 6 bytes of content (malformed and well-formed BDAT). */
static void test_bdat_refused_then_quit(void **state)
{
    (void)state;
    static const char *const bdat[] = {"BDAT 1234 SCRAMBLE\r\n", "BDAT 1234\r\n"};
    for (size_t k = 0; k < 2; k++) {
        const struct step conv[] = {
            S("220 mx\r\n"),
            C("EHLO c\r\n"),
            S("250-mx\r\n250-STARTTLS\r\n250 CHUNKING\r\n"),
            C("MAIL FROM:<a@x.org>\r\n"),
            S("250 ok\r\n"),
            C("RCPT TO:<b@example.org>\r\n"),
            S("250 ok\r\n"),
            {DIR_C2S, bdat[k], strlen(bdat[k])},
            S("521 5.5.1 closing\r\n"),
            C("QUIT\r\n"),
            S("221 bye\r\n"),
        };
        struct conv_result r;
        conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
        const struct smtp_facts *f = r.facts;
        assert_int_equal(f->n_tx, 1);
        assert_false(f->tx[0].data_sent);
        assert_false(f->tx[0].cleartext);
        assert_int_equal(f->tx[0].data_bytes, 0);
        assert_false(facts_has_cleartext_data(f));
        assert_int_equal(f->end, SMTP_END_QUIT);
        assert_int_equal(f->n_anomalies, 0);
        assert_string_equal(r.events, "ehlo_reply,end");
        conv_result_free(&r);
    }
}

/* After a BDAT with a bad tail (501), the next real BDAT LAST and its
 * content are the message. */
static void test_bdat_bad_tail_then_message(void **state)
{
    (void)state;
    static const struct step conv[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        S("250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n"),
        C("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 12 LAST X\r\n"),
        S("250 ok\r\n250 ok\r\n501 5.5.4 Syntax: BDAT count [LAST]\r\n"),
        C("BDAT 13 LAST\r\nhello\r\nQUIT\r\n"),
        S("250 2.0.0 Ok: 12 bytes queued\r\n"),
        C("QUIT\r\n"),
        S("221 bye\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_int_equal(f->n_tx, 1);
    assert_true(f->tx[0].bdat);
    assert_true(f->tx[0].data_sent);
    assert_true(f->tx[0].cleartext);
    assert_int_equal(f->tx[0].data_bytes, 13);
    assert_int_equal(f->tx[0].data_code, 250);
    assert_int_equal(f->tx[0].accepted, 1);
    assert_int_equal(f->end, SMTP_END_QUIT);
    assert_string_equal(r.events, "ehlo_reply,data_clear,end");
    conv_result_free(&r);
}

static void test_auth_never_keeps_credentials(void **state)
{
    (void)state;
    static const struct step login[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        S("250-mx\r\n250 AUTH LOGIN PLAIN\r\n"),
        C("AUTH LOGIN\r\n"),
        S("334 VXNlcm5hbWU6\r\n"),
        C("YWxpY2U=\r\n"),
        S("334 UGFzc3dvcmQ6\r\n"),
        C("c2VjcmV0\r\n"),
        S("235 2.7.0 ok\r\n"),
        C("MAIL FROM:<alice@x.org>\r\n"),
        S("250 ok\r\n"),
        C("QUIT\r\n"),
        S("221 bye\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, login, CONV_N(login), true, &r);
    assert_string_equal(r.facts->auth_mechanism, "LOGIN");
    assert_true(r.facts->auth_cleartext);
    assert_int_equal(r.facts->auth_code, 235);
    assert_int_equal(r.facts->n_tx, 1);
    assert_int_equal(r.facts->n_anomalies, 0);
    assert_null(strstr(r.json, "YWxpY2U"));
    assert_null(strstr(r.json, "c2VjcmV0"));
    assert_non_null(
        strstr(r.json, "\"auth\":{\"cleartext\":true,\"lines\":2,\"mechanism\":\"LOGIN\"}"));
    conv_result_free(&r);

    static const struct step plain[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        S("250-mx\r\n250 AUTH PLAIN\r\n"),
        C("auth plain AGFsaWNlAHNlY3JldA==\r\n"),
        S("535 5.7.8 bad credentials\r\n"),
        C("AUTH PLAIN\r\n"),
        S("334 \r\n"),
        C("AGFsaWNlAHNlY3JldA==\r\n"),
        S("235 ok\r\n"),
        C("QUIT\r\n"),
        S("221 bye\r\n"),
    };
    conv_check(&cfg, &fi, plain, CONV_N(plain), true, &r);
    assert_string_equal(r.facts->auth_mechanism, "PLAIN");
    assert_int_equal(r.facts->auth_code, 235);
    assert_null(strstr(r.json, "AGFsaWNl"));
    assert_int_equal(r.facts->n_anomalies, 0);
    assert_int_equal(r.facts->end, SMTP_END_QUIT);
    conv_result_free(&r);
}

/* AUTH offered, started and left before a credential: no cleartext AUTH. */
static void test_auth_without_credential(void **state)
{
    (void)state;
    static const struct step quit[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        S("250-mx\r\n250 AUTH LOGIN PLAIN\r\n"),
        C("AUTH LOGIN\r\n"),
        S("334 VXNlcm5hbWU6\r\n"),
        C("QUIT\r\n"),
        S("501 5.5.2 bad\r\n"),
        C("QUIT\r\n"),
        S("221 bye\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, quit, CONV_N(quit), true, &r);
    assert_string_equal(r.facts->auth_mechanism, "LOGIN");
    assert_false(r.facts->auth_cleartext);
    assert_int_equal(r.facts->auth_lines, 0);
    /* the line the 334 asked for is the exchange's (RFC 4954: the server
     * reads it as a SASL response and refuses it), the next QUIT a command */
    assert_int_equal(r.facts->auth_code, 501);
    assert_int_equal(r.facts->end, SMTP_END_QUIT);
    conv_result_free(&r);

    static const struct step cancel[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        S("250-mx\r\n250 AUTH PLAIN\r\n"),
        C("AUTH PLAIN =\r\n"),
        S("334 \r\n"),
        C("*\r\n"),
        S("501 5.7.0 aborted\r\n"),
        C("mail from:<a@x.org>\r\n"),
        S("250 ok\r\n"),
    };
    conv_check(&cfg, &fi, cancel, CONV_N(cancel), true, &r);
    assert_false(r.facts->auth_cleartext);
    assert_int_equal(r.facts->auth_code, 501);
    assert_int_equal(r.facts->n_tx, 1);
    assert_non_null(strstr(r.json, "\"auth\":{\"cleartext\":false,\"mechanism\":\"PLAIN\"}"));
    conv_result_free(&r);
}

static void test_starttls_refused(void **state)
{
    (void)state;
    static const struct step conv[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        S("250-mx\r\n250 STARTTLS\r\n"),
        C("STARTTLS\r\n"),
        S("454 4.7.0 TLS not available due to local problem\r\n"),
        C("MAIL FROM:<a@x.org>\r\n"),
        S("250 ok\r\n"),
        C("RCPT TO:<b@y.org>\r\n"),
        S("250 ok\r\n"),
        C("DATA\r\n"),
        S("354 go\r\n"),
        C("x\r\n.\r\n"),
        S("250 ok\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_true(f->starttls_requested);
    assert_int_equal(f->starttls_code, 454);
    assert_int_equal(f->n_anomalies, 1);
    assert_int_equal(f->anomalies[0].kind, ANOM_STARTTLS_REFUSED);
    assert_int_equal(f->anomalies[0].dir, DIR_S2C);
    assert_string_equal(f->anomalies[0].detail, "STARTTLS answered 454");
    assert_true(facts_has_cleartext_data(f));
    assert_string_equal(r.events, "ehlo_reply,starttls_reply,data_clear,end");
    conv_result_free(&r);
}

static void test_starttls_unknown_and_not_offered(void **state)
{
    (void)state;
    static const struct step conv[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        S("250-mx\r\n250-XXXXXXXA\r\n250 8BITMIME\r\n"),
        C("STARTTLS\r\n"),
        S("500 5.5.1 command unrecognized\r\n"),
        C("QUIT\r\n"),
        S("221 bye\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_false(f->starttls_offered);
    assert_int_equal(f->starttls_code, 500);
    assert_int_equal(f->n_anomalies, 3);
    assert_int_equal(f->anomalies[0].kind, ANOM_CAP_MANGLED);
    assert_string_equal(f->anomalies[0].detail, "token=XXXXXXXA");
    assert_int_equal(f->anomalies[1].kind, ANOM_STARTTLS_NOT_OFFERED);
    assert_int_equal(f->anomalies[1].dir, DIR_C2S);
    assert_string_equal(f->anomalies[1].detail, "EHLO reply did not list STARTTLS");
    assert_int_equal(f->anomalies[2].kind, ANOM_STARTTLS_UNKNOWN_CMD);
    assert_string_equal(f->anomalies[2].detail, "STARTTLS answered 500");
    assert_non_null(
        strstr(r.json, "{\"detail\":\"token=XXXXXXXA\",\"dir\":\"s2c\",\"kind\":\"cap_mangled\","
                       "\"ts\":\"2026-11-22T10:00:00.003000Z\"}"));
    assert_string_equal(r.events, "ehlo_reply,starttls_reply,end");
    conv_result_free(&r);
}

static void test_starttls_command_mangled(void **state)
{
    (void)state;
    /* seen between a rewriting middlebox and the server: STARTTLS arrives
     * as XXXXXXXX and is refused as unknown */
    static const struct step conv[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        S("250-mx\r\n250 STARTTLS\r\n"),
        C("XXXXXXXX\r\n"),
        S("502 5.5.2 Error: command not recognized\r\n"),
        C("XFORWARD NAME=spike.example\r\nXYZZYXYZ\r\nQUIT\r\n"),
        S("250 ok\r\n500 unknown\r\n221 bye\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_false(f->starttls_requested);
    assert_int_equal(f->n_anomalies, 2);
    assert_int_equal(f->anomalies[0].kind, ANOM_CAP_MANGLED);
    assert_int_equal(f->anomalies[0].dir, DIR_C2S);
    assert_string_equal(f->anomalies[0].detail, "command=XXXXXXXX");
    assert_int_equal(f->anomalies[1].kind, ANOM_STARTTLS_UNKNOWN_CMD);
    assert_string_equal(f->anomalies[1].detail, "mangled command answered 502");
    assert_int_equal(f->end, SMTP_END_QUIT);
    conv_result_free(&r);
}

static void test_cap_mangled_tokens(void **state)
{
    (void)state;
    static const struct step conv[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        S("250-mx\r\n250-XXXXXXXX\r\n250-STARTTLX\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
          "250-SIZE 100\r\n250-AUTH=LOGIN\r\n250-XFORWARD NAME ADDR\r\n250-ETRN\r\n250 xxxx\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_int_equal(f->n_caps, 9);
    assert_int_equal(conv_anomalies(f, ANOM_CAP_MANGLED), 3);
    assert_string_equal(conv_anomaly_detail(f, ANOM_CAP_MANGLED, 0), "token=XXXXXXXX");
    assert_string_equal(conv_anomaly_detail(f, ANOM_CAP_MANGLED, 1), "token=STARTTLX");
    assert_string_equal(conv_anomaly_detail(f, ANOM_CAP_MANGLED, 2), "token=xxxx");
    conv_result_free(&r);

    assert_true(smtp_cap_is_mangled("XXXXXXXA", 8));
    assert_true(smtp_cap_is_mangled("XXXXXX", 6));
    assert_true(smtp_cap_is_mangled("AXXXXXXX", 8));
    assert_true(smtp_cap_is_mangled("FOOBARXY", 8));
    assert_false(smtp_cap_is_mangled("STARTTLS", 8));
    assert_false(smtp_cap_is_mangled("starttls", 8));
    assert_false(smtp_cap_is_mangled("CHUNKING", 8));
    assert_false(smtp_cap_is_mangled("XCLIENT", 7));
    assert_false(smtp_cap_is_mangled("XXX", 3));
    /* an ESMTP-inspection box's masks: Xs, then the mask's letter */
    assert_true(smtp_cap_is_mangled("XXXA", 4));
    assert_true(smtp_cap_is_mangled("XXC", 3));
    assert_true(smtp_cap_is_mangled("XI", 2));
    assert_true(smtp_cap_is_mangled("XXXXXXH", 7));
    assert_false(smtp_cap_is_mangled("XA1", 3));
    assert_false(smtp_cap_is_mangled("X", 1));
    assert_false(smtp_cap_is_mangled("XEXCH50", 7));
    assert_false(smtp_cap_is_mangled("ETRN", 4));
    assert_false(smtp_cap_is_mangled("PIPELINING", 10));
}

static void test_not_tls_after_starttls(void **state)
{
    (void)state;
    /* a TLS-inspecting firewall wrote the decrypted session (arkime
     * smtp-decrypted.pcap): 220 to STARTTLS, then SMTP in clear */
    static const struct step conv[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        S("250-mx\r\n250-STARTTLS\r\n250 SIZE 100\r\n"),
        C("STARTTLS\r\n"),
        S("220 2.0.0 SMTP server ready\r\n"),
        C("EHLO c\r\n"),
        S("250-mx\r\n250 SIZE 100\r\n"),
        C("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nBDAT 3 LAST\r\nabc"),
        S("250 ok\r\n250 ok\r\n250 queued\r\n"),
        C("QUIT\r\n"),
        S("221 bye\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_true(f->starttls_offered);
    assert_int_equal(f->starttls_code, 220);
    assert_int_equal(f->n_caps, 2); /* the first EHLO reply's */
    assert_int_equal(f->n_anomalies, 1);
    assert_int_equal(f->anomalies[0].kind, ANOM_NOT_TLS_AFTER_STARTTLS);
    assert_int_equal(f->anomalies[0].dir, DIR_C2S);
    assert_string_equal(f->anomalies[0].detail, "first byte 0x45");
    assert_true(f->tx[0].cleartext);
    assert_int_equal(f->tx[0].accepted, 1);
    assert_false(f->tls->established);
    assert_int_equal(f->end, SMTP_END_QUIT);
    assert_string_equal(r.events, "ehlo_reply,starttls_reply,tls,data_clear,end");
    conv_result_free(&r);
}

static void test_line_too_long(void **state)
{
    (void)state;
    struct smtp_cfg c = cfg;
    c.max_line = 64;
    static const struct step conv[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        S("250-mx\r\n250-X-LONG "
          "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
          "250 STARTTLS\r\n"),
        C("NOOP 0123456789012345678901234567890123456789012345678901234567890123456789\r\n"),
        S("500 5.5.2 line too long\r\n"),
        C("QUIT\r\n"),
        S("221 bye\r\n"),
    };
    struct conv_result r;
    conv_check(&c, &fi, conv, CONV_N(conv), true, &r);
    const struct smtp_facts *f = r.facts;
    assert_int_equal(f->lines_too_long, 2);
    assert_int_equal(f->n_anomalies, 3);
    assert_int_equal(f->anomalies[0].kind, ANOM_LINE_TOO_LONG);
    assert_string_equal(f->anomalies[0].detail, "reply line over 64 bytes (81 bytes)");
    assert_int_equal(f->anomalies[1].kind, ANOM_EHLO_PADDED);
    assert_string_equal(f->anomalies[1].detail, "2 capability lines, 1 kept; STARTTLS kept");
    assert_int_equal(f->anomalies[2].kind, ANOM_LINE_TOO_LONG);
    assert_string_equal(f->anomalies[2].detail, "command line over 64 bytes (75 bytes)");
    assert_int_equal(f->n_caps, 1);
    assert_int_equal(f->caps_dropped, 1);
    assert_true(f->starttls_offered);
    assert_int_equal(f->end, SMTP_END_QUIT);
    conv_result_free(&r);
}

static void test_reply_without_command(void **state)
{
    (void)state;
    static const struct step conv[] = {
        S("220 mx\r\n250 surprise\r\n"),
        C("EHLO c\r\n"),
        S("250 mx\r\n421 4.3.2 shutting down\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    assert_int_equal(r.facts->n_anomalies, 1);
    assert_int_equal(r.facts->anomalies[0].kind, ANOM_REPLY_WITHOUT_COMMAND);
    assert_string_equal(r.facts->anomalies[0].detail, "reply 250");
    assert_int_equal(r.facts->ehlo_code, 250);
    conv_result_free(&r);
}

static void test_midstream(void **state)
{
    (void)state;
    struct flow_info m = fi;
    m.midstream = true;
    static const struct step conv[] = {
        S("250 ok\r\n"), C("MAIL FROM:<a@x.org>\r\n"), S("250 ok\r\n"), C("RCPT TO:<b@y.org>\r\n"),
        S("250 ok\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &m, conv, CONV_N(conv), true, &r);
    assert_int_equal(r.facts->n_anomalies, 0);
    assert_int_equal(r.facts->banner_code, 0);
    assert_int_equal(r.facts->tx[0].rcpt[0].code, 250);
    conv_result_free(&r);

    /* picked up inside TLS application data: no SMTP lines, no anomalies */
    static const struct step tls[] = {
        {DIR_C2S, "\x17\x03\x03\x00\x05\n\n\n\n\n", 10},
        {DIR_S2C, "\x17\x03\x03\x00\x03\n\n\n\x17\x03\x03\x00\x01\n", 14},
    };
    conv_check(&cfg, &m, tls, CONV_N(tls), true, &r);
    assert_int_equal(r.facts->n_anomalies, 0);
    assert_int_equal(r.facts->end, SMTP_END_TLS);
    assert_string_equal(r.events, "end");
    conv_result_free(&r);
}

static void test_log_addresses(void **state)
{
    (void)state;
    static const struct step conv[] = {
        S("220 mx\r\n"), C("HELO c\r\n"),
        S("250 mx\r\n"), C("MAIL FROM:<alice@Example.NET>\r\n"),
        S("250 ok\r\n"), C("RCPT TO:<bob@example.org>\r\n"),
        S("250 ok\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), false, &r);
    assert_null(strstr(r.json, "alice"));
    assert_null(strstr(r.json, "bob"));
    conv_result_free(&r);

    struct smtp_cfg c = cfg;
    c.log_addresses = true;
    conv_check(&c, &fi, conv, CONV_N(conv), false, &r);
    assert_string_equal(r.facts->tx[0].mail_from, "alice@Example.NET");
    assert_string_equal(r.facts->tx[0].mail_from_domain, "example.net");
    assert_string_equal(r.facts->tx[0].rcpt[0].address, "bob@example.org");
    assert_non_null(strstr(r.json, "\"mail_from\":\"alice@Example.NET\""));
    assert_non_null(strstr(
        r.json, "{\"address\":\"bob@example.org\",\"code\":250,\"domain\":\"example.org\"}"));
    conv_result_free(&r);
}

static void test_helo_fallback(void **state)
{
    (void)state;
    static const struct step conv[] = {
        S("220 pigeon.example Sendmail 8.8.7\r\n"),
        C("EHLO delta.example\r\n"),
        S("500 Command unrecognized\r\n"),
        C("HELO delta.example\r\n"),
        S("250 pigeon.example Hello\r\n"),
        C("QUIT\r\n"),
        S("221 closing\r\n"),
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), true, &r);
    /* no capabilities: the greeting the session went on with */
    assert_string_equal(r.facts->helo_verb, "HELO");
    assert_int_equal(r.facts->ehlo_code, 500);
    assert_int_equal(r.facts->n_caps, 0);
    assert_false(r.facts->starttls_offered);
    assert_string_equal(r.events, "end");
    assert_int_equal(r.facts->n_anomalies, 0);
    conv_result_free(&r);
}

/* ---- bounds and hostile input ---- */

static void test_huge_multiline_reply(void **state)
{
    (void)state;
    size_t n = 5000, cap = n * 16 + 64;
    char *big = malloc(cap);
    assert_non_null(big);
    size_t l = (size_t)snprintf(big, cap, "250-mx\r\n");
    for (size_t i = 0; i < n; i++)
        l += (size_t)snprintf(big + l, cap - l, "250-CAP%zu\r\n", i);
    l += (size_t)snprintf(big + l, cap - l, "250 STARTTLS\r\n");
    struct step conv[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        {DIR_S2C, big, l},
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), false, &r);
    assert_int_equal(r.facts->n_caps, FACTS_CAPS_MAX);
    assert_int_equal(r.facts->caps_dropped, n + 1 - FACTS_CAPS_MAX);
    assert_true(r.facts->starttls_offered);
    assert_non_null(strstr(r.json, "\"capabilities_dropped\":4937"));
    conv_result_free(&r);
    free(big);
}

/* A reply padded past the bounds: 70 lines with STARTTLS stripped (absent),
 * and a line over 4096 bytes that starts with STARTTLS (not stored, still
 * scanned); each is an anomaly saying where STARTTLS was. */
static void test_padded_ehlo_reply_scanned(void **state)
{
    (void)state;
    size_t cap = 70 * 16 + 6000;
    char *big = malloc(cap);
    assert_non_null(big);
    size_t l = (size_t)snprintf(big, cap, "250-mx\r\n");
    for (int i = 0; i < 69; i++)
        l += (size_t)snprintf(big + l, cap - l, "250-X-PAD%d\r\n", i);
    l += (size_t)snprintf(big + l, cap - l, "250 PIPELINING\r\n");
    struct step conv[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        {DIR_S2C, big, l},
    };
    struct conv_result r;
    conv_check(&cfg, &fi, conv, CONV_N(conv), false, &r);
    assert_false(r.facts->starttls_offered);
    assert_int_equal(r.facts->caps_dropped, 6);
    assert_int_equal(conv_anomalies(r.facts, ANOM_EHLO_PADDED), 1);
    assert_string_equal(conv_anomaly_detail(r.facts, ANOM_EHLO_PADDED, 0),
                        "70 capability lines, 64 kept; STARTTLS absent");
    conv_result_free(&r);

    l = (size_t)snprintf(big, cap, "250-mx\r\n250-PIPELINING\r\n250-STARTTLS ");
    memset(big + l, 'A', 5000);
    l += 5000;
    l += (size_t)snprintf(big + l, cap - l, "\r\n250 8BITMIME\r\n");
    struct step conv2[] = {
        S("220 mx\r\n"),
        C("EHLO c\r\n"),
        {DIR_S2C, big, l},
    };
    conv_check(&cfg, &fi, conv2, CONV_N(conv2), false, &r);
    assert_true(r.facts->starttls_offered);
    assert_int_equal(r.facts->n_caps, 2);
    assert_int_equal(r.facts->caps_dropped, 1);
    assert_string_equal(conv_anomaly_detail(r.facts, ANOM_LINE_TOO_LONG, 0),
                        "reply line over 4096 bytes (5013 bytes)");
    assert_string_equal(conv_anomaly_detail(r.facts, ANOM_EHLO_PADDED, 0),
                        "3 capability lines, 2 kept; STARTTLS on a line not kept");
    conv_result_free(&r);
    free(big);
}

/* 10 MB without LF up to the end of the stream: a bounded prefix is kept
 * and parsed, and the session record says so. */
static void test_line_without_lf_to_the_end(void **state)
{
    (void)state;
    size_t n = 10u << 20;
    char *big = malloc(n);
    assert_non_null(big);
    memcpy(big, "MAIL FROM:<", 11);
    memset(big + 11, 'a', n - 11);
    struct smtp_session *s = smtp_session_new(&cfg, &fi);
    assert_non_null(s);
    struct stream_meta m = {CONV_START, 1, 64, 0, 4};
    smtp_session_feed(s, DIR_S2C, (const uint8_t *)"220 mx\r\n", 8, &m);
    m.pkt_no = 2;
    smtp_session_feed(s, DIR_C2S, (const uint8_t *)"EHLO c\r\n", 8, &m);
    for (size_t off = 0; off < n; off += 1460) {
        m.pkt_no++;
        smtp_session_feed(s, DIR_C2S, (const uint8_t *)big + off, n - off < 1460 ? n - off : 1460,
                          &m);
    }
    smtp_session_end(s, FLOW_END_SHUTDOWN, CONV_START + 1);
    const struct smtp_facts *f = smtp_session_facts(s);
    assert_int_equal(f->lines_too_long, 1);
    assert_int_equal(f->n_anomalies, 1);
    assert_int_equal(f->anomalies[0].kind, ANOM_LINE_TOO_LONG);
    assert_int_equal(f->anomalies[0].dir, DIR_C2S);
    assert_string_equal(f->anomalies[0].detail,
                        "command line over 4096 bytes (10485760 bytes, no LF before the end)");
    assert_int_equal(f->end, SMTP_END_CAPTURE_END);
    smtp_session_free(s);
    free(big);
}

/* The anomaly ring keeps the newest FACTS_ANOM_MAX and the first of every
 * kind: a flood of one kind pushes out its own repeats, never older
 * evidence of another kind nor its own first one. */
static void test_anomaly_ring(void **state)
{
    (void)state;
    struct smtp_facts *f = facts_new();
    assert_non_null(f);
    struct facts_anomaly *a = facts_add_anomaly(f);
    assert_non_null(a);
    a->kind = ANOM_CAP_MANGLED;
    assert_true(facts_set(f, &a->detail, "token=XXXXXXXA", 14, FACTS_DETAIL_MAX));
    for (int i = 0; i < 20; i++) {
        char d[16];
        int n = snprintf(d, sizeof d, "r%d", i);
        a = facts_add_anomaly(f);
        assert_non_null(a);
        assert_int_equal(a->kind, 0);
        assert_null(a->detail);
        a->kind = ANOM_REPLY_WITHOUT_COMMAND;
        assert_true(facts_set(f, &a->detail, d, (size_t)n, FACTS_DETAIL_MAX));
    }
    assert_int_equal(FACTS_ANOM_MAX, 16);
    assert_int_equal(f->n_anomalies, 16);
    assert_int_equal(f->anomalies_dropped, 5);
    assert_int_equal(f->anomalies[0].kind, ANOM_CAP_MANGLED);
    assert_string_equal(f->anomalies[0].detail, "token=XXXXXXXA");
    assert_string_equal(f->anomalies[1].detail, "r0");
    for (int i = 2; i < 16; i++) {
        char d[16];
        snprintf(d, sizeof d, "r%d", i + 4);
        assert_string_equal(f->anomalies[i].detail, d);
    }
    json_t *j = facts_to_json(f);
    char *s = json_dumps(j, JSON_COMPACT);
    assert_non_null(strstr(s, "\"anomalies_dropped\":5"));
    free(s);
    json_decref(j);
    facts_free(f);
}

static void test_bounds_tx_rcpt_anomalies(void **state)
{
    (void)state;
    size_t cap = 64 * 1024;
    char *c1 = malloc(cap), *s1 = malloc(cap);
    assert_non_null(c1);
    assert_non_null(s1);
    size_t lc = 0, ls = 0;
    /* 200 recipients in the first transaction, then 39 more transactions */
    lc += (size_t)snprintf(c1 + lc, cap - lc, "MAIL FROM:<a@x.org>\r\n");
    ls += (size_t)snprintf(s1 + ls, cap - ls, "250 ok\r\n");
    for (int i = 0; i < 200; i++) {
        lc += (size_t)snprintf(c1 + lc, cap - lc, "RCPT TO:<u%d@d%d.example>\r\n", i, i);
        ls += (size_t)snprintf(s1 + ls, cap - ls, "250 ok\r\n");
    }
    for (int i = 1; i < 40; i++) {
        lc += (size_t)snprintf(c1 + lc, cap - lc, "MAIL FROM:<a@t%d.org>\r\n", i);
        ls += (size_t)snprintf(s1 + ls, cap - ls, "250 ok\r\n");
    }
    /* 40 replies nobody asked for: anomalies past FACTS_ANOM_MAX */
    for (int i = 0; i < 40; i++)
        ls += (size_t)snprintf(s1 + ls, cap - ls, "250 extra\r\n");
    struct smtp_cfg c = cfg;
    c.max_pipeline = 1024;
    struct step conv[] = {
        S("220 mx\r\n"),   C("EHLO c\r\n"),   S("250-mx\r\n250 PIPELINING\r\n"),
        {DIR_C2S, c1, lc}, {DIR_S2C, s1, ls},
    };
    struct conv_result r;
    conv_check(&c, &fi, conv, CONV_N(conv), false, &r);
    const struct smtp_facts *f = r.facts;
    assert_int_equal(f->n_tx, FACTS_TX_MAX);
    assert_int_equal(f->tx_dropped, 40 - FACTS_TX_MAX);
    assert_int_equal(f->tx[0].n_rcpt, FACTS_RCPT_MAX);
    assert_int_equal(f->tx[0].rcpt_dropped, 200 - FACTS_RCPT_MAX);
    assert_string_equal(f->tx[0].rcpt[127].domain, "d127.example");
    assert_int_equal(f->tx[0].rcpt[127].code, 250);
    assert_string_equal(f->tx[31].mail_from_domain, "t31.org");
    assert_int_equal(f->n_anomalies, FACTS_ANOM_MAX);
    /* 40 unasked replies and the recipient bound reached */
    assert_int_equal(f->anomalies_dropped, 41 - FACTS_ANOM_MAX);
    assert_int_equal(f->tx[0].rcpt_total, 200);
    assert_int_equal(f->tx[0].rcpt_accepted, 200);
    assert_int_equal(f->tx[0].n_domains, 200 - FACTS_RCPT_MAX);
    assert_string_equal(f->tx[0].domains[0].domain, "d128.example");
    assert_int_equal(f->tx[0].domains[0].accepted, 1);
    assert_non_null(strstr(r.json, "\"anomalies_dropped\":25"));
    assert_non_null(strstr(r.json, "\"rcpt_dropped\":72"));
    assert_non_null(strstr(r.json, "\"transactions_dropped\":8"));
    conv_result_free(&r);
    free(c1);
    free(s1);
}

static void test_pipeline_overflow(void **state)
{
    (void)state;
    struct smtp_cfg c = cfg;
    c.max_pipeline = 4;
    struct smtp_consumer *sc = smtp_consumer_new(&c);
    assert_non_null(sc);
    const struct stream_consumer *ops = smtp_consumer_ops(sc);
    void *st = ops->open(ops->ctx, &fi);
    assert_non_null(st);
    struct stream_meta m = {CONV_START, 2, 64, 1, 4};
    static const char b[] = "220 mx\r\n";
    static const char cmds[] = "NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n";
    static const char reps[] =
        "250 1\r\n250 2\r\n250 3\r\n250 4\r\n250 5\r\n250 6\r\n250 7\r\n250 8\r\n";
    ops->data(st, DIR_S2C, (const uint8_t *)b, sizeof b - 1, &m);
    ops->data(st, DIR_C2S, (const uint8_t *)cmds, sizeof cmds - 1, &m);
    ops->data(st, DIR_S2C, (const uint8_t *)reps, sizeof reps - 1, &m);
    const struct smtp_facts *f = smtp_session_facts(st);
    assert_int_equal(conv_anomalies(f, ANOM_REPLY_WITHOUT_COMMAND), 4);
    assert_string_equal(conv_anomaly_detail(f, ANOM_REPLY_WITHOUT_COMMAND, 0), "reply 250");
    const struct smtp_stats *ss = smtp_consumer_stats(sc);
    assert_int_equal(ss->pipeline_overflow, 4);
    assert_int_equal(ss->replies_unmatched, 4);
    assert_int_equal(ss->sessions, 1);
    assert_int_equal(ss->bytes_c2s, sizeof cmds - 1);
    ops->close(st, FLOW_END_FIN, CONV_START + 10);
    smtp_consumer_free(sc);
}

/* Deterministic noise: about one byte in nl_every is a LF (exactly every
 * nl_every-th when >= 100), some look like the start of a reply line. */
static char *noise(size_t n, uint32_t seed, unsigned nl_every)
{
    char *g = malloc(n);
    assert_non_null(g);
    uint32_t x = seed;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        uint32_t v = x >> 8;
        g[i] = (v % 11 == 0) ? '2' : (v % 13 == 0) ? '-' : (char)(v >> 8);
        if (nl_every < 100 ? v % nl_every == 0 : g[i] == '\n')
            g[i] = nl_every < 100 ? '\n' : 'x';
        if (nl_every >= 100 && i % nl_every == nl_every - 1)
            g[i] = '\n';
    }
    return g;
}

static void garbage_run(const struct flow_info *f, unsigned nl_every, size_t *anomalies)
{
    size_t n = 40000;
    char *g[2] = {noise(n, 12345, nl_every), noise(n, 777, nl_every)};
    struct step conv[8];
    for (size_t i = 0; i < 8; i++) {
        conv[i].dir = (i & 1) ? DIR_S2C : DIR_C2S;
        conv[i].data = g[i & 1] + (i / 2) * (n / 4);
        conv[i].len = n / 4;
    }
    struct conv_result r;
    conv_check(&cfg, f, conv, CONV_N(conv), false, &r);
    assert_true(r.facts->n_anomalies <= FACTS_ANOM_MAX);
    json_t *j = json_loads(r.json, 0, NULL); /* valid JSON whatever the bytes */
    assert_non_null(j);
    json_decref(j);
    *anomalies = r.facts->n_anomalies + r.facts->anomalies_dropped;
    conv_result_free(&r);
    free(g[0]);
    free(g[1]);
}

static void test_binary_garbage(void **state)
{
    (void)state;
    size_t a;
    garbage_run(&fi, 7, &a);
    /* no line ends: every line is too long, counted, never kept */
    garbage_run(&fi, 20000, &a);
    assert_true(a >= 2);
    /* the same noise on the implicit-TLS port */
    struct flow_info t = fi;
    t.sport = 465;
    garbage_run(&t, 7, &a);
    assert_true(a >= 1); /* not TLS on a TLS port */
}

/* ---- server packet fingerprints ---- */

static void test_ttl_and_ipid_shift(void **state)
{
    (void)state;
    struct smtp_session *s = smtp_session_new(&cfg, &fi);
    assert_non_null(s);
    struct stream_meta m = {CONV_START, 2, 64, 1000, 4};
    smtp_session_packet(s, DIR_S2C, &m); /* SYN-ACK: before the banner, ignored */
    smtp_session_feed(s, DIR_S2C, (const uint8_t *)"220 mx\r\n", 8, &m);
    for (uint16_t id = 1001; id <= 1005; id++) {
        m.ip_id = id;
        smtp_session_packet(s, DIR_S2C, &m);
    }
    m.ttl = 50; /* the client's packets do not count */
    smtp_session_packet(s, DIR_C2S, &m);
    assert_int_equal(smtp_session_facts(s)->n_anomalies, 0);
    m.ttl = 63;
    m.ip_id = 1006;
    m.pkt_no = 9;
    smtp_session_packet(s, DIR_S2C, &m);
    m.ip_id = 30000;
    m.pkt_no = 10;
    smtp_session_packet(s, DIR_S2C, &m);
    const struct smtp_facts *f = smtp_session_facts(s);
    assert_int_equal(f->n_anomalies, 2);
    assert_int_equal(f->anomalies[0].kind, ANOM_TTL_SHIFT);
    assert_string_equal(f->anomalies[0].detail, "ttl 64->63");
    assert_int_equal(f->anomalies[0].pkt_no, 9);
    assert_int_equal(f->anomalies[1].kind, ANOM_IPID_SHIFT);
    assert_string_equal(f->anomalies[1].detail, "ipid 1006->30000");
    smtp_session_free(s);

    /* sequential, then zero */
    s = smtp_session_new(&cfg, &fi);
    m = (struct stream_meta){CONV_START, 2, 64, 500, 4};
    smtp_session_feed(s, DIR_S2C, (const uint8_t *)"220 mx\r\n", 8, &m);
    for (uint16_t id = 501; id <= 504; id++) {
        m.ip_id = id;
        smtp_session_packet(s, DIR_S2C, &m);
    }
    m.ip_id = 0;
    smtp_session_packet(s, DIR_S2C, &m);
    assert_int_equal(smtp_session_facts(s)->n_anomalies, 1);
    assert_string_equal(smtp_session_facts(s)->anomalies[0].detail, "ipid 504->0");
    smtp_session_free(s);

    /* zero with DF, then an ID appears */
    s = smtp_session_new(&cfg, &fi);
    m = (struct stream_meta){CONV_START, 2, 64, 0, 4};
    smtp_session_feed(s, DIR_S2C, (const uint8_t *)"220 mx\r\n", 8, &m);
    for (int i = 0; i < 4; i++)
        smtp_session_packet(s, DIR_S2C, &m);
    m.ip_id = 4242;
    smtp_session_packet(s, DIR_S2C, &m);
    assert_int_equal(smtp_session_facts(s)->n_anomalies, 1);
    assert_string_equal(smtp_session_facts(s)->anomalies[0].detail, "ipid 0->4242");
    smtp_session_free(s);
}

/* Issue 12: only a shift on the replies that decide on STARTTLS, by more
 * than a route change, is ttl_shift_reply; one hop later in the session
 * (route noise) stays a ttl_shift on the record. */
static void test_ttl_shift_on_replies(void **state)
{
    (void)state;
    struct {
        uint8_t ehlo_ttl, ipid_break, data_ttl;
        const char *reply; /* expected ttl_shift_reply detail, NULL none */
        size_t shifts;     /* ttl_shift anomalies */
    } cases[] = {
        {64, 0, 63, NULL, 1},                                    /* DATA, one hop */
        {63, 0, 63, NULL, 1},                                    /* EHLO, one hop */
        {59, 0, 59, "ttl 64->59 on the EHLO reply (5 hops)", 1}, /* EHLO, 5 hops */
        {128, 0, 128, "ttl 64->128 on the EHLO reply (64 hops, another initial TTL)", 1},
        {63, 1, 63, "ttl 64->63 on the EHLO reply (1 hop, IP ID break)", 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct smtp_session *s = smtp_session_new(&cfg, &fi);
        assert_non_null(s);
        struct stream_meta m = {CONV_START, 1, 64, 1000, 4};
        smtp_session_tcp_packet(s, DIR_S2C, &m, PKT_TH_ACK);
        smtp_session_feed(s, DIR_S2C, (const uint8_t *)"220 mx\r\n", 8, &m);
        for (uint16_t id = 1001; id <= 1004; id++) {
            m.ip_id = id;
            m.pkt_no++;
            smtp_session_tcp_packet(s, DIR_S2C, &m, PKT_TH_ACK);
        }
        m.pkt_no++;
        smtp_session_feed(s, DIR_C2S, (const uint8_t *)"EHLO c\r\n", 8, &m);
        m.pkt_no++;
        m.ttl = cases[k].ehlo_ttl;
        m.ip_id = cases[k].ipid_break ? 40000 : 1005;
        smtp_session_tcp_packet(s, DIR_S2C, &m, PKT_TH_ACK);
        static const char reply[] = "250-mx\r\n250 PIPELINING\r\n";
        smtp_session_feed(s, DIR_S2C, (const uint8_t *)reply, sizeof reply - 1, &m);
        m.pkt_no++;
        static const char mail[] = "MAIL FROM:<a@x.org>\r\n";
        smtp_session_feed(s, DIR_C2S, (const uint8_t *)mail, sizeof mail - 1, &m);
        m.pkt_no++;
        m.ttl = cases[k].data_ttl;
        m.ip_id++;
        smtp_session_tcp_packet(s, DIR_S2C, &m, PKT_TH_ACK);
        smtp_session_feed(s, DIR_S2C, (const uint8_t *)"250 ok\r\n", 8, &m);
        const struct smtp_facts *f = smtp_session_facts(s);
        assert_int_equal(conv_anomalies(f, ANOM_TTL_SHIFT), cases[k].shifts);
        if (cases[k].reply) {
            assert_int_equal(conv_anomalies(f, ANOM_TTL_SHIFT_REPLY), 1);
            assert_string_equal(conv_anomaly_detail(f, ANOM_TTL_SHIFT_REPLY, 0), cases[k].reply);
        } else {
            assert_int_equal(conv_anomalies(f, ANOM_TTL_SHIFT_REPLY), 0);
        }
        smtp_session_free(s);
    }
}

static void test_ipid_quiet_on_normal_stacks(void **state)
{
    (void)state;
    /* random IDs: never a pattern, never an anomaly */
    struct smtp_session *s = smtp_session_new(&cfg, &fi);
    struct stream_meta m = {CONV_START, 2, 64, 7, 4};
    smtp_session_feed(s, DIR_S2C, (const uint8_t *)"220 mx\r\n", 8, &m);
    uint32_t x = 99;
    for (int i = 0; i < 500; i++) {
        x = x * 1103515245u + 12345u;
        m.ip_id = (uint16_t)(x >> 16);
        smtp_session_packet(s, DIR_S2C, &m);
    }
    assert_int_equal(smtp_session_facts(s)->n_anomalies, 0);
    smtp_session_free(s);

    /* Linux: per-socket IDs across thousands of ACKs, wrapping, then a
     * control RST with ID 0, and TIME_WAIT ACKs with ID 0 after the FIN */
    s = smtp_session_new(&cfg, &fi);
    m = (struct stream_meta){CONV_START, 2, 64, 65000, 4};
    smtp_session_feed(s, DIR_S2C, (const uint8_t *)"220 mx\r\n", 8, &m);
    for (int i = 0; i < 3000; i++) {
        m.ip_id++;
        smtp_session_tcp_packet(s, DIR_S2C, &m, PKT_TH_ACK);
    }
    uint16_t last = m.ip_id;
    m.ip_id = 0;
    smtp_session_tcp_packet(s, DIR_S2C, &m, PKT_TH_RST);
    m.ip_id = (uint16_t)(last + 1);
    smtp_session_tcp_packet(s, DIR_S2C, &m, PKT_TH_ACK | PKT_TH_FIN);
    m.ip_id = 0;
    smtp_session_tcp_packet(s, DIR_S2C, &m, PKT_TH_ACK);
    assert_int_equal(smtp_session_facts(s)->n_anomalies, 0);
    smtp_session_free(s);
}

static void test_gaps(void **state)
{
    (void)state;
    struct smtp_session *s = smtp_session_new(&cfg, &fi);
    struct stream_meta m = {CONV_START, 2, 64, 1, 4};
#define FEED(d, str) smtp_session_feed(s, d, (const uint8_t *)(str), sizeof(str) - 1, &m)
    FEED(DIR_S2C, "220 mx\r\n");
    FEED(DIR_C2S, "EHLO c\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n");
    FEED(DIR_S2C, "250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n");
    FEED(DIR_C2S, "part one");
    m.pkt_no = 7;
    smtp_session_gap(s, DIR_C2S, 100, &m);
    FEED(DIR_C2S, "rest\r\n.\r\nNO");
    smtp_session_gap(s, DIR_C2S, 3, &m);
    FEED(DIR_C2S, "OP\r\nQUIT\r\n");
    FEED(DIR_S2C, "250 queued\r\n221 bye\r\n");
#undef FEED
    const struct smtp_facts *f = smtp_session_facts(s);
    assert_int_equal(f->n_anomalies, 2);
    assert_int_equal(f->anomalies[0].kind, ANOM_GAP);
    assert_string_equal(f->anomalies[0].detail, "100 bytes missing");
    assert_int_equal(f->anomalies[0].pkt_no, 7);
    assert_string_equal(f->anomalies[1].detail, "3 bytes missing");
    assert_int_equal(f->tx[0].accepted, 1);
    assert_int_equal(f->tx[0].data_bytes, 14);
    smtp_session_end(s, FLOW_END_FIN, CONV_START + 100);
    assert_int_equal(f->end, SMTP_END_QUIT);
    smtp_session_free(s);
}

/* ---- lifecycle, names, copies ---- */

static void test_end_reasons(void **state)
{
    (void)state;
    static const struct {
        enum flow_end why;
        enum smtp_end want;
        const char *name;
    } cases[] = {
        {FLOW_END_FIN, SMTP_END_FIN, "fin"},
        {FLOW_END_RST, SMTP_END_RST, "rst"},
        {FLOW_END_TIMEOUT, SMTP_END_TIMEOUT, "timeout"},
        {FLOW_END_EVICTED, SMTP_END_EVICTED, "evicted"},
        {FLOW_END_SHUTDOWN, SMTP_END_CAPTURE_END, "capture_end"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct smtp_session *s = smtp_session_new(&cfg, &fi);
        struct stream_meta m = {CONV_START, 2, 64, 1, 4};
        smtp_session_feed(s, DIR_S2C, (const uint8_t *)"220 mx\r\n", 8, &m);
        smtp_session_end(s, cases[i].why, CONV_START + 5);
        assert_int_equal(smtp_session_facts(s)->end, cases[i].want);
        assert_string_equal(smtp_end_str(smtp_session_facts(s)->end), cases[i].name);
        assert_int_equal(smtp_session_facts(s)->last_ts, CONV_START + 5);
        smtp_session_free(s);
    }
    smtp_session_free(NULL);
    facts_free(NULL);
}

static void test_names(void **state)
{
    (void)state;
    static const char *const kinds[ANOM_KIND_COUNT] = {
        "cap_mangled",
        "starttls_unknown_cmd",
        "starttls_refused",
        "ttl_shift",
        "ipid_shift",
        "line_too_long",
        "reply_without_command",
        "gap",
        "not_tls_after_starttls",
        "plaintext_on_tls_port",
        "overlap_conflict",
        "tls_alert",
        "starttls_not_offered",
        "ehlo_reply_padded",
        "ttl_shift_reply",
        "reply_code_changed",
        "no_transaction",
        "field_truncated",
        "bound_reached",
        "greeting_client_addr",
        "overlap_starttls_conflict",
    };
    for (int k = 0; k < ANOM_KIND_COUNT; k++)
        assert_string_equal(anomaly_kind_str((enum anomaly_kind)k), kinds[k]);
    assert_string_equal(anomaly_kind_str(ANOM_KIND_COUNT), "unknown");
    assert_string_equal(smtp_end_str(SMTP_END_TLS), "tls");
    assert_string_equal(smtp_end_str(SMTP_END_QUIT), "quit");
    assert_string_equal(smtp_end_str(SMTP_END_NONE), "none");
    assert_string_equal(smtp_event_str(SMTP_EV_EHLO_REPLY), "ehlo_reply");
    assert_string_equal(smtp_event_str(SMTP_EV_STARTTLS_REPLY), "starttls_reply");
    assert_string_equal(smtp_event_str(SMTP_EV_TLS), "tls");
    assert_string_equal(smtp_event_str(SMTP_EV_DATA_CLEAR), "data_clear");
    assert_string_equal(smtp_event_str(SMTP_EV_END), "end");
    struct smtp_cfg d;
    smtp_cfg_defaults(&d);
    assert_int_equal(d.n_ports, 3);
    assert_int_equal(d.ports[0], 25);
    assert_int_equal(d.ports[1], 587);
    assert_int_equal(d.ports[2], 2525);
    assert_int_equal(d.n_tls_ports, 1);
    assert_int_equal(d.tls_ports[0], 465);
    assert_int_equal(d.max_line, 4096);
    assert_int_equal(d.max_pipeline, 64);
}

static void test_facts_copy_and_vlan(void **state)
{
    (void)state;
    struct smtp_cfg c = cfg;
    c.log_addresses = true;
    struct flow_info v = fi;
    v.vlan = 125;
    struct conv_result r;
    conv_run(&c, &v, basic, CONV_N(basic), &r);
    assert_non_null(strstr(
        r.json, "\"network\":{\"protocol\":\"smtp\",\"transport\":\"tcp\",\"vlan\":{\"id\":125}}"));
    struct smtp_facts *cp = facts_copy(r.facts);
    assert_non_null(cp);
    assert_ptr_not_equal(cp->caps, r.facts->caps);
    assert_int_equal(cp->storage, FACTS_PACKED);
    assert_int_equal(facts_copy_size(r.facts), facts_copy_size(cp));
    assert_ptr_not_equal(cp->tx, r.facts->tx);
    assert_ptr_not_equal(cp->tx[0].rcpt[0].address, r.facts->tx[0].rcpt[0].address);
    json_t *j = facts_to_json(cp);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, r.json);
    free(s);
    json_decref(j);
    facts_free(cp);
    conv_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_basic_conversation, setup),
        cmocka_unit_test(test_anomaly_ring),
        cmocka_unit_test_setup(test_starttls_last_line_lowercase, setup),
        cmocka_unit_test_setup(test_pipelining, setup),
        cmocka_unit_test_setup(test_transactions_rset_misc, setup),
        cmocka_unit_test_setup(test_data_before_354, setup),
        cmocka_unit_test_setup(test_bdat, setup),
        cmocka_unit_test_setup(test_bdat_rejected, setup),
        cmocka_unit_test_setup(test_bdat_malformed_pipelined, setup),
        cmocka_unit_test_setup(test_bdat_refused_then_quit, setup),
        cmocka_unit_test_setup(test_bdat_bad_tail_then_message, setup),
        cmocka_unit_test_setup(test_auth_never_keeps_credentials, setup),
        cmocka_unit_test_setup(test_auth_without_credential, setup),
        cmocka_unit_test_setup(test_starttls_refused, setup),
        cmocka_unit_test_setup(test_starttls_unknown_and_not_offered, setup),
        cmocka_unit_test_setup(test_starttls_command_mangled, setup),
        cmocka_unit_test_setup(test_cap_mangled_tokens, setup),
        cmocka_unit_test_setup(test_not_tls_after_starttls, setup),
        cmocka_unit_test_setup(test_line_too_long, setup),
        cmocka_unit_test_setup(test_reply_without_command, setup),
        cmocka_unit_test_setup(test_midstream, setup),
        cmocka_unit_test_setup(test_log_addresses, setup),
        cmocka_unit_test_setup(test_helo_fallback, setup),
        cmocka_unit_test_setup(test_huge_multiline_reply, setup),
        cmocka_unit_test_setup(test_padded_ehlo_reply_scanned, setup),
        cmocka_unit_test_setup(test_line_without_lf_to_the_end, setup),
        cmocka_unit_test_setup(test_bounds_tx_rcpt_anomalies, setup),
        cmocka_unit_test_setup(test_pipeline_overflow, setup),
        cmocka_unit_test_setup(test_binary_garbage, setup),
        cmocka_unit_test_setup(test_ttl_and_ipid_shift, setup),
        cmocka_unit_test_setup(test_ttl_shift_on_replies, setup),
        cmocka_unit_test_setup(test_ipid_quiet_on_normal_stacks, setup),
        cmocka_unit_test_setup(test_gaps, setup),
        cmocka_unit_test_setup(test_end_reasons, setup),
        cmocka_unit_test_setup(test_names, setup),
        cmocka_unit_test_setup(test_facts_copy_and_vlan, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
