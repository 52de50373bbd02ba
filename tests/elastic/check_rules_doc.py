#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# check_rules_doc.py: alerts/RULES.md has an analyst's page for every rule of
# alerts/rules.c ("### Analyst: `ID`" with Check next, False positives and
# Pivot on), and every field it tells the analyst to pivot on is a field of
# the index template (alerts/elastic/index-template.json), so a renamed field
# cannot leave the pages pointing at nothing.
#   check_rules_doc.py SOURCE_DIR   check the project's files; exit 1 on a finding
#   check_rules_doc.py --selftest   the checks catch a missing page, a missing
#                                   part and an unmapped pivot field
import json
import os
import re
import sys

PARTS = ("**Check next**", "**False positives**", "**Pivot on**")


def rule_ids(rules_c):
    return re.findall(r'\[RULE_[A-Z_]+\]\s*=\s*\{\s*"([a-z_.]+)"', rules_c)


def field_known(props, path):
    """True when PATH (dotted, '*' for any key) is mapped, or lies under a
    flattened field."""
    first, _, rest = path.partition(".")
    names = list(props) if first == "*" else [first]
    for name in names:
        node = props.get(name)
        if node is None:
            continue
        if node.get("type") == "flattened":
            return True
        if not rest:
            return True
        if field_known(node.get("properties", {}), rest):
            return True
    return False


def pivot_fields(text):
    """Backticked dotted names on the Pivot on lines and in the common list
    (Zeek's log names, `conn.log`, are not fields)."""
    out = []
    for block in re.findall(r"\*\*Pivot on\*\*:(.*?)(?:\n\n|\n### |\Z)", text, re.S):
        out += re.findall(r"`([a-z_@][a-z0-9_.*@]*\.[a-z0-9_.*]+)`", block)
    common = re.search(r"same pivots:\n(.*?)\n\n### ", text, re.S)
    if common:
        for line in re.findall(r"^- (`[^:]*?):", common.group(1), re.M):
            out += re.findall(r"`([a-z_@][a-z0-9_.*@]*\.[a-z0-9_.*]+)`", line)
    return [f for f in out if not f.endswith(".log")]


def check(rules_md, rules_c, template):
    props = template["template"]["mappings"]["properties"]
    ids = rule_ids(rules_c)
    errors = []
    if not ids:
        errors.append("alerts/rules.c: no rule id found")
    pages = re.split(r"\n(?=### )", rules_md)
    for rid in ids:
        page = [p for p in pages if p.startswith("### Analyst: `%s`\n" % rid)]
        if len(page) != 1:
            errors.append("alerts/RULES.md: %d analyst pages for rule %s (want 1)" % (len(page), rid))
            continue
        for part in PARTS:
            if part not in page[0]:
                errors.append("alerts/RULES.md: rule %s: no %s" % (rid, part.strip("*")))
    fields = pivot_fields(rules_md)
    if not fields:
        errors.append("alerts/RULES.md: no pivot field found")
    for f in fields:
        if f in ids:
            continue
        if not field_known(props, f):
            errors.append("alerts/RULES.md: pivot field %s is not in the index template" % f)
    return errors


def selftest():
    rules_c = '[RULE_A] = {"a.one", "x"}, [RULE_B] = {"b.two", "y"},'
    template = {"template": {"mappings": {"properties": {
        "source": {"properties": {"ip": {"type": "ip"}}},
        "stripwatch": {"properties": {"evidence": {"type": "flattened"}}}}}}}
    good = ("same pivots:\n- `source.ip`: x\n\n"
            "### Analyst: `a.one`\n\n- **Check next**: x\n- **False positives**: y\n"
            "- **Pivot on**: `source.ip`, `stripwatch.evidence.posture.server.uid`, `ssl.log`\n\n"
            "### Analyst: `b.two`\n\n- **Check next**: x\n- **False positives**: y\n"
            "- **Pivot on**: `source.ip`\n")
    cases = [
        (good, []),
        (good.replace("### Analyst: `b.two`", "### Analyst: `b.twoo`"),
         ["alerts/RULES.md: 0 analyst pages for rule b.two (want 1)"]),
        (good.replace("- **False positives**: y\n- **Pivot on**: `source.ip`\n",
                      "- **Pivot on**: `source.ip`\n"),
         ["alerts/RULES.md: rule b.two: no False positives"]),
        (good.replace("- **Pivot on**: `source.ip`\n", "- **Pivot on**: `source.port`\n"),
         ["alerts/RULES.md: pivot field source.port is not in the index template"]),
        (good.replace("- `source.ip`: x", "- `destination.ip`: x"),
         ["alerts/RULES.md: pivot field destination.ip is not in the index template"]),
    ]
    bad = 0
    for i, (doc, want) in enumerate(cases):
        got = check(doc, rules_c, template)
        if got != want:
            print("selftest case %d: got %r, want %r" % (i, got, want))
            bad += 1
    print("check_rules_doc selftest: %d of %d cases as expected" % (len(cases) - bad, len(cases)))
    return 1 if bad else 0


def main():
    if sys.argv[1:] == ["--selftest"]:
        return selftest()
    if len(sys.argv) != 2:
        print("usage: check_rules_doc.py SOURCE_DIR | --selftest", file=sys.stderr)
        return 2
    src = sys.argv[1]
    with open(os.path.join(src, "alerts/RULES.md"), encoding="utf-8") as f:
        rules_md = f.read()
    with open(os.path.join(src, "alerts/rules.c"), encoding="utf-8") as f:
        rules_c = f.read()
    with open(os.path.join(src, "alerts/elastic/index-template.json"), encoding="utf-8") as f:
        template = json.load(f)
    errors = check(rules_md, rules_c, template)
    for e in errors:
        print(e)
    n = len(rule_ids(rules_c))
    print("check_rules_doc: %d rules, %d pivot fields, %d findings"
          % (n, len(pivot_fields(rules_md)), len(errors)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
