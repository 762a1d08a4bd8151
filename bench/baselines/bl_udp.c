/* bench baseline: UDP with plain system calls.
 *
 *   --method sendto : one sendto / recvfrom per packet (blocking sockets)
 *   --method mmsg   : sendmmsg / recvmmsg, --batch packets per call (default 64)
 *   --method gso    : sendmsg with UDP_SEGMENT, --batch datagrams per send (default 64, fewer
 *                     when 64 KiB would not hold them); recvmsg with UDP_GRO into one 64 KiB
 *                     buffer, counting ceil(bytes / segment size) datagrams per receive (what a
 *                     QUIC stack does by hand, minus reading the datagrams)
 *   --method gso-seq: the same, but the receiver reads every datagram of a coalesced receive:
 *                     checks the magic and reads the sequence number, counting gaps and late
 *                     arrivals, as mior-perf's receiver does per packet (the comparison row for
 *                     a receiver that looks at what it gets)
 *
 * The receiver binds port 0 on its address; the sender connects to it (one peer: no route lookup
 * and no address per packet, as mior's sockets do).  The receiver blocks in the kernel for the
 * first datagram of each call, as a plain program does.  Counts are published once per call.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bl.h"

#define MAX_BATCH 4096

typedef struct udp_state {
  int fd;
  uint8_t *bufs;      /* batch buffers of buf_size bytes */
  uint32_t buf_size;
  struct mmsghdr *msgs;
  struct iovec *iov;
} udp_state;

static int udp_open(bl_side *s) {
  const bl_cfg *cfg = s->cfg;
  udp_state *u = calloc(1, sizeof *u);
  if (!u) return bl_fail(s, ENOMEM, "allocating");
  s->priv = u;
  uint32_t n = cfg->batch ? cfg->batch : 1;
  u->buf_size = cfg->size > 2048 ? cfg->size : 2048;
  u->bufs = calloc(n, u->buf_size);
  u->msgs = calloc(n, sizeof *u->msgs);
  u->iov = calloc(n, sizeof *u->iov);
  if (!u->bufs || !u->msgs || !u->iov) return bl_fail(s, ENOMEM, "allocating");
  u->fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (u->fd < 0) return bl_fail(s, errno, "socket");
  bl_sockbufs(u->fd);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  if (inet_pton(AF_INET, s->is_tx ? s->env->ip_tx : s->env->ip_rx, &a.sin_addr) != 1)
    return bl_fail(s, EINVAL, "address");
  if (bind(u->fd, (struct sockaddr *)&a, sizeof a) < 0) return bl_fail(s, errno, "bind");
  if (s->is_tx && connect(u->fd, (struct sockaddr *)&s->peer->rx_addr, sizeof s->peer->rx_addr) < 0)
    return bl_fail(s, errno, "connect");
  if (!s->is_tx) {
    socklen_t l = sizeof s->rx_addr;
    getsockname(u->fd, (struct sockaddr *)&s->rx_addr, &l);
    /* A bounded wait, so the loop sees the stop flag within 100 ms. */
    struct timeval tv = {0, 100000};
    setsockopt(u->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  for (uint32_t i = 0; i < n; i++) {
    u->iov[i].iov_base = u->bufs + (size_t)i * u->buf_size;
    u->iov[i].iov_len = s->is_tx ? cfg->size : u->buf_size;
    u->msgs[i].msg_hdr.msg_iov = &u->iov[i];
    u->msgs[i].msg_hdr.msg_iovlen = 1;
  }
  return 0;
}

static void udp_close(bl_side *s) {
  udp_state *u = s->priv;
  if (!u) return;
  if (u->fd > 0) close(u->fd);
  free(u->bufs);
  free(u->msgs);
  free(u->iov);
  free(u);
  s->priv = NULL;
}

static int sendto_tx(bl_side *s) {
  udp_state *u = s->priv;
  uint64_t seq = 0;
  uint32_t size = s->cfg->size;
  while (!bl_stopping(s)) {
    uint32_t n = bl_rate_allow(s, 64);
    for (uint32_t i = 0; i < n; i++) {
      bl_payload_put(u->bufs, seq);
      if (sendto(u->fd, u->bufs, size, 0, NULL, 0) < 0) {
        if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN || errno == ECONNREFUSED) continue;
        return bl_fail(s, errno, "sendto");
      }
      seq++;
    }
    atomic_store_explicit(&s->count, seq, memory_order_relaxed);
  }
  return 0;
}

static int recvfrom_rx(bl_side *s) {
  udp_state *u = s->priv;
  uint64_t n = 0;
  while (!bl_stopping(s)) {
    ssize_t r = recvfrom(u->fd, u->bufs, u->buf_size, 0, NULL, NULL);
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return bl_fail(s, errno, "recvfrom");
    }
    n++;
    atomic_store_explicit(&s->count, n, memory_order_relaxed);
  }
  return 0;
}

