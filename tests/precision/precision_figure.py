#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# precision_figure.py: the precision figure of issue 12: alerts of medium or
# higher severity per 1,000 benign sessions, over the benign captures listed
# in tests/precision/BENIGN (the project's own in pcaps/, and every capture
# of the shared third-party set). Each capture is run through the real
# `stripwatch -r`; the test fails unless every capture writes exactly the
# sessions BENIGN says, and its medium-or-higher alerts are exactly the known
# true positives BENIGN lists (capture, rule, severity). The figure is
# printed either way; its target is 0 alerts per 1,000 benign sessions that
# are not true positives.
#
# Usage: precision_figure.py STRIPWATCH SOURCE_DIR SET [SHARED_DIR]
#   SET: "pcaps" or "shared". For "shared", SHARED_DIR is the third-party
#   set (default SOURCE_DIR/../shared/pcaps-third-party); when it is absent
#   the run is skipped (exit 77) with a line saying so. Every capture file
#   found under it must be listed in BENIGN.
# Exit status: 0 as expected, 1 not, 77 skipped.
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SEV = {"medium": 2, "high": 3}


def load_benign():
    caps, tps = [], []
    with open(os.path.join(HERE, "BENIGN"), encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            w = line.split()
            if w[0] == "capture" and len(w) == 6:
                caps.append({"set": w[1], "path": w[2], "policy": w[3], "sessions": int(w[4]),
                             "flags": [] if w[5] == "-" else w[5].split(",")})
            elif w[0] == "tp" and len(w) >= 6 and w[4] in SEV:
                tps.append((w[1], w[2], w[3], w[4]))
            else:
                sys.exit("BENIGN: line %d: want `capture SET PATH POLICY SESSIONS FLAGS` or "
                         "`tp SET PATH RULE SEVERITY reason`" % no)
    return caps, tps


def source_flag(src, flag):
    """--OPT-file=REL names REL under the source tree (e.g. --dane-file=pcaps/dane.json)."""
    key, eq, val = flag.partition("=")
    if eq and key.endswith("-file") and not os.path.isabs(val):
        return key + "=" + os.path.join(src, val)
    return flag


def run(stripwatch, src, base, c, tmp):
    sess = os.path.join(tmp, "sessions.jsonl")
    argv = [stripwatch, "-q", "--no-config", "-r", os.path.join(base, c["path"]),
            "--sessions-out", sess] + [source_flag(src, f) for f in c["flags"]]
    if c["policy"] != "-":
        argv += ["--policy-file", os.path.join(src, c["policy"])]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        print("precision: %s: stripwatch exited %d: %s" % (c["path"], p.returncode,
                                                           p.stderr.strip()))
        return None, None
    with open(sess, encoding="utf-8") as f:
        n_sess = sum(1 for line in f if line.strip())
    alerts = []
    for line in p.stdout.splitlines():
        o = json.loads(line)
        if o["event"]["kind"] != "alert":
            continue
        name = o["stripwatch"]["severity_name"]
        if SEV.get(name, 0) >= 2:
            alerts.append((o["rule"]["id"], name, o["stripwatch"]["uid"]))
    return n_sess, alerts


def main():
    if len(sys.argv) not in (4, 5) or sys.argv[3] not in ("pcaps", "shared"):
        sys.exit("usage: precision_figure.py STRIPWATCH SOURCE_DIR pcaps|shared [SHARED_DIR]")
    stripwatch, src, which = sys.argv[1], sys.argv[2], sys.argv[3]
    caps, tps = load_benign()
    caps = [c for c in caps if c["set"] == which]
    base = src
    if which == "shared":
        base = sys.argv[4] if len(sys.argv) == 5 and sys.argv[4] else \
            os.path.join(src, "..", "shared", "pcaps-third-party")
        if not os.path.isdir(base):
            print("precision: skipped: the shared third-party captures are not at %s "
                  "(set SW_SHARED_PCAPS to their directory)" % base)
            return 77
        listed = {c["path"] for c in caps}
        for root, _, files in os.walk(base):
            for fn in files:
                rel = os.path.relpath(os.path.join(root, fn), base)
                if fn.endswith((".pcap", ".pcapng", ".cap")) and rel not in listed:
                    print("precision: %s: a capture of the shared set not listed in "
                          "tests/precision/BENIGN" % rel)
                    return 1
    ok, n_sess, n_alerts, n_tp = True, 0, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for c in caps:
            got_sess, alerts = run(stripwatch, src, base, c, tmp)
            if got_sess is None:
                ok = False
                continue
            if got_sess != c["sessions"]:
                print("precision: %s: %d sessions, want %d" % (c["path"], got_sess,
                                                               c["sessions"]))
                ok = False
            n_sess += got_sess
            want = sorted((r, s) for st, p, r, s in tps if st == which and p == c["path"])
            got = sorted((r, s) for r, s, _ in alerts)
            n_alerts += len(alerts)
            for r, s, uid in alerts:
                known = (r, s) in want
                n_tp += known
                print("precision: %s: %s %s session %s: %s" % (
                    c["path"], r, s, uid, "known true positive" if known else "NOT a known "
                    "true positive"))
            if got != want:
                print("precision: %s: medium+ alerts %s, want %s" % (c["path"], got, want))
                ok = False
    other = n_alerts - n_tp
    per = lambda k: 1000.0 * k / n_sess if n_sess else 0.0  # noqa: E731
    print("precision (%s): %d benign sessions in %d captures; %d medium+ alerts, %d known true "
          "positives, %d others: %.1f per 1,000 sessions not true positives (%.1f medium+ in all)"
          % (which, n_sess, len(caps), n_alerts, n_tp, other, per(other), per(n_alerts)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
