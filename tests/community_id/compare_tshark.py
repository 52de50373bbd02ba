#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""network.community_id against tshark's communityid dissector.

Runs the real stripwatch (--any-port, so every SMTP conversation gets a
record) on every capture under the given directory (pcaps/: the project's
captures and, in third-party/, other projects') and tshark 4.0 with its
Community ID post-dissector enabled (--enable-protocol communityid; seed 0,
base64, as Zeek and Suricata emit it). Each session record's
network.community_id must be the one value tshark gives every packet of
that connection (matched by both endpoints, either direction). Fails when a
record has no community_id, when tshark saw no such connection or gave it
another value, or when no capture produced a record at all.

usage: compare_tshark.py STRIPWATCH TSHARK PCAPS_DIR
"""
import ipaddress
import json
import os
import subprocess
import sys


def captures(top):
    found = []
    for d, subdirs, files in os.walk(top):
        subdirs[:] = sorted(x for x in subdirs if not x.startswith("."))
        found += [os.path.join(d, f) for f in files if f.endswith((".pcap", ".pcapng"))]
    return sorted(found)


def endpoint(ip, port):
    return (ipaddress.ip_address(ip), int(port))


def tshark_ids(tshark, pcap):
    """{frozenset of the two endpoints: set of community ids} for TCP packets."""
    cmd = [tshark, "-n", "-r", pcap, "--enable-protocol", "communityid",
           "-o", "communityid.seed:0", "-o", "communityid.do_base64:TRUE",
           "-Y", "tcp", "-T", "fields", "-E", "separator=\t", "-E", "occurrence=l",
           "-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport",
           "-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.dstport", "-e", "communityid"]
    p = subprocess.run(cmd, capture_output=True, timeout=300, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.decode(errors='replace')}")
    ids = {}
    for line in p.stdout.decode().splitlines():
        f = line.split("\t")
        if len(f) != 7 or not f[6]:
            continue
        src, dst = f[0] or f[1], f[3] or f[4]
        if not src or not dst or not f[2] or not f[5]:
            continue
        key = frozenset((endpoint(src, f[2]), endpoint(dst, f[5])))
        ids.setdefault(key, set()).add(f[6])
    return ids


def records(stripwatch, pcap):
    cmd = [stripwatch, "-q", "-r", pcap, "--any-port", "--sessions-out", "-",
           "--alerts-out", os.devnull]
    p = subprocess.run(cmd, capture_output=True, timeout=300, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.decode(errors='replace')}")
    return [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    stripwatch, tshark, top = sys.argv[1:]
    failures, checked = 0, 0
    for pcap in captures(top):
        name = os.path.relpath(pcap, top)
        recs = records(stripwatch, pcap)
        if not recs:
            continue
        ids = tshark_ids(tshark, pcap)
        for r in recs:
            uid = r["stripwatch"]["uid"]
            got = r.get("network", {}).get("community_id")
            key = frozenset((endpoint(r["source"]["ip"], r["source"]["port"]),
                             endpoint(r["destination"]["ip"], r["destination"]["port"])))
            want = ids.get(key)
            if got is None:
                print(f"FAIL {name} {uid}: no network.community_id")
                failures += 1
            elif not want:
                print(f"FAIL {name} {uid}: tshark saw no TCP connection {sorted(map(str, key))}")
                failures += 1
            elif want != {got}:
                print(f"FAIL {name} {uid}: community_id {got}, tshark {sorted(want)}")
                failures += 1
            checked += 1
        print(f"ok {name}: {len(recs)} session(s)")
    if checked == 0:
        print("FAIL no capture produced a session record")
        return 1
    print(f"{checked} session records checked, {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
