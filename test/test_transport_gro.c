/* UDP GRO on receive (the default on udp ports) in both Linux backends: the kernel hands one
 * receive a coalesced buffer, and the port splits it into packets that point into one shared slot.
 *
 * What must hold, in every receive configuration (io_uring multishot, io_uring posted receives,
 * recvmmsg): every datagram of a GSO send arrives once, in order, with its own exact length, a
 * short last segment and a size change between sends included; packets that came coalesced say
 * so (MIOR_PKT_COALESCED); a slot comes back only when the last of its packets is done, kept ones
 * released later from another thread included, and a packet cannot be released twice; a coalesced
 * packet can be sent back (echo); mior's own sender forms GSO sends to an unconnected destination
 * and through mior_tx_send_segments; a kernel that refuses UDP_GRO (here: a seccomp filter)
 * leaves a port that receives plainly, says so in its features and counts it; and mior_rx_burst
 * delivers coalesced buffers across calls (each packet once, in order), with bulk, single and
 * cross-thread releases of one slot's packets mixed.  With every MIOR_OPT_RX_* on, the packets
 * split from one coalesced receive all carry its metadata (the portable metadata test,
 * test_transport_meta.c, has no GSO sender to make one).
 */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "transport_common.h"

#define MAXSEQ 20000u
#define MAXKEEP 4096u

/* What the receiver saw. */
struct seen {
  uint32_t next;            /* next sequence number expected (the sender's order) */
  uint32_t got, bad, disorder;
  uint32_t want_len[MAXSEQ]; /* the length each sequence number was sent with */
  uint8_t multi[MAXSEQ];     /* 1 if it left in a GSO send of two or more */
  uint32_t coalesced;        /* packets flagged MIOR_PKT_COALESCED */
  uint32_t flag_wrong;       /* flagged, but sent alone */
  uint32_t keep_every;       /* keep every Nth coalesced packet (0: none) */
  mior_pkt kept[MAXKEEP];
  uint32_t nkept;
  int echo_fd;               /* >= 0: send each packet back to its source (mior_tx_send) */
  uint32_t echo_errors;
};

static int consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  struct seen *s = ctx;
  uint32_t seq = UINT32_MAX;
  if (tt_check(pkt->data, pkt->len, &seq) != 0 || seq >= MAXSEQ || pkt->len != s->want_len[seq]) {
    s->bad++;
    return MIOR_DONE;
  }
  if (seq != s->next) s->disorder++;
  s->next = seq + 1;
  s->got++;
  if (pkt->flags & MIOR_PKT_COALESCED) {
    s->coalesced++;
    if (!s->multi[seq]) s->flag_wrong++;
    if (pkt->len > pkt->cap) s->bad++;
  }
  if (s->echo_fd >= 0) {
    mior_pkt copy = *pkt;
    if (mior_tx_send(port, &copy, pkt->len, &pkt->src) < 0) s->echo_errors++;
    return MIOR_DONE;
  }
  if (s->keep_every && (pkt->flags & MIOR_PKT_COALESCED) && s->got % s->keep_every == 0 && s->nkept < MAXKEEP) {
    s->kept[s->nkept++] = *pkt;
    return MIOR_KEEP;
  }
  return MIOR_DONE;
}

/* A plain kernel sender: one sendmsg with UDP_SEGMENT per call (what a QUIC stack does). */
static int kernel_sender(const mior_addr *to) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  struct sockaddr_in sin = tt_sin4(to);
  REQUIRE(connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0);
  return fd;
}

static uint8_t gso_buf[65536];

/* Send n datagrams of seg bytes (the last `last` bytes, 0 = seg) as one GSO send, numbering them
 * from *seq; a single datagram goes without the control message. */
static void gso_send(int fd, struct seen *s, uint32_t *seq, uint32_t n, uint32_t seg, uint32_t last) {
  uint32_t total = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t len = (i + 1 == n && last) ? last : seg;
    REQUIRE(*seq < MAXSEQ);
    tt_fill(gso_buf + total, len, *seq);
    s->want_len[*seq] = len;
    s->multi[*seq] = n > 1;
    (*seq)++;
    total += len;
  }
  struct iovec iov = {.iov_base = gso_buf, .iov_len = total};
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } ctl;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (n > 1) {
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof ctl.buf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t s16 = (uint16_t)seg;
    memcpy(CMSG_DATA(cm), &s16, sizeof s16);
  }
  REQUIRE(sendmsg(fd, &msg, 0) == (ssize_t)total);
}

static mior_options gro_opts(mior_backend b, uint32_t flags) {
  mior_options o = tt_opts(b);
  o.buf_size = 0; /* the udp default: 64 KiB slots with GRO */
  o.buf_count = 0;
  o.flags |= flags;
  return o;
}

/* A GRO port on loopback (its default slots) with receiver rcv (NULL: pull), and a kernel socket
 * that sends to it (*fd). */
static mior_port *gro_open(mior_backend b, uint32_t flags, const mior_receiver *rcv, mior_transport **t,
                           int *fd) {
  mior_options o = gro_opts(b, flags);
  REQUIRE_OK(mior_transport_open(t, "udp://127.0.0.1:0", &o, rcv));
  mior_addr local = tt_local(*t);
  *fd = kernel_sender(&local);
  return mior_transport_port(*t, 0);
}

