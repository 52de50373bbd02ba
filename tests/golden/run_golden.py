#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Golden session-record tests: runs the real `stripwatch` on every capture
listed in TESTLIST and compares its session records, field by field, with the
reviewed expected JSON lines in expected/.

TESTLIST: one case per line, `name  pcap  expected-file  [flags...]`; `#`
starts a comment. A pcap is `pcaps:PATH` (under pcaps/: the project's own
captures, and other projects' in pcaps/third-party/) or `extra:PATH` (under
the optional SW_EXTRA_PCAPS directory of captures that may not be
redistributed, see pcaps/third-party/README.md). Without that directory
(--extra-pcaps= empty), an `extra:` case is skipped with one line on stderr;
with it, a missing file is a failure.

usage: run_golden.py STRIPWATCH SOURCE_DIR --extra-pcaps=[DIR] [--update] [NAME...]
       run_golden.py --selftest   (the comparison itself finds differences)
  --update  rewrite the expected files from the current output (review them
            by hand against tshark before committing; needed whenever pcaps/
            is regenerated: ports, times and so uids change)
Exit status 0 when every case matches, 1 otherwise.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def load_testlist():
    cases = []
    with open(os.path.join(HERE, "TESTLIST"), encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) < 3:
                sys.exit(f"TESTLIST: line {no}: want `name pcap expected [flags]`, got {line!r}")
            cases.append((parts[0], parts[1], parts[2], parts[3:]))
    return cases


def resolve(pcap, source_dir, extra):
    """The capture's path, or None for an extra: capture without SW_EXTRA_PCAPS."""
    kind, _, rel = pcap.partition(":")
    if kind == "pcaps":
        return os.path.join(source_dir, "pcaps", rel)
    if kind == "extra":
        return os.path.join(extra, rel) if extra else None
    sys.exit(f"TESTLIST: pcap {pcap!r}: want pcaps:PATH or extra:PATH")


def captures_under(pcaps_dir):
    """Every capture under pcaps/, as TESTLIST names it (pcaps:REL)."""
    found = []
    for d, subdirs, files in os.walk(pcaps_dir):
        subdirs[:] = sorted(x for x in subdirs if not x.startswith("."))  # scratch dirs
        for f in files:
            if f.endswith((".pcap", ".pcapng")):
                found.append("pcaps:" + os.path.relpath(os.path.join(d, f), pcaps_dir))
    return sorted(found)


def run(stripwatch, pcap, flags):
    cmd = [stripwatch, "-q", "-r", pcap, "--sessions-out", "-", "--alerts-out", os.devnull] + flags
    p = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.decode(errors='replace')}")
    recs = []
    for no, line in enumerate(p.stdout.decode().splitlines(), 1):
        if line.strip():
            try:
                recs.append(json.loads(line))
            except ValueError as e:
                raise RuntimeError(f"{pcap}: output line {no}: not JSON: {e}") from e
    return recs


def flatten(v, path, out):
    if isinstance(v, dict):
        if not v:
            out[path] = {}
        for k, x in v.items():
            flatten(x, f"{path}.{k}" if path else k, out)
    elif isinstance(v, list):
        out[path + ".length"] = len(v)
        for i, x in enumerate(v):
            flatten(x, f"{path}[{i}]", out)
    else:
        out[path] = v
    return out


def compare(name, got, want):
    """Field-by-field differences, keyed by session uid."""
    errs = []
    g = {r["stripwatch"]["uid"]: r for r in got}
    w = {r["stripwatch"]["uid"]: r for r in want}
    for uid in sorted(set(g) | set(w)):
        if uid not in g:
            errs.append(f"{name}: session {uid}: expected, not produced")
            continue
        if uid not in w:
            errs.append(f"{name}: session {uid}: produced, not expected")
            continue
        fg, fw = flatten(g[uid], "", {}), flatten(w[uid], "", {})
        for k in sorted(set(fg) | set(fw)):
            if fg.get(k, "<absent>") != fw.get(k, "<absent>"):
                errs.append(f"{name}: session {uid}: {k}: got {json.dumps(fg.get(k, '<absent>'))}, "
                            f"want {json.dumps(fw.get(k, '<absent>'))}")
    return errs


def selftest():
    """The comparison must see a changed, a missing and an extra field, and a
    missing or extra session."""
    a = {"stripwatch": {"uid": "S1", "anomalies": [{"kind": "gap"}]}, "smtp": {"x": 1}}
    b = json.loads(json.dumps(a))
    assert compare("t", [a], [b]) == []
    b["smtp"]["x"] = 2
    b["smtp"]["y"] = None
    b["stripwatch"]["anomalies"] = []
    errs = compare("t", [a], [b])
    assert errs == ['t: session S1: smtp.x: got 1, want 2',
                    't: session S1: smtp.y: got "<absent>", want null',
                    't: session S1: stripwatch.anomalies.length: got 1, want 0',
                    't: session S1: stripwatch.anomalies[0].kind: got "gap", want "<absent>"'], errs
    c = {"stripwatch": {"uid": "S2"}}
    assert compare("t", [a, c], [a]) == ["t: session S2: produced, not expected"]
    assert compare("t", [a], [a, c]) == ["t: session S2: expected, not produced"]
    print("ok   selftest")
    return 0


def main():
    if sys.argv[1:] == ["--selftest"]:
        return selftest()
    args = [a for a in sys.argv[1:] if a != "--update"]
    update = "--update" in sys.argv
    if len(args) < 3 or not args[2].startswith("--extra-pcaps="):
        sys.exit(__doc__)
    stripwatch, source_dir = args[:2]
    extra = args[2].partition("=")[2]
    only = set(args[3:])
    failed = 0
    # every capture under pcaps/ must have its golden case
    listed = {pcap for _, pcap, _, _ in load_testlist()}
    for pcap in captures_under(os.path.join(source_dir, "pcaps")):
        if pcap not in listed and not only:
            print(f"FAIL {pcap}: not in TESTLIST")
            failed += 1
    for name, pcap, expected, flags in load_testlist():
        if only and name not in only:
            continue
        path = resolve(pcap, source_dir, extra)
        if path is None:
            rel = pcap.partition(":")[2]
            print(f"golden_sessions: skipped {name}: {rel} is not redistributable (no licence); "
                  "set SW_EXTRA_PCAPS to a directory holding it", file=sys.stderr)
            continue
        exp_path = os.path.join(HERE, "expected", expected)
        try:
            got = run(stripwatch, path, flags)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            print(f"FAIL {name}: {e}")
            failed += 1
            continue
        if update:
            with open(exp_path, "w", encoding="utf-8") as f:
                for r in got:
                    f.write(json.dumps(r, sort_keys=True) + "\n")
            print(f"updated {name}: {len(got)} sessions")
            continue
        try:
            with open(exp_path, encoding="utf-8") as f:
                want = [json.loads(l) for l in f if l.strip()]
        except OSError as e:
            print(f"FAIL {name}: {exp_path}: {e.strerror}")
            failed += 1
            continue
        errs = compare(name, got, want)
        if errs:
            failed += 1
            print(f"FAIL {name}")
            for e in errs[:50]:
                print("  " + e)
        else:
            print(f"ok   {name}: {len(got)} sessions")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
