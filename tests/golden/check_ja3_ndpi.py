#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""JA3 / JA3S cross-check against nDPI's own expected output.

nDPI's test suite ships, beside pcap/smtp-starttls.pcap, the ndpiReader
output it expects (result/smtp-starttls.pcap.out; both are in
pcaps/third-party/ndpi/), with a `[JA3C: ...]`
and a `[JA3S: ...]` per flow. That file was made by nDPI's development tree of
2024-10, not by Debian's libndpi 4.2, so what is compared is the hash
definition, not a library version: the values in that file are the standard
JA3 of Salesforce (MD5 over "SSLVersion,Ciphers,Extensions,EllipticCurves,
EllipticCurvePointFormats" in decimal, GREASE values removed) and JA3S (MD5
over "SSLVersion,Cipher,Extensions"); tshark 4.0's tls.handshake.ja3 and
tls.handshake.ja3s give the same values on this capture. stripwatch computes
both itself (decode/tls.c, OpenSSL MD5); this test runs the real stripwatch
on the capture and requires, for each of the two flows (matched by server
address and port), the hashes of nDPI's file. GREASE removal is covered by
tests/smtp/test_smtp_tls.c (these 2013/2018 clients send no GREASE).

usage: check_ja3_ndpi.py STRIPWATCH NDPI_DIR   (pcaps/third-party/ndpi)
"""
import ipaddress
import json
import os
import re
import subprocess
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    stripwatch, ndpi = sys.argv[1:]
    pcap = os.path.join(ndpi, "pcap/smtp-starttls.pcap")
    result = os.path.join(ndpi, "result/smtp-starttls.pcap.out")
    want = {}
    flow_re = re.compile(r"TCP (\S+):(\d+) <-> (\S+):(\d+) .*\[JA3C: ([0-9a-f]{32})\].*\[JA3S: ([0-9a-f]{32})")
    with open(result, encoding="utf-8") as f:
        for line in f:
            m = flow_re.search(line)
            if m:
                server = ipaddress.ip_address(m.group(3).strip("[]"))
                want[(server, int(m.group(4)))] = (m.group(5), m.group(6))
    if len(want) != 2:
        print(f"FAIL {result}: expected 2 flows with JA3C and JA3S, found {len(want)}")
        return 1
    p = subprocess.run([stripwatch, "-q", "-r", pcap, "--sessions-out", "-", "--alerts-out",
                        os.devnull], capture_output=True, timeout=120, check=False)
    if p.returncode != 0:
        print(f"FAIL stripwatch exit {p.returncode}: {p.stderr.decode(errors='replace')}")
        return 1
    got = {}
    for line in p.stdout.decode().splitlines():
        r = json.loads(line)
        key = (ipaddress.ip_address(r["destination"]["ip"]), r["destination"]["port"])
        got[key] = (r["tls"]["client"]["ja3"], r["tls"]["server"]["ja3s"])
    failed = 0
    for key, (ja3, ja3s) in sorted(want.items(), key=str):
        g = got.get(key)
        if g != (ja3, ja3s):
            print(f"FAIL {key[0]}:{key[1]}: stripwatch ja3/ja3s {g}, nDPI {ja3}/{ja3s}")
            failed += 1
        else:
            print(f"ok   {key[0]}:{key[1]}: ja3 {ja3} ja3s {ja3s}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
