#!/bin/bash
# Quick start for mior on Debian 12, run as root from anywhere in the checkout:
#
#   ./tools/quickstart.sh perf   install what is missing, build (Release, -Werror), run mior-perf
#   ./tools/quickstart.sh test   install what is missing, then every check CI runs:
#                                build + tests, install + consumer, ASan/UBSan build + tests,
#                                TSan build + pool/threaded transport tests, each fuzz harness
#                                for MIOR_FUZZ_SECONDS (default 20), mingw-w64 cross build +
#                                Windows tests under Wine
#
# Any failure stops the script with a non-zero exit; a summary of the stages (with their times)
# is printed at the end either way.
#
# Environment (optional):
#   MIOR_BUILD_DIR   build directory (default "build"; the sanitizer and Windows builds go to
#                    <dir>-asan and <dir>-mingw)
#   MIOR_JOBS        parallel compile jobs (default: number of CPUs)
#   MIOR_CTEST_JOBS  tests run at once (default 2)
#   MIOR_NO_APT=1    never run apt-get; fail if a package is missing
set -euo pipefail

cd "$(dirname "$0")/.."
top=$(pwd)

mode=${1:-}
case "$mode" in
  perf | test) ;;
  *)
    echo "usage: $0 perf|test" >&2
    exit 2
    ;;
esac

build=${MIOR_BUILD_DIR:-build}
jobs=${MIOR_JOBS:-$(nproc 2>/dev/null || echo 2)}
ctest_jobs=${MIOR_CTEST_JOBS:-2}

# ---------------------------------------------------------------------------------------------
# Stages and the summary

summary=()
stage_name=""
stage_start=0
script_start=$SECONDS
tmp=""
wine_started=""

stage_begin() {
  stage_name=$1
  stage_start=$SECONDS
  printf '\n=== [%s] %s\n' "$1" "$2"
}

stage_end() {
  summary+=("$(printf '  %-9s %5ss  ok    %s' "$stage_name" $((SECONDS - stage_start)) "${1:-}")")
  stage_name=""
}

on_exit() {
  local rc=$?
  if [ -n "$stage_name" ]; then
    summary+=("$(printf '  %-9s %5ss  FAILED (exit %s)' "$stage_name" $((SECONDS - stage_start)) "$rc")")
  fi
  if [ -n "$wine_started" ]; then
    "$wineserver" -k 2>/dev/null || true
  fi
  if [ -n "$tmp" ]; then
    rm -rf "$tmp"
  fi
  printf '\n=== summary (%s, %ss)\n' "$mode" $((SECONDS - script_start))
  printf '%s\n' "${summary[@]}"
  if [ "$rc" -eq 0 ]; then
    echo "=== all stages passed"
  else
    echo "=== FAILED: see the output of stage '${stage_name:-?}' above"
  fi
  exit "$rc"
}
trap on_exit EXIT

# ---------------------------------------------------------------------------------------------
# Packages: installed only when missing; apt-get update runs once, and only then.

base_pkgs=(build-essential cmake pkg-config liburing-dev libnuma-dev iproute2 ethtool)
# The tests drive real peers: the kernel's ping, curl, nc and Python sockets talk to lwIP; nft filters
# the kernel's RSTs in ip mode; libFuzzer comes with clang's runtime package.
test_pkgs=(gcc-mingw-w64-x86-64 wine64 tcpdump libpcap-dev liblwip-dev clang libclang-rt-14-dev
           curl nftables netcat-openbsd iputils-ping python3)
# examples/dns_responder is driven by dig and dnsperf, examples/uv_echo runs in libuv's loop.
test_pkgs+=(dnsutils dnsperf libuv1-dev)
# Stock load clients the tests point at mior: sockperf (mior-perf server), ab (mior-stack), iperf3.
test_pkgs+=(sockperf apache2-utils iperf3)

