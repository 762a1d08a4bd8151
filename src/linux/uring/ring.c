/* The io_uring backend: the ring's life (see uring.h for the other files).
 *
 * One ring per port.  The pool region is registered once (fixed buffers) and the socket as fixed
 * file 0.  Set-up tries the newest flags first and falls back on -EINVAL, as liburing's own tests
 * do: SINGLE_ISSUER|DEFER_TASKRUN (6.1), then COOP_TASKRUN (5.19), then plain.  The ring is created
 * disabled (R_DISABLED) and enabled by the thread that drives the port, because SINGLE_ISSUER binds
 * the ring to the task that enables it, and that is usually not the thread that opened it.
 */
#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/os.h"
#include "linux/direct.h"
#include "linux/uring/uring.h"

int mior__kernel_at_least(int major, int minor) {
  struct utsname u;
  int ma = 0, mi = 0;
  if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2) return 0;
  return ma > major || (ma == major && mi >= minor);
}

static int uring_supported(char *why, size_t len) {
  const char *env = mior__getenv("MIOR_DISABLE_URING");
  if (env && env[0] && strcmp(env, "0") != 0) {
    snprintf(why, len, "disabled by MIOR_DISABLE_URING");
    return 0;
  }
  struct io_uring ring;
  int rc = io_uring_queue_init(2, &ring, 0);
  if (rc < 0) {
    char sysctl[16] = "";
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
    if (f) {
      if (fgets(sysctl, sizeof sysctl, f)) sysctl[strcspn(sysctl, "\n")] = '\0';
      fclose(f);
    }
    snprintf(why, len, "io_uring_setup: %s%s%s%s", strerror(-rc), sysctl[0] ? " (kernel.io_uring_disabled=" : "",
             sysctl, sysctl[0] ? ")" : "");
    return 0;
  }
  io_uring_queue_exit(&ring);
  return 1;
}

static int setup_ring(struct mior__io *r, const mior_options *o, uint32_t *features) {
  static const unsigned base = IORING_SETUP_CQSIZE | IORING_SETUP_R_DISABLED | IORING_SETUP_SUBMIT_ALL;
  unsigned tries[4];
  int n = 0;
  if (o->flags & MIOR_OPT_SQPOLL) {
    tries[n++] = IORING_SETUP_SQPOLL | IORING_SETUP_SINGLE_ISSUER;
    tries[n++] = IORING_SETUP_SQPOLL;
  } else {
    if (!(o->flags & MIOR_OPT_NO_DEFER_TASKRUN))
      /* TASKRUN_FLAG: the kernel flags pending task work in the SQ ring, which the event handle
       * reads (uring_event_done) to know that work arrived that its eventfd signal announced
       * before a clear. */
      tries[n++] = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    tries[n++] = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    tries[n++] = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    tries[n++] = 0;
  }
  int rc = -EINVAL;
  /* SUBMIT_ALL is 5.18: on older kernels every combination fails with -EINVAL, so a second pass
   * goes without it. */
  for (int i = 0; i < 2 * n; i++) {
    unsigned f = tries[i % n]; /* the second pass goes through the same list */
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = (i < n ? base : base & ~(unsigned)IORING_SETUP_SUBMIT_ALL) | f;
    p.cq_entries = o->cq_entries;
    if (f & IORING_SETUP_SQPOLL) p.sq_thread_idle = 50;
    rc = io_uring_queue_init_params(o->sq_entries, &r->ring, &p);
    if (rc == 0) {
      r->single_issuer = (f & IORING_SETUP_SINGLE_ISSUER) != 0;
      r->defer_taskrun = (f & IORING_SETUP_DEFER_TASKRUN) != 0;
      r->sqpoll = (f & IORING_SETUP_SQPOLL) != 0;
      r->int_flags0 = r->ring.int_flags;
      if (r->single_issuer) *features |= MIOR_FEAT_SINGLE_ISSUER;
      if (r->defer_taskrun) *features |= MIOR_FEAT_DEFER_TASKRUN;
      if (f & IORING_SETUP_COOP_TASKRUN) *features |= MIOR_FEAT_COOP_TASKRUN;
      if (f & IORING_SETUP_SQPOLL) *features |= MIOR_FEAT_SQPOLL;
      return 0;
    }
    if (rc != -EINVAL) break;
  }
  return mior__fail(rc, "io_uring_queue_init(%u entries): %s%s", o->sq_entries, strerror(-rc),
                    rc == -ENOMEM ? " (RLIMIT_MEMLOCK too low?)" : "");
}

