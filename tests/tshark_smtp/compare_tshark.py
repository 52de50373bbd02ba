#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Agreement with tshark's SMTP dissector. For every capture in pcaps/ and
pcaps/third-party/ (and the optional SW_EXTRA_PCAPS set), the client commands, the server
reply codes and the first EHLO reply's capability lines that stripwatch's
decoder extracts (smtp_trace) must equal what `tshark` extracts, stream by
stream (a stream is the client port and server port).

Accepted differences, each applied on purpose and printed when it applies:
  * tshark names a command by its first four characters ("STAR" for
    STARTTLS): commands are compared on their first four characters,
    case-insensitively.
  * tshark shows one smtp.response.code per reply (a multi-line reply is one
    Response with one parameter per line), as does the decoder; the EHLO
    capabilities are tshark's parameters of that reply after the first line.
  * [after-dot] Commands the client pipelined into the segment that ends the
    DATA content ("...\r\n.\r\nQUIT\r\n", as Postfix and sendEmail do,
    RFC 2920): tshark takes the whole segment as message data and reports no
    command from it; the decoder finds the end of data inside the segment.
  * [bdat] tshark 4.0 reports no command from the client segment carrying a
    `BDAT` command (also the MAIL/RCPT pipelined before it, as Exim sends them)
    and none after it in that stream (it stays in data mode).
  * [unknown-verb] A line whose verb is no SMTP command (XXXXXXXX: a STARTTLS
    rewritten in transit) is a "DATA fragment" to tshark; the decoder reports
    it as a command (and an anomaly).
  * [retransmitted] listed per stream in TSHARK_MISSES: a reply in a frame
    tshark marks as a spurious retransmission is not dissected by tshark.
  * A stream tshark does not dissect as SMTP at all is listed in ONLY_OURS
    with the reason; every other stream must be present on both sides.

The captures of the SW_EXTRA_PCAPS directory (EXTRA below; not
redistributable, see pcaps/third-party/README.md) are skipped, with one line
on stderr each, when --extra-pcaps= is empty; when it names a directory, a
missing file there is a failure.

