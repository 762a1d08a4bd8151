# Run mior-perf once for CTest and check both its exit status and its output (CTest's own
# PASS_REGULAR_EXPRESSION would ignore the exit status).  Used by tools/CMakeLists.txt for the
# Windows build, where EMULATOR is the Wine wrapper (empty on a native Windows build).
#
#   cmake -DEMULATOR=... -DEXE=mior-perf.exe "-DARGS=throughput|--json" -DEXPECT_EXIT=0
#         [-DEXPECT_OUTPUT=regex] -P smoke_test.cmake
#
# EXPECT_OUTPUT is matched against stdout and stderr together.
string(REPLACE "|" ";" ARGS "${ARGS}")
execute_process(COMMAND ${EMULATOR} ${EXE} ${ARGS}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
list(JOIN ARGS " " cmdline)
if(NOT rc STREQUAL "${EXPECT_EXIT}")
  message(FATAL_ERROR "mior-perf ${cmdline}: exit status ${rc}, expected ${EXPECT_EXIT}")
endif()
if(DEFINED EXPECT_OUTPUT AND NOT "${out}${err}" MATCHES "${EXPECT_OUTPUT}")
  message(FATAL_ERROR "mior-perf ${cmdline}: the output does not match '${EXPECT_OUTPUT}'")
endif()
