/* The fanout group of a packet:// transport with two queues, among other programs' groups.
 *
 * PACKET_FANOUT group ids are 16 bits, one space per network namespace shared by every process in
 * it.  A transport that picked its id at random could name a group another program already has:
 * the kernel then refuses the port (the group has another type, -EINVAL) or takes it into that
 * program's group.  Here 8192 foreign groups of another type (PACKET_FANOUT_CPU), one AF_PACKET
 * socket each on the very interface the transport uses, hold every eighth id, so a random id
 * collides once in eight opens and 64 opens all succeed with a chance of about 2 in 10000.  Under
 * every backend:
 *   - a packet:// transport with queues = 2 opens 64 times in a row without a failure, and every
 *     time gives its pool back at close;
 *   - the two ports of one transport are one group: UDP frames of 32 flows sent from the other
 *     namespace arrive once each (two groups would each get a copy), intact, and both ports get
 *     some of them (the group hashes flows over its members); the pools come back at close.
 */
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <sys/resource.h>

#include "transport_common.h"

#define FOREIGN 8192u          /* foreign groups, ids 0, 8, 16, ... */
#define FOREIGN_STRIDE 8u
#define OPENS 64
#define FLOWS 32u
#define PER_FLOW 8u
#define COUNT (FLOWS * PER_FLOW)
#define SPORT0 20000
#define DPORT 7779
#define CLOSERS 128            /* threads that close the foreign sockets */

static netns_pair pair;
static uint8_t ip_a[4], ip_b[4];
static char ep_a[64], ep_b[64];
static int foreign_fd[FOREIGN];
static uint32_t foreign_n;

/* Closing an AF_PACKET socket waits for an RCU grace period (packet_release calls
 * synchronize_net), some 10 ms here: 8192 of them one after the other would take over a minute.
 * Threads closing at the same time share grace periods. */
static void *closer(void *arg) {
  for (uint32_t i = (uint32_t)(uintptr_t)arg; i < foreign_n; i += CLOSERS) close(foreign_fd[i]);
  return NULL;
}

static void foreign_close_all(void) {
  pthread_t th[CLOSERS];
  int started[CLOSERS];
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 << 10);
  for (uintptr_t k = 0; k < CLOSERS; k++) {
    started[k] = pthread_create(&th[k], &attr, closer, (void *)k) == 0;
    if (!started[k]) closer((void *)k); /* slowly, but closed */
  }
  for (int k = 0; k < CLOSERS; k++)
    if (started[k]) pthread_join(th[k], NULL);
  pthread_attr_destroy(&attr);
  foreign_n = 0;
}

/* The foreign groups, in ns b on veth b: one socket each, bound for every protocol like a capture
 * or load-balancing program would be, with the smallest receive buffer (the kernel offers each
 * one every frame of the link; a full buffer drops it before any copy). */
static void foreign_open_all(void) {
  REQUIRE_OK(netns_enter(pair.fd_b));
  for (uint32_t i = 0; i < FOREIGN; i++) {
    int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (s < 0) {
      TEST_FAIL_AT("socket(AF_PACKET) #%u: %s", i, strerror(errno));
      break;
    }
    foreign_fd[foreign_n++] = s;
    int small = 1;
    setsockopt(s, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = pair.ifindex_b;
    if (bind(s, (struct sockaddr *)&sll, sizeof sll) < 0) {
      TEST_FAIL_AT("bind(AF_PACKET, %s) #%u: %s", pair.if_b, i, strerror(errno));
      break;
    }
    int arg = (int)(i * FOREIGN_STRIDE) | (PACKET_FANOUT_CPU << 16);
    if (setsockopt(s, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) < 0) {
      TEST_FAIL_AT("setsockopt(PACKET_FANOUT, id %u, CPU): %s", i * FOREIGN_STRIDE, strerror(errno));
      break;
    }
  }
  REQUIRE_OK(netns_enter_host());
  REQUIRE(foreign_n == FOREIGN && test_failures == 0);
}

/* A transport's options: two queues, a small pool. */
static mior_options opts(mior_backend b) {
  mior_options o = tt_opts(b);
  o.queues = 2;
  o.buf_count = 64;
  o.sq_entries = 128;
  return o;
}

/* Open and close the transport OPENS times; none may fail. */
static void body_opens(mior_backend b) {
  mior_options o = opts(b);
  int failed = 0, first_rc = 0;
  char first[256] = "";
  for (int k = 0; k < OPENS; k++) {
    mior_transport *t = NULL;
    int rc = tt_open_in(pair.fd_b, &t, ep_b, &o, NULL);
    if (rc < 0) {
      if (failed++ == 0) {
        first_rc = rc;
        snprintf(first, sizeof first, "%s", mior_last_error());
      }
      continue;
    }
    CHECK_EQ(mior_transport_queues(t), 2);
    TT_CHECK_POOL_RETURNED(t);
    CHECK_EQ(mior_transport_close(t), 0);
  }
  printf("    %d of %d opens with queues = 2 failed%s%s\n", failed, OPENS, failed ? "; first: " : "",
         first);
  if (failed)
    TEST_FAIL_AT("%d of %d opens failed, first with %d (%s): %s", failed, OPENS, first_rc,
                 mior_strerror(first_rc), first);
}

/* Frame seq: Ethernet from a to b, IPv4/UDP from ip_a, flow seq % FLOWS (its source port), to
 * ip_b port DPORT, with a sequence-numbered payload. */
static uint32_t build_frame(void *ctx, uint8_t *buf, uint32_t cap, uint32_t seq) {
  (void)ctx;
  uint32_t plen = tt_len_for(seq, TT_HDR, 200);
  REQUIRE(14 + 28 + plen <= cap);
  memcpy(buf, pair.mac_b, 6);
  memcpy(buf + 6, pair.mac_a, 6);
  tt_put16be(buf + 12, 0x0800);
  tt_fill(buf + 14 + 28, plen, seq);
  return 14 + tt_build_ipv4_udp(buf + 14, ip_a, ip_b, (uint16_t)(SPORT0 + seq % FLOWS), DPORT, plen,
                                (uint16_t)seq);
}

/* Our frames are IPv4/UDP to DPORT; the rest (IPv6 neighbour discovery, ...) is foreign. */
static int unwrap_frame(tt_rx *r, const mior_pkt *pkt, const uint8_t **pl, uint32_t *plen) {
  (void)r;
  if (pkt->len < 14 || tt_get16be(pkt->data + 12) != 0x0800) return 1;
  uint16_t sport, dport;
  int rc = tt_parse_ipv4_udp(pkt->data + 14, pkt->len - 14, 1, pl, plen, &sport, &dport, NULL, NULL);
  if (rc != 0) return rc;
  return dport == DPORT ? 0 : 1;
}

/* Our frames per port: tt_rx's per_port counts foreign frames too. */
static uint32_t ours[2];

static int consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  tt_rx *r = ctx;
  uint32_t got = r->got;
  int rc = tt_consume(ctx, port, pkt);
  if (r->got != got) ours[port == r->ports[1]]++;
  return rc;
}

