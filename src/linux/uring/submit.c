/* The io_uring backend: entering the kernel, submit and the reap dispatch (see uring.h). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "linux/uring/uring.h"

/* --- entering the kernel --------------------------------------------------------------------
 *
 * stats.submits is the number of io_uring_enter system calls the port made, exactly, so that it
 * says what the data path costs.  liburing decides by itself whether a call enters: io_uring_submit
 * does not with nothing to submit, nor on an SQPOLL ring whose poller is awake, while
 * io_uring_submit_and_get_events always does, and its waiting calls may enter twice.  Counting
 * calls of those functions therefore counted calls that made no system call and missed some that
 * did.  Here the decision is ours and every enter goes through ring_enter, which counts it.  The
 * rules are liburing's: publish the SQ tail; enter to submit unless an awake SQPOLL poller takes
 * the entries from memory (its IORING_SQ_NEED_WAKEUP clear); enter when the kernel flags an
 * overflowed CQ or pending task work (IORING_SQ_CQ_OVERFLOW, IORING_SQ_TASKRUN); and enter to
 * wait.  The io_uring_register calls made when a port is first driven (enabling the ring,
 * registering its fd) are set-up, not the data path, and are not counted. */


/* Make the prepared SQEs visible to the kernel (what liburing 2.3's unexported
 * __io_uring_flush_sq does) and return how many it has not taken yet. */
unsigned mior__uring_sq_flush(struct mior__io *r) {
  struct io_uring_sq *sq = &r->ring.sq;
  unsigned tail = sq->sqe_tail;
  if (sq->sqe_head != tail) {
    sq->sqe_head = tail;
    /* Release: an SQPOLL poller must see the entries before the tail that covers them. */
    io_uring_smp_store_release(sq->ktail, tail);
  }
  return tail - io_uring_smp_load_acquire(sq->khead);
}

static inline int sqpoll(const struct mior__io *r) {
  return (r->ring.flags & IORING_SETUP_SQPOLL) != 0;
}

/* IORING_ENTER_SQ_WAKEUP when n entries are published on an SQPOLL ring whose poller has gone to
 * sleep (it sets IORING_SQ_NEED_WAKEUP after sq_thread_idle without work), else 0. */
unsigned mior__uring_sq_wakeup(struct mior__io *r, unsigned n) {
  if (!n || !sqpoll(r)) return 0;
  /* The tail store above must be visible before the flag is read, or the poller could go to sleep
   * between the two without seeing the new entries (liburing has the same barrier). */
  io_uring_smp_mb();
  return (IO_URING_READ_ONCE(*r->ring.sq.kflags) & IORING_SQ_NEED_WAKEUP) ? IORING_ENTER_SQ_WAKEUP : 0;
}

/* The kernel holds completions it can post only inside an enter: an overflowed CQ, or task work
 * flagged by COOP_TASKRUN|TASKRUN_FLAG. */
static int cq_needs_enter(const struct mior__io *r) {
  return (IO_URING_READ_ONCE(*r->ring.sq.kflags) & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)) != 0;
}

/* One io_uring_enter, counted.  ts (with IORING_FEAT_EXT_ARG) bounds a wait. */
int mior__uring_enter(struct mior__io *r, unsigned to_submit, unsigned min_complete, unsigned flags,
                      struct __kernel_timespec *ts) {
  struct io_uring_getevents_arg arg;
  void *argp = NULL;
  size_t argsz = _NSIG / 8;
  if (ts) {
    memset(&arg, 0, sizeof arg);
    arg.ts = (uint64_t)(uintptr_t)ts;
    argp = &arg;
    argsz = sizeof arg;
    flags |= IORING_ENTER_EXT_ARG;
  }
  /* io_uring_register_ring_fd (at bind_thread) replaces enter_ring_fd with the registered index.
   * Should that index happen to equal the ring's fd, entering with the plain fd reaches the same
   * ring, so the comparison is always right. */
  if (r->ring.enter_ring_fd != r->ring.ring_fd) flags |= IORING_ENTER_REGISTERED_RING;
  r->cnt.submits++;
  return io_uring_enter2((unsigned)r->ring.enter_ring_fd, to_submit, min_complete, flags, argp, argsz);
}

