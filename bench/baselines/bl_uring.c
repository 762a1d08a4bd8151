/* bench baseline: a hand-written io_uring UDP loop (liburing), what a user would write without
 * mior.
 *
 *   sender:   a connected UDP socket (registered file); up to QD sends in flight, --batch SENDs
 *             prepared per io_uring_submit, completions reaped in bulk.
 *   receiver: one multishot RECV with a provided buffer ring (kernel 6.0+), re-armed when the
 *             kernel ends it; buffers returned to the ring in bulk.
 * Both rings ask for SINGLE_ISSUER | DEFER_TASKRUN (6.1+) and fall back to plain rings on -EINVAL.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bl.h"

#define QD 1024
#define NBUF 4096
#define BUF_SIZE 2048
#define BGID 7

typedef struct ur_state {
  struct io_uring ring;
  int ring_ok, fd;
  uint8_t *bufs;
  struct io_uring_buf_ring *br;
  size_t br_len;
  int defer;
} ur_state;

static int ring_init(bl_side *s, ur_state *u) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int rc = io_uring_queue_init_params(QD, &u->ring, &p);
  u->defer = rc == 0;
  if (rc == -EINVAL) {
    memset(&p, 0, sizeof p);
    rc = io_uring_queue_init_params(QD, &u->ring, &p);
  }
  if (rc < 0) return bl_fail(s, rc, "io_uring_queue_init");
  u->ring_ok = 1;
  return 0;
}

static int ur_open(bl_side *s) {
  ur_state *u = calloc(1, sizeof *u);
  if (!u) return bl_fail(s, ENOMEM, "allocating");
  s->priv = u;
  u->fd = -1;
  if (ring_init(s, u) < 0) return -1;
  u->bufs = aligned_alloc(4096, (size_t)NBUF * BUF_SIZE);
  if (!u->bufs) return bl_fail(s, ENOMEM, "allocating buffers");
  memset(u->bufs, 0, (size_t)NBUF * BUF_SIZE);
  u->fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (u->fd < 0) return bl_fail(s, errno, "socket");
  bl_sockbufs(u->fd);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  inet_pton(AF_INET, s->is_tx ? s->env->ip_tx : s->env->ip_rx, &a.sin_addr);
  if (bind(u->fd, (struct sockaddr *)&a, sizeof a) < 0) return bl_fail(s, errno, "bind");
  if (s->is_tx) {
    if (connect(u->fd, (struct sockaddr *)&s->peer->rx_addr, sizeof s->peer->rx_addr) < 0)
      return bl_fail(s, errno, "connect");
  } else {
    socklen_t l = sizeof s->rx_addr;
    getsockname(u->fd, (struct sockaddr *)&s->rx_addr, &l);
    /* The provided buffer ring: NBUF entries, page aligned, registered as group BGID. */
    u->br_len = (size_t)NBUF * sizeof(struct io_uring_buf);
    u->br = mmap(NULL, u->br_len, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (u->br == MAP_FAILED) {
      u->br = NULL;
      return bl_fail(s, errno, "mmap buffer ring");
    }
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (unsigned long)u->br;
    reg.ring_entries = NBUF;
    reg.bgid = BGID;
    int rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
    if (rc < 0) return bl_fail(s, rc, "io_uring_register_buf_ring");
    io_uring_buf_ring_init(u->br);
    int mask = io_uring_buf_ring_mask(NBUF);
    for (int i = 0; i < NBUF; i++)
      io_uring_buf_ring_add(u->br, u->bufs + (size_t)i * BUF_SIZE, BUF_SIZE, (unsigned short)i, mask, i);
    io_uring_buf_ring_advance(u->br, NBUF);
  }
  int rc = io_uring_register_files(&u->ring, &u->fd, 1);
  if (rc < 0) return bl_fail(s, rc, "io_uring_register_files");
  return 0;
}

static void ur_close(bl_side *s) {
  ur_state *u = s->priv;
  if (!u) return;
  if (u->ring_ok) io_uring_queue_exit(&u->ring);
  if (u->br) munmap(u->br, u->br_len);
  if (u->fd >= 0) close(u->fd);
  free(u->bufs);
  free(u);
  s->priv = NULL;
}

static int ur_tx(bl_side *s) {
  ur_state *u = s->priv;
  uint32_t batch = s->cfg->batch, size = s->cfg->size, inflight = 0, slot = 0;
  uint64_t seq = 0, done = 0;
  while (!bl_stopping(s)) {
    uint32_t room = QD - inflight;
    if (room > batch) room = batch;
    uint32_t n = room ? bl_rate_allow(s, room) : 0;
    for (uint32_t i = 0; i < n; i++) {
      struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
      if (!sqe) {
        n = i;
        break;
      }
      uint8_t *b = u->bufs + (size_t)(slot++ % NBUF) * BUF_SIZE;
      bl_payload_put(b, seq++);
      io_uring_prep_send(sqe, 0, b, size, 0);
      sqe->flags |= IOSQE_FIXED_FILE;
    }
    inflight += n;
    /* Submit, and wait for one completion only when nothing more may be queued. */
    int rc = io_uring_submit_and_wait(&u->ring, inflight >= QD ? 1 : 0);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) return bl_fail(s, rc, "io_uring_submit");
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&u->ring, head, cqe) {
      seen++;
      if (cqe->res >= 0) done++;
    }
    io_uring_cq_advance(&u->ring, seen);
    inflight -= seen;
    atomic_store_explicit(&s->count, done, memory_order_relaxed);
  }
  return 0;
}

static int arm_recv(ur_state *u) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
  if (!sqe) return -EBUSY;
  io_uring_prep_recv_multishot(sqe, 0, NULL, 0, 0);
  sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
  sqe->buf_group = BGID;
  return 0;
}

static int ur_rx(bl_side *s) {
  ur_state *u = s->priv;
  uint64_t n = 0;
  int mask = io_uring_buf_ring_mask(NBUF);
  if (arm_recv(u) < 0) return bl_fail(s, EBUSY, "arming the receive");
  while (!bl_stopping(s)) {
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts = {0, 100000000}; /* bounded wait: see the stop flag */
    int rc = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
    if (rc < 0 && rc != -ETIME && rc != -EINTR) return bl_fail(s, rc, "io_uring_wait");
    unsigned head, seen = 0, bufs = 0, rearm = 0;
    io_uring_for_each_cqe(&u->ring, head, cqe) {
      seen++;
      if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned short bid = (unsigned short)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        io_uring_buf_ring_add(u->br, u->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, bid, mask, (int)bufs++);
      }
      if (cqe->res > 0) n++;
      else if (cqe->res < 0 && cqe->res != -ENOBUFS && cqe->res != -EINTR) {
        io_uring_cq_advance(&u->ring, seen);
        return bl_fail(s, cqe->res, "multishot recv");
      }
      if (!(cqe->flags & IORING_CQE_F_MORE)) rearm = 1;
    }
    io_uring_cq_advance(&u->ring, seen);
    if (bufs) io_uring_buf_ring_advance(u->br, (int)bufs);
    if (rearm && arm_recv(u) < 0) return bl_fail(s, EBUSY, "re-arming the receive");
    atomic_store_explicit(&s->count, n, memory_order_relaxed);
  }
  return 0;
}

static const bl_method m_uring = {"uring", BL_KIND_UDP, 0, 64, ur_open, ur_rx, ur_open, ur_tx, ur_close};

int main(int argc, char **argv) {
  const bl_method *const ms[] = {&m_uring};
  return bl_throughput_main(argc, argv, ms, 1);
}
