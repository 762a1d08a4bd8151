/* The io_uring backend's send side (see uring.h): tx_queue only records a send; submit turns the
 * queued sends into SQEs, runs of equal-size datagrams to one destination into one UDP GSO
 * send where that is on (docs/ARCHITECTURE.md), and sends the kernel refused as GSO go again one
 * by one. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "linux/uring/uring.h"

/* UDP GSO on every udp port unless MIOR_OPT_NO_UDP_GSO, to the connected peer or to any
 * destination.  A segment must fit the route's MTU or the kernel refuses the send (EINVAL): a
 * connected socket knows its path MTU; an unconnected one starts from an Ethernet MTU (1500), and
 * larger datagrams go single.  A refused GSO send goes again one by one (gso_complete). */
void mior__uring_gso_setup(struct mior__io *r, const mior_options *o, uint32_t *features) {
  if (r->sock->kind != MIOR__KIND_UDP || (o->flags & MIOR_OPT_NO_UDP_GSO)) return;
  r->gso_max_seg = mior__socket_gso_max_seg(r->sock, GSO_MAX_BYTES);
  r->gso_recs = calloc(GSO_RECORDS, sizeof *r->gso_recs);
  r->gso_free = malloc(GSO_RECORDS * sizeof *r->gso_free);
  if (!r->gso_recs || !r->gso_free) {
    free(r->gso_recs);
    free(r->gso_free);
    r->gso_recs = NULL;
    r->gso_free = NULL;
    return; /* single sends work without it */
  }
  for (uint32_t i = 0; i < GSO_RECORDS; i++) r->gso_free[i] = GSO_RECORDS - 1 - i;
  r->gso_nfree = GSO_RECORDS;
  r->gso = GSO_PROBING;
  *features |= MIOR_FEAT_UDP_GSO;
}

int mior__uring_tx_queue(struct mior__io *r, uint32_t slot, uint32_t off, uint32_t len,
                          const mior_addr *dst) {
  if (dst && !r->txr) {
    struct slot_meta *m = &r->meta[slot];
    m->iov.iov_base = mior_pool_region_slot(&r->region, slot) + off;
    m->iov.iov_len = len;
    memset(&m->msg, 0, sizeof m->msg);
    m->msg.msg_name = &m->sa;
    m->msg.msg_namelen = mior__sockaddr_from(dst, &m->sa);
    m->msg.msg_iov = &m->iov;
    m->msg.msg_iovlen = 1;
  }
  return mior__tx_fifo_push(&r->txq, slot, off, len, dst != NULL);
}

/* A slot of datagrams back to back goes as one GSO send only once GSO is confirmed: a refused
 * one has no single sends to fall back to, so the probe is left to runs of slots. */
int mior__uring_tx_gso_ok(struct mior__io *r, uint32_t seg, uint32_t len) {
  return r->gso == GSO_CONFIRMED && seg <= r->gso_max_seg && len <= GSO_MAX_BYTES &&
         (len + seg - 1) / seg <= GSO_MAX_SEGS;
}

int mior__uring_tx_queue_gso(struct mior__io *r, uint32_t slot, uint32_t off, uint32_t len, uint32_t seg,
                             const mior_addr *dst) {
  int rc = mior__uring_tx_queue(r, slot, off, len, dst);
  if (rc == 0) mior__tx_fifo_at(&r->txq, r->txq.len - 1)->seg = seg;
  return rc;
}

/* A send with a source address or ECN codepoint goes as a SENDMSG whose header and control
 * messages wait in the slot's storage; has_dst says so, and its control messages keep it out
 * of GSO runs (same_dst). */