static int mmsg_tx(bl_side *s) {
  udp_state *u = s->priv;
  uint64_t seq = 0;
  uint32_t batch = s->cfg->batch;
  while (!bl_stopping(s)) {
    uint32_t n = bl_rate_allow(s, batch);
    if (!n) continue;
    for (uint32_t i = 0; i < n; i++) bl_payload_put(u->bufs + (size_t)i * u->buf_size, seq + i);
    int r = sendmmsg(u->fd, u->msgs, n, 0);
    if (r < 0) {
      if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN || errno == ECONNREFUSED) continue;
      return bl_fail(s, errno, "sendmmsg");
    }
    seq += (uint64_t)r;
    atomic_store_explicit(&s->count, seq, memory_order_relaxed);
  }
  return 0;
}

static int mmsg_rx(bl_side *s) {
  udp_state *u = s->priv;
  uint64_t n = 0;
  uint32_t batch = s->cfg->batch;
  while (!bl_stopping(s)) {
    /* MSG_WAITFORONE: block for the first datagram only, then take what is queued. */
    int r = recvmmsg(u->fd, u->msgs, batch, MSG_WAITFORONE, NULL);
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return bl_fail(s, errno, "recvmmsg");
    }
    n += (uint64_t)r;
    atomic_store_explicit(&s->count, n, memory_order_relaxed);
  }
  return 0;
}

/* Datagrams per GSO send: --batch, at most 64 (the kernel's limit before 6.9) and within 64 KiB. */
static uint32_t gso_count(const bl_cfg *cfg) {
  uint32_t n = cfg->batch ? cfg->batch : 64;
  if (n > 64) n = 64;
  uint32_t by_bytes = (65536u - 128u) / cfg->size;
  if (n > by_bytes) n = by_bytes;
  return n ? n : 1;
}

static int gso_open(bl_side *s) {
  int rc = udp_open(s);
  if (rc < 0) return rc;
  udp_state *u = s->priv;
  if (!s->is_tx) {
    int one = 1;
    if (setsockopt(u->fd, IPPROTO_UDP, UDP_GRO, &one, sizeof one) < 0) return bl_fail(s, errno, "UDP_GRO");
  }
  /* One 64 KiB buffer: the sender's run back to back, or one coalesced receive. */
  free(u->bufs);
  u->buf_size = 65536;
  u->bufs = calloc(1, u->buf_size);
  if (!u->bufs) return bl_fail(s, ENOMEM, "allocating");
  return 0;
}

static int gso_tx(bl_side *s) {
  udp_state *u = s->priv;
  uint64_t seq = 0;
  uint32_t size = s->cfg->size, per = gso_count(s->cfg);
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {.iov_base = u->bufs, .iov_len = 0};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof ctl.buf;
  struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_UDP;
  cm->cmsg_type = UDP_SEGMENT;
  cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  uint16_t seg = (uint16_t)size;
  memcpy(CMSG_DATA(cm), &seg, sizeof seg);
  while (!bl_stopping(s)) {
    uint32_t n = bl_rate_allow(s, per);
    if (!n) continue;
    for (uint32_t i = 0; i < n; i++) bl_payload_put(u->bufs + (size_t)i * size, seq + i);
    iov.iov_len = (size_t)n * size;
    /* A single datagram needs no segmentation (and a one-segment GSO send is fine too). */
    if (sendmsg(u->fd, &msg, 0) < 0) {
      if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN || errno == ECONNREFUSED) continue;
      return bl_fail(s, errno, "sendmsg(UDP_SEGMENT)");
    }
    seq += n;
    atomic_store_explicit(&s->count, seq, memory_order_relaxed);
  }
  return 0;
}

