/* The sockets backend: recvmmsg/sendmmsg behind the same contract as the rings.
 *
 * It is both the fallback where io_uring cannot run (kernel.io_uring_disabled, seccomp, old
 * kernels) and the baseline mior-perf measures io_uring against, so it is written the way a careful
 * user would write it by hand: batches of up to `batch` datagrams per system call, non-blocking
 * calls, and ppoll() only when there is nothing to do.
 *
 * "Completions" are produced synchronously by submit() into a local queue that reap() drains.
 * Every slot handed in comes back through that queue exactly once.
 */
#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cq_fifo.h"
#include "common/tx_fifo.h"
#include "common/internal.h"
#include "common/socket.h"
#include "linux/rx_meta.h"

/* A queued send's own destination, per slot (a slot is queued once at a time). */
struct tx_dst {
  mior__sockaddr sa;
  socklen_t len;
};

struct mior__io {
  mior__sock *sock;    /* the port's socket (the port opened it; close may close it) */
  mior_pool_region region;
  mior__backend_counters cnt; /* this backend's own counters (ops.counters) */
  uint32_t batch;
  int names;
  /* receive: slots posted, used from the top (LIFO keeps caches warm) */
  uint32_t *rx_slots;
  uint32_t rx_len, rx_cap;
  /* transmit: a FIFO of queued sends, and their destinations by slot */
  mior__tx_fifo txq;
  struct tx_dst *dst;
  int tx_blocked;   /* last sendmmsg hit EAGAIN: wait for POLLOUT */
  /* completions waiting to be reaped (a FIFO) */
  mior__cq_fifo cq;  /* completions ready for reap */
  /* scratch for one sendmmsg */
  struct mmsghdr *msgs;
  struct iovec *iov;
  /* recvmmsg's headers, kept apart: a busy-polling port calls recvmmsg on an empty socket over
   * and over, and rebuilding a batch of headers each time cost more than the call (11% of a
   * busy ping-pong's profile).  They are rebuilt only when the posted slots change: a receive,
   * a post or a cancel resets rx_prep_k. */
  struct mmsghdr *rx_msgs;
  struct iovec *rx_iov;
  mior__sockaddr *names_buf;
  uint32_t rx_prep_k, rx_prep_n; /* headers built for the top rx_prep_k of rx_len posted slots */
  /* Busy-polling ports (busy_poll_us > 0): after two empty looks in a row the next recvmmsg asks
   * for one datagram, so the first one after a quiet spell is handed over at once instead of after
   * recvmmsg's failed try for a second (about 0.2 us, on a ping-pong's critical path at each end). */
  int spin_single;
  uint32_t rx_empty; /* recvmmsg calls in a row that found nothing */
  /* Per-packet metadata: a control buffer per receive header (MIOR_OPT_RX_*, else NULL), and per
   * slot for sends that carry a source address or ECN codepoint (made on the first one). */
  uint8_t *rx_ctl;
  uint8_t *tx_ctl;
  socklen_t *tx_ctl_len;
  /* The event handle: an epoll descriptor over the socket and an eventfd of our own, which says
   * "work left" (completions queued here, a budget that ran out).  -1 until asked for. */
  int epfd, evfd;
  int ev_signalled;
  /* The last do_rx may have left datagrams in the socket (it ran out of posted slots or of
   * completion room, or read one at a time): with the handle open, the next work call must come
   * without a new datagram's wake-up, which an edge-triggered waiter would not get. */
  int rx_more;
};

static int sockets_supported(char *why, size_t len) {
  (void)why;
  (void)len;
  return 1;
}

static void sockets_close(struct mior__io *r) {
  if (!r) return;
  free(r->rx_slots);
  mior__tx_fifo_free(&r->txq);
  free(r->dst);
  mior__cq_free(&r->cq);
  free(r->msgs);
  free(r->iov);
  free(r->rx_msgs);
  free(r->rx_iov);
  free(r->names_buf);
  free(r->rx_ctl);
  free(r->tx_ctl);
  free(r->tx_ctl_len);
  if (r->epfd >= 0) close(r->epfd);
  if (r->evfd >= 0) close(r->evfd);
  free(r);
}

