/* Winsock socket setup for the udp and ip kinds; packet:// has no Windows counterpart. */
#include <errno.h>
#include <string.h>
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>
#include <mstcpip.h>
#include <windows.h>

#include "common/internal.h"
#include "win/error.h"
#include "common/socket.h"
#include "win/rx_meta.h"

#define MIOR_DEFAULT_SOCKBUF (4 << 20)

static INIT_ONCE wsa_once = INIT_ONCE_STATIC_INIT;
static int wsa_rc;

static BOOL CALLBACK wsa_init(PINIT_ONCE once, PVOID param, PVOID *ctx) {
  (void)once;
  (void)param;
  (void)ctx;
  WSADATA d;
  int rc = WSAStartup(MAKEWORD(2, 2), &d);
  /* WSAStartup returns the error itself (WSAGetLastError is not valid before it succeeds). */
  wsa_rc = rc ? mior__win_errno((DWORD)rc) : 0;
  return TRUE;
}

int mior__socket_startup(void) {
  /* The process keeps Winsock for its lifetime: WSACleanup at exit would race other users of
   * Winsock in the same process, and the OS releases it anyway. */
  InitOnceExecuteOnce(&wsa_once, wsa_init, NULL, NULL);
  if (wsa_rc < 0) return mior__fail(wsa_rc, "WSAStartup(2.2) failed: %s", mior_strerror(wsa_rc));
  return 0;
}

int mior__socket_local_addr(const mior__sock *s, mior_addr *out) {
  mior__sockaddr ss;
  int len = (int)sizeof ss;
  if (getsockname(s->fd, &ss.sa, &len) != 0) return mior__win_fail((DWORD)WSAGetLastError(), "getsockname");
  mior__sockaddr_to(&ss.sa, len, out);
  return 0;
}

void mior__socket_close(mior__sock *s, int wait_release) {
  /* closesocket releases the address at once: nothing in the kernel holds it longer. */
  (void)wait_release;
  if (s->fd != INVALID_SOCKET) closesocket(s->fd);
  s->fd = INVALID_SOCKET;
}

uint64_t mior__socket_drops(const mior__sock *s) {
  /* Winsock does not say how many datagrams a socket dropped. */
  (void)s;
  return 0;
}

/* Close the socket and record the Winsock error of the step that failed. */
static int fail_wsa(mior__sock *s, const char *what, const char *detail) {
  DWORD code = (DWORD)WSAGetLastError();
  mior__socket_close(s, 0);
  if (code == WSAEACCES)
    return mior__win_fail(code, "%s (%s; raw sockets need administrator rights)", what, detail);
  return mior__win_fail(code, "%s (%s)", what, detail);
}

/* Large socket buffers absorb bursts between two polls; Windows accepts them without a cap. */
static void set_bufs(SOCKET s, const mior_options *o) {
  int rcv = o->rcvbuf ? o->rcvbuf : MIOR_DEFAULT_SOCKBUF;
  int snd = o->sndbuf ? o->sndbuf : MIOR_DEFAULT_SOCKBUF;
  setsockopt(s, SOL_SOCKET, SO_RCVBUF, (const char *)&rcv, sizeof rcv);
  setsockopt(s, SOL_SOCKET, SO_SNDBUF, (const char *)&snd, sizeof snd);
}

