#!/usr/bin/env bash
# bench/dns.sh: dnsperf against examples/dns_responder (uring, sockets) and against
# bench/baselines/bl_dns.c (the same zone on plain recvmmsg/sendmmsg), over loopback; prints a
# markdown table for docs/PERFORMANCE.md.  Each server runs on one core-free thread; dnsperf
# sends with -c CLIENTS -T 1 for SECONDS (or QUERIES runs through the file).
#
#   bench/dns.sh BUILD_DIR [SECONDS] [RUNS]
set -euo pipefail
build=${1:?usage: bench/dns.sh BUILD_DIR [SECONDS] [RUNS]}
secs=${2:-5}
runs=${3:-3}
command -v dnsperf >/dev/null || { echo "bench/dns.sh: dnsperf not installed (apt-get install dnsperf)" >&2; exit 2; }
tmp=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
printf 'www.example.test A\nexample.test AAAA\ntxt.example.test TXT\nnope.example.test A\n' >"$tmp/q"
port=25399

one() { # one NAME CMD...: start the server, run dnsperf RUNS times, print the medians
  local name=$1
  shift
  "$@" >"$tmp/srv" 2>&1 &
  pid=$!
  for _ in $(seq 50); do grep -q ready "$tmp/srv" && break; sleep 0.1; done
  local qs=() lat=() lost=0
  for _ in $(seq "$runs"); do
    local out
    out=$(dnsperf -s 127.0.0.1 -p $port -d "$tmp/q" -l "$secs" -c 8 -T 1 -q 256 2>&1)
    qs+=("$(sed -n 's/.*Queries per second: *\([0-9.]*\).*/\1/p' <<<"$out")")
    lat+=("$(sed -n 's/.*Average Latency (s): *\([0-9.]*\).*/\1/p' <<<"$out")")
    lost=$((lost + $(sed -n 's/.*Queries lost: *\([0-9]*\).*/\1/p' <<<"$out")))
  done
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  pid=""
  grep -h "kernel" "$tmp/srv" >&2 || true
  local mq ml
  mq=$(printf '%s\n' "${qs[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p")
  ml=$(printf '%s\n' "${lat[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p")
  printf '| %s | %.0f | %.0f | %s |\n' "$name" "$mq" "$(awk "BEGIN{print $ml*1e6}")" "$lost"
}

echo "| DNS responder (dnsperf -c 8 -q 256, ${secs} s x ${runs}, median) | queries/s | avg latency (us) | lost |"
echo "|---|---|---|---|"
one "mior uring (epoll + event handle + rx_burst)" "$build/examples/dns_responder" udp://127.0.0.1:$port --backend uring --no-pktinfo
one "mior uring, with MIOR_OPT_RX_PKTINFO" "$build/examples/dns_responder" udp://127.0.0.1:$port --backend uring
one "mior sockets (epoll + event handle + rx_burst)" "$build/examples/dns_responder" udp://127.0.0.1:$port --backend sockets --no-pktinfo
one "plain recvmmsg/sendmmsg (bench/baselines/bl_dns.c)" "$build/bench/bl_dns" 127.0.0.1 $port
