/* The Windows fixture of the transport tests: the variants every body runs under on Windows, how
 * a variant's environment switch is set, and a watchdog.  A test that runs on every system
 * includes transport_os.h, which is this header on Windows (built with mingw-w64 or MSVC, run
 * under Wine or on Windows).  The helpers themselves are in transport_portable.h.
 */
#ifndef MIOR_TEST_TRANSPORT_WIN_H
#define MIOR_TEST_TRANSPORT_WIN_H

#include <stdlib.h>
#include <windows.h>

#include "transport_portable.h"

/* --- variants --------------------------------------------------------------------------------- */

/* The Windows rows.  IoRing has no address fields, so an IoRing socket sends only to the peer it
 * is connected to: every transport of a udp body is connected to the one it talks to (and Wine
 * has no IoRing, so there its rows are skipped with the reason).  The Winsock backend runs twice:
 * with FILE_SKIP_COMPLETION_PORT_ON_SUCCESS, where an operation that completes at once is
 * completed by the backend itself, and without it (MIOR_WINSOCK_NO_SKIP=1), where every
 * completion comes through the completion port; the two paths share little, so both are tested.
 * Windows has no load-balancing SO_REUSEPORT: udp queues > 1 are refused (reuseport 0).  The
 * Winsock rows open 1024-slot pools where a body does not choose (the default is 4096): Winsock
 * posts an overlapped receive for each slot it keeps (half the pool), and under Wine, where CI
 * runs these tests, every one of them costs a round trip to the Wine server when it is posted and
 * again when it is cancelled at close. */

const tt_variant *tt_os_variants(size_t *n);

/* Bulk transfers move a quarter of their packets.  Under Wine, where CI runs these tests one at a
 * time, Winsock is an emulation over Linux sockets in which a datagram costs tens of times what it
 * costs the Linux backends, the more so with every completion through the port; a quarter still
 * fills every queue and slot many times over. */
#define TT_OS_BULK_DIV 4

/* With MIOR_OPT_RX_TIMESTAMP, a datagram carries a receive timestamp only where the stack has one
 * for it (Microsoft's "Winsock timestamping": "if available"). */
#define TT_OS_RX_TIMESTAMP_EVERY 0

/* Datagrams a sender may keep ahead of a 1024-slot port's receiver: the receives Winsock keeps
 * posted (half the pool); Wine's socket buffer holds few more. */
#define TT_OS_UDP_WINDOW 256u

/* _putenv("NAME=") removes NAME; the C runtime keeps its own copy of what it is given. */
void tt_os_setenv(const char *assignment, int set);

/* --- watchdog --------------------------------------------------------------------------------- */

extern volatile LONG64 tt_watchdog_deadline_ms;

DWORD WINAPI tt_watchdog_main(LPVOID arg);

/* Every transport test bounds its whole run: a hang is a failure that names the body it was in,
 * not a CTest timeout.  The run gets at most what CTest gives a test here (MIOR_TEST_TIMEOUT,
 * 60 s under Wine) less 5 s, so that the watchdog speaks first.  A later call sets a new limit. */
void tt_watchdog(unsigned seconds);

#endif /* MIOR_TEST_TRANSPORT_WIN_H */
