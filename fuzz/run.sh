#!/bin/bash
# Build the libFuzzer harnesses with clang (-fsanitize=fuzzer,address,undefined) and run each
# for a bounded time.  Any crash, leak, sanitizer report or broken invariant fails the script;
# libFuzzer saves the input as <build>/artifacts/<harness>/crash-* and this script copies it to
# fuzz/regress/<harness>/ so test/test_linux_fuzz_replay.c replays it in every later build.
#
#   fuzz/run.sh [SECONDS_PER_HARNESS] [HARNESS...]     (default 60 s, every harness)
#
# Environment: MIOR_FUZZ_BUILD (build directory, default build-fuzz), MIOR_JOBS,
# MIOR_FUZZ_WORKERS (parallel fuzzing processes per harness, default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
secs=${1:-60}
shift || true
build=${MIOR_FUZZ_BUILD:-$top/build-fuzz}
jobs=${MIOR_JOBS:-$(nproc 2>/dev/null || echo 2)}
cc=${MIOR_FUZZ_CC:-clang}
mkdir -p "$build"

command -v "$cc" >/dev/null || { echo "fuzz/run.sh: $cc not found (apt-get install clang)" >&2; exit 1; }
cmake -S "$top" -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMIOR_FUZZ=ON -DBUILD_TESTING=OFF -DMIOR_BUILD_TOOLS=OFF >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log"; exit 1; }
harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
  for f in "$top"/fuzz/fuzz_*.c; do harnesses+=("$(basename "$f" .c)"); done
fi
cmake --build "$build" -j "$jobs" --target "${harnesses[@]}" >"$build/build.log" 2>&1 ||
  { grep -v '^\[' "$build/build.log" | tail -n 100; exit 1; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=()
printf '%-14s %8s %12s %10s %6s %6s\n' harness seconds execs exec/s cov corpus >"$build/summary.txt"
for h in "${harnesses[@]}"; do
  corpus="$build/corpus/$h"
  art="$build/artifacts/$h/"
  mkdir -p "$corpus" "$art"
  seeds=("$top/fuzz/seeds")
  [ -d "$top/fuzz/seeds/$h" ] && seeds+=("$top/fuzz/seeds/$h")
  [ -d "$top/fuzz/regress/$h" ] && seeds+=("$top/fuzz/regress/$h")
  echo "=== $h: ${secs}s"
  log="$build/$h.log"
  start=$SECONDS
  if ! "$build/fuzz/$h" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
      -print_final_stats=1 -artifact_prefix="$art" -workers="${MIOR_FUZZ_WORKERS:-1}" \
      "$corpus" "${seeds[@]}" >"$log" 2>&1; then
    failed+=("$h")
    tail -n 60 "$log"
    mkdir -p "$top/fuzz/regress/$h"
    for c in "$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-*; do
      [ -e "$c" ] || continue
      cp "$c" "$top/fuzz/regress/$h/"
      echo "saved $(basename "$c") to fuzz/regress/$h/ (add it to git: it becomes a regression test)"
    done
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n1 | cut -d' ' -f2)
  corp=$(grep -oE 'corp: [0-9]+' "$log" | tail -n1 | cut -d' ' -f2)
  printf '%-14s %8s %12s %10s %6s %6s\n' "$h" $((SECONDS - start)) "${execs:-?}" "${rate:-?}" \
    "${cov:-?}" "${corp:-?}" | tee -a "$build/summary.txt"
done
echo "=== fuzz summary"
cat "$build/summary.txt"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "=== all harnesses clean"
