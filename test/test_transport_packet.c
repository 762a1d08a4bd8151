/* The `packet` kind (AF_PACKET, whole Ethernet frames; root), under every backend, and under
 * io_uring both through the AF_PACKET TX ring (the default) and with one SEND per frame
 * (MIOR_OPT_NO_TX_RING), across a veth pair between two namespaces the test makes and always
 * deletes (with the ring, a transmit-only port sends linear frames and a port that also receives
 * sends page fragments; both are run):
 *   - packet://<veth b> receives sequence-numbered frames that packet://<veth a> sends, every one
 *     intact, in order, with the addresses and EtherType it was sent with; a frame over the link's
 *     limit is refused and counted, an 802.1Q-tagged one may be 4 bytes longer;
 *   - a burst of 8192-byte frames (a whole slot, over a 9000-byte MTU) much bigger than the TX
 *     ring and than the port's transmit allowance ends with every frame received or counted;
 *   - over a slow link (a tbf qdisc holds the frames, so the kernel keeps ring frames for a long
 *     time) a blocking poll on a full ring still returns, every frame arrives in order, and
 *     closing the sender while frames are still in the kernel returns 0 and loses none of them;
 *   - a UDP datagram sent by a kernel socket in ns a is seen as a whole IPv4 frame;
 *   - statistics count what was sent, and the pools are returned.
 */
#include "transport_common.h"

#include <ifaddrs.h>

#define COUNT 5000u
#define ETHERTYPE_TEST 0x88b5 /* IEEE 802 local experimental */
#define DPORT 7778

static netns_pair pair;
static uint8_t ip_a[4], ip_b[4];
static char ep_a[64], ep_b[64]; /* packet://<veth a>, packet://<veth b> */
/* The variants' param: the sender also receives (no MIOR_OPT_NO_RX), so its TX ring frames go out
 * as page fragments rather than linear frames (src/linux/txring.h). */
#define SENDER_RECEIVES 1

/* Every body runs under each backend, and under io_uring once more with one SEND per frame
 * instead of the TX ring. */
static const tt_config tx_modes[] = {
    {"", MIOR_BACKEND_AUTO, 0, 0, 0},
    {"MIOR_OPT_NO_TX_RING", MIOR_BACKEND_URING, MIOR_OPT_NO_TX_RING, 0, 0},
};

/* body_frames, also with a sender that receives. */
static const tt_config frame_modes[] = {
    {"", MIOR_BACKEND_AUTO, 0, 0, 0},
    {"MIOR_OPT_NO_TX_RING", MIOR_BACKEND_URING, MIOR_OPT_NO_TX_RING, 0, 0},
    {"the sender also receives", MIOR_BACKEND_URING, 0, 0, SENDER_RECEIVES},
};

/* A body's options under variant v: the variant's, and these flags. */
static mior_options opts(const tt_variant *v, uint32_t flags) {
  mior_options o = tt_vopts(v);
  o.flags |= flags;
  return o;
}

/* With io_uring the TX ring is the default for packet ports; MIOR_OPT_NO_TX_RING turns it off, and
 * the sockets backend has none.  Both ends are checked: the receiver sends nothing, but it is a
 * packet port too. */
static void check_tx_ring(mior_transport *t, const tt_variant *v) {
  mior_port_stats st;
  CHECK_OK(mior_transport_stats_get(t, &st));
  int want = v->backend == MIOR_BACKEND_URING && !(v->flags & MIOR_OPT_NO_TX_RING);
  CHECK_EQ((st.features & MIOR_FEAT_TX_RING) != 0, want);
  char names[256];
  CHECK_OK(mior_features_format(st.features, names, sizeof names));
  CHECK_EQ(strstr(names, "tx-ring") != NULL, want);
}

/* The leading fields of struct rtnl_link_stats, which getifaddrs() hands out for AF_PACKET
 * entries (<linux/if_link.h> cannot be included here: the tests' include path has mior's own
 * src/linux/socket.h, which shadows <linux/socket.h>). */