static int register_buffers(struct mior__io *r) {
  uint32_t chunks = (uint32_t)((r->region.len + (1ull << REG_CHUNK_SHIFT) - 1) >> REG_CHUNK_SHIFT);
  struct iovec iov[16];
  if (chunks > 16) return -E2BIG;
  for (uint32_t i = 0; i < chunks; i++) {
    size_t off = (size_t)i << REG_CHUNK_SHIFT;
    size_t left = r->region.len - off;
    iov[i].iov_base = r->region.base + off;
    iov[i].iov_len = left < (1ull << REG_CHUNK_SHIFT) ? left : (1ull << REG_CHUNK_SHIFT);
  }
  return io_uring_register_buffers(&r->ring, iov, chunks);
}

/* Forget a ring fd registered by another thread: that registration lives in that thread's own
 * table, and using its index here would name whatever this thread registered there, if anything.
 * The plain ring fd works from any thread. */
static void forget_ring_fd(struct mior__io *r) {
  r->ring.int_flags = r->int_flags0;
  r->ring.enter_ring_fd = r->ring.ring_fd;
  r->regfd_thread = 0;
}

/* Take the socket out of the ring's file table: afterwards the ring holds no reference to it, so
 * closing our descriptor releases it (and its address) at once, not when the ring's asynchronous
 * teardown gets to it.  New operations use the plain descriptor.  A SINGLE_ISSUER ring takes this
 * only from its own thread (or before it is enabled). */
static int unregister_socket(struct mior__io *r) {
  if (!r->files_registered) return 0;
  int rc = io_uring_unregister_files(&r->ring);
  if (rc < 0) return rc;
  r->files_registered = 0;
  r->file = r->sock->fd;
  r->sqe_flags = 0;
  return 0;
}

static int uring_close(struct mior__io *r) {
  if (!r) return 0;
  int held = unregister_socket(r) < 0;
  if (r->regfd_thread && r->regfd_thread != mior__thread_self()) forget_ring_fd(r);
  if (r->ring_ready) io_uring_queue_exit(&r->ring);
  if (r->br) munmap(r->br, r->br_len);
  if (r->txr) {
    mior__txring_close(r->txr);
    free(r->txr);
  }
  free(r->done);
  /* If the ring's file table still held the socket (the thread bound to the ring ended without
   * letting go of it), the kernel releases it when its teardown of the ring runs, shortly after:
   * the port's socket is closed here, waiting for that, so that the address is free when close
   * returns. */
  if (r->sock) mior__socket_close(r->sock, held);
  free(r->meta);
  mior__tx_fifo_free(&r->txq);
  free(r->gso_recs);
  free(r->gso_free);
  free(r->ret_slots);
  free(r->rx_ctl);
  free(r->tx_ctl);
  if (r->evfd >= 0) close(r->evfd); /* the ring, gone, held it registered */
  if (r->epfd >= 0) close(r->epfd);
  free(r);
  return 0;
}

