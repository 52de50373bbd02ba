#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# live_rate.sh: the `bench-live` target: the highest tcpreplay rate at which
# `stripwatch -i` loses nothing (kernel_dropped=0 and every packet counted),
# for 1 and 2 workers (one PACKET_FANOUT socket each), on a veth pair between
# two network namespaces this script makes and removes. The traffic is the
# bench's real mix (bench_gen --write-real-mix; 1000 rounds are more than
# the default ring buffer holds), replayed LOOPS times per rate. One
# tcpreplay is one thread and, on a small machine, slower than the sensor:
# with SENDERS=N the mix is cut into N parts of consecutive rounds (editcap)
# and N tcpreplay processes send them at once, each at RATE/N; the rates
# printed are their sums. Needs root, tcpreplay, iproute2 and nsenter (and
# editcap for SENDERS > 1); without root it says so and exits 0.
#   live_rate.sh STRIPWATCH BENCH_GEN DIR...   (DIR: folders of captures)
# Environment: ROUNDS (1000), LOOPS (1), RATES (Mbit/s, "250 500 1000 top"),
# WORKERS ("1 2"), SENDERS (1), SENSOR_ARGS (more stripwatch flags, e.g.
# --buffer-size 67108864).
set -euo pipefail
sw=$1
gen=$2
shift 2
if [ "$(id -u)" -ne 0 ]; then
  echo "bench-live: skipped: needs root (network namespaces and a veth pair)"
  exit 0
fi
rounds=${ROUNDS:-1000}
loops=${LOOPS:-1}
rates=${RATES:-250 500 1000 top}
workers_list=${WORKERS:-1 2}
senders=${SENDERS:-1}
tmp=$(mktemp -d)
a=swbench$$-a
b=swbench$$-b
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -INT "$pid" 2>/dev/null || true; fi
  ip netns del "$a" 2>/dev/null || true
  ip netns del "$b" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$a"
ip netns add "$b"
ip link add va netns "$a" type veth peer name vb netns "$b"
# no link-local addresses: no IPv6 autoconfiguration traffic beside the replay
nsenter --net="/run/netns/$a" ip link set va addrgenmode none
nsenter --net="/run/netns/$b" ip link set vb addrgenmode none
nsenter --net="/run/netns/$a" ip link set va up
nsenter --net="/run/netns/$b" ip link set vb up
dirs=()
for d in "$@"; do dirs+=(--pcaps "$d"); done
read -r frames bytes < <("$gen" "${dirs[@]}" --rounds "$rounds" --write-real-mix "$tmp/mix.pcap")
parts=("$tmp/mix.pcap")
if [ "$senders" -gt 1 ]; then
  parts=()
  per=$(((frames + senders - 1) / senders))
  for k in $(seq 0 $((senders - 1))); do
    first=$((k * per + 1)) last=$(((k + 1) * per))
    [ "$last" -le "$frames" ] || last=$frames
    editcap -r "$tmp/mix.pcap" "$tmp/part$k.pcap" "$first-$last"
    parts+=("$tmp/part$k.pcap")
  done
  rm "$tmp/mix.pcap"
fi
echo "bench-live: real mix of $rounds rounds: $frames frames, $((bytes / 1000000)) MB, replayed $loops times per rate on a veth pair by $senders tcpreplay process(es) at once; load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"

# trial WORKERS RATE: prints "received dropped interface_dropped counted sent Mbps pps"
trial() {
  local w=$1 rate=$2 speed
  if [ "$rate" = top ]; then
    speed=(--topspeed)
  else
    speed=(--mbps "$(awk -v r="$rate" -v n="$senders" 'BEGIN { print r / n }')")
  fi
  # shellcheck disable=SC2086
  nsenter --net="/run/netns/$a" "$sw" -i va --workers "$w" --state-dir "$tmp" \
    --sessions-out /dev/null --alerts-out /dev/null ${SENSOR_ARGS:-} 2>"$tmp/err" &
  pid=$!
  local i n=0
  for i in $(seq 600); do
    n=$(awk 'NR > 1 && $4 == "0003" && $5 != "0"' "/proc/$pid/net/packet" 2>/dev/null | wc -l)
    [ "$n" -ge "$w" ] && break
    sleep 0.05
  done
  [ "$n" -ge "$w" ] || { echo "bench-live: the sensor did not open $w sockets" >&2; cat "$tmp/err" >&2; exit 1; }
  local k senders_pids=()
  for k in "${!parts[@]}"; do
    nsenter --net="/run/netns/$b" tcpreplay --preload-pcap --loop "$loops" "${speed[@]}" -i vb \
      "${parts[$k]}" >"$tmp/replay$k" 2>&1 &
    senders_pids+=($!)
  done
  for k in "${senders_pids[@]}"; do wait "$k"; done # each one's status
  # let the sensor drain its rings (its packet count stops moving)
  local last=-1 now=0
  for i in $(seq 600); do
    kill -USR1 "$pid"
    sleep 0.5
    now=$(grep -o 'stats packets=[0-9]*' "$tmp/err" | tail -1 | cut -d= -f2)
    [ "$now" = "$last" ] && break
    last=$now
  done
  kill -INT "$pid"
  wait "$pid"
  pid=
  local st sent mbps pps
  st=$(grep 'stripwatch: stats packets=' "$tmp/err" | tail -1)
  # each sender's count and rates, summed ("Actual: N packets ...",
  # "Rated: B Bps, M Mbps, P pps")
  read -r sent mbps pps < <(awk '/Actual:/ { s += $2 } /Rated:/ { m += $4; p += $6 }
    END { printf "%d %.2f %.2f\n", s, m, p }' "$tmp"/replay*)
  echo "$(sed 's/.*kernel_received=\([0-9]*\) kernel_dropped=\([0-9]*\) interface_dropped=\([0-9]*\).*/\1 \2 \3/' <<<"$st") $(sed 's/.*packets=\([0-9]*\) .*/\1/' <<<"$st") $sent $mbps $pps"
}

for w in $workers_list; do
  best=none best_mbps=0
  limit="no rate tried"
  for rate in $rates; do
    read -r recv drop ifdrop counted sent mbps pps < <(trial "$w" "$rate")
    echo "  --workers $w, tcpreplay ${rate} Mbit/s: sent $sent frames at $mbps Mbit/s ($pps packets/s); sensor counted $counted, kernel received $recv, dropped $drop, interface dropped $ifdrop"
    if [ "$drop" = 0 ] && [ "$ifdrop" = 0 ]; then
      # the fastest trial without a drop (top speed may come out below a set rate)
      if awk -v a="$mbps" -v b="$best_mbps" 'BEGIN { exit !(a > b) }'; then
        best="$mbps Mbit/s, $pps packets/s" best_mbps=$mbps
      fi
      limit="no drop at any rate tried: tcpreplay's own speed is the limit"
    else
      limit="drops at tcpreplay $rate Mbit/s ($mbps Mbit/s reached)"
      break
    fi
  done
  echo "  --workers $w: highest rate without a kernel drop: $best ($limit; load average $(cut -d' ' -f1-3 /proc/loadavg))"
done