struct link_stats32 {
  uint32_t rx_packets, tx_packets, rx_bytes, tx_bytes, rx_errors, tx_errors, rx_dropped, tx_dropped;
};

/* Drops the link itself counted (veth: a full backlog), in the namespace of ns_fd. */
static uint64_t link_drops(int ns_fd, const char *ifname) {
  uint64_t n = 0;
  REQUIRE_OK(netns_enter(ns_fd));
  struct ifaddrs *ifa = NULL;
  if (getifaddrs(&ifa) == 0) {
    for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
      if (!i->ifa_addr || i->ifa_addr->sa_family != AF_PACKET || !i->ifa_data) continue;
      if (strcmp(i->ifa_name, ifname) != 0) continue;
      const struct link_stats32 *ls = i->ifa_data;
      n += ls->rx_dropped + ls->tx_dropped;
    }
    freeifaddrs(ifa);
  }
  REQUIRE_OK(netns_enter_host());
  return n;
}

static uint64_t pair_drops(void) {
  return link_drops(pair.fd_a, pair.if_a) + link_drops(pair.fd_b, pair.if_b);
}

/* An Ethernet header from a to b with this EtherType (behind an 802.1Q tag if vlan). */
static uint32_t put_eth(uint8_t *buf, uint16_t type, int vlan) {
  memcpy(buf, pair.mac_b, 6);
  memcpy(buf + 6, pair.mac_a, 6);
  if (!vlan) {
    tt_put16be(buf + 12, type);
    return 14;
  }
  tt_put16be(buf + 12, 0x8100);
  tt_put16be(buf + 14, 7); /* VLAN 7 */
  tt_put16be(buf + 16, type);
  return 18;
}

static uint32_t build_frame(void *ctx, uint8_t *buf, uint32_t cap, uint32_t seq) {
  (void)ctx;
  /* 60..1514 bytes: the minimum frame (without FCS) up to the veth's MTU. */
  uint32_t plen = tt_len_for(seq, 60 - 14, 1500);
  if (14 + plen > cap) plen = cap - 14;
  memcpy(buf, pair.mac_b, 6);
  memcpy(buf + 6, pair.mac_a, 6);
  tt_put16be(buf + 12, ETHERTYPE_TEST);
  tt_fill(buf + 14, plen, seq);
  return 14 + plen;
}

/* Frames of our EtherType from a's MAC are ours; IPv6 neighbour and router traffic is foreign. */
static int unwrap_frame(tt_rx *r, const mior_pkt *pkt, const uint8_t **pl, uint32_t *plen) {
  (void)r;
  if (pkt->len < 14 || tt_get16be(pkt->data + 12) != ETHERTYPE_TEST) return 1;
  if (memcmp(pkt->data, pair.mac_b, 6) != 0 || memcmp(pkt->data + 6, pair.mac_a, 6) != 0)
    return -1;
  *pl = pkt->data + 14;
  *plen = pkt->len - 14;
  return 0;
}

/* Send one frame of len bytes and wait until the port has completed `completed` sends. */
static void send_one(mior_port *tx, uint32_t len, int vlan, uint64_t completed) {
  mior_pkt pkt;
  int64_t deadline = tt_now_ms() + 2000;
  int rc;
  while ((rc = mior_tx_acquire(tx, &pkt)) == -EAGAIN && tt_now_ms() < deadline) mior_port_poll(tx, 0, 1000);
  REQUIRE_OK(rc);
  REQUIRE(len <= pkt.cap);
  uint32_t h = put_eth(pkt.data, 0x88b6, vlan); /* another local experimental type: foreign to the tally */
  memset(pkt.data + h, 0x5a, len - h);
  CHECK_OK(mior_tx_send(tx, &pkt, len, NULL));
  CHECK_OK(mior_tx_flush(tx));
  tt_drain_tx(tx, completed, 2000);
}

