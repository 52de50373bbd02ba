#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# netlab.sh: the policy engine's integration lab on loopback: a test CA and
# certificates (openssl), nginx serving https://mta-sts.<d>.example/ for each
# test domain, unbound answering _mta-sts.<d>.example TXT and mta-sts.<d>.example A,
# and redis-server. Everything lives in DIR; only processes started here are
# stopped here (by the pids recorded in DIR/pids).
#   netlab.sh start DIR DNS_PORT HTTPS_PORT REDIS_PORT
#   netlab.sh stop DIR
#   netlab.sh txt DIR NAME 'TXT-STRINGS'   (replace a TXT record at run time)
set -euo pipefail

cmd=$1 dir=$2

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

if [ "$cmd" = txt ]; then
  name=$3 value=$4
  unbound-control -c "$dir/unbound.conf" local_data_remove "$name" >/dev/null
  unbound-control -c "$dir/unbound.conf" local_data "$name 1 IN TXT $value" >/dev/null
  exit 0
fi

[ "$cmd" = start ] || { echo "netlab.sh: unknown command $cmd" >&2; exit 2; }
dns_port=$3 https_port=$4 redis_port=$5

# Domains served by nginx with the good certificate.
good=(valid cname multi change notfound redirect badtype big trickle shared invalid private short dup v6 fallback)
# IPv6 loopback, when the host has it (v6 and fallback are then served on [::1] too).
v6=0
if ip -6 addr show dev lo 2>/dev/null | grep -q 'inet6 ::1/128'; then v6=1; fi

# ---- certificates ----
pki=$dir/pki
mkdir -p "$pki/newcerts"
: >"$pki/index.txt"
echo 1000 >"$pki/serial"
cat >"$pki/ca.cnf" <<CNF
[ca]
default_ca = test_ca
[test_ca]
dir = $pki
database = $pki/index.txt
new_certs_dir = $pki/newcerts
serial = $pki/serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = copy
[any]
commonName = supplied
[ext]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
CNF
q() { "$@" >/dev/null 2>&1 || { echo "netlab.sh: failed: $*" >&2; "$@" >&2 || true; exit 1; }; }
q openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 2 \
  -subj "/CN=stripwatch test CA" -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign,cRLSign
