#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# make_pcaps.py: the captures of issue 12 (precision on real traffic), written
# deterministically into OUTDIR. Two kinds:
#  - derived from real captures (pcaps/): only the IPv4 TTL of chosen server
#    packets is changed (IP header checksum recomputed; the TCP checksum does
#    not cover the TTL), everything else is the real traffic;
#  - crafted SMTP dialogues (complete TCP connections, fixed timestamps) for
#    the parser cases no shipped capture holds: a malformed BDAT pipelined
#    before a transaction, an Exchange 2003 EHLO reply masked by an
#    ESMTP-inspection box, a padded EHLO reply with STARTTLS stripped;
#    recipients whose enforce domain comes late in RCPT order (21st, and
#    past the 128 recipients a record keeps), a nested MAIL refused with
#    503, RCPT and DATA after a completed transaction, a multi-line reply
#    that changes code, a 4 KB HELO argument;
#  - one-sided and cut captures: a shipped capture with only the client's
#    packets or only the server's (asymmetric routing), and a crafted one
#    that begins after MAIL FROM (DATA without a visible MAIL FROM).
# tests/precision/CMakeLists.txt checks that the committed copies in
# tests/precision/pcaps/ are what this script writes.
#
# Usage: make_pcaps.py SOURCE_DIR OUTDIR [--compare DIR]
#   --compare DIR: then fail (exit 1, naming the file) unless every capture
#   written equals the one of the same name in DIR.
import filecmp
import os
import struct
import sys

FIN, SYN, PSH, ACK = 0x01, 0x02, 0x08, 0x10


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def read_pcap(path):
    d = open(path, "rb").read()
    assert struct.unpack("<I", d[:4])[0] == 0xA1B2C3D4, path
    hdr, off, recs = d[:24], 24, []
    while off < len(d):
        ts, us, cl, ln = struct.unpack("<IIII", d[off:off + 16])
        recs.append([ts, us, ln, bytearray(d[off + 16:off + 16 + cl])])
        off += 16 + cl
    return hdr, recs


def write_pcap(path, hdr, recs):
    with open(path, "wb") as f:
        f.write(hdr)
        for ts, us, ln, fr in recs:
            f.write(struct.pack("<IIII", ts, us, len(fr), ln) + bytes(fr))


def set_ttl(fr, ttl):
    assert fr[12:14] == b"\x08\x00"
    fr[22] = ttl
    fr[24:26] = b"\0\0"
    fr[24:26] = struct.pack("!H", csum(bytes(fr[14:34])))


def derive(src, out, server, ttl_of):
    """ttl_of(frame_number) -> new TTL for the server's packets, or None."""
    hdr, recs = read_pcap(src)
    srv = bytes(int(x) for x in server.split("."))
    for i, r in enumerate(recs, 1):
        fr = r[3]
        if fr[12:14] == b"\x08\x00" and bytes(fr[26:30]) == srv:
            t = ttl_of(i)
            if t is not None:
                set_ttl(fr, t)
    write_pcap(out, hdr, recs)