static void body_frames(const tt_variant *v) {
  tt_rx r;
  tt_rx_init(&r, COUNT);
  r.unwrap = unwrap_frame;
  r.want_unspec_src = 1;
  mior_options o = opts(v, 0), ot = opts(v, v->param & SENDER_RECEIVES ? 0 : MIOR_OPT_NO_RX);
  mior_transport *rx = NULL, *tx = NULL;
  tt_open_a_to_b(&pair, ep_a, &ot, &tx, ep_b, &o, &r, &rx);
  CHECK_EQ(mior_port_backend(mior_transport_port(rx, 0)), v->backend);
  check_tx_ring(tx, v);
  check_tx_ring(rx, v);

  mior_port *rxp = mior_transport_port(rx, 0), *txp = mior_transport_port(tx, 0);
  tt_pump_result pr = tt_pump(txp, &r, &rxp, 1, COUNT, 64, NULL, build_frame, NULL, 20000);
  tt_drain_tx(txp, pr.sent, 2000);
  tt_poll_for(&rxp, 1, 50);
  CHECK_EQ(pr.sent, COUNT);
  TT_CHECK_TALLY(&r);
  CHECK_EQ(r.reordered, 0);
  printf("    packet -> packet: %u frames in %.1f ms (%u foreign frames ignored)\n", r.got,
         pr.elapsed_us / 1000.0, r.foreign);

  mior_port_stats ts, rs;
  CHECK_OK(mior_transport_stats_get(tx, &ts));
  CHECK_EQ(ts.tx_packets, pr.sent);
  CHECK_EQ(ts.tx_bytes, pr.sent_bytes);
  CHECK_EQ(ts.tx_errors, 0);
  CHECK_EQ(ts.tx_short, 0);

  /* The link's limits, as the kernel applies them to a per-frame send: 1500 + 14 bytes; one more
   * is refused with EMSGSIZE and counted; an 802.1Q-tagged frame may be 4 bytes longer. */
  send_one(txp, 1515, 0, COUNT + 1);
  send_one(txp, 1518, 1, COUNT + 2);
  tt_poll_for(&rxp, 1, 50);
  CHECK_OK(mior_transport_stats_get(tx, &ts));
  CHECK_EQ(ts.tx_errors, 1);
  CHECK_EQ(ts.tx_packets, pr.sent + 1);
  CHECK_EQ(ts.tx_bytes, pr.sent_bytes + 1518);
  CHECK_EQ(ts.user_held, 0);
  CHECK_EQ(ts.tx_in_flight, 0);
  CHECK_OK(mior_transport_stats_get(rx, &rs));
  CHECK_EQ(rs.rx_packets, r.got + r.foreign + r.bad);
  CHECK_EQ(rs.rx_drop_truncated, 0);
  TT_CHECK_POOL_RETURNED(rx);
  TT_CHECK_POOL_RETURNED(tx);
  CHECK_EQ(mior_transport_close(tx), 0);
  CHECK_EQ(mior_transport_close(rx), 0);
  tt_rx_free(&r);
}

/* Sequence-numbered frame `seq` of exactly len bytes (len >= 14 + TT_HDR). */
static void put_frame(uint8_t *buf, uint32_t len, uint32_t seq) {
  uint32_t h = put_eth(buf, ETHERTYPE_TEST, 0);
  tt_fill(buf + h, len - h, seq);
}

/* --- a burst of whole-slot frames ---------------------------------------------------------- */

#define JUMBO_MTU 9000
#define JUMBO_SLOT 8192u
#define BURST 1500u

/* 1500 frames of 8192 bytes (every one fills its slot) with no pause for the receiver: 12 MB,
 * where the TX ring holds at most 4 MiB (256 such frames) and the sender may have 1024 sends
 * queued (buf_count).  Each flush carries 512 frames, more than the ring takes at once, so frames
 * wait for ring space; the application meets -EAGAIN and polls.  Every frame must end up received
 * or counted as dropped somewhere (socket or link), the sender must have completed every send,
 * and both pools come back. */
