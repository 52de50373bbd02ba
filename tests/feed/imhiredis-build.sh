#!/usr/bin/env bash
# Builds rsyslog's imhiredis input module for the installed rsyslog, once,
# and prints the path of imhiredis.so. Debian 12 ships only the output
# module (omhiredis, in rsyslog-hiredis); imhiredis is in the same source
# package: `apt-get source rsyslog` of the installed version (or, when the
# archive no longer serves that one, another Debian revision of the same
# upstream version: the module interface is the upstream release's), then
# configure --enable-imhiredis and make in contrib/imhiredis only.
#
# Cached outside the source tree: $SW_CI_CACHE, else /var/cache/stripwatch-ci
# when writable (as .ci/cleanroom), else ${XDG_CACHE_HOME:-~/.cache}/stripwatch-ci;
# one directory per installed rsyslog version, built under a lock.
# Exit 0 with the path on stdout; 77 with one line on stderr saying why the
# module cannot be built (the test then skips with that reason).
# usage: imhiredis-build.sh
set -euo pipefail
skip() {
  echo "imhiredis cannot be built: $*" >&2
  exit 77
}
command -v rsyslogd >/dev/null 2>&1 || PATH=$PATH:/usr/sbin
command -v rsyslogd >/dev/null 2>&1 || skip "rsyslogd is not installed (bash .ci/deps --tests)"
ver=$(dpkg-query -W -f='${Version}' rsyslog 2>/dev/null) || skip "the rsyslog package is not installed (bash .ci/deps --tests)"
upstream=${ver%-*}

if [ -n "${SW_CI_CACHE:-}" ]; then
  cache=$SW_CI_CACHE
elif mkdir -p /var/cache/stripwatch-ci 2>/dev/null && [ -w /var/cache/stripwatch-ci ]; then
  cache=/var/cache/stripwatch-ci
else
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/stripwatch-ci
fi
dest=$cache/imhiredis-$ver
so=$dest/imhiredis.so
if [ -s "$so" ]; then
  echo "$so"
  exit 0
fi
mkdir -p "$cache" || skip "cache directory $cache cannot be created"
exec 9>"$cache/imhiredis.lock"
flock 9 # one build at a time; another process may have finished it meanwhile
if [ -s "$so" ]; then
  echo "$so"
  exit 0
fi

for t in apt-get apt-cache dpkg-source make gcc pkg-config; do
  command -v "$t" >/dev/null 2>&1 || skip "$t is missing (bash .ci/deps --tests)"
done
for m in libestr libfastjson hiredis libevent libevent_pthreads zlib; do
  pkg-config --exists "$m" || skip "pkg-config finds no $m (its -dev package: bash .ci/deps --tests)"
done

work=$(mktemp -d "$cache/imhiredis-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
log=$work/build.log
cd "$work"
# the installed version first, then the archive's other revisions of it
versions=$(printf '%s\n' "$ver"; apt-cache showsrc rsyslog 2>/dev/null |
  awk '/^Version:/ {print $2}' | grep -F -x -v "$ver" | grep "^${upstream//./\\.}-" || true)
got=""
for v in $versions; do
  if apt-get source --download-only "rsyslog=$v" >>"$log" 2>&1; then
    got=$v
    break
  fi
done
if [ -z "$got" ]; then
  if ! apt-cache showsrc rsyslog >/dev/null 2>&1 || [ -z "$(apt-cache showsrc rsyslog 2>/dev/null)" ]; then
    skip "apt has no source package rsyslog (no deb-src entry; bash .ci/deps --tests adds one)"
  fi
  skip "apt-get source rsyslog=$ver failed, and no other revision of $upstream could be fetched: $(grep -E '^(E|W):' "$log" | tail -n 1)"
fi
dpkg-source -x rsyslog_"${got#*:}".dsc src >>"$log" 2>&1 || skip "dpkg-source -x of rsyslog $got failed"
cd src
# only what imhiredis needs; rsyslogd itself and the other modules are not built
./configure --enable-imhiredis --disable-rsyslogd --disable-default-tests \
  --disable-libgcrypt --disable-libsystemd --disable-uuid --disable-fmhttp \
  --disable-klog --disable-inet >>"$log" 2>&1 ||
  skip "rsyslog $got: configure --enable-imhiredis failed: $(grep -E 'error:' config.log | tail -n 1)"
make -C contrib/imhiredis >>"$log" 2>&1 ||
  skip "rsyslog $got: make in contrib/imhiredis failed: $(grep -E 'error' "$log" | tail -n 1)"
[ -s contrib/imhiredis/.libs/imhiredis.so ] || skip "rsyslog $got: make left no imhiredis.so"
mkdir -p "$dest"
cp contrib/imhiredis/.libs/imhiredis.so "$dest/imhiredis.so.tmp"
echo "rsyslog source $got, built for installed rsyslog $ver" >"$dest/SOURCE"
mv "$dest/imhiredis.so.tmp" "$so"
echo "$so"
