/* The `packet` kind (AF_PACKET, whole Ethernet frames; root), under every backend, across a veth
 * pair between two namespaces the test makes and always deletes:
 *   - packet://<veth b> receives sequence-numbered frames that packet://<veth a> sends, every one
 *     intact, with the addresses and EtherType it was sent with;
 *   - a UDP datagram sent by a kernel socket in ns a is seen as a whole IPv4 frame;
 *   - statistics count what was sent, and both pools are returned.
 */
#include "transport_common.h"

#define COUNT 5000u
#define ETHERTYPE_TEST 0x88b5 /* IEEE 802 local experimental */
#define DPORT 7778

static netns_pair pair;
static uint8_t ip_a[4], ip_b[4];

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

static void body_frames(mior_backend b) {
  tt_rx r;
  tt_rx_init(&r, COUNT);
  r.unwrap = unwrap_frame;
  r.want_unspec_src = 1;
  char ep_a[64], ep_b[64];
  snprintf(ep_a, sizeof ep_a, "packet://%s", pair.if_a);
  snprintf(ep_b, sizeof ep_b, "packet://%s", pair.if_b);
  mior_options o = tt_opts(b);
  mior_receiver recv = tt_receiver(&r);
  mior_transport *rx = NULL, *tx = NULL;
  REQUIRE_OK(tt_open_in(pair.fd_b, &rx, ep_b, &o, &recv));
  mior_options ot = tt_opts(b);
  ot.flags |= MIOR_OPT_NO_RX;
  REQUIRE_OK(tt_open_in(pair.fd_a, &tx, ep_a, &ot, NULL));
  CHECK_EQ(mior_port_backend(mior_transport_port(rx, 0)), b);

  mior_port *rxp = mior_transport_port(rx, 0), *txp = mior_transport_port(tx, 0);
  tt_pump_result pr = tt_pump(txp, &r, &rxp, 1, COUNT, 64, NULL, build_frame, NULL, 20000);
  tt_drain_tx(txp, pr.sent, 2000);
  tt_poll_for(&rxp, 1, 50);
  CHECK_EQ(pr.sent, COUNT);
  TT_CHECK_TALLY(&r);
  printf("    packet -> packet: %u frames in %.1f ms (%u foreign frames ignored)\n", r.got,
         pr.elapsed_us / 1000.0, r.foreign);

  mior_port_stats ts, rs;
  CHECK_OK(mior_transport_stats_get(tx, &ts));
  CHECK_OK(mior_transport_stats_get(rx, &rs));
  CHECK_EQ(ts.tx_packets, pr.sent);
  CHECK_EQ(ts.tx_bytes, pr.sent_bytes);
  CHECK_EQ(ts.tx_errors, 0);
  CHECK_EQ(ts.tx_short, 0);
  CHECK_EQ(rs.rx_packets, r.got + r.foreign + r.bad);
  CHECK_EQ(rs.rx_drop_truncated, 0);
  TT_CHECK_POOL_RETURNED(rx);
  TT_CHECK_POOL_RETURNED(tx);
  CHECK_EQ(mior_transport_close(tx), 0);
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

static void body_kernel_frames(mior_backend b) {
  enum { K = 100 };
  tt_rx r;
  tt_rx_init(&r, K);
  uint16_t sport = 0;
  r.unwrap = unwrap_kernel;
  r.uctx = &sport;
  char ep_b[64];
  snprintf(ep_b, sizeof ep_b, "packet://%s", pair.if_b);
  mior_options o = tt_opts(b);
  mior_receiver recv = tt_receiver(&r);
  mior_transport *rx = NULL;
  REQUIRE_OK(tt_open_in(pair.fd_b, &rx, ep_b, &o, &recv));
  mior_port *rxp = mior_transport_port(rx, 0);

  int s = tt_socket_in(pair.fd_a, AF_INET, SOCK_DGRAM, 0);
  REQUIRE(s >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET}, da = {.sin_family = AF_INET};
  memcpy(&sa.sin_addr, ip_a, 4);
  memcpy(&da.sin_addr, ip_b, 4);
  da.sin_port = htons(DPORT);
  REQUIRE(bind(s, (struct sockaddr *)&sa, sizeof sa) == 0);
  socklen_t sl = sizeof sa;
  REQUIRE(getsockname(s, (struct sockaddr *)&sa, &sl) == 0);
  sport = ntohs(sa.sin_port);

  uint8_t buf[1500];
  int64_t deadline = tt_now_ms() + 10000;
  for (uint32_t seq = 0; seq < K && tt_now_ms() < deadline; seq++) {
    uint32_t len = tt_len_for(seq, TT_HDR, 1400);
    tt_fill(buf, len, seq);
    CHECK(sendto(s, buf, len, 0, (struct sockaddr *)&da, sizeof da) == (ssize_t)len);
    while (seq + 1 - r.got > 32 && tt_now_ms() < deadline) mior_port_poll(rxp, 0, 1000);
  }
  while (r.got < K && tt_now_ms() < deadline) mior_port_poll(rxp, 0, 1000);
  close(s);
  TT_CHECK_TALLY(&r);
  TT_CHECK_POOL_RETURNED(rx);
  CHECK_EQ(mior_transport_close(rx), 0);
  tt_rx_free(&r);
}

int main(void) {
  tt_watchdog(110);
  tt_pair_create(&pair, "tpkt", 212);
  REQUIRE(inet_pton(AF_INET, pair.ip_a, ip_a) == 1);
  REQUIRE(inet_pton(AF_INET, pair.ip_b, ip_b) == 1);
  int ran = 0;
  ran += tt_for_each_backend("packet://b from packet://a", body_frames);
  ran += tt_for_each_backend("packet://b sees kernel UDP", body_kernel_frames);
  CHECK_OK(netns_pair_destroy(&pair));
  if (!ran) TEST_SKIP("no backend is supported here");
  TEST_DONE();
}
