/* Linux's socket types for src/common/socket.h. */
#ifndef MIOR_LINUX_OS_SOCKET_H
#define MIOR_LINUX_OS_SOCKET_H

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

typedef struct mior__sock {
  int fd;           /* -1 when closed */
  int family;       /* AF_INET, AF_INET6 or AF_PACKET */
  enum mior__kind kind;
  int connected;    /* has a default destination (connected, or a bound packet socket) */
} mior__sock;

#endif
