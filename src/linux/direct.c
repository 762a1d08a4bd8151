/* The direct path: one recvmsg or sendmsg on the port's socket, MSG_DONTWAIT, for a busy-polling
 * port with one packet per operation (why: docs/ARCHITECTURE.md, "Busy polling"). */
#include <errno.h>
#include <netinet/udp.h>
#include <string.h>

#include "linux/direct.h"

int mior__linux_rx_direct(const mior__sock *s, const mior_pool_region *rg, int gro, uint32_t slot,
                          mior__cqe *c) {
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  mior__sockaddr name;
  struct iovec iov = {.iov_base = mior_pool_region_slot(rg, slot), .iov_len = rg->buf_size};
  struct msghdr h = {.msg_name = &name, .msg_namelen = sizeof name, .msg_iov = &iov, .msg_iovlen = 1};
  if (gro) {
    h.msg_control = ctl.buf;
    h.msg_controllen = sizeof ctl.buf;
  }
  /* MSG_TRUNC: the result is the datagram's real length, so a cut one is seen and counted.
   * Without GRO there is no control message to read, and recvfrom spares the kernel copying in a
   * msghdr and an iovec on every look (most looks of a spin find nothing); it cannot report a
   * cut datagram through msg_flags, but the real length beyond the slot says the same. */
  ssize_t n;
  if (gro) {
    n = recvmsg(s->fd, &h, MSG_DONTWAIT | MSG_TRUNC);
  } else {
    n = recvfrom(s->fd, iov.iov_base, iov.iov_len, MSG_DONTWAIT | MSG_TRUNC, &name.sa, &h.msg_namelen);
    h.msg_flags = 0;
  }
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
  c->op = MIOR__OP_RX;
  c->slot = slot;
  c->off = 0;
  c->flags = 0;
  c->seg = 0;
  if ((size_t)n > rg->buf_size || (h.msg_flags & MSG_TRUNC)) {
    c->flags = MIOR__CQE_TRUNC;
    if ((size_t)n > rg->buf_size) n = (ssize_t)rg->buf_size;
  }
  c->res = (int32_t)n;
  mior__sockaddr_to(&name.sa, h.msg_namelen, &c->src);
  for (struct cmsghdr *cm = gro ? CMSG_FIRSTHDR(&h) : NULL; cm; cm = CMSG_NXTHDR(&h, cm)) {
    if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO && cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int v;
      memcpy(&v, CMSG_DATA(cm), sizeof v);
      if (v > 0) c->seg = (uint32_t)v;
    }
  }
  /* Zero bytes from nobody: a shut-down socket's end of data, not an empty datagram. */
  if (n == 0 && h.msg_namelen == 0) c->res = -EAGAIN;
  return 1;
}

int mior__linux_tx_direct(const mior__sock *s, const uint8_t *data, uint32_t len, const mior_addr *dst) {
  mior__sockaddr sa;
  struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
  struct msghdr h = {.msg_iov = &iov, .msg_iovlen = 1};
  if (dst) {
    h.msg_name = &sa;
    h.msg_namelen = mior__sockaddr_from(dst, &sa);
  }
  ssize_t n = sendmsg(s->fd, &h, MSG_DONTWAIT);
  if (n < 0) return errno == EWOULDBLOCK || errno == EINTR ? -EAGAIN : -errno;
  return (int)n;
}