/* --method gso-seq: what a receiver that looks at each datagram does at least.  Gaps and late
 * arrivals are counted so the reads cannot be optimized away. */
typedef struct seq_check {
  uint64_t next, foreign, late;
} seq_check;

static uint32_t seq_read(seq_check *c, const uint8_t *buf, uint32_t len, uint32_t seg) {
  uint32_t n = 0;
  for (uint32_t off = 0; off < len; off += seg, n++) {
    uint32_t m;
    uint64_t seq;
    if (len - off < BL_HDR) {
      c->foreign++;
      continue;
    }
    memcpy(&m, buf + off, 4);
    memcpy(&seq, buf + off + 4, 8);
    if (m != BL_MAGIC) c->foreign++;
    else if (seq >= c->next) c->next = seq + 1;
    else c->late++;
  }
  return n;
}

static int gro_rx_loop(bl_side *s, int read_each) {
  udp_state *u = s->priv;
  seq_check chk = {0, 0, 0};
  uint64_t n = 0;
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {.iov_base = u->bufs, .iov_len = u->buf_size};
  struct msghdr msg;
  while (!bl_stopping(s)) {
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof ctl.buf;
    ssize_t r = recvmsg(u->fd, &msg, 0);
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return bl_fail(s, errno, "recvmsg");
    }
    uint32_t seg = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
      if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
        int v;
        memcpy(&v, CMSG_DATA(c), sizeof v);
        seg = (uint32_t)v;
      }
    if (!seg || (uint32_t)r < seg) seg = (uint32_t)r ? (uint32_t)r : 1;
    if (read_each && r > 0) n += seq_read(&chk, u->bufs, (uint32_t)r, seg);
    else n += (uint32_t)r > seg ? ((uint32_t)r + seg - 1) / seg : 1;
    atomic_store_explicit(&s->count, n, memory_order_relaxed);
  }
  if (read_each && (chk.foreign || chk.late))
    fprintf(stderr, "bl_udp gso-seq: %llu foreign, %llu late datagrams\n", (unsigned long long)chk.foreign,
            (unsigned long long)chk.late);
  return 0;
}

static int gro_rx(bl_side *s) { return gro_rx_loop(s, 0); }
static int gro_seq_rx(bl_side *s) { return gro_rx_loop(s, 1); }

static const bl_method m_sendto = {"sendto", BL_KIND_UDP, 0, 1, udp_open, recvfrom_rx, udp_open, sendto_tx, udp_close};
static const bl_method m_mmsg = {"mmsg", BL_KIND_UDP, 0, 64, udp_open, mmsg_rx, udp_open, mmsg_tx, udp_close};
static const bl_method m_gso = {"gso", BL_KIND_UDP, 0, 64, gso_open, gro_rx, gso_open, gso_tx, udp_close};
static const bl_method m_gso_seq = {"gso-seq", BL_KIND_UDP, 0, 64, gso_open, gro_seq_rx, gso_open, gso_tx, udp_close};
/* A coalescing sender against a receiver that does not coalesce: does the receiver livelock? */
static const bl_method m_gso_mmsg = {"gso-to-mmsg", BL_KIND_UDP, 0, 64, udp_open, mmsg_rx, gso_open, gso_tx, udp_close};

int main(int argc, char **argv) {
  const bl_method *const ms[] = {&m_sendto, &m_mmsg, &m_gso, &m_gso_seq, &m_gso_mmsg};
  return bl_throughput_main(argc, argv, ms, 5);
}
