/* Per-packet metadata on every Linux backend (uring with multishot and with posted receives,
 * sockets), checked against what a plain kernel socket set: the local address each datagram was
 * sent to (127.0.0.1 and 127.0.0.2 on one 0.0.0.0 port; ::1), the ECN codepoint it carried (each
 * of 0..3, set per message), and the kernel's receive time (between the sender's clock before
 * and the receiver's after, CLOCK_REALTIME).  A reply sent in place leaves from the address the
 * query arrived on, with the codepoint the reply asks for; a transmit slot can choose its source
 * address and codepoint too; with the options off the packets carry no metadata flags; bad
 * metadata is refused.  IPv6 scopes in address text parse and format both ways.  A GSO send to a
 * GRO receiver arrives as one coalesced receive: every packet split from it carries its
 * metadata. */
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <time.h>

#include "transport_common.h"

static uint32_t g_flags;

static uint64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A kernel socket that receives the replies' TOS/TCLASS and destination. */
static int kopen(int family) {
  int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  int one = 1;
  if (family == AF_INET6) {
    REQUIRE(setsockopt(fd, IPPROTO_IPV6, IPV6_RECVTCLASS, &one, sizeof one) == 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    REQUIRE(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
  } else {
    REQUIRE(setsockopt(fd, IPPROTO_IP, IP_RECVTOS, &one, sizeof one) == 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr = {htonl(INADDR_LOOPBACK)}};
    REQUIRE(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
  }
  return fd;
}

static void ksend(int fd, int family, const uint8_t *addr, uint16_t port, int ecn, const void *buf,
                  size_t len) {
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
  REQUIRE(sendto(fd, buf, len, 0, (struct sockaddr *)&a, al) == (ssize_t)len);
}

/* Receive one reply on the kernel socket: its source address and ECN codepoint. */
static int krecv(int fd, int family, uint8_t *from, int *ecn, uint8_t *buf, size_t cap) {
  struct pollfd pfd = {.fd = fd, .events = POLLIN, .revents = 0};
  if (poll(&pfd, 1, 2000) != 1) return -1;
  union {
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
  } a;
  union {
    char b[256];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {buf, cap};
  struct msghdr m = {.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &iov, .msg_iovlen = 1,
                     .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
  ssize_t n = recvmsg(fd, &m, 0);
  if (n < 0) return -1;
  *ecn = -1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) *ecn = *(uint8_t *)CMSG_DATA(c) & 3;
    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS) {
      int tc;
      memcpy(&tc, CMSG_DATA(c), sizeof tc);
      *ecn = tc & 3;
    }
  }
  if (family == AF_INET6) memcpy(from, &a.in6.sin6_addr, 16);
  else memcpy(from, &a.in.sin_addr, 4);
  return (int)n;
}

static int pull_one(mior_port *p, mior_pkt *out) {
  int64_t end = tt_now_ms() + 2000;
  while (tt_now_ms() < end) {
    int n = mior_rx_burst(p, out, 1);
    REQUIRE(n >= 0);
    if (n == 1) return 0;
    mior_port_poll(p, 1, 0);
  }
  return -1;
}

static void run_family(mior_backend b, int family) {
  int v6 = family == AF_INET6;
  mior_options o;
  mior_options_init(&o);
  o.backend = b;
  o.flags = g_flags | MIOR_OPT_RX_PKTINFO | MIOR_OPT_RX_ECN | MIOR_OPT_RX_TIMESTAMP;
  o.buf_count = 256;
  mior_transport *t;
  REQUIRE_OK(mior_transport_open(&t, v6 ? "udp://[::]:0" : "udp://0.0.0.0:0", &o, NULL));
  mior_port *p = mior_transport_port(t, 0);
  uint16_t port = tt_local(t).port;
  int k = kopen(family);
  uint8_t dsts[2][16];
  memset(dsts, 0, sizeof dsts);
  int ndst = 1;
  if (v6) {
    dsts[0][15] = 1; /* ::1 */
  } else {
    uint8_t a1[4] = {127, 0, 0, 1}, a2[4] = {127, 0, 0, 2};
    memcpy(dsts[0], a1, 4);
    memcpy(dsts[1], a2, 4);
    ndst = 2;
  }
  for (int round = 0; round < 16; round++) {
    const uint8_t *dst = dsts[round % ndst];
    int ecn = round % 4;
    uint8_t msg[64];
    tt_fill(msg, sizeof msg, (uint32_t)round);
    uint64_t t0 = realtime_ns();
    ksend(k, family, dst, port, ecn, msg, sizeof msg);
    mior_pkt pk;
    if (pull_one(p, &pk) < 0) {
      TEST_FAIL_AT("round %d: nothing received", round);
      break;
    }
    uint64_t t1 = realtime_ns();
    CHECK_EQ(pk.len, sizeof msg);
    CHECK_EQ(pk.flags & (MIOR_PKT_LOCAL | MIOR_PKT_ECN | MIOR_PKT_TIMESTAMP),
             MIOR_PKT_LOCAL | MIOR_PKT_ECN | MIOR_PKT_TIMESTAMP);
    CHECK_EQ(pk.local.family, v6 ? MIOR_AF_INET6 : MIOR_AF_INET);
    CHECK(memcmp(pk.local.addr, dst, v6 ? 16 : 4) == 0);
    CHECK_EQ(pk.ecn, ecn);
    CHECK(pk.rx_time_ns >= t0 && pk.rx_time_ns <= t1);
    /* Reply in place: from the address the query went to, with another codepoint. */
    int want_ecn = (ecn + 1) % 4;
    pk.ecn = (uint8_t)want_ecn;
    pk.data[0] ^= 0xff;
    mior_addr to = pk.src;
    CHECK_OK(mior_tx_send(p, &pk, pk.len, &to));
    CHECK_OK(mior_tx_flush(p));
    uint8_t from[16], rbuf[128];
    int recv_ecn;
    int n = krecv(k, family, from, &recv_ecn, rbuf, sizeof rbuf);
    CHECK_EQ(n, (int)sizeof msg);
    CHECK(memcmp(from, dst, v6 ? 16 : 4) == 0);
    CHECK_EQ(recv_ecn, want_ecn);
    mior_port_poll(p, 0, 0); /* the send's completion */
  }
  /* A transmit slot with its own source address and codepoint. */
  mior_pkt tp;
  REQUIRE_OK(mior_tx_acquire(p, &tp));
  CHECK_EQ(tp.flags, 0);
  memset(tp.data, 7, 32);
  tp.flags = MIOR_PKT_LOCAL | MIOR_PKT_ECN;
  memset(&tp.local, 0, sizeof tp.local);
  tp.local.family = v6 ? MIOR_AF_INET6 : MIOR_AF_INET;
  memcpy(tp.local.addr, dsts[ndst - 1], v6 ? 16 : 4);
  tp.ecn = 1;
  mior_addr kaddr;
  {
    union {
      struct sockaddr_in in;
      struct sockaddr_in6 in6;
    } a;
    socklen_t al = sizeof a;
    REQUIRE(getsockname(k, (struct sockaddr *)&a, &al) == 0);
    memset(&kaddr, 0, sizeof kaddr);
    kaddr.family = v6 ? MIOR_AF_INET6 : MIOR_AF_INET;
    kaddr.port = ntohs(v6 ? a.in6.sin6_port : a.in.sin_port);
    memcpy(kaddr.addr, v6 ? (void *)&a.in6.sin6_addr : (void *)&a.in.sin_addr, v6 ? 16 : 4);
  }
  CHECK_OK(mior_tx_send(p, &tp, 32, &kaddr));
  CHECK_OK(mior_tx_flush(p));
  uint8_t from[16], rbuf[64];
  int recv_ecn;
  CHECK_EQ(krecv(k, family, from, &recv_ecn, rbuf, sizeof rbuf), 32);
  CHECK(memcmp(from, dsts[ndst - 1], v6 ? 16 : 4) == 0);
  CHECK_EQ(recv_ecn, 1);
  /* Bad metadata is refused (and the slot is the port's again). */
  REQUIRE_OK(mior_tx_acquire(p, &tp));
  tp.flags = MIOR_PKT_ECN;
  tp.ecn = 4;
  CHECK_ERR(mior_tx_send(p, &tp, 8, &kaddr), -EINVAL);
  REQUIRE_OK(mior_tx_acquire(p, &tp));
  tp.flags = MIOR_PKT_LOCAL;
  memset(&tp.local, 0, sizeof tp.local);
  tp.local.family = v6 ? MIOR_AF_INET : MIOR_AF_INET6;
  CHECK_ERR(mior_tx_send(p, &tp, 8, &kaddr), -EINVAL);
  close(k);
  mior_port_poll(p, 0, 0);
  TT_CHECK_POOL_RETURNED(t);
  CHECK_EQ(mior_transport_close(t), 0);
}

static void body_meta(mior_backend b) {
  run_family(b, AF_INET);
  run_family(b, AF_INET6);
}

/* The busy-polling direct path (a non-blocking recvmsg/sendmsg beside the ring, one packet per
 * poll) must carry the same metadata as the ring: the arrival address and codepoint on receive,
 * and a reply from that address with the codepoint asked for, echoed in place from consume. */
typedef struct direct_ctx {
  int got;
  uint32_t flags;
  mior_addr local;
  uint8_t ecn;
  int sent;
} direct_ctx;

static int direct_consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  direct_ctx *d = ctx;
  d->got++;
  d->flags = pkt->flags;
  d->local = pkt->local;
  d->ecn = pkt->ecn;
  mior_pkt r = *pkt;
  r.ecn = (uint8_t)((pkt->ecn + 1) % 4);
  r.flags = pkt->flags & (MIOR_PKT_LOCAL | MIOR_PKT_ECN); /* reply from where it arrived */
  mior_addr to = pkt->src;
  d->sent = mior_tx_send(port, &r, r.len, &to);
  return MIOR_DONE;
}

static void run_family_direct(mior_backend b, int family) {
  int v6 = family == AF_INET6;
  mior_options o;
  mior_options_init(&o);
  o.backend = b;
  o.flags = g_flags | MIOR_OPT_RX_PKTINFO | MIOR_OPT_RX_ECN;
  o.busy_poll_us = 2000;
  direct_ctx d;
  memset(&d, 0, sizeof d);
  mior_receiver rcv = {.consume = direct_consume, .flush = NULL, .ctx = &d};
  mior_transport *t;
  REQUIRE_OK(mior_transport_open(&t, v6 ? "udp://[::]:0" : "udp://0.0.0.0:0", &o, &rcv));
  mior_port *p = mior_transport_port(t, 0);
  uint16_t port = tt_local(t).port;
  int k = kopen(family);
  uint8_t dst[16];
  memset(dst, 0, sizeof dst);
  if (v6) dst[15] = 1;
  else {
    uint8_t a2[4] = {127, 0, 0, 2};
    memcpy(dst, a2, 4);
  }
  uint64_t submits0 = 0;
  {
    mior_port_stats st;
    REQUIRE_OK(mior_port_stats_get(p, &st));
    submits0 = st.submits;
  }
  for (int round = 0; round < 8 && !test_failures; round++) {
    int ecn = 1 + round % 3;
    uint8_t msg[48];
    tt_fill(msg, sizeof msg, (uint32_t)round);
    ksend(k, family, dst, port, ecn, msg, sizeof msg);
    int before = d.got;
    int64_t end = tt_now_ms() + 2000;
    while (d.got == before && tt_now_ms() < end) REQUIRE(mior_port_poll(p, 1, 100000) >= 0);
    if (d.got == before) {
      TEST_FAIL_AT("round %d: nothing received", round);
      break;
    }
    CHECK_EQ(d.flags & (MIOR_PKT_LOCAL | MIOR_PKT_ECN), MIOR_PKT_LOCAL | MIOR_PKT_ECN);
    CHECK(memcmp(d.local.addr, dst, v6 ? 16 : 4) == 0);
    CHECK_EQ(d.ecn, ecn);
    CHECK_OK(d.sent);
    CHECK_OK(mior_tx_flush(p));
    uint8_t from[16], rbuf[128];
    int recv_ecn;
    CHECK_EQ(krecv(k, family, from, &recv_ecn, rbuf, sizeof rbuf), (int)sizeof msg);
    CHECK(memcmp(from, dst, v6 ? 16 : 4) == 0);
    CHECK_EQ(recv_ecn, (ecn + 1) % 4);
    mior_port_poll(p, 0, 0); /* the send's completion */
  }
  mior_port_stats st;
  REQUIRE_OK(mior_port_stats_get(p, &st));
  CHECK(st.submits > submits0); /* the port did look (direct calls count as submits) */
  close(k);
  mior_port_poll(p, 0, 0);
  TT_CHECK_POOL_RETURNED(t);
  CHECK_EQ(mior_transport_close(t), 0);
}

static void body_direct(mior_backend b) {
  run_family_direct(b, AF_INET);
  run_family_direct(b, AF_INET6);
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
static void run_family_gro(mior_backend b, int family) {
  int v6 = family == AF_INET6;
  mior_options o;
  mior_options_init(&o);
  o.backend = b;
  o.flags = g_flags | MIOR_OPT_RX_PKTINFO | MIOR_OPT_RX_ECN | MIOR_OPT_RX_TIMESTAMP;
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
  int k = kopen(family);
  union {
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
  } ka;
  socklen_t kal = sizeof ka;
  REQUIRE(getsockname(k, (struct sockaddr *)&ka, &kal) == 0);
  uint16_t kport = ntohs(v6 ? ka.in6.sin6_port : ka.in.sin_port);
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
    uint64_t t0 = realtime_ns();
    ksend_gso(k, family, dst, port, ecn, seq, n, 300, 100);
    static mior_pkt pk[16];
    uint32_t got = 0;
    int64_t end = tt_now_ms() + 2000;
    while (got < n && tt_now_ms() < end) {
      int r = mior_rx_burst(p, pk + got, n - got);
      REQUIRE(r >= 0);
      got += (uint32_t)r;
    }
    uint64_t t1 = realtime_ns();
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
    CHECK_EQ(krecv(k, family, from, &recv_ecn, rbuf, sizeof rbuf), 300);
    CHECK(memcmp(from, dst, v6 ? 16 : 4) == 0);
    CHECK_EQ(recv_ecn, (ecn + 1) % 4);
    CHECK_OK(mior_pkt_release_bulk(pk, n / 2));
    CHECK_OK(mior_pkt_release_bulk(pk + n / 2 + 1, n - n / 2 - 1));
  }
  CHECK(coalesced > 0);
  tt_drain_tx(p, 8, 2000);
  close(k);
  TT_CHECK_POOL_RETURNED(t);
  CHECK_EQ(mior_transport_close(t), 0);
}

static void body_gro_meta(mior_backend b) {
  run_family_gro(b, AF_INET);
  run_family_gro(b, AF_INET6);
}

/* Off: no flags, and the same datagram arrives. */
static void body_off(mior_backend b) {
  mior_options o;
  mior_options_init(&o);
  o.backend = b;
  o.flags = g_flags;
  mior_transport *t;
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL));
  mior_port *p = mior_transport_port(t, 0);
  int k = kopen(AF_INET);
  uint8_t a[4] = {127, 0, 0, 1}, msg[40];
  tt_fill(msg, sizeof msg, 9);
  ksend(k, AF_INET, a, tt_local(t).port, 3, msg, sizeof msg);
  mior_pkt pk;
  REQUIRE(pull_one(p, &pk) == 0);
  CHECK_EQ(pk.flags, 0);
  CHECK_EQ(pk.len, sizeof msg);
  CHECK_OK(mior_pkt_release(&pk));
  close(k);
  /* Options on a kind other than udp are refused. */
  mior_transport *t2 = NULL;
  o.flags = MIOR_OPT_RX_ECN;
  int rc = mior_transport_open(&t2, "ip://127.0.0.1/253", &o, NULL);
  CHECK(rc == -EINVAL || rc == -EPERM);
  TT_CHECK_POOL_RETURNED(t);
  CHECK_EQ(mior_transport_close(t), 0);
}