static void poll_until(mior_port *p, const struct seen *s, uint32_t want, int64_t ms) {
  int64_t end = tt_now_ms() + ms;
  while (s->got + s->bad < want && tt_now_ms() < end) REQUIRE(mior_port_poll(p, 0, 10000) >= 0);
}

/* Runs of every shape from a kernel GSO sender, received coalesced and split in place. */
static void shapes(mior_backend b, uint32_t flags, const char *name) {
  static struct seen s;
  memset(&s, 0, sizeof s);
  s.echo_fd = -1;
  mior_options o = gro_opts(b, flags);
  mior_receiver rcv = {.consume = consume, .ctx = &s};
  mior_transport *t;
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &o, &rcv));
  mior_port *p = mior_transport_port(t, 0);
  mior_port_stats st;
  REQUIRE_OK(mior_port_stats_get(p, &st));
  CHECK(st.features & MIOR_FEAT_UDP_GRO);
  mior_addr local = tt_local(t);
  int fd = kernel_sender(&local);
  uint32_t seq = 0;
  REQUIRE(mior_port_poll(p, 0, 0) >= 0); /* receives posted before the first datagram */
  for (int round = 0; round < 20; round++) {
    gso_send(fd, &s, &seq, 64, 100, 37);   /* a full GSO send with a short last segment */
    gso_send(fd, &s, &seq, 20, 300, 0);    /* the size changes between sends */
    gso_send(fd, &s, &seq, 10, 50, 0);
    gso_send(fd, &s, &seq, 1, 500, 0);     /* alone: not coalesced */
    gso_send(fd, &s, &seq, 2, 1472, TT_HDR); /* two, the last as short as a datagram here goes */
    gso_send(fd, &s, &seq, 40, 1400, 0);   /* 56000 bytes in one buffer */
    gso_send(fd, &s, &seq, 64, TT_HDR, 0); /* the smallest segments */
    poll_until(p, &s, seq, 2000);
  }
  poll_until(p, &s, seq, 3000);
  CHECK_EQ(s.got, seq);
  CHECK_EQ(s.bad, 0);
  CHECK_EQ(s.disorder, 0);
  CHECK_EQ(s.flag_wrong, 0);
  REQUIRE_OK(mior_port_stats_get(p, &st));
  CHECK_EQ(st.rx_packets, seq);
  CHECK(st.rx_coalesced > 0);
  CHECK(s.coalesced > 0);
  CHECK_EQ(st.rx_drop_truncated, 0);
  CHECK_EQ(st.user_held, 0);
  printf("    %s: %u datagrams, %u arrived coalesced in %llu buffers\n", name, s.got, s.coalesced,
         (unsigned long long)st.rx_coalesced);
  CHECK_EQ(mior_transport_close(t), 0);
  close(fd);
}

struct releaser {
  struct seen *s;
  uint32_t from, to;
  int errors;
};

static void *release_thread(void *arg) {
  struct releaser *r = arg;
  for (uint32_t i = r->from; i < r->to; i++)
    if (mior_pkt_release(&r->s->kept[i]) != 0) r->errors++;
  return NULL;
}

/* Kept packets hold their slot: it comes back only when the last packet of its buffer is done,
 * whether the port's thread or another thread releases it; a second release is refused. */
static void kept(mior_backend b, uint32_t flags, const char *name) {
  static struct seen s;
  memset(&s, 0, sizeof s);
  s.echo_fd = -1;
  s.keep_every = 3;
  mior_receiver rcv = {.consume = consume, .ctx = &s};
  mior_transport *t;
  int fd;
  mior_port *p = gro_open(b, flags, &rcv, &t, &fd);
  uint32_t seq = 0;
  REQUIRE(mior_port_poll(p, 0, 0) >= 0);
  for (int i = 0; i < 30; i++) {
    gso_send(fd, &s, &seq, 30, 200, 150);
    poll_until(p, &s, seq, 2000);
  }
  CHECK_EQ(s.got, seq);
  CHECK(s.nkept > 0);
  mior_port_stats st;
  REQUIRE_OK(mior_port_stats_get(p, &st));
  CHECK_EQ(st.user_held, s.nkept);
  CHECK_EQ(st.rx_kept, s.nkept);
  /* The kept packets still read as sent: their slots were not reused. */
  uint32_t intact = 0;
  for (uint32_t i = 0; i < s.nkept; i++) {
    uint32_t q;
    intact += tt_check(s.kept[i].data, s.kept[i].len, &q) == 0;
  }
  CHECK_EQ(intact, s.nkept);
  /* Half released by another thread, half here. */
  struct releaser r = {.s = &s, .from = 0, .to = s.nkept / 2};
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, release_thread, &r) == 0);
  for (uint32_t i = s.nkept / 2; i < s.nkept; i++) CHECK_OK(mior_pkt_release(&s.kept[i]));
  pthread_join(th, NULL);
  CHECK_EQ(r.errors, 0);
  /* Twice: refused, nothing changes. */
  CHECK_EQ(mior_pkt_release(&s.kept[0]), -EINVAL);
  CHECK_EQ(mior_pkt_release(&s.kept[s.nkept - 1]), -EINVAL);
  REQUIRE_OK(mior_port_stats_get(p, &st));
  CHECK_EQ(st.user_held, 0);
  /* The slots work again: another round arrives whole. */
  s.keep_every = 0;
  uint32_t before = seq;
  gso_send(fd, &s, &seq, 64, 1000, 0);
  poll_until(p, &s, seq, 2000);
  CHECK_EQ(s.got, seq);
  CHECK(seq > before);
  printf("    %s: %u kept from coalesced buffers, released on two threads\n", name, s.nkept);
  /* close returning 0 (not -EBUSY) is the final word that every slot came back */
  CHECK_EQ(mior_transport_close(t), 0);
  close(fd);
}

