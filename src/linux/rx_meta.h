/* Per-packet metadata on Linux (rx_meta.c), shared by the sockets and io_uring backends. */
#ifndef MIOR_LINUX_RX_META_H
#define MIOR_LINUX_RX_META_H

#include <sys/socket.h>

#include "common/backend.h"

/* Room for the control messages of one receive with every MIOR_OPT_RX_* on, for UDP GRO's segment
 * size, and for one send's source address and ECN codepoint.  The most a receive gets is an IPv4
 * datagram on a v6 socket: IP_PKTINFO (32), IP_TOS (24), IPV6_PKTINFO (40, the mapped address) and
 * SCM_TIMESTAMPING (64, three timespecs); an IPv6 datagram gets no IPv4 messages.  A receive's room is what its port turned on (mior__rx_cmsg_space): a multishot
 * receive puts it in the slot, ahead of the datagram. */
#define MIOR__RX_CMSG_SPACE_META 160u
#define MIOR__RX_CMSG_SPACE_GRO CMSG_SPACE(sizeof(int))
#define MIOR__RX_CMSG_SPACE (MIOR__RX_CMSG_SPACE_META + MIOR__RX_CMSG_SPACE_GRO)
#define MIOR__TX_CMSG_SPACE 64u
#define MIOR__RX_META_OPTS (MIOR_OPT_RX_PKTINFO | MIOR_OPT_RX_ECN | MIOR_OPT_RX_TIMESTAMP | MIOR_OPT_RX_TIMESTAMP_HW)

/* Control room a receive needs for the metadata in opts and, with gro, the segment size; 0 if
 * none (then receives carry no control buffer at all). */
static inline uint32_t mior__rx_cmsg_space(uint32_t opts, int gro) {
  return ((opts & MIOR__RX_META_OPTS) ? MIOR__RX_CMSG_SPACE_META : 0u) + (gro ? (uint32_t)MIOR__RX_CMSG_SPACE_GRO : 0u);
}

/* Ask the socket for the metadata in opts (MIOR_OPT_RX_*).  0 or -errno with the detail. */
int mior__meta_sockopts(int fd, int family, uint32_t opts);
/* The one parser of a receive's control messages, for both backends and both io_uring receive
 * modes: fills c->meta and sets the MIOR_PKT_* bits in c->flags for what it found, and sets c->seg
 * to UDP GRO's segment size (a coalesced buffer; left 0 otherwise). */
void mior__rx_cmsg_meta(const struct msghdr *msg, mior__cqe *c);
/* Write a send's control messages for flags (MIOR_PKT_LOCAL, MIOR_PKT_ECN) into buf (cap at
 * least MIOR__TX_CMSG_SPACE); returns their length. */
socklen_t mior__tx_cmsg_meta(void *buf, size_t cap, int family, uint32_t flags, const mior__pkt_meta *m);

#endif
