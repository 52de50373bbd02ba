#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# compare_follow.py: golden test: the client and server streams that
# stripwatch's reassembler (through tests/follow/sw_follow) delivers for every
# TCP flow of every capture must equal, byte for byte, what
# `tshark -q -z follow,tcp,raw,N` reports for the same flow (RFC 9293).
#
# Usage: compare_follow.py SW_FOLLOW [--extra-pcaps=[DIR]] CAPTURE_OR_DIR...
# (ctest passes the directory holding reasm-cases.pcap, written by
# make_reasm_pcap.py, and pcaps/ with pcaps/third-party/ in it.)
# --extra-pcaps=DIR adds DIR/wireshark-notes/ from the optional
# SW_EXTRA_PCAPS directory (captures that may not be redistributed,
# pcaps/third-party/README.md); when it is empty, one line on stderr says
# they are skipped.
#
# How flows are matched: by their two endpoints (address, port), in order of
# appearance when a pair of endpoints is reused (tshark starts a new stream
# on a new SYN after a close, as the flow table does). VLAN ids are not part
# of the match (tshark's tcp.stream ignores them); no capture here carries
# the same endpoints on two VLANs.
#
# A flow that the flow table split (idle timeout or eviction, then picked up
# again midstream) is joined back before comparison, since tshark keeps one
# stream; no capture here triggers it today.
#
# How gaps are compared: sw_follow prints only delivered bytes plus the list
# of gaps (offset, length). tshark's raw follow writes, where bytes are
# missing, the text "[N bytes missing in capture file]" and a NUL byte (its
# C string terminator, a tshark 4.0 quirk) into the stream. The
# sw stream is rebuilt with the same text at each gap position (gaps at the
# same offset are summed, as tshark reports one hole), and must then equal
# tshark's stream byte for byte. Every gap must also be listed in
# EXPECTED_GAPS below with its reason, so that a new gap is a failure even if
# tshark agreed. Any other difference, a flow on one side only, or an
# expected entry that did not occur, fails the test.
import concurrent.futures
import ipaddress
import json
import os
import re
import subprocess
import sys

# (capture path relative to its root, client "ip:port", direction) ->
#   (list of [offset, length] gaps, reason)
EXPECTED_GAPS = {
    ("third-party/ndpi/pcap/smtp-starttls.pcap", "2003:de:2016:125:fc36:8317:4e86:cb72:7562", "c2s"): (
        [[634, 2880], [634, 2880]],
        "5760 bytes of the client's TLS handshake are missing from the capture "
        "(tshark: 'ACKed segment that wasn't captured', frames 59-61); one hole, "
        "declared in two steps: up to the server's first ACK when the client "
        "sends past it (frame 60), then up to the queued segment when the "
        "server answers (frame 62)"),
}

EXPECTED_GAPS.update({
    ("reasm-cases.pcap", "192.0.2.10:40006", "c2s"): (
        [[13, 12]], "generated case 6: 'example.org>' left out of the capture, ACKed"),
})

# Where the bytes differ on purpose: (capture, client, direction) ->
#   (sw stream, tshark stream, reason). Checked exactly.
EXPECTED_BYTE_DIFFS = {
    ("reasm-cases.pcap", "192.0.2.10:40010", "s2c"): (
        b"250-STARTTLS\r\n", b"250-XXXXXXXA\r\n",
        "generated case 10: two copies of bytes 5-14 differ. stripwatch keeps the first "
        "copy seen (the queued 'STARTTLS', and reports the conflict); tshark's follow "
        "delivers the in-order segment and drops the queued one"),
}

# Flows with overlap conflicts: (capture, client) -> (count, reason).
EXPECTED_CONFLICTS = {
    ("reasm-cases.pcap", "192.0.2.10:40010"): (1, "generated case 10, see above"),
}


def norm_ep(ip, port):
    return "%s:%d" % (ipaddress.ip_address(ip.strip("[]")), int(port))


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    if r.returncode != 0:
        sys.exit("compare_follow: %s failed (%d): %s" % (cmd[0], r.returncode,
                                                        r.stderr.decode(errors="replace")))
    return r.stdout.decode()