/* A coalesced packet sent back from consume (echo): it goes out from a copy, intact. */
static void echo(mior_backend b, uint32_t flags, const char *name) {
  static struct seen s;
  memset(&s, 0, sizeof s);
  mior_receiver rcv = {.consume = consume, .ctx = &s};
  mior_transport *t;
  int fd;
  mior_port *p = gro_open(b, flags, &rcv, &t, &fd);
  s.echo_fd = fd;
  uint32_t seq = 0;
  REQUIRE(mior_port_poll(p, 0, 0) >= 0);
  gso_send(fd, &s, &seq, 50, 120, 60);
  poll_until(p, &s, seq, 2000);
  CHECK_OK(mior_tx_flush(p));
  static uint8_t buf[65536];
  uint32_t back = 0;
  int64_t end = tt_now_ms() + 3000;
  while (back < seq && tt_now_ms() < end) {
    REQUIRE(mior_port_poll(p, 0, 0) >= 0);
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) continue;
    uint32_t q;
    if (tt_check(buf, (uint32_t)n, &q) == 0 && q == back && (uint32_t)n == s.want_len[q]) back++;
    else break;
  }
  CHECK_EQ(back, seq);
  CHECK_EQ(s.echo_errors, 0);
  printf("    %s: %u coalesced packets echoed from copies\n", name, back);
  CHECK_EQ(mior_transport_close(t), 0);
  close(fd);
}

/* mior to mior: sends to an unconnected destination form GSO sends, mior_tx_send_segments sends
 * one explicitly, and the receiver gets each datagram with its own length. */
static void mior_pair(mior_backend b, uint32_t flags, const char *name) {
  static struct seen s;
  memset(&s, 0, sizeof s);
  s.echo_fd = -1;
  mior_options o = gro_opts(b, flags);
  mior_receiver rcv = {.consume = consume, .ctx = &s};
  mior_transport *rt, *st_t;
  REQUIRE_OK(mior_transport_open(&rt, "udp://127.0.0.1:0", &o, &rcv));
  mior_port *rp = mior_transport_port(rt, 0);
  mior_options so = gro_opts(b, MIOR_OPT_NO_RX);
  REQUIRE_OK(mior_transport_open(&st_t, "udp://127.0.0.1:0", &so, NULL));
  mior_port *sp = mior_transport_port(st_t, 0);
  mior_addr dst = tt_local(rt);
  REQUIRE(mior_port_poll(rp, 0, 0) >= 0);
  uint32_t seq = 0;
  for (int round = 0; round < 10; round++) {
    /* 40 equal tx_sends then 3 shorter: one run with a short end, then a new run */
    for (uint32_t i = 0; i < 43; i++) {
      mior_pkt pkt;
      REQUIRE_OK(mior_tx_acquire(sp, &pkt));
      uint32_t len = i < 40 ? 700 : 90;
      tt_fill(pkt.data, len, seq);
      s.want_len[seq] = len;
      s.multi[seq] = 1;
      seq++;
      REQUIRE_OK(mior_tx_send(sp, &pkt, len, &dst));
    }
    CHECK_OK(mior_tx_flush(sp));
    /* explicit: 17 datagrams of 333, the last TT_HDR */
    mior_pkt pk[17];
    uint32_t lens[17];
    for (uint32_t i = 0; i < 17; i++) {
      REQUIRE_OK(mior_tx_acquire(sp, &pk[i]));
      lens[i] = i < 16 ? 333 : TT_HDR;
      tt_fill(pk[i].data, lens[i], seq);
      s.want_len[seq] = lens[i];
      s.multi[seq] = 1;
      seq++;
    }
    CHECK_OK(mior_tx_send_segments(sp, pk, lens, 17, &dst));
    CHECK_OK(mior_tx_flush(sp));
    int64_t end = tt_now_ms() + 2000;
    while (s.got + s.bad < seq && tt_now_ms() < end) {
      REQUIRE(mior_port_poll(sp, 0, 0) >= 0);
      REQUIRE(mior_port_poll(rp, 0, 1000) >= 0);
    }
  }
  /* Bad explicit calls: lengths that break the rule are refused, and the slots come back. */
  mior_pkt pk[3];
  uint32_t badlens[3] = {100, 200, 100};
  for (int i = 0; i < 3; i++) REQUIRE_OK(mior_tx_acquire(sp, &pk[i]));
  CHECK_EQ(mior_tx_send_segments(sp, pk, badlens, 3, &dst), -EINVAL);
  tt_drain_tx(sp, 10u * 60u, 2000);
  mior_port_stats ss, rs;
  REQUIRE_OK(mior_port_stats_get(sp, &ss));
  REQUIRE_OK(mior_port_stats_get(rp, &rs));
  CHECK_EQ(s.got, seq);
  CHECK_EQ(s.bad, 0);
  CHECK_EQ(s.disorder, 0);
  CHECK(ss.features & MIOR_FEAT_UDP_GSO);
  CHECK(ss.tx_gso_sends >= 20);
  CHECK_EQ(ss.tx_packets, seq);
  CHECK_EQ(ss.user_held, 0);
  CHECK_EQ(ss.tx_invalid, 3);
  CHECK(rs.rx_coalesced > 0);
  printf("    %s: %u datagrams in %llu GSO sends, %llu coalesced receives\n", name, seq,
         (unsigned long long)ss.tx_gso_sends, (unsigned long long)rs.rx_coalesced);
  CHECK_EQ(mior_transport_close(st_t), 0);
  CHECK_EQ(mior_transport_close(rt), 0);
}

