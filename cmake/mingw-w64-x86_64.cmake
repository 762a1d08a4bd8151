# Cross build for 64-bit Windows with mingw-w64 (Debian: gcc-mingw-w64-x86-64), tests run by Wine.
#
#   cmake -S . -B build-mingw -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake
#   cmake --build build-mingw -j2 && ctest --test-dir build-mingw
#
# The posix-threads variant of the compiler is used when present: it provides <pthread.h> and
# C11 threads through winpthreads, which the portable tests use.  Programs and the DLL link the
# GCC and winpthreads runtimes statically, so a test .exe runs under Wine (or is copied to a
# Windows machine) without any mingw DLL beside it.

set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(MIOR_MINGW_TRIPLE x86_64-w64-mingw32)

find_program(MIOR_MINGW_CC NAMES ${MIOR_MINGW_TRIPLE}-gcc-posix ${MIOR_MINGW_TRIPLE}-gcc REQUIRED)
find_program(MIOR_MINGW_CXX NAMES ${MIOR_MINGW_TRIPLE}-g++-posix ${MIOR_MINGW_TRIPLE}-g++)
set(CMAKE_C_COMPILER ${MIOR_MINGW_CC})
if(MIOR_MINGW_CXX)
  set(CMAKE_CXX_COMPILER ${MIOR_MINGW_CXX})
endif()
set(CMAKE_RC_COMPILER ${MIOR_MINGW_TRIPLE}-windres)

set(CMAKE_FIND_ROOT_PATH /usr/${MIOR_MINGW_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# -static here means "link the runtime libraries statically", also for the DLL.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static")

# CTest runs each Windows test through this wrapper, which runs Wine with a crash-safe setup.
set(CMAKE_CROSSCOMPILING_EMULATOR ${CMAKE_CURRENT_LIST_DIR}/wine-run.sh)