int mior__uring_tx_queue_meta(struct mior__io *r, uint32_t slot, uint32_t off, uint32_t len,
                              const mior_addr *dst, uint32_t flags, const mior__pkt_meta *meta) {
  if (r->txr) return mior__fail(-EOPNOTSUPP, "per-send metadata on a packet port");
  if (!r->tx_ctl) {
    r->tx_ctl = malloc((size_t)r->region.buf_count * MIOR__TX_CMSG_SPACE);
    if (!r->tx_ctl) return mior__fail(-ENOMEM, "out of memory for send metadata");
  }
  struct slot_meta *m = &r->meta[slot];
  m->iov.iov_base = mior_pool_region_slot(&r->region, slot) + off;
  m->iov.iov_len = len;
  memset(&m->msg, 0, sizeof m->msg);
  if (dst) {
    m->msg.msg_name = &m->sa;
    m->msg.msg_namelen = mior__sockaddr_from(dst, &m->sa);
  }
  m->msg.msg_iov = &m->iov;
  m->msg.msg_iovlen = 1;
  uint8_t *ctl = r->tx_ctl + (size_t)slot * MIOR__TX_CMSG_SPACE;
  socklen_t cl = mior__tx_cmsg_meta(ctl, MIOR__TX_CMSG_SPACE, r->sock->family, flags, meta);
  if (cl) {
    m->msg.msg_control = ctl;
    m->msg.msg_controllen = cl;
  }
  return mior__tx_fifo_push(&r->txq, slot, off, len, 1);
}

/* 1 if two queued sends go to the same place: both to the connected peer, or both to one address. */
static int same_dst(const struct mior__io *r, const mior__tx_rec *a, const mior__tx_rec *b) {
  if (a->has_dst != b->has_dst) return 0;
  if (!a->has_dst) return 1;
  const struct msghdr *x = &r->meta[a->slot].msg, *y = &r->meta[b->slot].msg;
  /* A send with its own control messages (source address, ECN) goes alone. */
  if (x->msg_controllen || y->msg_controllen || !x->msg_namelen) return 0;
  return x->msg_namelen == y->msg_namelen && memcmp(x->msg_name, y->msg_name, x->msg_namelen) == 0;
}

/* How many pending sends from i on can go as one GSO send: equal lengths to one destination, the
 * last one possibly shorter, within the segment and byte limits.  0 if fewer than two. */
static uint32_t gso_run(struct mior__io *r, uint32_t i) {
  const mior__tx_rec *first = mior__tx_fifo_at(&r->txq, i);
  uint32_t seg = first->len;
  if (seg == 0 || seg > r->gso_max_seg || r->gso_nfree == 0) return 0;
  uint32_t n = 1, total = seg;
  while (i + n < r->txq.len && n < GSO_MAX_SEGS) {
    const mior__tx_rec *e = mior__tx_fifo_at(&r->txq, i + n);
    uint32_t l = e->len;
    /* An empty datagram goes alone: a GSO send has no empty segment. */
    if (l == 0 || l > seg || e->seg || total + l > GSO_MAX_BYTES || !same_dst(r, first, e)) break;
    total += l;
    n++;
    if (l < seg) break; /* a shorter datagram can only end a GSO send */
  }
  return n >= 2 ? n : 0;
}

/* The header, destination and UDP_SEGMENT control message of GSO record idx, whose iovecs and
 * segment size are set, into sqe.  first: the send's first queued record. */
static void gso_finish(struct mior__io *r, struct io_uring_sqe *sqe, uint32_t idx, const mior__tx_rec *first) {
  struct gso_rec *g = &r->gso_recs[idx];
  g->done = 0;
  memset(&g->msg, 0, sizeof g->msg);
  g->has_dst = first->has_dst;
  if (first->has_dst) {
    const struct msghdr *m = &r->meta[first->slot].msg;
    memcpy(&g->sa, m->msg_name, m->msg_namelen);
    g->msg.msg_name = &g->sa;
    g->msg.msg_namelen = m->msg_namelen;
  }
  g->msg.msg_iov = g->iov;
  g->msg.msg_iovlen = g->count;
  g->msg.msg_control = g->cmsg.buf;
  g->msg.msg_controllen = sizeof g->cmsg.buf;
  struct cmsghdr *cm = CMSG_FIRSTHDR(&g->msg);
  cm->cmsg_level = SOL_UDP;
  cm->cmsg_type = UDP_SEGMENT;
  cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  uint16_t seg16 = (uint16_t)g->seg;
  memcpy(CMSG_DATA(cm), &seg16, sizeof seg16);
  io_uring_prep_sendmsg(sqe, r->file, &g->msg, 0);
  sqe->flags |= r->sqe_flags;
  io_uring_sqe_set_data64(sqe, UD(UD_GSO, 0, idx));
}

