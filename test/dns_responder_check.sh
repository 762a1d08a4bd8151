#!/bin/bash
# CI check of examples/dns_responder with clients nobody here wrote: dig (dnsutils) for correct
# answers over IPv4 and IPv6, from the address the query went to (a 0.0.0.0 port asked on
# 127.0.0.2), NXDOMAIN, REFUSED, truncation without EDNS, FORMERR for malformed queries (sent
# by python3), and a short bounded dnsperf run that must lose no query.  On each Linux backend
# (uring, sockets).  Exit 0 pass, 1 fail, 77 skip (with the reason).
#
#   test/dns_responder_check.sh PATH/TO/dns_responder
set -u
bin=${1:?usage: dns_responder_check.sh PATH/TO/dns_responder}
command -v dig >/dev/null || { echo "SKIP: dig not installed (apt-get install dnsutils)"; exit 77; }
have_perf=1
command -v dnsperf >/dev/null || { echo "dnsperf not installed (apt-get install dnsperf): its part is skipped"; have_perf=0; }
have_py=1
command -v python3 >/dev/null || { echo "python3 not installed: the malformed-query part is skipped"; have_py=0; }

fail=0
tmp=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

check() { # check NAME EXPECTED ACTUAL
  if [ "$2" == "$3" ]; then
    echo "  ok: $1"
  else
    echo "  FAIL: $1: expected [$2], got [$3]"
    fail=1
  fi
}

D() { dig +time=2 +tries=1 "$@"; }

run_backend() {
  local backend=$1
  "$bin" udp://0.0.0.0:0 'udp://[::1]:0' --backend "$backend" --seconds 60 >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  local line=""
  for _ in $(seq 50); do
    line=$(grep -m1 'ready on' "$tmp/out" 2>/dev/null || true)
    [ -n "$line" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$line" ]; then
    wait "$pid" 2>/dev/null
    pid=""
    if grep -q "not supported\|EOPNOTSUPP\|unavailable" "$tmp/err"; then
      echo "[$backend] SKIP: $(cat "$tmp/err")"
      return
    fi
    echo "[$backend] FAIL: the responder did not start: $(cat "$tmp/err")"
    fail=1
    return
  fi
  local p4 p6
  p4=$(sed -n 's/.*udp:\/\/0\.0\.0\.0:\([0-9]*\).*/\1/p' <<<"$line")
  p6=$(sed -n 's/.*udp:\/\/\[::1\]:\([0-9]*\).*/\1/p' <<<"$line")
  echo "[$backend] $line"
  check "A over IPv4" "192.0.2.1 192.0.2.2" "$(D +short @127.0.0.1 -p "$p4" www.example.test A | sort | tr '\n' ' ' | sed 's/ $//')"
  # dig refuses an answer from another address than it asked: this one must come from 127.0.0.2.
  check "answer from the address asked (127.0.0.2)" "2001:db8::1" "$(D +short @127.0.0.2 -p "$p4" www.example.test AAAA)"
  check "AAAA over IPv6" "2001:db8::1" "$(D +short @::1 -p "$p6" example.test AAAA)"
  check "TXT over IPv6" '"hello from mior"' "$(D +short @::1 -p "$p6" txt.example.test TXT)"
  check "NXDOMAIN" "NXDOMAIN" "$(D @127.0.0.1 -p "$p4" nope.example.test A | sed -n 's/.*status: \([A-Z]*\),.*/\1/p')"
  check "REFUSED outside the zone" "REFUSED" "$(D @127.0.0.1 -p "$p4" www.example.org A | sed -n 's/.*status: \([A-Z]*\),.*/\1/p')"
  check "TC past 512 bytes without EDNS" "1" "$(D +noedns +ignore @127.0.0.1 -p "$p4" big.example.test TXT | grep -c '^;; flags: qr aa tc')"
  check "12 TXT records with EDNS" "12" "$(D +short @127.0.0.1 -p "$p4" big.example.test TXT | wc -l)"
  if [ $have_py = 1 ]; then
    check "malformed queries: FORMERR, or dropped" "formerr formerr drop drop" "$(python3 - "$p4" <<'EOF'
import socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
def ask(msg):
    s.sendto(msg, ("127.0.0.1", port))
    try:
        d, _ = s.recvfrom(4096)
    except socket.timeout:
        return "drop"
    return "formerr" if len(d) >= 12 and d[:2] == msg[:2] and d[3] & 15 == 1 else "other"
q = bytes.fromhex("beef01000002000000000000") + b"\x03www\x07example\x04test\x00\x00\x01\x00\x01"
label_past_end = bytes.fromhex("beef01000001000000000000") + b"\x3fwww"
short = b"\x01\x02\x03"
response = bytes.fromhex("beef81000001000000000000")
print(ask(q), ask(label_past_end), ask(short), ask(response))
EOF
)"
    check "still answering after malformed queries" "192.0.2.1 192.0.2.2" "$(D +short @127.0.0.1 -p "$p4" www.example.test A | sort | tr '\n' ' ' | sed 's/ $//')"
  fi
  if [ $have_perf = 1 ]; then
    printf 'www.example.test A\nexample.test AAAA\ntxt.example.test TXT\nnope.example.test A\n' >"$tmp/q"
    local perf
    perf=$(timeout 60 dnsperf -s 127.0.0.1 -p "$p4" -d "$tmp/q" -n 5000 -l 20 -c 4 -t 2 2>&1)
    local sent lost qps
    sent=$(sed -n 's/.*Queries sent: *\([0-9]*\).*/\1/p' <<<"$perf")
    lost=$(sed -n 's/.*Queries lost: *\([0-9]*\).*/\1/p' <<<"$perf")
    qps=$(sed -n 's/.*Queries per second: *\([0-9.]*\).*/\1/p' <<<"$perf")
    check "dnsperf: 20000 queries sent" "20000" "$sent"
    check "dnsperf: none lost" "0" "$lost"
    echo "  dnsperf [$backend]: $qps queries/s, $(sed -n 's/.*Average Latency (s): *\([0-9.]*\).*/\1/p' <<<"$perf") s average latency"
  fi
  kill -TERM "$pid"
  wait "$pid"
  local rc=$?
  pid=""
  check "clean exit (every slot back, close 0)" "0" "$rc"
  grep 'queries' "$tmp/out" | tail -1 | sed 's/^/  /'
  if [ -s "$tmp/err" ]; then
    echo "  FAIL: the responder wrote errors:"
    sed 's/^/    /' "$tmp/err"
    fail=1
  fi
}

for b in uring sockets; do run_backend "$b"; done
[ $fail = 0 ] && echo PASS
exit $fail