static int uring_open(struct mior__io **out, const mior__io_cfg *cfg, uint32_t *features) {
  const mior_options *o = cfg->opts;
  struct mior__io *r = calloc(1, sizeof *r);
  if (!r) return mior__fail(-ENOMEM, "out of memory");
  r->evfd = r->epfd = -1;
  r->sock = cfg->sock;
  r->region = cfg->region;
  /* One way out: uring_close undoes whatever part of this was done. */
  int rc;
  r->meta = calloc(r->region.buf_count, sizeof *r->meta);
  if (!r->meta || mior__tx_fifo_init(&r->txq, r->region.buf_count) < 0) {
    rc = mior__fail(-ENOMEM, "out of memory for message headers");
    goto fail;
  }
  rc = setup_ring(r, o, features);
  if (rc < 0) goto fail;
  r->ring_ready = 1;
  r->file = r->sock->fd;
  if (io_uring_register_files(&r->ring, &r->sock->fd, 1) == 0) {
    r->file = 0;
    r->sqe_flags = IOSQE_FIXED_FILE;
    r->files_registered = 1;
    *features |= MIOR_FEAT_REG_FILES;
  }
  /* Registration can fail for want of locked memory (RLIMIT_MEMLOCK for unprivileged users):
   * the ring works without it, only a little slower. */
  if (!(o->flags & MIOR_OPT_NO_REGISTERED_BUFFERS) && register_buffers(r) == 0) {
    r->reg_buffers = 1;
    *features |= MIOR_FEAT_REG_BUFFERS;
  }
  r->names = r->sock->kind == MIOR__KIND_UDP;
  /* Control buffers per slot for posted receives: the metadata asked for and GRO's segment size
   * (the multishot receive puts them in the slot instead). */
  r->gro = r->sock->gro;
  r->rx_ctl_space = mior__rx_cmsg_space(o->flags, r->gro);
  if (r->rx_ctl_space) {
    r->rx_ctl = calloc(r->region.buf_count, r->rx_ctl_space);
    if (!r->rx_ctl) {
      rc = mior__fail(-ENOMEM, "out of memory for receive metadata");
      goto fail;
    }
  }
  r->rx_allow_max = o->batch < o->rx_depth ? o->batch : o->rx_depth;
  r->rx_allow = r->rx_allow_max; /* start ready for load; a quiet socket brings it down at once */
  mior__uring_gso_setup(r, o, features);
  rc = mior__uring_txring_setup(r, cfg, features);
  if (rc < 0) goto fail;
  /* Multishot recv and recvmsg arrived in 6.0; provided-buffer rings in 5.19. */
  if (!(o->flags & (MIOR_OPT_NO_MULTISHOT | MIOR_OPT_NO_RX)) && mior__kernel_at_least(6, 0) &&
      mior__uring_rx_setup(r, o->rx_depth) == 0) {
    r->multishot = 1;
    *features |= MIOR_FEAT_MULTISHOT_RX;
    r->ms_msg.msg_namelen = r->names ? (r->sock->family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                                   : sizeof(struct sockaddr_in))
                                     : 0;
    /* The kernel writes the control messages into the slot too, right behind the room reserved
     * for the name: round that room up (IPv6: 28 -> 32 bytes) so the cmsghdrs are aligned for
     * reading in place. */
    if (r->rx_ctl_space) {
      r->ms_msg.msg_namelen = CMSG_ALIGN(r->ms_msg.msg_namelen);
      r->ms_msg.msg_controllen = r->rx_ctl_space;
    }
  }
  if (r->gro) *features |= MIOR_FEAT_UDP_GRO;
  *out = r;
  return 0;

fail:
  uring_close(r);
  return rc;
}