class Conn:
    """One crafted TCP connection, client 192.0.2.10 to a server on :25."""

    def __init__(self, recs, srv, cport, t0):
        self.recs, self.t = recs, t0
        self.cli, self.srv = bytes([192, 0, 2, 10]), bytes(int(x) for x in srv.split("."))
        self.cport, self.seq = cport, {True: 1000, False: 5000}
        self.ipid = {True: 100, False: 7000}

    def seg(self, client, flags, data=b""):
        src, dst = (self.cli, self.srv) if client else (self.srv, self.cli)
        sp, dp = (self.cport, 25) if client else (25, self.cport)
        seq, ack = self.seq[client], self.seq[not client]
        tcp = struct.pack("!HHIIBBHHH", sp, dp, seq, ack if flags & ACK else 0, 5 << 4, flags,
                          65535, 0, 0) + data
        pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
        self.ipid[client] += 1
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), self.ipid[client], 0x4000,
                         64 if client else 57, 6, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        eth = b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00"
        fr = bytearray(eth + ip + tcp)
        self.t += 1000
        self.recs.append([self.t // 1000000, self.t % 1000000, len(fr), fr])
        self.seq[client] = (seq + len(data) + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF

    def dialogue(self, steps):
        self.seg(True, SYN)
        self.seg(False, SYN | ACK)
        self.seg(True, ACK)
        for client, data in steps:
            self.seg(client, PSH | ACK, data)
            self.seg(not client, ACK)
        self.seg(True, FIN | ACK)
        self.seg(False, FIN | ACK)
        self.seg(True, ACK)


PCAP_HDR = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
T0 = 1795342800 * 1000000  # 2026-11-22T10:20:00Z: pcaps/policies.json in force


def crafted(out, srv, steps):
    recs = []
    Conn(recs, srv, 40001, T0).dialogue(steps)
    write_pcap(out, PCAP_HDR, recs)
    return recs


def one_side(src, out, ip):
    """Only the packets sent from ip (IPv4), as a tap on one path sees them."""
    hdr, recs = read_pcap(src)
    a = bytes(int(x) for x in ip.split("."))
    write_pcap(out, hdr, [r for r in recs if r[3][12:14] == b"\x08\x00" and bytes(r[3][26:30]) == a])


def rcpts(domains):
    """A RCPT TO and its 250 for each domain, one step each."""
    steps = []
    for i, d in enumerate(domains):
        steps.append((C, b"RCPT TO:<u%d@%s>\r\n" % (i, d.encode())))
        steps.append((S, b"250 2.1.5 Ok\r\n"))
    return steps


def plain_delivery(domains, before=(), mail=None):
    """A delivery in clear to domains, STARTTLS not offered (stripped)."""
    return [
        (S, b"220 mx.example.org ESMTP\r\n"),
        (C, b"EHLO mail.example.net\r\n"),
        (S, b"250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n"),
    ] + list(before) + [
        (C, mail or b"MAIL FROM:<alice@example.net>\r\n"),
        (S, b"250 2.1.0 Ok\r\n"),
    ] + rcpts(domains) + [
        (C, b"DATA\r\n"),
        (S, b"354 End data with <CR><LF>.<CR><LF>\r\n"),
        (C, BODY),
        (S, b"250 2.0.0 Ok: queued\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 2.0.0 Bye\r\n"),
    ]


C, S = True, False
BODY = b"From: a@example.net\r\nTo: bob@example.org\r\nSubject: x\r\n\r\nhello\r\n.\r\n"

EXCHANGE = (b"250-mail.masked.example Hello [192.0.2.10]\r\n250-XXXA\r\n250-SIZE\r\n250-ETRN\r\n"
            b"250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250-8bitmime\r\n"
            b"250-BINARYMIME\r\n250-XXXXXXXB\r\n250-XXXC\r\n250-XXXXXXXXXXXXXXXXXXXXXXXD\r\n"
            b"250-XXXXXXXXXXXE\r\n250-AUTH GSSAPI NTLM LOGIN\r\n250-XXXXXXXXXF\r\n"
            b"250-XXXXXXXXXXXG\r\n250-XXXXXXH\r\n250 XI\r\n")


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    p = os.path.join
    # A real MTA-to-MTA session (STARTTLS offered, not used): its server's
    # packets lose one hop after the message was accepted (route noise).
    derive(p(src, "pcaps/third-party/arkime/smtp-originating.pcap"),
           p(out, "originating-ttl-one-hop-late.pcap"), "10.0.0.6",
           lambda i: 63 if i >= 18 else None)
    # ... and one hop from the EHLO reply on (a route change there).
    derive(p(src, "pcaps/third-party/arkime/smtp-originating.pcap"),
           p(out, "originating-ttl-one-hop-ehlo.pcap"), "10.0.0.6",
           lambda i: 63 if i >= 7 else None)
    # The strip of mitm-strip-sender-side with the real server 7 hops away
    # (SYN-ACK and banner at TTL 57) and the man in the middle answering from
    # the EHLO reply on (TTL 64, another host).
    derive(p(src, "pcaps/mitm-strip-sender-side.pcap"),
           p(out, "strip-ttl-shift-ehlo-reply.pcap"), "198.51.100.25",
           lambda i: 57 if i < 7 else None)
    # Issue 12: BDAT 5 X, MAIL, RCPT, DATA in one segment; 501, 250, 250, 354;
    # the message goes in clear to example.org (enforce in pcaps/policies.json).
    crafted(p(out, "bdat-malformed-pipelined.pcap"), "198.51.100.25", [
        (S, b"220 mx.example.org ESMTP\r\n"),
        (C, b"EHLO mail.example.net\r\n"),
        (S, b"250-mx.example.org\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME\r\n"),
        (C, b"BDAT 5 X\r\nMAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"),
        (S, b"501 5.5.4 Syntax: BDAT count [LAST]\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
            b"354 End data with <CR><LF>.<CR><LF>\r\n"),
        (C, BODY),
        (S, b"250 2.0.0 Ok: queued\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 2.0.0 Bye\r\n"),
    ])
    # Microsoft ESMTP 6.0 (Exchange 2003) behind an ESMTP-inspection box.
    crafted(p(out, "exchange2003-masked-extensions.pcap"), "198.51.100.40", [
        (S, b"220 mail.masked.example Microsoft ESMTP MAIL Service, Version: 6.0.3790.4675 "
            b"ready at  Sun, 22 Nov 2026 10:20:00 +0000\r\n"),
        (C, b"EHLO mail.example.net\r\n"),
        (S, EXCHANGE),
        (C, b"MAIL FROM:<alice@example.net>\r\n"),
        (S, b"250 2.1.0 alice@example.net....Sender OK\r\n"),
        (C, b"RCPT TO:<bob@masked.example>\r\n"),
        (S, b"250 2.1.5 bob@masked.example\r\n"),
        (C, b"DATA\r\n"),
        (S, b"354 Start mail input; end with <CRLF>.<CRLF>\r\n"),
        (C, BODY),
        (S, b"250 2.6.0 Queued mail for delivery\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 2.0.0 closing\r\n"),
    ])
    # STARTTLS stripped, the reply padded to 80 capability lines; the
    # recipient's domain example.org publishes enforce naming mx.example.org.
    pad = b"".join(b"250-X-PADDING-%02d\r\n" % i for i in range(78))
    crafted(p(out, "padded-ehlo-strip.pcap"), "198.51.100.25", [
        (S, b"220 mx.example.org ESMTP\r\n"),
        (C, b"EHLO mail.example.net\r\n"),
        (S, b"250-mx.example.org\r\n250-PIPELINING\r\n" + pad + b"250 8BITMIME\r\n"),
        (C, b"MAIL FROM:<alice@example.net>\r\n"),
        (S, b"250 2.1.0 Ok\r\n"),
        (C, b"RCPT TO:<bob@example.org>\r\n"),
        (S, b"250 2.1.5 Ok\r\n"),
        (C, b"DATA\r\n"),
        (S, b"354 End data with <CR><LF>.<CR><LF>\r\n"),
        (C, BODY),
        (S, b"250 2.0.0 Ok: queued\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 2.0.0 Bye\r\n"),
    ])

    # Issue 12 item 3: the enforce domain example.org named 21st, after 20
    # decoy domains (the sensor used to consult 16 per session) ...
    decoys = ["decoy%02d.example" % i for i in range(20)]
    crafted(p(out, "recipients-enforce-21st.pcap"), "198.51.100.25",
            plain_delivery(decoys + ["example.org"]))
    # ... and 141st, past the 128 recipients a record keeps.
    many = ["decoy%02d.example" % (i % 20) for i in range(140)]
    crafted(p(out, "recipients-enforce-past-kept.pcap"), "198.51.100.25",
            plain_delivery(many + ["example.org"]))
    # Item 4: a nested MAIL refused with 503 opens no transaction: the
    # accepted sender keeps the RCPT and the message sent in clear.
    crafted(p(out, "nested-mail-503.pcap"), "198.51.100.25", [
        (S, b"220 mx.example.org ESMTP\r\n"),
        (C, b"EHLO mail.example.net\r\n"),
        (S, b"250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n"),
        (C, b"MAIL FROM:<alice@example.net>\r\nMAIL FROM:<eve@example.com>\r\n"
            b"RCPT TO:<bob@example.org>\r\nDATA\r\n"),
        (S, b"250 2.1.0 Ok\r\n503 5.5.1 Error: nested MAIL command\r\n250 2.1.5 Ok\r\n"
            b"354 End data with <CR><LF>.<CR><LF>\r\n"),
        (C, BODY),
        (S, b"250 2.0.0 Ok: queued\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 2.0.0 Bye\r\n"),
    ])
    # RCPT and DATA after the transaction completed, both answered 503: the
    # completed transaction keeps its 250.
    crafted(p(out, "after-transaction-503.pcap"), "198.51.100.25",
            plain_delivery(["example.org"])[:-2] + [
                (C, b"RCPT TO:<carol@example.org>\r\nDATA\r\n"),
                (S, b"503 5.5.1 Error: need MAIL command\r\n503 5.5.1 Error: need RCPT command\r\n"),
                (C, b"QUIT\r\n"),
                (S, b"221 2.0.0 Bye\r\n"),
            ])
    # A lone "250-" EHLO reply line followed by a 502 line (another code):
    # two replies; the MAIL, RCPT and DATA replies keep their commands.
    steps = plain_delivery(["example.org"])
    steps[2:3] = [
        (S, b"250-mx.example.org\r\n"),
        (C, b"HELP\r\n"),
        (S, b"502 5.5.2 Error: command not recognized\r\n"),
    ]
    crafted(p(out, "reply-code-change.pcap"), "198.51.100.25", steps)
    # A 4,000-byte HELO argument (kept cut at 255 bytes, said so).
    crafted(p(out, "helo-4k.pcap"), "198.51.100.25", [
        (S, b"220 mx.example.org ESMTP\r\n"),
        (C, b"HELO " + b"h" * 4000 + b"\r\n"),
        (S, b"250 mx.example.org\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 2.0.0 Bye\r\n"),
    ])
    # A capture that begins after MAIL FROM and RCPT: DATA without a
    # visible MAIL FROM, the message in clear (cut from a whole session).
    whole = crafted(p(out, "tmp-whole.pcap"), "198.51.100.25", plain_delivery(["example.org"]))
    os.remove(p(out, "tmp-whole.pcap"))
    at = next(i for i, r in enumerate(whole) if r[3][54:60] == b"DATA\r\n")
    write_pcap(p(out, "capture-starts-at-data.pcap"), PCAP_HDR, whole[at:])
    # The shipped strip capture seen from one side only.
    one_side(p(src, "pcaps/mitm-strip-sender-side.pcap"), p(out, "strip-client-side-only.pcap"),
             "192.0.2.10")
    one_side(p(src, "pcaps/mitm-strip-sender-side.pcap"), p(out, "strip-server-side-only.pcap"),
             "198.51.100.25")
    decoder_findings(out)
    overlap_decoys(out)


# ---- decoder findings: AUTH, HELO then EHLO, overlapping copies ----------
def decoder_findings(out):
    p = os.path.join
    # HELO answered 250, then EHLO whose reply gives the capabilities: the
    # record names the EHLO and its host (was: HELO and the HELO's host).
    crafted(p(out, "helo-then-ehlo.pcap"), "198.51.100.25", [
        (S, b"220 mx.example.org ESMTP\r\n"),
        (C, b"HELO old.example.net\r\n"),
        (S, b"250 mx.example.org\r\n"),
    ] + plain_delivery(["example.org"])[1:])
    # AUTH LOGIN, then a delivery in clear, seen from the client's side only
    # (asymmetric routing): the exchange ends after the two lines LOGIN
    # takes; the MAIL, RCPT and message are a transaction (was: swallowed
    # as credentials, no transaction).
    steps = plain_delivery(["example.org"])
    steps[3:3] = [
        (C, b"AUTH LOGIN\r\n"),
        (S, b"334 VXNlcm5hbWU6\r\n"),
        (C, b"YWxpY2U=\r\n"),
        (S, b"334 UGFzc3dvcmQ6\r\n"),
        (C, b"c2VjcmV0\r\n"),
        (S, b"235 2.7.0 Authentication successful\r\n"),
    ]
    crafted(p(out, "tmp-auth.pcap"), "198.51.100.25", steps)
    one_side(p(out, "tmp-auth.pcap"), p(out, "auth-login-client-side-only.pcap"), "192.0.2.10")
    os.remove(p(out, "tmp-auth.pcap"))
# ---- end of decoder findings ---------------------------------------------


# ---- overlapping copies: a decoy segment at a reused sequence number ------
def copies_dialogue(conn, steps):
    """Conn.dialogue, where a step ("copies", first, second, decoy) sends two
    server segments at the same sequence number, one after the other, before
    the client's ACK; the decoy (index 0 or 1) carries a wrong TCP checksum
    (the client's stack drops it; the sensor checks none), the other is the
    real reply, which the sequence numbers follow."""
    conn.seg(True, SYN)
    conn.seg(False, SYN | ACK)
    conn.seg(True, ACK)
    for step in steps:
        if step[0] == "copies":
            copies, decoy = step[1:3], step[3]
            assert len(copies[0]) == len(copies[1])
            at = conn.seq[S]
            for i, data in enumerate(copies):
                conn.seq[S] = at
                conn.seg(S, PSH | ACK, data)
                if i == decoy:
                    fr = conn.recs[-1][3]
                    fr[50:52] = bytes([fr[50] ^ 0xFF, fr[51]])  # TCP checksum, wrong
            conn.seg(C, ACK)
            continue
        client, data = step
        conn.seg(client, PSH | ACK, data)
        conn.seg(not client, ACK)
    conn.seg(True, FIN | ACK)
    conn.seg(False, FIN | ACK)
    conn.seg(True, ACK)


def overlap_decoys(out):
    p = os.path.join
    # Issue 12: the real EHLO reply is stripped (no STARTTLS); a decoy of the
    # same length offering STARTTLS, with a wrong checksum, comes at the same
    # sequence number, ahead of it or behind it (both before the client's
    # ACK). The delivery that follows goes in clear to example.org (enforce
    # in pcaps/policies.json, naming mx.example.org).
    real = b"250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
    decoy = b"250-mx.example.org\r\n250-STARTTLS\r\n250 PIPELINING\r\n"
    for name, copies, at in (("overlap-decoy-starttls-first.pcap", (decoy, real), 0),
                             ("overlap-decoy-starttls-second.pcap", (real, decoy), 1)):
        steps = plain_delivery(["example.org"])
        steps[2] = ("copies",) + copies + (at,)
        recs = []
        copies_dialogue(Conn(recs, "198.51.100.25", 40001, T0), steps)
        write_pcap(p(out, name), PCAP_HDR, recs)
# ---- end of overlapping copies --------------------------------------------


def compare(out, ref, who):
    """1 (each named) when a capture written to out differs from its
    committed copy in ref, else 0."""
    bad = 0
    for name in sorted(os.listdir(out)):
        r = os.path.join(ref, name)
        if not os.path.exists(r) or not filecmp.cmp(os.path.join(out, name), r, shallow=False):
            print("%s: %s: differs from what the script writes" % (who, r))
            bad = 1
    return bad


if __name__ == "__main__":
    main()
    if len(sys.argv) == 5 and sys.argv[3] == "--compare":
        sys.exit(compare(sys.argv[2], sys.argv[4], "make_pcaps"))
