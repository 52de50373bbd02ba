#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# generate.sh: regenerate pcaps/*.pcap from real MTAs (Postfix, OpenSMTPD, Exim)
# talking in network namespaces, with and without a STARTTLS-stripping proxy.
# RFC 5321 (SMTP), RFC 3207 (STARTTLS), RFC 2920 (PIPELINING), RFC 3030
# (CHUNKING), RFC 4954 (AUTH), RFC 6409 (submission), RFC 5737/2606 (names),
# RFC 7672/6698 (DANE for SMTP, TLSA), RFC 4033-4035 (DNSSEC).
#
# Usage (root): pcaps/generate.sh [CAPTURE_NAME ...]   (default: all)
# Writes the .pcap files next to this script (or into $SW_PCAP_OUT); the DANE
# captures also rewrite their hosts' entries of dane.json there. Installs
# postfix, swaks, nftables, tcpdump, nsd, unbound and ldnsutils with apt-get
# if missing; exim4 and opensmtpd are only downloaded (apt-get download) and
# unpacked into a temp dir. Every daemon runs in its own network namespace and a private mount
# namespace (bind mounts of passwd/hosts/config over /etc, never visible to
# the host); everything is removed on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${SW_PCAP_OUT:-$HERE}
[ "$(id -u)" = 0 ] || { echo "generate.sh: must run as root" >&2; exit 1; }

W=$(mktemp -d "${TMPDIR:-/tmp}/swpcaps.XXXXXX")
chmod 755 "$W"
P=swp$$ # namespace prefix
NS_SND=$P-snd NS_MITM=$P-mitm NS_RCV=$P-rcv
declare -A HOLDER=()   # host name -> pid of the process holding its mount ns
PIDS=()                # background processes to kill on exit

log() { printf '[generate] %s\n' "$*" >&2; }
die() {
    printf 'generate.sh: %s\n' "$*" >&2
    if [ -n "${SW_PCAP_KEEP:-}" ]; then
        printf 'generate.sh: SW_PCAP_KEEP: keeping %s for %ss\n' "$W" "$SW_PCAP_KEEP" >&2
        sleep "$SW_PCAP_KEEP"
    fi
    exit 1
}