/* Submit what is prepared, entering only when the kernel needs it (see above).  getevents: also
 * collect completions; a DEFER_TASKRUN ring posts them only inside an enter that asks, so then it
 * enters even with nothing to submit.  Returns what io_uring_enter returned, or 0 without one. */
int mior__uring_submit_now(struct mior__io *r, int getevents) {
  unsigned n = mior__uring_sq_flush(r);
  unsigned flags = mior__uring_sq_wakeup(r, n);
  int enter = flags != 0 || (n && !sqpoll(r)) || (getevents && r->defer_taskrun);
  if (cq_needs_enter(r)) enter = getevents = 1;
  if (!enter) return 0;
  return mior__uring_enter(r, n, 0, flags | (getevents ? IORING_ENTER_GETEVENTS : 0), NULL);
}

/* A free SQE, submitting what is already prepared when the queue is full.  NULL only if the
 * kernel would not take any (then the rest waits for the next submit). */
struct io_uring_sqe *mior__uring_get_tx_sqe(struct mior__io *r) {
  struct io_uring_sqe *sqe = mior__uring_sqe(r);
  if (MIOR_UNLIKELY(!sqe)) {
    /* An SQPOLL poller that is awake takes the entries without an enter; then there is room only
     * once it has, which the retry below may or may not find. */
    if (mior__uring_submit_now(r, 0) < 0) return NULL;
    sqe = mior__uring_sqe(r);
    if (!sqe) return NULL;
  }
  r->tx_sqes++;
  return sqe;
}

/* A wait that counts on completions besides those of its own sends ends after this long even if
 * none came, so that a caller whose only outstanding work was those sends is not kept waiting (see
 * uring_submit).  A round trip that takes longer costs one more enter per millisecond, which is
 * noise; a caller stuck for its whole timeout would not be. */
#define OWN_SEND_WAIT_US 1000

int mior__uring_submit(struct mior__io *r, int wait, int64_t timeout_us) {
  /* What was outstanding before this call's sends: an earlier send still in flight. */
  uint32_t tx_before = r->tx_inflight, sqes_before = r->tx_sqes;
  if (r->txr) mior__uring_txring_submit(r);
  else if (r->txq.len) mior__uring_tx_prepare(r);
  int ret = mior__uring_rx_arm(r);
  if (MIOR_UNLIKELY(ret < 0)) return ret;
  /* Records made in user space (frames copied into the TX ring, slots taken back from the buffer
   * ring) are ready without the kernel: then no wait. */
  if (wait && io_uring_cq_ready(&r->ring) == 0 && r->done_len == 0 && r->ret_len == 0) {
    /* One enter submits, runs the deferred task work and waits.  A send it submits normally
     * completes inside that same enter, and its completion would end the wait at once: a port
     * that sends a ping and waits for the pong would enter twice per round trip.  So when
     * something else can complete (a receive armed, an earlier send in flight) the wait is for
     * `wait` completions more than this call's own sends, each of which makes exactly one.  Should
     * nothing else come, the wait ends after OWN_SEND_WAIT_US with just those. */
    unsigned own = r->tx_sqes - sqes_before;
    unsigned want = (unsigned)wait;
    if (own && (r->posted || r->ms_armed || tx_before)) {
      want += own;
      if (timeout_us < 0 || timeout_us > OWN_SEND_WAIT_US) timeout_us = OWN_SEND_WAIT_US;
    }
    struct __kernel_timespec ts;
    ts.tv_sec = timeout_us / 1000000;
    ts.tv_nsec = (timeout_us % 1000000) * 1000;
    if (timeout_us < 0 || (r->ring.features & IORING_FEAT_EXT_ARG)) {
      unsigned n = mior__uring_sq_flush(r);
      ret = mior__uring_enter(r, n, want, mior__uring_sq_wakeup(r, n) | IORING_ENTER_GETEVENTS, timeout_us >= 0 ? &ts : NULL);
    } else {
      /* Before Linux 5.11 a timed wait needs a timeout SQE, which liburing queues; it may then
       * enter twice, so on those kernels submits can be one short per timed wait. */
      struct io_uring_cqe *cqe;
      ret = io_uring_submit_and_wait_timeout(&r->ring, &cqe, want, &ts, NULL);
      r->cnt.submits++;
    }
  } else {
    /* On a DEFER_TASKRUN ring this enters even with nothing to submit, since its completions are
     * posted only when asked for; that is one call per batch, not per packet.  An SQPOLL ring's
     * completions are read from memory, and its poller takes the entries while it is awake, so it
     * enters only to wake the poller.  It used to enter whenever entries were still unconsumed,
     * as every other ring does: 1321 enters for 64k datagrams with SQPOLL against 1101 without,
     * and 12869 to 32088 in test_transport_syscalls, whose sender polls without waiting. */
    ret = mior__uring_submit_now(r, 1);
  }
  /* The kernel's own count of completions it dropped.  Since Linux 5.5 (IORING_FEAT_NODROP) a
   * full CQ makes it keep them on a list, which the next enter flushes, and it drops one only when
   * it cannot allocate that list's entry: this counts lost completions, not full CQs. */
  r->cnt.cq_overflow = IO_URING_READ_ONCE(*r->ring.cq.koverflow);
  /* -EBADR: completions were dropped (counted just above); the kernel reports it once. */
  if (ret >= 0 || ret == -ETIME || ret == -EINTR || ret == -EAGAIN || ret == -EBUSY || ret == -EBADR)
    return 0;
  return mior__fail(ret, "io_uring_enter: %s", strerror(-ret));
}

