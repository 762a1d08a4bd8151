# Run mior-perf once for CTest and check both its exit status and its output (CTest's own
# PASS_REGULAR_EXPRESSION would ignore the exit status).  Used by tools/CMakeLists.txt; on the
# Windows build EMULATOR is the Wine wrapper (empty on a native Windows build and on Linux).
#
#   cmake -DEMULATOR=... -DEXE=mior-perf.exe "-DARGS=throughput|--json" -DEXPECT_EXIT=0
#         [-DEXPECT_OUTPUT=regex] [-DPCAP=file -DTCPDUMP=path] -P smoke_test.cmake
#
# EXPECT_OUTPUT is matched against stdout and stderr together.  PCAP: the run was given
# "--pcap file --json"; the file must hold as many packets as the JSON's pcap_packets says (more
# than zero), counted by tcpdump -r when TCPDUMP is given, else by walking the records here.
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

if(DEFINED PCAP)
  if(NOT "${out}" MATCHES "\"pcap_packets\":([0-9]+)")
    message(FATAL_ERROR "mior-perf ${cmdline}: no pcap_packets in the JSON")
  endif()
  set(want "${CMAKE_MATCH_1}")
  if(want EQUAL 0)
    message(FATAL_ERROR "mior-perf ${cmdline}: recorded no packets")
  endif()
  if(TCPDUMP)
    # tcpdump prints one line per packet that starts in column 0 (for an unknown link type it
    # adds hex lines, which start with a tab).
    execute_process(COMMAND ${TCPDUMP} -r ${PCAP} -nn RESULT_VARIABLE trc OUTPUT_VARIABLE dump
                    ERROR_VARIABLE derr)
    if(NOT trc EQUAL 0)
      message(FATAL_ERROR "tcpdump -r ${PCAP} failed (${trc}): ${derr}")
    endif()
    # (No "^" here: string(REGEX MATCHALL) anchors it at every restart, not only at the start.)
    string(REGEX MATCHALL "\n[^\t\n ]" heads "\n${dump}")
    list(LENGTH heads got)
  else()
    # The classic pcap layout: a 24-byte header, then per packet a 16-byte record header whose
    # bytes 8-11 are the captured length (host order; little-endian here).
    file(READ ${PCAP} hex HEX)
    string(LENGTH "${hex}" hexlen)
    set(pos 48)
    set(got 0)
    while(pos LESS hexlen)
      math(EXPR at "${pos} + 16")
      string(SUBSTRING "${hex}" ${at} 8 l)
      string(SUBSTRING "${l}" 6 2 b3)
      string(SUBSTRING "${l}" 4 2 b2)
      string(SUBSTRING "${l}" 2 2 b1)
      string(SUBSTRING "${l}" 0 2 b0)
      math(EXPR caplen "0x${b3}${b2}${b1}${b0}")
      math(EXPR pos "${pos} + 32 + ${caplen} * 2")
      math(EXPR got "${got} + 1")
    endwhile()
  endif()
  if(NOT got EQUAL want)
    message(FATAL_ERROR "${PCAP}: ${got} packets in the file, mior-perf said ${want}")
  endif()
  message("${PCAP}: ${got} packets, as reported")
  file(REMOVE ${PCAP})
endif()
