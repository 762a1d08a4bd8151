#!/bin/bash
# Build and run the consumer against an installed mior, and nothing else of the source tree:
#
#   test/consumer/run.sh PREFIX [WORKDIR]
#
# 1. CMake: find_package(mior) through CMAKE_PREFIX_PATH, shared and static, plus the C++ check.
# 2. pkg-config: `cc main.c $(pkg-config --cflags --libs mior)` through PKG_CONFIG_PATH, run
#    without LD_LIBRARY_PATH (the RUNPATH pkg-config adds); mior-static, which must not load
#    libmior.so; and the older `pkg-config --static` form.
# 3. The examples, built with the README's one-line commands against the install (mior-lwip when
#    the lwIP adapter is installed), and run: udp_echo on loopback for a second, tcp_echo_lwip far
#    enough to prove it loads (its usage error: it needs root and an interface to do more).
# Every program is run; any failure stops the script with a non-zero exit.
set -euo pipefail

prefix=$(cd "${1:?usage: run.sh PREFIX [WORKDIR]}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
work=${2:-$(mktemp -d /tmp/mior-consumer.XXXXXX)}
mkdir -p "$work"
cc=${CC:-cc}

libdir=$(dirname "$(find "$prefix" -name mior.pc -path '*/pkgconfig/*' | head -n1)")
libdir=$(dirname "$libdir")
[ -f "$libdir/pkgconfig/mior.pc" ] || { echo "run.sh: no mior.pc under $prefix" >&2; exit 1; }

echo "== consumer: CMake find_package(mior) from $prefix"
cmake -S "$here" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >"$work/cmake-configure.log" 2>&1 \
  || { cat "$work/cmake-configure.log"; exit 1; }
cmake --build "$work/cmake" -j2 >"$work/cmake-build.log" 2>&1 || { cat "$work/cmake-build.log"; exit 1; }
"$work/cmake/consumer_shared"
"$work/cmake/consumer_static"
if [ -x "$work/cmake/consumer_cpp" ]; then
  "$work/cmake/consumer_cpp"
else
  echo "(no C++ compiler: C++ header check not built)"
fi
# The shared consumer must really use the installed libmior.so, not a copy from a build tree.
if command -v ldd >/dev/null; then
  # ldd's output is taken whole first: "ldd | grep -q" under pipefail fails at random when grep
  # exits at the first match and ldd dies of SIGPIPE (seen once in CI).
  deps="$(ldd "$work/cmake/consumer_shared")"
  case "$deps" in
    *"$libdir/libmior.so"*) ;;
    *) echo "consumer_shared does not load $libdir/libmior.so:"; echo "$deps"; exit 1 ;;
  esac
fi

echo "== consumer: pkg-config from $libdir/pkgconfig"
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# shellcheck disable=SC2046  # the flags must split into words
$cc -std=c11 -Wall -Wextra -Werror -o "$work/pc_shared" "$here/main.c" $(pkg-config --cflags --libs mior)
env -u LD_LIBRARY_PATH "$work/pc_shared"
# mior-static: the archive by path, so the program holds mior itself.
# shellcheck disable=SC2046
$cc -std=c11 -Wall -Wextra -Werror -o "$work/pc_static2" "$here/main.c" $(pkg-config --cflags --libs mior-static)
"$work/pc_static2"
if command -v ldd >/dev/null; then
  deps="$(ldd "$work/pc_static2")"
  case "$deps" in
    *libmior.so*) echo "pc_static2 (mior-static) loads libmior.so:"; echo "$deps"; exit 1 ;;
  esac
fi
# Static: the same flags with --static, with -lmior pinned to the archive (ld would otherwise
# prefer libmior.so when both are installed).
static_libs=$(pkg-config --static --libs mior)
# shellcheck disable=SC2046,SC2086
$cc -std=c11 -Wall -Wextra -Werror -o "$work/pc_static" "$here/main.c" $(pkg-config --cflags mior) \
  ${static_libs/-lmior/-l:libmior.a}
"$work/pc_static"
echo "== consumer: the examples, built as README.md says"
examples=$(cd "$here/../../examples" && pwd)
(cd "$work" && cc -o udp_echo "$examples/udp_echo.c" $(pkg-config --cflags --libs mior))
out=$(env -u LD_LIBRARY_PATH "$work/udp_echo" --backend sockets udp://127.0.0.1:0 1)
echo "$out"
case "$out" in
  *"backend sockets ["*) ;;
  *) echo "udp_echo did not print its backend and features"; exit 1 ;;
esac
if pkg-config --exists mior-lwip; then
  (cd "$work" && cc -o tcp_echo_lwip "$examples/lwip/tcp_echo_lwip.c" $(pkg-config --cflags --libs mior-lwip))
  rc=0
  env -u LD_LIBRARY_PATH "$work/tcp_echo_lwip" --backend sockets 2>"$work/lwip.err" || rc=$?
  grep -q 'usage:' "$work/lwip.err" && [ $rc -eq 2 ] || { echo "tcp_echo_lwip: exit $rc"; cat "$work/lwip.err"; exit 1; }
  [ -x "$work/cmake/consumer_lwip" ] || { echo "CMake found no lwip component though mior-lwip.pc exists"; exit 1; }
  echo "tcp_echo_lwip: built (pkg-config mior-lwip and CMake mior::mior_lwip) and loads"
else
  echo "(no mior-lwip.pc: mior was built without lwIP)"
fi
echo "consumer: all builds ran"