static int sockets_open(struct mior__io **out, const mior__io_cfg *cfg, uint32_t *features) {
  struct mior__io *r = calloc(1, sizeof *r);
  if (!r) return mior__fail(-ENOMEM, "out of memory");
  r->epfd = r->evfd = -1;
  r->sock = cfg->sock;
  r->region = cfg->region;
  r->batch = cfg->opts->batch;
  r->spin_single = cfg->opts->busy_poll_us > 0;
  r->rx_cap = r->region.buf_count;
  r->rx_slots = malloc(r->rx_cap * sizeof *r->rx_slots);
  mior__tx_fifo_init(&r->txq, r->region.buf_count);
  r->dst = malloc((size_t)r->region.buf_count * sizeof *r->dst);
  mior__cq_init(&r->cq, r->region.buf_count);
  r->msgs = calloc(r->batch, sizeof *r->msgs);
  r->iov = calloc(r->batch, sizeof *r->iov);
  r->rx_msgs = calloc(r->batch, sizeof *r->rx_msgs);
  r->rx_iov = calloc(r->batch, sizeof *r->rx_iov);
  r->names_buf = calloc(r->batch, sizeof *r->names_buf);
  int meta = (cfg->opts->flags & MIOR__RX_META_OPTS) != 0;
  if (meta) r->rx_ctl = calloc(r->batch, MIOR__RX_CMSG_SPACE);
  if ((meta && !r->rx_ctl) || !r->rx_slots || !r->txq.q || !r->dst || !r->cq.q || !r->msgs || !r->iov || !r->rx_msgs || !r->rx_iov ||
      !r->names_buf) {
    sockets_close(r);
    return mior__fail(-ENOMEM, "out of memory");
  }
  r->names = r->sock->kind == MIOR__KIND_UDP;
  *features |= MIOR_FEAT_BATCH_SYSCALL;
  *out = r;
  return 0;
}

static int sockets_bind_thread(struct mior__io *r) {
  (void)r;
  return 0;
}

/* An error without a slot (e.g. ICMP port unreachable reported on receive).  If the queue is
 * full of them the newest is dropped: it is a counter, not data. */
static void cq_error(struct mior__io *r, uint32_t op, int err) {
  /* buf_count entries stay reserved for slot records, which therefore never find it full. */
  if (r->cq.len >= r->cq.cap - r->region.buf_count) return;
  mior__cqe *c = mior__cq_push_spare(&r->cq);
  if (!c) return;
  memset(c, 0, sizeof *c);
  c->op = op;
  c->slot = MIOR__NO_SLOT;
  c->res = -err;
}

static uint32_t sockets_rx_post(struct mior__io *r, const uint32_t *slots, uint32_t n) {
  uint32_t room = r->rx_cap - r->rx_len;
  if (n > room) n = room;
  memcpy(r->rx_slots + r->rx_len, slots, n * sizeof *slots);
  r->rx_len += n;
  r->rx_prep_k = 0;
  return n;
}

static int sockets_tx_queue(struct mior__io *r, uint32_t slot, uint32_t off, uint32_t len,
                            const mior_addr *dst) {
  if (dst) r->dst[slot].len = mior__sockaddr_from(dst, &r->dst[slot].sa);
  if (r->tx_ctl_len) r->tx_ctl_len[slot] = 0;
  return mior__tx_fifo_push(&r->txq, slot, off, len, dst != NULL);
}

/* A send with a source address or ECN codepoint: its control messages wait beside the slot, and
 * has_dst says "this slot's header storage is in use" (with or without an address). */