/* Move up to max completions to out: records made in user space first (frames copied into the
 * TX ring, slots taken back from the buffer ring), then the CQ, one small function per kind. */
uint32_t mior__uring_reap(struct mior__io *r, mior__cqe *out, uint32_t max) {
  struct io_uring_cqe *cqe;
  unsigned head, seen = 0;
  uint32_t n = 0, nrx = 0;
  int rekick = 0;
  if (r->done_len) n = mior__uring_done_reap(r, out, max);
  if (MIOR_UNLIKELY(r->ret_len)) n += mior__uring_rx_returned(r, out + n, max - n);
  io_uring_for_each_cqe(&r->ring, head, cqe) {
    if (n == max) break;
    uint64_t ud = cqe->user_data;
    switch (UD_OP(ud)) {
    case UD_GSO:
      /* One completion for a whole GSO send: a record per slot, resumed at the next reap when
       * `out` fills up first. */
      if (!mior__uring_gso_complete(r, &r->gso_recs[UD_SLOT(ud)], UD_SLOT(ud), cqe->res, out, max, &n))
        goto done;
      break;
    case UD_TX: n += mior__uring_reap_send(r, cqe, &out[n]); break;
    case UD_RX:
      nrx++;
      n += mior__uring_reap_posted(r, cqe, &out[n]);
      break;
    case UD_MULTISHOT: n += mior__uring_reap_multishot(r, cqe, &out[n]); break;
    case UD_KICK:
      if (r->kick_skip) r->kick_skip--; /* handled by kick_scan already */
      else rekick |= mior__uring_kick_done(r, cqe->res);
      break;
    case UD_RING_WAIT: r->ring_wait = 0; break;
    default: break; /* cancel requests carry no slot */
    }
    seen++;
  }
done:
  if (nrx) mior__uring_rx_allow_update(r, nrx);
  io_uring_cq_advance(&r->ring, seen);
  /* Frames marked while the kick was in flight, or left behind by it: kick again now, not at the
   * port's next submit, which may be long in coming if the port only sends now and then. */
  if (rekick && r->kick_needed && !r->kick_inflight) {
    mior__uring_kick(r);
    if (r->kick_inflight) mior__uring_submit_now(r, 0);
  }
  return n;
}