/* MIOR_OPT_NO_UDP_GRO: plain receives and the small default slot. */
static void gro_off(mior_backend b, uint32_t flags, const char *name) {
  static struct seen s;
  memset(&s, 0, sizeof s);
  s.echo_fd = -1;
  mior_options o = gro_opts(b, flags | MIOR_OPT_NO_UDP_GRO);
  mior_receiver rcv = {.consume = consume, .ctx = &s};
  mior_transport *t;
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &o, &rcv));
  mior_port *p = mior_transport_port(t, 0);
  mior_port_stats st;
  REQUIRE_OK(mior_port_stats_get(p, &st));
  CHECK(!(st.features & MIOR_FEAT_UDP_GRO));
  mior_pkt pkt;
  REQUIRE_OK(mior_tx_acquire(p, &pkt));
  CHECK_EQ(pkt.cap, MIOR_POOL_DEFAULT_BUF_SIZE);
  CHECK_OK(mior_pkt_release(&pkt));
  mior_addr local = tt_local(t);
  int fd = kernel_sender(&local);
  uint32_t seq = 0;
  REQUIRE(mior_port_poll(p, 0, 0) >= 0);
  gso_send(fd, &s, &seq, 30, 400, 0);
  poll_until(p, &s, seq, 2000);
  CHECK_EQ(s.got, seq);
  CHECK_EQ(s.coalesced, 0);
  REQUIRE_OK(mior_port_stats_get(p, &st));
  CHECK_EQ(st.rx_coalesced, 0);
  printf("    %s: GRO off, %u datagrams split by the kernel\n", name, s.got);
  CHECK_EQ(mior_transport_close(t), 0);
  close(fd);
}

/* The kernel refuses UDP_GRO (a seccomp filter makes setsockopt(SOL_UDP, UDP_GRO) fail, as an old
 * kernel or a sandbox would): the port opens without it, says so, counts it, and receives. */
static int refused_child(mior_backend b, uint32_t flags) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_setsockopt, 0, 5),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, UDP_GRO, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOPROTOOPT),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 77;
  if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) return 77;
  static struct seen s;
  memset(&s, 0, sizeof s);
  s.echo_fd = -1;
  mior_options o = gro_opts(b, flags);
  mior_receiver rcv = {.consume = consume, .ctx = &s};
  mior_transport *t;
  if (mior_transport_open(&t, "udp://127.0.0.1:0", &o, &rcv) != 0) return 2;
  mior_port *p = mior_transport_port(t, 0);
  mior_port_stats st;
  mior_port_stats_get(p, &st);
  if (st.features & MIOR_FEAT_UDP_GRO) return 3;
  if (st.offload_refused != 1) return 4;
  mior_addr local = tt_local(t);
  int fd = kernel_sender(&local);
  uint32_t seq = 0;
  mior_port_poll(p, 0, 0);
  gso_send(fd, &s, &seq, 30, 400, 20);
  poll_until(p, &s, seq, 2000);
  if (s.got != seq || s.bad || s.disorder || s.coalesced) return 5;
  if (mior_transport_close(t) != 0) return 6;
  return 0;
}

static void refused(mior_backend b, uint32_t flags, const char *name) {
  fflush(stdout);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) _exit(refused_child(b, flags));
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) {
    printf("    %s: seccomp unavailable, refusal not tested\n", name);
    return;
  }
  CHECK_EQ(WEXITSTATUS(status), 0);
  printf("    %s: UDP_GRO refused: plain receives, counted\n", name);
}

/* --- pull receive and bulk release over coalesced buffers ------------------------------------ */

static int readable(mior_handle h, int ms) {
  struct pollfd pfd = {.fd = (int)h, .events = POLLIN};
  return poll(&pfd, 1, ms) > 0;
}

/* What mior_rx_burst handed out, checked as it arrives: order, length, the coalesced flag. */
static void pulled_check(struct seen *s, const mior_pkt *pkt) {
  uint32_t seq = UINT32_MAX;
  if (tt_check(pkt->data, pkt->len, &seq) != 0 || seq >= MAXSEQ || pkt->len != s->want_len[seq]) {
    s->bad++;
    return;
  }
  if (seq != s->next) s->disorder++;
  s->next = seq + 1;
  s->got++;
  if (pkt->flags & MIOR_PKT_COALESCED) {
    s->coalesced++;
    if (!s->multi[seq]) s->flag_wrong++;
  }
}

