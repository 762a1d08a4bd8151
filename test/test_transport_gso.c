/* UDP GSO (the default on udp ports) in both Linux backends: runs of equal-size sends to one
 * destination (the connected peer, or any address) go out as one SENDMSG with UDP_SEGMENT.  Whatever the run looks like (one datagram, exactly 64, more than 64,
 * sizes that change in the middle, a shorter last datagram, datagrams so large that the 64 KiB
 * limit splits the run or forbids GSO), every datagram must arrive once, intact and with its own
 * length, and the port's counters must count each datagram, not each system call.  The receiver is
 * a plain kernel socket, so what is checked is what went on the wire.
 */
#include <poll.h>

#include "transport_common.h"

#define MAX_DGRAM 65507u

static uint8_t rxbuf[65536];
static mior_backend g_backend = MIOR_BACKEND_URING;

struct sender {
  mior_transport *t;
  mior_port *port;
  int rx_fd;
  uint32_t next_seq;
  uint64_t sent_pkts, sent_bytes;
};

/* A receiving socket on ip (IPv4 text), or on loopback when ip is NULL. */
static int open_receiver_on(int family, const char *ip, mior_addr *addr) {
  int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  int big = 16 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  if (family == AF_INET6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_addr = in6addr_loopback;
    len = sizeof *s6;
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    s4->sin_family = AF_INET;
    s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ip) REQUIRE(inet_pton(AF_INET, ip, &s4->sin_addr) == 1);
    len = sizeof *s4;
  }
  REQUIRE(bind(fd, (struct sockaddr *)&ss, len) == 0);
  len = sizeof ss;
  REQUIRE(getsockname(fd, (struct sockaddr *)&ss, &len) == 0);
  memset(addr, 0, sizeof *addr);
  if (family == AF_INET6) {
    addr->family = MIOR_AF_INET6;
    addr->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    memcpy(addr->addr, &in6addr_loopback, 16);
  } else {
    addr->family = MIOR_AF_INET;
    addr->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    memcpy(addr->addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
  }
  return fd;
}

static int open_receiver(int family, mior_addr *addr) { return open_receiver_on(family, NULL, addr); }

/* The socket a port owns (the one bound to its local port): the test reaches under the port to
 * make the kernel refuse GSO. */
static int find_socket_fd(uint16_t port) {
  for (int fd = 3; fd < 1024; fd++) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int type = 0;
    socklen_t tl = sizeof type;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 || ss.ss_family != AF_INET) continue;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_DGRAM) continue;
    if (ntohs(((struct sockaddr_in *)&ss)->sin_port) == port) return fd;
  }
  return -1;
}

static void sender_open_at(struct sender *s, int family, uint32_t flags, uint32_t buf_size, uint32_t buf_count,
                           const netns_pair *pair) {
  memset(s, 0, sizeof *s);
  mior_addr dst;
  if (pair) REQUIRE_OK(netns_enter(pair->fd_b));
  s->rx_fd = open_receiver_on(family, pair ? pair->ip_b : NULL, &dst);
  if (pair) REQUIRE_OK(netns_enter(pair->fd_a));
  char local[64] = "udp://127.0.0.1:0";
  if (pair) snprintf(local, sizeof local, "udp://%s:0", pair->ip_a);
  char peer[64];
  REQUIRE_OK(mior_addr_format(&dst, peer, sizeof peer));
  mior_options o = tt_opts(g_backend);
  o.flags = MIOR_OPT_NO_RX | flags;
  o.peer = peer;
  o.buf_size = buf_size;
  o.buf_count = buf_count;
  o.rx_depth = 1;
  o.batch = 256; /* larger than one GSO send, so a queued run is split at 64 */
  REQUIRE_OK(mior_transport_open(&s->t, family == AF_INET6 ? "udp://[::1]:0" : local, &o, NULL));
  s->port = mior_transport_port(s->t, 0);
  REQUIRE(s->port);
}

static void sender_open(struct sender *s, int family, uint32_t flags, uint32_t buf_size, uint32_t buf_count) {
  sender_open_at(s, family, flags, buf_size, buf_count, NULL);
}

/* Queue one send per length (all in one flush, so they form runs), wait until every send has
 * completed, then read back exactly that many datagrams and check each. */
