/* The bodies of test/transport_win.h's helpers, compiled once into mior_test_support (as
 * liburing's test/helpers.c) rather than into every test. */
#include <winsock2.h> /* before windows.h (transport_win.h), which would bring the old winsock.h */
#include <ws2tcpip.h>
#include <mswsock.h>

#include "transport_win.h"
#include "common/socket.h"

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

/* --- a plain OS socket as the other end of a metadata test ------------------------------------ */

/* Option numbers of the Windows SDK that mingw-w64's headers lack (ws2ipdef.h). */
#define TT_IP_RECVECN 50
#define TT_IP_ECN 50
#define TT_IP_RECVTOS 40

struct tt_peer {
  SOCKET fd;
  int v6;
  LPFN_WSARECVMSG recvmsg;
};

tt_peer *tt_peer_open(int v6) {
  REQUIRE_OK(mior__socket_startup());
  tt_peer *k = calloc(1, sizeof *k);
  REQUIRE(k != NULL);
  k->v6 = v6;
  k->fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, IPPROTO_UDP);
  REQUIRE(k->fd != INVALID_SOCKET);
  int level = v6 ? IPPROTO_IPV6 : IPPROTO_IP;
  DWORD one = 1;
  /* The codepoint alone (Windows 10 build 20348 and later), else the TOS byte (Wine). */
  if (setsockopt(k->fd, level, TT_IP_RECVECN, (const char *)&one, sizeof one) != 0)
    REQUIRE(setsockopt(k->fd, level, TT_IP_RECVTOS, (const char *)&one, sizeof one) == 0);
  mior__sockaddr a;
  memset(&a, 0, sizeof a);
  int al;
  if (v6) {
    a.in6.sin6_family = AF_INET6;
    a.in6.sin6_addr = in6addr_loopback;
    al = sizeof a.in6;
  } else {
    a.in.sin_family = AF_INET;
    a.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    al = sizeof a.in;
  }
  REQUIRE(bind(k->fd, &a.sa, al) == 0);
  GUID id = WSAID_WSARECVMSG;
  DWORD bytes = 0;
  REQUIRE(WSAIoctl(k->fd, SIO_GET_EXTENSION_FUNCTION_POINTER, &id, sizeof id, &k->recvmsg,
                   sizeof k->recvmsg, &bytes, NULL, NULL) == 0);
  return k;
}

void tt_peer_close(tt_peer *k) {
  if (!k) return;
  closesocket(k->fd);
  free(k);
}

mior_addr tt_peer_addr(const tt_peer *k) {
  mior__sockaddr a;
  int al = sizeof a;
  REQUIRE(getsockname(k->fd, &a.sa, &al) == 0);
  mior_addr m;
  mior__sockaddr_to(&a.sa, al, &m);
  return m;
}