static int sockets_tx_queue_meta(struct mior__io *r, uint32_t slot, uint32_t off, uint32_t len,
                                 const mior_addr *dst, uint32_t flags, const mior__pkt_meta *m) {
  if (!r->tx_ctl) {
    r->tx_ctl = malloc((size_t)r->region.buf_count * MIOR__TX_CMSG_SPACE);
    r->tx_ctl_len = calloc(r->region.buf_count, sizeof *r->tx_ctl_len);
    if (!r->tx_ctl || !r->tx_ctl_len) {
      free(r->tx_ctl);
      free(r->tx_ctl_len);
      r->tx_ctl = NULL;
      r->tx_ctl_len = NULL;
      return mior__fail(-ENOMEM, "out of memory for send metadata");
    }
  }
  r->dst[slot].len = dst ? mior__sockaddr_from(dst, &r->dst[slot].sa) : 0;
  r->tx_ctl_len[slot] = mior__tx_cmsg_meta(r->tx_ctl + (size_t)slot * MIOR__TX_CMSG_SPACE,
                                           MIOR__TX_CMSG_SPACE, r->sock->family, flags, m);
  return mior__tx_fifo_push(&r->txq, slot, off, len, 1);
}

static void do_tx(struct mior__io *r) {
  while (r->txq.len > 0) {
    uint32_t k = r->txq.len < r->batch ? r->txq.len : r->batch;
    for (uint32_t i = 0; i < k; i++) {
      const mior__tx_rec *e = mior__tx_fifo_at(&r->txq, i);
      r->iov[i].iov_base = mior_pool_region_slot(&r->region, e->slot) + e->off;
      r->iov[i].iov_len = e->len;
      struct msghdr *h = &r->msgs[i].msg_hdr;
      memset(h, 0, sizeof *h);
      h->msg_iov = &r->iov[i];
      h->msg_iovlen = 1;
      if (e->has_dst) {
        if (r->dst[e->slot].len) {
          h->msg_name = &r->dst[e->slot].sa;
          h->msg_namelen = r->dst[e->slot].len;
        }
        if (r->tx_ctl_len && r->tx_ctl_len[e->slot]) {
          h->msg_control = r->tx_ctl + (size_t)e->slot * MIOR__TX_CMSG_SPACE;
          h->msg_controllen = r->tx_ctl_len[e->slot];
        }
      }
    }
    int sent = sendmmsg(r->sock->fd, r->msgs, k, MSG_DONTWAIT);
    r->cnt.submits++;
    int err = sent < 0 ? errno : 0;
    if (sent < 0 && (err == EAGAIN || err == EINTR)) {
      r->tx_blocked = err == EAGAIN;
      return;
    }
    /* A hard error is the first message's: complete it as failed and go on with the rest. */
    uint32_t done = sent < 0 ? 1 : (uint32_t)sent;
    for (uint32_t i = 0; i < done; i++) {
      const mior__tx_rec *e = mior__tx_fifo_at(&r->txq, 0);
      mior__cqe *c = mior__cq_push_slot(&r->cq);
      c->op = MIOR__OP_TX;
      c->slot = e->slot;
      c->res = sent < 0 ? -err : (int32_t)r->msgs[i].msg_len;
      c->off = e->len;
      c->flags = 0;
      mior__tx_fifo_pop(&r->txq, 1);
    }
    r->tx_blocked = 0;
  }
}

