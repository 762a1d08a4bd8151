/* Per-packet metadata and UDP receive coalescing (URO) on Winsock, for the sockets backend: the
 * socket options that ask for them, the one parser of a receive's control messages (metadata and
 * URO's segment size), and the control messages of a send that sets its source address or ECN
 * codepoint.  See mior_pkt in pkt.h, and docs/ARCHITECTURE.md ("Per-packet metadata"). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>
#include <mstcpip.h>
#include <windows.h>

#include "common/internal.h"
#include "win/rx_meta.h"

/* Windows' option numbers that mingw-w64's headers lack or hide behind newer NTDDI versions
 * (ws2ipdef.h, mstcpip.h of the Windows SDK). */
#ifndef IP_RECVECN
#define IP_RECVECN 50 /* the same number as the IP_ECN control message it asks for */
#endif
#ifndef IPV6_RECVECN
#define IPV6_RECVECN 50
#endif
#ifndef IP_RECVTOS
#define IP_RECVTOS 40
#endif
#ifndef IPV6_RECVTCLASS
#define IPV6_RECVTCLASS 40
#endif
#ifndef IP_ECN
#define IP_ECN 50
#endif
#ifndef IPV6_ECN
#define IPV6_ECN 50
#endif
#ifndef UDP_RECV_MAX_COALESCED_SIZE
#define UDP_RECV_MAX_COALESCED_SIZE 3
#endif
#ifndef UDP_COALESCED_INFO
#define UDP_COALESCED_INFO 3
#endif
#define MIOR_SIO_TIMESTAMPING _WSAIOW(IOC_VENDOR, 235)
#define MIOR_SO_TIMESTAMP 0x300A
#define MIOR_TIMESTAMPING_FLAG_RX 0x1u
typedef struct mior_timestamping_config { /* TIMESTAMPING_CONFIG */
  ULONG Flags;
  USHORT TxTimestampsBuffered;
} mior_timestamping_config;

static int set_one(SOCKET fd, int level, int name) {
  DWORD one = 1;
  return setsockopt(fd, level, name, (const char *)&one, sizeof one) == 0 ? 0 : WSAGetLastError();
}

static int refuse(int code, const char *what, const char *needs) {
  return mior__fail(-EOPNOTSUPP, "%s: the stack refuses it (Windows error %d); %s", what, code, needs);
}

int mior__meta_sockopts(SOCKET fd, int family, uint32_t opts) {
  int v6 = family == AF_INET6, err;
  /* A v6 socket also receives IPv4 (mapped) datagrams where it is dual-stack, whose metadata come
   * as IPv4 messages: the IPv4 options are asked too, and only an IPv4 socket needs them. */
  if (opts & MIOR_OPT_RX_PKTINFO) {
    if (v6 && (err = set_one(fd, IPPROTO_IPV6, IPV6_PKTINFO)) != 0)
      return refuse(err, "setsockopt(IPV6_PKTINFO)", "MIOR_OPT_RX_PKTINFO cannot be delivered here");
    if ((err = set_one(fd, IPPROTO_IP, IP_PKTINFO)) != 0 && !v6)
      return refuse(err, "setsockopt(IP_PKTINFO)", "MIOR_OPT_RX_PKTINFO cannot be delivered here");
  }
  if (opts & MIOR_OPT_RX_ECN) {
    /* IP_RECVECN (Windows 10 build 20348 and later) hands over the codepoint alone; where it is
     * refused, IP_RECVTOS hands over the whole TOS / traffic class byte, of which the codepoint is
     * the low two bits (Wine 8 has only the latter). */
    if (v6 && set_one(fd, IPPROTO_IPV6, IPV6_RECVECN) != 0 &&
        (err = set_one(fd, IPPROTO_IPV6, IPV6_RECVTCLASS)) != 0)
      return refuse(err, "setsockopt(IPV6_RECVECN, then IPV6_RECVTCLASS)",
                    "MIOR_OPT_RX_ECN needs Windows 10 build 20348 or later");
    if (set_one(fd, IPPROTO_IP, IP_RECVECN) != 0 && (err = set_one(fd, IPPROTO_IP, IP_RECVTOS)) != 0 && !v6)
      return refuse(err, "setsockopt(IP_RECVECN, then IP_RECVTOS)",
                    "MIOR_OPT_RX_ECN needs Windows 10 build 20348 or later");
  }
  if (opts & MIOR_OPT_RX_TIMESTAMP) {
    mior_timestamping_config tc = {MIOR_TIMESTAMPING_FLAG_RX, 0};
    DWORD bytes = 0;
    if (WSAIoctl(fd, MIOR_SIO_TIMESTAMPING, &tc, sizeof tc, NULL, 0, &bytes, NULL, NULL) != 0)
      return refuse(WSAGetLastError(), "WSAIoctl(SIO_TIMESTAMPING)",
                    "MIOR_OPT_RX_TIMESTAMP needs Windows 10 build 20348 or later (Wine has none)");
  }
  return 0;
}