cp "$pki/ca.crt" "$dir/ca.crt"
# cert NAME "SAN,SAN" [startdate enddate]
cert() {
  local name=$1 sans=$2
  q openssl req -newkey rsa:2048 -nodes -keyout "$pki/$name.key" -out "$pki/$name.csr" \
    -subj "/CN=${sans%%,*}" -addext "subjectAltName=$(echo "$sans" | sed 's/\([^,]*\)/DNS:\1/g')"
  if [ $# -ge 4 ]; then
    q openssl ca -batch -config "$pki/ca.cnf" -extensions ext -cert "$pki/ca.crt" \
      -keyfile "$pki/ca.key" -in "$pki/$name.csr" -out "$pki/$name.crt" -startdate "$3" -enddate "$4"
  else
    q openssl ca -batch -config "$pki/ca.cnf" -extensions ext -cert "$pki/ca.crt" \
      -keyfile "$pki/ca.key" -in "$pki/$name.csr" -out "$pki/$name.crt" -days 2
  fi
}
sans=""
for d in "${good[@]}"; do sans="${sans:+$sans,}mta-sts.$d.example"; done
cert good "$sans"
cert expired "mta-sts.expired.example" 20200101000000Z 20200102000000Z
cert other "mta-sts.other.example"

# ---- policies ----
www=$dir/www
pol() { mkdir -p "$www/$1/.well-known"; printf '%b' "$2" >"$www/$1/.well-known/mta-sts.txt"; }
valid='version: STSv1\nmode: enforce\nmx: mail.valid.example\nmx: *.mx.valid.example\nmax_age: 604800\n'
pol valid "$valid"
pol cname 'version: STSv1\nmode: testing\nmx: mx.cname.example\nmax_age: 86400\n'
pol multi 'version: STSv1\nmode: enforce\nmx: mx.multi.example\nmax_age: 86400\n'
pol change 'version: STSv1\nmode: testing\nmx: old.change.example\nmax_age: 86400\n'
pol redirect "$valid"
pol badtype "$valid"
pol trickle "$valid"
pol expired "$valid"
pol wrongname "$valid"
pol private 'version: STSv1\nmode: enforce\nmx: mx.private.example\nmax_age: 86400\n'
pol v6 'version: STSv1\nmode: enforce\nmx: mx.v6.example\nmax_age: 86400\n'
pol fallback 'version: STSv1\nmode: enforce\nmx: mx.fallback.example\nmax_age: 86400\n'
pol shared 'version: STSv1\nmode: enforce\nmx: mx.shared.example\nmax_age: 3600\n'
pol invalid 'version: STSv1\nmode: enforce\nmax_age: 86400\n'
pol short 'version: STSv1\nmode: enforce\nmx: mx.short.example\nmax_age: 8\n'
pol dup 'version: STSv1\nmode: testing\nmode: enforce\nmx: mx.dup.example\nmax_age: 86400\n'
mkdir -p "$www/notfound"
# 65 KiB: a valid head padded with comment-like extension lines.
mkdir -p "$www/big/.well-known"
{ printf 'version: STSv1\r\nmode: enforce\r\nmx: mx.big.example\r\nmax_age: 86400\r\n'
  for i in $(seq 1 1040); do printf 'ext%05d: %054d\r\n' "$i" 0; done; } >"$www/big/.well-known/mta-sts.txt"
truncate -s 66560 "$www/big/.well-known/mta-sts.txt"

# ---- nginx ----
mkdir -p "$dir/nginx-tmp"
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root;"
{
  cat <<CONF
$user_line
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
events { worker_connections 128; }
http {
  access_log $dir/nginx-access.log;
  client_body_temp_path $dir/nginx-tmp/body;
  proxy_temp_path $dir/nginx-tmp/proxy;
  fastcgi_temp_path $dir/nginx-tmp/fastcgi;
  uwsgi_temp_path $dir/nginx-tmp/uwsgi;
  scgi_temp_path $dir/nginx-tmp/scgi;
  types { text/plain txt; }
  default_type application/octet-stream;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_certificate $pki/good.crt;
  ssl_certificate_key $pki/good.key;
CONF
  for d in "${good[@]}" expired wrongname; do
    echo "  server {"
    echo "    listen 127.0.0.1:$https_port ssl;"
    if [ $v6 = 1 ] && { [ "$d" = v6 ] || [ "$d" = fallback ]; }; then
      echo "    listen [::1]:$https_port ssl;"
    fi
    echo "    server_name mta-sts.$d.example;"
    echo "    root $www/$d;"
    case $d in
      expired) echo "    ssl_certificate $pki/expired.crt; ssl_certificate_key $pki/expired.key;" ;;
      wrongname) echo "    ssl_certificate $pki/other.crt; ssl_certificate_key $pki/other.key;" ;;
      redirect) echo "    location / { return 301 https://mta-sts.valid.example:$https_port/.well-known/mta-sts.txt; }" ;;
      badtype) echo "    types { text/html txt; }" ;;
      trickle) echo "    limit_rate 1;" ;;
    esac
    echo "  }"
  done
  echo "}"
} >"$dir/nginx.conf"