/* A run of n queued sends from i, one slot each. */
static void prep_gso(struct mior__io *r, struct io_uring_sqe *sqe, uint32_t i, uint32_t n) {
  uint32_t idx = r->gso_free[--r->gso_nfree];
  struct gso_rec *g = &r->gso_recs[idx];
  g->count = n;
  g->whole = 0;
  g->seg = mior__tx_fifo_at(&r->txq, i)->len;
  for (uint32_t k = 0; k < n; k++) {
    const mior__tx_rec *e = mior__tx_fifo_at(&r->txq, i + k);
    g->slots[k] = e->slot;
    g->iov[k].iov_base = mior_pool_region_slot(&r->region, e->slot) + e->off;
    g->iov[k].iov_len = e->len;
  }
  gso_finish(r, sqe, idx, mior__tx_fifo_at(&r->txq, i));
}

/* One slot of datagrams back to back (tx_queue_gso): one iovec. */
static void prep_gso_whole(struct mior__io *r, struct io_uring_sqe *sqe, const mior__tx_rec *e) {
  uint32_t idx = r->gso_free[--r->gso_nfree];
  struct gso_rec *g = &r->gso_recs[idx];
  g->count = 1;
  g->whole = 1;
  g->seg = e->seg;
  g->slots[0] = e->slot;
  g->iov[0].iov_base = mior_pool_region_slot(&r->region, e->slot) + e->off;
  g->iov[0].iov_len = e->len;
  gso_finish(r, sqe, idx, e);
}

/* Turn the pending sends into SQEs, in order. */
void mior__uring_tx_prepare(struct mior__io *r) {
  uint32_t i = 0;
  while (i < r->txq.len) {
    const mior__tx_rec *e = mior__tx_fifo_at(&r->txq, i);
    /* A slot of datagrams waits for a GSO record to come back (one is in flight then). */
    if (MIOR_UNLIKELY(e->seg) && r->gso_nfree == 0) break;
    struct io_uring_sqe *sqe = mior__uring_get_tx_sqe(r);
    if (MIOR_UNLIKELY(!sqe)) break;
    uint32_t n = r->gso && !e->seg ? gso_run(r, i) : 0;
    if (MIOR_UNLIKELY(e->seg)) {
      prep_gso_whole(r, sqe, e);
      n = 1;
    } else if (n) {
      prep_gso(r, sqe, i, n);
    } else {
      uint32_t len = e->len;
      if (e->has_dst) io_uring_prep_sendmsg(sqe, r->file, &r->meta[e->slot].msg, 0);
      else io_uring_prep_send(sqe, r->file, mior_pool_region_slot(&r->region, e->slot) + e->off, len, 0);
      sqe->flags |= r->sqe_flags;
      io_uring_sqe_set_data64(sqe, UD(UD_TX, len, e->slot));
      n = 1;
    }
    r->tx_inflight += n;
    i += n;
  }
  mior__tx_fifo_pop(&r->txq, i);
  r->txq_requeued = i < r->txq_requeued ? r->txq_requeued - i : 0;
}

/* Put the sends of a GSO batch the kernel refused back at the head of the queue as single sends,
 * behind those of earlier refused batches, so that nothing is lost and the order is kept (GSO
 * sends on one socket complete in the order they were submitted).  Single sends submitted after
 * the refused batch are already on their way and may overtake it: UDP allows that, and it only
 * happens when a route stops taking GSO. */
static void gso_requeue(struct mior__io *r, const struct gso_rec *g, uint32_t from) {
  uint32_t n = g->count - from;
  mior__tx_rec recs[GSO_MAX_SEGS];
  for (uint32_t k = 0; k < n; k++) {
    const struct iovec *v = &g->iov[from + k];
    uint32_t slot = g->slots[from + k];
    recs[k].slot = slot;
    recs[k].off = (uint32_t)((uint8_t *)v->iov_base - mior_pool_region_slot(&r->region, slot));
    recs[k].len = (uint32_t)v->iov_len;
    recs[k].has_dst = g->has_dst; /* meta[slot] still holds its own destination */
    recs[k].seg = 0;
  }
  mior__tx_fifo_insert(&r->txq, r->txq_requeued, recs, n);
  r->txq_requeued += n;
}

