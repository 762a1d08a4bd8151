/* The bodies of test/transport_win.h's helpers, compiled once into mior_test_support (as
 * liburing's test/helpers.c) rather than into every test. */
#include <winsock2.h>

#include "transport_win.h"

volatile LONG64 tt_watchdog_deadline_ms;

static const tt_variant tt_win_variants[] = {
    {.name = "ioring", .backend = MIOR_BACKEND_IORING, .connected = 1},
    {.name = "sockets", .backend = MIOR_BACKEND_SOCKETS, .env = "MIOR_WINSOCK_NO_SKIP=0",
     .buf_count = 1024},
    {.name = "sockets, all through the port", .backend = MIOR_BACKEND_SOCKETS,
     .env = "MIOR_WINSOCK_NO_SKIP=1", .buf_count = 1024},
};

/* Under the IoRing emulation (test/CMakeLists.txt's ioring_emu entries set MIOR_IORING_EMU), only
 * the ioring row runs: the Winsock rows already ran in the plain entry of the same test. */
static const tt_variant tt_win_emu_variants[] = {
    {.name = "ioring on the IoRing emulation (following Microsoft's documentation, not Windows)",
     .backend = MIOR_BACKEND_IORING, .connected = 1},
};

const tt_variant *tt_os_variants(size_t *n) {
  const char *emu = getenv("MIOR_IORING_EMU");
  if (emu && *emu) {
    *n = 1;
    return tt_win_emu_variants;
  }
  *n = sizeof tt_win_variants / sizeof tt_win_variants[0];
  return tt_win_variants;
}

void tt_os_setenv(const char *assignment, int set) {
  if (set) {
    REQUIRE(_putenv(assignment) == 0);
    return;
  }
  const char *eq = strchr(assignment, '=');
  REQUIRE(eq != NULL);
  char clear[64];
  snprintf(clear, sizeof clear, "%.*s=", (int)(eq - assignment), assignment);
  REQUIRE(_putenv(clear) == 0);
}

intptr_t tt_os_udp4(mior_addr *local) {
  static LONG started;
  WSADATA wsa;
  if (InterlockedExchange(&started, 1) == 0) REQUIRE(WSAStartup(MAKEWORD(2, 2), &wsa) == 0);
  SOCKET s = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
  REQUIRE(s != INVALID_SOCKET);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(s, (const struct sockaddr *)&sa, (int)sizeof sa) == 0);
  int len = (int)sizeof sa;
  REQUIRE(getsockname(s, (struct sockaddr *)&sa, &len) == 0);
  memset(local, 0, sizeof *local);
  local->family = MIOR_AF_INET;
  local->port = ntohs(sa.sin_port);
  memcpy(local->addr, &sa.sin_addr, 4);
  return (intptr_t)s;
}

void tt_os_udp_send(intptr_t s, const mior_addr *to, uint32_t seq, uint32_t len) {
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons(to->port);
  memcpy(&sa.sin_addr, to->addr, 4);
  char buf[2048];
  REQUIRE(len <= sizeof buf);
  tt_fill((uint8_t *)buf, len, seq);
  REQUIRE(sendto((SOCKET)s, buf, (int)len, 0, (const struct sockaddr *)&sa, (int)sizeof sa) == (int)len);
}

void tt_os_udp_close(intptr_t s) {
  closesocket((SOCKET)s);
}

int tt_os_ready(mior_handle h, int ms) {
  return WaitForSingleObject((HANDLE)h, (DWORD)ms) == WAIT_OBJECT_0;
}

intptr_t tt_os_waiter_open(mior_handle h, int edge) {
  (void)edge;
  return h;
}

int tt_os_waiter_wait(intptr_t w, int ms) {
  return tt_os_ready(w, ms);
}

void tt_os_waiter_close(intptr_t w) {
  (void)w;
}

DWORD WINAPI tt_watchdog_main(LPVOID arg) {
  (void)arg;
  while (tt_now_ms() < InterlockedCompareExchange64(&tt_watchdog_deadline_ms, 0, 0)) Sleep(100);
  fprintf(stderr, "FAIL: watchdog; phase: %s\n", tt_phase);
  fflush(stderr);
  TerminateProcess(GetCurrentProcess(), 1);
  return 0;
}

void tt_watchdog(unsigned seconds) {
  if (seconds + 5 > MIOR_TEST_TIMEOUT) seconds = MIOR_TEST_TIMEOUT - 5;
  int first = InterlockedCompareExchange64(&tt_watchdog_deadline_ms, 0, 0) == 0;
  InterlockedExchange64(&tt_watchdog_deadline_ms, tt_now_ms() + (LONG64)seconds * 1000);
  if (!first) return;
  HANDLE h = CreateThread(NULL, 0, tt_watchdog_main, NULL, 0, NULL);
  REQUIRE(h != NULL);
  CloseHandle(h);
}
