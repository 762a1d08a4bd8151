/* The direct path: one recvmsg or sendmsg on the port's socket, MSG_DONTWAIT, for a busy-polling
 * port with one packet per operation (why: docs/ARCHITECTURE.md, "Busy polling"). */
#include <errno.h>
#include <netinet/udp.h>
#include <string.h>

#include "linux/direct.h"
#include "linux/rx_meta.h"

int mior__linux_rx_direct(const mior__sock *s, const mior_pool_region *rg, uint32_t ctl_space,
                          uint32_t slot, mior__cqe *c) {
  union {
    char buf[MIOR__RX_CMSG_SPACE];
    struct cmsghdr align;
  } ctl;
  mior__sockaddr name;
  struct iovec iov = {.iov_base = mior_pool_region_slot(rg, slot), .iov_len = rg->buf_size};
  struct msghdr h = {.msg_name = &name, .msg_namelen = sizeof name, .msg_iov = &iov, .msg_iovlen = 1};
  if (ctl_space > sizeof ctl.buf) ctl_space = sizeof ctl.buf;
  if (ctl_space) {
    h.msg_control = ctl.buf;
    h.msg_controllen = ctl_space;
  }
  /* MSG_TRUNC: the result is the datagram's real length, so a cut one is seen and counted.
   * Without control messages to read (no GRO, no metadata), recvfrom spares the kernel copying in
   * a msghdr and an iovec on every look (most looks of a spin find nothing); it cannot report a
   * cut datagram through msg_flags, but the real length beyond the slot says the same. */
  ssize_t n;
  if (ctl_space) {
    n = recvmsg(s->fd, &h, MSG_DONTWAIT | MSG_TRUNC);
  } else {
    n = recvfrom(s->fd, iov.iov_base, iov.iov_len, MSG_DONTWAIT | MSG_TRUNC, &name.sa, &h.msg_namelen);
    h.msg_flags = 0;
  }
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
  memset(c, 0, sizeof *c);
  c->op = MIOR__OP_RX;
  c->slot = slot;
  if ((size_t)n > rg->buf_size || (h.msg_flags & MSG_TRUNC)) {
    c->flags = MIOR__CQE_TRUNC;
    if ((size_t)n > rg->buf_size) n = (ssize_t)rg->buf_size;
  }
  c->res = (int32_t)n;
  mior__sockaddr_to(&name.sa, h.msg_namelen, &c->src);
  /* The ring's own parser: GRO's segment size and the metadata the port asked for. */
  if (ctl_space) mior__rx_cmsg_meta(&h, c);
  /* Zero bytes from nobody: a shut-down socket's end of data, not an empty datagram. */
  if (n == 0 && h.msg_namelen == 0) c->res = -EAGAIN;
  return 1;
}

/* sendto, not sendmsg: the kernel then imports a plain buffer instead of copying in a msghdr and
 * an iovec, which on a round trip's critical path is worth having. */
int mior__linux_tx_direct(const mior__sock *s, const uint8_t *data, uint32_t len, const mior_addr *dst) {
  mior__sockaddr sa;
  socklen_t salen = dst ? mior__sockaddr_from(dst, &sa) : 0;
  ssize_t n = sendto(s->fd, data, len, MSG_DONTWAIT, dst ? &sa.sa : NULL, salen);
  if (n < 0) return errno == EWOULDBLOCK || errno == EINTR ? -EAGAIN : -errno;
  return (int)n;
}