static void body_burst(const tt_variant *v) {
  tt_rx r;
  tt_rx_init(&r, BURST);
  r.unwrap = unwrap_frame;
  r.want_unspec_src = 1;
  mior_options o = opts(v, 0), ot = opts(v, MIOR_OPT_NO_RX);
  o.buf_size = JUMBO_SLOT;
  o.buf_count = 1024;
  o.rcvbuf = 64 << 20; /* the whole burst may sit in the receive queue */
  ot.buf_size = JUMBO_SLOT;
  ot.buf_count = 1024;
  ot.batch = 512;
  ot.sq_entries = 1024;
  mior_transport *rx = NULL, *tx = NULL;
  tt_open_a_to_b(&pair, ep_a, &ot, &tx, ep_b, &o, &r, &rx);
  check_tx_ring(tx, v);
  mior_port *rxp = mior_transport_port(rx, 0), *txp = mior_transport_port(tx, 0);
  uint64_t drops0 = pair_drops();

  uint32_t sent = 0, eagain = 0;
  int64_t t0 = tt_now_us(), deadline = tt_now_ms() + 20000;
  while (sent < BURST && tt_now_ms() < deadline) {
    mior_pkt pkt;
    int rc = mior_tx_acquire(txp, &pkt);
    if (rc == -EAGAIN) {
      /* Backpressure: wait for the sender, and let the receiver catch up a little. */
      eagain++;
      CHECK(mior_port_poll(txp, 0, 1000) >= 0);
      mior_port_poll(rxp, 0, 0);
      continue;
    }
    REQUIRE_OK(rc);
    REQUIRE(pkt.cap == JUMBO_SLOT);
    put_frame(pkt.data, pkt.cap, sent);
    rc = mior_tx_send(txp, &pkt, pkt.cap, NULL);
    if (rc < 0) TEST_FAIL_AT("mior_tx_send -> %d (%s) %s", rc, mior_strerror(rc), mior_last_error());
    sent++;
  }
  CHECK_OK(mior_tx_flush(txp));
  tt_drain_tx(txp, BURST, 5000);
  mior_port_stats ts, rs;
  CHECK_OK(mior_transport_stats_get(tx, &ts));
  int64_t stall = tt_now_ms(), end = tt_now_ms() + 10000;
  uint32_t last = r.got;
  while (r.got < BURST && tt_now_ms() < end && tt_now_ms() - stall < 1000) {
    mior_port_poll(rxp, 0, 1000);
    if (r.got != last) {
      last = r.got;
      stall = tt_now_ms();
    }
  }
  CHECK_OK(mior_transport_stats_get(rx, &rs));
  uint64_t link = pair_drops() - drops0;
  printf("    burst of %u x %u-byte frames: %u received in %.1f ms, %u times -EAGAIN, drops: socket %llu, "
         "link %llu\n",
         BURST, JUMBO_SLOT, r.got, (tt_now_us() - t0) / 1000.0, eagain,
         (unsigned long long)rs.rx_drop_kernel, (unsigned long long)link);
  CHECK_EQ(sent, BURST);
  CHECK(eagain > 0);
  CHECK_EQ(ts.tx_backpressure, eagain);
  CHECK_EQ(ts.tx_packets + ts.tx_errors, BURST);
  CHECK_EQ(ts.tx_errors, 0);
  CHECK_EQ(ts.tx_bytes, (uint64_t)BURST * JUMBO_SLOT);
  CHECK_EQ(ts.tx_in_flight, 0);
  /* Received or counted: nothing vanishes unaccounted. */
  CHECK_EQ(r.got + rs.rx_drop_kernel + rs.rx_nobufs + rs.rx_drop_truncated + link, BURST);
  CHECK_EQ(r.bad, 0);
  CHECK_EQ(r.dups, 0);
  CHECK_EQ(r.reordered, 0);
  CHECK_EQ(rs.rx_drop_truncated, 0);
  TT_CHECK_POOL_RETURNED(rx);
  TT_CHECK_POOL_RETURNED(tx);
  CHECK_EQ(mior_transport_close(tx), 0);
  CHECK_EQ(mior_transport_close(rx), 0);
  tt_rx_free(&r);
}

