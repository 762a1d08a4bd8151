/* lwIP on a mior packet port, talked to by the Linux kernel of another namespace (root; the test
 * makes the namespaces and always deletes them).  lwIP owns 10.77.N.3 on ns b's veth end, an
 * address the kernel in ns b does not have; every client below is a kernel socket in ns a.
 *   - ARP: the kernel in ns a resolves lwIP's address to lwIP's MAC, lwIP learns ns a's MAC;
 *   - ICMP: `ping -c 3` gets three replies (a raw ICMP socket stands in if ping is missing);
 *   - 200 sequential TCP connections, each echoed exactly, closed, and none left open;
 *   - 64 MiB through the echo both ways, compared byte for byte; the same transfer and
 *     connection count through the kernel alone (an echo thread in ns b) as the baseline;
 *   - 64 MiB one way at a time, as iperf3 measures: into lwIP's discard service and out of its
 *     source service (checked byte for byte), MB/s each way;
 *   - the same 64 MiB with every received frame copied (MIOR_LWIP_COPY_RX), to compare;
 *   - connections and bulk again over the sockets backend (recvmmsg/sendmmsg);
 *   - a client that resets its connection midway: lwIP frees it, no slot stays held;
 *   - a lone IPv4 first fragment and an out-of-order TCP segment (raw socket in ns a): lwIP
 *     queues both, but neither holds a slot of the port (issue 15: one fragment made stop fail);
 *   - at the end every slot is back: lwIP holds none, user_held is 0, mior_lwip_stop (which
 *     closes the transport) returns 0.
 */
#include "transport_common.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>

#ifdef MIOR_HAVE_LWIP
#include "lwip/etharp.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "lwip/tcpip.h"
#include <mior/proto/checksum.h>
#include "mior_lwip.h"
#endif

#define ECHO_PORT 7
#define DISCARD_PORT 9
#define SOURCE_PORT 19
#define KERNEL_ECHO_PORT 7007
#define CONNS 200
#define BULK (64u << 20)

#ifdef MIOR_HAVE_LWIP
static netns_pair pair;
static char lwip_ip[16];
static mior_lwip *cur_lwip; /* for diagnostics when a transfer fails */

static void print_diag(const char *when) {
  if (!cur_lwip) return;
  mior_lwip_stats st;
  mior_lwip_stats_get(cur_lwip, &st);
  mior_port_stats ps;
  mior_lwip_port_stats(cur_lwip, &ps);
  printf("  [%s] lwIP: in %llu (copied %llu, dropped %llu) out %llu (deferred %llu, ERR_MEM %llu) "
         "held %u; port: rx %llu drop kernel %llu nobufs %llu trunc %llu err %llu, tx %llu "
         "err %llu backpressure %llu\n", when,
         (unsigned long long)st.rx_frames, (unsigned long long)st.rx_copied,
         (unsigned long long)st.rx_dropped, (unsigned long long)st.tx_frames,
         (unsigned long long)st.tx_deferred, (unsigned long long)st.tx_nomem, st.held,
         (unsigned long long)ps.rx_packets, (unsigned long long)ps.rx_drop_kernel,
         (unsigned long long)ps.rx_nobufs, (unsigned long long)ps.rx_drop_truncated,
         (unsigned long long)ps.rx_errors, (unsigned long long)ps.tx_packets,
         (unsigned long long)ps.tx_errors, (unsigned long long)ps.tx_backpressure);
}

static double now_s(void) { return tt_now_us() / 1e6; }

/* --- kernel client helpers ---------------------------------------------------------------- */

/* Interrupted calls seen by the kernel clients.  With SO_RCVTIMEO/SO_SNDTIMEO set, a blocking
 * socket call is not restarted after a signal-like wake-up (io_uring task work notifications to
 * threads that touched a ring count as such): it fails with EINTR, and the client must retry. */
static atomic_int eintr_seen;

/* connect() interrupted by EINTR keeps connecting in the background: wait for the outcome. */
static int connect_finish(int s) {
  struct pollfd pfd = {s, POLLOUT, 0};
  for (int i = 0; i < 50; i++) {
    int r = poll(&pfd, 1, 100);
    if (r < 0 && errno == EINTR) continue;
    if (r > 0) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
      errno = err;
      return err ? -1 : 0;
    }
  }
  errno = ETIMEDOUT;
  return -1;
}

