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
  int gro;           /* unused: URO is the sockets backend's (src/win/winsock.c), set at its open */
  int offload_refused;
} mior__sock;

#endif
