/* Winsock socket setup shared by the Windows backends (udp and ip kinds). */
#ifndef MIOR_WIN_SOCKET_H
#define MIOR_WIN_SOCKET_H

#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include "common/backend.h"

typedef struct mior__wsock {
  SOCKET s;
  int family;        /* AF_INET or AF_INET6 */
  enum mior__kind kind;
  int connected;     /* connected to cfg->peer: sends may omit the destination */
  int rcvall;        /* SIO_RCVALL is on (ip kind receiving TCP) */
} mior__wsock;

/* Start Winsock once per process (thread-safe).  0 or -errno with the detail. */
int mior__winsock_startup(void);

/* Open, configure and bind the socket a port needs: an overlapped socket (WSA_FLAG_OVERLAPPED),
 * not inheritable.  udp: IPv4/IPv6, bound, connected when cfg->peer is set; queues > 1 is refused
 * (Windows has no load-balancing SO_REUSEPORT).  ip: SOCK_RAW with IP_HDRINCL/IPV6_HDRINCL.
 * packet: -EOPNOTSUPP.  Returns 0 or -errno with a message naming what failed.  On failure the
 * socket is closed and s->s is INVALID_SOCKET. */
int mior__wsock_open(mior__wsock *s, const mior__ring_cfg *cfg);
void mior__wsock_close(mior__wsock *s);

/* Big enough for IPv4 and IPv6 addresses; one sits beside every slot. */
typedef union mior__wsaddr {
  struct sockaddr sa;
  struct sockaddr_in in;
  struct sockaddr_in6 in6;
} mior__wsaddr;

int mior__wsaddr_from(const mior_addr *a, mior__wsaddr *out);
void mior__wsaddr_to(const struct sockaddr *sa, int len, mior_addr *out);
int mior__wsock_local_addr(SOCKET s, mior_addr *out);

#endif
