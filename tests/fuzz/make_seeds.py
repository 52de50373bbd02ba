#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# make_seeds.py: writes the committed seed inputs of the fuzz targets from
# the shipped captures (pcaps/*.pcap, and the overlap captures of
# tests/precision/pcaps for fuzz_flow) and files (pcaps/policies.json,
# tests/golden_alerts/policies-*.json), in each target's input format
# (described at the top of each fuzz_*.c). Deterministic: running it again
# rewrites the same bytes. Usage: python3 tests/fuzz/make_seeds.py [--check]
# (--check: write them into a temporary folder instead and fail, naming each,
# when a committed seed differs from what its source makes today)
import filecmp
import glob
import json
import os
import struct
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SEEDS = os.path.join(ROOT, "tests", "fuzz", "seeds")
PKT_SEEDS = os.path.join(ROOT, "tests", "pkt", "fuzz-seeds")
FLOW_SEEDS = os.path.join(ROOT, "tests", "flow", "fuzz-seeds")
SMTP_PORTS = (25, 465, 587, 2525)
MAX_SEED = 16384


def out(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def read_pcap(path):
    """(linktype, [(sec, usec, frame)]) of a classic little-endian pcap."""
    b = open(path, "rb").read()
    magic, _, _, _, _, _, dlt = struct.unpack("<IHHiIII", b[:24])
    if magic != 0xA1B2C3D4:
        sys.exit("%s: not a little-endian microsecond pcap" % path)
    pkts, o = [], 24
    while o + 16 <= len(b):
        sec, usec, caplen, _ = struct.unpack("<IIII", b[o:o + 16])
        pkts.append((sec, usec, b[o + 16:o + 16 + caplen]))
        o += 16 + caplen
    return dlt, pkts


def tcp_of(frame):
    """(src, dst, sport, dport, seq, ack, flags, payload) of an Ethernet
    IPv4/IPv6 TCP frame, or None."""
    o, et = 14, struct.unpack(">H", frame[12:14])[0]
    while et in (0x8100, 0x88A8):
        et = struct.unpack(">H", frame[o + 2:o + 4])[0]
        o += 4
    if et == 0x0800:
        ihl = (frame[o] & 15) * 4
        if frame[o + 9] != 6:
            return None
        total = struct.unpack(">H", frame[o + 2:o + 4])[0]
        src, dst, t, end = frame[o + 12:o + 16], frame[o + 16:o + 20], o + ihl, o + total
    elif et == 0x86DD:
        if frame[o + 6] != 6:
            return None
        plen = struct.unpack(">H", frame[o + 4:o + 6])[0]
        src, dst, t, end = frame[o + 8:o + 24], frame[o + 24:o + 40], o + 40, o + 40 + plen
    else:
        return None
    sport, dport, seq, ack, off = struct.unpack(">HHIIB", frame[t:t + 13])
    flags = frame[t + 13]
    return src, dst, sport, dport, seq, ack, flags, frame[t + (off >> 4) * 4:end]


def connections(pkts):
    """{key: [(ts_sec, from_client, tcp tuple)]} in capture order; the client
    sent the SYN, else it is the side not on an SMTP port."""
    conns, order = {}, []
    for sec, usec, fr in pkts:
        t = tcp_of(fr)
        if not t:
            continue
        src, dst, sport, dport = t[:4]
        key = tuple(sorted([(src, sport), (dst, dport)]))
        if key not in conns:
            syn = t[6] & 0x12 == 0x02
            client = (src, sport) if syn or dport in SMTP_PORTS else (dst, dport)
            conns[key] = {"client": client, "pkts": []}
            order.append(key)
        c = conns[key]
        c["pkts"].append((sec + usec / 1e6, (src, sport) == c["client"], t))
    return [conns[k] for k in order]


def streams(conn):
    """Both directions' payload in sequence order (retransmissions dropped)."""
    isn, data = {}, {True: {}, False: {}}
    for _, fc, t in conn["pkts"]:
        seq, flags, pl = t[4], t[6], t[7]
        if flags & 0x02:
            isn[fc] = seq + 1
        elif fc not in isn:
            isn[fc] = seq
        if pl:
            data[fc].setdefault((seq - isn[fc]) & 0xFFFFFFFF, pl)
    res = {}
    for fc in (True, False):
        b, want = b"", 0
        for off in sorted(data[fc]):
            if off == want:
                b += data[fc][off]
                want += len(data[fc][off])
        res[fc] = b
    return res


# ---- fuzz_pkt: DLT index byte (0: Ethernet), frames split at "|~|" ----
def seed_pkt(name, pkts):
    frames = [fr for _, _, fr in pkts if b"|~|" not in fr]
    body = b""
    for fr in frames:
        if len(body) + len(fr) + 3 > MAX_SEED:
            break
        body += (b"|~|" if body else b"") + fr
    out(PKT_SEEDS, name, b"\x00" + body)


# ---- fuzz_flow: flags byte, then [ctl][flags][seq16][ack16][len] records ----
def seed_flow(name, pkts):
    conns = connections(pkts)[:4]
    recs, prev = [], None
    events = []
    for idx, c in enumerate(conns):
        isn = {}
        for ts, fc, t in c["pkts"]:
            events.append((ts, idx, fc, t, isn))
    events.sort(key=lambda e: e[0])
    for ts, idx, fc, t, isn in events:
        seq, ack, flags, pl = t[4], t[5], t[6], t[7]
        if fc not in isn:
            isn[fc] = seq
        if (not fc) not in isn and flags & 0x10:
            isn[not fc] = ack - (1 if flags & 0x02 == 0 else 0)
        step = 0 if prev is None else min(15, int(ts - prev))
        prev = ts
        rseq = (seq - isn[fc]) & 0xFFFFFFFF
        rack = (ack - isn.get(not fc, ack)) & 0xFFFFFFFF if flags & 0x10 else 0
        chunks = [pl[i:i + 255] for i in range(0, len(pl), 255)] or [b""]
        for k, ch in enumerate(chunks):
            ctl = (1 if fc else 0) | (idx << 1) | ((step if k == 0 else 0) << 4)
            recs.append(struct.pack("<BBHHB", ctl, flags & 0x1F, rseq & 0xFFFF, rack & 0xFFFF,
                                    len(ch)) + ch)
            rseq += len(ch)
    body = b""
    for r in recs:
        if len(body) + len(r) > MAX_SEED:
            break
        body += r
    out(FLOW_SEEDS, name, b"\x01" + body)


# ---- pcapng: SHB, IDBs, EPBs ----
def ng_block(btype, body):
    body += b"\x00" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def pcapng(pkts, linktypes=(1,), nsec=False):
    shb = ng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idbs = b""
    for lt in linktypes:
        opts = struct.pack("<HHB3x", 9, 1, 9 if nsec else 6) + struct.pack("<HH", 0, 0)
        idbs += ng_block(1, struct.pack("<HHI", lt, 0, 262144) + opts)
    epbs = b""
    for i, (sec, usec, fr) in enumerate(pkts):
        t = sec * (10**9 if nsec else 10**6) + usec * (1000 if nsec else 1)
        ifid = i % len(linktypes)
        if linktypes[ifid] == 101:  # raw IP: strip the Ethernet header
            fr = fr[14:]
        epbs += ng_block(6, struct.pack("<IIIII", ifid, t >> 32, t & 0xFFFFFFFF, len(fr), len(fr)) + fr)
    return shb + idbs + epbs


def pcap_bytes(pkts, swapped=False, nsec=False):
    e = ">" if swapped else "<"
    b = struct.pack(e + "IHHiIII", 0xA1B23C4D if nsec else 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    for sec, usec, fr in pkts:
        b += struct.pack(e + "IIII", sec, usec * 1000 if nsec else usec, len(fr), len(fr)) + fr
    return b


# ---- fuzz_ndpi_smtp / fuzz_tls / fuzz_x509 ----
def segments(conn):
    """Payload segments in capture order: (from_client, bytes)."""
    return [(fc, t[7]) for _, fc, t in conn["pkts"] if t[7]]


def seed_ndpi(name, conn, port_index):
    body = b""
    for fc, pl in segments(conn):
        if b"\xff" in pl or len(body) + len(pl) > MAX_SEED:
            break
        body += bytes([0 if fc else 1]) + pl + b"\xff"
    out(os.path.join(SEEDS, "fuzz_ndpi_smtp"), name, bytes([port_index]) + body)


def tls_after_starttls(conn):
    """Both directions' bytes from the first TLS record on, or None."""
    s = streams(conn)
    c, sv = s[True], s[False]
    ci = c.find(b"\x16\x03")
    si = sv.find(b"\x16\x03")
    if ci < 0 or si < 0:
        return None
    return c[ci:], sv[si:]


def seed_tls(name, cbytes, sbytes):
    body = b""
    for fc, b in ((0, cbytes[:4096]), (1, sbytes[:8192]), (0, cbytes[4096:6144])):
        for i in range(0, len(b), 1400):
            ch = b[i:i + 1400]
            body += bytes([fc]) + struct.pack("<H", len(ch)) + ch
    out(os.path.join(SEEDS, "fuzz_tls"), name, body)


def first_certificate(sbytes):
    """The first DER certificate of a TLS <= 1.2 Certificate message."""
    hs, o = b"", 0
    while o + 5 <= len(sbytes):
        ctype, _, n = struct.unpack(">BHH", sbytes[o:o + 5])
        if ctype == 22:
            hs += sbytes[o + 5:o + 5 + n]
        o += 5 + n
    o = 0
    while o + 4 <= len(hs):
        mt, n = hs[o], int.from_bytes(hs[o + 1:o + 4], "big")
        if mt == 11:
            m = hs[o + 4:o + 4 + n]
            clen = int.from_bytes(m[3:6], "big")
            return m[6:6 + clen]
        o += 4 + n
    return None


def main():
    # the reassembler's overlap judging (decoy copies of the EHLO reply)
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "precision", "pcaps",
                                              "overlap-*.pcap"))):
        seed_flow(os.path.basename(path)[:-5], read_pcap(path)[1])
    for path in sorted(glob.glob(os.path.join(ROOT, "pcaps", "*.pcap"))):
        name = os.path.basename(path)[:-5]
        dlt, pkts = read_pcap(path)
        seed_pkt(name, pkts)
        seed_flow(name, pkts)
        conns = connections(pkts)
        if conns and name.startswith(("postfix", "mitm-strip", "submission-auth-plain")):
            seed_ndpi(name, conns[0], len(name) % 8)
        for c in conns:
            tls = tls_after_starttls(c)
            if tls and name in ("postfix-tls12-certificate", "postfix-postfix-starttls-tls13",
                                "postfix-exim-starttls"):
                seed_tls(name, *tls)
                cert = first_certificate(tls[1])
                if cert:
                    out(os.path.join(SEEDS, "fuzz_x509"), name + ".der", cert)
                break
        if name in ("postfix-tls12-certificate", "mitm-strip-sender-side",
                    "postfix-several-messages"):
            cap = os.path.join(SEEDS, "fuzz_capture")
            out(cap, name + ".pcap", pcap_bytes(pkts))
            out(cap, name + "-swapped-nsec.pcap", pcap_bytes(pkts[:12], True, True))
            out(cap, name + "-mixed.pcapng", pcapng(pkts[:12], (1, 101)))
            ng = os.path.join(SEEDS, "fuzz_pcapng")
            out(ng, name + ".pcapng", pcapng(pkts))
            out(ng, name + "-nsec-mixed.pcapng", pcapng(pkts[:12], (1, 101), True))

    # a SOCKS5 handshake in front of a plaintext session (any-port)
    socks = (b"\x00\x05\x01\x00\xff" b"\x01\x05\x00\xff"
             b"\x00\x05\x01\x00\x01\xc6\x33\x64\x19\x00\x19\xff"
             b"\x01\x05\x00\x00\x01\xc6\x33\x64\x19\x00\x19\xff"
             b"\x01220 mx.example.org ESMTP\r\n\xff"
             b"\x00EHLO client.example.net\r\n\xff"
             b"\x01250-mx.example.org\r\n250 STARTTLS\r\n\xff"
             b"\x00MAIL FROM:<a@example.net>\r\n\xff")
    out(os.path.join(SEEDS, "fuzz_ndpi_smtp"), "socks5-smtp", b"\x01" + socks)
    http = (b"\x00CONNECT mx.example.org:25 HTTP/1.1\r\nHost: mx.example.org:25\r\n\r\n\xff"
            b"\x01HTTP/1.1 200 Connection established\r\n\r\n\xff"
            b"\x01220 mx.example.org ESMTP\r\n\xff\x00QUIT\r\n\xff")
    out(os.path.join(SEEDS, "fuzz_ndpi_smtp"), "http-connect-smtp", b"\x04" + http)

    # policy snapshots and the values the Redis cache holds
    snap = os.path.join(SEEDS, "fuzz_snapshot")
    files = [os.path.join(ROOT, "pcaps", "policies.json")] + sorted(
        glob.glob(os.path.join(ROOT, "tests", "golden_alerts", "policies-*.json")))
    for f in files:
        data = open(f, "rb").read()
        out(snap, os.path.basename(f), data)
        for dom, e in sorted(json.loads(data).items()):
            val = json.dumps({"id": e["id"], "policy": e["policy"], "fetched_at": e["fetched_at"]},
                             separators=(",", ":")).encode()
            out(os.path.join(SEEDS, "fuzz_rcache"), dom + ".json", val)

    # a learned-posture state file as posture_save writes it
    entries = [
        {"kind": "server", "key": "198.51.100.25:25", "seen": 1780000000000000,
         "ok_ts": 1780000000000000, "ok_uid": "S0123456789abcdef", "fail_ts": 0, "fail_uid": "",
         "fail_detail": ""},
        {"kind": "name", "key": "mx.example.org", "seen": 1780000100000000,
         "ok_ts": 1780000100000000, "ok_uid": "S1123456789abcdef", "fail_ts": 0, "fail_uid": "",
         "fail_detail": ""},
        {"kind": "client", "key": "192.0.2.10>198.51.100.25:25", "seen": 1780000200000000,
         "ok_ts": 0, "ok_uid": "", "fail_ts": 1780000200000000, "fail_uid": "S2123456789abcdef",
         "fail_detail": "tls alert handshake_failure"}]
    out(os.path.join(SEEDS, "fuzz_posture"), "state.json",
        json.dumps({"stripwatch_posture": 1, "entries": entries}, indent=1).encode())

    # spool: flags byte (bit 0: a head file follows, 21 bytes), then the spool
    rec = b'{"event":{"kind":"alert"},"rule":{"id":"starttls.stripped"}}'
    spool = b"stripwatch-spool 1 0123456789abcdef\n" + b"".join(
        b"%d %s\n" % (i, rec) for i in (1, 2, 3))
    sp = os.path.join(SEEDS, "fuzz_spool")
    out(sp, "three-pending", b"\x00" + spool)
    out(sp, "one-acked", b"\x01" + b"%020d\n" % 1 + spool)
    out(sp, "torn-tail", b"\x01" + b"%020d\n" % 2 + spool + b"4 {\"ev")
    out(sp, "small-bound", b"\x02" + spool)

    # Redis replies (RESP2) as the policy cache, posture and sink get them
    val = json.dumps({"id": "20261101T000000", "policy": "version: STSv1\nmode: enforce\n",
                      "fetched_at": "2026-11-20T08:00:00Z"}, separators=(",", ":")).encode()
    rd = os.path.join(SEEDS, "fuzz_redis")
    out(rd, "get-hgetall", b"$%d\r\n%s\r\n$-1\r\n+OK\r\n" % (len(val), val) +
        b"*4\r\n$4\r\nseen\r\n$2\r\n10\r\n$5\r\nok_ts\r\n$2\r\n10\r\n" * 8)
    out(rd, "errors", b"-LOADING Redis is loading the dataset in memory\r\n:1\r\n"
        b"-ERR unknown command\r\n*0\r\n*-1\r\n" + b"*2\r\n*1\r\n:7\r\n$0\r\n\r\n" * 8)

    # DNS answers: TXT (flags 2: havedata) and A + AAAA with a CNAME
    txt = b"v=STSv1; id=20261101T000000;"
    dn = os.path.join(SEEDS, "fuzz_dns")
    out(dn, "txt", b"\x00\x00\x02\x00\x02" + bytes([len(txt) + 1, len(txt)]) + txt +
        b"\x0a\x04v=sp\x05f1 -all")
    out(dn, "addr", b"\x01\x00\x06\x0emx.example.org\x02\x04\xc6\x33\x64\x19\x04\xc0\x00\x02\x0a"
        b"\x00\x02\x00\x01\x10" + bytes(range(16)))
    out(dn, "nxdomain", b"\x00\x03\x01\x00\x00")

    # config files: the shipped example, every key set, and a few cases of
    # tests/sensor/test_config.c (valid, and one per kind of error)
    cf = os.path.join(SEEDS, "fuzz_config")
    out(cf, "stripwatch.conf", open(os.path.join(ROOT, "sensor", "dist", "stripwatch.conf"),
                                    "rb").read())
    out(cf, "comments-and-values",
        b"\xef\xbb\xbf# stripwatch.conf\n; both start a comment line\n   # indented\n\n"
        b"read = a.pcap ; inline comment\nread=b.pcap\nbpf = tcp port 25 # part of it\n"
        b"  alerts-out   =   /tmp/alerts x.json  \nimmediate = ON\nany-port = 0\n"
        b"observer-name: colon form\nworkers = 4\nmemcap = 64M\n")
    out(cf, "rules-and-allow",
        b"interface = eth1\nrate-limit = 30\nallow-server = 10.0.0.0/8\n"
        b"allow-client = 2001:db8::1\nallow-domain = example.org\n"
        b"redis = redis://127.0.0.1:6379/0\nredis-mode = stream\n\n"
        b"[auth.cleartext]\nenabled = no\nseverity = low\n[starttls.unused]\n"
        b"rate-limit = 0\r\n")
    out(cf, "unknown-key", b"alerts-out = a.json\npolciy-file = p.json\n")
    out(cf, "bad-values", b"workers = 0\nmemcap = 12Q\n")
    out(cf, "given-twice", b"workers = 2\n\nworkers = 3\n")
    out(cf, "syntax", b"; a comment\njust words\n[starttls.unused\n")
    out(cf, "unknown-rule", b"alerts-out = a\n[starttls.unusd]\nenabled = no\n")
    out(cf, "rule-key", b"[auth.cleartext]\nseverity = critical\nenable = no\n")
    out(cf, "long-line", b"workers = 1\nobserver-name = " + b"0" * 182 + b"\n")
    out(cf, "no-newline", b"config = other.conf")


