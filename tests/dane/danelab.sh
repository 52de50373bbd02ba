#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# danelab.sh: the DANE lookups' integration lab on loopback. A zone
# dane.example signed here (ldns-keygen, ldns-signzone) and an unsigned zone
# plain.example, both served by nsd; the key-signing key is written as the
# trust anchor DIR/ta.key that the validating libunbound of the test uses.
# One TLSA record is changed after signing, so its signature is broken
# (bogus). And a redis-server for the shared cache. With HTTPS_PORT, also
# the MTA-STS policy host of ok.dane.example and okbogus.dane.example
# (openssl s_server -WWW with a certificate of the lab's CA DIR/ca.pem,
# policy mx *.dane.example). Everything lives in DIR; only
# processes started here are stopped here (DIR/pids).
#   danelab.sh start DIR DNS_PORT REDIS_PORT [HTTPS_PORT]
#   danelab.sh stop DIR
# Records (dane.example, signed):
#   _25._tcp.mx1   TLSA 3 1 1 11..11 and 2 0 2 22..22 (64 bytes)
#   _25._tcp.bogus TLSA 3 1 1 33..33, changed to 44..44 after signing
#   mx-none        A 127.0.0.1, no TLSA (secure denial)
#   _25._tcp.mx-pkix TLSA 1 1 1 66..66 (PKIX-EE: not usable for SMTP)
#   MX: dane.example -> mx1, bogus, mx-none; ok -> mx1 (with an MTA-STS
#   policy naming it and a TLS-RPT record); okbogus -> mx1, bogus (the same
#   policy, no TLS-RPT record); pkix -> mx-pkix
# plain.example (unsigned): _25._tcp.mx TLSA 3 1 1 55..55 (insecure); MX mx
# secure.example (signed, its own keys; both key-signing keys are in ta.key):
#   the zone of pcaps/generate.sh's DANE captures, with the TLSA records
#   that pcaps/dane.json holds for mx.secure.example and
#   mx-stale.secure.example (those of the committed captures); MX secure ->
#   mx (198.51.100.30), stale -> mx-stale (198.51.100.31)
set -euo pipefail

cmd=$1 dir=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

stop() {
  [ -f "$dir/pids" ] || return 0
  while read -r pid; do
    kill "$pid" 2>/dev/null || true
  done <"$dir/pids"
  for _ in $(seq 50); do
    alive=0
    while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$dir/pids"
    [ $alive = 0 ] && break
    sleep 0.1
  done
  while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done <"$dir/pids"
  rm -f "$dir/pids"
}

if [ "$cmd" = stop ]; then
  stop
  exit 0
fi
[ "$cmd" = start ] || { echo "danelab.sh: unknown command '$cmd'" >&2; exit 2; }
dns_port=$3 redis_port=$4 https_port=${5:-}
rep() { printf "%0${2}d" 0 | tr 0 "$1"; }

cd "$dir"
cat >dane.example.zone <<ZONE
\$ORIGIN dane.example.
\$TTL 300
@ IN SOA ns.dane.example. admin.dane.example. 1 3600 600 86400 300
@ IN NS ns
ns IN A 127.0.0.1
mx1 IN A 127.0.0.1
mx-none IN A 127.0.0.1
_25._tcp.mx1 IN TLSA 3 1 1 $(rep 1 64)
_25._tcp.mx1 IN TLSA 2 0 2 $(rep 2 128)
_25._tcp.bogus IN TLSA 3 1 1 $(rep 3 64)
@ IN MX 10 mx1
@ IN MX 20 bogus
@ IN MX 30 mx-none
mx-pkix IN A 127.0.0.1
_25._tcp.mx-pkix IN TLSA 1 1 1 $(rep 6 64)
pkix IN MX 10 mx-pkix
ok IN MX 10 mx1
_mta-sts.ok IN TXT "v=STSv1; id=ok1;"
mta-sts.ok IN A 127.0.0.1
_smtp._tls.ok IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@ok.dane.example"
okbogus IN MX 10 mx1
okbogus IN MX 20 bogus
_mta-sts.okbogus IN TXT "v=STSv1; id=okbogus1;"
mta-sts.okbogus IN A 127.0.0.1
ZONE
cat >plain.example.zone <<ZONE
\$ORIGIN plain.example.
\$TTL 300
@ IN SOA ns.plain.example. admin.plain.example. 1 3600 600 86400 300
@ IN NS ns
ns IN A 127.0.0.1
_25._tcp.mx IN TLSA 3 1 1 $(rep 5 64)
@ IN MX 10 mx
ZONE
ksk=$(ldns-keygen -a ECDSAP256SHA256 -k dane.example)
zsk=$(ldns-keygen -a ECDSAP256SHA256 dane.example)
ldns-signzone -n -o dane.example. -f dane.example.signed dane.example.zone "$ksk" "$zsk"
# break the signature of one RRset: its data changes, its RRSIG does not
sed -i "s/^\(_25\._tcp\.bogus\.dane\.example\.\t.*TLSA\t3 1 1 \)$(rep 3 64)/\1$(rep 4 64)/" \
  dane.example.signed
