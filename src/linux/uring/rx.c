/* The io_uring backend's receive side (see uring.h): one multishot receive feeding from a
 * provided-buffer ring whose buffer ids are the pool's slot indices (kernel 6.0+), or, where that
 * is unavailable or has been left (empty datagrams), receives kept posted per slot. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "linux/uring/uring.h"

/* The provided-buffer ring: buffer id == slot index, so it needs buf_count <= 65536. */
int mior__uring_rx_setup(struct mior__io *r, uint32_t rx_depth) {
  uint32_t entries = 1;
  while (entries < rx_depth) entries <<= 1;
  if (entries > 32768 || r->region.buf_count > 65536) return -ERANGE;
  r->br_len = (size_t)entries * sizeof(struct io_uring_buf);
  void *mem = mmap(NULL, r->br_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return -errno;
  r->br = mem;
  io_uring_buf_ring_init(r->br);
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (uint64_t)(uintptr_t)mem;
  reg.ring_entries = entries;
  reg.bgid = BUF_GROUP;
  int rc = io_uring_register_buf_ring(&r->ring, &reg, 0);
  if (rc < 0) {
    munmap(mem, r->br_len);
    r->br = NULL;
    return rc;
  }
  r->br_mask = (uint32_t)io_uring_buf_ring_mask(entries);
  return 0;
}

/* Posted receives each arm their own poll, and a datagram at an idle socket wakes them all: only
 * rx_allow are kept posted (docs/ARCHITECTURE.md, "posted receives"). */
uint32_t mior__uring_rx_room(struct mior__io *r) {
  if (r->multishot) return UINT32_MAX;
  return r->rx_allow > r->posted ? r->rx_allow - r->posted : 0;
}

uint32_t mior__uring_rx_post(struct mior__io *r, const uint32_t *slots, uint32_t n) {
  if (r->multishot) {
    for (uint32_t i = 0; i < n; i++)
      io_uring_buf_ring_add(r->br, mior_pool_region_slot(&r->region, slots[i]), r->region.buf_size,
                            (unsigned short)slots[i], (int)r->br_mask, (int)i);
    /* Publishes the new tail with a release store: the kernel sees the entries before the tail. */
    io_uring_buf_ring_advance(r->br, (int)n);
    r->br_count += n;
    return n;
  }
  uint32_t i;
  for (i = 0; i < n; i++) {
    struct io_uring_sqe *sqe = mior__uring_sqe(r);
    if (!sqe) break;
    uint32_t slot = slots[i];
    uint8_t *buf = mior_pool_region_slot(&r->region, slot);
    if (r->names) {
      struct slot_meta *m = &r->meta[slot];
      m->iov.iov_base = buf;
      m->iov.iov_len = r->region.buf_size;
      memset(&m->msg, 0, sizeof m->msg);
      m->msg.msg_name = &m->sa;
      m->msg.msg_namelen = sizeof m->sa;
      m->msg.msg_iov = &m->iov;
      m->msg.msg_iovlen = 1;
      m->sa.sa.sa_family = AF_UNSPEC; /* a datagram fills it in; an empty read of a shut socket not */
      if (r->rx_ctl) {
        /* Cleared: a control message left from an earlier receive must not be read as this one's. */
        memset(r->rx_ctl + (size_t)slot * r->rx_ctl_space, 0, r->rx_ctl_space);
        m->msg.msg_control = r->rx_ctl + (size_t)slot * r->rx_ctl_space;
        m->msg.msg_controllen = r->rx_ctl_space;
      }
      /* MSG_TRUNC makes the result the datagram's real length, so truncation is visible. */
      io_uring_prep_recvmsg(sqe, r->file, &m->msg, MSG_TRUNC);
    } else {
      /* Not READ_FIXED, although the pool is registered: a read cannot say that a frame was
       * longer than the slot, and with MSG_TRUNC a receive returns the frame's real length. */
      io_uring_prep_recv(sqe, r->file, buf, r->region.buf_size, MSG_TRUNC);
    }
    sqe->flags |= r->sqe_flags;
    io_uring_sqe_set_data64(sqe, UD(UD_RX, 0, slot));
  }
  r->posted += i;
  return i;
}

static void arm_multishot(struct mior__io *r) {
  struct io_uring_sqe *sqe = mior__uring_sqe(r);
  if (!sqe) return;
  /* MSG_TRUNC: a frame longer than its buffer completes with its real length, so a cut frame is
   * seen (and dropped) rather than delivered as complete.  recvmsg reports it in its header. */
  if (r->names) io_uring_prep_recvmsg_multishot(sqe, r->file, &r->ms_msg, 0);
  else io_uring_prep_recv_multishot(sqe, r->file, NULL, 0, MSG_TRUNC);
  sqe->flags |= r->sqe_flags | IOSQE_BUFFER_SELECT;
  sqe->buf_group = BUF_GROUP;
  io_uring_sqe_set_data64(sqe, UD(UD_MULTISHOT, 0, 0));
  r->ms_armed = 1;
}

/* Leave multishot receive for posted receives (see MS_ZERO_END_LIMIT), between two multishots:
 * the buffer ring is unregistered, and the slots still in it, which the kernel never consumed,
 * are handed back through reap. */
static void multishot_off(struct mior__io *r) {
  r->ret_slots = malloc((size_t)(r->br_count ? r->br_count : 1) * sizeof *r->ret_slots);
  if (!r->ret_slots) return; /* stay on multishot, try again at the next submit */
  /* The kernel takes buffers in ring order, so the unconsumed ones are the last br_count added. */
  uint16_t tail = r->br->tail;
  for (uint32_t k = 0; k < r->br_count; k++)
    r->ret_slots[r->ret_len++] = r->br->bufs[(uint16_t)(tail - r->br_count + k) & r->br_mask].bid;
  io_uring_unregister_buf_ring(&r->ring, BUF_GROUP);
  munmap(r->br, r->br_len);
  r->br = NULL;
  r->br_count = 0;
  r->multishot = 0;
  r->cnt.features_off |= MIOR_FEAT_MULTISHOT_RX;
}

int mior__uring_rx_arm(struct mior__io *r) {
  if (!r->multishot || r->ms_armed || r->canceling) return 0;
  if (MIOR_UNLIKELY(r->ms_zero_ends >= MS_ZERO_END_LIMIT)) {
    multishot_off(r);
    return 0;
  }
  if (MIOR_UNLIKELY(r->ms_state == MS_REJECTED)) {
    r->ms_state = MS_REJECTED_REPORTED;
    return mior__fail(-EOPNOTSUPP, "the kernel rejected multishot receive; open with MIOR_OPT_NO_MULTISHOT");
  }
  if (r->br_count > 0 && r->ms_state == MS_OK) arm_multishot(r);
  return 0;
}

uint32_t mior__uring_rx_returned(struct mior__io *r, mior__cqe *out, uint32_t max) {
  uint32_t n = 0;
  /* -EAGAIN is "nothing happened": the slot goes back unused. */
  while (r->ret_len && n < max) {
    mior__cqe *c = &out[n++];
    memset(c, 0, sizeof *c);
    c->op = MIOR__OP_RX;
    c->slot = r->ret_slots[--r->ret_len];
    c->res = -EAGAIN;
  }
  return n;
}

uint32_t mior__uring_reap_posted(struct mior__io *r, const struct io_uring_cqe *cqe, mior__cqe *c) {
  r->posted--;
  uint32_t slot = UD_SLOT(cqe->user_data);
  c->op = MIOR__OP_RX;
  c->slot = slot;
  c->res = cqe->res;
  c->off = 0;
  c->flags = 0;
  c->seg = 0;
  if (cqe->res > (int32_t)r->region.buf_size) { /* MSG_TRUNC: the datagram's real length */
    c->flags = MIOR__CQE_TRUNC;
    c->res = (int32_t)r->region.buf_size;
  }
  if (r->names && cqe->res >= 0) {
    struct slot_meta *m = &r->meta[slot];
    mior__sockaddr_to(&m->sa.sa, m->msg.msg_namelen, &c->src);
    if (r->rx_ctl) mior__rx_cmsg_meta(&m->msg, c); /* metadata, GRO segment size */
    /* Zero bytes from nobody: the socket was shut down, not an empty datagram. */
    if (cqe->res == 0 && c->src.family == MIOR_AF_UNSPEC) c->res = -EAGAIN;
  } else {
    c->src.family = MIOR_AF_UNSPEC;
  }
  return 1;
}

uint32_t mior__uring_reap_multishot(struct mior__io *r, const struct io_uring_cqe *cqe, mior__cqe *c) {
  if (!(cqe->flags & IORING_CQE_F_MORE)) {
    /* The multishot ended (buffers ran out, an error, overflow or cancel): re-arm at the next
     * submit unless we are closing. */
    r->ms_armed = 0;
    if (!r->canceling) r->cnt.rx_rearm++;
    if (cqe->res == -EINVAL && !(cqe->flags & IORING_CQE_F_BUFFER) && r->ms_state == MS_OK)
      r->ms_state = MS_REJECTED;
  }
  c->op = MIOR__OP_RX;
  c->flags = 0;
  c->src.family = MIOR_AF_UNSPEC;
  c->off = 0;
  c->seg = 0;
  c->res = cqe->res;
  if (!(cqe->flags & IORING_CQE_F_BUFFER)) {
    if (cqe->res == -ECANCELED || (cqe->res == 0 && r->canceling)) return 0; /* nothing to report */
    c->slot = MIOR__NO_SLOT;
    return 1;
  }
  uint32_t slot = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
  r->br_count--;
  c->slot = slot;
  if (cqe->res > (int32_t)r->region.buf_size) { /* MSG_TRUNC: the frame's real length */
    c->flags = MIOR__CQE_TRUNC;
    c->res = (int32_t)r->region.buf_size;
  }
  if (r->names && cqe->res > 0) {
    uint8_t *buf = mior_pool_region_slot(&r->region, slot);
    struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(buf, cqe->res, &r->ms_msg);
    if (!o) {
      c->res = -EBADMSG;
      return 1;
    }
    uint8_t *payload = io_uring_recvmsg_payload(o, &r->ms_msg);
    c->off = (uint32_t)(payload - buf);
    c->res = (int32_t)io_uring_recvmsg_payload_length(o, cqe->res, &r->ms_msg);
    if (o->flags & MSG_TRUNC) c->flags = MIOR__CQE_TRUNC;
    mior__sockaddr_to(io_uring_recvmsg_name(o), o->namelen, &c->src);
    if (r->rx_ctl && o->controllen) {
      /* A view of the control messages the kernel wrote after the name (as liburing's
       * io_uring_recvmsg_cmsg_firsthdr finds them), for the one parser both backends use. */
      struct msghdr v;
      memset(&v, 0, sizeof v);
      v.msg_control = (uint8_t *)(o + 1) + r->ms_msg.msg_namelen;
      v.msg_controllen = o->controllen;
      mior__rx_cmsg_meta(&v, c);
    }
    if (c->res == 0 && o->namelen == 0) c->res = -EAGAIN; /* a shut socket, no datagram */
    /* An empty datagram is delivered (c->res 0), but it also ended the multishot. */
    if (c->res == 0 && !(cqe->flags & IORING_CQE_F_MORE)) r->ms_zero_ends++;
  }
  return 1;
}

void mior__uring_rx_allow_update(struct mior__io *r, uint32_t nrx) {
  if (nrx >= r->rx_allow) r->rx_allow = r->rx_allow * 2 < r->rx_allow_max ? r->rx_allow * 2 : r->rx_allow_max;
  else r->rx_allow = nrx;
}
