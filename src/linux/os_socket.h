/* Linux's socket types for src/common/socket.h. */
#ifndef MIOR_LINUX_OS_SOCKET_H
#define MIOR_LINUX_OS_SOCKET_H

#include <netdb.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

typedef struct mior__sock {
  int fd;           /* -1 when closed */
  int family;       /* AF_INET, AF_INET6 or AF_PACKET */
  enum mior__kind kind;
  int connected;    /* has a default destination (connected, or a bound packet socket) */
  int gro;          /* udp: UDP_GRO is on (receives may be coalesced buffers) */
  int offload_refused; /* udp: the kernel refused UDP_GRO at open */
} mior__sock;

/* UDP GRO (Linux 5.0+), both backends' rx_coalesce: 1, so udp ports default to slots that hold a
 * coalesced buffer.  The kernel decides at open; one that refuses leaves plain receives in those
 * slots (offload_refused, offload_reason). */
int mior__socket_gro_supported(char *why, size_t len);

/* UDP GSO, both Linux backends: the largest segment of a GSO send on s, the path MTU's payload
 * on a connected socket, an Ethernet MTU's without one, at most max_bytes. */
uint32_t mior__socket_gso_max_seg(const mior__sock *s, uint32_t max_bytes);

#endif
