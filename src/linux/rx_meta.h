/* Per-packet metadata on Linux (rx_meta.c), shared by the sockets and io_uring backends. */
#ifndef MIOR_LINUX_RX_META_H
#define MIOR_LINUX_RX_META_H

#include <sys/socket.h>

#include "common/backend.h"

/* Room for the control messages of one received datagram with every MIOR_OPT_RX_* on (a v6
 * socket may get IPv4 and IPv6 ones), and of one send's source address and ECN codepoint. */
#define MIOR__RX_CMSG_SPACE 160u
#define MIOR__TX_CMSG_SPACE 64u
#define MIOR__RX_META_OPTS (MIOR_OPT_RX_PKTINFO | MIOR_OPT_RX_ECN | MIOR_OPT_RX_TIMESTAMP)

/* Ask the socket for the metadata in opts (MIOR_OPT_RX_*).  0 or -errno with the detail. */
int mior__meta_sockopts(int fd, int family, uint32_t opts);
/* The one parser of a received datagram's control messages: fills c->meta and sets the
 * MIOR_PKT_* bits in c->flags for what it found. */
void mior__rx_cmsg_meta(const struct msghdr *msg, mior__cqe *c);
/* Write a send's control messages for flags (MIOR_PKT_LOCAL, MIOR_PKT_ECN) into buf (cap at
 * least MIOR__TX_CMSG_SPACE); returns their length. */
socklen_t mior__tx_cmsg_meta(void *buf, size_t cap, int family, uint32_t flags, const mior__pkt_meta *m);

#endif