static int uring_bind_thread(struct mior__io *r) {
  if (r->enabled) {
    /* The thread that drove the ring has ended (the front end checked).  A SINGLE_ISSUER ring
     * refuses every other task for good; under SQPOLL the kernel's own thread is the issuer, so
     * the ring can be driven from a new thread. */
    if (r->single_issuer && !r->sqpoll)
      return mior__fail(-EBUSY, "this port's io_uring is bound to the thread that first drove it "
                        "(SINGLE_ISSUER), which has ended; an io_uring port cannot move to another "
                        "thread: open a new transport");
    forget_ring_fd(r);
  } else {
    /* liburing 2.3 declares io_uring_enable_rings() but does not export it: use the system call. */
    if (syscall(__NR_io_uring_register, r->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
      return mior__fail(-errno, "io_uring_register(ENABLE_RINGS): %s", strerror(errno));
    r->enabled = 1;
  }
  /* The registered ring fd saves a file lookup per io_uring_enter; it is per thread, which is
   * why it happens here and not at open.  Optional. */
  if (io_uring_register_ring_fd(&r->ring) == 1) r->regfd_thread = mior__thread_self();
  return 0;
}

/* The driving thread lets go: nothing is outstanding any more (the front end reaped the cancels).
 * Its registered ring fd goes, and so does the socket's place in the file table, which is what
 * lets close() free the address at once even if this thread ends before close runs. */
static void uring_detach(struct mior__io *r) {
  if (r->regfd_thread == mior__thread_self()) {
    io_uring_unregister_ring_fd(&r->ring);
    r->regfd_thread = 0;
  }
  unregister_socket(r);
}

static uint32_t uring_outstanding(struct mior__io *r) {
  return r->posted + r->tx_inflight + r->txq.len + r->done_len + r->ret_len + (r->ms_armed ? 1u : 0u) +
         (r->kick_inflight ? 1u : 0u) + (r->ring_wait ? 1u : 0u);
}

static int uring_cancel(struct mior__io *r) {
  if (!r->enabled) return 0;
  /* Queued sends go out first: the contract returns every slot through a completion. */
  if (r->txr) mior__uring_txring_submit(r);
  else if (r->txq.len) mior__uring_tx_prepare(r);
  r->canceling = 1;
  struct io_uring_sqe *sqe = mior__uring_sqe(r);
  if (!sqe) {
    mior__uring_submit_now(r, 0);
    sqe = mior__uring_sqe(r);
  }
  if (sqe) {
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(sqe, UD(UD_CANCEL, 0, 0));
    mior__uring_submit_now(r, 1);
  }
  return (int)uring_outstanding(r);
}

static void uring_counters(const struct mior__io *r, mior__backend_counters *out) {
  *out = r->cnt;
}

static int uring_rx_direct(struct mior__io *r, uint32_t slot, mior__cqe *c) {
  r->cnt.submits++;
  return mior__linux_rx_direct(r->sock, &r->region, r->rx_ctl_space, slot, c);
}

static int uring_tx_direct(struct mior__io *r, const uint8_t *data, uint32_t len, const mior_addr *dst) {
  r->cnt.submits++;
  return mior__linux_tx_direct(r->sock, data, len, dst);
}

/* An eventfd the kernel signals as it posts completions (io_uring_register_eventfd) and, on a
 * DEFER_TASKRUN ring, when it queues completion work for our next enter (before it posts them).
 * Our own enters post completions too, which signals it: so the clear happens at the end of a
 * work call (event_done), not before it, followed by a look at what is pending: completions in
 * the CQ ring, and the IORING_SQ_TASKRUN flag the kernel sets before it signals queued work.
 * Work that arrives after the clear signals the eventfd again; work that arrived before it is
 * seen by the look.  So the handle is readable after a work call exactly when work is ready. */
static int uring_event_open(struct mior__io *r, mior_handle *out) {
  if (r->evfd < 0) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return mior__fail(-errno, "eventfd: %s", strerror(errno));
    int rc = io_uring_register_eventfd(&r->ring, fd);
    if (rc < 0) {
      close(fd);
      return mior__fail(rc, "io_uring_register_eventfd: %s", strerror(-rc));
    }
    r->evfd = fd;
    /* Without DEFER_TASKRUN (COOP_TASKRUN) the kernel queues a completion as task work for this
     * thread without waking it or signalling the eventfd: a thread asleep in epoll would never
     * see it.  The socket's own readiness wakes it then (the datagram stays in the socket until
     * that work runs, which the wake-up itself does): the handle is an epoll descriptor over both. */
    if (!r->defer_taskrun && !r->sqpoll) {
      int ep = epoll_create1(EPOLL_CLOEXEC);
      struct epoll_event e1 = {.events = EPOLLIN, .data = {.u32 = 0}};
      struct epoll_event e2 = {.events = EPOLLIN, .data = {.u32 = 1}};
      if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, r->evfd, &e1) < 0 ||
          epoll_ctl(ep, EPOLL_CTL_ADD, r->sock->fd, &e2) < 0) {
        int err = errno;
        if (ep >= 0) close(ep);
        return mior__fail(-err, "epoll for the event handle: %s", strerror(err));
      }
      r->epfd = ep;
    }
  }
  *out = r->epfd >= 0 ? r->epfd : r->evfd;
  return 0;
}