static int open_socket(mior__sock *s, int type, int proto, const char *what) {
  s->fd = WSASocketW(s->family, type, proto, NULL, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (s->fd == INVALID_SOCKET) return fail_wsa(s, what, s->family == AF_INET6 ? "IPv6" : "IPv4");
  return 0;
}

static int connect_peer(mior__sock *s, const mior__io_cfg *cfg) {
  if (!cfg->peer) return 0;
  int fam = cfg->peer->family == MIOR_AF_INET6 ? AF_INET6 : AF_INET;
  if (fam != s->family) {
    mior__socket_close(s, 0);
    return mior__fail(-EINVAL, "peer is IPv%d but the endpoint is IPv%d", fam == AF_INET6 ? 6 : 4,
                      s->family == AF_INET6 ? 6 : 4);
  }
  mior__sockaddr ss;
  int len = mior__sockaddr_from(cfg->peer, &ss);
  if (connect(s->fd, &ss.sa, len) != 0) return fail_wsa(s, "connect", "peer");
  s->connected = 1;
  return 0;
}

static int open_udp(mior__sock *s, const mior__io_cfg *cfg) {
  const mior__endpoint *ep = cfg->ep;
  if (cfg->queues > 1)
    return mior__fail(-EOPNOTSUPP, "udp queues=%u: Windows has no load-balancing SO_REUSEPORT, so "
                      "one UDP address has one queue (use queues=1)", cfg->queues);
  s->family = ep->addr.family == MIOR_AF_INET6 ? AF_INET6 : AF_INET;
  int rc = open_socket(s, SOCK_DGRAM, IPPROTO_UDP, "WSASocket(udp)");
  if (rc < 0) return rc;
  /* An ICMP port unreachable for an earlier datagram makes the next receive on an unconnected
   * Windows UDP socket fail with WSAECONNRESET.  Linux reports that only on connected sockets;
   * turn it off on unconnected ones so a port behaves the same on both. */
  if (!cfg->peer) {
    BOOL off = FALSE;
    DWORD bytes = 0;
    WSAIoctl(s->fd, SIO_UDP_CONNRESET, &off, sizeof off, NULL, 0, &bytes, NULL, NULL);
  }
  set_bufs(s->fd, cfg->opts);
  mior__sockaddr ss;
  int len = mior__sockaddr_from(&ep->addr, &ss);
  if (bind(s->fd, &ss.sa, len) != 0) {
    char text[64] = "";
    mior_addr_format(&ep->addr, text, sizeof text);
    return fail_wsa(s, "bind", text);
  }
  /* Per-packet metadata: only the sockets backend asks (port open refuses it for ioring). */
  rc = mior__meta_sockopts(s->fd, s->family, cfg->opts->flags & MIOR__RX_META_OPTS);
  if (rc < 0) {
    mior__socket_close(s, 0);
    return rc;
  }
  return connect_peer(s, cfg);
}

static int open_ip(mior__sock *s, const mior__io_cfg *cfg) {
  const mior__endpoint *ep = cfg->ep;
  s->family = ep->addr.family == MIOR_AF_INET6 ? AF_INET6 : AF_INET;
  int rc = open_socket(s, SOCK_RAW, ep->ip_proto, "WSASocket(SOCK_RAW)");
  if (rc < 0) return rc;
  DWORD one = 1;
  int src = s->family == AF_INET
                ? setsockopt(s->fd, IPPROTO_IP, IP_HDRINCL, (const char *)&one, sizeof one)
                : setsockopt(s->fd, IPPROTO_IPV6, IPV6_HDRINCL, (const char *)&one, sizeof one);
  if (src != 0) return fail_wsa(s, "setsockopt(HDRINCL)", "ip:// endpoint");
  set_bufs(s->fd, cfg->opts);
  mior__sockaddr ss;
  int len = mior__sockaddr_from(&ep->addr, &ss);
  if (bind(s->fd, &ss.sa, len) != 0) {
    /* Client editions refuse bind() on a raw TCP socket outright. */
    return fail_wsa(s, "bind", ep->ip_proto == IPPROTO_TCP
                                   ? "ip:// address; client Windows refuses raw TCP sockets"
                                   : "ip:// address");
  }
  /* Windows hands incoming TCP segments to the TCP stack only, never to a raw socket of protocol
   * TCP; the one way to see them is SIO_RCVALL on a socket bound to an interface address, which
   * needs administrator rights (and then delivers every IP packet of that interface, which the
   * receiver must filter). */
  if (ep->ip_proto == IPPROTO_TCP && !(cfg->opts->flags & MIOR_OPT_NO_RX)) {
    DWORD mode = RCVALL_IPLEVEL, bytes = 0;
    if (WSAIoctl(s->fd, SIO_RCVALL, &mode, sizeof mode, NULL, 0, &bytes, NULL, NULL) != 0) {
      DWORD code = (DWORD)WSAGetLastError();
      mior__socket_close(s, 0);
      if (code == WSAEACCES || code == ERROR_ACCESS_DENIED)
        return mior__fail(-EACCES, "WSAIoctl(SIO_RCVALL): receiving TCP on a raw socket needs "
                          "administrator rights (Windows error %lu)", (unsigned long)code);
      return mior__win_fail(code, "WSAIoctl(SIO_RCVALL) (receiving TCP on a raw socket; the "
                            "address must be an interface's own, not a wildcard)");
    }
    s->rcvall = 1;
  }
  return connect_peer(s, cfg);
}

int mior__socket_open(mior__sock *s, const mior__io_cfg *cfg) {
  memset(s, 0, sizeof *s);
  s->fd = INVALID_SOCKET;
  s->kind = cfg->ep->kind;
  int rc = mior__socket_startup();
  if (rc < 0) return rc;
  switch (cfg->ep->kind) {
  case MIOR__KIND_UDP: return open_udp(s, cfg);
  case MIOR__KIND_IP: return open_ip(s, cfg);
  case MIOR__KIND_PACKET:
    return mior__fail(-EOPNOTSUPP, "packet:// (Ethernet frames) is not available on Windows "
                      "without a driver");
  }
  return mior__fail(-EINVAL, "unknown socket kind");
}
