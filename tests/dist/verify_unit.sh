#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# verify_unit.sh: the systemd unit as installed. `cmake --install` into a
# temporary root (prefix /usr), then, offline (PID 1 need not be systemd):
# `systemd-analyze verify` must print nothing (a warning is a failure: an
# unknown or misspelt setting only warns) and find the binary, /bin/kill and
# the man page; `systemd-analyze security --offline=yes` must give the
# exposure score README.md states.
# usage: verify_unit.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=${1:?usage: verify_unit.sh BUILD_DIR SOURCE_DIR}
src=${2:?usage: verify_unit.sh BUILD_DIR SOURCE_DIR}
fail() { echo "verify_unit: FAIL: $*" >&2; exit 1; }
command -v systemd-analyze >/dev/null || fail "systemd-analyze not found (Debian package systemd)"
command -v man >/dev/null || fail "man not found (Debian package man-db)"
sysunits=/usr/lib/systemd/system
[ -f $sysunits/sysinit.target ] || sysunits=/lib/systemd/system
[ -f $sysunits/sysinit.target ] || fail "no systemd units on this system (Debian package systemd)"
[ -x /bin/kill ] || fail "/bin/kill not found (Debian package procps)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
DESTDIR=$root cmake --install "$build" --prefix /usr >"$tmp/install.log" \
  || { cat "$tmp/install.log"; fail "cmake --install"; }
unit=/usr/lib/systemd/system/stripwatch.service
[ -f "$root$unit" ] || fail "cmake --install did not install $unit"
# What the unit refers to, from this system: the targets its dependencies
# name (verify loads them) and /bin/kill (ExecReload=).
for t in sysinit.target basic.target shutdown.target network-online.target multi-user.target; do
  cp "$sysunits/$t" "$root/usr/lib/systemd/system/"
done
mkdir -p "$root/usr/bin"
ln -s usr/bin "$root/bin"
cp /bin/kill "$root/usr/bin/kill"

cd "$tmp"
out=$(MANPATH=$root/usr/share/man systemd-analyze verify --root="$root" "$unit" 2>&1) \
  || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"
echo "systemd-analyze verify --root=ROOT $unit: clean"

sec=$(systemd-analyze security --offline=yes --root="$root" --no-pager "$unit" 2>&1) \
  || fail "systemd-analyze security: $sec"
score=$(sed -n 's/.*Overall exposure level for stripwatch.service: \([0-9.]* [A-Z]*\).*/\1/p' <<<"$sec")
[ -n "$score" ] || fail "no exposure level in: $sec"
echo "systemd-analyze security --offline=yes: $score"
grep -q "exposure level \*\*$score\*\*" "$src/README.md" \
  || fail "README.md does not state the exposure level **$score** (update its \"Running as a service\")"