/* --- a slow link: the kernel holds ring frames --------------------------------------------- */

#define SLOW_N 150u
#define SLOW_TAIL 40u
#define SLOW_LEN 1000u

/* Poll the receiver without waiting until nothing more comes. */
static void rx_drain_now(mior_port *rx) {
  for (int i = 0; i < 1000 && mior_port_poll(rx, 0, 0) > 0; i++) {
  }
}

/* A tbf qdisc on veth a lets 2 Mbit/s through (250 frames of 1000 bytes a second) and keeps the
 * rest queued, so the kernel holds each ring frame for up to a few hundred milliseconds after the
 * kick, and the small ring (64 frames: batch 16) fills.  A poll that blocks without limit while
 * the ring is full must still come back (nothing else would complete: the port waits on its own
 * retry timer).  Then, with the link idle again, SLOW_TAIL more frames (160 ms of the link's time)
 * are sent and the sender is closed at once, while the qdisc still holds most of them: close
 * returns 0, and the frames still arrive, intact and in order (the kernel keeps its references to
 * the ring's pages after the socket is gone). */
static void body_slow_link(const tt_variant *v) {
  tt_rx r;
  tt_rx_init(&r, SLOW_N + SLOW_TAIL);
  r.unwrap = unwrap_frame;
  r.want_unspec_src = 1;
  mior_options o = opts(v, 0), ot = opts(v, MIOR_OPT_NO_RX);
  ot.batch = 16;
  ot.buf_count = 64; /* at most 64 sends queued: the application blocks soon after the ring fills */
  mior_transport *rx = NULL, *tx = NULL;
  tt_open_a_to_b(&pair, ep_a, &ot, &tx, ep_b, &o, &r, &rx);
  check_tx_ring(tx, v);
  mior_port *rxp = mior_transport_port(rx, 0), *txp = mior_transport_port(tx, 0);

  uint32_t sent = 0, blocked = 0;
  int64_t t0 = tt_now_us(), deadline = tt_now_ms() + 20000;
  while (sent < SLOW_N && tt_now_ms() < deadline) {
    mior_pkt pkt;
    int rc = mior_tx_acquire(txp, &pkt);
    if (rc == -EAGAIN) {
      /* No limit on the wait: a ring that never wakes its poller hangs here (the watchdog ends
       * the test). */
      blocked++;
      CHECK(mior_port_poll(txp, 0, -1) >= 0);
      mior_port_poll(rxp, 0, 0);
      continue;
    }
    REQUIRE_OK(rc);
    put_frame(pkt.data, SLOW_LEN, sent);
    CHECK_OK(mior_tx_send(txp, &pkt, SLOW_LEN, NULL));
    sent++;
    mior_port_poll(rxp, 0, 0);
  }
  CHECK_OK(mior_tx_flush(txp));
  tt_drain_tx(txp, SLOW_N, 5000);
  int64_t end = tt_now_ms() + 5000;
  while (r.got < SLOW_N && tt_now_ms() < end) mior_port_poll(rxp, 0, 1000);
  CHECK_EQ(r.got, SLOW_N);
  /* The tail: queued and kicked, then the sender closes while the qdisc still holds it. */
  for (uint32_t i = 0; i < SLOW_TAIL; i++) {
    mior_pkt pkt;
    int rc;
    int64_t dl = tt_now_ms() + 5000;
    while ((rc = mior_tx_acquire(txp, &pkt)) == -EAGAIN && tt_now_ms() < dl) mior_port_poll(txp, 0, 1000);
    REQUIRE_OK(rc);
    put_frame(pkt.data, SLOW_LEN, SLOW_N + i);
    CHECK_OK(mior_tx_send(txp, &pkt, SLOW_LEN, NULL));
  }
  CHECK_OK(mior_tx_flush(txp));
  mior_port_stats ts;
  CHECK_OK(mior_transport_stats_get(tx, &ts));
  CHECK_EQ(ts.tx_errors, 0);
  int64_t tc = tt_now_us();
  CHECK_EQ(mior_transport_close(tx), 0);
  double close_ms = (tt_now_us() - tc) / 1000.0;
  /* What had crossed the link by the time close returned. */
  rx_drain_now(rxp);
  uint32_t got_at_close = r.got;
  end = tt_now_ms() + 5000;
  while (r.got < SLOW_N + SLOW_TAIL && tt_now_ms() < end) mior_port_poll(rxp, 0, 1000);
  printf("    slow link: %u frames in %.1f ms, %u blocking polls; %u of %u tail frames arrived after a "
         "%.1f ms close\n",
         r.got, (tt_now_us() - t0) / 1000.0, blocked, r.got - got_at_close, SLOW_TAIL, close_ms);
  TT_CHECK_TALLY(&r);
  CHECK_EQ(r.reordered, 0);
  /* Frames were still in the kernel when the port had closed (else this tests nothing), and they
   * still arrived. */
  CHECK(got_at_close < SLOW_N + SLOW_TAIL);
  CHECK(blocked > 0);
  TT_CHECK_POOL_RETURNED(rx);
  CHECK_EQ(mior_transport_close(rx), 0);
  tt_rx_free(&r);
}