ensure_packages() {
  local missing=() p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "all ${#} packages present"
    return 0
  fi
  echo "missing: ${missing[*]}"
  if [ "${MIOR_NO_APT:-0}" = 1 ]; then
    echo "MIOR_NO_APT=1: not installing" >&2
    return 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "installing packages needs root: run as root or install them first" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# ---------------------------------------------------------------------------------------------
# Building and testing

# configure_build DIR [cmake args...]: configure and build quietly, showing the log on failure.
configure_build() {
  local dir=$1
  shift
  mkdir -p "$dir"
  if ! cmake -S "$top" -B "$dir" "$@" >"$dir/configure.log" 2>&1; then
    cat "$dir/configure.log"
    return 1
  fi
  if ! cmake --build "$dir" -j "$jobs" >"$dir/build.log" 2>&1; then
    # The compiler's messages and make's "Error" lines (which name the target) are what matter.
    grep -v -E '^\[ *[0-9]+%\]|(Leaving|Entering) directory|Waiting for unfinished' "$dir/build.log" \
      | tail -n 200
    return 1
  fi
  local steps
  steps=$(grep -c -E '^\[ *[0-9]+%\] (Building|Linking)' "$dir/build.log" || true)
  echo "built in $dir: $steps compile/link steps (up to date if 0)"
}

# run_tests DIR: the CTest suite, with output on failure; prints the pass/skip count.
run_tests() {
  local dir=$1 log
  shift
  log="$dir/ctest.log"
  if ! ctest --test-dir "$dir" --output-on-failure -j "$ctest_jobs" "$@" 2>&1 | tee "$log"; then
    return 1
  fi
  # Skips are not failures, but they are worth seeing: each test prints why on a "SKIP:" line,
  # which CTest keeps only in its log.
  local skips
  skips=$(awk '/^[0-9]+\/[0-9]+ Test: / { name = $3 } /^SKIP:/ { print "  " name ": " $0 }' \
    "$dir/Testing/Temporary/LastTest.log" 2>/dev/null || true)
  if [ -n "$skips" ]; then
    echo "skipped:"
    echo "$skips"
  fi
  tests_line=$(grep -E 'tests passed' "$log" | tail -n1 || true)
}

build_main() {
  stage_begin build "configure and build ($build, Release, -Werror)"
  configure_build "$build" -DCMAKE_BUILD_TYPE=Release -DMIOR_WERROR=ON
  stage_end "Release, -Werror, in $build/"
}

# ---------------------------------------------------------------------------------------------
# perf: build and run mior-perf

run_perf() {
  stage_begin deps "Debian packages"
  ensure_packages "${base_pkgs[@]}"
  stage_end

  build_main

  stage_begin perf "mior-perf"
  local perf="$build/tools/mior-perf"
  if [ ! -x "$perf" ]; then
    echo "$perf was not built (tools/mior-perf has no sources yet)" >&2
    return 1
  fi
  if { "$perf" --help 2>&1 || true; } | grep -q throughput; then
    echo "+ $perf throughput --backend all --seconds 3"
    "$perf" throughput --backend all --seconds 3
    stage_end "throughput, all backends"
  else
    echo "mior-perf has no throughput mode yet (the transport is still being built):"
    echo "running its self-test instead."
    echo "+ $perf microbench"
    "$perf" microbench
    stage_end "microbench only (no throughput mode yet)"
  fi
}

# ---------------------------------------------------------------------------------------------
# test: everything CI checks

run_test() {
  stage_begin deps "Debian packages"
  ensure_packages "${base_pkgs[@]}" "${test_pkgs[@]}"
  stage_end

  tmp=$(mktemp -d /tmp/mior-quickstart.XXXXXX)

  build_main

  stage_begin tests "CTest suite ($build, -j$ctest_jobs)"
  tests_line=""
  run_tests "$build"
  stage_end "$tests_line"

  stage_begin install "install to a temporary prefix, build and run test/consumer against it"
  cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 || {
    cat "$tmp/install.log"
    return 1
  }
  "$top/test/consumer/run.sh" "$tmp/prefix" "$tmp/consumer"
  stage_end "CMake (shared, static, C++, lwip) and pkg-config (shared, static, lwip), examples"

  stage_begin asan "ASan + UBSan build and CTest suite ($build-asan)"
  configure_build "$build-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMIOR_WERROR=ON -DMIOR_SANITIZE=ON
  tests_line=""
  ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0:strict_string_checks=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_tests "$build-asan"
  stage_end "$tests_line"

  # ThreadSanitizer over the code that runs on several threads: the pool (lock-free free list,
  # releases from any thread) and the threaded transport (port threads, mior_pkt_release from
  # other threads, the soak).  Built with clang (its TSan runtime works with io_uring here).
  stage_begin tsan "ThreadSanitizer build ($build-tsan) and the pool/threaded transport tests"
  CC=clang configure_build "$build-tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMIOR_TSAN=ON \
    -DMIOR_BUILD_TOOLS=OFF
  tests_line=""
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 MIOR_SOAK_SECONDS=${MIOR_SOAK_SECONDS_TSAN:-10} \
    run_tests "$build-tsan" -R '^test_(pool|transport_(flow|close|udp|pull|gro)|soak|fault_cq|event_handle)'
  stage_end "$tests_line"

  # Fuzzing: each libFuzzer harness for a bounded time with ASan+UBSan (fuzz/run.sh); a crash
  # fails the stage and its input is saved under fuzz/regress/ for the replay test.
  stage_begin fuzz "libFuzzer harnesses, ${MIOR_FUZZ_SECONDS:-20} s each (fuzz/run.sh)"
  local fuzz_dir=$build-fuzz
  case $fuzz_dir in /*) ;; *) fuzz_dir=$top/$fuzz_dir ;; esac
  MIOR_FUZZ_BUILD="$fuzz_dir" "$top/fuzz/run.sh" "${MIOR_FUZZ_SECONDS:-20}"
  stage_end "$(tail -n +2 "$fuzz_dir/summary.txt" | awk '{printf "%s %s exec/s; ", $1, $4}')"

  stage_begin mingw "mingw-w64 cross build ($build-mingw) and portable tests under Wine"
  # MIOR_TEST_IORING_EMU: also build the IoRing emulation (test/win_ioring_emu; follows Microsoft's
  # documentation, not Windows) and rerun the ioring bodies against it (the *.ioring_emu_* tests).
  configure_build "$build-mingw" -DCMAKE_TOOLCHAIN_FILE="$top/cmake/mingw-w64-x86_64.cmake" \
    -DCMAKE_BUILD_TYPE=Release -DMIOR_WERROR=ON -DMIOR_TEST_IORING_EMU=ON
  # A private Wine prefix, and one persistent wineserver for the whole run so each test starts in
  # milliseconds instead of seconds.  Order matters (each step was seen to hang tests without it):
  # set the prefix up and let that finish completely (wineserver -w: wineboot leaves work running
  # in the background), then start the persistent server and run one program alone, so Wine's
  # services are up before tests start in parallel.
  export WINEPREFIX="$tmp/wine" WINEDEBUG=-all WINEDLLOVERRIDES="winedbg.exe=d"
  local wine=/usr/lib/wine/wine64
  [ -x "$wine" ] || wine=wine
  wineserver=/usr/lib/wine/wineserver64
  [ -x "$wineserver" ] || wineserver=wineserver
  mkdir -p "$WINEPREFIX"
  "$wine" wineboot --init >"$tmp/wineboot.log" 2>&1 || {
    cat "$tmp/wineboot.log"
    return 1
  }
  wine_started=1
  timeout 120 "$wineserver" -w
  "$wineserver" -p
  "$wine" cmd /c exit 0
  tests_line=""
  # One test at a time under Wine: the portable tests take seconds, and Wine is where a hang would
  # cost a whole CTest timeout.
  ctest_jobs=1 run_tests "$build-mingw"
  stage_end "${tests_line:-no portable tests yet}"
}

echo "mior quick start: $mode (in $top)"
if [ "$mode" = perf ]; then
  run_perf
else
  run_test
fi
