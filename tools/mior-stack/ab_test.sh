#!/bin/sh
# CTest: ApacheBench (nobody here wrote it) against mior-stack's HTTP responder, lwIP on a mior
# packet port in a namespace pair mior-stack makes: -c 50 then -c 200 back to back, on each Linux
# backend, with 0 failed requests, and enough connections that the client's ports come round to
# connections lwIP still keeps in TIME_WAIT (the stall of issue 15).  Bounded: ab -n N with -s 10
# under timeout, mior-stack with --seconds; only the mior-stack this script started is stopped,
# by PID.  Exit 0 pass, 1 fail, 77 skip (not root, or no ab).
#
#   ab_test.sh MIOR_STACK [N]
set -u
STACK=$1
N=${2:-10000}
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces)"; exit 77; }
command -v ab >/dev/null 2>&1 || { echo "SKIP: ab is not installed (Debian: apache2-utils)"; exit 77; }
. "$(dirname "$0")/stack_test.sh"
for backend in uring sockets; do
  stack_start "$STACK" "$backend" 217 90 --echo-port 0 || continue
  for c in 50 200; do
    timeout 100 ip netns exec "$ns" ab -q -n "$N" -c "$c" -s 10 http://10.77.217.3/ >"$tmp/ab" 2>&1
    rc=$?
    grep -E 'Complete requests|Failed requests|Non-2xx|Requests per second|apr_' "$tmp/ab"
    [ $rc -eq 0 ] || fail "$backend: ab -n $N -c $c exited $rc"
    grep -q "Complete requests: *$N\$" "$tmp/ab" || fail "$backend -c $c: not all $N requests completed"
    grep -q 'Failed requests: *0$' "$tmp/ab" || fail "$backend -c $c: failed requests"
    grep -q 'Non-2xx' "$tmp/ab" && fail "$backend -c $c: non-2xx answers"
  done
  stack_stop "$backend"
  tail -1 "$tmp/out"
  grep -q "http requests $((2 * N))," "$tmp/out" || fail "$backend: mior-stack did not count $((2 * N)) requests"
  grep -q 'TIME_WAIT reused by a new SYN [1-9]' "$tmp/out" ||
    fail "$backend: the client's ports never came round to a TIME_WAIT connection (raise N)"
done
[ $ran -gt 0 ] || fail "no backend could run mior-stack"
echo PASS