def tshark_streams(path):
    """Returns [(first_frame, ep0, ep1, bytes0, bytes1)] in stream order."""
    out = run(["tshark", "-r", path, "-Y", "tcp", "-T", "fields", "-e", "tcp.stream",
               "-e", "frame.number"])
    first = {}
    for line in out.splitlines():
        if not line.strip():
            continue
        s, f = line.split("\t")
        s = int(s)
        if s not in first:
            first[s] = int(f)
    if not first:
        return []
    cmd = ["tshark", "-r", path, "-q"]
    for s in sorted(first):
        cmd += ["-z", "follow,tcp,raw,%d" % s]
    out = run(cmd)
    streams = []
    for block in out.split("=" * 67):
        m = re.search(r"Filter: tcp\.stream eq (\d+)", block)
        if not m:
            continue
        sid = int(m.group(1))
        eps = re.findall(r"Node (\d): (.*):(\d+)\n", block)
        ep = {int(n): norm_ep(a, p) for n, a, p in eps}
        data = {0: bytearray(), 1: bytearray()}
        body = block.split("\n")
        for line in body:
            if re.fullmatch(r"\t?[0-9a-f]+", line) and not line.startswith("Node"):
                node = 1 if line.startswith("\t") else 0
                data[node] += bytes.fromhex(line.strip())
        streams.append((first[sid], ep.get(0), ep.get(1), bytes(data[0]), bytes(data[1])))
    streams.sort(key=lambda t: t[0])  # tshark prints the taps in no useful order
    return streams


def sw_flows(sw_follow, path):
    out = run([sw_follow, path])
    flows = []
    for line in out.splitlines():
        o = json.loads(line)
        flows.append(o)
    flows.sort(key=lambda o: o["first_pkt"])
    # join the pieces of a flow split by a timeout or an eviction
    joined, last = [], {}
    for o in flows:
        eps = frozenset([norm_ep(o["client"], o["cport"]), norm_ep(o["server"], o["sport"])])
        prev = last.get(eps)
        if prev and o["midstream"] and prev["end"] in ("timeout", "evicted"):
            same = prev["client"] == o["client"] and prev["cport"] == o["cport"]
            for d in ("c2s", "s2c"):
                src = d if same else ("s2c" if d == "c2s" else "c2s")
                base = len(prev[d]) // 2
                prev["gaps"] += [[d, g[1] + base, g[2]] for g in o["gaps"] if g[0] == src]
                prev[d] += o[src]
            prev["end"] = o["end"]
            prev["conflicts"] += o["conflicts"]
            continue
        last[eps] = o
        joined.append(o)
    return joined


def with_markers(data, gaps):
    """data with tshark's missing-bytes text at each gap (same offsets summed)."""
    merged = []
    for off, n in gaps:
        if merged and merged[-1][0] == off:
            merged[-1][1] += n
        else:
            merged.append([off, n])
    out, pos = bytearray(), 0
    for off, n in merged:
        out += data[pos:off]
        # tshark 4.0 writes the C string with its terminating NUL
        out += b"[%d bytes missing in capture file]\x00" % n
        pos = off
    out += data[pos:]
    return bytes(out)