/* Packets held until the end of a round, and whether each still reads as sent when given back
 * (a slot that went back early would have been reused and overwritten). */
struct held {
  mior_pkt pk[MAXKEEP];
  uint32_t n;
  int errors, stale;
};

static void *bulk_release_thread(void *arg) {
  struct held *h = arg;
  /* Chunks of 5: runs of one slot's packets cut at odd places. */
  for (uint32_t i = 0; i < h->n; i += 5) {
    uint32_t k = h->n - i < 5 ? h->n - i : 5, q;
    for (uint32_t j = 0; j < k; j++) h->stale += tt_check(h->pk[i + j].data, h->pk[i + j].len, &q) != 0;
    if (mior_pkt_release_bulk(&h->pk[i], k) != 0) h->errors++;
  }
  return NULL;
}

/* GSO sends received as coalesced buffers through mior_rx_burst with a small array (a buffer
 * spans several calls), and given back three ways at once: bulk on the port's thread right away,
 * single and bulk mixed on the port's thread later, and bulk from another thread at the same
 * time, so one slot's packets go back through every path.  Every sequence number arrives once,
 * in order, with its length; every slot comes back; the event handle is readable exactly while
 * packets of a buffer wait. */
static void pull(mior_backend b, uint32_t flags, const char *name) {
  static struct seen s;
  static struct held near, far;
  memset(&s, 0, sizeof s);
  s.echo_fd = -1;
  mior_options o = gro_opts(b, flags);
  mior_transport *t;
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL));
  mior_port *p = mior_transport_port(t, 0);
  mior_handle h;
  REQUIRE_OK(mior_port_event_handle(p, &h));
  mior_addr local = tt_local(t);
  int fd = kernel_sender(&local);
  uint32_t seq = 0, calls = 0, waits_readable = 0;
  mior_pkt arr[7], now[7];
  REQUIRE(mior_rx_burst(p, arr, 7) == 0); /* receives posted before the first datagram */
  for (int round = 0; round < 10; round++) {
    memset(&near, 0, sizeof near);
    memset(&far, 0, sizeof far);
    gso_send(fd, &s, &seq, 64, 100, 37);
    gso_send(fd, &s, &seq, 20, 300, 0);
    gso_send(fd, &s, &seq, 1, 500, 0);
    gso_send(fd, &s, &seq, 40, 1400, 0);
    gso_send(fd, &s, &seq, 64, TT_HDR, 0);
    uint32_t k = 0;
    int64_t end = tt_now_ms() + 3000;
    while (s.got + s.bad < seq && tt_now_ms() < end) {
      if (!readable(h, 100)) continue;
      int n = mior_rx_burst(p, arr, 7);
      REQUIRE(n >= 0 && n <= 7);
      calls++;
      uint32_t nnow = 0;
      for (int i = 0; i < n; i++, k++) {
        pulled_check(&s, &arr[i]);
        if (k % 3 == 0) now[nnow++] = arr[i];
        else if (k % 3 == 1 && near.n < MAXKEEP) near.pk[near.n++] = arr[i];
        else if (far.n < MAXKEEP) far.pk[far.n++] = arr[i];
        else CHECK_OK(mior_pkt_release(&arr[i]));
      }
      CHECK_OK(mior_pkt_release_bulk(now, nnow));
      /* A full array may have left packets of a buffer waiting: then the handle must say so. */
      if (n == 7 && s.got < seq) waits_readable += readable(h, 0);
    }
    /* The port's thread releases its share (one single, then a bulk of two, alternating) while
     * another thread gives back the packets of the same slots in bulk. */
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, bulk_release_thread, &far) == 0);
    for (uint32_t i = 0; i < near.n;) {
      uint32_t q;
      near.stale += tt_check(near.pk[i].data, near.pk[i].len, &q) != 0;
      if (i % 3 == 0 || i + 1 == near.n) {
        near.errors += mior_pkt_release(&near.pk[i]) != 0;
        i++;
      } else {
        near.stale += tt_check(near.pk[i + 1].data, near.pk[i + 1].len, &q) != 0;
        near.errors += mior_pkt_release_bulk(&near.pk[i], 2) != 0;
        i += 2;
      }
    }
    pthread_join(th, NULL);
    CHECK_EQ(near.errors, 0);
    CHECK_EQ(far.errors, 0);
    CHECK_EQ(near.stale, 0);
    CHECK_EQ(far.stale, 0);
    /* A second release of any of them, single or bulk, is refused. */
    if (near.n && far.n) {
      CHECK_EQ(mior_pkt_release(&near.pk[0]), -EINVAL);
      CHECK_EQ(mior_pkt_release_bulk(&far.pk[far.n - 1], 1), -EINVAL);
    }
    mior_port_stats st;
    REQUIRE_OK(mior_port_stats_get(p, &st));
    CHECK_EQ(st.user_held, 0);
  }
  CHECK_EQ(s.got, seq);
  CHECK_EQ(s.bad, 0);
  CHECK_EQ(s.disorder, 0);
  CHECK_EQ(s.flag_wrong, 0);
  CHECK(s.coalesced > 0);
  /* Nothing left: one more call finds nothing, and then the handle is quiet. */
  int n = mior_rx_burst(p, arr, 7);
  CHECK_EQ(n, 0);
  if (readable(h, 0)) CHECK_EQ(mior_rx_burst(p, arr, 7), 0); /* kernel work that brings no packet */
  CHECK(!readable(h, 0));
  /* The same packet twice next to itself in one bulk: refused, none released; then given once. */
  gso_send(fd, &s, &seq, 10, 200, 0);
  uint32_t got = 0;
  mior_pkt two[10];
  int64_t end = tt_now_ms() + 2000;
  while (got < 10 && tt_now_ms() < end) {
    n = mior_rx_burst(p, two + got, 10 - got);
    REQUIRE(n >= 0);
    got += (uint32_t)n;
  }
  CHECK_EQ(got, 10);
  if (got == 10) {
    mior_pkt dup[3] = {two[0], two[1], two[1]};
    CHECK_EQ(mior_pkt_release_bulk(dup, 3), -EINVAL);
    CHECK_OK(mior_pkt_release_bulk(two, 10));
  }
  mior_port_stats st;
  REQUIRE_OK(mior_port_stats_get(p, &st));
  CHECK_EQ(st.user_held, 0);
  CHECK_EQ(st.rx_packets, seq);
  CHECK_EQ(st.rx_drop_truncated, 0);
  CHECK(waits_readable > 0);
  printf("    %s: %u datagrams pulled in %u calls of 7, %u coalesced, released three ways\n", name, s.got,
         calls, s.coalesced);
  /* close returning 0 (not -EBUSY) is the final word that every slot came back */
  CHECK_EQ(mior_transport_close(t), 0);
  close(fd);
}