static INIT_ONCE uro_once = INIT_ONCE_STATIC_INIT;
static int uro_ok;
static char uro_why[128];

static BOOL CALLBACK uro_probe(PINIT_ONCE once, PVOID param, PVOID *ctx) {
  (void)once;
  (void)param;
  (void)ctx;
  SOCKET s = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
  if (s == INVALID_SOCKET) {
    snprintf(uro_why, sizeof uro_why, "URO: no UDP socket to ask (Windows error %d)", WSAGetLastError());
    return TRUE;
  }
  DWORD err = mior__uro_enable(s);
  closesocket(s);
  if (err == 0) uro_ok = 1;
  else
    snprintf(uro_why, sizeof uro_why, "URO: UDP_RECV_MAX_COALESCED_SIZE refused (Windows error %lu); "
             "needs Windows 10 2004+", (unsigned long)err);
  return TRUE;
}

int mior__uro_supported(char *why, size_t len) {
  /* The caller started Winsock (every transport open does). */
  InitOnceExecuteOnce(&uro_once, uro_probe, NULL, NULL);
  if (!uro_ok && why && len) snprintf(why, len, "%s", uro_why);
  return uro_ok;
}

DWORD mior__uro_enable(SOCKET fd) {
  DWORD v = MIOR__URO_MAX_BYTES;
  if (setsockopt(fd, IPPROTO_UDP, UDP_RECV_MAX_COALESCED_SIZE, (const char *)&v, sizeof v) != 0)
    return (DWORD)WSAGetLastError();
  return 0;
}

/* A software receive timestamp is a QueryPerformanceCounter value (Microsoft's "Winsock
 * timestamping"): moved onto the system clock's epoch, as Linux's CLOCK_REALTIME ones are, by the
 * distance between it and a reading of both clocks now.  A value ahead of now is none (a hardware
 * timestamp in the adapter's own clock, which mior does not convert): 0. */
static uint64_t qpc_to_epoch_ns(uint64_t ticks) {
  LARGE_INTEGER now, f;
  FILETIME ft;
  QueryPerformanceFrequency(&f); /* fixed at boot; asked each time rather than cached unlocked */
  LONGLONG freq = f.QuadPart;
  QueryPerformanceCounter(&now);
  GetSystemTimePreciseAsFileTime(&ft);
  if (freq <= 0 || ticks == 0 || ticks > (uint64_t)now.QuadPart) return 0;
  uint64_t age = (uint64_t)now.QuadPart - ticks;
  uint64_t age_ns = age / (uint64_t)freq * 1000000000u + age % (uint64_t)freq * 1000000000u / (uint64_t)freq;
  /* FILETIME: 100 ns units since 1601-01-01; the Unix epoch is 11644473600 s later. */
  uint64_t t100 = ((uint64_t)ft.dwHighDateTime << 32 | ft.dwLowDateTime) - 116444736000000000ull;
  uint64_t now_ns = t100 * 100u;
  return age_ns < now_ns ? now_ns - age_ns : 0;
}

static void set_ecn(mior__cqe *c, const uint8_t *d, size_t dlen) {
  INT v;
  if (dlen < sizeof v) return;
  memcpy(&v, d, sizeof v);
  c->meta.ecn = (uint8_t)(v & 3);
  c->flags |= MIOR_PKT_ECN;
}

