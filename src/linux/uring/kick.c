/* The io_uring backend's AF_PACKET TX-ring machine (see txring.h and uring.h): submit copies
 * each queued frame into the ring, hands its slot back at once (the completion record is made
 * right there), and one SEND with no buffer on the socket, a "kick", makes the kernel send every
 * frame marked since.  A frame counts as sent when the kernel has taken it from the ring. */
#include <errno.h>
#include <stdlib.h>

#include "linux/uring/uring.h"

/* Packet ports send through a TX ring unless MIOR_OPT_NO_TX_RING.  Where the kernel or the link
 * will not have one, per-frame sends remain (MIOR_FEAT_TX_RING says which).  Returns 0, or a
 * negative errno only if the socket is left unable to send. */
int mior__uring_txring_setup(struct mior__io *r, const mior__io_cfg *cfg, uint32_t *features) {
  const mior_options *o = cfg->opts;
  if (r->sock->kind != MIOR__KIND_PACKET || (o->flags & MIOR_OPT_NO_TX_RING)) return 0;
  uint32_t cap = 1;
  while (cap < r->region.buf_count) cap <<= 1;
  r->txr = calloc(1, sizeof *r->txr);
  r->done = malloc((size_t)cap * sizeof *r->done);
  int rc = -ENOMEM;
  /* A port that never receives can have linear frames (txring.h).  tpacket_snd reads their
   * virtio_net_hdr since Linux 4.15, long before io_uring could send on a packet socket. */
  if (r->txr && r->done)
    rc = mior__txring_open(r->txr, r->sock->fd, cfg->ep->ifname, r->region.buf_size, o->batch,
                           (o->flags & MIOR_OPT_NO_RX) != 0);
  if (rc < 0) {
    free(r->txr);
    free(r->done);
    r->txr = NULL;
    r->done = NULL;
    return rc == -EIO ? rc : 0;
  }
  r->done_mask = cap - 1;
  r->ring_wait_ts.tv_nsec = RING_WAIT_NS;
  *features |= MIOR_FEAT_TX_RING;
  return 0;
}

static inline void done_push(struct mior__io *r, uint32_t slot, int32_t res, uint32_t len) {
  struct tx_done *d = &r->done[(r->done_head + r->done_len) & r->done_mask];
  d->slot = slot;
  d->res = res;
  d->len = len;
  r->done_len++;
}

/* Copy the pending sends into the ring, in order, and record their completions: the slots are free
 * again as soon as their bytes are in the ring.  Stops at the first frame the kernel still owns
 * (the ring is full); the rest stay pending, which the port sees as sends in flight (backpressure),
 * not as loss. */
static void ring_prepare(struct mior__io *r) {
  mior__txring *t = r->txr;
  uint32_t i, placed = 0;
  for (i = 0; i < r->txq.len; i++) {
    const mior__tx_rec *e = mior__tx_fifo_at(&r->txq, i);
    uint32_t len = e->len;
    const uint8_t *data = mior_pool_region_slot(&r->region, e->slot) + e->off;
    /* A frame carries its own addresses; a destination is refused as the kernel refuses an
     * address that is not a sockaddr_ll.  The checks are those the kernel would make in the ring,
     * where a refused frame would vanish without a word (PACKET_LOSS). */
    int32_t res = MIOR_UNLIKELY(e->has_dst) ? -EINVAL : mior__txring_check(t, data, len);
    if (MIOR_LIKELY(res == 0)) {
      if (!mior__txring_put(t, data, len)) break;
      res = (int32_t)len;
      placed++;
    }
    done_push(r, e->slot, res, len);
  }
  mior__tx_fifo_pop(&r->txq, i);
  if (placed) r->kick_needed = 1;
}

/* Queue a kick: a SEND with no buffer, for which packet_sendmsg runs tpacket_snd over every frame
 * marked SEND_REQUEST.  Without MSG_DONTWAIT, so that a kick finding the socket's send buffer full
 * waits inside io_uring (poll) for room instead of failing with -EAGAIN. */
void mior__uring_kick(struct mior__io *r) {
  struct io_uring_sqe *sqe = mior__uring_get_tx_sqe(r);
  if (MIOR_UNLIKELY(!sqe)) return; /* still needed: the next submit tries again */
  io_uring_prep_send(sqe, r->file, NULL, 0, 0);
  sqe->flags |= r->sqe_flags;
  io_uring_sqe_set_data64(sqe, UD(UD_KICK, 0, 0));
  r->kick_inflight = 1;
  r->kick_needed = 0;
}

