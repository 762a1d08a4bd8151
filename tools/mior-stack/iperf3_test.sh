#!/bin/sh
# CTest: a stock iperf3 client (nobody here wrote it) measures lwIP on a mior packet port through
# mior-stack's iperf3 server: into lwIP, out of it (-R) and with two streams (-P 2 -R), 1 s each,
# on each Linux backend.  Bounded: iperf3 -t 1 under timeout, mior-stack with --seconds; only the
# mior-stack this script started is stopped, by PID.  Exit 0 pass, 1 fail, 77 skip.
#
#   iperf3_test.sh MIOR_STACK
set -u
STACK=$1
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces)"; exit 77; }
command -v iperf3 >/dev/null 2>&1 || { echo "SKIP: iperf3 is not installed (Debian: iperf3)"; exit 77; }
. "$(dirname "$0")/stack_test.sh"
for backend in uring sockets; do
  stack_start "$STACK" "$backend" 218 60 || continue
  for args in "" "-R" "-P 2 -R"; do
    # shellcheck disable=SC2086
    timeout 20 ip netns exec "$ns" iperf3 -c 10.77.218.3 -t 1 $args >"$tmp/ip3" 2>&1
    rc=$?
    line=$(grep -E 'receiver' "$tmp/ip3" | tail -1)
    echo "$backend iperf3 $args: $line"
    [ $rc -eq 0 ] || fail "$backend: iperf3 $args exited $rc: $(tail -3 "$tmp/ip3")"
    echo "$line" | grep -Eq ' [1-9][0-9.]* [MG]Bytes ' || fail "$backend: iperf3 $args moved less than 1 MB"
  done
  stack_stop "$backend"
done
[ $ran -gt 0 ] || fail "no backend could run mior-stack"
echo PASS
