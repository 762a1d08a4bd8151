#!/bin/bash
# examples/uv_echo (a mior port inside libuv's loop through its event handle) echoes 2000
# datagrams from a plain python3 client, in windows of 50, on each Linux backend, and exits 0
# (every slot back).  Exit 77 with the reason if python3 is missing.
set -u
bin=${1:?usage: uv_echo_check.sh PATH/TO/uv_echo}
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 77; }
tmp=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
fail=0
for b in uring sockets; do
  "$bin" udp://127.0.0.1:0 --backend "$b" --seconds 30 >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  for _ in $(seq 50); do grep -q ready "$tmp/out" && break; sleep 0.1; done
  port=$(sed -n 's/.*udp:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/out")
  if [ -z "$port" ]; then echo "[$b] FAIL: did not start: $(cat "$tmp/err")"; fail=1; continue; fi
  got=$(python3 - "$port" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
ok = 0
for w in range(40):
    sent = set()
    for i in range(50):
        m = b"uv-%d-%d" % (w, i)
        s.sendto(m, ("127.0.0.1", int(sys.argv[1])))
        sent.add(m)
    try:
        while sent:
            d, _ = s.recvfrom(100)
            if d in sent:
                sent.remove(d)
                ok += 1
    except socket.timeout:
        break
print(ok)
PY
)
  kill -INT "$pid"
  wait "$pid"
  rc=$?
  pid=""
  echo "[$b] echoed $got of 2000, exit $rc; $(tail -1 "$tmp/out")"
  [ "$got" = 2000 ] && [ $rc = 0 ] && [ ! -s "$tmp/err" ] || fail=1
done
[ $fail = 0 ] && echo PASS
exit $fail