static void send_batch(struct sender *s, const uint32_t *lens, uint32_t n) {
  uint32_t first = s->next_seq;
  for (uint32_t i = 0; i < n; i++) {
    mior_pkt pkt;
    REQUIRE_OK(mior_tx_acquire(s->port, &pkt));
    REQUIRE(lens[i] <= pkt.cap);
    tt_fill(pkt.data, lens[i], s->next_seq++);
    REQUIRE_OK(mior_tx_send(s->port, &pkt, lens[i], NULL));
  }
  CHECK_OK(mior_tx_flush(s->port));
  mior_port_stats st;
  int64_t end = tt_now_ms() + 5000;
  for (;;) {
    REQUIRE_OK(mior_port_poll(s->port, 0, 10000));
    REQUIRE_OK(mior_port_stats_get(s->port, &st));
    if (st.tx_in_flight == 0 || tt_now_ms() > end) break;
  }
  CHECK_EQ(st.tx_in_flight, 0);
  for (uint32_t i = 0; i < n; i++) {
    s->sent_pkts++;
    s->sent_bytes += lens[i];
  }
  CHECK_EQ(st.tx_packets, s->sent_pkts);
  CHECK_EQ(st.tx_bytes, s->sent_bytes);
  CHECK_EQ(st.tx_errors, 0);
  CHECK_EQ(st.tx_short, 0);

  /* Loopback delivers in order, and the datagrams were cut from one skb in order: datagram i of
   * the batch must be seq first + i with length lens[i]. */
  for (uint32_t i = 0; i < n; i++) {
    struct pollfd pfd = {.fd = s->rx_fd, .events = POLLIN};
    if (poll(&pfd, 1, 2000) != 1) {
      TEST_FAIL_AT("datagram %u of %u (seq %u) never arrived", i, n, first + i);
      return;
    }
    ssize_t got = recv(s->rx_fd, rxbuf, sizeof rxbuf, MSG_DONTWAIT | MSG_TRUNC);
    REQUIRE(got > 0);
    uint32_t seq = UINT32_MAX;
    int rc = tt_check(rxbuf, (uint32_t)got, &seq);
    if (rc != 0 || seq != first + i || (uint32_t)got != lens[i]) {
      TEST_FAIL_AT("datagram %u of %u: check %d, seq %u (want %u), len %zd (want %u)", i, n, rc, seq,
                   first + i, got, lens[i]);
      return;
    }
  }
  /* Nothing more: no datagram was sent twice. */
  ssize_t extra = recv(s->rx_fd, rxbuf, sizeof rxbuf, MSG_DONTWAIT);
  CHECK(extra < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

static void sender_close(struct sender *s) {
  CHECK_EQ(mior_transport_close(s->t), 0);
  close(s->rx_fd);
}

static void fill(uint32_t *lens, uint32_t n, uint32_t len) {
  for (uint32_t i = 0; i < n; i++) lens[i] = len;
}

static void scenarios(int family, uint32_t flags) {
  struct sender s;
  static uint32_t lens[512];
  sender_open(&s, family, flags, 2048, 1024);
  mior_port_stats st;
  REQUIRE_OK(mior_port_stats_get(s.port, &st));
  if (!(flags & MIOR_OPT_NO_UDP_GSO)) CHECK(st.features & MIOR_FEAT_UDP_GSO);
  else CHECK(!(st.features & MIOR_FEAT_UDP_GSO));

  fill(lens, 1, 100); /* a batch of one: no GSO */
  send_batch(&s, lens, 1);
  fill(lens, 2, 100); /* the smallest GSO run */
  send_batch(&s, lens, 2);
  fill(lens, 64, 100); /* exactly one full GSO send */
  send_batch(&s, lens, 64);
  fill(lens, 65, 333); /* 64 + 1 */
  send_batch(&s, lens, 65);
  fill(lens, 200, 120); /* 64 + 64 + 64 + 8 */
  send_batch(&s, lens, 200);
  /* A shorter datagram ends a run; a longer one starts a new one. */
  static const uint32_t mixed[] = {100, 100, 100, 50, 200, 200, 17, 300, 300, 300, 300, 299,
                                   16, 16, 1000, 999, 998, 500, 500, 700, 700, 700, 16};
  send_batch(&s, mixed, sizeof mixed / sizeof mixed[0]);
  /* The size changes in the middle of a batch. */
  fill(lens, 30, 500);
  fill(lens + 30, 30, 400);
  send_batch(&s, lens, 60);
  /* The largest datagram a slot holds: 64 of them exceed 64 KiB, so the byte limit splits the
   * run well before the segment limit. */
  fill(lens, 64, 2048);
  lens[63] = 2047;
  send_batch(&s, lens, 64);
  /* Random sizes, then long runs again: the pending queue and the GSO records recycle. */
  for (uint32_t i = 0; i < 300; i++) lens[i] = tt_len_for(i, 16, 2048);
  send_batch(&s, lens, 300);
  for (int round = 0; round < 20; round++) {
    fill(lens, 256, 64 + (uint32_t)round);
    send_batch(&s, lens, 256);
  }

  REQUIRE_OK(mior_port_stats_get(s.port, &st));
  /* The kernel took every GSO send: the feature is still on, and runs went out as GSO sends. */
  if (!(flags & MIOR_OPT_NO_UDP_GSO)) {
    CHECK(st.features & MIOR_FEAT_UDP_GSO);
    CHECK(st.tx_gso_sends > 0);
    CHECK_EQ(st.offload_refused, 0);
  } else {
    CHECK_EQ(st.tx_gso_sends, 0);
  }
  CHECK_EQ(st.tx_packets, s.sent_pkts);
  CHECK_EQ(st.tx_bytes, s.sent_bytes);
  CHECK_EQ(st.completions, s.sent_pkts); /* one completion record per datagram */
  CHECK_EQ(st.user_held, 0);
  sender_close(&s);
}

/* Datagrams of up to 65507 bytes (IPv4's largest): two never fit one GSO send, so they go one by
 * one, and a run of small ones after them still forms. */
static void huge(void) {
  struct sender s;
  sender_open(&s, AF_INET, 0, 65536, 32);
  uint32_t lens[8] = {MAX_DGRAM, MAX_DGRAM, MAX_DGRAM, 32768, 32767, 1000, 1000, 1000};
  send_batch(&s, lens, 8);
  uint32_t l2[3] = {32000, 32000, 1487}; /* exactly at the 64 KiB limit: 65487 bytes */
  send_batch(&s, l2, 3);
  sender_close(&s);
}

/* Sends with a destination on an unconnected socket form GSO runs too, per destination: a run
 * to one address, then alternating addresses (no run can form), then a run to the other. */
static void with_dst(void) {
  mior_addr dst[2];
  int fd[2];
  fd[0] = open_receiver(AF_INET, &dst[0]);
  fd[1] = open_receiver(AF_INET, &dst[1]);
  mior_options o = tt_opts(g_backend);
  o.flags = MIOR_OPT_NO_RX;
  mior_transport *t;
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL));
  mior_port *p = mior_transport_port(t, 0);
  mior_port_stats st;
  REQUIRE_OK(mior_port_stats_get(p, &st));
  CHECK(st.features & MIOR_FEAT_UDP_GSO);
  /* 20 to dst 0, 10 alternating, 20 to dst 1; sequence numbers per destination */
  uint32_t seq[2] = {0, 0}, total = 50;
  for (uint32_t i = 0; i < total; i++) {
    uint32_t d = i < 20 ? 0 : i < 30 ? (i & 1) : 1;
    mior_pkt pkt;
    REQUIRE_OK(mior_tx_acquire(p, &pkt));
    tt_fill(pkt.data, 100, seq[d]++);
    REQUIRE_OK(mior_tx_send(p, &pkt, 100, &dst[d]));
  }
  CHECK_OK(mior_tx_flush(p));
  for (uint32_t d = 0; d < 2; d++) {
    for (uint32_t i = 0; i < seq[d]; i++) {
      struct pollfd pfd = {.fd = fd[d], .events = POLLIN};
      REQUIRE(poll(&pfd, 1, 2000) == 1);
      uint32_t got_seq;
      ssize_t got = recv(fd[d], rxbuf, sizeof rxbuf, 0);
      if (!(got == 100 && tt_check(rxbuf, 100, &got_seq) == 0 && got_seq == i)) {
        TEST_FAIL_AT("dst %u datagram %u: len %zd seq %u", d, i, got, got_seq);
        break;
      }
    }
  }
  int64_t end = tt_now_ms() + 2000;
  do {
    REQUIRE_OK(mior_port_poll(p, 0, 1000));
    REQUIRE_OK(mior_port_stats_get(p, &st));
  } while (st.tx_in_flight && tt_now_ms() < end);
  CHECK_EQ(st.tx_packets, total);
  CHECK(st.tx_gso_sends >= 2); /* the run to dst 0 and the run to dst 1 */
  CHECK(st.tx_gso_sends < total);
  CHECK_EQ(mior_transport_close(t), 0);
  close(fd[0]);
  close(fd[1]);
}