/* A buffer split over mior_rx_burst calls, with the rest still waiting when the port closes: it
 * is given back, and close finds every slot. */
static void pull_close(mior_backend b, uint32_t flags, const char *name) {
  static struct seen s;
  memset(&s, 0, sizeof s);
  mior_transport *t;
  int fd;
  mior_port *p = gro_open(b, flags, NULL, &t, &fd);
  uint32_t seq = 0;
  mior_pkt arr[3];
  REQUIRE(mior_rx_burst(p, arr, 3) == 0);
  gso_send(fd, &s, &seq, 30, 100, 0);
  int n = 0;
  int64_t end = tt_now_ms() + 2000;
  while (n == 0 && tt_now_ms() < end) n = mior_rx_burst(p, arr, 3);
  CHECK_EQ(n, 3);
  for (int i = 0; i < n; i++) pulled_check(&s, &arr[i]);
  CHECK_EQ(s.got, 3);
  CHECK_OK(mior_pkt_release_bulk(arr, (uint32_t)n));
  printf("    %s: closed with 27 packets of a buffer undelivered\n", name);
  CHECK_EQ(mior_transport_close(t), 0);
  close(fd);
}

/* The same, but the buffer was pulled in part on a thread that has ended, and the port is closed
 * from another: an io_uring SINGLE_ISSUER ring cannot move to the closing thread, so close itself
 * must give the undelivered rest back (it freed everything and returned -EBUSY before). */
struct pull_thread_arg {
  mior_port *p;
  struct seen *s;
  int got;
};

static void *pull_thread(void *arg) {
  struct pull_thread_arg *a = arg;
  mior_pkt arr[1];
  int64_t end = tt_now_ms() + 2000;
  while (a->got == 0 && tt_now_ms() < end) {
    int n = mior_rx_burst(a->p, arr, 1);
    if (n < 0) break;
    if (n == 0) continue;
    pulled_check(a->s, &arr[0]);
    a->got = n;
    CHECK_OK(mior_pkt_release(&arr[0]));
  }
  return NULL;
}

static void pull_close_other_thread(mior_backend b, uint32_t flags, const char *name) {
  static struct seen s;
  memset(&s, 0, sizeof s);
  mior_transport *t;
  int fd;
  mior_port *p = gro_open(b, flags, NULL, &t, &fd);
  uint32_t seq = 0;
  gso_send(fd, &s, &seq, 10, 100, 0);
  struct pull_thread_arg a = {.p = p, .s = &s, .got = 0};
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, pull_thread, &a) == 0);
  pthread_join(th, NULL);
  CHECK_EQ(a.got, 1);
  mior_port_stats st;
  REQUIRE_OK(mior_port_stats_get(p, &st));
  CHECK_EQ(st.user_held, 0);
  printf("    %s: 1 of 10 pulled on an ended thread, closed here\n", name);
  CHECK_EQ(mior_transport_close(t), 0);
  close(fd);
}

/* mior_tx_send_segments on a busy-polling port: the whole run is one GSO send; its first
 * datagram must not leave alone on the direct path (it did: 0 GSO sends in 5). */
