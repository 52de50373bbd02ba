#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# make_reasm_pcap.py: writes reasm-cases.pcap, a capture of hand-made SMTP
# connections that exercise TCP reassembly (RFC 9293): out-of-order segments,
# retransmissions, partial overlaps, sequence wrap-around, IPv6, 802.1Q,
# a segment lost from the capture, midstream pickup, RST, port reuse and an
# overlap carrying different bytes. compare_follow.py checks the streams
# against tshark like any other capture.
#
# Usage: make_reasm_pcap.py OUTPUT.pcap
import ipaddress
import os
import struct
import sys

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class Conn:
    def __init__(self, w, cli, srv, cport, sport=25, isn_c=1000, isn_s=5000, vlan=0):
        self.w, self.vlan = w, vlan
        self.cli, self.srv = ipaddress.ip_address(cli), ipaddress.ip_address(srv)
        self.cport, self.sport = cport, sport
        self.isn = {True: isn_c, False: isn_s}

    def seg(self, from_client, flags, rel_seq, rel_ack, data=b""):
        """rel_seq/rel_ack are relative to each side's ISN (1 = first byte)."""
        seq = (self.isn[from_client] + rel_seq) & 0xFFFFFFFF
        ack = (self.isn[not from_client] + rel_ack) & 0xFFFFFFFF if flags & ACK else 0
        src, dst = (self.cli, self.srv) if from_client else (self.srv, self.cli)
        sp, dp = (self.cport, self.sport) if from_client else (self.sport, self.cport)
        tcp = struct.pack("!HHIIBBHHH", sp, dp, seq, ack, 5 << 4, flags, 65535, 0, 0) + data
        if src.version == 4:
            pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, 6, len(tcp))
        else:
            pseudo = src.packed + dst.packed + struct.pack("!IxxxB", len(tcp), 6)
        tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
        if src.version == 4:
            self.w.ip_id += 1
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), self.w.ip_id, 0, 64, 6, 0,
                             src.packed, dst.packed)
            ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
            etype = 0x0800
        else:
            ip = struct.pack("!IHBB16s16s", 6 << 28, len(tcp), 6, 64, src.packed, dst.packed)
            etype = 0x86DD
        eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01"
        if self.vlan:
            eth += struct.pack("!HH", 0x8100, self.vlan)
        eth += struct.pack("!H", etype)
        self.w.frame(eth + ip + tcp)

    def handshake(self):
        self.seg(True, SYN, 0, 0)
        self.seg(False, SYN | ACK, 0, 1)
        self.seg(True, ACK, 1, 1)