/* Sends still queued at close come back: close returns 0 and no slot is lost. */
static void close_with_queued(void) {
  struct sender s;
  sender_open(&s, AF_INET, 0, 2048, 256);
  for (uint32_t i = 0; i < 100; i++) {
    mior_pkt pkt;
    REQUIRE_OK(mior_tx_acquire(s.port, &pkt));
    tt_fill(pkt.data, 200, i);
    REQUIRE_OK(mior_tx_send(s.port, &pkt, 200, NULL));
  }
  sender_close(&s);
}

static uint32_t gso_on(const struct sender *s) {
  mior_port_stats st;
  REQUIRE_OK(mior_port_stats_get(s->port, &st));
  return st.features & MIOR_FEAT_UDP_GSO;
}

/* Over a veth (MTU 1500) a GSO segment must fit the MTU.  When the MTU drops under a running port
 * the kernel refuses the GSO send (EINVAL): no datagram may be lost.  If GSO had worked before,
 * only that size goes single from then on; if it was the first GSO send (the probe), GSO is
 * switched off for the port and the feature bit cleared. */
static void mtu_change(void) {
  /* static: tt_pair_create registers it for the exit-time cleanup, which must not find a dead
   * stack frame (this runs once per backend; it crashed at exit once mior_pkt grew and the frame
   * changed). */
  static netns_pair pair;
  tt_pair_create(&pair, "tgso", 219);
  char cmd[128];
  static uint32_t lens[64];

  struct sender s;
  sender_open_at(&s, AF_INET, 0, 2048, 512, &pair);
  fill(lens, 64, 1472); /* the largest segment a 1500-byte MTU takes */
  send_batch(&s, lens, 64);
  fill(lens, 10, 2000); /* above the MTU: single sends, fragmented */
  send_batch(&s, lens, 10);
  CHECK(gso_on(&s));
  snprintf(cmd, sizeof cmd, "ip link set dev %s mtu 1280", pair.if_a);
  REQUIRE(netns_exec(pair.ns_a, cmd) == 0);
  fill(lens, 64, 1400); /* refused as GSO now: must go single */
  send_batch(&s, lens, 64);
  fill(lens, 64, 1400);
  send_batch(&s, lens, 64);
  fill(lens, 64, 1000); /* smaller segments still go as GSO */
  send_batch(&s, lens, 64);
  CHECK(gso_on(&s));
  sender_close(&s);

  snprintf(cmd, sizeof cmd, "ip link set dev %s mtu 1500", pair.if_a);
  REQUIRE(netns_exec(pair.ns_a, cmd) == 0);
  sender_open_at(&s, AF_INET, 0, 2048, 512, &pair);
  CHECK(gso_on(&s));
  snprintf(cmd, sizeof cmd, "ip link set dev %s mtu 1280", pair.if_a);
  REQUIRE(netns_exec(pair.ns_a, cmd) == 0);
  fill(lens, 64, 1400); /* the very first GSO send fails: the probe turns GSO off */
  send_batch(&s, lens, 64);
  CHECK(!gso_on(&s));
  fill(lens, 64, 1000);
  send_batch(&s, lens, 64);
  sender_close(&s);
  REQUIRE_OK(netns_enter_host());
  CHECK_OK(netns_pair_destroy(&pair));
}