static void segments_busy(mior_backend b, uint32_t flags, const char *name) {
  mior_options ro = gro_opts(b, flags);
  mior_transport *rt, *t;
  REQUIRE_OK(mior_transport_open(&rt, "udp://127.0.0.1:0", &ro, NULL));
  mior_port *rp = mior_transport_port(rt, 0);
  mior_addr dst = tt_local(rt);
  mior_options o = gro_opts(b, flags);
  o.busy_poll_us = 50;
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL));
  mior_port *p = mior_transport_port(t, 0);
  mior_port_stats st;
  REQUIRE_OK(mior_port_stats_get(p, &st));
  if (!(st.features & MIOR_FEAT_UDP_GSO)) {
    printf("    %s: no UDP GSO on this port, not checked\n", name);
  } else {
    REQUIRE(mior_port_poll(p, 0, 0) >= 0);
    for (int r = 0; r < 5; r++) {
      mior_pkt pk[2];
      uint32_t lens[2] = {500, 500};
      REQUIRE_OK(mior_tx_acquire(p, &pk[0]));
      REQUIRE_OK(mior_tx_acquire(p, &pk[1]));
      memset(pk[0].data, 1, 500);
      memset(pk[1].data, 2, 500);
      CHECK_OK(mior_tx_send_segments(p, pk, lens, 2, &dst));
      CHECK_OK(mior_tx_flush(p));
      for (int i = 0; i < 20; i++) REQUIRE(mior_port_poll(p, 0, 1000) >= 0);
    }
    REQUIRE_OK(mior_port_stats_get(p, &st));
    CHECK_EQ(st.tx_packets, 10);
    CHECK_EQ(st.tx_gso_sends, 5);
    /* All ten arrive. */
    uint64_t got = 0;
    int64_t end = tt_now_ms() + 2000;
    mior_pkt arr[16];
    while (got < 10 && tt_now_ms() < end) {
      int n = mior_rx_burst(rp, arr, 16);
      REQUIRE(n >= 0);
      for (int i = 0; i < n; i++) CHECK_EQ(arr[i].len, 500);
      if (n > 0) CHECK_OK(mior_pkt_release_bulk(arr, (uint32_t)n));
      got += (uint64_t)n;
    }
    CHECK_EQ(got, 10);
    printf("    %s: 5 runs of 2 from a busy-polling port: %llu GSO sends\n", name,
           (unsigned long long)st.tx_gso_sends);
  }
  CHECK_EQ(mior_transport_close(t), 0);
  CHECK_EQ(mior_transport_close(rt), 0);
}