void mior__rx_cmsg_meta(const WSAMSG *msg, mior__cqe *c) {
  const uint8_t *buf = (const uint8_t *)msg->Control.buf;
  size_t len = buf ? msg->Control.len : 0, off = 0;
  const size_t hdr = WSA_CMSG_LEN(0);
  while (len - off >= hdr) {
    WSACMSGHDR h;
    memcpy(&h, buf + off, sizeof h);
    if (h.cmsg_len < hdr || h.cmsg_len > len - off) break; /* cleared, or runs past the end */
    const uint8_t *d = buf + off + hdr;
    size_t dlen = h.cmsg_len - hdr;
    if (h.cmsg_level == IPPROTO_UDP && h.cmsg_type == UDP_COALESCED_INFO && dlen >= sizeof(DWORD)) {
      DWORD seg;
      memcpy(&seg, d, sizeof seg);
      if (seg > 0 && seg <= MIOR__URO_MAX_BYTES) c->seg = seg;
    } else if (h.cmsg_level == IPPROTO_IP && h.cmsg_type == IP_PKTINFO && dlen >= sizeof(IN_PKTINFO)) {
      IN_PKTINFO pi;
      memcpy(&pi, d, sizeof pi);
      mior__cqe_local(c, MIOR_AF_INET, &pi.ipi_addr, 0); /* the header's destination */
    } else if (h.cmsg_level == IPPROTO_IPV6 && h.cmsg_type == IPV6_PKTINFO && dlen >= sizeof(IN6_PKTINFO)) {
      IN6_PKTINFO pi;
      memcpy(&pi, d, sizeof pi);
      if (IN6_IS_ADDR_V4MAPPED(&pi.ipi6_addr)) { /* an IPv4 datagram on a dual-stack socket */
        mior__cqe_local(c, MIOR_AF_INET, &pi.ipi6_addr.s6_addr[12], 0);
      } else {
        mior__cqe_local(c, MIOR_AF_INET6, &pi.ipi6_addr, (uint32_t)pi.ipi6_ifindex);
      }
    } else if ((h.cmsg_level == IPPROTO_IP && (h.cmsg_type == IP_ECN || h.cmsg_type == IP_TOS)) ||
               (h.cmsg_level == IPPROTO_IPV6 && (h.cmsg_type == IPV6_ECN || h.cmsg_type == IPV6_TCLASS))) {
      set_ecn(c, d, dlen); /* the codepoint alone, or the TOS / traffic class byte it ends */
    } else if (h.cmsg_level == SOL_SOCKET && h.cmsg_type == MIOR_SO_TIMESTAMP && dlen >= sizeof(UINT64)) {
      UINT64 ticks;
      memcpy(&ticks, d, sizeof ticks);
      uint64_t ns = qpc_to_epoch_ns(ticks);
      if (ns) {
        c->meta.time_ns = ns;
        c->flags |= MIOR_PKT_TIMESTAMP;
      }
    }
    size_t step = WSA_CMSGHDR_ALIGN(h.cmsg_len);
    if (step > len - off) break;
    off += step;
  }
}

/* Append one control message of dlen bytes at *used in buf (cap bytes); 0 if it does not fit. */
static int put_cmsg(uint8_t *buf, size_t cap, ULONG *used, int level, int type, const void *data, size_t dlen) {
  size_t space = WSA_CMSG_SPACE(dlen);
  if (*used + space > cap) return 0;
  WSACMSGHDR h;
  memset(&h, 0, sizeof h);
  h.cmsg_len = WSA_CMSG_LEN(dlen);
  h.cmsg_level = level;
  h.cmsg_type = type;
  memset(buf + *used, 0, space);
  memcpy(buf + *used, &h, sizeof h);
  memcpy(buf + *used + WSA_CMSG_LEN(0), data, dlen);
  *used += (ULONG)space;
  return 1;
}

ULONG mior__tx_cmsg_meta(void *buf, size_t cap, int family, uint32_t flags, const mior__pkt_meta *m) {
  ULONG used = 0;
  if ((flags & MIOR_PKT_LOCAL) && m->local.family != MIOR_AF_UNSPEC) {
    if (family == AF_INET6) {
      IN6_PKTINFO pi;
      memset(&pi, 0, sizeof pi);
      memcpy(&pi.ipi6_addr, m->local.addr, 16);
      pi.ipi6_ifindex = m->local.scope_id;
      put_cmsg(buf, cap, &used, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof pi);
    } else {
      IN_PKTINFO pi;
      memset(&pi, 0, sizeof pi);
      memcpy(&pi.ipi_addr, m->local.addr, 4);
      put_cmsg(buf, cap, &used, IPPROTO_IP, IP_PKTINFO, &pi, sizeof pi);
    }
  }
  if (flags & MIOR_PKT_ECN) {
    INT v = m->ecn;
    put_cmsg(buf, cap, &used, family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP,
             family == AF_INET6 ? IPV6_ECN : IP_ECN, &v, sizeof v);
  }
  return used;
}
