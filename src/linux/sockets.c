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
#include <netinet/udp.h>
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
#include "linux/direct.h"
#include "linux/rx_meta.h"

/* A queued send's own destination, per slot (a slot is queued once at a time). */
struct tx_dst {
  mior__sockaddr sa;
  socklen_t len;
};

/* UDP GSO (UDP_SEGMENT): at most this many datagrams in one send (UDP_MAX_SEGMENTS before 6.9),
 * and at most this many bytes, so that a mior GRO receiver's 64 KiB slot holds the send whole
 * (see src/linux/uring/uring.h). */
#define GSO_MAX_SEGS 64u
#define GSO_MAX_BYTES (65536u - 256u)

/* Control message room for one UDP_SEGMENT value (a GSO send). */
union ctl_buf {
  char buf[CMSG_SPACE(sizeof(int))];
  struct cmsghdr align;
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
  /* scratch for one sendmmsg: up to batch messages, each one datagram or one GSO send of up to
   * GSO_MAX_SEGS (its datagram count in msg_cnt, its segment size in gso_ctl) */
  struct mmsghdr *msgs;
  struct iovec *iov;
  uint32_t *msg_cnt;
  union ctl_buf *gso_ctl;
  int gso;              /* UDP GSO on (udp, not MIOR_OPT_NO_UDP_GSO, not refused) */
  int gso_confirmed;    /* a GSO send went out: a later EINVAL is about one segment size */
  uint32_t gso_max_seg; /* largest segment the path takes */
  int gro;              /* receive with UDP GRO: a coalesced buffer's segment size comes in rx_ctl */
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
  /* Control buffers: one per receive header, rx_ctl_space bytes each, for the metadata asked for
   * (MIOR_OPT_RX_*) and UDP GRO's segment size (NULL with neither), read by the one parser
   * (mior__rx_cmsg_meta); and per slot for sends that carry a source address or ECN codepoint
   * (made on the first one). */
  uint8_t *rx_ctl;
  uint32_t rx_ctl_space;
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

static int sockets_close(struct mior__io *r) {
  if (!r) return 0;
  free(r->rx_slots);
  mior__tx_fifo_free(&r->txq);
  free(r->dst);
  mior__cq_free(&r->cq);
  free(r->msgs);
  free(r->iov);
  free(r->msg_cnt);
  free(r->gso_ctl);
  free(r->rx_msgs);
  free(r->rx_iov);
  free(r->names_buf);
  free(r->rx_ctl);
  free(r->tx_ctl);
  free(r->tx_ctl_len);
  if (r->epfd >= 0) close(r->epfd);
  if (r->evfd >= 0) close(r->evfd);
  free(r);
  return 0;
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
  r->iov = calloc((size_t)r->batch * GSO_MAX_SEGS, sizeof *r->iov);
  r->msg_cnt = calloc(r->batch, sizeof *r->msg_cnt);
  r->gso_ctl = calloc(r->batch, sizeof *r->gso_ctl);
  r->rx_msgs = calloc(r->batch, sizeof *r->rx_msgs);
  r->rx_iov = calloc(r->batch, sizeof *r->rx_iov);
  r->names_buf = calloc(r->batch, sizeof *r->names_buf);
  r->rx_ctl_space = mior__rx_cmsg_space(cfg->opts->flags, r->sock->gro);
  if (r->rx_ctl_space) r->rx_ctl = calloc(r->batch, r->rx_ctl_space);
  if ((r->rx_ctl_space && !r->rx_ctl) || !r->rx_slots || !r->txq.q || !r->dst || !r->cq.q || !r->msgs || !r->iov ||
      !r->rx_msgs || !r->rx_iov || !r->names_buf || !r->msg_cnt || !r->gso_ctl) {
    sockets_close(r);
    return mior__fail(-ENOMEM, "out of memory");
  }
  r->names = r->sock->kind == MIOR__KIND_UDP;
  *features |= MIOR_FEAT_BATCH_SYSCALL;
  if (r->sock->gro) {
    r->gro = 1;
    *features |= MIOR_FEAT_UDP_GRO;
  }
  /* GSO as in the io_uring backend (src/linux/uring/tx.c, gso_setup): segments within the path
   * MTU of a connected socket, or an Ethernet MTU's without one. */
  if (r->sock->kind == MIOR__KIND_UDP && !(cfg->opts->flags & MIOR_OPT_NO_UDP_GSO)) {
    r->gso_max_seg = mior__socket_gso_max_seg(r->sock, GSO_MAX_BYTES);
    r->gso = 1;
    *features |= MIOR_FEAT_UDP_GSO;
  }
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

/* 1 if two queued sends go to the same place (both to the connected peer, or one address). */
static int same_dst(const struct mior__io *r, const mior__tx_rec *a, const mior__tx_rec *b) {
  if (a->has_dst != b->has_dst) return 0;
  if (!a->has_dst) return 1;
  /* A send with its own control messages (source address, ECN) goes alone. */
  if (r->tx_ctl_len && (r->tx_ctl_len[a->slot] || r->tx_ctl_len[b->slot])) return 0;
  const struct tx_dst *x = &r->dst[a->slot], *y = &r->dst[b->slot];
  return x->len == y->len && memcmp(&x->sa, &y->sa, x->len) == 0;
}

/* How many queued sends from i on go as one message: a GSO run (equal lengths to one
 * destination, the last possibly shorter, within the limits), or 1. */
static uint32_t gso_run(struct mior__io *r, uint32_t i) {
  const mior__tx_rec *first = mior__tx_fifo_at(&r->txq, i);
  uint32_t seg = first->len;
  if (!r->gso || seg == 0 || seg > r->gso_max_seg) return 1;
  if (r->tx_ctl_len && first->has_dst && r->tx_ctl_len[first->slot]) return 1;
  uint32_t n = 1, total = seg;
  while (i + n < r->txq.len && n < GSO_MAX_SEGS) {
    const mior__tx_rec *e = mior__tx_fifo_at(&r->txq, i + n);
    if (e->len == 0 || e->len > seg || total + e->len > GSO_MAX_BYTES || !same_dst(r, first, e)) break;
    total += e->len;
    n++;
    if (e->len < seg) break; /* a shorter datagram can only end a GSO send */
  }
  return n;
}

/* Errors that say the kernel or the route will not take a GSO send as built (see the io_uring
 * backend's gso_refused), rather than errors its datagrams would meet as single sends. */
static int gso_refused(int err) {
  return err == EINVAL || err == EIO || err == EOPNOTSUPP || err == EMSGSIZE;
}

static void do_tx(struct mior__io *r) {
  while (r->txq.len > 0) {
    uint32_t k = 0, used = 0;
    while (k < r->batch && used < r->txq.len) {
      uint32_t n = gso_run(r, used);
      struct iovec *iov = &r->iov[(size_t)k * GSO_MAX_SEGS];
      for (uint32_t j = 0; j < n; j++) {
        const mior__tx_rec *e = mior__tx_fifo_at(&r->txq, used + j);
        iov[j].iov_base = mior_pool_region_slot(&r->region, e->slot) + e->off;
        iov[j].iov_len = e->len;
      }
      const mior__tx_rec *e = mior__tx_fifo_at(&r->txq, used);
      struct msghdr *h = &r->msgs[k].msg_hdr;
      memset(h, 0, sizeof *h);
      h->msg_iov = iov;
      h->msg_iovlen = n;
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
      if (n > 1) {
        h->msg_control = r->gso_ctl[k].buf;
        h->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
        struct cmsghdr *cm = CMSG_FIRSTHDR(h);
        cm->cmsg_level = SOL_UDP;
        cm->cmsg_type = UDP_SEGMENT;
        cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t seg16 = (uint16_t)e->len;
        memcpy(CMSG_DATA(cm), &seg16, sizeof seg16);
      }
      r->msg_cnt[k] = n;
      used += n;
      k++;
    }
    int sent = sendmmsg(r->sock->fd, r->msgs, k, MSG_DONTWAIT);
    r->cnt.submits++;
    int err = sent < 0 ? errno : 0;
    if (sent < 0 && (err == EAGAIN || err == EINTR)) {
      r->tx_blocked = err == EAGAIN;
      return;
    }
    if (sent < 0 && r->msg_cnt[0] > 1 && gso_refused(err)) {
      /* The kernel refused the GSO send (no UDP GSO, no checksum offload on the route: EIO, as
       * Tailscale sees it; or a segment the path will not take).  Nothing went out: the same
       * datagrams go again, one by one from now on, or only smaller segments as GSO once GSO
       * has worked. */
      r->cnt.offload_refused++;
      uint32_t seg = (uint32_t)r->iov[0].iov_len;
      if (r->gso_confirmed && err != EIO && err != EOPNOTSUPP && seg > 1) {
        if (r->gso_max_seg >= seg) r->gso_max_seg = seg - 1;
      } else {
        r->gso = 0;
        r->cnt.features_off |= MIOR_FEAT_UDP_GSO;
      }
      continue;
    }
    /* A hard error is the first message's first datagram's (what a single send would have
     * reported and consumed): complete it as failed and go on with the rest. */
    uint32_t msgs_done = sent < 0 ? 1 : (uint32_t)sent;
    for (uint32_t i = 0; i < msgs_done; i++) {
      uint32_t n = sent < 0 ? 1 : r->msg_cnt[i];
      if (sent >= 0 && n > 1) {
        r->cnt.gso_sends++;
        r->gso_confirmed = 1;
      }
      for (uint32_t j = 0; j < n; j++) {
        const mior__tx_rec *e = mior__tx_fifo_at(&r->txq, 0);
        mior__cqe *c = mior__cq_push_slot(&r->cq);
        c->op = MIOR__OP_TX;
        c->slot = e->slot;
        /* The kernel sends a GSO send whole or not at all. */
        c->res = sent < 0 ? -err : (n > 1 ? (int32_t)e->len : (int32_t)r->msgs[i].msg_len);
        c->off = e->len;
        c->flags = 0;
        c->seg = 0;
        mior__tx_fifo_pop(&r->txq, 1);
      }
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
          h->msg_control = r->rx_ctl + (size_t)i * r->rx_ctl_space;
          h->msg_controllen = r->rx_ctl_space;
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
      c->seg = 0;
      uint32_t len = r->rx_msgs[i].msg_len;
      /* With MSG_TRUNC the length is the datagram's real one, so a cut is visible. */
      if (len > r->region.buf_size || (r->rx_msgs[i].msg_hdr.msg_flags & MSG_TRUNC)) {
        c->flags = MIOR__CQE_TRUNC;
        if (len > r->region.buf_size) len = r->region.buf_size;
      }
      c->res = (int32_t)len;
      if (r->names) mior__sockaddr_to(&r->names_buf[i].sa, r->rx_msgs[i].msg_hdr.msg_namelen, &c->src);
      else c->src.family = MIOR_AF_UNSPEC;
      if (r->rx_ctl) mior__rx_cmsg_meta(&r->rx_msgs[i].msg_hdr, c); /* metadata, GRO segment size */
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

static int sockets_rx_direct(struct mior__io *r, uint32_t slot, mior__cqe *c) {
  r->cnt.submits++;
  return mior__linux_rx_direct(r->sock, &r->region, r->rx_ctl_space, slot, c);
}

static int sockets_tx_direct(struct mior__io *r, const uint8_t *data, uint32_t len, const mior_addr *dst) {
  r->cnt.submits++;
  return mior__linux_tx_direct(r->sock, data, len, dst);
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
    .rx_direct = sockets_rx_direct,
    .tx_direct = sockets_tx_direct,
    .outstanding = sockets_outstanding,
    .counters = sockets_counters,
    .close = sockets_close,
    .event_open = sockets_event_open,
    .event_clear = sockets_event_clear,
    .event_done = sockets_event_done,
    .tx_queue_meta = sockets_tx_queue_meta,
    .rx_meta_opts = MIOR__RX_META_OPTS,
    .rx_coalesce = mior__socket_gro_supported,
};