/* A kick completed with res (bytes sent, or a negative errno).  Counts a failure and decides what
 * the frames it left behind need.  Returns 1 when the next kick should go at once (from reap), 0
 * when it can wait for the next submit or for new frames. */
/* Count the frames the kernel took from the ring since the last look. */
static void ring_confirm(struct mior__io *r) {
  mior__txring_confirm(r->txr, &r->cnt.tx_packets, &r->cnt.tx_bytes, &r->cnt.tx_errors);
}

int mior__uring_kick_done(struct mior__io *r, int32_t res) {
  r->kick_inflight = 0;
  ring_confirm(r);
  /* -EAGAIN and -EINTR mean "try again"; io_uring normally absorbs them itself. */
  if (res < 0 && res != -EAGAIN && res != -EINTR && !(res == -ECANCELED && r->canceling)) r->cnt.tx_errors++;
  if (!r->kick_needed && mior__txring_unsent(r->txr)) {
    /* The kick stopped short of the last frame: the send buffer filled (it then returns what it
     * sent) or the device's queue did (-ENOBUFS, the frame stays marked).  Kick again.  After any
     * other error (the link went down) the frames wait for the next frame queued, so that a dead
     * link is not retried in a loop. */
    if (res >= 0 || res == -EAGAIN || res == -EINTR || res == -ENOBUFS || res == -ECANCELED)
      r->kick_needed = 1;
  }
  /* -ENOBUFS comes back at once while the device queue is full: retry at the next submit, not in a
   * loop here. */
  return r->kick_needed && res != -ENOBUFS;
}

/* A kick on an AF_PACKET socket normally completes inline, during the submit that issued it, but
 * its completion then waits in the CQ until the port reaps.  Frames marked meanwhile would wait for
 * that reap too: find the completion now, handle it, and let reap pass over it.  Kicks are issued
 * one at a time, so kick completions sit in the CQ in issue order, and those already handled come
 * first. */
static void kick_scan(struct mior__io *r) {
  struct io_uring_cqe *cqe;
  unsigned head;
  uint32_t seen = 0;
  io_uring_for_each_cqe(&r->ring, head, cqe) {
    if (UD_OP(cqe->user_data) != UD_KICK || seen++ < r->kick_skip) continue;
    r->kick_skip++;
    mior__uring_kick_done(r, cqe->res);
    return;
  }
}

/* Ring full, and no kick in flight whose completion would bring the port back: arm a short timer
 * so that a waiting poll wakes up to look again. */
static void arm_ring_wait(struct mior__io *r) {
  struct io_uring_sqe *sqe = mior__uring_sqe(r);
  if (!sqe) return;
  io_uring_prep_timeout(sqe, &r->ring_wait_ts, 0, 0);
  io_uring_sqe_set_data64(sqe, UD(UD_RING_WAIT, 0, 0));
  r->ring_wait = 1;
}

/* Move pending sends into the ring and kick it as needed (at most one kick in flight). */
void mior__uring_txring_submit(struct mior__io *r) {
  ring_confirm(r);
  if (r->txq.len) ring_prepare(r);
  if (r->kick_needed && r->kick_inflight) kick_scan(r);
  if (r->kick_needed && !r->kick_inflight) mior__uring_kick(r);
  if (MIOR_UNLIKELY(r->txq.len && !r->kick_inflight && !r->ring_wait)) arm_ring_wait(r);
}

uint32_t mior__uring_done_reap(struct mior__io *r, mior__cqe *out, uint32_t max) {
  uint32_t n = r->done_len < max ? r->done_len : max;
  for (uint32_t i = 0; i < n; i++) {
    const struct tx_done *d = &r->done[(r->done_head + i) & r->done_mask];
    mior__cqe *c = &out[i];
    c->op = MIOR__OP_TX;
    c->slot = d->slot;
    c->res = d->res;
    c->off = d->len;
    c->flags = d->res >= 0 ? MIOR__CQE_COPIED : 0;
  }
  r->done_head = (r->done_head + n) & r->done_mask;
  r->done_len -= n;
  return n;
}
