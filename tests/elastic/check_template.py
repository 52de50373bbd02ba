#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Every document stripwatch writes fits the shipped Elasticsearch mappings.

Reads alerts/elastic/index-template.json (a composable index template,
`dynamic: strict`) and alerts/elastic/ingest-pipeline.json, and checks, as
Elasticsearch would when indexing: every field is mapped (no unmapped field:
strict mapping rejects the document), and each JSON value fits its mapped
type (keyword: string; ip: an IPv4/IPv6 address; date: RFC 3339 as the
sensor writes it; long: an integer in range; boolean: true/false; object
and nested: JSON objects, arrays of them for nested; flattened: any object).
null and arrays of fitting values fit any type. The fields the ingest
pipeline sets must be mapped too.

Documents: the golden session records (tests/golden/expected/*.jsonl) and
what the real stripwatch writes (session records, alerts, health records)
for every capture under pcaps/, with no policy and with each shipped policy
snapshot, with --any-port and --log-addresses.

usage: check_template.py STRIPWATCH SOURCE_DIR
       check_template.py --selftest   (the checker rejects what it must)
"""
import glob
import ipaddress
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
INTEGER_RANGE = {"long": 2 ** 63, "integer": 2 ** 31, "short": 2 ** 15, "byte": 2 ** 7}


def fits(value, m):
    """None when value fits mapping m, else why not."""
    if value is None:
        return None
    t = m.get("type", "object")
    if isinstance(value, list) and t not in ("flattened",):
        for v in value:
            if isinstance(v, list):
                return "array of arrays"
            why = fits(v, m)
            if why:
                return why
        return None
    if t == "flattened":
        return None if isinstance(value, (dict, list, str, int, float, bool)) else "not JSON"
    if t in ("object", "nested"):
        return None if isinstance(value, dict) else f"{json.dumps(value)} is not an object ({t})"
    if isinstance(value, dict):
        return f"an object where the mapping says {t}"
    if t in ("keyword", "text", "wildcard", "constant_keyword"):
        return None if isinstance(value, str) else f"{json.dumps(value)} is not a string ({t})"
    if t == "ip":
        try:
            ipaddress.ip_address(value)
            return None
        except (ValueError, TypeError):
            return f"{json.dumps(value)} is not an IP address"
    if t == "date":
        return None if isinstance(value, str) and DATE.match(value) else \
            f"{json.dumps(value)} is not an RFC 3339 date"
    if t in INTEGER_RANGE:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{json.dumps(value)} is not an integer ({t})"
        r = INTEGER_RANGE[t]
        return None if -r <= value < r else f"{value} out of range for {t}"
    if t in ("double", "float", "scaled_float", "half_float"):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else f"{json.dumps(value)} is not a number ({t})"
    if t == "boolean":
        return None if isinstance(value, bool) else f"{json.dumps(value)} is not a boolean"
    return f"mapping type {t} unknown to this checker"


def check(doc, props, path=""):
    """Problems of one object against the properties of its mapping."""
    problems = []
    for k, v in doc.items():
        p = f"{path}.{k}" if path else k
        m = props.get(k)
        if m is None:
            problems.append(f"{p}: not mapped")
            continue
        why = fits(v, m)
        if why:
            problems.append(f"{p}: {why}")
            continue
        t = m.get("type", "object")
        if t in ("object", "nested"):
            for obj in (v if isinstance(v, list) else [v]):
                if isinstance(obj, dict):
                    problems += check(obj, m.get("properties", {}), p)
    return problems


def load_mappings(source_dir):
    with open(os.path.join(source_dir, "alerts/elastic/index-template.json"), encoding="utf-8") as f:
        t = json.load(f)
    mappings = t["template"]["mappings"]
    if mappings.get("dynamic") != "strict":
        sys.exit("FAIL index template: mappings.dynamic must be \"strict\"")
    if "index_patterns" not in t:
        sys.exit("FAIL index template: no index_patterns (not a composable template)")
    return mappings["properties"]


def pipeline_fields(source_dir):
    """Fields the ingest pipeline writes."""
    with open(os.path.join(source_dir, "alerts/elastic/ingest-pipeline.json"), encoding="utf-8") as f:
        p = json.load(f)
    out = []
    for proc in p.get("processors", []) + p.get("on_failure", []):
        for name, body in proc.items():
            if name == "set":
                out.append(body["field"])
    return out


def mapped(props, dotted):
    m = {"properties": props}
    for k in dotted.split("."):
        m = m.get("properties", {}).get(k)
        if m is None:
            return False
    return True


def documents(stripwatch, source_dir):
    docs = []
    for path in sorted(glob.glob(os.path.join(source_dir, "tests/golden/expected/*.jsonl"))):
        with open(path, encoding="utf-8") as f:
            docs += [(os.path.basename(path), json.loads(l)) for l in f if l.strip()]
    policies = [None, "pcaps/policies.json"] + sorted(
        os.path.relpath(p, source_dir)
        for p in glob.glob(os.path.join(source_dir, "tests/golden_alerts/policies-*.json")))
    pcaps = []
    for d, subdirs, files in os.walk(os.path.join(source_dir, "pcaps")):
        subdirs[:] = sorted(x for x in subdirs if not x.startswith("."))
        pcaps += [os.path.join(d, f) for f in files if f.endswith((".pcap", ".pcapng"))]
    for pcap in sorted(pcaps):
        for pol in policies:
            cmd = [stripwatch, "-q", "-r", pcap, "--any-port", "--log-addresses",
                   "--sessions-out", "-", "--alerts-out", "-"]
            if pol:
                cmd += ["--policy-file", os.path.join(source_dir, pol)]
            p = subprocess.run(cmd, capture_output=True, timeout=300, check=False)
            if p.returncode != 0:
                sys.exit(f"FAIL {' '.join(cmd)}: exit {p.returncode}: {p.stderr.decode(errors='replace')}")
            name = os.path.relpath(pcap, source_dir) + (f" with {pol}" if pol else "")
            docs += [(name, json.loads(l)) for l in p.stdout.decode().splitlines() if l.strip()]
        # DANE (the dane object of the alerts) from the shipped TLSA snapshot
        cmd = [stripwatch, "-q", "-r", pcap, "--log-addresses", "--alerts-out", "-",
               "--policy-file", os.path.join(source_dir, "pcaps/policies.json"),
               "--dane-file", os.path.join(source_dir, "pcaps/dane.json")]
        p = subprocess.run(cmd, capture_output=True, timeout=300, check=False)
        if p.returncode != 0:
            sys.exit(f"FAIL {' '.join(cmd)}: exit {p.returncode}: {p.stderr.decode(errors='replace')}")
        name = os.path.relpath(pcap, source_dir) + " with pcaps/dane.json"
        docs += [(name, json.loads(l)) for l in p.stdout.decode().splitlines() if l.strip()]
    return docs


def selftest():
    props = {"a": {"type": "ip"}, "n": {"type": "long"}, "o": {"properties": {"s": {"type": "keyword"}}},
             "d": {"type": "date"}, "f": {"type": "flattened"}, "b": {"type": "boolean"}}
    good = {"a": "2001:db8::1", "n": [1, 2], "o": {"s": "x"}, "d": "2026-11-22T17:30:09.606785Z",
            "f": {"any": [1, {"x": None}]}, "b": False}
    bad = [({"x": 1}, "x: not mapped"), ({"o": {"t": "y"}}, "o.t: not mapped"),
           ({"a": "mx.example"}, "not an IP"), ({"n": "1"}, "not an integer"),
           ({"n": True}, "not an integer"), ({"o": "s"}, "not an object"),
           ({"o": {"s": {"deep": 1}}}, "an object where"), ({"d": "22 Nov 2026"}, "not an RFC 3339"),
           ({"b": "true"}, "not a boolean"), ({"n": 2 ** 63}, "out of range")]
    failures = 0
    if check(good, props):
        print(f"FAIL selftest: a fitting document rejected: {check(good, props)}")
        failures += 1
    for doc, want in bad:
        got = check(doc, props)
        if not any(want in g for g in got):
            print(f"FAIL selftest: {doc} gave {got}, want a problem with {want!r}")
            failures += 1
    print(f"selftest: {1 + len(bad)} cases, {failures} failure(s)")
    return 1 if failures else 0


def main():
    if sys.argv[1:] == ["--selftest"]:
        return selftest()
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    stripwatch, source_dir = sys.argv[1:]
    props = load_mappings(source_dir)
    failures = 0
    for field in pipeline_fields(source_dir):
        if not mapped(props, field):
            print(f"FAIL ingest pipeline sets {field}, which is not mapped")
            failures += 1
    docs = documents(stripwatch, source_dir)
    kinds = {}
    for name, doc in docs:
        ds = doc.get("event", {}).get("dataset", "?")
        kinds[ds] = kinds.get(ds, 0) + 1
        for problem in check(doc, props):
            print(f"FAIL {name} ({ds}): {problem}")
            failures += 1
    for want in ("stripwatch.session", "stripwatch.alert", "stripwatch.health"):
        if not kinds.get(want):
            print(f"FAIL no {want} document was checked")
            failures += 1
    print(f"{len(docs)} documents checked ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}), "
          f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
