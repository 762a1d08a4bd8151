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
if [ -x /usr/lib/wine/wine64 ]; then
  exec /usr/lib/wine/wine64 "$@"
fi
exec wine "$@"