static int connect_to(const char *ip, int port) {
  int s = tt_socket_in(pair.fd_a, AF_INET, SOCK_STREAM, 0);
  if (s < 0) return -1;
  struct timeval tv = {5, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, ip, &sa.sin_addr);
  int rc = connect(s, (struct sockaddr *)&sa, sizeof sa);
  if (rc != 0 && errno == EINTR) {
    atomic_fetch_add(&eintr_seen, 1);
    rc = connect_finish(s);
  }
  if (rc != 0) {
    close(s);
    return -1;
  }
  return s;
}

static int write_all(int s, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = send(s, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) {
      atomic_fetch_add(&eintr_seen, 1);
      continue;
    }
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int read_all(int s, uint8_t *p, size_t n) {
  while (n) {
    ssize_t r = recv(s, p, n, 0);
    if (r < 0 && errno == EINTR) {
      atomic_fetch_add(&eintr_seen, 1);
      continue;
    }
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

/* Bytes that depend on their offset in the stream and on a per-connection key. */
static void pattern(uint8_t *p, size_t n, uint64_t off, uint32_t key) {
  for (size_t i = 0; i < n; i++) {
    uint64_t x = (off + i) * 0x9e3779b97f4a7c15ull + key;
    p[i] = (uint8_t)(x >> 56);
  }
}

/* --- a kernel echo server in ns b: the baseline --------------------------------------------- */

static int kecho_listen = -1;
static atomic_int kecho_stop;

/* Connections are served one at a time on the accepting thread (the clients are sequential), so
 * the baseline pays no thread start per connection. */
static void *kecho_main(void *arg) {
  (void)arg;
  static uint8_t buf[65536];
  while (!kecho_stop) {
    struct pollfd pfd = {kecho_listen, POLLIN, 0};
    if (poll(&pfd, 1, 100) <= 0) continue;
    int s = accept(kecho_listen, NULL, NULL);
    if (s < 0) continue;
    for (;;) {
      ssize_t r = recv(s, buf, sizeof buf, 0);
      if (r <= 0 || write_all(s, buf, (size_t)r) < 0) break;
    }
    close(s);
  }
  return NULL;
}

/* --- the measured bodies ------------------------------------------------------------------- */

/* CONNS sequential connections, each sending a different length and reading it all back.
 * Returns connections per second, or 0 if any failed. */
static double conns_body(const char *ip, int port) {
  static uint8_t out[8192], in[8192];
  int ok = 0;
  double t0 = now_s();
  int64_t deadline = tt_now_ms() + 30000;
  for (int i = 0; i < CONNS && tt_now_ms() < deadline; i++) {
    size_t n = 1 + (size_t)(i * 977) % sizeof out;
    pattern(out, n, 0, (uint32_t)i);
    int s = connect_to(ip, port);
    if (s < 0) {
      TEST_FAIL_AT("connection %d to %s:%d: %s", i, ip, port, strerror(errno));
      break;
    }
    memset(in, 0, n);
    if (write_all(s, out, n) == 0 && read_all(s, in, n) == 0 && memcmp(in, out, n) == 0) ok++;
    else TEST_FAIL_AT("connection %d: echo of %zu bytes differs or was cut", i, n);
    close(s);
  }
  double dt = now_s() - t0;
  CHECK_EQ(ok, CONNS);
  return ok == CONNS ? ok / dt : 0;
}

typedef struct bulk_writer {
  int s;
  size_t total;
  int err;
} bulk_writer;

static void *bulk_write(void *arg) {
  bulk_writer *w = arg;
  static uint8_t buf[1 << 16];
  for (size_t off = 0; off < w->total;) {
    size_t n = w->total - off < sizeof buf ? w->total - off : sizeof buf;
    pattern(buf, n, off, 0xb01c);
    if (write_all(w->s, buf, n) < 0) {
      w->err = errno ? errno : EIO;
      break;
    }
    off += n;
  }
  shutdown(w->s, SHUT_WR);
  return NULL;
}

/* BULK bytes out and back on one connection; returns MB/s (each way), or 0 on failure. */
static double bulk_body(const char *ip, int port) {
  int s = connect_to(ip, port);
  if (s < 0) {
    TEST_FAIL_AT("bulk connection to %s:%d: %s", ip, port, strerror(errno));
    return 0;
  }
  bulk_writer w = {s, BULK, 0};
  pthread_t t;
  double t0 = now_s();
  REQUIRE(pthread_create(&t, NULL, bulk_write, &w) == 0);
  static uint8_t buf[1 << 16], want[1 << 16];
  size_t got = 0;
  int bad = 0;
  while (got < BULK) {
    ssize_t r = recv(s, buf, sizeof buf, 0);
    if (r < 0 && errno == EINTR) {
      atomic_fetch_add(&eintr_seen, 1);
      continue;
    }
    if (r <= 0) break;
    pattern(want, (size_t)r, got, 0xb01c);
    if (!bad && memcmp(buf, want, (size_t)r) != 0) {
      bad = 1;
      TEST_FAIL_AT("bulk: echoed bytes differ near offset %zu", got);
    }
    got += (size_t)r;
  }
  /* After the whole echo, the peer closes in turn (lwIP after our FIN): expect EOF. */
  char extra;
  ssize_t tail;
  while ((tail = recv(s, &extra, 1, 0)) < 0 && errno == EINTR) atomic_fetch_add(&eintr_seen, 1);
  double dt = now_s() - t0;
  pthread_join(t, NULL);
  close(s);
  if (w.err || got != BULK) print_diag("bulk failed");
  CHECK_EQ(w.err, 0);
  CHECK_EQ(got, BULK);
  CHECK_EQ(tail, 0);
  return (got == BULK && !bad) ? BULK / 1e6 / dt : 0;
}

/* BULK bytes into lwIP's discard service; MB/s, or 0 on failure.  Timed until lwIP, having
 * read everything and seen our FIN, closes in turn. */
static double sink_body(const char *ip, int port) {
  mior_lwip_service_stats before, after;
  mior_lwip_service_stats_get(&before);
  int s = connect_to(ip, port);
  if (s < 0) {
    TEST_FAIL_AT("discard connection to %s:%d: %s", ip, port, strerror(errno));
    return 0;
  }
  static uint8_t buf[1 << 16];
  double t0 = now_s();
  int rc = 0;
  for (size_t off = 0; off < BULK && rc == 0; off += sizeof buf) rc = write_all(s, buf, sizeof buf);
  shutdown(s, SHUT_WR);
  char c;
  ssize_t r;
  while ((r = recv(s, &c, 1, 0)) < 0 && errno == EINTR) atomic_fetch_add(&eintr_seen, 1);
  double dt = now_s() - t0;
  close(s);
  mior_lwip_service_stats_get(&after);
  CHECK_EQ(rc, 0);
  CHECK_EQ(r, 0);
  CHECK_EQ(after.bytes_discarded - before.bytes_discarded, BULK);
  return rc == 0 && r == 0 ? BULK / 1e6 / dt : 0;
}

/* Read lwIP's source service to its end (BULK bytes, o % 251 at offset o); MB/s, or 0. */
static double source_body(const char *ip, int port) {
  int s = connect_to(ip, port);
  if (s < 0) {
    TEST_FAIL_AT("source connection to %s:%d: %s", ip, port, strerror(errno));
    return 0;
  }
  static uint8_t buf[1 << 16];
  double t0 = now_s();
  uint64_t got = 0;
  int bad = 0;
  for (;;) {
    ssize_t r = recv(s, buf, sizeof buf, 0);
    if (r < 0 && errno == EINTR) {
      atomic_fetch_add(&eintr_seen, 1);
      continue;
    }
    if (r <= 0) break;
    for (ssize_t i = 0; i < r && !bad; i++)
      if (buf[i] != (uint8_t)((got + (uint64_t)i) % 251u)) bad = 1;
    got += (uint64_t)r;
  }
  double dt = now_s() - t0;
  close(s);
  CHECK(!bad);
  CHECK_EQ(got, BULK);
  return got == BULK && !bad ? BULK / 1e6 / dt : 0;
}

/* --- lwIP side ------------------------------------------------------------------------------ */

static mior_lwip *start_lwip(uint32_t flags, mior_backend backend) {
  char ep[64];
  snprintf(ep, sizeof ep, "packet://%s", pair.if_b);
  mior_options po;
  mior_options_init(&po);
  po.backend = backend;
  mior_lwip_options lo;
  mior_lwip_options_init(&lo);
  lo.endpoint = ep;
  lo.port = &po;
  lo.ip = lwip_ip;
  lo.flags = flags;
  /* MIOR_STACK_PCAP=FILE records this run's frames, for looking into a failure. */
  static mior_pcap *cap;
  const char *pc = getenv("MIOR_STACK_PCAP");
  if (pc && !cap) mior_pcap_open(&cap, pc, MIOR_PCAP_LINKTYPE_ETHERNET, 128);
  lo.pcap = cap;
  mior_lwip *l = NULL;
  REQUIRE_OK(netns_enter(pair.fd_b));
  int rc = mior_lwip_start(&l, &lo);
  REQUIRE_OK(netns_enter_host());
  REQUIRE_OK(rc);
  cur_lwip = l;
  return l;
}

/* Wait (bounded) until lwIP has no connection open and holds no received slot. */
static void wait_quiet(mior_lwip *l, int ms) {
  int64_t end = tt_now_ms() + ms;
  mior_lwip_service_stats ss;
  mior_lwip_stats st;
  do {
    mior_lwip_service_stats_get(&ss);
    mior_lwip_stats_get(l, &st);
    if (ss.open == 0 && st.held == 0) return;
    usleep(10000);
  } while (tt_now_ms() < end);
  TEST_FAIL_AT("lwIP still has %u connection(s) open and holds %u slot(s)", ss.open, st.held);
}

/* Stop lwIP and check that every slot came back. */
static void stop_lwip(mior_lwip *l) {
  wait_quiet(l, 5000);
  mior_port_stats ps;
  CHECK_OK(mior_lwip_port_stats(l, &ps));
  CHECK_EQ(ps.user_held, 0);
  CHECK_EQ(ps.tx_errors, 0);
  CHECK_EQ(mior_lwip_stop(l), 0);
  cur_lwip = NULL;
}

static void test_arp_ping(mior_lwip *l) {
  tt_phase = "arp + ping";
  char cmd[160];
  if (netns_exec(pair.ns_a, "command -v ping >/dev/null") == 0) {
    snprintf(cmd, sizeof cmd, "ping -c 3 -i 0.2 -W 2 %s", lwip_ip);
    CHECK_EQ(netns_exec(pair.ns_a, cmd), 0);
  } else {
    /* No ping: the same ICMP echo requests from a raw socket of the kernel in ns a. */
    printf("  (ping not installed: raw ICMP socket instead)\n");
    int replies = tt_icmp_echo_from(pair.fd_a, lwip_ip, 3, 0x1234);
    REQUIRE(replies >= 0);
    CHECK_EQ(replies, 3);
  }
  /* ARP both ways: ns a's kernel learned lwIP's MAC, lwIP learned ns a's. */
  const uint8_t *m = mior_lwip_netif(l)->hwaddr;
  snprintf(cmd, sizeof cmd,
           "ip neigh show %s | grep -qi 'lladdr %02x:%02x:%02x:%02x:%02x:%02x'", lwip_ip, m[0], m[1],
           m[2], m[3], m[4], m[5]);
  CHECK_EQ(netns_exec(pair.ns_a, cmd), 0);
  ip4_addr_t peer;
  REQUIRE(ip4addr_aton(pair.ip_a, &peer));
  struct eth_addr *eth = NULL;
  const ip4_addr_t *ipr = NULL;
  LOCK_TCPIP_CORE();
  ssize_t idx = etharp_find_addr(mior_lwip_netif(l), &peer, &eth, &ipr);
  int mac_ok = idx >= 0 && eth && memcmp(eth->addr, pair.mac_a, 6) == 0;
  UNLOCK_TCPIP_CORE();
  CHECK(idx >= 0);
  CHECK(mac_ok);
}

/* The client aborts (RST) with data in flight and unread echoes: lwIP must drop the connection
 * and give back every slot it held for it. */
static void test_reset(mior_lwip *l) {
  tt_phase = "reset midway";
  mior_lwip_service_stats before, after;
  mior_lwip_service_stats_get(&before);
  int s = connect_to(lwip_ip, ECHO_PORT);
  REQUIRE(s >= 0);
  static uint8_t buf[1 << 18];
  pattern(buf, sizeof buf, 0, 7);
  CHECK_EQ(write_all(s, buf, sizeof buf), 0);
  uint8_t some[1000];
  CHECK_EQ(read_all(s, some, sizeof some), 0); /* the echo has started */
  struct linger lg = {1, 0};
  setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(s); /* with unread data and linger 0: RST */
  wait_quiet(l, 5000);
  mior_lwip_service_stats_get(&after);
  CHECK_EQ(after.aborted, before.aborted + 1);
  CHECK_EQ(after.open, 0);
}

/* Send one IPv4 packet (header included; the kernel fills in the header checksum) from ns a. */
static void raw_send_from_a(const uint8_t *pkt, size_t len) {
  int r = tt_socket_in(pair.fd_a, AF_INET, SOCK_RAW, IPPROTO_RAW);
  REQUIRE(r >= 0);
  struct sockaddr_in to = {.sin_family = AF_INET};
  inet_pton(AF_INET, lwip_ip, &to.sin_addr);
  CHECK_EQ(sendto(r, pkt, len, 0, (struct sockaddr *)&to, sizeof to), (ssize_t)len);
  close(r);
}

static void ip4_header(uint8_t *h, uint16_t total, uint16_t frag, uint8_t proto) {
  memset(h, 0, 20);
  h[0] = 0x45;
  h[2] = (uint8_t)(total >> 8), h[3] = (uint8_t)total;
  h[4] = 0x15, h[5] = 0x15;
  h[6] = (uint8_t)(frag >> 8), h[7] = (uint8_t)frag;
  h[8] = 64;
  h[9] = proto;
  inet_pton(AF_INET, pair.ip_a, h + 12);
  inet_pton(AF_INET, lwip_ip, h + 16);
}

/* Wait (bounded) until lwIP holds no slot; the count of frames copied instead of lent must have
 * grown by want. */
static void expect_unlent(mior_lwip *l, uint64_t before, uint64_t want, const char *what) {
  mior_lwip_stats st;
  int64_t end = tt_now_ms() + 2000;
  do {
    mior_lwip_stats_get(l, &st);
    if (st.rx_unlent >= before + want && st.held == 0) break;
    usleep(10000);
  } while (tt_now_ms() < end);
  if (st.held != 0 || st.rx_unlent != before + want)
    TEST_FAIL_AT("%s: lwIP holds %u slot(s), frames copied instead of lent %llu (want %llu)", what,
                 st.held, (unsigned long long)(st.rx_unlent - before), (unsigned long long)want);
}

/* Frames a peer can make lwIP queue for long must not hold the port's slots. */
static void test_lingering(mior_lwip *l) {
  mior_lwip_stats st0;
  mior_lwip_stats_get(l, &st0);

  tt_phase = "lone first fragment";
  uint8_t frag[20 + 800];
  ip4_header(frag, sizeof frag, 0x2000 /* MF, offset 0 */, 17);
  memset(frag + 20, 0xab, 800);
  raw_send_from_a(frag, sizeof frag);
  expect_unlent(l, st0.rx_unlent, 1, "fragment");

  tt_phase = "out-of-order segment";
  int s = connect_to(lwip_ip, ECHO_PORT);
  REQUIRE(s >= 0);
  struct sockaddr_in me;
  socklen_t ml = sizeof me;
  REQUIRE(getsockname(s, (struct sockaddr *)&me, &ml) == 0);
  u32_t rcv_nxt = 0, snd_nxt = 0;
  int found = 0;
  int64_t end = tt_now_ms() + 2000;
  while (!found && tt_now_ms() < end) { /* the pcb exists once lwIP saw the handshake's ACK */
    LOCK_TCPIP_CORE();
    for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next)
      if (pcb->remote_port == ntohs(me.sin_port) && pcb->state == ESTABLISHED) {
        rcv_nxt = pcb->rcv_nxt, snd_nxt = pcb->snd_nxt, found = 1;
      }
    UNLOCK_TCPIP_CORE();
    if (!found) usleep(5000);
  }
  REQUIRE(found);
  uint8_t seg[20 + 20 + 100];
  ip4_header(seg, sizeof seg, 0, 6);
  uint8_t *th = seg + 20;
  memset(th, 0, 20);
  memcpy(th, &me.sin_port, 2);
  th[2] = 0, th[3] = ECHO_PORT;
  uint32_t seq = htonl(rcv_nxt + 5000), ack = htonl(snd_nxt);
  memcpy(th + 4, &seq, 4);
  memcpy(th + 8, &ack, 4);
  th[12] = 5 << 4;
  th[13] = 0x18; /* PSH|ACK */
  th[14] = 0xff, th[15] = 0xff;
  memset(th + 20, 0xcd, 100);
  uint16_t c = mior_csum_fold(mior_csum_partial(th, 120, mior_csum_pseudo_ipv4(seg + 12, seg + 16, 6, 120)));
  memcpy(th + 16, &c, 2); /* "as stored": see mior/proto/checksum.h */
  raw_send_from_a(seg, sizeof seg);
  expect_unlent(l, st0.rx_unlent, 2, "out-of-order segment");
  int queued = 0;
  LOCK_TCPIP_CORE();
  for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next)
    if (pcb->remote_port == ntohs(me.sin_port)) queued = pcb->ooseq != NULL;
  UNLOCK_TCPIP_CORE();
  CHECK(queued); /* lwIP did queue it: the copy is what it holds */
  close(s);
  wait_quiet(l, 5000);
}

static void run(void) {
  snprintf(lwip_ip, sizeof lwip_ip, "10.77.%d.3", 213);
  /* The kernel in ns a must put real checksums in its veth frames (see mior_lwip.h). */
  REQUIRE_OK(netns_enter(pair.fd_a));
  int rc = netns_tx_checksum_offload_off(pair.if_a);
  REQUIRE_OK(netns_enter_host());
  REQUIRE_OK(rc);

  /* Baseline first: the kernel alone, ns a -> veth -> ns b, same client code. */
  kecho_listen = tt_socket_in(pair.fd_b, AF_INET, SOCK_STREAM, 0);
  REQUIRE(kecho_listen >= 0);
  int one = 1;
  setsockopt(kecho_listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in ka = {.sin_family = AF_INET, .sin_port = htons(KERNEL_ECHO_PORT)};
  inet_pton(AF_INET, pair.ip_b, &ka.sin_addr);
  REQUIRE(bind(kecho_listen, (struct sockaddr *)&ka, sizeof ka) == 0);
  REQUIRE(listen(kecho_listen, 64) == 0);
  pthread_t kt;
  REQUIRE(pthread_create(&kt, NULL, kecho_main, NULL) == 0);
  tt_phase = "kernel baseline";
  double k_rate = conns_body(pair.ip_b, KERNEL_ECHO_PORT);
  double k_bulk = bulk_body(pair.ip_b, KERNEL_ECHO_PORT);
  kecho_stop = 1;
  pthread_join(kt, NULL);
  close(kecho_listen);

  mior_lwip *l = start_lwip(0, MIOR_BACKEND_AUTO);
  REQUIRE_OK(mior_lwip_echo_listen(ECHO_PORT));
  REQUIRE_OK(mior_lwip_discard_listen(DISCARD_PORT));
  REQUIRE_OK(mior_lwip_source_listen(SOURCE_PORT, BULK));
  mior_port_stats bs;
  CHECK_OK(mior_lwip_port_stats(l, &bs));
  printf("  lwIP %s on packet://%s, backend %s\n", lwip_ip, pair.if_b, mior_backend_name(bs.backend));
  test_arp_ping(l);
  printf("  arp + ping: %s\n", test_failures ? "FAILED" : "ok");

  tt_phase = "200 connections";
  double l_rate = conns_body(lwip_ip, ECHO_PORT);
  mior_lwip_service_stats ss;
  mior_lwip_service_stats_get(&ss);
  CHECK(ss.accepted >= CONNS);
  wait_quiet(l, 5000);

  tt_phase = "bulk (zero-copy)";
  double l_bulk = bulk_body(lwip_ip, ECHO_PORT);
  wait_quiet(l, 5000);
  mior_lwip_stats st;
  mior_lwip_stats_get(l, &st);
  CHECK(st.rx_zero_copy > 0);
  printf("  zero-copy run: frames in %llu (zero-copy %llu, copied %llu), out %llu, ERR_MEM %llu, "
         "most slots held by lwIP %u\n",
         (unsigned long long)st.rx_frames, (unsigned long long)st.rx_zero_copy,
         (unsigned long long)st.rx_copied, (unsigned long long)st.tx_frames,
         (unsigned long long)st.tx_nomem, st.held_high);

  tt_phase = "one way: into lwIP";
  double l_in = sink_body(lwip_ip, DISCARD_PORT);
  tt_phase = "one way: out of lwIP";
  double l_out = source_body(lwip_ip, SOURCE_PORT);
  wait_quiet(l, 5000);

  test_reset(l);
  test_lingering(l);
  printf("  lone fragment and out-of-order segment: queued by lwIP as copies, no slot held: %s\n",
         test_failures ? "FAILED" : "ok");
  stop_lwip(l);

  /* The same transfer with every frame copied into PBUF_RAM. */
  l = start_lwip(MIOR_LWIP_COPY_RX, MIOR_BACKEND_AUTO);
  tt_phase = "bulk (copy)";
  double c_bulk = bulk_body(lwip_ip, ECHO_PORT);
  mior_lwip_stats_get(l, &st);
  CHECK_EQ(st.rx_zero_copy, 0);
  stop_lwip(l);

  /* The portable backend underneath (recvmmsg/sendmmsg), where the system has it. */
  double s_rate = 0, s_bulk = 0, s_in = 0, s_out = 0;
  if (mior_backend_supported(MIOR_BACKEND_SOCKETS) == 1) {
    l = start_lwip(0, MIOR_BACKEND_SOCKETS);
    tt_phase = "sockets backend";
    s_rate = conns_body(lwip_ip, ECHO_PORT);
    s_bulk = bulk_body(lwip_ip, ECHO_PORT);
    s_in = sink_body(lwip_ip, DISCARD_PORT);
    s_out = source_body(lwip_ip, SOURCE_PORT);
    stop_lwip(l);
  }

  printf("  sockets backend under lwIP: %.0f connections/s, bulk %.1f MB/s\n", s_rate, s_bulk);
  printf("  connections (%d sequential, echo of 1..8192 B): lwIP on mior %.0f/s, kernel %.0f/s\n",
         CONNS, l_rate, k_rate);
  printf("  bulk echo (%u MiB each way): lwIP on mior zero-copy %.1f MB/s, copy %.1f MB/s; "
         "kernel %.1f MB/s\n", BULK >> 20, l_bulk, c_bulk, k_bulk);
  printf("  one way (%u MiB, like iperf3 -R and not): into lwIP %.1f MB/s, out of lwIP %.1f MB/s "
         "(%s); sockets backend %.1f / %.1f MB/s\n", BULK >> 20, l_in, l_out,
         mior_backend_name(bs.backend), s_in, s_out);
  printf("  client calls interrupted (EINTR, retried): %d\n", atomic_load(&eintr_seen));
}
#endif

int main(void) {
#ifndef MIOR_HAVE_LWIP
  TEST_SKIP("lwIP was not found at build time (pkg-config lwip; Debian: liblwip-dev)");
#else
  tt_watchdog(110);
  tt_pair_create(&pair, "tstk", 213);
  run();
  CHECK_OK(netns_pair_destroy(&pair));
  TEST_DONE();
#endif
}