/* The kernel's own frames: a UDP datagram from ns a arrives as Ethernet + IPv4 + UDP. */
static int unwrap_kernel(tt_rx *r, const mior_pkt *pkt, const uint8_t **pl, uint32_t *plen) {
  const uint16_t *sport_want = r->uctx;
  if (pkt->len < 14 || tt_get16be(pkt->data + 12) != 0x0800) return 1;
  uint16_t sport, dport;
  uint8_t src[4], dst[4];
  int rc = tt_parse_ipv4_udp(pkt->data + 14, pkt->len - 14, 0, pl, plen, &sport, &dport,
                             src, dst);
  if (rc != 0 || dport != DPORT) return rc < 0 ? -1 : 1;
  if (memcmp(pkt->data, pair.mac_b, 6) != 0 || memcmp(pkt->data + 6, pair.mac_a, 6) != 0 ||
      sport != *sport_want || memcmp(src, ip_a, 4) != 0 || memcmp(dst, ip_b, 4) != 0)
    return -1;
  return 0;
}

static void body_kernel_frames(const tt_variant *v) {
  enum { K = 100 };
  tt_rx r;
  tt_rx_init(&r, K);
  uint16_t sport = 0;
  r.unwrap = unwrap_kernel;
  r.uctx = &sport;
  mior_options o = opts(v, 0);
  mior_receiver recv = tt_receiver(&r);
  mior_transport *rx = NULL;
  REQUIRE_OK(tt_open_in(pair.fd_b, &rx, ep_b, &o, &recv));
  mior_port *rxp = mior_transport_port(rx, 0);

  tt_kernel_udp_a_to_b(&pair, DPORT, 1400, &sport, &r, rxp);
  TT_CHECK_TALLY(&r);
  TT_CHECK_POOL_RETURNED(rx);
  CHECK_EQ(mior_transport_close(rx), 0);
  tt_rx_free(&r);
}

/* tx_counts_only_sent_frames: frames sent while the link is down never count as sent.  Through
 * the TX ring they used to count when copied into the ring, before any kick had succeeded. */