class Writer:
    def __init__(self, path):
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        self.t = 1700000000 * 1000000
        self.ip_id = 0

    def frame(self, b):
        self.t += 1000
        self.f.write(struct.pack("<IIII", self.t // 1000000, self.t % 1000000, len(b), len(b)))
        self.f.write(b)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_reasm_pcap.py OUTPUT.pcap")
    os.makedirs(os.path.dirname(os.path.abspath(sys.argv[1])), exist_ok=True)
    w = Writer(sys.argv[1])
    C, S = True, False

    # 1. out of order: client segments sent 3, 1, 2
    c = Conn(w, "192.0.2.10", "198.51.100.25", 40001)
    c.handshake()
    c.seg(S, ACK | PSH, 1, 1, b"220 mx.example.org ESMTP\r\n")
    c.seg(C, ACK | PSH, 17, 27, b".net\r\n")
    c.seg(C, ACK, 1, 27, b"EHLO out")
    c.seg(C, ACK, 9, 27, b".example")
    c.seg(S, ACK | PSH, 27, 23, b"250 mx.example.org\r\n")
    c.seg(C, ACK | FIN, 23, 47)
    c.seg(S, ACK | FIN, 47, 24)
    c.seg(C, ACK, 24, 48)

    # 2. retransmissions: identical copy, then a copy that also carries new bytes
    c = Conn(w, "192.0.2.10", "198.51.100.25", 40002)
    c.handshake()
    c.seg(S, ACK | PSH, 1, 1, b"220 ready\r\n")
    c.seg(C, ACK | PSH, 1, 12, b"HELO a\r\n")
    c.seg(C, ACK | PSH, 1, 12, b"HELO a\r\n")
    c.seg(C, ACK | PSH, 1, 12, b"HELO a\r\nNOOP\r\n")
    c.seg(S, ACK | PSH, 12, 15, b"250 hi\r\n250 ok\r\n")
    c.seg(S, ACK | PSH, 20, 15, b"250 ok\r\n")  # partial retransmission
    c.seg(C, ACK | PSH, 15, 28, b"QUIT\r\n")
    c.seg(S, ACK | PSH, 28, 21, b"221 bye\r\n")
    c.seg(S, ACK | FIN, 37, 21)
    c.seg(C, ACK | FIN, 21, 38)
    c.seg(S, ACK, 38, 22)

    # 3. sequence numbers wrap around 2^32 in both directions
    c = Conn(w, "192.0.2.10", "198.51.100.25", 40003, isn_c=0xFFFFFFF0, isn_s=0xFFFFFFFA)
    c.handshake()
    c.seg(S, ACK | PSH, 1, 1, b"220 wrap\r\n")
    c.seg(C, ACK | PSH, 1, 11, b"EHLO wrap.example\r\n")
    c.seg(S, ACK | PSH, 11, 20, b"250 ok\r\n")
    c.seg(C, ACK | FIN, 20, 19)
    c.seg(S, ACK | FIN, 19, 21)
    c.seg(C, ACK, 21, 20)

    # 4. IPv6, out-of-order server reply
    c = Conn(w, "2001:db8::10", "2001:db8::25", 40004)
    c.handshake()
    c.seg(S, ACK | PSH, 6, 1, b" v6 ESMTP\r\n")
    c.seg(S, ACK, 1, 1, b"220 x")
    c.seg(C, ACK | PSH, 1, 17, b"QUIT\r\n")
    c.seg(S, ACK | FIN, 17, 7)
    c.seg(C, ACK | FIN, 7, 18)
    c.seg(S, ACK, 18, 8)

    # 5. 802.1Q VLAN 42
    c = Conn(w, "192.0.2.11", "198.51.100.25", 40005, vlan=42)
    c.handshake()
    c.seg(S, ACK | PSH, 1, 1, b"220 vlan\r\n")
    c.seg(C, ACK | PSH, 1, 11, b"QUIT\r\n")
    c.seg(S, ACK | FIN, 11, 7)
    c.seg(C, ACK | FIN, 7, 12)

    # 6. a client segment lost from the capture, ACKed by the server
    c = Conn(w, "192.0.2.10", "198.51.100.25", 40006)
    c.handshake()
    c.seg(S, ACK | PSH, 1, 1, b"220 ready\r\n")
    c.seg(C, ACK, 1, 12, b"MAIL FROM:<a@")
    # bytes 14..25 "example.org>" never captured
    c.seg(C, ACK | PSH, 26, 12, b"\r\n")
    c.seg(S, ACK | PSH, 12, 28, b"250 ok\r\n")
    c.seg(C, ACK | FIN, 28, 20)
    c.seg(S, ACK | FIN, 20, 29)

    # 7. midstream: the capture starts in the middle of a session
    c = Conn(w, "192.0.2.12", "198.51.100.25", 40007, isn_c=70000, isn_s=90000)
    c.seg(S, ACK | PSH, 1, 1, b"250 2.1.0 ok\r\n")
    c.seg(C, ACK | PSH, 1, 15, b"RCPT TO:<b@example.net>\r\n")
    c.seg(S, ACK | PSH, 15, 26, b"250 2.1.5 ok\r\n")

    # 8. reset in the middle of the conversation
    c = Conn(w, "192.0.2.10", "198.51.100.25", 40008)
    c.handshake()
    c.seg(S, ACK | PSH, 1, 1, b"220 ready\r\n")
    c.seg(C, ACK | PSH, 1, 12, b"EHLO a\r\n")
    c.seg(S, ACK | RST, 12, 9)

    # 9. port reuse: the same ports again after a clean close
    for n in range(2):
        c = Conn(w, "192.0.2.10", "198.51.100.25", 40009, isn_c=1000 + n * 100000)
        c.handshake()
        c.seg(S, ACK | PSH, 1, 1, b"220 conn %d\r\n" % n)
        c.seg(C, ACK | FIN, 1, 13)
        c.seg(S, ACK | FIN, 13, 2)
        c.seg(C, ACK, 2, 14)

    # 10. an overlap that carries different bytes (first copy wins)
    c = Conn(w, "192.0.2.10", "198.51.100.25", 40010)
    c.handshake()
    c.seg(S, ACK | PSH, 5, 1, b"STARTTLS\r\n")  # queued first
    c.seg(S, ACK | PSH, 1, 1, b"250-XXXXXXXA\r\n")  # overlaps with other bytes
    c.seg(C, ACK | FIN, 1, 15)
    c.seg(S, ACK | FIN, 15, 2)
    c.seg(C, ACK, 2, 16)
    w.f.close()


if __name__ == "__main__":
    main()