static void uring_event_clear(struct mior__io *r) {
  (void)r; /* done at the end of the work call: see above */
}

static void uring_event_done(struct mior__io *r, int more) {
  /* Receives re-posted at the end of the work call are only SQEs yet: a loop that waits on the
   * handle makes no enter until it wakes, so they go to the kernel now, or nothing could wake it.
   * The same holds for a multishot receive not armed yet, which only a submit arms: a work call
   * that found completions waiting (a send's) makes none, and a port that sent before its first
   * receive then slept through a datagram.  A rejected arm is left for the next submit to report. */
  if (r->ms_state == MS_OK) (void)mior__uring_rx_arm(r);
  if (io_uring_sq_ready(&r->ring)) mior__uring_submit_now(r, 0);
  uint64_t v;
  if (read(r->evfd, &v, sizeof v) < 0) { /* EAGAIN: it was not signalled */ }
  /* The read is a full barrier: the flag and the CQ tail are read after the clear.  Work the
   * kernel queued that may bring no packet (a multishot receive requeued, a posted receive's
   * poll) is run here, once, so that it does not wake the loop for nothing. */
  if (!more && (IO_URING_READ_ONCE(*r->ring.sq.kflags) & IORING_SQ_TASKRUN) && r->defer_taskrun &&
      !io_uring_cq_ready(&r->ring)) {
    mior__uring_submit_now(r, 1);
    if (read(r->evfd, &v, sizeof v) < 0) { /* cleared again: the enter may have signalled */ }
  }
  unsigned kflags = IO_URING_READ_ONCE(*r->ring.sq.kflags);
  if (!(more || io_uring_cq_ready(&r->ring) || r->done_len || r->ret_len || r->txq.len ||
        (kflags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW))))
    return;
  uint64_t one = 1;
  if (write(r->evfd, &one, sizeof one) < 0) { /* the counter is full: readable anyway */ }
}

const mior__backend_ops mior__uring_ops = {
    .id = MIOR_BACKEND_URING,
    .name = "uring",
    .supported = uring_supported,
    .open = uring_open,
    .bind_thread = uring_bind_thread,
    .detach = uring_detach,
    .rx_room = mior__uring_rx_room,
    .rx_post = mior__uring_rx_post,
    .tx_queue = mior__uring_tx_queue,
    .submit = mior__uring_submit,
    .reap = mior__uring_reap,
    .cancel = uring_cancel,
    .rx_direct = uring_rx_direct,
    .tx_direct = uring_tx_direct,
    .outstanding = uring_outstanding,
    .counters = uring_counters,
    .close = uring_close,
    .event_open = uring_event_open,
    .event_clear = uring_event_clear,
    .event_done = uring_event_done,
    .tx_queue_meta = mior__uring_tx_queue_meta,
    .tx_gso_ok = mior__uring_tx_gso_ok,
    .tx_queue_gso = mior__uring_tx_queue_gso,
    .rx_meta_opts = MIOR__RX_META_OPTS,
    .rx_coalesce = mior__socket_gro_supported,
};