int tt_peer_send(tt_peer *k, const uint8_t *addr, uint16_t port, int ecn, const void *buf, size_t len) {
  mior_addr to;
  memset(&to, 0, sizeof to);
  to.family = k->v6 ? MIOR_AF_INET6 : MIOR_AF_INET;
  to.port = port;
  memcpy(to.addr, addr, k->v6 ? 16 : 4);
  mior__sockaddr a;
  int al = mior__sockaddr_from(&to, &a);
  /* Windows sets the codepoint from an IP_ECN control message (never CE: WSAEINVAL) and ignores
   * IP_TOS; Wine 8 ignores the control message and honours IP_TOS (not IPV6_TCLASS, which it
   * refuses).  Both are asked; the answer says whether one of them is known to work here. */
  DWORD tos = (DWORD)ecn;
  int by_sockopt = setsockopt(k->fd, k->v6 ? IPPROTO_IPV6 : IPPROTO_IP, k->v6 ? IPV6_TCLASS : IP_TOS,
                              (const char *)&tos, sizeof tos) == 0;
  const char *why;
  int by_cmsg = tt_os_send_meta(&why);
  union {
    char b[WSA_CMSG_SPACE(sizeof(INT))];
    WSACMSGHDR align;
  } ctl;
  memset(&ctl, 0, sizeof ctl);
  WSABUF wb = {(ULONG)len, (CHAR *)buf};
  WSAMSG m;
  memset(&m, 0, sizeof m);
  m.name = &a.sa;
  m.namelen = al;
  m.lpBuffers = &wb;
  m.dwBufferCount = 1;
  m.Control.buf = ctl.b;
  m.Control.len = sizeof ctl.b;
  WSACMSGHDR *c = WSA_CMSG_FIRSTHDR(&m);
  c->cmsg_level = k->v6 ? IPPROTO_IPV6 : IPPROTO_IP;
  c->cmsg_type = TT_IP_ECN;
  c->cmsg_len = WSA_CMSG_LEN(sizeof(INT));
  INT v = ecn;
  memcpy(WSA_CMSG_DATA(c), &v, sizeof v);
  DWORD sent = 0;
  if (WSASendMsg(k->fd, &m, 0, &sent, NULL, NULL) == 0) return sent != len ? -1 : (by_cmsg || by_sockopt || ecn == 0);
  m.Control.len = 0; /* refused with its codepoint (CE; or an older Windows) */
  if (WSASendMsg(k->fd, &m, 0, &sent, NULL, NULL) == 0 && sent == len) return ecn == 0;
  return -1;
}

int tt_peer_recv(tt_peer *k, uint8_t *from, int *ecn, uint8_t *buf, size_t cap, int ms) {
  fd_set rd;
  FD_ZERO(&rd);
  FD_SET(k->fd, &rd);
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  if (select(0, &rd, NULL, NULL, &tv) != 1) return -1;
  mior__sockaddr a;
  union {
    char b[256];
    WSACMSGHDR align;
  } ctl;
  WSABUF wb = {(ULONG)cap, (CHAR *)buf};
  WSAMSG m;
  memset(&m, 0, sizeof m);
  m.name = &a.sa;
  m.namelen = sizeof a;
  m.lpBuffers = &wb;
  m.dwBufferCount = 1;
  m.Control.buf = ctl.b;
  m.Control.len = sizeof ctl.b;
  DWORD n = 0;
  if (k->recvmsg(k->fd, &m, &n, NULL, NULL) != 0) return -1;
  *ecn = -1;
  for (WSACMSGHDR *c = WSA_CMSG_FIRSTHDR(&m); c; c = WSA_CMSG_NXTHDR(&m, c)) {
    int ours = (c->cmsg_level == IPPROTO_IP && (c->cmsg_type == IP_TOS || c->cmsg_type == TT_IP_ECN)) ||
               (c->cmsg_level == IPPROTO_IPV6 && (c->cmsg_type == IPV6_TCLASS || c->cmsg_type == TT_IP_ECN));
    if (ours) {
      INT v;
      memcpy(&v, WSA_CMSG_DATA(c), sizeof v);
      *ecn = v & 3;
    }
  }
  if (k->v6) memcpy(from, &a.in6.sin6_addr, 16);
  else memcpy(from, &a.in.sin_addr, 4);
  return (int)n;
}

uint64_t tt_realtime_ns(void) {
  FILETIME ft;
  GetSystemTimePreciseAsFileTime(&ft);
  uint64_t t100 = ((uint64_t)ft.dwHighDateTime << 32 | ft.dwLowDateTime) - 116444736000000000ull;
  return t100 * 100u;
}

int tt_os_send_meta(const char **why) {
  /* Wine names itself with an export of its ntdll. */
  HMODULE ntdll = GetModuleHandleA("ntdll.dll");
  if (ntdll && GetProcAddress(ntdll, "wine_get_version")) {
    *why = "Wine 8 accepts WSASendMsg's control messages (IP_PKTINFO, IP_ECN) and ignores them "
           "(measured): the reply's source address and codepoint are not checked here";
    return 0;
  }
  *why = NULL;
  return 1;
}