cleanup() {
    set +e
    local h
    for h in "${!HOLDER[@]}"; do
        [ -f "$W/h/$h/stop" ] && hx "$h" sh "$W/h/$h/stop" >/dev/null 2>&1
    done
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for h in "${!HOLDER[@]}"; do kill "${HOLDER[$h]}" 2>/dev/null; done
    sleep 0.5
    # whatever is still running inside our namespaces
    for ns in $NS_SND $NS_MITM $NS_RCV; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

# ---------------------------------------------------------------- packages
need_pkgs() {
    local miss=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || miss+=("$p")
    done
    [ ${#miss[@]} -eq 0 ] && return 0
    log "installing ${miss[*]}"
    export DEBIAN_FRONTEND=noninteractive
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${miss[@]}" >/dev/null
}
need_pkgs postfix swaks libnet-ssleay-perl nftables tcpdump openssl python3 iproute2 util-linux \
    nsd unbound ldnsutils

fetch_unpacked() {
    log "downloading exim4-daemon-light, exim4-base, opensmtpd, libidn12"
    mkdir -p "$W/debs" "$W/root"
    local pkgs=(exim4-daemon-light exim4-base opensmtpd libidn12)
    if [ -n "${SW_PCAP_DEBS:-}" ]; then  # a directory holding these .debs already
        cp "$SW_PCAP_DEBS"/*.deb "$W/debs/"
    else
        (cd "$W/debs" && apt-get download -q "${pkgs[@]}" >/dev/null 2>&1) ||
            { apt-get update -qq; (cd "$W/debs" && apt-get download -q "${pkgs[@]}" >/dev/null); }
    fi
    local d
    for d in "$W"/debs/*.deb; do dpkg-deb -x "$d" "$W/root"; done
    EXIM="$W/root/usr/sbin/exim4"
    SMTPD="$W/root/usr/sbin/smtpd"
    [ -x "$EXIM" ] && [ -x "$SMTPD" ] || die "exim4/opensmtpd not unpacked"
}
fetch_unpacked
POSTFIX_VER=$(dpkg-query -W -f='${Version}' postfix)
EXIM_VER=$(dpkg-deb -f "$W"/debs/exim4-daemon-light_*.deb Version)
SMTPD_VER=$(dpkg-deb -f "$W"/debs/opensmtpd_*.deb Version)

# users the unpacked daemons expect; only visible inside their mount ns
mkdir -p "$W/etc"
cp /etc/passwd "$W/etc/passwd"; cp /etc/group "$W/etc/group"
cat >>"$W/etc/passwd" <<'EOF'
Debian-exim:x:64101:64101::/nonexistent:/usr/sbin/nologin
opensmtpd:x:64102:64102::/var/lib/opensmtpd/empty:/usr/sbin/nologin
opensmtpq:x:64103:64103::/var/lib/opensmtpd/empty:/usr/sbin/nologin
EOF
cat >>"$W/etc/group" <<'EOF'
Debian-exim:x:64101:
opensmtpd:x:64102:
opensmtpq:x:64103:
EOF

# ---------------------------------------------------------------- names
cat >"$W/etc/hosts" <<'EOF'
127.0.0.1	localhost
192.0.2.10	mail.example.net
192.0.2.50	laptop.example.net
198.51.100.25	mx.example.org
198.51.100.26	mx.example.com
198.51.100.27	mx.opensmtpd.example
198.51.100.28	mx.exim.example
198.51.100.29	mx.tls12.example
EOF
# No DNS, except for the DANE captures: the sender's validating unbound on
# its loopback (start_dane_lab). trust-ad: glibc (>= 2.31) keeps the AD bit
# only for programs that ask for it or with this option; Postfix 3.7 asks
# (a run without the option verified too): a safeguard only.
printf 'nameserver 127.0.0.1\noptions trust-ad\n' >"$W/etc/resolv.conf"

# ---------------------------------------------------------------- certificates
# A test CA and one leaf per MX, CN and SAN = the MX name, fixed validity.
mkcerts() {
    local c="$W/certs" n
    mkdir -p "$c"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/O=stripwatch test CA/CN=stripwatch test CA" \
        -keyout "$c/ca.key" -out "$c/ca.crt" 2>/dev/null
    for n in mx.example.org mx.example.com mx.opensmtpd.example mx.exim.example mx.tls12.example \
        mx.secure.example mx-stale.secure.example; do
        openssl req -newkey rsa:2048 -nodes -subj "/CN=$n" -keyout "$c/$n.key" -out "$c/$n.csr" 2>/dev/null
        printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$n" >"$c/$n.ext"
        openssl x509 -req -in "$c/$n.csr" -CA "$c/ca.crt" -CAkey "$c/ca.key" -CAcreateserial \
            -days 825 -extfile "$c/$n.ext" -out "$c/$n.crt" 2>/dev/null
        cat "$c/$n.key" "$c/$n.crt" >"$c/$n.pem"
    done
    chmod 644 "$c"/*
}
mkcerts

# ---------------------------------------------------------------- network
#  snd 192.0.2.10/.50 --s0|m0-- mitm (router, proxy) --m1|r0-- rcv 198.51.100.25-31
mknet() {
    ip netns add $NS_SND; ip netns add $NS_MITM; ip netns add $NS_RCV
    ip link add s0 netns $NS_SND type veth peer name m0 netns $NS_MITM
    ip link add r0 netns $NS_RCV type veth peer name m1 netns $NS_MITM
    ip -n $NS_SND link set s0 address 02:00:00:00:02:10
    ip -n $NS_MITM link set m0 address 02:00:00:00:02:01
    ip -n $NS_MITM link set m1 address 02:00:00:00:64:01
    ip -n $NS_RCV link set r0 address 02:00:00:00:64:19
    local ns
    for ns in $NS_SND $NS_MITM $NS_RCV; do
        ip -n "$ns" link set lo up
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
        # no segmentation offload: what tcpdump sees is what goes on the wire
    done
    ip -n $NS_SND addr add 192.0.2.10/24 dev s0
    ip -n $NS_SND addr add 192.0.2.50/24 dev s0
    ip -n $NS_SND link set s0 up
    ip -n $NS_SND route add default via 192.0.2.1
    ip -n $NS_MITM addr add 192.0.2.1/24 dev m0
    ip -n $NS_MITM addr add 198.51.100.1/24 dev m1
    ip -n $NS_MITM link set m0 up; ip -n $NS_MITM link set m1 up
    ip netns exec $NS_MITM sysctl -qw net.ipv4.ip_forward=1
    local a
    for a in 25 26 27 28 29 30 31; do ip -n $NS_RCV addr add 198.51.100.$a/24 dev r0; done
    ip -n $NS_RCV link set r0 up
    ip -n $NS_RCV route add default via 198.51.100.1
    for ns in $NS_SND:s0 $NS_MITM:m0 $NS_MITM:m1 $NS_RCV:r0; do
        ip netns exec "${ns%%:*}" ethtool -K "${ns#*:}" tso off gso off gro off >/dev/null 2>&1 || true
    done
    # TPROXY plumbing for the proxy: packets of its transparent sockets are local
    ip -n $NS_MITM rule add fwmark 1 lookup 100
    ip -n $NS_MITM route add local 0.0.0.0/0 dev lo table 100
}
mknet

# ---------------------------------------------------------------- hosts
# host_new NAME NETNS HOSTNAME: a private mount and UTS namespace inside NETNS,
# held by a sleep process; /etc/passwd, /etc/group, /etc/hosts,
# /etc/resolv.conf (127.0.0.1: DNS only where start_dane_lab runs) and /run
# are replaced in it.
host_new() {
    local h=$1 ns=$2 d="$W/h/$1"
    mkdir -p "$d"
    cat >"$d/mounts.sh" <<EOF
set -e
mount --make-rprivate /
mount --bind "$W/etc/passwd" /etc/passwd
mount --bind "$W/etc/group" /etc/group
mount --bind "$W/etc/hosts" /etc/hosts
mount --bind "$W/etc/resolv.conf" /etc/resolv.conf
hostname "$3"
mount -t tmpfs tmpfs /run
[ -f "$d/extra-mounts.sh" ] && . "$d/extra-mounts.sh"
touch "$d/ready"
exec sleep infinity
EOF
    ip netns exec "$ns" unshare -m -u --propagation private sh "$d/mounts.sh" >"$d/holder.log" 2>&1 &
    HOLDER[$h]=$!
    local i
    for i in $(seq 50); do [ -f "$d/ready" ] && return 0; sleep 0.1; done
    cat "$d/holder.log" >&2
    die "host $h did not start"
}
# hx NAME CMD...: run CMD inside host NAME (its netns and mount ns)
hx() { local h=$1; shift; nsenter -t "${HOLDER[$h]}" -m -u -n -- "$@"; }

# ---------------------------------------------------------------- postfix
postfix_master_cf() {
    cat <<'EOF'
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

# postfix_new NAME NETNS MAIN_CF_EXTRA [LISTEN]: a Postfix instance whose
# /etc/postfix is $W/h/NAME/postfix (bind-mounted), queue in $W/h/NAME/spool.
postfix_new() {
    local h=$1 ns=$2 extra=$3 listen=${4:-} d="$W/h/$1"
    mkdir -p "$d/postfix" "$d/spool/pid" "$d/data"
    local q
    for q in active bounce corrupt defer deferred flush hold incoming private saved trace; do
        install -d -o postfix -g root -m 700 "$d/spool/$q"
    done
    install -d -o postfix -g postdrop -m 710 "$d/spool/public"
    install -d -o postfix -g postdrop -m 1730 "$d/spool/maildrop"
    chown postfix "$d/data"
    cp -a /etc/postfix/. "$d/postfix/"
    rm -f "$d/postfix/main.cf" "$d/postfix/master.cf"
    {
        echo "compatibility_level = 3.6"
        echo "queue_directory = $d/spool"
        echo "data_directory = $d/data"
        echo "maillog_file = $d/maillog"
        echo "maillog_file_prefixes = $W"
        echo "inet_protocols = ipv4"
        echo "mydestination ="
        echo "alias_maps ="
        echo "alias_database ="
        echo "biff = no"
        echo "notify_classes ="
        echo "smtpd_banner = \$myhostname ESMTP"
        printf '%s\n' "$extra"
    } >"$d/postfix/main.cf"
    {
        postfix_master_cf
        [ -n "$listen" ] && echo "$listen:25 inet n - n - - smtpd"
    } >"$d/postfix/master.cf"
    echo "mount --bind \"$d/postfix\" /etc/postfix" >"$d/extra-mounts.sh"
    echo "postfix stop" >"$d/stop"
    host_new "$h" "$ns" "$(sed -n "s/^myhostname = //p" <<<"$extra")"
    hx "$h" postfix start >"$d/start.log" 2>&1 || { cat "$d/start.log" >&2; cat "$d/maillog" >&2 || true; die "postfix $h did not start"; }
}

# postfix_wait NAME: until every message injected with send has left the
# queue (its "removed" log line), the queue is empty and no SMTP connection
# is open any more (the connection cache has closed it with QUIT).
declare -A INJECTED=()
postfix_wait() {
    local h=$1 i n
    for i in $(seq 900); do
        n=$(grep -c ': removed$' "$W/h/$h/maillog" 2>/dev/null || true)
        if [ "${n:-0}" -ge "${INJECTED[$h]:-0}" ] &&
           [ -z "$(hx "$h" postqueue -j 2>/dev/null)" ] &&
           [ -z "$(ls -A "$W/h/$h/spool/maildrop")" ] &&
           [ -z "$(hx "$h" ss -Htn state established '( dport = :25 or dport = :587 or dport = :465 )' 2>/dev/null)" ]; then
            return 0
        fi
        sleep 0.1
    done
    hx "$h" postqueue -p >&2 || true
    tail -n 20 "$W/h/$h/maillog" >&2 || true
    [ "$PROXY_RUNS" -gt 0 ] && tail -n 5 "$W/mitm.$PROXY_RUNS.log" >&2
    die "postfix $h: mail still queued after 90s"
}

# Message text: fixed headers, a short body.
message() { # FROM TO SUBJECT
    cat <<EOF
From: <$1>
To: <$2>
Subject: $3
Date: Sun, 22 Nov 2026 10:00:00 +0000
Message-ID: <$(echo "$3" | tr -c 'a-zA-Z0-9' '-')@mail.example.net>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

This is a stripwatch test message: $3.
It is short on purpose.
EOF
}

# send NAME FROM SUBJECT RCPT...: inject into the Postfix instance NAME
send() {
    local h=$1 from=$2 subj=$3; shift 3
    message "$from" "$1" "$subj" | hx "$h" sendmail -f "$from" -- "$@"
    INJECTED[$h]=$(( ${INJECTED[$h]:-0} + 1 ))
}

# ---------------------------------------------------------------- capture
CAPS=()
# cap_start NAME NETNS IFACE: tcpdump the SMTP ports into $W/cap/NAME.pcap
cap_start() {
    local name=$1 ns=$2 ifc=$3
    mkdir -p "$W/cap"
    ip netns exec "$ns" tcpdump -i "$ifc" -s 0 -U --immediate-mode -n -w "$W/cap/$name.pcap" \
        'tcp port 25 or tcp port 587 or tcp port 465' >"$W/cap/$name.log" 2>&1 &
    CAPS+=("$!:$name")
    local i
    for i in $(seq 50); do grep -q 'listening on' "$W/cap/$name.log" && return 0; sleep 0.1; done
    die "tcpdump for $name did not start"
}
# cap_stop: stop every running tcpdump and copy its file to $OUT
cap_stop() {
    sleep 1.5  # tcpdump delivers what the kernel buffered, then stops
    local c pid name
    for c in "${CAPS[@]}"; do
        pid=${c%%:*} name=${c#*:}
        kill -INT "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        cp "$W/cap/$name.pcap" "$OUT/$name.pcap"
        log "$name.pcap: $(tcpdump -nr "$OUT/$name.pcap" 2>/dev/null | wc -l) packets, $(stat -c %s "$OUT/$name.pcap") bytes"
    done
    CAPS=()
}

# ---------------------------------------------------------------- the proxy
PROXY_PID= PROXY_RUNS=0
proxy_start() { # MODE
    ip netns exec $NS_MITM nft -f - <<'EOF'
table ip swmitm {
    chain pre {
        type filter hook prerouting priority mangle; policy accept;
        meta l4proto tcp socket transparent 1 meta mark set 1 accept
        iifname "m0" tcp dport 25 tproxy to :10025 meta mark set 1 accept
    }
}
EOF
    PROXY_RUNS=$((PROXY_RUNS + 1))
    local plog="$W/mitm.$PROXY_RUNS.log"
    ip netns exec $NS_MITM /usr/bin/python3 "$HERE/mitm.py" "$1" 10025 "$plog" &
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    local i
    for i in $(seq 50); do grep -q "listening on 10025 mode $1" "$plog" 2>/dev/null && return 0; sleep 0.1; done
    die "proxy did not start"
}
proxy_stop() {
    [ -n "$PROXY_PID" ] && { kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null || true; }
    PROXY_PID=
    ip netns exec $NS_MITM nft delete table ip swmitm 2>/dev/null || true
}

# ---------------------------------------------------------------- the MTAs
TRANSPORTS="example.net=discard:, example.org=smtp:[mx.example.org]:25, example.com=smtp:[mx.example.com]:25, plain.example=smtp:[mx.example.com]:25, opensmtpd.example=smtp:[mx.opensmtpd.example]:25, exim.example=smtp:[mx.exim.example]:25, tls12.example=smtp:[mx.tls12.example]:25, secure.example=dane:, stale.secure.example=dane:"
start_postfix_hosts() {
    postfix_new snd $NS_SND "myhostname = mail.example.net
mydomain = example.net
myorigin = example.net
inet_interfaces = all
smtp_host_lookup = native
smtp_dns_support_level = disabled
transport_maps = inline:{$TRANSPORTS}
smtp_tls_security_level = may
smtp_tls_servername = hostname
smtp_tls_CAfile = $W/certs/ca.crt
smtp_tls_loglevel = 1
smtp_destination_concurrency_limit = 1
initial_destination_concurrency = 1
smtp_connection_cache_time_limit = 3s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
queue_run_delay = 2s"
    local rcpts="bob@example.org=ok, carol@example.org=ok, bob@example.com=ok, bob@plain.example=ok, carol@plain.example=ok, bob@tls12.example=ok"
    local common="relay_transport = discard:
relay_recipient_maps = inline:{$rcpts}
smtpd_tls_loglevel = 1"
    postfix_new mx-org $NS_RCV "myhostname = mx.example.org
relay_domains = example.org
smtpd_tls_security_level = may
smtpd_tls_chain_files = $W/certs/mx.example.org.pem
$common" 198.51.100.25
    postfix_new mx-com $NS_RCV "myhostname = mx.example.com
relay_domains = example.com, plain.example, example.org
smtpd_tls_security_level = none
$common" 198.51.100.26
    postfix_new mx-tls12 $NS_RCV "myhostname = mx.tls12.example
relay_domains = tls12.example, example.org
smtpd_tls_security_level = may
smtpd_tls_chain_files = $W/certs/mx.tls12.example.pem
smtpd_tls_protocols = >=TLSv1.2, <=TLSv1.2
smtpd_tls_mandatory_protocols = >=TLSv1.2, <=TLSv1.2
smtpd_tls_exclude_ciphers = aNULL
$common" 198.51.100.29
}

# Debian 12's OpenSMTPD 6.8.0p2 cannot complete a TLS handshake with its
# OpenSSL 3.0 (privilege-separated signing: "rsa routines::missing private
# key", the client gets alert 80 internal_error), so it offers no STARTTLS
# (smtpd.conf), except for the capture of that failure (smtpd-tls.conf) or
# with SW_PCAP_OSMTPD_TLS=1.
OSMTPD_PID=
start_opensmtpd() {
    local h=osmtpd d="$W/h/osmtpd" tls="tls pki mx.opensmtpd.example" v
    mkdir -p "$d/var/lib/opensmtpd/empty" "$d/var/spool" "$d/var/mail" "$d/var/tmp"
    ln -s /run "$d/var/run"
    install -m 600 "$W/certs/mx.opensmtpd.example.key" "$d/key.pem"
    for v in plain tls; do
        cat >"$d/smtpd-$v.conf" <<EOF
pki mx.opensmtpd.example cert "$W/certs/mx.opensmtpd.example.crt"
pki mx.opensmtpd.example key "$d/key.pem"
table vusers { "@" = "opensmtpd" }
listen on 198.51.100.27 port 25 $([ $v = tls ] && echo "$tls") hostname mx.opensmtpd.example
action "drop" mda "/bin/cat >/dev/null" virtual <vusers>
match from any for domain "opensmtpd.example" action "drop"
EOF
    done
    echo "mount --bind \"$d/var\" /var" >"$d/extra-mounts.sh"
    host_new $h $NS_RCV mx.opensmtpd.example
    osmtpd_run "$([ -n "${SW_PCAP_OSMTPD_TLS:-}" ] && echo tls || echo plain)"
}
osmtpd_run() { # plain|tls: (re)start OpenSMTPD in the foreground (-d) with that config
    local h=osmtpd d="$W/h/osmtpd" conf="$W/h/osmtpd/smtpd-$1.conf" i
    if [ -n "$OSMTPD_PID" ]; then
        kill "$OSMTPD_PID" 2>/dev/null; wait "$OSMTPD_PID" 2>/dev/null || true
        for i in $(seq 50); do
            [[ $(hx $h ss -Htln) == *"198.51.100.27:25 "* ]] || break; sleep 0.1
        done
        [[ $(hx $h ss -Htln) == *"198.51.100.27:25 "* ]] && die "opensmtpd did not stop"
    fi
    hx $h "$SMTPD" -n -f "$conf" >"$d/check.log" 2>&1 || { cat "$d/check.log" >&2; die "$conf invalid"; }
    # nsenter execs smtpd: $! is smtpd's parent process
    nsenter -t "${HOLDER[$h]}" -m -u -n -- "$SMTPD" -d -f "$conf" >>"$d/smtpd.log" 2>&1 &
    OSMTPD_PID=$!
    PIDS+=("$!")
    for i in $(seq 50); do
        [[ $(hx $h ss -Htln) == *"198.51.100.27:25 "* ]] && return 0; sleep 0.1
    done
    cat "$d/smtpd.log" >&2; die "opensmtpd did not start"
}

# Exim re-executes /usr/sbin/exim4 (compiled-in path) and needs libidn12:
# the unpacked packages are overlaid on /usr inside its mount namespace.
exim_mounts() {
    echo "mount -t overlay overlay -o lowerdir=$W/root/usr:/usr /usr" >"$1/extra-mounts.sh"
}
exim_conf_common() { # DIR HOSTNAME
    cat <<EOF
primary_hostname = $2
qualify_domain = ${2#*.}
spool_directory = $1/spool
log_file_path = $1/log/%slog
pid_file_path = $1/exim.pid
never_users =
host_lookup =
rfc1413_hosts =
EOF
}
start_exim_mx() {
    local h=exim d="$W/h/exim"
    mkdir -p "$d/spool" "$d/log"
    chown -R 64101:64101 "$d/spool" "$d/log"
    { exim_conf_common "$d" mx.exim.example; cat <<EOF
local_interfaces = <; 198.51.100.28.25 ; 198.51.100.28.587
domainlist local_domains = exim.example
acl_smtp_rcpt = acl_check_rcpt
tls_certificate = $W/certs/mx.exim.example.crt
tls_privatekey = $W/certs/mx.exim.example.key
tls_advertise_hosts = *
auth_advertise_hosts = *

begin acl
acl_check_rcpt:
  accept domains = +local_domains
  accept authenticated = *
  deny message = relay not permitted

begin routers
discard:
  driver = redirect
  data = :blackhole:

begin transports

begin authenticators
PLAIN:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = \${if and {{eq{\$auth2}{alice}}{eq{\$auth3}{stripwatch-test}}}}
  server_set_id = \$auth2
EOF
    } >"$d/exim.conf"
    echo "kill \$(cat $d/exim.pid) 2>/dev/null" >"$d/stop"
    exim_mounts "$d"
    host_new $h $NS_RCV mx.exim.example
    hx $h /usr/sbin/exim4 -C "$d/exim.conf" -bd >"$d/start.log" 2>&1 ||
        { cat "$d/start.log" "$d"/log/* >&2; die "exim did not start"; }
    local i
    for i in $(seq 50); do
        [[ $(hx $h ss -Htln) == *"198.51.100.28:587 "* ]] && return 0; sleep 0.1
    done
    cat "$d/start.log" "$d"/log/* >&2; die "exim did not listen"
}
# An Exim that only sends (for CHUNKING): delivers in the foreground, no TLS.
start_exim_client() {
    local h=exim-snd d="$W/h/exim-snd"
    mkdir -p "$d/spool" "$d/log"
    chown -R 64101:64101 "$d/spool" "$d/log"
    { exim_conf_common "$d" mail.example.net; cat <<EOF

begin routers
out:
  driver = manualroute
  route_list = * mx.example.com byname
  transport = remote
  self = send

begin transports
remote:
  driver = smtp
  hosts_avoid_tls = *
  hosts_try_chunking = *
EOF
    } >"$d/exim.conf"
    exim_mounts "$d"
    host_new $h $NS_SND mail.example.net
}
exim_send() { # FROM SUBJECT RCPT...
    local from=$1 subj=$2 d="$W/h/exim-snd"; shift 2
    message "$from" "$1" "$subj" | hx exim-snd /usr/sbin/exim4 -C "$d/exim.conf" \
        -odi -f "$from" -- "$@"
}

# ---------------------------------------------------------------- captures
declare -A STARTED=()
need() { [ -n "${STARTED[$1]:-}" ] || { "$1"; STARTED[$1]=1; }; }
# Capture points: "router" = the routing namespace's sender-facing interface
# (m0) with no proxy active; "sender-side" = m0 with the proxy active (between
# sender and man-in-the-middle); "receiver-side" = m1 (between the
# man-in-the-middle and the receiving MX).
cap_postfix_postfix_starttls_tls13() {
    cap_start postfix-postfix-starttls-tls13 $NS_MITM m0
    send snd alice@example.net "postfix to postfix with STARTTLS" bob@example.org
    postfix_wait snd; cap_stop
}
cap_postfix_opensmtpd_plaintext() {
    need start_opensmtpd
    cap_start postfix-opensmtpd-plaintext $NS_MITM m0
    send snd alice@example.net "postfix to opensmtpd" bob@opensmtpd.example
    postfix_wait snd; cap_stop
}
cap_postfix_exim_starttls() {
    need start_exim_mx
    cap_start postfix-exim-starttls $NS_MITM m0
    send snd alice@example.net "postfix to exim" bob@exim.example
    postfix_wait snd; cap_stop
}
cap_postfix_plaintext_no_starttls() {
    cap_start postfix-plaintext-no-starttls $NS_MITM m0
    send snd alice@example.net "plaintext delivery, no STARTTLS offered" bob@example.com
    postfix_wait snd; cap_stop
}
cap_postfix_tls12_certificate() {
    cap_start postfix-tls12-certificate $NS_MITM m0
    send snd alice@example.net "TLS 1.2 only receiver" bob@tls12.example
    postfix_wait snd; cap_stop
}
# OpenSMTPD offers STARTTLS, then fails every handshake (see start_opensmtpd).
# The message is held 3 s first (past minimal_backoff_time), so Postfix
# retries in plaintext at once instead of deferring.
cap_postfix_opensmtpd_tls_failure_fallback() {
    need start_opensmtpd
    osmtpd_run tls
    cap_start postfix-opensmtpd-tls-failure-fallback $NS_MITM m0
    hx snd postconf -e "defer_transports = smtp" && hx snd postfix reload >/dev/null 2>&1
    send snd alice@example.net "opensmtpd TLS failure, plaintext retry" bob@opensmtpd.example
    sleep 3
    hx snd postconf -e "defer_transports =" && hx snd postfix reload >/dev/null 2>&1
    hx snd postqueue -f
    postfix_wait snd; cap_stop
    osmtpd_run plain
}
cap_exim_postfix_pipelining_chunking() {
    need start_exim_client
    cap_start exim-postfix-pipelining-chunking $NS_MITM m0
    exim_send alice@example.net "exim to postfix with PIPELINING and CHUNKING" bob@plain.example carol@plain.example
    sleep 1; cap_stop
}
cap_postfix_rcpt_rejected() {
    cap_start postfix-rcpt-rejected $NS_MITM m0
    send snd alice@example.net "one recipient rejected" bob@plain.example nobody@plain.example
    postfix_wait snd; cap_stop
}
cap_postfix_several_messages() {
    hx snd postconf -e "defer_transports = smtp" \
        "smtp_connection_cache_destinations = [mx.example.com]:25, mx.example.com, plain.example"
    hx snd postfix reload >/dev/null 2>&1
    local i
    for i in 1 2 3; do send snd alice@example.net "message $i of 3 in one session" bob@plain.example; done
    sleep 2
    cap_start postfix-several-messages $NS_MITM m0
    hx snd postconf -e "defer_transports =" && hx snd postfix reload >/dev/null 2>&1
    sleep 1
    hx snd postqueue -f
    postfix_wait snd; cap_stop
    hx snd postconf -e "smtp_connection_cache_destinations =" && hx snd postfix reload >/dev/null 2>&1
    sleep 1
}
swaks_submit() { # extra swaks args...
    need start_exim_mx
    message alice@example.net carol@example.org "submission" >"$W/swaks.msg"
    hx snd swaks --server 198.51.100.28 --port 587 --local-interface 192.0.2.50 \
        --helo laptop.example.net --from alice@example.net --to carol@example.org \
        --auth PLAIN --auth-user alice --auth-password stripwatch-test \
        --data "$W/swaks.msg" --timeout 20 "$@" >"$W/swaks.log" 2>&1 || { cat "$W/swaks.log" >&2; die "swaks failed"; }
}
cap_submission_auth_starttls() {
    cap_start submission-auth-starttls $NS_MITM m0
    swaks_submit --tls
    sleep 0.5; cap_stop
}
cap_submission_auth_plain_cleartext() {
    cap_start submission-auth-plain-cleartext $NS_MITM m0
    swaks_submit
    sleep 0.5; cap_stop
}
mitm_capture() { # NAME MODE SUBJECT [aged]
    proxy_start "$2"
    cap_start "$1-sender-side" $NS_MITM m0
    cap_start "$1-receiver-side" $NS_MITM m1
    if [ "${4:-}" = aged ]; then
        # Postfix retries in plaintext after a failed TLS handshake only for a
        # message queued at least minimal_backoff_time (2 s here): hold it 3 s
        # first, so that its first attempt fails and falls back at once.
        hx snd postconf -e "defer_transports = smtp" && hx snd postfix reload >/dev/null 2>&1
        send snd alice@example.net "$3" bob@example.org
        sleep 3
        hx snd postconf -e "defer_transports =" && hx snd postfix reload >/dev/null 2>&1
        hx snd postqueue -f
    else
        send snd alice@example.net "$3" bob@example.org
    fi
    postfix_wait snd; cap_stop; proxy_stop
}
cap_mitm_strip() { mitm_capture mitm-strip strip "STARTTLS line deleted by a man in the middle"; }
cap_mitm_xxxxxxxa() { mitm_capture mitm-xxxxxxxa xxxx "STARTTLS rewritten to XXXXXXXA"; }
cap_mitm_starttls_command_rewritten() { mitm_capture mitm-starttls-command-rewritten cmd "client STARTTLS rewritten to XXXXXXXX"; }
cap_mitm_tls_broken_fallback() { mitm_capture mitm-tls-broken-fallback break "TLS handshake broken, retried in clear" aged; }
cap_learned_posture_then_strip() {
    cap_start learned-posture-then-strip-sender-side $NS_MITM m0
    cap_start learned-posture-then-strip-receiver-side $NS_MITM m1
    send snd alice@example.net "first message, clean STARTTLS" bob@example.org
    postfix_wait snd
    sleep 1
    proxy_start strip
    send snd alice@example.net "second message, STARTTLS stripped" carol@example.org
    postfix_wait snd; cap_stop; proxy_stop
}
# Mail for example.org (enforce, mx: mx.example.org) handed to mx.example.com,
# as after a spoofed MX answer; no STARTTLS there, so the recipient is visible.
cap_policy_mx_mismatch() {
    hx snd postconf -e "transport_maps = inline:{${TRANSPORTS/example.org=smtp:\[mx.example.org\]/example.org=smtp:[mx.example.com]}}"
    hx snd postfix reload >/dev/null 2>&1; sleep 1
    cap_start policy-mx-mismatch $NS_MITM m0
    send snd alice@example.net "example.org mail sent to a host its policy does not name" bob@example.org
    postfix_wait snd; cap_stop
    hx snd postconf -e "transport_maps = inline:{$TRANSPORTS}"
    hx snd postfix reload >/dev/null 2>&1; sleep 1
}
# mx.example.org itself, reconfigured for one capture: TLS 1.2 only (the
# certificate is visible) with a self-signed certificate for "localhost", the
# kind a package installs by default.
cap_policy_certificate_invalid() {
    local c="$W/certs"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=localhost" \
        -keyout "$c/selfsigned.key" -out "$c/selfsigned.crt" 2>/dev/null
    cat "$c/selfsigned.key" "$c/selfsigned.crt" >"$c/selfsigned.pem"; chmod 644 "$c"/selfsigned.*
    hx mx-org postconf -e "smtpd_tls_chain_files = $c/selfsigned.pem" \
        "smtpd_tls_protocols = >=TLSv1.2, <=TLSv1.2" "smtpd_tls_exclude_ciphers = aNULL"
    hx mx-org postfix reload >/dev/null 2>&1; sleep 1
    cap_start policy-certificate-invalid $NS_MITM m0
    send snd alice@example.net "certificate that fails MTA-STS validation" bob@example.org
    postfix_wait snd; cap_stop
    hx mx-org postconf -e "smtpd_tls_chain_files = $c/mx.example.org.pem" \
        "smtpd_tls_protocols =" "smtpd_tls_exclude_ciphers ="
    hx mx-org postfix reload >/dev/null 2>&1; sleep 1
}

# ---------------------------------------------------------------- DANE
# secure.example, signed here (ldns-keygen, ldns-signzone, NSEC3): MX
# mx.secure.example (198.51.100.30) with `_25._tcp.mx TLSA 3 1 1` = SHA-256 of
# its certificate's SPKI; stale.secure.example, MX mx-stale.secure.example
# (.31), whose TLSA record still names a retired key (a key rollover without
# a TLSA update). nsd serves the zone on the sender's loopback (port 5353)
# behind a validating unbound (port 53, the sender's resolv.conf) whose only
# trust anchor is the zone's key-signing key. The sender delivers these two
# domains through its transport "dane" (smtp_tls_security_level = dane, MX
# and A from DNS, DNSSEC). Both receivers speak TLS 1.2 only, without
# anonymous suites, so that their certificate is on the wire.
spki_sha256() { # a PEM public key on stdin: SHA-256 of its DER SubjectPublicKeyInfo
    openssl pkey -pubin -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1
}
start_dane_lab() {
    local d="$W/dns" ksk zsk i
    mkdir -p "$d"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/retired.key" 2>/dev/null
    cat >"$d/secure.example.zone" <<EOF
\$ORIGIN secure.example.
\$TTL 300
@ IN SOA ns.secure.example. admin.secure.example. 1 3600 600 86400 300
@ IN NS ns
ns IN A 127.0.0.1
@ IN MX 10 mx
mx IN A 198.51.100.30
_25._tcp.mx IN TLSA 3 1 1 $(openssl x509 -in "$W/certs/mx.secure.example.crt" -noout -pubkey | spki_sha256)
stale IN MX 10 mx-stale
mx-stale IN A 198.51.100.31
_25._tcp.mx-stale IN TLSA 3 1 1 $(openssl pkey -in "$d/retired.key" -pubout | spki_sha256)
EOF
    ksk=$(cd "$d" && ldns-keygen -a ECDSAP256SHA256 -k secure.example) || die "ldns-keygen failed"
    zsk=$(cd "$d" && ldns-keygen -a ECDSAP256SHA256 secure.example) || die "ldns-keygen failed"
    (cd "$d" && ldns-signzone -n -o secure.example. -f secure.example.signed \
        secure.example.zone "$ksk" "$zsk") || die "ldns-signzone failed"
    cp "$d/$ksk.key" "$d/ta.key"
    cat >"$d/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1@5353
  port: 5353
  username: ""
  chroot: ""
  zonesdir: "$d"
  database: ""
  pidfile: "$d/nsd.pid"
  logfile: "$d/nsd.log"
  xfrdfile: "$d/xfrd.state"
  zonelistfile: "$d/zone.list"
  server-count: 1
remote-control:
  control-enable: no
zone:
  name: secure.example
  zonefile: secure.example.signed
EOF
    cat >"$d/unbound.conf" <<EOF
server:
  interface: 127.0.0.1
  port: 53
  do-ip6: no
  username: ""
  chroot: ""
  directory: "$d"
  pidfile: "$d/unbound.pid"
  use-syslog: no
  logfile: "$d/unbound.log"
  verbosity: 1
  val-log-level: 2
  do-not-query-localhost: no
  module-config: "validator iterator"
  trust-anchor-file: "$d/ta.key"
remote-control:
  control-enable: no
stub-zone:
  name: "secure.example"
  stub-addr: 127.0.0.1@5353
EOF
    ip netns exec $NS_SND nsd -d -c "$d/nsd.conf" >"$d/nsd.out" 2>&1 &
    PIDS+=("$!")
    ip netns exec $NS_SND unbound -d -c "$d/unbound.conf" >"$d/unbound.out" 2>&1 &
    PIDS+=("$!")
    for i in $(seq 100); do
        ip netns exec $NS_SND drill -D MX secure.example @127.0.0.1 2>/dev/null |
            grep -q '^;; flags: .* ad' && break
        sleep 0.1
    done
    [ "$i" -lt 100 ] || { cat "$d"/nsd.out "$d"/nsd.log "$d"/unbound.out "$d"/unbound.log >&2; die "no DNSSEC-secure answer from unbound"; }
    dane_snapshot mx.secure.example mx-stale.secure.example

    hx snd postconf -M "dane/unix=dane unix - - n - - smtp -o smtp_tls_security_level=dane -o smtp_dns_support_level=dnssec -o smtp_host_lookup=dns"
    hx snd postfix reload >/dev/null 2>&1
    local tls12="smtpd_tls_security_level = may
smtpd_tls_protocols = >=TLSv1.2, <=TLSv1.2
smtpd_tls_mandatory_protocols = >=TLSv1.2, <=TLSv1.2
smtpd_tls_exclude_ciphers = aNULL
smtpd_tls_loglevel = 1
relay_transport = discard:
relay_recipient_maps = inline:{bob@secure.example=ok, bob@stale.secure.example=ok}"
    postfix_new mx-secure $NS_RCV "myhostname = mx.secure.example
relay_domains = secure.example
smtpd_tls_chain_files = $W/certs/mx.secure.example.pem
$tls12" 198.51.100.30
    postfix_new mx-stale $NS_RCV "myhostname = mx-stale.secure.example
relay_domains = stale.secure.example
smtpd_tls_chain_files = $W/certs/mx-stale.secure.example.pem
$tls12" 198.51.100.31
    sleep 1
}
# dane_snapshot HOST...: what the validating unbound answers for each host's
# TLSA records (AD bit required) goes into $OUT/dane.json (other hosts kept).
dane_snapshot() {
    local h ans args=() at
    at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    for h in "$@"; do
        ans=$(ip netns exec $NS_SND drill -D TLSA "_25._tcp.$h" @127.0.0.1) || die "drill TLSA $h failed"
        grep -q '^;; flags: .* ad' <<<"$ans" || { echo "$ans" >&2; die "TLSA of $h: not DNSSEC-secure"; }
        args+=("$h" "$(awk '$1 !~ /^;/ && $4 == "TLSA" { r = $5 " " $6 " " $7 " "; for (i = 8; i <= NF; i++) r = r $i;
                       print $2 "\t" tolower(r) }' <<<"$ans")")
    done
    python3 - "$OUT/dane.json" "$at" "${args[@]}" <<'EOF'
import json, os, sys
path, at, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
snap = json.load(open(path)) if os.path.exists(path) else {}
for host, answer in zip(rest[0::2], rest[1::2]):
    rows = [line.split("\t") for line in answer.splitlines() if line]
    if not rows:
        sys.exit("generate.sh: no TLSA record for " + host)
    snap[host] = {"status": "secure", "records": sorted(r for _, r in rows),
                  "fetched_at": at, "ttl": int(rows[0][0])}
with open(path, "w") as f:
    f.write(json.dumps({k: snap[k] for k in sorted(snap)}, indent=2) + "\n")
EOF
    log "dane.json: $* secure, fetched $at"
}
# postfix_drop_deferred NAME PATTERN: until NAME's maillog has PATTERN (a
# deferral) and no SMTP connection is open; then the deferred message is
# deleted (no retry in the capture) and the queue left empty.
postfix_drop_deferred() {
    local h=$1 pat=$2 i
    for i in $(seq 300); do
        grep -q -- "$pat" "$W/h/$h/maillog" 2>/dev/null &&
            [ -z "$(hx "$h" ss -Htn state established '( dport = :25 )' 2>/dev/null)" ] && break
        sleep 0.1
    done
    grep -q -- "$pat" "$W/h/$h/maillog" || { tail -n 20 "$W/h/$h/maillog" >&2; die "postfix $h: no '$pat' after 30s"; }
    hx "$h" postsuper -d ALL >/dev/null 2>&1
    # postsuper logs "Deleted", not "removed": the message no longer counts
    INJECTED[$h]=$(( ${INJECTED[$h]} - 1 ))
    postfix_wait "$h"
}
# maillog_has NAME PATTERN: the capture is only kept if Postfix said so.
maillog_has() {
    grep -- "$2" "$W/h/$1/maillog" >&2 || { tail -n 20 "$W/h/$1/maillog" >&2; die "postfix $1: no '$2'"; }
}
cap_postfix_dane_verified() {
    need start_dane_lab
    cap_start postfix-dane-verified $NS_MITM m0
    send snd alice@example.net "DANE-verified delivery" bob@secure.example
    postfix_wait snd; cap_stop
    maillog_has snd "Verified TLS connection established to mx.secure.example\[198.51.100.30\]:25: TLSv1.2"
    maillog_has snd "to=<bob@secure.example>, relay=mx.secure.example\[198.51.100.30\]:25.*status=sent"
}
cap_mitm_strip_dane() {
    need start_dane_lab
    proxy_start strip
    cap_start mitm-strip-dane-sender-side $NS_MITM m0
    cap_start mitm-strip-dane-receiver-side $NS_MITM m1
    send snd alice@example.net "DANE, STARTTLS line deleted by a man in the middle" bob@secure.example
    postfix_drop_deferred snd "TLS is required, but was not offered by host mx.secure.example"
    cap_stop; proxy_stop
    maillog_has snd "to=<bob@secure.example>.*status=deferred (TLS is required, but was not offered"
}
cap_postfix_dane_tlsa_mismatch() {
    need start_dane_lab
    cap_start postfix-dane-tlsa-mismatch $NS_MITM m0
    send snd alice@example.net "DANE, TLSA names a retired key" bob@stale.secure.example
    postfix_drop_deferred snd "to=<bob@stale.secure.example>.*status=deferred"
    cap_stop
    maillog_has snd "Untrusted TLS connection established to mx-stale.secure.example\[198.51.100.31\]:25: TLSv1.2"
    maillog_has snd "to=<bob@stale.secure.example>.*status=deferred (Server certificate not verified)"
}

ALL=(postfix_postfix_starttls_tls13 postfix_opensmtpd_plaintext
     postfix_opensmtpd_tls_failure_fallback postfix_exim_starttls
     postfix_plaintext_no_starttls postfix_tls12_certificate exim_postfix_pipelining_chunking
     postfix_rcpt_rejected postfix_several_messages submission_auth_starttls
     submission_auth_plain_cleartext mitm_strip mitm_xxxxxxxa mitm_starttls_command_rewritten
     mitm_tls_broken_fallback learned_posture_then_strip policy_mx_mismatch
     policy_certificate_invalid postfix_dane_verified mitm_strip_dane
     postfix_dane_tlsa_mismatch)

main() {
    local want=("$@") c
    [ ${#want[@]} -eq 0 ] && want=("${ALL[@]}")
    for c in "${want[@]}"; do
        c=${c//-/_}
        declare -F "cap_$c" >/dev/null || die "unknown capture: $c (known: ${ALL[*]})"
    done
    start_postfix_hosts
    log "postfix $POSTFIX_VER, exim $EXIM_VER, opensmtpd $SMTPD_VER"
    for c in "${want[@]}"; do
        c=${c//-/_}
        log "capture $c"
        "cap_$c"
    done
}
main "$@"
