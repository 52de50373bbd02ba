#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# make_fallback_pcaps.py: issue 12's captures of a plaintext fallback after a
# failed STARTTLS (starttls.fallback), of AUTH without a credential
# (auth.cleartext), and of path evidence (SYN-ACK fingerprints, a greeting
# naming another client address), written deterministically into OUTDIR.
# Crafted with make_pcaps.py's TCP writer: complete connections, fixed
# timestamps, client 192.0.2.10, servers on :25. Kept apart from
# make_pcaps.py (which holds the other cases of the issue) so that the two
# can grow independently; tests/precision/CMakeLists.txt checks the committed
# copies in tests/precision/pcaps/ against what this script writes.
#
# Usage: make_fallback_pcaps.py OUTDIR [--compare DIR]
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_pcaps import (ACK, FIN, PCAP_HDR, PSH, SYN, T0, Conn, compare, csum,  # noqa: E402
                        write_pcap)

RST = 0x04
C, S = True, False
BODY = b"From: a@example.net\r\nTo: bob@example.org\r\nSubject: x\r\n\r\nhello\r\n.\r\n"


def client_hello():
    """A minimal TLS 1.2 ClientHello (one suite, no extensions)."""
    body = b"\x03\x03" + bytes(range(32)) + b"\x00" + b"\x00\x02\xc0\x2f" + b"\x01\x00"
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


TLS_ALERT = b"\x15\x03\x03\x00\x02\x02\x28"  # fatal handshake_failure