static void scopes(void) {
  mior_addr a;
  char text[80];
  unsigned lo = if_nametoindex("lo");
  REQUIRE(lo > 0);
  CHECK_OK(mior_addr_parse(&a, "[fe80::1%lo]:53"));
  CHECK_EQ(a.family, MIOR_AF_INET6);
  CHECK_EQ(a.scope_id, lo);
  CHECK_EQ(a.port, 53);
  CHECK_OK(mior_addr_format(&a, text, sizeof text));
  CHECK(strcmp(text, "[fe80::1%lo]:53") == 0);
  CHECK_OK(mior_addr_parse(&a, "fe80::2%1"));
  CHECK_EQ(a.scope_id, 1);
  CHECK_EQ(a.port, 0);
  a.scope_id = 999999; /* no such interface: the number */
  CHECK_OK(mior_addr_format(&a, text, sizeof text));
  CHECK(strcmp(text, "[fe80::2%999999]:0") == 0);
  mior_addr b;
  CHECK_OK(mior_addr_parse(&b, text));
  CHECK_EQ(b.scope_id, 999999);
  CHECK_ERR(mior_addr_parse(&a, "[fe80::1%nosuchif0]:53"), -EINVAL);
  CHECK_ERR(mior_addr_parse(&a, "[fe80::1%]:53"), -EINVAL);
  CHECK_ERR(mior_addr_parse(&a, "127.0.0.1%lo:53"), -EINVAL);
  CHECK_ERR(mior_addr_format(&b, text, 12), -ENOSPC);
  printf("  scopes in address text: %s\n", test_failures ? "FAILED" : "ok");
}

int main(void) {
  tt_watchdog(110);
  scopes();
  int ran = 0;
  static const struct {
    const char *name;
    uint32_t flags;
  } cfgs[] = {{"", 0}, {" (posted receives)", MIOR_OPT_NO_MULTISHOT}};
  for (size_t i = 0; i < 2; i++) {
    char n1[96], n2[96], n3[96];
    snprintf(n1, sizeof n1, "metadata against the sender's%s", cfgs[i].name);
    snprintf(n2, sizeof n2, "metadata off%s", cfgs[i].name);
    snprintf(n3, sizeof n3, "metadata on coalesced packets (GSO to GRO)%s", cfgs[i].name);
    g_flags = cfgs[i].flags;
    ran |= tt_for_each_backend(n1, body_meta);
    tt_for_each_backend(n2, body_off);
    tt_for_each_backend(n3, body_gro_meta);
    snprintf(n3, sizeof n3, "metadata on the busy-polling direct path%s", cfgs[i].name);
    tt_for_each_backend(n3, body_direct);
  }
  if (!ran) TEST_SKIP("no backend is supported here");
  TEST_DONE();
}