/* The kernel refuses GSO sends at run time.  A route without checksum offload used to give EIO
 * (what Tailscale meets and answers by turning GSO off), but since Linux 6.11 the kernel
 * checksums such sends itself; SO_NO_CHECK (no UDP checksum on IPv4) still makes every GSO send
 * fail, with EINVAL.  Either way the refused batch goes out one by one, in order, nothing lost,
 * and the refusal is counted.  Refused on the first GSO send (the probe), GSO goes off for the
 * port and its feature bit is cleared; refused after GSO worked, only that segment size and
 * larger go single from then on. */
static void set_no_check(const struct sender *s) {
  mior_addr a;
  REQUIRE_OK(mior_port_local_addr(s->port, &a));
  int fd = find_socket_fd(a.port);
  REQUIRE(fd >= 0);
  int one = 1;
  REQUIRE(setsockopt(fd, SOL_SOCKET, SO_NO_CHECK, &one, sizeof one) == 0);
}

static void refused_at_run_time(void) {
  static uint32_t lens[64];
  struct sender s;
  mior_port_stats st;
  /* after GSO worked */
  sender_open(&s, AF_INET, 0, 2048, 512);
  fill(lens, 64, 800);
  send_batch(&s, lens, 64);
  REQUIRE_OK(mior_port_stats_get(s.port, &st));
  CHECK(st.tx_gso_sends >= 1);
  uint64_t gso_before = st.tx_gso_sends;
  set_no_check(&s);
  fill(lens, 64, 1000);
  send_batch(&s, lens, 64); /* refused (EINVAL), then 64 single sends */
  fill(lens, 64, 1000);
  send_batch(&s, lens, 64); /* this size now goes single */
  REQUIRE_OK(mior_port_stats_get(s.port, &st));
  CHECK_EQ(st.offload_refused, 1);
  CHECK_EQ(st.tx_gso_sends, gso_before);
  CHECK_EQ(st.tx_errors, 0);
  CHECK(gso_on(&s));
  sender_close(&s);
  /* on the probe */
  sender_open(&s, AF_INET, 0, 2048, 512);
  CHECK(gso_on(&s));
  set_no_check(&s);
  fill(lens, 64, 700);
  send_batch(&s, lens, 64);
  CHECK(!gso_on(&s));
  fill(lens, 64, 100);
  send_batch(&s, lens, 64);
  REQUIRE_OK(mior_port_stats_get(s.port, &st));
  CHECK_EQ(st.offload_refused, 1);
  CHECK_EQ(st.tx_gso_sends, 0);
  CHECK_EQ(st.tx_errors, 0);
  sender_close(&s);
}

