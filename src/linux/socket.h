/* Socket setup shared by the Linux backends. */
#ifndef MIOR_LINUX_SOCKET_H
#define MIOR_LINUX_SOCKET_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "common/backend.h"

typedef struct mior__sock {
  int fd;
  int family;       /* AF_INET, AF_INET6 or AF_PACKET */
  enum mior__kind kind;
  int connected;    /* has a default destination (connected, or a bound packet socket) */
} mior__sock;

/* Open, configure and bind the socket a port needs.  Returns 0 or -errno with a message that
 * names what failed (and, for EPERM, the capability needed). */
int mior__socket_open(mior__sock *s, const mior__ring_cfg *cfg);

/* Big enough for the IPv4 and IPv6 addresses mior sends to, and small (28 bytes) so one can
 * sit beside every slot. */
typedef union mior__sockaddr {
  struct sockaddr sa;
  struct sockaddr_in in;
  struct sockaddr_in6 in6;
} mior__sockaddr;

/* Conversions between mior_addr and struct sockaddr. */
socklen_t mior__sockaddr_from(const mior_addr *a, mior__sockaddr *out);
void mior__sockaddr_to(const struct sockaddr *sa, socklen_t len, mior_addr *out);
/* The socket's local address; a packet socket has none (family MIOR_AF_UNSPEC). */
int mior__socket_local_addr(const mior__sock *s, mior_addr *out);
/* Wait (at most timeout_ms) until the kernel has released the socket whose inode was ino, after
 * its last descriptor was closed while another kernel object (an io_uring file table) still held
 * it: until then its address stays bound.  Looks for the inode in /proc/net. */
void mior__socket_wait_released(const mior__sock *s, unsigned long ino, int timeout_ms);
/* The socket's drop counter (sk_drops via SO_MEMINFO, Linux 4.12), or 0 if unavailable. */
uint64_t mior__socket_drops(int fd);

#endif