/* A GSO send (UDP_SEGMENT) from a kernel socket, with its codepoint set on the socket. */
static void ksend_gso(int fd, int family, const uint8_t *addr, uint16_t port, int ecn, uint32_t first_seq,
                      uint32_t n, uint32_t seg, uint32_t last) {
  static uint8_t buf[65536];
  uint32_t total = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t len = i + 1 == n ? last : seg;
    tt_fill(buf + total, len, first_seq + i);
    total += len;
  }
  union {
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
  } a;
  memset(&a, 0, sizeof a);
  socklen_t al;
  if (family == AF_INET6) {
    a.in6.sin6_family = AF_INET6;
    a.in6.sin6_port = htons(port);
    memcpy(&a.in6.sin6_addr, addr, 16);
    al = sizeof a.in6;
    REQUIRE(setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &ecn, sizeof ecn) == 0);
  } else {
    a.in.sin_family = AF_INET;
    a.in.sin_port = htons(port);
    memcpy(&a.in.sin_addr, addr, 4);
    al = sizeof a.in;
    REQUIRE(setsockopt(fd, IPPROTO_IP, IP_TOS, &ecn, sizeof ecn) == 0);
  }
  union {
    char b[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {buf, total};
  struct msghdr m = {.msg_name = &a, .msg_namelen = al, .msg_iov = &iov, .msg_iovlen = 1,
                     .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
  cm->cmsg_level = SOL_UDP;
  cm->cmsg_type = UDP_SEGMENT;
  cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  uint16_t s16 = (uint16_t)seg;
  memcpy(CMSG_DATA(cm), &s16, sizeof s16);
  REQUIRE(sendmsg(fd, &m, 0) == (ssize_t)total);
}

/* GSO sends to a GRO receiver with every MIOR_OPT_RX_* on: the kernel hands over one coalesced
 * buffer per send, one receive with one set of metadata, and every packet split from it carries
 * that set (local address, codepoint, the one receive time, the sender); a coalesced packet sent
 * back in place (from a copy) keeps the reply's source address and codepoint. */
static void run_family_gro(mior_backend b, uint32_t flags, int family) {
  int v6 = family == AF_INET6;
  mior_options o;
  mior_options_init(&o);
  o.backend = b;
  o.flags = flags | MIOR_OPT_RX_PKTINFO | MIOR_OPT_RX_ECN | MIOR_OPT_RX_TIMESTAMP;
  mior_transport *t;
  REQUIRE_OK(mior_transport_open(&t, v6 ? "udp://[::]:0" : "udp://0.0.0.0:0", &o, NULL));
  mior_port *p = mior_transport_port(t, 0);
  mior_port_stats st;
  REQUIRE_OK(mior_port_stats_get(p, &st));
  if (!(st.features & MIOR_FEAT_UDP_GRO)) {
    printf("    UDP GRO refused here: coalesced metadata not tested\n");
    CHECK_EQ(mior_transport_close(t), 0);
    return;
  }
  uint16_t port = tt_local(t).port;
  tt_peer *peer = tt_peer_open(v6);
  int k = tt_peer_fd(peer);
  uint16_t kport = tt_peer_addr(peer).port;
  uint8_t dsts[2][16];
  memset(dsts, 0, sizeof dsts);
  int ndst = 1;
  if (v6) {
    dsts[0][15] = 1;
  } else {
    uint8_t a1[4] = {127, 0, 0, 1}, a2[4] = {127, 0, 0, 2};
    memcpy(dsts[0], a1, 4);
    memcpy(dsts[1], a2, 4);
    ndst = 2;
  }
  mior_pkt first;
  REQUIRE(mior_rx_burst(p, &first, 1) == 0); /* receives posted first */
  uint32_t seq = 0, coalesced = 0;
  for (int round = 0; round < 8; round++) {
    const uint8_t *dst = dsts[round % ndst];
    int ecn = round % 4;
    const uint32_t n = 16;
    uint64_t t0 = tt_realtime_ns();
    ksend_gso(k, family, dst, port, ecn, seq, n, 300, 100);
    static mior_pkt pk[16];
    uint32_t got = 0;
    int64_t end = tt_now_ms() + 2000;
    while (got < n && tt_now_ms() < end) {
      int r = mior_rx_burst(p, pk + got, n - got);
      REQUIRE(r >= 0);
      got += (uint32_t)r;
    }
    uint64_t t1 = tt_realtime_ns();
    CHECK_EQ(got, n);
    for (uint32_t i = 0; i < got; i++) {
      uint32_t q;
      CHECK(tt_check(pk[i].data, pk[i].len, &q) == 0 && q == seq + i);
      CHECK_EQ(pk[i].len, i + 1 == n ? 100u : 300u);
      CHECK_EQ(pk[i].flags & (MIOR_PKT_LOCAL | MIOR_PKT_ECN | MIOR_PKT_TIMESTAMP),
               MIOR_PKT_LOCAL | MIOR_PKT_ECN | MIOR_PKT_TIMESTAMP);
      CHECK(memcmp(pk[i].local.addr, dst, v6 ? 16 : 4) == 0);
      CHECK_EQ(pk[i].ecn, ecn);
      CHECK(pk[i].rx_time_ns >= t0 && pk[i].rx_time_ns <= t1);
      CHECK_EQ(pk[i].src.port, kport);
      if (pk[i].flags & MIOR_PKT_COALESCED) {
        coalesced++;
        /* One kernel receive: its packets share one receive time. */
        if (i > 0 && (pk[i - 1].flags & MIOR_PKT_COALESCED) && pk[i - 1].slot == pk[i].slot)
          CHECK_EQ(pk[i].rx_time_ns, pk[i - 1].rx_time_ns);
      }
    }
    seq += n;
    if (got != n) break;
    /* The middle packet, sent back in place with another codepoint: from a copy, it still
     * leaves from the address the query went to. */
    mior_pkt reply = pk[n / 2];
    reply.ecn = (uint8_t)((ecn + 1) % 4);
    mior_addr to = reply.src;
    CHECK_OK(mior_tx_send(p, &reply, reply.len, &to));
    CHECK_OK(mior_tx_flush(p));
    uint8_t from[16], rbuf[512];
    int recv_ecn;
    CHECK_EQ(tt_peer_recv(peer, from, &recv_ecn, rbuf, sizeof rbuf, 2000), 300);
    CHECK(memcmp(from, dst, v6 ? 16 : 4) == 0);
    CHECK_EQ(recv_ecn, (ecn + 1) % 4);
    CHECK_OK(mior_pkt_release_bulk(pk, n / 2));
    CHECK_OK(mior_pkt_release_bulk(pk + n / 2 + 1, n - n / 2 - 1));
  }
  CHECK(coalesced > 0);
  tt_drain_tx(p, 8, 2000);
  tt_peer_close(peer);
  TT_CHECK_POOL_RETURNED(t);
  CHECK_EQ(mior_transport_close(t), 0);
}

static void gro_meta(mior_backend b, uint32_t flags, const char *name) {
  (void)name;
  run_family_gro(b, flags, AF_INET);
  run_family_gro(b, flags, AF_INET6);
}

int main(void) {
  tt_watchdog(180);
  const struct {
    const char *name;
    mior_backend b;
    uint32_t flags;
  } cfgs[] = {{"uring multishot", MIOR_BACKEND_URING, 0},
              {"uring posted", MIOR_BACKEND_URING, MIOR_OPT_NO_MULTISHOT},
              {"sockets", MIOR_BACKEND_SOCKETS, 0}};
  void (*bodies[])(mior_backend, uint32_t, const char *) = {shapes, kept, echo, mior_pair, gro_off, refused,
                                                             pull, pull_close, pull_close_other_thread, segments_busy,
                                                             gro_meta};
  const char *names[] = {"shapes", "kept", "echo", "mior to mior", "gro off", "gro refused", "pull and bulk release",
                         "pull, closed mid-buffer",
                         "pull on an ended thread, closed mid-buffer",
                         "segments from a busy-polling port",
                         "metadata on coalesced packets (GSO to GRO)"};
  for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
    if (mior_backend_supported(cfgs[c].b) != 1) {
      printf("  [%s] skipped: %s\n", cfgs[c].name, mior_last_error());
      continue;
    }
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
      int before = test_failures;
      bodies[i](cfgs[c].b, cfgs[c].flags, cfgs[c].name);
      printf("  %s [%s]: %s\n", names[i], cfgs[c].name, test_failures == before ? "ok" : "FAILED");
    }
  }
  TEST_DONE();
}