def compare(sw_follow, root, rel):
    path = os.path.join(root, rel)
    errors = []
    seen_expected = set()
    ts = tshark_streams(path)
    sw = sw_flows(sw_follow, path)
    pending = {}
    for t in ts:
        key = frozenset([t[1], t[2]])
        pending.setdefault(key, []).append(t)
    for o in sw:
        c = norm_ep(o["client"], o["cport"])
        s = norm_ep(o["server"], o["sport"])
        cand = pending.get(frozenset([c, s]), [])
        if not cand:
            errors.append("%s: flow %s %s > %s: not in tshark" % (rel, o["uid"], c, s))
            continue
        t = cand.pop(0)
        tc = t[3] if t[1] == c else t[4]
        tsv = t[4] if t[1] == c else t[3]
        for d, mine, theirs in (("c2s", bytes.fromhex(o["c2s"]), tc),
                                ("s2c", bytes.fromhex(o["s2c"]), tsv)):
            gaps = [[g[1], g[2]] for g in o["gaps"] if g[0] == d]
            mine = with_markers(mine, gaps)
            key = (rel, c, d)
            if gaps or key in EXPECTED_GAPS:
                want = EXPECTED_GAPS.get(key, (None, None))[0]
                if want != gaps:
                    errors.append("%s: %s %s: gaps %s, expected %s" % (rel, c, d, gaps, want))
                seen_expected.add(key)
            if key in EXPECTED_BYTE_DIFFS:
                seen_expected.add(key)
                want_sw, want_ts, _ = EXPECTED_BYTE_DIFFS[key]
                if (mine, theirs) != (want_sw, want_ts):
                    errors.append("%s: %s %s: sw %r tshark %r, expected sw %r tshark %r"
                                  % (rel, c, d, mine, theirs, want_sw, want_ts))
                continue
            if mine != theirs:
                n = next((i for i in range(min(len(mine), len(theirs)))
                          if mine[i] != theirs[i]), min(len(mine), len(theirs)))
                errors.append("%s: %s > %s %s: %d bytes vs tshark %d, first difference at %d: "
                              "sw %r tshark %r" % (rel, c, s, d, len(mine), len(theirs), n,
                                                   mine[n:n + 16], theirs[n:n + 16]))
        want = EXPECTED_CONFLICTS.get((rel, c), (0, None))[0]
        if o["conflicts"] != want:
            errors.append("%s: %s: %d overlap conflicts, expected %d"
                          % (rel, c, o["conflicts"], want))
        if want:
            seen_expected.add((rel, c))
    for key, left in pending.items():
        for t in left:
            if t[3] or t[4]:
                errors.append("%s: tshark stream %s <> %s (frame %d) with data not seen by sw"
                              % (rel, t[1], t[2], t[0]))
    return errors, seen_expected, len(sw)


def main():
    args = sys.argv[2:]
    if len(sys.argv) < 3:
        sys.exit("usage: compare_follow.py SW_FOLLOW [--extra-pcaps=[DIR]] CAPTURE_OR_DIR...")
    sw_follow = sys.argv[1]
    if args and args[0].startswith("--extra-pcaps="):
        extra = args.pop(0).partition("=")[2]
        if extra:  # what it holds beside them (e.g. copies of pcaps/third-party/) is not read
            args.append(os.path.join(extra, "wireshark-notes"))
        else:
            print("follow_vs_tshark: skipped the SW_EXTRA_PCAPS captures (wireshark-notes/tls/"
                  "*.pcapng): not redistributable (no licence); set SW_EXTRA_PCAPS to a "
                  "directory holding them", file=sys.stderr)
    errors = []
    seen = set()
    total = 0
    n_files = 0
    for arg in args:
        if os.path.isdir(arg):
            root = arg
            rels = []
            for d, subdirs, files in os.walk(arg):
                subdirs[:] = [x for x in subdirs if not x.startswith(".")]  # scratch dirs
                for f in files:
                    if f.endswith((".pcap", ".pcapng")):
                        rels.append(os.path.relpath(os.path.join(d, f), arg))
        else:
            root, rels = os.path.dirname(arg), [os.path.basename(arg)]
        # captures are compared in parallel (tshark is the slow part),
        # reported in order
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda r: compare(sw_follow, root, r), sorted(rels)))
        for rel, (e, s, n) in zip(sorted(rels), results):
            errors += e
            seen |= s
            total += n
            n_files += 1
            print("%s: %d flows, %d differences" % (rel, n, len(e)))
    for table in (EXPECTED_GAPS, EXPECTED_BYTE_DIFFS, EXPECTED_CONFLICTS):
        for key in table:
            if key not in seen and any(os.path.exists(os.path.join(a, key[0]))
                                       for a in args):
                errors.append("expected difference did not occur: %s" % (key,))
    for e in errors:
        print("DIFF " + e)
    print("%d captures, %d flows, %d unexplained differences" % (n_files, total, len(errors)))
    if n_files == 0:
        sys.exit("compare_follow: no capture found")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