int main(void) {
  tt_watchdog(180);
  const mior_backend backends[] = {MIOR_BACKEND_URING, MIOR_BACKEND_SOCKETS};
  for (size_t b = 0; b < 2; b++) {
    g_backend = backends[b];
    if (mior_backend_supported(g_backend) != 1) {
      printf("  [%s] skipped: %s\n", mior_backend_name(g_backend), mior_last_error());
      continue;
    }
    const struct {
      const char *name;
      int family;
      uint32_t flags;
    } runs[] = {{"ipv4 gso", AF_INET, 0},
                {"ipv6 gso", AF_INET6, 0},
                {"ipv4 no-gso", AF_INET, MIOR_OPT_NO_UDP_GSO},
                {"ipv6 no-gso", AF_INET6, MIOR_OPT_NO_UDP_GSO}};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
      int before = test_failures;
      scenarios(runs[i].family, runs[i].flags);
      printf("  %s [%s]: %s\n", runs[i].name, mior_backend_name(g_backend), test_failures == before ? "ok" : "FAILED");
    }
    huge();
    printf("  datagrams up to 65507 bytes [%s]: done\n", mior_backend_name(g_backend));
    with_dst();
    printf("  sends with destinations [%s]: done\n", mior_backend_name(g_backend));
    close_with_queued();
    printf("  close with sends queued [%s]: done\n", mior_backend_name(g_backend));
    mtu_change();
    printf("  MTU lowered under a running port [%s]: done\n", mior_backend_name(g_backend));
    refused_at_run_time();
    printf("  GSO refused at run time (SO_NO_CHECK) [%s]: done\n", mior_backend_name(g_backend));
  }
  TEST_DONE();
}