usage: compare_tshark.py SMTP_TRACE TSHARK SOURCE_DIR --extra-pcaps=[DIR]
"""
import glob
import os
import subprocess
import sys

# capture (relative to pcaps/) -> extra smtp_trace flags, extra tshark flags
THIRD_PARTY = {
    "third-party/arkime/smtp-data-250.pcap": ([], []),
    "third-party/arkime/smtp-decrypted.pcap": ([], ["-d", "tcp.port==2525,smtp"]),
    "third-party/arkime/smtp-originating.pcap": ([], []),
    # tshark's SOCKS dissector hands the tunnelled bytes to SMTP; the decoder
    # classifies the flow with nDPI after skipping the SOCKS5 handshake
    "third-party/arkime/socks5-smtp-503.pcap": (["--any-port"], []),
    "third-party/ndpi/pcap/emotet.pcap": ([], []),
    "third-party/ndpi/pcap/smtp-starttls.pcap": ([], []),
    "third-party/ndpi/pcap/smtp.pcap": ([], []),
    "third-party/ndpi/pcap/smtps.pcapng": ([], ["-d", "tcp.port==465,smtp"]),
}
# the same, relative to the SW_EXTRA_PCAPS directory
EXTRA = {
    "wireshark-notes/tls/smtp-ssl.pcapng": ([], []),
    "wireshark-notes/tls/smtp2525-ssl.pcapng": ([], ["-d", "tcp.port==2525,smtp"]),
}

# (capture, cport, sport) -> why tshark shows no SMTP there
ONLY_OURS = {}

# (capture, cport, sport) -> items the decoder reports and tshark does not,
# with the reason; removed (last occurrence first) from ours before comparing.
TSHARK_MISSES = {
    ("pcaps/third-party/arkime/smtp-decrypted.pcap", 28134, 2525): (
        {"codes": [221]},
        "the 221 comes in a frame tshark marks as a spurious retransmission and does not "
        "dissect (its first copy is not in the capture); the reassembler delivers it once"),
}

SMTP_VERBS = {"HELO", "EHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "VRFY", "EXPN", "HELP",
              "NOOP", "QUIT", "STAR", "AUTH", "ETRN", "TURN", "ATRN", "SEND", "SOML", "SAML"}


def client_segments(tshark, pcap, flags):
    """(src port, dst port) -> payloads of that direction in capture order,
    each sequence number once (a retransmission is the same segment)."""
    out = run([tshark, "-r", pcap, "-n"] + flags + [
        "-Y", "tcp.len > 0", "-T", "fields", "-E", "occurrence=f",
        "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tcp.seq_raw", "-e", "tcp.payload"])
    segs, seen = {}, set()
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) != 4 or not f[3]:
            continue
        key = (int(f[0]), int(f[1]))
        if (key, f[2]) in seen:
            continue
        seen.add((key, f[2]))
        segs.setdefault(key, []).append(bytes.fromhex(f[3].replace(":", "")))
    return segs


def verbs_of(data):
    """First-four-character verbs of the complete lines in data."""
    return [l.split(b" ")[0][:4].decode(errors="replace").upper()
            for l in data.split(b"\r\n")[:-1] if l]


def tshark_blind(cmds, segs):
    """Applies the [unknown-verb], [bdat] and [after-dot] rules to our command
    list; returns (the list tshark should show, the rules applied)."""
    applied = []
    out = []
    for c in cmds:
        if c in SMTP_VERBS:
            out.append(c)
        else:
            applied.append(f"unknown-verb {c}")
    for seg in segs:
        lines = seg.split(b"\r\n")
        bdat = [i for i, l in enumerate(lines) if l[:5].upper() == b"BDAT "]
        if bdat and "BDAT" in out:
            before = sum(1 for l in lines[:bdat[0]] if l)
            cut = max(out.index("BDAT") - before, 0)
            applied.append("bdat " + " ".join(out[cut:]))
            out = out[:cut]
            break
    for seg in segs:
        p = seg.find(b"\r\n.\r\n")
        rest = seg[p + 5:] if p >= 0 else (seg[3:] if seg.startswith(b".\r\n") else b"")
        for v in verbs_of(rest):
            if v in out:
                i = len(out) - 1 - out[::-1].index(v)
                del out[i]
                applied.append(f"after-dot {v}")
    return out, applied


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
    if len(sys.argv) != 5 or not sys.argv[4].startswith("--extra-pcaps="):
        sys.exit(__doc__)
    trace, tshark, source_dir = sys.argv[1:4]
    extra = sys.argv[4].partition("=")[2]
    pcaps = os.path.join(source_dir, "pcaps")
    captures = [(os.path.join(pcaps, k), "pcaps/" + k, v[0], v[1]) for k, v in THIRD_PARTY.items()]
    for k, v in EXTRA.items():
        if extra:
            captures.append((os.path.join(extra, k), k, v[0], v[1]))
        else:
            print(f"tshark_smtp: skipped {k}: not redistributable (no licence); set "
                  "SW_EXTRA_PCAPS to a directory holding it", file=sys.stderr)
    for p in sorted(glob.glob(os.path.join(pcaps, "*.pcap*"))):
        captures.append((p, "pcaps/" + os.path.basename(p), [], ["-d", "tcp.port==2525,smtp"]))
    failed = 0
    # every third-party capture must be listed (with its flags) above
    for d, _, files in os.walk(os.path.join(pcaps, "third-party")):
        for f in sorted(files):
            rel = os.path.relpath(os.path.join(d, f), pcaps)
            if f.endswith((".pcap", ".pcapng")) and rel not in THIRD_PARTY:
                print(f"FAIL pcaps/{rel}: not in THIRD_PARTY")
                failed += 1
    for path, name, tflags, sflags in captures:
        try:
            a, b = ours(trace, path, tflags), theirs(tshark, path, sflags)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            print(f"FAIL {name}: {e}")
            failed += 1
            continue
        errs = []
        notes = []
        segs = client_segments(tshark, path, sflags)
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
            if missing:
                notes.append(f"{key} retransmitted {missing}")
            mine = dict(a[key])
            mine["cmds"], applied = tshark_blind(a[key]["cmds"], segs.get(key, []))
            notes += [f"{key} {x}" for x in applied]
            for k in ("cmds", "codes", "caps"):
                if without(mine[k], missing.get(k, [])) != b[key][k]:
                    errs.append(f"stream {key}: {k}: ours {a[key][k]} tshark {b[key][k]}"
                                + (f" (accepted: tshark misses {missing[k]})" if k in missing else ""))
        if errs:
            failed += 1
            print(f"FAIL {name}")
            for e in errs:
                print("  " + e)
        else:
            n = sum(len(s["cmds"]) + len(s["codes"]) + len(s["caps"]) for s in a.values())
            print(f"ok   {name}: {len(a)} streams, {n} items agree"
                  + (f"; accepted: {'; '.join(notes)}" if notes else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