static void do_rx(struct mior__io *r) {
  r->rx_more = 1; /* until a recvmmsg shows the socket drained */
  while (r->rx_len > 0 && r->cq.len + r->batch <= r->cq.cap) {
    uint32_t kfull = r->rx_len < r->batch ? r->rx_len : r->batch;
    if (r->rx_prep_k != kfull || r->rx_prep_n != r->rx_len) {
      for (uint32_t i = 0; i < kfull; i++) {
        uint32_t slot = r->rx_slots[r->rx_len - 1 - i];
        r->rx_iov[i].iov_base = mior_pool_region_slot(&r->region, slot);
        r->rx_iov[i].iov_len = r->region.buf_size;
        struct msghdr *h = &r->rx_msgs[i].msg_hdr;
        memset(h, 0, sizeof *h);
        h->msg_iov = &r->rx_iov[i];
        h->msg_iovlen = 1;
        if (r->names) {
          h->msg_name = &r->names_buf[i];
          h->msg_namelen = sizeof r->names_buf[i];
        }
        if (r->rx_ctl) {
          h->msg_control = r->rx_ctl + (size_t)i * MIOR__RX_CMSG_SPACE;
          h->msg_controllen = MIOR__RX_CMSG_SPACE;
        }
      }
      r->rx_prep_k = kfull;
      r->rx_prep_n = r->rx_len;
    }
    /* The headers of the top kfull slots serve any k up to kfull. */
    int single = r->spin_single && r->rx_empty >= 2;
    uint32_t k = single ? 1 : kfull;
    int got = recvmmsg(r->sock->fd, r->rx_msgs, k, MSG_DONTWAIT | MSG_TRUNC, NULL);
    r->cnt.submits++;
    if (got <= 0) {
      /* Nothing was received, so the kernel wrote nothing back: the headers stay valid. */
      if (got < 0 && errno != EAGAIN && errno != EINTR) cq_error(r, MIOR__OP_RX, errno);
      if (r->rx_empty < 2) r->rx_empty++;
      r->rx_more = 0;
      return;
    }
    r->rx_empty = 0;
    r->rx_prep_k = 0; /* names and lengths were written back: rebuild next time */
    for (int i = 0; i < got; i++) {
      mior__cqe *c = mior__cq_push_slot(&r->cq);
      c->op = MIOR__OP_RX;
      c->slot = r->rx_slots[r->rx_len - 1 - (uint32_t)i];
      c->off = 0;
      c->flags = 0;
      uint32_t len = r->rx_msgs[i].msg_len;
      /* With MSG_TRUNC the length is the datagram's real one, so a cut is visible. */
      if (len > r->region.buf_size || (r->rx_msgs[i].msg_hdr.msg_flags & MSG_TRUNC)) {
        c->flags = MIOR__CQE_TRUNC;
        if (len > r->region.buf_size) len = r->region.buf_size;
      }
      c->res = (int32_t)len;
      if (r->names) mior__sockaddr_to(&r->names_buf[i].sa, r->rx_msgs[i].msg_hdr.msg_namelen, &c->src);
      else c->src.family = MIOR_AF_UNSPEC;
      if (r->rx_ctl) mior__rx_cmsg_meta(&r->rx_msgs[i].msg_hdr, c);
      /* An empty datagram is delivered; zero bytes from nobody is a shut-down socket's end of
       * data, not a datagram. */
      if (len == 0 && (!r->names || r->rx_msgs[i].msg_hdr.msg_namelen == 0)) c->res = -EAGAIN;
    }
    r->rx_len -= (uint32_t)got;
    if (!single && (uint32_t)got < k) r->rx_more = 0; /* drained the socket */
    if (single || (uint32_t)got < k) return; /* deliver at once, or drained the socket */
  }
}

static int sockets_submit(struct mior__io *r, int wait, int64_t timeout_us) {
  do_tx(r);
  do_rx(r);
  if (!wait || r->cq.len > 0) return 0;
  struct pollfd pfd = {.fd = r->sock->fd, .events = 0, .revents = 0};
  if (r->rx_len) pfd.events |= POLLIN;
  if (r->txq.len) pfd.events |= POLLOUT;
  if (!pfd.events) return 0;
  struct timespec ts, *tsp = NULL;
  if (timeout_us >= 0) {
    ts.tv_sec = timeout_us / 1000000;
    ts.tv_nsec = (timeout_us % 1000000) * 1000;
    tsp = &ts;
  }
  int rc = ppoll(&pfd, 1, tsp, NULL);
  /* submits counts this backend's system calls on the data path, the wait included. */
  r->cnt.submits++;
  if (rc < 0 && errno != EINTR) return mior__fail(-errno, "ppoll: %s", strerror(errno));
  if (rc > 0) {
    do_tx(r);
    do_rx(r);
  }
  return 0;
}