def check():
    """Makes every seed in a temporary folder; 1 when a committed one differs."""
    global SEEDS, PKT_SEEDS, FLOW_SEEDS
    committed = {"tests/fuzz/seeds": SEEDS, "tests/pkt/fuzz-seeds": PKT_SEEDS,
                 "tests/flow/fuzz-seeds": FLOW_SEEDS}
    with tempfile.TemporaryDirectory() as tmp:
        made = {rel: os.path.join(tmp, rel) for rel in committed}
        SEEDS, PKT_SEEDS, FLOW_SEEDS = (made["tests/fuzz/seeds"], made["tests/pkt/fuzz-seeds"],
                                        made["tests/flow/fuzz-seeds"])
        main()
        stale = []
        for rel, folder in made.items():
            for d, _, names in os.walk(folder):
                for n in names:
                    sub = os.path.relpath(os.path.join(d, n), folder)
                    have = os.path.join(committed[rel], sub)
                    if not os.path.exists(have) or not filecmp.cmp(have, os.path.join(d, n),
                                                                   shallow=False):
                        stale.append(os.path.join(rel, sub))
    for s in stale:
        print("make_seeds.py: %s: missing or stale; run tests/fuzz/make_seeds.py" % s)
    return 1 if stale else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        sys.exit(check())
    main()
