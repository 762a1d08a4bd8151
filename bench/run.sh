#!/usr/bin/env bash
# bench/run.sh: the side-by-side benchmark (docs/PERFORMANCE.md), one command from a fresh clone.
#
#   sudo bench/run.sh [--quick] [--runs N] [--seconds S] [--rps] [--out DIR] [--docs] [--only LIST]
#
# Installs what is missing (Debian packages, like tools/quickstart.sh), builds mior-perf and the
# baselines in build-bench (Release), then runs bench/harness.py, which makes and removes the
# namespaces, runs every method, and writes DIR/results.json, DIR/table.md and DIR/*.png.
# --docs also rewrites docs/PERFORMANCE.md and docs/perf/*.png from this run.  --only runs some
# sections (pps,latency,rate,batch,queues,dns), e.g. --only dns for the DNS responder rows.
# Root is needed for the namespaces and raw sockets.  MIOR_NO_APT=1: never run apt-get.
# Not part of CI's test stage: a full run takes about 20 minutes, --quick under 3.
set -euo pipefail

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MIOR_BENCH_BUILD:-$src/build-bench}"

if [ "$(id -u)" -ne 0 ]; then
  echo "bench/run.sh: needs root (network namespaces, AF_PACKET, AF_XDP)" >&2
  exit 2
fi

pkgs=(build-essential cmake pkg-config liburing-dev libnuma-dev iproute2 python3 gnuplot-nox
      sockperf libxdp-dev libbpf-dev dnsperf)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench/run.sh: installing ${missing[*]}"
  if [ "${MIOR_NO_APT:-0}" = 1 ]; then
    echo "MIOR_NO_APT=1: not installing; the harness skips what is missing" >&2
  else
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    # sockperf, libxdp and dnsperf are optional: the harness says so when they are absent.
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
      echo "bench/run.sh: some packages could not be installed; continuing" >&2
  fi
fi

echo "bench/run.sh: building in $build (Release)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DMIOR_WERROR=ON -DBUILD_TESTING=OFF &&
       cmake --build "$build" -j"$(nproc)" --target mior-perf bl_udp bl_uring bl_packet bl_pingpong bl_netns \
         dns_responder bl_dns &&
       { cmake --build "$build" -j"$(nproc)" --target bl_xdp || true; }; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "bench/run.sh: build failed" >&2
  exit 1
fi

exec python3 "$src/bench/harness.py" --build "$build" --src "$src" "$@"
