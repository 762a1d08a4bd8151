/* The direct path's system calls (one datagram, non-blocking, beside the ring), shared by the
 * Linux backends so that a direct receive reads its control messages and its truncation exactly
 * as their reap does. */
#ifndef MIOR_LINUX_DIRECT_H
#define MIOR_LINUX_DIRECT_H

#include "common/socket.h"

/* backend_ops.rx_direct for a udp socket: ctl_space is the port's receive control room
 * (mior__rx_cmsg_space: UDP GRO's segment size and the MIOR_OPT_RX_* metadata), 0 for none. */
int mior__linux_rx_direct(const mior__sock *s, const mior_pool_region *rg, uint32_t ctl_space,
                          uint32_t slot, mior__cqe *c);
/* backend_ops.tx_direct for a udp socket. */
int mior__linux_tx_direct(const mior__sock *s, const uint8_t *data, uint32_t len, const mior_addr *dst);

#endif