static void body_link_down(const tt_variant *v) {
  mior_options o = opts(v, MIOR_OPT_NO_RX);
  o.buf_count = 256;
  mior_transport *tx = NULL;
  tt_require_open_in(pair.fd_a, pair.ns_a, &tx, ep_a, &o, NULL);
  mior_port *p = mior_transport_port(tx, 0);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "ip link set dev %s down", pair.if_a);
  REQUIRE(netns_exec(pair.ns_a, cmd) == 0);
  uint32_t queued = 0;
  for (uint32_t i = 0; i < 10; i++) {
    mior_pkt pkt;
    if (mior_tx_acquire(p, &pkt) != 0) break;
    uint32_t len = build_frame(NULL, pkt.data, pkt.cap, i);
    if (mior_tx_send(p, &pkt, len, NULL) == 0) queued++;
  }
  mior_tx_flush(p);
  for (int i = 0; i < 20; i++) mior_port_poll(p, 0, 5000);
  mior_port_stats st;
  CHECK_OK(mior_port_stats_get(p, &st));
  printf("    link down: %u queued, tx_packets %llu, tx_errors %llu\n", queued,
         (unsigned long long)st.tx_packets, (unsigned long long)st.tx_errors);
  CHECK_EQ(st.tx_packets, 0);
  CHECK(st.tx_errors >= 1 || queued == 0);
  snprintf(cmd, sizeof cmd, "ip link set dev %s up", pair.if_a);
  REQUIRE(netns_exec(pair.ns_a, cmd) == 0);
  TT_CHECK_POOL_RETURNED(tx);
  CHECK_EQ(mior_transport_close(tx), 0);
}

/* Set both ends' MTU. */
static int set_mtu(int mtu) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "ip link set dev %s mtu %d", pair.if_a, mtu);
  if (netns_exec(pair.ns_a, cmd) != 0) return -1;
  snprintf(cmd, sizeof cmd, "ip link set dev %s mtu %d", pair.if_b, mtu);
  return netns_exec(pair.ns_b, cmd) != 0 ? -1 : 0;
}

int main(void) {
  tt_watchdog(110);
  tt_pair_create(&pair, "tpkt", 212);
  snprintf(ep_a, sizeof ep_a, "packet://%s", pair.if_a);
  snprintf(ep_b, sizeof ep_b, "packet://%s", pair.if_b);
  REQUIRE(inet_pton(AF_INET, pair.ip_a, ip_a) == 1);
  REQUIRE(inet_pton(AF_INET, pair.ip_b, ip_b) == 1);
  int ran = 0;
  ran += tt_run_test(&(const tt_test){"packet://b from packet://a", body_frames,
                                      TT_CONFIGS(frame_modes)});
  ran += tt_run_test(&(const tt_test){"packet://b sees kernel UDP", body_kernel_frames,
                                      TT_CONFIGS(tx_modes)});

  REQUIRE(set_mtu(JUMBO_MTU) == 0);
  ran += tt_run_test(&(const tt_test){"a burst of 8192-byte frames", body_burst,
                                      TT_CONFIGS(tx_modes)});
  REQUIRE(set_mtu(1500) == 0);

  char cmd[160];
  snprintf(cmd, sizeof cmd, "tc qdisc add dev %s root tbf rate 2mbit burst 4kb limit 2mb", pair.if_a);
  if (netns_exec(pair.ns_a, cmd) == 0) {
    ran += tt_run_test(&(const tt_test){"a slow link (tbf)", body_slow_link, TT_CONFIGS(tx_modes)});
    snprintf(cmd, sizeof cmd, "tc qdisc del dev %s root", pair.if_a);
    CHECK(netns_exec(pair.ns_a, cmd) == 0);
  } else {
    printf("  a slow link (tbf): SKIP (tc cannot add a tbf qdisc here: no tc or no sch_tbf)\n");
  }
  ran += tt_run_test(&(const tt_test){"tx_counts_only_sent_frames (link down)", body_link_down,
                                      TT_CONFIGS(tx_modes)});
  CHECK_OK(netns_pair_destroy(&pair));
  if (!ran) TEST_SKIP("no backend is supported here");
  TEST_DONE();
}
