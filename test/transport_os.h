/* What a transport test that runs on every system includes: its OS fixture, transport_common.h on
 * Linux and transport_win.h on Windows.  Both give the same names (tt_watchdog, the variant rows
 * the runner takes every body through) on top of transport_portable.h, so a body written against
 * them builds and runs unchanged on both; test/CMakeLists.txt lists such a test in
 * MIOR_TESTS_PORTABLE. */
#ifndef MIOR_TEST_TRANSPORT_OS_H
#define MIOR_TEST_TRANSPORT_OS_H

#if defined(_WIN32)
#include "transport_win.h"
#else
#include "transport_common.h"
#endif

#endif /* MIOR_TEST_TRANSPORT_OS_H */
