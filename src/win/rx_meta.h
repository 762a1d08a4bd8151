/* Per-packet metadata and UDP receive coalescing (URO) on Winsock (rx_meta.c), for the sockets
 * backend: the socket options that ask for them, the one parser of a receive's control messages,
 * and the control messages of a send that sets its source address or ECN codepoint.  The same
 * names as src/linux/rx_meta.h, on Windows' types. */
#ifndef MIOR_WIN_RX_META_H
#define MIOR_WIN_RX_META_H

#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>

#include "common/backend.h"

#define MIOR__RX_META_OPTS (MIOR_OPT_RX_PKTINFO | MIOR_OPT_RX_ECN | MIOR_OPT_RX_TIMESTAMP)

/* Room for the control messages of one receive with every MIOR_OPT_RX_* on and URO (an IPv4 and
 * an IPv6 address, three integers, the timestamp), and for one send's.  Wine fails a receive
 * whose control buffer is too short (WSAEMSGSIZE, the datagram lost), so this errs large. */
#define MIOR__CMSG_SPACE                                                                       \
  (WSA_CMSG_SPACE(sizeof(IN6_PKTINFO)) + WSA_CMSG_SPACE(sizeof(IN_PKTINFO)) +                  \
   4 * WSA_CMSG_SPACE(sizeof(INT)) + WSA_CMSG_SPACE(sizeof(UINT64)))

/* The largest coalesced buffer URO is asked for: one UDP payload's worth, which a 64 KiB slot
 * (MIOR__GRO_BUF_SIZE) holds. */
#define MIOR__URO_MAX_BYTES (65535u - 8u)

/* Ask the socket for the metadata in opts (MIOR_OPT_RX_*).  0, or -EOPNOTSUPP naming the option
 * the stack refused and what it needs. */
int mior__meta_sockopts(SOCKET fd, int family, uint32_t opts);
/* Whether this system's stack takes UDP_RECV_MAX_COALESCED_SIZE (Windows 10 2004 / Server 2022
 * and later; Wine 8 refuses it): asked once per process on a scratch socket.  1, or 0 with the
 * reason in why. */
int mior__uro_supported(char *why, size_t len);
/* Turn URO on for the socket: 0, or the Winsock error. */
DWORD mior__uro_enable(SOCKET fd);
/* The one parser of a receive's control messages (msg as WSARecvMsg left it): fills c->meta and
 * sets the MIOR_PKT_* bits in c->flags for what it found, and sets c->seg to URO's segment size
 * (a coalesced buffer; left 0 otherwise).  Bounded by msg->Control.len, never trusting a length. */
void mior__rx_cmsg_meta(const WSAMSG *msg, mior__cqe *c);
/* Write a send's control messages for flags (MIOR_PKT_LOCAL, MIOR_PKT_ECN) into buf (cap at
 * least MIOR__CMSG_SPACE); returns their length. */
ULONG mior__tx_cmsg_meta(void *buf, size_t cap, int family, uint32_t flags, const mior__pkt_meta *m);

#endif
