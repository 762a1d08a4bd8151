#!/usr/bin/env bash
# bench/dns.sh: dnsperf against examples/dns_responder (uring, uring with MIOR_OPT_RX_PKTINFO,
# sockets) and against bench/baselines/bl_dns.c (the same zone on plain recvmmsg/sendmmsg), over
# loopback: the harness's DNS section alone (bench/harness.py --only dns), which prints its
# markdown table for docs/PERFORMANCE.md.  dnsperf runs 8 clients with 256 queries outstanding for
# SECONDS, RUNS times per server; the table has the medians (min-max).  Results go to a temporary
# directory that is removed afterwards.
#
#   bench/dns.sh BUILD_DIR [SECONDS] [RUNS]
set -euo pipefail
build=${1:?usage: bench/dns.sh BUILD_DIR [SECONDS] [RUNS]}
secs=${2:-5}
runs=${3:-3}
command -v dnsperf >/dev/null || { echo "bench/dns.sh: dnsperf not installed (apt-get install dnsperf)" >&2; exit 2; }
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
python3 "$src/bench/harness.py" --build "$build" --src "$src" --only dns --seconds "$secs" --runs "$runs" \
  --out "$out"