static uint32_t sockets_reap(struct mior__io *r, mior__cqe *out, uint32_t max) {
  return mior__cq_take(&r->cq, out, max);
}

static int sockets_cancel(struct mior__io *r) {
  while (r->txq.len) {
    const mior__tx_rec *e = mior__tx_fifo_at(&r->txq, 0);
    mior__cqe *c = mior__cq_push_slot(&r->cq);
    memset(c, 0, sizeof *c);
    c->op = MIOR__OP_TX;
    c->slot = e->slot;
    c->res = -ECANCELED;
    c->off = e->len;
    mior__tx_fifo_pop(&r->txq, 1);
  }
  while (r->rx_len) {
    mior__cqe *c = mior__cq_push_slot(&r->cq);
    memset(c, 0, sizeof *c);
    c->op = MIOR__OP_RX;
    c->slot = r->rx_slots[--r->rx_len];
    r->rx_prep_k = 0;
    c->res = -ECANCELED;
  }
  return 0;
}

static uint32_t sockets_outstanding(struct mior__io *r) {
  return r->rx_len + r->txq.len;
}

static void sockets_counters(const struct mior__io *r, mior__backend_counters *out) {
  *out = r->cnt;
}

static int sockets_event_open(struct mior__io *r, mior_handle *out) {
  if (r->epfd < 0) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return mior__fail(-errno, "epoll_create1: %s", strerror(errno));
    int ev = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ev < 0) {
      int err = errno;
      close(ep);
      return mior__fail(-err, "eventfd: %s", strerror(err));
    }
    /* Level-triggered inside: the socket keeps the descriptor readable while a datagram waits. */
    struct epoll_event e1 = {.events = EPOLLIN, .data = {.u32 = 0}};
    struct epoll_event e2 = {.events = EPOLLIN, .data = {.u32 = 1}};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, r->sock->fd, &e1) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e2) < 0) {
      int err = errno;
      close(ep);
      close(ev);
      return mior__fail(-err, "epoll_ctl: %s", strerror(err));
    }
    r->epfd = ep;
    r->evfd = ev;
  }
  *out = r->epfd;
  return 0;
}

/* Only this backend writes the eventfd, so it is read only when it was written. */
static void sockets_event_clear(struct mior__io *r) {
  if (!r->ev_signalled) return;
  uint64_t v;
  if (read(r->evfd, &v, sizeof v) < 0) { /* EAGAIN: nothing to clear */ }
  r->ev_signalled = 0;
}

/* Written every time work is left, also when it was written before: each write is a new edge
 * for an edge-triggered waiter, which one left pending from an earlier write is not. */
static void sockets_event_done(struct mior__io *r, int more) {
  if (!(more || r->cq.len || r->txq.len || (r->rx_more && r->rx_len))) return;
  uint64_t one = 1;
  if (write(r->evfd, &one, sizeof one) == (ssize_t)sizeof one) r->ev_signalled = 1;
}

const mior__backend_ops mior__sockets_ops = {
    .id = MIOR_BACKEND_SOCKETS,
    .name = "sockets",
    .supported = sockets_supported,
    .open = sockets_open,
    .bind_thread = sockets_bind_thread,
    .rx_post = sockets_rx_post,
    .tx_queue = sockets_tx_queue,
    .submit = sockets_submit,
    .reap = sockets_reap,
    .cancel = sockets_cancel,
    .outstanding = sockets_outstanding,
    .counters = sockets_counters,
    .close = sockets_close,
    .event_open = sockets_event_open,
    .event_clear = sockets_event_clear,
    .event_done = sockets_event_done,
    .tx_queue_meta = sockets_tx_queue_meta,
    .rx_meta_opts = MIOR__RX_META_OPTS,
};