uint32_t mior__uring_reap_send(struct mior__io *r, const struct io_uring_cqe *cqe, mior__cqe *c) {
  r->tx_inflight--;
  c->op = MIOR__OP_TX;
  c->flags = 0;
  c->slot = UD_SLOT(cqe->user_data);
  c->res = cqe->res;
  c->off = UD_LEN(cqe->user_data);
  return 1;
}

/* Errors that say the kernel or the route will not take this GSO send as built (no UDP GSO, a
 * device without checksum offload, a segment or total beyond what the path allows), as opposed
 * to errors the same datagrams would also have met as single sends. */
static int gso_refused(int res) {
  return res == -EINVAL || res == -EIO || res == -EOPNOTSUPP || res == -EMSGSIZE;
}

/* Hand out the completion records of one GSO send.  Returns 1 when the CQE is used up, 0 when
 * `out` is full first (g->done says where to resume). */
int mior__uring_gso_complete(struct mior__io *r, struct gso_rec *g, uint32_t idx, int32_t res, mior__cqe *out,
                        uint32_t max, uint32_t *n) {
  if (g->done == 0 && res < 0 && !r->canceling && res != -ECANCELED) {
    if (gso_refused(res)) {
      /* Nothing went out: send the datagrams again one by one.  Before any GSO send succeeded
       * this is the probe failing (old kernel, no offload): GSO stays off for the port.  After,
       * it is this segment size the path will not take: GSO stays on for smaller ones. */
      r->cnt.offload_refused++;
      if (r->gso == GSO_CONFIRMED && res != -EIO && res != -EOPNOTSUPP && g->seg > 1) {
        if (r->gso_max_seg >= g->seg) r->gso_max_seg = g->seg - 1;
      } else {
        r->gso = GSO_OFF;
        r->cnt.features_off |= MIOR_FEAT_UDP_GSO;
      }
      if (!g->whole) {
        r->tx_inflight -= g->count;
        gso_requeue(r, g, 0);
        r->gso_free[r->gso_nfree++] = idx;
        return 1;
      }
      /* One slot cut into datagrams has no single sends to go again as: it fails (below), and
       * the front end copies later sends of this size into slots of their own (tx_gso_ok). */
    } else if (!g->whole) {
      /* Any other error (a pending ICMP error such as ECONNREFUSED, ENOBUFS, ...) is what the
       * first single send would have reported and consumed; the datagrams after it were never
       * tried, so they go again as single sends rather than all failing. */
      mior__cqe *c = &out[(*n)++];
      c->op = MIOR__OP_TX;
      c->flags = 0;
      c->slot = g->slots[0];
      c->res = res;
      c->off = (uint32_t)g->iov[0].iov_len;
      r->tx_inflight -= g->count;
      g->done = 1;
      gso_requeue(r, g, 1);
      r->gso_free[r->gso_nfree++] = idx;
      return 1;
    }
  }
  if (res >= 0 && g->done == 0) {
    if (r->gso == GSO_PROBING) r->gso = GSO_CONFIRMED;
    r->cnt.gso_sends++;
  }
  while (g->done < g->count) {
    if (*n == max) return 0;
    mior__cqe *c = &out[(*n)++];
    uint32_t len = (uint32_t)g->iov[g->done].iov_len;
    c->op = MIOR__OP_TX;
    c->flags = g->whole ? MIOR__CQE_GSO : 0;
    c->seg = g->seg;
    c->slot = g->slots[g->done];
    /* The kernel sends a GSO batch whole or not at all: on success every datagram went out. */
    c->res = res < 0 ? res : (int32_t)len;
    c->off = len;
    g->done++;
    r->tx_inflight--;
  }
  r->gso_free[r->gso_nfree++] = idx;
  return 1;
}
