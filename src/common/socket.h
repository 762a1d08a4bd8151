/* The socket a port owns: one API, with the same names on both systems (as libuv's uv__
 * functions), defined once per OS in src/linux/socket.c and src/win/socket.c.  The port opens
 * the socket and hands it to its backend in the ring config; the backend uses it (and may close
 * it at the point of its own teardown where that aborts its outstanding operations); the port
 * answers for its address and its drop counter.
 */
#ifndef MIOR_COMMON_SOCKET_H
#define MIOR_COMMON_SOCKET_H

#include <stdint.h>

#include "common/backend.h"
#include "os_socket.h" /* mior__sock for this OS (src/linux or src/win) */

/* Big enough for the IPv4 and IPv6 addresses mior sends to, and small (28 bytes) so one can sit
 * beside every slot. */
typedef union mior__sockaddr {
  struct sockaddr sa;
  struct sockaddr_in in;
  struct sockaddr_in6 in6;
} mior__sockaddr;

/* The default pool of a udp port with UDP GRO: one slot per coalesced buffer (the kernel
 * coalesces up to 64 datagrams and 64 KiB), 256 of them (why: docs/ARCHITECTURE.md). */
#define MIOR__GRO_BUF_SIZE 65536u
#define MIOR__GRO_BUF_COUNT 256u

/* Open, configure and bind the socket a port needs.  Returns 0 or -errno with a message that
 * names what failed (and, for EPERM, the privilege needed).  On failure s is closed. */
int mior__socket_open(mior__sock *s, const mior__io_cfg *cfg);
/* Close the socket (a closed one is left alone).  wait_release: something else in the kernel may
 * still hold the socket (an io_uring file table whose teardown is asynchronous): return only once
 * the kernel has released it, so that its address can be bound again (bounded wait). */
void mior__socket_close(mior__sock *s, int wait_release);
/* The socket's local address; a packet socket has none (family MIOR_AF_UNSPEC). */
int mior__socket_local_addr(const mior__sock *s, mior_addr *out);
/* Packets the kernel dropped at this socket since it opened (receive buffer full), or 0 where
 * the OS does not say. */
uint64_t mior__socket_drops(const mior__sock *s);

/* Start the OS's socket layer once per process (Winsock; nothing on Linux).  0 or -errno. */
int mior__socket_startup(void);
/* Resolve a host name to an address (IPv4 preferred, else IPv6), keeping out->port.  0, or
 * -EINVAL with the resolver's reason.  A blocking call: transport open only. */
int mior__socket_resolve(const char *name, mior_addr *out);

/* Conversions between mior_addr and the OS's struct sockaddr. */
socklen_t mior__sockaddr_from(const mior_addr *a, mior__sockaddr *out);
void mior__sockaddr_to(const struct sockaddr *sa, socklen_t len, mior_addr *out);

#endif