static void body_traffic(mior_backend b) {
  tt_rx r;
  tt_rx_init(&r, COUNT);
  r.unwrap = unwrap_frame;
  r.want_unspec_src = 1;
  memset(ours, 0, sizeof ours);
  mior_options o = opts(b), ot = tt_opts(b);
  ot.flags |= MIOR_OPT_NO_RX;
  ot.buf_count = 256;
  mior_receiver recv = {consume, NULL, &r};
  mior_transport *rx = NULL, *tx = NULL;
  tt_require_open_in(pair.fd_b, pair.ns_b, &rx, ep_b, &o, &recv);
  tt_require_open_in(pair.fd_a, pair.ns_a, &tx, ep_a, &ot, NULL);
  REQUIRE(mior_transport_queues(rx) == 2);
  mior_port *ports[2] = {mior_transport_port(rx, 0), mior_transport_port(rx, 1)};
  r.nports = 2;
  r.ports[0] = ports[0];
  r.ports[1] = ports[1];
  mior_port *txp = mior_transport_port(tx, 0);

  tt_pump_result pr = tt_pump(txp, &r, ports, 2, COUNT, 32, NULL, build_frame, NULL, 10000);
  tt_drain_tx(txp, pr.sent, 2000);
  tt_poll_for(ports, 2, 50);
  printf("    %u frames of %u flows: port 0 got %u, port 1 got %u (%u duplicates, %u foreign)\n",
         r.got, FLOWS, ours[0], ours[1], r.dups, r.foreign);
  CHECK_EQ(pr.sent, COUNT);
  TT_CHECK_TALLY(&r);
  CHECK(ours[0] > 0);
  CHECK(ours[1] > 0);
  CHECK_EQ(ours[0] + ours[1], COUNT);
  TT_CHECK_POOL_RETURNED(rx);
  TT_CHECK_POOL_RETURNED(tx);
  CHECK_EQ(mior_transport_close(tx), 0);
  CHECK_EQ(mior_transport_close(rx), 0);
  tt_rx_free(&r);
}

/* Room for the foreign sockets and what the transports open beside them. */
static void raise_nofile(void) {
  rlim_t want = FOREIGN + 1024;
  struct rlimit rl;
  REQUIRE(getrlimit(RLIMIT_NOFILE, &rl) == 0);
  if (rl.rlim_cur >= want) return;
  if (rl.rlim_max < want) rl.rlim_max = want;
  rl.rlim_cur = want;
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
    TEST_SKIP("RLIMIT_NOFILE: cannot raise it to %lu: %s", (unsigned long)want, strerror(errno));
}

int main(void) {
  tt_watchdog(60);
  if (geteuid() != 0) TEST_SKIP("needs root (AF_PACKET sockets, network namespaces)");
  raise_nofile();
  tt_pair_create(&pair, "tfan", 220);
  snprintf(ep_a, sizeof ep_a, "packet://%s", pair.if_a);
  snprintf(ep_b, sizeof ep_b, "packet://%s", pair.if_b);
  REQUIRE(inet_pton(AF_INET, pair.ip_a, ip_a) == 1);
  REQUIRE(inet_pton(AF_INET, pair.ip_b, ip_b) == 1);

  /* Registered after the watchdog's clean-up, so it runs first on the way out (exit runs atexit
   * handlers in reverse): the namespaces go only once nothing holds them. */
  atexit(foreign_close_all);
  int64_t t0 = tt_now_us();
  tt_phase = "opening the foreign fanout groups";
  foreign_open_all();
  printf("  %u foreign fanout groups (PACKET_FANOUT_CPU) on %s in %.1f ms\n", foreign_n, pair.if_b,
         (tt_now_us() - t0) / 1000.0);
  int ran = tt_for_each_backend("packet:// with queues = 2, opened 64 times", body_opens);
  tt_for_each_backend("one fanout group for both queues", body_traffic);
  t0 = tt_now_us();
  tt_phase = "closing the foreign fanout groups";
  foreign_close_all();
  printf("  foreign groups closed in %.1f ms\n", (tt_now_us() - t0) / 1000.0);
  CHECK_OK(netns_pair_destroy(&pair));
  if (!ran) TEST_SKIP("no backend is supported here");
  TEST_DONE();
}
