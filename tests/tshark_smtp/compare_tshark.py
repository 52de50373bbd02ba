#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Agreement with tshark's SMTP dissector. For every capture of the
third-party set and every capture in pcaps/, the client commands, the server
reply codes and the first EHLO reply's capability lines that stripwatch's
decoder extracts (smtp_trace) must equal what `tshark` extracts, stream by
stream (a stream is the client port and server port).

Accepted differences, each applied on purpose:
  * tshark names a command by its first four characters ("STAR" for
    STARTTLS): commands are compared on their first four characters,
    case-insensitively.
  * tshark shows one smtp.response.code per reply (a multi-line reply is one
    Response with one parameter per line), as does the decoder; the EHLO
    capabilities are tshark's parameters of that reply after the first line.
  * A stream tshark does not dissect as SMTP at all is listed in ONLY_OURS
    below with the reason; every other stream must be present on both sides.

usage: compare_tshark.py SMTP_TRACE TSHARK SOURCE_DIR SHARED_PCAPS
"""
import glob
import os
import subprocess
import sys

# capture (relative name) -> extra smtp_trace flags, extra tshark flags
SHARED = {
    "arkime/smtp-data-250.pcap": ([], []),
    "arkime/smtp-decrypted.pcap": ([], ["-d", "tcp.port==2525,smtp"]),
    "arkime/smtp-originating.pcap": ([], []),
    # tshark's SOCKS dissector hands the tunnelled bytes to SMTP; the decoder
    # classifies the flow with nDPI after skipping the SOCKS5 handshake
    "arkime/socks5-smtp-503.pcap": (["--any-port"], []),
    "ndpi/pcap/emotet.pcap": ([], []),
    "ndpi/pcap/smtp-starttls.pcap": ([], []),
    "ndpi/pcap/smtp.pcap": ([], []),
    "ndpi/pcap/smtps.pcapng": ([], ["-d", "tcp.port==465,smtp"]),
    "wireshark-notes/tls/smtp-ssl.pcapng": ([], []),
    "wireshark-notes/tls/smtp2525-ssl.pcapng": ([], ["-d", "tcp.port==2525,smtp"]),
}

# (capture, cport, sport) -> why tshark shows no SMTP there
ONLY_OURS = {}

# (capture, cport, sport) -> items the decoder reports and tshark does not,
# with the reason; removing exactly these (last occurrence first) from ours
# must give tshark's lists.
_DECRYPTED = "arkime/smtp-decrypted.pcap"
_QUIT_AFTER_DOT = ("the client pipelined QUIT in the segment that ends the DATA content "
                   "(\\r\\n.\\r\\nQUIT\\r\\n, RFC 2920); tshark takes the whole segment as message data")
_BDAT = ("tshark 4.0 labels the segment starting `BDAT n LAST` as a DATA fragment (no BDAT command) "
         "and stays in data mode for the following QUIT")
TSHARK_MISSES = {
    (_DECRYPTED, 49475, 25): ({"cmds": ["QUIT"]}, _QUIT_AFTER_DOT),
    (_DECRYPTED, 41347, 25): ({"cmds": ["QUIT"]}, _QUIT_AFTER_DOT),
    (_DECRYPTED, 28120, 2525): ({"cmds": ["BDAT", "QUIT"]}, _BDAT),
    (_DECRYPTED, 28134, 2525): ({"cmds": ["BDAT", "QUIT"], "codes": [221]},
                                _BDAT + "; the 221 comes in a frame tshark marks as a spurious "
                                "retransmission and does not dissect (its first copy is not in "
                                "the capture), the reassembler delivers it once"),
}


def without(items, missing):
    out = list(items)
    for m in missing:
        for i in range(len(out) - 1, -1, -1):
            if out[i] == m:
                del out[i]
                break
        else:
            return None  # an accepted difference that did not happen
    return out


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.decode(errors='replace')}")
    return p.stdout.decode(errors="replace")


def ours(trace, pcap, flags):
    streams = {}
    for line in run([trace, pcap] + flags).splitlines():
        cport, sport, kind, rest = (line.split(" ", 3) + [""])[:4]
        s = streams.setdefault((int(cport), int(sport)), {"cmds": [], "codes": [], "caps": []})
        if kind == "C":
            s["cmds"].append(rest[:4].upper())
        elif kind == "S":
            s["codes"].append(int(rest))
        elif kind == "CAP":
            s["caps"].append(rest)
    return streams


def theirs(tshark, pcap, flags):
    out = run([tshark, "-r", pcap, "-n"] + flags + [
        "-Y", "smtp", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=\x1f",
        "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "smtp.req.command",
        "-e", "smtp.response.code", "-e", "smtp.rsp.parameter", "-e", "smtp.response"])
    streams = {}
    want_caps = set()
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) < 6:
            continue
        src, dst, cmds, codes, params, rsp = int(f[0]), int(f[1]), f[2], f[3], f[4], f[5]
        if cmds:
            s = streams.setdefault((src, dst), {"cmds": [], "codes": [], "caps": [], "ehlo": False})
            for c in cmds.split("\x1f"):
                s["cmds"].append(c[:4].upper())
                if c.upper() == "EHLO" and not s["ehlo"]:
                    s["ehlo"] = True
                    want_caps.add((src, dst))
        if codes:
            key = (dst, src)
            s = streams.setdefault(key, {"cmds": [], "codes": [], "caps": [], "ehlo": False})
            cl = [int(c) for c in codes.split("\x1f")]
            s["codes"].extend(cl)
            if key in want_caps and len(cl) == 1 and cl[0] == 250 and rsp.startswith("250-"):
                s["caps"] = params.split("\x1f")[1:]
                want_caps.discard(key)
            elif key in want_caps and any(200 <= c < 300 for c in cl) and "250" in codes:
                want_caps.discard(key)  # single-line EHLO reply: no capabilities
    for s in streams.values():
        del s["ehlo"]
    return streams


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    trace, tshark, source_dir, shared = sys.argv[1:]
    captures = [(os.path.join(shared, k), k, v[0], v[1]) for k, v in SHARED.items()]
    for p in sorted(glob.glob(os.path.join(source_dir, "pcaps", "*.pcap*"))):
        captures.append((p, "pcaps/" + os.path.basename(p), [], ["-d", "tcp.port==2525,smtp"]))
    failed = 0
    for path, name, tflags, sflags in captures:
        try:
            a, b = ours(trace, path, tflags), theirs(tshark, path, sflags)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            print(f"FAIL {name}: {e}")
            failed += 1
            continue
        errs = []
        for key in sorted(set(a) | set(b)):
            if key not in b:
                if (name,) + key in ONLY_OURS:
                    continue
                errs.append(f"stream {key}: decoded by us, not by tshark")
                continue
            if key not in a:
                errs.append(f"stream {key}: decoded by tshark, not by us")
                continue
            missing = TSHARK_MISSES.get((name,) + key, ({}, ""))[0]
            for k in ("cmds", "codes", "caps"):
                if without(a[key][k], missing.get(k, [])) != b[key][k]:
                    errs.append(f"stream {key}: {k}: ours {a[key][k]} tshark {b[key][k]}"
                                + (f" (accepted: tshark misses {missing[k]})" if k in missing else ""))
        if errs:
            failed += 1
            print(f"FAIL {name}")
            for e in errs:
                print("  " + e)
        else:
            n = sum(len(s["cmds"]) + len(s["codes"]) + len(s["caps"]) for s in a.values())
            print(f"ok   {name}: {len(a)} streams, {n} items agree")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
