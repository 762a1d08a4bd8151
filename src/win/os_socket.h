/* Windows' socket types for src/common/socket.h. */
#ifndef MIOR_WIN_OS_SOCKET_H
#define MIOR_WIN_OS_SOCKET_H

#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

typedef struct mior__sock {
  SOCKET fd;         /* INVALID_SOCKET when closed */
  int family;        /* AF_INET or AF_INET6 */
  enum mior__kind kind;
  int connected;     /* connected to cfg->peer: sends may omit the destination */
  int rcvall;        /* SIO_RCVALL is on (ip kind receiving TCP) */
  int gro;           /* never: mior has no Windows receive coalescing (URO) yet */
  int offload_refused;
} mior__sock;

/* UDP receive coalescing is not used on this OS: udp ports keep the small default slot. */
#define MIOR__SOCK_HAS_GRO 0

#endif