# ---- unbound ----
{
  cat <<CONF
server:
  interface: 127.0.0.1
  port: $dns_port
  do-ip6: no
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$dir"
  pidfile: "$dir/unbound.pid"
  use-syslog: no
  logfile: "$dir/unbound.log"
  verbosity: 1
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  local-zone: "example." static
CONF
  for d in "${good[@]}" expired wrongname; do
    case $d in private | v6 | fallback) continue ;; esac
    echo "  local-data: \"mta-sts.$d.example. 1 IN A 127.0.0.1\""
  done
  echo '  local-data: "mta-sts.private.example. 1 IN A 10.0.0.1"'
  echo '  local-data: "mta-sts.v6.example. 1 IN AAAA ::1"'
  # nothing listens on 127.0.0.2: connecting fails, the next address is tried
  echo '  local-data: "mta-sts.fallback.example. 1 IN A 127.0.0.2"'
  echo '  local-data: "mta-sts.fallback.example. 1 IN AAAA ::1"'
  for d in valid change notfound redirect badtype big trickle shared invalid private short dup v6 fallback expired wrongname; do
    echo "  local-data: '_mta-sts.$d.example. 1 IN TXT \"v=STSv1; id=${d}1;\"'"
  done
  echo "  local-data: '_mta-sts.cname.example. 1 IN CNAME _mta-sts.valid.example.'"
  echo "  local-data: '_mta-sts.multi.example. 1 IN TXT \"v=STSv1; \" \"id=multi\" \"2;\"'"
  echo "  local-data: '_mta-sts.twotxt.example. 1 IN TXT \"v=STSv1; id=a1;\"'"
  echo "  local-data: '_mta-sts.twotxt.example. 1 IN TXT \"v=STSv1; id=a2;\"'"
  echo "  local-data: '_mta-sts.other.example. 1 IN TXT \"v=spf1 -all\"'"
  # MX records `stripwatch policy` checks against the mx patterns: covered,
  # except multi.example's (mx.elsewhere.example is not mx.multi.example)
  echo '  local-data: "valid.example. 1 IN MX 10 mail.valid.example."'
  echo '  local-data: "valid.example. 1 IN MX 20 a.mx.valid.example."'
  for d in dup v6 fallback; do
    echo "  local-data: \"$d.example. 1 IN MX 10 mx.$d.example.\""
  done
  echo '  local-data: "multi.example. 1 IN MX 10 mx.elsewhere.example."'
  # TLS-RPT records (RFC 8460 §3): valid.example's is valid, multi.example's
  # has no rua; the others publish none
  echo "  local-data: '_smtp._tls.valid.example. 1 IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@valid.example,https://rpt.valid.example/r;\"'"
  echo "  local-data: '_smtp._tls.multi.example. 1 IN TXT \"v=TLSRPTv1; ruf=mailto:x@multi.example\"'"
  echo "remote-control:"
  echo "  control-enable: yes"
  echo "  control-interface: \"$dir/unbound.ctl\""
  echo "  control-use-cert: no"
} >"$dir/unbound.conf"

: >"$dir/pids"
echo $v6 >"$dir/ipv6"
nginx -p "$dir" -e "$dir/nginx-error.log" -c "$dir/nginx.conf" >"$dir/nginx.out" 2>&1 &
echo $! >>"$dir/pids"
unbound -d -c "$dir/unbound.conf" >"$dir/unbound.out" 2>&1 &
echo $! >>"$dir/pids"
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$dir" --logfile "$dir/redis.log" >/dev/null 2>&1 &
echo $! >>"$dir/pids"

ready() {
  (exec 3<>"/dev/tcp/127.0.0.1/$https_port") 2>/dev/null &&
    { [ $v6 = 0 ] || (exec 3<>"/dev/tcp/::1/$https_port") 2>/dev/null; } &&
    (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null &&
    unbound-control -c "$dir/unbound.conf" status >/dev/null 2>&1
}
for _ in $(seq 100); do
  if ready; then exit 0; fi
  sleep 0.1
done
echo "netlab.sh: servers did not come up; logs in $dir" >&2
cat "$dir"/nginx-error.log "$dir"/unbound.log "$dir"/nginx.out "$dir"/unbound.out >&2 2>/dev/null || true
stop
exit 1
