#!/bin/sh
# CTest: stock sockperf (nobody here wrote it) measures `mior-perf server`, on each Linux backend,
# and `mior-perf client` measures a stock `sockperf server`.  Loopback only; every run is bounded
# (sockperf -t 1 under timeout, the servers with --seconds); only processes this script started
# are stopped, by PID.  Exit 0 pass, 1 fail, 77 skip (no sockperf).
#
#   sockperf_test.sh MIOR_PERF
set -u
PERF=$1
if ! command -v sockperf >/dev/null 2>&1; then
  echo "SKIP: sockperf is not installed (Debian: apt-get install sockperf)"
  exit 77
fi
tmp=$(mktemp -d) || exit 1
srv=
cleanup() {
  [ -n "$srv" ] && kill "$srv" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}

# Start `mior-perf server` on a port the kernel picks; sets srv and port.
start_server() {
  "$PERF" server --backend "$1" --listen 127.0.0.1:0 --seconds 40 --json \
    >"$tmp/srv.out" 2>"$tmp/srv.err" &
  srv=$!
  port=
  for _ in $(seq 50); do
    port=$(sed -n 's/.*protocol on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$tmp/srv.err")
    [ -n "$port" ] && return 0
    kill -0 "$srv" 2>/dev/null || break
    sleep 0.1
  done
  wait "$srv"
  rc=$?
  srv=
  cat "$tmp/srv.err"
  return "${rc:-1}"
}

# Ask the server to finish (SIGINT, as Ctrl-C) and print its JSON line.
stop_server() {
  kill -INT "$srv"
  wait "$srv" || fail "mior-perf server exited $?: $(cat "$tmp/srv.err")"
  srv=
  cat "$tmp/srv.out"
}

json_num() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$tmp/srv.out"; }

ran=0
for backend in uring sockets; do
  if ! start_server "$backend"; then
    echo "backend $backend cannot run here (above); next"
    continue
  fi
  ran=$((ran + 1))
  echo "== $backend: $(cat "$tmp/srv.err")"
  for mode in "ping-pong" "under-load --mps=2000" "throughput --mps=20000"; do
    # shellcheck disable=SC2086
    timeout 30 sockperf $mode -i 127.0.0.1 -p "$port" -t 1 >"$tmp/sp.out" 2>&1
    rc=$?
    grep -E 'Summary|percentile 50.000|ERROR|No messages' "$tmp/sp.out"
    [ $rc -eq 0 ] || fail "sockperf $mode exited $rc: $(tail -5 "$tmp/sp.out")"
    grep -q 'No messages were received' "$tmp/sp.out" && fail "sockperf $mode got no replies"
    case $mode in
      throughput*) grep -q 'Summary: Message Rate' "$tmp/sp.out" || fail "no message rate" ;;
      *) grep -q 'Summary: Latency is' "$tmp/sp.out" || fail "sockperf $mode measured no latency" ;;
    esac
  done
  stop_server
  msgs=$(json_num messages)
  pongs=$(json_num pongs)
  sent=$(json_num tx_packets)
  [ "${msgs:-0}" -gt 20000 ] || fail "$backend server counted ${msgs:-no} messages (throughput at 20000/s for 1 s alone sends ~20000)"
  [ "${pongs:-0}" -gt 0 ] && [ "$pongs" = "$sent" ] || fail "$backend: $pongs pongs queued but $sent sent"
done
[ $ran -gt 0 ] || fail "no backend could run the server"

# The other way round: mior-perf's client against sockperf's own server.
# sockperf cannot report a kernel-chosen port, so pick a free one by binding and releasing it.
sport=$(python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null) || sport=11311
sockperf server -i 127.0.0.1 -p "$sport" >"$tmp/sps.out" 2>&1 &
srv=$!
sleep 0.5
"$PERF" client --server "127.0.0.1:$sport" --seconds 1 --warmup 0.2 --json >"$tmp/cli.out" 2>&1
rc=$?
cat "$tmp/cli.out"
kill "$srv"
wait "$srv" 2>/dev/null
srv=
[ $rc -eq 0 ] || fail "mior-perf client against sockperf server exited $rc"
recv=$(sed -n 's/.*"received":\([0-9]*\).*/\1/p' "$tmp/cli.out")
[ "${recv:-0}" -gt 100 ] || fail "mior-perf client got ${recv:-no} replies from sockperf server"
echo "PASS"
exit 0
