#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# check_records.py: the session records of issue 12's captures
# (tests/precision/pcaps/) hold the facts the decoder must keep: for each
# capture, exact values at JSON paths of its one session record.
#
# Usage: check_records.py STRIPWATCH SOURCE_DIR
# Exit 1 naming the capture, the path, the value expected and the one found.
import json
import os
import subprocess
import sys
import tempfile

CASES = {
    # a 4,000-byte HELO argument: kept cut, and said so
    "helo-4k.pcap": {
        "smtp.helo.verb": "HELO",
        "stripwatch.anomalies.0.kind": "field_truncated",
        "stripwatch.anomalies.0.detail": "field=helo.host length=4000 kept=255",
    },
    # the nested MAIL refused: the accepted sender keeps RCPT and DATA
    "nested-mail-503.pcap": {
        "smtp.transactions.0.mail_from_domain": "example.net",
        "smtp.transactions.0.rcpt.0.domain": "example.org",
        "smtp.transactions.0.rcpt.0.code": 250,
        "smtp.transactions.0.data.cleartext": True,
        "smtp.transactions.0.data.code": 250,
        "smtp.transactions.1.mail_from_domain": "example.com",
        "smtp.transactions.1.mail_code": 503,
        "smtp.transactions.1.rcpt": [],
        "smtp.transactions.1.data.accepted": False,
    },
    # RCPT and DATA after the completed transaction: no transaction
    "after-transaction-503.pcap": {
        "smtp.transactions.0.data.code": 250,
        "smtp.transactions.0.data.accepted": True,
        "smtp.transactions.0.rcpt.1": None,
        "stripwatch.anomalies.0.detail": "RCPT outside a transaction",
        "stripwatch.anomalies.1.detail": "DATA outside a transaction",
    },
    # a reply whose lines change code ends at the change
    "reply-code-change.pcap": {
        "smtp.capabilities": [],
        "smtp.transactions.0.mail_code": 250,
        "smtp.transactions.0.rcpt.0.code": 250,
        "smtp.transactions.0.data.code": 250,
        "stripwatch.anomalies.0.kind": "reply_code_changed",
        "stripwatch.anomalies.0.detail": "reply 250 ended by a 502 line",
    },
    # DATA without a visible MAIL FROM: content in clear, begun before
    "capture-starts-at-data.pcap": {
        "smtp.transactions.0.before_capture": True,
        "smtp.transactions.0.data.cleartext": True,
        "smtp.transactions.0.data.bytes": 63,
        "smtp.transactions.0.data.code": 250,
    },
    # past the 128 recipients kept: their domains
    "recipients-enforce-past-kept.pcap": {
        "smtp.transactions.0.rcpt_dropped": 13,
        "smtp.transactions.0.rcpt_more_domains.0.domain": "decoy08.example",
        "smtp.transactions.0.rcpt_more_domains.12.domain": "example.org",
        "smtp.transactions.0.rcpt_more_domains.12.accepted": 1,
        "stripwatch.anomalies.0.kind": "bound_reached",
    },
    # one side only: the delivery (client) and the EHLO reply (server)
    "strip-client-side-only.pcap": {
        "smtp.transactions.0.rcpt.0.domain": "example.org",
        "smtp.transactions.0.data.cleartext": True,
    },
    # HELO answered, then EHLO with the capabilities: the EHLO is recorded
    "helo-then-ehlo.pcap": {
        "smtp.helo.verb": "EHLO",
        "smtp.helo.host": "mail.example.net",
        "smtp.capabilities.0": "PIPELINING",
    },
    # AUTH LOGIN seen from the client's side only: the delivery after it
    "auth-login-client-side-only.pcap": {
        "smtp.auth.mechanism": "LOGIN",
        "smtp.auth.cleartext": True,
        "smtp.transactions.0.mail_from_domain": "example.net",
        "smtp.transactions.0.rcpt.0.domain": "example.org",
        "smtp.transactions.0.data.cleartext": True,
        "smtp.transactions.0.data.bytes": 63,
    },
    "strip-server-side-only.pcap": {
        "smtp.capabilities.0": "PIPELINING",
        "smtp.starttls.offered": False,
    },
}


def at(o, path):
    for k in path.split("."):
        if isinstance(o, list):
            i = int(k)
            o = o[i] if i < len(o) else None
        elif isinstance(o, dict):
            o = o.get(k)
        else:
            return None
    return o


def main():
    exe, src = sys.argv[1], sys.argv[2]
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for pcap, want in sorted(CASES.items()):
            out = os.path.join(tmp, pcap + ".jsonl")
            path = os.path.join(src, "tests/precision/pcaps", pcap)
            subprocess.run([exe, "--no-config", "-r", path, "--sessions-out", out],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            recs = [json.loads(l) for l in open(out) if l.strip()]
            if len(recs) != 1:
                print("check_records: %s: %d session records, want 1" % (pcap, len(recs)))
                bad = 1
                continue
            for p, v in want.items():
                got = at(recs[0], p)
                if got != v:
                    print("check_records: %s: %s is %r, want %r" % (pcap, p, got, v))
                    bad = 1
    sys.exit(bad)


if __name__ == "__main__":
    main()
