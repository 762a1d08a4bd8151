#!/bin/sh
# Run a Windows program under Wine for CTest (CMAKE_CROSSCOMPILING_EMULATOR in
# mingw-w64-x86_64.cmake), so that its exit code is the program's own:
#  - winedbg is disabled, so a crash ends the process with a failure code instead of starting the
#    debugger (which can exit 0);
#  - Wine's own diagnostics are silenced unless WINEDEBUG is already set;
#  - WINEPREFIX defaults to a private directory under /tmp, created on first use, so a test run
#    never touches ~/.wine.  Start `wineserver -p` once beforehand (the quick start does) so each
#    test does not pay Wine's start-up.
set -eu
: "${WINEPREFIX:=/tmp/mior-wine-$(id -u)}"
: "${WINEDEBUG:=-all}"
WINEDLLOVERRIDES="winedbg.exe=d${WINEDLLOVERRIDES:+;$WINEDLLOVERRIDES}"
export WINEPREFIX WINEDEBUG WINEDLLOVERRIDES
wine=/usr/lib/wine/wine64
[ -x "$wine" ] || wine=wine
# A program started in a prefix that does not exist yet would wait for Wine's one-off set-up
# (seen to outlast CTest's timeout), so set the prefix up first, once, under a lock because
# CTest may start several tests at the same time.
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  mkdir -p "$WINEPREFIX"
  (
    flock 9
    if [ ! -f "$WINEPREFIX/system.reg" ]; then
      "$wine" wineboot --init >/dev/null 2>&1
      # wineboot returns while parts of the set-up still run; tests started meanwhile can hang.
      server=/usr/lib/wine/wineserver64
      [ -x "$server" ] || server=wineserver
      timeout 120 "$server" -w || true
    fi
  ) 9>"$WINEPREFIX/.mior-init.lock"
fi
exec "$wine" "$@"
