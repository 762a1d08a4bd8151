# Sourced by ab_test.sh and iperf3_test.sh (the CTests that run stock clients against
# mior-stack): the temporary directory, the cleanup that stops only the mior-stack this script
# started (by PID), and starting and stopping one mior-stack in its namespace pair.
tmp=$(mktemp -d) || exit 1
pid=
ran=0
cleanup() {
  [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null && wait "$pid"
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}

# stack_start STACK BACKEND SUBNET SECONDS [ARGS...]: start mior-stack with its output in
# $tmp/out and wait (5 s at most) for the namespace it names; 0 with $ns and $pid set, or 1
# after saying why the backend cannot run here.
stack_start() {
  stack=$1 backend=$2 subnet=$3 secs=$4
  shift 4
  "$stack" --netns --subnet "$subnet" --backend "$backend" --seconds "$secs" "$@" >"$tmp/out" 2>&1 &
  pid=$!
  ns=
  for _ in $(seq 50); do
    ns=$(sed -n 's/.*ip netns exec \([^ ]*\) ping.*/\1/p' "$tmp/out")
    [ -n "$ns" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$ns" ]; then
    wait "$pid"
    pid=
    echo "backend $backend cannot run here: $(cat "$tmp/out")"
    return 1
  fi
  ran=$((ran + 1))
  head -1 "$tmp/out"
  return 0
}

# stack_stop BACKEND: stop it (SIGINT) and fail unless it exited 0.
stack_stop() {
  kill -INT "$pid"
  wait "$pid"
  src=$?
  pid=
  [ $src -eq 0 ] || fail "$1: mior-stack exited $src: $(tail -2 "$tmp/out")"
}