class Session(Conn):
    """A connection whose ending is chosen: FIN from the client (default),
    a reset from the server, or the client's reset 5 minutes later."""

    def __init__(self, recs, srv, cport, t0, syn_ack=None):
        Conn.__init__(self, recs, srv, cport, t0)
        self.syn_ack = syn_ack  # (ttl, window, options) of the SYN-ACK

    def open(self):
        self.seg(True, SYN)
        if self.syn_ack:
            self.syn_ack_seg(*self.syn_ack)
        else:
            self.seg(False, SYN | ACK)
        self.seg(True, ACK)

    def syn_ack_seg(self, ttl, win, opts):
        """The server's SYN-ACK with its own TTL, window and TCP options."""
        src, dst = self.srv, self.cli
        seq, ack = self.seq[False], self.seq[True]
        opts += b"\x00" * (-len(opts) % 4)
        tcp = struct.pack("!HHIIBBHHH", 25, self.cport, seq, ack, (5 + len(opts) // 4) << 4,
                          SYN | ACK, win, 0, 0) + opts
        pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
        self.ipid[False] += 1
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), self.ipid[False], 0x4000, ttl,
                         6, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        fr = bytearray(b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + tcp)
        self.t += 1000
        self.recs.append([self.t // 1000000, self.t % 1000000, len(fr), fr])
        self.seq[False] = (seq + 1) & 0xFFFFFFFF

    def steps(self, steps):
        for client, data in steps:
            self.seg(client, PSH | ACK, data)
            self.seg(not client, ACK)

    def close(self, how="fin"):
        if how == "fin":
            self.seg(True, FIN | ACK)
            self.seg(False, FIN | ACK)
            self.seg(True, ACK)
        elif how == "server-rst":
            self.seg(False, RST | ACK)
        elif how == "client-rst-late":
            self.t += 300 * SEC
            self.seg(True, RST | ACK)


def write(out, sessions):
    """sessions: [(srv, cport, t0, steps, close, syn_ack)]; the packets of all
    sessions merged in time order."""
    recs = []
    for srv, cport, t0, steps, close, syn_ack in sessions:
        s = Session(recs, srv, cport, t0, syn_ack)
        s.open()
        s.steps(steps)
        s.close(close)
    recs.sort(key=lambda r: (r[0], r[1]))
    write_pcap(out, PCAP_HDR, recs)


SEC = 1000000
BANNER = b"220 mx.example.org ESMTP\r\n"
EHLO = b"EHLO mail.example.net\r\n"
CAPS_TLS = b"250-mx.example.org\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
CAPS_PLAIN = b"250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n"


def tls_attempt(*after_hello):
    """EHLO, STARTTLS accepted, ClientHello, then what the server does."""
    return [(S, BANNER), (C, EHLO), (S, CAPS_TLS), (C, b"STARTTLS\r\n"),
            (S, b"220 2.0.0 Ready to start TLS\r\n"), (C, client_hello())] + list(after_hello)


def delivery(caps, rcpt=b"bob@example.org", banner=BANNER):
    """A whole cleartext delivery without STARTTLS."""
    return [
        (S, banner), (C, EHLO), (S, caps),
        (C, b"MAIL FROM:<alice@example.net>\r\n"), (S, b"250 2.1.0 Ok\r\n"),
        (C, b"RCPT TO:<" + rcpt + b">\r\n"), (S, b"250 2.1.5 Ok\r\n"),
        (C, b"DATA\r\n"), (S, b"354 End data with <CR><LF>.<CR><LF>\r\n"),
        (C, BODY), (S, b"250 2.0.0 Ok: queued\r\n"),
        (C, b"QUIT\r\n"), (S, b"221 2.0.0 Bye\r\n"),
    ]


def auth_session(*auth):
    """A server that offers AUTH and no STARTTLS, named by no policy."""
    return [(S, b"220 smtp.auth.example ESMTP\r\n"), (C, EHLO),
            (S, b"250-smtp.auth.example\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")] + list(auth)


def fallback_cases(out):
    p = os.path.join
    srv, srv2 = "198.51.100.25", "198.51.100.26"
    # The textbook case: STARTTLS accepted, ClientHello, a plaintext 421 and a
    # reset; 2 s later the same client delivers in clear, STARTTLS offered again.
    write(p(out, "fallback-plaintext-reply.pcap"), [
        (srv, 40001, T0, tls_attempt((S, b"421 4.7.0 TLS negotiation failed\r\n")), "server-rst",
         None),
        (srv, 40002, T0 + 2 * SEC, delivery(CAPS_TLS), "fin", None),
    ])
    # A TLS alert instead of a ServerHello; the retry gets no STARTTLS offer
    # (the server, or what answers for it, stops offering it).
    write(p(out, "fallback-tls-alert.pcap"), [
        (srv, 40001, T0, tls_attempt((S, TLS_ALERT)), "fin", None),
        (srv, 40002, T0 + 3 * SEC, delivery(CAPS_PLAIN), "fin", None),
    ])
    # The ClientHello answered by a reset.
    write(p(out, "fallback-reset.pcap"), [
        (srv, 40001, T0, tls_attempt(), "server-rst", None),
        (srv, 40002, T0 + 1 * SEC, delivery(CAPS_TLS), "fin", None),
    ])
    # Nothing answers the ClientHello: the client gives up after 5 minutes
    # (its own reset) and comes back in clear a minute later.
    write(p(out, "fallback-timeout.pcap"), [
        (srv, 40001, T0, tls_attempt(), "client-rst-late", None),
        (srv, 40002, T0 + 360 * SEC, delivery(CAPS_TLS), "fin", None),
    ])
    # The retry goes to another address of the same server name.
    write(p(out, "fallback-same-name.pcap"), [
        (srv, 40001, T0, tls_attempt((S, TLS_ALERT)), "fin", None),
        (srv2, 40002, T0 + 5 * SEC, delivery(CAPS_TLS), "fin", None),
    ])
    # The retry 11 minutes later: outside the default 10-minute window.
    write(p(out, "fallback-outside-window.pcap"), [
        (srv, 40001, T0, tls_attempt((S, TLS_ALERT)), "fin", None),
        (srv, 40002, T0 + 660 * SEC, delivery(CAPS_TLS), "fin", None),
    ])
    # AUTH LOGIN offered and started, the client answers "334 Username:" with
    # QUIT: no credential crossed. AUTH PLAIN cancelled with "*": none either.
    write(p(out, "auth-no-credential.pcap"), [
        ("198.51.100.50", 40001, T0, auth_session((C, b"AUTH LOGIN\r\n"), (S, b"334 VXNlcm5hbWU6\r\n"),
                                      (C, b"QUIT\r\n"), (S, b"221 2.0.0 Bye\r\n")), "fin", None),
        ("198.51.100.50", 40002, T0 + 1 * SEC,
         auth_session((C, b"AUTH PLAIN\r\n"), (S, b"334 \r\n"), (C, b"*\r\n"),
                      (S, b"501 5.7.0 Authentication aborted\r\n"), (C, b"QUIT\r\n"),
                      (S, b"221 2.0.0 Bye\r\n")), "fin", None),
    ])


# SYN-ACK fingerprints: (TTL, window, TCP options). The real server: Linux 7
# hops away (MSS, SACK permitted, timestamps, NOP, window scale 7); the box
# that answers in its place: another stack next door (MSS only).
SYNACK_REAL = (57, 65160, b"\x02\x04\x05\xb4\x04\x02\x08\x0a\x00\x00\x00\x01\x00\x00\x00\x01"
               b"\x01\x03\x03\x07")
SYNACK_BOX = (64, 29200, b"\x02\x04\x05\xb4")


def path_evidence_cases(out):
    p = os.path.join
    srv = "198.51.100.25"
    ehlo_proxy = (b"250-mx.example.org Hello mail.example.net [203.0.113.7]\r\n"
                  b"250-PIPELINING\r\n250 8BITMIME\r\n")
    # Session 1 learns the real server (STARTTLS offered and used, its
    # SYN-ACK); an hour later session 2's SYN-ACK comes from another stack,
    # the EHLO reply names a client address that is not the wire's (the box
    # relays the connection) and lacks STARTTLS: the strip, with both as
    # evidence.
    write(p(out, "strip-proxy-path-evidence.pcap"), [
        (srv, 40001, T0, [(S, BANNER), (C, EHLO), (S, CAPS_TLS), (C, b"STARTTLS\r\n"),
                          (S, b"220 2.0.0 Ready to start TLS\r\n"), (C, client_hello())],
         "fin", SYNACK_REAL),
        (srv, 40002, T0 + 3600 * SEC, delivery(ehlo_proxy), "fin", SYNACK_BOX),
    ])
    # The same path evidence without a strip (STARTTLS offered and used):
    # anomalies on the record, no alert.
    ehlo_proxy_tls = (b"250-mx.example.org Hello mail.example.net [203.0.113.7]\r\n"
                      b"250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
    write(p(out, "proxy-path-evidence-alone.pcap"), [
        (srv, 40001, T0, [(S, BANNER), (C, EHLO), (S, CAPS_TLS), (C, b"QUIT\r\n"),
                          (S, b"221 2.0.0 Bye\r\n")], "fin", SYNACK_REAL),
        (srv, 40002, T0 + 3600 * SEC,
         [(S, BANNER), (C, EHLO), (S, ehlo_proxy_tls), (C, b"QUIT\r\n"),
          (S, b"221 2.0.0 Bye\r\n")], "fin", SYNACK_BOX),
    ])


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    fallback_cases(out)
    path_evidence_cases(out)


if __name__ == "__main__":
    main()
    if len(sys.argv) == 4 and sys.argv[2] == "--compare":
        sys.exit(compare(sys.argv[1], sys.argv[3], "make_fallback_pcaps"))