grep -q "TLSA	3 1 1 $(rep 4 64)" dane.example.signed
cp "$ksk.key" ta.key

# the capture lab's zone, its TLSA records from the committed snapshot
tlsa() {
  python3 -c 'import json, sys
for r in json.load(open(sys.argv[1]))[sys.argv[2]]["records"]:
    print(sys.argv[3] + " IN TLSA " + r)' "$here/../../pcaps/dane.json" "$1" "$2"
}
cat >secure.example.zone <<ZONE
\$ORIGIN secure.example.
\$TTL 300
@ IN SOA ns.secure.example. admin.secure.example. 1 3600 600 86400 300
@ IN NS ns
ns IN A 127.0.0.1
@ IN MX 10 mx
mx IN A 198.51.100.30
$(tlsa mx.secure.example _25._tcp.mx)
stale IN MX 10 mx-stale
mx-stale IN A 198.51.100.31
$(tlsa mx-stale.secure.example _25._tcp.mx-stale)
ZONE
ksk2=$(ldns-keygen -a ECDSAP256SHA256 -k secure.example)
zsk2=$(ldns-keygen -a ECDSAP256SHA256 secure.example)
ldns-signzone -n -o secure.example. -f secure.example.signed secure.example.zone "$ksk2" "$zsk2"
cat "$ksk2.key" >>ta.key

cat >nsd.conf <<CONF
server:
  ip-address: 127.0.0.1@$dns_port
  port: $dns_port
  username: ""
  chroot: ""
  zonesdir: "$dir"
  database: ""
  pidfile: "$dir/nsd.pid"
  logfile: "$dir/nsd.log"
  xfrdfile: "$dir/xfrd.state"
  zonelistfile: "$dir/zone.list"
  server-count: 1
  verbosity: 1
remote-control:
  control-enable: no
zone:
  name: dane.example
  zonefile: dane.example.signed
zone:
  name: plain.example
  zonefile: plain.example.zone
zone:
  name: secure.example
  zonefile: secure.example.signed
CONF
: >pids
nsd -d -c "$dir/nsd.conf" >"$dir/nsd.out" 2>&1 &
echo $! >>pids
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$dir" >"$dir/redis.out" 2>&1 &
echo $! >>pids
https_up() { true; }
if [ -n "$https_port" ]; then
  # the MTA-STS policy host of ok.dane.example, certified by the lab's CA
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
    -out ca.pem -days 30 -subj /CN=danelab-ca 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout sts.key -out sts.csr \
    -subj /CN=mta-sts.ok.dane.example 2>/dev/null
  printf 'subjectAltName=DNS:mta-sts.ok.dane.example,DNS:mta-sts.okbogus.dane.example\n' \
    >sts.ext
  openssl x509 -req -in sts.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out sts.pem -days 30 \
    -extfile sts.ext 2>/dev/null
  mkdir -p www/.well-known
  printf 'version: STSv1\nmode: enforce\nmx: *.dane.example\nmax_age: 604800\n' \
    >www/.well-known/mta-sts.txt
  (cd www && exec openssl s_server -quiet -accept "127.0.0.1:$https_port" -cert ../sts.pem \
    -key ../sts.key -WWW) >"$dir/https.out" 2>&1 &
  echo $! >>pids
  https_up() { (exec 3<>"/dev/tcp/127.0.0.1/$https_port") 2>/dev/null; }
fi
for _ in $(seq 100); do
  if grep -q "nsd started" "$dir/nsd.log" 2>/dev/null &&
    (exec 3<>"/dev/tcp/127.0.0.1/$dns_port") 2>/dev/null &&
    (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null && https_up; then
    exit 0
  fi
  sleep 0.1
done
echo "danelab.sh: servers did not come up" >&2
cat "$dir"/nsd.out "$dir"/nsd.log "$dir"/redis.out >&2 2>/dev/null || true
stop
exit 1
